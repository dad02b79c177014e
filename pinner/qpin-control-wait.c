/* qpin-control-wait.c: see qpin-control-wait.h
 *
 * Waits are few (one per control client at most), so they sit in one
 * array and a settled VM is matched by a scan; with no wait pending a
 * settled VM costs one comparison.
 */

#include "qpin-control-wait.h"

struct _QpinControlWaits {
  QpinRegistry *registry;
  GPtrArray *waits; /* Wait */
  guint served;     /* waits answered since the start, for status */
};

typedef struct {
  QpinControlWaits *owner;
  GPid pid;
  guint timeout_ms;
  guint timeout_id;
  QpinControlWaitDone done;
  gpointer user_data;
  GDestroyNotify destroy;
} Wait;

static void
wait_free (Wait *w)
{
  g_clear_handle_id (&w->timeout_id, g_source_remove);
  if (w->destroy)
    w->destroy (w->user_data);
  g_free (w);
}

static JsonNode *reply_new (const char *member, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* {"error": ...} for a bad request; {"vm": null, "reason": ...} when the
 * wait is over without a placed VM */
static JsonNode *
reply_new (const char *member, const char *format, ...)
{
  g_autoptr (JsonObject) obj = json_object_new ();
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (g_str_equal (member, "reason"))
    json_object_set_null_member (obj, "vm");
  json_object_set_string_member (obj, member, message);
  return json_node_init_object (json_node_alloc (), obj);
}

/* Answers @w with @reply and forgets it. */
static void
answer (Wait *w, JsonNode *reply)
{
  QpinControlWaits *waits = w->owner;

  waits->served++;
  w->done (reply, w->user_data);
  g_ptr_array_remove_fast (waits->waits, w);
}

/* {"vm": {...}} for the VM of @pid as the registry shows it, or NULL
 * while it is unknown or still being discovered. */
static JsonNode *
vm_reply (QpinRegistry *registry, GPid pid)
{
  g_autoptr (JsonNode) all = qpin_registry_to_json (registry);
  JsonArray *vms = json_object_get_array_member (json_node_get_object (all), "vms");
  g_autoptr (JsonObject) obj = json_object_new ();

  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);

      if (json_object_get_int_member_with_default (vm, "pid", 0) != pid)
        continue;
      if (g_str_equal (json_object_get_string_member_with_default (vm, "state", "discovering"),
                       "discovering"))
        return NULL;
      json_object_set_object_member (obj, "vm", json_object_ref (vm));
      return json_node_init_object (json_node_alloc (), g_steal_pointer (&obj));
    }
  return NULL;
}

static gboolean
on_timeout (gpointer user_data)
{
  Wait *w = user_data;
  g_autoptr (JsonNode) reply
    = reply_new ("reason", "QEMU pid %d was not placed within %u ms", w->pid, w->timeout_ms);

  w->timeout_id = 0;
  answer (w, reply);
  return G_SOURCE_REMOVE;
}

static void
on_settled (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  QpinControlWaits *waits = user_data;
  g_autoptr (JsonNode) reply = NULL;
  GPid pid = qpin_vm_get_pid (vm);

  if (qpin_vm_get_state (vm) == QPIN_VM_DISCOVERING)
    return;
  for (guint i = waits->waits->len; i-- > 0;)
    {
      Wait *w = g_ptr_array_index (waits->waits, i);

      if (w->pid != pid)
        continue;
      if (reply == NULL && (reply = vm_reply (registry, pid)) == NULL)
        return;
      answer (w, reply);
    }
}

static void
on_gone (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  QpinControlWaits *waits = user_data;
  GPid pid = qpin_vm_get_pid (vm);
  g_autoptr (JsonNode) reply = NULL;

  for (guint i = waits->waits->len; i-- > 0;)
    {
      Wait *w = g_ptr_array_index (waits->waits, i);

      if (w->pid != pid)
        continue;
      if (reply == NULL)
        reply = reply_new ("reason", "QEMU pid %d went away before it was placed", pid);
      answer (w, reply);
    }
}

/**
 * qpin_control_waits_new:
 * @registry: (transfer none): must outlive the result; its settled and
 *   gone hooks are taken until qpin_control_waits_free()
 *
 * Returns: (transfer full): no wait yet
 */
