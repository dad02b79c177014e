/* qpin-placer-batch.c: qpin_placer_place(), several new VMs at once: the
 * search over orders and candidate domains, the greedy orders, replay
 */
#define G_LOG_DOMAIN "qpin-policy"
#define QPIN_PLACER_ALLOW_PRIVATE

#include "qpin-placer-private.h"

typedef struct {
  GPtrArray *jobs; /* Job * of the dedicated VMs */
  guint n;
  gboolean *done;
  guint *path_vm; /* current path: job index per depth */
  guint *path_opt;
  guint *best_vm;
  guint *best_opt;
  gboolean have_best;
  QpinScore best;
  guint spent;
  guint budget;
  guint options;
  GError *first_error;
} Search;

/* Places job j with option o; returns FALSE if it cannot (error kept). */
static gboolean
place_job_inside (QpinPlacer *p, Job *job, guint option, gboolean diverse, guint *n_options,
                  GError **error)
{
  gint slot = qpin_placer_slot_add (p, job->vm);
  g_autoptr (GError) local = NULL;

  g_ptr_array_add (p->plan->vms, job->vm);
  if (qpin_placer_place_dedicated (p, slot, option, n_options, diverse, &local))
    return TRUE;
  if (job->vm->policy->overcommit == QPIN_OVERCOMMIT_SHARE)
    {
      g_autoptr (GError) none = NULL;

      qpin_placer_release_vm (p, job->vm);
      if (qpin_placer_choose_pool (p, job->vm, &none))
        {
          qpin_plan_vm_add_note (job->vm, "overcommitted: shared pool (%s)", local->message);
          if (n_options)
            *n_options = 1;
          return TRUE;
        }
      {
        GError *both
          = g_error_new (QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_NO_FIT,
                         "%s, and the shared pool is empty (overcommit=share)", local->message);
        g_clear_error (&local);
        local = both;
      }
    }
  qpin_placer_plan_unlink (p, job->vm);
  qpin_placer_slot_free (p, job->vm);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* place_job_inside(), inside the VM's cpuset if it has one. */
static gboolean
place_job (QpinPlacer *p, Job *job, guint option, gboolean diverse, guint *n_options,
           GError **error)
{
  QpinCpuset saved;
  gboolean confined = qpin_placer_confine (p, job->vm, &saved);
  gboolean ok = place_job_inside (p, job, option, diverse, n_options, error);

  qpin_placer_unconfine (p, confined, &saved);
  return ok;
}

static void
unplace_job (QpinPlacer *p, Job *job)
{
  qpin_placer_release_vm (p, job->vm);
  qpin_placer_slot_free (p, job->vm);
  qpin_placer_plan_unlink (p, job->vm);
}

/* Within budget; until a first complete plan, up to four times it. */
static gboolean
search_goes_on (const QpinPlacer *p, const Search *s)
{
  return p->work < s->budget || (!s->have_best && p->work < 4 * (guint64) s->budget);
}

static void
search (QpinPlacer *p, Search *s, guint depth)
{
  if (depth == s->n)
    {
      QpinScore score;
      p->work += p->n_cores * 4;
      qpin_placer_score (p, &score);
      if (!s->have_best || qpin_score_compare (&score, &s->best) < 0)
        {
          s->best = score;
          s->have_best = TRUE;
          memcpy (s->best_vm, s->path_vm, sizeof (guint) * s->n);
          memcpy (s->best_opt, s->path_opt, sizeof (guint) * s->n);
        }
      return;
    }
  for (guint j = 0; j < s->n && search_goes_on (p, s); j++)
    {
      Job *job = g_ptr_array_index (s->jobs, j);
      gboolean dup = FALSE;
      guint n_options = 1;

      if (s->done[j])
        continue;
      for (guint i = 0; i < j && !dup; i++)
        dup = !s->done[i]
              && strcmp (((Job *) g_ptr_array_index (s->jobs, i))->signature, job->signature) == 0;
      if (dup)
        continue;
      for (guint o = 0; o < n_options && o < s->options && search_goes_on (p, s); o++)
        {
          g_autoptr (GError) error = NULL;

          s->spent++;
          if (!place_job (p, job, o, TRUE, &n_options, &error))
            {
              if (s->first_error == NULL)
                s->first_error = g_steal_pointer (&error);
              break;
            }
          s->done[j] = TRUE;
          s->path_vm[depth] = j;
          s->path_opt[depth] = o;
          search (p, s, depth + 1);
          s->done[j] = FALSE;
          unplace_job (p, job);
        }
    }
}

static gint
cmp_job (gconstpointer a, gconstpointer b)
{
  const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  if (x->n_vcpus != y->n_vcpus)
    return x->n_vcpus > y->n_vcpus ? -1 : 1;
  return 0;
}

static void
job_free (gpointer data)
{
  Job *j = data;
  g_free (j->signature);
  g_free (j);
}

/* Places all jobs in the given order greedily; returns FALSE at the first failure. */
static gboolean
place_in_order (QpinPlacer *p, GPtrArray *jobs, const guint *order, guint *placed, GError **error)
{
  *placed = 0;
  for (guint i = 0; i < jobs->len; i++)
    {
      if (!place_job (p, g_ptr_array_index (jobs, order[i]), 0, FALSE, NULL, error))
        return FALSE;
      (*placed)++;
    }
  return TRUE;
}

static void
unplace_order (QpinPlacer *p, GPtrArray *jobs, const guint *order, guint placed)
{
  for (guint i = placed; i-- > 0;)
    unplace_job (p, g_ptr_array_index (jobs, order[i]));
}

static void
order_of (guint n, guint which, guint *order)
{
  for (guint i = 0; i < n; i++)
    order[i] = which == 0 ? i : n - 1 - i;
}

/* Evaluates the order search (few VMs) and the greedy orders (largest and
 * most constrained first, and its reverse) with the current fill
 * strategy; leaves nothing placed.  Returns FALSE if none fits. */
static gboolean
plan_batch (QpinPlacer *p, GPtrArray *jobs, Recipe *r, GError **error)
{
  guint n = jobs->len;
  g_autofree guint *order = g_new (guint, n);
  g_autoptr (GError) first_error = NULL;
  gboolean have = FALSE;
  guint placed = 0;

  r->pack_singles = p->pack_singles;
  if (n <= p->search_max_vms)
    {
      Search s = { .jobs = jobs, .n = n, .budget = p->search_budget, .options = p->search_options };
      g_autofree gboolean *done = g_new0 (gboolean, n);
      g_autofree guint *pv = g_new0 (guint, n);
      g_autofree guint *po = g_new0 (guint, n);

      s.done = done;
      s.path_vm = pv;
      s.path_opt = po;
      s.best_vm = r->vm;
      s.best_opt = r->opt;
      p->work = 0;
      search (p, &s, 0);
      g_clear_error (&s.first_error);
      if (s.have_best)
        {
          have = TRUE;
          r->from_search = TRUE;
          r->score = s.best;
        }
    }
  for (guint o = 0; o < 2; o++)
    {
      g_autoptr (GError) local = NULL;

      order_of (n, o, order);
      if (place_in_order (p, jobs, order, &placed, &local))
        {
          QpinScore score;
          qpin_placer_score (p, &score);
          if (!have || qpin_score_compare (&score, &r->score) < 0)
            {
              have = TRUE;
              r->from_search = FALSE;
              r->order = o;
              r->score = score;
            }
        }
      else if (first_error == NULL)
        first_error = g_steal_pointer (&local);
      unplace_order (p, jobs, order, placed);
    }
  if (!have)
    {
      /* the greedy order names the VM that does not fit */
      g_propagate_error (error, g_steal_pointer (&first_error));
      return FALSE;
    }
  return TRUE;
}

/* A replay that fails: the search placed this very plan a moment ago, so
 * that is a placer bug, reported as %QPIN_POLICY_ERROR_INTERNAL. */
static void
replay_failed (GError *cause, GError **error)
{
  g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_INTERNAL,
               "the placer could not rebuild the plan it chose: %s",
               cause ? cause->message : "no reason given");
}

