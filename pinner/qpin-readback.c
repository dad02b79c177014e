/* qpin-readback.c: sched and memory policy as the kernel has them */

#include "qpin-readback.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <sched.h>
#include <string.h>

#include "qpin-cpuset.h"
#include "qpin-proc.h"

/**
 * qpin_readback_sched:
 * @tid: a thread
 *
 * The thread's scheduling policy in the spelling of the `sched` key
 * (`other`, `fifo:PRIO`, `rr:PRIO`), or `batch`, `idle`, `deadline` for
 * classes qpin never sets.
 *
 * Returns: (transfer full): the policy, or NULL with @error set (the
 *   thread is gone: QPIN_PINNER_ERROR_GONE)
 */
char *
qpin_readback_sched (GPid tid, GError **error)
{
  struct sched_param param = { 0 };
  int policy = sched_getscheduler (tid);

  if (policy < 0 || sched_getparam (tid, &param) < 0)
    {
      int saved = errno;
      g_set_error (error, QPIN_PINNER_ERROR,
                   saved == ESRCH ? QPIN_PINNER_ERROR_GONE : QPIN_PINNER_ERROR_FAILED,
                   "cannot read the scheduling policy of thread %d: %s", tid, g_strerror (saved));
      return NULL;
    }
  switch (policy & ~SCHED_RESET_ON_FORK)
    {
    case SCHED_OTHER:
      return g_strdup ("other");
    case SCHED_FIFO:
      return g_strdup_printf ("fifo:%d", param.sched_priority);
    case SCHED_RR:
      return g_strdup_printf ("rr:%d", param.sched_priority);
    case SCHED_BATCH:
      return g_strdup ("batch");
    case SCHED_IDLE:
      return g_strdup ("idle");
#ifdef SCHED_DEADLINE
    case SCHED_DEADLINE:
      return g_strdup ("deadline");
#endif
    default:
      return g_strdup_printf ("policy-%d", policy);
    }
}

/* "N3=120": node 3 holds 120 pages.  FALSE for any other token. */
static gboolean
parse_node_pages (const char *token, guint *node, guint64 *pages)
{
  g_auto (GStrv) kv = NULL;
  guint64 n;

  if (token[0] != 'N' || strchr (token, '=') == NULL)
    return FALSE;
  kv = g_strsplit (token + 1, "=", 2);
  if (!g_ascii_string_to_unsigned (kv[0], 10, 0, QPIN_CPUSET_MAX - 1, &n, NULL)
      || !g_ascii_string_to_unsigned (kv[1], 10, 0, G_MAXUINT64, pages, NULL))
    return FALSE;
  *node = (guint) n;
  return TRUE;
}

/* One line: "ADDRESS POLICY [TOKEN...]"; POLICY may be "prefer (many):NODES". */
static gboolean
parse_numa_line (const char *line, guint lineno, GHashTable *policies, QpinCpuset *nodes,
                 GError **error)
{
  g_auto (GStrv) fields = g_strsplit (line, " ", -1);
  guint64 address;
  guint i = 2;

  if (g_strv_length (fields) < 2
      || !g_ascii_string_to_unsigned (fields[0], 16, 0, G_MAXUINT64, &address, NULL)
      || fields[1][0] == '\0')
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "numa_maps line %u: expected 'ADDRESS POLICY ...', got '%.80s'", lineno, line);
      return FALSE;
    }
  if (fields[2] && g_str_has_prefix (fields[2], "(many)"))
    g_hash_table_add (policies, g_strconcat (fields[1], " ", fields[i++], NULL));
  else
    g_hash_table_add (policies, g_strdup (fields[1]));
  for (; fields[i]; i++)
    {
      guint node;
      guint64 pages;

      if (parse_node_pages (fields[i], &node, &pages) && pages > 0)
        qpin_cpuset_add (nodes, node);
    }
  return TRUE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static char *
join_sorted (GHashTable *set)
{
  g_autofree const char **keys = (const char **) g_hash_table_get_keys_as_array (set, NULL);
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();

  for (guint i = 0; keys[i]; i++)
    g_ptr_array_add (sorted, (gpointer) keys[i]);
  g_ptr_array_sort (sorted, compare_strings);
  g_ptr_array_add (sorted, NULL);
  return g_strjoinv (" ", (char **) sorted->pdata);
}

