/* test-run.c: `qpin run` with real QEMUs, checked against the kernel's own
 * view (/proc/PID/task/TID/{status,stat}, sched_getscheduler) and QEMU's
 * (query-status on a monitor of the test's own) */
#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"
#include "qpin-test-host.h"
#include "qpin-test-qemu.h"

#define WAIT_MS 120000 /* qpin runs under valgrind in one test setup */

typedef struct {
  char *dir;
  GSubprocess *proc;
  char *out, *err;
  int status;
} Run;

static void
run_free (Run *r)
{
  if (r->proc && g_subprocess_get_identifier (r->proc))
    {
      g_subprocess_send_signal (r->proc, SIGKILL);
      g_subprocess_wait (r->proc, NULL, NULL);
    }
  g_clear_object (&r->proc);
  if (r->dir)
    {
      g_autoptr (GDir) d = g_dir_open (r->dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (r->dir, name, NULL);
          g_unlink (path);
        }
      g_rmdir (r->dir);
    }
  g_free (r->dir);
  g_free (r->out);
  g_free (r->err);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static Run *
run_new (void)
{
  Run *r = g_new0 (Run, 1);
  g_autoptr (GError) error = NULL;

  r->dir = g_dir_make_tmp ("qpin-test-run-XXXXXX", &error);
  g_assert_no_error (error);
  return r;
}

static char *
path_in (Run *r, const char *name)
{
  return g_build_filename (r->dir, name, NULL);
}

/* Starts `qpin ARGS...`; @fatal: keep G_DEBUG=fatal-warnings (off where
 * qpin is expected to log warnings, as on a refused placement). */
static GSubprocess *
spawn_qpin (const char *const *args, gboolean fatal, const char *tmpdir)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_auto (GStrv) wrapper = NULL;
  g_autoptr (GError) error = NULL;
  GSubprocess *proc;

  if (g_getenv ("QPIN_TEST_WRAPPER"))
    {
      wrapper = g_strsplit (g_getenv ("QPIN_TEST_WRAPPER"), " ", -1);
      for (guint i = 0; wrapper[i]; i++)
        if (*wrapper[i])
          g_ptr_array_add (argv, wrapper[i]);
    }
  g_ptr_array_add (argv, (gpointer) qpin_test_qpin_binary ());
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  if (!fatal)
    g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  if (tmpdir)
    g_subprocess_launcher_setenv (launcher, "TMPDIR", tmpdir, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

static void
run_start (Run *r, const char *const *args, gboolean fatal)
{
  /* qpin run's private directory goes here, to check it is removed */
  r->proc = spawn_qpin (args, fatal, r->dir);
}

/* qpin run left no private socket directory behind. */
static void
assert_no_private_dir (Run *r)
{
  g_autoptr (GDir) d = g_dir_open (r->dir, 0, NULL);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    g_assert_false (g_str_has_prefix (name, "qpin-run-"));
}

/* Waits for qpin run to end; returns its exit status. */
static int
run_wait (Run *r)
{
  g_autoptr (GError) error = NULL;

  g_subprocess_communicate_utf8 (r->proc, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  g_test_message ("qpin run stderr: %s", r->err);
  r->status = g_subprocess_get_if_exited (r->proc) ? g_subprocess_get_exit_status (r->proc)
                                                   : 128 + g_subprocess_get_term_sig (r->proc);
  return r->status;
}

/* Lines of stderr, without valgrind's own ("==PID==", "--PID--"). */
static guint
count_lines (const char *err)
{
  g_auto (GStrv) lines = g_strsplit (err, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i]; i++)
    if (*lines[i] && !g_str_has_prefix (lines[i], "==") && !g_str_has_prefix (lines[i], "--"))
      n++;
  return n;
}

static JsonObject *
wait_report (const char *path, JsonNode **root)
{
  g_autofree char *text = NULL;

  for (guint i = 0; i < WAIT_MS / 20 && !g_file_test (path, G_FILE_TEST_EXISTS); i++)
    g_usleep (20 * 1000);
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  *root = json_from_string (text, NULL);
  g_assert_nonnull (*root);
  return json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (*root), "vms"), 0);
}

static guint64
cpu_time_ns (GPid pid, GPid tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/stat", pid, tid);
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  /* fields after the ")" that ends comm: state is field 3, utime 14, stime 15 */
  fields = g_strsplit (strrchr (text, ')') + 2, " ", -1);
  return (g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10))
         * (G_GUINT64_CONSTANT (1000000000) / (guint64) sysconf (_SC_CLK_TCK));
}

static char *
qmp_status (const char *socket)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (socket, 10000, &error);
  g_autoptr (JsonNode) ret = NULL;

  g_assert_no_error (error);
  ret = qpin_qmp_client_execute_sync (client, "query-status", NULL, 10000, &error);
  g_assert_no_error (error);
  qpin_qmp_client_close (client);
  return g_strdup (json_object_get_string_member (json_node_get_object (ret), "status"));
}

static void
qmp_command (const char *socket, const char *command)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (socket, 10000, &error);
  g_autoptr (JsonNode) ret = NULL;

  g_assert_no_error (error);
  ret = qpin_qmp_client_execute_sync (client, command, NULL, 10000, &error);
  /* quit may close the connection before its reply */
  if (!g_str_equal (command, "quit"))
    g_assert_no_error (error);
  qpin_qmp_client_close (client);
}

/* Every thread in the report is pinned where the kernel says, and the
 * report lists exactly the kernel's threads. */
static void
check_pins (JsonObject *vm)
{
  GPid pid = (GPid) json_object_get_int_member (vm, "pid");
  JsonArray *threads = json_object_get_array_member (vm, "threads");
  g_autoptr (GArray) tids = qpin_test_list_tasks (pid);
  guint vcpus = 0;

  g_assert_cmpstr (json_object_get_string_member (vm, "state"), ==, "pinned");
  g_assert_cmpuint (json_array_get_length (threads), ==, tids->len);
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      g_autofree char *affinity
        = qpin_test_affinity_of ((GPid) json_object_get_int_member (t, "tid"));

      g_assert_cmpstr (json_object_get_string_member (t, "cpus"), ==, affinity);
      g_assert_true (json_object_get_boolean_member (t, "applied"));
      if (g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        {
          /* measured by qpin run just before cont: the vCPU never ran */
          g_assert_cmpint (json_object_get_int_member (t, "cpu_time_ns"), ==, 0);
          vcpus++;
        }
    }
  g_assert_cmpuint (vcpus, >, 0);
}

static GPid
first_vcpu_tid (JsonObject *vm)
{
  JsonArray *threads = json_object_get_array_member (vm, "threads");

  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      if (g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        return (GPid) json_object_get_int_member (t, "tid");
    }
  g_assert_not_reached ();
}

