/* qpin-qmp-json.c: strict JSON (RFC 8259) before json-glib sees it
 *
 * json-glib parses recursively, so nesting must be bounded before it
 * parses, and its lexer is lax: 1.6 takes single-quoted strings, C
 * comments, "var x = ...;", hex and octal numbers.  A depth guard that
 * lexes differently from json-glib can be fooled: ['"', [[[... hides
 * 200,000 levels inside what the guard takes for a string (a comment
 * holding a quote does the same), and json-glib overflows the stack.
 * Mirroring a lax lexer is a moving target (1.6, 1.8 and 1.10 differ).
 * Instead we accept only what RFC 8259 accepts: QEMU writes nothing else
 * (its JSON writer, qobject/qjson.c, emits ASCII with \u escapes), and
 * our control socket peers write with json-glib's generator, so anything
 * else is a protocol violation anyway.  On strict JSON the lexers agree,
 * so the depth counted here, in one iterative pass, is the depth
 * json-glib recurses to; the qmp fuzz target checks that whatever passes
 * here json-glib parses.
 */
#define G_LOG_DOMAIN "qpin-qmp"

#include "qpin-qmp-json.h"
#include "qpin-qmp-error.h"

#include <string.h>

typedef struct {
  const guchar *text;
  gsize len;
  gsize at;
  guint depth;
  guint values;
  guint containers;
  guchar open[QPIN_QMP_JSON_MAX_DEPTH]; /* '[' or '{', per level */
} Scan;

static gboolean
fail (GError **error, gsize at, const char *what)
{
  g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL,
               "not JSON: %s at offset %" G_GSIZE_FORMAT, what, at);
  return FALSE;
}

static gboolean
unexpected (const Scan *s, GError **error)
{
  g_autofree char *what = NULL;
  guchar c;

  if (s->at >= s->len)
    return fail (error, s->at, "unexpected end");
  c = s->text[s->at];
  if (c >= 0x20 && c < 0x7f)
    what = g_strdup_printf ("unexpected character '%c'", c);
  else
    what = g_strdup_printf ("unexpected byte 0x%02x", c);
  return fail (error, s->at, what);
}

static int
peek (const Scan *s)
{
  return s->at < s->len ? s->text[s->at] : -1;
}

static void
skip_space (Scan *s)
{
  while (s->at < s->len
         && (s->text[s->at] == ' ' || s->text[s->at] == '\t' || s->text[s->at] == '\n'
             || s->text[s->at] == '\r'))
    s->at++;
}

static gboolean
expect_char (Scan *s, int c, GError **error)
{
  skip_space (s);
  if (peek (s) != c)
    return unexpected (s, error);
  s->at++;
  return TRUE;
}

/* After "\\u": four hex digits, as a UTF-16 code unit */
static gboolean
scan_unit (Scan *s, guint *unit, GError **error)
{
  *unit = 0;
  for (guint i = 0; i < 4; i++, s->at++)
    {
      int digit = g_ascii_xdigit_value ((char) peek (s));

      if (digit < 0)
        return unexpected (s, error);
      *unit = *unit << 4 | (guint) digit;
    }
  return TRUE;
}

/* After "\\u".  RFC 8259 lets "\\u0000" and unpaired surrogates through;
 * QEMU never writes them (its strings are C strings of valid UTF-8) and
 * json-glib truncates at the first and refuses the second. */
static gboolean
scan_unicode_escape (Scan *s, GError **error)
{
  gsize start = s->at - 2;
  guint unit, low;

  if (!scan_unit (s, &unit, error))
    return FALSE;
  if (unit == 0)
    return fail (error, start, "escaped NUL");
  if (unit >= 0xdc00 && unit <= 0xdfff)
    return fail (error, start, "unpaired UTF-16 surrogate");
  if (unit < 0xd800 || unit > 0xdbff)
    return TRUE;
  if (s->len - s->at < 2 || s->text[s->at] != '\\' || s->text[s->at + 1] != 'u')
    return fail (error, start, "unpaired UTF-16 surrogate");
  s->at += 2;
  if (!scan_unit (s, &low, error))
    return FALSE;
  if (low < 0xdc00 || low > 0xdfff)
    return fail (error, start, "unpaired UTF-16 surrogate");
  return TRUE;
}

/* After the backslash: one of \" \\ \/ \b \f \n \r \t \uXXXX */
static gboolean
scan_escape (Scan *s, GError **error)
{
  int c = peek (s);

  if (c > 0 && strchr ("\"\\/bfnrt", c) != NULL)
    {
      s->at++;
      return TRUE;
    }
  if (c != 'u')
    return unexpected (s, error);
  s->at++;
  return scan_unicode_escape (s, error);
}

/* At the opening quote.  UTF-8 was validated for the whole text. */
static gboolean
scan_string (Scan *s, GError **error)
{
  s->at++;
  while (s->at < s->len)
    {
      guchar c = s->text[s->at];

      if (c == '"')
        {
          s->at++;
          return TRUE;
        }
      if (c < 0x20)
        return unexpected (s, error);
      s->at++;
      if (c == '\\' && !scan_escape (s, error))
        return FALSE;
    }
  return unexpected (s, error);
}

