/* qpin-apply.c: the plan applied to a VM's threads
 *
 * Pins each thread through the host, verifies, sorts the refusals by
 * errno (EPERM: hands off the VM; ESRCH: look again; EINVAL or a narrowed
 * mask: learn the cgroup cpuset and re-plan inside it), deals with drift
 * as enforce says, and applies sched and memory=migrate.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include "qpin-proc.h"

/* A thread that was pinned and verified and now has another affinity was
 * moved by someone else: drift.  enforce decides what happens to it.
 * Returns TRUE when it is to be pinned back. */
static gboolean
handle_drift (QpinVm *vm, const QpinVmThread *t, ThreadState *st, const QpinCpuset *planned)
{
  QpinEnforce enforce = vm->registry->options.enforce;
  QpinCpuset actual;
  g_autofree char *had = NULL;
  g_autofree char *want = qpin_cpuset_format (planned);

  qpin_cpuset_unpack (&st->actual, &actual);
  had = qpin_cpuset_format (&actual);

  if (enforce == QPIN_ENFORCE_REPAIR && vm->registry->host_change)
    {
      g_message ("vm '%s': %s %d (tid %d) had '%s': the kernel changed it after %s; re-pinning "
                 "to '%s'",
                 vm->key, qpin_thread_role_to_string (t->role), t->index, t->tid, had,
                 vm->registry->host_change, want);
      return TRUE;
    }
  if (enforce == QPIN_ENFORCE_REPAIR)
    {
      g_message ("vm '%s': drift: %s %d (tid %d) had '%s', repairing to '%s'", vm->key,
                 qpin_thread_role_to_string (t->role), t->index, t->tid, had, want);
      vm->drift_repairs++;
      return TRUE;
    }
  if (enforce == QPIN_ENFORCE_REPORT && !st->drift)
    g_message ("vm '%s': drift: %s %d (tid %d) has '%s', planned '%s' (enforce=report)", vm->key,
               qpin_thread_role_to_string (t->role), t->index, t->tid, had, want);
  st->drift = enforce == QPIN_ENFORCE_REPORT;
  return FALSE;
}

/* sched for the vCPU threads, and memory=migrate when the VM's memory
 * nodes changed.  Returns the number of threads that failed. */
static guint
apply_effects (QpinVm *vm, const QpinPlanVm *plan)
{
  const QpinPolicy *policy = plan->policy;
  guint failed = 0, scheduled = 0;

  for (guint i = 0; policy->sched != QPIN_SCHED_OTHER && i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      ThreadState *st = &g_array_index (vm->states, ThreadState, i);
      g_autoptr (GError) error = NULL;

      if (t->role != QPIN_ROLE_VCPU || st->error)
        continue;
      if (qpin_host_set_sched (vm->registry->host, vm->pid, t->tid, policy->sched,
                               policy->sched_priority, &error))
        {
          scheduled++;
          continue;
        }
      st->error = g_strdup (error->message);
      st->applied = FALSE;
      failed++;
    }
  if (scheduled)
    {
      g_autofree char *sched = qpin_policy_get (policy, "sched");
      g_info ("vm '%s': %u vCPU threads scheduled %s", vm->key, scheduled, sched);
    }
  if (policy->memory == QPIN_MEMORY_MIGRATE)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *nodes = NULL;
      QpinCpuset mem_nodes;
      int unmoved;

      qpin_cpuset_unpack (&plan->mem_nodes, &mem_nodes);
      nodes = qpin_cpuset_format (&mem_nodes);
      if (g_strcmp0 (vm->migrated, nodes) == 0)
        return failed;

      g_free (vm->memory);
      if (qpin_host_migrate_memory (vm->registry->host, vm->pid, &mem_nodes, &unmoved, &error))
        {
          g_free (vm->migrated);
          vm->migrated = g_strdup (nodes);
          vm->memory
            = g_strdup_printf ("migrated to node(s) %s, %d page(s) not moved", nodes, unmoved);
          g_message ("vm '%s': memory %s", vm->key, vm->memory);
        }
      else
        {
          vm->memory = g_strdup (error->message);
          g_warning ("vm '%s': %s", vm->key, error->message);
        }
    }
  return failed;
}

