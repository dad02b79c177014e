/* qpin-vm-threads.c: classify a QEMU process's threads */

#include "qpin-vm-threads.h"
#include "qpin-proc.h"
#include "qpin-qmp-types.h"

void
qpin_vm_thread_free (QpinVmThread *thread)
{
  if (thread == NULL)
    return;
  g_free (thread->id);
  g_free (thread);
}

static QpinVmThread *
thread_new (QpinThreadRole role, gint index, GPid tid)
{
  QpinVmThread *t = g_new0 (QpinVmThread, 1);

  t->role = role;
  t->index = index;
  t->tid = tid;
  t->topo = (QpinGuestTopo) QPIN_GUEST_TOPO_NONE;
  return t;
}

static gboolean
tid_in (GArray *tids, GPid tid)
{
  /* tids is sorted (qpin_proc_list_tasks) */
  guint lo = 0, hi = tids->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      GPid v = g_array_index (tids, GPid, mid);
      if (v == tid)
        return TRUE;
      if (v < tid)
        lo = mid + 1;
      else
        hi = mid;
    }
  return FALSE;
}

static gint
compare_iothread_id (gconstpointer a, gconstpointer b)
{
  const QpinQmpIothread *x = *(QpinQmpIothread *const *) a;
  const QpinQmpIothread *y = *(QpinQmpIothread *const *) b;
  return g_strcmp0 (x->id, y->id);
}

/**
 * qpin_vm_threads_classify:
 * @pid: the QEMU process (its main thread is the emulator thread)
 * @cpus: (element-type QpinQmpCpu): from query-cpus-fast
 * @iothreads: (element-type QpinQmpIothread) (nullable): from query-iothreads;
 *   sorted by id here
 * @tids: (element-type GPid): the process's threads, sorted
 * @refused: (out) (transfer full) (element-type utf8): one message for each
 *   thread QMP named that is not a thread of @pid; these are left out
 *
 * A TID that several vCPUs share (single-threaded TCG) is one vCPU entry
 * per vCPU, all with that TID.  Threads QMP does not name are "other".
 *
 * Returns: (transfer full) (element-type QpinVmThread): vCPUs by index,
 *   the emulator, iothreads, then the others by TID
 */
GPtrArray *
qpin_vm_threads_classify (GPid pid, GPtrArray *cpus, GPtrArray *iothreads, GArray *tids,
                          GPtrArray **refused)
{
  g_autoptr (GPtrArray) threads
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_vm_thread_free);
  g_autoptr (GPtrArray) lies = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) named = g_hash_table_new (NULL, NULL);
  gint others = 0;

  for (guint i = 0; cpus && i < cpus->len; i++)
    {
      QpinQmpCpu *cpu = g_ptr_array_index (cpus, i);
      QpinVmThread *t;

      if (!tid_in (tids, (GPid) cpu->thread_id) || cpu->thread_id == pid)
        {
          g_ptr_array_add (lies, g_strdup_printf ("vCPU %" G_GINT64_FORMAT
                                                  " reports thread %" G_GINT64_FORMAT
                                                  ", which is not a vCPU thread "
                                                  "of process %d",
                                                  cpu->cpu_index, cpu->thread_id, pid));
          continue;
        }
      t = thread_new (QPIN_ROLE_VCPU, (gint) cpu->cpu_index, (GPid) cpu->thread_id);
      t->id = g_strdup (cpu->qom_path);
      t->topo = cpu->topo;
      g_ptr_array_add (threads, t);
      g_hash_table_add (named, GINT_TO_POINTER (t->tid));
    }

  /* With single-threaded TCG the main loop thread may also run vCPUs;
   * the emulator entry still exists, for the process itself. */
  g_ptr_array_add (threads, thread_new (QPIN_ROLE_EMULATOR, 0, pid));
  g_hash_table_add (named, GINT_TO_POINTER (pid));

  /* QEMU lists iothreads in no stable order; by id they are */
  if (iothreads)
    g_ptr_array_sort (iothreads, compare_iothread_id);
  for (guint i = 0; iothreads && i < iothreads->len; i++)
    {
      QpinQmpIothread *io = g_ptr_array_index (iothreads, i);
      QpinVmThread *t;

      if (!tid_in (tids, (GPid) io->thread_id)
          || g_hash_table_contains (named, GINT_TO_POINTER ((GPid) io->thread_id)))
        {
          g_ptr_array_add (lies, g_strdup_printf ("iothread '%s' reports thread %" G_GINT64_FORMAT
                                                  ", which is not an iothread of process %d",
                                                  io->id, io->thread_id, pid));
          continue;
        }
      t = thread_new (QPIN_ROLE_IOTHREAD, (gint) i, (GPid) io->thread_id);
      t->id = g_strdup (io->id);
      g_ptr_array_add (threads, t);
      g_hash_table_add (named, GINT_TO_POINTER (t->tid));
    }

  for (guint i = 0; i < tids->len; i++)
    {
      GPid tid = g_array_index (tids, GPid, i);
      if (!g_hash_table_contains (named, GINT_TO_POINTER (tid)))
        g_ptr_array_add (threads, thread_new (QPIN_ROLE_OTHER, others++, tid));
    }

  *refused = g_steal_pointer (&lies);
  return g_steal_pointer (&threads);
}

/**
 * qpin_vm_threads_resolve_pid:
 * @forced: a pid the user gave (--pid), or 0
 * @peer: the monitor socket's peer from SO_PEERCRED, or 0 (TCP)
 * @cpus: (element-type QpinQmpCpu): from query-cpus-fast
 *
 * Which process serves a monitor: the one the user named, else the one
 * the kernel names, else (TCP) the process owning the first vCPU thread.
 *
 * Returns: the pid, or 0 with an error asking for --pid
 */
GPid
qpin_vm_threads_resolve_pid (gint64 forced, GPid peer, GPtrArray *cpus, GError **error)
{
  GPid pid = 0;

  if (forced > 0)
    return (GPid) forced;
  if (peer > 0)
    return peer;
  if (cpus && cpus->len > 0)
    pid = qpin_proc_tgid_of ((GPid) ((QpinQmpCpu *) g_ptr_array_index (cpus, 0))->thread_id);
  if (pid <= 0)
    g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                 "cannot tell which process serves this monitor: give --pid");
  return pid;
}
