/* qpin-test-bench.c: idle processes with idle threads, watched by a
 * sampler as if they were VMs' */
#include "qpin-test-bench.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *
idle_thread (void *data)
{
  GPid tid = (GPid) syscall (SYS_gettid);
  int fd = GPOINTER_TO_INT (data);

  g_assert_cmpint (write (fd, &tid, sizeof tid), ==, sizeof tid);
  for (;;)
    g_usleep (200000); /* wakes like an idle guest's timer */
  return NULL;
}

/* A VM: a process whose main thread and @per_vm - 1 more write their tids
 * to @fd, then idle until killed (or until the parent dies). */
static G_NORETURN void
idle_vm (int fd, guint per_vm)
{
  pthread_attr_t attr;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, 64 * 1024);
  for (guint i = 1; i < per_vm; i++)
    {
      pthread_t t;
      g_assert_cmpint (pthread_create (&t, &attr, idle_thread, GINT_TO_POINTER (fd)), ==, 0);
    }
  idle_thread (GINT_TO_POINTER (fd));
  _exit (0);
}

/**
 * qpin_test_idle_threads_add:
 * @n_vms: how many VMs, named vm000, vm001, ...: a process each
 * @per_vm: threads per VM: vCPU 0, 1, ... and the last an emulator thread
 *
 * Starts @n_vms processes of @per_vm idle threads (64 KiB stacks) and
 * adds each thread to @sampler, planned on one CPU (thread i on online
 * CPU i modulo their count).
 * Returns: (transfer full): the threads, killed by
 * qpin_test_idle_threads_free()
 */
QpinTestIdleThreads *
qpin_test_idle_threads_add (QpinSampler *sampler, guint n_vms, guint per_vm)
{
  QpinTestIdleThreads *t = g_new0 (QpinTestIdleThreads, 1);
  long n_cpus = sysconf (_SC_NPROCESSORS_ONLN);

  t->pids = g_new0 (GPid, n_vms * per_vm);
  t->tids = g_new0 (GPid, n_vms * per_vm);
  t->kids = g_array_new (FALSE, FALSE, sizeof (GPid));
  for (guint v = 0; v < n_vms; v++)
    {
      g_autofree char *vm = g_strdup_printf ("vm%03u", v);
      int fds[2];
      GPid kid;

      g_assert_cmpint (pipe (fds), ==, 0);
      kid = fork ();
      g_assert_cmpint (kid, >=, 0);
      if (kid == 0)
        {
          close (fds[0]);
          idle_vm (fds[1], per_vm);
        }
      close (fds[1]);
      g_array_append_val (t->kids, kid);
      for (guint r = 0; r < per_vm; r++)
        {
          guint i = v * per_vm + r;
          QpinCpuset plan;

          g_assert_cmpint (read (fds[0], &t->tids[i], sizeof (GPid)), ==, sizeof (GPid));
          t->pids[i] = kid;
          t->n = i + 1;
          qpin_cpuset_clear_all (&plan);
          qpin_cpuset_add (&plan, i % (guint) n_cpus);
          /* which of the process's threads is which does not matter */
          qpin_sampler_add_thread (sampler, vm, kid, t->tids[i],
                                   r == per_vm - 1 ? QPIN_ROLE_EMULATOR : QPIN_ROLE_VCPU, (gint) r,
                                   &plan);
        }
      close (fds[0]);
    }
  return t;
}

void
qpin_test_idle_threads_free (QpinTestIdleThreads *t)
{
  if (t == NULL)
    return;
  for (guint i = 0; i < t->kids->len; i++)
    kill (g_array_index (t->kids, GPid, i), SIGKILL);
  for (guint i = 0; i < t->kids->len; i++)
    waitpid (g_array_index (t->kids, GPid, i), NULL, 0);
  g_array_unref (t->kids);
  g_free (t->pids);
  g_free (t->tids);
  g_free (t);
}
