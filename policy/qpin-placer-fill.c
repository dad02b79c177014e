/* qpin-placer-fill.c: units and groups of vCPUs, and filling a domain
 * with them
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

static gint
cmp_guest (const QpinThreadSpec *a, const QpinThreadSpec *b)
{
  const gint x[] = { a->topo.node, a->topo.socket, a->topo.die,    a->topo.cluster,
                     a->topo.core, a->topo.thread, (gint) a->index };
  const gint y[] = { b->topo.node, b->topo.socket, b->topo.die,    b->topo.cluster,
                     b->topo.core, b->topo.thread, (gint) b->index };
  for (guint i = 0; i < G_N_ELEMENTS (x); i++)
    if (x[i] != y[i])
      return x[i] < y[i] ? -1 : 1;
  return 0;
}

static gint
cmp_idx (gconstpointer a, gconstpointer b, gpointer specs)
{
  guint i = *(const guint *) a, j = *(const guint *) b;
  return cmp_guest (&((const QpinThreadSpec *) specs)[i], &((const QpinThreadSpec *) specs)[j]);
}

static gint
cmp_unit (gconstpointer a, gconstpointer b)
{
  const Unit *x = a, *y = b;
  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return x->idx[0] < y->idx[0] ? -1 : x->idx[0] > y->idx[0];
}

static void
group_clear (gpointer data)
{
  Group *g = data;
  g_array_unref (g->units);
}

/* Splits the vCPUs (thread indexes @idx) of a VM into groups of units. */
GArray *
qpin_placer_build_groups (const QpinPlacer *p, const QpinPlanVm *vm, GArray *idx, gboolean isolate)
{
  GArray *groups = g_array_new (FALSE, TRUE, sizeof (Group));
  g_autofree QpinThreadSpec *specs = g_new (QpinThreadSpec, vm->threads->len);
  guint host_threads = CLAMP (p->topo->max_threads, 1, MAX_UNIT);
  gboolean guest_smt = FALSE;

  g_array_set_clear_func (groups, group_clear);
  for (guint i = 0; i < vm->threads->len; i++)
    specs[i] = g_array_index (vm->threads, QpinPlanThread, i).spec;
  for (guint i = 0; i < idx->len; i++)
    if (specs[g_array_index (idx, guint, i)].topo.thread > 0)
      guest_smt = TRUE;
  g_array_sort_with_data (idx, cmp_idx, specs);

  for (guint i = 0; i < idx->len; i++)
    {
      guint t = g_array_index (idx, guint, i);
      const QpinThreadSpec *s = &specs[t];
      Group *g = groups->len ? &g_array_index (groups, Group, groups->len - 1) : NULL;
      Unit *u;
      gboolean same_core = FALSE;

      if (g == NULL || g->node != s->topo.node)
        {
          Group ng = { .node = s->topo.node, .units = g_array_new (FALSE, TRUE, sizeof (Unit)) };
          g_array_append_val (groups, ng);
          g = &g_array_index (groups, Group, groups->len - 1);
        }
      g->n_vcpus++;
      u = g->units->len ? &g_array_index (g->units, Unit, g->units->len - 1) : NULL;
      if (u && !isolate)
        {
          const QpinThreadSpec *prev = &specs[u->idx[u->n - 1]];
          if (guest_smt)
            same_core = prev->topo.socket == s->topo.socket && prev->topo.die == s->topo.die
                        && prev->topo.cluster == s->topo.cluster && prev->topo.core == s->topo.core;
          else
            same_core = TRUE; /* pack a non-SMT guest into whole host cores */
        }
      if (u == NULL || !same_core || u->n >= host_threads)
        {
          Unit nu = { 0 };
          g_array_append_val (g->units, nu);
          u = &g_array_index (g->units, Unit, g->units->len - 1);
        }
      u->idx[u->n++] = t;
      u->guest_siblings = guest_smt && u->n > 1;
    }
  for (guint i = 0; i < groups->len; i++)
    g_array_sort (g_array_index (groups, Group, i).units, cmp_unit);
  return groups;
}

