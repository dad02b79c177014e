/* test-placer-kinds.c: placement by CPU kind (hybrid hosts) and by cluster
 *
 * The hybrid fixture is issue #16's 13th-gen laptop: 6 P-cores with SMT
 * (CPUs 0-11, siblings adjacent), 8 E-cores in two clusters of 4 that share
 * an L2 (12-15, 16-19), one L3.  The ARM fixture: 16 cores without SMT in
 * clusters of 4, one L3.
 */
#include <glib.h>
#include <string.h>

#include "qpin-score.h"
#include "test-helpers.h"

static char *
vcpus_text (const QpinPlacer *placer, const char *vm)
{
  QpinCpuset set = vcpus_of (placer, vm);
  return qpin_cpuset_format (&set);
}

static QpinPlacer *
place_on (const QpinTopology *topo, const char *policy, const char *vms)
{
  g_autoptr (QpinConfig) config = config_from (policy);
  QpinPlacer *placer = placer_for (topo, config);
  g_autoptr (GError) error = NULL;

  g_assert_true (place_vms (placer, config, vms, &error));
  g_assert_no_error (error);
  assert_exclusive (placer);
  return placer;
}

/* issue #16: a takes 4 P-cores (8 threads); b (6 vCPUs, 3 whole cores) no
 * longer fits the 2 P-cores left, so it goes whole onto the E-cores (one
 * kind: all its vCPUs run at one speed), a full cluster first; c (4) then
 * fits the last 2 P-cores, the fastest kind that holds it.  c inside one E
 * cluster would leave b only 4 E-cores: b would span two kinds. */
static void
test_hybrid_issue (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("hybrid-13th-gen");
  g_autoptr (QpinPlacer) placer = place_on (topo, "", "a:8:threads=2 b:6 c:4");
  g_autofree char *a = vcpus_text (placer, "a");
  g_autofree char *b = vcpus_text (placer, "b");
  g_autofree char *c = vcpus_text (placer, "c");
  QpinScore s;

  g_assert_cmpstr (a, ==, "0-7");
  g_assert_cmpstr (b, ==, "12-17");
  g_assert_cmpstr (c, ==, "8-11");
  {
    /* the plan names each VM's kinds */
    g_autofree char *table = qpin_plan_to_table (qpin_placer_get_plan (placer), topo);
    g_assert_nonnull (strstr (table, "\nb            cpu kinds    E 12-17\n"));
    g_assert_nonnull (strstr (table, "\nc            cpu kinds    P 8-11\n"));
  }
  qpin_placer_score (placer, &s);
  g_assert_cmpuint (s.kind_excess, ==, 0);
  g_assert_cmpuint (s.kind_rank, ==, 6); /* b's 6 vCPUs on the second kind */
  g_assert_cmpuint (s.cluster_excess, ==, 0);
}

/* kind=efficient: a 4-vCPU VM goes whole into one E cluster, not on the
 * free P-cores nor across the two clusters */
static void
test_hybrid_efficient (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("hybrid-13th-gen");
  g_autoptr (QpinPlacer) placer = place_on (topo, "kind=efficient", "c:4");
  g_autofree char *c = vcpus_text (placer, "c");

  g_assert_cmpstr (c, ==, "12-15");
}

/* kind=fast with a VM no kind holds (14 vCPUs > 12 P, > 8 E): it spans
 * both kinds, as few E-cores as possible (12 P threads + 2 E-cores of one
 * cluster) */
static void
test_hybrid_too_big (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("hybrid-13th-gen");
  g_autoptr (QpinPlacer) placer = place_on (topo, "", "a:14");
  g_autofree char *a = vcpus_text (placer, "a");
  QpinScore s;

  g_assert_cmpstr (a, ==, "0-11,16-17"); /* best fit among equal clusters: the last */
  qpin_placer_score (placer, &s);
  g_assert_cmpuint (s.kinds_min, ==, 2);
  g_assert_cmpuint (s.kind_excess, ==, 0);
}

/* ARM, clusters of 4: after a (3) takes most of cluster 0, b (4) gets a
 * cluster of its own rather than 3-6; c (2) a third; d (5) needs two
 * clusters and gets exactly two */
static void
test_arm_clusters (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("arm-16c-clusters");
  g_autoptr (QpinPlacer) placer = place_on (topo, "", "a:3 b:4 c:2 d:5");
  const char *names[] = { "a", "b", "c", "d" };
  const guint clusters[] = { 1, 1, 1, 2 };
  QpinScore s;

  for (guint v = 0; v < G_N_ELEMENTS (names); v++)
    {
      QpinCpuset set = vcpus_of (placer, names[v]);
      QpinCpuset seen;

      qpin_cpuset_clear_all (&seen);
      QPIN_CPUSET_FOREACH (cpu, &set)
        qpin_cpuset_add (&seen, (guint) cpu / 4);
      g_assert_cmpuint (qpin_cpuset_count (&seen), ==, clusters[v]);
    }
  qpin_placer_score (placer, &s);
  g_assert_cmpuint (s.cluster_excess, ==, 0);
  g_assert_cmpuint (s.clusters_spanned, ==, 5);
}

/* a vCPU hot-added to a VM on P-cores stays on a P-core: the best-fit
 * rule alone would give it a single-thread E-core (12) before a free
 * P-core (2), a guest with vCPUs at two speeds */
static void
test_hybrid_hot_add (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("hybrid-13th-gen");
  g_autoptr (QpinPlacer) placer = place_on (topo, "", "a:2");
  QpinThreadSpec spec = qpin_thread_spec_vcpu (2);
  g_autoptr (GError) error = NULL;
  g_autofree char *a = NULL;

  g_assert_true (qpin_placer_add_thread (placer, "a", &spec, &error));
  g_assert_no_error (error);
  a = vcpus_text (placer, "a");
  g_assert_cmpstr (a, ==, "0-2");
}

