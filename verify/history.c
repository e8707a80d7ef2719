/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lab runs in the catalog: one lab_runs row per run, one lab_vms row per
 * VM with its timings (boot, heartbeat, app ready), one check_results row
 * per check.  The tables are created by the catalog's schema migrations
 * (recovery/catalog/catalog.c); this file owns their rows and talks to
 * the same database file through its own connection (WAL, busy timeout),
 * with prepared statements only.
 */
#include <errno.h>
#include <sqlite3.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

struct db {
  sqlite3 *db;
  char *path;
};

static int
db_open (const char *home, struct db *d)
{
  d->path = xasprintf ("%s/catalog.db", home);
  if (sqlite3_open_v2 (d->path, &d->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    error_setx ("catalog %s: %s", d->path, d->db ? sqlite3_errmsg (d->db) : "open");
    sqlite3_close (d->db);
    free (d->path);
    return -1;
  }
  sqlite3_busy_timeout (d->db, 10000);
  sqlite3_exec (d->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
  return 0;
}

static void
db_close (struct db *d)
{
  sqlite3_close (d->db);
  free (d->path);
}

static int
db_err (struct db *d, const char *what)
{
  error_setx ("catalog %s: %s: %s", d->path, what, sqlite3_errmsg (d->db));
  return -1;
}

static void
bind_secs (sqlite3_stmt *s, int i, double v)
{
  if (v >= 0)
    sqlite3_bind_double (s, i, v);
  else
    sqlite3_bind_null (s, i);
}

int
verify_history_record (const char *home, const struct verify_report *r)
{
  struct db d;
  sqlite3_stmt *run = NULL, *vm = NULL, *chk = NULL;
  int64_t run_id;
  size_t i, j;

  if (db_open (home, &d) == -1)
    return -1;
  if (sqlite3_exec (d.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    db_err (&d, "begin");
    goto fail;
  }
  if (sqlite3_prepare_v2 (d.db,
        "INSERT INTO lab_runs (run, lab, kind, file, started, seconds, status,"
        " vms, checks, passed, failed, skipped, report_dir, message)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        -1, &run, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2 (d.db,
        "INSERT INTO lab_vms (run_id, vm, grp, source, domain, address, status,"
        " t_boot, t_heartbeat, t_app_ready, message)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        -1, &vm, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2 (d.db,
        "INSERT INTO check_results (run_id, vm_id, vm, name, kind, status,"
        " attempts, seconds, at, message)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        -1, &chk, NULL) != SQLITE_OK) {
    db_err (&d, "prepare");
    goto rollback;
  }
  sqlite3_bind_text (run, 1, r->run_id ? r->run_id : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (run, 2, r->lab, -1, SQLITE_STATIC);
  sqlite3_bind_text (run, 3, r->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text (run, 4, r->file ? r->file : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64 (run, 5, r->started);
  sqlite3_bind_double (run, 6, r->seconds);
  sqlite3_bind_text (run, 7, r->status, -1, SQLITE_STATIC);
  sqlite3_bind_int (run, 8, r->nvms);
  sqlite3_bind_int (run, 9, r->checks);
  sqlite3_bind_int (run, 10, r->passed);
  sqlite3_bind_int (run, 11, r->failed);
  sqlite3_bind_int (run, 12, r->skipped);
  sqlite3_bind_text (run, 13, r->dir ? r->dir : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (run, 14, r->message ? r->message : "", -1, SQLITE_STATIC);
  if (sqlite3_step (run) != SQLITE_DONE) {
    db_err (&d, "record lab run");
    goto rollback;
  }
  run_id = sqlite3_last_insert_rowid (d.db);
  for (i = 0; i < r->nvms; i++) {
    const struct verify_vm_result *v = &r->vms[i];
    int64_t vm_id;
    sqlite3_reset (vm);
    sqlite3_bind_int64 (vm, 1, run_id);
    sqlite3_bind_text (vm, 2, v->name, -1, SQLITE_STATIC);
    sqlite3_bind_text (vm, 3, v->group ? v->group : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (vm, 4, v->source ? v->source : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (vm, 5, v->domain ? v->domain : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (vm, 6, v->address ? v->address : "", -1, SQLITE_STATIC);
    sqlite3_bind_text (vm, 7, verify_status_name (v->status), -1, SQLITE_STATIC);
    bind_secs (vm, 8, v->t_boot);
    bind_secs (vm, 9, v->t_heartbeat);
    bind_secs (vm, 10, v->t_app_ready);
    sqlite3_bind_text (vm, 11, v->message ? v->message : "", -1, SQLITE_STATIC);
    if (sqlite3_step (vm) != SQLITE_DONE) {
      db_err (&d, "record lab VM");
      goto rollback;
    }
    vm_id = sqlite3_last_insert_rowid (d.db);
    for (j = 0; j < v->nchecks; j++) {
      const struct verify_check_result *c = &v->checks[j];
      sqlite3_reset (chk);
      sqlite3_bind_int64 (chk, 1, run_id);
      sqlite3_bind_int64 (chk, 2, vm_id);
      sqlite3_bind_text (chk, 3, v->name, -1, SQLITE_STATIC);
      sqlite3_bind_text (chk, 4, c->name, -1, SQLITE_STATIC);
      sqlite3_bind_text (chk, 5, c->kind ? c->kind : "", -1, SQLITE_STATIC);
      sqlite3_bind_text (chk, 6, verify_status_name (c->status), -1, SQLITE_STATIC);
      sqlite3_bind_int (chk, 7, c->attempts);
      sqlite3_bind_double (chk, 8, c->seconds);
      sqlite3_bind_double (chk, 9, c->at);
      sqlite3_bind_text (chk, 10, c->message ? c->message : "", -1, SQLITE_STATIC);
      if (sqlite3_step (chk) != SQLITE_DONE) {
        db_err (&d, "record check");
        goto rollback;
      }
    }
  }
  sqlite3_finalize (run);
  sqlite3_finalize (vm);
  sqlite3_finalize (chk);
  if (sqlite3_exec (d.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    db_err (&d, "commit");
    sqlite3_exec (d.db, "ROLLBACK", NULL, NULL, NULL);
    goto fail;
  }
  db_close (&d);
  return 0;
 rollback:
  {
    ERROR_SAVE (e);
    sqlite3_finalize (run);
    sqlite3_finalize (vm);
    sqlite3_finalize (chk);
    sqlite3_exec (d.db, "ROLLBACK", NULL, NULL, NULL);
    ERROR_RESTORE (e);
  }
 fail:
  db_close (&d);
  return -1;
}

static json_t *
col_secs (sqlite3_stmt *s, int i)
{
  return sqlite3_column_type (s, i) == SQLITE_NULL ? json_null ()
                                                   : json_real (sqlite3_column_double (s, i));
}

static const char *
col_text (sqlite3_stmt *s, int i)
{
  const unsigned char *t = sqlite3_column_text (s, i);
  return t ? (const char *) t : "";
}

json_t *
verify_history_json (const char *home, const char *vmname)
{
  struct db d;
  sqlite3_stmt *s = NULL;
  json_t *a;
  int rc;

  if (db_open (home, &d) == -1)
    return NULL;
  if (sqlite3_prepare_v2 (d.db,
        "SELECT r.run, r.lab, r.kind, r.started, v.status, v.source,"
        " v.t_boot, v.t_heartbeat, v.t_app_ready, r.report_dir, v.message,"
        " (SELECT group_concat(c.name, '; ') FROM check_results c"
        "   WHERE c.vm_id = v.id AND c.status = 'fail')"
        " FROM lab_vms v JOIN lab_runs r ON r.id = v.run_id"
        " WHERE v.vm = ?1 ORDER BY r.started, r.id", -1, &s, NULL) != SQLITE_OK) {
    db_err (&d, "history");
    db_close (&d);
    return NULL;
  }
  sqlite3_bind_text (s, 1, vmname, -1, SQLITE_STATIC);
  a = json_array ();
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    char iso[32];
    time_t t = sqlite3_column_int64 (s, 3);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_array_append_new (a, json_pack (
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s}",
      "run", col_text (s, 0), "lab", col_text (s, 1), "kind", col_text (s, 2),
      "started", iso, "status", col_text (s, 4), "source", col_text (s, 5),
      "t_boot", col_secs (s, 6), "t_heartbeat", col_secs (s, 7),
      "t_app_ready", col_secs (s, 8), "report_dir", col_text (s, 9),
      "message", col_text (s, 10), "failed_checks", col_text (s, 11)));
  }
  if (rc != SQLITE_DONE) {
    db_err (&d, "history");
    json_decref (a);
    a = NULL;
  }
  sqlite3_finalize (s);
  db_close (&d);
  return a;
}
