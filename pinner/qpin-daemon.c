/* qpin-daemon.c: listening socket, watched directory, control socket
 *
 * Everything runs on the default main context.  Each watched socket has
 * its own cancellable, so a late connection attempt for a socket that
 * vanished finds it cancelled instead of freed memory.
 */

#include "qpin-daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qpin-control-server.h"
#include "qpin-control.h"
#include "qpin-listener.h"
#include "qpin-ledger-file.h"
#include "qpin-proc.h"
#include "qpin-qmp-json.h"
#include "qpin-setup.h"
#include "qpin-sockets.h"
#include "qpin-unix-address.h"
#include "qpin-socket-guard.h"

#define WATCH_RETRIES 5
#define WATCH_RETRY_MS 200
#define WATCH_RECONNECT_MS 1000

struct _QpinDaemon {
  QpinRegistry *registry;
  QpinDaemonOptions options;
  char *listen_path;
  char *watch_dir;
  char *control_path;
  char *config_path;
  GStrv overrides;
  QpinListener *listener;
  QpinControlServer *control;
  QpinSocketGuard *guard; /* binds removed sockets again */
  GFileMonitor *monitor;
  int watch_fd;        /* the watched directory, connected to by name */
  GHashTable *watched; /* path -> Watched */
  guint pending;       /* connections in their QMP handshake, listen and watch */
  guint max_pending;
  gint64 pending_full_us; /* when max_pending was last reached */
  GQueue waiting;         /* Watched waiting for a handshake slot */
  gboolean closing;
  GCancellable *cancel;
  guint grace_id;
  gboolean grace; /* placements held until grace_id fires */
};

typedef struct {
  QpinDaemon *daemon;
  char *path;
  QpinQmpClient *client;
  gulong closed_id;
  GCancellable *cancel;
  gboolean connecting; /* in its QMP handshake: holds one of daemon->pending */
  gboolean queued;     /* in daemon->waiting */
  guint retry_id;
  guint attempts;
  gboolean stale;
} Watched;

static void try_connect (Watched *w);

/* A connection's QMP handshake ended (or was given up): its slot goes to
 * a waiting watched socket, or lets the listener accept again. */
static void
handshake_done (QpinDaemon *daemon)
{
  if (daemon->closing)
    return;
  daemon->pending--;
  while (daemon->pending < daemon->max_pending && !g_queue_is_empty (&daemon->waiting))
    {
      Watched *w = g_queue_pop_head (&daemon->waiting);
      w->queued = FALSE;
      try_connect (w);
    }
  if (daemon->listener && daemon->pending < daemon->max_pending)
    qpin_listener_resume (daemon->listener);
}

/* Whether every handshake slot is taken; said once per episode, which
 * ends after a minute without the slots running out. */
static gboolean
handshakes_full (QpinDaemon *daemon)
{
  gint64 now = g_get_monotonic_time ();

  if (daemon->pending < daemon->max_pending)
    return FALSE;
  if (daemon->pending_full_us == 0 || now - daemon->pending_full_us > 60 * G_USEC_PER_SEC)
    g_warning ("%u connections are in their QMP handshake, the most at once; others wait "
               "until one ends",
               daemon->pending);
  daemon->pending_full_us = now;
  return TRUE;
}

static void
watched_free (Watched *w)
{
  if (w->queued)
    g_queue_remove (&w->daemon->waiting, w);
  if (w->connecting)
    handshake_done (w->daemon);
  g_cancellable_cancel (w->cancel);
  g_clear_object (&w->cancel);
  if (w->retry_id)
    g_source_remove (w->retry_id);
  if (w->client)
    {
      g_signal_handler_disconnect (w->client, w->closed_id);
      qpin_qmp_client_close (w->client);
      g_object_unref (w->client);
    }
  g_free (w->path);
  g_free (w);
}

static gboolean
on_retry (gpointer user_data)
{
  Watched *w = user_data;

  w->retry_id = 0;
  try_connect (w);
  return G_SOURCE_REMOVE;
}

static void
on_watched_closed (QpinQmpClient *client, const GError *error, gpointer user_data)
{
  Watched *w = user_data;

  g_signal_handler_disconnect (w->client, w->closed_id);
  g_clear_object (&w->client);
  /* QEMU removes its socket when it exits cleanly; a file left behind is
   * a QEMU that still runs (try again) or one that was killed (stale) */
  if (g_file_test (w->path, G_FILE_TEST_EXISTS) && w->retry_id == 0)
    {
      w->attempts = 0;
      w->retry_id = g_timeout_add (WATCH_RECONNECT_MS, on_retry, w);
    }
}

