/* qpin-diag-vm.c: per-VM checks: waiting vCPUs, hot emulator, TCG, CPU
 * model, busy SMT siblings, remote memory, repeated drift */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-private.h"

#include <stdlib.h>
#include <string.h>

#define WAIT_PERCENT 20.0     /* vcpu-wait: runnable, not running */
#define EMULATOR_PERCENT 50.0 /* emulator-hot */
#define SIBLING_PERCENT 50.0  /* smt-sibling-busy */
#define OTHER_PERCENT 1.0     /* a task named as evidence ran at least this much */
#define REMOTE_PERCENT 10.0   /* numa-remote-memory */
#define DRIFT_REPEATED 3      /* drift-repeated: more repairs than this */
#define MAX_OTHERS 8

static double
percent (const QpinDiag *diag, guint64 ns)
{
  return (double) ns * 100.0 / (diag->seconds * 1e9);
}

/* "vm 'b' vcpu 0" for a thread of a known VM, else "host task 'comm' (pid N)" */
static char *
describe_task (const QpinDiag *diag, const QpinDiagTask *t)
{
  const QpinDiagThread *thread = NULL;
  const QpinDiagVm *vm = qpin_diag_vm_of_tid (diag, t->tid, &thread);

  if (vm && thread->role == QPIN_ROLE_EMULATOR)
    return g_strdup_printf ("vm '%s' emulator", vm->name);
  if (vm)
    return g_strdup_printf ("vm '%s' %s %u", vm->name, qpin_thread_role_to_string (thread->role),
                            thread->index);
  return g_strdup_printf ("host task '%s' (pid %" G_GINT64_FORMAT ")", t->comm, t->pid);
}

static gint
by_percent (gconstpointer a, gconstpointer b)
{
  double pa = json_object_get_double_member (*(JsonObject *const *) a, "percent");
  double pb = json_object_get_double_member (*(JsonObject *const *) b, "percent");

  return pa < pb ? 1 : pa > pb ? -1 : 0;
}

/* The tasks other than @self (and @skip_vm's) that ran on @cpus between
 * the snapshots, busiest first: [{"who","tid","cpu","percent"}] */
static JsonArray *
others_on (const QpinDiag *diag, const QpinCpuset *cpus, gint64 self, const QpinDiagVm *skip_vm)
{
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  JsonArray *out = json_array_new ();
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, diag->after.tasks);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      const QpinDiagTask *t = value;
      const QpinDiagThread *thread = NULL;
      guint64 run, wait;
      JsonObject *o;
      g_autofree char *who = NULL;

      if (t->tid == self || t->last_cpu < 0 || !qpin_cpuset_has (cpus, (guint) t->last_cpu)
          || !qpin_diag_task_delta (diag, t->tid, &run, &wait)
          || percent (diag, run) < OTHER_PERCENT
          || (skip_vm && qpin_diag_vm_of_tid (diag, t->tid, &thread) == skip_vm))
        continue;
      who = describe_task (diag, t);
      o = json_object_new ();
      json_object_set_string_member (o, "who", who);
      json_object_set_int_member (o, "tid", t->tid);
      json_object_set_int_member (o, "cpu", t->last_cpu);
      json_object_set_double_member (o, "percent", percent (diag, run));
      g_ptr_array_add (found, o);
    }
  g_ptr_array_sort (found, by_percent);
  for (guint i = 0; i < found->len && i < MAX_OTHERS; i++)
    json_array_add_object_element (out, json_object_ref (g_ptr_array_index (found, i)));
  return out;
}

