/* qpin-test-host.h: the host under test: /proc readers, host CPU 1
 * hotplug, temporary trees */
#pragma once

#include <glib.h>

guint64 qpin_test_cpu_ticks (GPid pid);
guint64 qpin_test_status_field (GPid pid, const char *field);
void qpin_test_remove_tree (const char *path);

gboolean qpin_test_cpu1_hotplug_begin (gboolean two_cpus);
void qpin_test_cpu1_set_online (gboolean online);
