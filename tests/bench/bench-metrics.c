/* bench-metrics.c: one /metrics scrape's cost for 200 VMs x 4 threads
 *
 * bench-sampler's setup; each run is what a scrape does besides the
 * registry's few lines per VM: a sample, then the thread and CPU series
 * rendered.  At one scrape a second it must stay under 2 % of a CPU.
 *
 * Starts 200 idle processes of 4 idle threads and watches them as 200 VMs of
 * 4 threads (vCPU 0-2 and an emulator, each with a one-CPU plan), with
 * the real /proc and real perf_event_open (no PMU here: the note path).
 * Prints the CPU time one sample costs and what that is as a share of one
 * CPU at one sample a second; prints whether that
 * target is met (a measurement, not a timed assertion).
 *
 *   meson test -C build bench-metrics --verbose
 */
#include <glib.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "qpin-metrics.h"
#include "qpin-test-bench.h"

#define N_VMS 200
#define N_THREADS 4
#define RUNS 10

static double
cpu_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

int
main (void)
{
  g_autoptr (QpinSampler) sampler = qpin_sampler_new (NULL);
  g_autoptr (QpinTestIdleThreads) idle = qpin_test_idle_threads_add (sampler, N_VMS, N_THREADS);
  double start, per_sample_ms, share;
  gsize bytes = 0;

  g_assert_cmpuint (idle->n, ==, N_VMS * N_THREADS);
  /* the first sample opens the perf groups (or learns there is no PMU) */
  g_assert_true (qpin_sampler_sample (sampler, g_get_monotonic_time () * 1000, NULL));
  start = cpu_ms ();
  for (guint r = 0; r < RUNS; r++)
    {
      g_autoptr (GString) out = g_string_sized_new (16384);

      g_usleep (100000);
      g_assert_true (qpin_sampler_sample (sampler, g_get_monotonic_time () * 1000, NULL));
      qpin_metrics_write_threads (sampler, out);
      qpin_metrics_write_cpus (sampler, out);
      bytes = out->len;
    }
  per_sample_ms = (cpu_ms () - start) / RUNS;
  share = per_sample_ms / 1000.0 * 100.0;
  for (guint i = 0; i < qpin_sampler_get_threads (sampler)->len; i++)
    g_assert_true (
      ((QpinThreadStats *) g_ptr_array_index (qpin_sampler_get_threads (sampler), i))->valid);

  printf ("metrics: %u threads (%u VMs x %u), %.1f ms CPU per scrape (%zu bytes) = %.2f %% of "
          "one CPU at 1 Hz (target 2 %%: %s)\n",
          N_VMS * N_THREADS, N_VMS, N_THREADS, per_sample_ms, bytes, share,
          share < 2.0 ? "met" : "MISSED");
  printf ("metrics: pmu: %s\n", qpin_sampler_get_pmu_note (sampler)
                                  ? qpin_sampler_get_pmu_note (sampler)
                                  : "hardware counters open");
  return 0;
}
