/* qpin-vm.c: one VM of the registry: admission, identity, state, leaving
 *
 * A VM is a process instance (qpin-peer.h), not a monitor: a second
 * monitor of a managed QEMU is a standby, a refused one is held.  A VM
 * that leaves frees its CPUs at once; its pins stay as they are.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include <malloc.h>

static const char *const state_names[] = {
  [QPIN_VM_DISCOVERING] = "discovering",
  [QPIN_VM_PINNED] = "pinned",
  [QPIN_VM_DEGRADED] = "degraded",
  [QPIN_VM_FAILED] = "failed",
  [QPIN_VM_GONE] = "gone",
  [QPIN_VM_PLANNED] = "planned",
};

const char *
qpin_vm_state_to_string (QpinVmState state)
{
  return state_names[state];
}

QpinVmState
qpin_vm_get_state (QpinVm *vm)
{
  return vm->state;
}

/**
 * qpin_vm_get_error:
 *
 * Returns: (nullable): why the VM is failed or degraded
 */
const char *
qpin_vm_get_error (QpinVm *vm)
{
  return vm->error;
}

/**
 * qpin_vm_get_pid:
 *
 * Returns: the QEMU process's pid (from the kernel, never from QMP)
 */
GPid
qpin_vm_get_pid (QpinVm *vm)
{
  return vm->pid;
}

/* Frees what each ThreadState of @states holds (not @states). */
void
qpin_vm_clear_states (GArray *states)
{
  for (guint i = 0; states && i < states->len; i++)
    {
      ThreadState *st = &g_array_index (states, ThreadState, i);

      g_free (st->error);
      qpin_cpuset_packed_clear (&st->planned);
      qpin_cpuset_packed_clear (&st->actual);
    }
}

/* Returns: @vm, with one more reference (every callback holds one) */
QpinVm *
qpin_vm_ref (QpinVm *vm)
{
  vm->ref++;
  return vm;
}

/* Drops a reference; the last frees @vm. */
void
qpin_vm_unref (QpinVm *vm)
{
  if (--vm->ref > 0)
    return;
  g_clear_object (&vm->client);
  g_free (vm->qemu_name);
  g_free (vm->key);
  g_free (vm->error);
  g_free (vm->memory);
  g_free (vm->migrated);
  g_free (vm->confined);
  g_clear_pointer (&vm->cpus, g_ptr_array_unref);
  g_clear_pointer (&vm->iothreads, g_ptr_array_unref);
  g_clear_error (&vm->query_error);
  g_clear_pointer (&vm->threads, g_ptr_array_unref);
  qpin_vm_clear_states (vm->states);
  g_clear_pointer (&vm->states, g_array_unref);
  g_clear_pointer (&vm->logged, g_hash_table_unref);
  g_clear_pointer (&vm->peer, qpin_peer_free);
  g_clear_pointer (&vm->log_limit, qpin_log_limit_free);
  g_free (vm);
}

/* Sets the state of @vm and why (%NULL: nothing wrong); a new reason
 * is logged once, within the VM's log limit. */
void
qpin_vm_set_error (QpinVm *vm, QpinVmState state, const char *message)
{
  vm->state = state;
  if (g_strcmp0 (vm->error, message) != 0)
    {
      g_free (vm->error);
      vm->error = g_strdup (message);
      if (message && !qpin_log_limit_allow (vm->log_limit))
        return;
      /* the placer's reasons already name the VM */
      if (message && g_str_has_prefix (message, "vm '"))
        g_warning ("%s (pid %d)", message, vm->pid);
      else if (message)
        g_warning ("vm '%s' (pid %d): %s", vm->key, vm->pid, message);
    }
}

/* Tell the process events filter which processes are ours. */
void
qpin_registry_update_watched_pids (QpinRegistry *registry)
{
  g_autofree GPid *pids = NULL;
  g_autoptr (GError) error = NULL;

  if (registry->events == NULL)
    return;
  pids = g_new0 (GPid, registry->vms->len + 1);
  for (guint i = 0; i < registry->vms->len; i++)
    pids[i] = ((QpinVm *) g_ptr_array_index (registry->vms, i))->pid;
  if (!qpin_proc_events_set_pids (registry->events, pids, registry->vms->len, &error))
    g_warning ("%s; new threads are found by the reconcile timer only", error->message);
}

/* The monitor of @vm closed: a second monitor of the same, still
 * running QEMU carries on as the VM. */
