/* qpin-placer-finalize.c: the shared pool (the rule: qpin-pool.h), the
 * floating cpusets, housekeeping and memory nodes
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

#include <string.h>

static const QpinCpuset *
host_usable (const QpinPlacer *p)
{
  return p->confined ? &p->unconfined : &p->usable;
}

/* The shared pool: usable CPUs of the whole host that no VM holds. */
void
qpin_placer_shared_pool (const QpinPlacer *p, QpinCpuset *pool)
{
  qpin_pool_compute (host_usable (p), p->owner, pool);
}

gboolean
qpin_placer_pool_is_empty (const QpinPlacer *p)
{
  if (!p->confined)
    {
      /* the ledger's counts cover exactly the usable CPUs then */
      for (guint n = 0; n < p->topo->nodes->len; n++)
        if (p->node_free[n] > 0)
          return FALSE;
      return TRUE;
    }
  QPIN_CPUSET_FOREACH (cpu, host_usable (p))
    if (p->owner[cpu] < 0)
      return FALSE;
  return TRUE;
}

guint
qpin_placer_pool_users (const QpinPlacer *p, const QpinPlanVm *self, gint self_t, GString *names)
{
  return qpin_pool_users (p->plan, p->batch_pool, p->batch_spills, self, self_t, names);
}

/* Did what @vm just took (thread @self_t, -1: all of it) take the last
 * CPU of the shared pool while something floats on it? */
gboolean
qpin_placer_pool_emptied (const QpinPlacer *p, const QpinPlanVm *vm, gint self_t)
{
  return qpin_placer_pool_is_empty (p) && qpin_placer_pool_users (p, vm, self_t, NULL) > 0;
}

/* The reason a request of @vm (@needs: "needs 2 dedicated cpus") is
 * refused: it would empty the pool.  Call it once what was taken is
 * given back. */
void
qpin_placer_pool_refuse (const QpinPlacer *p, const QpinPlanVm *vm, const char *needs,
                         gboolean isolate, gint self_t, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  g_autoptr (GString) names = g_string_new (NULL);
  QpinCpuset f;
  guint n;

  qpin_placer_free_set (p, isolate, NULL, &f);
  n = qpin_placer_pool_users (p, vm, self_t, names);
  g_string_append_printf (s, "vm '%s': %s, ", vm->name, needs);
  qpin_placer_append_free (p, vm, isolate, NULL, qpin_cpuset_count (&f), NULL, s);
  qpin_pool_append_refusal (s, n, names->str);
  g_set_error_literal (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT, s->str);
}

/* The VMs holding the usable CPUs, for a message. */
static void
append_holders (const QpinPlacer *p, GString *s)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint n = 0;

  QPIN_CPUSET_FOREACH (cpu, &p->usable)
    {
      const char *h = qpin_placer_holder (p, (guint) cpu);
      if (h && g_hash_table_add (seen, (gpointer) h))
        qpin_pool_add_name (s, n++, h);
    }
}

/* A floating VM needs a CPU of the pool inside its cpuset, if it has one. */
static gboolean
pool_check_free (const QpinPlacer *p, const QpinPlanVm *vm, GError **error)
{
  g_autoptr (GString) s = NULL;
  QpinCpuset pool;

  qpin_placer_shared_pool (p, &pool);
  qpin_cpuset_and (&pool, &p->usable);
  if (!qpin_cpuset_is_empty (&pool))
    return TRUE;
  s = g_string_new (NULL);
  g_string_append_printf (s, "vm '%s': the shared pool is empty: every usable cpu ", vm->name);
  if (vm->policy->cpuset)
    {
      g_autofree char *c = qpin_cpuset_format (vm->policy->cpuset);
      g_string_append_printf (s, "inside its cpuset %s ", c);
    }
  else
    g_string_append (s, "on the host ");
  g_string_append (s, "is held by a dedicated vm (");
  append_holders (p, s);
  g_string_append (s, ")");
  g_set_error_literal (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT, s->str);
  return FALSE;
}

