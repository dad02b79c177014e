/* test-top.c: `qpin top`'s pieces without a terminal: the daemon's status
 * read strictly, the rows (sort, collapse, flags) and the JSON document,
 * on a recorded /proc tree */
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "qpin-test-tree.h"
#include "qpin-top.h"

#define SEC G_GINT64_CONSTANT (1000000000)

static GPtrArray *
status_of (const char *text, GError **error)
{
  g_autoptr (JsonNode) node = json_from_string (text, NULL);

  g_assert_nonnull (node);
  return qpin_top_vms_from_status (node, error);
}

/* Each malformed status is refused with the VM and what is wrong; members
 * top does not use are ignored; a VM without a name goes by its key. */
static void
test_status_strict (void)
{
  static const struct {
    const char *json;
    const char *error;
  } bad[] = {
    { "[]", "the daemon's status has no \"vms\" array" },
    { "{\"vms\":{}}", "the daemon's status has no \"vms\" array" },
    { "{\"vms\":[{\"name\":\"a\"}]}", "VM 0 of the daemon's status has no valid pid" },
    { "{\"vms\":[{\"name\":\"a\",\"pid\":-4}]}", "VM 0 of the daemon's status has no valid pid" },
    { "{\"vms\":[{\"pid\":1,\"threads\":[{\"role\":\"vcpu\",\"index\":0,\"tid\":\"12\"}]}]}",
      "VM 0 of the daemon's status: a thread without a valid role, index and tid" },
    { "{\"vms\":[{\"pid\":1,\"threads\":[{\"role\":\"gpu\",\"index\":0,\"tid\":12}]}]}",
      "VM 0 of the daemon's status: a thread without a valid role, index and tid" },
    { "{\"vms\":[{\"pid\":1,\"threads\":[{\"role\":\"vcpu\",\"index\":0,\"tid\":0}]}]}",
      "VM 0 of the daemon's status: a thread without a valid role, index and tid" },
    { "{\"vms\":[{\"pid\":1,\"threads\":[7]}]}",
      "VM 0 of the daemon's status: a thread without a valid role, index and tid" },
  };
  g_autoptr (GPtrArray) vms = NULL;
  const QpinTopVm *vm;
  const QpinTopThread *t;
  g_autofree char *cpus = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) none = status_of (bad[i].json, &error);

      g_assert_null (none);
      g_assert_cmpstr (error->message, ==, bad[i].error);
    }
  vms = status_of ("{\"vms\":[{\"key\":\"k\",\"name\":null,\"pid\":9,\"state\":\"pinned\","
                   "\"extra\":[1],\"threads\":[{\"role\":\"iothread\",\"index\":1,\"tid\":10,"
                   "\"cpus\":\"2-3\",\"drift\":true,\"new\":{}},{\"role\":\"other\","
                   "\"index\":0,\"tid\":11,\"cpus\":\"\"}]}]}",
                   NULL);
  g_assert_nonnull (vms);
  vm = g_ptr_array_index (vms, 0);
  g_assert_cmpstr (vm->name, ==, "k");
  g_assert_cmpstr (vm->state, ==, "pinned");
  g_assert_cmpint (vm->pid, ==, 9);
  g_assert_cmpuint (vm->threads->len, ==, 2);
  t = &g_array_index (vm->threads, QpinTopThread, 0);
  g_assert_cmpint (t->role, ==, QPIN_ROLE_IOTHREAD);
  g_assert_true (t->has_plan);
  g_assert_true (t->drift);
  cpus = qpin_cpuset_format (&t->planned);
  g_assert_cmpstr (cpus, ==, "2-3");
  /* an empty plan (not placed yet) is no plan */
  g_assert_false (g_array_index (vm->threads, QpinTopThread, 1).has_plan);
}

/* vm a: vCPU 0 alone on CPU 1, runs 800 ms of 1 s and waits 100 ms;
 * vCPU 1 (planned on CPU 2) was moved to CPU 0: off-plan, idle.
 * vm b (degraded): vCPU 0 on CPU 0 (55 % busy) ran 500 ms; the daemon saw
 * it drift. */
static const char status_json[]
  = "{\"vms\":[{\"name\":\"a\",\"pid\":10,\"state\":\"pinned\",\"threads\":["
    "{\"role\":\"vcpu\",\"index\":0,\"tid\":11,\"cpus\":\"1\",\"drift\":false},"
    "{\"role\":\"vcpu\",\"index\":1,\"tid\":12,\"cpus\":\"2\",\"drift\":false}]},"
    "{\"name\":\"b\",\"pid\":20,\"state\":\"degraded\",\"threads\":["
    "{\"role\":\"vcpu\",\"index\":0,\"tid\":21,\"cpus\":\"0\",\"drift\":true}]}]}";

