/* qpin-proc.c: reading threads from /proc and the scheduler
 *
 * Every TID is read through /proc/PID/task/TID, never /proc/TID, so a TID
 * that the kernel has reused for another process's thread is not mistaken
 * for the VM's.
 */

#include "qpin-proc.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* spelt out: G_DEFINE_QUARK's first argument does not survive clang-format */
GQuark
qpin_pinner_error_quark (void)
{
  return g_quark_from_static_string ("qpin-pinner-error-quark");
}

static gint
compare_pid (gconstpointer a, gconstpointer b)
{
  GPid x = *(const GPid *) a, y = *(const GPid *) b;
  return (x > y) - (x < y);
}

static gboolean
parse_pid (const char *text, GPid *out)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT, &value, NULL))
    return FALSE;
  *out = (GPid) value;
  return TRUE;
}

/**
 * qpin_proc_list_tasks:
 *
 * Returns: (transfer full) (element-type GPid): the TIDs of @pid, sorted;
 *   %NULL with QPIN_PINNER_ERROR_GONE when the process does not exist
 */
GArray *
qpin_proc_list_tasks (GPid pid, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task", pid);
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) dir = g_dir_open (path, 0, &local);
  g_autoptr (GArray) tids = NULL;
  const char *name;

  if (dir == NULL)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE, "process %d is gone: %s", pid,
                   local->message);
      return NULL;
    }
  tids = g_array_new (FALSE, FALSE, sizeof (GPid));
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      GPid tid;
      if (parse_pid (name, &tid))
        g_array_append_val (tids, tid);
    }
  g_array_sort (tids, compare_pid);
  return g_steal_pointer (&tids);
}

/**
 * qpin_proc_task_belongs:
 *
 * Returns: whether @tid is currently a thread of process @pid
 */
gboolean
qpin_proc_task_belongs (GPid pid, GPid tid)
{
  char path[64];

  if (pid <= 0 || tid <= 0)
    return FALSE;
  g_snprintf (path, sizeof path, "/proc/%d/task/%d", pid, tid);
  return access (path, F_OK) == 0;
}

/**
 * qpin_proc_tgid_of:
 *
 * Returns: the process that thread @tid belongs to, 0 if it does not exist
 */
GPid
qpin_proc_tgid_of (GPid tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", tid);
  g_autofree char *text = NULL;
  const char *line;
  GPid tgid;

  if (tid <= 0 || !g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  line = strstr (text, "\nTgid:");
  if (line == NULL)
    return 0;
  line += strlen ("\nTgid:");
  while (*line == '\t' || *line == ' ')
    line++;
  /* /proc/TID is reachable for any thread, though only leaders are listed */
  tgid = (GPid) strtol (line, NULL, 10);
  return tgid > 0 ? tgid : 0;
}

/* "Cpus_allowed_list:\t0-3,8\n" in /proc/TID/status. */
static gboolean
parse_allowed_list (GPid tid, const char *text, QpinCpuset *out, GError **error)
{
  static const char key[] = "\nCpus_allowed_list:";
  const char *line = strstr (text, key);
  g_autofree char *value = NULL;
  g_autoptr (GError) local = NULL;

  if (line == NULL)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "/proc/%d/status has no Cpus_allowed_list", tid);
      return FALSE;
    }
  line += strlen (key);
  value = g_strndup (line, strcspn (line, "\n"));
  if (!qpin_cpuset_parse (g_strstrip (value), out, &local))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "/proc/%d/status: Cpus_allowed_list: %s", tid, local->message);
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_proc_get_affinity:
 * @out: (out): the thread's CPU affinity
 *
 * The kernel's whole mask, offline CPUs included: sched_getaffinity()
 * hides them, and a mask the kernel widened to "0-1" while CPU 1 is
 * offline would read as "0" until the CPU comes back and the thread runs
 * there.
 */
gboolean
qpin_proc_get_affinity (GPid tid, QpinCpuset *out, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", tid);
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      g_set_error (error, QPIN_PINNER_ERROR,
                   g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                     ? QPIN_PINNER_ERROR_GONE
                     : QPIN_PINNER_ERROR_FAILED,
                   "cannot read the affinity of thread %d: %s", tid, local->message);
      return FALSE;
    }
  return parse_allowed_list (tid, text, out, error);
}

/* /proc/PID/task/TID/stat: "tid (comm) state ppid ..."; comm may hold
 * spaces and parentheses, so fields are counted from the last ')'. */
static gboolean
parse_stat (const char *text, QpinTaskInfo *info)
{
  const char *close = strrchr (text, ')');
  g_auto (GStrv) fields = NULL;
  guint64 utime, stime;
  gint64 cpu;

  if (close == NULL)
    return FALSE;
  fields = g_strsplit (close + 2, " ", 0);
  /* fields[0] is field 3 (state): field N is fields[N - 3] */
  if (g_strv_length (fields) < 37)
    return FALSE;
  if (!g_ascii_string_to_unsigned (fields[14 - 3], 10, 0, G_MAXUINT64, &utime, NULL)
      || !g_ascii_string_to_unsigned (fields[15 - 3], 10, 0, G_MAXUINT64, &stime, NULL)
      || !g_ascii_string_to_signed (fields[39 - 3], 10, 0, G_MAXINT, &cpu, NULL))
    return FALSE;
  info->cpu = (gint) cpu;
  info->cpu_time_ns
    = (utime + stime) * (G_GUINT64_CONSTANT (1000000000) / (guint64) sysconf (_SC_CLK_TCK));
  return TRUE;
}

/**
 * qpin_proc_read_task:
 * @out: (out): name, last CPU, affinity and CPU time of thread @tid of @pid
 *
 * Fails with QPIN_PINNER_ERROR_GONE when the thread is not (or no longer)
 * a thread of @pid.
 */
gboolean
qpin_proc_read_task (GPid pid, GPid tid, QpinTaskInfo *out, GError **error)
{
  g_autofree char *dir = g_strdup_printf ("/proc/%d/task/%d", pid, tid);
  g_autofree char *stat_path = g_build_filename (dir, "stat", NULL);
  g_autofree char *comm_path = g_build_filename (dir, "comm", NULL);
  g_autofree char *stat = NULL;
  g_autofree char *comm = NULL;
  QpinTaskInfo info = { .tid = tid };

  if (!g_file_get_contents (stat_path, &stat, NULL, NULL)
      || !g_file_get_contents (comm_path, &comm, NULL, NULL))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE,
                   "thread %d of process %d is gone", tid, pid);
      return FALSE;
    }
  if (!parse_stat (stat, &info))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "cannot parse %s",
                   stat_path);
      return FALSE;
    }
  g_strchomp (comm);
  g_strlcpy (info.comm, comm, sizeof info.comm);
  if (!qpin_proc_get_affinity (tid, &info.affinity, error))
    return FALSE;
  /* the TID may have died and been reused between the reads above */
  if (!qpin_proc_task_belongs (pid, tid))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE,
                   "thread %d of process %d is gone", tid, pid);
      return FALSE;
    }
  *out = info;
  return TRUE;
}

/**
 * qpin_proc_last_cpu:
 *
 * Returns: the CPU thread @tid of @pid last ran on, -1 if it is gone
 */
gint
qpin_proc_last_cpu (GPid pid, GPid tid)
{
  char path[64];
  g_autofree char *stat = NULL;
  QpinTaskInfo info = { .tid = tid };

  g_snprintf (path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
  if (!g_file_get_contents (path, &stat, NULL, NULL) || !parse_stat (stat, &info))
    return -1;
  return info.cpu;
}
