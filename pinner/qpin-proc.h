/* qpin-proc.h: the kernel's view of a process's threads (/proc, sched_*) */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"

G_BEGIN_DECLS

#define QPIN_PINNER_ERROR (qpin_pinner_error_quark ())
GQuark qpin_pinner_error_quark (void);

typedef enum {
  QPIN_PINNER_ERROR_GONE,       /* ESRCH: the process or thread no longer exists */
  QPIN_PINNER_ERROR_FOREIGN,    /* a TID that is not a thread of the VM's process */
  QPIN_PINNER_ERROR_PERMISSION, /* EPERM */
  QPIN_PINNER_ERROR_INVALID,    /* EINVAL: no usable CPU in the mask */
  QPIN_PINNER_ERROR_FAILED,
} QpinPinnerError;

typedef struct {
  GPid tid;
  char comm[16];       /* thread name, as /proc/.../comm shows it */
  gint cpu;            /* CPU it last ran on (stat field 39) */
  QpinCpuset affinity; /* sched_getaffinity */
  guint64 cpu_time_ns; /* utime + stime */
} QpinTaskInfo;

GArray *qpin_proc_list_tasks (GPid pid, GError **error);
gboolean qpin_proc_task_belongs (GPid pid, GPid tid);
GPid qpin_proc_tgid_of (GPid tid);
gboolean qpin_proc_read_task (GPid pid, GPid tid, QpinTaskInfo *out, GError **error);
gint qpin_proc_last_cpu (GPid pid, GPid tid);
gboolean qpin_proc_get_affinity (GPid tid, QpinCpuset *out, GError **error);

G_END_DECLS
