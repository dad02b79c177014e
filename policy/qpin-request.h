/* qpin-request.h: what a VM asks the placer for
 *
 * A request is a VM's threads with their roles and, for vCPUs, the guest
 * topology ids QEMU reports in query-cpus-fast props (socket, die,
 * cluster, core, thread, node); -1 where QEMU gave none.
 */
#pragma once

#include <glib.h>

#include "qpin-guest-topo.h"

G_BEGIN_DECLS

typedef enum {
  QPIN_ROLE_VCPU,
  QPIN_ROLE_EMULATOR,
  QPIN_ROLE_IOTHREAD,
  QPIN_ROLE_OTHER,
} QpinThreadRole;

typedef struct {
  QpinThreadRole role;
  guint index;        /* vCPU cpu-index, iothread number; 0 for the emulator */
  gint64 tid;         /* 0 when planning offline */
  QpinGuestTopo topo; /* vCPUs: the guest topology ids; all -1 for other roles */
} QpinThreadSpec;

typedef struct {
  char *name;
  gint64 pid;      /* 0 when planning offline */
  GArray *threads; /* QpinThreadSpec */
} QpinRequest;

/* The shape of a request built from `--vm NAME:VCPUS[:sockets=S,...]`. */
typedef struct {
  guint vcpus;
  guint sockets, cores, threads, nodes; /* 0: derive */
  guint iothreads;
} QpinGuestShape;

QpinRequest *qpin_request_new (const char *name, gint64 pid);
void qpin_request_free (QpinRequest *request);
QpinRequest *qpin_request_copy (const QpinRequest *request);
void qpin_request_add_thread (QpinRequest *request, const QpinThreadSpec *spec);
QpinThreadSpec qpin_thread_spec_vcpu (guint index);
QpinRequest *qpin_request_new_from_shape (const char *name, const QpinGuestShape *shape,
                                          GError **error);
gboolean qpin_guest_shape_parse (const char *text, char **name, QpinGuestShape *shape,
                                 GError **error);
guint qpin_request_n_vcpus (const QpinRequest *request);
const char *qpin_thread_role_to_string (QpinThreadRole role);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinRequest, qpin_request_free)

G_END_DECLS
