/* test-peer.c: a process instance and its owner (qpin-peer.c) */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qpin-peer.h"

/* This process: its ids as the kernel has them, a start time, current. */
static void
test_self (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPeer) peer = qpin_peer_new_for_pid (getpid (), &error);

  g_assert_no_error (error);
  g_assert_cmpint (peer->pid, ==, getpid ());
  g_assert_cmpuint (peer->start_time, >, 0);
  g_assert_cmpuint (peer->uid, ==, getuid ());
  g_assert_cmpuint (peer->euid, ==, geteuid ());
  g_assert_cmpuint (peer->gid, ==, getgid ());
  g_assert_cmpuint (peer->socket_uid, ==, (uid_t) -1);
  g_assert_true (qpin_peer_is_current (peer, &error));
  g_assert_no_error (error);
}

/* A child that exits (a zombie) and is reaped: the peer is no longer
 * current, with the exact reason; a new peer for the pid fails. */
static void
test_exited (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPeer) peer = NULL;
  g_autoptr (QpinPeer) again = NULL;
  g_autofree char *expected = NULL;
  pid_t child = fork ();

  if (child == 0)
    {
      pause ();
      _exit (0);
    }
  peer = qpin_peer_new_for_pid (child, &error);
  g_assert_no_error (error);
  g_assert_true (qpin_peer_is_current (peer, NULL));
  kill (child, SIGKILL);
  /* a zombie, not reaped yet: exited already */
  g_assert_true (waitid (P_PID, (id_t) child, NULL, WEXITED | WNOWAIT) == 0);
  g_assert_false (qpin_peer_is_current (peer, NULL));
  waitpid (child, NULL, 0);
  g_assert_false (qpin_peer_is_current (peer, &error));
  expected = g_strdup_printf ("the process that opened the socket (pid %d) has exited", child);
  g_assert_cmpstr (error->message, ==, expected);
  g_clear_error (&error);
  again = qpin_peer_new_for_pid (child, &error);
  g_assert_null (again);
  g_assert_nonnull (error);
}

/* The start time tells a reused pid: a peer whose recorded start time
 * differs is not current. */
static void
test_start_time (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPeer) peer = qpin_peer_new_for_pid (getpid (), NULL);
  g_autoptr (QpinPeer) other = qpin_peer_new_for_pid (getpid (), NULL);
  g_autofree char *expected = g_strdup_printf (
    "pid %d is no longer the process that opened the socket (pid reused)", getpid ());

  g_assert_true (qpin_peer_same_process (peer, other));
  peer->start_time++;
  g_assert_false (qpin_peer_same_process (peer, other));
  g_assert_false (qpin_peer_is_current (peer, &error));
  g_assert_cmpstr (error->message, ==, expected);
}

/* Who is allowed: root and qpin's own user always; others by uid (real
 * and effective both) or by any of their groups. */
static void
test_allowed (void)
{
  g_autoptr (GArray) uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) gids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_autoptr (GArray) groups = g_array_new (FALSE, FALSE, sizeof (guint32));
  QpinPeer p = { .uid = 0, .euid = 0, .gid = 0, .egid = 0, .socket_uid = (uid_t) -1 };
  guint32 v;

  g_assert_true (qpin_peer_is_allowed (&p, NULL, NULL));
  p.uid = p.euid = geteuid ();
  g_assert_true (qpin_peer_is_allowed (&p, NULL, NULL));
  p.uid = p.euid = 65534;
  p.gid = p.egid = 65534;
  g_assert_false (qpin_peer_is_allowed (&p, uids, gids));
  v = 65534;
  g_array_append_val (uids, v);
  g_assert_true (qpin_peer_is_allowed (&p, uids, gids));
  /* a setuid peer: its real uid allowed, its effective one not */
  p.euid = 1234;
  g_assert_false (qpin_peer_is_allowed (&p, uids, gids));
  /* the connection's uid counts too in listen mode */
  p.euid = 65534;
  p.socket_uid = 1234;
  g_assert_false (qpin_peer_is_allowed (&p, uids, gids));
  /* a supplementary group in allow_groups admits it */
  v = 36;
  g_array_append_val (gids, v);
  g_assert_false (qpin_peer_is_allowed (&p, uids, gids));
  p.groups = groups;
  g_array_append_val (groups, v);
  g_assert_true (qpin_peer_is_allowed (&p, uids, gids));
  p.groups = NULL;
}

/* qpin's own key forms, which a QMP name may not take. */
static void
test_key_form (void)
{
  const struct {
    const char *name;
    gboolean key;
  } cases[] = {
    { "pid-42", TRUE },  { "web@4242", TRUE },   { "a@b@7", TRUE }, { "pid-", FALSE },
    { "pid-4x", FALSE }, { "web@", FALSE },      { "web", FALSE },  { "pid42", FALSE },
    { "@1", TRUE },      { "mail@host", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (qpin_peer_has_key_form (cases[i].name), ==, cases[i].key);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/peer/self", test_self);
  g_test_add_func ("/peer/exited", test_exited);
  g_test_add_func ("/peer/start-time", test_start_time);
  g_test_add_func ("/peer/allowed", test_allowed);
  g_test_add_func ("/peer/key-form", test_key_form);
  return g_test_run ();
}
