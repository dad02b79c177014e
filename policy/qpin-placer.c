/* qpin-placer.c: the placement engine (see the header for the approach)
 *
 * Vocabulary inside this file:
 *   cell    the CPUs of one LLC group inside one node (LLC groups may span
 *           nodes, e.g. sub-NUMA clustering; cells never do)
 *   unit    vCPUs that want one host core: guest thread siblings, or for a
 *           guest without SMT consecutive vCPUs packed into whole cores
 *   group   the vCPUs of one guest NUMA node (or all of them)
 *   domain  an ordered list of cells a group is placed into
 * The ledger is two per-CPU arrays (owner slot, kind) plus free counts per
 * core, cell and node that hold() and release() keep current.
 */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-placer.h"
#include "qpin-pool.h"

#include <string.h>

#define MAX_UNIT 8
#define N_COST 10

enum { KIND_EXCLUSIVE = 1, KIND_SIBLING = 2 };

typedef struct {
  guint llc;
  guint node;
  GArray *cores; /* guint core indexes, ascending */
} Cell;

typedef struct {
  guint n;
  guint idx[MAX_UNIT]; /* indexes into vm->threads */
  gboolean guest_siblings;
} Unit;

typedef struct {
  gint node;     /* guest node id, -1 when the guest has none */
  GArray *units; /* Unit, largest first */
  guint n_vcpus;
} Group;

typedef struct {
  guint v[N_COST];
} Cost;

typedef struct {
  Cost cost;
  GArray *cells; /* guint cell indexes in fill order */
  guint level;   /* 0 one cell, 1 one node, 2 several nodes */
  GArray *taken; /* guint CPUs the fill took, in order: equal lists are one candidate */
} Candidate;

struct _QpinPlacer {
  const QpinTopology *topo;
  QpinCpuset reserved;
  QpinCpuset lost;
  QpinCpuset usable;
  gboolean confined;      /* usable is narrowed to the cpuset of the VM being placed */
  QpinCpuset unconfined;  /* usable of the whole host while confined */
  GPtrArray *batch_pool;  /* QpinPlanVm * of the batch that will float, not yet placed */
  gboolean batch_spills;  /* the batch asks for more than is free: overcommit=share ones float */
  gboolean have_isolated; /* some usable CPU is isolated or nohz_full */
  QpinCpuset isolated;    /* isolated or nohz_full */
  guint n_slots;
  gint *owner; /* per CPU: slot of the holding VM, -1 */
  guint8 *kind;
  gint *owner_thread; /* per CPU: thread index within the VM for KIND_EXCLUSIVE */
  GPtrArray *slots;   /* QpinPlanVm * borrowed from plan, NULL when unused */
  QpinPlan *plan;
  guint n_cores;
  guint *core_free; /* usable and not held */
  guint *core_usable;
  GArray *cells; /* Cell */
  guint *core_cell;
  guint *cell_free;
  guint *cell_whole; /* free whole cores */
  guint *node_free;
  guint *node_whole;
  guint search_max_vms;
  guint search_options;
  guint search_budget;
  guint64 work;          /* cores visited: bounds the search by effort */
  gboolean pack_singles; /* fill strategy: best-fit cores before unshared ones */
  GArray *tcpu;          /* gint per thread of the VM being placed: its CPU, -1;
                            written to the plan only when a placement is kept */
  guint *core_cpu;       /* n_cores * MAX_UNIT: the CPUs of each core, then G_MAXUINT */
  QpinCpuset *cell_cpus; /* per cell */
  guint *core_mark;      /* scratch stamps for cost_of() */
  guint stamp;
};

#define CORE_CPUS(p, k) (&(p)->core_cpu[MAX_UNIT * (k)])

/* ---- ledger ---- */

static gboolean
core_whole (const QpinPlacer *p, guint k)
{
  return p->core_usable[k] > 0 && p->core_free[k] == p->core_usable[k];
}

static void
recount (QpinPlacer *p)
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

static void
hold (QpinPlacer *p, guint cpu, gint slot, guint8 kind, gint thread)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);

  g_assert (p->owner[cpu] < 0 && qpin_cpuset_has (&p->usable, cpu));
  p->owner[cpu] = slot;
  p->kind[cpu] = kind;
  p->owner_thread[cpu] = thread;
  qpin_cpuset_add (&vm->held, cpu);
  account (p, cpu, -1);
}

static void
release (QpinPlacer *p, guint cpu)
{
  gint slot = p->owner[cpu];
  QpinPlanVm *vm;

  if (slot < 0)
    return;
  vm = g_ptr_array_index (p->slots, slot);
  qpin_cpuset_remove (&vm->held, cpu);
  p->owner[cpu] = -1;
  p->kind[cpu] = 0;
  p->owner_thread[cpu] = -1;
  if (qpin_cpuset_has (&p->usable, cpu))
    account (p, cpu, +1);
}

/* Does core k hold CPUs of a VM other than slot? */
static gboolean
core_has_other (const QpinPlacer *p, guint k, gint slot)
{
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] >= 0 && p->owner[cpu] != slot)
      return TRUE;
  return FALSE;
}

static gboolean
core_has_own (const QpinPlacer *p, guint k, gint slot)
{
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] == slot)
      return TRUE;
  return FALSE;
}

/* The first free usable CPU of core k, isolated ones first. */
static gint
core_take (const QpinPlacer *p, guint k)
{
  gint fallback = -1;

  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] < 0 && qpin_cpuset_has (&p->usable, cpu))
      {
        if (!p->have_isolated || qpin_cpuset_has (&p->isolated, cpu))
          return (gint) cpu;
        if (fallback < 0)
          fallback = (gint) cpu;
      }
  return fallback;
}

static gboolean
core_iso_miss (const QpinPlacer *p, guint k)
{
  if (!p->have_isolated)
    return FALSE;
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] < 0 && qpin_cpuset_has (&p->usable, cpu)
        && qpin_cpuset_has (&p->isolated, cpu))
      return FALSE;
  return TRUE;
}

