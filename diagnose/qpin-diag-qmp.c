/* qpin-diag-qmp.c: what only QEMU can say: accelerator and CPU model */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-diag-qmp.h"

#include <string.h>

#include "qpin-diag-private.h"

/* Host flags in /proc/cpuinfo worth having in a guest, and the x86 CPU
 * property QEMU names each by. */
static const struct {
  const char *host;
  const char *prop;
} features[] = {
  { "aes", "aes" },
  { "avx", "avx" },
  { "avx2", "avx2" },
  { "avx512f", "avx512f" },
  { "avx512bw", "avx512bw" },
  { "avx512vl", "avx512vl" },
  { "avx512dq", "avx512dq" },
  { "avx512cd", "avx512cd" },
  { "avx512_vnni", "avx512-vnni" },
  { "sse4_1", "sse4.1" },
  { "sse4_2", "sse4.2" },
  { "ssse3", "ssse3" },
  { "pclmulqdq", "pclmulqdq" },
  { "bmi1", "bmi1" },
  { "bmi2", "bmi2" },
  { "fma", "fma" },
  { "f16c", "f16c" },
  { "movbe", "movbe" },
  { "popcnt", "popcnt" },
  { "sha_ni", "sha-ni" },
  { "rdrand", "rdrand" },
  { "rdseed", "rdseed" },
  { "adx", "adx" },
  { "xsave", "xsave" },
};

/* The "flags" line of ROOT/proc/cpuinfo, split; NULL when missing */
static GStrv
host_flags (const char *root)
{
  g_autofree char *text = qpin_diag_read (root, "proc/cpuinfo", NULL);
  g_auto (GStrv) lines = text ? g_strsplit (text, "\n", 0) : NULL;

  for (guint i = 0; lines && lines[i]; i++)
    if (g_str_has_prefix (lines[i], "flags") && strchr (lines[i], ':'))
      return g_strsplit_set (g_strstrip (strchr (lines[i], ':') + 1), " \t", 0);
  return NULL;
}

/* query-cpus-fast: [{"qom-path":"/machine/unattached/device[0]",...},...] */
static char *
first_vcpu_path (QpinQmpClient *client, guint timeout_ms, GError **error)
{
  g_autoptr (JsonNode) reply
    = qpin_qmp_client_execute_sync (client, "query-cpus-fast", NULL, timeout_ms, error);
  JsonArray *cpus;
  JsonNode *first, *path;

  if (reply == NULL)
    return NULL;
  cpus = JSON_NODE_HOLDS_ARRAY (reply) ? json_node_get_array (reply) : NULL;
  first = cpus && json_array_get_length (cpus) > 0 ? json_array_get_element (cpus, 0) : NULL;
  path = first && JSON_NODE_HOLDS_OBJECT (first)
           ? json_object_get_member (json_node_get_object (first), "qom-path")
           : NULL;
  if (path == NULL || json_node_get_value_type (path) != G_TYPE_STRING)
    {
      g_set_error_literal (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL,
                           "query-cpus-fast: no 'qom-path' string in element 0");
      return NULL;
    }
  return g_strdup (json_node_get_string (path));
}

/* qom-get of a boolean property: TRUE and @value set when QEMU answers one */
static gboolean
qom_get_bool (QpinQmpClient *client, const char *path, const char *prop, guint timeout_ms,
              gboolean *value, GError **error)
{
  g_autoptr (JsonObject) args = json_object_new ();
  g_autoptr (JsonNode) reply = NULL;

  json_object_set_string_member (args, "path", path);
  json_object_set_string_member (args, "property", prop);
  reply = qpin_qmp_client_execute_sync (client, "qom-get", args, timeout_ms, error);
  if (reply == NULL)
    return FALSE;
  if (json_node_get_value_type (reply) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "qom-get '%s': not a boolean",
                   prop);
      return FALSE;
    }
  *value = json_node_get_boolean (reply);
  return TRUE;
}

