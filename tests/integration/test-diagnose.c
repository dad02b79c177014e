/* test-diagnose.c: `qpin diagnose` against real QEMUs and this host's IRQs
 *
 * Each test makes the defect for real (two spinning TCG vCPUs on one host
 * CPU, a device IRQ routed onto a vCPU's CPU, more vCPUs than host CPUs)
 * and checks the exact finding, its evidence and the exit status.
 */
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "qpin-fake-peer.h"
#include "qpin-qmp-client.h"
#include "qpin-test-daemon.h"
#include "qpin-test-spin.h"

/* A TCG guest whose one vCPU spins at 100 %, named @name */
static QpinTestQemu *
start_spinner (const char *name, const char *tmp)
{
  g_autofree char *dir = g_build_filename (tmp, name, NULL);
  g_autofree char *img = NULL;
  g_autofree char *drive = NULL;
  g_autofree char *name_arg = g_strdup_printf ("%s,debug-threads=on", name);
  QpinTestQemu *qemu;

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  img = qpin_test_spin_image (dir);
  drive = g_strdup_printf ("file=%s,if=floppy,format=raw", img);
  qemu = qpin_test_qemu_start (
    "tcg", (const char *const[]){ "-machine", "pc", "-name", name_arg, "-drive", drive, NULL },
    TRUE);
  qpin_test_qemu_cont (qemu);
  return qemu;
}

static void
confine (GPid pid, guint cpu)
{
  g_autoptr (GArray) tids = qpin_test_list_tasks (pid);
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  for (guint i = 0; i < tids->len; i++)
    g_assert_cmpint (sched_setaffinity (g_array_index (tids, GPid, i), sizeof set, &set), ==, 0);
}

static guint
first_online_cpu (void)
{
  cpu_set_t set;

  g_assert_cmpint (sched_getaffinity (0, sizeof set, &set), ==, 0);
  for (guint c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET (c, &set))
      return c;
  g_assert_not_reached ();
}

static guint
online_cpus (void)
{
  return (guint) sysconf (_SC_NPROCESSORS_ONLN);
}

/* Runs qpin diagnose --json with @args (no daemon: a control path that
 * does not exist); returns the parsed output, sets @status */
static JsonNode *
diagnose (const char *tmp, const char *const *args, int *status)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL, *err = NULL;
  JsonNode *root;

  g_ptr_array_add (argv, g_strdup ("diagnose"));
  g_ptr_array_add (argv, g_strdup ("--json"));
  g_ptr_array_add (argv, g_strdup ("--control"));
  g_ptr_array_add (argv, g_build_filename (tmp, "no-daemon.sock", NULL));
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  *status = qpin_test_run_qpin ((const char *const *) argv->pdata, &out, &err);
  g_test_message ("stdout: %s\nstderr: %s", out, err);
  g_assert_cmpstr (err, ==, "");
  root = json_from_string (out, NULL);
  g_assert_nonnull (root);
  return root;
}

/* The findings with @id (and @vm unless NULL) */
static GPtrArray *
findings_of (JsonNode *root, const char *id, const char *vm)
{
  JsonArray *all = json_object_get_array_member (json_node_get_object (root), "findings");
  GPtrArray *out = g_ptr_array_new ();

  for (guint i = 0; i < json_array_get_length (all); i++)
    {
      JsonObject *f = json_array_get_object_element (all, i);
      if (g_str_equal (json_object_get_string_member (f, "id"), id)
          && (vm == NULL
              || g_strcmp0 (json_object_get_string_member_with_default (f, "vm", NULL), vm) == 0))
        g_ptr_array_add (out, f);
    }
  return out;
}

static gboolean
host_has_flag (const char *flag)
{
  g_autofree char *text = NULL;
  g_autofree char *word = g_strdup_printf (" %s ", flag);

  g_assert_true (g_file_get_contents ("/proc/cpuinfo", &text, NULL, NULL));
  return strstr (text, word) != NULL;
}

static gboolean
others_name (JsonObject *evidence, const char *who)
{
  JsonArray *others = json_object_get_array_member (evidence, "others");

  for (guint i = 0; i < json_array_get_length (others); i++)
    if (g_str_equal (
          json_object_get_string_member (json_array_get_object_element (others, i), "who"), who))
      return TRUE;
  return FALSE;
}