static gboolean
process_exists (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d", pid);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* Alone: pinned in prelaunch, vCPUs with no CPU time, then started; the
 * user's own -qmp works; -pidfile names the child; SIGHUP is forwarded. */
static void
test_alone (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *report = path_in (r, "report.json");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *user_sock = path_in (r, "user.sock");
  g_autofree char *pidfile = path_in (r, "qemu.pid");
  g_autofree char *qmp = g_strdup_printf ("unix:%s,server=on,wait=off", user_sock);
  g_autofree char *status = NULL, *pid_text = NULL;
  g_autoptr (JsonNode) root = NULL;
  const char *args[] = {
    "run",      "--control", control,       "--report", report,     "--",    "qemu-system-x86_64",
    "-accel",   "tcg",       "-nodefaults", "-display", "none",     "-m",    "64",
    "-smp",     "2",         "-qmp",        qmp,        "-pidfile", pidfile, "-name",
    "alone-vm", NULL
  };
  JsonObject *vm;
  GPid pid, vcpu;
  guint64 ran = 0;

  run_start (r, args, TRUE);
  vm = wait_report (report, &root);
  pid = (GPid) json_object_get_int_member (vm, "pid");
  g_assert_cmpstr (json_object_get_string_member (vm, "mode"), ==, "alone");
  g_assert_cmpstr (json_object_get_string_member (vm, "name"), ==, "alone-vm");
  g_assert_cmpstr (json_object_get_string_member (vm, "run_state_when_pinned"), ==, "prelaunch");
  g_assert_true (json_object_get_boolean_member (vm, "cont"));
  g_assert_cmpint (json_object_get_int_member (vm, "resumed_at_us"), >, 0);
  check_pins (vm);

  /* the pidfile holds the child's pid */
  g_assert_true (g_file_get_contents (pidfile, &pid_text, NULL, NULL));
  g_assert_cmpint (atoi (pid_text), ==, pid);
  /* the guest runs; the user's monitor is QEMU's and works */
  status = qmp_status (user_sock);
  g_assert_cmpstr (status, ==, "running");
  /* and now the vCPU does use CPU time: the zero above was not a given */
  vcpu = first_vcpu_tid (vm);
  for (guint i = 0; i < 500 && (ran = cpu_time_ns (pid, vcpu)) == 0; i++)
    g_usleep (20 * 1000);
  g_assert_cmpuint (ran, >, 0);
  check_pins (vm);

  g_subprocess_send_signal (r->proc, SIGHUP);
  g_assert_cmpint (run_wait (r), ==, 0);
  g_assert_nonnull (strstr (r->err, "planning alone"));
  /* QEMU says which signal it got: the forwarded SIGHUP */
  g_assert_nonnull (strstr (r->err, "terminating on signal 1"));
  /* stderr is the console's too: nothing else from qpin without --verbose */
  g_assert_cmpuint (count_lines (r->err), ==, 2);
  g_assert_false (process_exists (pid));
  g_assert_false (g_file_test (pidfile, G_FILE_TEST_EXISTS));
  assert_no_private_dir (r);
}

/* The user's -S: pinned, never cont'ed by qpin; sched and memory applied
 * before; the test starts the guest itself. */
static void
test_user_paused_sched (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *report = path_in (r, "report.json");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *user_sock = path_in (r, "user.sock");
  g_autofree char *qmp = g_strdup_printf ("unix:%s,server=on,wait=off", user_sock);
  g_autofree char *status = NULL;
  g_autoptr (JsonNode) root = NULL;
  const char *args[] = { "run",
                         "--control",
                         control,
                         "--report",
                         report,
                         "--policy",
                         "sched=fifo:5",
                         "--policy",
                         "memory=migrate",
                         "--verbose",
                         "--",
                         "qemu-system-x86_64",
                         "-accel",
                         "tcg",
                         "-nodefaults",
                         "-display",
                         "none",
                         "-m",
                         "64",
                         "-smp",
                         "2",
                         "-qmp",
                         qmp,
                         "-S",
                         NULL };
  JsonObject *vm;
  JsonArray *threads;
  GPid pid;

  run_start (r, args, TRUE);
  vm = wait_report (report, &root);
  pid = (GPid) json_object_get_int_member (vm, "pid");
  g_assert_false (json_object_get_boolean_member (vm, "cont"));
  g_assert_cmpstr (json_object_get_string_member (vm, "run_state_when_pinned"), ==, "prelaunch");
  g_assert_cmpstr (json_object_get_string_member (vm, "sched"), ==, "fifo:5");
  g_assert_nonnull (strstr (json_object_get_string_member (vm, "memory"), "node"));
  check_pins (vm);
  status = qmp_status (user_sock);
  g_assert_cmpstr (status, ==, "prelaunch");

  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      GPid tid = (GPid) json_object_get_int_member (t, "tid");
      gboolean is_vcpu = g_str_equal (json_object_get_string_member (t, "role"), "vcpu");
      struct sched_param param = { 0 };

      g_assert_cmpint (sched_getscheduler (tid), ==, is_vcpu ? SCHED_FIFO : SCHED_OTHER);
      g_assert_cmpint (sched_getparam (tid, &param), ==, 0);
      g_assert_cmpint (param.sched_priority, ==, is_vcpu ? 5 : 0);
      /* read by the test itself: paused vCPUs have run nothing */
      if (is_vcpu)
        g_assert_cmpuint (cpu_time_ns (pid, tid), ==, 0);
    }
  qmp_command (user_sock, "quit");
  g_assert_cmpint (run_wait (r), ==, 0);
  g_assert_false (process_exists (pid));
  /* --verbose: what qpin did */
  g_assert_nonnull (strstr (r->err, "pinned 5 of 5 threads"));
  g_assert_nonnull (strstr (r->err, "scheduled fifo:5"));
}

/* QEMU killed from outside: qpin run returns 128 + SIGKILL. */
static void
test_exit_status_signal (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *report = path_in (r, "report.json");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autoptr (JsonNode) root = NULL;
  const char *args[]
    = { "run",    "--control", control,       "--report", report, "--", "qemu-system-x86_64",
        "-accel", "tcg",       "-nodefaults", "-display", "none", "-m", "64",
        "-S",     NULL };
  JsonObject *vm;

  run_start (r, args, TRUE);
  vm = wait_report (report, &root);
  g_assert_cmpint (kill ((GPid) json_object_get_int_member (vm, "pid"), SIGKILL), ==, 0);
  g_assert_cmpint (run_wait (r), ==, 128 + SIGKILL);
  assert_no_private_dir (r);
}

/* A QEMU binary that does not exist: exit 127 and one line, before any
 * word about the mode (no "planning alone" for a QEMU that never starts). */
static void
test_missing_binary (void)
{
  const char *binaries[] = { "/nonexistent/qemu-system-x86_64", "qpin-test-no-such-qemu" };

  for (guint i = 0; i < G_N_ELEMENTS (binaries); i++)
    {
      g_autoptr (Run) r = run_new ();
      g_autofree char *control = path_in (r, "no-daemon.sock");
      g_autofree char *line = g_strdup_printf ("qpin run: '%s': command not found\n", binaries[i]);
      const char *args[] = { "run", "--control", control, "--", binaries[i], "-m", "64", NULL };

      run_start (r, args, TRUE);
      g_assert_cmpint (run_wait (r), ==, 127);
      g_assert_nonnull (strstr (r->err, line));
      g_assert_null (strstr (r->err, "planning alone"));
      g_assert_cmpuint (count_lines (r->err), ==, 1);
      assert_no_private_dir (r);
    }
}

