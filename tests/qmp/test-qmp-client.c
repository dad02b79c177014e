/* test-qmp-client.c: the QMP client against a scripted fake peer
 *
 * Each test's script is the whole exchange; qpin_fake_peer_finish()
 * fails the test when the client did not send exactly what it expects.
 */
#include <gio/gio.h>
#include <unistd.h>

#include "qpin-fake-peer.h"
#include "qpin-qmp-client.h"
#include "qpin-unix-address.h"

#define HANDSHAKE "handshake\n"

/* The client keeps itself alive while connected (its read is always
 * outstanding), like GDBusConnection: tests close what they open. */
typedef QpinQmpClient TestClient;
static void
close_and_unref (TestClient *client)
{
  qpin_qmp_client_close (client);
  g_object_unref (client);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestClient, close_and_unref)

typedef struct {
  GString *log;
  guint closed;
  GError *closed_error;
  QpinQmpClient *client;
} Watch;

static void
on_event (QpinQmpClient *client, const char *name, JsonObject *data, gpointer user_data)
{
  Watch *w = user_data;
  g_string_append_printf (w->log, "event:%s,", name);
}

static void
on_closed (QpinQmpClient *client, const GError *error, gpointer user_data)
{
  Watch *w = user_data;
  w->closed++;
  g_clear_error (&w->closed_error);
  w->closed_error = g_error_copy (error);
}

static void
watch_init (Watch *w, QpinQmpClient *client)
{
  w->log = g_string_new (NULL);
  w->closed = 0;
  w->closed_error = NULL;
  w->client = g_object_ref (client);
  g_signal_connect (client, "event", G_CALLBACK (on_event), w);
  g_signal_connect (client, "closed", G_CALLBACK (on_closed), w);
}

static void
watch_clear (Watch *w)
{
  g_signal_handlers_disconnect_by_data (w->client, w);
  g_object_unref (w->client);
  g_string_free (w->log, TRUE);
  g_clear_error (&w->closed_error);
}

static QpinQmpClient *
connect_ok (QpinFakePeer *peer)
{
  g_autoptr (GError) error = NULL;
  QpinQmpClient *client
    = qpin_qmp_client_connect_sync (qpin_fake_peer_get_path (peer), 2000, &error);
  g_assert_no_error (error);
  g_assert_nonnull (client);
  return client;
}

static void
assert_peer_ok (QpinFakePeer *peer)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (qpin_fake_peer_finish (peer, &error));
  g_assert_no_error (error);
}

static void
test_execute (void)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (
    HANDSHAKE "expect query-status\n"
              "send {\"return\": {\"status\": \"prelaunch\", \"running\": false}, \"id\": $ID}\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret = qpin_qmp_client_execute_sync (client, "query-status", NULL, 0, &error);
  JsonObject *greeting = qpin_qmp_client_get_greeting (client);

  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (ret), "status"), ==,
                   "prelaunch");
  g_assert_nonnull (greeting);
  g_assert_true (json_object_has_member (greeting, "version"));
  /* the peer is this very process: SO_PEERCRED says so */
  g_assert_cmpint (qpin_qmp_client_get_peer_pid (client), ==, getpid ());
  g_assert_cmpstr (qpin_qmp_client_get_label (client), ==, qpin_fake_peer_get_path (peer));
  assert_peer_ok (peer);
}

typedef struct {
  GString *log;
  JsonNode *ret;
  GError *error;
  gboolean done;
} Call;

static void
on_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  call->ret = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &call->error);
  call->done = TRUE;
  if (call->log)
    g_string_append (call->log, "reply,");
}

static void
call_clear (Call *call)
{
  g_clear_pointer (&call->ret, json_node_unref);
  g_clear_error (&call->error);
}

