/* qpin-policy.c: policy values, GKeyFile configuration, contradiction checks */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-policy.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>

typedef struct {
  const char *name;
  gint value;
} Choice;

static const Choice cpus_choices[] = { { "dedicated", QPIN_CPUS_DEDICATED },
                                       { "shared", QPIN_CPUS_SHARED },
                                       { "manual", QPIN_CPUS_MANUAL },
                                       { NULL, 0 } };
static const Choice numa_choices[] = { { "strict", QPIN_NUMA_STRICT },
                                       { "prefer", QPIN_NUMA_PREFER },
                                       { "spread", QPIN_NUMA_SPREAD },
                                       { NULL, 0 } };
static const Choice smt_choices[] = { { "prefer", QPIN_SMT_PREFER },
                                      { "isolate", QPIN_SMT_ISOLATE },
                                      { "require", QPIN_SMT_REQUIRE },
                                      { NULL, 0 } };
static const Choice aux_choices[] = { { "share", QPIN_AUX_SHARE },
                                      { "isolate", QPIN_AUX_ISOLATE },
                                      { "housekeeping", QPIN_AUX_HOUSEKEEPING },
                                      { NULL, 0 } };
static const Choice overcommit_choices[]
  = { { "refuse", QPIN_OVERCOMMIT_REFUSE }, { "share", QPIN_OVERCOMMIT_SHARE }, { NULL, 0 } };
static const Choice memory_choices[]
  = { { "none", QPIN_MEMORY_NONE }, { "migrate", QPIN_MEMORY_MIGRATE }, { NULL, 0 } };
static const Choice irqs_choices[]
  = { { "leave", QPIN_IRQS_LEAVE }, { "avoid", QPIN_IRQS_AVOID }, { NULL, 0 } };
static const Choice kind_choices[] = { { "fast", QPIN_KIND_FAST },
                                       { "efficient", QPIN_KIND_EFFICIENT },
                                       { "any", QPIN_KIND_ANY },
                                       { NULL, 0 } };

static const char *const keys[]
  = { "cpus",   "numa",  "smt",    "emulator", "iothreads", "reserved", "overcommit",
      "memory", "sched", "cpumap", "cpuset",   "irqs",      "kind",     NULL };

/**
 * qpin_policy_keys:
 *
 * Returns: (transfer none): the accepted configuration keys, NULL-terminated.
 */
const char *const *
qpin_policy_keys (void)
{
  return keys;
}

static const char *const daemon_keys[] = { "allow_users", "allow_groups", NULL };

/**
 * qpin_config_daemon_keys:
 *
 * Returns: (transfer none): the keys of the config file's [daemon] group,
 * NULL-terminated.
 */
const char *const *
qpin_config_daemon_keys (void)
{
  return daemon_keys;
}

/**
 * qpin_policy_new:
 *
 * Returns: (transfer full): the default policy: cpus=dedicated, numa=prefer,
 * smt=prefer, emulator=share, iothreads=share, reserved none,
 * overcommit=refuse, memory=none, sched=other, kind=fast.
 */
QpinPolicy *
qpin_policy_new (void)
{
  return g_new0 (QpinPolicy, 1);
}

/**
 * qpin_policy_copy:
 *
 * Returns: (transfer full): a deep copy.
 */
QpinPolicy *
qpin_policy_copy (const QpinPolicy *policy)
{
  QpinPolicy *copy = g_memdup2 (policy, sizeof *policy);

  if (policy->cpumap)
    copy->cpumap = g_array_copy (policy->cpumap);
  if (policy->cpuset)
    copy->cpuset = g_memdup2 (policy->cpuset, sizeof *policy->cpuset);
  return copy;
}

/**
 * qpin_policy_free:
 * @policy: (nullable): a policy
 */
void
qpin_policy_free (QpinPolicy *policy)
{
  if (policy == NULL)
    return;
  if (policy->cpumap)
    g_array_unref (policy->cpumap);
  g_free (policy->cpuset);
  g_free (policy);
}

static char *
choice_list (const Choice *choices)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; choices[i].name; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "", choices[i].name);
  return g_string_free (s, FALSE);
}

static gboolean
bad_value (const char *key, const char *value, const char *accepted, GError **error)
{
  g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
               "key '%s': invalid value '%s' (accepted: %s)", key, value, accepted);
  return FALSE;
}