/* QEMU refuses its arguments: its own message shown, its status returned. */
static void
test_qemu_startup_failure (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *control = path_in (r, "no-daemon.sock");
  const char *args[] = { "run",
                         "--control",
                         control,
                         "--",
                         "qemu-system-x86_64",
                         "-accel",
                         "tcg",
                         "-nodefaults",
                         "-display",
                         "none",
                         "-m",
                         "64",
                         "-machine",
                         "no-such-machine",
                         NULL };

  run_start (r, args, TRUE);
  g_assert_cmpint (run_wait (r), ==, 1);
  g_assert_nonnull (strstr (r->err, "unsupported machine type"));
  g_assert_nonnull (strstr (r->err, "qpin run: QEMU exited with status 1 before"));
  assert_no_private_dir (r);
}

/* A "QEMU" that dies of a signal before any monitor connects. */
static void
test_dies_before_monitor (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *script = path_in (r, "fake-qemu");
  g_autoptr (GError) error = NULL;
  const char *args[] = { "run", "--control", control, "--", script, "-m", "64", NULL };

  g_file_set_contents (script, "#!/bin/sh\nkill -KILL $$\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (script, 0755), ==, 0);
  run_start (r, args, TRUE);
  g_assert_cmpint (run_wait (r), ==, 128 + SIGKILL);
  g_assert_nonnull (
    strstr (r->err, "qpin run: QEMU exited with status 137 before its monitor was ready\n"));
  assert_no_private_dir (r);
}

/* More vCPUs than host CPUs, dedicated, overcommit=refuse: QEMU is
 * stopped, nothing is left, status 1 with the reason. */
static void
test_overcommit_refuse (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *pidfile = path_in (r, "qemu.pid");
  g_autofree char *smp = g_strdup_printf ("%u", g_get_num_processors () + 1);
  const char *args[] = { "run",
                         "--control",
                         control,
                         "--policy",
                         "cpus=dedicated",
                         "--policy",
                         "overcommit=refuse",
                         "--",
                         "qemu-system-x86_64",
                         "-accel",
                         "tcg",
                         "-nodefaults",
                         "-display",
                         "none",
                         "-m",
                         "64",
                         "-smp",
                         smp,
                         "-pidfile",
                         pidfile,
                         NULL };
  GPid pid = 0;

  run_start (r, args, FALSE);
  /* catch the pid while QEMU lives, to check it is gone afterwards; QEMU
   * creates the file before it writes the pid */
  for (guint i = 0; i < WAIT_MS / 5 && pid <= 0; i++)
    {
      g_autofree char *pid_text = NULL;

      if (g_file_get_contents (pidfile, &pid_text, NULL, NULL))
        pid = (GPid) atoi (pid_text);
      if (pid <= 0)
        g_usleep (5 * 1000);
    }
  g_assert_cmpint (run_wait (r), ==, 1);
  g_assert_nonnull (strstr (r->err, "qpin run: cannot pin QEMU"));
  g_assert_nonnull (strstr (r->err, "QEMU stopped\n"));
  /* one line says there is no daemon, one why QEMU was stopped */
  g_assert_cmpuint (count_lines (r->err), ==, 2);
  g_assert_cmpint (pid, >, 0);
  g_assert_false (process_exists (pid));
  g_assert_false (g_file_test (pidfile, G_FILE_TEST_EXISTS));
  assert_no_private_dir (r);
}

static void
test_daemonize_refused (void)
{
  g_autoptr (Run) r = run_new ();
  const char *args[] = { "run", "--", "qemu-system-x86_64", "-daemonize", "-m", "64", NULL };

  run_start (r, args, TRUE);
  g_assert_cmpint (run_wait (r), ==, 2);
  g_assert_nonnull (strstr (r->err, "-daemonize is not supported"));
}

static void
test_usage (void)
{
  g_autoptr (Run) r = run_new ();
  const char *args[] = { "run", "--name", "x", NULL };

  run_start (r, args, TRUE);
  g_assert_cmpint (run_wait (r), ==, 2);
  g_assert_nonnull (strstr (r->err, "no QEMU command"));
}

/* ---- alone, between events: hot-add and host CPU hotplug ---- */

/* `qpin run` alone of a VM named @name with @smp, -v, --interval 0 (only
 * the kernel's events can make it look again), a monitor of the test's
 * own at @user_sock */
static GStrv
alone_event_args (const char *control, const char *report, const char *user_sock, const char *name,
                  const char *smp)
{
  g_autofree char *qmp = g_strdup_printf ("unix:%s,server=on,wait=off", user_sock);
  g_autofree char *guest = g_strdup_printf ("%s,debug-threads=on", name);
  const char *args[] = { "run",    "-v",       "--interval",  "0",        "--control",
                         control,  "--report", report,        "--",       "qemu-system-x86_64",
                         "-accel", "tcg",      "-nodefaults", "-display", "none",
                         "-m",     "64",       "-smp",        smp,        "-qmp",
                         qmp,      "-name",    guest,         NULL };
  return g_strdupv ((char **) args);
}

/* A vCPU hot-added by a foreign client under `qpin run` alone is pinned
 * on the kernel's process event: with --interval 0 no timer could find
 * it, and before the fix (a 1 s reconcile, no events) it took up to 1 s.
 * With one vCPU on each of the two host CPUs, the new one must leave the
 * CPU of vCPU 0, whose affinity the new thread inherits. */
static void
test_alone_foreign_hot_add (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *report = path_in (r, "report.json");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *user_sock = path_in (r, "user.sock");
  g_auto (GStrv) args = alone_event_args (control, report, user_sock, "hp", "1,maxcpus=2");
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GArray) before = NULL;
  g_autofree char *cpu0 = NULL, *now = NULL;
  JsonObject *vm;
  GPid pid, tid = 0;
  gint64 added, pinned = 0;

  if (g_get_num_processors () < 2)
    {
      g_test_skip ("needs two host CPUs");
      return;
    }
  run_start (r, (const char *const *) args, TRUE);
  vm = wait_report (report, &root);
  check_pins (vm);
  pid = (GPid) json_object_get_int_member (vm, "pid");
  before = qpin_test_vcpu_tids (pid);
  g_assert_cmpuint (before->len, ==, 1);
  cpu0 = qpin_test_affinity_of (g_array_index (before, GPid, 0));

  qpin_test_qemu_add_vcpus (user_sock, 1);
  added = g_get_monotonic_time ();
  while (pinned == 0 && g_get_monotonic_time () - added < 3 * G_USEC_PER_SEC)
    {
      g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (pid);

      for (guint i = 0; tid == 0 && i < vcpus->len; i++)
        if (g_array_index (vcpus, GPid, i) != g_array_index (before, GPid, 0))
          tid = g_array_index (vcpus, GPid, i);
      g_free (now);
      now = tid ? qpin_test_affinity_of (tid) : NULL;
      if (now && strchr (now, '-') == NULL && strchr (now, ',') == NULL && !g_str_equal (now, cpu0))
        pinned = g_get_monotonic_time ();
      else
        g_usleep (1000);
    }
  g_test_message ("foreign hot-add under qpin run alone: vcpu 1 (tid %d) on cpus %s %.1f ms "
                  "after device_add returned (vcpu 0 on %s)",
                  tid, now, pinned ? (double) (pinned - added) / 1000.0 : -1.0, cpu0);
  g_assert_cmpint (tid, >, 0);
  g_assert_cmpint (pinned, >, 0);
  /* generous for a loaded 2-CPU host; the event path takes a few ms */
  g_assert_cmpint (pinned - added, <, 500 * 1000);

  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
  g_assert_nonnull (strstr (r->err, "placed new vcpu 1"));
}

