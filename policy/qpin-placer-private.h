/* qpin-placer-private.h: the placer's internals, shared by its files
 *
 * Only policy/qpin-placer*.c and the placer's tests include this (they
 * define QPIN_PLACER_ALLOW_PRIVATE first); everyone else uses
 * qpin-placer.h.  The placer is split by what each part decides
 * (doc/design.md §4.1):
 *   qpin-placer.c              construction, the public getters
 *   qpin-placer-ledger.c       the ledger: hold/release, slots, undo, confinement
 *   qpin-placer-fill.c         units and groups, filling a domain
 *   qpin-placer-candidates.c   the candidate domains of a group, their costs
 *   qpin-placer-vm.c           placing one VM: dedicated, manual, isolated aux threads
 *   qpin-placer-finalize.c     the shared pool, floating sets, housekeeping, memory nodes
 *   qpin-placer-batch.c        qpin_placer_place(): the batch search
 *   qpin-placer-incremental.c  hot-add, removal, a lost CPU, adoption
 *
 * Vocabulary:
 *   cell    the CPUs of one LLC group inside one node (LLC groups may span
 *           nodes, e.g. sub-NUMA clustering; cells never do), of one CPU
 *           kind, and of one cluster when the host has clusters of several
 *           cores (an L2 per four E-cores): a VM that fits one gets one
 *   unit    vCPUs that want one host core: guest thread siblings, or for a
 *           guest without SMT consecutive vCPUs packed into whole cores
 *   group   the vCPUs of one guest NUMA node (or all of them)
 *   domain  an ordered list of cells a group is placed into
 * The ledger is two per-CPU arrays (owner slot, kind) plus free counts per
 * core, cell and node that hold() and release() keep current.
 */
#pragma once

#ifndef QPIN_PLACER_ALLOW_PRIVATE
#error "qpin-placer-private.h is private to the placer: include qpin-placer.h"
#endif

#include <string.h>

#include "qpin-placer.h"
#include "qpin-pool.h"

G_BEGIN_DECLS

#define MAX_UNIT 8
#define N_COST 13

enum { KIND_EXCLUSIVE = 1, KIND_SIBLING = 2 };

typedef struct {
  guint llc;
  guint node;
  guint kind;    /* index into the topology's kinds, 0 with one kind */
  gint cluster;  /* index into the topology's clusters, -1 outside one */
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
  guint *cell_group; /* per cell: the first cell of its LLC group and node */
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
  guint *cluster_mark;   /* per cluster, the same */
  guint stamp;
  /* what the last finalize computed the VMs' shared sets from (live,
   * shared pool, housekeeping, reserved, usable; the CPUs' owners): while
   * they hold, a VM that depends on the others needs no recomputing */
  gboolean fin_valid;
  QpinCpuset fin_sets[5];
  gint *fin_owner;
};

typedef struct {
  QpinPlanVm *vm;
  guint n_vcpus;
  guint rank;      /* constraint rank: isolate/strict first */
  char *signature; /* equal signatures: interchangeable VMs */
} Job;

/* How to rebuild the best plan found: a search path or a greedy order. */
typedef struct {
  gboolean pack_singles;
  gboolean from_search;
  guint order; /* 0 sorted, 1 reversed */
  guint *vm;   /* search path: job per depth */
  guint *opt;  /* search path: option per depth */
  QpinScore score;
} Recipe;

/* One group of one VM being placed: what fill(), the candidate domains
 * and the no-fit message need to know. */
typedef struct {
  gint slot;                    /* the VM */
  const Group *g;               /* the group */
  gboolean isolate;             /* smt=isolate: whole free cores */
  QpinNumaMode numa;            /* the VM's numa= */
  const gboolean *allowed;      /* per node index: may the group use it */
  const QpinCpuset *prev_nodes; /* host node ids of the VM's groups placed before */
  gboolean diverse;             /* for the search: also the wider levels */
  GArray *undo;                 /* guint CPUs held so far, in order */
} Placing;

#define CORE_CPUS(p, k) (&(p)->core_cpu[MAX_UNIT * (k)])
#define TCPU(p, t) g_array_index ((p)->tcpu, gint, (t))

/* ---- small ledger queries, inline: fill() and cost_of() call them per core ---- */

static inline gboolean
core_whole (const QpinPlacer *p, guint k)
{
  return p->core_usable[k] > 0 && p->core_free[k] == p->core_usable[k];
}

/* Does core k hold CPUs of a VM other than slot? */
static inline gboolean
core_has_other (const QpinPlacer *p, guint k, gint slot)
{
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] >= 0 && p->owner[cpu] != slot)
      return TRUE;
  return FALSE;
}

static inline gboolean
core_has_own (const QpinPlacer *p, guint k, gint slot)
{
  for (guint _i = 0, cpu; _i < MAX_UNIT && (cpu = CORE_CPUS (p, k)[_i]) != G_MAXUINT; _i++)
    if (p->owner[cpu] == slot)
      return TRUE;
  return FALSE;
}

/* The first free usable CPU of core k, isolated ones first. */
static inline gint
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

static inline gboolean
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

static inline guint
cap_cell (const QpinPlacer *p, guint c, gboolean isolate)
{
  return isolate ? p->cell_whole[c] : p->cell_free[c];
}

