/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite catalog.  Schema migrations are a list of SQL scripts; the
 * database's PRAGMA user_version says how many have been applied, and
 * catalog_open applies the rest in one transaction.
 *
 * Crash consistency: a point's row and its disks are written in one
 * transaction (a kill leaves the old state or the new one), and a catalog
 * behind its repository (a kill between a point's manifest and its row)
 * is brought up to date by catalog_points_sync, which compares the
 * repository's point directories with the rows and reads only the
 * manifests of directories without a row (those it found without a
 * manifest only when due again, a bounded number per sync: "keeping up
 * with the repository", below).
 *
 * Rollback: the rows are also what this host knows the repository held.
 * A row's point may go only by bootback's prune, which first writes
 * pruned/VM/ID in the repository (on any host); a point gone without it
 * keeps its row and is reported as missing (a repository replaced by an
 * older copy, or points deleted behind bootback's back) until a person
 * accepts it (repo check --accept-rollback, repo reindex).
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

struct catalog {
  sqlite3 *db;
  char *path;
  char *home;                /* the state directory it is in */
};

static void
cleanup_stmt (sqlite3_stmt **s)
{
  sqlite3_finalize (*s);
}
#define CLEANUP_STMT __attribute__((cleanup (cleanup_stmt)))

static const char *migrations[] = {
  /* 1 */
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
  "CREATE INDEX points_vm ON points (repo_id, vm, time);",
  /* 2: instant-recovery sessions (recovery/instant/session.c owns data) */
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
  "CREATE INDEX sessions_name ON sessions (name, id);",
  /* 3: verification lab runs, their VMs with timings, their checks
   * (verify/history.c owns the rows) */
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
  "CREATE INDEX check_results_vm ON check_results (vm_id);",
  /* 4: the run chain: each lab run's hash over its rows and the hash of
   * the run recorded before it (run_hash); runs of schema 3 keep NULL
   * (unchained).  The first chained run's prev_hash is ''. */
  "ALTER TABLE lab_runs ADD COLUMN prev_hash TEXT;"
  "ALTER TABLE lab_runs ADD COLUMN hash TEXT;",
  /* 5: the newest boot trace of each VM's disk (recovery/repo/trace.h's
   * text; the same file is kept beside the point in the repository) */
  "CREATE TABLE boot_traces ("
  "  vm TEXT NOT NULL,"
  "  disk TEXT NOT NULL,"
  "  point TEXT NOT NULL,"
  "  repo TEXT NOT NULL,"
  "  recorded REAL NOT NULL,"
  "  seconds REAL NOT NULL,"
  "  chunks INTEGER NOT NULL,"
  "  trace TEXT NOT NULL,"
  "  PRIMARY KEY (vm, disk));",
  /* 6: API tokens of bootback web (web/token.c): only the SHA-256 of each
   * token is kept, never the token */
  "CREATE TABLE api_tokens ("
  "  name TEXT PRIMARY KEY,"
  "  sha256 TEXT NOT NULL UNIQUE,"
  "  created INTEGER NOT NULL,"
  "  last_used INTEGER);",
  /* 7: each point's ransomware score and its raw statistics (score.h;
   * raw_bytes, raw_rewritten_bytes NULL = unknown), and whether an administrator unflagged it
   * (catalog_score_*, below).  Keyed by name, not points(id): a point's
   * row is replaced when it is protected or reindexed. */
  "CREATE TABLE point_scores ("
  "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
  "  vm TEXT NOT NULL,"
  "  point TEXT NOT NULL,"
  "  time INTEGER NOT NULL,"
  "  has_prev INTEGER NOT NULL,"
  "  disk_bytes INTEGER NOT NULL, changed_bytes INTEGER NOT NULL,"
  "  prev_data_bytes INTEGER NOT NULL, rewritten_bytes INTEGER NOT NULL,"
  "  raw_rewritten_bytes INTEGER, new_bytes INTEGER NOT NULL,"
  "  raw_bytes INTEGER,"
  "  score REAL NOT NULL,"
  "  suspicious INTEGER NOT NULL,"
  "  reason TEXT NOT NULL,"
  "  unflagged INTEGER NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (repo_id, vm, point));",
  /* 8: each point's latest malware scan (bootback scan): its verdict
   * ("clean", "found", "incomplete"), counts and the whole report (JSON).
   * Keyed by name like point_scores. */
  "CREATE TABLE point_scans ("
  "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
  "  vm TEXT NOT NULL,"
  "  point TEXT NOT NULL,"
  "  time INTEGER NOT NULL,"
  "  verdict TEXT NOT NULL,"
  "  found INTEGER NOT NULL,"
  "  files INTEGER NOT NULL,"
  "  since TEXT,"
  "  report TEXT NOT NULL,"
  "  PRIMARY KEY (repo_id, vm, point));",
  /* 9: hypervisor hosts by name (bootback host add NAME URI): the libvirt
   * URI each --host NAME stands for */
  "CREATE TABLE hosts ("
  "  name TEXT PRIMARY KEY,"
  "  uri TEXT NOT NULL,"
  "  added INTEGER NOT NULL);",
  /* 10: the jobs of bootback web's actions (web/jobs.c; catalog_webjob_*):
   * args, progress and result are JSON texts */
  "CREATE TABLE web_jobs ("
  "  id INTEGER PRIMARY KEY,"
  "  action TEXT NOT NULL,"
  "  args TEXT NOT NULL,"
  "  state TEXT NOT NULL,"
  "  pid INTEGER NOT NULL DEFAULT 0,"
  "  done INTEGER NOT NULL DEFAULT 0,"
  "  total INTEGER NOT NULL DEFAULT 0,"
  "  phase TEXT NOT NULL DEFAULT '',"
  "  started REAL NOT NULL,"
  "  ended REAL,"
  "  result TEXT,"
  "  error TEXT);",
  /* 11: whether the repository was encrypted when last used
   * (catalog_repo_check: bootback-repo.json is not authenticated) */
  "ALTER TABLE repos ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;",
  /* 12: a host's ssh destination [USER@]HOST[:PORT] for labs there
   * (bootback host add --ssh; lab/hostcmd.c), NULL if none */
  "ALTER TABLE hosts ADD COLUMN ssh TEXT;",
  /* 13: the longest "lock_days" the repository's bootback-repo.json has
   * said (catalog_repo_lock: the file is not authenticated) */
  "ALTER TABLE repos ADD COLUMN lock_days INTEGER NOT NULL DEFAULT 0;",
  /* 14: point directories a sync listed without a row and did not read,
   * or read without a (valid) manifest, and when each is due to be read
   * (catalog_points_sync) */
  "CREATE TABLE unfinished_dirs ("
  "  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
  "  vm TEXT NOT NULL,"
  "  point TEXT NOT NULL,"
  "  due INTEGER NOT NULL,"
  "  PRIMARY KEY (repo_id, vm, point));",
  /* 15: what each API token may do (web/web.h: read, operate, admin);
   * the tokens made before roles could do everything */
  "ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';",
};
#define NMIGRATIONS ((int) (sizeof migrations / sizeof migrations[0]))

int
catalog_schema_version (void)
{
  return NMIGRATIONS;
}

static int
db_error (struct catalog *c, const char *what)
{
  error_setx ("catalog %s: %s: %s", c->path, what, sqlite3_errmsg (c->db));
  return -1;
}

static int
exec (struct catalog *c, const char *sql)
{
  char *msg = NULL;

  if (sqlite3_exec (c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    error_setx ("catalog %s: %s", c->path, msg ? msg : "error");
    sqlite3_free (msg);
    return -1;
  }
  return 0;
}

static int
prepare (struct catalog *c, const char *sql, sqlite3_stmt **s)
{
  if (sqlite3_prepare_v2 (c->db, sql, -1, s, NULL) != SQLITE_OK)
    return db_error (c, "prepare");
  return 0;
}

static int
migrate (struct catalog *c)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int version, i;
  char pragma[64];

  if (prepare (c, "PRAGMA user_version", &s) == -1)
    return -1;
  if (sqlite3_step (s) != SQLITE_ROW)
    return db_error (c, "user_version");
  version = sqlite3_column_int (s, 0);
  if (version > NMIGRATIONS) {
    error_setx ("catalog %s has schema version %d, newer than this bootback "
                "understands (%d); upgrade bootback", c->path, version,
                NMIGRATIONS);
    return -1;
  }
  if (version == NMIGRATIONS)
    return 0;
  if (exec (c, "BEGIN IMMEDIATE") == -1)
    return -1;
  for (i = version; i < NMIGRATIONS; i++)
    if (exec (c, migrations[i]) == -1)
      goto err;
  snprintf (pragma, sizeof pragma, "PRAGMA user_version = %d", NMIGRATIONS);
  if (exec (c, pragma) == -1 || exec (c, "COMMIT") == -1)
    goto err;
  return 0;
 err:
  {
    ERROR_SAVE (saved);
    exec (c, "ROLLBACK");
    ERROR_RESTORE (saved);
  }
  return -1;
}

/* The catalog says what every backup holds: it is made 0600 before SQLite
 * opens it (SQLite gives the -wal and -shm files the database's mode),
 * and one made before that is tightened.  An existing database is never
 * opened here: closing a descriptor drops every POSIX lock this process
 * holds on the file, those of its other SQLite connections too. */
static int
make_private (const char *path)
{
  static const char *const suffix[] = { "", "-wal", "-shm" };
  int fd = open_private (path, O_RDWR | O_EXCL);
  mode_t was;
  size_t i;

  if (fd == -1 && errno != EEXIST) {
    error_set (errno, "catalog %s", path);
    return -1;
  }
  if (fd >= 0)
    close (fd);
  for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
    CLEANUP_FREE char *p = xasprintf ("%s%s", path, suffix[i]);
    if (tighten_mode (p, &was) == -1 && errno != ENOENT)
      return -1;
  }
  return 0;
}

struct catalog *
catalog_open (const char *home)
{
  struct catalog *c = xcalloc (1, sizeof *c);

  if (mkdir_private (home) == -1) {
    free (c);
    return NULL;
  }
  c->path = xasprintf ("%s/catalog.db", home);
  c->home = xstrdup (home);
  if (make_private (c->path) == -1)
    goto err;
  if (sqlite3_open_v2 (c->path, &c->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                       SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    error_setx ("catalog %s: %s", c->path,
                c->db ? sqlite3_errmsg (c->db) : "cannot open");
    goto err;
  }
  sqlite3_busy_timeout (c->db, 10000);
  if (exec (c, "PRAGMA journal_mode = WAL") == -1 ||
      exec (c, "PRAGMA synchronous = NORMAL") == -1 ||
      exec (c, "PRAGMA foreign_keys = ON") == -1 ||
      migrate (c) == -1)
    goto err;
  return c;
 err:
  catalog_close (c);
  return NULL;
}

void
catalog_close (struct catalog *c)
{
  if (!c)
    return;
  sqlite3_close (c->db);
  free (c->path);
  free (c->home);
  free (c);
}

int catalog_begin (struct catalog *c) { return exec (c, "BEGIN IMMEDIATE"); }
int catalog_commit (struct catalog *c) { return exec (c, "COMMIT"); }
void
catalog_rollback (struct catalog *c)
{
  ERROR_SAVE (saved);
  exec (c, "ROLLBACK");
  ERROR_RESTORE (saved);
}

int
catalog_repo_check (struct catalog *c, const char *location, const char *uuid,
                    bool encrypted)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  const char *known;

  if (prepare (c, "SELECT uuid, encrypted FROM repos WHERE location = ?1",
               &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, location, -1, SQLITE_STATIC);
  switch (sqlite3_step (s)) {
  case SQLITE_DONE: return 0;
  case SQLITE_ROW: break;
  default: return db_error (c, "find repository");
  }
  known = (const char *) sqlite3_column_text (s, 0);
  if (known && strcmp (known, uuid) != 0) {
    error_setx ("%s: the catalog knows this repository as uuid %s and it now "
                "says %s: it was replaced, or its bootback-repo.json "
                "rewritten; if you replaced it yourself, accept it with "
                "'bootback repo init %s'", location, known, uuid, location);
    return -1;
  }
  if (sqlite3_column_int (s, 1) && !encrypted) {
    error_setx ("%s: the catalog knows this repository as encrypted and it "
                "now opens without encryption: its bootback-repo.json was "
                "rewritten; refusing to read or write it unencrypted",
                location);
    return -1;
  }
  return 0;
}

int
catalog_repo_lock (struct catalog *c, const char *location, int lock_days,
                   bool accept, int *known)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL, *u = NULL;

  *known = 0;
  if (prepare (c, "SELECT lock_days FROM repos WHERE location = ?1", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, location, -1, SQLITE_STATIC);
  switch (sqlite3_step (s)) {
  case SQLITE_DONE: return 0;
  case SQLITE_ROW: *known = sqlite3_column_int (s, 0); break;
  default: return db_error (c, "find repository");
  }
  if (lock_days == *known || (lock_days < *known && !accept))
    return 0;
  if (prepare (c, "UPDATE repos SET lock_days = ?2 WHERE location = ?1",
               &u) == -1)
    return -1;
  sqlite3_bind_text (u, 1, location, -1, SQLITE_STATIC);
  sqlite3_bind_int (u, 2, lock_days);
  if (sqlite3_step (u) != SQLITE_DONE)
    return db_error (c, "record the repository's lock");
  return 0;
}

int
catalog_repo_add (struct catalog *c, const char *location, const char *uuid,
                  uint32_t chunk_size, bool encrypted, bool make_default,
                  int64_t *id)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL, *q = NULL, *d = NULL, *o = NULL;

  /* Another repository (another uuid) at a known location, accepted by
   * repo init: the points recorded of the old one describe nothing there
   * now, so they go (else they would read as missing: a rollback). */
  if (prepare (c, "DELETE FROM points WHERE repo_id IN (SELECT id FROM repos "
               "WHERE location = ?1 AND uuid != ?2)", &o) == -1)
    return -1;
  sqlite3_bind_text (o, 1, location, -1, SQLITE_STATIC);
  sqlite3_bind_text (o, 2, uuid, -1, SQLITE_STATIC);
  if (sqlite3_step (o) != SQLITE_DONE)
    return db_error (c, "forget the replaced repository's points");
  if (prepare (c, "INSERT INTO repos (location, uuid, chunk_size, encrypted, "
               "added) VALUES (?1, ?2, ?3, ?4, strftime('%s','now')) "
               "ON CONFLICT (location) DO UPDATE SET uuid = ?2, chunk_size = ?3, "
               "encrypted = ?4", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, location, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, uuid, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 3, chunk_size);
  sqlite3_bind_int (s, 4, encrypted);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "add repository");
  if (prepare (c, "SELECT id FROM repos WHERE location = ?1", &q) == -1)
    return -1;
  sqlite3_bind_text (q, 1, location, -1, SQLITE_STATIC);
  if (sqlite3_step (q) != SQLITE_ROW)
    return db_error (c, "find repository");
  *id = sqlite3_column_int64 (q, 0);
  if (make_default) {
    if (prepare (c, "UPDATE repos SET is_default = (id = ?1)", &d) == -1)
      return -1;
    sqlite3_bind_int64 (d, 1, *id);
    if (sqlite3_step (d) != SQLITE_DONE)
      return db_error (c, "set default repository");
  }
  return 0;
}

char *
catalog_repo_default (struct catalog *c, int *err)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  *err = 0;
  if (prepare (c, "SELECT location FROM repos WHERE is_default = 1", &s) == -1) {
    *err = -1;
    return NULL;
  }
  rc = sqlite3_step (s);
  if (rc == SQLITE_ROW)
    return xstrdup ((const char *) sqlite3_column_text (s, 0));
  if (rc != SQLITE_DONE) {
    db_error (c, "default repository");
    *err = -1;
  }
  return NULL;
}

int
catalog_repo_list (struct catalog *c, catalog_repo_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT r.id, r.location, r.uuid, r.chunk_size, r.is_default,"
               " (SELECT count(*) FROM points p WHERE p.repo_id = r.id)"
               " FROM repos r ORDER BY r.id", &s) == -1)
    return -1;
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_repo r = {
      .id = sqlite3_column_int64 (s, 0),
      .location = (const char *) sqlite3_column_text (s, 1),
      .uuid = (const char *) sqlite3_column_text (s, 2),
      .chunk_size = sqlite3_column_int (s, 3),
      .is_default = sqlite3_column_int (s, 4),
      .points = sqlite3_column_int64 (s, 5),
    };
    if (fn (opaque, &r) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "list repositories");
  return 0;
}