typedef struct {
  GPid tid;
  const char *want;
} Affinity;

static gboolean
affinity_is (gpointer data)
{
  Affinity *a = data;
  g_autofree char *now = qpin_test_affinity_of (a->tid);

  return g_str_equal (now, a->want);
}

/* Host CPU 1 goes offline under `qpin run` alone: the uevent re-places
 * the vCPU that had it (onto CPU 0, degraded) with a message that says
 * the CPU went offline; before the fix it was found by the 1 s timer,
 * its pin refused, and the refusal blamed on a cgroup cpuset.  CPU 1
 * back online: the vCPU is back on it. */
static void
test_alone_host_cpu_offline (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *report = path_in (r, "report.json");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *user_sock = path_in (r, "user.sock");
  g_auto (GStrv) args = alone_event_args (control, report, user_sock, "off", "2");
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GArray) vcpus = NULL;
  Affinity on1 = { 0, "0" };
  JsonObject *vm;

  if (!qpin_test_cpu1_hotplug_begin (TRUE))
    return;
  /* warnings are expected once degraded: not fatal */
  run_start (r, (const char *const *) args, FALSE);
  vm = wait_report (report, &root);
  check_pins (vm);
  vcpus = qpin_test_vcpu_tids ((GPid) json_object_get_int_member (vm, "pid"));
  g_assert_cmpuint (vcpus->len, ==, 2);
  for (guint i = 0; i < vcpus->len; i++)
    {
      g_autofree char *cpus = qpin_test_affinity_of (g_array_index (vcpus, GPid, i));
      if (g_str_equal (cpus, "1"))
        on1.tid = g_array_index (vcpus, GPid, i);
    }
  g_assert_cmpint (on1.tid, >, 0);

  qpin_test_cpu1_set_online (FALSE);
  /* --interval 0: only the uevent can make qpin look */
  g_assert_true (qpin_test_wait_for (affinity_is, &on1, 10000));
  g_usleep (1500 * 1000); /* the kernel's own moves come after the event */
  qpin_test_cpu1_set_online (TRUE);
  on1.want = "1";
  g_assert_true (qpin_test_wait_for (affinity_is, &on1, 10000));

  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
  g_assert_nonnull (
    strstr (r->err, "host CPU 1 went offline: re-placing the threads that used it"));
  g_assert_null (strstr (r->err, "cgroup cpuset"));
  g_assert_nonnull (strstr (r->err, "host CPU 1 is online:"));
}

/* ---- with a daemon ---- */

static JsonNode *
daemon_status (const char *control)
{
  g_autofree char *out = NULL, *err = NULL;
  const char *args[] = { "status", "--json", "--control", control, NULL };

  if (qpin_test_run_qpin (args, &out, &err) != 0)
    return NULL;
  return json_from_string (out, NULL);
}

static JsonObject *
status_vm (JsonNode *status, GPid pid)
{
  JsonArray *vms = json_object_get_array_member (json_node_get_object (status), "vms");

  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);
      if (json_object_get_int_member (vm, "pid") == pid)
        return vm;
    }
  return NULL;
}

/* `qpin run` of a one-vCPU VM named "twin", left paused (-S) if @paused */
static GStrv
daemon_run_args (const char *control, const char *listen, const char *report, gboolean paused)
{
  const char *args[] = { "run",
                         "--control",
                         control,
                         "--daemon-socket",
                         listen,
                         "--report",
                         report,
                         "--",
                         "qemu-system-x86_64",
                         "-accel",
                         "tcg",
                         "-nodefaults",
                         "-display",
                         "none",
                         "-m",
                         "64",
                         "-smp",
                         "1",
                         "-name",
                         "twin",
                         paused ? "-S" : NULL,
                         NULL };
  return g_strdupv ((char **) args);
}

/* Two VMs join the daemon's ledger: each is pinned by the daemon before
 * its guest starts; the second, of the same name, is reported as a clash
 * and keyed NAME@PID; a third finds no CPU left: stopped, status 1. */
