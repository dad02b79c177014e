/* qpin-registry-host.c: the host under the registry: CPU hotplug, ledger file
 *
 * Host CPUs going offline and coming back (re-place what used them,
 * make degraded VMs whole, re-verify every pin a few times), and the file
 * that keeps the CPUs each VM holds for a restart.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include "qpin-irq.h"
#include "qpin-proc.h"

static QpinLedgerEntry *
last_entry (QpinLedgerFile *ledger)
{
  return g_ptr_array_index (ledger->entries, ledger->entries->len - 1);
}

/* Keeps the CPUs each VM's vCPUs hold for themselves in the ledger file,
 * when they changed, and steers IRQs off them.  Not while held: the
 * previous run's file is still to be read back by the adoptions.  One
 * pass over the VMs: O(VMs) per write. */
static void
write_ledger (QpinRegistry *registry)
{
  g_autoptr (QpinLedgerFile) ledger = NULL;
  g_autoptr (GHashTable) start_times = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  const QpinPlan *plan;

  qpin_irq_steer_update (qpin_placer_get_plan (registry->placer));
  if (registry->ledger_path == NULL || registry->held || registry->options.dry_run)
    return;
  ledger = qpin_ledger_file_new ();
  start_times = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      if (vm->peer)
        g_hash_table_insert (start_times, vm->key, &vm->peer->start_time);
    }
  plan = qpin_placer_get_plan (registry->placer);
  for (guint i = 0; i < plan->vms->len; i++)
    {
      const QpinPlanVm *pv = g_ptr_array_index (plan->vms, i);
      const QpinLedgerEntry *held = qpin_registry_reserved_entry (registry, pv->name);
      const guint64 *start = g_hash_table_lookup (start_times, pv->name);
      QpinCpuset cpus;

      if (held)
        {
          /* not back yet: kept as the previous run left it */
          qpin_ledger_file_add (ledger, held->pid, held->start_time, held->key, &held->cpus);
          last_entry (ledger)->degraded = held->degraded;
          continue;
        }
      qpin_cpuset_clear_all (&cpus);
      for (guint j = 0; j < pv->threads->len; j++)
        {
          const QpinPlanThread *pt = &g_array_index (pv->threads, QpinPlanThread, j);
          if (pt->exclusive && pt->spec.role == QPIN_ROLE_VCPU)
            qpin_cpuset_or_packed (&cpus, &pt->cpus);
        }
      qpin_ledger_file_add (ledger, (GPid) pv->pid, start ? *start : 0, pv->name, &cpus);
      last_entry (ledger)->degraded = qpin_registry_plan_degraded (pv);
    }
  data = qpin_ledger_file_to_data (ledger);
  if (g_strcmp0 (data, registry->ledger_saved) == 0)
    return;
  if (!g_file_set_contents_full (registry->ledger_path, data, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                 0600, &error))
    {
      g_warning ("cannot keep the held CPUs for a restart: %s", error->message);
      return;
    }
  g_free (registry->ledger_saved);
  registry->ledger_saved = g_steal_pointer (&data);
}

static gboolean
on_ledger_idle (gpointer user_data)
{
  qpin_registry_flush_ledger (user_data);
  return G_SOURCE_REMOVE;
}

/**
 * qpin_registry_save_ledger:
 *
 * Something the ledger file records changed.  It is written once the main
 * loop has nothing else to do, so that a burst of changes (a thousand VMs
 * arriving) writes it once rather than once per VM, and in a burst at
 * least every QPIN_LEDGER_MAX_DELAY_MS.
 */
void
qpin_registry_save_ledger (QpinRegistry *registry)
{
  gint64 now = qpin_host_now_us (registry->host);

  if (registry->ledger_dirty_since == 0)
    registry->ledger_dirty_since = now;
  if (now - registry->ledger_dirty_since >= QPIN_LEDGER_MAX_DELAY_MS * 1000)
    {
      qpin_registry_flush_ledger (registry);
      return;
    }
  if (registry->ledger_idle == 0)
    registry->ledger_idle
      = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, on_ledger_idle, registry, NULL);
}

/**
 * qpin_registry_flush_ledger:
 *
 * Writes what qpin_registry_save_ledger() has deferred, now.
 */
void
qpin_registry_flush_ledger (QpinRegistry *registry)
{
  if (registry->ledger_idle)
    g_source_remove (registry->ledger_idle);
  registry->ledger_idle = 0;
  if (registry->ledger_dirty_since == 0)
    return;
  registry->ledger_dirty_since = 0;
  write_ledger (registry);
}

/* A CPU came back: plan on the host as it is now.  Every VM keeps its
 * placement (adopted as it runs), except a degraded one, which is placed
 * again to be whole; the CPU is free for what comes next.  A VM the new
 * ledger cannot adopt is placed again.  Returns the VMs to re-place
 * whole. */
