/* qpin-control.h: the daemon's control socket protocol
 *
 * One request per connection: the client sends one JSON object on one
 * line, {"command": "status"} or {"command": "reload"}, and reads one
 * JSON object back: the answer, or {"error": "..."}.  {"command": "wait"}
 * (qpin-control-wait.h) is answered only when its VM is placed.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define QPIN_CONTROL_DEFAULT_PATH "/run/qpin/control.sock"
#define QPIN_LISTEN_DEFAULT_PATH "/run/qpin/qmp.sock"

JsonNode *qpin_control_request (const char *path, const char *command, JsonObject *arguments,
                                GError **error);
void qpin_control_request_async (const char *path, const char *command, JsonObject *arguments,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);
JsonNode *qpin_control_request_finish (GAsyncResult *result, GError **error);

G_END_DECLS