int
catalog_point_same_disks (struct catalog *c, int64_t repo_id,
                          const struct repo_manifest *m)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  char hex[SHA256_HEX_LEN + 1];
  size_t i = 0;
  int rc, same = 1;

  if (prepare (c, "SELECT d.name, d.size, d.index_sha256 FROM disks d JOIN points p"
               " ON d.point_id = p.id WHERE p.repo_id = ?1 AND p.vm = ?2 AND"
               " p.point = ?3 ORDER BY d.seq", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, m->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, m->id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    const char *name = (const char *) sqlite3_column_text (s, 0);
    const char *dig = (const char *) sqlite3_column_text (s, 2);
    if (i >= m->ndisks) {
      same = 0;
      continue;
    }
    hex_encode (m->disks[i].index_sha256, REPO_DIGEST_LEN, hex);
    if (!name || !dig || strcmp (name, m->disks[i].name) != 0 ||
        (uint64_t) sqlite3_column_int64 (s, 1) != m->disks[i].size ||
        strcmp (dig, hex) != 0)
      same = 0;
    i++;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "read point disks");
  if (i == 0)
    return 2;                   /* no row: a point has one disk at least */
  return same && i == m->ndisks;
}

/* Run sql, whose ?1, ?2, ?3 are repo_id, vm and id, to its end. */
static int
point_exec (struct catalog *c, const char *sql, int64_t repo_id,
            const char *vm, const char *id, const char *what)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, sql, &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, id, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, what);
  return 0;
}

/* vm@id is no longer a directory without a manifest: it has a row, or
 * it is gone. */
static int
unfinished_forget (struct catalog *c, int64_t repo_id, const char *vm,
                   const char *id)
{
  return point_exec (c, "DELETE FROM unfinished_dirs WHERE repo_id = ?1 AND"
                     " vm = ?2 AND point = ?3", repo_id, vm, id,
                     "forget an unfinished point directory");
}

