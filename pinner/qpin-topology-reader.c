/* qpin-topology-reader.c: sysfs (and libnuma) into a QpinTopology
 *
 * Read, parse, then hand the values to the pure model; every error names
 * the file (as a full path) and the value that was wrong.
 */
#define QPIN_TOPOLOGY_READER_ALLOW

#include "qpin-topology-reader-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <numa.h>
#include <string.h>

/* spelt out: G_DEFINE_QUARK's first argument does not survive clang-format */
GQuark
qpin_reader_error_quark (void)
{
  return g_quark_from_static_string ("qpin-reader-error-quark");
}

static void
captured_file_free (gpointer p)
{
  QpinCapturedFile *f = p;
  g_free (f->path);
  g_free (f->contents);
  g_free (f);
}

static void
record (QpinReader *r, const char *rel, const char *contents)
{
  QpinCapturedFile *f;

  if (r->captured == NULL)
    return;
  f = g_new0 (QpinCapturedFile, 1);
  f->path = g_strdup (rel);
  f->contents = g_strdup (contents);
  g_ptr_array_add (r->captured, f);
}

/* Reads ROOT/REL.  A missing optional file gives *out = NULL and TRUE. */
gboolean
qpin_reader_read_file (QpinReader *r, const char *rel, gboolean optional, char **out,
                       GError **error)
{
  g_autofree char *path = g_build_filename (r->root, rel, NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &contents, NULL, &local))
    {
      gboolean noent = g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT);

      if (optional && noent)
        {
          *out = NULL;
          return TRUE;
        }
      if (noent)
        g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_MISSING, "%s missing", path);
      else
        g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_MISSING, "%s", local->message);
      return FALSE;
    }
  record (r, rel, contents);
  *out = g_steal_pointer (&contents);
  return TRUE;
}

gboolean
qpin_reader_invalid (QpinReader *r, const char *rel, const char *value, const char *expected,
                     GError **error)
{
  g_autofree char *path = g_build_filename (r->root, rel, NULL);
  g_autofree char *shown = g_strstrip (g_strdup (value));

  g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_INVALID,
               "%s: invalid value '%s': expected %s", path, shown, expected);
  return FALSE;
}

/* A note from a reading error: the file named relative to the root (so that
 * a capture notes what the live machine noted), then what qpin did instead. */
void
qpin_reader_note_error (QpinReader *r, const GError *error, const char *consequence)
{
  g_autofree char *sys = g_build_filename (r->root, "sys", NULL);
  g_autofree char *needle = g_strconcat (sys, "/devices/", NULL);
  g_autofree char *message = g_strdup (error->message);
  gsize cut = strlen (sys) - strlen ("sys"); /* the root and its separator */
  char *at;

  while ((at = strstr (message, needle)) != NULL)
    memmove (at, at + cut, strlen (at + cut) + 1);
  qpin_topology_add_note (r->topo, "%s; %s", message, consequence);
}

static gboolean
read_uint (QpinReader *r, const char *rel, guint *out, GError **error)
{
  g_autofree char *text = NULL;
  g_autofree char *copy = NULL;
  guint64 value;

  if (!qpin_reader_read_file (r, rel, FALSE, &text, error))
    return FALSE;
  copy = g_strstrip (g_strdup (text));
  if (!g_ascii_string_to_unsigned (copy, 10, 0, G_MAXINT32, &value, NULL))
    return qpin_reader_invalid (r, rel, text, "a non-negative integer", error);
  *out = (guint) value;
  return TRUE;
}

/* Reads a cpulist file; a missing optional one is the empty set. */
gboolean
qpin_reader_read_cpulist (QpinReader *r, const char *rel, gboolean optional, QpinCpuset *out,
                          GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;

  if (!qpin_reader_read_file (r, rel, optional, &text, error))
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
      return qpin_reader_invalid (r, rel, text, expected, error);
    }
  return TRUE;
}

/* The numbers N of the directories DIR/PREFIX<N>, recorded in a capture as
 * directories, so that reading the capture lists the same ones. */
gboolean
qpin_reader_list_dirs (QpinReader *r, const char *dir, const char *prefix, QpinCpuset *out)
{
  g_autofree char *path = g_build_filename (r->root, dir, NULL);
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;

  qpin_cpuset_clear_all (out);
  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *rel = g_build_filename (dir, name, NULL);
      g_autofree char *full = g_build_filename (r->root, rel, NULL);
      guint64 n;

      if (!g_str_has_prefix (name, prefix)
          || !g_ascii_string_to_unsigned (name + strlen (prefix), 10, 0, QPIN_CPUSET_MAX - 1, &n,
                                          NULL)
          || !g_file_test (full, G_FILE_TEST_IS_DIR))
        continue;
      qpin_cpuset_add (out, (guint) n);
      record (r, rel, NULL);
    }
  return !qpin_cpuset_is_empty (out);
}

