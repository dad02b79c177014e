/* test-optimal.c: the engine's plan scores as well as an exhaustive search
 *
 * Seeded random small instances (<= 16 CPUs, <= 4 VMs, random nodes, LLC
 * groups, SMT, distances, guest SMT; a quarter with smt=isolate, where the
 * VMs get whole cores; a fifth with numa=strict, where the engine must
 * refuse exactly when no one-node-per-VM plan exists; a third with clusters of
 * two cores, a third with two CPU kinds, the slower half E, drawn from a
 * third stream so that the others stay as they were): every way of giving
 * each VM its own
 * set of CPUs is enumerated, each scored with qpin_score_compute() (guest
 * sibling pairs put on whole host cores first, which is optimal for a
 * given set), and the best is compared with the engine's plan.
 */
#include <glib.h>
#include <string.h>

#include "qpin-placer.h"

#define MAX_ASSIGNMENTS 10000
#define N_INSTANCES 80

typedef struct {
  QpinTopology *topo;
  guint n_cpus;
  guint n_vms;
  guint size[4];
  guint threads[4];
  gboolean isolate; /* smt=isolate: every vCPU owns a whole core */
  gboolean strict;  /* numa=strict: every VM in one node, or no plan */
  char *description;
} Instance;

/* Two kinds when @with_kinds: the first half of the cores (by CPU) P, the
 * rest E. */
static void
add_kinds (QpinTopology *topo, guint n_cpus, guint threads, gboolean with_kinds, GString *desc)
{
  guint n_cores = n_cpus / threads;
  QpinCpuset fast, slow;

  if (!with_kinds || n_cores < 2)
    return;
  qpin_cpuset_clear_all (&fast);
  qpin_cpuset_clear_all (&slow);
  qpin_cpuset_add_range (&fast, 0, (n_cores + 1) / 2 * threads - 1);
  qpin_cpuset_add_range (&slow, (n_cores + 1) / 2 * threads, n_cpus - 1);
  qpin_topology_add_kind (topo, "P", &fast, 64, "test");
  qpin_topology_add_kind (topo, "E", &slow, 39, "test");
  g_string_append_printf (desc, " kinds P%u/E%u", (n_cores + 1) / 2, n_cores / 2);
}

static QpinTopology *
random_topology (GRand *rand, GRand *rand3, guint *n_cpus, GString *desc)
{
  QpinTopology *topo = qpin_topology_new ();
  guint n_nodes = (guint) g_rand_int_range (rand, 1, 4);
  guint threads = (guint) g_rand_int_range (rand, 1, 3);
  guint cpu = 0, core_id = 0;
  guint dist[3][3];
  QpinCpuset node_cpus[3], all;
  guint64 choices[] = { 12, 16, 21, 32 };
  gboolean with_clusters = g_rand_int_range (rand3, 0, 3) == 0;
  gboolean with_kinds = g_rand_int_range (rand3, 0, 3) == 0;

  qpin_cpuset_clear_all (&all);
  for (guint a = 0; a < n_nodes; a++)
    for (guint b = a; b < n_nodes; b++)
      dist[a][b] = dist[b][a] = a == b ? 10 : (guint) choices[g_rand_int_range (rand, 0, 4)];
  g_string_append_printf (desc, "threads=%u nodes:", threads);
  for (guint n = 0; n < n_nodes; n++)
    {
      guint n_llc = (guint) g_rand_int_range (rand, 1, 3);
      qpin_cpuset_clear_all (&node_cpus[n]);
      g_string_append_printf (desc, " [");
      for (guint l = 0; l < n_llc; l++)
        {
          guint n_cores = (guint) g_rand_int_range (rand, 1, 4);
          QpinCpuset llc;
          guint first = cpu;

          if (cpu + n_cores * threads > 16)
            n_cores = (16 - cpu) / threads;
          if (n_cores == 0)
            break;
          qpin_cpuset_clear_all (&llc);
          qpin_cpuset_add_range (&llc, first, first + n_cores * threads - 1);
          g_string_append_printf (desc, " llc%u", n_cores);
          for (guint c = 0; c < n_cores; c++, core_id++)
            {
              QpinTopoCpuInfo info
                = { .package_id = n, .core_id = core_id, .llc = llc, .llc_level = 3 };
              guint pair = first + c / 2 * 2 * threads;

              qpin_cpuset_clear_all (&info.siblings);
              qpin_cpuset_add_range (&info.siblings, cpu, cpu + threads - 1);
              /* clusters of two cores inside the LLC group (the last may be one) */
              qpin_cpuset_clear_all (&info.cluster);
              if (with_clusters)
                qpin_cpuset_add_range (&info.cluster, pair,
                                       MIN (pair + 2 * threads, first + n_cores * threads) - 1);
              for (guint t = 0; t < threads; t++)
                {
                  info.cpu = cpu;
                  qpin_topology_add_cpu (topo, &info);
                  qpin_cpuset_add (&node_cpus[n], cpu);
                  qpin_cpuset_add (&all, cpu);
                  cpu++;
                }
            }
        }
      g_string_append_printf (desc, " ]");
    }
  if (with_clusters)
    g_string_append (desc, " clusters of 2");
  add_kinds (topo, cpu, threads, with_kinds, desc);
  for (guint n = 0; n < n_nodes; n++)
    {
      guint row[3] = { dist[n][0], dist[n][1], dist[n][2] };
      qpin_topology_add_node (topo, n, &node_cpus[n], 1024, 512, row, n_nodes);
    }
  qpin_topology_set_cpus (topo, &all, &all, NULL, NULL);
  g_assert_true (qpin_topology_finish (topo, NULL));
  *n_cpus = cpu;
  return topo;
}