static gboolean
parse_choice (const Choice *choices, const char *key, const char *value, gint *out, GError **error)
{
  g_autofree char *accepted = NULL;

  for (guint i = 0; choices[i].name; i++)
    if (strcmp (choices[i].name, value) == 0)
      {
        *out = choices[i].value;
        return TRUE;
      }
  accepted = choice_list (choices);
  return bad_value (key, value, accepted, error);
}

static const char *
choice_name (const Choice *choices, gint value)
{
  for (guint i = 0; choices[i].name; i++)
    if (choices[i].value == value)
      return choices[i].name;
  return "?";
}

static gboolean
parse_sched (const char *value, QpinSchedMode *mode, guint *prio, GError **error)
{
  static const char accepted[] = "other, fifo:PRIO, rr:PRIO with PRIO from 1 to 99";
  const char *colon = strchr (value, ':');
  guint64 p;

  if (strcmp (value, "other") == 0)
    {
      *mode = QPIN_SCHED_OTHER;
      *prio = 0;
      return TRUE;
    }
  if (colon == NULL || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 99, &p, NULL))
    return bad_value ("sched", value, accepted, error);
  if (strncmp (value, "fifo:", 5) == 0)
    *mode = QPIN_SCHED_FIFO;
  else if (strncmp (value, "rr:", 3) == 0)
    *mode = QPIN_SCHED_RR;
  else
    return bad_value ("sched", value, accepted, error);
  *prio = (guint) p;
  return TRUE;
}

static gint
cmp_pin (gconstpointer a, gconstpointer b)
{
  const QpinManualPin *pa = a, *pb = b;
  return pa->vcpu < pb->vcpu ? -1 : pa->vcpu > pb->vcpu;
}

/* "0=4,1=5-6" or virsh-like "0=4-5,7;1=6": an item with '=' starts a vCPU,
 * items without '=' extend the CPU list of the previous one. */
static gboolean
parse_cpumap (const char *value, GArray **out, GError **error)
{
  static const char accepted[] = "VCPU=CPULIST items such as '0=4,1=5-6' or '0=4-5,7;1=6'";
  g_autoptr (GArray) pins = g_array_new (FALSE, FALSE, sizeof (QpinManualPin));
  g_auto (GStrv) items = g_strsplit_set (value, ",;", -1);
  GString *list = g_string_new (NULL);
  gint vcpu = -1;
  gboolean ok = TRUE;

  for (guint i = 0; ok; i++)
    {
      const char *item = items[i];
      const char *eq = item ? strchr (item, '=') : NULL;

      if (item == NULL || eq)
        {
          if (vcpu >= 0)
            {
              QpinManualPin pin = { .vcpu = (guint) vcpu };
              g_autoptr (GError) local = NULL;

              if (!qpin_cpuset_parse (list->str, &pin.cpus, &local)
                  || qpin_cpuset_is_empty (&pin.cpus))
                ok = FALSE;
              else
                g_array_append_val (pins, pin);
            }
          if (item == NULL || !ok)
            break;
          {
            g_autofree char *num = g_strndup (item, (gsize) (eq - item));
            guint64 v;
            if (!g_ascii_string_to_unsigned (g_strstrip (num), 10, 0, QPIN_CPUSET_MAX - 1, &v,
                                             NULL))
              {
                ok = FALSE;
                break;
              }
            vcpu = (gint) v;
          }
          g_string_assign (list, eq + 1);
        }
      else if (vcpu < 0 || *g_strstrip ((char *) item) == '\0')
        ok = FALSE;
      else
        g_string_append_printf (list, ",%s", item);
    }
  g_string_free (list, TRUE);
  if (!ok || pins->len == 0)
    return bad_value ("cpumap", value, accepted, error);
  g_array_sort (pins, cmp_pin);
  for (guint i = 1; i < pins->len; i++)
    if (g_array_index (pins, QpinManualPin, i).vcpu
        == g_array_index (pins, QpinManualPin, i - 1).vcpu)
      {
        g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                     "key 'cpumap': invalid value '%s': vcpu %u is mapped twice", value,
                     g_array_index (pins, QpinManualPin, i).vcpu);
        return FALSE;
      }
  *out = g_steal_pointer (&pins);
  return TRUE;
}

