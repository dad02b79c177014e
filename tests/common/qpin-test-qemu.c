/* qpin-test-qemu.c: real QEMU processes for integration tests */
#include "qpin-test-qemu.h"
#include "qpin-json.h"
#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A test that fails aborts; its QEMUs must not outlive it (they would
 * also hold the test's output pipes open). */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/**
 * qpin_test_qemu_start:
 * @accel: (nullable): the -accel value, "tcg" if %NULL
 * @extra_args: (array zero-terminated=1): arguments after the common ones
 * @unix_qmp: add -qmp unix:DIR/qmp.sock and wait for it
 *
 * Starts qemu-system-x86_64 -accel ACCEL -S -nodefaults -display none, in
 * prelaunch, so vCPU threads exist but run nothing.
 */
QpinTestQemu *
qpin_test_qemu_start (const char *accel, const char *const *extra_args, gboolean unix_qmp)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  QpinTestQemu *qemu = g_new0 (QpinTestQemu, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  const char *binary = g_getenv ("QPIN_TEST_QEMU");

  qemu->dir = g_dir_make_tmp ("qpin-test-XXXXXX", &error);
  g_assert_no_error (error);
  g_ptr_array_add (argv, g_strdup (binary ? binary : "qemu-system-x86_64"));
  g_ptr_array_add (argv, g_strdup ("-accel"));
  g_ptr_array_add (argv, g_strdup (accel ? accel : "tcg"));
  for (const char *const *a
       = (const char *const[]){ "-S", "-nodefaults", "-display", "none", "-m", "64", NULL };
       *a; a++)
    g_ptr_array_add (argv, g_strdup (*a));
  if (unix_qmp)
    {
      qemu->qmp_path = g_build_filename (qemu->dir, "qmp.sock", NULL);
      g_ptr_array_add (argv, g_strdup ("-qmp"));
      g_ptr_array_add (argv, g_strdup_printf ("unix:%s,server=on,wait=off", qemu->qmp_path));
    }
  for (const char *const *a = extra_args; a && *a; a++)
    g_ptr_array_add (argv, g_strdup (*a));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT
                                        | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  qemu->process
    = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  qemu->pid = (GPid) atoi (g_subprocess_get_identifier (qemu->process));
  if (unix_qmp)
    {
      g_autoptr (QpinQmpClient) client = NULL;
      g_autoptr (JsonNode) status = NULL;

      for (guint i = 0; i < 500 && !g_file_test (qemu->qmp_path, G_FILE_TEST_EXISTS); i++)
        g_usleep (10 * 1000);
      g_assert_true (g_file_test (qemu->qmp_path, G_FILE_TEST_EXISTS));
      /* the socket exists before the machine (and its vCPU threads) does;
       * the monitor answers only once QEMU's main loop runs */
      for (guint i = 0; i < 500; i++)
        {
          g_clear_error (&error);
          client = qpin_qmp_client_connect_sync (qemu->qmp_path, 10000, &error);
          if (client != NULL || !strstr (error->message, "refused"))
            break;
          g_usleep (10 * 1000); /* bound, not yet listening */
        }
      g_assert_no_error (error);
      status = qpin_qmp_client_execute_sync (client, "query-status", NULL, 10000, &error);
      g_assert_no_error (error);
      qpin_qmp_client_close (client);
    }
  return qemu;
}

void
qpin_test_qemu_free (QpinTestQemu *qemu)
{
  if (qemu == NULL)
    return;
  if (qemu->process)
    {
      g_subprocess_force_exit (qemu->process);
      g_subprocess_wait (qemu->process, NULL, NULL);
      g_object_unref (qemu->process);
    }
  if (qemu->qmp_path)
    g_unlink (qemu->qmp_path);
  g_rmdir (qemu->dir);
  g_free (qemu->qmp_path);
  g_free (qemu->dir);
  g_free (qemu);
}

const char *
qpin_test_qpin_binary (void)
{
  const char *bin = g_getenv ("QPIN_BIN");
  g_assert_nonnull (bin);
  return bin;
}

/* qpin and @args; the valgrind test setup runs qpin itself under valgrind
 * too (QPIN_TEST_WRAPPER) */
static GPtrArray *
qpin_argv (const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) wrapper = g_strsplit (g_getenv ("QPIN_TEST_WRAPPER") ?: "", " ", -1);

  for (guint i = 0; wrapper[i]; i++)
    if (*wrapper[i])
      g_ptr_array_add (argv, g_strdup (wrapper[i]));
  g_ptr_array_add (argv, g_strdup (qpin_test_qpin_binary ()));
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, g_strdup (*a));
  g_ptr_array_add (argv, NULL);
  return argv;
}

