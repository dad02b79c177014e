/* qpin-peer.h: which process instance is behind a QMP monitor, and its owner
 *
 * A VM is a process, not a monitor: two monitors of one QEMU are one VM,
 * and a pid that the kernel has given to another process is not the old
 * VM.  A QpinPeer pins down one process instance: its pid and its start
 * time (/proc/PID/stat field 22, read while a pidfd held the process, so
 * that both belong to one instance), plus the ids it runs as, for the
 * daemon's allow list.
 */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

#include "qpin-policy.h"
#include "qpin-qmp-client.h"

G_BEGIN_DECLS

typedef struct {
  GPid pid;
  guint64 start_time; /* clock ticks after boot */
  uid_t uid, euid;    /* real and effective, from /proc/PID/status */
  gid_t gid, egid;    /* real and effective */
  GArray *groups;     /* guint32, the supplementary groups */
  uid_t socket_uid;   /* SO_PEERCRED's uid; (uid_t) -1 when not from a socket */
} QpinPeer;

QpinPeer *qpin_peer_new_from_socket (GSocket *socket, GError **error);
QpinPeer *qpin_peer_new_for_pid (GPid pid, GError **error);
QpinPeer *qpin_peer_new_for_client (QpinQmpClient *client, GPid pid, GError **error);
void qpin_peer_free (QpinPeer *peer);
gboolean qpin_peer_is_current (const QpinPeer *peer, GError **error);
gboolean qpin_peer_same_process (const QpinPeer *a, const QpinPeer *b);
gboolean qpin_peer_is_allowed (const QpinPeer *peer, const GArray *uids, const GArray *gids);
gboolean qpin_peer_check_owner (const QpinPeer *peer, const QpinConfig *config, GError **error);
gboolean qpin_peer_has_key_form (const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinPeer, qpin_peer_free)

G_END_DECLS
