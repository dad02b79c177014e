/* test-attach.c: `qpin attach` on real QEMUs; the kernel's view decides */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qpin-fake-peer.h"
#include "qpin-test-qemu.h"

static JsonNode *
attach_json (const char *const *args, int expected_status, char **err_out)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = qpin_test_run_qpin (args, &out, &err);

  g_test_message ("stderr: %s", err);
  g_assert_cmpint (status, ==, expected_status);
  if (err_out)
    *err_out = g_steal_pointer (&err);
  return expected_status == 0 ? json_from_string (out, NULL) : NULL;
}

static JsonArray *
threads_of (JsonNode *root)
{
  JsonArray *vms = json_object_get_array_member (json_node_get_object (root), "vms");
  g_assert_cmpuint (json_array_get_length (vms), ==, 1);
  return json_object_get_array_member (json_array_get_object_element (vms, 0), "threads");
}

/* Every thread qpin reports as applied has exactly the planned affinity
 * in the kernel, inside @within when given; dedicated vCPUs have one CPU
 * each, all different. */
static void
check_pinned (JsonNode *root, gboolean dedicated, const QpinCpuset *within)
{
  JsonArray *threads = threads_of (root);
  g_autoptr (GHashTable) vcpu_cpus = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      GPid tid = (GPid) json_object_get_int_member (t, "tid");
      const char *cpus = json_object_get_string_member (t, "cpus");
      g_autofree char *kernel = qpin_test_affinity_of (tid);

      g_assert_true (json_object_get_boolean_member (t, "applied"));
      g_assert_cmpstr (kernel, ==, cpus);
      g_assert_cmpstr (json_object_get_string_member (t, "node"), ==, "0");
      if (within)
        {
          QpinCpuset set;
          g_assert_true (qpin_cpuset_parse (cpus, &set, NULL));
          g_assert_true (qpin_cpuset_is_subset (&set, within));
        }
      if (dedicated && g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        {
          g_assert_null (strchr (cpus, ','));
          g_assert_null (strchr (cpus, '-'));
          g_assert_true (g_hash_table_add (vcpu_cpus, (gpointer) cpus));
        }
    }
}