/* The pool cell of cell @c: an LLC group inside a node, over every kind
 * and cluster (cells split by kind and cluster for dedicated vCPUs; a
 * floating vCPU is the kernel's to schedule, which on hybrid hosts places
 * by capacity itself): its free CPUs and its CPUs.  FALSE when @c is not
 * the first cell of its pool cell, so each is counted once. */
static gboolean
pool_cell (const QpinPlacer *p, guint c, guint *count, QpinCpuset *cpus)
{
  const Cell *cell = &g_array_index (p->cells, Cell, c);

  *count = 0;
  qpin_cpuset_clear_all (cpus);
  for (guint d = 0; d < p->cells->len; d++)
    {
      const Cell *o = &g_array_index (p->cells, Cell, d);
      if (o->llc != cell->llc || o->node != cell->node)
        continue;
      if (d < c)
        return FALSE;
      *count += p->cell_free[d];
      qpin_cpuset_or (cpus, &p->cell_cpus[d]);
    }
  return TRUE;
}

/* Gives a floating VM the domain of the pool it floats on; fails when
 * the pool (inside its cpuset, if it has one) is empty. */
gboolean
qpin_placer_choose_pool (QpinPlacer *p, QpinPlanVm *vm, GError **error)
{
  const QpinTopology *topo = p->topo;
  QpinCpuset best_set;
  guint n_vcpus = 0;
  guint best_level = G_MAXUINT, best_load = G_MAXUINT;

  if (!pool_check_free (p, vm, error))
    return FALSE;
  qpin_cpuset_clear_all (&best_set);
  for (guint i = 0; i < vm->threads->len; i++)
    n_vcpus += g_array_index (vm->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU;
  /* levels: 0 cells, 1 nodes; the free (usable, unheld) CPUs must hold the
   * vCPUs; load = floating vCPUs already on the domain per free CPU */
  for (guint level = 0; level < 2 && best_level == G_MAXUINT; level++)
    {
      guint n_dom = level == 0 ? p->cells->len : topo->nodes->len;
      for (guint d = 0; d < n_dom; d++)
        {
          guint count = level == 0 ? 0 : p->node_free[d];
          QpinCpuset cell_set;
          const QpinCpuset *dom = level == 0 ? &cell_set : &qpin_topology_node (topo, d)->cpus;
          guint load = 0;

          if (level == 0 && !pool_cell (p, d, &count, &cell_set))
            continue;
          if (count < n_vcpus || count == 0)
            continue;
          for (guint v = 0; v < p->plan->vms->len; v++)
            {
              QpinPlanVm *o = g_ptr_array_index (p->plan->vms, v);
              if (o != vm && o->floating && qpin_cpuset_packed_intersects (&o->pool_domain, dom))
                for (guint i = 0; i < o->threads->len; i++)
                  load += g_array_index (o->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU;
            }
          load = (load + n_vcpus) * 1000 / count;
          if (level < best_level || (level == best_level && load < best_load))
            {
              best_level = level;
              best_load = load;
              best_set = *dom;
            }
        }
    }
  if (best_level == G_MAXUINT)
    best_set = p->usable;
  qpin_cpuset_pack (&vm->pool_domain, &best_set);
  vm->floating = TRUE;
  return TRUE;
}

/* @set inside the VM's cpuset; when they miss, the usable part of the
 * cpuset that no other VM holds (all of it only if nothing else is left). */
static void
clamp (const QpinPlacer *p, const QpinPlanVm *vm, QpinCpuset *set)
{
  QpinCpuset in;

  if (vm->policy->cpuset == NULL)
    return;
  qpin_cpuset_and (set, vm->policy->cpuset);
  if (!qpin_cpuset_is_empty (set))
    return;
  in = *vm->policy->cpuset;
  qpin_cpuset_and (&in, &p->usable);
  QPIN_CPUSET_FOREACH (cpu, &in)
    if (p->owner[cpu] < 0 || g_ptr_array_index (p->slots, p->owner[cpu]) == vm)
      qpin_cpuset_add (set, (guint) cpu);
  if (qpin_cpuset_is_empty (set))
    *set = in;
}

static void
set_vm_cpus (const QpinPlacer *p, const QpinPlanVm *vm, QpinPlanThread *t, const QpinCpuset *cpus)
{
  QpinCpuset in = *cpus;

  clamp (p, vm, &in);
  qpin_placer_set_cpus (t, &in);
}

/* Does a VM's plan depend on other VMs (pools, housekeeping, degraded
 * vCPUs), or only on its own exclusive CPUs? */
static gboolean
needs_global (const QpinPlanVm *vm)
{
  if (vm->floating)
    return TRUE;
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      QpinAuxMode mode
        = t->spec.role == QPIN_ROLE_IOTHREAD ? vm->policy->iothreads : vm->policy->emulator;
      if (t->exclusive)
        continue;
      if (t->spec.role == QPIN_ROLE_VCPU || mode != QPIN_AUX_SHARE)
        return TRUE;
    }
  return FALSE;
}

/* What finalize() computes once for all VMs. */
typedef struct {
  QpinCpuset live;   /* online and not lost */
  QpinCpuset shared; /* the shared pool; empty when nothing floats */
  QpinCpuset hk;     /* housekeeping: reserved, else live minus isolated and held */
} HostSets;

static void
host_sets (const QpinPlacer *p, HostSets *h)
{
  QpinCpuset excl;
  gboolean global = FALSE;

  for (guint v = 0; v < p->plan->vms->len && !global; v++)
    global = needs_global (g_ptr_array_index (p->plan->vms, v));
  qpin_cpuset_clear_all (&excl);
  for (guint v = 0; global && v < p->plan->vms->len; v++)
    qpin_cpuset_or_packed (&excl, &((QpinPlanVm *) g_ptr_array_index (p->plan->vms, v))->held);
  h->live = p->topo->online;
  qpin_cpuset_andnot (&h->live, &p->lost);
  qpin_cpuset_clear_all (&h->shared);
  if (global) /* only then does anything float */
    qpin_placer_shared_pool (p, &h->shared);
  if (!qpin_cpuset_is_empty (&p->reserved))
    {
      h->hk = p->reserved;
      qpin_cpuset_and (&h->hk, &h->live);
      return;
    }
  h->hk = h->live;
  qpin_cpuset_andnot (&h->hk, &p->isolated);
  qpin_cpuset_andnot (&h->hk, &excl);
  if (qpin_cpuset_is_empty (&h->hk))
    {
      h->hk = h->live;
      qpin_cpuset_andnot (&h->hk, &excl);
    }
}

/* The sets one VM's threads get. */
typedef struct {
  QpinCpuset vcpus;      /* its pool if it floats, else its exclusive vCPU CPUs */
  QpinCpuset nodes_cpus; /* the CPUs of the nodes of @vcpus */
  QpinCpuset pool;       /* where its degraded vCPUs float: the shared pool on those nodes */
  QpinCpuset hk;         /* housekeeping, on those nodes if it can */
} VmSets;

static void
vm_sets (const QpinPlacer *p, QpinPlanVm *vm, const HostSets *h, VmSets *s)
{
  const QpinTopology *topo = p->topo;
  QpinCpuset node_ids;

  qpin_cpuset_clear_all (&s->vcpus);
  if (vm->floating)
    {
      qpin_cpuset_unpack (&vm->pool_domain, &s->pool);
      qpin_cpuset_and (&s->pool, &h->shared);
      if (qpin_cpuset_is_empty (&s->pool))
        s->pool = h->shared;
      if (qpin_cpuset_is_empty (&s->pool))
        qpin_pool_fallback (vm, &p->reserved, &h->live, &p->usable, &s->pool);
      s->vcpus = s->pool;
      clamp (p, vm, &s->vcpus);
    }
  else
    for (guint i = 0; i < vm->threads->len; i++)
      {
        const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
        if (t->spec.role == QPIN_ROLE_VCPU && t->exclusive)
          qpin_cpuset_or_packed (&s->vcpus, &t->cpus);
      }
  /* degraded vCPUs of a dedicated VM float on its nodes */
  qpin_cpuset_clear_all (&s->nodes_cpus);
  qpin_topology_nodes_of (topo, &s->vcpus, &node_ids);
  QPIN_CPUSET_FOREACH (id, &node_ids)
    qpin_cpuset_or (
      &s->nodes_cpus,
      &qpin_topology_node (topo, (guint) qpin_topology_node_index (topo, (guint) id))->cpus);
  s->pool = s->nodes_cpus;
  qpin_cpuset_and (&s->pool, &h->shared);
  if (qpin_cpuset_is_empty (&s->pool))
    s->pool = h->shared;
  if (qpin_cpuset_is_empty (&s->pool) && qpin_pool_vm_floats (vm, -1))
    qpin_pool_fallback (vm, &p->reserved, &h->live, &p->usable, &s->pool);
  s->hk = h->hk;
  qpin_cpuset_and (&s->hk, &s->nodes_cpus);
  if (qpin_cpuset_is_empty (&s->hk))
    s->hk = h->hk;
  if (qpin_cpuset_is_empty (&s->hk))
    s->hk = s->vcpus;
  /* a VM whose vCPUs all float (a lost CPU on a full host) shares their pool */
  if (qpin_cpuset_is_empty (&s->hk))
    s->hk = s->pool;
}

/* The floating threads: vCPUs, then emulator and iothreads by their mode,
 * then the other QEMU workers, which follow the emulator thread. */
static void
vm_set_threads (const QpinPlacer *p, QpinPlanVm *vm, const VmSets *s)
{
  const QpinPlanThread *emu;
  QpinCpuset emu_cpus;

  for (guint i = 0; i < vm->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      QpinAuxMode mode
        = t->spec.role == QPIN_ROLE_IOTHREAD ? vm->policy->iothreads : vm->policy->emulator;

      if (t->exclusive || t->spec.role == QPIN_ROLE_OTHER)
        continue;
      if (t->spec.role == QPIN_ROLE_VCPU)
        set_vm_cpus (p, vm, t, vm->floating ? &s->vcpus : &s->pool);
      else if (mode == QPIN_AUX_HOUSEKEEPING)
        set_vm_cpus (p, vm, t, &s->hk);
      else
        set_vm_cpus (p, vm, t, qpin_cpuset_is_empty (&s->vcpus) ? &s->hk : &s->vcpus);
    }
  emu = qpin_plan_vm_find_thread (vm, QPIN_ROLE_EMULATOR, 0);
  if (emu)
    qpin_cpuset_unpack (&emu->cpus, &emu_cpus);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      if (t->spec.role != QPIN_ROLE_OTHER)
        continue;
      if (emu)
        qpin_placer_set_cpus (t, &emu_cpus);
      else
        set_vm_cpus (p, vm, t,
                     vm->policy->emulator == QPIN_AUX_HOUSEKEEPING ? &s->hk
                     : qpin_cpuset_is_empty (&s->vcpus)            ? &s->hk
                                                                   : &s->vcpus);
    }
}

