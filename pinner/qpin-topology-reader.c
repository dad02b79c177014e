/* qpin-topology-reader.c: sysfs (and libnuma) into a QpinTopology
 *
 * Read, parse, then hand the values to the pure model; every error names
 * the file (as a full path) and the value that was wrong.
 */

#include "qpin-topology-reader.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <numa.h>
#include <string.h>

G_DEFINE_QUARK (qpin - reader - error - quark, qpin_reader_error)

#define CPU_DIR "sys/devices/system/cpu"
#define NODE_DIR "sys/devices/system/node"

typedef struct {
  const char *root;
  GPtrArray *captured; /* QpinCapturedFile, or NULL */
  gboolean libnuma;    /* live machine: distances and memory from libnuma */
} Reader;

static void
captured_file_free (gpointer p)
{
  QpinCapturedFile *f = p;
  g_free (f->path);
  g_free (f->contents);
  g_free (f);
}

/* Reads ROOT/REL.  A missing optional file gives *out = NULL and TRUE. */
static gboolean
read_file (Reader *r, const char *rel, gboolean optional, char **out, GError **error)
{
  g_autofree char *path = g_build_filename (r->root, rel, NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &contents, NULL, &local))
    {
      if (optional && g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          *out = NULL;
          return TRUE;
        }
      g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_MISSING, "%s", local->message);
      return FALSE;
    }
  if (r->captured)
    {
      QpinCapturedFile *f = g_new0 (QpinCapturedFile, 1);
      f->path = g_strdup (rel);
      f->contents = g_strdup (contents);
      g_ptr_array_add (r->captured, f);
    }
  *out = g_steal_pointer (&contents);
  return TRUE;
}

static gboolean
invalid (Reader *r, const char *rel, const char *value, const char *expected, GError **error)
{
  g_autofree char *path = g_build_filename (r->root, rel, NULL);
  g_autofree char *shown = g_strstrip (g_strdup (value));

  g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_INVALID,
               "%s: invalid value '%s': expected %s", path, shown, expected);
  return FALSE;
}

static gboolean
read_uint (Reader *r, const char *rel, guint *out, GError **error)
{
  g_autofree char *text = NULL;
  g_autofree char *copy = NULL;
  guint64 value;

  if (!read_file (r, rel, FALSE, &text, error))
    return FALSE;
  copy = g_strstrip (g_strdup (text));
  if (!g_ascii_string_to_unsigned (copy, 10, 0, G_MAXINT32, &value, NULL))
    return invalid (r, rel, text, "a non-negative integer", error);
  *out = (guint) value;
  return TRUE;
}

/* Reads a cpulist file; a missing optional one is the empty set. */
static gboolean
read_cpulist (Reader *r, const char *rel, gboolean optional, QpinCpuset *out, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;

  if (!read_file (r, rel, optional, &text, error))
    return FALSE;
  /* an unallocated kernel mask prints as "(null)" (nohz_full without the boot option),
   * right-aligned to the number of CPUs: "  (null)" on 8 */
  if (text == NULL || (optional && g_str_has_prefix (g_strstrip (text), "(null)")))
    {
      qpin_cpuset_clear_all (out);
      return TRUE;
    }
  if (!qpin_cpuset_parse (text, out, &local))
    {
      g_autofree char *expected
        = g_strdup_printf ("a cpulist such as '0-3,8' (%s)", local->message);
      return invalid (r, rel, text, expected, error);
    }
  return TRUE;
}

