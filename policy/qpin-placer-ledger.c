/* qpin-placer-ledger.c: the ledger (who holds which CPU), slots, undo
 * lists, and the confinement of a VM to its cpuset
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

void
qpin_placer_recount (QpinPlacer *p)
{
  const QpinTopology *topo = p->topo;

  memset (p->cell_free, 0, sizeof (guint) * p->cells->len);
  memset (p->cell_whole, 0, sizeof (guint) * p->cells->len);
  memset (p->node_free, 0, sizeof (guint) * topo->nodes->len);
  memset (p->node_whole, 0, sizeof (guint) * topo->nodes->len);
  for (guint k = 0; k < p->n_cores; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      guint node = (guint) core->node;

      p->core_usable[k] = p->core_free[k] = 0;
      QPIN_CPUSET_FOREACH (cpu, &core->cpus)
        if (qpin_cpuset_has (&p->usable, (guint) cpu))
          {
            p->core_usable[k]++;
            if (p->owner[cpu] < 0)
              p->core_free[k]++;
          }
      p->cell_free[p->core_cell[k]] += p->core_free[k];
      p->node_free[node] += p->core_free[k];
      if (core_whole (p, k))
        {
          p->cell_whole[p->core_cell[k]]++;
          p->node_whole[node]++;
        }
    }
}

static void
account (QpinPlacer *p, guint cpu, gint delta)
{
  guint k = (guint) p->topo->cpu_core[cpu];
  guint c = p->core_cell[k];
  guint n = (guint) p->topo->cpu_node[cpu];
  gboolean was_whole = core_whole (p, k);

  p->core_free[k] = (guint) ((gint) p->core_free[k] + delta);
  p->cell_free[c] = (guint) ((gint) p->cell_free[c] + delta);
  p->node_free[n] = (guint) ((gint) p->node_free[n] + delta);
  if (was_whole != core_whole (p, k))
    {
      gint w = was_whole ? -1 : 1;
      p->cell_whole[c] = (guint) ((gint) p->cell_whole[c] + w);
      p->node_whole[n] = (guint) ((gint) p->node_whole[n] + w);
    }
}

/* Records @cpu as held by the VM in @slot.  The callers choose free
 * usable CPUs, so a held or unusable one is a placer bug: refused with
 * %QPIN_POLICY_ERROR_INTERNAL and nothing changed, never an abort. */
gboolean
qpin_placer_hold (QpinPlacer *p, guint cpu, gint slot, guint8 kind, gint thread, GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);

  if (cpu >= p->n_slots || p->owner[cpu] >= 0 || !qpin_cpuset_has (&p->usable, cpu))
    {
      const char *holder = cpu < p->n_slots ? qpin_placer_holder (p, cpu) : NULL;
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_INTERNAL,
                   "vm '%s': the placer tried to hold cpu %d, %s%s%s", vm->name, (gint) cpu,
                   holder ? "which vm '" : "which is not usable", holder ? holder : "",
                   holder ? "' holds" : "");
      return FALSE;
    }
  p->owner[cpu] = slot;
  p->kind[cpu] = kind;
  p->owner_thread[cpu] = thread;
  qpin_cpuset_packed_add (&vm->held, cpu);
  account (p, cpu, -1);
  return TRUE;
}

void
qpin_placer_release (QpinPlacer *p, guint cpu)
{
  gint slot = p->owner[cpu];
  QpinPlanVm *vm;

  if (slot < 0)
    return;
  vm = g_ptr_array_index (p->slots, slot);
  qpin_cpuset_packed_remove (&vm->held, cpu);
  p->owner[cpu] = -1;
  p->kind[cpu] = 0;
  p->owner_thread[cpu] = -1;
  if (qpin_cpuset_has (&p->usable, cpu))
    account (p, cpu, +1);
}

gint
qpin_placer_slot_add (QpinPlacer *p, QpinPlanVm *vm)
{
  for (guint i = 0; i < p->slots->len; i++)
    if (g_ptr_array_index (p->slots, i) == NULL)
      {
        p->slots->pdata[i] = vm;
        return (gint) i;
      }
  g_ptr_array_add (p->slots, vm);
  return (gint) p->slots->len - 1;
}