static void
watch_failed (Watched *w, const GError *error)
{
  /* a socket can exist a moment before QEMU listens on it */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
      && w->attempts < WATCH_RETRIES)
    {
      w->attempts++;
      w->retry_id = g_timeout_add (WATCH_RETRY_MS, on_retry, w);
      return;
    }
  if (!w->stale)
    g_warning ("watch: '%s': %s; ignored until it changes", w->path, error->message);
  w->stale = TRUE;
}

static void
on_watch_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Watched *w = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_handshake_finish (result, &error);

  if (client == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* w is gone */
  if (g_cancellable_is_cancelled (w->cancel))
    {
      if (client)
        qpin_qmp_client_close (client);
      return;
    }
  w->connecting = FALSE;
  handshake_done (w->daemon);
  if (client == NULL)
    {
      watch_failed (w, error);
      return;
    }
  g_message ("watch: '%s': connected", w->path);
  w->attempts = 0;
  w->stale = FALSE;
  w->client = g_object_ref (client);
  w->closed_id = g_signal_connect (client, "closed", G_CALLBACK (on_watched_closed), w);
  qpin_registry_add (w->daemon->registry, client, 0);
}

/* Every attempt, first or retry, checks the file again and connects to
 * what it checked (qpin_sockets_connect_at): a socket that was refused
 * and then replaced by a symbolic link is not followed. */
static void
try_connect (Watched *w)
{
  QpinDaemon *daemon = w->daemon;
  g_autofree char *name = g_path_get_basename (w->path);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) connection = NULL;

  if (w->connecting || w->client || w->retry_id || w->queued)
    return;
  if (handshakes_full (daemon))
    {
      w->queued = TRUE;
      g_queue_push_tail (&daemon->waiting, w);
      return;
    }
  connection = qpin_sockets_connect_at (daemon->watch_fd, name, &error);
  if (connection == NULL)
    {
      watch_failed (w, error);
      return;
    }
  daemon->pending++;
  w->connecting = TRUE;
  qpin_qmp_client_handshake_async (connection, w->path, daemon->options.timeout_ms, w->cancel,
                                   on_watch_connected, w);
}

static void
watch_path (QpinDaemon *daemon, const char *path, gboolean fresh)
{
  Watched *w = g_hash_table_lookup (daemon->watched, path);
  GStatBuf st;

  if (g_lstat (path, &st) != 0)
    return;
  if (S_ISLNK (st.st_mode))
    {
      /* a retry that already met the link has said so */
      if (w == NULL || !w->stale)
        g_warning ("watch: '%s' is a symbolic link; ignored", path);
      g_hash_table_remove (daemon->watched, path);
      return;
    }
  if (!S_ISSOCK (st.st_mode))
    return;
  if (w == NULL)
    {
      w = g_new0 (Watched, 1);
      w->daemon = daemon;
      w->path = g_strdup (path);
      w->cancel = g_cancellable_new ();
      g_hash_table_insert (daemon->watched, w->path, w);
    }
  if (fresh)
    {
      w->stale = FALSE;
      w->attempts = 0;
    }
  if (!w->stale)
    try_connect (w);
}

static void
on_dir_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                gpointer user_data)
{
  QpinDaemon *daemon = user_data;
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *other_path = other ? g_file_get_path (other) : NULL;

  switch (event)
    {
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_MOVED_IN:
    case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
      watch_path (daemon, path, TRUE);
      break;
    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
      if (g_hash_table_remove (daemon->watched, path))
        g_message ("watch: '%s' is gone", path);
      break;
    case G_FILE_MONITOR_EVENT_RENAMED:
      g_hash_table_remove (daemon->watched, path);
      if (other_path)
        watch_path (daemon, other_path, TRUE);
      break;
    default:
      break;
    }
}

/**
 * qpin_daemon_rescan:
 *
 * Looks at every socket of the watched directory again, stale ones too.
 */
void
qpin_daemon_rescan (QpinDaemon *daemon)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (daemon->watch_dir == NULL || !(dir = g_dir_open (daemon->watch_dir, 0, NULL)))
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (daemon->watch_dir, name, NULL);
      watch_path (daemon, path, TRUE);
    }
}

/* ---- listening socket: QEMU connects to us ---- */

static void
on_listen_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QpinDaemon *daemon = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_handshake_finish (result, &error);

  if (client == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* the daemon is gone */
  handshake_done (daemon);
  if (client == NULL)
    {
      g_warning ("listen: a peer failed the QMP handshake: %s", error->message);
      return;
    }
  if (qpin_qmp_client_get_peer_pid (client) <= 0)
    {
      g_warning ("listen: '%s': the kernel does not name the peer; refused",
                 qpin_qmp_client_get_label (client));
      qpin_qmp_client_close (client);
      return;
    }
  qpin_registry_add (daemon->registry, client, 0);
}

