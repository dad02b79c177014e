/* qpin-control-server.c: see qpin-control-server.h
 *
 * A client is reference counted: the server's set holds one reference
 * and every pending asynchronous operation (a read, a write, a hotplug)
 * another, so dropping a client (cancel, shut the socket down, leave the
 * set) never frees memory a callback is still to receive.
 */

#include "qpin-control-server.h"
#include "qpin-control-wait.h"
#include "qpin-qmp-json.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _QpinControlServer {
  QpinDaemon *daemon;
  QpinRegistry *registry;
  GSocketService *service;
  GHashTable *clients; /* ControlClient set, one reference each */
  gboolean full;       /* "too many clients" logged for this episode */
  QpinControlWaits *waits;
  guint status_requests; /* answered since the start, shown by status */
};

typedef struct {
  QpinControlServer *server; /* NULL once dropped */
  GSocketConnection *connection;
  GCancellable *cancel;
  guint timeout_id;
  gboolean waiting; /* a wait is pending: its reply is still to come */
  char *reply;
  gsize len;
  char line[QPIN_CONTROL_MAX_LINE + 1];
} ControlClient;

static void
client_clear (ControlClient *client)
{
  g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);
  g_object_unref (client->connection);
  g_object_unref (client->cancel);
  g_free (client->reply);
}

static void
client_release (ControlClient *client)
{
  g_rc_box_release_full (client, (GDestroyNotify) client_clear);
}

/* Clients that count against QPIN_CONTROL_MAX_CLIENTS: a waiting one
 * has asked, and its wait is bounded in number and time on its own. */
static guint
active_clients (QpinControlServer *server)
{
  guint all = g_hash_table_size (server->clients);
  guint waiting = server->waits ? qpin_control_waits_pending (server->waits) : 0;

  return all > waiting ? all - waiting : 0;
}

/* Ends the conversation: pending operations are cancelled (their
 * callbacks release their references) and the peer sees the end now. */
static void
client_drop (ControlClient *client)
{
  QpinControlServer *server = client->server;

  if (server == NULL)
    return;
  client->server = NULL;
  g_clear_handle_id (&client->timeout_id, g_source_remove);
  g_cancellable_cancel (client->cancel);
  shutdown (g_socket_get_fd (g_socket_connection_get_socket (client->connection)), SHUT_RDWR);
  g_hash_table_remove (server->clients, client);
  if (active_clients (server) < QPIN_CONTROL_MAX_CLIENTS / 2)
    server->full = FALSE;
}

static gboolean
on_request_timeout (gpointer user_data)
{
  ControlClient *client = user_data;

  client->timeout_id = 0;
  g_warning ("control: a client sent no request within %d s; dropped",
             QPIN_CONTROL_REQUEST_TIMEOUT_S);
  client_drop (client);
  return G_SOURCE_REMOVE;
}

static gboolean
on_reply_timeout (gpointer user_data)
{
  ControlClient *client = user_data;

  client->timeout_id = 0;
  g_warning ("control: a client did not read its reply within %d s; dropped",
             QPIN_CONTROL_REPLY_TIMEOUT_S);
  client_drop (client);
  return G_SOURCE_REMOVE;
}

static void
on_reply_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ControlClient *client = user_data;

  /* written, cancelled by a drop, or the client left: the end either way */
  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  client_drop (client);
  client_release (client);
}

/* Sends @reply and the newline that ends it, then closes; a client that
 * does not take it all in time is dropped. */
static void
client_reply (ControlClient *client, JsonNode *reply)
{
  g_autofree char *text = json_to_string (reply, FALSE);
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (client->connection));

  if (client->server == NULL)
    return;
  client->reply = g_strconcat (text, "\n", NULL);
  client->timeout_id
    = g_timeout_add_seconds (QPIN_CONTROL_REPLY_TIMEOUT_S, on_reply_timeout, client);
  g_output_stream_write_all_async (out, client->reply, strlen (client->reply), G_PRIORITY_DEFAULT,
                                   client->cancel, on_reply_written, g_rc_box_acquire (client));
}

static JsonNode *
error_reply (const char *message)
{
  g_autoptr (JsonObject) obj = json_object_new ();

  json_object_set_string_member (obj, "error", message);
  return json_node_init_object (json_node_alloc (), obj);
}

static void
on_hotplug_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ControlClient *client = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) done = qpin_registry_hotplug_finish (result, &error);
  g_autoptr (JsonNode) reply = NULL;

  if (done == NULL)
    reply = error_reply (error->message);
  else
    {
      g_autoptr (JsonObject) obj = json_object_new ();
      json_object_set_member (obj, "vcpus", g_steal_pointer (&done));
      reply = json_node_init_object (json_node_alloc (), obj);
    }
  client_reply (client, reply);
  client_release (client);
}

