/* bench-pinner.c: how fast qpin pins real threads, and what it costs
 *
 * Prints numbers, each with a baseline measured in this same process:
 *   attach-64     `qpin attach --once` on a 64-vCPU QEMU vs a naive
 *                 in-process loop (query-cpus-fast, then pin and read back
 *                 every vCPU with no planning)
 *   hot-add       100 vCPUs hot-added by a foreign QMP client: thread seen
 *                 in /proc -> thread on its planned CPU, p50/p99; floors:
 *                 device_add's own round trip, one bare sched_setaffinity
 *   qpin-hotplug  20 vCPUs added by `qpin hotplug`: how many were ever seen
 *                 off their planned CPU (target 0); command to pinned
 *                 beside a `qpin status` exec
 *   daemon-vms    QPIN_BENCH_VMS (200) fake QEMUs (processes with a real
 *                 vCPU thread, speaking QMP) in a watched directory: time
 *                 until all are pinned; floors: one client querying them
 *                 all in turn, a bare sched_setaffinity loop over their
 *                 threads; daemon RSS and open fds against their targets
 *   idle          the daemon's context switches over 3 s with nothing to do
 * Each figure is printed beside its floor or baseline from this same run,
 * and beside its target with "met" or "MISSED".
 * Not a test: it asserts nothing about time.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"
#include "qpin-test-host.h"
#include "qpin-test-qemu.h"

static double
now_ms (void)
{
  return (double) g_get_monotonic_time () / 1000.0;
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
percentile (GArray *values, double p)
{
  g_array_sort (values, compare_double);
  return g_array_index (values, double, (guint) ((values->len - 1) * p));
}

static char *
online_cpus (void)
{
  char *text = NULL;
  g_file_get_contents ("/sys/devices/system/cpu/online", &text, NULL, NULL);
  return g_strstrip (text);
}

/* ---- attach-64 ---- */

static double
naive_attach (const char *socket)
{
  double start = now_ms ();
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (socket, 10000, &error);
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, 10000, &error);
  g_autoptr (GPtrArray) cpus = qpin_qmp_parse_cpus_fast (ret, &error);
  cpu_set_t set, back;

  g_assert_no_error (error);
  CPU_ZERO (&set);
  for (long c = 0; c < sysconf (_SC_NPROCESSORS_ONLN); c++)
    CPU_SET (c, &set);
  for (guint i = 0; i < cpus->len; i++)
    {
      GPid tid = (GPid) ((QpinQmpCpu *) g_ptr_array_index (cpus, i))->thread_id;
      g_assert_cmpint (sched_setaffinity (tid, sizeof set, &set), ==, 0);
      g_assert_cmpint (sched_getaffinity (tid, sizeof back, &back), ==, 0);
    }
  qpin_qmp_client_close (client);
  return now_ms () - start;
}

static void
bench_attach_64 (void)
{
  const char *qargs[] = { "-smp", "64", "-m", "256", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  const char *args[] = { "attach", "--once", "--policy", "overcommit=share", qemu->qmp_path, NULL };
  g_autoptr (GArray) ours = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) base = g_array_new (FALSE, FALSE, sizeof (double));

  for (guint i = 0; i < 7; i++)
    {
      g_autofree char *out = NULL, *err = NULL;
      double t = naive_attach (qemu->qmp_path), start;
      g_array_append_val (base, t);
      start = now_ms ();
      g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
      t = now_ms () - start;
      g_array_append_val (ours, t);
    }
  printf ("attach-64: qpin attach --once (exec to all 64 vCPUs pinned and verified) median %.1f "
          "ms; naive in-process pin loop median %.1f ms; ratio %.1f (target: under 20 ms: %s)\n",
          percentile (ours, 0.5), percentile (base, 0.5),
          percentile (ours, 0.5) / percentile (base, 0.5),
          percentile (ours, 0.5) < 20.0 ? "met" : "MISSED");
}

/* ---- hot-add ---- */

typedef struct {
  char *dir;
  char *run; /* the control socket's and the ledger's directory's parent */
  char *control;
  QpinTestQpin *daemon;
} Daemon;