static void
test_once_dedicated (void)
{
  const char *qargs[]
    = { "-smp", "2", "-name", "ded,debug-threads=on", "-object", "iothread,id=io0", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  const char *args[] = { "attach", "--once", "--json", qemu->qmp_path, NULL };
  g_autoptr (JsonNode) root = attach_json (args, 0, NULL);
  g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (qemu->pid);

  check_pinned (root, TRUE, NULL);
  /* the kernel's view, independently: each vCPU thread on one CPU */
  g_assert_cmpuint (vcpus->len, ==, 2);
  for (guint i = 0; i < vcpus->len; i++)
    {
      g_autofree char *aff = qpin_test_affinity_of (g_array_index (vcpus, GPid, i));
      g_assert_true (g_str_equal (aff, "0") || g_str_equal (aff, "1"));
    }
}

/* sched=rr:5: the vCPU threads, and only they, get SCHED_RR 5 */
static void
test_once_sched (void)
{
  const char *qargs[] = { "-smp", "2", "-name", "rt,debug-threads=on", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  const char *args[] = { "attach",   "--once",      "--json",       "--policy", "sched=rr:5",
                         "--policy", "cpus=shared", qemu->qmp_path, NULL };
  g_autoptr (JsonNode) root = attach_json (args, 0, NULL);
  g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (qemu->pid);
  struct sched_param param;

  check_pinned (root, FALSE, NULL);
  g_assert_cmpuint (vcpus->len, ==, 2);
  for (guint i = 0; i < vcpus->len; i++)
    {
      GPid tid = g_array_index (vcpus, GPid, i);
      g_assert_cmpint (sched_getscheduler (tid), ==, SCHED_RR);
      g_assert_cmpint (sched_getparam (tid, &param), ==, 0);
      g_assert_cmpint (param.sched_priority, ==, 5);
    }
  g_assert_cmpint (sched_getscheduler (qemu->pid), ==, SCHED_OTHER);
}

static void
test_once_shared (void)
{
  const char *qargs[] = { "-smp", "4,sockets=2,cores=2", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  const char *args[]
    = { "attach", "--once", "--json", "--policy", "cpus=shared", qemu->qmp_path, NULL };
  g_autoptr (JsonNode) root = attach_json (args, 0, NULL);

  check_pinned (root, FALSE, NULL);
}

/* More dedicated vCPUs than the host has: refused with the numbers, and
 * nothing touched. */
static void
test_refuse_overcommit (void)
{
  g_autofree char *smp = g_strdup_printf ("%ld", sysconf (_SC_NPROCESSORS_ONLN) + 2);
  g_autofree char *needs = g_strdup_printf ("needs %s dedicated cpus", smp);
  const char *qargs[] = { "-smp", smp, NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  g_autofree char *online = NULL;
  g_autofree char *err = NULL;
  const char *args[] = { "attach", "--once", qemu->qmp_path, NULL };
  g_autoptr (JsonNode) none = NULL;
  g_autoptr (GArray) tids = NULL;

  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL));
  g_strstrip (online);
  tids = qpin_test_list_tasks (qemu->pid);
  none = attach_json (args, 1, &err);
  g_assert_nonnull (strstr (err, needs));
  for (guint i = 0; i < tids->len; i++)
    {
      g_autofree char *aff = qpin_test_affinity_of (g_array_index (tids, GPid, i));
      g_assert_cmpstr (aff, ==, online);
    }
}

/* The QEMU's cgroup cpuset allows one CPU, and the plan wants all: the
 * kernel refuses the pins outside it (EINVAL); qpin asks the kernel what
 * the threads may use, re-plans the VM inside that (overcommitted: a
 * pool of one CPU), pins it there and says why. */
static void
test_cgroup_cpuset (void)
{
  g_autofree char *smp = g_strdup_printf ("%ld", sysconf (_SC_NPROCESSORS_ONLN));
  const char *qargs[] = { "-smp", smp, "-object", "iothread,id=io0", NULL };
  QpinTestQemu *qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  g_autofree char *online = NULL, *allowed = NULL, *err = NULL, *expect_log = NULL;
  QpinCpuset set;
  QpinTestCgroup *cgroup;

  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL));
  g_assert_true (qpin_cpuset_parse (online, &set, NULL));
  g_assert_cmpuint (qpin_cpuset_count (&set), >=, 2); /* else nothing is forbidden */
  allowed = g_strdup_printf ("%d", qpin_cpuset_last (&set));
  g_assert_true (qpin_cpuset_parse (allowed, &set, NULL));
  cgroup = qpin_test_cgroup_new (allowed);
  qpin_test_cgroup_add (cgroup, qemu->pid);
  {
    const char *args[]
      = { "attach", "--once", "--policy", "overcommit=share", "--json", qemu->qmp_path, NULL };
    g_autoptr (JsonNode) root = attach_json (args, 0, &err);
    JsonObject *vm = json_array_get_object_element (
      json_object_get_array_member (json_node_get_object (root), "vms"), 0);
    g_autofree char *note
      = g_strdup_printf ("its cgroup cpuset allows only cpus %s: planned inside them", allowed);

    g_assert_true (qpin_test_vm_has_note (vm, note));
    g_assert_cmpstr (json_object_get_string_member (vm, "state"), ==, "pinned");
    /* the kernel's view: every thread inside the cgroup's CPU, as reported */
    check_pinned (root, FALSE, &set);
  }
  expect_log = g_strdup_printf ("may only use cpus %s (its cgroup cpuset)", allowed);
  g_assert_nonnull (strstr (err, expect_log));
  /* overcommit=refuse: the vCPUs cannot have a CPU each inside the cgroup;
   * the VM keeps its placement and says why, once */
  {
    const char *args[] = { "attach", "--once", qemu->qmp_path, NULL };
    g_autofree char *out = NULL, *err2 = NULL;
    g_autofree char *why = g_strdup_printf (
      "inside its cgroup cpuset: the new policy does not fit (vm 'pid-%d': needs %s dedicated "
      "cpus, 1 free inside its cpuset %s (cpus %s)); kept the previous placement",
      qemu->pid, smp, allowed, allowed);
    const char *first;

    g_assert_cmpint (qpin_test_run_qpin (args, &out, &err2), ==, 1);
    g_test_message ("stderr: %s", err2);
    first = strstr (err2, why);
    g_assert_nonnull (first);
    g_assert_null (strstr (first + 1, why));
  }
  qpin_test_qemu_free (qemu);
  qpin_test_cgroup_free (cgroup);
}

/* Plan on a two-socket fixture with a recording backend: the real QEMU's
 * guest topology drives the plan; the kernel sees no change. */
