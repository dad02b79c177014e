/* qpin-irq.h: keep device IRQs off the CPUs the daemon holds (irqs = avoid)
 *
 * One steering state per process (the daemon's): configured once from the
 * [defaults] policy, updated from the registry whenever the held CPUs may
 * have changed, restored when the daemon stops.  For every
 * /proc/irq/N/smp_affinity_list (and /proc/irq/default_smp_affinity) it
 * remembers the mask it found, writes that mask minus the held CPUs, and
 * writes it back when those CPUs are released.  An IRQ whose every allowed
 * CPU is held is left as it is (never an IRQ without a CPU); one the
 * kernel refuses to move (managed, per-CPU: EIO, EINVAL, EPERM) is named
 * once in the log.
 */
#pragma once

#include "qpin-plan.h"
#include "qpin-policy.h"

G_BEGIN_DECLS

/* beside the control socket and the ledger */
#define QPIN_IRQ_STATE_FILE_NAME "irqs-saved"

gboolean qpin_irq_steer_configure (const QpinConfig *config, gboolean dry_run,
                                   const char *control_path);
void qpin_irq_steer_update (const QpinPlan *plan);
void qpin_irq_steer_stop (void);

G_END_DECLS
