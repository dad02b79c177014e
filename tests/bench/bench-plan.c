/* bench-plan.c: placement speed, quality and memory on the 512-CPU fixture
 *
 * Prints numbers; asserts nothing about time (machines differ).  The
 * baseline, run in the same process on the same input, is a naive
 * first-fit placer (lowest free CPUs, no topology), so the ratio says
 * what the topology awareness costs and what it buys.
 *
 *   meson test -C build --suite bench --verbose
 */
#include <glib.h>
#include <malloc.h>
#include <time.h>

#include "qpin-placer.h"
#include "qpin-topology-reader.h"

#define N_VMS 256
#define N_VCPUS 4
#define RUNS 5

/* CPU time of this thread in ms: less sensitive than wall time to other
 * processes on a shared machine */
static double
cpu_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static GPtrArray *
make_requests (guint n_vms)
{
  GPtrArray *requests = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  for (guint v = 0; v < n_vms; v++)
    {
      g_autofree char *name = g_strdup_printf ("vm%03u", v);
      /* half the VMs declare guest SMT (2 cores x 2 threads) */
      QpinGuestShape shape = { .vcpus = N_VCPUS, .threads = v % 2 ? 2 : 1 };
      g_ptr_array_add (requests, qpin_request_new_from_shape (name, &shape, NULL));
    }
  return requests;
}

static GPtrArray *
make_policies (guint n_vms, gboolean overcommit)
{
  GPtrArray *policies = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  for (guint v = 0; v < n_vms; v++)
    {
      QpinPolicy *p = qpin_policy_new ();
      p->overcommit = overcommit ? QPIN_OVERCOMMIT_SHARE : QPIN_OVERCOMMIT_REFUSE;
      g_ptr_array_add (policies, p);
    }
  return policies;
}

/* first fit: each vCPU gets the lowest free CPU */
static QpinPlan *
first_fit (const QpinTopology *topo, GPtrArray *requests)
{
  g_autoptr (QpinPolicy) policy = qpin_policy_new ();
  QpinPlan *plan = qpin_plan_new ();
  QpinCpuset free_cpus = topo->online;

  for (guint v = 0; v < requests->len; v++)
    {
      const QpinRequest *r = g_ptr_array_index (requests, v);
      QpinPlanVm *vm = qpin_plan_vm_new (r->name, 0, policy);
      for (guint i = 0; i < r->threads->len; i++)
        {
          QpinPlanThread t = { .spec = g_array_index (r->threads, QpinThreadSpec, i) };
          if (t.spec.role == QPIN_ROLE_VCPU && !qpin_cpuset_is_empty (&free_cpus))
            {
              gint cpu = qpin_cpuset_first (&free_cpus);
              qpin_cpuset_packed_add (&t.cpus, (guint) cpu);
              qpin_cpuset_remove (&free_cpus, (guint) cpu);
              qpin_cpuset_packed_add (&vm->held, (guint) cpu);
              t.exclusive = TRUE;
            }
          g_array_append_val (vm->threads, t);
        }
      g_ptr_array_add (plan->vms, vm);
    }
  return plan;
}

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v, guint n)
{
  qsort (v, n, sizeof (double), cmp_double);
  return v[n / 2];
}

static void
print_score (const char *who, const QpinScore *s)
{
  g_print ("  %-10s nodes spanned %u (min %u), llc groups %u (min %u), shared cores %u, "
           "guest siblings %u/%u, half-used cores %u\n",
           who, s->nodes_spanned, s->nodes_min, s->llcs_spanned, s->llcs_min, s->shared_cores,
           s->sibling_pairs - s->sibling_misses, s->sibling_pairs, s->half_used_cores);
}

