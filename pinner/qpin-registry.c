/* qpin-registry.c: the registry itself: its life, its hooks, hold and release
 *
 * Per VM:  discover (QMP + /proc, qpin-discovery.c)  ->  settle: classify,
 * place or sync the plan (qpin-vm-plan.c), apply the pins (qpin-apply.c)
 * ->  wait for an event, the reconcile timer or a rescan request  ->
 * discover ...  A discovery that is asked for while one runs is remembered
 * and run once after it.  Every callback holds a reference on its VM; a VM
 * that is gone ignores late answers.  The VMs themselves: qpin-vm.c; host
 * CPU events and the ledger file: qpin-registry-host.c; status:
 * qpin-registry-status.c; qpin hotplug: qpin-hotplug.c.  Every effect on
 * the host goes through registry->host (qpin-host.h).
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include "qpin-host-recording.h"

static gboolean
on_reconcile (gpointer user_data)
{
  QpinRegistry *registry = user_data;

  if (qpin_registry_drop_dead_reserved (registry))
    qpin_registry_save_ledger (registry);
  for (guint i = 0; i < registry->vms->len; i++)
    qpin_vm_discover (g_ptr_array_index (registry->vms, i));
  return G_SOURCE_CONTINUE;
}

/**
 * qpin_registry_new:
 * @topo: (transfer full): the host topology
 * @config: (transfer full): the policies
 *
 * On this machine's kernel; a dry run on a recording host over it, which
 * reads the kernel and changes nothing.
 *
 * Returns: (transfer full): a registry, or %NULL when the configuration
 *   does not fit the host (the reason in @error)
 */
QpinRegistry *
qpin_registry_new (QpinTopology *topo, QpinConfig *config, const QpinRegistryOptions *options,
                   GError **error)
{
  QpinHost *host = qpin_host_new_real ();

  if (options->dry_run)
    host = qpin_host_recording_new (host);
  return qpin_registry_new_with_host (topo, config, options, host, error);
}

/**
 * qpin_registry_new_with_host:
 * @topo: (transfer full): the host topology
 * @config: (transfer full): the policies
 * @host: (transfer full): where the registry reads threads and pins them
 *
 * Returns: (transfer full): a registry, or %NULL when the configuration
 *   does not fit the host (the reason in @error)
 */
QpinRegistry *
qpin_registry_new_with_host (QpinTopology *topo, QpinConfig *config,
                             const QpinRegistryOptions *options, QpinHost *host, GError **error)
{
  g_autoptr (QpinTopology) owned_topo = topo;
  g_autoptr (QpinConfig) owned_config = config;
  g_autoptr (QpinHost) owned_host = host;
  g_autoptr (QpinPolicy) defaults = NULL;
  QpinRegistry *registry;

  if (!qpin_config_check (config, topo, error)
      || !(defaults = qpin_config_policy_for (config, NULL, error)))
    return NULL;
  registry = g_new0 (QpinRegistry, 1);
  registry->topo = g_steal_pointer (&owned_topo);
  registry->config = g_steal_pointer (&owned_config);
  registry->placer = qpin_placer_new (registry->topo, &defaults->reserved);
  registry->options = *options;
  registry->host = g_steal_pointer (&owned_host);
  registry->recheck_ms = HOST_RECHECK_MS;
  registry->rechecks = HOST_RECHECKS;
  registry->vms = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_vm_unref);
  registry->standby = qpin_standby_new ();
  registry->refusals = qpin_log_limit_new ();
  registry->reserved = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  qpin_log_limit_set_who (registry->refusals, "refused monitors");
  if (options->interval_ms > 0)
    registry->timer = g_timeout_add (options->interval_ms, on_reconcile, registry);
  return registry;
}

void
qpin_registry_free (QpinRegistry *registry)
{
  if (registry == NULL)
    return;
  if (registry->timer)
    g_source_remove (registry->timer);
  if (registry->recheck)
    g_source_remove (registry->recheck);
  qpin_registry_flush_ledger (registry);
  g_free (registry->host_change);
  g_free (registry->ledger_path);
  g_free (registry->ledger_saved);
  g_hash_table_unref (registry->reserved);
  qpin_ledger_file_free (registry->before);
  registry->gone = NULL;
  while (registry->vms->len > 0)
    qpin_vm_gone (g_ptr_array_index (registry->vms, 0), NULL);
  g_ptr_array_unref (registry->vms);
  qpin_standby_free (registry->standby);
  qpin_log_limit_free (registry->refusals);
  qpin_proc_events_free (registry->events);
  qpin_uevents_free (registry->uevents);
  qpin_placer_free (registry->placer);
  qpin_config_free (registry->config);
  qpin_topology_free (registry->topo);
  qpin_host_free (registry->host);
  g_free (registry);
}

