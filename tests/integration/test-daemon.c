/* test-daemon.c: `qpin daemon` with several real QEMUs, both modes;
 * exclusivity and release checked through /proc */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "qpin-fake-peer.h"
#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"
#include "qpin-test-daemon.h"
#include "qpin-test-host.h"

typedef QpinTestDaemon Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_set_up (f, "qpin-daemon", 0, 0700);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_tear_down (f);
}

/* the daemon answers on its control socket once every socket is bound */
static void
start_daemon (Fixture *f, const char *const *extra)
{
  qpin_test_daemon_start (f, extra);
  g_assert_true (g_file_test (f->listen, G_FILE_TEST_EXISTS));
}

/* Two VMs fill this 2-CPU host with dedicated vCPUs; a third does not
 * fit until one exits, and then gets exactly the freed CPU. */
static void
test_listen_exclusive_and_release (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL;
  g_autoptr (QpinTestQemu) b = NULL;
  g_autoptr (QpinTestQemu) c = NULL;
  g_autofree char *cpu_a = NULL, *cpu_b = NULL, *cpu_c = NULL;

  if (sysconf (_SC_NPROCESSORS_ONLN) != 2)
    g_test_message ("written for 2 CPUs; the 'third does not fit' step adapts");
  start_daemon (f, NULL);
  a = qpin_test_daemon_listen_vm (f, "a", "1");
  b = qpin_test_daemon_listen_vm (f, "b", "1");
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  cpu_a = qpin_test_vcpu_affinity (a->pid);
  cpu_b = qpin_test_vcpu_affinity (b->pid);
  g_assert_cmpstr (cpu_a, !=, cpu_b);
  g_assert_null (strpbrk (cpu_a, ",-"));
  g_assert_null (strpbrk (cpu_b, ",-"));

  c = qpin_test_daemon_watched_vm (f, "c");
  if (sysconf (_SC_NPROCESSORS_ONLN) == 2)
    {
      g_autoptr (JsonNode) status = NULL;
      qpin_test_daemon_wait_vm (f, c->pid, "failed", NULL, 15000);
      status = qpin_test_status (f->control);
      g_assert_nonnull (
        strstr (json_object_get_string_member (qpin_test_find_vm (status, c->pid), "error"),
                "needs 1 dedicated cpu, 0 free"));
      /* a exits: its CPU is free at once; a reload lets c try again */
      g_clear_pointer (&a, qpin_test_qemu_free);
      qpin_test_daemon_wait_vm (f, a ? a->pid : 0, NULL, NULL, 15000);
      {
        const char *args[] = { "reload", "--control", f->control, NULL };
        g_autofree char *out = NULL, *err = NULL;
        g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
      }
      qpin_test_daemon_wait_vm (f, c->pid, "pinned", NULL, 15000);
      cpu_c = qpin_test_vcpu_affinity (c->pid);
      g_assert_cmpstr (cpu_c, ==, cpu_a);
    }
}

/* VMs come and go in both modes; the daemon follows and leaks no fds. */
static void
test_churn (Fixture *f, gconstpointer data)
{
  guint fds_before;

  start_daemon (f, (const char *const[]){ "--policy", "cpus=shared", NULL });
  g_assert_true (qpin_test_wait_for (qpin_test_daemon_no_vms, f, 10000));
  fds_before = qpin_test_settled_fds (f->daemon->pid);
  for (guint round = 0; round < 3; round++)
    {
      g_autoptr (QpinTestQemu) x = qpin_test_daemon_listen_vm (f, "x", "1");
      g_autoptr (QpinTestQemu) y = qpin_test_daemon_watched_vm (f, "y");
      g_autoptr (QpinTestQemu) z = qpin_test_daemon_listen_vm (f, "x", "1"); /* same name as x */

      qpin_test_daemon_wait_vm (f, x->pid, "pinned", NULL, 15000);
      qpin_test_daemon_wait_vm (f, y->pid, "pinned", NULL, 15000);
      qpin_test_daemon_wait_vm (f, z->pid, "pinned", NULL, 15000);
      {
        g_autoptr (JsonNode) status = qpin_test_status (f->control);
        const char *kx = json_object_get_string_member (qpin_test_find_vm (status, x->pid), "key");
        const char *kz = json_object_get_string_member (qpin_test_find_vm (status, z->pid), "key");
        g_assert_cmpstr (kx, !=, kz);
      }
    }
  g_assert_true (qpin_test_wait_for (qpin_test_daemon_no_vms, f, 10000));
  g_assert_cmpuint (qpin_test_settled_fds (f->daemon->pid), ==, fds_before);
}

/* kill -9 of the daemon, restart: running VMs are adopted where they run. */
static void
test_restart_adopts (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL;
  g_autoptr (QpinTestQemu) b = NULL;
  g_autofree char *cpu_a = NULL, *cpu_b = NULL, *after_a = NULL, *after_b = NULL;
  g_autofree char *log = NULL;
  const char *grace[] = { "--grace", "1500", NULL };

  start_daemon (f, NULL);
  a = qpin_test_daemon_listen_vm (f, "a", "1");
  b = qpin_test_daemon_watched_vm (f, "b");
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  cpu_a = qpin_test_vcpu_affinity (a->pid);
  cpu_b = qpin_test_vcpu_affinity (b->pid);

  g_subprocess_send_signal (f->daemon->process, SIGKILL);
  qpin_test_qpin_wait (f->daemon);
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  start_daemon (f, grace);
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  after_a = qpin_test_vcpu_affinity (a->pid);
  after_b = qpin_test_vcpu_affinity (b->pid);
  g_assert_cmpstr (after_a, ==, cpu_a);
  g_assert_cmpstr (after_b, ==, cpu_b);
  log = qpin_test_qpin_log (f->daemon);
  g_assert_nonnull (strstr (log, "vm 'a' (pid"));
  g_assert_nonnull (strstr (log, "adopted its running pins"));
  g_assert_null (strstr (log, "moved)"));
}