gint
qpin_placer_slot_of (const QpinPlacer *p, const QpinPlanVm *vm)
{
  for (guint i = 0; i < p->slots->len; i++)
    if (g_ptr_array_index (p->slots, i) == vm)
      return (gint) i;
  return -1;
}

void
qpin_placer_release_vm (QpinPlacer *p, QpinPlanVm *vm)
{
  QpinCpuset held;

  qpin_cpuset_unpack (&vm->held, &held);
  QPIN_CPUSET_FOREACH (cpu, &held)
    qpin_placer_release (p, (guint) cpu);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      qpin_cpuset_packed_clear (&t->cpus);
      t->exclusive = FALSE;
    }
  vm->floating = FALSE;
  qpin_cpuset_packed_clear (&vm->pool_domain);
  g_ptr_array_set_size (vm->notes, 0);
}

/* The placed VM called @name, writable: the plan is the placer's. */
QpinPlanVm *
qpin_placer_vm (QpinPlacer *p, const char *name)
{
  for (guint i = 0; i < p->plan->vms->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->plan->vms, i);
      if (strcmp (vm->name, name) == 0)
        return vm;
    }
  return NULL;
}

/* Takes vm out of the plan without freeing it. */
void
qpin_placer_plan_unlink (QpinPlacer *p, QpinPlanVm *vm)
{
  guint idx;
  if (g_ptr_array_find (p->plan->vms, vm, &idx))
    g_ptr_array_steal_index (p->plan->vms, idx);
}

void
qpin_placer_slot_free (QpinPlacer *p, QpinPlanVm *vm)
{
  gint slot = qpin_placer_slot_of (p, vm);
  if (slot < 0)
    return;
  p->slots->pdata[slot] = NULL;
  while (p->slots->len > 0 && g_ptr_array_index (p->slots, p->slots->len - 1) == NULL)
    g_ptr_array_set_size (p->slots, p->slots->len - 1);
}

/* Removes vm from the plan, frees its CPUs, its slot and vm itself. */
void
qpin_placer_drop_vm (QpinPlacer *p, QpinPlanVm *vm)
{
  qpin_placer_release_vm (p, vm);
  qpin_placer_slot_free (p, vm);
  qpin_placer_plan_unlink (p, vm);
  qpin_plan_vm_free (vm);
}

static void
set_thread_cpu (QpinPlanVm *vm, guint t, guint cpu)
{
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  qpin_cpuset_packed_clear (&th->cpus);
  qpin_cpuset_packed_add (&th->cpus, cpu);
  th->exclusive = TRUE;
}

gboolean
qpin_placer_take (QpinPlacer *p, gint slot, guint t, gint cpu, GArray *undo, GError **error)
{
  guint c = (guint) cpu;

  if (!qpin_placer_hold (p, c, slot, KIND_EXCLUSIVE, (gint) t, error))
    return FALSE;
  TCPU (p, t) = cpu;
  g_array_append_val (undo, c);
  return TRUE;
}

/* Starts placing the threads of vm: no thread has a CPU yet. */
void
qpin_placer_tcpu_reset (QpinPlacer *p, const QpinPlanVm *vm)
{
  g_array_set_size (p->tcpu, vm->threads->len);
  for (guint t = 0; t < vm->threads->len; t++)
    TCPU (p, t) = -1;
}

/* Keeps the placement: writes the CPUs taken into the plan. */
void
qpin_placer_tcpu_commit (QpinPlacer *p, QpinPlanVm *vm)
{
  for (guint t = 0; t < vm->threads->len; t++)
    if (TCPU (p, t) >= 0)
      set_thread_cpu (vm, t, (guint) TCPU (p, t));
}

gboolean
qpin_placer_hold_siblings (QpinPlacer *p, gint slot, guint k, GArray *undo, GError **error)
{
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] < 0 && qpin_cpuset_has (&p->usable, cpu))
      {
        guint c = cpu;
        if (!qpin_placer_hold (p, c, slot, KIND_SIBLING, -1, error))
          return FALSE;
        g_array_append_val (undo, c);
      }
  return TRUE;
}

void
qpin_placer_rollback (QpinPlacer *p, QpinPlanVm *vm, GArray *undo, guint from)
{
  for (guint i = undo->len; i-- > from;)
    {
      guint cpu = g_array_index (undo, guint, i);
      gint t = p->owner_thread[cpu];
      if (t >= 0 && p->kind[cpu] == KIND_EXCLUSIVE && (guint) t < p->tcpu->len)
        TCPU (p, t) = -1;
      qpin_placer_release (p, cpu);
    }
  g_array_set_size (undo, from);
}

