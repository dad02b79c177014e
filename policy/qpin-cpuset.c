/* qpin-cpuset.c: CPU sets and the Linux cpulist format
 *
 * The cpulist grammar is the kernel's (lib/bitmap.c, bitmap_parselist):
 * comma-separated items, each N, N-M or N-M:STRIDE/GROUP ... qpin accepts
 * N and N-M, which is all sysfs and taskset print, plus surrounding
 * whitespace and a trailing newline as read from sysfs.  An empty string
 * is the empty set.
 */
#define G_LOG_DOMAIN "qpin-policy"

#include "qpin-cpuset.h"

#include <errno.h>
#include <string.h>

void
qpin_cpuset_clear_all (QpinCpuset *set)
{
  memset (set, 0, sizeof *set);
}

void
qpin_cpuset_add (QpinCpuset *set, guint cpu)
{
  g_return_if_fail (cpu < QPIN_CPUSET_MAX);
  set->w[cpu / 64] |= G_GUINT64_CONSTANT (1) << (cpu % 64);
}

void
qpin_cpuset_add_range (QpinCpuset *set, guint first, guint last)
{
  g_return_if_fail (first <= last && last < QPIN_CPUSET_MAX);
  for (guint c = first; c <= last; c++)
    set->w[c / 64] |= G_GUINT64_CONSTANT (1) << (c % 64);
}

void
qpin_cpuset_remove (QpinCpuset *set, guint cpu)
{
  g_return_if_fail (cpu < QPIN_CPUSET_MAX);
  set->w[cpu / 64] &= ~(G_GUINT64_CONSTANT (1) << (cpu % 64));
}

gboolean
qpin_cpuset_has (const QpinCpuset *set, guint cpu)
{
  if (cpu >= QPIN_CPUSET_MAX)
    return FALSE;
  return (set->w[cpu / 64] >> (cpu % 64)) & 1;
}

guint
qpin_cpuset_count (const QpinCpuset *set)
{
  guint n = 0;
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    n += (guint) __builtin_popcountll (set->w[i]);
  return n;
}

gboolean
qpin_cpuset_is_empty (const QpinCpuset *set)
{
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    if (set->w[i])
      return FALSE;
  return TRUE;
}

gboolean
qpin_cpuset_equal (const QpinCpuset *a, const QpinCpuset *b)
{
  return memcmp (a, b, sizeof *a) == 0;
}

gboolean
qpin_cpuset_intersects (const QpinCpuset *a, const QpinCpuset *b)
{
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    if (a->w[i] & b->w[i])
      return TRUE;
  return FALSE;
}

gboolean
qpin_cpuset_is_subset (const QpinCpuset *sub, const QpinCpuset *super)
{
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    if (sub->w[i] & ~super->w[i])
      return FALSE;
  return TRUE;
}

void
qpin_cpuset_or (QpinCpuset *dst, const QpinCpuset *src)
{
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    dst->w[i] |= src->w[i];
}

void
qpin_cpuset_and (QpinCpuset *dst, const QpinCpuset *src)
{
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    dst->w[i] &= src->w[i];
}

void
qpin_cpuset_andnot (QpinCpuset *dst, const QpinCpuset *src)
{
  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    dst->w[i] &= ~src->w[i];
}

gint
qpin_cpuset_next (const QpinCpuset *set, gint after)
{
  guint start = (guint) (after + 1);

  if (after < -1 || start >= QPIN_CPUSET_MAX)
    return -1;
  for (guint i = start / 64; i < QPIN_CPUSET_WORDS; i++)
    {
      guint64 word = set->w[i];
      if (i == start / 64)
        word &= ~G_GUINT64_CONSTANT (0) << (start % 64);
      if (word)
        return (gint) (i * 64 + (guint) __builtin_ctzll (word));
    }
  return -1;
}

gint
qpin_cpuset_first (const QpinCpuset *set)
{
  return qpin_cpuset_next (set, -1);
}

gint
qpin_cpuset_last (const QpinCpuset *set)
{
  for (guint i = QPIN_CPUSET_WORDS; i-- > 0;)
    if (set->w[i])
      return (gint) (i * 64 + 63 - (guint) __builtin_clzll (set->w[i]));
  return -1;
}

static const guint64 *
packed_words (const QpinCpusetPacked *packed)
{
  return packed->n <= 1 ? &packed->w.one : packed->w.many;
}

