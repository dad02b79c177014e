/* test-proc-events.c: the process events connector's filter passes a
 * watched process's thread names (COMM) and forks, nothing of others.
 * Needs CAP_NET_ADMIN (root); skipped without it. */
#include <gio/gio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qpin-proc-events.h"

typedef struct {
  GPid tgid, tid;
  char *comm;
  guint forks, exits, comms;
} Seen;

static void
on_thread (GPid tgid, GPid tid, gboolean created, gpointer user_data)
{
  Seen *s = user_data;

  if (created && tgid == getpid ())
    s->forks++;
  if (!created && tgid == getpid ())
    s->exits++;
}

static void
on_comm (GPid tgid, GPid tid, const char *comm, gpointer user_data)
{
  Seen *s = user_data;

  s->comms++;
  s->tgid = tgid;
  s->tid = tid;
  g_free (s->comm);
  s->comm = g_strdup (comm);
}

typedef struct {
  GPid tid;
} Named;

/* what QEMU's vCPU thread does when it starts with debug-threads=on */
static gpointer
name_self (gpointer data)
{
  Named *n = data;

  n->tid = (GPid) syscall (SYS_gettid);
  prctl (PR_SET_NAME, "CPU 3/KVM", 0, 0, 0);
  return NULL;
}

static gboolean
on_deadline (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the loop for @ms, or until a COMM event came when @until_comm. */
static void
spin (Seen *s, guint ms, gboolean until_comm)
{
  gboolean late = FALSE;
  guint id = g_timeout_add (ms, on_deadline, &late);

  while (!late && !(until_comm && s->comms > 0))
    g_main_context_iteration (NULL, TRUE);
  if (!late)
    g_source_remove (id);
}

static QpinProcEvents *
events_or_skip (Seen *s)
{
  g_autoptr (GError) error = NULL;
  QpinProcEvents *events = qpin_proc_events_new (on_thread, s, &error);

  if (events == NULL)
    g_test_skip (error->message);
  else
    qpin_proc_events_set_comm_func (events, on_comm);
  return events;
}

/* A thread of a watched process names itself: one COMM event with its
 * tid, this process's tgid and the name; its fork and exit came too. */
static void
test_comm_watched (void)
{
  Seen s = { 0 };
  g_autoptr (QpinProcEvents) events = events_or_skip (&s);
  g_autoptr (GError) error = NULL;
  GPid self = getpid ();
  Named n = { 0 };
  GThread *thread;

  if (events == NULL)
    return;
  g_assert_true (qpin_proc_events_set_pids (events, &self, 1, &error));
  g_assert_no_error (error);
  thread = g_thread_new ("t", name_self, &n);
  g_thread_join (thread);
  spin (&s, 2000, TRUE);
  spin (&s, 200, FALSE);
  g_assert_cmpuint (s.comms, >=, 1);
  g_assert_cmpint (s.tgid, ==, self);
  g_assert_cmpint (s.tid, ==, n.tid);
  g_assert_cmpstr (s.comm, ==, "CPU 3/KVM");
  g_assert_cmpuint (s.forks, >=, 1);
  g_assert_cmpuint (s.exits, >=, 1);
  g_free (s.comm);
}

/* Not watched: the same rename reaches nobody. */
static void
test_comm_unwatched (void)
{
  Seen s = { 0 };
  g_autoptr (QpinProcEvents) events = events_or_skip (&s);
  g_autoptr (GError) error = NULL;
  GPid other = 1;
  Named n = { 0 };
  GThread *thread;

  if (events == NULL)
    return;
  g_assert_true (qpin_proc_events_set_pids (events, &other, 1, &error));
  thread = g_thread_new ("t", name_self, &n);
  g_thread_join (thread);
  spin (&s, 300, FALSE);
  g_assert_cmpuint (s.comms, ==, 0);
  g_assert_cmpuint (s.forks, ==, 0);
  g_assert_cmpuint (s.exits, ==, 0);
}

/* A filter as full as it gets: this process at the start, at the ends of
 * the filter's blocks of 254 pids (where the jumps to each block's accept
 * are longest) and at the end is heard; absent, it is not; one pid more
 * than fits is an error.  The other pids are beyond any pid_max. */
static void
test_many_pids (void)
{
  const guint at[] = { 0, 253, 254, 507, QPIN_PROC_EVENTS_MAX_PIDS - 1, G_MAXUINT };
  Seen s = { 0 };
  g_autoptr (QpinProcEvents) events = events_or_skip (&s);
  g_autofree GPid *pids = g_new (GPid, QPIN_PROC_EVENTS_MAX_PIDS + 1);
  g_autoptr (GError) error = NULL;

  if (events == NULL)
    return;
  for (guint k = 0; k < G_N_ELEMENTS (at); k++)
    {
      Named n = { 0 };

      for (guint i = 0; i < QPIN_PROC_EVENTS_MAX_PIDS; i++)
        pids[i] = (GPid) (1 << 23) + (GPid) i;
      if (at[k] != G_MAXUINT)
        pids[at[k]] = getpid ();
      g_assert_true (qpin_proc_events_set_pids (events, pids, QPIN_PROC_EVENTS_MAX_PIDS, &error));
      g_assert_no_error (error);
      s.comms = s.forks = 0;
      g_thread_join (g_thread_new ("t", name_self, &n));
      spin (&s, at[k] != G_MAXUINT ? 2000 : 300, TRUE);
      spin (&s, 100, FALSE);
      if (at[k] == G_MAXUINT)
        {
          g_assert_cmpuint (s.comms, ==, 0);
          g_assert_cmpuint (s.forks, ==, 0);
          continue;
        }
      g_assert_cmpuint (s.forks, ==, 1);
      g_assert_cmpint (s.tid, ==, n.tid);
      g_assert_cmpstr (s.comm, ==, "CPU 3/KVM");
    }
  g_free (s.comm);
  pids[QPIN_PROC_EVENTS_MAX_PIDS] = getpid ();
  g_assert_false (qpin_proc_events_set_pids (events, pids, QPIN_PROC_EVENTS_MAX_PIDS + 1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_assert_cmpstr (error->message, ==, "process events: more than 4000 VMs to watch");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/proc-events/comm-watched", test_comm_watched);
  g_test_add_func ("/proc-events/comm-unwatched", test_comm_unwatched);
  g_test_add_func ("/proc-events/many-pids", test_many_pids);
  return g_test_run ();
}
