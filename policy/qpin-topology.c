/* qpin-topology.c: build, validate and walk the host topology model */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-topology.h"

#include <string.h>

static void
free_row (gpointer p)
{
  g_array_unref (p);
}

static void
clear_kind (gpointer p)
{
  QpinTopoKind *kind = p;
  g_free (kind->name);
  g_free (kind->source);
}

/**
 * qpin_topology_new:
 *
 * Returns: (transfer full): an empty topology to fill, then finish().
 */
QpinTopology *
qpin_topology_new (void)
{
  QpinTopology *topo = g_new0 (QpinTopology, 1);

  topo->nodes = g_array_new (FALSE, TRUE, sizeof (QpinTopoNode));
  topo->packages = g_array_new (FALSE, TRUE, sizeof (QpinTopoPackage));
  topo->llcs = g_array_new (FALSE, TRUE, sizeof (QpinTopoLlc));
  topo->cores = g_array_new (FALSE, TRUE, sizeof (QpinTopoCore));
  topo->cpu_info = g_array_new (FALSE, TRUE, sizeof (QpinTopoCpuInfo));
  topo->node_rows = g_ptr_array_new_with_free_func (free_row);
  topo->notes = g_ptr_array_new_with_free_func (g_free);
  topo->clusters = g_array_new (FALSE, TRUE, sizeof (QpinCpuset));
  topo->kinds = g_array_new (FALSE, TRUE, sizeof (QpinTopoKind));
  g_array_set_clear_func (topo->kinds, clear_kind);
  return topo;
}

/**
 * qpin_topology_free:
 * @topo: (nullable): a topology
 */
void
qpin_topology_free (QpinTopology *topo)
{
  if (topo == NULL)
    return;
  g_array_unref (topo->nodes);
  g_array_unref (topo->packages);
  g_array_unref (topo->llcs);
  g_array_unref (topo->cores);
  g_array_unref (topo->cpu_info);
  g_ptr_array_unref (topo->node_rows);
  g_ptr_array_unref (topo->notes);
  g_array_unref (topo->clusters);
  g_array_unref (topo->kinds);
  g_free (topo->distance);
  g_free (topo->cpu_core);
  g_free (topo->cpu_llc);
  g_free (topo->cpu_node);
  g_free (topo->cpu_package);
  g_free (topo->core_kind);
  g_free (topo->core_cluster);
  g_free (topo);
}

/**
 * qpin_topology_set_cpus:
 * @isolated: (nullable): isolcpus, or NULL for none
 * @nohz_full: (nullable): nohz_full CPUs, or NULL for none
 *
 * Sets the CPU state sets before finish().
 */
void
qpin_topology_set_cpus (QpinTopology *topo, const QpinCpuset *present, const QpinCpuset *online,
                        const QpinCpuset *isolated, const QpinCpuset *nohz_full)
{
  topo->present = *present;
  topo->online = *online;
  qpin_cpuset_clear_all (&topo->isolated);
  qpin_cpuset_clear_all (&topo->nohz_full);
  if (isolated)
    topo->isolated = *isolated;
  if (nohz_full)
    topo->nohz_full = *nohz_full;
}

/**
 * qpin_topology_set_possible:
 * @possible: the CPUs the kernel can ever bring up (sysfs cpu/possible)
 *
 * Optional before finish(); without it, or where it lacks a present CPU,
 * the present CPUs are possible.
 */
void
qpin_topology_set_possible (QpinTopology *topo, const QpinCpuset *possible)
{
  topo->possible = *possible;
}

/**
 * qpin_topology_add_cpu:
 *
 * Records what a source knows about one online CPU (copied).
 */
void
qpin_topology_add_cpu (QpinTopology *topo, const QpinTopoCpuInfo *info)
{
  g_array_append_vals (topo->cpu_info, info, 1);
}

/**
 * qpin_topology_add_node:
 * @distances: the node's distance row, one entry per node in id order
 *
 * Records one NUMA node (copied).
 */
void
qpin_topology_add_node (QpinTopology *topo, guint id, const QpinCpuset *cpus, guint64 mem_total_kb,
                        guint64 mem_free_kb, const guint *distances, guint n_distances)
{
  QpinTopoNode node = { 0 };
  GArray *row = g_array_sized_new (FALSE, FALSE, sizeof (guint), n_distances);

  node.id = id;
  node.cpus = *cpus;
  node.mem_total_kb = mem_total_kb;
  node.mem_free_kb = mem_free_kb;
  g_array_append_vals (row, distances, n_distances);
  g_array_append_val (topo->nodes, node);
  g_ptr_array_add (topo->node_rows, row);
}

