/* test-uevents.c: parsing CPU online/offline uevents */
#include <string.h>

#include "qpin-uevents.h"

static gsize
build (char *buf, const char *const *fields)
{
  gsize len = 0;

  for (const char *const *f = fields; *f; f++)
    {
      strcpy (buf + len, *f);
      len += strlen (*f) + 1;
    }
  return len;
}

static void
test_parse (void)
{
  char buf[512];
  guint cpu = 99;
  gboolean online = TRUE;
  const char *offline[] = { "offline@/devices/system/cpu/cpu3",
                            "ACTION=offline",
                            "DEVPATH=/devices/system/cpu/cpu3",
                            "SUBSYSTEM=cpu",
                            "SEQNUM=1",
                            NULL };
  const char *back[] = { "online@/devices/system/cpu/cpu12", "ACTION=online",
                         "DEVPATH=/devices/system/cpu/cpu12", "SUBSYSTEM=cpu", NULL };
  const char *memory[] = { "offline@/devices/system/memory/memory3", "ACTION=offline",
                           "DEVPATH=/devices/system/memory/memory3", "SUBSYSTEM=memory", NULL };
  const char *cpufreq[] = { "change@/devices/system/cpu/cpufreq", "ACTION=change",
                            "DEVPATH=/devices/system/cpu/cpufreq", "SUBSYSTEM=cpu", NULL };
  const char *add[] = { "add@/devices/system/cpu/cpu4", "ACTION=add",
                        "DEVPATH=/devices/system/cpu/cpu4", "SUBSYSTEM=cpu", NULL };
  const char *truncated = "ACTION=offline\0DEVPATH=/devices/system/cpu/cpu1\0SUBSYSTEM=c";

  g_assert_true (qpin_uevents_parse_cpu (buf, build (buf, offline), &cpu, &online));
  g_assert_cmpuint (cpu, ==, 3);
  g_assert_false (online);
  g_assert_true (qpin_uevents_parse_cpu (buf, build (buf, back), &cpu, &online));
  g_assert_cmpuint (cpu, ==, 12);
  g_assert_true (online);
  g_assert_false (qpin_uevents_parse_cpu (buf, build (buf, memory), &cpu, &online));
  g_assert_false (qpin_uevents_parse_cpu (buf, build (buf, cpufreq), &cpu, &online));
  g_assert_false (qpin_uevents_parse_cpu (buf, build (buf, add), &cpu, &online));
  g_assert_false (qpin_uevents_parse_cpu (truncated, 58, &cpu, &online));
  g_assert_false (qpin_uevents_parse_cpu ("", 0, &cpu, &online));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/uevents/parse", test_parse);
  return g_test_run ();
}
