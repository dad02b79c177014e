/* qpin-diag-private.h: snapshots and readers shared by the diagnose files */
#pragma once

#include "qpin-diag.h"

G_BEGIN_DECLS

typedef struct {
  gint64 pid, tid;
  char *comm;
  gint last_cpu;      /* stat field 39, -1 unknown */
  guint64 run_ns;     /* schedstat field 1 */
  guint64 wait_ns;    /* schedstat field 2: runnable, not running */
  gboolean schedstat; /* schedstat was readable */
  guint64 ticks;      /* stat utime + stime */
  QpinCpuset allowed; /* status Cpus_allowed_list */
} QpinDiagTask;

typedef struct {
  char *name;     /* "24", "LOC", ... */
  char *desc;     /* the rest of the line */
  GArray *counts; /* guint64 per CPU, indexed by CPU number */
} QpinDiagIrq;

typedef struct {
  GHashTable *tasks; /* tid (gint64 *) -> QpinDiagTask */
  GHashTable *irqs;  /* name -> QpinDiagIrq */
  gboolean has_interrupts;
} QpinDiagSnap;

struct _QpinDiag {
  char *root;
  char *after_root; /* the second snapshot's root */
  const QpinTopology *topo;
  double seconds;
  GPtrArray *vms; /* QpinDiagVm */
  QpinDiagSnap before, after;
  gint64 before_us, after_us; /* when each live sample was taken (monotonic) */
  QpinCpuset dedicated;       /* every VM's */
};

char *qpin_diag_read (const char *root, const char *rel, GError **error);
char *qpin_diag_read_trimmed (const char *root, const char *rel);
void qpin_diag_snap_read (QpinDiagSnap *snap, const char *root);
void qpin_diag_snap_clear (QpinDiagSnap *snap);
const QpinDiagTask *qpin_diag_task (const QpinDiagSnap *snap, gint64 tid);
gboolean qpin_diag_task_delta (const QpinDiag *diag, gint64 tid, guint64 *run_ns, guint64 *wait_ns);
const QpinDiagVm *qpin_diag_vm_of_tid (const QpinDiag *diag, gint64 tid,
                                       const QpinDiagThread **thread);

void qpin_diag_check_host (QpinDiag *diag, QpinFindings *out);
void qpin_diag_check_irqs (QpinDiag *diag, QpinFindings *out);
void qpin_diag_check_vms (QpinDiag *diag, QpinFindings *out);

G_END_DECLS
