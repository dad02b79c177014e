/* qpin-cmd-run.c: `qpin run -- QEMU ARGS...`: start QEMU pinned
 *
 * QEMU is started as our child, paused (-S), with one extra monitor that
 * connects to a private socket of ours.  Its threads are pinned while it
 * is in prelaunch, by our own registry (no daemon) or by the qpin daemon
 * it also connects to; then sched and memory are applied and, unless the
 * user asked for -S, `cont` starts the guest.  From then on qpin run only
 * forwards signals and returns QEMU's exit status.
 *
 * The child's exit is the one place that decides how qpin run ends: every
 * failure first stops QEMU (quit, then SIGKILL) and waits for it.
 */

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "qpin-commands.h"
#include "qpin-control.h"
#include "qpin-control-wait.h"
#include "qpin-proc.h"
#include "qpin-readback.h"
#include "qpin-json.h"
#include "qpin-registry.h"
#include "qpin-run-args.h"
#include "qpin-setup.h"
#include "qpin-unix-address.h"

#define RUN_DEFAULT_TIMEOUT_MS 30000
#define RUN_STOP_GRACE_MS 3000
#define RUN_CLOSED_GRACE_MS 2000

typedef enum {
  PHASE_STARTING,       /* waiting for QEMU's monitor */
  PHASE_PINNING,        /* monitor ready; waiting for the pins */
  PHASE_STARTING_GUEST, /* pinned; sched, memory, cont in flight */
  PHASE_RUNNING,        /* guest running (or left paused for the user's -S) */
  PHASE_STOPPING,       /* qpin stops QEMU because of stop_reason */
} Phase;

typedef struct {
  GMainLoop *loop;
  GSubprocess *qemu;
  GPid pid;
  GCancellable *cancel;
  GSocketListener *listener;
  QpinQmpClient *client;
  QpinRegistry *registry; /* without a daemon */
  const char *control_path;
  const char *report_path;
  gboolean daemon_mode;
  gboolean user_paused; /* the user gave -S: never cont */
  gboolean verbose;
  guint timeout_ms;
  Phase phase;
  char *stop_reason;
  char *run_state;   /* query-status when the pins were in place */
  JsonObject *vm;    /* the VM as pinned: registry or daemon JSON */
  gint64 spawned_us; /* wall clock: QEMU spawned */
  gint64 monitor_us; /* wall clock: our monitor's handshake done */
  gint64 resumed_us; /* wall clock: RESUME event seen, 0 until then */
  guint timeout_id, kill_id, closed_id;
  int status;
} Run;

