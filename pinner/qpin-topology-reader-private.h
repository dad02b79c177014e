/* qpin-topology-reader-private.h: what the topology reader's files share
 *
 * qpin-topology-reader.c reads the CPUs and drives the read;
 * qpin-topology-reader-nodes.c reads the NUMA nodes, and
 * qpin-topology-reader-kinds.c the kinds of CPU (hybrid hosts).  Nobody else
 * includes this.
 */
#pragma once

#ifndef QPIN_TOPOLOGY_READER_ALLOW
#error "only the topology reader's own files include qpin-topology-reader-private.h"
#endif

#include "qpin-topology-reader.h"

G_BEGIN_DECLS

#define CPU_DIR "sys/devices/system/cpu"
#define NODE_DIR "sys/devices/system/node"

typedef struct {
  const char *root;
  GPtrArray *captured; /* QpinCapturedFile, or NULL */
  gboolean libnuma;    /* live machine: distances and memory from libnuma */
  QpinTopology *topo;  /* where notes go */
} QpinReader;

gboolean qpin_reader_read_file (QpinReader *r, const char *rel, gboolean optional, char **out,
                                GError **error);
gboolean qpin_reader_read_cpulist (QpinReader *r, const char *rel, gboolean optional,
                                   QpinCpuset *out, GError **error);
gboolean qpin_reader_try_cpulist (QpinReader *r, const char *rel, const char *consequence,
                                  QpinCpuset *out);
gboolean qpin_reader_invalid (QpinReader *r, const char *rel, const char *value,
                              const char *expected, GError **error);
gboolean qpin_reader_list_dirs (QpinReader *r, const char *dir, const char *prefix,
                                QpinCpuset *out);
void qpin_reader_note_error (QpinReader *r, const GError *error, const char *consequence);
void qpin_reader_read_nodes (QpinReader *r);
void qpin_reader_read_kinds (QpinReader *r);

G_END_DECLS
