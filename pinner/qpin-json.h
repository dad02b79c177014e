/* qpin-json.h: JsonBuilder members in the shapes every qpin JSON uses */
#pragma once

#include <json-glib/json-glib.h>

#include "qpin-cpuset.h"
#include "qpin-request.h"

G_BEGIN_DECLS

/* The shared shape of inspect, plan, status, attach --json and run's
 * report: {"vms":[{"name","pid",...,"threads":[{"role","index","tid",...}]}]}
 * (doc/design.md §3).  These write its skeleton; each command adds its
 * own members to the objects they open, and closes them. */
void qpin_json_begin_vms (JsonBuilder *b);
void qpin_json_begin_vm (JsonBuilder *b, const char *name, GPid pid);
void qpin_json_begin_threads (JsonBuilder *b);
void qpin_json_begin_thread (JsonBuilder *b, QpinThreadRole role, gint index, GPid tid);
JsonObject *qpin_json_find_vm (JsonNode *root, GPid pid);

void qpin_json_add_cpuset (JsonBuilder *b, const char *name, const QpinCpuset *set);
void qpin_json_add_string (JsonBuilder *b, const char *name, const char *value);
void qpin_json_add_int (JsonBuilder *b, const char *name, gint64 value);

G_END_DECLS
