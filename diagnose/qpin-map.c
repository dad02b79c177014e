/* qpin-map.c: the placement drawn on the topology, as text or SVG */
#define G_LOG_DOMAIN "qpin-diagnose"

#include "qpin-map.h"

#include <string.h>

#include "qpin-text.h"

/* What sits on one CPU.  A CPU held by two exclusive threads (a broken
 * plan or a status in the middle of a change) keeps the first and counts. */
typedef struct {
  gint vm; /* index into vms of the exclusive thread on it, -1 none */
  QpinThreadRole role;
  guint index;
  guint n_exclusive;
  gint pool_vm;          /* first VM floating over it, -1 none */
  gint pool_last;        /* the last VM counted in n_pool */
  guint n_pool;          /* VMs floating over it */
  gboolean housekeeping; /* a shared emulator or iothread runs here */
} MapCpu;

struct _QpinMap {
  const QpinTopology *topo;
  QpinCpuset reserved;
  GPtrArray *vms; /* char *, names in order of appearance: the colour */
  GArray *cpus;   /* MapCpu, topo->n_slots */
};

/* ANSI colours per VM, in order; cycles after six */
static const char *const ansi[] = { "31", "32", "33", "34", "35", "36" };
static const char *const fills[]
  = { "#f4a6a6", "#a6e3a1", "#f9e2af", "#89b4fa", "#f5c2e7", "#94e2d5" };

/**
 * qpin_map_new:
 * @topo: (transfer none): must outlive the map
 * @reserved: (nullable): the policy's reserved CPUs
 *
 * Returns: (transfer full): a map with every online CPU free
 */
QpinMap *
qpin_map_new (const QpinTopology *topo, const QpinCpuset *reserved)
{
  QpinMap *map = g_new0 (QpinMap, 1);
  MapCpu empty = { .vm = -1, .pool_vm = -1, .pool_last = -1 };

  map->topo = topo;
  if (reserved)
    map->reserved = *reserved;
  map->vms = g_ptr_array_new_with_free_func (g_free);
  map->cpus = g_array_new (FALSE, FALSE, sizeof (MapCpu));
  for (guint i = 0; i < topo->n_slots; i++)
    g_array_append_val (map->cpus, empty);
  return map;
}

void
qpin_map_free (QpinMap *map)
{
  if (map == NULL)
    return;
  g_ptr_array_unref (map->vms);
  g_array_unref (map->cpus);
  g_free (map);
}

static gint
vm_index (QpinMap *map, const char *vm)
{
  for (guint i = 0; i < map->vms->len; i++)
    if (g_str_equal (g_ptr_array_index (map->vms, i), vm))
      return (gint) i;
  g_ptr_array_add (map->vms, g_strdup (vm));
  return (gint) map->vms->len - 1;
}

/**
 * qpin_map_add:
 * @exclusive: @cpus are held for this thread alone: label them with it;
 *   otherwise a vCPU marks them as a VM's pool, any other thread as
 *   housekeeping
 *
 * CPUs outside the topology's online ones are ignored.
 */
void
qpin_map_add (QpinMap *map, const QpinCpuset *cpus, const char *vm, QpinThreadRole role,
              guint index, gboolean exclusive)
{
  gint v = vm_index (map, vm);

  QPIN_CPUSET_FOREACH (cpu, cpus)
    {
      MapCpu *c;

      if ((guint) cpu >= map->cpus->len)
        break;
      c = &g_array_index (map->cpus, MapCpu, cpu);
      if (exclusive)
        {
          if (c->n_exclusive++ == 0)
            {
              c->vm = v;
              c->role = role;
              c->index = index;
            }
        }
      else if (role == QPIN_ROLE_VCPU)
        {
          if (c->pool_last != v && c->n_pool++ == 0)
            c->pool_vm = v;
          c->pool_last = v;
        }
      else
        c->housekeeping = TRUE;
    }
}

