/* qpin-readback.h: sched and memory policy as the kernel has them
 *
 * What `qpin run --report` states about a VM is read back from the
 * kernel, never copied from the policy that asked for it: under a daemon
 * the daemon's configuration decides, and a request can be refused.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

char *qpin_readback_sched (GPid tid, GError **error);

typedef struct {
  char *policies; /* distinct policies of the mappings, sorted, space separated */
  char *nodes;    /* node list of the nodes that hold pages; "" when none */
} QpinMemoryState;

gboolean qpin_readback_parse_numa_maps (const char *text, QpinMemoryState *out, GError **error);
gboolean qpin_readback_memory (GPid pid, QpinMemoryState *out, GError **error);
void qpin_memory_state_clear (QpinMemoryState *state);
void qpin_readback_add_to_vm (JsonObject *vm, GPid pid);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (QpinMemoryState, qpin_memory_state_clear)

G_END_DECLS
