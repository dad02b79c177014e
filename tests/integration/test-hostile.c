/* test-hostile.c: `qpin daemon` against peers that lie about who they
 * are: a QEMU with two monitors, a pid reused by another process, a QEMU
 * of a user the daemon does not serve, a name in qpin's own key form, a
 * peer that invents threads, a peer that floods events.  Real QEMUs where
 * a VM is real; tests/hostile/qpin-hostile-peer for the liars, each in a
 * process of its own so that its pid and uid are its own. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qpin-test-daemon.h"
#include "qpin-test-host.h"

#define NOBODY 65534

typedef QpinTestDaemon Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_set_up (f, "qpin-hostile", 0, 0755);
}

/* The daemon stops cleanly on SIGTERM, and a sanitizer build found
 * nothing in it (its reports go to the daemon's log). */
static void
stop_daemon (Fixture *f)
{
  g_autofree char *log = NULL;
  int status;

  if (f->daemon == NULL)
    return;
  g_subprocess_send_signal (f->daemon->process, SIGTERM);
  status = qpin_test_qpin_wait (f->daemon);
  log = qpin_test_qpin_log (f->daemon);
  if (strstr (log, "Sanitizer") || strstr (log, "runtime error"))
    {
      g_test_message ("daemon log:\n%s", log);
      g_assert_not_reached ();
    }
  g_assert_cmpint (status, ==, 0);
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  stop_daemon (f);
  qpin_test_daemon_tear_down (f);
}

