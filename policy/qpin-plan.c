/* qpin-plan.c: plans, their copies and their table form */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-plan.h"
#include "qpin-text.h"

#include <string.h>

/**
 * qpin_plan_new:
 *
 * Returns: (transfer full): an empty plan.
 */
QpinPlan *
qpin_plan_new (void)
{
  QpinPlan *plan = g_new0 (QpinPlan, 1);
  plan->vms = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_plan_vm_free);
  return plan;
}

/**
 * qpin_plan_free:
 * @plan: (nullable): a plan
 */
void
qpin_plan_free (QpinPlan *plan)
{
  if (plan == NULL)
    return;
  g_ptr_array_unref (plan->vms);
  g_free (plan);
}

/**
 * qpin_plan_copy:
 *
 * Returns: (transfer full): a deep copy.
 */
QpinPlan *
qpin_plan_copy (const QpinPlan *plan)
{
  QpinPlan *copy = qpin_plan_new ();
  for (guint i = 0; i < plan->vms->len; i++)
    g_ptr_array_add (copy->vms, qpin_plan_vm_copy (g_ptr_array_index (plan->vms, i)));
  return copy;
}

/**
 * qpin_plan_vm_new:
 *
 * Returns: (transfer full): a VM entry without threads; @policy is copied.
 */
QpinPlanVm *
qpin_plan_vm_new (const char *name, gint64 pid, const QpinPolicy *policy)
{
  QpinPlanVm *vm = g_new0 (QpinPlanVm, 1);

  vm->name = g_strdup (name);
  vm->pid = pid;
  vm->policy = qpin_policy_copy (policy);
  vm->threads = g_array_new (FALSE, TRUE, sizeof (QpinPlanThread));
  g_array_set_clear_func (vm->threads, (GDestroyNotify) qpin_plan_thread_clear);
  vm->notes = g_ptr_array_new_with_free_func (g_free);
  return vm;
}

/**
 * qpin_plan_vm_free:
 * @vm: (nullable): a VM entry
 */
void
qpin_plan_vm_free (QpinPlanVm *vm)
{
  if (vm == NULL)
    return;
  g_free (vm->name);
  qpin_policy_free (vm->policy);
  g_array_unref (vm->threads);
  g_ptr_array_unref (vm->notes);
  qpin_cpuset_packed_clear (&vm->mem_nodes);
  qpin_cpuset_packed_clear (&vm->held);
  qpin_cpuset_packed_clear (&vm->pool_domain);
  g_free (vm);
}

/**
 * qpin_plan_vm_copy:
 *
 * Returns: (transfer full): a deep copy.
 */
QpinPlanVm *
qpin_plan_vm_copy (const QpinPlanVm *vm)
{
  QpinPlanVm *copy = qpin_plan_vm_new (vm->name, vm->pid, vm->policy);

  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *src = &g_array_index (vm->threads, QpinPlanThread, i);
      QpinPlanThread t = *src;

      /* t.cpus still shares src's words: give t its own */
      memset (&t.cpus, 0, sizeof t.cpus);
      qpin_cpuset_packed_copy (&t.cpus, &src->cpus);
      g_array_append_val (copy->threads, t);
    }
  qpin_cpuset_packed_copy (&copy->mem_nodes, &vm->mem_nodes);
  qpin_cpuset_packed_copy (&copy->held, &vm->held);
  copy->floating = vm->floating;
  qpin_cpuset_packed_copy (&copy->pool_domain, &vm->pool_domain);
  for (guint i = 0; i < vm->notes->len; i++)
    g_ptr_array_add (copy->notes, g_strdup (g_ptr_array_index (vm->notes, i)));
  return copy;
}

/**
 * qpin_plan_find_vm:
 *
 * Returns: (transfer none) (nullable): the VM called @name.
 */
const QpinPlanVm *
qpin_plan_find_vm (const QpinPlan *plan, const char *name)
{
  for (guint i = 0; i < plan->vms->len; i++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, i);
      if (strcmp (vm->name, name) == 0)
        return vm;
    }
  return NULL;
}

/**
 * qpin_plan_vm_thread_position:
 *
 * Returns: the position in @vm->threads of the thread with @role and
 * @index, or -1.
 */
gint
qpin_plan_vm_thread_position (const QpinPlanVm *vm, QpinThreadRole role, guint index)
{
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      if (t->spec.role == role && t->spec.index == index)
        return (gint) i;
    }
  return -1;
}

/**
 * qpin_plan_vm_find_thread:
 *
 * Returns: (transfer none) (nullable): the thread with @role and @index.
 */
const QpinPlanThread *
qpin_plan_vm_find_thread (const QpinPlanVm *vm, QpinThreadRole role, guint index)
{
  gint i = qpin_plan_vm_thread_position (vm, role, index);

  return i < 0 ? NULL : &g_array_index (vm->threads, QpinPlanThread, (guint) i);
}

/**
 * qpin_plan_thread_clear:
 *
 * Frees what @t owns (its packed cpus) and empties it: the clear function
 * of every QpinPlanVm.threads array.
 */
void
qpin_plan_thread_clear (QpinPlanThread *t)
{
  qpin_cpuset_packed_clear (&t->cpus);
}

/**
 * qpin_plan_vm_add_note:
 *
 * Appends a printf-formatted note to @vm, unless @vm already has it
 * (re-planning says the same thing again).
 */
