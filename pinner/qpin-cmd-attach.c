/* qpin-cmd-attach.c: `qpin attach SOCKET`: pin one running QEMU
 *
 * Discovers the threads, plans on the live (or a given) topology, pins,
 * verifies and prints the result.  With --once or --dry-run it exits
 * then; otherwise it stays attached, keeps the pins true (hot-added
 * vCPUs, drift) and exits 0 when QEMU exits.
 */

#include <glib-unix.h>
#include <stdio.h>

#include "qpin-commands.h"
#include "qpin-log.h"
#include "qpin-proc.h"
#include "qpin-qmp-types.h"
#include "qpin-registry.h"
#include "qpin-setup.h"
#include "qpin-vm-threads.h"

typedef struct {
  GMainLoop *loop;
  const char *socket;
  gboolean once;
  gboolean dry_run;
  gboolean json;
  gboolean printed;
  int status;
} Attach;

static void
print_result (QpinRegistry *registry, gboolean json)
{
  if (json)
    {
      g_autoptr (JsonNode) node = qpin_registry_to_json (registry);
      g_autofree char *text = json_to_string (node, TRUE);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *table = NULL;

      qpin_registry_verify (registry); /* the kernel's view as of now */
      table = qpin_registry_to_table (registry);
      fputs (table, stdout);
    }
  fflush (stdout);
}

static void
on_settled (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  Attach *a = user_data;
  QpinVmState state = qpin_vm_get_state (vm);

  if (a->printed)
    return;
  a->printed = TRUE;
  print_result (registry, a->json);
  if (state != (a->dry_run ? QPIN_VM_PLANNED : QPIN_VM_PINNED))
    {
      /* the registry has logged the reason */
      a->status = 1;
      g_main_loop_quit (a->loop);
      return;
    }
  /* a dry run keeps nothing pinned, so there is nothing to stay for */
  if (a->once || a->dry_run)
    g_main_loop_quit (a->loop);
}

static void
on_gone (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  Attach *a = user_data;

  if (!a->printed)
    {
      fprintf (stderr, "qpin attach: %s: QEMU went away before it was pinned\n", a->socket);
      a->status = 1;
    }
  g_main_loop_quit (a->loop);
}

static gboolean
on_signal (gpointer user_data)
{
  Attach *a = user_data;
  g_main_loop_quit (a->loop);
  return G_SOURCE_CONTINUE;
}

/* Over TCP the kernel does not say who the peer is. */
static GPid
pid_from_vcpus (QpinQmpClient *client, guint timeout_ms, GError **error)
{
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, timeout_ms, error);
  g_autoptr (GPtrArray) cpus = ret ? qpin_qmp_parse_cpus_fast (ret, error) : NULL;

  return cpus ? qpin_vm_threads_resolve_pid (0, 0, cpus, error) : 0;
}

static int
fail (const char *socket, const char *message)
{
  fprintf (stderr, "qpin attach: %s%s%s\n", socket ? socket : "", socket ? ": " : "", message);
  return 1;
}

/**
 * qpin_cmd_attach:
 *
 * `qpin attach SOCKET [--once] [--dry-run] [--config F] [--policy K=V]...
 *  [--json] [--topology DIR|live] [--pid PID] [--timeout MS] [--interval MS]
 *  [--enforce repair|report|off]`
 */
int
qpin_cmd_attach (int argc, char **argv)
{
  gboolean once = FALSE, dry_run = FALSE, json = FALSE;
  g_auto (QpinPlacementOptions) p = { .timeout_ms = QPIN_QMP_DEFAULT_TIMEOUT_MS };
  gint64 pid = 0;
  gint interval_ms = 1000;
  GOptionEntry entries[] = {
    { "once", 0, 0, G_OPTION_ARG_NONE, &once, "Pin, verify, print and exit", NULL },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "Plan and show, change nothing", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "pid", 0, 0, G_OPTION_ARG_INT64, &pid, "QEMU's pid, for tcp: monitors", "PID" },
    { "interval", 0, 0, G_OPTION_ARG_INT, &interval_ms,
      "Re-check vCPUs and drift every MS (1000; 0: only on events)", "MS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("SOCKET");
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (QpinConfig) config = NULL;
  g_autoptr (QpinQmpClient) client = NULL;
  g_autoptr (QpinRegistry) registry = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  QpinRegistryOptions options = { 0 };
  Attach a = { 0 };
  guint sigint, sigterm;

  qpin_log_use_cli_writer ();
  g_option_context_set_summary (ctx, "Pin the threads of one running QEMU and keep them pinned.\n"
                                     "SOCKET is a QMP unix socket path or tcp:HOST:PORT.");
  g_option_context_set_main_group (
    ctx, qpin_setup_placement_group (&p, QPIN_PLACEMENT_CONFIG | QPIN_PLACEMENT_TOPOLOGY
                                           | QPIN_PLACEMENT_TIMEOUT | QPIN_PLACEMENT_ENFORCE));
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "qpin attach: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || p.timeout_ms <= 0 || interval_ms < 0)
    {
      fprintf (stderr, "qpin attach: %s\n",
               argc != 2 ? "expected one SOCKET argument"
                         : "--timeout and --interval must be positive");
      return 2;
    }
  options.dry_run = dry_run;
  options.timeout_ms = (guint) p.timeout_ms;
  options.interval_ms = once ? 0 : (guint) interval_ms;
  if (!qpin_setup_parse_enforce (p.enforce, &options.enforce, &error)
      || !qpin_setup_check_topology (p.topology, dry_run, &error))
    {
      fprintf (stderr, "qpin attach: %s\n", error->message);
      return 2;
    }

  if (!qpin_setup_load (p.topology, p.config_path, (const char *const *) p.overrides, &topo,
                        &config, &error))
    return fail (NULL, error->message);
  client = qpin_qmp_client_connect_sync (argv[1], (guint) p.timeout_ms, &error);
  if (client == NULL)
    return fail (argv[1], error->message);
  if (pid <= 0 && qpin_qmp_client_get_peer_pid (client) <= 0
      && (pid = pid_from_vcpus (client, (guint) p.timeout_ms, &error)) <= 0)
    return fail (argv[1], error->message);
  registry
    = qpin_registry_new (g_steal_pointer (&topo), g_steal_pointer (&config), &options, &error);
  if (registry == NULL)
    return fail (NULL, error->message);

  loop = g_main_loop_new (NULL, FALSE);
  a.loop = loop;
  a.socket = argv[1];
  a.once = once;
  a.dry_run = dry_run;
  a.json = json;
  qpin_setup_watch (registry, p.topology);
  qpin_registry_set_hooks (registry, on_settled, on_gone, &a);
  qpin_registry_add (registry, client, (GPid) pid);
  sigint = g_unix_signal_add (SIGINT, on_signal, &a);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, &a);
  g_main_loop_run (loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  qpin_registry_set_hooks (registry, NULL, NULL, NULL);
  return a.status;
}