static guint64
binomial (guint n, guint k)
{
  guint64 r = 1;
  for (guint i = 1; i <= k; i++)
    r = r * (n - k + i) / i;
  return r;
}

static gboolean
random_instance (GRand *rand, GRand *rand2, GRand *rand3, Instance *in)
{
  g_autoptr (GString) desc = g_string_new (NULL);
  guint total = 0, left;
  guint64 count = 1;

  in->topo = random_topology (rand, rand3, &in->n_cpus, desc);
  in->isolate = g_rand_int_range (rand, 0, 4) == 0;
  if (in->isolate)
    g_string_append (desc, " smt=isolate");
  /* a separate stream, so that adding this kept the other instances */
  in->strict = g_rand_int_range (rand2, 0, 5) == 0;
  if (in->strict)
    g_string_append (desc, " numa=strict");
  in->n_vms = (guint) g_rand_int_range (rand, 2, 5);
  g_string_append (desc, " vms:");
  for (guint v = 0; v < in->n_vms; v++)
    {
      in->size[v] = (guint) g_rand_int_range (rand, 1, 6);
      in->threads[v] = in->size[v] % 2 == 0 && g_rand_boolean (rand) ? 2 : 1;
      total += in->size[v];
      g_string_append_printf (desc, " %u/t%u", in->size[v], in->threads[v]);
    }
  {
    guint capacity = in->isolate ? in->topo->cores->len : in->n_cpus;
    left = capacity;
    for (guint v = 0; v < in->n_vms && total <= capacity; v++)
      {
        count *= binomial (left, in->size[v]);
        left -= in->size[v];
      }
    in->description = g_strdup (desc->str);
    if (total > capacity || 4 * total < 3 * capacity || count > MAX_ASSIGNMENTS)
      {
        qpin_topology_free (in->topo);
        g_free (in->description);
        return FALSE;
      }
  }
  return TRUE;
}

static QpinRequest *
request_for (guint v, guint size, guint threads)
{
  g_autofree char *name = g_strdup_printf ("vm%u", v);
  QpinGuestShape shape = { .vcpus = size, .threads = threads };
  return qpin_request_new_from_shape (name, &shape, NULL);
}

/* ---- exhaustive ---- */

typedef struct {
  const Instance *in;
  QpinPlan *plan;
  QpinCpuset usable;
  QpinCpuset used;
  QpinScore best;
  gboolean have_best;
  guint evaluated;
} Exhaustive;

/* Gives the vCPUs of vm their CPUs from @set: guest sibling pairs on
 * whole host cores inside @set first. */
