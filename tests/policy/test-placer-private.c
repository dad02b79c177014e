/* test-placer-private.c: the placer's internal consistency checks
 *
 * The placer re-does work it did a moment before (refilling the domain a
 * candidate found, replaying the plan the search chose) and holds CPUs it
 * checked are free.  A bug there once aborted the daemon (g_assert); now
 * each is refused with QPIN_POLICY_ERROR_INTERNAL and nothing changed.
 * These tests reach each refusal through the private header, by handing
 * the internals a state they would never produce themselves.
 */
#define QPIN_PLACER_ALLOW_PRIVATE
#include "qpin-placer-private.h"

#include "test-helpers.h"

/* A dedicated VM of @n vCPUs that is not placed (owned by the caller). */
static QpinPlanVm *
unplaced_vm (const char *name, guint n)
{
  g_autoptr (QpinPolicy) policy = qpin_policy_new ();
  QpinPlanVm *vm = qpin_plan_vm_new (name, 0, policy);

  for (guint i = 0; i < n; i++)
    {
      QpinPlanThread t = { .spec = qpin_thread_spec_vcpu (i) };
      g_array_append_val (vm->threads, t);
    }
  return vm;
}

/* holding a CPU another VM holds, or one that does not exist, is refused
 * and the ledger keeps its holder (hold() used to g_assert) */
static void
test_hold_refuses (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) p = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPlanVm) b = unplaced_vm ("b", 1);
  g_autofree char *want = NULL;
  QpinCpuset va;
  guint cpu;
  gint slot;

  g_assert_true (place_vms (p, config, "a:2", NULL));
  va = vcpus_of (p, "a");
  cpu = (guint) qpin_cpuset_first (&va);
  want = g_strdup_printf ("vm 'b': the placer tried to hold cpu %u, which vm 'a' holds", cpu);
  slot = qpin_placer_slot_add (p, b);
  g_assert_false (qpin_placer_hold (p, cpu, slot, KIND_EXCLUSIVE, 0, &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_INTERNAL);
  g_assert_cmpstr (error->message, ==, want);
  g_clear_error (&error);
  g_assert_false (qpin_placer_hold (p, G_MAXUINT, slot, KIND_EXCLUSIVE, 0, &error));
  g_assert_cmpstr (error->message, ==,
                   "vm 'b': the placer tried to hold cpu -1, which is not usable");
  g_assert_cmpstr (qpin_placer_holder (p, cpu), ==, "a");
  g_assert_true (qpin_cpuset_packed_is_empty (&b->held));
  qpin_placer_slot_free (p, b);
}

/* a candidate domain that no longer fits when it is taken again: refused,
 * the caller rolls back (place_dedicated used to g_assert the refill) */
static void
test_take_candidate_refuses (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) p = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPlanVm) b = unplaced_vm ("b", 1);
  g_autoptr (GArray) idx = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) groups = NULL;
  g_autoptr (GArray) undo = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) cells = g_array_new (FALSE, FALSE, sizeof (guint));
  gboolean allowed[2] = { TRUE, TRUE };
  QpinCpuset used;
  Candidate c = { .cells = cells };
  guint zero = 0;
  Placing pl;

  /* the host's 32 CPUs all held by a */
  g_assert_true (place_vms (p, config, "a:32", NULL));
  g_array_append_val (idx, zero);
  for (guint i = 0; i < p->cells->len; i++)
    g_array_append_val (cells, i);
  qpin_cpuset_clear_all (&used);
  pl = (Placing){
    .slot = qpin_placer_slot_add (p, b), .allowed = allowed, .prev_nodes = &used, .undo = undo
  };
  qpin_placer_tcpu_reset (p, b);
  groups = qpin_placer_build_groups (p, b, idx, FALSE);
  pl.g = &g_array_index (groups, Group, 0);
  g_assert_false (qpin_placer_take_candidate (p, &pl, &c, &used, &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_INTERNAL);
  g_assert_cmpstr (error->message, ==,
                   "vm 'b': the placer could not take again the domain it chose");
  g_assert_cmpuint (undo->len, ==, 0);
  g_assert_true (qpin_cpuset_is_empty (&used));
  qpin_placer_slot_free (p, b);
}

/* a recipe that no longer fits: the replay unplaces what it placed (b)
 * when c does not fit, and says why (replay used to g_assert) */