static void
query_cpu_model (QpinDiagVm *vm, QpinQmpClient *client, const char *root, guint timeout_ms)
{
  g_auto (GStrv) flags = host_flags (root);
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  if (flags == NULL)
    {
      vm->cpu_model_why = g_strdup ("no 'flags' line in proc/cpuinfo");
      return;
    }
  path = first_vcpu_path (client, timeout_ms, &error);
  if (path == NULL)
    {
      vm->cpu_model_why = g_strdup_printf ("QEMU did not say its vCPUs: %s", error->message);
      return;
    }
  vm->cpu_flags = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < G_N_ELEMENTS (features); i++)
    {
      gboolean on = TRUE;
      g_autoptr (GError) prop_error = NULL;

      if (!g_strv_contains ((const char *const *) flags, features[i].host))
        continue;
      if (!qom_get_bool (client, path, features[i].prop, timeout_ms, &on, &prop_error))
        {
          if (qpin_qmp_client_is_closed (client))
            {
              g_clear_pointer (&vm->cpu_flags, g_ptr_array_unref);
              vm->cpu_model_why = g_strdup_printf ("qom-get: %s", prop_error->message);
              return;
            }
          continue; /* a QEMU without this property */
        }
      if (!on)
        g_ptr_array_add (vm->cpu_flags, g_strdup (features[i].host));
    }
}

/* query-cpus-fast: [{"cpu-index":0,"thread-id":4711,...}]; query-iothreads:
 * [{"id":"io0","thread-id":4712,...}].  Elements without a valid thread-id
 * are skipped (a vCPU not yet realized). */
static gboolean
add_threads (QpinDiagVm *vm, QpinQmpClient *client, const char *command, QpinThreadRole role,
             guint timeout_ms, GError **error)
{
  g_autoptr (JsonNode) reply
    = qpin_qmp_client_execute_sync (client, command, NULL, timeout_ms, error);
  JsonArray *list;

  if (reply == NULL)
    return FALSE;
  list = JSON_NODE_HOLDS_ARRAY (reply) ? json_node_get_array (reply) : NULL;
  if (list == NULL)
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "%s: not an array", command);
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (list); i++)
    {
      JsonNode *n = json_array_get_element (list, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      JsonNode *tid = o ? json_object_get_member (o, "thread-id") : NULL;
      JsonNode *index
        = o && role == QPIN_ROLE_VCPU ? json_object_get_member (o, "cpu-index") : NULL;
      gint64 t
        = tid && json_node_get_value_type (tid) == G_TYPE_INT64 ? json_node_get_int (tid) : 0;
      gint64 x = index && json_node_get_value_type (index) == G_TYPE_INT64
                   ? json_node_get_int (index)
                   : (gint64) i;

      if (t > 0 && t <= G_MAXINT32 && x >= 0 && x <= G_MAXINT32)
        qpin_diag_vm_add_thread (vm, t, role, (guint) x);
    }
  return TRUE;
}

/**
 * qpin_diag_vm_query_threads:
 *
 * Adds the emulator (the pid), the vCPUs and the iothreads of @vm as QEMU
 * reports them.
 *
 * Returns: FALSE with @error when QEMU does not list its vCPUs
 */
gboolean
qpin_diag_vm_query_threads (QpinDiagVm *vm, QpinQmpClient *client, guint timeout_ms, GError **error)
{
  if (!add_threads (vm, client, "query-cpus-fast", QPIN_ROLE_VCPU, timeout_ms, error))
    return FALSE;
  qpin_diag_vm_add_thread (vm, vm->pid, QPIN_ROLE_EMULATOR, 0);
  add_threads (vm, client, "query-iothreads", QPIN_ROLE_IOTHREAD, timeout_ms, NULL);
  return TRUE;
}

/* query-kvm: {"enabled":true,"present":true} */
static void
query_accel (QpinDiagVm *vm, QpinQmpClient *client, guint timeout_ms)
{
  g_autoptr (JsonNode) reply
    = qpin_qmp_client_execute_sync (client, "query-kvm", NULL, timeout_ms, NULL);
  JsonObject *o = reply && JSON_NODE_HOLDS_OBJECT (reply) ? json_node_get_object (reply) : NULL;
  JsonNode *enabled = o ? json_object_get_member (o, "enabled") : NULL;

  if (enabled && json_node_get_value_type (enabled) == G_TYPE_BOOLEAN)
    vm->accel = g_strdup (json_node_get_boolean (enabled) ? "kvm" : "tcg");
}

/**
 * qpin_diag_vm_query:
 * @root: where proc/cpuinfo (the host's flags) is read
 *
 * Asks QEMU for its accelerator and compares its first vCPU's features
 * with the host's; what QEMU does not answer leaves @vm saying why.
 */
void
qpin_diag_vm_query (QpinDiagVm *vm, QpinQmpClient *client, const char *root, guint timeout_ms)
{
  query_accel (vm, client, timeout_ms);
  query_cpu_model (vm, client, root, timeout_ms);
}