/**
 * qpin_policy_set:
 * @key: one of qpin_policy_keys()
 * @value: its value as written in the configuration
 *
 * Returns: %TRUE if @policy now holds the value; otherwise
 * %QPIN_POLICY_ERROR_PARSE naming the key, the value and what is accepted,
 * and @policy is unchanged.
 */
gboolean
qpin_policy_set (QpinPolicy *policy, const char *key, const char *value, GError **error)
{
  gint v = 0;

  if (strcmp (key, "cpus") == 0 && parse_choice (cpus_choices, key, value, &v, error))
    policy->cpus = (QpinCpusMode) v;
  else if (strcmp (key, "numa") == 0 && parse_choice (numa_choices, key, value, &v, error))
    policy->numa = (QpinNumaMode) v;
  else if (strcmp (key, "smt") == 0 && parse_choice (smt_choices, key, value, &v, error))
    policy->smt = (QpinSmtMode) v;
  else if (strcmp (key, "emulator") == 0 && parse_choice (aux_choices, key, value, &v, error))
    policy->emulator = (QpinAuxMode) v;
  else if (strcmp (key, "iothreads") == 0 && parse_choice (aux_choices, key, value, &v, error))
    policy->iothreads = (QpinAuxMode) v;
  else if (strcmp (key, "overcommit") == 0
           && parse_choice (overcommit_choices, key, value, &v, error))
    policy->overcommit = (QpinOvercommit) v;
  else if (strcmp (key, "memory") == 0 && parse_choice (memory_choices, key, value, &v, error))
    policy->memory = (QpinMemoryMode) v;
  else if (strcmp (key, "irqs") == 0 && parse_choice (irqs_choices, key, value, &v, error))
    policy->irqs = (QpinIrqMode) v;
  else if (strcmp (key, "kind") == 0 && parse_choice (kind_choices, key, value, &v, error))
    policy->kind = (QpinKindMode) v;
  else if (strcmp (key, "sched") == 0)
    {
      QpinSchedMode mode;
      guint prio;
      if (!parse_sched (value, &mode, &prio, error))
        return FALSE;
      policy->sched = mode;
      policy->sched_priority = prio;
    }
  else if (strcmp (key, "reserved") == 0)
    {
      QpinCpuset set;
      if (!qpin_cpuset_parse (value, &set, error))
        {
          g_prefix_error (error, "key 'reserved': ");
          return FALSE;
        }
      policy->reserved = set;
    }
  else if (strcmp (key, "cpuset") == 0)
    {
      QpinCpuset set;
      if (!qpin_cpuset_parse (value, &set, error))
        {
          g_prefix_error (error, "key 'cpuset': ");
          return FALSE;
        }
      qpin_policy_set_cpuset (policy, qpin_cpuset_is_empty (&set) ? NULL : &set);
    }
  else if (strcmp (key, "cpumap") == 0)
    {
      GArray *map = NULL;
      if (!parse_cpumap (value, &map, error))
        return FALSE;
      if (policy->cpumap)
        g_array_unref (policy->cpumap);
      policy->cpumap = map;
    }
  else if (!g_strv_contains (keys, key))
    {
      g_autofree char *accepted = g_strjoinv (", ", (char **) keys);
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                   "unknown key '%s' (accepted: %s)", key, accepted);
      return FALSE;
    }
  else
    return FALSE; /* parse_choice set the error */
  return TRUE;
}

/**
 * qpin_policy_get:
 *
 * Returns: (transfer full): the value of @key as the configuration writes it.
 */
