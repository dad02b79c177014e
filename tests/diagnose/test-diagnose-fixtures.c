/* test-diagnose-fixtures.c: each `qpin diagnose` finding from a fixture
 * tree (tests/fixtures/diagnose-*, made by gen-diagnose-fixtures.py): two
 * samples, ROOT and ROOT/after, standing for the default 2 seconds */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct {
  const char *fixture;
  const char *id;    /* the one finding expected (NULL: none) */
  guint count;       /* how many findings with that id */
  int status;        /* exit status: 1 with a warning or critical, else 0 */
  const char *field; /* an evidence member of the first one, as JSON */
  const char *value;
} Case;

/* Every number below follows from the fixture's deltas over 2 s: see
 * gen-diagnose-fixtures.py. */
static const Case cases[] = {
  { "clean", NULL, 0, 0, NULL, NULL },
  /* 0.5 s of 2 s waiting; db's vCPU 0 ran 1.5 s of 2 s on CPU 1 */
  { "vcpu-wait", "vcpu-wait", 1, 1, "wait_percent", "25.0" },
  { "vcpus-exceed", "vcpus-exceed-host-cpus", 1, 1, "vcpus", "9" },
  /* 1.2 s of 2 s, on CPUs 1-3 while the vCPUs use 1 and 2 */
  { "emulator-hot", "emulator-hot", 1, 1, "shares_cpus_with_vcpus", "true" },
  /* 200 more on CPU 1: 100 per second; and 20 on CPU 2 */
  { "irqs", "irqs-on-dedicated", 2, 1, "rate", "100.0" },
  /* only CPU 2 banned, dedicated are 1-2 */
  { "irqbalance", "irqbalance-unaware", 1, 1, "not_banned", "\"1\"" },
  { "irqbalance-banned", NULL, 0, 0, NULL, NULL },
  /* N0=100 N1=900 with the vCPUs on node 0 */
  { "numa", "numa-remote-memory", 1, 1, "vcpu_nodes", "\"0\"" },
  { "accel-tcg", "accel-tcg", 1, 1, "source", "\"CPU 1/TCG\"" },
  { "halt-polling", "halt-polling", 1, 0, "halt_poll_ns", "200000" },
  /* debugfs: 0.4 s of polling in 2 s */
  { "halt-polling-measured", "halt-polling", 1, 1, "polling_percent", "20.0" },
  /* 20 ticks of ksmd in 2 s at 100 Hz */
  { "ksm", "ksm-active", 1, 1, "pages_sharing", "5000" },
  { "thp-off", "thp-off", 1, 1, "transparent_hugepage", "\"always madvise [never]\"" },
  { "governor", "governor-powersave", 1, 1, "cpus", "[1,2]" },
  { "no-isolation", "no-isolation", 1, 0, "cpus", "\"1-2\"" },
  /* a host task 1.5 s of 2 s on CPU 5, CPU 1's sibling */
  { "smt-sibling", "smt-sibling-busy", 1, 1, "sibling_busy_percent", "75.0" },
};

static JsonNode *
run_diagnose_root (const char *root, int *status)
{
  const char *argv[] = { g_getenv ("QPIN_BIN"),
                         "diagnose",
                         "--json",
                         "--root",
                         root,
                         "--pid",
                         "100",
                         "--pid",
                         "200",
                         NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;
  JsonNode *node;

  g_assert_nonnull (argv[0]);
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &wait_status, &error));
  g_assert_no_error (error);
  g_test_message ("%s\n%s", out, err);
  g_assert_true (WIFEXITED (wait_status));
  *status = WEXITSTATUS (wait_status);
  g_assert_cmpstr (err, ==, "");
  node = json_from_string (out, &error);
  g_assert_no_error (error);
  return node;
}

static JsonNode *
run_diagnose (const char *fixture, int *status)
{
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "fixtures", fixture, NULL);

  return run_diagnose_root (root, status);
}

static void
test_case (gconstpointer data)
{
  const Case *c = data;
  g_autofree char *fixture = g_strdup_printf ("diagnose-%s", c->fixture);
  int status = -1;
  g_autoptr (JsonNode) root = run_diagnose (fixture, &status);
  JsonArray *findings = json_object_get_array_member (json_node_get_object (root), "findings");
  JsonObject *first = NULL;
  guint count = 0;

  for (guint i = 0; i < json_array_get_length (findings); i++)
    {
      JsonObject *f = json_array_get_object_element (findings, i);
      const char *id = json_object_get_string_member (f, "id");

      g_assert_cmpstr (id, ==, c->id);
      g_assert_nonnull (json_object_get_string_member (f, "fix"));
      if (count++ == 0)
        first = f;
    }
  g_assert_cmpuint (count, ==, c->count);
  g_assert_cmpint (status, ==, c->status);
  if (c->field)
    {
      JsonNode *value
        = json_object_get_member (json_object_get_object_member (first, "evidence"), c->field);
      g_autofree char *text = NULL;

      g_assert_nonnull (value);
      text = json_to_string (value, FALSE);
      g_assert_cmpstr (text, ==, c->value);
    }
}

/* vcpu-wait names who ran on the vCPU's CPU: the other VM's vCPU first */
static void
test_wait_names_other_vm (void)
{
  int status = -1;
  g_autoptr (JsonNode) root = run_diagnose ("diagnose-vcpu-wait", &status);
  JsonObject *f = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "findings"), 0);
  JsonArray *others
    = json_object_get_array_member (json_object_get_object_member (f, "evidence"), "others");

  g_assert_cmpstr (json_object_get_string_member (f, "vm"), ==, "web");
  g_assert_cmpstr (json_object_get_string_member (f, "severity"), ==, "critical");
  g_assert_cmpuint (json_array_get_length (others), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (others, 0), "who"),
                   ==, "vm 'db' vcpu 0");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (others, 1), "who"),
                   ==, "host task 'kworker/1:1' (pid 300)");
}