static void
assign (Exhaustive *ex, guint v, const QpinCpuset *set)
{
  QpinPlanVm *vm = g_ptr_array_index (ex->plan->vms, v);
  QpinCpuset left = *set;
  guint n = ex->in->size[v];
  guint i = 0;

  qpin_cpuset_pack (&vm->held, set);
  if (ex->in->threads[v] == 2)
    for (guint k = 0; k < ex->in->topo->cores->len && i + 1 < n; k++)
      {
        const QpinTopoCore *core = &g_array_index (ex->in->topo->cores, QpinTopoCore, k);
        gint a = qpin_cpuset_first (&core->cpus);
        gint b = qpin_cpuset_next (&core->cpus, a);
        if (b < 0 || !qpin_cpuset_has (&left, (guint) a) || !qpin_cpuset_has (&left, (guint) b))
          continue;
        for (guint j = 0; j < 2; j++, i++)
          {
            QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
            qpin_cpuset_packed_clear (&t->cpus);
            qpin_cpuset_packed_add (&t->cpus, (guint) (j ? b : a));
            qpin_cpuset_remove (&left, (guint) (j ? b : a));
          }
      }
  for (; i < n; i++)
    {
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      gint c = qpin_cpuset_first (&left);
      qpin_cpuset_packed_clear (&t->cpus);
      qpin_cpuset_packed_add (&t->cpus, (guint) c);
      qpin_cpuset_remove (&left, (guint) c);
    }
}

/* smt=isolate: @set holds whole cores; vCPU i gets the first CPU of the
 * i-th core, the siblings are held idle. */
static void
assign_isolate (Exhaustive *ex, guint v, const QpinCpuset *set)
{
  QpinPlanVm *vm = g_ptr_array_index (ex->plan->vms, v);
  guint i = 0;

  qpin_cpuset_pack (&vm->held, set);
  for (guint k = 0; k < ex->in->topo->cores->len; k++)
    {
      const QpinTopoCore *core = &g_array_index (ex->in->topo->cores, QpinTopoCore, k);
      gint first = qpin_cpuset_first (&core->cpus);
      if (!qpin_cpuset_has (set, (guint) first))
        continue;
      QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i++);
      qpin_cpuset_packed_clear (&t->cpus);
      qpin_cpuset_packed_add (&t->cpus, (guint) first);
    }
}

static gboolean
one_node (const QpinTopology *topo, const QpinCpuset *set)
{
  gint node = -1;
  QPIN_CPUSET_FOREACH (cpu, set)
    {
      gint n = qpin_topology_cpu_node (topo, (guint) cpu);
      if (node >= 0 && n != node)
        return FALSE;
      node = n;
    }
  return TRUE;
}

static void
choose (Exhaustive *ex, guint v, gint from, guint need, QpinCpuset *set)
{
  if (need == 0 && ex->in->strict && !one_node (ex->in->topo, set))
    return;
  if (need == 0)
    {
      QpinCpuset saved = ex->used;
      qpin_cpuset_or (&ex->used, set);
      if (ex->in->isolate)
        assign_isolate (ex, v, set);
      else
        assign (ex, v, set);
      if (v + 1 == ex->in->n_vms)
        {
          QpinScore s;
          qpin_score_compute (ex->in->topo, ex->plan, &ex->usable, &s);
          ex->evaluated++;
          if (!ex->have_best || qpin_score_compare (&s, &ex->best) < 0)
            {
              ex->best = s;
              ex->have_best = TRUE;
            }
        }
      else
        {
          QpinCpuset next;
          qpin_cpuset_clear_all (&next);
          choose (ex, v + 1, -1, ex->in->size[v + 1], &next);
        }
      ex->used = saved;
      return;
    }
  if (ex->in->isolate)
    {
      /* @from is a core index here */
      for (guint k = (guint) (from + 1); k < ex->in->topo->cores->len; k++)
        {
          const QpinTopoCore *core = &g_array_index (ex->in->topo->cores, QpinTopoCore, k);
          if (qpin_cpuset_intersects (&core->cpus, &ex->used))
            continue;
          qpin_cpuset_or (set, &core->cpus);
          choose (ex, v, (gint) k, need - 1, set);
          qpin_cpuset_andnot (set, &core->cpus);
        }
      return;
    }
  for (gint c = qpin_cpuset_next (&ex->usable, from); c >= 0; c = qpin_cpuset_next (&ex->usable, c))
    {
      if (qpin_cpuset_has (&ex->used, (guint) c))
        continue;
      qpin_cpuset_add (set, (guint) c);
      choose (ex, v, c, need - 1, set);
      qpin_cpuset_remove (set, (guint) c);
    }
}