/* The statements of catalog_point_put, inside its transaction.  A point's
 * scan verdict (point_scans, kept by name) stays only if the row replaced
 * recorded the same disks: a point put again with other disks (a row
 * removed, then the point directory found again with another manifest, as
 * someone who can write the repository can arrange; a reindex) has not
 * been scanned. */
static int
point_put (struct catalog *c, int64_t repo_id, const struct repo_manifest *m)
{
  CLEANUP_STMT sqlite3_stmt *del = NULL, *ins = NULL, *dsk = NULL, *orphans = NULL;
  int64_t pid;
  size_t i;
  char hex[SHA256_HEX_LEN + 1];

  if (prepare (c, "DELETE FROM points WHERE repo_id = ?1 AND vm = ?2 AND point = ?3",
               &del) == -1 ||
      prepare (c, "INSERT INTO points (repo_id, vm, point, time, parent, kind,"
               " consistency, source, chunk_size, has_domain_xml, protected,"
               " bytes_read, new_chunks, new_bytes, stored_bytes, reused_chunks,"
               " seconds) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,"
               "?14,?15,?16,?17)", &ins) == -1 ||
      prepare (c, "INSERT INTO disks (point_id, seq, name, size, index_sha256,"
               " format, zero_chunks) VALUES (?1,?2,?3,?4,?5,?6,?7)", &dsk) == -1)
    return -1;
  int same = catalog_point_same_disks (c, repo_id, m);
  if (same == -1)
    return -1;
  if (same != 1) {
    CLEANUP_STMT sqlite3_stmt *scan = NULL;
    if (prepare (c, "DELETE FROM point_scans WHERE repo_id = ?1 AND vm = ?2 AND"
                 " point = ?3", &scan) == -1)
      return -1;
    sqlite3_bind_int64 (scan, 1, repo_id);
    sqlite3_bind_text (scan, 2, m->vm, -1, SQLITE_STATIC);
    sqlite3_bind_text (scan, 3, m->id, -1, SQLITE_STATIC);
    if (sqlite3_step (scan) != SQLITE_DONE)
      return db_error (c, "forget the scan of a replaced point");
  }
  sqlite3_bind_int64 (del, 1, repo_id);
  sqlite3_bind_text (del, 2, m->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (del, 3, m->id, -1, SQLITE_STATIC);
  if (sqlite3_step (del) != SQLITE_DONE)
    return db_error (c, "replace point");
  if (unfinished_forget (c, repo_id, m->vm, m->id) == -1)
    return -1;
  sqlite3_bind_int64 (ins, 1, repo_id);
  sqlite3_bind_text (ins, 2, m->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (ins, 3, m->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (ins, 4, m->time);
  if (m->parent[0])
    sqlite3_bind_text (ins, 5, m->parent, -1, SQLITE_STATIC);
  sqlite3_bind_text (ins, 6, m->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text (ins, 7, m->consistency, -1, SQLITE_STATIC);
  sqlite3_bind_text (ins, 8, m->source, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (ins, 9, m->chunk_size);
  sqlite3_bind_int (ins, 10, m->has_domain_xml);
  sqlite3_bind_int (ins, 11, m->protected);
  sqlite3_bind_int64 (ins, 12, m->stats.bytes_read);
  sqlite3_bind_int64 (ins, 13, m->stats.new_chunks);
  sqlite3_bind_int64 (ins, 14, m->stats.new_bytes);
  sqlite3_bind_int64 (ins, 15, m->stats.stored_bytes);
  sqlite3_bind_int64 (ins, 16, m->stats.reused_chunks);
  sqlite3_bind_double (ins, 17, m->stats.seconds);
  if (sqlite3_step (ins) != SQLITE_DONE)
    return db_error (c, "insert point");
  pid = sqlite3_last_insert_rowid (c->db);
  crash_step (6);
  /* Rows left by a point deleted without foreign keys enforced (by hand,
   * or an older tool) must not collide with the new ones. */
  if (prepare (c, "DELETE FROM disks WHERE point_id = ?1", &orphans) == -1)
    return -1;
  sqlite3_bind_int64 (orphans, 1, pid);
  if (sqlite3_step (orphans) != SQLITE_DONE)
    return db_error (c, "replace disks");
  for (i = 0; i < m->ndisks; i++) {
    const struct repo_disk_info *d = &m->disks[i];
    hex_encode (d->index_sha256, REPO_DIGEST_LEN, hex);
    sqlite3_reset (dsk);
    sqlite3_bind_int64 (dsk, 1, pid);
    sqlite3_bind_int (dsk, 2, i);
    sqlite3_bind_text (dsk, 3, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (dsk, 4, d->size);
    sqlite3_bind_text (dsk, 5, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (dsk, 6, d->format, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (dsk, 7, d->zero_chunks);
    if (sqlite3_step (dsk) != SQLITE_DONE)
      return db_error (c, "insert disk");
  }
  return 0;
}

int
catalog_point_put (struct catalog *c, int64_t repo_id,
                   const struct repo_manifest *m)
{
  bool own = sqlite3_get_autocommit (c->db);

  /* One transaction (or the caller's): a point row is never seen without
   * its disks, whatever moment the process is killed at. */
  if (own && catalog_begin (c) == -1)
    return -1;
  if (point_put (c, repo_id, m) == -1 || (own && catalog_commit (c) == -1)) {
    if (own)
      catalog_rollback (c);
    return -1;
  }
  return 0;
}

int
catalog_point_delete (struct catalog *c, int64_t repo_id, const char *vm,
                      const char *id)
{
  return point_exec (c, "DELETE FROM points WHERE repo_id = ?1 AND vm = ?2 AND"
                     " point = ?3", repo_id, vm, id, "delete point");
}

int
catalog_point_set_protected (struct catalog *c, int64_t repo_id,
                             const char *vm, const char *id, bool on)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE points SET protected = ?4 WHERE repo_id = ?1 AND"
               " vm = ?2 AND point = ?3", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, id, -1, SQLITE_STATIC);
  sqlite3_bind_int (s, 4, on);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "protect point");
  return 0;
}

static int
repo_rows_delete (struct catalog *c, const char *table, int64_t repo_id,
                  const char *what)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  CLEANUP_FREE char *sql = xasprintf ("DELETE FROM %s WHERE repo_id = ?1", table);

  if (prepare (c, sql, &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, what);
  return 0;
}

int
catalog_unfinished_clear (struct catalog *c, int64_t repo_id)
{
  return repo_rows_delete (c, "unfinished_dirs", repo_id,
                           "forget unfinished point directories");
}

/* A reindex reads every directory: what syncs saw unfinished goes too. */
int
catalog_points_clear (struct catalog *c, int64_t repo_id)
{
  if (repo_rows_delete (c, "points", repo_id, "clear points") == -1)
    return -1;
  return catalog_unfinished_clear (c, repo_id);
}

/* ---- keeping up with the repository ------------------------------------- */

/* A point directory without a (valid) manifest is an unfinished write, or
 * one of any number planted by whoever can write the repository, so it is
 * not read again by every command.  The rule: the directories the catalog
 * does not list form a queue by the time each is due (unfinished_dirs): a
 * directory read without a manifest is due UNFINISHED_RECHECK seconds
 * later; one listed for the first time is due at once, and is recorded as
 * due then if this sync does not reach it.  A sync reads the due ones
 * earliest due first (among equals, newest point id first, whatever the
 * VM: a finishing write is the newest), and stops after UNFINISHED_READS
 * reads that find none.  Reads that find a manifest add a row and are
 * never made again, so they are not counted.  So one command makes at
 * most UNFINISHED_READS such reads, and no directory waits behind ones
 * that became due after it: planted directories, however named, delay a
 * point another host completes in a shared repository (or one a killed
 * command left without its row) by one sync per UNFINISHED_READS of them
 * due before it, never for good; repo reindex reads every directory at
 * once.  A clock set back makes every record due.  A point bootback
 * writes itself has its row added by the writer (commit step 4). */
#define UNFINISHED_READS 32
#define UNFINISHED_RECHECK 600

struct pkey {
  char *key;             /* "vm/point" */
  int64_t id;            /* row id, or seconds until due */
};

static int
cmp_pkey (const void *a, const void *b)
{
  return strcmp (((const struct pkey *) a)->key, ((const struct pkey *) b)->key);
}

/* A directory to read: its key, and seconds until due (<= 0: due). */
struct cand {
  const struct pkey *dir;
  int64_t due;
  bool known;            /* in unfinished_dirs */
};

/* Earliest due first; among equals, newest point id (ids are UTC time
 * stamps), whatever the VM. */
static int
cmp_due (const void *a, const void *b)
{
  const struct cand *x = a, *y = b;

  if (x->due != y->due)
    return x->due < y->due ? -1 : 1;
  return strcmp (strchr (y->dir->key, '/'), strchr (x->dir->key, '/'));
}

static void
pkeys_free (struct pkey *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (v[i].key);
  free (v);
}

static void
pkey_add (struct pkey **v, size_t *n, int64_t id, const char *vm,
          const char *point)
{
  struct pkey *k = ARRAY_PUSH (*v, *n);

  k->key = xasprintf ("%s/%s", vm, point);
  k->id = id;
}

static struct pkey *
pkey_find (struct pkey *v, size_t n, const char *key)
{
  struct pkey k = { .key = (char *) key };

  return bsearch (&k, v, n, sizeof *v, cmp_pkey);
}

/* The keys of repo_id that sql (id, vm, point; ?1 the repository)
 * selects, sorted. */
static int
keys_read (struct catalog *c, int64_t repo_id, const char *sql,
           const char *what, struct pkey **v, size_t *n)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, sql, &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    pkey_add (v, n, sqlite3_column_int64 (s, 0),
              (const char *) sqlite3_column_text (s, 1),
              (const char *) sqlite3_column_text (s, 2));
  if (rc != SQLITE_DONE)
    return db_error (c, what);
  qsort (*v, *n, sizeof **v, cmp_pkey);
  return 0;
}

/* The point directories of r (complete or not), sorted: listings only. */
static int
dirs_read (struct repo *r, struct pkey **v, size_t *n)
{
  char **vms = repo_list_vms (r), **pts;
  size_t i, j;

  if (!vms)
    return -1;
  for (i = 0; vms[i]; i++) {
    if (!(pts = repo_list_point_dirs (r, vms[i]))) {
      strv_free (vms);
      return -1;
    }
    for (j = 0; pts[j]; j++)
      pkey_add (v, n, 0, vms[i], pts[j]);
    strv_free (pts);
  }
  strv_free (vms);
  qsort (*v, *n, sizeof **v, cmp_pkey);
  return 0;
}

/* key ("vm/point") split into its VM, returned, and *id. */
static char *
key_vm (const char *key, const char **id)
{
  const char *slash = strchr (key, '/');

  *id = slash + 1;
  return xasprintf ("%.*s", (int) (slash - key), key);
}

/* Record vm@id as due to be read in UNFINISHED_RECHECK seconds (read
 * now without a manifest: later true) or now (listed, not read). */
static int
unfinished_due (struct catalog *c, int64_t repo_id, const char *vm,
                const char *id, bool later)
{
  CLEANUP_FREE char *sql = xasprintf ("INSERT OR REPLACE INTO unfinished_dirs"
                                      " (repo_id, vm, point, due) VALUES (?1, ?2,"
                                      " ?3, strftime('%%s','now') + %d)",
                                      later ? UNFINISHED_RECHECK : 0);

  return point_exec (c, sql, repo_id, vm, id,
                     "remember an unfinished point directory");
}

/* A point directory the catalog does not list: add it if it is complete,
 * else remember it.  1 added, 0 not complete, -1 error. */
static int
dir_add (struct catalog *c, int64_t repo_id, struct repo *r, const char *key)
{
  struct repo_manifest *m = xmalloc (sizeof *m);
  const char *id;
  CLEANUP_FREE char *vm = key_vm (key, &id);
  int ret = 1;

  /* No (valid) manifest: unfinished, or for repo check to report. */
  if (repo_manifest_read (r, vm, id, m) == -1) {
    error_clear ();
    ret = unfinished_due (c, repo_id, vm, id, true) == -1 ? -1 : 0;
  }
  else if (catalog_point_put (c, repo_id, m) == -1)
    ret = -1;
  free (m);
  return ret;
}

/* Record the directories in cand listed for the first time as due now,
 * in one transaction (or the caller's). */
static int
unfinished_listed (struct catalog *c, int64_t repo_id, const struct cand *cand,
                   size_t n)
{
  bool own = sqlite3_get_autocommit (c->db);
  const char *id;
  size_t i;

  if (own && catalog_begin (c) == -1)
    return -1;
  for (i = 0; i < n; i++) {
    if (cand[i].known)
      continue;
    CLEANUP_FREE char *vm = key_vm (cand[i].dir->key, &id);
    if (unfinished_due (c, repo_id, vm, id, false) == -1) {
      if (own)
        catalog_rollback (c);
      return -1;
    }
  }
  return own ? catalog_commit (c) : 0;
}

/* Read the directories in cand (due, not listed) in queue order until
 * UNFINISHED_READS of them turn out not complete; record those listed
 * for the first time and not reached as due now (one transaction). */
static int
dirs_add (struct catalog *c, int64_t repo_id, struct repo *r,
          struct cand *cand, size_t n, size_t *added)
{
  size_t i, unfinished = 0;
  int rc;

  qsort (cand, n, sizeof *cand, cmp_due);
  for (i = 0; i < n && unfinished < UNFINISHED_READS; i++) {
    if ((rc = dir_add (c, repo_id, r, cand[i].dir->key)) == -1)
      return -1;
    if (rc)
      (*added)++;
    else
      unfinished++;
  }
  return i < n ? unfinished_listed (c, repo_id, cand + i, n - i) : 0;
}

/* Forget the unfinished directories that are gone, and those that have a
 * row (a sync that saw one unfinished while its writer committed it
 * remembered it after the writer's row). */
static int
unfinished_stale (struct catalog *c, int64_t repo_id, struct pkey *seen,
                  size_t ns, struct pkey *dirs, size_t nd, struct pkey *rows,
                  size_t nr)
{
  const char *id;

  for (size_t i = 0; i < ns; i++) {
    if (pkey_find (dirs, nd, seen[i].key) && !pkey_find (rows, nr, seen[i].key))
      continue;
    CLEANUP_FREE char *vm = key_vm (seen[i].key, &id);
    if (unfinished_forget (c, repo_id, vm, id) == -1)
      return -1;
  }
  return 0;
}

static int
row_delete (struct catalog *c, int64_t id)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "DELETE FROM points WHERE id = ?1", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "delete point");
  return 0;
}

/* A row whose point directory is gone: removed if bootback pruned the
 * point (or o->accept_missing), else kept and named as missing. */
static int
row_gone (struct catalog *c, struct repo *r, const struct pkey *k,
          struct catalog_sync *o)
{
  const char *id;
  CLEANUP_FREE char *vm = key_vm (k->key, &id);
  int pruned = repo_point_pruned (r, vm, id);
  size_t used = strlen (o->missing_names);

  if (pruned == -1)
    return -1;
  if (!pruned) {
    o->missing++;
    if (used + strlen (k->key) + 8 < sizeof o->missing_names)
      snprintf (o->missing_names + used, sizeof o->missing_names - used, "%s%s@%s",
                used ? ", " : "", vm, id);
    else if (!strstr (o->missing_names, ", ..."))
      snprintf (o->missing_names + used, sizeof o->missing_names - used, ", ...");
    if (!o->accept_missing)
      return 0;
  }
  if (row_delete (c, k->id) == -1)
    return -1;
  o->removed++;
  return 0;
}

/* A directory the catalog does not list is a candidate if it is not
 * recorded (due now) or its record is due (the rule above; due further
 * off than UNFINISHED_RECHECK: the clock went back). */
static bool
dir_due (struct pkey *seen, size_t ns, const struct pkey *dir,
         struct cand *out)
{
  const struct pkey *k = pkey_find (seen, ns, dir->key);

  out->dir = dir;
  out->known = k != NULL;
  out->due = !k || k->id > UNFINISHED_RECHECK ? 0 : k->id;
  return out->due <= 0;
}

int
catalog_points_sync (struct catalog *c, int64_t repo_id, struct repo *r,
                     struct catalog_sync *o)
{
  struct pkey *rows = NULL, *dirs = NULL, *seen = NULL;
  struct cand *cand = NULL, cd;
  size_t nr = 0, nd = 0, ns = 0, nc = 0, i = 0, j = 0;
  int ret = -1, d;

  o->added = o->removed = o->missing = 0;
  o->missing_names[0] = '\0';
  /* The rows first, then the directories: a point committed and recorded
   * in between is in the listing too, so it is never taken for removed.
   * Rows go by id: one replaced meanwhile by another process stays. */
  if (keys_read (c, repo_id, "SELECT id, vm, point FROM points WHERE"
                 " repo_id = ?1", "list points", &rows, &nr) == -1 ||
      keys_read (c, repo_id, "SELECT due - strftime('%s','now'), vm, point"
                 " FROM unfinished_dirs WHERE repo_id = ?1",
                 "list unfinished point directories", &seen, &ns) == -1 ||
      dirs_read (r, &dirs, &nd) == -1)
    goto out;
  while (i < nr || j < nd) {
    d = i == nr ? 1 : j == nd ? -1 : strcmp (rows[i].key, dirs[j].key);
    if (d < 0) {
      if (row_gone (c, r, &rows[i++], o) == -1)
        goto out;
    }
    else if (d > 0) {
      if (dir_due (seen, ns, &dirs[j], &cd))
        *ARRAY_PUSH (cand, nc) = cd;
      j++;
    }
    else
      i++, j++;
  }
  if (dirs_add (c, repo_id, r, cand, nc, &o->added) == -1 ||
      unfinished_stale (c, repo_id, seen, ns, dirs, nd, rows, nr) == -1)
    goto out;
  ret = 0;
 out:
  free (cand);
  pkeys_free (rows, nr);
  pkeys_free (dirs, nd);
  pkeys_free (seen, ns);
  return ret;
}

static void
col_str (sqlite3_stmt *s, int i, char *out, size_t len)
{
  const unsigned char *t = sqlite3_column_text (s, i);
  snprintf (out, len, "%s", t ? (const char *) t : "");
}

/* catalog_point_list's rows [offset, offset + limit) (limit -1: all). */
static int
point_rows (struct catalog *c, int64_t repo_id, const char *vm, int64_t offset,
            int64_t limit, catalog_point_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL, *d = NULL;
  struct repo_manifest *m = xmalloc (sizeof *m);
  int rc, ret = -1;

  if (prepare (c, "SELECT id, vm, point, time, parent, kind, consistency, source,"
               " chunk_size, has_domain_xml, protected, bytes_read, new_chunks,"
               " new_bytes, stored_bytes, reused_chunks, seconds FROM points"
               " WHERE repo_id = ?1 AND (?2 IS NULL OR vm = ?2)"
               " ORDER BY vm, time LIMIT ?3 OFFSET ?4", &s) == -1 ||
      prepare (c, "SELECT name, size, index_sha256, format, zero_chunks FROM"
               " disks WHERE point_id = ?1 ORDER BY seq", &d) == -1)
    goto out;
  sqlite3_bind_int64 (s, 1, repo_id);
  if (vm)
    sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 3, limit);
  sqlite3_bind_int64 (s, 4, offset);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    memset (m, 0, sizeof *m);
    col_str (s, 1, m->vm, sizeof m->vm);
    col_str (s, 2, m->id, sizeof m->id);
    m->time = sqlite3_column_int64 (s, 3);
    col_str (s, 4, m->parent, sizeof m->parent);
    col_str (s, 5, m->kind, sizeof m->kind);
    col_str (s, 6, m->consistency, sizeof m->consistency);
    col_str (s, 7, m->source, sizeof m->source);
    m->chunk_size = sqlite3_column_int (s, 8);
    m->has_domain_xml = sqlite3_column_int (s, 9);
    m->protected = sqlite3_column_int (s, 10);
    m->stats.bytes_read = sqlite3_column_int64 (s, 11);
    m->stats.new_chunks = sqlite3_column_int64 (s, 12);
    m->stats.new_bytes = sqlite3_column_int64 (s, 13);
    m->stats.stored_bytes = sqlite3_column_int64 (s, 14);
    m->stats.reused_chunks = sqlite3_column_int64 (s, 15);
    m->stats.seconds = sqlite3_column_double (s, 16);
    m->stats.raw_bytes = -1;
    sqlite3_reset (d);
    sqlite3_bind_int64 (d, 1, sqlite3_column_int64 (s, 0));
    while ((rc = sqlite3_step (d)) == SQLITE_ROW && m->ndisks < REPO_MAX_DISKS) {
      struct repo_disk_info *di = &m->disks[m->ndisks++];
      char hex[SHA256_HEX_LEN + 1];
      col_str (d, 0, di->name, sizeof di->name);
      di->size = sqlite3_column_int64 (d, 1);
      col_str (d, 2, hex, sizeof hex);
      hex_decode (hex, di->index_sha256, REPO_DIGEST_LEN);
      col_str (d, 3, di->format, sizeof di->format);
      di->zero_chunks = sqlite3_column_int64 (d, 4);
    }
    if (fn (opaque, m) == -1)
      goto out;
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    db_error (c, "list points");
    goto out;
  }
  ret = 0;
 out:
  free (m);
  return ret;
}

