/* test-config.c: policy configuration, every bad input gives its exact message */
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "qpin-policy.h"
#include "qpin-request.h"

static void
test_merge (void)
{
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;
  const char *text = "[vm:db]\nsmt = isolate\nemulator = isolate\n\n"
                     "[defaults]\nnuma = strict\nreserved = 0-1\nsched = fifo:10\n\n"
                     "[vm:web]\ncpus = shared\n";
  g_autoptr (QpinPolicy) d = NULL;
  g_autoptr (QpinPolicy) db = NULL;
  g_autoptr (QpinPolicy) web = NULL;
  g_autofree char *r = NULL, *sched = NULL, *smt = NULL, *cpus = NULL, *numa = NULL;

  g_assert_true (qpin_config_load_data (config, text, "qpin.conf", &error));
  g_assert_no_error (error);
  g_assert_true (qpin_config_add_override (config, "numa=prefer", &error));
  d = qpin_config_policy_for (config, NULL, NULL);
  db = qpin_config_policy_for (config, "db", NULL);
  web = qpin_config_policy_for (config, "web", NULL);
  r = qpin_policy_get (db, "reserved");
  g_assert_cmpstr (r, ==, "0-1");
  sched = qpin_policy_get (web, "sched");
  g_assert_cmpstr (sched, ==, "fifo:10");
  smt = qpin_policy_get (db, "smt");
  g_assert_cmpstr (smt, ==, "isolate");
  g_assert_cmpint (web->smt, ==, QPIN_SMT_PREFER);
  cpus = qpin_policy_get (web, "cpus");
  g_assert_cmpstr (cpus, ==, "shared");
  g_assert_cmpint (db->emulator, ==, QPIN_AUX_ISOLATE);
  numa = qpin_policy_get (d, "numa");
  g_assert_cmpstr (numa, ==, "prefer"); /* the override wins over [defaults] */
  g_assert_cmpint (db->numa, ==, QPIN_NUMA_PREFER);
}

static void
test_defaults (void)
{
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (QpinPolicy) p = qpin_config_policy_for (config, "any", NULL);
  const char *const *keys = qpin_policy_keys ();
  const char *expected[] = { "dedicated", "prefer", "prefer", "share", "share", "",    "refuse",
                             "none",      "other",  "",       "",      "leave", "fast" };

  g_assert_cmpuint (g_strv_length ((char **) keys), ==, G_N_ELEMENTS (expected));
  for (guint i = 0; keys[i]; i++)
    {
      g_autofree char *v = qpin_policy_get (p, keys[i]);
      g_assert_cmpstr (v, ==, expected[i]);
    }
}

/* every key a config sets reaches the merged policy: the loader keeps each
 * value as parsed, so merging cannot fail (it once re-parsed the text and
 * g_assert()ed that it worked); a key it forgot to copy keeps its default */
static void
test_every_key_applies (void)
{
  const char *const *keys = qpin_policy_keys ();
  const char *values[]
    = { "shared",  "strict",  "isolate", "housekeeping", "isolate", "0-1",      "share",
        "migrate", "fifo:10", "0=4-5",   "2-3",          "avoid",   "efficient" };

  g_assert_cmpuint (g_strv_length ((char **) keys), ==, G_N_ELEMENTS (values));
  for (guint i = 0; keys[i]; i++)
    {
      g_autoptr (QpinConfig) config = qpin_config_new ();
      /* reserved and irqs are host-wide: only in [defaults] */
      const char *group
        = strcmp (keys[i], "reserved") == 0 || strcmp (keys[i], "irqs") == 0 ? "defaults" : "vm:a";
      g_autofree char *text = g_strdup_printf ("[%s]\n%s = %s\n", group, keys[i], values[i]);
      g_autoptr (QpinPolicy) p = NULL;
      g_autofree char *got = NULL;
      g_autoptr (GError) error = NULL;

      g_assert_true (qpin_config_load_data (config, text, "qpin.conf", &error));
      g_assert_no_error (error);
      p = qpin_config_policy_for (config, "a", NULL);
      got = qpin_policy_get (p, keys[i]);
      g_assert_cmpstr (got, ==, values[i]);
    }
}

/* the error domain's quark reads as its name (clang-format once turned
 * G_DEFINE_QUARK's argument into "qpin - policy - error - quark") */
static void
test_error_quark (void)
{
  g_assert_cmpstr (g_quark_to_string (QPIN_POLICY_ERROR), ==, "qpin-policy-error-quark");
}

