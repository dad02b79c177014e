/* qpin-registry-status.c: the registry as status shows it (JSON and table) */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include "qpin-json.h"
#include "qpin-text.h"

static void
vm_to_json (QpinVm *vm, JsonBuilder *b)
{
  const QpinPlanVm *plan = vm->placed ? qpin_vm_plan_of (vm) : NULL;

  qpin_json_begin_vm (b, vm->qemu_name, vm->pid);
  qpin_json_add_string (b, "key", vm->key);
  qpin_json_add_string (b, "state", qpin_vm_state_to_string (vm->state));
  qpin_json_add_string (b, "error", vm->error);
  qpin_json_add_string (b, "monitor", qpin_qmp_client_get_label (vm->client));
  if (vm->memory)
    qpin_json_add_string (b, "memory", vm->memory);
  qpin_json_add_int (b, "drift_repairs", vm->drift_repairs);
  if (plan)
    {
      QpinCpuset mem_nodes;

      qpin_cpuset_unpack (&plan->mem_nodes, &mem_nodes);
      qpin_json_add_cpuset (b, "memory_nodes", &mem_nodes);
      json_builder_set_member_name (b, "notes");
      json_builder_begin_array (b);
      for (guint i = 0; i < plan->notes->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (plan->notes, i));
      json_builder_end_array (b);
    }
  qpin_json_begin_threads (b);
  for (guint i = 0; vm->threads && i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      const ThreadState *st = &g_array_index (vm->states, ThreadState, i);
      QpinCpuset planned, actual, nodes;

      qpin_json_begin_thread (b, t->role, t->index, t->tid);
      qpin_cpuset_unpack (&st->planned, &planned);
      qpin_cpuset_unpack (&st->actual, &actual);
      qpin_json_add_cpuset (b, "cpus", &planned);
      qpin_topology_nodes_of (vm->registry->topo, &planned, &nodes);
      qpin_json_add_cpuset (b, "node", &nodes);
      qpin_json_add_cpuset (b, "actual", &actual);
      json_builder_set_member_name (b, "cpu");
      json_builder_add_int_value (b, st->cpu);
      json_builder_set_member_name (b, "applied");
      json_builder_add_boolean_value (b, st->applied && qpin_vm_thread_on_plan (vm, i));
      json_builder_set_member_name (b, "drift");
      json_builder_add_boolean_value (b, st->drift);
      if (st->error)
        qpin_json_add_string (b, "error", st->error);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
}

/**
 * qpin_registry_to_json:
 *
 * Reads every thread's affinity and last CPU from the kernel first, so
 * "actual" and "cpu" are as of now ("applied": "actual" is the verified
 * plan); a VM found moved is looked at again (see verify_now()).
 *
 * Returns: (transfer full): every VM and thread in the shared shape:
 *   {"vms":[{"name","pid","state","threads":[{"role","index","tid",
 *   "cpus" (planned),"node","actual","cpu","applied","drift"}],"drift_repairs"}]}
 */
JsonNode *
qpin_registry_to_json (QpinRegistry *registry)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();

  json_builder_begin_object (b);
  qpin_json_begin_vms (b);
  qpin_registry_verify (registry);
  for (guint i = 0; i < registry->vms->len; i++)
    vm_to_json (g_ptr_array_index (registry->vms, i), b);
  json_builder_end_array (b);
  qpin_json_add_cpuset (b, "reserved", qpin_placer_get_reserved (registry->placer));
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/**
 * qpin_registry_to_table:
 *
 * Names, errors and notes are escaped (qpin_text_escape()): a VM names
 * itself, and its name must not split or recolour the table.
 *
 * Returns: (transfer full): VM, role, vCPU index, TID, host CPUs, node
 */
char *
qpin_registry_to_table (QpinRegistry *registry)
{
  GString *out = g_string_new (NULL);

  g_string_append_printf (out, "%-16s %-9s %5s %8s %-14s %-6s %s\n", "VM", "ROLE", "INDEX", "TID",
                          "HOST CPUS", "NODE", "STATE");
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autofree char *key = qpin_text_escape (vm->key);
      const QpinPlanVm *plan;

      for (guint j = 0; vm->threads && j < vm->threads->len; j++)
        {
          const QpinVmThread *t = g_ptr_array_index (vm->threads, j);
          const ThreadState *st = &g_array_index (vm->states, ThreadState, j);
          g_autofree char *cpus = NULL;
          g_autofree char *node_list = NULL;
          g_autofree char *state = qpin_text_escape (st->applied ? (st->drift ? "drift" : "pinned")
                                                     : st->error ? st->error
                                                     : vm->state == QPIN_VM_PLANNED ? "planned"
                                                                                    : "-");
          QpinCpuset planned, nodes;

          qpin_cpuset_unpack (&st->planned, &planned);
          cpus = qpin_cpuset_format (&planned);
          qpin_topology_nodes_of (registry->topo, &planned, &nodes);
          node_list = qpin_cpuset_format (&nodes);
          g_string_append_printf (out, "%-16s %-9s %5d %8d %-14s %-6s %s\n", key,
                                  qpin_thread_role_to_string (t->role), t->index, t->tid,
                                  *cpus ? cpus : "-", *node_list ? node_list : "-", state);
        }
      if (vm->error)
        {
          g_autofree char *error = qpin_text_escape (vm->error);
          g_string_append_printf (out, "%-16s %s: %s\n", key, qpin_vm_state_to_string (vm->state),
                                  error);
        }
      plan = vm->placed ? qpin_vm_plan_of (vm) : NULL;
      for (guint j = 0; plan && j < plan->notes->len; j++)
        {
          g_autofree char *note = qpin_text_escape (g_ptr_array_index (plan->notes, j));
          g_string_append_printf (out, "%-16s note: %s\n", key, note);
        }
    }
  return g_string_free (out, FALSE);
}
