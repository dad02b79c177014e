/* qpin-cmd-diagnose.c: `qpin diagnose` and the picture of `qpin status --map` */

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qpin-commands.h"
#include "qpin-control.h"
#include "qpin-diag-qmp.h"
#include "qpin-map.h"
#include "qpin-topology-reader.h"

/**
 * qpin_status_print_map:
 * @status: the daemon's status reply
 *
 * Prints the live host's topology with the daemon's placement on it.
 *
 * Returns: the exit status of `qpin status --map`
 */
int
qpin_status_print_map (JsonNode *status)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = qpin_topology_read ("/", NULL, &error);
  g_autoptr (QpinMap) map = NULL;
  g_autofree char *text = NULL;

  if (topo == NULL)
    {
      fprintf (stderr, "qpin status: %s\n", error->message);
      return 1;
    }
  map = qpin_map_new (topo, NULL);
  if (!qpin_map_add_status (map, status, &error))
    {
      fprintf (stderr, "qpin status: %s\n", error->message);
      return 1;
    }
  text = qpin_map_to_text (map, isatty (STDOUT_FILENO));
  fputs (text, stdout);
  return 0;
}

/* One VM of the daemon's status: {"key","pid","threads":[{"role","index",
 * "tid","cpus"}],"drift_repairs"}.  A vCPU planned on one CPU holds it. */
static QpinDiagVm *
vm_from_status (JsonObject *o)
{
  const char *key = json_object_get_string_member_with_default (o, "key", NULL);
  gint64 pid = json_object_get_int_member_with_default (o, "pid", 0);
  JsonArray *threads = json_object_get_array_member (o, "threads");
  g_autoptr (QpinDiagVm) vm = NULL;

  if (key == NULL || pid <= 0)
    return NULL;
  vm = qpin_diag_vm_new (key, pid);
  vm->drift_repairs = json_object_get_int_member_with_default (o, "drift_repairs", -1);
  vm->cpu_model_why = g_strdup ("the daemon holds the VM's monitor (qpin inspect it, or ask QEMU "
                                "query-cpu-model-expansion)");
  for (guint i = 0; threads && i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      const char *role = t ? json_object_get_string_member_with_default (t, "role", "") : "";
      gint64 tid = t ? json_object_get_int_member_with_default (t, "tid", 0) : 0;
      gint64 index = t ? json_object_get_int_member_with_default (t, "index", 0) : 0;
      QpinCpuset cpus;
      QpinThreadRole r = g_str_equal (role, "vcpu")       ? QPIN_ROLE_VCPU
                         : g_str_equal (role, "emulator") ? QPIN_ROLE_EMULATOR
                         : g_str_equal (role, "iothread") ? QPIN_ROLE_IOTHREAD
                                                          : QPIN_ROLE_OTHER;

      if (tid <= 0 || index < 0 || index > G_MAXINT)
        continue;
      qpin_diag_vm_add_thread (vm, tid, r, (guint) index);
      if (r == QPIN_ROLE_VCPU
          && qpin_cpuset_parse (json_object_get_string_member_with_default (t, "cpus", ""), &cpus,
                                NULL)
          && qpin_cpuset_count (&cpus) == 1)
        qpin_cpuset_or (&vm->dedicated, &cpus);
    }
  return g_steal_pointer (&vm);
}

/* The daemon's VMs (only @names when given); FALSE when it does not answer */
static gboolean
vms_from_daemon (QpinDiag *diag, const char *control, char **names, GPtrArray *unmatched)
{
  g_autoptr (JsonNode) reply = qpin_control_request (control, "status", NULL, NULL);
  JsonObject *root = reply && JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
  JsonArray *vms = root ? json_object_get_array_member (root, "vms") : NULL;

  if (vms == NULL)
    return FALSE;
  for (guint i = 0; names && names[i]; i++)
    g_ptr_array_add (unmatched, names[i]);
  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *o = json_array_get_object_element (vms, i);
      QpinDiagVm *vm = o ? vm_from_status (o) : NULL;

      if (vm == NULL)
        continue;
      if (names && !g_strv_contains ((const char *const *) names, vm->name))
        {
          qpin_diag_vm_free (vm);
          continue;
        }
      for (guint j = 0; j < unmatched->len; j++)
        if (g_str_equal (g_ptr_array_index (unmatched, j), vm->name))
          g_ptr_array_remove_index (unmatched, j--);
      qpin_diag_add_vm (diag, vm);
    }
  return TRUE;
}