/**
 * qpin_map_add_plan:
 *
 * Labels every thread of @plan; CPUs a VM holds beyond its threads'
 * (idle siblings of smt=isolate) carry the VM's name with no thread.
 */
void
qpin_map_add_plan (QpinMap *map, const QpinPlan *plan)
{
  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      QpinCpuset extra;

      qpin_cpuset_unpack (&vm->held, &extra);
      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          QpinCpuset cpus;

          qpin_cpuset_unpack (&t->cpus, &cpus);
          qpin_map_add (map, &cpus, vm->name, t->spec.role, t->spec.index, t->exclusive);
          if (t->exclusive)
            qpin_cpuset_andnot (&extra, &cpus);
        }
      qpin_map_add (map, &extra, vm->name, QPIN_ROLE_OTHER, 0, TRUE);
    }
}

static gboolean
role_from_string (const char *text, QpinThreadRole *role)
{
  for (QpinThreadRole r = QPIN_ROLE_VCPU; r <= QPIN_ROLE_OTHER; r++)
    if (g_strcmp0 (qpin_thread_role_to_string (r), text) == 0)
      {
        *role = r;
        return TRUE;
      }
  return FALSE;
}

/* One thread of the status JSON: {"role","index","cpus" (planned)}.
 * Returns FALSE with @error when it is not of that shape. */
static gboolean
parse_status_thread (const char *vm, JsonNode *node, QpinThreadRole *role, guint *index,
                     QpinCpuset *cpus, GError **error)
{
  JsonObject *t = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *cpus_text;
  gint64 i;

  if (t == NULL
      || !role_from_string (json_object_get_string_member_with_default (t, "role", NULL), role))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                   "status: a thread of vm '%s' has no known role", vm);
      return FALSE;
    }
  i = json_object_get_int_member_with_default (t, "index", -1);
  cpus_text = json_object_get_string_member_with_default (t, "cpus", NULL);
  if (i < 0 || i > G_MAXINT || cpus_text == NULL)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                   "status: a thread of vm '%s' lacks 'index' or 'cpus'", vm);
      return FALSE;
    }
  *index = (guint) i;
  return qpin_cpuset_parse (cpus_text, cpus, error);
}

/* The threads of one VM.  A vCPU planned on one CPU holds it, on more it
 * floats; another thread holds its one CPU unless a vCPU of the VM is
 * there (emulator = share on a one-vCPU VM). */
static gboolean
add_status_vm (QpinMap *map, const char *vm, JsonArray *threads, GError **error)
{
  QpinCpuset vcpus;

  qpin_cpuset_clear_all (&vcpus);
  for (guint pass = 0; pass < 2; pass++)
    for (guint j = 0; threads && j < json_array_get_length (threads); j++)
      {
        QpinThreadRole role;
        guint index;
        QpinCpuset cpus;
        gboolean alone;

        if (!parse_status_thread (vm, json_array_get_element (threads, j), &role, &index, &cpus,
                                  error))
          return FALSE;
        if ((pass == 0) != (role == QPIN_ROLE_VCPU))
          continue;
        alone = qpin_cpuset_count (&cpus) == 1;
        if (role == QPIN_ROLE_VCPU)
          qpin_cpuset_or (&vcpus, &cpus);
        else
          alone = alone && !qpin_cpuset_intersects (&cpus, &vcpus);
        qpin_map_add (map, &cpus, vm, role, index, alone);
      }
  return TRUE;
}

/**
 * qpin_map_add_status:
 * @status: the daemon's status reply {"vms":[{"key","threads":[...]}]}
 *
 * Returns: FALSE with @error when the reply is not of that shape
 */
