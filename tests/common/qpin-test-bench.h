/* qpin-test-bench.h: idle processes with idle threads, watched by a
 * sampler as if they were VMs' */
#pragma once

#include "qpin-sampler.h"

typedef struct {
  guint n;      /* threads */
  GPid *pids;   /* per thread: its process */
  GPid *tids;   /* per thread */
  GArray *kids; /* GPid, one per VM */
} QpinTestIdleThreads;

QpinTestIdleThreads *qpin_test_idle_threads_add (QpinSampler *sampler, guint n_vms, guint per_vm);
void qpin_test_idle_threads_free (QpinTestIdleThreads *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTestIdleThreads, qpin_test_idle_threads_free)
