/* qpin-qmp-framer.h: split a QMP byte stream into lines
 *
 * Pure: bytes in, lines out.  QEMU ends every message with "\r\n"; a bare
 * "\n" is accepted too and empty lines are skipped.  A line longer than
 * the limit (or a partial line that already exceeds it) is an error; the
 * framer is then poisoned and the connection must be dropped.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The longest message a QEMU sends qpin: query-cpus-fast for the most
 * vCPUs any machine takes (4,096) is 0.7 MB as QEMU 7.2 prints it (164
 * bytes a vCPU, measured with 240) and 1.2 MB with every member as wide
 * as it gets.  2 MiB leaves room over that.  What json-glib builds from a
 * message is bounded by qpin-qmp-json.h's value counts, not by bytes. */
#define QPIN_QMP_FRAMER_DEFAULT_MAX (2 * 1024 * 1024)

typedef struct _QpinQmpFramer QpinQmpFramer;

QpinQmpFramer *qpin_qmp_framer_new (gsize max_line);
void qpin_qmp_framer_free (QpinQmpFramer *framer);
gboolean qpin_qmp_framer_feed (QpinQmpFramer *framer, const char *data, gsize len, GError **error);
gboolean qpin_qmp_framer_next (QpinQmpFramer *framer, const char **line, gsize *len,
                               GError **error);
gsize qpin_qmp_framer_pending (const QpinQmpFramer *framer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinQmpFramer, qpin_qmp_framer_free)

G_END_DECLS