void
qpin_cpuset_packed_clear (QpinCpusetPacked *packed)
{
  if (packed->n > 1)
    g_free (packed->w.many);
  memset (packed, 0, sizeof *packed);
}

void
qpin_cpuset_pack (QpinCpusetPacked *dst, const QpinCpuset *src)
{
  gint last = qpin_cpuset_last (src);
  guint n = last < 0 ? 0 : (guint) last / 64 + 1;

  if (n <= 1)
    {
      qpin_cpuset_packed_clear (dst);
      dst->n = n;
      dst->w.one = src->w[0];
      return;
    }
  if (dst->n != n)
    {
      qpin_cpuset_packed_clear (dst);
      dst->w.many = g_new (guint64, n);
      dst->n = n;
    }
  memcpy (dst->w.many, src->w, n * sizeof (guint64));
}

void
qpin_cpuset_unpack (const QpinCpusetPacked *src, QpinCpuset *dst)
{
  qpin_cpuset_clear_all (dst);
  memcpy (dst->w, packed_words (src), src->n * sizeof (guint64));
}

gboolean
qpin_cpuset_packed_equal (const QpinCpusetPacked *packed, const QpinCpuset *set)
{
  const guint64 *w = packed_words (packed);

  for (guint i = 0; i < QPIN_CPUSET_WORDS; i++)
    if ((i < packed->n ? w[i] : 0) != set->w[i])
      return FALSE;
  return TRUE;
}

/* Deep copy: @dst must own its words or be zero-filled; it is emptied first. */
void
qpin_cpuset_packed_copy (QpinCpusetPacked *dst, const QpinCpusetPacked *src)
{
  if (dst == src)
    return;
  qpin_cpuset_packed_clear (dst);
  dst->n = src->n;
  if (src->n <= 1)
    dst->w.one = src->w.one;
  else
    dst->w.many = g_memdup2 (src->w.many, src->n * sizeof (guint64));
}

/* In place, growing the words only when @cpu lies beyond them: the
 * placer holds and releases one CPU at a time. */
void
qpin_cpuset_packed_add (QpinCpusetPacked *packed, guint cpu)
{
  guint word = cpu / 64;

  g_return_if_fail (cpu < QPIN_CPUSET_MAX);
  if (word >= packed->n && word > 0)
    {
      guint64 *many = g_new0 (guint64, word + 1);
      memcpy (many, packed_words (packed), packed->n * sizeof (guint64));
      if (packed->n > 1)
        g_free (packed->w.many);
      packed->w.many = many;
    }
  if (word >= packed->n)
    packed->n = word + 1;
  (packed->n <= 1 ? &packed->w.one : packed->w.many)[word] |= G_GUINT64_CONSTANT (1) << (cpu % 64);
}

/* In place; trailing empty words are dropped, back to no allocation at
 * 64 CPUs or fewer. */
void
qpin_cpuset_packed_remove (QpinCpusetPacked *packed, guint cpu)
{
  guint64 *w;
  guint n;

  if (cpu / 64 >= packed->n)
    return;
  w = packed->n <= 1 ? &packed->w.one : packed->w.many;
  w[cpu / 64] &= ~(G_GUINT64_CONSTANT (1) << (cpu % 64));
  for (n = packed->n; n > 0 && w[n - 1] == 0; n--)
    ;
  if (packed->n > 1 && n <= 1)
    {
      guint64 one = w[0];
      g_free (packed->w.many);
      packed->w.one = n ? one : 0;
    }
  packed->n = n;
}

gboolean
qpin_cpuset_packed_has (const QpinCpusetPacked *packed, guint cpu)
{
  return cpu / 64 < packed->n
         && (packed_words (packed)[cpu / 64] & (G_GUINT64_CONSTANT (1) << (cpu % 64))) != 0;
}

gboolean
qpin_cpuset_packed_is_empty (const QpinCpusetPacked *packed)
{
  return packed->n == 0 || (packed->n == 1 && packed->w.one == 0);
}

gboolean
qpin_cpuset_packed_intersects (const QpinCpusetPacked *packed, const QpinCpuset *set)
{
  const guint64 *w = packed_words (packed);

  for (guint i = 0; i < packed->n; i++)
    if (w[i] & set->w[i])
      return TRUE;
  return FALSE;
}

