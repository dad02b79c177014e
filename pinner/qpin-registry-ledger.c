/* qpin-registry-ledger.c: the previous run's ledger file, checked and held
 *
 * A restarted daemon reads which CPUs each VM's vCPUs held.  Entries whose
 * process is gone, or whose pid now names another process (another start
 * time), are dropped; a file naming CPUs the host lacks, or one CPU for
 * two VMs, is not believed at all.  What remains is held in the placer
 * at once, under a placeholder per VM, so new VMs are placed right away
 * without taking those CPUs; the placeholder goes when its VM comes back
 * (and adopts its pins) or its process exits.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include "qpin-proc.h"

#define PLACEHOLDER_PREFIX "ledger:"

/* Whether the process instance @e names still runs: same pid, same
 * start time (a pid alone may be another program's by now). */
static gboolean
entry_is_current (QpinRegistry *registry, const QpinLedgerEntry *e)
{
  QpinPeer peer = { .pid = e->pid, .start_time = e->start_time };

  return e->start_time != 0 && qpin_host_is_current (registry->host, &peer, NULL);
}

/* A file naming CPUs this host does not have, or one CPU for two VMs, is
 * not what the previous run wrote on this host. */
static gboolean
check_cpus (QpinRegistry *registry, const QpinLedgerFile *ledger, GError **error)
{
  QpinCpuset seen;

  qpin_cpuset_clear_all (&seen);
  for (guint i = 0; i < ledger->entries->len; i++)
    {
      const QpinLedgerEntry *e = g_ptr_array_index (ledger->entries, i);
      QpinCpuset extra = e->cpus;

      qpin_cpuset_andnot (&extra, &registry->topo->present);
      if (!qpin_cpuset_is_empty (&extra))
        {
          g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                       "vm '%s' (pid %d) holds cpu %d, which this host does not have", e->key,
                       e->pid, qpin_cpuset_first (&extra));
          return FALSE;
        }
      if (qpin_cpuset_intersects (&seen, &e->cpus))
        {
          QpinCpuset both = e->cpus;

          qpin_cpuset_and (&both, &seen);
          g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                       "cpu %d is held by two VMs", qpin_cpuset_first (&both));
          return FALSE;
        }
      qpin_cpuset_or (&seen, &e->cpus);
    }
  return TRUE;
}

/* Drops the entries whose process has exited or is another one now. */
static void
drop_stale (QpinRegistry *registry, QpinLedgerFile *ledger)
{
  for (guint i = ledger->entries->len; i-- > 0;)
    {
      const QpinLedgerEntry *e = g_ptr_array_index (ledger->entries, i);

      if (entry_is_current (registry, e))
        continue;
      g_message ("ledger file: vm '%s' (pid %d) ignored: it has exited, or the pid is another "
                 "process now",
                 e->key, e->pid);
      g_ptr_array_remove_index (ledger->entries, i);
    }
}

static char *
placeholder_name (const QpinLedgerEntry *e)
{
  return g_strdup_printf (PLACEHOLDER_PREFIX "%d", e->pid);
}

/* Holds @e's CPUs in the placer until its VM comes back. */
static void
reserve (QpinRegistry *registry, const QpinLedgerEntry *e, const QpinPolicy *policy)
{
  g_autofree char *name = placeholder_name (e);
  g_autoptr (QpinPlanVm) pv = qpin_plan_vm_new (name, e->pid, policy);
  g_autoptr (GError) error = NULL;
  QpinCpuset nodes;
  guint index = 0;

  for (gint cpu = qpin_cpuset_first (&e->cpus); cpu >= 0; cpu = qpin_cpuset_next (&e->cpus, cpu))
    {
      QpinPlanThread pt = { .spec = qpin_thread_spec_vcpu (index++), .exclusive = TRUE };

      qpin_cpuset_packed_add (&pt.cpus, (guint) cpu);
      g_array_append_val (pv->threads, pt);
    }
  qpin_cpuset_pack (&pv->held, &e->cpus);
  qpin_topology_nodes_of (registry->topo, &e->cpus, &nodes);
  qpin_cpuset_pack (&pv->mem_nodes, &nodes);
  qpin_plan_vm_add_note (pv, "held for vm '%s' (pid %d) from the ledger file until it is back",
                         e->key, e->pid);
  if (!qpin_placer_adopt (registry->placer, pv, &error))
    {
      g_message ("ledger file: cpus of vm '%s' (pid %d) not held: %s", e->key, e->pid,
                 error->message);
      return;
    }
  g_hash_table_insert (registry->reserved, g_steal_pointer (&name), (gpointer) e);
}

/**
 * qpin_registry_check_ledger:
 * @ledger: (transfer full): what the previous run left
 *
 * Keeps @ledger's live entries as the previous run's word, and holds their
 * CPUs at once.  %FALSE (the file not believed) with the reason in @error.
 */
