/* qpin-effects.h: what a plan asks beyond affinity: scheduling class of
 * vCPU threads (sched=fifo|rr:PRIO) and the VM's memory (memory=migrate) */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-policy.h"

G_BEGIN_DECLS

gboolean qpin_effects_set_sched (GPid pid, GPid tid, QpinSchedMode mode, guint priority,
                                 GError **error);
gboolean qpin_effects_migrate_memory (GPid pid, const QpinCpuset *nodes, int *unmoved,
                                      GError **error);

G_END_DECLS
