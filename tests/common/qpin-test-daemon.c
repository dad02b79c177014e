/* qpin-test-daemon.c: one `qpin daemon` per test, in a directory of its own */
#include "qpin-test-daemon.h"
#include "qpin-test-host.h"

#include <glib/gstdio.h>
#include <string.h>

/**
 * qpin_test_daemon_set_up:
 * @name: the temporary directory's prefix, e.g. "qpin-daemon"
 * @run_mode: 0: the sockets in the directory itself; else in DIR/run,
 *   made with this mode (whatever the umask)
 * @watch_mode: 0: no watched directory; else DIR/vms, made with this mode
 *
 * Makes the test's directory and names the daemon's paths in it, with
 * --interval 200 and a 20 s start-up wait, which the test may change
 * before qpin_test_daemon_start().  Undone by qpin_test_daemon_tear_down().
 */
void
qpin_test_daemon_set_up (QpinTestDaemon *d, const char *name, guint run_mode, guint watch_mode)
{
  g_autofree char *template = g_strdup_printf ("%s-XXXXXX", name);

  d->dir = g_dir_make_tmp (template, NULL);
  g_assert_nonnull (d->dir);
  d->run = run_mode ? g_build_filename (d->dir, "run", NULL) : g_strdup (d->dir);
  d->listen = g_build_filename (d->run, "qmp.sock", NULL);
  d->control = g_build_filename (d->run, "control.sock", NULL);
  d->watch = watch_mode ? g_build_filename (d->dir, "vms", NULL) : NULL;
  d->interval = "200";
  d->start_timeout_ms = 20000;
  d->daemon = NULL;
  if (run_mode)
    {
      g_assert_cmpint (g_mkdir (d->run, (int) run_mode), ==, 0);
      g_assert_cmpint (g_chmod (d->run, (int) run_mode), ==, 0);
    }
  if (watch_mode)
    g_assert_cmpint (g_mkdir (d->watch, (int) watch_mode), ==, 0);
}

/* Ends the daemon (if still running) and removes the directory with all
 * that is in it. */
void
qpin_test_daemon_tear_down (QpinTestDaemon *d)
{
  g_clear_pointer (&d->daemon, qpin_test_qpin_free);
  qpin_test_remove_tree (d->dir);
  g_free (d->dir);
  g_free (d->run);
  g_free (d->listen);
  g_free (d->control);
  g_free (d->watch);
}

/**
 * qpin_test_daemon_spawn:
 * @extra: (array zero-terminated=1) (nullable): arguments after the common ones
 *
 * Starts `qpin daemon --listen [--watch] --control --grace 0 [--interval]`
 * with @d's paths and interval, then @extra (a later option wins, e.g.
 * --grace), and returns at once.
 */
void
qpin_test_daemon_spawn (QpinTestDaemon *d, const char *const *extra)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  const char *base[] = { "daemon", "--listen", d->listen, NULL };

  for (const char *const *a = base; *a; a++)
    g_ptr_array_add (args, (gpointer) *a);
  if (d->watch)
    {
      g_ptr_array_add (args, "--watch");
      g_ptr_array_add (args, d->watch);
    }
  g_ptr_array_add (args, "--control");
  g_ptr_array_add (args, d->control);
  g_ptr_array_add (args, "--grace");
  g_ptr_array_add (args, "0");
  if (d->interval)
    {
      g_ptr_array_add (args, "--interval");
      g_ptr_array_add (args, (gpointer) d->interval);
    }
  for (const char *const *a = extra; a && *a; a++)
    g_ptr_array_add (args, (gpointer) *a);
  g_ptr_array_add (args, NULL);
  d->daemon = qpin_test_qpin_spawn ((const char *const *) args->pdata);
}

/* qpin_test_daemon_spawn(), then until the daemon answers on its control
 * socket (it does once every socket is bound). */
void
qpin_test_daemon_start (QpinTestDaemon *d, const char *const *extra)
{
  qpin_test_daemon_spawn (d, extra);
  g_assert_true (qpin_test_wait_daemon (d->control, d->start_timeout_ms));
}

/* A QEMU named @name, with -smp @smp, that connects to the daemon (listen
 * mode); its own -qmp socket (qemu->qmp_path) serves a foreign client. */
QpinTestQemu *
qpin_test_daemon_listen_vm (QpinTestDaemon *d, const char *name, const char *smp)
{
  g_autofree char *chardev = g_strdup_printf ("socket,id=qpin,path=%s,reconnect=1", d->listen);
  g_autofree char *vm_name = g_strdup_printf ("%s,debug-threads=on", name);
  const char *args[]
    = { "-smp", smp, "-name", vm_name, "-chardev", chardev, "-mon", "chardev=qpin,mode=control",
        NULL };
  return qpin_test_qemu_start (NULL, args, TRUE);
}