typedef struct {
  Fixture *f;
  QpinTestQemu **vms;
  guint n;
} AllPinned;

static gboolean
all_pinned (gpointer data)
{
  AllPinned *w = data;
  g_autoptr (JsonNode) status = qpin_test_status (w->f->control);

  for (guint i = 0; i < w->n; i++)
    {
      JsonObject *vm = qpin_test_find_vm (status, w->vms[i]->pid);
      if (vm == NULL || !g_str_equal (json_object_get_string_member (vm, "state"), "pinned"))
        return FALSE;
    }
  return TRUE;
}

/* kill -9, restart with @ledger_text in the ledger file (NULL: as the
 * daemon left it) and a start-up grace of RESTART_GRACE_MS; returns the
 * ms from the restart until status shows every VM pinned again. */
#define RESTART_GRACE_MS 8000
static double
restart_ms (Fixture *f, QpinTestQemu **vms, guint n, const char *ledger_text)
{
  const char *grace[] = { "--grace", G_STRINGIFY (RESTART_GRACE_MS), NULL };
  AllPinned w = { f, vms, n };
  gint64 t0;

  g_subprocess_send_signal (f->daemon->process, SIGKILL);
  qpin_test_qpin_wait (f->daemon);
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  if (ledger_text)
    {
      g_autofree char *ledger = g_build_filename (f->dir, "ledger.json", NULL);
      g_assert_true (g_file_set_contents (ledger, ledger_text, -1, NULL));
    }
  t0 = g_get_monotonic_time ();
  start_daemon (f, grace);
  g_assert_true (qpin_test_wait_for (all_pinned, &w, RESTART_GRACE_MS + 15000));
  return (g_get_monotonic_time () - t0) / 1000.0;
}

/* kill -9 of the daemon, restart: with the ledger file it left, the
 * watch-mode VMs are managed again at once (no grace period: their CPUs
 * are known from the file), where they ran; with a hostile file (a VM
 * claiming a CPU the host lacks) the file is ignored with one line and
 * the grace period is waited as before, and nothing moves either. */
static void
test_restart_fast (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL;
  g_autoptr (QpinTestQemu) b = NULL;
  g_autofree char *cpu_a = NULL, *cpu_b = NULL, *log = NULL, *hostile = NULL;
  QpinTestQemu *vms[2];
  double fast, slow;

  start_daemon (f, NULL);
  a = qpin_test_daemon_watched_vm (f, "a");
  b = qpin_test_daemon_watched_vm (f, "b");
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  cpu_a = qpin_test_vcpu_affinity (a->pid);
  cpu_b = qpin_test_vcpu_affinity (b->pid);
  vms[0] = a;
  vms[1] = b;

  fast = restart_ms (f, vms, 2, NULL);
  g_test_message ("restart -> 2 watch-mode VMs managed: %.1f ms (ledger file believed)", fast);
  g_printerr ("# restart -> 2 watch-mode VMs managed: %.1f ms (ledger file believed)\n", fast);
  log = qpin_test_qpin_log (f->daemon);
  g_assert_null (strstr (log, "ledger file"));
  g_assert_nonnull (strstr (log, "adopted its running pins"));
  g_assert_null (strstr (log, "moved)"));
  /* a believed ledger means no grace: managed long before the 8 s grace
   * would end (16-23 ms here; under valgrind about 3 s) */
  g_assert_cmpfloat (fast, <, RESTART_GRACE_MS);
  {
    g_autofree char *after_a = qpin_test_vcpu_affinity (a->pid);
    g_autofree char *after_b = qpin_test_vcpu_affinity (b->pid);
    g_assert_cmpstr (after_a, ==, cpu_a);
    g_assert_cmpstr (after_b, ==, cpu_b);
  }

  hostile = g_strdup_printf ("{\"version\": 1, \"vms\": [{\"pid\": %d, \"start\": 1, \"key\": "
                             "\"a\", \"cpus\": \"4095\"}]}",
                             a->pid);
  slow = restart_ms (f, vms, 2, hostile);
  g_printerr ("# restart -> 2 watch-mode VMs managed: %.1f ms (hostile ledger file, grace)\n",
              slow);
  g_clear_pointer (&log, g_free);
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_nonnull (strstr (log, "ledger file ignored: "));
  g_assert_nonnull (strstr (log, "holds cpu 4095, which this host does not have; adopting "
                                 "running VMs by their affinities alone"));
  g_assert_null (strstr (strstr (log, "ledger file ignored: ") + 1, "ledger file ignored: "));
  g_assert_cmpfloat (slow, >=, RESTART_GRACE_MS);
  {
    g_autofree char *after_a = qpin_test_vcpu_affinity (a->pid);
    g_autofree char *after_b = qpin_test_vcpu_affinity (b->pid);
    g_assert_cmpstr (after_a, ==, cpu_a);
    g_assert_cmpstr (after_b, ==, cpu_b);
  }
}

