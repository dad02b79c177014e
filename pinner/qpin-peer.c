/* qpin-peer.c: see qpin-peer.h */

#include "qpin-peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qpin-policy.h"
#include "qpin-proc.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Real and effective ids ("Uid:\t0\t0\t0\t0") and the groups list, from
 * /proc/PID/status; each value checked. */
static gboolean
parse_ids (const char *line, guint n_min, GArray *out)
{
  g_auto (GStrv) words = g_strsplit_set (line, " \t", -1);

  for (guint i = 0; words[i]; i++)
    {
      guint64 v;
      guint32 id;

      if (*words[i] == '\0')
        continue;
      if (!g_ascii_string_to_unsigned (words[i], 10, 0, G_MAXUINT32 - 1, &v, NULL))
        return FALSE;
      id = (guint32) v;
      g_array_append_val (out, id);
    }
  return out->len >= n_min;
}

static gboolean
read_status (QpinPeer *peer, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", peer->pid);
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GArray) uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) gids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) groups = g_array_new (FALSE, FALSE, sizeof (guint32));
  gboolean seen_groups = FALSE;

  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      gboolean ok = TRUE;

      if (g_str_has_prefix (lines[i], "Uid:"))
        ok = parse_ids (lines[i] + 4, 2, uids);
      else if (g_str_has_prefix (lines[i], "Gid:"))
        ok = parse_ids (lines[i] + 4, 2, gids);
      else if (g_str_has_prefix (lines[i], "Groups:"))
        {
          seen_groups = TRUE;
          ok = parse_ids (lines[i] + 7, 0, groups);
        }
      if (!ok)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: bad line '%s'", path,
                       lines[i]);
          return FALSE;
        }
    }
  if (uids->len < 2 || gids->len < 2 || !seen_groups)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: no Uid, Gid or Groups line",
                   path);
      return FALSE;
    }
  peer->uid = g_array_index (uids, guint32, 0);
  peer->euid = g_array_index (uids, guint32, 1);
  peer->gid = g_array_index (gids, guint32, 0);
  peer->egid = g_array_index (gids, guint32, 1);
  peer->groups = g_steal_pointer (&groups);
  return TRUE;
}

/* Field 22 of /proc/PID/stat (the start time), counted after the comm
 * field, which may hold spaces and parentheses: the last ')' ends it.
 * A zombie has no start time worth the name: it has exited. */
static gboolean
read_start_time (GPid pid, guint64 *out, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;
  const char *rest;

  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  rest = strrchr (text, ')');
  if (rest != NULL)
    fields = g_strsplit (g_strstrip ((char *) rest + 1), " ", -1);
  /* fields[0] is field 3 (state): field 22 is fields[19] */
  if (fields == NULL || g_strv_length (fields) < 20
      || !g_ascii_string_to_unsigned (fields[19], 10, 0, G_MAXUINT64, out, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: no start time in field 22",
                   path);
      return FALSE;
    }
  if (g_str_equal (fields[0], "Z") || g_str_equal (fields[0], "X"))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "process %d has exited", pid);
      return FALSE;
    }
  return TRUE;
}

/* The pid a pidfd refers to now: the "Pid:" of its fdinfo, -1 once the
 * process has exited and been reaped, 0 if unreadable. */
static GPid
pidfd_pid (int pidfd)
{
  g_autofree char *path = g_strdup_printf ("/proc/self/fdinfo/%d", pidfd);
  g_autofree char *text = NULL;
  g_autofree char *value = NULL;
  const char *line;
  gint64 v;

  if (!g_file_get_contents (path, &text, NULL, NULL) || !(line = strstr (text, "\nPid:")))
    return 0;
  line += strlen ("\nPid:");
  while (*line == ' ' || *line == '\t')
    line++;
  value = g_strndup (line, strcspn (line, "\n"));
  if (!g_ascii_string_to_signed (value, 10, -1, G_MAXINT32, &v, NULL))
    return 0;
  return (GPid) v;
}

