/* qpin-test-host.c: the host under test: /proc readers, host CPU 1
 * hotplug, temporary trees */
#include "qpin-test-host.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* utime + stime of process @pid, in clock ticks, from /proc/PID/stat */
guint64
qpin_test_cpu_ticks (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;
  const char *after;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  after = strrchr (text, ')'); /* comm may hold spaces */
  g_assert_nonnull (after);
  fields = g_strsplit (after + 2, " ", -1);
  /* utime and stime are fields 14 and 15, [11] and [12] after "pid (comm) " */
  return g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10);
}

/* The number after @field (e.g. "VmRSS:") in /proc/PID/status; the test
 * fails if the file cannot be read or has no such field. */
guint64
qpin_test_status_field (GPid pid, const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree char *text = NULL;
  const char *p;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  p = strstr (text, field);
  g_assert_nonnull (p);
  return g_ascii_strtoull (p + strlen (field), NULL, 10);
}

/* Removes @path and all below it; a symbolic link is removed, never
 * followed (a test may have swapped one in). */
void
qpin_test_remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        qpin_test_remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* Host CPU hotplug in a test: CPU 1 is taken offline and always put back,
 * also when an assertion aborts the test or meson's timeout ends it. */
#define HOTPLUG_CPU_PATH "/sys/devices/system/cpu/cpu1/online"

/* Takes host CPU 1 offline (@online FALSE) or brings it back. */
void
qpin_test_cpu1_set_online (gboolean online)
{
  int fd = open (HOTPLUG_CPU_PATH, O_WRONLY);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, online ? "1" : "0", 1), ==, 1);
  close (fd);
}

static void
restore_cpu1 (int sig)
{
  int fd = open (HOTPLUG_CPU_PATH, O_WRONLY);

  if (fd >= 0)
    {
      (void) !write (fd, "1", 1);
      close (fd);
    }
  signal (sig, SIG_DFL);
  raise (sig);
}

/**
 * qpin_test_cpu1_hotplug_begin:
 * @two_cpus: the test also needs a host of exactly 2 CPUs
 *
 * Returns: %FALSE, the test skipped, when host CPU 1 cannot be taken
 * offline here; else %TRUE, CPU 1 to be put back online on SIGABRT and
 * SIGTERM from now on.
 */
gboolean
qpin_test_cpu1_hotplug_begin (gboolean two_cpus)
{
  if (access (HOTPLUG_CPU_PATH, W_OK) != 0 || (two_cpus && g_get_num_processors () != 2))
    {
      g_test_skip (two_cpus ? "needs root and a hot-pluggable CPU 1 on a 2-CPU host"
                            : "needs root and a hot-pluggable CPU 1");
      return FALSE;
    }
  signal (SIGABRT, restore_cpu1);
  signal (SIGTERM, restore_cpu1);
  return TRUE;
}