static void
test_daemon (void)
{
  g_autoptr (Run) d = run_new ();
  g_autoptr (Run) r1 = run_new ();
  g_autoptr (Run) r2 = run_new ();
  g_autoptr (Run) r3 = run_new ();
  g_autofree char *listen = path_in (d, "qmp.sock");
  g_autofree char *control = path_in (d, "control.sock");
  g_autofree char *report1 = path_in (r1, "report.json");
  g_autofree char *report2 = path_in (r2, "report.json");
  g_autofree char *key2 = NULL;
  g_autoptr (JsonNode) root1 = NULL, root2 = NULL, status = NULL;
  const char *dargs[] = { "daemon",  "--listen", listen,     "--control",      control,
                          "--grace", "0",        "--policy", "cpus=dedicated", NULL };
  guint cpus = g_get_num_processors ();
  g_auto (GStrv) a1 = NULL, a2 = NULL, a3 = NULL;
  JsonObject *vm1, *vm2, *entry;
  GPid pid2;

  if (cpus < 2)
    {
      g_test_skip ("needs two host CPUs");
      return;
    }
  d->proc = spawn_qpin (dargs, FALSE, NULL);
  for (guint i = 0; i < WAIT_MS / 20 && (status = daemon_status (control)) == NULL; i++)
    g_usleep (20 * 1000);
  g_assert_nonnull (status);
  g_clear_pointer (&status, json_node_unref);

  a1 = daemon_run_args (control, listen, report1, FALSE);
  a2 = daemon_run_args (control, listen, report2, TRUE);
  a3 = daemon_run_args (control, listen, "/dev/null", TRUE);

  run_start (r1, (const char *const *) a1, TRUE);
  vm1 = wait_report (report1, &root1);
  g_assert_cmpstr (json_object_get_string_member (vm1, "mode"), ==, "daemon");
  g_assert_cmpstr (json_object_get_string_member (vm1, "run_state_when_pinned"), ==, "prelaunch");
  g_assert_true (json_object_get_boolean_member (vm1, "cont"));
  g_assert_cmpint (json_object_get_int_member (vm1, "resumed_at_us"), >, 0);
  check_pins (vm1);

  run_start (r2, (const char *const *) a2, TRUE);
  vm2 = wait_report (report2, &root2);
  pid2 = (GPid) json_object_get_int_member (vm2, "pid");
  g_assert_false (json_object_get_boolean_member (vm2, "cont"));
  check_pins (vm2);
  status = daemon_status (control);
  g_assert_nonnull (status);
  entry = status_vm (status, pid2);
  g_assert_nonnull (entry);
  key2 = g_strdup_printf ("twin@%d", pid2);
  g_assert_cmpstr (json_object_get_string_member (entry, "key"), ==, key2);
  g_assert_cmpstr (json_object_get_string_member (entry, "state"), ==, "pinned");
  /* exclusive across the two VMs */
  g_assert_cmpint (first_vcpu_tid (vm1), !=, first_vcpu_tid (vm2));
  {
    g_autofree char *c1 = qpin_test_affinity_of (first_vcpu_tid (vm1));
    g_autofree char *c2 = qpin_test_affinity_of (first_vcpu_tid (vm2));
    g_assert_cmpstr (c1, !=, c2);
  }

  /* with every host CPU held (2 here), a third dedicated VM cannot fit */
  if (cpus == 2)
    {
      run_start (r3, (const char *const *) a3, TRUE);
      g_assert_cmpint (run_wait (r3), ==, 1);
      g_assert_nonnull (strstr (r3->err, "qpin run: the qpin daemon cannot pin QEMU"));
    }

  /* QEMU's daemon monitor goes to a socket nobody listens on: the daemon
   * never sees it; qpin run gives up after --timeout and stops QEMU */
  {
    g_autoptr (Run) r4 = run_new ();
    g_autofree char *dead = path_in (r4, "dead.sock");
    g_autoptr (GSocket) sock
      = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL);
    g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (dead);
    const char *args[] = { "run",
                           "--control",
                           control,
                           "--daemon-socket",
                           dead,
                           "--timeout",
                           "2000",
                           "--",
                           "qemu-system-x86_64",
                           "-accel",
                           "tcg",
                           "-nodefaults",
                           "-display",
                           "none",
                           "-m",
                           "64",
                           "-S",
                           NULL };

    g_assert_true (g_socket_bind (sock, addr, TRUE, NULL)); /* bound, never listening */
    run_start (r4, args, TRUE);
    g_assert_cmpint (run_wait (r4), ==, 1);
    g_assert_nonnull (strstr (r4->err, " within 2000 ms"));
    g_assert_nonnull (strstr (r4->err, "; QEMU stopped\n"));
  }

  g_subprocess_send_signal (r1->proc, SIGTERM);
  g_subprocess_send_signal (r2->proc, SIGTERM);
  g_assert_cmpint (run_wait (r1), ==, 0);
  g_assert_cmpint (run_wait (r2), ==, 0);
  g_assert_null (strstr (r1->err, "planning alone"));
  g_assert_null (strstr (r1->err, "already runs under the qpin daemon"));
  g_assert_nonnull (strstr (r2->err, "a VM named 'twin' already runs under the qpin daemon"));
  g_subprocess_send_signal (d->proc, SIGTERM);
  run_wait (d);
}

/* One raw request line on the control socket; returns the reply line. */
static char *
control_line (const char *control, const char *request)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (control);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) conn
    = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, &error);
  g_autoptr (GDataInputStream) in = NULL;
  g_autofree char *text = g_strconcat (request, "\n", NULL);
  char *line;

  g_assert_no_error (error);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)),
                                            text, strlen (text), NULL, NULL, &error));
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  return line;
}

static gint64
requests_of (JsonNode *status, const char *command)
{
  JsonObject *requests = json_object_get_object_member (json_node_get_object (status), "requests");

  g_assert_nonnull (requests);
  return json_object_get_int_member (requests, command);
}

/* Under a daemon, qpin run asks `status` once (is a daemon there, a name
 * clash?) and then sends one `wait`, answered when the VM is pinned:
 * the daemon's counters show 1 wait and no status polling (before the
 * fix: a status every 5 ms until pinned). */
static void
test_daemon_wait (void)
{
  g_autoptr (Run) d = run_new ();
  g_autoptr (Run) r = run_new ();
  g_autofree char *listen = path_in (d, "qmp.sock");
  g_autofree char *control = path_in (d, "control.sock");
  g_autofree char *report = path_in (r, "report.json");
  g_autoptr (JsonNode) root = NULL, before = NULL, after = NULL;
  const char *dargs[]
    = { "daemon", "--listen", listen, "--control", control, "--grace", "0", NULL };
  g_auto (GStrv) args = daemon_run_args (control, listen, report, FALSE);
  JsonObject *vm;

  d->proc = spawn_qpin (dargs, FALSE, NULL);
  for (guint i = 0; i < WAIT_MS / 20 && (before = daemon_status (control)) == NULL; i++)
    g_usleep (20 * 1000);
  g_assert_nonnull (before);

  run_start (r, (const char *const *) args, TRUE);
  vm = wait_report (report, &root);
  g_assert_cmpstr (json_object_get_string_member (vm, "mode"), ==, "daemon");
  check_pins (vm);
  after = daemon_status (control);
  g_assert_nonnull (after);
  g_test_message ("status requests %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
                  ", wait requests %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT,
                  requests_of (before, "status"), requests_of (after, "status"),
                  requests_of (before, "wait"), requests_of (after, "wait"));
  /* qpin run's one status, and the test's own second one */
  g_assert_cmpint (requests_of (after, "status") - requests_of (before, "status"), ==, 2);
  g_assert_cmpint (requests_of (after, "wait") - requests_of (before, "wait"), ==, 1);

  /* a pid the daemon never sees: the wait ends after its timeout_ms */
  {
    g_autofree char *line
      = control_line (control, "{\"command\":\"wait\",\"pid\":1,\"timeout_ms\":100}");
    g_assert_cmpstr (line, ==,
                     "{\"vm\":null,\"reason\":\"QEMU pid 1 was not placed within 100 ms\"}");
  }
  /* a bad request is refused at once, by name */
  {
    g_autofree char *line = control_line (control, "{\"command\":\"wait\",\"pid\":\"1\"}");
    g_assert_cmpstr (line, ==,
                     "{\"error\":\"wait needs a \\\"pid\\\" of 1 to 4194304 and a "
                     "\\\"timeout_ms\\\" of 1 to 600000\"}");
  }
  /* a waiting client that leaves ends its wait: nothing stays pending
   * (before, until its timeout_ms, 10 min here) */
  {
    g_autoptr (GSocketClient) sc = g_socket_client_new ();
    g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (control);
    g_autoptr (GSocketConnection) conn
      = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, NULL);
    const char *req = "{\"command\":\"wait\",\"pid\":1,\"timeout_ms\":600000}\n";
    gint64 waiting = -1;

    g_assert_nonnull (conn);
    g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)),
                                              req, strlen (req), NULL, NULL, NULL));
    for (guint i = 0; i < 100 && waiting != 1; i++)
      {
        g_autoptr (JsonNode) now = daemon_status (control);
        waiting = requests_of (now, "waiting");
      }
    g_assert_cmpint (waiting, ==, 1);
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    for (guint i = 0; i < 100 && waiting != 0; i++)
      {
        g_autoptr (JsonNode) now = daemon_status (control);
        waiting = requests_of (now, "waiting");
      }
    g_assert_cmpint (waiting, ==, 0);
  }
  /* the VM already pinned: answered at once with it */
  {
    g_autofree char *req
      = g_strdup_printf ("{\"command\":\"wait\",\"pid\":%" G_GINT64_FORMAT ",\"timeout_ms\":100}",
                         json_object_get_int_member (vm, "pid"));
    g_autofree char *line = control_line (control, req);
    g_autoptr (JsonNode) reply = json_from_string (line, NULL);
    JsonObject *got = json_object_get_object_member (json_node_get_object (reply), "vm");

    g_assert_cmpstr (json_object_get_string_member (got, "state"), ==, "pinned");
  }

  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
  g_subprocess_send_signal (d->proc, SIGTERM);
  run_wait (d);
}

