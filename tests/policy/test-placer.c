/* test-placer.c: the required behaviours of the placement engine */
#include <glib.h>
#include <string.h>

#include "test-helpers.h"

static void
test_exclusive (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  const char *names[] = { "a", "b", "c", "d", "e" };
  QpinCpuset seen;

  g_assert_true (place_vms (placer, config, "a:8 b:6:threads=2 c:7 d:5 e:6", &error));
  g_assert_no_error (error);
  qpin_cpuset_clear_all (&seen);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      QpinCpuset v = vcpus_of (placer, names[i]);
      g_assert_false (qpin_cpuset_intersects (&v, &seen));
      qpin_cpuset_or (&seen, &v);
      QPIN_CPUSET_FOREACH (cpu, &v)
        g_assert_cmpstr (qpin_placer_holder (placer, (guint) cpu), ==, names[i]);
    }
  g_assert_cmpuint (qpin_cpuset_count (&seen), ==, 32);
  /* a second batch cannot take held CPUs */
  g_assert_false (place_vms (placer, config, "f:1", &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
  g_assert_cmpstr (error->message, ==,
                   "vm 'f': needs 1 dedicated cpu, 0 free on the host (cpus none)");
}

static void
test_one_node_one_llc (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("epyc-nps4");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  QpinCpuset a, b, c;

  g_assert_true (place_vms (placer, config, "a:8 b:6 c:14", NULL));
  a = vcpus_of (placer, "a");
  b = vcpus_of (placer, "b");
  c = vcpus_of (placer, "c");
  g_assert_cmpuint (count_domains (topo, &a, TRUE), ==, 1);
  g_assert_cmpuint (count_domains (topo, &b, TRUE), ==, 1);
  g_assert_cmpuint (count_domains (topo, &c, FALSE), ==, 1);
  g_assert_cmpuint (count_domains (topo, &c, TRUE), ==, 2);
}

static void
test_whole_cores (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  QpinCpuset a, cores;

  g_assert_true (place_vms (placer, config, "a:4", NULL));
  a = vcpus_of (placer, "a");
  qpin_cpuset_clear_all (&cores);
  QPIN_CPUSET_FOREACH (cpu, &a)
    qpin_cpuset_add (&cores, (guint) qpin_topology_cpu_core (topo, (guint) cpu));
  g_assert_cmpuint (qpin_cpuset_count (&cores), ==, 2);
}

static void
test_best_fit (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  QpinCpuset x, y;

  g_assert_true (place_vms (placer, config, "x:10", NULL));
  g_assert_true (place_vms (placer, config, "y:4", NULL));
  x = vcpus_of (placer, "x");
  y = vcpus_of (placer, "y");
  /* y goes where fewest CPUs are free: beside x, not on the empty node */
  g_assert_cmpint (qpin_topology_cpu_node (topo, (guint) qpin_cpuset_first (&x)), ==,
                   qpin_topology_cpu_node (topo, (guint) qpin_cpuset_first (&y)));
  g_assert_cmpuint (count_domains (topo, &y, FALSE), ==, 1);
}

static void
test_best_order (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  const char *names[] = { "a", "b", "c", "d" };
  QpinScore score;

  /* placed greedily in the given order, d would be split across sockets */
  g_assert_true (place_vms (placer, config, "a:6 b:6 c:10 d:10", NULL));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      QpinCpuset v = vcpus_of (placer, names[i]);
      g_assert_cmpuint (count_domains (topo, &v, FALSE), ==, 1);
    }
  qpin_placer_score (placer, &score);
  g_assert_cmpuint (score.node_excess, ==, 0);
}

static void
test_smt_prefer (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);

  g_assert_true (place_vms (placer, config, "z:1 a:6:threads=2", NULL));
  for (guint i = 0; i < 6; i += 2)
    {
      const QpinPlanThread *t0 = thread_of (placer, "a", QPIN_ROLE_VCPU, i);
      const QpinPlanThread *t1 = thread_of (placer, "a", QPIN_ROLE_VCPU, i + 1);
      g_assert_cmpint (t0->spec.topo.core, ==, t1->spec.topo.core);
      g_assert_cmpint (qpin_topology_cpu_core (topo, (guint) qpin_cpuset_packed_first (&t0->cpus)),
                       ==,
                       qpin_topology_cpu_core (topo, (guint) qpin_cpuset_packed_first (&t1->cpus)));
    }
}

static void
test_smt_isolate (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinConfig) config = config_from ("smt=isolate");
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  QpinCpuset a;

  g_assert_true (place_vms (placer, config, "a:3", NULL));
  a = vcpus_of (placer, "a");
  QPIN_CPUSET_FOREACH (cpu, &a)
    {
      const QpinTopoCore *core
        = &g_array_index (topo->cores, QpinTopoCore, qpin_topology_cpu_core (topo, (guint) cpu));
      QPIN_CPUSET_FOREACH (sib, &core->cpus)
        {
          g_assert_cmpstr (qpin_placer_holder (placer, (guint) sib), ==, "a");
          if (sib != cpu)
            g_assert_false (qpin_cpuset_has (&a, (guint) sib));
        }
    }
  g_assert_false (place_vms (placer, config, "b:2", &error));
  g_assert_cmpstr (error->message, ==,
                   "vm 'b': needs 2 whole free cores (smt=isolate), 1 free on the host (cpus 3,7)");
}