/* The kernel refused a pin of thread @t (EINVAL, or it kept fewer CPUs):
 * its cgroup cpuset forbids some of them.  Learns what it allows; TRUE
 * when that narrows the VM further, so it is to be re-planned. */
static gboolean
confine (QpinVm *vm, const QpinVmThread *t)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *list = NULL;
  QpinCpuset allowed;

  if (!qpin_host_allowed (vm->registry->host, vm->pid, t->tid, &allowed, &error))
    {
      g_warning ("vm '%s': cannot tell which CPUs %s %d (tid %d) may use: %s", vm->key,
                 qpin_thread_role_to_string (t->role), t->index, t->tid, error->message);
      return FALSE;
    }
  if (vm->confined && qpin_cpuset_is_subset (vm->confined, &allowed))
    return FALSE; /* nothing new: planned inside it already */
  if (vm->confined)
    qpin_cpuset_and (&allowed, vm->confined);
  g_free (vm->confined);
  vm->confined = g_memdup2 (&allowed, sizeof allowed);
  list = qpin_cpuset_format (&allowed);
  g_message ("vm '%s': %s %d (tid %d) may only use cpus %s (its cgroup cpuset): re-planning "
             "the VM inside them",
             vm->key, qpin_thread_role_to_string (t->role), t->index, t->tid, list);
  return TRUE;
}

typedef struct {
  guint pinned, failed, moved, changed;
  gboolean replan; /* a refusal taught qpin the VM's cgroup cpuset */
} Tally;

/* The kernel refused to pin thread @t (@error), sorted by errno.  FALSE
 * when qpin is to keep its hands off the VM (EPERM). */
static gboolean
sort_refusal (QpinVm *vm, const QpinVmThread *t, ThreadState *st, const GError *error, Tally *tally)
{
  st->error = g_strdup (error->message);
  tally->failed++;
  qpin_vm_count_pin_error (vm, error);
  if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_PERMISSION))
    {
      vm->untouchable = TRUE;
      qpin_vm_set_error (vm, QPIN_VM_FAILED,
                         "permission denied setting CPU affinity: run qpin as root or with "
                         "CAP_SYS_NICE; not touching this VM again");
      return FALSE;
    }
  if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE))
    {
      QpinCpuset left;
      gint cpu;

      vm->again = TRUE; /* the thread list changed under us: look again */
      vm->again_now = FALSE;
      if (!qpin_host_read_task (vm->registry->host, vm->pid, t->tid, &left, &cpu))
        {
          /* it exited (a worker ending, QEMU going away): nothing was
           * left to pin, so not a failure; the next look drops it */
          g_clear_pointer (&st->error, g_free);
          tally->failed--;
        }
    }
  if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_INVALID))
    tally->replan |= confine (vm, t);
  return TRUE;
}

/* Thread @i to @planned, unless it is there already or its drift is to
 * be left as found.  FALSE: hands off the VM. */
static gboolean
pin_one (QpinVm *vm, guint i, const QpinCpuset *planned, Tally *tally)
{
  const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
  ThreadState *st = &g_array_index (vm->states, ThreadState, i);
  gboolean was_pinned = st->applied && qpin_cpuset_packed_equal (&st->planned, planned);
  g_autoptr (GError) error = NULL;
  g_autofree char *want = NULL;
  QpinCpuset actual;
  gboolean ok;

  qpin_cpuset_pack (&st->planned, planned);
  st->applied = FALSE;
  if (qpin_cpuset_packed_equal (&st->actual, planned))
    {
      st->applied = TRUE;
      st->drift = FALSE;
      tally->pinned++;
      return TRUE;
    }
  if (was_pinned && !handle_drift (vm, t, st, planned))
    {
      st->applied = TRUE; /* pinned as planned once; left as found */
      tally->pinned++;
      return TRUE;
    }
  want = qpin_cpuset_format (planned);
  qpin_cpuset_unpack (&st->actual, &actual);
  ok = qpin_host_pin (vm->registry->host, vm->pid, t->tid, planned, &actual, &error);
  qpin_cpuset_pack (&st->actual, &actual);
  if (!ok)
    return sort_refusal (vm, t, st, error, tally);
  g_info ("vm '%s': %s %d (tid %d) -> %s", vm->key, qpin_thread_role_to_string (t->role), t->index,
          t->tid, want);
  st->applied = TRUE;
  st->drift = FALSE;
  tally->pinned++;
  tally->moved++;
  return TRUE;
}