static QpinPeer *
peer_new (GPid pid, uid_t socket_uid)
{
  QpinPeer *peer = g_new0 (QpinPeer, 1);

  peer->pid = pid;
  peer->socket_uid = socket_uid;
  return peer;
}

/* Whether @pidfd (or -1: none) still names @pid. */
static gboolean
pidfd_holds (int pidfd, GPid pid, GError **error)
{
  if (pidfd >= 0 && pidfd_pid (pidfd) != pid)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "the process that opened the socket (pid %d) has exited", pid);
      return FALSE;
    }
  return TRUE;
}

/* Start time and ids, read while @pidfd (closed here) says the process is
 * the one it was: a pid reused between the reads would show as a
 * mismatch.  From then on the pid and start time name the instance: a
 * later process with that pid started later, and an unprivileged user
 * cannot choose a pid.  Holding no pidfd keeps a VM at one descriptor,
 * its monitor. */
static QpinPeer *
peer_finish (QpinPeer *owned, int pidfd, GError **error)
{
  g_autoptr (QpinPeer) peer = owned;
  gboolean ok = pidfd_holds (pidfd, peer->pid, error)
                && read_start_time (peer->pid, &peer->start_time, error)
                && read_status (peer, error) && pidfd_holds (pidfd, peer->pid, error)
                && qpin_peer_is_current (peer, error);

  if (pidfd >= 0)
    close (pidfd);
  return ok ? g_steal_pointer (&peer) : NULL;
}

/**
 * qpin_peer_new_from_socket:
 * @socket: a connected unix socket
 *
 * The process that opened the other end (SO_PEERCRED: the one that
 * listened, or the one that connected), held by SO_PEERPIDFD while its
 * start time is read.  A process
 * that has exited since is an error: its pid may be another process's.
 *
 * Returns: (transfer full): the peer, or %NULL with @error set
 */
QpinPeer *
qpin_peer_new_from_socket (GSocket *socket, GError **error)
{
  g_autoptr (GCredentials) creds = g_socket_get_credentials (socket, error);
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  GPid pid;

  if (creds == NULL)
    return NULL;
  pid = g_credentials_get_unix_pid (creds, NULL);
  if (pid <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "the kernel does not name the peer");
      return NULL;
    }
  if (getsockopt (g_socket_get_fd (socket), SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0)
    {
      int err = errno;
      if (err == ESRCH || err == EINVAL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "the process that opened the socket (pid %d) has exited", pid);
          return NULL;
        }
      /* an older kernel: the pid, checked by start time from here on */
      return qpin_peer_new_for_pid (pid, error);
    }
  return peer_finish (peer_new (pid, g_credentials_get_unix_user (creds, NULL)), pidfd, error);
}

/**
 * qpin_peer_new_for_pid:
 *
 * The process @pid is now (pidfd_open).
 *
 * Returns: (transfer full): the peer, or %NULL with @error set
 */
QpinPeer *
qpin_peer_new_for_pid (GPid pid, GError **error)
{
  int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);

  if (pidfd < 0 && errno == ESRCH)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "process %d does not exist", pid);
      return NULL;
    }
  return peer_finish (peer_new (pid, (uid_t) -1), pidfd, error);
}

void
qpin_peer_free (QpinPeer *peer)
{
  if (peer == NULL)
    return;
  g_clear_pointer (&peer->groups, g_array_unref);
  g_free (peer);
}

/**
 * qpin_peer_is_current:
 *
 * Whether @peer's process still runs as the same instance: its pid has
 * the start time first read, and it has not exited.
 *
 * Returns: %TRUE if so; otherwise %FALSE with @error saying why
 */
gboolean
qpin_peer_is_current (const QpinPeer *peer, GError **error)
{
  guint64 start = 0;

  if (peer->start_time != 0 && !read_start_time (peer->pid, &start, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "the process that opened the socket (pid %d) has exited", peer->pid);
      return FALSE;
    }
  if (peer->start_time != 0 && start != peer->start_time)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "pid %d is no longer the process that opened the socket (pid reused)",
                   peer->pid);
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_peer_same_process:
 *
 * Returns: whether @a and @b are one process instance
 */