/**
 * qpin_topology_add_note:
 * @format: printf format of one line, lower case, no trailing full stop
 *
 * Records how the model departs from what a complete source gives: a
 * fallback source or a degradation.  Shown by `qpin topology`.
 */
void
qpin_topology_add_note (QpinTopology *topo, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_ptr_array_add (topo->notes, g_strdup_vprintf (format, args));
  va_end (args);
}

/**
 * qpin_topology_add_kind:
 * @source: the file(s) the kinds came from, relative to the root
 *
 * Records one kind of CPU (copied), in capacity order, highest first.
 */
void
qpin_topology_add_kind (QpinTopology *topo, const char *name, const QpinCpuset *cpus,
                        guint capacity, const char *source)
{
  QpinTopoKind kind = { .cpus = *cpus, .capacity = capacity };

  kind.name = g_strdup (name);
  kind.source = g_strdup (source);
  g_array_append_val (topo->kinds, kind);
}

static gint
cmp_first_cpu (const QpinCpuset *a, const QpinCpuset *b)
{
  return qpin_cpuset_first (a) - qpin_cpuset_first (b);
}

static gint
cmp_llc (gconstpointer a, gconstpointer b)
{
  return cmp_first_cpu (&((const QpinTopoLlc *) a)->cpus, &((const QpinTopoLlc *) b)->cpus);
}

static gint
cmp_core (gconstpointer a, gconstpointer b)
{
  return cmp_first_cpu (&((const QpinTopoCore *) a)->cpus, &((const QpinTopoCore *) b)->cpus);
}

static gint
cmp_package (gconstpointer a, gconstpointer b)
{
  const QpinTopoPackage *pa = a, *pb = b;
  return pa->id < pb->id ? -1 : pa->id > pb->id;
}

static gboolean fail (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
fail (GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT, message);
  return FALSE;
}

static char *
fmt (const QpinCpuset *set)
{
  char *s = qpin_cpuset_format (set);
  if (*s == '\0')
    {
      g_free (s);
      return g_strdup ("none");
    }
  return s;
}

/* Sorts nodes by id, keeping each distance row with its node. */
static gboolean
finish_nodes (QpinTopology *topo, GError **error)
{
  guint n = topo->nodes->len;
  g_autofree guint *order = g_new (guint, MAX (n, 1));
  g_autoptr (GArray) sorted = g_array_new (FALSE, TRUE, sizeof (QpinTopoNode));
  QpinCpuset seen;

  if (n == 0)
    {
      /* no NUMA information: one node holding every online CPU */
      guint ten = 10;
      qpin_topology_add_node (topo, 0, &topo->online, 0, 0, &ten, 1);
      n = 1;
    }
  for (guint i = 0; i < n; i++)
    order[i] = i;
  for (guint i = 1; i < n; i++) /* insertion sort: n is small */
    for (guint j = i; j > 0; j--)
      {
        guint a = order[j - 1], b = order[j];
        if (g_array_index (topo->nodes, QpinTopoNode, a).id
            <= g_array_index (topo->nodes, QpinTopoNode, b).id)
          break;
        order[j - 1] = b;
        order[j] = a;
      }
  topo->distance = g_new0 (guint, n * n);
  qpin_cpuset_clear_all (&seen);
  for (guint i = 0; i < n; i++)
    {
      QpinTopoNode node = g_array_index (topo->nodes, QpinTopoNode, order[i]);
      GArray *row = g_ptr_array_index (topo->node_rows, order[i]);

      if (i > 0 && node.id == g_array_index (sorted, QpinTopoNode, i - 1).id)
        return fail (error, "node %u is listed twice", node.id);
      qpin_cpuset_and (&node.cpus, &topo->online);
      if (qpin_cpuset_intersects (&node.cpus, &seen))
        {
          QpinCpuset both = node.cpus;
          g_autofree char *s = NULL;
          qpin_cpuset_and (&both, &seen);
          s = fmt (&both);
          return fail (error, "cpus %s belong to node %u and to another node", s, node.id);
        }
      qpin_cpuset_or (&seen, &node.cpus);
      if (row->len != n)
        return fail (error, "node %u has %u distances, expected %u (one per node)", node.id,
                     row->len, n);
      for (guint j = 0; j < n; j++)
        topo->distance[i * n + j] = g_array_index (row, guint, order[j]);
      g_array_append_val (sorted, node);
    }
  for (guint i = 0; i < n; i++)
    for (guint j = 0; j < n; j++)
      if (topo->distance[i * n + j] == 0)
        return fail (error, "distance from node %u to node %u is 0",
                     g_array_index (sorted, QpinTopoNode, i).id,
                     g_array_index (sorted, QpinTopoNode, j).id);
  if (!qpin_cpuset_equal (&seen, &topo->online))
    {
      QpinCpuset missing = topo->online;
      g_autofree char *s = NULL;
      qpin_cpuset_andnot (&missing, &seen);
      s = fmt (&missing);
      return fail (error, "online cpus %s are in no node's cpulist", s);
    }
  g_array_set_size (topo->nodes, 0);
  g_array_append_vals (topo->nodes, sorted->data, sorted->len);
  return TRUE;
}

