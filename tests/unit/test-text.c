/* test-text.c: qpin_text_escape(), what every table prints for outside text */
#include <glib.h>

#include "qpin-text.h"

static void
test_escape (void)
{
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {
    { "web-1", "web-1" },
    { "", "" },
    /* UTF-8 letters are kept */
    { "caf\xc3\xa9", "caf\xc3\xa9" },
    { "a\nb", "a\\nb" },
    { "a\tb\rc", "a\\tb\\rc" },
    /* an ANSI colour: ESC [ 3 1 m */
    { "\x1b[31mred", "\\x1b[31mred" },
    { "del\x7f", "del\\x7f" },
    /* the backslash itself, so that "a\\n" (backslash, n) reads back apart from a newline */
    { "a\\n", "a\\\\n" },
    /* C1 CSI (U+009B) drives terminals too; U+202E reverses the text after it */
    { "x\xc2\x9b"
      "1m",
      "x\\u009b1m" },
    { "ab\xe2\x80\xae"
      "cd",
      "ab\\u202ecd" },
    /* bytes that are not UTF-8, one by one */
    { "a\xff\xfe"
      "b",
      "a\\xff\\xfeb" },
    { "trunc\xc3", "trunc\\xc3" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = qpin_text_escape (cases[i].in);
      g_assert_cmpstr (got, ==, cases[i].out);
    }
  {
    g_autofree char *none = qpin_text_escape (NULL);
    g_assert_cmpstr (none, ==, "");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/escape", test_escape);
  return g_test_run ();
}
