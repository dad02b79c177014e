/* test-table-names.c: a VM name with a newline and a terminal escape
 * (from a hostile or careless QMP peer) cannot split or recolour the
 * tables of inspect, attach and status: control characters are printed
 * C-escaped; JSON keeps the exact name. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "qpin-fake-peer.h"
#include "qpin-test-qemu.h"

/* the name as the peer sends it (JSON), as it is, and as tables print it */
#define EVIL_JSON "evil\\nname\\u001b[31m"
#define EVIL "evil\nname\x1b[31m"
#define EVIL_TABLE "evil\\nname\\x1b[31m"

/* A peer named EVIL whose vCPU "threads" are pid 1's and a TID that does
 * not exist: refused, so nothing is pinned; @status says whether it is
 * asked query-status (inspect asks it, the registry does not). */
static char *
evil_script (gboolean status, gboolean stall)
{
  return g_strdup_printf (
    "handshake\n"
    "expect query-name\nsend {\"return\": {\"name\": \"" EVIL_JSON "\"}, \"id\": $ID}\n"
    "%s"
    "expect query-cpus-fast\nsend {\"return\": [{\"cpu-index\": 0, \"thread-id\": 1, "
    "\"qom-path\": \"/a\"}, {\"cpu-index\": 1, \"thread-id\": 4194304, \"qom-path\": \"/b\"}], "
    "\"id\": $ID}\n"
    "expect query-iothreads\nsend {\"return\": [], \"id\": $ID}\n%s",
    status ? "expect query-status\nsend {\"return\": {\"status\": \"running\", \"running\": true}, "
             "\"id\": $ID}\n"
           : "",
    stall ? "stall\n" : "");
}

/* Every line of @out starts with @prefix (after the header line when
 * @header), and no raw escape character is printed. */
static void
assert_lines (const char *out, gboolean header, const char *prefix, guint n_lines)
{
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);

  g_test_message ("%s", out);
  g_assert_null (strchr (out, '\x1b'));
  g_assert_cmpuint (g_strv_length (lines), ==, n_lines + 1); /* the last is "" */
  g_assert_cmpstr (lines[n_lines], ==, "");
  for (guint i = header ? 1 : 0; i < n_lines; i++)
    g_assert_true (g_str_has_prefix (lines[i], prefix));
}

static void
test_inspect (void)
{
  g_autofree char *script = evil_script (TRUE, FALSE);
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  const char *args[] = { "inspect", qpin_fake_peer_get_path (peer), NULL };
  g_autofree char *out = NULL, *err = NULL, *first = NULL;
  g_auto (GStrv) lines = NULL;

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
  first = g_strdup_printf ("vm '" EVIL_TABLE "' pid %d status running qemu 7.2.22", getpid ());
  g_test_message ("%s", out);
  g_assert_null (strchr (out, '\x1b'));
  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpstr (lines[0], ==, first);
  g_assert_true (g_str_has_prefix (lines[1], "ROLE "));
  /* then this process's threads, none a vCPU (refused), one line each */
  for (guint i = 2; lines[i] && lines[i + 1]; i++)
    g_assert_true (g_str_has_prefix (lines[i], "emulator ")
                   || g_str_has_prefix (lines[i], "other "));
}

/* attach --once: the VM fails (its threads are not its own); the table
 * says so on one line per row, the JSON has the exact name. */
static void
test_attach (void)
{
  for (guint json = 0; json < 2; json++)
    {
      g_autofree char *script = evil_script (FALSE, FALSE);
      g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
      const char *args[]
        = { "attach", "--once", qpin_fake_peer_get_path (peer), json ? "--json" : NULL, NULL };
      g_autofree char *out = NULL, *err = NULL;

      g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 1);
      qpin_fake_peer_finish (peer, NULL);
      if (json)
        {
          g_autoptr (JsonNode) root = json_from_string (out, NULL);
          JsonObject *vm = json_array_get_object_element (
            json_object_get_array_member (json_node_get_object (root), "vms"), 0);
          g_assert_cmpstr (json_object_get_string_member (vm, "name"), ==, EVIL);
        }
      else
        {
          g_assert_true (g_str_has_prefix (out, "VM "));
          /* the header and the failure row */
          assert_lines (out, TRUE, EVIL_TABLE " failed: ", 2);
        }
    }
}

static gboolean
evil_failed (gpointer data)
{
  g_autoptr (JsonNode) status = qpin_test_status (data);
  JsonObject *vm = status ? qpin_test_find_vm (status, getpid ()) : NULL;

  return vm && g_strcmp0 (json_object_get_string_member (vm, "state"), "failed") == 0;
}

/* The daemon's status table, printed by `qpin status`. */
static void
test_status (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qpin-names-XXXXXX", NULL);
  g_autofree char *watch = g_build_filename (dir, "watch", NULL);
  g_autofree char *control = g_build_filename (dir, "control.sock", NULL);
  g_autofree char *peer_path = g_build_filename (watch, "evil.sock", NULL);
  g_autofree char *script = evil_script (FALSE, TRUE);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *prefix = g_strdup_printf ("%-16s %7d failed: ", EVIL_TABLE, getpid ());
  const char *daemon_args[]
    = { "daemon", "--no-listen", "--watch", watch,       "--control", control, "--grace",
        "0",      "--interval",  "0",       "--timeout", "10000",     NULL };
  const char *status_args[] = { "status", "--control", control, NULL };
  g_autoptr (QpinTestQpin) daemon = NULL;
  g_autoptr (QpinFakePeer) peer = NULL;

  g_assert_cmpint (g_mkdir (watch, 0700), ==, 0);
  daemon = qpin_test_qpin_spawn (daemon_args);
  g_assert_true (qpin_test_wait_daemon (control, 20000));
  peer = qpin_fake_peer_new_at (peer_path, script);
  g_assert_true (qpin_test_wait_for (evil_failed, control, 20000));
  g_assert_cmpint (qpin_test_run_qpin (status_args, &out, &err), ==, 0);
  g_assert_true (g_str_has_prefix (out, "VM "));
  assert_lines (out, TRUE, prefix, 2);
  g_clear_pointer (&daemon, qpin_test_qpin_free);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
  g_assert_cmpint (system (rm), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/table-names/inspect", test_inspect);
  g_test_add_func ("/table-names/attach", test_attach);
  g_test_add_func ("/table-names/status", test_status);
  return g_test_run ();
}
