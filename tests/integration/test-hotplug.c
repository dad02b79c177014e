/* test-hotplug.c: vCPU hot-add from a foreign QMP client and through
 * `qpin hotplug`, against a running daemon; the kernel's view decides */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"
#include "qpin-test-daemon.h"

typedef QpinTestDaemon Fixture;

static void
start_daemon (Fixture *f, const char *policy, const char *grace)
{
  const char *extra[] = { "--grace", grace, "--policy", policy ? policy : "cpus=dedicated", NULL };

  qpin_test_daemon_start (f, extra);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_set_up (f, "qpin-hotplug", 0, 0700);
  f->interval = "0";
  start_daemon (f, data, "0");
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  qpin_test_daemon_tear_down (f);
}

/* A VM the daemon watches, plus a second monitor for "someone else". */
static QpinTestQemu *
start_vm (Fixture *f, const char *smp, char **foreign)
{
  g_autofree char *qmp = g_strdup_printf ("unix:%s/hp.sock,server=on,wait=off", f->watch);
  const char *args[] = { "-smp", smp, "-name", "hp,debug-threads=on", "-qmp", qmp, NULL };
  QpinTestQemu *qemu = qpin_test_qemu_start (NULL, args, TRUE);

  /* the helper's own -qmp socket serves as the foreign client's */
  *foreign = g_strdup (qemu->qmp_path);
  return qemu;
}

typedef struct {
  Fixture *f;
  GPid pid;
  guint vcpus;
} Settled;

/* every vCPU the kernel shows is pinned and verified in the daemon's view */
static gboolean
all_vcpus_pinned (gpointer data)
{
  Settled *s = data;
  g_autoptr (JsonNode) status = qpin_test_status (s->f->control);
  JsonObject *vm = qpin_test_find_vm (status, s->pid);
  g_autoptr (GArray) tids = qpin_test_vcpu_tids (s->pid);
  JsonArray *threads;
  guint vcpus = 0;

  if (vm == NULL || tids->len != s->vcpus)
    return FALSE;
  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      g_autofree char *kernel = NULL;

      if (!g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        continue;
      kernel = qpin_test_affinity_of ((GPid) json_object_get_int_member (t, "tid"));
      if (!json_object_get_boolean_member (t, "applied")
          || !g_str_equal (kernel, json_object_get_string_member (t, "cpus")))
        return FALSE;
      vcpus++;
    }
  return vcpus == s->vcpus;
}

static void
device_add_free_slots (const char *monitor, guint count)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = NULL;
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonNode) bad = NULL;

  qpin_test_qemu_add_vcpus (monitor, count);
  /* a device_add that fails changes nothing */
  client = qpin_qmp_client_connect_sync (monitor, 10000, &error);
  g_assert_no_error (error);
  json_object_set_string_member (args, "driver", "qemu64-x86_64-cpu");
  json_object_set_int_member (args, "socket-id", 99);
  bad = qpin_qmp_client_execute_sync (client, "device_add", args, 10000, &error);
  g_assert_null (bad);
  g_assert_nonnull (error);
  qpin_qmp_client_close (client);
}

/* Someone else hot-adds a vCPU: no QMP event exists for it, the daemon
 * still pins it (process events), on the free CPU. */
static void
test_foreign_add (Fixture *f, gconstpointer data)
{
  g_autofree char *foreign = NULL;
  g_autoptr (QpinTestQemu) qemu = start_vm (f, "1,maxcpus=2", &foreign);
  Settled s = { f, qemu->pid, 1 };
  g_autoptr (GArray) vcpus = NULL;
  g_autofree char *a = NULL, *b = NULL;

  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  device_add_free_slots (foreign, 1);
  s.vcpus = 2;
  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  vcpus = qpin_test_vcpu_tids (qemu->pid);
  a = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
  b = qpin_test_affinity_of (g_array_index (vcpus, GPid, 1));
  g_assert_cmpstr (a, !=, b);
  g_assert_null (strpbrk (a, ",-"));
  g_assert_null (strpbrk (b, ",-"));
}

/* With debug-threads=on the new vCPU thread names itself "CPU 1/TCG"
 * during device_add, and the daemon pins it then (process events, COMM):
 * when device_add's reply arrives it is already on its own CPU, before
 * QEMU could have answered the daemon's QMP; QMP then confirms it. */
static void
test_foreign_add_named (Fixture *f, gconstpointer data)
{
  g_autofree char *foreign = NULL;
  g_autoptr (QpinTestQemu) qemu = start_vm (f, "1,maxcpus=2", &foreign);
  Settled s = { f, qemu->pid, 1 };
  g_autoptr (GArray) vcpus = NULL;
  g_autofree char *a = NULL, *b = NULL, *b_after = NULL;

  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  device_add_free_slots (foreign, 1);
  vcpus = qpin_test_vcpu_tids (qemu->pid);
  g_assert_cmpuint (vcpus->len, ==, 2);
  a = qpin_test_affinity_of (g_array_index (vcpus, GPid, 0));
  b = qpin_test_affinity_of (g_array_index (vcpus, GPid, 1));
  g_test_message ("at device_add's reply: vcpu 0 on %s, the new vcpu 1 on %s", a, b);
  g_assert_cmpstr (a, !=, b);
  g_assert_null (strpbrk (b, ",-"));
  s.vcpus = 2;
  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  b_after = qpin_test_affinity_of (g_array_index (vcpus, GPid, 1));
  g_assert_cmpstr (b_after, ==, b);
}

