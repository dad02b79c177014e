/* qpin-placer-vm.c: placing one VM (dedicated, manual, isolated
 * emulator and iothreads) and the no-fit messages
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

static void
where_free (const QpinPlacer *p, gboolean isolate, const gboolean *allowed, GString *s)
{
  QpinCpuset f;
  g_autofree char *l = NULL;

  qpin_placer_free_set (p, isolate, allowed, &f);
  l = qpin_cpuset_format (&f);
  g_string_append (s, *l ? l : "none");
}

const char *
qpin_placer_unit_name (gboolean isolate, guint n)
{
  if (isolate)
    return n == 1 ? "whole free core (smt=isolate)" : "whole free cores (smt=isolate)";
  return n == 1 ? "dedicated cpu" : "dedicated cpus";
}

/* "N free on the host (cpus L)", or "inside its cpuset C" for a VM
 * confined to one; @where (nullable) narrows it further. */
void
qpin_placer_append_free (const QpinPlacer *p, const QpinPlanVm *vm, gboolean isolate,
                         const gboolean *allowed, guint total, const char *where, GString *s)
{
  g_string_append_printf (s, "%u free", total);
  if (where)
    g_string_append (s, where);
  if (vm->policy->cpuset)
    {
      g_autofree char *c = qpin_cpuset_format (vm->policy->cpuset);
      g_string_append_printf (s, " inside its cpuset %s", c);
    }
  else if (where == NULL)
    g_string_append (s, " on the host");
  g_string_append (s, " (cpus ");
  where_free (p, isolate, allowed, s);
  g_string_append (s, ")");
}

static gboolean
no_fit (QpinPlacer *p, const Placing *pl, guint n_groups, GError **error)
{
  const QpinPlanVm *vm = g_ptr_array_index (p->slots, pl->slot);
  const Group *g = pl->g;
  gboolean isolate = pl->isolate;
  QpinNumaMode numa = pl->numa;
  const gboolean *allowed = pl->allowed;
  g_autoptr (GString) s = g_string_new (NULL);
  guint n_nodes = p->topo->nodes->len;
  guint total = 0, best_node = 0, best = 0;
  const char *unit = qpin_placer_unit_name (isolate, g->n_vcpus);

  for (guint n = 0; n < n_nodes; n++)
    if (allowed[n])
      {
        total += cap_node (p, n, isolate);
        if (cap_node (p, n, isolate) > best)
          {
            best = cap_node (p, n, isolate);
            best_node = n;
          }
      }
  g_string_append_printf (s, "vm '%s': ", vm->name);
  if (n_groups > 1)
    g_string_append_printf (s, "guest node %d ", g->node);
  if (numa == QPIN_NUMA_STRICT)
    {
      gboolean one[64] = { FALSE };
      g_string_append_printf (
        s, "needs %u %s in one host node%s (numa=strict): the most free in one node is %u",
        g->n_vcpus, unit, n_groups > 1 ? " of its own" : "", best);
      if (best > 0 && best_node < G_N_ELEMENTS (one))
        {
          one[best_node] = TRUE;
          g_string_append_printf (s, " (node %u: cpus ",
                                  qpin_topology_node (p->topo, best_node)->id);
          where_free (p, isolate, one, s);
          g_string_append (s, ")");
        }
    }
  else
    {
      g_string_append_printf (s, "needs %u %s, ", g->n_vcpus, unit);
      qpin_placer_append_free (
        p, vm, isolate, allowed, total,
        n_groups > 1 ? " in host nodes not used by its other guest nodes" : NULL, s);
    }
  g_set_error_literal (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT, s->str);
  return FALSE;
}

/* Places one CPU for thread t of the VM in @slot near its other CPUs.
 * @hint_core: the host core of a guest sibling, or -1. */