/* ---- construction ---- */

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
          if (cell->llc == core->llc && cell->node == (guint) core->node)
            break;
        }
      if (c == p->cells->len)
        {
          Cell cell = { .llc = core->llc,
                        .node = (guint) core->node,
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
  p->cell_free = g_new0 (guint, MAX (p->cells->len, 1));
  p->cell_whole = g_new0 (guint, MAX (p->cells->len, 1));
  p->node_free = g_new0 (guint, topo->nodes->len);
  p->node_whole = g_new0 (guint, topo->nodes->len);
  p->search_max_vms = QPIN_PLACER_SEARCH_MAX_VMS;
  p->search_options = QPIN_PLACER_SEARCH_OPTIONS;
  p->search_budget = QPIN_PLACER_SEARCH_BUDGET;
  recount (p);
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
  g_array_unref (p->cells);
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

/* ---- slots ---- */

static gint
slot_add (QpinPlacer *p, QpinPlanVm *vm)
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

static gint
slot_of (const QpinPlacer *p, const QpinPlanVm *vm)
{
  for (guint i = 0; i < p->slots->len; i++)
    if (g_ptr_array_index (p->slots, i) == vm)
      return (gint) i;
  return -1;
}

static void
release_vm (QpinPlacer *p, QpinPlanVm *vm)
{
  QpinCpuset held = vm->held;
  QPIN_CPUSET_FOREACH (cpu, &held)
    release (p, (guint) cpu);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      qpin_cpuset_clear_all (&t->cpus);
      t->exclusive = FALSE;
    }
  vm->floating = FALSE;
  qpin_cpuset_clear_all (&vm->pool_domain);
  g_ptr_array_set_size (vm->notes, 0);
}

/* Takes vm out of the plan without freeing it. */
static void
plan_unlink (QpinPlacer *p, QpinPlanVm *vm)
{
  guint idx;
  if (g_ptr_array_find (p->plan->vms, vm, &idx))
    g_ptr_array_steal_index (p->plan->vms, idx);
}

static void
slot_free (QpinPlacer *p, QpinPlanVm *vm)
{
  gint slot = slot_of (p, vm);
  if (slot < 0)
    return;
  p->slots->pdata[slot] = NULL;
  while (p->slots->len > 0 && g_ptr_array_index (p->slots, p->slots->len - 1) == NULL)
    g_ptr_array_set_size (p->slots, p->slots->len - 1);
}

/* Removes vm from the plan, frees its CPUs, its slot and vm itself. */
static void
drop_vm (QpinPlacer *p, QpinPlanVm *vm)
{
  release_vm (p, vm);
  slot_free (p, vm);
  plan_unlink (p, vm);
  qpin_plan_vm_free (vm);
}

/* ---- units and groups ---- */

static gint
cmp_guest (const QpinThreadSpec *a, const QpinThreadSpec *b)
{
  const gint x[] = { a->node, a->socket, a->die, a->cluster, a->core, a->thread, (gint) a->index };
  const gint y[] = { b->node, b->socket, b->die, b->cluster, b->core, b->thread, (gint) b->index };
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
static GArray *
build_groups (const QpinPlacer *p, const QpinPlanVm *vm, GArray *idx, gboolean isolate)
{
  GArray *groups = g_array_new (FALSE, TRUE, sizeof (Group));
  g_autofree QpinThreadSpec *specs = g_new (QpinThreadSpec, vm->threads->len);
  guint host_threads = CLAMP (p->topo->max_threads, 1, MAX_UNIT);
  gboolean guest_smt = FALSE;

  g_array_set_clear_func (groups, group_clear);
  for (guint i = 0; i < vm->threads->len; i++)
    specs[i] = g_array_index (vm->threads, QpinPlanThread, i).spec;
  for (guint i = 0; i < idx->len; i++)
    if (specs[g_array_index (idx, guint, i)].thread > 0)
      guest_smt = TRUE;
  g_array_sort_with_data (idx, cmp_idx, specs);

  for (guint i = 0; i < idx->len; i++)
    {
      guint t = g_array_index (idx, guint, i);
      const QpinThreadSpec *s = &specs[t];
      Group *g = groups->len ? &g_array_index (groups, Group, groups->len - 1) : NULL;
      Unit *u;
      gboolean same_core = FALSE;

      if (g == NULL || g->node != s->node)
        {
          Group ng = { .node = s->node, .units = g_array_new (FALSE, TRUE, sizeof (Unit)) };
          g_array_append_val (groups, ng);
          g = &g_array_index (groups, Group, groups->len - 1);
        }
      g->n_vcpus++;
      u = g->units->len ? &g_array_index (g->units, Unit, g->units->len - 1) : NULL;
      if (u && !isolate)
        {
          const QpinThreadSpec *prev = &specs[u->idx[u->n - 1]];
          if (guest_smt)
            same_core = prev->socket == s->socket && prev->die == s->die
                        && prev->cluster == s->cluster && prev->core == s->core;
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

/* ---- filling a domain ---- */

static void
set_thread_cpu (QpinPlanVm *vm, guint t, guint cpu)
{
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  qpin_cpuset_clear_all (&th->cpus);
  qpin_cpuset_add (&th->cpus, cpu);
  th->exclusive = TRUE;
}

#define TCPU(p, t) g_array_index ((p)->tcpu, gint, (t))

static void
take (QpinPlacer *p, gint slot, guint t, guint cpu, GArray *undo)
{
  hold (p, cpu, slot, KIND_EXCLUSIVE, (gint) t);
  TCPU (p, t) = (gint) cpu;
  g_array_append_val (undo, cpu);
}

/* Starts placing the threads of vm: no thread has a CPU yet. */
static void
tcpu_reset (QpinPlacer *p, const QpinPlanVm *vm)
{
  g_array_set_size (p->tcpu, vm->threads->len);
  for (guint t = 0; t < vm->threads->len; t++)
    TCPU (p, t) = -1;
}

/* Keeps the placement: writes the CPUs taken into the plan. */
static void
tcpu_commit (QpinPlacer *p, QpinPlanVm *vm)
{
  for (guint t = 0; t < vm->threads->len; t++)
    if (TCPU (p, t) >= 0)
      set_thread_cpu (vm, t, (guint) TCPU (p, t));
}

static void
hold_siblings (QpinPlacer *p, gint slot, guint k, GArray *undo)
{
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] < 0 && qpin_cpuset_has (&p->usable, cpu))
      {
        guint c = cpu;
        hold (p, c, slot, KIND_SIBLING, -1);
        g_array_append_val (undo, c);
      }
}

static void
rollback (QpinPlacer *p, QpinPlanVm *vm, GArray *undo, guint from)
{
  for (guint i = undo->len; i-- > from;)
    {
      guint cpu = g_array_index (undo, guint, i);
      gint t = p->owner_thread[cpu];
      if (t >= 0 && p->kind[cpu] == KIND_EXCLUSIVE && (guint) t < p->tcpu->len)
        TCPU (p, t) = -1;
      release (p, cpu);
    }
  g_array_set_size (undo, from);
}

static gboolean
key_less (const guint *a, const guint *b, guint n)
{
  for (guint i = 0; i < n; i++)
    if (a[i] != b[i])
      return a[i] < b[i];
  return FALSE;
}

/* Places every unit of @g on cores of the cells in @cells (in that order
 * of preference).  Holds as it goes; on failure the caller rolls back. */
static gboolean
fill (QpinPlacer *p, gint slot, const Group *g, const guint *cells, guint n_cells, gboolean isolate,
      GArray *undo)
{
  for (guint ui = 0; ui < g->units->len; ui++)
    {
      const Unit *u = &g_array_index (g->units, Unit, ui);
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
              if (isolate ? !core_whole (p, k) : p->core_free[k] < u->n)
                continue;
              key[0] = core_iso_miss (p, k);
              key[1] = core_has_other (p, k, slot);
              key[2] = isolate ? 0 : p->core_free[k] - u->n;
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
      if (best >= 0)
        {
          for (guint i = 0; i < u->n; i++)
            take (p, slot, u->idx[i], (guint) core_take (p, (guint) best), undo);
          if (isolate)
            hold_siblings (p, slot, (guint) best, undo);
          continue;
        }
      if (isolate)
        return FALSE;
      /* no core fits the whole unit: split it, keeping pieces together */
      for (guint i = 0; i < u->n; i++)
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
                  key[1] = core_has_other (p, k, slot);
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
          if (b < 0)
            return FALSE;
          take (p, slot, u->idx[i], (guint) core_take (p, (guint) b), undo);
        }
    }
  return TRUE;
}

/* ---- candidate domains ---- */

static guint
cap_cell (const QpinPlacer *p, guint c, gboolean isolate)
{
  return isolate ? p->cell_whole[c] : p->cell_free[c];
}

static guint
cap_node (const QpinPlacer *p, guint n, gboolean isolate)
{
  return isolate ? p->node_whole[n] : p->node_free[n];
}

static void
candidate_clear (gpointer data)
{
  Candidate *c = data;
  if (c->cells)
    g_array_unref (c->cells);
  if (c->taken)
    g_array_unref (c->taken);
}

/* Scores a fill that just happened (undo[from..] are its CPUs). */
static void
cost_of (QpinPlacer *p, gint slot, const Group *g, GArray *undo, guint from,
         const QpinCpuset *prev_nodes, guint domain_free, Cost *cost)
{
  const QpinTopology *topo = p->topo;
  guint64 nodes = 0, llcs_small = 0;
  guint n_llcs = 0;
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
      QPIN_CPUSET_FOREACH (n, prev_nodes)
        if (n < 64)
          all |= G_GUINT64_CONSTANT (1) << n;
      for (guint a = 0; a < topo->nodes->len; a++)
        for (guint b = a + 1; b < topo->nodes->len; b++)
          if (((all >> a) & 1) && ((all >> b) & 1) && (((nodes >> a) & 1) || ((nodes >> b) & 1)))
            dist += qpin_topology_distance (topo, a, b);
    }
  cost->v[0] = (guint) __builtin_popcountll (nodes);
  cost->v[1] = dist;
  cost->v[2] = (guint) __builtin_popcountll (llcs_small) + n_llcs;
  cost->v[3] = iso_miss;
  cost->v[4] = shared;
  cost->v[5] = sib;
  cost->v[6] = (guint) (half + 100000);
  cost->v[7] = domain_free;
  cost->v[8] = first;
  cost->v[9] = 0;
}

/* Tries one domain; on success appends a candidate. */
static void
try_domain (QpinPlacer *p, gint slot, const Group *g, GArray *cells, gboolean isolate,
            const QpinCpuset *prev_nodes, GArray *undo, guint level, GArray *out)
{
  guint from = undo->len;
  guint domain_free = 0;
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);

  for (guint i = 0; i < cells->len; i++)
    domain_free += p->cell_free[g_array_index (cells, guint, i)];
  if (fill (p, slot, g, (const guint *) cells->data, cells->len, isolate, undo))
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
          cost_of (p, slot, g, undo, from, prev_nodes, domain_free, &c.cost);
          g_array_append_val (out, c);
        }
    }
  rollback (p, vm, undo, from);
}

typedef struct {
  const QpinPlacer *p;
  gboolean isolate;
} CapOrder;

static gint
cmp_cell_cap (gconstpointer a, gconstpointer b, gpointer data)
{
  const CapOrder *o = data;
  guint x = *(const guint *) a, y = *(const guint *) b;
  guint cx = cap_cell (o->p, x, o->isolate), cy = cap_cell (o->p, y, o->isolate);
  if (cx != cy)
    return cx > cy ? -1 : 1;
  return x < y ? -1 : x > y;
}

