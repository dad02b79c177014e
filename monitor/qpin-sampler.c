/* qpin-sampler.c: sample watched threads and host CPUs, derive rates */
#define G_LOG_DOMAIN "qpin-monitor"

#include "qpin-sampler.h"
#include "qpin-proc-sample.h"

#include <math.h>
#include <unistd.h>

/* a thread or a CPU under this share did not really run there */
#define QPIN_SAMPLER_BUSY_PCT 10.0

typedef struct {
  QpinThreadStats stats; /* first: entries are handed out as QpinThreadStats */
  QpinTaskSample prev;
  gboolean has_prev;
  gpointer perf;
  QpinPerfCounts perf_prev;
  gboolean has_perf_prev;
  gpointer migrations; /* software counter, without /proc/.../sched */
} Entry;

struct _QpinSampler {
  char *root;
  guint ticks_per_s;
  const QpinPerfOps *perf_ops;
  gpointer perf_data;
  gboolean pmu_off; /* the first refusal or absence holds for every thread */
  char *pmu_note;
  GPtrArray *entries;  /* Entry, in the order added */
  GHashTable *by_tid;  /* GPid -> Entry */
  GHashTable *dirs;    /* during a sample: GPid -> its /proc task directory's fd + 1 */
  GArray *cpu_prev;    /* QpinCpuSample by CPU */
  GArray *cpus;        /* QpinCpuStats */
  GPtrArray *siblings; /* QpinCpuset * by CPU, NULL unknown */
  gint64 prev_ns;
  gint64 interval_ns; /* between the last two samples */
  double host_busy_pct;
};

static void
entry_free (gpointer p)
{
  Entry *e = p;

  g_free (e->stats.vm);
  g_free (e);
}

static void
cpu_stats_clear (gpointer p)
{
  g_free (((QpinCpuStats *) p)->owner);
}

/**
 * qpin_sampler_new:
 * @root_dir: (nullable): "/" (%NULL) or a recorded tree with proc/ and sys/
 *
 * Hardware counters are read through perf_event_open(2) unless
 * qpin_sampler_set_perf() says otherwise.
 *
 * Returns: (transfer full): a sampler watching nothing yet
 */
QpinSampler *
qpin_sampler_new (const char *root_dir)
{
  QpinSampler *s = g_new0 (QpinSampler, 1);
  long hz = sysconf (_SC_CLK_TCK);

  s->root = g_strdup (root_dir ? root_dir : "/");
  s->ticks_per_s = hz > 0 ? (guint) hz : 100;
  s->perf_ops = qpin_perf_real_ops ();
  s->entries = g_ptr_array_new ();
  s->by_tid = g_hash_table_new (NULL, NULL);
  s->dirs = g_hash_table_new (NULL, NULL);
  s->cpu_prev = g_array_new (FALSE, TRUE, sizeof (QpinCpuSample));
  s->cpus = g_array_new (FALSE, TRUE, sizeof (QpinCpuStats));
  g_array_set_clear_func (s->cpus, cpu_stats_clear);
  s->siblings = g_ptr_array_new_with_free_func (g_free);
  return s;
}

static void
entry_close_perf (QpinSampler *s, Entry *e)
{
  if (e->perf)
    s->perf_ops->close (e->perf, s->perf_data);
  if (e->migrations)
    s->perf_ops->close (e->migrations, s->perf_data);
  e->perf = e->migrations = NULL;
  e->has_perf_prev = FALSE;
}

/**
 * qpin_sampler_free:
 *
 * Closes every perf group and frees the sampler.
 */
void
qpin_sampler_free (QpinSampler *sampler)
{
  if (sampler == NULL)
    return;
  for (guint i = 0; i < sampler->entries->len; i++)
    {
      Entry *e = g_ptr_array_index (sampler->entries, i);
      entry_close_perf (sampler, e);
      entry_free (e);
    }
  g_ptr_array_unref (sampler->entries);
  g_hash_table_unref (sampler->by_tid);
  g_hash_table_unref (sampler->dirs);
  g_array_unref (sampler->cpu_prev);
  g_array_unref (sampler->cpus);
  g_ptr_array_unref (sampler->siblings);
  g_free (sampler->pmu_note);
  g_free (sampler->root);
  g_free (sampler);
}

