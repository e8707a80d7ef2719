/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the run history (history.c) through the catalog: runs
 * recorded with their VMs and checks come back for one VM, oldest run
 * first, with the times not reached as null and the failed checks named;
 * a run that cannot be recorded whole leaves nothing behind.
 *
 * The run chain: runs recorded one after the other check intact; a VM
 * row, a check row or a run row edited with SQL is found ("edited",
 * naming the run), and so is a run whose hash was removed ("unhashed");
 * putting the value back makes it intact again (the hash is of the
 * values); a run deleted from the middle is found at the run after it
 * ("deleted"); a run deleted from the end is not (the documented limit:
 * its signed report shows it).  Recording seals the run's reports: signed
 * with the appliance key and report.json carries the run's chain hash;
 * with a key of loose permissions the reports are written unsigned and
 * say so.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "verify/verify.h"
#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static void
add_check (struct verify_vm_result *v, const char *name, enum verify_status st)
{
  struct verify_check_result *c = &v->checks[v->nchecks++];

  c->name = xstrdup (name);
  c->kind = "http";
  c->status = st;
  c->message = xstrdup (st == VERIFY_PASS ? "HTTP 200" : "HTTP 503, expected 200");
  c->attempts = 1;
  c->seconds = 0.5;
  c->at = 7.25;
}

/* A run of lab "nightly" with VM vm (and db1): vm passes with every time
 * if pass, or fails two checks without an app-ready time. */
static struct verify_report *
make_report (const char *id, time_t started, const char *vm, bool pass)
{
  struct verify_report *r = xcalloc (1, sizeof *r);
  struct verify_vm_result *v;

  r->lab = xstrdup ("nightly");
  r->run_id = xstrdup (id);
  r->kind = xstrdup ("run");
  r->dir = xasprintf ("/reports/%s", id);
  r->status = xstrdup (pass ? "passed" : "failed");
  r->started = started;
  r->seconds = 30;
  r->vms = xcalloc (2, sizeof *r->vms);
  r->nvms = 2;
  v = &r->vms[0];
  v->name = vm ? xstrdup (vm) : NULL;
  v->group = xstrdup ("web");
  v->source = xstrdup ("web1@20261122T045506Z");
  v->status = pass ? VERIFY_PASS : VERIFY_FAIL;
  v->t_boot = 3.5;
  v->t_heartbeat = pass ? 4.5 : -1;
  v->t_app_ready = pass ? 7.25 : -1;
  v->checks = xcalloc (3, sizeof *v->checks);
  add_check (v, "http http://{address}/", pass ? VERIFY_PASS : VERIFY_FAIL);
  add_check (v, "heartbeat", VERIFY_PASS);
  add_check (v, "tcp 22", pass ? VERIFY_PASS : VERIFY_FAIL);
  if (!pass)
    v->message = xstrdup ("2 checks failed");
  v = &r->vms[1];
  v->name = xstrdup ("db1");
  v->status = VERIFY_PASS;
  v->t_boot = v->t_heartbeat = v->t_app_ready = 2;
  v->checks = xcalloc (1, sizeof *v->checks);
  add_check (v, "heartbeat", VERIFY_PASS);
  r->checks = r->passed = 4;
  return r;
}

static void
record (struct catalog *cat, const char *id, time_t started, const char *vm,
        bool pass, int expect)
{
  struct verify_report *r = make_report (id, started, vm, pass);

  CHECK (verify_history_record (cat, r) == expect);
  verify_report_free (r);
}

static const char *
get_str (json_t *o, const char *key)
{
  const char *s = json_string_value (json_object_get (o, key));
  return s ? s : "(none)";
}

