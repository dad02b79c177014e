/* qpin-top-output.c: the rows and the JSON document of `qpin top`
 *
 * One row builder for the batch table and the live view, one JSON writer:
 * a column added here appears everywhere.
 */

#include "qpin-top.h"
#include "qpin-json.h"

#include <math.h>
#include <string.h>

#define ROW_FORMAT "%-16.16s %-9.9s %3s %8s %4s %-10.10s %6s %6s %6s %6s %7s"
#define PMU_FORMAT " %5s %8s"

static const char *const sort_names[] = {
  [QPIN_TOP_SORT_CPU] = "%CPU",         [QPIN_TOP_SORT_WAIT] = "%WAIT",
  [QPIN_TOP_SORT_MIGRATIONS] = "MIG/s", [QPIN_TOP_SORT_SWITCHES] = "CSW/s",
  [QPIN_TOP_SORT_NAME] = "VM",
};

/**
 * qpin_top_sort_name:
 *
 * Returns: (transfer none): the column a sort order sorts by
 */
const char *
qpin_top_sort_name (QpinTopSort sort)
{
  return sort_names[sort];
}

void
qpin_top_row_free (QpinTopRow *row)
{
  if (row == NULL)
    return;
  g_free (row->text);
  g_free (row);
}

static char *
num (double v, gboolean known)
{
  return known && !isnan (v) ? g_strdup_printf ("%.1f", v) : g_strdup ("-");
}

static char *
num2 (double v)
{
  return isnan (v) ? g_strdup ("-") : g_strdup_printf ("%.2f", v);
}

/**
 * qpin_top_column_titles:
 *
 * Returns: (transfer full): the title line matching qpin_top_rows()
 */
char *
qpin_top_column_titles (gboolean pmu)
{
  g_autofree char *base = g_strdup_printf (ROW_FORMAT, "VM", "ROLE", "IDX", "TID", "CPU", "PLANNED",
                                           "%CPU", "%GUEST", "%WAIT", "MIG/s", "CSW/s");
  g_autofree char *extra = pmu ? g_strdup_printf (PMU_FORMAT, "IPC", "LLC-MPKI") : g_strdup ("");

  return g_strdup_printf ("%s%s %s", base, extra, "FLAGS");
}

static char *
flags_of (const QpinThreadStats *st, const QpinTopThread *t)
{
  GString *f = g_string_new (NULL);

  if (st->gone)
    g_string_append_c (f, 'G');
  if (st->off_plan)
    g_string_append_c (f, 'O');
  if (t->drift)
    g_string_append_c (f, 'D');
  if (st->sibling_busy)
    g_string_append_c (f, 'S');
  if (st->noise)
    g_string_append_c (f, 'N');
  if (f->len == 0)
    g_string_append_c (f, '-');
  return g_string_free (f, FALSE);
}

static char *
thread_row (const QpinTopVm *vm, const QpinTopThread *t, const QpinThreadStats *st, gboolean pmu)
{
  gboolean v = st && st->valid;
  const QpinThreadRates *r = v ? &st->rates : NULL;
  g_autofree char *idx = g_strdup_printf ("%d", t->index);
  g_autofree char *tid = g_strdup_printf ("%d", t->tid);
  g_autofree char *cpu
    = st && !st->gone && st->cpu >= 0 ? g_strdup_printf ("%d", st->cpu) : g_strdup ("-");
  g_autofree char *planned = t->has_plan ? qpin_cpuset_format (&t->planned) : g_strdup ("-");
  g_autofree char *c = num (v ? r->cpu_pct : 0, v), *g = num (v ? r->guest_pct : 0, v);
  g_autofree char *w = num (v ? r->wait_pct : 0, v), *m = num (v ? r->migrations_per_s : 0, v);
  g_autofree char *s = num (v ? r->vcsw_per_s + r->icsw_per_s : 0, v);
  g_autofree char *ipc = num2 (v ? st->ipc : NAN), *mpki = num2 (v ? st->llc_mpki : NAN);
  g_autofree char *flags = st ? flags_of (st, t) : g_strdup ("-");
  g_autofree char *base
    = g_strdup_printf (ROW_FORMAT, vm->name, qpin_thread_role_to_string (t->role), idx, tid, cpu,
                       planned, c, g, w, m, s);
  g_autofree char *extra = pmu ? g_strdup_printf (PMU_FORMAT, ipc, mpki) : g_strdup ("");

  return g_strdup_printf ("%s%s %s", base, extra, flags);
}

