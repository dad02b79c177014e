/* test-hostile-sockets.c: a local user against the daemon's sockets:
 * a writable watched directory, a symbolic link swapped in after the
 * check, socket paths too long for sun_path, and connections that never
 * greet until the daemon runs out of file descriptors */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qpin-test-daemon.h"
#include "qpin-test-host.h"

typedef QpinTestDaemon Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_set_up (f, "qpin-hostile", 0, 0755);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_tear_down (f);
}

/* qpin with @wrapper (e.g. "timeout 10") in front, as QPIN_TEST_WRAPPER
 * puts valgrind there */
static void
set_wrapper (const char *wrapper, char **saved)
{
  const char *old = g_getenv ("QPIN_TEST_WRAPPER");
  g_autofree char *both = g_strdup_printf ("%s %s", wrapper, old ? old : "");

  *saved = g_strdup (old);
  g_setenv ("QPIN_TEST_WRAPPER", both, TRUE);
}

static void
restore_wrapper (char *saved)
{
  if (saved)
    g_setenv ("QPIN_TEST_WRAPPER", saved, TRUE);
  else
    g_unsetenv ("QPIN_TEST_WRAPPER");
  g_free (saved);
}

/* Runs qpin, killed after 10 s: a daemon that should have refused to start
 * exits 124 instead of hanging the test. */
static int
run_qpin_bounded (const char *const *args, char **err)
{
  g_autofree char *out = NULL;
  char *saved = NULL;
  int status;

  set_wrapper ("timeout 10", &saved);
  status = qpin_test_run_qpin (args, &out, err);
  restore_wrapper (saved);
  return status;
}

static void
start_daemon (Fixture *f, const char *wrapper, const char *const *extra)
{
  char *saved = NULL;

  if (wrapper)
    set_wrapper (wrapper, &saved);
  qpin_test_daemon_spawn (f, extra);
  if (wrapper)
    restore_wrapper (saved);
  g_assert_true (qpin_test_wait_daemon (f->control, 20000));
}

/* The daemon never heard of @qemu: not in status, and its one vCPU still
 * runs on every CPU, as QEMU started it. */
static void
assert_untouched (Fixture *f, QpinTestQemu *qemu)
{
  g_autoptr (JsonNode) status = qpin_test_status (f->control);
  g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (qemu->pid);
  g_autofree char *all = qpin_test_affinity_of (qemu->pid);
  g_autofree char *vcpu = NULL;

  g_assert_nonnull (status);
  g_assert_null (qpin_test_find_vm (status, qemu->pid));
  g_assert_cmpuint (vcpus->len, ==, 1);
  vcpu = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
  g_assert_cmpstr (vcpu, ==, all);
}

static QpinTestQemu *
start_private_vm (const char *name)
{
  g_autofree char *vm_name = g_strdup_printf ("%s,debug-threads=on", name);
  const char *args[] = { "-smp", "1", "-name", vm_name, NULL };

  /* its QMP socket is in a 0700 directory only root may enter */
  return qpin_test_qemu_start (NULL, args, TRUE);
}

static guint
count_lines_with (const char *log, const char *a, const char *b)
{
  g_auto (GStrv) lines = g_strsplit (log, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i]; i++)
    if (strstr (lines[i], a) && (b == NULL || strstr (lines[i], b)))
      n++;
  return n;
}

/* lines that say something: GLib puts a blank line before each warning */
static guint
count_lines (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i]; i++)
    n += *lines[i] != '\0';
  return n;
}

/* A socket bound at @path that nobody listens on: connect is refused. */
static int
bind_only (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpuint (strlen (path), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, path);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  return fd;
}

/* A watched directory others (or a group) may write to, without the sticky
 * bit, lets anyone put sockets there: the daemon refuses to start.  With
 * the sticky bit it starts. */
