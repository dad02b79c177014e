/* test-topology-reader.c: fixtures, captures, live machine, garbage files */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "qpin-proc-sample.h"
#include "qpin-proc.h"
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
    /* shapes of real hosts once refused (issue #16) */
    { "no-present", 1, 1, 1, 4, 7, 2, "7", "", "" },
    { "node0-offline", 1, 1, 1, 2, 4, 2, "0-3", "", "" },
    { "cxl-memory-node", 2, 1, 1, 4, 4, 1, "", "", "2" },
    { "cpu0-offline", 1, 1, 1, 3, 3, 1, "0", "", "" },
    { "node-cpus-offline", 2, 1, 1, 2, 4, 2, "4-7", "", "1" },
    { "no-cache", 2, 2, 2, 4, 8, 2, "", "", "" },
    { "no-distance", 2, 2, 2, 4, 8, 2, "", "", "" },
    { "hybrid-13th-gen", 1, 1, 1, 14, 20, 2, "", "", "" },
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

/* The facts the placer uses, on one line: CPU sets, nodes (id:cpus:distances:MiB),
 * LLC groups (level:cpus, L0 = from packages), cores and SMT width. */
static char *
summary (const QpinTopology *topo)
{
  GString *s = g_string_new (NULL);
  g_autofree char *present = qpin_cpuset_format (&topo->present);
  g_autofree char *online = qpin_cpuset_format (&topo->online);

  g_string_append_printf (s, "present %s; online %s; nodes", present, online);
  for (guint i = 0; i < qpin_topology_n_nodes (topo); i++)
    {
      const QpinTopoNode *node = qpin_topology_node (topo, i);
      g_autofree char *cpus = qpin_cpuset_format (&node->cpus);

      g_string_append_printf (s, " %u:%s:", node->id, cpus);
      for (guint j = 0; j < qpin_topology_n_nodes (topo); j++)
        g_string_append_printf (s, "%s%u", j ? "," : "", qpin_topology_distance (topo, i, j));
      g_string_append_printf (s, ":%" G_GUINT64_FORMAT, node->mem_total_kb / 1024);
    }
  g_string_append (s, "; llcs");
  for (guint l = 0; l < topo->llcs->len; l++)
    {
      const QpinTopoLlc *llc = &g_array_index (topo->llcs, QpinTopoLlc, l);
      g_autofree char *cpus = qpin_cpuset_format (&llc->cpus);
      g_string_append_printf (s, " L%u:%s", llc->level, cpus);
    }
  g_string_append_printf (s, "; cores %u, max threads %u", topo->cores->len, topo->max_threads);
  return g_string_free (s, FALSE);
}

static char *
notes_of (const QpinTopology *topo)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; i < topo->notes->len; i++)
    g_string_append_printf (s, "%s%s", i ? "\n" : "", (const char *) topo->notes->pdata[i]);
  return g_strdup (s->str);
}

/* Real host shapes read whole, saying how: the notes are exact, and the
 * complete fixtures have none. */
