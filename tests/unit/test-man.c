/* test-man.c: the man page, the README and the example config against the
 * code: every command of `qpin --help` (the table in qpin-main.c), every
 * long option of `qpin CMD --help`, every key of qpin_policy_keys() and
 * qpin_config_daemon_keys().
 * A name added to the code and not to the docs fails here, by name. */
#include <glib.h>
#include <string.h>
#include <sys/wait.h>

#include "qpin-policy.h"

static char *
source_file (const char *relative)
{
  g_autofree char *path = g_build_filename (g_getenv ("G_TEST_SRCDIR"), "..", relative, NULL);
  char *text = NULL;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* stdout of `qpin ARGS...` (QPIN_BIN), which must exit 0. */
static char *
qpin_output (const char *arg1, const char *arg2)
{
  const char *argv[] = { g_getenv ("QPIN_BIN"), arg1, arg2, NULL };
  g_autoptr (GError) error = NULL;
  char *out = NULL;
  int status = -1;

  g_assert_nonnull (argv[0]);
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                               &out, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  return out;
}

/* Roff without its escapes for the few this page uses: "\-" and fonts. */
static char *
roff_plain (const char *roff)
{
  g_autoptr (GString) s = g_string_new (roff);

  g_string_replace (s, "\\-", "-", 0);
  g_string_replace (s, "\\fB", "", 0);
  g_string_replace (s, "\\fI", "", 0);
  g_string_replace (s, "\\fR", "", 0);
  g_string_replace (s, "\\fP", "", 0);
  g_string_replace (s, "\\(em", "-", 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* The lines of @roff from "@macro @title" up to the next .SH (or .SS when
 * @macro is .SS); NULL when there is no such heading. */
static char *
roff_section (const char *roff, const char *macro, const char *title)
{
  g_auto (GStrv) lines = g_strsplit (roff, "\n", -1);
  g_autofree char *heading = g_strdup_printf ("%s %s", macro, title);
  g_autoptr (GString) out = NULL;

  for (guint i = 0; lines[i]; i++)
    {
      if (out == NULL)
        {
          if (g_str_equal (g_strchomp (lines[i]), heading))
            out = g_string_new (NULL);
          continue;
        }
      if (g_str_has_prefix (lines[i], ".SH ")
          || (g_str_equal (macro, ".SS") && g_str_has_prefix (lines[i], ".SS ")))
        break;
      g_string_append_printf (out, "%s\n", lines[i]);
    }
  return out ? g_string_free (g_steal_pointer (&out), FALSE) : NULL;
}

/* Every match of group 1 of @pattern in @text, in a set. */
static GHashTable *
matches (const char *text, const char *pattern)
{
  g_autoptr (GRegex) re = g_regex_new (pattern, G_REGEX_MULTILINE, 0, NULL);
  g_autoptr (GMatchInfo) m = NULL;
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_assert_nonnull (re);
  for (g_regex_match (re, text, 0, &m); g_match_info_matches (m); g_match_info_next (m, NULL))
    g_hash_table_add (set, g_match_info_fetch (m, 1));
  return set;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The names in @want that @have lacks, sorted, comma separated ("" if none). */
static char *
missing (GHashTable *want, GHashTable *have)
{
  g_autofree const char **names = (const char **) g_hash_table_get_keys_as_array (want, NULL);
  g_autoptr (GPtrArray) out = g_ptr_array_new ();

  for (guint i = 0; names[i]; i++)
    if (!g_hash_table_contains (have, names[i]))
      g_ptr_array_add (out, (gpointer) names[i]);
  g_ptr_array_sort (out, compare_names);
  g_ptr_array_add (out, NULL);
  return g_strjoinv (", ", (char **) out->pdata);
}

/* The commands of `qpin --help`, printed from the table in qpin-main.c. */
static GHashTable *
code_commands (void)
{
  g_autofree char *usage = qpin_output ("--help", NULL);
  GHashTable *set = matches (usage, "^  ([a-z][a-z-]*) ");

  g_assert_cmpuint (g_hash_table_size (set), >=, 9);
  return set;
}

/* The long options of `qpin CMD --help`, without --help itself. */
static GHashTable *
code_options (const char *command)
{
  g_autofree char *help = qpin_output (command, "--help");
  GHashTable *set = matches (help, "^\\s+(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)");

  g_assert_true (g_hash_table_remove (set, "help"));
  return set;
}

static GHashTable *
code_keys (void)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (const char *const *k = qpin_policy_keys (); *k; k++)
    g_hash_table_add (set, g_strdup (*k));
  for (const char *const *k = qpin_config_daemon_keys (); *k; k++)
    g_hash_table_add (set, g_strdup (*k));
  return set;
}

/* The keys of the man page's CONFIGURATION: the first word of each .TP tag. */
static GHashTable *
man_keys (const char *man)
{
  g_autofree char *section = roff_section (man, ".SH", "CONFIGURATION");

  g_assert_nonnull (section);
  return matches (section, "^\\.TP\\n\\.B[IR]? \"?([a-z_]+)");
}

/* What @man lacks of the code: "" when it documents every command, every
 * long option (in the command's own .SS) and every key. */
static char *
man_gaps (const char *man)
{
  g_autoptr (GHashTable) commands = code_commands ();
  g_autoptr (GHashTable) keys = code_keys ();
  g_autoptr (GHashTable) documented = man_keys (man);
  g_autofree const char **names = (const char **) g_hash_table_get_keys_as_array (commands, NULL);
  g_autofree char *plain = roff_plain (man);
  g_autofree char *keys_gap = missing (keys, documented);
  g_autoptr (GString) gaps = g_string_new (NULL);

  if (*keys_gap)
    g_string_append_printf (gaps, "keys: %s; ", keys_gap);
  for (guint i = 0; names[i]; i++)
    {
      g_autofree char *section = roff_section (plain, ".SS", names[i]);
      g_autoptr (GHashTable) options = code_options (names[i]);
      g_autoptr (GHashTable) mentioned = NULL;
      g_autofree char *gap = NULL;

      if (section == NULL)
        {
          g_string_append_printf (gaps, "command %s; ", names[i]);
          continue;
        }
      mentioned = matches (section, "--([a-z][a-z0-9-]*)");
      gap = missing (options, mentioned);
      if (*gap)
        g_string_append_printf (gaps, "%s options: %s; ", names[i], gap);
    }
  return g_string_free (g_steal_pointer (&gaps), FALSE);
}

/* The man page documents everything the code has. */
static void
test_man_complete (void)
{
  g_autofree char *man = source_file ("doc/qpin.1");
  g_autofree char *gaps = man_gaps (man);

  g_assert_cmpstr (gaps, ==, "");
}

/* ...and nothing the code does not have: every .SS of COMMANDS is a
 * command, every key of CONFIGURATION a key. */
static void
test_man_no_extra (void)
{
  g_autofree char *man = source_file ("doc/qpin.1");
  g_autofree char *commands_text = roff_section (man, ".SH", "COMMANDS");
  g_autoptr (GHashTable) sections = matches (commands_text, "^\\.SS ([a-z-]+)");
  g_autoptr (GHashTable) commands = code_commands ();
  g_autoptr (GHashTable) keys = man_keys (man);
  g_autoptr (GHashTable) code = code_keys ();
  g_autofree char *extra_commands = missing (sections, commands);
  g_autofree char *extra_keys = missing (keys, code);

  g_assert_cmpstr (extra_commands, ==, "");
  g_assert_cmpstr (extra_keys, ==, "");
}

/* The check can fail: a page without the cpuset key, or without an
 * option of run, is reported by name. */
static void
test_man_gap_detected (void)
{
  g_autofree char *man = source_file ("doc/qpin.1");
  g_autoptr (GString) no_key = g_string_new (man);
  g_autoptr (GString) no_option = g_string_new (man);
  g_autofree char *gaps_key = NULL, *gaps_option = NULL;

  g_assert_cmpuint (g_string_replace (no_key, ".TP\n.BI cpuset", ".TP\n.BI nothing", 0), ==, 1);
  gaps_key = man_gaps (no_key->str);
  g_assert_cmpstr (gaps_key, ==, "keys: cpuset; ");
  g_assert_cmpuint (g_string_replace (no_option, "\\-\\-report", "\\-\\-rapport", 0), >=, 1);
  gaps_option = man_gaps (no_option->str);
  g_assert_cmpstr (gaps_option, ==, "run options: report; ");
}

/* The text of @readme from the line @heading to the next "## " line. */
static char *
markdown_section (const char *readme, const char *heading)
{
  g_autofree char *start = g_strdup_printf ("\n%s\n", heading);
  const char *from = strstr (readme, start);
  const char *to;

  g_assert_nonnull (from);
  from += strlen (start);
  to = strstr (from, "\n## ");
  return g_strndup (from, to ? (gsize) (to - from) : strlen (from));
}

/* The README's configuration reference and data/qpin.conf.example list
 * every key, and only keys; the README's command table every command. */
static void
test_readme_and_example (void)
{
  g_autofree char *readme = source_file ("README.md");
  g_autofree char *example = source_file ("data/qpin.conf.example");
  g_autoptr (GHashTable) code = code_keys ();
  g_autoptr (GHashTable) readme_keys = matches (readme, "^\\| `([a-z_]+)` \\| ");
  g_autoptr (GHashTable) example_keys = matches (example, "^#([a-z_]+) =");
  g_autoptr (GHashTable) commands = code_commands ();
  g_autofree char *commands_text = markdown_section (readme, "## Commands");
  g_autoptr (GHashTable) readme_commands = matches (commands_text, "`qpin ([a-z-]+)");
  g_autofree char *readme_gap = missing (code, readme_keys);
  g_autofree char *readme_extra = missing (readme_keys, code);
  g_autofree char *example_gap = missing (code, example_keys);
  g_autofree char *example_extra = missing (example_keys, code);
  g_autofree char *command_gap = missing (commands, readme_commands);

  g_assert_cmpstr (readme_gap, ==, "");
  g_assert_cmpstr (readme_extra, ==, "");
  g_assert_cmpstr (example_gap, ==, "");
  g_assert_cmpstr (example_extra, ==, "");
  g_assert_cmpstr (command_gap, ==, "");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/man/complete", test_man_complete);
  g_test_add_func ("/man/no-extra", test_man_no_extra);
  g_test_add_func ("/man/gap-detected", test_man_gap_detected);
  g_test_add_func ("/man/readme-and-example", test_readme_and_example);
  return g_test_run ();
}