/**
 * qpin_test_run_qpin:
 * @args: (array zero-terminated=1): arguments after "qpin"
 *
 * Returns: the exit status of qpin
 */
int
qpin_test_run_qpin (const char *const *args, char **out, char **err)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = qpin_argv (args);

  launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* qpin warns about hostile peers on purpose; only the test is fatal */
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (proc))
    return 128 + g_subprocess_get_term_sig (proc);
  return g_subprocess_get_exit_status (proc);
}

static gint
compare_pid (gconstpointer a, gconstpointer b)
{
  GPid x = *(const GPid *) a, y = *(const GPid *) b;
  return (x > y) - (x < y);
}

/* The kernel's list, read independently of qpin's own code. */
GArray *
qpin_test_list_tasks (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task", pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  GArray *tids = g_array_new (FALSE, FALSE, sizeof (GPid));
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      GPid tid = (GPid) atoi (name);
      g_array_append_val (tids, tid);
    }
  g_array_sort (tids, compare_pid);
  return tids;
}

/* Cpus_allowed_list from /proc/PID/task/TID/status, as the kernel prints it */
char *
qpin_test_affinity_of (GPid tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", tid);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "Cpus_allowed_list:"))
      return g_strstrip (g_strdup (lines[i] + strlen ("Cpus_allowed_list:")));
  g_assert_not_reached ();
}

/**
 * qpin_test_qpin_spawn:
 * @args: (array zero-terminated=1): arguments after "qpin"
 *
 * Starts qpin in the background, its stderr in a log file.
 */
QpinTestQpin *
qpin_test_qpin_spawn (const char *const *args)
{
  g_autoptr (GPtrArray) argv = qpin_argv (args);
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr (GError) error = NULL;
  QpinTestQpin *q = g_new0 (QpinTestQpin, 1);
  int fd = g_file_open_tmp ("qpin-test-log-XXXXXX", &q->log_path, &error);

  g_assert_no_error (error);
  close (fd);
  g_subprocess_launcher_set_stderr_file_path (launcher, q->log_path);
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  q->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  q->pid = (GPid) atoi (g_subprocess_get_identifier (q->process));
  return q;
}

char *
qpin_test_qpin_log (QpinTestQpin *q)
{
  char *text = NULL;
  g_file_get_contents (q->log_path, &text, NULL, NULL);
  return text;
}

/* Returns the exit status, 128 + signal when killed. */
int
qpin_test_qpin_wait (QpinTestQpin *q)
{
  g_subprocess_wait (q->process, NULL, NULL);
  if (g_subprocess_get_if_exited (q->process))
    return g_subprocess_get_exit_status (q->process);
  return 128 + g_subprocess_get_term_sig (q->process);
}

void
qpin_test_qpin_free (QpinTestQpin *q)
{
  if (q == NULL)
    return;
  if (g_subprocess_get_identifier (q->process))
    {
      g_subprocess_send_signal (q->process, SIGTERM);
      g_subprocess_wait (q->process, NULL, NULL);
    }
  g_object_unref (q->process);
  g_unlink (q->log_path);
  g_free (q->log_path);
  g_free (q);
}

/* `qpin status --json`, or NULL while the daemon does not answer. */
JsonNode *
qpin_test_status (const char *control_path)
{
  const char *args[] = { "status", "--json", "--control", control_path, NULL };
  g_autofree char *out = NULL, *err = NULL;

  if (qpin_test_run_qpin (args, &out, &err) != 0)
    return NULL;
  return json_from_string (out, NULL);
}

/**
 * qpin_test_find_vm:
 *
 * Returns: (transfer none) (nullable): the VM with @pid in a status reply
 */
JsonObject *
qpin_test_find_vm (JsonNode *status, GPid pid)
{
  return qpin_json_find_vm (status, pid);
}

/* Does the VM object (of status or attach --json) carry @note? */
gboolean
qpin_test_vm_has_note (JsonObject *vm, const char *note)
{
  JsonArray *notes
    = json_object_has_member (vm, "notes") ? json_object_get_array_member (vm, "notes") : NULL;

  for (guint i = 0; notes && i < json_array_get_length (notes); i++)
    if (g_str_equal (json_array_get_string_element (notes, i), note))
      return TRUE;
  return FALSE;
}

