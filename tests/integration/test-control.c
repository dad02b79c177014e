/* test-control.c: the daemon's control socket cannot be blocked by a
 * client, and its sockets come back when someone removes them */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qpin-fake-peer.h"
#include "qpin-test-daemon.h"

/* the daemon's limits (pinner/qpin-control-server.c) */
#define REQUEST_TIMEOUT_S 5
#define REPLY_TIMEOUT_S 10
#define MAX_LINE 4096
#define MAX_CLIENTS 64

/* f->run: the sockets' own directory, removed by the tests */
typedef QpinTestDaemon Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_set_up (f, "qpin-control", 0710, 0700);
  f->interval = NULL;
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_tear_down (f);
}

/* The kernel holds the VM's one vCPU on one CPU. */
static void
assert_one_cpu (QpinTestQemu *qemu)
{
  g_autofree char *cpus = qpin_test_vcpu_affinity (qemu->pid);

  g_assert_null (strpbrk (cpus, ",-"));
}

/* A raw client of the control socket that sends @request (may be empty)
 * and reads nothing. */
static int
connect_control (Fixture *f, const char *request, gsize len)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval limit = { .tv_sec = 30 }; /* a daemon that never answers fails the test */

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), ==, 0);
  g_assert_cmpuint (strlen (f->control), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, f->control);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (send (fd, request, len, MSG_NOSIGNAL), ==, (gssize) len);
  return fd;
}

/* Everything the daemon sends until it closes the connection. */
static GString *
read_to_end (int fd)
{
  GString *all = g_string_new (NULL);
  char buf[65536];
  ssize_t n;

  while ((n = recv (fd, buf, sizeof buf, 0)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      g_string_append_len (all, buf, n);
  return all;
}

static gint64
status_ms (Fixture *f)
{
  const char *args[] = { "status", "--control", f->control, NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 start = g_get_monotonic_time ();

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
  return (g_get_monotonic_time () - start) / 1000;
}

/* A fake QEMU named with 400 kB of 'n': its status entry (name and key)
 * is 800 kB, four times what a unix socket buffers, so a client that
 * does not read its status reply leaves the daemon with most of it
 * unsent.  The fake names pid 1 as its vCPU: refused, it holds no CPU.
 * It stays 20 s after its last answer (the daemon, with --interval 0,
 * asks nothing more), long enough for the status requests below, and
 * ends when the daemon hangs up. */
static QpinFakePeer *
start_big_peer (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->watch, "big.sock", NULL);
  g_autofree char *name = g_strnfill (400 * 1024, 'n');
  g_autofree char *script = g_strdup_printf (
    "handshake\n"
    "expect query-name\nsend {\"return\": {\"name\": \"%s\"}, \"id\": $ID}\n"
    "expect query-cpus-fast\nsend {\"return\": [{\"cpu-index\": 0, \"thread-id\": 1, "
    "\"qom-path\": \"/a\"}], \"id\": $ID}\n"
    "expect query-iothreads\nsend {\"return\": [], \"id\": $ID}\n"
    "sleep 10000\nstall\n",
    name);

  return qpin_fake_peer_new_at (path, script);
}

/* A client asks for an 800 kB status and never reads it: others are
 * still answered at once, a new real QEMU is pinned meanwhile, and the
 * client is dropped after the reply timeout with one log line. */
static void
test_client_never_reads (Fixture *f, gconstpointer data)
{
  const char *request = "{\"command\": \"status\"}\n";
  g_autoptr (QpinFakePeer) big = NULL;
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autoptr (GString) got = NULL;
  gint64 hung_at, ms, alone;
  int hung;

  qpin_test_daemon_start (f,
                          (const char *const[]){ "--timeout", "10000", "--interval", "0", NULL });
  big = start_big_peer (f);
  qpin_test_daemon_wait_vm (f, getpid (), "failed", NULL, 15000);

  /* how long this status takes here (under valgrind: seconds) */
  alone = status_ms (f);
  hung = connect_control (f, request, strlen (request));
  hung_at = g_get_monotonic_time ();
  /* a blocked daemon answers after the reply timeout, 10 s, at best */
  ms = status_ms (f);
  g_test_message ("status: %" G_GINT64_FORMAT " ms alone, %" G_GINT64_FORMAT
                  " ms beside a client that does not read",
                  alone, ms);
  g_assert_cmpint (ms, <, 1000 + 2 * alone);
  g_assert_cmpint (1000 + 2 * alone, <, REPLY_TIMEOUT_S * 1000);

  vm = qpin_test_daemon_listen_vm (f, "fresh", "1");
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  assert_one_cpu (vm);
  /* all of this while the client still hangs (valgrind's daemon may be
   * too slow to show that; it still shows everything else) */
  if (g_getenv ("QPIN_TEST_WRAPPER") == NULL)
    {
      g_assert_cmpint ((g_get_monotonic_time () - hung_at) / G_USEC_PER_SEC, <, REPLY_TIMEOUT_S);
      g_assert_cmpuint (qpin_test_daemon_log_count (f, "did not read its reply"), ==, 0);
    }

  qpin_test_daemon_wait_log (f, "control: a client did not read its reply within 10 s; dropped",
                             (REPLY_TIMEOUT_S + 5) * 1000);
  got = read_to_end (hung);
  close (hung);
  g_test_message ("the dropped client got %" G_GSIZE_FORMAT " bytes", got->len);
  g_assert_cmpuint (got->len, <, 800 * 1024);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "did not read its reply"), ==, 1);
  g_assert_true (qpin_test_wait_daemon (f->control, 0));
  /* the fake peer ends when the daemon hangs up */
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  g_assert_true (qpin_fake_peer_finish (big, NULL));
}

