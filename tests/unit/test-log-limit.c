/* test-log-limit.c: the per-peer budget of log lines (qpin-log-limit.c) */
#include "qpin-log-limit.h"

/* 15 lines in one interval: the first QPIN_LOG_LIMIT_BURST (10) may be
 * logged, the other 5 are counted and said in one summary line, here when
 * the budget is freed (the peer left before the interval ended). */
static void
test_burst_and_summary (void)
{
  QpinLogLimit *limit = qpin_log_limit_new ();
  guint allowed = 0;

  qpin_log_limit_set_who (limit, "vm 'pid-42' (pid 42)");
  for (guint i = 0; i < 15; i++)
    allowed += qpin_log_limit_allow (limit);
  g_assert_cmpuint (allowed, ==, QPIN_LOG_LIMIT_BURST);
  g_test_expect_message ("qpin-pinner", G_LOG_LEVEL_WARNING,
                         "vm 'pid-42' (pid 42): suppressed 5 similar lines in the last 10 s");
  qpin_log_limit_free (limit);
  g_test_assert_expected_messages ();
}

/* Nothing held back: no summary line at all. */
static void
test_quiet (void)
{
  QpinLogLimit *limit = qpin_log_limit_new ();

  g_assert_true (qpin_log_limit_allow (limit));
  qpin_log_limit_free (limit); /* fatal-warnings would abort on any line */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/log-limit/burst-and-summary", test_burst_and_summary);
  g_test_add_func ("/log-limit/quiet", test_quiet);
  return g_test_run ();
}
