/* qpin-top-source.c: the VMs and threads `qpin top` watches
 *
 * From the daemon's status (with plans), from QMP sockets (roles from
 * QMP, no plan) or from bare pids (roles from thread names, no plan).
 */

#include "qpin-top.h"
#include "qpin-control.h"
#include "qpin-proc.h"
#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"
#include "qpin-vm-threads.h"

#include <string.h>

void
qpin_top_vm_free (QpinTopVm *vm)
{
  if (vm == NULL)
    return;
  g_free (vm->name);
  g_free (vm->state);
  g_clear_pointer (&vm->threads, g_array_unref);
  g_free (vm);
}

static QpinTopVm *
vm_new (const char *name, GPid pid, const char *state)
{
  QpinTopVm *vm = g_new0 (QpinTopVm, 1);

  vm->name = g_strdup (name);
  vm->pid = pid;
  vm->state = g_strdup (state);
  vm->threads = g_array_new (FALSE, TRUE, sizeof (QpinTopThread));
  return vm;
}

static gboolean
role_from_string (const char *text, QpinThreadRole *out)
{
  for (QpinThreadRole r = QPIN_ROLE_VCPU; r <= QPIN_ROLE_OTHER; r++)
    if (g_strcmp0 (text, qpin_thread_role_to_string (r)) == 0)
      {
        *out = r;
        return TRUE;
      }
  return FALSE;
}

static gboolean
member_int (JsonObject *o, const char *name, gint64 min, gint64 max, gint64 *out)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return *out >= min && *out <= max;
}

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n) : NULL;
}

/* {"role":"vcpu","index":0,"tid":123,"cpus":"3","drift":false,...} */
static gboolean
thread_from_status (JsonNode *node, QpinTopThread *t, GError **error)
{
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  gint64 index = 0, tid = 0;
  const char *cpus;

  memset (t, 0, sizeof *t);
  if (o == NULL || !role_from_string (member_string (o, "role"), &t->role)
      || !member_int (o, "index", 0, G_MAXINT, &index) || !member_int (o, "tid", 1, G_MAXINT, &tid))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "a thread without a valid role, index and tid");
      return FALSE;
    }
  t->index = (gint) index;
  t->tid = (GPid) tid;
  cpus = member_string (o, "cpus");
  t->has_plan = cpus && *cpus && qpin_cpuset_parse (cpus, &t->planned, NULL);
  t->drift = json_object_get_boolean_member_with_default (o, "drift", FALSE);
  return TRUE;
}

/**
 * qpin_top_vms_from_status:
 * @reply: the daemon's status: {"vms":[{"name","key","pid","state",
 *   "threads":[{"role","index","tid","cpus","drift",...}]}]}
 *
 * Checks each member it uses (type, range); others are ignored.
 *
 * Returns: (transfer full) (element-type QpinTopVm): the VMs; %NULL with
 *   an error naming the VM and what is wrong
 */
GPtrArray *
qpin_top_vms_from_status (JsonNode *reply, GError **error)
{
  g_autoptr (GPtrArray) vms = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_top_vm_free);
  JsonObject *root = JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
  JsonNode *list = root ? json_object_get_member (root, "vms") : NULL;
  JsonArray *array = list && JSON_NODE_HOLDS_ARRAY (list) ? json_node_get_array (list) : NULL;

  if (array == NULL)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "the daemon's status has no \"vms\" array");
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      JsonNode *threads = o ? json_object_get_member (o, "threads") : NULL;
      JsonArray *ta
        = threads && JSON_NODE_HOLDS_ARRAY (threads) ? json_node_get_array (threads) : NULL;
      const char *name = o ? member_string (o, "name") : NULL;
      g_autoptr (QpinTopVm) vm = NULL;
      gint64 pid = 0;

      if (o == NULL || !member_int (o, "pid", 0, G_MAXINT, &pid))
        {
          g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                       "VM %u of the daemon's status has no valid pid", i);
          return NULL;
        }
      vm = vm_new (name ? name : member_string (o, "key"), (GPid) pid, member_string (o, "state"));
      for (guint j = 0; ta && j < json_array_get_length (ta); j++)
        {
          QpinTopThread t;
          if (!thread_from_status (json_array_get_element (ta, j), &t, error))
            {
              g_prefix_error (error, "VM %u of the daemon's status: ", i);
              return NULL;
            }
          g_array_append_val (vm->threads, t);
        }
      g_ptr_array_add (vms, g_steal_pointer (&vm));
    }
  return g_steal_pointer (&vms);
}

