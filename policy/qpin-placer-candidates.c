/* qpin-placer-candidates.c: the candidate domains of a group (one cell,
 * one node, several nodes), each filled, scored and given back
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

static void
candidate_clear (gpointer data)
{
  Candidate *c = data;
  if (c->cells)
    g_array_unref (c->cells);
  if (c->taken)
    g_array_unref (c->taken);
}

/* The kind terms of a fill: kinds used, and how far from the kind the VM
 * wants its vCPUs are (fast: the sum of their kind ranks, fastest 0;
 * efficient: the reverse; any: nothing). */
static void
cost_kinds (const QpinPlacer *p, const Placing *pl, guint from, Cost *cost)
{
  const QpinPlanVm *vm = g_ptr_array_index (p->slots, pl->slot);
  QpinKindMode mode = vm->policy->kind;
  guint max = p->topo->kinds->len;
  guint64 used = 0;
  guint rank = 0;

  if (max < 2 || mode == QPIN_KIND_ANY)
    return;
  for (guint i = from; i < pl->undo->len; i++)
    {
      guint cpu = g_array_index (pl->undo, guint, i);
      guint kind = p->topo->core_kind[p->topo->cpu_core[cpu]];

      if (p->kind[cpu] != KIND_EXCLUSIVE)
        continue;
      used |= G_GUINT64_CONSTANT (1) << MIN (kind, 63u);
      rank += mode == QPIN_KIND_FAST ? kind : max - kind;
    }
  cost->v[0] = (guint) __builtin_popcountll (used);
  cost->v[1] = rank;
}

/* Scores a fill that just happened (undo[from..] are its CPUs). */
static void
cost_of (QpinPlacer *p, const Placing *pl, guint from, guint domain_free, Cost *cost)
{
  const QpinTopology *topo = p->topo;
  const Group *g = pl->g;
  GArray *undo = pl->undo;
  gint slot = pl->slot;
  guint64 nodes = 0, llcs_small = 0;
  guint n_llcs = 0, n_clusters = 0;
  guint first = G_MAXUINT, iso_miss = 0, shared = 0, sib = 0, dist = 0;
  gint half = 0;
  gboolean few_nodes = topo->nodes->len <= 64;

  p->stamp++;
  /* core_mark: stamp when seen, counts taken CPUs in the high bits */
  for (guint i = from; i < undo->len; i++)
    {
      guint cpu = g_array_index (undo, guint, i);
      guint k = (guint) topo->cpu_core[cpu];

      p->work++;
      if (p->kind[cpu] == KIND_EXCLUSIVE)
        {
          guint l = (guint) topo->cpu_llc[cpu];
          if (few_nodes)
            nodes |= G_GUINT64_CONSTANT (1) << topo->cpu_node[cpu];
          if (l < 64)
            llcs_small |= G_GUINT64_CONSTANT (1) << l;
          else
            n_llcs++; /* beyond 64 LLC groups: an upper bound is enough */
          first = MIN (first, cpu);
          if (p->have_isolated && !qpin_cpuset_has (&p->isolated, cpu))
            iso_miss++;
        }
      if (p->core_mark[k] != p->stamp)
        {
          guint taken = 0;
          p->core_mark[k] = p->stamp;
          if (topo->core_cluster[k] >= 0 && p->cluster_mark[topo->core_cluster[k]] != p->stamp)
            {
              p->cluster_mark[topo->core_cluster[k]] = p->stamp;
              n_clusters++;
            }
          for (guint j = from; j < undo->len; j++)
            taken += (guint) topo->cpu_core[g_array_index (undo, guint, j)] == k;
          if (core_has_other (p, k, slot))
            shared++;
          half += p->core_free[k] > 0 ? 1 : 0;
          half
            -= (p->core_free[k] + taken > 0 && p->core_free[k] + taken < p->core_usable[k]) ? 1 : 0;
        }
    }
  for (guint ui = 0; ui < g->units->len; ui++)
    {
      const Unit *u = &g_array_index (g->units, Unit, ui);
      if (!u->guest_siblings)
        continue;
      for (guint a = 0; a < u->n; a++)
        for (guint b = a + 1; b < u->n; b++)
          if (topo->cpu_core[TCPU (p, u->idx[a])] != topo->cpu_core[TCPU (p, u->idx[b])])
            sib++;
    }
  if (few_nodes)
    {
      guint64 all = nodes;
      QPIN_CPUSET_FOREACH (n, pl->prev_nodes)
        if (n < 64)
          all |= G_GUINT64_CONSTANT (1) << n;
      for (guint a = 0; a < topo->nodes->len; a++)
        for (guint b = a + 1; b < topo->nodes->len; b++)
          if (((all >> a) & 1) && ((all >> b) & 1) && (((nodes >> a) & 1) || ((nodes >> b) & 1)))
            dist += qpin_topology_distance (topo, a, b);
    }
  *cost = (Cost){ 0 };
  cost_kinds (p, pl, from, cost);
  cost->v[2] = (guint) __builtin_popcountll (nodes);
  cost->v[3] = dist;
  cost->v[4] = (guint) __builtin_popcountll (llcs_small) + n_llcs;
  cost->v[5] = n_clusters;
  cost->v[6] = iso_miss;
  cost->v[7] = shared;
  cost->v[8] = sib;
  cost->v[9] = (guint) (half + 100000);
  cost->v[10] = domain_free;
  cost->v[11] = first;
}

