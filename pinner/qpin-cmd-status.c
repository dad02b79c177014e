/* qpin-cmd-status.c: `qpin status` and `qpin reload`: ask the daemon */

#include <stdio.h>

#include "qpin-commands.h"
#include "qpin-control.h"
#include "qpin-text.h"

static void
print_status (JsonNode *reply)
{
  JsonArray *vms = json_object_get_array_member (json_node_get_object (reply), "vms");

  printf ("%-16s %7s %-9s %5s %8s %-12s %-12s %4s %-5s %s\n", "VM", "PID", "ROLE", "INDEX", "TID",
          "PLANNED", "ACTUAL", "CPU", "NODE", "STATE");
  for (guint i = 0; vms && i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);
      JsonArray *threads = json_object_get_array_member (vm, "threads");
      g_autofree char *key
        = qpin_text_escape (json_object_get_string_member_with_default (vm, "key", "?"));
      gint64 pid = json_object_get_int_member_with_default (vm, "pid", 0);
      gboolean planned
        = g_strcmp0 (json_object_get_string_member_with_default (vm, "state", ""), "planned") == 0;

      for (guint j = 0; threads && j < json_array_get_length (threads); j++)
        {
          JsonObject *t = json_array_get_object_element (threads, j);
          g_autofree char *state = qpin_text_escape (
            json_object_get_boolean_member_with_default (t, "drift", FALSE) ? "drift"
            : json_object_get_boolean_member_with_default (t, "applied", FALSE)
              ? "pinned"
              : json_object_get_string_member_with_default (t, "error", planned ? "planned" : "-"));

          printf ("%-16s %7" G_GINT64_FORMAT " %-9s %5" G_GINT64_FORMAT " %8" G_GINT64_FORMAT
                  " %-12s %-12s %4" G_GINT64_FORMAT " %-5s %s\n",
                  key, pid, json_object_get_string_member_with_default (t, "role", "?"),
                  json_object_get_int_member_with_default (t, "index", -1),
                  json_object_get_int_member_with_default (t, "tid", 0),
                  json_object_get_string_member_with_default (t, "cpus", "-"),
                  json_object_get_string_member_with_default (t, "actual", "-"),
                  json_object_get_int_member_with_default (t, "cpu", -1),
                  json_object_get_string_member_with_default (t, "node", "-"), state);
        }
      if (!json_object_get_null_member (vm, "error"))
        {
          g_autofree char *error
            = qpin_text_escape (json_object_get_string_member_with_default (vm, "error", ""));
          printf ("%-16s %7" G_GINT64_FORMAT " %s: %s\n", key, pid,
                  json_object_get_string_member_with_default (vm, "state", "?"), error);
        }
      if (json_object_has_member (vm, "notes"))
        {
          JsonArray *notes = json_object_get_array_member (vm, "notes");
          for (guint j = 0; notes && j < json_array_get_length (notes); j++)
            {
              g_autofree char *note = qpin_text_escape (json_array_get_string_element (notes, j));
              printf ("%-16s %7" G_GINT64_FORMAT " note: %s\n", key, pid, note);
            }
        }
    }
}

/* `qpin hotplug` without --json: one line per vCPU */
static void
print_hotplug (JsonNode *reply, gboolean add)
{
  JsonArray *vcpus = json_object_get_array_member (json_node_get_object (reply), "vcpus");

  for (guint i = 0; vcpus && i < json_array_get_length (vcpus); i++)
    {
      JsonObject *v = json_array_get_object_element (vcpus, i);
      gint64 index = json_object_get_int_member_with_default (v, "index", -1);
      const char *device = json_object_get_string_member_with_default (v, "device", "?");

      if (add)
        printf ("added vcpu %" G_GINT64_FORMAT " (device '%s') on cpus %s\n", index, device,
                json_object_get_string_member_with_default (v, "cpus", "?"));
      else
        printf ("asked the guest to unplug vcpu %" G_GINT64_FORMAT " (device '%s')\n", index,
                device);
    }
}

static int
control_command (int argc, char **argv, const char *command)
{
  g_autofree char *control_path = NULL;
  gboolean json = FALSE, map = FALSE;
  GOptionEntry entries[] = {
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &control_path,
      "The daemon's control socket (" QPIN_CONTROL_DEFAULT_PATH ")", "PATH" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "map", 0, 0, G_OPTION_ARG_NONE, &map, "Draw the placement on the host topology", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) reply = NULL;

  if (!g_str_equal (command, "status"))
    entries[2] = (GOptionEntry){ NULL };
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc != 1)
    {
      fprintf (stderr, "qpin %s: %s\n", command, error ? error->message : "unexpected argument");
      return 2;
    }
  reply = qpin_control_request (control_path ? control_path : QPIN_CONTROL_DEFAULT_PATH, command,
                                NULL, &error);
  if (reply == NULL)
    {
      fprintf (stderr, "qpin %s: %s\n", command, error->message);
      return 1;
    }
  if (map)
    return qpin_status_print_map (reply);
  if (json)
    {
      g_autofree char *text = json_to_string (reply, TRUE);
      printf ("%s\n", text);
    }
  else if (g_str_equal (command, "status"))
    print_status (reply);
  else
    printf ("the daemon reloaded its configuration\n");
  return 0;
}

/**
 * qpin_cmd_status:
 *
 * `qpin status [--json] [--map] [--control PATH]`: every VM and thread the daemon
 * manages, planned against actual affinity, current CPU, node, drift.
 */
int
qpin_cmd_status (int argc, char **argv)
{
  return control_command (argc, argv, "status");
}

/**
 * qpin_cmd_reload:
 *
 * `qpin reload [--json] [--control PATH]`: the daemon re-reads its
 * configuration.
 */
int
qpin_cmd_reload (int argc, char **argv)
{
  return control_command (argc, argv, "reload");
}

/**
 * qpin_cmd_hotplug:
 *
 * `qpin hotplug VM add [N] | remove [N] [--json] [--control PATH]`: the daemon adds
 * vCPUs to VM, each started on its planned CPU, or asks the guest to
 * unplug hot-plugged ones.
 */
int
qpin_cmd_hotplug (int argc, char **argv)
{
  g_autofree char *control_path = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &control_path,
      "The daemon's control socket (" QPIN_CONTROL_DEFAULT_PATH ")", "PATH" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("VM add [N] | remove [N]");
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) reply = NULL;
  g_autoptr (JsonObject) args = json_object_new ();
  g_autofree char *text = NULL;
  guint64 count = 1;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "qpin hotplug: %s\n", error->message);
      return 2;
    }
  if (argc < 3 || argc > 4 || (!g_str_equal (argv[2], "add") && !g_str_equal (argv[2], "remove"))
      || (argc == 4 && !g_ascii_string_to_unsigned (argv[3], 10, 1, 1024, &count, NULL)))
    {
      fprintf (stderr, "qpin hotplug: usage: qpin hotplug VM add [N] | remove [N] (N: 1-1024)\n");
      return 2;
    }
  json_object_set_string_member (args, "vm", argv[1]);
  json_object_set_string_member (args, "action", argv[2]);
  json_object_set_int_member (args, "count", (gint64) count);
  reply = qpin_control_request (control_path ? control_path : QPIN_CONTROL_DEFAULT_PATH, "hotplug",
                                args, &error);
  if (reply == NULL)
    {
      fprintf (stderr, "qpin hotplug: %s\n", error->message);
      return 1;
    }
  if (!json)
    {
      print_hotplug (reply, g_str_equal (argv[2], "add"));
      return 0;
    }
  text = json_to_string (reply, TRUE);
  printf ("%s\n", text);
  return 0;
}
