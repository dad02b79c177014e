/* qpin-listener.h: an accept loop that pauses instead of spinning */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Takes a new connection; returns FALSE to stop accepting until
 * qpin_listener_resume(). */
typedef gboolean (*QpinListenerFunc) (GSocketConnection *connection, gpointer user_data);

typedef struct _QpinListener QpinListener;

QpinListener *qpin_listener_new (const char *path, QpinListenerFunc func, gpointer user_data,
                                 GError **error);
void qpin_listener_resume (QpinListener *listener);
void qpin_listener_free (QpinListener *listener);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinListener, qpin_listener_free)

G_END_DECLS