/* A client that connects and says nothing is dropped after the request
 * timeout with one log line; a request line over the bound is answered
 * with an error at once, not buffered. */
static void
test_silent_and_long_clients (Fixture *f, gconstpointer data)
{
  g_autofree char *flood = g_strnfill (MAX_LINE * 4, 'x');
  g_autoptr (GString) got = NULL;
  g_autoptr (GString) silent_got = NULL;
  gint64 start;
  int silent, longer;

  qpin_test_daemon_start (f, NULL);
  silent = connect_control (f, "", 0);
  start = g_get_monotonic_time ();

  longer = connect_control (f, flood, strlen (flood));
  got = read_to_end (longer);
  close (longer);
  g_assert_cmpstr (got->str, ==, "{\"error\":\"a request is one line of at most 4096 bytes\"}\n");

  g_assert_true (qpin_test_wait_daemon (f->control, 0));
  silent_got = read_to_end (silent);
  close (silent);
  g_assert_cmpstr (silent_got->str, ==, "");
  g_assert_cmpint ((g_get_monotonic_time () - start) / G_USEC_PER_SEC, >=, REQUEST_TIMEOUT_S - 1);
  qpin_test_daemon_wait_log (f, "control: a client sent no request within 5 s; dropped", 1000);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "sent no request"), ==, 1);
}

/* 64 clients that say nothing hold every control slot: the next ones are
 * closed at once, logged once, and the daemon answers again when the
 * silent ones are dropped. */
static void
test_too_many_clients (Fixture *f, gconstpointer data)
{
  int silent[MAX_CLIENTS];
  char byte;
  ssize_t n;

  qpin_test_daemon_start (f, NULL);
  for (guint i = 0; i < MAX_CLIENTS; i++)
    silent[i] = connect_control (f, "", 0);
  for (guint i = 0; i < 2; i++)
    {
      const char *request = "{\"command\": \"status\"}\n";
      int extra = connect_control (f, request, strlen (request));
      gint64 start = g_get_monotonic_time ();

      /* closed unanswered (reset: its request was never read), not
       * left waiting */
      n = recv (extra, &byte, 1, 0);
      g_assert_true (n == 0 || (n < 0 && errno == ECONNRESET));
      g_assert_cmpint ((g_get_monotonic_time () - start) / G_USEC_PER_SEC, <, REQUEST_TIMEOUT_S);
      close (extra);
    }
  qpin_test_daemon_wait_log (f, "control: 64 clients at once; refusing more until some leave",
                             1000);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "clients at once"), ==, 1);
  for (guint i = 0; i < MAX_CLIENTS; i++)
    {
      g_assert_cmpint (recv (silent[i], &byte, 1, 0), ==, 0);
      close (silent[i]);
    }
  g_assert_true (qpin_test_wait_daemon (f->control, 1000));
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "sent no request"), ==, MAX_CLIENTS);
}