/* Returns FALSE to pause accepting: the kernel's backlog holds later
 * peers until a handshake slot is free. */
static gboolean
on_listen_incoming (GSocketConnection *connection, gpointer user_data)
{
  QpinDaemon *daemon = user_data;
  g_autoptr (GCredentials) creds
    = g_socket_get_credentials (g_socket_connection_get_socket (connection), NULL);
  g_autofree char *label
    = g_strdup_printf ("%s (peer pid %d)", daemon->listen_path,
                       creds ? (int) g_credentials_get_unix_pid (creds, NULL) : -1);

  daemon->pending++;
  qpin_qmp_client_handshake_async (connection, label, daemon->options.timeout_ms, daemon->cancel,
                                   on_listen_handshake, daemon);
  return !handshakes_full (daemon);
}

/* Bind @path for a unix socket server, replacing a stale socket file but
 * never a live one (another daemon) or anything that is not a socket. */
static GSocketService *
listen_on (const char *path, GError **error)
{
  g_autoptr (GSocketService) service = g_socket_service_new ();
  g_autoptr (GSocketAddress) addr = qpin_unix_address_new (path, error);
  mode_t old_mask;
  gboolean ok;

  if (addr == NULL || !qpin_sockets_make_room (path, error))
    return NULL;
  /* owner only from the first moment, not chmod after bind */
  old_mask = umask (0177);
  ok = g_socket_listener_add_address (G_SOCKET_LISTENER (service), addr, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, error);
  umask (old_mask);
  if (!ok)
    {
      g_prefix_error (error, "cannot listen on '%s': ", path);
      return NULL;
    }
  return g_steal_pointer (&service);
}

/* ---- binding (again, after the socket file was removed) ---- */

/* a QpinSocketGuardBind: the old listener (whose file is gone or was
 * replaced) goes first, since freeing it removes the file at its path */
static gboolean
bind_listen (gpointer user_data, GError **error)
{
  QpinDaemon *daemon = user_data;

  g_clear_pointer (&daemon->listener, qpin_listener_free);
  daemon->listener = qpin_listener_new (daemon->listen_path, on_listen_incoming, daemon, error);
  return daemon->listener != NULL;
}

/* a QpinSocketGuardBind */
static gboolean
bind_control (gpointer user_data, GError **error)
{
  QpinDaemon *daemon = user_data;
  GSocketService *service = listen_on (daemon->control_path, error);

  if (service == NULL)
    return FALSE;
  qpin_control_server_listen (daemon->control, service);
  return TRUE;
}

/**
 * qpin_daemon_check_sockets:
 *
 * Binds the listening and control sockets again if their files (or
 * their directory) were removed; file events do this too, SIGHUP calls
 * it in case an event was missed.
 */
void
qpin_daemon_check_sockets (QpinDaemon *daemon)
{
  qpin_socket_guard_check (daemon->guard);
}

static gboolean
on_grace_over (gpointer user_data)
{
  QpinDaemon *daemon = user_data;

  daemon->grace_id = 0;
  g_info ("start-up grace over: placing %u VMs", qpin_registry_n_vms (daemon->registry));
  qpin_registry_release (daemon->registry);
  return G_SOURCE_REMOVE;
}

/**
 * qpin_daemon_reload:
 *
 * Re-reads the configuration file (with the command line's overrides)
 * and re-places the VMs whose policy changed.  On error nothing changes.
 */
gboolean
qpin_daemon_reload (QpinDaemon *daemon, GError **error)
{
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (QpinConfig) config = NULL;

  /* the topology is read again only to check the new config against it */
  if (!qpin_setup_load (NULL, daemon->config_path, (const char *const *) daemon->overrides, &topo,
                        &config, error))
    return FALSE;
  if (!qpin_registry_reload (daemon->registry, g_steal_pointer (&config), error))
    return FALSE;
  g_message ("configuration reloaded%s%s", daemon->config_path ? " from " : "",
             daemon->config_path ? daemon->config_path : "");
  return TRUE;
}

/**
 * qpin_daemon_new:
 * @registry: (transfer none): must outlive the daemon
 *
 * Returns: (transfer full): a running daemon; %NULL when a socket cannot
 *   be bound or the directory cannot be watched
 */