static const QpinTopoCpuInfo *
info_of (const QpinTopology *topo, const gint *slot, guint cpu)
{
  return &g_array_index (topo->cpu_info, QpinTopoCpuInfo, slot[cpu]);
}

/* The node index holding online CPU @cpu, from the finished nodes; -1 if none. */
static gint
node_of (const QpinTopology *topo, guint cpu)
{
  for (guint n = 0; n < topo->nodes->len; n++)
    if (qpin_cpuset_has (&g_array_index (topo->nodes, QpinTopoNode, n).cpus, cpu))
      return (gint) n;
  return -1;
}

/* The first contradiction among the thread sibling sets, or NULL. */
static char *
siblings_conflict (const QpinTopology *topo, const gint *slot)
{
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);

      QPIN_CPUSET_FOREACH (sib, &info->siblings)
        {
          const QpinTopoCpuInfo *other = info_of (topo, slot, (guint) sib);
          if (!qpin_cpuset_equal (&other->siblings, &info->siblings))
            {
              g_autofree char *a = fmt (&info->siblings);
              g_autofree char *b = fmt (&other->siblings);
              return g_strdup_printf ("cpu %d has thread siblings %s but cpu %d has %s", cpu, a,
                                      sib, b);
            }
          if (other->package_id != info->package_id)
            return g_strdup_printf ("thread siblings %d and %d are in different packages (%u, %u)",
                                    cpu, sib, info->package_id, other->package_id);
          if (node_of (topo, (guint) sib) != node_of (topo, (guint) cpu))
            return g_strdup_printf ("thread siblings %d and %d are in different nodes", cpu, sib);
        }
    }
  return NULL;
}

/* The first contradiction among the last level cache sets, or NULL. */
static char *
llc_conflict (const QpinTopology *topo, const gint *slot)
{
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);

      QPIN_CPUSET_FOREACH (m, &info->llc)
        {
          const QpinTopoCpuInfo *other = info_of (topo, slot, (guint) m);
          if (!qpin_cpuset_equal (&other->llc, &info->llc))
            {
              g_autofree char *a = fmt (&info->llc);
              g_autofree char *b = fmt (&other->llc);
              return g_strdup_printf (
                "cpu %d shares its last level cache with %s but cpu %d with %s", cpu, a, m, b);
            }
          if (other->package_id != info->package_id)
            return g_strdup_printf ("cpus %d and %d share a last level cache but are in different "
                                    "packages (%u, %u)",
                                    cpu, m, info->package_id, other->package_id);
        }
      if (!qpin_cpuset_is_subset (&info->siblings, &info->llc))
        return g_strdup_printf ("thread siblings of cpu %d are not in its last level cache", cpu);
    }
  return NULL;
}

/* Contradictory sibling or cache sets degrade one level each, with a note:
 * siblings to one CPU per core, caches to one LLC group per package.
 * Returns: whether every online CPU keeps its cache information. */
