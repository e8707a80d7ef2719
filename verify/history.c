/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lab runs in the catalog: one lab_runs row per run, one lab_vms row per
 * VM with its timings (boot, heartbeat, app ready), one check_results row
 * per check.  The tables, their SQL and the connection are the catalog's
 * (recovery/catalog/catalog.c, schema 3); this file turns a report into
 * rows and rows into the history, through catalog.h.
 */
#include "verify/verify.h"
#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

static const char *
str (const char *s)
{
  return s ? s : "";
}

static int
record_vm (struct catalog *cat, int64_t run_id, const struct verify_vm_result *v)
{
  const struct catalog_lab_vm row = {
    .vm = v->name, .group = str (v->group), .source = str (v->source),
    .domain = str (v->domain), .address = str (v->address),
    .status = verify_status_name (v->status),
    .t_boot = v->t_boot, .t_heartbeat = v->t_heartbeat,
    .t_app_ready = v->t_app_ready, .message = str (v->message),
  };
  int64_t vm_id;
  size_t i;

  if (catalog_lab_vm_add (cat, run_id, &row, &vm_id) == -1)
    return -1;
  for (i = 0; i < v->nchecks; i++) {
    const struct verify_check_result *c = &v->checks[i];
    const struct catalog_check_result cr = {
      .vm = v->name, .name = c->name, .kind = str (c->kind),
      .status = verify_status_name (c->status), .attempts = c->attempts,
      .seconds = c->seconds, .at = c->at, .message = str (c->message),
    };
    if (catalog_check_result_add (cat, run_id, vm_id, &cr) == -1)
      return -1;
  }
  return 0;
}

int
verify_history_record (struct catalog *cat, const struct verify_report *r)
{
  const struct catalog_lab_run row = {
    .run = str (r->run_id), .lab = r->lab, .kind = r->kind, .file = str (r->file),
    .started = r->started, .seconds = r->seconds, .status = r->status,
    .vms = r->nvms, .checks = r->checks, .passed = r->passed,
    .failed = r->failed, .skipped = r->skipped,
    .report_dir = str (r->dir), .message = str (r->message),
  };
  int64_t run_id;
  size_t i;

  /* One transaction: a run is never seen without its VMs and checks. */
  if (catalog_begin (cat) == -1)
    return -1;
  if (catalog_lab_run_add (cat, &row, &run_id) == -1)
    goto rollback;
  for (i = 0; i < r->nvms; i++)
    if (record_vm (cat, run_id, &r->vms[i]) == -1)
      goto rollback;
  if (catalog_commit (cat) == -1)
    goto rollback;
  return 0;
 rollback:
  catalog_rollback (cat);
  return -1;
}

static json_t *
secs_json (double t)
{
  return t < 0 ? json_null () : json_real (t);
}

static int
history_add (void *opaque, const struct catalog_lab_history *h)
{
  json_t *a = opaque;
  char iso[32];
  time_t t = h->started;
  struct tm tm;

  gmtime_r (&t, &tm);
  strftime (iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_array_append_new (a, json_pack (
    "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s}",
    "run", h->run, "lab", h->lab, "kind", h->kind,
    "started", iso, "status", h->status, "source", h->source,
    "t_boot", secs_json (h->t_boot), "t_heartbeat", secs_json (h->t_heartbeat),
    "t_app_ready", secs_json (h->t_app_ready), "report_dir", h->report_dir,
    "message", h->message, "failed_checks", h->failed_checks));
  return 0;
}

json_t *
verify_history_json (struct catalog *cat, const char *vm)
{
  json_t *a = json_array ();

  if (catalog_lab_history (cat, vm, history_add, a) == -1) {
    json_decref (a);
    return NULL;
  }
  return a;
}