/* kind=any: kinds are not looked at, the other terms decide: issue #16's
 * VMs then give b the last P-cores and two E-cores, and c a whole E
 * cluster (clusters still count) */
static void
test_hybrid_any (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("hybrid-13th-gen");
  g_autoptr (QpinPlacer) placer = place_on (topo, "kind=any", "a:8:threads=2 b:6 c:4");
  g_autofree char *b = vcpus_text (placer, "b");
  g_autofree char *c = vcpus_text (placer, "c");
  QpinScore s;

  g_assert_cmpstr (b, ==, "8-11,16-17");
  g_assert_cmpstr (c, ==, "12-15");
  qpin_placer_score (placer, &s);
  g_assert_cmpuint (s.kind_rank, ==, 0);
  g_assert_cmpuint (s.kinds_spanned, ==, 0); /* not counted for kind=any */
}

/* A model the reader can produce from odd sysfs files: kinds that disagree
 * within a core (0 is P, its sibling 1 is E), a CPU in no kind (7), a
 * cluster spanning two LLC groups (2-5).  Every mode and smt setting
 * places all VMs, exclusively. */
static QpinTopology *
odd_topology (void)
{
  QpinTopology *topo = qpin_topology_new ();
  QpinCpuset all, fast, slow;
  guint row[] = { 10 };
  g_autoptr (GError) error = NULL;

  qpin_cpuset_clear_all (&all);
  qpin_cpuset_add_range (&all, 0, 7);
  for (guint cpu = 0; cpu < 8; cpu++)
    {
      QpinTopoCpuInfo info = { .cpu = cpu, .core_id = cpu / 2, .llc_level = 3 };
      guint first = cpu < 2 ? 0 : cpu < 6 ? 2 : 6;

      qpin_cpuset_clear_all (&info.siblings);
      qpin_cpuset_add_range (&info.siblings, cpu / 2 * 2, cpu / 2 * 2 + 1);
      qpin_cpuset_clear_all (&info.llc);
      qpin_cpuset_add_range (&info.llc, cpu / 4 * 4, cpu / 4 * 4 + 3);
      qpin_cpuset_clear_all (&info.cluster);
      qpin_cpuset_add_range (&info.cluster, first, first == 2 ? 5 : first + 1);
      qpin_topology_add_cpu (topo, &info);
    }
  qpin_topology_add_node (topo, 0, &all, 1024, 512, row, 1);
  qpin_topology_set_cpus (topo, &all, &all, NULL, NULL);
  qpin_cpuset_clear_all (&fast);
  qpin_cpuset_clear_all (&slow);
  qpin_cpuset_add (&fast, 0);
  qpin_cpuset_add (&fast, 2);
  qpin_cpuset_add (&fast, 4);
  qpin_cpuset_add (&slow, 1);
  qpin_cpuset_add (&slow, 3);
  qpin_cpuset_add (&slow, 5);
  qpin_cpuset_add (&slow, 6);
  qpin_topology_add_kind (topo, "P", &fast, 64, "test");
  qpin_topology_add_kind (topo, "E", &slow, 39, "test");
  g_assert_true (qpin_topology_finish (topo, &error));
  g_assert_no_error (error);
  return topo;
}

static void
test_odd_models (void)
{
  g_autoptr (QpinTopology) topo = odd_topology ();
  const char *policies[]
    = { "", "kind=efficient", "kind=any", "smt=isolate", "smt=isolate kind=efficient" };

  g_assert_cmpuint (topo->clusters->len, ==, 3);
  g_assert_cmpint (qpin_topology_core_cluster (topo, 1), ==, 1); /* 2-5, over two LLCs */
  g_assert_cmpuint (qpin_topology_core_kind (topo, 0), ==, 0);   /* its first cpu's: P */
  g_assert_cmpuint (qpin_topology_core_kind (topo, 3), ==, 1);   /* 6 is E, 7 none */
  g_assert_cmpuint (qpin_topology_cpu_kind (topo, 7), ==, 2);    /* after the slowest */
  for (guint i = 0; i < G_N_ELEMENTS (policies); i++)
    {
      gboolean isolate = strstr (policies[i], "isolate") != NULL;
      g_autoptr (QpinPlacer) placer
        = place_on (topo, policies[i], isolate ? "a:2 b:1 c:1" : "a:3 b:2:threads=2 c:2");
      QpinThreadSpec spec = qpin_thread_spec_vcpu (isolate ? 2 : 3);
      QpinScore s;

      qpin_placer_score (placer, &s);
      g_assert_cmpuint (s.overcommitted, ==, 0);
      /* the last free CPU goes to a hot-added vCPU (not with isolate: none left) */
      g_assert_cmpint (qpin_placer_add_thread (placer, "a", &spec, NULL), ==, !isolate);
      assert_exclusive (placer);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/placer-kinds/hybrid-issue", test_hybrid_issue);
  g_test_add_func ("/placer-kinds/hybrid-efficient", test_hybrid_efficient);
  g_test_add_func ("/placer-kinds/hybrid-too-big", test_hybrid_too_big);
  g_test_add_func ("/placer-kinds/hybrid-hot-add", test_hybrid_hot_add);
  g_test_add_func ("/placer-kinds/hybrid-any", test_hybrid_any);
  g_test_add_func ("/placer-kinds/arm-clusters", test_arm_clusters);
  g_test_add_func ("/placer-kinds/odd-models", test_odd_models);
  return g_test_run ();
}