/**
 * qpin_placer_replay:
 * @r: the recipe plan_batch() kept
 *
 * Places @jobs again as @r says.  On failure unplaces what it placed and
 * returns %QPIN_POLICY_ERROR_INTERNAL: nothing changed.
 */
gboolean
qpin_placer_replay (QpinPlacer *p, GPtrArray *jobs, const Recipe *r, GError **error)
{
  guint n = jobs->len;
  g_autofree guint *order = g_new (guint, MAX (n, 1));
  g_autoptr (GError) cause = NULL;
  guint placed = 0;
  gboolean ok = TRUE;

  p->pack_singles = r->pack_singles;
  if (r->from_search)
    {
      memcpy (order, r->vm, sizeof (guint) * n);
      for (guint i = 0; ok && i < n; i++)
        {
          ok = place_job (p, g_ptr_array_index (jobs, r->vm[i]), r->opt[i], TRUE, NULL, &cause);
          placed += ok ? 1 : 0;
        }
    }
  else
    {
      order_of (n, r->order, order);
      ok = place_in_order (p, jobs, order, &placed, &cause);
    }
  p->pack_singles = FALSE;
  if (ok)
    return TRUE;
  unplace_order (p, jobs, order, placed);
  replay_failed (cause, error);
  return FALSE;
}

