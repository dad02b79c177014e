/* test-top.c: `qpin top` on real QEMUs whose vCPU 0 spins (a 512-byte
 * floppy boot sector that is `jmp $`), batch and live (in tmux) */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "qpin-qmp-client.h"
#include "qpin-test-daemon.h"
#include "qpin-test-spin.h"

typedef struct {
  QpinTestDaemon d; /* sockets in d.dir, no watched directory */
  char *image;
  char *cgroup; /* a cpu cgroup giving a spinning QEMU its share, or NULL */
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_set_up (&f->d, "qpin-top", 0, 0);
  f->image = qpin_test_spin_image (f->d.dir);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->d.daemon, qpin_test_qpin_free);
  if (f->cgroup)
    g_rmdir (f->cgroup);
  g_free (f->cgroup);
  qpin_test_daemon_tear_down (&f->d);
  g_free (f->image);
}

/* Until vCPU 0 spins in the boot sector: the BIOS before it sleeps on
 * timers, which is not the load these tests measure. */
static void
wait_spinning (QpinTestQemu *qemu)
{
  g_assert_true (qpin_test_wait_for (qpin_test_qemu_in_boot_sector, qemu, 60000));
}

/* The JSON documents `qpin top -b --json` printed, one per line. */
static GPtrArray *
run_top_json (const char *const *args, guint expect_docs)
{
  g_autofree char *out = NULL, *err = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *docs = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
  g_test_message ("qpin top stderr: %s", err);
  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, expect_docs + 1);
  g_assert_cmpstr (lines[expect_docs], ==, "");
  for (guint i = 0; i < expect_docs; i++)
    {
      g_autoptr (GError) error = NULL;
      JsonNode *doc = json_from_string (lines[i], &error);
      g_assert_no_error (error);
      g_ptr_array_add (docs, doc);
    }
  return docs;
}

static JsonObject *
find_vm (JsonNode *doc, GPid pid)
{
  JsonArray *vms = json_object_get_array_member (json_node_get_object (doc), "vms");

  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);
      if (json_object_get_int_member (vm, "pid") == pid)
        return vm;
    }
  g_assert_not_reached ();
}

/* The stats of a VM's thread @role @index. */
static JsonObject *
find_stats (JsonObject *vm, const char *role, gint64 index, gint64 *tid)
{
  JsonArray *threads = json_object_get_array_member (vm, "threads");

  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      if (g_str_equal (json_object_get_string_member (t, "role"), role)
          && json_object_get_int_member (t, "index") == index)
        {
          if (tid)
            *tid = json_object_get_int_member (t, "tid");
          return json_object_get_object_member (t, "stats");
        }
    }
  g_assert_not_reached ();
}

static guint
host_cpus (JsonNode *doc)
{
  JsonObject *host = json_object_get_object_member (json_node_get_object (doc), "host");

  return json_array_get_length (json_object_get_array_member (host, "cpus"));
}

static void
check_spin_shares (JsonNode *doc, GPid pid)
{
  JsonObject *vm = find_vm (doc, pid);
  JsonObject *v0 = find_stats (vm, "vcpu", 0, NULL);
  JsonObject *v1 = find_stats (vm, "vcpu", 1, NULL);
  double p0 = json_object_get_double_member (v0, "cpu_pct");
  double p1 = json_object_get_double_member (v1, "cpu_pct");

  g_test_message ("vcpu 0 %.1f %%, vcpu 1 %.1f %%", p0, p1);
  if (host_cpus (doc) < 2)
    {
      /* one CPU for the spinning vCPU and everything else on the host */
      g_test_skip ("a host CPU went offline during the test");
      return;
    }
  g_assert_cmpfloat (p0, >=, 50.0);
  g_assert_cmpfloat (p1, <=, 15.0);
  /* no PMU on this host: null, not 0 */
  g_assert_true (json_object_get_null_member (v0, "ipc"));
  g_assert_cmpint (json_object_get_int_member (v0, "cpu"), >=, 0);
}

