/* qpin-qmp-types.c: parsers for query-cpus-fast, query-iothreads,
 * query-hotpluggable-cpus, query-name and query-status (qapi/machine.json,
 * qapi/misc.json, qapi/run-state.json) */
#define G_LOG_DOMAIN "qpin-qmp"

#include "qpin-qmp-types.h"
#include "qpin-qmp-error.h"

/* Linux PID_MAX_LIMIT: 4M; anything above is a lie. */
#define TID_MAX (4 * 1024 * 1024)

void
qpin_qmp_cpu_free (QpinQmpCpu *cpu)
{
  if (cpu == NULL)
    return;
  g_free (cpu->qom_path);
  g_free (cpu->target);
  g_free (cpu);
}

void
qpin_qmp_iothread_free (QpinQmpIothread *iothread)
{
  if (iothread == NULL)
    return;
  g_free (iothread->id);
  g_free (iothread);
}

void
qpin_qmp_hotpluggable_cpu_free (QpinQmpHotpluggableCpu *slot)
{
  if (slot == NULL)
    return;
  g_free (slot->type);
  g_free (slot->qom_path);
  g_free (slot);
}

static gboolean
type_error (GError **error, const char *what, const char *member, guint index)
{
  g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "%s[%u]: %s", what, index, member);
  return FALSE;
}

/* An integer member in [min, max]; absent gives -1 unless required. */
static gboolean
get_int (JsonObject *obj, const char *name, gint64 min, gint64 max, gboolean required, gint64 *out,
         const char *what, guint index, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);
  g_autofree char *why = NULL;

  if (node == NULL)
    {
      if (required)
        {
          why = g_strdup_printf ("\"%s\" is missing", name);
          return type_error (error, what, why, index);
        }
      *out = -1;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      why = g_strdup_printf ("\"%s\" is not an integer", name);
      return type_error (error, what, why, index);
    }
  *out = json_node_get_int (node);
  if (*out < min || *out > max)
    {
      why = g_strdup_printf ("\"%s\" %" G_GINT64_FORMAT " is out of range", name, *out);
      return type_error (error, what, why, index);
    }
  return TRUE;
}

static gboolean
get_string (JsonObject *obj, const char *name, gboolean required, char **out, const char *what,
            guint index, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);
  g_autofree char *why = NULL;

  if (node == NULL && !required)
    {
      *out = NULL;
      return TRUE;
    }
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      why = g_strdup_printf ("\"%s\" is missing or not a string", name);
      return type_error (error, what, why, index);
    }
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

/* An array of at most @max elements, each one a @noun */
static JsonArray *
get_array (JsonNode *ret, const char *what, guint max, const char *noun, GError **error)
{
  JsonArray *array;

  if (ret == NULL || !JSON_NODE_HOLDS_ARRAY (ret))
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "%s: reply is not an array",
                   what);
      return NULL;
    }
  array = json_node_get_array (ret);
  if (json_array_get_length (array) > max)
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL,
                   "%s: %u %s exceed the limit of %u", what, json_array_get_length (array), noun,
                   max);
      return NULL;
    }
  return array;
}

static JsonObject *
get_element (JsonArray *array, guint i, const char *what, GError **error)
{
  JsonNode *node = json_array_get_element (array, i);

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      type_error (error, what, "not an object", i);
      return NULL;
    }
  return json_node_get_object (node);
}