static Daemon *
daemon_start (const char *const *policy)
{
  Daemon *d = g_new0 (Daemon, 1);
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *watch = NULL;

  d->dir = g_dir_make_tmp ("qpin-bench-XXXXXX", NULL);
  /* The ledger (fsync'ed on every change) sits beside the control
   * socket: on tmpfs, as /run/qpin is on a host, else a disk's flush per
   * VM is what is measured.  The daemon also watches the parent of the
   * socket's directory: one of ours, where nothing else happens. */
  d->run = g_build_filename ("/dev/shm", "qpin-bench-XXXXXX", NULL);
  if (g_mkdtemp (d->run) == NULL)
    {
      g_free (d->run);
      d->run = g_build_filename (d->dir, "run-XXXXXX", NULL);
      g_assert_nonnull (g_mkdtemp (d->run));
    }
  d->control = g_build_filename (d->run, "run", "control.sock", NULL);
  {
    g_autofree char *sockets = g_path_get_dirname (d->control);
    g_mkdir (sockets, 0700);
  }
  watch = g_build_filename (d->dir, "vms", NULL);
  g_mkdir (watch, 0700);
  for (const char *const *a
       = (const char *const[]){ "daemon", "--no-listen", "--grace", "0", "--interval", "0", NULL };
       *a; a++)
    g_ptr_array_add (args, g_strdup (*a));
  g_ptr_array_add (args, g_strdup ("--watch"));
  g_ptr_array_add (args, g_strdup (watch));
  g_ptr_array_add (args, g_strdup ("--control"));
  g_ptr_array_add (args, g_strdup (d->control));
  for (const char *const *p = policy; p && *p; p++)
    {
      g_ptr_array_add (args, g_strdup ("--policy"));
      g_ptr_array_add (args, g_strdup (*p));
    }
  g_ptr_array_add (args, NULL);
  d->daemon = qpin_test_qpin_spawn ((const char *const *) args->pdata);
  g_assert_true (qpin_test_wait_daemon (d->control, 20000));
  return d;
}

static void
daemon_stop (Daemon *d)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s' '%s'", d->dir, d->run);
  qpin_test_qpin_free (d->daemon);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (d->dir);
  g_free (d->run);
  g_free (d->control);
  g_free (d);
}

static QpinTestQemu *
watched_qemu (Daemon *d, const char *smp)
{
  g_autofree char *qmp = g_strdup_printf ("unix:%s/vms/hp.sock,server=on,wait=off", d->dir);
  /* QPIN_BENCH_NAMES=0: no thread names, qpin learns new vCPUs over QMP */
  const char *name
    = g_strcmp0 (g_getenv ("QPIN_BENCH_NAMES"), "0") == 0 ? "hp" : "hp,debug-threads=on";
  const char *args[] = { "-smp", smp, "-name", name, "-qmp", qmp, NULL };
  return qpin_test_qemu_start (NULL, args, TRUE);
}

typedef struct {
  Daemon *d;
  GPid pid;
  guint vcpus;
} Count;

static gboolean
vcpus_pinned (gpointer data)
{
  Count *c = data;
  g_autoptr (JsonNode) status = qpin_test_status (c->d->control);
  JsonObject *vm = qpin_test_find_vm (status, c->pid);
  JsonArray *threads;
  guint n = 0;

  if (vm == NULL)
    return FALSE;
  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      n += g_str_equal (json_object_get_string_member (t, "role"), "vcpu")
           && json_object_get_boolean_member (t, "applied");
    }
  return n == c->vcpus;
}

/* The vCPU thread not in @known, by QMP. */
static GPid
new_vcpu_by_qmp (QpinQmpClient *client, GHashTable *known)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, 10000, &error);
  g_autoptr (GPtrArray) cpus = qpin_qmp_parse_cpus_fast (ret, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < cpus->len; i++)
    {
      const QpinQmpCpu *cpu = g_ptr_array_index (cpus, i);
      if (!g_hash_table_contains (known, GINT_TO_POINTER ((GPid) cpu->thread_id)))
        return (GPid) cpu->thread_id;
    }
  g_error ("no new vCPU in query-cpus-fast");
}

/* Without thread names: the threads of @pid not in @known are new (the
 * vCPU device_add made is among them); each is polled until its affinity
 * is @want, for at most 20 ms, and only then does QMP say which one is
 * the vCPU (asking first would put a QMP round trip in the figure). */