gboolean
qpin_peer_same_process (const QpinPeer *a, const QpinPeer *b)
{
  return a->pid == b->pid && a->start_time == b->start_time;
}

static gboolean
in_ids (const GArray *ids, guint32 id)
{
  for (guint i = 0; ids && i < ids->len; i++)
    if (g_array_index (ids, guint32, i) == id)
      return TRUE;
  return FALSE;
}

static gboolean
user_allowed (const GArray *uids, uid_t uid)
{
  return uid == 0 || uid == geteuid () || in_ids (uids, uid);
}

/**
 * qpin_peer_is_allowed:
 * @uids: (nullable): guint32, users allowed besides root and qpin's own
 * @gids: (nullable): guint32, groups whose members are allowed
 *
 * A peer is allowed when its real and effective uid (and the socket's
 * uid, if from a socket) are allowed users, or when it runs in an allowed
 * group (real, effective or supplementary).
 */
gboolean
qpin_peer_is_allowed (const QpinPeer *peer, const GArray *uids, const GArray *gids)
{
  if (user_allowed (uids, peer->uid) && user_allowed (uids, peer->euid)
      && (peer->socket_uid == (uid_t) -1 || user_allowed (uids, peer->socket_uid)))
    return TRUE;
  if (in_ids (gids, peer->gid) || in_ids (gids, peer->egid))
    return TRUE;
  for (guint i = 0; peer->groups && i < peer->groups->len; i++)
    if (in_ids (gids, g_array_index (peer->groups, guint32, i)))
      return TRUE;
  return FALSE;
}

static gboolean
all_digits (const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isdigit (*s))
      return FALSE;
  return TRUE;
}

/**
 * qpin_peer_has_key_form:
 *
 * Returns: whether @name looks like one of qpin's own VM keys, "pid-N"
 *   for an unnamed QEMU or "NAME@N" for the second QEMU of a name
 */
gboolean
qpin_peer_has_key_form (const char *name)
{
  const char *at = strrchr (name, '@');

  if (g_str_has_prefix (name, "pid-") && all_digits (name + 4))
    return TRUE;
  return at != NULL && all_digits (at + 1);
}

/**
 * qpin_peer_new_for_client:
 * @pid: the QEMU's pid when known otherwise (a tcp: monitor, attach
 *   --pid), or 0
 *
 * The process behind @client: the socket's peer, or
 * @pid when given.
 *
 * Returns: (transfer full): the peer, or %NULL with @error set
 */
QpinPeer *
qpin_peer_new_for_client (QpinQmpClient *client, GPid pid, GError **error)
{
  GSocket *socket = qpin_qmp_client_get_socket (client);

  if (pid <= 0 && socket && g_socket_get_family (socket) == G_SOCKET_FAMILY_UNIX)
    return qpin_peer_new_from_socket (socket, error);
  if (pid <= 0)
    pid = qpin_qmp_client_get_peer_pid (client);
  if (pid <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no process behind the monitor");
      return NULL;
    }
  return qpin_peer_new_for_pid (pid, error);
}

/**
 * qpin_peer_check_owner:
 * @config: its [daemon] allow_users and allow_groups
 *
 * Returns: %TRUE if the daemon may manage @peer; otherwise %FALSE with
 *   @error saying who it runs as and who is allowed
 */
gboolean
qpin_peer_check_owner (const QpinPeer *peer, const QpinConfig *config, GError **error)
{
  const GArray *uids, *gids;

  qpin_config_get_allowed (config, &uids, &gids);
  if (qpin_peer_is_allowed (peer, uids, gids))
    return TRUE;
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
               "its QEMU runs as uid %u (effective %u), which qpin does not manage (allowed: "
               "root, uid %u, [daemon] allow_users, allow_groups)",
               (guint) peer->uid, (guint) peer->euid, (guint) geteuid ());
  return FALSE;
}
