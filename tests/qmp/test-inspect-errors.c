/* test-inspect-errors.c: `qpin inspect` against broken and hostile peers:
 * one error line naming the socket, exit status 1, within the timeout */
#include <string.h>
#include <unistd.h>

#include "qpin-fake-peer.h"
#include "qpin-test-qemu.h"

#define HANDSHAKE "handshake\n"

static void
assert_one_line (const char *err, const char *path, const char *expected_tail)
{
  g_autofree char *prefix = g_strdup_printf ("qpin inspect: %s: ", path);

  g_assert_true (g_str_has_prefix (err, prefix));
  g_assert_true (g_str_has_suffix (err, "\n"));
  g_assert_null (strchr (err, '\n') == err + strlen (err) - 1 ? NULL : "more than one line");
  if (expected_tail)
    {
      g_autofree char *expected = g_strdup_printf ("%s%s\n", prefix, expected_tail);
      g_assert_cmpstr (err, ==, expected);
    }
}

static void
expect_failure (const char *script, const char *timeout, const char *expected_tail,
                const char *contains)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  const char *path = qpin_fake_peer_get_path (peer);
  const char *args[] = { "inspect", "--timeout", timeout, path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 start = g_get_monotonic_time ();
  int status = qpin_test_run_qpin (args, &out, &err);

  g_test_message ("stderr: %s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_cmpstr (out, ==, "");
  assert_one_line (err, path, expected_tail);
  if (contains)
    g_assert_nonnull (strstr (err, contains));
  /* bounded by the timeout, not by the peer: generous for slow machines */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
}

static void
test_never_greets (void)
{
  expect_failure ("stall\n", "300",
                  "no QMP greeting within 300 ms (not a QMP socket, or another client holds this "
                  "monitor: QEMU serves one at a time)",
                  NULL);
}

static void
test_garbage (void)
{
  expect_failure ("sendraw SSH-2.0-OpenSSH_9.2\\r\\n\n", "5000", NULL,
                  "bad message from peer: not JSON");
}

static void
test_flood (void)
{
  expect_failure (HANDSHAKE "expect query-name\nflood 104857600\n", "5000",
                  "message exceeds 2097152 bytes without a line end", NULL);
}

static void
test_closes_mid_reply (void)
{
  expect_failure (HANDSHAKE "expect query-name\nsendraw {\"return\": {\"na\n", "5000",
                  "connection closed by peer in the middle of a message", NULL);
}

static void
test_stalls_reply (void)
{
  expect_failure (HANDSHAKE "expect query-name\nstall\n", "300",
                  "no reply to 'query-name' within 300 ms", NULL);
}

static void
test_bad_reply_shape (void)
{
  expect_failure (HANDSHAKE "expect query-name\nsend {\"return\": {}, \"id\": $ID}\n"
                            "expect query-status\nsend {\"return\": {\"status\": \"running\", "
                            "\"running\": true}, \"id\": $ID}\n"
                            "expect query-cpus-fast\nsend {\"return\": [{\"cpu-index\": 0, "
                            "\"thread-id\": \"1\", \"qom-path\": \"/x\"}], \"id\": $ID}\n",
                  "5000", "query-cpus-fast[0]: \"thread-id\" is not an integer", NULL);
}

static void
test_missing_socket (void)
{
  const char *args[] = { "inspect", "/nonexistent/qmp.sock", NULL };
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 1);
  assert_one_line (err, "/nonexistent/qmp.sock", NULL);
  g_assert_nonnull (strstr (err, "cannot connect: "));
  g_assert_nonnull (strstr (err, "No such file or directory"));
}

static void
test_not_a_socket (void)
{
  g_autofree char *path = NULL;
  g_autofree char *out = NULL, *err = NULL;
  int fd = g_file_open_tmp ("qpin-not-a-socket-XXXXXX", &path, NULL);
  const char *args[] = { "inspect", path, NULL };

  close (fd);
  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 1);
  assert_one_line (err, path, NULL);
  g_assert_nonnull (strstr (err, "cannot connect: "));
  unlink (path);
}

static void
test_usage (void)
{
  const char *none[] = { "inspect", NULL };
  const char *bad_timeout[] = { "inspect", "--timeout", "0", "x", NULL };
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

  g_assert_cmpint (qpin_test_run_qpin (none, &out, &err), ==, 2);
  g_assert_cmpstr (err, ==, "qpin inspect: expected one SOCKET argument\n");
  g_assert_cmpint (qpin_test_run_qpin (bad_timeout, &out2, &err2), ==, 2);
  g_assert_cmpstr (err2, ==, "qpin inspect: --timeout must be positive\n");
}

/* HEAD followed by 200,000 '[' on one line of a fake peer's script: json-glib
 * recursed once per '[' and crashed qpin, silently, before the nesting
 * guard learnt to lex what json-glib lexes (HEAD hides the '[' from it) */
static char *
hidden_nesting (const char *step, const char *head)
{
  g_autoptr (GString) script = g_string_new (step);

  g_string_append (script, head);
  for (guint i = 0; i < 200000; i++)
    g_string_append_c (script, '[');
  /* stall: the client may still be writing a pipelined command */
  g_string_append (script, "\\r\\n\nstall\n");
  return g_string_free (g_steal_pointer (&script), FALSE);
}