int
catalog_point_list (struct catalog *c, int64_t repo_id, const char *vm,
                    catalog_point_fn fn, void *opaque)
{
  return point_rows (c, repo_id, vm, 0, -1, fn, opaque);
}

int
catalog_point_page (struct catalog *c, int64_t repo_id, const char *vm,
                    int64_t offset, int64_t limit, int64_t *total,
                    catalog_point_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "SELECT count(*) FROM points WHERE repo_id = ?1"
               " AND (?2 IS NULL OR vm = ?2)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  if (vm)
    sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_ROW)
    return db_error (c, "count points");
  *total = sqlite3_column_int64 (s, 0);
  return point_rows (c, repo_id, vm, offset, limit, fn, opaque);
}

int
catalog_repo_usage (struct catalog *c, int64_t repo_id, uint64_t *logical,
                    uint64_t *stored)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "SELECT (SELECT coalesce (sum (d.size), 0) FROM disks d"
               " JOIN points p ON p.id = d.point_id WHERE p.repo_id = ?1),"
               " (SELECT coalesce (sum (stored_bytes), 0) FROM points"
               " WHERE repo_id = ?1)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  if (sqlite3_step (s) != SQLITE_ROW)
    return db_error (c, "repository usage");
  *logical = sqlite3_column_int64 (s, 0);
  *stored = sqlite3_column_int64 (s, 1);
  return 0;
}

