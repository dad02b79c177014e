/* qpin-json.c: JsonBuilder members shared by plan, topology and status JSON */
#include "qpin-json.h"

/**
 * qpin_json_add_cpuset:
 *
 * Adds @name as a Linux cpulist string ("0-3,8"; "" when empty).
 */
void
qpin_json_add_cpuset (JsonBuilder *b, const char *name, const QpinCpuset *set)
{
  g_autofree char *text = qpin_cpuset_format (set);

  qpin_json_add_string (b, name, text);
}

/**
 * qpin_json_add_string:
 * @value: (nullable): %NULL is written as null
 */
void
qpin_json_add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

void
qpin_json_add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}
