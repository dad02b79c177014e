/* qpin-score.c: the quality of a plan (see the header for the terms) */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-score.h"

static gint
cmp_desc (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;
  return x > y ? -1 : x < y;
}

enum { SPAN_NODE, SPAN_LLC, SPAN_KIND, SPAN_CLUSTER };

/* The domain of core @k at @level, -1 for none (a core outside a cluster). */
static gint
core_domain (const QpinTopology *topo, guint k, guint level)
{
  const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);

  switch (level)
    {
    case SPAN_LLC:
      return (gint) core->llc;
    case SPAN_KIND:
      return (gint) qpin_topology_core_kind (topo, k);
    case SPAN_CLUSTER:
      return qpin_topology_core_cluster (topo, k);
    default:
      return core->node;
    }
}

static guint
n_domains (const QpinTopology *topo, guint level)
{
  switch (level)
    {
    case SPAN_LLC:
      return topo->llcs->len;
    case SPAN_KIND:
      return topo->kinds->len + 1;
    case SPAN_CLUSTER:
      return topo->clusters->len;
    default:
      return topo->nodes->len;
    }
}

/* The fewest domains at @level that hold @n on the empty host; 0 if they
 * cannot, except for clusters: then every cluster with room (a VM larger
 * than the clusters is not blamed for spanning them all). */
static guint
min_span_at (const QpinTopology *topo, const QpinCpuset *usable, guint level, gboolean whole_cores,
             guint n)
{
  guint n_dom = n_domains (topo, level);
  g_autofree guint *cap = g_new0 (guint, MAX (n_dom, 1));
  guint sum = 0, with_room = 0;

  for (guint k = 0; k < topo->cores->len; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      QpinCpuset u = core->cpus;
      gint dom = core_domain (topo, k, level);
      guint cnt;

      if (dom < 0 || (guint) dom >= n_dom)
        continue;
      qpin_cpuset_and (&u, usable);
      cnt = qpin_cpuset_count (&u);
      if (whole_cores)
        cap[dom] += cnt == core->n_cpus ? 1 : 0;
      else
        cap[dom] += cnt;
    }
  qsort (cap, n_dom, sizeof (guint), cmp_desc);
  for (guint i = 0; i < n_dom; i++)
    {
      sum += cap[i];
      with_room += cap[i] > 0;
      if (sum >= n)
        return i + 1;
    }
  return level == SPAN_CLUSTER ? with_room : 0;
}

/**
 * qpin_score_min_span:
 * @llc: count LLC groups instead of nodes
 * @whole_cores: capacity is whole usable cores (smt=isolate), not CPUs
 * @n: vCPUs to place
 *
 * Returns: the fewest nodes (or LLC groups) that can hold @n vCPUs on the
 * empty host; 0 if they cannot at all.
 */
guint
qpin_score_min_span (const QpinTopology *topo, const QpinCpuset *usable, gboolean llc,
                     gboolean whole_cores, guint n)
{
  return min_span_at (topo, usable, llc ? SPAN_LLC : SPAN_NODE, whole_cores, n);
}

static guint
count_domains (const QpinTopology *topo, const QpinCpuset *cpus, guint level)
{
  QpinCpuset seen;
  qpin_cpuset_clear_all (&seen);
  QPIN_CPUSET_FOREACH (cpu, cpus)
    {
      gint k = qpin_topology_cpu_core (topo, (guint) cpu);
      gint d = k < 0 ? -1 : core_domain (topo, (guint) k, level);
      if (d >= 0)
        qpin_cpuset_add (&seen, (guint) d);
    }
  return qpin_cpuset_count (&seen);
}

static guint
span_distance (const QpinTopology *topo, const QpinCpuset *cpus)
{
  QpinCpuset nodes;
  guint sum = 0;

  qpin_cpuset_clear_all (&nodes);
  QPIN_CPUSET_FOREACH (cpu, cpus)
    {
      gint n = qpin_topology_cpu_node (topo, (guint) cpu);
      if (n >= 0)
        qpin_cpuset_add (&nodes, (guint) n);
    }
  QPIN_CPUSET_FOREACH (a, &nodes)
    QPIN_CPUSET_FOREACH (b, &nodes)
      if (a < b)
        sum += qpin_topology_distance (topo, (guint) a, (guint) b);
  return sum;
}