int
catalog_repo_usage_times (struct catalog *c, int64_t repo_id,
                          catalog_usage_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT p.time, (SELECT coalesce (sum (d.size), 0) FROM disks d"
               " WHERE d.point_id = p.id), coalesce (p.stored_bytes, 0)"
               " FROM points p WHERE p.repo_id = ?1", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    if (fn (opaque, sqlite3_column_int64 (s, 0), sqlite3_column_int64 (s, 1),
            sqlite3_column_int64 (s, 2)) == -1)
      return -1;
  if (rc != SQLITE_DONE)
    return db_error (c, "repository usage");
  return 0;
}

int64_t
catalog_job_begin (struct catalog *c, const char *kind, int64_t repo_id,
                   const char *vm)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT INTO jobs (kind, repo_id, vm, started, status) VALUES"
               " (?1, ?2, ?3, (julianday('now') - 2440587.5) * 86400.0,"
               " 'running')", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, kind, -1, SQLITE_STATIC);
  if (repo_id > 0)
    sqlite3_bind_int64 (s, 2, repo_id);
  if (vm)
    sqlite3_bind_text (s, 3, vm, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "record job");
  return sqlite3_last_insert_rowid (c->db);
}

int
catalog_job_end (struct catalog *c, int64_t job, const char *status,
                 const char *point, const char *message, const char *stats)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (job <= 0)
    return 0;
  if (prepare (c, "UPDATE jobs SET ended = (julianday('now') - 2440587.5) *"
               " 86400.0, status = ?2, point = ?3, message = ?4, stats = ?5"
               " WHERE id = ?1", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, job);
  sqlite3_bind_text (s, 2, status, -1, SQLITE_STATIC);
  if (point) sqlite3_bind_text (s, 3, point, -1, SQLITE_STATIC);
  if (message) sqlite3_bind_text (s, 4, message, -1, SQLITE_STATIC);
  if (stats) sqlite3_bind_text (s, 5, stats, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "finish job");
  return 0;
}

/* ---- instant-recovery sessions ------------------------------------------ */

#define NOW_SQL "((julianday('now') - 2440587.5) * 86400.0)"

int
catalog_session_add (struct catalog *c, const struct catalog_session *r,
                     int64_t *id)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT INTO sessions (name, vm, point, repo, uri, state,"
               " created, updated, supervisor_pid, data, message) VALUES"
               " (?1, ?2, ?3, ?4, ?5, ?6, " NOW_SQL ", " NOW_SQL ", ?7, ?8, ?9)",
               &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, r->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, r->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, r->point, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, r->repo, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 5, r->uri ? r->uri : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 6, r->state, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 7, r->supervisor_pid);
  sqlite3_bind_text (s, 8, r->data ? r->data : "{}", -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 9, r->message ? r->message : "", -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "add session");
  *id = sqlite3_last_insert_rowid (c->db);
  return 0;
}

int
catalog_session_update (struct catalog *c, const struct catalog_session *r,
                        const char *from_state)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE sessions SET name = ?2, state = ?3, supervisor_pid = ?4,"
               " data = ?5, message = ?6, updated = " NOW_SQL
               " WHERE id = ?1 AND (?7 IS NULL OR state = ?7)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, r->id);
  sqlite3_bind_text (s, 2, r->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, r->state, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 4, r->supervisor_pid);
  sqlite3_bind_text (s, 5, r->data ? r->data : "{}", -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 6, r->message ? r->message : "", -1, SQLITE_STATIC);
  if (from_state)
    sqlite3_bind_text (s, 7, from_state, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "update session");
  return sqlite3_changes (c->db) == 1 ? 0 : 1;
}

int
catalog_session_list (struct catalog *c, int64_t id, catalog_session_fn fn,
                      void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT id, name, vm, point, repo, uri, state, created,"
               " updated, supervisor_pid, data, message FROM sessions"
               " WHERE ?1 = 0 OR id = ?1 ORDER BY id", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_session r = {
      .id = sqlite3_column_int64 (s, 0),
      .name = (const char *) sqlite3_column_text (s, 1),
      .vm = (const char *) sqlite3_column_text (s, 2),
      .point = (const char *) sqlite3_column_text (s, 3),
      .repo = (const char *) sqlite3_column_text (s, 4),
      .uri = (const char *) sqlite3_column_text (s, 5),
      .state = (const char *) sqlite3_column_text (s, 6),
      .created = sqlite3_column_double (s, 7),
      .updated = sqlite3_column_double (s, 8),
      .supervisor_pid = sqlite3_column_int64 (s, 9),
      .data = (const char *) sqlite3_column_text (s, 10),
      .message = (const char *) sqlite3_column_text (s, 11),
    };
    if (fn (opaque, &r) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "list sessions");
  return 0;
}