static double
sort_key (const QpinThreadStats *st, QpinTopSort sort)
{
  if (st == NULL || !st->valid)
    return -1;
  switch (sort)
    {
    case QPIN_TOP_SORT_WAIT:
      return isnan (st->rates.wait_pct) ? -1 : st->rates.wait_pct;
    case QPIN_TOP_SORT_MIGRATIONS:
      return isnan (st->rates.migrations_per_s) ? -1 : st->rates.migrations_per_s;
    case QPIN_TOP_SORT_SWITCHES:
      return st->rates.vcsw_per_s + st->rates.icsw_per_s;
    case QPIN_TOP_SORT_CPU:
      return st->rates.cpu_pct;
    case QPIN_TOP_SORT_NAME:
    case QPIN_TOP_N_SORTS:
      break;
    }
  return 0;
}

typedef struct {
  const QpinTopThread *t;
  const QpinThreadStats *st;
  double key;
} Ranked;

static gint
compare_ranked (gconstpointer a, gconstpointer b)
{
  const Ranked *x = a, *y = b;

  if (x->key != y->key)
    return x->key < y->key ? 1 : -1;
  return x->t->tid < y->t->tid ? -1 : x->t->tid > y->t->tid;
}

typedef struct {
  const QpinTopVm *vm;
  GArray *threads; /* Ranked */
  double key;
  QpinThreadRates sum;
} RankedVm;

static void
ranked_vm_clear (gpointer p)
{
  g_array_unref (((RankedVm *) p)->threads);
}

static gint
compare_ranked_vm (gconstpointer a, gconstpointer b, gpointer sort)
{
  const RankedVm *x = a, *y = b;

  if (GPOINTER_TO_INT (sort) != QPIN_TOP_SORT_NAME && x->key != y->key)
    return x->key < y->key ? 1 : -1;
  return g_strcmp0 (x->vm->name, y->vm->name);
}

static RankedVm
rank_vm (QpinSampler *sampler, const QpinTopVm *vm, QpinTopSort sort)
{
  RankedVm r = { vm, g_array_new (FALSE, FALSE, sizeof (Ranked)), 0, { 0 } };

  for (guint j = 0; j < vm->threads->len; j++)
    {
      Ranked t = { &g_array_index (vm->threads, QpinTopThread, j), NULL, 0 };

      t.st = qpin_sampler_lookup (sampler, t.t->tid);
      t.key = sort == QPIN_TOP_SORT_NAME ? -(double) j : sort_key (t.st, sort);
      if (t.st && t.st->valid)
        {
          r.key += MAX (t.key, 0);
          r.sum.cpu_pct += t.st->rates.cpu_pct;
          r.sum.guest_pct += t.st->rates.guest_pct;
          r.sum.wait_pct += isnan (t.st->rates.wait_pct) ? 0 : t.st->rates.wait_pct;
          r.sum.migrations_per_s
            += isnan (t.st->rates.migrations_per_s) ? 0 : t.st->rates.migrations_per_s;
          r.sum.vcsw_per_s += t.st->rates.vcsw_per_s + t.st->rates.icsw_per_s;
        }
      g_array_append_val (r.threads, t);
    }
  g_array_sort (r.threads, compare_ranked);
  return r;
}

static char *
vm_row (const RankedVm *r, gboolean collapsed, gboolean pmu)
{
  g_autofree char *name = g_strdup_printf ("%s %s", collapsed ? "+" : "-", r->vm->name);
  g_autofree char *pid = g_strdup_printf ("%d", r->vm->pid);
  g_autofree char *c = num (r->sum.cpu_pct, TRUE), *g = num (r->sum.guest_pct, TRUE);
  g_autofree char *w = num (r->sum.wait_pct, TRUE), *m = num (r->sum.migrations_per_s, TRUE);
  g_autofree char *s = num (r->sum.vcsw_per_s, TRUE);
  g_autofree char *base = g_strdup_printf (ROW_FORMAT, name, r->vm->state ? r->vm->state : "vm", "",
                                           pid, "", "", c, g, w, m, s);

  return g_strdup_printf ("%s%s %u threads", base, pmu ? "               " : "",
                          r->vm->threads->len);
}

static QpinTopRow *
row_new (gboolean vm_row, GPid pid, char *text)
{
  QpinTopRow *row = g_new0 (QpinTopRow, 1);

  row->vm_row = vm_row;
  row->pid = pid;
  row->text = text;
  return row;
}

