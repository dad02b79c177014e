/* qpin-topology-reader-nodes.c: NUMA nodes from sysfs (and libnuma)
 *
 * Node ids may be sparse (an offline socket, memory-only CXL or HBM nodes),
 * and a node may have no CPU.  A distance row holds one distance per
 * online node, or (older kernels, captures) one per node id from 0: both
 * are read.  Every file here is optional; what is missing or wrong
 * degrades with a note, never an error.
 */
#define QPIN_TOPOLOGY_READER_ALLOW

#include "qpin-topology-reader-private.h"

#include <numa.h>
#include <string.h>

#define DEFAULT_DISTANCES "distances 10 local, 20 remote"

typedef struct {
  guint id;
  QpinCpuset cpus;
  guint64 total_kb, free_kb;
  GArray *row; /* guint: the distances as read, NULL when unreadable */
} NodeRead;

static void
node_read_clear (gpointer p)
{
  NodeRead *n = p;
  g_clear_pointer (&n->row, g_array_unref);
}

static char *
node_file (guint node, const char *name)
{
  return g_strdup_printf (NODE_DIR "/node%u/%s", node, name);
}

/* node ids: node/online, else the nodeM directories; FALSE (with a note)
 * when neither names a node: the model then has one node 0. */
static gboolean
read_node_ids (QpinReader *r, QpinCpuset *ids)
{
  g_autofree char *dir = g_build_filename (r->root, NODE_DIR, NULL);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      /* a kernel without CONFIG_NUMA */
      qpin_topology_add_note (r->topo, NODE_DIR " missing; one node 0 with every cpu");
      return FALSE;
    }
  if (qpin_reader_try_cpulist (r, NODE_DIR "/online", "nodes from the nodeM directories", ids)
      || qpin_reader_list_dirs (r, NODE_DIR, "node", ids))
    return TRUE;
  qpin_topology_add_note (r->topo, "no " NODE_DIR "/nodeM directory; one node 0 with every cpu");
  return FALSE;
}

static gboolean
parse_meminfo (QpinReader *r, const char *rel, const char *text, guint64 *total, guint64 *free_kb,
               GError **error)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  gboolean have_total = FALSE, have_free = FALSE;

  for (guint i = 0; lines[i]; i++)
    {
      g_auto (GStrv) f = NULL;
      const char *word[4] = { NULL };
      guint64 *dest = NULL;
      guint64 v;
      guint n;

      if (strstr (lines[i], "MemTotal:"))
        dest = total, have_total = TRUE;
      else if (strstr (lines[i], "MemFree:"))
        dest = free_kb, have_free = TRUE;
      else
        continue;
      /* "Node 0 MemTotal:       5073108 kB" */
      f = g_strsplit_set (lines[i], " \t", -1);
      n = 0;
      for (guint j = 0; f[j] && n < 4; j++)
        if (*f[j])
          word[n++] = f[j];
      if (n < 4 || !g_ascii_string_to_unsigned (word[3], 10, 0, G_MAXUINT64, &v, NULL))
        return qpin_reader_invalid (
          r, rel, lines[i], "'Node M MemTotal: N kB' and 'Node M MemFree: N kB' lines", error);
      *dest = v;
    }
  if (!have_total || !have_free)
    return qpin_reader_invalid (r, rel, text,
                                "'Node M MemTotal: N kB' and 'Node M MemFree: N kB' lines", error);
  return TRUE;
}

static gboolean
read_distance_row (QpinReader *r, const char *rel, GArray *row, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;

  if (!qpin_reader_read_file (r, rel, FALSE, &text, error))
    return FALSE;
  fields = g_strsplit_set (g_strstrip (text), " \t", -1);
  for (guint i = 0; fields[i]; i++)
    {
      guint64 v;
      guint d;

      if (*fields[i] == '\0')
        continue;
      if (!g_ascii_string_to_unsigned (fields[i], 10, 1, 255, &v, NULL))
        return qpin_reader_invalid (r, rel, text,
                                    "node distances from 1 to 255 separated by spaces", error);
      d = (guint) v;
      g_array_append_val (row, d);
    }
  if (row->len == 0)
    return qpin_reader_invalid (r, rel, text, "node distances from 1 to 255 separated by spaces",
                                error);
  return TRUE;
}

/* Distances and memory from libnuma (live machine): one distance per online node. */
static void
read_node_libnuma (QpinReader *r, NodeRead *n, const QpinCpuset *ids)
{
  long long free_bytes = 0;
  long long total_bytes = numa_node_size64 ((int) n->id, &free_bytes);

  n->row = g_array_new (FALSE, FALSE, sizeof (guint));
  QPIN_CPUSET_FOREACH (other, ids)
    {
      guint d = (guint) numa_distance ((int) n->id, other);
      if (d == 0)
        {
          qpin_topology_add_note (r->topo, "libnuma has no distance from node %u to node %d; %s",
                                  n->id, other, DEFAULT_DISTANCES);
          g_clear_pointer (&n->row, g_array_unref);
          break;
        }
      g_array_append_val (n->row, d);
    }
  if (total_bytes >= 0)
    {
      n->total_kb = (guint64) total_bytes / 1024;
      n->free_kb = (guint64) free_bytes / 1024;
    }
}

