/* qpin-qmp-client.c: QMP connection state machine
 *
 *   GREETING --greeting--> NEGOTIATING --capabilities ok--> READY
 *       \______________________\______________________________\--> CLOSED
 *
 * Reads are always outstanding while not CLOSED; writes are queued and
 * written one at a time.  Any transport or protocol failure funnels into
 * fail_connection(), which is the only place that enters CLOSED.
 */
#define G_LOG_DOMAIN "qpin-qmp"

#include "qpin-qmp-client.h"
#include "qpin-qmp-framer.h"
#include "qpin-qmp-message.h"
#include "qpin-unix-address.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>

/* QMP messages are small; a larger one takes several reads.  One page per
 * connection keeps a daemon with hundreds of VMs small. */
#define READ_CHUNK 16384

typedef enum {
  STATE_GREETING,
  STATE_NEGOTIATING,
  STATE_READY,
  STATE_CLOSED,
} ClientState;

typedef struct {
  gint64 id;
  char *command;
  guint timeout_ms;
  GTask *task;
  GSource *timeout;
} Pending;

struct _QpinQmpClient {
  GObject parent_instance;

  GSocketConnection *connection;
  GInputStream *in;
  GOutputStream *out;
  char *label;
  GPid peer_pid;
  GMainContext *context;
  GCancellable *io_cancel;
  QpinQmpFramer *framer;
  GSource *read_source; /* holds a ref on the client until CLOSED */

  ClientState state;
  GQueue pending; /* Pending*, oldest first */
  GQueue outq;    /* GBytes* */
  gboolean writing;
  gint64 next_id;
  JsonNode *greeting;
  GTask *handshake; /* while GREETING or NEGOTIATING */
  GSource *handshake_timeout;
  guint handshake_timeout_ms;
};

enum { SIGNAL_EVENT, SIGNAL_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE (QpinQmpClient, qpin_qmp_client, G_TYPE_OBJECT)

static void start_read (QpinQmpClient *client);
static void start_write (QpinQmpClient *client);

static void
pending_free (Pending *p)
{
  if (p->timeout)
    {
      g_source_destroy (p->timeout);
      g_source_unref (p->timeout);
    }
  g_clear_object (&p->task);
  g_free (p->command);
  g_free (p);
}

static void
destroy_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_source_unref (*source);
  *source = NULL;
}

/* Enter CLOSED: fail the handshake and every pending command with @error
 * (transfer full), then tell "closed" handlers.  Safe to call repeatedly. */
static void
fail_connection (QpinQmpClient *client, GError *error)
{
  g_autoptr (GError) reason = error;
  g_autoptr (QpinQmpClient) keep = g_object_ref (client); /* handlers may drop theirs */
  Pending *p;

  (void) keep;
  if (client->state == STATE_CLOSED)
    return;
  client->state = STATE_CLOSED;
  g_debug ("%s: closed: %s", client->label, reason->message);

  g_cancellable_cancel (client->io_cancel);
  destroy_source (&client->read_source);
  destroy_source (&client->handshake_timeout);
  g_queue_clear_full (&client->outq, (GDestroyNotify) g_bytes_unref);
  if (client->connection)
    g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);

  if (client->handshake)
    {
      g_autoptr (GTask) task = g_steal_pointer (&client->handshake);
      g_task_return_error (task, g_error_copy (reason));
    }
  while ((p = g_queue_pop_head (&client->pending)) != NULL)
    {
      g_task_return_error (p->task, g_error_copy (reason));
      pending_free (p);
    }
  g_signal_emit (client, signals[SIGNAL_CLOSED], 0, reason);
}

static void
fail_connection_literal (QpinQmpClient *client, QpinQmpError code, const char *message)
{
  fail_connection (client, g_error_new_literal (QPIN_QMP_ERROR, code, message));
}

