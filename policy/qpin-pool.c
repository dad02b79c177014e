/* qpin-pool.c: the shared pool and the exclusivity rule (see the header) */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-pool.h"

#include <string.h>

/**
 * qpin_pool_compute:
 * @usable: the usable CPUs of the whole host
 * @owner: per CPU, the slot of the VM holding it, or -1
 * @pool: (out): the shared pool
 *
 * The one place the shared pool is computed: usable CPUs no VM holds.
 */
void
qpin_pool_compute (const QpinCpuset *usable, const gint *owner, QpinCpuset *pool)
{
  qpin_cpuset_clear_all (pool);
  QPIN_CPUSET_FOREACH (cpu, usable)
    if (owner[cpu] < 0)
      qpin_cpuset_add (pool, (guint) cpu);
}

/**
 * qpin_pool_vm_floats:
 * @skip: a thread index not to count, or -1
 *
 * Returns: whether @vm floats on the pool (a floating VM, or a vCPU of a
 * dedicated VM without its own CPU), apart from its thread @skip.
 */
gboolean
qpin_pool_vm_floats (const QpinPlanVm *vm, gint skip)
{
  if (vm->floating)
    return TRUE;
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      if ((gint) i != skip && t->spec.role == QPIN_ROLE_VCPU && !t->exclusive)
        return TRUE;
    }
  return FALSE;
}

/**
 * qpin_pool_add_name:
 * @names: (nullable): the list so far
 * @n: how many names it has
 *
 * Appends "'name'" to a list of at most three names, then ", ...".
 */
void
qpin_pool_add_name (GString *names, guint n, const char *name)
{
  if (names == NULL || n > 3)
    return;
  if (n > 0)
    g_string_append (names, n == 3 ? ", ..." : ", ");
  if (n < 3)
    g_string_append_printf (names, "'%s'", name);
}

/**
 * qpin_pool_users:
 * @pending: (nullable) (element-type QpinPlanVm): VMs of the batch that
 *   will float, not placed yet
 * @spills: the batch asks for more than is free and may overcommit
 * @self: (nullable): the VM being placed; only its threads other than
 *   @self_t count (-1: none of them)
 * @names: (nullable): receives their names
 *
 * Returns: how many VMs float on the pool (2 for "the ones that will
 * overcommit" when only @spills says so).
 */
guint
qpin_pool_users (const QpinPlan *plan, GPtrArray *pending, gboolean spills, const QpinPlanVm *self,
                 gint self_t, GString *names)
{
  guint n = 0;

  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      if (vm == self ? self_t >= 0 && qpin_pool_vm_floats (vm, self_t)
                     : qpin_pool_vm_floats (vm, -1))
        qpin_pool_add_name (names, n++, vm->name);
    }
  for (guint v = 0; pending && v < pending->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (pending, v);
      if (vm != self)
        qpin_pool_add_name (names, n++, vm->name);
    }
  if (n == 0 && spills)
    {
      if (names)
        g_string_append (names, "that overcommit (overcommit=share)");
      n = 2;
    }
  return n;
}

/**
 * qpin_pool_append_refusal:
 *
 * Ends a refusal: ", but 1 must stay in the shared pool for vm 'b'".
 */
void
qpin_pool_append_refusal (GString *s, guint n_users, const char *names)
{
  g_string_append_printf (s, ", but 1 must stay in the shared pool for %s %s",
                          n_users == 1 ? "vm" : "vms", names);
}

/**
 * qpin_pool_batch_spills:
 * @pending: (element-type QpinPlanVm): the VMs of a batch
 * @n_free: CPUs in the pool before the batch
 *
 * Returns: whether the dedicated and manual VMs of the batch ask for
 * more CPUs than the pool has while one may overcommit: then some will
 * float, and the pool must keep a CPU for them from the start.
 */
gboolean
qpin_pool_batch_spills (GPtrArray *pending, guint n_free)
{
  guint need = 0;
  gboolean share = FALSE;

  for (guint i = 0; i < pending->len; i++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (pending, i);
      if (vm->policy->cpus == QPIN_CPUS_SHARED)
        continue;
      share |= vm->policy->overcommit == QPIN_OVERCOMMIT_SHARE;
      for (guint t = 0; t < vm->threads->len; t++)
        need += g_array_index (vm->threads, QpinPlanThread, t).spec.role == QPIN_ROLE_VCPU;
    }
  return share && need > n_free;
}

/**
 * qpin_pool_fallback:
 * @live: online CPUs that are not lost
 * @pool: (out): where @vm's floating threads go
 *
 * Where floating threads go when the shared pool is empty, which only a
 * lost host CPU can cause (every request that would empty it is refused):
 * the reserved CPUs, else the VM's own held CPUs, else every usable CPU;
 * said in a note.
 */
void
qpin_pool_fallback (QpinPlanVm *vm, const QpinCpuset *reserved, const QpinCpuset *live,
                    const QpinCpuset *usable, QpinCpuset *pool)
{
  g_autofree char *l = NULL;

  *pool = *reserved;
  qpin_cpuset_and (pool, live);
  if (!qpin_cpuset_is_empty (pool))
    {
      l = qpin_cpuset_format (pool);
      qpin_plan_vm_add_note (
        vm, "degraded: the shared pool is empty, floats on the reserved cpus %s", l);
      return;
    }
  qpin_cpuset_unpack (&vm->held, pool);
  if (!qpin_cpuset_is_empty (pool))
    {
      l = qpin_cpuset_format (pool);
      qpin_plan_vm_add_note (vm, "degraded: the shared pool is empty, floats on its own cpus %s",
                             l);
      return;
    }
  *pool = *usable;
  qpin_plan_vm_add_note (vm, "degraded: the shared pool is empty, floats on cpus other vms hold");
}

static char *
waiting_prefix (const QpinThreadSpec *spec)
{
  return g_strdup_printf ("waiting: %s %u has no cpu (", qpin_thread_role_to_string (spec->role),
                          spec->index);
}

/**
 * qpin_pool_note_waiting:
 *
 * Notes on @vm that its running thread @spec was refused a place
 * ("waiting: vcpu 1 has no cpu (@reason)").
 *
 * Returns: %TRUE if that is news (not noted already with this reason).
 */
gboolean
qpin_pool_note_waiting (QpinPlanVm *vm, const QpinThreadSpec *spec, const char *reason)
{
  g_autofree char *prefix = waiting_prefix (spec);
  guint before = vm->notes->len;

  qpin_plan_vm_add_note (vm, "%s%s)", prefix, reason);
  return vm->notes->len > before;
}

/**
 * qpin_pool_forget_waiting:
 *
 * Drops the waiting note of a thread that has been placed.
 */
void
qpin_pool_forget_waiting (QpinPlanVm *vm, const QpinThreadSpec *spec)
{
  g_autofree char *prefix = waiting_prefix (spec);

  for (guint i = vm->notes->len; i-- > 0;)
    if (g_str_has_prefix (g_ptr_array_index (vm->notes, i), prefix))
      g_ptr_array_remove_index (vm->notes, i);
}
