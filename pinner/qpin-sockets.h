/* qpin-sockets.h: unix socket files the daemon binds and connects to */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean qpin_sockets_make_room (const char *path, GError **error);
GSocket *qpin_sockets_bind (const char *path, GError **error);
GSocketConnection *qpin_sockets_connect_at (int dirfd, const char *name, GError **error);
gboolean qpin_sockets_check_dir (const char *path, GError **error);
guint64 qpin_sockets_raise_nofile (void);

G_END_DECLS