static GPid
watch_new_vcpu_qmp (QpinQmpClient *client, GPid pid, GHashTable *known, const char *want,
                    double *seen, double *pinned, char **first_affinity)
{
  g_autoptr (GArray) tids = qpin_test_list_tasks (pid);
  g_autoptr (GArray) fresh = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autofree double *at = NULL;
  g_autofree char **first = NULL;
  double start = now_ms (), deadline;
  guint left;
  GPid tid;

  for (guint i = 0; i < tids->len; i++)
    if (!g_hash_table_contains (known, GINT_TO_POINTER (g_array_index (tids, GPid, i))))
      g_array_append_val (fresh, g_array_index (tids, GPid, i));
  at = g_new0 (double, fresh->len);
  first = g_new0 (char *, fresh->len);
  *seen = start;
  for (guint i = 0; i < fresh->len; i++)
    first[i] = qpin_test_affinity_of (g_array_index (fresh, GPid, i));
  /* a poller that spins takes one of this host's two CPUs from QEMU and
   * the daemon: it sleeps 20 us between looks (the figure's resolution) */
  for (left = fresh->len; left > 0 && now_ms () < start + 20; g_usleep (20))
    for (guint i = 0; i < fresh->len; i++)
      if (at[i] == 0)
        {
          g_autofree char *aff = qpin_test_affinity_of (g_array_index (fresh, GPid, i));
          if (g_str_equal (aff, want))
            {
              at[i] = now_ms ();
              left--;
            }
        }
  tid = new_vcpu_by_qmp (client, known);
  for (guint i = 0; i < fresh->len; i++)
    {
      GPid t = g_array_index (fresh, GPid, i);
      if (t == tid)
        {
          *first_affinity = g_strdup (first[i]);
          *pinned = at[i];
        }
      else
        g_hash_table_add (known, GINT_TO_POINTER (t)); /* not a vCPU */
      g_free (first[i]);
    }
  g_assert_nonnull (*first_affinity); /* the vCPU was new when first listed */
  for (deadline = now_ms () + 10000; *pinned == 0 && now_ms () < deadline;)
    {
      g_autofree char *aff = qpin_test_affinity_of (tid);
      if (g_str_equal (aff, want))
        *pinned = now_ms ();
    }
  if (*pinned == 0)
    g_error ("a hot-added vCPU was not pinned to '%s' within 10 s", want);
  g_hash_table_add (known, GINT_TO_POINTER (tid));
  return tid;
}

/* Waits for a vCPU thread not in @known; returns when it is first seen
 * and when its affinity first equals @want. */
static GPid
watch_new_vcpu (GPid pid, GHashTable *known, const char *want, double *seen, double *pinned,
                char **first_affinity)
{
  double deadline = now_ms () + 10000;
  GPid tid = 0;

  *seen = *pinned = 0;
  while (now_ms () < deadline)
    {
      if (tid == 0)
        {
          /* cheap enough to poll hard: names are read for new TIDs only */
          g_autoptr (GArray) tids = qpin_test_list_tasks (pid);
          for (guint i = 0; i < tids->len && tid == 0; i++)
            {
              GPid t = g_array_index (tids, GPid, i);
              g_autofree char *path = NULL, *comm = NULL;

              if (g_hash_table_contains (known, GINT_TO_POINTER (t)))
                continue;
              path = g_strdup_printf ("/proc/%d/task/%d/comm", pid, t);
              if (!g_file_get_contents (path, &comm, NULL, NULL)
                  || !g_str_has_prefix (comm, "CPU "))
                {
                  g_hash_table_add (known, GINT_TO_POINTER (t)); /* not a vCPU */
                  continue;
                }
              tid = t;
              *seen = now_ms ();
              *first_affinity = qpin_test_affinity_of (tid);
            }
        }
      if (tid != 0)
        {
          g_autofree char *aff = qpin_test_affinity_of (tid);
          if (g_str_equal (aff, want))
            {
              *pinned = now_ms ();
              g_hash_table_add (known, GINT_TO_POINTER (tid));
              return tid;
            }
        }
    }
  g_error ("a hot-added vCPU was not pinned to '%s' within 10 s", want);
}

/* Floor of the pin itself: sched_setaffinity of @tid to CPU 1 (where it
 * already is) and its read-back, in ms. */
static double
pin_floor (GPid tid)
{
  cpu_set_t set, back;
  double start;

  CPU_ZERO (&set);
  CPU_SET (1, &set);
  start = now_ms ();
  g_assert_cmpint (sched_setaffinity (tid, sizeof set, &set), ==, 0);
  g_assert_cmpint (sched_getaffinity (tid, sizeof back, &back), ==, 0);
  return now_ms () - start;
}

