/* qpin-plan-json.c: serialise a plan (see the header for the shape) */

#include "qpin-plan-json.h"
#include "qpin-json.h"

static void
where (JsonBuilder *b, const QpinTopology *topo, const QpinCpuset *cpus)
{
  QpinCpuset nodes, llcs, cores;

  qpin_cpuset_clear_all (&llcs);
  qpin_cpuset_clear_all (&cores);
  qpin_topology_nodes_of (topo, cpus, &nodes);
  QPIN_CPUSET_FOREACH (cpu, cpus)
    {
      gint l = qpin_topology_cpu_llc (topo, (guint) cpu);
      gint k = qpin_topology_cpu_core (topo, (guint) cpu);
      if (l >= 0)
        qpin_cpuset_add (&llcs, (guint) l);
      if (k >= 0)
        qpin_cpuset_add (&cores, (guint) k);
    }
  qpin_json_add_cpuset (b, "nodes", &nodes);
  qpin_json_add_cpuset (b, "llcs", &llcs);
  qpin_json_add_cpuset (b, "cores", &cores);
  /* hybrid hosts: the kind of each CPU ("P", "E"), in CPU order */
  if (topo->kinds->len > 1)
    {
      json_builder_set_member_name (b, "kinds");
      json_builder_begin_array (b);
      QPIN_CPUSET_FOREACH (cpu, cpus)
        json_builder_add_string_value (b, qpin_topology_cpu_kind_name (topo, (guint) cpu));
      json_builder_end_array (b);
    }
}

/**
 * qpin_plan_to_json:
 * @score: (nullable): added as "score" when given
 *
 * Returns: (transfer full): the plan as a JSON object node.
 */
JsonNode *
qpin_plan_to_json (const QpinPlan *plan, const QpinTopology *topo, const QpinScore *score)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  qpin_json_begin_vms (b);
  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      const char *const *keys = qpin_policy_keys ();
      QpinCpuset set;

      qpin_json_begin_vm (b, vm->name, (GPid) vm->pid);
      qpin_cpuset_unpack (&vm->mem_nodes, &set);
      qpin_json_add_cpuset (b, "memory_nodes", &set);
      json_builder_set_member_name (b, "floating");
      json_builder_add_boolean_value (b, vm->floating);
      json_builder_set_member_name (b, "policy");
      json_builder_begin_object (b);
      for (guint k = 0; keys[k]; k++)
        {
          g_autofree char *value = qpin_policy_get (vm->policy, keys[k]);
          qpin_json_add_string (b, keys[k], value);
        }
      json_builder_end_object (b);
      json_builder_set_member_name (b, "notes");
      json_builder_begin_array (b);
      for (guint i = 0; i < vm->notes->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (vm->notes, i));
      json_builder_end_array (b);
      qpin_json_begin_threads (b);
      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          qpin_json_begin_thread (b, t->spec.role, (gint) t->spec.index, (GPid) t->spec.tid);
          qpin_cpuset_unpack (&t->cpus, &set);
          qpin_json_add_cpuset (b, "cpus", &set);
          json_builder_set_member_name (b, "exclusive");
          json_builder_add_boolean_value (b, t->exclusive);
          where (b, topo, &set);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  if (score)
    {
      json_builder_set_member_name (b, "score");
      json_builder_begin_object (b);
      qpin_json_add_int (b, "overcommitted", score->overcommitted);
      qpin_json_add_int (b, "node_excess", score->node_excess);
      qpin_json_add_int (b, "node_distance", score->node_distance);
      qpin_json_add_int (b, "llc_excess", score->llc_excess);
      if (score->has_kinds)
        {
          qpin_json_add_int (b, "kind_excess", score->kind_excess);
          qpin_json_add_int (b, "kind_rank", score->kind_rank);
        }
      if (score->has_clusters)
        qpin_json_add_int (b, "cluster_excess", score->cluster_excess);
      qpin_json_add_int (b, "shared_cores", score->shared_cores);
      qpin_json_add_int (b, "sibling_misses", score->sibling_misses);
      qpin_json_add_int (b, "half_used_cores", score->half_used_cores);
      qpin_json_add_int (b, "nodes_spanned", score->nodes_spanned);
      qpin_json_add_int (b, "nodes_min", score->nodes_min);
      qpin_json_add_int (b, "llcs_spanned", score->llcs_spanned);
      qpin_json_add_int (b, "llcs_min", score->llcs_min);
      qpin_json_add_int (b, "sibling_pairs", score->sibling_pairs);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