static gboolean
on_command_timeout (gpointer user_data)
{
  QpinQmpClient *client = user_data;
  GSource *current = g_main_current_source ();

  for (GList *l = client->pending.head; l; l = l->next)
    {
      Pending *p = l->data;
      if (p->timeout != current)
        continue;
      g_queue_delete_link (&client->pending, l);
      g_task_return_new_error (p->task, QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT,
                               "no reply to '%s' within %u ms", p->command, p->timeout_ms);
      pending_free (p);
      break;
    }
  return G_SOURCE_REMOVE;
}

static Pending *
take_pending (QpinQmpClient *client, const QpinQmpMessage *msg)
{
  /* QEMU answers in order; a reply without id (a JSON parse error on its
   * side) belongs to the oldest command, as in libvirt's monitor. */
  if (!msg->has_id)
    return g_queue_pop_head (&client->pending);
  if (!msg->id_valid)
    return NULL;
  for (GList *l = client->pending.head; l; l = l->next)
    {
      Pending *p = l->data;
      if (p->id == msg->id)
        {
          g_queue_delete_link (&client->pending, l);
          return p;
        }
    }
  return NULL;
}

static void
handle_reply (QpinQmpClient *client, QpinQmpMessage *msg)
{
  Pending *p = take_pending (client, msg);

  if (p == NULL)
    {
      g_debug ("%s: dropping a reply that matches no pending command", client->label);
      return;
    }
  if (msg->kind == QPIN_QMP_MESSAGE_RETURN)
    g_task_return_pointer (p->task, json_node_ref (msg->ret), (GDestroyNotify) json_node_unref);
  else
    g_task_return_error (p->task, qpin_qmp_message_to_error (msg));
  pending_free (p);
}

static void
on_capabilities (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QpinQmpClient *client = QPIN_QMP_CLIENT (source);
  g_autoptr (JsonNode) ret = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GTask) task = NULL;

  ret = qpin_qmp_client_execute_finish (client, result, &error);
  if (client->state == STATE_CLOSED)
    return; /* the handshake already failed with the reason */
  if (ret == NULL)
    {
      g_prefix_error (&error, "qmp_capabilities refused: ");
      fail_connection (client, g_steal_pointer (&error));
      return;
    }
  client->state = STATE_READY;
  destroy_source (&client->handshake_timeout);
  task = g_steal_pointer (&client->handshake);
  g_task_return_pointer (task, g_object_ref (client), g_object_unref);
}

/* Returns FALSE when the message ends the connection. */
static gboolean
handle_line (QpinQmpClient *client, const char *line, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpMessage) msg = qpin_qmp_message_parse (line, (gssize) len, &error);

  if (msg == NULL)
    {
      g_prefix_error (&error, "bad message from peer: ");
      fail_connection (client, g_steal_pointer (&error));
      return FALSE;
    }

  if (client->state == STATE_GREETING)
    {
      if (msg->kind != QPIN_QMP_MESSAGE_GREETING)
        {
          fail_connection_literal (client, QPIN_QMP_ERROR_PROTOCOL,
                                   "peer did not start with a QMP greeting");
          return FALSE;
        }
      client->greeting = json_node_ref (msg->root);
      client->state = STATE_NEGOTIATING;
      qpin_qmp_client_execute_async (client, "qmp_capabilities", NULL, 0, NULL, on_capabilities,
                                     NULL);
      return TRUE;
    }

  switch (msg->kind)
    {
    case QPIN_QMP_MESSAGE_GREETING:
      g_debug ("%s: ignoring a second greeting", client->label);
      break;
    case QPIN_QMP_MESSAGE_RETURN:
    case QPIN_QMP_MESSAGE_ERROR:
      handle_reply (client, msg);
      break;
    case QPIN_QMP_MESSAGE_EVENT:
      g_debug ("%s: event %s", client->label, msg->event);
      g_signal_emit (client, signals[SIGNAL_EVENT], g_quark_try_string (msg->event), msg->event,
                     msg->data);
      break;
    }
  return client->state != STATE_CLOSED;
}

/* One read buffer per thread, shared by every client on it: each read is
 * copied into the client's framer before the next, so an idle connection
 * holds no read buffer. */
static _Thread_local guint8 read_buf[READ_CHUNK];

