/* test-cli.c: `qpin topology` and `qpin plan` as a user runs them (QPIN_BIN) */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *
fixture (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "fixtures", name, NULL);
}

/* Runs qpin with @args (NULL-terminated); returns the exit status. */
static int
run (char **out, char **err, const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  const char *bin = g_getenv ("QPIN_BIN");
  int status = -1;
  va_list ap;

  g_assert_nonnull (bin);
  g_ptr_array_add (argv, (char *) bin);
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out,
                               err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
check_capture (const char *root)
{
  g_autofree char *dir = g_dir_make_tmp ("qpin-cli-XXXXXX", NULL);
  g_autofree char *sub = g_build_filename (dir, "capture", NULL);
  g_autofree char *out1 = NULL, *out2 = NULL, *err = NULL, *err2 = NULL;
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);

  if (root)
    g_assert_cmpint (
      run (&out1, &err, "topology", "--sysfs-root", root, "--capture", sub, "--json", NULL), ==, 0);
  else
    g_assert_cmpint (run (&out1, &err, "topology", "--capture", sub, "--json", NULL), ==, 0);
  g_assert_true (g_str_has_prefix (err, "captured "));
  g_assert_cmpint (run (&out2, &err2, "topology", "--sysfs-root", sub, "--json", NULL), ==, 0);
  g_assert_cmpstr (out1, ==, out2);
  g_assert_cmpstr (err2, ==, "");
  g_assert_cmpint (system (rm), ==, 0);
}

static void
test_topology (void)
{
  g_autofree char *root = fixture ("4n-unequal");
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o;

  g_assert_cmpint (run (&out, &err, "topology", "--sysfs-root", root, "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "online"), ==, "0-11");
  g_assert_cmpstr (json_object_get_string_member (o, "offline"), ==, "12-13");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "nodes")), ==, 4);
  check_capture (root);
  if (g_file_test ("/sys/devices/system/cpu/online", G_FILE_TEST_EXISTS))
    check_capture (NULL);
}

