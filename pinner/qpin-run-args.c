/* qpin-run-args.c: the QEMU command line of `qpin run`: what it says and
 * what qpin run adds to it (its monitor, the daemon's, -name, -S) */

#include "qpin-run-args.h"

#include <string.h>

/* QEMU options spell "," as ",," inside a value. */
static char *
qemu_opt_escape (const char *value)
{
  g_auto (GStrv) parts = g_strsplit (value, ",", -1);
  return g_strjoinv (",,", parts);
}

static gboolean
is_opt (const char *arg, const char *name)
{
  /* QEMU accepts -opt and --opt alike */
  if (arg[0] != '-')
    return FALSE;
  arg += arg[1] == '-' ? 2 : 1;
  return g_str_equal (arg, name);
}

/* The guest name of a -name value: "NAME[,...]" or "guest=NAME[,...]". */
static char *
guest_name_of (const char *value)
{
  g_auto (GStrv) parts = g_strsplit (value, ",", -1);
  for (guint i = 0; parts[i]; i++)
    {
      if (g_str_has_prefix (parts[i], "guest="))
        return g_strdup (parts[i] + strlen ("guest="));
      if (i == 0 && strchr (parts[i], '=') == NULL)
        return g_strdup (parts[i]);
    }
  return NULL;
}

/**
 * qpin_run_args_scan:
 * @args: QEMU's command line, QEMU itself first
 * @out: (out caller-allocates): what qpin run looks at; @out->name is
 *   (transfer full), freed by the caller
 */
void
qpin_run_args_scan (char **args, QpinRunQemuArgs *out)
{
  for (guint i = 1; args[i]; i++)
    {
      if (is_opt (args[i], "S"))
        out->paused = TRUE;
      else if (is_opt (args[i], "daemonize"))
        out->daemonize = TRUE;
      else if (is_opt (args[i], "name") && args[i + 1])
        {
          g_free (out->name);
          out->name = guest_name_of (args[i + 1]);
        }
    }
}

/**
 * qpin_run_args_build_argv:
 * @mon_path: qpin run's private monitor socket
 * @daemon_socket: (nullable): the daemon's listen socket, for a second monitor
 * @add_name: (nullable): added as -name guest=NAME,debug-threads=on (as
 *   libvirt does: named vCPU threads are pinned at birth when hot-added)
 * @add_pause: add -S
 *
 * Returns: (transfer full): QEMU's argv, %NULL-terminated
 */
GPtrArray *
qpin_run_args_build_argv (char **args, const char *mon_path, const char *daemon_socket,
                          const char *add_name, gboolean add_pause)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *mon = qemu_opt_escape (mon_path);

  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, g_strdup ("-chardev"));
  g_ptr_array_add (argv, g_strdup_printf ("socket,id=qpinrun,path=%s", mon));
  g_ptr_array_add (argv, g_strdup ("-mon"));
  g_ptr_array_add (argv, g_strdup ("chardev=qpinrun,mode=control"));
  if (daemon_socket)
    {
      g_autofree char *path = qemu_opt_escape (daemon_socket);
      g_ptr_array_add (argv, g_strdup ("-chardev"));
      g_ptr_array_add (argv, g_strdup_printf ("socket,id=qpind,path=%s,reconnect=1", path));
      g_ptr_array_add (argv, g_strdup ("-mon"));
      g_ptr_array_add (argv, g_strdup ("chardev=qpind,mode=control"));
    }
  if (add_name)
    {
      g_autofree char *name = qemu_opt_escape (add_name);
      g_ptr_array_add (argv, g_strdup ("-name"));
      g_ptr_array_add (argv, g_strdup_printf ("guest=%s,debug-threads=on", name));
    }
  if (add_pause)
    g_ptr_array_add (argv, g_strdup ("-S"));
  g_ptr_array_add (argv, NULL);
  return argv;
}
