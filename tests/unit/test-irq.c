/* test-irq.c: irqs = avoid on a proc/irq tree: masks minus the held CPUs,
 * never empty, a refused write named, everything put back */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "qpin-irq-private.h"
#include "qpin-irq.h"

static char *
make_tree (void)
{
  char *root = g_dir_make_tmp ("qpin-irq-XXXXXX", NULL);
  const struct {
    const char *irq;
    const char *mask;
  } irqs[] = { { "10", "0-3" }, { "11", "1" }, { "12", "1-2" } };

  for (gsize i = 0; i < G_N_ELEMENTS (irqs); i++)
    {
      g_autofree char *dir = g_build_filename (root, "proc", "irq", irqs[i].irq, NULL);
      g_autofree char *file = g_build_filename (dir, "smp_affinity_list", NULL);

      g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
      g_assert_true (g_file_set_contents (file, irqs[i].mask, -1, NULL));
    }
  {
    /* IRQ 13 refuses every write: a sysfs file, read-only even for root,
     * holding "0-N"; IRQ 14 cannot be read: its file is a directory */
    g_autofree char *dir = g_build_filename (root, "proc", "irq", "13", NULL);
    g_autofree char *link = g_build_filename (dir, "smp_affinity_list", NULL);
    g_autofree char *bad = g_build_filename (root, "proc", "irq", "14", "smp_affinity_list", NULL);
    g_autofree char *def = g_build_filename (root, "proc", "irq", "default_smp_affinity", NULL);

    g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
    g_assert_cmpint (symlink ("/sys/devices/system/cpu/possible", link), ==, 0);
    g_assert_cmpint (g_mkdir_with_parents (bad, 0755), ==, 0);
    g_assert_true (g_file_set_contents (def, "f\n", -1, NULL));
  }
  return root;
}

static char *
mask_of (const char *root, const char *name)
{
  g_autofree char *path
    = g_strcmp0 (name, "default") == 0
        ? g_build_filename (root, "proc", "irq", "default_smp_affinity", NULL)
        : g_build_filename (root, "proc", "irq", name, "smp_affinity_list", NULL);
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return g_strstrip (text);
}

/* A plan holding @cpus for one VM */
static QpinPlan *
plan_holding (const char *cpus)
{
  QpinPlan *plan = qpin_plan_new ();
  g_autoptr (QpinPolicy) policy = qpin_policy_new ();
  QpinPlanVm *vm = qpin_plan_vm_new ("a", 1, policy);
  QpinCpuset held;

  g_assert_true (qpin_cpuset_parse (cpus, &held, NULL));
  qpin_cpuset_pack (&vm->held, &held);
  g_ptr_array_add (plan->vms, vm);
  return plan;
}

/* IRQ 13 stands for a read-only file holding "0-N": with N >= 1 it
 * intersects CPU 1 and its write is refused */
static gboolean
possible_has_cpu1 (void)
{
  g_autofree char *possible = NULL;

  g_assert_true (g_file_get_contents ("/sys/devices/system/cpu/possible", &possible, NULL, NULL));
  if (!g_str_equal (g_strstrip (possible), "0"))
    return TRUE;
  g_test_skip ("this host has only CPU 0");
  return FALSE;
}

static void
assert_masks (const char *root, const char *m10, const char *m11, const char *m12, const char *def)
{
  g_autofree char *a = mask_of (root, "10");
  g_autofree char *b = mask_of (root, "11");
  g_autofree char *c = mask_of (root, "12");
  g_autofree char *d = mask_of (root, "default");

  g_assert_cmpstr (a, ==, m10);
  g_assert_cmpstr (b, ==, m11);
  g_assert_cmpstr (c, ==, m12);
  g_assert_cmpstr (d, ==, def);
}

/* CPU 1 held: 0-3 loses it, "1" alone keeps it (no IRQ without a CPU),
 * 1-2 keeps 2, the default mask f becomes d, IRQ 13's refusal is named,
 * IRQ 14 (unreadable) is left alone; CPU 1 released: as before; CPUs 1-2
 * held, then the steering stopped: as before. */
static void
test_avoid_and_restore (void)
{
  g_autofree char *root = make_tree ();
  g_autoptr (QpinPlan) one = plan_holding ("1");
  g_autoptr (QpinPlan) none = qpin_plan_new ();
  g_autoptr (QpinPlan) one_two = plan_holding ("1-2");

  if (!possible_has_cpu1 ())
    return;
  qpin_irq_steer_start (root, NULL);
  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE,
                         "irqs=avoid: keeping device irqs off cpus '1'");
  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE,
                         "irqs=avoid: could not move irq(s) 13 (*): managed or per-cpu, they stay");
  qpin_irq_steer_update (one);
  g_test_assert_expected_messages ();
  assert_masks (root, "0,2-3", "1", "2", "0000000d");

  /* released: the refusal is not said again */
  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE,
                         "irqs=avoid: keeping device irqs off cpus ''");
  qpin_irq_steer_update (none);
  g_test_assert_expected_messages ();
  assert_masks (root, "0-3", "1", "1-2", "0000000f");

  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE,
                         "irqs=avoid: keeping device irqs off cpus '1-2'");
  qpin_irq_steer_update (one_two);
  g_test_assert_expected_messages ();
  assert_masks (root, "0,3", "1", "1-2", "00000009");
  qpin_irq_steer_stop ();
  assert_masks (root, "0-3", "1", "1-2", "0000000f");
}

/* leave (the default): nothing is read or written */
static void
test_leave (void)
{
  g_autofree char *root = make_tree ();
  g_autoptr (QpinPlan) one = plan_holding ("1");
  g_autoptr (QpinConfig) config = qpin_config_new ();

  g_autofree char *control = g_build_filename (root, "control.sock", NULL);

  g_assert_true (qpin_irq_steer_configure (config, FALSE, control));
  qpin_irq_steer_update (one);
  qpin_irq_steer_stop ();
  assert_masks (root, "0-3", "1", "1-2", "f");
}

/* A daemon killed while IRQs avoid CPU 1 leaves the masks changed; the
 * next one reads the originals from the state file, and puts them back
 * when it stops (not the changed masks it found) */
static void
test_crash_restart (void)
{
  g_autofree char *root = make_tree ();
  g_autofree char *state = g_build_filename (root, "irqs-saved", NULL);
  g_autoptr (QpinPlan) one = plan_holding ("1");

  if (!possible_has_cpu1 ())
    return;
  qpin_irq_steer_start (root, state);
  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE, "irqs=avoid: keeping*'1'");
  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE, "irqs=avoid: could not move*");
  qpin_irq_steer_update (one);
  g_test_assert_expected_messages ();
  g_assert_true (g_file_test (state, G_FILE_TEST_IS_REGULAR));
  qpin_irq_steer_abandon (); /* kill -9 */
  assert_masks (root, "0,2-3", "1", "2", "0000000d");

  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_MESSAGE,
                         "irqs=avoid: * irq masks left changed by a previous run*");
  qpin_irq_steer_start (root, state);
  g_test_assert_expected_messages ();
  qpin_irq_steer_stop ();
  assert_masks (root, "0-3", "1", "1-2", "0000000f");
  g_assert_false (g_file_test (state, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/irq/avoid-and-restore", test_avoid_and_restore);
  g_test_add_func ("/irq/leave", test_leave);
  g_test_add_func ("/irq/crash-restart", test_crash_restart);
  return g_test_run ();
}