/**
 * qpin_sampler_set_perf:
 * @ops: (nullable): the counter implementation; %NULL: no hardware counters
 *
 * Call before the first sample.
 */
void
qpin_sampler_set_perf (QpinSampler *sampler, const QpinPerfOps *ops, gpointer data)
{
  sampler->perf_ops = ops;
  sampler->perf_data = data;
  if (ops == NULL)
    {
      sampler->pmu_off = TRUE;
      g_free (sampler->pmu_note);
      sampler->pmu_note = g_strdup ("hardware counters are off");
    }
}

/**
 * qpin_sampler_set_ticks_per_s:
 *
 * USER_HZ of the recorded tree (the running kernel's by default).
 */
void
qpin_sampler_set_ticks_per_s (QpinSampler *sampler, guint ticks_per_s)
{
  sampler->ticks_per_s = ticks_per_s ? ticks_per_s : 100;
}

/**
 * qpin_sampler_add_thread:
 * @vm: the VM's name (copied)
 * @planned: (nullable): the CPUs its plan gives it; %NULL: no plan
 *
 * Watches @tid from the next sample on; a thread already watched gets the
 * new identity and plan and keeps its counters, unless @pid changed (a
 * reused TID): then it starts afresh.
 */
void
qpin_sampler_add_thread (QpinSampler *sampler, const char *vm, GPid pid, GPid tid,
                         QpinThreadRole role, gint index, const QpinCpuset *planned)
{
  Entry *e = g_hash_table_lookup (sampler->by_tid, GINT_TO_POINTER (tid));

  if (e && e->stats.pid != pid)
    {
      /* the TID was reused by another process: its counters start afresh */
      qpin_sampler_remove_thread (sampler, tid);
      e = NULL;
    }
  if (e == NULL)
    {
      e = g_new0 (Entry, 1);
      e->stats.cpu = -1;
      e->stats.ipc = e->stats.llc_mpki = NAN;
      g_ptr_array_add (sampler->entries, e);
      g_hash_table_insert (sampler->by_tid, GINT_TO_POINTER (tid), e);
    }
  g_free (e->stats.vm);
  e->stats.vm = g_strdup (vm ? vm : "");
  e->stats.pid = pid;
  e->stats.tid = tid;
  e->stats.role = role;
  e->stats.index = index;
  e->stats.has_plan = planned != NULL && !qpin_cpuset_is_empty (planned);
  if (e->stats.has_plan)
    e->stats.planned = *planned;
}

/**
 * qpin_sampler_remove_thread:
 *
 * Stops watching @tid (unknown TIDs are ignored).
 */
void
qpin_sampler_remove_thread (QpinSampler *sampler, GPid tid)
{
  Entry *e = g_hash_table_lookup (sampler->by_tid, GINT_TO_POINTER (tid));

  if (e == NULL)
    return;
  g_hash_table_remove (sampler->by_tid, GINT_TO_POINTER (tid));
  g_ptr_array_remove (sampler->entries, e);
  entry_close_perf (sampler, e);
  entry_free (e);
}

/**
 * qpin_sampler_keep_only:
 * @keep: (element-type GPid): the TIDs to go on watching
 *
 * Stops watching every thread not in @keep.
 */
void
qpin_sampler_keep_only (QpinSampler *sampler, GHashTable *keep)
{
  for (guint i = sampler->entries->len; i-- > 0;)
    {
      const Entry *e = g_ptr_array_index (sampler->entries, i);
      if (!g_hash_table_contains (keep, GINT_TO_POINTER (e->stats.tid)))
        qpin_sampler_remove_thread (sampler, e->stats.tid);
    }
}

