/* qpin-registry.c: discover, place, pin, verify, keep pinned
 *
 * Per VM:  discover (QMP + /proc)  ->  settle: classify, place or sync the
 * plan, apply the pins  ->  wait for an event, the reconcile timer or a
 * rescan request  ->  discover ...  A discovery that is asked for while
 * one runs is remembered and run once after it.  Every callback holds a
 * reference on its VM; a VM that is gone ignores late answers.
 */
#define G_LOG_DOMAIN "qpin"

#include "qpin-registry.h"

#include <malloc.h>

#include "qpin-effects.h"
#include "qpin-json.h"
#include "qpin-ledger-file.h"
#include "qpin-log-limit.h"
#include "qpin-peer.h"
#include "qpin-pin.h"
#include "qpin-proc-events.h"
#include "qpin-proc.h"
#include "qpin-qmp-types.h"
#include "qpin-text.h"
#include "qpin-standby.h"
#include "qpin-topology-reader.h"
#include "qpin-uevents.h"
#include "qpin-vm-threads.h"

/* Per thread, so the sets are packed: a whole QpinCpuset is 1 KiB. */
typedef struct {
  QpinCpusetPacked planned; /* empty when the plan has nothing for it */
  QpinCpusetPacked actual;  /* the kernel's affinity after our last look */
  gint cpu;
  gboolean applied; /* actual == planned, verified */
  gboolean drift;   /* found changed by someone else (enforce=report) */
  char *error;
} ThreadState;

struct _QpinVm {
  gint ref;
  QpinRegistry *registry; /* NULL once gone */
  QpinQmpClient *client;
  gulong closed_id, event_id;
  GPid pid;
  char *qemu_name; /* -name, NULL if unset */
  char *key;       /* unique name in the ledger */
  QpinVmState state;
  char *error;
  gboolean named;  /* query-name answered */
  gboolean placed; /* in the placer */
  gboolean shared_vcpu_thread;
  gboolean untouchable;  /* EPERM: never touched again */
  gboolean holding_main; /* qpin hotplug has moved the main thread on purpose */
  char *migrated;        /* memory=migrate: the nodes the pages were last moved to */
  char *memory;          /* what memory=migrate did, for status */
  QpinCpuset *confined;  /* what its cgroup cpuset allows, once a pin was refused */

  /* discovery in flight */
  guint pending;
  gboolean again;
  GPtrArray *cpus;      /* QpinQmpCpu */
  GPtrArray *iothreads; /* QpinQmpIothread */
  GError *query_error;

  GPtrArray *threads; /* QpinVmThread */
  GArray *states;     /* ThreadState, parallel to threads */
  GHashTable *logged; /* refusal messages already logged */

  QpinPeer *peer;          /* the process instance; NULL if it could not be pinned down */
  QpinLogLimit *log_limit; /* the lines this peer may cause */
  gint64 discovered_us;    /* when the last discovery started */
  guint soon_id;           /* a coalesced discovery, see vm_discover_soon() */
};

/* Refusal messages remembered per VM, so each is said once: a peer that
 * invents new ones forever is bounded by this and the log limit. */
#define LOGGED_MAX 256
/* Events and thread churn a peer causes at will start at most one
 * discovery per this many ms; the rest coalesce into it. */
#define DISCOVER_GAP_MS 100

struct _QpinRegistry {
  QpinTopology *topo;
  QpinConfig *config;
  QpinPlacer *placer;
  QpinRegistryOptions options;
  GPtrArray *vms;         /* QpinVm, live ones */
  QpinStandby *standby;   /* monitors held but not managed: second ones, refused ones */
  QpinLogLimit *refusals; /* the lines refused monitors cause, all of them together */
  gboolean held;          /* placement deferred: see qpin_registry_hold() */
  QpinProcEvents *events; /* thread creation/exit in the VMs, if available */
  QpinUevents *uevents;   /* host CPUs offline/online, if watched */
  char *host_change;      /* the last CPU hotplug, while its aftermath is re-verified */
  char *ledger_path;      /* where the held CPUs are kept for a restart, or NULL */
  char *ledger_saved;     /* what was written there last */
  QpinLedgerFile *before; /* the ledger file the previous run left */
  guint recheck, rechecks_left;
  guint timer;
  QpinRegistryHook settled, gone;
  gpointer hook_data;
};

static void vm_discover (QpinVm *vm);
static void vm_discover_soon (QpinVm *vm);
static char *unique_key (QpinRegistry *registry, const char *wanted, GPid pid);

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

static void
clear_states (GArray *states)
{
  for (guint i = 0; states && i < states->len; i++)
    {
      ThreadState *st = &g_array_index (states, ThreadState, i);

      g_free (st->error);
      qpin_cpuset_packed_clear (&st->planned);
      qpin_cpuset_packed_clear (&st->actual);
    }
}

static QpinVm *
vm_ref (QpinVm *vm)
{
  vm->ref++;
  return vm;
}

static void
vm_unref (QpinVm *vm)
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
  clear_states (vm->states);
  g_clear_pointer (&vm->states, g_array_unref);
  g_clear_pointer (&vm->logged, g_hash_table_unref);
  g_clear_pointer (&vm->peer, qpin_peer_free);
  g_clear_pointer (&vm->log_limit, qpin_log_limit_free);
  g_free (vm);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinVm, vm_unref)

static void
vm_set_error (QpinVm *vm, QpinVmState state, const char *message)
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
static void
update_watched_pids (QpinRegistry *registry)
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

static void save_ledger (QpinRegistry *registry);
static void make_whole_all (QpinRegistry *registry, const char *why);

/* The monitor of @vm closed: a second monitor of the same, still
 * running QEMU carries on as the VM. */
static void
take_over (QpinRegistry *registry, QpinVm *vm)
{
  g_autoptr (QpinQmpClient) client = NULL;

  if (vm->peer == NULL || !qpin_peer_is_current (vm->peer, NULL)
      || !(client = qpin_standby_take (registry->standby, vm->peer)))
    return;
  g_message ("vm '%s' (pid %d): its standby monitor '%s' takes over", vm->key, vm->pid,
             qpin_qmp_client_get_label (client));
  qpin_registry_add (registry, client, 0);
}

/* The VM left (@why), or qpin lets go of it (%NULL): free its CPUs at
 * once, tell the owner, forget it.  Its pins stay as they are. */
