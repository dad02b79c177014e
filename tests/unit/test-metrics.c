/* test-metrics.c: the Prometheus text the daemon's /metrics renders for
 * threads: label values escaped (a VM name is the peer's), a thread that
 * is gone leaves no series */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qpin-metrics.h"

/* Backslash, double quote and newline are the three the text format
 * escapes; everything else goes through as is. */
static void
test_escape (void)
{
  const struct {
    const char *in, *out;
  } cases[] = {
    { "web", "web" },
    { "a\"b", "a\\\"b" },
    { "a\\b", "a\\\\b" },
    { "a\nb", "a\\nb" },
    { "x} 1\nqpin_vm_state{vm=\"y", "x} 1\\nqpin_vm_state{vm=\\\"y" },
    { "", "" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = qpin_metrics_escape (cases[i].in);
      g_assert_cmpstr (got, ==, cases[i].out);
    }
}

/* This test's own thread as vCPU 0 of a VM with a hostile name: every
 * series of it carries the escaped labels (one line each, so a name
 * cannot inject a series), and a TID that does not exist, sampled once
 * and found gone, has no series at all. */
static void
test_thread_series (void)
{
  g_autoptr (QpinSampler) s = qpin_sampler_new (NULL);
  g_autoptr (GString) out = g_string_new (NULL);
  GPid tid = (GPid) syscall (SYS_gettid);
  g_auto (GStrv) lines = NULL;
  guint n_cpu = 0;

  qpin_sampler_set_perf (s, NULL, NULL);
  qpin_sampler_add_thread (s, "evil\"} 1\nx", getpid (), tid, QPIN_ROLE_VCPU, 0, NULL);
  qpin_sampler_add_thread (s, "ghost", getpid (), G_MAXINT32 - 1, QPIN_ROLE_VCPU, 1, NULL);
  g_assert_true (qpin_sampler_sample (s, g_get_monotonic_time () * 1000, NULL));
  qpin_metrics_write_threads (s, out);
  g_assert_null (strstr (out->str, "ghost"));
  lines = g_strsplit (out->str, "\n", -1);
  for (guint i = 0; lines[i] && *lines[i]; i++)
    {
      if (lines[i][0] == '#')
        continue;
      g_assert_nonnull (strstr (lines[i], "{vm=\"evil\\\"} 1\\nx\",role=\"vcpu\",index=\"0\""));
      n_cpu += g_str_has_prefix (lines[i], "qpin_thread_cpu_seconds_total{");
    }
  g_assert_cmpuint (n_cpu, ==, 1);
  /* no PMU asked for: no cycles family at all, not an empty one */
  g_assert_null (strstr (out->str, "qpin_thread_cycles_total"));
  g_assert_nonnull (strstr (out->str, "# TYPE qpin_thread_cpu_seconds_total counter\n"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/escape", test_escape);
  g_test_add_func ("/metrics/thread-series", test_thread_series);
  return g_test_run ();
}
