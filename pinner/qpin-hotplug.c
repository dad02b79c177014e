/* qpin-hotplug.c: qpin hotplug: vCPUs added and removed by qpin itself
 *
 * A vCPU is planned before device_add and born on its CPU: the main
 * thread, whose affinity the new thread inherits, sits on the planned CPU
 * for the moment of device_add.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include <string.h>

#include "qpin-proc.h"
#include "qpin-qmp-types.h"

/* ---- qpin hotplug: vCPUs added and removed by qpin itself ---- */

typedef struct {
  QpinVm *vm;
  gboolean add;
  guint remaining;
  JsonArray *done;    /* what happened, for the reply */
  QpinCpuset restore; /* the main thread's affinity to put back */
  gboolean restore_main;
  char *device_id;
  guint index;
} Hotplug;

static void hotplug_next (GTask *task);

static void
hotplug_free (Hotplug *h)
{
  qpin_vm_unref (h->vm);
  json_array_unref (h->done);
  g_free (h->device_id);
  g_free (h);
}

static gint
compare_slots (gconstpointer a, gconstpointer b)
{
  const QpinQmpHotpluggableCpu *x = *(QpinQmpHotpluggableCpu *const *) a;
  const QpinQmpHotpluggableCpu *y = *(QpinQmpHotpluggableCpu *const *) b;
  const gint64 kx[]
    = { x->topo.socket, x->topo.die, x->topo.cluster, x->topo.core, x->topo.thread };
  const gint64 ky[]
    = { y->topo.socket, y->topo.die, y->topo.cluster, y->topo.core, y->topo.thread };

  for (guint i = 0; i < G_N_ELEMENTS (kx); i++)
    if (kx[i] != ky[i])
      return kx[i] < ky[i] ? -1 : 1;
  return 0;
}

static JsonObject *
slot_arguments (const QpinQmpHotpluggableCpu *slot, const char *id)
{
  JsonObject *args = json_object_new ();
  const struct {
    const char *name;
    gint64 value;
  } props[] = {
    { "node-id", slot->topo.node }, { "socket-id", slot->topo.socket },
    { "die-id", slot->topo.die },   { "cluster-id", slot->topo.cluster },
    { "core-id", slot->topo.core }, { "thread-id", slot->topo.thread },
  };

  json_object_set_string_member (args, "driver", slot->type);
  json_object_set_string_member (args, "id", id);
  for (gsize i = 0; i < G_N_ELEMENTS (props); i++)
    if (props[i].value >= 0)
      json_object_set_int_member (args, props[i].name, props[i].value);
  return args;
}

static void
restore_main_thread (Hotplug *h)
{
  if (!h->restore_main)
    return;
  h->restore_main = FALSE;
  h->vm->holding_main = FALSE;
  if (h->vm->registry)
    qpin_host_pin (h->vm->registry->host, h->vm->pid, h->vm->pid, &h->restore, NULL, NULL);
}

static void
on_device_added (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Hotplug *h = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);

  restore_main_thread (h);
  if (ret == NULL)
    {
      if (h->vm->registry)
        qpin_placer_remove_thread (h->vm->registry->placer, h->vm->key, QPIN_ROLE_VCPU, h->index,
                                   NULL);
      g_prefix_error (&error, "device_add: ");
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_message ("vm '%s': hot-added vcpu %u (device '%s')", h->vm->key, h->index, h->device_id);
  h->remaining--;
  hotplug_next (g_steal_pointer (&task));
}

/* Plug one vCPU into the first free slot.  QEMU (x86, 7.2) numbers vCPUs by
 * their slot in topology order, so the newcomer's cpu-index is known before
 * it exists: it is placed first, and the main thread, whose affinity the
 * new thread inherits, is moved to the planned CPU for the moment of
 * device_add.  The vCPU starts life where it belongs. */
