/* bench-run.c: time from exec to the guest running, `qpin run` against
 * the same QEMU started bare with -S and a minimal `cont` over QMP.
 *
 * Both clocks start just before the spawn (wall clock, so that qpin run's
 * report can be compared).  The bare run stops at the RESUME event its
 * own monitor receives after `cont`; the qpin run at the RESUME event
 * qpin run's monitor received (its report's resumed_at_us).  Prints the
 * numbers; asserts only that every run worked. */
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "qpin-qmp-client.h"
#include "qpin-test-host.h"
#include "qpin-test-qemu.h"

#define RUNS 11

/* microseconds from the spawn */
typedef struct {
  gint64 spawned; /* QEMU exec'ed (qpin run: after its own start-up) */
  gint64 monitor; /* the QMP handshake of the pinning side done */
  gint64 running; /* RESUME */
} Times;

static const char *const qemu_args[] = { "qemu-system-x86_64",
                                         "-accel",
                                         "tcg",
                                         "-nodefaults",
                                         "-display",
                                         "none",
                                         "-m",
                                         "64",
                                         "-smp",
                                         "2",
                                         NULL };

typedef struct {
  QpinQmpClient *client;
  GError *error;
  gint64 resumed_us;
  gboolean done;
} Bare;

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Bare *b = user_data;

  b->client = qpin_qmp_client_handshake_finish (result, &b->error);
  b->done = TRUE;
}

static void
on_event (QpinQmpClient *client, const char *name, JsonObject *data, gpointer user_data)
{
  Bare *b = user_data;

  if (g_str_equal (name, "RESUME") && b->resumed_us == 0)
    b->resumed_us = g_get_real_time ();
}

/* QEMU -S with a monitor that connects to us; we send cont at once. */
static Times
run_bare (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("qpin-bench-XXXXXX", &error);
  g_autofree char *sock = g_build_filename (dir, "mon.sock", NULL);
  g_autofree char *chardev = g_strdup_printf ("socket,id=b,path=%s", sock);
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (sock);
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GSubprocess) qemu = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (JsonNode) ret = NULL;
  Bare b = { 0 };
  Times t = { 0 };
  gint64 start;

  g_assert_no_error (error);
  g_assert_true (g_socket_listener_add_address (listener, addr, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error));
  for (guint i = 0; qemu_args[i]; i++)
    g_ptr_array_add (argv, (gpointer) qemu_args[i]);
  g_ptr_array_add (argv, "-S");
  g_ptr_array_add (argv, "-chardev");
  g_ptr_array_add (argv, chardev);
  g_ptr_array_add (argv, "-mon");
  g_ptr_array_add (argv, "chardev=b,mode=control");
  g_ptr_array_add (argv, NULL);

  start = g_get_real_time ();
  qemu = g_subprocess_newv ((const char *const *) argv->pdata, G_SUBPROCESS_FLAGS_NONE, &error);
  g_assert_no_error (error);
  conn = g_socket_listener_accept (listener, NULL, NULL, &error);
  g_assert_no_error (error);
  qpin_qmp_client_handshake_async (conn, "bench", 10000, NULL, on_handshake, &b);
  while (!b.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (b.error);
  t.monitor = g_get_real_time () - start;
  g_signal_connect (b.client, "event", G_CALLBACK (on_event), &b);
  ret = qpin_qmp_client_execute_sync (b.client, "cont", NULL, 10000, &error);
  g_assert_no_error (error);
  g_assert_cmpint (b.resumed_us, >, 0);
  g_clear_pointer (&ret, json_node_unref);
  ret = qpin_qmp_client_execute_sync (b.client, "quit", NULL, 10000, NULL);
  g_subprocess_wait (qemu, NULL, NULL);
  qpin_qmp_client_close (b.client);
  g_object_unref (b.client);
  qpin_test_remove_tree (dir);
  t.running = b.resumed_us - start;
  return t;
}

