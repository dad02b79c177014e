/* test-qmp-json.c: the strict, depth-bounded JSON check in front of
 * json-glib, case by case */
#include <string.h>

#include "qpin-qmp-error.h"
#include "qpin-qmp-json.h"

/* RFC 8259 texts: accepted, and json-glib parses each */
static void
test_strict_accepted (void)
{
  static const char *const cases[] = {
    "{}",
    "[]",
    " \t\r\n{ \"a\" : [ 1 , -0 , 0.5 , -1.5e-3 , 1E+2 , 2e5 ] , \"b\" : { } } \r\n",
    "[true, false, null]",
    "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00 \\udbff\\udfff \\uFFFF\"",
    "\"caf\xc3\xa9 [[[ {{{ ' /*\"",
    "{\"return\": \"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}",
    "0",
    "-12",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = qpin_qmp_json_parse (cases[i], -1, &error);
      g_autofree char *shown = g_strescape (cases[i], NULL); /* TAP: UTF-8, one line */

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, shown);
      g_assert_no_error (error);
      g_assert_nonnull (node);
    }
}

/* What json-glib 1.6 accepts and RFC 8259 does not (the first six), and
 * plain garbage: refused with the offset of the first offending byte */
static void
test_lax_refused (void)
{
  static const struct {
    const char *in;
    const char *message;
  } cases[] = {
    { "{'return': 1}", "not JSON: unexpected character ''' at offset 1" },
    { "/* c */ {\"return\": 1}", "not JSON: unexpected character '/' at offset 0" },
    { "var x = {\"return\": 1};", "not JSON: unexpected character 'v' at offset 0" },
    { "{\"return\": 0x10}", "not JSON: unexpected character 'x' at offset 12" },
    { "{\"return\": 010}", "not JSON: unexpected character '1' at offset 12" },
    { "{\"return\": .5}", "not JSON: unexpected character '.' at offset 11" },
    { "{\"return\": \"\\x41\"}", "not JSON: unexpected character 'x' at offset 13" },
    { "// c", "not JSON: unexpected character '/' at offset 0" },
    { "# c", "not JSON: unexpected character '#' at offset 0" },
    { "[1,]", "not JSON: unexpected character ']' at offset 3" },
    { "{\"a\": 1,}", "not JSON: unexpected character '}' at offset 8" },
    { "{\"a\" 1}", "not JSON: unexpected character '1' at offset 5" },
    { "{1: 1}", "not JSON: unexpected character '1' at offset 1" },
    { "[1 2]", "not JSON: unexpected character '2' at offset 3" },
    { "[1}", "not JSON: unexpected character '}' at offset 2" },
    { "{\"return\": 1} x", "not JSON: unexpected character 'x' at offset 14" },
    { "{\"return\": 1}{}", "not JSON: unexpected character '{' at offset 13" },
    { "[tru]", "not JSON: unexpected character 't' at offset 1" },
    { "[truex]", "not JSON: unexpected character 'x' at offset 5" },
    { "[-]", "not JSON: unexpected character ']' at offset 2" },
    { "[1.]", "not JSON: unexpected character ']' at offset 3" },
    { "[1e]", "not JSON: unexpected character ']' at offset 3" },
    { "[+1]", "not JSON: unexpected character '+' at offset 1" },
    { "[\"\\u12g4\"]", "not JSON: unexpected character 'g' at offset 6" },
    { "[\"a\tb\"]", "not JSON: unexpected byte 0x09 at offset 3" },
    /* RFC 8259 allows these; json-glib truncates at the first and
     * refuses the others, and QEMU writes none of them */
    { "[\"a\\u0000b\"]", "not JSON: escaped NUL at offset 3" },
    { "[\"\\udc00\"]", "not JSON: unpaired UTF-16 surrogate at offset 2" },
    { "[\"\\ud800\"]", "not JSON: unpaired UTF-16 surrogate at offset 2" },
    { "[\"\\ud800x\"]", "not JSON: unpaired UTF-16 surrogate at offset 2" },
    { "[\"\\ud800\\u0041\"]", "not JSON: unpaired UTF-16 surrogate at offset 2" },
    { "[\"\\ud800\\ud800\"]", "not JSON: unpaired UTF-16 surrogate at offset 2" },
    { "[\"\\ud800\\u12\"]", "not JSON: unexpected character '\"' at offset 12" },
    { "[\"\xff\"]", "not JSON: invalid UTF-8 at offset 2" },
    { "[\"\xc3\"]", "not JSON: invalid UTF-8 at offset 2" },
    { "\"abc", "not JSON: unexpected end at offset 4" },
    { "[1,", "not JSON: unexpected end at offset 3" },
    { "", "not JSON: unexpected end at offset 0" },
    { "   ", "not JSON: unexpected end at offset 3" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = qpin_qmp_json_parse (cases[i].in, -1, &error);
      g_autofree char *shown = g_strescape (cases[i].in, NULL); /* TAP: UTF-8, one line */

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, shown);
      g_assert_null (node);
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

/* A NUL byte inside the stated length is refused, not taken as the end */
static void
test_nul_byte (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (qpin_qmp_json_check ("[1]\0[", 5, &error));
  g_assert_cmpstr (error->message, ==, "not JSON: unexpected byte 0x00 at offset 3");
}

static char *
nested (const char *open, const char *close, guint depth)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < depth; i++)
    g_string_append (s, open);
  g_string_append (s, "1");
  for (guint i = 0; i < depth; i++)
    g_string_append (s, close);
  return g_string_free (s, FALSE);
}