static gboolean
on_readable (GObject *stream, gpointer user_data)
{
  QpinQmpClient *client = user_data; /* the source's ref keeps it through this call */
  g_autoptr (GError) error = NULL;
  gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), read_buf,
                                                       sizeof read_buf, client->io_cancel, &error);
  const char *line;
  gsize len;

  if (client->state == STATE_CLOSED)
    return G_SOURCE_REMOVE;
  if (n < 0)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
          || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
        fail_connection_literal (client, QPIN_QMP_ERROR_CLOSED, "connection reset by peer");
      else
        fail_connection (client, g_error_new (QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED,
                                              "read failed: %s", error->message));
      return G_SOURCE_REMOVE;
    }
  if (n == 0)
    {
      if (qpin_qmp_framer_pending (client->framer) > 0)
        fail_connection_literal (client, QPIN_QMP_ERROR_CLOSED,
                                 "connection closed by peer in the middle of a message");
      else if (client->state == STATE_GREETING)
        fail_connection_literal (client, QPIN_QMP_ERROR_CLOSED,
                                 "connection closed by peer before the QMP greeting");
      else
        fail_connection_literal (client, QPIN_QMP_ERROR_CLOSED, "connection closed by peer");
      return G_SOURCE_REMOVE;
    }
  if (!qpin_qmp_framer_feed (client->framer, (const char *) read_buf, (gsize) n, &error))
    {
      fail_connection (client, g_steal_pointer (&error));
      return G_SOURCE_REMOVE;
    }
  for (;;)
    {
      if (!qpin_qmp_framer_next (client->framer, &line, &len, &error))
        {
          fail_connection (client, g_steal_pointer (&error));
          return G_SOURCE_REMOVE;
        }
      if (line == NULL)
        break;
      if (!handle_line (client, line, len))
        return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
start_read (QpinQmpClient *client)
{
  client->read_source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (client->in),
                                                               client->io_cancel);
  g_source_set_callback (client->read_source, G_SOURCE_FUNC (on_readable), g_object_ref (client),
                         g_object_unref);
  g_source_attach (client->read_source, client->context);
}

static void
on_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (QpinQmpClient) client = user_data;
  g_autoptr (GError) error = NULL;

  client->writing = FALSE;
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      if (client->state != STATE_CLOSED)
        fail_connection (client, g_error_new (QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED,
                                              "write failed: %s", error->message));
      return;
    }
  g_bytes_unref (g_queue_pop_head (&client->outq));
  start_write (client);
}

static void
start_write (QpinQmpClient *client)
{
  GBytes *bytes;
  gsize size;
  gconstpointer data;

  if (client->writing || client->state == STATE_CLOSED
      || (bytes = g_queue_peek_head (&client->outq)) == NULL)
    return;
  client->writing = TRUE;
  data = g_bytes_get_data (bytes, &size);
  g_output_stream_write_all_async (client->out, data, size, G_PRIORITY_DEFAULT, client->io_cancel,
                                   on_written, g_object_ref (client));
}

static void
qpin_qmp_client_finalize (GObject *object)
{
  QpinQmpClient *client = QPIN_QMP_CLIENT (object);

  /* Pending tasks hold a ref on the client, so none is left here. */
  g_assert (g_queue_is_empty (&client->pending));
  g_assert (client->handshake == NULL);
  destroy_source (&client->handshake_timeout);
  g_queue_clear_full (&client->outq, (GDestroyNotify) g_bytes_unref);
  g_clear_object (&client->io_cancel);
  g_clear_object (&client->connection);
  g_clear_pointer (&client->framer, qpin_qmp_framer_free);
  g_clear_pointer (&client->greeting, json_node_unref);
  g_clear_pointer (&client->context, g_main_context_unref);
  g_free (client->label);
  G_OBJECT_CLASS (qpin_qmp_client_parent_class)->finalize (object);
}