static void
test_smt_require (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("lab-1n4c");
  g_autoptr (QpinConfig) config = config_from ("smt=require");
  g_autoptr (GError) error = NULL;

  g_assert_false (qpin_config_check (config, topo, &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT);
  g_assert_cmpstr (error->message, ==, "smt=require but the host has no SMT (one thread per core)");
}

static void
test_guest_numa (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("4n-unequal");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  QpinCpuset n0, n1;

  /* two guest nodes of 2: host nodes 0 and 1 (distance 16), not 0 and 2 */
  g_assert_true (place_vms (placer, config, "a:4:sockets=2,cores=2,nodes=2", NULL));
  qpin_cpuset_clear_all (&n0);
  qpin_cpuset_clear_all (&n1);
  for (guint i = 0; i < 4; i++)
    {
      const QpinPlanThread *t = thread_of (placer, "a", QPIN_ROLE_VCPU, i);
      qpin_cpuset_add (
        t->spec.topo.node == 0 ? &n0 : &n1,
        (guint) qpin_topology_cpu_node (topo, (guint) qpin_cpuset_packed_first (&t->cpus)));
    }
  g_assert_cmpuint (qpin_cpuset_count (&n0), ==, 1);
  g_assert_cmpuint (qpin_cpuset_count (&n1), ==, 1);
  g_assert_false (qpin_cpuset_equal (&n0, &n1));
  qpin_cpuset_or (&n0, &n1);
  g_autofree char *nodes = qpin_cpuset_format (&n0);
  g_assert_cmpstr (nodes, ==, "0-1");
}

static void
test_emulator (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) iso = config_from ("emulator=isolate iothreads=isolate");
  g_autoptr (QpinPlacer) p1 = placer_for (topo, iso);
  g_autoptr (QpinConfig) hk = config_from ("emulator=housekeeping reserved=0,16");
  g_autoptr (QpinPlacer) p2 = placer_for (topo, hk);
  g_autoptr (QpinConfig) share = config_from (NULL);
  g_autoptr (QpinPlacer) p3 = placer_for (topo, share);
  const QpinPlanThread *emu, *io;
  QpinCpuset v, io_cpus;

  g_assert_true (place_vms (p1, iso, "a:4:iothreads=1", NULL));
  {
    /* a QEMU worker appears: it follows the emulator onto its own CPU */
    QpinThreadSpec other = qpin_thread_spec_vcpu (0);
    other.role = QPIN_ROLE_OTHER;
    g_assert_true (qpin_placer_add_thread (p1, "a", &other, NULL));
    g_assert_true (same_cpus (thread_of (p1, "a", QPIN_ROLE_OTHER, 0),
                              thread_of (p1, "a", QPIN_ROLE_EMULATOR, 0)));
    g_assert_false (thread_of (p1, "a", QPIN_ROLE_OTHER, 0)->exclusive);
  }
  v = vcpus_of (p1, "a");
  emu = thread_of (p1, "a", QPIN_ROLE_EMULATOR, 0);
  io = thread_of (p1, "a", QPIN_ROLE_IOTHREAD, 0);
  g_assert_true (emu->exclusive);
  g_assert_true (io->exclusive);
  g_assert_cmpuint (qpin_cpuset_packed_count (&emu->cpus), ==, 1);
  g_assert_false (qpin_cpuset_packed_intersects (&emu->cpus, &v));
  io_cpus = thread_cpus (io);
  g_assert_false (qpin_cpuset_packed_intersects (&emu->cpus, &io_cpus));
  g_assert_cmpint (qpin_topology_cpu_node (topo, (guint) qpin_cpuset_packed_first (&emu->cpus)), ==,
                   qpin_topology_cpu_node (topo, (guint) qpin_cpuset_first (&v)));

  g_assert_true (place_vms (p2, hk, "a:16", NULL));
  v = vcpus_of (p2, "a");
  g_autofree char *hk_cpus = cpus_of (p2, "a", QPIN_ROLE_EMULATOR, 0);
  g_assert_cmpstr (hk_cpus, ==, "0,16");
  g_assert_false (qpin_cpuset_has (&v, 0));
  g_assert_false (qpin_cpuset_has (&v, 16));

  g_assert_true (place_vms (p3, share, "a:4", NULL));
  v = vcpus_of (p3, "a");
  emu = thread_of (p3, "a", QPIN_ROLE_EMULATOR, 0);
  g_assert_true (qpin_cpuset_packed_equal (&emu->cpus, &v));
  g_assert_false (emu->exclusive);
}

static void
test_reserved_and_isolated (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("4n-unequal");
  g_autoptr (QpinConfig) config = config_from ("reserved=0,7");
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinConfig) all = config_from ("reserved=0-11");
  g_autoptr (GError) error = NULL;
  g_autofree char *a = NULL;
  QpinCpuset v;

  /* isolated CPUs (2-3,9-10) first for dedicated vCPUs */
  g_assert_true (place_vms (placer, config, "a:4", NULL));
  v = vcpus_of (placer, "a");
  a = qpin_cpuset_format (&v);
  g_assert_cmpstr (a, ==, "2-3,9-10");
  g_assert_true (place_vms (placer, config, "b:4", NULL));
  v = vcpus_of (placer, "b");
  g_assert_false (qpin_cpuset_has (&v, 0));
  g_assert_false (qpin_cpuset_has (&v, 7));

  g_assert_false (qpin_config_check (all, topo, &error));
  g_assert_cmpstr (error->message, ==,
                   "reserved=0-11 covers every online cpu (0-11): none is left for vCPUs");
}

