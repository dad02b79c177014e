/* qpin-test-spin.h: guests whose vCPU 0 spins (a 512-byte floppy boot
 * sector that is `jmp $`), and a cpu cgroup that lets them */
#pragma once

#include "qpin-test-qemu.h"

char *qpin_test_spin_image (const char *dir);
QpinTestQemu *qpin_test_spin_vm_start (const char *image, const char *name, const char *smp,
                                       const char *listen);
void qpin_test_qemu_cont (QpinTestQemu *qemu);
gboolean qpin_test_qemu_in_boot_sector (gpointer qemu);
char *qpin_test_cpu_boost (const char *name, GPid pid);