static GPtrArray *
rebuild_placer (QpinRegistry *registry)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = qpin_host_read_topology (registry->host, &error);
  g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (registry->config, NULL, NULL);
  g_autoptr (GPtrArray) lost = g_ptr_array_new ();
  GPtrArray *degraded = g_ptr_array_new ();
  QpinPlacer *placer;

  if (topo == NULL || defaults == NULL)
    {
      g_warning ("cannot re-read the host topology: %s", error ? error->message : "no policy");
      return degraded;
    }
  placer = qpin_placer_new (topo, &defaults->reserved);
  qpin_registry_readopt_reserved (registry, placer);
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autoptr (GError) local = NULL;

      if (!vm->placed)
        continue;
      if (!qpin_placer_adopt (placer, qpin_vm_plan_of (vm), &local))
        {
          g_info ("vm '%s': placed again after the host change: %s", vm->key, local->message);
          vm->placed = FALSE;
          g_ptr_array_add (lost, vm);
        }
      else if (qpin_registry_plan_degraded (qpin_vm_plan_of (vm)))
        g_ptr_array_add (degraded, vm);
    }
  qpin_placer_free (registry->placer);
  qpin_topology_free (registry->topo);
  registry->placer = placer;
  registry->topo = g_steal_pointer (&topo);
  for (guint i = 0; i < lost->len; i++)
    qpin_vm_discover (g_ptr_array_index (lost, i));
  return degraded;
}

static gboolean
on_host_recheck (gpointer user_data)
{
  QpinRegistry *registry = user_data;

  for (guint i = 0; i < registry->vms->len; i++)
    qpin_vm_discover (g_ptr_array_index (registry->vms, i));
  if (--registry->rechecks_left > 0)
    return G_SOURCE_CONTINUE;
  registry->recheck = 0;
  g_clear_pointer (&registry->host_change, g_free);
  return G_SOURCE_REMOVE;
}

static void
recheck_host (QpinRegistry *registry, guint cpu, gboolean online)
{
  g_free (registry->host_change);
  registry->host_change
    = g_strdup_printf ("host CPU %u %s", cpu, online ? "came back online" : "went offline");
  registry->rechecks_left = registry->rechecks;
  if (registry->recheck == 0 && registry->rechecks > 0)
    registry->recheck = g_timeout_add (registry->recheck_ms, on_host_recheck, registry);
  for (guint i = 0; i < registry->vms->len; i++)
    qpin_vm_discover (g_ptr_array_index (registry->vms, i));
}

static void
on_cpu_event (guint cpu, gboolean online, gpointer user_data)
{
  QpinRegistry *registry = user_data;
  g_autoptr (GError) error = NULL;

  if (online)
    {
      g_autoptr (GPtrArray) degraded = NULL;
      g_autofree char *why = g_strdup_printf ("now that host CPU %u is back", cpu);

      g_message ("host CPU %u is online: free for new placements, degraded VMs placed again; "
                 "re-verifying every pin",
                 cpu);
      degraded = rebuild_placer (registry);
      for (guint i = 0; i < degraded->len; i++)
        qpin_vm_make_whole (g_ptr_array_index (degraded, i), why);
      recheck_host (registry, cpu, TRUE);
      return;
    }
  g_message ("host CPU %u went offline: re-placing the threads that used it", cpu);
  if (!qpin_placer_lose_cpu (registry->placer, cpu, &error))
    g_info ("%s", error->message);
  /* the kernel has moved threads off the CPU (widening their masks); look
   * and re-pin */
  recheck_host (registry, cpu, FALSE);
}

/**
 * qpin_registry_cpu_event:
 *
 * Host CPU @cpu went offline or came back (what the uevents watch says).
 */
void
qpin_registry_cpu_event (QpinRegistry *registry, guint cpu, gboolean online)
{
  on_cpu_event (cpu, online, registry);
}

/**
 * qpin_registry_set_recheck:
 *
 * How often, after a host CPU event, every VM is looked at again.
 */
void
qpin_registry_set_recheck (QpinRegistry *registry, guint interval_ms, guint times)
{
  registry->recheck_ms = interval_ms;
  registry->rechecks = times;
}

/**
 * qpin_registry_watch_host:
 *
 * Reacts to host CPUs going offline (the threads that used them are
 * re-placed, nothing else moves) and online (free for new placements).
 * Only for a registry planning on the live host.
 */
gboolean
qpin_registry_watch_host (QpinRegistry *registry, GError **error)
{
  if (registry->uevents)
    return TRUE;
  registry->uevents = qpin_uevents_new (on_cpu_event, registry, error);
  return registry->uevents != NULL;
}

/**
 * qpin_registry_keep_ledger:
 * @path: the file that keeps the CPUs each VM holds across restarts
 *
 * Reads what the previous run left in @path (for the adoptions), holds
 * the CPUs of the VMs still running at once, and keeps the file up to
 * date from now on.  A file that is missing (%G_FILE_ERROR_NOENT), cannot
 * be read or parsed, is of another version or does not fit this host is
 * reported in @error and replaced; the adoptions then go by the kernel's
 * affinities alone, after a grace period.
 *
 * Returns: %TRUE when the file was believed: no grace period is needed
 */
gboolean
qpin_registry_keep_ledger (QpinRegistry *registry, const char *path, GError **error)
{
  g_autoptr (QpinLedgerFile) ledger = NULL;
  g_autoptr (GError) local = NULL;

  g_free (registry->ledger_path);
  registry->ledger_path = g_strdup (path);
  qpin_ledger_file_free (registry->before);
  registry->before = qpin_ledger_file_new ();
  registry->ledger_whole = FALSE;
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no ledger file '%s'", path);
      return FALSE;
    }
  ledger = qpin_ledger_file_load (path, error);
  if (ledger == NULL)
    return FALSE;
  if (!qpin_registry_check_ledger (registry, g_steal_pointer (&ledger), &local))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "%s: %s", path,
                   local->message);
      return FALSE;
    }
  return TRUE;
}