char *
qpin_policy_get (const QpinPolicy *policy, const char *key)
{
  if (strcmp (key, "cpus") == 0)
    return g_strdup (choice_name (cpus_choices, policy->cpus));
  if (strcmp (key, "numa") == 0)
    return g_strdup (choice_name (numa_choices, policy->numa));
  if (strcmp (key, "smt") == 0)
    return g_strdup (choice_name (smt_choices, policy->smt));
  if (strcmp (key, "emulator") == 0)
    return g_strdup (choice_name (aux_choices, policy->emulator));
  if (strcmp (key, "iothreads") == 0)
    return g_strdup (choice_name (aux_choices, policy->iothreads));
  if (strcmp (key, "overcommit") == 0)
    return g_strdup (choice_name (overcommit_choices, policy->overcommit));
  if (strcmp (key, "memory") == 0)
    return g_strdup (choice_name (memory_choices, policy->memory));
  if (strcmp (key, "irqs") == 0)
    return g_strdup (choice_name (irqs_choices, policy->irqs));
  if (strcmp (key, "kind") == 0)
    return g_strdup (choice_name (kind_choices, policy->kind));
  if (strcmp (key, "sched") == 0)
    return policy->sched == QPIN_SCHED_OTHER
             ? g_strdup ("other")
             : g_strdup_printf ("%s:%u", policy->sched == QPIN_SCHED_FIFO ? "fifo" : "rr",
                                policy->sched_priority);
  if (strcmp (key, "reserved") == 0)
    return qpin_cpuset_format (&policy->reserved);
  if (strcmp (key, "cpuset") == 0)
    return policy->cpuset ? qpin_cpuset_format (policy->cpuset) : g_strdup ("");
  if (strcmp (key, "cpumap") == 0)
    {
      GString *s = g_string_new (NULL);
      for (guint i = 0; policy->cpumap && i < policy->cpumap->len; i++)
        {
          const QpinManualPin *pin = &g_array_index (policy->cpumap, QpinManualPin, i);
          g_autofree char *l = qpin_cpuset_format (&pin->cpus);
          g_string_append_printf (s, "%s%u=%s", i ? ";" : "", pin->vcpu, l);
        }
      return g_string_free (s, FALSE);
    }
  return NULL;
}

/**
 * qpin_policy_set_cpuset:
 * @cpuset: (nullable): the only host CPUs the VM may use; NULL: any
 */
void
qpin_policy_set_cpuset (QpinPolicy *policy, const QpinCpuset *cpuset)
{
  g_clear_pointer (&policy->cpuset, g_free);
  if (cpuset)
    policy->cpuset = g_memdup2 (cpuset, sizeof *cpuset);
}

/* A CPU the host can never have in reserved or cpuset is a typo (8191
 * for 8-191?) or a config written for another host: refused, not ignored. */
static gboolean
check_possible (const char *who, const char *key, const QpinCpuset *set, const QpinTopology *topo,
                GError **error)
{
  QpinCpuset beyond = *set;
  g_autofree char *value = NULL, *b = NULL, *possible = NULL;

  qpin_cpuset_andnot (&beyond, &topo->possible);
  if (qpin_cpuset_is_empty (&beyond))
    return TRUE;
  value = qpin_cpuset_format (set);
  b = qpin_cpuset_format (&beyond);
  possible = qpin_cpuset_format (&topo->possible);
  g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
               "%s%s=%s: %s %s %s beyond the host's possible cpus (%s)", who, key, value,
               qpin_cpuset_count (&beyond) == 1 ? "cpu" : "cpus", b,
               qpin_cpuset_count (&beyond) == 1 ? "is" : "are", possible);
  return FALSE;
}

/**
 * qpin_policy_check:
 * @vm_name: (nullable): named in messages, NULL for [defaults]
 *
 * Looks for contradictions between @policy and the host.
 *
 * Returns: %TRUE if the policy can be honoured at all on @topo; otherwise
 * %QPIN_POLICY_ERROR_CONFLICT saying which settings contradict what.
 */