static void run_fail (Run *r, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* ---- ending ---- */

static gboolean
on_kill_timeout (gpointer user_data)
{
  Run *r = user_data;

  r->kill_id = 0;
  g_subprocess_force_exit (r->qemu);
  return G_SOURCE_REMOVE;
}

static void
clear_sources (Run *r)
{
  if (r->timeout_id)
    g_source_remove (r->timeout_id);
  if (r->closed_id)
    g_source_remove (r->closed_id);
  r->timeout_id = r->closed_id = 0;
}

/* Stop QEMU because qpin cannot keep its promise; the reason is printed
 * and qpin run exits 1 once QEMU is gone. */
static void
run_fail (Run *r, const char *format, ...)
{
  va_list args;

  if (r->phase == PHASE_STOPPING)
    return;
  r->phase = PHASE_STOPPING;
  va_start (args, format);
  r->stop_reason = g_strdup_vprintf (format, args);
  va_end (args);
  clear_sources (r);
  if (r->client && !qpin_qmp_client_is_closed (r->client))
    qpin_qmp_client_execute_async (r->client, "quit", NULL, RUN_STOP_GRACE_MS, NULL, NULL, NULL);
  else
    g_subprocess_send_signal (r->qemu, SIGTERM);
  r->kill_id = g_timeout_add (RUN_STOP_GRACE_MS, on_kill_timeout, r);
}

static void
on_qemu_exit (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *r = user_data;
  GSubprocess *qemu = G_SUBPROCESS (source);
  int status;

  g_subprocess_wait_finish (qemu, result, NULL);
  status = g_subprocess_get_if_exited (qemu) ? g_subprocess_get_exit_status (qemu)
                                             : 128 + g_subprocess_get_term_sig (qemu);
  clear_sources (r);
  if (r->stop_reason)
    {
      fprintf (stderr, "qpin run: %s; QEMU stopped\n", r->stop_reason);
      r->status = 1;
    }
  else
    {
      if (r->phase == PHASE_STARTING)
        fprintf (stderr, "qpin run: QEMU exited with status %d before its monitor was ready\n",
                 status);
      else if (r->phase == PHASE_PINNING)
        fprintf (stderr, "qpin run: QEMU exited with status %d before it was pinned\n", status);
      else if (r->phase == PHASE_STARTING_GUEST)
        fprintf (stderr, "qpin run: QEMU exited with status %d before its guest was started\n",
                 status);
      r->status = status;
    }
  g_main_loop_quit (r->loop);
}

/* ---- after the pins (and the registry's sched and memory=migrate):
 * query-status, report, cont ---- */

/* -v under a daemon: what the daemon did, as qpin run alone would say it. */
static void
log_daemon_placement (Run *r)
{
  JsonArray *threads = json_object_get_array_member (r->vm, "threads");

  for (guint i = 0; threads && i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);

      g_info ("the daemon placed %s %" G_GINT64_FORMAT " (tid %" G_GINT64_FORMAT ") on cpus %s",
              json_object_get_string_member_with_default (t, "role", "?"),
              json_object_get_int_member_with_default (t, "index", 0),
              json_object_get_int_member_with_default (t, "tid", 0),
              json_object_get_string_member_with_default (t, "cpus", "?"));
    }
  g_info ("vCPU threads run %s; memory: %s policy, pages on node(s) %s",
          json_object_get_string_member_with_default (r->vm, "sched", "?"),
          json_object_get_string_member_with_default (r->vm, "memory_policy", "?"),
          json_object_get_string_member_with_default (r->vm, "memory_pages_nodes", "?"));
}

/* The VM as pinned plus what only qpin run knows, in the shared shape. */
static void
write_report (Run *r, gboolean cont_sent)
{
  g_autoptr (JsonObject) root = json_object_new ();
  g_autoptr (JsonArray) vms = json_array_new ();
  g_autoptr (JsonNode) node = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  JsonObject *vm = r->vm;

  if (r->report_path == NULL)
    return;
  json_object_set_string_member (vm, "mode", r->daemon_mode ? "daemon" : "alone");
  json_object_set_string_member (vm, "run_state_when_pinned", r->run_state);
  json_object_set_boolean_member (vm, "cont", cont_sent);
  json_object_set_int_member (vm, "spawned_at_us", r->spawned_us);
  json_object_set_int_member (vm, "monitor_at_us", r->monitor_us);
  if (r->resumed_us)
    json_object_set_int_member (vm, "resumed_at_us", r->resumed_us);
  json_array_add_object_element (vms, json_object_ref (vm));
  json_object_set_array_member (root, "vms", g_steal_pointer (&vms));
  node = json_node_init_object (json_node_alloc (), root);
  text = json_to_string (node, TRUE);
  if (!g_file_set_contents (r->report_path, text, -1, &error))
    g_warning ("cannot write the report: %s", error->message);
}

static void
on_cont (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);

  if (r->phase != PHASE_STARTING_GUEST)
    return;
  if (ret == NULL)
    {
      run_fail (r, "cont failed: %s", error->message);
      return;
    }
  r->phase = PHASE_RUNNING;
  /* RESUME comes before the reply of cont: resumed_us is known here */
  write_report (r, TRUE);
  g_info ("pid %d: cont: guest started", r->pid);
}

