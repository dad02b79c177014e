/* qpin-irq.c: device IRQs kept off dedicated CPUs, and put back */

#include "qpin-irq.h"
#include "qpin-irq-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_IRQ -1 /* /proc/irq/default_smp_affinity, a hex mask */

typedef struct {
  gint irq;
  QpinCpuset original; /* as found before qpin first changed it */
  gboolean refused;    /* the kernel would not take a new mask: said once */
} SavedIrq;

static struct {
  gboolean active;
  gboolean fresh;     /* nothing steered yet since the start */
  char *root;         /* "/" live, a tree in tests */
  char *state;        /* the originals, kept across a crash; NULL: not kept */
  QpinCpuset avoided; /* what the masks now leave out */
  GArray *saved;      /* SavedIrq */
} steer;

/* "0-3,8" in smp_affinity_list; the hex mask "ff,00000001" (32-bit words,
 * lowest last) in default_smp_affinity */
static gboolean
parse_mask (const char *text, QpinCpuset *out)
{
  guint bit = 0;

  qpin_cpuset_clear_all (out);
  for (gint i = (gint) strlen (text) - 1; i >= 0; i--)
    {
      gint d = g_ascii_xdigit_value (text[i]);

      if (text[i] == ',' || g_ascii_isspace (text[i]))
        continue;
      if (d < 0)
        return FALSE;
      for (gint b = 0; b < 4; b++, bit++)
        if ((d & (1 << b)) && bit < QPIN_CPUSET_MAX)
          qpin_cpuset_add (out, bit);
    }
  return TRUE;
}

static char *
format_mask (const QpinCpuset *set)
{
  gint last = qpin_cpuset_last (set);
  GString *s = g_string_new (NULL);

  for (gint word = MAX (last, 0) / 32; word >= 0; word--)
    {
      guint32 v = 0;
      for (guint b = 0; b < 32; b++)
        if (qpin_cpuset_has (set, (guint) word * 32 + b))
          v |= 1u << b;
      g_string_append_printf (s, "%s%08x", s->len ? "," : "", v);
    }
  return g_string_free (s, FALSE);
}

static char *
irq_path (gint irq)
{
  g_autofree char *name = irq == DEFAULT_IRQ ? g_strdup ("default_smp_affinity")
                                             : g_strdup_printf ("%d/smp_affinity_list", irq);

  return g_build_filename (steer.root, "proc", "irq", name, NULL);
}

static gboolean
read_irq (gint irq, QpinCpuset *out)
{
  g_autofree char *path = irq_path (irq);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  g_strstrip (text);
  return irq == DEFAULT_IRQ ? parse_mask (text, out) : qpin_cpuset_parse (text, out, NULL);
}

/* procfs takes a plain write; returns 0 or the errno */
static int
write_irq (gint irq, const QpinCpuset *set)
{
  g_autofree char *path = irq_path (irq);
  g_autofree char *text = irq == DEFAULT_IRQ ? format_mask (set) : qpin_cpuset_format (set);
  FILE *f = fopen (path, "w");
  int err = 0;

  if (f == NULL)
    return errno;
  if (fputs (text, f) < 0 || fflush (f) != 0)
    err = errno;
  if (fclose (f) != 0 && err == 0)
    err = errno;
  return err;
}

static SavedIrq *
saved_of (gint irq, const QpinCpuset *now)
{
  SavedIrq fresh = { irq };

  for (guint i = 0; i < steer.saved->len; i++)
    if (g_array_index (steer.saved, SavedIrq, i).irq == irq)
      return &g_array_index (steer.saved, SavedIrq, i);
  fresh.original = *now;
  g_array_append_val (steer.saved, fresh);
  return &g_array_index (steer.saved, SavedIrq, steer.saved->len - 1);
}