static void
check_vcpu_wait (QpinDiag *diag, const QpinDiagVm *vm, const QpinDiagThread *t, QpinFindings *out)
{
  const QpinDiagTask *task = qpin_diag_task (&diag->after, t->tid);
  guint64 run, wait;
  g_autoptr (JsonArray) others = NULL;
  g_autofree char *cpus = NULL;
  g_autofree char *who = NULL;
  QpinFinding *f;

  if (task == NULL || !qpin_diag_task_delta (diag, t->tid, &run, &wait))
    {
      qpin_findings_not_checked (out, "vcpu-wait", vm->name,
                                 "vcpu %u (tid %" G_GINT64_FORMAT "): %s", t->index, t->tid,
                                 task ? "no schedstat in /proc (kernel without schedstats?)"
                                      : "thread gone during the sample");
      return;
    }
  if (percent (diag, wait) < WAIT_PERCENT)
    return;
  others = others_on (diag, &task->allowed, t->tid, NULL);
  cpus = qpin_cpuset_format (&task->allowed);
  if (json_array_get_length (others) > 0)
    who
      = g_strdup (json_object_get_string_member (json_array_get_object_element (others, 0), "who"));
  f = qpin_findings_add (out, "vcpu-wait", QPIN_SEVERITY_CRITICAL, vm->name,
                         "give the vCPU a CPU of its own: cpus = dedicated in qpin's policy, "
                         "and move what else runs there away",
                         "vcpu %u waited %.0f %% of the time for host CPUs %s%s%s", t->index,
                         percent (diag, wait), cpus, who ? ", busiest other: " : "",
                         who ? who : "");
  json_object_set_int_member (f->evidence, "vcpu", t->index);
  json_object_set_int_member (f->evidence, "tid", t->tid);
  json_object_set_double_member (f->evidence, "wait_percent", percent (diag, wait));
  json_object_set_double_member (f->evidence, "run_percent", percent (diag, run));
  json_object_set_string_member (f->evidence, "cpus", cpus);
  json_object_set_array_member (f->evidence, "others", g_steal_pointer (&others));
}

static QpinCpuset
vcpu_cpus (const QpinDiag *diag, const QpinDiagVm *vm)
{
  QpinCpuset all;

  qpin_cpuset_clear_all (&all);
  for (guint i = 0; i < vm->threads->len; i++)
    {
      const QpinDiagThread *t = &g_array_index (vm->threads, QpinDiagThread, i);
      const QpinDiagTask *task = qpin_diag_task (&diag->before, t->tid);
      if (t->role == QPIN_ROLE_VCPU && task)
        qpin_cpuset_or (&all, &task->allowed);
    }
  return all;
}

static void
check_emulator (QpinDiag *diag, const QpinDiagVm *vm, const QpinDiagThread *t, QpinFindings *out)
{
  const QpinDiagTask *task = qpin_diag_task (&diag->after, t->tid);
  QpinCpuset vcpus = vcpu_cpus (diag, vm);
  guint64 run, wait;
  gboolean shares;
  g_autofree char *cpus = NULL;
  QpinFinding *f;

  if (task == NULL || !qpin_diag_task_delta (diag, t->tid, &run, &wait))
    {
      qpin_findings_not_checked (out, "emulator-hot", vm->name, "%s",
                                 task ? "no schedstat in /proc" : "thread gone during the sample");
      return;
    }
  if (percent (diag, run) < EMULATOR_PERCENT)
    return;
  shares = qpin_cpuset_intersects (&task->allowed, &vcpus);
  cpus = qpin_cpuset_format (&task->allowed);
  f = qpin_findings_add (out, "emulator-hot", QPIN_SEVERITY_WARNING, vm->name,
                         shares ? "give the emulator its own CPU: emulator = isolate (or "
                                  "housekeeping) in qpin's policy"
                                : "find what the emulator thread does (virtio without "
                                  "iothreads? use iothreads = isolate)",
                         "the emulator thread used %.0f %% of a CPU%s", percent (diag, run),
                         shares ? ", on CPUs its vCPUs use" : "");
  json_object_set_double_member (f->evidence, "percent", percent (diag, run));
  json_object_set_string_member (f->evidence, "cpus", cpus);
  json_object_set_boolean_member (f->evidence, "shares_cpus_with_vcpus", shares);
}