/* Two fill strategies: avoid cores other VMs use (fewer shared cores now),
 * or complete half-used cores first (best fit: keeps whole cores for the
 * VMs still to come, which can mean fewer shared cores in the end).  The
 * batch is planned with both and the better score is kept. */
static gboolean
place_dedicated_batch (QpinPlacer *p, GPtrArray *jobs, GError **error)
{
  guint n = MAX (jobs->len, 1);
  g_autofree guint *vm0 = g_new0 (guint, n), *opt0 = g_new0 (guint, n);
  g_autofree guint *vm1 = g_new0 (guint, n), *opt1 = g_new0 (guint, n);
  Recipe r[2] = { { .vm = vm0, .opt = opt0 }, { .vm = vm1, .opt = opt1 } };
  gboolean ok[2];
  g_autoptr (GError) first_error = NULL;

  if (jobs->len == 0)
    return TRUE;
  for (guint i = 0; i < 2; i++)
    {
      p->pack_singles = i == 1;
      ok[i] = plan_batch (p, jobs, &r[i], i == 0 ? &first_error : NULL);
    }
  p->pack_singles = FALSE;
  if (!ok[0] && !ok[1])
    {
      g_propagate_error (error, g_steal_pointer (&first_error));
      return FALSE;
    }
  if (ok[0] && (!ok[1] || qpin_score_compare (&r[0].score, &r[1].score) <= 0))
    return qpin_placer_replay (p, jobs, &r[0], error);
  return qpin_placer_replay (p, jobs, &r[1], error);
}

static char *
job_signature (const QpinPlanVm *vm)
{
  GString *s = g_string_new (NULL);
  const QpinPolicy *pol = vm->policy;

  g_string_append_printf (s, "%d/%d/%d/%d/%d/%d:", pol->cpus, pol->numa, pol->smt, pol->emulator,
                          pol->iothreads, pol->overcommit);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinThreadSpec *t = &g_array_index (vm->threads, QpinPlanThread, i).spec;
      g_string_append_printf (s, "%d.%d.%d.%d.%d.%d.%d;", t->role, t->topo.socket, t->topo.die,
                              t->topo.cluster, t->topo.core, t->topo.thread, t->topo.node);
    }
  return g_string_free (s, FALSE);
}

static QpinPlanVm *
vm_from_request (const QpinRequest *r, const QpinPolicy *policy)
{
  QpinPlanVm *vm = qpin_plan_vm_new (r->name, r->pid, policy);

  for (guint i = 0; i < r->threads->len; i++)
    {
      QpinPlanThread t = { .spec = g_array_index (r->threads, QpinThreadSpec, i) };
      t.changed = TRUE;
      g_array_append_val (vm->threads, t);
    }
  return vm;
}

