/* qpin-diag-host.c: host-wide checks: kernel settings, irqbalance, IRQs */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-private.h"

#include <string.h>
#include <unistd.h>

static guint
total_vcpus (const QpinDiag *diag)
{
  guint n = 0;

  for (guint i = 0; i < diag->vms->len; i++)
    {
      const QpinDiagVm *vm = g_ptr_array_index (diag->vms, i);
      for (guint j = 0; j < vm->threads->len; j++)
        n += g_array_index (vm->threads, QpinDiagThread, j).role == QPIN_ROLE_VCPU;
    }
  return n;
}

static void
check_vcpus_exceed (QpinDiag *diag, QpinFindings *out)
{
  guint vcpus = total_vcpus (diag);
  guint host = qpin_cpuset_count (&diag->topo->online);
  QpinFinding *f;

  if (vcpus <= host)
    return;
  f = qpin_findings_add (out, "vcpus-exceed-host-cpus", QPIN_SEVERITY_WARNING, NULL,
                         "give the VMs fewer vCPUs in total, or move a VM to another host",
                         "%u vCPUs in %u VMs on %u online host CPUs", vcpus, diag->vms->len, host);
  json_object_set_int_member (f->evidence, "vcpus", vcpus);
  json_object_set_int_member (f->evidence, "host_cpus", host);
}

/* A VM is "large" for THP from this much resident memory: below it the
 * TLB misses of 4 KiB pages hardly matter */
#define THP_LARGE_KB (1024 * 1024)

/* VmRSS of ROOT/proc/PID/status in kB, 0 when unknown */
static guint64
rss_kb (const QpinDiag *diag, gint64 pid)
{
  g_autofree char *rel = g_strdup_printf ("proc/%" G_GINT64_FORMAT "/status", pid);
  g_autofree char *status = qpin_diag_read (diag->root, rel, NULL);
  const char *p = status ? strstr (status, "VmRSS:") : NULL;

  return p ? g_ascii_strtoull (p + strlen ("VmRSS:"), NULL, 10) : 0;
}

/* "[never]" in "always madvise [never]", with a VM of 1 GiB or more */
static void
check_thp (QpinDiag *diag, QpinFindings *out)
{
  g_autofree char *thp
    = qpin_diag_read_trimmed (diag->root, "sys/kernel/mm/transparent_hugepage/enabled");
  g_autoptr (JsonObject) large = json_object_new ();
  QpinFinding *f;

  if (thp == NULL)
    {
      qpin_findings_not_checked (out, "thp-off", NULL,
                                 "sys/kernel/mm/transparent_hugepage/enabled unreadable");
      return;
    }
  if (strstr (thp, "[never]") == NULL)
    return;
  for (guint i = 0; i < diag->vms->len; i++)
    {
      const QpinDiagVm *vm = g_ptr_array_index (diag->vms, i);
      guint64 kb = rss_kb (diag, vm->pid);

      if (kb >= THP_LARGE_KB)
        json_object_set_int_member (large, vm->name, (gint64) kb);
    }
  if (json_object_get_size (large) == 0)
    return;
  f = qpin_findings_add (out, "thp-off", QPIN_SEVERITY_WARNING, NULL,
                         "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (QEMU "
                         "madvises guest RAM), or give the VMs hugepages",
                         "transparent hugepages are off: %u VMs of 1 GiB or more map their RAM "
                         "with 4 KiB pages",
                         json_object_get_size (large));
  json_object_set_string_member (f->evidence, "transparent_hugepage", thp);
  json_object_set_object_member (f->evidence, "rss_kb", g_steal_pointer (&large));
}

