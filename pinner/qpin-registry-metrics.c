/* qpin-registry-metrics.c: the registry's counters for metrics, and its
 * side of the exposition (see qpin-metrics.c for the thread series) */

#define QPIN_REGISTRY_ALLOW_PRIVATE
#include "qpin-registry-private.h"
#include "qpin-registry-metrics.h"
#include "qpin-metrics.h"
#include "qpin-proc.h"

/* seconds; the last bucket, +Inf, is the count */
static const double hotadd_bounds[QPIN_HOTADD_BUCKETS]
  = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };

static const char *const pin_errnos[QPIN_PIN_ERRNOS] = { "EPERM", "ESRCH", "EINVAL", "other" };

/**
 * qpin_vm_thread_seen:
 * @old: (nullable): the thread's state in the previous snapshot
 *
 * Returns: when a vCPU thread that appeared after the VM was placed (a
 *   hot-added one) was first seen, carried over from @old; 0 otherwise
 */
gint64
qpin_vm_thread_seen (QpinVm *vm, const QpinVmThread *t, const ThreadState *old)
{
  if (old)
    return old->seen_us;
  return vm->placed && t->role == QPIN_ROLE_VCPU ? g_get_monotonic_time () : 0;
}

/**
 * qpin_vm_count_pin_error:
 *
 * Counts a refused pin of @vm by errno (the error's code).
 */
void
qpin_vm_count_pin_error (QpinVm *vm, const GError *error)
{
  guint k = 3;

  if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_PERMISSION))
    k = 0;
  else if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_GONE))
    k = 1;
  else if (g_error_matches (error, QPIN_PINNER_ERROR, QPIN_PINNER_ERROR_INVALID))
    k = 2;
  vm->pin_errors[k]++;
}

/**
 * qpin_vm_count_pinned:
 *
 * Once a hot-added vCPU thread is verified pinned, observes the time
 * since it was first seen (once per thread).
 */
void
qpin_vm_count_pinned (QpinVm *vm, const QpinVmThread *t, ThreadState *st)
{
  QpinHotaddHistogram *h = &vm->registry->hotadd;
  double s;

  if (st->seen_us == 0 || !st->applied || t->role != QPIN_ROLE_VCPU)
    return;
  s = (double) (g_get_monotonic_time () - st->seen_us) / G_USEC_PER_SEC;
  st->seen_us = 0;
  for (guint i = 0; i < QPIN_HOTADD_BUCKETS; i++)
    h->le[i] += s <= hotadd_bounds[i];
  h->count++;
  h->sum_s += s;
  g_debug ("vm '%s': vcpu %d (tid %d) pinned %.3f s after it was seen", vm->key, t->index, t->tid,
           s);
}

/**
 * qpin_registry_metrics_sync:
 *
 * Makes @sampler watch exactly the threads of the live VMs, with their
 * plans, labelled with each VM's key.
 */
void
qpin_registry_metrics_sync (QpinRegistry *registry, QpinSampler *sampler)
{
  g_autoptr (GHashTable) keep = g_hash_table_new (NULL, NULL);

  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      for (guint j = 0; vm->threads && vm->states && j < vm->threads->len; j++)
        {
          const QpinVmThread *t = g_ptr_array_index (vm->threads, j);
          const ThreadState *st = &g_array_index (vm->states, ThreadState, j);
          g_autofree QpinCpuset *planned = g_new0 (QpinCpuset, 1);

          qpin_cpuset_unpack (&st->planned, planned);
          qpin_sampler_add_thread (sampler, vm->key, vm->pid, t->tid, t->role, t->index, planned);
          g_hash_table_add (keep, GINT_TO_POINTER (t->tid));
        }
    }
  qpin_sampler_keep_only (sampler, keep);
}

static void
write_states (QpinRegistry *registry, GString *out)
{
  g_string_append (out, "# HELP qpin_vm_state Whether the VM is in this state (1) or not (0).\n"
                        "# TYPE qpin_vm_state gauge\n");
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autofree char *name = qpin_metrics_escape (vm->key);
      for (QpinVmState s = QPIN_VM_DISCOVERING; s <= QPIN_VM_PLANNED; s++)
        g_string_append_printf (out, "qpin_vm_state{vm=\"%s\",state=\"%s\"} %d\n", name,
                                qpin_vm_state_to_string (s), vm->state == s);
    }
}

static void
write_vm_counters (QpinRegistry *registry, GString *out)
{
  g_string_append (out, "# HELP qpin_drift_repairs_total Threads pinned back after someone else "
                        "moved them.\n# TYPE qpin_drift_repairs_total counter\n");
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autofree char *name = qpin_metrics_escape (vm->key);
      g_string_append_printf (out, "qpin_drift_repairs_total{vm=\"%s\"} %u\n", name,
                              vm->drift_repairs);
    }
  g_string_append (out, "# HELP qpin_pin_errors_total Pins the kernel refused, by errno.\n"
                        "# TYPE qpin_pin_errors_total counter\n");
  for (guint i = 0; i < registry->vms->len; i++)
    {
      QpinVm *vm = g_ptr_array_index (registry->vms, i);
      g_autofree char *name = qpin_metrics_escape (vm->key);
      for (guint k = 0; k < QPIN_PIN_ERRNOS; k++)
        g_string_append_printf (
          out, "qpin_pin_errors_total{vm=\"%s\",errno=\"%s\"} %" G_GUINT64_FORMAT "\n", name,
          pin_errnos[k], vm->pin_errors[k]);
    }
}

static void
write_hotadd (QpinRegistry *registry, GString *out)
{
  const QpinHotaddHistogram *h = &registry->hotadd;
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (out, "# HELP qpin_hotadd_pin_seconds From a new vCPU thread seen to it "
                        "pinned.\n# TYPE qpin_hotadd_pin_seconds histogram\n");
  for (guint i = 0; i < QPIN_HOTADD_BUCKETS; i++)
    g_string_append_printf (out,
                            "qpin_hotadd_pin_seconds_bucket{le=\"%s\"} %" G_GUINT64_FORMAT "\n",
                            g_ascii_formatd (buf, sizeof buf, "%g", hotadd_bounds[i]), h->le[i]);
  g_string_append_printf (
    out, "qpin_hotadd_pin_seconds_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n", h->count);
  g_string_append_printf (out, "qpin_hotadd_pin_seconds_sum %s\n",
                          g_ascii_formatd (buf, sizeof buf, "%.6f", h->sum_s));
  g_string_append_printf (out, "qpin_hotadd_pin_seconds_count %" G_GUINT64_FORMAT "\n", h->count);
}

/**
 * qpin_registry_metrics_write:
 *
 * Appends the registry's series to @out, in the text exposition format:
 * one per live VM (a VM that left has none), and the hot-add histogram.
 */
void
qpin_registry_metrics_write (QpinRegistry *registry, GString *out)
{
  write_states (registry, out);
  write_vm_counters (registry, out);
  write_hotadd (registry, out);
}
