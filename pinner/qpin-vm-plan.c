/* qpin-vm-plan.c: the bridge between a VM and the placer
 *
 * A VM's request and policy (narrowed to its cgroup cpuset once the
 * kernel refused a pin), its first placement or the adoption of the pins
 * a previous run left, the plan kept in line with hot-added and removed
 * threads, degraded VMs made whole again, and reload.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

/* Returns: (transfer none) (nullable): the placer's plan for @vm */
const QpinPlanVm *
qpin_vm_plan_of (QpinVm *vm)
{
  return qpin_plan_find_vm (qpin_placer_get_plan (vm->registry->placer), vm->key);
}

/* What the plan says for thread @t: "other" threads follow the emulator;
 * with single-threaded TCG every vCPU entry is the one planned vCPU. */
gboolean
qpin_vm_planned_cpus (QpinVm *vm, const QpinPlanVm *plan, const QpinVmThread *t, QpinCpuset *out)
{
  QpinThreadRole role = t->role == QPIN_ROLE_OTHER ? QPIN_ROLE_EMULATOR : t->role;
  guint index = t->role == QPIN_ROLE_OTHER || (t->role == QPIN_ROLE_VCPU && vm->shared_vcpu_thread)
                  ? 0
                  : (guint) t->index;
  const QpinPlanThread *pt = qpin_plan_vm_find_thread (plan, role, index);

  if (pt == NULL)
    return FALSE;
  qpin_cpuset_unpack (&pt->cpus, out);
  return TRUE;
}

static QpinThreadSpec
spec_of (const QpinVmThread *t)
{
  QpinThreadSpec spec = qpin_thread_spec_vcpu ((guint) t->index);

  spec.role = t->role;
  spec.tid = t->tid;
  spec.topo = t->topo;
  return spec;
}

/* Returns: (transfer full): what @vm asks of the placer: one thread
 *   spec per vCPU (once with a shared vCPU thread), emulator, iothread */
QpinRequest *
qpin_vm_request_of (QpinVm *vm)
{
  QpinRequest *request = qpin_request_new (vm->key, vm->pid);

  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      QpinThreadSpec spec = spec_of (t);

      if (t->role == QPIN_ROLE_OTHER)
        continue;
      /* one host thread runs every vCPU: plan it once */
      if (t->role == QPIN_ROLE_VCPU && vm->shared_vcpu_thread && t->index != 0)
        continue;
      qpin_request_add_thread (request, &spec);
    }
  return request;
}

/* The previous run's ledger says @cpu was another VM's, which still runs:
 * this VM's vCPU only floated there (degraded). */
static gboolean
held_by_another (QpinVm *vm, guint cpu)
{
  const QpinLedgerEntry *owner = qpin_ledger_file_owner (vm->registry->before, cpu);

  if (owner == NULL || owner->pid == vm->pid)
    return FALSE;
  return qpin_host_process_exists (vm->registry->host, owner->pid);
}

/* Did the previous run place this VM? */
static gboolean
in_ledger (QpinVm *vm)
{
  const QpinLedgerFile *ledger = vm->registry->before;

  for (guint i = 0; ledger && i < ledger->entries->len; i++)
    if (((const QpinLedgerEntry *) g_ptr_array_index (ledger->entries, i))->pid == vm->pid)
      return TRUE;
  return FALSE;
}

/* A vCPU found on one CPU no other vCPU of the VM uses is taken over as
 * its own; any other (several CPUs, or one it shares: degraded when qpin
 * stopped) floats, and the VM is degraded.  FALSE: not a running pin. */
static gboolean
adopt_vcpu (QpinVm *vm, QpinPlanThread *pt, const QpinCpuset *actual, QpinCpuset *seen,
            GString *floats)
{
  if (qpin_cpuset_count (actual) == 1 && !qpin_cpuset_intersects (actual, seen)
      && !held_by_another (vm, (guint) qpin_cpuset_first (actual)))
    {
      qpin_cpuset_or (seen, actual);
      pt->exclusive = TRUE;
      return TRUE;
    }
  g_string_append_printf (floats, "%s%s %u", floats->len ? ", " : "",
                          qpin_thread_role_to_string (pt->spec.role), pt->spec.index);
  return FALSE;
}

/* After a qpin restart the VM's vCPUs are still pinned, one CPU each:
 * take that over as it is when the ledger agrees, so nothing moves.  A
 * VM that was degraded (a vCPU floating beside the others after a lost
 * CPU) keeps the CPUs it holds and stays degraded, unless it fits whole
 * now. */