/* The best core of @cells for a whole unit of @n vCPUs, or -1. */
static gint
best_core_whole (QpinPlacer *p, const Placing *pl, guint n, const guint *cells, guint n_cells)
{
  guint best_key[5] = { G_MAXUINT, 0, 0, 0, 0 };
  gint best = -1;

  for (guint ci = 0; ci < n_cells; ci++)
    {
      const Cell *cell = &g_array_index (p->cells, Cell, cells[ci]);
      if (p->cell_free[cells[ci]] == 0)
        continue;
      for (guint j = 0; j < cell->cores->len; j++)
        {
          guint k = g_array_index (cell->cores, guint, j);
          guint key[5];

          p->work++;
          if (pl->isolate ? !core_whole (p, k) : p->core_free[k] < n)
            continue;
          key[0] = core_iso_miss (p, k);
          key[1] = core_has_other (p, k, pl->slot);
          key[2] = pl->isolate ? 0 : p->core_free[k] - n;
          if (p->pack_singles)
            {
              /* best fit first: a partial unit completes a half-used core */
              guint tmp = key[1];
              key[1] = key[2];
              key[2] = tmp;
            }
          key[3] = ci;
          key[4] = k;
          if (best < 0 || key_less (key, best_key, 5))
            {
              memcpy (best_key, key, sizeof key);
              best = (gint) k;
            }
        }
    }
  return best;
}

/* The best core of @cells for vCPU @i of unit @u, which no core takes
 * whole: beside the unit's previous piece, then the most free. */
static gint
best_core_split (const QpinPlacer *p, const Placing *pl, const Unit *u, guint i, const guint *cells,
                 guint n_cells)
{
  guint bk[5] = { G_MAXUINT, 0, 0, 0, 0 };
  gint b = -1;
  gint prev_core = i ? p->topo->cpu_core[TCPU (p, u->idx[i - 1])] : -1;

  for (guint ci = 0; ci < n_cells; ci++)
    {
      const Cell *cell = &g_array_index (p->cells, Cell, cells[ci]);
      if (p->cell_free[cells[ci]] == 0)
        continue;
      for (guint j = 0; j < cell->cores->len; j++)
        {
          guint k = g_array_index (cell->cores, guint, j);
          guint key[5];
          if (p->core_free[k] == 0)
            continue;
          key[0] = (gint) k == prev_core ? 0 : 1;
          key[1] = core_has_other (p, k, pl->slot);
          key[2] = G_MAXUINT - MIN (p->core_free[k], u->n - i);
          key[3] = ci;
          key[4] = k;
          if (b < 0 || key_less (key, bk, 5))
            {
              memcpy (bk, key, sizeof key);
              b = (gint) k;
            }
        }
    }
  return b;
}

/* Places unit @u on one core of @cells, else (not with smt=isolate) split
 * over several, keeping pieces together. */
static gboolean
fill_unit (QpinPlacer *p, const Placing *pl, const Unit *u, const guint *cells, guint n_cells)
{
  gint best = best_core_whole (p, pl, u->n, cells, n_cells);

  if (best >= 0)
    {
      for (guint i = 0; i < u->n; i++)
        if (!qpin_placer_take (p, pl->slot, u->idx[i], core_take (p, (guint) best), pl->undo, NULL))
          return FALSE;
      return !pl->isolate || qpin_placer_hold_siblings (p, pl->slot, (guint) best, pl->undo, NULL);
    }
  if (pl->isolate)
    return FALSE;
  for (guint i = 0; i < u->n; i++)
    {
      gint b = best_core_split (p, pl, u, i, cells, n_cells);
      if (b < 0
          || !qpin_placer_take (p, pl->slot, u->idx[i], core_take (p, (guint) b), pl->undo, NULL))
        return FALSE;
    }
  return TRUE;
}

/* Places every unit of the group on cores of the cells in @cells (in that
 * order of preference).  Holds as it goes; on failure the caller rolls back. */
gboolean
qpin_placer_fill (QpinPlacer *p, const Placing *pl, const guint *cells, guint n_cells)
{
  for (guint ui = 0; ui < pl->g->units->len; ui++)
    if (!fill_unit (p, pl, &g_array_index (pl->g->units, Unit, ui), cells, n_cells))
      return FALSE;
  return TRUE;
}