/* Gives @irq its original mask minus @avoid, unless that leaves it no CPU */
static void
steer_one (gint irq, const QpinCpuset *avoid, GString *refused)
{
  QpinCpuset now, target;
  SavedIrq *s;
  int err;

  if (!read_irq (irq, &now))
    return; /* gone, or unreadable: nothing to restore either */
  s = saved_of (irq, &now);
  target = s->original;
  qpin_cpuset_andnot (&target, avoid);
  if (qpin_cpuset_is_empty (&target))
    target = s->original;
  if (qpin_cpuset_equal (&target, &now))
    return;
  err = write_irq (irq, &target);
  if (err != 0 && !s->refused)
    {
      s->refused = TRUE;
      if (irq == DEFAULT_IRQ)
        g_string_append_printf (refused, "%sdefault (%s)", refused->len ? ", " : "",
                                g_strerror (err));
      else
        g_string_append_printf (refused, "%s%d (%s)", refused->len ? ", " : "", irq,
                                g_strerror (err));
    }
}

/* "irqbalance moves IRQs back": say so once, with the way out */
static void
warn_irqbalance (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_strdup_printf ("/proc/%s/comm", name);
      g_autofree char *comm = NULL;

      if (g_ascii_isdigit (name[0]) && g_file_get_contents (path, &comm, NULL, NULL)
          && g_str_equal (g_strstrip (comm), "irqbalance"))
        {
          g_warning ("irqs=avoid: irqbalance (pid %s) runs and may move IRQs back onto dedicated "
                     "cpus: ban them there ('qpin diagnose' prints the line)",
                     name);
          return;
        }
    }
}

/* The state file: one "IRQ CPULIST" line per mask qpin changed ("default"
 * for default_smp_affinity), the mask as found before.  A daemon killed
 * while IRQs avoid its CPUs finds there, when it starts again, what to put
 * back: otherwise it would take the avoided masks for the originals. */
