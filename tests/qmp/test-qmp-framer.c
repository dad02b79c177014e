/* test-qmp-framer.c: line framing over split, merged and oversized input */
#include <string.h>

#include "qpin-qmp-error.h"
#include "qpin-qmp-framer.h"
#include "qpin-qmp-message.h"
#include "qpin-qmp-types.h"

/* Feed @input in chunks of @chunk bytes; collect every line. */
static GPtrArray *
frame_all (const char *input, gsize len, gsize chunk, gsize max, GError **error)
{
  g_autoptr (QpinQmpFramer) framer = qpin_qmp_framer_new (max);
  g_autoptr (GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);

  for (gsize off = 0; off < len; off += chunk)
    {
      const char *line;
      gsize line_len;

      if (!qpin_qmp_framer_feed (framer, input + off, MIN (chunk, len - off), error))
        return NULL;
      for (;;)
        {
          if (!qpin_qmp_framer_next (framer, &line, &line_len, error))
            return NULL;
          if (line == NULL)
            break;
          g_assert_cmpuint (strlen (line), ==, line_len);
          g_ptr_array_add (lines, g_strndup (line, line_len));
        }
    }
  return g_steal_pointer (&lines);
}

static void
test_split_and_merged (void)
{
  const char *input = "{\"QMP\": {}}\r\n{\"return\": {}, \"id\": 1}\r\n\r\n{\"event\": \"STOP\"}\n"
                      "{\"return\": \"x\\r\\n\"}\r\n";
  const char *expected[] = { "{\"QMP\": {}}", "{\"return\": {}, \"id\": 1}",
                             "{\"event\": \"STOP\"}", "{\"return\": \"x\\r\\n\"}" };

  /* every chunk size from one byte at a time to all at once */
  for (gsize chunk = 1; chunk <= strlen (input); chunk++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) lines = frame_all (input, strlen (input), chunk, 1024, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (lines->len, ==, G_N_ELEMENTS (expected));
      for (guint i = 0; i < lines->len; i++)
        g_assert_cmpstr (g_ptr_array_index (lines, i), ==, expected[i]);
    }
}

static void
test_partial_kept (void)
{
  g_autoptr (QpinQmpFramer) framer = qpin_qmp_framer_new (64);
  const char *line;
  gsize len;

  g_assert_true (qpin_qmp_framer_feed (framer, "{\"a\":", 5, NULL));
  g_assert_true (qpin_qmp_framer_next (framer, &line, &len, NULL));
  g_assert_null (line);
  g_assert_cmpuint (qpin_qmp_framer_pending (framer), ==, 5);
  g_assert_true (qpin_qmp_framer_feed (framer, "1}\r", 3, NULL));
  g_assert_true (qpin_qmp_framer_next (framer, &line, &len, NULL));
  g_assert_null (line);
  g_assert_true (qpin_qmp_framer_feed (framer, "\n", 1, NULL));
  g_assert_true (qpin_qmp_framer_next (framer, &line, &len, NULL));
  g_assert_cmpstr (line, ==, "{\"a\":1}");
  g_assert_cmpuint (len, ==, 7);
  g_assert_cmpuint (qpin_qmp_framer_pending (framer), ==, 0);
}

static void
test_oversized_tail (void)
{
  g_autoptr (QpinQmpFramer) framer = qpin_qmp_framer_new (16);
  g_autoptr (GError) error = NULL;
  const char *line;
  gsize len;

  /* exactly the limit plus "\r" is fine while unterminated */
  g_assert_true (qpin_qmp_framer_feed (framer, "0123456789abcdef\r", 17, NULL));
  g_assert_false (qpin_qmp_framer_feed (framer, "x", 1, &error));
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING);
  g_assert_cmpstr (error->message, ==, "message exceeds 16 bytes without a line end");
  g_clear_error (&error);
  /* poisoned: nothing more is accepted or returned */
  g_assert_false (qpin_qmp_framer_feed (framer, "\n", 1, &error));
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING);
  g_clear_error (&error);
  g_assert_false (qpin_qmp_framer_next (framer, &line, &len, &error));
  g_assert_null (line);
  g_assert_cmpuint (qpin_qmp_framer_pending (framer), ==, G_MAXSIZE);
}

static void
test_oversized_complete_line (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) lines = NULL;
  const char *input = "{\"ok\":1}\n0123456789abcdefXYZ\n{\"never\":1}\n";

  lines = frame_all (input, strlen (input), strlen (input), 16, &error);
  g_assert_null (lines);
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING);
  g_assert_cmpstr (error->message, ==, "message of 19 bytes exceeds the limit of 16");
}

static void
test_limit_exact (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) lines = NULL;
  const char *input = "0123456789abcdef\r\n0123456789abcdef\n";

  for (gsize chunk = 1; chunk <= strlen (input); chunk++)
    {
      g_clear_pointer (&lines, g_ptr_array_unref);
      lines = frame_all (input, strlen (input), chunk, 16, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (lines->len, ==, 2);
    }
}

