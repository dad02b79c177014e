/* qpin-json.h: JsonBuilder members in the shapes every qpin JSON uses */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-cpuset.h"

G_BEGIN_DECLS

void qpin_json_add_cpuset (JsonBuilder *b, const char *name, const QpinCpuset *set);
void qpin_json_add_string (JsonBuilder *b, const char *name, const char *value);
void qpin_json_add_int (JsonBuilder *b, const char *name, gint64 value);

G_END_DECLS