/* {"command":"hotplug","vm":NAME,"action":"add"|"remove","count":N}:
 * answered when done, so it returns NULL and replies itself */
static JsonNode *
start_hotplug (ControlClient *client, JsonObject *request)
{
  const char *vm = json_object_get_string_member_with_default (request, "vm", NULL);
  const char *action = json_object_get_string_member_with_default (request, "action", "");
  gint64 count = json_object_get_int_member_with_default (request, "count", 1);

  if (vm == NULL || (!g_str_equal (action, "add") && !g_str_equal (action, "remove")) || count < 1
      || count > 1024)
    return error_reply ("hotplug needs \"vm\", \"action\" add or remove, and a \"count\" of "
                        "1 to 1024");
  qpin_registry_hotplug_async (client->server->registry, vm, g_str_equal (action, "add"),
                               (guint) count, on_hotplug_done, g_rc_box_acquire (client));
  return NULL;
}

static void
on_wait_done (JsonNode *reply, gpointer user_data)
{
  ControlClient *client = user_data;

  client->waiting = FALSE;
  client_reply (client, reply);
}

/* A waiting client sends nothing more: whatever it does (leave, mostly)
 * ends its wait, so a qpin run that was killed holds nothing. */
static void
on_waiter_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ControlClient *client = user_data;
  QpinControlServer *server = client->server;

  g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);
  if (client->waiting && server != NULL)
    {
      client->waiting = FALSE;
      client_drop (client);
      qpin_control_waits_forget (server->waits, client);
    }
  client_release (client);
}

/* {"command":"wait","pid":N,"timeout_ms":T}: see qpin-control-wait.h */
static JsonNode *
start_wait (ControlClient *client, JsonObject *request)
{
  JsonNode *now
    = qpin_control_waits_add (client->server->waits, request, on_wait_done,
                              g_rc_box_acquire (client), (GDestroyNotify) client_release);
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (client->connection));

  if (now != NULL)
    {
      client_release (client); /* answered now: the wait took nothing */
      return now;
    }
  client->waiting = TRUE;
  g_input_stream_read_async (in, client->line, sizeof client->line, G_PRIORITY_DEFAULT,
                             client->cancel, on_waiter_read, g_rc_box_acquire (client));
  return NULL;
}

/* status, how many status and wait requests were answered (a client
 * that polls status instead of waiting shows here) and how many waits are
 * pending */
static JsonNode *
status_reply (QpinControlServer *server)
{
  g_autoptr (JsonNode) vms = qpin_registry_to_json (server->registry);
  g_autoptr (JsonObject) root = json_object_new ();
  g_autoptr (JsonObject) counts = json_object_new ();

  server->status_requests++;
  json_object_set_member (
    root, "vms", json_node_ref (json_object_get_member (json_node_get_object (vms), "vms")));
  json_object_set_int_member (counts, "status", server->status_requests);
  json_object_set_int_member (counts, "wait", qpin_control_waits_count (server->waits));
  json_object_set_int_member (counts, "waiting", qpin_control_waits_pending (server->waits));
  json_object_set_object_member (root, "requests", g_steal_pointer (&counts));
  return json_node_init_object (json_node_alloc (), root);
}

static JsonNode *
handle_command (ControlClient *client, const char *line)
{
  QpinControlServer *server = client->server;
  g_autoptr (JsonNode) request = qpin_qmp_json_parse (line, -1, NULL);
  const char *command;
  g_autoptr (GError) error = NULL;

  if (request == NULL || !JSON_NODE_HOLDS_OBJECT (request))
    return error_reply ("a request is one JSON object on one line");
  command
    = json_object_get_string_member_with_default (json_node_get_object (request), "command", "");
  if (g_str_equal (command, "status"))
    return status_reply (server);
  if (g_str_equal (command, "hotplug"))
    return start_hotplug (client, json_node_get_object (request));
  if (g_str_equal (command, "wait"))
    return start_wait (client, json_node_get_object (request));
  if (g_str_equal (command, "reload"))
    {
      g_autoptr (JsonObject) ok = json_object_new ();
      if (!qpin_daemon_reload (server->daemon, &error))
        return error_reply (error->message);
      json_object_set_boolean_member (ok, "ok", TRUE);
      return json_node_init_object (json_node_alloc (), ok);
    }
  {
    g_autofree char *message
      = g_strdup_printf ("unknown command '%s': accepted: status, reload, hotplug, wait", command);
    return error_reply (message);
  }
}

