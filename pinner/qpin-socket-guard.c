/* qpin-socket-guard.c: see qpin-socket-guard.h
 *
 * Events only say "look again": one check, a moment after the first
 * event, compares every directory and socket file with the inode the
 * guard knows and repairs what differs.  The moment lets `rm -rf` finish
 * with the directory before it is created again (a socket bound into it
 * at once would make its rmdir fail), and our own bind's events find
 * nothing to do.
 */

#include "qpin-socket-guard.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUARD_SETTLE_MS 100

typedef struct {
  char *path;
  dev_t dev;
  ino_t ino;
  mode_t mode; /* as found at start, created again with it */
  uid_t uid;
  gid_t gid;
  GFileMonitor *monitor;        /* the directory: its sockets */
  GFileMonitor *parent_monitor; /* its parent: the directory itself */
  gboolean failing;             /* its failure is logged */
} GuardedDir;

typedef struct {
  char *what;
  char *path;
  dev_t dev;
  ino_t ino;
  QpinSocketGuardBind bind;
  gpointer user_data;
  gboolean failing;
} GuardedSocket;

struct _QpinSocketGuard {
  GPtrArray *dirs;    /* GuardedDir */
  GPtrArray *sockets; /* GuardedSocket */
  guint check_id;
};

static void
monitor_stop (GFileMonitor *monitor)
{
  g_file_monitor_cancel (monitor);
  g_object_unref (monitor);
}

static void
guarded_dir_free (GuardedDir *d)
{
  g_clear_pointer (&d->monitor, monitor_stop);
  g_clear_pointer (&d->parent_monitor, monitor_stop);
  g_free (d->path);
  g_free (d);
}

static void
guarded_socket_free (GuardedSocket *s)
{
  g_free (s->what);
  g_free (s->path);
  g_free (s);
}

static gboolean
on_check (gpointer user_data)
{
  QpinSocketGuard *guard = user_data;

  guard->check_id = 0;
  qpin_socket_guard_check (guard);
  return G_SOURCE_REMOVE;
}

static gboolean
is_guarded (QpinSocketGuard *guard, const char *path)
{
  for (guint i = 0; path && i < guard->dirs->len; i++)
    if (g_str_equal (((GuardedDir *) g_ptr_array_index (guard->dirs, i))->path, path))
      return TRUE;
  for (guint i = 0; path && i < guard->sockets->len; i++)
    if (g_str_equal (((GuardedSocket *) g_ptr_array_index (guard->sockets, i))->path, path))
      return TRUE;
  return FALSE;
}

static void
on_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
            gpointer user_data)
{
  QpinSocketGuard *guard = user_data;
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *other_path = other ? g_file_get_path (other) : NULL;

  if (event == G_FILE_MONITOR_EVENT_CHANGED || event == G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT
      || guard->check_id != 0 || (!is_guarded (guard, path) && !is_guarded (guard, other_path)))
    return;
  guard->check_id = g_timeout_add (GUARD_SETTLE_MS, on_check, guard);
}

static GFileMonitor *
monitor_dir (QpinSocketGuard *guard, const char *path)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GError) error = NULL;
  GFileMonitor *monitor = g_file_monitor_directory (file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);

  if (monitor == NULL)
    {
      g_warning ("cannot watch '%s' (a removed socket is noticed on SIGHUP only): %s", path,
                 error->message);
      return NULL;
    }
  g_signal_connect (monitor, "changed", G_CALLBACK (on_changed), guard);
  return monitor;
}

/* Watches @d as it is now: a directory created again is a new inode. */
static void
dir_watch (QpinSocketGuard *guard, GuardedDir *d)
{
  g_autofree char *parent = g_path_get_dirname (d->path);
  GStatBuf st;

  if (g_stat (d->path, &st) == 0)
    {
      d->dev = st.st_dev;
      d->ino = st.st_ino;
    }
  g_clear_pointer (&d->monitor, monitor_stop);
  g_clear_pointer (&d->parent_monitor, monitor_stop);
  d->monitor = monitor_dir (guard, d->path);
  d->parent_monitor = monitor_dir (guard, parent);
}

static gboolean
dir_create (GuardedDir *d, GError **error)
{
  int err;

  if (g_mkdir_with_parents (d->path, (int) d->mode) == 0 && g_chmod (d->path, (int) d->mode) == 0
      && chown (d->path, d->uid, d->gid) == 0)
    return TRUE;
  err = errno;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), "%s", g_strerror (err));
  return FALSE;
}