/* Exactly QPIN_QMP_JSON_MAX_DEPTH levels pass, one more does not, for
 * arrays, objects and both mixed */
static void
test_depth_bound (void)
{
  static const char *const forms[][2] = {
    { "[", "]" },
    { "{\"a\":", "}" },
    { "[{\"a\": ", "}]" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (forms); i++)
    {
      guint per = i == 2 ? 2 : 1; /* levels per repetition */
      g_autofree char *at = nested (forms[i][0], forms[i][1], QPIN_QMP_JSON_MAX_DEPTH / per);
      g_autofree char *over = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = qpin_qmp_json_parse (at, -1, &error);
      g_autoptr (JsonNode) none = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (node);
      over = g_strconcat (forms[i][0], at, forms[i][1], NULL);
      none = qpin_qmp_json_parse (over, -1, &error);
      g_assert_null (none);
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, "message nests deeper than 64 levels");
    }
  /* closing levels frees them: many shallow siblings are fine */
  {
    g_autoptr (GString) wide = g_string_new ("[");
    g_autoptr (JsonNode) node = NULL;

    for (guint i = 0; i < 1000; i++)
      g_string_append (wide, i ? ", [[[[[[[[[[1]]]]]]]]]]" : "[[[[[[[[[[1]]]]]]]]]]");
    g_string_append (wide, "]");
    node = qpin_qmp_json_parse (wide->str, -1, NULL);
    g_assert_nonnull (node);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (node)), ==, 1000);
  }
}

/* One array of @n elements, each @element */
static char *
array_of (const char *element, guint n)
{
  GString *s = g_string_new ("[");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%s", i ? "," : "", element);
  g_string_append (s, "]");
  return g_string_free (s, FALSE);
}

/* The values and containers of a message are bounded (the array itself
 * counts as one of each): exactly the bound parses, one more does not */
static void
test_size_bounds (void)
{
  static const struct {
    const char *element;
    guint bound;
    const char *message;
  } cases[] = {
    { "0", QPIN_QMP_JSON_MAX_VALUES, "message has more than 262144 values" },
    { "{}", QPIN_QMP_JSON_MAX_CONTAINERS, "message has more than 65536 objects and arrays" },
    { "[]", QPIN_QMP_JSON_MAX_CONTAINERS, "message has more than 65536 objects and arrays" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *at = array_of (cases[i].element, cases[i].bound - 1);
      g_autofree char *over = array_of (cases[i].element, cases[i].bound);
      g_autoptr (GError) error = NULL;

      g_assert_true (qpin_qmp_json_check (at, strlen (at), &error));
      g_assert_no_error (error);
      g_assert_false (qpin_qmp_json_check (over, strlen (over), &error));
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/qmp/json/strict-accepted", test_strict_accepted);
  g_test_add_func ("/qmp/json/lax-refused", test_lax_refused);
  g_test_add_func ("/qmp/json/nul-byte", test_nul_byte);
  g_test_add_func ("/qmp/json/depth-bound", test_depth_bound);
  g_test_add_func ("/qmp/json/size-bounds", test_size_bounds);
  return g_test_run ();
}
