/* qpin-unix-address.h: unix socket addresses that are never cut short */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* the longest path a sockaddr_un holds with its terminating NUL */
#define QPIN_UNIX_PATH_MAX 107

GSocketAddress *qpin_unix_address_new (const char *path, GError **error);

G_END_DECLS