/* One call of qpin_placer_place(). */
typedef struct {
  GPtrArray *requests; /* QpinRequest */
  GPtrArray *pending;  /* QpinPlanVm * not yet in the plan (owned), NULL once in it */
  GPtrArray *added;    /* QpinPlanVm * now in the plan, in the order added */
  GPtrArray *jobs;     /* Job * of the dedicated VMs */
} Batch;

/* The new VMs as plan VMs in @b->pending, once each name is checked. */
static gboolean
batch_check (QpinPlacer *p, Batch *b, GPtrArray *policies, GError **error)
{
  for (guint i = 0; i < b->requests->len; i++)
    {
      const QpinRequest *r = g_ptr_array_index (b->requests, i);
      const QpinPolicy *pol = g_ptr_array_index (policies, i);

      if (qpin_plan_find_vm (p->plan, r->name))
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                       "vm '%s' is already placed", r->name);
          return FALSE;
        }
      for (guint j = 0; j < i; j++)
        if (strcmp (((const QpinRequest *) g_ptr_array_index (b->requests, j))->name, r->name) == 0)
          {
            g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                         "vm '%s' is requested twice", r->name);
            return FALSE;
          }
      if (!qpin_policy_check (pol, p->topo, r->name, error))
        return FALSE;
      g_ptr_array_add (b->pending, vm_from_request (r, pol));
    }
  return TRUE;
}

/* Moves pending VM @i into the plan. */
static QpinPlanVm *
batch_admit (QpinPlacer *p, Batch *b, guint i)
{
  QpinPlanVm *vm = g_ptr_array_index (b->pending, i);

  g_ptr_array_add (p->plan->vms, vm);
  b->pending->pdata[i] = NULL;
  g_ptr_array_add (b->added, vm);
  return vm;
}