static void
load_state (void)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (steer.state == NULL || !g_file_get_contents (steer.state, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", 0);
  for (guint i = 0; lines[i]; i++)
    {
      g_auto (GStrv) f = g_strsplit (lines[i], " ", 2);
      SavedIrq s = { 0 };
      guint64 irq;

      if (g_strv_length (f) != 2 || !qpin_cpuset_parse (f[1], &s.original, NULL)
          || qpin_cpuset_is_empty (&s.original))
        continue;
      if (g_str_equal (f[0], "default"))
        s.irq = DEFAULT_IRQ;
      else if (g_ascii_string_to_unsigned (f[0], 10, 0, G_MAXINT, &irq, NULL))
        s.irq = (gint) irq;
      else
        continue;
      g_array_append_val (steer.saved, s);
    }
  if (steer.saved->len)
    g_message ("irqs=avoid: %u irq masks left changed by a previous run, from '%s'",
               steer.saved->len, steer.state);
}

static void
save_state (void)
{
  g_autoptr (GString) s = g_string_new (NULL);
  g_autoptr (GError) error = NULL;

  if (steer.state == NULL)
    return;
  if (qpin_cpuset_is_empty (&steer.avoided))
    {
      g_unlink (steer.state);
      return;
    }
  for (guint i = 0; i < steer.saved->len; i++)
    {
      const SavedIrq *saved = &g_array_index (steer.saved, SavedIrq, i);
      g_autofree char *list = qpin_cpuset_format (&saved->original);

      if (saved->irq == DEFAULT_IRQ)
        g_string_append_printf (s, "default %s\n", list);
      else
        g_string_append_printf (s, "%d %s\n", saved->irq, list);
    }
  if (!g_file_set_contents_full (steer.state, s->str, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &error))
    g_warning ("irqs=avoid: cannot keep the irq masks for a restart: %s", error->message);
}

/**
 * qpin_irq_steer_configure:
 * @config: the daemon's configuration; [defaults] irqs decides
 * @dry_run: never touch the host
 * @control_path: the daemon's control socket: the masks to put back are
 *   kept beside it (QPIN_IRQ_STATE_FILE_NAME)
 *
 * Returns: TRUE (a step in the daemon's setup chain)
 */
gboolean
qpin_irq_steer_configure (const QpinConfig *config, gboolean dry_run, const char *control_path)
{
  g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (config, NULL, NULL);
  g_autofree char *dir = g_path_get_dirname (control_path);
  g_autofree char *state = g_build_filename (dir, QPIN_IRQ_STATE_FILE_NAME, NULL);

  if (defaults && defaults->irqs == QPIN_IRQS_AVOID && !dry_run)
    {
      qpin_irq_steer_start ("/", state);
      warn_irqbalance ();
    }
  return TRUE;
}

/**
 * qpin_irq_steer_start:
 * @root: "/" for the host; tests give a tree holding proc/irq
 * @state_path: (nullable): where the original masks are kept across a
 *   crash (read now: a previous run's originals win)
 *
 * Starts steering (irqs = avoid) with nothing avoided yet.
 */
void
qpin_irq_steer_start (const char *root, const char *state_path)
{
  qpin_irq_steer_stop ();
  steer.active = TRUE;
  steer.fresh = TRUE;
  steer.root = g_strdup (root);
  steer.state = g_strdup (state_path);
  steer.saved = g_array_new (FALSE, FALSE, sizeof (SavedIrq));
  qpin_cpuset_clear_all (&steer.avoided);
  load_state ();
}

static void
steer_all (const QpinCpuset *avoid)
{
  g_autofree char *irq_dir = g_build_filename (steer.root, "proc", "irq", NULL);
  g_autoptr (GDir) dir = g_dir_open (irq_dir, 0, NULL);
  g_autoptr (GString) refused = g_string_new (NULL);
  const char *name;

  steer_one (DEFAULT_IRQ, avoid, refused);
  while (dir && (name = g_dir_read_name (dir)))
    {
      guint64 irq;
      if (g_ascii_string_to_unsigned (name, 10, 0, G_MAXINT, &irq, NULL))
        steer_one ((gint) irq, avoid, refused);
    }
  if (refused->len)
    g_message ("irqs=avoid: could not move irq(s) %s: managed or per-cpu, they stay", refused->str);
}

/**
 * qpin_irq_steer_update:
 * @plan: the registry's plan: every CPU a VM holds is avoided
 *
 * Does nothing unless irqs = avoid, or when the held CPUs did not change.
 */
void
qpin_irq_steer_update (const QpinPlan *plan)
{
  QpinCpuset held;
  g_autofree char *list = NULL;

  if (!steer.active)
    return;
  qpin_cpuset_clear_all (&held);
  for (guint i = 0; i < plan->vms->len; i++)
    qpin_cpuset_or_packed (&held, &((const QpinPlanVm *) g_ptr_array_index (plan->vms, i))->held);
  if (qpin_cpuset_equal (&held, &steer.avoided) && !steer.fresh)
    return;
  steer.fresh = FALSE;
  steer.avoided = held;
  list = qpin_cpuset_format (&held);
  g_message ("irqs=avoid: keeping device irqs off cpus '%s'", list);
  steer_all (&held);
  save_state ();
}

/**
 * qpin_irq_steer_stop:
 *
 * Writes back every mask qpin changed (the daemon stops).
 */
void
qpin_irq_steer_stop (void)
{
  QpinCpuset none;

  if (!steer.active)
    return;
  qpin_cpuset_clear_all (&none);
  steer_all (&none);
  steer.avoided = none;
  save_state ();
  qpin_irq_steer_abandon ();
}

/**
 * qpin_irq_steer_abandon:
 *
 * Forgets the steering without putting anything back, as a killed daemon
 * would (tests).
 */
void
qpin_irq_steer_abandon (void)
{
  g_clear_pointer (&steer.saved, g_array_unref);
  g_clear_pointer (&steer.root, g_free);
  g_clear_pointer (&steer.state, g_free);
  steer.active = FALSE;
}