/* The fewest cells of @nodes (node index mask) holding @need, largest
 * first, the last one the best fit. */
static GArray *
pick_cells (const QpinPlacer *p, const gboolean *in_node, guint need, gboolean isolate)
{
  GArray *all = g_array_new (FALSE, FALSE, sizeof (guint));
  GArray *chosen = g_array_new (FALSE, FALSE, sizeof (guint));
  guint sum = 0;

  for (guint c = 0; c < p->cells->len; c++)
    if (in_node[g_array_index (p->cells, Cell, c).node] && cap_cell (p, c, isolate) > 0)
      g_array_append_val (all, c);
  {
    CapOrder order = { p, isolate };
    g_array_sort_with_data (all, cmp_cell_cap, &order);
  }
  for (guint i = 0; i < all->len && sum < need; i++)
    {
      guint c = g_array_index (all, guint, i);
      guint cap = cap_cell (p, c, isolate);

      /* best fit for the last cell: the smallest one that completes */
      if (sum + cap >= need)
        for (guint j = all->len; j-- > i + 1;)
          {
            guint d = g_array_index (all, guint, j);
            if (sum + cap_cell (p, d, isolate) >= need)
              {
                c = d;
                cap = cap_cell (p, d, isolate);
                g_array_index (all, guint, j) = g_array_index (all, guint, i);
                break;
              }
          }
      g_array_append_val (chosen, c);
      sum += cap;
    }
  /* the remaining cells of these nodes come last, for split units */
  for (guint i = 0; i < all->len; i++)
    {
      guint c = g_array_index (all, guint, i);
      gboolean seen = FALSE;
      for (guint j = 0; j < chosen->len; j++)
        seen |= g_array_index (chosen, guint, j) == c;
      if (!seen)
        g_array_append_val (chosen, c);
    }
  g_array_unref (all);
  return chosen;
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

/* Candidate domains for group @g, best first.  @allowed: node index mask.
 * Greedy placement only needs the first level that fits; the search
 * (@diverse) also wants the wider levels, because giving one VM a wider
 * domain can let another stay whole: the best of each level then comes
 * right after the overall best. */
static GArray *
candidates (QpinPlacer *p, gint slot, const Group *g, gboolean isolate, QpinNumaMode numa,
            const gboolean *allowed, const QpinCpuset *prev_nodes, gboolean diverse, GArray *undo)
{
  const QpinTopology *topo = p->topo;
  guint n_nodes = topo->nodes->len;
  GArray *out = g_array_new (FALSE, TRUE, sizeof (Candidate));
  g_autoptr (GArray) cells = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree gboolean *mask = g_new0 (gboolean, n_nodes);
  guint need = g->n_vcpus;

  g_array_set_clear_func (out, candidate_clear);
  /* 1. one cell */
  for (guint c = 0; c < p->cells->len; c++)
    if (allowed[g_array_index (p->cells, Cell, c).node] && cap_cell (p, c, isolate) >= need)
      {
        g_array_set_size (cells, 0);
        g_array_append_val (cells, c);
        try_domain (p, slot, g, cells, isolate, prev_nodes, undo, 0, out);
      }
  /* 2. one node, fewest cells */
  if (out->len == 0 || diverse)
    for (guint n = 0; n < n_nodes; n++)
      if (allowed[n] && cap_node (p, n, isolate) >= need)
        {
          g_autoptr (GArray) pc = NULL;
          memset (mask, 0, sizeof (gboolean) * n_nodes);
          mask[n] = TRUE;
          pc = pick_cells (p, mask, need, isolate);
          try_domain (p, slot, g, pc, isolate, prev_nodes, undo, 1, out);
          if (diverse)
            {
              g_autoptr (GArray) small = pick_cells_small_first (p, mask, isolate);
              try_domain (p, slot, g, small, isolate, prev_nodes, undo, 1, out);
            }
        }
  /* 3. several nodes, grown from each seed by distance; the search also
   * tries every second node, not only the nearest */
  if ((out->len == 0 || diverse) && numa != QPIN_NUMA_STRICT)
    for (guint seed = 0; seed < n_nodes; seed++)
      for (gint second = diverse && n_nodes <= 8 ? 0 : -1; second < (gint) n_nodes; second++)
        {
          g_autoptr (GArray) pc = NULL;
          guint sum;

          if (!allowed[seed] || cap_node (p, seed, isolate) == 0)
            break;
          if (second >= 0
              && ((guint) second == seed || !allowed[second]
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
          while (sum < need)
            {
              gint best = -1;
              guint bd = 0;
              for (guint n = 0; n < n_nodes; n++)
                {
                  guint d = 0;
                  if (mask[n] || !allowed[n] || cap_node (p, n, isolate) == 0)
                    continue;
                  for (guint m = 0; m < n_nodes; m++)
                    if (mask[m])
                      d += qpin_topology_distance (topo, n, m);
                  if (best < 0 || d < bd
                      || (d == bd
                          && cap_node (p, n, isolate) > cap_node (p, (guint) best, isolate)))
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
          if (sum < need)
            break;
          pc = pick_cells (p, mask, need, isolate);
          try_domain (p, slot, g, pc, isolate, prev_nodes, undo, 2, out);
          if (diverse)
            {
              /* also: fill the seed node first, the others after; this
               * spans more LLC groups but leaves another node whole */
              g_autoptr (GArray) first = NULL;
              g_autoptr (GArray) seeded = g_array_new (FALSE, FALSE, sizeof (guint));
              g_autofree gboolean *only = g_new0 (gboolean, n_nodes);

              only[seed] = TRUE;
              first = pick_cells (p, only, need, isolate);
              g_array_append_vals (seeded, first->data, first->len);
              for (guint i = 0; i < pc->len; i++)
                if (g_array_index (p->cells, Cell, g_array_index (pc, guint, i)).node != seed)
                  g_array_append_val (seeded, g_array_index (pc, guint, i));
              try_domain (p, slot, g, seeded, isolate, prev_nodes, undo, 2, out);
              {
                g_autoptr (GArray) small = pick_cells_small_first (p, mask, isolate);
                try_domain (p, slot, g, small, isolate, prev_nodes, undo, 2, out);
              }
            }
        }
  g_array_sort (out, cmp_candidate);
  if (diverse && out->len > 2)
    {
      /* the best of every other level right after the best */
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
  return out;
}

/* ---- placing one VM ---- */

/* The free usable CPUs (whole free cores only with @isolate) of the
 * nodes in @allowed (NULL: all). */
static void
free_set (const QpinPlacer *p, gboolean isolate, const gboolean *allowed, QpinCpuset *f)
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

static void
where_free (const QpinPlacer *p, gboolean isolate, const gboolean *allowed, GString *s)
{
  QpinCpuset f;
  g_autofree char *l = NULL;

  free_set (p, isolate, allowed, &f);
  l = qpin_cpuset_format (&f);
  g_string_append (s, *l ? l : "none");
}

static const char *
unit_name (gboolean isolate, guint n)
{
  if (isolate)
    return n == 1 ? "whole free core (smt=isolate)" : "whole free cores (smt=isolate)";
  return n == 1 ? "dedicated cpu" : "dedicated cpus";
}

/* "N free on the host (cpus L)", or "inside its cpuset C" for a VM
 * confined to one; @where (nullable) narrows it further. */
static void
append_free (const QpinPlacer *p, const QpinPlanVm *vm, gboolean isolate, const gboolean *allowed,
             guint total, const char *where, GString *s)
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

/* ---- the shared pool (the rule: qpin-pool.h) ---- */

static const QpinCpuset *
host_usable (const QpinPlacer *p)
{
  return p->confined ? &p->unconfined : &p->usable;
}

/* The shared pool: usable CPUs of the whole host that no VM holds. */
static void
shared_pool (const QpinPlacer *p, QpinCpuset *pool)
{
  qpin_pool_compute (host_usable (p), p->owner, pool);
}

static gboolean
pool_is_empty (const QpinPlacer *p)
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

static guint
pool_users (const QpinPlacer *p, const QpinPlanVm *self, gint self_t, GString *names)
{
  return qpin_pool_users (p->plan, p->batch_pool, p->batch_spills, self, self_t, names);
}

/* Did what @vm just took (thread @self_t, -1: all of it) take the last
 * CPU of the shared pool while something floats on it? */
static gboolean
pool_emptied (const QpinPlacer *p, const QpinPlanVm *vm, gint self_t)
{
  return pool_is_empty (p) && pool_users (p, vm, self_t, NULL) > 0;
}

/* The reason a request of @vm (@needs: "needs 2 dedicated cpus") is
 * refused: it would empty the pool.  Call it once what was taken is
 * given back. */
static void
pool_refuse (const QpinPlacer *p, const QpinPlanVm *vm, const char *needs, gboolean isolate,
             gint self_t, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  g_autoptr (GString) names = g_string_new (NULL);
  QpinCpuset f;
  guint n;

  free_set (p, isolate, NULL, &f);
  n = pool_users (p, vm, self_t, names);
  g_string_append_printf (s, "vm '%s': %s, ", vm->name, needs);
  append_free (p, vm, isolate, NULL, qpin_cpuset_count (&f), NULL, s);
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

  shared_pool (p, &pool);
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

static gboolean
no_fit (QpinPlacer *p, const QpinPlanVm *vm, const Group *g, guint n_groups, gboolean isolate,
        QpinNumaMode numa, const gboolean *allowed, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  guint n_nodes = p->topo->nodes->len;
  guint total = 0, best_node = 0, best = 0;
  const char *unit = unit_name (isolate, g->n_vcpus);

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
      append_free (p, vm, isolate, allowed, total,
                   n_groups > 1 ? " in host nodes not used by its other guest nodes" : NULL, s);
    }
  g_set_error_literal (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT, s->str);
  return FALSE;
}

/* Places one CPU for thread t of the VM in @slot near its other CPUs.
 * @hint_core: the host core of a guest sibling, or -1. */
static gint
pick_single (QpinPlacer *p, gint slot, gint hint_core, gboolean isolate, gboolean vcpu)
{
  const QpinTopology *topo = p->topo;
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  guint n_nodes = topo->nodes->len;
  g_autofree gboolean *near_node = g_new0 (gboolean, n_nodes);
  g_autofree gboolean *near_llc = g_new0 (gboolean, MAX (topo->llcs->len, 1));
  gboolean have_near = FALSE;
  guint best_key[9] = { 0 };
  gint best = -1;

  QPIN_CPUSET_FOREACH (cpu, &vm->held)
    {
      near_node[topo->cpu_node[cpu]] = TRUE;
      near_llc[topo->cpu_llc[cpu]] = TRUE;
      have_near = TRUE;
    }
  for (guint k = 0; k < p->n_cores; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      guint key[9];
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
      key[1] = nd;
      key[2] = have_near && !near_llc[core->llc] ? 1 : 0;
      key[3] = vcpu && core_iso_miss (p, k);
      key[4] = core_has_other (p, k, slot);
      key[5] = core_has_own (p, k, slot) ? 0 : 1;
      key[6] = isolate ? 0 : p->core_free[k] - 1;
      key[7] = p->cell_free[p->core_cell[k]];
      key[8] = k;
      if (best < 0 || key_less (key, best_key, 9))
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
        pool_refuse (p, vm, needs, FALSE, -1, error);
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
      k = pick_single (p, slot, -1, FALSE, FALSE);
      if (k >= 0)
        {
          take (p, slot, i, (guint) core_take (p, (guint) k), undo);
          if (!pool_emptied (p, vm, -1))
            continue;
          rollback (p, vm, undo, undo->len - 1);
        }
      if (!aux_no_cpu (p, vm, t, k >= 0, error))
        return FALSE;
    }
  return TRUE;
}

/* Places the vCPUs of a dedicated VM.  @option picks the candidate domain
 * of the first group (0 = best).  Returns the number of candidates that
 * group had via @n_options. */
static gboolean
place_dedicated (QpinPlacer *p, gint slot, guint option, guint *n_options, gboolean diverse,
                 GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  const QpinPolicy *pol = vm->policy;
  gboolean isolate = pol->smt == QPIN_SMT_ISOLATE;
  guint n_nodes = p->topo->nodes->len;
  g_autoptr (GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) groups = NULL;
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree gboolean *allowed = g_new (gboolean, n_nodes);
  QpinCpuset used_nodes;

  if (n_options)
    *n_options = 1;
  tcpu_reset (p, vm);
  for (guint i = 0; i < vm->threads->len; i++)
    if (g_array_index (vm->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU)
      g_array_append_val (idx, i);
  groups = build_groups (p, vm, idx, isolate);
  qpin_cpuset_clear_all (&used_nodes);

  for (guint gi = 0; gi < groups->len; gi++)
    {
      const Group *g = &g_array_index (groups, Group, gi);
      g_autoptr (GArray) cands = NULL;
      guint pick;

      for (guint n = 0; n < n_nodes; n++)
        allowed[n] = groups->len == 1 || !qpin_cpuset_has (&used_nodes, n);
      if (pol->numa == QPIN_NUMA_SPREAD)
        {
          g_autofree guint *spread_count = g_new0 (guint, n_nodes);
          /* each unit on the node with the most free capacity */
          for (guint ui = 0; ui < g->units->len; ui++)
            {
              Group one = { .node = g->node, .n_vcpus = 0 };
              g_autoptr (GArray) pc = NULL;
              g_autofree gboolean *mask = g_new0 (gboolean, n_nodes);
              gint best = -1;

              one.units = g_array_new (FALSE, TRUE, sizeof (Unit));
              g_array_append_vals (one.units, &g_array_index (g->units, Unit, ui), 1);
              one.n_vcpus = g_array_index (g->units, Unit, ui).n;
              /* the node with the fewest of this VM's vCPUs, then the most free */
              for (guint n = 0; n < n_nodes; n++)
                {
                  if (cap_node (p, n, isolate) < one.n_vcpus)
                    continue;
                  if (best < 0 || spread_count[n] < spread_count[best]
                      || (spread_count[n] == spread_count[best]
                          && cap_node (p, n, isolate) > cap_node (p, (guint) best, isolate)))
                    best = (gint) n;
                }
              if (best < 0)
                for (guint n = 0; n < n_nodes; n++)
                  if (cap_node (p, n, isolate) > 0
                      && (best < 0
                          || cap_node (p, n, isolate) > cap_node (p, (guint) best, isolate)))
                    best = (gint) n;
              if (best >= 0)
                spread_count[best] += one.n_vcpus;
              if (best >= 0)
                {
                  mask[best] = TRUE;
                  pc = pick_cells (p, mask, one.n_vcpus, isolate);
                }
              if (best < 0
                  || !fill (p, slot, &one, (const guint *) pc->data, pc->len, isolate, undo))
                {
                  g_array_unref (one.units);
                  for (guint n = 0; n < n_nodes; n++)
                    allowed[n] = TRUE;
                  no_fit (p, vm, g, 1, isolate, pol->numa, allowed, error);
                  rollback (p, vm, undo, 0);
                  return FALSE;
                }
              g_array_unref (one.units);
            }
          continue;
        }
      cands = candidates (p, slot, g, isolate, pol->numa, allowed, &used_nodes, diverse && gi == 0,
                          undo);
      if (cands->len == 0 && groups->len > 1 && pol->numa != QPIN_NUMA_STRICT)
        {
          /* not enough distinct host nodes: let guest nodes share */
          g_array_unref (cands);
          for (guint n = 0; n < n_nodes; n++)
            allowed[n] = TRUE;
          cands = candidates (p, slot, g, isolate, pol->numa, allowed, &used_nodes, FALSE, undo);
          if (cands->len > 0)
            qpin_plan_vm_add_note (vm, "guest node %d shares a host node with another guest node",
                                   g->node);
        }
      if (cands->len == 0)
        {
          no_fit (p, vm, g, groups->len, isolate, pol->numa, allowed, error);
          rollback (p, vm, undo, 0);
          return FALSE;
        }
      pick = gi == 0 ? MIN (option, cands->len - 1) : 0;
      if (gi == 0 && n_options)
        *n_options = cands->len;
      {
        const Candidate *c = &g_array_index (cands, Candidate, pick);
        guint from = undo->len;
        gboolean ok
          = fill (p, slot, g, (const guint *) c->cells->data, c->cells->len, isolate, undo);
        g_assert (ok);
        for (guint i = from; i < undo->len; i++)
          qpin_cpuset_add (&used_nodes, (guint) p->topo->cpu_node[g_array_index (undo, guint, i)]);
      }
    }
  if (pool_emptied (p, vm, -1))
    {
      g_autofree char *needs
        = g_strdup_printf ("needs %u %s", idx->len, unit_name (isolate, idx->len));
      rollback (p, vm, undo, 0);
      pool_refuse (p, vm, needs, isolate, -1, error);
      return FALSE;
    }
  if (!place_aux (p, slot, undo, error))
    {
      rollback (p, vm, undo, 0);
      return FALSE;
    }
  tcpu_commit (p, vm);
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
static gboolean
manual_take (QpinPlacer *p, gint slot, guint t, GArray *undo, GError **error)
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
      hold (p, c, slot, KIND_EXCLUSIVE, (gint) t);
      g_array_append_val (undo, c);
    }
  th->cpus = pin->cpus;
  th->exclusive = TRUE;
  return TRUE;
}

/* "cpumap needs cpus 4-5" */
static char *
manual_needs (const QpinCpuset *cpus)
{
  g_autofree char *l = qpin_cpuset_format (cpus);
  return g_strdup_printf ("cpumap needs cpu%s %s", qpin_cpuset_count (cpus) == 1 ? "" : "s", l);
}

static gboolean
place_manual (QpinPlacer *p, gint slot, GError **error)
{
  QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));

  tcpu_reset (p, vm);
  for (guint i = 0; i < vm->threads->len; i++)
    if (g_array_index (vm->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU
        && !manual_take (p, slot, i, undo, error))
      {
        rollback (p, vm, undo, 0);
        return FALSE;
      }
  if (pool_emptied (p, vm, -1))
    {
      QpinCpuset took;
      g_autofree char *needs = NULL;

      qpin_cpuset_clear_all (&took);
      for (guint i = 0; i < undo->len; i++)
        qpin_cpuset_add (&took, g_array_index (undo, guint, i));
      needs = manual_needs (&took);
      rollback (p, vm, undo, 0);
      pool_refuse (p, vm, needs, FALSE, -1, error);
      return FALSE;
    }
  if (!place_aux (p, slot, undo, error))
    {
      rollback (p, vm, undo, 0);
      return FALSE;
    }
  tcpu_commit (p, vm);
  return TRUE;
}

/* ---- floating sets, memory nodes ---- */

/* Gives a floating VM the domain of the pool it floats on; fails when
 * the pool (inside its cpuset, if it has one) is empty. */
static gboolean
choose_pool (QpinPlacer *p, QpinPlanVm *vm, GError **error)
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
          guint count = level == 0 ? p->cell_free[d] : p->node_free[d];
          const QpinCpuset *dom
            = level == 0 ? &p->cell_cpus[d] : &qpin_topology_node (topo, d)->cpus;
          guint load = 0;

          if (count < n_vcpus || count == 0)
            continue;
          for (guint v = 0; v < p->plan->vms->len; v++)
            {
              QpinPlanVm *o = g_ptr_array_index (p->plan->vms, v);
              if (o != vm && o->floating && qpin_cpuset_intersects (&o->pool_domain, dom))
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
  vm->pool_domain = best_set;
  vm->floating = TRUE;
  return TRUE;
}

static void
set_cpus (QpinPlanThread *t, const QpinCpuset *cpus)
{
  if (!qpin_cpuset_equal (&t->cpus, cpus))
    {
      t->cpus = *cpus;
      t->changed = TRUE;
    }
}

/* ---- cpuset: the only CPUs a VM may use ----
 *
 * While such a VM is placed, the placer sees only those CPUs: 'usable'
 * is narrowed around its placement and restored after, so every choice
 * (cells, cores, pools, the no-fit message) is made inside them.  Its
 * floating threads are kept inside them by clamp() in finalize(). */

static gboolean
confine (QpinPlacer *p, const QpinPlanVm *vm, QpinCpuset *saved)
{
  if (vm->policy->cpuset == NULL)
    return FALSE;
  *saved = p->usable;
  p->unconfined = p->usable;
  p->confined = TRUE;
  qpin_cpuset_and (&p->usable, vm->policy->cpuset);
  recount (p);
  return TRUE;
}

static void
unconfine (QpinPlacer *p, gboolean confined, const QpinCpuset *saved)
{
  if (!confined)
    return;
  p->usable = *saved;
  p->confined = FALSE;
  recount (p);
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
  set_cpus (t, &in);
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

/* Recomputes the floating cpusets and memory nodes: of every VM whose plan
 * depends on the others, plus @only (NULL: every VM). */
static void
finalize (QpinPlacer *p, const QpinPlanVm *only)
{
  const QpinTopology *topo = p->topo;
  QpinCpuset excl, hk, live, shared;
  gboolean global = FALSE;

  for (guint v = 0; v < p->plan->vms->len && !global; v++)
    global = needs_global (g_ptr_array_index (p->plan->vms, v));
  qpin_cpuset_clear_all (&excl);
  for (guint v = 0; global && v < p->plan->vms->len; v++)
    qpin_cpuset_or (&excl, &((QpinPlanVm *) g_ptr_array_index (p->plan->vms, v))->held);
  live = topo->online;
  qpin_cpuset_andnot (&live, &p->lost);
  qpin_cpuset_clear_all (&shared);
  if (global) /* only then does anything float */
    shared_pool (p, &shared);
  if (!qpin_cpuset_is_empty (&p->reserved))
    {
      hk = p->reserved;
      qpin_cpuset_and (&hk, &live);
    }
  else
    {
      hk = live;
      qpin_cpuset_andnot (&hk, &p->isolated);
      qpin_cpuset_andnot (&hk, &excl);
      if (qpin_cpuset_is_empty (&hk))
        {
          hk = live;
          qpin_cpuset_andnot (&hk, &excl);
        }
    }
  for (guint v = 0; v < p->plan->vms->len; v++)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->plan->vms, v);
      QpinCpuset vcpus, pool, nodes_cpus, hk_local, node_ids;
      gboolean mem_known = FALSE;

      if (only && vm != only && !needs_global (vm))
        continue;

      qpin_cpuset_clear_all (&vcpus);
      if (vm->floating)
        {
          pool = vm->pool_domain;
          qpin_cpuset_and (&pool, &shared);
          if (qpin_cpuset_is_empty (&pool))
            pool = shared;
          if (qpin_cpuset_is_empty (&pool))
            qpin_pool_fallback (vm, &p->reserved, &live, &p->usable, &pool);
          vcpus = pool;
          clamp (p, vm, &vcpus);
        }
      else
        for (guint i = 0; i < vm->threads->len; i++)
          {
            QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
            if (t->spec.role == QPIN_ROLE_VCPU && t->exclusive)
              qpin_cpuset_or (&vcpus, &t->cpus);
          }
      /* degraded vCPUs of a dedicated VM float on its nodes */
      qpin_cpuset_clear_all (&nodes_cpus);
      qpin_topology_nodes_of (topo, &vcpus, &node_ids);
      QPIN_CPUSET_FOREACH (id, &node_ids)
        qpin_cpuset_or (
          &nodes_cpus,
          &qpin_topology_node (topo, (guint) qpin_topology_node_index (topo, (guint) id))->cpus);
      pool = nodes_cpus;
      qpin_cpuset_and (&pool, &shared);
      if (qpin_cpuset_is_empty (&pool))
        pool = shared;
      if (qpin_cpuset_is_empty (&pool) && qpin_pool_vm_floats (vm, -1))
        qpin_pool_fallback (vm, &p->reserved, &live, &p->usable, &pool);
      hk_local = hk;
      qpin_cpuset_and (&hk_local, &nodes_cpus);
      if (qpin_cpuset_is_empty (&hk_local))
        hk_local = hk;
      if (qpin_cpuset_is_empty (&hk_local))
        hk_local = vcpus;
      /* a VM whose vCPUs all float (a lost CPU on a full host) shares their pool */
      if (qpin_cpuset_is_empty (&hk_local))
        hk_local = pool;
      for (guint i = 0; i < vm->threads->len; i++)
        {
          QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          QpinAuxMode mode
            = t->spec.role == QPIN_ROLE_IOTHREAD ? vm->policy->iothreads : vm->policy->emulator;

          if (t->exclusive || t->spec.role == QPIN_ROLE_OTHER)
            continue;
          if (t->spec.role == QPIN_ROLE_VCPU)
            set_vm_cpus (p, vm, t, vm->floating ? &vcpus : &pool);
          else if (mode == QPIN_AUX_HOUSEKEEPING)
            set_vm_cpus (p, vm, t, &hk_local);
          else
            set_vm_cpus (p, vm, t, qpin_cpuset_is_empty (&vcpus) ? &hk_local : &vcpus);
        }
      /* other QEMU workers follow the emulator thread */
      {
        const QpinPlanThread *emu = qpin_plan_vm_find_thread (vm, QPIN_ROLE_EMULATOR, 0);
        for (guint i = 0; i < vm->threads->len; i++)
          {
            QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
            if (t->spec.role != QPIN_ROLE_OTHER)
              continue;
            if (emu)
              set_cpus (t, &emu->cpus);
            else
              set_vm_cpus (p, vm, t,
                           vm->policy->emulator == QPIN_AUX_HOUSEKEEPING ? &hk_local
                           : qpin_cpuset_is_empty (&vcpus)               ? &hk_local
                                                                         : &vcpus);
          }
      }
      /* memory: the nodes of the vCPUs that have memory, else the nearest one */
      qpin_topology_nodes_of (topo, &vcpus, &node_ids);
      qpin_cpuset_clear_all (&vm->mem_nodes);
      for (guint n = 0; n < topo->nodes->len; n++)
        mem_known |= qpin_topology_node (topo, n)->mem_total_kb > 0;
      QPIN_CPUSET_FOREACH (id, &node_ids)
        {
          const QpinTopoNode *node
            = qpin_topology_node (topo, (guint) qpin_topology_node_index (topo, (guint) id));
          if (!mem_known || node->mem_total_kb > 0)
            qpin_cpuset_add (&vm->mem_nodes, (guint) id);
        }
      if (qpin_cpuset_is_empty (&vm->mem_nodes) && !qpin_cpuset_is_empty (&node_ids))
        {
          guint from
            = (guint) qpin_topology_node_index (topo, (guint) qpin_cpuset_first (&node_ids));
          gint best = -1;
          for (guint n = 0; n < topo->nodes->len; n++)
            if (qpin_topology_node (topo, n)->mem_total_kb > 0
                && (best < 0
                    || qpin_topology_distance (topo, from, n)
                         < qpin_topology_distance (topo, from, (guint) best)))
              best = (gint) n;
          if (best >= 0)
            qpin_cpuset_add (&vm->mem_nodes, qpin_topology_node (topo, (guint) best)->id);
        }
    }
}

static void
clear_changed (QpinPlacer *p)
{
  for (guint v = 0; v < p->plan->vms->len; v++)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->plan->vms, v);
      for (guint i = 0; i < vm->threads->len; i++)
        g_array_index (vm->threads, QpinPlanThread, i).changed = FALSE;
    }
}

/* ---- batch placement ---- */

typedef struct {
  QpinPlanVm *vm;
  guint n_vcpus;
  guint rank;      /* constraint rank: isolate/strict first */
  char *signature; /* equal signatures: interchangeable VMs */
} Job;

typedef struct {
  GPtrArray *jobs; /* Job * of the dedicated VMs */
  guint n;
  gboolean *done;
  guint *path_vm; /* current path: job index per depth */
  guint *path_opt;
  guint *best_vm;
  guint *best_opt;
  gboolean have_best;
  QpinScore best;
  guint spent;
  guint budget;
  guint options;
  GError *first_error;
} Search;

/* Places job j with option o; returns FALSE if it cannot (error kept). */
static gboolean
place_job_inside (QpinPlacer *p, Job *job, guint option, gboolean diverse, guint *n_options,
                  GError **error)
{
  gint slot = slot_add (p, job->vm);
  g_autoptr (GError) local = NULL;

  g_ptr_array_add (p->plan->vms, job->vm);
  if (place_dedicated (p, slot, option, n_options, diverse, &local))
    return TRUE;
  if (job->vm->policy->overcommit == QPIN_OVERCOMMIT_SHARE)
    {
      g_autoptr (GError) none = NULL;

      release_vm (p, job->vm);
      if (choose_pool (p, job->vm, &none))
        {
          qpin_plan_vm_add_note (job->vm, "overcommitted: shared pool (%s)", local->message);
          if (n_options)
            *n_options = 1;
          return TRUE;
        }
      {
        GError *both
          = g_error_new (QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT,
                         "%s, and the shared pool is empty (overcommit=share)", local->message);
        g_clear_error (&local);
        local = both;
      }
    }
  plan_unlink (p, job->vm);
  slot_free (p, job->vm);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* place_job_inside(), inside the VM's cpuset if it has one. */
static gboolean
place_job (QpinPlacer *p, Job *job, guint option, gboolean diverse, guint *n_options,
           GError **error)
{
  QpinCpuset saved;
  gboolean confined = confine (p, job->vm, &saved);
  gboolean ok = place_job_inside (p, job, option, diverse, n_options, error);

  unconfine (p, confined, &saved);
  return ok;
}

static void
unplace_job (QpinPlacer *p, Job *job)
{
  release_vm (p, job->vm);
  slot_free (p, job->vm);
  plan_unlink (p, job->vm);
}

/* Within budget; until a first complete plan, up to four times it. */
static gboolean
search_goes_on (const QpinPlacer *p, const Search *s)
{
  return p->work < s->budget || (!s->have_best && p->work < 4 * (guint64) s->budget);
}

static void
search (QpinPlacer *p, Search *s, guint depth)
{
  if (depth == s->n)
    {
      QpinScore score;
      p->work += p->n_cores * 4;
      qpin_placer_score (p, &score);
      if (!s->have_best || qpin_score_compare (&score, &s->best) < 0)
        {
          s->best = score;
          s->have_best = TRUE;
          memcpy (s->best_vm, s->path_vm, sizeof (guint) * s->n);
          memcpy (s->best_opt, s->path_opt, sizeof (guint) * s->n);
        }
      return;
    }
  for (guint j = 0; j < s->n && search_goes_on (p, s); j++)
    {
      Job *job = g_ptr_array_index (s->jobs, j);
      gboolean dup = FALSE;
      guint n_options = 1;

      if (s->done[j])
        continue;
      for (guint i = 0; i < j && !dup; i++)
        dup = !s->done[i]
              && strcmp (((Job *) g_ptr_array_index (s->jobs, i))->signature, job->signature) == 0;
      if (dup)
        continue;
      for (guint o = 0; o < n_options && o < s->options && search_goes_on (p, s); o++)
        {
          g_autoptr (GError) error = NULL;

          s->spent++;
          if (!place_job (p, job, o, TRUE, &n_options, &error))
            {
              if (s->first_error == NULL)
                s->first_error = g_steal_pointer (&error);
              break;
            }
          s->done[j] = TRUE;
          s->path_vm[depth] = j;
          s->path_opt[depth] = o;
          search (p, s, depth + 1);
          s->done[j] = FALSE;
          unplace_job (p, job);
        }
    }
}

static gint
cmp_job (gconstpointer a, gconstpointer b)
{
  const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  if (x->n_vcpus != y->n_vcpus)
    return x->n_vcpus > y->n_vcpus ? -1 : 1;
  return 0;
}

static void
job_free (gpointer data)
{
  Job *j = data;
  g_free (j->signature);
  g_free (j);
}

/* Places all jobs in the given order greedily; returns FALSE at the first failure. */
static gboolean
place_in_order (QpinPlacer *p, GPtrArray *jobs, const guint *order, guint *placed, GError **error)
{
  *placed = 0;
  for (guint i = 0; i < jobs->len; i++)
    {
      if (!place_job (p, g_ptr_array_index (jobs, order[i]), 0, FALSE, NULL, error))
        return FALSE;
      (*placed)++;
    }
  return TRUE;
}

static void
unplace_order (QpinPlacer *p, GPtrArray *jobs, const guint *order, guint placed)
{
  for (guint i = placed; i-- > 0;)
    unplace_job (p, g_ptr_array_index (jobs, order[i]));
}

/* How to rebuild the best plan found: a search path or a greedy order. */
typedef struct {
  gboolean pack_singles;
  gboolean from_search;
  guint order; /* 0 sorted, 1 reversed */
  guint *vm;   /* search path: job per depth */
  guint *opt;  /* search path: option per depth */
  QpinScore score;
} Recipe;

static void
order_of (guint n, guint which, guint *order)
{
  for (guint i = 0; i < n; i++)
    order[i] = which == 0 ? i : n - 1 - i;
}

/* Evaluates the order search (few VMs) and the greedy orders (largest and
 * most constrained first, and its reverse) with the current fill
 * strategy; leaves nothing placed.  Returns FALSE if none fits. */
static gboolean
plan_batch (QpinPlacer *p, GPtrArray *jobs, Recipe *r, GError **error)
{
  guint n = jobs->len;
  g_autofree guint *order = g_new (guint, n);
  g_autoptr (GError) first_error = NULL;
  gboolean have = FALSE;
  guint placed = 0;

  r->pack_singles = p->pack_singles;
  if (n <= p->search_max_vms)
    {
      Search s = { .jobs = jobs, .n = n, .budget = p->search_budget, .options = p->search_options };
      g_autofree gboolean *done = g_new0 (gboolean, n);
      g_autofree guint *pv = g_new0 (guint, n);
      g_autofree guint *po = g_new0 (guint, n);

      s.done = done;
      s.path_vm = pv;
      s.path_opt = po;
      s.best_vm = r->vm;
      s.best_opt = r->opt;
      p->work = 0;
      search (p, &s, 0);
      g_clear_error (&s.first_error);
      if (s.have_best)
        {
          have = TRUE;
          r->from_search = TRUE;
          r->score = s.best;
        }
    }
  for (guint o = 0; o < 2; o++)
    {
      g_autoptr (GError) local = NULL;

      order_of (n, o, order);
      if (place_in_order (p, jobs, order, &placed, &local))
        {
          QpinScore score;
          qpin_placer_score (p, &score);
          if (!have || qpin_score_compare (&score, &r->score) < 0)
            {
              have = TRUE;
              r->from_search = FALSE;
              r->order = o;
              r->score = score;
            }
        }
      else if (first_error == NULL)
        first_error = g_steal_pointer (&local);
      unplace_order (p, jobs, order, placed);
    }
  if (!have)
    {
      /* the greedy order names the VM that does not fit */
      g_propagate_error (error, g_steal_pointer (&first_error));
      return FALSE;
    }
  return TRUE;
}

static void
replay (QpinPlacer *p, GPtrArray *jobs, const Recipe *r)
{
  guint n = jobs->len;

  p->pack_singles = r->pack_singles;
  if (r->from_search)
    for (guint i = 0; i < n; i++)
      {
        gboolean ok
          = place_job (p, g_ptr_array_index (jobs, r->vm[i]), r->opt[i], TRUE, NULL, NULL);
        g_assert (ok);
      }
  else
    {
      g_autofree guint *order = g_new (guint, n);
      guint placed = 0;
      gboolean ok;

      order_of (n, r->order, order);
      ok = place_in_order (p, jobs, order, &placed, NULL);
      g_assert (ok);
    }
  p->pack_singles = FALSE;
}

/* Two fill strategies: avoid cores other VMs use (fewer shared cores now),
 * or complete half-used cores first (best fit: keeps whole cores for the
 * VMs still to come, which can mean fewer shared cores in the end).  The
 * batch is planned with both and the better score is kept. */
static gboolean
place_dedicated_batch (QpinPlacer *p, GPtrArray *jobs, GError **error)
{
  guint n = MAX (jobs->len, 1);
  g_autofree guint *vm0 = g_new0 (guint, n), *opt0 = g_new0 (guint, n);
  g_autofree guint *vm1 = g_new0 (guint, n), *opt1 = g_new0 (guint, n);
  Recipe r[2] = { { .vm = vm0, .opt = opt0 }, { .vm = vm1, .opt = opt1 } };
  gboolean ok[2];
  g_autoptr (GError) first_error = NULL;

  if (jobs->len == 0)
    return TRUE;
  for (guint i = 0; i < 2; i++)
    {
      p->pack_singles = i == 1;
      ok[i] = plan_batch (p, jobs, &r[i], i == 0 ? &first_error : NULL);
    }
  p->pack_singles = FALSE;
  if (!ok[0] && !ok[1])
    {
      g_propagate_error (error, g_steal_pointer (&first_error));
      return FALSE;
    }
  if (ok[0] && (!ok[1] || qpin_score_compare (&r[0].score, &r[1].score) <= 0))
    replay (p, jobs, &r[0]);
  else
    replay (p, jobs, &r[1]);
  return TRUE;
}

static char *
job_signature (const QpinPlanVm *vm)
{
  GString *s = g_string_new (NULL);
  const QpinPolicy *pol = vm->policy;

  g_string_append_printf (s, "%d/%d/%d/%d/%d/%d:", pol->cpus, pol->numa, pol->smt, pol->emulator,
                          pol->iothreads, pol->overcommit);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinThreadSpec *t = &g_array_index (vm->threads, QpinPlanThread, i).spec;
      g_string_append_printf (s, "%d.%d.%d.%d.%d.%d.%d;", t->role, t->socket, t->die, t->cluster,
                              t->core, t->thread, t->node);
    }
  return g_string_free (s, FALSE);
}

static QpinPlanVm *
vm_from_request (const QpinRequest *r, const QpinPolicy *policy)
{
  QpinPlanVm *vm = qpin_plan_vm_new (r->name, r->pid, policy);

  for (guint i = 0; i < r->threads->len; i++)
    {
      QpinPlanThread t = { .spec = g_array_index (r->threads, QpinThreadSpec, i) };
      t.changed = TRUE;
      g_array_append_val (vm->threads, t);
    }
  return vm;
}

/**
 * qpin_placer_place:
 * @requests: (element-type QpinRequest): the VMs to add
 * @policies: (element-type QpinPolicy): their merged policies, same order
 *
 * Places several new VMs together, as well as the best order allows,
 * keeping the VMs already placed where they are.  All or nothing.
 *
 * Returns: %TRUE on success; otherwise %QPIN_POLICY_ERROR_NO_FIT naming
 * the VM, the CPUs it needs and the free ones, or _CONFLICT for
 * contradictory policies, and nothing changed.
 */
gboolean
qpin_placer_place (QpinPlacer *p, GPtrArray *requests, GPtrArray *policies, GError **error)
{
  g_autoptr (GPtrArray) jobs = g_ptr_array_new_with_free_func (job_free);
  g_autoptr (GPtrArray) added = g_ptr_array_new (); /* QpinPlanVm * now in the plan */
  g_autoptr (GPtrArray) pending
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_plan_vm_free);
  g_autoptr (GPtrArray) batch_pool = g_ptr_array_new (); /* borrowed from pending */
  gboolean ok = TRUE;

  g_return_val_if_fail (requests->len == policies->len, FALSE);
  clear_changed (p);
  for (guint i = 0; i < requests->len; i++)
    {
      const QpinRequest *r = g_ptr_array_index (requests, i);
      const QpinPolicy *pol = g_ptr_array_index (policies, i);

      if (qpin_plan_find_vm (p->plan, r->name))
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                       "vm '%s' is already placed", r->name);
          return FALSE;
        }
      for (guint j = 0; j < i; j++)
        if (strcmp (((const QpinRequest *) g_ptr_array_index (requests, j))->name, r->name) == 0)
          {
            g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                         "vm '%s' is requested twice", r->name);
            return FALSE;
          }
      if (!qpin_policy_check (pol, p->topo, r->name, error))
        return FALSE;
      g_ptr_array_add (pending, vm_from_request (r, pol));
    }
  /* the shared VMs of this batch float on the pool the others must leave */
  for (guint i = 0; i < pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (pending, i);
      if (vm->policy->cpus == QPIN_CPUS_SHARED)
        g_ptr_array_add (batch_pool, vm);
    }
  p->batch_pool = batch_pool;
  {
    QpinCpuset pool;
    shared_pool (p, &pool);
    p->batch_spills = qpin_pool_batch_spills (pending, qpin_cpuset_count (&pool));
  }
  /* manual first: their CPUs are fixed */
  for (guint i = 0; ok && i < pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (pending, i);
      if (vm->policy->cpus != QPIN_CPUS_MANUAL)
        continue;
      g_ptr_array_add (p->plan->vms, vm);
      pending->pdata[i] = NULL;
      g_ptr_array_add (added, vm);
      {
        QpinCpuset saved;
        gboolean confined = confine (p, vm, &saved);
        ok = place_manual (p, slot_add (p, vm), error);
        unconfine (p, confined, &saved);
      }
    }
  /* dedicated: the search */
  for (guint i = 0; ok && i < pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (pending, i);
      Job *job;

      if (vm == NULL || vm->policy->cpus != QPIN_CPUS_DEDICATED)
        continue;
      job = g_new0 (Job, 1);
      job->vm = vm;
      job->n_vcpus = qpin_request_n_vcpus (g_ptr_array_index (requests, i));
      job->rank = (vm->policy->smt == QPIN_SMT_ISOLATE ? 0 : 2)
                  + (vm->policy->numa == QPIN_NUMA_STRICT ? 0 : 1);
      job->signature = job_signature (vm);
      g_ptr_array_add (jobs, job);
    }
  g_ptr_array_sort (jobs, cmp_job);
  if (ok)
    {
      ok = place_dedicated_batch (p, jobs, error);
      for (guint i = 0; ok && i < jobs->len; i++)
        {
          QpinPlanVm *vm = ((Job *) g_ptr_array_index (jobs, i))->vm;
          for (guint j = 0; j < pending->len; j++)
            if (pending->pdata[j] == vm)
              pending->pdata[j] = NULL;
          g_ptr_array_add (added, vm);
        }
    }
  p->batch_pool = NULL;
  p->batch_spills = FALSE;
  /* shared: pools */
  for (guint i = 0; ok && i < pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (pending, i);
      if (vm == NULL)
        continue;
      g_ptr_array_add (p->plan->vms, vm);
      pending->pdata[i] = NULL;
      g_ptr_array_add (added, vm);
      slot_add (p, vm);
      {
        QpinCpuset saved;
        gboolean confined = confine (p, vm, &saved);
        ok = choose_pool (p, vm, error);
        unconfine (p, confined, &saved);
      }
    }
  if (!ok)
    {
      for (guint i = added->len; i-- > 0;)
        {
          QpinPlanVm *vm = g_ptr_array_index (added, i);
          drop_vm (p, vm); /* frees vm through plan->vms */
        }
      return FALSE;
    }
  /* keep the new VMs in request order for stable output */
  {
    g_autoptr (GPtrArray) ordered = g_ptr_array_new ();
    for (guint i = 0; i < requests->len; i++)
      {
        const QpinRequest *r = g_ptr_array_index (requests, i);
        QpinPlanVm *vm = qpin_plan_find_vm (p->plan, r->name);
        plan_unlink (p, vm);
        g_ptr_array_add (ordered, vm);
      }
    for (guint i = 0; i < ordered->len; i++)
      g_ptr_array_add (p->plan->vms, g_ptr_array_index (ordered, i));
  }
  finalize (p, NULL);
  return TRUE;
}