static void
test_notes (void)
{
  static const struct {
    const char *name;
    const char *summary;
    const char *notes;
  } cases[] = {
    { "1n-4c8t",
      "present 0-7; online 0-7; nodes 0:0-7:10:16384; llcs L3:0-7; cores 4, max threads 2", "" },
    /* cpu 7 offline: its directory holds only online = 0; cpu 0 has no online file */
    { "no-present",
      "present 0-7; online 0-6; nodes 0:0-6:10:8192; llcs L3:0-6; cores 4, max threads 2",
      "sys/devices/system/cpu/present missing; present cpus from sys/devices/system/cpu/possible\n"
      "sys/devices/system/cpu/possible missing; present cpus from the "
      "sys/devices/system/cpu/cpuN directories\n"
      "sys/devices/system/cpu/online missing; online cpus from the cpuN/online files" },
    /* node1/distance "21 10" is indexed by node id: node 1 to itself is 10 */
    { "node0-offline",
      "present 0-7; online 4-7; nodes 1:4-7:10:32768; llcs L3:4-7; cores 2, max threads 2", "" },
    /* sparse ids 0 and 2, one distance per online node */
    { "cxl-memory-node",
      "present 0-3; online 0-3; nodes 0:0-3:10,24:16384 2::24,10:65536; llcs L3:0-3; cores 4, max "
      "threads 1",
      "" },
    { "cpu0-offline",
      "present 0-3; online 1-3; nodes 0:1-3:10:4096; llcs L3:1-3; cores 3, max threads 1", "" },
    { "node-cpus-offline",
      "present 0-7; online 0-3; nodes 0:0-3:10,21:8192 1::21,10:8192; llcs L3:0-3; cores 2, max "
      "threads 2",
      "" },
    { "no-cache",
      "present 0-7; online 0-7; nodes 0:0-3:10,21:8192 1:4-7:21,10:8192; llcs L0:0-3 L0:4-7; cores "
      "4, max threads 2",
      "no cache info for cpus 0-7; LLC groups = packages" },
    /* the kernel's own defaults without a SLIT: 10 local, 20 remote */
    { "no-distance",
      "present 0-7; online 0-7; nodes 0:0-3:10,20:8192 1:4-7:20,10:8192; llcs L3:0-3 L3:4-7; cores "
      "4, max threads 2",
      "sys/devices/system/node/node0/distance missing; distances 10 local, 20 remote\n"
      "sys/devices/system/node/node1/distance missing; distances 10 local, 20 remote" },
    /* 6 P-cores with SMT, 8 E-cores in two clusters sharing an L2, one L3 */
    { "hybrid-13th-gen",
      "present 0-19; online 0-19; nodes 0:0-19:10:32768; llcs L3:0-19; cores 14, max threads 2",
      "" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *root = fixture_path (cases[i].name);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinTopology) topo = qpin_topology_read (root, NULL, &error);
      g_autofree char *sum = NULL, *notes = NULL, *text = NULL;

      g_assert_no_error (error);
      sum = summary (topo);
      notes = notes_of (topo);
      g_assert_cmpstr (sum, ==, cases[i].summary);
      g_assert_cmpstr (notes, ==, cases[i].notes);
      /* `qpin topology` shows each note on its own line */
      text = qpin_topology_to_text (topo);
      for (guint n = 0; n < topo->notes->len; n++)
        {
          g_autofree char *line = g_strdup_printf ("\nnote: %s\n", (char *) topo->notes->pdata[n]);
          g_assert_nonnull (strstr (text, line));
        }
      check_capture (root);
    }
}

static char *
kinds_of (const QpinTopology *topo)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint k = 0; k < topo->kinds->len; k++)
    {
      const QpinTopoKind *kind = &g_array_index (topo->kinds, QpinTopoKind, k);
      g_autofree char *cpus = qpin_cpuset_format (&kind->cpus);
      g_string_append_printf (s, "%s%s %s %u", k ? ", " : "", kind->name, cpus, kind->capacity);
    }
  if (topo->kinds->len)
    g_string_append_printf (s, " from %s", g_array_index (topo->kinds, QpinTopoKind, 0).source);
  return g_strdup (s->str);
}

static char *
clusters_of (const QpinTopology *topo)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint c = 0; c < topo->clusters->len; c++)
    {
      g_autofree char *cpus = qpin_cpuset_format (&g_array_index (topo->clusters, QpinCpuset, c));
      g_string_append_printf (s, "%s%s", c ? " " : "", cpus);
    }
  return g_strdup (s->str);
}

#define CPUS "sys/devices/system/cpu"
#define NO_PMU "rm -rf sys/devices/cpu_core sys/devices/cpu_atom; "
#define NO_CPPC "rm -rf " CPUS "/cpu*/acpi_cppc; "
#define NO_FREQ "rm -rf " CPUS "/cpu*/cpufreq; "

/* CPU kinds and clusters of the hybrid laptop, from each source in turn
 * (SHELL edits a copy of the fixture, run inside it). */
