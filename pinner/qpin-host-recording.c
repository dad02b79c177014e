/* qpin-host-recording.c: see qpin-host-recording.h */

#include "qpin-host-recording.h"

#include <errno.h>
#include <unistd.h>

#include "qpin-proc.h"
#include "qpin-topology-reader.h"

typedef struct {
  GPid pid, tid;
  QpinCpuset affinity;
  int fail; /* errno every pin of it fails with; 0: none */
} FakeThread;

typedef struct {
  GPid pid;
  guint64 start_time;
  QpinCpuset *allowed; /* its cgroup cpuset; NULL: every CPU */
} FakeProcess;

typedef struct {
  QpinHost parent;
  QpinHost *below;       /* a dry run: reads go there; NULL: in memory */
  GHashTable *processes; /* pid -> FakeProcess */
  GHashTable *threads;   /* tid -> FakeThread */
  char *topology_root;
  guint64 next_start;
  GString *log; /* what was asked of it, one line each */
} Recording;

static void
fake_process_free (FakeProcess *p)
{
  g_free (p->allowed);
  g_free (p);
}

static gint
compare_pid (gconstpointer a, gconstpointer b)
{
  GPid x = *(const GPid *) a, y = *(const GPid *) b;

  return x < y ? -1 : x > y;
}

static GArray *
rec_list_tasks (QpinHost *host, GPid pid, GError **error)
{
  Recording *r = (Recording *) host;
  GArray *tids;
  GHashTableIter iter;
  FakeThread *t;

  if (r->below)
    return qpin_host_list_tasks (r->below, pid, error);
  if (!g_hash_table_contains (r->processes, GINT_TO_POINTER (pid)))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE, "process %d is gone", pid);
      return NULL;
    }
  tids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_hash_table_iter_init (&iter, r->threads);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &t))
    if (t->pid == pid)
      g_array_append_val (tids, t->tid);
  g_array_sort (tids, compare_pid);
  return tids;
}

static gboolean
rec_read_task (QpinHost *host, GPid pid, GPid tid, QpinCpuset *affinity, gint *cpu)
{
  Recording *r = (Recording *) host;
  FakeThread *t;

  if (r->below)
    return qpin_host_read_task (r->below, pid, tid, affinity, cpu);
  t = g_hash_table_lookup (r->threads, GINT_TO_POINTER (tid));
  qpin_cpuset_clear_all (affinity);
  *cpu = -1;
  if (t == NULL)
    return FALSE;
  *affinity = t->affinity;
  *cpu = qpin_cpuset_first (&t->affinity);
  return TRUE;
}

static QpinPinnerError
error_code_of (int err)
{
  switch (err)
    {
    case ESRCH:
      return QPIN_PINNER_ERROR_GONE;
    case EINVAL:
      return QPIN_PINNER_ERROR_INVALID;
    case EPERM:
      return QPIN_PINNER_ERROR_PERMISSION;
    default:
      return QPIN_PINNER_ERROR_FAILED;
    }
}

/* What sched_setaffinity would do to @t: the errno it fails with, or 0
 * and the mask the kernel keeps (narrowed to the cgroup cpuset). */
static int
kernel_pin (Recording *r, FakeThread *t, const QpinCpuset *cpus, QpinCpuset *kept)
{
  FakeProcess *p = g_hash_table_lookup (r->processes, GINT_TO_POINTER (t->pid));

  if (t->fail)
    return t->fail;
  *kept = *cpus;
  if (p && p->allowed)
    qpin_cpuset_and (kept, p->allowed);
  return qpin_cpuset_is_empty (kept) ? EINVAL : 0;
}