gboolean
qpin_map_add_status (QpinMap *map, JsonNode *status, GError **error)
{
  JsonObject *root = JSON_NODE_HOLDS_OBJECT (status) ? json_node_get_object (status) : NULL;
  JsonArray *vms = root ? json_object_get_array_member (root, "vms") : NULL;

  const char *reserved
    = root ? json_object_get_string_member_with_default (root, "reserved", NULL) : NULL;

  if (vms == NULL)
    {
      g_set_error_literal (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                           "status: no 'vms' array in the daemon's reply");
      return FALSE;
    }
  /* the daemon's housekeeping CPUs: "reserved" beside "vms" */
  if (reserved && !qpin_cpuset_parse (reserved, &map->reserved, error))
    {
      g_prefix_error (error, "status: 'reserved': ");
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonNode *vm_node = json_array_get_element (vms, i);
      JsonObject *vm = JSON_NODE_HOLDS_OBJECT (vm_node) ? json_node_get_object (vm_node) : NULL;
      const char *key = vm ? json_object_get_string_member_with_default (vm, "key", NULL) : NULL;
      JsonArray *threads = key ? json_object_get_array_member (vm, "threads") : NULL;

      if (key && !add_status_vm (map, key, threads, error))
        return FALSE;
    }
  return TRUE;
}

/* The label of @cpu and the VM whose colour it takes (-1: none). */
static char *
cpu_label (const QpinMap *map, guint cpu, gint *vm)
{
  const MapCpu *c = &g_array_index (map->cpus, MapCpu, cpu);
  g_autofree char *name = NULL;

  *vm = c->vm >= 0 ? c->vm : c->pool_vm;
  if (*vm >= 0)
    name = qpin_text_escape (g_ptr_array_index (map->vms, *vm));
  if (c->vm >= 0)
    {
      const char *more = c->n_exclusive > 1 ? "!" : "";

      switch (c->role)
        {
        case QPIN_ROLE_VCPU:
          return g_strdup_printf ("%s/vcpu%u%s", name, c->index, more);
        case QPIN_ROLE_EMULATOR:
          return g_strdup_printf ("%s/emu%s", name, more);
        case QPIN_ROLE_IOTHREAD:
          return g_strdup_printf ("%s/io%u%s", name, c->index, more);
        case QPIN_ROLE_OTHER:
        default:
          return g_strdup_printf ("%s/held%s", name, more);
        }
    }
  if (c->pool_vm >= 0)
    return c->n_pool > 1 ? g_strdup_printf ("%s+%u pool", name, c->n_pool - 1)
                         : g_strdup_printf ("%s pool", name);
  if (c->housekeeping)
    return g_strdup ("housekeeping");
  if (qpin_cpuset_has (&map->reserved, cpu))
    return g_strdup ("reserved");
  if (qpin_cpuset_has (&map->topo->isolated, cpu))
    return g_strdup ("isolated");
  return g_strdup ("free");
}

/* Calls @fn for every LLC group of node index @node (-1: CPUs in no node)
 * that has cores there, with the core indexes in order. */
typedef void (*LlcFn) (const QpinMap *map, guint llc, GArray *cores, gpointer data);

static void
foreach_llc (const QpinMap *map, gint node, LlcFn fn, gpointer data)
{
  const QpinTopology *topo = map->topo;

  for (guint l = 0; l < topo->llcs->len; l++)
    {
      g_autoptr (GArray) cores = g_array_new (FALSE, FALSE, sizeof (guint));

      for (guint k = 0; k < topo->cores->len; k++)
        {
          const QpinTopoCore *core = &g_array_index (topo->cores, QpinTopoCore, k);
          if (core->llc == l && core->node == node)
            g_array_append_val (cores, k);
        }
      if (cores->len > 0)
        fn (map, l, cores, data);
    }
}

static gboolean
node_has_cores (const QpinTopology *topo, gint node)
{
  for (guint k = 0; k < topo->cores->len; k++)
    if (g_array_index (topo->cores, QpinTopoCore, k).node == node)
      return TRUE;
  return FALSE;
}

typedef struct {
  GString *s;
  gboolean colour;
} TextCtx;