static void
test_overcommit (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinConfig) refuse = config_from (NULL);
  g_autoptr (QpinPlacer) p1 = placer_for (topo, refuse);
  g_autoptr (QpinConfig) share = config_from ("overcommit=share");
  g_autoptr (QpinPlacer) p2 = placer_for (topo, share);
  g_autoptr (QpinConfig) strict = config_from ("numa=strict");
  g_autoptr (QpinTopology) two = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinPlacer) p3 = placer_for (two, strict);
  g_autoptr (GError) error = NULL;
  const QpinPlanVm *vm;

  g_assert_true (place_vms (p1, refuse, "a:6", NULL));
  g_assert_false (place_vms (p1, refuse, "b:4", &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
  g_assert_cmpstr (error->message, ==,
                   "vm 'b': needs 4 dedicated cpus, 2 free on the host (cpus 3,7)");
  g_assert_null (qpin_plan_find_vm (qpin_placer_get_plan (p1), "b"));
  g_clear_error (&error);

  g_assert_true (place_vms (p2, share, "a:6 b:4", NULL));
  vm = qpin_plan_find_vm (qpin_placer_get_plan (p2), "b");
  g_assert_true (vm->floating);
  g_assert_cmpuint (vm->notes->len, ==, 1);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (vm->notes, 0), "overcommitted: shared pool"));
  {
    g_autofree char *pool = cpus_of (p2, "b", QPIN_ROLE_VCPU, 0);
    QpinScore score;
    g_assert_cmpstr (pool, ==, "3,7");
    qpin_placer_score (p2, &score);
    g_assert_cmpuint (score.overcommitted, ==, 4);
  }

  g_assert_true (place_vms (p3, strict, "a:12 b:12", NULL));
  g_assert_false (place_vms (p3, strict, "c:6", &error));
  g_assert_cmpstr (error->message, ==,
                   "vm 'c': needs 6 dedicated cpus in one host node (numa=strict): "
                   "the most free in one node is 4 (node 0: cpus 6-7,22-23)");
}

static void
test_hotplug (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinPlan) before = NULL;
  g_autoptr (GError) error = NULL;
  QpinThreadSpec s4 = qpin_thread_spec_vcpu (4), s5 = qpin_thread_spec_vcpu (5);
  const QpinPlanThread *t4, *t5;
  const QpinPlan *plan;

  g_assert_true (place_vms (placer, config, "b:3 a:4:threads=2", NULL));
  before = qpin_plan_copy (qpin_placer_get_plan (placer));
  s4.topo.socket = s5.topo.socket = 0;
  s4.topo.die = s5.topo.die = s4.topo.cluster = s5.topo.cluster = 0;
  s4.topo.core = s5.topo.core = 2;
  s4.topo.thread = 0;
  s5.topo.thread = 1;
  g_assert_true (qpin_placer_add_thread (placer, "a", &s4, &error));
  g_assert_no_error (error);
  g_assert_true (qpin_placer_add_thread (placer, "a", &s5, &error));
  t4 = thread_of (placer, "a", QPIN_ROLE_VCPU, 4);
  t5 = thread_of (placer, "a", QPIN_ROLE_VCPU, 5);
  g_assert_true (t5->changed);
  g_assert_cmpint (qpin_topology_cpu_core (topo, (guint) qpin_cpuset_packed_first (&t4->cpus)), ==,
                   qpin_topology_cpu_core (topo, (guint) qpin_cpuset_packed_first (&t5->cpus)));
  {
    QpinCpuset v = vcpus_of (placer, "a");
    g_assert_cmpuint (count_domains (topo, &v, FALSE), ==, 1);
  }
  /* every existing vCPU pin is kept */
  plan = qpin_placer_get_plan (placer);
  for (guint v = 0; v < before->vms->len; v++)
    {
      QpinPlanVm *old = g_ptr_array_index (before->vms, v);
      for (guint i = 0; i < old->threads->len; i++)
        {
          const QpinPlanThread *o = &g_array_index (old->threads, QpinPlanThread, i);
          const QpinPlanThread *n = thread_of (placer, old->name, o->spec.role, o->spec.index);
          if (o->exclusive)
            g_assert_true (same_cpus (o, n));
        }
    }
  g_assert_cmpuint (plan->vms->len, ==, 2);

  /* removing frees */
  {
    guint cpu = (guint) qpin_cpuset_packed_first (&t5->cpus);
    g_assert_true (qpin_placer_remove_thread (placer, "a", QPIN_ROLE_VCPU, 5, &error));
    g_assert_null (qpin_placer_holder (placer, cpu));
    g_assert_null (thread_of (placer, "a", QPIN_ROLE_VCPU, 5));
    g_assert_false (qpin_placer_remove_thread (placer, "a", QPIN_ROLE_VCPU, 5, &error));
    g_assert_cmpstr (error->message, ==, "vm 'a' has no vcpu 5");
    g_clear_error (&error);
  }
  g_assert_true (qpin_placer_remove_vm (placer, "b", &error));
  g_assert_null (qpin_plan_find_vm (qpin_placer_get_plan (placer), "b"));
}

static void
test_lose_cpu (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinPlan) before = NULL;
  g_autoptr (GError) error = NULL;
  const QpinPlanThread *t1;
  guint lost;

  g_assert_true (place_vms (placer, config, "a:4:threads=2 b:6", NULL));
  before = qpin_plan_copy (qpin_placer_get_plan (placer));
  t1 = thread_of (placer, "a", QPIN_ROLE_VCPU, 1);
  lost = (guint) qpin_cpuset_packed_first (&t1->cpus);
  g_assert_true (qpin_placer_lose_cpu (placer, lost, &error));
  g_assert_no_error (error);
  for (guint v = 0; v < before->vms->len; v++)
    {
      QpinPlanVm *old = g_ptr_array_index (before->vms, v);
      for (guint i = 0; i < old->threads->len; i++)
        {
          const QpinPlanThread *o = &g_array_index (old->threads, QpinPlanThread, i);
          const QpinPlanThread *n = thread_of (placer, old->name, o->spec.role, o->spec.index);
          gboolean used = qpin_cpuset_packed_has (&o->cpus, lost);
          g_assert_cmpint (n->changed, ==, used);
          g_assert_cmpint (same_cpus (o, n), ==, !used);
          g_assert_false (qpin_cpuset_packed_has (&n->cpus, lost));
        }
    }
  g_assert_true (thread_of (placer, "a", QPIN_ROLE_VCPU, 1)->exclusive);
  g_assert_false (qpin_placer_lose_cpu (placer, lost, &error));
  {
    g_autofree char *expected = g_strdup_printf ("cpu %u is not online", lost);
    g_assert_cmpstr (error->message, ==, expected);
  }
}

