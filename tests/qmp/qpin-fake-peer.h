/* qpin-fake-peer.h: a scripted QMP server for protocol edge cases
 *
 * Listens on a unix socket in a fresh temporary directory, accepts one
 * client, and plays a script, one step per line:
 *
 *   handshake          greeting, expect qmp_capabilities, reply {}
 *   greet              send a QEMU 7.2 greeting
 *   expect CMD         read one command; it must be CMD (its id is kept)
 *   send JSON          send JSON + "\r\n"; "$ID" becomes the last id
 *   sendraw TEXT       send TEXT with C escapes (\n, \r) and $ID, no line end added
 *   dribble JSON       send JSON + "\r\n" one byte at a time
 *   flood N            send N bytes of 'x' without a newline
 *   sleep MS           pause
 *   stall              read until the client hangs up, answering nothing
 *   reset              after 100 ms, close without reading what the client
 *                      sent: the client sees ECONNRESET
 *
 * The script ends by closing the connection.  qpin_fake_peer_finish()
 * fails when a step did not run as written (an unexpected command, the
 * client gone before an expect): no exchange goes unused or unexpected.
 */
#pragma once

#include <glib.h>

typedef struct _QpinFakePeer QpinFakePeer;

QpinFakePeer *qpin_fake_peer_new (const char *script);
QpinFakePeer *qpin_fake_peer_new_at (const char *path, const char *script);
const char *qpin_fake_peer_get_path (QpinFakePeer *peer);
gboolean qpin_fake_peer_finish (QpinFakePeer *peer, GError **error);
void qpin_fake_peer_free (QpinFakePeer *peer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinFakePeer, qpin_fake_peer_free)