/* Tries one domain; on success appends a candidate. */
static void
try_domain (QpinPlacer *p, const Placing *pl, GArray *cells, guint level, GArray *out)
{
  GArray *undo = pl->undo;
  guint from = undo->len;
  guint domain_free = 0;
  QpinPlanVm *vm = g_ptr_array_index (p->slots, pl->slot);

  for (guint i = 0; i < cells->len; i++)
    domain_free += p->cell_free[g_array_index (cells, guint, i)];
  if (qpin_placer_fill (p, pl, (const guint *) cells->data, cells->len))
    {
      guint n = undo->len - from;
      gboolean same = FALSE;

      for (guint i = 0; i < out->len && !same; i++)
        {
          const Candidate *o = &g_array_index (out, Candidate, i);
          same = o->taken->len == n
                 && memcmp (o->taken->data, &g_array_index (undo, guint, from), n * sizeof (guint))
                      == 0;
        }
      if (!same)
        {
          Candidate c = { .cells = g_array_copy (cells),
                          .level = level,
                          .taken = g_array_sized_new (FALSE, FALSE, sizeof (guint), n) };
          g_array_append_vals (c.taken, &g_array_index (undo, guint, from), n);
          cost_of (p, pl, from, domain_free, &c.cost);
          g_array_append_val (out, c);
        }
    }
  qpin_placer_rollback (p, vm, undo, from);
}

typedef struct {
  const QpinPlacer *p;
  gboolean isolate;
} CapOrder;

/* Which cells a domain may use besides their node: one LLC group, one
 * kind (-1: any). */
typedef struct {
  gint llc;
  gint kind;
} CellFilter;

static gboolean
cell_passes (const QpinPlacer *p, guint c, const gboolean *in_node, const CellFilter *f)
{
  const Cell *cell = &g_array_index (p->cells, Cell, c);
  return in_node[cell->node] && (f->llc < 0 || cell->llc == (guint) f->llc)
         && (f->kind < 0 || cell->kind == (guint) f->kind);
}