/* ---- verification lab runs ---------------------------------------------- */

/* A time: NULL when not reached (< 0). */
static void
bind_secs (sqlite3_stmt *s, int i, double v)
{
  if (v >= 0)
    sqlite3_bind_double (s, i, v);
  else
    sqlite3_bind_null (s, i);
}

static double
col_secs (sqlite3_stmt *s, int i)
{
  return sqlite3_column_type (s, i) == SQLITE_NULL ? -1
                                                   : sqlite3_column_double (s, i);
}

static const char *
col_text (sqlite3_stmt *s, int i)
{
  const unsigned char *t = sqlite3_column_text (s, i);
  return t ? (const char *) t : "";
}

int
catalog_lab_run_add (struct catalog *c, const struct catalog_lab_run *r,
                     int64_t *id)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT INTO lab_runs (run, lab, kind, file, started, seconds,"
               " status, vms, checks, passed, failed, skipped, report_dir, message)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
               &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, r->run, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, r->lab, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, r->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, r->file, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 5, r->started);
  sqlite3_bind_double (s, 6, r->seconds);
  sqlite3_bind_text (s, 7, r->status, -1, SQLITE_STATIC);
  sqlite3_bind_int (s, 8, r->vms);
  sqlite3_bind_int (s, 9, r->checks);
  sqlite3_bind_int (s, 10, r->passed);
  sqlite3_bind_int (s, 11, r->failed);
  sqlite3_bind_int (s, 12, r->skipped);
  sqlite3_bind_text (s, 13, r->report_dir, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 14, r->message, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "record lab run");
  *id = sqlite3_last_insert_rowid (c->db);
  return 0;
}

int
catalog_lab_vm_add (struct catalog *c, int64_t run_id,
                    const struct catalog_lab_vm *v, int64_t *id)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT INTO lab_vms (run_id, vm, grp, source, domain, address,"
               " status, t_boot, t_heartbeat, t_app_ready, message)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, run_id);
  sqlite3_bind_text (s, 2, v->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, v->group, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, v->source, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 5, v->domain, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 6, v->address, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 7, v->status, -1, SQLITE_STATIC);
  bind_secs (s, 8, v->t_boot);
  bind_secs (s, 9, v->t_heartbeat);
  bind_secs (s, 10, v->t_app_ready);
  sqlite3_bind_text (s, 11, v->message, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "record lab VM");
  *id = sqlite3_last_insert_rowid (c->db);
  return 0;
}

int
catalog_check_result_add (struct catalog *c, int64_t run_id, int64_t vm_id,
                          const struct catalog_check_result *r)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT INTO check_results (run_id, vm_id, vm, name, kind,"
               " status, attempts, seconds, at, message)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, run_id);
  sqlite3_bind_int64 (s, 2, vm_id);
  sqlite3_bind_text (s, 3, r->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, r->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 5, r->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 6, r->status, -1, SQLITE_STATIC);
  sqlite3_bind_int (s, 7, r->attempts);
  sqlite3_bind_double (s, 8, r->seconds);
  sqlite3_bind_double (s, 9, r->at);
  sqlite3_bind_text (s, 10, r->message, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "record check");
  return 0;
}

/* ---- the run chain (schema 4) ---------------------------------------- */

const char *
catalog_home (struct catalog *c)
{
  return c->home;
}

/* The canonical serialisation of a run (version 1), what its hash is of:
 *   "bootback-run-chain 1\n", the previous hash and "\n", then the run's
 *   row ("R"), its VM rows ("V") and its check rows ("C"), by id, each the
 *   tag, its columns and "\n"; a column is
 *     n;              NULL
 *     i<decimal>;     integer
 *     f<%a>;          real, as a hexadecimal float (exact)
 *     t<bytes>:<text>;  b<bytes>:<blob>;
 * The columns are named here, so a column a later schema adds does not
 * change the hashes of the runs recorded before it. */
static const char chain_run_sql[] =
  "SELECT id, run, lab, kind, file, started, seconds, status, vms, checks,"
  " passed, failed, skipped, report_dir, message FROM lab_runs WHERE id = ?1";
static const char chain_vm_sql[] =
  "SELECT id, run_id, vm, grp, source, domain, address, status, t_boot,"
  " t_heartbeat, t_app_ready, message FROM lab_vms WHERE run_id = ?1 ORDER BY id";
static const char chain_check_sql[] =
  "SELECT id, run_id, vm_id, vm, name, kind, status, attempts, seconds, at,"
  " message FROM check_results WHERE run_id = ?1 ORDER BY id";

static void
chain_column (FILE *f, sqlite3_stmt *s, int i)
{
  switch (sqlite3_column_type (s, i)) {
  case SQLITE_NULL: fputs ("n;", f); break;
  case SQLITE_INTEGER:
    fprintf (f, "i%lld;", (long long) sqlite3_column_int64 (s, i));
    break;
  case SQLITE_FLOAT: fprintf (f, "f%a;", sqlite3_column_double (s, i)); break;
  default: {
    bool text = sqlite3_column_type (s, i) == SQLITE_TEXT;
    const void *p = text ? (const void *) sqlite3_column_text (s, i)
                         : sqlite3_column_blob (s, i);
    int n = sqlite3_column_bytes (s, i);
    fprintf (f, "%c%d:", text ? 't' : 'b', n);
    if (n > 0)
      fwrite (p, 1, n, f);
    fputc (';', f);
  }
  }
}

/* The rows of sql (bound to run id) into f, each tag and columns. */
static int
chain_rows (struct catalog *c, FILE *f, char tag, const char *sql, int64_t id,
            int *rows)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc, i;

  if (prepare (c, sql, &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  *rows = 0;
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    fputc (tag, f);
    for (i = 0; i < sqlite3_column_count (s); i++)
      chain_column (f, s, i);
    fputc ('\n', f);
    (*rows)++;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "read lab run");
  return 0;
}

/* The hash of run id following prev, as hex; -1 if it cannot be read
 * (or there is no such run). */
static int
run_hash (struct catalog *c, int64_t id, const char *prev,
          char out[SHA256_HEX_LEN + 1])
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  uint8_t md[REPO_DIGEST_LEN];
  int runs = 0, n, ret = -1;

  if (!f)
    abort ();
  fprintf (f, "bootback-run-chain 1\n%s\n", prev);
  if (chain_rows (c, f, 'R', chain_run_sql, id, &runs) == 0 &&
      chain_rows (c, f, 'V', chain_vm_sql, id, &n) == 0 &&
      chain_rows (c, f, 'C', chain_check_sql, id, &n) == 0)
    ret = 0;
  fclose (f);
  if (ret == 0 && runs != 1) {
    error_setx ("catalog %s: no lab run %" PRId64, c->path, id);
    ret = -1;
  }
  if (ret == 0) {
    repo_sha256 (buf, len, md);
    hex_encode (md, sizeof md, out);
  }
  free (buf);
  return ret;
}

int
catalog_lab_run_chain (struct catalog *c, int64_t id,
                       char prev[SHA256_HEX_LEN + 1], char hash[SHA256_HEX_LEN + 1])
{
  CLEANUP_STMT sqlite3_stmt *q = NULL, *u = NULL;
  int rc;

  /* The caller's BEGIN IMMEDIATE holds the write lock: no other run can
   * be chained between this read and the update. */
  if (prepare (c, "SELECT hash FROM lab_runs WHERE id < ?1 AND hash IS NOT NULL"
               " ORDER BY id DESC LIMIT 1", &q) == -1)
    return -1;
  sqlite3_bind_int64 (q, 1, id);
  rc = sqlite3_step (q);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return db_error (c, "read the run chain");
  snprintf (prev, SHA256_HEX_LEN + 1, "%s", rc == SQLITE_ROW ? col_text (q, 0) : "");
  if (run_hash (c, id, prev, hash) == -1 ||
      prepare (c, "UPDATE lab_runs SET prev_hash = ?2, hash = ?3 WHERE id = ?1",
               &u) == -1)
    return -1;
  sqlite3_bind_int64 (u, 1, id);
  sqlite3_bind_text (u, 2, prev, -1, SQLITE_STATIC);
  sqlite3_bind_text (u, 3, hash, -1, SQLITE_STATIC);
  if (sqlite3_step (u) != SQLITE_DONE)
    return db_error (c, "chain lab run");
  return 0;
}

static int
chain_walk (struct catalog *c, catalog_lab_chain_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT id, run, lab, started, prev_hash, hash FROM lab_runs"
               " ORDER BY id", &s) == -1)
    return -1;
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_lab_link l = {
      .id = sqlite3_column_int64 (s, 0), .run = col_text (s, 1),
      .lab = col_text (s, 2), .started = sqlite3_column_int64 (s, 3),
      .prev_hash = (const char *) sqlite3_column_text (s, 4),
      .hash = (const char *) sqlite3_column_text (s, 5),
    };
    if (l.hash && run_hash (c, l.id, l.prev_hash ? l.prev_hash : "",
                            l.computed) == -1)
      return -1;
    if (fn (opaque, &l) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "read the run chain");
  return 0;
}

