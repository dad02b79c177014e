/* qpin-fuzz.h: shared set-up of the fuzz targets */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* GLib criticals and warnings must abort, or libFuzzer saves no
 * reproducer for them. */
static inline void
qpin_fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_ERROR);
  g_log_set_writer_func (g_log_writer_default, NULL, NULL);
  g_setenv ("G_DEBUG", "fatal-warnings", TRUE);
}
