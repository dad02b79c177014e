/* qpin-finding.c: findings of `qpin diagnose`: collect, rank, print */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-finding.h"

#include "qpin-text.h"

typedef struct {
  char *id;
  char *vm;
  char *why;
} NotChecked;

struct _QpinFindings {
  GPtrArray *items;       /* QpinFinding */
  GPtrArray *not_checked; /* NotChecked */
};

static void
finding_free (gpointer p)
{
  QpinFinding *f = p;

  g_free (f->id);
  g_free (f->vm);
  g_free (f->summary);
  g_free (f->fix);
  json_object_unref (f->evidence);
  g_free (f);
}

static void
not_checked_free (gpointer p)
{
  NotChecked *n = p;

  g_free (n->id);
  g_free (n->vm);
  g_free (n->why);
  g_free (n);
}

/**
 * qpin_findings_new:
 *
 * Returns: (transfer full): an empty list
 */
QpinFindings *
qpin_findings_new (void)
{
  QpinFindings *f = g_new0 (QpinFindings, 1);

  f->items = g_ptr_array_new_with_free_func (finding_free);
  f->not_checked = g_ptr_array_new_with_free_func (not_checked_free);
  return f;
}

void
qpin_findings_free (QpinFindings *findings)
{
  if (findings == NULL)
    return;
  g_ptr_array_unref (findings->items);
  g_ptr_array_unref (findings->not_checked);
  g_free (findings);
}

/**
 * qpin_findings_add:
 * @vm: (nullable): NULL for a host-wide finding
 * @fix: one concrete fix
 *
 * Returns: (transfer none): the finding, whose evidence object the caller fills
 */
QpinFinding *
qpin_findings_add (QpinFindings *findings, const char *id, QpinSeverity severity, const char *vm,
                   const char *fix, const char *format, ...)
{
  QpinFinding *f = g_new0 (QpinFinding, 1);
  va_list ap;

  f->id = g_strdup (id);
  f->severity = severity;
  f->vm = g_strdup (vm);
  f->fix = g_strdup (fix);
  f->evidence = json_object_new ();
  va_start (ap, format);
  f->summary = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_ptr_array_add (findings->items, f);
  return f;
}

/**
 * qpin_findings_not_checked:
 *
 * Records that check @id (for @vm, or host-wide) could not run, and why.
 */
void
qpin_findings_not_checked (QpinFindings *findings, const char *id, const char *vm,
                           const char *format, ...)
{
  NotChecked *n = g_new0 (NotChecked, 1);
  va_list ap;

  n->id = g_strdup (id);
  n->vm = g_strdup (vm);
  va_start (ap, format);
  n->why = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_ptr_array_add (findings->not_checked, n);
}

/**
 * qpin_findings_count:
 *
 * Returns: how many findings have @id (every finding when @id is NULL)
 */
guint
qpin_findings_count (const QpinFindings *findings, const char *id)
{
  guint n = 0;

  for (guint i = 0; i < findings->items->len; i++)
    n += id == NULL
         || g_str_equal (((QpinFinding *) g_ptr_array_index (findings->items, i))->id, id);
  return n;
}

/**
 * qpin_findings_get:
 *
 * Returns: (transfer none) (nullable): the @nth finding with @id
 */
const QpinFinding *
qpin_findings_get (const QpinFindings *findings, const char *id, guint nth)
{
  for (guint i = 0; i < findings->items->len; i++)
    {
      const QpinFinding *f = g_ptr_array_index (findings->items, i);
      if (g_str_equal (f->id, id) && nth-- == 0)
        return f;
    }
  return NULL;
}

/**
 * qpin_findings_has_problem:
 *
 * Returns: TRUE when a finding is critical or a warning (exit status 1)
 */
gboolean
qpin_findings_has_problem (const QpinFindings *findings)
{
  for (guint i = 0; i < findings->items->len; i++)
    if (((QpinFinding *) g_ptr_array_index (findings->items, i))->severity != QPIN_SEVERITY_INFO)
      return TRUE;
  return FALSE;
}