/* Under a daemon whose config says sched=rr:2, qpin run's own
 * --policy sched=fifo:3 and --config do not apply: qpin run says so in one
 * line naming both; --report gives what the kernel has (rr:2, read back
 * per thread), not what qpin run was asked; -v tells the daemon's part:
 * waiting for it, its placement of each thread, the guest started. */
static void
test_daemon_policy_readback (void)
{
  g_autoptr (Run) d = run_new ();
  g_autoptr (Run) r = run_new ();
  g_autofree char *listen = path_in (d, "qmp.sock");
  g_autofree char *control = path_in (d, "control.sock");
  g_autofree char *report = path_in (r, "report.json");
  g_autofree char *conf = path_in (r, "run.conf");
  g_autofree char *ignored = NULL, *waiting = NULL;
  g_autoptr (JsonNode) root = NULL, status = NULL;
  g_autoptr (GPtrArray) placed_lines = g_ptr_array_new_with_free_func (g_free);
  const char *dargs[] = { "daemon",  "--listen", listen,     "--control",  control,
                          "--grace", "0",        "--policy", "sched=rr:2", NULL };
  const char *args[] = { "run",
                         "--control",
                         control,
                         "--daemon-socket",
                         listen,
                         "--report",
                         report,
                         "--config",
                         conf,
                         "--policy",
                         "sched=fifo:3",
                         "--verbose",
                         "--",
                         "qemu-system-x86_64",
                         "-accel",
                         "tcg",
                         "-nodefaults",
                         "-display",
                         "none",
                         "-m",
                         "64",
                         "-smp",
                         "2",
                         "-name",
                         "rt",
                         NULL };
  JsonObject *vm;
  JsonArray *threads;
  GPid pid;
  guint vcpus = 0;

  g_assert_true (g_file_set_contents (conf, "[defaults]\nsched=fifo:4\n", -1, NULL));
  d->proc = spawn_qpin (dargs, FALSE, NULL);
  for (guint i = 0; i < WAIT_MS / 20 && (status = daemon_status (control)) == NULL; i++)
    g_usleep (20 * 1000);
  g_assert_nonnull (status);

  run_start (r, args, TRUE);
  vm = wait_report (report, &root);
  pid = (GPid) json_object_get_int_member (vm, "pid");
  g_assert_cmpstr (json_object_get_string_member (vm, "mode"), ==, "daemon");
  g_assert_cmpstr (json_object_get_string_member (vm, "sched"), ==, "rr:2");
  g_assert_cmpstr (json_object_get_string_member (vm, "memory_policy"), ==, "default");
  /* QEMU has touched pages by now: on some node, which the list names */
  {
    QpinCpuset nodes;
    g_assert_true (
      qpin_cpuset_parse (json_object_get_string_member (vm, "memory_pages_nodes"), &nodes, NULL));
    g_assert_false (qpin_cpuset_is_empty (&nodes));
  }
  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      GPid tid = (GPid) json_object_get_int_member (t, "tid");
      gboolean is_vcpu = g_str_equal (json_object_get_string_member (t, "role"), "vcpu");
      struct sched_param param = { 0 };
      g_autofree char *placed = g_strdup_printf (
        "qpin run: the daemon placed %s %" G_GINT64_FORMAT " (tid %d) on cpus %s\n",
        json_object_get_string_member (t, "role"), json_object_get_int_member (t, "index"), tid,
        json_object_get_string_member (t, "cpus"));

      /* the kernel's view, read by the test, is what the report says */
      g_assert_cmpint (sched_getscheduler (tid), ==, is_vcpu ? SCHED_RR : SCHED_OTHER);
      g_assert_cmpint (sched_getparam (tid, &param), ==, 0);
      g_assert_cmpint (param.sched_priority, ==, is_vcpu ? 2 : 0);
      g_assert_cmpstr (json_object_get_string_member (t, "sched"), ==, is_vcpu ? "rr:2" : "other");
      g_ptr_array_add (placed_lines, g_steal_pointer (&placed));
      vcpus += is_vcpu;
    }
  g_assert_cmpuint (vcpus, ==, 2);
  check_pins (vm);

  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
  ignored = g_strdup_printf ("qpin run: warning: the qpin daemon at '%s' places and schedules this "
                             "VM by its own configuration; ignored: --config '%s' --policy "
                             "'sched=fifo:3'\n",
                             control, conf);
  g_assert_nonnull (strstr (r->err, ignored));
  waiting = g_strdup_printf ("qpin run: waiting for the qpin daemon to pin QEMU (pid %d)\n", pid);
  g_assert_nonnull (strstr (r->err, waiting));
  g_assert_nonnull (strstr (r->err, "qpin run: vCPU threads run rr:2; memory: default policy"));
  g_assert_nonnull (strstr (r->err, "qpin run: pid "));
  g_assert_nonnull (strstr (r->err, ": cont: guest started\n"));
  for (guint i = 0; i < placed_lines->len; i++)
    g_assert_nonnull (strstr (r->err, g_ptr_array_index (placed_lines, i)));
  g_subprocess_send_signal (d->proc, SIGTERM);
  run_wait (d);
}

/* ---- examples/ and data/ ---- */

static char *
source_path (const char *relative)
{
  return g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", relative, NULL);
}

static char *
build_path (const char *relative)
{
  return g_build_filename (g_getenv ("G_TEST_BUILDDIR"), "..", relative, NULL);
}

/* Runs a command (not through the valgrind wrapper); returns its status. */
static int
run_plain (const char *const *argv, const char *const *env, char **out, char **err)
{
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;

  for (guint i = 0; env && env[i]; i += 2)
    g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, err, &error);
  g_assert_no_error (error);
  g_test_message ("%s: stdout: %s\nstderr: %s", argv[0], *out, *err);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc)
                                           : 128 + g_subprocess_get_term_sig (proc);
}

