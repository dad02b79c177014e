/* qpin-daemon.c: listening socket, watched directory, control socket
 *
 * Everything runs on the default main context.  Each watched socket has
 * its own cancellable, so a late connection attempt for a socket that
 * vanished finds it cancelled instead of freed memory.
 */
#define G_LOG_DOMAIN "qpin"

#include "qpin-daemon.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qpin-control-server.h"
#include "qpin-control.h"
#include "qpin-proc.h"
#include "qpin-setup.h"
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
  GSocketService *listen_service;
  QpinControlServer *control;
  QpinSocketGuard *guard; /* binds removed sockets again */
  GFileMonitor *monitor;
  GHashTable *watched; /* path -> Watched */
  GCancellable *cancel;
  guint grace_id;
};

typedef struct {
  QpinDaemon *daemon;
  char *path;
  QpinQmpClient *client;
  gulong closed_id;
  GCancellable *cancel;
  gboolean connecting;
  guint retry_id;
  guint attempts;
  gboolean stale;
} Watched;

static void try_connect (Watched *w);

static void
watched_free (Watched *w)
{
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
on_watch_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Watched *w = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_finish (result, &error);

  if (client == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* w is gone */
  if (g_cancellable_is_cancelled (w->cancel))
    {
      if (client)
        qpin_qmp_client_close (client);
      return;
    }
  w->connecting = FALSE;
  if (client == NULL)
    {
      /* a socket can exist a moment before QEMU listens on it */
      if (strstr (error->message, "refused") && w->attempts < WATCH_RETRIES)
        {
          w->attempts++;
          w->retry_id = g_timeout_add (WATCH_RETRY_MS, on_retry, w);
          return;
        }
      if (!w->stale)
        g_warning ("watch: '%s': %s; ignored until it changes", w->path, error->message);
      w->stale = TRUE;
      return;
    }
  g_message ("watch: '%s': connected", w->path);
  w->attempts = 0;
  w->stale = FALSE;
  w->client = g_object_ref (client);
  w->closed_id = g_signal_connect (client, "closed", G_CALLBACK (on_watched_closed), w);
  qpin_registry_add (w->daemon->registry, client, 0);
}

static void
try_connect (Watched *w)
{
  if (w->connecting || w->client || w->retry_id)
    return;
  w->connecting = TRUE;
  qpin_qmp_client_connect_async (w->path, w->daemon->options.timeout_ms, w->cancel,
                                 on_watch_connected, w);
}

static gboolean
is_socket (const char *path)
{
  GStatBuf st;
  return g_lstat (path, &st) == 0 && S_ISSOCK (st.st_mode);
}

static void
watch_path (QpinDaemon *daemon, const char *path, gboolean fresh)
{
  Watched *w = g_hash_table_lookup (daemon->watched, path);

  if (!is_socket (path))
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

  if (client == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
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

static gboolean
on_listen_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
                    gpointer user_data)
{
  QpinDaemon *daemon = user_data;
  g_autoptr (GCredentials) creds
    = g_socket_get_credentials (g_socket_connection_get_socket (connection), NULL);
  g_autofree char *label
    = g_strdup_printf ("%s (peer pid %d)", daemon->listen_path,
                       creds ? (int) g_credentials_get_unix_pid (creds, NULL) : -1);

  qpin_qmp_client_handshake_async (connection, label, daemon->options.timeout_ms, daemon->cancel,
                                   on_listen_handshake, daemon);
  return TRUE;
}

/* Bind @path for a unix socket server, replacing a stale socket file but
 * never a live one (another daemon) or anything that is not a socket. */
static GSocketService *
listen_on (const char *path, GError **error)
{
  g_autoptr (GSocketService) service = g_socket_service_new ();
  g_autoptr (GSocketAddress) addr = g_unix_socket_address_new (path);
  g_autofree char *dir = g_path_get_dirname (path);
  mode_t old_mask;
  gboolean ok;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int err = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), "cannot create '%s': %s", dir,
                   g_strerror (err));
      return NULL;
    }
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_autoptr (GSocketClient) sc = g_socket_client_new ();
      g_autoptr (GSocketConnection) probe = NULL;

      if (!is_socket (path))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "'%s' exists and is not a socket",
                       path);
          return NULL;
        }
      probe = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (addr), NULL, NULL);
      if (probe != NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                       "something already listens on '%s' (another qpin daemon?)", path);
          return NULL;
        }
      g_unlink (path);
    }
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

/* a QpinSocketGuardBind */
static gboolean
bind_listen (gpointer user_data, GError **error)
{
  QpinDaemon *daemon = user_data;
  GSocketService *service = listen_on (daemon->listen_path, error);

  if (service == NULL)
    return FALSE;
  if (daemon->listen_service)
    {
      g_socket_service_stop (daemon->listen_service);
      g_socket_listener_close (G_SOCKET_LISTENER (daemon->listen_service));
      g_object_unref (daemon->listen_service);
    }
  daemon->listen_service = service;
  g_signal_connect (service, "incoming", G_CALLBACK (on_listen_incoming), daemon);
  return TRUE;
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

  daemon->registry = registry;
  daemon->options = *options;
  daemon->listen_path = g_strdup (options->listen_path);
  daemon->watch_dir = g_strdup (options->watch_dir);
  daemon->control_path = g_strdup (options->control_path);
  daemon->config_path = g_strdup (options->config_path);
  daemon->overrides = g_strdupv ((char **) options->overrides);
  daemon->cancel = g_cancellable_new ();
  daemon->watched
    = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) watched_free);

  if (options->grace_ms > 0)
    {
      qpin_registry_hold (registry);
      daemon->grace_id = g_timeout_add (options->grace_ms, on_grace_over, daemon);
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

      if (!g_file_test (daemon->watch_dir, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY, "'%s' is not a directory",
                       daemon->watch_dir);
          return NULL;
        }
      daemon->monitor = g_file_monitor_directory (dir, G_FILE_MONITOR_WATCH_MOVES, NULL, error);
      if (daemon->monitor == NULL)
        return NULL;
      g_signal_connect (daemon->monitor, "changed", G_CALLBACK (on_dir_changed), daemon);
      g_message ("watching '%s' for QMP sockets", daemon->watch_dir);
      qpin_daemon_rescan (daemon);
    }
  return g_steal_pointer (&daemon);
}

void
qpin_daemon_free (QpinDaemon *daemon)
{
  if (daemon == NULL)
    return;
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
  if (daemon->listen_service)
    {
      g_socket_service_stop (daemon->listen_service);
      g_socket_listener_close (G_SOCKET_LISTENER (daemon->listen_service));
      g_object_unref (daemon->listen_service);
      g_unlink (daemon->listen_path);
    }
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
