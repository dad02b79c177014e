/* test-registry.c: the registry driven by scripted QMP peers on a recording host
 *
 * No QEMU, no root: each VM is a fake QMP peer (tests/qmp/qpin-fake-peer.c)
 * whose script is every exchange the registry has with it, and a process
 * in the recording host (pinner/qpin-host-recording.c), whose threads
 * keep their affinity in memory.  VM N has pid N, its vCPU k thread N+1+k.
 * The host is tests/fixtures/1n-4c8t: one node, cores {0,4} {1,5} {2,6}
 * {3,7}; "reserved = 0,4" keeps core 0 for the emulators, and with
 * smt = isolate each dedicated vCPU takes a whole core (its first
 * thread; the sibling stays idle): three vCPUs fit, on CPUs 1, 2, 3.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-fake-peer.h"
#include "qpin-host-recording.h"
#include "qpin-json.h"
#include "qpin-registry-metrics.h"
#include "qpin-registry-private.h"
#include "qpin-topology-reader.h"

#define CONFIG "[defaults]\nreserved = 0,4\nsmt = isolate\nemulator = housekeeping\n"

typedef struct {
  QpinRegistry *registry;
  QpinHost *host; /* the registry's, or under it in a dry run */
  QpinHost *dry;  /* a dry run's host, over @host */
  GPtrArray *peers;
  guint settled, gone;
  GString *warnings; /* every g_warning, one line each */
  GString *messages; /* every g_message */
} Fixture;

static Fixture *current;

static void
capture (const char *domain, GLogLevelFlags level, const char *message, gpointer user_data)
{
  if (current && (level & G_LOG_LEVEL_WARNING))
    g_string_append_printf (current->warnings, "%s\n", message);
  else if (current && (level & G_LOG_LEVEL_MESSAGE))
    g_string_append_printf (current->messages, "%s\n", message);
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    g_error ("%s: %s", domain, message);
  if (g_test_verbose () && (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE)))
    g_printerr ("%s: %s\n", domain ? domain : "", message);
}

static void
on_settled (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  ((Fixture *) user_data)->settled++;
}

static void
on_gone (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  ((Fixture *) user_data)->gone++;
}

static QpinConfig *
config_of (const char *text)
{
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (qpin_config_load_data (config, text, "test.conf", &error));
  g_assert_no_error (error);
  return g_steal_pointer (&config);
}

static void
fixture_start (Fixture *f, const char *config, QpinEnforce enforce)
{
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "fixtures", "1n-4c8t", NULL);
  g_autoptr (GError) error = NULL;
  QpinRegistryOptions options = { .timeout_ms = 2000, .enforce = enforce };
  QpinTopology *topo = qpin_topology_read (root, NULL, &error);

  g_assert_no_error (error);
  f->host = qpin_host_recording_new (NULL);
  qpin_host_recording_set_topology_root (f->host, root);
  f->registry = qpin_registry_new_with_host (topo, config_of (config), &options, f->host, &error);
  g_assert_no_error (error);
  qpin_registry_set_hooks (f->registry, on_settled, on_gone, f);
  qpin_registry_set_recheck (f->registry, 5, 1);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->peers = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_fake_peer_free);
  f->warnings = g_string_new (NULL);
  f->messages = g_string_new (NULL);
  current = f;
  fixture_start (f, data ? data : CONFIG, QPIN_ENFORCE_REPAIR);
}

/* Every peer's script ran as written, and no warning went unasserted. */
static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->registry, qpin_registry_free);
  for (guint i = 0; i < f->peers->len; i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_true (qpin_fake_peer_finish (g_ptr_array_index (f->peers, i), &error));
      g_assert_no_error (error);
    }
  g_ptr_array_unref (f->peers);
  g_assert_cmpstr (f->warnings->str, ==, "");
  g_string_free (f->warnings, TRUE);
  g_string_free (f->messages, TRUE);
  current = NULL;
}

static void
assert_warnings (Fixture *f, const char *expected)
{
  g_assert_cmpstr (f->warnings->str, ==, expected);
  g_string_truncate (f->warnings, 0);
}

static void
assert_message (Fixture *f, const char *line)
{
  g_autofree char *with_nl = g_strdup_printf ("%s\n", line);

  if (strstr (f->messages->str, with_nl) == NULL)
    g_error ("no message '%s' in:\n%s", line, f->messages->str);
}