gboolean
qpin_policy_check (const QpinPolicy *policy, const QpinTopology *topo, const char *vm_name,
                   GError **error)
{
  g_autofree char *who = vm_name ? g_strdup_printf ("vm '%s': ", vm_name) : g_strdup ("");
  QpinCpuset left = topo->online;

  if (policy->smt == QPIN_SMT_REQUIRE && topo->max_threads < 2)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "%ssmt=require but the host has no SMT (one thread per core)", who);
      return FALSE;
    }
  if (!check_possible (who, "reserved", &policy->reserved, topo, error)
      || (policy->cpuset && !check_possible (who, "cpuset", policy->cpuset, topo, error)))
    return FALSE;
  qpin_cpuset_andnot (&left, &policy->reserved);
  if (qpin_cpuset_is_empty (&left))
    {
      g_autofree char *r = qpin_cpuset_format (&policy->reserved);
      g_autofree char *o = qpin_cpuset_format (&topo->online);
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "%sreserved=%s covers every online cpu (%s): none is left for vCPUs", who, r, o);
      return FALSE;
    }
  if (policy->cpuset && !qpin_cpuset_intersects (policy->cpuset, &left))
    {
      g_autofree char *c = qpin_cpuset_format (policy->cpuset);
      g_autofree char *l = qpin_cpuset_format (&left);
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "%scpuset=%s holds no online, unreserved cpu (those are %s)", who, c, l);
      return FALSE;
    }
  if (policy->cpus == QPIN_CPUS_MANUAL && (policy->cpumap == NULL || policy->cpumap->len == 0))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                   "%scpus=manual needs a cpumap (such as cpumap = 0=4,1=5)", who);
      return FALSE;
    }
  for (guint i = 0; policy->cpus == QPIN_CPUS_MANUAL && i < policy->cpumap->len; i++)
    {
      const QpinManualPin *pin = &g_array_index (policy->cpumap, QpinManualPin, i);
      QpinCpuset bad = pin->cpus;

      qpin_cpuset_andnot (&bad, &topo->online);
      if (!qpin_cpuset_is_empty (&bad))
        {
          g_autofree char *b = qpin_cpuset_format (&bad);
          g_autofree char *o = qpin_cpuset_format (&topo->online);
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_CONFLICT,
                       "%scpumap puts vcpu %u on cpus %s which are not online (online: %s)", who,
                       pin->vcpu, b, o);
          return FALSE;
        }
    }
  return TRUE;
}

/* ---- configuration ---- */

typedef struct {
  char *origin; /* "FILE: [GROUP]" or "--policy 'K=V'" for messages */
  char *vm;     /* NULL: [defaults] or an override */
  char *key;
  char *value;
  guint seq;          /* index in QpinConfig.settings */
  QpinPolicy *parsed; /* @value parsed when loaded (check_setting()): applying cannot fail */
} Setting;

struct _QpinConfig {
  GPtrArray *settings;  /* Setting, in the order they apply */
  GPtrArray *overrides; /* Setting, applied last */
  GPtrArray *vm_names;  /* char *, every [vm:NAME] seen */
  /* the settings by whom they apply to, so that merging a VM's policy
   * costs its own settings, not every VM's: */
  GPtrArray *defaults; /* Setting (not owned) with vm NULL, in order */
  GHashTable *by_vm;   /* VM name -> GPtrArray of its Setting (not owned), in order */
  GArray *allow_uids;  /* guint32: [daemon] allow_users */
  GArray *allow_gids;  /* guint32: [daemon] allow_groups */
};

static void
setting_free (gpointer p)
{
  Setting *s = p;
  g_free (s->origin);
  g_free (s->vm);
  g_free (s->key);
  g_free (s->value);
  g_clear_pointer (&s->parsed, qpin_policy_free);
  g_free (s);
}

/**
 * qpin_config_new:
 *
 * Returns: (transfer full): a configuration with every key at its default.
 */
QpinConfig *
qpin_config_new (void)
{
  QpinConfig *config = g_new0 (QpinConfig, 1);

  config->settings = g_ptr_array_new_with_free_func (setting_free);
  config->overrides = g_ptr_array_new_with_free_func (setting_free);
  config->vm_names = g_ptr_array_new_with_free_func (g_free);
  config->defaults = g_ptr_array_new ();
  config->by_vm
    = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) g_ptr_array_unref);
  config->allow_uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  config->allow_gids = g_array_new (FALSE, FALSE, sizeof (guint32));
  return config;
}

/**
 * qpin_config_free:
 * @config: (nullable): a configuration
 */
void
qpin_config_free (QpinConfig *config)
{
  if (config == NULL)
    return;
  g_hash_table_unref (config->by_vm); /* its keys and values point into settings */
  g_ptr_array_unref (config->defaults);
  g_ptr_array_unref (config->settings);
  g_ptr_array_unref (config->overrides);
  g_ptr_array_unref (config->vm_names);
  g_array_unref (config->allow_uids);
  g_array_unref (config->allow_gids);
  g_free (config);
}

static Setting *
setting_new (const char *origin, const char *vm, const char *key, const char *value)
{
  Setting *s = g_new0 (Setting, 1);
  s->origin = g_strdup (origin);
  s->vm = g_strdup (vm);
  s->key = g_strdup (key);
  s->value = g_strdup (value);
  return s;
}