/* examples/qpin-qemu: the VM runs pinned, with the user's QMP socket,
 * pidfile and report where the wrapper says; SIGTERM ends it with 0 and
 * leaves none of the three behind. */
static void
test_example_wrapper (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *script = source_path ("examples/qpin-qemu");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *run_args = g_strdup_printf ("--control %s", control);
  g_autofree char *report = path_in (r, "wrapped.json");
  g_autofree char *qmp = path_in (r, "wrapped.qmp");
  g_autofree char *pidfile = path_in (r, "wrapped.pid");
  g_autofree char *status = NULL, *pid_text = NULL;
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  const char *args[] = { script, "wrapped", "-accel", "tcg",  "-nodefaults", "-display",
                         "none", "-m",      "64",     "-smp", "1",           NULL };
  JsonObject *vm;

  g_subprocess_launcher_setenv (launcher, "QPIN", qpin_test_qpin_binary (), TRUE);
  g_subprocess_launcher_setenv (launcher, "QPIN_VM_DIR", r->dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "QPIN_RUN_ARGS", run_args, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  r->proc = g_subprocess_launcher_spawnv (launcher, args, &error);
  g_assert_no_error (error);
  vm = wait_report (report, &root);
  g_assert_cmpstr (json_object_get_string_member (vm, "name"), ==, "wrapped");
  g_assert_cmpstr (json_object_get_string_member (vm, "run_state_when_pinned"), ==, "prelaunch");
  check_pins (vm);
  status = qmp_status (qmp);
  g_assert_cmpstr (status, ==, "running");
  g_assert_true (g_file_get_contents (pidfile, &pid_text, NULL, NULL));
  g_assert_cmpint (atoi (pid_text), ==, json_object_get_int_member (vm, "pid"));
  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
  g_assert_false (process_exists ((GPid) json_object_get_int_member (vm, "pid")));
  /* nothing of the VM is left behind: QEMU removes its pidfile and socket,
   * the wrapper the report */
  g_assert_false (g_file_test (report, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (pidfile, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (qmp, G_FILE_TEST_EXISTS));

  /* QEMU refuses an option: its status comes through, no report is left */
  {
    const char *bad[] = { script, "wrapped", "-accel", "tcg", "-no-such-option", NULL };

    g_clear_object (&r->proc);
    g_clear_pointer (&r->err, g_free);
    g_clear_pointer (&r->out, g_free);
    r->proc = g_subprocess_launcher_spawnv (launcher, bad, &error);
    g_assert_no_error (error);
    g_assert_cmpint (run_wait (r), ==, 1);
    g_assert_nonnull (strstr (r->err, "-no-such-option"));
    g_assert_false (g_file_test (report, G_FILE_TEST_EXISTS));
  }
}

/* Copies the built unit @name into @dir as @instance with the installed
 * paths replaced by the test's; returns the copy's ExecStart= value. */
static char *
unit_copy (const char *name, const char *dir, const char *instance, const char *const *replace)
{
  g_autofree char *built = build_path (name);
  g_autofree char *text = NULL;
  g_autofree char *copy = g_build_filename (dir, instance, NULL);
  g_auto (GStrv) lines = NULL;
  g_autoptr (GString) out = NULL;
  char *exec = NULL;

  g_assert_true (g_file_get_contents (built, &text, NULL, NULL));
  out = g_string_new (text);
  for (guint i = 0; replace[i]; i += 2)
    g_string_replace (out, replace[i], replace[i + 1], 0);
  g_assert_true (g_file_set_contents (copy, out->str, -1, NULL));
  lines = g_strsplit (out->str, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "ExecStart="))
      exec = g_strdup (lines[i] + strlen ("ExecStart="));
  g_assert_nonnull (exec);
  return exec;
}

static void
systemd_verify (const char *dir, const char *instance)
{
  g_autofree char *path = g_build_filename (dir, instance, NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *argv[] = { "systemd-analyze", "verify", "--man=no", path, NULL };

  g_autofree char *program = g_find_program_in_path ("systemd-analyze");

  if (program == NULL)
    {
      g_test_message ("systemd-analyze not found: unit syntax not verified");
      return;
    }
  g_assert_cmpint (run_plain (argv, NULL, &out, &err), ==, 0);
  /* it reports bad lines on stderr and still exits 0 */
  g_assert_cmpstr (err, ==, "");
}

/* examples/qemu-vm@.service: systemd accepts it, and its ExecStart, with
 * %i and the environment file expanded as systemd does, starts a pinned
 * VM that SIGTERM to qpin run (KillMode=mixed) shuts down with status 0. */
static void
test_example_vm_unit (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *env_file = path_in (r, "unit-vm.env");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *qmp = path_in (r, "unit-vm.qmp");
  g_autofree char *env_text = g_strdup_printf (
    "QEMU_ARGS=-accel tcg -nodefaults -display none -m 64 -smp 1 -qmp unix:%s,server=on,wait=off\n",
    qmp);
  g_autofree char *bindir_qpin = NULL;
  g_autofree char *exec = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autofree char *status = NULL;
  g_auto (GStrv) words = NULL;
  g_auto (GStrv) qemu_args = NULL;
  const char *replace[7];

  g_assert_true (g_file_set_contents (env_file, env_text, -1, NULL));
  /* the unit names qpin by its installed path and reads /etc/qpin/vms */
  {
    g_autofree char *built = build_path ("examples/qemu-vm@.service");
    g_autofree char *text = NULL;
    const char *start, *end;

    g_assert_true (g_file_get_contents (built, &text, NULL, NULL));
    start = strstr (text, "ExecStart=") + strlen ("ExecStart=");
    end = strchr (start, ' ');
    bindir_qpin = g_strndup (start, (gsize) (end - start));
  }
  replace[0] = bindir_qpin;
  replace[1] = qpin_test_qpin_binary ();
  replace[2] = "EnvironmentFile=";
  replace[3] = "EnvironmentFile=-";
  replace[4] = NULL;
  exec = unit_copy ("examples/qemu-vm@.service", r->dir, "qemu-vm@unit-vm.service", replace);
  systemd_verify (r->dir, "qemu-vm@unit-vm.service");

  /* expand as systemd would: %i, ${QEMU} one word, $QEMU_ARGS split */
  g_assert_true (g_str_has_suffix (exec, " -- ${QEMU} $QEMU_ARGS"));
  qemu_args = g_strsplit (strchr (env_text, '=') + 1, " ", -1);
  words = g_strsplit (exec, " ", -1);
  for (guint i = 0; words[i]; i++)
    {
      if (g_str_equal (words[i], "${QEMU}"))
        g_ptr_array_add (argv, g_strdup ("qemu-system-x86_64"));
      else if (g_str_equal (words[i], "$QEMU_ARGS"))
        for (guint j = 0; qemu_args[j]; j++)
          g_ptr_array_add (argv, g_strchomp (g_strdup (qemu_args[j])));
      else if (g_str_equal (words[i], "%i"))
        g_ptr_array_add (argv, g_strdup ("unit-vm"));
      else
        g_ptr_array_add (argv, g_strdup (words[i]));
      /* this test must not join a daemon that may run on the host */
      if (g_str_equal (words[i], "run"))
        {
          g_ptr_array_add (argv, g_strdup ("--control"));
          g_ptr_array_add (argv, g_strdup (control));
        }
    }
  g_ptr_array_add (argv, NULL);
  g_assert_cmpstr (g_ptr_array_index (argv, 0), ==, qpin_test_qpin_binary ());
  r->proc = spawn_qpin ((const char *const *) argv->pdata + 1, TRUE, NULL);

  /* running, and every vCPU on one CPU of its own */
  /* the socket file exists a moment before QEMU listens on it */
  for (guint i = 0; i < WAIT_MS / 20; i++)
    {
      g_autoptr (QpinQmpClient) probe = qpin_qmp_client_connect_sync (qmp, 10000, NULL);

      if (probe != NULL)
        {
          qpin_qmp_client_close (probe);
          g_free (status);
          status = qmp_status (qmp);
          if (g_str_equal (status, "running"))
            break;
        }
      g_usleep (20 * 1000);
    }
  g_assert_cmpstr (status, ==, "running");
  {
    g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (qmp, 10000, &error);
    g_autoptr (JsonNode) ret = NULL;
    g_autoptr (JsonNode) name = NULL;
    JsonObject *cpu;
    g_autofree char *affinity = NULL, *comm_path = NULL, *comm = NULL;

    g_assert_no_error (error);
    ret = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, 10000, &error);
    g_assert_no_error (error);
    cpu = json_array_get_object_element (json_node_get_array (ret), 0);
    affinity = qpin_test_affinity_of ((GPid) json_object_get_int_member (cpu, "thread-id"));
    g_assert_null (strpbrk (affinity, ",-"));
    name = qpin_qmp_client_execute_sync (client, "query-name", NULL, 10000, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (name), "name"), ==,
                     "unit-vm");
    /* --name added debug-threads=on: the vCPU thread is named, so a
     * hot-added one is pinned at birth */
    comm_path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/comm",
                                 json_object_get_int_member (cpu, "thread-id"));
    g_assert_true (g_file_get_contents (comm_path, &comm, NULL, NULL));
    g_assert_cmpstr (comm, ==, "CPU 0/TCG\n");
    qpin_qmp_client_close (client);
  }
  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
}

