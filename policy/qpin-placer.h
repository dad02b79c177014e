/* qpin-placer.h: the placement engine
 *
 * A QpinPlacer holds the ledger (which host CPU is held by which VM,
 * exclusively for a thread or as the held sibling of an smt=isolate core)
 * and the current plan of every VM it manages.  It is pure: the caller
 * reads the topology, builds requests from QMP and applies the plan.
 *
 * Typical use in the pinner:
 *   placer = qpin_placer_new (topo, &reserved);
 *   qpin_placer_adopt (placer, vm_from_kernel_affinities, &error);   after a restart
 *   qpin_placer_place (placer, requests, policies, &error);          new VMs, all or nothing
 *   qpin_placer_add_thread (placer, "vm", &spec, &error);            vCPU hot-add
 *   qpin_placer_remove_thread / _remove_vm / _lose_cpu
 * After each call, threads whose cpuset changed have `changed` set in
 * qpin_placer_get_plan(); re-pin exactly those.
 *
 * Batch placement (several VMs at once) keeps the best-scoring plan
 * (qpin-score.h) among: a depth-first search over VM orders and, per VM,
 * a few candidate domains (QPIN_PLACER_SEARCH_OPTIONS: its best, the best
 * of each wider level, other node pairs, seed-first and small-cells-first
 * fills) for up to QPIN_PLACER_SEARCH_MAX_VMS VMs, bounded by an effort
 * budget (cores examined) so big hosts search less deeply; and two greedy
 * orders (largest and most constrained first, and the reverse).  Both run
 * with two fill strategies (avoid cores other VMs use / complete half-used
 * cores first).  Every tie is broken by indexes, so the same input always
 * gives the same plan.
 */
#pragma once

#include <glib.h>

#include "qpin-plan.h"
#include "qpin-policy.h"
#include "qpin-request.h"
#include "qpin-score.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

#define QPIN_PLACER_SEARCH_MAX_VMS 6     /* exhaustive order search up to this many VMs */
#define QPIN_PLACER_SEARCH_OPTIONS 6     /* candidate domains tried per VM in the search */
#define QPIN_PLACER_SEARCH_BUDGET 150000 /* effort (cores examined) per batch search */

typedef struct _QpinPlacer QpinPlacer;

QpinPlacer *qpin_placer_new (const QpinTopology *topo, const QpinCpuset *reserved);
void qpin_placer_free (QpinPlacer *placer);
const QpinPlan *qpin_placer_get_plan (const QpinPlacer *placer);
const QpinCpuset *qpin_placer_get_usable (const QpinPlacer *placer);
const QpinCpuset *qpin_placer_get_reserved (const QpinPlacer *placer);
const char *qpin_placer_holder (const QpinPlacer *placer, guint cpu);
void qpin_placer_score (const QpinPlacer *placer, QpinScore *score);
void qpin_placer_set_search (QpinPlacer *placer, guint max_vms, guint options, guint budget);

gboolean qpin_placer_place (QpinPlacer *placer, GPtrArray *requests, GPtrArray *policies,
                            GError **error);
gboolean qpin_placer_adopt (QpinPlacer *placer, const QpinPlanVm *vm, GError **error);
gboolean qpin_placer_add_thread (QpinPlacer *placer, const char *vm_name,
                                 const QpinThreadSpec *spec, GError **error);
gboolean qpin_placer_note_waiting (QpinPlacer *placer, const char *vm_name,
                                   const QpinThreadSpec *spec, const char *reason);
gboolean qpin_placer_add_note (QpinPlacer *placer, const char *vm_name, const char *format, ...)
  G_GNUC_PRINTF (3, 4);
gboolean qpin_placer_remove_thread (QpinPlacer *placer, const char *vm_name, QpinThreadRole role,
                                    guint index, GError **error);
gboolean qpin_placer_remove_vm (QpinPlacer *placer, const char *vm_name, GError **error);
gboolean qpin_placer_lose_cpu (QpinPlacer *placer, guint cpu, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinPlacer, qpin_placer_free)

G_END_DECLS