static void
test_bad_file (void)
{
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "[defaults]\nsmt = maybe\n", "qpin.conf: [defaults] key 'smt': invalid value 'maybe' "
                                   "(accepted: prefer, isolate, require)" },
    { "[vm:web]\ncpus = all\n",
      "qpin.conf: [vm:web] key 'cpus': invalid value 'all' (accepted: dedicated, shared, manual)" },
    { "[vm:web]\nnuma = near\n",
      "qpin.conf: [vm:web] key 'numa': invalid value 'near' (accepted: strict, prefer, spread)" },
    { "[defaults]\nemulator = pinned\n", "qpin.conf: [defaults] key 'emulator': invalid value "
                                         "'pinned' (accepted: share, isolate, housekeeping)" },
    { "[defaults]\niothreads = 1\n", "qpin.conf: [defaults] key 'iothreads': invalid value '1' "
                                     "(accepted: share, isolate, housekeeping)" },
    { "[defaults]\novercommit = yes\n",
      "qpin.conf: [defaults] key 'overcommit': invalid value 'yes' (accepted: refuse, share)" },
    { "[defaults]\nmemory = bind\n",
      "qpin.conf: [defaults] key 'memory': invalid value 'bind' (accepted: none, migrate)" },
    { "[defaults]\nsched = fifo:100\n",
      "qpin.conf: [defaults] key 'sched': invalid value 'fifo:100' (accepted: other, fifo:PRIO, "
      "rr:PRIO with PRIO from 1 to 99)" },
    { "[defaults]\nsched = deadline:5\n",
      "qpin.conf: [defaults] key 'sched': invalid value 'deadline:5' (accepted: other, fifo:PRIO, "
      "rr:PRIO with PRIO from 1 to 99)" },
    { "[defaults]\nreserved = 0-x\n", "qpin.conf: [defaults] key 'reserved': invalid cpulist "
                                      "'0-x': expected a CPU number at offset 2" },
    { "[defaults]\nreserved = 3-1\n",
      "qpin.conf: [defaults] key 'reserved': invalid cpulist '3-1': range 3-1 is reversed" },
    { "[vm:web]\nreserved = 0\n",
      "qpin.conf: [vm:web] key 'reserved': host-wide, only accepted in [defaults]" },
    { "[vm:web]\nirqs = avoid\n",
      "qpin.conf: [vm:web] key 'irqs': host-wide, only accepted in [defaults]" },
    { "[defaults]\nirqs = never\n",
      "qpin.conf: [defaults] key 'irqs': invalid value 'never' (accepted: leave, avoid)" },
    { "[vm:web]\nkind = big\n",
      "qpin.conf: [vm:web] key 'kind': invalid value 'big' (accepted: fast, efficient, any)" },
    { "[defaults]\ncolour = blue\n",
      "qpin.conf: [defaults] unknown key 'colour' (accepted: cpus, numa, smt, emulator, iothreads, "
      "reserved, overcommit, memory, sched, cpumap, cpuset, irqs, kind)" },
    { "[global]\ncpus = shared\n",
      "qpin.conf: unknown group [global] (accepted: [defaults], [vm:NAME], [daemon])" },
    { "[vm:]\ncpus = shared\n", "qpin.conf: group [vm:] has no VM name (accepted: [vm:NAME])" },
    { "[daemon]\nallow = 5\n",
      "qpin.conf: [daemon] unknown key 'allow' (accepted: allow_users, allow_groups)" },
    { "[daemon]\nallow_users = 0, qpin-no-such-user\n",
      "qpin.conf: [daemon] key 'allow_users': unknown user 'qpin-no-such-user' (accepted: user "
      "names or numbers, separated by commas)" },
    { "[daemon]\nallow_groups = qpin-no-such-group\n[defaults]\ncpus = shared\n",
      "qpin.conf: [daemon] key 'allow_groups': unknown group 'qpin-no-such-group' (accepted: group "
      "names or numbers, separated by commas)" },
    { "[vm:m]\ncpumap = 0=4,x\n",
      "qpin.conf: [vm:m] key 'cpumap': invalid value '0=4,x' (accepted: VCPU=CPULIST items such as "
      "'0=4,1=5-6' or '0=4-5,7;1=6')" },
    { "[vm:m]\ncpumap = 0=4,0=5\n",
      "qpin.conf: [vm:m] key 'cpumap': invalid value '0=4,0=5': vcpu 0 is mapped twice" },
    { "[vm:web]\ncpuset = 2-\n", "qpin.conf: [vm:web] key 'cpuset': invalid cpulist '2-': "
                                 "expected a CPU number at offset 2" },
    { "cpus = shared\n", "qpin.conf:1: Key file does not start with a group" },
    /* a syntax error names the line, counting blank lines and comments */
    { "[defaults]\nnuma = prefer\n\n# note\nthis is not a key\n[vm:a]\ncpus = shared\n",
      "qpin.conf:5: Key file contains line “this is not a key” which is not a key-value pair, "
      "group, or comment" },
    { "[defaults]\nnuma = prefer\n[vm:a\n", "qpin.conf:3: Key file contains line “[vm:a” which "
                                            "is not a key-value pair, group, or comment" },
    /* the last line, without its newline */
    { "[defaults]\nnuma = prefer\nbroken", "qpin.conf:3: Key file contains line “broken” which "
                                           "is not a key-value pair, group, or comment" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (QpinConfig) config = qpin_config_new ();
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinPolicy) p = NULL;

      g_assert_false (qpin_config_load_data (config, cases[i].text, "qpin.conf", &error));
      g_assert_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      /* nothing kept */
      p = qpin_config_policy_for (config, "web", NULL);
      g_assert_cmpint (p->cpus, ==, QPIN_CPUS_DEDICATED);
    }
}

