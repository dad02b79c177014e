/* qpin-test-bench.c: idle threads of this process, watched by a sampler
 * as if they were VMs' */
#include "qpin-test-bench.h"

#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  GPid tid;
  GMutex lock;
  GCond cond;
  gboolean started;
  const volatile gboolean *stop;
} Start;

static void *
idle_thread (void *data)
{
  Start *s = data;
  const volatile gboolean *stop = s->stop;

  g_mutex_lock (&s->lock);
  s->tid = (GPid) syscall (SYS_gettid);
  s->started = TRUE;
  g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
  while (!*stop)
    g_usleep (200000);
  return NULL;
}

/* One idle thread, started; its tid once it runs. */
static GPid
start_idle (QpinTestIdleThreads *t, pthread_attr_t *attr, guint i)
{
  Start s = { .stop = &t->stop };

  g_mutex_init (&s.lock);
  g_cond_init (&s.cond);
  g_assert_cmpint (pthread_create (&t->threads[i], attr, idle_thread, &s), ==, 0);
  g_mutex_lock (&s.lock);
  while (!s.started)
    g_cond_wait (&s.cond, &s.lock);
  g_mutex_unlock (&s.lock);
  g_mutex_clear (&s.lock);
  g_cond_clear (&s.cond);
  return s.tid;
}

/**
 * qpin_test_idle_threads_add:
 * @n_vms: how many VMs, named vm000, vm001, ...
 * @per_vm: threads per VM: vCPU 0, 1, ... and the last an emulator thread
 *
 * Starts @n_vms x @per_vm idle threads (64 KiB stacks) in this process
 * and adds each to @sampler, planned on one CPU (thread i on online CPU
 * i modulo their count).
 * Returns: (transfer full): the threads, stopped and joined by
 * qpin_test_idle_threads_free()
 */
QpinTestIdleThreads *
qpin_test_idle_threads_add (QpinSampler *sampler, guint n_vms, guint per_vm)
{
  QpinTestIdleThreads *t = g_new0 (QpinTestIdleThreads, 1);
  long n_cpus = sysconf (_SC_NPROCESSORS_ONLN);
  pthread_attr_t attr;

  t->threads = g_new0 (pthread_t, n_vms * per_vm);
  t->tids = g_new0 (GPid, n_vms * per_vm);
  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, 64 * 1024);
  for (guint i = 0; i < n_vms * per_vm; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm%03u", i / per_vm);
      QpinCpuset plan;
      guint role_index = i % per_vm;

      t->tids[i] = start_idle (t, &attr, i);
      t->n = i + 1;
      qpin_cpuset_clear_all (&plan);
      qpin_cpuset_add (&plan, i % (guint) n_cpus);
      qpin_sampler_add_thread (sampler, vm, getpid (), t->tids[i],
                               role_index == per_vm - 1 ? QPIN_ROLE_EMULATOR : QPIN_ROLE_VCPU,
                               (gint) role_index, &plan);
    }
  pthread_attr_destroy (&attr);
  return t;
}

void
qpin_test_idle_threads_free (QpinTestIdleThreads *t)
{
  if (t == NULL)
    return;
  t->stop = TRUE;
  for (guint i = 0; i < t->n; i++)
    pthread_join (t->threads[i], NULL);
  g_free (t->threads);
  g_free (t->tids);
  g_free (t);
}