static gint
cmp_cap_desc (gconstpointer a, gconstpointer b, gpointer data)
{
  const guint *cap = data;
  guint x = *(const guint *) a, y = *(const guint *) b;
  if (cap[x] != cap[y])
    return cap[x] > cap[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* Orders @ids so that the fewest of them holding @need come first, largest
 * first, the last one the best fit (the smallest that completes); the
 * others after, largest first. */
static void
fewest_first (GArray *ids, const guint *cap, guint need)
{
  g_autoptr (GArray) chosen = g_array_sized_new (FALSE, FALSE, sizeof (guint), ids->len);
  guint sum = 0;

  g_array_sort_with_data (ids, cmp_cap_desc, (gpointer) cap);
  for (guint i = 0; i < ids->len && sum < need; i++)
    {
      guint c = g_array_index (ids, guint, i);

      if (sum + cap[c] >= need)
        for (guint j = ids->len; j-- > i + 1;)
          {
            guint d = g_array_index (ids, guint, j);
            if (sum + cap[d] >= need)
              {
                c = d;
                g_array_index (ids, guint, j) = g_array_index (ids, guint, i);
                break;
              }
          }
      g_array_append_val (chosen, c);
      sum += cap[c];
    }
  for (guint i = 0; i < ids->len; i++)
    {
      guint c = g_array_index (ids, guint, i);
      gboolean seen = FALSE;
      for (guint j = 0; j < chosen->len; j++)
        seen |= g_array_index (chosen, guint, j) == c;
      if (!seen)
        g_array_append_val (chosen, c);
    }
  g_array_set_size (ids, 0);
  g_array_append_vals (ids, chosen->data, chosen->len);
}

/* The cells of @nodes (node index mask) that pass @f, in fill order: the
 * fewest LLC groups (cells of one LLC group and node together) holding
 * @need, then inside each the fewest cells (clusters, kinds) holding what
 * is left of @need; so that clusters never make a VM span more LLC groups. */
static GArray *
pick_cells_where (const QpinPlacer *p, const gboolean *in_node, const CellFilter *f, guint need,
                  gboolean isolate)
{
  guint n = p->cells->len;
  g_autofree guint *cap = g_new0 (guint, MAX (n, 1));
  g_autofree guint *group_cap = g_new0 (guint, MAX (n, 1));
  g_autofree gint *group = g_new (gint, MAX (n, 1));
  g_autoptr (GArray) groups = g_array_new (FALSE, FALSE, sizeof (guint));
  GArray *out = g_array_new (FALSE, FALSE, sizeof (guint));
  guint before = 0;

  for (guint c = 0; c < n; c++)
    {
      guint g = p->cell_group[c];

      group[c] = -1;
      if (!cell_passes (p, c, in_node, f) || (cap[c] = cap_cell (p, c, isolate)) == 0)
        continue;
      group[c] = (gint) g;
      if (group_cap[g] == 0)
        g_array_append_val (groups, g);
      group_cap[g] += cap[c];
    }
  fewest_first (groups, group_cap, need);
  if (p->topo->kinds->len < 2 && p->topo->n_multi_clusters == 0)
    {
      /* one cell per LLC group and node: the groups are the cells */
      g_array_append_vals (out, groups->data, groups->len);
      return out;
    }
  for (guint i = 0; i < groups->len; i++)
    {
      guint g = g_array_index (groups, guint, i);
      g_autoptr (GArray) cells = g_array_new (FALSE, FALSE, sizeof (guint));

      for (guint c = g; c < n; c++)
        if (group[c] == (gint) g)
          g_array_append_val (cells, c);
      fewest_first (cells, cap, MIN (need > before ? need - before : 0, group_cap[g]));
      g_array_append_vals (out, cells->data, cells->len);
      before += group_cap[g];
    }
  return out;
}

/* The fewest cells of @nodes (node index mask) holding @need, largest
 * first, the last one the best fit. */
GArray *
qpin_placer_pick_cells (const QpinPlacer *p, const gboolean *in_node, guint need, gboolean isolate)
{
  const CellFilter any = { -1, -1 };
  return pick_cells_where (p, in_node, &any, need, isolate);
}

static gint
cmp_cell_cap_small (gconstpointer a, gconstpointer b, gpointer data)
{
  const CapOrder *o = data;
  guint x = *(const guint *) a, y = *(const guint *) b;
  guint cx = cap_cell (o->p, x, o->isolate), cy = cap_cell (o->p, y, o->isolate);
  if (cx != cy)
    return cx < cy ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* Every cell of @nodes, smallest first: uses up the small cells and keeps
 * the large ones whole for the VMs still to come. */
static GArray *
pick_cells_small_first (const QpinPlacer *p, const gboolean *in_node, gboolean isolate)
{
  GArray *all = g_array_new (FALSE, FALSE, sizeof (guint));
  CapOrder order = { p, isolate };

  for (guint c = 0; c < p->cells->len; c++)
    if (in_node[g_array_index (p->cells, Cell, c).node] && cap_cell (p, c, isolate) > 0)
      g_array_append_val (all, c);
  g_array_sort_with_data (all, cmp_cell_cap_small, &order);
  return all;
}

static gint
cmp_candidate (gconstpointer a, gconstpointer b)
{
  const Candidate *x = a, *y = b;
  for (guint i = 0; i < N_COST; i++)
    if (x->cost.v[i] != y->cost.v[i])
      return x->cost.v[i] < y->cost.v[i] ? -1 : 1;
  return 0;
}

/* 1. one cell */
static void
domains_one_cell (QpinPlacer *p, const Placing *pl, GArray *out)
{
  g_autoptr (GArray) cells = g_array_new (FALSE, FALSE, sizeof (guint));

  for (guint c = 0; c < p->cells->len; c++)
    if (pl->allowed[g_array_index (p->cells, Cell, c).node]
        && cap_cell (p, c, pl->isolate) >= pl->g->n_vcpus)
      {
        g_array_set_size (cells, 0);
        g_array_append_val (cells, c);
        try_domain (p, pl, cells, 0, out);
      }
}

/* Inside one node: the cells of one kind, of one LLC group (whose
 * clusters are cells of their own), and of both, each that holds the
 * group: a VM that fits one kind or one LLC group gets one. */
static void
domains_one_node_narrow (QpinPlacer *p, const Placing *pl, const gboolean *mask, GArray *out)
{
  gint n_kinds = p->topo->kinds->len > 1 ? (gint) p->topo->kinds->len + 1 : 0;
  gint n_llcs = p->topo->n_multi_clusters > 0 ? (gint) p->topo->llcs->len : 0;

  for (gint kind = -1; kind < n_kinds; kind++)
    for (gint llc = -1; llc < n_llcs; llc++)
      {
        CellFilter f = { llc, kind };
        g_autoptr (GArray) pc = NULL;
        guint cap = 0;

        if (llc < 0 && kind < 0)
          continue;
        for (guint c = 0; c < p->cells->len; c++)
          if (cell_passes (p, c, mask, &f))
            cap += cap_cell (p, c, pl->isolate);
        if (cap < pl->g->n_vcpus)
          continue;
        pc = pick_cells_where (p, mask, &f, pl->g->n_vcpus, pl->isolate);
        try_domain (p, pl, pc, 1, out);
      }
}

/* 2. one node, fewest cells (the search also: small cells first) */
static void
domains_one_node (QpinPlacer *p, const Placing *pl, gboolean *mask, GArray *out)
{
  guint n_nodes = p->topo->nodes->len;
  guint need = pl->g->n_vcpus;

  for (guint n = 0; n < n_nodes; n++)
    if (pl->allowed[n] && cap_node (p, n, pl->isolate) >= need)
      {
        g_autoptr (GArray) pc = NULL;
        memset (mask, 0, sizeof (gboolean) * n_nodes);
        mask[n] = TRUE;
        pc = qpin_placer_pick_cells (p, mask, need, pl->isolate);
        try_domain (p, pl, pc, 1, out);
        domains_one_node_narrow (p, pl, mask, out);
        if (pl->diverse)
          {
            g_autoptr (GArray) small = pick_cells_small_first (p, mask, pl->isolate);
            try_domain (p, pl, small, 1, out);
          }
      }
}

/* Adds the nearest allowed nodes (by summed distance to those in @mask,
 * then the most free) until they hold the group.  Returns their capacity. */
static guint
grow_nodes (const QpinPlacer *p, const Placing *pl, gboolean *mask, guint sum)
{
  const QpinTopology *topo = p->topo;
  guint n_nodes = topo->nodes->len;
  gboolean isolate = pl->isolate;

  while (sum < pl->g->n_vcpus)
    {
      gint best = -1;
      guint bd = 0;
      for (guint n = 0; n < n_nodes; n++)
        {
          guint d = 0;
          if (mask[n] || !pl->allowed[n] || cap_node (p, n, isolate) == 0)
            continue;
          for (guint m = 0; m < n_nodes; m++)
            if (mask[m])
              d += qpin_topology_distance (topo, n, m);
          if (best < 0 || d < bd
              || (d == bd && cap_node (p, n, isolate) > cap_node (p, (guint) best, isolate)))
            {
              best = (gint) n;
              bd = d;
            }
        }
      if (best < 0)
        break;
      mask[best] = TRUE;
      sum += cap_node (p, (guint) best, isolate);
    }
  return sum;
}

/* The search's extra domains over the nodes of @mask: the seed node's
 * cells first, the others after (spans more LLC groups but leaves another
 * node whole), and small cells first. */
static void
domains_seeded (QpinPlacer *p, const Placing *pl, const gboolean *mask, guint seed, GArray *pc,
                GArray *out)
{
  g_autoptr (GArray) first = NULL;
  g_autoptr (GArray) seeded = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) small = NULL;
  g_autofree gboolean *only = g_new0 (gboolean, p->topo->nodes->len);

  only[seed] = TRUE;
  first = qpin_placer_pick_cells (p, only, pl->g->n_vcpus, pl->isolate);
  g_array_append_vals (seeded, first->data, first->len);
  for (guint i = 0; i < pc->len; i++)
    if (g_array_index (p->cells, Cell, g_array_index (pc, guint, i)).node != seed)
      g_array_append_val (seeded, g_array_index (pc, guint, i));
  try_domain (p, pl, seeded, 2, out);
  small = pick_cells_small_first (p, mask, pl->isolate);
  try_domain (p, pl, small, 2, out);
}

/* 3. several nodes, grown from each seed by distance; the search also
 * tries every second node, not only the nearest */
static void
domains_several_nodes (QpinPlacer *p, const Placing *pl, gboolean *mask, GArray *out)
{
  guint n_nodes = p->topo->nodes->len;
  gboolean isolate = pl->isolate;

  for (guint seed = 0; seed < n_nodes; seed++)
    for (gint second = pl->diverse && n_nodes <= 8 ? 0 : -1; second < (gint) n_nodes; second++)
      {
        g_autoptr (GArray) pc = NULL;
        guint sum;

        if (!pl->allowed[seed] || cap_node (p, seed, isolate) == 0)
          break;
        if (second >= 0
            && ((guint) second == seed || !pl->allowed[second]
                || cap_node (p, (guint) second, isolate) == 0))
          continue;
        memset (mask, 0, sizeof (gboolean) * n_nodes);
        mask[seed] = TRUE;
        sum = cap_node (p, seed, isolate);
        if (second >= 0)
          {
            mask[second] = TRUE;
            sum += cap_node (p, (guint) second, isolate);
          }
        if (grow_nodes (p, pl, mask, sum) < pl->g->n_vcpus)
          break;
        pc = qpin_placer_pick_cells (p, mask, pl->g->n_vcpus, isolate);
        try_domain (p, pl, pc, 2, out);
        if (pl->diverse)
          domains_seeded (p, pl, mask, seed, pc, out);
      }
}

/* 3b. hybrid hosts: the cells of one kind over every allowed node, fewest
 * cells, for a group that no one node holds on one kind */
static void
domains_one_kind (QpinPlacer *p, const Placing *pl, GArray *out)
{
  guint n_kinds = p->topo->kinds->len;

  for (guint kind = 0; kind <= n_kinds; kind++)
    {
      CellFilter f = { -1, (gint) kind };
      g_autoptr (GArray) pc = NULL;
      guint cap = 0;

      for (guint c = 0; c < p->cells->len; c++)
        if (cell_passes (p, c, pl->allowed, &f))
          cap += cap_cell (p, c, pl->isolate);
      if (cap < pl->g->n_vcpus)
        continue;
      pc = pick_cells_where (p, pl->allowed, &f, pl->g->n_vcpus, pl->isolate);
      try_domain (p, pl, pc, 2, out);
    }
}

/* The best of every other level right after the overall best. */
static void
promote_levels (GArray *out)
{
  guint next = 1;

  for (guint level = 0; level < 3; level++)
    for (guint i = next; i < out->len; i++)
      {
        Candidate *c = &g_array_index (out, Candidate, i);
        if (c->level != level || level == g_array_index (out, Candidate, 0).level)
          continue;
        if (i != next)
          {
            Candidate tmp = *c;
            memmove (&g_array_index (out, Candidate, next + 1),
                     &g_array_index (out, Candidate, next), (i - next) * sizeof (Candidate));
            g_array_index (out, Candidate, next) = tmp;
          }
        next++;
        break;
      }
}

/* Candidate domains for the group of @pl, best first.  Greedy placement
 * only needs the first level that fits; the search (@pl->diverse) also
 * wants the wider levels, because giving one VM a wider domain can let
 * another stay whole: the best of each level then comes right after the
 * overall best. */
GArray *
qpin_placer_candidates (QpinPlacer *p, const Placing *pl)
{
  GArray *out = g_array_new (FALSE, TRUE, sizeof (Candidate));
  g_autofree gboolean *mask = g_new0 (gboolean, p->topo->nodes->len);

  g_array_set_clear_func (out, candidate_clear);
  domains_one_cell (p, pl, out);
  /* on a hybrid host a faster kind may hold the group in two cells */
  if (out->len == 0 || pl->diverse || p->topo->kinds->len > 1)
    domains_one_node (p, pl, mask, out);
  if ((out->len == 0 || pl->diverse) && pl->numa != QPIN_NUMA_STRICT)
    domains_several_nodes (p, pl, mask, out);
  if (p->topo->kinds->len > 1 && pl->numa != QPIN_NUMA_STRICT && p->topo->nodes->len > 1)
    domains_one_kind (p, pl, out);
  g_array_sort (out, cmp_candidate);
  if (pl->diverse && out->len > 2)
    promote_levels (out);
  return out;
}
