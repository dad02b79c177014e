/* qpin-pin.h: set a thread's CPU affinity and read back what the kernel applied */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-proc.h"

G_BEGIN_DECLS

gboolean qpin_pin_thread (GPid pid, GPid tid, const QpinCpuset *cpus, QpinCpuset *applied,
                          GError **error);
gboolean qpin_pin_allowed (GPid pid, GPid tid, QpinCpuset *allowed, GError **error);

G_END_DECLS
