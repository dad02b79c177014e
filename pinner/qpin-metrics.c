/* qpin-metrics.c: the /metrics endpoint and the per-thread, per-CPU series */

#include "qpin-metrics.h"
#include "qpin-http.h"
#include "qpin-module.h"
#include "qpin-proc.h"
#include "qpin-registry-metrics.h"

#include <math.h>

struct _QpinMetrics {
  QpinRegistry *registry; /* not owned: outlives the metrics */
  QpinSampler *sampler;
  QpinHttp *http;
  QpinHttpStop stop;
};

/**
 * qpin_metrics_escape:
 *
 * A label value as the text format wants it: backslash, double quote and
 * newline escaped (VM names come from QEMU's -name, untrusted).
 *
 * Returns: (transfer full): the escaped value
 */
char *
qpin_metrics_escape (const char *value)
{
  GString *s = g_string_sized_new (strlen (value) + 2);

  for (const char *p = value; *p; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (s, '\\');
      if (*p == '\n')
        g_string_append (s, "\\n");
      else
        g_string_append_c (s, *p);
    }
  return g_string_free (s, FALSE);
}

typedef struct {
  const char *name, *type, *help;
  /* FALSE: the thread has no such value (no PMU, no schedstat...) */
  gboolean (*get) (const QpinThreadStats *t, GString *out);
} ThreadFamily;

static void
put_ns (GString *out, guint64 ns)
{
  g_string_append_printf (out, "%" G_GUINT64_FORMAT ".%09" G_GUINT64_FORMAT, ns / 1000000000,
                          ns % 1000000000);
}

static gboolean
get_cpu (const QpinThreadStats *t, GString *out)
{
  put_ns (out, t->total_cpu_ns);
  return TRUE;
}

static gboolean
get_guest (const QpinThreadStats *t, GString *out)
{
  put_ns (out, t->total_guest_ns);
  return TRUE;
}

static gboolean
get_wait (const QpinThreadStats *t, GString *out)
{
  if (t->has_wait)
    put_ns (out, t->total_wait_ns);
  return t->has_wait;
}

static gboolean
get_migrations (const QpinThreadStats *t, GString *out)
{
  if (t->has_migrations)
    g_string_append_printf (out, "%" G_GUINT64_FORMAT, t->total_migrations);
  return t->has_migrations;
}

static gboolean
get_last_cpu (const QpinThreadStats *t, GString *out)
{
  g_string_append_printf (out, "%d", t->cpu);
  return t->cpu >= 0;
}

static gboolean
get_off_plan (const QpinThreadStats *t, GString *out)
{
  g_string_append_printf (out, "%d", t->off_plan);
  return t->has_plan;
}

static gboolean
get_cycles (const QpinThreadStats *t, GString *out)
{
  g_string_append_printf (out, "%" G_GUINT64_FORMAT, t->total_cycles);
  return t->has_pmu;
}

static gboolean
get_instructions (const QpinThreadStats *t, GString *out)
{
  g_string_append_printf (out, "%" G_GUINT64_FORMAT, t->total_instructions);
  return t->has_pmu;
}

static gboolean
get_llc_misses (const QpinThreadStats *t, GString *out)
{
  g_string_append_printf (out, "%" G_GUINT64_FORMAT, t->total_llc_misses);
  return t->has_pmu;
}

static const ThreadFamily thread_families[] = {
  { "qpin_thread_cpu_seconds_total", "counter", "CPU time the thread ran (user + system).",
    get_cpu },
  { "qpin_thread_guest_seconds_total", "counter", "Time the thread ran a guest (KVM).", get_guest },
  { "qpin_thread_wait_seconds_total", "counter", "Time the thread waited runnable on a run queue.",
    get_wait },
  { "qpin_thread_migrations_total", "counter", "Moves of the thread between host CPUs.",
    get_migrations },
  { "qpin_thread_last_cpu", "gauge", "The host CPU the thread last ran on.", get_last_cpu },
  { "qpin_thread_off_plan", "gauge", "1 when the thread may run or ran outside its planned CPUs.",
    get_off_plan },
  { "qpin_thread_cycles_total", "counter", "CPU cycles of the vCPU thread (PMU).", get_cycles },
  { "qpin_thread_instructions_total", "counter", "Instructions of the vCPU thread (PMU).",
    get_instructions },
  { "qpin_thread_llc_misses_total", "counter", "Last-level cache misses of the vCPU thread (PMU).",
    get_llc_misses },
};