static gboolean
on_deadline (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until *@counter reaches @n; fails after 2 s. */
static void
wait_count (guint *counter, guint n)
{
  gboolean late = FALSE;
  guint id = g_timeout_add (2000, on_deadline, &late);

  while (*counter < n && !late)
    g_main_context_iteration (NULL, TRUE);
  if (!late)
    g_source_remove (id);
  g_assert_cmpuint (*counter, >=, n);
}

/* A query-cpus-fast answer for @n vCPUs of process @pid, one core each. */
static char *
cpus_reply (GPid pid, guint n)
{
  GString *s = g_string_new ("send {\"return\": [");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (s,
                            "%s{\"cpu-index\": %u, \"thread-id\": %d, \"qom-path\": "
                            "\"/machine/unattached/device[%u]\", \"target\": \"x86_64\", "
                            "\"props\": {\"socket-id\": 0, \"core-id\": %u, \"thread-id\": 0}}",
                            i ? ", " : "", i, pid + 1 + (GPid) i, i, i);
  g_string_append (s, "], \"id\": $ID}\n");
  return g_string_free (s, FALSE);
}

/* One discovery: query-name the first time, then the vCPUs and iothreads. */
static char *
round_of (GPid pid, guint n, const char *name)
{
  g_autofree char *cpus = cpus_reply (pid, n);

  return g_strdup_printf ("%s%s%s%sexpect query-cpus-fast\n%sexpect query-iothreads\n"
                          "send {\"return\": [], \"id\": $ID}\n",
                          name ? "expect query-name\nsend {\"return\": {\"name\": \"" : "",
                          name ? name : "", name ? "\"}, \"id\": $ID}\n" : "", "", cpus);
}

/* A process @pid with @n vCPU threads, every thread on every CPU. */
static void
add_process (Fixture *f, GPid pid, guint n)
{
  QpinCpuset all;

  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_add_process (f->host, pid, &all);
  for (guint i = 0; i < n; i++)
    qpin_host_recording_add_thread (f->host, pid, pid + 1 + (GPid) i, &all);
}

/* VM @pid named @name with @n vCPUs, whose peer plays @script (which
 * starts after the handshake); waits until it settled once. */
static QpinVm *
add_vm (Fixture *f, GPid pid, const char *script)
{
  g_autofree char *full = g_strdup_printf ("handshake\n%s", script);
  QpinFakePeer *peer = qpin_fake_peer_new (full);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = NULL;
  QpinVm *vm;

  g_ptr_array_add (f->peers, peer);
  client = qpin_qmp_client_connect_sync (qpin_fake_peer_get_path (peer), 2000, &error);
  g_assert_no_error (error);
  vm = qpin_registry_add (f->registry, client, pid);
  g_assert_nonnull (vm);
  return vm;
}

/* VM @pid named @name with @n vCPUs (a process in the host unless the
 * test made it), settled once; its peer then plays @more and waits for
 * qpin to hang up. */
static QpinVm *
start_vm (Fixture *f, GPid pid, guint n, const char *name, const char *more)
{
  g_autofree char *first = round_of (pid, n, name);
  g_autofree char *script = g_strconcat (first, more ? more : "", "stall\n", NULL);
  guint settled = f->settled;
  QpinVm *vm;

  if (!qpin_host_process_exists (f->host, pid))
    add_process (f, pid, n);
  vm = add_vm (f, pid, script);
  wait_count (&f->settled, settled + 1);
  return vm;
}

/* The affinity of thread @tid in the recording host, as a list. */
static char *
affinity (Fixture *f, GPid tid)
{
  QpinCpuset cpus;

  g_assert_true (qpin_host_recording_get_affinity (f->host, tid, &cpus));
  return qpin_cpuset_format (&cpus);
}

#define assert_affinity(f, tid, list)                                                              \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree char *_a = affinity (f, tid);                                                       \
    g_assert_cmpstr (_a, ==, list);                                                                \
  }                                                                                                \
  G_STMT_END

static void
assert_state (QpinVm *vm, QpinVmState state)
{
  g_assert_cmpstr (qpin_vm_state_to_string (qpin_vm_get_state (vm)), ==,
                   qpin_vm_state_to_string (state));
}

static void
set_affinity (Fixture *f, GPid tid, const char *list)
{
  QpinCpuset cpus;

  g_assert_true (qpin_cpuset_parse (list, &cpus, NULL));
  qpin_host_recording_set_affinity (f->host, tid, &cpus);
}

/* Discovery and the first placement: two vCPUs on a core each, the
 * emulator on the reserved core, every pin verified. */
static void
test_first_placement (Fixture *f, gconstpointer data)
{
  QpinVm *vm = start_vm (f, 100, 2, "a", NULL);

  assert_state (vm, QPIN_VM_PINNED);
  g_assert_null (qpin_vm_get_error (vm));
  assert_affinity (f, 101, "1");
  assert_affinity (f, 102, "2");
  assert_affinity (f, 100, "0,4");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==,
                   "pin 101 1\npin 102 2\npin 100 0,4\n");
  assert_message (f, "vm 'a' (pid 100): pinned 3 of 3 threads (3 moved)");
}

/* A vCPU hot-added by someone else: the new thread (a process event) is
 * discovered, placed on a core of its own and pinned; nothing else moves. */
static void
test_hot_add (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 3, NULL);
  QpinVm *vm = start_vm (f, 100, 2, "a", more);
  QpinCpuset all;

  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_clear_log (f->host);
  qpin_host_recording_add_thread (f->host, 100, 103, &all);
  qpin_registry_thread_event (f->registry, 100, 103, TRUE);
  wait_count (&f->settled, 2);
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 103, "3");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "pin 103 3\n");
  assert_message (f, "vm 'a': placed new vcpu 2 (tid 103)");
}

/* A vCPU unplugged: its thread exits, the plan lets its CPU go. */
static void
test_unplug (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 2, NULL);
  QpinVm *vm = start_vm (f, 100, 3, "a", more);

  qpin_host_recording_clear_log (f->host);
  qpin_host_recording_remove_thread (f->host, 103);
  qpin_registry_thread_event (f->registry, 100, 103, FALSE);
  wait_count (&f->settled, 2);
  assert_state (vm, QPIN_VM_PINNED);
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
  assert_message (f, "vm 'a': vcpu 2 is gone, its CPUs are free");
}

/* A VM that exits frees its CPUs at once: a 3-vCPU VM fits on the three
 * free cores only after the 2-vCPU VM left two of them. */
