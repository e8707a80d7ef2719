/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lab runs in the catalog: one lab_runs row per run, one lab_vms row per
 * VM with its timings (boot, heartbeat, app ready), one check_results row
 * per check.  The tables, their SQL and the connection are the catalog's
 * (recovery/catalog/catalog.c, schema 3); this file turns a report into
 * rows and rows into the history, through catalog.h.
 *
 * Evidence (schema 4): recording a run also chains it (its hash over its
 * rows and the previous run's hash, catalog_lab_run_chain) in the same
 * transaction, then seals its reports: written again with that hash
 * (report.json "evidence") and signed with the appliance key (sign.c).
 * The order matters: the reports carry the hash of the run as recorded,
 * so a run deleted from the end of the chain, which the chain alone
 * cannot show, is shown by its signed report.  verify_history_check walks
 * the chain.
 */
#include <stdarg.h>

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

/* Record r's rows and chain them, in one transaction; e gets the row id
 * and the hashes. */
static int
record (struct catalog *cat, const struct verify_report *r,
        struct verify_evidence *e)
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
  if (catalog_lab_run_chain (cat, run_id, e->prev, e->chain) == -1 ||
      catalog_commit (cat) == -1)
    goto rollback;
  e->catalog_id = run_id;
  return 0;
 rollback:
  catalog_rollback (cat);
  e->prev[0] = e->chain[0] = '\0';
  return -1;
}

static void __attribute__((format (printf, 1, 2)))
warn (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  report_linev (NULL, NULL, "warning: ", fmt, ap);
  va_end (ap);
}

/* Write r's reports again with their evidence and sign them.  What goes
 * wrong is a warning: the run is recorded either way. */
static void
seal (struct catalog *cat, struct verify_report *r)
{
  struct verify_evidence *e = &r->evidence;
  struct verify_key *key = verify_key_appliance (catalog_home (cat));

  if (key)
    snprintf (e->key, sizeof e->key, "%s", verify_key_fingerprint (key));
  else {
    snprintf (e->unsigned_reason, sizeof e->unsigned_reason, "%s", error_msg ());
    warn ("the reports in %s are NOT signed: %s", r->dir, e->unsigned_reason);
  }
  e->sealed = true;
  if (verify_report_seal (r, key) == -1)
    warn ("the reports in %s are NOT sealed: %s", r->dir, error_msg ());
  verify_key_free (key);
}

int
verify_history_record (struct catalog *cat, const struct verify_report *r)
{
  struct verify_evidence e = { 0 };
  CLEANUP_FREE char *json = r->dir ? xasprintf ("%s/report.json", r->dir) : NULL;
  int ret = record (cat, r, &e);

  /* Reports written: sealed, also when the catalog failed (no chain). */
  if (json && access (json, F_OK) == 0) {
    struct verify_report s = *r;     /* shallow: only the evidence differs */
    ERROR_SAVE (saved);
    s.evidence = e;
    seal (cat, &s);
    ERROR_RESTORE (saved);
  }
  return ret;
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
  char iso[ISO_TIME_LEN + 1];

  iso_time_format (h->started, iso);
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

/* ---- the chain ------------------------------------------------------------ */

struct walk {
  struct verify_chain_check *k;
  char last[SHA256_HEX_LEN + 1];     /* hash of the last chained run */
  int64_t last_id;                   /* and its id, 0 if none yet */
};

static void
chain_break (struct walk *w, const struct catalog_lab_link *l,
             const char *problem, const char *why)
{
  struct verify_chain_check *k = w->k;
  char iso[ISO_TIME_LEN + 1];

  k->broken = true;
  k->id = l->id;
  snprintf (k->run, sizeof k->run, "%s", l->run);
  snprintf (k->lab, sizeof k->lab, "%s", l->lab);
  k->started = l->started;
  k->problem = problem;
  iso_time_format (l->started, iso);
  snprintf (k->message, sizeof k->message, "run #%" PRId64 " %s (lab %s, "
            "started %s): %s", l->id, l->run, l->lab, iso, why);
}

static int
chain_link (void *opaque, const struct catalog_lab_link *l)
{
  struct walk *w = opaque;
  char why[256];

  if (w->k->broken)
    return 0;
  if (!l->hash) {
    if (w->last_id == 0) {
      w->k->unchained++;             /* recorded before the chain */
      return 0;
    }
    chain_break (w, l, "unhashed", "has no hash, but runs before it are "
                 "chained: its hash was removed (edited)");
    return 0;
  }
  if (strcmp (l->hash, l->computed) != 0) {
    chain_break (w, l, "edited", "edited: its rows (run, VMs or checks) do not "
                 "match its hash");
    return 0;
  }
  if (strcmp (l->prev_hash ? l->prev_hash : "", w->last) != 0) {
    if (w->last_id)
      snprintf (why, sizeof why, "does not follow run #%" PRId64 ": a run "
                "recorded between them was deleted", w->last_id);
    else
      snprintf (why, sizeof why, "is the first chained run but follows a "
                "run that is not there: a run before it was deleted");
    chain_break (w, l, "deleted", why);
    return 0;
  }
  snprintf (w->last, sizeof w->last, "%s", l->hash);
  w->last_id = l->id;
  w->k->checked++;
  return 0;
}

int
verify_history_check (struct catalog *cat, struct verify_chain_check *out)
{
  struct walk w = { .k = out };

  memset (out, 0, sizeof *out);
  return catalog_lab_chain (cat, chain_link, &w);
}

json_t *
verify_chain_check_json (const struct verify_chain_check *k)
{
  json_t *o = json_pack ("{s:b, s:I, s:I}", "intact", !k->broken,
                         "checked", (json_int_t) k->checked,
                         "unchained", (json_int_t) k->unchained);

  if (k->broken) {
    char iso[ISO_TIME_LEN + 1];
    iso_time_format (k->started, iso);
    json_object_set_new (o, "broken", json_pack (
      "{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t) k->id, "run", k->run,
      "lab", k->lab, "started", iso, "problem", k->problem, "message", k->message));
  }
  return o;
}