static void
vm_gone (QpinVm *vm, const char *why)
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
  if (vm->placed && !qpin_placer_remove_vm (registry->placer, vm->key, &error))
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
  update_watched_pids (registry);
  if (why == NULL)
    {
      /* qpin lets go: the ledger file stays for a restart to adopt them */
      malloc_trim (0);
      return;
    }
  take_over (registry, vm);
  make_whole_all (registry, "now that a VM left its CPUs");
  save_ledger (registry);
  /* what a peer made qpin allocate goes back to the system, not just to malloc */
  malloc_trim (0);
}

static void
on_closed (QpinQmpClient *client, const GError *error, gpointer user_data)
{
  QpinVm *vm = user_data;
  g_autoptr (QpinVm) keep = NULL;

  keep = vm_ref (vm);
  vm_gone (vm, error->message);
}

static void
on_event (QpinQmpClient *client, const char *name, JsonObject *data, gpointer user_data)
{
  QpinVm *vm = user_data;

  /* 7.2 emits DEVICE_DELETED only for .../cpuN/lapic after a CPU unplug:
   * any device removal may have been a vCPU, so look again */
  if (g_str_equal (name, "DEVICE_DELETED") || g_str_equal (name, "ACPI_DEVICE_OST"))
    vm_discover_soon (vm);
}

static const QpinPlanVm *
plan_of (QpinVm *vm)
{
  return qpin_plan_find_vm (qpin_placer_get_plan (vm->registry->placer), vm->key);
}

/* What the plan says for thread @t: "other" threads follow the emulator;
 * with single-threaded TCG every vCPU entry is the one planned vCPU. */
static gboolean
planned_cpus (QpinVm *vm, const QpinPlanVm *plan, const QpinVmThread *t, QpinCpuset *out)
{
  QpinThreadRole role = t->role == QPIN_ROLE_OTHER ? QPIN_ROLE_EMULATOR : t->role;
  guint index = t->role == QPIN_ROLE_OTHER || (t->role == QPIN_ROLE_VCPU && vm->shared_vcpu_thread)
                  ? 0
                  : (guint) t->index;
  QpinPlanThread *pt = qpin_plan_vm_find_thread ((QpinPlanVm *) plan, role, index);

  if (pt == NULL)
    return FALSE;
  *out = pt->cpus;
  return TRUE;
}

static QpinThreadSpec
spec_of (const QpinVmThread *t)
{
  QpinThreadSpec spec = qpin_thread_spec_vcpu ((guint) t->index);

  spec.role = t->role;
  spec.tid = t->tid;
  spec.socket = (gint) t->socket_id;
  spec.die = (gint) t->die_id;
  spec.cluster = (gint) t->cluster_id;
  spec.core = (gint) t->core_id;
  spec.thread = (gint) t->thread;
  spec.node = (gint) t->node_id;
  return spec;
}

static QpinRequest *
request_of (QpinVm *vm)
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

static gboolean make_whole (QpinVm *vm, const char *why);

/* The previous run's ledger says @cpu was another VM's, which still runs:
 * this VM's vCPU only floated there (degraded). */
static gboolean
held_by_another (QpinVm *vm, guint cpu)
{
  const QpinLedgerEntry *owner = qpin_ledger_file_owner (vm->registry->before, cpu);
  g_autofree char *proc = NULL;

  if (owner == NULL || owner->pid == vm->pid)
    return FALSE;
  proc = g_strdup_printf ("/proc/%d", owner->pid);
  return g_file_test (proc, G_FILE_TEST_EXISTS);
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

/* Keeps the CPUs each VM's vCPUs hold for themselves in the ledger file,
 * when they changed.  Not while held: the previous run's file is still
 * to be read back by the adoptions. */
static void
save_ledger (QpinRegistry *registry)
{
  g_autoptr (QpinLedgerFile) ledger = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  const QpinPlan *plan;

  if (registry->ledger_path == NULL || registry->held || registry->options.dry_run)
    return;
  ledger = qpin_ledger_file_new ();
  plan = qpin_placer_get_plan (registry->placer);
  for (guint i = 0; i < plan->vms->len; i++)
    {
      const QpinPlanVm *pv = g_ptr_array_index (plan->vms, i);
      QpinCpuset cpus;

      qpin_cpuset_clear_all (&cpus);
      for (guint j = 0; j < pv->threads->len; j++)
        {
          const QpinPlanThread *pt = &g_array_index (pv->threads, QpinPlanThread, j);
          if (pt->exclusive && pt->spec.role == QPIN_ROLE_VCPU)
            qpin_cpuset_or (&cpus, &pt->cpus);
        }
      qpin_ledger_file_add (ledger, (GPid) pv->pid, pv->name, &cpus);
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

/* A vCPU found on one CPU no other vCPU of the VM uses is taken over as
 * its own; any other (several CPUs, or one it shares: degraded when qpin
 * stopped) floats, and the VM is degraded.  FALSE: not a running pin. */
static gboolean
adopt_vcpu (QpinVm *vm, QpinPlanThread *pt, QpinCpuset *seen, GString *floats)
{
  if (qpin_cpuset_count (&pt->cpus) == 1 && !qpin_cpuset_intersects (&pt->cpus, seen)
      && !held_by_another (vm, (guint) qpin_cpuset_first (&pt->cpus)))
    {
      qpin_cpuset_or (seen, &pt->cpus);
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
static gboolean
try_adopt (QpinVm *vm, const QpinPolicy *policy)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPlanVm) pv = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) floats = g_string_new (NULL);
  QpinCpuset seen, nodes, floating;
  guint vcpus = 0;

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
      const QpinCpuset *actual = &pt.cpus;

      if (t->role == QPIN_ROLE_OTHER)
        continue;
      qpin_cpuset_unpack (&st->actual, &pt.cpus);
      if (t->role == QPIN_ROLE_VCPU && !adopt_vcpu (vm, &pt, &seen, floats))
        qpin_cpuset_or (&floating, actual);
      else if (t->role == QPIN_ROLE_VCPU)
        vcpus++;
      else if (qpin_cpuset_count (actual) == 1
               && (t->role == QPIN_ROLE_EMULATOR ? policy->emulator : policy->iothreads)
                    == QPIN_AUX_ISOLATE)
        {
          /* an isolated emulator or iothread owns its CPU too */
          if (qpin_cpuset_intersects (actual, &seen))
            return FALSE;
          qpin_cpuset_or (&seen, actual);
          pt.exclusive = TRUE;
        }
      g_array_append_val (pv->threads, pt);
    }
  /* no vCPU on a CPU of its own: a VM never pinned, unless the ledger
   * knew it (degraded, every vCPU floating) */
  if (vcpus == 0 && !in_ledger (vm))
    return FALSE;
  pv->held = seen;
  qpin_topology_nodes_of (registry->topo, vcpus ? &seen : &floating, &nodes);
  pv->mem_nodes = nodes;
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
static QpinPolicy *
policy_for_vm (QpinVm *vm, GError **error)
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
  QpinPlanVm *plan = qpin_plan_find_vm (qpin_placer_get_plan (vm->registry->placer), vm->key);
  g_autofree char *cpus = NULL;

  if (vm->confined == NULL || plan == NULL)
    return;
  cpus = qpin_cpuset_format (vm->confined);
  qpin_plan_vm_add_note (plan, "its cgroup cpuset allows only cpus %s: planned inside them", cpus);
}

static gboolean
place (QpinVm *vm, GError **error)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPolicy) policy = NULL;
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);

  policy = policy_for_vm (vm, error);
  if (policy == NULL || !qpin_policy_check (policy, registry->topo, vm->key, error))
    return FALSE;
  if (try_adopt (vm, policy))
    return TRUE;
  g_ptr_array_add (requests, request_of (vm));
  g_ptr_array_add (policies, g_steal_pointer (&policy));
  if (!qpin_placer_place (registry->placer, requests, policies, error))
    return FALSE;
  note_confined (vm);
  return TRUE;
}

