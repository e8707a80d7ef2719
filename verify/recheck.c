/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback lab check: the checks of a sandbox's lab definition run again
 * on the running sandbox and compared, check by check, with the results
 * of the run at `lab up` (its report.json).
 *
 *   state ──> isolation proven again (lab_net_check with the VMs' taps,
 *   (id)      the relay of published ports running) ──> every VM's checks
 *             in definition order ──> rows {vm, check, before, now}
 *
 * A row "regressed" when the check passed at lab up and fails now: what
 * a patch broke.  Checks that were not run at lab up (a definition
 * changed since) have no "before".  If the isolation no longer holds,
 * no check runs and the result says why (fail closed, as at lab up).
 * The VMs are found by their domain names in the state and reached at
 * the addresses the definition gives, else the one the run at lab up
 * used (an agent's answer then, inside the lab subnet, as lab up took it).
 * A sandbox on another host is checked there, over an ssh connection of
 * its own to the host kept in its state.  Nothing here changes the sandbox.
 */
#include <errno.h>
#include <sys/stat.h>

#include "verify/verify.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"

/* The status of vm's check named check at lab up, or NULL. */
static const char *
before_status (json_t *before, const char *vm, const char *check)
{
  json_t *vms = json_object_get (before, "vms"), *v, *c;
  size_t i, j;

  json_array_foreach (vms, i, v) {
    if (!json_is_string (json_object_get (v, "name")) ||
        strcmp (json_string_value (json_object_get (v, "name")), vm) != 0)
      continue;
    json_array_foreach (json_object_get (v, "checks"), j, c)
      if (json_is_string (json_object_get (c, "name")) &&
          strcmp (json_string_value (json_object_get (c, "name")), check) == 0)
        return json_string_value (json_object_get (c, "status"));
  }
  return NULL;
}

/* The address the run at lab up reached vm at (the definition's, or the
 * one the agent gave inside the lab subnet), or NULL. */
static const char *
before_address (json_t *before, const char *vm)
{
  json_t *v;
  size_t i;

  json_array_foreach (json_object_get (before, "vms"), i, v)
    if (json_is_string (json_object_get (v, "name")) &&
        strcmp (json_string_value (json_object_get (v, "name")), vm) == 0)
      return json_string_value (json_object_get (v, "address"));
  return NULL;
}

/* The state's line of VM name: its domain and address (out, "" if none). */
static bool
state_vm (const struct lab_state *s, const char *name, char dom[200], char addr[64])
{
  size_t i;

  for (i = 0; s->vms && s->vms[i]; i++) {
    char n[160];
    if (sscanf (s->vms[i], "%159s %199s %63s", n, dom, addr) == 3 &&
        strcmp (n, name) == 0) {
      if (strcmp (addr, "-") == 0)
        addr[0] = '\0';
      return true;
    }
  }
  return false;
}

/* Every tap of the sandbox's domains, for the isolation check. */
static char **
sandbox_taps (virConnectPtr conn, const struct lab_state *s)
{
  char **all = xcalloc (1, sizeof *all);
  size_t n = 0, i;
  int k, m;

  for (i = 0; s->vms && s->vms[i]; i++) {
    char name[160], dom[200], addr[64];
    CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
    CLEANUP_FREE char *xml = NULL;
    CLEANUP_STRV char **taps = NULL, **bridges = NULL, **types = NULL;
    if (sscanf (s->vms[i], "%159s %199s %63s", name, dom, addr) != 3 ||
        !(d = virt_domain_by_name (conn, dom)) || !(xml = virt_domain_xml (d, 0)))
      continue;
    m = lab_domain_interfaces (xml, &taps, &bridges, &types);
    for (k = 0; k < m; k++)
      if (taps[k][0])
        strv_push (&all, &n, xstrdup (taps[k]));
  }
  return all;
}

/* One check of vm again: a row. */
static json_t *
recheck_one (const struct lab_check *c, const struct verify_target *t,
             json_t *before, bool *regressed)
{
  struct verify_check_result r = { 0 };
  const char *was = before_status (before, t->vm, c->name);
  json_t *row;

  verify_check_run (c, t, &r);
  *regressed = was && strcmp (was, "pass") == 0 && r.status == VERIFY_FAIL;
  row = json_pack ("{s:s, s:s, s:s, s:s?, s:s, s:s, s:b}", "vm", t->vm,
                   "check", c->name, "kind", verify_kind_name (c->kind),
                   "before", was, "now", verify_status_name (r.status),
                   "message", r.message ? r.message : "", "regressed", *regressed);
  verify_check_result_clear (&r);
  return row;
}

/* The checks of vm (domain dom, or not running) into rows. */
static int
recheck_vm (virConnectPtr conn, const struct lab_state *s, const struct lab_net *n,
            const struct lab_vm *vm, json_t *before, json_t *rows)
{
  char dom[200] = "", addr[64] = "";
  CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
  CLEANUP_FREE char *shot = xasprintf ("%s/recheck-%s.png", s->report_dir ? s->report_dir
                                                                       : s->dir, vm->name);
  struct verify_target t = { .net = n, .vm = vm->name, .shot_path = shot };
  int regressions = 0;
  size_t j;

  if (state_vm (s, vm->name, dom, addr))
    d = virt_domain_by_name (conn, dom);
  t.dom = d;
  t.domain = dom;
  t.address = vm->address ? vm->address : addr[0] ? addr : NULL;
  if (!t.address) {
    const char *a = before_address (before, vm->name);
    if (a && lab_ipv4_in_subnet (a, n->subnet, n->prefix))
      t.address = a;
  }
  for (j = 0; j < vm->nchecks; j++) {
    const char *was = before_status (before, vm->name, vm->checks[j].name);
    bool reg = false;
    if (!d) {
      reg = was && strcmp (was, "pass") == 0;
      json_array_append_new (rows, json_pack (
        "{s:s, s:s, s:s, s:s?, s:s, s:s, s:b}", "vm", vm->name,
        "check", vm->checks[j].name, "kind", verify_kind_name (vm->checks[j].kind),
        "before", was, "now", "fail", "message",
        dom[0] ? "its domain is not running" : "not in the sandbox", "regressed", reg));
    }
    else
      json_array_append_new (rows, recheck_one (&vm->checks[j], &t, before, &reg));
    regressions += reg;
  }
  return regressions;
}

json_t *
verify_recheck (const struct lab_state *s, const struct lab_def *d)
{
  CLEANUP_FREE char *rp = s->report_dir ? xasprintf ("%s/report.json", s->report_dir) : NULL;
  CLEANUP_VIR_CONNECT virConnectPtr conn = NULL;
  CLEANUP_STRV char **taps = NULL;
  json_t *before = rp ? json_load_file (rp, 0, NULL) : NULL;
  json_t *out, *rows = json_array ();
  struct lab_net n;
  struct lab_host h;
  char at[32];
  int regressions = 0;
  size_t g, i;

  virt_init ();
  if (!(conn = virt_connect (s->uri && *s->uri ? s->uri : NULL))) {
    error_setx ("lab %s: cannot reach libvirt: %s", s->id, virt_failure ());
    json_decref (before);
    json_decref (rows);
    return NULL;
  }
  lab_state_host (s, &h);       /* a sandbox on another host: checked there */
  if (lab_host_open (&h) == -1) {         /* could not run, not a regression */
    error_prefix ("lab %s", s->id);
    json_decref (before);
    json_decref (rows);
    return NULL;
  }
  iso_time_format (time (NULL), at);
  out = json_pack ("{s:s, s:s, s:s, s:s?}", "run", s->id, "lab", s->lab ? s->lab : "",
                   "checked", at, "before_report", rp);
  lab_net_init (&n, s->id, d);
  n.host = &h;
  taps = sandbox_taps (conn, s);
  if (lab_net_check (&n, taps) == -1) {
    json_object_set_new (out, "isolation", json_string (error_msg ()));
    regressions = -1;
  }
  else {
    json_object_set_new (out, "isolation", json_string ("proven"));
    for (g = 0; g < d->ngroups; g++)
      for (i = 0; i < d->groups[g].nvms; i++)
        regressions += recheck_vm (conn, s, &n, &d->groups[g].vms[i], before, rows);
  }
  lab_host_close (&h);
  json_object_set_new (out, "checks", rows);
  json_object_set_new (out, "regressions", json_integer (regressions < 0 ? 0 : regressions));
  json_object_set_new (out, "isolated", json_boolean (regressions >= 0));
  json_decref (before);
  return out;
}