/* A guard against hangs, not a timing assertion: polls @check every 20 ms. */
gboolean
qpin_test_wait_for (gboolean (*check) (gpointer), gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_get_monotonic_time () < deadline)
    {
      if (check (data))
        return TRUE;
      g_usleep (20 * 1000);
    }
  return check (data);
}

/* The TIDs whose comm says "CPU N/TCG" (QEMU started with debug-threads=on). */
GArray *
qpin_test_vcpu_tids (GPid pid)
{
  g_autoptr (GArray) all = qpin_test_list_tasks (pid);
  GArray *vcpus = g_array_new (FALSE, FALSE, sizeof (GPid));

  for (guint i = 0; i < all->len; i++)
    {
      GPid tid = g_array_index (all, GPid, i);
      g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/comm", pid, tid);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (path, &comm, NULL, NULL) && g_str_has_prefix (comm, "CPU "))
        g_array_append_val (vcpus, tid);
    }
  return vcpus;
}

/* The CPUs the one vCPU of the QEMU of process @pid may run on, from
 * the kernel; the test fails if the QEMU has not exactly one vCPU. */
char *
qpin_test_vcpu_affinity (GPid pid)
{
  g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (pid);

  g_assert_cmpuint (vcpus->len, ==, 1);
  return qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
}

/**
 * qpin_test_device_add_args:
 * @slot: a free slot of query-hotpluggable-cpus
 *
 * Returns: (transfer full): device_add's arguments for a vCPU in @slot
 */
JsonObject *
qpin_test_device_add_args (const QpinQmpHotpluggableCpu *slot, const char *id)
{
  JsonObject *args = json_object_new ();

  json_object_set_string_member (args, "driver", slot->type);
  json_object_set_string_member (args, "id", id);
  json_object_set_int_member (args, "socket-id", slot->topo.socket);
  json_object_set_int_member (args, "core-id", slot->topo.core);
  json_object_set_int_member (args, "thread-id", slot->topo.thread);
  return args;
}

/**
 * qpin_test_qemu_add_vcpus:
 * @monitor: a QMP socket of the QEMU, not the one qpin uses
 *
 * Hot-adds @count vCPUs (device_add of the first free slots, back to
 * back, as a storm of scripts would), as someone other than qpin; the
 * test fails unless all @count were added.
 */
void
qpin_test_qemu_add_vcpus (const char *monitor, guint count)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (monitor, 10000, &error);
  g_autoptr (JsonNode) ret = NULL;
  g_autoptr (GPtrArray) slots = NULL;
  guint added = 0;

  g_assert_no_error (error);
  ret = qpin_qmp_client_execute_sync (client, "query-hotpluggable-cpus", NULL, 10000, &error);
  g_assert_no_error (error);
  slots = qpin_qmp_parse_hotpluggable_cpus (ret, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < slots->len && added < count; i++)
    {
      QpinQmpHotpluggableCpu *slot = g_ptr_array_index (slots, i);
      g_autoptr (JsonObject) args = NULL;
      g_autoptr (JsonNode) ok = NULL;
      g_autofree char *id = g_strdup_printf ("foreign%u", i);

      if (slot->qom_path)
        continue;
      args = qpin_test_device_add_args (slot, id);
      ok = qpin_qmp_client_execute_sync (client, "device_add", args, 10000, &error);
      g_assert_no_error (error);
      added++;
    }
  g_assert_cmpuint (added, ==, count);
  qpin_qmp_client_close (client);
}

/* What a dry run shows of each of @threads (a status or --json "threads"
 * array, not empty): not applied, "actual" the kernel's affinity, and
 * that is @online (every online CPU): untouched. */
void
qpin_test_assert_threads_untouched (JsonArray *threads, const char *online)
{
  g_assert_cmpuint (json_array_get_length (threads), >, 0);
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      g_autofree char *kernel
        = qpin_test_affinity_of ((GPid) json_object_get_int_member (t, "tid"));

      g_assert_false (json_object_get_boolean_member (t, "applied"));
      g_assert_cmpstr (json_object_get_string_member (t, "actual"), ==, kernel);
      g_assert_cmpstr (kernel, ==, online);
    }
}

static gboolean
answers (gpointer data)
{
  g_autoptr (JsonNode) status = qpin_test_status (data);
  return status != NULL;
}

/* Waits until a daemon answers on @control_path. */
gboolean
qpin_test_wait_daemon (const char *control_path, guint timeout_ms)
{
  return qpin_test_wait_for (answers, (gpointer) control_path, timeout_ms);
}

