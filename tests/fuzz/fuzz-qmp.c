/* fuzz-qmp.c: the bytes a hostile QMP peer controls: framing, JSON
 * classification and every typed reply parser */
#include <stdint.h>

#include "qpin-fuzz.h"
#include "qpin-qmp-framer.h"
#include "qpin-qmp-json.h"
#include "qpin-qmp-message.h"
#include "qpin-qmp-types.h"

static void
parse_reply (JsonNode *ret)
{
  g_autoptr (GPtrArray) cpus = qpin_qmp_parse_cpus_fast (ret, NULL);
  g_autoptr (GPtrArray) io = qpin_qmp_parse_iothreads (ret, NULL);
  g_autoptr (GPtrArray) slots = qpin_qmp_parse_hotpluggable_cpus (ret, NULL);
  g_autofree char *name = NULL, *status = NULL;
  gboolean running;

  if (cpus)
    qpin_qmp_cpus_share_thread (cpus);
  g_assert_true (io == NULL || io->len <= json_array_get_length (json_node_get_array (ret)));
  g_assert_true (slots == NULL || slots->len <= json_array_get_length (json_node_get_array (ret)));
  qpin_qmp_parse_name (ret, &name, NULL);
  qpin_qmp_parse_status (ret, &status, &running, NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* the client's own bound: hostile lines of 200,000 '[' must reach the
   * parser (scripts/check runs this target once with -max_len=1000000) */
  g_autoptr (QpinQmpFramer) framer = qpin_qmp_framer_new (QPIN_QMP_FRAMER_DEFAULT_MAX);
  gsize half = size / 2;

  qpin_fuzz_init ();
  /* two feeds, so a message can straddle reads */
  for (guint part = 0; part < 2; part++)
    {
      const char *line;
      gsize len;

      if (!qpin_qmp_framer_feed (framer, (const char *) data + (part ? half : 0),
                                 part ? size - half : half, NULL))
        break;
      while (qpin_qmp_framer_next (framer, &line, &len, NULL) && line != NULL)
        {
          gboolean strict = qpin_qmp_json_check (line, len, NULL);
          g_autoptr (GError) error = NULL;
          g_autoptr (QpinQmpMessage) msg = qpin_qmp_message_parse (line, (gssize) len, &error);

          /* what passes the strict check, json-glib parses: were the two
           * lexers to disagree, the depth counted could be wrong too */
          if (strict && msg == NULL && g_str_has_prefix (error->message, "not JSON"))
            g_error ("json-glib refused strict JSON: %s", error->message);
          if (msg && msg->kind == QPIN_QMP_MESSAGE_RETURN)
            parse_reply (msg->ret);
          if (msg && msg->kind == QPIN_QMP_MESSAGE_ERROR)
            g_error_free (qpin_qmp_message_to_error (msg));
        }
    }
  return 0;
}
