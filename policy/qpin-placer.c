/* qpin-placer.c: the placement engine: construction and the public getters
 *
 * See qpin-placer.h for the approach and qpin-placer-private.h for how
 * the engine is split over its files.
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

static void
cell_clear (gpointer p)
{
  Cell *c = p;
  g_array_unref (c->cores);
}

/**
 * qpin_placer_new:
 * @topo: a finished topology; borrowed, it must outlive the placer
 * @reserved: (nullable): the housekeeping CPUs, never given to vCPUs
 *
 * Returns: (transfer full): a placer with an empty ledger.
 */
QpinPlacer *
qpin_placer_new (const QpinTopology *topo, const QpinCpuset *reserved)
{
  QpinPlacer *p = g_new0 (QpinPlacer, 1);

  p->topo = topo;
  if (reserved)
    p->reserved = *reserved;
  p->usable = topo->online;
  qpin_cpuset_andnot (&p->usable, &p->reserved);
  p->isolated = topo->isolated;
  qpin_cpuset_or (&p->isolated, &topo->nohz_full);
  p->have_isolated = qpin_cpuset_intersects (&p->isolated, &p->usable);
  p->n_slots = topo->n_slots;
  p->owner = g_new (gint, p->n_slots);
  p->fin_owner = g_new (gint, p->n_slots);
  p->owner_thread = g_new (gint, p->n_slots);
  p->kind = g_new0 (guint8, p->n_slots);
  for (guint c = 0; c < p->n_slots; c++)
    p->owner[c] = p->owner_thread[c] = -1;
  p->slots = g_ptr_array_new ();
  p->tcpu = g_array_new (FALSE, FALSE, sizeof (gint));
  p->plan = qpin_plan_new ();
  p->n_cores = topo->cores->len;
  p->core_free = g_new0 (guint, p->n_cores);
  p->core_usable = g_new0 (guint, p->n_cores);
  p->core_cell = g_new0 (guint, p->n_cores);
  p->core_cpu = g_new (guint, MAX (p->n_cores, 1) * MAX_UNIT);
  p->core_mark = g_new0 (guint, MAX (p->n_cores, 1));
  p->cluster_mark = g_new0 (guint, MAX (topo->clusters->len, 1));
  for (guint k = 0; k < p->n_cores; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      guint i = 0;
      QPIN_CPUSET_FOREACH (cpu, &core->cpus)
        if (i < MAX_UNIT)
          CORE_CPUS (p, k)[i++] = (guint) cpu;
      for (; i < MAX_UNIT; i++)
        CORE_CPUS (p, k)[i] = G_MAXUINT;
    }
  p->cells = g_array_new (FALSE, TRUE, sizeof (Cell));
  g_array_set_clear_func (p->cells, cell_clear);
  for (guint k = 0; k < p->n_cores; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      guint c;

      for (c = 0; c < p->cells->len; c++)
        {
          Cell *cell = &g_array_index (p->cells, Cell, c);
          if (cell->llc == core->llc && cell->node == (guint) core->node
              && cell->kind == topo->core_kind[k] && cell->cluster == topo->core_cluster[k])
            break;
        }
      if (c == p->cells->len)
        {
          Cell cell = { .llc = core->llc,
                        .node = (guint) core->node,
                        .kind = topo->core_kind[k],
                        .cluster = topo->core_cluster[k],
                        .cores = g_array_new (FALSE, FALSE, sizeof (guint)) };
          g_array_append_val (p->cells, cell);
        }
      g_array_append_val (g_array_index (p->cells, Cell, c).cores, k);
      p->core_cell[k] = c;
    }
  p->cell_cpus = g_new0 (QpinCpuset, MAX (p->cells->len, 1));
  for (guint k = 0; k < p->n_cores; k++)
    qpin_cpuset_or (&p->cell_cpus[p->core_cell[k]],
                    &g_array_index (topo->cores, QpinTopoCore, k).cpus);
  p->cell_group = g_new0 (guint, MAX (p->cells->len, 1));
  for (guint c = 0; c < p->cells->len; c++)
    {
      const Cell *cell = &g_array_index (p->cells, Cell, c);
      guint d = 0;
      while (d < c
             && (g_array_index (p->cells, Cell, d).llc != cell->llc
                 || g_array_index (p->cells, Cell, d).node != cell->node))
        d++;
      p->cell_group[c] = d;
    }
  p->cell_free = g_new0 (guint, MAX (p->cells->len, 1));
  p->cell_whole = g_new0 (guint, MAX (p->cells->len, 1));
  p->node_free = g_new0 (guint, topo->nodes->len);
  p->node_whole = g_new0 (guint, topo->nodes->len);
  p->search_max_vms = QPIN_PLACER_SEARCH_MAX_VMS;
  p->search_options = QPIN_PLACER_SEARCH_OPTIONS;
  p->search_budget = QPIN_PLACER_SEARCH_BUDGET;
  qpin_placer_recount (p);
  return p;
}

/**
 * qpin_placer_free:
 * @placer: (nullable): a placer
 */
void
qpin_placer_free (QpinPlacer *p)
{
  if (p == NULL)
    return;
  g_free (p->owner);
  g_free (p->fin_owner);
  g_free (p->owner_thread);
  g_free (p->kind);
  g_ptr_array_unref (p->slots);
  g_array_unref (p->tcpu);
  qpin_plan_free (p->plan);
  g_free (p->core_free);
  g_free (p->core_usable);
  g_free (p->core_cell);
  g_free (p->core_cpu);
  g_free (p->cell_cpus);
  g_free (p->core_mark);
  g_free (p->cluster_mark);
  g_array_unref (p->cells);
  g_free (p->cell_group);
  g_free (p->cell_free);
  g_free (p->cell_whole);
  g_free (p->node_free);
  g_free (p->node_whole);
  g_free (p);
}

/**
 * qpin_placer_get_plan:
 *
 * Returns: (transfer none): the plan of every VM the placer manages.
 */
const QpinPlan *
qpin_placer_get_plan (const QpinPlacer *placer)
{
  return placer->plan;
}

/**
 * qpin_placer_get_usable:
 *
 * Returns: (transfer none): online CPUs that are neither reserved nor lost.
 */
const QpinCpuset *
qpin_placer_get_usable (const QpinPlacer *placer)
{
  return &placer->usable;
}

/**
 * qpin_placer_get_reserved:
 *
 * Returns: (transfer none): the housekeeping CPUs, never given to vCPUs.
 */
const QpinCpuset *
qpin_placer_get_reserved (const QpinPlacer *placer)
{
  return &placer->reserved;
}

/**
 * qpin_placer_holder:
 *
 * Returns: (transfer none) (nullable): the name of the VM holding @cpu.
 */
const char *
qpin_placer_holder (const QpinPlacer *placer, guint cpu)
{
  if (cpu >= placer->n_slots || placer->owner[cpu] < 0)
    return NULL;
  return ((QpinPlanVm *) g_ptr_array_index (placer->slots, placer->owner[cpu]))->name;
}

/**
 * qpin_placer_score:
 * @score: (out): the score of the current plan
 */
void
qpin_placer_score (const QpinPlacer *placer, QpinScore *score)
{
  qpin_score_compute (placer->topo, placer->plan, &placer->usable, score);
}

/**
 * qpin_placer_set_search:
 *
 * Tunes the batch search (tests and benchmarks compare settings).
 */
void
qpin_placer_set_search (QpinPlacer *placer, guint max_vms, guint options, guint budget)
{
  placer->search_max_vms = max_vms;
  placer->search_options = MAX (options, 1);
  placer->search_budget = budget;
}