/* Applies one setting to a scratch policy: the value check at load time. */
static gboolean
check_setting (Setting *s, GError **error)
{
  g_autoptr (QpinPolicy) scratch = qpin_policy_new ();

  if (s->vm && (strcmp (s->key, "reserved") == 0 || strcmp (s->key, "irqs") == 0))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                   "%s key '%s': host-wide, only accepted in [defaults]", s->origin, s->key);
      return FALSE;
    }
  if (!qpin_policy_set (scratch, s->key, s->value, error))
    {
      g_prefix_error (error, "%s ", s->origin);
      return FALSE;
    }
  s->parsed = g_steal_pointer (&scratch);
  return TRUE;
}

/* Adds @loaded (transfer full) to the settings and to the index. */
static void
add_settings (QpinConfig *config, GPtrArray *loaded)
{
  guint first = config->settings->len;

  g_ptr_array_extend_and_steal (config->settings, loaded);
  for (guint i = first; i < config->settings->len; i++)
    {
      Setting *s = g_ptr_array_index (config->settings, i);
      GPtrArray *list = s->vm ? g_hash_table_lookup (config->by_vm, s->vm) : config->defaults;

      s->seq = i;
      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_hash_table_insert (config->by_vm, s->vm, list);
        }
      g_ptr_array_add (list, s);
    }
}

/* GKeyFile's syntax errors do not say where: the line at fault is the
 * first line at which a prefix of @data stops parsing (parsing is line by
 * line).  Binary search: a few parses, and only on an error. */
static guint
syntax_error_line (const char *data)
{
  g_autoptr (GArray) ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  gsize len = strlen (data);
  guint lo = 1, hi;

  for (const char *p = data; (p = strchr (p, '\n')) != NULL; p++)
    {
      gsize end = (gsize) (p - data) + 1;
      g_array_append_val (ends, end);
    }
  if (len > 0 && data[len - 1] != '\n')
    g_array_append_val (ends, len);
  hi = MAX (ends->len, 1);
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      g_autoptr (GKeyFile) kf = g_key_file_new ();

      if (g_key_file_load_from_data (kf, data, g_array_index (ends, gsize, mid - 1),
                                     G_KEY_FILE_NONE, NULL))
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

/* One user or group, by name or number; the name is looked up now, so a
 * typo is an error at load time rather than a refused VM later. */
static gboolean
parse_id (const char *word, gboolean group, guint32 *out)
{
  guint64 v;

  if (g_ascii_string_to_unsigned (word, 10, 0, G_MAXUINT32 - 1, &v, NULL))
    {
      *out = (guint32) v;
      return TRUE;
    }
  if (group)
    {
      struct group *gr = getgrnam (word);
      if (gr != NULL)
        *out = gr->gr_gid;
      return gr != NULL;
    }
  {
    struct passwd *pw = getpwnam (word);
    if (pw != NULL)
      *out = pw->pw_uid;
    return pw != NULL;
  }
}

/* [daemon] allow_users = NAME|UID,...  allow_groups = NAME|GID,... */
static gboolean
load_daemon_group (QpinConfig *config, GKeyFile *kf, const char *filename, GError **error)
{
  g_auto (GStrv) dkeys = g_key_file_get_keys (kf, "daemon", NULL, NULL);
  g_autoptr (GArray) uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) gids = g_array_new (FALSE, FALSE, sizeof (guint32));

  for (guint k = 0; dkeys && dkeys[k]; k++)
    {
      gboolean group = strcmp (dkeys[k], daemon_keys[1]) == 0;
      g_autofree char *value = g_key_file_get_value (kf, "daemon", dkeys[k], NULL);
      g_auto (GStrv) words = NULL;

      if (!group && strcmp (dkeys[k], daemon_keys[0]) != 0)
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                       "%s: [daemon] unknown key '%s' (accepted: allow_users, allow_groups)",
                       filename, dkeys[k]);
          return FALSE;
        }
      words = g_strsplit_set (value ? value : "", ", ", -1);
      for (guint i = 0; words[i]; i++)
        {
          guint32 id;

          if (*words[i] == '\0')
            continue;
          if (!parse_id (words[i], group, &id))
            {
              g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                           "%s: [daemon] key '%s': unknown %s '%s' (accepted: %s names or "
                           "numbers, separated by commas)",
                           filename, dkeys[k], group ? "group" : "user", words[i],
                           group ? "group" : "user");
              return FALSE;
            }
          g_array_append_val (group ? gids : uids, id);
        }
    }
  g_array_append_vals (config->allow_uids, uids->data, uids->len);
  g_array_append_vals (config->allow_gids, gids->data, gids->len);
  return TRUE;
}