/* The VM is placed; bring the plan in line with the threads it has now
 * (hot-added or removed vCPUs, new iothreads) without moving the rest. */
static void
sync_plan (QpinVm *vm)
{
  QpinRegistry *registry = vm->registry;
  const QpinPlanVm *plan = plan_of (vm);
  g_autoptr (GPtrArray) gone = g_ptr_array_new ();

  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      QpinThreadSpec spec = spec_of (t);
      g_autoptr (GError) error = NULL;

      if (t->role == QPIN_ROLE_OTHER || (t->role == QPIN_ROLE_VCPU && vm->shared_vcpu_thread))
        continue;
      if (qpin_plan_vm_find_thread ((QpinPlanVm *) plan, t->role, (guint) t->index))
        continue;
      if (qpin_placer_add_thread (registry->placer, vm->key, &spec, &error))
        g_message ("vm '%s': placed new %s %d (tid %d)", vm->key,
                   qpin_thread_role_to_string (t->role), t->index, t->tid);
      else if (qpin_placer_note_waiting (registry->placer, vm->key, &spec, error->message))
        g_warning ("vm '%s': cannot place new %s %d: %s", vm->key,
                   qpin_thread_role_to_string (t->role), t->index, error->message);
      plan = plan_of (vm);
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

/* A thread that was pinned and verified and now has another affinity was
 * moved by someone else: drift.  enforce decides what happens to it.
 * Returns TRUE when it is to be pinned back. */
static gboolean
handle_drift (QpinVm *vm, const QpinVmThread *t, ThreadState *st, const QpinCpuset *planned)
{
  QpinEnforce enforce = vm->registry->options.enforce;
  QpinCpuset actual;
  g_autofree char *had = NULL;
  g_autofree char *want = qpin_cpuset_format (planned);

  qpin_cpuset_unpack (&st->actual, &actual);
  had = qpin_cpuset_format (&actual);

  if (enforce == QPIN_ENFORCE_REPAIR && vm->registry->host_change)
    {
      g_message ("vm '%s': %s %d (tid %d) had '%s': the kernel changed it after %s; re-pinning "
                 "to '%s'",
                 vm->key, qpin_thread_role_to_string (t->role), t->index, t->tid, had,
                 vm->registry->host_change, want);
      return TRUE;
    }
  if (enforce == QPIN_ENFORCE_REPAIR)
    {
      g_message ("vm '%s': drift: %s %d (tid %d) had '%s', repairing to '%s'", vm->key,
                 qpin_thread_role_to_string (t->role), t->index, t->tid, had, want);
      return TRUE;
    }
  if (enforce == QPIN_ENFORCE_REPORT && !st->drift)
    g_message ("vm '%s': drift: %s %d (tid %d) has '%s', planned '%s' (enforce=report)", vm->key,
               qpin_thread_role_to_string (t->role), t->index, t->tid, had, want);
  st->drift = enforce == QPIN_ENFORCE_REPORT;
  return FALSE;
}

/* sched for the vCPU threads, and memory=migrate when the VM's memory
 * nodes changed.  Returns the number of threads that failed. */
static guint
apply_effects (QpinVm *vm, const QpinPlanVm *plan)
{
  const QpinPolicy *policy = plan->policy;
  guint failed = 0, scheduled = 0;

  for (guint i = 0; policy->sched != QPIN_SCHED_OTHER && i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      ThreadState *st = &g_array_index (vm->states, ThreadState, i);
      g_autoptr (GError) error = NULL;

      if (t->role != QPIN_ROLE_VCPU || st->error)
        continue;
      if (qpin_effects_set_sched (vm->pid, t->tid, policy->sched, policy->sched_priority, &error))
        {
          scheduled++;
          continue;
        }
      st->error = g_strdup (error->message);
      st->applied = FALSE;
      failed++;
    }
  if (scheduled)
    {
      g_autofree char *sched = qpin_policy_get (policy, "sched");
      g_info ("vm '%s': %u vCPU threads scheduled %s", vm->key, scheduled, sched);
    }
  if (policy->memory == QPIN_MEMORY_MIGRATE)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *nodes = qpin_cpuset_format (&plan->mem_nodes);
      int unmoved;

      if (g_strcmp0 (vm->migrated, nodes) == 0)
        return failed;

      g_free (vm->memory);
      if (qpin_effects_migrate_memory (vm->pid, &plan->mem_nodes, &unmoved, &error))
        {
          g_free (vm->migrated);
          vm->migrated = g_strdup (nodes);
          vm->memory
            = g_strdup_printf ("migrated to node(s) %s, %d page(s) not moved", nodes, unmoved);
          g_message ("vm '%s': memory %s", vm->key, vm->memory);
        }
      else
        {
          vm->memory = g_strdup (error->message);
          g_warning ("vm '%s': %s", vm->key, error->message);
        }
    }
  return failed;
}

static void replace (QpinVm *vm, QpinPolicy *policy, const char *why);