gboolean
qpin_vm_try_adopt (QpinVm *vm, const QpinPolicy *policy)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPlanVm) pv = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) floats = g_string_new (NULL);
  QpinCpuset seen, nodes, floating;
  guint vcpus = 0;

  /* the CPUs held for it since qpin started are its own to adopt */
  qpin_registry_unreserve_vm (registry, vm);
  if (policy->cpus != QPIN_CPUS_DEDICATED || vm->shared_vcpu_thread)
    return FALSE;
  pv = qpin_plan_vm_new (vm->key, vm->pid, policy);
  qpin_cpuset_clear_all (&seen);
  qpin_cpuset_clear_all (&floating);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      const ThreadState *st = &g_array_index (vm->states, ThreadState, i);
      QpinPlanThread pt = { .spec = spec_of (t) };
      QpinCpuset actual;

      if (t->role == QPIN_ROLE_OTHER)
        continue;
      qpin_cpuset_unpack (&st->actual, &actual);
      if (t->role == QPIN_ROLE_VCPU && !adopt_vcpu (vm, &pt, &actual, &seen, floats))
        qpin_cpuset_or (&floating, &actual);
      else if (t->role == QPIN_ROLE_VCPU)
        vcpus++;
      else if (qpin_cpuset_count (&actual) == 1
               && (t->role == QPIN_ROLE_EMULATOR ? policy->emulator : policy->iothreads)
                    == QPIN_AUX_ISOLATE)
        {
          /* an isolated emulator or iothread owns its CPU too */
          if (qpin_cpuset_intersects (&actual, &seen))
            return FALSE;
          qpin_cpuset_or (&seen, &actual);
          pt.exclusive = TRUE;
        }
      qpin_cpuset_packed_copy (&pt.cpus, &st->actual);
      g_array_append_val (pv->threads, pt);
    }
  /* no vCPU on a CPU of its own: a VM never pinned, unless the ledger
   * knew it (degraded, every vCPU floating) */
  if (vcpus == 0 && !in_ledger (vm))
    return FALSE;
  qpin_cpuset_pack (&pv->held, &seen);
  qpin_topology_nodes_of (registry->topo, vcpus ? &seen : &floating, &nodes);
  qpin_cpuset_pack (&pv->mem_nodes, &nodes);
  qpin_plan_vm_add_note (pv, "adopted from the running pins");
  if (floats->len)
    qpin_plan_vm_add_note (pv, "degraded: %s not on a cpu of its own when qpin started: floats",
                           floats->str);
  if (!qpin_placer_adopt (registry->placer, pv, &error))
    {
      g_autofree char *why
        = g_strdup_printf ("vm '%s' (pid %d): not adopting its running pins: %s; placing it again",
                           vm->key, vm->pid, error->message);

      if (g_hash_table_add (vm->logged, g_strdup (why)))
        g_message ("%s", why);
      return FALSE;
    }
  g_message ("vm '%s' (pid %d): adopted its running pins%s%s", vm->key, vm->pid,
             floats->len ? ", degraded: " : "", floats->len ? floats->str : "");
  return TRUE;
}

/* The VM's policy from the configuration, narrowed to what its cgroup
 * cpuset allows once the kernel refused a pin outside it. */
QpinPolicy *
qpin_vm_policy_for (QpinVm *vm, GError **error)
{
  QpinPolicy *policy = qpin_config_policy_for (vm->registry->config, vm->qemu_name, error);
  QpinCpuset in;

  if (policy == NULL || vm->confined == NULL)
    return policy;
  in = *vm->confined;
  if (policy->cpuset)
    qpin_cpuset_and (&in, policy->cpuset);
  /* a configured cpuset the cgroup forbids entirely: the cgroup wins */
  qpin_policy_set_cpuset (policy, qpin_cpuset_is_empty (&in) ? vm->confined : &in);
  return policy;
}

/* Status says why the VM sits where it does. */
static void
note_confined (QpinVm *vm)
{
  g_autofree char *cpus = NULL;

  if (vm->confined == NULL)
    return;
  cpus = qpin_cpuset_format (vm->confined);
  qpin_placer_add_note (vm->registry->placer, vm->key,
                        "its cgroup cpuset allows only cpus %s: planned inside them", cpus);
}

/* Places @vm for the first time: adopts its running pins when it can,
 * otherwise asks the placer.  %FALSE with the reason when it does not fit. */