static QpinTopVm *
vm_from_socket (const char *address, guint timeout_ms, GError **error)
{
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (address, timeout_ms, error);
  g_autoptr (JsonNode) name_ret = NULL, cpus_ret = NULL, io_ret = NULL;
  g_autoptr (GPtrArray) cpus = NULL, iothreads = NULL, threads = NULL, refused = NULL;
  g_autoptr (GArray) tids = NULL;
  g_autofree char *name = NULL;
  QpinTopVm *vm;
  GPid pid;

  if (client == NULL
      || !(name_ret = qpin_qmp_client_execute_sync (client, "query-name", NULL, timeout_ms, error))
      || !qpin_qmp_parse_name (name_ret, &name, error)
      || !(cpus_ret
           = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, timeout_ms, error))
      || !(cpus = qpin_qmp_parse_cpus_fast (cpus_ret, error))
      || !(io_ret
           = qpin_qmp_client_execute_sync (client, "query-iothreads", NULL, timeout_ms, error))
      || !(iothreads = qpin_qmp_parse_iothreads (io_ret, error)))
    return NULL;
  pid = qpin_vm_threads_resolve_pid (0, qpin_qmp_client_get_peer_pid (client), cpus, error);
  qpin_qmp_client_close (client);
  if (pid <= 0 || !(tids = qpin_proc_list_tasks (pid, error)))
    return NULL;
  threads = qpin_vm_threads_classify (pid, cpus, iothreads, tids, &refused);
  vm = vm_new (name ? name : address, pid, NULL);
  for (guint i = 0; i < threads->len; i++)
    {
      const QpinVmThread *t = g_ptr_array_index (threads, i);
      QpinTopThread tt = { .role = t->role, .index = t->index, .tid = t->tid };
      g_array_append_val (vm->threads, tt);
    }
  return vm;
}

/* QEMU names its threads (-name debug-threads=on): "CPU 0/KVM", "CPU 1/TCG", "IO iothread0" */
static void
role_from_comm (GPid pid, GPid tid, const char *comm, gint *others, QpinTopThread *t)
{
  const char *slash = g_str_has_prefix (comm, "CPU ") ? strchr (comm + 4, '/') : NULL;
  g_autofree char *num = slash ? g_strndup (comm + 4, (gsize) (slash - (comm + 4))) : NULL;
  guint64 index;

  t->tid = tid;
  if (tid == pid)
    t->role = QPIN_ROLE_EMULATOR;
  else if (num && g_ascii_string_to_unsigned (num, 10, 0, QPIN_QMP_MAX_VCPUS, &index, NULL))
    {
      t->role = QPIN_ROLE_VCPU;
      t->index = (gint) index;
    }
  else if (g_str_has_prefix (comm, "IO "))
    t->role = QPIN_ROLE_IOTHREAD;
  else
    {
      t->role = QPIN_ROLE_OTHER;
      t->index = (*others)++;
    }
}

static char *
name_of_pid (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/cmdline", pid);
  g_autofree char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, NULL))
    return NULL;
  /* NUL-separated arguments: the value after -name, without guest= and options */
  for (gsize off = 0; off < len;)
    {
      const char *arg = text + off;
      gsize alen = strnlen (arg, len - off);

      if (strcmp (arg, "-name") == 0 && off + alen + 1 < len)
        {
          const char *v = arg + alen + 1;
          g_auto (GStrv) parts = g_strsplit (g_str_has_prefix (v, "guest=") ? v + 6 : v, ",", 2);
          return g_strdup (parts[0]);
        }
      off += alen + 1;
    }
  return NULL;
}

static QpinTopVm *
vm_from_pid (GPid pid, GError **error)
{
  g_autoptr (GArray) tids = qpin_proc_list_tasks (pid, error);
  g_autofree char *name = NULL;
  QpinTopVm *vm;
  gint others = 0, iothreads = 0;

  if (tids == NULL)
    return NULL;
  name = name_of_pid (pid);
  vm = vm_new (name ? name : "", pid, NULL);
  if (name == NULL)
    {
      g_free (vm->name);
      vm->name = g_strdup_printf ("pid %d", pid);
    }
  for (guint i = 0; i < tids->len; i++)
    {
      GPid tid = g_array_index (tids, GPid, i);
      QpinTaskInfo info;
      QpinTopThread t = { 0 };

      if (!qpin_proc_read_task (pid, tid, &info, NULL))
        continue;
      role_from_comm (pid, tid, info.comm, &others, &t);
      if (t.role == QPIN_ROLE_IOTHREAD)
        t.index = iothreads++;
      g_array_append_val (vm->threads, t);
    }
  return vm;
}

