/* test-topology-reader.c: fixtures, captures, live machine, garbage files */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "qpin-topology-json.h"
#include "qpin-topology-reader.h"

static char *
fixture_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", name, NULL);
}

static char *
to_json (const QpinTopology *topo)
{
  g_autoptr (JsonNode) node = qpin_topology_to_json (topo);
  return json_to_string (node, TRUE);
}

static void
test_fixtures (void)
{
  static const struct {
    const char *name;
    guint nodes, packages, llcs, cores, online, max_threads;
    const char *offline, *isolated, *cpu_less;
  } cases[] = {
    { "1n-4c8t", 1, 1, 1, 4, 8, 2, "", "", "" },
    { "2s-8c-2t-2n", 2, 2, 2, 16, 32, 2, "", "", "" },
    { "epyc-nps4", 4, 1, 8, 32, 64, 2, "", "", "" },
    { "4n-unequal", 4, 2, 3, 7, 12, 2, "12-13", "2-3,9-10", "3" },
    { "8n-512", 8, 2, 32, 256, 512, 2, "", "", "" },
    { "lab-2s2c2t", 2, 2, 2, 4, 8, 2, "", "", "" },
    { "lab-4n-unequal", 4, 4, 4, 8, 8, 1, "", "", "3" },
    { "lab-1n4c", 1, 1, 1, 4, 4, 1, "", "", "" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *root = fixture_path (cases[i].name);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinTopology) topo = qpin_topology_read (root, NULL, &error);
      g_autofree char *offline = NULL, *isolated = NULL;
      QpinCpuset cpu_less;
      g_autofree char *cl = NULL;

      g_assert_no_error (error);
      g_assert_cmpuint (qpin_topology_n_nodes (topo), ==, cases[i].nodes);
      g_assert_cmpuint (topo->packages->len, ==, cases[i].packages);
      g_assert_cmpuint (topo->llcs->len, ==, cases[i].llcs);
      g_assert_cmpuint (topo->cores->len, ==, cases[i].cores);
      g_assert_cmpuint (qpin_cpuset_count (&topo->online), ==, cases[i].online);
      g_assert_cmpuint (topo->max_threads, ==, cases[i].max_threads);
      offline = qpin_cpuset_format (&topo->offline);
      isolated = qpin_cpuset_format (&topo->isolated);
      g_assert_cmpstr (offline, ==, cases[i].offline);
      g_assert_cmpstr (isolated, ==, cases[i].isolated);
      qpin_cpuset_clear_all (&cpu_less);
      for (guint n = 0; n < qpin_topology_n_nodes (topo); n++)
        {
          const QpinTopoNode *node = qpin_topology_node (topo, n);
          g_assert_cmpuint (node->mem_total_kb, >, 0);
          if (qpin_cpuset_is_empty (&node->cpus))
            qpin_cpuset_add (&cpu_less, node->id);
        }
      cl = qpin_cpuset_format (&cpu_less);
      g_assert_cmpstr (cl, ==, cases[i].cpu_less);
      /* every online CPU sits in exactly one core, LLC group and node */
      QPIN_CPUSET_FOREACH (cpu, &topo->online)
        {
          g_assert_cmpint (qpin_topology_cpu_core (topo, (guint) cpu), >=, 0);
          g_assert_cmpint (qpin_topology_cpu_llc (topo, (guint) cpu), >=, 0);
          g_assert_cmpint (qpin_topology_cpu_node (topo, (guint) cpu), >=, 0);
        }
    }
}

/* capture ROOT into a temporary directory, read it back: same model */
static void
check_capture (const char *root)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) files = NULL;
  g_autoptr (QpinTopology) topo = qpin_topology_read (root, &files, &error);
  g_autofree char *dir = g_dir_make_tmp ("qpin-capture-XXXXXX", &error);
  g_autoptr (QpinTopology) again = NULL;
  g_autofree char *a = NULL, *b = NULL;
  g_autofree char *rm = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (files);
  g_assert_cmpuint (files->len, >, 4);
  g_assert_true (qpin_topology_write_capture (files, dir, &error));
  g_assert_no_error (error);
  again = qpin_topology_read (dir, NULL, &error);
  g_assert_no_error (error);
  a = to_json (topo);
  b = to_json (again);
  g_assert_cmpstr (a, ==, b);
  rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (rm), ==, 0);
}

static void
test_capture (void)
{
  const char *names[] = { "1n-4c8t", "4n-unequal", "epyc-nps4", "lab-4n-unequal" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *root = fixture_path (names[i]);
      check_capture (root);
    }
}

static void
test_live (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) live = NULL;
  g_autoptr (GPtrArray) files = NULL;
  g_autoptr (QpinTopology) sysfs = NULL;

  if (!g_file_test ("/sys/devices/system/cpu/online", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no sysfs");
      return;
    }
  check_capture ("/");
  /* libnuma (live) and sysfs (capture mode) agree on what both know */
  live = qpin_topology_read ("/", NULL, &error);
  g_assert_no_error (error);
  sysfs = qpin_topology_read ("/", &files, &error);
  g_assert_no_error (error);
  g_assert_true (qpin_cpuset_equal (&live->online, &sysfs->online));
  g_assert_cmpuint (qpin_topology_n_nodes (live), ==, qpin_topology_n_nodes (sysfs));
  for (guint i = 0; i < qpin_topology_n_nodes (live); i++)
    {
      g_assert_cmpuint (qpin_topology_node (live, i)->mem_total_kb, ==,
                        qpin_topology_node (sysfs, i)->mem_total_kb);
      for (guint j = 0; j < qpin_topology_n_nodes (live); j++)
        g_assert_cmpuint (qpin_topology_distance (live, i, j), ==,
                          qpin_topology_distance (sysfs, i, j));
    }
}