static void
qpin_qmp_client_class_init (QpinQmpClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qpin_qmp_client_finalize;

  /**
   * QpinQmpClient::event:
   * @name: the event name, e.g. "SHUTDOWN"; also the signal detail
   * @data: (nullable): the event's "data" object
   */
  signals[SIGNAL_EVENT]
    = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_POINTER);
  /**
   * QpinQmpClient::closed:
   * @error: why; QPIN_QMP_ERROR_CLOSED for EOF/reset, otherwise the
   *   timeout or protocol error that ended the connection
   */
  signals[SIGNAL_CLOSED] = g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
qpin_qmp_client_init (QpinQmpClient *client)
{
  client->io_cancel = g_cancellable_new ();
  client->framer = qpin_qmp_framer_new (QPIN_QMP_FRAMER_DEFAULT_MAX);
  client->context = g_main_context_ref_thread_default ();
  client->next_id = 1;
  g_queue_init (&client->pending);
  g_queue_init (&client->outq);
}

static GPid
peer_pid_of (GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr (GCredentials) creds = NULL;

  if (g_socket_get_family (socket) != G_SOCKET_FAMILY_UNIX)
    return 0;
  creds = g_socket_get_credentials (socket, NULL);
  if (creds == NULL)
    return 0;
  return g_credentials_get_unix_pid (creds, NULL);
}

static gboolean
on_handshake_timeout (gpointer user_data)
{
  QpinQmpClient *client = user_data;
  guint ms = client->handshake_timeout_ms;

  g_source_unref (g_steal_pointer (&client->handshake_timeout));
  if (client->state == STATE_GREETING)
    fail_connection (client,
                     g_error_new (QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT,
                                  "no QMP greeting within %u ms (not a QMP socket, or another "
                                  "client holds this monitor: QEMU serves one at a time)",
                                  ms));
  else
    fail_connection (client, g_error_new (QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT,
                                          "no reply to qmp_capabilities within %u ms", ms));
  return G_SOURCE_REMOVE;
}

/**
 * qpin_qmp_client_handshake_async:
 * @connection: a connected stream to a QMP monitor (ours to keep)
 * @label: how logs and errors name this peer, e.g. the socket path
 * @timeout_ms: limit for greeting plus capability negotiation
 *
 * Starts the client over an existing connection, e.g. one accepted from a
 * QEMU started with -chardev socket,reconnect=1.  Completes when the
 * monitor is in command mode.
 */
void
qpin_qmp_client_handshake_async (GSocketConnection *connection, const char *label, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_autoptr (QpinQmpClient) client = g_object_new (QPIN_TYPE_QMP_CLIENT, NULL);

  client->connection = g_object_ref (connection);
  client->in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  client->out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  client->label = g_strdup (label);
  client->peer_pid = peer_pid_of (connection);
  client->handshake = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (client->handshake, qpin_qmp_client_handshake_async);

  if (timeout_ms == 0)
    timeout_ms = QPIN_QMP_DEFAULT_TIMEOUT_MS;
  client->handshake_timeout_ms = timeout_ms;
  client->handshake_timeout = g_timeout_source_new (timeout_ms);
  g_source_set_callback (client->handshake_timeout, on_handshake_timeout, client, NULL);
  g_source_attach (client->handshake_timeout, client->context);
  /* the read source keeps the client alive until it is CLOSED */
  start_read (client);
}

/**
 * qpin_qmp_client_handshake_finish:
 *
 * Returns: (transfer full): the ready client, or %NULL with the reason
 */
QpinQmpClient *
qpin_qmp_client_handshake_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct {
  char *label;
  guint timeout_ms;
  GSource *timeout;
  gboolean timed_out;
  GCancellable *cancel;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  destroy_source (&data->timeout);
  g_clear_object (&data->cancel);
  g_free (data->label);
  g_free (data);
}

static gboolean
on_connect_timeout (gpointer user_data)
{
  ConnectData *data = user_data;

  data->timed_out = TRUE;
  g_cancellable_cancel (data->cancel);
  return G_SOURCE_REMOVE;
}

