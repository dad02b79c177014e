/* qpin-qmp-error.h: the error domain of the QMP client */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QPIN_QMP_ERROR (qpin_qmp_error_quark ())
GQuark qpin_qmp_error_quark (void);

/* Transport and protocol failures first, then QEMU's own error classes
 * (qapi/error.json ErrorClass), so a QMP error reply keeps its class as
 * the code and its desc as the message. */
typedef enum {
  QPIN_QMP_ERROR_CLOSED,        /* EOF or reset; every pending command fails with it */
  QPIN_QMP_ERROR_TIMEOUT,       /* no greeting or no reply in time */
  QPIN_QMP_ERROR_FRAMING,       /* a message over the size limit */
  QPIN_QMP_ERROR_PROTOCOL,      /* not JSON, not an object, not QMP, wrong types */
  QPIN_QMP_ERROR_GENERIC_ERROR, /* "GenericError" and any class we do not know */
  QPIN_QMP_ERROR_COMMAND_NOT_FOUND,
  QPIN_QMP_ERROR_DEVICE_NOT_ACTIVE,
  QPIN_QMP_ERROR_DEVICE_NOT_FOUND,
  QPIN_QMP_ERROR_KVM_MISSING_CAP,
} QpinQmpError;

QpinQmpError qpin_qmp_error_from_class (const char *klass);
const char *qpin_qmp_error_class_name (QpinQmpError code);

G_END_DECLS
