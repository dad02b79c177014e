/* qpin-setup.c: what the placing commands share: their options, the
 * topology and configuration they load, the host watches they start */

#include "qpin-setup.h"
#include "qpin-topology-reader.h"

/**
 * qpin_setup_placement_group:
 * @options: where the values go; lives as long as the option context
 * @which: the options this command takes
 *
 * The one declaration of --config, --policy, --topology, --timeout and
 * --enforce for attach, daemon, run and plan.  A command makes it its
 * main group (g_option_context_set_main_group()) and adds its own
 * entries after, so they all show in --help.
 *
 * Returns: (transfer full): the option group
 */
GOptionGroup *
qpin_setup_placement_group (QpinPlacementOptions *options, QpinPlacementFlags which)
{
  const struct {
    QpinPlacementFlags flag;
    GOptionEntry entry;
  } all[] = {
    { QPIN_PLACEMENT_CONFIG,
      { "config", 0, 0, G_OPTION_ARG_FILENAME, &options->config_path,
        "Policy file ([defaults], [vm:NAME])", "FILE" } },
    { QPIN_PLACEMENT_CONFIG,
      { "policy", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options->overrides,
        "Override a policy key (repeatable)", "KEY=VALUE" } },
    { QPIN_PLACEMENT_TOPOLOGY,
      { "topology", 0, 0, G_OPTION_ARG_FILENAME, &options->topology,
        "Plan on a captured topology (qpin topology --capture) or 'live', this host (default)",
        "DIR|live" } },
    { QPIN_PLACEMENT_TIMEOUT,
      { "timeout", 0, 0, G_OPTION_ARG_INT, &options->timeout_ms, "QMP timeout (5000)", "MS" } },
    { QPIN_PLACEMENT_ENFORCE,
      { "enforce", 0, 0, G_OPTION_ARG_STRING, &options->enforce,
        "On drift: repair, report or off (repair)", "MODE" } },
  };
  GOptionGroup *group = g_option_group_new ("placement", "Placement options",
                                            "Show the placement options", NULL, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (all); i++)
    if (which & all[i].flag)
      {
        GOptionEntry one[] = { all[i].entry, G_OPTION_ENTRY_NULL };
        g_option_group_add_entries (group, one);
      }
  return group;
}

/**
 * qpin_placement_options_clear:
 *
 * Frees what parsing put in @options (not @options).
 */
void
qpin_placement_options_clear (QpinPlacementOptions *options)
{
  g_clear_pointer (&options->config_path, g_free);
  g_clear_pointer (&options->overrides, g_strfreev);
  g_clear_pointer (&options->topology, g_free);
  g_clear_pointer (&options->enforce, g_free);
}

/**
 * qpin_setup_load:
 * @topology: (nullable): a sysfs-shaped directory, or %NULL / "live" for this host
 * @config_path: (nullable): a config file; one named explicitly must exist
 * @overrides: (nullable) (array zero-terminated=1): KEY=VALUE policy overrides
 * @topo: (out) (transfer full): the host topology
 * @config: (out) (transfer full): the configuration, checked against @topo
 */
gboolean
qpin_setup_load (const char *topology, const char *config_path, const char *const *overrides,
                 QpinTopology **topo, QpinConfig **config, GError **error)
{
  g_autoptr (QpinTopology) t = NULL;
  g_autoptr (QpinConfig) c = qpin_config_new ();

  t = qpin_topology_read (topology == NULL || g_str_equal (topology, "live") ? "/" : topology, NULL,
                          error);
  if (t == NULL)
    return FALSE;
  if (config_path != NULL && !qpin_config_load_file (c, config_path, error))
    return FALSE;
  for (guint i = 0; overrides && overrides[i]; i++)
    if (!qpin_config_add_override (c, overrides[i], error))
      return FALSE;
  if (!qpin_config_check (c, t, error))
    return FALSE;
  *topo = g_steal_pointer (&t);
  *config = g_steal_pointer (&c);
  return TRUE;
}

/**
 * qpin_setup_check_topology:
 * @topology: (nullable): the --topology given, %NULL or "live" for this host
 *
 * A captured topology describes another machine: plan on it, never pin
 * this host's threads by it.
 *
 * Returns: %FALSE, with the reason in @error, for a captured topology
 *   without a dry run
 */
gboolean
qpin_setup_check_topology (const char *topology, gboolean dry_run, GError **error)
{
  if (topology == NULL || g_str_equal (topology, "live") || dry_run)
    return TRUE;
  g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
               "--topology '%s' is not this host: use it with --dry-run", topology);
  return FALSE;
}

/**
 * qpin_setup_parse_enforce:
 * @text: (nullable): "repair" (the default when %NULL), "report" or "off"
 */
gboolean
qpin_setup_parse_enforce (const char *text, QpinEnforce *out, GError **error)
{
  static const char *const names[] = {
    [QPIN_ENFORCE_REPAIR] = "repair", [QPIN_ENFORCE_REPORT] = "report", [QPIN_ENFORCE_OFF] = "off"
  };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_strcmp0 (text ? text : "repair", names[i]) == 0)
      {
        *out = (QpinEnforce) i;
        return TRUE;
      }
  g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
               "invalid --enforce '%s': accepted: repair, report, off", text);
  return FALSE;
}

/**
 * qpin_setup_watch:
 * @topology: the --topology given, %NULL or "live" for this host
 *
 * Follows thread creation in the VMs and, on the live host, host CPUs
 * going offline and online.  What the kernel does not allow (not root) is
 * logged once; the reconcile timer then does the work.
 */
void
qpin_setup_watch (QpinRegistry *registry, const char *topology)
{
  g_autoptr (GError) error = NULL;

  if ((topology == NULL || g_str_equal (topology, "live"))
      && !qpin_registry_watch_host (registry, &error))
    {
      g_info ("%s: host CPU changes are not followed", error->message);
      g_clear_error (&error);
    }
  if (!qpin_registry_watch_threads (registry, &error))
    g_info ("%s: new vCPUs are found every --interval only", error->message);
}