gint
qpin_cpuset_packed_first (const QpinCpusetPacked *packed)
{
  const guint64 *w = packed_words (packed);

  for (guint i = 0; i < packed->n; i++)
    if (w[i])
      return (gint) (i * 64 + (guint) __builtin_ctzll (w[i]));
  return -1;
}

guint
qpin_cpuset_packed_count (const QpinCpusetPacked *packed)
{
  const guint64 *w = packed_words (packed);
  guint n = 0;

  for (guint i = 0; i < packed->n; i++)
    n += (guint) __builtin_popcountll (w[i]);
  return n;
}

void
qpin_cpuset_or_packed (QpinCpuset *dst, const QpinCpusetPacked *src)
{
  const guint64 *w = packed_words (src);

  for (guint i = 0; i < src->n; i++)
    dst->w[i] |= w[i];
}

void
qpin_cpuset_andnot_packed (QpinCpuset *dst, const QpinCpusetPacked *src)
{
  const guint64 *w = packed_words (src);

  for (guint i = 0; i < src->n; i++)
    dst->w[i] &= ~w[i];
}

/* Parse a decimal CPU number at *p; advance *p past it. */
static gboolean
parse_cpu (const char *text, const char **p, guint *out, GError **error)
{
  const char *start = *p;
  guint64 value = 0;

  if (!g_ascii_isdigit (*start))
    {
      g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                   "invalid cpulist '%s': expected a CPU number at offset %d", text,
                   (int) (start - text));
      return FALSE;
    }
  while (g_ascii_isdigit (**p))
    {
      value = value * 10 + (guint64) (**p - '0');
      (*p)++;
      if (value >= QPIN_CPUSET_MAX)
        {
          while (g_ascii_isdigit (**p))
            (*p)++;
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_RANGE,
                       "invalid cpulist '%s': CPU '%.*s' is out of range (0-%d)", text,
                       (int) (*p - start), start, QPIN_CPUSET_MAX - 1);
          return FALSE;
        }
    }
  *out = (guint) value;
  return TRUE;
}

/**
 * qpin_cpuset_parse:
 * @text: a Linux cpulist such as "0-3,8,10-11" (surrounding whitespace allowed)
 * @out: (out): the set, written only on success
 *
 * Returns: %TRUE on success; on failure @error (QPIN_POLICY_ERROR_PARSE or
 * _RANGE) quotes the text and says what was wrong where.
 */
gboolean
qpin_cpuset_parse (const char *text, QpinCpuset *out, GError **error)
{
  QpinCpuset set;
  g_autofree char *copy = g_strstrip (g_strdup (text));
  const char *p = copy;

  qpin_cpuset_clear_all (&set);
  while (*p)
    {
      guint first, last;

      if (!parse_cpu (copy, &p, &first, error))
        return FALSE;
      last = first;
      if (*p == '-')
        {
          p++;
          if (!parse_cpu (copy, &p, &last, error))
            return FALSE;
          if (last < first)
            {
              g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                           "invalid cpulist '%s': range %u-%u is reversed", copy, first, last);
              return FALSE;
            }
        }
      qpin_cpuset_add_range (&set, first, last);
      if (*p == ',')
        {
          p++;
          if (*p == '\0')
            {
              g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                           "invalid cpulist '%s': trailing ','", copy);
              return FALSE;
            }
        }
      else if (*p != '\0')
        {
          g_set_error (error, QPIN_POLICY_ERROR, QPIN_POLICY_ERROR_PARSE,
                       "invalid cpulist '%s': unexpected '%c' at offset %d", copy, *p,
                       (int) (p - copy));
          return FALSE;
        }
    }
  *out = set;
  return TRUE;
}

/**
 * qpin_cpuset_format:
 *
 * Returns: (transfer full): the set as a compact cpulist ("0-3,8"); "" if empty.
 */
char *
qpin_cpuset_format (const QpinCpuset *set)
{
  GString *s = g_string_new (NULL);
  gint c = qpin_cpuset_first (set);

  while (c >= 0)
    {
      gint end = c;
      while (end + 1 < QPIN_CPUSET_MAX && qpin_cpuset_has (set, (guint) end + 1))
        end++;
      if (s->len)
        g_string_append_c (s, ',');
      if (end == c)
        g_string_append_printf (s, "%d", c);
      else
        g_string_append_printf (s, "%d-%d", c, end);
      c = qpin_cpuset_next (set, end);
    }
  return g_string_free (s, FALSE);
}
