/* qpin-diag-irq.c: device IRQs landing on dedicated CPUs, irqbalance */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-private.h"

#include <string.h>

static gboolean
is_device_irq (const char *name)
{
  return g_ascii_isdigit (name[0]);
}

/* Adds {"irq","name","rate"} for each device IRQ that fired on @cpu;
 * returns the total rate (per second) on @cpu. */
static double
irqs_on_cpu (const QpinDiag *diag, guint cpu, JsonArray *irqs)
{
  GHashTableIter it;
  gpointer value;
  double total = 0;

  g_hash_table_iter_init (&it, diag->after.irqs);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      const QpinDiagIrq *b = value;
      const QpinDiagIrq *a = g_hash_table_lookup (diag->before.irqs, b->name);
      guint64 ca, cb;
      JsonObject *o;

      if (a == NULL || !is_device_irq (b->name) || cpu >= a->counts->len || cpu >= b->counts->len)
        continue;
      ca = g_array_index (a->counts, guint64, cpu);
      cb = g_array_index (b->counts, guint64, cpu);
      if (cb <= ca)
        continue;
      o = json_object_new ();
      json_object_set_string_member (o, "irq", b->name);
      json_object_set_string_member (o, "name", b->desc);
      json_object_set_double_member (o, "rate", (double) (cb - ca) / diag->seconds);
      json_array_add_object_element (irqs, o);
      total += (double) (cb - ca) / diag->seconds;
    }
  return total;
}

static void
check_irqs_on_dedicated (QpinDiag *diag, QpinFindings *out)
{
  if (qpin_cpuset_is_empty (&diag->dedicated))
    return;
  if (!diag->before.has_interrupts || !diag->after.has_interrupts)
    {
      qpin_findings_not_checked (out, "irqs-on-dedicated", NULL, "proc/interrupts unreadable");
      return;
    }
  QPIN_CPUSET_FOREACH (cpu, &diag->dedicated)
    {
      g_autoptr (JsonArray) irqs = json_array_new ();
      double rate = irqs_on_cpu (diag, (guint) cpu, irqs);
      QpinFinding *f;

      if (json_array_get_length (irqs) == 0)
        continue;
      f = qpin_findings_add (out, "irqs-on-dedicated", QPIN_SEVERITY_WARNING, NULL,
                             "set irqs = avoid in qpin's [defaults] (or write the other CPUs to "
                             "/proc/irq/N/smp_affinity_list for each IRQ listed)",
                             "%u device IRQs hit dedicated CPU %d: %.1f per second",
                             json_array_get_length (irqs), cpu, rate);
      json_object_set_int_member (f->evidence, "cpu", cpu);
      json_object_set_double_member (f->evidence, "rate", rate);
      json_object_set_array_member (f->evidence, "irqs", json_array_ref (irqs));
    }
}

/* IRQBALANCE_BANNED_CPUS is a hex mask (comma-separated 32-bit words,
 * lowest CPU last) */
static void
parse_mask (const char *value, QpinCpuset *out)
{
  guint bit = 0;

  for (gint i = (gint) strlen (value) - 1; i >= 0; i--)
    {
      gint d = g_ascii_xdigit_value (value[i]);

      if (d < 0)
        continue;
      for (gint b = 0; b < 4; b++, bit++)
        if ((d & (1 << b)) && bit < QPIN_CPUSET_MAX)
          qpin_cpuset_add (out, bit);
    }
}

/* One "NAME=VALUE" of irqbalance's environment or its defaults file */
static void
banned_from_line (const char *line, QpinCpuset *banned)
{
  const char *list = "IRQBALANCE_BANNED_CPULIST=", *mask = "IRQBALANCE_BANNED_CPUS=";
  g_autofree char *value = NULL;
  QpinCpuset set;

  while (g_ascii_isspace (*line))
    line++;
  if (g_str_has_prefix (line, list))
    {
      value = g_shell_unquote (line + strlen (list), NULL);
      if (value && qpin_cpuset_parse (g_strstrip (value), &set, NULL))
        qpin_cpuset_or (banned, &set);
    }
  else if (g_str_has_prefix (line, mask))
    {
      value = g_shell_unquote (line + strlen (mask), NULL);
      if (value)
        parse_mask (value, banned);
    }
}

/* The CPUs irqbalance was told to leave alone, from its environment and
 * etc/default/irqbalance. */
static void
irqbalance_banned (const QpinDiag *diag, gint64 pid, QpinCpuset *banned)
{
  g_autofree char *rel = g_strdup_printf ("proc/%" G_GINT64_FORMAT "/environ", pid);
  g_autofree char *path = g_build_filename (diag->root, rel, NULL);
  g_autofree char *env = NULL;
  g_autofree char *deflt = qpin_diag_read (diag->root, "etc/default/irqbalance", NULL);
  g_auto (GStrv) lines = deflt ? g_strsplit (deflt, "\n", 0) : NULL;
  gsize len = 0;

  qpin_cpuset_clear_all (banned);
  if (g_file_get_contents (path, &env, &len, NULL))
    for (gsize off = 0; off < len; off += strlen (env + off) + 1)
      banned_from_line (env + off, banned);
  for (guint i = 0; lines && lines[i]; i++)
    banned_from_line (lines[i], banned);
}

static void
check_irqbalance (QpinDiag *diag, QpinFindings *out)
{
  GHashTableIter it;
  gpointer value;

  if (qpin_cpuset_is_empty (&diag->dedicated))
    return;
  g_hash_table_iter_init (&it, diag->before.tasks);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      const QpinDiagTask *t = value;
      QpinCpuset banned, missing = diag->dedicated;
      g_autofree char *list = NULL;
      g_autofree char *fix = NULL;
      QpinFinding *f;

      if (t->tid != t->pid || !g_str_equal (t->comm, "irqbalance"))
        continue;
      irqbalance_banned (diag, t->pid, &banned);
      qpin_cpuset_andnot (&missing, &banned);
      if (qpin_cpuset_is_empty (&missing))
        continue;
      list = qpin_cpuset_format (&diag->dedicated);
      fix = g_strdup_printf ("add IRQBALANCE_BANNED_CPULIST=%s to /etc/default/irqbalance (or "
                             "/etc/sysconfig/irqbalance) and restart irqbalance",
                             list);
      f = qpin_findings_add (out, "irqbalance-unaware", QPIN_SEVERITY_WARNING, NULL, fix,
                             "irqbalance (pid %" G_GINT64_FORMAT ") may move IRQs onto the "
                             "dedicated CPUs",
                             t->pid);
      json_object_set_int_member (f->evidence, "pid", t->pid);
      g_free (list);
      list = qpin_cpuset_format (&missing);
      json_object_set_string_member (f->evidence, "not_banned", list);
    }
}

/**
 * qpin_diag_check_irqs:
 *
 * irqs-on-dedicated, irqbalance-unaware
 */
void
qpin_diag_check_irqs (QpinDiag *diag, QpinFindings *out)
{
  check_irqs_on_dedicated (diag, out);
  check_irqbalance (diag, out);
}