gint
qpin_placer_pick_single (QpinPlacer *p, gint slot, gint hint_core, gboolean isolate, gboolean vcpu)
{
  const QpinTopology *topo = p->topo;
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  guint n_nodes = topo->nodes->len;
  g_autofree gboolean *near_node = g_new0 (gboolean, n_nodes);
  g_autofree gboolean *near_llc = g_new0 (gboolean, MAX (topo->llcs->len, 1));
  g_autofree gboolean *near_kind = g_new0 (gboolean, topo->kinds->len + 1);
  gboolean have_near = FALSE;
  guint best_key[10] = { 0 };
  gint best = -1;
  QpinCpuset held;

  qpin_cpuset_unpack (&vm->held, &held);
  QPIN_CPUSET_FOREACH (cpu, &held)
    {
      near_node[topo->cpu_node[cpu]] = TRUE;
      near_llc[topo->cpu_llc[cpu]] = TRUE;
      near_kind[topo->core_kind[topo->cpu_core[cpu]]] = TRUE;
      have_near = TRUE;
    }
  for (guint k = 0; k < p->n_cores; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      guint key[10];
      guint nd = 0;

      if (isolate ? !core_whole (p, k) : p->core_free[k] == 0)
        continue;
      if (have_near && !near_node[core->node])
        {
          nd = G_MAXUINT;
          for (guint m = 0; m < n_nodes; m++)
            if (near_node[m])
              nd = MIN (nd, qpin_topology_distance (topo, (guint) core->node, m));
        }
      key[0] = (gint) k == hint_core ? 0 : 1;
      /* a hot-added vCPU runs at the speed of the VM's others */
      key[1]
        = vcpu && have_near && vm->policy->kind != QPIN_KIND_ANY && !near_kind[topo->core_kind[k]];
      key[2] = nd;
      key[3] = have_near && !near_llc[core->llc] ? 1 : 0;
      key[4] = vcpu && core_iso_miss (p, k);
      key[5] = core_has_other (p, k, slot);
      key[6] = core_has_own (p, k, slot) ? 0 : 1;
      key[7] = isolate ? 0 : p->core_free[k] - 1;
      key[8] = p->cell_free[p->core_cell[k]];
      key[9] = k;
      if (best < 0 || key_less (key, best_key, 10))
        {
          memcpy (best_key, key, sizeof key);
          best = (gint) k;
        }
    }
  return best;
}

/* An emulator or iothread that asked for isolate gets no CPU of its own
 * (none free, or @pool: the last free one stays in the shared pool):
 * refused, or it shares with a note (overcommit=share). */
static gboolean
aux_no_cpu (const QpinPlacer *p, QpinPlanVm *vm, const QpinPlanThread *t, gboolean pool,
            GError **error)
{
  const char *role = qpin_thread_role_to_string (t->spec.role);
  g_autofree char *needs
    = g_strdup_printf ("%s=isolate needs 1 dedicated cpu for the %s",
                       t->spec.role == QPIN_ROLE_IOTHREAD ? "iothreads" : "emulator", role);

  if (vm->policy->overcommit == QPIN_OVERCOMMIT_REFUSE)
    {
      if (pool)
        qpin_placer_pool_refuse (p, vm, needs, FALSE, -1, error);
      else
        g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT,
                     "vm '%s': %s, 0 free on the host", vm->name, needs);
      return FALSE;
    }
  qpin_plan_vm_add_note (vm, "overcommitted: %s %u shares instead of isolate (%s)", role,
                         t->spec.index,
                         pool ? "the shared pool keeps its last cpu" : "no free cpu");
  return TRUE;
}

/* Places auxiliary threads (emulator/other, iothreads) that asked for isolate. */
static gboolean
place_aux (QpinPlacer *p, gint slot, GArray *undo, GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);

  for (guint i = 0; i < vm->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      QpinAuxMode mode
        = t->spec.role == QPIN_ROLE_IOTHREAD ? vm->policy->iothreads : vm->policy->emulator;
      gint k;

      if (t->spec.role != QPIN_ROLE_EMULATOR && t->spec.role != QPIN_ROLE_IOTHREAD)
        continue;
      if (mode != QPIN_AUX_ISOLATE || t->exclusive)
        continue;
      k = qpin_placer_pick_single (p, slot, -1, FALSE, FALSE);
      if (k >= 0)
        {
          if (!qpin_placer_take (p, slot, i, core_take (p, (guint) k), undo, error))
            return FALSE;
          if (!qpin_placer_pool_emptied (p, vm, -1))
            continue;
          qpin_placer_rollback (p, vm, undo, undo->len - 1);
        }
      if (!aux_no_cpu (p, vm, t, k >= 0, error))
        return FALSE;
    }
  return TRUE;
}