static gboolean
exhaustive (const Instance *in, QpinScore *best)
{
  g_autoptr (QpinPolicy) policy = qpin_policy_new ();

  policy->smt = in->isolate ? QPIN_SMT_ISOLATE : QPIN_SMT_PREFER;
  policy->numa = in->strict ? QPIN_NUMA_STRICT : QPIN_NUMA_PREFER;
  Exhaustive ex = { .in = in, .plan = qpin_plan_new () };
  QpinCpuset set;

  for (guint v = 0; v < in->n_vms; v++)
    {
      g_autoptr (QpinRequest) r = request_for (v, in->size[v], in->threads[v]);
      QpinPlanVm *vm = qpin_plan_vm_new (r->name, 0, policy);
      for (guint i = 0; i < r->threads->len; i++)
        {
          QpinPlanThread t
            = { .spec = g_array_index (r->threads, QpinThreadSpec, i), .exclusive = TRUE };
          if (t.spec.role == QPIN_ROLE_VCPU)
            g_array_append_val (vm->threads, t);
        }
      g_ptr_array_add (ex.plan->vms, vm);
    }
  ex.usable = in->topo->online;
  qpin_cpuset_clear_all (&ex.used);
  qpin_cpuset_clear_all (&set);
  choose (&ex, 0, -1, in->size[0], &set);
  *best = ex.best;
  qpin_plan_free (ex.plan);
  return ex.have_best;
}

static void
test_optimal (void)
{
  /* QPIN_OPTIMAL_SEED / QPIN_OPTIMAL_INSTANCES explore beyond the default set */
  const char *seed_env = g_getenv ("QPIN_OPTIMAL_SEED");
  const char *count_env = g_getenv ("QPIN_OPTIMAL_INSTANCES");
  guint32 seed = seed_env ? (guint32) g_ascii_strtoull (seed_env, NULL, 10) : 20261122;
  guint n_instances = count_env ? (guint) g_ascii_strtoull (count_env, NULL, 10) : N_INSTANCES;
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  g_autoptr (GRand) rand2 = g_rand_new_with_seed (seed + 1);
  g_autoptr (GRand) rand3 = g_rand_new_with_seed (seed + 2);
  guint done = 0, attempts = 0, refused = 0;

  while (done < n_instances)
    {
      Instance in = { 0 };
      g_autoptr (QpinPlacer) placer = NULL;
      g_autoptr (GPtrArray) requests
        = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
      g_autoptr (GPtrArray) policies
        = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
      g_autoptr (GError) error = NULL;
      QpinScore engine, best;
      gboolean feasible;

      attempts++;
      g_assert_cmpuint (attempts, <, 100 * n_instances + 100);
      if (!random_instance (rand, rand2, rand3, &in))
        continue;
      for (guint v = 0; v < in.n_vms; v++)
        {
          g_ptr_array_add (requests, request_for (v, in.size[v], in.threads[v]));
          QpinPolicy *policy = qpin_policy_new ();
          policy->smt = in.isolate ? QPIN_SMT_ISOLATE : QPIN_SMT_PREFER;
          policy->numa = in.strict ? QPIN_NUMA_STRICT : QPIN_NUMA_PREFER;
          g_ptr_array_add (policies, policy);
        }
      placer = qpin_placer_new (in.topo, NULL);
      if (g_getenv ("QPIN_TEST_GREEDY"))
        qpin_placer_set_search (placer, 0, 1, 0);
      feasible = exhaustive (&in, &best);
      if (!qpin_placer_place (placer, requests, policies, &error))
        {
          /* only numa=strict may refuse, and only when nothing fits */
          if (feasible)
            g_error ("instance %u (%s): engine failed: %s", done, in.description, error->message);
          g_assert_true (in.strict);
          g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT);
          refused++;
          qpin_topology_free (in.topo);
          g_free (in.description);
          done++;
          continue;
        }
      if (!feasible)
        g_error ("instance %u (%s): engine placed what the exhaustive search cannot", done,
                 in.description);
      qpin_placer_score (placer, &engine);
      if (qpin_score_compare (&engine, &best) != 0)
        {
          g_autofree char *e = qpin_score_to_text (&engine);
          g_autofree char *b = qpin_score_to_text (&best);
          g_autofree char *t = qpin_plan_to_table (qpin_placer_get_plan (placer), in.topo);
          g_autofree char *h = qpin_topology_to_text (in.topo);
          g_test_message ("instance %u (%s)\n%sengine:\n%s%s\noptimum:\n%s", done, in.description,
                          h, t, e, b);
          g_test_fail ();
        }
      g_clear_pointer (&placer, qpin_placer_free);
      qpin_topology_free (in.topo);
      g_free (in.description);
      done++;
    }
  g_test_message ("%u instances compared (%u drawn), %u refused by both under numa=strict", done,
                  attempts, refused);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/placer/optimal", test_optimal);
  return g_test_run ();
}