/* The hostile peer helper, with @args; stdout piped for its query count. */
static GSubprocess *
spawn_peer (const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GSubprocess *p;

  g_ptr_array_add (argv, (gpointer) g_getenv ("QPIN_HOSTILE_PEER"));
  g_assert_nonnull (argv->pdata[0]);
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, NULL);
  p = g_subprocess_newv ((const char *const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  return p;
}

/* Only while @p runs: GLib forgets the pid once the process is reaped. */
static GPid
pid_of (GSubprocess *p)
{
  const char *id = g_subprocess_get_identifier (p);

  g_assert_nonnull (id);
  return (GPid) atoi (id);
}

/* The CPUs status plans the VM's vCPU 0 on (other tests on this machine
 * may have a host CPU offline, so the kernel's affinity may say more). */
static char *
planned_vcpu (Fixture *f, GPid pid)
{
  g_autoptr (JsonNode) status = qpin_test_status (f->control);
  JsonObject *vm = qpin_test_find_vm (status, pid);
  JsonArray *threads;

  g_assert_nonnull (vm);
  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      if (g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        return g_strdup (json_object_get_string_member (t, "cpus"));
    }
  g_assert_not_reached ();
}

/* ---- one QEMU, two monitors ---- */

/* The VM's pins are repaired only if something moves them: with two
 * entries for one QEMU each "repaired" the other's pins many times a
 * second.  One VM, one "moved" batch, one standby line. */
static void
check_one_vm (Fixture *f, GPid pid)
{
  g_autofree char *cpu = NULL, *later = NULL, *log = NULL;
  guint host_events;

  qpin_test_daemon_wait_vm (f, pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_log (f, "is a second monitor of the same QEMU; kept as a standby", 15000);
  cpu = qpin_test_vcpu_affinity (pid);
  g_usleep (2 * G_USEC_PER_SEC); /* ten reconcile rounds */
  later = qpin_test_vcpu_affinity (pid);
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  /* other tests on this machine may take a host CPU off and on line,
   * which re-places VMs: only then may the pins move again */
  host_events = qpin_test_count_in (log, "host CPU ");
  if (host_events == 0)
    g_assert_cmpstr (later, ==, cpu);
  g_assert_cmpuint (qpin_test_daemon_n_vms (f), ==, 1);
  g_assert_cmpuint (qpin_test_count_in (log, "kept as a standby"), ==, 1);
  g_assert_cmpuint (qpin_test_count_in (log, " moved)"), <=, 1 + host_events);
  if (host_events == 0)
    g_assert_cmpuint (qpin_test_count_in (log, "drift"), ==, 0);
}

/* Two -qmp sockets of one QEMU in the watched directory: one VM, the
 * second monitor a standby, which takes over when the first goes away. */
static void
test_two_monitors_watch (Fixture *f, gconstpointer data)
{
  g_autofree char *a = g_strdup_printf ("unix:%s/a.sock,server=on,wait=off", f->watch);
  g_autofree char *b = g_strdup_printf ("unix:%s/b.sock,server=on,wait=off", f->watch);
  const char *args[]
    = { "-smp", "1", "-name", "dupq,debug-threads=on", "-qmp", a, "-qmp", b, NULL };
  g_autoptr (QpinTestQemu) qemu = NULL;
  g_autofree char *log = NULL, *first = NULL, *cpu = NULL, *after = NULL;
  const char *line;
  g_autofree char *standby_line = NULL;

  qpin_test_daemon_start (f, NULL);
  qemu = qpin_test_qemu_start (NULL, args, FALSE);
  check_one_vm (f, qemu->pid);
  /* the monitor that is not the standby goes: the standby carries on */
  cpu = qpin_test_vcpu_affinity (qemu->pid);
  log = qpin_test_qpin_log (f->daemon);
  line = strstr (log, "is a second monitor");
  g_assert_nonnull (line);
  while (line > log && line[-1] != '\n')
    line--;
  standby_line = g_strndup (line, strcspn (line, "\n"));
  first = g_strdup_printf ("%s/%s.sock", f->watch, strstr (standby_line, "/b.sock") ? "a" : "b");
  g_assert_cmpint (g_unlink (first), ==, 0);
  qpin_test_daemon_wait_log (f, "its standby monitor '", 15000);
  qpin_test_daemon_wait_vm (f, qemu->pid, "pinned", NULL, 15000);
  after = qpin_test_vcpu_affinity (qemu->pid);
  g_assert_cmpstr (after, ==, cpu);
  g_assert_cmpuint (qpin_test_daemon_n_vms (f), ==, 1);
}

/* Two -mon of one QEMU connected to the listen socket: one VM. */
static void
test_two_monitors_listen (Fixture *f, gconstpointer data)
{
  g_autofree char *c1 = g_strdup_printf ("socket,id=m1,path=%s,reconnect=1", f->listen);
  g_autofree char *c2 = g_strdup_printf ("socket,id=m2,path=%s,reconnect=1", f->listen);
  const char *args[] = { "-smp",     "1", "-name", "dupq,debug-threads=on",
                         "-chardev", c1,  "-mon",  "chardev=m1,mode=control",
                         "-chardev", c2,  "-mon",  "chardev=m2,mode=control",
                         NULL };
  g_autoptr (QpinTestQemu) qemu = NULL;

  qpin_test_daemon_start (f, NULL);
  qemu = qpin_test_qemu_start (NULL, args, FALSE);
  check_one_vm (f, qemu->pid);
}

/* ---- pid reuse ---- */

/* Starts QEMU as process @pid exactly (clone3 with set_tid, root only):
 * a pid reuse made to order instead of waited for. */
static GPid
spawn_qemu_as (GPid pid, const char *name)
{
  const char *binary
    = g_getenv ("QPIN_TEST_QEMU") ? g_getenv ("QPIN_TEST_QEMU") : "qemu-system-x86_64";
  g_autofree char *name_arg = g_strdup_printf ("%s,debug-threads=on", name);
  const char *argv[] = { binary, "-accel", "tcg",  "-S", "-nodefaults", "-display", "none",
                         "-m",   "64",     "-smp", "1",  "-name",       name_arg,   NULL };
  pid_t set_tid[1] = { pid };
  struct clone_args args = { 0 };
  long child;

  args.set_tid = (guint64) (guintptr) set_tid;
  args.set_tid_size = 1;
  args.exit_signal = SIGCHLD;
  child = syscall (SYS_clone3, &args, sizeof args);
  if (child == 0)
    {
      int null = open ("/dev/null", O_WRONLY);
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      dup2 (null, 1);
      execvp (binary, (char **) argv);
      _exit (127);
    }
  return child < 0 ? -errno : (GPid) child;
}

static gboolean
has_vcpu (gpointer data)
{
  g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (GPOINTER_TO_INT (data));
  return vcpus->len == 1;
}

/* A user's peer listens, hands its socket to a child and exits; a root
 * QEMU then gets the freed pid.  SO_PEERCRED on the socket still names
 * that pid, and the peer reports the QEMU's vCPU thread as its own: the
 * daemon must see that the process that opened the socket is gone and
 * not touch the QEMU. */
static void
test_pid_reuse (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "reused.sock", NULL);
  g_autofree char *watched = g_build_filename (f->watch, "reused.sock", NULL);
  g_autofree char *tid_file = g_build_filename (f->dir, "tid", NULL);
  g_autofree char *before = NULL, *after = NULL, *refused = NULL, *tid = NULL;
  const char *args[] = { "--listen", path, "--fork-exit", "--tid-file", tid_file, NULL };
  g_autoptr (GSubprocess) peer = NULL;
  g_autoptr (GArray) vcpus = NULL;
  GPid pid, qemu;

  qpin_test_daemon_start (f, NULL);
  peer = spawn_peer (args);
  pid = pid_of (peer);
  g_assert_true (g_subprocess_wait (peer, NULL, NULL)); /* the listener exits, reaped */
  qemu = spawn_qemu_as (pid, "reused");
  if (qemu < 0)
    {
      g_autofree char *why = g_strdup_printf ("clone3 set_tid %d: %s", pid, g_strerror (-qemu));
      g_test_skip (why);
      return;
    }
  g_assert_cmpint (qemu, ==, pid);
  g_assert_true (qpin_test_wait_for (has_vcpu, GINT_TO_POINTER (qemu), 15000));
  vcpus = qpin_test_vcpu_tids (qemu);
  tid = g_strdup_printf ("%d", g_array_index (vcpus, GPid, 0));
  g_assert_true (g_file_set_contents (tid_file, tid, -1, NULL));
  before = qpin_test_vcpu_affinity (qemu);
  g_assert_cmpint (g_rename (path, watched), ==, 0);

  refused = g_strdup_printf ("refused '%s': the process that opened the socket (pid %d) has exited",
                             watched, pid);
  qpin_test_daemon_wait_log (f, refused, 15000);
  g_usleep (G_USEC_PER_SEC);
  after = qpin_test_vcpu_affinity (qemu);
  g_assert_cmpstr (after, ==, before);
  {
    g_autoptr (JsonNode) status = qpin_test_status (f->control);
    g_assert_null (qpin_test_find_vm (status, qemu));
  }
  g_assert_cmpuint (qpin_test_daemon_log_count (f, refused), ==, 1);
  kill (qemu, SIGKILL);
  waitpid (qemu, NULL, 0);
}

/* ---- who may be managed ---- */

/* A peer of uid 65534 is refused in one line and holds no CPU; a root VM
 * started after it gets a dedicated CPU of its own. */
static void
check_refused_then_root_vm (Fixture *f, GSubprocess *peer, const char *label)
{
  GPid peer_pid = pid_of (peer);
  g_autofree char *refused = g_strdup_printf (
    "refused '%s' (pid %d): its QEMU runs as uid %d (effective %d), which qpin does not manage "
    "(allowed: root, uid %d, [daemon] allow_users, allow_groups)",
    label, peer_pid, NOBODY, NOBODY, (int) geteuid ());
  g_autofree char *watched = g_strdup_printf ("unix:%s/root.sock,server=on,wait=off", f->watch);
  const char *args[] = { "-smp", "1", "-name", "root,debug-threads=on", "-qmp", watched, NULL };
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autofree char *cpu = NULL;
  g_autoptr (JsonNode) status = NULL;

  qpin_test_daemon_wait_log (f, refused, 15000);
  vm = qpin_test_qemu_start (NULL, args, FALSE);
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  cpu = planned_vcpu (f, vm->pid);
  g_test_message ("the root VM's vCPU is planned on cpu %s", cpu);
  g_assert_null (strchr (cpu, ',')); /* one CPU: dedicated */
  g_assert_null (strchr (cpu, '-'));
  g_usleep (G_USEC_PER_SEC);
  status = qpin_test_status (f->control);
  g_assert_null (qpin_test_find_vm (status, peer_pid));
  g_assert_cmpuint (qpin_test_daemon_n_vms (f), ==, 1);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "refused '"), ==, 1);
}

