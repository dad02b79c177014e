/* test-sampler.c: the sampler's readers, rates and flags on recorded /proc trees,
 * and once on the live host */
#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qpin-proc-sample.h"
#include "qpin-test-tree.h"
#include "qpin-rates.h"
#include "qpin-sampler.h"

#define SEC G_GINT64_CONSTANT (1000000000)

/* The comm may hold spaces and ')': fields count from the last ')'. */
static void
test_parse_stat (void)
{
  g_autofree char *good = stat_line (7, "CPU 0/KVM) x", 120, 30, 3, 100);
  g_autofree char *cut = g_strdup ("7 (CPU 0/KVM) R 1 2 3\n");
  g_autofree char *bad = stat_line (7, "x", 1, 2, 3, 4);
  QpinTaskSample s = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_true (qpin_task_sample_parse_stat (good, &s, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (s.comm, ==, "CPU 0/KVM) x");
  g_assert_cmpuint (s.utime_ticks, ==, 120);
  g_assert_cmpuint (s.stime_ticks, ==, 30);
  g_assert_cmpint (s.cpu, ==, 3);
  g_assert_cmpuint (s.guest_ticks, ==, 100);

  g_assert_false (qpin_task_sample_parse_stat (cut, &s, &error));
  g_assert_cmpstr (error->message, ==, "stat: 4 fields after comm, expected at least 41");
  g_clear_error (&error);

  /* utime is field 14: the 12th token after the comm */
  bad[strlen ("7 (x) R 0 0 0 0 0 0 0 0 0 0 ")] = 'z';
  g_assert_false (qpin_task_sample_parse_stat (bad, &s, &error));
  g_assert_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE);
  g_assert_nonnull (strstr (error->message, "field 'utime' is not a number"));
  g_clear_error (&error);

  g_assert_false (qpin_task_sample_parse_stat ("no comm here", &s, &error));
  g_assert_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE);
}

/* status, schedstat and sched: exact fields, strict numbers. */
static void
test_parse_status (void)
{
  QpinTaskSample s = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *aff = NULL;

  g_assert_true (qpin_task_sample_parse_status ("Name:\tx\nCpus_allowed_list:\t1,3-4\n"
                                                "voluntary_ctxt_switches:\t10\n"
                                                "nonvoluntary_ctxt_switches:\t5\n",
                                                &s, &error));
  g_assert_no_error (error);
  aff = qpin_cpuset_format (&s.affinity);
  g_assert_cmpstr (aff, ==, "1,3-4");
  g_assert_cmpuint (s.vcsw, ==, 10);
  g_assert_cmpuint (s.icsw, ==, 5);

  g_assert_false (qpin_task_sample_parse_status ("voluntary_ctxt_switches:\t-1\n", &s, &error));
  g_assert_cmpstr (error->message, ==,
                   "status: field 'voluntary_ctxt_switches' is not a number: '-1'");
  g_clear_error (&error);

  g_assert_true (qpin_task_sample_parse_schedstat ("500 200 7\n", &s, &error));
  g_assert_cmpuint (s.run_ns, ==, 500);
  g_assert_cmpuint (s.wait_ns, ==, 200);
  g_assert_cmpuint (s.slices, ==, 7);
  g_assert_false (qpin_task_sample_parse_schedstat ("500 200\n", &s, &error));
  g_assert_cmpstr (error->message, ==, "schedstat: 2 fields, expected 3");
  g_clear_error (&error);

  /* only migrations: the context switches stay status's */
  g_assert_false (
    qpin_task_sample_parse_sched ("x (1, #threads: 1)\n---\nse.nr_migrations   :   42\n", &s));
  g_assert_true (s.has_migrations);
  g_assert_cmpuint (s.migrations, ==, 42);
  g_assert_cmpuint (s.vcsw, ==, 10);
  g_assert_true (qpin_task_sample_parse_sched ("x (1, #threads: 1)\n---\n"
                                               "se.nr_migrations : 43\n"
                                               "nr_switches : 9\n"
                                               "nr_voluntary_switches : 7\n"
                                               "nr_involuntary_switches : 2\n",
                                               &s));
  g_assert_cmpuint (s.migrations, ==, 43);
  g_assert_cmpuint (s.vcsw, ==, 7);
  g_assert_cmpuint (s.icsw, ==, 2);
  /* a number that is not one leaves the count unknown */
  g_assert_false (
    qpin_task_sample_parse_sched ("x\nse.nr_migrations : -1\nnr_voluntary_switches : 1\n", &s));
  g_assert_false (s.has_migrations);
}