/* Guest NUMA nodes belong on distinct host nodes: count the extra guest
 * nodes that share a host node (0 when each has its own). */
static guint
guest_node_collisions (const QpinTopology *topo, const QpinPlanVm *vm)
{
  g_autofree guint64 *guests = g_new0 (guint64, MAX (topo->nodes->len, 1));
  guint extra = 0;

  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      gint n;
      if (t->spec.role != QPIN_ROLE_VCPU || !t->exclusive || t->spec.topo.node < 0
          || t->spec.topo.node > 63)
        continue;
      n = qpin_topology_cpu_node (topo, (guint) qpin_cpuset_packed_first (&t->cpus));
      if (n >= 0)
        guests[n] |= G_GUINT64_CONSTANT (1) << t->spec.topo.node;
    }
  for (guint n = 0; n < topo->nodes->len; n++)
    if (guests[n])
      extra += (guint) __builtin_popcountll (guests[n]) - 1;
  return extra;
}

static gboolean
same_guest_core (const QpinThreadSpec *a, const QpinThreadSpec *b)
{
  return a->topo.socket == b->topo.socket && a->topo.die == b->topo.die
         && a->topo.cluster == b->topo.cluster && a->topo.core == b->topo.core
         && a->topo.node == b->topo.node;
}

/* qpin_score_min_span() is a walk over every core: remember its answers
 * within one score computation. */
static guint
min_span (const QpinTopology *topo, const QpinCpuset *usable, GHashTable *memo, guint level,
          gboolean whole_cores, guint n)
{
  gpointer key = GUINT_TO_POINTER ((n << 3) | (level << 1) | (whole_cores ? 1u : 0u));
  gpointer hit;

  if (g_hash_table_lookup_extended (memo, key, NULL, &hit))
    return GPOINTER_TO_UINT (hit);
  hit = GUINT_TO_POINTER (min_span_at (topo, usable, level, whole_cores, n));
  g_hash_table_insert (memo, key, hit);
  return GPOINTER_TO_UINT (hit);
}

/* The kind and cluster terms of a VM on @all (its exclusive vCPU CPUs):
 * spans against the minimum on the empty host. */
static void
score_kinds_clusters (const QpinTopology *topo, const QpinPlanVm *vm, const QpinCpuset *all,
                      guint n_vcpus, const QpinCpuset *usable, GHashTable *memo, QpinScore *s)
{
  gboolean isolate = vm->policy->smt == QPIN_SMT_ISOLATE;
  QpinKindMode mode = vm->policy->kind;

  if (topo->kinds->len > 1 && mode != QPIN_KIND_ANY)
    {
      guint kinds = count_domains (topo, all, SPAN_KIND);
      guint min = min_span (topo, usable, memo, SPAN_KIND, isolate, n_vcpus);
      guint max = topo->kinds->len;

      s->kinds_spanned += kinds;
      s->kinds_min += min;
      s->kind_excess += kinds > min ? kinds - min : 0;
      QPIN_CPUSET_FOREACH (cpu, all)
        {
          gint k = qpin_topology_cpu_core (topo, (guint) cpu);
          guint kind = k < 0 ? max : qpin_topology_core_kind (topo, (guint) k);
          s->kind_rank += mode == QPIN_KIND_FAST ? kind : max - kind;
        }
    }
  if (topo->n_multi_clusters > 0)
    {
      guint clusters = count_domains (topo, all, SPAN_CLUSTER);
      guint in_clusters = 0, min;

      /* against the fewest clusters that hold the vCPUs it has in clusters:
       * a VM on cores outside any (P-cores) spans none and is not blamed */
      QPIN_CPUSET_FOREACH (cpu, all)
        {
          gint k = qpin_topology_cpu_core (topo, (guint) cpu);
          in_clusters += k >= 0 && qpin_topology_core_cluster (topo, (guint) k) >= 0;
        }
      min = in_clusters ? min_span (topo, usable, memo, SPAN_CLUSTER, isolate, in_clusters) : 0;

      s->clusters_spanned += clusters;
      s->clusters_min += min;
      s->cluster_excess += clusters > min ? clusters - min : 0;
    }
}