/* `vm="..",role="..",index=".."` of each thread, made once per scrape */
static GPtrArray *
thread_labels (GPtrArray *threads)
{
  GPtrArray *labels = g_ptr_array_new_full (threads->len, g_free);

  for (guint i = 0; i < threads->len; i++)
    {
      const QpinThreadStats *t = g_ptr_array_index (threads, i);
      g_autofree char *vm = qpin_metrics_escape (t->vm);

      g_ptr_array_add (labels, g_strdup_printf ("vm=\"%s\",role=\"%s\",index=\"%d\"", vm,
                                                qpin_thread_role_to_string (t->role), t->index));
    }
  return labels;
}

static void
write_family (GString *out, const ThreadFamily *f, GPtrArray *threads, GPtrArray *labels)
{
  gsize header = out->len;
  gboolean any = FALSE;

  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
  for (guint i = 0; i < threads->len; i++)
    {
      const QpinThreadStats *t = g_ptr_array_index (threads, i);
      gsize start = out->len;

      if (t->gone)
        continue;
      g_string_append (out, f->name);
      g_string_append_c (out, '{');
      g_string_append (out, g_ptr_array_index (labels, i));
      g_string_append (out, "} ");
      if (!f->get (t, out))
        {
          g_string_truncate (out, start);
          continue;
        }
      g_string_append_c (out, '\n');
      any = TRUE;
    }
  /* a family no thread has (no PMU here) is left out whole */
  if (!any)
    g_string_truncate (out, header);
}

static void
write_switches (GString *out, GPtrArray *threads, GPtrArray *labels)
{
  g_string_append (out, "# HELP qpin_thread_context_switches_total Context switches of the "
                        "thread, by kind.\n# TYPE qpin_thread_context_switches_total counter\n");
  for (guint i = 0; i < threads->len; i++)
    {
      const QpinThreadStats *t = g_ptr_array_index (threads, i);
      for (guint k = 0; !t->gone && k < 2; k++)
        g_string_append_printf (out,
                                "qpin_thread_context_switches_total{%s,kind=\"%s\"} "
                                "%" G_GUINT64_FORMAT "\n",
                                (const char *) g_ptr_array_index (labels, i),
                                k ? "involuntary" : "voluntary", k ? t->total_icsw : t->total_vcsw);
    }
}

static void
write_cpus (GString *out, GArray *cpus)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (out, "# HELP qpin_cpu_busy_seconds_total Time the host CPU was busy (not "
                        "idle or iowait).\n# TYPE qpin_cpu_busy_seconds_total counter\n");
  for (guint i = 0; i < cpus->len; i++)
    {
      const QpinCpuStats *c = &g_array_index (cpus, QpinCpuStats, i);
      g_string_append_printf (out, "qpin_cpu_busy_seconds_total{cpu=\"%d\"} %s\n", c->cpu,
                              g_ascii_formatd (buf, sizeof buf, "%.2f", c->total_busy_s));
    }
  g_string_append (out, "# HELP qpin_cpu_interrupts_total Interrupts the host CPU took.\n"
                        "# TYPE qpin_cpu_interrupts_total counter\n");
  for (guint i = 0; i < cpus->len; i++)
    {
      const QpinCpuStats *c = &g_array_index (cpus, QpinCpuStats, i);
      g_string_append_printf (out, "qpin_cpu_interrupts_total{cpu=\"%d\"} %" G_GUINT64_FORMAT "\n",
                              c->cpu, c->total_irqs);
    }
}

/**
 * qpin_metrics_write_threads:
 *
 * Appends the series of @sampler's threads (as of its last sample) to @out.
 */
void
qpin_metrics_write_threads (QpinSampler *sampler, GString *out)
{
  GPtrArray *threads = qpin_sampler_get_threads (sampler);
  g_autoptr (GPtrArray) labels = thread_labels (threads);

  for (guint i = 0; i < G_N_ELEMENTS (thread_families); i++)
    {
      write_family (out, &thread_families[i], threads, labels);
      if (i == 3)
        write_switches (out, threads, labels);
    }
}