static void
take_over (QpinRegistry *registry, QpinVm *vm)
{
  g_autoptr (QpinQmpClient) client = NULL;

  if (vm->peer == NULL || !qpin_host_is_current (registry->host, vm->peer, NULL)
      || !(client = qpin_standby_take (registry->standby, vm->peer)))
    return;
  g_message ("vm '%s' (pid %d): its standby monitor '%s' takes over", vm->key, vm->pid,
             qpin_qmp_client_get_label (client));
  qpin_registry_add (registry, client, 0);
}

/* The VM left (@why), or qpin lets go of it (%NULL): free its CPUs at
 * once, tell the owner, forget it.  Its pins stay as they are. */
void
qpin_vm_gone (QpinVm *vm, const char *why)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (GError) error = NULL;

  if (registry == NULL)
    return;
  if (why)
    g_message ("vm '%s' (pid %d) is gone: %s", vm->key, vm->pid, why);
  if (vm->soon_id)
    g_source_remove (vm->soon_id);
  vm->soon_id = 0;
  /* qpin lets go of every VM (the registry is freed): nothing is planned
   * again, and the ledger file stays for a restart to adopt them */
  if (why && vm->placed && !qpin_placer_remove_vm (registry->placer, vm->key, &error))
    g_warning ("vm '%s': %s", vm->key, error->message);
  vm->placed = FALSE;
  vm->state = QPIN_VM_GONE;
  g_signal_handler_disconnect (vm->client, vm->closed_id);
  g_signal_handler_disconnect (vm->client, vm->event_id);
  qpin_qmp_client_close (vm->client);
  vm->registry = NULL;
  if (registry->gone)
    registry->gone (registry, vm, registry->hook_data);
  g_ptr_array_remove (registry->vms, vm); /* drops the registry's ref */
  if (why == NULL)
    return;
  qpin_registry_update_watched_pids (registry);
  take_over (registry, vm);
  qpin_registry_make_whole_all (registry, "now that a VM left its CPUs");
  qpin_registry_save_ledger (registry);
  /* what a peer made qpin allocate goes back to the system, not just to malloc */
  malloc_trim (0);
}

static void
on_closed (QpinQmpClient *client, const GError *error, gpointer user_data)
{
  QpinVm *vm = user_data;
  g_autoptr (QpinVm) keep = NULL;

  keep = qpin_vm_ref (vm);
  qpin_vm_gone (vm, error->message);
}

static void
on_event (QpinQmpClient *client, const char *name, JsonObject *data, gpointer user_data)
{
  QpinVm *vm = user_data;

  /* 7.2 emits DEVICE_DELETED only for .../cpuN/lapic after a CPU unplug:
   * any device removal may have been a vCPU, so look again */
  if (g_str_equal (name, "DEVICE_DELETED") || g_str_equal (name, "ACPI_DEVICE_OST"))
    qpin_vm_discover_soon (vm);
}

/* The summary of held-back lines names the VM by its key. */
void
qpin_vm_name_log_limit (QpinVm *vm)
{
  g_autofree char *who = g_strdup_printf ("vm '%s' (pid %d)", vm->key, vm->pid);

  qpin_log_limit_set_who (vm->log_limit, who);
}

/* "pid-N" and "NAME@PID" are qpin's own keys: a QEMU named so could take
 * another VM's key (and its place in the ledger).  Such a name, and an
 * empty one, count as no name. */
void
qpin_vm_check_name (QpinVm *vm, char **name)
{
  if (*name == NULL || (**name != '\0' && !qpin_peer_has_key_form (*name)))
    return;
  if (**name != '\0' && qpin_log_limit_allow (vm->log_limit))
    g_warning ("vm '%s' (pid %d): the QMP name '%s' has the form of qpin's own keys (pid-N, "
               "NAME@PID); ignored",
               vm->key, vm->pid, *name);
  g_clear_pointer (name, g_free);
}

/* Returns: (transfer full): @wanted, or NAME@PID when another VM has it,
 *   or pid-PID without a name */
char *
qpin_registry_unique_key (QpinRegistry *registry, const char *wanted, GPid pid)
{
  if (wanted == NULL)
    return g_strdup_printf ("pid-%d", pid);
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *other = g_ptr_array_index (registry->vms, i);
      if (g_strcmp0 (other->key, wanted) == 0)
        {
          g_warning ("two QEMUs are named '%s' (pids %d and %d); the second is '%s@%d' here",
                     wanted, other->pid, pid, wanted, pid);
          return g_strdup_printf ("%s@%d", wanted, pid);
        }
    }
  return g_strdup (wanted);
}

