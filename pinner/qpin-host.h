/* qpin-host.h: every effect the registry has on the host, behind one seam
 *
 * The registry lists a VM's threads, reads and sets their affinity,
 * learns what a cgroup cpuset allows, sets the scheduling class, moves
 * memory, re-reads the host topology, tells a process instance apart and
 * reads the clock only through a QpinHost.  qpin_host_new_real() does it
 * on the kernel; qpin_host_recording_new() (qpin-host-recording.h) keeps
 * threads in memory for tests and, laid over the real host (a dry run),
 * reads the kernel's actual state and only records what it is asked to
 * change.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-peer.h"
#include "qpin-policy.h"
#include "qpin-qmp-client.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

typedef struct _QpinHost QpinHost;

typedef struct {
  /* the process's thread ids, sorted; QPIN_PINNER_ERROR_GONE if it is gone */
  GArray *(*list_tasks) (QpinHost *host, GPid pid, GError **error);
  /* the affinity of @tid (FALSE: unreadable) and the CPU it last ran on (-1) */
  gboolean (*read_task) (QpinHost *host, GPid pid, GPid tid, QpinCpuset *affinity, gint *cpu);
  /* qpin_pin_thread() */
  gboolean (*pin) (QpinHost *host, GPid pid, GPid tid, const QpinCpuset *cpus, QpinCpuset *applied,
                   GError **error);
  /* qpin_pin_allowed() */
  gboolean (*allowed) (QpinHost *host, GPid pid, GPid tid, QpinCpuset *allowed, GError **error);
  gboolean (*set_sched) (QpinHost *host, GPid pid, GPid tid, QpinSchedMode mode, guint priority,
                         GError **error);
  gboolean (*migrate_memory) (QpinHost *host, GPid pid, const QpinCpuset *nodes, int *unmoved,
                              GError **error);
  QpinTopology *(*read_topology) (QpinHost *host, GError **error);
  gboolean (*process_exists) (QpinHost *host, GPid pid);
  /* the process instance behind @client (qpin_peer_new_for_client()) */
  QpinPeer *(*identify) (QpinHost *host, QpinQmpClient *client, GPid pid, GError **error);
  gboolean (*is_current) (QpinHost *host, const QpinPeer *peer, GError **error);
  gint64 (*now_us) (QpinHost *host);
  void (*free) (QpinHost *host);
} QpinHostClass;

struct _QpinHost {
  const QpinHostClass *klass;
};

QpinHost *qpin_host_new_real (void);
void qpin_host_free (QpinHost *host);

GArray *qpin_host_list_tasks (QpinHost *host, GPid pid, GError **error);
gboolean qpin_host_read_task (QpinHost *host, GPid pid, GPid tid, QpinCpuset *affinity, gint *cpu);
gboolean qpin_host_pin (QpinHost *host, GPid pid, GPid tid, const QpinCpuset *cpus,
                        QpinCpuset *applied, GError **error);
gboolean qpin_host_allowed (QpinHost *host, GPid pid, GPid tid, QpinCpuset *allowed,
                            GError **error);
gboolean qpin_host_set_sched (QpinHost *host, GPid pid, GPid tid, QpinSchedMode mode,
                              guint priority, GError **error);
gboolean qpin_host_migrate_memory (QpinHost *host, GPid pid, const QpinCpuset *nodes, int *unmoved,
                                   GError **error);
QpinTopology *qpin_host_read_topology (QpinHost *host, GError **error);
gboolean qpin_host_process_exists (QpinHost *host, GPid pid);
QpinPeer *qpin_host_identify (QpinHost *host, QpinQmpClient *client, GPid pid, GError **error);
gboolean qpin_host_is_current (QpinHost *host, const QpinPeer *peer, GError **error);
gint64 qpin_host_now_us (QpinHost *host);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinHost, qpin_host_free)

G_END_DECLS