static void
test_hidden_nesting_greeting (void)
{
  g_autofree char *script = hidden_nesting ("sendraw ", "{\"QMP\": ['\"', ");

  expect_failure (script, "5000",
                  "bad message from peer: not JSON: unexpected character ''' at offset 9", NULL);
}

static void
test_hidden_nesting_reply (void)
{
  g_autofree char *script
    = hidden_nesting (HANDSHAKE "expect query-name\nsendraw ", "{\"return\": /*\"*/");

  expect_failure (script, "5000",
                  "bad message from peer: not JSON: unexpected character '/' at offset 11", NULL);
}

/* attach --once reads the same replies through the same client.  Its
 * registry reports any lost connection as the VM being gone: two lines,
 * the first with the reason */
static void
test_hidden_nesting_attach (void)
{
  g_autofree char *script
    = hidden_nesting (HANDSHAKE "expect query-name\nsendraw ", "{\"return\": ['\"', ");
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  const char *path = qpin_fake_peer_get_path (peer);
  const char *args[] = { "attach", "--once", "--timeout", "5000", path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *expected
    = g_strdup_printf ("qpin attach: vm 'pid-%d' (pid %d) is gone: bad message from peer: not "
                       "JSON: unexpected character ''' at offset 12\n"
                       "qpin attach: %s: QEMU went away before it was pinned\n",
                       getpid (), getpid (), path);

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 1);
  g_assert_cmpstr (err, ==, expected);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
}

/* qpin status parses the daemon's answer with the same check: a fake
 * daemon's hostile answer is one error line, not a crash */
static void
test_hidden_nesting_status (void)
{
  g_autofree char *script = hidden_nesting ("sendraw ", "{\"vms\": /*\"*/");
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  const char *path = qpin_fake_peer_get_path (peer);
  const char *args[] = { "status", "--control", path, NULL };
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 1);
  g_test_message ("stderr: %s", err);
  g_assert_cmpstr (err, ==, "qpin status: not JSON: unexpected character '/' at offset 8\n");
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
}

/* A peer whose vCPU "threads" are not its own (pid 1's, and a TID that
 * does not exist): inspect names each refusal and shows no such vCPU. */
static void
test_foreign_tids (void)
{
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (
    HANDSHAKE "expect query-name\nsend {\"return\": {\"name\": \"liar\"}, \"id\": $ID}\n"
              "expect query-status\nsend {\"return\": {\"status\": \"running\", \"running\": "
              "true}, \"id\": $ID}\n"
              "expect query-cpus-fast\nsend {\"return\": [{\"cpu-index\": 0, \"thread-id\": 1, "
              "\"qom-path\": \"/a\"}, "
              "{\"cpu-index\": 1, \"thread-id\": 4194304, \"qom-path\": \"/b\"}], \"id\": $ID}\n"
              "expect query-iothreads\nsend {\"return\": [], \"id\": $ID}\n");
  const char *path = qpin_fake_peer_get_path (peer);
  const char *args[] = { "inspect", "--json", path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *expected = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *vm;
  JsonArray *threads;

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
  /* the peer is this test process */
  expected = g_strdup_printf ("qpin inspect: %s: refused: vCPU 0 reports thread 1, which is not a "
                              "vCPU thread of process %d\n"
                              "qpin inspect: %s: refused: vCPU 1 reports thread 4194304, which is "
                              "not a vCPU thread of process %d\n",
                              path, getpid (), path, getpid ());
  g_assert_cmpstr (err, ==, expected);
  root = json_from_string (out, NULL);
  vm = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "vms"), 0);
  g_assert_cmpint (json_object_get_int_member (vm, "pid"), ==, getpid ());
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (vm, "refused")), ==, 2);
  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      g_assert_cmpstr (json_object_get_string_member (t, "role"), !=, "vcpu");
      g_assert_cmpint (json_object_get_int_member (t, "tid"), !=, 1);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/inspect/errors/never-greets", test_never_greets);
  g_test_add_func ("/inspect/errors/garbage", test_garbage);
  g_test_add_func ("/inspect/errors/flood", test_flood);
  g_test_add_func ("/inspect/errors/closes-mid-reply", test_closes_mid_reply);
  g_test_add_func ("/inspect/errors/stalls-reply", test_stalls_reply);
  g_test_add_func ("/inspect/errors/bad-reply-shape", test_bad_reply_shape);
  g_test_add_func ("/inspect/errors/missing-socket", test_missing_socket);
  g_test_add_func ("/inspect/errors/not-a-socket", test_not_a_socket);
  g_test_add_func ("/inspect/errors/usage", test_usage);
  g_test_add_func ("/inspect/errors/foreign-tids", test_foreign_tids);
  g_test_add_func ("/inspect/errors/hidden-nesting-greeting", test_hidden_nesting_greeting);
  g_test_add_func ("/inspect/errors/hidden-nesting-reply", test_hidden_nesting_reply);
  g_test_add_func ("/attach/errors/hidden-nesting", test_hidden_nesting_attach);
  g_test_add_func ("/status/errors/hidden-nesting", test_hidden_nesting_status);
  return g_test_run ();
}