gboolean
qpin_registry_check_ledger (QpinRegistry *registry, QpinLedgerFile *ledger, GError **error)
{
  g_autoptr (QpinLedgerFile) owned = ledger;
  g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (registry->config, NULL, NULL);

  if (!check_cpus (registry, ledger, error))
    return FALSE;
  drop_stale (registry, ledger);
  qpin_ledger_file_free (registry->before);
  registry->before = g_steal_pointer (&owned);
  for (guint i = 0; i < registry->before->entries->len; i++)
    {
      const QpinLedgerEntry *e = g_ptr_array_index (registry->before->entries, i);

      /* who owns the CPU a degraded VM floats on is settled with every
       * VM back, after the grace period, as without the file */
      if (e->degraded)
        {
          g_message ("ledger file: vm '%s' (pid %d) was degraded: every VM is adopted together "
                     "after the grace period",
                     e->key, e->pid);
          return TRUE;
        }
    }
  for (guint i = 0; defaults && i < registry->before->entries->len; i++)
    reserve (registry, g_ptr_array_index (registry->before->entries, i), defaults);
  registry->ledger_whole = TRUE;
  return TRUE;
}

/**
 * qpin_registry_ledger_is_whole:
 *
 * Returns: whether the previous run's ledger file was believed and holds
 *   the CPUs of every VM still running: new VMs need no grace period
 */
gboolean
qpin_registry_ledger_is_whole (QpinRegistry *registry)
{
  return registry->ledger_whole;
}

/* Returns: (transfer none) (nullable): the ledger entry @name holds CPUs for */
const QpinLedgerEntry *
qpin_registry_reserved_entry (QpinRegistry *registry, const char *name)
{
  return g_hash_table_lookup (registry->reserved, name);
}

static void
unreserve (QpinRegistry *registry, const char *name)
{
  g_autoptr (GError) error = NULL;

  if (!qpin_placer_remove_vm (registry->placer, name, &error))
    g_warning ("%s", error->message);
  g_hash_table_remove (registry->reserved, name);
}

/**
 * qpin_registry_unreserve_vm:
 *
 * @vm is back: the CPUs held for it are its own to adopt (or free).
 */
void
qpin_registry_unreserve_vm (QpinRegistry *registry, QpinVm *vm)
{
  GHashTableIter iter;
  gpointer name, value;

  g_hash_table_iter_init (&iter, registry->reserved);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      const QpinLedgerEntry *e = value;
      g_autofree char *key = NULL;

      if (vm->peer == NULL || e->pid != vm->peer->pid || e->start_time != vm->peer->start_time)
        continue;
      key = g_strdup (name);
      unreserve (registry, key);
      return;
    }
}

/**
 * qpin_registry_drop_dead_reserved:
 *
 * Frees the CPUs held for VMs whose process exited before coming back.
 * Returns: whether any were freed
 */
gboolean
qpin_registry_drop_dead_reserved (QpinRegistry *registry)
{
  g_autoptr (GPtrArray) dead = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer name, value;

  g_hash_table_iter_init (&iter, registry->reserved);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      const QpinLedgerEntry *e = value;
      g_autofree char *cpus = NULL;

      if (entry_is_current (registry, e))
        continue;
      cpus = qpin_cpuset_format (&e->cpus);
      g_message ("vm '%s' (pid %d) exited before it came back: cpus %s are free", e->key, e->pid,
                 cpus);
      g_ptr_array_add (dead, g_strdup (name));
    }
  for (guint i = 0; i < dead->len; i++)
    unreserve (registry, g_ptr_array_index (dead, i));
  return dead->len > 0;
}

/**
 * qpin_registry_readopt_reserved:
 * @placer: a new placer, about to replace the registry's
 *
 * Carries the CPUs held for VMs not back yet over to @placer (after a
 * host CPU event); those it cannot hold any more are let go.
 */
void
qpin_registry_readopt_reserved (QpinRegistry *registry, QpinPlacer *placer)
{
  const QpinPlan *plan = qpin_placer_get_plan (registry->placer);
  g_autoptr (GPtrArray) lost = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer name, value;

  g_hash_table_iter_init (&iter, registry->reserved);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      const QpinPlanVm *pv = qpin_plan_find_vm (plan, name);
      const QpinLedgerEntry *e = value;
      g_autoptr (GError) error = NULL;

      if (pv && qpin_placer_adopt (placer, pv, &error))
        continue;
      g_message ("cpus of vm '%s' (pid %d) no longer held after the host change: %s", e->key,
                 e->pid, error ? error->message : "not in the plan");
      g_ptr_array_add (lost, g_strdup (name));
    }
  for (guint i = 0; i < lost->len; i++)
    g_hash_table_remove (registry->reserved, g_ptr_array_index (lost, i));
}