static void
check_ksm (QpinDiag *diag, QpinFindings *out)
{
  g_autofree char *run = qpin_diag_read_trimmed (diag->root, "sys/kernel/mm/ksm/run");
  g_autofree char *sharing = qpin_diag_read_trimmed (diag->root, "sys/kernel/mm/ksm/pages_sharing");
  guint64 pages = 0, ticks = 0;
  QpinFinding *f;
  GHashTableIter it;
  gpointer value;

  if (run == NULL || sharing == NULL)
    {
      qpin_findings_not_checked (out, "ksm-active", NULL, "sys/kernel/mm/ksm unreadable");
      return;
    }
  g_ascii_string_to_unsigned (sharing, 10, 0, G_MAXUINT64, &pages, NULL);
  if (!g_str_equal (run, "1") || pages == 0)
    return;
  g_hash_table_iter_init (&it, diag->after.tasks);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      const QpinDiagTask *b = value;
      const QpinDiagTask *a = qpin_diag_task (&diag->before, b->tid);
      if (g_str_equal (b->comm, "ksmd") && a && b->ticks >= a->ticks)
        ticks += b->ticks - a->ticks;
    }
  f = qpin_findings_add (out, "ksm-active", QPIN_SEVERITY_WARNING, NULL,
                         "echo 0 > /sys/kernel/mm/ksm/run (or 2 to unmerge), or keep "
                         "latency-sensitive VMs out of KSM (-machine mem-merge=off)",
                         "KSM merges pages: ksmd scans guest memory and copy-on-write faults "
                         "hit the vCPUs");
  json_object_set_int_member (f->evidence, "pages_sharing", (gint64) pages);
  json_object_set_double_member (f->evidence, "ksmd_cpu_percent",
                                 (double) ticks * 100.0 / (double) sysconf (_SC_CLK_TCK)
                                   / diag->seconds);
}

static void
check_governor (QpinDiag *diag, QpinFindings *out)
{
  g_autoptr (JsonArray) cpus = json_array_new ();
  guint unreadable = 0;
  QpinFinding *f;

  QPIN_CPUSET_FOREACH (cpu, &diag->dedicated)
    {
      g_autofree char *rel
        = g_strdup_printf ("sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor", cpu);
      g_autofree char *gov = qpin_diag_read_trimmed (diag->root, rel);

      unreadable += gov == NULL;
      if (gov && g_str_equal (gov, "powersave"))
        json_array_add_int_element (cpus, cpu);
    }
  if (unreadable > 0 && json_array_get_length (cpus) == 0)
    qpin_findings_not_checked (out, "governor-powersave", NULL,
                               "no cpufreq scaling_governor for %u dedicated CPUs", unreadable);
  if (json_array_get_length (cpus) == 0)
    return;
  f = qpin_findings_add (out, "governor-powersave", QPIN_SEVERITY_WARNING, NULL,
                         "cpupower -c LIST frequency-set -g performance (or tuned profile "
                         "virtual-host)",
                         "%u dedicated CPUs run the powersave governor",
                         json_array_get_length (cpus));
  json_object_set_array_member (f->evidence, "cpus", json_array_ref (cpus));
}

static void
check_isolation (QpinDiag *diag, QpinFindings *out)
{
  QpinCpuset loose = diag->dedicated;
  g_autofree char *list = NULL;
  QpinFinding *f;

  qpin_cpuset_andnot (&loose, &diag->topo->isolated);
  if (qpin_cpuset_is_empty (&loose))
    return;
  list = qpin_cpuset_format (&loose);
  f = qpin_findings_add (out, "no-isolation", QPIN_SEVERITY_INFO, NULL,
                         "boot with isolcpus=LIST nohz_full=LIST (or a tuned cpu-partitioning "
                         "profile) to keep the kernel's own work off them",
                         "dedicated CPUs %s are not isolated from the scheduler", list);
  json_object_set_string_member (f->evidence, "cpus", list);
  qpin_cpuset_andnot (&loose, &diag->topo->nohz_full);
  g_free (list);
  list = qpin_cpuset_format (&loose);
  json_object_set_string_member (f->evidence, "not_nohz_full", list);
}

/* The ns KVM spent polling for VM @pid, from debugfs
 * (sys/kernel/debug/kvm/PID-FD/halt_poll_{success,fail}_ns, summed over
 * its VM file descriptors); FALSE when debugfs does not say */