static gboolean
scan_digits (Scan *s)
{
  gsize start = s->at;

  while (g_ascii_isdigit (peek (s)))
    s->at++;
  return s->at > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static gboolean
scan_number (Scan *s, GError **error)
{
  if (peek (s) == '-')
    s->at++;
  if (peek (s) == '0')
    s->at++;
  else if (!scan_digits (s))
    return unexpected (s, error);
  if (peek (s) == '.')
    {
      s->at++;
      if (!scan_digits (s))
        return unexpected (s, error);
    }
  if (peek (s) == 'e' || peek (s) == 'E')
    {
      s->at++;
      if (peek (s) == '+' || peek (s) == '-')
        s->at++;
      if (!scan_digits (s))
        return unexpected (s, error);
    }
  return TRUE;
}

static gboolean
scan_scalar (Scan *s, GError **error)
{
  static const char *const literals[] = { "true", "false", "null" };
  int c = peek (s);

  if (c == '"')
    return scan_string (s, error);
  if (c == '-' || g_ascii_isdigit (c))
    return scan_number (s, error);
  for (gsize i = 0; i < G_N_ELEMENTS (literals); i++)
    {
      gsize n = strlen (literals[i]);

      if (s->len - s->at >= n && memcmp (s->text + s->at, literals[i], n) == 0)
        {
          s->at += n;
          return TRUE;
        }
    }
  return unexpected (s, error);
}

/* After '{' or an object's ',': a member name and its colon. */
static gboolean
scan_member_name (Scan *s, GError **error)
{
  skip_space (s);
  if (peek (s) != '"')
    return unexpected (s, error);
  return scan_string (s, error) && expect_char (s, ':', error);
}

static gboolean
too_many (GError **error, const char *what, guint max)
{
  g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "message has more than %u %s", max,
               what);
  return FALSE;
}

static int
closer (guchar open)
{
  return open == '[' ? ']' : '}';
}

/* Where a value must start.  *complete: the value ended (a scalar, or
 * an empty container); otherwise a container was opened and the next
 * value is its first element. */
static gboolean
scan_value (Scan *s, gboolean *complete, GError **error)
{
  int c;

  skip_space (s);
  c = peek (s);
  *complete = TRUE;
  if (++s->values > QPIN_QMP_JSON_MAX_VALUES)
    return too_many (error, "values", QPIN_QMP_JSON_MAX_VALUES);
  if (c != '[' && c != '{')
    return scan_scalar (s, error);
  if (s->depth == QPIN_QMP_JSON_MAX_DEPTH)
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL,
                   "message nests deeper than %d levels", QPIN_QMP_JSON_MAX_DEPTH);
      return FALSE;
    }
  if (++s->containers > QPIN_QMP_JSON_MAX_CONTAINERS)
    return too_many (error, "objects and arrays", QPIN_QMP_JSON_MAX_CONTAINERS);
  s->open[s->depth++] = (guchar) c;
  s->at++;
  skip_space (s);
  if (peek (s) == closer ((guchar) c))
    {
      s->depth--;
      s->at++;
      return TRUE;
    }
  *complete = FALSE;
  return c == '[' || scan_member_name (s, error);
}

/* After a complete value: close containers up to the next ',' (*more)
 * or the end of the text. */
static gboolean
scan_after_value (Scan *s, gboolean *more, GError **error)
{
  *more = FALSE;
  for (;;)
    {
      guchar open;

      skip_space (s);
      if (s->depth == 0)
        return s->at == s->len || unexpected (s, error);
      open = s->open[s->depth - 1];
      if (peek (s) == ',')
        {
          s->at++;
          *more = TRUE;
          return open == '[' || scan_member_name (s, error);
        }
      if (peek (s) != closer (open))
        return unexpected (s, error);
      s->at++;
      s->depth--;
    }
}

/**
 * qpin_qmp_json_check:
 * @text: one JSON text, not necessarily NUL-terminated
 * @len: its length
 *
 * Checks @text against RFC 8259 (one value, UTF-8, no comments, no
 * single quotes, no trailing bytes), its nesting against
 * QPIN_QMP_JSON_MAX_DEPTH and its size against QPIN_QMP_JSON_MAX_VALUES
 * and QPIN_QMP_JSON_MAX_CONTAINERS, in time linear in @len and constant
 * stack.
 *
 * Returns: %FALSE with QPIN_QMP_ERROR_PROTOCOL naming the offset of the
 * first offending byte, or the bound exceeded
 */
gboolean
qpin_qmp_json_check (const char *text, gsize len, GError **error)
{
  Scan s = { (const guchar *) text, len, 0, 0, 0, 0, { 0 } };
  const char *end = NULL;

  if (!g_utf8_validate_len (text, len, &end))
    {
      s.at = (gsize) (end - text);
      return s.text[s.at] < 0x80 ? unexpected (&s, error) : fail (error, s.at, "invalid UTF-8");
    }
  for (;;)
    {
      gboolean complete, more;

      if (!scan_value (&s, &complete, error))
        return FALSE;
      if (!complete)
        continue;
      if (!scan_after_value (&s, &more, error))
        return FALSE;
      if (!more)
        return TRUE;
    }
}

/**
 * qpin_qmp_json_parse:
 * @text: one JSON text from a peer
 * @len: its length, or -1 if NUL-terminated
 *
 * The one way a peer's bytes reach json-glib: qpin_qmp_json_check()
 * first, then json-glib.
 *
 * Returns: (transfer full): the root node; %NULL with
 * QPIN_QMP_ERROR_PROTOCOL when @text is not strict JSON or nests too deep
 */
JsonNode *
qpin_qmp_json_parse (const char *text, gssize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;

  if (len < 0)
    len = (gssize) strlen (text);
  if (!qpin_qmp_json_check (text, (gsize) len, error))
    return NULL;
  if (!json_parser_load_from_data (parser, text, len, &local))
    {
      g_set_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL, "not JSON: %s", local->message);
      return NULL;
    }
  return json_parser_steal_root (parser);
}