/* No schedstat, no /proc/interrupts, no sys/kernel: those checks say
 * "not checked" and why, the rest run, nothing is found, exit 0 */
static void
test_missing_files (void)
{
  int status = -1;
  g_autoptr (JsonNode) root = run_diagnose ("diagnose-missing", &status);
  JsonObject *o = json_node_get_object (root);
  JsonArray *not_checked = json_object_get_array_member (o, "not_checked");
  g_autoptr (GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);

  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "findings")), ==, 0);
  for (guint i = 0; i < json_array_get_length (not_checked); i++)
    g_hash_table_add (ids, (gpointer) json_object_get_string_member (
                             json_array_get_object_element (not_checked, i), "id"));
  for (const char *const *id = (const char *const[]){ "thp-off", "ksm-active", "irqs-on-dedicated",
                                                      "vcpu-wait", "emulator-hot", NULL };
       *id; id++)
    g_assert_true (g_hash_table_contains (ids, *id));
}

/* `qpin topology --capture` of a tree saves what diagnose reads there:
 * diagnose on the capture finds exactly what it finds on the original */
static void
test_capture (void)
{
  g_autofree char *root
    = g_test_build_filename (G_TEST_DIST, "fixtures", "diagnose-vcpu-wait", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("qpin-diag-capture-XXXXXX", NULL);
  g_autofree char *capture = g_build_filename (tmp, "capture", NULL);
  const char *argv[]
    = { g_getenv ("QPIN_BIN"), "topology", "--sysfs-root", root, "--capture", capture, NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  g_autoptr (JsonNode) original = NULL;
  g_autoptr (JsonNode) captured = NULL;
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  int wait_status = -1, s1 = -1, s2 = -1;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                               NULL, &err, &wait_status, &error));
  g_assert_no_error (error);
  g_test_message ("%s", err);
  g_assert_true (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 0);
  original = run_diagnose_root (root, &s1);
  captured = run_diagnose_root (capture, &s2);
  a = json_to_string (original, FALSE);
  b = json_to_string (captured, FALSE);
  g_assert_cmpstr (b, ==, a);
  g_assert_cmpint (s1, ==, s2);
}

/* The VM exits between the samples: its per-thread checks say the thread
 * is gone, nothing is found, exit 0 */
static void
test_vm_exits (void)
{
  int status = -1;
  g_autoptr (JsonNode) root = run_diagnose ("diagnose-vm-exits", &status);
  JsonObject *o = json_node_get_object (root);
  JsonArray *not_checked = json_object_get_array_member (o, "not_checked");
  guint gone = 0;

  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "findings")), ==, 0);
  for (guint i = 0; i < json_array_get_length (not_checked); i++)
    {
      JsonObject *n = json_array_get_object_element (not_checked, i);
      if (strstr (json_object_get_string_member (n, "why"), "thread gone during the sample"))
        {
          g_assert_cmpstr (json_object_get_string_member (n, "vm"), ==, "web");
          gone++;
        }
    }
  /* two vCPUs and the emulator */
  g_assert_cmpuint (gone, ==, 3);
}

/* qpin plan --map --svg FILE: the picture on stdout, the SVG written with
 * the vCPU's element (one vCPU on a 2-CPU host: it gets a CPU of its own) */
static void
test_plan_svg (void)
{
  g_autofree char *topo = g_test_build_filename (G_TEST_DIST, "fixtures", "1n-2c", NULL);
  g_autofree char *tmp = g_dir_make_tmp ("qpin-diag-svg-XXXXXX", NULL);
  g_autofree char *svg_path = g_build_filename (tmp, "plan.svg", NULL);
  const char *argv[] = { g_getenv ("QPIN_BIN"),
                         "plan",
                         "--topology",
                         topo,
                         "--vm",
                         "web:1",
                         "--map",
                         "--svg",
                         svg_path,
                         NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *svg = NULL;
  int wait_status = -1;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &wait_status, &error));
  g_assert_no_error (error);
  g_test_message ("%s%s", out, err);
  g_assert_true (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 0);
  g_assert_cmpstr (err, ==, "");
  g_assert_true (g_str_has_prefix (out, "node 0 (cpus 0-1)\n"));
  g_assert_nonnull (strstr (out, "web/vcpu0"));
  g_assert_true (g_file_get_contents (svg_path, &svg, NULL, NULL));
  g_assert_true (g_str_has_prefix (svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  g_assert_nonnull (strstr (svg, "data-vm=\"web\" data-vcpu=\"0\""));
  g_unlink (svg_path);
  g_rmdir (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/diagnose-fixtures/%s", cases[i].fixture);
      g_test_add_data_func (path, &cases[i], test_case);
    }
  g_test_add_func ("/diagnose-fixtures/vcpu-wait-names", test_wait_names_other_vm);
  g_test_add_func ("/diagnose-fixtures/missing-files", test_missing_files);
  g_test_add_func ("/diagnose-fixtures/capture", test_capture);
  g_test_add_func ("/diagnose-fixtures/vm-exits", test_vm_exits);
  g_test_add_func ("/diagnose-fixtures/plan-svg", test_plan_svg);
  return g_test_run ();
}
