/* qpin-rates.h: rates from two samples of cumulative counters
 *
 * Pure arithmetic, unit-tested on recorded samples.  A counter that went
 * backwards (a TID reused) counts as no change.
 */
#pragma once

#include "qpin-perf.h"
#include "qpin-proc-sample.h"

G_BEGIN_DECLS

typedef struct {
  double cpu_pct;   /* user + system, % of the interval */
  double guest_pct; /* running a guest (KVM), % of the interval */
  double wait_pct;  /* runnable on a run queue, % of the interval; NAN unknown */
  double slices_per_s;
  double vcsw_per_s;       /* voluntary context switches */
  double icsw_per_s;       /* involuntary */
  double migrations_per_s; /* NAN when unknown */
} QpinThreadRates;

void qpin_rates_thread (const QpinTaskSample *prev, const QpinTaskSample *cur, gint64 interval_ns,
                        guint ticks_per_s, QpinThreadRates *out);
void qpin_rates_cpu (const QpinCpuSample *prev, const QpinCpuSample *cur, gint64 interval_ns,
                     double *busy_pct, double *irqs_per_s);
gboolean qpin_rates_pmu (const QpinPerfCounts *prev, const QpinPerfCounts *cur, double *ipc,
                         double *llc_mpki);

G_END_DECLS
