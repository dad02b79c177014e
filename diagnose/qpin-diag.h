/* qpin-diag.h: the checks of `qpin diagnose` over a host and its VMs
 *
 * Every reader takes the context's root ("/" live, else a procfs/sysfs
 * shaped tree: a fixture or a capture).  Rates come from two snapshots:
 * live, the same root read twice @seconds apart; in a fixture, ROOT and
 * ROOT/after (when that directory exists) with no wait.  Files read,
 * relative to the root (rates: both snapshots):
 *
 *   proc/interrupts, proc/irq/N/smp_affinity_list                   irqs
 *   proc/P/task/T/{comm,stat,schedstat,status}, proc/P/comm         tasks
 *   proc/P/environ (irqbalance), etc/default/irqbalance
 *   proc/P/numa_maps, proc/P/status (VmRSS), proc/P/cmdline (-name), proc/cpuinfo
 *   sys/kernel/mm/ksm/{run,pages_sharing}, sys/kernel/mm/transparent_hugepage/enabled
 *   sys/module/kvm/parameters/halt_poll_ns
 *   sys/kernel/debug/kvm/PID-FD/halt_poll_{success,fail}_ns         rates
 *   sys/devices/system/cpu/cpuN/cpufreq/scaling_governor
 */
#pragma once

#include <glib.h>

#include "qpin-finding.h"
#include "qpin-request.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

/* One thread of a VM: from the daemon's status or from its name in
 * /proc ("CPU 0/KVM" is vCPU 0, "IO iothread1" an iothread). */
typedef struct {
  gint64 tid;
  QpinThreadRole role;
  guint index;
} QpinDiagThread;

typedef struct {
  char *name;
  gint64 pid;
  GArray *threads;      /* QpinDiagThread */
  QpinCpuset dedicated; /* CPUs held for its vCPUs alone (empty: none or unknown) */
  char *accel;          /* "kvm", "tcg" or NULL when not asked */
  GPtrArray *cpu_flags; /* host flags the guest CPU model lacks (NULL: not asked) */
  char *cpu_model_why;  /* why the model was not checked */
  gint64 drift_repairs; /* -1: unknown */
} QpinDiagVm;

typedef struct _QpinDiag QpinDiag;

QpinDiagVm *qpin_diag_vm_new (const char *name, gint64 pid);
void qpin_diag_vm_free (QpinDiagVm *vm);
void qpin_diag_vm_add_thread (QpinDiagVm *vm, gint64 tid, QpinThreadRole role, guint index);
gboolean qpin_diag_vm_read_threads (QpinDiagVm *vm, const char *root, GError **error);

QpinDiag *qpin_diag_new (const char *root, const QpinTopology *topo, double seconds);
void qpin_diag_free (QpinDiag *diag);
void qpin_diag_add_vm (QpinDiag *diag, QpinDiagVm *vm);
void qpin_diag_snapshot (QpinDiag *diag, gboolean after);
void qpin_diag_run (QpinDiag *diag, QpinFindings *out);
gboolean qpin_diag_has_after (const QpinDiag *diag);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinDiagVm, qpin_diag_vm_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinDiag, qpin_diag_free)

G_END_DECLS
