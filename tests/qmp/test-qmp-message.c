/* test-qmp-message.c: classification of QMP messages and typed replies */
#include <string.h>

#include "qpin-qmp-error.h"
#include "qpin-qmp-message.h"
#include "qpin-qmp-types.h"

static void
test_kinds (void)
{
  g_autoptr (QpinQmpMessage) greeting = NULL, ret = NULL, err = NULL, ev = NULL, noid = NULL;

  greeting = qpin_qmp_message_parse (
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"\"}, \"capabilities\": [\"oob\"]}}",
    -1, NULL);
  g_assert_nonnull (greeting);
  g_assert_cmpint (greeting->kind, ==, QPIN_QMP_MESSAGE_GREETING);
  g_assert_true (json_object_has_member (greeting->greeting, "capabilities"));

  ret = qpin_qmp_message_parse ("{\"return\": [1, 2], \"id\": 7, \"future\": true}", -1, NULL);
  g_assert_nonnull (ret);
  g_assert_cmpint (ret->kind, ==, QPIN_QMP_MESSAGE_RETURN);
  g_assert_true (ret->has_id && ret->id_valid);
  g_assert_cmpint (ret->id, ==, 7);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (ret->ret));

  err = qpin_qmp_message_parse ("{\"id\": 3, \"error\": {\"class\": \"CommandNotFound\", "
                                "\"desc\": \"The command nope has not been found\"}}",
                                -1, NULL);
  g_assert_nonnull (err);
  g_assert_cmpint (err->kind, ==, QPIN_QMP_MESSAGE_ERROR);
  {
    g_autoptr (GError) e = qpin_qmp_message_to_error (err);
    g_assert_error (e, QPIN_QMP_ERROR, QPIN_QMP_ERROR_COMMAND_NOT_FOUND);
    g_assert_cmpstr (e->message, ==, "The command nope has not been found");
    g_assert_cmpstr (qpin_qmp_error_class_name ((QpinQmpError) e->code), ==, "CommandNotFound");
  }

  /* QEMU answers a JSON parse error without the id */
  noid = qpin_qmp_message_parse ("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse "
                                 "error, expecting value\"}}",
                                 -1, NULL);
  g_assert_nonnull (noid);
  g_assert_false (noid->has_id);
  g_assert_cmpint (qpin_qmp_error_from_class ("SomethingNew"), ==, QPIN_QMP_ERROR_GENERIC_ERROR);
  g_assert_null (qpin_qmp_error_class_name (QPIN_QMP_ERROR_TIMEOUT));

  ev = qpin_qmp_message_parse ("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                               "\"event\": \"RESUME\"}",
                               -1, NULL);
  g_assert_nonnull (ev);
  g_assert_cmpint (ev->kind, ==, QPIN_QMP_MESSAGE_EVENT);
  g_assert_cmpstr (ev->event, ==, "RESUME");
  g_assert_null (ev->data);
}

static void
test_foreign_id (void)
{
  g_autoptr (QpinQmpMessage) msg
    = qpin_qmp_message_parse ("{\"return\": {}, \"id\": \"x\"}", -1, NULL);
  g_assert_nonnull (msg);
  g_assert_true (msg->has_id);
  g_assert_false (msg->id_valid);
}

static void
test_bad (void)
{
  static const struct {
    const char *in;
    const char *message;
  } cases[] = {
    { "[1, 2]", "message is not a JSON object" },
    { "42", "message is not a JSON object" },
    { "{\"foo\": 1}", "message is neither a return, an error, an event nor a greeting" },
    { "{\"error\": \"bad\"}", "\"error\" is not an object" },
    { "{\"error\": {\"class\": 1, \"desc\": \"d\"}}",
      "\"error\" lacks a string \"class\" or \"desc\"" },
    { "{\"event\": 5}", "\"event\" is not a string" },
    { "{\"event\": \"X\", \"data\": []}", "event \"data\" is not an object" },
    { "{\"QMP\": 1}", "\"QMP\" greeting is not an object" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinQmpMessage) msg = qpin_qmp_message_parse (cases[i].in, -1, &error);

      g_assert_null (msg);
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

static void
test_not_json (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpMessage) msg = qpin_qmp_message_parse ("hello world", -1, &error);

  g_assert_null (msg);
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
  g_assert_true (g_str_has_prefix (error->message, "not JSON: "));
}

static void
test_deep_nesting (void)
{
  g_autoptr (GString) deep = g_string_new ("{\"return\": ");
  g_autoptr (GError) error = NULL;
  g_autoptr (QpinQmpMessage) msg = NULL;
  g_autoptr (QpinQmpMessage) ok = NULL;

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  msg = qpin_qmp_message_parse (deep->str, -1, &error);
  g_assert_null (msg);
  g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "message nests deeper than 64 levels");

  /* brackets inside strings do not count */
  ok = qpin_qmp_message_parse ("{\"return\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                               "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\"}",
                               -1, NULL);
  g_assert_nonnull (ok);
}