static void
test_exit_release (Fixture *f, gconstpointer data)
{
  g_autofree char *first = round_of (100, 2, "a");
  QpinVm *b;

  add_process (f, 100, 2);
  /* its script ends: the monitor closes, as when QEMU exits */
  add_vm (f, 100, first);
  wait_count (&f->gone, 1);
  g_assert_cmpuint (f->settled, ==, 1);
  qpin_host_recording_remove_process (f->host, 100);
  assert_message (f, "vm 'a' (pid 100) is gone: connection closed by peer");
  b = start_vm (f, 200, 3, "b", NULL);
  assert_state (b, QPIN_VM_PINNED);
  g_assert_cmpuint (qpin_registry_n_vms (f->registry), ==, 1);
}

/* Someone moves a pinned vCPU: status (verify) finds it off its pin,
 * the VM is degraded and looked at again, and the pin is repaired. */
static void
test_drift_repair (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 2, NULL);
  QpinVm *vm = start_vm (f, 100, 2, "a", more);

  set_affinity (f, 101, "3");
  qpin_registry_verify (f->registry);
  assert_state (vm, QPIN_VM_DEGRADED);
  assert_warnings (f, "vm 'a' (pid 100): 1 thread(s) found off their verified pins: looking "
                      "again\n");
  wait_count (&f->settled, 2);
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 101, "1");
  assert_message (f, "vm 'a': drift: vcpu 0 (tid 101) had '3', repairing to '1'");
}

static void
fixture_set_up_report (Fixture *f, gconstpointer data)
{
  fixture_set_up (f, data);
  qpin_registry_free (f->registry);
  fixture_start (f, CONFIG, QPIN_ENFORCE_REPORT);
}

/* enforce=report: drift is said once and shown, never pinned back. */
static void
test_drift_report (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 2, NULL);
  QpinVm *vm = start_vm (f, 100, 2, "a", more);
  g_autoptr (JsonNode) json = NULL;
  JsonObject *thread;

  set_affinity (f, 101, "3");
  qpin_host_recording_clear_log (f->host);
  qpin_registry_verify (f->registry);
  assert_warnings (f, "vm 'a' (pid 100): 1 thread(s) found off their verified pins: looking "
                      "again\n");
  wait_count (&f->settled, 2);
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 101, "3");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
  assert_message (f, "vm 'a': drift: vcpu 0 (tid 101) has '3', planned '1' (enforce=report)");
  json = qpin_registry_to_json (f->registry);
  thread = json_array_get_object_element (
    json_object_get_array_member (
      json_array_get_object_element (
        json_object_get_array_member (json_node_get_object (json), "vms"), 0),
      "threads"),
    0);
  g_assert_true (json_object_get_boolean_member (thread, "drift"));
  g_assert_cmpstr (json_object_get_string_member (thread, "actual"), ==, "3");
  g_assert_cmpstr (json_object_get_string_member (thread, "cpus"), ==, "1");
}

/* @line is one line of the registry's metrics (pin errors by errno) */
static void
assert_metric (Fixture *f, const char *line)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autofree char *want = g_strdup_printf ("\n%s\n", line);

  qpin_registry_metrics_write (f->registry, out);
  if (strstr (out->str, want) == NULL)
    g_error ("no line '%s' in the metrics:\n%s", line, out->str);
}

/* EPERM: the VM fails, says why, and is never touched again. */
static void
test_eperm (Fixture *f, gconstpointer data)
{
  QpinVm *vm;

  add_process (f, 100, 2);
  qpin_host_recording_fail (f->host, 101, EPERM);
  vm = start_vm (f, 100, 2, "a", NULL);
  assert_state (vm, QPIN_VM_FAILED);
  g_assert_cmpstr (qpin_vm_get_error (vm), ==,
                   "permission denied setting CPU affinity: run qpin as root or with "
                   "CAP_SYS_NICE; not touching this VM again");
  assert_warnings (f, "vm 'a' (pid 100): permission denied setting CPU affinity: run qpin as "
                      "root or with CAP_SYS_NICE; not touching this VM again\n");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "pin 101 1\n");
  assert_metric (f, "qpin_pin_errors_total{vm=\"a\",errno=\"EPERM\"} 1");
  assert_metric (f, "qpin_vm_state{vm=\"a\",state=\"failed\"} 1");
}

/* ESRCH: the thread list changed under qpin; it looks again and pins. */
static void
test_esrch (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 2, NULL);
  QpinVm *vm;

  add_process (f, 100, 2);
  qpin_host_recording_fail (f->host, 101, ESRCH);
  vm = start_vm (f, 100, 2, "a", more);
  assert_state (vm, QPIN_VM_DEGRADED);
  assert_warnings (f, "vm 'a' (pid 100): some threads could not be pinned as planned\n");
  qpin_host_recording_fail (f->host, 101, 0);
  wait_count (&f->settled, 2);
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 101, "1");
  assert_metric (f, "qpin_pin_errors_total{vm=\"a\",errno=\"ESRCH\"} 1");
  assert_metric (f, "qpin_pin_errors_total{vm=\"a\",errno=\"EPERM\"} 0");
}

/* EINVAL: the VM's cgroup cpuset allows CPUs 2,3,6,7 only; the first pin
 * is refused, qpin learns the cpuset and re-plans the VM inside it. */
static void
test_einval_confined (Fixture *f, gconstpointer data)
{
  QpinCpuset allowed;
  QpinVm *vm;

  g_assert_true (qpin_cpuset_parse ("2-3,6-7", &allowed, NULL));
  add_process (f, 100, 2);
  qpin_host_recording_confine (f->host, 100, &allowed);
  vm = start_vm (f, 100, 2, "a", NULL);
  assert_message (f, "vm 'a': vcpu 0 (tid 101) may only use cpus 2-3,6-7 (its cgroup cpuset): "
                     "re-planning the VM inside them");
  assert_message (f, "vm 'a': re-placed (inside its cgroup cpuset)");
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 101, "2");
  assert_affinity (f, 102, "3");
  /* two first pins, outside 2-3,6-7, were refused before the re-plan */
  assert_metric (f, "qpin_pin_errors_total{vm=\"a\",errno=\"EINVAL\"} 2");
}

