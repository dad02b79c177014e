/* qpin-registry-metrics.h: what the registry tells `qpin daemon --metrics`
 *
 * The registry's side of the Prometheus exposition: the threads the
 * sampler is to watch (with their plans), and the series only the
 * registry knows (VM state, drift repairs, pin errors, hot-add latency).
 */
#pragma once

#include <glib.h>

#include "qpin-registry.h"
#include "qpin-sampler.h"

G_BEGIN_DECLS

void qpin_registry_metrics_sync (QpinRegistry *registry, QpinSampler *sampler);
void qpin_registry_metrics_write (QpinRegistry *registry, GString *out);

G_END_DECLS
