/* qpin-host.c: the host seam's calls, see qpin-host.h */

#include "qpin-host.h"

/**
 * qpin_host_free:
 *
 * Frees @host (either implementation); %NULL is ignored.
 */
void
qpin_host_free (QpinHost *host)
{
  if (host)
    host->klass->free (host);
}

/**
 * qpin_host_list_tasks:
 *
 * Returns: (transfer full) (element-type GPid): the thread ids of @pid,
 *   sorted; %NULL with QPIN_PINNER_ERROR_GONE when the process is gone
 */
GArray *
qpin_host_list_tasks (QpinHost *host, GPid pid, GError **error)
{
  return host->klass->list_tasks (host, pid, error);
}

/**
 * qpin_host_read_task:
 * @affinity: (out): the thread's affinity, empty when unreadable
 * @cpu: (out): the CPU it last ran on, -1 when unknown
 *
 * Returns: whether the affinity could be read
 */
gboolean
qpin_host_read_task (QpinHost *host, GPid pid, GPid tid, QpinCpuset *affinity, gint *cpu)
{
  return host->klass->read_task (host, pid, tid, affinity, cpu);
}

/**
 * qpin_host_pin:
 * @applied: (out) (optional): what the kernel applied
 *
 * Pins thread @tid of @pid to @cpus and verifies it, as qpin_pin_thread().
 */
gboolean
qpin_host_pin (QpinHost *host, GPid pid, GPid tid, const QpinCpuset *cpus, QpinCpuset *applied,
               GError **error)
{
  return host->klass->pin (host, pid, tid, cpus, applied, error);
}

/**
 * qpin_host_allowed:
 * @allowed: (out): the CPUs the kernel lets @tid use
 *
 * As qpin_pin_allowed(): leaves the thread on all of them.
 */
gboolean
qpin_host_allowed (QpinHost *host, GPid pid, GPid tid, QpinCpuset *allowed, GError **error)
{
  return host->klass->allowed (host, pid, tid, allowed, error);
}

/**
 * qpin_host_set_sched:
 *
 * Sets the scheduling class of thread @tid, as qpin_effects_set_sched().
 */
gboolean
qpin_host_set_sched (QpinHost *host, GPid pid, GPid tid, QpinSchedMode mode, guint priority,
                     GError **error)
{
  return host->klass->set_sched (host, pid, tid, mode, priority, error);
}

/**
 * qpin_host_migrate_memory:
 * @unmoved: (out): pages not moved
 *
 * Moves the memory of @pid to @nodes, as qpin_effects_migrate_memory().
 */
gboolean
qpin_host_migrate_memory (QpinHost *host, GPid pid, const QpinCpuset *nodes, int *unmoved,
                          GError **error)
{
  return host->klass->migrate_memory (host, pid, nodes, unmoved, error);
}

/**
 * qpin_host_read_topology:
 *
 * Returns: (transfer full): the host's topology as it is now, or %NULL
 */
QpinTopology *
qpin_host_read_topology (QpinHost *host, GError **error)
{
  return host->klass->read_topology (host, error);
}

/**
 * qpin_host_process_exists:
 *
 * Returns: whether a process @pid runs
 */
gboolean
qpin_host_process_exists (QpinHost *host, GPid pid)
{
  return host->klass->process_exists (host, pid);
}

/**
 * qpin_host_identify:
 * @pid: the process; 0 to take it from the socket peer
 *
 * Returns: (transfer full): the process instance behind @client, or
 *   %NULL when it cannot be pinned down
 */
QpinPeer *
qpin_host_identify (QpinHost *host, QpinQmpClient *client, GPid pid, GError **error)
{
  return host->klass->identify (host, client, pid, error);
}

/**
 * qpin_host_is_current:
 *
 * Returns: whether @peer's process instance still runs (not exited, its
 *   pid not reused)
 */
gboolean
qpin_host_is_current (QpinHost *host, const QpinPeer *peer, GError **error)
{
  return host->klass->is_current (host, peer, error);
}

/**
 * qpin_host_now_us:
 *
 * Returns: the monotonic clock, in microseconds
 */
gint64
qpin_host_now_us (QpinHost *host)
{
  return host->klass->now_us (host);
}
