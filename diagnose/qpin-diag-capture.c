/* qpin-diag-capture.c: save what `qpin diagnose` reads, for a bug report */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-capture.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "qpin-diag-private.h"

/* Host files read once (not rates); missing ones are skipped */
static const char *const host_files[] = {
  "proc/cpuinfo",
  "sys/kernel/mm/transparent_hugepage/enabled",
  "sys/kernel/mm/ksm/run",
  "sys/kernel/mm/ksm/pages_sharing",
  "sys/module/kvm/parameters/halt_poll_ns",
  "etc/default/irqbalance",
};

typedef struct {
  const char *from;
  char *to;
  guint copied;
  GError *error; /* the first write that failed */
} Copier;

static void
copy (Copier *c, const char *rel)
{
  g_autofree char *text = NULL;
  g_autofree char *src = g_build_filename (c->from, rel, NULL);
  g_autofree char *dst = g_build_filename (c->to, rel, NULL);
  g_autofree char *parent = g_path_get_dirname (dst);
  gsize len = 0;

  if (c->error || !g_file_get_contents (src, &text, &len, NULL))
    return;
  if (g_mkdir_with_parents (parent, 0755) != 0)
    {
      g_set_error (&c->error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "cannot create '%s': %s", parent, g_strerror (errno));
      return;
    }
  if (g_file_set_contents (dst, text, (gssize) len, &c->error))
    c->copied++;
}

static gboolean
is_number (const char *name)
{
  return name[0] && strspn (name, "0123456789") == strlen (name);
}

/* What identifies a QEMU or irqbalance process beyond its tasks */
static void
copy_process (Copier *c, const char *pid)
{
  g_autofree char *comm_rel = g_strdup_printf ("proc/%s/comm", pid);
  g_autofree char *comm = qpin_diag_read_trimmed (c->from, comm_rel);
  g_autofree char *cmdline = g_strdup_printf ("proc/%s/cmdline", pid);
  g_autofree char *numa_maps = g_strdup_printf ("proc/%s/numa_maps", pid);
  g_autofree char *environ_rel = g_strdup_printf ("proc/%s/environ", pid);

  if (comm == NULL)
    return;
  copy (c, comm_rel);
  if (g_str_has_prefix (comm, "qemu"))
    {
      g_autofree char *status = g_strdup_printf ("proc/%s/status", pid);

      copy (c, cmdline);
      copy (c, numa_maps);
      copy (c, status);
    }
  if (g_str_equal (comm, "irqbalance"))
    copy (c, environ_rel);
}

/* What KVM's debugfs says of each VM's halt polling */
static void
copy_kvm_debugfs (Copier *c)
{
  g_autofree char *path = g_build_filename (c->from, "sys/kernel/debug/kvm", NULL);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    for (const char *const *f
         = (const char *const[]){ "halt_poll_success_ns", "halt_poll_fail_ns", NULL };
         *f; f++)
      {
        g_autofree char *rel = g_build_filename ("sys/kernel/debug/kvm", name, *f, NULL);
        if (strchr (name, '-'))
          copy (c, rel);
      }
}

/* The rate files: /proc/interrupts and every task's comm, stat, schedstat, status */
static void
copy_sample (Copier *c, gboolean processes)
{
  g_autofree char *proc = g_build_filename (c->from, "proc", NULL);
  g_autoptr (GDir) dir = g_dir_open (proc, 0, NULL);
  const char *pid;

  copy (c, "proc/interrupts");
  copy_kvm_debugfs (c);
  while (dir && (pid = g_dir_read_name (dir)))
    {
      g_autofree char *task_dir = g_build_filename (proc, pid, "task", NULL);
      g_autoptr (GDir) tasks = NULL;
      const char *tid;

      if (!is_number (pid))
        continue;
      if (processes)
        copy_process (c, pid);
      tasks = g_dir_open (task_dir, 0, NULL);
      while (tasks && (tid = g_dir_read_name (tasks)))
        for (const char *const *f
             = (const char *const[]){ "comm", "stat", "schedstat", "status", NULL };
             *f; f++)
          {
            g_autofree char *rel = g_strdup_printf ("proc/%s/task/%s/%s", pid, tid, *f);
            copy (c, rel);
          }
    }
}

/**
 * qpin_diag_capture:
 * @root: "/" live, or a tree (then ROOT/after is the second sample)
 * @topo: the CPUs whose governor and IRQ affinities to save
 * @seconds: live: the time between the two samples
 *
 * Copies every file diagnose reads into @dir (the second sample into
 * DIR/after), so that `qpin diagnose --root DIR` finds what it found here.
 *
 * Returns: the number of files copied, or -1 with @error when writing failed
 */
gint
qpin_diag_capture (const char *root, const char *dir, const QpinTopology *topo, double seconds,
                   GError **error)
{
  Copier c = { root, g_strdup (dir), 0, NULL };
  g_autofree char *after_root = g_build_filename (root, "after", NULL);
  g_autoptr (GDir) irqs = NULL;
  g_autofree char *irq_dir = g_build_filename (root, "proc", "irq", NULL);
  const char *irq;
  guint copied;

  for (gsize i = 0; i < G_N_ELEMENTS (host_files); i++)
    copy (&c, host_files[i]);
  QPIN_CPUSET_FOREACH (cpu, &topo->online)
    {
      g_autofree char *rel
        = g_strdup_printf ("sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor", cpu);
      copy (&c, rel);
    }
  irqs = g_dir_open (irq_dir, 0, NULL);
  while (irqs && (irq = g_dir_read_name (irqs)))
    {
      g_autofree char *rel = g_strdup_printf ("proc/irq/%s/smp_affinity_list", irq);
      if (is_number (irq))
        copy (&c, rel);
    }
  copy_sample (&c, TRUE);
  if (g_strcmp0 (root, "/") == 0)
    g_usleep ((gulong) (seconds * G_USEC_PER_SEC));
  else if (!g_file_test (after_root, G_FILE_TEST_IS_DIR))
    g_clear_pointer (&after_root, g_free);
  if (after_root || g_strcmp0 (root, "/") == 0)
    {
      g_free (c.to);
      c.to = g_build_filename (dir, "after", NULL);
      c.from = after_root && g_strcmp0 (root, "/") != 0 ? after_root : root;
      copy_sample (&c, FALSE);
    }
  g_free (c.to);
  copied = c.copied;
  if (c.error)
    {
      g_propagate_error (error, c.error);
      return -1;
    }
  return (gint) copied;
}