QpinDaemon *
qpin_daemon_new (QpinRegistry *registry, const QpinDaemonOptions *options, GError **error)
{
  g_autoptr (QpinDaemon) daemon = g_new0 (QpinDaemon, 1);
  gboolean trusted = FALSE;

  daemon->registry = registry;
  daemon->options = *options;
  daemon->listen_path = g_strdup (options->listen_path);
  daemon->watch_dir = g_strdup (options->watch_dir);
  daemon->control_path = g_strdup (options->control_path);
  daemon->config_path = g_strdup (options->config_path);
  daemon->overrides = g_strdupv ((char **) options->overrides);
  daemon->cancel = g_cancellable_new ();
  daemon->watch_fd = -1;
  daemon->max_pending = options->max_pending ? options->max_pending : QPIN_DAEMON_MAX_PENDING;
  g_queue_init (&daemon->waiting);
  daemon->watched
    = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) watched_free);

  if (daemon->control_path)
    {
      g_autofree char *dir = g_path_get_dirname (daemon->control_path);
      g_autofree char *ledger = g_build_filename (dir, QPIN_LEDGER_FILE_NAME, NULL);
      g_autoptr (GError) local = NULL;

      if (qpin_registry_keep_ledger (registry, ledger, &local))
        trusted = qpin_registry_ledger_is_whole (registry);
      else if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_info ("%s (a first start): adopting running VMs by their affinities alone",
                local->message); /* the normal case: not worth a line by default */
      else
        g_warning ("ledger file ignored: %s; adopting running VMs by their affinities alone",
                   local->message);
    }
  /* a believed ledger holds the running VMs' CPUs already: no grace */
  if (options->grace_ms > 0 && !trusted)
    {
      qpin_registry_hold (registry);
      daemon->grace = TRUE;
    }
  daemon->guard = qpin_socket_guard_new ();
  if (daemon->control_path)
    {
      daemon->control = qpin_control_server_new (daemon, registry);
      if (!bind_control (daemon, error))
        return NULL;
      qpin_socket_guard_add (daemon->guard, "control socket", daemon->control_path, bind_control,
                             daemon);
    }
  if (daemon->listen_path)
    {
      if (!bind_listen (daemon, error))
        return NULL;
      g_message ("listening for QEMUs on '%s'", daemon->listen_path);
      qpin_socket_guard_add (daemon->guard, "listening socket", daemon->listen_path, bind_listen,
                             daemon);
    }
  if (daemon->watch_dir)
    {
      g_autoptr (GFile) dir = g_file_new_for_path (daemon->watch_dir);

      if (!qpin_sockets_check_dir (daemon->watch_dir, error))
        return NULL;
      daemon->watch_fd = open (daemon->watch_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (daemon->watch_fd < 0)
        {
          int err = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), "cannot open '%s': %s",
                       daemon->watch_dir, g_strerror (err));
          return NULL;
        }
      daemon->monitor = g_file_monitor_directory (dir, G_FILE_MONITOR_WATCH_MOVES, NULL, error);
      if (daemon->monitor == NULL)
        return NULL;
      g_signal_connect (daemon->monitor, "changed", G_CALLBACK (on_dir_changed), daemon);
      g_message ("watching '%s' for QMP sockets", daemon->watch_dir);
      qpin_daemon_rescan (daemon);
    }
  /* the grace counts from when the VMs can come back: the sockets are
   * bound and the directory scanned (binding can take a while) */
  if (daemon->grace)
    daemon->grace_id = g_timeout_add (options->grace_ms, on_grace_over, daemon);
  return g_steal_pointer (&daemon);
}

void
qpin_daemon_free (QpinDaemon *daemon)
{
  if (daemon == NULL)
    return;
  daemon->closing = TRUE;
  g_clear_pointer (&daemon->guard, qpin_socket_guard_free);
  g_cancellable_cancel (daemon->cancel);
  if (daemon->grace_id)
    g_source_remove (daemon->grace_id);
  if (daemon->monitor)
    {
      g_file_monitor_cancel (daemon->monitor);
      g_object_unref (daemon->monitor);
    }
  g_hash_table_unref (daemon->watched);
  g_queue_clear (&daemon->waiting);
  if (daemon->watch_fd >= 0)
    close (daemon->watch_fd);
  qpin_listener_free (daemon->listener); /* removes the socket file */
  if (daemon->control)
    {
      qpin_control_server_free (daemon->control);
      g_unlink (daemon->control_path);
    }
  g_object_unref (daemon->cancel);
  g_strfreev (daemon->overrides);
  g_free (daemon->listen_path);
  g_free (daemon->watch_dir);
  g_free (daemon->control_path);
  g_free (daemon->config_path);
  g_free (daemon);
}