static gboolean
log_has_mute (gpointer data)
{
  Fixture *f = data;
  g_autofree char *log = qpin_test_qpin_log (f->daemon);
  const char *line = strstr (log, "mute.sock': ");

  /* a socket that never greets is logged once and left alone (how it
   * failed, greeting or connect timeout, depends on how loaded we are) */
  return line != NULL && strstr (line, "ignored until it changes") != NULL;
}

/* A fake QEMU in the watched directory that names pid 1's thread and its
 * parent's as its vCPUs, and a socket that is not QMP: refused, logged,
 * shown in status; a real VM beside them is pinned as usual. */
static void
test_hostile_peers (Fixture *f, gconstpointer data)
{
  g_autofree char *liar_path = g_build_filename (f->watch, "liar.sock", NULL);
  g_autofree char *mute_path = g_build_filename (f->watch, "mute.sock", NULL);
  g_autofree char *script = g_strdup_printf (
    "handshake\n"
    "expect query-name\nsend {\"return\": {\"name\": \"liar\"}, \"id\": $ID}\n"
    "expect query-cpus-fast\nsend {\"return\": [{\"cpu-index\": 0, \"thread-id\": 1, "
    "\"qom-path\": \"/a\"}, {\"cpu-index\": 1, \"thread-id\": %d, \"qom-path\": \"/b\"}], "
    "\"id\": $ID}\n"
    "expect query-iothreads\nsend {\"return\": [], \"id\": $ID}\n"
    "stall\n",
    getppid ());
  g_autofree char *init_before = qpin_test_affinity_of (1);
  g_autofree char *parent_before = qpin_test_affinity_of (getppid ());
  g_autofree char *init_after = NULL, *parent_after = NULL, *log = NULL;
  g_autoptr (QpinFakePeer) mute = NULL;
  g_autoptr (QpinFakePeer) liar = NULL;
  g_autoptr (QpinTestQemu) good = NULL;
  g_autoptr (JsonNode) status = NULL;
  JsonObject *vm;

  /* one discovery: the fake peer answers one round of queries */
  start_daemon (f, (const char *const[]){ "--timeout", "10000", "--interval", "0", NULL });
  mute = qpin_fake_peer_new_at (mute_path, "stall\n");
  liar = qpin_fake_peer_new_at (liar_path, script);
  good = qpin_test_daemon_watched_vm (f, "good");
  qpin_test_daemon_wait_vm (f, getpid (), "failed", NULL, 15000);
  qpin_test_daemon_wait_vm (f, good->pid, "pinned", NULL, 15000);
  status = qpin_test_status (f->control);
  vm = qpin_test_find_vm (status, getpid ());
  g_test_message ("liar: %s", json_object_get_string_member (vm, "error"));
  g_assert_cmpstr (json_object_get_string_member (vm, "name"), ==, "liar");
  g_assert_nonnull (
    strstr (json_object_get_string_member (vm, "error"), "reports threads that are not its own"));
  init_after = qpin_test_affinity_of (1);
  parent_after = qpin_test_affinity_of (getppid ());
  g_assert_cmpstr (init_after, ==, init_before);
  g_assert_cmpstr (parent_after, ==, parent_before);
  g_assert_true (qpin_test_wait_for (log_has_mute, f, 60000));
  log = qpin_test_qpin_log (f->daemon);
  g_assert_nonnull (strstr (log, "refused: vCPU 0 reports thread 1"));
  /* the daemon is alive and answers */
  g_assert_true (qpin_test_wait_daemon (f->control, 0));
  /* the fake peers end when the daemon hangs up */
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  g_assert_true (qpin_fake_peer_finish (liar, NULL));
  g_assert_true (qpin_fake_peer_finish (mute, NULL));
}

/* A fake QEMU in the watched directory whose query-name reply hides
 * 200,000 '[' behind a comment holding a quote: json-glib recursed once
 * per '[' and the daemon died of it, silently, taking every VM's
 * management with it.  Now that peer is dropped with the reason logged,
 * and the daemon pins a real VM beside it and answers. */
static void
test_hidden_nesting (Fixture *f, gconstpointer data)
{
  g_autofree char *deep_path = g_build_filename (f->watch, "deep.sock", NULL);
  g_autoptr (GString) script
    = g_string_new ("handshake\nexpect query-name\nsendraw {\"return\": /*\"*/");
  g_autoptr (QpinFakePeer) deep = NULL;
  g_autoptr (QpinTestQemu) good = NULL;

  for (guint i = 0; i < 200000; i++)
    g_string_append_c (script, '[');
  g_string_append (script, "\\r\\n\nstall\n");
  start_daemon (f, (const char *const[]){ "--timeout", "10000", "--interval", "0", NULL });
  deep = qpin_fake_peer_new_at (deep_path, script->str);
  good = qpin_test_daemon_watched_vm (f, "good");
  qpin_test_daemon_wait_log (
    f, "bad message from peer: not JSON: unexpected character '/' at offset 11", 60000);
  qpin_test_daemon_wait_vm (f, good->pid, "pinned", NULL, 15000);
  g_assert_true (qpin_test_wait_daemon (f->control, 0));
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  g_assert_true (qpin_fake_peer_finish (deep, NULL));
}

