/* qpin-proc-sample.c: strict readers of /proc for the sampler */
#define G_LOG_DOMAIN "qpin-monitor"

#include "qpin-proc-sample.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* spelt out: G_DEFINE_QUARK's first argument does not survive clang-format */
GQuark
qpin_monitor_error_quark (void)
{
  return g_quark_from_static_string ("qpin-monitor-error-quark");
}

/* /proc files are small; anything longer is not what we expect */
#define MAX_PROC_FILE (1024 * 1024)

static char *
read_proc_file (const char *root, const char *path, gboolean gone_if_missing, GError **error)
{
  g_autofree char *full = g_build_filename (root, path, NULL);
  g_autoptr (GError) local = NULL;
  char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (full, &text, &len, &local))
    {
      if (gone_if_missing
          && (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
              || g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_FAILED)))
        g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_GONE, "'%s' is gone", full);
      else
        g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_FAILED, "%s", local->message);
      return NULL;
    }
  if (len > MAX_PROC_FILE || memchr (text, '\0', len) != NULL)
    {
      g_free (text);
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "'%s' is not a text file of at most %d bytes", full, MAX_PROC_FILE);
      return NULL;
    }
  return text;
}

static gboolean
parse_u64 (const char *text, const char *file, const char *field, guint64 *out, GError **error)
{
  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, out, NULL))
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "%s: field '%s' is not a number: '%s'", file, field, text ? text : "(missing)");
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_task_sample_parse_stat:
 *
 * /proc/PID/task/TID/stat: "TID (COMM) STATE f4 ... f52"; COMM may hold
 * spaces and parentheses, so fields count from the last ')'.  Reads comm,
 * utime (14), stime (15), processor (39), guest_time (43).
 */
gboolean
qpin_task_sample_parse_stat (const char *text, QpinTaskSample *out, GError **error)
{
  const char *open = strchr (text, '(');
  const char *close = strrchr (text, ')');
  char rest[2048];
  char *f[41], *save = NULL, *tok;
  guint n = 0;
  guint64 cpu = 0;
  gsize comm_len;

  if (open == NULL || close == NULL || close < open)
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "stat: no '(comm)' in '%.40s'", text);
      return FALSE;
    }
  /* f[0] is field 3 (state); field N is f[N - 3] */
  g_strlcpy (rest, close + 1, sizeof rest);
  for (tok = strtok_r (rest, " \n", &save); tok && n < G_N_ELEMENTS (f);
       tok = strtok_r (NULL, " \n", &save))
    f[n++] = tok;
  if (n < G_N_ELEMENTS (f))
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "stat: %u fields after comm, expected at least 41", n);
      return FALSE;
    }
  if (!parse_u64 (f[11], "stat", "utime", &out->utime_ticks, error)
      || !parse_u64 (f[12], "stat", "stime", &out->stime_ticks, error)
      || !parse_u64 (f[36], "stat", "processor", &cpu, error)
      || !parse_u64 (f[40], "stat", "guest_time", &out->guest_ticks, error))
    return FALSE;
  if (cpu >= QPIN_CPUSET_MAX)
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "stat: processor %" G_GUINT64_FORMAT " out of range", cpu);
      return FALSE;
    }
  out->cpu = (gint) cpu;
  comm_len = MIN ((gsize) (close - open - 1), sizeof out->comm - 1);
  memcpy (out->comm, open + 1, comm_len);
  out->comm[comm_len] = '\0';
  return TRUE;
}

/* The value of "KEY:\tVALUE" on its own line, copied into @buf. */
static const char *
status_value (const char *text, const char *key, char *buf, gsize size)
{
  gsize klen = strlen (key);
  const char *line = text;

  while (line && *line)
    {
      if (strncmp (line, key, klen) == 0 && line[klen] == ':')
        {
          const char *v = line + klen + 1;
          const char *end = strchr (v, '\n');
          gsize len = end ? (gsize) (end - v) : strlen (v);

          if (len >= size)
            return NULL;
          memcpy (buf, v, len);
          buf[len] = '\0';
          return g_strstrip (buf);
        }
      line = strchr (line, '\n');
      line = line ? line + 1 : NULL;
    }
  return NULL;
}

/**
 * qpin_task_sample_parse_status:
 *
 * /proc/PID/task/TID/status: voluntary_ctxt_switches,
 * nonvoluntary_ctxt_switches, Cpus_allowed_list.
 */
