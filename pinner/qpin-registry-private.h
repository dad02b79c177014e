/* qpin-registry-private.h: the registry's insides, shared by its files
 *
 * Only the registry's own files (qpin-registry*.c, qpin-vm*.c,
 * qpin-discovery.c, qpin-apply.c, qpin-hotplug.c) and its unit tests
 * include this, each after defining QPIN_REGISTRY_ALLOW_PRIVATE.
 */
#ifndef QPIN_REGISTRY_ALLOW_PRIVATE
#error "qpin-registry-private.h is for the registry's own files and its tests only"
#endif
#pragma once

#include "qpin-registry.h"

G_BEGIN_DECLS

void qpin_registry_thread_event (QpinRegistry *registry, GPid tgid, GPid tid, gboolean created);
void qpin_registry_cpu_event (QpinRegistry *registry, guint cpu, gboolean online);
void qpin_registry_set_recheck (QpinRegistry *registry, guint interval_ms, guint times);

G_END_DECLS