/* The kernel refused a pin of thread @t (EINVAL, or it kept fewer CPUs):
 * its cgroup cpuset forbids some of them.  Learns what it allows; TRUE
 * when that narrows the VM further, so it is to be re-planned. */
static gboolean
confine (QpinVm *vm, const QpinVmThread *t)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *list = NULL;
  QpinCpuset allowed;

  if (!qpin_pin_allowed (vm->pid, t->tid, &allowed, &error))
    {
      g_warning ("vm '%s': cannot tell which CPUs %s %d (tid %d) may use: %s", vm->key,
                 qpin_thread_role_to_string (t->role), t->index, t->tid, error->message);
      return FALSE;
    }
  if (vm->confined && qpin_cpuset_is_subset (vm->confined, &allowed))
    return FALSE; /* nothing new: planned inside it already */
  if (vm->confined)
    qpin_cpuset_and (&allowed, vm->confined);
  g_free (vm->confined);
  vm->confined = g_memdup2 (&allowed, sizeof allowed);
  list = qpin_cpuset_format (&allowed);
  g_message ("vm '%s': %s %d (tid %d) may only use cpus %s (its cgroup cpuset): re-planning "
             "the VM inside them",
             vm->key, qpin_thread_role_to_string (t->role), t->index, t->tid, list);
  return TRUE;
}

/* Pin every thread to its plan, verify, and note what failed.  A thread
 * already where it belongs is not touched. */
static void
apply (QpinVm *vm)
{
  QpinRegistry *registry = vm->registry;
  const QpinPlanVm *plan = plan_of (vm);
  guint pinned = 0, failed = 0, moved = 0, changed = 0;
  gboolean replan = FALSE;

  /* only threads of the process instance the VM is: settle() ends a VM
   * whose pid was reused, so look again before pinning anything */
  if (vm->peer && !qpin_peer_is_current (vm->peer, NULL))
    {
      vm_discover_soon (vm);
      return;
    }
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      ThreadState *st = &g_array_index (vm->states, ThreadState, i);
      g_autoptr (GError) error = NULL;
      g_autofree char *want = NULL;
      QpinCpuset planned, actual;
      gboolean was_pinned, ok;

      g_clear_pointer (&st->error, g_free);
      /* an empty set would be refused by the kernel (EINVAL) anyway */
      if (!planned_cpus (vm, plan, t, &planned) || qpin_cpuset_is_empty (&planned))
        {
          qpin_cpuset_packed_clear (&st->planned);
          st->applied = FALSE;
          st->error = g_strdup ("the plan has no CPU for it");
          failed++;
          continue;
        }
      /* during qpin hotplug the main thread sits on the newcomer's CPU so
       * the new vCPU thread inherits it: not drift, leave it */
      if (vm->holding_main && t->role == QPIN_ROLE_EMULATOR)
        {
          qpin_cpuset_pack (&st->planned, &planned);
          st->applied = TRUE;
          pinned++;
          continue;
        }
      if (registry->options.dry_run)
        {
          /* nothing is pinned: the plan beside the kernel's affinity */
          changed += !qpin_cpuset_packed_equal (&st->planned, &planned);
          qpin_cpuset_pack (&st->planned, &planned);
          st->applied = FALSE;
          pinned++;
          continue;
        }
      was_pinned = st->applied && qpin_cpuset_packed_equal (&st->planned, &planned);
      qpin_cpuset_pack (&st->planned, &planned);
      st->applied = FALSE;
      if (qpin_cpuset_packed_equal (&st->actual, &planned))
        {
          st->applied = TRUE;
          st->drift = FALSE;
          pinned++;
          continue;
        }
      if (was_pinned && !handle_drift (vm, t, st, &planned))
        {
          st->applied = TRUE; /* pinned as planned once; left as found */
          pinned++;
          continue;
        }
      want = qpin_cpuset_format (&planned);
      qpin_cpuset_unpack (&st->actual, &actual);
      ok = qpin_pin_thread (vm->pid, t->tid, &planned, &actual, &error);
      qpin_cpuset_pack (&st->actual, &actual);
      if (ok)
        {
          g_info ("vm '%s': %s %d (tid %d) -> %s", vm->key, qpin_thread_role_to_string (t->role),
                  t->index, t->tid, want);
          st->applied = TRUE;
          st->drift = FALSE;
          pinned++;
          moved++;
          continue;
        }
      st->error = g_strdup (error->message);
      failed++;
      if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_PERMISSION))
        {
          vm->untouchable = TRUE;
          vm_set_error (vm, QPIN_VM_FAILED,
                        "permission denied setting CPU affinity: run qpin as root or with "
                        "CAP_SYS_NICE; not touching this VM again");
          return;
        }
      if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE))
        vm->again = TRUE; /* the thread list changed under us: look again */
      if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_INVALID))
        replan |= confine (vm, t);
    }
  if (replan)
    {
      g_autoptr (GError) error = NULL;
      QpinPolicy *policy = policy_for_vm (vm, &error);

      if (policy != NULL)
        {
          replace (vm, policy, "inside its cgroup cpuset");
          return;
        }
      g_warning ("vm '%s': %s", vm->key, error->message);
    }
  if (registry->options.dry_run)
    {
      if (changed)
        g_message ("vm '%s' (pid %d): planned %u of %u threads, pinned none [dry run]", vm->key,
                   vm->pid, pinned, pinned + failed);
      vm_set_error (vm, failed ? QPIN_VM_DEGRADED : QPIN_VM_PLANNED,
                    failed ? "the plan has no CPU for some threads" : NULL);
      return;
    }
  failed += apply_effects (vm, plan);
  if (moved)
    g_message ("vm '%s' (pid %d): pinned %u of %u threads (%u moved%s%s)", vm->key, vm->pid, pinned,
               pinned + failed, moved, registry->host_change ? " after " : "",
               registry->host_change ? registry->host_change : "");
  if (failed)
    vm_set_error (vm, QPIN_VM_DEGRADED, "some threads could not be pinned as planned");
  else
    vm_set_error (vm, QPIN_VM_PINNED, NULL);
  save_ledger (registry);
}

/* The kernel's affinity and last CPU of thread @t, now.  Returns TRUE
 * when the affinity is not the one recorded in @st. */
static gboolean
read_kernel (QpinVm *vm, const QpinVmThread *t, ThreadState *st)
{
  QpinCpuset actual;
  gboolean same;

  st->cpu = qpin_proc_last_cpu (vm->pid, t->tid);
  if (!qpin_proc_get_affinity (t->tid, &actual, NULL))
    qpin_cpuset_clear_all (&actual);
  same = qpin_cpuset_packed_equal (&st->actual, &actual);
  if (!same)
    qpin_cpuset_pack (&st->actual, &actual);
  return !same;
}