typedef struct {
  char *root;
  QpinSampler *sampler;
  GPtrArray *vms;
} Scene;

static void
scene_set_up (Scene *s, gconstpointer data)
{
  Tree t;
  const guint64 before[4] = { 1000, 1000, 1000, 1000 };
  const guint64 after[4] = { 1055, 1095, 1000, 1000 };

  s->root = g_dir_make_tmp ("qpin-top-XXXXXX", NULL);
  t.root = s->root;
  s->sampler = qpin_sampler_new (s->root);
  qpin_sampler_set_perf (s->sampler, NULL, NULL);
  s->vms = status_of (status_json, NULL);
  tree_host (&t, 10000, before, 100);
  tree_task (&t, 10, 11, "CPU 0/KVM", 1000, 0, 1, "1", 5);
  tree_task (&t, 10, 12, "CPU 1/KVM", 1000, 0, 2, "2", 0);
  tree_task (&t, 20, 21, "CPU 0/KVM", 0, 0, 0, "0", 0);
  qpin_top_sync (s->sampler, s->vms);
  g_assert_true (qpin_sampler_sample (s->sampler, 5 * SEC, NULL));
  tree_host (&t, 10100, after, 1100);
  tree_task (&t, 10, 11, "CPU 0/KVM", 1800, 100, 1, "1", 7);
  tree_task (&t, 10, 12, "CPU 1/KVM", 1000, 0, 0, "0-3", 0);
  tree_task (&t, 20, 21, "CPU 0/KVM", 500, 0, 0, "0", 0);
  g_assert_true (qpin_sampler_sample (s->sampler, 6 * SEC, NULL));
}

static void
scene_tear_down (Scene *s, gconstpointer data)
{
  rm_rf (s->root);
  g_free (s->root);
  qpin_sampler_free (s->sampler);
  g_ptr_array_unref (s->vms);
}

static char *
rows_text (Scene *s, QpinTopSort sort, GHashTable *collapsed)
{
  g_autoptr (GPtrArray) rows = qpin_top_rows (s->sampler, s->vms, sort, collapsed, FALSE);
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < rows->len; i++)
    g_string_append_printf (text, "%s\n", ((QpinTopRow *) g_ptr_array_index (rows, i))->text);
  return g_string_free (text, FALSE);
}

/* The table: VMs by their threads' total %CPU, threads by theirs; FLAGS O
 * (off-plan), D (drift), S (vm b's vCPU ran on CPU 0, the SMT sibling of
 * vm a's vCPU 0's CPU 1), N (CPU 1 was 95 % busy, its owner ran 80 %). */
static void
test_rows (Scene *s, gconstpointer data)
{
  g_autofree char *by_cpu = rows_text (s, QPIN_TOP_SORT_CPU, NULL);
  g_autofree char *by_name = NULL, *folded = NULL, *titles = qpin_top_column_titles (FALSE);
  g_autofree char *header = NULL;
  g_autoptr (GHashTable) collapsed = g_hash_table_new (NULL, NULL);
  QpinTopSource daemon = { .kind = QPIN_TOP_SOURCE_DAEMON };

  g_assert_cmpstr (titles, ==,
                   "VM               ROLE      IDX      TID  CPU PLANNED      %CPU %GUEST  %WAIT "
                   " MIG/s   CSW/s FLAGS");
  g_assert_cmpstr (by_cpu, ==,
                   "- a              pinned              10                   80.0    0.0   10.0 "
                   "   2.0   800.0 2 threads\n"
                   "a                vcpu        0       11    1 1            80.0    0.0   10.0 "
                   "   2.0   800.0 SN\n"
                   "a                vcpu        1       12    0 2             0.0    0.0    0.0 "
                   "   0.0     0.0 O\n"
                   "- b              degraded            20                   50.0    0.0    0.0 "
                   "   0.0   500.0 1 threads\n"
                   "b                vcpu        0       21    0 0            50.0    0.0    0.0 "
                   "   0.0   500.0 DS\n");
  /* by name: a before b, threads in the daemon's order */
  by_name = rows_text (s, QPIN_TOP_SORT_NAME, NULL);
  g_assert_true (strstr (by_name, "- a") < strstr (by_name, "- b"));
  g_assert_true (strstr (by_name, "vcpu        0       11") < strstr (by_name, "vcpu        1"));
  /* vm a collapsed: its summary line only */
  g_hash_table_add (collapsed, GINT_TO_POINTER (10));
  folded = rows_text (s, QPIN_TOP_SORT_CPU, collapsed);
  g_assert_true (g_str_has_prefix (folded, "+ a "));
  g_assert_null (strstr (folded, "       11 "));
  g_assert_nonnull (strstr (folded, "       21 "));

  header = qpin_top_header (s->sampler, s->vms, &daemon);
  g_assert_cmpstr (header, ==, "host busy 37.5 %, 4 CPUs; 2 VMs: 1 pinned, 1 degraded, 0 failed");
}