/**
 * qpin_sampler_has_thread:
 *
 * Returns: whether @tid is watched (gone or not)
 */
gboolean
qpin_sampler_has_thread (QpinSampler *sampler, GPid tid)
{
  return g_hash_table_contains (sampler->by_tid, GINT_TO_POINTER (tid));
}

/**
 * qpin_sampler_lookup:
 *
 * Returns: (transfer none) (nullable): the statistics of @tid, valid until
 *   the next add, remove or sample; %NULL when not watched
 */
const QpinThreadStats *
qpin_sampler_lookup (QpinSampler *sampler, GPid tid)
{
  Entry *e = g_hash_table_lookup (sampler->by_tid, GINT_TO_POINTER (tid));

  return e ? &e->stats : NULL;
}

static void
pmu_give_up (QpinSampler *s, const GError *error)
{
  s->pmu_off = TRUE;
  g_free (s->pmu_note);
  if (error->code == QPIN_MONITOR_ERROR_NO_PMU)
    s->pmu_note = g_strdup_printf ("no hardware counters on this host (%s): IPC and LLC-MPKI "
                                   "are empty",
                                   error->message);
  else if (error->code == QPIN_MONITOR_ERROR_REFUSED)
    s->pmu_note = g_strdup_printf ("hardware counters refused (%s; see "
                                   "kernel.perf_event_paranoid): IPC and LLC-MPKI are empty",
                                   error->message);
  else
    s->pmu_note = g_strdup_printf ("hardware counters failed (%s): IPC and LLC-MPKI are empty",
                                   error->message);
}

/* a multiplexed group counted only part of the time: scale to all of it */
static void
pmu_totals (QpinThreadStats *t, const QpinPerfCounts *now)
{
  double scale = now->running_ns && now->enabled_ns > now->running_ns
                   ? (double) now->enabled_ns / (double) now->running_ns
                   : 1.0;

  t->has_pmu = TRUE;
  t->total_cycles = (guint64) ((double) now->cycles * scale);
  t->total_instructions = (guint64) ((double) now->instructions * scale);
  t->total_llc_misses = (guint64) ((double) now->llc_misses * scale);
}

static void
sample_pmu (QpinSampler *s, Entry *e)
{
  g_autoptr (GError) error = NULL;
  QpinPerfCounts now;

  e->stats.ipc = e->stats.llc_mpki = NAN;
  e->stats.has_pmu = FALSE;
  if (s->pmu_off || e->stats.role != QPIN_ROLE_VCPU)
    return;
  if (e->perf == NULL && !(e->perf = s->perf_ops->open (e->stats.tid, s->perf_data, &error)))
    {
      if (!g_error_matches (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_GONE))
        pmu_give_up (s, error);
      return;
    }
  if (!s->perf_ops->read (e->perf, &now, s->perf_data, &error))
    {
      g_debug ("thread %d: %s", e->stats.tid, error->message);
      entry_close_perf (s, e);
      return;
    }
  if (e->has_perf_prev)
    qpin_rates_pmu (&e->perf_prev, &now, &e->stats.ipc, &e->stats.llc_mpki);
  pmu_totals (&e->stats, &now);
  e->perf_prev = now;
  e->has_perf_prev = TRUE;
}

/* Without /proc/.../sched, migrations come from a software perf counter
 * (counting from when it was opened); when that fails too, they stay
 * unknown. */
static void
sample_migrations (QpinSampler *s, Entry *e, QpinTaskSample *cur)
{
  g_autoptr (GError) error = NULL;

  if (cur->has_migrations || s->perf_ops == NULL || s->perf_ops->open_migrations == NULL)
    return;
  if (e->migrations == NULL
      && !(e->migrations = s->perf_ops->open_migrations (e->stats.tid, s->perf_data, &error)))
    {
      g_debug ("thread %d: %s", e->stats.tid, error->message);
      return;
    }
  cur->has_migrations
    = s->perf_ops->read_migrations (e->migrations, &cur->migrations, s->perf_data, NULL);
}

