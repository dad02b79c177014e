/* test-map.c: the placement picture (plan --map, --svg, status --map)
 * against the plan it draws */
#include <glib.h>
#include <string.h>

#include "../policy/test-helpers.h"
#include "qpin-map.h"

/* The value of @attr in the <g data-cpu="@cpu"> element of @svg, or NULL */
static char *
svg_attr (const char *svg, guint cpu, const char *attr)
{
  g_autofree char *pattern = g_strdup_printf ("<g class=\"cpu\" data-cpu=\"%u\"[^>]*>", cpu);
  g_autoptr (GRegex) re = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) m = NULL;
  g_autofree char *element = NULL;
  g_autofree char *attr_pattern = g_strdup_printf (" %s=\"([^\"]*)\"", attr);
  g_autoptr (GRegex) attr_re = g_regex_new (attr_pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) am = NULL;

  if (!g_regex_match (re, svg, 0, &m))
    return NULL;
  element = g_match_info_fetch (m, 0);
  g_assert_false (g_match_info_next (m, NULL)); /* one element per CPU */
  if (!g_regex_match (attr_re, element, 0, &am))
    return NULL;
  return g_match_info_fetch (am, 1);
}

/* Every vCPU of the plan appears on its CPU, in text and SVG; held idle
 * siblings (smt=isolate) and reserved CPUs are marked, the rest free. */
static void
test_plan_map (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("2s-8c-2t-2n");
  g_autoptr (QpinConfig) config = config_from ("reserved=0,16");
  g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (config, NULL, NULL);
  g_autoptr (QpinPlacer) placer = qpin_placer_new (topo, &defaults->reserved);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinMap) map = NULL;
  g_autofree char *text = NULL;
  g_autofree char *svg = NULL;
  const QpinPlan *plan;
  guint labelled = 0;

  g_assert_true (place_vms (placer, config, "web:4:threads=2 db:3", &error));
  g_assert_no_error (error);
  plan = qpin_placer_get_plan (placer);
  map = qpin_map_new (topo, &defaults->reserved);
  qpin_map_add_plan (map, plan);
  text = qpin_map_to_text (map, FALSE);
  svg = qpin_map_to_svg (map);
  g_test_message ("%s", text);
  g_assert_true (
    g_str_has_prefix (text, "node 0 (cpus 0-7,16-23)\n  llc 0 (L3, cpus 0-7,16-23)\n"));
  g_assert_nonnull (strstr (text, "\nnode 1 (cpus 8-15,24-31)\n"));
  g_assert_null (strstr (text, "\033[")); /* plain when not on a terminal */
  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          guint cpu = (guint) qpin_cpuset_packed_first (&t->cpus);
          g_autofree char *label = NULL;
          g_autofree char *data_vm = svg_attr (svg, cpu, "data-vm");
          g_autofree char *data_vcpu = svg_attr (svg, cpu, "data-vcpu");
          g_autofree char *index = g_strdup_printf ("%u", t->spec.index);

          if (t->spec.role != QPIN_ROLE_VCPU)
            continue;
          g_assert_cmpuint (qpin_cpuset_packed_count (&t->cpus), ==, 1);
          label = g_strdup_printf ("cpu %-4u%s/vcpu%u", cpu, vm->name, t->spec.index);
          g_assert_nonnull (strstr (text, label));
          g_assert_cmpstr (data_vm, ==, vm->name);
          g_assert_cmpstr (data_vcpu, ==, index);
          labelled++;
        }
    }
  g_assert_cmpuint (labelled, ==, 7);
  /* CPU 0 is reserved and nobody's: no data-vm; so is every CPU of node 1 */
  g_assert_null (svg_attr (svg, 0, "data-vm"));
  g_assert_nonnull (strstr (text, "cpu 0   reserved"));
  for (guint cpu = 0; cpu < 32; cpu++)
    {
      g_autofree char *element = g_strdup_printf ("<g class=\"cpu\" data-cpu=\"%u\"", cpu);
      g_assert_nonnull (strstr (svg, element));
    }
}

/* The daemon's status JSON draws the same way: a vCPU planned on one CPU
 * labels it, a vCPU planned on several marks a pool; offline CPUs listed */
static void
test_status_map (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  g_autoptr (QpinMap) map = qpin_map_new (topo, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) status = json_from_string (
    "{\"vms\":[{\"key\":\"a\",\"pid\":1,\"threads\":["
    "{\"role\":\"vcpu\",\"index\":0,\"tid\":2,\"cpus\":\"1\"},"
    "{\"role\":\"emulator\",\"index\":0,\"tid\":1,\"cpus\":\"1\"}]},"
    "{\"key\":\"b\",\"pid\":5,\"threads\":[{\"role\":\"vcpu\",\"index\":0,\"tid\":6,"
    "\"cpus\":\"2-3\"}]}],\"reserved\":\"0\"}",
    NULL);
  g_autofree char *text = NULL;
  g_autofree char *svg = NULL;
  g_autofree char *vm3 = NULL;

  g_assert_true (qpin_map_add_status (map, status, &error));
  g_assert_no_error (error);
  text = qpin_map_to_text (map, TRUE);
  svg = qpin_map_to_svg (map);
  g_test_message ("%s", text);
  /* the emulator shares vCPU 0's one CPU: no "!" (two holders) */
  g_assert_nonnull (strstr (text, "cpu 1   \033[31ma/vcpu0        "));
  g_assert_nonnull (strstr (text, "cpu 2   \033[32mb pool"));
  /* the daemon's reserved CPUs, from "reserved" beside "vms" */
  g_assert_nonnull (strstr (text, "cpu 0   reserved"));
  vm3 = svg_attr (svg, 3, "data-vm");
  g_assert_cmpstr (vm3, ==, "b");
  g_assert_null (svg_attr (svg, 3, "data-vcpu"));
}

/* A reply without "vms", or a thread without a role, is an error, not a crash */
static void
test_status_bad (void)
{
  g_autoptr (QpinTopology) topo = load_fixture ("1n-4c8t");
  const char *bad[] = {
    "[]",
    "{\"vms\":[{\"key\":\"a\",\"threads\":[{\"index\":0,\"cpus\":\"1\"}]}]}",
    "{\"vms\":[{\"key\":\"a\",\"threads\":[{\"role\":\"vcpu\",\"index\":0,\"cpus\":\"x\"}]}]}",
    "{\"vms\":[],\"reserved\":\"0-\"}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (QpinMap) map = qpin_map_new (topo, NULL);
      g_autoptr (JsonNode) node = json_from_string (bad[i], NULL);
      g_autoptr (GError) error = NULL;

      g_assert_false (qpin_map_add_status (map, node, &error));
      g_assert_nonnull (error);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/map/plan", test_plan_map);
  g_test_add_func ("/map/status", test_status_map);
  g_test_add_func ("/map/status-bad", test_status_bad);
  return g_test_run ();
}
