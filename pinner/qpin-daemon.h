/* qpin-daemon.h: one process for many QEMUs
 *
 * Feeds a registry from two sources: a listening socket that QEMUs
 * connect to (-chardev socket,reconnect=1 -mon mode=control), and a
 * watched directory of QMP server sockets.  Serves the control socket.
 */
#pragma once

#include <glib.h>

#include "qpin-registry.h"

G_BEGIN_DECLS

typedef struct {
  const char *listen_path;  /* NULL: no listening socket */
  const char *watch_dir;    /* NULL: no watched directory */
  const char *control_path; /* NULL: no control socket */
  const char *config_path;  /* re-read on reload */
  const char *const *overrides;
  guint grace_ms; /* hold placement this long at start */
  guint timeout_ms;
  guint max_pending; /* connections in their QMP handshake at once; 0: the default */
} QpinDaemonOptions;

#define QPIN_DAEMON_MAX_PENDING 64

typedef struct _QpinDaemon QpinDaemon;

QpinDaemon *qpin_daemon_new (QpinRegistry *registry, const QpinDaemonOptions *options,
                             GError **error);
void qpin_daemon_free (QpinDaemon *daemon);
gboolean qpin_daemon_reload (QpinDaemon *daemon, GError **error);
void qpin_daemon_rescan (QpinDaemon *daemon);
void qpin_daemon_check_sockets (QpinDaemon *daemon);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinDaemon, qpin_daemon_free)

G_END_DECLS