static gboolean
resolve_cpu_conflicts (QpinTopology *topo, const gint *slot)
{
  g_autofree char *sibs = siblings_conflict (topo, slot);
  g_autofree char *llc = NULL;
  QpinCpuset no_cache;

  if (sibs)
    {
      qpin_topology_add_note (topo, "%s; each cpu is its own core", sibs);
      QPIN_CPUSET_FOREACH (cpu, &topo->online)
        {
          QpinTopoCpuInfo *info = (QpinTopoCpuInfo *) info_of (topo, slot, (guint) cpu);
          qpin_cpuset_clear_all (&info->siblings);
          qpin_cpuset_add (&info->siblings, (guint) cpu);
        }
    }
  qpin_cpuset_clear_all (&no_cache);
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    if (qpin_cpuset_is_empty (&info_of (topo, slot, (guint) cpu)->llc))
      qpin_cpuset_add (&no_cache, (guint) cpu);
  if (!qpin_cpuset_is_empty (&no_cache))
    {
      g_autofree char *s = fmt (&no_cache);
      qpin_topology_add_note (topo, "no cache info for cpus %s; LLC groups = packages", s);
      return FALSE;
    }
  llc = llc_conflict (topo, slot);
  if (llc)
    {
      qpin_topology_add_note (topo, "%s; LLC groups = packages", llc);
      return FALSE;
    }
  return TRUE;
}

/* The first contradiction among the cluster sets, or NULL. */
static char *
cluster_conflict (const QpinTopology *topo, const gint *slot)
{
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);

      QPIN_CPUSET_FOREACH (m, &info->cluster)
        {
          const QpinTopoCpuInfo *other = info_of (topo, slot, (guint) m);
          if (!qpin_cpuset_equal (&other->cluster, &info->cluster))
            {
              g_autofree char *a = fmt (&info->cluster);
              g_autofree char *b = fmt (&other->cluster);
              return g_strdup_printf ("cpu %d shares its cluster with %s but cpu %d with %s", cpu,
                                      a, m, b);
            }
          if (other->package_id != info->package_id)
            return g_strdup_printf ("cpus %d and %d share a cluster but are in different packages",
                                    cpu, m);
        }
      if (!qpin_cpuset_is_subset (&info->siblings, &info->cluster))
        return g_strdup_printf ("thread siblings of cpu %d are not in its cluster", cpu);
    }
  return NULL;
}

/* Clusters (cluster_cpus_list): known for every online CPU and agreeing,
 * else none; a partial or contradictory reading is noted. */
static void
finish_clusters (QpinTopology *topo, const gint *slot)
{
  QpinCpuset unknown;
  g_autofree char *why = NULL;
  guint known = 0;

  qpin_cpuset_clear_all (&unknown);
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      QpinTopoCpuInfo *info = (QpinTopoCpuInfo *) info_of (topo, slot, (guint) cpu);

      qpin_cpuset_and (&info->cluster, &topo->online);
      if (qpin_cpuset_is_empty (&info->cluster))
        qpin_cpuset_add (&unknown, (guint) cpu);
      else
        {
          qpin_cpuset_add (&info->cluster, (guint) cpu);
          known++;
        }
    }
  if (known == 0)
    return;
  if (!qpin_cpuset_is_empty (&unknown))
    {
      g_autofree char *s = fmt (&unknown);
      qpin_topology_add_note (topo, "no cluster info for cpus %s; no clusters", s);
      return;
    }
  why = cluster_conflict (topo, slot);
  if (why)
    {
      qpin_topology_add_note (topo, "%s; no clusters", why);
      return;
    }
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);
      if (qpin_cpuset_first (&info->cluster) == cpu)
        g_array_append_val (topo->clusters, info->cluster);
    }
}

/* The kind of the first CPU of a core (kinds that disagree within a core
 * still give one answer); kinds->len for a CPU no kind lists. */
static guint
first_cpu_kind (const QpinTopology *topo, const QpinTopoCore *core)
{
  gint first = qpin_cpuset_first (&core->cpus);

  if (topo->kinds->len == 0)
    return 0;
  for (guint k = 0; k < topo->kinds->len; k++)
    if (qpin_cpuset_has (&g_array_index (topo->kinds, QpinTopoKind, k).cpus, (guint) first))
      return k;
  return topo->kinds->len;
}

/* The cluster of a core when it holds more than this core, else -1. */
static gint
multi_core_cluster (const QpinTopology *topo, const QpinTopoCore *core)
{
  gint first = qpin_cpuset_first (&core->cpus);

  for (guint i = 0; first >= 0 && i < topo->clusters->len; i++)
    {
      const QpinCpuset *cluster = &g_array_index (topo->clusters, QpinCpuset, i);
      if (qpin_cpuset_has (cluster, (guint) first))
        return qpin_cpuset_is_subset (cluster, &core->cpus) ? -1 : (gint) i;
    }
  return -1;
}