/* Two spinning vCPUs on one host CPU each wait about half the time: each
 * VM gets vcpu-wait (>= 20 %) naming the other VM's vCPU 0 as who ran
 * there; both are TCG (accel-tcg) with qemu64, which lacks avx2 and aes. */
static void
test_two_spinners (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("qpin-diag-XXXXXX", NULL);
  g_autoptr (QpinTestQemu) a = start_spinner ("a", tmp);
  g_autoptr (QpinTestQemu) b = start_spinner ("b", tmp);
  guint cpu = first_online_cpu ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) wait_a = NULL, wait_b = NULL, tcg = NULL, model = NULL;
  JsonArray *missing;
  int status;

  confine (a->pid, cpu);
  confine (b->pid, cpu);
  g_usleep (300 * 1000);
  root = diagnose (tmp, (const char *const[]){ a->qmp_path, b->qmp_path, NULL }, &status);
  g_assert_cmpint (status, ==, 1);
  wait_a = findings_of (root, "vcpu-wait", "a");
  wait_b = findings_of (root, "vcpu-wait", "b");
  g_assert_cmpuint (wait_a->len, ==, 1);
  g_assert_cmpuint (wait_b->len, ==, 1);
  g_assert_cmpstr (json_object_get_string_member (g_ptr_array_index (wait_a, 0), "severity"), ==,
                   "critical");
  g_assert_true (others_name (
    json_object_get_object_member (g_ptr_array_index (wait_a, 0), "evidence"), "vm 'b' vcpu 0"));
  g_assert_true (others_name (
    json_object_get_object_member (g_ptr_array_index (wait_b, 0), "evidence"), "vm 'a' vcpu 0"));
  g_assert_cmpfloat (
    json_object_get_double_member (
      json_object_get_object_member (g_ptr_array_index (wait_a, 0), "evidence"), "wait_percent"),
    >=, 20.0);
  tcg = findings_of (root, "accel-tcg", NULL);
  g_assert_cmpuint (tcg->len, ==, 2);
  model = findings_of (root, "cpu-model-missing-features", "a");
  g_assert_cmpuint (model->len, ==, 1);
  missing = json_object_get_array_member (
    json_object_get_object_member (g_ptr_array_index (model, 0), "evidence"), "missing");
  for (const char *const *f = (const char *const[]){ "avx2", "aes", NULL }; *f; f++)
    {
      gboolean listed = FALSE;
      if (!host_has_flag (*f))
        continue;
      for (guint i = 0; i < json_array_get_length (missing); i++)
        listed |= g_str_equal (json_array_get_string_element (missing, i), *f);
      g_assert_true (listed);
    }
}

/* One more vCPU than the host has online CPUs (paused: no load needed) */
static void
test_vcpus_exceed (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("qpin-diag-XXXXXX", NULL);
  guint host = online_cpus ();
  g_autofree char *smp = g_strdup_printf ("%u", host + 1);
  g_autoptr (QpinTestQemu) q
    = qpin_test_qemu_start ("tcg", (const char *const[]){ "-smp", smp, NULL }, TRUE);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) found = NULL;
  JsonObject *evidence;
  int status;

  root = diagnose (tmp, (const char *const[]){ "--duration", "0.5", q->qmp_path, NULL }, &status);
  g_assert_cmpint (status, ==, 1);
  found = findings_of (root, "vcpus-exceed-host-cpus", NULL);
  g_assert_cmpuint (found->len, ==, 1);
  evidence = json_object_get_object_member (g_ptr_array_index (found, 0), "evidence");
  g_assert_cmpint (json_object_get_int_member (evidence, "vcpus"), ==, host + 1);
  g_assert_cmpint (json_object_get_int_member (evidence, "host_cpus"), ==, host);
}

/* The IRQ line of the virtio-rng device's queue ("34"; not its config
 * interrupt), from sysfs and
 * /proc/interrupts; NULL when this host has none.  Reading /dev/hwrng
 * makes it fire once per read. */
