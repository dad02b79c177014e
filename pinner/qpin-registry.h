/* qpin-registry.h: the VMs qpin manages, their plans and their pins
 *
 * One registry per qpin process (attach: one VM; daemon: many).  It owns
 * the live topology, the configuration and the placer (whose ledger makes
 * dedicated CPUs exclusive across every VM here).  For each VM it
 * discovers the threads over QMP and /proc, places them, pins them with
 * sched_setaffinity, verifies, and keeps them pinned: it re-queries on
 * QMP events that mean the vCPU set changed, on a reconcile timer (CPU
 * hot-add has no event), and repairs drift.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-host.h"
#include "qpin-placer.h"
#include "qpin-policy.h"
#include "qpin-qmp-client.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

typedef enum {
  QPIN_ENFORCE_REPAIR, /* drift is logged and pinned back */
  QPIN_ENFORCE_REPORT, /* drift is logged and shown in status */
  QPIN_ENFORCE_OFF,    /* drift is not looked for */
} QpinEnforce;

typedef struct {
  gboolean dry_run;  /* plan and record on a recording host, never pin */
  guint timeout_ms;  /* per QMP command */
  guint interval_ms; /* reconcile timer; 0: none */
  QpinEnforce enforce;
  gboolean check_owner; /* the daemon: manage only allowed owners' QEMUs ([daemon] allow_*) */
} QpinRegistryOptions;

typedef enum {
  QPIN_VM_DISCOVERING, /* threads not known yet */
  QPIN_VM_PINNED,      /* every thread pinned and verified */
  QPIN_VM_DEGRADED,    /* placed, but some thread could not be pinned as planned */
  QPIN_VM_FAILED,      /* nothing pinned: no fit, untrusted peer, no permission */
  QPIN_VM_GONE,        /* the QEMU exited or its monitor closed */
  QPIN_VM_PLANNED,     /* dry run: placed and planned, nothing pinned */
} QpinVmState;

typedef struct _QpinRegistry QpinRegistry;
typedef struct _QpinVm QpinVm;

typedef void (*QpinRegistryHook) (QpinRegistry *registry, QpinVm *vm, gpointer user_data);

QpinRegistry *qpin_registry_new (QpinTopology *topo, QpinConfig *config,
                                 const QpinRegistryOptions *options, GError **error);
QpinRegistry *qpin_registry_new_with_host (QpinTopology *topo, QpinConfig *config,
                                           const QpinRegistryOptions *options, QpinHost *host,
                                           GError **error);
void qpin_registry_free (QpinRegistry *registry);
void qpin_registry_set_hooks (QpinRegistry *registry, QpinRegistryHook settled,
                              QpinRegistryHook gone, gpointer user_data);
gboolean qpin_registry_reload (QpinRegistry *registry, QpinConfig *config, GError **error);
gboolean qpin_registry_watch_threads (QpinRegistry *registry, GError **error);
QpinVm *qpin_registry_find_vm (QpinRegistry *registry, const char *name);
void qpin_registry_hotplug_async (QpinRegistry *registry, const char *name, gboolean add,
                                  guint count, GAsyncReadyCallback callback, gpointer user_data);
JsonNode *qpin_registry_hotplug_finish (GAsyncResult *result, GError **error);
gboolean qpin_registry_watch_host (QpinRegistry *registry, GError **error);
gboolean qpin_registry_keep_ledger (QpinRegistry *registry, const char *path, GError **error);
gboolean qpin_registry_ledger_is_whole (QpinRegistry *registry);
void qpin_registry_hold (QpinRegistry *registry);
void qpin_registry_release (QpinRegistry *registry);
QpinVm *qpin_registry_add (QpinRegistry *registry, QpinQmpClient *client, GPid pid);
guint qpin_registry_n_vms (QpinRegistry *registry);
void qpin_registry_verify (QpinRegistry *registry);
JsonNode *qpin_registry_to_json (QpinRegistry *registry);
char *qpin_registry_to_table (QpinRegistry *registry);
const QpinTopology *qpin_registry_get_topology (QpinRegistry *registry);

QpinVmState qpin_vm_get_state (QpinVm *vm);
const char *qpin_vm_get_error (QpinVm *vm);
const char *qpin_vm_state_to_string (QpinVmState state);
GPid qpin_vm_get_pid (QpinVm *vm);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinRegistry, qpin_registry_free)

G_END_DECLS
