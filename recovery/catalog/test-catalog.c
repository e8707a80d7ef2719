/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Catalog migrations: a catalog of every earlier schema version, made by
 * hand here as the bootback of that version made it (the CREATE
 * statements are copied from the history of catalog.c: version 1 from
 * commit 3e82630, version 2 from 7f5fc82, version 3 from f475d15), with
 * rows in it, is opened by
 * the current code: its rows are all there, read through the catalog's
 * API, the tables of the later versions work, and PRAGMA user_version
 * is the current version.  Also: an empty file and a new home start at
 * the current version; a migration that fails leaves the catalog as it
 * was (one transaction); a catalog newer than this code is refused;
 * opening a current catalog changes nothing.  The lab runs of version 3
 * stay as they were, unchained (no hash), and a run recorded after the
 * migration is the first of the chain.
 */
#include <assert.h>
#include <sqlite3.h>

#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

/* Schema version 1 (commit 3e82630). */
static const char schema_v1[] =
  "CREATE TABLE repos ("
  "  id INTEGER PRIMARY KEY,"
  "  location TEXT NOT NULL UNIQUE,"
  "  uuid TEXT NOT NULL,"
  "  chunk_size INTEGER NOT NULL,"
  "  is_default INTEGER NOT NULL DEFAULT 0,"
  "  added INTEGER NOT NULL);"
  "CREATE TABLE points ("
  "  id INTEGER PRIMARY KEY,"
  "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
  "  vm TEXT NOT NULL,"
  "  point TEXT NOT NULL,"
  "  time INTEGER NOT NULL,"
  "  parent TEXT,"
  "  kind TEXT NOT NULL,"
  "  consistency TEXT NOT NULL,"
  "  source TEXT NOT NULL,"
  "  chunk_size INTEGER NOT NULL,"
  "  has_domain_xml INTEGER NOT NULL,"
  "  protected INTEGER NOT NULL DEFAULT 0,"
  "  bytes_read INTEGER, new_chunks INTEGER, new_bytes INTEGER,"
  "  stored_bytes INTEGER, reused_chunks INTEGER, seconds REAL,"
  "  UNIQUE (repo_id, vm, point));"
  "CREATE TABLE disks ("
  "  point_id INTEGER NOT NULL REFERENCES points(id) ON DELETE CASCADE,"
  "  seq INTEGER NOT NULL,"
  "  name TEXT NOT NULL,"
  "  size INTEGER NOT NULL,"
  "  index_sha256 TEXT NOT NULL,"
  "  format TEXT,"
  "  zero_chunks INTEGER NOT NULL,"
  "  PRIMARY KEY (point_id, name));"
  "CREATE TABLE jobs ("
  "  id INTEGER PRIMARY KEY,"
  "  kind TEXT NOT NULL,"
  "  repo_id INTEGER,"
  "  vm TEXT,"
  "  point TEXT,"
  "  started REAL NOT NULL,"
  "  ended REAL,"
  "  status TEXT NOT NULL,"
  "  message TEXT,"
  "  stats TEXT);"
  "CREATE INDEX points_vm ON points (repo_id, vm, time);";

/* What version 2 added (commit 7f5fc82). */
static const char schema_v2[] =
  "CREATE TABLE sessions ("
  "  id INTEGER PRIMARY KEY,"
  "  name TEXT NOT NULL,"
  "  vm TEXT NOT NULL,"
  "  point TEXT NOT NULL,"
  "  repo TEXT NOT NULL,"
  "  uri TEXT NOT NULL DEFAULT '',"
  "  state TEXT NOT NULL,"
  "  created REAL NOT NULL,"
  "  updated REAL NOT NULL,"
  "  supervisor_pid INTEGER NOT NULL DEFAULT 0,"
  "  data TEXT NOT NULL DEFAULT '{}',"
  "  message TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX sessions_name ON sessions (name, id);";