static void
text_llc (const QpinMap *map, guint l, GArray *cores, gpointer data)
{
  TextCtx *ctx = data;
  const QpinTopoLlc *llc = &g_array_index (map->topo->llcs, QpinTopoLlc, l);
  g_autofree char *cpus = qpin_cpuset_format (&llc->cpus);

  if (llc->level > 0)
    g_string_append_printf (ctx->s, "  llc %u (L%u, cpus %s)\n", l, llc->level, cpus);
  else
    g_string_append_printf (ctx->s, "  llc %u (package, cpus %s)\n", l, cpus);
  for (guint i = 0; i < cores->len; i++)
    {
      guint k = g_array_index (cores, guint, i);
      const QpinTopoCore *core = &g_array_index (map->topo->cores, QpinTopoCore, k);

      g_string_append_printf (ctx->s, "    core %-4u", core->core_id);
      QPIN_CPUSET_FOREACH (cpu, &core->cpus)
        {
          gint vm;
          g_autofree char *label = cpu_label (map, (guint) cpu, &vm);

          g_string_append_printf (ctx->s, "  cpu %-4d", cpu);
          if (ctx->colour && vm >= 0)
            g_string_append_printf (ctx->s, "\033[%sm%-16s\033[0m", ansi[vm % G_N_ELEMENTS (ansi)],
                                    label);
          else
            g_string_append_printf (ctx->s, "%-16s", label);
        }
      while (ctx->s->len > 0 && ctx->s->str[ctx->s->len - 1] == ' ')
        g_string_truncate (ctx->s, ctx->s->len - 1);
      g_string_append_c (ctx->s, '\n');
    }
}

/**
 * qpin_map_to_text:
 * @colour: ANSI colour per VM (for a terminal)
 *
 * Returns: (transfer full): one line per core, nested under its node and
 * LLC group; offline CPUs listed last
 */
char *
qpin_map_to_text (const QpinMap *map, gboolean colour)
{
  const QpinTopology *topo = map->topo;
  TextCtx ctx = { g_string_new (NULL), colour };

  for (guint n = 0; n < topo->nodes->len; n++)
    {
      const QpinTopoNode *node = &g_array_index (topo->nodes, QpinTopoNode, n);
      g_autofree char *cpus = qpin_cpuset_format (&node->cpus);

      if (!node_has_cores (topo, (gint) n))
        continue;
      g_string_append_printf (ctx.s, "node %u (cpus %s)\n", node->id, cpus);
      foreach_llc (map, (gint) n, text_llc, &ctx);
    }
  if (node_has_cores (topo, -1))
    {
      g_string_append (ctx.s, "no node\n");
      foreach_llc (map, -1, text_llc, &ctx);
    }
  if (!qpin_cpuset_is_empty (&topo->offline))
    {
      g_autofree char *off = qpin_cpuset_format (&topo->offline);
      g_string_append_printf (ctx.s, "offline: cpus %s\n", off);
    }
  return g_string_free (ctx.s, FALSE);
}

/* SVG geometry, in pixels */
enum { CELL_W = 120, CELL_H = 24, PAD = 6, CORES_PER_ROW = 8 };

typedef struct {
  GString *s;
  guint y;
} SvgCtx;

static void
svg_cpu (const QpinMap *map, SvgCtx *ctx, guint cpu, guint x, guint y)
{
  const MapCpu *c = &g_array_index (map->cpus, MapCpu, cpu);
  gint vm;
  g_autofree char *label = cpu_label (map, cpu, &vm);
  g_autofree char *text = g_markup_printf_escaped ("%u %s", cpu, label);

  g_string_append_printf (ctx->s, "<g class=\"cpu\" data-cpu=\"%u\"", cpu);
  if (c->vm >= 0 || c->pool_vm >= 0)
    {
      g_autofree char *attr
        = g_markup_printf_escaped (" data-vm=\"%s\"", (char *) g_ptr_array_index (map->vms, vm));
      g_string_append (ctx->s, attr);
    }
  if (c->vm >= 0 && c->role == QPIN_ROLE_VCPU)
    g_string_append_printf (ctx->s, " data-vcpu=\"%u\"", c->index);
  g_string_append_printf (ctx->s,
                          "><rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"%s\" "
                          "stroke=\"#444\"/><text x=\"%u\" y=\"%u\">%s</text></g>\n",
                          x, y, CELL_W, CELL_H, vm >= 0 ? fills[vm % G_N_ELEMENTS (fills)] : "#fff",
                          x + 4, y + 16, text);
}