static void
test_history (struct catalog *cat)
{
  json_t *h, *o;

  /* Recorded newest first: the history still lists the oldest first. */
  record (cat, "run2", 1795000600, "web1", false, 0);
  record (cat, "run1", 1795000000, "web1", true, 0);
  /* A VM without a name cannot be recorded: its run is not either. */
  record (cat, "run3", 1795001200, NULL, true, -1);

  h = verify_history_json (cat, "web1");
  CHECK (h && json_array_size (h) == 2);
  o = json_array_get (h, 0);
  CHECK (strcmp (get_str (o, "run"), "run1") == 0);
  CHECK (strcmp (get_str (o, "lab"), "nightly") == 0);
  CHECK (strcmp (get_str (o, "kind"), "run") == 0);
  CHECK (strcmp (get_str (o, "started"), "2026-11-18T11:06:40Z") == 0);
  CHECK (strcmp (get_str (o, "status"), "pass") == 0);
  CHECK (strcmp (get_str (o, "source"), "web1@20261122T045506Z") == 0);
  CHECK (json_real_value (json_object_get (o, "t_boot")) == 3.5);
  CHECK (json_real_value (json_object_get (o, "t_app_ready")) == 7.25);
  CHECK (strcmp (get_str (o, "report_dir"), "/reports/run1") == 0);
  CHECK (strcmp (get_str (o, "failed_checks"), "") == 0);
  o = json_array_get (h, 1);
  CHECK (strcmp (get_str (o, "run"), "run2") == 0);
  CHECK (strcmp (get_str (o, "status"), "fail") == 0);
  CHECK (json_real_value (json_object_get (o, "t_boot")) == 3.5);
  CHECK (json_is_null (json_object_get (o, "t_heartbeat")));
  CHECK (json_is_null (json_object_get (o, "t_app_ready")));
  CHECK (strcmp (get_str (o, "message"), "2 checks failed") == 0);
  CHECK (strcmp (get_str (o, "failed_checks"), "http http://{address}/; tcp 22") == 0);
  json_decref (h);

  /* db1 was in both recorded runs, not in the one rolled back. */
  h = verify_history_json (cat, "db1");
  CHECK (h && json_array_size (h) == 2);
  json_decref (h);
  h = verify_history_json (cat, "nosuchvm");
  CHECK (h && json_array_size (h) == 0);
  json_decref (h);
}

/* ---- the chain ------------------------------------------------------------- */

