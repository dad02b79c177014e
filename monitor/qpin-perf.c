/* qpin-perf.c: perf_event_open(2) groups per thread */
#define G_LOG_DOMAIN "qpin-monitor"

#include "qpin-perf.h"
#include "qpin-proc-sample.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  int fd[3]; /* cycles (leader), instructions, LLC misses */
} PerfGroup;

static int
perf_open_one (GPid tid, guint32 type, guint64 config, int group_fd)
{
  struct perf_event_attr attr;

  memset (&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = type;
  attr.config = config;
  attr.read_format
    = PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  attr.exclude_hv = 1;
  return (int) syscall (SYS_perf_event_open, &attr, tid, -1, group_fd, PERF_FLAG_FD_CLOEXEC);
}

static void
real_close (gpointer handle, gpointer data)
{
  PerfGroup *g = handle;

  for (guint i = 0; i < G_N_ELEMENTS (g->fd); i++)
    if (g->fd[i] >= 0)
      close (g->fd[i]);
  g_free (g);
}

static void
set_open_error (GError **error, int saved, const char *what, guint i, GPid tid)
{
  g_set_error (error, QPIN_MONITOR_ERROR,
               saved == ESRCH                      ? QPIN_MONITOR_ERROR_GONE
               : saved == EACCES || saved == EPERM ? QPIN_MONITOR_ERROR_REFUSED
               : saved == ENOENT || saved == ENODEV || saved == EOPNOTSUPP
                 ? QPIN_MONITOR_ERROR_NO_PMU
                 : QPIN_MONITOR_ERROR_FAILED,
               "perf_event_open (%s %u, thread %d): %s", what, i, tid, g_strerror (saved));
}

static gpointer
real_open (GPid tid, gpointer data, GError **error)
{
  static const guint64 configs[]
    = { PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CACHE_MISSES };
  PerfGroup *g = g_new (PerfGroup, 1);

  for (guint i = 0; i < G_N_ELEMENTS (g->fd); i++)
    g->fd[i] = -1;
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    {
      int saved;

      g->fd[i] = perf_open_one (tid, PERF_TYPE_HARDWARE, configs[i], i == 0 ? -1 : g->fd[0]);
      if (g->fd[i] >= 0)
        continue;
      saved = errno;
      real_close (g, data);
      set_open_error (error, saved, "hardware counter", i, tid);
      return NULL;
    }
  return g;
}

static gboolean
real_read (gpointer handle, QpinPerfCounts *out, gpointer data, GError **error)
{
  PerfGroup *g = handle;
  guint64 buf[3 + G_N_ELEMENTS (g->fd)]; /* nr, enabled, running, values */
  ssize_t n = read (g->fd[0], buf, sizeof buf);

  if (n != (ssize_t) sizeof buf || buf[0] != G_N_ELEMENTS (g->fd))
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_FAILED, "reading a perf group: %s",
                   n < 0 ? g_strerror (errno) : "short read");
      return FALSE;
    }
  out->enabled_ns = buf[1];
  out->running_ns = buf[2];
  out->cycles = buf[3];
  out->instructions = buf[4];
  out->llc_misses = buf[5];
  return TRUE;
}

static gpointer
real_open_migrations (GPid tid, gpointer data, GError **error)
{
  PerfGroup *g = g_new (PerfGroup, 1);
  struct perf_event_attr attr;

  memset (&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_MIGRATIONS;
  g->fd[1] = g->fd[2] = -1;
  g->fd[0] = (int) syscall (SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (g->fd[0] < 0)
    {
      int saved = errno;
      g_free (g);
      set_open_error (error, saved, "software counter", 0, tid);
      return NULL;
    }
  return g;
}

static gboolean
real_read_migrations (gpointer handle, guint64 *out, gpointer data, GError **error)
{
  PerfGroup *g = handle;
  guint64 value;
  ssize_t n = read (g->fd[0], &value, sizeof value);

  if (n != (ssize_t) sizeof value)
    {
      g_set_error (error, QPIN_MONITOR_ERROR, QPIN_MONITOR_ERROR_FAILED,
                   "reading a migration counter: %s", n < 0 ? g_strerror (errno) : "short read");
      return FALSE;
    }
  *out = value;
  return TRUE;
}

static const QpinPerfOps real_ops
  = { real_open, real_read, real_open_migrations, real_read_migrations, real_close };

/**
 * qpin_perf_real_ops:
 *
 * Returns: (transfer none): the perf_event_open(2) implementation
 */
const QpinPerfOps *
qpin_perf_real_ops (void)
{
  return &real_ops;
}
