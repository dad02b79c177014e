/* qpin-json.c: JsonBuilder members shared by plan, topology and status JSON */
#include "qpin-json.h"

/**
 * qpin_json_add_cpuset:
 *
 * Adds @name as a Linux cpulist string ("0-3,8"; "" when empty).
 */
void
qpin_json_add_cpuset (JsonBuilder *b, const char *name, const QpinCpuset *set)
{
  g_autofree char *text = qpin_cpuset_format (set);

  qpin_json_add_string (b, name, text);
}

/**
 * qpin_json_add_string:
 * @value: (nullable): %NULL is written as null
 */
void
qpin_json_add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

/**
 * qpin_json_add_int:
 *
 * Adds @name as an integer.
 */
void
qpin_json_add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
add_id (JsonBuilder *b, const char *name, GPid value)
{
  json_builder_set_member_name (b, name);
  if (value == 0)
    json_builder_add_null_value (b);
  else
    json_builder_add_int_value (b, value);
}

/**
 * qpin_json_begin_vms:
 *
 * In the object @b is in: opens the "vms" array.
 */
void
qpin_json_begin_vms (JsonBuilder *b)
{
  json_builder_set_member_name (b, "vms");
  json_builder_begin_array (b);
}

/**
 * qpin_json_begin_vm:
 * @name: (nullable): the VM's name, null when %NULL
 * @pid: its process, null when 0 (a plan made offline)
 *
 * Opens one VM object of "vms" with its "name" and "pid".
 */
void
qpin_json_begin_vm (JsonBuilder *b, const char *name, GPid pid)
{
  json_builder_begin_object (b);
  qpin_json_add_string (b, "name", name);
  add_id (b, "pid", pid);
}

/**
 * qpin_json_begin_threads:
 *
 * In a VM object: opens its "threads" array.
 */
void
qpin_json_begin_threads (JsonBuilder *b)
{
  json_builder_set_member_name (b, "threads");
  json_builder_begin_array (b);
}

/**
 * qpin_json_begin_thread:
 * @tid: the thread, null when 0 (a plan made offline)
 *
 * Opens one thread object of "threads" with its "role", "index" and "tid".
 */
void
qpin_json_begin_thread (JsonBuilder *b, QpinThreadRole role, gint index, GPid tid)
{
  json_builder_begin_object (b);
  qpin_json_add_string (b, "role", qpin_thread_role_to_string (role));
  qpin_json_add_int (b, "index", index);
  add_id (b, "tid", tid);
}

/**
 * qpin_json_find_vm:
 * @root: (nullable): JSON in the shared shape (a status reply, a plan)
 *
 * Returns: (transfer none) (nullable): the VM object with @pid
 */
JsonObject *
qpin_json_find_vm (JsonNode *root, GPid pid)
{
  JsonObject *top;
  JsonArray *vms;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  top = json_node_get_object (root);
  if (!json_object_has_member (top, "vms")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (top, "vms")))
    return NULL;
  vms = json_object_get_array_member (top, "vms");
  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);
      if (vm && json_object_get_int_member_with_default (vm, "pid", 0) == pid)
        return vm;
    }
  return NULL;
}
