/* qpin-cmd-daemon.c: `qpin daemon`: pin many QEMUs, keep them pinned */

#include <gio/gio.h>
#include <glib-unix.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "qpin-commands.h"
#include "qpin-control.h"
#include "qpin-daemon.h"
#include "qpin-irq.h"
#include "qpin-metrics.h"
#include "qpin-setup.h"
#include "qpin-sockets.h"

typedef struct {
  GMainLoop *loop;
  QpinDaemon *daemon;
} Daemon;

static gboolean
on_quit (gpointer user_data)
{
  Daemon *d = user_data;

  g_message ("stopping; pins stay as they are");
  g_main_loop_quit (d->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_hangup (gpointer user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;

  if (!qpin_daemon_reload (d->daemon, &error))
    g_warning ("reload failed, keeping the running configuration: %s", error->message);
  qpin_daemon_rescan (d->daemon);
  qpin_daemon_check_sockets (d->daemon);
  return G_SOURCE_CONTINUE;
}

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void
notify_ready (void)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  const char *msg = "READY=1";
  socklen_t len;
  int fd;

  if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen (path) >= sizeof addr.sun_path)
    return;
  memcpy (addr.sun_path, path, strlen (path));
  if (path[0] == '@')
    addr.sun_path[0] = '\0';
  len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + strlen (path));
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  if (sendto (fd, msg, strlen (msg), 0, (struct sockaddr *) &addr, len) < 0)
    g_warning ("cannot notify systemd: %s", g_strerror (errno));
  close (fd);
}

/* Runs @daemon until SIGINT or SIGTERM (SIGHUP reloads); systemd hears
 * it is ready first.  IRQs it steered are given back at the end. */
static void
serve (QpinDaemon *daemon)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Daemon d = { .loop = loop, .daemon = daemon };
  guint sources[3];

  sources[0] = g_unix_signal_add (SIGINT, on_quit, &d);
  sources[1] = g_unix_signal_add (SIGTERM, on_quit, &d);
  sources[2] = g_unix_signal_add (SIGHUP, on_hangup, &d);
  notify_ready ();
  g_main_loop_run (loop);
  qpin_irq_steer_stop ();
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    g_source_remove (sources[i]);
}

/**
 * qpin_cmd_daemon:
 *
 * `qpin daemon [--config F] [--policy K=V]... [--listen PATH] [--watch DIR]
 *  [--control PATH] [--interval MS] [--enforce MODE] [--grace MS] [--metrics ADDR:PORT]
 *  [--dry-run]`
 */
int
qpin_cmd_daemon (int argc, char **argv)
{
  g_autofree char *listen_path = NULL, *watch_dir = NULL, *control_path = NULL;
  g_autofree char *metrics_address = NULL;
  g_auto (QpinPlacementOptions) p = { .timeout_ms = QPIN_QMP_DEFAULT_TIMEOUT_MS };
  gboolean dry_run = FALSE, no_listen = FALSE;
  gint interval_ms = 1000, grace_ms = 1500;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_FILENAME, &listen_path,
      "Socket QEMUs connect to (" QPIN_LISTEN_DEFAULT_PATH ")", "PATH" },
    { "no-listen", 0, 0, G_OPTION_ARG_NONE, &no_listen, "Do not listen for QEMUs", NULL },
    { "watch", 0, 0, G_OPTION_ARG_FILENAME, &watch_dir, "Directory of QMP server sockets", "DIR" },
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &control_path,
      "Control socket (" QPIN_CONTROL_DEFAULT_PATH ")", "PATH" },
    { "interval", 0, 0, G_OPTION_ARG_INT, &interval_ms,
      "Re-check vCPUs and drift every MS (1000; 0: only on events)", "MS" },
    { "grace", 0, 0, G_OPTION_ARG_INT, &grace_ms,
      "At start, let running VMs reconnect for MS before placing (1500)", "MS" },
    { "metrics", 0, 0, G_OPTION_ARG_STRING, &metrics_address,
      "Serve Prometheus metrics at http://ADDR:PORT/metrics (off)", "ADDR:PORT" },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "Plan and record, never pin", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (QpinConfig) config = NULL;
  g_autoptr (QpinRegistry) registry = NULL;
  g_autoptr (QpinDaemon) daemon = NULL;
  g_autoptr (QpinMetrics) metrics = NULL;
  QpinRegistryOptions options = { 0 };
  QpinDaemonOptions dopts = { 0 };

  g_option_context_set_summary (ctx, "Pin the threads of many QEMUs and keep them pinned.");
  g_option_context_set_main_group (
    ctx, qpin_setup_placement_group (&p, QPIN_PLACEMENT_CONFIG | QPIN_PLACEMENT_TOPOLOGY
                                           | QPIN_PLACEMENT_TIMEOUT | QPIN_PLACEMENT_ENFORCE));
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "qpin daemon: %s\n", error->message);
      return 2;
    }
  if (argc != 1 || interval_ms < 0 || grace_ms < 0 || p.timeout_ms <= 0)
    {
      fprintf (stderr, "qpin daemon: %s\n",
               argc != 1 ? "unexpected argument" : "negative --interval, --grace or --timeout");
      return 2;
    }
  options.dry_run = dry_run;
  options.timeout_ms = (guint) p.timeout_ms;
  options.interval_ms = (guint) interval_ms;
  options.check_owner = TRUE;
  if (!qpin_setup_parse_enforce (p.enforce, &options.enforce, &error)
      || !qpin_setup_check_topology (p.topology, dry_run, &error))
    {
      fprintf (stderr, "qpin daemon: %s\n", error->message);
      return 2;
    }

  if (!qpin_setup_load (p.topology, p.config_path, (const char *const *) p.overrides, &topo,
                        &config, &error)
      || !qpin_irq_steer_configure (config, dry_run,
                                    control_path ? control_path : QPIN_CONTROL_DEFAULT_PATH)
      || !(registry = qpin_registry_new (g_steal_pointer (&topo), g_steal_pointer (&config),
                                         &options, &error)))
    {
      fprintf (stderr, "qpin daemon: %s\n", error->message);
      return 1;
    }
  qpin_setup_watch (registry, p.topology);
  dopts.listen_path = no_listen ? NULL : listen_path ? listen_path : QPIN_LISTEN_DEFAULT_PATH;
  dopts.watch_dir = watch_dir;
  dopts.control_path = control_path ? control_path : QPIN_CONTROL_DEFAULT_PATH;
  dopts.config_path = p.config_path;
  dopts.overrides = (const char *const *) p.overrides;
  dopts.grace_ms = (guint) grace_ms;
  dopts.timeout_ms = (guint) p.timeout_ms;
  /* one file per connection in its handshake: at most an eighth of them */
  dopts.max_pending = (guint) CLAMP (qpin_sockets_raise_nofile () / 8, 4, 256);
  /* before any socket is made: a metrics port in use fails the start */
  if ((metrics_address && !(metrics = qpin_metrics_new (registry, metrics_address, &error)))
      || !(daemon = qpin_daemon_new (registry, &dopts, &error)))
    {
      fprintf (stderr, "qpin daemon: %s\n", error->message);
      return 1;
    }

  serve (daemon);
  return 0;
}
