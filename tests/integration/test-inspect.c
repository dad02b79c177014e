/* test-inspect.c: `qpin inspect` against real QEMUs, checked against the
 * kernel's own view (/proc/PID/task/TID/{status,comm}) */
#include <sched.h>
#include <string.h>

#include "qpin-test-qemu.h"

typedef struct {
  const char *name;
  const char *accel;
  const char *const *args;
  guint vcpus;
  guint sockets, cores, threads; /* expected props, 0 = do not check */
  guint iothreads;
  const char *vm_name;
  gboolean debug_threads; /* -name ...,debug-threads=on */
  gboolean shared;        /* single-threaded TCG */
  gboolean numa;          /* two guest nodes, vCPUs split in halves */
} Shape;

static JsonObject *
inspect_json (const char *address, const char *pid_arg, JsonNode **root)
{
  g_autofree char *out = NULL, *err = NULL;
  const char *args_pid[] = { "inspect", "--json", address, "--pid", pid_arg, NULL };
  const char *args[] = { "inspect", "--json", address, NULL };
  JsonArray *vms;
  int status = qpin_test_run_qpin (pid_arg ? args_pid : args, &out, &err);

  g_test_message ("stderr: %s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (err, ==, "");
  *root = json_from_string (out, NULL);
  g_assert_nonnull (*root);
  vms = json_object_get_array_member (json_node_get_object (*root), "vms");
  g_assert_cmpuint (json_array_get_length (vms), ==, 1);
  return json_array_get_object_element (vms, 0);
}

static char *
comm_of (GPid pid, GPid tid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/comm", pid, tid);
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return g_strchomp (text);
}

/* The JSON must list exactly the kernel's threads, each with the kernel's
 * affinity and name. */
static void
check_against_kernel (JsonObject *vm, GPid pid)
{
  g_autoptr (GArray) tids = qpin_test_list_tasks (pid);
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  JsonArray *threads = json_object_get_array_member (vm, "threads");

  g_assert_cmpint (json_object_get_int_member (vm, "pid"), ==, pid);
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      GPid tid = (GPid) json_object_get_int_member (t, "tid");
      g_autofree char *affinity = qpin_test_affinity_of (tid);
      g_autofree char *comm = comm_of (pid, tid);

      g_assert_cmpstr (json_object_get_string_member (t, "cpus"), ==, affinity);
      g_assert_cmpstr (json_object_get_string_member (t, "name"), ==, comm);
      g_hash_table_add (seen, GINT_TO_POINTER (tid));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, tids->len);
  for (guint i = 0; i < tids->len; i++)
    g_assert_true (g_hash_table_contains (seen, GINT_TO_POINTER (g_array_index (tids, GPid, i))));
}

static void
check_roles (JsonObject *vm, const Shape *shape, GPid pid)
{
  JsonArray *threads = json_object_get_array_member (vm, "threads");
  guint vcpus = 0, iothreads = 0, emulators = 0;
  GPid first_vcpu_tid = 0;

  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      const char *role = json_object_get_string_member (t, "role");
      gint64 index = json_object_get_int_member (t, "index");
      GPid tid = (GPid) json_object_get_int_member (t, "tid");

      if (g_str_equal (role, "vcpu"))
        {
          JsonObject *props = json_object_get_object_member (t, "props");
          g_assert_cmpint (index, ==, vcpus);
          if (shape->sockets)
            {
              guint per_socket = shape->cores * shape->threads;
              g_assert_cmpint (json_object_get_int_member (props, "socket-id"), ==,
                               index / per_socket);
              g_assert_cmpint (json_object_get_int_member (props, "core-id"), ==,
                               (index / shape->threads) % shape->cores);
              g_assert_cmpint (json_object_get_int_member (props, "thread-id"), ==,
                               index % shape->threads);
            }
          if (shape->numa)
            g_assert_cmpint (json_object_get_int_member (props, "node-id"), ==,
                             index < shape->vcpus / 2 ? 0 : 1);
          else
            g_assert_false (json_object_has_member (props, "node-id"));
          if (shape->debug_threads && !shape->shared)
            {
              g_autofree char *expected = g_strdup_printf ("CPU %" G_GINT64_FORMAT "/TCG", index);
              g_assert_cmpstr (json_object_get_string_member (t, "name"), ==, expected);
            }
          if (vcpus == 0)
            first_vcpu_tid = tid;
          else if (shape->shared)
            g_assert_cmpint (tid, ==, first_vcpu_tid);
          else
            g_assert_cmpint (tid, !=, first_vcpu_tid);
          g_assert_cmpint (tid, !=, pid);
          vcpus++;
        }
      else if (g_str_equal (role, "iothread"))
        {
          g_autofree char *id = g_strdup_printf ("io%u", iothreads);
          g_assert_cmpstr (json_object_get_string_member (t, "id"), ==, id);
          if (shape->debug_threads)
            {
              g_autofree char *name = g_strdup_printf ("IO %s", id);
              g_assert_cmpstr (json_object_get_string_member (t, "name"), ==, name);
            }
          iothreads++;
        }
      else if (g_str_equal (role, "emulator"))
        {
          g_assert_cmpint (tid, ==, pid);
          emulators++;
        }
      else
        g_assert_cmpstr (role, ==, "other");
    }
  g_assert_cmpuint (vcpus, ==, shape->vcpus);
  g_assert_cmpuint (iothreads, ==, shape->iothreads);
  g_assert_cmpuint (emulators, ==, 1);
  g_assert_cmpint (json_object_get_boolean_member (vm, "shared_vcpu_thread"), ==, shape->shared);
  if (shape->vm_name)
    g_assert_cmpstr (json_object_get_string_member (vm, "name"), ==, shape->vm_name);
  else
    g_assert_true (json_object_get_null_member (vm, "name"));
  g_assert_cmpstr (json_object_get_string_member (vm, "status"), ==, "prelaunch");
}