static gboolean
thread_ran (const QpinTaskSample *prev, const QpinTaskSample *cur)
{
  if (prev->has_schedstat && cur->has_schedstat)
    return cur->run_ns != prev->run_ns || cur->slices != prev->slices;
  return cur->utime_ticks + cur->stime_ticks != prev->utime_ticks + prev->stime_ticks
         || cur->vcsw + cur->icsw != prev->vcsw + prev->icsw;
}

/* @pid's task directory, opened for its first thread in this sample and
 * shared by the others; -1 (EMFILE, say): each file is opened by its
 * path, and the next thread tries again. */
static int
task_dir (QpinSampler *s, GPid pid)
{
  gpointer known = g_hash_table_lookup (s->dirs, GINT_TO_POINTER (pid));
  int fd;

  if (known)
    return GPOINTER_TO_INT (known) - 1;
  fd = qpin_task_dir_open (s->root, pid);
  if (fd >= 0)
    g_hash_table_insert (s->dirs, GINT_TO_POINTER (pid), GINT_TO_POINTER (fd + 1));
  return fd;
}

static void
sample_thread (QpinSampler *s, Entry *e, gint64 interval_ns)
{
  QpinTaskSample cur[1];
  g_autoptr (GError) error = NULL;
  QpinThreadStats *t = &e->stats;

  if (t->gone)
    return;
  if (!qpin_task_sample_read (task_dir (s, t->pid), s->root, t->pid, t->tid, cur, &error))
    {
      /* gone, or text we cannot trust: either way no numbers for it */
      g_debug ("vm '%s' thread %d: %s", t->vm, t->tid, error->message);
      t->gone = TRUE;
      t->valid = FALSE;
      entry_close_perf (s, e);
      return;
    }
  sample_migrations (s, e, cur);
  t->valid = e->has_prev && interval_ns > 0;
  if (t->valid)
    qpin_rates_thread (&e->prev, cur, interval_ns, s->ticks_per_s, &t->rates);
  memcpy (t->comm, cur->comm, sizeof t->comm);
  t->cpu = cur->cpu;
  t->affinity = cur->affinity;
  t->total_cpu_ns = cur->has_schedstat
                      ? cur->run_ns
                      : (cur->utime_ticks + cur->stime_ticks) * (1000000000 / s->ticks_per_s);
  t->total_wait_ns = cur->wait_ns;
  t->total_ctx_switches = cur->vcsw + cur->icsw;
  t->total_migrations = cur->migrations;
  t->total_guest_ns = cur->guest_ticks * (1000000000 / s->ticks_per_s);
  t->total_vcsw = cur->vcsw;
  t->total_icsw = cur->icsw;
  t->has_wait = cur->has_schedstat;
  t->has_migrations = cur->has_migrations;
  /* the last CPU counts only if it ran in the interval: a thread asleep
   * since before it was pinned still names the CPU it slept on */
  t->off_plan = t->has_plan
                && (!qpin_cpuset_is_subset (&t->affinity, &t->planned)
                    || (t->valid && thread_ran (&e->prev, cur)
                        && !qpin_cpuset_has (&t->planned, (guint) t->cpu)));
  sample_pmu (s, e);
  e->prev = *cur;
  e->has_prev = TRUE;
}

static const QpinCpuset *
siblings_of (QpinSampler *s, guint cpu)
{
  while (s->siblings->len <= cpu)
    {
      g_autofree char *path = g_strdup_printf (
        "%s/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", s->root, s->siblings->len);
      g_autofree char *text = NULL;
      QpinCpuset *set = NULL;

      if (g_file_get_contents (path, &text, NULL, NULL))
        {
          set = g_new (QpinCpuset, 1);
          if (!qpin_cpuset_parse (g_strstrip (text), set, NULL))
            g_clear_pointer (&set, g_free);
        }
      g_ptr_array_add (s->siblings, set);
    }
  return g_ptr_array_index (s->siblings, cpu);
}