static gboolean
rec_pin (QpinHost *host, GPid pid, GPid tid, const QpinCpuset *cpus, QpinCpuset *applied,
         GError **error)
{
  Recording *r = (Recording *) host;
  g_autofree char *list = qpin_cpuset_format (cpus);
  FakeThread *t;
  QpinCpuset kept;
  int err;

  g_string_append_printf (r->log, "pin %d %s\n", tid, list);
  if (r->below)
    {
      if (applied)
        *applied = *cpus;
      return TRUE;
    }
  t = g_hash_table_lookup (r->threads, GINT_TO_POINTER (tid));
  if (t == NULL || t->pid != pid)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE,
                   "thread %d is not (or no longer) a thread of process %d", tid, pid);
      return FALSE;
    }
  err = kernel_pin (r, t, cpus, &kept);
  if (err)
    {
      g_set_error (error, QPIN_PINNER_ERROR, error_code_of (err),
                   "cannot pin thread %d of process %d to '%s': %s", tid, pid, list,
                   g_strerror (err));
      return FALSE;
    }
  t->affinity = kept;
  if (applied)
    *applied = kept;
  if (!qpin_cpuset_equal (&kept, cpus))
    {
      g_autofree char *got = qpin_cpuset_format (&kept);
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_INVALID,
                   "thread %d of process %d: asked for '%s', the kernel applied '%s'", tid, pid,
                   list, got);
      return FALSE;
    }
  return TRUE;
}

static gboolean
rec_allowed (QpinHost *host, GPid pid, GPid tid, QpinCpuset *allowed, GError **error)
{
  Recording *r = (Recording *) host;
  QpinCpuset all;
  gint cpu;

  if (r->below)
    {
      /* a dry run pins nothing, so nothing is refused: never asked */
      qpin_host_read_task (r->below, pid, tid, allowed, &cpu);
      return TRUE;
    }
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, QPIN_CPUSET_MAX - 1);
  if (rec_pin (host, pid, tid, &all, allowed, NULL) || !qpin_cpuset_is_empty (allowed))
    return TRUE;
  g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
               "thread %d of process %d may run on no CPU", tid, pid);
  return FALSE;
}

static gboolean
rec_set_sched (QpinHost *host, GPid pid, GPid tid, QpinSchedMode mode, guint priority,
               GError **error)
{
  Recording *r = (Recording *) host;

  g_string_append_printf (r->log, "sched %d %d:%u\n", tid, (int) mode, priority);
  return TRUE;
}

static gboolean
rec_migrate_memory (QpinHost *host, GPid pid, const QpinCpuset *nodes, int *unmoved, GError **error)
{
  Recording *r = (Recording *) host;
  g_autofree char *list = qpin_cpuset_format (nodes);

  g_string_append_printf (r->log, "migrate %d %s\n", pid, list);
  *unmoved = 0;
  return TRUE;
}

static QpinTopology *
rec_read_topology (QpinHost *host, GError **error)
{
  Recording *r = (Recording *) host;

  if (r->below)
    return qpin_host_read_topology (r->below, error);
  return qpin_topology_read (r->topology_root ? r->topology_root : "/", NULL, error);
}

static gboolean
rec_process_exists (QpinHost *host, GPid pid)
{
  Recording *r = (Recording *) host;

  if (r->below)
    return qpin_host_process_exists (r->below, pid);
  return g_hash_table_contains (r->processes, GINT_TO_POINTER (pid));
}

static QpinPeer *
rec_identify (QpinHost *host, QpinQmpClient *client, GPid pid, GError **error)
{
  Recording *r = (Recording *) host;
  FakeProcess *p;
  QpinPeer *peer;

  if (r->below)
    return qpin_host_identify (r->below, client, pid, error);
  p = g_hash_table_lookup (r->processes, GINT_TO_POINTER (pid));
  if (p == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no process behind the monitor");
      return NULL;
    }
  peer = g_new0 (QpinPeer, 1);
  peer->pid = pid;
  peer->start_time = p->start_time;
  peer->uid = peer->euid = getuid ();
  peer->gid = peer->egid = getgid ();
  peer->groups = g_array_new (FALSE, FALSE, sizeof (guint32));
  peer->socket_uid = (uid_t) -1;
  return peer;
}

