/* qpin-control.c: client side of the control socket */

#include "qpin-control.h"
#include "qpin-proc.h"
#include "qpin-qmp-json.h"
#include "qpin-unix-address.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>

/**
 * qpin_control_request:
 * @path: the daemon's control socket
 * @command: "status", "reload", ...
 * @arguments: (nullable): extra members of the request
 *
 * Returns: (transfer full): the daemon's answer; %NULL with the reason
 *   when it cannot be reached or answers {"error": ...}
 */
JsonNode *
qpin_control_request (const char *path, const char *command, JsonObject *arguments, GError **error)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = qpin_unix_address_new (path, error);
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (JsonObject) request = arguments ? json_object_ref (arguments) : json_object_new ();
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), request);
  g_autoptr (GDataInputStream) in = NULL;
  g_autofree char *json = NULL, *text = NULL, *line = NULL;
  JsonNode *reply;
  GOutputStream *out;

  if (addr == NULL)
    return NULL;
  g_socket_client_set_timeout (sc, 30);
  conn = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, error);
  if (conn == NULL)
    {
      g_prefix_error (error, "cannot reach the qpin daemon at '%s' (is it running?): ", path);
      return NULL;
    }
  json_object_set_string_member (request, "command", command);
  json = json_to_string (node, FALSE);
  text = g_strconcat (json, "\n", NULL);
  out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
  if (!g_output_stream_write_all (out, text, strlen (text), NULL, NULL, error))
    return NULL;
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, error);
  if (line == NULL)
    {
      if (error && *error == NULL)
        g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                     "the qpin daemon at '%s' closed without answering", path);
      return NULL;
    }
  reply = qpin_qmp_json_parse (line, -1, error);
  if (reply == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (reply)
      && json_object_has_member (json_node_get_object (reply), "error"))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "%s",
                   json_object_get_string_member (json_node_get_object (reply), "error"));
      json_node_unref (reply);
      return NULL;
    }
  return reply;
}