static void
bench_hot_add (void)
{
  /* CPU 0 for the emulator, the vCPUs on CPU 1 (the shared pool: a VM's
   * own vCPUs beyond the CPUs there are no longer float on its dedicated
   * ones): a new thread inherits the main thread's CPU 0, so qpin must
   * move it, and that is what is timed */
  const char *policy[] = { "reserved=0", "emulator=housekeeping", "cpus=shared", NULL };
  Daemon *d = daemon_start (policy);
  /* QPIN_BENCH_SMP=64: the same on a VM that has 64 vCPUs before;
   * QPIN_BENCH_HOTADDS=N: N hot-adds (100) */
  guint smp = g_getenv ("QPIN_BENCH_SMP") ? (guint) atoi (g_getenv ("QPIN_BENCH_SMP")) : 1;
  guint adds
    = g_getenv ("QPIN_BENCH_HOTADDS") ? (guint) atoi (g_getenv ("QPIN_BENCH_HOTADDS")) : 100;
  g_autofree char *smp_arg = g_strdup_printf ("%u,maxcpus=%u", MAX (smp, 1), MAX (smp, 1) + adds);
  g_autoptr (QpinTestQemu) qemu = watched_qemu (d, smp_arg);
  g_autoptr (GHashTable) known = g_hash_table_new (NULL, NULL);
  g_autoptr (GArray) lat = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) rtt = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) bare = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) after = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) foreign = NULL;
  g_autoptr (JsonNode) ret = NULL;
  g_autoptr (GPtrArray) slots = NULL;
  Count c = { d, qemu->pid, MAX (smp, 1) };
  guint born_pinned = 0;

  if (sysconf (_SC_NPROCESSORS_ONLN) < 2)
    g_error ("the hot-add bench needs 2 CPUs");
  g_assert_true (qpin_test_wait_for (vcpus_pinned, &c, 120000));
  {
    g_autoptr (JsonNode) status = qpin_test_status (d->control);
    JsonArray *threads
      = json_object_get_array_member (qpin_test_find_vm (status, qemu->pid), "threads");
    for (guint i = 0; i < json_array_get_length (threads); i++)
      g_hash_table_add (known, GINT_TO_POINTER ((GPid) json_object_get_int_member (
                                 json_array_get_object_element (threads, i), "tid")));
  }
  foreign = qpin_qmp_client_connect_sync (qemu->qmp_path, 10000, &error);
  g_assert_no_error (error);
  ret = qpin_qmp_client_execute_sync (foreign, "query-hotpluggable-cpus", NULL, 10000, &error);
  slots = qpin_qmp_parse_hotpluggable_cpus (ret, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < slots->len; i++)
    {
      QpinQmpHotpluggableCpu *slot = g_ptr_array_index (slots, i);
      g_autoptr (JsonObject) args = NULL;
      g_autoptr (JsonNode) ok = NULL;
      g_autofree char *id = g_strdup_printf ("b%u", i);
      g_autofree char *first = NULL;
      double start, seen, pinned, t, reply;
      GPid tid;

      if (slot->qom_path)
        continue;
      args = qpin_test_device_add_args (slot, id);
      /* one hot-add at a time, spaced as a management tool would, so
       * that each is timed alone */
      g_usleep (110 * 1000);
      start = now_ms ();
      ok = qpin_qmp_client_execute_sync (foreign, "device_add", args, 10000, &error);
      g_assert_no_error (error);
      reply = now_ms ();
      t = reply - start;
      g_array_append_val (rtt, t);
      if (g_strcmp0 (g_getenv ("QPIN_BENCH_NAMES"), "0") == 0)
        tid = watch_new_vcpu_qmp (foreign, qemu->pid, known, "1", &seen, &pinned, &first);
      else
        tid = watch_new_vcpu (qemu->pid, known, "1", &seen, &pinned, &first);
      /* QEMU answers QMP only once device_add is done: its reply is the
       * floor for a pinner that learns the thread over QMP */
      t = MAX (pinned - reply, 0);
      g_array_append_val (after, t);
      t = pinned - seen;
      born_pinned += g_str_equal (first, "1");
      g_array_append_val (lat, t);
      t = pin_floor (tid);
      g_array_append_val (bare, t);
    }
  qpin_qmp_client_close (foreign);
  printf ("hot-add: %u vCPUs added by a foreign QMP client: thread seen -> pinned p50 %.2f ms, "
          "p99 %.2f ms, max %.2f ms (%u already pinned when first seen); floors: device_add "
          "round trip p50 %.2f ms (ratio p50 %.2f), a bare sched_setaffinity + read-back of the "
          "thread p50 %.3f ms (target: p99 under 10 ms: %s)\n",
          lat->len, percentile (lat, 0.5), percentile (lat, 0.99), percentile (lat, 1.0),
          born_pinned, percentile (rtt, 0.5), percentile (lat, 0.5) / percentile (rtt, 0.5),
          percentile (bare, 0.5), percentile (lat, 0.99) < 10.0 ? "met" : "MISSED");
  /* a thread already pinned at the bench's first look counts as pinned
   * then: for those the figure is the look's own cost, an upper bound */
  printf (
    "hot-add: on a VM with %u vCPUs before: device_add's reply (the QMP floor, round trip p50 %.2f "
    "ms) -> pinned p50 "
    "%.3f ms, p99 %.3f ms, max %.3f ms; %u of %u already pinned at the first look after the reply "
    "(target: p50 <= 0.4 ms, with thread names <= 0.1 ms)\n",
    MAX (smp, 1), percentile (rtt, 0.5), percentile (after, 0.5), percentile (after, 0.99),
    percentile (after, 1.0), born_pinned, after->len);
  g_clear_pointer (&qemu, qpin_test_qemu_free);
  daemon_stop (d);
}

