/* qpin-vm-birth.c: a new vCPU pinned the moment it is known
 *
 * A hot-added vCPU is pinned as soon as query-cpus-fast names its thread,
 * before query-iothreads and the full settle (which then finds it on its
 * plan and confirms it).  With -name ...,debug-threads=on, QEMU's vCPU
 * thread names itself "CPU n/KVM" (or /TCG) right after it starts, before
 * device_add returns; the process events connector reports that (COMM)
 * and the vCPU is pinned then, a hint QMP confirms or corrects moments
 * later: a thread that lied is found not a vCPU and pinned as one of the
 * others, and the CPU placed for it is freed.  A name places at most one
 * vCPU until QMP has spoken, so renaming threads gains nothing.  Only a thread of the VM's own
 * process (its tgid checked against the process the monitor belongs to), only a VM placed and
 * pinned, and only onto the CPUs its plan holds for that vCPU or the placer gives it by the normal
 * hot-add path: never another VM's.
 */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"

#include <string.h>

#include "qpin-qmp-types.h"

static gboolean
known_thread (QpinVm *vm, GPid tid)
{
  for (guint i = 0; vm->threads && i < vm->threads->len; i++)
    if (((const QpinVmThread *) g_ptr_array_index (vm->threads, i))->tid == tid)
      return TRUE;
  return FALSE;
}

/* Whether @tid is a thread of @vm's own process, now. */
static gboolean
own_thread (QpinVm *vm, GPid tid)
{
  g_autoptr (GArray) tids = NULL;

  if (vm->peer && !qpin_host_is_current (vm->registry->host, vm->peer, NULL))
    return FALSE;
  tids = qpin_host_list_tasks (vm->registry->host, vm->pid, NULL);
  for (guint i = 0; tids && i < tids->len; i++)
    if (g_array_index (tids, GPid, i) == tid)
      return TRUE;
  return FALSE;
}

/* The CPUs the plan holds for vCPU @index, placed by the normal hot-add
 * path when the plan has none yet. */
static gboolean
planned_for (QpinVm *vm, GPid tid, guint index, const QpinGuestTopo *topo, gboolean may_place,
             QpinCpuset *out)
{
  const QpinPlanThread *pt = qpin_plan_vm_find_thread (qpin_vm_plan_of (vm), QPIN_ROLE_VCPU, index);
  QpinThreadSpec spec = qpin_thread_spec_vcpu (index);
  g_autoptr (GError) error = NULL;

  if (pt == NULL && !may_place)
    return FALSE;
  if (pt == NULL)
    {
      spec.tid = tid;
      if (topo)
        spec.topo = *topo;
      if (!qpin_placer_add_thread (vm->registry->placer, vm->key, &spec, &error))
        {
          g_debug ("vm '%s': vcpu %u not placed early: %s", vm->key, index, error->message);
          return FALSE;
        }
      g_message ("vm '%s': placed new vcpu %u (tid %d)", vm->key, index, tid);
      pt = qpin_plan_vm_find_thread (qpin_vm_plan_of (vm), QPIN_ROLE_VCPU, index);
    }
  if (pt == NULL || qpin_cpuset_packed_is_empty (&pt->cpus))
    return FALSE;
  qpin_cpuset_unpack (&pt->cpus, out);
  return TRUE;
}

/**
 * qpin_vm_pin_newborn:
 * @tid: the new thread
 * @index: the vCPU it is said to be
 * @topo: (nullable): its guest topology, when QMP said it
 * @source: what said so, for the log
 *
 * Pins a new vCPU thread of @vm ahead of the settle that confirms it.
 * Returns: whether it was pinned
 */
gboolean
qpin_vm_pin_newborn (QpinVm *vm, GPid tid, guint index, const QpinGuestTopo *topo,
                     const char *source)
{
  QpinRegistry *registry = vm->registry;
  g_autoptr (GError) error = NULL;
  QpinCpuset planned, applied;
  gint cpu;

  if (registry == NULL || !vm->placed || vm->untouchable || vm->shared_vcpu_thread
      || vm->state != QPIN_VM_PINNED || registry->options.dry_run
      || registry->options.enforce == QPIN_ENFORCE_OFF || tid <= 0 || known_thread (vm, tid)
      || !own_thread (vm, tid)
      || !planned_for (vm, tid, index, topo, topo != NULL || vm->named_early == 0, &planned))
    return FALSE;
  if (topo == NULL)
    vm->named_early++;
  /* pinned a moment ago by its name, now named by QMP */
  if (qpin_host_read_task (registry->host, vm->pid, tid, &applied, &cpu)
      && qpin_cpuset_equal (&applied, &planned))
    return TRUE;
  if (!qpin_host_pin (registry->host, vm->pid, tid, &planned, &applied, &error))
    {
      g_debug ("vm '%s': vcpu %u (tid %d) not pinned early: %s", vm->key, index, tid,
               error->message);
      return FALSE;
    }
  g_info ("vm '%s': new vcpu %u (tid %d) pinned as %s named it", vm->key, index, tid, source);
  return TRUE;
}

/**
 * qpin_vm_pin_cpus_early:
 *
 * query-cpus-fast answered a discovery for a new thread: its new vCPUs
 * are pinned now, not after query-iothreads.
 */
void
qpin_vm_pin_cpus_early (QpinVm *vm)
{
  for (guint i = 0; vm->cpus && i < vm->cpus->len; i++)
    {
      const QpinQmpCpu *cpu = g_ptr_array_index (vm->cpus, i);

      if (cpu->cpu_index >= 0 && cpu->cpu_index <= G_MAXINT32 && cpu->thread_id > 0
          && cpu->thread_id <= G_MAXINT32)
        qpin_vm_pin_newborn (vm, (GPid) cpu->thread_id, (guint) cpu->cpu_index, &cpu->topo,
                             "query-cpus-fast");
    }
}

/* "CPU 3/KVM", "CPU 12/TCG": the vCPU index QEMU's debug-threads name
 * gives; FALSE for any other name. */
static gboolean
parse_vcpu_name (const char *comm, guint *index)
{
  guint64 n = 0;
  const char *p = comm + strlen ("CPU ");
  char *end = NULL;

  if (!g_str_has_prefix (comm, "CPU ") || !g_ascii_isdigit (*p))
    return FALSE;
  n = g_ascii_strtoull (p, &end, 10);
  if (end == p || *end != '/' || end[1] == '\0' || n > G_MAXINT32)
    return FALSE;
  *index = (guint) n;
  return TRUE;
}

/**
 * qpin_registry_comm_event:
 *
 * Thread @tid of process @tgid named itself @comm (what the process
 * events connector says): a managed VM's new vCPU is pinned now, and
 * QMP asked to confirm.
 */
void
qpin_registry_comm_event (GPid tgid, GPid tid, const char *comm, gpointer user_data)
{
  QpinRegistry *registry = user_data;
  guint index;

  if (!parse_vcpu_name (comm, &index))
    return;
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);

      if (vm->pid != tgid)
        continue;
      if (qpin_vm_pin_newborn (vm, tid, index, NULL, "its thread name"))
        qpin_vm_discover_born (vm);
      return;
    }
}
