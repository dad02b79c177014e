/* qpin-cpuset.h: a set of host CPUs, with Linux cpulist syntax
 *
 * A value type: copy it with '=', compare it with qpin_cpuset_equal().
 * No allocation, no failure outside parsing.
 */
#pragma once

#include <glib.h>

#include "qpin-policy-error.h"

G_BEGIN_DECLS

#define QPIN_CPUSET_MAX 8192
#define QPIN_CPUSET_WORDS (QPIN_CPUSET_MAX / 64)

typedef struct {
  guint64 w[QPIN_CPUSET_WORDS];
} QpinCpuset;

void qpin_cpuset_clear_all (QpinCpuset *set);
void qpin_cpuset_add (QpinCpuset *set, guint cpu);
void qpin_cpuset_add_range (QpinCpuset *set, guint first, guint last);
void qpin_cpuset_remove (QpinCpuset *set, guint cpu);
gboolean qpin_cpuset_has (const QpinCpuset *set, guint cpu);
guint qpin_cpuset_count (const QpinCpuset *set);
gboolean qpin_cpuset_is_empty (const QpinCpuset *set);
gboolean qpin_cpuset_equal (const QpinCpuset *a, const QpinCpuset *b);
gboolean qpin_cpuset_intersects (const QpinCpuset *a, const QpinCpuset *b);
gboolean qpin_cpuset_is_subset (const QpinCpuset *sub, const QpinCpuset *super);
void qpin_cpuset_or (QpinCpuset *dst, const QpinCpuset *src);
void qpin_cpuset_and (QpinCpuset *dst, const QpinCpuset *src);
void qpin_cpuset_andnot (QpinCpuset *dst, const QpinCpuset *src);
gint qpin_cpuset_first (const QpinCpuset *set);
gint qpin_cpuset_next (const QpinCpuset *set, gint after);
gint qpin_cpuset_last (const QpinCpuset *set);

/* Iterate: for (gint c = qpin_cpuset_first (s); c >= 0; c = qpin_cpuset_next (s, c)) */
#define QPIN_CPUSET_FOREACH(cpu, set)                                                              \
  for (gint cpu = qpin_cpuset_first (set); cpu >= 0; cpu = qpin_cpuset_next (set, cpu))

/* QpinCpusetPacked: a set stored in the words it needs, for sets kept per
 * thread or per VM, where a whole QpinCpuset (1 KiB) would be most of the
 * memory.  Up to 64 CPUs it allocates nothing.  Zero-filled is the empty
 * set; qpin_cpuset_packed_clear() frees and empties it.  Not a value type:
 * copy it with qpin_cpuset_packed_copy(), never with '=' or memcpy. */
typedef struct {
  guint n; /* words; the last one is non-zero */
  union {
    guint64 one; /* n <= 1 */
    guint64 *many;
  } w;
} QpinCpusetPacked;

void qpin_cpuset_pack (QpinCpusetPacked *dst, const QpinCpuset *src);
void qpin_cpuset_unpack (const QpinCpusetPacked *src, QpinCpuset *dst);
gboolean qpin_cpuset_packed_equal (const QpinCpusetPacked *packed, const QpinCpuset *set);
void qpin_cpuset_packed_clear (QpinCpusetPacked *packed);
void qpin_cpuset_packed_copy (QpinCpusetPacked *dst, const QpinCpusetPacked *src);
void qpin_cpuset_packed_add (QpinCpusetPacked *packed, guint cpu);
void qpin_cpuset_packed_remove (QpinCpusetPacked *packed, guint cpu);
gboolean qpin_cpuset_packed_has (const QpinCpusetPacked *packed, guint cpu);
gboolean qpin_cpuset_packed_is_empty (const QpinCpusetPacked *packed);
gboolean qpin_cpuset_packed_intersects (const QpinCpusetPacked *packed, const QpinCpuset *set);
gint qpin_cpuset_packed_first (const QpinCpusetPacked *packed);
guint qpin_cpuset_packed_count (const QpinCpusetPacked *packed);
void qpin_cpuset_or_packed (QpinCpuset *dst, const QpinCpusetPacked *src);
void qpin_cpuset_andnot_packed (QpinCpuset *dst, const QpinCpusetPacked *src);

gboolean qpin_cpuset_parse (const char *text, QpinCpuset *out, GError **error);
char *qpin_cpuset_format (const QpinCpuset *set);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (QpinCpusetPacked, qpin_cpuset_packed_clear)

G_END_DECLS
