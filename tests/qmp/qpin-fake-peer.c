/* qpin-fake-peer.c: see qpin-fake-peer.h */
#include "qpin-fake-peer.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define GREETING                                                                                   \
  "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "               \
  "\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}"

struct _QpinFakePeer {
  char *dir;
  char *path;
  int listen_fd;
  int fd;
  GStrv steps;
  GThread *thread;
  GString *inbuf;
  char *last_id;
  char *failure;
  gboolean finished;
};

static gboolean
send_all (QpinFakePeer *peer, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = send (peer->fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* One line from the client; NULL on EOF or after 10 s of silence. */
static char *
read_line (QpinFakePeer *peer)
{
  for (;;)
    {
      char *nl = memchr (peer->inbuf->str, '\n', peer->inbuf->len);
      char buf[4096];
      struct pollfd pfd = { .fd = peer->fd, .events = POLLIN };
      ssize_t n;

      if (nl)
        {
          gsize len = (gsize) (nl - peer->inbuf->str);
          char *line = g_strndup (peer->inbuf->str, len);
          g_string_erase (peer->inbuf, 0, (gssize) len + 1);
          return g_strchomp (line);
        }
      if (poll (&pfd, 1, 10000) <= 0)
        return NULL;
      n = recv (peer->fd, buf, sizeof buf, 0);
      if (n <= 0)
        return NULL;
      g_string_append_len (peer->inbuf, buf, n);
    }
}

static char *
substitute_id (QpinFakePeer *peer, const char *text)
{
  g_auto (GStrv) parts = g_strsplit (text, "$ID", -1);
  return g_strjoinv (peer->last_id ? peer->last_id : "null", parts);
}

static gboolean
step_expect (QpinFakePeer *peer, const char *command)
{
  g_autofree char *line = read_line (peer);
  g_autoptr (JsonNode) node = NULL;
  JsonObject *obj;
  const char *execute;

  if (line == NULL)
    {
      peer->failure = g_strdup_printf ("expected '%s', got end of stream", command);
      return FALSE;
    }
  node = json_from_string (line, NULL);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      peer->failure = g_strdup_printf ("expected '%s', got non-JSON '%s'", command, line);
      return FALSE;
    }
  obj = json_node_get_object (node);
  execute = json_object_get_string_member_with_default (obj, "execute", "");
  if (g_strcmp0 (execute, command) != 0)
    {
      peer->failure = g_strdup_printf ("expected '%s', got '%s'", command, line);
      return FALSE;
    }
  g_free (peer->last_id);
  peer->last_id = json_object_has_member (obj, "id")
                    ? json_to_string (json_object_get_member (obj, "id"), FALSE)
                    : NULL;
  return TRUE;
}

static gboolean
step_send (QpinFakePeer *peer, const char *json)
{
  g_autofree char *text = substitute_id (peer, json);
  g_autofree char *line = g_strconcat (text, "\r\n", NULL);
  /* a client that already hung up is not a script failure by itself: the
   * next expect or the test's own assertions tell */
  send_all (peer, line, strlen (line));
  return TRUE;
}

static gboolean
run_step (QpinFakePeer *peer, const char *step)
{
  const char *arg = strchr (step, ' ');
  g_autofree char *verb = arg ? g_strndup (step, (gsize) (arg - step)) : g_strdup (step);

  arg = arg ? arg + 1 : "";
  if (g_str_equal (verb, "greet"))
    return step_send (peer, GREETING);
  if (g_str_equal (verb, "handshake"))
    return step_send (peer, GREETING) && step_expect (peer, "qmp_capabilities")
           && step_send (peer, "{\"return\": {}, \"id\": $ID}");
  if (g_str_equal (verb, "expect"))
    return step_expect (peer, arg);
  if (g_str_equal (verb, "send"))
    return step_send (peer, arg);
  if (g_str_equal (verb, "sendraw"))
    {
      g_autofree char *text = substitute_id (peer, arg);
      g_autofree char *raw = g_strcompress (text);
      send_all (peer, raw, strlen (raw));
      return TRUE;
    }
  if (g_str_equal (verb, "dribble"))
    {
      g_autofree char *text = substitute_id (peer, arg);
      g_autofree char *line = g_strconcat (text, "\r\n", NULL);
      for (const char *p = line; *p; p++)
        {
          send_all (peer, p, 1);
          g_usleep (200);
        }
      return TRUE;
    }
  if (g_str_equal (verb, "flood"))
    {
      gsize total = (gsize) g_ascii_strtoull (arg, NULL, 10);
      g_autofree char *chunk = g_malloc (1 << 20);
      memset (chunk, 'x', 1 << 20);
      /* stops early once the client hangs up, as it should */
      for (gsize sent = 0; sent < total; sent += 1 << 20)
        if (!send_all (peer, chunk, MIN ((gsize) 1 << 20, total - sent)))
          break;
      return TRUE;
    }
  if (g_str_equal (verb, "sleep"))
    {
      g_usleep (g_ascii_strtoull (arg, NULL, 10) * 1000);
      return TRUE;
    }
  if (g_str_equal (verb, "stall"))
    {
      g_autofree char *line = NULL;
      while ((line = read_line (peer)) != NULL)
        g_clear_pointer (&line, g_free);
      return TRUE;
    }
  if (g_str_equal (verb, "reset"))
    {
      struct linger lg = { .l_onoff = 1, .l_linger = 0 };
      /* a unix socket closed with unread input resets the other side,
       * as QEMU's does after 'quit': let the client's next command land */
      g_usleep (100 * 1000);
      setsockopt (peer->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      return TRUE;
    }
  peer->failure = g_strdup_printf ("unknown script step '%s'", step);
  return FALSE;
}

static gpointer
peer_thread (gpointer data)
{
  QpinFakePeer *peer = data;
  struct pollfd pfd = { .fd = peer->listen_fd, .events = POLLIN };

  if (poll (&pfd, 1, 10000) <= 0 || (peer->fd = accept (peer->listen_fd, NULL, NULL)) < 0)
    {
      peer->failure = g_strdup ("no client connected within 10 s");
      return NULL;
    }
  for (guint i = 0; peer->steps[i]; i++)
    {
      const char *step = g_strstrip (peer->steps[i]);
      if (*step == '\0')
        continue;
      if (!run_step (peer, step))
        break;
    }
  close (peer->fd);
  peer->fd = -1;
  return NULL;
}

/**
 * qpin_fake_peer_new:
 * @script: steps, one per line
 *
 * Returns: (transfer full): a peer already listening on its socket
 */
QpinFakePeer *
qpin_fake_peer_new (const char *script)
{
  g_autofree char *dir = g_dir_make_tmp ("qpin-fake-peer-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "qmp.sock", NULL);
  QpinFakePeer *peer = qpin_fake_peer_new_at (path, script);

  peer->dir = g_steal_pointer (&dir);
  return peer;
}

/**
 * qpin_fake_peer_new_at:
 * @path: where to create the socket (its directory must exist)
 *
 * Returns: (transfer full): a peer already listening on @path
 */
QpinFakePeer *
qpin_fake_peer_new_at (const char *path, const char *script)
{
  QpinFakePeer *peer = g_new0 (QpinFakePeer, 1);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  peer->path = g_strdup (path);
  g_strlcpy (addr.sun_path, peer->path, sizeof addr.sun_path);
  peer->listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (peer->listen_fd, >=, 0);
  g_assert_cmpint (bind (peer->listen_fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (peer->listen_fd, 4), ==, 0);
  peer->fd = -1;
  peer->inbuf = g_string_new (NULL);
  peer->steps = g_strsplit (script, "\n", -1);
  peer->thread = g_thread_new ("fake-peer", peer_thread, peer);
  return peer;
}

const char *
qpin_fake_peer_get_path (QpinFakePeer *peer)
{
  return peer->path;
}

/**
 * qpin_fake_peer_finish:
 *
 * Waits for the script to end.  Returns: %FALSE when a step failed.
 */
gboolean
qpin_fake_peer_finish (QpinFakePeer *peer, GError **error)
{
  if (!peer->finished)
    {
      g_thread_join (peer->thread);
      peer->thread = NULL;
      peer->finished = TRUE;
    }
  if (peer->failure)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "fake peer: %s", peer->failure);
      return FALSE;
    }
  return TRUE;
}

void
qpin_fake_peer_free (QpinFakePeer *peer)
{
  if (peer == NULL)
    return;
  qpin_fake_peer_finish (peer, NULL);
  close (peer->listen_fd);
  unlink (peer->path);
  if (peer->dir)
    rmdir (peer->dir);
  g_strfreev (peer->steps);
  g_string_free (peer->inbuf, TRUE);
  g_free (peer->last_id);
  g_free (peer->failure);
  g_free (peer->path);
  g_free (peer->dir);
  g_free (peer);
}
