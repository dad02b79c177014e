/* qpin-map.h: a picture of the placement on the host topology
 *
 * The host drawn as nodes > LLC groups > cores > SMT threads, each CPU
 * labelled with the VM thread on it (a vCPU "web/0", "web/emu", ...) or
 * marked free / reserved / housekeeping / isolated / offline.  Filled
 * from a plan (qpin plan --map) or from the daemon's status JSON (qpin
 * status --map), printed as text (ANSI colour per VM when asked) or SVG,
 * where each CPU is an element with data-cpu="N" and, where a vCPU sits,
 * data-vm="NAME" data-vcpu="I".
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qpin-plan.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

typedef struct _QpinMap QpinMap;

QpinMap *qpin_map_new (const QpinTopology *topo, const QpinCpuset *reserved);
void qpin_map_free (QpinMap *map);
void qpin_map_add (QpinMap *map, const QpinCpuset *cpus, const char *vm, QpinThreadRole role,
                   guint index, gboolean exclusive);
void qpin_map_add_plan (QpinMap *map, const QpinPlan *plan);
gboolean qpin_map_add_status (QpinMap *map, JsonNode *status, GError **error);
char *qpin_map_to_text (const QpinMap *map, gboolean colour);
char *qpin_map_to_svg (const QpinMap *map);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinMap, qpin_map_free)

G_END_DECLS