static void
test_dry_run_fixture (void)
{
  const char *qargs[] = { "-smp", "8,sockets=1,cores=4,threads=2", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  g_autofree char *fixture = g_test_build_filename (G_TEST_DIST, "fixtures", "2s-8c-2t-2n", NULL);
  const char *args[]
    = { "attach", "--once", "--json", "--dry-run", "--topology", fixture, qemu->qmp_path, NULL };
  g_autoptr (GArray) before = qpin_test_list_tasks (qemu->pid);
  g_autoptr (JsonNode) root = attach_json (args, 0, NULL);
  JsonArray *threads = threads_of (root);
  const char *node = NULL;
  gint64 vcpu_cpu[8];

  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      if (!g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        continue;
      /* one node for the whole VM */
      if (node == NULL)
        node = json_object_get_string_member (t, "node");
      g_assert_cmpstr (json_object_get_string_member (t, "node"), ==, node);
      vcpu_cpu[json_object_get_int_member (t, "index")]
        = g_ascii_strtoll (json_object_get_string_member (t, "cpus"), NULL, 10);
    }
  /* guest SMT siblings (vCPU 2k, 2k+1) on host siblings: in the fixture
   * CPU c and c+16 share a core */
  for (guint k = 0; k < 4; k++)
    g_assert_cmpint (ABS (vcpu_cpu[2 * k] - vcpu_cpu[2 * k + 1]), ==, 16);
  for (guint i = 0; i < before->len; i++)
    {
      g_autofree char *aff = qpin_test_affinity_of (g_array_index (before, GPid, i));
      g_autofree char *online = NULL;
      g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL);
      g_assert_cmpstr (aff, ==, g_strstrip (online));
    }
}

static gboolean
has_exited (gpointer data)
{
  return g_subprocess_get_identifier (((QpinTestQpin *) data)->process) == NULL;
}

/* A dry run on this host tells the truth: state "planned", nothing
 * applied, "actual" the kernel's affinity (untouched: every online CPU);
 * without --once it exits after printing instead of staying attached. */
static void
test_dry_run_live (void)
{
  const char *qargs[] = { "-smp", "2", "-name", "dry,debug-threads=on", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  const char *args[] = { "attach", "--once", "--json", "--dry-run", qemu->qmp_path, NULL };
  const char *stay[] = { "attach", "--dry-run", qemu->qmp_path, NULL };
  g_autoptr (GArray) before = qpin_test_list_tasks (qemu->pid);
  g_autoptr (JsonNode) root = attach_json (args, 0, NULL);
  JsonArray *threads = threads_of (root);
  JsonObject *vm = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "vms"), 0);
  g_autofree char *online = NULL;
  g_autoptr (QpinTestQpin) q = NULL;

  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL));
  g_strstrip (online);
  g_assert_cmpstr (json_object_get_string_member (vm, "state"), ==, "planned");
  qpin_test_assert_threads_untouched (threads, online);
  for (guint i = 0; i < before->len; i++)
    {
      g_autofree char *aff = qpin_test_affinity_of (g_array_index (before, GPid, i));
      g_assert_cmpstr (aff, ==, online);
    }
  /* without --once: prints and exits 0, it does not stay attached */
  q = qpin_test_qpin_spawn (stay);
  g_assert_true (qpin_test_wait_for (has_exited, q, 20000));
  g_assert_cmpint (qpin_test_qpin_wait (q), ==, 0);
}

/* A captured topology is another machine: pinning the live VM on it is
 * refused with one line, before anything is touched. */
static void
test_topology_needs_dry_run (void)
{
  const char *qargs[] = { "-smp", "2", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  g_autofree char *fixture = g_test_build_filename (G_TEST_DIST, "fixtures", "2s-8c-2t-2n", NULL);
  const char *args[] = { "attach", "--once", "--topology", fixture, qemu->qmp_path, NULL };
  g_autoptr (GArray) before = qpin_test_list_tasks (qemu->pid);
  g_autofree char *out = NULL, *err = NULL, *online = NULL;
  g_autofree char *line = g_strdup_printf (
    "qpin attach: --topology '%s' is not this host: use it with --dry-run\n", fixture);

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 2);
  g_assert_cmpstr (err, ==, line);
  g_assert_cmpstr (out, ==, "");
  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL));
  g_strstrip (online);
  for (guint i = 0; i < before->len; i++)
    {
      g_autofree char *aff = qpin_test_affinity_of (g_array_index (before, GPid, i));
      g_assert_cmpstr (aff, ==, online);
    }
}

typedef struct {
  GPid tid;
  const char *want;
} AffinityWait;

static gboolean
affinity_is (gpointer data)
{
  AffinityWait *w = data;
  g_autofree char *aff = qpin_test_affinity_of (w->tid);
  return g_str_equal (aff, w->want);
}

