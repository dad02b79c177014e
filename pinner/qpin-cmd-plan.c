/* qpin-cmd-plan.c: `qpin plan` places VMs on a topology without touching them */

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "qpin-commands.h"
#include "qpin-map.h"
#include "qpin-placer.h"
#include "qpin-plan-json.h"
#include "qpin-setup.h"
#include "qpin-topology-reader.h"

static int
fail (const char *message)
{
  fprintf (stderr, "%s: %s\n", g_get_prgname (), message);
  return 1;
}

/* Reads --config: a file given explicitly must exist. */
static gboolean
load_config (QpinConfig *config, const char *path, GError **error)
{
  return path == NULL || qpin_config_load_file (config, path, error);
}

/* --map prints the picture instead of the table, --svg writes it too. */
static gboolean
write_map (const QpinPlan *plan, const QpinTopology *topo, const QpinCpuset *reserved,
           gboolean show, const char *svg, GError **error)
{
  g_autoptr (QpinMap) map = qpin_map_new (topo, reserved);

  qpin_map_add_plan (map, plan);
  if (show)
    {
      g_autofree char *text = qpin_map_to_text (map, isatty (STDOUT_FILENO));
      fputs (text, stdout);
    }
  if (svg)
    {
      g_autofree char *doc = qpin_map_to_svg (map);
      return g_file_set_contents (svg, doc, -1, error);
    }
  return TRUE;
}

/**
 * qpin_cmd_plan:
 *
 * `qpin plan [--topology DIR|live] --vm NAME:VCPUS[:...] ... [--config F]
 * [--policy K=V ...] [--json] [--score] [--map] [--svg FILE]`
 *
 * Returns: 0 when every VM is placed, 1 with the reason when not, 2 on usage errors.
 */
int
qpin_cmd_plan (int argc, char **argv)
{
  g_auto (QpinPlacementOptions) p = { 0 };
  g_auto (GStrv) vms = NULL;
  g_autofree char *svg = NULL;
  gboolean json = FALSE, show_score = FALSE, show_map = FALSE;
  GOptionEntry entries[] = {
    { "vm", 0, 0, G_OPTION_ARG_STRING_ARRAY, &vms, "a VM to place (repeatable)",
      "NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I]" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
    { "score", 0, 0, G_OPTION_ARG_NONE, &show_score, "print the quality score of the plan", NULL },
    { "map", 0, 0, G_OPTION_ARG_NONE, &show_map, "print the plan drawn on the host topology",
      NULL },
    { "svg", 0, 0, G_OPTION_ARG_FILENAME, &svg, "write the placement picture as SVG to FILE",
      "FILE" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (QpinPolicy) defaults = NULL;
  g_autoptr (QpinPlacer) placer = NULL;
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);
  QpinScore score;

  g_option_context_set_summary (context,
                                "Plan the placement of VMs on a host topology and print it.");
  g_option_context_set_main_group (
    context, qpin_setup_placement_group (&p, QPIN_PLACEMENT_CONFIG | QPIN_PLACEMENT_TOPOLOGY));
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (argc > 1)
    {
      fprintf (stderr, "%s: unexpected argument '%s'\n", g_get_prgname (), argv[1]);
      return 2;
    }
  if (vms == NULL)
    {
      fprintf (stderr, "%s: give at least one --vm NAME:VCPUS\n", g_get_prgname ());
      return 2;
    }
  topo = qpin_topology_read (
    p.topology == NULL || g_strcmp0 (p.topology, "live") == 0 ? "/" : p.topology, NULL, &error);
  if (topo == NULL)
    return fail (error->message);
  if (!load_config (config, p.config_path, &error))
    return fail (error->message);
  for (guint i = 0; p.overrides && p.overrides[i]; i++)
    if (!qpin_config_add_override (config, p.overrides[i], &error))
      return fail (error->message);
  if (!qpin_config_check (config, topo, &error))
    return fail (error->message);
  defaults = qpin_config_policy_for (config, NULL, NULL);
  for (guint i = 0; vms[i]; i++)
    {
      g_autofree char *name = NULL;
      QpinGuestShape shape;
      QpinRequest *r;

      if (!qpin_guest_shape_parse (vms[i], &name, &shape, &error))
        return fail (error->message);
      r = qpin_request_new_from_shape (name, &shape, &error);
      if (r == NULL)
        return fail (error->message);
      g_ptr_array_add (requests, r);
      g_ptr_array_add (policies, qpin_config_policy_for (config, name, NULL));
    }
  placer = qpin_placer_new (topo, &defaults->reserved);
  if (!qpin_placer_place (placer, requests, policies, &error))
    return fail (error->message);
  qpin_placer_score (placer, &score);
  if (!write_map (qpin_placer_get_plan (placer), topo, &defaults->reserved, show_map, svg, &error))
    return fail (error->message);
  if (show_map)
    return 0;
  if (json)
    {
      g_autoptr (JsonNode) node
        = qpin_plan_to_json (qpin_placer_get_plan (placer), topo, show_score ? &score : NULL);
      g_autofree char *out = json_to_string (node, TRUE);
      printf ("%s\n", out);
    }
  else
    {
      g_autofree char *table = qpin_plan_to_table (qpin_placer_get_plan (placer), topo);
      fputs (table, stdout);
      if (show_score)
        {
          g_autofree char *text = qpin_score_to_text (&score);
          printf ("\nscore:\n%s", text);
        }
    }
  return 0;
}