static void
bench_qpin_hotplug (void)
{
  const char *policy[] = { "reserved=0", "emulator=housekeeping", "cpus=shared", NULL };
  Daemon *d = daemon_start (policy);
  g_autoptr (QpinTestQemu) qemu = watched_qemu (d, "1,maxcpus=21");
  g_autoptr (GHashTable) known = g_hash_table_new (NULL, NULL);
  g_autoptr (GArray) total = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) bare = g_array_new (FALSE, FALSE, sizeof (double));
  const char *args[] = { "hotplug", "hp", "add", "--control", d->control, NULL };
  const char *status[] = { "status", "--control", d->control, NULL };
  Count c = { d, qemu->pid, 1 };
  guint off_plan = 0, n = 20;

  g_assert_true (qpin_test_wait_for (vcpus_pinned, &c, 20000));
  {
    g_autoptr (GArray) tids = qpin_test_vcpu_tids (qemu->pid);
    for (guint i = 0; i < tids->len; i++)
      g_hash_table_add (known, GINT_TO_POINTER (g_array_index (tids, GPid, i)));
  }
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *out = NULL, *err = NULL, *first = NULL;
      double start = now_ms (), seen, pinned, t;

      g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
      watch_new_vcpu (qemu->pid, known, "1", &seen, &pinned, &first);
      off_plan += !g_str_equal (first, "1");
      t = pinned - start;
      g_array_append_val (total, t);
      /* floor: the same exec and control round trip, asking nothing */
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      start = now_ms ();
      g_assert_cmpint (qpin_test_run_qpin (status, &out, &err), ==, 0);
      t = now_ms () - start;
      g_array_append_val (bare, t);
    }
  printf ("qpin-hotplug: %u vCPUs added with `qpin hotplug`: %u ever seen off their planned CPU "
          "(target 0: %s); command to pinned p50 %.1f ms; floor: `qpin status` (the same exec "
          "and control round trip) p50 %.1f ms\n",
          n, off_plan, off_plan == 0 ? "met" : "MISSED", percentile (total, 0.5),
          percentile (bare, 0.5));
  g_clear_pointer (&qemu, qpin_test_qemu_free);
  daemon_stop (d);
}

/* ---- daemon-vms: fake QEMUs, each a process with a real vCPU thread ---- */

static void *
idle_vcpu (void *arg)
{
  for (;;)
    pause ();
  return NULL;
}