static void
check_accel (QpinDiag *diag, const QpinDiagVm *vm, QpinFindings *out)
{
  gboolean tcg = g_strcmp0 (vm->accel, "tcg") == 0;
  const char *source = tcg ? "query-kvm" : NULL;
  QpinFinding *f;

  for (guint i = 0; !tcg && i < vm->threads->len; i++)
    {
      const QpinDiagThread *t = &g_array_index (vm->threads, QpinDiagThread, i);
      const QpinDiagTask *task = qpin_diag_task (&diag->before, t->tid);
      if (t->role == QPIN_ROLE_VCPU && task && g_str_has_suffix (task->comm, "/TCG"))
        {
          tcg = TRUE;
          source = task->comm;
        }
    }
  if (!tcg)
    return;
  f = qpin_findings_add (out, "accel-tcg", QPIN_SEVERITY_WARNING, vm->name,
                         "start QEMU with -accel kvm (check that /dev/kvm exists and the user "
                         "may open it)",
                         "the VM runs on TCG, emulated: every vCPU is 10-100 times slower");
  json_object_set_string_member (f->evidence, "source", source);
}

static void
check_cpu_model (const QpinDiagVm *vm, QpinFindings *out)
{
  g_autoptr (JsonArray) flags = json_array_new ();
  QpinFinding *f;

  if (vm->cpu_model_why)
    {
      qpin_findings_not_checked (out, "cpu-model-missing-features", vm->name, "%s",
                                 vm->cpu_model_why);
      return;
    }
  if (vm->cpu_flags == NULL || vm->cpu_flags->len == 0)
    return;
  for (guint i = 0; i < vm->cpu_flags->len; i++)
    json_array_add_string_element (flags, g_ptr_array_index (vm->cpu_flags, i));
  f = qpin_findings_add (out, "cpu-model-missing-features", QPIN_SEVERITY_WARNING, vm->name,
                         "start QEMU with -cpu host (or a named model that has them, e.g. "
                         "-cpu Haswell or newer)",
                         "the guest CPU model hides %u features the host has (%s%s)",
                         vm->cpu_flags->len, (char *) g_ptr_array_index (vm->cpu_flags, 0),
                         vm->cpu_flags->len > 1 ? ", ..." : "");
  json_object_set_array_member (f->evidence, "missing", g_steal_pointer (&flags));
}

/* A dedicated CPU's SMT siblings busy with what is not this VM's */
static void
check_siblings (QpinDiag *diag, const QpinDiagVm *vm, QpinFindings *out)
{
  QPIN_CPUSET_FOREACH (cpu, &vm->dedicated)
    {
      gint core = qpin_topology_cpu_core (diag->topo, (guint) cpu);
      QpinCpuset siblings;
      g_autoptr (JsonArray) others = NULL;
      double busy = 0;
      QpinFinding *f;

      if (core < 0)
        continue;
      siblings = g_array_index (diag->topo->cores, QpinTopoCore, core).cpus;
      qpin_cpuset_andnot (&siblings, &vm->dedicated);
      if (qpin_cpuset_is_empty (&siblings))
        continue;
      others = others_on (diag, &siblings, 0, vm);
      for (guint i = 0; i < json_array_get_length (others); i++)
        busy
          += json_object_get_double_member (json_array_get_object_element (others, i), "percent");
      if (busy < SIBLING_PERCENT)
        continue;
      f = qpin_findings_add (out, "smt-sibling-busy", QPIN_SEVERITY_WARNING, vm->name,
                             "hold the whole core: smt = isolate in qpin's policy",
                             "the SMT sibling of dedicated CPU %d is %.0f %% busy with other work",
                             cpu, busy);
      json_object_set_int_member (f->evidence, "cpu", cpu);
      json_object_set_double_member (f->evidence, "sibling_busy_percent", busy);
      json_object_set_array_member (f->evidence, "others", g_steal_pointer (&others));
    }
}

/* numa_maps: "ADDR POLICY ... N0=12 N1=3 ..." per mapping */
static gboolean
pages_per_node (const QpinDiag *diag, gint64 pid, GArray *pages)
{
  g_autofree char *rel = g_strdup_printf ("proc/%" G_GINT64_FORMAT "/numa_maps", pid);
  g_autofree char *text = qpin_diag_read (diag->root, rel, NULL);
  g_auto (GStrv) words = text ? g_strsplit_set (text, " \n", 0) : NULL;

  if (words == NULL)
    return FALSE;
  for (guint i = 0; words[i]; i++)
    {
      char *eq = strchr (words[i], '=');
      guint64 node, n;

      if (words[i][0] != 'N' || eq == NULL)
        continue;
      *eq = '\0';
      if (!g_ascii_string_to_unsigned (words[i] + 1, 10, 0, 1023, &node, NULL)
          || !g_ascii_string_to_unsigned (eq + 1, 10, 0, G_MAXUINT64, &n, NULL))
        continue;
      if (pages->len <= node)
        g_array_set_size (pages, (guint) node + 1);
      g_array_index (pages, guint64, node) += n;
    }
  return TRUE;
}

