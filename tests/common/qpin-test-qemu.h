/* qpin-test-qemu.h: start real QEMUs and run the qpin binary in tests */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "qpin-cpuset.h"
#include "qpin-qmp-types.h"

typedef struct {
  GSubprocess *process;
  GPid pid;
  char *dir;
  char *qmp_path; /* the -qmp unix socket in dir, or NULL */
} QpinTestQemu;

QpinTestQemu *qpin_test_qemu_start (const char *accel, const char *const *extra_args,
                                    gboolean unix_qmp);
void qpin_test_qemu_free (QpinTestQemu *qemu);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTestQemu, qpin_test_qemu_free)

const char *qpin_test_qpin_binary (void);
int qpin_test_run_qpin (const char *const *args, char **out, char **err);
GArray *qpin_test_list_tasks (GPid pid);
char *qpin_test_affinity_of (GPid tid);

/* A background qpin process (daemon, attach without --once). */
typedef struct {
  GSubprocess *process;
  GPid pid;
  char *log_path;
} QpinTestQpin;

QpinTestQpin *qpin_test_qpin_spawn (const char *const *args);
void qpin_test_qpin_free (QpinTestQpin *q);
char *qpin_test_qpin_log (QpinTestQpin *q);
int qpin_test_qpin_wait (QpinTestQpin *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTestQpin, qpin_test_qpin_free)

JsonNode *qpin_test_status (const char *control_path);
JsonObject *qpin_test_find_vm (JsonNode *status, GPid pid);
gboolean qpin_test_vm_has_note (JsonObject *vm, const char *note);
gboolean qpin_test_wait_daemon (const char *control_path, guint timeout_ms);
gboolean qpin_test_wait_for (gboolean (*check) (gpointer), gpointer data, guint timeout_ms);
GArray *qpin_test_vcpu_tids (GPid pid);
char *qpin_test_vcpu_affinity (GPid pid);
JsonObject *qpin_test_device_add_args (const QpinQmpHotpluggableCpu *slot, const char *id);
void qpin_test_qemu_add_vcpus (const char *monitor, guint count);
void qpin_test_assert_threads_untouched (JsonArray *threads, const char *online);
guint qpin_test_count_fds (GPid pid);
guint qpin_test_settled_fds (GPid pid);

/* A cpuset cgroup of its own (cgroup v1 cpuset hierarchy, or cgroup2 with
 * the cpuset controller), allowing only @cpus; removed, its processes
 * gone, by qpin_test_cgroup_free(). */
typedef struct {
  char *path;
} QpinTestCgroup;

QpinTestCgroup *qpin_test_cgroup_new (const char *cpus);
void qpin_test_cgroup_add (QpinTestCgroup *cgroup, GPid pid);
void qpin_test_cgroup_free (QpinTestCgroup *cgroup);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTestCgroup, qpin_test_cgroup_free)
