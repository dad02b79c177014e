/* qpin-registry-private.h: the registry's insides, shared by its files
 *
 * Only the registry's own files (qpin-registry.c, qpin-vm.c,
 * qpin-discovery.c, qpin-vm-plan.c, qpin-apply.c, qpin-registry-host.c,
 * qpin-registry-status.c, qpin-hotplug.c, qpin-registry-metrics.c) and
 * its unit tests include
 * this, each after defining QPIN_REGISTRY_ALLOW_PRIVATE, as libvirt does
 * with its *priv.h headers.
 */
#ifndef QPIN_REGISTRY_ALLOW_PRIVATE
#error "qpin-registry-private.h is for the registry's own files and its tests only"
#endif
#pragma once

#include "qpin-registry.h"

#include "qpin-host.h"
#include "qpin-ledger-file.h"
#include "qpin-log-limit.h"
#include "qpin-peer.h"
#include "qpin-proc-events.h"
#include "qpin-standby.h"
#include "qpin-uevents.h"
#include "qpin-vm-threads.h"

G_BEGIN_DECLS

/* Refusal messages remembered per VM, so each is said once: a peer that
 * invents new ones forever is bounded by this and the log limit. */
#define LOGGED_MAX 256

/* QMP events a peer can send at will start at most one discovery per
 * this many ms; the rest coalesce into it. */
#define DISCOVER_GAP_MS 100
/* A new thread in the VM (the kernel's word, which costs the peer a real
 * clone()) is looked at at once, as a hot-added vCPU must be: from a
 * bucket of this many discoveries, refilled at DISCOVER_RATE per second,
 * so that thread churn cannot make the daemon spin either. */
#define DISCOVER_BURST 32
#define DISCOVER_RATE 100

/* After a host CPU hotplug the kernel rewrites affinities on its own
 * (threads forced off an offline CPU, cpuset masks reset when one comes
 * back), some of it after the event reaches us: every thread of every
 * VM is looked at again now and a few times in the next seconds. */
#define HOST_RECHECK_MS 250
#define HOST_RECHECKS 4

/* The ledger file is written when the main loop is idle after a change,
 * and during a burst of changes at least this often. */
#define QPIN_LEDGER_MAX_DELAY_MS 100

/* Per thread, so the sets are packed: a whole QpinCpuset is 1 KiB. */
typedef struct {
  QpinCpusetPacked planned; /* empty when the plan has nothing for it */
  QpinCpusetPacked actual;  /* the kernel's affinity after our last look */
  gint cpu;
  gboolean applied; /* actual == planned, verified */
  gboolean drift;   /* found changed by someone else (enforce=report) */
  char *error;
  gint64 seen_us; /* a vCPU thread hot-added: when first seen, until pinned; else 0 */
} ThreadState;

/* Pin refusals by errno, for metrics: EPERM, ESRCH, EINVAL, anything else */
#define QPIN_PIN_ERRNOS 4

/* New vCPU thread seen -> pinned, seconds: Prometheus histogram buckets */
#define QPIN_HOTADD_BUCKETS 12
typedef struct {
  guint64 le[QPIN_HOTADD_BUCKETS]; /* cumulative: observations <= each bound */
  guint64 count;
  double sum_s;
} QpinHotaddHistogram;

struct _QpinVm {
  gint ref;
  QpinRegistry *registry; /* NULL once gone */
  QpinQmpClient *client;
  gulong closed_id, event_id;
  GPid pid;
  char *qemu_name; /* -name, NULL if unset */
  char *key;       /* unique name in the ledger */
  QpinVmState state;
  char *error;
  gboolean named;  /* query-name answered */
  gboolean placed; /* in the placer */
  gboolean shared_vcpu_thread;
  gboolean untouchable;  /* EPERM: never touched again */
  gboolean holding_main; /* qpin hotplug has moved the main thread on purpose */
  char *migrated;        /* memory=migrate: the nodes the pages were last moved to */
  char *memory;          /* what memory=migrate did, for status */
  QpinCpuset *confined;  /* what its cgroup cpuset allows, once a pin was refused */
  guint drift_repairs;   /* threads pinned back after someone else moved them */

  /* refused pins by errno, see qpin-registry-metrics.c */
  guint64 pin_errors[QPIN_PIN_ERRNOS];

  /* discovery in flight */
  guint pending;
  gboolean again;
  GPtrArray *cpus;      /* QpinQmpCpu */
  GPtrArray *iothreads; /* QpinQmpIothread */
  GError *query_error;

  GPtrArray *threads; /* QpinVmThread */
  GArray *states;     /* ThreadState, parallel to threads */
  GHashTable *logged; /* refusal messages already logged */

  QpinPeer *peer;          /* the process instance; NULL if it could not be pinned down */
  QpinLogLimit *log_limit; /* the lines this peer may cause */
  gint64 discovered_us;    /* when the last discovery started */
  gdouble tokens;          /* discoveries a new thread may start at once (DISCOVER_BURST) */
  gint64 tokens_us;        /* when they were last counted */
  gboolean again_now;      /* the discovery asked for meanwhile is for a new thread */
  gboolean born_only;      /* the discovery in flight is for a new thread: the kernel is
                            * read for new threads only (the others were read a moment ago) */
  gboolean born_next;      /* the next discovery (soon_id) is for new threads only */
  guint named_early;       /* vCPUs placed by a thread's name, not yet confirmed by QMP */
  guint soon_id;           /* a coalesced discovery, see vm_discover_soon() */
};

