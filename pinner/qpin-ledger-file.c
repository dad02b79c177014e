/* qpin-ledger-file.c: which VM held which CPUs, kept on disk for a restart
 *
 * {"version":1,"vms":[{"pid":4242,"start":123456,"key":"a","cpus":"0,2"}]}
 *
 * "start" is the process's start time (/proc/PID/stat field 22), so that
 * a pid the kernel has given to another program is not taken for the VM.
 * "degraded": true (only then present) marks a VM with a vCPU that floated
 * beside the others.
 */

#include "qpin-ledger-file.h"

#include <json-glib/json-glib.h>

#include "qpin-json.h"
#include "qpin-proc.h"

static void
entry_free (QpinLedgerEntry *e)
{
  g_free (e->key);
  g_free (e);
}

/**
 * qpin_ledger_file_new:
 *
 * Returns: (transfer full): an empty ledger
 */
QpinLedgerFile *
qpin_ledger_file_new (void)
{
  QpinLedgerFile *ledger = g_new0 (QpinLedgerFile, 1);

  ledger->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  return ledger;
}

void
qpin_ledger_file_free (QpinLedgerFile *ledger)
{
  if (ledger == NULL)
    return;
  g_ptr_array_unref (ledger->entries);
  g_free (ledger);
}

/**
 * qpin_ledger_file_add:
 *
 * Records that VM @key (process @pid, started at @start_time) holds @cpus.
 */
void
qpin_ledger_file_add (QpinLedgerFile *ledger, GPid pid, guint64 start_time, const char *key,
                      const QpinCpuset *cpus)
{
  QpinLedgerEntry *e = g_new0 (QpinLedgerEntry, 1);

  e->pid = pid;
  e->start_time = start_time;
  e->key = g_strdup (key);
  e->cpus = *cpus;
  g_ptr_array_add (ledger->entries, e);
}

/**
 * qpin_ledger_file_to_data:
 *
 * Returns: (transfer full): the file's text
 */
char *
qpin_ledger_file_to_data (const QpinLedgerFile *ledger)
{
  g_autoptr (JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  qpin_json_add_int (b, "version", QPIN_LEDGER_FILE_VERSION);
  json_builder_set_member_name (b, "vms");
  json_builder_begin_array (b);
  for (guint i = 0; i < ledger->entries->len; i++)
    {
      const QpinLedgerEntry *e = g_ptr_array_index (ledger->entries, i);

      json_builder_begin_object (b);
      qpin_json_add_int (b, "pid", e->pid);
      qpin_json_add_int (b, "start", (gint64) e->start_time);
      qpin_json_add_string (b, "key", e->key);
      qpin_json_add_cpuset (b, "cpus", &e->cpus);
      if (e->degraded)
        {
          json_builder_set_member_name (b, "degraded");
          json_builder_add_boolean_value (b, TRUE);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* One element of "vms": {"pid": int > 0, "start": int >= 0, "key": string,
 * "cpus": cpulist} */
static gboolean
parse_entry (QpinLedgerFile *ledger, JsonNode *node, guint i, GError **error)
{
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonNode *pid = o ? json_object_get_member (o, "pid") : NULL;
  JsonNode *key = o ? json_object_get_member (o, "key") : NULL;
  JsonNode *cpus = o ? json_object_get_member (o, "cpus") : NULL;
  JsonNode *start = o ? json_object_get_member (o, "start") : NULL;
  JsonNode *degraded = o ? json_object_get_member (o, "degraded") : NULL;
  QpinCpuset set;

  if (pid == NULL || json_node_get_value_type (pid) != G_TYPE_INT64 || json_node_get_int (pid) <= 0
      || json_node_get_int (pid) > G_MAXINT32 || start == NULL
      || json_node_get_value_type (start) != G_TYPE_INT64 || json_node_get_int (start) < 0
      || key == NULL || json_node_get_value_type (key) != G_TYPE_STRING || cpus == NULL
      || json_node_get_value_type (cpus) != G_TYPE_STRING
      || !qpin_cpuset_parse (json_node_get_string (cpus), &set, NULL)
      || (degraded && json_node_get_value_type (degraded) != G_TYPE_BOOLEAN))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "element %u of \"vms\" is not {\"pid\": N, \"start\": N, \"key\": \"...\", "
                   "\"cpus\": \"CPULIST\"}",
                   i);
      return FALSE;
    }
  qpin_ledger_file_add (ledger, (GPid) json_node_get_int (pid), (guint64) json_node_get_int (start),
                        json_node_get_string (key), &set);
  if (degraded && json_node_get_boolean (degraded))
    ((QpinLedgerEntry *) g_ptr_array_index (ledger->entries, ledger->entries->len - 1))->degraded
      = TRUE;
  return TRUE;
}

/**
 * qpin_ledger_file_load:
 *
 * Returns: (transfer full): the ledger in @path; an empty one when there
 *   is no such file; %NULL when it cannot be read or parsed, or is of
 *   another version
 */
QpinLedgerFile *
qpin_ledger_file_load (const char *path, GError **error)
{
  g_autoptr (QpinLedgerFile) ledger = qpin_ledger_file_new ();
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;
  JsonNode *root;
  JsonNode *vms;
  JsonNode *version;

  if (!g_file_get_contents (path, &data, &len, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&ledger);
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "%s: %s", path,
                   local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  version = root && JSON_NODE_HOLDS_OBJECT (root)
              ? json_object_get_member (json_node_get_object (root), "version")
              : NULL;
  if (version == NULL || json_node_get_value_type (version) != G_TYPE_INT64
      || json_node_get_int (version) != QPIN_LEDGER_FILE_VERSION)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "%s: not a version %d ledger file", path, QPIN_LEDGER_FILE_VERSION);
      return NULL;
    }
  vms = root && JSON_NODE_HOLDS_OBJECT (root)
          ? json_object_get_member (json_node_get_object (root), "vms")
          : NULL;
  if (vms == NULL || !JSON_NODE_HOLDS_ARRAY (vms))
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED,
                   "%s: expected {\"vms\": [...]}", path);
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (json_node_get_array (vms)); i++)
    if (!parse_entry (ledger, json_array_get_element (json_node_get_array (vms), i), i, &local))
      {
        g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "%s: %s", path,
                     local->message);
        return NULL;
      }
  return g_steal_pointer (&ledger);
}

/**
 * qpin_ledger_file_owner:
 *
 * Returns: (nullable) (transfer none): the VM that held @cpu
 */
const QpinLedgerEntry *
qpin_ledger_file_owner (const QpinLedgerFile *ledger, guint cpu)
{
  for (guint i = 0; ledger && i < ledger->entries->len; i++)
    {
      const QpinLedgerEntry *e = g_ptr_array_index (ledger->entries, i);
      if (qpin_cpuset_has (&e->cpus, cpu))
        return e;
    }
  return NULL;
}
