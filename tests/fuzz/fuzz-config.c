/* fuzz-config.c: config files (GKeyFile text) as an administrator, a typo
 * or an attacker writes them */
#include <stdint.h>
#include <string.h>

#include "qpin-fuzz.h"
#include "qpin-policy.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr (QpinConfig) config = qpin_config_new ();
  g_autoptr (GError) error = NULL;

  qpin_fuzz_init ();
  if (qpin_config_load_data (config, text, "fuzz.conf", &error))
    {
      g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (config, NULL, NULL);
      g_autoptr (QpinPolicy) vm = qpin_config_policy_for (config, "a", NULL);
      g_assert_nonnull (defaults);
      g_assert_nonnull (vm);
    }
  else
    /* every error names the file */
    g_assert_true (g_str_has_prefix (error->message, "fuzz.conf"));
  return 0;
}