/* [daemon] allow_users and allow_groups take names and numbers; root's
 * name resolves to 0 on every system. */
static void
test_daemon_allow (void)
{
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;
  const GArray *uids, *gids;

  g_assert_true (qpin_config_load_data (
    config, "[daemon]\nallow_users = root, 1001\nallow_groups = 100,root\n", "qpin.conf", &error));
  g_assert_no_error (error);
  qpin_config_get_allowed (config, &uids, &gids);
  g_assert_cmpuint (uids->len, ==, 2);
  g_assert_cmpuint (g_array_index (uids, guint32, 0), ==, 0);
  g_assert_cmpuint (g_array_index (uids, guint32, 1), ==, 1001);
  g_assert_cmpuint (gids->len, ==, 2);
  g_assert_cmpuint (g_array_index (gids, guint32, 0), ==, 100);
  g_assert_cmpuint (g_array_index (gids, guint32, 1), ==, 0);
}

static void
test_bad_override (void)
{
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "smt", "--policy 'smt': expected KEY=VALUE" },
    { "=isolate", "--policy '=isolate': expected KEY=VALUE" },
    { "smt=", "--policy 'smt=': key 'smt': invalid value '' (accepted: prefer, isolate, require)" },
    { "cpu=shared",
      "--policy 'cpu=shared': unknown key 'cpu' (accepted: cpus, numa, smt, "
      "emulator, iothreads, reserved, overcommit, memory, sched, cpumap, cpuset, irqs, kind)" },
    { "sched=rr:0", "--policy 'sched=rr:0': key 'sched': invalid value 'rr:0' (accepted: other, "
                    "fifo:PRIO, rr:PRIO with PRIO from 1 to 99)" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (QpinConfig) config = qpin_config_new ();
      g_autoptr (GError) error = NULL;

      g_assert_false (qpin_config_add_override (config, cases[i].text, &error));
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

static void
test_vm_shapes (void)
{
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "web", "--vm 'web': expected NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I]" },
    { "web:0",
      "--vm 'web:0': expected NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I]" },
    { ":4", "--vm ':4': expected NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I]" },
    { "web:4:dies=2", "--vm 'web:4:dies=2': invalid item 'dies=2' (expected "
                      "NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I])" },
    { "web:4:threads=x", "--vm 'web:4:threads=x': invalid item 'threads=x' (expected "
                         "NAME:VCPUS[:sockets=S,cores=C,threads=T,nodes=N,iothreads=I])" },
  };
  g_autofree char *name = NULL;
  QpinGuestShape shape;
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinRequest) r = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autofree char *n = NULL;
      g_assert_false (qpin_guest_shape_parse (cases[i].text, &n, &shape, &e));
      g_assert_cmpstr (e->message, ==, cases[i].message);
    }
  g_assert_true (qpin_guest_shape_parse ("web:6:threads=2,sockets=1", &name, &shape, &error));
  g_clear_pointer (&name, g_free);
  g_assert_true (qpin_guest_shape_parse ("web:6:threads=4", &name, &shape, NULL));
  r = qpin_request_new_from_shape (name, &shape, &error);
  g_assert_null (r);
  g_assert_cmpstr (error->message, ==,
                   "vm 'web': 6 vcpus do not match sockets=1, cores=1, threads=4 (4)");
  g_clear_error (&error);
  shape = (QpinGuestShape){ .vcpus = 8, .sockets = 2, .cores = 2, .threads = 2, .nodes = 2 };
  r = qpin_request_new_from_shape ("n", &shape, &error);
  g_assert_no_error (error);
  /* vCPU 5: thread 1 of core 0 of socket 1, guest node 1 */
  {
    const QpinThreadSpec *s = &g_array_index (r->threads, QpinThreadSpec, 5);
    g_assert_cmpint (s->topo.thread, ==, 1);
    g_assert_cmpint (s->topo.core, ==, 0);
    g_assert_cmpint (s->topo.socket, ==, 1);
    g_assert_cmpint (s->topo.node, ==, 1);
  }
  g_assert_cmpuint (qpin_request_n_vcpus (r), ==, 8);
  g_assert_cmpuint (r->threads->len, ==, 9);
}