/* vCPU 0 spins, vCPU 1 idles (halted by the BIOS, waiting for an IPI):
 * over SOCKET (roles from QMP) and --pid (roles from thread names), every
 * document shows vCPU 0 >= 50 % and vCPU 1 <= 15 %. */
static void
test_spinning_vcpu (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) qemu = qpin_test_spin_vm_start (f->image, "spin", "2", NULL);
  g_autofree char *pid = NULL;
  g_autoptr (GPtrArray) docs = NULL;
  g_autoptr (GPtrArray) by_pid = NULL;

  f->cgroup = qpin_test_cpu_boost ("qpin-top", qemu->pid);
  qpin_test_qemu_cont (qemu);
  wait_spinning (qemu);
  {
    const char *args[] = { "top", "-b", "-n", "2", "-d", "1", "--json", qemu->qmp_path, NULL };
    docs = run_top_json (args, 2);
  }
  for (guint i = 0; i < docs->len; i++)
    check_spin_shares (g_ptr_array_index (docs, i), qemu->pid);
  g_assert_cmpstr (
    json_object_get_string_member (find_vm (g_ptr_array_index (docs, 0), qemu->pid), "name"), ==,
    "spin");

  pid = g_strdup_printf ("%d", qemu->pid);
  {
    const char *args[] = { "top", "-b", "-n", "1", "-d", "1", "--json", "--pid", pid, NULL };
    by_pid = run_top_json (args, 1);
  }
  check_spin_shares (g_ptr_array_index (by_pid, 0), qemu->pid);
}

/* Another test on this machine may take a CPU offline for a while; then
 * the daemon re-plans and the plan is not what this test set up (both
 * vCPUs on CPU 1), and the test says so instead of failing. */
static gboolean
plan_disturbed (JsonNode *doc, GPid a, GPid b)
{
  const GPid pids[] = { a, b };

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      JsonArray *threads = json_object_get_array_member (find_vm (doc, pids[i]), "threads");
      JsonObject *vcpu = json_array_get_object_element (threads, 0);
      JsonNode *cpus = json_object_get_member (vcpu, "cpus");

      if (JSON_NODE_HOLDS_NULL (cpus) || !g_str_equal (json_node_get_string (cpus), "1"))
        {
          g_test_skip ("the daemon re-planned during the test (a host CPU went offline?)");
          return TRUE;
        }
    }
  if (host_cpus (doc) == 2)
    return FALSE;
  g_test_skip ("a host CPU went offline during the test");
  return TRUE;
}

static void
start_daemon (Fixture *f, const char *conf_text)
{
  g_autofree char *conf = g_build_filename (f->d.dir, "qpin.conf", NULL);
  const char *extra[] = { "--enforce", "report", "--config", conf, NULL };

  g_assert_true (g_file_set_contents (conf, conf_text, -1, NULL));
  /* valgrind on a loaded host can take long to start it */
  f->d.start_timeout_ms = 60000;
  qpin_test_daemon_start (&f->d, extra);
  g_unlink (conf);
}

/* Returns: FALSE (the test skipped) when CPU 1 is offline, as another
 * test on this machine may make it for a while: then nothing fits cpuset=1 */
static gboolean
wait_pinned (Fixture *f, GPid pid)
{
  g_autofree char *online = NULL;

  if (qpin_test_daemon_await_vm (&f->d, pid, "pinned", NULL, 15000))
    return TRUE;
  g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL);
  if (online && !g_str_equal (g_strstrip (online), "0-1"))
    {
      g_test_skip ("host CPU 1 went offline during the test");
      return FALSE;
    }
  g_assert_not_reached ();
}

/* Two VMs, each with one spinning vCPU, both confined to CPU 1 by the
 * daemon (cpuset=1, cpus=shared): each gets about half of CPU 1 and waits
 * the rest, so each waits >= 30 %.  Then vm a's vCPU is moved to CPU 0
 * with sched_setaffinity (taskset) under --enforce report: only it is
 * flagged off-plan (and drift). */
