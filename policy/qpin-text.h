/* qpin-text.h: text from outside (VM names, QMP strings) made safe to print */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *qpin_text_escape (const char *text);

G_END_DECLS