static gboolean
rec_is_current (QpinHost *host, const QpinPeer *peer, GError **error)
{
  Recording *r = (Recording *) host;
  FakeProcess *p;

  if (r->below)
    return qpin_host_is_current (r->below, peer, error);
  p = g_hash_table_lookup (r->processes, GINT_TO_POINTER (peer->pid));
  if (p == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "the process that opened the socket (pid %d) has exited", peer->pid);
      return FALSE;
    }
  if (p->start_time != peer->start_time)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "pid %d is no longer the process that opened the socket (pid reused)",
                   peer->pid);
      return FALSE;
    }
  return TRUE;
}

static gint64
rec_now_us (QpinHost *host)
{
  Recording *r = (Recording *) host;

  return r->below ? qpin_host_now_us (r->below) : g_get_monotonic_time ();
}

static void
rec_free (QpinHost *host)
{
  Recording *r = (Recording *) host;

  qpin_host_free (r->below);
  g_hash_table_unref (r->processes);
  g_hash_table_unref (r->threads);
  g_free (r->topology_root);
  g_string_free (r->log, TRUE);
  g_free (r);
}

static const QpinHostClass recording_class = {
  .list_tasks = rec_list_tasks,
  .read_task = rec_read_task,
  .pin = rec_pin,
  .allowed = rec_allowed,
  .set_sched = rec_set_sched,
  .migrate_memory = rec_migrate_memory,
  .read_topology = rec_read_topology,
  .process_exists = rec_process_exists,
  .identify = rec_identify,
  .is_current = rec_is_current,
  .now_us = rec_now_us,
  .free = rec_free,
};

/**
 * qpin_host_recording_new:
 * @below: (transfer full) (nullable): the host to read from (a dry run
 *   over the real one); %NULL for threads kept in memory
 *
 * Returns: (transfer full): a recording host
 */
QpinHost *
qpin_host_recording_new (QpinHost *below)
{
  Recording *r = g_new0 (Recording, 1);

  r->parent.klass = &recording_class;
  r->below = below;
  r->processes = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) fake_process_free);
  r->threads = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  r->next_start = 1000;
  r->log = g_string_new (NULL);
  return &r->parent;
}

/**
 * qpin_host_recording_set_topology_root:
 * @root: a sysfs capture (tests/fixtures/NAME) the topology is read from
 */
void
qpin_host_recording_set_topology_root (QpinHost *host, const char *root)
{
  Recording *r = (Recording *) host;

  g_free (r->topology_root);
  r->topology_root = g_strdup (root);
}

/**
 * qpin_host_recording_add_process:
 *
 * A new process @pid whose main thread (tid @pid) has @affinity.
 */
void
qpin_host_recording_add_process (QpinHost *host, GPid pid, const QpinCpuset *affinity)
{
  Recording *r = (Recording *) host;
  FakeProcess *p = g_new0 (FakeProcess, 1);

  p->pid = pid;
  p->start_time = r->next_start++;
  g_hash_table_replace (r->processes, GINT_TO_POINTER (pid), p);
  qpin_host_recording_add_thread (host, pid, pid, affinity);
}

/**
 * qpin_host_recording_add_thread:
 *
 * Thread @tid of @pid starts, with @affinity.
 */
void
qpin_host_recording_add_thread (QpinHost *host, GPid pid, GPid tid, const QpinCpuset *affinity)
{
  Recording *r = (Recording *) host;
  FakeThread *t = g_new0 (FakeThread, 1);

  t->pid = pid;
  t->tid = tid;
  t->affinity = *affinity;
  g_hash_table_replace (r->threads, GINT_TO_POINTER (tid), t);
}

/**
 * qpin_host_recording_remove_thread:
 *
 * Thread @tid exits.
 */
void
qpin_host_recording_remove_thread (QpinHost *host, GPid tid)
{
  g_hash_table_remove (((Recording *) host)->threads, GINT_TO_POINTER (tid));
}

