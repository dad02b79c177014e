/* qpin-setup.c: load topology and configuration for attach and daemon */
#define G_LOG_DOMAIN "qpin"

#include "qpin-setup.h"
#include "qpin-topology-reader.h"

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