static void
on_status (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) ret
    = qpin_qmp_client_execute_finish (QPIN_QMP_CLIENT (source), result, &error);
  JsonObject *obj;

  if (r->phase != PHASE_STARTING_GUEST)
    return;
  if (ret == NULL || !JSON_NODE_HOLDS_OBJECT (ret))
    {
      run_fail (r, "query-status failed: %s", error ? error->message : "not an object");
      return;
    }
  obj = json_node_get_object (ret);
  r->run_state = g_strdup (json_object_get_string_member_with_default (obj, "status", "?"));
  if (!g_str_equal (r->run_state, "prelaunch"))
    fprintf (stderr,
             "qpin run: warning: the guest was already '%s' when its threads were pinned "
             "(did another monitor send cont?)\n",
             r->run_state);
  qpin_readback_add_to_vm (r->vm, r->pid);
  if (r->daemon_mode)
    log_daemon_placement (r);
  if (r->user_paused)
    {
      r->phase = PHASE_RUNNING;
      write_report (r, FALSE);
      g_info ("pid %d: pinned; left paused as -S asks", r->pid);
      return;
    }
  qpin_qmp_client_execute_async (r->client, "cont", NULL, r->timeout_ms, NULL, on_cont, r);
}

/* Every thread is pinned: go on from @vm (the VM's JSON). */
static void
pinned (Run *r, JsonObject *vm)
{
  clear_sources (r);
  r->phase = PHASE_STARTING_GUEST;
  r->vm = json_object_ref (vm);
  qpin_qmp_client_execute_async (r->client, "query-status", NULL, r->timeout_ms, NULL, on_status,
                                 r);
}

/* ---- pinning alone ---- */

static void
on_settled (QpinRegistry *registry, QpinVm *vm, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (JsonNode) json = NULL;
  const char *error = qpin_vm_get_error (vm);

  if (r->phase != PHASE_PINNING)
    return;
  if (qpin_vm_get_state (vm) != QPIN_VM_PINNED)
    {
      run_fail (r, "cannot pin QEMU (pid %d): %s", r->pid,
                error ? error : "not every thread could be pinned");
      return;
    }
  json = qpin_registry_to_json (registry);
  pinned (r, qpin_json_find_vm (json, r->pid));
}

/* ---- pinning by the daemon ---- */

/* The daemon answers {"command":"wait"} once it has placed the VM (or
 * failed, or lost it): one request, no polling. */
static void
on_wait (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) reply = qpin_control_request_finish (result, &error);
  JsonNode *member;
  JsonObject *vm;
  const char *state, *why;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || r->phase != PHASE_PINNING)
    return;
  if (reply == NULL)
    {
      run_fail (r, "lost the qpin daemon while it was pinning QEMU: %s", error->message);
      return;
    }
  member = JSON_NODE_HOLDS_OBJECT (reply)
             ? json_object_get_member (json_node_get_object (reply), "vm")
             : NULL;
  vm = member && JSON_NODE_HOLDS_OBJECT (member) ? json_node_get_object (member) : NULL;
  state = vm ? json_object_get_string_member_with_default (vm, "state", "") : "";
  if (g_str_equal (state, "pinned"))
    {
      pinned (r, vm);
      return;
    }
  why
    = vm ? json_object_get_string_member_with_default (vm, "error", NULL)
      : JSON_NODE_HOLDS_OBJECT (reply)
        ? json_object_get_string_member_with_default (json_node_get_object (reply), "reason", NULL)
        : NULL;
  run_fail (r, "the qpin daemon cannot pin QEMU (pid %d): %s", r->pid,
            why ? why : (*state ? state : "no answer"));
}

static void
wait_for_daemon (Run *r)
{
  g_autoptr (JsonObject) args = json_object_new ();

  json_object_set_int_member (args, "pid", r->pid);
  /* our own timeout, started earlier, ends the wait first */
  json_object_set_int_member (args, "timeout_ms", MIN (r->timeout_ms, QPIN_CONTROL_WAIT_MAX_MS));
  qpin_control_request_async (r->control_path, "wait", args, r->cancel, on_wait, r);
}

/* ---- QEMU's monitor ---- */