/* The control socket: 0600, and a bad request gets a clear answer. */
static void
test_control_socket (Fixture *f, gconstpointer data)
{
  GStatBuf st;
  const char *bad[] = { "reload", "--control", f->control, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *conf = g_build_filename (f->dir, "qpin.conf", NULL);
  const char *args[] = { "--config", conf, NULL };

  g_assert_true (g_file_set_contents (conf, "[defaults]\ncpus = shared\n", -1, NULL));
  start_daemon (f, args);
  g_assert_cmpint (g_stat (f->control, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (f->listen, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  /* a config that no longer parses: reload fails, the daemon keeps going */
  g_assert_true (g_file_set_contents (conf, "[defaults]\ncpus = sometimes\n", -1, NULL));
  g_assert_cmpint (qpin_test_run_qpin (bad, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "sometimes"));
  g_assert_true (qpin_test_wait_daemon (f->control, 0));
  /* the config replaced by a FIFO: refused at once (it used to block the
   * daemon in open(), waiting for a writer), the daemon keeps going */
  g_unlink (conf);
  g_assert_cmpint (mkfifo (conf, 0600), ==, 0);
  {
    g_autofree char *out2 = NULL, *err2 = NULL;
    g_autofree char *expected
      = g_strdup_printf ("qpin reload: %s: not a regular file (a FIFO): refused\n", conf);
    g_assert_cmpint (qpin_test_run_qpin (bad, &out2, &err2), ==, 1);
    g_assert_cmpstr (err2, ==, expected);
  }
  g_assert_true (qpin_test_wait_daemon (f->control, 0));
  g_unlink (conf);
}

/* A running, pinned VM is moved into a cpuset cgroup that forbids its
 * CPU: the kernel moves its threads, the daemon's repair is refused
 * (EINVAL), and the daemon re-plans the VM inside the cgroup's CPUs and
 * says so in status. */
static void
test_cgroup_moves_vm (Fixture *f, gconstpointer data)
{
  QpinTestQemu *vm = NULL;
  QpinTestCgroup *cgroup;
  g_autofree char *before = NULL, *allowed = NULL, *note = NULL, *after = NULL;
  QpinCpuset online, set;
  g_autofree char *online_text = NULL;

  start_daemon (f, NULL);
  vm = qpin_test_daemon_watched_vm (f, "cg");
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  before = qpin_test_vcpu_affinity (vm->pid);
  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/online", &online_text, NULL, NULL));
  g_assert_true (qpin_cpuset_parse (online_text, &online, NULL));
  g_assert_true (qpin_cpuset_parse (before, &set, NULL));
  qpin_cpuset_andnot (&online, &set);
  g_assert_false (qpin_cpuset_is_empty (&online)); /* needs a second CPU */
  allowed = g_strdup_printf ("%d", qpin_cpuset_first (&online));
  cgroup = qpin_test_cgroup_new (allowed);
  qpin_test_cgroup_add (cgroup, vm->pid);
  note = g_strdup_printf ("its cgroup cpuset allows only cpus %s: planned inside them", allowed);
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", note, 15000);
  {
    const char *args[] = { "status", "--control", f->control, NULL };
    g_autofree char *out = NULL, *err = NULL;
    g_autofree char *line = g_strdup_printf ("%-16s %7d note: %s\n", "cg", vm->pid, note);

    g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
    g_assert_nonnull (strstr (out, line));
  }
  after = qpin_test_vcpu_affinity (vm->pid);
  g_assert_cmpstr (after, ==, allowed);
  {
    g_autofree char *log = qpin_test_qpin_log (f->daemon);
    g_autofree char *why = g_strdup_printf ("may only use cpus %s (its cgroup cpuset)", allowed);
    g_test_message ("daemon log:\n%s", log);
    g_assert_nonnull (strstr (log, why));
  }
  qpin_test_qemu_free (vm);
  qpin_test_cgroup_free (cgroup);
}

typedef struct {
  GPid pid;
  guint n;
  char *affinities; /* "0 1": the vCPUs' affinities in TID order */
} VcpuWait;

static gboolean
vcpus_pinned (gpointer data)
{
  VcpuWait *w = data;
  g_autoptr (GArray) tids = qpin_test_vcpu_tids (w->pid);
  g_autoptr (GString) s = g_string_new (NULL);

  if (tids->len != w->n)
    return FALSE;
  for (guint i = 0; i < tids->len; i++)
    {
      g_autofree char *a = qpin_test_affinity_of (g_array_index (tids, GPid, i));
      g_string_append_printf (s, "%s%s", i ? " " : "", a);
    }
  g_free (w->affinities);
  w->affinities = g_strdup (s->str);
  return TRUE;
}

/* 2 CPUs: dedicated 'ded' holds one, shared 'sh' floats on the other.  A
 * foreign hot-add gives ded a second vCPU; taking sh's CPU would empty the
 * shared pool, so the daemon refuses it and status says which VM waits
 * for what, while sh stays on its CPU.  Once sh exits, the waiting vCPU
 * gets that CPU and the note goes. */
static void
test_shared_pool_kept (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) ded = NULL;
  QpinTestQemu *sh = NULL;
  g_autofree char *conf = g_build_filename (f->dir, "qpin.conf", NULL);
  const char *extra[] = { "--config", conf, NULL };
  g_autofree char *cpu_ded = NULL, *cpu_sh = NULL, *note = NULL, *line = NULL;
  VcpuWait w = { 0 };

  if (sysconf (_SC_NPROCESSORS_ONLN) != 2)
    {
      g_test_skip ("needs a host with exactly 2 online CPUs");
      return;
    }
  g_assert_true (
    g_file_set_contents (conf, "[vm:ded]\ncpus = dedicated\n[vm:sh]\ncpus = shared\n", -1, NULL));
  start_daemon (f, extra);
  ded = qpin_test_daemon_listen_vm (f, "ded", "1,maxcpus=2");
  qpin_test_daemon_wait_vm (f, ded->pid, "pinned", NULL, 15000);
  sh = qpin_test_daemon_listen_vm (f, "sh", "1");
  qpin_test_daemon_wait_vm (f, sh->pid, "pinned", NULL, 15000);
  cpu_ded = qpin_test_vcpu_affinity (ded->pid);
  cpu_sh = qpin_test_vcpu_affinity (sh->pid);
  g_assert_null (strpbrk (cpu_ded, ",-"));
  g_assert_null (strpbrk (cpu_sh, ",-"));
  g_assert_cmpstr (cpu_ded, !=, cpu_sh);

  qpin_test_qemu_add_vcpus (ded->qmp_path, 1);
  note = g_strdup_printf ("waiting: vcpu 1 has no cpu (vm 'ded': vcpu 1 needs 1 dedicated cpu, 1 "
                          "free on the host (cpus %s), but 1 must stay in the shared pool for vm "
                          "'sh')",
                          cpu_sh);
  qpin_test_daemon_wait_vm (f, ded->pid, "degraded", note, 15000);
  {
    const char *args[] = { "status", "--control", f->control, NULL };
    g_autofree char *out = NULL, *err = NULL;

    line = g_strdup_printf ("%-16s %7d note: %s\n", "ded", ded->pid, note);
    g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 0);
    g_assert_nonnull (strstr (out, line));
  }
  /* the shared VM never lands on the dedicated CPU, the kernel says */
  {
    g_autoptr (GArray) tids = qpin_test_list_tasks (sh->pid);
    for (guint i = 0; i < tids->len; i++)
      {
        g_autofree char *a = qpin_test_affinity_of (g_array_index (tids, GPid, i));
        g_assert_cmpstr (a, ==, cpu_sh);
      }
  }
  {
    g_autofree char *still = qpin_test_vcpu_affinity (sh->pid);
    g_assert_cmpstr (still, ==, cpu_sh);
  }

  /* sh exits: the pool has no user left, the waiting vCPU takes the CPU */
  w.pid = ded->pid;
  w.n = 2;
  qpin_test_qemu_free (sh);
  {
    g_autofree char *want = g_strdup_printf ("%s %s", cpu_ded, cpu_sh);
    g_autofree char *log = NULL;
    gboolean ok = FALSE;
    for (guint tries = 0; tries < 150 && !ok; tries++)
      {
        ok = vcpus_pinned (&w) && g_str_equal (w.affinities, want);
        if (!ok)
          g_usleep (100000);
      }
    if (!ok)
      {
        log = qpin_test_qpin_log (f->daemon);
        g_test_message ("daemon log:\n%s\nvcpus: %s", log, w.affinities);
      }
    g_assert_true (ok);
  }
  {
    g_autoptr (JsonNode) status = qpin_test_status (f->control);
    JsonObject *vm = qpin_test_find_vm (status, ded->pid);
    g_assert_nonnull (vm);
    g_assert_false (qpin_test_vm_has_note (vm, note));
  }
  g_free (w.affinities);
  g_unlink (conf);
}

/* A captured topology without --dry-run: the daemon refuses to start,
 * with one line, instead of pinning live VMs on another machine's CPUs. */
static void
test_topology_needs_dry_run (Fixture *f, gconstpointer data)
{
  g_autofree char *fixture = g_test_build_filename (G_TEST_DIST, "fixtures", "2s-8c-2t-2n", NULL);
  const char *args[] = { "daemon", "--no-listen", "--control", f->control, "--watch",
                         f->watch, "--topology",  fixture,     NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *line = g_strdup_printf (
    "qpin daemon: --topology '%s' is not this host: use it with --dry-run\n", fixture);

  g_assert_cmpint (qpin_test_run_qpin (args, &out, &err), ==, 2);
  g_assert_cmpstr (err, ==, line);
  g_assert_false (g_file_test (f->control, G_FILE_TEST_EXISTS));
}

/* Every thread of every placed VM in status: "actual" is what the
 * kernel has, and it is the plan. */
static gboolean
status_is_truth (gpointer data)
{
  Fixture *f = data;
  g_autoptr (JsonNode) status = qpin_test_status (f->control);
  JsonArray *vms;

  if (status == NULL)
    return FALSE;
  vms = json_object_get_array_member (json_node_get_object (status), "vms");
  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);
      JsonArray *threads = json_object_get_array_member (vm, "threads");

      if (g_str_equal (json_object_get_string_member (vm, "state"), "failed"))
        continue; /* nothing planned */
      for (guint j = 0; j < json_array_get_length (threads); j++)
        {
          JsonObject *t = json_array_get_object_element (threads, j);
          g_autofree char *kernel
            = qpin_test_affinity_of ((GPid) json_object_get_int_member (t, "tid"));

          if (!g_str_equal (kernel, json_object_get_string_member (t, "actual"))
              || !g_str_equal (kernel, json_object_get_string_member (t, "cpus"))
              || !json_object_get_boolean_member (t, "applied"))
            return FALSE;
        }
    }
  return TRUE;
}

static void
wait_truth (Fixture *f)
{
  g_autofree char *log = NULL;

  if (qpin_test_wait_for (status_is_truth, f, 15000))
    return;
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_not_reached ();
}

/* Does the VM carry a note starting with "degraded:"? */
static gboolean
vm_degraded_note (Fixture *f, GPid pid)
{
  g_autoptr (JsonNode) status = qpin_test_status (f->control);
  JsonObject *vm = qpin_test_find_vm (status, pid);
  JsonArray *notes = json_object_get_array_member (vm, "notes");

  for (guint i = 0; notes && i < json_array_get_length (notes); i++)
    if (g_str_has_prefix (json_array_get_string_element (notes, i), "degraded:"))
      return TRUE;
  return FALSE;
}

/* Two VMs fill the host; CPU 1 goes offline and comes back, with no
 * reconcile timer (--interval 0).  The kernel changes the affinity of the
 * threads it moved, some time after the event; status must show the
 * kernel's affinity and the daemon must re-pin to it, both ways.  Once
 * CPU 1 is back the VM that lost it is whole again on it, its degraded
 * note gone, and the log says what moved and why. */
static void
test_cpu_offline_online (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL;
  g_autoptr (QpinTestQemu) b = NULL;
  g_autofree char *cpu_a = NULL, *cpu_b = NULL, *log = NULL;
  QpinTestQemu *on1;

  if (!qpin_test_cpu1_hotplug_begin (FALSE))
    return;
  start_daemon (f, (const char *const[]){ "--interval", "0", NULL });
  a = qpin_test_daemon_watched_vm (f, "a");
  b = qpin_test_daemon_watched_vm (f, "b");
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  cpu_a = qpin_test_vcpu_affinity (a->pid);
  cpu_b = qpin_test_vcpu_affinity (b->pid);
  on1 = g_str_equal (cpu_a, "1") ? a : b;
  g_assert_cmpstr (g_str_equal (cpu_a, "1") ? cpu_b : cpu_a, ==, "0");

  qpin_test_cpu1_set_online (FALSE);
  g_usleep (1500 * 1000); /* the kernel's own moves come after the event */
  wait_truth (f);
  g_assert_true (vm_degraded_note (f, on1->pid));

  qpin_test_cpu1_set_online (TRUE);
  g_usleep (1500 * 1000);
  wait_truth (f);
  qpin_test_daemon_wait_vm (f, on1->pid, "pinned", NULL, 15000);
  g_assert_false (vm_degraded_note (f, on1->pid));
  {
    g_autofree char *now_a = qpin_test_vcpu_affinity (a->pid);
    g_autofree char *now_b = qpin_test_vcpu_affinity (b->pid);
    g_assert_cmpstr (now_a, ==, cpu_a);
    g_assert_cmpstr (now_b, ==, cpu_b);
  }
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_nonnull (strstr (log, "host CPU 1 went offline: re-placing the threads that used it"));
  g_assert_nonnull (strstr (log, "host CPU 1 is online:"));
  g_assert_null (strstr (log, "nothing moved back"));
  g_assert_nonnull (strstr (log, "whole again"));
}

/* A VM degraded by a lost CPU (vCPU 1 floats beside vCPU 0) survives a
 * kill -9 and restart of the daemon: it keeps the CPU it holds (another
 * VM cannot take it) and says it is degraded; when the CPU comes back it
 * is whole again. */
static void
test_restart_keeps_degraded (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) x = NULL;
  g_autoptr (QpinTestQemu) z = NULL;
  g_autoptr (GArray) vcpus = NULL;
  g_autofree char *vcpu0 = NULL;
  g_autofree char *qmp = NULL;
  const char *grace[] = { "--grace", "1500", "--interval", "0", NULL };

  if (!qpin_test_cpu1_hotplug_begin (FALSE))
    return;
  start_daemon (f, (const char *const[]){ "--interval", "0", NULL });
  qmp = g_strdup_printf ("unix:%s/x.sock,server=on,wait=off", f->watch);
  x = qpin_test_qemu_start (
    NULL, (const char *const[]){ "-smp", "2", "-name", "x,debug-threads=on", "-qmp", qmp, NULL },
    FALSE);
  qpin_test_daemon_wait_vm (f, x->pid, "pinned", NULL, 15000);
  vcpus = qpin_test_vcpu_tids (x->pid);
  g_assert_cmpuint (vcpus->len, ==, 2);

  qpin_test_cpu1_set_online (FALSE);
  g_usleep (1500 * 1000);
  wait_truth (f);
  g_assert_true (vm_degraded_note (f, x->pid));
  vcpu0 = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
  g_assert_cmpstr (vcpu0, ==, "0");

  g_subprocess_send_signal (f->daemon->process, SIGKILL);
  qpin_test_qpin_wait (f->daemon);
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  start_daemon (f, grace);
  g_usleep (2000 * 1000); /* the grace */
  wait_truth (f);
  qpin_test_daemon_wait_vm (f, x->pid, "pinned", NULL, 15000);
  g_assert_true (vm_degraded_note (f, x->pid));
  {
    g_autofree char *after = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
    g_assert_cmpstr (after, ==, "0");
  }
  /* CPU 0 is still x's: a newcomer does not get it */
  z = qpin_test_daemon_watched_vm (f, "z");
  qpin_test_daemon_wait_vm (f, z->pid, "failed", NULL, 15000);

  qpin_test_cpu1_set_online (TRUE);
  g_usleep (1500 * 1000);
  qpin_test_daemon_wait_vm (f, x->pid, "pinned", NULL, 15000);
  wait_truth (f);
  g_assert_false (vm_degraded_note (f, x->pid));
  {
    g_autofree char *c0 = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
    g_autofree char *c1 = qpin_test_affinity_of (g_array_index (vcpus, GPid, 1));
    g_assert_cmpstr (c0, ==, "0");
    g_assert_cmpstr (c1, ==, "1");
  }
  {
    g_autofree char *log = qpin_test_qpin_log (f->daemon);
    g_test_message ("daemon log:\n%s", log);
    g_assert_nonnull (strstr (log, "adopted its running pins, degraded: vcpu 1"));
    g_assert_nonnull (strstr (log, "vm 'x': whole again now that host CPU 1 is back"));
  }
}