/**
 * qpin_config_get_allowed:
 * @uids: (out) (transfer none): guint32, the users [daemon] allow_users adds
 * @gids: (out) (transfer none): guint32, the groups of allow_groups
 *
 * Whose QEMUs the daemon manages besides root's and its own user's.
 */
void
qpin_config_get_allowed (const QpinConfig *config, const GArray **uids, const GArray **gids)
{
  *uids = config->allow_uids;
  *gids = config->allow_gids;
}

/**
 * qpin_config_load_data:
 * @data: the text of a GKeyFile
 * @filename: the file it came from, for messages
 *
 * Accepts the groups [defaults] and [vm:NAME] with the keys of
 * qpin_policy_keys(), and [daemon] with allow_users and allow_groups.
 * Nothing is kept on failure.
 *
 * Returns: %TRUE on success; otherwise %QPIN_POLICY_ERROR_PARSE naming the
 * file, group, key, value and the accepted values, or for a syntax error
 * "FILE:LINE: " and GKeyFile's message.
 */
gboolean
qpin_config_load_data (QpinConfig *config, const char *data, const char *filename, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_autoptr (GPtrArray) loaded = g_ptr_array_new_with_free_func (setting_free);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) groups = NULL;

  if (!g_key_file_load_from_data (kf, data, (gsize) -1, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE, "%s:%u: %s", filename,
                   syntax_error_line (data), local->message);
      return FALSE;
    }
  groups = g_key_file_get_groups (kf, NULL);
  /* [defaults] first wherever it is written, then the VMs in file order */
  for (guint pass = 0; pass < 2; pass++)
    for (guint g = 0; groups[g]; g++)
      {
        const char *group = groups[g];
        gboolean is_defaults = strcmp (group, "defaults") == 0;
        const char *vm = NULL;
        g_autofree char *origin = g_strdup_printf ("%s: [%s]", filename, group);
        g_auto (GStrv) gkeys = NULL;

        if (strcmp (group, "daemon") == 0)
          continue; /* after every other group parsed */
        if (!is_defaults && !g_str_has_prefix (group, "vm:"))
          {
            g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                         "%s: unknown group [%s] (accepted: [defaults], [vm:NAME], [daemon])",
                         filename, group);
            return FALSE;
          }
        if (!is_defaults)
          {
            vm = group + 3;
            if (*vm == '\0')
              {
                g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                             "%s: group [vm:] has no VM name (accepted: [vm:NAME])", filename);
                return FALSE;
              }
          }
        if ((pass == 0) != is_defaults)
          continue;
        if (vm)
          g_ptr_array_add (names, g_strdup (vm));
        gkeys = g_key_file_get_keys (kf, group, NULL, NULL);
        for (guint k = 0; gkeys && gkeys[k]; k++)
          {
            g_autofree char *value = g_key_file_get_value (kf, group, gkeys[k], NULL);
            Setting *s = setting_new (origin, vm, gkeys[k], value ? g_strstrip (value) : "");

            g_ptr_array_add (loaded, s);
            if (!check_setting (s, error))
              return FALSE;
          }
      }
  if (!load_daemon_group (config, kf, filename, error))
    return FALSE;
  add_settings (config, g_steal_pointer (&loaded));
  g_ptr_array_extend_and_steal (config->vm_names, g_steal_pointer (&names));
  return TRUE;
}

/**
 * qpin_config_add_override:
 * @key_value: "KEY=VALUE" as given to --policy
 *
 * Returns: %TRUE on success; otherwise %QPIN_POLICY_ERROR_PARSE quoting the
 * override, the key, the value and what is accepted.
 */
gboolean
qpin_config_add_override (QpinConfig *config, const char *key_value, GError **error)
{
  const char *eq = strchr (key_value, '=');
  g_autofree char *origin = g_strdup_printf ("--policy '%s':", key_value);
  g_autofree char *key = NULL;
  Setting *s;

  if (eq == NULL || eq == key_value)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                   "--policy '%s': expected KEY=VALUE", key_value);
      return FALSE;
    }
  key = g_strstrip (g_strndup (key_value, (gsize) (eq - key_value)));
  s = setting_new (origin, NULL, key, eq + 1);
  g_strstrip (s->value);
  if (!check_setting (s, error))
    {
      setting_free (s);
      return FALSE;
    }
  g_ptr_array_add (config->overrides, s);
  return TRUE;
}

