/* qpin-cmd-top.c: `qpin top`: live per-thread statistics of VMs
 *
 * read: the VMs (daemon, QMP sockets or pids) and the sampler; print: a
 * live ncurses view, or with -b plain tables or JSON documents.
 */

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "qpin-commands.h"
#include "qpin-control.h"
#include "qpin-module.h"
#include "qpin-qmp-client.h"
#include "qpin-top.h"

typedef struct {
  gboolean batch;
  gboolean json;
  gboolean no_pmu;
  double delay_s;
  gint64 iterations; /* 0: until interrupted */
  gint timeout_ms;
} TopOptions;

static void
print_batch (QpinSampler *sampler, GPtrArray *vms, const QpinTopSource *source,
             const TopOptions *opt)
{
  const char *note = qpin_sampler_get_pmu_note (sampler);
  g_autofree char *header = NULL, *titles = NULL;
  g_autoptr (GPtrArray) rows = NULL;

  if (opt->json)
    {
      g_autoptr (JsonNode) doc = qpin_top_to_json (sampler, vms);
      g_autofree char *text = json_to_string (doc, FALSE);
      printf ("%s\n", text);
      fflush (stdout);
      return;
    }
  header = qpin_top_header (sampler, vms, source);
  titles = qpin_top_column_titles (note == NULL);
  rows = qpin_top_rows (sampler, vms, QPIN_TOP_SORT_CPU, NULL, note == NULL);
  printf ("%s\n", header);
  if (note)
    printf ("%s\n", note);
  printf ("%s\n", titles);
  for (guint i = 0; i < rows->len; i++)
    printf ("%s\n", ((QpinTopRow *) g_ptr_array_index (rows, i))->text);
  printf ("\n");
  fflush (stdout);
}

static gboolean
sample_now (QpinSampler *sampler, const QpinTopSource *source, GHashTable *reported,
            GPtrArray **vms, GError **error)
{
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);

  if (!qpin_top_refresh (sampler, source, reported, vms, problems, error))
    return FALSE;
  for (guint i = 0; i < problems->len; i++)
    fprintf (stderr, "qpin top: %s\n", (const char *) g_ptr_array_index (problems, i));
  return TRUE;
}

static int
run_batch (QpinSampler *sampler, const QpinTopSource *source, const TopOptions *opt)
{
  g_autoptr (GHashTable) reported = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) vms = NULL;
  g_autoptr (GError) error = NULL;

  if (!sample_now (sampler, source, reported, &vms, &error))
    {
      fprintf (stderr, "qpin top: %s\n", error->message);
      return 1;
    }
  for (gint64 i = 0; opt->iterations == 0 || i < opt->iterations; i++)
    {
      g_usleep ((gulong) (opt->delay_s * G_USEC_PER_SEC));
      if (!sample_now (sampler, source, reported, &vms, &error))
        {
          fprintf (stderr, "qpin top: %s\n", error->message);
          return 1;
        }
      print_batch (sampler, vms, source, opt);
    }
  return 0;
}

static gboolean
parse_pids (char **texts, GArray *pids, GError **error)
{
  for (guint i = 0; texts && texts[i]; i++)
    {
      g_auto (GStrv) parts = g_strsplit (texts[i], ",", -1);
      for (guint j = 0; parts[j]; j++)
        {
          guint64 v;
          GPid pid;
          if (!g_ascii_string_to_unsigned (parts[j], 10, 1, G_MAXINT, &v, NULL))
            {
              g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--pid: '%s' is not a process id", parts[j]);
              return FALSE;
            }
          pid = (GPid) v;
          g_array_append_val (pids, pid);
        }
    }
  return TRUE;
}