/**
 * qpin_top_source_read:
 * @problems: (element-type utf8): gets one line per socket or pid that
 *   could not be read (left out of the result)
 *
 * Returns: (transfer full) (element-type QpinTopVm): the VMs to watch now;
 *   %NULL only when the daemon cannot be asked or answers nonsense
 */
GPtrArray *
qpin_top_source_read (const QpinTopSource *source, GPtrArray *problems, GError **error)
{
  g_autoptr (GPtrArray) vms = NULL;

  if (source->kind == QPIN_TOP_SOURCE_DAEMON)
    {
      g_autoptr (JsonNode) reply = qpin_control_request (source->control, "status", NULL, error);
      return reply ? qpin_top_vms_from_status (reply, error) : NULL;
    }
  vms = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_top_vm_free);
  for (guint i = 0; source->kind == QPIN_TOP_SOURCE_SOCKETS && source->sockets[i]; i++)
    {
      g_autoptr (GError) local = NULL;
      QpinTopVm *vm = vm_from_socket (source->sockets[i], source->timeout_ms, &local);
      if (vm)
        g_ptr_array_add (vms, vm);
      else
        g_ptr_array_add (problems, g_strdup_printf ("%s: %s", source->sockets[i], local->message));
    }
  for (guint i = 0; source->kind == QPIN_TOP_SOURCE_PIDS && i < source->pids->len; i++)
    {
      g_autoptr (GError) local = NULL;
      GPid pid = g_array_index (source->pids, GPid, i);
      QpinTopVm *vm = vm_from_pid (pid, &local);
      if (vm)
        g_ptr_array_add (vms, vm);
      else
        g_ptr_array_add (problems, g_strdup_printf ("pid %d: %s", pid, local->message));
    }
  return g_steal_pointer (&vms);
}

/**
 * qpin_top_sync:
 * @vms: (element-type QpinTopVm): what to watch from now on
 *
 * Adds the threads of @vms to @sampler (with their plans) and removes the
 * ones no VM has any more.
 */
void
qpin_top_sync (QpinSampler *sampler, GPtrArray *vms)
{
  g_autoptr (GHashTable) keep = g_hash_table_new (NULL, NULL);

  for (guint i = 0; i < vms->len; i++)
    {
      const QpinTopVm *vm = g_ptr_array_index (vms, i);
      for (guint j = 0; j < vm->threads->len; j++)
        {
          const QpinTopThread *t = &g_array_index (vm->threads, QpinTopThread, j);
          qpin_sampler_add_thread (sampler, vm->name, vm->pid, t->tid, t->role, t->index,
                                   t->has_plan ? &t->planned : NULL);
          g_hash_table_add (keep, GINT_TO_POINTER (t->tid));
        }
    }
  qpin_sampler_keep_only (sampler, keep);
}

/**
 * qpin_top_refresh:
 * @reported: (element-type utf8): problems already told; updated
 * @vms: (inout) (transfer full): replaced by the VMs read now, on success
 * @problems: (element-type utf8): gets each problem not told before
 *
 * Reads the source, watches its threads and samples.
 *
 * Returns: %FALSE when the daemon cannot be asked or /proc/stat read
 */
gboolean
qpin_top_refresh (QpinSampler *sampler, const QpinTopSource *source, GHashTable *reported,
                  GPtrArray **vms, GPtrArray *problems, GError **error)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) fresh = qpin_top_source_read (source, all, error);

  if (fresh == NULL)
    return FALSE;
  for (guint i = 0; i < all->len; i++)
    if (!g_hash_table_contains (reported, g_ptr_array_index (all, i)))
      {
        g_hash_table_add (reported, g_strdup (g_ptr_array_index (all, i)));
        g_ptr_array_add (problems, g_strdup (g_ptr_array_index (all, i)));
      }
  qpin_top_sync (sampler, fresh);
  if (!qpin_sampler_sample (sampler, g_get_monotonic_time () * 1000, error))
    return FALSE;
  g_clear_pointer (vms, g_ptr_array_unref);
  *vms = g_steal_pointer (&fresh);
  return TRUE;
}
