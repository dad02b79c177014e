/* qpin-qmp-framer.c: line framing with a hard size limit
 *
 * The buffer holds unread bytes from 'start' to its end; 'scanned' marks how
 * far newlines have been searched so each byte is scanned once, however
 * the peer splits its writes.  Consumed bytes are dropped lazily, when
 * they are more than half of the buffer.  Once every byte is consumed, a
 * buffer that grew past FRAMER_KEEP is given back: an idle connection
 * does not hold the size of the largest reply it ever had.
 */
#define G_LOG_DOMAIN "qpin-qmp"

#include "qpin-qmp-framer.h"
#include "qpin-qmp-error.h"

#include <string.h>

#define FRAMER_KEEP 1024

struct _QpinQmpFramer {
  GByteArray *buf;
  gsize peak;     /* the buffer's largest length since it was last given back */
  gsize start;    /* first unconsumed byte */
  gsize scanned;  /* no newline between 'start' and this offset */
  gsize line_end; /* one past the last newline in the buffer */
  gsize max_line;
  gboolean poisoned;
};

/**
 * qpin_qmp_framer_new:
 * @max_line: the longest accepted line in bytes, without its terminator
 *
 * Returns: (transfer full): a new framer
 */
QpinQmpFramer *
qpin_qmp_framer_new (gsize max_line)
{
  QpinQmpFramer *framer = g_new0 (QpinQmpFramer, 1);

  framer->buf = g_byte_array_new ();
  framer->max_line = max_line;
  return framer;
}

void
qpin_qmp_framer_free (QpinQmpFramer *framer)
{
  if (framer == NULL)
    return;
  g_byte_array_unref (framer->buf);
  g_free (framer);
}

static void
compact (QpinQmpFramer *framer)
{
  if (framer->start == 0 || framer->start < framer->buf->len / 2)
    return;
  g_byte_array_remove_range (framer->buf, 0, (guint) framer->start);
  framer->scanned -= framer->start;
  framer->line_end -= framer->start;
  framer->start = 0;
}

/* Everything was consumed: start over, with a small buffer. */
static void
drain (QpinQmpFramer *framer)
{
  if (framer->peak > FRAMER_KEEP)
    {
      g_byte_array_unref (framer->buf);
      framer->buf = g_byte_array_new ();
      framer->peak = 0;
    }
  g_byte_array_set_size (framer->buf, 0);
  framer->start = framer->scanned = framer->line_end = 0;
}

/**
 * qpin_qmp_framer_feed:
 *
 * Appends bytes read from the peer.  Fails with QPIN_QMP_ERROR_FRAMING when
 * the unterminated tail exceeds the limit; the framer accepts nothing after.
 */
gboolean
qpin_qmp_framer_feed (QpinQmpFramer *framer, const char *data, gsize len, GError **error)
{
  const char *nl;
  gsize tail;

  if (framer->poisoned)
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING,
                   "stream is unusable after a framing error");
      return FALSE;
    }

  compact (framer);
  /* Only the bytes after the last newline can be too long without being a
   * complete line yet; complete lines are measured in _next(). */
  nl = memrchr (data, '\n', len);
  if (nl != NULL)
    tail = len - (gsize) (nl - data) - 1;
  else
    tail = framer->buf->len - framer->line_end + len;
  if (tail > framer->max_line + 1) /* +1: the '\r' before '\n' */
    {
      framer->poisoned = TRUE;
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING,
                   "message exceeds %" G_GSIZE_FORMAT " bytes without a line end",
                   framer->max_line);
      return FALSE;
    }
  g_byte_array_append (framer->buf, (const guint8 *) data, (guint) len);
  framer->peak = MAX (framer->peak, framer->buf->len);
  if (nl != NULL)
    framer->line_end = framer->buf->len - tail;
  return TRUE;
}

/**
 * qpin_qmp_framer_next:
 * @line: (out) (transfer none): the next complete, non-empty line without
 *   its "\r\n", NUL-terminated, valid until the next call on @framer;
 *   %NULL when no line is complete yet
 * @len: (out): its length
 *
 * Returns: %FALSE with QPIN_QMP_ERROR_FRAMING when a complete line exceeds
 * the limit; the framer is then unusable.
 */
gboolean
qpin_qmp_framer_next (QpinQmpFramer *framer, const char **line, gsize *len, GError **error)
{
  *line = NULL;
  *len = 0;
  while (!framer->poisoned)
    {
      guint8 *base = framer->buf->data;
      guint8 *nl = NULL;
      gsize line_start = framer->start;
      gsize line_len;

      if (framer->scanned < framer->line_end)
        nl = memchr (base + framer->scanned, '\n', framer->line_end - framer->scanned);
      if (nl == NULL)
        {
          framer->scanned = framer->line_end;
          if (framer->start == framer->buf->len)
            drain (framer);
          return TRUE;
        }
      line_len = (gsize) (nl - base) - line_start;
      framer->start = framer->scanned = (gsize) (nl - base) + 1;
      if (line_len > 0 && base[line_start + line_len - 1] == '\r')
        line_len--;
      if (line_len > framer->max_line)
        {
          framer->poisoned = TRUE;
          g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING,
                       "message of %" G_GSIZE_FORMAT " bytes exceeds the limit of %" G_GSIZE_FORMAT,
                       line_len, framer->max_line);
          return FALSE;
        }
      if (line_len == 0)
        continue;
      base[line_start + line_len] = '\0';
      *line = (const char *) base + line_start;
      *len = line_len;
      return TRUE;
    }
  g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING,
               "stream is unusable after a framing error");
  return FALSE;
}

/**
 * qpin_qmp_framer_pending:
 *
 * Returns: the number of buffered bytes not yet returned as lines; a
 * poisoned framer reports G_MAXSIZE.
 */
gsize
qpin_qmp_framer_pending (const QpinQmpFramer *framer)
{
  if (framer->poisoned)
    return G_MAXSIZE;
  return framer->buf->len - framer->start;
}
