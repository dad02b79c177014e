/* test-readback.c: /proc/PID/numa_maps as `qpin run --report` reads it,
 * and the scheduling policy of a thread of this test */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "qpin-proc.h"
#include "qpin-readback.h"

typedef struct {
  const char *what;
  const char *text;
  const char *policies; /* NULL: a parse error */
  const char *nodes;
} NumaCase;

static const NumaCase numa_cases[] = {
  { "one node, default policy, file and anon mappings",
    "55d0c6a4c000 default file=/usr/bin/qemu-system-x86_64 mapped=212 mapcount=2 N0=212 "
    "kernelpagesize_kB=4\n"
    "7f1234000000 default anon=16384 dirty=16384 N0=16384 kernelpagesize_kB=4\n",
    "default", "0" },
  /* a node with a zero count holds nothing; a mapping with no pages names no node */
  { "bound guest RAM over two nodes",
    "7f0000000000 bind:2-3 anon=10 N2=6 N3=4 N1=0\n"
    "7f1000000000 default\n",
    "bind:2-3 default", "2-3" },
  /* "prefer (many)" is one policy spelled with a space */
  { "preferred-many", "7f0000000000 prefer (many):0-1 anon=3 N1=3\n", "prefer (many):0-1", "1" },
  { "no mapping at all", "", "", "" },
  { "not an address", "zzzz default N0=1\n", NULL, NULL },
  { "no policy", "7f0000000000\n", NULL, NULL },
  /* tokens that only look like node counts are not counted */
  { "odd tokens", "7f0000000000 default N=1 Nx=2 N9999999=1 N4=x N5=7\n", "default", "5" },
};

/* Each case: the policies and the nodes holding pages, or an error naming the line. */
static void
test_numa_maps (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (numa_cases); i++)
    {
      const NumaCase *c = &numa_cases[i];
      g_auto (QpinMemoryState) state = { 0 };
      g_autoptr (GError) error = NULL;
      gboolean ok = qpin_readback_parse_numa_maps (c->text, &state, &error);

      g_test_message ("%s", c->what);
      if (c->policies == NULL)
        {
          g_assert_false (ok);
          g_assert_nonnull (strstr (error->message, "numa_maps line 1: "));
          g_assert_null (state.policies);
          continue;
        }
      g_assert_no_error (error);
      g_assert_cmpstr (state.policies, ==, c->policies);
      g_assert_cmpstr (state.nodes, ==, c->nodes);
    }
}

/* This process's own numa_maps parses: the reader agrees with the kernel's format. */
static void
test_numa_maps_self (void)
{
  g_auto (QpinMemoryState) state = { 0 };
  g_autoptr (GError) error = NULL;

  if (!g_file_test ("/proc/self/numa_maps", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no /proc/self/numa_maps (kernel without NUMA)");
      return;
    }
  g_assert_true (qpin_readback_memory (getpid (), &state, &error));
  g_assert_no_error (error);
  g_assert_nonnull (strstr (state.policies, "default"));
  g_assert_cmpstr (state.nodes, !=, "");
}

/* SCHED_OTHER reads back as "other"; a thread that does not exist is "gone". */
static void
test_sched (void)
{
  g_autofree char *self = NULL, *gone = NULL;
  g_autoptr (GError) error = NULL;

  self = qpin_readback_sched (0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (self, ==, "other");
  gone = qpin_readback_sched (G_MAXINT32, &error);
  g_assert_null (gone);
  g_assert_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/readback/numa-maps", test_numa_maps);
  g_test_add_func ("/readback/numa-maps-self", test_numa_maps_self);
  g_test_add_func ("/readback/sched", test_sched);
  return g_test_run ();
}