/* props: CpuInstanceProperties; every member optional */
static gboolean
parse_props (JsonObject *obj, QpinGuestTopo *topo, const char *what, guint i, GError **error)
{
  JsonNode *node = json_object_get_member (obj, "props");
  JsonObject *props;
  gint64 node_id = -1, socket_id = -1, die_id = -1, cluster_id = -1, core_id = -1, thread = -1;

  if (node != NULL && !JSON_NODE_HOLDS_OBJECT (node))
    return type_error (error, what, "\"props\" is not an object", i);
  props = node ? json_node_get_object (node) : NULL;
  if (props
      && !(get_int (props, "node-id", 0, G_MAXINT, FALSE, &node_id, what, i, error)
           && get_int (props, "socket-id", 0, G_MAXINT, FALSE, &socket_id, what, i, error)
           && get_int (props, "die-id", 0, G_MAXINT, FALSE, &die_id, what, i, error)
           && get_int (props, "cluster-id", 0, G_MAXINT, FALSE, &cluster_id, what, i, error)
           && get_int (props, "core-id", 0, G_MAXINT, FALSE, &core_id, what, i, error)
           && get_int (props, "thread-id", 0, G_MAXINT, FALSE, &thread, what, i, error)))
    return FALSE;
  /* each is -1 or in 0..G_MAXINT: fits a gint */
  topo->node = (gint) node_id;
  topo->socket = (gint) socket_id;
  topo->die = (gint) die_id;
  topo->cluster = (gint) cluster_id;
  topo->core = (gint) core_id;
  topo->thread = (gint) thread;
  return TRUE;
}

/**
 * qpin_qmp_parse_cpus_fast:
 * @ret: the return of query-cpus-fast:
 *   [{"cpu-index": INT, "qom-path": STR, "thread-id": INT, "target": STR,
 *     "props": {"node-id"?, "socket-id"?, "die-id"?, "cluster-id"?,
 *               "core-id"?, "thread-id"?}, ...}, ...]
 *
 * Returns: (transfer full) (element-type QpinQmpCpu): the vCPUs, in reply order
 */
GPtrArray *
qpin_qmp_parse_cpus_fast (JsonNode *ret, GError **error)
{
  const char *what = "query-cpus-fast";
  JsonArray *array = get_array (ret, what, QPIN_QMP_MAX_VCPUS, "vCPUs", error);
  g_autoptr (GPtrArray) cpus = NULL;

  if (array == NULL)
    return NULL;
  cpus = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_qmp_cpu_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *obj = get_element (array, i, what, error);
      g_autoptr (QpinQmpCpu) cpu = g_new0 (QpinQmpCpu, 1);

      if (obj == NULL
          || !get_int (obj, "cpu-index", 0, G_MAXINT, TRUE, &cpu->cpu_index, what, i, error)
          || !get_int (obj, "thread-id", 1, TID_MAX, TRUE, &cpu->thread_id, what, i, error)
          || !get_string (obj, "qom-path", TRUE, &cpu->qom_path, what, i, error)
          || !get_string (obj, "target", FALSE, &cpu->target, what, i, error)
          || !parse_props (obj, &cpu->topo, what, i, error))
        return NULL;
      g_ptr_array_add (cpus, g_steal_pointer (&cpu));
    }
  return g_steal_pointer (&cpus);
}

/**
 * qpin_qmp_parse_iothreads:
 * @ret: the return of query-iothreads:
 *   [{"id": STR, "thread-id": INT, "poll-max-ns": INT, ...}, ...]
 *
 * Returns: (transfer full) (element-type QpinQmpIothread): the iothreads
 */
GPtrArray *
qpin_qmp_parse_iothreads (JsonNode *ret, GError **error)
{
  const char *what = "query-iothreads";
  JsonArray *array = get_array (ret, what, QPIN_QMP_MAX_IOTHREADS, "iothreads", error);
  g_autoptr (GPtrArray) iothreads = NULL;

  if (array == NULL)
    return NULL;
  iothreads = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_qmp_iothread_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *obj = get_element (array, i, what, error);
      g_autoptr (QpinQmpIothread) io = g_new0 (QpinQmpIothread, 1);

      if (obj == NULL || !get_string (obj, "id", TRUE, &io->id, what, i, error)
          || !get_int (obj, "thread-id", 1, TID_MAX, TRUE, &io->thread_id, what, i, error))
        return NULL;
      g_ptr_array_add (iothreads, g_steal_pointer (&io));
    }
  return g_steal_pointer (&iothreads);
}