/* A one-vCPU QEMU named @name with a QMP server socket NAME.sock in the
 * watched directory. */
QpinTestQemu *
qpin_test_daemon_watched_vm (QpinTestDaemon *d, const char *name)
{
  g_autofree char *qmp = g_strdup_printf ("unix:%s/%s.sock,server=on,wait=off", d->watch, name);
  g_autofree char *vm_name = g_strdup_printf ("%s,debug-threads=on", name);
  const char *args[] = { "-smp", "1", "-name", vm_name, "-qmp", qmp, NULL };
  return qpin_test_qemu_start (NULL, args, FALSE);
}

typedef struct {
  QpinTestDaemon *d;
  GPid pid;
  const char *state; /* NULL: gone from status */
  const char *note;  /* NULL: any notes */
} VmWait;

static gboolean
vm_in_state (gpointer data)
{
  VmWait *w = data;
  g_autoptr (JsonNode) status = qpin_test_status (w->d->control);
  JsonObject *vm = qpin_test_find_vm (status, w->pid);

  if (w->state == NULL)
    return status != NULL && vm == NULL;
  return vm != NULL && g_str_equal (json_object_get_string_member (vm, "state"), w->state)
         && (w->note == NULL || qpin_test_vm_has_note (vm, w->note));
}

/**
 * qpin_test_daemon_await_vm:
 * @state: (nullable): the VM's state in status; %NULL: gone from status
 * @note: (nullable): a note the VM must also have; %NULL: any
 *
 * Waits up to @timeout_ms for status to show the VM of process @pid so.
 * Returns: %FALSE if it never did, the daemon's log then in the test log
 */
gboolean
qpin_test_daemon_await_vm (QpinTestDaemon *d, GPid pid, const char *state, const char *note,
                           guint timeout_ms)
{
  VmWait w = { d, pid, state, note };
  g_autofree char *log = NULL;

  if (qpin_test_wait_for (vm_in_state, &w, timeout_ms))
    return TRUE;
  log = qpin_test_qpin_log (d->daemon);
  g_test_message ("daemon log:\n%s", log);
  return FALSE;
}

/* qpin_test_daemon_await_vm(), failing the test if the VM never gets there. */
void
qpin_test_daemon_wait_vm (QpinTestDaemon *d, GPid pid, const char *state, const char *note,
                          guint timeout_ms)
{
  if (!qpin_test_daemon_await_vm (d, pid, state, note, timeout_ms))
    g_assert_not_reached ();
}

/* How many VMs the daemon's status lists; G_MAXUINT if it does not answer. */
guint
qpin_test_daemon_n_vms (QpinTestDaemon *d)
{
  g_autoptr (JsonNode) status = qpin_test_status (d->control);

  if (status == NULL)
    return G_MAXUINT;
  return json_array_get_length (
    json_object_get_array_member (json_node_get_object (status), "vms"));
}

/* For qpin_test_wait_for() with a QpinTestDaemon: status lists no VM. */
gboolean
qpin_test_daemon_no_vms (gpointer d)
{
  return qpin_test_daemon_n_vms (d) == 0;
}

/* How many times @needle stands in @haystack (0 if @haystack is NULL). */
guint
qpin_test_count_in (const char *haystack, const char *needle)
{
  guint n = 0;

  for (const char *p = haystack; p && (p = strstr (p, needle)) != NULL; p += strlen (needle))
    n++;
  return n;
}

/* How many times @text stands in the daemon's log so far. */
guint
qpin_test_daemon_log_count (QpinTestDaemon *d, const char *text)
{
  g_autofree char *log = qpin_test_qpin_log (d->daemon);
  return qpin_test_count_in (log, text);
}

typedef struct {
  QpinTestDaemon *d;
  const char *text;
} LogWait;

static gboolean
log_has (gpointer data)
{
  LogWait *w = data;
  return qpin_test_daemon_log_count (w->d, w->text) > 0;
}

/* Until the daemon's log has @text, failing the test (the log in the test
 * log) if it does not within @timeout_ms. */
void
qpin_test_daemon_wait_log (QpinTestDaemon *d, const char *text, guint timeout_ms)
{
  LogWait w = { d, text };
  g_autofree char *log = NULL;

  if (qpin_test_wait_for (log_has, &w, timeout_ms))
    return;
  log = qpin_test_qpin_log (d->daemon);
  g_test_message ("daemon log:\n%s\nno line with: %s", log, text);
  g_assert_not_reached ();
}