/**
 * qpin_top_rows:
 * @vms: (element-type QpinTopVm)
 * @collapsed: (nullable): pids of VMs shown as their summary line only
 *
 * VMs by their threads' total of the sort column (by name for
 * QPIN_TOP_SORT_NAME), each as a summary line, then its threads sorted
 * the same way.
 *
 * Returns: (transfer full) (element-type QpinTopRow): the lines to show
 */
GPtrArray *
qpin_top_rows (QpinSampler *sampler, GPtrArray *vms, QpinTopSort sort, GHashTable *collapsed,
               gboolean pmu)
{
  g_autoptr (GArray) ranked = g_array_new (FALSE, FALSE, sizeof (RankedVm));
  GPtrArray *rows = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_top_row_free);

  g_array_set_clear_func (ranked, ranked_vm_clear);
  for (guint i = 0; i < vms->len; i++)
    {
      RankedVm r = rank_vm (sampler, g_ptr_array_index (vms, i), sort);
      g_array_append_val (ranked, r);
    }
  g_array_sort_with_data (ranked, compare_ranked_vm, GINT_TO_POINTER (sort));
  for (guint i = 0; i < ranked->len; i++)
    {
      const RankedVm *r = &g_array_index (ranked, RankedVm, i);
      gboolean folded
        = collapsed && g_hash_table_contains (collapsed, GINT_TO_POINTER (r->vm->pid));

      g_ptr_array_add (rows, row_new (TRUE, r->vm->pid, vm_row (r, folded, pmu)));
      for (guint j = 0; !folded && j < r->threads->len; j++)
        {
          const Ranked *t = &g_array_index (r->threads, Ranked, j);
          g_ptr_array_add (rows, row_new (FALSE, r->vm->pid, thread_row (r->vm, t->t, t->st, pmu)));
        }
    }
  return rows;
}

/**
 * qpin_top_header:
 *
 * Returns: (transfer full): "host busy 12.5 %, 4 CPUs; 3 VMs: 2 pinned, ..."
 */
char *
qpin_top_header (QpinSampler *sampler, GPtrArray *vms, const QpinTopSource *source)
{
  guint pinned = 0, degraded = 0, failed = 0;

  for (guint i = 0; i < vms->len; i++)
    {
      const char *state = ((QpinTopVm *) g_ptr_array_index (vms, i))->state;
      pinned += g_strcmp0 (state, "pinned") == 0;
      degraded += g_strcmp0 (state, "degraded") == 0;
      failed += g_strcmp0 (state, "failed") == 0;
    }
  if (source->kind != QPIN_TOP_SOURCE_DAEMON)
    return g_strdup_printf ("host busy %.1f %%, %u CPUs; %u VMs (no daemon: nothing planned)",
                            qpin_sampler_get_host_busy_pct (sampler),
                            qpin_sampler_get_cpus (sampler)->len, vms->len);
  return g_strdup_printf ("host busy %.1f %%, %u CPUs; %u VMs: %u pinned, %u degraded, %u failed",
                          qpin_sampler_get_host_busy_pct (sampler),
                          qpin_sampler_get_cpus (sampler)->len, vms->len, pinned, degraded, failed);
}

static void
add_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  if (isnan (v))
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, round (v * 100) / 100);
}

static void
add_bool (JsonBuilder *b, const char *name, gboolean v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, v);
}

/* "stats": rates over the interval, or null before the second sample */
static void
stats_to_json (JsonBuilder *b, const QpinThreadStats *st, const QpinTopThread *t)
{
  json_builder_set_member_name (b, "stats");
  if (st == NULL || !st->valid)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  add_double (b, "cpu_pct", st->rates.cpu_pct);
  add_double (b, "guest_pct", st->rates.guest_pct);
  add_double (b, "wait_pct", st->rates.wait_pct);
  add_double (b, "migrations", st->rates.migrations_per_s);
  add_double (b, "ctx_switches", st->rates.vcsw_per_s + st->rates.icsw_per_s);
  add_double (b, "involuntary_switches", st->rates.icsw_per_s);
  add_double (b, "slices", st->rates.slices_per_s);
  qpin_json_add_int (b, "cpu", st->cpu);
  add_bool (b, "off_plan", st->off_plan);
  add_bool (b, "drift", t->drift);
  add_bool (b, "sibling_busy", st->sibling_busy);
  add_bool (b, "noise", st->noise);
  add_double (b, "ipc", st->ipc);
  add_double (b, "llc_mpki", st->llc_mpki);
  qpin_json_add_int (b, "total_cpu_ns", (gint64) st->total_cpu_ns);
  qpin_json_add_int (b, "total_wait_ns", (gint64) st->total_wait_ns);
  qpin_json_add_int (b, "total_ctx_switches", (gint64) st->total_ctx_switches);
  qpin_json_add_int (b, "total_migrations", (gint64) st->total_migrations);
  json_builder_end_object (b);
}