static gboolean
on_closed_grace (gpointer user_data)
{
  Run *r = user_data;

  r->closed_id = 0;
  run_fail (r, "QEMU closed qpin's monitor before it was pinned");
  return G_SOURCE_REMOVE;
}

static void
on_client_closed (QpinQmpClient *client, const GError *error, gpointer user_data)
{
  Run *r = user_data;

  /* QEMU exiting closes it too: give the exit a moment to be seen */
  if (r->phase < PHASE_RUNNING && r->closed_id == 0)
    r->closed_id = g_timeout_add (RUN_CLOSED_GRACE_MS, on_closed_grace, r);
}

static void
on_client_event (QpinQmpClient *client, const char *name, JsonObject *data, gpointer user_data)
{
  Run *r = user_data;
  (void) data;

  if (g_str_equal (name, "RESUME") && r->resumed_us == 0)
    r->resumed_us = g_get_real_time ();
}

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = qpin_qmp_client_handshake_finish (result, &error);

  if (client == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && r->closed_id == 0)
        r->closed_id = g_timeout_add (RUN_CLOSED_GRACE_MS, on_closed_grace, r);
      return;
    }
  if (r->phase != PHASE_STARTING)
    {
      qpin_qmp_client_close (client);
      return;
    }
  r->monitor_us = g_get_real_time ();
  r->client = g_steal_pointer (&client);
  g_signal_connect (r->client, "closed", G_CALLBACK (on_client_closed), r);
  g_signal_connect (r->client, "event", G_CALLBACK (on_client_event), r);
  r->phase = PHASE_PINNING;
  if (r->daemon_mode)
    {
      g_info ("waiting for the qpin daemon to pin QEMU (pid %d)", r->pid);
      wait_for_daemon (r);
    }
  else
    {
      qpin_registry_set_hooks (r->registry, on_settled, NULL, r);
      qpin_registry_add (r->registry, r->client, r->pid);
    }
}

static void
on_accept (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *r = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) conn
    = g_socket_listener_accept_finish (G_SOCKET_LISTENER (source), result, NULL, &error);
  g_autoptr (GCredentials) creds = NULL;
  GPid peer;

  if (conn == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        run_fail (r, "qpin's monitor socket failed: %s", error->message);
      return;
    }
  creds = g_socket_get_credentials (g_socket_connection_get_socket (conn), NULL);
  peer = creds ? (GPid) g_credentials_get_unix_pid (creds, NULL) : -1;
  if (peer != r->pid)
    {
      /* the directory is ours alone; still, only our child is QEMU */
      fprintf (stderr,
               "qpin run: warning: refused a monitor connection from pid %d (QEMU is pid %d)\n",
               peer, r->pid);
      g_socket_listener_accept_async (r->listener, r->cancel, on_accept, r);
      return;
    }
  qpin_qmp_client_handshake_async (conn, "qpin run monitor", r->timeout_ms, r->cancel, on_handshake,
                                   r);
}

static gboolean
on_timeout (gpointer user_data)
{
  Run *r = user_data;

  r->timeout_id = 0;
  if (r->phase == PHASE_STARTING)
    run_fail (r, "QEMU's monitor did not connect within %u ms", r->timeout_ms);
  else if (r->phase < PHASE_RUNNING)
    run_fail (r, "QEMU (pid %d) was not pinned within %u ms%s", r->pid, r->timeout_ms,
              r->daemon_mode ? " (is the daemon's listen socket the one given to "
                               "--daemon-socket?)"
                             : "");
  return G_SOURCE_REMOVE;
}

static gboolean
on_signal (gpointer user_data, int signum)
{
  Run *r = user_data;

  if (r->qemu)
    g_subprocess_send_signal (r->qemu, signum);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer user_data)
{
  return on_signal (user_data, SIGINT);
}

static gboolean
on_sigterm (gpointer user_data)
{
  return on_signal (user_data, SIGTERM);
}

static gboolean
on_sighup (gpointer user_data)
{
  return on_signal (user_data, SIGHUP);
}