static void
test_kinds (void)
{
  static const char *const all_clusters = "0-1 2-3 4-5 6-7 8-9 10-11 12-15 16-19";
  static const struct {
    const char *shell;
    const char *kinds;
    const char *clusters; /* NULL: all_clusters */
    const char *notes;
  } cases[] = {
    { "true",
      "P 0-11 64, E 12-19 39 from sys/devices/cpu_core/cpus, sys/devices/cpu_atom/cpus (capacity: "
      "sys/devices/system/cpu/cpuN/acpi_cppc/highest_perf)",
      NULL, "" },
    { NO_PMU, "P 0-11 64, E 12-19 39 from sys/devices/system/cpu/cpuN/acpi_cppc/highest_perf", NULL,
      "" },
    /* ITMT favoured cores report a few units more: still one kind */
    { NO_PMU "echo 66 > " CPUS "/cpu0/acpi_cppc/highest_perf",
      "P 0-11 66, E 12-19 39 from sys/devices/system/cpu/cpuN/acpi_cppc/highest_perf", NULL, "" },
    /* 3.9 GHz is 78% of 5.0 GHz: two kinds */
    { NO_PMU NO_CPPC,
      "P 0-11 5000000, E 12-19 3900000 from sys/devices/system/cpu/cpuN/cpufreq/cpuinfo_max_freq",
      NULL, "" },
    { NO_PMU NO_CPPC NO_FREQ, "", NULL, "" },
    /* one CPU without highest_perf: that source is incomplete, the next one is used */
    { NO_PMU "rm " CPUS "/cpu3/acpi_cppc/highest_perf",
      "P 0-11 5000000, E 12-19 3900000 from sys/devices/system/cpu/cpuN/cpufreq/cpuinfo_max_freq",
      NULL, "" },
    { NO_PMU "echo fast > " CPUS "/cpu5/acpi_cppc/highest_perf",
      "P 0-11 5000000, E 12-19 3900000 from sys/devices/system/cpu/cpuN/cpufreq/cpuinfo_max_freq",
      NULL,
      "sys/devices/system/cpu/cpu5/acpi_cppc/highest_perf: invalid value 'fast': expected a "
      "positive integer; kinds not from this file" },
    /* ARM big.LITTLE: cpu_capacity, 1024 for the biggest */
    { NO_PMU NO_CPPC NO_FREQ "for c in $(seq 0 19); do echo $((c < 12 ? 1024 : 446)) > " CPUS
                             "/cpu$c/cpu_capacity; done",
      "P 0-11 1024, E 12-19 446 from sys/devices/system/cpu/cpuN/cpu_capacity", NULL, "" },
    /* three tiers (X, big, LITTLE) */
    { NO_PMU NO_CPPC NO_FREQ "for c in $(seq 0 19); do echo $((c < 2 ? 1024 : c < 12 ? 700 : 300)) "
                             "> " CPUS "/cpu$c/cpu_capacity; done",
      "K0 0-1 1024, K1 2-11 700, K2 12-19 300 from sys/devices/system/cpu/cpuN/cpu_capacity", NULL,
      "" },
    { "echo 12-13 > " CPUS "/cpu13/topology/cluster_cpus_list",
      "P 0-11 64, E 12-19 39 from sys/devices/cpu_core/cpus, sys/devices/cpu_atom/cpus (capacity: "
      "sys/devices/system/cpu/cpuN/acpi_cppc/highest_perf)",
      "", "cpu 12 shares its cluster with 12-15 but cpu 13 with 12-13; no clusters" },
    { NO_PMU NO_CPPC NO_FREQ "rm " CPUS "/cpu19/topology/cluster_cpus_list", "", "",
      "no cluster info for cpus 19; no clusters" },
    { NO_PMU NO_CPPC NO_FREQ "echo x > " CPUS "/cpu14/topology/cluster_cpus_list", "", "",
      "sys/devices/system/cpu/cpu14/topology/cluster_cpus_list: invalid value 'x': expected a "
      "cpulist such as '0-3,8' (invalid cpulist 'x': expected a CPU number at offset 0); for cpus "
      "14: cluster info ignored\n"
      "no cluster info for cpus 14; no clusters" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *dir = copy_fixture ("hybrid-13th-gen");
      g_autofree char *cmd = g_strdup_printf ("cd '%s' && %s", dir, cases[i].shell);
      g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinTopology) topo = NULL;
      g_autofree char *kinds = NULL, *clusters = NULL, *notes = NULL;

      g_assert_cmpint (system (cmd), ==, 0);
      topo = qpin_topology_read (dir, NULL, &error);
      g_assert_no_error (error);
      kinds = kinds_of (topo);
      clusters = clusters_of (topo);
      notes = notes_of (topo);
      if (g_strcmp0 (kinds, cases[i].kinds) != 0
          || g_strcmp0 (clusters, cases[i].clusters ? cases[i].clusters : all_clusters) != 0
          || g_strcmp0 (notes, cases[i].notes) != 0)
        g_error ("case %zu (%s):\n%s\n%s\n%s", i, cases[i].shell, kinds, clusters, notes);
      g_assert_cmpint (system (rm), ==, 0);
    }
}