static G_GNUC_NORETURN void
fake_qemu (const char *path, guint n)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int lfd = socket (AF_UNIX, SOCK_STREAM, 0), fd;
  pthread_t thread;
  volatile pid_t vcpu_tid = 0;
  char buf[4096];
  size_t have = 0;
  FILE *out;
  cpu_set_t cpu0;

  /* both threads start on CPU 0 alone: the daemon's shared pool moves
   * them, and its "pinned ... moved" line is what the bench counts */
  CPU_ZERO (&cpu0);
  CPU_SET (0, &cpu0);
  sched_setaffinity (0, sizeof cpu0, &cpu0);
  pthread_create (&thread, NULL, idle_vcpu, NULL);
  /* the vCPU thread's TID: the newest entry of our task list */
  {
    g_autoptr (GArray) tids = qpin_test_list_tasks (getpid ());
    vcpu_tid = g_array_index (tids, GPid, tids->len - 1);
  }
  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  if (bind (lfd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (lfd, 1) != 0)
    _exit (1);
  fd = accept (lfd, NULL, NULL);
  out = fdopen (dup (fd), "w");
  fprintf (out, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
                "\"package\": \"\"}, \"capabilities\": []}}\r\n");
  fflush (out);
  for (;;)
    {
      ssize_t r = read (fd, buf + have, sizeof buf - 1 - have);
      char *nl;

      if (r <= 0)
        _exit (0);
      have += (size_t) r;
      buf[have] = '\0';
      while ((nl = strchr (buf, '\n')) != NULL)
        {
          const char *id = strstr (buf, "\"id\":");
          long idv = id ? strtol (id + 5, NULL, 10) : 0;

          *nl = '\0';
          if (strstr (buf, "query-name"))
            fprintf (out, "{\"return\": {\"name\": \"fake%u\"}, \"id\": %ld}\r\n", n, idv);
          else if (strstr (buf, "query-cpus-fast"))
            fprintf (out,
                     "{\"return\": [{\"cpu-index\": 0, \"thread-id\": %d, \"qom-path\": "
                     "\"/machine/unattached/device[0]\", \"target\": \"x86_64\", \"props\": "
                     "{\"socket-id\": 0, \"core-id\": 0, \"thread-id\": 0}}], \"id\": %ld}\r\n",
                     (int) vcpu_tid, idv);
          else if (strstr (buf, "query-iothreads"))
            fprintf (out, "{\"return\": [], \"id\": %ld}\r\n", idv);
          else
            fprintf (out, "{\"return\": {}, \"id\": %ld}\r\n", idv);
          fflush (out);
          have -= (size_t) (nl + 1 - buf);
          memmove (buf, nl + 1, have + 1);
        }
    }
}

typedef struct {
  Daemon *d;
  guint want;
} AllPinned;

static gboolean
all_pinned (gpointer data)
{
  AllPinned *a = data;
  g_autoptr (JsonNode) status = qpin_test_status (a->d->control);
  JsonArray *vms;
  guint n = 0;

  if (status == NULL)
    return FALSE;
  vms = json_object_get_array_member (json_node_get_object (status), "vms");
  for (guint i = 0; i < json_array_get_length (vms); i++)
    n += g_str_equal (
      json_object_get_string_member (json_array_get_object_element (vms, i), "state"), "pinned");
  return n == a->want;
}

/* The daemon's open files: it always has some, so 0 means /proc was not
 * readable, which would make the figure a lie. */
static guint
daemon_fds (GPid pid)
{
  guint n = qpin_test_count_fds (pid);

  g_assert_cmpuint (n, >, 0);
  return n;
}

static const char *
verdict (gboolean met)
{
  return met ? "met" : "MISSED";
}

/* Forks @n fake QEMUs listening on DIR/vms/PREFIXi.sock. */
static GArray *
spawn_fakes (Daemon *d, const char *prefix, guint n)
{
  GArray *kids = g_array_new (FALSE, FALSE, sizeof (pid_t));

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/vms/%s%u.sock", d->dir, prefix, i);
      pid_t kid = fork ();
      if (kid == 0)
        fake_qemu (path, i);
      g_array_append_val (kids, kid);
    }
  return kids;
}

static void
kill_fakes (GArray *kids)
{
  for (guint i = 0; i < kids->len; i++)
    kill (g_array_index (kids, pid_t, i), SIGKILL);
  for (guint i = 0; i < kids->len; i++)
    waitpid (g_array_index (kids, pid_t, i), NULL, 0);
  g_array_set_size (kids, 0);
}

/* Waits until the daemon's log names @n distinct VMs in "vm 'NAME' (pid
 * P): pinned" lines (a VM whose pool changes is logged again); reads only
 * what is new, so the daemon is not disturbed (a status request would
 * read every thread's affinity, and `qpin status` is a process of its
 * own).  Gives up early when CPU 1 goes offline: then nothing moves. */
static gboolean
wait_log_pinned (Daemon *d, guint n, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  FILE *log = fopen (d->daemon->log_path, "r");
  g_autoptr (GString) line = g_string_new (NULL);
  char chunk[1024];
  guint idle = 0;

  g_assert_nonnull (log);
  while (g_hash_table_size (seen) < n && g_get_monotonic_time () < deadline)
    {
      const char *vm, *end;

      if (fgets (chunk, sizeof chunk, log) == NULL)
        {
          clearerr (log);
          g_usleep (1000);
          if (++idle % 100 == 0 && sysconf (_SC_NPROCESSORS_ONLN) < 2)
            break;
          continue;
        }
      /* a line the daemon is writing may be read in two parts (a write
       * across a page boundary is seen page by page): whole lines only */
      g_string_append (line, chunk);
      if (line->str[line->len - 1] != '\n')
        continue;
      if (strstr (line->str, "): pinned ") != NULL && (vm = strstr (line->str, "vm '")) != NULL
          && (end = strstr (vm, "' (pid ")) != NULL)
        g_hash_table_add (seen, g_strndup (vm + 4, (gsize) (end - vm - 4)));
      g_string_truncate (line, 0);
    }
  fclose (log);
  return g_hash_table_size (seen) == n;
}

