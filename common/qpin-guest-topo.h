/* qpin-guest-topo.h: where a vCPU sits in its guest's topology
 *
 * One struct for the ids QEMU reports per vCPU (query-cpus-fast "props",
 * a query-hotpluggable-cpus slot's "props"): qmp-client/ parses them into
 * it, pinner/ carries it from a QMP reply to a request, policy/ places by
 * it.  Header only, in common/, so that policy/ and qmp-client/ both see
 * it and still do not know each other (doc/design.md §1).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Guest topology ids, 0..G_MAXINT (checked by the QMP parsers); -1 when
 * QEMU gave none (no -numa: node; older machines: die, cluster). */
typedef struct {
  gint socket;
  gint die;
  gint cluster;
  gint core;
  gint thread; /* the SMT thread inside the guest core (props "thread-id") */
  gint node;
} QpinGuestTopo;

/* Every id absent: an initializer, e.g. QpinGuestTopo t = QPIN_GUEST_TOPO_NONE; */
#define QPIN_GUEST_TOPO_NONE                                                                       \
  {                                                                                                \
    .socket = -1, .die = -1, .cluster = -1, .core = -1, .thread = -1, .node = -1                   \
  }

G_END_DECLS
