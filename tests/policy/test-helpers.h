/* test-helpers.h: shared by the policy tests (static, header only) */
#pragma once

#include <glib.h>
#include <string.h>

#include "qpin-placer.h"
#include "qpin-policy.h"
#include "qpin-topology-reader.h"

static inline QpinTopology *
load_fixture (const char *name)
{
  g_autofree char *root = g_test_build_filename (G_TEST_DIST, "fixtures", name, NULL);
  g_autoptr (GError) error = NULL;
  QpinTopology *topo = qpin_topology_read (root, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (topo);
  return topo;
}

/* A config from "key=value" overrides, NULL-terminated list in one string
 * separated by spaces, e.g. "smt=isolate emulator=housekeeping". */
static inline QpinConfig *
config_from (const char *overrides)
{
  QpinConfig *config = qpin_config_new ();
  g_auto (GStrv) items = g_strsplit (overrides ? overrides : "", " ", -1);

  for (guint i = 0; items[i]; i++)
    {
      g_autoptr (GError) error = NULL;
      if (*items[i] == '\0')
        continue;
      g_assert_true (qpin_config_add_override (config, items[i], &error));
      g_assert_no_error (error);
    }
  return config;
}

/* Places the VMs "a:4:threads=2 b:2 ..." with the config; returns success. */
static inline gboolean
place_vms (QpinPlacer *placer, QpinConfig *config, const char *vms, GError **error)
{
  g_auto (GStrv) items = g_strsplit (vms, " ", -1);
  g_autoptr (GPtrArray) requests
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_request_free);
  g_autoptr (GPtrArray) policies
    = g_ptr_array_new_with_free_func ((GDestroyNotify) qpin_policy_free);

  for (guint i = 0; items[i]; i++)
    {
      g_autofree char *name = NULL;
      QpinGuestShape shape;
      QpinRequest *r;

      g_assert_true (qpin_guest_shape_parse (items[i], &name, &shape, NULL));
      r = qpin_request_new_from_shape (name, &shape, NULL);
      g_assert_nonnull (r);
      g_ptr_array_add (requests, r);
      g_ptr_array_add (policies, qpin_config_policy_for (config, name, NULL));
    }
  return qpin_placer_place (placer, requests, policies, error);
}

static inline QpinPlacer *
placer_for (const QpinTopology *topo, QpinConfig *config)
{
  g_autoptr (QpinPolicy) defaults = qpin_config_policy_for (config, NULL, NULL);
  return qpin_placer_new (topo, &defaults->reserved);
}

static inline const QpinPlanThread *
thread_of (const QpinPlacer *placer, const char *vm, QpinThreadRole role, guint index)
{
  const QpinPlanVm *v = qpin_plan_find_vm (qpin_placer_get_plan (placer), vm);
  g_assert_nonnull (v);
  return qpin_plan_vm_find_thread (v, role, index);
}

/* A plan thread's packed cpus as a whole set */
static inline QpinCpuset
thread_cpus (const QpinPlanThread *t)
{
  QpinCpuset set;

  qpin_cpuset_unpack (&t->cpus, &set);
  return set;
}

static inline gboolean
same_cpus (const QpinPlanThread *a, const QpinPlanThread *b)
{
  QpinCpuset set = thread_cpus (b);

  return qpin_cpuset_packed_equal (&a->cpus, &set);
}

static inline char *
cpus_of (const QpinPlacer *placer, const char *vm, QpinThreadRole role, guint index)
{
  const QpinPlanThread *t = thread_of (placer, vm, role, index);
  QpinCpuset set;

  g_assert_nonnull (t);
  set = thread_cpus (t);
  return qpin_cpuset_format (&set);
}

/* The union of the vCPU cpusets of a VM. */
static inline QpinCpuset
vcpus_of (const QpinPlacer *placer, const char *vm)
{
  const QpinPlanVm *v = qpin_plan_find_vm (qpin_placer_get_plan (placer), vm);
  QpinCpuset all;

  qpin_cpuset_clear_all (&all);
  g_assert_nonnull (v);
  for (guint i = 0; i < v->threads->len; i++)
    {
      const QpinPlanThread *t = &g_array_index (v->threads, QpinPlanThread, i);
      if (t->spec.role == QPIN_ROLE_VCPU)
        qpin_cpuset_or_packed (&all, &t->cpus);
    }
  return all;
}

static inline guint
count_domains (const QpinTopology *topo, const QpinCpuset *cpus, gboolean llc)
{
  QpinCpuset seen;
  qpin_cpuset_clear_all (&seen);
  QPIN_CPUSET_FOREACH (cpu, cpus)
    qpin_cpuset_add (&seen, (guint) (llc ? qpin_topology_cpu_llc (topo, (guint) cpu)
                                         : qpin_topology_cpu_node (topo, (guint) cpu)));
  return qpin_cpuset_count (&seen);
}

/* The exclusivity rule, checked on the whole plan: no thread that floats
 * runs on a CPU another VM holds, and what floats finds a CPU. */
static inline void
assert_exclusive (const QpinPlacer *placer)
{
  const QpinPlan *plan = qpin_placer_get_plan (placer);

  for (guint v = 0; v < plan->vms->len; v++)
    {
      const QpinPlanVm *vm = g_ptr_array_index (plan->vms, v);
      for (guint i = 0; i < vm->threads->len; i++)
        {
          const QpinPlanThread *t = &g_array_index (vm->threads, QpinPlanThread, i);
          QpinCpuset cpus = thread_cpus (t);

          g_assert_false (qpin_cpuset_is_empty (&cpus));
          QPIN_CPUSET_FOREACH (cpu, &cpus)
            {
              const char *holder = qpin_placer_holder (placer, (guint) cpu);
              if (holder && strcmp (holder, vm->name) != 0)
                g_error ("vm '%s' %s %u runs on cpu %d, which '%s' holds", vm->name,
                         qpin_thread_role_to_string (t->spec.role), t->spec.index, cpu, holder);
            }
        }
    }
}
