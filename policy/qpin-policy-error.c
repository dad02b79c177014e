/* qpin-policy-error.c: the error domain of policy/ */
#include "qpin-policy-error.h"

/**
 * qpin_policy_error_quark:
 *
 * Returns: the quark of %QPIN_POLICY_ERROR, "qpin-policy-error-quark".
 */
GQuark
qpin_policy_error_quark (void)
{
  return g_quark_from_static_string ("qpin-policy-error-quark");
}
