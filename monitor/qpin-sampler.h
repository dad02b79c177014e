/* qpin-sampler.h: per-thread and per-CPU statistics of managed VMs
 *
 * The caller adds the threads to watch, each with its VM and planned CPUs,
 * and calls qpin_sampler_sample() once per interval (from a GMainLoop
 * timeout: it never blocks on anything but /proc and perf reads).  Each
 * sample yields rates over the interval since the previous one and
 * cumulative totals.  A thread that vanished is marked gone, never an error.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"
#include "qpin-perf.h"
#include "qpin-rates.h"
#include "qpin-request.h"

G_BEGIN_DECLS

typedef struct _QpinSampler QpinSampler;

/* One watched thread after the last sample. */
typedef struct {
  char *vm; /* the VM's name */
  GPid pid;
  GPid tid;
  QpinThreadRole role;
  gint index;
  gboolean has_plan; /* planned is meaningful */
  QpinCpuset planned;

  gboolean gone;  /* it vanished: no more samples */
  gboolean valid; /* rates below hold (two samples so far) */
  char comm[16];
  gint cpu; /* CPU it last ran on; -1 unknown */
  QpinCpuset affinity;
  QpinThreadRates rates;
  gboolean off_plan;     /* ran or may run on a CPU outside planned */
  gboolean sibling_busy; /* an SMT sibling of its CPU ran another VM's thread */
  gboolean noise;        /* its dedicated CPU spent >= 10 % on something else */
  double ipc;            /* NAN without a PMU */
  double llc_mpki;       /* NAN without a PMU */
  /* cumulative since the thread started */
  guint64 total_cpu_ns;
  guint64 total_wait_ns;
  guint64 total_ctx_switches;
  guint64 total_migrations;
  guint64 total_guest_ns;
  guint64 total_vcsw; /* voluntary context switches */
  guint64 total_icsw; /* involuntary */
  gboolean has_wait;  /* total_wait_ns holds (schedstat) */
  gboolean has_migrations;
  gboolean has_pmu; /* the totals below hold: counted since the group opened */
  guint64 total_cycles;
  guint64 total_instructions;
  guint64 total_llc_misses;
} QpinThreadStats;

/* One host CPU after the last sample. */
typedef struct {
  gint cpu;
  double busy_pct;
  double irqs_per_s;
  char *owner;      /* "vm", "vm/vcpu 0", "shared" or NULL: who the plan gives it to */
  double noise_pct; /* busy time not spent by its one owner thread; NAN if not dedicated */

  /* cumulative since boot */
  double total_busy_s;
  guint64 total_irqs;
} QpinCpuStats;

/* A VM's CPU split over the interval. */
typedef struct {
  double cpu_pct;
  double by_role[QPIN_ROLE_OTHER + 1];
} QpinVmTotals;

QpinSampler *qpin_sampler_new (const char *root_dir);
void qpin_sampler_free (QpinSampler *sampler);
void qpin_sampler_set_perf (QpinSampler *sampler, const QpinPerfOps *ops, gpointer data);
void qpin_sampler_set_ticks_per_s (QpinSampler *sampler, guint ticks_per_s);
void qpin_sampler_add_thread (QpinSampler *sampler, const char *vm, GPid pid, GPid tid,
                              QpinThreadRole role, gint index, const QpinCpuset *planned);
void qpin_sampler_remove_thread (QpinSampler *sampler, GPid tid);
void qpin_sampler_keep_only (QpinSampler *sampler, GHashTable *keep);
gboolean qpin_sampler_has_thread (QpinSampler *sampler, GPid tid);
const QpinThreadStats *qpin_sampler_lookup (QpinSampler *sampler, GPid tid);
gboolean qpin_sampler_sample (QpinSampler *sampler, gint64 now_ns, GError **error);
GPtrArray *qpin_sampler_get_threads (QpinSampler *sampler);
GArray *qpin_sampler_get_cpus (QpinSampler *sampler);
double qpin_sampler_get_host_busy_pct (QpinSampler *sampler);
gint64 qpin_sampler_get_interval_ns (QpinSampler *sampler);
const char *qpin_sampler_get_pmu_note (QpinSampler *sampler);
void qpin_sampler_vm_totals (QpinSampler *sampler, GPid pid, QpinVmTotals *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinSampler, qpin_sampler_free)

G_END_DECLS