gboolean
qpin_task_sample_parse_status (const char *text, QpinTaskSample *out, GError **error)
{
  char buf[3][4096];
  const char *cpus;

  if (!parse_u64 (status_value (text, "voluntary_ctxt_switches", buf[0], sizeof buf[0]), "status",
                  "voluntary_ctxt_switches", &out->vcsw, error)
      || !parse_u64 (status_value (text, "nonvoluntary_ctxt_switches", buf[1], sizeof buf[1]),
                     "status", "nonvoluntary_ctxt_switches", &out->icsw, error))
    return FALSE;
  cpus = status_value (text, "Cpus_allowed_list", buf[2], sizeof buf[2]);
  if (cpus == NULL || !qpin_cpuset_parse (cpus, &out->affinity, NULL))
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "status: field 'Cpus_allowed_list' is not a CPU list: '%s'",
                   cpus ? cpus : "(missing)");
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_task_sample_parse_schedstat:
 *
 * /proc/PID/task/TID/schedstat: "RUN_NS WAIT_NS SLICES".
 */
gboolean
qpin_task_sample_parse_schedstat (const char *text, QpinTaskSample *out, GError **error)
{
  char copy[256], *f[4], *save = NULL, *tok;
  guint n = 0;

  g_strlcpy (copy, text, sizeof copy);
  for (tok = strtok_r (copy, " \n", &save); tok; tok = strtok_r (NULL, " \n", &save))
    if (n++ < G_N_ELEMENTS (f))
      f[n - 1] = tok;
  if (n != 3)
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "schedstat: %u fields, expected 3", n);
      return FALSE;
    }
  if (!parse_u64 (f[0], "schedstat", "run", &out->run_ns, error)
      || !parse_u64 (f[1], "schedstat", "wait", &out->wait_ns, error)
      || !parse_u64 (f[2], "schedstat", "slices", &out->slices, error))
    return FALSE;
  out->has_schedstat = TRUE;
  return TRUE;
}

/* The number after "KEY ... :" on @line, if @line starts with KEY and a
 * space. */
static gboolean
sched_value (const char *line, const char *end, const char *key, guint64 *out)
{
  gsize klen = strlen (key);
  const char *colon;
  char value[64];
  gsize len;

  if ((gsize) (end - line) <= klen || memcmp (line, key, klen) != 0 || line[klen] != ' ')
    return FALSE;
  colon = memchr (line + klen, ':', (gsize) (end - line - klen));
  if (colon == NULL)
    return FALSE;
  len = (gsize) (end - colon - 1);
  if (len >= sizeof value)
    return FALSE;
  memcpy (value, colon + 1, len);
  value[len] = '\0';
  return g_ascii_string_to_unsigned (g_strstrip (value), 10, 0, G_MAXUINT64, out, NULL);
}

/**
 * qpin_task_sample_parse_sched:
 *
 * /proc/PID/task/TID/sched (CONFIG_SCHED_DEBUG): "se.nr_migrations : N",
 * "nr_voluntary_switches : N", "nr_involuntary_switches : N".  Its format
 * is debug output, so a missing or odd line only leaves that count
 * unknown.
 *
 * Returns: whether it held both context switch counts
 */
gboolean
qpin_task_sample_parse_sched (const char *text, QpinTaskSample *out)
{
  gboolean has_v = FALSE, has_i = FALSE;
  guint64 vcsw = 0, icsw = 0;

  out->has_migrations = FALSE;
  for (const char *line = text; *line != '\0';)
    {
      const char *end = strchrnul (line, '\n');

      if (!out->has_migrations)
        out->has_migrations = sched_value (line, end, "se.nr_migrations", &out->migrations);
      if (!has_v)
        has_v = sched_value (line, end, "nr_voluntary_switches", &vcsw);
      if (!has_i)
        has_i = sched_value (line, end, "nr_involuntary_switches", &icsw);
      line = *end != '\0' ? end + 1 : end;
    }
  if (!has_v || !has_i)
    return FALSE;
  out->vcsw = vcsw;
  out->icsw = icsw;
  return TRUE;
}

static gboolean
read_live_affinity (GPid pid, GPid tid, QpinCpuset *out, GError **error)
{
  unsigned long mask[QPIN_CPUSET_MAX / (8 * sizeof (unsigned long))];
  const guint bits = 8 * sizeof (unsigned long);
  /* the raw call says how many bytes the kernel wrote (its nr_cpu_ids,
   * rounded up to a long): only those are looked at */
  long n = syscall (SYS_sched_getaffinity, tid, sizeof mask, mask);

  if (n < 0)
    {
      int saved = errno;
      g_set_error (error, QPIN_MONITOR_ERROR,
                   saved == ESRCH ? QPIN_MONITOR_ERROR_GONE : QPIN_MONITOR_ERROR_FAILED,
                   "thread %d of process %d: sched_getaffinity: %s", tid, pid, g_strerror (saved));
      return FALSE;
    }
  qpin_cpuset_clear_all (out);
  for (guint w = 0; w < (gulong) n / sizeof (unsigned long); w++)
    for (unsigned long m = mask[w]; m != 0; m &= m - 1)
      qpin_cpuset_add (out, w * bits + (guint) __builtin_ctzl (m));
  return TRUE;
}