typedef struct {
  guint n_threads;   /* threads whose plan includes the CPU */
  Entry *owner;      /* the first of them */
  gboolean many_vms; /* threads of more than one VM */
  GPid ran_by;       /* VM whose thread ran there (>= BUSY_PCT); -1 several */
  double noise_pct;  /* NAN: not one thread's dedicated CPU */
} CpuUse;

static void
cpu_uses (QpinSampler *s, guint n_cpus, CpuUse *use)
{
  for (guint i = 0; i < s->entries->len; i++)
    {
      Entry *e = g_ptr_array_index (s->entries, i);
      QpinThreadStats *t = &e->stats;

      if (t->has_plan && !t->gone)
        QPIN_CPUSET_FOREACH (c, &t->planned)
          {
            if ((guint) c >= n_cpus)
              break;
            if (use[c].owner && use[c].owner->stats.pid != t->pid)
              use[c].many_vms = TRUE;
            if (use[c].owner == NULL)
              use[c].owner = e;
            use[c].n_threads++;
          }
      if (t->valid && t->cpu >= 0 && (guint) t->cpu < n_cpus
          && t->rates.cpu_pct >= QPIN_SAMPLER_BUSY_PCT)
        use[t->cpu].ran_by = use[t->cpu].ran_by == 0 || use[t->cpu].ran_by == t->pid ? t->pid : -1;
    }
}

static char *
owner_text (const CpuUse *u)
{
  const QpinThreadStats *t = u->owner ? &u->owner->stats : NULL;

  if (t == NULL)
    return NULL;
  if (u->many_vms)
    return g_strdup ("shared");
  if (u->n_threads > 1)
    return g_strdup (t->vm);
  return g_strdup_printf ("%s/%s %d", t->vm, qpin_thread_role_to_string (t->role), t->index);
}

static void
flag_thread (QpinSampler *s, Entry *e, const CpuUse *use, guint n_cpus)
{
  QpinThreadStats *t = &e->stats;
  const QpinCpuset *sib;

  t->noise = t->sibling_busy = FALSE;
  if (!t->valid || t->cpu < 0 || (guint) t->cpu >= n_cpus)
    return;
  t->noise = use[t->cpu].owner == e && use[t->cpu].noise_pct >= QPIN_SAMPLER_BUSY_PCT;
  sib = siblings_of (s, (guint) t->cpu);
  if (sib)
    QPIN_CPUSET_FOREACH (c, sib)
      if ((guint) c < n_cpus && c != t->cpu && use[c].ran_by != 0 && use[c].ran_by != t->pid)
        t->sibling_busy = TRUE;
}

static void
sample_cpus (QpinSampler *s, GArray *now, gint64 interval_ns)
{
  g_autofree CpuUse *use = g_new0 (CpuUse, now->len);
  double busy_sum = 0;
  guint n_busy = 0;

  cpu_uses (s, now->len, use);
  g_array_set_size (s->cpus, 0);
  for (guint c = 0; c < now->len; c++)
    {
      const QpinCpuSample *cur = &g_array_index (now, QpinCpuSample, c);
      QpinCpuStats st = { .cpu = (gint) c, .noise_pct = NAN };

      use[c].noise_pct = NAN;
      if (!cur->present)
        continue;
      if (c < s->cpu_prev->len && interval_ns > 0)
        qpin_rates_cpu (&g_array_index (s->cpu_prev, QpinCpuSample, c), cur, interval_ns,
                        &st.busy_pct, &st.irqs_per_s);
      st.owner = owner_text (&use[c]);
      st.total_busy_s = (double) cur->busy_ticks / s->ticks_per_s;
      st.total_irqs = cur->irqs;
      if (use[c].n_threads == 1 && qpin_cpuset_count (&use[c].owner->stats.planned) == 1
          && use[c].owner->stats.valid)
        st.noise_pct = MAX (0.0, st.busy_pct - use[c].owner->stats.rates.cpu_pct);
      use[c].noise_pct = st.noise_pct;
      busy_sum += st.busy_pct;
      n_busy++;
      g_array_append_val (s->cpus, st);
    }
  s->host_busy_pct = n_busy ? busy_sum / n_busy : 0.0;
  for (guint i = 0; i < s->entries->len; i++)
    flag_thread (s, g_ptr_array_index (s->entries, i), use, now->len);
}

