/* qpin-request.c: requests, and guest shapes as QEMU would number them */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-request.h"

#include <string.h>

#include "qpin-cpuset.h"

/**
 * qpin_request_new:
 *
 * Returns: (transfer full): a request without threads.
 */
QpinRequest *
qpin_request_new (const char *name, gint64 pid)
{
  QpinRequest *r = g_new0 (QpinRequest, 1);

  r->name = g_strdup (name);
  r->pid = pid;
  r->threads = g_array_new (FALSE, TRUE, sizeof (QpinThreadSpec));
  return r;
}

/**
 * qpin_request_free:
 * @request: (nullable): a request
 */
void
qpin_request_free (QpinRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->name);
  g_array_unref (request->threads);
  g_free (request);
}

/**
 * qpin_request_copy:
 *
 * Returns: (transfer full): a deep copy.
 */
QpinRequest *
qpin_request_copy (const QpinRequest *request)
{
  QpinRequest *r = qpin_request_new (request->name, request->pid);
  g_array_append_vals (r->threads, request->threads->data, request->threads->len);
  return r;
}

/**
 * qpin_request_add_thread:
 *
 * Appends a copy of @spec.
 */
void
qpin_request_add_thread (QpinRequest *request, const QpinThreadSpec *spec)
{
  g_array_append_vals (request->threads, spec, 1);
}

/**
 * qpin_thread_spec_vcpu:
 *
 * Returns: a vCPU spec with every guest id unknown (-1).
 */
QpinThreadSpec
qpin_thread_spec_vcpu (guint index)
{
  QpinThreadSpec s = { .role = QPIN_ROLE_VCPU, .index = index, .topo = QPIN_GUEST_TOPO_NONE };
  return s;
}

/**
 * qpin_request_n_vcpus:
 *
 * Returns: the number of vCPU threads.
 */
guint
qpin_request_n_vcpus (const QpinRequest *request)
{
  guint n = 0;
  for (guint i = 0; i < request->threads->len; i++)
    if (g_array_index (request->threads, QpinThreadSpec, i).role == QPIN_ROLE_VCPU)
      n++;
  return n;
}

/**
 * qpin_thread_role_to_string:
 *
 * Returns: (transfer none): "vcpu", "emulator", "iothread" or "other".
 */
const char *
qpin_thread_role_to_string (QpinThreadRole role)
{
  switch (role)
    {
    case QPIN_ROLE_VCPU:
      return "vcpu";
    case QPIN_ROLE_EMULATOR:
      return "emulator";
    case QPIN_ROLE_IOTHREAD:
      return "iothread";
    case QPIN_ROLE_OTHER:
    default:
      return "other";
    }
}

/**
 * qpin_request_new_from_shape:
 *
 * Builds the threads QEMU would have for -smp VCPUS,sockets=S,cores=C,threads=T
 * with N guest NUMA nodes: vCPU i has thread i % T, core (i / T) % C,
 * socket i / (T * C); nodes get whole sockets when S >= N (QEMU's default),
 * otherwise consecutive whole cores.  Missing values are derived (threads 1,
 * sockets 1, cores the rest).  Adds the emulator and @shape->iothreads iothreads.
 *
 * Returns: (transfer full): the request, or NULL with %QPIN_POLICY_ERROR_RANGE
 * when the numbers do not multiply out.
 */
QpinRequest *
qpin_request_new_from_shape (const char *name, const QpinGuestShape *shape, GError **error)
{
  g_autoptr (QpinRequest) r = qpin_request_new (name, 0);
  guint v = shape->vcpus;
  guint t = shape->threads ? shape->threads : 1;
  guint s = shape->sockets ? shape->sockets : 1;
  guint c = shape->cores ? shape->cores : (v / MAX (s * t, 1));
  guint n = shape->nodes ? shape->nodes : 1;
  guint n_cores = s * c;

  if (v == 0 || v > QPIN_CPUSET_MAX || c == 0 || s * c * t != v)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_RANGE,
                   "vm '%s': %u vcpus do not match sockets=%u, cores=%u, threads=%u (%u)", name, v,
                   s, c, t, s * c * t);
      return NULL;
    }
  if (n > n_cores || (s >= n ? s % n : n_cores % n) != 0)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_RANGE,
                   "vm '%s': %u guest nodes do not divide %u sockets or %u cores evenly", name, n,
                   s, n_cores);
      return NULL;
    }
  for (guint i = 0; i < v; i++)
    {
      QpinThreadSpec spec = qpin_thread_spec_vcpu (i);
      guint core_index = i / t;

      spec.topo.thread = (gint) (i % t);
      spec.topo.core = (gint) (core_index % c);
      spec.topo.socket = (gint) (i / (t * c));
      spec.topo.die = 0;
      spec.topo.cluster = 0;
      if (shape->nodes)
        spec.topo.node
          = (gint) (s >= n ? (guint) spec.topo.socket / (s / n) : core_index / (n_cores / n));
      qpin_request_add_thread (r, &spec);
    }
  {
    QpinThreadSpec emu = { .role = QPIN_ROLE_EMULATOR, .topo = QPIN_GUEST_TOPO_NONE };
    qpin_request_add_thread (r, &emu);
  }
  for (guint i = 0; i < shape->iothreads; i++)
    {
      QpinThreadSpec io = { .role = QPIN_ROLE_IOTHREAD, .index = i, .topo = QPIN_GUEST_TOPO_NONE };
      qpin_request_add_thread (r, &io);
    }
  return g_steal_pointer (&r);
}

/**
 * qpin_guest_shape_parse:
 * @text: "NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I]"
 * @name: (out) (transfer full): the VM name
 *
 * Returns: %TRUE on success; %QPIN_POLICY_ERROR_PARSE quoting @text and the
 * accepted syntax otherwise.
 */
gboolean
qpin_guest_shape_parse (const char *text, char **name, QpinGuestShape *shape, GError **error)
{
  static const char accepted[] = "NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I]";
  g_auto (GStrv) parts = g_strsplit (text, ":", 3);
  QpinGuestShape out = { 0 };
  guint64 v;

  if (g_strv_length (parts) < 2 || *parts[0] == '\0'
      || !g_ascii_string_to_unsigned (parts[1], 10, 1, QPIN_CPUSET_MAX, &v, NULL))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE, "--vm '%s': expected %s",
                   text, accepted);
      return FALSE;
    }
  out.vcpus = (guint) v;
  if (parts[2])
    {
      g_auto (GStrv) items = g_strsplit (parts[2], ",", -1);
      for (guint i = 0; items[i]; i++)
        {
          g_auto (GStrv) kv = g_strsplit (items[i], "=", 2);
          guint *dest = NULL;

          if (kv[0] && kv[1])
            {
              if (strcmp (kv[0], "sockets") == 0)
                dest = &out.sockets;
              else if (strcmp (kv[0], "cores") == 0)
                dest = &out.cores;
              else if (strcmp (kv[0], "threads") == 0)
                dest = &out.threads;
              else if (strcmp (kv[0], "nodes") == 0)
                dest = &out.nodes;
              else if (strcmp (kv[0], "iothreads") == 0)
                dest = &out.iothreads;
            }
          if (dest == NULL
              || !g_ascii_string_to_unsigned (kv[1], 10, dest == &out.iothreads ? 0 : 1,
                                              QPIN_CPUSET_MAX, &v, NULL))
            {
              g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                           "--vm '%s': invalid item '%s' (expected %s)", text, items[i], accepted);
              return FALSE;
            }
          *dest = (guint) v;
        }
    }
  *name = g_strdup (parts[0]);
  *shape = out;
  return TRUE;
}