static void
score_vm (const QpinTopology *topo, const QpinPlanVm *vm, const QpinCpuset *usable,
          GHashTable *memo, QpinScore *s)
{
  gboolean guest_smt = FALSE;
  gboolean isolate = vm->policy->smt == QPIN_SMT_ISOLATE;
  QpinCpuset all;
  guint n_vcpus = 0;
  g_autoptr (GHashTable) group_size = g_hash_table_new (NULL, NULL);
  guint min_nodes = 0, min_llcs = 0;

  qpin_cpuset_clear_all (&all);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      if (t->spec.role != QPIN_ROLE_VCPU)
        continue;
      n_vcpus++;
      if (t->spec.topo.thread > 0)
        guest_smt = TRUE;
      if (vm->floating || !t->exclusive)
        continue;
      qpin_cpuset_or_packed (&all, &t->cpus);
      g_hash_table_insert (group_size, GINT_TO_POINTER (t->spec.topo.node + 1),
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (
                                               group_size, GINT_TO_POINTER (t->spec.topo.node + 1)))
                                             + 1));
    }
  if (vm->floating)
    {
      if (vm->policy->cpus == QPIN_CPUS_DEDICATED)
        s->overcommitted += n_vcpus;
      return;
    }
  /* guest sibling pairs and where they landed */
  for (guint i = 0; guest_smt && i < vm->threads->len; i++)
    for (guint j = i + 1; j < vm->threads->len; j++)
      {
        const QpinPlanThread *a = &g_array_index (vm->threads, QpinPlanThread, i);
        const QpinPlanThread *b = &g_array_index (vm->threads, QpinPlanThread, j);
        gint ca, cb;

        if (a->spec.role != QPIN_ROLE_VCPU || b->spec.role != QPIN_ROLE_VCPU
            || !same_guest_core (&a->spec, &b->spec))
          continue;
        s->sibling_pairs++;
        ca = qpin_topology_cpu_core (topo, (guint) qpin_cpuset_packed_first (&a->cpus));
        cb = qpin_topology_cpu_core (topo, (guint) qpin_cpuset_packed_first (&b->cpus));
        if (ca < 0 || ca != cb || qpin_cpuset_packed_count (&a->cpus) != 1
            || qpin_cpuset_packed_count (&b->cpus) != 1)
          s->sibling_misses++;
      }
  if (vm->policy->numa == QPIN_NUMA_SPREAD || vm->policy->cpus == QPIN_CPUS_MANUAL
      || qpin_cpuset_is_empty (&all))
    return;
  {
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init (&it, group_size);
    while (g_hash_table_iter_next (&it, NULL, &value))
      {
        min_nodes += min_span (topo, usable, memo, SPAN_NODE, isolate, GPOINTER_TO_UINT (value));
        min_llcs += min_span (topo, usable, memo, SPAN_LLC, isolate, GPOINTER_TO_UINT (value));
      }
  }
  score_kinds_clusters (topo, vm, &all, n_vcpus, usable, memo, s);
  {
    guint nodes = count_domains (topo, &all, SPAN_NODE);
    guint llcs = count_domains (topo, &all, SPAN_LLC);
    s->nodes_spanned += nodes;
    s->nodes_min += min_nodes;
    s->llcs_spanned += llcs;
    s->llcs_min += min_llcs;
    s->node_excess += nodes > min_nodes ? nodes - min_nodes : 0;
    s->node_excess += guest_node_collisions (topo, vm);
    s->node_distance += span_distance (topo, &all);
    s->llc_excess += llcs > min_llcs ? llcs - min_llcs : 0;
  }
}

/**
 * qpin_score_compute:
 * @usable: online CPUs that are neither reserved nor lost
 * @score: (out): the score
 *
 * Scores @plan; pure, no logging.
 */