/* Losing the only free CPU of a full host: the VM that used it floats,
 * and none of its threads is left with an empty set (seen live: the
 * emulator of the degraded VM got no CPU at all). */
static void
test_lose_cpu_full_host (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("lab-1n4c");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  const QpinPlan *plan;

  g_assert_true (place_vms (placer, config, "a:1 b:1 c:1 d:1", NULL));
  g_assert_true (qpin_placer_lose_cpu (placer, 3, &error));
  plan = qpin_placer_get_plan (placer);
  for (guint v = 0; v < plan->vms->len; v++)
    {
      QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          g_assert_false (qpin_cpuset_packed_is_empty (&t->cpus));
          g_assert_false (qpin_cpuset_packed_has (&t->cpus, 3));
        }
    }
}

static void
test_manual (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (QpinPlacer) placer = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *c0 = NULL, *c1 = NULL;
  const char *conf = "[vm:m]\ncpus = manual\ncpumap = 0=5,1=6-7\n";

  g_assert_true (qpin_config_load_data (config, conf, "test.conf", &error));
  placer = placer_for (topo, config);
  g_assert_true (place_vms (placer, config, "m:2 d:5", &error));
  g_assert_no_error (error);
  c0 = cpus_of (placer, "m", QPIN_ROLE_VCPU, 0);
  c1 = cpus_of (placer, "m", QPIN_ROLE_VCPU, 1);
  g_assert_cmpstr (c0, ==, "5");
  g_assert_cmpstr (c1, ==, "6-7");
  {
    QpinCpuset d = vcpus_of (placer, "d");
    g_autofree char *ds = qpin_cpuset_format (&d);
    g_assert_cmpstr (ds, ==, "0-4");
  }
}

static void
test_deterministic (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("epyc-nps4");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autofree char *first = NULL;

  for (guint run = 0; run < 3; run++)
    {
      g_autoptr (QpinPlacer) placer = placer_for (topo, config);
      g_autofree char *text = NULL;

      g_assert_true (place_vms (placer, config,
                                "a:5 b:12:threads=2 c:3 d:8:sockets=2,cores=4,nodes=2 e:1", NULL));
      text = qpin_plan_to_table (qpin_placer_get_plan (placer), topo);
      if (first == NULL)
        first = g_steal_pointer (&text);
      else
        g_assert_cmpstr (text, ==, first);
    }
}

static void
test_big_host (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("8n-512");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) p1 = placer_for (topo, config);
  g_autoptr (QpinPlacer) p2 = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  QpinScore score;

  /* six VMs, each fits one node (64 CPUs): none may be split */
  g_assert_true (
    place_vms (p1, config, "a:60 b:40:threads=2 c:64 d:30 e:24:threads=2 f:50", &error));
  g_assert_no_error (error);
  qpin_placer_score (p1, &score);
  g_assert_cmpuint (score.node_excess, ==, 0);
  g_assert_cmpuint (score.sibling_misses, ==, 0);
  g_assert_cmpuint (score.shared_cores, ==, 0);
  /* six VMs that cannot all fit: the error names one and the numbers */
  g_assert_false (place_vms (p2, config, "a:200 b:200 c:100 d:10 e:10 f:10", &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
  g_assert_true (g_str_has_prefix (error->message, "vm '"));
  g_assert_nonnull (strstr (error->message, "free on the host"));
  g_assert_cmpuint (qpin_placer_get_plan (p2)->vms->len, ==, 0);
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    g_assert_null (qpin_placer_holder (p2, (guint) cpu));
}

static void
test_adopt (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from ("smt=isolate");
  g_autoptr (QpinPlacer) first = placer_for (topo, config);
  g_autoptr (QpinPlacer) again = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  const QpinPlan *plan;

  g_assert_true (place_vms (first, config, "a:3 b:2", NULL));
  plan = qpin_placer_get_plan (first);
  /* a restarted qpin adopts the running VMs without moving them */
  for (guint v = 0; v < plan->vms->len; v++)
    {
      g_assert_true (qpin_placer_adopt (again, g_ptr_array_index (plan->vms, v), &error));
      g_assert_no_error (error);
    }
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      const QpinPlanThread *t = NULL;
      const char *h1 = qpin_placer_holder (first, (guint) cpu);
      const char *h2 = qpin_placer_holder (again, (guint) cpu);
      /* exclusive CPUs are held again; idle isolate siblings are not known to the kernel */
      for (guint v = 0; v < plan->vms->len && t == NULL; v++)
        {
          QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
          for (guint i = 0; i < vm->threads->len; i++)
            {
              const QpinPlanThread *x = &g_array_index (vm->threads, QpinPlanThread, i);
              if (x->exclusive && qpin_cpuset_packed_has (&x->cpus, (guint) cpu))
                t = x;
            }
        }
      if (t)
        g_assert_cmpstr (h1, ==, h2);
    }
  g_assert_false (qpin_placer_adopt (again, g_ptr_array_index (plan->vms, 0), &error));
  g_assert_cmpstr (error->message, ==, "vm 'a' is already placed");
  g_clear_error (&error);
  {
    g_autoptr (QpinPlanVm) clash = qpin_plan_vm_copy (g_ptr_array_index (plan->vms, 0));
    g_autofree char *expected = NULL;
    const QpinPlanThread *t0 = &g_array_index (clash->threads, QpinPlanThread, 0);
    g_free (clash->name);
    clash->name = g_strdup ("c");
    g_assert_false (qpin_placer_adopt (again, clash, &error));
    expected = g_strdup_printf ("vm 'c': vcpu 0 is on cpu %d, held by vm 'a'",
                                qpin_cpuset_packed_first (&t0->cpus));
    g_assert_cmpstr (error->message, ==, expected);
  }
}

