/* qpin-http.h: the HTTP server behind `qpin daemon --metrics`
 *
 * Built as the module qpin-http.so, the one part of qpin that links
 * libsoup (see qpin-module.h).  It knows nothing of qpin: it serves one
 * path, whose body a callback renders at each request, from the main loop
 * and asynchronously (a client that never reads holds a socket buffer,
 * never the caller).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _QpinHttp QpinHttp;

/* The body of a GET (or HEAD) of the path; (transfer full). */
typedef char *(*QpinHttpBody) (gpointer data);

typedef QpinHttp *(*QpinHttpServe) (GSocketAddress *address, const char *path,
                                    const char *content_type, QpinHttpBody body, gpointer data,
                                    GError **error);
typedef void (*QpinHttpStop) (QpinHttp *http);

/* in the module */
G_MODULE_EXPORT QpinHttp *qpin_http_serve (GSocketAddress *address, const char *path,
                                           const char *content_type, QpinHttpBody body,
                                           gpointer data, GError **error);
G_MODULE_EXPORT void qpin_http_stop (QpinHttp *http);

G_END_DECLS
