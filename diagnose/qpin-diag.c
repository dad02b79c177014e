/* qpin-diag.c: the diagnose context: VMs, two snapshots, the checks */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-private.h"

#include <string.h>

/**
 * qpin_diag_vm_new:
 *
 * Returns: (transfer full): a VM with no threads yet
 */
QpinDiagVm *
qpin_diag_vm_new (const char *name, gint64 pid)
{
  QpinDiagVm *vm = g_new0 (QpinDiagVm, 1);

  vm->name = g_strdup (name);
  vm->pid = pid;
  vm->threads = g_array_new (FALSE, FALSE, sizeof (QpinDiagThread));
  vm->drift_repairs = -1;
  return vm;
}

void
qpin_diag_vm_free (QpinDiagVm *vm)
{
  if (vm == NULL)
    return;
  g_free (vm->name);
  g_array_unref (vm->threads);
  g_free (vm->accel);
  g_free (vm->cpu_model_why);
  g_clear_pointer (&vm->cpu_flags, g_ptr_array_unref);
  g_free (vm);
}

void
qpin_diag_vm_add_thread (QpinDiagVm *vm, gint64 tid, QpinThreadRole role, guint index)
{
  QpinDiagThread t = { tid, role, index };

  g_array_append_val (vm->threads, t);
}

/* QEMU names its threads: "CPU 3/KVM" (or /TCG, /HVF) is vCPU 3, "IO NAME"
 * an iothread, the thread whose tid is the pid the emulator. */
static gboolean
role_from_comm (const char *comm, gint64 tid, gint64 pid, QpinThreadRole *role, guint *index)
{
  guint64 n;
  g_autofree char *num = NULL;

  if (tid == pid)
    {
      *role = QPIN_ROLE_EMULATOR;
      *index = 0;
      return TRUE;
    }
  if (g_str_has_prefix (comm, "CPU ") && strchr (comm, '/'))
    {
      num = g_strndup (comm + 4, (gsize) (strchr (comm, '/') - comm - 4));
      if (!g_ascii_string_to_unsigned (num, 10, 0, G_MAXUINT, &n, NULL))
        return FALSE;
      *role = QPIN_ROLE_VCPU;
      *index = (guint) n;
      return TRUE;
    }
  if (g_str_has_prefix (comm, "IO "))
    {
      *role = QPIN_ROLE_IOTHREAD;
      *index = 0;
      return TRUE;
    }
  return FALSE;
}

/**
 * qpin_diag_vm_read_threads:
 *
 * Adds the vCPU, emulator and iothread threads of @vm from their names
 * in ROOT/proc/PID/task/T/comm.
 *
 * Returns: FALSE with @error when the process has no task directory
 */
gboolean
qpin_diag_vm_read_threads (QpinDiagVm *vm, const char *root, GError **error)
{
  g_autofree char *path = g_strdup_printf ("%s/proc/%" G_GINT64_FORMAT "/task", root, vm->pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, error);
  const char *name;
  guint iothreads = 0;

  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *rel
        = g_strdup_printf ("proc/%" G_GINT64_FORMAT "/task/%s/comm", vm->pid, name);
      g_autofree char *comm = qpin_diag_read_trimmed (root, rel);
      guint64 tid;
      QpinThreadRole role;
      guint index;

      if (comm == NULL || !g_ascii_string_to_unsigned (name, 10, 1, G_MAXINT32, &tid, NULL)
          || !role_from_comm (comm, (gint64) tid, vm->pid, &role, &index))
        continue;
      if (role == QPIN_ROLE_IOTHREAD)
        index = iothreads++;
      qpin_diag_vm_add_thread (vm, (gint64) tid, role, index);
    }
  return TRUE;
}

/**
 * qpin_diag_new:
 * @root: "/" for the live host
 * @topo: (transfer none): must outlive the context
 * @seconds: the sampling interval (live); in a fixture with ROOT/after,
 *   the interval the two snapshots stand for
 *
 * Returns: (transfer full): a context with no VM yet
 */
QpinDiag *
qpin_diag_new (const char *root, const QpinTopology *topo, double seconds)
{
  QpinDiag *diag = g_new0 (QpinDiag, 1);
  g_autofree char *after = g_build_filename (root, "after", NULL);

  diag->root = g_strdup (root);
  diag->after_root = g_strcmp0 (root, "/") != 0 && g_file_test (after, G_FILE_TEST_IS_DIR)
                       ? g_steal_pointer (&after)
                       : g_strdup (root);
  diag->topo = topo;
  diag->seconds = seconds > 0 ? seconds : 1;
  diag->vms = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_diag_vm_free);
  return diag;
}

void
qpin_diag_free (QpinDiag *diag)
{
  if (diag == NULL)
    return;
  qpin_diag_snap_clear (&diag->before);
  qpin_diag_snap_clear (&diag->after);
  g_ptr_array_unref (diag->vms);
  g_free (diag->root);
  g_free (diag->after_root);
  g_free (diag);
}

/**
 * qpin_diag_has_after:
 *
 * Returns: TRUE when the second snapshot comes from ROOT/after (no wait)
 */
gboolean
qpin_diag_has_after (const QpinDiag *diag)
{
  return g_strcmp0 (diag->root, diag->after_root) != 0;
}

/**
 * qpin_diag_add_vm:
 * @vm: (transfer full):
 */
void
qpin_diag_add_vm (QpinDiag *diag, QpinDiagVm *vm)
{
  qpin_cpuset_or (&diag->dedicated, &vm->dedicated);
  g_ptr_array_add (diag->vms, vm);
}

/**
 * qpin_diag_snapshot:
 * @after: the second snapshot (from ROOT/after in a fixture)
 */
void
qpin_diag_snapshot (QpinDiag *diag, gboolean after)
{
  if (after)
    qpin_diag_snap_read (&diag->after, diag->after_root);
  else
    qpin_diag_snap_read (&diag->before, diag->root);
  /* live, the rates are over the time that really passed between samples */
  if (after)
    diag->after_us = g_get_monotonic_time ();
  else
    diag->before_us = g_get_monotonic_time ();
  if (after && !qpin_diag_has_after (diag) && diag->after_us > diag->before_us)
    diag->seconds = (double) (diag->after_us - diag->before_us) / G_USEC_PER_SEC;
}

/* A VM's dedicated CPUs, when nobody said: its vCPUs each allowed on one
 * CPU that no other vCPU of it shares. */
static void
derive_dedicated (QpinDiag *diag, QpinDiagVm *vm)
{
  if (!qpin_cpuset_is_empty (&vm->dedicated))
    return;
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinDiagThread *t = &g_array_index (vm->threads, QpinDiagThread, i);
      const QpinDiagTask *task = qpin_diag_task (&diag->before, t->tid);

      if (t->role == QPIN_ROLE_VCPU && task && qpin_cpuset_count (&task->allowed) == 1)
        qpin_cpuset_or (&vm->dedicated, &task->allowed);
    }
  qpin_cpuset_or (&diag->dedicated, &vm->dedicated);
}

/**
 * qpin_diag_run:
 *
 * Runs every check on the two snapshots (take them first), adds what it
 * finds to @out and ranks @out.
 */
void
qpin_diag_run (QpinDiag *diag, QpinFindings *out)
{

  for (guint i = 0; i < diag->vms->len; i++)
    derive_dedicated (diag, g_ptr_array_index (diag->vms, i));
  qpin_diag_check_host (diag, out);
  qpin_diag_check_irqs (diag, out);
  qpin_diag_check_vms (diag, out);
  qpin_findings_sort (out);
}