/* stderr is QEMU's console too (-nographic): qpin run says one line per
 * failure and nothing else unless --verbose.  Before the guest runs, a
 * warning is the reason that qpin run's own last line gives. */
static void
on_log (const char *domain, GLogLevelFlags level, const char *message, gpointer user_data)
{
  Run *r = user_data;

  if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    {
      if (r->verbose)
        fprintf (stderr, "qpin run: %s\n", message);
      return;
    }
  if (level & G_LOG_LEVEL_DEBUG)
    return;
  if ((level & G_LOG_LEVEL_WARNING) && r->phase < PHASE_RUNNING)
    return;
  g_log_default_handler (domain, level, message, NULL);
}

/* QEMU dies with qpin run: it is QEMU's supervisor, and a QEMU left in
 * prelaunch with nobody to cont it is of no use. */
static void
child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* ---- setup ---- */

/* A qpin daemon whose control socket answers, or NULL. */
static JsonNode *
daemon_status (const char *control_path)
{
  return qpin_control_request (control_path, "status", NULL, NULL);
}

static void
warn_name_clash (JsonNode *status, const char *name)
{
  JsonArray *vms = json_object_get_array_member (json_node_get_object (status), "vms");

  for (guint i = 0; name && vms && i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);
      const char *other = json_object_get_string_member_with_default (vm, "name", NULL);

      if (g_strcmp0 (other, name) != 0
          || g_str_equal (json_object_get_string_member_with_default (vm, "state", ""), "gone"))
        continue;
      fprintf (stderr,
               "qpin run: warning: a VM named '%s' already runs under the qpin daemon "
               "(pid %" G_GINT64_FORMAT "); the daemon will know this one as '%s@PID'\n",
               name, json_object_get_int_member_with_default (vm, "pid", 0), name);
      return;
    }
}

static GSocketListener *
listen_private (const char *path, GError **error)
{
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GSocketAddress) addr = qpin_unix_address_new (path, error);

  if (addr == NULL)
    return NULL;
  if (!g_socket_listener_add_address (listener, addr, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, error))
    {
      g_prefix_error (error, "cannot listen on '%s': ", path);
      return NULL;
    }
  return g_steal_pointer (&listener);
}

/* Before anything is said about the mode: a QEMU that cannot start makes
 * one line, as a shell would say it.  Returns 0 when @binary can run. */
static int
check_binary (const char *binary)
{
  g_autofree char *found = g_find_program_in_path (binary);

  if (found)
    return 0;
  if (strchr (binary, '/') && g_file_test (binary, G_FILE_TEST_EXISTS))
    {
      fprintf (stderr, "qpin run: cannot run '%s': not an executable file\n", binary);
      return 126;
    }
  fprintf (stderr, "qpin run: '%s': command not found\n", binary);
  return 127;
}

static int
spawn_error_status (const char *binary, const GError *error)
{
  if (g_error_matches (error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT))
    {
      fprintf (stderr, "qpin run: '%s': command not found\n", binary);
      return 127;
    }
  fprintf (stderr, "qpin run: cannot run '%s': %s\n", binary, error->message);
  return 126;
}

typedef struct {
  QpinPlacementOptions placement; /* --config, --policy */
  char *name, *daemon_socket, *control_path, *report_path;
  gint timeout_ms;
  gint interval_ms;
  gboolean verbose;
} RunOptions;

/* Under a daemon, the daemon's configuration places and schedules the VM
 * (as every VM it manages): qpin run's own --config and --policy would
 * otherwise be dropped without a word. */
static void
warn_own_policy_ignored (const RunOptions *o, const char *control_path)
{
  g_autoptr (GString) ignored = g_string_new (NULL);

  if (o->placement.config_path)
    g_string_append_printf (ignored, " --config '%s'", o->placement.config_path);
  for (guint i = 0; o->placement.overrides && o->placement.overrides[i]; i++)
    g_string_append_printf (ignored, " --policy '%s'", o->placement.overrides[i]);
  if (ignored->len == 0)
    return;
  fprintf (stderr,
           "qpin run: warning: the qpin daemon at '%s' places and schedules this VM by its "
           "own configuration; ignored:%s\n",
           control_path, ignored->str);
}

