/* qpin-control-wait.h: the control request that answers when a VM is placed
 *
 * {"command":"wait","pid":N,"timeout_ms":T} is answered once the VM of
 * QEMU pid N has been discovered and placed ({"vm": {...}} in the shared
 * shape, its "state" pinned, degraded, failed or planned), or with
 * {"vm": null, "reason": "..."} when it goes first or after T ms.  The answer comes from
 * the registry's settled and gone hooks: nothing polls.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-registry.h"

G_BEGIN_DECLS

/* a wait lasts at most this long */
#define QPIN_CONTROL_WAIT_MAX_MS 600000
/* waits at once (each is a connected client, outside the control
 * server's QPIN_CONTROL_MAX_CLIENTS: it has asked, and its time is bounded) */
#define QPIN_CONTROL_WAIT_MAX 1024

typedef struct _QpinControlWaits QpinControlWaits;

/* @reply: (transfer none): the answer; called once per wait */
typedef void (*QpinControlWaitDone) (JsonNode *reply, gpointer user_data);

QpinControlWaits *qpin_control_waits_new (QpinRegistry *registry);
JsonNode *qpin_control_waits_add (QpinControlWaits *waits, JsonObject *request,
                                  QpinControlWaitDone done, gpointer user_data,
                                  GDestroyNotify destroy);
void qpin_control_waits_forget (QpinControlWaits *waits, gpointer user_data);
guint qpin_control_waits_pending (QpinControlWaits *waits);
guint qpin_control_waits_count (QpinControlWaits *waits);
void qpin_control_waits_free (QpinControlWaits *waits);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinControlWaits, qpin_control_waits_free)

G_END_DECLS
