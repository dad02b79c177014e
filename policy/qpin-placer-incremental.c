/* qpin-placer-incremental.c: changes that never move existing pins: a
 * thread added or removed, a VM removed, a CPU lost, a VM adopted
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

static QpinPlanVm *
find_vm (QpinPlacer *p, const char *name, GError **error)
{
  QpinPlanVm *vm = qpin_placer_vm (p, name);
  if (vm == NULL)
    g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT, "vm '%s' is not placed",
                 name);
  return vm;
}

/* The host core of a placed guest sibling of thread t, or -1. */
static gint
sibling_core (const QpinPlacer *p, const QpinPlanVm *vm, guint t)
{
  const QpinThreadSpec *s = &g_array_index (vm->threads, QpinPlanThread, t).spec;

  if (s->role != QPIN_ROLE_VCPU || s->topo.core < 0)
    return -1;
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *o = &g_array_index (vm->threads, QpinPlanThread, i);
      if (i == t || o->spec.role != QPIN_ROLE_VCPU || !o->exclusive
          || o->spec.topo.socket != s->topo.socket || o->spec.topo.die != s->topo.die
          || o->spec.topo.cluster != s->topo.cluster || o->spec.topo.core != s->topo.core
          || o->spec.topo.node != s->topo.node)
        continue;
      return p->topo->cpu_core[qpin_cpuset_packed_first (&o->cpus)];
    }
  return -1;
}

/* Takes one CPU for thread t of a placed VM: its cpumap entry, else the
 * best single CPU (core @k). */
static gboolean
one_take (QpinPlacer *p, QpinPlanVm *vm, guint t, gint k, gboolean isolate, GError **error)
{
  gint slot = qpin_placer_slot_of (p, vm);
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));
  guint cpu;

  th->changed = TRUE;
  if (th->spec.role == QPIN_ROLE_VCPU && vm->policy->cpus == QPIN_CPUS_MANUAL)
    return qpin_placer_manual_take (p, slot, t, undo, error);
  cpu = (guint) core_take (p, (guint) k);
  if (!qpin_placer_hold (p, cpu, slot, KIND_EXCLUSIVE, (gint) t, error))
    return FALSE;
  qpin_cpuset_packed_clear (&th->cpus);
  qpin_cpuset_packed_add (&th->cpus, cpu);
  th->exclusive = TRUE;
  if (isolate && !qpin_placer_hold_siblings (p, slot, (guint) k, undo, error))
    {
      qpin_placer_release_thread (p, vm, t);
      return FALSE;
    }
  return TRUE;
}

/* Gives thread t of a placed VM its own CPU (vCPU of a dedicated or manual
 * VM, or an isolated emulator/iothread); degrades to floating with a note
 * if none is free or it would take the shared pool's last CPU. */
static gboolean
place_one_inside (QpinPlacer *p, QpinPlanVm *vm, guint t, GError **error)
{
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  gboolean vcpu = th->spec.role == QPIN_ROLE_VCPU;
  gboolean manual = vcpu && vm->policy->cpus == QPIN_CPUS_MANUAL;
  gboolean isolate = vcpu && vm->policy->smt == QPIN_SMT_ISOLATE;
  const char *role = qpin_thread_role_to_string (th->spec.role);
  g_autofree char *needs = NULL;
  g_autoptr (GError) local = NULL;
  QpinCpuset cpus;
  gint k = manual ? 0
                  : qpin_placer_pick_single (p, qpin_placer_slot_of (p, vm),
                                             sibling_core (p, vm, t), isolate, vcpu);

  if (k >= 0)
    {
      if (!one_take (p, vm, t, k, isolate, error))
        return FALSE;
      if (!qpin_placer_pool_emptied (p, vm, (gint) t))
        return TRUE;
      qpin_cpuset_unpack (&th->cpus, &cpus);
      needs = manual ? qpin_placer_manual_needs (&cpus)
                     : g_strdup_printf ("%s %u needs 1 %s", role, th->spec.index,
                                        qpin_placer_unit_name (isolate, 1));
      qpin_placer_release_thread (p, vm, t);
      qpin_placer_pool_refuse (p, vm, needs, isolate, (gint) t, &local);
    }
  else
    {
      g_autoptr (GString) s = g_string_new (NULL);
      needs = g_strdup_printf ("%s %u needs 1 %s", role, th->spec.index,
                               qpin_placer_unit_name (isolate, 1));
      g_string_append_printf (s, "vm '%s': %s, ", vm->name, needs);
      qpin_placer_append_free (p, vm, isolate, NULL, 0, NULL, s);
      local = g_error_new_literal (QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT, s->str);
    }
  if (vm->policy->overcommit == QPIN_OVERCOMMIT_REFUSE)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  qpin_plan_vm_add_note (vm, "overcommitted: %s %u floats on a shared pool (%s)", role,
                         th->spec.index, local->message);
  th->exclusive = FALSE;
  return TRUE;
}