/* One dedicated VM being placed, group after group. */
typedef struct {
  gint slot;
  QpinPlanVm *vm;
  GArray *groups;        /* Group */
  gboolean *allowed;     /* per node index, for the current group */
  QpinCpuset used_nodes; /* host node ids of the groups placed so far */
  GArray *undo;          /* guint CPUs held so far */
  guint option;          /* candidate of the first group */
  guint *n_options;      /* (out) (nullable): how many the first group had */
  gboolean diverse;      /* the search: wider candidates for the first group */
} Dedicated;

/* numa=spread: the node with the fewest of this VM's vCPUs
 * (@spread_count), then the most free, that takes @n; else the one with
 * the most free; -1 when all are full. */
static gint
spread_node (const QpinPlacer *p, guint n, gboolean isolate, const guint *spread_count)
{
  guint n_nodes = p->topo->nodes->len;
  gint best = -1;

  for (guint m = 0; m < n_nodes; m++)
    {
      if (cap_node (p, m, isolate) < n)
        continue;
      if (best < 0 || spread_count[m] < spread_count[best]
          || (spread_count[m] == spread_count[best]
              && cap_node (p, m, isolate) > cap_node (p, (guint) best, isolate)))
        best = (gint) m;
    }
  if (best < 0)
    for (guint m = 0; m < n_nodes; m++)
      if (cap_node (p, m, isolate) > 0
          && (best < 0 || cap_node (p, m, isolate) > cap_node (p, (guint) best, isolate)))
        best = (gint) m;
  return best;
}

/* numa=spread: unit @ui of the group on the node spread_node() names. */
static gboolean
place_unit_spread (QpinPlacer *p, const Placing *pl, guint ui, guint *spread_count, GError **error)
{
  guint n_nodes = p->topo->nodes->len;
  const Unit *u = &g_array_index (pl->g->units, Unit, ui);
  g_autoptr (GArray) units = g_array_new (FALSE, TRUE, sizeof (Unit));
  Group one = { .node = pl->g->node, .units = units, .n_vcpus = u->n };
  Placing one_pl = *pl;
  g_autoptr (GArray) pc = NULL;
  g_autofree gboolean *mask = g_new0 (gboolean, n_nodes);
  g_autofree gboolean *all = g_new (gboolean, n_nodes);
  gint best = spread_node (p, one.n_vcpus, pl->isolate, spread_count);
  Placing whole = *pl;

  g_array_append_vals (units, u, 1);
  one_pl.g = &one;
  if (best >= 0)
    {
      spread_count[best] += one.n_vcpus;
      mask[best] = TRUE;
      pc = qpin_placer_pick_cells (p, mask, one.n_vcpus, pl->isolate);
      if (qpin_placer_fill (p, &one_pl, (const guint *) pc->data, pc->len))
        return TRUE;
    }
  for (guint n = 0; n < n_nodes; n++)
    all[n] = TRUE;
  whole.allowed = all;
  return no_fit (p, &whole, 1, error);
}

/* numa=spread: each unit on its own node, balancing the VM's vCPUs. */
static gboolean
place_group_spread (QpinPlacer *p, const Placing *pl, GError **error)
{
  g_autofree guint *spread_count = g_new0 (guint, p->topo->nodes->len);

  for (guint ui = 0; ui < pl->g->units->len; ui++)
    if (!place_unit_spread (p, pl, ui, spread_count, error))
      return FALSE;
  return TRUE;
}

/**
 * qpin_placer_take_candidate:
 * @used_nodes: (inout): gets the host node ids of the CPUs taken
 *
 * Holds the CPUs of candidate @c once more: candidates() filled it and
 * gave everything back, and the fill is deterministic, so it succeeds as
 * it did.  If it does not, that is a placer bug, refused with
 * %QPIN_POLICY_ERROR_INTERNAL (the caller rolls back).
 */
gboolean
qpin_placer_take_candidate (QpinPlacer *p, const Placing *pl, const Candidate *c,
                            QpinCpuset *used_nodes, GError **error)
{
  guint from = pl->undo->len;

  if (!qpin_placer_fill (p, pl, (const guint *) c->cells->data, c->cells->len))
    {
      const QpinPlanVm *vm = g_ptr_array_index (p->slots, pl->slot);
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_INTERNAL,
                   "vm '%s': the placer could not take again the domain it chose", vm->name);
      return FALSE;
    }
  for (guint i = from; i < pl->undo->len; i++)
    qpin_cpuset_add (used_nodes, (guint) p->topo->cpu_node[g_array_index (pl->undo, guint, i)]);
  return TRUE;
}