/* A QEMU by its QMP socket: its name and pid from QMP, its threads from /proc */
static gboolean
vm_from_socket (QpinDiag *diag, const char *address, const char *root, GError **error)
{
  g_autoptr (QpinQmpClient) client
    = qpin_qmp_client_connect_sync (address, QPIN_QMP_DEFAULT_TIMEOUT_MS, error);
  g_autoptr (JsonNode) name = NULL;
  g_autoptr (QpinDiagVm) vm = NULL;
  JsonObject *o;
  GPid pid;

  if (client == NULL)
    return FALSE;
  pid = qpin_qmp_client_get_peer_pid (client);
  if (pid <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "'%s': the peer's pid is unknown (a tcp: monitor? use --pid)", address);
      return FALSE;
    }
  name
    = qpin_qmp_client_execute_sync (client, "query-name", NULL, QPIN_QMP_DEFAULT_TIMEOUT_MS, NULL);
  o = name && JSON_NODE_HOLDS_OBJECT (name) ? json_node_get_object (name) : NULL;
  if (o && json_object_get_string_member_with_default (o, "name", NULL))
    vm = qpin_diag_vm_new (json_object_get_string_member (o, "name"), pid);
  else
    {
      g_autofree char *key = g_strdup_printf ("pid-%d", pid);
      vm = qpin_diag_vm_new (key, pid);
    }
  if (!qpin_diag_vm_query_threads (vm, client, QPIN_QMP_DEFAULT_TIMEOUT_MS, error))
    return FALSE;
  qpin_diag_vm_query (vm, client, root, QPIN_QMP_DEFAULT_TIMEOUT_MS);
  qpin_qmp_client_close (client);
  qpin_diag_add_vm (diag, g_steal_pointer (&vm));
  return TRUE;
}

/* QEMU's -name (NAME or guest=NAME, up to the first comma) from
 * ROOT/proc/PID/cmdline, else "pid-PID" as the daemon keys it */
static char *
name_of_pid (const char *root, gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("%s/proc/%" G_GINT64_FORMAT "/cmdline", root, pid);
  g_autofree char *cmdline = NULL;
  gsize len = 0;

  if (g_file_get_contents (path, &cmdline, &len, NULL))
    for (gsize off = 0; off < len; off += strlen (cmdline + off) + 1)
      if (g_str_equal (cmdline + off, "-name") && off + 6 < len)
        {
          const char *v = cmdline + off + 6;
          if (g_str_has_prefix (v, "guest="))
            v += strlen ("guest=");
          if (*v && *v != ',')
            return g_strndup (v, strcspn (v, ","));
        }
  return g_strdup_printf ("pid-%" G_GINT64_FORMAT, pid);
}

static gboolean
vm_from_pid (QpinDiag *diag, gint64 pid, const char *root, GError **error)
{
  g_autofree char *key = name_of_pid (root, pid);
  g_autoptr (QpinDiagVm) vm = qpin_diag_vm_new (key, pid);

  if (!qpin_diag_vm_read_threads (vm, root, error))
    return FALSE;
  if (vm->threads->len < 2)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "pid %" G_GINT64_FORMAT " has no thread named 'CPU N/...': start QEMU with "
                   "-name NAME,debug-threads=on, or give its QMP socket",
                   pid);
      return FALSE;
    }
  qpin_diag_add_vm (diag, g_steal_pointer (&vm));
  return TRUE;
}

typedef struct {
  char *root;
  char *control;
  GArray *pids; /* gint64 */
  char **args;
  gboolean explicit_control;
} Sources;

/* Where the VMs come from.  The daemon, when it answers, names them (ARGS
 * are VM names then, or sockets it does not manage); otherwise ARGS are
 * QMP sockets.  --pid adds a QEMU by its pid either way.  Failures become
 * "not checked" lines: the host checks still run. */