/* A narrowed mask: the cgroup keeps CPU 0 of the emulator's 0,4; the pin
 * "succeeds" with less, which counts as EINVAL and is re-planned: the
 * housekeeping CPUs are not all inside the VM's cpuset now, so the
 * emulator runs on the cpuset. */
static void
test_narrowed (Fixture *f, gconstpointer data)
{
  QpinCpuset allowed;
  QpinVm *vm;

  g_assert_true (qpin_cpuset_parse ("0-3,5-7", &allowed, NULL));
  add_process (f, 100, 2);
  qpin_host_recording_confine (f->host, 100, &allowed);
  vm = start_vm (f, 100, 2, "a", NULL);
  assert_message (f, "vm 'a': emulator 0 (tid 100) may only use cpus 0-3,5-7 (its cgroup "
                     "cpuset): re-planning the VM inside them");
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 100, "0-3,5-7");
  assert_affinity (f, 101, "1");
}

/* After a restart the vCPUs still sit on CPUs of their own: adopted as
 * they are, no vCPU is pinned again. */
static void
test_adoption (Fixture *f, gconstpointer data)
{
  QpinVm *vm;

  add_process (f, 100, 2);
  set_affinity (f, 101, "2");
  set_affinity (f, 102, "3");
  vm = start_vm (f, 100, 2, "a", NULL);
  assert_state (vm, QPIN_VM_PINNED);
  assert_message (f, "vm 'a' (pid 100): adopted its running pins");
  assert_affinity (f, 101, "2");
  assert_affinity (f, 102, "3");
  g_assert_null (strstr (qpin_host_recording_get_log (f->host), "pin 101"));
  g_assert_null (strstr (qpin_host_recording_get_log (f->host), "pin 102"));
}

/* A reload re-places the VMs whose policy changed; one that changes
 * "reserved" is refused and changes nothing. */
static void
test_reload (Fixture *f, gconstpointer data)
{
  QpinVm *vm = start_vm (f, 100, 2, "a", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (
    qpin_registry_reload (f->registry, config_of ("[defaults]\nreserved = 0\n"), &error));
  g_assert_cmpstr (error->message, ==,
                   "'reserved' cannot change on reload; restart qpin to change it");
  g_clear_error (&error);
  g_assert_true (
    qpin_registry_reload (f->registry, config_of (CONFIG "[vm:a]\ncpuset = 2-3,6-7\n"), &error));
  g_assert_no_error (error);
  assert_message (f, "vm 'a': re-placed (reload)");
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 101, "2");
  assert_affinity (f, 102, "3");
}

/* Host CPU 1 goes offline under a VM that uses every free CPU (smt =
 * prefer: six vCPUs on CPUs 1-3,5-7): the kernel widens its vCPU's mask,
 * qpin re-places it on the housekeeping CPUs (degraded); when CPU 1 is
 * back the VM is whole again. */
static void
test_cpu_offline_online (Fixture *f, gconstpointer data)
{
  g_autofree char *again = round_of (100, 6, NULL);
  g_autofree char *more = g_strconcat (again, again, again, again, NULL);
  QpinVm *vm;
  QpinCpuset online;

  qpin_registry_set_recheck (f->registry, 200, 1);
  vm = start_vm (f, 100, 6, "a", more);
  assert_affinity (f, 101, "1");
  g_assert_true (qpin_cpuset_parse ("0,2-7", &online, NULL));
  qpin_host_recording_cpu_offline (f->host, 1, &online);
  qpin_registry_cpu_event (f->registry, 1, FALSE);
  wait_count (&f->settled, 3);
  assert_message (f, "host CPU 1 went offline: re-placing the threads that used it");
  assert_state (vm, QPIN_VM_PINNED);
  /* no CPU of its own left: it floats on the housekeeping CPUs */
  assert_affinity (f, 101, "0,4");
  qpin_registry_cpu_event (f->registry, 1, TRUE);
  wait_count (&f->settled, 5);
  assert_message (f, "vm 'a': whole again now that host CPU 1 is back: placed again, every vCPU "
                     "on a CPU of its own");
  assert_state (vm, QPIN_VM_PINNED);
  assert_affinity (f, 101, "1");
}

static guint
n_threads (Fixture *f, guint i)
{
  g_autoptr (JsonNode) json = qpin_registry_to_json (f->registry);
  JsonArray *vms = json_object_get_array_member (json_node_get_object (json), "vms");

  if (i >= json_array_get_length (vms))
    return 0;
  return json_array_get_length (
    json_object_get_array_member (json_array_get_object_element (vms, i), "threads"));
}

/* Held (a daemon starting among running VMs): VMs are discovered, not
 * placed; release places them together and pins them. */
