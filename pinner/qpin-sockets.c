/* qpin-sockets.c: unix socket files the daemon binds and connects to
 *
 * A path is looked up again by every connect(); a watched directory that
 * another user can write to could swap a checked socket for a symbolic
 * link between the check and the connect.  So the daemon connects to the
 * very inode it checked, through its O_PATH descriptor.
 */

#include "qpin-sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qpin-unix-address.h"

static gboolean
set_errno_error (GError **error, int err, const char *what, const char *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), "%s '%s': %s", what, path,
               g_strerror (err));
  return FALSE;
}

/**
 * qpin_sockets_make_room:
 * @path: where a unix socket server is about to bind
 *
 * Creates the parent directories and removes a stale socket file, but
 * never a live one (another daemon) or anything that is not a socket.
 */
gboolean
qpin_sockets_make_room (const char *path, GError **error)
{
  g_autoptr (GSocketAddress) addr = qpin_unix_address_new (path, error);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GSocketConnection) probe = NULL;
  GStatBuf st;

  if (addr == NULL)
    return FALSE;
  if (g_mkdir_with_parents (dir, 0755) != 0)
    return set_errno_error (error, errno, "cannot create", dir);
  if (g_lstat (path, &st) != 0)
    return TRUE;
  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "'%s' exists and is not a socket", path);
      return FALSE;
    }
  probe = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, NULL);
  if (probe != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   "something already listens on '%s' (another qpin daemon?)", path);
      return FALSE;
    }
  g_unlink (path);
  return TRUE;
}

/**
 * qpin_sockets_bind:
 * @path: where to listen; a stale socket there is replaced
 *
 * Returns: (transfer full): a non-blocking listening socket, its file
 *   owner only from the first moment (not chmod after bind)
 */
GSocket *
qpin_sockets_bind (const char *path, GError **error)
{
  g_autoptr (GSocketAddress) addr = qpin_unix_address_new (path, error);
  g_autoptr (GSocket) socket = NULL;
  mode_t old_mask;
  gboolean ok;

  if (addr == NULL || !qpin_sockets_make_room (path, error))
    return NULL;
  socket
    = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;
  old_mask = umask (0177);
  ok = g_socket_bind (socket, addr, FALSE, error);
  umask (old_mask);
  g_socket_set_listen_backlog (socket, 64);
  if (!ok || !g_socket_listen (socket, error))
    {
      g_prefix_error (error, "cannot listen on '%s': ", path);
      return NULL;
    }
  g_socket_set_blocking (socket, FALSE);
  return g_steal_pointer (&socket);
}

/* Connects a new socket to the socket inode behind @pathfd.  The kernel
 * resolves /proc/self/fd/N to the file the descriptor holds, not to a
 * name looked up again, so nothing can be swapped in between; and that
 * name is short whatever the real path's length. */
static int
connect_fd (int pathfd, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int err;

  if (fd < 0)
    {
      err = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), "cannot create a socket: %s",
                   g_strerror (err));
      return -1;
    }
  snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d", pathfd);
  /* a unix stream connect never goes on in the background: it is queued
   * at once, refused, or EAGAIN when the server's backlog is full */
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0)
    return fd;
  err = errno == EAGAIN ? ECONNREFUSED : errno;
  close (fd);
  g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (err), g_strerror (err));
  return -1;
}

/**
 * qpin_sockets_connect_at:
 * @dirfd: an open directory
 * @name: a file name in it
 *
 * Connects to the unix socket @name in @dirfd, never through a symbolic
 * link: the file is opened O_PATH|O_NOFOLLOW, checked to be a socket, and
 * the connect goes to that descriptor (/proc/self/fd/N), so the checked
 * file is the one connected to even if @name is replaced meanwhile.
 *
 * Returns: (transfer full): the connection; %NULL with
 *   G_IO_ERROR_CONNECTION_REFUSED while nobody accepts on it (yet),
 *   G_IO_ERROR_TOO_MANY_LINKS for a symbolic link, G_IO_ERROR_NOT_SUPPORTED
 *   for anything else that is not a socket
 */
GSocketConnection *
qpin_sockets_connect_at (int dirfd, const char *name, GError **error)
{
  int pathfd = openat (dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  g_autoptr (GSocket) socket = NULL;
  struct stat st;
  int fd;

  if (pathfd < 0 || fstat (pathfd, &st) != 0)
    {
      set_errno_error (error, errno, "cannot open", name);
      if (pathfd >= 0)
        close (pathfd);
      return NULL;
    }
  if (!S_ISSOCK (st.st_mode))
    {
      gboolean link = S_ISLNK (st.st_mode);
      close (pathfd);
      g_set_error_literal (error, G_IO_ERROR,
                           link ? G_IO_ERROR_TOO_MANY_LINKS : G_IO_ERROR_NOT_SUPPORTED,
                           link ? "is a symbolic link" : "is not a socket");
      return NULL;
    }
  fd = connect_fd (pathfd, error);
  close (pathfd);
  if (fd < 0)
    return NULL;
  socket = g_socket_new_from_fd (fd, error);
  if (socket == NULL)
    {
      close (fd);
      return NULL;
    }
  return g_socket_connection_factory_create_connection (socket);
}

/**
 * qpin_sockets_check_dir:
 * @path: the watched directory
 *
 * Refuses a directory that a group or other users may write to without
 * the sticky bit: anyone could put, replace or rename sockets there and
 * so make the daemon pin (and reserve CPUs for) a QEMU of their choice.
 */
gboolean
qpin_sockets_check_dir (const char *path, GError **error)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    return set_errno_error (error, errno, "cannot watch", path);
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY, "'%s' is not a directory", path);
      return FALSE;
    }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "watch directory '%s' (mode %04o) is writable by %s and not sticky: "
                   "anyone there could swap sockets; use mode 0755, or add the sticky bit",
                   path, (unsigned) (st.st_mode & 07777),
                   (st.st_mode & S_IWOTH) ? "others" : "its group");
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_sockets_raise_nofile:
 *
 * Raises the soft limit of open files to the hard limit: every VM, and
 * every connection not yet through its QMP handshake, holds one.
 *
 * Returns: the soft limit now in force
 */
guint64
qpin_sockets_raise_nofile (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur < rl.rlim_max)
    {
      rlim_t old = rl.rlim_cur;
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = old;
    }
  g_debug ("open files limit: %" G_GUINT64_FORMAT, (guint64) rl.rlim_cur);
  return rl.rlim_cur;
}
