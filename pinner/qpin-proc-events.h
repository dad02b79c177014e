/* qpin-proc-events.h: thread creation and exit in chosen processes, from
 * the kernel's process events connector (needs CAP_NET_ADMIN) */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @tgid: the watched process; @tid: the thread; @created: new or exited.
 * @tid 0 means events were lost (socket overrun): look at everything. */
typedef void (*QpinProcEventFunc) (GPid tgid, GPid tid, gboolean created, gpointer user_data);

/* Thread @tid of the watched process @tgid named itself @comm (at most
 * 15 bytes, NUL-terminated; untrusted). */
typedef void (*QpinProcCommFunc) (GPid tgid, GPid tid, const char *comm, gpointer user_data);

typedef struct _QpinProcEvents QpinProcEvents;

QpinProcEvents *qpin_proc_events_new (QpinProcEventFunc func, gpointer user_data, GError **error);
void qpin_proc_events_free (QpinProcEvents *events);
void qpin_proc_events_set_comm_func (QpinProcEvents *events, QpinProcCommFunc func);
/* what one socket filter can hold (BPF_MAXINSNS) */
#define QPIN_PROC_EVENTS_MAX_PIDS 4000

gboolean qpin_proc_events_set_pids (QpinProcEvents *events, const GPid *pids, guint n_pids,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinProcEvents, qpin_proc_events_free)

G_END_DECLS