static gboolean
thread_of (gpointer key, gpointer value, gpointer pid)
{
  return ((FakeThread *) value)->pid == GPOINTER_TO_INT (pid);
}

/**
 * qpin_host_recording_remove_process:
 *
 * Process @pid exits, with all its threads.
 */
void
qpin_host_recording_remove_process (QpinHost *host, GPid pid)
{
  Recording *r = (Recording *) host;

  g_hash_table_foreach_remove (r->threads, thread_of, GINT_TO_POINTER (pid));
  g_hash_table_remove (r->processes, GINT_TO_POINTER (pid));
}

/**
 * qpin_host_recording_reuse_pid:
 *
 * Process @pid exited and another got its pid: same threads, a new
 * start time.
 */
void
qpin_host_recording_reuse_pid (QpinHost *host, GPid pid)
{
  Recording *r = (Recording *) host;
  FakeProcess *p = g_hash_table_lookup (r->processes, GINT_TO_POINTER (pid));

  if (p)
    p->start_time = r->next_start++;
}

/**
 * qpin_host_recording_get_affinity:
 *
 * Returns: whether thread @tid exists; its affinity in @out
 */
gboolean
qpin_host_recording_get_affinity (QpinHost *host, GPid tid, QpinCpuset *out)
{
  gint cpu;

  return qpin_host_read_task (host, 0, tid, out, &cpu);
}

/**
 * qpin_host_recording_set_affinity:
 *
 * Someone else pins thread @tid to @cpus.
 */
void
qpin_host_recording_set_affinity (QpinHost *host, GPid tid, const QpinCpuset *cpus)
{
  FakeThread *t = g_hash_table_lookup (((Recording *) host)->threads, GINT_TO_POINTER (tid));

  if (t)
    t->affinity = *cpus;
}

/**
 * qpin_host_recording_fail:
 * @err: EPERM, ESRCH, EINVAL...; 0 to stop failing
 *
 * Every pin of thread @tid fails with @err from now on.
 */
void
qpin_host_recording_fail (QpinHost *host, GPid tid, int err)
{
  FakeThread *t = g_hash_table_lookup (((Recording *) host)->threads, GINT_TO_POINTER (tid));

  if (t)
    t->fail = err;
}

/**
 * qpin_host_recording_confine:
 * @allowed: its cgroup cpuset
 *
 * Pins of @pid's threads keep only the CPUs in @allowed; a pin to none
 * of them fails with EINVAL.
 */
void
qpin_host_recording_confine (QpinHost *host, GPid pid, const QpinCpuset *allowed)
{
  FakeProcess *p = g_hash_table_lookup (((Recording *) host)->processes, GINT_TO_POINTER (pid));

  if (p == NULL)
    return;
  g_free (p->allowed);
  p->allowed = g_memdup2 (allowed, sizeof *allowed);
}

/**
 * qpin_host_recording_cpu_offline:
 * @online: the CPUs still online
 *
 * Host CPU @cpu goes offline: as the kernel does, a thread that could
 * run only there may now run on every online CPU.
 */
void
qpin_host_recording_cpu_offline (QpinHost *host, guint cpu, const QpinCpuset *online)
{
  Recording *r = (Recording *) host;
  GHashTableIter iter;
  FakeThread *t;

  g_hash_table_iter_init (&iter, r->threads);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &t))
    {
      qpin_cpuset_remove (&t->affinity, cpu);
      if (qpin_cpuset_is_empty (&t->affinity))
        t->affinity = *online;
    }
}

/**
 * qpin_host_recording_get_log:
 *
 * Returns: (transfer none): what was asked of the host: "pin TID CPUS",
 *   "sched TID MODE:PRIO", "migrate PID NODES", one line each
 */
const char *
qpin_host_recording_get_log (QpinHost *host)
{
  return ((Recording *) host)->log->str;
}

/**
 * qpin_host_recording_clear_log:
 */
void
qpin_host_recording_clear_log (QpinHost *host)
{
  g_string_truncate (((Recording *) host)->log, 0);
}
