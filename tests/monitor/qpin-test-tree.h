/* qpin-test-tree.h: recorded /proc and sysfs trees for sampler tests
 *
 * Header-only helpers: each test binary that includes it gets its own copy.
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>

/* A stat line with utime, stime, processor and guest_time set, all else 0. */
static char *
stat_line (GPid tid, const char *comm, guint64 utime, guint64 stime, guint cpu, guint64 guest)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "%d (%s) R", tid, comm);
  for (guint field = 4; field <= 52; field++)
    {
      guint64 v = field == 14   ? utime
                  : field == 15 ? stime
                  : field == 39 ? cpu
                  : field == 43 ? guest
                                : 0;
      g_string_append_printf (s, " %" G_GUINT64_FORMAT, v);
    }
  g_string_append_c (s, '\n');
  return g_string_free (s, FALSE);
}

/* A recorded tree under a temporary root. */
typedef struct {
  char *root;
} Tree;

static void
tree_write (Tree *t, const char *rel, const char *text)
{
  g_autofree char *path = g_build_filename (t->root, rel, NULL);
  g_autofree char *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
tree_task (Tree *t, GPid pid, GPid tid, const char *comm, guint64 run_ms, guint64 wait_ms,
           guint cpu, const char *allowed, guint64 migrations)
{
  g_autofree char *dir = g_strdup_printf ("proc/%d/task/%d", pid, tid);
  g_autofree char *p_stat = g_strconcat (dir, "/stat", NULL);
  g_autofree char *p_status = g_strconcat (dir, "/status", NULL);
  g_autofree char *p_schedstat = g_strconcat (dir, "/schedstat", NULL);
  g_autofree char *p_sched = g_strconcat (dir, "/sched", NULL);
  g_autofree char *stat = stat_line (tid, comm, run_ms / 10, 0, cpu, 0);
  g_autofree char *status = g_strdup_printf ("Name:\t%s\nCpus_allowed_list:\t%s\n"
                                             "voluntary_ctxt_switches:\t%" G_GUINT64_FORMAT "\n"
                                             "nonvoluntary_ctxt_switches:\t0\n",
                                             comm, allowed, run_ms);
  g_autofree char *schedstat = g_strdup_printf ("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " 1\n",
                                                run_ms * 1000000, wait_ms * 1000000);
  g_autofree char *sched = g_strdup_printf ("%s (%d, #threads: 3)\n----\n"
                                            "se.nr_migrations : %" G_GUINT64_FORMAT "\n",
                                            comm, tid, migrations);

  tree_write (t, p_stat, stat);
  tree_write (t, p_status, status);
  tree_write (t, p_schedstat, schedstat);
  tree_write (t, p_sched, sched);
}

/* Four CPUs, SMT pairs 0-1 and 2-3; @busy: ticks of @total each was busy. */
static void
tree_host (Tree *t, guint64 total, const guint64 busy[4], guint64 irqs)
{
  GString *stat = g_string_new ("cpu  0 0 0 0 0 0 0 0 0 0\n");
  g_autofree char *intr = NULL;

  for (guint c = 0; c < 4; c++)
    g_string_append_printf (stat,
                            "cpu%u %" G_GUINT64_FORMAT " 0 0 %" G_GUINT64_FORMAT " 0 0 0 0 0 0\n",
                            c, busy[c], total - busy[c]);
  intr
    = g_strdup_printf ("   CPU0   CPU1   CPU2   CPU3\nLOC: %" G_GUINT64_FORMAT " 0 0 0 t\n", irqs);
  tree_write (t, "proc/stat", stat->str);
  g_string_free (stat, TRUE);
  tree_write (t, "proc/interrupts", intr);
  for (guint c = 0; c < 4; c++)
    {
      g_autofree char *rel
        = g_strdup_printf ("sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", c);
      tree_write (t, rel, c < 2 ? "0-1\n" : "2-3\n");
    }
}

static void
rm_rf (const char *path)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", path);
  g_assert_cmpint (system (cmd), ==, 0);
}
