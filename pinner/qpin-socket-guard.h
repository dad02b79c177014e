/* qpin-socket-guard.h: the daemon's socket files come back when removed
 *
 * A socket whose file is removed keeps listening on an inode nobody can
 * reach: `qpin status` then finds no daemon and `qpin run` plans alone.
 * The guard watches each socket's directory (and that directory's
 * parent, for the directory itself) and, when a file or the directory
 * is gone, creates the directory again with its first mode and owner and
 * asks the socket's owner to bind it again.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Binds the socket at its path again, replacing the one listening on
 * the removed file. */
typedef gboolean (*QpinSocketGuardBind) (gpointer user_data, GError **error);

typedef struct _QpinSocketGuard QpinSocketGuard;

QpinSocketGuard *qpin_socket_guard_new (void);
void qpin_socket_guard_add (QpinSocketGuard *guard, const char *what, const char *path,
                            QpinSocketGuardBind bind, gpointer user_data);
void qpin_socket_guard_check (QpinSocketGuard *guard);
void qpin_socket_guard_free (QpinSocketGuard *guard);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinSocketGuard, qpin_socket_guard_free)

G_END_DECLS
