/* qpin-control-server.h: the daemon's side of the control socket
 *
 * Serves the one-request-per-connection protocol of qpin-control.h
 * without ever blocking the daemon: requests are read and replies
 * written asynchronously, a request line is bounded, and a client that
 * sends no request or does not read its reply in time is dropped.
 */
#pragma once

#include <gio/gio.h>

#include "qpin-daemon.h"
#include "qpin-registry.h"

G_BEGIN_DECLS

/* a request line is at most this long, its newline included */
#define QPIN_CONTROL_MAX_LINE 4096
/* a client must send its request this soon after connecting */
#define QPIN_CONTROL_REQUEST_TIMEOUT_S 5
/* and read all of its reply this soon after it is ready */
#define QPIN_CONTROL_REPLY_TIMEOUT_S 10
/* clients at once; more are refused until one leaves */
#define QPIN_CONTROL_MAX_CLIENTS 64

typedef struct _QpinControlServer QpinControlServer;

QpinControlServer *qpin_control_server_new (QpinDaemon *daemon, QpinRegistry *registry);
void qpin_control_server_listen (QpinControlServer *server, GSocketService *service);
void qpin_control_server_free (QpinControlServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinControlServer, qpin_control_server_free)

G_END_DECLS
