/* qpin-metrics.h: `qpin daemon --metrics ADDR:PORT`, Prometheus exposition
 *
 * Serves /metrics on the one address asked for, with libsoup in the module
 * qpin-http.so (loaded only then).  Each scrape
 * samples the managed threads and host CPUs then (no timer: an unscraped
 * daemon does no work for metrics) and renders the text format.  Serving
 * is asynchronous on the main loop: a scraper that never reads holds a
 * socket buffer, never the pinning.
 */
#pragma once

#include <gio/gio.h>

#include "qpin-registry.h"
#include "qpin-sampler.h"

G_BEGIN_DECLS

typedef struct _QpinMetrics QpinMetrics;

QpinMetrics *qpin_metrics_new (QpinRegistry *registry, const char *address, GError **error);
void qpin_metrics_free (QpinMetrics *metrics);
GSocketAddress *qpin_metrics_parse_address (const char *text, GError **error);
char *qpin_metrics_render (QpinRegistry *registry, QpinSampler *sampler, gint64 now_ns);
char *qpin_metrics_escape (const char *value);
void qpin_metrics_write_threads (QpinSampler *sampler, GString *out);
void qpin_metrics_write_cpus (QpinSampler *sampler, GString *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinMetrics, qpin_metrics_free)

G_END_DECLS