/* One thread of a placed VM, inside its cpuset if it has one. */
static gboolean
place_one (QpinPlacer *p, QpinPlanVm *vm, guint t, GError **error)
{
  QpinCpuset saved;
  gboolean confined = qpin_placer_confine (p, vm, &saved);
  gboolean ok = place_one_inside (p, vm, t, error);

  qpin_placer_unconfine (p, confined, &saved);
  return ok;
}

static gboolean
wants_own_cpu (const QpinPlanVm *vm, const QpinThreadSpec *spec)
{
  if (spec->role == QPIN_ROLE_VCPU)
    return !vm->floating && vm->policy->cpus != QPIN_CPUS_SHARED;
  if (spec->role == QPIN_ROLE_EMULATOR)
    return vm->policy->emulator == QPIN_AUX_ISOLATE;
  if (spec->role == QPIN_ROLE_IOTHREAD)
    return vm->policy->iothreads == QPIN_AUX_ISOLATE;
  return FALSE;
}

/**
 * qpin_placer_note_waiting:
 * @reason: why qpin_placer_add_thread() refused the thread
 *
 * Says in the VM's notes that a thread which runs but was refused a
 * place waits for one ("waiting: vcpu 1 has no cpu (...)"), until
 * qpin_placer_add_thread() places it.
 *
 * Returns: %TRUE if that is news (not noted already with this reason).
 */
gboolean
qpin_placer_note_waiting (QpinPlacer *p, const char *vm_name, const QpinThreadSpec *spec,
                          const char *reason)
{
  QpinPlanVm *vm = qpin_placer_vm (p, vm_name);

  return vm == NULL || qpin_pool_note_waiting (vm, spec, reason);
}

/**
 * qpin_placer_add_note:
 *
 * Adds a note to a placed VM's plan, for what only the caller knows (the
 * VM was adopted from running pins, its cgroup narrows it): the plan is
 * the placer's, so notes go through it.
 *
 * Returns: %FALSE if @vm_name is not placed.
 */
gboolean
qpin_placer_add_note (QpinPlacer *p, const char *vm_name, const char *format, ...)
{
  QpinPlanVm *vm = qpin_placer_vm (p, vm_name);
  g_autofree char *note = NULL;
  va_list args;

  if (vm == NULL)
    return FALSE;
  va_start (args, format);
  note = g_strdup_vprintf (format, args);
  va_end (args);
  qpin_plan_vm_add_note (vm, "%s", note);
  return TRUE;
}

/**
 * qpin_placer_add_thread:
 *
 * Adds one thread to a placed VM (a hot-plugged vCPU, a new iothread)
 * without moving any existing pin: a vCPU lands beside its guest siblings
 * (the free SMT sibling of a guest sibling's CPU first), else near the
 * VM's other CPUs.
 *
 * Returns: %TRUE on success; %QPIN_POLICY_ERROR_NO_FIT with
 * overcommit=refuse when no CPU is free (the thread is then not added).
 */