static JsonObject *
thread_of (JsonObject *root, guint vm, guint thread)
{
  JsonObject *v = json_array_get_object_element (json_object_get_array_member (root, "vms"), vm);
  return json_array_get_object_element (json_object_get_array_member (v, "threads"), thread);
}

/* The JSON document: the shared shape, stats per thread, host per CPU, and
 * why IPC is null. */
static void
test_json (Scene *s, gconstpointer data)
{
  g_autoptr (JsonNode) doc = qpin_top_to_json (s->sampler, s->vms);
  JsonObject *root = json_node_get_object (doc);
  JsonObject *a0 = thread_of (root, 0, 0), *a1 = thread_of (root, 0, 1);
  JsonObject *st = json_object_get_object_member (a0, "stats");
  JsonObject *totals = json_object_get_object_member (
    json_array_get_object_element (json_object_get_array_member (root, "vms"), 0), "totals");
  JsonArray *cpus
    = json_object_get_array_member (json_object_get_object_member (root, "host"), "cpus");

  /* the samples were 1 s apart */
  g_assert_cmpfloat (json_object_get_double_member (root, "interval_s"), ==, 1.0);
  g_assert_cmpstr (json_object_get_string_member (a0, "role"), ==, "vcpu");
  g_assert_cmpint (json_object_get_int_member (a0, "tid"), ==, 11);
  g_assert_cmpstr (json_object_get_string_member (a0, "cpus"), ==, "1");
  g_assert_cmpfloat (json_object_get_double_member (st, "cpu_pct"), ==, 80.0);
  g_assert_cmpfloat (json_object_get_double_member (st, "wait_pct"), ==, 10.0);
  g_assert_cmpfloat (json_object_get_double_member (st, "migrations"), ==, 2.0);
  g_assert_cmpint (json_object_get_int_member (st, "cpu"), ==, 1);
  g_assert_false (json_object_get_boolean_member (st, "off_plan"));
  g_assert_true (json_object_get_boolean_member (st, "noise"));
  g_assert_true (json_object_get_null_member (st, "ipc"));
  g_assert_true (json_object_get_null_member (st, "llc_mpki"));
  g_assert_true (
    json_object_get_boolean_member (json_object_get_object_member (a1, "stats"), "off_plan"));
  g_assert_cmpfloat (json_object_get_double_member (totals, "vcpus_pct"), ==, 80.0);
  g_assert_cmpuint (json_array_get_length (cpus), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (cpus, 1), "owner"),
                   ==, "a/vcpu 0");
  g_assert_cmpfloat (
    json_object_get_double_member (json_array_get_object_element (cpus, 1), "noise_pct"), ==, 15.0);
  g_assert_true (json_object_get_null_member (json_array_get_object_element (cpus, 3), "owner"));
  g_assert_cmpstr (json_object_get_string_member (root, "pmu"), ==, "hardware counters are off");
}

/* A thread that appears between samples has no rates yet: "stats": null,
 * "-" in the table; one that vanished is gone: no CPU, no rates, flagged G
 * (and D, as the daemon said). */
static void
test_new_and_gone (Scene *s, gconstpointer data)
{
  Tree t = { s->root };
  QpinTopVm *a = g_ptr_array_index (s->vms, 0);
  QpinTopThread io = { .role = QPIN_ROLE_IOTHREAD, .tid = 13 };
  g_autofree char *path = g_build_filename (s->root, "proc/20/task/21", NULL);
  g_autoptr (JsonNode) doc = NULL;
  g_autofree char *text = NULL;

  tree_task (&t, 10, 13, "IO iothread0", 0, 0, 2, "0-3", 0);
  g_array_append_val (a->threads, io);
  rm_rf (path);
  qpin_top_sync (s->sampler, s->vms);
  g_assert_true (qpin_sampler_sample (s->sampler, 7 * SEC, NULL));
  doc = qpin_top_to_json (s->sampler, s->vms);
  g_assert_true (
    json_object_get_null_member (thread_of (json_node_get_object (doc), 0, 2), "stats"));
  g_assert_true (
    json_object_get_boolean_member (thread_of (json_node_get_object (doc), 1, 0), "gone"));
  text = rows_text (s, QPIN_TOP_SORT_CPU, NULL);
  g_assert_nonnull (strstr (text, "a                iothread    0       13    2 -               -"
                                  "      -      -      -       - -\n"));
  g_assert_nonnull (strstr (text, "b                vcpu        0       21    - 0               -"
                                  "      -      -      -       - GD\n"));
}

