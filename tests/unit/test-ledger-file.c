/* test-ledger-file.c: the daemon's ledger file, written and read back;
 * a damaged file is an error naming what is wrong, never a guess */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "qpin-ledger-file.h"

static char *
write_tmp (const char *text)
{
  g_autoptr (GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("qpin-ledger-XXXXXX", &path, &error);

  g_assert_no_error (error);
  close (fd);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* What is written is read back as it was, and owner() finds each CPU. */
static void
test_round_trip (void)
{
  g_autoptr (QpinLedgerFile) ledger = qpin_ledger_file_new ();
  g_autoptr (QpinLedgerFile) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL, *path = NULL;
  QpinCpuset a, b;

  g_assert_true (qpin_cpuset_parse ("0,2", &a, NULL));
  g_assert_true (qpin_cpuset_parse ("", &b, NULL));
  qpin_ledger_file_add (ledger, 4242, 77, "a", &a);
  qpin_ledger_file_add (ledger, 4343, 78, "b", &b);
  data = qpin_ledger_file_to_data (ledger);
  g_assert_cmpstr (data, ==,
                   "{\"version\":1,\"vms\":[{\"pid\":4242,\"start\":77,\"key\":\"a\",\"cpus\":"
                   "\"0,2\"},{\"pid\":4343,\"start\":78,\"key\":\"b\",\"cpus\":\"\"}]}");
  path = write_tmp (data);
  back = qpin_ledger_file_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->entries->len, ==, 2);
  g_assert_cmpint (qpin_ledger_file_owner (back, 2)->pid, ==, 4242);
  g_assert_cmpuint (qpin_ledger_file_owner (back, 2)->start_time, ==, 77);
  g_assert_cmpstr (qpin_ledger_file_owner (back, 0)->key, ==, "a");
  g_assert_null (qpin_ledger_file_owner (back, 1));
  g_unlink (path);
}

/* No file: an empty ledger (a first start), not an error. */
static void
test_missing (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinLedgerFile) ledger
    = qpin_ledger_file_load ("/nonexistent/qpin/ledger.json", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (ledger->entries->len, ==, 0);
}

#define ENTRY(n)                                                                                   \
  "element " #n                                                                                    \
  " of \"vms\" is not {\"pid\": N, \"start\": N, \"key\": \"...\", \"cpus\": \"CPULIST\"}"

/* Each damage is refused with the exact reason. */
static void
test_damaged (void)
{
  static const struct {
    const char *text, *reason;
  } cases[] = {
    { "{\"version\": 1, \"vms\": [", NULL },
    { "[]", "not a version 1 ledger file" },
    /* written by a qpin before the version member: not read */
    { "{\"vms\": []}", "not a version 1 ledger file" },
    { "{\"version\": 2, \"vms\": []}", "not a version 1 ledger file" },
    { "{\"version\": \"1\", \"vms\": []}", "not a version 1 ledger file" },
    { "{\"version\": 1, \"vms\": {}}", "expected {\"vms\": [...]}" },
    { "{\"version\": 1, \"vms\": [{\"pid\": 0, \"start\": 1, \"key\": \"a\", \"cpus\": \"0\"}]}",
      ENTRY (0) },
    { "{\"version\": 1, \"vms\": [{\"pid\": 1, \"start\": 1, \"key\": \"a\", \"cpus\": \"0\"}, "
      "{\"pid\": \"2\", \"start\": 1, \"key\": \"b\", \"cpus\": \"1\"}]}",
      ENTRY (1) },
    { "{\"version\": 1, \"vms\": [{\"pid\": 1, \"start\": 1, \"key\": \"a\", \"cpus\": \"0-x\"}]}",
      ENTRY (0) },
    { "{\"version\": 1, \"vms\": [{\"pid\": 99999999999, \"start\": 1, \"key\": \"a\", "
      "\"cpus\": \"0\"}]}",
      ENTRY (0) },
    /* no start time: the pid alone could name another process by now */
    { "{\"version\": 1, \"vms\": [{\"pid\": 1, \"key\": \"a\", \"cpus\": \"0\"}]}", ENTRY (0) },
    { "{\"version\": 1, \"vms\": [{\"pid\": 1, \"start\": -3, \"key\": \"a\", \"cpus\": \"0\"}]}",
      ENTRY (0) },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = write_tmp (cases[i].text);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinLedgerFile) ledger = qpin_ledger_file_load (path, &error);

      g_assert_null (ledger);
      g_assert_nonnull (error);
      g_assert_true (g_str_has_prefix (error->message, path));
      if (cases[i].reason)
        {
          g_autofree char *want = g_strconcat (": ", cases[i].reason, NULL);
          g_assert_cmpstr (error->message + strlen (path), ==, want);
        }
      g_unlink (path);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ledger-file/round-trip", test_round_trip);
  g_test_add_func ("/ledger-file/missing", test_missing);
  g_test_add_func ("/ledger-file/damaged", test_damaged);
  return g_test_run ();
}
