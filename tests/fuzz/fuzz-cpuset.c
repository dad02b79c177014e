/* fuzz-cpuset.c: cpulists from config files, sysfs and the command line */
#include <stdint.h>
#include <string.h>

#include "qpin-cpuset.h"
#include "qpin-fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  QpinCpuset set, again;

  qpin_fuzz_init ();
  if (qpin_cpuset_parse (text, &set, NULL))
    {
      /* what parses formats back to something that parses to the same set */
      g_autofree char *out = qpin_cpuset_format (&set);
      g_assert_true (qpin_cpuset_parse (out, &again, NULL));
      g_assert_true (qpin_cpuset_equal (&set, &again));
    }
  return 0;
}