static void
test_writable_watch_dir (Fixture *f, gconstpointer data)
{
  const char *args[] = { "daemon",   "--no-listen", "--watch", f->watch, "--control",
                         f->control, "--grace",     "0",       NULL };
  struct {
    mode_t mode;
    const char *who;
  } refused[] = { { 0777, "others" }, { 0770, "its group" }, { 0757, "others" } };

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *err = NULL;
      g_autofree char *expected
        = g_strdup_printf ("qpin daemon: watch directory '%s' (mode %04o) is writable by %s and "
                           "not sticky: anyone there could swap sockets; use mode 0755, or add "
                           "the sticky bit\n",
                           f->watch, (unsigned) refused[i].mode, refused[i].who);

      g_assert_cmpint (chmod (f->watch, refused[i].mode), ==, 0);
      g_assert_cmpint (run_qpin_bounded (args, &err), ==, 1);
      g_assert_cmpstr (err, ==, expected);
      g_assert_false (g_file_test (f->control, G_FILE_TEST_EXISTS));
    }
  g_assert_cmpint (chmod (f->watch, 01777), ==, 0);
  start_daemon (f, NULL, NULL);
}

/* The user binds a socket in the watched directory without listening (the
 * daemon's connect is refused and it retries), then renames a symbolic
 * link to a root QEMU's socket over it.  Every retry checks the file again
 * and connects to what it checked: the root QEMU is never touched, and the
 * link is reported once. */
static void
test_symlink_swapped_after_scan (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) root_vm = start_private_vm ("root");
  g_autofree char *sock = g_build_filename (f->watch, "vm.sock", NULL);
  g_autofree char *link = g_build_filename (f->dir, "link", NULL);
  g_autofree char *direct = g_build_filename (f->watch, "direct.sock", NULL);
  g_autofree char *log = NULL;
  int fd;

  start_daemon (f, NULL, NULL);
  fd = bind_only (sock);
  g_usleep (300 * 1000); /* refused at least once: the daemon retries every 200 ms */
  g_assert_cmpint (symlink (root_vm->qmp_path, link), ==, 0);
  g_assert_cmpint (rename (link, sock), ==, 0);
  /* a link made in place is ignored too */
  g_assert_cmpint (symlink (root_vm->qmp_path, direct), ==, 0);
  g_usleep (2000 * 1000); /* past the 5 retries */
  assert_untouched (f, root_vm);
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_cmpuint (count_lines_with (log, sock, "is a symbolic link"), ==, 1);
  g_assert_cmpuint (count_lines_with (log, direct, NULL), ==, 1);
  g_assert_cmpuint (count_lines_with (log, direct, "is a symbolic link; ignored"), ==, 1);
  g_assert_cmpint (kill (f->daemon->pid, 0), ==, 0);
  close (fd);
}

/* A path of exactly @len bytes: @dir, '/', then 'x's and ".sock". */
static char *
path_of_length (const char *dir, gsize len)
{
  gsize fill = len - strlen (dir) - strlen ("/.sock");
  g_autofree char *name = g_strnfill (fill, 'x');

  return g_strdup_printf ("%s/%s.sock", dir, name);
}

/* exit 1 with "qpin COMMAND: ", perhaps the path again, then the error */
static void
assert_too_long (const char *const *args, const char *command, const char *path)
{
  g_autofree char *err = NULL;
  g_autofree char *prefix = g_strdup_printf ("qpin %s: ", command);
  g_autofree char *expected
    = g_strdup_printf ("socket path '%s' is %zu bytes long; a unix socket path has at most 107\n",
                       path, strlen (path));

  g_assert_cmpint (run_qpin_bounded (args, &err), ==, 1);
  g_test_message ("%s", err);
  g_assert_true (g_str_has_prefix (err, prefix));
  g_assert_true (g_str_has_suffix (err, expected));
  g_assert_cmpuint (count_lines (err), ==, 1);
}

/* --listen, --control, inspect and attach refuse a socket path over 107
 * bytes instead of binding or connecting to the name cut at 107 (which,
 * being shorter, is another file).  108 bytes does not fit with its NUL. */
