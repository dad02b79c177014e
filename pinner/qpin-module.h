/* qpin-module.h: the parts of qpin that are loaded only when used
 *
 * libsoup (for `qpin daemon --metrics`) and ncursesw (for the live view of
 * `qpin top`) bring a dozen libraries each.  Linked into qpin, every
 * daemon mapped and relocated them, used or not (1.6 MB of its idle RSS);
 * as modules they are loaded by the process that needs them.  A module is
 * looked for beside the qpin executable (the build tree), then in
 * QPIN_MODULE_DIR (LIBDIR/qpin), never on a path from the environment.
 */
#pragma once

#include <gmodule.h>

G_BEGIN_DECLS

gpointer qpin_module_symbol (const char *module, const char *symbol, GError **error);

G_END_DECLS
