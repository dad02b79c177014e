/* qpin-standby.c: see qpin-standby.h */

#include "qpin-standby.h"

typedef struct {
  QpinStandby *owner;
  QpinQmpClient *client;
  QpinPeer *peer; /* NULL: refused, never taken */
  gulong closed_id;
} Held;

/* Each held monitor is an fd: a peer that connects again and again must
 * not exhaust them.  Past this many, a monitor is closed instead. */
#define HELD_MAX 64

struct _QpinStandby {
  GPtrArray *held; /* Held */
};

static void
held_free (Held *h)
{
  g_signal_handler_disconnect (h->client, h->closed_id);
  qpin_qmp_client_close (h->client);
  g_object_unref (h->client);
  qpin_peer_free (h->peer);
  g_free (h);
}

/**
 * qpin_standby_new:
 *
 * Returns: (transfer full): an empty set
 */
QpinStandby *
qpin_standby_new (void)
{
  QpinStandby *standby = g_new0 (QpinStandby, 1);

  standby->held = g_ptr_array_new_with_free_func ((GDestroyNotify) held_free);
  return standby;
}

/**
 * qpin_standby_free:
 *
 * Closes every monitor held.
 */
void
qpin_standby_free (QpinStandby *standby)
{
  if (standby == NULL)
    return;
  g_ptr_array_unref (standby->held);
  g_free (standby);
}

static void
on_closed (QpinQmpClient *client, const GError *error, gpointer user_data)
{
  Held *h = user_data;

  g_debug ("a held monitor '%s' closed: %s", qpin_qmp_client_get_label (client), error->message);
  g_ptr_array_remove (h->owner->held, h);
}

/**
 * qpin_standby_hold:
 * @client: (transfer none): a monitor not managed
 * @peer: (transfer full) (nullable): its process, or %NULL for a refused
 *   monitor that never takes over
 *
 * Holds @client open until its peer hangs up; closes it at once when
 * HELD_MAX monitors are held already.
 */
void
qpin_standby_hold (QpinStandby *standby, QpinQmpClient *client, QpinPeer *peer)
{
  Held *h;

  if (standby->held->len >= HELD_MAX)
    {
      qpin_peer_free (peer);
      qpin_qmp_client_close (client);
      return;
    }
  h = g_new0 (Held, 1);
  h->owner = standby;
  h->client = g_object_ref (client);
  h->peer = peer;
  h->closed_id = g_signal_connect (client, "closed", G_CALLBACK (on_closed), h);
  g_ptr_array_add (standby->held, h);
}

/**
 * qpin_standby_take:
 * @peer: the process whose monitor closed
 *
 * Returns: (transfer full) (nullable): an open standby monitor of the
 *   same process instance, no longer held
 */
QpinQmpClient *
qpin_standby_take (QpinStandby *standby, const QpinPeer *peer)
{
  for (guint i = 0; i < standby->held->len; i++)
    {
      Held *h = g_ptr_array_index (standby->held, i);
      QpinQmpClient *client;

      if (h->peer == NULL || !qpin_peer_same_process (h->peer, peer)
          || qpin_qmp_client_is_closed (h->client))
        continue;
      client = g_object_ref (h->client);
      g_signal_handler_disconnect (h->client, h->closed_id);
      h->closed_id = 0;
      g_ptr_array_steal_index (standby->held, i);
      qpin_peer_free (h->peer);
      g_object_unref (h->client);
      g_free (h);
      return client;
    }
  return NULL;
}

/**
 * qpin_standby_drop_refused:
 *
 * Closes every refused monitor held, so that its peer reconnects (listen
 * mode) or is connected to again (watch mode) and is judged anew.
 */
void
qpin_standby_drop_refused (QpinStandby *standby)
{
  for (guint i = standby->held->len; i > 0; i--)
    if (((Held *) g_ptr_array_index (standby->held, i - 1))->peer == NULL)
      g_ptr_array_remove_index (standby->held, i - 1);
}
