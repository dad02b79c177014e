/* qpin-module.c: find and load qpin's modules (see qpin-module.h) */

#include "qpin-module.h"
#include "qpin-proc.h"

/* Where @name would be: beside the executable, then in QPIN_MODULE_DIR. */
static char *
module_path (const char *name)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *file = g_strconcat (name, ".so", NULL);

  if (exe)
    {
      g_autofree char *dir = g_path_get_dirname (exe);
      g_autofree char *beside = g_build_filename (dir, file, NULL);
      if (g_file_test (beside, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&beside);
    }
  return g_build_filename (QPIN_MODULE_DIR, file, NULL);
}

/**
 * qpin_module_symbol:
 * @module: "qpin-http", "qpin-top-view"
 *
 * Loads @module once (it stays loaded) and looks up @symbol in it.
 *
 * Returns: the symbol; %NULL with @error naming the file and why
 */
gpointer
qpin_module_symbol (const char *module, const char *symbol, GError **error)
{
  g_autofree char *path = module_path (module);
  GModule *m = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  gpointer sym = NULL;

  if (m == NULL)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "cannot load %s: %s", path,
                   g_module_error ());
      return NULL;
    }
  g_module_make_resident (m);
  if (!g_module_symbol (m, symbol, &sym) || sym == NULL)
    {
      g_set_error (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_FAILED, "%s has no %s: %s", path,
                   symbol, g_module_error ());
      return NULL;
    }
  return sym;
}
