/* qpin-log.h: log lines for command-line use */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void qpin_log_use_cli_writer (void);

G_END_DECLS