/* Manual VMs first: their CPUs are fixed. */
static gboolean
batch_place_manual (QpinPlacer *p, Batch *b, GError **error)
{
  for (guint i = 0; i < b->pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (b->pending, i);
      QpinCpuset saved;
      gboolean confined, ok;

      if (vm->policy->cpus != QPIN_CPUS_MANUAL)
        continue;
      batch_admit (p, b, i);
      confined = qpin_placer_confine (p, vm, &saved);
      ok = qpin_placer_place_manual (p, qpin_placer_slot_add (p, vm), error);
      qpin_placer_unconfine (p, confined, &saved);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* The dedicated VMs, as jobs ranked for the search. */
static void
batch_jobs (Batch *b)
{
  for (guint i = 0; i < b->pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (b->pending, i);
      Job *job;

      if (vm == NULL || vm->policy->cpus != QPIN_CPUS_DEDICATED)
        continue;
      job = g_new0 (Job, 1);
      job->vm = vm;
      job->n_vcpus = qpin_request_n_vcpus (g_ptr_array_index (b->requests, i));
      job->rank = (vm->policy->smt == QPIN_SMT_ISOLATE ? 0 : 2)
                  + (vm->policy->numa == QPIN_NUMA_STRICT ? 0 : 1);
      job->signature = job_signature (vm);
      g_ptr_array_add (b->jobs, job);
    }
  g_ptr_array_sort (b->jobs, cmp_job);
}

/* Dedicated VMs: the search; the jobs' VMs are in the plan after it. */
static gboolean
batch_place_dedicated (QpinPlacer *p, Batch *b, GError **error)
{
  batch_jobs (b);
  if (!place_dedicated_batch (p, b->jobs, error))
    return FALSE;
  for (guint i = 0; i < b->jobs->len; i++)
    {
      QpinPlanVm *vm = ((Job *) g_ptr_array_index (b->jobs, i))->vm;
      for (guint j = 0; j < b->pending->len; j++)
        if (b->pending->pdata[j] == vm)
          b->pending->pdata[j] = NULL;
      g_ptr_array_add (b->added, vm);
    }
  return TRUE;
}

/* Shared VMs: a pool each. */
static gboolean
batch_place_shared (QpinPlacer *p, Batch *b, GError **error)
{
  for (guint i = 0; i < b->pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (b->pending, i);
      QpinCpuset saved;
      gboolean confined, ok;

      if (vm == NULL)
        continue;
      batch_admit (p, b, i);
      qpin_placer_slot_add (p, vm);
      confined = qpin_placer_confine (p, vm, &saved);
      ok = qpin_placer_choose_pool (p, vm, error);
      qpin_placer_unconfine (p, confined, &saved);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* Keeps the new VMs in request order for stable output. */
static void
batch_reorder (QpinPlacer *p, Batch *b)
{
  g_autoptr (GPtrArray) ordered = g_ptr_array_new ();

  for (guint i = 0; i < b->requests->len; i++)
    {
      const QpinRequest *r = g_ptr_array_index (b->requests, i);
      QpinPlanVm *vm = qpin_placer_vm (p, r->name);
      qpin_placer_plan_unlink (p, vm);
      g_ptr_array_add (ordered, vm);
    }
  for (guint i = 0; i < ordered->len; i++)
    g_ptr_array_add (p->plan->vms, g_ptr_array_index (ordered, i));
}

/* Manual, then dedicated, then shared VMs, with the shared VMs of the
 * batch known to the pool rule while the others are placed. */
static gboolean
batch_place (QpinPlacer *p, Batch *b, GError **error)
{
  g_autoptr (GPtrArray) batch_pool = g_ptr_array_new (); /* borrowed from pending */
  QpinCpuset pool;
  gboolean ok;

  /* the shared VMs of this batch float on the pool the others must leave */
  for (guint i = 0; i < b->pending->len; i++)
    {
      QpinPlanVm *vm = g_ptr_array_index (b->pending, i);
      if (vm->policy->cpus == QPIN_CPUS_SHARED)
        g_ptr_array_add (batch_pool, vm);
    }
  p->batch_pool = batch_pool;
  qpin_placer_shared_pool (p, &pool);
  p->batch_spills = qpin_pool_batch_spills (b->pending, qpin_cpuset_count (&pool));
  ok = batch_place_manual (p, b, error) && batch_place_dedicated (p, b, error);
  p->batch_pool = NULL;
  p->batch_spills = FALSE;
  return ok && batch_place_shared (p, b, error);
}

/**
 * qpin_placer_place:
 * @requests: (element-type QpinRequest): the VMs to add
 * @policies: (element-type QpinPolicy): their merged policies, same order
 *
 * Places several new VMs together, as well as the best order allows,
 * keeping the VMs already placed where they are.  All or nothing.
 *
 * Returns: %TRUE on success; otherwise %QPIN_POLICY_ERROR_NO_FIT naming
 * the VM, the CPUs it needs and the free ones, or _CONFLICT for
 * contradictory policies, and nothing changed.
 */
gboolean
qpin_placer_place (QpinPlacer *p, GPtrArray *requests, GPtrArray *policies, GError **error)
{
  g_autoptr (GPtrArray) jobs = g_ptr_array_new_with_free_func (job_free);
  g_autoptr (GPtrArray) added = g_ptr_array_new ();
  g_autoptr (GPtrArray) pending
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_plan_vm_free);
  Batch b = { .requests = requests, .pending = pending, .added = added, .jobs = jobs };

  g_return_val_if_fail (requests->len == policies->len, FALSE);
  qpin_placer_clear_changed (p);
  if (!batch_check (p, &b, policies, error))
    return FALSE;
  if (!batch_place (p, &b, error))
    {
      for (guint i = added->len; i-- > 0;)
        qpin_placer_drop_vm (p, g_ptr_array_index (added, i)); /* frees it through plan->vms */
      return FALSE;
    }
  batch_reorder (p, &b);
  qpin_placer_finalize_changed (p, added);
  return TRUE;
}
