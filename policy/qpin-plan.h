/* qpin-plan.h: the placer's answer
 *
 * A plan maps every thread of every VM to a cpuset, and every VM to the
 * memory nodes it should use, with notes explaining any degradation
 * ("overcommitted: shared pool ...").  Threads with @exclusive set hold
 * their CPUs in the ledger; the others float on a pool.
 *
 * A plan lives as long as its VM, so its sets are packed (a whole
 * QpinCpuset is 1 KiB): read them with qpin_cpuset_unpack() or the
 * qpin_cpuset_packed_*() queries, write them with qpin_cpuset_pack().
 * Copy a thread or a VM with qpin_plan_vm_copy(), never by value.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-policy.h"
#include "qpin-request.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

typedef struct {
  QpinThreadSpec spec;
  QpinCpusetPacked cpus;
  gboolean exclusive; /* @cpus held for this thread alone */
  gboolean changed;   /* set by the last incremental operation */
} QpinPlanThread;

typedef struct {
  char *name;
  gint64 pid;
  QpinPolicy *policy;           /* the merged policy it was placed with */
  GArray *threads;              /* QpinPlanThread, in request order */
  QpinCpusetPacked mem_nodes;   /* node ids */
  QpinCpusetPacked held;        /* every CPU held for the VM (vCPUs, isolated siblings, ...) */
  gboolean floating;            /* the vCPUs float on a pool (cpus=shared or overcommitted) */
  QpinCpusetPacked pool_domain; /* the CPUs a floating VM may use before exclusions */
  GPtrArray *notes;             /* char * */
} QpinPlanVm;

typedef struct {
  GPtrArray *vms; /* QpinPlanVm */
} QpinPlan;

QpinPlan *qpin_plan_new (void);
void qpin_plan_free (QpinPlan *plan);
QpinPlan *qpin_plan_copy (const QpinPlan *plan);
QpinPlanVm *qpin_plan_vm_new (const char *name, gint64 pid, const QpinPolicy *policy);
void qpin_plan_vm_free (QpinPlanVm *vm);
QpinPlanVm *qpin_plan_vm_copy (const QpinPlanVm *vm);
const QpinPlanVm *qpin_plan_find_vm (const QpinPlan *plan, const char *name);
gint qpin_plan_vm_thread_position (const QpinPlanVm *vm, QpinThreadRole role, guint index);
const QpinPlanThread *qpin_plan_vm_find_thread (const QpinPlanVm *vm, QpinThreadRole role,
                                                guint index);
void qpin_plan_thread_clear (QpinPlanThread *t);
void qpin_plan_vm_add_note (QpinPlanVm *vm, const char *format, ...) G_GNUC_PRINTF (2, 3);
char *qpin_plan_to_table (const QpinPlan *plan, const QpinTopology *topo);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinPlan, qpin_plan_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinPlanVm, qpin_plan_vm_free)

G_END_DECLS
