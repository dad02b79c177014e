/* qpin-cmd-inspect.c: `qpin inspect SOCKET`: show a QEMU's threads
 *
 * read: QMP (name, status, vCPUs, iothreads) and /proc; decide: roles;
 * print: a table or the shared JSON shape.  Changes nothing.
 */

#include <stdio.h>

#include "qpin-commands.h"
#include "qpin-json.h"
#include "qpin-proc.h"
#include "qpin-qmp-client.h"
#include "qpin-qmp-types.h"
#include "qpin-text.h"
#include "qpin-vm-threads.h"

typedef struct {
  char *name;
  char *status;
  char *qemu_version;
  GPid pid;
  gboolean shared_vcpu_thread;
  GPtrArray *threads; /* QpinVmThread */
  GArray *tasks;      /* QpinTaskInfo, parallel to threads; tid 0 when gone */
  GPtrArray *refused; /* messages */
} Snapshot;

static void
snapshot_free (Snapshot *s)
{
  g_free (s->name);
  g_free (s->status);
  g_free (s->qemu_version);
  g_clear_pointer (&s->threads, g_ptr_array_unref);
  g_clear_pointer (&s->tasks, g_array_unref);
  g_clear_pointer (&s->refused, g_ptr_array_unref);
  g_free (s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Snapshot, snapshot_free)

static char *
qemu_version_of (QpinQmpClient *client)
{
  JsonObject *greeting = qpin_qmp_client_get_greeting (client);
  JsonObject *version, *qemu;

  if (greeting == NULL || !json_object_has_member (greeting, "version"))
    return NULL;
  version = json_object_get_object_member (greeting, "version");
  if (version == NULL || !json_object_has_member (version, "qemu"))
    return NULL;
  qemu = json_object_get_object_member (version, "qemu");
  if (qemu == NULL)
    return NULL;
  return g_strdup_printf ("%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT,
                          json_object_get_int_member_with_default (qemu, "major", 0),
                          json_object_get_int_member_with_default (qemu, "minor", 0),
                          json_object_get_int_member_with_default (qemu, "micro", 0));
}

static Snapshot *
take_snapshot (QpinQmpClient *client, gint64 forced_pid, guint timeout_ms, GError **error)
{
  g_autoptr (Snapshot) s = g_new0 (Snapshot, 1);
  g_autoptr (JsonNode) name = NULL, status = NULL, cpus_ret = NULL, io_ret = NULL;
  g_autoptr (GPtrArray) cpus = NULL, iothreads = NULL;
  g_autoptr (GArray) tids = NULL;
  gboolean running;

  if (!(name = qpin_qmp_client_execute_sync (client, "query-name", NULL, timeout_ms, error))
      || !qpin_qmp_parse_name (name, &s->name, error)
      || !(status = qpin_qmp_client_execute_sync (client, "query-status", NULL, timeout_ms, error))
      || !qpin_qmp_parse_status (status, &s->status, &running, error)
      || !(cpus_ret
           = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, timeout_ms, error))
      || !(cpus = qpin_qmp_parse_cpus_fast (cpus_ret, error))
      || !(io_ret
           = qpin_qmp_client_execute_sync (client, "query-iothreads", NULL, timeout_ms, error))
      || !(iothreads = qpin_qmp_parse_iothreads (io_ret, error)))
    return NULL;

  s->qemu_version = qemu_version_of (client);
  s->shared_vcpu_thread = qpin_qmp_cpus_share_thread (cpus);
  s->pid
    = qpin_vm_threads_resolve_pid (forced_pid, qpin_qmp_client_get_peer_pid (client), cpus, error);
  if (s->pid <= 0 || !(tids = qpin_proc_list_tasks (s->pid, error)))
    return NULL;
  s->threads = qpin_vm_threads_classify (s->pid, cpus, iothreads, tids, &s->refused);

  s->tasks = g_array_sized_new (FALSE, TRUE, sizeof (QpinTaskInfo), s->threads->len);
  g_array_set_size (s->tasks, s->threads->len);
  for (guint i = 0; i < s->threads->len; i++)
    {
      QpinVmThread *t = g_ptr_array_index (s->threads, i);
      QpinTaskInfo *info = &g_array_index (s->tasks, QpinTaskInfo, i);
      g_autoptr (GError) local = NULL;

      if (!qpin_proc_read_task (s->pid, t->tid, info, &local))
        {
          g_debug ("%s", local->message);
          info->tid = 0;
        }
    }
  return g_steal_pointer (&s);
}