/* Floor of pinning: sched_setaffinity and its read-back on every task
 * of @kids, nothing else. */
static double
setaffinity_floor (GArray *kids)
{
  cpu_set_t set, back;
  double start;

  CPU_ZERO (&set);
  for (long c = 0; c < sysconf (_SC_NPROCESSORS_ONLN); c++)
    CPU_SET (c, &set);
  start = now_ms ();
  for (guint i = 0; i < kids->len; i++)
    {
      g_autoptr (GArray) tids = qpin_test_list_tasks (g_array_index (kids, pid_t, i));
      for (guint t = 0; t < tids->len; t++)
        {
          GPid tid = g_array_index (tids, GPid, t);
          g_assert_cmpint (sched_setaffinity (tid, sizeof set, &set), ==, 0);
          g_assert_cmpint (sched_getaffinity (tid, sizeof back, &back), ==, 0);
        }
    }
  return now_ms () - start;
}

/* Baseline: one plain client asks each of @n fake VMs (DIR/vms/baseI.sock)
 * the three questions the daemon asks, one VM after the other; as for
 * the daemon, the clock runs from before the first fork. */
static double
one_client_baseline (Daemon *d, guint n)
{
  double start = now_ms ();
  g_autoptr (GArray) kids = spawn_fakes (d, "base", n);
  double took;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/vms/base%u.sock", d->dir, i);
      g_autoptr (QpinQmpClient) client = NULL;
      g_autoptr (GError) error = NULL;

      while (!g_file_test (path, G_FILE_TEST_EXISTS))
        g_usleep (1000);
      for (guint tries = 0; client == NULL && tries < 1000; tries++)
        {
          g_clear_error (&error);
          client = qpin_qmp_client_connect_sync (path, 10000, &error);
          if (client == NULL)
            g_usleep (1000);
        }
      g_assert_no_error (error);
      for (guint q = 0; q < 3; q++)
        {
          const char *cmds[] = { "query-name", "query-cpus-fast", "query-iothreads" };
          g_autoptr (JsonNode) ret
            = qpin_qmp_client_execute_sync (client, cmds[q], NULL, 10000, &error);
          g_assert_no_error (error);
          g_assert_nonnull (ret);
        }
      qpin_qmp_client_close (client);
    }
  took = now_ms () - start;
  kill_fakes (kids);
  return took;
}

typedef struct {
  guint n;
  double pinned_ms, base_ms, floor_ms, cpu_ms;
  guint64 rss_idle, rss_full, rss_settled, ctx;
  guint fds_idle, fds_full;
} DaemonFigures;

static void
print_daemon_figures (const DaemonFigures *f)
{
  guint64 rss_target = 8 * 1024 + 20 * (guint64) f->n;
  double per_vm_fds = (double) ((gint) f->fds_full - (gint) f->fds_idle) / f->n;

  printf ("daemon-%u: %u fake QEMUs (processes with a real vCPU thread) all pinned %.0f ms after "
          "their sockets began to appear, using %.0f ms of CPU; floors: one client querying them "
          "all in turn %.0f ms "
          "(ratio %.2f, target within 2x: %s), a bare sched_setaffinity loop over their %u "
          "threads %.1f ms\n",
          f->n, f->n, f->pinned_ms, f->cpu_ms, f->base_ms, f->pinned_ms / f->base_ms,
          verdict (f->pinned_ms <= 2 * f->base_ms), 2 * f->n, f->floor_ms);
  printf ("daemon-rss: %" G_GUINT64_FORMAT " kB with no VM, %" G_GUINT64_FORMAT
          " kB with %u just pinned, %" G_GUINT64_FORMAT " kB 3 s later: %.1f kB per VM "
          "(target: under 8 MB + 20 kB per VM = %" G_GUINT64_FORMAT " kB: %s)\n",
          f->rss_idle, f->rss_full, f->n, f->rss_settled,
          (double) (f->rss_settled - f->rss_idle) / f->n, rss_target,
          verdict (f->rss_settled < rss_target));
  printf ("daemon-fds: %u open with no VM, %u with %u VMs: %.2f per VM (target: 1 per VM plus a "
          "constant: %s)\n",
          f->fds_idle, f->fds_full, f->n, per_vm_fds, verdict (per_vm_fds <= 1.0));
  printf ("idle: %" G_GUINT64_FORMAT " context switches in 3 s with %u VMs and nothing changing "
          "(--interval 0, from 1 s after the last pin; target 0: %s)\n",
          f->ctx, f->n, verdict (f->ctx == 0));
}