/* ---- incremental changes ---- */

static QpinPlanVm *
find_vm (QpinPlacer *p, const char *name, GError **error)
{
  QpinPlanVm *vm = qpin_plan_find_vm (p->plan, name);
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

  if (s->role != QPIN_ROLE_VCPU || s->core < 0)
    return -1;
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *o = &g_array_index (vm->threads, QpinPlanThread, i);
      if (i == t || o->spec.role != QPIN_ROLE_VCPU || !o->exclusive || o->spec.socket != s->socket
          || o->spec.die != s->die || o->spec.cluster != s->cluster || o->spec.core != s->core
          || o->spec.node != s->node)
        continue;
      return p->topo->cpu_core[qpin_cpuset_first (&o->cpus)];
    }
  return -1;
}

static void release_thread (QpinPlacer *p, QpinPlanVm *vm, guint t);

/* Takes one CPU for thread t of a placed VM: its cpumap entry, else the
 * best single CPU (core @k). */
static gboolean
one_take (QpinPlacer *p, QpinPlanVm *vm, guint t, gint k, gboolean isolate, GError **error)
{
  gint slot = slot_of (p, vm);
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));
  guint cpu;

  th->changed = TRUE;
  if (th->spec.role == QPIN_ROLE_VCPU && vm->policy->cpus == QPIN_CPUS_MANUAL)
    return manual_take (p, slot, t, undo, error);
  cpu = (guint) core_take (p, (guint) k);
  hold (p, cpu, slot, KIND_EXCLUSIVE, (gint) t);
  qpin_cpuset_clear_all (&th->cpus);
  qpin_cpuset_add (&th->cpus, cpu);
  th->exclusive = TRUE;
  if (isolate)
    hold_siblings (p, slot, (guint) k, undo);
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
  gint k = manual ? 0 : pick_single (p, slot_of (p, vm), sibling_core (p, vm, t), isolate, vcpu);

  if (k >= 0)
    {
      if (!one_take (p, vm, t, k, isolate, error))
        return FALSE;
      if (!pool_emptied (p, vm, (gint) t))
        return TRUE;
      needs = manual ? manual_needs (&th->cpus)
                     : g_strdup_printf ("%s %u needs 1 %s", role, th->spec.index,
                                        unit_name (isolate, 1));
      release_thread (p, vm, t);
      pool_refuse (p, vm, needs, isolate, (gint) t, &local);
    }
  else
    {
      g_autoptr (GString) s = g_string_new (NULL);
      needs = g_strdup_printf ("%s %u needs 1 %s", role, th->spec.index, unit_name (isolate, 1));
      g_string_append_printf (s, "vm '%s': %s, ", vm->name, needs);
      append_free (p, vm, isolate, NULL, 0, NULL, s);
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
  gboolean confined = confine (p, vm, &saved);
  gboolean ok = place_one_inside (p, vm, t, error);

  unconfine (p, confined, &saved);
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
  QpinPlanVm *vm = qpin_plan_find_vm (p->plan, vm_name);

  return vm == NULL || qpin_pool_note_waiting (vm, spec, reason);
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
  clear_changed (p);
  t.spec = *spec;
  t.changed = TRUE;
  g_array_append_val (vm->threads, t);
  if (wants_own_cpu (vm, spec) && !place_one (p, vm, vm->threads->len - 1, error))
    {
      g_array_set_size (vm->threads, vm->threads->len - 1);
      return FALSE;
    }
  qpin_pool_forget_waiting (vm, spec);
  finalize (p, vm);
  return TRUE;
}

