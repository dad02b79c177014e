/* qpin-top.h: what `qpin top` watches and how it shows it
 *
 * Sources (the daemon, QMP sockets, pids) yield QpinTopVm lists; the
 * sampler (monitor/) measures their threads; one row builder feeds the
 * batch table, the live view and nothing else, and one writer builds the
 * JSON document.
 */
#pragma once

#include <gmodule.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "qpin-sampler.h"

G_BEGIN_DECLS

typedef struct {
  QpinThreadRole role;
  gint index;
  GPid tid;
  gboolean has_plan;
  QpinCpuset planned;
  gboolean drift; /* the daemon saw its affinity changed behind its back */
} QpinTopThread;

typedef struct {
  char *name;
  GPid pid;
  char *state;     /* the daemon's "pinned", "degraded", ...; NULL without one */
  GArray *threads; /* QpinTopThread */
} QpinTopVm;

void qpin_top_vm_free (QpinTopVm *vm);

typedef enum {
  QPIN_TOP_SOURCE_DAEMON,
  QPIN_TOP_SOURCE_SOCKETS,
  QPIN_TOP_SOURCE_PIDS,
} QpinTopSourceKind;

typedef struct {
  QpinTopSourceKind kind;
  const char *control;        /* DAEMON */
  const char *const *sockets; /* SOCKETS */
  const GArray *pids;         /* PIDS: GPid */
  guint timeout_ms;
} QpinTopSource;

GPtrArray *qpin_top_vms_from_status (JsonNode *reply, GError **error);
GPtrArray *qpin_top_source_read (const QpinTopSource *source, GPtrArray *problems, GError **error);
void qpin_top_sync (QpinSampler *sampler, GPtrArray *vms);
gboolean qpin_top_refresh (QpinSampler *sampler, const QpinTopSource *source, GHashTable *reported,
                           GPtrArray **vms, GPtrArray *problems, GError **error);

typedef enum {
  QPIN_TOP_SORT_CPU,
  QPIN_TOP_SORT_WAIT,
  QPIN_TOP_SORT_MIGRATIONS,
  QPIN_TOP_SORT_SWITCHES,
  QPIN_TOP_SORT_NAME,
  QPIN_TOP_N_SORTS,
} QpinTopSort;

const char *qpin_top_sort_name (QpinTopSort sort);

typedef struct {
  gboolean vm_row; /* a VM's summary line (the only one when collapsed) */
  GPid pid;
  char *text; /* the formatted line */
} QpinTopRow;

void qpin_top_row_free (QpinTopRow *row);
char *qpin_top_header (QpinSampler *sampler, GPtrArray *vms, const QpinTopSource *source);
char *qpin_top_column_titles (gboolean pmu);
GPtrArray *qpin_top_rows (QpinSampler *sampler, GPtrArray *vms, QpinTopSort sort,
                          GHashTable *collapsed, gboolean pmu);
JsonNode *qpin_top_to_json (QpinSampler *sampler, GPtrArray *vms);

/* in the module qpin-top-view.so */
typedef gboolean (*QpinTopViewRun) (QpinSampler *sampler, const QpinTopSource *source,
                                    guint interval_ms, gint64 iterations, GError **error);
G_MODULE_EXPORT gboolean qpin_top_view_run (QpinSampler *sampler, const QpinTopSource *source,
                                            guint interval_ms, gint64 iterations, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTopVm, qpin_top_vm_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QpinTopRow, qpin_top_row_free)

G_END_DECLS