static gint
by_severity (gconstpointer a, gconstpointer b)
{
  const QpinFinding *fa = *(QpinFinding *const *) a;
  const QpinFinding *fb = *(QpinFinding *const *) b;

  if (fa->severity != fb->severity)
    return (gint) fa->severity - (gint) fb->severity;
  return g_strcmp0 (fa->id, fb->id);
}

/**
 * qpin_findings_sort:
 *
 * Critical first, then warnings, then info; by id within a severity
 * (stable: the order checks ran in otherwise).
 */
void
qpin_findings_sort (QpinFindings *findings)
{
  g_ptr_array_sort (findings->items, by_severity);
}

const char *
qpin_severity_to_string (QpinSeverity severity)
{
  switch (severity)
    {
    case QPIN_SEVERITY_CRITICAL:
      return "critical";
    case QPIN_SEVERITY_WARNING:
      return "warning";
    case QPIN_SEVERITY_INFO:
    default:
      return "info";
    }
}

static void
add_nullable (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

/**
 * qpin_findings_to_json:
 *
 * Returns: (transfer full): the shape in the header
 */
JsonNode *
qpin_findings_to_json (const QpinFindings *findings)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "findings");
  json_builder_begin_array (b);
  for (guint i = 0; i < findings->items->len; i++)
    {
      const QpinFinding *f = g_ptr_array_index (findings->items, i);
      g_autoptr (JsonNode) evidence = json_node_init_object (json_node_alloc (), f->evidence);

      json_builder_begin_object (b);
      add_nullable (b, "id", f->id);
      add_nullable (b, "severity", qpin_severity_to_string (f->severity));
      add_nullable (b, "vm", f->vm);
      add_nullable (b, "summary", f->summary);
      json_builder_set_member_name (b, "evidence");
      json_builder_add_value (b, json_node_copy (evidence));
      add_nullable (b, "fix", f->fix);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "not_checked");
  json_builder_begin_array (b);
  for (guint i = 0; i < findings->not_checked->len; i++)
    {
      const NotChecked *n = g_ptr_array_index (findings->not_checked, i);

      json_builder_begin_object (b);
      add_nullable (b, "id", n->id);
      add_nullable (b, "vm", n->vm);
      add_nullable (b, "why", n->why);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/**
 * qpin_findings_to_text:
 *
 * Returns: (transfer full): per finding "SEVERITY ID [vm 'NAME']: summary",
 * its evidence as compact JSON and its fix; then the checks not run
 */
char *
qpin_findings_to_text (const QpinFindings *findings)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < findings->items->len; i++)
    {
      const QpinFinding *f = g_ptr_array_index (findings->items, i);
      g_autoptr (JsonNode) evidence = json_node_init_object (json_node_alloc (), f->evidence);
      g_autofree char *ev = json_to_string (evidence, FALSE);
      g_autofree char *vm = f->vm ? qpin_text_escape (f->vm) : NULL;
      g_autofree char *summary = qpin_text_escape (f->summary);

      g_string_append_printf (s, "%-8s %s", qpin_severity_to_string (f->severity), f->id);
      if (vm)
        g_string_append_printf (s, " vm '%s'", vm);
      g_string_append_printf (s, ": %s\n  evidence: %s\n  fix: %s\n", summary, ev, f->fix);
    }
  if (findings->items->len == 0)
    g_string_append (s, "no findings\n");
  for (guint i = 0; i < findings->not_checked->len; i++)
    {
      const NotChecked *n = g_ptr_array_index (findings->not_checked, i);
      g_autofree char *vm = n->vm ? qpin_text_escape (n->vm) : NULL;
      g_autofree char *why = qpin_text_escape (n->why);

      g_string_append_printf (s, "not checked: %s%s%s%s: %s\n", n->id, vm ? " vm '" : "",
                              vm ? vm : "", vm ? "'" : "", why);
    }
  return g_string_free (s, FALSE);
}