/* Carry the last known plan and verification over to the new snapshot,
 * so a reconcile can tell drift from a first pin.  Only the affinity and
 * the last CPU are read for each thread: this runs on every change. */
static GArray *
read_states (QpinVm *vm, GPtrArray *threads)
{
  GArray *states = g_array_sized_new (FALSE, TRUE, sizeof (ThreadState), threads->len);
  g_autoptr (GHashTable) old = g_hash_table_new (NULL, NULL);

  for (guint j = 0; vm->threads && j < vm->threads->len; j++)
    g_hash_table_insert (old, GINT_TO_POINTER (((QpinVmThread *) vm->threads->pdata[j])->tid),
                         GUINT_TO_POINTER (j + 1));
  g_array_set_size (states, threads->len);
  for (guint i = 0; i < threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (threads, i);
      ThreadState *st = &g_array_index (states, ThreadState, i);
      guint j = GPOINTER_TO_UINT (g_hash_table_lookup (old, GINT_TO_POINTER (t->tid)));

      read_kernel (vm, t, st);
      if (j > 0)
        {
          const QpinVmThread *prev = g_ptr_array_index (vm->threads, j - 1);
          ThreadState *ost = &g_array_index (vm->states, ThreadState, j - 1);

          if (prev->role != t->role || prev->index != t->index)
            continue;
          /* moved over: the old states are freed after */
          st->planned = ost->planned;
          memset (&ost->planned, 0, sizeof ost->planned);
          st->applied = ost->applied;
          st->drift = ost->drift;
        }
    }
  return states;
}

static void
settle (QpinVm *vm)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) tids = NULL;
  g_autoptr (GPtrArray) refused = NULL;
  g_autoptr (GPtrArray) threads = NULL;

  if (vm->peer && !qpin_peer_is_current (vm->peer, &error))
    {
      vm_gone (vm, error->message);
      return;
    }
  if (vm->untouchable)
    return;
  if (vm->query_error)
    {
      g_autofree char *message = g_strdup_printf ("QMP query failed: %s", vm->query_error->message);
      vm_set_error (vm, QPIN_VM_FAILED, message);
      return;
    }
  tids = qpin_proc_list_tasks (vm->pid, &error);
  if (tids == NULL)
    {
      vm_gone (vm, error->message);
      return;
    }
  vm->shared_vcpu_thread = qpin_qmp_cpus_share_thread (vm->cpus);
  threads = qpin_vm_threads_classify (vm->pid, vm->cpus, vm->iothreads, tids, &refused);
  if (refused->len > 0)
    {
      /* a peer that lies about its threads is trusted with nothing */
      for (guint i = 0; i < refused->len; i++)
        if (g_hash_table_size (vm->logged) < LOGGED_MAX
            && g_hash_table_add (vm->logged, g_strdup (g_ptr_array_index (refused, i)))
            && qpin_log_limit_allow (vm->log_limit))
          g_warning ("vm '%s' (pid %d): refused: %s", vm->key, vm->pid,
                     (const char *) g_ptr_array_index (refused, i));
      vm_set_error (vm, QPIN_VM_FAILED,
                    "the QMP peer reports threads that are not its own; "
                    "nothing is pinned until it reports sane data");
      return;
    }

  {
    GArray *states = read_states (vm, threads);
    clear_states (vm->states);
    g_clear_pointer (&vm->states, g_array_unref);
    g_clear_pointer (&vm->threads, g_ptr_array_unref);
    vm->threads = g_steal_pointer (&threads);
    vm->states = states;
  }

  if (!vm->placed && registry->held)
    return; /* placed together with the others on release */
  if (!vm->placed)
    {
      if (!place (vm, &error))
        {
          vm_set_error (vm, QPIN_VM_FAILED, error->message);
          return;
        }
      vm->placed = TRUE;
    }
  else
    sync_plan (vm);

  apply (vm);
}

static void
notify_settled (QpinRegistry *registry, QpinVm *vm)
{
  if (vm->registry && registry->settled)
    registry->settled (registry, vm, registry->hook_data);
}

static void
finish_discovery (QpinVm *vm)
{
  QpinRegistry *registry = vm->registry;

  if (registry != NULL && !qpin_qmp_client_is_closed (vm->client))
    {
      settle (vm);
      if (!registry->held || vm->placed)
        notify_settled (registry, vm);
    }
  g_clear_pointer (&vm->cpus, g_ptr_array_unref);
  g_clear_pointer (&vm->iothreads, g_ptr_array_unref);
  g_clear_error (&vm->query_error);
  if (vm->again && vm->registry)
    {
      vm->again = FALSE;
      vm_discover_soon (vm);
    }
}

/* The summary of held-back lines names the VM by its key. */
static void
log_limit_name (QpinVm *vm)
{
  g_autofree char *who = g_strdup_printf ("vm '%s' (pid %d)", vm->key, vm->pid);

  qpin_log_limit_set_who (vm->log_limit, who);
}

/* "pid-N" and "NAME@PID" are qpin's own keys: a QEMU named so could take
 * another VM's key (and its place in the ledger).  Such a name, and an
 * empty one, count as no name. */
static void
check_name (QpinVm *vm, char **name)
{
  if (*name == NULL || (**name != '\0' && !qpin_peer_has_key_form (*name)))
    return;
  if (**name != '\0' && qpin_log_limit_allow (vm->log_limit))
    g_warning ("vm '%s' (pid %d): the QMP name '%s' has the form of qpin's own keys (pid-N, "
               "NAME@PID); ignored",
               vm->key, vm->pid, *name);
  g_clear_pointer (name, g_free);
}

typedef enum { QUERY_NAME, QUERY_CPUS, QUERY_IOTHREADS } QueryKind;

typedef struct {
  QpinVm *vm;
  QueryKind kind;
} Query;

