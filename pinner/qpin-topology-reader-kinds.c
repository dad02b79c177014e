/* qpin-topology-reader-kinds.c: kinds of CPU on hybrid hosts (reading only)
 *
 * Where the kinds come from, in order:
 *   sys/devices/cpu_core/cpus and sys/devices/cpu_atom/cpus   Intel hybrid PMUs: P and E
 *   cpuN/acpi_cppc/highest_perf                              CPPC (x86, some ARM servers)
 *   cpuN/cpu_capacity                                        ARM big.LITTLE
 *   cpuN/cpufreq/cpuinfo_max_freq                            any cpufreq driver
 * A per-CPU source counts only when every online CPU has it.  CPUs whose
 * values are within 20% of the largest value of their group are one kind
 * (favoured P-cores differ by a few units); one group means one kind, and
 * the model then lists none.  Missing files are normal (VMs have none of
 * them) and noted nowhere; garbage is noted and that source ignored.
 */
#define QPIN_TOPOLOGY_READER_ALLOW

#include "qpin-topology-reader-private.h"

#define PMU_CORE "sys/devices/cpu_core/cpus"
#define PMU_ATOM "sys/devices/cpu_atom/cpus"

static const char *const per_cpu_sources[] = {
  "acpi_cppc/highest_perf",
  "cpu_capacity",
  "cpufreq/cpuinfo_max_freq",
};

/* VALUES[cpu] from CPU_DIR/cpuN/FILE for every online CPU; FALSE when one
 * lacks it or holds garbage (noted). */
static gboolean
read_source (QpinReader *r, const char *file, guint *values)
{
  gboolean complete = TRUE;

  QPIN_CPUSET_FOREACH (cpu, &r->topo->online)
    {
      g_autofree char *rel = g_strdup_printf (CPU_DIR "/cpu%d/%s", cpu, file);
      g_autofree char *text = NULL;
      g_autoptr (GError) local = NULL;
      guint64 v;

      if (!qpin_reader_read_file (r, rel, TRUE, &text, &local))
        {
          qpin_reader_note_error (r, local, "kinds not from this file");
          return FALSE;
        }
      if (text == NULL)
        {
          complete = FALSE;
          continue;
        }
      if (!g_ascii_string_to_unsigned (g_strstrip (text), 10, 1, G_MAXINT32, &v, NULL))
        {
          qpin_reader_invalid (r, rel, text, "a positive integer", &local);
          qpin_reader_note_error (r, local, "kinds not from this file");
          return FALSE;
        }
      values[cpu] = (guint) v;
    }
  return complete;
}

static guint
largest (const guint *values, const QpinCpuset *cpus)
{
  guint best = 0;

  if (values)
    QPIN_CPUSET_FOREACH (cpu, cpus)
      best = MAX (best, values[cpu]);
  return best;
}

/* Intel hybrid: P from cpu_core, E from cpu_atom; TRUE when both name online CPUs. */
static gboolean
kinds_from_pmus (QpinReader *r, const guint *values, const char *file)
{
  QpinCpuset p, e;
  g_autoptr (GError) local = NULL;
  g_autofree char *source = NULL;

  if (!qpin_reader_read_cpulist (r, PMU_CORE, TRUE, &p, &local)
      || !qpin_reader_read_cpulist (r, PMU_ATOM, TRUE, &e, &local))
    {
      qpin_reader_note_error (r, local, "kinds not from the cpu_core and cpu_atom PMUs");
      return FALSE;
    }
  qpin_cpuset_and (&p, &r->topo->online);
  qpin_cpuset_and (&e, &r->topo->online);
  if (qpin_cpuset_is_empty (&p) || qpin_cpuset_is_empty (&e))
    return FALSE;
  source = values
             ? g_strdup_printf (PMU_CORE ", " PMU_ATOM " (capacity: " CPU_DIR "/cpuN/%s)", file)
             : g_strdup (PMU_CORE ", " PMU_ATOM);
  qpin_topology_add_kind (r->topo, "P", &p, largest (values, &p), source);
  qpin_topology_add_kind (r->topo, "E", &e, largest (values, &e), source);
  return TRUE;
}

static gint
cmp_desc (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;
  return x > y ? -1 : x < y;
}

/* Groups the online CPUs by VALUES, highest first; a group takes every
 * value down to 80% of its largest. */
static void
kinds_from_values (QpinReader *r, const guint *values, const char *file)
{
  g_autoptr (GArray) sorted = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) tops = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree char *source = g_strdup_printf (CPU_DIR "/cpuN/%s", file);

  QPIN_CPUSET_FOREACH (cpu, &r->topo->online)
    g_array_append_val (sorted, values[cpu]);
  g_array_sort (sorted, cmp_desc);
  for (guint i = 0; i < sorted->len; i++)
    {
      guint v = g_array_index (sorted, guint, i);
      if (tops->len == 0
          || (guint64) v * 5 < (guint64) g_array_index (tops, guint, tops->len - 1) * 4)
        g_array_append_val (tops, v);
    }
  if (tops->len < 2)
    return;
  for (guint k = 0; k < tops->len; k++)
    {
      guint top = g_array_index (tops, guint, k);
      guint next = k + 1 < tops->len ? g_array_index (tops, guint, k + 1) : 0;
      g_autofree char *name
        = tops->len == 2 ? g_strdup (k ? "E" : "P") : g_strdup_printf ("K%u", k);
      QpinCpuset cpus;

      qpin_cpuset_clear_all (&cpus);
      QPIN_CPUSET_FOREACH (cpu, &r->topo->online)
        if (values[cpu] <= top && values[cpu] > next)
          qpin_cpuset_add (&cpus, (guint) cpu);
      qpin_topology_add_kind (r->topo, name, &cpus, top, source);
    }
}

/**
 * qpin_reader_read_kinds:
 *
 * Adds the kinds of the online CPUs to the topology (after its CPUs are
 * set), when there are two or more.  Never fails.
 */
void
qpin_reader_read_kinds (QpinReader *r)
{
  guint n_slots = (guint) (qpin_cpuset_last (&r->topo->online) + 1);
  g_autofree guint *values = NULL;
  gint best = -1;

  if (n_slots == 0)
    return;
  values = g_new0 (guint, G_N_ELEMENTS (per_cpu_sources) * n_slots);
  /* every source is read, so that a capture holds them all */
  for (guint s = 0; s < G_N_ELEMENTS (per_cpu_sources); s++)
    if (read_source (r, per_cpu_sources[s], values + s * n_slots) && best < 0)
      best = (gint) s;
  if (kinds_from_pmus (r, best >= 0 ? values + (guint) best * n_slots : NULL,
                       best >= 0 ? per_cpu_sources[best] : NULL))
    return;
  if (best >= 0)
    kinds_from_values (r, values + (guint) best * n_slots, per_cpu_sources[best]);
}