/* A task file is read into @buf, without allocating: the sampler reads
 * three or four per thread per interval.  Through @task_dir (an open
 * ROOT/proc/PID/task, or -1) the walk down /proc is skipped, and a TID
 * that is not a thread of that process reads as gone. */
static gboolean
read_task_file (int task_dir, const char *root, GPid pid, GPid tid, const char *name, char *buf,
                gsize size, GError **error)
{
  char path[PATH_MAX];
  gsize len = 0;
  int fd;

  /* relative to the task directory: TID/NAME; else the whole path */
  if (task_dir >= 0)
    g_snprintf (path, sizeof path, "%d/%s", tid, name);
  else
    g_snprintf (path, sizeof path, "%s/proc/%d/task/%d/%s", root, pid, tid, name);
  fd = openat (task_dir >= 0 ? task_dir : AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  while (fd >= 0 && len < size - 1)
    {
      ssize_t n = read (fd, buf + len, size - 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (gsize) n;
    }
  if (fd < 0 || len == 0)
    {
      /* ENOENT, ESRCH, or empty: a thread that exits between open and read */
      int saved = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, QPIN_MONITOR_ERROR,
                   fd < 0 && saved != ENOENT && saved != ESRCH ? QPIN_MONITOR_ERROR_FAILED
                                                               : QPIN_MONITOR_ERROR_GONE,
                   "thread %d of process %d is gone (%s)", tid, pid, name);
      return FALSE;
    }
  close (fd);
  if (len == size - 1 || memchr (buf, '\0', len) != NULL)
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                   "'%s/proc/%d/task/%d/%s' is not a text file of less than %" G_GSIZE_FORMAT
                   " bytes",
                   root, pid, tid, name, size);
      return FALSE;
    }
  buf[len] = '\0';
  return TRUE;
}

/**
 * qpin_task_sample_read:
 * @task_dir: ROOT/proc/PID/task opened with qpin_task_dir_open(), or -1
 * @root: "/" or a recorded tree holding proc/PID/task/TID/...
 *
 * Reads stat, schedstat (optional), sched (optional) and, unless sched
 * had the context switches and @root is "/" (then sched_getaffinity()
 * gives the affinity), status of one thread.  @out is written only on
 * success.
 *
 * Returns: %FALSE with QPIN_MONITOR_ERROR_GONE when the thread is gone,
 *   _PARSE when a file does not read as expected
 */
gboolean
qpin_task_sample_read (int task_dir, const char *root, GPid pid, GPid tid, QpinTaskSample *out,
                       GError **error)
{
  QpinTaskSample s[1] = { 0 };
  char buf[16384];

  gboolean switches = FALSE;

  if (!read_task_file (task_dir, root, pid, tid, "stat", buf, sizeof buf, error)
      || !qpin_task_sample_parse_stat (buf, s, error))
    return FALSE;
  if (read_task_file (task_dir, root, pid, tid, "schedstat", buf, sizeof buf, NULL)
      && !qpin_task_sample_parse_schedstat (buf, s, error))
    return FALSE;
  if (read_task_file (task_dir, root, pid, tid, "sched", buf, sizeof buf, NULL))
    switches = qpin_task_sample_parse_sched (buf, s);
  /* status is the costliest file: on the live host, sched has the context
   * switches and the affinity is one system call */
  if (switches && g_str_equal (root, "/"))
    {
      if (!read_live_affinity (pid, tid, &s->affinity, error))
        return FALSE;
    }
  else if (!read_task_file (task_dir, root, pid, tid, "status", buf, sizeof buf, error)
           || !qpin_task_sample_parse_status (buf, s, error))
    return FALSE;
  *out = *s;
  return TRUE;
}

/**
 * qpin_task_dir_open:
 *
 * Opens ROOT/proc/PID/task (O_PATH) for qpin_task_sample_read(): one file
 * descriptor per process saves most of the cost of opening each thread's
 * files, and pins the process: if @pid is reused, reads fail as gone.
 *
 * Returns: the descriptor, or -1 with errno set
 */