static gboolean
read_cpu (Reader *r, guint cpu, QpinTopology *topo, GError **error)
{
  QpinTopoCpuInfo info = { .cpu = cpu };
  g_autofree char *base = g_strdup_printf (CPU_DIR "/cpu%u", cpu);
  g_autofree char *pkg = g_strconcat (base, "/topology/physical_package_id", NULL);
  g_autofree char *core = g_strconcat (base, "/topology/core_id", NULL);
  g_autofree char *sibs = g_strconcat (base, "/topology/thread_siblings_list", NULL);

  if (!read_uint (r, pkg, &info.package_id, error) || !read_uint (r, core, &info.core_id, error)
      || !read_cpulist (r, sibs, TRUE, &info.siblings, error))
    return FALSE;
  qpin_cpuset_clear_all (&info.llc);
  for (guint k = 0;; k++)
    {
      g_autofree char *level_rel = g_strdup_printf ("%s/cache/index%u/level", base, k);
      g_autofree char *list_rel = g_strdup_printf ("%s/cache/index%u/shared_cpu_list", base, k);
      g_autofree char *level_text = NULL;
      QpinCpuset shared;
      guint level;

      if (!read_file (r, level_rel, TRUE, &level_text, error))
        return FALSE;
      if (level_text == NULL)
        break;
      {
        g_autofree char *copy = g_strstrip (g_strdup (level_text));
        guint64 v;
        if (!g_ascii_string_to_unsigned (copy, 10, 1, 9, &v, NULL))
          return invalid (r, level_rel, level_text, "a cache level from 1 to 9", error);
        level = (guint) v;
      }
      if (!read_cpulist (r, list_rel, FALSE, &shared, error))
        return FALSE;
      if (level >= info.llc_level)
        {
          info.llc_level = level;
          info.llc = shared;
        }
    }
  qpin_topology_add_cpu (topo, &info);
  return TRUE;
}

static gboolean
parse_meminfo (Reader *r, const char *rel, const char *text, guint64 *total, guint64 *free_kb,
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
        return invalid (r, rel, lines[i],
                        "'Node M MemTotal: N kB' and 'Node M MemFree: N kB' lines", error);
      *dest = v;
    }
  if (!have_total || !have_free)
    return invalid (r, rel, text, "'Node M MemTotal: N kB' and 'Node M MemFree: N kB' lines",
                    error);
  return TRUE;
}

static gboolean
read_distance_row (Reader *r, const char *rel, GArray *row, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) fields = NULL;

  if (!read_file (r, rel, FALSE, &text, error))
    return FALSE;
  fields = g_strsplit_set (g_strstrip (text), " \t", -1);
  for (guint i = 0; fields[i]; i++)
    {
      guint64 v;
      if (*fields[i] == '\0')
        continue;
      if (!g_ascii_string_to_unsigned (fields[i], 10, 1, 255, &v, NULL))
        return invalid (r, rel, text, "node distances from 1 to 255 separated by spaces", error);
      guint d = (guint) v;
      g_array_append_val (row, d);
    }
  if (row->len == 0)
    return invalid (r, rel, text, "node distances from 1 to 255 separated by spaces", error);
  return TRUE;
}

static gboolean
read_node (Reader *r, guint node, const QpinCpuset *node_ids, QpinTopology *topo, GError **error)
{
  g_autofree char *base = g_strdup_printf (NODE_DIR "/node%u", node);
  g_autofree char *cpulist = g_strconcat (base, "/cpulist", NULL);
  g_autofree char *distance = g_strconcat (base, "/distance", NULL);
  g_autofree char *meminfo = g_strconcat (base, "/meminfo", NULL);
  g_autoptr (GArray) row = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree char *mem_text = NULL;
  guint64 total = 0, free_kb = 0;
  QpinCpuset cpus;

  if (!read_cpulist (r, cpulist, FALSE, &cpus, error))
    return FALSE;
  if (r->libnuma)
    {
      long long free_bytes = 0;
      long long total_bytes = numa_node_size64 ((int) node, &free_bytes);

      QPIN_CPUSET_FOREACH (other, node_ids)
        {
          guint d = (guint) numa_distance ((int) node, other);
          g_array_append_val (row, d);
        }
      if (total_bytes >= 0)
        {
          total = (guint64) total_bytes / 1024;
          free_kb = (guint64) free_bytes / 1024;
        }
    }
  else
    {
      if (!read_distance_row (r, distance, row, error))
        return FALSE;
      if (!read_file (r, meminfo, TRUE, &mem_text, error))
        return FALSE;
      if (mem_text && !parse_meminfo (r, meminfo, mem_text, &total, &free_kb, error))
        return FALSE;
    }
  qpin_topology_add_node (topo, node, &cpus, total, free_kb, (const guint *) row->data, row->len);
  return TRUE;
}

