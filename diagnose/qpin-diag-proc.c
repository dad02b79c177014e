/* qpin-diag-proc.c: the few /proc readers diagnose needs, under a root */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-private.h"

#include <stdlib.h>
#include <string.h>

/* The largest /proc file read: /proc/interrupts on 8192 CPUs is far below */
#define MAX_BYTES (16 * 1024 * 1024)

/**
 * qpin_diag_read:
 * @rel: path relative to @root
 *
 * Returns: (transfer full): the contents, or NULL with @error
 */
char *
qpin_diag_read (const char *root, const char *rel, GError **error)
{
  g_autofree char *path = g_build_filename (root, rel, NULL);
  char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  if (len > MAX_BYTES)
    {
      g_free (text);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "'%s' is too large", path);
      return NULL;
    }
  return text;
}

/**
 * qpin_diag_read_trimmed:
 *
 * Returns: (transfer full) (nullable): the first line without blanks
 * around it, NULL when unreadable
 */
char *
qpin_diag_read_trimmed (const char *root, const char *rel)
{
  char *text = qpin_diag_read (root, rel, NULL);
  char *nl;

  if (text == NULL)
    return NULL;
  nl = strchr (text, '\n');
  if (nl)
    *nl = '\0';
  return g_strstrip (text);
}

static void
task_free (gpointer p)
{
  QpinDiagTask *t = p;

  g_free (t->comm);
  g_free (t);
}

static void
irq_free (gpointer p)
{
  QpinDiagIrq *irq = p;

  g_free (irq->name);
  g_free (irq->desc);
  g_array_unref (irq->counts);
  g_free (irq);
}

/* stat: "TID (COMM) S f4 ... f39"; COMM may hold ") ": parse after the last ')' */
static void
parse_stat (QpinDiagTask *t, const char *stat)
{
  const char *p = stat ? strrchr (stat, ')') : NULL;
  g_auto (GStrv) f = p ? g_strsplit_set (p + 2, " \n", 0) : NULL;
  guint n = f ? g_strv_length (f) : 0;
  guint64 utime, stime, cpu;

  /* after ')': field 3 (state) is f[0], field N is f[N - 3] */
  if (n > 36 && g_ascii_string_to_unsigned (f[11], 10, 0, G_MAXUINT64, &utime, NULL)
      && g_ascii_string_to_unsigned (f[12], 10, 0, G_MAXUINT64, &stime, NULL)
      && g_ascii_string_to_unsigned (f[36], 10, 0, QPIN_CPUSET_MAX - 1, &cpu, NULL))
    {
      t->ticks = utime + stime;
      t->last_cpu = (gint) cpu;
    }
}

static void
parse_schedstat (QpinDiagTask *t, const char *text)
{
  guint64 run, wait;
  char *end;

  if (text == NULL)
    return;
  run = g_ascii_strtoull (text, &end, 10);
  if (end == text)
    return;
  wait = g_ascii_strtoull (end, &end, 10);
  t->run_ns = run;
  t->wait_ns = wait;
  t->schedstat = TRUE;
}

static void
parse_allowed (QpinDiagTask *t, const char *status)
{
  const char *p = status ? strstr (status, "Cpus_allowed_list:") : NULL;
  g_autofree char *line = NULL;

  if (p == NULL)
    return;
  p += strlen ("Cpus_allowed_list:");
  line = g_strndup (p, strcspn (p, "\n"));
  if (!qpin_cpuset_parse (g_strstrip (line), &t->allowed, NULL))
    qpin_cpuset_clear_all (&t->allowed);
}

static void
read_task (QpinDiagSnap *snap, const char *root, gint64 pid, gint64 tid)
{
  g_autofree char *dir
    = g_strdup_printf ("proc/%" G_GINT64_FORMAT "/task/%" G_GINT64_FORMAT, pid, tid);
  g_autofree char *stat_rel = g_build_filename (dir, "stat", NULL);
  g_autofree char *sched_rel = g_build_filename (dir, "schedstat", NULL);
  g_autofree char *status_rel = g_build_filename (dir, "status", NULL);
  g_autofree char *comm_rel = g_build_filename (dir, "comm", NULL);
  g_autofree char *stat = qpin_diag_read (root, stat_rel, NULL);
  g_autofree char *sched = qpin_diag_read (root, sched_rel, NULL);
  g_autofree char *status = qpin_diag_read (root, status_rel, NULL);
  QpinDiagTask *t;
  gint64 *key;

  if (stat == NULL) /* gone */
    return;
  t = g_new0 (QpinDiagTask, 1);
  t->pid = pid;
  t->tid = tid;
  t->last_cpu = -1;
  t->comm = qpin_diag_read_trimmed (root, comm_rel);
  if (t->comm == NULL)
    t->comm = g_strdup ("?");
  parse_stat (t, stat);
  parse_schedstat (t, sched);
  parse_allowed (t, status);
  key = g_new (gint64, 1);
  *key = tid;
  g_hash_table_replace (snap->tasks, key, t);
}

static gboolean
parse_id (const char *name, gint64 *id)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (name, 10, 1, G_MAXINT32, &v, NULL))
    return FALSE;
  *id = (gint64) v;
  return TRUE;
}