static void
test_lose_cpu_floating (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (QpinPlacer) placer = NULL;
  g_autoptr (GError) error = NULL;
  const char *conf = "[vm:s]\ncpus = shared\n";
  g_autofree char *before = NULL, *after = NULL, *dedicated = NULL, *dedicated_after = NULL;

  g_assert_true (qpin_config_load_data (config, conf, "t.conf", &error));
  placer = placer_for (topo, config);
  g_assert_true (place_vms (placer, config, "d:2 s:2", &error));
  before = cpus_of (placer, "s", QPIN_ROLE_VCPU, 0);
  dedicated = cpus_of (placer, "d", QPIN_ROLE_VCPU, 0);
  g_assert_cmpstr (before, ==, "1-3,5-7");
  g_assert_true (qpin_placer_lose_cpu (placer, 5, &error));
  after = cpus_of (placer, "s", QPIN_ROLE_VCPU, 0);
  dedicated_after = cpus_of (placer, "d", QPIN_ROLE_VCPU, 0);
  g_assert_cmpstr (after, ==, "1-3,6-7");
  g_assert_true (thread_of (placer, "s", QPIN_ROLE_VCPU, 0)->changed);
  g_assert_cmpstr (dedicated_after, ==, dedicated);
  g_assert_false (thread_of (placer, "d", QPIN_ROLE_VCPU, 0)->changed);
}

/* cpuset: a VM sees only those CPUs, for its vCPUs, its floating
 * threads, a hot-added vCPU and the no-fit message; the others are free
 * to use the rest, and a VM without one is not narrowed. */
