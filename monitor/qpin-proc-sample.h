/* qpin-proc-sample.h: raw counters of one thread and of the host CPUs
 *
 * Readers of /proc under a root directory ("/" on a live host, a recorded
 * tree in tests).  They parse untrusted text strictly: a field that is
 * missing or not a number is an error naming file and field; a thread that
 * vanished is QPIN_MONITOR_ERROR_GONE.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"

G_BEGIN_DECLS

#define QPIN_MONITOR_ERROR (qpin_monitor_error_quark ())
GQuark qpin_monitor_error_quark (void);

typedef enum {
  QPIN_MONITOR_ERROR_GONE,    /* the thread or process no longer exists */
  QPIN_MONITOR_ERROR_PARSE,   /* a /proc file that does not read as expected */
  QPIN_MONITOR_ERROR_NO_PMU,  /* perf: no hardware counters on this host */
  QPIN_MONITOR_ERROR_REFUSED, /* perf: EACCES/EPERM (perf_event_paranoid) */
  QPIN_MONITOR_ERROR_FAILED,
} QpinMonitorError;

/* One thread at one instant; all counters cumulative since it started. */
typedef struct {
  char comm[16];
  gint cpu;            /* CPU it last ran on (stat field 39) */
  guint64 utime_ticks; /* stat fields 14 and 15, clock ticks */
  guint64 stime_ticks;
  guint64 guest_ticks;    /* stat field 43: time running a guest (KVM) */
  gboolean has_schedstat; /* schedstat: run_ns wait_ns slices */
  guint64 run_ns;
  guint64 wait_ns; /* time runnable but waiting on a run queue */
  guint64 slices;
  guint64 vcsw;            /* status: voluntary_ctxt_switches */
  guint64 icsw;            /* status: nonvoluntary_ctxt_switches */
  gboolean has_migrations; /* sched: se.nr_migrations (CONFIG_SCHED_DEBUG) */
  guint64 migrations;
  QpinCpuset affinity; /* status: Cpus_allowed_list (or sched_getaffinity) */
} QpinTaskSample;

/* One host CPU at one instant, from /proc/stat and /proc/interrupts. */
typedef struct {
  gboolean present;
  guint64 busy_ticks;  /* user nice system irq softirq steal */
  guint64 total_ticks; /* busy + idle + iowait */
  guint64 irqs;
} QpinCpuSample;

int qpin_task_dir_open (const char *root, GPid pid);
gboolean qpin_task_sample_read (int task_dir, const char *root, GPid pid, GPid tid,
                                QpinTaskSample *out, GError **error);
gboolean qpin_task_sample_parse_stat (const char *text, QpinTaskSample *out, GError **error);
gboolean qpin_task_sample_parse_status (const char *text, QpinTaskSample *out, GError **error);
gboolean qpin_task_sample_parse_schedstat (const char *text, QpinTaskSample *out, GError **error);
gboolean qpin_task_sample_parse_sched (const char *text, QpinTaskSample *out);

GArray *qpin_cpu_samples_read (const char *root, GError **error);
gboolean qpin_cpu_samples_parse_stat (const char *text, GArray *cpus, GError **error);
gboolean qpin_cpu_samples_parse_interrupts (const char *text, GArray *cpus, GError **error);

G_END_DECLS