/* Memory: the nodes of the vCPUs that have memory, else the nearest one. */
static void
memory_nodes_of (const QpinTopology *topo, const QpinCpuset *vcpus, QpinCpuset *mem_nodes)
{
  QpinCpuset node_ids;
  gboolean mem_known = FALSE;
  guint from;
  gint best = -1;

  qpin_topology_nodes_of (topo, vcpus, &node_ids);
  qpin_cpuset_clear_all (mem_nodes);
  for (guint n = 0; n < topo->nodes->len; n++)
    mem_known |= qpin_topology_node (topo, n)->mem_total_kb > 0;
  QPIN_CPUSET_FOREACH (id, &node_ids)
    {
      const QpinTopoNode *node
        = qpin_topology_node (topo, (guint) qpin_topology_node_index (topo, (guint) id));
      if (!mem_known || node->mem_total_kb > 0)
        qpin_cpuset_add (mem_nodes, (guint) id);
    }
  if (!qpin_cpuset_is_empty (mem_nodes) || qpin_cpuset_is_empty (&node_ids))
    return;
  from = (guint) qpin_topology_node_index (topo, (guint) qpin_cpuset_first (&node_ids));
  for (guint n = 0; n < topo->nodes->len; n++)
    if (qpin_topology_node (topo, n)->mem_total_kb > 0
        && (best < 0
            || qpin_topology_distance (topo, from, n)
                 < qpin_topology_distance (topo, from, (guint) best)))
      best = (gint) n;
  if (best >= 0)
    qpin_cpuset_add (mem_nodes, qpin_topology_node (topo, (guint) best)->id);
}