int
catalog_lab_chain (struct catalog *c, catalog_lab_chain_fn fn, void *opaque)
{
  int ret;

  /* One read transaction: the runs as they were at one moment. */
  if (exec (c, "BEGIN") == -1)
    return -1;
  ret = chain_walk (c, fn, opaque);
  if (ret == 0)
    ret = exec (c, "COMMIT");
  else
    catalog_rollback (c);
  return ret;
}

int
catalog_lab_history (struct catalog *c, const char *vm,
                     catalog_lab_history_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT r.run, r.lab, r.kind, r.started, v.status, v.source,"
               " v.t_boot, v.t_heartbeat, v.t_app_ready, r.report_dir, v.message,"
               " (SELECT group_concat(c.name, '; ') FROM check_results c"
               "   WHERE c.vm_id = v.id AND c.status = 'fail'), r.status"
               " FROM lab_vms v JOIN lab_runs r ON r.id = v.run_id"
               " WHERE v.vm = ?1 ORDER BY r.started, r.id", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, vm, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_lab_history h = {
      .run = col_text (s, 0), .lab = col_text (s, 1), .kind = col_text (s, 2),
      .started = sqlite3_column_int64 (s, 3),
      .status = col_text (s, 4), .source = col_text (s, 5),
      .t_boot = col_secs (s, 6), .t_heartbeat = col_secs (s, 7),
      .t_app_ready = col_secs (s, 8),
      .report_dir = col_text (s, 9), .message = col_text (s, 10),
      .failed_checks = col_text (s, 11), .run_status = col_text (s, 12),
    };
    if (fn (opaque, &h) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "history");
  return 0;
}

/* ---- summaries -------------------------------------------------------------- */

int
catalog_lab_vm_rows (struct catalog *c, int64_t since,
                     catalog_lab_vm_row_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT v.vm, v.source, v.status, r.started, v.t_app_ready"
               " FROM lab_vms v JOIN lab_runs r ON r.id = v.run_id"
               " WHERE r.started >= ?1 AND r.status IN ('passed', 'failed')"
               " ORDER BY r.started, r.id, v.id", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, since);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_lab_vm_row v = {
      .vm = col_text (s, 0), .source = col_text (s, 1), .status = col_text (s, 2),
      .started = sqlite3_column_int64 (s, 3), .t_app_ready = col_secs (s, 4),
    };
    if (fn (opaque, &v) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "lab VM rows");
  return 0;
}

int
catalog_point_times (struct catalog *c, int64_t repo_id,
                     catalog_point_time_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT vm, point, time FROM points WHERE repo_id = ?1"
               " ORDER BY vm, time", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    if (fn (opaque, col_text (s, 0), col_text (s, 1),
            sqlite3_column_int64 (s, 2)) == -1)
      return -1;
  if (rc != SQLITE_DONE)
    return db_error (c, "point times");
  return 0;
}

/* ---- boot traces ---------------------------------------------------------- */

int
catalog_trace_put (struct catalog *c, const struct catalog_trace *t)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT OR REPLACE INTO boot_traces (vm, disk, point, repo,"
               " recorded, seconds, chunks, trace) VALUES"
               " (?1, ?2, ?3, ?4, " NOW_SQL ", ?5, ?6, ?7)", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, t->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, t->disk, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, t->point, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, t->repo, -1, SQLITE_STATIC);
  sqlite3_bind_double (s, 5, t->seconds);
  sqlite3_bind_int64 (s, 6, t->chunks);
  sqlite3_bind_text (s, 7, t->text, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "boot trace");
  return 0;
}

int
catalog_trace_get (struct catalog *c, const char *vm, const char *disk,
                   char point[TIMESTAMP_LEN + 1], char **text)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  *text = NULL;
  if (prepare (c, "SELECT point, trace FROM boot_traces WHERE vm = ?1 AND"
               " disk = ?2", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, disk, -1, SQLITE_STATIC);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE)
    return 1;
  if (rc != SQLITE_ROW)
    return db_error (c, "boot trace");
  col_str (s, 0, point, TIMESTAMP_LEN + 1);
  *text = xstrdup (col_text (s, 1));
  return 0;
}

/* ---- API tokens (schema 6) ------------------------------------------------ */

int
catalog_token_add (struct catalog *c, const char *name, const char *sha256,
                   const char *role)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "INSERT INTO api_tokens (name, sha256, created, role) "
               "VALUES (?1, ?2, strftime('%s','now'), ?3)", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, role, -1, SQLITE_STATIC);
  rc = sqlite3_step (s);
  if (rc == SQLITE_CONSTRAINT) {
    error_setx ("token %s exists already (revoke it first)", name);
    return 1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "add token");
  return 0;
}

/* Delete the row called name of a table with a unique name (sql: the
 * DELETE, name as ?1): 0, 1 (error "no WHAT named NAME") if there was
 * none, -1 on error (doing: what failed). */
static int
delete_named (struct catalog *c, const char *sql, const char *name,
              const char *what, const char *doing)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, sql, &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, doing);
  if (sqlite3_changes (c->db) == 0) {
    error_setx ("no %s named %s", what, name);
    return 1;
  }
  return 0;
}

int
catalog_token_revoke (struct catalog *c, const char *name)
{
  return delete_named (c, "DELETE FROM api_tokens WHERE name = ?1", name, "token",
                       "revoke token");
}

int
catalog_token_list (struct catalog *c, catalog_token_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT name, sha256, created, coalesce (last_used, 0),"
               " role FROM api_tokens ORDER BY name", &s) == -1)
    return -1;
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_token t = {
      .name = col_text (s, 0), .sha256 = col_text (s, 1),
      .created = sqlite3_column_int64 (s, 2),
      .last_used = sqlite3_column_int64 (s, 3), .role = col_text (s, 4),
    };
    if (fn (opaque, &t) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "list tokens");
  return 0;
}

int
catalog_token_used (struct catalog *c, const char *name)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE api_tokens SET last_used = strftime('%s','now')"
               " WHERE name = ?1 AND coalesce (last_used, 0) <"
               " strftime('%s','now') - 60", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "token last use");
  return 0;
}

int
catalog_lab_run_counts (struct catalog *c, catalog_count_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT status, count(*) FROM lab_runs GROUP BY status"
               " ORDER BY status", &s) == -1)
    return -1;
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    if (fn (opaque, col_text (s, 0), sqlite3_column_int64 (s, 1)) == -1)
      return -1;
  if (rc != SQLITE_DONE)
    return db_error (c, "count lab runs");
  return 0;
}

/* ---- ransomware scores (schema 7, score.h) ----------------------------- */

int
catalog_score_put (struct catalog *c, int64_t repo_id,
                   const struct repo_manifest *m, const struct score_stats *st,
                   const struct score_verdict *v)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT OR REPLACE INTO point_scores (repo_id, vm, point,"
               " time, has_prev, disk_bytes, changed_bytes, prev_data_bytes,"
               " rewritten_bytes, new_bytes, raw_bytes, score, suspicious,"
               " reason, raw_rewritten_bytes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,"
               "?9,?10,?11,?12,?13,?14,?15)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, m->vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, m->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 4, m->time);
  sqlite3_bind_int (s, 5, st->has_prev);
  sqlite3_bind_int64 (s, 6, st->disk_bytes);
  sqlite3_bind_int64 (s, 7, st->changed_bytes);
  sqlite3_bind_int64 (s, 8, st->prev_data_bytes);
  sqlite3_bind_int64 (s, 9, st->rewritten_bytes);
  sqlite3_bind_int64 (s, 10, st->new_bytes);
  if (st->raw_bytes >= 0)
    sqlite3_bind_int64 (s, 11, st->raw_bytes);
  sqlite3_bind_double (s, 12, v->score);
  sqlite3_bind_int (s, 13, v->suspicious);
  sqlite3_bind_text (s, 14, v->reason, -1, SQLITE_STATIC);
  if (st->raw_rewritten_bytes >= 0)
    sqlite3_bind_int64 (s, 15, st->raw_rewritten_bytes);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "insert score");
  return 0;
}

#define SCORE_COLS " p.point, p.has_prev, p.disk_bytes, p.changed_bytes," \
  " p.prev_data_bytes, p.rewritten_bytes, p.new_bytes, p.raw_bytes," \
  " p.score, p.suspicious, p.reason, p.unflagged, p.raw_rewritten_bytes"

static void
score_row (sqlite3_stmt *s, struct catalog_score *o)
{
  memset (o, 0, sizeof *o);
  col_str (s, 0, o->point, sizeof o->point);
  o->st.has_prev = sqlite3_column_int (s, 1);
  o->st.disk_bytes = sqlite3_column_int64 (s, 2);
  o->st.changed_bytes = sqlite3_column_int64 (s, 3);
  o->st.prev_data_bytes = sqlite3_column_int64 (s, 4);
  o->st.rewritten_bytes = sqlite3_column_int64 (s, 5);
  o->st.new_bytes = sqlite3_column_int64 (s, 6);
  o->st.raw_bytes = sqlite3_column_type (s, 7) == SQLITE_NULL ? -1
    : sqlite3_column_int64 (s, 7);
  o->score = sqlite3_column_double (s, 8);
  o->suspicious = sqlite3_column_int (s, 9);
  col_str (s, 10, o->reason, sizeof o->reason);
  o->unflagged = sqlite3_column_int (s, 11);
  o->st.raw_rewritten_bytes = sqlite3_column_type (s, 12) == SQLITE_NULL ? -1
    : sqlite3_column_int64 (s, 12);
}

