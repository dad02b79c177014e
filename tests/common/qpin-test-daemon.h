/* qpin-test-daemon.h: one `qpin daemon` per test, in a directory of its own */
#pragma once

#include "qpin-test-qemu.h"

/* A test's daemon and its paths; set up, started and torn down by the
 * functions below, the fields read by the test. */
typedef struct {
  char *dir;              /* the test's own directory, removed with all it holds */
  char *run;              /* the sockets' directory: dir itself or dir/run */
  char *listen;           /* run/qmp.sock: --listen */
  char *control;          /* run/control.sock: --control */
  char *watch;            /* dir/vms: --watch, or NULL: not passed */
  const char *interval;   /* --interval: "200", or NULL: not passed (the daemon's default) */
  guint start_timeout_ms; /* for the control socket to answer: 20000 */
  QpinTestQpin *daemon;
} QpinTestDaemon;

void qpin_test_daemon_set_up (QpinTestDaemon *d, const char *name, guint run_mode,
                              guint watch_mode);
void qpin_test_daemon_tear_down (QpinTestDaemon *d);
void qpin_test_daemon_spawn (QpinTestDaemon *d, const char *const *extra);
void qpin_test_daemon_start (QpinTestDaemon *d, const char *const *extra);
QpinTestQemu *qpin_test_daemon_listen_vm (QpinTestDaemon *d, const char *name, const char *smp);
QpinTestQemu *qpin_test_daemon_watched_vm (QpinTestDaemon *d, const char *name);
gboolean qpin_test_daemon_await_vm (QpinTestDaemon *d, GPid pid, const char *state,
                                    const char *note, guint timeout_ms);
void qpin_test_daemon_wait_vm (QpinTestDaemon *d, GPid pid, const char *state, const char *note,
                               guint timeout_ms);
guint qpin_test_daemon_n_vms (QpinTestDaemon *d);
gboolean qpin_test_daemon_no_vms (gpointer d);
guint qpin_test_count_in (const char *haystack, const char *needle);
guint qpin_test_daemon_log_count (QpinTestDaemon *d, const char *text);
void qpin_test_daemon_wait_log (QpinTestDaemon *d, const char *text, guint timeout_ms);
