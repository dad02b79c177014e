/* qpin-hostile-peer.c: a QMP peer in a process of its own, for the
 * daemon's hostile-peer tests (tests/integration/test-hostile.c)
 *
 *   qpin-hostile-peer (--listen PATH | --connect PATH) [--uid UID]
 *                     [--fork-exit] [--name NAME] [--tid-file FILE]
 *                     [--fake-tids N] [--flood]
 *
 * --listen binds PATH and serves one client (--accept N: N in turn;
 * with --connect, N connections at once, each silent after the handshake); --connect connects to
 * PATH (a daemon's listen socket) and serves it.  --uid drops to UID (all of real, effective and
 * saved, groups too) after listen() or before connect().  --fork-exit: the process that listened
 * exits at once and a child serves the socket, so SO_PEERCRED names a pid that is free for reuse.
 * Answers: query-name with NAME (or no name), query-cpus-fast with one vCPU whose thread is the TID
 * in FILE (or a thread of the peer's own, started after the socket is open), plus N fake TIDs never
 * reported before
 * (--fake-tids), and query-iothreads with none.  --flood sends DEVICE_DELETED events without pause.
 * On hang-up it prints "queries N" (how many query-cpus-fast it answered) and exits 0.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define GREETING                                                                                   \
  "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "                \
  "\"package\": \"\"}, \"capabilities\": []}}\r\n"
#define EVENT                                                                                      \
  "{\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": \"/machine/peripheral/x\"}, "              \
  "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n"

#define CAPS_REPLY "{\"return\": {}, \"id\": 1}\r\n"

static char *listen_path, *connect_path, *name, *tid_file;
static gint uid = -1, fake_tids, accepts = 1;
static int listen_fd = -1;
static gboolean fork_exit, flood;
static guint next_fake = 3000000, queries;
static volatile gint vcpu_tid;

/* A thread of its own to report as the vCPU (QEMU's main thread never
 * runs one). */
static gpointer
vcpu_thread (gpointer data)
{
  g_atomic_int_set (&vcpu_tid, (gint) gettid ());
  for (;;)
    pause ();
  return NULL;
}

static gboolean
send_all (int fd, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          struct pollfd p = { .fd = fd, .events = POLLOUT };
          poll (&p, 1, 100);
          continue;
        }
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static void
drop_privileges (void)
{
  if (uid < 0)
    return;
  if (setgroups (0, NULL) != 0 || setresgid ((gid_t) uid, (gid_t) uid, (gid_t) uid) != 0
      || setresuid ((uid_t) uid, (uid_t) uid, (uid_t) uid) != 0)
    {
      perror ("qpin-hostile-peer: drop privileges");
      exit (1);
    }
}

static int
open_socket (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const char *path = listen_path ? listen_path : connect_path;

  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  if (connect_path)
    {
      drop_privileges ();
      if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
        {
          perror ("qpin-hostile-peer: connect");
          exit (1);
        }
      return fd;
    }
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (fd, 4) != 0)
    {
      perror ("qpin-hostile-peer: listen");
      exit (1);
    }
  drop_privileges ();
  if (fork_exit)
    {
      pid_t child = fork ();
      if (child != 0)
        _exit (child < 0);
    }
  listen_fd = fd;
  return -1;
}

/* --connect with --accept N: N monitors at once, each through the
 * handshake and then left open, silent, until the peer is killed. */
static void
connect_many (int first)
{
  for (gint i = 0; i < accepts; i++)
    {
      struct sockaddr_un addr = { .sun_family = AF_UNIX };
      int fd = first;
      char buf[4096];

      if (i > 0)
        {
          fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
          g_strlcpy (addr.sun_path, connect_path, sizeof addr.sun_path);
          if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
            {
              perror ("qpin-hostile-peer: connect");
              exit (1);
            }
        }
      if (!send_all (fd, GREETING, strlen (GREETING)) || recv (fd, buf, sizeof buf, 0) <= 0
          || !send_all (fd, CAPS_REPLY, strlen (CAPS_REPLY)))
        continue; /* the daemon closed it: fine */
    }
  printf ("connected %d\n", accepts);
  fflush (stdout);
  for (;;)
    pause ();
}

static int
accept_one (void)
{
  int client = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);

  if (client < 0)
    {
      perror ("qpin-hostile-peer: accept");
      exit (1);
    }
  return client;
}

