/* qpin-qmp-json.h: parse a peer's JSON, strictly and depth-bounded
 *
 * Every byte a peer sends (a QMP monitor, a control socket client or
 * daemon) goes through here before json-glib sees it.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* json-glib recurses once per level; QEMU itself stops at 1024 levels.
 * Nothing QMP or the control socket sends is deeper than a handful. */
#define QPIN_QMP_JSON_MAX_DEPTH 64

gboolean qpin_qmp_json_check (const char *text, gsize len, GError **error);
JsonNode *qpin_qmp_json_parse (const char *text, gssize len, GError **error);

G_END_DECLS