static gboolean
poll_ns (const char *root, gint64 pid, guint64 *ns)
{
  g_autofree char *dir_path = g_build_filename (root, "sys/kernel/debug/kvm", NULL);
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autofree char *prefix = g_strdup_printf ("%" G_GINT64_FORMAT "-", pid);
  const char *name;
  gboolean found = FALSE;

  *ns = 0;
  while (dir && (name = g_dir_read_name (dir)))
    for (const char *const *f
         = (const char *const[]){ "halt_poll_success_ns", "halt_poll_fail_ns", NULL };
         *f && g_str_has_prefix (name, prefix); f++)
      {
        g_autofree char *rel = g_build_filename ("sys/kernel/debug/kvm", name, *f, NULL);
        g_autofree char *text = qpin_diag_read_trimmed (root, rel);
        guint64 v;

        if (text && g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &v, NULL))
          {
            *ns += v;
            found = TRUE;
          }
      }
  return found;
}

/* halt_poll_ns > 0: an idle vCPU keeps its host CPU busy polling before
 * it halts.  Measured per VM where debugfs says how long KVM polled (a
 * warning from 10 % of a CPU), else an info that it may. */
static void
check_halt_polling (QpinDiag *diag, QpinFindings *out)
{
  g_autofree char *ns
    = qpin_diag_read_trimmed (diag->root, "sys/module/kvm/parameters/halt_poll_ns");
  const char *fix = "on a shared host: echo 0 > /sys/module/kvm/parameters/halt_poll_ns "
                    "(dedicated CPUs may keep it for latency)";
  guint64 poll = 0;
  gboolean measured = FALSE;
  QpinFinding *f;

  if (ns == NULL)
    {
      qpin_findings_not_checked (out, "halt-polling", NULL, "kvm module parameters unreadable");
      return;
    }
  if (!g_ascii_string_to_unsigned (ns, 10, 0, G_MAXUINT64, &poll, NULL) || poll == 0
      || diag->vms->len == 0)
    return;
  for (guint i = 0; i < diag->vms->len; i++)
    {
      const QpinDiagVm *vm = g_ptr_array_index (diag->vms, i);
      guint64 a, b;
      double pct;

      if (!poll_ns (diag->root, vm->pid, &a) || !poll_ns (diag->after_root, vm->pid, &b) || b < a)
        continue;
      measured = TRUE;
      pct = (double) (b - a) * 100.0 / (diag->seconds * 1e9);
      if (pct < 10.0)
        continue;
      f = qpin_findings_add (out, "halt-polling", QPIN_SEVERITY_WARNING, vm->name, fix,
                             "KVM spent %.0f %% of a CPU polling for the VM's idle vCPUs "
                             "(halt_poll_ns %" G_GUINT64_FORMAT ")",
                             pct, poll);
      json_object_set_int_member (f->evidence, "halt_poll_ns", (gint64) poll);
      json_object_set_double_member (f->evidence, "polling_percent", pct);
    }
  if (measured || qpin_cpuset_is_empty (&diag->dedicated))
    return;
  f = qpin_findings_add (out, "halt-polling", QPIN_SEVERITY_INFO, NULL, fix,
                         "KVM polls %" G_GUINT64_FORMAT " ns before an idle vCPU halts: idle "
                         "vCPUs may keep their host CPUs busy (not measured: no kvm debugfs)",
                         poll);
  json_object_set_int_member (f->evidence, "halt_poll_ns", (gint64) poll);
}

/**
 * qpin_diag_check_host:
 *
 * vcpus-exceed-host-cpus, thp-off, ksm-active, governor-powersave,
 * no-isolation, halt-polling
 */
void
qpin_diag_check_host (QpinDiag *diag, QpinFindings *out)
{
  check_vcpus_exceed (diag, out);
  check_thp (diag, out);
  check_ksm (diag, out);
  check_governor (diag, out);
  check_isolation (diag, out);
  check_halt_polling (diag, out);
}
