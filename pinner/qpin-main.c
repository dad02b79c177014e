/* qpin-main.c: subcommand dispatch; everything else lives in qpin-cmd-*.c */

#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "qpin-commands.h"

typedef struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} QpinCommand;

static const QpinCommand commands[] = {
  { "attach", qpin_cmd_attach, "pin one running QEMU and keep it pinned" },
  { "daemon", qpin_cmd_daemon,
    "pin many QEMUs: they connect to qpin, or qpin watches a directory" },
  { "status", qpin_cmd_status, "show what the daemon manages" },
  { "reload", qpin_cmd_reload, "make the daemon re-read its configuration" },
  { "hotplug", qpin_cmd_hotplug, "add or remove vCPUs of a VM the daemon manages" },
  { "inspect", qpin_cmd_inspect, "show the threads of a running QEMU" },
  { "topology", qpin_cmd_topology, "print the host topology (or capture it)" },
  { "plan", qpin_cmd_plan, "plan the placement of VMs without touching them" },
  { "run", qpin_cmd_run, "start a QEMU paused, pin it, then start the guest" },
  { "diagnose", qpin_cmd_diagnose, "find what slows the VMs down, with evidence and a fix" },
  { "top", qpin_cmd_top, "watch the threads of VMs live: CPU, wait, migrations, off-plan" },
};

static int
usage (FILE *out)
{
  fprintf (out, "Usage: qpin COMMAND [OPTIONS...]\n\nCommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun 'qpin COMMAND --help' for the options of one command.\n");
  return out == stderr ? 2 : 0;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");

  if (argc < 2)
    return usage (stderr);
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    return usage (stdout);
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("qpin %s\n", QPIN_VERSION);
      return 0;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        g_autofree char *prgname = g_strdup_printf ("qpin %s", commands[i].name);
        g_set_prgname (prgname);
        argv[1] = prgname;
        return commands[i].run (argc - 1, argv + 1);
      }

  fprintf (stderr, "qpin: unknown command '%s'\n", argv[1]);
  return usage (stderr);
}