/**
 * qpin_readback_parse_numa_maps:
 * @text: the text of /proc/PID/numa_maps
 * @out: (out caller-allocates): the policies and the nodes holding pages
 *
 * Returns: FALSE with @error set when a line is not `ADDRESS POLICY ...`
 */
gboolean
qpin_readback_parse_numa_maps (const char *text, QpinMemoryState *out, GError **error)
{
  g_autoptr (GHashTable) policies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  QpinCpuset nodes;

  qpin_cpuset_clear_all (&nodes);
  for (guint i = 0; lines[i]; i++)
    if (lines[i][0] && !parse_numa_line (lines[i], i + 1, policies, &nodes, error))
      return FALSE;
  out->policies = join_sorted (policies);
  out->nodes = qpin_cpuset_format (&nodes);
  return TRUE;
}

/**
 * qpin_readback_memory:
 * @pid: a process
 * @out: (out caller-allocates): what /proc/@pid/numa_maps says
 *
 * Returns: FALSE with @error set when the file cannot be read or parsed
 */
gboolean
qpin_readback_memory (GPid pid, QpinMemoryState *out, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/numa_maps", pid);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  if (!qpin_readback_parse_numa_maps (text, out, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_memory_state_clear:
 *
 * Frees the members of @state.
 */
void
qpin_memory_state_clear (QpinMemoryState *state)
{
  g_clear_pointer (&state->policies, g_free);
  g_clear_pointer (&state->nodes, g_free);
}

/* Each thread's CPU time (~0 for vCPUs that never ran) and scheduling
 * policy; the VM's sched is its vCPU threads' ("mixed" when they differ). */
static void
add_threads (JsonObject *vm, GPid pid)
{
  JsonArray *threads = json_object_get_array_member (vm, "threads");
  g_autofree char *vcpus_sched = NULL;

  for (guint i = 0; threads && i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      GPid tid = (GPid) json_object_get_int_member_with_default (t, "tid", 0);
      g_autofree char *sched = tid > 0 ? qpin_readback_sched (tid, NULL) : NULL;
      QpinTaskInfo info;

      if (tid > 0 && qpin_proc_read_task (pid, tid, &info, NULL))
        json_object_set_int_member (t, "cpu_time_ns", (gint64) info.cpu_time_ns);
      if (sched == NULL)
        continue;
      json_object_set_string_member (t, "sched", sched);
      if (!g_str_equal (json_object_get_string_member_with_default (t, "role", ""), "vcpu"))
        continue;
      if (vcpus_sched == NULL)
        vcpus_sched = g_strdup (sched);
      else if (!g_str_equal (vcpus_sched, sched))
        {
          g_free (vcpus_sched);
          vcpus_sched = g_strdup ("mixed");
        }
    }
  if (vcpus_sched)
    json_object_set_string_member (vm, "sched", vcpus_sched);
}

/**
 * qpin_readback_add_to_vm:
 * @vm: a VM in the shared JSON shape (`threads` with `role` and `tid`)
 * @pid: its QEMU process
 *
 * Sets what the kernel has now: each thread's `cpu_time_ns` and `sched`,
 * the VM's `sched` (its vCPU threads'), `memory_policy` and
 * `memory_pages_nodes` (from /proc/@pid/numa_maps).  A value the kernel
 * does not give (a thread gone) is left out; nothing else is changed.
 */
void
qpin_readback_add_to_vm (JsonObject *vm, GPid pid)
{
  g_auto (QpinMemoryState) mem = { 0 };
  g_autoptr (GError) error = NULL;

  add_threads (vm, pid);
  if (!qpin_readback_memory (pid, &mem, &error))
    {
      g_info ("pid %d: %s", pid, error->message);
      return;
    }
  json_object_set_string_member (vm, "memory_policy", mem.policies);
  json_object_set_string_member (vm, "memory_pages_nodes", mem.nodes);
}
