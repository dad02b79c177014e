/* qpin-text.c: text from outside (VM names, QMP strings) made safe to print
 *
 * A VM names itself (QMP query-name, -name): a newline in the name would
 * split a table row, an escape sequence would recolour or rewrite the
 * terminal.  Every table writer passes such text through
 * qpin_text_escape(); JSON output needs no help (json-glib escapes).
 */
#include "qpin-text.h"

#include <string.h>

static gboolean
needs_escape (gunichar c)
{
  GUnicodeType type = g_unichar_type (c);

  /* C0, DEL, C1; bidi overrides, zero-width and line/paragraph separators */
  return c == '\\' || type == G_UNICODE_CONTROL || type == G_UNICODE_FORMAT
         || type == G_UNICODE_LINE_SEPARATOR || type == G_UNICODE_PARAGRAPH_SEPARATOR;
}

static void
append_escaped (GString *s, gunichar c)
{
  switch (c)
    {
    case '\\':
      g_string_append (s, "\\\\");
      break;
    case '\n':
      g_string_append (s, "\\n");
      break;
    case '\r':
      g_string_append (s, "\\r");
      break;
    case '\t':
      g_string_append (s, "\\t");
      break;
    default:
      if (c < 0x80)
        g_string_append_printf (s, "\\x%02x", c);
      else
        g_string_append_printf (s, "\\u%04x", c);
    }
}

/**
 * qpin_text_escape:
 * @text: (nullable): text from outside, any bytes
 *
 * C-style escapes what could break a line-oriented table or drive a
 * terminal: control characters (`\n`, `\t`, `\r`, else `\x1b`; C1 as
 * `\u009b`), invisible format characters (bidi overrides, zero-width) as
 * `\uXXXX`, bytes that are not UTF-8 as `\xNN`, and the backslash itself
 * as `\\`, so that the output reads back to one input.  Printable text,
 * UTF-8 letters included, is kept as it is.
 *
 * Returns: (transfer full): the escaped text ("" for %NULL).
 */
char *
qpin_text_escape (const char *text)
{
  GString *s;
  const char *p = text ? text : "";
  const char *end = p + strlen (p);

  s = g_string_sized_new ((gsize) (end - p));
  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (s, "\\x%02x", (guint) (guchar) *p);
          p++;
          continue;
        }
      if (needs_escape (c))
        append_escaped (s, c);
      else
        g_string_append_len (s, p, g_utf8_next_char (p) - p);
      p = g_utf8_next_char (p);
    }
  return g_string_free (s, FALSE);
}