static void
svg_llc (const QpinMap *map, guint l, GArray *cores, gpointer data)
{
  SvgCtx *ctx = data;
  guint threads = MAX (map->topo->max_threads, 1);
  guint core_h = threads * CELL_H + 2 * PAD;

  g_string_append_printf (ctx->s, "<text x=\"%u\" y=\"%u\">llc %u</text>\n", 2 * PAD, ctx->y + 14,
                          l);
  ctx->y += 20;
  for (guint i = 0; i < cores->len; i++)
    {
      guint k = g_array_index (cores, guint, i);
      const QpinTopoCore *core = &g_array_index (map->topo->cores, QpinTopoCore, k);
      guint x = 2 * PAD + (i % CORES_PER_ROW) * (CELL_W + 3 * PAD);
      guint y = ctx->y + (i / CORES_PER_ROW) * (core_h + PAD);
      guint t = 0;

      g_string_append_printf (ctx->s,
                              "<rect class=\"core\" x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" "
                              "fill=\"none\" stroke=\"#999\"/>\n",
                              x, y, CELL_W + 2 * PAD, core_h);
      QPIN_CPUSET_FOREACH (cpu, &core->cpus)
        svg_cpu (map, ctx, (guint) cpu, x + PAD, y + PAD + CELL_H * t++);
    }
  ctx->y += ((cores->len + CORES_PER_ROW - 1) / CORES_PER_ROW) * (core_h + PAD) + PAD;
}

/**
 * qpin_map_to_svg:
 *
 * Returns: (transfer full): the picture of qpin_map_to_text() as an SVG
 * document
 */
char *
qpin_map_to_svg (const QpinMap *map)
{
  const QpinTopology *topo = map->topo;
  SvgCtx ctx = { g_string_new (NULL), PAD };
  g_autoptr (GString) head = g_string_new (NULL);
  guint width = 4 * PAD + CORES_PER_ROW * (CELL_W + 3 * PAD);

  for (gint n = 0; n <= (gint) topo->nodes->len; n++)
    {
      gint node = n == (gint) topo->nodes->len ? -1 : n;

      if (!node_has_cores (topo, node))
        continue;
      if (node >= 0)
        g_string_append_printf (ctx.s,
                                "<text x=\"%u\" y=\"%u\" font-weight=\"bold\">node %u</text>\n",
                                PAD, ctx.y + 14, g_array_index (topo->nodes, QpinTopoNode, n).id);
      else
        g_string_append_printf (ctx.s, "<text x=\"%u\" y=\"%u\">no node</text>\n", PAD, ctx.y + 14);
      ctx.y += 20;
      foreach_llc (map, node, svg_llc, &ctx);
    }
  QPIN_CPUSET_FOREACH (cpu, &topo->offline)
    {
      g_string_append_printf (ctx.s,
                              "<g class=\"cpu\" data-cpu=\"%d\"><text x=\"%u\" y=\"%u\">%d offline"
                              "</text></g>\n",
                              cpu, PAD, ctx.y + 14, cpu);
      ctx.y += 20;
    }
  g_string_append_printf (head,
                          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
                          "font-family=\"monospace\" font-size=\"12\">\n",
                          width, ctx.y + PAD);
  g_string_append (ctx.s, "</svg>\n");
  g_string_prepend (ctx.s, head->str);
  return g_string_free (ctx.s, FALSE);
}