static void
test_plan_json (void)
{
  g_autofree char *root = fixture ("2s-8c-2t-2n");
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o, *vm, *score;
  JsonArray *vms, *threads;
  guint vcpus = 0;

  g_assert_cmpint (run (&out, &err, "plan", "--topology", root, "--vm", "web:4:threads=2", "--vm",
                        "db:6", "--json", "--score", NULL),
                   ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  vms = json_object_get_array_member (o, "vms");
  g_assert_cmpuint (json_array_get_length (vms), ==, 2);
  vm = json_array_get_object_element (vms, 0);
  g_assert_cmpstr (json_object_get_string_member (vm, "name"), ==, "web");
  g_assert_true (json_object_get_null_member (vm, "pid"));
  threads = json_object_get_array_member (vm, "threads");
  for (guint i = 0; i < json_array_get_length (threads); i++)
    {
      JsonObject *t = json_array_get_object_element (threads, i);
      const char *role = json_object_get_string_member (t, "role");
      g_assert_true (json_object_get_null_member (t, "tid"));
      g_assert_cmpint (json_object_get_int_member (t, "index"), >=, 0);
      g_assert_cmpstr (json_object_get_string_member (t, "cpus"), !=, "");
      vcpus += g_strcmp0 (role, "vcpu") == 0;
    }
  g_assert_cmpuint (vcpus, ==, 4);
  score = json_object_get_object_member (o, "score");
  g_assert_cmpint (json_object_get_int_member (score, "node_excess"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (score, "sibling_misses"), ==, 0);
}

static void
test_plan_errors (void)
{
  g_autofree char *one = fixture ("1n-4c8t");
  g_autofree char *nosmt = fixture ("lab-1n4c");
  g_autofree char *dir = g_dir_make_tmp ("qpin-cli-XXXXXX", NULL);
  g_autofree char *conf = g_build_filename (dir, "qpin.conf", NULL);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_autofree char *expected = NULL;

  {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (run (&out, &err, "plan", "--topology", one, "--vm", "a:9", NULL), ==, 1);
    g_assert_cmpstr (err, ==,
                     "qpin plan: vm 'a': needs 9 dedicated cpus, 8 free on the host (cpus 0-7)\n");
    g_assert_cmpstr (out, ==, "");
  }
  {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (
      run (&out, &err, "plan", "--topology", nosmt, "--vm", "a:2", "--policy", "smt=require", NULL),
      ==, 1);
    g_assert_cmpstr (err, ==,
                     "qpin plan: smt=require but the host has no SMT (one thread per core)\n");
  }
  {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_true (g_file_set_contents (conf, "[vm:a]\nemulator = elsewhere\n", -1, NULL));
    g_assert_cmpint (
      run (&out, &err, "plan", "--topology", one, "--vm", "a:2", "--config", conf, NULL), ==, 1);
    expected = g_strdup_printf ("qpin plan: %s: [vm:a] key 'emulator': invalid value 'elsewhere' "
                                "(accepted: share, isolate, housekeeping)\n",
                                conf);
    g_assert_cmpstr (err, ==, expected);
  }
  {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (run (&out, &err, "plan", "--topology", one, NULL), ==, 2);
    g_assert_cmpstr (err, ==, "qpin plan: give at least one --vm NAME:VCPUS\n");
  }
  g_assert_cmpint (system (rm), ==, 0);
}

/* The finding, through `qpin plan`: on a 2-CPU host with cpu 0 reserved,
 * dedicated a would take cpu 1, which shared b floats on: exit 1 with the
 * reason, nothing on stdout; and a cpumap that maps two of a VM's own
 * vCPUs to one CPU says "itself", not "another vm". */
static void
test_plan_exclusive (void)
{
  g_autofree char *two = fixture ("1n-2c");
  g_autofree char *dir = g_dir_make_tmp ("qpin-cli-XXXXXX", NULL);
  g_autofree char *conf = g_build_filename (dir, "two.conf", NULL);
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

  g_assert_true (g_file_set_contents (
    conf, "[defaults]\nreserved = 0\n[vm:a]\ncpus = dedicated\n[vm:b]\ncpus = shared\n", -1, NULL));
  g_assert_cmpint (run (&out, &err, "plan", "--config", conf, "--topology", two, "--vm", "a:1",
                        "--vm", "b:2", NULL),
                   ==, 1);
  g_assert_cmpstr (err, ==,
                   "qpin plan: vm 'a': needs 1 dedicated cpu, 1 free on the host (cpus 1), but 1 "
                   "must stay in the shared pool for vm 'b'\n");
  g_assert_cmpstr (out, ==, "");
  g_assert_cmpint (run (&out2, &err2, "plan", "--topology", two, "--vm", "a:2", "--policy",
                        "cpus=manual", "--policy", "cpumap=0=0,1=0", NULL),
                   ==, 1);
  g_assert_cmpstr (
    err2, ==, "qpin plan: vm 'a': cpumap puts vcpu 1 on cpu 0, which it holds itself (vcpu 0)\n");
  g_assert_cmpint (g_unlink (conf), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* `qpin plan --config @conf` on @topology (NULL: the 1n-4c8t fixture,
 * cpus 0-7) with @policy (nullable) as --policy, killed after 20 s so that a qpin that
 * blocks (on a FIFO) fails the test instead of hanging it: timeout(1)
 * exits 124 then.  Returns the exit status. */
static int
run_plan_config (const char *topology, const char *conf, const char *policy, char **out, char **err)
{
  g_autofree char *one = topology ? g_strdup (topology) : fixture ("1n-4c8t");
  const char *argv[]
    = { "timeout", "-k",  "1",        "20", g_getenv ("QPIN_BIN"),      "plan", "--topology", one,
        "--vm",    "a:2", "--config", conf, policy ? "--policy" : NULL, policy, NULL };
  g_autoptr (GError) error = NULL;
  int status = -1;

  g_assert_nonnull (argv[4]);
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out,
                               err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* Config files an attacker or a typo could abuse: each is refused at once
 * (exit 1) with one line naming the file and what is wrong with it. */
static void
test_config_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qpin-cli-XXXXXX", NULL);
  g_autofree char *fifo = g_build_filename (dir, "fifo.conf", NULL);
  g_autofree char *nul = g_build_filename (dir, "nul.conf", NULL);
  g_autofree char *big = g_build_filename (dir, "big.conf", NULL);
  g_autofree char *syntax = g_build_filename (dir, "syntax.conf", NULL);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  /* the NUL on line 3 used to end the file there: smt=require after it was never read */
  static const char nul_text[] = "[defaults]\nnuma = prefer\ncpus = shared\0\nsmt = maybe\n";
  const struct {
    const char *path;
    const char *tail; /* after "qpin plan: PATH" */
  } cases[] = {
    /* a FIFO used to block qpin forever, waiting for a writer */
    { fifo, ": not a regular file (a FIFO): refused\n" },
    /* /dev/zero used to be read until memory ran out, 5.8 s */
    { "/dev/zero", ": not a regular file (a character device): refused\n" },
    /* 4 MiB + 1: the bound is checked before reading */
    { big, ": 4194305 bytes, more than the 4194304 a config file may have\n" },
    { nul, ":3: a NUL byte: a config file is text\n" },
    /* a syntax error names the file and the line */
    { syntax, ":4: Key file contains line “this is not a key” which is not a "
              "key-value pair, group, or comment\n" },
  };

  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_assert_true (g_file_set_contents (nul, nul_text, sizeof nul_text - 1, NULL));
  g_assert_true (g_file_set_contents (big, "", 0, NULL));
  g_assert_cmpint (truncate (big, 4 * 1024 * 1024 + 1), ==, 0);
  g_assert_true (
    g_file_set_contents (syntax, "[defaults]\nnuma = prefer\n\nthis is not a key\n", -1, NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = NULL, *err = NULL;
      g_autofree char *expected = g_strdup_printf ("qpin plan: %s%s", cases[i].path, cases[i].tail);

      g_test_message ("%s", cases[i].path);
      g_assert_cmpint (run_plan_config (NULL, cases[i].path, NULL, &out, &err), ==, 1);
      g_assert_cmpstr (err, ==, expected);
      g_assert_cmpstr (out, ==, "");
    }
  g_assert_cmpint (system (rm), ==, 0);
}

/* reserved / cpuset CPUs the host cannot have (the fixture has no
 * cpu/possible file: its present cpus, 0-7) are refused, from the file or
 * --policy, naming the key, the value and the possible range; a possible
 * CPU that is not present (hotplug) is accepted. */
static void
test_config_beyond_host (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qpin-cli-XXXXXX", NULL);
  g_autofree char *conf = g_build_filename (dir, "qpin.conf", NULL);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

  g_assert_true (g_file_set_contents (conf,
                                      "[defaults]\nreserved = 0,8191\n\n"
                                      "[vm:a]\ncpuset = 4-9\n",
                                      -1, NULL));
  g_assert_cmpint (run_plan_config (NULL, conf, NULL, &out, &err), ==, 1);
  g_assert_cmpstr (err, ==,
                   "qpin plan: reserved=0,8191: cpu 8191 is beyond the host's possible cpus "
                   "(0-7)\n");
  g_assert_true (g_file_set_contents (conf, "[vm:a]\ncpuset = 4-9\n", -1, NULL));
  g_assert_cmpint (run_plan_config (NULL, conf, "reserved=1", &out2, &err2), ==, 1);
  g_assert_cmpstr (err2, ==,
                   "qpin plan: vm 'a': cpuset=4-9: cpus 8-9 are beyond the host's possible cpus "
                   "(0-7)\n");
  {
    g_autofree char *one = fixture ("1n-4c8t");
    g_autofree char *copy = g_build_filename (dir, "hotplug", NULL);
    g_autofree char *cp = g_strdup_printf ("cp -r '%s' '%s'", one, copy);
    g_autofree char *possible = g_build_filename (copy, "sys/devices/system/cpu/possible", NULL);
    g_autofree char *out3 = NULL, *err3 = NULL;

    g_assert_cmpint (system (cp), ==, 0);
    g_assert_true (g_file_set_contents (possible, "0-15\n", -1, NULL));
    g_assert_cmpint (run_plan_config (copy, conf, "reserved=1,12", &out3, &err3), ==, 0);
    g_assert_cmpstr (err3, ==, "");
  }
  g_assert_cmpint (system (rm), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/topology", test_topology);
  g_test_add_func ("/cli/plan-json", test_plan_json);
  g_test_add_func ("/cli/plan-errors", test_plan_errors);
  g_test_add_func ("/cli/plan-exclusive", test_plan_exclusive);
  g_test_add_func ("/cli/config-files", test_config_files);
  g_test_add_func ("/cli/config-beyond-host", test_config_beyond_host);
  return g_test_run ();
}
