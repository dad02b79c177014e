/* bench-config.c: config load time against the number of [vm:NAME] groups
 *
 * Prints the time to load and check a config of 10k, 40k and 80k groups
 * (each with two keys) and the ratio 40k/10k: about 4 when loading is
 * linear, about 16 when it is quadratic.  Asserts nothing about time.
 *
 *   meson test -C build bench-config --verbose
 */
#include <glib.h>
#include <time.h>

#include "qpin-policy.h"
#include "qpin-topology-reader.h"

static double
cpu_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static char *
make_config (guint n_groups)
{
  GString *s = g_string_new ("[defaults]\nnuma = prefer\n");

  for (guint i = 0; i < n_groups; i++)
    g_string_append_printf (s, "[vm:vm%u]\ncpus = shared\nsmt = isolate\n", i);
  return g_string_free (s, FALSE);
}

/* Loads and checks, as qpin_setup_load() does; returns CPU milliseconds. */
static double
load_ms (const QpinTopology *topo, guint n_groups)
{
  g_autofree char *text = make_config (n_groups);
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;
  double start = cpu_ms ();

  g_assert_true (qpin_config_load_data (config, text, "bench.conf", &error));
  g_assert_true (qpin_config_check (config, topo, &error));
  g_assert_no_error (error);
  return cpu_ms () - start;
}

static void
test_load (void)
{
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "fixtures", "1n-4c8t", NULL);
  g_autoptr (QpinTopology) topo = qpin_topology_read (root, NULL, NULL);
  static const guint sizes[] = { 10000, 40000, 80000 };
  double ms[G_N_ELEMENTS (sizes)];

  g_assert_nonnull (topo);
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      ms[i] = load_ms (topo, sizes[i]);
      g_test_message ("%u groups: %.0f ms", sizes[i], ms[i]);
    }
  g_test_message ("ratio 40k/10k: %.1f (4 is linear, 16 quadratic)", ms[1] / ms[0]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bench/config-load", test_load);
  return g_test_run ();
}