static void
test_hold_release (Fixture *f, gconstpointer data)
{
  g_autofree char *a = round_of (100, 2, "a");
  g_autofree char *b = round_of (200, 1, "b");
  g_autofree char *sa = g_strconcat (a, "stall\n", NULL);
  g_autofree char *sb = g_strconcat (b, "stall\n", NULL);
  gint64 deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  QpinVm *va, *vb;

  qpin_registry_hold (f->registry);
  add_process (f, 100, 2);
  add_process (f, 200, 1);
  va = add_vm (f, 100, sa);
  vb = add_vm (f, 200, sb);
  while ((n_threads (f, 0) < 3 || n_threads (f, 1) < 2) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (f->settled, ==, 0);
  assert_state (va, QPIN_VM_DISCOVERING);
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
  qpin_registry_release (f->registry);
  g_assert_cmpuint (f->settled, ==, 2);
  assert_state (va, QPIN_VM_PINNED);
  assert_state (vb, QPIN_VM_PINNED);
  assert_affinity (f, 101, "1");
  assert_affinity (f, 102, "2");
  assert_affinity (f, 201, "3");
}

static void
on_hotplug (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(JsonNode **) user_data = qpin_registry_hotplug_finish (result, NULL);
}

/* qpin hotplug: the first free slot is planned before device_add, the
 * main thread sits on the newcomer's CPU for the moment of device_add
 * (the new thread inherits it) and goes back after. */
static void
test_hotplug_slot (Fixture *f, gconstpointer data)
{
  g_autofree char *after = round_of (100, 2, NULL);
  g_autofree char *more = g_strconcat (
    "expect query-hotpluggable-cpus\n"
    "send {\"return\": [{\"type\": \"qemu64-x86_64-cpu\", \"vcpus-count\": 1, \"props\": "
    "{\"socket-id\": 0, \"core-id\": 1, \"thread-id\": 0}}, {\"type\": \"qemu64-x86_64-cpu\", "
    "\"vcpus-count\": 1, \"qom-path\": \"/machine/unattached/device[0]\", \"props\": "
    "{\"socket-id\": 0, \"core-id\": 0, \"thread-id\": 0}}], \"id\": $ID}\n"
    "expect device_add\nsend {\"return\": {}, \"id\": $ID}\n",
    after, NULL);
  JsonNode *reply = NULL;
  g_autoptr (JsonNode) owned = NULL;
  g_autofree char *text = NULL;
  QpinCpuset all;

  start_vm (f, 100, 1, "a", more);
  qpin_host_recording_clear_log (f->host);
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_add_thread (f->host, 100, 102, &all);
  qpin_registry_hotplug_async (f->registry, "a", TRUE, 1, on_hotplug, &reply);
  while (reply == NULL)
    g_main_context_iteration (NULL, TRUE);
  owned = reply;
  text = json_to_string (reply, FALSE);
  g_assert_cmpstr (text, ==, "[{\"device\":\"qpin-cpu1\",\"index\":1,\"cpus\":\"2\"}]");
  wait_count (&f->settled, 2);
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==,
                   "pin 100 2\npin 100 0,4\npin 102 2\n");
  assert_message (f, "vm 'a': hot-added vcpu 1 (device 'qpin-cpu1')");
}

/* The pid is reused by another process (same pid, another start time):
 * the next look finds it is not the VM any more, which leaves, its CPUs
 * free; nothing of the newcomer is pinned. */
static void
test_pid_reused (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 2, NULL);

  start_vm (f, 100, 2, "a", more);
  qpin_host_recording_reuse_pid (f->host, 100);
  qpin_host_recording_clear_log (f->host);
  qpin_registry_thread_event (f->registry, 100, 0, TRUE);
  wait_count (&f->gone, 1);
  assert_message (f, "vm 'a' (pid 100) is gone: pid 100 is no longer the process that opened "
                     "the socket (pid reused)");
  g_assert_cmpuint (qpin_registry_n_vms (f->registry), ==, 0);
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
}

static void
fixture_set_up_dry (Fixture *f, gconstpointer data)
{
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "fixtures", "1n-4c8t", NULL);
  g_autoptr (GError) error = NULL;
  QpinRegistryOptions options = { .timeout_ms = 2000, .dry_run = TRUE };
  QpinTopology *topo = qpin_topology_read (root, NULL, &error);
  QpinHost *kernel;

  fixture_set_up (f, data);
  qpin_registry_free (f->registry);
  /* the dry run's host lies over the "kernel", as over the real one */
  kernel = qpin_host_recording_new (NULL);
  qpin_host_recording_set_topology_root (kernel, root);
  f->host = kernel;
  f->dry = qpin_host_recording_new (kernel);
  f->registry = qpin_registry_new_with_host (topo, config_of (CONFIG), &options, f->dry, &error);
  g_assert_no_error (error);
  qpin_registry_set_hooks (f->registry, on_settled, on_gone, f);
}

/* A dry run plans and pins nothing: the host below keeps its affinities,
 * the dry run's host records what would have been pinned (nothing: apply
 * does not ask), and status shows the plan beside the kernel's actual. */
static void
test_dry_run (Fixture *f, gconstpointer data)
{
  QpinVm *vm = start_vm (f, 100, 2, "a", NULL);
  g_autoptr (JsonNode) json = NULL;
  JsonObject *thread;

  assert_state (vm, QPIN_VM_PLANNED);
  assert_message (f, "vm 'a' (pid 100): planned 3 of 3 threads, pinned none [dry run]");
  assert_affinity (f, 101, "0-7");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
  g_assert_cmpstr (qpin_host_recording_get_log (f->dry), ==, "");
  json = qpin_registry_to_json (f->registry);
  thread = json_array_get_object_element (
    json_object_get_array_member (qpin_json_find_vm (json, 100), "threads"), 0);
  g_assert_cmpstr (json_object_get_string_member (thread, "cpus"), ==, "1");
  g_assert_cmpstr (json_object_get_string_member (thread, "actual"), ==, "0-7");
  g_assert_false (json_object_get_boolean_member (thread, "applied"));
}

/* The start time the recording host gave process @pid. */
static guint64
start_of (Fixture *f, GPid pid)
{
  g_autoptr (QpinPeer) peer = qpin_host_identify (f->host, NULL, pid, NULL);

  if (peer == NULL)
    g_error ("no process %d", pid);
  return peer->start_time;
}

