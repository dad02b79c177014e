/* qpin-setup.h: what every placing command reads first: topology and config */
#pragma once

#include <glib.h>

#include "qpin-policy.h"
#include "qpin-registry.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

gboolean qpin_setup_load (const char *topology, const char *config_path,
                          const char *const *overrides, QpinTopology **topo, QpinConfig **config,
                          GError **error);

gboolean qpin_setup_check_topology (const char *topology, gboolean dry_run, GError **error);
gboolean qpin_setup_parse_enforce (const char *text, QpinEnforce *out, GError **error);
void qpin_setup_watch (QpinRegistry *registry, const char *topology);

G_END_DECLS