void
qpin_plan_vm_add_note (QpinPlanVm *vm, const char *format, ...)
{
  va_list args;
  char *note;

  va_start (args, format);
  note = g_strdup_vprintf (format, args);
  va_end (args);
  for (guint i = 0; i < vm->notes->len; i++)
    if (strcmp (g_ptr_array_index (vm->notes, i), note) == 0)
      {
        g_free (note);
        return;
      }
  g_ptr_array_add (vm->notes, note);
}

/* "0" or "0,1" for the nodes / LLC groups / cores a cpuset touches */
static char *
indexes_of (const QpinTopology *topo, const QpinCpuset *cpus, guint what)
{
  QpinCpuset ids;

  qpin_cpuset_clear_all (&ids);
  QPIN_CPUSET_FOREACH (cpu, cpus)
    {
      gint i = what == 0   ? qpin_topology_cpu_node (topo, (guint) cpu)
               : what == 1 ? qpin_topology_cpu_llc (topo, (guint) cpu)
                           : qpin_topology_cpu_core (topo, (guint) cpu);
      if (i >= 0)
        qpin_cpuset_add (&ids, what == 0 ? qpin_topology_node (topo, (guint) i)->id : (guint) i);
    }
  return qpin_cpuset_format (&ids);
}

/* Hybrid hosts: "a            cpu kinds    P 0-7" per kind of the VM's
 * exclusive CPUs, fastest first. */
static void
append_kinds (GString *s, const QpinTopology *topo, const QpinPlanVm *vm, const char *vm_name)
{
  QpinCpuset mine;

  if (topo->kinds->len < 2)
    return;
  qpin_cpuset_clear_all (&mine);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
      if (t->exclusive)
        qpin_cpuset_or_packed (&mine, &t->cpus);
    }
  g_string_append_printf (s, "%-12s cpu kinds   ", vm_name);
  for (guint k = 0; k < topo->kinds->len; k++)
    {
      const QpinTopoKind *kind = &g_array_index (topo->kinds, QpinTopoKind, k);
      QpinCpuset in = mine;
      g_autofree char *cpus = NULL;

      qpin_cpuset_and (&in, &kind->cpus);
      if (qpin_cpuset_is_empty (&in))
        continue;
      cpus = qpin_cpuset_format (&in);
      g_string_append_printf (s, " %s %s", kind->name, cpus);
    }
  if (qpin_cpuset_is_empty (&mine))
    g_string_append (s, " none (floating)");
  g_string_append_c (s, '\n');
}

/**
 * qpin_plan_to_table:
 *
 * Returns: (transfer full): one line per thread (VM, thread, host CPUs,
 * node, LLC group, core) and the notes of each VM.
 */
char *
qpin_plan_to_table (const QpinPlan *plan, const QpinTopology *topo)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "%-12s %-12s %-16s %-6s %-6s %-10s %s\n", "VM", "THREAD", "HOST CPUS",
                          "NODE", "LLC", "CORE", "MODE");
  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      g_autofree char *mem = NULL;
      g_autofree char *vm_name = qpin_text_escape (vm->name);
      QpinCpuset set;

      qpin_cpuset_unpack (&vm->mem_nodes, &set);
      mem = qpin_cpuset_format (&set);

      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          g_autofree char *name
            = t->spec.role == QPIN_ROLE_EMULATOR
                ? g_strdup ("emulator")
                : g_strdup_printf ("%s %u", qpin_thread_role_to_string (t->spec.role),
                                   t->spec.index);
          g_autofree char *cpus = NULL;
          g_autofree char *nodes = NULL;
          g_autofree char *llcs = NULL;
          g_autofree char *cores = NULL;

          qpin_cpuset_unpack (&t->cpus, &set);
          cpus = qpin_cpuset_format (&set);
          nodes = indexes_of (topo, &set, 0);
          llcs = indexes_of (topo, &set, 1);
          cores = indexes_of (topo, &set, 2);

          g_string_append_printf (s, "%-12s %-12s %-16s %-6s %-6s %-10s %s\n", vm_name, name, cpus,
                                  nodes, llcs, cores, t->exclusive ? "exclusive" : "shared");
        }
      {
        /* CPUs held beyond the threads' own: the idle siblings of smt=isolate */
        QpinCpuset extra;

        qpin_cpuset_unpack (&vm->held, &extra);
        for (guint i = 0; i < vm->threads->len; i++)
          {
            const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
            if (t->exclusive)
              qpin_cpuset_andnot_packed (&extra, &t->cpus);
          }
        if (!qpin_cpuset_is_empty (&extra))
          {
            g_autofree char *h = qpin_cpuset_format (&extra);
            g_string_append_printf (s, "%-12s also holds   %s (idle siblings, smt=isolate)\n",
                                    vm_name, h);
          }
      }
      g_string_append_printf (s, "%-12s memory nodes %s\n", vm_name, *mem ? mem : "any");
      append_kinds (s, topo, vm, vm_name);
      for (guint i = 0; i < vm->notes->len; i++)
        {
          g_autofree char *note = qpin_text_escape (g_ptr_array_index (vm->notes, i));
          g_string_append_printf (s, "%-12s note: %s\n", vm_name, note);
        }
    }
  return g_string_free (s, FALSE);
}
