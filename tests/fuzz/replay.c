/* replay.c: run a fuzz target over files, so the corpus is a normal test
 * in every build (libFuzzer builds have their own main) */
#include <stdio.h>

#include "qpin-fuzz.h"

int
main (int argc, char **argv)
{
  guint n = 0;

  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GDir) dir = g_dir_open (argv[i], 0, NULL);
      const char *name;

      while (dir && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (argv[i], name, NULL);
          g_autofree char *data = NULL;
          gsize len;

          if (!g_file_get_contents (path, &data, &len, NULL))
            continue;
          LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
          n++;
        }
    }
  printf ("1..1\nok 1 replayed %u inputs\n", n);
  return n > 0 ? 0 : 1;
}