/* The task directories are held for one sample, not between samples: a
 * daemon serving metrics keeps one descriptor per VM, its monitor. */
static void
close_task_dirs (QpinSampler *s)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, s->dirs);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    close (GPOINTER_TO_INT (value) - 1);
  g_hash_table_remove_all (s->dirs);
}

/**
 * qpin_sampler_sample:
 * @now_ns: a monotonic time; rates are over the time since the last call
 *
 * Reads every watched thread and the host CPUs.  A thread that vanished
 * is marked gone; the first sample only sets the baseline (no rates).
 *
 * Returns: %FALSE when the host CPU counters (/proc/stat) cannot be read
 */
gboolean
qpin_sampler_sample (QpinSampler *sampler, gint64 now_ns, GError **error)
{
  g_autoptr (GArray) cpus = qpin_cpu_samples_read (sampler->root, error);
  gint64 interval_ns = sampler->prev_ns ? now_ns - sampler->prev_ns : 0;

  if (cpus == NULL)
    return FALSE;
  for (guint i = 0; i < sampler->entries->len; i++)
    sample_thread (sampler, g_ptr_array_index (sampler->entries, i), interval_ns);
  close_task_dirs (sampler);
  sample_cpus (sampler, cpus, interval_ns);
  g_array_unref (sampler->cpu_prev);
  sampler->cpu_prev = g_steal_pointer (&cpus);
  sampler->prev_ns = now_ns;
  sampler->interval_ns = interval_ns;
  return TRUE;
}

/**
 * qpin_sampler_get_interval_ns:
 *
 * Returns: the time between the last two samples, the rates' interval;
 *   0 after the first
 */
gint64
qpin_sampler_get_interval_ns (QpinSampler *sampler)
{
  return sampler->interval_ns;
}

/**
 * qpin_sampler_get_threads:
 *
 * Returns: (transfer none) (element-type QpinThreadStats): every watched
 *   thread in the order added, valid until the next add, remove or sample
 */
GPtrArray *
qpin_sampler_get_threads (QpinSampler *sampler)
{
  return sampler->entries;
}

/**
 * qpin_sampler_get_cpus:
 *
 * Returns: (transfer none) (element-type QpinCpuStats): the host CPUs
 *   /proc/stat lists, in order, as of the last sample
 */
GArray *
qpin_sampler_get_cpus (QpinSampler *sampler)
{
  return sampler->cpus;
}

/**
 * qpin_sampler_get_host_busy_pct:
 *
 * Returns: the mean busy share of the host CPUs over the last interval
 */
double
qpin_sampler_get_host_busy_pct (QpinSampler *sampler)
{
  return sampler->host_busy_pct;
}

/**
 * qpin_sampler_get_pmu_note:
 *
 * Returns: (nullable): why IPC and LLC-MPKI are empty, once known
 */
const char *
qpin_sampler_get_pmu_note (QpinSampler *sampler)
{
  return sampler->pmu_note;
}

/**
 * qpin_sampler_vm_totals:
 *
 * The CPU share of VM @pid over the last interval, in all and per role.
 */
void
qpin_sampler_vm_totals (QpinSampler *sampler, GPid pid, QpinVmTotals *out)
{
  memset (out, 0, sizeof *out);
  for (guint i = 0; i < sampler->entries->len; i++)
    {
      const QpinThreadStats *t = g_ptr_array_index (sampler->entries, i);
      if (t->pid != pid || !t->valid)
        continue;
      out->cpu_pct += t->rates.cpu_pct;
      out->by_role[t->role] += t->rates.cpu_pct;
    }
}