QpinControlWaits *
qpin_control_waits_new (QpinRegistry *registry)
{
  QpinControlWaits *waits = g_new0 (QpinControlWaits, 1);

  waits->registry = registry;
  waits->waits = g_ptr_array_new_with_free_func ((GDestroyNotify) wait_free);
  qpin_registry_set_hooks (registry, on_settled, on_gone, waits);
  return waits;
}

/**
 * qpin_control_waits_add:
 * @request: the request: "pid" (1..4194304), "timeout_ms" (1..600000,
 *   30000 when absent)
 * @done: called once with the answer, unless the answer is returned
 * @destroy: (nullable): frees @user_data once the wait is over
 *
 * Returns: (transfer full) (nullable): the answer when it is known now (a
 *   bad request, a VM already placed), and then neither @done nor
 *   @destroy is called; %NULL when @done will answer
 */
JsonNode *
qpin_control_waits_add (QpinControlWaits *waits, JsonObject *request, QpinControlWaitDone done,
                        gpointer user_data, GDestroyNotify destroy)
{
  JsonNode *pid_node = json_object_get_member (request, "pid");
  JsonNode *ms_node = json_object_get_member (request, "timeout_ms");
  gint64 pid = pid_node && JSON_NODE_HOLDS_VALUE (pid_node)
                   && json_node_get_value_type (pid_node) == G_TYPE_INT64
                 ? json_node_get_int (pid_node)
                 : -1;
  gint64 ms
    = ms_node == NULL ? 30000
      : JSON_NODE_HOLDS_VALUE (ms_node) && json_node_get_value_type (ms_node) == G_TYPE_INT64
        ? json_node_get_int (ms_node)
        : -1;
  JsonNode *now;
  Wait *w;

  if (pid < 1 || pid > 4194304 || ms < 1 || ms > QPIN_CONTROL_WAIT_MAX_MS)
    return reply_new ("error",
                      "wait needs a \"pid\" of 1 to 4194304 and a \"timeout_ms\" of 1 to %d",
                      QPIN_CONTROL_WAIT_MAX_MS);
  if (waits->waits->len >= QPIN_CONTROL_WAIT_MAX)
    return reply_new ("error", "%d waits at once: try again later", QPIN_CONTROL_WAIT_MAX);
  now = vm_reply (waits->registry, (GPid) pid);
  if (now != NULL)
    {
      waits->served++;
      return now;
    }
  w = g_new0 (Wait, 1);
  w->owner = waits;
  w->pid = (GPid) pid;
  w->timeout_ms = (guint) ms;
  w->done = done;
  w->user_data = user_data;
  w->destroy = destroy;
  w->timeout_id = g_timeout_add (w->timeout_ms, on_timeout, w);
  g_ptr_array_add (waits->waits, w);
  return NULL;
}

/**
 * qpin_control_waits_forget:
 * @user_data: the @user_data of a pending wait
 *
 * Ends that wait without an answer (its asker left): its @destroy runs.
 */
void
qpin_control_waits_forget (QpinControlWaits *waits, gpointer user_data)
{
  for (guint i = 0; i < waits->waits->len; i++)
    if (((Wait *) g_ptr_array_index (waits->waits, i))->user_data == user_data)
      {
        g_ptr_array_remove_index_fast (waits->waits, i);
        return;
      }
}

/**
 * qpin_control_waits_pending:
 *
 * Returns: how many waits are not answered yet
 */
guint
qpin_control_waits_pending (QpinControlWaits *waits)
{
  return waits->waits->len;
}

/**
 * qpin_control_waits_count:
 *
 * Returns: how many waits were answered since @waits was made
 */
guint
qpin_control_waits_count (QpinControlWaits *waits)
{
  return waits->served;
}

/* Pending waits end without an answer: their @destroy runs. */
void
qpin_control_waits_free (QpinControlWaits *waits)
{
  if (waits == NULL)
    return;
  qpin_registry_set_hooks (waits->registry, NULL, NULL, NULL);
  g_ptr_array_unref (waits->waits);
  g_free (waits);
}