/* Reads a non-empty cpulist; on a missing, unreadable, garbage or empty file,
 * notes it with CONSEQUENCE and returns FALSE. */
gboolean
qpin_reader_try_cpulist (QpinReader *r, const char *rel, const char *consequence, QpinCpuset *out)
{
  g_autofree char *path = g_build_filename (r->root, rel, NULL);
  g_autoptr (GError) local = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      qpin_topology_add_note (r->topo, "%s missing; %s", rel, consequence);
      return FALSE;
    }
  if (!qpin_reader_read_cpulist (r, rel, FALSE, out, &local))
    {
      qpin_reader_note_error (r, local, consequence);
      return FALSE;
    }
  if (!qpin_cpuset_is_empty (out))
    return TRUE;
  qpin_topology_add_note (r->topo, "%s is empty; %s", rel, consequence);
  return FALSE;
}

/* present: cpu/present, else cpu/possible, else the cpuN directories. */
static gboolean
read_present (QpinReader *r, QpinCpuset *present, GError **error)
{
  if (qpin_reader_try_cpulist (r, CPU_DIR "/present", "present cpus from " CPU_DIR "/possible",
                               present))
    return TRUE;
  if (qpin_reader_try_cpulist (r, CPU_DIR "/possible",
                               "present cpus from the " CPU_DIR "/cpuN directories", present))
    return TRUE;
  if (qpin_reader_list_dirs (r, CPU_DIR, "cpu", present))
    return TRUE;
  g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_MISSING,
               "%s: no cpu: no present or possible cpulist and no cpuN directory", r->root);
  return FALSE;
}

/* online: cpu/online, else each present CPU's cpuN/online file (0 or 1); a
 * CPU without one (CPU 0 often cannot go offline) is online if its
 * directory exists. */
static void
read_online (QpinReader *r, const QpinCpuset *present, QpinCpuset *online)
{
  if (qpin_reader_try_cpulist (r, CPU_DIR "/online", "online cpus from the cpuN/online files",
                               online))
    return;
  qpin_cpuset_clear_all (online);
  QPIN_CPUSET_FOREACH (cpu, present)
    {
      g_autofree char *rel = g_strdup_printf (CPU_DIR "/cpu%d/online", cpu);
      g_autofree char *dir = g_strdup_printf ("%s/" CPU_DIR "/cpu%d", r->root, cpu);
      g_autofree char *text = NULL;
      g_autoptr (GError) local = NULL;

      if (!qpin_reader_read_file (r, rel, TRUE, &text, &local))
        {
          qpin_reader_note_error (r, local, "cpu taken as offline");
          continue;
        }
      if (text == NULL)
        {
          if (g_file_test (dir, G_FILE_TEST_IS_DIR))
            qpin_cpuset_add (online, (guint) cpu);
          continue;
        }
      g_strstrip (text);
      if (g_str_equal (text, "1"))
        qpin_cpuset_add (online, (guint) cpu);
      else if (!g_str_equal (text, "0"))
        {
          qpin_reader_invalid (r, rel, text, "0 or 1", &local);
          qpin_reader_note_error (r, local, "cpu taken as offline");
        }
    }
}

/* An online CPU without a topology directory went offline while we read
 * (the kernel removes the directory first): taken as offline, with a note,
 * so that the other CPUs keep their reading.  When no online CPU has one,
 * the tree is just poor: every CPU stays, read with defaults. */
