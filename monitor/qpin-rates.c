/* qpin-rates.c: rates from two samples */
#define G_LOG_DOMAIN "qpin-monitor"

#include "qpin-rates.h"

#include <math.h>

static guint64
delta (guint64 prev, guint64 cur)
{
  return cur >= prev ? cur - prev : 0;
}

static double
pct (double part_ns, gint64 interval_ns)
{
  return interval_ns > 0 ? 100.0 * part_ns / (double) interval_ns : 0.0;
}

static double
per_s (guint64 count, gint64 interval_ns)
{
  return interval_ns > 0 ? (double) count * 1e9 / (double) interval_ns : 0.0;
}

/**
 * qpin_rates_thread:
 * @ticks_per_s: USER_HZ, the unit of stat's utime/stime/guest_time
 *
 * CPU time comes from schedstat's nanoseconds when both samples have it,
 * else from stat's clock ticks.
 */
void
qpin_rates_thread (const QpinTaskSample *prev, const QpinTaskSample *cur, gint64 interval_ns,
                   guint ticks_per_s, QpinThreadRates *out)
{
  double tick_ns = ticks_per_s ? 1e9 / ticks_per_s : 1e7;
  gboolean sched = prev->has_schedstat && cur->has_schedstat;
  double run_ns;

  if (sched)
    run_ns = (double) delta (prev->run_ns, cur->run_ns);
  else
    run_ns
      = (double) delta (prev->utime_ticks + prev->stime_ticks, cur->utime_ticks + cur->stime_ticks)
        * tick_ns;
  out->cpu_pct = pct (run_ns, interval_ns);
  /* ticks are coarse: one tick more than the interval held is rounding */
  out->guest_pct = MIN (
    pct ((double) delta (prev->guest_ticks, cur->guest_ticks) * tick_ns, interval_ns), 100.0);
  out->wait_pct = sched ? pct ((double) delta (prev->wait_ns, cur->wait_ns), interval_ns) : NAN;
  out->slices_per_s = sched ? per_s (delta (prev->slices, cur->slices), interval_ns) : NAN;
  out->vcsw_per_s = per_s (delta (prev->vcsw, cur->vcsw), interval_ns);
  out->icsw_per_s = per_s (delta (prev->icsw, cur->icsw), interval_ns);
  out->migrations_per_s = prev->has_migrations && cur->has_migrations
                            ? per_s (delta (prev->migrations, cur->migrations), interval_ns)
                            : NAN;
}

/**
 * qpin_rates_cpu:
 *
 * Busy share from /proc/stat ticks (a ratio, so USER_HZ cancels out),
 * interrupts per second over @interval_ns.
 */
void
qpin_rates_cpu (const QpinCpuSample *prev, const QpinCpuSample *cur, gint64 interval_ns,
                double *busy_pct, double *irqs_per_s)
{
  guint64 total = delta (prev->total_ticks, cur->total_ticks);

  *busy_pct
    = total ? 100.0 * (double) delta (prev->busy_ticks, cur->busy_ticks) / (double) total : 0.0;
  *irqs_per_s = per_s (delta (prev->irqs, cur->irqs), interval_ns);
}

static double
scaled (guint64 value, const QpinPerfCounts *c)
{
  /* a multiplexed group ran only part of the time it was enabled */
  return c->running_ns ? (double) value * (double) c->enabled_ns / (double) c->running_ns : 0.0;
}

/**
 * qpin_rates_pmu:
 *
 * IPC and last-level-cache misses per 1,000 instructions over the
 * interval, each reading scaled by enabled/running time first.
 *
 * Returns: %FALSE (outputs untouched) when the group never ran or
 *   counted no cycles or instructions in the interval
 */
gboolean
qpin_rates_pmu (const QpinPerfCounts *prev, const QpinPerfCounts *cur, double *ipc,
                double *llc_mpki)
{
  double cycles = scaled (cur->cycles, cur) - scaled (prev->cycles, prev);
  double instructions = scaled (cur->instructions, cur) - scaled (prev->instructions, prev);
  double misses = scaled (cur->llc_misses, cur) - scaled (prev->llc_misses, prev);

  if (cur->running_ns == 0 || cycles <= 0 || instructions <= 0)
    return FALSE;
  *ipc = instructions / cycles;
  *llc_mpki = MAX (misses, 0.0) * 1000.0 / instructions;
  return TRUE;
}