static char *
cpus_reply (void)
{
  GString *s = g_string_new ("[");
  g_autofree char *text = NULL;
  gint tid = g_atomic_int_get (&vcpu_tid);

  if (tid_file && g_file_get_contents (tid_file, &text, NULL, NULL))
    tid = atoi (text);
  g_string_append_printf (s, "{\"cpu-index\": 0, \"thread-id\": %d, \"qom-path\": \"/c0\"}", tid);
  for (gint i = 0; i < fake_tids; i++)
    g_string_append_printf (s, ", {\"cpu-index\": %d, \"thread-id\": %u, \"qom-path\": \"/c%d\"}",
                            i + 1, next_fake++, i + 1);
  g_string_append (s, "]");
  return g_string_free (s, FALSE);
}

/* One command line: the reply to send. */
static char *
answer (const char *line)
{
  const char *id = strstr (line, "\"id\"");
  g_autofree char *id_text = NULL;
  g_autofree char *ret = NULL;

  if (id)
    {
      id = strchr (id, ':') + 1;
      id_text = g_strndup (id, strcspn (id, "},"));
    }
  if (strstr (line, "qmp_capabilities"))
    ret = g_strdup ("{}");
  else if (strstr (line, "query-name"))
    ret = name ? g_strdup_printf ("{\"name\": \"%s\"}", name) : g_strdup ("{}");
  else if (strstr (line, "query-cpus-fast"))
    {
      queries++;
      ret = cpus_reply ();
    }
  else if (strstr (line, "query-iothreads"))
    ret = g_strdup ("[]");
  else
    return g_strdup_printf ("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}, "
                            "\"id\": %s}\r\n",
                            id_text ? id_text : "null");
  return g_strdup_printf ("{\"return\": %s, \"id\": %s}\r\n", ret, id_text ? id_text : "null");
}

static void
serve (int fd)
{
  g_autoptr (GString) in = g_string_new (NULL);

  if (!send_all (fd, GREETING, strlen (GREETING)))
    return;
  for (;;)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      char buf[65536];
      char *nl;
      ssize_t n;

      if (poll (&p, 1, flood ? 0 : -1) == 0)
        {
          for (guint i = 0; i < 64; i++)
            if (!send_all (fd, EVENT, strlen (EVENT)))
              return;
          continue;
        }
      n = recv (fd, buf, sizeof buf, 0);
      if (n <= 0)
        return;
      g_string_append_len (in, buf, n);
      while ((nl = memchr (in->str, '\n', in->len)) != NULL)
        {
          g_autofree char *line = g_strndup (in->str, (gsize) (nl - in->str));
          g_autofree char *reply = answer (line);

          g_string_erase (in, 0, nl - in->str + 1);
          if (!send_all (fd, reply, strlen (reply)))
            return;
        }
    }
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_FILENAME, &listen_path, "Serve one client on PATH", "PATH" },
    { "connect", 0, 0, G_OPTION_ARG_FILENAME, &connect_path, "Connect to PATH", "PATH" },
    { "uid", 0, 0, G_OPTION_ARG_INT, &uid, "Run as UID", "UID" },
    { "fork-exit", 0, 0, G_OPTION_ARG_NONE, &fork_exit, "The listener exits", NULL },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "The -name", "NAME" },
    { "tid-file", 0, 0, G_OPTION_ARG_FILENAME, &tid_file, "The vCPU TID", "FILE" },
    { "fake-tids", 0, 0, G_OPTION_ARG_INT, &fake_tids, "New fake TIDs per query", "N" },
    { "flood", 0, 0, G_OPTION_ARG_NONE, &flood, "Send events without pause", NULL },
    { "accept", 0, 0, G_OPTION_ARG_INT, &accepts, "Serve N clients in turn (1)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (NULL);
  int fd;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, NULL) || !listen_path == !connect_path)
    return 2;
  fd = open_socket ();
  if (connect_path && accepts > 1)
    connect_many (fd);
  g_thread_unref (g_thread_new ("CPU 0/TCG", vcpu_thread, NULL));
  while (g_atomic_int_get (&vcpu_tid) == 0)
    g_usleep (1000);
  for (gint i = 0; i < (fd >= 0 ? 1 : accepts); i++)
    {
      int client = fd >= 0 ? fd : accept_one ();
      serve (client);
      close (client);
    }
  printf ("queries %u\n", queries);
  return 0;
}