static void
on_handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  QpinQmpClient *client = qpin_qmp_client_handshake_finish (result, &error);

  if (client == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, client, g_object_unref);
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) connection = NULL;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  destroy_source (&data->timeout);
  if (connection == NULL)
    {
      if (data->timed_out)
        g_task_return_new_error (task, QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT,
                                 "could not connect within %u ms", data->timeout_ms);
      else
        g_task_return_new_error (task, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED, "cannot connect: %s",
                                 error->message);
      return;
    }
  qpin_qmp_client_handshake_async (connection, data->label, data->timeout_ms,
                                   g_task_get_cancellable (task), on_handshake_done,
                                   g_object_ref (task));
}

/* "tcp:HOST:PORT", "unix:PATH" or a plain path */
static GSocketConnectable *
parse_address (const char *address, GError **error)
{
  if (g_str_has_prefix (address, "tcp:"))
    {
      GSocketConnectable *c = g_network_address_parse (address + 4, 0, error);
      if (c == NULL)
        g_prefix_error (error, "bad address '%s': ", address);
      return c;
    }
  if (g_str_has_prefix (address, "unix:"))
    address += 5;
  if (*address == '\0')
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED, "empty socket path");
      return NULL;
    }
  /* a GSocketAddress is a GSocketConnectable; NULL stays NULL */
  return (GSocketConnectable *) qpin_unix_address_new (address, error);
}

/**
 * qpin_qmp_client_connect_async:
 * @address: a unix socket path ("unix:" prefix optional) or "tcp:HOST:PORT"
 * @timeout_ms: limit for connect, greeting and negotiation; 0 for the default
 *
 * Connects to a QMP server socket and negotiates capabilities.
 */
void
qpin_qmp_client_connect_async (const char *address, guint timeout_ms, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketConnectable) connectable = NULL;
  g_autoptr (GError) error = NULL;
  ConnectData *data;

  g_task_set_source_tag (task, qpin_qmp_client_connect_async);
  connectable = parse_address (address, &error);
  if (connectable == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  data = g_new0 (ConnectData, 1);
  data->label = g_strdup (address);
  data->timeout_ms = timeout_ms ? timeout_ms : QPIN_QMP_DEFAULT_TIMEOUT_MS;
  data->cancel = g_cancellable_new ();
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);
  if (cancellable)
    g_cancellable_connect (cancellable, G_CALLBACK (g_cancellable_cancel),
                           g_object_ref (data->cancel), g_object_unref);
  data->timeout = g_timeout_source_new (data->timeout_ms);
  g_source_set_callback (data->timeout, on_connect_timeout, data, NULL);
  g_source_attach (data->timeout, g_main_context_get_thread_default ());
  g_socket_client_connect_async (sc, connectable, data->cancel, on_connected,
                                 g_steal_pointer (&task));
}

/**
 * qpin_qmp_client_connect_finish:
 *
 * Returns: (transfer full): the ready client, or %NULL with the reason
 */
QpinQmpClient *
qpin_qmp_client_connect_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/**
 * qpin_qmp_client_connect_sync:
 *
 * qpin_qmp_client_connect_async() for command-line tools: iterates the
 * thread-default main context until done.  Not for use inside a running
 * GMainLoop dispatch.
 *
 * Returns: (transfer full): the ready client, or %NULL with the reason
 */