/* Two one-vCPU VMs fill the host; CPU 1 goes offline and the VM on it
 * floats on CPU 0 beside the other's vCPU: both run on CPU 0 alone, and
 * the kernel cannot tell whose it is.  After kill -9 and a restart the
 * daemon's ledger file does: the owner keeps CPU 0 (pinned, whole), the
 * other is adopted degraded; when CPU 1 is back it is whole again there. */
static void
test_restart_keeps_owner (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL;
  g_autoptr (QpinTestQemu) b = NULL;
  g_autofree char *cpu_a = NULL, *log = NULL;
  const char *grace[] = { "--grace", "1500", "--interval", "0", NULL };
  QpinTestQemu *owner, *floater;

  if (!qpin_test_cpu1_hotplug_begin (FALSE))
    return;
  start_daemon (f, (const char *const[]){ "--interval", "0", NULL });
  a = qpin_test_daemon_watched_vm (f, "a");
  b = qpin_test_daemon_watched_vm (f, "b");
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  cpu_a = qpin_test_vcpu_affinity (a->pid);
  owner = g_str_equal (cpu_a, "0") ? a : b;
  floater = owner == a ? b : a;

  qpin_test_cpu1_set_online (FALSE);
  g_usleep (1500 * 1000);
  wait_truth (f);
  g_assert_true (vm_degraded_note (f, floater->pid));
  g_assert_false (vm_degraded_note (f, owner->pid));

  g_subprocess_send_signal (f->daemon->process, SIGKILL);
  qpin_test_qpin_wait (f->daemon);
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  start_daemon (f, grace);
  g_usleep (2000 * 1000); /* the grace */
  qpin_test_daemon_wait_vm (f, owner->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, floater->pid, "pinned", NULL, 15000);
  wait_truth (f);
  g_assert_false (vm_degraded_note (f, owner->pid));
  g_assert_true (vm_degraded_note (f, floater->pid));

  qpin_test_cpu1_set_online (TRUE);
  g_usleep (1500 * 1000);
  wait_truth (f);
  g_assert_false (vm_degraded_note (f, floater->pid));
  {
    g_autofree char *o = qpin_test_vcpu_affinity (owner->pid);
    g_autofree char *x = qpin_test_vcpu_affinity (floater->pid);
    g_assert_cmpstr (o, ==, "0");
    g_assert_cmpstr (x, ==, "1");
  }
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_nonnull (strstr (log, "adopted its running pins, degraded: vcpu 0"));
}