/* Writes @text as the ledger file a previous run left; returns its path. */
static char *
write_ledger (const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("qpin-ledger-XXXXXX", &error);
  char *path;

  g_assert_no_error (error);
  path = g_build_filename (dir, QPIN_LEDGER_FILE_NAME, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
  return path;
}

/* After the writes the registry has deferred to an idle main loop. */
static void
remove_ledger (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);

  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_unlink (path);
  g_rmdir (dir);
}

/* VM @pid with two vCPUs still pinned by the previous run on CPUs 1, 2. */
static void
add_pinned (Fixture *f, GPid pid)
{
  add_process (f, pid, 2);
  set_affinity (f, pid, "0,4");
  set_affinity (f, pid + 1, "1");
  set_affinity (f, pid + 2, "2");
}

/* A restart with a believed ledger: the CPUs VM 'a' held (1, 2) are held
 * for it from the start, so VM 'b', which comes first, is placed at once
 * on the next free core (3), not on 'a''s; then 'a' adopts its running
 * pins, nothing moves, and the file names both with their start times. */
static void
test_ledger_restart (Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL, *path = NULL, *saved = NULL, *want = NULL;
  g_autoptr (GError) error = NULL;

  add_pinned (f, 100);
  text = g_strdup_printf ("{\"version\": 1, \"vms\": [{\"pid\": 100, \"start\": %" G_GUINT64_FORMAT
                          ", \"key\": \"a\", \"cpus\": \"1,2\"}]}",
                          start_of (f, 100));
  path = write_ledger (text);
  g_assert_true (qpin_registry_keep_ledger (f->registry, path, &error));
  g_assert_no_error (error);
  g_assert_true (qpin_registry_ledger_is_whole (f->registry));
  start_vm (f, 200, 1, "b", NULL);
  assert_affinity (f, 201, "3");
  qpin_host_recording_clear_log (f->host);
  start_vm (f, 100, 2, "a", NULL);
  assert_message (f, "vm 'a' (pid 100): adopted its running pins");
  assert_affinity (f, 101, "1");
  assert_affinity (f, 102, "2");
  g_assert_null (strstr (qpin_host_recording_get_log (f->host), "pin 101"));
  g_assert_null (strstr (qpin_host_recording_get_log (f->host), "pin 102"));
  /* the file is written once the main loop is idle */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_true (g_file_get_contents (path, &saved, NULL, NULL));
  want = g_strdup_printf ("{\"version\":1,\"vms\":[{\"pid\":200,\"start\":%" G_GUINT64_FORMAT
                          ",\"key\":\"b\",\"cpus\":\"3\"},{\"pid\":100,\"start\":%" G_GUINT64_FORMAT
                          ",\"key\":\"a\",\"cpus\":\"1-2\"}]}",
                          start_of (f, 200), start_of (f, 100));
  g_assert_cmpstr (saved, ==, want);
  remove_ledger (path);
}

/* Ledger files not to believe, each refused with its reason (the daemon
 * then takes the grace period), or an entry dropped with one line; none
 * holds a CPU: VM 'b' then gets the first free core (1), which the
 * hostile entries claimed for VM 'a'. */
static void
test_ledger_hostile (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *vms, *reason; /* NULL: believed, the entry dropped */
  } cases[] = {
    { "[{\"pid\": 100, \"start\": START, \"key\": \"a\", \"cpus\": \"1,99\"}]",
      "vm 'a' (pid 100) holds cpu 99, which this host does not have" },
    { "[{\"pid\": 100, \"start\": START, \"key\": \"a\", \"cpus\": \"1\"}, "
      "{\"pid\": 300, \"start\": 1, \"key\": \"c\", \"cpus\": \"2,1\"}]",
      "cpu 1 is held by two VMs" },
    { "[{\"pid\": 100, \"start\": START", "" },
    /* pid 100 is another program now: another start time */
    { "[{\"pid\": 100, \"start\": 999999, \"key\": \"a\", \"cpus\": \"1,2\"}]", NULL },
    /* no process 300 at all */
    { "[{\"pid\": 300, \"start\": 1, \"key\": \"a\", \"cpus\": \"1,2\"}]", NULL },
    /* degraded: believed, nothing held, every VM adopted after the grace */
    { "[{\"pid\": 100, \"start\": START, \"key\": \"a\", \"cpus\": \"1\", \"degraded\": true}]",
      NULL },
  };
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *start = NULL;

  add_pinned (f, 100);
  start = g_strdup_printf ("%" G_GUINT64_FORMAT, start_of (f, 100));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) text = g_string_new ("{\"version\": 1, \"vms\": ");
      g_autofree char *path = NULL;
      g_autoptr (GError) error = NULL;

      g_string_append (text, cases[i].vms);
      g_string_replace (text, "START", start, 0);
      if (cases[i].reason == NULL || *cases[i].reason)
        g_string_append (text, "}");
      path = write_ledger (text->str);
      if (cases[i].reason == NULL)
        {
          g_assert_true (qpin_registry_keep_ledger (f->registry, path, &error));
          g_assert_no_error (error);
          g_assert_cmpint (qpin_registry_ledger_is_whole (f->registry), ==,
                           strstr (cases[i].vms, "degraded") == NULL);
        }
      else
        {
          g_autofree char *want = g_strdup_printf ("%s: %s", path, cases[i].reason);

          g_assert_false (qpin_registry_keep_ledger (f->registry, path, &error));
          g_assert_nonnull (error);
          if (*cases[i].reason)
            g_assert_cmpstr (error->message, ==, want);
          else
            g_assert_true (g_str_has_prefix (error->message, path));
        }
      g_ptr_array_add (paths, g_steal_pointer (&path));
    }
  assert_message (f, "ledger file: vm 'a' (pid 100) ignored: it has exited, or the pid is "
                     "another process now");
  assert_message (f, "ledger file: vm 'a' (pid 300) ignored: it has exited, or the pid is "
                     "another process now");
  assert_message (f, "ledger file: vm 'a' (pid 100) was degraded: every VM is adopted together "
                     "after the grace period");
  start_vm (f, 200, 1, "b", NULL);
  assert_affinity (f, 201, "1");
  for (guint i = 0; i < paths->len; i++)
    remove_ledger (g_ptr_array_index (paths, i));
}

