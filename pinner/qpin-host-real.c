/* qpin-host-real.c: the host seam on the kernel (/proc, sched_*, sysfs) */

#include "qpin-host.h"

#include "qpin-effects.h"
#include "qpin-pin.h"
#include "qpin-proc.h"
#include "qpin-topology-reader.h"

static GArray *
real_list_tasks (QpinHost *host, GPid pid, GError **error)
{
  return qpin_proc_list_tasks (pid, error);
}

static gboolean
real_read_task (QpinHost *host, GPid pid, GPid tid, QpinCpuset *affinity, gint *cpu)
{
  *cpu = qpin_proc_last_cpu (pid, tid);
  if (qpin_proc_get_affinity (tid, affinity, NULL))
    return TRUE;
  qpin_cpuset_clear_all (affinity);
  return FALSE;
}

static gboolean
real_pin (QpinHost *host, GPid pid, GPid tid, const QpinCpuset *cpus, QpinCpuset *applied,
          GError **error)
{
  return qpin_pin_thread (pid, tid, cpus, applied, error);
}

static gboolean
real_allowed (QpinHost *host, GPid pid, GPid tid, QpinCpuset *allowed, GError **error)
{
  return qpin_pin_allowed (pid, tid, allowed, error);
}

static gboolean
real_set_sched (QpinHost *host, GPid pid, GPid tid, QpinSchedMode mode, guint priority,
                GError **error)
{
  return qpin_effects_set_sched (pid, tid, mode, priority, error);
}

static gboolean
real_migrate_memory (QpinHost *host, GPid pid, const QpinCpuset *nodes, int *unmoved,
                     GError **error)
{
  return qpin_effects_migrate_memory (pid, nodes, unmoved, error);
}

static QpinTopology *
real_read_topology (QpinHost *host, GError **error)
{
  return qpin_topology_read ("/", NULL, error);
}

static gboolean
real_process_exists (QpinHost *host, GPid pid)
{
  char proc[32];

  g_snprintf (proc, sizeof proc, "/proc/%d", pid);
  return g_file_test (proc, G_FILE_TEST_EXISTS);
}

static QpinPeer *
real_identify (QpinHost *host, QpinQmpClient *client, GPid pid, GError **error)
{
  return qpin_peer_new_for_client (client, pid, error);
}

static gboolean
real_is_current (QpinHost *host, const QpinPeer *peer, GError **error)
{
  return qpin_peer_is_current (peer, error);
}

static gint64
real_now_us (QpinHost *host)
{
  return g_get_monotonic_time ();
}

static void
real_free (QpinHost *host)
{
  g_free (host);
}

static const QpinHostClass real_class = {
  .list_tasks = real_list_tasks,
  .read_task = real_read_task,
  .pin = real_pin,
  .allowed = real_allowed,
  .set_sched = real_set_sched,
  .migrate_memory = real_migrate_memory,
  .read_topology = real_read_topology,
  .process_exists = real_process_exists,
  .identify = real_identify,
  .is_current = real_is_current,
  .now_us = real_now_us,
  .free = real_free,
};

/**
 * qpin_host_new_real:
 *
 * Returns: (transfer full): the host seam on this machine's kernel
 */
QpinHost *
qpin_host_new_real (void)
{
  QpinHost *host = g_new0 (QpinHost, 1);

  host->klass = &real_class;
  return host;
}