/* utime + stime of @pid, in ms */
static double
cpu_time_ms (GPid pid)
{
  return (double) qpin_test_cpu_ticks (pid) * 1000.0 / (double) sysconf (_SC_CLK_TCK);
}

static guint64
ctx_switches (GPid pid)
{
  return qpin_test_status_field (pid, "voluntary_ctxt_switches:")
         + qpin_test_status_field (pid, "nonvoluntary_ctxt_switches:");
}

static void
bench_daemon_vms (void)
{
  const char *env = g_getenv ("QPIN_BENCH_VMS");
  const guint n = env ? (guint) g_ascii_strtoull (env, NULL, 10) : 200;
  const char *policy[] = { "cpus=shared", NULL };
  Daemon *d = daemon_start (policy);
  g_autoptr (GArray) kids = NULL;
  AllPinned a = { d, n };
  DaemonFigures f = { .n = n };
  guint64 ctx_before;
  double start;

  g_assert_cmpuint (n, >, 0);
  if (sysconf (_SC_NPROCESSORS_ONLN) < 2)
    g_error ("the daemon bench needs 2 online CPUs: the fakes start on CPU 0 so that the "
             "daemon moves them");
  f.rss_idle = qpin_test_status_field (d->daemon->pid, "VmRSS:");
  f.fds_idle = daemon_fds (d->daemon->pid);
  f.cpu_ms = cpu_time_ms (d->daemon->pid);
  start = now_ms ();
  kids = spawn_fakes (d, "fake", n);
  if (!wait_log_pinned (d, n, 120000))
    {
      g_autofree char *online = online_cpus ();
      /* with CPU 0 alone online, nothing moves and nothing is logged */
      g_error ("not all %u fake VMs were pinned within 120 s (online CPUs now: %s)", n, online);
    }
  f.pinned_ms = now_ms () - start;
  f.cpu_ms = cpu_time_ms (d->daemon->pid) - f.cpu_ms;
  f.rss_full = qpin_test_status_field (d->daemon->pid, "VmRSS:");
  f.fds_full = daemon_fds (d->daemon->pid);

  /* idle: nothing changes, no timer (--interval 0); from 1 s after the
   * last "pinned" line, which comes before its VM's ledger save */
  g_usleep (G_USEC_PER_SEC);
  ctx_before = ctx_switches (d->daemon->pid);
  g_usleep (3 * G_USEC_PER_SEC);
  f.ctx = ctx_switches (d->daemon->pid) - ctx_before;
  f.rss_settled = qpin_test_status_field (d->daemon->pid, "VmRSS:");
  /* after the figures: every VM is "pinned" in status too */
  if (!all_pinned (&a))
    g_error ("the log has %u pinned lines but status disagrees", n);

  /* floors, with the daemon gone */
  qpin_test_qpin_free (d->daemon);
  d->daemon = NULL;
  g_usleep (200 * 1000);
  f.floor_ms = setaffinity_floor (kids);
  kill_fakes (kids);
  f.base_ms = one_client_baseline (d, n);

  print_daemon_figures (&f);
  daemon_stop (d);
}

int
main (int argc, char **argv)
{
  g_autofree char *online = online_cpus ();

  setvbuf (stdout, NULL, _IOLBF, 0);
  printf ("host: CPUs %s\n", online);
  /* QPIN_BENCH_ONLY=NAME runs one part, e.g. under a profiler;
   * QPIN_BENCH_VMS=N: fake QEMUs in daemon-vms (200) */
#define PART(name, fn)                                                                             \
  if (g_getenv ("QPIN_BENCH_ONLY") == NULL || g_str_equal (g_getenv ("QPIN_BENCH_ONLY"), name))    \
    fn ();
  PART ("attach-64", bench_attach_64)
  PART ("hot-add", bench_hot_add)
  PART ("qpin-hotplug", bench_qpin_hotplug)
  PART ("daemon-vms", bench_daemon_vms)
#undef PART
  return 0;
}