static void
test_shared_cpu_wait_and_off_plan (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL, b = NULL;
  g_autoptr (GPtrArray) docs = NULL, after = NULL;
  const char *args[]
    = { "top", "-b", "-n", "1", "-d", "1", "--json", "--control", f->d.control, NULL };
  JsonObject *sa, *sb;
  gint64 tid_a = 0;
  cpu_set_t zero;

  if (sysconf (_SC_NPROCESSORS_ONLN) != 2)
    {
      g_test_skip ("needs a host with exactly 2 online CPUs");
      return;
    }
  start_daemon (f, "[defaults]\ncpus = shared\ncpuset = 1\n");
  a = qpin_test_spin_vm_start (f->image, "a", "1", f->d.listen);
  b = qpin_test_spin_vm_start (f->image, "b", "1", f->d.listen);
  if (!wait_pinned (f, a->pid) || !wait_pinned (f, b->pid))
    return;
  qpin_test_qemu_cont (a);
  qpin_test_qemu_cont (b);
  wait_spinning (a);
  wait_spinning (b);

  docs = run_top_json (args, 1);
  {
    g_autofree char *text = json_to_string (g_ptr_array_index (docs, 0), FALSE);
    g_test_message ("%s", text);
  }
  if (plan_disturbed (g_ptr_array_index (docs, 0), a->pid, b->pid))
    return;
  sa = find_stats (find_vm (g_ptr_array_index (docs, 0), a->pid), "vcpu", 0, &tid_a);
  sb = find_stats (find_vm (g_ptr_array_index (docs, 0), b->pid), "vcpu", 0, NULL);
  g_test_message (
    "a: cpu %.1f wait %.1f; b: cpu %.1f wait %.1f", json_object_get_double_member (sa, "cpu_pct"),
    json_object_get_double_member (sa, "wait_pct"), json_object_get_double_member (sb, "cpu_pct"),
    json_object_get_double_member (sb, "wait_pct"));
  g_assert_cmpfloat (json_object_get_double_member (sa, "wait_pct"), >=, 30.0);
  g_assert_cmpfloat (json_object_get_double_member (sb, "wait_pct"), >=, 30.0);
  g_assert_cmpint (json_object_get_int_member (sa, "cpu"), ==, 1);
  g_assert_false (json_object_get_boolean_member (sa, "off_plan"));
  g_assert_false (json_object_get_boolean_member (sb, "off_plan"));

  CPU_ZERO (&zero);
  CPU_SET (0, &zero);
  g_assert_cmpint (sched_setaffinity ((pid_t) tid_a, sizeof zero, &zero), ==, 0);
  after = run_top_json (args, 1);
  {
    g_autofree char *text = json_to_string (g_ptr_array_index (after, 0), FALSE);
    g_test_message ("%s", text);
  }
  if (plan_disturbed (g_ptr_array_index (after, 0), a->pid, b->pid))
    return;
  sa = find_stats (find_vm (g_ptr_array_index (after, 0), a->pid), "vcpu", 0, NULL);
  sb = find_stats (find_vm (g_ptr_array_index (after, 0), b->pid), "vcpu", 0, NULL);
  g_assert_true (json_object_get_boolean_member (sa, "off_plan"));
  g_assert_cmpint (json_object_get_int_member (sa, "cpu"), ==, 0);
  g_assert_false (json_object_get_boolean_member (sb, "off_plan"));
  /* the daemon reports, does not repair: the kernel still says CPU 0 */
  {
    g_autofree char *aff = qpin_test_affinity_of ((GPid) tid_a);
    g_assert_cmpstr (aff, ==, "0");
  }
}

/* No daemon at the control path: one line saying so, exit 1. */
static void
test_no_daemon (Fixture *f, gconstpointer data)
{
  const char *args[] = { "top", "-b", "-n", "1", "--control", f->d.control, NULL };
  g_autofree char *out = NULL, *err = NULL, *want = NULL;

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 1);
  g_assert_cmpstr (out, ==, "");
  want = g_strdup_printf ("qpin top: cannot reach the qpin daemon at '%s' (is it running?): ",
                          f->d.control);
  g_assert_true (g_str_has_prefix (err, want));
  g_assert_cmpuint (strchr (err, '\n') - err + 1, ==, strlen (err));
}

