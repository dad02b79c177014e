/* qpin-pin.c: sched_setaffinity with the ownership check and the read-back
 *
 * errno is sorted by meaning, as irqbalance does: ESRCH means the thread
 * is gone (rescan), EINVAL that no CPU of the mask is usable for it
 * (offline, or outside its cgroup cpuset: re-plan), EPERM that qpin may
 * not touch it (report, stop touching that VM).
 */

#include "qpin-pin.h"

#include <errno.h>
#include <sched.h>

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
    case EACCES:
      return QPIN_PINNER_ERROR_PERMISSION;
    default:
      return QPIN_PINNER_ERROR_FAILED;
    }
}

/**
 * qpin_pin_thread:
 * @pid: the process @tid must belong to
 * @cpus: the wanted affinity
 * @applied: (out) (optional): the affinity the kernel reports afterwards
 *
 * Pins thread @tid of process @pid to @cpus and verifies it.  A TID that
 * is not a thread of @pid is never touched (QPIN_PINNER_ERROR_GONE).  When
 * the kernel narrows the mask (a cgroup cpuset), the call fails with
 * QPIN_PINNER_ERROR_INVALID and @applied tells what it kept.
 */
gboolean
qpin_pin_thread (GPid pid, GPid tid, const QpinCpuset *cpus, QpinCpuset *applied, GError **error)
{
  gsize size = CPU_ALLOC_SIZE (QPIN_CPUSET_MAX);
  g_autofree cpu_set_t *mask = CPU_ALLOC (QPIN_CPUSET_MAX);
  QpinCpuset now;
  int rc, err;

  if (!qpin_proc_task_belongs (pid, tid))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE,
                   "thread %d is not (or no longer) a thread of process %d", tid, pid);
      return FALSE;
    }
  CPU_ZERO_S (size, mask);
  QPIN_CPUSET_FOREACH (c, cpus)
    CPU_SET_S ((size_t) c, size, mask);
  rc = sched_setaffinity (tid, size, mask);
  err = errno;
  if (rc != 0)
    {
      g_autofree char *list = qpin_cpuset_format (cpus);
      g_set_error (error, QPIN_PINNER_ERROR, error_code_of (err),
                   "cannot pin thread %d of process %d to '%s': %s", tid, pid, list,
                   g_strerror (err));
      return FALSE;
    }
  if (!qpin_proc_get_affinity (tid, &now, error))
    return FALSE;
  if (applied)
    *applied = now;
  if (!qpin_cpuset_equal (&now, cpus))
    {
      g_autofree char *want = qpin_cpuset_format (cpus);
      g_autofree char *got = qpin_cpuset_format (&now);
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_INVALID,
                   "thread %d of process %d: asked for '%s', the kernel applied '%s'", tid, pid,
                   want, got);
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_pin_allowed:
 * @allowed: (out): the CPUs the kernel lets @tid use
 *
 * Asks the kernel which CPUs thread @tid of @pid may run on: its cgroup
 * cpuset (v1 or v2, however mounted) and the online CPUs.  It asks by
 * doing: the thread is given every CPU, which the kernel narrows to the
 * allowed ones, and the result is read back.  So the thread is left on
 * all of its allowed CPUs, as an unpinned thread is; the caller pins it
 * again at once.  Only for a thread that refused a pin (EINVAL).
 */
gboolean
qpin_pin_allowed (GPid pid, GPid tid, QpinCpuset *allowed, GError **error)
{
  QpinCpuset all;
  g_autoptr (GError) local = NULL;

  qpin_cpuset_clear_all (allowed);
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, QPIN_CPUSET_MAX - 1);
  if (qpin_pin_thread (pid, tid, &all, allowed, &local)
      || g_error_matches (local, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_INVALID))
    {
      if (!qpin_cpuset_is_empty (allowed))
        return TRUE;
    }
  if (local == NULL)
    local = g_error_new (QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                         "thread %d of process %d may run on no CPU", tid, pid);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}