/* Per core: its kind and its cluster, for the placer and the score. */
static void
finish_core_kinds (QpinTopology *topo)
{
  g_autofree guint8 *seen = g_new0 (guint8, MAX (topo->clusters->len, 1));

  topo->core_kind = g_new0 (guint, MAX (topo->cores->len, 1));
  topo->core_cluster = g_new0 (gint, MAX (topo->cores->len, 1));
  for (guint k = 0; k < topo->cores->len; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      gint c = multi_core_cluster (topo, core);

      topo->core_kind[k] = first_cpu_kind (topo, core);
      topo->core_cluster[k] = c;
      if (c >= 0 && !seen[c])
        {
          seen[c] = 1;
          topo->n_multi_clusters++;
        }
    }
}

/* Checks the per-CPU information against the online set and indexes it:
 * @slot[cpu] is its position in cpu_info. */
static gboolean
index_cpu_info (QpinTopology *topo, guint n_slots, gint *slot, GError **error)
{
  for (guint c = 0; c < n_slots; c++)
    slot[c] = -1;
  for (guint i = 0; i < topo->cpu_info->len; i++)
    {
      QpinTopoCpuInfo *info = &g_array_index (topo->cpu_info, QpinTopoCpuInfo, i);

      if (!qpin_cpuset_has (&topo->online, info->cpu))
        return fail (error, "cpu %u has topology information but is not online", info->cpu);
      if (slot[info->cpu] >= 0)
        return fail (error, "cpu %u is described twice", info->cpu);
      slot[info->cpu] = (gint) i;
      qpin_cpuset_and (&info->siblings, &topo->online);
      qpin_cpuset_add (&info->siblings, info->cpu);
      qpin_cpuset_and (&info->llc, &topo->online);
      if (!qpin_cpuset_is_empty (&info->llc))
        qpin_cpuset_add (&info->llc, info->cpu);
    }
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    if (slot[cpu] < 0)
      return fail (error, "cpu %d is online but has no topology information", cpu);
  return TRUE;
}

static void
build_packages (QpinTopology *topo, const gint *slot)
{
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);
      guint p;
      for (p = 0; p < topo->packages->len; p++)
        if (g_array_index (topo->packages, QpinTopoPackage, p).id == info->package_id)
          break;
      if (p == topo->packages->len)
        {
          QpinTopoPackage pkg = { .id = info->package_id };
          qpin_cpuset_clear_all (&pkg.cpus);
          g_array_append_val (topo->packages, pkg);
        }
      qpin_cpuset_add (&g_array_index (topo->packages, QpinTopoPackage, p).cpus, (guint) cpu);
    }
  g_array_sort (topo->packages, cmp_package);
  for (guint p = 0; p < topo->packages->len; p++)
    QPIN_CPUSET_FOREACH (cpu, &g_array_index (topo->packages, QpinTopoPackage, p).cpus)
      topo->cpu_package[cpu] = (gint) p;
}

/* Cores: the sibling sets partition the online CPUs (resolve_cpu_conflicts()). */
static void
build_cores (QpinTopology *topo, const gint *slot)
{
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);
      QpinTopoCore core = { 0 };

      if (qpin_cpuset_first (&info->siblings) != cpu)
        continue;
      core.cpus = info->siblings;
      core.n_cpus = qpin_cpuset_count (&core.cpus);
      core.core_id = info->core_id;
      core.package = (guint) topo->cpu_package[cpu];
      g_array_append_val (topo->cores, core);
      topo->max_threads = MAX (topo->max_threads, core.n_cpus);
    }
  g_array_sort (topo->cores, cmp_core);
}

/* LLC groups; without cache information, one per package. */
static void
build_llcs (QpinTopology *topo, const gint *slot, gboolean have_llc)
{
  topo->llc_derived = !have_llc;
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinTopoCpuInfo *info = info_of (topo, slot, (guint) cpu);
      QpinTopoLlc llc = { 0 };

      if (!have_llc)
        {
          const QpinTopoPackage *pkg
            = &g_array_index (topo->packages, QpinTopoPackage, topo->cpu_package[cpu]);
          if (qpin_cpuset_first (&pkg->cpus) != cpu)
            continue;
          llc.cpus = pkg->cpus;
        }
      else
        {
          if (qpin_cpuset_first (&info->llc) != cpu)
            continue;
          llc.cpus = info->llc;
          llc.level = info->llc_level;
        }
      llc.package = (guint) topo->cpu_package[cpu];
      g_array_append_val (topo->llcs, llc);
    }
  g_array_sort (topo->llcs, cmp_llc);
}

