/* qpin-score.h: how good a plan is
 *
 * Compared lexicographically in field order, smaller is better:
 *   overcommitted    vCPUs that wanted dedicated CPUs and float instead
 *   node_excess      sum over VMs of nodes spanned minus the minimum possible,
 *                    plus the guest NUMA nodes that had to share a host node
 *   node_distance    sum over VMs of the distances between the nodes each spans
 *                    (0 for a VM in one node): nearest nodes first
 *   llc_excess       same for LLC groups
 *   shared_cores     cores whose CPUs are held by two or more different VMs
 *   sibling_misses   guest thread-sibling pairs not on host SMT siblings
 *   half_used_cores  cores with some CPUs held and some usable CPUs free
 * The minimum possible span of a VM is computed on the empty host (usable
 * CPUs: online, not reserved, not lost), so an excess may be forced by other
 * VMs; an exhaustive search scores the same way.  VMs on a shared pool and
 * numa=spread VMs are left out of the span terms.
 */
#pragma once

#include <glib.h>

#include "qpin-plan.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

typedef struct {
  guint overcommitted;
  guint node_excess;
  guint node_distance;
  guint llc_excess;
  guint shared_cores;
  guint sibling_misses;
  guint half_used_cores;
  /* informational */
  guint nodes_spanned, nodes_min;
  guint llcs_spanned, llcs_min;
  guint sibling_pairs;
} QpinScore;

void qpin_score_compute (const QpinTopology *topo, const QpinPlan *plan, const QpinCpuset *usable,
                         QpinScore *score);
gint qpin_score_compare (const QpinScore *a, const QpinScore *b);
char *qpin_score_to_text (const QpinScore *score);
guint qpin_score_min_span (const QpinTopology *topo, const QpinCpuset *usable, gboolean llc,
                           gboolean whole_cores, guint n);

G_END_DECLS
