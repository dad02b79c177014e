/* qpin-topology-json.c: serialise the topology model (see the header for the shape) */

#include "qpin-topology-json.h"
#include "qpin-json.h"

/**
 * qpin_topology_to_json:
 *
 * Returns: (transfer full): the model as a JSON object node.
 */
JsonNode *
qpin_topology_to_json (const QpinTopology *topo)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint n = qpin_topology_n_nodes (topo);

  json_builder_begin_object (b);
  qpin_json_add_cpuset (b, "present", &topo->present);
  qpin_json_add_cpuset (b, "online", &topo->online);
  qpin_json_add_cpuset (b, "offline", &topo->offline);
  qpin_json_add_cpuset (b, "isolated", &topo->isolated);
  qpin_json_add_cpuset (b, "nohz_full", &topo->nohz_full);
  json_builder_set_member_name (b, "llc_derived");
  json_builder_add_boolean_value (b, topo->llc_derived);
  json_builder_set_member_name (b, "notes");
  json_builder_begin_array (b);
  for (guint i = 0; i < topo->notes->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (topo->notes, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "nodes");
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++)
    {
      const QpinTopoNode *node = qpin_topology_node (topo, i);
      json_builder_begin_object (b);
      qpin_json_add_int (b, "id", node->id);
      qpin_json_add_cpuset (b, "cpus", &node->cpus);
      qpin_json_add_int (b, "mem_total_kb", (gint64) node->mem_total_kb);
      qpin_json_add_int (b, "mem_free_kb", (gint64) node->mem_free_kb);
      json_builder_set_member_name (b, "distances");
      json_builder_begin_array (b);
      for (guint j = 0; j < n; j++)
        json_builder_add_int_value (b, qpin_topology_distance (topo, i, j));
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "packages");
  json_builder_begin_array (b);
  for (guint p = 0; p < topo->packages->len; p++)
    {
      const QpinTopoPackage *pkg = &g_array_index (topo->packages, QpinTopoPackage, p);
      json_builder_begin_object (b);
      qpin_json_add_int (b, "id", pkg->id);
      qpin_json_add_cpuset (b, "cpus", &pkg->cpus);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "llc_groups");
  json_builder_begin_array (b);
  for (guint l = 0; l < topo->llcs->len; l++)
    {
      const QpinTopoLlc *llc = &g_array_index (topo->llcs, QpinTopoLlc, l);
      json_builder_begin_object (b);
      qpin_json_add_int (b, "index", l);
      qpin_json_add_int (b, "level", llc->level);
      qpin_json_add_int (b, "package",
                         g_array_index (topo->packages, QpinTopoPackage, llc->package).id);
      qpin_json_add_cpuset (b, "cpus", &llc->cpus);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "clusters");
  json_builder_begin_array (b);
  for (guint c = 0; c < topo->clusters->len; c++)
    {
      g_autofree char *cpus = qpin_cpuset_format (&g_array_index (topo->clusters, QpinCpuset, c));
      json_builder_add_string_value (b, cpus);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "kinds");
  json_builder_begin_array (b);
  for (guint k = 0; k < topo->kinds->len; k++)
    {
      const QpinTopoKind *kind = &g_array_index (topo->kinds, QpinTopoKind, k);
      json_builder_begin_object (b);
      qpin_json_add_string (b, "name", kind->name);
      qpin_json_add_cpuset (b, "cpus", &kind->cpus);
      qpin_json_add_int (b, "capacity", kind->capacity);
      qpin_json_add_string (b, "source", kind->source);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "cores");
  json_builder_begin_array (b);
  for (guint k = 0; k < topo->cores->len; k++)
    {
      const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
      json_builder_begin_object (b);
      qpin_json_add_int (b, "index", k);
      qpin_json_add_int (b, "core_id", core->core_id);
      qpin_json_add_int (b, "package",
                         g_array_index (topo->packages, QpinTopoPackage, core->package).id);
      qpin_json_add_int (b, "llc", core->llc);
      qpin_json_add_int (b, "node", qpin_topology_node (topo, (guint) core->node)->id);
      qpin_json_add_cpuset (b, "cpus", &core->cpus);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