static void
vm_memory_nodes (const QpinTopology *topo, QpinPlanVm *vm, const QpinCpuset *vcpus)
{
  QpinCpuset mem_nodes;

  memory_nodes_of (topo, vcpus, &mem_nodes);
  qpin_cpuset_pack (&vm->mem_nodes, &mem_nodes);
}

/* Whether the sets every VM that depends on the others is computed from
 * are those of the last finalize; remembers them if not. */
static gboolean
inputs_unchanged (QpinPlacer *p, const HostSets *h)
{
  const QpinCpuset *now[G_N_ELEMENTS (p->fin_sets)]
    = { &h->live, &h->shared, &h->hk, &p->reserved, &p->usable };
  gboolean same = p->fin_valid && memcmp (p->fin_owner, p->owner, p->n_slots * sizeof (gint)) == 0;

  for (guint i = 0; i < G_N_ELEMENTS (now); i++)
    same = same && qpin_cpuset_equal (&p->fin_sets[i], now[i]);
  if (same)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (now); i++)
    p->fin_sets[i] = *now[i];
  memcpy (p->fin_owner, p->owner, p->n_slots * sizeof (gint));
  p->fin_valid = TRUE;
  return FALSE;
}

static gboolean
in_changed (const QpinPlanVm *vm, const QpinPlanVm *one, const GPtrArray *many)
{
  guint unused;

  return vm == one || (many && g_ptr_array_find ((GPtrArray *) many, vm, &unused));
}