static void
run_options_clear (RunOptions *o)
{
  qpin_placement_options_clear (&o->placement);
  g_free (o->name);
  g_free (o->daemon_socket);
  g_free (o->control_path);
  g_free (o->report_path);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RunOptions, run_options_clear)

/* Splits at the first "--": qpin's options before, QEMU's command after.
 * Without "--", QEMU's command starts at the first non-option.
 * @qemu_args: (out) (transfer full) */
static gboolean
parse_options (int argc, char **argv, RunOptions *o, GStrv *qemu_args, GError **error)
{
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &o->name,
      "Guest name: adds -name guest=NAME unless QEMU's arguments have one; picks [vm:NAME]",
      "NAME" },
    { "daemon-socket", 0, 0, G_OPTION_ARG_FILENAME, &o->daemon_socket,
      "The daemon's listen socket (" QPIN_LISTEN_DEFAULT_PATH ")", "PATH" },
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &o->control_path,
      "The daemon's control socket (" QPIN_CONTROL_DEFAULT_PATH ")", "PATH" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &o->timeout_ms,
      "Give up when QEMU is not pinned within MS (30000)", "MS" },
    { "interval", 0, 0, G_OPTION_ARG_INT, &o->interval_ms,
      "Alone: re-check vCPUs and drift every MS besides the kernel's events (1000; 0: only on "
      "events)",
      "MS" },
    { "report", 0, 0, G_OPTION_ARG_FILENAME, &o->report_path,
      "Write the VM as pinned (JSON) to FILE once the guest starts", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
      "Say what qpin does (placement, pins, sched, cont) on stderr", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("-- QEMU [QEMU ARGS...]");
  g_autoptr (GPtrArray) ours = g_ptr_array_new ();
  int split = -1, n;
  char **args;

  g_option_context_set_summary (
    ctx, "Start QEMU paused, pin its threads, then start the guest.\n"
         "Joins the qpin daemon's ledger when one runs; plans alone otherwise.");
  g_option_context_set_main_group (
    ctx, qpin_setup_placement_group (&o->placement, QPIN_PLACEMENT_CONFIG));
  g_option_context_add_main_entries (ctx, entries, NULL);
  for (int i = 1; i < argc && split < 0; i++)
    if (g_str_equal (argv[i], "--"))
      split = i;
  if (split < 0)
    g_option_context_set_strict_posix (ctx, TRUE);
  for (int i = 0; i < (split < 0 ? argc : split); i++)
    g_ptr_array_add (ours, argv[i]);
  g_ptr_array_add (ours, NULL);
  n = (int) ours->len - 1;
  args = (char **) ours->pdata;
  if (!g_option_context_parse (ctx, &n, &args, error))
    return FALSE;
  if (split >= 0 && n > 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "unexpected argument '%s' before '--'", args[1]);
      return FALSE;
    }
  if (split >= 0)
    *qemu_args = g_strdupv (argv + split + 1);
  else
    {
      GStrvBuilder *b = g_strv_builder_new ();
      for (int i = 1; i < n; i++)
        g_strv_builder_add (b, args[i]);
      *qemu_args = g_strv_builder_end (b);
      g_strv_builder_unref (b);
    }
  if ((*qemu_args)[0] == NULL)
    {
      g_clear_pointer (qemu_args, g_strfreev);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "no QEMU command: qpin run [OPTIONS] -- qemu-system-x86_64 ARGS...");
      return FALSE;
    }
  return TRUE;
}

/* Refuses what qpin run cannot do with these QEMU arguments, having
 * said why.  Returns 0, or the exit status. */
