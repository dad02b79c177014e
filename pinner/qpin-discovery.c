/* qpin-discovery.c: what a VM's threads are, and where they are now
 *
 * The discovery state machine: query-name (once), query-cpus-fast and
 * query-iothreads, then the host's task list and each thread's affinity;
 * settle() acts on the answer.  Events and thread churn a peer causes at
 * will are coalesced (DISCOVER_GAP_MS).  Also the read of the kernel's
 * affinities that status does before it answers (verify).
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include <string.h>

#include "qpin-qmp-types.h"

typedef enum { QUERY_NAME, QUERY_CPUS, QUERY_IOTHREADS } QueryKind;

typedef struct {
  QpinVm *vm;
  QueryKind kind;
} Query;

static void query (QpinVm *vm, const char *command, QueryKind kind);

/* The kernel's affinity and last CPU of thread @t, now.  Returns TRUE
 * when the affinity is not the one recorded in @st. */
static gboolean
read_kernel (QpinVm *vm, const QpinVmThread *t, ThreadState *st)
{
  QpinCpuset actual;
  gboolean same;

  qpin_host_read_task (vm->registry->host, vm->pid, t->tid, &actual, &st->cpu);
  same = qpin_cpuset_packed_equal (&st->actual, &actual);
  if (!same)
    qpin_cpuset_pack (&st->actual, &actual);
  return !same;
}

/* Carry the last known plan and verification over to the new snapshot,
 * so a reconcile can tell drift from a first pin.  Only the affinity and
 * the last CPU are read for each thread: this runs on every change.  For
 * a new thread (@born_only) only threads not seen before are read: ~20 us
 * each, 1.3 ms for 64 vCPUs otherwise, all before the newcomer is pinned;
 * the next full look (timer, status, events) reads the others. */
static GArray *
read_states (QpinVm *vm, GPtrArray *threads, gboolean born_only)
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
      const QpinVmThread *prev = j > 0 ? g_ptr_array_index (vm->threads, j - 1) : NULL;
      ThreadState *ost = j > 0 ? &g_array_index (vm->states, ThreadState, j - 1) : NULL;

      st->seen_us = qpin_vm_thread_seen (vm, t, ost);
      if (prev == NULL || prev->role != t->role || prev->index != t->index)
        {
          read_kernel (vm, t, st);
          continue;
        }
      /* moved over: the old states are freed after */
      if (born_only)
        {
          st->actual = ost->actual;
          memset (&ost->actual, 0, sizeof ost->actual);
          st->cpu = ost->cpu;
        }
      else
        read_kernel (vm, t, st);
      st->planned = ost->planned;
      memset (&ost->planned, 0, sizeof ost->planned);
      st->applied = ost->applied;
      st->drift = ost->drift;
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

  if (vm->peer && !qpin_host_is_current (registry->host, vm->peer, &error))
    {
      qpin_vm_gone (vm, error->message);
      return;
    }
  if (vm->untouchable)
    return;
  if (vm->query_error)
    {
      g_autofree char *message = g_strdup_printf ("QMP query failed: %s", vm->query_error->message);
      qpin_vm_set_error (vm, QPIN_VM_FAILED, message);
      return;
    }
  tids = qpin_host_list_tasks (registry->host, vm->pid, &error);
  if (tids == NULL)
    {
      qpin_vm_gone (vm, error->message);
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
      qpin_vm_set_error (vm, QPIN_VM_FAILED,
                         "the QMP peer reports threads that are not its own; "
                         "nothing is pinned until it reports sane data");
      return;
    }

  {
    GArray *states = read_states (vm, threads, vm->born_only);
    qpin_vm_clear_states (vm->states);
    g_clear_pointer (&vm->states, g_array_unref);
    g_clear_pointer (&vm->threads, g_ptr_array_unref);
    vm->threads = g_steal_pointer (&threads);
    vm->states = states;
  }

  if (!vm->placed && registry->held)
    return; /* placed together with the others on release */
  if (!vm->placed)
    {
      if (!qpin_vm_place (vm, &error))
        {
          qpin_vm_set_error (vm, QPIN_VM_FAILED, error->message);
          return;
        }
      vm->placed = TRUE;
    }
  else
    qpin_vm_sync_plan (vm);

  qpin_vm_apply (vm);
}

/* Calls the settled hook for @vm, unless it is gone. */
void
qpin_registry_notify_settled (QpinRegistry *registry, QpinVm *vm)
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
        qpin_registry_notify_settled (registry, vm);
    }
  g_clear_pointer (&vm->cpus, g_ptr_array_unref);
  g_clear_pointer (&vm->iothreads, g_ptr_array_unref);
  g_clear_error (&vm->query_error);
  vm->born_only = FALSE;
  vm->named_early = 0; /* QMP has spoken */
  if (vm->again && vm->registry)
    {
      gboolean now = vm->again_now;

      vm->again = vm->again_now = FALSE;
      if (now)
        qpin_vm_discover_born (vm);
      else
        qpin_vm_discover_soon (vm);
    }
}

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
              qpin_vm_check_name (vm, &name);
              /* unique_key() reads every VM's key, this one's too: free it after */
              char *key = qpin_registry_unique_key (vm->registry, name, vm->pid);

              vm->qemu_name = g_steal_pointer (&name);
              vm->named = TRUE;
              g_free (vm->key);
              vm->key = key;
              qpin_vm_name_log_limit (vm);
            }
          break;
        }
      case QUERY_CPUS:
        vm->cpus = qpin_qmp_parse_cpus_fast (ret, &error);
        /* a new vCPU is pinned now, not after query-iothreads */
        if (vm->cpus && vm->born_only && vm->registry)
          qpin_vm_pin_cpus_early (vm);
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

  q->vm = qpin_vm_ref (vm);
  q->kind = kind;
  vm->pending++;
  qpin_qmp_client_execute_async (vm->client, command, NULL, vm->registry->options.timeout_ms, NULL,
                                 on_query, q);
}