/* One bad file in a copy of FIXTURE: the best reading the rest allows, and
 * one note naming the file; never a refusal. */
static void
test_garbage (void)
{
  static const char *const one
    = "present 0-7; online 0-7; nodes 0:0-7:10:16384; llcs L3:0-7; cores 4, max threads 2";
  static const char *const two
    = "present 0-31; online 0-31; nodes 0:0-7,16-23:10,21:65536 1:8-15,24-31:21,10:65536; llcs "
      "L3:0-7,16-23 L3:8-15,24-31; cores 16, max threads 2";
  static const struct {
    const char *fixture;
    const char *file;
    const char *contents; /* NULL: delete the file */
    const char *summary;  /* NULL: as the fixture */
    const char *notes;
  } cases[] = {
    { "1n-4c8t", "sys/devices/system/cpu/online", "0-3,x\n", NULL,
      "sys/devices/system/cpu/online: invalid value '0-3,x': expected a cpulist such as '0-3,8' "
      "(invalid cpulist '0-3,x': expected a CPU number at offset 4); online cpus from the "
      "cpuN/online files" },
    { "1n-4c8t", "sys/devices/system/cpu/online", "", NULL,
      "sys/devices/system/cpu/online is empty; online cpus from the cpuN/online files" },
    /* cpu 8 has no directory: it went offline while we read */
    { "1n-4c8t", "sys/devices/system/cpu/online", "0-8\n", NULL,
      "sys/devices/system/cpu/cpuN/topology missing for online cpus 8; taken as offline" },
    /* the kernel removed cpu 5's topology (hotplug) after we read online: the rest stands */
    { "1n-4c8t", "sys/devices/system/cpu/cpu5/topology", NULL,
      "present 0-7; online 0-4,6-7; nodes 0:0-4,6-7:10:16384; llcs L3:0-4,6-7; cores 4, max "
      "threads 2",
      "sys/devices/system/cpu/cpuN/topology missing for online cpus 5; taken as offline" },
    { "1n-4c8t", "sys/devices/system/cpu/present", NULL, NULL,
      "sys/devices/system/cpu/present missing; present cpus from sys/devices/system/cpu/possible\n"
      "sys/devices/system/cpu/possible missing; present cpus from the sys/devices/system/cpu/cpuN "
      "directories" },
    /* online 0-7 but present 0-6: online wins */
    { "1n-4c8t", "sys/devices/system/cpu/present", "0-6\n", NULL,
      "cpus 7 are online but not present; taken as present" },
    { "1n-4c8t", "sys/devices/system/cpu/nohz_full", "x\n", NULL,
      "sys/devices/system/cpu/nohz_full: invalid value 'x': expected a cpulist such as '0-3,8' "
      "(invalid cpulist 'x': expected a CPU number at offset 0); taken as empty" },
    { "1n-4c8t", "sys/devices/system/cpu/cpu2/topology/core_id", "two\n", NULL,
      "sys/devices/system/cpu/cpu2/topology/core_id: invalid value 'two': expected a non-negative "
      "integer; for cpus 2: core id = cpu number" },
    { "1n-4c8t", "sys/devices/system/cpu/cpu3/topology/physical_package_id", NULL, NULL,
      "sys/devices/system/cpu/cpu3/topology/physical_package_id missing; for cpus 3: package of a "
      "thread sibling, else 0" },
    /* some ARM firmware reports no package: -1; a thread sibling knows it */
    { "2s-8c-2t-2n", "sys/devices/system/cpu/cpu9/topology/physical_package_id", "-1\n", NULL,
      "sys/devices/system/cpu/cpu9/topology/physical_package_id: invalid value '-1': expected a "
      "non-negative integer; for cpus 9: package of a thread sibling, else 0" },
    { "1n-4c8t", "sys/devices/system/cpu/cpu1/cache/index3/level", "L3\n",
      "present 0-7; online 0-7; nodes 0:0-7:10:16384; llcs L0:0-7; cores 4, max threads 2",
      "sys/devices/system/cpu/cpu1/cache/index3/level: invalid value 'L3': expected a cache level "
      "from 1 to 9; for cpus 1: cache info ignored\n"
      "no cache info for cpus 1; LLC groups = packages" },
    { "1n-4c8t", "sys/devices/system/cpu/cpu4/topology/thread_siblings_list", "4-5\n",
      "present 0-7; online 0-7; nodes 0:0-7:10:16384; llcs L3:0-7; cores 8, max threads 1",
      "cpu 0 has thread siblings 0,4 but cpu 4 has 4-5; each cpu is its own core" },
    { "1n-4c8t", "sys/devices/system/cpu/cpu4/topology/thread_siblings_list", NULL,
      "present 0-7; online 0-7; nodes 0:0-7:10:16384; llcs L3:0-7; cores 8, max threads 1",
      "sys/devices/system/cpu/cpu4/topology/thread_siblings_list missing; for cpus 4: the cpu "
      "alone in its core\n"
      "cpu 0 has thread siblings 0,4 but cpu 4 has 4; each cpu is its own core" },
    { "1n-4c8t", "sys/devices/system/node/node0/distance", "10 x\n", NULL,
      "sys/devices/system/node/node0/distance: invalid value '10 x': expected node distances from "
      "1 to 255 separated by spaces; distances 10 local, 20 remote" },
    /* one distance per node id, node 1 offline: the same reading */
    { "1n-4c8t", "sys/devices/system/node/node0/distance", "10 20\n", NULL, "" },
    /* a row of the wrong length: neither per online node nor per node id */
    { "2s-8c-2t-2n", "sys/devices/system/node/node1/distance", "10\n",
      "present 0-31; online 0-31; nodes 0:0-7,16-23:10,20:65536 1:8-15,24-31:20,10:65536; llcs "
      "L3:0-7,16-23 L3:8-15,24-31; cores 16, max threads 2",
      "sys/devices/system/node/node1/distance: 1 distances for nodes 0-1 (expected one per node, "
      "or one per node id up to 1); distances 10 local, 20 remote" },
    { "1n-4c8t", "sys/devices/system/node/node0/meminfo",
      "Node 0 MemTotal: lots kB\nNode 0 MemFree: 1 kB\n",
      "present 0-7; online 0-7; nodes 0:0-7:10:0; llcs L3:0-7; cores 4, max threads 2",
      "sys/devices/system/node/node0/meminfo: invalid value 'Node 0 MemTotal: lots kB': expected "
      "'Node M MemTotal: N kB' and 'Node M MemFree: N kB' lines; memory unknown (0)" },
    { "1n-4c8t", "sys/devices/system/node/node0/cpulist", "0-6\n", NULL,
      "sys/devices/system/node/nodeM/cpulist: online cpus 7 are in no node; put in node 0" },
    { "1n-4c8t", "sys/devices/system/node/node0/cpulist", "0-3,\n", NULL,
      "sys/devices/system/node/node0/cpulist: invalid value '0-3,': expected a cpulist such as "
      "'0-3,8' (invalid cpulist '0-3,': trailing ','); no cpus in this node\n"
      "sys/devices/system/node/nodeM/cpulist: online cpus 0-7 are in no node; put in node 0" },
    /* a CPU listed in two nodes stays in the first */
    { "2s-8c-2t-2n", "sys/devices/system/node/node1/cpulist", "0,8-15,24-31\n", NULL,
      "sys/devices/system/node/node1/cpulist: cpus 0 are also in a node before it; kept there "
      "only" },
    { "2s-8c-2t-2n", "sys/devices/system/node/online", "\n", NULL,
      "sys/devices/system/node/online is empty; nodes from the nodeM directories" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *dir = copy_fixture (cases[i].fixture);
      g_autofree char *path = g_build_filename (dir, cases[i].file, NULL);
      g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinTopology) topo = NULL;
      g_autofree char *sum = NULL, *notes = NULL;
      const char *expected = cases[i].summary;

      if (expected == NULL)
        expected = g_str_equal (cases[i].fixture, "1n-4c8t") ? one : two;
      if (cases[i].contents)
        g_assert_true (g_file_set_contents (path, cases[i].contents, -1, NULL));
      else
        {
          g_autofree char *del = g_strdup_printf ("rm -r '%s'", path);
          g_assert_cmpint (system (del), ==, 0);
        }
      topo = qpin_topology_read (dir, NULL, &error);
      if (topo == NULL)
        g_error ("case %zu: %s", i, error->message);
      sum = summary (topo);
      notes = notes_of (topo);
      if (g_strcmp0 (sum, expected) != 0 || g_strcmp0 (notes, cases[i].notes) != 0)
        g_error ("case %zu (%s):\n%s\n%s", i, cases[i].file, sum, notes);
      g_assert_cmpint (system (rm), ==, 0);
    }
}