/**
 * qpin_topology_read:
 * @root: "/" for the live machine, or a sysfs-shaped directory
 * @captured: (out) (optional) (transfer full): if not NULL, every file read,
 *   as #QpinCapturedFile in read order; everything then comes from sysfs
 *
 * Returns: (transfer full): the finished topology, or NULL with
 * %QPIN_READER_ERROR naming the file and value, or %QPIN_POLICY_ERROR
 * when the files contradict each other.
 */
QpinTopology *
qpin_topology_read (const char *root, GPtrArray **captured, GError **error)
{
  g_autoptr (QpinTopology) topo = qpin_topology_new ();
  g_autoptr (GPtrArray) files = NULL;
  g_autofree char *node_online = NULL;
  QpinCpuset possible, present, online, isolated, nohz, node_ids;
  Reader r = { .root = root };

  if (captured)
    files = g_ptr_array_new_with_free_func (captured_file_free);
  r.captured = files;
  r.libnuma = captured == NULL && g_strcmp0 (root, "/") == 0 && numa_available () >= 0;

  if (!read_cpulist (&r, CPU_DIR "/possible", TRUE, &possible, error)
      || !read_cpulist (&r, CPU_DIR "/present", FALSE, &present, error)
      || !read_cpulist (&r, CPU_DIR "/online", FALSE, &online, error)
      || !read_cpulist (&r, CPU_DIR "/isolated", TRUE, &isolated, error)
      || !read_cpulist (&r, CPU_DIR "/nohz_full", TRUE, &nohz, error))
    return NULL;
  qpin_topology_set_cpus (topo, &present, &online, &isolated, &nohz);
  qpin_topology_set_possible (topo, &possible);
  QPIN_CPUSET_FOREACH (cpu, &online)
    if (!read_cpu (&r, (guint) cpu, topo, error))
      return NULL;

  if (!read_file (&r, NODE_DIR "/online", TRUE, &node_online, error))
    return NULL;
  if (node_online)
    {
      g_autoptr (GError) local = NULL;
      if (!qpin_cpuset_parse (node_online, &node_ids, &local))
        {
          invalid (&r, NODE_DIR "/online", node_online, "a list of node numbers such as '0-3'",
                   error);
          return NULL;
        }
      QPIN_CPUSET_FOREACH (node, &node_ids)
        if (!read_node (&r, (guint) node, &node_ids, topo, error))
          return NULL;
    }
  if (!qpin_topology_finish (topo, error))
    {
      g_prefix_error (error, "%s: ", root);
      return NULL;
    }
  if (captured)
    *captured = g_steal_pointer (&files);
  return g_steal_pointer (&topo);
}

/**
 * qpin_topology_write_capture:
 * @captured: files from qpin_topology_read()
 * @dir: where to write them (created if needed)
 *
 * Writes the files so that qpin_topology_read (@dir) reads what was read.
 *
 * Returns: %TRUE on success, %QPIN_READER_ERROR_CAPTURE naming the path otherwise.
 */
gboolean
qpin_topology_write_capture (GPtrArray *captured, const char *dir, GError **error)
{
  for (guint i = 0; i < captured->len; i++)
    {
      const QpinCapturedFile *f = g_ptr_array_index (captured, i);
      g_autofree char *path = g_build_filename (dir, f->path, NULL);
      g_autofree char *parent = g_path_get_dirname (path);
      g_autoptr (GError) local = NULL;

      if (g_mkdir_with_parents (parent, 0755) < 0)
        {
          int saved = errno;
          g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_CAPTURE,
                       "%s: cannot create directory: %s", parent, g_strerror (saved));
          return FALSE;
        }
      if (!g_file_set_contents (path, f->contents, -1, &local))
        {
          g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_CAPTURE, "%s: cannot write: %s",
                       path, local->message);
          return FALSE;
        }
    }
  return TRUE;
}