static void
test_foreign_uid_watch (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->watch, "nobody.sock", NULL);
  const char *args[] = { "--listen", path, "--uid", G_STRINGIFY (NOBODY), NULL };
  g_autoptr (GSubprocess) peer = NULL;

  qpin_test_daemon_start (f, NULL);
  peer = spawn_peer (args);
  check_refused_then_root_vm (f, peer, path);
}

static void
test_foreign_uid_listen (Fixture *f, gconstpointer data)
{
  const char *args[] = { "--connect", f->listen, "--uid", G_STRINGIFY (NOBODY), NULL };
  g_autoptr (GSubprocess) peer = NULL;
  g_autofree char *label = NULL;

  qpin_test_daemon_start (f, NULL);
  /* an admin who lets every user's QEMU connect still serves only the
   * allowed ones */
  g_assert_cmpint (g_chmod (f->listen, 0666), ==, 0);
  g_assert_cmpint (g_chmod (f->dir, 0755), ==, 0);
  peer = spawn_peer (args);
  label = g_strdup_printf ("%s (peer pid %d)", f->listen, pid_of (peer));
  check_refused_then_root_vm (f, peer, label);
}

/* Refused, then allowed by a reload: the refused monitor is let go, the
 * daemon connects again and manages the peer like root's. */