/**
 * qpin_metrics_write_cpus:
 *
 * Appends the series of the host CPUs (as of @sampler's last sample).
 */
void
qpin_metrics_write_cpus (QpinSampler *sampler, GString *out)
{
  write_cpus (out, qpin_sampler_get_cpus (sampler));
}

/**
 * qpin_metrics_render:
 * @now_ns: monotonic time of this sample
 *
 * Makes @sampler watch the registry's threads, samples them and the host
 * CPUs now, and renders every series.
 *
 * Returns: (transfer full): the exposition text
 */
char *
qpin_metrics_render (QpinRegistry *registry, QpinSampler *sampler, gint64 now_ns)
{
  GString *out = g_string_sized_new (16384);
  g_autoptr (GError) error = NULL;

  qpin_registry_metrics_sync (registry, sampler);
  if (!qpin_sampler_sample (sampler, now_ns, &error))
    g_warning ("metrics: %s", error->message); /* the registry's series still hold */
  qpin_metrics_write_threads (sampler, out);
  qpin_registry_metrics_write (registry, out);
  if (error == NULL)
    qpin_metrics_write_cpus (sampler, out);
  return g_string_free (out, FALSE);
}

static char *
on_scrape (gpointer data)
{
  QpinMetrics *m = data;

  return qpin_metrics_render (m->registry, m->sampler, g_get_monotonic_time () * 1000);
}

/**
 * qpin_metrics_parse_address:
 * @text: "ADDR:PORT" with a literal IPv4 address, or "[IPv6]:PORT"
 *
 * No names are resolved: metrics are bound only where asked.
 *
 * Returns: (transfer full): the address; %NULL with an error saying why
 */
GSocketAddress *
qpin_metrics_parse_address (const char *text, GError **error)
{
  g_autoptr (GSocketConnectable) parsed = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  GNetworkAddress *na;

  parsed = g_network_address_parse (text, 0, NULL);
  na = parsed ? G_NETWORK_ADDRESS (parsed) : NULL;
  if (na == NULL || g_network_address_get_port (na) == 0
      || !(inet = g_inet_address_new_from_string (g_network_address_get_hostname (na))))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "--metrics '%s': expected ADDR:PORT with an IP address and a port "
                   "(127.0.0.1:9101, [::1]:9101)",
                   text);
      return NULL;
    }
  return g_inet_socket_address_new (inet, g_network_address_get_port (na));
}

/**
 * qpin_metrics_new:
 * @registry: (transfer none): must outlive the result
 * @address: "ADDR:PORT"
 *
 * Listens on @address and serves /metrics from the main loop.
 *
 * Returns: (transfer full): the server; %NULL when the address is bad or
 *   cannot be bound (in use, not local)
 */
QpinMetrics *
qpin_metrics_new (QpinRegistry *registry, const char *address, GError **error)
{
  g_autoptr (GSocketAddress) addr = qpin_metrics_parse_address (address, error);
  g_autoptr (QpinMetrics) m = NULL;
  g_autoptr (GError) local = NULL;
  QpinHttpServe serve;
  QpinHttpStop stop;

  if (addr == NULL)
    return NULL;
  serve = qpin_module_symbol ("qpin-http", "qpin_http_serve", &local);
  if (serve == NULL || !(stop = qpin_module_symbol ("qpin-http", "qpin_http_stop", &local)))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "cannot serve metrics: %s",
                   local->message);
      return NULL;
    }
  m = g_new0 (QpinMetrics, 1);
  m->registry = registry;
  m->sampler = qpin_sampler_new (NULL);
  m->stop = stop;
  m->http
    = serve (addr, "/metrics", "text/plain; version=0.0.4; charset=utf-8", on_scrape, m, &local);
  if (m->http == NULL)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "cannot serve metrics on '%s': %s", address, local->message);
      return NULL;
    }
  g_info ("serving metrics on http://%s/metrics", address);
  return g_steal_pointer (&m);
}

/**
 * qpin_metrics_free:
 *
 * Stops serving and frees the sampler.
 */
void
qpin_metrics_free (QpinMetrics *metrics)
{
  if (metrics == NULL)
    return;
  if (metrics->http)
    metrics->stop (metrics->http);
  qpin_sampler_free (metrics->sampler);
  g_free (metrics);
}