static void
test_replay_refuses (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from (NULL);
  g_autoptr (QpinPlacer) p = placer_for (topo, config);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPlanVm) b = unplaced_vm ("b", 1);
  g_autoptr (QpinPlanVm) c = unplaced_vm ("c", 1);
  Job jb = { .vm = b, .n_vcpus = 1, .signature = (char *) "b" };
  Job jc = { .vm = c, .n_vcpus = 1, .signature = (char *) "c" };
  g_autoptr (GPtrArray) jobs = g_ptr_array_new ();
  Recipe r = { .from_search = FALSE, .order = 0 };
  QpinCpuset free_cpus;

  /* 31 of 32 CPUs held: b takes the last, c finds none */
  g_assert_true (place_vms (p, config, "a:31", NULL));
  g_ptr_array_add (jobs, &jb);
  g_ptr_array_add (jobs, &jc);
  g_assert_false (qpin_placer_replay (p, jobs, &r, &error));
  g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_INTERNAL);
  g_assert_cmpstr (error->message, ==,
                   "the placer could not rebuild the plan it chose: vm 'c': needs 1 dedicated "
                   "cpu, 0 free on the host (cpus none)");
  g_assert_cmpuint (qpin_placer_get_plan (p)->vms->len, ==, 1);
  qpin_placer_free_set (p, FALSE, NULL, &free_cpus);
  g_assert_cmpuint (qpin_cpuset_count (&free_cpus), ==, 1);
  g_assert_true (qpin_cpuset_packed_is_empty (&b->held));
}

/* Every thread's CPUs and every VM's memory nodes, as text. */
static char *
plan_text (const QpinPlacer *p)
{
  const QpinPlan *plan = qpin_placer_get_plan (p);
  GString *s = g_string_new (NULL);

  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      QpinCpuset set;
      g_autofree char *mem = NULL;

      qpin_cpuset_unpack (&vm->mem_nodes, &set);
      mem = qpin_cpuset_format (&set);

      g_string_append_printf (s, "%s mem %s:", vm->name, mem);
      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          g_autofree char *cpus = NULL;

          qpin_cpuset_unpack (&t->cpus, &set);
          cpus = qpin_cpuset_format (&set);
          g_string_append_printf (s, " %s%u=%s", qpin_thread_role_to_string (t->spec.role),
                                  t->spec.index, cpus);
        }
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

/* finalize() recomputes only the VMs that changed, and the others only when
 * what they depend on changed: after each of 400 random steps (floating
 * and dedicated VMs come and go, vCPUs are added and removed), the plan
 * equals the one a full recomputation gives. */
static void
test_finalize_incremental (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) dedicated = config_from ("emulator=housekeeping");
  g_autoptr (QpinConfig) shared = config_from ("cpus=shared");
  g_autoptr (QpinPlacer) p = placer_for (topo, dedicated);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  guint next = 0, recomputed = 0;

  for (guint step = 0; step < 400; step++)
    {
      g_autofree char *before = NULL, *after = NULL;
      guint op = g_rand_int_range (rand, 0, 4);
      const char *name
        = names->len ? g_ptr_array_index (names, g_rand_int_range (rand, 0, (gint) names->len))
                     : NULL;

      if (op == 0 || name == NULL)
        {
          g_autofree char *shape = g_strdup_printf ("v%u:%d", next, g_rand_int_range (rand, 1, 3));
          if (place_vms (p, g_rand_boolean (rand) ? shared : dedicated, shape, NULL))
            g_ptr_array_add (names, g_strdup_printf ("v%u", next));
          next++;
        }
      else if (op == 1)
        {
          g_assert_true (qpin_placer_remove_vm (p, name, NULL));
          g_ptr_array_remove (names, (gpointer) name);
        }
      else
        {
          const QpinPlanVm *vm = qpin_plan_find_vm (qpin_placer_get_plan (p), name);
          guint n = 0;
          for (guint i = 0; i < vm->threads->len; i++)
            n += g_array_index (vm->threads, QpinPlanThread, i).spec.role == QPIN_ROLE_VCPU;
          if (op == 2)
            {
              QpinThreadSpec spec = qpin_thread_spec_vcpu (n);
              qpin_placer_add_thread (p, name, &spec, NULL);
            }
          else if (n > 1)
            g_assert_true (qpin_placer_remove_thread (p, name, QPIN_ROLE_VCPU, n - 1, NULL));
        }
      before = plan_text (p);
      qpin_placer_finalize (p, NULL);
      after = plan_text (p);
      g_assert_cmpstr (before, ==, after);
      recomputed += names->len;
    }
  g_assert_cmpuint (recomputed, >, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/placer-private/hold-refuses", test_hold_refuses);
  g_test_add_func ("/placer-private/take-candidate-refuses", test_take_candidate_refuses);
  g_test_add_func ("/placer-private/replay-refuses", test_replay_refuses);
  g_test_add_func ("/placer-private/finalize-incremental", test_finalize_incremental);
  return g_test_run ();
}