gboolean
qpin_vm_place (QpinVm *vm, GError **error)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPolicy) policy = NULL;
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);

  policy = qpin_vm_policy_for (vm, error);
  if (policy == NULL || !qpin_policy_check (policy, registry->topo, vm->key, error))
    return FALSE;
  /* CPUs held for a VM of the previous run that exited meanwhile are free */
  qpin_registry_drop_dead_reserved (registry);
  if (qpin_vm_try_adopt (vm, policy))
    return TRUE;
  g_ptr_array_add (requests, qpin_vm_request_of (vm));
  g_ptr_array_add (policies, g_steal_pointer (&policy));
  if (!qpin_placer_place (registry->placer, requests, policies, error))
    return FALSE;
  note_confined (vm);
  return TRUE;
}

/* The VM is placed; bring the plan in line with the threads it has now
 * (hot-added or removed vCPUs, new iothreads) without moving the rest. */
void
qpin_vm_sync_plan (QpinVm *vm)
{
  QpinRegistry *registry = vm->registry;
  const QpinPlanVm *plan = qpin_vm_plan_of (vm);
  g_autoptr (GPtrArray) gone = g_ptr_array_new ();

  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      QpinThreadSpec spec = spec_of (t);
      g_autoptr (GError) error = NULL;

      if (t->role == QPIN_ROLE_OTHER || (t->role == QPIN_ROLE_VCPU && vm->shared_vcpu_thread))
        continue;
      if (qpin_plan_vm_find_thread (plan, t->role, (guint) t->index))
        continue;
      if (qpin_placer_add_thread (registry->placer, vm->key, &spec, &error))
        g_message ("vm '%s': placed new %s %d (tid %d)", vm->key,
                   qpin_thread_role_to_string (t->role), t->index, t->tid);
      else if (qpin_placer_note_waiting (registry->placer, vm->key, &spec, error->message))
        g_warning ("vm '%s': cannot place new %s %d: %s", vm->key,
                   qpin_thread_role_to_string (t->role), t->index, error->message);
      plan = qpin_vm_plan_of (vm);
    }

  for (guint i = 0; i < plan->threads->len; i++)
    {
      const QpinPlanThread *pt = &g_array_index (plan->threads, QpinPlanThread, i);
      gboolean present = FALSE;

      if (pt->spec.role == QPIN_ROLE_EMULATOR)
        continue;
      for (guint j = 0; j < vm->threads->len && !present; j++)
        {
          const QpinVmThread *t = g_ptr_array_index (vm->threads, j);
          present = t->role == pt->spec.role && (guint) t->index == pt->spec.index;
        }
      if (!present)
        g_ptr_array_add (gone, GUINT_TO_POINTER ((pt->spec.role << 24) | pt->spec.index));
    }
  for (guint i = 0; i < gone->len; i++)
    {
      guint packed = GPOINTER_TO_UINT (g_ptr_array_index (gone, i));
      QpinThreadRole role = (QpinThreadRole) (packed >> 24);
      g_autoptr (GError) error = NULL;

      if (qpin_placer_remove_thread (registry->placer, vm->key, role, packed & 0xffffff, &error))
        g_message ("vm '%s': %s %u is gone, its CPUs are free", vm->key,
                   qpin_thread_role_to_string (role), packed & 0xffffff);
      else
        g_warning ("vm '%s': %s", vm->key, error->message);
    }
}

/* Is @plan a dedicated VM with a vCPU that lost its own CPU (floats)? */
gboolean
qpin_registry_plan_degraded (const QpinPlanVm *plan)
{
  if (plan->floating || plan->policy->cpus != QPIN_CPUS_DEDICATED)
    return FALSE;
  for (guint i = 0; i < plan->threads->len; i++)
    {
      const QpinPlanThread *pt = &g_array_index (plan->threads, QpinPlanThread, i);
      if (pt->spec.role == QPIN_ROLE_VCPU && !pt->exclusive)
        return TRUE;
    }
  return FALSE;
}

/* A degraded VM is placed again as a whole (@why: what changed); when it
 * still does not fit it keeps its placement as it is. */
