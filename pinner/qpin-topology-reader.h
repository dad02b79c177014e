/* qpin-topology-reader.h: read the host topology from sysfs (and libnuma)
 *
 * The reader takes a root directory: "/" is the live machine, anything
 * else is a sysfs-shaped tree (a fixture or a capture).  It reads exactly
 * these files, relative to the root (N = CPU number, M = node number,
 * K = cache index); this list is stable: fixtures and captures rely on it.
 *
 *   sys/devices/system/cpu/present                            required
 *   sys/devices/system/cpu/online                             required
 *   sys/devices/system/cpu/isolated                           optional, empty if missing
 *   sys/devices/system/cpu/nohz_full                          optional, empty if missing
 *   for each online CPU N:
 *   sys/devices/system/cpu/cpuN/topology/physical_package_id  required
 *   sys/devices/system/cpu/cpuN/topology/core_id              required
 *   sys/devices/system/cpu/cpuN/topology/thread_siblings_list optional, {N} if missing
 *   sys/devices/system/cpu/cpuN/cache/indexK/level            K = 0, 1, ... until missing
 *   sys/devices/system/cpu/cpuN/cache/indexK/shared_cpu_list  read with level
 *   sys/devices/system/node/online                            optional: one node 0 if missing
 *   for each online node M:
 *   sys/devices/system/node/nodeM/cpulist                     required
 *   sys/devices/system/node/nodeM/distance                    required
 *   sys/devices/system/node/nodeM/meminfo                     optional, memory 0 if missing
 *
 * The last level cache of a CPU is its cache index with the highest
 * level; without any cache directory every package is one LLC group.
 * Offline CPUs are the present ones that are not online; they have no
 * topology directory in sysfs, so nothing else is read for them.
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
  QPIN_READER_ERROR_MISSING, /* a required file is missing or unreadable */
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
