/* qpin-log.c: "qpin attach: message" instead of GLib's default format
 *
 * For commands a person runs in a terminal.  The daemon keeps GLib's
 * default writer, which speaks to journald when stderr is the journal.
 */
#include "qpin-log.h"

#include <stdio.h>

static GLogWriterOutput
cli_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  const char *message = NULL;

  if (g_log_writer_default_would_drop (level, NULL))
    return G_LOG_WRITER_HANDLED;
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  if (message == NULL)
    return G_LOG_WRITER_UNHANDLED;
  fprintf (stderr, "%s: %s%s\n", g_get_prgname (),
           level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL) ? "error: " : "", message);
  if (level & G_LOG_LEVEL_ERROR)
    G_BREAKPOINT ();
  return G_LOG_WRITER_HANDLED;
}

/**
 * qpin_log_use_cli_writer:
 *
 * Route this process's GLib logs through the command-line format.
 * G_MESSAGES_DEBUG still enables info and debug lines.
 */
void
qpin_log_use_cli_writer (void)
{
  g_log_set_writer_func (cli_writer, NULL, NULL);
}