static void
test_long_paths_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *long_path = path_of_length (f->dir, 108);
  g_autofree char *cut = g_strndup (long_path, 107);
  const char *listen[] = { "daemon", "--listen", long_path, "--control", f->control, NULL };
  const char *control[] = { "daemon", "--no-listen", "--control", long_path, NULL };
  const char *inspect[] = { "inspect", long_path, NULL };
  const char *attach[] = { "attach", "--once", long_path, NULL };

  assert_too_long (listen, "daemon", long_path);
  assert_too_long (control, "daemon", long_path);
  g_assert_false (g_file_test (cut, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (f->control, G_FILE_TEST_EXISTS));
  assert_too_long (inspect, "inspect", long_path);
  assert_too_long (attach, "attach", long_path);
}

/* A watched socket whose path is over 107 bytes long: cut at 107 bytes, its
 * name is another entry of the directory, the user's symbolic link to a
 * root QEMU.  The daemon connects to the long-named socket itself (through
 * its descriptor, whose /proc/self/fd name is short), pins that QEMU and
 * never the root one. */
static void
test_long_watched_path (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) root_vm = start_private_vm ("root");
  g_autoptr (QpinTestQemu) user_vm = start_private_vm ("user");
  g_autofree char *sock = path_of_length (f->watch, 130);
  g_autofree char *cut = g_strndup (sock, 107);

  g_assert_true (g_str_has_prefix (cut, f->watch));
  g_assert_null (strchr (cut + strlen (f->watch) + 1, '/'));
  g_assert_cmpint (symlink (root_vm->qmp_path, cut), ==, 0);
  /* QEMU cannot bind a long path itself; a bound socket can be renamed */
  g_assert_cmpint (rename (user_vm->qmp_path, sock), ==, 0);
  start_daemon (f, NULL, NULL);
  qpin_test_daemon_wait_vm (f, user_vm->pid, "pinned", NULL, 15000);
  assert_untouched (f, root_vm);
}

/* CPU use and connection rates mean nothing with qpin under valgrind */
static gboolean
skip_under_wrapper (void)
{
  const char *wrapper = g_getenv ("QPIN_TEST_WRAPPER");

  if (wrapper == NULL || *wrapper == '\0')
    return FALSE;
  g_test_skip ("CPU use and timing are not measured under QPIN_TEST_WRAPPER");
  return TRUE;
}

static char *
limits_line (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/limits", pid);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "Max open files"))
      return g_strdup (lines[i]);
  g_assert_not_reached ();
}

/* Never-greeting connections, many more than the daemon's 64 open files
 * (started with a soft limit of 32, which it raises to the hard 64): it
 * handles at most 64 / 8 = 8 handshakes at once and leaves the rest in the
 * kernel's backlog, so it neither runs out of descriptors nor spins: under
 * 5 % of a CPU while they come and 2 s after, a bounded log, status answered at once, and a real
 * QEMU connecting meanwhile is pinned once the idle ones timed out. */
