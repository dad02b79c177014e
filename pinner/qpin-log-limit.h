/* qpin-log-limit.h: a per-peer budget of log lines
 *
 * A peer can make qpin log: refused threads, changing errors.  A hostile
 * one must not fill the journal: each peer may log QPIN_LOG_LIMIT_BURST
 * lines per QPIN_LOG_LIMIT_INTERVAL_S seconds; what is held back is
 * counted and said in one summary line at the end of the interval.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QPIN_LOG_LIMIT_BURST 10
#define QPIN_LOG_LIMIT_INTERVAL_S 10

typedef struct _QpinLogLimit QpinLogLimit;

QpinLogLimit *qpin_log_limit_new (void);
void qpin_log_limit_free (QpinLogLimit *limit);
void qpin_log_limit_set_who (QpinLogLimit *limit, const char *who);
gboolean qpin_log_limit_allow (QpinLogLimit *limit);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinLogLimit, qpin_log_limit_free)

G_END_DECLS