static void
wait_for (gboolean *flag)
{
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_event_before_reply (void)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (
    HANDSHAKE "expect cont\n"
              "send {\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\n"
              "send {\"return\": {}, \"id\": $ID}\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  Watch w;
  Call call = { 0 };

  watch_init (&w, client);
  call.log = w.log;
  qpin_qmp_client_execute_async (client, "cont", NULL, 0, NULL, on_call_done, &call);
  wait_for (&call.done);
  g_assert_no_error (call.error);
  g_assert_cmpstr (w.log->str, ==, "event:RESUME,reply,");
  assert_peer_ok (peer);
  call_clear (&call);
  watch_clear (&w);
}

static void
test_out_of_order (void)
{
  g_autoptr (QpinFakePeer) peer
    = qpin_fake_peer_new (HANDSHAKE "expect query-name\nexpect query-status\n"
                                    "send {\"return\": \"second\", \"id\": $ID}\n"
                                    "send {\"return\": \"first\", \"id\": 2}\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  Call a = { 0 }, b = { 0 };

  /* qmp_capabilities was id 1, so these are 2 and 3 */
  qpin_qmp_client_execute_async (client, "query-name", NULL, 0, NULL, on_call_done, &a);
  qpin_qmp_client_execute_async (client, "query-status", NULL, 0, NULL, on_call_done, &b);
  wait_for (&a.done);
  wait_for (&b.done);
  g_assert_cmpstr (json_node_get_string (a.ret), ==, "first");
  g_assert_cmpstr (json_node_get_string (b.ret), ==, "second");
  assert_peer_ok (peer);
  call_clear (&a);
  call_clear (&b);
}

static void
test_arguments_sent (void)
{
  g_autoptr (QpinFakePeer) peer
    = qpin_fake_peer_new (HANDSHAKE "expect qom-get\n"
                                    "send {\"return\": \"pc-i440fx-7.2-machine\", \"id\": $ID}\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret = NULL;

  json_object_set_string_member (args, "path", "/machine");
  json_object_set_string_member (args, "property", "type");
  ret = qpin_qmp_client_execute_sync (client, "qom-get", args, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_node_get_string (ret), ==, "pc-i440fx-7.2-machine");
  assert_peer_ok (peer);
}

/* Run one command against @script; return its error. */
static GError *
command_error (const char *script, guint timeout_ms, Watch *w)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  g_autoptr (TestClient) client = connect_ok (peer);
  g_autoptr (JsonNode) ret = NULL;
  GError *error = NULL;

  watch_init (w, client);
  ret = qpin_qmp_client_execute_sync (client, "x", NULL, timeout_ms, &error);
  g_assert_null (ret);
  g_assert_nonnull (error);
  qpin_qmp_client_close (client);
  assert_peer_ok (peer);
  return error;
}

static void
test_error_reply (void)
{
  Watch w;
  g_autoptr (GError) error
    = command_error (HANDSHAKE "expect x\n"
                               "send {\"id\": $ID, \"error\": {\"class\": \"DeviceNotFound\", "
                               "\"desc\": \"Device 'cpu9' not found\"}}\n",
                     0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_DEVICE_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "Device 'cpu9' not found");
  /* closed once, by us, not by the error reply */
  g_assert_cmpuint (w.closed, ==, 1);
  g_assert_cmpstr (w.closed_error->message, ==, "connection closed by qpin");
  watch_clear (&w);
}

static void
test_error_without_id (void)
{
  Watch w;
  g_autoptr (GError) error
    = command_error (HANDSHAKE "expect x\n"
                               "send {\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON "
                               "parse error, expecting value\"}}\n",
                     0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_GENERIC_ERROR);
  g_assert_cmpstr (error->message, ==, "JSON parse error, expecting value");
  watch_clear (&w);
}

static void
test_unknown_id_ignored (void)
{
  g_autoptr (QpinFakePeer) peer
    = qpin_fake_peer_new (HANDSHAKE "expect query-name\n"
                                    "send {\"return\": {\"name\": \"wrong\"}, \"id\": 9999}\n"
                                    "send {\"return\": {\"name\": \"wrong\"}, \"id\": \"qpin-2\"}\n"
                                    "send {\"return\": {\"name\": \"right\"}, \"id\": $ID}\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret = qpin_qmp_client_execute_sync (client, "query-name", NULL, 0, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (ret), "name"), ==, "right");
  assert_peer_ok (peer);
}

static void
test_command_timeout (void)
{
  Watch w;
  gint64 start = g_get_monotonic_time ();
  g_autoptr (GError) error = command_error (HANDSHAKE "expect x\nstall\n", 200, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "no reply to 'x' within 200 ms");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 200 * 1000);
  watch_clear (&w);
}

static void
test_closed_pending (void)
{
  Watch w;
  g_autoptr (GError) error = command_error (HANDSHAKE "expect x\n", 0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==, "connection closed by peer");
  g_assert_cmpuint (w.closed, ==, 1);
  g_assert_cmpstr (w.closed_error->message, ==, "connection closed by peer");
  watch_clear (&w);
}

static void
test_eof_fails_every_pending (void)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (HANDSHAKE "expect a\nexpect b\nexpect c\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  Call calls[3] = { 0 };
  Watch w;

  watch_init (&w, client);
  qpin_qmp_client_execute_async (client, "a", NULL, 0, NULL, on_call_done, &calls[0]);
  qpin_qmp_client_execute_async (client, "b", NULL, 0, NULL, on_call_done, &calls[1]);
  qpin_qmp_client_execute_async (client, "c", NULL, 0, NULL, on_call_done, &calls[2]);
  for (guint i = 0; i < 3; i++)
    {
      wait_for (&calls[i].done);
      g_assert_error (calls[i].error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
      call_clear (&calls[i]);
    }
  g_assert_cmpuint (w.closed, ==, 1);
  g_assert_true (qpin_qmp_client_is_closed (client));
  /* a command after the end fails at once, and "closed" is not repeated */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonNode) ret = qpin_qmp_client_execute_sync (client, "d", NULL, 0, &error);
    g_assert_null (ret);
    g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
    g_assert_cmpstr (error->message, ==, "connection is closed");
  }
  qpin_qmp_client_close (client);
  g_assert_cmpuint (w.closed, ==, 1);
  assert_peer_ok (peer);
  watch_clear (&w);
}

static void
test_mid_message_eof (void)
{
  Watch w;
  g_autoptr (GError) error
    = command_error (HANDSHAKE "expect x\nsendraw {\"return\": {\"name\"", 0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==, "connection closed by peer in the middle of a message");
  watch_clear (&w);
}

static void
test_reset (void)
{
  Watch w;
  g_autoptr (GError) error = command_error (HANDSHAKE "reset\n", 0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==, "connection reset by peer");
  watch_clear (&w);
}

static void
test_garbage (void)
{
  Watch w;
  g_autoptr (GError) error
    = command_error (HANDSHAKE "expect x\nsendraw hello world\\r\\n\n", 0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
  g_assert_true (g_str_has_prefix (error->message, "bad message from peer: not JSON: "));
  g_assert_cmpuint (w.closed, ==, 1);
  watch_clear (&w);
}

static void
test_non_object (void)
{
  Watch w;
  g_autoptr (GError) error = command_error (HANDSHAKE "expect x\nsend [1, 2]\n", 0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "bad message from peer: message is not a JSON object");
  watch_clear (&w);
}

static void
test_oversized (void)
{
  Watch w;
  g_autoptr (GError) error = command_error (HANDSHAKE "expect x\nflood 104857600\n", 0, &w);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING);
  g_assert_cmpstr (error->message, ==, "message exceeds 2097152 bytes without a line end");
  watch_clear (&w);
}

static void
test_dribble (void)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (
    "dribble {\"QMP\": {\"version\": {}, \"capabilities\": []}}\n"
    "expect qmp_capabilities\n"
    "dribble {\"return\": {}, \"id\": $ID}\n"
    "expect query-name\n"
    "sendraw {\"event\": \"STOP\"}\\r\\n{\"return\": {\"name\": \"vm\"}, \"id\": $ID}\\r\\n\n");
  g_autoptr (TestClient) client = connect_ok (peer);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret = NULL;
  Watch w;

  watch_init (&w, client);
  ret = qpin_qmp_client_execute_sync (client, "query-name", NULL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (w.log->str, ==, "event:STOP,");
  assert_peer_ok (peer);
  watch_clear (&w);
}

static GError *
connect_error (const char *script, guint timeout_ms)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  g_autoptr (TestClient) client = NULL;
  GError *error = NULL;

  client = qpin_qmp_client_connect_sync (qpin_fake_peer_get_path (peer), timeout_ms, &error);
  g_assert_null (client);
  g_assert_nonnull (error);
  assert_peer_ok (peer);
  return error;
}