QpinQmpClient *
qpin_qmp_client_connect_sync (const char *address, guint timeout_ms, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;
  GMainContext *context = g_main_context_get_thread_default ();

  qpin_qmp_client_connect_async (address, timeout_ms, NULL, store_result, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  return qpin_qmp_client_connect_finish (result, error);
}

/**
 * qpin_qmp_client_execute_async:
 * @command: the QMP command name
 * @arguments: (nullable): its arguments; serialized at once, not kept
 * @timeout_ms: 0 for the default
 *
 * Queues a command.  Its reply, error, the timeout or the loss of the
 * connection completes it.
 */
void
qpin_qmp_client_execute_async (QpinQmpClient *client, const char *command, JsonObject *arguments,
                               guint timeout_ms, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (client, cancellable, callback, user_data);
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  Pending *p;
  gsize len;

  g_task_set_source_tag (task, qpin_qmp_client_execute_async);
  if (client->state == STATE_CLOSED)
    {
      g_task_return_new_error (task, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED, "connection is closed");
      return;
    }
  if (timeout_ms == 0)
    timeout_ms = QPIN_QMP_DEFAULT_TIMEOUT_MS;

  p = g_new0 (Pending, 1);
  p->id = client->next_id++;
  p->command = g_strdup (command);
  p->timeout_ms = timeout_ms;
  p->task = g_steal_pointer (&task);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "execute");
  json_builder_add_string_value (builder, command);
  if (arguments)
    {
      json_builder_set_member_name (builder, "arguments");
      json_builder_add_value (builder, json_node_init_object (json_node_alloc (), arguments));
    }
  json_builder_set_member_name (builder, "id");
  json_builder_add_int_value (builder, p->id);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, &len);
  g_debug ("%s: -> %s", client->label, text);

  p->timeout = g_timeout_source_new (timeout_ms);
  g_source_set_callback (p->timeout, on_command_timeout, client, NULL);
  g_source_attach (p->timeout, client->context);
  g_queue_push_tail (&client->pending, p);

  g_queue_push_tail (&client->outq, g_bytes_new_take (g_strconcat (text, "\r\n", NULL), len + 2));
  start_write (client);
}

/**
 * qpin_qmp_client_execute_finish:
 *
 * Returns: (transfer full): the command's "return" value, or %NULL with
 * the QMP error (code from its class, message its desc) or the transport
 * failure
 */
JsonNode *
qpin_qmp_client_execute_finish (QpinQmpClient *client, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * qpin_qmp_client_execute_sync:
 *
 * qpin_qmp_client_execute_async() for command-line tools; see
 * qpin_qmp_client_connect_sync().
 *
 * Returns: (transfer full): as qpin_qmp_client_execute_finish()
 */
JsonNode *
qpin_qmp_client_execute_sync (QpinQmpClient *client, const char *command, JsonObject *arguments,
                              guint timeout_ms, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  qpin_qmp_client_execute_async (client, command, arguments, timeout_ms, NULL, store_result,
                                 &result);
  while (result == NULL)
    g_main_context_iteration (client->context, TRUE);
  return qpin_qmp_client_execute_finish (client, result, error);
}

/**
 * qpin_qmp_client_close:
 *
 * Closes the connection; pending commands fail with QPIN_QMP_ERROR_CLOSED
 * and "closed" is emitted, unless the connection was already closed.
 */
void
qpin_qmp_client_close (QpinQmpClient *client)
{
  fail_connection_literal (client, QPIN_QMP_ERROR_CLOSED, "connection closed by qpin");
}

gboolean
qpin_qmp_client_is_closed (QpinQmpClient *client)
{
  return client->state == STATE_CLOSED;
}

/**
 * qpin_qmp_client_get_label:
 *
 * Returns: (transfer none): the address or label given at creation
 */
const char *
qpin_qmp_client_get_label (QpinQmpClient *client)
{
  return client->label;
}

/**
 * qpin_qmp_client_get_peer_pid:
 *
 * Returns: the peer's pid from SO_PEERCRED on unix sockets, 0 otherwise
 */
GPid
qpin_qmp_client_get_peer_pid (QpinQmpClient *client)
{
  return client->peer_pid;
}

/**
 * qpin_qmp_client_get_socket:
 *
 * Returns: (transfer none) (nullable): the connection's socket, for the
 *   peer's credentials
 */
GSocket *
qpin_qmp_client_get_socket (QpinQmpClient *client)
{
  if (client->connection == NULL)
    return NULL;
  return g_socket_connection_get_socket (client->connection);
}

/**
 * qpin_qmp_client_get_greeting:
 *
 * Returns: (transfer none) (nullable): the "QMP" object of the greeting
 */
JsonObject *
qpin_qmp_client_get_greeting (QpinQmpClient *client)
{
  if (client->greeting == NULL)
    return NULL;
  return json_object_get_object_member (json_node_get_object (client->greeting), "QMP");
}
