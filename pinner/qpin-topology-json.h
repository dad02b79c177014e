/* qpin-topology-json.h: the host topology model as JSON
 *
 * {"online":"0-7","offline":"","isolated":"","nohz_full":"","llc_derived":false,
 *  "notes":["sys/devices/system/cpu/present missing; present cpus from ..."],
 *  "nodes":[{"id":0,"cpus":"0-7","mem_total_kb":N,"mem_free_kb":N,"distances":[10]}],
 *  "packages":[{"id":0,"cpus":"0-7"}],
 *  "llc_groups":[{"index":0,"level":3,"package":0,"cpus":"0-7"}],
 *  "clusters":["12-15","16-19"],
 *  "kinds":[{"name":"P","cpus":"0-11","capacity":64,"source":"sys/devices/cpu_core/cpus, ..."}],
 *  "cores":[{"index":0,"core_id":0,"package":0,"llc":0,"node":0,"cpus":"0,4"}]}
 * clusters and kinds are empty when unknown or when the host has one kind.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-topology.h"

JsonNode *qpin_topology_to_json (const QpinTopology *topo);