static void
drop_vanished (QpinReader *r, QpinCpuset *online)
{
  QpinCpuset gone;
  g_autofree char *s = NULL;

  qpin_cpuset_clear_all (&gone);
  QPIN_CPUSET_FOREACH (cpu, online)
    {
      g_autofree char *rel = g_strdup_printf (CPU_DIR "/cpu%d/topology", cpu);
      g_autofree char *path = g_build_filename (r->root, rel, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        record (r, rel, NULL);
      else
        qpin_cpuset_add (&gone, (guint) cpu);
    }
  if (qpin_cpuset_is_empty (&gone) || qpin_cpuset_equal (&gone, online))
    return;
  s = qpin_cpuset_format (&gone);
  qpin_topology_add_note (r->topo,
                          CPU_DIR "/cpuN/topology missing for online cpus %s; taken as "
                                  "offline",
                          s);
  qpin_cpuset_andnot (online, &gone);
}

/* What one online CPU's files lacked: one note per kind, naming the first
 * file and every CPU it happened to. */
typedef enum {
  PROBLEM_PACKAGE,
  PROBLEM_CORE,
  PROBLEM_SIBLINGS,
  PROBLEM_CACHE,
  PROBLEM_CLUSTER,
  N_PROBLEMS,
} Problem;

static const char *const problem_consequence[N_PROBLEMS] = {
  "package of a thread sibling, else 0",
  "core id = cpu number",
  "the cpu alone in its core",
  "cache info ignored",
  "cluster info ignored",
};

typedef struct {
  char *first[N_PROBLEMS];
  QpinCpuset cpus[N_PROBLEMS];
} Problems;

static void
problem (Problems *p, Problem kind, guint cpu, GError *error)
{
  if (p->first[kind] == NULL)
    p->first[kind] = g_strdup (error->message);
  qpin_cpuset_add (&p->cpus[kind], cpu);
}

static void
problems_note (QpinReader *r, Problems *p)
{
  for (guint k = 0; k < N_PROBLEMS; k++)
    {
      g_autoptr (GError) e = NULL;
      g_autofree char *cpus = NULL;
      g_autofree char *what = NULL;

      if (p->first[k] == NULL)
        continue;
      cpus = qpin_cpuset_format (&p->cpus[k]);
      what = g_strdup_printf ("for cpus %s: %s", cpus, problem_consequence[k]);
      e = g_error_new_literal (QPIN_READER_ERROR, QPIN_READER_ERROR_INVALID, p->first[k]);
      qpin_reader_note_error (r, e, what);
      g_clear_pointer (&p->first[k], g_free);
    }
}

/* The last level cache: the cache index with the highest level (a CPU has
 * 3 to 5; a hostile tree stops at MAX_CACHE_INDEX).  FALSE (with *error) on
 * a garbage file: then the CPU has no cache info at all. */
#define MAX_CACHE_INDEX 64

static gboolean
read_cache (QpinReader *r, const char *base, QpinTopoCpuInfo *info, GError **error)
{
  for (guint k = 0; k < MAX_CACHE_INDEX; k++)
    {
      g_autofree char *level_rel = g_strdup_printf ("%s/cache/index%u/level", base, k);
      g_autofree char *list_rel = g_strdup_printf ("%s/cache/index%u/shared_cpu_list", base, k);
      g_autofree char *level_text = NULL;
      g_autofree char *copy = NULL;
      QpinCpuset shared;
      guint64 level;

      if (!qpin_reader_read_file (r, level_rel, TRUE, &level_text, error))
        return FALSE;
      if (level_text == NULL)
        return TRUE;
      copy = g_strstrip (g_strdup (level_text));
      if (!g_ascii_string_to_unsigned (copy, 10, 1, 9, &level, NULL))
        return qpin_reader_invalid (r, level_rel, level_text, "a cache level from 1 to 9", error);
      if (!qpin_reader_read_cpulist (r, list_rel, FALSE, &shared, error))
        return FALSE;
      if (level >= info->llc_level)
        {
          info->llc_level = (guint) level;
          info->llc = shared;
        }
    }
  return TRUE;
}

static void
read_cpu (QpinReader *r, Problems *p, guint cpu, GArray *infos)
{
  QpinTopoCpuInfo info = { .cpu = cpu };
  g_autofree char *base = g_strdup_printf (CPU_DIR "/cpu%u", cpu);
  g_autofree char *pkg = g_strconcat (base, "/topology/physical_package_id", NULL);
  g_autofree char *core = g_strconcat (base, "/topology/core_id", NULL);
  g_autofree char *sibs = g_strconcat (base, "/topology/thread_siblings_list", NULL);
  g_autofree char *cluster = g_strconcat (base, "/topology/cluster_cpus_list", NULL);
  g_autoptr (GError) e_pkg = NULL;
  g_autoptr (GError) e_core = NULL;
  g_autoptr (GError) e_sibs = NULL;
  g_autoptr (GError) e_cache = NULL;
  g_autoptr (GError) e_cluster = NULL;

  if (!read_uint (r, pkg, &info.package_id, &e_pkg))
    {
      info.package_id = 0;
      problem (p, PROBLEM_PACKAGE, cpu, e_pkg);
    }
  if (!read_uint (r, core, &info.core_id, &e_core))
    {
      info.core_id = cpu;
      problem (p, PROBLEM_CORE, cpu, e_core);
    }
  if (!qpin_reader_read_cpulist (r, sibs, FALSE, &info.siblings, &e_sibs))
    {
      qpin_cpuset_clear_all (&info.siblings);
      problem (p, PROBLEM_SIBLINGS, cpu, e_sibs);
    }
  if (!qpin_reader_read_cpulist (r, cluster, TRUE, &info.cluster, &e_cluster))
    {
      qpin_cpuset_clear_all (&info.cluster);
      problem (p, PROBLEM_CLUSTER, cpu, e_cluster);
    }
  qpin_cpuset_clear_all (&info.llc);
  if (!read_cache (r, base, &info, &e_cache))
    {
      qpin_cpuset_clear_all (&info.llc);
      info.llc_level = 0;
      problem (p, PROBLEM_CACHE, cpu, e_cache);
    }
  g_array_append_val (infos, info);
}

/* A CPU without a package id takes the one of a thread sibling that has one. */
static void
package_from_siblings (GArray *infos, const QpinCpuset *unknown)
{
  for (guint i = 0; i < infos->len; i++)
    {
      QpinTopoCpuInfo *info = &g_array_index (infos, QpinTopoCpuInfo, i);

      if (!qpin_cpuset_has (unknown, info->cpu))
        continue;
      for (guint j = 0; j < infos->len; j++)
        {
          const QpinTopoCpuInfo *other = &g_array_index (infos, QpinTopoCpuInfo, j);
          if (qpin_cpuset_has (&info->siblings, other->cpu)
              && !qpin_cpuset_has (unknown, other->cpu))
            {
              info->package_id = other->package_id;
              break;
            }
        }
    }
}

static void
read_cpus (QpinReader *r)
{
  g_autoptr (GArray) infos = g_array_new (FALSE, FALSE, sizeof (QpinTopoCpuInfo));
  Problems p = { 0 };

  QPIN_CPUSET_FOREACH (cpu, &r->topo->online)
    read_cpu (r, &p, (guint) cpu, infos);
  package_from_siblings (infos, &p.cpus[PROBLEM_PACKAGE]);
  for (guint i = 0; i < infos->len; i++)
    qpin_topology_add_cpu (r->topo, &g_array_index (infos, QpinTopoCpuInfo, i));
  problems_note (r, &p);
}

/* isolated, nohz_full and possible: a missing file is the empty set,
 * garbage too (with a note); possible then means the present CPUs. */
static void
read_optional_set (QpinReader *r, const char *rel, QpinCpuset *out)
{
  g_autoptr (GError) local = NULL;

  if (!qpin_reader_read_cpulist (r, rel, TRUE, out, &local))
    {
      qpin_reader_note_error (r, local, "taken as empty");
      qpin_cpuset_clear_all (out);
    }
}

/**
 * qpin_topology_read:
 * @root: "/" for the live machine, or a sysfs-shaped directory
 * @captured: (out) (optional) (transfer full): if not NULL, every file read,
 *   as #QpinCapturedFile in read order; everything then comes from sysfs
 *
 * Reads what the files allow: a missing, garbage or contradictory optional
 * file degrades the model one level and adds a note to it (see the header).
 *
 * Returns: (transfer full): the finished topology, or NULL with
 * %QPIN_READER_ERROR when no CPU can be found at all, or
 * %QPIN_POLICY_ERROR when none of them is online.
 */
QpinTopology *
qpin_topology_read (const char *root, GPtrArray **captured, GError **error)
{
  g_autoptr (QpinTopology) topo = qpin_topology_new ();
  g_autoptr (GPtrArray) files = NULL;
  QpinCpuset possible, present, online, isolated, nohz;
  QpinReader r = { .root = root, .topo = topo };

  if (captured)
    files = g_ptr_array_new_with_free_func (captured_file_free);
  r.captured = files;
  r.libnuma = captured == NULL && g_strcmp0 (root, "/") == 0 && numa_available () >= 0;

  if (!read_present (&r, &present, error))
    return NULL;
  read_online (&r, &present, &online);
  drop_vanished (&r, &online);
  read_optional_set (&r, CPU_DIR "/isolated", &isolated);
  read_optional_set (&r, CPU_DIR "/nohz_full", &nohz);
  read_optional_set (&r, CPU_DIR "/possible", &possible);
  qpin_topology_set_cpus (topo, &present, &online, &isolated, &nohz);
  qpin_topology_set_possible (topo, &possible);
  read_cpus (&r);
  qpin_reader_read_kinds (&r);
  qpin_reader_read_nodes (&r);
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
      /* NULL contents: a directory the reader listed */
      g_autofree char *parent = f->contents ? g_path_get_dirname (path) : g_strdup (path);
      g_autoptr (GError) local = NULL;

      if (g_mkdir_with_parents (parent, 0755) < 0)
        {
          int saved = errno;
          g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_CAPTURE,
                       "%s: cannot create directory: %s", parent, g_strerror (saved));
          return FALSE;
        }
      if (f->contents && !g_file_set_contents (path, f->contents, -1, &local))
        {
          g_set_error (error, QPIN_READER_ERROR, QPIN_READER_ERROR_CAPTURE, "%s: cannot write: %s",
                       path, local->message);
          return FALSE;
        }
    }
  return TRUE;
}