/* Releases what thread t holds: its CPUs and, for smt=isolate, the held
 * siblings of cores where the VM keeps no other exclusive CPU. */
static void
release_thread (QpinPlacer *p, QpinPlanVm *vm, guint t)
{
  QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
  gint slot = slot_of (p, vm);

  if (!th->exclusive)
    return;
  QPIN_CPUSET_FOREACH (cpu, &th->cpus)
    {
      gint k = p->topo->cpu_core[cpu];
      gboolean keep = FALSE;
      const QpinTopoCore *core;

      if (p->owner[cpu] == slot)
        release (p, (guint) cpu);
      if (k < 0)
        continue;
      core = &g_array_index (p->topo->cores, QpinTopoCore, k);
      QPIN_CPUSET_FOREACH (sib, &core->cpus)
        keep |= p->owner[sib] == slot && p->kind[sib] == KIND_EXCLUSIVE;
      if (!keep)
        QPIN_CPUSET_FOREACH (sib, &core->cpus)
          if (p->owner[sib] == slot && p->kind[sib] == KIND_SIBLING)
            release (p, (guint) sib);
    }
  qpin_cpuset_clear_all (&th->cpus);
  th->exclusive = FALSE;
}

/* owner_thread holds thread indexes: keep them right after a removal. */
static void
renumber (QpinPlacer *p, gint slot, guint removed)
{
  for (guint c = 0; c < p->n_slots; c++)
    if (p->owner[c] == slot && p->owner_thread[c] > (gint) removed)
      p->owner_thread[c]--;
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
  QpinPlanThread *th;
  guint t;

  if (vm == NULL)
    return FALSE;
  th = qpin_plan_vm_find_thread (vm, role, index);
  if (th == NULL)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT, "vm '%s' has no %s %u",
                   vm_name, qpin_thread_role_to_string (role), index);
      return FALSE;
    }
  clear_changed (p);
  t = (guint) (th - &g_array_index (vm->threads, QpinPlanThread, 0));
  release_thread (p, vm, t);
  g_array_remove_index (vm->threads, t);
  renumber (p, slot_of (p, vm), t);
  finalize (p, vm);
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
  clear_changed (p);
  drop_vm (p, vm);
  finalize (p, NULL);
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
  clear_changed (p);
  slot = p->owner[cpu];
  t = p->owner_thread[cpu];
  kind = p->kind[cpu];
  release (p, cpu);
  qpin_cpuset_add (&p->lost, cpu);
  qpin_cpuset_remove (&p->usable, cpu);
  recount (p);
  if (slot >= 0 && kind == KIND_EXCLUSIVE && t >= 0)
    {
      QpinPlanVm *vm = g_ptr_array_index (p->slots, slot);
      QpinPlanThread *th = &g_array_index (vm->threads, QpinPlanThread, t);
      QpinCpuset rest = th->cpus;
      g_autoptr (GError) local = NULL;

      qpin_cpuset_remove (&rest, cpu);
      th->changed = TRUE;
      if (!qpin_cpuset_is_empty (&rest))
        th->cpus = rest; /* a manual pin on several CPUs keeps the others */
      else
        {
          release_thread (p, vm, (guint) t);
          if (!place_one (p, vm, (guint) t, &local))
            {
              qpin_plan_vm_add_note (vm, "degraded: %s %u floats after losing cpu %u (%s)",
                                     qpin_thread_role_to_string (th->spec.role), th->spec.index,
                                     cpu, local->message);
              th->exclusive = FALSE;
            }
        }
    }
  finalize (p, NULL);
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
      if (!t->exclusive)
        continue;
      QPIN_CPUSET_FOREACH (cpu, &t->cpus)
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
  clear_changed (p);
  copy = qpin_plan_vm_copy (vm);
  qpin_cpuset_clear_all (&copy->held);
  slot = slot_add (p, copy);
  g_ptr_array_add (p->plan->vms, copy);
  for (guint i = 0; i < copy->threads->len; i++)
    {
      QpinPlanThread *t = &g_array_index (copy->threads, QpinPlanThread, i);
      if (t->exclusive)
        QPIN_CPUSET_FOREACH (cpu, &t->cpus)
          if (p->owner[cpu] < 0)
            hold (p, (guint) cpu, slot, KIND_EXCLUSIVE, (gint) i);
    }
  if (copy->floating && qpin_cpuset_is_empty (&copy->pool_domain) && !choose_pool (p, copy, error))
    {
      drop_vm (p, copy);
      return FALSE;
    }
  if (pool_is_empty (p))
    {
      /* its own floating threads (a vCPU degraded by a lost CPU) float on
       * its own CPUs then, as they did before the restart: only others
       * would be left without a pool */
      g_autoptr (GString) names = g_string_new (NULL);
      guint n = pool_users (p, copy, -1, names);
      if (n > 0)
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                       "vm '%s': its pins leave the shared pool empty, and %s %s float%s on it",
                       vm->name, n == 1 ? "vm" : "vms", names->str, n == 1 ? "s" : "");
          drop_vm (p, copy);
          return FALSE;
        }
    }
  finalize (p, NULL);
  return TRUE;
}
