/* qpin-diag-capture.h: `qpin topology --capture` also saves what diagnose reads */
#pragma once

#include "qpin-topology.h"

G_BEGIN_DECLS

gint qpin_diag_capture (const char *root, const char *dir, const QpinTopology *topo, double seconds,
                        GError **error);

G_END_DECLS