static void
run_rm_rf (const char *path)
{
  const char *args[] = { "rm", "-rf", path, NULL };
  int status = 0;

  g_assert_true (g_spawn_sync (NULL, (char **) args, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* The control socket removed: bound again within a moment, logged.  Its
 * whole directory removed: the directory comes back with its mode, both
 * sockets with theirs, and a QEMU connecting to the new listening socket
 * is managed. */
static void
test_sockets_come_back (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autofree char *control_line
    = g_strdup_printf ("control socket '%s' was removed; listening there again", f->control);
  g_autofree char *listen_line
    = g_strdup_printf ("listening socket '%s' was removed; listening there again", f->listen);
  g_autofree char *dir_line
    = g_strdup_printf ("directory '%s' was removed; created it again (mode 0710)", f->run);
  GStatBuf st;

  qpin_test_daemon_start (f, NULL);
  g_assert_cmpint (g_unlink (f->control), ==, 0);
  g_assert_true (qpin_test_wait_daemon (f->control, 3000));
  qpin_test_daemon_wait_log (f, control_line, 1000);
  g_assert_cmpint (g_stat (f->control, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  run_rm_rf (f->run);
  g_assert_true (qpin_test_wait_daemon (f->control, 3000));
  qpin_test_daemon_wait_log (f, dir_line, 1000);
  qpin_test_daemon_wait_log (f, listen_line, 1000);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, control_line), ==, 2);
  g_assert_cmpint (g_stat (f->run, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0710);
  g_assert_cmpint (g_stat (f->listen, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  vm = qpin_test_daemon_listen_vm (f, "back", "1");
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  assert_one_cpu (vm);

  /* SIGHUP re-checks too; with nothing missing, nothing is logged */
  g_subprocess_send_signal (f->daemon->process, SIGHUP);
  g_assert_true (qpin_test_wait_daemon (f->control, 3000));
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "was removed"), ==, 4);
}

/* `qpin reload` says what happened in words; --json gives the reply */
static void
test_reload_output (Fixture *f, gconstpointer data)
{
  const char *text[] = { "reload", "--control", f->control, NULL };
  const char *json[] = { "reload", "--json", "--control", f->control, NULL };
  g_autofree char *out = NULL, *err = NULL, *jout = NULL, *jerr = NULL;
  g_autoptr (JsonNode) reply = NULL;

  qpin_test_daemon_start (f, NULL);
  g_assert_cmpint (qpin_test_run_qpin (text, &out, &err), ==, 0);
  g_assert_cmpstr (out, ==, "the daemon reloaded its configuration\n");
  g_assert_cmpint (qpin_test_run_qpin (json, &jout, &jerr), ==, 0);
  reply = json_from_string (jout, NULL);
  g_assert_nonnull (reply);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (reply), "ok"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/control/client-never-reads", Fixture, NULL, fixture_set_up, test_client_never_reads,
              fixture_tear_down);
  g_test_add ("/control/silent-and-long-clients", Fixture, NULL, fixture_set_up,
              test_silent_and_long_clients, fixture_tear_down);
  g_test_add ("/control/too-many-clients", Fixture, NULL, fixture_set_up, test_too_many_clients,
              fixture_tear_down);
  g_test_add ("/control/sockets-come-back", Fixture, NULL, fixture_set_up, test_sockets_come_back,
              fixture_tear_down);
  g_test_add ("/control/reload-output", Fixture, NULL, fixture_set_up, test_reload_output,
              fixture_tear_down);
  return g_test_run ();
}