/* data/qpin.service: systemd accepts it; its ExecStart, with the example
 * config, starts a daemon that tells $NOTIFY_SOCKET it is ready. */
static void
test_data_daemon_unit (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *config = source_path ("data/qpin.conf.example");
  g_autofree char *notify = path_in (r, "notify.sock");
  g_autofree char *listen = path_in (r, "qmp.sock");
  g_autofree char *control = path_in (r, "control.sock");
  g_autofree char *exec = NULL, *installed_config = NULL;
  g_auto (GStrv) words = NULL;
  g_autoptr (GSocket) sock = NULL;
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (notify);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  char buf[256] = { 0 };
  const char *replace[] = { "@", "@", NULL };
  gssize n;

  exec = unit_copy ("data/qpin.service", r->dir, "qpin.service", replace);
  words = g_strsplit (exec, " ", -1);
  g_assert_cmpuint (g_strv_length (words), ==, 4);
  g_assert_cmpstr (words[1], ==, "daemon");
  g_assert_cmpstr (words[2], ==, "--config");
  installed_config = g_strdup (words[3]);
  {
    /* verify the copy with qpin at a path that exists */
    g_autofree char *path = g_build_filename (r->dir, "qpin.service", NULL);
    g_autofree char *text = NULL;
    g_autoptr (GString) s = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    s = g_string_new (text);
    g_string_replace (s, words[0], qpin_test_qpin_binary (), 0);
    g_assert_true (g_file_set_contents (path, s->str, -1, NULL));
    systemd_verify (r->dir, "qpin.service");
  }

  sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_DEFAULT,
                       &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (sock, addr, TRUE, &error));
  g_socket_set_timeout (sock, WAIT_MS / 1000);
  g_ptr_array_add (argv, (gpointer) qpin_test_qpin_binary ());
  for (const char *const *a = (const char *const[]){ "daemon", "--config", config, "--listen",
                                                     listen, "--control", control, NULL };
       *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_setenv (launcher, "NOTIFY_SOCKET", notify, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  r->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  n = g_socket_receive (sock, buf, sizeof buf - 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_cmpstr (buf, ==, "READY=1");
  g_test_message ("the unit reads '%s' (installed from data/qpin.conf.example)", installed_config);
  g_subprocess_send_signal (r->proc, SIGTERM);
  g_assert_cmpint (run_wait (r), ==, 0);
}

/* examples/qpin-hotplug-test: a hot-added vCPU gets pinned. */
static void
test_example_hotplug (void)
{
  g_autoptr (Run) r = run_new ();
  g_autofree char *script = source_path ("examples/qpin-hotplug-test");
  g_autofree char *control = path_in (r, "no-daemon.sock");
  g_autofree char *out = NULL, *err = NULL;
  const char *argv[]
    = { "python3",   script,  "--qpin", qpin_test_qpin_binary (), "--timeout", "60", "--",
        "--control", control, NULL };

  if (g_get_num_processors () < 2)
    {
      g_test_skip ("needs two host CPUs");
      return;
    }
  g_assert_cmpint (run_plain (argv, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "new vCPU pinned on host CPU"));
  g_assert_true (g_str_has_suffix (out, "PASS\n"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/run/alone", test_alone);
  g_test_add_func ("/run/user-paused-sched-memory", test_user_paused_sched);
  g_test_add_func ("/run/exit-status-signal", test_exit_status_signal);
  g_test_add_func ("/run/missing-binary", test_missing_binary);
  g_test_add_func ("/run/qemu-startup-failure", test_qemu_startup_failure);
  g_test_add_func ("/run/dies-before-monitor", test_dies_before_monitor);
  g_test_add_func ("/run/overcommit-refuse", test_overcommit_refuse);
  g_test_add_func ("/run/daemonize-refused", test_daemonize_refused);
  g_test_add_func ("/run/usage", test_usage);
  g_test_add_func ("/run/daemon", test_daemon);
  g_test_add_func ("/run/daemon-wait", test_daemon_wait);
  g_test_add_func ("/run/alone-foreign-hot-add", test_alone_foreign_hot_add);
  g_test_add_func ("/run/alone-host-cpu-offline", test_alone_host_cpu_offline);
  g_test_add_func ("/run/daemon-policy-readback", test_daemon_policy_readback);
  g_test_add_func ("/run/examples/wrapper", test_example_wrapper);
  g_test_add_func ("/run/examples/vm-unit", test_example_vm_unit);
  g_test_add_func ("/run/examples/hotplug", test_example_hotplug);
  g_test_add_func ("/run/data/daemon-unit", test_data_daemon_unit);
  return g_test_run ();
}