static Times
run_qpin (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("qpin-bench-XXXXXX", &error);
  g_autofree char *report = g_build_filename (dir, "report.json", NULL);
  g_autofree char *control = g_build_filename (dir, "no-daemon.sock", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GSubprocess) qpin = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (JsonNode) root = NULL;
  JsonObject *vm;
  Times t = { 0 };
  gint64 start;

  g_assert_no_error (error);
  for (const char *const *a = (const char *const[]){ qpin_test_qpin_binary (), "run", "--control",
                                                     control, "--report", report, "--", NULL };
       *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  for (guint i = 0; qemu_args[i]; i++)
    g_ptr_array_add (argv, (gpointer) qemu_args[i]);
  g_ptr_array_add (argv, NULL);

  start = g_get_real_time ();
  qpin = g_subprocess_newv ((const char *const *) argv->pdata, G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                            &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 10000 && !g_file_test (report, G_FILE_TEST_EXISTS); i++)
    g_usleep (1000);
  g_assert_true (g_file_get_contents (report, &text, NULL, NULL));
  root = json_from_string (text, NULL);
  g_assert_nonnull (root);
  vm = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "vms"), 0);
  g_assert_cmpstr (json_object_get_string_member (vm, "state"), ==, "pinned");
  g_assert_cmpstr (json_object_get_string_member (vm, "run_state_when_pinned"), ==, "prelaunch");
  g_assert_true (json_object_get_boolean_member (vm, "cont"));
  g_subprocess_send_signal (qpin, SIGTERM);
  g_subprocess_wait (qpin, NULL, NULL);
  g_assert_cmpint (g_subprocess_get_exit_status (qpin), ==, 0);
  qpin_test_remove_tree (dir);
  t.spawned = json_object_get_int_member (vm, "spawned_at_us") - start;
  t.monitor = json_object_get_int_member (vm, "monitor_at_us") - start;
  t.running = json_object_get_int_member (vm, "resumed_at_us") - start;
  return t;
}

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

static double
median_ms (GArray *us)
{
  g_array_sort (us, compare_gint64);
  return (double) g_array_index (us, gint64, us->len / 2) / 1000.0;
}

static void
add (GArray *a, gint64 v)
{
  g_array_append_val (a, v);
}

static void
bench_run (void)
{
  g_autoptr (GArray) bare = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) qpin = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) bare_tail = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) qpin_tail = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) qpin_head = g_array_new (FALSE, FALSE, sizeof (gint64));
  double b, q, head, bt, qt;

  /* one of each first, not counted: page cache and the like */
  run_bare ();
  run_qpin ();
  for (guint i = 0; i < RUNS; i++)
    {
      Times tb = run_bare ();
      Times tq = run_qpin ();

      printf ("# run %2u: bare -S + cont %6.1f ms (monitor->running %5.1f) | qpin run %6.1f ms "
              "(qpin start-up %5.1f, monitor->running %5.1f)\n",
              i + 1, (double) tb.running / 1000.0, (double) (tb.running - tb.monitor) / 1000.0,
              (double) tq.running / 1000.0, (double) tq.spawned / 1000.0,
              (double) (tq.running - tq.monitor) / 1000.0);
      add (bare, tb.running);
      add (qpin, tq.running);
      add (bare_tail, tb.running - tb.monitor);
      add (qpin_tail, tq.running - tq.monitor);
      add (qpin_head, tq.spawned);
    }
  b = median_ms (bare);
  q = median_ms (qpin);
  bt = median_ms (bare_tail);
  qt = median_ms (qpin_tail);
  head = median_ms (qpin_head);
  printf ("# exec to guest running, median of %d: bare %.1f ms, qpin run %.1f ms: "
          "difference %.1f ms, ratio %.2f\n",
          RUNS, b, q, q - b, q / b);
  /* QEMU's own start-up time dominates and varies on a shared host; what
   * qpin adds is its start-up before QEMU's exec and its work between the
   * monitor handshake and RESUME, beyond the bare cont's */
  printf ("# added by qpin run, by parts: start-up %.1f ms + pinning %.1f ms (bare cont %.1f ms) "
          "= %.1f ms (target < 30 ms)\n",
          head, qt, bt, head + qt - bt);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bench/run", bench_run);
  return g_test_run ();
}