static void
test_no_greeting (void)
{
  g_autoptr (GError) error = connect_error ("stall\n", 300);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==,
                   "no QMP greeting within 300 ms (not a QMP socket, or another client holds "
                   "this monitor: QEMU serves one at a time)");
}

static void
test_no_capabilities_reply (void)
{
  g_autoptr (GError) error = connect_error ("greet\nexpect qmp_capabilities\nstall\n", 300);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "no reply to qmp_capabilities within 300 ms");
}

static void
test_not_greeting_first (void)
{
  g_autoptr (GError) error = connect_error ("send {\"return\": {}}\n", 0);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "peer did not start with a QMP greeting");
}

static void
test_eof_before_greeting (void)
{
  g_autoptr (GError) error = connect_error ("", 0);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==, "connection closed by peer before the QMP greeting");
}

static void
test_capabilities_refused (void)
{
  g_autoptr (GError) error
    = connect_error ("greet\nexpect qmp_capabilities\n"
                     "send {\"id\": $ID, \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                     "\"Capabilities negotiation is already complete, command ignored\"}}\n",
                     0);

  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_COMMAND_NOT_FOUND);
  g_assert_cmpstr (error->message, ==,
                   "qmp_capabilities refused: Capabilities negotiation is "
                   "already complete, command ignored");
}