static void
on_query (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree Query *q = user_data;
  g_autoptr (QpinVm) vm = q->vm;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);

  if (ret != NULL)
    switch (q->kind)
      {
      case QUERY_NAME:
        {
          g_autofree char *name = NULL;
          if (qpin_qmp_parse_name (ret, &name, &error) && vm->registry)
            {
              check_name (vm, &name);
              /* unique_key() reads every VM's key, this one's too: free it after */
              char *key = unique_key (vm->registry, name, vm->pid);

              vm->qemu_name = g_steal_pointer (&name);
              vm->named = TRUE;
              g_free (vm->key);
              vm->key = key;
              log_limit_name (vm);
            }
          break;
        }
      case QUERY_CPUS:
        vm->cpus = qpin_qmp_parse_cpus_fast (ret, &error);
        break;
      case QUERY_IOTHREADS:
        vm->iothreads = qpin_qmp_parse_iothreads (ret, &error);
        break;
      }
  if (error && vm->query_error == NULL)
    vm->query_error = g_steal_pointer (&error);
  if (--vm->pending == 0)
    finish_discovery (vm);
}

static void
query (QpinVm *vm, const char *command, QueryKind kind)
{
  Query *q = g_new0 (Query, 1);

  q->vm = vm_ref (vm);
  q->kind = kind;
  vm->pending++;
  qpin_qmp_client_execute_async (vm->client, command, NULL, vm->registry->options.timeout_ms, NULL,
                                 on_query, q);
}

static void
vm_discover (QpinVm *vm)
{
  if (vm->registry == NULL)
    return;
  if (vm->pending > 0)
    {
      vm->again = TRUE;
      return;
    }
  vm->discovered_us = g_get_monotonic_time ();
  /* the replies come back in this order; settle() runs after the last */
  if (!vm->named)
    query (vm, "query-name", QUERY_NAME);
  query (vm, "query-cpus-fast", QUERY_CPUS);
  query (vm, "query-iothreads", QUERY_IOTHREADS);
}

static gboolean
on_discover_soon (gpointer user_data)
{
  QpinVm *vm = user_data;

  vm->soon_id = 0;
  vm_discover (vm);
  return G_SOURCE_REMOVE;
}

/* A discovery for what a peer can cause at will (events, thread churn,
 * a discovery asked for while one ran): now if the last one started
 * DISCOVER_GAP_MS ago, otherwise one timer for all of them. */
static void
vm_discover_soon (QpinVm *vm)
{
  gint64 since_ms = (g_get_monotonic_time () - vm->discovered_us) / 1000;

  if (vm->registry == NULL || vm->soon_id)
    return;
  if (since_ms >= DISCOVER_GAP_MS)
    {
      vm_discover (vm);
      return;
    }
  vm->soon_id = g_timeout_add ((guint) (DISCOVER_GAP_MS - since_ms), on_discover_soon, vm);
}

static gboolean
on_reconcile (gpointer user_data)
{
  QpinRegistry *registry = user_data;

  for (guint i = 0; i < registry->vms->len; i++)
    vm_discover (g_ptr_array_index (registry->vms, i));
  return G_SOURCE_CONTINUE;
}

/**
 * qpin_registry_new:
 * @topo: (transfer full): the host topology
 * @config: (transfer full): the policies
 *
 * Returns: (transfer full): a registry, or %NULL when the configuration
 *   does not fit the host (the reason in @error)
 */
QpinRegistry *
qpin_registry_new (QpinTopology *topo, QpinConfig *config, const QpinRegistryOptions *options,
                   GError **error)
{
  g_autoptr (QpinTopology) owned_topo = topo;
  g_autoptr (QpinConfig) owned_config = config;
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
  registry->vms = g_ptr_array_new_with_free_func ((GDestroyNotify) vm_unref);
  registry->standby = qpin_standby_new ();
  registry->refusals = qpin_log_limit_new ();
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
  g_free (registry->host_change);
  g_free (registry->ledger_path);
  g_free (registry->ledger_saved);
  qpin_ledger_file_free (registry->before);
  registry->gone = NULL;
  while (registry->vms->len > 0)
    vm_gone (g_ptr_array_index (registry->vms, 0), NULL);
  g_ptr_array_unref (registry->vms);
  qpin_standby_free (registry->standby);
  qpin_log_limit_free (registry->refusals);
  qpin_proc_events_free (registry->events);
  qpin_uevents_free (registry->uevents);
  qpin_placer_free (registry->placer);
  qpin_config_free (registry->config);
  qpin_topology_free (registry->topo);
  g_free (registry);
}

static void
on_thread_event (GPid tgid, GPid tid, gboolean created, gpointer user_data)
{
  QpinRegistry *registry = user_data;

  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      /* a new thread may be a hot-added vCPU (QEMU sends no event for
       * those); an exited one may have been an unplugged vCPU */
      if (tid == 0 || vm->pid == tgid)
        vm_discover_soon (vm);
    }
}

/**
 * qpin_registry_watch_threads:
 *
 * Reacts to thread creation and exit in the managed QEMUs within
 * milliseconds, through the kernel's process events connector.  Without
 * it (not root, no CONFIG_PROC_EVENTS) hot-added vCPUs are found by the
 * reconcile timer; the error says why.
 */
gboolean
qpin_registry_watch_threads (QpinRegistry *registry, GError **error)
{
  if (registry->events)
    return TRUE;
  registry->events = qpin_proc_events_new (on_thread_event, registry, error);
  if (registry->events == NULL)
    return FALSE;
  update_watched_pids (registry);
  return TRUE;
}

/* Is @plan a dedicated VM with a vCPU that lost its own CPU (floats)? */
static gboolean
plan_degraded (const QpinPlanVm *plan)
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
static gboolean
make_whole (QpinVm *vm, const char *why)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPlanVm) old = qpin_plan_vm_copy (plan_of (vm));
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  g_autoptr (GError) error = NULL;
  QpinPolicy *policy = policy_for_vm (vm, &error);

  if (policy == NULL)
    {
      g_warning ("vm '%s': %s", vm->key, error->message);
      return FALSE;
    }
  qpin_placer_remove_vm (registry->placer, vm->key, NULL);
  g_ptr_array_add (requests, request_of (vm));
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
static void
make_whole_all (QpinRegistry *registry, const char *why)
{
  if (registry->held)
    return;
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);

      if (vm->placed && plan_degraded (plan_of (vm)) && make_whole (vm, why))
        vm_discover (vm);
    }
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
  g_autoptr (QpinTopology) topo = qpin_topology_read ("/", NULL, &error);
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
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autoptr (GError) local = NULL;

      if (!vm->placed)
        continue;
      if (!qpin_placer_adopt (placer, plan_of (vm), &local))
        {
          g_info ("vm '%s': placed again after the host change: %s", vm->key, local->message);
          vm->placed = FALSE;
          g_ptr_array_add (lost, vm);
        }
      else if (plan_degraded (plan_of (vm)))
        g_ptr_array_add (degraded, vm);
    }
  qpin_placer_free (registry->placer);
  qpin_topology_free (registry->topo);
  registry->placer = placer;
  registry->topo = g_steal_pointer (&topo);
  for (guint i = 0; i < lost->len; i++)
    vm_discover (g_ptr_array_index (lost, i));
  return degraded;
}