int
catalog_score_get (struct catalog *c, int64_t repo_id, const char *vm,
                   const char *id, struct catalog_score *out)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT" SCORE_COLS " FROM point_scores p WHERE"
               " repo_id = ?1 AND vm = ?2 AND point = ?3", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, id, -1, SQLITE_STATIC);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return db_error (c, "read score");
  score_row (s, out);
  return 1;
}

/* The statistics of vm's points before time t that still exist and are
 * not flagged (a flagged point must not become the norm), oldest first. */
int
catalog_score_history (struct catalog *c, int64_t repo_id, const char *vm,
                       time_t t, struct score_stats *hist, size_t max,
                       size_t *n)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  struct catalog_score row;
  int rc;

  *n = 0;
  if (prepare (c, "SELECT" SCORE_COLS " FROM point_scores p JOIN points q"
               " USING (repo_id, vm, point) WHERE p.repo_id = ?1 AND"
               " p.vm = ?2 AND p.time < ?3 AND (p.suspicious = 0 OR p.unflagged)"
               " ORDER BY p.time DESC LIMIT ?4", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 3, t);
  sqlite3_bind_int64 (s, 4, max);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    score_row (s, &row);
    hist[max - 1 - (*n)++] = row.st;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "score history");
  memmove (hist, hist + max - *n, *n * sizeof *hist);
  return 0;
}

int
catalog_score_unflag (struct catalog *c, int64_t repo_id, const char *vm,
                      const char *id)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE point_scores SET unflagged = 1 WHERE repo_id = ?1"
               " AND vm = ?2 AND point = ?3 AND suspicious", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, id, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "unflag");
  if (sqlite3_changes (c->db) == 0) {
    error_setx ("%s@%s is not marked suspicious", vm, id);
    return -1;
  }
  return 0;
}

/* ---- malware scans (schema 8, bootback scan) --------------------------- */

int
catalog_scan_put (struct catalog *c, int64_t repo_id, const char *vm,
                  const char *id, const struct catalog_scan *r)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT OR REPLACE INTO point_scans (repo_id, vm, point,"
               " time, verdict, found, files, since, report) VALUES (?1,?2,"
               "?3,?4,?5,?6,?7,?8,?9)", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 4, r->time);
  sqlite3_bind_text (s, 5, r->verdict, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 6, r->found);
  sqlite3_bind_int64 (s, 7, r->files);
  if (r->since[0])
    sqlite3_bind_text (s, 8, r->since, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 9, r->report ? r->report : "{}", -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "insert scan");
  return 0;
}

int
catalog_scan_get (struct catalog *c, int64_t repo_id, const char *vm,
                  const char *id, struct catalog_scan *out)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT time, verdict, found, files, since, report FROM"
               " point_scans WHERE repo_id = ?1 AND vm = ?2 AND point = ?3",
               &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, repo_id);
  sqlite3_bind_text (s, 2, vm, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, id, -1, SQLITE_STATIC);
  rc = sqlite3_step (s);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return db_error (c, "read scan");
  memset (out, 0, sizeof *out);
  out->time = sqlite3_column_int64 (s, 0);
  col_str (s, 1, out->verdict, sizeof out->verdict);
  out->found = sqlite3_column_int64 (s, 2);
  out->files = sqlite3_column_int64 (s, 3);
  col_str (s, 4, out->since, sizeof out->since);
  out->report = xstrdup (col_text (s, 5));
  return 1;
}

/* ---- jobs of bootback web (schema 10) -------------------------------------- */

int64_t
catalog_webjob_add (struct catalog *c, const char *action, const char *args)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "INSERT INTO web_jobs (action, args, state, phase, started)"
               " VALUES (?1, ?2, 'queued', 'queued',"
               " (julianday('now') - 2440587.5) * 86400.0)", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, action, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, args, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "add job");
  return sqlite3_last_insert_rowid (c->db);
}

int
catalog_webjob_running (struct catalog *c, int64_t id, int64_t pid)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE web_jobs SET state = 'running', pid = ?2"
               " WHERE id = ?1 AND state = 'queued'", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, pid);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "start job");
  return 0;
}

int
catalog_webjob_progress (struct catalog *c, int64_t id, uint64_t done,
                         uint64_t total, const char *phase)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE web_jobs SET done = ?2, total = ?3,"
               " phase = coalesce (?4, phase) WHERE id = ?1", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, (int64_t) done);
  sqlite3_bind_int64 (s, 3, (int64_t) total);
  if (phase)
    sqlite3_bind_text (s, 4, phase, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "job progress");
  return 0;
}

int
catalog_webjob_end (struct catalog *c, int64_t id, const char *state,
                    const char *result, const char *error)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE web_jobs SET state = ?2, result = ?3, error = ?4,"
               " ended = (julianday('now') - 2440587.5) * 86400.0, phase = ?2"
               " WHERE id = ?1 AND state IN ('queued', 'running')", &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_text (s, 2, state, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, result, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 4, error, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "end job");
  return sqlite3_changes (c->db) > 0 ? 1 : 0;
}

int
catalog_webjob_end_all (struct catalog *c, const char *error)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "UPDATE web_jobs SET state = 'failed', error = ?1,"
               " ended = (julianday('now') - 2440587.5) * 86400.0, phase = 'failed'"
               " WHERE state IN ('queued', 'running')", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, error, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_DONE)
    return db_error (c, "end jobs");
  return sqlite3_changes (c->db);
}

/* id > 0: that job; else the page [offset, offset + limit), newest first. */
static int
webjob_rows (struct catalog *c, int64_t id, int64_t offset, int64_t limit,
             catalog_webjob_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "SELECT id, action, args, state, pid, done, total, phase,"
               " started, coalesce (ended, 0), result, error FROM web_jobs"
               " WHERE ?1 <= 0 OR id = ?1 ORDER BY id DESC LIMIT ?3 OFFSET ?2",
               &s) == -1)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, offset);
  sqlite3_bind_int64 (s, 3, limit);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_webjob j = {
      .id = sqlite3_column_int64 (s, 0), .action = col_text (s, 1),
      .args = col_text (s, 2), .state = col_text (s, 3),
      .pid = sqlite3_column_int64 (s, 4), .done = sqlite3_column_int64 (s, 5),
      .total = sqlite3_column_int64 (s, 6), .phase = col_text (s, 7),
      .started = sqlite3_column_double (s, 8),
      .ended = sqlite3_column_double (s, 9),
      .result = (const char *) sqlite3_column_text (s, 10),
      .error = (const char *) sqlite3_column_text (s, 11),
    };
    if (fn (opaque, &j) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "list jobs");
  return 0;
}

int
catalog_webjob_get (struct catalog *c, int64_t id, catalog_webjob_fn fn,
                    void *opaque)
{
  return webjob_rows (c, id > 0 ? id : -1, 0, 1, fn, opaque);
}

int
catalog_webjob_page (struct catalog *c, int64_t offset, int64_t limit,
                     int64_t *total, catalog_webjob_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;

  if (prepare (c, "SELECT count(*) FROM web_jobs", &s) == -1)
    return -1;
  if (sqlite3_step (s) != SQLITE_ROW)
    return db_error (c, "count jobs");
  *total = sqlite3_column_int64 (s, 0);
  return webjob_rows (c, 0, offset, limit, fn, opaque);
}

/* ---- hypervisor hosts (schema 9) -------------------------------------------- */

int
catalog_host_add (struct catalog *c, const char *name, const char *uri, const char *ssh)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc;

  if (prepare (c, "INSERT INTO hosts (name, uri, added, ssh) "
               "VALUES (?1, ?2, strftime('%s','now'), ?3)", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, uri, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 3, ssh, -1, SQLITE_STATIC);
  rc = sqlite3_step (s);
  if (rc == SQLITE_CONSTRAINT) {
    error_setx ("host %s exists already (bootback host remove %s first)", name, name);
    return 1;
  }
  return rc == SQLITE_DONE ? 0 : db_error (c, "add host");
}

int
catalog_host_remove (struct catalog *c, const char *name)
{
  return delete_named (c, "DELETE FROM hosts WHERE name = ?1", name, "host",
                       "remove host");
}

int
catalog_host_list (struct catalog *c, const char *name, catalog_host_fn fn, void *opaque)
{
  CLEANUP_STMT sqlite3_stmt *s = NULL;
  int rc, n = 0;

  if (prepare (c, "SELECT name, uri, added, ssh FROM hosts WHERE ?1 IS NULL OR name = ?1"
               " ORDER BY name", &s) == -1)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW) {
    struct catalog_host h = {
      .name = col_text (s, 0), .uri = col_text (s, 1),
      .added = sqlite3_column_int64 (s, 2), .ssh = col_text (s, 3),
    };
    n++;
    if (fn (opaque, &h) == -1)
      return -1;
  }
  if (rc != SQLITE_DONE)
    return db_error (c, "list hosts");
  return n;
}