/**
 * qpin_qmp_parse_hotpluggable_cpus:
 * @ret: the return of query-hotpluggable-cpus:
 *   [{"type": STR, "vcpus-count": INT, "props": {...}, "qom-path"?: STR}, ...]
 *
 * Returns: (transfer full) (element-type QpinQmpHotpluggableCpu): the slots
 */
GPtrArray *
qpin_qmp_parse_hotpluggable_cpus (JsonNode *ret, GError **error)
{
  const char *what = "query-hotpluggable-cpus";
  JsonArray *array = get_array (ret, what, QPIN_QMP_MAX_VCPUS, "CPU slots", error);
  g_autoptr (GPtrArray) slots = NULL;

  if (array == NULL)
    return NULL;
  slots = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_qmp_hotpluggable_cpu_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *obj = get_element (array, i, what, error);
      g_autoptr (QpinQmpHotpluggableCpu) slot = g_new0 (QpinQmpHotpluggableCpu, 1);

      if (obj == NULL || !get_string (obj, "type", TRUE, &slot->type, what, i, error)
          || !get_int (obj, "vcpus-count", 1, QPIN_QMP_MAX_VCPUS, TRUE, &slot->vcpus_count, what, i,
                       error)
          || !get_string (obj, "qom-path", FALSE, &slot->qom_path, what, i, error)
          || !parse_props (obj, &slot->topo, what, i, error))
        return NULL;
      g_ptr_array_add (slots, g_steal_pointer (&slot));
    }
  return g_steal_pointer (&slots);
}

static JsonObject *
get_object (JsonNode *ret, const char *what, GError **error)
{
  if (ret == NULL || !JSON_NODE_HOLDS_OBJECT (ret))
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "%s: reply is not an object",
                   what);
      return NULL;
    }
  return json_node_get_object (ret);
}

/**
 * qpin_qmp_parse_name:
 * @ret: the return of query-name: {"name"?: STR}
 * @name: (out) (transfer full) (nullable): the -name of the VM, %NULL if unset
 */
gboolean
qpin_qmp_parse_name (JsonNode *ret, char **name, GError **error)
{
  JsonObject *obj = get_object (ret, "query-name", error);
  char *value = NULL;

  if (obj == NULL || !get_string (obj, "name", FALSE, &value, "query-name", 0, error))
    return FALSE;
  *name = value;
  return TRUE;
}

/**
 * qpin_qmp_parse_status:
 * @ret: the return of query-status:
 *   {"running": BOOL, "status": STR, "singlestep"?: BOOL, ...}
 * @status: (out) (transfer full): the RunState, e.g. "prelaunch", "running"
 * @running: (out): whether vCPUs run
 */
gboolean
qpin_qmp_parse_status (JsonNode *ret, char **status, gboolean *running, GError **error)
{
  JsonObject *obj = get_object (ret, "query-status", error);
  JsonNode *node;
  char *value = NULL;

  if (obj == NULL || !get_string (obj, "status", TRUE, &value, "query-status", 0, error))
    return FALSE;
  node = json_object_get_member (obj, "running");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_free (value);
      return type_error (error, "query-status", "\"running\" is missing or not a boolean", 0);
    }
  *running = json_node_get_boolean (node);
  *status = value;
  return TRUE;
}

/**
 * qpin_qmp_cpus_share_thread:
 * @cpus: (element-type QpinQmpCpu): from qpin_qmp_parse_cpus_fast()
 *
 * Returns: %TRUE when vCPUs share a host thread, as with single-threaded
 * TCG (-accel tcg,thread=single), where one thread runs every vCPU
 */
gboolean
qpin_qmp_cpus_share_thread (GPtrArray *cpus)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  for (guint i = 0; i < cpus->len; i++)
    {
      QpinQmpCpu *cpu = g_ptr_array_index (cpus, i);
      if (!g_hash_table_add (seen, &cpu->thread_id))
        return TRUE;
    }
  return FALSE;
}