static int
check_qemu_args (RunOptions *o, char **qemu_args, QpinRunQemuArgs *qa)
{
  qpin_run_args_scan (qemu_args, qa);
  if (qa->daemonize)
    {
      fprintf (stderr, "qpin run: -daemonize is not supported: qpin run stays QEMU's parent "
                       "to pin it before it runs; run qpin run itself in the background "
                       "(or as a systemd service)\n");
      return 2;
    }
  if (o->name && qa->name && !g_str_equal (o->name, qa->name))
    {
      fprintf (stderr, "qpin run: --name '%s' differs from QEMU's -name '%s'\n", o->name, qa->name);
      return 2;
    }
  return check_binary (qemu_args[0]);
}

/* Joins the qpin daemon when one answers, or plans alone with a registry
 * of its own.  Returns 0, or the exit status having said why. */
static int
choose_mode (Run *r, RunOptions *o, const char *name, const char *daemon_socket)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (QpinConfig) config = NULL;
  g_autoptr (QpinPolicy) policy = NULL; /* only checked: the registry takes the config */
  g_autoptr (JsonNode) status = NULL;

  if (!qpin_setup_load (NULL, o->placement.config_path,
                        (const char *const *) o->placement.overrides, &topo, &config, &error)
      || !(policy = qpin_config_policy_for (config, name, &error)))
    {
      fprintf (stderr, "qpin run: %s\n", error->message);
      return 1;
    }
  status = daemon_status (r->control_path);
  r->daemon_mode = status != NULL;
  if (r->daemon_mode)
    {
      if (!g_file_test (daemon_socket, G_FILE_TEST_EXISTS))
        {
          fprintf (stderr,
                   "qpin run: the qpin daemon answers on '%s' but '%s' does not exist "
                   "(give its listen socket with --daemon-socket)\n",
                   r->control_path, daemon_socket);
          return 1;
        }
      warn_name_clash (status, name);
      warn_own_policy_ignored (o, r->control_path);
      return 0;
    }
  r->registry = qpin_registry_new (g_steal_pointer (&topo), g_steal_pointer (&config),
                                   &(QpinRegistryOptions){ .timeout_ms = r->timeout_ms,
                                                           .interval_ms = (guint) o->interval_ms,
                                                           .enforce = QPIN_ENFORCE_REPAIR },
                                   &error);
  if (r->registry == NULL)
    {
      fprintf (stderr, "qpin run: %s\n", error->message);
      return 1;
    }
  fprintf (stderr,
           "qpin run: no qpin daemon at '%s': planning alone (CPUs are not "
           "reserved against other VMs)\n",
           r->control_path);
  /* as the daemon: new vCPU threads and host CPUs going offline or
   * online are seen when they happen, not at the next --interval */
  qpin_setup_watch (r->registry, NULL);
  return 0;
}

/* Starts QEMU (@argv) and runs the loop until it is pinned and running,
 * or qpin gives up; r->status says how it ended. */
static void
spawn_and_run (Run *r, const char *qemu, GPtrArray *argv)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  guint signals[3];

  signals[0] = g_unix_signal_add (SIGINT, on_sigint, r);
  signals[1] = g_unix_signal_add (SIGTERM, on_sigterm, r);
  signals[2] = g_unix_signal_add (SIGHUP, on_sighup, r);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  r->spawned_us = g_get_real_time ();
  r->qemu = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  if (r->qemu == NULL)
    r->status = spawn_error_status (qemu, error);
  else
    {
      /* NULL when QEMU already exited and was reaped: on_qemu_exit says so */
      const char *id = g_subprocess_get_identifier (r->qemu);

      r->pid = id ? (GPid) atoi (id) : 0;
      g_info ("started QEMU, pid %d", r->pid);
      g_subprocess_wait_async (r->qemu, NULL, on_qemu_exit, r);
      g_socket_listener_accept_async (r->listener, r->cancel, on_accept, r);
      r->timeout_id = g_timeout_add (r->timeout_ms, on_timeout, r);
      g_main_loop_run (r->loop);
    }
  for (guint i = 0; i < G_N_ELEMENTS (signals); i++)
    g_source_remove (signals[i]);
}