static void
set_affinity (GPid tid, guint cpu)
{
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  g_assert_cmpint (sched_setaffinity (tid, sizeof set, &set), ==, 0);
}

/* With no reconcile timer, someone moves a pinned vCPU: the next status
 * shows the kernel's affinity (not the one qpin remembers), calls the VM
 * degraded with the reason, and the daemon looks and pins it back. */
static void
test_status_reads_kernel (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autoptr (GArray) vcpus = NULL;
  g_autoptr (JsonNode) status = NULL;
  g_autofree char *pinned = NULL, *moved = NULL;
  JsonObject *o;
  JsonArray *threads;
  guint other;

  start_daemon (f, (const char *const[]){ "--interval", "0", NULL });
  vm = qpin_test_daemon_watched_vm (f, "k");
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  vcpus = qpin_test_vcpu_tids (vm->pid);
  pinned = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
  other = g_str_equal (pinned, "0") ? 1 : 0;
  set_affinity (g_array_index (vcpus, GPid, 0), other);
  moved = g_strdup_printf ("%u", other);

  status = qpin_test_status (f->control);
  o = qpin_test_find_vm (status, vm->pid);
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "degraded");
  g_assert_cmpstr (json_object_get_string_member (o, "error"), ==,
                   "1 thread(s) found off their verified pins: looking again");
  threads = json_object_get_array_member (o, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      if (json_object_get_int_member (t, "tid") != g_array_index (vcpus, GPid, 0))
        continue;
      g_assert_cmpstr (json_object_get_string_member (t, "actual"), ==, moved);
      g_assert_cmpstr (json_object_get_string_member (t, "cpus"), ==, pinned);
      g_assert_false (json_object_get_boolean_member (t, "applied"));
    }
  /* looked at again at once: pinned back, no timer needed */
  qpin_test_daemon_wait_vm (f, vm->pid, "pinned", NULL, 15000);
  wait_truth (f);
  {
    g_autofree char *now = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
    g_assert_cmpstr (now, ==, pinned);
  }
}

