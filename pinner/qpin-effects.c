/* qpin-effects.c: sched_setscheduler and migrate_pages, checked like pins */

#include "qpin-effects.h"

#include <errno.h>
#include <numa.h>
#include <sched.h>

#include "qpin-proc.h"

/**
 * qpin_effects_set_sched:
 * @mode: other, fifo or rr
 * @priority: 1-99 for fifo and rr
 *
 * Sets the scheduling class of thread @tid of @pid; a thread already in it
 * is not touched.  A TID that is not a thread of @pid never is.
 */
gboolean
qpin_effects_set_sched (GPid pid, GPid tid, QpinSchedMode mode, guint priority, GError **error)
{
  int policy = mode == QPIN_SCHED_FIFO ? SCHED_FIFO
               : mode == QPIN_SCHED_RR ? SCHED_RR
                                       : SCHED_OTHER;
  struct sched_param param = { .sched_priority = policy == SCHED_OTHER ? 0 : (int) priority };
  struct sched_param now = { 0 };
  int err;

  if (!qpin_proc_task_belongs (pid, tid))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE,
                   "thread %d is not (or no longer) a thread of process %d", tid, pid);
      return FALSE;
    }
  if (sched_getscheduler (tid) == policy && sched_getparam (tid, &now) == 0
      && now.sched_priority == param.sched_priority)
    return TRUE;
  if (sched_setscheduler (tid, policy, &param) == 0)
    return TRUE;
  err = errno;
  g_set_error (error, QPIN_PINNER_ERROR,
               err == EPERM   ? QPIN_PINNER_ERROR_PERMISSION
               : err == ESRCH ? QPIN_PINNER_ERROR_GONE
                              : QPIN_PINNER_ERROR_FAILED,
               "cannot set the scheduling class of thread %d to '%s:%d': %s", tid,
               policy == SCHED_FIFO ? "fifo"
               : policy == SCHED_RR ? "rr"
                                    : "other",
               param.sched_priority, g_strerror (err));
  return FALSE;
}

/**
 * qpin_effects_migrate_memory:
 * @nodes: the node ids the VM's memory belongs on
 * @unmoved: (out): pages the kernel could not move
 *
 * Moves the pages of @pid from every other node to @nodes
 * (migrate_pages(2)).  Pages faulted later follow the kernel's default,
 * local to the pinned thread that touches them.  On a kernel without NUMA
 * it does nothing and succeeds.
 */
gboolean
qpin_effects_migrate_memory (GPid pid, const QpinCpuset *nodes, int *unmoved, GError **error)
{
  struct bitmask *from, *to;
  gboolean any_from = FALSE;
  int rc = 0, err = 0;

  *unmoved = 0;
  if (qpin_cpuset_is_empty (nodes))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "memory=migrate: the plan names no memory node");
      return FALSE;
    }
  if (numa_available () < 0)
    return TRUE;
  from = numa_allocate_nodemask ();
  to = numa_allocate_nodemask ();
  for (int n = 0; n <= numa_max_node (); n++)
    {
      if (qpin_cpuset_has (nodes, (guint) n))
        numa_bitmask_setbit (to, (unsigned int) n);
      else if (numa_bitmask_isbitset (numa_all_nodes_ptr, (unsigned int) n))
        {
          numa_bitmask_setbit (from, (unsigned int) n);
          any_from = TRUE;
        }
    }
  if (any_from)
    {
      rc = numa_migrate_pages (pid, from, to);
      err = errno;
    }
  numa_free_nodemask (from);
  numa_free_nodemask (to);
  if (rc < 0)
    {
      g_autofree char *list = qpin_cpuset_format (nodes);
      g_set_error (error, QPIN_PINNER_ERROR,
                   err == EPERM ? QPIN_PINNER_ERROR_PERMISSION : QPIN_PINNER_ERROR_FAILED,
                   "memory=migrate: cannot move the pages of process %d to node(s) '%s': %s", pid,
                   list, g_strerror (err));
      return FALSE;
    }
  *unmoved = rc;
  return TRUE;
}