void
qpin_placer_clear_changed (QpinPlacer *p)
{
  for (guint v = 0; v < p->plan->vms->len; v++)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->plan->vms, v);
      for (guint i = 0; i < vm->threads->len; i++)
        g_array_index (vm->threads, QpinPlanThread, i).changed = FALSE;
    }
}

/* ---- cpuset: the only CPUs a VM may use ----
 *
 * While such a VM is placed, the placer sees only those CPUs: 'usable'
 * is narrowed around its placement and restored after, so every choice
 * (cells, cores, pools, the no-fit message) is made inside them.  Its
 * floating threads are kept inside them by clamp() in finalize(). */

gboolean
qpin_placer_confine (QpinPlacer *p, const QpinPlanVm *vm, QpinCpuset *saved)
{
  if (vm->policy->cpuset == NULL)
    return FALSE;
  *saved = p->usable;
  p->unconfined = p->usable;
  p->confined = TRUE;
  qpin_cpuset_and (&p->usable, vm->policy->cpuset);
  qpin_placer_recount (p);
  return TRUE;
}

void
qpin_placer_unconfine (QpinPlacer *p, gboolean confined, const QpinCpuset *saved)
{
  if (!confined)
    return;
  p->usable = *saved;
  p->confined = FALSE;
  qpin_placer_recount (p);
}

/* Releases what thread t holds: its CPUs and, for smt=isolate, the held
 * siblings of cores where the VM keeps no other exclusive CPU. */
void
qpin_placer_release_thread (QpinPlacer *p, QpinPlanVm *vm, guint t)
{
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  gint slot = qpin_placer_slot_of (p, vm);
  QpinCpuset cpus;

  if (!th->exclusive)
    return;
  qpin_cpuset_unpack (&th->cpus, &cpus);
  QPIN_CPUSET_FOREACH (cpu, &cpus)
    {
      gint k = p->topo->cpu_core[cpu];
      gboolean keep = FALSE;
      const QpinTopoCore *core;

      if (p->owner[cpu] == slot)
        qpin_placer_release (p, (guint) cpu);
      if (k < 0)
        continue;
      core = &g_array_index (p->topo->cores, QpinTopoCore, k);
      QPIN_CPUSET_FOREACH (sib, &core->cpus)
        keep |= p->owner[sib] == slot && p->kind[sib] == KIND_EXCLUSIVE;
      if (!keep)
        QPIN_CPUSET_FOREACH (sib, &core->cpus)
          if (p->owner[sib] == slot && p->kind[sib] == KIND_SIBLING)
            qpin_placer_release (p, (guint) sib);
    }
  qpin_cpuset_packed_clear (&th->cpus);
  th->exclusive = FALSE;
}

/* owner_thread holds thread indexes: keep them right after a removal. */
void
qpin_placer_renumber (QpinPlacer *p, gint slot, guint removed)
{
  for (guint c = 0; c < p->n_slots; c++)
    if (p->owner[c] == slot && p->owner_thread[c] > (gint) removed)
      p->owner_thread[c]--;
}

/* The free usable CPUs (whole free cores only with @isolate) of the
 * nodes in @allowed (NULL: all). */
void
qpin_placer_free_set (const QpinPlacer *p, gboolean isolate, const gboolean *allowed, QpinCpuset *f)
{
  qpin_cpuset_clear_all (f);
  for (guint k = 0; k < p->n_cores; k++)
    {
      const QpinTopoCore *core = &g_array_index (p->topo->cores, QpinTopoCore, k);
      if (allowed && !allowed[core->node])
        continue;
      if (isolate && !core_whole (p, k))
        continue;
      if (p->core_free[k] == 0)
        continue;
      for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
        if (p->owner[cpu] < 0 && qpin_cpuset_has (&p->usable, cpu))
          qpin_cpuset_add (f, cpu);
    }
}

void
qpin_placer_set_cpus (QpinPlanThread *t, const QpinCpuset *cpus)
{
  if (!qpin_cpuset_packed_equal (&t->cpus, cpus))
    {
      qpin_cpuset_pack (&t->cpus, cpus);
      t->changed = TRUE;
    }
}