/* Group @gi of the VM: the best candidate domain (for the first group, the
 * one @d->option picks) on host nodes its other groups do not use, else
 * sharing one with a note (not with numa=strict). */
static gboolean
place_group (QpinPlacer *p, Dedicated *d, guint gi, GError **error)
{
  const QpinPolicy *pol = d->vm->policy;
  guint n_nodes = p->topo->nodes->len;
  Placing pl = { .slot = d->slot,
                 .g = &g_array_index (d->groups, Group, gi),
                 .isolate = pol->smt == QPIN_SMT_ISOLATE,
                 .numa = pol->numa,
                 .allowed = d->allowed,
                 .prev_nodes = &d->used_nodes,
                 .diverse = d->diverse && gi == 0,
                 .undo = d->undo };
  g_autoptr (GArray) cands = NULL;
  guint pick;

  for (guint n = 0; n < n_nodes; n++)
    d->allowed[n] = d->groups->len == 1 || !qpin_cpuset_has (&d->used_nodes, n);
  if (pol->numa == QPIN_NUMA_SPREAD)
    return place_group_spread (p, &pl, error);
  cands = qpin_placer_candidates (p, &pl);
  if (cands->len == 0 && d->groups->len > 1 && pol->numa != QPIN_NUMA_STRICT)
    {
      /* not enough distinct host nodes: let guest nodes share */
      g_array_unref (cands);
      for (guint n = 0; n < n_nodes; n++)
        d->allowed[n] = TRUE;
      pl.diverse = FALSE;
      cands = qpin_placer_candidates (p, &pl);
      if (cands->len > 0)
        qpin_plan_vm_add_note (d->vm, "guest node %d shares a host node with another guest node",
                               pl.g->node);
    }
  if (cands->len == 0)
    return no_fit (p, &pl, d->groups->len, error);
  pick = gi == 0 ? MIN (d->option, cands->len - 1) : 0;
  if (gi == 0 && d->n_options)
    *d->n_options = cands->len;
  return qpin_placer_take_candidate (p, &pl, &g_array_index (cands, Candidate, pick),
                                     &d->used_nodes, error);
}

/* Places the vCPUs of a dedicated VM.  @option picks the candidate domain
 * of the first group (0 = best).  Returns the number of candidates that
 * group had via @n_options. */
gboolean
qpin_placer_place_dedicated (QpinPlacer *p, gint slot, guint option, guint *n_options,
                             gboolean diverse, GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  gboolean isolate = vm->policy->smt == QPIN_SMT_ISOLATE;
  g_autoptr (GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) groups = NULL;
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree gboolean *allowed = g_new (gboolean, p->topo->nodes->len);
  Dedicated d = { .slot = slot,
                  .vm = vm,
                  .allowed = allowed,
                  .undo = undo,
                  .option = option,
                  .n_options = n_options,
                  .diverse = diverse };

  if (n_options)
    *n_options = 1;
  qpin_placer_tcpu_reset (p, vm);
  for (guint i = 0; i < vm->threads->len; i++)
    if (g_array_index (vm->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU)
      g_array_append_val (idx, i);
  groups = qpin_placer_build_groups (p, vm, idx, isolate);
  d.groups = groups;
  qpin_cpuset_clear_all (&d.used_nodes);
  for (guint gi = 0; gi < groups->len; gi++)
    if (!place_group (p, &d, gi, error))
      {
        qpin_placer_rollback (p, vm, undo, 0);
        return FALSE;
      }
  if (qpin_placer_pool_emptied (p, vm, -1))
    {
      g_autofree char *needs
        = g_strdup_printf ("needs %u %s", idx->len, qpin_placer_unit_name (isolate, idx->len));
      qpin_placer_rollback (p, vm, undo, 0);
      qpin_placer_pool_refuse (p, vm, needs, isolate, -1, error);
      return FALSE;
    }
  if (!place_aux (p, slot, undo, error))
    {
      qpin_placer_rollback (p, vm, undo, 0);
      return FALSE;
    }
  qpin_placer_tcpu_commit (p, vm);
  return TRUE;
}

/* Why cpumap cannot give @cpu to the VM in @slot, or NULL. */
static char *
manual_refusal (const QpinPlacer *p, gint slot, guint cpu)
{
  const QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);

  if (qpin_cpuset_has (&p->reserved, cpu))
    return g_strdup ("which is reserved");
  if (!qpin_cpuset_has (&p->usable, cpu))
    return g_strdup ("which is not usable (offline or lost)");
  if (p->owner[cpu] == slot && p->owner_thread[cpu] >= 0)
    {
      const QpinThreadSpec *o
        = &g_array_index (vm->threads, QpinPlanThread, p->owner_thread[cpu]).spec;
      return g_strdup_printf ("which it holds itself (%s %u)", qpin_thread_role_to_string (o->role),
                              o->index);
    }
  if (p->owner[cpu] == slot)
    return g_strdup ("which it holds itself");
  if (p->owner[cpu] >= 0)
    return g_strdup_printf ("which another vm holds ('%s')", qpin_placer_holder (p, cpu));
  return NULL;
}