static void
dir_restore (QpinSocketGuard *guard, GuardedDir *d)
{
  g_autoptr (GError) error = NULL;
  GStatBuf st;

  if (g_stat (d->path, &st) == 0)
    {
      /* someone else made it again (systemd-tmpfiles): watch the new one */
      if (st.st_dev != d->dev || st.st_ino != d->ino)
        dir_watch (guard, d);
      d->failing = FALSE;
      return;
    }
  if (!dir_create (d, &error))
    {
      if (!d->failing)
        g_warning ("directory '%s' was removed and cannot be created again: %s", d->path,
                   error->message);
      d->failing = TRUE;
      return;
    }
  d->failing = FALSE;
  g_warning ("directory '%s' was removed; created it again (mode %04o)", d->path,
             (unsigned) d->mode);
  dir_watch (guard, d);
}

static void
socket_record (GuardedSocket *s)
{
  GStatBuf st;

  if (g_lstat (s->path, &st) == 0)
    {
      s->dev = st.st_dev;
      s->ino = st.st_ino;
    }
}

static void
socket_restore (GuardedSocket *s)
{
  g_autoptr (GError) error = NULL;
  GStatBuf st;
  const char *how = "removed";

  if (g_lstat (s->path, &st) == 0)
    {
      if (st.st_dev == s->dev && st.st_ino == s->ino)
        return;
      how = "replaced";
    }
  if (!s->bind (s->user_data, &error))
    {
      if (!s->failing)
        g_warning ("%s '%s' was %s and cannot be bound again: %s", s->what, s->path, how,
                   error->message);
      s->failing = TRUE;
      return;
    }
  s->failing = FALSE;
  socket_record (s);
  g_warning ("%s '%s' was %s; listening there again", s->what, s->path, how);
}

/**
 * qpin_socket_guard_new:
 *
 * Returns: (transfer full): a guard with nothing to guard yet
 */
QpinSocketGuard *
qpin_socket_guard_new (void)
{
  QpinSocketGuard *guard = g_new0 (QpinSocketGuard, 1);

  guard->dirs = g_ptr_array_new_with_free_func ((GDestroyNotify) guarded_dir_free);
  guard->sockets = g_ptr_array_new_with_free_func ((GDestroyNotify) guarded_socket_free);
  return guard;
}

static void
add_dir (QpinSocketGuard *guard, const char *path)
{
  GuardedDir *d;
  GStatBuf st;

  for (guint i = 0; i < guard->dirs->len; i++)
    if (g_str_equal (((GuardedDir *) g_ptr_array_index (guard->dirs, i))->path, path))
      return;
  d = g_new0 (GuardedDir, 1);
  d->path = g_strdup (path);
  d->mode = 0755;
  if (g_stat (path, &st) == 0)
    {
      d->mode = st.st_mode & 07777;
      d->uid = st.st_uid;
      d->gid = st.st_gid;
    }
  g_ptr_array_add (guard->dirs, d);
  dir_watch (guard, d);
}

/**
 * qpin_socket_guard_add:
 * @what: names the socket in messages: "control socket"
 * @path: the socket file, just bound
 * @bind: binds it again when its file is gone
 *
 * Guards @path and its directory, whose mode and owner now are those it
 * is created again with.
 */
void
qpin_socket_guard_add (QpinSocketGuard *guard, const char *what, const char *path,
                       QpinSocketGuardBind bind, gpointer user_data)
{
  GuardedSocket *s = g_new0 (GuardedSocket, 1);
  g_autofree char *dir = g_path_get_dirname (path);

  s->what = g_strdup (what);
  s->path = g_strdup (path);
  s->bind = bind;
  s->user_data = user_data;
  socket_record (s);
  g_ptr_array_add (guard->sockets, s);
  add_dir (guard, dir);
}

/**
 * qpin_socket_guard_check:
 *
 * Creates every removed directory again and binds every socket whose
 * file is gone or replaced, one log line each.  Runs after file events
 * and on SIGHUP.
 */
void
qpin_socket_guard_check (QpinSocketGuard *guard)
{
  /* directories first: binding would create one with a default mode */
  for (guint i = 0; i < guard->dirs->len; i++)
    dir_restore (guard, g_ptr_array_index (guard->dirs, i));
  for (guint i = 0; i < guard->sockets->len; i++)
    socket_restore (g_ptr_array_index (guard->sockets, i));
}

void
qpin_socket_guard_free (QpinSocketGuard *guard)
{
  if (guard == NULL)
    return;
  g_clear_handle_id (&guard->check_id, g_source_remove);
  g_ptr_array_unref (guard->dirs);
  g_ptr_array_unref (guard->sockets);
  g_free (guard);
}
