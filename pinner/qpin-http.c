/* qpin-http.c: the module qpin-http.so: one path served with libsoup 3 */

#include <gmodule.h>
#include <libsoup/soup.h>
#include <string.h>

#include "qpin-http.h"

struct _QpinHttp {
  SoupServer *server;
  char *path;
  char *content_type;
  QpinHttpBody body;
  gpointer data;
};

static void
on_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer user_data)
{
  QpinHttp *http = user_data;
  const char *method = soup_server_message_get_method (msg);
  char *body;

  if (g_strcmp0 (path, http->path) != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      return;
    }
  body = http->body (http->data);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, http->content_type, SOUP_MEMORY_TAKE, body, strlen (body));
}

/**
 * qpin_http_serve:
 * @address: where to listen, and only there
 * @path: the one path served ("/metrics"); others are 404
 *
 * Returns: (transfer full): the server; %NULL when @address cannot be
 *   bound (in use, not local)
 */
QpinHttp *
qpin_http_serve (GSocketAddress *address, const char *path, const char *content_type,
                 QpinHttpBody body, gpointer data, GError **error)
{
  QpinHttp *http = g_new0 (QpinHttp, 1);

  http->path = g_strdup (path);
  http->content_type = g_strdup (content_type);
  http->body = body;
  http->data = data;
  http->server = soup_server_new ("server-header", "qpin", NULL);
  soup_server_add_handler (http->server, "/", on_request, http, NULL);
  if (!soup_server_listen (http->server, address, 0, error))
    {
      qpin_http_stop (http);
      return NULL;
    }
  return http;
}

void
qpin_http_stop (QpinHttp *http)
{
  if (http == NULL)
    return;
  soup_server_disconnect (http->server);
  g_object_unref (http->server);
  g_free (http->path);
  g_free (http->content_type);
  g_free (http);
}
