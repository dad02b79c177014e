/* qpin-run-args.h: the QEMU command line of `qpin run` */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gboolean paused;    /* -S */
  gboolean daemonize; /* -daemonize */
  char *name;         /* the guest name of -name, or NULL */
} QpinRunQemuArgs;

void qpin_run_args_scan (char **args, QpinRunQemuArgs *out);
GPtrArray *qpin_run_args_build_argv (char **args, const char *mon_path, const char *daemon_socket,
                                     const char *add_name, gboolean add_pause);

G_END_DECLS