/* Narrow one vCPU thread so the affinity qpin reports is not just the
 * inherited default; the kernel's view must still match. */
static void
narrow_first_vcpu (GPid pid)
{
  g_autoptr (GArray) tids = qpin_test_list_tasks (pid);
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (0, &set);
  /* the last thread QEMU made is a vCPU thread in every shape here */
  g_assert_cmpint (sched_setaffinity (g_array_index (tids, GPid, tids->len - 1), sizeof set, &set),
                   ==, 0);
}

static void
test_shape (gconstpointer data)
{
  const Shape *shape = data;
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (shape->accel, shape->args, TRUE);
  g_autoptr (JsonNode) root = NULL;
  JsonObject *vm;

  narrow_first_vcpu (qemu->pid);
  vm = inspect_json (qemu->qmp_path, NULL, &root);
  check_against_kernel (vm, qemu->pid);
  check_roles (vm, shape, qemu->pid);
}

static guint16
free_port (void)
{
  g_autoptr (GSocket) s
    = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (s, addr, TRUE, NULL));
  bound = g_socket_get_local_address (s, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Over TCP there is no SO_PEERCRED: qpin finds the process through the
 * vCPU threads' Tgid. */
static void
test_tcp (void)
{
  guint16 port = free_port ();
  g_autofree char *qmp = g_strdup_printf ("tcp:127.0.0.1:%u,server=on,wait=off", port);
  g_autofree char *address = g_strdup_printf ("tcp:127.0.0.1:%u", port);
  const char *args[] = { "-smp", "2", "-qmp", qmp, NULL };
  g_autoptr (QpinTestQemu) qemu = qpin_test_qemu_start (NULL, args, FALSE);
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *out = NULL, *err = NULL;
  const char *probe[] = { "inspect", address, NULL };
  JsonObject *vm;

  /* wait until QEMU listens */
  for (guint i = 0; i < 500 && qpin_test_run_qpin (probe, &out, &err) != 0; i++)
    {
      g_clear_pointer (&out, g_free);
      g_clear_pointer (&err, g_free);
      g_usleep (10 * 1000);
    }
  vm = inspect_json (address, NULL, &root);
  check_against_kernel (vm, qemu->pid);
}

static const Shape shapes[] = {
  { .name = "smp1", .args = (const char *const[]){ "-smp", "1", NULL }, .vcpus = 1 },
  { .name = "smp4-2s2c",
    .args = (const char *const[]){ "-smp", "4,sockets=2,cores=2,threads=1", NULL },
    .vcpus = 4,
    .sockets = 2,
    .cores = 2,
    .threads = 1 },
  { .name = "smp8-smt-iothreads-named",
    .args = (const char *const[]){ "-smp", "8,sockets=2,cores=2,threads=2", "-object",
                                   "iothread,id=io0", "-object", "iothread,id=io1", "-name",
                                   "guest-a,debug-threads=on", NULL },
    .vcpus = 8,
    .sockets = 2,
    .cores = 2,
    .threads = 2,
    .iothreads = 2,
    .vm_name = "guest-a",
    .debug_threads = TRUE },
  { .name = "smp3-maxcpus-iothread",
    .args = (const char *const[]){ "-smp", "3,maxcpus=6", "-object", "iothread,id=io0", NULL },
    .vcpus = 3,
    .iothreads = 1 },
  { .name = "numa-2nodes",
    .args = (const char *const[]){ "-smp", "4,sockets=2,cores=2", "-object",
                                   "memory-backend-ram,id=m0,size=32M", "-object",
                                   "memory-backend-ram,id=m1,size=32M", "-numa",
                                   "node,nodeid=0,cpus=0-1,memdev=m0", "-numa",
                                   "node,nodeid=1,cpus=2-3,memdev=m1", "-name", "numa-vm", NULL },
    .vcpus = 4,
    .sockets = 2,
    .cores = 2,
    .threads = 1,
    .vm_name = "numa-vm",
    .numa = TRUE },
  { .name = "single-threaded-tcg",
    .accel = "tcg,thread=single",
    .args = (const char *const[]){ "-smp", "3", "-name", "solo,debug-threads=on", NULL },
    .vcpus = 3,
    .vm_name = "solo",
    .debug_threads = TRUE,
    .shared = TRUE },
};

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/inspect/qemu/%s", shapes[i].name);
      g_test_add_data_func (path, &shapes[i], test_shape);
    }
  g_test_add_func ("/inspect/qemu/tcp", test_tcp);
  return g_test_run ();
}