/* After a host CPU hotplug the kernel rewrites affinities on its own
 * (threads forced off an offline CPU, cpuset masks reset when one comes
 * back), some of it after the event reaches us: every thread of every
 * VM is looked at again now and a few times in the next seconds. */
#define HOST_RECHECK_MS 250
#define HOST_RECHECKS 4

static gboolean
on_host_recheck (gpointer user_data)
{
  QpinRegistry *registry = user_data;

  for (guint i = 0; i < registry->vms->len; i++)
    vm_discover (g_ptr_array_index (registry->vms, i));
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
  registry->rechecks_left = HOST_RECHECKS;
  if (registry->recheck == 0)
    registry->recheck = g_timeout_add (HOST_RECHECK_MS, on_host_recheck, registry);
  for (guint i = 0; i < registry->vms->len; i++)
    vm_discover (g_ptr_array_index (registry->vms, i));
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
        make_whole (g_ptr_array_index (degraded, i), why);
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
 * Reads what the previous run left in @path (for the adoptions) and
 * keeps it up to date from now on.  A file that cannot be read or parsed
 * is reported in @error and replaced; the adoptions then go by the
 * kernel's affinities alone.
 */
gboolean
qpin_registry_keep_ledger (QpinRegistry *registry, const char *path, GError **error)
{
  g_free (registry->ledger_path);
  registry->ledger_path = g_strdup (path);
  qpin_ledger_file_free (registry->before);
  registry->before = qpin_ledger_file_load (path, error);
  return registry->before != NULL;
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

      if (vm->registry && vm->placed && plan_degraded (plan_of (vm)))
        make_whole (vm, "at qpin start");
    }
  for (guint i = 0; i < waiting->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (waiting, i);

      if (vm->registry == NULL)
        continue;
      if (vm->placed)
        apply (vm);
      notify_settled (registry, vm);
    }
  save_ledger (registry);
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
  g_autoptr (GPtrArray) waiting = g_ptr_array_new_with_free_func ((GDestroyNotify) vm_unref);
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  g_autoptr (GPtrArray) batch = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;

  if (!registry->held)
    return;
  registry->held = FALSE;
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      if (!vm->placed && vm->threads != NULL && vm->state != QPIN_VM_FAILED)
        g_ptr_array_add (waiting, vm_ref (vm));
    }
  for (guint i = 0; i < waiting->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (waiting, i);
      g_autoptr (QpinPolicy) policy = policy_for_vm (vm, NULL);

      if (policy && try_adopt (vm, policy))
        vm->placed = TRUE;
      else if (policy)
        {
          g_ptr_array_add (requests, request_of (vm));
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
      if (vm->peer && !qpin_peer_is_current (vm->peer, &local))
        {
          vm_gone (vm, local->message);
          continue;
        }
      if (place (vm, &local))
        vm->placed = TRUE;
      else
        vm_set_error (vm, QPIN_VM_FAILED, local->message);
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

static char *
unique_key (QpinRegistry *registry, const char *wanted, GPid pid)
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
 * manage, go on without the pidfd when the kernel gives none. */
static gboolean
admit (QpinRegistry *registry, QpinQmpClient *client, GPid pid, QpinPeer **peer)
{
  g_autoptr (GError) error = NULL;
  const char *label = qpin_qmp_client_get_label (client);
  QpinVm *twin;

  *peer = qpin_peer_new_for_client (client, pid, &error);
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
 * main loop.  The registry tells a VM by its process instance (pidfd and
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
  log_limit_name (vm);
  vm->closed_id = g_signal_connect (client, "closed", G_CALLBACK (on_closed), vm);
  vm->event_id = g_signal_connect (client, "event", G_CALLBACK (on_event), vm);
  g_ptr_array_add (registry->vms, vm);
  update_watched_pids (registry);
  vm_discover (vm);
  return vm;
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

/* Is thread @i where its plan says, by the affinity last read? */
static gboolean
on_plan (QpinVm *vm, guint i)
{
  const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
  const ThreadState *st = &g_array_index (vm->states, ThreadState, i);
  QpinCpuset planned;

  if (vm->holding_main && t->role == QPIN_ROLE_EMULATOR)
    return TRUE; /* qpin hotplug moved it there on purpose */
  qpin_cpuset_unpack (&st->planned, &planned);
  return qpin_cpuset_packed_equal (&st->actual, &planned);
}

/* Status answers with the kernel's affinity at the moment it answers.  A
 * thread the kernel (or someone) moved off its verified pin since the
 * last look makes the VM degraded, says so, and is looked at again (and
 * repaired, with enforce=repair) at once. */
static void
verify_now (QpinVm *vm)
{
  guint off = 0;

  for (guint i = 0; vm->threads && i < vm->threads->len; i++)
    {
      ThreadState *st = &g_array_index (vm->states, ThreadState, i);

      read_kernel (vm, g_ptr_array_index (vm->threads, i), st);
      off += st->applied && !st->drift && !on_plan (vm, i);
    }
  if (off == 0 || vm->registry->options.dry_run || vm->registry->options.enforce == QPIN_ENFORCE_OFF
      || vm->state != QPIN_VM_PINNED)
    return;
  {
    g_autofree char *message
      = g_strdup_printf ("%u thread(s) found off their verified pins: looking again", off);
    vm_set_error (vm, QPIN_VM_DEGRADED, message);
  }
  vm_discover (vm);
}

/**
 * qpin_registry_verify:
 *
 * Reads the kernel's affinity and last CPU of every thread now, for an
 * answer that is true as it is given; a VM found off its verified pins
 * is degraded and looked at again.  qpin_registry_to_json() does this.
 */
void
qpin_registry_verify (QpinRegistry *registry)
{
  for (guint i = 0; i < registry->vms->len; i++)
    verify_now (g_ptr_array_index (registry->vms, i));
}

static void
vm_to_json (QpinVm *vm, JsonBuilder *b)
{
  const QpinPlanVm *plan = vm->placed ? plan_of (vm) : NULL;

  json_builder_begin_object (b);
  qpin_json_add_string (b, "name", vm->qemu_name);
  qpin_json_add_string (b, "key", vm->key);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, vm->pid);
  qpin_json_add_string (b, "state", qpin_vm_state_to_string (vm->state));
  qpin_json_add_string (b, "error", vm->error);
  qpin_json_add_string (b, "monitor", qpin_qmp_client_get_label (vm->client));
  if (vm->memory)
    qpin_json_add_string (b, "memory", vm->memory);
  if (plan)
    {
      qpin_json_add_cpuset (b, "memory_nodes", &plan->mem_nodes);
      json_builder_set_member_name (b, "notes");
      json_builder_begin_array (b);
      for (guint i = 0; i < plan->notes->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (plan->notes, i));
      json_builder_end_array (b);
    }
  json_builder_set_member_name (b, "threads");
  json_builder_begin_array (b);
  for (guint i = 0; vm->threads && i < vm->threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (vm->threads, i);
      const ThreadState *st = &g_array_index (vm->states, ThreadState, i);
      QpinCpuset planned, actual, nodes;

      json_builder_begin_object (b);
      qpin_json_add_string (b, "role", qpin_thread_role_to_string (t->role));
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, t->index);
      json_builder_set_member_name (b, "tid");
      json_builder_add_int_value (b, t->tid);
      qpin_cpuset_unpack (&st->planned, &planned);
      qpin_cpuset_unpack (&st->actual, &actual);
      qpin_json_add_cpuset (b, "cpus", &planned);
      qpin_topology_nodes_of (vm->registry->topo, &planned, &nodes);
      qpin_json_add_cpuset (b, "node", &nodes);
      qpin_json_add_cpuset (b, "actual", &actual);
      json_builder_set_member_name (b, "cpu");
      json_builder_add_int_value (b, st->cpu);
      json_builder_set_member_name (b, "applied");
      json_builder_add_boolean_value (b, st->applied && on_plan (vm, i));
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
 *   "cpus" (planned),"node","actual","cpu","applied","drift"}]}]}
 */
