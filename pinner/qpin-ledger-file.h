/* qpin-ledger-file.h: which VM held which CPUs, kept on disk for a restart
 *
 * The kernel's affinities alone cannot tell, after a restart, whose CPU a
 * shared one was: a degraded VM's vCPU floats on the CPU another VM holds,
 * one CPU each for both.  The daemon writes the dedicated CPUs each VM
 * holds whenever they change, and reads them back when it starts.
 */
#pragma once

#include <glib.h>

#include "qpin-cpuset.h"

G_BEGIN_DECLS

/* beside the daemon's control socket */
#define QPIN_LEDGER_FILE_NAME "ledger.json"
/* a file with another "version" (or none) is not read */
#define QPIN_LEDGER_FILE_VERSION 1

typedef struct {
  GPid pid;
  guint64 start_time; /* /proc/PID/stat field 22: the process instance, 0 if unknown */
  char *key;
  QpinCpuset cpus;   /* held by its vCPUs, each on a CPU of its own */
  gboolean degraded; /* some vCPU floated beside the others */
} QpinLedgerEntry;

typedef struct {
  GPtrArray *entries; /* QpinLedgerEntry */
} QpinLedgerFile;

QpinLedgerFile *qpin_ledger_file_new (void);
void qpin_ledger_file_free (QpinLedgerFile *ledger);
void qpin_ledger_file_add (QpinLedgerFile *ledger, GPid pid, guint64 start_time, const char *key,
                           const QpinCpuset *cpus);
char *qpin_ledger_file_to_data (const QpinLedgerFile *ledger);
QpinLedgerFile *qpin_ledger_file_load (const char *path, GError **error);
const QpinLedgerEntry *qpin_ledger_file_owner (const QpinLedgerFile *ledger, guint cpu);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinLedgerFile, qpin_ledger_file_free)

G_END_DECLS
