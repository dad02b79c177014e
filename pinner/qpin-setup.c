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
  g_autofree char *data = NULL;

  t = qpin_topology_read (topology == NULL || g_str_equal (topology, "live") ? "/" : topology, NULL,
                          error);
  if (t == NULL)
    return FALSE;
  if (config_path != NULL
      && (!g_file_get_contents (config_path, &data, NULL, error)
          || !qpin_config_load_data (c, data, config_path, error)))
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
