/* qpin-score.h: how good a plan is
 *
 * Compared lexicographically in field order, smaller is better:
 *   overcommitted    vCPUs that wanted dedicated CPUs and float instead
 *   kind_excess      sum over VMs of CPU kinds spanned minus the minimum possible
 *                    (hybrid hosts; 0 for kind=any)
 *   kind_rank        how far the vCPUs are from the kind their VM wants: per
 *                    vCPU its kind's rank, fastest 0 (kind=fast), or the reverse
 *                    (kind=efficient)
 *   node_excess      sum over VMs of nodes spanned minus the minimum possible,
 *                    plus the guest NUMA nodes that had to share a host node
 *   node_distance    sum over VMs of the distances between the nodes each spans
 *                    (0 for a VM in one node): nearest nodes first
 *   llc_excess       same for LLC groups
 *   cluster_excess   clusters of several cores spanned minus the fewest that
 *                    hold the VM's vCPUs that are in clusters (cores outside
 *                    one count none)
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
  guint kind_excess;
  guint kind_rank;
  guint node_excess;
  guint node_distance;
  guint llc_excess;
  guint cluster_excess;
  guint shared_cores;
  guint sibling_misses;
  guint half_used_cores;
  /* informational */
  guint nodes_spanned, nodes_min;
  guint llcs_spanned, llcs_min;
  guint sibling_pairs;
  gboolean has_kinds, has_clusters; /* the host has them: the text shows their terms */
  guint kinds_spanned, kinds_min;
  guint clusters_spanned, clusters_min;
} QpinScore;

void qpin_score_compute (const QpinTopology *topo, const QpinPlan *plan, const QpinCpuset *usable,
                         QpinScore *score);
gint qpin_score_compare (const QpinScore *a, const QpinScore *b);
char *qpin_score_to_text (const QpinScore *score);
guint qpin_score_min_span (const QpinTopology *topo, const QpinCpuset *usable, gboolean llc,
                           gboolean whole_cores, guint n);

G_END_DECLS