static char *
rng_irq (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/sys/bus/virtio/devices", 0, NULL);
  g_autofree char *interrupts = NULL;
  const char *name;

  if (dir == NULL || !g_file_get_contents ("/proc/interrupts", &interrupts, NULL, NULL))
    return NULL;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *link = g_strdup_printf ("/sys/bus/virtio/devices/%s/driver", name);
      g_autofree char *driver = g_file_read_link (link, NULL);
      g_autofree char *tag = g_strdup_printf (" %s-", name);
      g_auto (GStrv) lines = NULL;

      if (driver == NULL || !g_str_has_suffix (driver, "/virtio_rng"))
        continue;
      lines = g_strsplit (interrupts, "\n", 0);
      for (guint i = 0; lines[i]; i++)
        if (strstr (lines[i], tag) && !strstr (lines[i], "-config") && strchr (lines[i], ':'))
          return g_strstrip (g_strndup (lines[i], (gsize) (strchr (lines[i], ':') - lines[i])));
    }
  return NULL;
}

/* procfs takes a plain write, not g_file_set_contents()'s rename */
static gboolean
write_proc (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");
  gboolean ok;

  if (f == NULL)
    return FALSE;
  ok = fputs (text, f) >= 0;
  return fclose (f) == 0 && ok;
}

static gint reading; /* atomic: the reader thread runs while set */

static gpointer
read_hwrng (gpointer data)
{
  while (g_atomic_int_get (&reading))
    {
      char buf[64];
      FILE *f = fopen ("/dev/hwrng", "r");

      if (f == NULL)
        return NULL;
      if (fread (buf, 1, sizeof buf, f) == 0)
        g_usleep (1000);
      fclose (f);
    }
  return NULL;
}

/* A vCPU pinned alone on CPU 0 makes it dedicated; the virtio-rng IRQ,
 * routed there, fires on every read of /dev/hwrng during the sample: the
 * finding names CPU 0 and that IRQ with its rate.  The IRQ's affinity is
 * restored at the end. */
static void
test_irqs_on_dedicated (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("qpin-diag-XXXXXX", NULL);
  g_autofree char *irq = rng_irq ();
  g_autofree char *path = NULL;
  g_autofree char *saved = NULL;
  g_autoptr (QpinTestQemu) q = NULL;
  g_autoptr (GArray) vcpus = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) found = NULL;
  GThread *reader;
  gboolean seen = FALSE;
  cpu_set_t set;
  int status;

  if (irq == NULL || !g_file_test ("/dev/hwrng", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no virtio-rng IRQ on this host");
      return;
    }
  path = g_strdup_printf ("/proc/irq/%s/smp_affinity_list", irq);
  g_assert_true (g_file_get_contents (path, &saved, NULL, NULL));
  if (!write_proc (path, "0"))
    {
      g_test_skip ("the virtio-rng IRQ cannot be moved here");
      return;
    }
  q = qpin_test_qemu_start ("tcg", (const char *const[]){ "-name", "irq,debug-threads=on", NULL },
                            TRUE);
  vcpus = qpin_test_vcpu_tids (q->pid);
  g_assert_cmpuint (vcpus->len, ==, 1);
  CPU_ZERO (&set);
  CPU_SET (0, &set);
  g_assert_cmpint (sched_setaffinity (g_array_index (vcpus, GPid, 0), sizeof set, &set), ==, 0);
  g_atomic_int_set (&reading, 1);
  reader = g_thread_new ("hwrng", read_hwrng, NULL);
  root = diagnose (tmp, (const char *const[]){ q->qmp_path, NULL }, &status);
  g_atomic_int_set (&reading, 0);
  g_thread_join (reader);
  g_assert_true (write_proc (path, g_strstrip (saved)));

  g_assert_cmpint (status, ==, 1);
  found = findings_of (root, "irqs-on-dedicated", NULL);
  g_assert_cmpuint (found->len, ==, 1);
  {
    JsonObject *evidence = json_object_get_object_member (g_ptr_array_index (found, 0), "evidence");
    JsonArray *irqs = json_object_get_array_member (evidence, "irqs");

    g_assert_cmpint (json_object_get_int_member (evidence, "cpu"), ==, 0);
    for (guint i = 0; i < json_array_get_length (irqs); i++)
      {
        JsonObject *o = json_array_get_object_element (irqs, i);
        if (g_str_equal (json_object_get_string_member (o, "irq"), irq))
          {
            /* one IRQ per read; reads take well under 100 ms each */
            g_assert_cmpfloat (json_object_get_double_member (o, "rate"), >=, 10.0);
            seen = TRUE;
          }
      }
  }
  g_assert_true (seen);
}