static void
bench_batch (const QpinTopology *topo, guint n_vms, gboolean overcommit)
{
  g_autoptr (GPtrArray) requests = make_requests (n_vms);
  g_autoptr (GPtrArray) policies = make_policies (n_vms, overcommit);
  double engine[RUNS], naive[RUNS], engine_cpu[RUNS];
  QpinScore es = { 0 }, ns = { 0 };
  size_t heap_before = 0, heap_after = 0;

  for (guint run = 0; run < RUNS; run++)
    {
      struct mallinfo2 m0 = mallinfo2 ();
      double c0 = cpu_ms ();
      gint64 t0 = g_get_monotonic_time ();
      g_autoptr (QpinPlacer) placer = qpin_placer_new (topo, NULL);
      g_autoptr (GError) error = NULL;
      gint64 t1;
      g_autoptr (QpinPlan) baseline = NULL;
      gint64 t2, t3;

      if (!qpin_placer_place (placer, requests, policies, &error))
        g_error ("bench: %s", error->message);
      t1 = g_get_monotonic_time ();
      engine_cpu[run] = cpu_ms () - c0;
      if (run == 0)
        {
          heap_before = m0.uordblks;
          heap_after = mallinfo2 ().uordblks;
        }
      engine[run] = (double) (t1 - t0) / 1000.0;
      qpin_placer_score (placer, &es);
      t2 = g_get_monotonic_time ();
      baseline = first_fit (topo, requests);
      t3 = g_get_monotonic_time ();
      naive[run] = (double) (t3 - t2) / 1000.0;
      qpin_score_compute (topo, baseline, &topo->online, &ns);
    }
  g_print ("plan %u VMs x %u vCPUs on %u CPUs (%u nodes, %u LLC groups)%s:\n", n_vms, N_VCPUS,
           qpin_cpuset_count (&topo->online), qpin_topology_n_nodes (topo), topo->llcs->len,
           overcommit ? ", overcommit=share: what does not fit floats" : "");
  g_print ("  engine     %.2f ms wall, %.2f ms cpu (medians of %u, target < 50 ms)\n",
           median (engine, RUNS), median (engine_cpu, RUNS), RUNS);
  g_print ("  first-fit  %.3f ms (baseline)\n", median (naive, RUNS));
  g_print ("  ratio      %.0fx the baseline time\n",
           median (engine, RUNS) / MAX (median (naive, RUNS), 0.001));
  g_print ("  overcommitted vCPUs: engine %u\n", es.overcommitted);
  print_score ("engine", &es);
  print_score ("first-fit", &ns);
  g_print ("  heap for placer + plan: %.1f KiB (%.0f bytes per CPU+thread)\n",
           (double) (heap_after - heap_before) / 1024.0,
           (double) (heap_after - heap_before) / (512.0 + n_vms * (N_VCPUS + 1)));
}

static void
bench_hotplug (const QpinTopology *topo)
{
  g_autoptr (GPtrArray) requests = make_requests (120);
  g_autoptr (GPtrArray) policies = make_policies (120, FALSE);
  g_autoptr (QpinPlacer) placer = qpin_placer_new (topo, NULL);
  g_autoptr (GError) error = NULL;
  const guint rounds = 200;
  double add[200];
  double remove_total = 0;

  /* leave room: 120 VMs (480 of 512 CPUs), then hot-add to vm010 */
  if (!qpin_placer_place (placer, requests, policies, &error))
    g_error ("bench: %s", error->message);
  for (guint i = 0; i < rounds; i++)
    {
      QpinThreadSpec spec = qpin_thread_spec_vcpu (N_VCPUS);
      gint64 t0, t1, t2;

      spec.topo.socket = 0;
      spec.topo.core = N_VCPUS;
      spec.topo.thread = 0;
      t0 = g_get_monotonic_time ();
      if (!qpin_placer_add_thread (placer, "vm010", &spec, &error))
        g_error ("bench: %s", error->message);
      t1 = g_get_monotonic_time ();
      if (!qpin_placer_remove_thread (placer, "vm010", QPIN_ROLE_VCPU, N_VCPUS, &error))
        g_error ("bench: %s", error->message);
      t2 = g_get_monotonic_time ();
      add[i] = (double) (t1 - t0);
      remove_total += (double) (t2 - t1);
    }
  g_print ("hot-add one vCPU beside 120 placed VMs: %.1f us (median of %u, target < 100 us), "
           "remove %.1f us (mean)\n",
           median (add, rounds), rounds, remove_total / rounds);
}

int
main (int argc, char **argv)
{
  g_autofree char *root = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (GError) error = NULL;

  g_test_init (&argc, &argv, NULL);
  root = g_test_build_filename (G_TEST_DIST, "fixtures", "8n-512", NULL);
  topo = qpin_topology_read (root, NULL, &error);
  g_assert_no_error (error);
  /* the case: 1024 vCPUs on 512 CPUs, half of them float */
  bench_batch (topo, N_VMS, TRUE);
  /* the host exactly full of dedicated vCPUs */
  bench_batch (topo, N_VMS / 2, FALSE);
  bench_hotplug (topo);
  return 0;
}