/* ---- cpuset cgroups ---- */

static void
write_file (const char *dir, const char *name, const char *value)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  gssize len = (gssize) strlen (value);

  if (fd < 0 || write (fd, value, (size_t) len) != len)
    g_error ("cannot write '%s' to %s: %s", value, path, g_strerror (errno));
  close (fd);
}

/* The directory of a writable cpuset hierarchy: "cgroup" with the cpuset
 * option (v1), else "cgroup2" offering the cpuset controller. */
static char *
cpuset_root (gboolean *v2)
{
  g_autofree char *mounts = NULL;
  g_auto (GStrv) lines = NULL;
  char *found = NULL;

  g_assert_true (g_file_get_contents ("/proc/self/mounts", &mounts, NULL, NULL));
  lines = g_strsplit (mounts, "\n", -1);
  for (guint pass = 0; pass < 2 && found == NULL; pass++)
    for (guint i = 0; lines[i] && found == NULL; i++)
      {
        g_auto (GStrv) f = g_strsplit (lines[i], " ", -1);
        g_autofree char *controllers = NULL;

        if (g_strv_length (f) < 4)
          continue;
        if (pass == 0 && g_str_equal (f[2], "cgroup") && strstr (f[3], "cpuset"))
          found = g_strdup (f[1]);
        else if (pass == 1 && g_str_equal (f[2], "cgroup2"))
          {
            g_autofree char *path = g_build_filename (f[1], "cgroup.controllers", NULL);
            if (g_file_get_contents (path, &controllers, NULL, NULL)
                && strstr (controllers, "cpuset"))
              found = g_strdup (f[1]);
          }
        *v2 = pass == 1;
      }
  return found;
}

/**
 * qpin_test_cgroup_new:
 *
 * Fails the test, saying why, when the host has no writable cpuset
 * controller: the README names it as a requirement of the suite.
 */
QpinTestCgroup *
qpin_test_cgroup_new (const char *cpus)
{
  gboolean v2 = FALSE;
  g_autofree char *root = cpuset_root (&v2);
  QpinTestCgroup *cgroup;

  if (root == NULL)
    g_error ("this host has no cpuset cgroup controller (cgroup v1 'cpuset' or cgroup2 with "
             "'cpuset' in cgroup.controllers): the cgroup cpuset test needs one");
  cgroup = g_new0 (QpinTestCgroup, 1);
  cgroup->path = g_strdup_printf ("%s/qpin-test-%d", root, getpid ());
  if (v2)
    write_file (root, "cgroup.subtree_control", "+cpuset");
  if (g_mkdir (cgroup->path, 0755) != 0 && errno != EEXIST)
    g_error ("cannot create %s: %s", cgroup->path, g_strerror (errno));
  write_file (cgroup->path, "cpuset.cpus", cpus);
  if (!v2)
    {
      g_autofree char *parent = g_build_filename (root, "cpuset.mems", NULL);
      g_autofree char *mems = NULL;
      g_assert_true (g_file_get_contents (parent, &mems, NULL, NULL));
      write_file (cgroup->path, "cpuset.mems", g_strstrip (mems));
    }
  return cgroup;
}

/* Moves every thread of process @pid into the cgroup. */
void
qpin_test_cgroup_add (QpinTestCgroup *cgroup, GPid pid)
{
  g_autofree char *value = g_strdup_printf ("%d", pid);

  write_file (cgroup->path, "cgroup.procs", value);
}

/* Its processes must be gone first (free the QEMU before the cgroup). */
void
qpin_test_cgroup_free (QpinTestCgroup *cgroup)
{
  for (guint tries = 0; tries < 100 && g_rmdir (cgroup->path) != 0 && errno == EBUSY; tries++)
    g_usleep (20000); /* an exited process leaves its cgroup a moment later */
  g_free (cgroup->path);
  g_free (cgroup);
}

/* The open files of process @pid now (0 once it is gone). */
guint
qpin_test_count_fds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir && g_dir_read_name (dir))
    n++;
  return n;
}

/* The fd count once it has held still for half a second (the last
 * status query's connection closes a moment after its reply). */
guint
qpin_test_settled_fds (GPid pid)
{
  guint n = qpin_test_count_fds (pid), same = 0;

  for (guint i = 0; i < 200 && same < 10; i++)
    {
      guint now;

      g_usleep (50000);
      now = qpin_test_count_fds (pid);
      same = now == n ? same + 1 : 0;
      n = now;
    }
  return n;
}
