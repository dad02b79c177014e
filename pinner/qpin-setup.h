/* qpin-setup.h: what every placing command reads first: topology and config */
#pragma once

#include <glib.h>

#include "qpin-policy.h"
#include "qpin-registry.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

/* The placement options the placing commands share, parsed by the group
 * qpin_setup_placement_group() makes: one declaration, one help text. */
typedef struct {
  char *config_path; /* --config */
  GStrv overrides;   /* --policy, repeatable */
  char *topology;    /* --topology */
  gint timeout_ms;   /* --timeout: set the default before parsing */
  char *enforce;     /* --enforce */
} QpinPlacementOptions;

typedef enum {
  QPIN_PLACEMENT_CONFIG = 1 << 0,   /* --config and --policy */
  QPIN_PLACEMENT_TOPOLOGY = 1 << 1, /* --topology */
  QPIN_PLACEMENT_TIMEOUT = 1 << 2,  /* --timeout, the QMP timeout */
  QPIN_PLACEMENT_ENFORCE = 1 << 3,  /* --enforce */
} QpinPlacementFlags;

GOptionGroup *qpin_setup_placement_group (QpinPlacementOptions *options, QpinPlacementFlags which);
void qpin_placement_options_clear (QpinPlacementOptions *options);

gboolean qpin_setup_load (const char *topology, const char *config_path,
                          const char *const *overrides, QpinTopology **topo, QpinConfig **config,
                          GError **error);

gboolean qpin_setup_check_topology (const char *topology, gboolean dry_run, GError **error);
gboolean qpin_setup_parse_enforce (const char *text, QpinEnforce *out, GError **error);
void qpin_setup_watch (QpinRegistry *registry, const char *topology);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (QpinPlacementOptions, qpin_placement_options_clear)

G_END_DECLS