static void
test_allow_users (Fixture *f, gconstpointer data)
{
  g_autofree char *conf = g_build_filename (f->dir, "qpin.conf", NULL);
  g_autofree char *path = g_build_filename (f->watch, "nobody.sock", NULL);
  const char *args[] = { "--listen", path, "--uid", G_STRINGIFY (NOBODY), "--accept", "2", NULL };
  const char *reload[] = { "reload", "--control", f->control, NULL };
  g_autoptr (GSubprocess) peer = NULL;
  g_autofree char *out = NULL, *err = NULL;

  g_assert_true (g_file_set_contents (conf, "[defaults]\ncpus = shared\n", -1, NULL));
  qpin_test_daemon_start (f, (const char *const[]){ "--config", conf, NULL });
  peer = spawn_peer (args);
  qpin_test_daemon_wait_log (f, "which qpin does not manage", 15000);
  g_assert_true (g_file_set_contents (
    conf, "[defaults]\ncpus = shared\n[daemon]\nallow_users = " G_STRINGIFY (NOBODY) "\n", -1,
    NULL));
  g_assert_cmpint (qpin_test_run_qpin (reload, &out, &err), ==, 0);
  qpin_test_daemon_wait_vm (f, pid_of (peer), "pinned", NULL, 15000);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "refused '"), ==, 1);
}

/* A uid-65534 peer opens 200 monitors on the listen socket: 10 refusal
 * lines and one summary, at most 64 monitors held open (fds), and every
 * fd back once the peer is gone. */
static void
test_refused_flood (Fixture *f, gconstpointer data)
{
  const char *args[]
    = { "--connect", f->listen, "--uid", G_STRINGIFY (NOBODY), "--accept", "200", NULL };
  g_autoptr (GSubprocess) peer = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  guint fds_before, fds_held, fds_after;

  qpin_test_daemon_start (f, NULL);
  g_assert_cmpint (g_chmod (f->listen, 0666), ==, 0);
  g_assert_cmpint (g_chmod (f->dir, 0755), ==, 0);
  fds_before = qpin_test_settled_fds (f->daemon->pid);
  peer = spawn_peer (args);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (peer));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, NULL);
  g_assert_cmpstr (line, ==, "connected 200");
  fds_held = qpin_test_settled_fds (f->daemon->pid);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "refused '"), ==, 10);
  g_subprocess_force_exit (peer);
  g_subprocess_wait (peer, NULL, NULL);
  fds_after = qpin_test_settled_fds (f->daemon->pid);
  g_test_message ("daemon fds: %u before, %u with 200 refused monitors, %u after", fds_before,
                  fds_held, fds_after);
  g_assert_cmpuint (fds_held, <=, fds_before + 64);
  g_assert_cmpuint (fds_after, ==, fds_before);
  qpin_test_daemon_wait_log (f, "refused monitors: suppressed 190 similar lines in the last 10 s",
                             15000);
  g_assert_true (qpin_test_wait_daemon (f->control, 0));
}

/* ---- names ---- */

/* A peer that calls itself "pid-N" after a real unnamed QEMU N: its name
 * is ignored (one line), and QEMU N is placed under its key pid-N. */