/* 50 vCPUs added back to back on an overcommitted host: all converge. */
static void
test_foreign_storm (Fixture *f, gconstpointer data)
{
  g_autofree char *foreign = NULL;
  g_autoptr (QpinTestQemu) qemu = start_vm (f, "1,maxcpus=51", &foreign);
  Settled s = { f, qemu->pid, 1 };

  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  device_add_free_slots (foreign, 50);
  s.vcpus = 51;
  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 120000));
}

/* A vCPU hot-added while the daemon is down (kill -9): after the restart
 * the running vCPU is adopted where it is and the newcomer is placed. */
static void
test_add_during_restart (Fixture *f, gconstpointer data)
{
  g_autofree char *foreign = NULL;
  g_autoptr (QpinTestQemu) qemu = start_vm (f, "1,maxcpus=2", &foreign);
  Settled s = { f, qemu->pid, 1 };
  g_autoptr (GArray) before = NULL, after = NULL;
  g_autofree char *first = NULL, *first_after = NULL;

  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  before = qpin_test_vcpu_tids (qemu->pid);
  first = qpin_test_affinity_of (g_array_index (before, GPid, 0));
  g_subprocess_send_signal (f->daemon->process, SIGKILL);
  qpin_test_qpin_wait (f->daemon);
  g_clear_pointer (&f->daemon, qpin_test_qpin_free);
  device_add_free_slots (foreign, 1);
  start_daemon (f, data, "1500");
  s.vcpus = 2;
  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 30000));
  after = qpin_test_vcpu_tids (qemu->pid);
  first_after = qpin_test_affinity_of (g_array_index (after, GPid, 0));
  g_assert_cmpstr (first_after, ==, first);
}

typedef struct {
  GPid pid;
  GArray *before;
  char *first_seen;
  gboolean stop;
} Watcher;

/* Polls the VM's threads as fast as it can and records the affinity the
 * first new vCPU thread had the first time it was visible. */
static gpointer
watch_new_thread (gpointer data)
{
  Watcher *w = data;

  while (!w->stop && w->first_seen == NULL)
    {
      g_autoptr (GArray) now = qpin_test_vcpu_tids (w->pid);
      for (guint i = 0; i < now->len && w->first_seen == NULL; i++)
        {
          GPid tid = g_array_index (now, GPid, i);
          gboolean old = FALSE;
          for (guint j = 0; j < w->before->len; j++)
            old |= g_array_index (w->before, GPid, j) == tid;
          if (!old)
            w->first_seen = qpin_test_affinity_of (tid);
        }
    }
  return NULL;
}

/* `qpin hotplug VM add`: the new vCPU thread is born on its planned CPU;
 * no moment exists in which it runs elsewhere. */
static void
test_qpin_hotplug_add (Fixture *f, gconstpointer data)
{
  g_autofree char *foreign = NULL;
  g_autoptr (QpinTestQemu) qemu = start_vm (f, "1,maxcpus=2", &foreign);
  Settled s = { f, qemu->pid, 1 };
  const char *add[] = { "hotplug", "hp", "add", "--control", f->control, NULL };
  const char *more[] = { "hotplug", "hp", "add", "--json", "--control", f->control, NULL };
  const char *remove[] = { "hotplug", "hp", "remove", "--control", f->control, NULL };
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL, *out3 = NULL, *err3 = NULL;
  Watcher w = { 0 };
  GThread *thread;
  const char *planned;

  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  w.pid = qemu->pid;
  w.before = qpin_test_vcpu_tids (qemu->pid);
  thread = g_thread_new ("watch", watch_new_thread, &w);
  g_assert_cmpint (qpin_test_run_qpin (add, &out, &err), ==, 0);
  s.vcpus = 2;
  g_assert_true (qpin_test_wait_for (all_vcpus_pinned, &s, 15000));
  w.stop = TRUE;
  g_thread_join (thread);
  /* the text form names the new vCPU and its planned CPUs */
  g_assert_true (g_str_has_prefix (out, "added vcpu 1 (device 'qpin-cpu1') on cpus "));
  planned = g_strchomp (out + strlen ("added vcpu 1 (device 'qpin-cpu1') on cpus "));
  g_assert_nonnull (w.first_seen);
  g_assert_cmpstr (w.first_seen, ==, planned);

  /* no free slot left, and no guest to unplug: clear errors */
  g_assert_cmpint (qpin_test_run_qpin (more, &out2, &err2), ==, 1);
  g_assert_cmpstr (err2, ==, "qpin hotplug: vm 'hp' has no free CPU slot (see -smp maxcpus)\n");
  g_assert_cmpint (qpin_test_run_qpin (remove, &out3, &err3), ==, 1);
  g_assert_nonnull (strstr (err3, "device_del 'qpin-cpu1': "));
  g_array_unref (w.before);
  g_free (w.first_seen);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/hotplug/foreign-add", Fixture, NULL, fixture_set_up, test_foreign_add,
              fixture_tear_down);
  g_test_add ("/hotplug/foreign-add-named", Fixture, NULL, fixture_set_up, test_foreign_add_named,
              fixture_tear_down);
  g_test_add ("/hotplug/foreign-storm", Fixture, "overcommit=share", fixture_set_up,
              test_foreign_storm, fixture_tear_down);
  g_test_add ("/hotplug/add-during-restart", Fixture, NULL, fixture_set_up, test_add_during_restart,
              fixture_tear_down);
  g_test_add ("/hotplug/qpin-hotplug-add", Fixture, NULL, fixture_set_up, test_qpin_hotplug_add,
              fixture_tear_down);
  return g_test_run ();
}