static QpinVm *
find_process (QpinRegistry *registry, const QpinPeer *peer)
{
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      if (vm->peer && qpin_peer_same_process (vm->peer, peer))
        return vm;
    }
  return NULL;
}

/* Whether @client becomes a VM; @peer gets its process.  The daemon
 * refuses a monitor whose process it cannot pin down or whose owner is
 * not allowed, and keeps a second monitor of a managed QEMU as a
 * standby; each says so in one line and is held, not closed, so that it
 * does not come back every second.  attach and run, told which QEMU to
 * manage, take its pid from the kernel or the command line. */
static gboolean
admit (QpinRegistry *registry, QpinQmpClient *client, GPid pid, QpinPeer **peer)
{
  g_autoptr (GError) error = NULL;
  const char *label = qpin_qmp_client_get_label (client);
  QpinVm *twin;

  *peer = qpin_host_identify (registry->host, client, pid, &error);
  if (*peer == NULL && !registry->options.check_owner)
    return TRUE;
  if (*peer == NULL)
    {
      if (qpin_log_limit_allow (registry->refusals))
        g_warning ("refused '%s': %s", label, error->message);
      qpin_standby_hold (registry->standby, client, NULL);
      return FALSE;
    }
  if (registry->options.check_owner && !qpin_peer_check_owner (*peer, registry->config, &error))
    {
      if (qpin_log_limit_allow (registry->refusals))
        g_warning ("refused '%s' (pid %d): %s", label, (*peer)->pid, error->message);
      qpin_standby_hold (registry->standby, client, NULL);
      g_clear_pointer (peer, qpin_peer_free);
      return FALSE;
    }
  twin = find_process (registry, *peer);
  if (twin != NULL)
    {
      g_message ("vm '%s' (pid %d): '%s' is a second monitor of the same QEMU; kept as a standby",
                 twin->key, twin->pid, label);
      qpin_standby_hold (registry->standby, client, g_steal_pointer (peer));
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_registry_add:
 * @client: a ready QMP client of the VM; the registry keeps a reference
 * @pid: the QEMU process; 0 to take it from the socket peer
 *
 * Starts managing a VM: discovery, placement and pinning run from the
 * main loop.  The registry tells a VM by its process instance (pid and
 * start time), not by its monitor: a second monitor of a managed QEMU is
 * held as a standby that takes over if the first closes.  With
 * check_owner, a QEMU whose owner is not allowed is refused.
 *
 * Returns: (transfer none) (nullable): the VM, owned by the registry;
 *   %NULL when refused or kept as a standby (logged)
 */
QpinVm *
qpin_registry_add (QpinRegistry *registry, QpinQmpClient *client, GPid pid)
{
  g_autoptr (QpinPeer) peer = NULL;
  QpinVm *vm;

  if (!admit (registry, client, pid, &peer))
    return NULL;
  vm = g_new0 (QpinVm, 1);
  vm->ref = 1;
  vm->registry = registry;
  vm->client = g_object_ref (client);
  vm->pid = pid > 0 ? pid : qpin_qmp_client_get_peer_pid (client);
  vm->peer = g_steal_pointer (&peer);
  vm->key = g_strdup_printf ("pid-%d", vm->pid);
  vm->state = QPIN_VM_DISCOVERING;
  vm->logged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  vm->log_limit = qpin_log_limit_new ();
  qpin_vm_name_log_limit (vm);
  vm->closed_id = g_signal_connect (client, "closed", G_CALLBACK (on_closed), vm);
  vm->event_id = g_signal_connect (client, "event", G_CALLBACK (on_event), vm);
  g_ptr_array_add (registry->vms, vm);
  qpin_registry_update_watched_pids (registry);
  qpin_vm_discover (vm);
  return vm;
}

/**
 * qpin_registry_find_vm:
 * @name: a VM's key or its QEMU -name
 *
 * Returns: (transfer none) (nullable): the VM
 */
QpinVm *
qpin_registry_find_vm (QpinRegistry *registry, const char *name)
{
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      if (g_strcmp0 (vm->key, name) == 0)
        return vm;
    }
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      if (g_strcmp0 (vm->qemu_name, name) == 0)
        return vm;
    }
  return NULL;
}