static void
check_numa (QpinDiag *diag, const QpinDiagVm *vm, QpinFindings *out)
{
  g_autoptr (GArray) pages = g_array_new (FALSE, TRUE, sizeof (guint64));
  QpinCpuset cpus = vcpu_cpus (diag, vm), nodes;
  guint64 total = 0, remote = 0;
  g_autoptr (JsonObject) per_node = json_object_new ();
  g_autofree char *node_list = NULL;
  QpinFinding *f;

  if (qpin_topology_n_nodes (diag->topo) < 2 || qpin_cpuset_is_empty (&cpus))
    return;
  if (!pages_per_node (diag, vm->pid, pages))
    {
      qpin_findings_not_checked (out, "numa-remote-memory", vm->name, "numa_maps unreadable");
      return;
    }
  qpin_topology_nodes_of (diag->topo, &cpus, &nodes);
  for (guint n = 0; n < pages->len; n++)
    {
      guint64 p = g_array_index (pages, guint64, n);
      g_autofree char *key = g_strdup_printf ("%u", n);

      total += p;
      remote += qpin_cpuset_has (&nodes, n) ? 0 : p;
      if (p > 0)
        json_object_set_int_member (per_node, key, (gint64) p);
    }
  if (total == 0 || (double) remote * 100.0 / (double) total < REMOTE_PERCENT)
    return;
  node_list = qpin_cpuset_format (&nodes);
  f = qpin_findings_add (out, "numa-remote-memory", QPIN_SEVERITY_WARNING, vm->name,
                         "memory = migrate in qpin's policy (or numa = strict and restart the "
                         "VM)",
                         "%.0f %% of the VM's memory is on nodes its vCPUs are not on (%s)",
                         (double) remote * 100.0 / (double) total, node_list);
  json_object_set_object_member (f->evidence, "pages_per_node", g_steal_pointer (&per_node));
  json_object_set_string_member (f->evidence, "vcpu_nodes", node_list);
}

static void
check_drift (const QpinDiagVm *vm, QpinFindings *out)
{
  QpinFinding *f;

  if (vm->drift_repairs <= DRIFT_REPEATED)
    return;
  f = qpin_findings_add (out, "drift-repeated", QPIN_SEVERITY_WARNING, vm->name,
                         "find who moves the threads (libvirt <vcpupin>, tuned, a cgroup "
                         "cpuset) and stop one of the two",
                         "the daemon repaired drift %" G_GINT64_FORMAT " times: someone else "
                         "keeps moving the VM's threads",
                         vm->drift_repairs);
  json_object_set_int_member (f->evidence, "drift_repairs", vm->drift_repairs);
}

/**
 * qpin_diag_check_vms:
 *
 * vcpu-wait, emulator-hot, accel-tcg, cpu-model-missing-features,
 * smt-sibling-busy, numa-remote-memory, drift-repeated
 */
void
qpin_diag_check_vms (QpinDiag *diag, QpinFindings *out)
{
  for (guint v = 0; v < diag->vms->len; v++)
    {
      const QpinDiagVm *vm = g_ptr_array_index (diag->vms, v);

      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinDiagThread *t = &g_array_index (vm->threads, QpinDiagThread, i);
          if (t->role == QPIN_ROLE_VCPU)
            check_vcpu_wait (diag, vm, t, out);
          else if (t->role == QPIN_ROLE_EMULATOR)
            check_emulator (diag, vm, t, out);
        }
      check_accel (diag, vm, out);
      check_cpu_model (vm, out);
      check_siblings (diag, vm, out);
      check_numa (diag, vm, out);
      check_drift (vm, out);
    }
}
