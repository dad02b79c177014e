/* qpin-test-spin.c: guests whose vCPU 0 spins (a 512-byte floppy boot
 * sector that is `jmp $`), and a cpu cgroup that lets them */
#include "qpin-test-spin.h"
#include "qpin-qmp-client.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* DIR/spin.img: "jmp $" (EB FE) and the 55 AA mark.
 * Returns: (transfer full): its path */
char *
qpin_test_spin_image (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "spin.img", NULL);
  guint8 boot[512] = { 0xEB, 0xFE }; /* jmp $ */

  boot[510] = 0x55;
  boot[511] = 0xAA;
  g_assert_true (g_file_set_contents (path, (const char *) boot, sizeof boot, NULL));
  return g_steal_pointer (&path);
}

/**
 * qpin_test_spin_vm_start:
 * @image: from qpin_test_spin_image()
 * @smp: the -smp value
 * @listen: (nullable): also connect to a daemon listening there
 *
 * A PC booting @image with multi-threaded TCG (one thread per vCPU),
 * started paused (qpin_test_qemu_cont() starts it), with a QMP socket.
 */
QpinTestQemu *
qpin_test_spin_vm_start (const char *image, const char *name, const char *smp, const char *listen)
{
  g_autofree char *drive = g_strdup_printf ("if=floppy,format=raw,readonly=on,file=%s", image);
  g_autofree char *vm_name = g_strdup_printf ("%s,debug-threads=on", name);
  g_autofree char *chardev
    = listen ? g_strdup_printf ("socket,id=qpin,path=%s,reconnect=1", listen) : NULL;
  const char *args[]
    = { "-machine", "pc",    "-smp",     smp,     "-drive", drive,
        "-name",    vm_name, "-chardev", chardev, "-mon",   "chardev=qpin,mode=control",
        NULL };

  if (listen == NULL)
    args[8] = NULL;
  return qpin_test_qemu_start ("tcg,thread=multi", args, TRUE);
}

/* Starts the guest (QMP cont on its own socket). */
void
qpin_test_qemu_cont (QpinTestQemu *qemu)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (qemu->qmp_path, 10000, &error);
  g_autoptr (JsonNode) ret = NULL;

  g_assert_no_error (error);
  ret = qpin_qmp_client_execute_sync (client, "cont", NULL, 10000, &error);
  g_assert_no_error (error);
  qpin_qmp_client_close (client);
}

/* For qpin_test_wait_for(): whether vCPU 0 of the QpinTestQemu @qemu
 * spins in the boot sector yet (the BIOS before it sleeps on timers,
 * which is not the load the tests measure); sleeps 200 ms if not. */
gboolean
qpin_test_qemu_in_boot_sector (gpointer qemu)
{
  QpinTestQemu *q = qemu;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_connect_sync (q->qmp_path, 10000, &error);
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonNode) ret = NULL;
  gboolean there;

  g_assert_no_error (error);
  json_object_set_string_member (args, "command-line", "info registers");
  ret = qpin_qmp_client_execute_sync (client, "human-monitor-command", args, 10000, &error);
  g_assert_no_error (error);
  qpin_qmp_client_close (client);
  /* the `jmp $` spins at 0000:7c00, where the BIOS loaded the sector */
  there = strstr (json_node_get_string (ret), "EIP=00007c00") != NULL;
  if (!there)
    g_usleep (200 * 1000);
  return there;
}

/* cgroup files take writes in place, not the rename g_file_set_contents does */
static void
write_file (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, text, strlen (text)), ==, (ssize_t) strlen (text));
  close (fd);
}

/**
 * qpin_test_cpu_boost:
 * @name: the cgroup's prefix, e.g. "qpin-top"
 *
 * The other helpers' builds and QEMUs load this 2-CPU host, each in its
 * own autogroup, where nice does not reach.  A cgroup v1 cpu group with
 * ten times the default weight (cpu.shares 10240 against 1024), holding
 * every thread of process @pid, lets a spinning vCPU keep most of a CPU,
 * so the shares asserted are the guest's doing.
 *
 * Returns: (transfer full) (nullable): the group's directory, for the
 * test to g_rmdir() once the process is gone; %NULL without a cpu
 * controller (the test runs unboosted)
 */
char *
qpin_test_cpu_boost (const char *name, GPid pid)
{
  g_autofree char *cgroup = NULL, *shares = NULL, *tasks = NULL;
  g_autoptr (GArray) tids = qpin_test_list_tasks (pid);

  if (!g_file_test ("/sys/fs/cgroup/cpu/cpu.shares", G_FILE_TEST_EXISTS))
    return NULL;
  cgroup = g_strdup_printf ("/sys/fs/cgroup/cpu/%s-%d", name, pid);
  g_assert_cmpint (g_mkdir (cgroup, 0755), ==, 0);
  shares = g_build_filename (cgroup, "cpu.shares", NULL);
  tasks = g_build_filename (cgroup, "tasks", NULL);
  write_file (shares, "10240");
  for (guint i = 0; i < tids->len; i++)
    {
      g_autofree char *tid = g_strdup_printf ("%d", g_array_index (tids, GPid, i));
      write_file (tasks, tid);
    }
  return g_steal_pointer (&cgroup);
}