static void
add_int_if_set (JsonBuilder *b, const char *name, gint64 value)
{
  if (value < 0)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
print_json (const Snapshot *s)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  qpin_json_begin_vms (b);
  qpin_json_begin_vm (b, s->name, s->pid);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, s->status);
  if (s->qemu_version)
    {
      json_builder_set_member_name (b, "qemu");
      json_builder_add_string_value (b, s->qemu_version);
    }
  json_builder_set_member_name (b, "shared_vcpu_thread");
  json_builder_add_boolean_value (b, s->shared_vcpu_thread);
  qpin_json_begin_threads (b);
  for (guint i = 0; i < s->threads->len; i++)
    {
      QpinVmThread *t = g_ptr_array_index (s->threads, i);
      QpinTaskInfo *info = &g_array_index (s->tasks, QpinTaskInfo, i);
      g_autofree char *cpus = NULL;

      qpin_json_begin_thread (b, t->role, t->index, t->tid);
      json_builder_set_member_name (b, "cpus");
      if (info->tid)
        {
          cpus = qpin_cpuset_format (&info->affinity);
          json_builder_add_string_value (b, cpus);
          json_builder_set_member_name (b, "cpu");
          json_builder_add_int_value (b, info->cpu);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, info->comm);
        }
      else
        {
          json_builder_add_null_value (b);
          json_builder_set_member_name (b, "gone");
          json_builder_add_boolean_value (b, TRUE);
        }
      if (t->id)
        {
          json_builder_set_member_name (b, t->role == QPIN_ROLE_VCPU ? "qom-path" : "id");
          json_builder_add_string_value (b, t->id);
        }
      if (t->role == QPIN_ROLE_VCPU)
        {
          json_builder_set_member_name (b, "props");
          json_builder_begin_object (b);
          add_int_if_set (b, "node-id", t->topo.node);
          add_int_if_set (b, "socket-id", t->topo.socket);
          add_int_if_set (b, "die-id", t->topo.die);
          add_int_if_set (b, "cluster-id", t->topo.cluster);
          add_int_if_set (b, "core-id", t->topo.core);
          add_int_if_set (b, "thread-id", t->topo.thread);
          json_builder_end_object (b);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "refused");
  json_builder_begin_array (b);
  for (guint i = 0; i < s->refused->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (s->refused, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static char *
topology_text (const QpinVmThread *t)
{
  GString *s = g_string_new (NULL);
  const struct {
    const char *name;
    gint64 value;
  } parts[] = {
    { "node", t->topo.node },       { "socket", t->topo.socket }, { "die", t->topo.die },
    { "cluster", t->topo.cluster }, { "core", t->topo.core },     { "thread", t->topo.thread },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
    if (parts[i].value >= 0)
      g_string_append_printf (s, "%s%s=%" G_GINT64_FORMAT, s->len ? " " : "", parts[i].name,
                              parts[i].value);
  return g_string_free (s, FALSE);
}

/* What the peer names (itself, its status, its threads) is escaped: it
 * must not split or recolour the table. */
static void
print_table (const Snapshot *s)
{
  g_autofree char *key
    = s->name && *s->name ? qpin_text_escape (s->name) : g_strdup_printf ("pid-%d", s->pid);
  g_autofree char *status = qpin_text_escape (s->status);
  g_autofree char *version = qpin_text_escape (s->qemu_version);

  /* an unnamed VM is called by its key, as the daemon calls it */
  printf ("vm '%s' pid %d status %s%s%s%s\n", key, s->pid, status, s->qemu_version ? " qemu " : "",
          version,
          s->shared_vcpu_thread ? " (all vCPUs share one thread: single-threaded TCG)" : "");
  printf ("%-9s %5s %8s %4s %-16s %-16s %s\n", "ROLE", "INDEX", "TID", "CPU", "AFFINITY", "NAME",
          "GUEST TOPOLOGY");
  for (guint i = 0; i < s->threads->len; i++)
    {
      QpinVmThread *t = g_ptr_array_index (s->threads, i);
      QpinTaskInfo *info = &g_array_index (s->tasks, QpinTaskInfo, i);
      g_autofree char *cpus = info->tid ? qpin_cpuset_format (&info->affinity) : g_strdup ("gone");
      g_autofree char *topo = topology_text (t);
      g_autofree char *comm = qpin_text_escape (info->comm);
      g_autofree char *id = qpin_text_escape (t->id);
      g_autofree char *name = NULL;

      if (t->role == QPIN_ROLE_IOTHREAD)
        name = g_strdup_printf ("%s [%s]", comm, id);
      else
        name = g_steal_pointer (&comm);
      printf ("%-9s %5d %8d %4d %-16s %-16s %s\n", qpin_thread_role_to_string (t->role), t->index,
              t->tid, info->tid ? info->cpu : -1, cpus, name, topo);
    }
}

/**
 * qpin_cmd_inspect:
 *
 * `qpin inspect SOCKET [--json] [--pid PID] [--timeout MS]`
 */
int
qpin_cmd_inspect (int argc, char **argv)
{
  gboolean json = FALSE;
  gint64 pid = 0;
  gint timeout_ms = QPIN_QMP_DEFAULT_TIMEOUT_MS;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "pid", 0, 0, G_OPTION_ARG_INT64, &pid, "QEMU's pid, for tcp: monitors (unix sockets tell it)",
      "PID" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_ms, "Give up after MS milliseconds (5000)",
      "MS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("SOCKET");
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpClient) client = NULL;
  g_autoptr (Snapshot) snapshot = NULL;

  g_option_context_set_summary (ctx, "Show every thread of a running QEMU: role, vCPU index, TID,\n"
                                     "guest topology, current host CPU and affinity.\n"
                                     "SOCKET is a QMP unix socket path or tcp:HOST:PORT.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "qpin inspect: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || timeout_ms <= 0)
    {
      fprintf (stderr, "qpin inspect: %s\n",
               argc != 2 ? "expected one SOCKET argument" : "--timeout must be positive");
      return 2;
    }

  client = qpin_qmp_client_connect_sync (argv[1], (guint) timeout_ms, &error);
  if (client)
    snapshot = take_snapshot (client, pid, (guint) timeout_ms, &error);
  if (snapshot == NULL)
    {
      fprintf (stderr, "qpin inspect: %s: %s\n", argv[1], error->message);
      return 1;
    }
  for (guint i = 0; i < snapshot->refused->len; i++)
    fprintf (stderr, "qpin inspect: %s: refused: %s\n", argv[1],
             (const char *) g_ptr_array_index (snapshot->refused, i));
  if (json)
    print_json (snapshot);
  else
    print_table (snapshot);
  qpin_qmp_client_close (client);
  return 0;
}