/**
 * qpin_registry_hold:
 *
 * Defers placing new VMs until qpin_registry_release().  A daemon that
 * starts among running VMs holds while they reconnect, so that those whose
 * pins it can adopt are adopted before any other VM takes their CPUs, and
 * the rest are placed together, in the best order.
 */
void
qpin_registry_hold (QpinRegistry *registry)
{
  registry->held = TRUE;
}

/* Every VM is in the ledger now: a degraded one adopted is made whole
 * when it fits (without taking what the others adopted), then each is
 * pinned. */
static void
apply_released (QpinRegistry *registry, GPtrArray *waiting)
{
  for (guint i = 0; i < waiting->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (waiting, i);

      if (vm->registry && vm->placed && qpin_registry_plan_degraded (qpin_vm_plan_of (vm)))
        qpin_vm_make_whole (vm, "at qpin start");
    }
  for (guint i = 0; i < waiting->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (waiting, i);

      if (vm->registry == NULL)
        continue;
      if (vm->placed)
        qpin_vm_apply (vm);
      qpin_registry_notify_settled (registry, vm);
    }
  qpin_registry_save_ledger (registry);
}

/* Did the previous run's ledger file mark @vm degraded? */
static gboolean
was_degraded (QpinRegistry *registry, QpinVm *vm)
{
  for (guint i = 0; registry->before && i < registry->before->entries->len; i++)
    {
      const QpinLedgerEntry *e = g_ptr_array_index (registry->before->entries, i);
      if (e->pid == vm->pid)
        return e->degraded;
    }
  return FALSE;
}

/**
 * qpin_registry_release:
 *
 * Places every VM discovered while held: adoptions first, then the others
 * as one batch (one by one if the batch does not fit as a whole).
 */
void
qpin_registry_release (QpinRegistry *registry)
{
  g_autoptr (GPtrArray) waiting = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_vm_unref);
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  g_autoptr (GPtrArray) batch = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;

  if (!registry->held)
    return;
  registry->held = FALSE;
  /* whole VMs first: the owner of a CPU is adopted before a VM that was
   * degraded and floated on it (the ledger file says which), whatever
   * order their monitors came back in */
  for (guint pass = 0; pass < 2; pass++)
    for (guint i = 0; i < registry->vms->len; i++)
      {
        QpinVm *vm = g_ptr_array_index (registry->vms, i);
        if (!vm->placed && vm->threads != NULL && vm->state != QPIN_VM_FAILED
            && was_degraded (registry, vm) == (pass == 1))
          g_ptr_array_add (waiting, qpin_vm_ref (vm));
      }
  for (guint i = 0; i < waiting->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (waiting, i);
      g_autoptr (QpinPolicy) policy = qpin_vm_policy_for (vm, NULL);

      if (policy && qpin_vm_try_adopt (vm, policy))
        vm->placed = TRUE;
      else if (policy)
        {
          g_ptr_array_add (requests, qpin_vm_request_of (vm));
          g_ptr_array_add (policies, g_steal_pointer (&policy));
          g_ptr_array_add (batch, vm);
        }
    }
  if (batch->len > 0 && qpin_placer_place (registry->placer, requests, policies, &error))
    for (guint i = 0; i < batch->len; i++)
      ((QpinVm *) g_ptr_array_index (batch, i))->placed = TRUE;
  else if (batch->len > 0)
    g_info ("placing %u VMs together failed (%s); placing them one by one", batch->len,
            error->message);
  for (guint i = 0; i < waiting->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (waiting, i);
      g_autoptr (GError) local = NULL;

      if (vm->registry == NULL || vm->placed)
        continue;
      if (vm->peer && !qpin_host_is_current (registry->host, vm->peer, &local))
        {
          qpin_vm_gone (vm, local->message);
          continue;
        }
      if (qpin_vm_place (vm, &local))
        vm->placed = TRUE;
      else
        qpin_vm_set_error (vm, QPIN_VM_FAILED, local->message);
    }
  apply_released (registry, waiting);
}

/**
 * qpin_registry_set_hooks:
 * @settled: (nullable): called after each discovery of a VM was acted on
 * @gone: (nullable): called when a VM leaves
 */
void
qpin_registry_set_hooks (QpinRegistry *registry, QpinRegistryHook settled, QpinRegistryHook gone,
                         gpointer user_data)
{
  registry->settled = settled;
  registry->gone = gone;
  registry->hook_data = user_data;
}

guint
qpin_registry_n_vms (QpinRegistry *registry)
{
  return registry->vms->len;
}

/**
 * qpin_registry_get_topology:
 *
 * Returns: (transfer none): the host topology the registry plans on
 */
const QpinTopology *
qpin_registry_get_topology (QpinRegistry *registry)
{
  return registry->topo;
}
