/* qpin-qmp-client.h: an asynchronous QMP client on a GMainContext
 *
 * One object per monitor connection.  It reads QEMU's greeting, negotiates
 * capabilities, sends commands with unique integer ids, matches replies by
 * id (events may arrive first) and delivers events to "event" handlers.
 * When the peer closes, resets, times out the handshake or breaks the
 * protocol, "closed" is emitted once and every pending command fails with
 * the same reason.  All callbacks run on the thread-default main context
 * of the caller that created the client.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "qpin-qmp-error.h"

G_BEGIN_DECLS

#define QPIN_QMP_DEFAULT_TIMEOUT_MS 5000

#define QPIN_TYPE_QMP_CLIENT (qpin_qmp_client_get_type ())
G_DECLARE_FINAL_TYPE (QpinQmpClient, qpin_qmp_client, QPIN, QMP_CLIENT, GObject)

void qpin_qmp_client_connect_async (const char *address, guint timeout_ms,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
QpinQmpClient *qpin_qmp_client_connect_finish (GAsyncResult *result, GError **error);
QpinQmpClient *qpin_qmp_client_connect_sync (const char *address, guint timeout_ms, GError **error);

void qpin_qmp_client_handshake_async (GSocketConnection *connection, const char *label,
                                      guint timeout_ms, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
QpinQmpClient *qpin_qmp_client_handshake_finish (GAsyncResult *result, GError **error);

void qpin_qmp_client_execute_async (QpinQmpClient *client, const char *command,
                                    JsonObject *arguments, guint timeout_ms,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
JsonNode *qpin_qmp_client_execute_finish (QpinQmpClient *client, GAsyncResult *result,
                                          GError **error);
JsonNode *qpin_qmp_client_execute_sync (QpinQmpClient *client, const char *command,
                                        JsonObject *arguments, guint timeout_ms, GError **error);

void qpin_qmp_client_close (QpinQmpClient *client);
gboolean qpin_qmp_client_is_closed (QpinQmpClient *client);
const char *qpin_qmp_client_get_label (QpinQmpClient *client);
GPid qpin_qmp_client_get_peer_pid (QpinQmpClient *client);
GSocket *qpin_qmp_client_get_socket (QpinQmpClient *client);
JsonObject *qpin_qmp_client_get_greeting (QpinQmpClient *client);

G_END_DECLS