struct _QpinRegistry {
  QpinTopology *topo;
  QpinConfig *config;
  QpinPlacer *placer;
  QpinRegistryOptions options;
  QpinHost *host;            /* every effect on the host goes through it */
  GPtrArray *vms;            /* QpinVm, live ones */
  QpinStandby *standby;      /* monitors held but not managed: second ones, refused ones */
  QpinLogLimit *refusals;    /* the lines refused monitors cause, all of them together */
  gboolean held;             /* placement deferred: see qpin_registry_hold() */
  QpinProcEvents *events;    /* thread creation/exit in the VMs, if available */
  QpinUevents *uevents;      /* host CPUs offline/online, if watched */
  char *host_change;         /* the last CPU hotplug, while its aftermath is re-verified */
  char *ledger_path;         /* where the held CPUs are kept for a restart, or NULL */
  char *ledger_saved;        /* what was written there last */
  gint64 ledger_dirty_since; /* monotonic us of the first change not written, or 0 */
  guint ledger_idle;         /* the write waiting for the main loop to be idle */
  QpinLedgerFile *before;    /* the ledger file the previous run left */
  GHashTable *reserved;      /* placeholder in the placer -> its entry in before */
  gboolean ledger_whole;     /* before holds every running VM's CPUs: no grace needed */
  guint recheck, rechecks_left;
  guint recheck_ms, rechecks; /* HOST_RECHECK_MS, HOST_RECHECKS but in tests */
  guint timer;
  QpinRegistryHook settled, gone;
  gpointer hook_data;
  QpinHotaddHistogram hotadd; /* see qpin-registry-metrics.c */
};

/* qpin-vm.c */
void qpin_vm_clear_states (GArray *states);
QpinVm *qpin_vm_ref (QpinVm *vm);
void qpin_vm_unref (QpinVm *vm);
void qpin_vm_set_error (QpinVm *vm, QpinVmState state, const char *message);
void qpin_registry_update_watched_pids (QpinRegistry *registry);
void qpin_vm_gone (QpinVm *vm, const char *why);
void qpin_vm_name_log_limit (QpinVm *vm);
void qpin_vm_check_name (QpinVm *vm, char **name);
char *qpin_registry_unique_key (QpinRegistry *registry, const char *wanted, GPid pid);

/* qpin-discovery.c */
void qpin_registry_notify_settled (QpinRegistry *registry, QpinVm *vm);
void qpin_vm_discover (QpinVm *vm);
void qpin_vm_discover_soon (QpinVm *vm);
gboolean qpin_vm_thread_on_plan (QpinVm *vm, guint i);

/* qpin-vm-plan.c */
const QpinPlanVm *qpin_vm_plan_of (QpinVm *vm);
gboolean qpin_vm_planned_cpus (QpinVm *vm, const QpinPlanVm *plan, const QpinVmThread *t,
                               QpinCpuset *out);
QpinRequest *qpin_vm_request_of (QpinVm *vm);
gboolean qpin_vm_try_adopt (QpinVm *vm, const QpinPolicy *policy);
QpinPolicy *qpin_vm_policy_for (QpinVm *vm, GError **error);
gboolean qpin_vm_place (QpinVm *vm, GError **error);
void qpin_vm_sync_plan (QpinVm *vm);
gboolean qpin_registry_plan_degraded (const QpinPlanVm *plan);
gboolean qpin_vm_make_whole (QpinVm *vm, const char *why);
void qpin_registry_make_whole_all (QpinRegistry *registry, const char *why);
void qpin_vm_replace (QpinVm *vm, QpinPolicy *policy, const char *why);

/* qpin-vm-birth.c */
gboolean qpin_vm_pin_newborn (QpinVm *vm, GPid tid, guint index, const QpinGuestTopo *topo,
                              const char *source);
void qpin_vm_pin_cpus_early (QpinVm *vm);
void qpin_vm_discover_born (QpinVm *vm);

/* qpin-apply.c */
void qpin_vm_apply (QpinVm *vm);

/* qpin-registry-host.c */
void qpin_registry_save_ledger (QpinRegistry *registry);
void qpin_registry_flush_ledger (QpinRegistry *registry);

/* qpin-registry-ledger.c */
gboolean qpin_registry_check_ledger (QpinRegistry *registry, QpinLedgerFile *ledger,
                                     GError **error);
const QpinLedgerEntry *qpin_registry_reserved_entry (QpinRegistry *registry, const char *name);
void qpin_registry_unreserve_vm (QpinRegistry *registry, QpinVm *vm);
gboolean qpin_registry_drop_dead_reserved (QpinRegistry *registry);
void qpin_registry_readopt_reserved (QpinRegistry *registry, QpinPlacer *placer);
/* qpin-registry-metrics.c */
gint64 qpin_vm_thread_seen (QpinVm *vm, const QpinVmThread *t, const ThreadState *old);
void qpin_vm_count_pin_error (QpinVm *vm, const GError *error);
void qpin_vm_count_pinned (QpinVm *vm, const QpinVmThread *t, ThreadState *st);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinVm, qpin_vm_unref)

/* for tests: what the process events and uevents watches would say */
void qpin_registry_thread_event (QpinRegistry *registry, GPid tgid, GPid tid, gboolean created);
void qpin_registry_comm_event (GPid tgid, GPid tid, const char *comm, gpointer registry);
void qpin_registry_cpu_event (QpinRegistry *registry, guint cpu, gboolean online);
void qpin_registry_set_recheck (QpinRegistry *registry, guint interval_ms, guint times);

G_END_DECLS