static void
test_name_squat (Fixture *f, gconstpointer data)
{
  const char *qemu_args[] = { "-smp", "1", "-name", "debug-threads=on", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qemu_args, TRUE);
  g_autofree char *squat_name = g_strdup_printf ("pid-%d", qemu->pid);
  g_autofree char *path = g_build_filename (f->watch, "squat.sock", NULL);
  g_autofree char *real = g_build_filename (f->watch, "real.sock", NULL);
  const char *args[] = { "--listen", path, "--name", squat_name, NULL };
  g_autoptr (GSubprocess) peer = NULL;
  g_autofree char *line = NULL, *mine = NULL;
  g_autoptr (JsonNode) status = NULL;

  qpin_test_daemon_start (f, (const char *const[]){ "--policy", "cpus=shared", NULL });
  peer = spawn_peer (args);
  qpin_test_daemon_wait_vm (f, pid_of (peer), "pinned", NULL, 15000);
  /* the real QEMU's monitor appears after the squatter is placed */
  g_assert_cmpint (g_rename (qemu->qmp_path, real), ==, 0);
  qpin_test_daemon_wait_vm (f, qemu->pid, "pinned", NULL, 15000);
  line = g_strdup_printf ("vm 'pid-%d' (pid %d): the QMP name '%s' has the form of qpin's own "
                          "keys (pid-N, NAME@PID); ignored",
                          pid_of (peer), pid_of (peer), squat_name);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, line), ==, 1);
  status = qpin_test_status (f->control);
  g_assert_cmpstr (json_object_get_string_member (qpin_test_find_vm (status, qemu->pid), "key"), ==,
                   squat_name);
  mine = g_strdup_printf ("pid-%d", pid_of (peer));
  g_assert_cmpstr (json_object_get_string_member (qpin_test_find_vm (status, pid_of (peer)), "key"),
                   ==, mine);
  g_assert_cmpuint (qpin_test_daemon_log_count (f, "is already placed"), ==, 0);
}

/* ---- growth ---- */

/* Runs the peer for @ms, then hangs it up (the helper exits when the
 * socket file goes and the daemon closes); returns its query count. */
static guint
run_peer_for (Fixture *f, const char *name, const char *const *extra, guint ms, GPid *pid)
{
  g_autofree char *path = g_build_filename (f->watch, name, NULL);
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_autoptr (GSubprocess) peer = NULL;
  g_autofree char *out = NULL;
  guint queries = 0;

  g_ptr_array_add (args, "--listen");
  g_ptr_array_add (args, path);
  for (const char *const *a = extra; *a; a++)
    g_ptr_array_add (args, (gpointer) *a);
  g_ptr_array_add (args, NULL);
  g_autofree char *connected = g_strdup_printf ("watch: '%s': connected", path);

  peer = spawn_peer ((const char *const *) args->pdata);
  if (pid)
    *pid = pid_of (peer);
  qpin_test_daemon_wait_log (f, connected, 15000);
  g_usleep ((gulong) ms * 1000);
  g_assert_cmpint (g_unlink (path), ==, 0); /* the daemon lets go of it */
  g_assert_true (g_subprocess_communicate_utf8 (peer, NULL, NULL, &out, NULL, NULL));
  g_assert_true (g_subprocess_get_successful (peer));
  g_assert_true (sscanf (out, "queries %u", &queries) == 1);
  return queries;
}

/* A peer that invents 2,000 new threads on every query, then one that
 * floods events: the log stays within the per-VM budget (10 lines per
 * 10 s and one summary), event floods start at most one discovery per
 * 100 ms, and once they leave the daemon's fds are as before and its RSS
 * within 1 MiB of it. */