gboolean
qpin_placer_add_thread (QpinPlacer *p, const char *vm_name, const QpinThreadSpec *spec,
                        GError **error)
{
  QpinPlanVm *vm = find_vm (p, vm_name, error);
  QpinPlanThread t = { 0 };

  if (vm == NULL)
    return FALSE;
  if (qpin_plan_vm_find_thread (vm, spec->role, spec->index))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "vm '%s' already has %s %u", vm_name, qpin_thread_role_to_string (spec->role),
                   spec->index);
      return FALSE;
    }
  qpin_placer_clear_changed (p);
  t.spec = *spec;
  t.changed = TRUE;
  g_array_append_val (vm->threads, t);
  if (wants_own_cpu (vm, spec) && !place_one (p, vm, vm->threads->len - 1, error))
    {
      g_array_set_size (vm->threads, vm->threads->len - 1);
      return FALSE;
    }
  qpin_pool_forget_waiting (vm, spec);
  qpin_placer_finalize (p, vm);
  return TRUE;
}

/**
 * qpin_placer_remove_thread:
 *
 * Removes a thread (a vCPU unplugged) and frees what it held.
 *
 * Returns: %TRUE on success; %QPIN_POLICY_ERROR_CONFLICT if there is no such thread.
 */
gboolean
qpin_placer_remove_thread (QpinPlacer *p, const char *vm_name, QpinThreadRole role, guint index,
                           GError **error)
{
  QpinPlanVm *vm = find_vm (p, vm_name, error);
  gint found;
  guint t;

  if (vm == NULL)
    return FALSE;
  found = qpin_plan_vm_thread_position (vm, role, index);
  if (found < 0)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT, "vm '%s' has no %s %u",
                   vm_name, qpin_thread_role_to_string (role), index);
      return FALSE;
    }
  qpin_placer_clear_changed (p);
  t = (guint) found;
  qpin_placer_release_thread (p, vm, t);
  g_array_remove_index (vm->threads, t);
  qpin_placer_renumber (p, qpin_placer_slot_of (p, vm), t);
  qpin_placer_finalize (p, vm);
  return TRUE;
}

/**
 * qpin_placer_remove_vm:
 *
 * Forgets a VM and frees every CPU it held.
 *
 * Returns: %TRUE on success; %QPIN_POLICY_ERROR_CONFLICT if it is not placed.
 */
gboolean
qpin_placer_remove_vm (QpinPlacer *p, const char *vm_name, GError **error)
{
  QpinPlanVm *vm = find_vm (p, vm_name, error);

  if (vm == NULL)
    return FALSE;
  qpin_placer_clear_changed (p);
  qpin_placer_drop_vm (p, vm);
  qpin_placer_finalize_changed (p, NULL);
  return TRUE;
}

/**
 * qpin_placer_lose_cpu:
 *
 * A host CPU went away (offline, or the kernel refused it).  Only the
 * threads that used it are re-placed: an exclusive thread gets a new CPU
 * beside its siblings (or floats, with a note, when none is free; a lost
 * CPU leaves no choice even with overcommit=refuse), floating threads
 * simply lose it.
 *
 * Returns: %TRUE; %QPIN_POLICY_ERROR_RANGE if @cpu was not online.
 */
gboolean
qpin_placer_lose_cpu (QpinPlacer *p, guint cpu, GError **error)
{
  gint slot, t;
  guint8 kind;

  if (!qpin_cpuset_has (&p->topo->online, cpu) || qpin_cpuset_has (&p->lost, cpu))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_RANGE, "cpu %u is not online", cpu);
      return FALSE;
    }
  qpin_placer_clear_changed (p);
  slot = p->owner[cpu];
  t = p->owner_thread[cpu];
  kind = p->kind[cpu];
  qpin_placer_release (p, cpu);
  qpin_cpuset_add (&p->lost, cpu);
  qpin_cpuset_remove (&p->usable, cpu);
  qpin_placer_recount (p);
  if (slot >= 0 && kind == KIND_EXCLUSIVE && t >= 0)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
      QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
      QpinCpuset rest;
      g_autoptr (GError) local = NULL;

      qpin_cpuset_unpack (&th->cpus, &rest);
      qpin_cpuset_remove (&rest, cpu);
      th->changed = TRUE;
      if (!qpin_cpuset_is_empty (&rest))
        qpin_cpuset_pack (&th->cpus, &rest); /* a manual pin on several CPUs keeps the others */
      else
        {
          qpin_placer_release_thread (p, vm, (guint) t);
          if (!place_one (p, vm, (guint) t, &local))
            {
              qpin_plan_vm_add_note (vm, "degraded: %s %u floats after losing cpu %u (%s)",
                                     qpin_thread_role_to_string (th->spec.role), th->spec.index,
                                     cpu, local->message);
              th->exclusive = FALSE;
            }
        }
    }
  qpin_placer_finalize (p, NULL);
  return TRUE;
}