static gboolean
check_options (int argc, const TopOptions *opt, const char *control, char **pid_texts,
               GError **error)
{
  const char *why = NULL;

  if (!(opt->delay_s >= 0.1 && opt->delay_s <= 3600))
    why = "-d/--delay must be between 0.1 and 3600 seconds";
  else if (opt->iterations < 0)
    why = "-n/--iterations must not be negative";
  else if (opt->json && !opt->batch)
    why = "--json needs -b/--batch";
  else if (opt->timeout_ms <= 0)
    why = "--timeout must be positive";
  else if (argc > 1 && pid_texts)
    why = "give SOCKET arguments or --pid, not both";
  else if (control && (argc > 1 || pid_texts))
    why = "--control names the daemon: not with SOCKET arguments or --pid";
  if (why)
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s", why);
  return why == NULL;
}

/**
 * qpin_cmd_top:
 *
 * `qpin top [-b] [-d SECS] [-n N] [--json] [--no-pmu] [--control PATH |
 * --pid PID... | SOCKET...]`
 */
int
qpin_cmd_top (int argc, char **argv)
{
  TopOptions opt = { .delay_s = 2.0, .timeout_ms = QPIN_QMP_DEFAULT_TIMEOUT_MS };
  g_autofree char *control = NULL;
  g_auto (GStrv) pid_texts = NULL;
  GOptionEntry entries[] = {
    { "batch", 'b', 0, G_OPTION_ARG_NONE, &opt.batch, "Print plain tables, no live view", NULL },
    { "delay", 'd', 0, G_OPTION_ARG_DOUBLE, &opt.delay_s, "Refresh every SECS seconds (2)",
      "SECS" },
    { "iterations", 'n', 0, G_OPTION_ARG_INT64, &opt.iterations,
      "Stop after N refreshes (0: never)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt.json, "With -b: one JSON document per line", NULL },
    { "no-pmu", 0, 0, G_OPTION_ARG_NONE, &opt.no_pmu, "Do not open hardware counters", NULL },
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &control,
      "The daemon's control socket (" QPIN_CONTROL_DEFAULT_PATH ")", "PATH" },
    { "pid", 0, 0, G_OPTION_ARG_STRING_ARRAY, &pid_texts,
      "Watch QEMU process PID without a daemon (repeatable, or PID,PID)", "PID" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &opt.timeout_ms,
      "Give up on a QMP socket after MS milliseconds (5000)", "MS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("[SOCKET...]");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr (QpinSampler) sampler = NULL;
  QpinTopSource source = { 0 };
  QpinTopViewRun view_run;

  g_option_context_set_summary (
    ctx, "Per-thread CPU, guest time, run-queue wait, migrations, context switches and,\n"
         "where the host has a PMU, IPC and LLC misses of the VMs the daemon manages\n"
         "(or of QMP SOCKETs, or of --pid processes), with their planned CPUs.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)
      || !check_options (argc, &opt, control, pid_texts, &error)
      || !parse_pids (pid_texts, pids, &error))
    {
      fprintf (stderr, "qpin top: %s\n", error->message);
      return 2;
    }
  source.kind = pids->len  ? QPIN_TOP_SOURCE_PIDS
                : argc > 1 ? QPIN_TOP_SOURCE_SOCKETS
                           : QPIN_TOP_SOURCE_DAEMON;
  source.control = control ? control : QPIN_CONTROL_DEFAULT_PATH;
  source.sockets = (const char *const *) argv + 1;
  source.pids = pids;
  source.timeout_ms = (guint) opt.timeout_ms;

  sampler = qpin_sampler_new (NULL);
  if (opt.no_pmu)
    qpin_sampler_set_perf (sampler, NULL, NULL);
  if (opt.batch)
    return run_batch (sampler, &source, &opt);
  /* the live view is the module that links ncursesw (qpin-module.h) */
  view_run = qpin_module_symbol ("qpin-top-view", "qpin_top_view_run", &error);
  if (view_run == NULL
      || !view_run (sampler, &source, (guint) lround (opt.delay_s * 1000), opt.iterations, &error))
    {
      fprintf (stderr, "qpin top: %s\n", error->message);
      return 1;
    }
  return 0;
}
