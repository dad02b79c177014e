/* qpin-log-limit.c: see qpin-log-limit.h */

#include "qpin-log-limit.h"

struct _QpinLogLimit {
  char *who;        /* "vm 'KEY' (pid N)", the summary's subject */
  gint64 window_us; /* when the current interval began */
  guint used;       /* lines logged in it */
  guint suppressed; /* lines held back in it */
  guint summary;    /* timeout that says how many were held back */
};

/**
 * qpin_log_limit_new:
 *
 * Returns: (transfer full): a fresh budget
 */
QpinLogLimit *
qpin_log_limit_new (void)
{
  QpinLogLimit *limit = g_new0 (QpinLogLimit, 1);

  limit->who = g_strdup ("a peer");
  return limit;
}

static void
say_suppressed (QpinLogLimit *limit)
{
  if (limit->suppressed > 0)
    g_warning ("%s: suppressed %u similar lines in the last %u s", limit->who, limit->suppressed,
               QPIN_LOG_LIMIT_INTERVAL_S);
  limit->suppressed = 0;
}

static gboolean
on_summary (gpointer user_data)
{
  QpinLogLimit *limit = user_data;

  limit->summary = 0;
  say_suppressed (limit);
  return G_SOURCE_REMOVE;
}

/**
 * qpin_log_limit_free:
 *
 * Says what was held back, if anything, and frees @limit.
 */
void
qpin_log_limit_free (QpinLogLimit *limit)
{
  if (limit == NULL)
    return;
  if (limit->summary)
    g_source_remove (limit->summary);
  say_suppressed (limit);
  g_free (limit->who);
  g_free (limit);
}

/**
 * qpin_log_limit_set_who:
 * @who: how the summary line names the peer
 */
void
qpin_log_limit_set_who (QpinLogLimit *limit, const char *who)
{
  g_free (limit->who);
  limit->who = g_strdup (who);
}

/**
 * qpin_log_limit_allow:
 *
 * Call before each line the peer caused.
 *
 * Returns: %TRUE if the line may be logged; %FALSE if it is counted for
 *   the summary instead
 */
gboolean
qpin_log_limit_allow (QpinLogLimit *limit)
{
  gint64 now = g_get_monotonic_time ();

  if (now - limit->window_us >= (gint64) QPIN_LOG_LIMIT_INTERVAL_S * G_USEC_PER_SEC)
    {
      if (limit->summary)
        {
          g_source_remove (limit->summary);
          limit->summary = 0;
        }
      say_suppressed (limit);
      limit->window_us = now;
      limit->used = 0;
    }
  if (limit->used < QPIN_LOG_LIMIT_BURST)
    {
      limit->used++;
      return TRUE;
    }
  if (limit->suppressed++ == 0)
    {
      gint64 left_ms
        = (limit->window_us + (gint64) QPIN_LOG_LIMIT_INTERVAL_S * G_USEC_PER_SEC - now) / 1000;
      limit->summary = g_timeout_add ((guint) MAX (left_ms, 1), on_summary, limit);
    }
  return FALSE;
}
