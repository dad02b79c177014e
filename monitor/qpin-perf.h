/* qpin-perf.h: hardware counters of one thread, behind a seam
 *
 * One perf group per thread: cycles (leader), instructions, last-level
 * cache misses, read with the times the group was enabled and running so
 * a multiplexed group can be scaled; and where /proc has no migration
 * count, a software counter of migrations.  The real implementation calls
 * perf_event_open(2); tests put a fake behind the same table.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  guint64 cycles;
  guint64 instructions;
  guint64 llc_misses;
  guint64 enabled_ns;
  guint64 running_ns;
} QpinPerfCounts;

typedef struct {
  /* Returns: a handle, or NULL with QPIN_MONITOR_ERROR_GONE (ESRCH),
   * _NO_PMU (ENOENT, ENODEV, EOPNOTSUPP) or _REFUSED (EACCES, EPERM). */
  gpointer (*open) (GPid tid, gpointer data, GError **error);
  gboolean (*read) (gpointer handle, QpinPerfCounts *out, gpointer data, GError **error);
  /* A software counter of the thread's migrations between CPUs, for a
   * kernel without /proc/PID/task/TID/sched; works without a PMU. */
  gpointer (*open_migrations) (GPid tid, gpointer data, GError **error);
  gboolean (*read_migrations) (gpointer handle, guint64 *out, gpointer data, GError **error);
  /* closes either kind of handle */
  void (*close) (gpointer handle, gpointer data);
} QpinPerfOps;

const QpinPerfOps *qpin_perf_real_ops (void);

G_END_DECLS
