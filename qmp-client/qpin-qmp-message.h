/* qpin-qmp-message.h: one QMP message, parsed and classified
 *
 * Pure: a line in, a typed view out.  The message owns its JSON tree;
 * every pointer in it is borrowed from that tree.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
  QPIN_QMP_MESSAGE_GREETING, /* {"QMP": {"version": ..., "capabilities": [...]}} */
  QPIN_QMP_MESSAGE_RETURN,   /* {"return": ANY, "id"?: ANY} */
  QPIN_QMP_MESSAGE_ERROR,    /* {"error": {"class": STR, "desc": STR}, "id"?: ANY} */
  QPIN_QMP_MESSAGE_EVENT,    /* {"event": STR, "data"?: OBJ, "timestamp"?: {...}} */
} QpinQmpMessageKind;

typedef struct {
  QpinQmpMessageKind kind;
  JsonNode *root;

  /* RETURN and ERROR: the echoed id.  has_id: any id was present;
   * id_valid: it was an integer, the only kind qpin sends. */
  gboolean has_id;
  gboolean id_valid;
  gint64 id;

  JsonNode *ret;           /* RETURN */
  const char *error_class; /* ERROR */
  const char *error_desc;  /* ERROR */
  const char *event;       /* EVENT */
  JsonObject *data;        /* EVENT, nullable */
  JsonObject *greeting;    /* GREETING: the "QMP" member */
} QpinQmpMessage;

QpinQmpMessage *qpin_qmp_message_parse (const char *line, gssize len, GError **error);
void qpin_qmp_message_free (QpinQmpMessage *msg);
GError *qpin_qmp_message_to_error (const QpinQmpMessage *msg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinQmpMessage, qpin_qmp_message_free)

G_END_DECLS
