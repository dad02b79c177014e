/* test-golden.c: plans for every fixture x main policy, against checked-in files
 *
 * Each case plans a VM mix on a fixture with a policy and compares the
 * table, the notes and the score (or the error) with
 * tests/policy/golden/FIXTURE--POLICY.txt.  After an intended change,
 * regenerate and review the diff:
 *
 *   QPIN_REGENERATE_GOLDEN=1 meson test -C build golden
 *   git diff tests/policy/golden/
 */
#include <glib.h>
#include <string.h>

#include "test-helpers.h"

static const struct {
  const char *fixture;
  const char *vms;
  const char *small; /* for policies that take more CPUs per vCPU or refuse more */
  const char *extra; /* one VM too many, for overcommit */
} fixtures[] = {
  { "1n-4c8t", "a:2 b:3 c:2:threads=2", "a:2 b:1", "z:4" },
  { "2s-8c-2t-2n", "a:8:threads=2 b:12 c:6 d:4:sockets=2,cores=2,nodes=2",
    "a:4:threads=2 b:6 c:2:sockets=2,cores=1,nodes=2", "z:8" },
  { "epyc-nps4", "a:8 b:12:threads=2 c:6 d:16:sockets=2,cores=4,threads=2,nodes=2 e:3",
    "a:8 b:6:threads=2 c:8:sockets=2,cores=2,threads=2,nodes=2 e:3", "z:24" },
  { "4n-unequal", "a:4 b:3 c:2:sockets=2,cores=1,nodes=2", "a:2 b:2 c:2:sockets=2,cores=1,nodes=2",
    "z:5" },
  { "8n-512", "a:64:threads=2 b:100 c:32:sockets=4,cores=4,threads=2,nodes=4 d:7 e:1",
    "a:64:threads=2 b:60 c:32:sockets=4,cores=4,threads=2,nodes=4 d:7 e:1", "z:400" },
  { "lab-2s2c2t", "a:4:threads=2 b:2 c:1", "a:2:threads=2 b:1", "z:2" },
  { "lab-4n-unequal", "a:3 b:2 c:1", "a:2 b:1", "z:2" },
  { "lab-1n4c", "a:2 b:1", "a:2 b:1", "z:2" },
  /* issue #16: kinds (P-cores with SMT, E-cores in two clusters) and an ARM
   * host with clusters of 4 cores */
  { "hybrid-13th-gen", "a:8:threads=2 b:6 c:4", "a:4:threads=2 b:3 c:2", "z:4" },
  { "arm-16c-clusters", "a:3 b:4 c:2 d:5", "a:2 b:3 c:2", "z:4" },
};

static const struct {
  const char *name;
  const char *policy;
  gboolean small;
  gboolean extra;
} policies[] = {
  { "default", "", FALSE, FALSE },
  { "smt-isolate", "smt=isolate", TRUE, FALSE },
  { "numa-strict", "numa=strict", TRUE, FALSE },
  { "numa-spread", "numa=spread", FALSE, FALSE },
  { "emulator-isolate", "emulator=isolate iothreads=isolate", TRUE, FALSE },
  { "housekeeping", "emulator=housekeeping reserved=0", TRUE, FALSE },
  { "shared", "cpus=shared", FALSE, FALSE },
  { "overcommit-share", "overcommit=share", FALSE, TRUE },
  { "overcommit-refuse", "", FALSE, TRUE },
};

static char *
render (const char *fixture, const char *policy, const char *vms)
{
  g_autoptr (QpinTopology) topo = load_fixture (fixture);
  g_autoptr (QpinConfig) config = config_from (policy);
  g_autoptr (QpinPlacer) placer = NULL;
  g_autoptr (GError) error = NULL;
  GString *out = g_string_new (NULL);

  g_string_append_printf (out, "# fixture: %s\n# policy: %s\n# vms: %s\n", fixture, policy, vms);
  if (!qpin_config_check (config, topo, &error))
    {
      g_string_append_printf (out, "error: %s\n", error->message);
      return g_string_free (out, FALSE);
    }
  placer = placer_for (topo, config);
  if (!place_vms (placer, config, vms, &error))
    g_string_append_printf (out, "error: %s\n", error->message);
  else
    {
      g_autofree char *table = qpin_plan_to_table (qpin_placer_get_plan (placer), topo);
      g_autofree char *score = NULL;
      QpinScore s;

      assert_exclusive (placer); /* every golden plan obeys the exclusivity rule */
      qpin_placer_score (placer, &s);
      score = qpin_score_to_text (&s);
      g_string_append_printf (out, "%s\nscore:\n%s", table, score);
    }
  return g_string_free (out, FALSE);
}

static void
test_case (gconstpointer data)
{
  guint f = GPOINTER_TO_UINT (data) / G_N_ELEMENTS (policies);
  guint p = GPOINTER_TO_UINT (data) % G_N_ELEMENTS (policies);
  const char *mix = policies[p].small ? fixtures[f].small : fixtures[f].vms;
  g_autofree char *vms
    = policies[p].extra ? g_strdup_printf ("%s %s", mix, fixtures[f].extra) : g_strdup (mix);
  g_autofree char *got = render (fixtures[f].fixture, policies[p].policy, vms);
  g_autofree char *name = g_strdup_printf ("%s--%s.txt", fixtures[f].fixture, policies[p].name);
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "policy", "golden", name, NULL);
  g_autofree char *want = NULL;
  g_autoptr (GError) error = NULL;

  if (g_getenv ("QPIN_REGENERATE_GOLDEN"))
    {
      g_assert_true (g_file_set_contents (path, got, -1, &error));
      g_test_message ("wrote %s", path);
      return;
    }
  if (!g_file_get_contents (path, &want, NULL, &error))
    {
      g_test_message ("%s; regenerate with QPIN_REGENERATE_GOLDEN=1 meson test -C build golden",
                      error->message);
      g_test_fail ();
      return;
    }
  if (strcmp (got, want) != 0)
    {
      g_test_message ("plan differs from %s:\n--- got ---\n%s", path, got);
      g_test_fail ();
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++)
    for (guint p = 0; p < G_N_ELEMENTS (policies); p++)
      {
        g_autofree char *path
          = g_strdup_printf ("/golden/%s/%s", fixtures[f].fixture, policies[p].name);
        g_test_add_data_func (path, GUINT_TO_POINTER (f * G_N_ELEMENTS (policies) + p), test_case);
      }
  return g_test_run ();
}