typedef struct {
  const char *name;
  GMutex lock;
  GCond cond;
  gboolean named, stop;
} Named;

static gpointer
named_thread (gpointer data)
{
  Named *n = data;

  pthread_setname_np (pthread_self (), n->name);
  g_mutex_lock (&n->lock);
  n->named = TRUE;
  g_cond_broadcast (&n->cond);
  while (!n->stop)
    g_cond_wait (&n->cond, &n->lock);
  g_mutex_unlock (&n->lock);
  return NULL;
}

/* --pid: roles from QEMU's thread names, strictly: "CPU N/..." with N a
 * number is vCPU N, "IO ..." an iothread, anything else (a '/' early, a
 * name cut short) other; the process itself is the emulator. */
static void
test_pid_roles (void)
{
  const char *names[] = { "CPU 3/KVM", "a/b", "CPU x/TCG", "IO io0", "CPU 12", "CPU /KVM" };
  const QpinThreadRole want[] = { QPIN_ROLE_VCPU,     QPIN_ROLE_OTHER, QPIN_ROLE_OTHER,
                                  QPIN_ROLE_IOTHREAD, QPIN_ROLE_OTHER, QPIN_ROLE_OTHER };
  Named n[G_N_ELEMENTS (names)];
  GThread *threads[G_N_ELEMENTS (names)];
  g_autoptr (GArray) pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) vms = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *name = g_strdup_printf ("pid %d", getpid ());
  QpinTopSource source = { .kind = QPIN_TOP_SOURCE_PIDS, .pids = pids };
  GPid self = getpid (), gone = G_MAXINT;
  const QpinTopVm *vm;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      n[i] = (Named){ .name = names[i] };
      g_mutex_init (&n[i].lock);
      g_cond_init (&n[i].cond);
      threads[i] = g_thread_new (NULL, named_thread, &n[i]);
      g_mutex_lock (&n[i].lock);
      while (!n[i].named)
        g_cond_wait (&n[i].cond, &n[i].lock);
      g_mutex_unlock (&n[i].lock);
    }
  g_array_append_val (pids, self);
  g_array_append_val (pids, gone);
  vms = qpin_top_source_read (&source, problems, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (vms->len, ==, 1);
  /* a pid that does not exist is one problem line, not an error */
  g_assert_cmpuint (problems->len, ==, 1);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (problems, 0), "pid 2147483647: "));
  vm = g_ptr_array_index (vms, 0);
  g_assert_cmpstr (vm->name, ==, name);
  for (guint j = 0; j < vm->threads->len; j++)
    {
      const QpinTopThread *t = &g_array_index (vm->threads, QpinTopThread, j);
      if (t->tid == self)
        g_assert_cmpint (t->role, ==, QPIN_ROLE_EMULATOR);
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        {
          char comm[64] = "";
          g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/comm", self, t->tid);
          g_autofree char *text = NULL;

          if (!g_file_get_contents (path, &text, NULL, NULL))
            continue;
          g_strlcpy (comm, g_strchomp (text), sizeof comm);
          if (g_str_equal (comm, names[i]))
            {
              g_test_message ("'%s': %s %d", comm, qpin_thread_role_to_string (t->role), t->index);
              g_assert_cmpint (t->role, ==, want[i]);
              if (t->role == QPIN_ROLE_VCPU)
                g_assert_cmpint (t->index, ==, 3);
            }
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_mutex_lock (&n[i].lock);
      n[i].stop = TRUE;
      g_cond_broadcast (&n[i].cond);
      g_mutex_unlock (&n[i].lock);
      g_thread_join (threads[i]);
      g_mutex_clear (&n[i].lock);
      g_cond_clear (&n[i].cond);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/top/status-strict", test_status_strict);
  g_test_add_func ("/top/pid-roles", test_pid_roles);
  g_test_add ("/top/rows", Scene, NULL, scene_set_up, test_rows, scene_tear_down);
  g_test_add ("/top/json", Scene, NULL, scene_set_up, test_json, scene_tear_down);
  g_test_add ("/top/new-and-gone", Scene, NULL, scene_set_up, test_new_and_gone, scene_tear_down);
  return g_test_run ();
}