/* A writable copy of a fixture (through the capture path). */
static char *
copy_fixture (const char *name)
{
  g_autofree char *root = fixture_path (name);
  g_autoptr (GPtrArray) files = NULL;
  g_autoptr (QpinTopology) topo = qpin_topology_read (root, &files, NULL);
  char *dir = g_dir_make_tmp ("qpin-bad-XXXXXX", NULL);

  g_assert_nonnull (topo);
  g_assert_true (qpin_topology_write_capture (files, dir, NULL));
  return dir;
}

static void
test_garbage (void)
{
  static const struct {
    const char *file;
    const char *contents; /* NULL: delete the file */
    int domain;           /* 0 reader, 1 policy */
    const char *message;  /* %s: the directory */
  } cases[] = {
    { "sys/devices/system/cpu/online", "0-3,x\n", 0,
      "%s/sys/devices/system/cpu/online: invalid value '0-3,x': expected a cpulist such as '0-3,8' "
      "(invalid cpulist '0-3,x': expected a CPU number at offset 4)" },
    { "sys/devices/system/cpu/present", NULL, 0,
      "Failed to open file “%s/sys/devices/system/cpu/present”: No such file or directory" },
    { "sys/devices/system/cpu/cpu2/topology/core_id", "two\n", 0,
      "%s/sys/devices/system/cpu/cpu2/topology/core_id: invalid value 'two': expected a "
      "non-negative integer" },
    { "sys/devices/system/cpu/cpu3/topology/physical_package_id", NULL, 0,
      "Failed to open file “%s/sys/devices/system/cpu/cpu3/topology/physical_package_id”: No such "
      "file or directory" },
    { "sys/devices/system/cpu/cpu1/cache/index3/level", "L3\n", 0,
      "%s/sys/devices/system/cpu/cpu1/cache/index3/level: invalid value 'L3': expected a cache "
      "level from 1 to 9" },
    { "sys/devices/system/node/node0/distance", "10 x\n", 0,
      "%s/sys/devices/system/node/node0/distance: invalid value '10 x': expected node distances "
      "from 1 to 255 separated by spaces" },
    { "sys/devices/system/node/node0/meminfo", "Node 0 MemTotal: lots kB\nNode 0 MemFree: 1 kB\n",
      0,
      "%s/sys/devices/system/node/node0/meminfo: invalid value 'Node 0 MemTotal: lots kB': "
      "expected "
      "'Node M MemTotal: N kB' and 'Node M MemFree: N kB' lines" },
    { "sys/devices/system/node/node0/cpulist", "0-6\n", 1,
      "%s: online cpus 7 are in no node's cpulist" },
    { "sys/devices/system/cpu/cpu4/topology/thread_siblings_list", "4-5\n", 1,
      "%s: cpu 0 has thread siblings 0,4 but cpu 4 has 4-5" },
    { "sys/devices/system/node/node0/distance", "10 20\n", 1,
      "%s: node 0 has 2 distances, expected 1 (one per node)" },
    { "sys/devices/system/cpu/present", "0-6\n", 1, "%s: cpus 7 are online but not present" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *dir = copy_fixture ("1n-4c8t");
      g_autofree char *path = g_build_filename (dir, cases[i].file, NULL);
      g_autofree char *expected = NULL;
      g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinTopology) topo = NULL;

      if (cases[i].contents)
        g_assert_true (g_file_set_contents (path, cases[i].contents, -1, NULL));
      else
        g_assert_cmpint (g_unlink (path), ==, 0);
      topo = qpin_topology_read (dir, NULL, &error);
      g_assert_null (topo);
      g_assert_nonnull (error);
      if (error->domain != (cases[i].domain ? QPIN_POLICY_ERROR : QPIN_READER_ERROR))
        g_error ("case %zu: %s", i, error->message);
      {
        g_auto (GStrv) parts = g_strsplit (cases[i].message, "%s", -1);
        expected = g_strjoinv (dir, parts);
      }
      g_assert_cmpstr (error->message, ==, expected);
      g_assert_cmpint (system (rm), ==, 0);
    }
}

static void
test_fallbacks (void)
{
  g_autofree char *dir = copy_fixture ("2s-8c-2t-2n");
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_autofree char *cmd
    = g_strdup_printf ("rm -rf '%s'/sys/devices/system/cpu/cpu*/cache "
                       "'%s'/sys/devices/system/node "
                       "'%s'/sys/devices/system/cpu/isolated "
                       "'%s'/sys/devices/system/cpu/cpu*/topology/thread_siblings_list",
                       dir, dir, dir, dir);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;

  g_assert_cmpint (system (cmd), ==, 0);
  topo = qpin_topology_read (dir, NULL, &error);
  g_assert_no_error (error);
  /* no cache: one LLC group per package; no node dir: one node; no siblings: no SMT */
  g_assert_true (topo->llc_derived);
  g_assert_cmpuint (topo->llcs->len, ==, 2);
  g_assert_cmpuint (qpin_topology_n_nodes (topo), ==, 1);
  g_assert_cmpuint (topo->max_threads, ==, 1);
  g_assert_cmpuint (topo->cores->len, ==, 32);
  g_assert_cmpint (system (rm), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/topology/fixtures", test_fixtures);
  g_test_add_func ("/topology/capture", test_capture);
  g_test_add_func ("/topology/live", test_live);
  g_test_add_func ("/topology/garbage", test_garbage);
  g_test_add_func ("/topology/fallbacks", test_fallbacks);
  return g_test_run ();
}
