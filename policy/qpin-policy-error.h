/* qpin-policy-error.h: the error domain of policy/ (cpusets, topology,
 * policies and config, the placer) */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QPIN_POLICY_ERROR (qpin_policy_error_quark ())
GQuark qpin_policy_error_quark (void);

typedef enum {
  QPIN_POLICY_ERROR_PARSE,    /* malformed text: cpulist, config value */
  QPIN_POLICY_ERROR_RANGE,    /* a number outside what is accepted */
  QPIN_POLICY_ERROR_CONFLICT, /* contradictory settings */
  QPIN_POLICY_ERROR_NO_FIT,   /* the request cannot be placed */
  QPIN_POLICY_ERROR_INTERNAL, /* the placer caught its own bug: nothing changed */
} QpinPolicyError;

G_END_DECLS
