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

/* A message costs what json-glib's tree of it costs, not its bytes: 2 MiB
 * of "{}," made json-glib 1.6.6 build 212 MB (16 MiB: 1.7 GB and 4 s).
 * The largest reply QEMU sends qpin, query-cpus-fast or
 * query-hotpluggable-cpus for 4,096 vCPUs, has at most 14 values and 2
 * containers a vCPU (57,344 and 8,192 in all; a 17 MB tree).  These
 * bounds leave 4x room over that and hold the worst message to ~60 MB. */
#define QPIN_QMP_JSON_MAX_VALUES (256 * 1024)
#define QPIN_QMP_JSON_MAX_CONTAINERS (64 * 1024)

gboolean qpin_qmp_json_check (const char *text, gsize len, GError **error);
JsonNode *qpin_qmp_json_parse (const char *text, gssize len, GError **error);

G_END_DECLS
