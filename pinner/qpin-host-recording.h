/* qpin-host-recording.h: a host seam that keeps threads in memory
 *
 * Alone, it is the kernel for the registry's tests: processes and their
 * threads with an affinity each, which pins change; a thread can be told
 * to refuse pins (EPERM, ESRCH, EINVAL), a process to be confined to a
 * cgroup cpuset (pins outside it are narrowed, or refused with EINVAL).
 * Laid over another host (a dry run over the real one), it reads from
 * that host and only records what it is asked to change.
 */
#pragma once

#include "qpin-host.h"

G_BEGIN_DECLS

QpinHost *qpin_host_recording_new (QpinHost *below);
void qpin_host_recording_set_topology_root (QpinHost *host, const char *root);
void qpin_host_recording_add_process (QpinHost *host, GPid pid, const QpinCpuset *affinity);
void qpin_host_recording_add_thread (QpinHost *host, GPid pid, GPid tid,
                                     const QpinCpuset *affinity);
void qpin_host_recording_remove_thread (QpinHost *host, GPid tid);
void qpin_host_recording_remove_process (QpinHost *host, GPid pid);
void qpin_host_recording_reuse_pid (QpinHost *host, GPid pid);
gboolean qpin_host_recording_get_affinity (QpinHost *host, GPid tid, QpinCpuset *out);
void qpin_host_recording_set_affinity (QpinHost *host, GPid tid, const QpinCpuset *cpus);
void qpin_host_recording_fail (QpinHost *host, GPid tid, int err);
void qpin_host_recording_confine (QpinHost *host, GPid pid, const QpinCpuset *allowed);
void qpin_host_recording_cpu_offline (QpinHost *host, guint cpu, const QpinCpuset *online);
const char *qpin_host_recording_get_log (QpinHost *host);
void qpin_host_recording_clear_log (QpinHost *host);

G_END_DECLS