/* A line of ~200 kB whose 200,000 '[' hide from a guard that does not
 * lex as json-glib does (json-glib 1.6 takes single-quoted strings and C
 * comments): json-glib recursed once per '[' and overflowed the stack.
 * Each is refused, saying where the text stops being strict JSON. */
static void
test_hidden_nesting (void)
{
  static const struct {
    const char *head;
    const char *message;
  } cases[] = {
    { "{\"return\": ['\"', ", "not JSON: unexpected character ''' at offset 12" },
    { "{\"return\": /*\"*/", "not JSON: unexpected character '/' at offset 11" },
    { "/*\"*/", "not JSON: unexpected character '/' at offset 0" },
    /* an escaped backslash ends the string: the '[' after it count */
    { "{\"return\": [\"\\\\\", ", "message nests deeper than 64 levels" },
    /* an escaped quote does not: the string never ends (15 + 200,000) */
    { "{\"return\": [\"\\\"", "not JSON: unexpected end at offset 200015" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) line = g_string_new (cases[i].head);
      g_autoptr (GError) error = NULL;
      g_autoptr (QpinQmpMessage) msg = NULL;

      for (guint n = 0; n < 200000; n++)
        g_string_append_c (line, '[');
      msg = qpin_qmp_message_parse (line->str, (gssize) line->len, &error);
      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, error ? error->message : "accepted");
      g_assert_null (msg);
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

/* query-cpus-fast as QEMU 7.2 prints it, plus a field from QEMU 10.1
 * ("qom-type") and an unknown prop, both ignored */
static const char *cpus_fast_reply
  = "{\"return\": [{\"thread-id\": 101, \"props\": {\"core-id\": 0, \"thread-id\": 0, "
    "\"node-id\": 0, \"socket-id\": 0, \"module-id\": 9}, \"qom-path\": "
    "\"/machine/unattached/device[0]\", "
    "\"cpu-index\": 0, \"target\": \"x86_64\", \"qom-type\": \"qemu64-x86_64-cpu\"}, "
    "{\"thread-id\": 102, \"props\": {\"core-id\": 0, \"thread-id\": 1, \"socket-id\": 0}, "
    "\"qom-path\": \"/machine/peripheral/cpu1\", \"cpu-index\": 1, \"target\": \"x86_64\"}], "
    "\"id\": 4}";

static void
test_cpus_fast (void)
{
  g_autoptr (QpinQmpMessage) msg = qpin_qmp_message_parse (cpus_fast_reply, -1, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cpus = qpin_qmp_parse_cpus_fast (msg->ret, &error);
  QpinQmpCpu *c0, *c1;

  g_assert_no_error (error);
  g_assert_cmpuint (cpus->len, ==, 2);
  c0 = g_ptr_array_index (cpus, 0);
  c1 = g_ptr_array_index (cpus, 1);
  g_assert_cmpint (c0->thread_id, ==, 101);
  g_assert_cmpint (c0->topo.node, ==, 0);
  g_assert_cmpint (c0->topo.die, ==, -1);
  g_assert_cmpstr (c0->target, ==, "x86_64");
  g_assert_cmpint (c1->cpu_index, ==, 1);
  g_assert_cmpint (c1->topo.thread, ==, 1);
  g_assert_cmpint (c1->topo.node, ==, -1);
  g_assert_cmpstr (c1->qom_path, ==, "/machine/peripheral/cpu1");
  g_assert_false (qpin_qmp_cpus_share_thread (cpus));
}

static void
test_cpus_fast_single_thread (void)
{
  g_autoptr (JsonNode) node
    = json_from_string ("[{\"thread-id\": 55, \"qom-path\": \"/a\", \"cpu-index\": 0}, "
                        "{\"thread-id\": 55, \"qom-path\": \"/b\", \"cpu-index\": 1}]",
                        NULL);
  g_autoptr (GPtrArray) cpus = qpin_qmp_parse_cpus_fast (node, NULL);

  g_assert_nonnull (cpus);
  g_assert_true (qpin_qmp_cpus_share_thread (cpus));
}

static void
test_cpus_fast_bad (void)
{
  static const struct {
    const char *in;
    const char *message;
  } cases[] = {
    { "{}", "query-cpus-fast: reply is not an array" },
    { "[1]", "query-cpus-fast[0]: not an object" },
    { "[{\"qom-path\": \"/a\", \"cpu-index\": 0}]",
      "query-cpus-fast[0]: \"thread-id\" is missing" },
    { "[{\"thread-id\": \"12\", \"qom-path\": \"/a\", \"cpu-index\": 0}]",
      "query-cpus-fast[0]: \"thread-id\" is not an integer" },
    { "[{\"thread-id\": 0, \"qom-path\": \"/a\", \"cpu-index\": 0}]",
      "query-cpus-fast[0]: \"thread-id\" 0 is out of range" },
    { "[{\"thread-id\": 99999999999, \"qom-path\": \"/a\", \"cpu-index\": 0}]",
      "query-cpus-fast[0]: \"thread-id\" 99999999999 is out of range" },
    { "[{\"thread-id\": 5, \"qom-path\": \"/a\", \"cpu-index\": -1}]",
      "query-cpus-fast[0]: \"cpu-index\" -1 is out of range" },
    { "[{\"thread-id\": 5, \"cpu-index\": 0}]",
      "query-cpus-fast[0]: \"qom-path\" is missing or not a string" },
    { "[{\"thread-id\": 5, \"qom-path\": \"/a\", \"cpu-index\": 0, \"props\": 3}]",
      "query-cpus-fast[0]: \"props\" is not an object" },
    { "[{\"thread-id\": 5, \"qom-path\": \"/a\", \"cpu-index\": 0, \"props\": {\"core-id\": 1.5}}]",
      "query-cpus-fast[0]: \"core-id\" is not an integer" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (JsonNode) node = json_from_string (cases[i].in, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) cpus = qpin_qmp_parse_cpus_fast (node, &error);

      g_assert_null (cpus);
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

static void
test_iothreads_name_status (void)
{
  g_autoptr (JsonNode) io = json_from_string (
    "[{\"poll-shrink\": 0, \"thread-id\": 77, \"poll-grow\": 0, \"poll-max-ns\": 32768, "
    "\"id\": \"io0\", \"aio-max-batch\": 0}]",
    NULL);
  g_autoptr (JsonNode) bad_io = json_from_string ("[{\"id\": 3, \"thread-id\": 1}]", NULL);
  g_autoptr (JsonNode) name = json_from_string ("{\"name\": \"vm1\"}", NULL);
  g_autoptr (JsonNode) noname = json_from_string ("{}", NULL);
  g_autoptr (JsonNode) status = json_from_string (
    "{\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}", NULL);
  g_autoptr (JsonNode) bad_status = json_from_string ("{\"status\": \"running\"}", NULL);
  g_autoptr (GPtrArray) iothreads = qpin_qmp_parse_iothreads (io, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *vm = NULL, *none = NULL, *state = NULL, *state2 = NULL;
  gboolean running = TRUE;

  g_assert_nonnull (iothreads);
  g_assert_cmpuint (iothreads->len, ==, 1);
  g_assert_cmpstr (((QpinQmpIothread *) g_ptr_array_index (iothreads, 0))->id, ==, "io0");
  g_assert_null (qpin_qmp_parse_iothreads (bad_io, &error));
  g_assert_cmpstr (error->message, ==, "query-iothreads[0]: \"id\" is missing or not a string");
  g_clear_error (&error);

  g_assert_true (qpin_qmp_parse_name (name, &vm, NULL));
  g_assert_cmpstr (vm, ==, "vm1");
  g_assert_true (qpin_qmp_parse_name (noname, &none, NULL));
  g_assert_null (none);

  g_assert_true (qpin_qmp_parse_status (status, &state, &running, NULL));
  g_assert_cmpstr (state, ==, "prelaunch");
  g_assert_false (running);
  g_assert_false (qpin_qmp_parse_status (bad_status, &state2, &running, &error));
  g_assert_cmpstr (error->message, ==, "query-status[0]: \"running\" is missing or not a boolean");
  g_assert_null (state2);
}

static void
test_hotpluggable (void)
{
  g_autoptr (JsonNode) node = json_from_string (
    "[{\"props\": {\"core-id\": 1, \"thread-id\": 0, \"socket-id\": 0}, \"vcpus-count\": 1, "
    "\"type\": \"qemu64-x86_64-cpu\"}, {\"props\": {\"core-id\": 0, \"thread-id\": 0, "
    "\"socket-id\": 0}, \"vcpus-count\": 1, \"qom-path\": \"/machine/unattached/device[0]\", "
    "\"type\": \"qemu64-x86_64-cpu\"}]",
    NULL);
  g_autoptr (GPtrArray) slots = qpin_qmp_parse_hotpluggable_cpus (node, NULL);
  QpinQmpHotpluggableCpu *free_slot;

  g_assert_nonnull (slots);
  g_assert_cmpuint (slots->len, ==, 2);
  free_slot = g_ptr_array_index (slots, 0);
  g_assert_null (free_slot->qom_path);
  g_assert_cmpint (free_slot->topo.core, ==, 1);
  g_assert_cmpstr (free_slot->type, ==, "qemu64-x86_64-cpu");
  g_assert_nonnull (((QpinQmpHotpluggableCpu *) g_ptr_array_index (slots, 1))->qom_path);
}

/* A reply of N copies of ELEMENT, as an array */
static JsonNode *
repeated (const char *element, guint n)
{
  g_autoptr (GString) s = g_string_new ("[");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "", element);
  g_string_append (s, "]");
  return json_from_string (s->str, NULL);
}

/* No QEMU machine takes more than 4,096 vCPUs (q35 since QEMU 9.0), nor
 * more hotpluggable slots; iothreads are bounded the same: exactly the
 * bound parses, one more is refused before any element is read (the one
 * above the bound has a wrong type, and it is not what is reported) */
static void
test_count_bounds (void)
{
  static const struct {
    const char *element;
    const char *bad;
    GPtrArray *(*parse) (JsonNode *ret, GError **error);
    const char *message;
  } cases[] = {
    { "{\"cpu-index\": 0, \"thread-id\": 1, \"qom-path\": \"/a\"}", "{}", qpin_qmp_parse_cpus_fast,
      "query-cpus-fast: 4097 vCPUs exceed the limit of 4096" },
    { "{\"type\": \"t\", \"vcpus-count\": 1}", "{}", qpin_qmp_parse_hotpluggable_cpus,
      "query-hotpluggable-cpus: 4097 CPU slots exceed the limit of 4096" },
    { "{\"id\": \"io\", \"thread-id\": 1}", "{}", qpin_qmp_parse_iothreads,
      "query-iothreads: 4097 iothreads exceed the limit of 4096" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (JsonNode) at = repeated (cases[i].element, 4096);
      g_autoptr (JsonNode) over = repeated (cases[i].element, 4096);
      g_autoptr (GPtrArray) ok = cases[i].parse (at, NULL);
      g_autoptr (GPtrArray) none = NULL;
      g_autoptr (GError) error = NULL;

      g_assert_nonnull (ok);
      g_assert_cmpuint (ok->len, ==, 4096);
      json_array_add_element (json_node_get_array (over), json_from_string (cases[i].bad, NULL));
      none = cases[i].parse (over, &error);
      g_assert_null (none);
      g_assert_error (error, QPIN_QMP_ERROR, QPIN_QMP_ERROR_PROTOCOL);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

/* A slot claiming more vCPUs than any machine has is a lie */
static void
test_slot_vcpus_count (void)
{
  g_autoptr (JsonNode) node = json_from_string ("[{\"type\": \"t\", \"vcpus-count\": 4097}]", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) slots = qpin_qmp_parse_hotpluggable_cpus (node, &error);

  g_assert_null (slots);
  g_assert_cmpstr (error->message, ==,
                   "query-hotpluggable-cpus[0]: \"vcpus-count\" 4097 is out of range");
}

/* the error domain's quark reads as its name, not "qpin - qmp - error - quark" */
static void
test_error_quark (void)
{
  g_assert_cmpstr (g_quark_to_string (QPIN_QMP_ERROR), ==, "qpin-qmp-error-quark");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/qmp/message/kinds", test_kinds);
  g_test_add_func ("/qmp/message/foreign-id", test_foreign_id);
  g_test_add_func ("/qmp/message/bad", test_bad);
  g_test_add_func ("/qmp/message/not-json", test_not_json);
  g_test_add_func ("/qmp/message/deep-nesting", test_deep_nesting);
  g_test_add_func ("/qmp/message/hidden-nesting", test_hidden_nesting);
  g_test_add_func ("/qmp/types/cpus-fast", test_cpus_fast);
  g_test_add_func ("/qmp/types/cpus-fast-single-thread", test_cpus_fast_single_thread);
  g_test_add_func ("/qmp/types/cpus-fast-bad", test_cpus_fast_bad);
  g_test_add_func ("/qmp/types/iothreads-name-status", test_iothreads_name_status);
  g_test_add_func ("/qmp/types/hotpluggable", test_hotpluggable);
  g_test_add_func ("/qmp/types/count-bounds", test_count_bounds);
  g_test_add_func ("/qmp/types/slot-vcpus-count", test_slot_vcpus_count);
  g_test_add_func ("/qmp/message/error-quark", test_error_quark);
  return g_test_run ();
}