gboolean
qpin_vm_make_whole (QpinVm *vm, const char *why)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPlanVm) old = qpin_plan_vm_copy (qpin_vm_plan_of (vm));
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  g_autoptr (GError) error = NULL;
  QpinPolicy *policy = qpin_vm_policy_for (vm, &error);

  if (policy == NULL)
    {
      g_warning ("vm '%s': %s", vm->key, error->message);
      return FALSE;
    }
  qpin_placer_remove_vm (registry->placer, vm->key, NULL);
  g_ptr_array_add (requests, qpin_vm_request_of (vm));
  g_ptr_array_add (policies, policy);
  if (!qpin_placer_place (registry->placer, requests, policies, &error))
    {
      qpin_placer_adopt (registry->placer, old, NULL);
      g_info ("vm '%s': still degraded %s: %s", vm->key, why, error->message);
      return FALSE;
    }
  g_message ("vm '%s': whole again %s: placed again, every vCPU on a CPU of its own", vm->key, why);
  note_confined (vm);
  return TRUE;
}

/* Every degraded VM is placed whole again if it fits now (@why), and
 * looked at to be pinned so. */
void
qpin_registry_make_whole_all (QpinRegistry *registry, const char *why)
{
  if (registry->held)
    return;
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);

      if (vm->placed && qpin_registry_plan_degraded (qpin_vm_plan_of (vm))
          && qpin_vm_make_whole (vm, why))
        qpin_vm_discover (vm);
    }
}

static gboolean
policy_equal (const QpinPolicy *a, const QpinPolicy *b)
{
  for (const char *const *key = qpin_policy_keys (); *key; key++)
    {
      g_autofree char *x = qpin_policy_get (a, *key);
      g_autofree char *y = qpin_policy_get (b, *key);
      if (g_strcmp0 (x, y) != 0)
        return FALSE;
    }
  return TRUE;
}

/* Re-place one VM under @policy (transfer full) because of @why; on
 * failure put the old placement back. */
void
qpin_vm_replace (QpinVm *vm, QpinPolicy *policy, const char *why)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPlanVm) old = qpin_plan_vm_copy (qpin_vm_plan_of (vm));
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  g_autoptr (GError) error = NULL;

  qpin_placer_remove_vm (registry->placer, vm->key, NULL);
  g_ptr_array_add (requests, qpin_vm_request_of (vm));
  g_ptr_array_add (policies, policy);
  if (qpin_placer_place (registry->placer, requests, policies, &error))
    {
      g_message ("vm '%s': re-placed (%s)", vm->key, why);
      note_confined (vm);
      qpin_vm_apply (vm);
      return;
    }
  qpin_placer_adopt (registry->placer, old, NULL);
  {
    g_autofree char *message = g_strdup_printf ("%s: the new policy does not fit (%s); "
                                                "kept the previous placement",
                                                why, error->message);
    qpin_vm_set_error (vm, QPIN_VM_DEGRADED, message);
  }
}

/**
 * qpin_registry_reload:
 * @config: (transfer full): the new configuration
 *
 * Switches to @config and re-places only the VMs whose policy changed.
 * A VM whose new policy does not fit keeps its placement and says so in
 * its state.  Fails, changing nothing, when @config does not fit the host
 * or changes "reserved" (which needs a restart).
 */
gboolean
qpin_registry_reload (QpinRegistry *registry, QpinConfig *config, GError **error)
{
  g_autoptr (QpinConfig) owned = config;
  g_autoptr (QpinPolicy) old_defaults = qpin_config_policy_for (registry->config, NULL, NULL);
  g_autoptr (QpinPolicy) new_defaults = NULL;

  if (!qpin_config_check (config, registry->topo, error)
      || !(new_defaults = qpin_config_policy_for (config, NULL, error)))
    return FALSE;
  if (!qpin_cpuset_equal (&old_defaults->reserved, &new_defaults->reserved))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "'reserved' cannot change on reload; restart qpin to change it");
      return FALSE;
    }
  qpin_config_free (registry->config);
  registry->config = g_steal_pointer (&owned);
  /* the allow list may have changed: refused peers are asked again when
   * they reconnect */
  qpin_standby_drop_refused (registry->standby);
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autoptr (QpinPolicy) policy = NULL;

      if (!vm->placed)
        {
          /* a VM that did not fit may fit now */
          if (vm->threads && !vm->untouchable)
            qpin_vm_discover (vm);
          continue;
        }
      policy = qpin_vm_policy_for (vm, NULL);
      if (policy && !policy_equal (policy, qpin_vm_plan_of (vm)->policy))
        qpin_vm_replace (vm, g_steal_pointer (&policy), "reload");
    }
  return TRUE;
}
