/* qpin-cmd-topology.c: `qpin topology` prints (or captures) the host model */

#include <json-glib/json-glib.h>
#include <stdio.h>

#include "qpin-commands.h"
#include "qpin-diag-capture.h"
#include "qpin-topology-reader.h"
#include "qpin-topology-json.h"

/**
 * qpin_cmd_topology:
 *
 * `qpin topology [--sysfs-root DIR] [--json] [--capture DIR]`
 *
 * Returns: the exit status: 0, 1 when the topology cannot be read, 2 on usage errors.
 */
int
qpin_cmd_topology (int argc, char **argv)
{
  g_autofree char *root = NULL;
  g_autofree char *capture = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "sysfs-root", 0, 0, G_OPTION_ARG_FILENAME, &root,
      "read a sysfs-shaped tree under DIR instead of the live machine", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
    { "capture", 0, 0, G_OPTION_ARG_FILENAME, &capture,
      "copy the files qpin reads into DIR (a fixture for --sysfs-root)", "DIR" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinTopology) topo = NULL;
  g_autoptr (GPtrArray) captured = NULL;
  g_autofree char *out = NULL;
  gint n_diag;

  g_option_context_set_summary (context, "Print the host topology as qpin sees it.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (argc > 1)
    {
      fprintf (stderr, "%s: unexpected argument '%s'\n", g_get_prgname (), argv[1]);
      return 2;
    }
  topo = qpin_topology_read (root ? root : "/", capture ? &captured : NULL, &error);
  if (topo == NULL)
    {
      fprintf (stderr, "%s: %s\n", g_get_prgname (), error->message);
      return 1;
    }
  if (capture)
    {
      guint n_files = 0;

      if (!qpin_topology_write_capture (captured, capture, &error))
        {
          fprintf (stderr, "%s: %s\n", g_get_prgname (), error->message);
          return 1;
        }
      for (guint i = 0; i < captured->len; i++) /* not the listed directories */
        n_files += ((QpinCapturedFile *) g_ptr_array_index (captured, i))->contents != NULL;
      fprintf (stderr, "captured %u files into '%s'\n", n_files, capture);
      n_diag = qpin_diag_capture (root ? root : "/", capture, topo, 1.0, &error);
      if (n_diag < 0)
        {
          fprintf (stderr, "%s: %s\n", g_get_prgname (), error->message);
          return 1;
        }
      fprintf (stderr, "and %d files qpin diagnose reads (two samples)\n", n_diag);
    }
  if (json)
    {
      g_autoptr (JsonNode) node = qpin_topology_to_json (topo);
      out = json_to_string (node, TRUE);
      printf ("%s\n", out);
    }
  else
    {
      out = qpin_topology_to_text (topo);
      fputs (out, stdout);
    }
  return 0;
}