static void read_request (ControlClient *client);

/* The request line is complete: the timeout for it ends, the answer's
 * own starts when the answer is ready. */
static void
on_request (ControlClient *client, char *newline)
{
  g_autoptr (JsonNode) reply = NULL;

  g_clear_handle_id (&client->timeout_id, g_source_remove);
  if (newline == NULL)
    reply = error_reply (
      "a request is one line of at most " G_STRINGIFY (QPIN_CONTROL_MAX_LINE) " bytes");
  else
    {
      *newline = '\0';
      reply = handle_command (client, client->line);
    }
  if (reply != NULL) /* NULL: answered later */
    client_reply (client, reply);
}

static void
on_request_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ControlClient *client = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);
  char *newline;

  if (n <= 0 || client->server == NULL)
    {
      /* gone before asking, or dropped */
      client_drop (client);
      client_release (client);
      return;
    }
  newline = memchr (client->line + client->len, '\n', (gsize) n);
  client->len += (gsize) n;
  if (newline != NULL || client->len == QPIN_CONTROL_MAX_LINE)
    on_request (client, newline);
  else
    read_request (client);
  client_release (client);
}

static void
read_request (ControlClient *client)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (client->connection));

  g_input_stream_read_async (in, client->line + client->len, QPIN_CONTROL_MAX_LINE - client->len,
                             G_PRIORITY_DEFAULT, client->cancel, on_request_read,
                             g_rc_box_acquire (client));
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
             gpointer user_data)
{
  QpinControlServer *server = user_data;
  g_autoptr (GCredentials) creds
    = g_socket_get_credentials (g_socket_connection_get_socket (connection), NULL);
  uid_t uid = creds ? g_credentials_get_unix_user (creds, NULL) : (uid_t) -1;
  ControlClient *client;

  if (uid != 0 && uid != geteuid ())
    {
      g_warning ("control: refused a client with uid %d", (int) uid);
      return TRUE; /* dropping the connection closes it */
    }
  if (active_clients (server) >= QPIN_CONTROL_MAX_CLIENTS)
    {
      if (!server->full)
        g_warning ("control: %d clients at once; refusing more until some leave",
                   QPIN_CONTROL_MAX_CLIENTS);
      server->full = TRUE;
      return TRUE;
    }
  client = g_rc_box_new0 (ControlClient);
  client->server = server;
  client->connection = g_object_ref (connection);
  client->cancel = g_cancellable_new ();
  client->timeout_id
    = g_timeout_add_seconds (QPIN_CONTROL_REQUEST_TIMEOUT_S, on_request_timeout, client);
  g_hash_table_add (server->clients, client);
  read_request (client);
  return TRUE;
}

/**
 * qpin_control_server_new:
 * @daemon: (transfer none): reloaded by the "reload" command
 * @registry: (transfer none): answers "status" and "hotplug"
 *
 * Both must outlive the server.  It serves nothing until given a socket
 * with qpin_control_server_listen().
 *
 * Returns: (transfer full): a new server
 */
QpinControlServer *
qpin_control_server_new (QpinDaemon *daemon, QpinRegistry *registry)
{
  QpinControlServer *server = g_new0 (QpinControlServer, 1);

  server->daemon = daemon;
  server->registry = registry;
  server->clients = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) client_release, NULL);
  server->waits = qpin_control_waits_new (registry);
  return server;
}

static void
stop_service (GSocketService *service)
{
  g_socket_service_stop (service);
  g_socket_listener_close (G_SOCKET_LISTENER (service));
  g_object_unref (service);
}

/**
 * qpin_control_server_listen:
 * @service: (transfer full): a bound socket service
 *
 * Serves @service from now on, in place of the previous one (whose
 * socket file was removed); clients already connected are still served.
 */
void
qpin_control_server_listen (QpinControlServer *server, GSocketService *service)
{
  g_clear_pointer (&server->service, stop_service);
  server->service = service;
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), server);
}

void
qpin_control_server_free (QpinControlServer *server)
{
  GHashTableIter iter;
  ControlClient *client;

  if (server == NULL)
    return;
  g_clear_pointer (&server->service, stop_service);
  /* a client's pending callbacks find it dropped and only release it */
  while (g_hash_table_size (server->clients) > 0)
    {
      g_hash_table_iter_init (&iter, server->clients);
      g_hash_table_iter_next (&iter, (gpointer *) &client, NULL);
      client_drop (client);
    }
  /* pending waits release their clients, already dropped */
  g_clear_pointer (&server->waits, qpin_control_waits_free);
  g_hash_table_unref (server->clients);
  g_free (server);
}
