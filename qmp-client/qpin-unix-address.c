/* qpin-unix-address.c: unix socket addresses that are never cut short
 *
 * g_unix_socket_address_new() silently cuts a path that does not fit in
 * sun_path, so a check made on the long name would not hold for the
 * socket actually bound or connected to (possibly someone else's).  Every
 * unix socket address qpin builds from a path goes through here.
 */
#include "qpin-unix-address.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <sys/un.h>

G_STATIC_ASSERT (QPIN_UNIX_PATH_MAX + 1 == sizeof (((struct sockaddr_un *) NULL)->sun_path));

/**
 * qpin_unix_address_new:
 * @path: a socket path
 *
 * Returns: (transfer full): the address of @path; %NULL with
 *   G_IO_ERROR_FILENAME_TOO_LONG when @path is longer than
 *   QPIN_UNIX_PATH_MAX bytes
 */
GSocketAddress *
qpin_unix_address_new (const char *path, GError **error)
{
  gsize len = strlen (path);

  if (len > QPIN_UNIX_PATH_MAX)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                   "socket path '%s' is %" G_GSIZE_FORMAT " bytes long; a unix socket path has "
                   "at most %d",
                   path, len, QPIN_UNIX_PATH_MAX);
      return NULL;
    }
  return g_unix_socket_address_new (path);
}
