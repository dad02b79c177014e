/* test-cpuset.c: cpulist parse/format round trips and exact errors */
#include <glib.h>

#include "qpin-cpuset.h"

static void
test_roundtrip (void)
{
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {
    { "", "" },           { "0", "0" },           { "0-3,8,10-11", "0-3,8,10-11" },
    { "3,2,1,0", "0-3" }, { "0-3\n", "0-3" },     { " 5 ", "5" },
    { "1,1,1", "1" },     { "0-1,2-3", "0-3" },   { "63-64", "63-64" },
    { "8191", "8191" },   { "0-8191", "0-8191" }, { "0,2,4,6", "0,2,4,6" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      QpinCpuset set;
      g_autoptr (GError) error = NULL;
      g_autofree char *text = NULL;

      g_assert_true (qpin_cpuset_parse (cases[i].in, &set, &error));
      g_assert_no_error (error);
      text = qpin_cpuset_format (&set);
      g_assert_cmpstr (text, ==, cases[i].out);
    }
}

static void
test_errors (void)
{
  static const struct {
    const char *in;
    int code;
    const char *message;
  } cases[] = {
    { "a", QPIN_POLICY_ERROR_PARSE, "invalid cpulist 'a': expected a CPU number at offset 0" },
    { "1,", QPIN_POLICY_ERROR_PARSE, "invalid cpulist '1,': trailing ','" },
    { ",1", QPIN_POLICY_ERROR_PARSE, "invalid cpulist ',1': expected a CPU number at offset 0" },
    { "3-1", QPIN_POLICY_ERROR_PARSE, "invalid cpulist '3-1': range 3-1 is reversed" },
    { "1-", QPIN_POLICY_ERROR_PARSE, "invalid cpulist '1-': expected a CPU number at offset 2" },
    { "1 2", QPIN_POLICY_ERROR_PARSE, "invalid cpulist '1 2': unexpected ' ' at offset 1" },
    { "-1", QPIN_POLICY_ERROR_PARSE, "invalid cpulist '-1': expected a CPU number at offset 0" },
    { "8192", QPIN_POLICY_ERROR_RANGE,
      "invalid cpulist '8192': CPU '8192' is out of range (0-8191)" },
    { "0-99999999999999999999", QPIN_POLICY_ERROR_RANGE,
      "invalid cpulist '0-99999999999999999999': CPU '99999999999999999999' is out of range "
      "(0-8191)" },
    { "1;2", QPIN_POLICY_ERROR_PARSE, "invalid cpulist '1;2': unexpected ';' at offset 1" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      QpinCpuset set;
      g_autoptr (GError) error = NULL;

      qpin_cpuset_clear_all (&set);
      qpin_cpuset_add (&set, 7);
      g_assert_false (qpin_cpuset_parse (cases[i].in, &set, &error));
      g_assert_error (error, QPIN_POLICY_ERROR, cases[i].code);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      /* output untouched on failure */
      g_assert_cmpuint (qpin_cpuset_count (&set), ==, 1);
      g_assert_true (qpin_cpuset_has (&set, 7));
    }
}

static void
test_ops (void)
{
  QpinCpuset a, b, c;
  gint seen = 0;

  g_assert_true (qpin_cpuset_parse ("0-9,64,127-129", &a, NULL));
  g_assert_true (qpin_cpuset_parse ("5-70", &b, NULL));
  g_assert_cmpuint (qpin_cpuset_count (&a), ==, 14);
  g_assert_cmpint (qpin_cpuset_first (&a), ==, 0);
  g_assert_cmpint (qpin_cpuset_last (&a), ==, 129);
  g_assert_cmpint (qpin_cpuset_next (&a, 9), ==, 64);
  g_assert_cmpint (qpin_cpuset_next (&a, 129), ==, -1);
  g_assert_true (qpin_cpuset_intersects (&a, &b));

  c = a;
  qpin_cpuset_and (&c, &b);
  g_autofree char *and = qpin_cpuset_format (&c);
  g_assert_cmpstr (and, ==, "5-9,64");
  g_assert_true (qpin_cpuset_is_subset (&c, &a));
  g_assert_false (qpin_cpuset_is_subset (&a, &c));

  c = a;
  qpin_cpuset_andnot (&c, &b);
  g_autofree char *andnot = qpin_cpuset_format (&c);
  g_assert_cmpstr (andnot, ==, "0-4,127-129");

  c = a;
  qpin_cpuset_or (&c, &b);
  g_autofree char * or = qpin_cpuset_format (&c);
  g_assert_cmpstr (or, ==, "0-70,127-129");

  QPIN_CPUSET_FOREACH (cpu, &a)
    {
      g_assert_true (qpin_cpuset_has (&a, (guint) cpu));
      seen++;
    }
  g_assert_cmpint (seen, ==, 14);

  qpin_cpuset_clear_all (&c);
  g_assert_true (qpin_cpuset_is_empty (&c));
  g_assert_cmpint (qpin_cpuset_first (&c), ==, -1);
  g_assert_cmpint (qpin_cpuset_last (&c), ==, -1);
  g_assert_false (qpin_cpuset_has (&c, QPIN_CPUSET_MAX + 5));
}

/* Packing keeps the set exactly, in as many words as it needs, through
 * growing, shrinking and emptying the same storage. */
static void
test_packed (void)
{
  static const char *const sets[]
    = { "", "0", "63", "0-63", "64", "1,200", "0-8191", "8191", "5", "", "4095-4096" };
  static const guint words[] = { 0, 1, 1, 1, 2, 4, 128, 128, 1, 0, 65 };
  QpinCpusetPacked packed = { 0 };

  for (gsize i = 0; i < G_N_ELEMENTS (sets); i++)
    {
      QpinCpuset set, back, other;
      g_autofree char *text = NULL;

      g_assert_true (qpin_cpuset_parse (sets[i], &set, NULL));
      qpin_cpuset_pack (&packed, &set);
      g_assert_cmpuint (packed.n, ==, words[i]);
      qpin_cpuset_unpack (&packed, &back);
      text = qpin_cpuset_format (&back);
      g_assert_cmpstr (text, ==, sets[i]);
      g_assert_true (qpin_cpuset_packed_equal (&packed, &set));
      /* one CPU more or less, inside and beyond the stored words */
      other = set;
      if (qpin_cpuset_has (&set, 8190))
        qpin_cpuset_remove (&other, 8190);
      else
        qpin_cpuset_add (&other, 8190);
      g_assert_false (qpin_cpuset_packed_equal (&packed, &other));
      other = set;
      if (qpin_cpuset_first (&set) >= 0)
        {
          qpin_cpuset_remove (&other, (guint) qpin_cpuset_first (&set));
          g_assert_false (qpin_cpuset_packed_equal (&packed, &other));
        }
    }
  qpin_cpuset_packed_clear (&packed);
  g_assert_cmpuint (packed.n, ==, 0);
}

/* Holding and releasing one CPU at a time in place matches the same
 * steps on a whole set, in the words the set needs (2 past CPU 63, 1 and
 * no allocation back below it); a copy owns its words. */
static void
test_packed_in_place (void)
{
  static const guint steps[] = { 3, 70, 200, 5, 200, 70, 8191, 8191, 3, 5 };
  QpinCpusetPacked packed = { 0 };
  QpinCpuset set;

  qpin_cpuset_clear_all (&set);
  for (gsize i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      g_auto (QpinCpusetPacked) copy = { 0 };
      gint last;

      if (qpin_cpuset_has (&set, steps[i]))
        {
          qpin_cpuset_remove (&set, steps[i]);
          qpin_cpuset_packed_remove (&packed, steps[i]);
        }
      else
        {
          qpin_cpuset_add (&set, steps[i]);
          qpin_cpuset_packed_add (&packed, steps[i]);
        }
      last = qpin_cpuset_last (&set);
      g_assert_cmpuint (packed.n, ==, last < 0 ? 0 : (guint) last / 64 + 1);
      g_assert_true (qpin_cpuset_packed_equal (&packed, &set));
      g_assert_cmpint (qpin_cpuset_packed_first (&packed), ==, qpin_cpuset_first (&set));
      g_assert_cmpuint (qpin_cpuset_packed_count (&packed), ==, qpin_cpuset_count (&set));
      g_assert_cmpint (qpin_cpuset_packed_is_empty (&packed), ==, qpin_cpuset_is_empty (&set));
      g_assert_cmpint (qpin_cpuset_packed_has (&packed, steps[i]), ==,
                       qpin_cpuset_has (&set, steps[i]));
      g_assert_cmpint (qpin_cpuset_packed_intersects (&packed, &set), ==,
                       !qpin_cpuset_is_empty (&set));
      qpin_cpuset_packed_copy (&copy, &packed);
      qpin_cpuset_packed_add (&copy, 4000);
      g_assert_true (qpin_cpuset_packed_equal (&packed, &set));
    }
  g_assert_cmpuint (packed.n, ==, 0);
  qpin_cpuset_packed_clear (&packed);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cpuset/roundtrip", test_roundtrip);
  g_test_add_func ("/cpuset/errors", test_errors);
  g_test_add_func ("/cpuset/ops", test_ops);
  g_test_add_func ("/cpuset/packed", test_packed);
  g_test_add_func ("/cpuset/packed-in-place", test_packed_in_place);
  return g_test_run ();
}