static void
test_missing_socket (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TestClient) client
    = qpin_qmp_client_connect_sync ("/nonexistent/qmp.sock", 500, &error);

  g_assert_null (client);
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_CLOSED);
  g_assert_true (g_str_has_prefix (error->message, "cannot connect: "));
  g_assert_nonnull (strstr (error->message, "No such file or directory"));
}

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QpinQmpClient **out = user_data;
  g_autoptr (GError) error = NULL;

  *out = qpin_qmp_client_handshake_finish (result, &error);
  g_assert_no_error (error);
}

/* QEMU connecting to us (-chardev socket,reconnect=1): the client starts
 * from an already established connection. */
static void
test_existing_connection (void)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (
    HANDSHAKE "expect query-name\nsend {\"return\": {\"name\": \"guest\"}, \"id\": $ID}\n");
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (qpin_fake_peer_get_path (peer));
  g_autoptr (GSocketConnection) conn
    = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, NULL);
  g_autoptr (TestClient) client = NULL;
  g_autoptr (JsonNode) ret = NULL;

  g_assert_nonnull (conn);
  qpin_qmp_client_handshake_async (conn, "accepted", 2000, NULL, on_handshake, &client);
  while (client == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (qpin_qmp_client_get_peer_pid (client), ==, getpid ());
  ret = qpin_qmp_client_execute_sync (client, "query-name", NULL, 0, NULL);
  g_assert_nonnull (ret);
  assert_peer_ok (peer);
}

/* sun_path holds 108 bytes with the NUL: a 107-byte path is an address, a
 * 108-byte one is an error, never the same path cut to 107 bytes (which
 * names another file). */
static void
test_long_path (void)
{
  g_autofree char *a106 = g_strnfill (106, 'a');
  g_autofree char *fits = g_strconcat ("/", a106, NULL);
  g_autofree char *too_long = g_strconcat (fits, "a", NULL);
  g_autofree char *expected = g_strdup_printf (
    "socket path '%s' is 108 bytes long; a unix socket path has at most 107", too_long);
  g_autoptr (GSocketAddress) addr = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = NULL;

  addr = qpin_unix_address_new (fits, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (addr)), ==, fits);
  g_assert_null (qpin_unix_address_new (too_long, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG);
  g_assert_cmpstr (error->message, ==, expected);
  g_clear_error (&error);
  client = qpin_qmp_client_connect_sync (too_long, 1000, &error);
  g_assert_null (client);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/qmp/client/execute", test_execute);
  g_test_add_func ("/qmp/client/arguments", test_arguments_sent);
  g_test_add_func ("/qmp/client/event-before-reply", test_event_before_reply);
  g_test_add_func ("/qmp/client/out-of-order", test_out_of_order);
  g_test_add_func ("/qmp/client/error-reply", test_error_reply);
  g_test_add_func ("/qmp/client/error-without-id", test_error_without_id);
  g_test_add_func ("/qmp/client/unknown-id-ignored", test_unknown_id_ignored);
  g_test_add_func ("/qmp/client/command-timeout", test_command_timeout);
  g_test_add_func ("/qmp/client/closed-pending", test_closed_pending);
  g_test_add_func ("/qmp/client/eof-fails-every-pending", test_eof_fails_every_pending);
  g_test_add_func ("/qmp/client/mid-message-eof", test_mid_message_eof);
  g_test_add_func ("/qmp/client/reset", test_reset);
  g_test_add_func ("/qmp/client/garbage", test_garbage);
  g_test_add_func ("/qmp/client/non-object", test_non_object);
  g_test_add_func ("/qmp/client/oversized", test_oversized);
  g_test_add_func ("/qmp/client/dribble", test_dribble);
  g_test_add_func ("/qmp/client/no-greeting", test_no_greeting);
  g_test_add_func ("/qmp/client/no-capabilities-reply", test_no_capabilities_reply);
  g_test_add_func ("/qmp/client/not-greeting-first", test_not_greeting_first);
  g_test_add_func ("/qmp/client/eof-before-greeting", test_eof_before_greeting);
  g_test_add_func ("/qmp/client/capabilities-refused", test_capabilities_refused);
  g_test_add_func ("/qmp/client/missing-socket", test_missing_socket);
  g_test_add_func ("/qmp/client/existing-connection", test_existing_connection);
  g_test_add_func ("/qmp/client/long-path", test_long_path);
  return g_test_run ();
}