/* Options that make no sense: exit 2 and one line naming the option. */
static void
test_bad_options (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *args[8];
    const char *line;
  } cases[] = {
    { { "top", "-b", "-d", "0", NULL }, "-d/--delay must be between 0.1 and 3600 seconds" },
    { { "top", "-b", "-n", "-1", NULL }, "-n/--iterations must not be negative" },
    { { "top", "--json", NULL }, "--json needs -b/--batch" },
    { { "top", "-b", "--timeout", "0", NULL }, "--timeout must be positive" },
    { { "top", "-b", "--pid", "1", "/x.sock", NULL }, "give SOCKET arguments or --pid, not both" },
    { { "top", "-b", "--control", "/c", "--pid", "1", NULL },
      "--control names the daemon: not with SOCKET arguments or --pid" },
    { { "top", "-b", "--pid", "12,abc", NULL }, "--pid: 'abc' is not a process id" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = NULL, *err = NULL, *want = NULL;

      g_assert_cmpint (qpin_test_run_qpin (cases[i].args, &out, &err), ==, 2);
      want = g_strdup_printf ("qpin top: %s\n", cases[i].line);
      g_assert_cmpstr (err, ==, want);
      g_assert_cmpstr (out, ==, "");
    }
}

/* A QEMU that exits while top watches it over its socket: the documents
 * go on (its threads gone, then the VM gone), one line says why, exit 0. */
static void
test_qemu_exits (Fixture *f, gconstpointer data)
{
  QpinTestQemu *qemu = qpin_test_spin_vm_start (f->image, "short", "1", NULL);
  g_autofree char *path = g_strdup (qemu->qmp_path);
  const char *args[] = { "top", "-b", "-n", "4", "-d", "0.5", "--json", path, NULL };
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) top = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autoptr (GDataInputStream) err_in = NULL;
  g_autofree char *first = NULL, *rest = NULL, *err = NULL, *want = NULL;
  g_auto (GStrv) docs = NULL;
  GPid pid = qemu->pid;

  g_ptr_array_add (argv, (gpointer) qpin_test_qpin_binary ());
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  top = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (top));
  first = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_nonnull (first);
  g_assert_nonnull (strstr (first, "\"name\":\"short\""));
  qpin_test_qemu_free (qemu);
  g_assert_true (g_subprocess_wait (top, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (top));
  g_assert_cmpint (g_subprocess_get_exit_status (top), ==, 0);
  rest = g_data_input_stream_read_upto (in, "", 0, NULL, NULL, &error);
  docs = g_strsplit (rest, "\n", -1);
  g_assert_cmpuint (g_strv_length (docs), ==, 4);
  /* the last document has no VM left */
  g_assert_true (g_str_has_suffix (rest, "\n") && strstr (rest, "\"vms\":[]") != NULL);
  err_in = g_data_input_stream_new (g_subprocess_get_stderr_pipe (top));
  err = g_data_input_stream_read_upto (err_in, "", 0, NULL, NULL, &error);
  want = g_strdup_printf ("qpin top: %s: ", path);
  g_assert_true (g_str_has_prefix (err, want));
  g_assert_cmpuint (strchr (err, '\n') - err + 1, ==, strlen (err));
  g_assert_cmpint (kill (pid, 0), ==, -1);
}

static char *
tmux (const char *sock, const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *out = NULL;
  int status = 0;

  g_ptr_array_add (argv, (gpointer) "tmux");
  g_ptr_array_add (argv, (gpointer) "-S");
  g_ptr_array_add (argv, (gpointer) sock);
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, NULL, &status, NULL));
  return g_steal_pointer (&out);
}

typedef struct {
  const char *sock;
  const char *want;
  gboolean absent; /* wait until @want is not on the screen */
} ScreenWait;