/* cpu_llc, cpu_core, cpu_node, and each core's LLC group and node. */
static void
build_indexes (QpinTopology *topo)
{
  for (guint l = 0; l < topo->llcs->len; l++)
    QPIN_CPUSET_FOREACH (cpu, &g_array_index (topo->llcs, QpinTopoLlc, l).cpus)
      topo->cpu_llc[cpu] = (gint) l;
  for (guint k = 0; k < topo->cores->len; k++)
    QPIN_CPUSET_FOREACH (cpu, &g_array_index (topo->cores, QpinTopoCore, k).cpus)
      topo->cpu_core[cpu] = (gint) k;
  for (guint n = 0; n < topo->nodes->len; n++)
    QPIN_CPUSET_FOREACH (cpu, &g_array_index (topo->nodes, QpinTopoNode, n).cpus)
      topo->cpu_node[cpu] = (gint) n;
  for (guint k = 0; k < topo->cores->len; k++)
    {
      QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      gint first = qpin_cpuset_first (&core->cpus);
      core->llc = (guint) topo->cpu_llc[first];
      core->node = topo->cpu_node[first];
    }
}

static gboolean
finish_cpus (QpinTopology *topo, GError **error)
{
  guint n_slots = (guint) (qpin_cpuset_last (&topo->online) + 1);
  g_autofree gint *slot = g_new (gint, n_slots);
  gboolean have_llc;

  if (!index_cpu_info (topo, n_slots, slot, error))
    return FALSE;
  have_llc = resolve_cpu_conflicts (topo, slot);
  topo->n_slots = n_slots;
  topo->cpu_core = g_new (gint, n_slots);
  topo->cpu_llc = g_new (gint, n_slots);
  topo->cpu_node = g_new (gint, n_slots);
  topo->cpu_package = g_new (gint, n_slots);
  for (guint c = 0; c < n_slots; c++)
    topo->cpu_core[c] = topo->cpu_llc[c] = topo->cpu_node[c] = topo->cpu_package[c] = -1;
  build_packages (topo, slot);
  build_cores (topo, slot);
  build_llcs (topo, slot, have_llc);
  build_indexes (topo);
  finish_clusters (topo, slot);
  for (guint k = 0; k < topo->kinds->len; k++)
    qpin_cpuset_and (&g_array_index (topo->kinds, QpinTopoKind, k).cpus, &topo->online);
  finish_core_kinds (topo);
  return TRUE;
}

/**
 * qpin_topology_finish:
 *
 * Validates what was recorded and derives cores, packages, LLC groups and
 * the per-CPU indexes.  Call once.
 *
 * Returns: %TRUE on success; %QPIN_POLICY_ERROR_CONFLICT naming the CPUs
 * or nodes that contradict each other otherwise.
 */
gboolean
qpin_topology_finish (QpinTopology *topo, GError **error)
{
  g_return_val_if_fail (!topo->finished, FALSE);

  if (qpin_cpuset_is_empty (&topo->online))
    return fail (error, "no cpu is online");
  if (!qpin_cpuset_is_subset (&topo->online, &topo->present))
    {
      QpinCpuset extra = topo->online;
      g_autofree char *s = NULL;
      qpin_cpuset_andnot (&extra, &topo->present);
      s = fmt (&extra);
      qpin_topology_add_note (topo, "cpus %s are online but not present; taken as present", s);
      qpin_cpuset_or (&topo->present, &extra);
    }
  topo->offline = topo->present;
  qpin_cpuset_andnot (&topo->offline, &topo->online);
  qpin_cpuset_or (&topo->possible, &topo->present);
  qpin_cpuset_and (&topo->isolated, &topo->online);
  qpin_cpuset_and (&topo->nohz_full, &topo->online);
  if (!finish_nodes (topo, error))
    return FALSE;
  if (!finish_cpus (topo, error))
    return FALSE;
  topo->finished = TRUE;
  return TRUE;
}

/**
 * qpin_topology_n_nodes:
 *
 * Returns: the number of NUMA nodes, CPU-less ones included.
 */
guint
qpin_topology_n_nodes (const QpinTopology *topo)
{
  return topo->nodes->len;
}

/**
 * qpin_topology_node:
 *
 * Returns: (transfer none): the node at @index (not its id).
 */
const QpinTopoNode *
qpin_topology_node (const QpinTopology *topo, guint index)
{
  return &g_array_index (topo->nodes, QpinTopoNode, index);
}

