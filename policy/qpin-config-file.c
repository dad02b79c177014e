/* qpin-config-file.c: reading a config file that may be hostile or a mistake
 *
 * The path comes from an administrator, but may name anything: a FIFO
 * (open() would wait for a writer forever), /dev/zero (read until memory
 * runs out), a huge file, or a text with a NUL byte (a C string ends there
 * and the rest of the config is silently lost).  Each is refused before
 * parsing, naming the file.
 */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-policy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *
file_kind (mode_t mode)
{
  if (S_ISFIFO (mode))
    return "a FIFO";
  if (S_ISCHR (mode))
    return "a character device";
  if (S_ISBLK (mode))
    return "a block device";
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISSOCK (mode))
    return "a socket";
  return "not a file";
}

static gboolean
errno_error (const char *path, const char *what, int saved, GError **error)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: cannot %s: %s", path,
               what, g_strerror (saved));
  return FALSE;
}

/* Checks what @fd is before a byte is read: a regular file of at most
 * QPIN_CONFIG_MAX_BYTES. */
static gboolean
check_file (int fd, const char *path, gsize *size, GError **error)
{
  struct stat st;

  if (fstat (fd, &st) < 0)
    return errno_error (path, "stat", errno, error);
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a regular file (%s): refused",
                   path, file_kind (st.st_mode));
      return FALSE;
    }
  if (st.st_size > QPIN_CONFIG_MAX_BYTES)
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_RANGE,
                   "%s: %" G_GINT64_FORMAT " bytes, more than the %d a config file may have", path,
                   (gint64) st.st_size, QPIN_CONFIG_MAX_BYTES);
      return FALSE;
    }
  *size = (gsize) st.st_size;
  return TRUE;
}

/* Reads to the end, never more than QPIN_CONFIG_MAX_BYTES: the file may
 * grow after fstat(). */
static char *
read_bounded (int fd, const char *path, gsize size, gsize *len, GError **error)
{
  g_autoptr (GByteArray) buf = g_byte_array_sized_new ((guint) size + 1);
  guint8 chunk[65536];

  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          errno_error (path, "read", errno, error);
          return NULL;
        }
      if (n == 0)
        break;
      if (buf->len + (gsize) n > QPIN_CONFIG_MAX_BYTES)
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_RANGE,
                       "%s: more than the %d bytes a config file may have", path,
                       QPIN_CONFIG_MAX_BYTES);
          return NULL;
        }
      g_byte_array_append (buf, chunk, (guint) n);
    }
  *len = buf->len;
  g_byte_array_append (buf, (const guint8 *) "", 1);
  return (char *) g_byte_array_free (g_steal_pointer (&buf), FALSE);
}

/* A NUL would end the text for the parser: refuse it, naming its line. */
static gboolean
check_text (const char *data, gsize len, const char *path, GError **error)
{
  const char *nul = memchr (data, '\0', len);
  guint line = 1;

  if (nul == NULL)
    return TRUE;
  for (const char *p = data; p < nul; p++)
    line += *p == '\n';
  g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
               "%s:%u: a NUL byte: a config file is text", path, line);
  return FALSE;
}

/**
 * qpin_config_load_file:
 * @path: the config file
 *
 * Reads @path and loads it with qpin_config_load_data().  Only a regular
 * file (symlinks to one included) of at most %QPIN_CONFIG_MAX_BYTES
 * without NUL bytes is read; anything else is refused before reading, and
 * opening never blocks (a FIFO is refused, not waited on).
 *
 * Returns: %TRUE on success; otherwise a #GFileError (cannot open, not a
 * regular file) or %QPIN_POLICY_ERROR, each message starting with @path.
 */
gboolean
qpin_config_load_file (QpinConfig *config, const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize size = 0, len = 0;
  int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  gboolean ok;

  if (fd < 0)
    return errno_error (path, "open", errno, error);
  ok = check_file (fd, path, &size, error)
       && (data = read_bounded (fd, path, size, &len, error)) != NULL;
  close (fd);
  return ok && check_text (data, len, path, error)
         && qpin_config_load_data (config, data, path, error);
}
