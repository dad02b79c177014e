/* qpin-policy.h: placement policy (doc/design.md §4.3) and its configuration
 *
 * A QpinPolicy is what one VM asks for.  A QpinConfig holds the
 * [defaults] group, the [vm:NAME] groups and the --policy KEY=VALUE
 * overrides of a GKeyFile; qpin_config_policy_for() merges them for one VM
 * (defaults < [vm:NAME] < overrides).  Parsing is pure: the caller reads
 * the file and passes its text with the file name used in messages.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-topology.h"

G_BEGIN_DECLS

typedef enum { QPIN_CPUS_DEDICATED, QPIN_CPUS_SHARED, QPIN_CPUS_MANUAL } QpinCpusMode;
typedef enum { QPIN_NUMA_PREFER, QPIN_NUMA_STRICT, QPIN_NUMA_SPREAD } QpinNumaMode;
typedef enum { QPIN_SMT_PREFER, QPIN_SMT_ISOLATE, QPIN_SMT_REQUIRE } QpinSmtMode;
typedef enum { QPIN_AUX_SHARE, QPIN_AUX_ISOLATE, QPIN_AUX_HOUSEKEEPING } QpinAuxMode;
typedef enum { QPIN_OVERCOMMIT_REFUSE, QPIN_OVERCOMMIT_SHARE } QpinOvercommit;
typedef enum { QPIN_MEMORY_NONE, QPIN_MEMORY_MIGRATE } QpinMemoryMode;
typedef enum { QPIN_SCHED_OTHER, QPIN_SCHED_FIFO, QPIN_SCHED_RR } QpinSchedMode;
typedef enum { QPIN_IRQS_LEAVE, QPIN_IRQS_AVOID } QpinIrqMode;
/* Which kind of CPU (hybrid hosts) a VM's dedicated vCPUs want: the fastest
 * kind that holds the VM whole, the most efficient one, or no preference. */
typedef enum { QPIN_KIND_FAST, QPIN_KIND_EFFICIENT, QPIN_KIND_ANY } QpinKindMode;

/* One manual pin: vCPU @vcpu on @cpus. */
typedef struct {
  guint vcpu;
  QpinCpuset cpus;
} QpinManualPin;

typedef struct {
  QpinCpusMode cpus;
  QpinNumaMode numa;
  QpinSmtMode smt;
  QpinAuxMode emulator;
  QpinAuxMode iothreads;
  QpinOvercommit overcommit;
  QpinMemoryMode memory;
  QpinSchedMode sched;
  guint sched_priority; /* 1-99 for fifo/rr */
  QpinCpuset reserved;  /* host-wide: set in [defaults] or --policy only, so every VM
                           sees the same set */
  QpinIrqMode irqs;     /* host-wide too: device IRQs off held CPUs (avoid) or not */
  QpinKindMode kind;    /* hybrid hosts: fast, efficient or any kind of CPU */
  GArray *cpumap;       /* QpinManualPin, for cpus=manual; may be NULL */
  QpinCpuset *cpuset;   /* the only host CPUs the VM may use (libvirt's <vcpu cpuset>, or
                           what its cgroup allows); NULL: any */
} QpinPolicy;

QpinPolicy *qpin_policy_new (void);
QpinPolicy *qpin_policy_copy (const QpinPolicy *policy);
void qpin_policy_free (QpinPolicy *policy);
gboolean qpin_policy_set (QpinPolicy *policy, const char *key, const char *value, GError **error);
void qpin_policy_set_cpuset (QpinPolicy *policy, const QpinCpuset *cpuset);
char *qpin_policy_get (const QpinPolicy *policy, const char *key);
const char *const *qpin_policy_keys (void);
const char *const *qpin_config_daemon_keys (void);
gboolean qpin_policy_check (const QpinPolicy *policy, const QpinTopology *topo, const char *vm_name,
                            GError **error);

typedef struct _QpinConfig QpinConfig;

/* The largest config file read: far above any real one (a VM group is a
 * few hundred bytes), far below what hurts to read. */
#define QPIN_CONFIG_MAX_BYTES (4 * 1024 * 1024)

QpinConfig *qpin_config_new (void);
void qpin_config_free (QpinConfig *config);
gboolean qpin_config_load_data (QpinConfig *config, const char *data, const char *filename,
                                GError **error);
gboolean qpin_config_load_file (QpinConfig *config, const char *path, GError **error);
gboolean qpin_config_add_override (QpinConfig *config, const char *key_value, GError **error);
QpinPolicy *qpin_config_policy_for (const QpinConfig *config, const char *vm_name, GError **error);
gboolean qpin_config_check (const QpinConfig *config, const QpinTopology *topo, GError **error);
void qpin_config_get_allowed (const QpinConfig *config, const GArray **uids, const GArray **gids);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinPolicy, qpin_policy_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinConfig, qpin_config_free)

G_END_DECLS
