/* qpin-qmp-message.c: classify QMP messages (qapi/qmp-spec) */
#define G_LOG_DOMAIN "qpin-qmp"

#include "qpin-qmp-message.h"
#include "qpin-qmp-error.h"
#include "qpin-qmp-json.h"

/* spelt out: G_DEFINE_QUARK's first argument does not survive clang-format */
GQuark
qpin_qmp_error_quark (void)
{
  return g_quark_from_static_string ("qpin-qmp-error-quark");
}

static const char *const error_classes[] = {
  [QPIN_QMP_ERROR_GENERIC_ERROR] = "GenericError",
  [QPIN_QMP_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
  [QPIN_QMP_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
  [QPIN_QMP_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
  [QPIN_QMP_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

/**
 * qpin_qmp_error_from_class:
 * @klass: a QMP error class such as "CommandNotFound"
 *
 * Returns: the matching code; QPIN_QMP_ERROR_GENERIC_ERROR for unknown classes
 */
QpinQmpError
qpin_qmp_error_from_class (const char *klass)
{
  for (gsize i = QPIN_QMP_ERROR_GENERIC_ERROR; i < G_N_ELEMENTS (error_classes); i++)
    if (g_strcmp0 (klass, error_classes[i]) == 0)
      return (QpinQmpError) i;
  return QPIN_QMP_ERROR_GENERIC_ERROR;
}

/**
 * qpin_qmp_error_class_name:
 *
 * Returns: (transfer none) (nullable): QEMU's class name of a command error
 * code, %NULL for transport and protocol codes
 */
const char *
qpin_qmp_error_class_name (QpinQmpError code)
{
  if (code < QPIN_QMP_ERROR_GENERIC_ERROR || (gsize) code >= G_N_ELEMENTS (error_classes))
    return NULL;
  return error_classes[code];
}

void
qpin_qmp_message_free (QpinQmpMessage *msg)
{
  if (msg == NULL)
    return;
  g_clear_pointer (&msg->root, json_node_unref);
  g_free (msg);
}

static gboolean
protocol_error (GError **error, const char *what)
{
  g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "%s", what);
  return FALSE;
}

static gboolean
classify_id (QpinQmpMessage *msg, JsonObject *obj)
{
  JsonNode *id = json_object_get_member (obj, "id");

  if (id == NULL)
    return TRUE;
  msg->has_id = TRUE;
  if (JSON_NODE_HOLDS_VALUE (id) && json_node_get_value_type (id) == G_TYPE_INT64)
    {
      msg->id_valid = TRUE;
      msg->id = json_node_get_int (id);
    }
  return TRUE;
}

static const char *
get_string_member (JsonObject *obj, const char *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
classify (QpinQmpMessage *msg, GError **error)
{
  JsonObject *obj;
  JsonNode *member;

  if (!JSON_NODE_HOLDS_OBJECT (msg->root))
    return protocol_error (error, "message is not a JSON object");
  obj = json_node_get_object (msg->root);

  if ((member = json_object_get_member (obj, "return")) != NULL)
    {
      msg->kind = QPIN_QMP_MESSAGE_RETURN;
      msg->ret = member;
      return classify_id (msg, obj);
    }
  if ((member = json_object_get_member (obj, "error")) != NULL)
    {
      JsonObject *err;

      if (!JSON_NODE_HOLDS_OBJECT (member))
        return protocol_error (error, "\"error\" is not an object");
      err = json_node_get_object (member);
      msg->kind = QPIN_QMP_MESSAGE_ERROR;
      msg->error_class = get_string_member (err, "class");
      msg->error_desc = get_string_member (err, "desc");
      if (msg->error_class == NULL || msg->error_desc == NULL)
        return protocol_error (error, "\"error\" lacks a string \"class\" or \"desc\"");
      return classify_id (msg, obj);
    }
  if ((member = json_object_get_member (obj, "event")) != NULL)
    {
      JsonNode *data = json_object_get_member (obj, "data");

      msg->kind = QPIN_QMP_MESSAGE_EVENT;
      msg->event = get_string_member (obj, "event");
      if (msg->event == NULL)
        return protocol_error (error, "\"event\" is not a string");
      if (data != NULL && !JSON_NODE_HOLDS_OBJECT (data))
        return protocol_error (error, "event \"data\" is not an object");
      msg->data = data ? json_node_get_object (data) : NULL;
      return TRUE;
    }
  if ((member = json_object_get_member (obj, "QMP")) != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (member))
        return protocol_error (error, "\"QMP\" greeting is not an object");
      msg->kind = QPIN_QMP_MESSAGE_GREETING;
      msg->greeting = json_node_get_object (member);
      return TRUE;
    }
  return protocol_error (error, "message is neither a return, an error, an event nor a greeting");
}

/**
 * qpin_qmp_message_parse:
 * @line: one QMP message
 * @len: its length, or -1 if NUL-terminated
 *
 * Returns: (transfer full): the classified message; %NULL with
 * QPIN_QMP_ERROR_PROTOCOL if it is not strict JSON (see
 * qpin_qmp_json_parse()) or not a QMP message.
 * Unknown members are ignored, as newer QEMUs add them.
 */
QpinQmpMessage *
qpin_qmp_message_parse (const char *line, gssize len, GError **error)
{
  g_autoptr (QpinQmpMessage) msg = g_new0 (QpinQmpMessage, 1);

  msg->root = qpin_qmp_json_parse (line, len, error);
  if (msg->root == NULL)
    return NULL;
  if (!classify (msg, error))
    return NULL;
  return g_steal_pointer (&msg);
}

/**
 * qpin_qmp_message_to_error:
 * @msg: an ERROR message
 *
 * Returns: (transfer full): a GError whose code is the QMP class and whose
 * message is QEMU's desc
 */
GError *
qpin_qmp_message_to_error (const QpinQmpMessage *msg)
{
  g_return_val_if_fail (msg->kind == QPIN_QMP_MESSAGE_ERROR, NULL);
  return g_error_new (QPIN_QMP_ERROR, qpin_qmp_error_from_class (msg->error_class), "%s",
                      msg->error_desc);
}
