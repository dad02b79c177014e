/* qpin-plan-json.h: a plan in the shared JSON shape (doc/design.md §3)
 *
 * {"vms":[{"name":"web","pid":null,"memory_nodes":"0","floating":false,
 *          "policy":{"cpus":"dedicated",...},"notes":["..."],
 *          "threads":[{"role":"vcpu","index":0,"tid":null,"cpus":"0",
 *                      "exclusive":true,"nodes":"0","llcs":"0","cores":"0"}]}],
 *  "score":{...}}          "score" only when asked for
 * pid and tid are null when 0 (planning offline).
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-plan.h"
#include "qpin-score.h"
#include "qpin-topology.h"

JsonNode *qpin_plan_to_json (const QpinPlan *plan, const QpinTopology *topo,
                             const QpinScore *score);