/* What version 3 added (commit f475d15). */
static const char schema_v3[] =
  "CREATE TABLE lab_runs ("
  "  id INTEGER PRIMARY KEY,"
  "  run TEXT NOT NULL,"
  "  lab TEXT NOT NULL,"
  "  kind TEXT NOT NULL,"
  "  file TEXT NOT NULL DEFAULT '',"
  "  started INTEGER NOT NULL,"
  "  seconds REAL,"
  "  status TEXT NOT NULL,"
  "  vms INTEGER, checks INTEGER, passed INTEGER, failed INTEGER, skipped INTEGER,"
  "  report_dir TEXT NOT NULL DEFAULT '',"
  "  message TEXT NOT NULL DEFAULT '');"
  "CREATE TABLE lab_vms ("
  "  id INTEGER PRIMARY KEY,"
  "  run_id INTEGER NOT NULL REFERENCES lab_runs(id) ON DELETE CASCADE,"
  "  vm TEXT NOT NULL,"
  "  grp TEXT NOT NULL DEFAULT '',"
  "  source TEXT NOT NULL DEFAULT '',"
  "  domain TEXT NOT NULL DEFAULT '',"
  "  address TEXT NOT NULL DEFAULT '',"
  "  status TEXT NOT NULL,"
  "  t_boot REAL, t_heartbeat REAL, t_app_ready REAL,"
  "  message TEXT NOT NULL DEFAULT '');"
  "CREATE TABLE check_results ("
  "  id INTEGER PRIMARY KEY,"
  "  run_id INTEGER NOT NULL REFERENCES lab_runs(id) ON DELETE CASCADE,"
  "  vm_id INTEGER NOT NULL REFERENCES lab_vms(id) ON DELETE CASCADE,"
  "  vm TEXT NOT NULL,"
  "  name TEXT NOT NULL,"
  "  kind TEXT NOT NULL,"
  "  status TEXT NOT NULL,"
  "  attempts INTEGER NOT NULL,"
  "  seconds REAL NOT NULL,"
  "  at REAL,"
  "  message TEXT NOT NULL DEFAULT '');"
  "CREATE INDEX lab_vms_vm ON lab_vms (vm, run_id);"
  "CREATE INDEX check_results_vm ON check_results (vm_id);";

/* Rows as a bootback of version 1 wrote them: one repository (the
 * default), a point with two disks, a job. */
#define SHA_A "aa00000000000000000000000000000000000000000000000000000000000001"
#define SHA_B "bb00000000000000000000000000000000000000000000000000000000000002"
static const char rows_v1[] =
  "INSERT INTO repos VALUES (1, '/srv/repo', "
  "  '0f8e2c1a-1111-4222-8333-444455556666', 1048576, 1, 1700000000);"
  "INSERT INTO points VALUES (7, 1, 'web1', '20261101T120000Z', 1793534400,"
  "  '', 'full', 'crash', 'import', 1048576, 1, 1,"
  "  5000, 3, 3000, 2000, 1, 1.5);"
  "INSERT INTO disks VALUES (7, 0, 'vda', 10485760, '" SHA_A "', 'qcow2', 4);"
  "INSERT INTO disks VALUES (7, 1, 'vdb', 2097152, '" SHA_B "', 'raw', 0);"
  "INSERT INTO jobs VALUES (1, 'import', 1, 'web1', '20261101T120000Z',"
  "  1793534400, 1793534401.5, 'ok', NULL, '{}');";

static const char rows_v2[] =
  "INSERT INTO sessions VALUES (3, 'web1-instant', 'web1', '20261101T120000Z',"
  "  '/srv/repo', 'qemu:///system', 'running', 1793534500, 1793534600, 4242,"
  "  '{\"disks\":1}', '');";

/* A lab run of version 3 with its VM and check. */
static const char rows_v3[] =
  "INSERT INTO lab_runs VALUES (5, 'abc123', 'nightly', 'run', '/etc/lab.yaml',"
  "  1793534500, 42.5, 'passed', 1, 1, 1, 0, 0, '/reports/abc123', '');"
  "INSERT INTO lab_vms VALUES (9, 5, 'web1', 'web', 'web1@20261101T120000Z',"
  "  'bbl-abc123-web1', '10.0.0.2', 'pass', 3.5, 4.5, 7.25, '');"
  "INSERT INTO check_results VALUES (11, 5, 9, 'web1', 'heartbeat', 'heartbeat',"
  "  'pass', 1, 0.5, 4.5, '');";

static char home[] = "/tmp/test-catalog.XXXXXX";

/* ---- the old catalog, by hand ----------------------------------------------------- */