/**
 * qpin_placer_adopt:
 * @vm: a VM as it runs now (for instance rebuilt from kernel affinities
 *   after a qpin restart); copied
 *
 * Records @vm's exclusive threads in the ledger as they are, without
 * moving them.
 *
 * Returns: %TRUE on success; %QPIN_POLICY_ERROR_CONFLICT naming the CPU
 * if another VM already holds it or it is not usable.
 */
gboolean
qpin_placer_adopt (QpinPlacer *p, const QpinPlanVm *vm, GError **error)
{
  QpinPlanVm *copy;
  gint slot;

  if (qpin_plan_find_vm (p->plan, vm->name))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "vm '%s' is already placed", vm->name);
      return FALSE;
    }
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      QpinCpuset cpus;

      if (!t->exclusive)
        continue;
      qpin_cpuset_unpack (&t->cpus, &cpus);
      QPIN_CPUSET_FOREACH (cpu, &cpus)
        if ((guint) cpu >= p->n_slots || p->owner[cpu] >= 0
            || !qpin_cpuset_has (&p->usable, (guint) cpu))
          {
            const char *holder
              = (guint) cpu < p->n_slots ? qpin_placer_holder (p, (guint) cpu) : NULL;
            g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                         "vm '%s': %s %u is on cpu %d, %s%s%s", vm->name,
                         qpin_thread_role_to_string (t->spec.role), t->spec.index, cpu,
                         holder ? "held by vm '" : "which is not usable", holder ? holder : "",
                         holder ? "'" : "");
            return FALSE;
          }
    }
  qpin_placer_clear_changed (p);
  copy = qpin_plan_vm_copy (vm);
  qpin_cpuset_packed_clear (&copy->held);
  slot = qpin_placer_slot_add (p, copy);
  g_ptr_array_add (p->plan->vms, copy);
  for (guint i = 0; i < copy->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (copy->threads, QpinPlanThread, i);
      QpinCpuset cpus;

      qpin_cpuset_unpack (&t->cpus, &cpus);
      if (t->exclusive)
        QPIN_CPUSET_FOREACH (cpu, &cpus)
          if (p->owner[cpu] < 0
              && !qpin_placer_hold (p, (guint) cpu, slot, KIND_EXCLUSIVE, (gint) i, error))
            {
              qpin_placer_drop_vm (p, copy);
              return FALSE;
            }
    }
  if (copy->floating && qpin_cpuset_packed_is_empty (&copy->pool_domain)
      && !qpin_placer_choose_pool (p, copy, error))
    {
      qpin_placer_drop_vm (p, copy);
      return FALSE;
    }
  if (qpin_placer_pool_is_empty (p))
    {
      /* its own floating threads (a vCPU degraded by a lost CPU) float on
       * its own CPUs then, as they did before the restart: only others
       * would be left without a pool */
      g_autoptr (GString) names = g_string_new (NULL);
      guint n = qpin_placer_pool_users (p, copy, -1, names);
      if (n > 0)
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                       "vm '%s': its pins leave the shared pool empty, and %s %s float%s on it",
                       vm->name, n == 1 ? "vm" : "vms", names->str, n == 1 ? "s" : "");
          qpin_placer_drop_vm (p, copy);
          return FALSE;
        }
    }
  qpin_placer_finalize (p, copy);
  return TRUE;
}