static void
test_fd_exhaustion (Fixture *f, gconstpointer data)
{
  const char *extra[] = { "--timeout", "500", NULL };
  g_autoptr (GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autoptr (JsonNode) status = NULL;
  g_autofree char *limits = NULL, *log = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  guint64 ticks;
  gint64 t0;
  double cpu, elapsed;

  if (skip_under_wrapper ())
    return;
  start_daemon (f, "prlimit --nofile=32:64", extra);
  limits = limits_line (f->daemon->pid);
  g_assert_nonnull (strstr (limits, " 64 "));
  g_assert_null (strstr (limits, " 32 "));
  strcpy (addr.sun_path, f->listen);
  /* 100 connections, or as many as get through in 3 s: 8 handshakes plus a
   * backlog of 64, then 8 more each time the 500 ms timeout frees them */
  ticks = qpin_test_cpu_ticks (f->daemon->pid);
  t0 = g_get_monotonic_time ();
  while (fds->len < 100 && g_get_monotonic_time () - t0 < 3 * G_USEC_PER_SEC)
    {
      int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

      g_assert_cmpint (fd, >=, 0);
      if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0)
        g_array_append_val (fds, fd);
      else
        {
          g_assert_cmpint (errno, ==, EAGAIN); /* the backlog is full */
          close (fd);
          g_usleep (10 * 1000);
        }
    }
  g_test_message ("%u idle connections", fds->len);
  g_assert_cmpuint (fds->len, ==, 100);

  /* the CPU used while the connections came in and 2 s after */
  g_usleep (2 * G_USEC_PER_SEC);
  elapsed = (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  cpu = (double) (qpin_test_cpu_ticks (f->daemon->pid) - ticks)
        / (elapsed * (double) sysconf (_SC_CLK_TCK));
  g_test_message ("daemon cpu over %.1f s: %.1f %%", elapsed, cpu * 100);
  g_assert_cmpfloat (cpu, <, 0.05);

  t0 = g_get_monotonic_time ();
  status = qpin_test_status (f->control);
  g_test_message ("status took %" G_GINT64_FORMAT " ms", (g_get_monotonic_time () - t0) / 1000);
  g_assert_nonnull (status);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, G_USEC_PER_SEC);

  {
    g_autofree char *chardev = g_strdup_printf ("socket,id=qpin,path=%s,reconnect=1", f->listen);
    const char *args[] = { "-smp",     "1",     "-name", "late,debug-threads=on",
                           "-chardev", chardev, "-mon",  "chardev=qpin,mode=control",
                           NULL };
    vm = qpin_test_qemu_start (NULL, args, FALSE);
  }
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 30000);

  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_cmpuint (count_lines_with (log, "Too many open files", NULL), ==, 0);
  g_assert_cmpuint (count_lines_with (log, "in their QMP handshake, the most at once", NULL), ==,
                    1);
  /* one line per connection that failed its handshake, a few others */
  g_assert_cmpuint (count_lines (log), <=, fds->len + 20);
  g_assert_cmpint (kill (f->daemon->pid, 0), ==, 0);
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, int, i));
}

/* the soft limit only: raising the hard one again needs CAP_SYS_RESOURCE */
static void
set_nofile (GPid pid, rlim_t limit)
{
  struct rlimit rl;

  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, NULL, &rl), ==, 0);
  rl.rlim_cur = limit;
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &rl, NULL), ==, 0);
}

/* Opens up to @n never-greeting connections to @path; fewer when the
 * backlog is full. */
static GArray *
open_idle (const char *path, guint n)
{
  GArray *fds = g_array_new (FALSE, FALSE, sizeof (int));
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  strcpy (addr.sun_path, path);
  for (guint i = 0; i < n; i++)
    {
      int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

      g_assert_cmpint (fd, >=, 0);
      if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0)
        g_array_append_val (fds, fd);
      else
        close (fd);
    }
  return fds;
}

/* Out of file descriptors for another reason than handshakes (here: its
 * limit lowered under it to 2 more than it has open), the daemon stops
 * accepting for a second at a time instead of retrying at once: one log
 * line for the whole episode, under 5 % of a CPU; with descriptors again
 * it accepts every waiting peer and a real QEMU is pinned. */
static void
test_accept_backs_off (Fixture *f, gconstpointer data)
{
  const char *extra[] = { "--timeout", "500", NULL };
  g_autoptr (GArray) fds = NULL;
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autofree char *log = NULL;
  g_autofree char *warning
    = g_strdup_printf ("listen: '%s': Error accepting connection: Too many open files; trying "
                       "again every 1000 ms",
                       f->listen);
  g_autofree char *caught_up
    = g_strdup_printf ("listen: '%s' has accepted every waiting peer again", f->listen);
  guint64 ticks;
  double cpu;

  if (skip_under_wrapper ())
    return;
  start_daemon (f, NULL, extra);
  set_nofile (f->daemon->pid, qpin_test_count_fds (f->daemon->pid) + 2);
  ticks = qpin_test_cpu_ticks (f->daemon->pid);
  fds = open_idle (f->listen, 20);
  g_usleep (3 * G_USEC_PER_SEC);
  cpu = (double) (qpin_test_cpu_ticks (f->daemon->pid) - ticks)
        / (3.0 * (double) sysconf (_SC_CLK_TCK));
  g_test_message ("%u idle connections; daemon cpu over 3 s: %.1f %%", fds->len, cpu * 100);
  g_assert_cmpfloat (cpu, <, 0.05);
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_cmpuint (count_lines_with (log, warning, NULL), ==, 1);
  g_assert_cmpuint (count_lines_with (log, "Error accepting", NULL), ==, 1);
  g_assert_cmpint (kill (f->daemon->pid, 0), ==, 0);

  set_nofile (f->daemon->pid, 1024);
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, int, i));
  {
    g_autofree char *chardev = g_strdup_printf ("socket,id=qpin,path=%s,reconnect=1", f->listen);
    const char *args[] = { "-smp",     "1",     "-name", "late,debug-threads=on",
                           "-chardev", chardev, "-mon",  "chardev=qpin,mode=control",
                           NULL };
    vm = qpin_test_qemu_start (NULL, args, FALSE);
  }
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  g_free (log);
  log = qpin_test_qpin_log (f->daemon);
  g_assert_cmpuint (count_lines_with (log, warning, NULL), ==, 1);
  g_assert_cmpuint (count_lines_with (log, caught_up, NULL), ==, 1);
}