static void
sql (sqlite3 *db, const char *text)
{
  char *msg = NULL;

  if (sqlite3_exec (db, text, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf (stderr, "test-catalog: %s: %s\n", text, msg);
    exit (1);
  }
}

static char *
db_path (void)
{
  return xasprintf ("%s/catalog.db", home);
}

/* A catalog.db of version (0: an empty file), made afresh. */
static void
old_catalog (int version, const char *extra_sql)
{
  CLEANUP_FREE char *path = db_path ();
  CLEANUP_FREE char *cmd = xasprintf ("rm -f %s %s-wal %s-shm", path, path, path);
  sqlite3 *db;
  char pragma[64];

  assert (system (cmd) == 0);
  assert (sqlite3_open (path, &db) == SQLITE_OK);
  if (version >= 1) {
    sql (db, "PRAGMA journal_mode = WAL");
    sql (db, schema_v1);
    sql (db, rows_v1);
  }
  if (version >= 2) {
    sql (db, schema_v2);
    sql (db, rows_v2);
  }
  if (version >= 3) {
    sql (db, schema_v3);
    sql (db, rows_v3);
  }
  if (extra_sql)
    sql (db, extra_sql);
  snprintf (pragma, sizeof pragma, "PRAGMA user_version = %d", version);
  sql (db, pragma);
  assert (sqlite3_close (db) == SQLITE_OK);
}

/* An integer the catalog holds, read beside the catalog's connection. */
static int64_t
db_int (const char *query)
{
  CLEANUP_FREE char *path = db_path ();
  sqlite3_stmt *s;
  sqlite3 *db;
  int64_t v;

  assert (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
  assert (sqlite3_prepare_v2 (db, query, -1, &s, NULL) == SQLITE_OK);
  assert (sqlite3_step (s) == SQLITE_ROW);
  v = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  sqlite3_close (db);
  return v;
}

static bool
table_exists (const char *name)
{
  CLEANUP_FREE char *q = xasprintf ("SELECT count(*) FROM sqlite_master WHERE "
                                    "type = 'table' AND name = '%s'", name);
  return db_int (q) == 1;
}

/* ---- the rows, read through the current API --------------------------------------- */

static int
repo_cb (void *opaque, const struct catalog_repo *r)
{
  int *n = opaque;

  assert (r->id == 1 && strcmp (r->location, "/srv/repo") == 0);
  assert (strcmp (r->uuid, "0f8e2c1a-1111-4222-8333-444455556666") == 0);
  assert (r->chunk_size == 1048576 && r->is_default && r->points == 1);
  (*n)++;
  return 0;
}

static int
point_cb (void *opaque, const struct repo_manifest *m)
{
  int *n = opaque;
  char hex[2 * REPO_DIGEST_LEN + 1];

  assert (strcmp (m->vm, "web1") == 0 && strcmp (m->id, "20261101T120000Z") == 0);
  assert (m->time == 1793534400 && strcmp (m->kind, "full") == 0);
  assert (strcmp (m->consistency, "crash") == 0 &&
          strcmp (m->source, "import") == 0);
  assert (m->chunk_size == 1048576 && m->has_domain_xml && m->protected);
  assert (m->stats.bytes_read == 5000 && m->stats.new_chunks == 3 &&
          m->stats.new_bytes == 3000 && m->stats.stored_bytes == 2000 &&
          m->stats.reused_chunks == 1 && m->stats.seconds == 1.5);
  assert (m->ndisks == 2);
  assert (strcmp (m->disks[0].name, "vda") == 0 && m->disks[0].size == 10485760);
  assert (strcmp (m->disks[0].format, "qcow2") == 0 && m->disks[0].zero_chunks == 4);
  hex_encode (m->disks[0].index_sha256, REPO_DIGEST_LEN, hex);
  assert (strcmp (hex, SHA_A) == 0);
  assert (strcmp (m->disks[1].name, "vdb") == 0 && m->disks[1].size == 2097152);
  hex_encode (m->disks[1].index_sha256, REPO_DIGEST_LEN, hex);
  assert (strcmp (hex, SHA_B) == 0);
  (*n)++;
  return 0;
}

static int
session_cb (void *opaque, const struct catalog_session *s)
{
  int *n = opaque;

  assert (s->id == 3 && strcmp (s->name, "web1-instant") == 0);
  assert (strcmp (s->vm, "web1") == 0 && strcmp (s->point, "20261101T120000Z") == 0);
  assert (strcmp (s->repo, "/srv/repo") == 0 && strcmp (s->uri, "qemu:///system") == 0);
  assert (strcmp (s->state, "running") == 0 && s->supervisor_pid == 4242);
  assert (s->created == 1793534500 && s->updated == 1793534600);
  assert (strcmp (s->data, "{\"disks\":1}") == 0 && strcmp (s->message, "") == 0);
  (*n)++;
  return 0;
}

/* The version 1 rows are there, and the tables of every later version
 * take rows. */
static void
check_v1_rows (struct catalog *c)
{
  CLEANUP_FREE char *def = NULL;
  int err, n = 0;

  def = catalog_repo_default (c, &err);
  assert (def && strcmp (def, "/srv/repo") == 0);
  assert (catalog_repo_list (c, repo_cb, &n) == 0 && n == 1);
  n = 0;
  assert (catalog_point_list (c, 1, "web1", point_cb, &n) == 0 && n == 1);
  assert (db_int ("SELECT count(*) FROM jobs WHERE status = 'ok'") == 1);
}

static int
token_cb (void *opaque, const struct catalog_token *t)
{
  int *n = opaque;

  if (strcmp (t->name, "old") == 0)   /* added without a role */
    assert (strcmp (t->role, "admin") == 0);
  else
    assert (strcmp (t->name, "ci") == 0 && strcmp (t->sha256, "ab12") == 0 &&
            strcmp (t->role, "read") == 0);
  assert (t->created > 0 && t->last_used >= 0);
  (*n)++;
  return 0;
}

/* version 6: API tokens, a name once, revoked by name; version 15: their
 * roles, admin for a token added before (web/web.h) */
static void
check_tokens (struct catalog *c)
{
  CLEANUP_FREE char *path = db_path ();
  sqlite3 *db;
  int n = 0;

  assert (catalog_token_add (c, "ci", "ab12", "read") == 0);
  assert (catalog_token_add (c, "ci", "cd34", "read") == 1);
  assert (strstr (error_msg (), "token ci exists"));
  assert (catalog_token_used (c, "ci") == 0);
  assert (sqlite3_open (path, &db) == SQLITE_OK);
  sql (db, "INSERT INTO api_tokens (name, sha256, created) VALUES "
       "('old', 'ef56', 1)");
  assert (sqlite3_close (db) == SQLITE_OK);
  assert (catalog_token_list (c, token_cb, &n) == 0 && n == 2);
  assert (catalog_token_revoke (c, "old") == 0);
  assert (db_int ("SELECT count(*) FROM api_tokens WHERE last_used > 0") == 1);
  assert (catalog_token_revoke (c, "ci") == 0);
  assert (catalog_token_revoke (c, "ci") == 1);
  assert (strstr (error_msg (), "no token named ci"));
  assert (db_int ("SELECT count(*) FROM api_tokens") == 0);
}

/* version 7: ransomware scores of points (web1's point of version 1) */
static void
check_scores (struct catalog *c)
{
  struct repo_manifest m = { .vm = "web1", .id = "20261101T120000Z",
                             .time = 1793534400 };
  struct score_stats st = { .has_prev = true, .new_bytes = 10, .raw_bytes = -1 };
  struct score_verdict v = { .score = 7, .suspicious = true, .reason = "r" };
  struct catalog_score got;
  struct score_stats hist[4];
  size_t n;

  assert (catalog_score_get (c, 1, "web1", m.id, &got) == 0);
  assert (catalog_score_put (c, 1, &m, &st, &v) == 0);
  assert (catalog_score_get (c, 1, "web1", m.id, &got) == 1);
  assert (got.suspicious && !got.unflagged && got.st.raw_bytes == -1 &&
          got.st.new_bytes == 10 && strcmp (got.reason, "r") == 0);
  /* a flagged point is not part of the history until unflagged */
  assert (catalog_score_history (c, 1, "web1", INT32_MAX, hist, 4, &n) == 0 &&
          n == 0);
  assert (catalog_score_unflag (c, 1, "web1", m.id) == 0);
  assert (catalog_score_history (c, 1, "web1", INT32_MAX, hist, 4, &n) == 0 &&
          n == 1 && hist[0].new_bytes == 10);
  assert (catalog_score_unflag (c, 1, "web2", m.id) == -1);
}

static void
check_later_tables (struct catalog *c)
{
  struct catalog_session s = {
    .name = "new", .vm = "web2", .point = "20261102T000000Z",
    .repo = "/srv/repo", .uri = "", .state = "starting",
  };
  int64_t id;

  struct catalog_trace t = {
    .vm = "web2", .disk = "vda", .point = "20261102T000000Z", .repo = "/srv/repo",
    .seconds = 4.5, .chunks = 1, .text = "bootback-trace 1\nchunk-size 65536\n0 0\n",
  };
  char point[TIMESTAMP_LEN + 1];
  CLEANUP_FREE char *text = NULL;

  assert (catalog_session_add (c, &s, &id) == 0 && id > 0);
  assert (table_exists ("lab_runs") && table_exists ("lab_vms") &&
          table_exists ("check_results"));
  /* version 5: one boot trace per VM and disk, the newest */
  assert (catalog_trace_get (c, "web2", "vda", point, &text) == 1 && !text);
  assert (catalog_trace_put (c, &t) == 0);
  t.point = "20261103T000000Z";
  assert (catalog_trace_put (c, &t) == 0);
  assert (catalog_trace_get (c, "web2", "vda", point, &text) == 0);
  assert (strcmp (point, "20261103T000000Z") == 0 && strcmp (text, t.text) == 0);
  assert (db_int ("SELECT count(*) FROM boot_traces") == 1);
  /* version 14: point directories without a row, due to be read (the rows are
   * catalog_points_sync's; tests/test-catalog-unfinished.sh) */
  assert (table_exists ("unfinished_dirs"));
  assert (catalog_unfinished_clear (c, 1) == 0);
  check_tokens (c);
  if (db_int ("SELECT count(*) FROM points") > 0)   /* web1's point */
    check_scores (c);
}

static void
check_version (void)
{
  assert (db_int ("PRAGMA user_version") == catalog_schema_version ());
}

/* ---- the tests ------------------------------------------------------------------------ */

static void
test_from_v0 (void)
{
  struct catalog *c;

  old_catalog (0, NULL);                 /* an empty file */
  c = catalog_open (home);
  assert (c);
  check_version ();
  check_later_tables (c);
  catalog_close (c);
}

static void
test_from_v1 (void)
{
  struct catalog *c;

  old_catalog (1, NULL);
  c = catalog_open (home);
  assert (c);
  check_version ();
  check_v1_rows (c);
  check_later_tables (c);
  catalog_close (c);
}

static void
test_from_v2 (void)
{
  struct catalog *c;
  int n = 0;

  old_catalog (2, NULL);
  c = catalog_open (home);
  assert (c);
  check_version ();
  check_v1_rows (c);
  assert (catalog_session_list (c, 3, session_cb, &n) == 0 && n == 1);
  check_later_tables (c);
  catalog_close (c);

  /* opened again: nothing changes */
  c = catalog_open (home);
  assert (c);
  check_version ();
  check_v1_rows (c);
  assert (db_int ("SELECT count(*) FROM sessions") == 2);
  catalog_close (c);
}

/* A migration that fails half-way (version 2's table is made, then its
 * index name is taken) leaves the catalog at its version, with its rows,
 * and nothing of the later versions: not even that table. */
/* The run chain after a migration from version 3: the old run unchained,
 * a new one chained first (prev ''), its hash what its rows give. */
struct links {
  int n;
  int64_t id[4];
  bool hashed[4], prev_empty[4], matches[4];
};

static int
link_cb (void *opaque, const struct catalog_lab_link *l)
{
  struct links *k = opaque;

  assert (k->n < 4);
  k->id[k->n] = l->id;
  k->hashed[k->n] = l->hash != NULL;
  k->prev_empty[k->n] = l->prev_hash && !*l->prev_hash;
  k->matches[k->n] = l->hash && strcmp (l->hash, l->computed) == 0;
  k->n++;
  return 0;
}

static void
test_from_v3 (void)
{
  const struct catalog_lab_run run = {
    .run = "def456", .lab = "nightly", .kind = "verify", .file = "",
    .started = 1793538000, .seconds = 9, .status = "failed", .vms = 0,
    .report_dir = "", .message = "",
  };
  char prev[SHA256_HEX_LEN + 1], hash[SHA256_HEX_LEN + 1];
  struct links k = { 0 };
  struct catalog *c;
  int64_t id;

  old_catalog (3, NULL);
  c = catalog_open (home);
  assert (c);
  check_version ();
  check_v1_rows (c);
  assert (db_int ("SELECT count(*) FROM lab_runs WHERE id = 5 AND hash IS NULL"
                  " AND prev_hash IS NULL") == 1);
  assert (db_int ("SELECT count(*) FROM check_results WHERE run_id = 5") == 1);
  assert (catalog_begin (c) == 0);
  assert (catalog_lab_run_add (c, &run, &id) == 0 && id == 6);
  assert (catalog_lab_run_chain (c, id, prev, hash) == 0);
  assert (catalog_commit (c) == 0);
  assert (prev[0] == '\0' && strlen (hash) == SHA256_HEX_LEN);
  assert (catalog_lab_chain (c, link_cb, &k) == 0 && k.n == 2);
  assert (k.id[0] == 5 && !k.hashed[0]);
  assert (k.id[1] == 6 && k.hashed[1] && k.prev_empty[1] && k.matches[1]);
  catalog_close (c);
}

static void
test_failed_migration (void)
{
  old_catalog (1, "CREATE INDEX sessions_name ON points (vm)");
  assert (catalog_open (home) == NULL);
  assert (strstr (error_msg (), "sessions_name"));
  assert (!table_exists ("sessions"));
  assert (db_int ("PRAGMA user_version") == 1);
  assert (db_int ("SELECT count(*) FROM points") == 1);
  assert (db_int ("SELECT count(*) FROM disks") == 2);
  assert (!table_exists ("lab_runs"));
}

static void
test_newer_refused (void)
{
  CLEANUP_FREE char *pragma = xasprintf ("PRAGMA user_version = %d",
                                         catalog_schema_version () + 1);
  CLEANUP_FREE char *path = db_path ();
  sqlite3 *db;

  old_catalog (2, NULL);
  assert (sqlite3_open (path, &db) == SQLITE_OK);
  sql (db, pragma);
  sqlite3_close (db);
  assert (catalog_open (home) == NULL);
  assert (strstr (error_msg (), "newer than this bootback understands"));
  assert (db_int ("PRAGMA user_version") == catalog_schema_version () + 1);
}

static void
test_new_home (void)
{
  CLEANUP_FREE char *sub = xasprintf ("%s/new", home);
  CLEANUP_FREE char *path = xasprintf ("%s/catalog.db", sub);
  struct catalog *c = catalog_open (sub);
  sqlite3 *db;
  sqlite3_stmt *s;

  assert (c);
  catalog_close (c);
  assert (sqlite3_open (path, &db) == SQLITE_OK);
  assert (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK);
  assert (sqlite3_step (s) == SQLITE_ROW);
  assert (sqlite3_column_int (s, 0) == catalog_schema_version ());
  sqlite3_finalize (s);
  sqlite3_close (db);
}

/* catalog_repo_lock (schema 13): the largest lock seen is kept, a lower
 * one only with accept; an unknown location knows none. */
static void
test_repo_lock (void)
{
  CLEANUP_FREE char *sub = xasprintf ("%s/lock", home);
  struct catalog *c = catalog_open (sub);
  int64_t id;
  int known;

  assert (c);
  assert (catalog_repo_lock (c, "/srv/none", 7, false, &known) == 0);
  assert (known == 0);
  assert (catalog_repo_add (c, "/srv/r", "u", 65536, false, true, &id) == 0);
  assert (catalog_repo_lock (c, "/srv/r", 7, false, &known) == 0);
  assert (known == 0);
  assert (catalog_repo_lock (c, "/srv/r", 0, false, &known) == 0);
  assert (known == 7);
  assert (catalog_repo_lock (c, "/srv/r", 9, false, &known) == 0);
  assert (known == 7);
  assert (catalog_repo_lock (c, "/srv/r", 3, false, &known) == 0);
  assert (known == 9);
  /* catalog_repo_add again (every open) keeps it */
  assert (catalog_repo_add (c, "/srv/r", "u", 65536, false, false, &id) == 0);
  assert (catalog_repo_lock (c, "/srv/r", 3, true, &known) == 0);
  assert (known == 9);
  assert (catalog_repo_lock (c, "/srv/r", 3, false, &known) == 0);
  assert (known == 3);
  catalog_close (c);
}

int
main (void)
{
  CLEANUP_FREE char *cmd = NULL;

  assert (mkdtemp (home));
  test_from_v0 ();
  test_from_v1 ();
  test_from_v2 ();
  test_from_v3 ();
  test_failed_migration ();
  test_newer_refused ();
  test_new_home ();
  test_repo_lock ();

  cmd = xasprintf ("rm -rf %s", home);
  assert (system (cmd) == 0);
  printf ("test-catalog: ok\n");
  return 0;
}
