/* qpin-uevents.c: NETLINK_KOBJECT_UEVENT listener for CPU online/offline
 *
 * The kernel sends "offline@/devices/system/cpu/cpuN" and
 * "online@/devices/system/cpu/cpuN" with ACTION=, DEVPATH= and
 * SUBSYSTEM=cpu among NUL-separated KEY=VALUE fields.  Uevents are rare;
 * nothing else is read.
 */

#include "qpin-uevents.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _QpinUevents {
  int fd;
  guint source;
  QpinCpuEventFunc func;
  gpointer user_data;
};

/**
 * qpin_uevents_parse_cpu:
 * @buf: one uevent datagram
 *
 * Returns: %TRUE when @buf reports CPU @cpu going @online or offline
 */
gboolean
qpin_uevents_parse_cpu (const char *buf, gsize len, guint *cpu, gboolean *online)
{
  const char *action = NULL, *devpath = NULL, *subsystem = NULL;
  const char *prefix = "/devices/system/cpu/cpu";
  guint64 n;

  for (gsize off = 0; off < len;)
    {
      const char *field = buf + off;
      gsize flen = strnlen (field, len - off);

      if (g_str_has_prefix (field, "ACTION="))
        action = field + 7;
      else if (g_str_has_prefix (field, "DEVPATH="))
        devpath = field + 8;
      else if (g_str_has_prefix (field, "SUBSYSTEM="))
        subsystem = field + 10;
      off += flen + 1;
    }
  if (action == NULL || devpath == NULL || g_strcmp0 (subsystem, "cpu") != 0
      || !g_str_has_prefix (devpath, prefix)
      || !g_ascii_string_to_unsigned (devpath + strlen (prefix), 10, 0, 8191, &n, NULL))
    return FALSE;
  if (g_str_equal (action, "online"))
    *online = TRUE;
  else if (g_str_equal (action, "offline"))
    *online = FALSE;
  else
    return FALSE;
  *cpu = (guint) n;
  return TRUE;
}

static gboolean
on_readable (gint fd, GIOCondition condition, gpointer user_data)
{
  QpinUevents *uevents = user_data;
  char buf[8192];
  ssize_t n;

  while ((n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0)
    {
      guint cpu;
      gboolean online;

      buf[n] = '\0';
      if (qpin_uevents_parse_cpu (buf, (gsize) n, &cpu, &online))
        uevents->func (cpu, online, uevents->user_data);
    }
  return G_SOURCE_CONTINUE;
}

/**
 * qpin_uevents_new:
 *
 * Returns: (transfer full): a listener; %NULL when uevents cannot be read
 */
QpinUevents *
qpin_uevents_new (QpinCpuEventFunc func, gpointer user_data, GError **error)
{
  g_autoptr (QpinUevents) uevents = g_new0 (QpinUevents, 1);
  struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };

  uevents->func = func;
  uevents->user_data = user_data;
  uevents->fd
    = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
  if (uevents->fd < 0 || bind (uevents->fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      int err = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), "kernel uevents unavailable: %s",
                   g_strerror (err));
      return NULL;
    }
  uevents->source = g_unix_fd_add (uevents->fd, G_IO_IN, on_readable, uevents);
  return g_steal_pointer (&uevents);
}

void
qpin_uevents_free (QpinUevents *uevents)
{
  if (uevents == NULL)
    return;
  if (uevents->source)
    g_source_remove (uevents->source);
  if (uevents->fd >= 0)
    close (uevents->fd);
  g_free (uevents);
}
