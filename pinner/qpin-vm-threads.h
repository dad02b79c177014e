/* qpin-vm-threads.h: a VM's threads and their roles
 *
 * Joins what QMP says (query-cpus-fast, query-iothreads) with what the
 * kernel says (/proc/PID/task).  Pure: the caller fetches both.
 */
#pragma once

#include <glib.h>

#include "qpin-request.h"

G_BEGIN_DECLS

typedef struct {
  QpinThreadRole role;
  gint index; /* vcpu: cpu-index; iothread: order by id; others: order by TID */
  GPid tid;
  char *id;           /* iothread id or vCPU qom-path; NULL otherwise */
  QpinGuestTopo topo; /* guest topology of a vCPU; -1 when absent or not a vCPU */
} QpinVmThread;

void qpin_vm_thread_free (QpinVmThread *thread);
GPtrArray *qpin_vm_threads_classify (GPid pid, GPtrArray *cpus, GPtrArray *iothreads, GArray *tids,
                                     GPtrArray **refused);

GPid qpin_vm_threads_resolve_pid (gint64 forced, GPid peer, GPtrArray *cpus, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinVmThread, qpin_vm_thread_free)

G_END_DECLS