static inline guint
cap_node (const QpinPlacer *p, guint n, gboolean isolate)
{
  return isolate ? p->node_whole[n] : p->node_free[n];
}

static inline gboolean
key_less (const guint *a, const guint *b, guint n)
{
  for (guint i = 0; i < n; i++)
    if (a[i] != b[i])
      return a[i] < b[i];
  return FALSE;
}

/* qpin-placer-ledger.c */
void qpin_placer_recount (QpinPlacer *p);
gboolean qpin_placer_hold (QpinPlacer *p, guint cpu, gint slot, guint8 kind, gint thread,
                           GError **error);
void qpin_placer_release (QpinPlacer *p, guint cpu);
gint qpin_placer_slot_add (QpinPlacer *p, QpinPlanVm *vm);
gint qpin_placer_slot_of (const QpinPlacer *p, const QpinPlanVm *vm);
void qpin_placer_release_vm (QpinPlacer *p, QpinPlanVm *vm);
QpinPlanVm *qpin_placer_vm (QpinPlacer *p, const char *name);
void qpin_placer_plan_unlink (QpinPlacer *p, QpinPlanVm *vm);
void qpin_placer_slot_free (QpinPlacer *p, QpinPlanVm *vm);
void qpin_placer_drop_vm (QpinPlacer *p, QpinPlanVm *vm);
gboolean qpin_placer_take (QpinPlacer *p, gint slot, guint t, gint cpu, GArray *undo,
                           GError **error);
void qpin_placer_tcpu_reset (QpinPlacer *p, const QpinPlanVm *vm);
void qpin_placer_tcpu_commit (QpinPlacer *p, QpinPlanVm *vm);
gboolean qpin_placer_hold_siblings (QpinPlacer *p, gint slot, guint k, GArray *undo,
                                    GError **error);
void qpin_placer_rollback (QpinPlacer *p, QpinPlanVm *vm, GArray *undo, guint from);
void qpin_placer_clear_changed (QpinPlacer *p);
gboolean qpin_placer_confine (QpinPlacer *p, const QpinPlanVm *vm, QpinCpuset *saved);
void qpin_placer_unconfine (QpinPlacer *p, gboolean confined, const QpinCpuset *saved);
void qpin_placer_release_thread (QpinPlacer *p, QpinPlanVm *vm, guint t);
void qpin_placer_renumber (QpinPlacer *p, gint slot, guint removed);
void qpin_placer_free_set (const QpinPlacer *p, gboolean isolate, const gboolean *allowed,
                           QpinCpuset *f);
void qpin_placer_set_cpus (QpinPlanThread *t, const QpinCpuset *cpus);

/* qpin-placer-fill.c */
GArray *qpin_placer_build_groups (const QpinPlacer *p, const QpinPlanVm *vm, GArray *idx,
                                  gboolean isolate);
gboolean qpin_placer_fill (QpinPlacer *p, const Placing *pl, const guint *cells, guint n_cells);

/* qpin-placer-candidates.c */
GArray *qpin_placer_pick_cells (const QpinPlacer *p, const gboolean *in_node, guint need,
                                gboolean isolate);
GArray *qpin_placer_candidates (QpinPlacer *p, const Placing *pl);

/* qpin-placer-vm.c */
const char *qpin_placer_unit_name (gboolean isolate, guint n);
void qpin_placer_append_free (const QpinPlacer *p, const QpinPlanVm *vm, gboolean isolate,
                              const gboolean *allowed, guint total, const char *where, GString *s);
gint qpin_placer_pick_single (QpinPlacer *p, gint slot, gint hint_core, gboolean isolate,
                              gboolean vcpu);
gboolean qpin_placer_place_dedicated (QpinPlacer *p, gint slot, guint option, guint *n_options,
                                      gboolean diverse, GError **error);
gboolean qpin_placer_take_candidate (QpinPlacer *p, const Placing *pl, const Candidate *c,
                                     QpinCpuset *used_nodes, GError **error);
gboolean qpin_placer_manual_take (QpinPlacer *p, gint slot, guint t, GArray *undo, GError **error);
char *qpin_placer_manual_needs (const QpinCpuset *cpus);
gboolean qpin_placer_place_manual (QpinPlacer *p, gint slot, GError **error);

/* qpin-placer-batch.c */
gboolean qpin_placer_replay (QpinPlacer *p, GPtrArray *jobs, const Recipe *r, GError **error);

/* qpin-placer-finalize.c */
void qpin_placer_shared_pool (const QpinPlacer *p, QpinCpuset *pool);
gboolean qpin_placer_pool_is_empty (const QpinPlacer *p);
guint qpin_placer_pool_users (const QpinPlacer *p, const QpinPlanVm *self, gint self_t,
                              GString *names);
gboolean qpin_placer_pool_emptied (const QpinPlacer *p, const QpinPlanVm *vm, gint self_t);
void qpin_placer_pool_refuse (const QpinPlacer *p, const QpinPlanVm *vm, const char *needs,
                              gboolean isolate, gint self_t, GError **error);
gboolean qpin_placer_choose_pool (QpinPlacer *p, QpinPlanVm *vm, GError **error);
void qpin_placer_finalize (QpinPlacer *p, const QpinPlanVm *only);
void qpin_placer_finalize_changed (QpinPlacer *p, const GPtrArray *changed);

G_END_DECLS