/* /proc/stat busy ticks and /proc/interrupts columns, ERR rows with one count. */
static void
test_parse_host (void)
{
  g_autoptr (GArray) cpus = g_array_new (FALSE, TRUE, sizeof (QpinCpuSample));
  g_autoptr (GError) error = NULL;
  QpinCpuSample *c1;

  g_assert_true (qpin_cpu_samples_parse_stat ("cpu  9 9 9 9 9 9 9 9 0 0\n"
                                              "cpu0 10 0 5 80 5 0 0 0 0 0\n"
                                              "cpu1 1 2 3 4 5 6 7 8 0 0\nintr 5\n",
                                              cpus, &error));
  g_assert_no_error (error);
  g_assert_true (qpin_cpu_samples_parse_interrupts ("           CPU0       CPU1\n"
                                                    " 24:   3   4  IO-APIC 5-edge ACPI\n"
                                                    "LOC:  10  20  Local timer interrupts\n"
                                                    "ERR:   9\n",
                                                    cpus, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (cpus->len, ==, 2);
  /* busy = user nice system irq softirq steal; total adds idle and iowait */
  g_assert_cmpuint (g_array_index (cpus, QpinCpuSample, 0).busy_ticks, ==, 15);
  g_assert_cmpuint (g_array_index (cpus, QpinCpuSample, 0).total_ticks, ==, 100);
  c1 = &g_array_index (cpus, QpinCpuSample, 1);
  g_assert_cmpuint (c1->busy_ticks, ==, 1 + 2 + 3 + 6 + 7 + 8);
  /* ERR's one count goes to the first column: 3 + 10 + 9 and 4 + 20 */
  g_assert_cmpuint (g_array_index (cpus, QpinCpuSample, 0).irqs, ==, 22);
  g_assert_cmpuint (c1->irqs, ==, 24);

  g_assert_false (qpin_cpu_samples_parse_stat ("cpu0 1 2 x 4 5 6 7 8\n", cpus, &error));
  g_assert_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_PARSE);
  g_clear_error (&error);
  g_assert_false (qpin_cpu_samples_parse_interrupts ("  CPU0 GPU1\n", cpus, &error));
  g_assert_cmpstr (error->message, ==, "/proc/interrupts: header column 'GPU1' is not 'CPUn'");
}

/* Recorded samples one second apart: each rate is the counter's delta over 1 s. */
static void
test_rates (void)
{
  QpinTaskSample a = { .utime_ticks = 100,
                       .stime_ticks = 0,
                       .guest_ticks = 50,
                       .has_schedstat = TRUE,
                       .run_ns = 1 * SEC,
                       .wait_ns = 0,
                       .slices = 10,
                       .vcsw = 5,
                       .icsw = 5,
                       .has_migrations = TRUE,
                       .migrations = 3 };
  QpinTaskSample b = a;
  QpinThreadRates r;
  QpinPerfCounts p0 = { 0 }, p1;
  double ipc = 0, mpki = 0;

  b.run_ns += SEC * 3 / 4; /* 75 % */
  b.wait_ns += SEC / 4;    /* 25 % */
  b.guest_ticks += 60;     /* 60 ticks of 10 ms: 60 % */
  b.slices += 100;
  b.vcsw += 30;
  b.icsw += 12;
  b.migrations += 2;
  qpin_rates_thread (&a, &b, SEC, 100, &r);
  g_assert_cmpfloat_with_epsilon (r.cpu_pct, 75.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.wait_pct, 25.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.guest_pct, 60.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.slices_per_s, 100.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.vcsw_per_s, 30.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.icsw_per_s, 12.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.migrations_per_s, 2.0, 1e-9);

  /* without schedstat: ticks; wait and migrations unknown; a counter going back counts 0 */
  a.has_schedstat = b.has_schedstat = FALSE;
  b.has_migrations = FALSE;
  b.utime_ticks = a.utime_ticks + 20;
  b.vcsw = 0;
  qpin_rates_thread (&a, &b, 2 * SEC, 100, &r);
  g_assert_cmpfloat_with_epsilon (r.cpu_pct, 10.0, 1e-9);
  g_assert_true (isnan (r.wait_pct));
  g_assert_true (isnan (r.migrations_per_s));
  g_assert_cmpfloat (r.vcsw_per_s, ==, 0.0);

  /* a group that ran half the time it was enabled counts double:
   * 2e9 cycles, 3e9 instructions, 3e6 misses -> IPC 1.5, 1 miss per 1,000 */
  p1 = (QpinPerfCounts){ .cycles = 1000000000,
                         .instructions = 1500000000,
                         .llc_misses = 1500000,
                         .enabled_ns = 2,
                         .running_ns = 1 };
  g_assert_true (qpin_rates_pmu (&p0, &p1, &ipc, &mpki));
  g_assert_cmpfloat_with_epsilon (ipc, 1.5, 1e-9);
  g_assert_cmpfloat_with_epsilon (mpki, 1.0, 1e-9);
  g_assert_false (qpin_rates_pmu (&p1, &p1, &ipc, &mpki));
}

static const QpinThreadStats *
find_tid (QpinSampler *s, GPid tid)
{
  GPtrArray *threads = qpin_sampler_get_threads (s);

  for (guint i = 0; i < threads->len; i++)
    if (((QpinThreadStats *) g_ptr_array_index (threads, i))->tid == tid)
      return g_ptr_array_index (threads, i);
  g_assert_not_reached ();
}

/* Two VMs over one second on four CPUs.  vm a's vCPU 0, alone planned on
 * CPU 1, runs 800 ms and waits 100 ms; CPU 1 was 95 % busy, so 15 % is
 * noise.  vm a's vCPU 1 (planned on CPU 2) was moved to CPU 0: off-plan.
 * vm b's vCPU ran 500 ms on CPU 0, the SMT sibling of CPU 1.  vm b's
 * emulator thread vanishes in between: gone, not an error. */
static void
test_sampler_tree (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("qpin-sampler-XXXXXX", &error);
  g_autofree char *emu = NULL;
  Tree t = { root };
  g_autoptr (QpinSampler) s = qpin_sampler_new (root);
  const guint64 busy_before[4] = { 1000, 1000, 1000, 1000 };
  const guint64 busy_after[4] = { 1060, 1095, 1000, 1000 };
  QpinCpuset zero, one, two;
  const QpinThreadStats *v0, *v1, *b0, *gone;
  const QpinCpuStats *c0, *c1, *c2;
  QpinVmTotals totals;

  g_assert_no_error (error);
  qpin_sampler_set_perf (s, NULL, NULL);
  qpin_cpuset_parse ("0", &zero, NULL);
  qpin_cpuset_parse ("1", &one, NULL);
  qpin_cpuset_parse ("2", &two, NULL);
  tree_host (&t, 10000, busy_before, 100);
  tree_task (&t, 10, 11, "CPU 0/KVM", 1000, 0, 1, "1", 5);
  tree_task (&t, 10, 12, "CPU 1/KVM", 1000, 0, 2, "2", 0);
  tree_task (&t, 10, 13, "worker", 5, 0, 3, "2", 0);
  tree_task (&t, 20, 20, "qemu-b", 10, 0, 0, "0", 0);
  tree_task (&t, 20, 21, "CPU 0/KVM", 0, 0, 0, "0", 0);
  qpin_sampler_add_thread (s, "a", 10, 11, QPIN_ROLE_VCPU, 0, &one);
  qpin_sampler_add_thread (s, "a", 10, 12, QPIN_ROLE_VCPU, 1, &two);
  qpin_sampler_add_thread (s, "a", 10, 13, QPIN_ROLE_OTHER, 0, &two);
  qpin_sampler_add_thread (s, "b", 20, 20, QPIN_ROLE_EMULATOR, 0, &zero);
  qpin_sampler_add_thread (s, "b", 20, 21, QPIN_ROLE_VCPU, 0, &zero);
  g_assert_true (qpin_sampler_sample (s, 5 * SEC, &error));
  g_assert_no_error (error);
  g_assert_false (find_tid (s, 11)->valid);
  /* before the emulator vanished, CPU 0 was planned for two threads of vm b */
  g_assert_cmpstr (g_array_index (qpin_sampler_get_cpus (s), QpinCpuStats, 0).owner, ==, "b");

  /* one second later (100 ticks per CPU) */
  tree_host (&t, 10100, busy_after, 1100);
  tree_task (&t, 10, 11, "CPU 0/KVM", 1800, 100, 1, "1", 7);
  tree_task (&t, 10, 12, "CPU 1/KVM", 1000, 0, 0, "0-3", 0);
  tree_task (&t, 20, 21, "CPU 0/KVM", 500, 0, 0, "0", 0);
  emu = g_build_filename (root, "proc/20/task/20", NULL);
  rm_rf (emu);
  g_assert_true (qpin_sampler_sample (s, 6 * SEC, &error));
  g_assert_no_error (error);

  v0 = find_tid (s, 11);
  g_assert_true (v0->valid);
  g_assert_cmpfloat_with_epsilon (v0->rates.cpu_pct, 80.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (v0->rates.wait_pct, 10.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (v0->rates.migrations_per_s, 2.0, 1e-9);
  g_assert_cmpuint (v0->total_cpu_ns, ==, 1800 * 1000000);
  g_assert_cmpint (v0->cpu, ==, 1);
  g_assert_false (v0->off_plan);
  g_assert_true (isnan (v0->ipc));
  g_assert_true (v0->noise);
  g_assert_true (v0->sibling_busy);

  v1 = find_tid (s, 12);
  g_assert_true (v1->valid);
  g_assert_true (v1->off_plan);
  g_assert_false (v1->noise);
  g_assert_cmpfloat (v1->rates.cpu_pct, ==, 0.0);

  /* a worker asleep since before it was pinned still names CPU 3, outside
   * its plan, as its last CPU; it did not run there: not off-plan */
  g_assert_cmpint (find_tid (s, 13)->cpu, ==, 3);
  g_assert_false (find_tid (s, 13)->off_plan);

  b0 = find_tid (s, 21);
  g_assert_cmpfloat_with_epsilon (b0->rates.cpu_pct, 50.0, 1e-9);
  g_assert_false (b0->off_plan);
  /* CPU 0's sibling, CPU 1, ran vm a's vCPU 0 at 80 % */
  g_assert_true (b0->sibling_busy);

  gone = find_tid (s, 20);
  g_assert_true (gone->gone);
  g_assert_false (gone->valid);

  g_assert_cmpuint (qpin_sampler_get_cpus (s)->len, ==, 4);
  c0 = &g_array_index (qpin_sampler_get_cpus (s), QpinCpuStats, 0);
  c1 = &g_array_index (qpin_sampler_get_cpus (s), QpinCpuStats, 1);
  c2 = &g_array_index (qpin_sampler_get_cpus (s), QpinCpuStats, 2);
  g_assert_cmpfloat_with_epsilon (c0->busy_pct, 60.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (c0->irqs_per_s, 1000.0, 1e-9);
  /* the gone emulator no longer counts: CPU 0 is vm b's vCPU 0's alone */
  g_assert_cmpstr (c0->owner, ==, "b/vcpu 0");
  g_assert_cmpfloat_with_epsilon (c0->noise_pct, 10.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (c1->busy_pct, 95.0, 1e-9);
  g_assert_cmpstr (c1->owner, ==, "a/vcpu 0");
  g_assert_cmpfloat_with_epsilon (c1->noise_pct, 15.0, 1e-9);
  /* CPU 2 is planned for vCPU 1 and the worker: vm a's, nobody's alone */
  g_assert_cmpstr (c2->owner, ==, "a");
  g_assert_true (isnan (c2->noise_pct));
  g_assert_null (g_array_index (qpin_sampler_get_cpus (s), QpinCpuStats, 3).owner);
  g_assert_cmpfloat_with_epsilon (qpin_sampler_get_host_busy_pct (s), 38.75, 1e-9);

  qpin_sampler_vm_totals (s, 10, &totals);
  g_assert_cmpfloat_with_epsilon (totals.cpu_pct, 80.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (totals.by_role[QPIN_ROLE_VCPU], 80.0, 1e-9);

  qpin_sampler_remove_thread (s, 20);
  g_assert_false (qpin_sampler_has_thread (s, 20));
  g_assert_cmpuint (qpin_sampler_get_threads (s)->len, ==, 4);
  rm_rf (root);
}

/* A fake perf: each read adds 1e9 cycles and 2e9 instructions, 2e6 misses. */
typedef struct {
  int open_errno; /* 0: opens */
  guint opened, closed;
  guint64 reads, migration_reads;
} FakePerf;

static gpointer
fake_open (GPid tid, gpointer data, GError **error)
{
  FakePerf *f = data;

  if (f->open_errno)
    {
      g_set_error (error, QPIN_MONITOR_ERROR,
                   f->open_errno == EACCES ? QPIN_MONITOR_ERROR_REFUSED : QPIN_MONITOR_ERROR_NO_PMU,
                   "perf_event_open (hardware counter 0, thread %d): %s", tid,
                   g_strerror (f->open_errno));
      return NULL;
    }
  f->opened++;
  return GINT_TO_POINTER (tid);
}

static gboolean
fake_read (gpointer handle, QpinPerfCounts *out, gpointer data, GError **error)
{
  FakePerf *f = data;

  f->reads++;
  *out = (QpinPerfCounts){ .cycles = f->reads * 1000000000,
                           .instructions = f->reads * 2000000000,
                           .llc_misses = f->reads * 2000000,
                           .enabled_ns = 10,
                           .running_ns = 10 };
  return TRUE;
}

static void
fake_close (gpointer handle, gpointer data)
{
  ((FakePerf *) data)->closed++;
}

static gpointer
fake_open_migrations (GPid tid, gpointer data, GError **error)
{
  ((FakePerf *) data)->opened++;
  return GINT_TO_POINTER (-tid);
}

/* three migrations between reads */
static gboolean
fake_read_migrations (gpointer handle, guint64 *out, gpointer data, GError **error)
{
  FakePerf *f = data;

  f->migration_reads++;
  *out = f->migration_reads * 3;
  return TRUE;
}

static const QpinPerfOps fake_ops
  = { fake_open, fake_read, fake_open_migrations, fake_read_migrations, fake_close };

/* The counter path: IPC 2 and 1 LLC miss per 1,000 instructions on the vCPU
 * only; a refusal (EACCES) or no PMU (ENOENT) leaves them NAN, says why
 * once, and the software counters still work. */
static void
test_sampler_pmu (void)
{
  const int errnos[] = { 0, EACCES, ENOENT };

  for (guint i = 0; i < G_N_ELEMENTS (errnos); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *root = g_dir_make_tmp ("qpin-sampler-XXXXXX", &error);
      Tree t = { root };
      QpinSampler *s = qpin_sampler_new (root);
      FakePerf fake = { .open_errno = errnos[i] };
      const guint64 busy[4] = { 0 };
      const QpinThreadStats *v;

      qpin_sampler_set_perf (s, &fake_ops, &fake);
      tree_host (&t, 10000, busy, 0);
      tree_task (&t, 10, 10, "qemu", 0, 0, 0, "0-3", 0);
      tree_task (&t, 10, 11, "CPU 0/KVM", 0, 0, 0, "0-3", 0);
      qpin_sampler_add_thread (s, "a", 10, 10, QPIN_ROLE_EMULATOR, 0, NULL);
      qpin_sampler_add_thread (s, "a", 10, 11, QPIN_ROLE_VCPU, 0, NULL);
      g_assert_true (qpin_sampler_sample (s, SEC, &error));
      tree_task (&t, 10, 11, "CPU 0/KVM", 500, 0, 0, "0-3", 0);
      g_assert_true (qpin_sampler_sample (s, 2 * SEC, &error));
      v = find_tid (s, 11);
      g_assert_true (v->valid);
      g_assert_cmpfloat_with_epsilon (v->rates.cpu_pct, 50.0, 1e-9);
      g_assert_true (isnan (find_tid (s, 10)->ipc));
      if (errnos[i] == 0)
        {
          g_assert_cmpfloat_with_epsilon (v->ipc, 2.0, 1e-9);
          g_assert_cmpfloat_with_epsilon (v->llc_mpki, 1.0, 1e-9);
          g_assert_null (qpin_sampler_get_pmu_note (s));
          g_assert_cmpuint (fake.opened, ==, 1);
        }
      else
        {
          g_assert_true (isnan (v->ipc));
          g_assert_true (isnan (v->llc_mpki));
          g_assert_nonnull (strstr (qpin_sampler_get_pmu_note (s),
                                    errnos[i] == EACCES ? "hardware counters refused"
                                                        : "no hardware counters on this host"));
        }
      qpin_sampler_free (s);
      g_assert_cmpuint (fake.closed, ==, fake.opened);
      rm_rf (root);
    }
}

/* A kernel without /proc/PID/task/TID/sched: migrations come from the
 * software counter (3 per second here), only for threads that lack it. */
static void
test_sampler_migrations_counter (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("qpin-sampler-XXXXXX", &error);
  g_autofree char *sched = NULL;
  Tree t = { root };
  QpinSampler *s = qpin_sampler_new (root);
  FakePerf fake = { .open_errno = ENOENT };
  const guint64 busy[4] = { 0 };

  qpin_sampler_set_perf (s, &fake_ops, &fake);
  sched = g_build_filename (root, "proc/10/task/11/sched", NULL);
  tree_host (&t, 10000, busy, 0);
  for (guint i = 0; i < 2; i++)
    {
      tree_task (&t, 10, 10, "qemu", 0, 0, 0, "0-3", 7);
      tree_task (&t, 10, 11, "CPU 0/KVM", 0, 0, 0, "0-3", 7);
      g_assert_cmpint (g_unlink (sched), ==, 0);
      if (i == 0)
        {
          qpin_sampler_add_thread (s, "a", 10, 10, QPIN_ROLE_EMULATOR, 0, NULL);
          qpin_sampler_add_thread (s, "a", 10, 11, QPIN_ROLE_VCPU, 0, NULL);
        }
      g_assert_true (qpin_sampler_sample (s, (i + 1) * SEC, &error));
    }
  g_assert_cmpfloat_with_epsilon (find_tid (s, 11)->rates.migrations_per_s, 3.0, 1e-9);
  /* the emulator has its sched file: 7 and 7, no migration */
  g_assert_cmpfloat (find_tid (s, 10)->rates.migrations_per_s, ==, 0.0);
  g_assert_cmpuint (fake.migration_reads, ==, 2);
  qpin_sampler_free (s);
  g_assert_cmpuint (fake.closed, ==, fake.opened);
  rm_rf (root);
}

/* A TID that a new process reuses is a new thread: no rates from the old
 * one's counters, which are far above the new one's. */
static void
test_sampler_tid_reused (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("qpin-sampler-XXXXXX", &error);
  Tree t = { root };
  g_autoptr (QpinSampler) s = qpin_sampler_new (root);
  const guint64 busy[4] = { 0 };

  qpin_sampler_set_perf (s, NULL, NULL);
  tree_host (&t, 10000, busy, 0);
  tree_task (&t, 10, 11, "CPU 0/KVM", 5000, 0, 0, "0-3", 9);
  qpin_sampler_add_thread (s, "a", 10, 11, QPIN_ROLE_VCPU, 0, NULL);
  g_assert_true (qpin_sampler_sample (s, SEC, &error));
  tree_task (&t, 20, 11, "CPU 0/KVM", 10, 0, 0, "0-3", 0);
  qpin_sampler_add_thread (s, "b", 20, 11, QPIN_ROLE_VCPU, 0, NULL);
  g_assert_true (qpin_sampler_sample (s, 2 * SEC, &error));
  g_assert_false (find_tid (s, 11)->valid);
  g_assert_cmpstr (find_tid (s, 11)->vm, ==, "b");
  tree_task (&t, 20, 11, "CPU 0/KVM", 510, 0, 0, "0-3", 0);
  g_assert_true (qpin_sampler_sample (s, 3 * SEC, &error));
  g_assert_cmpfloat_with_epsilon (find_tid (s, 11)->rates.cpu_pct, 50.0, 1e-9);
  rm_rf (root);
}

/* keep_only() stops watching every thread but the ones named, in any
 * order of the entries. */
static void
test_sampler_keep_only (void)
{
  g_autoptr (QpinSampler) s = qpin_sampler_new ("/nonexistent");
  g_autoptr (GHashTable) keep = g_hash_table_new (NULL, NULL);

  for (GPid tid = 11; tid <= 14; tid++)
    qpin_sampler_add_thread (s, "a", 10, tid, QPIN_ROLE_VCPU, tid - 11, NULL);
  g_hash_table_add (keep, GINT_TO_POINTER (12));
  g_hash_table_add (keep, GINT_TO_POINTER (14));
  qpin_sampler_keep_only (s, keep);
  g_assert_cmpuint (qpin_sampler_get_threads (s)->len, ==, 2);
  g_assert_false (qpin_sampler_has_thread (s, 11));
  g_assert_true (qpin_sampler_has_thread (s, 12));
  g_assert_false (qpin_sampler_has_thread (s, 13));
  g_assert_true (qpin_sampler_has_thread (s, 14));
}

typedef struct {
  GPid tid;
  gint cpu;
  gint ready;
  gint stop;
} LiveThread;

static gpointer
live_thread (gpointer data)
{
  LiveThread *l = data;
  cpu_set_t one;

  CPU_ZERO (&one);
  CPU_SET (l->cpu, &one);
  g_assert_cmpint (sched_setaffinity (0, sizeof one, &one), ==, 0);
  l->tid = (GPid) syscall (SYS_gettid);
  g_atomic_int_set (&l->ready, 1);
  while (!g_atomic_int_get (&l->stop))
    g_usleep (1000);
  return NULL;
}

/* The live host: a thread of this process read through its task
 * directory, the affinity from the kernel word by word; a TID that is not
 * a thread of the process named (a child process's) reads as gone, and so
 * does the thread once it has exited. */
static void
test_sampler_live (void)
{
  g_autoptr (QpinSampler) s = qpin_sampler_new (NULL);
  g_autoptr (GError) error = NULL;
  LiveThread l = { .cpu = (gint) sysconf (_SC_NPROCESSORS_ONLN) - 1 };
  GThread *thread = g_thread_new ("qpin-live", live_thread, &l);
  const QpinThreadStats *t;
  QpinCpuset want;
  GPid child;

  while (!g_atomic_int_get (&l.ready))
    g_usleep (1000);
  child = fork ();
  if (child == 0)
    {
      pause ();
      _exit (0);
    }
  qpin_sampler_set_perf (s, NULL, NULL);
  qpin_sampler_add_thread (s, "live", getpid (), l.tid, QPIN_ROLE_VCPU, 0, NULL);
  qpin_sampler_add_thread (s, "live", getpid (), child, QPIN_ROLE_VCPU, 1, NULL);
  g_assert_true (qpin_sampler_sample (s, g_get_monotonic_time () * 1000, &error));
  g_usleep (50000);
  g_assert_true (qpin_sampler_sample (s, g_get_monotonic_time () * 1000, &error));
  g_assert_no_error (error);
  t = qpin_sampler_lookup (s, l.tid);
  g_assert_true (t->valid);
  g_assert_false (t->gone);
  g_assert_cmpstr (t->comm, ==, "qpin-live");
  qpin_cpuset_clear_all (&want);
  qpin_cpuset_add (&want, (guint) l.cpu);
  g_assert_true (qpin_cpuset_equal (&t->affinity, &want));
  g_assert_cmpint (t->cpu, ==, l.cpu);
  g_assert_cmpuint (t->total_vcsw, >, 0);
  g_assert_true (qpin_sampler_lookup (s, child)->gone);

  g_atomic_int_set (&l.stop, 1);
  g_thread_join (thread);
  g_assert_true (qpin_sampler_sample (s, g_get_monotonic_time () * 1000, &error));
  g_assert_true (qpin_sampler_lookup (s, l.tid)->gone);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampler/parse-stat", test_parse_stat);
  g_test_add_func ("/sampler/parse-status", test_parse_status);
  g_test_add_func ("/sampler/parse-host", test_parse_host);
  g_test_add_func ("/sampler/rates", test_rates);
  g_test_add_func ("/sampler/tree", test_sampler_tree);
  g_test_add_func ("/sampler/pmu", test_sampler_pmu);
  g_test_add_func ("/sampler/migrations-counter", test_sampler_migrations_counter);
  g_test_add_func ("/sampler/tid-reused", test_sampler_tid_reused);
  g_test_add_func ("/sampler/keep-only", test_sampler_keep_only);
  g_test_add_func ("/sampler/live", test_sampler_live);
  return g_test_run ();
}