void
qpin_score_compute (const QpinTopology *topo, const QpinPlan *plan, const QpinCpuset *usable,
                    QpinScore *score)
{
  g_autofree gint *first_owner = g_new (gint, topo->cores->len);
  g_autofree guint8 *multi = g_new0 (guint8, topo->cores->len);
  g_autofree guint *n_held = g_new0 (guint, topo->cores->len);
  g_autofree guint *n_free = g_new0 (guint, topo->cores->len);
  g_autoptr (GHashTable) memo = g_hash_table_new (NULL, NULL);
  QpinCpuset held;

  *score = (QpinScore){ 0 };
  score->has_kinds = topo->kinds->len > 1;
  score->has_clusters = topo->n_multi_clusters > 0;
  qpin_cpuset_clear_all (&held);
  for (guint k = 0; k < topo->cores->len; k++)
    first_owner[k] = -1;
  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      QpinCpuset mine;

      score_vm (topo, vm, usable, memo, score);
      qpin_cpuset_unpack (&vm->held, &mine);
      qpin_cpuset_or (&held, &mine);
      QPIN_CPUSET_FOREACH (cpu, &mine)
        {
          gint k = qpin_topology_cpu_core (topo, (guint) cpu);
          if (k < 0)
            continue;
          if (first_owner[k] < 0)
            first_owner[k] = (gint) v;
          else if (first_owner[k] != (gint) v)
            multi[k] = 1;
        }
    }
  /* held and free usable CPUs per core, in one pass over the CPUs */
  QPIN_CPUSET_FOREACH (cpu, usable)
    {
      gint k = qpin_topology_cpu_core (topo, (guint) cpu);
      if (k < 0)
        continue;
      if (qpin_cpuset_has (&held, (guint) cpu))
        n_held[k]++;
      else
        n_free[k]++;
    }
  for (guint k = 0; k < topo->cores->len; k++)
    {
      score->shared_cores += multi[k];
      if (n_held[k] > 0 && n_free[k] > 0)
        score->half_used_cores++;
    }
}

/**
 * qpin_score_compare:
 *
 * Returns: <0 if @a is better than @b, 0 if equal, >0 if worse.
 */
gint
qpin_score_compare (const QpinScore *a, const QpinScore *b)
{
  const guint x[] = { a->overcommitted,  a->kind_excess,    a->kind_rank,      a->node_excess,
                      a->node_distance,  a->llc_excess,     a->cluster_excess, a->shared_cores,
                      a->sibling_misses, a->half_used_cores };
  const guint y[] = { b->overcommitted,  b->kind_excess,    b->kind_rank,      b->node_excess,
                      b->node_distance,  b->llc_excess,     b->cluster_excess, b->shared_cores,
                      b->sibling_misses, b->half_used_cores };

  for (guint i = 0; i < G_N_ELEMENTS (x); i++)
    if (x[i] != y[i])
      return x[i] < y[i] ? -1 : 1;
  return 0;
}

/**
 * qpin_score_to_text:
 *
 * Returns: (transfer full): one line per term.
 */
char *
qpin_score_to_text (const QpinScore *s)
{
  guint matched = s->sibling_pairs - s->sibling_misses;
  GString *t = g_string_new (NULL);

  g_string_append_printf (t, "overcommitted vcpus: %u\n", s->overcommitted);
  /* only on hosts that have them, so other plans read as before */
  if (s->has_kinds)
    g_string_append_printf (t, "cpu kinds spanned: %u (minimum %u, excess %u, rank %u)\n",
                            s->kinds_spanned, s->kinds_min, s->kind_excess, s->kind_rank);
  g_string_append_printf (t,
                          "nodes spanned: %u (minimum %u, excess %u, distance %u)\n"
                          "llc groups spanned: %u (minimum %u, excess %u)\n",
                          s->nodes_spanned, s->nodes_min, s->node_excess, s->node_distance,
                          s->llcs_spanned, s->llcs_min, s->llc_excess);
  if (s->has_clusters)
    g_string_append_printf (t, "clusters spanned: %u (minimum %u, excess %u)\n",
                            s->clusters_spanned, s->clusters_min, s->cluster_excess);
  g_string_append_printf (t,
                          "cores shared between vms: %u\n"
                          "guest siblings on host siblings: %u/%u (%.0f%%)\n"
                          "cores left half-used: %u\n",
                          s->shared_cores, matched, s->sibling_pairs,
                          s->sibling_pairs ? 100.0 * matched / s->sibling_pairs : 100.0,
                          s->half_used_cores);
  return g_string_free (t, FALSE);
}
