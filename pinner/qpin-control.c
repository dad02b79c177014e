/* qpin-control.c: client side of the control socket */

#include "qpin-control.h"
#include "qpin-proc.h"
#include "qpin-qmp-json.h"
#include "qpin-unix-address.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>

/* The daemon's answer line: its JSON, or its {"error": ...} as @error. */
static JsonNode *
parse_reply (const char *line, GError **error)
{
  JsonNode *reply = qpin_qmp_json_parse (line, -1, error);

  if (reply == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (reply)
      && json_object_has_member (json_node_get_object (reply), "error"))
    {
      g_set_error (
        error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "%s",
        json_object_get_string_member_with_default (json_node_get_object (reply), "error", "?"));
      json_node_unref (reply);
      return NULL;
    }
  return reply;
}

static char *
request_line (const char *command, JsonObject *arguments)
{
  g_autoptr (JsonObject) request = arguments ? json_object_ref (arguments) : json_object_new ();
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), request);
  g_autofree char *json = NULL;

  json_object_set_string_member (request, "command", command);
  json = json_to_string (node, FALSE);
  return g_strconcat (json, "\n", NULL);
}

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
  g_autoptr (GDataInputStream) in = NULL;
  g_autofree char *text = NULL, *line = NULL;
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
  text = request_line (command, arguments);
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
  return parse_reply (line, error);
}

/* ---- asynchronous: for callers whose main loop must go on ---- */

typedef struct {
  char *path;
  char *text;
  GSocketConnection *conn;
  GDataInputStream *in;
} Request;

static void
request_free (Request *req)
{
  g_free (req->path);
  g_free (req->text);
  g_clear_object (&req->in);
  g_clear_object (&req->conn);
  g_free (req);
}

static void
on_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Request *req = g_task_get_task_data (task);
  GError *error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                                     result, NULL, &error);
  JsonNode *reply;

  if (line == NULL && error == NULL)
    error = g_error_new (QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                         "the qpin daemon at '%s' closed without answering", req->path);
  if (line == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  reply = parse_reply (line, &error);
  if (reply == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) json_node_unref);
}

static void
on_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Request *req = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  req->in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (req->conn)));
  g_data_input_stream_read_line_async (req->in, G_PRIORITY_DEFAULT, cancellable, on_line,
                                       g_steal_pointer (&task));
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Request *req = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  req->conn = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (req->conn == NULL)
    {
      g_prefix_error (&error, "cannot reach the qpin daemon at '%s' (is it running?): ", req->path);
      g_task_return_error (task, error);
      return;
    }
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (req->conn)),
                                   req->text, strlen (req->text), G_PRIORITY_DEFAULT, cancellable,
                                   on_written, g_steal_pointer (&task));
}

/**
 * qpin_control_request_async:
 * @path: the daemon's control socket
 * @command: "wait", "status", ...
 * @arguments: (nullable): extra members of the request
 * @cancellable: (nullable): ends the request (the connection is closed)
 *
 * qpin_control_request() without blocking: the answer may take as long
 * as the daemon needs (a "wait"), and there is no timeout but the one the
 * request carries.
 */
void
qpin_control_request_async (const char *path, const char *command, JsonObject *arguments,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) addr = qpin_unix_address_new (path, &error);
  Request *req = g_new0 (Request, 1);

  req->path = g_strdup (path);
  req->text = request_line (command, arguments);
  g_task_set_task_data (task, req, (GDestroyNotify) request_free);
  if (addr == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_socket_client_connect_async (sc, G_SOCKET_CONNECTABLE (addr), cancellable, on_connected,
                                 g_steal_pointer (&task));
}

/**
 * qpin_control_request_finish:
 *
 * Returns: (transfer full): the daemon's answer; %NULL with the reason, as
 *   qpin_control_request()
 */
JsonNode *
qpin_control_request_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
