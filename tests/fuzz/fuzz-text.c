/* fuzz-text.c: qpin_text_escape() on any bytes, as a VM may name itself */
#include <stdint.h>
#include <string.h>

#include "qpin-fuzz.h"
#include "qpin-text.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autofree char *out = NULL;

  qpin_fuzz_init ();
  out = qpin_text_escape (text);
  /* UTF-8 without a control or format character: one table cell */
  g_assert_true (g_utf8_validate (out, -1, NULL));
  for (const char *p = out; *p; p = g_utf8_next_char (p))
    {
      GUnicodeType type = g_unichar_type (g_utf8_get_char (p));
      g_assert_true (type != G_UNICODE_CONTROL && type != G_UNICODE_FORMAT);
    }
  return 0;
}