/* Recomputes the floating cpusets and memory nodes of every VM (@all), or
 * of @one and @many, plus every VM whose plan depends on the others when
 * what they depend on has changed: a VM that floats is not computed again
 * each time another floating VM comes or goes (O(VMs) per VM). */
static void
finalize (QpinPlacer *p, gboolean all, const QpinPlanVm *one, const GPtrArray *many)
{
  HostSets h;
  gboolean others;

  host_sets (p, &h);
  others = !inputs_unchanged (p, &h);
  for (guint v = 0; v < p->plan->vms->len; v++)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->plan->vms, v);
      VmSets s;

      if (!all && !in_changed (vm, one, many) && !(others && needs_global (vm)))
        continue;
      vm_sets (p, vm, &h, &s);
      vm_set_threads (p, vm, &s);
      vm_memory_nodes (p->topo, vm, &s.vcpus);
    }
}

/* Recomputes @only (NULL: every VM) and what depends on the others. */
void
qpin_placer_finalize (QpinPlacer *p, const QpinPlanVm *only)
{
  finalize (p, only == NULL, only, NULL);
}

/* The same for the VMs in @changed (new, or whose threads changed), or,
 * %NULL, only for what depends on the others. */
void
qpin_placer_finalize_changed (QpinPlacer *p, const GPtrArray *changed)
{
  finalize (p, FALSE, NULL, changed);
}