static void
read_node_sysfs (QpinReader *r, NodeRead *n)
{
  g_autofree char *distance = node_file (n->id, "distance");
  g_autofree char *meminfo = node_file (n->id, "meminfo");
  g_autofree char *mem_text = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (GArray) row = g_array_new (FALSE, FALSE, sizeof (guint));

  if (read_distance_row (r, distance, row, &local))
    n->row = g_steal_pointer (&row);
  else
    qpin_reader_note_error (r, local, DEFAULT_DISTANCES);
  g_clear_error (&local);
  if (!qpin_reader_read_file (r, meminfo, TRUE, &mem_text, &local)
      || (mem_text && !parse_meminfo (r, meminfo, mem_text, &n->total_kb, &n->free_kb, &local)))
    {
      qpin_reader_note_error (r, local, "memory unknown (0)");
      n->total_kb = n->free_kb = 0;
    }
}

static void
read_node (QpinReader *r, NodeRead *n, const QpinCpuset *ids)
{
  g_autofree char *cpulist = node_file (n->id, "cpulist");
  g_autoptr (GError) local = NULL;

  if (!qpin_reader_read_cpulist (r, cpulist, FALSE, &n->cpus, &local))
    {
      qpin_reader_note_error (r, local, "no cpus in this node");
      qpin_cpuset_clear_all (&n->cpus);
    }
  qpin_cpuset_and (&n->cpus, &r->topo->online);
  if (r->libnuma)
    read_node_libnuma (r, n, ids);
  else
    read_node_sysfs (r, n);
}

/* A CPU in two nodes stays in the first; an online CPU in none goes to the first node. */
static void
resolve_node_cpus (QpinReader *r, GArray *nodes)
{
  QpinCpuset seen, orphans;
  NodeRead *first = &g_array_index (nodes, NodeRead, 0);

  qpin_cpuset_clear_all (&seen);
  for (guint i = 0; i < nodes->len; i++)
    {
      NodeRead *n = &g_array_index (nodes, NodeRead, i);
      QpinCpuset both = n->cpus;

      qpin_cpuset_and (&both, &seen);
      if (!qpin_cpuset_is_empty (&both))
        {
          g_autofree char *s = qpin_cpuset_format (&both);
          qpin_topology_add_note (r->topo,
                                  NODE_DIR "/node%u/cpulist: cpus %s are also in a node before it; "
                                           "kept there only",
                                  n->id, s);
          qpin_cpuset_andnot (&n->cpus, &both);
        }
      qpin_cpuset_or (&seen, &n->cpus);
    }
  orphans = r->topo->online;
  qpin_cpuset_andnot (&orphans, &seen);
  if (!qpin_cpuset_is_empty (&orphans))
    {
      g_autofree char *s = qpin_cpuset_format (&orphans);
      qpin_topology_add_note (r->topo,
                              NODE_DIR "/nodeM/cpulist: online cpus %s are in no node; "
                                       "put in node %u",
                              s, first->id);
      qpin_cpuset_or (&first->cpus, &orphans);
    }
}

/* A row as one distance per node in index order: a row of one distance per
 * online node is that already; a longer one is indexed by node id. */
static gboolean
row_by_index (const GArray *row, const QpinCpuset *ids, guint n, guint *out)
{
  guint i = 0;

  if (row->len == n)
    {
      memcpy (out, row->data, n * sizeof (guint));
      return TRUE;
    }
  if (row->len <= (guint) qpin_cpuset_last (ids))
    return FALSE;
  QPIN_CPUSET_FOREACH (id, ids)
    out[i++] = g_array_index (row, guint, id);
  return TRUE;
}

/* The n x n distance matrix in node index order; any unusable row makes
 * every distance the kernel's default (10 local, 20 remote), with a note. */
static guint *
resolve_distances (QpinReader *r, GArray *nodes, const QpinCpuset *ids)
{
  guint n = nodes->len;
  g_autofree guint *matrix = g_new (guint, n * n);

  for (guint i = 0; i < n; i++)
    {
      const NodeRead *node = &g_array_index (nodes, NodeRead, i);
      g_autofree char *ids_text = NULL;
      g_autofree char *rel = NULL;

      if (node->row && row_by_index (node->row, ids, n, matrix + i * n))
        continue;
      if (node->row) /* a missing row was noted when read */
        {
          ids_text = qpin_cpuset_format (ids);
          rel = node_file (node->id, "distance");
          qpin_topology_add_note (r->topo,
                                  "%s: %u distances for nodes %s (expected one per node, or one "
                                  "per node id up to %d); %s",
                                  rel, node->row->len, ids_text, qpin_cpuset_last (ids),
                                  DEFAULT_DISTANCES);
        }
      for (guint a = 0; a < n; a++)
        for (guint b = 0; b < n; b++)
          matrix[a * n + b] = a == b ? 10 : 20;
      break;
    }
  return g_steal_pointer (&matrix);
}

/**
 * qpin_reader_read_nodes:
 *
 * Reads every online node into the topology (after its CPUs are set).
 * Never fails: without node information the model has one node 0.
 */
void
qpin_reader_read_nodes (QpinReader *r)
{
  g_autoptr (GArray) nodes = g_array_new (FALSE, TRUE, sizeof (NodeRead));
  g_autofree guint *matrix = NULL;
  QpinCpuset ids;

  if (!read_node_ids (r, &ids))
    return;
  g_array_set_clear_func (nodes, node_read_clear);
  QPIN_CPUSET_FOREACH (id, &ids)
    {
      NodeRead n = { .id = (guint) id };
      g_array_append_val (nodes, n);
      read_node (r, &g_array_index (nodes, NodeRead, nodes->len - 1), &ids);
    }
  resolve_node_cpus (r, nodes);
  matrix = resolve_distances (r, nodes, &ids);
  for (guint i = 0; i < nodes->len; i++)
    {
      const NodeRead *n = &g_array_index (nodes, NodeRead, i);
      qpin_topology_add_node (r->topo, n->id, &n->cpus, n->total_kb, n->free_kb,
                              matrix + i * nodes->len, nodes->len);
    }
}
