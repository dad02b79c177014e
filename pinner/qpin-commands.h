/* qpin-commands.h: the subcommands of the qpin binary
 *
 * Each takes the arguments after the subcommand name (argv[0] is
 * "qpin SUBCOMMAND") and returns the process exit status.
 */
#pragma once

int qpin_cmd_attach (int argc, char **argv);
int qpin_cmd_daemon (int argc, char **argv);
int qpin_cmd_status (int argc, char **argv);
int qpin_cmd_reload (int argc, char **argv);
int qpin_cmd_hotplug (int argc, char **argv);
int qpin_cmd_inspect (int argc, char **argv);
int qpin_cmd_topology (int argc, char **argv);
int qpin_cmd_plan (int argc, char **argv);
int qpin_cmd_run (int argc, char **argv);
int qpin_cmd_top (int argc, char **argv);
int qpin_cmd_diagnose (int argc, char **argv);

#include <json-glib/json-glib.h>
int qpin_status_print_map (JsonNode *status);