static void __attribute__((format (printf, 2, 3)))
db_exec (const char *home, const char *fmt, ...)
{
  CLEANUP_FREE char *path = xasprintf ("%s/catalog.db", home);
  CLEANUP_FREE char *sql = NULL;
  sqlite3 *db;
  va_list ap;

  va_start (ap, fmt);
  CHECK (vasprintf (&sql, fmt, ap) >= 0);
  va_end (ap);
  CHECK (sqlite3_open (path, &db) == SQLITE_OK);
  CHECK (sqlite3_exec (db, sql, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close (db);
}

static void
chain_expect (struct catalog *cat, bool broken, const char *problem,
              const char *run, size_t checked)
{
  struct verify_chain_check k;

  CHECK (verify_history_check (cat, &k) == 0);
  CHECK (k.broken == broken);
  if (broken) {
    CHECK (k.problem && strcmp (k.problem, problem) == 0);
    CHECK (strcmp (k.run, run) == 0);
    CHECK (strstr (k.message, run) != NULL);
    if (!k.problem || strcmp (k.problem, problem) != 0 || strcmp (k.run, run) != 0)
      fprintf (stderr, "chain: %s\n", k.message);
  }
  else
    CHECK (k.checked == checked);
}

static void
test_chain (const char *home)
{
  struct catalog *cat = catalog_open (home);
  const char *id;

  CHECK (cat != NULL);
  record (cat, "c1", 1795000000, "web1", true, 0);
  record (cat, "c2", 1795000600, "web1", true, 0);
  record (cat, "c3", 1795001200, "web1", false, 0);
  record (cat, "c4", 1795001800, "web1", true, 0);
  chain_expect (cat, false, NULL, NULL, 4);

  id = "(SELECT id FROM lab_runs WHERE run = 'c2')";
  db_exec (home, "UPDATE lab_vms SET t_app_ready = 1.0 WHERE vm = 'web1' AND run_id = %s", id);
  chain_expect (cat, true, "edited", "c2", 0);
  db_exec (home, "UPDATE lab_vms SET t_app_ready = 7.25 WHERE vm = 'web1' AND run_id = %s", id);
  chain_expect (cat, false, NULL, NULL, 4);
  db_exec (home, "UPDATE check_results SET status = 'pass' WHERE status = 'fail'");
  chain_expect (cat, true, "edited", "c3", 0);
  db_exec (home, "UPDATE check_results SET status = 'fail' WHERE status = 'pass'"
           " AND message LIKE '%%503%%'");
  chain_expect (cat, false, NULL, NULL, 4);
  db_exec (home, "UPDATE lab_runs SET status = 'passed' WHERE run = 'c3'");
  chain_expect (cat, true, "edited", "c3", 0);
  db_exec (home, "UPDATE lab_runs SET status = 'failed' WHERE run = 'c3'");
  chain_expect (cat, false, NULL, NULL, 4);
  db_exec (home, "UPDATE lab_runs SET hash = NULL, prev_hash = NULL WHERE run = 'c3'");
  chain_expect (cat, true, "unhashed", "c3", 0);

  /* the last run deleted: not seen (only its signed report shows it) */
  db_exec (home, "DELETE FROM lab_runs WHERE run IN ('c3', 'c4')");
  record (cat, "c5", 1795002400, "web1", true, 0);
  chain_expect (cat, false, NULL, NULL, 3);
  db_exec (home, "DELETE FROM lab_runs WHERE run = 'c5'");
  chain_expect (cat, false, NULL, NULL, 2);
  /* a run deleted from the middle: its successor names the gap */
  record (cat, "c6", 1795003000, "web1", true, 0);
  db_exec (home, "DELETE FROM lab_runs WHERE run = 'c2'");
  chain_expect (cat, true, "deleted", "c6", 0);
  catalog_close (cat);
}

/* Recording seals the reports written in r->dir. */
static void
test_seal (const char *home)
{
  CLEANUP_FREE char *rdir = xasprintf ("%s/reports/s1", home);
  CLEANUP_FREE char *json = xasprintf ("%s/report.json", rdir);
  CLEANUP_FREE char *html = xasprintf ("%s/report.html", rdir);
  CLEANUP_FREE char *junit = xasprintf ("%s/junit.xml", rdir);
  CLEANUP_FREE char *pub = xasprintf ("%s/keys/report-ed25519.pub.pem", home);
  CLEANUP_FREE char *priv = xasprintf ("%s/keys/report-ed25519.pem", home);
  const char *files[] = { json, html, junit };
  struct catalog *cat = catalog_open (home);
  struct verify_report *r = make_report ("s1", 1795009000, "web1", true);
  struct verify_key *k;
  json_t *j, *ev;
  size_t i;

  CHECK (cat && mkdir_p_private (rdir) == 0);
  free (r->dir);
  r->dir = xstrdup (rdir);
  CHECK (verify_report_write (r) == 0);
  CHECK (verify_history_record (cat, r) == 0);
  k = verify_key_public (pub);
  CHECK (k != NULL);
  for (i = 0; k && i < 3; i++) {
    enum verify_sig_verdict v = VERIFY_SIG_MALFORMED;
    char sk[VERIFY_KEY_FPR_LEN + 1], msg[512];
    CHECK (verify_sig_check (k, files[i], &v, sk, msg, sizeof msg) == 0);
    CHECK (v == VERIFY_SIG_GOOD);
  }
  j = json_load_file (json, 0, NULL);
  ev = json_object_get (j, "evidence");
  CHECK (json_is_true (json_object_get (ev, "signed")));
  CHECK (k && strcmp (get_str (ev, "key"), verify_key_fingerprint (k)) == 0);
  CHECK (strlen (get_str (json_object_get (ev, "chain"), "hash")) == SHA256_HEX_LEN);
  json_decref (j);
  verify_key_free (k);

  /* a key others can read: written, not signed, and it says so */
  CHECK (chmod (priv, 0640) == 0);
  CHECK (verify_history_record (cat, r) == 0);
  j = json_load_file (json, 0, NULL);
  ev = json_object_get (j, "evidence");
  CHECK (json_is_false (json_object_get (ev, "signed")));
  CHECK (strstr (get_str (ev, "unsigned_reason"), "mode 0640") != NULL);
  json_decref (j);
  for (i = 0; i < 3; i++) {
    CLEANUP_FREE char *sig = xasprintf ("%s.sig", files[i]);
    CHECK (access (sig, F_OK) == -1);
  }
  verify_report_free (r);
  catalog_close (cat);
}

int
main (void)
{
  char dir[] = "/tmp/bootback-test-history.XXXXXX";
  struct catalog *cat;

  if (!mkdtemp (dir)) {
    perror ("mkdtemp");
    return 1;
  }
  cat = catalog_open (dir);
  if (!cat) {
    fprintf (stderr, "catalog_open: %s\n", error_msg ());
    return 1;
  }
  test_history (cat);
  catalog_close (cat);
  {
    CLEANUP_FREE char *h1 = xasprintf ("%s/chain", dir);
    CLEANUP_FREE char *h2 = xasprintf ("%s/seal", dir);
    test_chain (h1);
    test_seal (h2);
  }
  {
    char *cmd = xasprintf ("rm -rf %s", dir);
    CHECK (system (cmd) == 0);
    free (cmd);
  }
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("verify history ok\n");
  return 0;
}