static JsonObject *
status_vm (const char *control, GPid pid, JsonNode **status)
{
  *status = qpin_test_status (control);
  return *status ? qpin_test_find_vm (*status, pid) : NULL;
}

typedef struct {
  const char *control;
  GPid pid;
  GPid tid;
  guint repairs; /* wait until drift_repairs reaches this */
} DriftWait;

static gboolean
repaired (gpointer data)
{
  DriftWait *w = data;
  g_autoptr (JsonNode) status = NULL;
  JsonObject *vm = status_vm (w->control, w->pid, &status);

  return vm && json_object_get_int_member_with_default (vm, "drift_repairs", 0) >= w->repairs;
}

/* The daemon's VMs, by name: a vCPU moved away four times is repaired
 * four times (drift_repairs in status --json), and diagnose, asking the
 * daemon, says drift-repeated with that count. */
static void
test_drift_repeated (void)
{
  QpinTestDaemon d = { 0 };
  g_autoptr (QpinTestQemu) q = NULL;
  g_autoptr (GArray) vcpus = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) found = NULL;
  g_autofree char *out = NULL, *err = NULL;
  DriftWait w = { NULL, 0, 0, 0 };
  int status;

  if (online_cpus () < 2)
    {
      g_test_skip ("needs two online CPUs to move a thread away");
      return;
    }
  qpin_test_daemon_set_up (&d, "qpin-diag", 0, 0);
  d.interval = "100";
  w.control = d.control;
  qpin_test_daemon_start (&d, NULL);
  q = qpin_test_daemon_listen_vm (&d, "drifty", "1");
  vcpus = qpin_test_vcpu_tids (q->pid);
  g_assert_cmpuint (vcpus->len, ==, 1);
  w.pid = q->pid;
  w.tid = g_array_index (vcpus, GPid, 0);
  g_assert_true (qpin_test_wait_for (repaired, &w, 20000)); /* known to the daemon */
  for (w.repairs = 1; w.repairs <= 4; w.repairs++)
    {
      g_autofree char *pinned = NULL;
      cpu_set_t set;

      /* wait for the pin, then move the vCPU off it */
      for (guint i = 0; i < 200; i++)
        {
          g_free (pinned);
          pinned = qpin_test_affinity_of (w.tid);
          if (pinned && !strchr (pinned, '-') && !strchr (pinned, ','))
            break;
          g_usleep (50 * 1000);
        }
      CPU_ZERO (&set);
      CPU_SET (g_str_equal (pinned, "0") ? 1 : 0, &set);
      g_assert_cmpint (sched_setaffinity (w.tid, sizeof set, &set), ==, 0);
      g_assert_true (qpin_test_wait_for (repaired, &w, 20000));
    }
  status = qpin_test_run_qpin ((const char *const[]){ "diagnose", "--json", "--duration", "0.5",
                                                      "--control", d.control, NULL },
                               &out, &err);
  g_test_message ("%s\n%s", out, err);
  g_assert_cmpint (status, ==, 1);
  root = json_from_string (out, NULL);
  g_assert_nonnull (root);
  found = findings_of (root, "drift-repeated", "drifty");
  g_assert_cmpuint (found->len, ==, 1);
  g_assert_cmpint (
    json_object_get_int_member (
      json_object_get_object_member (g_ptr_array_index (found, 0), "evidence"), "drift_repairs"),
    >=, 4);
  qpin_test_daemon_tear_down (&d);
}

/* Every /proc/irq/N/smp_affinity_list, by IRQ number */
static GHashTable *
irq_masks (void)
{
  GHashTable *masks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GDir) dir = g_dir_open ("/proc/irq", 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_strdup_printf ("/proc/irq/%s/smp_affinity_list", name);
      char *text = NULL;

      if (g_ascii_isdigit (name[0]) && g_file_get_contents (path, &text, NULL, NULL))
        g_hash_table_insert (masks, g_strdup (name), g_strstrip (text));
    }
  return masks;
}

static void
restore_masks (GHashTable *masks)
{
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, masks);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_autofree char *path = g_strdup_printf ("/proc/irq/%s/smp_affinity_list", (char *) key);
      write_proc (path, value);
    }
}

/* irqs = avoid: with a VM holding a CPU, every IRQ that allowed it and
 * can move (the kernel refuses managed ones) no longer does, and none is
 * left without a CPU; when the VM exits, and when the daemon stops, every
 * mask is as before. */