static void
test_many_lines_compaction (void)
{
  g_autoptr (GString) input = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) lines = NULL;

  for (guint i = 0; i < 10000; i++)
    g_string_append_printf (input, "{\"return\": %u, \"id\": %u}\r\n", i, i);
  lines = frame_all (input->str, input->len, 4093, 64, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lines->len, ==, 10000);
  g_assert_cmpstr (g_ptr_array_index (lines, 9999), ==, "{\"return\": 9999, \"id\": 9999}");
}

/* Lines far larger than the kept buffer, each followed by small ones
 * split around it: after every full drain the framer starts over and
 * loses nothing, whatever the chunking. */
static void
test_big_then_small (void)
{
  g_autoptr (GString) input = g_string_new (NULL);
  g_autofree char *big = g_strnfill (100000, 'x');

  for (guint i = 0; i < 3; i++)
    g_string_append_printf (input, "{\"%s\":%u}\r\n{\"s\":%u}\n", big, i, i);
  for (gsize chunk = 7; chunk <= input->len; chunk = chunk * 5 + 3)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) lines = frame_all (input->str, input->len, chunk, 1 << 20, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (lines->len, ==, 6);
      for (guint i = 0; i < 3; i++)
        {
          g_autofree char *want = g_strdup_printf ("{\"s\":%u}", i);
          const char *b = g_ptr_array_index (lines, 2 * i);

          g_assert_cmpuint (strlen (b), ==, 100000 + 6);
          g_assert_cmpint (b[strlen (b) - 2], ==, '0' + (int) i);
          g_assert_cmpstr (g_ptr_array_index (lines, 2 * i + 1), ==, want);
        }
    }
}

/* query-cpus-fast for @n vCPUs, every member as wide as QEMU makes it:
 * 7-digit TIDs, every topology prop (QEMU 9.x adds module-id), the
 * qom-type of QEMU 10.1 and a long CPU model: about 290 bytes a vCPU where
 * QEMU 7.2 prints 164 (measured: 39,355 bytes for 240 vCPUs) */
static GString *
widest_cpus_fast (guint n)
{
  GString *s = g_string_new ("{\"return\": [");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (
      s,
      "%s{\"thread-id\": 4194303, \"props\": {\"core-id\": 4095, \"thread-id\": 1, \"node-id\": "
      "127, \"socket-id\": 4095, \"die-id\": 4095, \"cluster-id\": 4095, \"module-id\": 4095}, "
      "\"qom-path\": \"/machine/unattached/device[%u]\", \"cpu-index\": %u, \"target\": "
      "\"x86_64\", \"qom-type\": \"Cascadelake-Server-v5-x86_64-cpu\"}",
      i ? ", " : "", i + 1000, i);
  g_string_append (s, "], \"id\": 99999}\r\n");
  return s;
}

/* The default bound takes the widest reply of the most vCPUs QEMU allows
 * (4,096: 1.2 MB) with room to spare, and refuses the 10,000-vCPU one
 * (2.9 MB), which took 33 MB and 120 ms of json-glib per reply */
static void
test_default_bound (void)
{
  g_autoptr (GString) most = widest_cpus_fast (4096);
  g_autoptr (GString) lie = widest_cpus_fast (10000);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) lines
    = frame_all (most->str, most->len, 65536, QPIN_QMP_FRAMER_DEFAULT_MAX, &error);
  g_autoptr (GPtrArray) none = NULL;
  g_autofree char *expected = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (lines->len, ==, 1);
  g_assert_cmpuint (most->len, <, QPIN_QMP_FRAMER_DEFAULT_MAX * 2 / 3);
  {
    g_autoptr (QpinQmpMessage) msg
      = qpin_qmp_message_parse (g_ptr_array_index (lines, 0), -1, &error);
    g_autoptr (GPtrArray) cpus = msg ? qpin_qmp_parse_cpus_fast (msg->ret, &error) : NULL;

    g_assert_no_error (error);
    g_assert_cmpuint (cpus->len, ==, 4096);
  }
  none = frame_all (lie->str, lie->len, lie->len, QPIN_QMP_FRAMER_DEFAULT_MAX, &error);
  g_assert_null (none);
  expected = g_strdup_printf ("message of %" G_GSIZE_FORMAT " bytes exceeds the limit of 2097152",
                              lie->len - 2);
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_FRAMING);
  g_assert_cmpstr (error->message, ==, expected);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/qmp/framer/split-and-merged", test_split_and_merged);
  g_test_add_func ("/qmp/framer/partial-kept", test_partial_kept);
  g_test_add_func ("/qmp/framer/oversized-tail", test_oversized_tail);
  g_test_add_func ("/qmp/framer/oversized-complete-line", test_oversized_complete_line);
  g_test_add_func ("/qmp/framer/limit-exact", test_limit_exact);
  g_test_add_func ("/qmp/framer/many-lines", test_many_lines_compaction);
  g_test_add_func ("/qmp/framer/big-then-small", test_big_then_small);
  g_test_add_func ("/qmp/framer/default-bound", test_default_bound);
  return g_test_run ();
}
