/* qpin-pool.h: the shared pool, and the one exclusivity rule around it
 *
 * A CPU that a VM holds (a dedicated or manual vCPU, an isolated emulator
 * or iothread, the sibling an smt=isolate core keeps empty) is never in
 * the shared pool, and every thread that floats (the vCPUs of cpus=shared
 * and overcommitted VMs, the degraded vCPUs of dedicated ones) floats
 * inside it.  While anything floats, the pool keeps at least one CPU: as
 * the kubelet's CPU manager does, the request that would take its last
 * CPU is refused (or, with overcommit=share, floats on the pool itself).
 * The placer owns the ledger; these are the pieces of the rule that need
 * only the plan, used by qpin-placer.c alone.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-plan.h"

void qpin_pool_compute (const QpinCpuset *usable, const gint *owner, QpinCpuset *pool);
gboolean qpin_pool_vm_floats (const QpinPlanVm *vm, gint skip);
guint qpin_pool_users (const QpinPlan *plan, GPtrArray *pending, gboolean spills,
                       const QpinPlanVm *self, gint self_t, GString *names);
void qpin_pool_append_refusal (GString *s, guint n_users, const char *names);
void qpin_pool_add_name (GString *names, guint n, const char *name);
gboolean qpin_pool_batch_spills (GPtrArray *pending, guint n_free);
void qpin_pool_fallback (QpinPlanVm *vm, const QpinCpuset *reserved, const QpinCpuset *live,
                         const QpinCpuset *usable, QpinCpuset *pool);
gboolean qpin_pool_note_waiting (QpinPlanVm *vm, const QpinThreadSpec *spec, const char *reason);
void qpin_pool_forget_waiting (QpinPlanVm *vm, const QpinThreadSpec *spec);