static gboolean
screen_has (gpointer data)
{
  ScreenWait *w = data;
  const char *args[] = { "capture-pane", "-p", "-t", "top", NULL };
  g_autofree char *screen = tmux (w->sock, args);

  return (strstr (screen, w->want) != NULL) != w->absent;
}

static void
wait_screen (const char *sock, const char *want, gboolean absent)
{
  ScreenWait w = { sock, want, absent };

  if (!qpin_test_wait_for (screen_has, &w, 15000))
    {
      const char *args[] = { "capture-pane", "-p", "-t", "top", NULL };
      g_autofree char *screen = tmux (sock, args);
      g_test_message ("screen:\n%s", screen);
      g_assert_not_reached ();
    }
}

/* The live view in tmux: it draws the table with the spinning vCPU, sorts
 * on 's', shows help on 'h', collapses on Enter, says so when the terminal
 * is too small, and on 'q' exits 0 and gives the terminal back (the
 * footer gone from the screen, the shell's line after it). */
static void
test_interactive (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) qemu = qpin_test_spin_vm_start (f->image, "live", "2", NULL);
  g_autofree char *sock = g_build_filename (f->d.dir, "tmux.sock", NULL);
  g_autofree char *cmd = NULL;
  g_autofree char *out = NULL;
  g_autofree char *tmux_path = g_find_program_in_path ("tmux");

  if (tmux_path == NULL)
    {
      g_test_skip ("tmux is not installed (scripts/deps)");
      return;
    }
  qpin_test_qemu_cont (qemu);
  cmd = g_strdup_printf ("TERM=xterm %s top -d 0.5 --pid %d; echo top-exit=$?; sleep 60",
                         qpin_test_qpin_binary (), qemu->pid);
  {
    const char *args[] = { "new-session", "-d", "-s", "top", "-x", "150", "-y", "30", cmd, NULL };
    g_free (tmux (sock, args));
  }
  wait_screen (sock, "- live", FALSE);
  wait_screen (sock, "vcpu", FALSE);
  wait_screen (sock, "sort: %CPU", FALSE);
  {
    const char *args[] = { "send-keys", "-t", "top", "s", NULL };
    g_free (tmux (sock, args));
  }
  wait_screen (sock, "sort: %WAIT", FALSE);
  {
    const char *args[] = { "send-keys", "-t", "top", "h", NULL };
    g_free (tmux (sock, args));
  }
  wait_screen (sock, "qpin top keys", FALSE);
  {
    const char *args[] = { "send-keys", "-t", "top", "x", "Enter", NULL };
    g_free (tmux (sock, args));
  }
  /* help closed by 'x'; Enter collapses the selected (only) VM */
  wait_screen (sock, "+ live", FALSE);
  wait_screen (sock, "vcpu", TRUE);
  {
    const char *args[] = { "resize-window", "-t", "top", "-x", "30", "-y", "5", NULL };
    g_free (tmux (sock, args));
  }
  wait_screen (sock, "terminal too small", FALSE);
  {
    const char *args[] = { "resize-window", "-t", "top", "-x", "150", "-y", "30", NULL };
    g_free (tmux (sock, args));
  }
  wait_screen (sock, "+ live", FALSE);
  {
    const char *args[] = { "send-keys", "-t", "top", "q", NULL };
    g_free (tmux (sock, args));
  }
  wait_screen (sock, "top-exit=0", FALSE);
  wait_screen (sock, "q quit", TRUE);
  {
    const char *args[] = { "kill-server", NULL };
    out = tmux (sock, args);
  }
  g_unlink (sock);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (getuid () != 0)
    {
      g_test_message ("needs root (the daemon pins other processes' threads)");
      return 77;
    }
#define ADD(path, fn)                                                                              \
  g_test_add ("/top/" path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("spinning-vcpu", test_spinning_vcpu);
  ADD ("shared-cpu-wait-and-off-plan", test_shared_cpu_wait_and_off_plan);
  ADD ("no-daemon", test_no_daemon);
  ADD ("bad-options", test_bad_options);
  ADD ("qemu-exits", test_qemu_exits);
  ADD ("interactive", test_interactive);
  return g_test_run ();
}