int
qpin_task_dir_open (const char *root, GPid pid)
{
  char path[PATH_MAX];

  g_snprintf (path, sizeof path, "%s/proc/%d/task", root, pid);
  return open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static QpinCpuSample *
cpu_slot (GArray *cpus, guint64 cpu)
{
  if (cpu >= cpus->len)
    g_array_set_size (cpus, (guint) cpu + 1);
  return &g_array_index (cpus, QpinCpuSample, cpu);
}

/**
 * qpin_cpu_samples_parse_stat:
 * @cpus: (element-type QpinCpuSample): indexed by CPU number; grown
 *
 * /proc/stat "cpuN user nice system idle iowait irq softirq steal ...".
 */
gboolean
qpin_cpu_samples_parse_stat (const char *text, GArray *cpus, GError **error)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i]; i++)
    {
      g_auto (GStrv) f = NULL;
      guint64 cpu, v[8];
      QpinCpuSample *slot;

      if (!g_str_has_prefix (lines[i], "cpu") || !g_ascii_isdigit (lines[i][3]))
        continue;
      f = g_strsplit (lines[i] + 3, " ", -1);
      if (g_strv_length (f) < 9
          || !g_ascii_string_to_unsigned (f[0], 10, 0, QPIN_CPUSET_MAX - 1, &cpu, NULL))
        {
          g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                       "/proc/stat line %u: expected 'cpuN' and 8 counters", i + 1);
          return FALSE;
        }
      for (guint k = 0; k < 8; k++)
        if (!parse_u64 (f[k + 1], "/proc/stat", "cpu counter", &v[k], error))
          return FALSE;
      slot = cpu_slot (cpus, cpu);
      slot->present = TRUE;
      slot->busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
      slot->total_ticks = slot->busy_ticks + v[3] + v[4];
    }
  return TRUE;
}

/**
 * qpin_cpu_samples_parse_interrupts:
 *
 * /proc/interrupts: a header "CPU0 CPU1 ..." naming the columns, then
 * "NAME: COUNT... description" rows; rows such as ERR have one count.
 */
gboolean
qpin_cpu_samples_parse_interrupts (const char *text, GArray *cpus, GError **error)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_auto (GStrv) header = NULL;
  g_autoptr (GArray) columns = g_array_new (FALSE, FALSE, sizeof (guint64));

  if (lines[0] == NULL)
    return TRUE;
  header = g_strsplit_set (lines[0], " \t", -1);
  for (guint i = 0; header[i]; i++)
    {
      guint64 cpu;
      if (*header[i] == '\0')
        continue;
      if (!g_str_has_prefix (header[i], "CPU")
          || !g_ascii_string_to_unsigned (header[i] + 3, 10, 0, QPIN_CPUSET_MAX - 1, &cpu, NULL))
        {
          g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE,
                       "/proc/interrupts: header column '%s' is not 'CPUn'", header[i]);
          return FALSE;
        }
      g_array_append_val (columns, cpu);
    }
  for (guint i = 1; lines[i]; i++)
    {
      const char *colon = strchr (lines[i], ':');
      g_auto (GStrv) f = NULL;
      guint col = 0;

      if (colon == NULL)
        continue;
      f = g_strsplit_set (colon + 1, " \t", -1);
      for (guint k = 0; f[k] && col < columns->len; k++)
        {
          guint64 n;
          if (*f[k] == '\0')
            continue;
          if (!g_ascii_string_to_unsigned (f[k], 10, 0, G_MAXUINT64, &n, NULL))
            break;
          cpu_slot (cpus, g_array_index (columns, guint64, col++))->irqs += n;
        }
    }
  return TRUE;
}

/**
 * qpin_cpu_samples_read:
 * @root: "/" or a recorded tree holding proc/stat and proc/interrupts
 *
 * Returns: (transfer full) (element-type QpinCpuSample): indexed by CPU
 *   number; entries not present in /proc/stat have present FALSE
 */
GArray *
qpin_cpu_samples_read (const char *root, GError **error)
{
  g_autoptr (GArray) cpus = g_array_new (FALSE, TRUE, sizeof (QpinCpuSample));
  g_autofree char *stat = read_proc_file (root, "proc/stat", FALSE, error);
  g_autofree char *interrupts = NULL;

  if (stat == NULL || !qpin_cpu_samples_parse_stat (stat, cpus, error))
    return NULL;
  /* interrupts are optional: a container may hide them */
  interrupts = read_proc_file (root, "proc/interrupts", FALSE, NULL);
  if (interrupts && !qpin_cpu_samples_parse_interrupts (interrupts, cpus, error))
    return NULL;
  return g_steal_pointer (&cpus);
}