/**
 * qpin_topology_node_index:
 *
 * Returns: the index of node @node_id, or -1.
 */
gint
qpin_topology_node_index (const QpinTopology *topo, guint node_id)
{
  for (guint i = 0; i < topo->nodes->len; i++)
    if (g_array_index (topo->nodes, QpinTopoNode, i).id == node_id)
      return (gint) i;
  return -1;
}

/**
 * qpin_topology_distance:
 *
 * Returns: the distance between node indexes @a and @b.
 */
guint
qpin_topology_distance (const QpinTopology *topo, guint a, guint b)
{
  return topo->distance[a * topo->nodes->len + b];
}

/**
 * qpin_topology_cpu_node:
 *
 * Returns: the node index of online CPU @cpu, or -1.
 */
gint
qpin_topology_cpu_node (const QpinTopology *topo, guint cpu)
{
  return cpu < topo->n_slots ? topo->cpu_node[cpu] : -1;
}

/**
 * qpin_topology_cpu_core:
 *
 * Returns: the core index of online CPU @cpu, or -1.
 */
gint
qpin_topology_cpu_core (const QpinTopology *topo, guint cpu)
{
  return cpu < topo->n_slots ? topo->cpu_core[cpu] : -1;
}

/**
 * qpin_topology_cpu_llc:
 *
 * Returns: the LLC group index of online CPU @cpu, or -1.
 */
gint
qpin_topology_cpu_llc (const QpinTopology *topo, guint cpu)
{
  return cpu < topo->n_slots ? topo->cpu_llc[cpu] : -1;
}

/**
 * qpin_topology_nodes_of:
 * @node_ids: (out): the ids of the nodes that hold any of @cpus
 */
void
qpin_topology_nodes_of (const QpinTopology *topo, const QpinCpuset *cpus, QpinCpuset *node_ids)
{
  qpin_cpuset_clear_all (node_ids);
  QPIN_CPUSET_FOREACH (cpu, cpus)
    {
      gint n = qpin_topology_cpu_node (topo, (guint) cpu);
      if (n >= 0)
        qpin_cpuset_add (node_ids, qpin_topology_node (topo, (guint) n)->id);
    }
}

/* "kinds: P cpus 0-11 (64), E cpus 12-19 (39) from SOURCE" and
 * "clusters: 12-15 16-19" (those of more than one core), when known. */
static void
append_kinds_clusters (GString *s, const QpinTopology *topo)
{
  gboolean any = FALSE;

  if (topo->kinds->len > 0)
    {
      g_string_append (s, "kinds:");
      for (guint k = 0; k < topo->kinds->len; k++)
        {
          const QpinTopoKind *kind = &g_array_index (topo->kinds, QpinTopoKind, k);
          g_autofree char *cpus = fmt (&kind->cpus);
          g_string_append_printf (s, "%s %s cpus %s (%u)", k ? "," : "", kind->name, cpus,
                                  kind->capacity);
        }
      g_string_append_printf (s, " from %s\n", g_array_index (topo->kinds, QpinTopoKind, 0).source);
    }
  for (guint c = 0; c < topo->clusters->len; c++)
    {
      const QpinCpuset *cluster = &g_array_index (topo->clusters, QpinCpuset, c);
      g_autofree char *cpus = NULL;
      gint first = qpin_cpuset_first (cluster);

      if (qpin_cpuset_equal (
            cluster, &g_array_index (topo->cores, QpinTopoCore, topo->cpu_core[first]).cpus))
        continue;
      cpus = fmt (cluster);
      g_string_append_printf (s, "%s %s", any ? "" : "clusters:", cpus);
      any = TRUE;
    }
  if (any)
    g_string_append_c (s, '\n');
}

/**
 * qpin_topology_to_text:
 *
 * Returns: (transfer full): the model as an indented human-readable tree.
 */
