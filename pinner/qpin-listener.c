/* qpin-listener.c: an accept loop that pauses instead of spinning
 *
 * GSocketService retries a failed accept at once and warns each time: out
 * of file descriptors, the listening socket stays readable and the daemon
 * spins, logging tens of thousands of lines a second.  Here a failed
 * accept stops the source for QPIN_LISTENER_BACKOFF_MS, with one line per
 * episode; and the owner pauses accepting while it has too many
 * connections in progress, leaving later peers in the kernel's backlog.
 */

#include "qpin-listener.h"

#include <glib/gstdio.h>

#include "qpin-sockets.h"

#define QPIN_LISTENER_BACKOFF_MS 1000
#define QPIN_LISTENER_BATCH 16 /* accepts per wake-up, so other sources get their turn */

struct _QpinListener {
  GSocket *socket;
  char *path;
  GSource *source; /* NULL while paused */
  guint backoff_id;
  gboolean failing; /* in an episode of failed accepts, until the backlog is empty */
  QpinListenerFunc func;
  gpointer user_data;
};

static gboolean on_ready (GSocket *socket, GIOCondition condition, gpointer user_data);

static void
start_source (QpinListener *listener)
{
  listener->source = g_socket_create_source (listener->socket, G_IO_IN, NULL);
  g_source_set_callback (listener->source, G_SOURCE_FUNC (on_ready), listener, NULL);
  g_source_attach (listener->source, NULL);
}

static void
stop_source (QpinListener *listener)
{
  if (listener->source == NULL)
    return;
  g_source_destroy (listener->source);
  g_clear_pointer (&listener->source, g_source_unref);
}

static gboolean
on_backoff_over (gpointer user_data)
{
  QpinListener *listener = user_data;

  listener->backoff_id = 0;
  start_source (listener);
  return G_SOURCE_REMOVE;
}

/* EMFILE, ENFILE, ENOMEM...: none of them goes away by trying again at once */
static void
back_off (QpinListener *listener, const GError *error)
{
  if (!listener->failing)
    g_warning ("listen: '%s': %s; trying again every %d ms", listener->path, error->message,
               QPIN_LISTENER_BACKOFF_MS);
  listener->failing = TRUE;
  stop_source (listener);
  listener->backoff_id = g_timeout_add (QPIN_LISTENER_BACKOFF_MS, on_backoff_over, listener);
}

/* Returns FALSE when accepting should stop for now. */
static gboolean
accept_one (QpinListener *listener)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) peer = g_socket_accept (listener->socket, NULL, &error);
  g_autoptr (GSocketConnection) connection = NULL;

  if (peer == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      if (listener->failing)
        g_message ("listen: '%s' has accepted every waiting peer again", listener->path);
      listener->failing = FALSE;
      return FALSE;
    }
  if (peer == NULL)
    {
      back_off (listener, error);
      return FALSE;
    }
  connection = g_socket_connection_factory_create_connection (peer);
  if (!listener->func (connection, listener->user_data))
    {
      stop_source (listener);
      return FALSE;
    }
  return TRUE;
}

static gboolean
on_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  QpinListener *listener = user_data;

  for (guint i = 0; i < QPIN_LISTENER_BATCH; i++)
    if (!accept_one (listener))
      break;
  /* accept_one() may have destroyed this source: then the return value
   * is not looked at */
  return G_SOURCE_CONTINUE;
}

/**
 * qpin_listener_new:
 * @path: where to listen; a stale socket there is replaced
 * @func: called with each new connection
 *
 * Returns: (transfer full): a listener accepting on the default main
 *   context; %NULL when @path cannot be bound
 */
QpinListener *
qpin_listener_new (const char *path, QpinListenerFunc func, gpointer user_data, GError **error)
{
  g_autoptr (GSocket) socket = qpin_sockets_bind (path, error);
  QpinListener *listener;

  if (socket == NULL)
    return NULL;
  listener = g_new0 (QpinListener, 1);
  listener->socket = g_steal_pointer (&socket);
  listener->path = g_strdup (path);
  listener->func = func;
  listener->user_data = user_data;
  start_source (listener);
  return listener;
}

/**
 * qpin_listener_resume:
 *
 * Accepts again after the callback said stop; nothing while backing off.
 */
void
qpin_listener_resume (QpinListener *listener)
{
  if (listener->source == NULL && listener->backoff_id == 0)
    start_source (listener);
}

/**
 * qpin_listener_free:
 *
 * Stops listening and removes the socket file.
 */
void
qpin_listener_free (QpinListener *listener)
{
  if (listener == NULL)
    return;
  stop_source (listener);
  if (listener->backoff_id)
    g_source_remove (listener->backoff_id);
  g_socket_close (listener->socket, NULL);
  g_object_unref (listener->socket);
  g_unlink (listener->path);
  g_free (listener->path);
  g_free (listener);
}
