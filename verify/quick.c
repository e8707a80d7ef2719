/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lab definition of `bootback verify VM[@TIME]` (and of a web verify
 * job): the administrator's $BOOTBACK_HOME/verify/VM.yaml if there is
 * one, else the options and what the point's domain XML says
 * (lab/quick.c); --rto and --rpo on top.
 */
#include <errno.h>
#include <unistd.h>

#include "recovery/repo/repo.h"
#include "verify/verify.h"

/* The lab definition of a quick verification of vm@point: the
 * administrator's $BOOTBACK_HOME/verify/VM.yaml if there is one, else the
 * options and what the point's domain XML says (lab/quick.c). */
static struct lab_def *
quick_def (const char *home, struct repo *repo, const struct verify_quick *q,
           const char *vm, const char *point)
{
  CLEANUP_FREE char *custom = xasprintf ("%s/verify/%s.yaml", home, vm);
  CLEANUP_FREE char *xml = NULL;
  char *errs = NULL;
  struct lab_def *d;
  struct lab_verify_hints hints = { 0 };
  struct lab_quick lq = {
    .vm = vm, .point = point, .address = q->address, .subnet = q->subnet,
    .gateway = q->gateway, .boot_timeout = q->boot, .memory = q->memory,
    .checks = q->checks,
  };
  size_t g, k;

  if (access (custom, R_OK) == 0) {
    d = lab_def_read_file (custom, &errs);
    if (!d) {
      fputs (errs ? errs : "", stderr);
      free (errs);
      error_setx ("%s is not a valid lab definition", custom);
      return NULL;
    }
    for (g = 0; g < d->ngroups; g++)
      for (k = 0; k < d->groups[g].nvms; k++)
        if (!d->groups[g].vms[k].image && strcmp (d->groups[g].vms[k].name, vm) == 0) {
          free (d->groups[g].vms[k].point);
          d->groups[g].vms[k].point = xstrdup (point);
        }
    return d;
  }
  /* What the VM's own definition says (its <metadata>), under the flags. */
  xml = repo_domain_xml_read (repo, vm, point);
  /* None is fine; a changed (or unreadable) one is not. */
  if (!xml && error_errno () != ENOENT)
    return NULL;
  if (xml && lab_domain_verify_hints (xml, &hints) == 1)
    lq.hints = &hints;
  d = lab_quick_def (&lq);
  lab_verify_hints_clear (&hints);
  for (g = 0; d && g < d->ngroups; g++)
    for (k = 0; k < d->groups[g].nvms; k++) {
      const struct lab_vm *v = &d->groups[g].vms[k];
      size_t i;
      for (i = 0; i < v->nrefused; i++)
        fprintf (stderr, "bootback: %s@%s: refused check '%s' from its domain "
                 "XML's <bb:verify> (not run): %s\n", vm, point,
                 v->refused[i].check, v->refused[i].why);
    }
  return d;
}

/* --rto and --rpo on the restore point VMs named vm (they win over the
 * definition's). */
static void
quick_targets (struct lab_def *d, const struct verify_quick *q, const char *vm)
{
  size_t g, k;

  for (g = 0; g < d->ngroups; g++)
    for (k = 0; k < d->groups[g].nvms; k++) {
      struct lab_vm *v = &d->groups[g].vms[k];
      if (v->image || strcmp (v->name, vm) != 0)
        continue;
      if (q->rto >= 0)
        v->rto = q->rto;
      if (q->rpo >= 0)
        v->rpo = q->rpo;
    }
}

struct lab_def *
verify_quick_def (const char *home, struct repo *repo,
                  const struct verify_quick *q, const char *vm,
                  const char *point)
{
  struct lab_def *d = quick_def (home, repo, q, vm, point);

  if (d)
    quick_targets (d, q, vm);
  return d;
}

char *
verify_report_reason (const struct verify_report *r, const char *vm)
{
  const struct verify_vm_result *v = NULL;
  char *out = xstrdup ("");
  size_t i;

  for (i = 0; i < r->nvms && !v; i++)
    if (strcmp (r->vms[i].name, vm) == 0)
      v = &r->vms[i];
  if (!v || v->status == VERIFY_PASS)
    return out;
  if (v->message && *v->message) {
    free (out);
    return xstrdup (v->message);
  }
  for (i = 0; i < v->nchecks; i++)
    if (v->checks[i].status == VERIFY_FAIL) {
      char *m = xasprintf ("%s%s%s: %s", out, *out ? "; " : "", v->checks[i].name,
                           v->checks[i].message ? v->checks[i].message : "failed");
      free (out);
      out = m;
    }
  return out;
}