/* A VM in the ledger that exits before it comes back: the CPUs held for
 * it are freed at the next look, for the next VM. */
static void
test_ledger_not_back (Fixture *f, gconstpointer data)
{
  g_autofree char *text = NULL, *path = NULL;
  g_autoptr (GError) error = NULL;

  add_pinned (f, 100);
  text = g_strdup_printf ("{\"version\": 1, \"vms\": [{\"pid\": 100, \"start\": %" G_GUINT64_FORMAT
                          ", \"key\": \"a\", \"cpus\": \"1,2\"}]}",
                          start_of (f, 100));
  path = write_ledger (text);
  g_assert_true (qpin_registry_keep_ledger (f->registry, path, &error));
  g_assert_false (qpin_registry_drop_dead_reserved (f->registry));
  qpin_host_recording_remove_process (f->host, 100);
  /* the next VM's placement looks first (and the reconcile timer) */
  start_vm (f, 200, 1, "b", NULL);
  assert_message (f, "vm 'a' (pid 100) exited before it came back: cpus 1-2 are free");
  assert_affinity (f, 201, "1");
  remove_ledger (path);
}

/* Runs the main loop until thread @tid's affinity is @list; fails after 2 s. */
static void
wait_affinity (Fixture *f, GPid tid, const char *list)
{
  gboolean late = FALSE;
  guint id = g_timeout_add (2000, on_deadline, &late);

  for (;;)
    {
      g_autofree char *now = affinity (f, tid);
      if (g_str_equal (now, list) || late)
        break;
      g_main_context_iteration (NULL, TRUE);
    }
  if (!late)
    g_source_remove (id);
  assert_affinity (f, tid, list);
}

/* A hot-added vCPU is pinned as soon as query-cpus-fast names it: the
 * peer never answers query-iothreads, so nothing settles (settled stays
 * 1), yet the new thread is on its own core (3) and nothing else moved. */
static void
test_hot_add_early (Fixture *f, gconstpointer data)
{
  g_autofree char *cpus = cpus_reply (100, 3);
  g_autofree char *more
    = g_strdup_printf ("expect query-cpus-fast\n%sexpect query-iothreads\n", cpus);
  QpinCpuset all;

  start_vm (f, 100, 2, "a", more);
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_clear_log (f->host);
  qpin_host_recording_add_thread (f->host, 100, 103, &all);
  qpin_registry_thread_event (f->registry, 100, 103, TRUE);
  wait_affinity (f, 103, "3");
  g_assert_cmpuint (f->settled, ==, 1);
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "pin 103 3\n");
  assert_message (f, "vm 'a': placed new vcpu 2 (tid 103)");
}

/* A peer whose query-cpus-fast names another process's thread (pid 200's
 * 201) as its new vCPU: nothing is pinned early, the other process's
 * thread keeps its affinity, and the settle refuses the peer. */
static void
test_hot_add_early_foreign (Fixture *f, gconstpointer data)
{
  g_autofree char *more = NULL;
  g_autofree char *cpus = cpus_reply (100, 2);
  g_autoptr (GString) lie = g_string_new (cpus);

  /* vCPU 2 is thread 201, of process 200 */
  g_string_replace (lie, "}], \"id\"",
                    "}, {\"cpu-index\": 2, \"thread-id\": 201, \"qom-path\": "
                    "\"/machine/unattached/device[2]\", \"target\": \"x86_64\", \"props\": "
                    "{\"socket-id\": 0, \"core-id\": 2, \"thread-id\": 0}}], \"id\"",
                    1);
  g_assert_nonnull (strstr (lie->str, "\"thread-id\": 201"));
  more = g_strdup_printf ("expect query-cpus-fast\n%sexpect query-iothreads\nsend {\"return\": "
                          "[], \"id\": $ID}\n",
                          lie->str);
  add_process (f, 200, 1);
  start_vm (f, 100, 2, "a", more);
  qpin_host_recording_clear_log (f->host);
  qpin_registry_thread_event (f->registry, 100, 201, TRUE);
  wait_count (&f->settled, 2);
  assert_affinity (f, 201, "0-7");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
  assert_warnings (f, "vm 'a' (pid 100): refused: vCPU 2 reports thread 201, which is not a vCPU "
                      "thread of process 100\nvm 'a' (pid 100): the QMP peer reports threads that "
                      "are not its own; nothing is pinned until it reports sane data\n");
}

/* With debug-threads=on a new vCPU thread names itself "CPU 2/KVM": it
 * is pinned then (core 3), before QMP was asked; the query-cpus-fast that
 * follows confirms it and nothing moves again. */