char *
qpin_topology_to_text (const QpinTopology *topo)
{
  GString *s = g_string_new (NULL);
  g_autofree char *online = fmt (&topo->online);
  g_autofree char *offline = fmt (&topo->offline);
  g_autofree char *isolated = fmt (&topo->isolated);
  g_autofree char *nohz = fmt (&topo->nohz_full);
  guint n = topo->nodes->len;

  g_string_append_printf (
    s, "host: %u package%s, %u node%s, %u LLC group%s%s, %u cores, %u cpus online (%s)\n",
    topo->packages->len, topo->packages->len == 1 ? "" : "s", n, n == 1 ? "" : "s", topo->llcs->len,
    topo->llcs->len == 1 ? "" : "s",
    topo->llc_derived ? " (from packages: no cache information)" : "", topo->cores->len,
    qpin_cpuset_count (&topo->online), online);
  g_string_append_printf (s, "offline: %s\nisolated: %s\nnohz_full: %s\n", offline, isolated, nohz);
  append_kinds_clusters (s, topo);
  for (guint i = 0; i < topo->notes->len; i++)
    g_string_append_printf (s, "note: %s\n", (const char *) g_ptr_array_index (topo->notes, i));
  for (guint i = 0; i < n; i++)
    {
      const QpinTopoNode *node = qpin_topology_node (topo, i);
      g_autofree char *cpus = fmt (&node->cpus);

      g_string_append_printf (s,
                              "node %u: cpus %s, memory %" G_GUINT64_FORMAT
                              " MiB (free %" G_GUINT64_FORMAT " MiB), distances",
                              node->id, cpus, node->mem_total_kb / 1024, node->mem_free_kb / 1024);
      for (guint j = 0; j < n; j++)
        g_string_append_printf (s, " %u", qpin_topology_distance (topo, i, j));
      g_string_append_c (s, '\n');
      for (guint p = 0; p < topo->packages->len; p++)
        {
          const QpinTopoPackage *pkg = &g_array_index (topo->packages, QpinTopoPackage, p);
          QpinCpuset in = pkg->cpus;
          g_autofree char *pc = NULL;

          qpin_cpuset_and (&in, &node->cpus);
          if (qpin_cpuset_is_empty (&in))
            continue;
          pc = fmt (&in);
          g_string_append_printf (s, "  package %u: cpus %s\n", pkg->id, pc);
          for (guint l = 0; l < topo->llcs->len; l++)
            {
              const QpinTopoLlc *llc = &g_array_index (topo->llcs, QpinTopoLlc, l);
              QpinCpuset lin = llc->cpus;
              g_autofree char *lc = NULL;

              qpin_cpuset_and (&lin, &in);
              if (qpin_cpuset_is_empty (&lin))
                continue;
              lc = fmt (&llc->cpus);
              g_string_append_printf (s, "    llc %u (L%u): cpus %s\n", l, llc->level, lc);
              for (guint k = 0; k < topo->cores->len; k++)
                {
                  const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
                  g_autofree char *cc = NULL;
                  if (core->llc != l || core->node != (gint) i)
                    continue;
                  cc = fmt (&core->cpus);
                  g_string_append_printf (s, "      core %u (id %u): cpus %s\n", k, core->core_id,
                                          cc);
                }
            }
        }
    }
  return g_string_free (s, FALSE);
}

/**
 * qpin_topology_cpu_kind:
 *
 * Returns: the index into kinds of the kind of @cpu, fastest 0; 0 on a host
 * with one kind; kinds->len (after the slowest) for a CPU no kind lists.
 */
guint
qpin_topology_cpu_kind (const QpinTopology *topo, guint cpu)
{
  if (topo->kinds->len == 0)
    return 0;
  for (guint k = 0; k < topo->kinds->len; k++)
    if (qpin_cpuset_has (&g_array_index (topo->kinds, QpinTopoKind, k).cpus, cpu))
      return k;
  return topo->kinds->len;
}

/**
 * qpin_topology_cpu_kind_name:
 *
 * Returns: (transfer none): the name of the kind of @cpu ("P", "E"), "?"
 * for a CPU no kind lists, "" on a host with one kind.
 */
const char *
qpin_topology_cpu_kind_name (const QpinTopology *topo, guint cpu)
{
  guint k = qpin_topology_cpu_kind (topo, cpu);

  if (topo->kinds->len == 0)
    return "";
  return k < topo->kinds->len ? g_array_index (topo->kinds, QpinTopoKind, k).name : "?";
}

/**
 * qpin_topology_core_kind:
 *
 * Returns: the kind of core @core (an index into cores): that of its first
 * CPU, so that kinds which disagree within a core still give one answer.
 */
guint
qpin_topology_core_kind (const QpinTopology *topo, guint core)
{
  return topo->core_kind[core];
}

/**
 * qpin_topology_core_cluster:
 *
 * Returns: the index into clusters of the cluster of core @core when that
 * cluster holds more than this core (an L2 shared by four E-cores), else -1.
 */
gint
qpin_topology_core_cluster (const QpinTopology *topo, guint core)
{
  return topo->core_cluster[core];
}