static void
collect_vms (QpinDiag *diag, const Sources *src, QpinFindings *notes)
{
  g_autoptr (GPtrArray) rest = g_ptr_array_new ();
  gboolean daemon = FALSE;

  if (g_strcmp0 (src->root, "/") == 0 || src->explicit_control)
    daemon = vms_from_daemon (diag, src->control, src->args, rest);
  if (!daemon)
    for (guint i = 0; src->args && src->args[i]; i++)
      g_ptr_array_add (rest, src->args[i]);
  if (!daemon && rest->len == 0 && src->pids->len == 0)
    qpin_findings_not_checked (notes, "vm", NULL,
                               "no daemon answers at '%s' and no SOCKET or --pid was given: "
                               "only the host was checked",
                               src->control);
  for (guint i = 0; i < rest->len; i++)
    {
      const char *arg = g_ptr_array_index (rest, i);
      g_autoptr (GError) error = NULL;
      struct stat st;

      if ((stat (arg, &st) == 0 && S_ISSOCK (st.st_mode)) || g_str_has_prefix (arg, "tcp:"))
        {
          if (!vm_from_socket (diag, arg, src->root, &error))
            qpin_findings_not_checked (notes, "vm", arg, "%s", error->message);
        }
      else
        qpin_findings_not_checked (notes, "vm", arg, "%s",
                                   daemon ? "not a VM of the daemon, nor a QMP socket"
                                          : "no daemon answers, and this is no QMP socket");
    }
  for (guint i = 0; i < src->pids->len; i++)
    {
      gint64 pid = g_array_index (src->pids, gint64, i);
      g_autoptr (GError) error = NULL;
      g_autofree char *key = g_strdup_printf ("pid-%" G_GINT64_FORMAT, pid);

      if (!vm_from_pid (diag, pid, src->root, &error))
        qpin_findings_not_checked (notes, "vm", key, "%s", error->message);
    }
}

static gboolean
parse_pids (char **texts, GArray *pids, GError **error)
{
  for (guint i = 0; texts && texts[i]; i++)
    {
      guint64 pid;
      if (!g_ascii_string_to_unsigned (texts[i], 10, 1, G_MAXINT32, &pid, error))
        return FALSE;
      g_array_append_vals (pids, &(gint64){ (gint64) pid }, 1);
    }
  return TRUE;
}

static void
print_findings (QpinFindings *findings, gboolean json)
{
  if (json)
    {
      g_autoptr (JsonNode) node = qpin_findings_to_json (findings);
      g_autofree char *text = json_to_string (node, TRUE);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *text = qpin_findings_to_text (findings);
      fputs (text, stdout);
    }
}

/**
 * qpin_cmd_diagnose:
 *
 * `qpin diagnose [VM|SOCKET...] [--pid PID] [--json] [--duration SECS]
 * [--control PATH] [--root DIR]`
 *
 * Returns: 0 with no warning or critical finding, 1 otherwise, 2 on usage errors
 */
int
qpin_cmd_diagnose (int argc, char **argv)
{
  g_autofree char *root = NULL;
  g_autofree char *control = NULL;
  g_auto (GStrv) pid_texts = NULL;
  gboolean json = FALSE;
  double duration = 2.0;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "duration", 0, 0, G_OPTION_ARG_DOUBLE, &duration, "Sample for SECS seconds (2)", "SECS" },
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &control,
      "The daemon's control socket (" QPIN_CONTROL_DEFAULT_PATH ")", "PATH" },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &root,
      "Read procfs and sysfs under DIR (a capture or fixture; ROOT/after: the second sample)",
      "DIR" },
    { "pid", 0, 0, G_OPTION_ARG_STRING_ARRAY, &pid_texts, "Also check the QEMU with this pid",
      "PID" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("[VM|SOCKET...]");
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (QpinDiag) diag = NULL;
  g_autoptr (QpinFindings) findings = qpin_findings_new ();
  g_autoptr (GArray) pids = g_array_new (FALSE, FALSE, sizeof (gint64));
  Sources src = { 0 };

  g_option_context_set_summary (ctx, "Sample the host and its VMs, print findings ranked by "
                                     "severity, each with its evidence and a fix.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !parse_pids (pid_texts, pids, &error))
    {
      fprintf (stderr, "qpin diagnose: %s\n", error->message);
      return 2;
    }
  if (duration <= 0 || duration > 3600)
    {
      fprintf (stderr, "qpin diagnose: --duration must be above 0 and at most 3600\n");
      return 2;
    }
  src.root = root ? root : "/";
  src.control = control ? control : QPIN_CONTROL_DEFAULT_PATH;
  src.explicit_control = control != NULL;
  src.pids = pids;
  src.args = argc > 1 ? argv + 1 : NULL;
  topo = qpin_topology_read (src.root, NULL, &error);
  if (topo == NULL)
    {
      fprintf (stderr, "qpin diagnose: %s\n", error->message);
      return 1;
    }
  diag = qpin_diag_new (src.root, topo, duration);
  collect_vms (diag, &src, findings);
  qpin_diag_snapshot (diag, FALSE);
  if (!qpin_diag_has_after (diag))
    g_usleep ((gulong) (duration * G_USEC_PER_SEC));
  qpin_diag_snapshot (diag, TRUE);
  qpin_diag_run (diag, findings);
  print_findings (findings, json);
  return qpin_findings_has_problem (findings) ? 1 : 0;
}