/* Thread @i of @vm to its plan.  FALSE: hands off the VM. */
static gboolean
apply_thread (QpinVm *vm, const QpinPlanVm *plan, guint i, Tally *tally)
{
  const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
  ThreadState *st = &g_array_index (vm->states, ThreadState, i);
  QpinCpuset planned;

  g_clear_pointer (&st->error, g_free);
  /* an empty set would be refused by the kernel (EINVAL) anyway */
  if (!qpin_vm_planned_cpus (vm, plan, t, &planned) || qpin_cpuset_is_empty (&planned))
    {
      qpin_cpuset_packed_clear (&st->planned);
      st->applied = FALSE;
      st->error = g_strdup ("the plan has no CPU for it");
      tally->failed++;
      return TRUE;
    }
  /* during qpin hotplug the main thread sits on the newcomer's CPU so
   * the new vCPU thread inherits it: not drift, leave it */
  if (vm->holding_main && t->role == QPIN_ROLE_EMULATOR)
    {
      qpin_cpuset_pack (&st->planned, &planned);
      st->applied = TRUE;
      tally->pinned++;
      return TRUE;
    }
  if (vm->registry->options.dry_run)
    {
      /* nothing is pinned: the plan beside the kernel's affinity */
      tally->changed += !qpin_cpuset_packed_equal (&st->planned, &planned);
      qpin_cpuset_pack (&st->planned, &planned);
      st->applied = FALSE;
      tally->pinned++;
      return TRUE;
    }
  if (!pin_one (vm, i, &planned, tally))
    return FALSE;
  qpin_vm_count_pinned (vm, t, st);
  return TRUE;
}

/* Every thread was looked at: effects, the VM's state, the ledger. */
static void
apply_finish (QpinVm *vm, const QpinPlanVm *plan, Tally *tally)
{
  QpinRegistry *registry = vm->registry;

  if (registry->options.dry_run)
    {
      if (tally->changed)
        g_message ("vm '%s' (pid %d): planned %u of %u threads, pinned none [dry run]", vm->key,
                   vm->pid, tally->pinned, tally->pinned + tally->failed);
      qpin_vm_set_error (vm, tally->failed ? QPIN_VM_DEGRADED : QPIN_VM_PLANNED,
                         tally->failed ? "the plan has no CPU for some threads" : NULL);
      return;
    }
  tally->failed += apply_effects (vm, plan);
  if (tally->moved)
    g_message ("vm '%s' (pid %d): pinned %u of %u threads (%u moved%s%s)", vm->key, vm->pid,
               tally->pinned, tally->pinned + tally->failed, tally->moved,
               registry->host_change ? " after " : "",
               registry->host_change ? registry->host_change : "");
  if (tally->failed)
    qpin_vm_set_error (vm, QPIN_VM_DEGRADED, "some threads could not be pinned as planned");
  else
    qpin_vm_set_error (vm, QPIN_VM_PINNED, NULL);
  qpin_registry_save_ledger (registry);
}

/**
 * qpin_vm_apply:
 *
 * Pins every thread of @vm to its plan, verifies, and notes what failed.
 * A thread already where it belongs is not touched.
 */
void
qpin_vm_apply (QpinVm *vm)
{
  const QpinPlanVm *plan = qpin_vm_plan_of (vm);
  Tally tally = { 0 };

  /* only threads of the process instance the VM is: settle() ends a VM
   * whose pid was reused, so look again before pinning anything */
  if (vm->peer && !qpin_host_is_current (vm->registry->host, vm->peer, NULL))
    {
      qpin_vm_discover_soon (vm);
      return;
    }
  for (guint i = 0; i < vm->threads->len; i++)
    if (!apply_thread (vm, plan, i, &tally))
      return;
  if (tally.replan)
    {
      g_autoptr (GError) error = NULL;
      QpinPolicy *policy = qpin_vm_policy_for (vm, &error);

      if (policy != NULL)
        {
          qpin_vm_replace (vm, policy, "inside its cgroup cpuset");
          return;
        }
      g_warning ("vm '%s': %s", vm->key, error->message);
    }
  apply_finish (vm, plan, &tally);
}
