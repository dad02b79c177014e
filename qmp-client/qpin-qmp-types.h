/* qpin-qmp-types.h: typed views of the QMP replies qpin uses
 *
 * Pure parsers over a command's "return" value.  Every field is type- and
 * range-checked; members that newer QEMUs add are ignored.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-guest-topo.h"

G_BEGIN_DECLS

/* The most vCPUs any QEMU machine accepts: q35's max_cpus, 4096 since
 * QEMU 9.0 (hw/i386/pc_q35.c; 1024 in 8.x; QEMU 7.2's query-machines
 * reports cpu-max 288 for q35 and 255 for pc).  arm virt (512), pseries and
 * s390x (248) stay below.  A reply listing more vCPUs or CPU slots is not
 * from QEMU.  Iothreads get the same bound: one per vCPU is already more
 * than can run at once (virtio iothread-vq-mapping spreads a disk's queues
 * over a few), and it keeps a reply's cost where a 4,096-vCPU one is. */
#define QPIN_QMP_MAX_VCPUS 4096
#define QPIN_QMP_MAX_IOTHREADS 4096

typedef struct {
  gint64 cpu_index;
  gint64 thread_id; /* host TID of the vCPU thread */
  char *qom_path;
  char *target;
  QpinGuestTopo topo; /* props; absent ones -1 */
} QpinQmpCpu;

typedef struct {
  char *id;
  gint64 thread_id;
} QpinQmpIothread;

/* One slot of query-hotpluggable-cpus; qom_path NULL when free. */
typedef struct {
  char *type;
  gint64 vcpus_count;
  char *qom_path;
  QpinGuestTopo topo; /* props; absent ones -1 */
} QpinQmpHotpluggableCpu;

void qpin_qmp_cpu_free (QpinQmpCpu *cpu);
void qpin_qmp_iothread_free (QpinQmpIothread *iothread);
void qpin_qmp_hotpluggable_cpu_free (QpinQmpHotpluggableCpu *slot);

GPtrArray *qpin_qmp_parse_cpus_fast (JsonNode *ret, GError **error);
GPtrArray *qpin_qmp_parse_iothreads (JsonNode *ret, GError **error);
GPtrArray *qpin_qmp_parse_hotpluggable_cpus (JsonNode *ret, GError **error);
gboolean qpin_qmp_parse_name (JsonNode *ret, char **name, GError **error);
gboolean qpin_qmp_parse_status (JsonNode *ret, char **status, gboolean *running, GError **error);
gboolean qpin_qmp_cpus_share_thread (GPtrArray *cpus);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinQmpCpu, qpin_qmp_cpu_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinQmpIothread, qpin_qmp_iothread_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinQmpHotpluggableCpu, qpin_qmp_hotpluggable_cpu_free)

G_END_DECLS