JsonNode *
qpin_registry_to_json (QpinRegistry *registry)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "vms");
  json_builder_begin_array (b);
  qpin_registry_verify (registry);
  for (guint i = 0; i < registry->vms->len; i++)
    vm_to_json (g_ptr_array_index (registry->vms, i), b);
  json_builder_end_array (b);
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
          g_autofree char *state = qpin_text_escape (
            st->applied                    ? (st->drift ? "drift" : "pinned")
            : st->error                    ? st->error
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
      plan = vm->placed ? plan_of (vm) : NULL;
      for (guint j = 0; plan && j < plan->notes->len; j++)
        {
          g_autofree char *note = qpin_text_escape (g_ptr_array_index (plan->notes, j));
          g_string_append_printf (out, "%-16s note: %s\n", key, note);
        }
    }
  return g_string_free (out, FALSE);
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
static void
replace (QpinVm *vm, QpinPolicy *policy, const char *why)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (QpinPlanVm) old = qpin_plan_vm_copy (plan_of (vm));
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  g_autoptr (GError) error = NULL;

  qpin_placer_remove_vm (registry->placer, vm->key, NULL);
  g_ptr_array_add (requests, request_of (vm));
  g_ptr_array_add (policies, policy);
  if (qpin_placer_place (registry->placer, requests, policies, &error))
    {
      g_message ("vm '%s': re-placed (%s)", vm->key, why);
      note_confined (vm);
      apply (vm);
      return;
    }
  qpin_placer_adopt (registry->placer, old, NULL);
  {
    g_autofree char *message = g_strdup_printf ("%s: the new policy does not fit (%s); "
                                                "kept the previous placement",
                                                why, error->message);
    vm_set_error (vm, QPIN_VM_DEGRADED, message);
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
            vm_discover (vm);
          continue;
        }
      policy = policy_for_vm (vm, NULL);
      if (policy && !policy_equal (policy, plan_of (vm)->policy))
        replace (vm, g_steal_pointer (&policy), "reload");
    }
  return TRUE;
}

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

static void
hotplug_free (Hotplug *h)
{
  vm_unref (h->vm);
  json_array_unref (h->done);
  g_free (h->device_id);
  g_free (h);
}

static void hotplug_next (GTask *task);

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

static gint
compare_slots (gconstpointer a, gconstpointer b)
{
  const QpinQmpHotpluggableCpu *x = *(QpinQmpHotpluggableCpu *const *) a;
  const QpinQmpHotpluggableCpu *y = *(QpinQmpHotpluggableCpu *const *) b;
  const gint64 kx[] = { x->socket_id, x->die_id, x->cluster_id, x->core_id, x->thread };
  const gint64 ky[] = { y->socket_id, y->die_id, y->cluster_id, y->core_id, y->thread };

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
    { "node-id", slot->node_id }, { "socket-id", slot->socket_id },
    { "die-id", slot->die_id },   { "cluster-id", slot->cluster_id },
    { "core-id", slot->core_id }, { "thread-id", slot->thread },
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
  if (!h->vm->registry->options.dry_run)
    qpin_pin_thread (h->vm->pid, h->vm->pid, &h->restore, NULL, NULL);
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
  spec.socket = (gint) slot->socket_id;
  spec.die = (gint) slot->die_id;
  spec.cluster = (gint) slot->cluster_id;
  spec.core = (gint) slot->core_id;
  spec.thread = (gint) slot->thread;
  spec.node = (gint) slot->node_id;
  if (!qpin_placer_add_thread (vm->registry->placer, vm->key, &spec, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  pt = qpin_plan_vm_find_thread ((QpinPlanVm *) plan_of (vm), QPIN_ROLE_VCPU, h->index);
  main_pt = qpin_plan_vm_find_thread ((QpinPlanVm *) plan_of (vm), QPIN_ROLE_EMULATOR, 0);
  if (main_pt)
    {
      h->restore = main_pt->cpus;
      h->restore_main = TRUE;
      vm->holding_main = TRUE;
      if (!vm->registry->options.dry_run)
        qpin_pin_thread (vm->pid, vm->pid, &pt->cpus, NULL, NULL);
    }
  g_free (h->device_id);
  h->device_id = g_strdup_printf ("qpin-cpu%u", h->index);
  cpus = qpin_cpuset_format (&pt->cpus);
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
      vm_discover (h->vm);
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
  h->vm = vm_ref (vm);
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