static void
test_resources (Fixture *f, gconstpointer data)
{
  const char *liar[] = { "--fake-tids", "2000", NULL };
  const char *flood[] = { "--flood", NULL };
  guint rss_before, fds_before, rss_after, fds_after, rss_peak, queries;
  guint64 ticks;
  gint64 t0;
  GPid pid;
  g_autofree char *log = NULL, *refused = NULL, *summary = NULL;

  qpin_test_daemon_start (f, (const char *const[]){ "--policy", "cpus=shared", NULL });
  /* a first round of each, so that what "before" measures already has
   * the code and the allocator's arenas these cases use */
  run_peer_for (f, "warm-liar.sock", liar, 500, NULL);
  run_peer_for (f, "warm-flood.sock", flood, 500, NULL);
  g_assert_true (qpin_test_wait_for (qpin_test_daemon_no_vms, f, 10000));
  fds_before = qpin_test_settled_fds (f->daemon->pid);
  rss_before = (guint) qpin_test_status_field (f->daemon->pid, "VmRSS:");

  queries = run_peer_for (f, "liar.sock", liar, 4000, &pid);
  refused = g_strdup_printf ("vm 'pid-%d' (pid %d): refused: ", pid, pid);
  summary = g_strdup_printf ("vm 'pid-%d' (pid %d): suppressed ", pid, pid);
  rss_peak = (guint) qpin_test_status_field (f->daemon->pid, "VmHWM:");
  g_assert_true (qpin_test_wait_for (qpin_test_daemon_no_vms, f, 10000));
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("invented threads: %u queries of 2,000 new TIDs, %u refused lines logged, "
                  "summary: %s",
                  queries, qpin_test_count_in (log, refused), strstr (log, summary) ? "yes" : "no");
  g_assert_cmpuint (queries, >=, 5);
  /* the budget: 10 lines per 10 s, the error line among them */
  g_assert_cmpuint (qpin_test_count_in (log, refused), <=, 10);
  g_assert_cmpuint (qpin_test_count_in (log, summary), ==, 1);

  t0 = g_get_monotonic_time ();
  ticks = qpin_test_cpu_ticks (f->daemon->pid);
  queries = run_peer_for (f, "flood.sock", flood, 3000, NULL);
  ticks = qpin_test_cpu_ticks (f->daemon->pid) - ticks;
  g_test_message ("event flood: %u discoveries in %.1f s, daemon CPU %.2f s", queries,
                  (g_get_monotonic_time () - t0) / 1e6, (double) ticks / sysconf (_SC_CLK_TCK));
  /* 3 s at one discovery per 100 ms, the reconcile timer's too, slack
   * for the connect and a loaded machine */
  g_assert_cmpuint (queries, <=, 50);
  g_assert_true (qpin_test_wait_for (qpin_test_daemon_no_vms, f, 10000));

  fds_after = qpin_test_settled_fds (f->daemon->pid);
  rss_after = (guint) qpin_test_status_field (f->daemon->pid, "VmRSS:");
  g_test_message ("daemon RSS: %u kB before, %u kB peak, %u kB after; fds: %u before, %u after",
                  rss_before, rss_peak, rss_after, fds_before, fds_after);
  g_assert_cmpuint (fds_after, ==, fds_before);
#if defined(__SANITIZE_ADDRESS__)
  g_test_message ("RSS not bounded under ASan (its quarantine keeps freed memory)");
#else
  g_assert_cmpuint (rss_after, <=, rss_before + 1024);
#endif
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/hostile/two-monitors-watch", Fixture, NULL, fixture_set_up, test_two_monitors_watch,
              fixture_tear_down);
  g_test_add ("/hostile/two-monitors-listen", Fixture, NULL, fixture_set_up,
              test_two_monitors_listen, fixture_tear_down);
  g_test_add ("/hostile/pid-reuse", Fixture, NULL, fixture_set_up, test_pid_reuse,
              fixture_tear_down);
  g_test_add ("/hostile/foreign-uid-watch", Fixture, NULL, fixture_set_up, test_foreign_uid_watch,
              fixture_tear_down);
  g_test_add ("/hostile/foreign-uid-listen", Fixture, NULL, fixture_set_up, test_foreign_uid_listen,
              fixture_tear_down);
  g_test_add ("/hostile/refused-flood", Fixture, NULL, fixture_set_up, test_refused_flood,
              fixture_tear_down);
  g_test_add ("/hostile/allow-users", Fixture, NULL, fixture_set_up, test_allow_users,
              fixture_tear_down);
  g_test_add ("/hostile/name-squat", Fixture, NULL, fixture_set_up, test_name_squat,
              fixture_tear_down);
  g_test_add ("/hostile/resources", Fixture, NULL, fixture_set_up, test_resources,
              fixture_tear_down);
  return g_test_run ();
}