static void
test_cpuset (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (QpinPlacer) placer = NULL;
  g_autoptr (GError) error = NULL;
  QpinCpuset inside, c, d, s;
  QpinThreadSpec s4 = qpin_thread_spec_vcpu (4);

  g_assert_true (qpin_config_load_data (config,
                                        "[vm:c]\ncpuset = 9-12,25-28\n"
                                        "[vm:s]\ncpus = shared\ncpuset = 30-31\n"
                                        "[vm:big]\ncpuset = 9-12,25-28\n",
                                        "qpin.conf", &error));
  g_assert_no_error (error);
  placer = placer_for (topo, config);
  g_assert_true (qpin_cpuset_parse ("9-12,25-28", &inside, NULL));

  /* d first takes the best fit on its own: not narrowed by c's cpuset */
  g_assert_true (place_vms (placer, config, "c:4 d:2 s:2", &error));
  g_assert_no_error (error);
  c = vcpus_of (placer, "c");
  d = vcpus_of (placer, "d");
  s = vcpus_of (placer, "s");
  g_assert_cmpuint (qpin_cpuset_count (&c), ==, 4);
  g_assert_true (qpin_cpuset_is_subset (&c, &inside));
  g_assert_false (qpin_cpuset_intersects (&d, &c));
  {
    g_autofree char *text = qpin_cpuset_format (&s);
    g_assert_cmpstr (text, ==, "30-31");
  }
  {
    g_autofree char *emu = cpus_of (placer, "c", QPIN_ROLE_EMULATOR, 0);
    QpinCpuset e;
    g_assert_true (qpin_cpuset_parse (emu, &e, NULL));
    g_assert_true (qpin_cpuset_is_subset (&e, &inside));
  }

  /* a hot-added vCPU stays inside */
  g_assert_true (qpin_placer_add_thread (placer, "c", &s4, &error));
  g_assert_no_error (error);
  {
    g_autofree char *v4 = cpus_of (placer, "c", QPIN_ROLE_VCPU, 4);
    QpinCpuset n;
    g_assert_true (qpin_cpuset_parse (v4, &n, NULL));
    g_assert_true (qpin_cpuset_is_subset (&n, &inside));
  }

  /* 3 of the 8 are left: a 4-vCPU VM with the same cpuset does not fit,
   * though the host has many free CPUs outside it */
  g_assert_false (place_vms (placer, config, "big:4", &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
  /* the message names the cpuset: the host has more free CPUs outside */
  g_assert_cmpstr (error->message, ==,
                   "vm 'big': needs 4 dedicated cpus, 3 free inside its cpuset 9-12,25-28 "
                   "(cpus 12,27-28)");
  g_clear_error (&error);
  g_assert_true (place_vms (placer, config, "e:20", &error));
  g_assert_no_error (error);

  /* a cpuset with nothing usable in it is a contradiction, said at once */
  {
    g_autoptr (QpinConfig) bad = qpin_config_new ();
    g_assert_true (qpin_config_load_data (bad,
                                          "[defaults]\nreserved = 0-3\n"
                                          "[vm:x]\ncpuset = 2-3\n",
                                          "qpin.conf", NULL));
    g_assert_false (qpin_config_check (bad, topo, &error));
    g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT);
    g_assert_cmpstr (error->message, ==,
                     "vm 'x': cpuset=2-3 holds no online, unreserved cpu (those are 4-31)");
  }
}

static QpinConfig *
config_text (const char *text)
{
  QpinConfig *config = qpin_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (qpin_config_load_data (config, text, "qpin.conf", &error));
  g_assert_no_error (error);
  return config;
}

/* The finding's repro: on a 2-CPU host with cpu 0 reserved, a dedicated
 * vCPU would take cpu 1, the only CPU a shared VM can float on: refused,
 * with the reason; with overcommit=share a floats beside b instead. */
static void
test_pool_first_plan (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-2c");
  const char *text = "[defaults]\nreserved = 0\n[vm:a]\ncpus = dedicated\n[vm:b]\ncpus = shared\n";
  g_autoptr (QpinConfig) config = config_text (text);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinConfig) share = config_text (text);
  g_autoptr (QpinPlacer) p2 = placer_for (topo, share);
  g_autoptr (GError) error = NULL;
  const QpinPlanVm *a;

  g_assert_false (place_vms (placer, config, "a:1 b:2", &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
  g_assert_cmpstr (error->message, ==,
                   "vm 'a': needs 1 dedicated cpu, 1 free on the host (cpus 1), but 1 must stay "
                   "in the shared pool for vm 'b'");
  g_assert_null (qpin_placer_holder (placer, 1));
  g_assert_cmpuint (qpin_placer_get_plan (placer)->vms->len, ==, 0);
  g_clear_error (&error);
  /* alone, a may take the last CPU: nothing floats */
  g_assert_true (place_vms (placer, config, "a:1", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (qpin_placer_holder (placer, 1), ==, "a");
  /* then b, arriving later, has no pool: refused, naming who holds it */
  g_assert_false (place_vms (placer, config, "b:2", &error));
  g_assert_cmpstr (error->message, ==,
                   "vm 'b': the shared pool is empty: every usable cpu on the host is held by a "
                   "dedicated vm ('a')");
  g_assert_null (qpin_plan_find_vm (qpin_placer_get_plan (placer), "b"));

  g_assert_true (qpin_config_add_override (share, "overcommit=share", NULL));
  g_assert_true (place_vms (p2, share, "a:1 b:2", NULL));
  a = qpin_plan_find_vm (qpin_placer_get_plan (p2), "a");
  g_assert_true (a->floating);
  g_assert_cmpuint (a->notes->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (a->notes, 0), ==,
                   "overcommitted: shared pool (vm 'a': needs 1 dedicated cpu, 1 free on the host "
                   "(cpus 1), but 1 must stay in the shared pool for vm 'b')");
  assert_exclusive (p2);
}

/* A hot-added vCPU of a dedicated VM may not take the CPU a shared VM
 * floats on: refused with the reason (b keeps cpu 1), or with
 * overcommit=share it floats there itself, said in a note. */
static void
test_pool_hot_add (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-2c");
  g_autoptr (QpinConfig) config = config_text ("[vm:b]\ncpus = shared\n");
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinConfig) share = config_text ("[vm:b]\ncpus = shared\n");
  g_autoptr (QpinPlacer) p2 = NULL;
  g_autoptr (GError) error = NULL;
  QpinThreadSpec v1 = qpin_thread_spec_vcpu (1);
  g_autofree char *a0 = NULL, *b0 = NULL, *b0_after = NULL;

  g_assert_true (place_vms (placer, config, "a:1 b:1", NULL));
  a0 = cpus_of (placer, "a", QPIN_ROLE_VCPU, 0);
  b0 = cpus_of (placer, "b", QPIN_ROLE_VCPU, 0);
  g_assert_cmpstr (a0, ==, "0");
  g_assert_cmpstr (b0, ==, "1");
  g_assert_false (qpin_placer_add_thread (placer, "a", &v1, &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
  g_assert_cmpstr (error->message, ==,
                   "vm 'a': vcpu 1 needs 1 dedicated cpu, 1 free on the host (cpus 1), but 1 must "
                   "stay in the shared pool for vm 'b'");
  g_assert_null (thread_of (placer, "a", QPIN_ROLE_VCPU, 1));
  g_assert_null (qpin_placer_holder (placer, 1));
  b0_after = cpus_of (placer, "b", QPIN_ROLE_VCPU, 0);
  g_assert_cmpstr (b0_after, ==, "1");
  assert_exclusive (placer);

  g_assert_true (qpin_config_add_override (share, "overcommit=share", NULL));
  p2 = placer_for (topo, share);
  g_assert_true (place_vms (p2, share, "a:1 b:1", NULL));
  g_assert_true (qpin_placer_add_thread (p2, "a", &v1, NULL));
  {
    g_autofree char *a1 = cpus_of (p2, "a", QPIN_ROLE_VCPU, 1);
    const QpinPlanVm *a = qpin_plan_find_vm (qpin_placer_get_plan (p2), "a");
    g_assert_cmpstr (a1, ==, "1");
    g_assert_false (thread_of (p2, "a", QPIN_ROLE_VCPU, 1)->exclusive);
    g_assert_cmpstr (g_ptr_array_index (a->notes, a->notes->len - 1), ==,
                     "overcommitted: vcpu 1 floats on a shared pool (vm 'a': vcpu 1 needs 1 "
                     "dedicated cpu, 1 free on the host (cpus 1), but 1 must stay in the shared "
                     "pool for vm 'b')");
  }
  assert_exclusive (p2);
}

/* The 512-CPU host: one shared VM leaves room for 511 dedicated CPUs,
 * not 512, through a first plan and through a hot-add; a batch that asks
 * for more than the host has and may overcommit keeps the pool too. */
static void
test_pool_big_host (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("8n-512");
  g_autoptr (QpinConfig) config = config_text ("[vm:s]\ncpus = shared\n");
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinConfig) share = config_text ("[defaults]\novercommit = share\n");
  g_autoptr (QpinPlacer) p2 = placer_for (topo, share);
  g_autoptr (GError) error = NULL;
  QpinThreadSpec v511 = qpin_thread_spec_vcpu (511);
  g_autofree char *s0 = NULL;

  g_assert_false (place_vms (placer, config, "s:4 d:512", &error));
  g_assert_true (g_str_has_prefix (error->message, "vm 'd': needs 512 dedicated cpus, 512 free on "
                                                   "the host (cpus 0-511), but 1 must stay"));
  g_clear_error (&error);
  g_assert_true (place_vms (placer, config, "s:4 d:511:sockets=1,cores=511,threads=1", &error));
  g_assert_no_error (error);
  s0 = cpus_of (placer, "s", QPIN_ROLE_VCPU, 0);
  g_assert_cmpuint (qpin_cpuset_packed_count (&thread_of (placer, "s", QPIN_ROLE_VCPU, 0)->cpus),
                    ==, 1);
  g_assert_false (qpin_placer_add_thread (placer, "d", &v511, &error));
  g_assert_nonnull (strstr (error->message, "but 1 must stay in the shared pool for vm 's'"));
  assert_exclusive (placer);

  /* 3 x 200 vCPUs on 512 CPUs: two fit, the third floats on what is left */
  g_assert_true (place_vms (p2, share, "a:200 b:200 c:200", NULL));
  assert_exclusive (p2);
}

/* A lost host CPU: the vCPU that held it may not take the shared pool's
 * last CPU (it degrades and floats there with b); when the pool's own
 * CPU goes, b floats on the reserved CPU, never on a's. */
static void
test_pool_lose_cpu (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("lab-1n4c");
  g_autoptr (QpinConfig) config = config_text ("[vm:b]\ncpus = shared\n");
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (QpinConfig) reserved
    = config_text ("[defaults]\nreserved = 0\n[vm:b]\ncpus = shared\n");
  g_autoptr (QpinPlacer) p2 = placer_for (topo, reserved);
  const QpinPlanVm *a, *b;
  const QpinPlanThread *t;

  g_assert_true (place_vms (placer, config, "a:3 b:1", NULL));
  t = thread_of (placer, "a", QPIN_ROLE_VCPU, 0);
  g_assert_cmpint (qpin_cpuset_packed_first (&t->cpus), ==, 0);
  g_assert_true (qpin_placer_lose_cpu (placer, 0, NULL));
  t = thread_of (placer, "a", QPIN_ROLE_VCPU, 0);
  g_assert_false (t->exclusive);
  a = qpin_plan_find_vm (qpin_placer_get_plan (placer), "a");
  g_assert_cmpstr (g_ptr_array_index (a->notes, a->notes->len - 1), ==,
                   "degraded: vcpu 0 floats after losing cpu 0 (vm 'a': vcpu 0 needs 1 dedicated "
                   "cpu, 1 free on the host (cpus 3), but 1 must stay in the shared pool for vm "
                   "'b')");
  assert_exclusive (placer);

  g_assert_true (place_vms (p2, reserved, "a:2 b:1", NULL));
  g_assert_true (qpin_placer_lose_cpu (p2, 3, NULL));
  b = qpin_plan_find_vm (qpin_placer_get_plan (p2), "b");
  {
    g_autofree char *b0 = cpus_of (p2, "b", QPIN_ROLE_VCPU, 0);
    g_assert_cmpstr (b0, ==, "0");
  }
  g_assert_cmpuint (b->notes->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (b->notes, 0), ==,
                   "degraded: the shared pool is empty, floats on the reserved cpus 0");
  assert_exclusive (p2);
}

/* Adoption after a restart obeys the rule too: pins that would take the
 * last CPU a floating VM has are not adopted. */
static void
test_pool_adopt (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-2c");
  g_autoptr (QpinConfig) config = config_text ("[vm:b]\ncpus = shared\n");
  g_autoptr (QpinPlacer) first = placer_for (topo, config);
  g_autoptr (QpinPlacer) again = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPlanVm) a = NULL;
  QpinThreadSpec v1 = qpin_thread_spec_vcpu (1);

  g_assert_true (place_vms (first, config, "a:2", NULL));
  g_assert_true (place_vms (again, config, "b:1", NULL));
  a = qpin_plan_vm_copy (qpin_plan_find_vm (qpin_placer_get_plan (first), "a"));
  g_assert_false (qpin_placer_adopt (again, a, &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT);
  g_assert_cmpstr (error->message, ==,
                   "vm 'a': its pins leave the shared pool empty, and vm 'b' floats on it");
  g_assert_null (qpin_plan_find_vm (qpin_placer_get_plan (again), "a"));
  g_assert_null (qpin_placer_holder (again, 0));
  g_assert_null (qpin_placer_holder (again, 1));
  /* with one vCPU less it fits beside b */
  g_assert_true (qpin_placer_remove_thread (first, "a", QPIN_ROLE_VCPU, 1, NULL));
  g_clear_pointer (&a, qpin_plan_vm_free);
  a = qpin_plan_vm_copy (qpin_plan_find_vm (qpin_placer_get_plan (first), "a"));
  g_assert_true (qpin_placer_adopt (again, a, NULL));
  assert_exclusive (again);
  g_assert_false (qpin_placer_add_thread (again, "a", &v1, NULL));
}

/* cpus=manual: one check for the first plan and for a hot-add, one
 * message; a VM mapping two of its vCPUs to one CPU is told so. */
static void
test_manual_messages (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinConfig) config = config_text ("[vm:a]\ncpus = manual\ncpumap = 0=0,1=0\n"
                                               "[vm:m]\ncpus = manual\ncpumap = 0=5,1=6\n"
                                               "[vm:x]\ncpus = manual\ncpumap = 0=6\n");
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  QpinThreadSpec v1 = qpin_thread_spec_vcpu (1);

  g_assert_false (place_vms (placer, config, "a:2", &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT);
  g_assert_cmpstr (error->message, ==,
                   "vm 'a': cpumap puts vcpu 1 on cpu 0, which it holds itself (vcpu 0)");
  g_clear_error (&error);
  g_assert_true (place_vms (placer, config, "m:1 x:1", NULL));
  g_assert_false (qpin_placer_add_thread (placer, "m", &v1, &error));
  g_assert_cmpstr (error->message, ==,
                   "vm 'm': cpumap puts vcpu 1 on cpu 6, which another vm holds ('x')");
  g_clear_error (&error);
  g_assert_true (qpin_placer_remove_vm (placer, "m", NULL));
  g_assert_false (place_vms (placer, config, "m:2", &error));
  g_assert_cmpstr (error->message, ==,
                   "vm 'm': cpumap puts vcpu 1 on cpu 6, which another vm holds ('x')");
}

/* a caller's note goes into the placed VM's plan through the placer (the
 * plan is the placer's: no writes through a const plan); a VM that is not
 * placed gets none */
static void
test_add_note (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) placer = placer_for (topo, config);
  const QpinPlanVm *a;

  g_assert_true (place_vms (placer, config, "a:2", NULL));
  g_assert_true (qpin_placer_add_note (placer, "a", "its cgroup allows cpus %s", "0-3"));
  g_assert_false (qpin_placer_add_note (placer, "b", "never %d", 1));
  a = qpin_plan_find_vm (qpin_placer_get_plan (placer), "a");
  g_assert_cmpuint (a->notes->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (a->notes, 0), ==, "its cgroup allows cpus 0-3");
}

/* A plan's sets are packed, one word per 64 CPUs: a copy owns its words
 * (the original freed, the copy still reads the same sets; ASan and
 * valgrind check the rest), and removing a thread frees its set. */
static void
test_plan_copy_deep (void)
{
  static const char *const lists[] = { "1,200", "64-127", "5" };
  g_autoptr (QpinPolicy) policy = qpin_policy_new ();
  g_autoptr (QpinPlanVm) vm = qpin_plan_vm_new ("a", 1, policy);
  g_autoptr (QpinPlanVm) copy = NULL;
  g_autofree char *held = NULL;
  QpinCpuset set;

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    {
      QpinPlanThread t = { .spec = qpin_thread_spec_vcpu (i), .exclusive = TRUE };
      g_assert_true (qpin_cpuset_parse (lists[i], &set, NULL));
      qpin_cpuset_pack (&t.cpus, &set);
      g_array_append_val (vm->threads, t);
    }
  g_assert_true (qpin_cpuset_parse ("1,5,64-127,200", &set, NULL));
  qpin_cpuset_pack (&vm->held, &set);
  qpin_cpuset_pack (&vm->pool_domain, &set);
  g_assert_true (qpin_cpuset_parse ("0,70", &set, NULL));
  qpin_cpuset_pack (&vm->mem_nodes, &set);

  copy = qpin_plan_vm_copy (vm);
  for (guint i = 0; i < 2; i++)
    g_assert_true (g_array_index (copy->threads, QpinPlanThread, i).cpus.w.many
                   != g_array_index (vm->threads, QpinPlanThread, i).cpus.w.many);
  g_assert_true (copy->held.w.many != vm->held.w.many);
  g_assert_true (copy->pool_domain.w.many != vm->pool_domain.w.many);
  g_assert_true (copy->mem_nodes.w.many != vm->mem_nodes.w.many);
  g_clear_pointer (&vm, qpin_plan_vm_free);

  for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
    {
      QpinCpuset cpus = thread_cpus (&g_array_index (copy->threads, QpinPlanThread, i));
      g_autofree char *text = qpin_cpuset_format (&cpus);
      g_assert_cmpstr (text, ==, lists[i]);
    }
  qpin_cpuset_unpack (&copy->held, &set);
  held = qpin_cpuset_format (&set);
  g_assert_cmpstr (held, ==, "1,5,64-127,200");
  g_assert_true (qpin_cpuset_packed_equal (&copy->pool_domain, &set));
  g_assert_cmpuint (qpin_cpuset_packed_count (&copy->mem_nodes), ==, 2);
  g_array_remove_index (copy->threads, 0);
  g_assert_cmpuint (copy->threads->len, ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/placer/exclusive", test_exclusive);
  g_test_add_func ("/placer/one-node-one-llc", test_one_node_one_llc);
  g_test_add_func ("/placer/whole-cores", test_whole_cores);
  g_test_add_func ("/placer/best-fit", test_best_fit);
  g_test_add_func ("/placer/best-order", test_best_order);
  g_test_add_func ("/placer/smt-prefer", test_smt_prefer);
  g_test_add_func ("/placer/smt-isolate", test_smt_isolate);
  g_test_add_func ("/placer/smt-require", test_smt_require);
  g_test_add_func ("/placer/guest-numa", test_guest_numa);
  g_test_add_func ("/placer/emulator", test_emulator);
  g_test_add_func ("/placer/reserved-isolated", test_reserved_and_isolated);
  g_test_add_func ("/placer/overcommit", test_overcommit);
  g_test_add_func ("/placer/hotplug", test_hotplug);
  g_test_add_func ("/placer/lose-cpu", test_lose_cpu);
  g_test_add_func ("/placer/lose-cpu-full-host", test_lose_cpu_full_host);
  g_test_add_func ("/placer/manual", test_manual);
  g_test_add_func ("/placer/deterministic", test_deterministic);
  g_test_add_func ("/placer/big-host", test_big_host);
  g_test_add_func ("/placer/adopt", test_adopt);
  g_test_add_func ("/placer/lose-cpu-floating", test_lose_cpu_floating);
  g_test_add_func ("/placer/cpuset", test_cpuset);
  g_test_add_func ("/placer/pool-first-plan", test_pool_first_plan);
  g_test_add_func ("/placer/pool-hot-add", test_pool_hot_add);
  g_test_add_func ("/placer/pool-big-host", test_pool_big_host);
  g_test_add_func ("/placer/pool-lose-cpu", test_pool_lose_cpu);
  g_test_add_func ("/placer/pool-adopt", test_pool_adopt);
  g_test_add_func ("/placer/manual-messages", test_manual_messages);
  g_test_add_func ("/placer/add-note", test_add_note);
  g_test_add_func ("/placer/plan-copy-deep", test_plan_copy_deep);
  return g_test_run ();
}