/* Settings apply in the order they were loaded, whichever VM they name:
 * a second file's [defaults] overrides the first file's [vm:a]. */
static void
test_load_order (void)
{
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPolicy) a = NULL;
  g_autoptr (QpinPolicy) b = NULL;

  g_assert_true (
    qpin_config_load_data (config, "[vm:a]\nsmt = isolate\nnuma = strict\n", "1.conf", &error));
  g_assert_true (qpin_config_load_data (
    config, "[defaults]\nsmt = require\n[vm:b]\ncpus = shared\n", "2.conf", &error));
  g_assert_no_error (error);
  a = qpin_config_policy_for (config, "a", NULL);
  b = qpin_config_policy_for (config, "b", NULL);
  g_assert_cmpint (a->smt, ==, QPIN_SMT_REQUIRE);
  g_assert_cmpint (a->numa, ==, QPIN_NUMA_STRICT);
  g_assert_cmpint (a->cpus, ==, QPIN_CPUS_DEDICATED);
  g_assert_cmpint (b->smt, ==, QPIN_SMT_REQUIRE);
  g_assert_cmpint (b->cpus, ==, QPIN_CPUS_SHARED);
}

static char *
load_file_error (const char *path)
{
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;

  g_assert_false (qpin_config_load_file (config, path, &error));
  g_assert_nonnull (error);
  return g_strdup (error->message);
}

/* qpin_config_load_file() reads regular files only, and never blocks: a
 * FIFO is refused at once (run in a subprocess with a timeout, so that
 * the old blocking open fails the test instead of hanging it). */
static void
load_file_checks (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qpin-config-XXXXXX", NULL);
  g_autofree char *good = g_build_filename (dir, "good.conf", NULL);
  g_autofree char *link = g_build_filename (dir, "link.conf", NULL);
  g_autofree char *fifo = g_build_filename (dir, "fifo.conf", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.conf", NULL);
  g_autofree char *msg = NULL, *expected = NULL;
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinPolicy) p = NULL;

  g_assert_true (g_file_set_contents (good, "[vm:a]\ncpus = shared\n", -1, NULL));
  g_assert_cmpint (symlink (good, link), ==, 0);
  /* a symlink to a regular file is fine: /etc often holds links */
  g_assert_true (qpin_config_load_file (config, link, &error));
  g_assert_no_error (error);
  p = qpin_config_policy_for (config, "a", NULL);
  g_assert_cmpint (p->cpus, ==, QPIN_CPUS_SHARED);

  msg = load_file_error (missing);
  expected = g_strdup_printf ("%s: cannot open: No such file or directory", missing);
  g_assert_cmpstr (msg, ==, expected);
  g_clear_pointer (&msg, g_free);
  g_clear_pointer (&expected, g_free);
  msg = load_file_error (dir);
  expected = g_strdup_printf ("%s: not a regular file (a directory): refused", dir);
  g_assert_cmpstr (msg, ==, expected);

  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_setenv ("QPIN_TEST_FIFO", fifo, TRUE);
  g_test_trap_subprocess (NULL, 10 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("%s: not a regular file (a FIFO): refused\n", fifo);
  g_test_trap_assert_stdout (expected);
  g_unsetenv ("QPIN_TEST_FIFO");
  g_assert_cmpint (g_unlink (fifo), ==, 0);
  g_assert_cmpint (g_unlink (link), ==, 0);
  g_assert_cmpint (g_unlink (good), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
test_load_file (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *m = load_file_error (g_getenv ("QPIN_TEST_FIFO"));
      g_print ("%s\n", m);
      return;
    }
  load_file_checks ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/merge", test_merge);
  g_test_add_func ("/config/defaults", test_defaults);
  g_test_add_func ("/config/error-quark", test_error_quark);
  g_test_add_func ("/config/every-key-applies", test_every_key_applies);
  g_test_add_func ("/config/bad-file", test_bad_file);
  g_test_add_func ("/config/daemon-allow", test_daemon_allow);
  g_test_add_func ("/config/bad-override", test_bad_override);
  g_test_add_func ("/config/vm-shapes", test_vm_shapes);
  g_test_add_func ("/config/load-order", test_load_order);
  g_test_add_func ("/config/load-file", test_load_file);
  return g_test_run ();
}