static void
test_irqs_avoid (void)
{
  QpinTestDaemon d = { 0 };
  g_autoptr (GHashTable) before = irq_masks ();
  g_autoptr (GHashTable) during = NULL;
  g_autoptr (GHashTable) after = NULL;
  g_autoptr (QpinTestQemu) q = NULL;
  g_autoptr (JsonNode) status = NULL;
  g_autofree char *log = NULL;
  GHashTableIter it;
  gpointer key, value;
  QpinCpuset held;
  guint moved = 0;

  if (online_cpus () < 2)
    {
      g_test_skip ("needs two online CPUs: one held, one for the IRQs");
      return;
    }
  qpin_test_daemon_set_up (&d, "qpin-diag", 0, 0);
  d.interval = NULL;
  qpin_test_daemon_start (&d, (const char *const[]){ "--policy", "irqs=avoid", NULL });
  q = qpin_test_daemon_listen_vm (&d, "irqvm", "1");
  qpin_test_daemon_wait_vm (&d, q->pid, "pinned", NULL, 20000);
  {
    JsonObject *vm = status_vm (d.control, q->pid, &status);
    JsonArray *threads = json_object_get_array_member (vm, "threads");
    QpinCpuset cpus;

    qpin_cpuset_clear_all (&held);
    for (guint i = 0; i < json_array_get_length (threads); i++)
      {
        JsonObject *t = json_array_get_object_element (threads, i);
        if (g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
          {
            g_assert_true (
              qpin_cpuset_parse (json_object_get_string_member (t, "cpus"), &cpus, NULL));
            qpin_cpuset_or (&held, &cpus);
          }
      }
    g_assert_cmpuint (qpin_cpuset_count (&held), ==, 1);
  }
  during = irq_masks ();
  g_hash_table_iter_init (&it, during);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const char *old = g_hash_table_lookup (before, key);
      QpinCpuset now, was;

      g_assert_true (qpin_cpuset_parse (value, &now, NULL));
      g_assert_false (qpin_cpuset_is_empty (&now));
      if (old == NULL || !qpin_cpuset_parse (old, &was, NULL)
          || !qpin_cpuset_intersects (&was, &held) || qpin_cpuset_equal (&was, &held))
        continue;
      /* it allowed the held CPU and others: moved off it, unless refused */
      if (!qpin_cpuset_intersects (&now, &held))
        moved++;
      else
        g_test_message ("irq %s still on '%s' (refused by the kernel?)", (char *) key,
                        (char *) value);
    }
  g_assert_cmpuint (moved, >, 0);
  /* the VM exits: its CPU is released, the masks are as before */
  {
    GPid pid = q->pid;

    g_clear_pointer (&q, qpin_test_qemu_free);
    qpin_test_daemon_wait_vm (&d, pid, NULL, NULL, 20000);
  }
  after = irq_masks ();
  g_hash_table_iter_init (&it, before);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_hash_table_contains (after, key))
      g_assert_cmpstr (g_hash_table_lookup (after, key), ==, value);
  g_clear_pointer (&after, g_hash_table_unref);
  g_assert_cmpint (kill (d.daemon->pid, SIGTERM), ==, 0);
  g_assert_cmpint (qpin_test_qpin_wait (d.daemon), ==, 0);
  log = qpin_test_qpin_log (d.daemon);
  g_test_message ("%s", log);
  g_assert_nonnull (strstr (log, "irqs=avoid: keeping device irqs off cpus"));
  after = irq_masks ();
  g_hash_table_iter_init (&it, before);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_hash_table_contains (after, key))
      g_assert_cmpstr (g_hash_table_lookup (after, key), ==, value);
  restore_masks (before);
  qpin_test_daemon_tear_down (&d);
}

/* qpin status --map: the daemon's VM drawn on the live host, its vCPU on
 * the CPU status says it is planned on */
