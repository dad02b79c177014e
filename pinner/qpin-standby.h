/* qpin-standby.h: monitors the registry holds but does not manage
 *
 * A second monitor of a QEMU already managed is kept as a standby: if
 * the first closes while the QEMU runs on, the standby takes over.  A
 * refused monitor (owner not allowed, process gone) is held open too, so
 * the daemon does not reconnect and refuse it again every second; each
 * is dropped when its peer hangs up.
 */
#pragma once

#include "qpin-peer.h"
#include "qpin-qmp-client.h"

G_BEGIN_DECLS

typedef struct _QpinStandby QpinStandby;

QpinStandby *qpin_standby_new (void);
void qpin_standby_free (QpinStandby *standby);
void qpin_standby_hold (QpinStandby *standby, QpinQmpClient *client, QpinPeer *peer);
QpinQmpClient *qpin_standby_take (QpinStandby *standby, const QpinPeer *peer);
void qpin_standby_drop_refused (QpinStandby *standby);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinStandby, qpin_standby_free)

G_END_DECLS