/* Starts a discovery of @vm now, or after the one in flight (which is
 * then a full one). */
static void
start_discovery (QpinVm *vm)
{
  if (vm->registry == NULL)
    return;
  if (vm->pending > 0)
    {
      vm->again = TRUE;
      vm->again_now = vm->born_next = FALSE; /* a full one wins */
      return;
    }
  vm->discovered_us = qpin_host_now_us (vm->registry->host);
  vm->born_only = vm->born_next;
  vm->born_next = FALSE;
  /* sent at once, without waiting for a reply; they come back in this
   * order; settle() runs after the last */
  if (!vm->named)
    query (vm, "query-name", QUERY_NAME);
  query (vm, "query-cpus-fast", QUERY_CPUS);
  query (vm, "query-iothreads", QUERY_IOTHREADS);
}

/* Starts a discovery of @vm now, or after the one in flight. */
void
qpin_vm_discover (QpinVm *vm)
{
  vm->born_next = FALSE;
  start_discovery (vm);
}

static gboolean
on_discover_soon (gpointer user_data)
{
  QpinVm *vm = user_data;

  vm->soon_id = 0;
  start_discovery (vm);
  return G_SOURCE_REMOVE;
}

static void
discover_soon (QpinVm *vm)
{
  gint64 since_ms;

  if (vm->registry == NULL || vm->soon_id)
    return;
  since_ms = (qpin_host_now_us (vm->registry->host) - vm->discovered_us) / 1000;
  if (since_ms >= DISCOVER_GAP_MS)
    {
      start_discovery (vm);
      return;
    }
  vm->soon_id = g_timeout_add ((guint) (DISCOVER_GAP_MS - since_ms), on_discover_soon, vm);
}

/* A discovery for what a peer can cause at will (events, thread churn,
 * a discovery asked for while one ran): now if the last one started
 * DISCOVER_GAP_MS ago, otherwise one timer for all of them. */
void
qpin_vm_discover_soon (QpinVm *vm)
{
  vm->born_next = FALSE;
  discover_soon (vm);
}

/* A discovery for a new thread of @vm: at once while the bucket has some
 * (a hot-added vCPU is pinned within milliseconds), after the one in
 * flight if there is one, else as qpin_vm_discover_soon().  Unless it
 * joins one for another cause, the kernel is read for the new threads
 * only, and a new vCPU is pinned as soon as query-cpus-fast names it. */
void
qpin_vm_discover_born (QpinVm *vm)
{
  gint64 now;

  if (vm->registry == NULL)
    return;
  now = qpin_host_now_us (vm->registry->host);
  if (vm->tokens_us == 0)
    vm->tokens = DISCOVER_BURST;
  else
    vm->tokens
      = MIN (DISCOVER_BURST,
             vm->tokens + (gdouble) (now - vm->tokens_us) * DISCOVER_RATE / G_USEC_PER_SEC);
  vm->tokens_us = now;
  if (vm->tokens < 1)
    {
      if (vm->pending == 0 && vm->soon_id == 0)
        vm->born_next = TRUE;
      discover_soon (vm);
      return;
    }
  if (vm->pending > 0)
    {
      /* after the one in flight; a full one asked for already wins */
      vm->again_now = !vm->again || vm->again_now;
      vm->again = TRUE;
      return;
    }
  vm->tokens -= 1;
  if (vm->soon_id)
    g_source_remove (vm->soon_id);
  vm->soon_id = 0;
  vm->born_next = TRUE;
  start_discovery (vm);
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
      if (tid == 0 || vm->pid != tgid)
        {
          if (tid == 0)
            qpin_vm_discover_soon (vm);
          continue;
        }
      if (created)
        qpin_vm_discover_born (vm);
      else
        qpin_vm_discover_soon (vm);
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
  qpin_proc_events_set_comm_func (registry->events, qpin_registry_comm_event);
  qpin_registry_update_watched_pids (registry);
  return TRUE;
}

/**
 * qpin_registry_thread_event:
 * @tid: 0 when events were lost
 *
 * A thread of process @tgid was created or exited (what the process
 * events connector says).
 */
void
qpin_registry_thread_event (QpinRegistry *registry, GPid tgid, GPid tid, gboolean created)
{
  on_thread_event (tgid, tid, created, registry);
}

/* Is thread @i where its plan says, by the affinity last read? */
gboolean
qpin_vm_thread_on_plan (QpinVm *vm, guint i)
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
      off += st->applied && !st->drift && !qpin_vm_thread_on_plan (vm, i);
    }
  /* a dry run's VMs are planned, never pinned: never repaired */
  if (off == 0 || vm->registry->options.enforce == QPIN_ENFORCE_OFF || vm->state != QPIN_VM_PINNED)
    return;
  {
    g_autofree char *message
      = g_strdup_printf ("%u thread(s) found off their verified pins: looking again", off);
    qpin_vm_set_error (vm, QPIN_VM_DEGRADED, message);
  }
  qpin_vm_discover (vm);
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