static void
test_status_map (void)
{
  QpinTestDaemon d = { 0 };
  g_autoptr (QpinTestQemu) q = NULL;
  g_autoptr (JsonNode) status = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *label = NULL;
  JsonArray *threads;
  const char *cpu = NULL;

  qpin_test_daemon_set_up (&d, "qpin-diag", 0, 0);
  d.interval = NULL;
  qpin_test_daemon_start (&d, NULL);
  q = qpin_test_daemon_listen_vm (&d, "smap", "1");
  qpin_test_daemon_wait_vm (&d, q->pid, "pinned", NULL, 20000);
  threads = json_object_get_array_member (status_vm (d.control, q->pid, &status), "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      if (g_str_equal (json_object_get_string_member (t, "role"), "vcpu"))
        cpu = json_object_get_string_member (t, "cpus");
    }
  g_assert_nonnull (cpu);
  g_assert_cmpint (
    qpin_test_run_qpin ((const char *const[]){ "status", "--map", "--control", d.control, NULL },
                        &out, &err),
    ==, 0);
  g_test_message ("%s", out);
  g_assert_cmpstr (err, ==, "");
  g_assert_true (g_str_has_prefix (out, "node "));
  label = g_strdup_printf ("cpu %-4ssmap/vcpu0", cpu);
  g_assert_nonnull (strstr (out, label));
  g_assert_null (strchr (out, '!')); /* the shared emulator is not a second holder */
  g_clear_pointer (&q, qpin_test_qemu_free);
  qpin_test_daemon_tear_down (&d);
}

/* A QEMU whose monitor answers who it is but drops the connection at the
 * first qom-get: the CPU model is "not checked" with the reason, every
 * other check still runs, and qpin says no more than that. */
static void
test_cpu_model_unanswered (void)
{
  g_autofree char *tmp = g_dir_make_tmp ("qpin-diag-XXXXXX", NULL);
  g_autofree char *script = g_strdup_printf (
    "handshake\n"
    "expect query-name\n"
    "send {\"return\":{\"name\":\"fake\"},\"id\":$ID}\n"
    "expect query-cpus-fast\n"
    "send {\"return\":[{\"cpu-index\":0,\"thread-id\":%d,\"qom-path\":\"/machine/unattached/"
    "device[0]\"}],\"id\":$ID}\n"
    "expect query-iothreads\n"
    "send {\"return\":[],\"id\":$ID}\n"
    "expect query-kvm\n"
    "send {\"return\":{\"enabled\":true,\"present\":true},\"id\":$ID}\n"
    "expect query-cpus-fast\n"
    "send {\"return\":[{\"cpu-index\":0,\"thread-id\":%d,\"qom-path\":\"/machine/unattached/"
    "device[0]\"}],\"id\":$ID}\n"
    "expect qom-get\n"
    "reset\n",
    getpid (), getpid ());
  g_autoptr (QpinFakePeer) peer = qpin_fake_peer_new (script);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) tcg = NULL;
  JsonArray *not_checked;
  gboolean said = FALSE;
  int status;

  root = diagnose (
    tmp, (const char *const[]){ "--duration", "0.2", qpin_fake_peer_get_path (peer), NULL },
    &status);
  g_assert_true (qpin_fake_peer_finish (peer, NULL));
  not_checked = json_object_get_array_member (json_node_get_object (root), "not_checked");
  for (guint i = 0; i < json_array_get_length (not_checked); i++)
    {
      JsonObject *n = json_array_get_object_element (not_checked, i);
      if (g_str_equal (json_object_get_string_member (n, "id"), "cpu-model-missing-features"))
        {
          g_assert_cmpstr (json_object_get_string_member (n, "vm"), ==, "fake");
          g_assert_true (g_str_has_prefix (json_object_get_string_member (n, "why"), "qom-get: "));
          said = TRUE;
        }
    }
  g_assert_true (said);
  /* the VM's other checks ran: KVM, so no accel-tcg */
  tcg = findings_of (root, "accel-tcg", NULL);
  g_assert_cmpuint (tcg->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (getuid () != 0)
    {
      g_test_skip ("needs root");
      return g_test_run ();
    }
  g_test_add_func ("/diagnose/two-spinners", test_two_spinners);
  g_test_add_func ("/diagnose/vcpus-exceed-host-cpus", test_vcpus_exceed);
  g_test_add_func ("/diagnose/irqs-on-dedicated", test_irqs_on_dedicated);
  g_test_add_func ("/diagnose/drift-repeated", test_drift_repeated);
  g_test_add_func ("/diagnose/irqs-avoid", test_irqs_avoid);
  g_test_add_func ("/diagnose/status-map", test_status_map);
  g_test_add_func ("/diagnose/cpu-model-unanswered", test_cpu_model_unanswered);
  return g_test_run ();
}