/* Copies the value of @key, a known key, from @src to @dst. */
static void
copy_key (QpinPolicy *dst, const QpinPolicy *src, const char *key)
{
  if (strcmp (key, "cpus") == 0)
    dst->cpus = src->cpus;
  else if (strcmp (key, "numa") == 0)
    dst->numa = src->numa;
  else if (strcmp (key, "smt") == 0)
    dst->smt = src->smt;
  else if (strcmp (key, "emulator") == 0)
    dst->emulator = src->emulator;
  else if (strcmp (key, "iothreads") == 0)
    dst->iothreads = src->iothreads;
  else if (strcmp (key, "overcommit") == 0)
    dst->overcommit = src->overcommit;
  else if (strcmp (key, "memory") == 0)
    dst->memory = src->memory;
  else if (strcmp (key, "sched") == 0)
    {
      dst->sched = src->sched;
      dst->sched_priority = src->sched_priority;
    }
  else if (strcmp (key, "reserved") == 0)
    dst->reserved = src->reserved;
  else if (strcmp (key, "irqs") == 0)
    dst->irqs = src->irqs;
  else if (strcmp (key, "kind") == 0)
    dst->kind = src->kind;
  else if (strcmp (key, "cpuset") == 0)
    qpin_policy_set_cpuset (dst, src->cpuset);
  else if (strcmp (key, "cpumap") == 0)
    {
      g_clear_pointer (&dst->cpumap, g_array_unref);
      dst->cpumap = src->cpumap ? g_array_copy (src->cpumap) : NULL;
    }
}

/* Applies a setting: the value parsed when it was loaded, so nothing can
 * fail here (a running daemon merges policies on every new VM). */
static void
apply_one (QpinPolicy *policy, const Setting *s)
{
  copy_key (policy, s->parsed, s->key);
}

/* Applies the defaults and @vm's settings in the order they were loaded:
 * the two lists merged by their index. */
static void
apply (QpinPolicy *policy, GPtrArray *defaults, GPtrArray *vm)
{
  guint d = 0, v = 0;

  while (d < defaults->len || v < vm->len)
    {
      gboolean from_defaults = v == vm->len
                               || (d < defaults->len
                                   && ((const Setting *) defaults->pdata[d])->seq
                                        < ((const Setting *) vm->pdata[v])->seq);

      apply_one (policy, from_defaults ? defaults->pdata[d++] : vm->pdata[v++]);
    }
}

/**
 * qpin_config_policy_for:
 * @vm_name: (nullable): the VM, or NULL for the defaults
 *
 * Returns: (transfer full): the merged policy (defaults < [vm:NAME] < overrides).
 */
QpinPolicy *
qpin_config_policy_for (const QpinConfig *config, const char *vm_name, GError **error)
{
  QpinPolicy *policy = qpin_policy_new ();
  GPtrArray *vm = vm_name ? g_hash_table_lookup (config->by_vm, vm_name) : NULL;
  g_autoptr (GPtrArray) none = g_ptr_array_new ();

  apply (policy, config->defaults, vm ? vm : none);
  for (guint i = 0; i < config->overrides->len; i++)
    apply_one (policy, g_ptr_array_index (config->overrides, i));
  return policy;
}

/**
 * qpin_config_check:
 *
 * Runs qpin_policy_check() on the defaults and on every [vm:NAME].
 *
 * Returns: %TRUE if nothing contradicts the host; the first contradiction otherwise.
 */
gboolean
qpin_config_check (const QpinConfig *config, const QpinTopology *topo, GError **error)
{
  g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (config, NULL, NULL);

  if (!qpin_policy_check (defaults, topo, NULL, error))
    return FALSE;
  for (guint i = 0; i < config->vm_names->len; i++)
    {
      const char *name = g_ptr_array_index (config->vm_names, i);
      g_autoptr (QpinPolicy) p = qpin_config_policy_for (config, name, NULL);
      if (!qpin_policy_check (p, topo, name, error))
        return FALSE;
    }
  return TRUE;
}