/* A socket in @dir/@name that accepts (into its backlog) and never greets. */
static int
listen_silent (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  int fd = bind_only (path);

  g_assert_cmpint (listen (fd, 16), ==, 0);
  return fd;
}

/* 30 sockets in the watched directory that accept and never greet: the
 * daemon (64 open files, so 8 handshakes at once) never holds more than 8
 * of them at a time, the others wait for a slot, and a real QEMU whose
 * socket comes after them is pinned once they timed out. */
static void
test_watch_handshake_cap (Fixture *f, gconstpointer data)
{
  const char *extra[] = { "--timeout", "500", NULL };
  g_autoptr (GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autofree char *qmp = g_strdup_printf ("unix:%s/zz-real.sock,server=on,wait=off", f->watch);
  const char *args[] = { "-smp", "1", "-name", "real,debug-threads=on", "-qmp", qmp, NULL };
  guint base, most = 0;
  gint64 t0;

  start_daemon (f, "prlimit --nofile=64:64", extra);
  base = qpin_test_count_fds (f->daemon->pid);
  for (guint i = 0; i < 30; i++)
    {
      g_autofree char *name = g_strdup_printf ("silent-%02u.sock", i);
      int fd = listen_silent (f->watch, name);
      g_array_append_val (fds, fd);
    }
  vm = qpin_test_qemu_start (NULL, args, FALSE);
  t0 = g_get_monotonic_time ();
  while (g_get_monotonic_time () - t0 < 3 * G_USEC_PER_SEC)
    {
      most = MAX (most, qpin_test_count_fds (f->daemon->pid));
      g_usleep (10 * 1000);
    }
  g_test_message ("daemon fds: %u at start, at most %u", base, most);
  /* 8 handshakes, and the real QEMU once it is a VM: its monitor */
  g_assert_cmpuint (most, <=, base + 8 + 1);
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  for (guint i = 0; i < fds->len; i++)
    close (g_array_index (fds, int, i));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/hostile-sockets/writable-watch-dir", Fixture, NULL, fixture_set_up,
              test_writable_watch_dir, fixture_tear_down);
  g_test_add ("/hostile-sockets/symlink-swapped-after-scan", Fixture, NULL, fixture_set_up,
              test_symlink_swapped_after_scan, fixture_tear_down);
  g_test_add ("/hostile-sockets/long-paths-refused", Fixture, NULL, fixture_set_up,
              test_long_paths_refused, fixture_tear_down);
  g_test_add ("/hostile-sockets/long-watched-path", Fixture, NULL, fixture_set_up,
              test_long_watched_path, fixture_tear_down);
  g_test_add ("/hostile-sockets/fd-exhaustion", Fixture, NULL, fixture_set_up, test_fd_exhaustion,
              fixture_tear_down);
  g_test_add ("/hostile-sockets/accept-backs-off", Fixture, NULL, fixture_set_up,
              test_accept_backs_off, fixture_tear_down);
  g_test_add ("/hostile-sockets/watch-handshake-cap", Fixture, NULL, fixture_set_up,
              test_watch_handshake_cap, fixture_tear_down);
  return g_test_run ();
}