/* Holds the CPUs the cpumap gives vCPU thread @t of the VM in @slot (the
 * one check for cpus=manual: first placement, hot-add, a lost CPU). */
gboolean
qpin_placer_manual_take (QpinPlacer *p, gint slot, guint t, GArray *undo, GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  const QpinManualPin *pin = NULL;

  for (guint j = 0; j < vm->policy->cpumap->len; j++)
    if (g_array_index (vm->policy->cpumap, QpinManualPin, j).vcpu == th->spec.index)
      pin = &g_array_index (vm->policy->cpumap, QpinManualPin, j);
  if (pin == NULL)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "vm '%s': cpumap has no entry for vcpu %u", vm->name, th->spec.index);
      return FALSE;
    }
  QPIN_CPUSET_FOREACH (cpu, &pin->cpus)
    {
      g_autofree char *why = manual_refusal (p, slot, (guint) cpu);
      if (why)
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                       "vm '%s': cpumap puts vcpu %u on cpu %d, %s", vm->name, th->spec.index, cpu,
                       why);
          return FALSE;
        }
    }
  QPIN_CPUSET_FOREACH (cpu, &pin->cpus)
    {
      guint c = (guint) cpu;
      if (!qpin_placer_hold (p, c, slot, KIND_EXCLUSIVE, (gint) t, error))
        return FALSE;
      g_array_append_val (undo, c);
    }
  qpin_cpuset_pack (&th->cpus, &pin->cpus);
  th->exclusive = TRUE;
  return TRUE;
}

/* "cpumap needs cpus 4-5" */
char *
qpin_placer_manual_needs (const QpinCpuset *cpus)
{
  g_autofree char *l = qpin_cpuset_format (cpus);
  return g_strdup_printf ("cpumap needs cpu%s %s", qpin_cpuset_count (cpus) == 1 ? "" : "s", l);
}

gboolean
qpin_placer_place_manual (QpinPlacer *p, gint slot, GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));

  qpin_placer_tcpu_reset (p, vm);
  for (guint i = 0; i < vm->threads->len; i++)
    if (g_array_index (vm->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU
        && !qpin_placer_manual_take (p, slot, i, undo, error))
      {
        qpin_placer_rollback (p, vm, undo, 0);
        return FALSE;
      }
  if (qpin_placer_pool_emptied (p, vm, -1))
    {
      QpinCpuset took;
      g_autofree char *needs = NULL;

      qpin_cpuset_clear_all (&took);
      for (guint i = 0; i < undo->len; i++)
        qpin_cpuset_add (&took, g_array_index (undo, guint, i));
      needs = qpin_placer_manual_needs (&took);
      qpin_placer_rollback (p, vm, undo, 0);
      qpin_placer_pool_refuse (p, vm, needs, FALSE, -1, error);
      return FALSE;
    }
  if (!place_aux (p, slot, undo, error))
    {
      qpin_placer_rollback (p, vm, undo, 0);
      return FALSE;
    }
  qpin_placer_tcpu_commit (p, vm);
  return TRUE;
}
