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
  g_test_add ("/registry/dry-run", Fixture, NULL, fixture_set_up_dry, test_dry_run,
              fixture_tear_down);
  return g_test_run ();
}