static void
on_slots (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Hotplug *h = g_task_get_task_data (task);
  QpinVm *vm = h->vm;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);
  g_autoptr (GPtrArray) slots = ret ? qpin_qmp_parse_hotpluggable_cpus (ret, &error) : NULL;
  g_autoptr (JsonObject) args = NULL;
  const QpinQmpHotpluggableCpu *slot = NULL;
  QpinThreadSpec spec;
  const QpinPlanThread *pt, *main_pt;
  g_autoptr (JsonObject) entry = json_object_new ();
  g_autofree char *cpus = NULL;
  QpinCpuset vcpu_cpus;

  if (slots == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (vm->registry == NULL || !vm->placed)
    {
      g_task_return_new_error (task, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                               "vm '%s' is not placed", vm->key);
      return;
    }
  g_ptr_array_sort (slots, compare_slots);
  for (guint i = 0; i < slots->len && slot == NULL; i++)
    if (((QpinQmpHotpluggableCpu *) g_ptr_array_index (slots, i))->qom_path == NULL)
      {
        slot = g_ptr_array_index (slots, i);
        h->index = i;
      }
  if (slot == NULL)
    {
      g_task_return_new_error (task, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                               "vm '%s' has no free CPU slot (see -smp maxcpus)", vm->key);
      return;
    }
  spec = qpin_thread_spec_vcpu (h->index);
  spec.topo = slot->topo;
  if (!qpin_placer_add_thread (vm->registry->placer, vm->key, &spec, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  pt = qpin_plan_vm_find_thread (qpin_vm_plan_of (vm), QPIN_ROLE_VCPU, h->index);
  main_pt = qpin_plan_vm_find_thread (qpin_vm_plan_of (vm), QPIN_ROLE_EMULATOR, 0);
  qpin_cpuset_unpack (&pt->cpus, &vcpu_cpus);
  if (main_pt)
    {
      qpin_cpuset_unpack (&main_pt->cpus, &h->restore);
      h->restore_main = TRUE;
      vm->holding_main = TRUE;
      qpin_host_pin (vm->registry->host, vm->pid, vm->pid, &vcpu_cpus, NULL, NULL);
    }
  g_free (h->device_id);
  h->device_id = g_strdup_printf ("qpin-cpu%u", h->index);
  cpus = qpin_cpuset_format (&vcpu_cpus);
  json_object_set_string_member (entry, "device", h->device_id);
  json_object_set_int_member (entry, "index", h->index);
  json_object_set_string_member (entry, "cpus", cpus);
  json_array_add_object_element (h->done, g_steal_pointer (&entry));
  args = slot_arguments (slot, h->device_id);
  qpin_qmp_client_execute_async (vm->client, "device_add", args, vm->registry->options.timeout_ms,
                                 NULL, on_device_added, g_steal_pointer (&task));
}

static void
on_device_deleted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Hotplug *h = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);

  if (ret == NULL)
    {
      g_prefix_error (&error, "device_del '%s': ", h->device_id);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* the guest ejects it; DEVICE_DELETED (or the thread's exit) makes
   * the registry look again and free its CPU */
  g_message ("vm '%s': asked the guest to unplug vcpu %u (device '%s')", h->vm->key, h->index,
             h->device_id);
  h->remaining--;
  hotplug_next (g_steal_pointer (&task));
}

/* Unplug the hot-plugged vCPU with the highest index: only vCPUs added as
 * devices (qom-path /machine/peripheral/ID) can go. */
static void
on_cpus_for_removal (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Hotplug *h = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);
  g_autoptr (GPtrArray) cpus = ret ? qpin_qmp_parse_cpus_fast (ret, &error) : NULL;
  const QpinQmpCpu *victim = NULL;
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonObject) entry = json_object_new ();
  const char *prefix = "/machine/peripheral/";

  if (cpus == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  for (guint i = 0; i < cpus->len; i++)
    {
      const QpinQmpCpu *cpu = g_ptr_array_index (cpus, i);
      gboolean asked = FALSE;

      for (guint j = 0; j < json_array_get_length (h->done); j++)
        asked |= json_object_get_int_member (json_array_get_object_element (h->done, j), "index")
                 == cpu->cpu_index;
      if (g_str_has_prefix (cpu->qom_path, prefix) && !asked
          && (victim == NULL || cpu->cpu_index > victim->cpu_index))
        victim = cpu;
    }
  if (victim == NULL)
    {
      g_task_return_new_error (task, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                               "vm '%s' has no hot-plugged vCPU left to remove", h->vm->key);
      return;
    }
  g_free (h->device_id);
  h->device_id = g_strdup (victim->qom_path + strlen (prefix));
  h->index = (guint) victim->cpu_index;
  json_object_set_string_member (entry, "device", h->device_id);
  json_object_set_int_member (entry, "index", h->index);
  json_array_add_object_element (h->done, g_steal_pointer (&entry));
  json_object_set_string_member (args, "id", h->device_id);
  qpin_qmp_client_execute_async (h->vm->client, "device_del", args,
                                 h->vm->registry->options.timeout_ms, NULL, on_device_deleted,
                                 g_steal_pointer (&task));
}

static void
hotplug_next (GTask *task)
{
  Hotplug *h = g_task_get_task_data (task);

  if (h->vm->registry == NULL)
    {
      g_task_return_new_error (task, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE, "vm '%s' went away",
                               h->vm->key);
      g_object_unref (task);
      return;
    }
  if (h->remaining == 0)
    {
      qpin_vm_discover (h->vm);
      g_task_return_pointer (task, json_node_init_array (json_node_alloc (), h->done),
                             (GDestroyNotify) json_node_unref);
      g_object_unref (task);
      return;
    }
  qpin_qmp_client_execute_async (
    h->vm->client, h->add ? "query-hotpluggable-cpus" : "query-cpus-fast", NULL,
    h->vm->registry->options.timeout_ms, NULL, h->add ? on_slots : on_cpus_for_removal, task);
}

/**
 * qpin_registry_hotplug_async:
 * @name: the VM (key or -name)
 * @add: add vCPUs, or remove hot-plugged ones
 * @count: how many
 *
 * Adds vCPUs through device_add, each born on its planned CPU, or asks
 * the guest to unplug vCPUs through device_del.
 */
void
qpin_registry_hotplug_async (QpinRegistry *registry, const char *name, gboolean add, guint count,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, NULL, callback, user_data);
  QpinVm *vm = qpin_registry_find_vm (registry, name);
  Hotplug *h;

  if (vm == NULL || count == 0)
    {
      if (vm == NULL)
        g_task_return_new_error (task, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                                 "no VM named '%s'", name);
      else
        g_task_return_new_error (task, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                                 "nothing to do: count is 0");
      g_object_unref (task);
      return;
    }
  h = g_new0 (Hotplug, 1);
  h->vm = qpin_vm_ref (vm);
  h->add = add;
  h->remaining = count;
  h->done = json_array_new ();
  g_task_set_task_data (task, h, (GDestroyNotify) hotplug_free);
  hotplug_next (task);
}

/**
 * qpin_registry_hotplug_finish:
 *
 * Returns: (transfer full): an array of {"device","index","cpus"?}, one per
 *   vCPU added or asked to go; %NULL with the reason
 */
JsonNode *
qpin_registry_hotplug_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