static void
thread_to_json (JsonBuilder *b, QpinSampler *sampler, const QpinTopThread *t)
{
  const QpinThreadStats *st = qpin_sampler_lookup (sampler, t->tid);

  json_builder_begin_object (b);
  qpin_json_add_string (b, "role", qpin_thread_role_to_string (t->role));
  qpin_json_add_int (b, "index", t->index);
  qpin_json_add_int (b, "tid", t->tid);
  if (t->has_plan)
    qpin_json_add_cpuset (b, "cpus", &t->planned);
  else
    {
      json_builder_set_member_name (b, "cpus");
      json_builder_add_null_value (b);
    }
  if (st && !st->gone && st->cpu >= 0)
    {
      qpin_json_add_string (b, "name", st->comm);
      qpin_json_add_cpuset (b, "actual", &st->affinity);
    }
  add_bool (b, "gone", st == NULL || st->gone);
  stats_to_json (b, st, t);
  json_builder_end_object (b);
}

static void
vm_to_json (JsonBuilder *b, QpinSampler *sampler, const QpinTopVm *vm)
{
  static const char *const role_keys[]
    = { "vcpus_pct", "emulator_pct", "iothreads_pct", "other_pct" };
  QpinVmTotals totals;

  qpin_sampler_vm_totals (sampler, vm->pid, &totals);
  json_builder_begin_object (b);
  qpin_json_add_string (b, "name", vm->name);
  qpin_json_add_int (b, "pid", vm->pid);
  if (vm->state)
    qpin_json_add_string (b, "state", vm->state);
  json_builder_set_member_name (b, "totals");
  json_builder_begin_object (b);
  add_double (b, "cpu_pct", totals.cpu_pct);
  for (guint r = 0; r < G_N_ELEMENTS (role_keys); r++)
    add_double (b, role_keys[r], totals.by_role[r]);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "threads");
  json_builder_begin_array (b);
  for (guint j = 0; j < vm->threads->len; j++)
    thread_to_json (b, sampler, &g_array_index (vm->threads, QpinTopThread, j));
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static void
host_to_json (JsonBuilder *b, QpinSampler *sampler)
{
  GArray *cpus = qpin_sampler_get_cpus (sampler);

  json_builder_set_member_name (b, "host");
  json_builder_begin_object (b);
  add_double (b, "busy_pct", qpin_sampler_get_host_busy_pct (sampler));
  json_builder_set_member_name (b, "cpus");
  json_builder_begin_array (b);
  for (guint i = 0; i < cpus->len; i++)
    {
      const QpinCpuStats *c = &g_array_index (cpus, QpinCpuStats, i);
      json_builder_begin_object (b);
      qpin_json_add_int (b, "cpu", c->cpu);
      add_double (b, "busy_pct", c->busy_pct);
      add_double (b, "irqs_per_s", c->irqs_per_s);
      json_builder_set_member_name (b, "owner");
      if (c->owner)
        json_builder_add_string_value (b, c->owner);
      else
        json_builder_add_null_value (b);
      add_double (b, "noise_pct", c->noise_pct);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
}

/**
 * qpin_top_to_json:
 *
 * Returns: (transfer full): {"interval_s" (measured), "vms":[{"name","pid","state",
 *   "totals","threads":[{"role","index","tid","cpus","stats":{...}}]}],
 *   "host":{"busy_pct","cpus":[{"cpu","busy_pct","irqs_per_s","owner",
 *   "noise_pct"}]}, "pmu": null or why there are no hardware counters}
 */
JsonNode *
qpin_top_to_json (QpinSampler *sampler, GPtrArray *vms)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();

  json_builder_begin_object (b);
  add_double (b, "interval_s", (double) qpin_sampler_get_interval_ns (sampler) / 1e9);
  json_builder_set_member_name (b, "vms");
  json_builder_begin_array (b);
  for (guint i = 0; i < vms->len; i++)
    vm_to_json (b, sampler, g_ptr_array_index (vms, i));
  json_builder_end_array (b);
  host_to_json (b, sampler);
  json_builder_set_member_name (b, "pmu");
  if (qpin_sampler_get_pmu_note (sampler))
    json_builder_add_string_value (b, qpin_sampler_get_pmu_note (sampler));
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