static void
set_affinity (GPid tid, const char *list)
{
  cpu_set_t set;
  g_auto (GStrv) cpus = g_strsplit (list, ",", -1);

  CPU_ZERO (&set);
  for (guint i = 0; cpus[i]; i++)
    CPU_SET (atoi (cpus[i]), &set);
  g_assert_cmpint (sched_setaffinity (tid, sizeof set, &set), ==, 0);
}

static gboolean
affinity_single (gpointer data)
{
  AffinityWait *w = data;
  g_autofree char *aff = qpin_test_affinity_of (w->tid);
  return strchr (aff, '-') == NULL && strchr (aff, ',') == NULL;
}

/* Staying attached: drift is repaired, and qpin exits 0 when QEMU does. */
static void
test_stays_and_repairs (void)
{
  const char *qargs[] = { "-smp", "1", "-name", "stay,debug-threads=on", NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, qargs, TRUE);
  const char *args[] = { "attach", "--interval", "100", qemu->qmp_path, NULL };
  g_autoptr (QpinTestQpin) q = qpin_test_qpin_spawn (args);
  g_autoptr (GArray) vcpus = qpin_test_vcpu_tids (qemu->pid);
  AffinityWait w = { .tid = g_array_index (vcpus, GPid, 0) };
  g_autofree char *pinned = NULL;
  g_autofree char *log = NULL;

  /* first pin: a single CPU */
  g_assert_true (qpin_test_wait_for (affinity_single, &w, 10000));
  pinned = qpin_test_affinity_of (w.tid);
  /* someone else moves it */
  set_affinity (w.tid, g_str_equal (pinned, "0") ? "1" : "0");
  w.want = pinned;
  g_assert_true (qpin_test_wait_for (affinity_is, &w, 10000));
  /* QEMU exits: attach exits 0 */
  g_subprocess_force_exit (qemu->process);
  g_assert_cmpint (qpin_test_qpin_wait (q), ==, 0);
  log = qpin_test_qpin_log (q);
  g_assert_nonnull (strstr (log, "drift: vcpu 0"));
  g_assert_nonnull (strstr (log, "repairing to"));
}

/* A peer that names threads of other processes as its vCPUs (pid 1's and
 * its parent's): attach refuses and touches none of them. */
static void
test_hostile_peer (void)
{
  g_autofree char *script = g_strdup_printf (
    "handshake\n"
    "expect query-name\nsend {\"return\": {\"name\": \"liar\"}, \"id\": $ID}\n"
    "expect query-cpus-fast\nsend {\"return\": [{\"cpu-index\": 0, \"thread-id\": 1, "
    "\"qom-path\": \"/a\"}, {\"cpu-index\": 1, \"thread-id\": %d, \"qom-path\": \"/b\"}], "
    "\"id\": $ID}\n"
    "expect query-iothreads\nsend {\"return\": [], \"id\": $ID}\n",
    getppid ());
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  const char *args[] = { "attach", "--once", qpin_fake_peer_get_path (peer), NULL };
  g_autofree char *init_before = qpin_test_affinity_of (1);
  g_autofree char *parent_before = qpin_test_affinity_of (getppid ());
  g_autofree char *err = NULL;
  g_autofree char *init_after = NULL, *parent_after = NULL;

  g_assert_null (attach_json (args, 1, &err));
  g_assert_nonnull (strstr (err, "refused: vCPU 0 reports thread 1, which is not a vCPU thread"));
  g_assert_nonnull (strstr (err, "reports threads that are not its own"));
  init_after = qpin_test_affinity_of (1);
  parent_after = qpin_test_affinity_of (getppid ());
  g_assert_cmpstr (init_after, ==, init_before);
  g_assert_cmpstr (parent_after, ==, parent_before);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/attach/once-dedicated", test_once_dedicated);
  g_test_add_func ("/attach/once-shared", test_once_shared);
  g_test_add_func ("/attach/cgroup-cpuset", test_cgroup_cpuset);
  g_test_add_func ("/attach/once-sched", test_once_sched);
  g_test_add_func ("/attach/refuse-overcommit", test_refuse_overcommit);
  g_test_add_func ("/attach/dry-run-fixture", test_dry_run_fixture);
  g_test_add_func ("/attach/dry-run-live", test_dry_run_live);
  g_test_add_func ("/attach/topology-needs-dry-run", test_topology_needs_dry_run);
  g_test_add_func ("/attach/stays-and-repairs", test_stays_and_repairs);
  g_test_add_func ("/attach/hostile-peer", test_hostile_peer);
  return g_test_run ();
}
