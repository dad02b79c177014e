/* fuzz-proc.c: the sampler's /proc parsers (a thread's stat, status,
 * schedstat, sched; the host's /proc/stat and /proc/interrupts) on any
 * bytes: an error or a sample, never a crash.  The first byte picks the
 * parser. */
#include <stdint.h>
#include <string.h>

#include "qpin-fuzz.h"
#include "qpin-proc-sample.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = NULL;
  g_autoptr (GArray) cpus = g_array_new (FALSE, TRUE, sizeof (QpinCpuSample));
  g_autofree QpinTaskSample *s = g_new0 (QpinTaskSample, 1);

  qpin_fuzz_init ();
  if (size == 0)
    return 0;
  /* the readers hand the parsers NUL-terminated text without NULs */
  text = g_strndup ((const char *) data + 1, size - 1);
  switch (data[0] % 6)
    {
    case 0:
      if (qpin_task_sample_parse_stat (text, s, NULL))
        g_assert_cmpint (s->cpu, <, QPIN_CPUSET_MAX);
      break;
    case 1:
      qpin_task_sample_parse_status (text, s, NULL);
      break;
    case 2:
      qpin_task_sample_parse_schedstat (text, s, NULL);
      break;
    case 3:
      qpin_task_sample_parse_sched (text, s);
      break;
    case 4:
      qpin_cpu_samples_parse_stat (text, cpus, NULL);
      g_assert_cmpuint (cpus->len, <=, QPIN_CPUSET_MAX);
      break;
    default:
      qpin_cpu_samples_parse_interrupts (text, cpus, NULL);
      g_assert_cmpuint (cpus->len, <=, QPIN_CPUSET_MAX);
      break;
    }
  return 0;
}
