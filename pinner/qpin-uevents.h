/* qpin-uevents.h: host CPUs going offline and online, from kernel uevents */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef void (*QpinCpuEventFunc) (guint cpu, gboolean online, gpointer user_data);

typedef struct _QpinUevents QpinUevents;

QpinUevents *qpin_uevents_new (QpinCpuEventFunc func, gpointer user_data, GError **error);
void qpin_uevents_free (QpinUevents *uevents);
gboolean qpin_uevents_parse_cpu (const char *buf, gsize len, guint *cpu, gboolean *online);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinUevents, qpin_uevents_free)

G_END_DECLS
