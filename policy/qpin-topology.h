/* qpin-topology.h: the host topology model
 *
 * node > package > LLC group > core > CPU (SMT thread), plus node
 * distances, memory per node and the online / offline / isolated /
 * nohz_full CPU sets.  Every object is identified by its cpuset; the
 * index arrays are derived so that the placer can walk from a CPU to its
 * core, LLC group, node and package in O(1).
 *
 * Built in two steps, so that any source (sysfs, libnuma, a test) can
 * fill it: qpin_topology_new(), the qpin_topology_set_* / _add_* calls,
 * then qpin_topology_finish() which validates and derives.  After
 * finish() the structure is read-only; treat every field as const.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"

G_BEGIN_DECLS

/* A NUMA node.  CPU-less memory nodes have an empty cpuset. */
typedef struct {
  guint id;
  QpinCpuset cpus;      /* online CPUs of the node */
  guint64 mem_total_kb; /* 0 when unknown */
  guint64 mem_free_kb;
} QpinTopoNode;

typedef struct {
  guint id; /* physical_package_id */
  QpinCpuset cpus;
} QpinTopoPackage;

/* A last-level-cache group: the CPUs that share the highest cache level. */
typedef struct {
  QpinCpuset cpus;
  guint package; /* index into packages */
  guint level;   /* cache level, 0 when derived from the package */
} QpinTopoLlc;

/* A core: its online SMT siblings. */
typedef struct {
  QpinCpuset cpus;
  guint n_cpus;
  guint core_id; /* core_id as the kernel numbers it (per package) */
  guint package; /* index into packages */
  guint llc;     /* index into llcs */
  gint node;     /* index into nodes, -1 if in no node */
} QpinTopoCore;

/* A kind of CPU on a hybrid host (P-cores and E-cores, big.LITTLE), ranked
 * by capacity, highest first.  A host with one kind lists none. */
typedef struct {
  char *name;      /* "P", "E" (two kinds), else "K0", "K1", ... */
  QpinCpuset cpus; /* online CPUs of this kind */
  guint capacity;  /* the largest value of the source among them; 0 unknown */
  char *source;    /* the file(s) the kinds came from, relative to the root */
} QpinTopoKind;

/* What a source knows about one online CPU. */
typedef struct {
  guint cpu;
  guint package_id;
  guint core_id;
  QpinCpuset siblings; /* thread_siblings_list; may be empty = just itself */
  QpinCpuset llc;      /* shared_cpu_list of the last level cache; may be empty */
  guint llc_level;     /* 0 when llc is empty */
  QpinCpuset cluster;  /* cluster_cpus_list; may be empty = unknown */
} QpinTopoCpuInfo;

typedef struct {
  QpinCpuset present;
  QpinCpuset possible; /* every CPU the kernel can ever bring up (hotplug): contains present */
  QpinCpuset online;
  QpinCpuset offline; /* present and not online */
  QpinCpuset isolated;
  QpinCpuset nohz_full;

  GArray *nodes;    /* QpinTopoNode, sorted by id */
  guint *distance;  /* n_nodes * n_nodes, row-major, node index order */
  GArray *packages; /* QpinTopoPackage, sorted by id */
  GArray *llcs;     /* QpinTopoLlc, sorted by first CPU */
  GArray *cores;    /* QpinTopoCore, sorted by first CPU */
  GArray *clusters; /* QpinCpuset: CPUs sharing a cluster (an L2 on E-cores), sorted by first
                     * CPU; empty when unknown */
  GArray *kinds;    /* QpinTopoKind, highest capacity first; empty with one kind */

  guint n_slots;  /* highest online CPU + 1: size of the cpu_* arrays */
  gint *cpu_core; /* per CPU: index into cores, -1 if not online */
  gint *cpu_llc;
  gint *cpu_node;
  gint *cpu_package;
  guint *core_kind;       /* per core: qpin_topology_core_kind() */
  gint *core_cluster;     /* per core: qpin_topology_core_cluster() */
  guint n_multi_clusters; /* clusters that hold more than one core */
  guint max_threads;      /* largest number of online siblings in a core */
  gboolean llc_derived;   /* no cache information: one LLC group per package */
  GPtrArray *notes;       /* char *: where a value came from when not the usual file, and each
                           * degradation ("no cache info: LLC groups = packages"), in order */

  /* private: filled before finish() */
  GArray *cpu_info;     /* QpinTopoCpuInfo */
  GPtrArray *node_rows; /* GArray of guint per node, same order as nodes */
  gboolean finished;
} QpinTopology;

QpinTopology *qpin_topology_new (void);
void qpin_topology_free (QpinTopology *topo);

void qpin_topology_set_cpus (QpinTopology *topo, const QpinCpuset *present,
                             const QpinCpuset *online, const QpinCpuset *isolated,
                             const QpinCpuset *nohz_full);
void qpin_topology_set_possible (QpinTopology *topo, const QpinCpuset *possible);
void qpin_topology_add_cpu (QpinTopology *topo, const QpinTopoCpuInfo *info);
void qpin_topology_add_node (QpinTopology *topo, guint id, const QpinCpuset *cpus,
                             guint64 mem_total_kb, guint64 mem_free_kb, const guint *distances,
                             guint n_distances);
void qpin_topology_add_note (QpinTopology *topo, const char *format, ...) G_GNUC_PRINTF (2, 3);
void qpin_topology_add_kind (QpinTopology *topo, const char *name, const QpinCpuset *cpus,
                             guint capacity, const char *source);
gboolean qpin_topology_finish (QpinTopology *topo, GError **error);

guint qpin_topology_n_nodes (const QpinTopology *topo);
const QpinTopoNode *qpin_topology_node (const QpinTopology *topo, guint index);
gint qpin_topology_node_index (const QpinTopology *topo, guint node_id);
guint qpin_topology_distance (const QpinTopology *topo, guint a, guint b);
gint qpin_topology_cpu_node (const QpinTopology *topo, guint cpu);
gint qpin_topology_cpu_core (const QpinTopology *topo, guint cpu);
gint qpin_topology_cpu_llc (const QpinTopology *topo, guint cpu);
void qpin_topology_nodes_of (const QpinTopology *topo, const QpinCpuset *cpus,
                             QpinCpuset *node_ids);
char *qpin_topology_to_text (const QpinTopology *topo);
guint qpin_topology_cpu_kind (const QpinTopology *topo, guint cpu);
const char *qpin_topology_cpu_kind_name (const QpinTopology *topo, guint cpu);
guint qpin_topology_core_kind (const QpinTopology *topo, guint core);
gint qpin_topology_core_cluster (const QpinTopology *topo, guint core);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTopology, qpin_topology_free)

G_END_DECLS