/* The daemon's dry run: VMs are "planned", nothing applied, and status
 * shows the kernel's untouched affinity. */
static void
test_dry_run_planned (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) vm = NULL;
  g_autoptr (JsonNode) status = NULL;
  g_autofree char *online = NULL;
  JsonArray *threads;

  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/online", &online, NULL, NULL));
  g_strstrip (online);
  start_daemon (f, (const char *const[]){ "--dry-run", NULL });
  vm = qpin_test_daemon_watched_vm (f, "dry");
  qpin_test_daemon_wait_vm (f, vm->pid, "planned", NULL, 15000);
  status = qpin_test_status (f->control);
  threads = json_object_get_array_member (qpin_test_find_vm (status, vm->pid), "threads");
  qpin_test_assert_threads_untouched (threads, online);
}

typedef struct {
  Fixture *f;
  GPid pid;
} VmWait;

static gboolean
degraded_note_gone (gpointer data)
{
  VmWait *w = data;
  return !vm_degraded_note (w->f, w->pid);
}

/* CPU 1 goes offline: the VM on it floats beside the other on CPU 0
 * (degraded).  The other VM exits: its CPU is free, and the degraded VM
 * is whole again on it at once, its note gone. */
static void
test_degraded_whole_when_vm_leaves (Fixture *f, gconstpointer data)
{
  g_autoptr (QpinTestQemu) a = NULL;
  g_autoptr (QpinTestQemu) b = NULL;
  g_autofree char *cpu_a = NULL, *log = NULL;
  QpinTestQemu **owner, **floater;
  VmWait w = { f };

  if (!qpin_test_cpu1_hotplug_begin (FALSE))
    return;
  start_daemon (f, (const char *const[]){ "--interval", "0", NULL });
  a = qpin_test_daemon_watched_vm (f, "a");
  b = qpin_test_daemon_watched_vm (f, "b");
  qpin_test_daemon_wait_vm (f, a->pid, "pinned", NULL, 15000);
  qpin_test_daemon_wait_vm (f, b->pid, "pinned", NULL, 15000);
  cpu_a = qpin_test_vcpu_affinity (a->pid);
  owner = g_str_equal (cpu_a, "0") ? &a : &b;
  floater = owner == &a ? &b : &a;

  qpin_test_cpu1_set_online (FALSE);
  g_usleep (1500 * 1000);
  wait_truth (f);
  g_assert_true (vm_degraded_note (f, (*floater)->pid));

  g_clear_pointer (owner, qpin_test_qemu_free);
  w.pid = (*floater)->pid;
  g_assert_true (qpin_test_wait_for (degraded_note_gone, &w, 15000));
  qpin_test_daemon_wait_vm (f, (*floater)->pid, "pinned", NULL, 15000);
  wait_truth (f);
  log = qpin_test_qpin_log (f->daemon);
  g_test_message ("daemon log:\n%s", log);
  g_assert_nonnull (strstr (log, "whole again now that a VM left its CPUs"));
  qpin_test_cpu1_set_online (TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/daemon/listen-exclusive-and-release", Fixture, NULL, fixture_set_up,
              test_listen_exclusive_and_release, fixture_tear_down);
  g_test_add ("/daemon/churn", Fixture, NULL, fixture_set_up, test_churn, fixture_tear_down);
  g_test_add ("/daemon/shared-pool-kept", Fixture, NULL, fixture_set_up, test_shared_pool_kept,
              fixture_tear_down);
  g_test_add ("/daemon/cgroup-moves-vm", Fixture, NULL, fixture_set_up, test_cgroup_moves_vm,
              fixture_tear_down);
  g_test_add ("/daemon/restart-adopts", Fixture, NULL, fixture_set_up, test_restart_adopts,
              fixture_tear_down);
  g_test_add ("/daemon/restart-fast", Fixture, NULL, fixture_set_up, test_restart_fast,
              fixture_tear_down);
  g_test_add ("/daemon/hostile-peers", Fixture, NULL, fixture_set_up, test_hostile_peers,
              fixture_tear_down);
  g_test_add ("/daemon/topology-needs-dry-run", Fixture, NULL, fixture_set_up,
              test_topology_needs_dry_run, fixture_tear_down);
  g_test_add ("/daemon/cpu-offline-online", Fixture, NULL, fixture_set_up, test_cpu_offline_online,
              fixture_tear_down);
  g_test_add ("/daemon/restart-keeps-degraded", Fixture, NULL, fixture_set_up,
              test_restart_keeps_degraded, fixture_tear_down);
  g_test_add ("/daemon/restart-keeps-owner", Fixture, NULL, fixture_set_up,
              test_restart_keeps_owner, fixture_tear_down);
  g_test_add ("/daemon/status-reads-kernel", Fixture, NULL, fixture_set_up,
              test_status_reads_kernel, fixture_tear_down);
  g_test_add ("/daemon/dry-run-planned", Fixture, NULL, fixture_set_up, test_dry_run_planned,
              fixture_tear_down);
  g_test_add ("/daemon/degraded-whole-when-vm-leaves", Fixture, NULL, fixture_set_up,
              test_degraded_whole_when_vm_leaves, fixture_tear_down);
  g_test_add ("/daemon/control-socket", Fixture, NULL, fixture_set_up, test_control_socket,
              fixture_tear_down);
  g_test_add ("/daemon/hidden-nesting", Fixture, NULL, fixture_set_up, test_hidden_nesting,
              fixture_tear_down);
  return g_test_run ();
}
