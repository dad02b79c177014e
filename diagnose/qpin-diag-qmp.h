/* qpin-diag-qmp.h: diagnose's questions to QEMU (query-kvm, qom-get of CPU features) */
#pragma once

#include "qpin-diag.h"
#include "qpin-qmp-client.h"

G_BEGIN_DECLS

void qpin_diag_vm_query (QpinDiagVm *vm, QpinQmpClient *client, const char *root, guint timeout_ms);

gboolean qpin_diag_vm_query_threads (QpinDiagVm *vm, QpinQmpClient *client, guint timeout_ms,
                                     GError **error);

G_END_DECLS