static void
test_named_at_birth (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 3, NULL);
  QpinCpuset all;

  start_vm (f, 100, 2, "a", more);
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_clear_log (f->host);
  qpin_host_recording_add_thread (f->host, 100, 103, &all);
  qpin_registry_comm_event (100, 103, "CPU 2/KVM", f->registry);
  /* pinned at once, in the event, before any QMP answer */
  assert_affinity (f, 103, "3");
  g_assert_cmpuint (f->settled, ==, 1);
  wait_count (&f->settled, 2);
  assert_affinity (f, 103, "3");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "pin 103 3\n");
}

/* A thread of the VM's own process (one vCPU, on core 1) that names
 * itself "CPU 1/KVM" but is no vCPU: pinned early onto the core the
 * normal hot-add path gives vCPU 1 (2, free, never another VM's).  A
 * second thread renamed "CPU 2/KVM" before QMP spoke gets nothing (core 3
 * stays free).  Then QMP says there is 1 vCPU: both are "other" threads
 * (with the emulator, 0,4) and core 2 is free again. */
static void
test_named_liar (Fixture *f, gconstpointer data)
{
  g_autofree char *more = round_of (100, 1, NULL);
  QpinCpuset all;

  start_vm (f, 100, 1, "a", more);
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_clear_log (f->host);
  qpin_host_recording_add_thread (f->host, 100, 103, &all);
  qpin_host_recording_add_thread (f->host, 100, 104, &all);
  qpin_registry_comm_event (100, 103, "CPU 1/KVM", f->registry);
  qpin_registry_comm_event (100, 104, "CPU 2/TCG", f->registry);
  assert_affinity (f, 103, "2");
  assert_affinity (f, 104, "0-7");
  wait_count (&f->settled, 2);
  assert_affinity (f, 103, "0,4");
  assert_affinity (f, 104, "0,4");
  assert_message (f, "vm 'a': vcpu 1 is gone, its CPUs are free");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==,
                   "pin 103 2\npin 103 0,4\npin 104 0,4\n");
}

/* Names that must pin nothing: another process's thread named like a
 * vCPU (as its own, or reported under the VM's pid), names that only
 * look like one. */
static void
test_named_foreign (Fixture *f, gconstpointer data)
{
  static const char *const not_vcpus[] = {
    "CPU /KVM", "CPU 2", "CPU 2x/KVM", "CPU 99999999999/K", "CPU -1/KVM", "cpu 2/KVM", "CPU 2/"
  };
  QpinCpuset all;

  start_vm (f, 100, 2, "a", NULL);
  add_process (f, 200, 1);
  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  qpin_host_recording_add_thread (f->host, 100, 103, &all);
  qpin_host_recording_clear_log (f->host);
  qpin_registry_comm_event (200, 201, "CPU 2/KVM", f->registry);
  qpin_registry_comm_event (100, 201, "CPU 2/KVM", f->registry);
  for (guint i = 0; i < G_N_ELEMENTS (not_vcpus); i++)
    qpin_registry_comm_event (100, 103, not_vcpus[i], f->registry);
  assert_affinity (f, 201, "0-7");
  assert_affinity (f, 103, "0-7");
  g_assert_cmpstr (qpin_host_recording_get_log (f->host), ==, "");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* warnings are asserted line by line (fixture_tear_down), not fatal */
  g_log_set_always_fatal (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
  g_log_set_default_handler (capture, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/registry/first-placement", test_first_placement);
  ADD ("/registry/hot-add", test_hot_add);
  ADD ("/registry/unplug", test_unplug);
  ADD ("/registry/exit-release", test_exit_release);
  ADD ("/registry/drift-repair", test_drift_repair);
  g_test_add ("/registry/drift-report", Fixture, NULL, fixture_set_up_report, test_drift_report,
              fixture_tear_down);
  ADD ("/registry/eperm", test_eperm);
  ADD ("/registry/esrch", test_esrch);
  ADD ("/registry/einval-confined", test_einval_confined);
  ADD ("/registry/narrowed", test_narrowed);
  ADD ("/registry/adoption", test_adoption);
  ADD ("/registry/reload", test_reload);
  g_test_add ("/registry/cpu-offline-online", Fixture,
              "[defaults]\nreserved = 0,4\nemulator = housekeeping\n", fixture_set_up,
              test_cpu_offline_online, fixture_tear_down);
  ADD ("/registry/hold-release", test_hold_release);
  ADD ("/registry/hotplug-slot", test_hotplug_slot);
  ADD ("/registry/pid-reused", test_pid_reused);
  g_test_add ("/registry/ledger-restart", Fixture, NULL, fixture_set_up, test_ledger_restart,
              fixture_tear_down);
  g_test_add ("/registry/ledger-hostile", Fixture, NULL, fixture_set_up, test_ledger_hostile,
              fixture_tear_down);
  g_test_add ("/registry/ledger-not-back", Fixture, NULL, fixture_set_up, test_ledger_not_back,
              fixture_tear_down);
  g_test_add ("/registry/hot-add-early", Fixture, NULL, fixture_set_up, test_hot_add_early,
              fixture_tear_down);
  g_test_add ("/registry/hot-add-early-foreign", Fixture, NULL, fixture_set_up,
              test_hot_add_early_foreign, fixture_tear_down);
  g_test_add ("/registry/named-at-birth", Fixture, NULL, fixture_set_up, test_named_at_birth,
              fixture_tear_down);
  g_test_add ("/registry/named-liar", Fixture, NULL, fixture_set_up, test_named_liar,
              fixture_tear_down);
  g_test_add ("/registry/named-foreign", Fixture, NULL, fixture_set_up, test_named_foreign,
              fixture_tear_down);
  g_test_add ("/registry/dry-run", Fixture, NULL, fixture_set_up_dry, test_dry_run,
              fixture_tear_down);
  return g_test_run ();
}