/* No CPU anywhere: the one refusal, naming the root. */
static void
test_no_cpu (void)
{
  g_autofree char *dir = copy_fixture ("1n-4c8t");
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_autofree char *cpu = g_strdup_printf ("rm -rf '%s'/sys/devices/system/cpu", dir);
  g_autofree char *expected = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;

  g_assert_cmpint (system (cpu), ==, 0);
  topo = qpin_topology_read (dir, NULL, &error);
  g_assert_null (topo);
  g_assert_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_MISSING);
  expected
    = g_strdup_printf ("%s: no cpu: no present or possible cpulist and no cpuN directory", dir);
  g_assert_cmpstr (error->message, ==, expected);
  g_assert_cmpint (system (rm), ==, 0);
}

/* Every file of two fixtures replaced in turn by each hostile value (or
 * deleted): the reader returns a whole model every time, every online CPU
 * in a core, an LLC group and a node, and text and JSON print. */
/* without fsync: the fuzz test rewrites files a few thousand times */
static gboolean
set_fast (const char *path, const char *contents)
{
  return g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_NONE, 0644, NULL);
}

static void
test_fuzz (void)
{
  static const char *const values[] = { NULL,
                                        "",
                                        "\n",
                                        "x\n",
                                        "-1\n",
                                        "0-\n",
                                        "4-2\n",
                                        "99999\n",
                                        "0-63\n",
                                        "1 2 3\n",
                                        "0,0,0\n",
                                        "\xff\xfe\n",
                                        "10 10 10 10 10 10 10 10 10 10 10 10\n",
                                        "Node 0 MemTotal:\n" };
  /* the hybrid's files of a P-core and an E-core CPU, and its PMUs: the kinds and clusters */
  static const struct {
    const char *name;
    const char *only; /* a regex on the file's path, or NULL for every file */
  } fixtures[] = {
    { "1n-4c8t", NULL },
    { "node0-offline", NULL },
    { "hybrid-13th-gen", "cpu_core|cpu_atom|/cpu(1|13)/" },
  };
  guint reads = 0;

  for (gsize f = 0; f < G_N_ELEMENTS (fixtures); f++)
    {
      g_autofree char *root = fixture_path (fixtures[f].name);
      g_autoptr (GPtrArray) files = NULL;
      g_autoptr (QpinTopology) orig = qpin_topology_read (root, &files, NULL);
      g_autofree char *dir = copy_fixture (fixtures[f].name);
      g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);

      g_assert_nonnull (orig); /* the fixture itself reads */

      for (guint i = 0; i < files->len; i++)
        {
          const QpinCapturedFile *file = files->pdata[i];
          g_autofree char *path = g_build_filename (dir, file->path, NULL);

          if (file->contents == NULL) /* a directory */
            continue;
          if (fixtures[f].only && !g_regex_match_simple (fixtures[f].only, file->path, 0, 0))
            continue;
          for (gsize v = 0; v < G_N_ELEMENTS (values); v++)
            {
              g_autoptr (GError) error = NULL;
              g_autoptr (QpinTopology) topo = NULL;
              g_autofree char *text = NULL, *json = NULL;

              if (values[v])
                g_assert_true (set_fast (path, values[v]));
              else
                g_assert_cmpint (g_unlink (path), ==, 0);
              topo = qpin_topology_read (dir, NULL, &error);
              if (topo == NULL)
                g_error ("%s = '%s': %s", file->path, values[v] ? values[v] : "(deleted)",
                         error->message);
              g_assert_false (qpin_cpuset_is_empty (&topo->online));
              QPIN_CPUSET_FOREACH (cpu, &topo->online)
                {
                  g_assert_cmpint (qpin_topology_cpu_core (topo, (guint) cpu), >=, 0);
                  g_assert_cmpint (qpin_topology_cpu_llc (topo, (guint) cpu), >=, 0);
                  g_assert_cmpint (qpin_topology_cpu_node (topo, (guint) cpu), >=, 0);
                }
              text = qpin_topology_to_text (topo);
              json = to_json (topo);
              g_assert_true (set_fast (path, file->contents));
              reads++;
            }
        }
      g_assert_cmpint (system (rm), ==, 0);
    }
  g_test_message ("%u hostile reads", reads);
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
  g_autofree char *notes = NULL;

  g_assert_cmpint (system (cmd), ==, 0);
  topo = qpin_topology_read (dir, NULL, &error);
  g_assert_no_error (error);
  /* no cache: one LLC group per package; no node dir: one node; no siblings: no SMT */
  g_assert_true (topo->llc_derived);
  g_assert_cmpuint (topo->llcs->len, ==, 2);
  g_assert_cmpuint (qpin_topology_n_nodes (topo), ==, 1);
  g_assert_cmpuint (topo->max_threads, ==, 1);
  g_assert_cmpuint (topo->cores->len, ==, 32);
  notes = notes_of (topo);
  g_assert_cmpstr (notes, ==,
                   "sys/devices/system/cpu/cpu0/topology/thread_siblings_list missing; for cpus "
                   "0-31: the cpu alone in its core\n"
                   "sys/devices/system/node missing; one node 0 with every cpu\n"
                   "no cache info for cpus 0-31; LLC groups = packages");
  g_assert_cmpint (system (rm), ==, 0);
}

/* The error domains read as their names (G_DEFINE_QUARK's argument once
 * came out of clang-format as "qpin - reader - error - quark"). */
static void
test_error_quarks (void)
{
  g_assert_cmpstr (g_quark_to_string (QPIN_READER_ERROR), ==, "qpin-reader-error-quark");
  g_assert_cmpstr (g_quark_to_string (QPIN_PINNER_ERROR), ==, "qpin-pinner-error-quark");
  g_assert_cmpstr (g_quark_to_string (QPIN_MONITOR_ERROR), ==, "qpin-monitor-error-quark");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/topology/error-quarks", test_error_quarks);
  g_test_add_func ("/topology/fixtures", test_fixtures);
  g_test_add_func ("/topology/capture", test_capture);
  g_test_add_func ("/topology/live", test_live);
  g_test_add_func ("/topology/notes", test_notes);
  g_test_add_func ("/topology/kinds", test_kinds);
  g_test_add_func ("/topology/garbage", test_garbage);
  g_test_add_func ("/topology/no-cpu", test_no_cpu);
  g_test_add_func ("/topology/fuzz", test_fuzz);
  g_test_add_func ("/topology/fallbacks", test_fallbacks);
  return g_test_run ();
}
