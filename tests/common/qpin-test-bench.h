/* qpin-test-bench.h: idle threads of this process, watched by a sampler
 * as if they were VMs' */
#pragma once

#include <pthread.h>

#include "qpin-sampler.h"

typedef struct {
  guint n;
  pthread_t *threads;
  GPid *tids;
  volatile gboolean stop;
} QpinTestIdleThreads;

QpinTestIdleThreads *qpin_test_idle_threads_add (QpinSampler *sampler, guint n_vms, guint per_vm);
void qpin_test_idle_threads_free (QpinTestIdleThreads *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTestIdleThreads, qpin_test_idle_threads_free)