static void
read_tasks (QpinDiagSnap *snap, const char *root)
{
  g_autofree char *proc = g_build_filename (root, "proc", NULL);
  g_autoptr (GDir) dir = g_dir_open (proc, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *task_path = NULL;
      g_autoptr (GDir) tasks = NULL;
      const char *tname;
      gint64 pid, tid;

      if (!parse_id (name, &pid))
        continue;
      task_path = g_build_filename (proc, name, "task", NULL);
      tasks = g_dir_open (task_path, 0, NULL);
      while (tasks && (tname = g_dir_read_name (tasks)))
        if (parse_id (tname, &tid))
          read_task (snap, root, pid, tid);
    }
}

/* "           CPU0       CPU1" then "  24:   1   0  IO-APIC   5-edge  ACPI:Ged" */
static void
read_interrupts (QpinDiagSnap *snap, const char *root)
{
  g_autofree char *text = qpin_diag_read (root, "proc/interrupts", NULL);
  g_auto (GStrv) lines = text ? g_strsplit (text, "\n", 0) : NULL;
  g_autoptr (GArray) columns = g_array_new (FALSE, FALSE, sizeof (guint));
  g_auto (GStrv) head = NULL;

  if (lines == NULL || lines[0] == NULL)
    return;
  head = g_strsplit_set (lines[0], " \t", 0);
  for (guint i = 0; head[i]; i++)
    {
      guint64 cpu;
      if (g_str_has_prefix (head[i], "CPU")
          && g_ascii_string_to_unsigned (head[i] + 3, 10, 0, QPIN_CPUSET_MAX - 1, &cpu, NULL))
        g_array_append_vals (columns, &(guint){ (guint) cpu }, 1);
    }
  for (guint l = 1; lines[l]; l++)
    {
      char *colon = strchr (lines[l], ':');
      const char *p;
      QpinDiagIrq *irq;

      if (colon == NULL)
        continue;
      irq = g_new0 (QpinDiagIrq, 1);
      irq->name = g_strstrip (g_strndup (lines[l], (gsize) (colon - lines[l])));
      irq->counts = g_array_new (FALSE, TRUE, sizeof (guint64));
      p = colon + 1;
      for (guint c = 0; c < columns->len; c++)
        {
          char *end;
          guint64 v = g_ascii_strtoull (p, &end, 10);
          guint cpu = g_array_index (columns, guint, c);

          if (end == p)
            break;
          if (irq->counts->len <= cpu)
            g_array_set_size (irq->counts, cpu + 1);
          g_array_index (irq->counts, guint64, cpu) = v;
          p = end;
        }
      irq->desc = g_strstrip (g_strdup (p));
      g_hash_table_replace (snap->irqs, irq->name, irq);
    }
  snap->has_interrupts = TRUE;
}

/**
 * qpin_diag_snap_read:
 *
 * Reads every task and /proc/interrupts under @root; what is missing is
 * left out (checks then say "not checked").
 */
void
qpin_diag_snap_read (QpinDiagSnap *snap, const char *root)
{
  qpin_diag_snap_clear (snap);
  snap->tasks = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, task_free);
  snap->irqs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, irq_free);
  read_tasks (snap, root);
  read_interrupts (snap, root);
}

void
qpin_diag_snap_clear (QpinDiagSnap *snap)
{
  g_clear_pointer (&snap->tasks, g_hash_table_unref);
  g_clear_pointer (&snap->irqs, g_hash_table_unref);
  snap->has_interrupts = FALSE;
}

/**
 * qpin_diag_task:
 *
 * Returns: (transfer none) (nullable): thread @tid in @snap
 */
const QpinDiagTask *
qpin_diag_task (const QpinDiagSnap *snap, gint64 tid)
{
  return snap->tasks ? g_hash_table_lookup (snap->tasks, &tid) : NULL;
}

/**
 * qpin_diag_task_delta:
 *
 * Returns: FALSE when @tid is missing from a snapshot or has no schedstat
 */
gboolean
qpin_diag_task_delta (const QpinDiag *diag, gint64 tid, guint64 *run_ns, guint64 *wait_ns)
{
  const QpinDiagTask *a = qpin_diag_task (&diag->before, tid);
  const QpinDiagTask *b = qpin_diag_task (&diag->after, tid);

  if (a == NULL || b == NULL || !a->schedstat || !b->schedstat || b->run_ns < a->run_ns
      || b->wait_ns < a->wait_ns)
    return FALSE;
  *run_ns = b->run_ns - a->run_ns;
  *wait_ns = b->wait_ns - a->wait_ns;
  return TRUE;
}

/**
 * qpin_diag_vm_of_tid:
 *
 * Returns: (transfer none) (nullable): the VM whose thread @tid is
 */
const QpinDiagVm *
qpin_diag_vm_of_tid (const QpinDiag *diag, gint64 tid, const QpinDiagThread **thread)
{
  for (guint i = 0; i < diag->vms->len; i++)
    {
      const QpinDiagVm *vm = g_ptr_array_index (diag->vms, i);
      for (guint j = 0; j < vm->threads->len; j++)
        if (g_array_index (vm->threads, QpinDiagThread, j).tid == tid)
          {
            *thread = &g_array_index (vm->threads, QpinDiagThread, j);
            return vm;
          }
    }
  return NULL;
}
