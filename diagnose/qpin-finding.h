/* qpin-finding.h: what `qpin diagnose` found, ranked, with evidence and a fix
 *
 * JSON shape (stable; ids are listed in README and qpin(1)):
 *   {"findings":[{"id","severity","vm","summary","evidence":{...},"fix"}],
 *    "not_checked":[{"id","vm","why"}]}
 * vm is null for host-wide findings.  A check that could not run (a file
 * missing, a VM gone, QEMU not answering) says why in not_checked.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
  QPIN_SEVERITY_CRITICAL,
  QPIN_SEVERITY_WARNING,
  QPIN_SEVERITY_INFO,
} QpinSeverity;

typedef struct {
  char *id;
  QpinSeverity severity;
  char *vm; /* NULL: host-wide */
  char *summary;
  JsonObject *evidence;
  char *fix;
} QpinFinding;

typedef struct _QpinFindings QpinFindings;

QpinFindings *qpin_findings_new (void);
void qpin_findings_free (QpinFindings *findings);
QpinFinding *qpin_findings_add (QpinFindings *findings, const char *id, QpinSeverity severity,
                                const char *vm, const char *fix, const char *format, ...)
  G_GNUC_PRINTF (6, 7);
void qpin_findings_not_checked (QpinFindings *findings, const char *id, const char *vm,
                                const char *format, ...) G_GNUC_PRINTF (4, 5);
guint qpin_findings_count (const QpinFindings *findings, const char *id);
const QpinFinding *qpin_findings_get (const QpinFindings *findings, const char *id, guint nth);
gboolean qpin_findings_has_problem (const QpinFindings *findings);
void qpin_findings_sort (QpinFindings *findings);
JsonNode *qpin_findings_to_json (const QpinFindings *findings);
char *qpin_findings_to_text (const QpinFindings *findings);
const char *qpin_severity_to_string (QpinSeverity severity);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinFindings, qpin_findings_free)

G_END_DECLS
