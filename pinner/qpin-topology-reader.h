/* qpin-topology-reader.h: read the host topology from sysfs (and libnuma)
 *
 * The reader takes a root directory: "/" is the live machine, anything
 * else is a sysfs-shaped tree (a fixture or a capture).  It reads exactly
 * these files, relative to the root (N = CPU number, M = node number,
 * K = cache index); this list is stable: fixtures and captures rely on it.
 * Every file is optional: what is missing, empty, garbage or contradicts
 * another file degrades the model one level, and adds a note naming the
 * file (QpinTopology.notes, shown by `qpin topology`).  Only a tree
 * without any CPU is refused.
 *
 *   sys/devices/system/cpu/possible                           optional, present if missing
 *   sys/devices/system/cpu/present                            else possible, else the cpuN dirs
 *   sys/devices/system/cpu/online                             else cpuN/online (0/1; a present
 *                                                             CPU without one is online if its
 *                                                             directory exists: CPU 0)
 *   sys/devices/system/cpu/isolated                           empty
 *   sys/devices/system/cpu/nohz_full                          empty ("(null)" too)
 *   for each online CPU N:
 *   sys/devices/system/cpu/cpuN/topology/physical_package_id  a thread sibling's, else 0
 *   sys/devices/system/cpu/cpuN/topology/core_id              N
 *   sys/devices/system/cpu/cpuN/topology/thread_siblings_list the CPU alone
 *   sys/devices/system/cpu/cpuN/cache/indexK/level            K = 0, 1, ... until missing;
 *   sys/devices/system/cpu/cpuN/cache/indexK/shared_cpu_list  none (or garbage): LLC = package
 *   sys/devices/system/cpu/cpuN/topology/cluster_cpus_list    no clusters
 *   sys/devices/cpu_core/cpus, sys/devices/cpu_atom/cpus      kinds from the next files
 *   sys/devices/system/cpu/cpuN/acpi_cppc/highest_perf        kinds: the first of these three
 *   sys/devices/system/cpu/cpuN/cpu_capacity                  that every online CPU has (see
 *   sys/devices/system/cpu/cpuN/cpufreq/cpuinfo_max_freq      qpin-topology-reader-kinds.c)
 *   sys/devices/system/node/online                            else the nodeM dirs, else one
 *                                                             node 0 with every CPU
 *   for each online node M:
 *   sys/devices/system/node/nodeM/cpulist                     no CPU; an online CPU in no node
 *                                                             goes to the first node, a CPU in
 *                                                             two stays in the first
 *   sys/devices/system/node/nodeM/distance                    10 local, 20 remote for all
 *   sys/devices/system/node/nodeM/meminfo                     memory 0 (unknown)
 *
 * A distance row has one distance per online node, or one per node id
 * from 0 (an offline node 0: "21 10" for node 1); node ids may be sparse.
 * The last level cache of a CPU is its cache index with the highest
 * level.  Offline CPUs have no topology directory in sysfs; nothing else
 * is read for them.  An online CPU without one went offline while we read
 * and is taken as offline (unless no CPU has one: a poor tree).  Thread siblings that disagree make
 * each CPU its own core; caches that disagree (or span packages) make LLC groups = packages.
 *
 * On the live machine (root "/"), unless capturing, distances and node
 * memory come from libnuma when numa_available() says so.
 */
#pragma once

#include <glib.h>

#include "qpin-topology.h"

G_BEGIN_DECLS

#define QPIN_READER_ERROR (qpin_reader_error_quark ())
GQuark qpin_reader_error_quark (void);

typedef enum {
  QPIN_READER_ERROR_MISSING, /* no CPU at all (or, inside the reader, a file missing) */
  QPIN_READER_ERROR_INVALID, /* a file holds garbage */
  QPIN_READER_ERROR_CAPTURE, /* writing a capture failed */
} QpinReaderError;

/* One file as read: path relative to the root, and its contents (NULL for
 * a directory whose entries were listed). */
typedef struct {
  char *path;
  char *contents;
} QpinCapturedFile;

QpinTopology *qpin_topology_read (const char *root, GPtrArray **captured, GError **error);
gboolean qpin_topology_write_capture (GPtrArray *captured, const char *dir, GError **error);

G_END_DECLS