static int
run_main (Run *r, RunOptions *o, char **qemu_args)
{
  QpinRunQemuArgs qa = { 0 };
  g_autofree char *qemu_name = NULL; /* QEMU's own -name */
  g_autofree char *dir = NULL, *mon_path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = NULL;
  const char *daemon_socket = o->daemon_socket ? o->daemon_socket : QPIN_LISTEN_DEFAULT_PATH;
  int status_code;

  status_code = check_qemu_args (o, qemu_args, &qa);
  qemu_name = qa.name;
  if (status_code != 0)
    return status_code;
  r->user_paused = qa.paused;
  r->control_path = o->control_path ? o->control_path : QPIN_CONTROL_DEFAULT_PATH;
  r->report_path = o->report_path;
  r->timeout_ms = o->timeout_ms > 0 ? (guint) o->timeout_ms : RUN_DEFAULT_TIMEOUT_MS;
  status_code = choose_mode (r, o, qemu_name ? qemu_name : o->name, daemon_socket);
  if (status_code != 0)
    return status_code;

  dir = g_dir_make_tmp ("qpin-run-XXXXXX", &error); /* mode 0700 */
  if (dir == NULL)
    {
      fprintf (stderr, "qpin run: %s\n", error->message);
      return 1;
    }
  mon_path = g_build_filename (dir, "mon.sock", NULL);
  r->listener = listen_private (mon_path, &error);
  if (r->listener == NULL)
    {
      fprintf (stderr, "qpin run: %s\n", error->message);
      g_rmdir (dir);
      return 1;
    }
  argv = qpin_run_args_build_argv (qemu_args, mon_path, r->daemon_mode ? daemon_socket : NULL,
                                   qemu_name ? NULL : o->name, !qa.paused);
  spawn_and_run (r, qemu_args[0], argv);
  g_cancellable_cancel (r->cancel);
  g_socket_listener_close (r->listener);
  g_unlink (mon_path);
  g_rmdir (dir);
  return r->status;
}

/**
 * qpin_cmd_run:
 *
 * `qpin run [--config F] [--policy K=V]... [--name NAME] [--daemon-socket PATH]
 *  [--control PATH] [--timeout MS] [--interval MS] [--report FILE] -- QEMU [ARGS...]`
 *
 * Returns: QEMU's exit status (128 + signal when it was killed); 1 when
 *   qpin stopped QEMU because it could not be pinned; 2 on bad usage; 126
 *   when the QEMU binary is not an executable file, 127 when it does not
 *   exist.
 */
int
qpin_cmd_run (int argc, char **argv)
{
  g_auto (RunOptions) o = { .timeout_ms = RUN_DEFAULT_TIMEOUT_MS, .interval_ms = 1000 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_auto (GStrv) qemu_args = NULL;
  Run r = { 0 };
  guint handler;
  int status;

  if (!parse_options (argc, argv, &o, &qemu_args, &error))
    {
      fprintf (stderr, "qpin run: %s\n", error->message);
      return 2;
    }
  if (o.interval_ms < 0)
    {
      fprintf (stderr, "qpin run: --interval must be 0 or more\n");
      return 2;
    }
  r.loop = loop;
  r.cancel = cancel;
  r.verbose = o.verbose;
  handler = g_log_set_handler (G_LOG_DOMAIN, G_LOG_LEVEL_MASK, on_log, &r);
  status = run_main (&r, &o, qemu_args);

  if (r.kill_id)
    g_source_remove (r.kill_id);
  clear_sources (&r);
  if (r.registry)
    qpin_registry_set_hooks (r.registry, NULL, NULL, NULL);
  if (r.client)
    {
      g_signal_handlers_disconnect_by_data (r.client, &r);
      qpin_qmp_client_close (r.client);
    }
  g_clear_pointer (&r.registry, qpin_registry_free);
  g_clear_object (&r.client);
  g_clear_object (&r.listener);
  g_clear_object (&r.qemu);
  g_clear_pointer (&r.vm, json_object_unref);
  g_free (r.stop_reason);
  g_free (r.run_state);
  g_log_remove_handler (G_LOG_DOMAIN, handler);
  return status;
}
