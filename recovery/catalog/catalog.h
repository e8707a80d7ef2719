/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * catalog: the appliance's SQLite database (WAL) in its state directory
 * ($BOOTBACK_HOME, --home, default /var/lib/bootback).  It indexes
 * repositories, restore points and their disks, and records jobs,
 * instant-recovery sessions and verification lab runs.  It is
 * an index only: `bootback repo reindex` rebuilds the point tables from
 * the repository's manifests, and catalog_points_sync (run whenever the
 * command line opens a repository) adds and removes what differs.
 *
 * Prepared statements only.  Schema version in PRAGMA user_version,
 * migrated forward on open.  One struct catalog per thread.
 * Errors: -1 and the last error (util.h) set.
 */
#ifndef BOOTBACK_CATALOG_H
#define BOOTBACK_CATALOG_H

#include <stdint.h>

#include "recovery/repo/repo.h"
#include "recovery/catalog/score.h"

struct catalog;

/* Open (creating home and the database as needed) and migrate. */
struct catalog *catalog_open (const char *home);
void catalog_close (struct catalog *c);
/* The schema version this build writes. */
int catalog_schema_version (void);

int catalog_begin (struct catalog *c);
int catalog_commit (struct catalog *c);
void catalog_rollback (struct catalog *c);

/* ---- repositories -------------------------------------------------------- */

/* Register (or update) a repository by location, with its uuid and
 * whether it is encrypted; make_default makes it the default.  *id gets
 * its row id. */
int catalog_repo_add (struct catalog *c, const char *location, const char *uuid,
                      uint32_t chunk_size, bool encrypted, bool make_default,
                      int64_t *id);
/* Check a repository just opened against what the catalog knows of its
 * location: the same uuid, and encrypted if it was.  bootback-repo.json
 * is not authenticated, so someone who can write the repository could
 * otherwise swap it for another, or turn an encrypted one plain and have
 * the next backups written in clear.  0 if it matches or the location is
 * new; -1 with an error naming the location. */
int catalog_repo_check (struct catalog *c, const char *location,
                        const char *uuid, bool encrypted);
/* What the catalog knows of the lock of the repository at location
 * (repo init --lock: "lock_days" of its bootback-repo.json, which is not
 * authenticated): *known, the days recorded (0 if none, or the location
 * is not registered).  Records lock_days if it is more (a raise), or
 * with accept if it is less (repo init on it).  0, or -1 on error. */
int catalog_repo_lock (struct catalog *c, const char *location,
                       int lock_days, bool accept, int *known);
/* The default repository's location (malloc'd), or NULL with no error set
 * if there is none (-1 on error via *err). */
char *catalog_repo_default (struct catalog *c, int *err);
struct catalog_repo {
  int64_t id;
  const char *location, *uuid;
  uint32_t chunk_size;
  bool is_default;
  int64_t points;
};
typedef int (*catalog_repo_fn) (void *opaque, const struct catalog_repo *r);
int catalog_repo_list (struct catalog *c, catalog_repo_fn fn, void *opaque);

/* ---- restore points --------------------------------------------------------- */

/* Insert or replace the row of a point and its disks (commit step 4). */
int catalog_point_put (struct catalog *c, int64_t repo_id,
                       const struct repo_manifest *m);
int catalog_point_delete (struct catalog *c, int64_t repo_id, const char *vm,
                          const char *id);
int catalog_point_set_protected (struct catalog *c, int64_t repo_id,
                                 const char *vm, const char *id, bool on);
/* Remove every point row of a repository (reindex, in a transaction),
 * and what catalog_points_sync remembers of its directories. */
int catalog_points_clear (struct catalog *c, int64_t repo_id);
/* Forget the repository's point directories catalog_points_sync found
 * without a manifest: the next sync reads them again (within its limit
 * per sync).  For a writer that does not record its points (repo sync),
 * so that they appear at once. */
int catalog_unfinished_clear (struct catalog *c, int64_t repo_id);

/* Bring the catalog's points of repository repo_id up to date with r,
 * cheaply: the point directories (listings, nothing read) against the
 * rows; a directory without a row is added if its manifest is there (a
 * point committed by a process killed before its catalog row, or by
 * another host); one without a manifest is remembered and read again
 * only when due, a bounded number per sync (the rule: catalog.c, "keeping
 * up with the repository"); a row
 * without a directory is removed if bootback pruned the point (on any
 * host: repo_point_pruned).  A row whose point is gone without that is
 * kept and counted as missing: the repository was rolled back to an
 * older copy or had points deleted behind bootback's back, and the
 * caller refuses to write, prune, GC or pass a check until a person
 * accepts it (accept_missing: those rows are removed, counted in both
 * removed and missing).  One transaction per point; safe while other
 * processes write. */
struct catalog_sync {
  bool accept_missing;          /* in: forget the missing points' rows */
  size_t added, removed;        /* out: rows added and removed */
  size_t missing;               /* out: points gone, not pruned by bootback */
  char missing_names[1024];     /* out: "VM@ID, ..." of the first ones */
};
int catalog_points_sync (struct catalog *c, int64_t repo_id, struct repo *r,
                         struct catalog_sync *out);

/* Does the catalog's row of m's point record m's disks (names, sizes,
 * index digests, in order)?  1 yes, 0 it records others, 2 it has no row
 * of that point, -1 error. */
int catalog_point_same_disks (struct catalog *c, int64_t repo_id,
                              const struct repo_manifest *m);

/* Points of a repository (vm NULL = all), oldest first per VM, with their
 * disks, as manifests (only the fields the catalog keeps are set). */
typedef int (*catalog_point_fn) (void *opaque, const struct repo_manifest *m);
int catalog_point_list (struct catalog *c, int64_t repo_id, const char *vm,
                        catalog_point_fn fn, void *opaque);

/* The same, only the rows [offset, offset + limit) of that order; *total
 * gets the number of all (for paging). */
int catalog_point_page (struct catalog *c, int64_t repo_id, const char *vm,
                        int64_t offset, int64_t limit, int64_t *total,
                        catalog_point_fn fn, void *opaque);
/* Of repository repo_id's points: the sum of their disks' sizes
 * (logical) and of the bytes each wrote (stored, compressed). */
int catalog_repo_usage (struct catalog *c, int64_t repo_id, uint64_t *logical,
                        uint64_t *stored);
/* The same per point, in no order (sorting 10,000 rows in SQL costs more
 * than reading them): its time, disks' sizes and stored bytes (the
 * dashboard's usage over time; no manifests built). */
typedef int (*catalog_usage_fn) (void *opaque, int64_t time, uint64_t logical,
                                 uint64_t stored);
int catalog_repo_usage_times (struct catalog *c, int64_t repo_id,
                              catalog_usage_fn fn, void *opaque);

/* ---- jobs ----------------------------------------------------------------------- */

/* Record the start of a job ("import", "restore", "verify", "gc", ...). */
int64_t catalog_job_begin (struct catalog *c, const char *kind, int64_t repo_id,
                           const char *vm);
/* status: "ok", "failed", "problems"; message and stats_json may be NULL. */
int catalog_job_end (struct catalog *c, int64_t job, const char *status,
                     const char *point, const char *message,
                     const char *stats_json);

/* ---- instant-recovery sessions (rows only; recovery/instant owns their
 * meaning, and the JSON in data) ------------------------------------------- */

struct catalog_session {
  int64_t id;
  const char *name;          /* libvirt domain name */
  const char *vm, *point;    /* the restore point */
  const char *repo;          /* repository location */
  const char *uri;           /* libvirt URI, "" = default */
  const char *state;         /* starting, running, migrating, ... */
  double created, updated;   /* Unix time (set by the catalog) */
  int64_t supervisor_pid;    /* 0 if none */
  const char *data;          /* JSON object */
  const char *message;       /* last error or note, "" if none */
};
/* Insert a row (id, created, updated are ignored); *id gets its id. */
int catalog_session_add (struct catalog *c, const struct catalog_session *s,
                         int64_t *id);
/* Update name, state, supervisor_pid, data and message of row s->id, only
 * if its state is from_state (NULL: whatever it is).  Returns 0 if updated,
 * 1 if the row was not in from_state (or does not exist), -1 on error. */
int catalog_session_update (struct catalog *c, const struct catalog_session *s,
                            const char *from_state);
/* Rows (id 0 = all), by id; the strings are valid during the call only. */
typedef int (*catalog_session_fn) (void *opaque, const struct catalog_session *s);
int catalog_session_list (struct catalog *c, int64_t id, catalog_session_fn fn,
                          void *opaque);

/* ---- verification lab runs (rows only; verify/history.c owns their
 * meaning) ------------------------------------------------------------------ */

/* Times in seconds; a time < 0 is stored as NULL (not reached). */
struct catalog_lab_run {
  const char *run, *lab, *kind;  /* run id, lab name, "run", "verify", ... */
  const char *file;              /* lab definition file, "" if none */
  int64_t started;               /* Unix time */
  double seconds;
  const char *status;            /* "passed", "failed", "error", ... */
  int vms, checks, passed, failed, skipped;
  const char *report_dir, *message;   /* "" if none */
};
struct catalog_lab_vm {
  const char *vm, *group, *source, *domain, *address;  /* "" if none */
  const char *status;            /* "pass", "fail" */
  double t_boot, t_heartbeat, t_app_ready;
  const char *message;
};
struct catalog_check_result {
  const char *vm, *name, *kind, *status, *message;
  int attempts;
  double seconds, at;
};
/* Add one row; *id gets its id.  A run's rows belong in one transaction
 * (catalog_begin), the caller's. */
int catalog_lab_run_add (struct catalog *c, const struct catalog_lab_run *r,
                         int64_t *id);
int catalog_lab_vm_add (struct catalog *c, int64_t run_id,
                        const struct catalog_lab_vm *v, int64_t *id);
int catalog_check_result_add (struct catalog *c, int64_t run_id, int64_t vm_id,
                              const struct catalog_check_result *r);

/* The run chain (schema 4): each lab_runs row carries the hash of the
 * run recorded before it (prev_hash, '' for the first) and its own hash,
 * SHA-256 over a canonical serialisation of its row, its lab_vms and
 * check_results rows and prev_hash (catalog.c, run_hash).  Rows of
 * schema 3 have neither (unchained). */
/* Chain run id (its rows added) after the newest chained run before it:
 * prev and hash get the hex hashes.  In the caller's transaction, which
 * must be catalog_begin's (BEGIN IMMEDIATE) so that writers chain one
 * after the other. */
int catalog_lab_run_chain (struct catalog *c, int64_t id,
                           char prev[SHA256_HEX_LEN + 1],
                           char hash[SHA256_HEX_LEN + 1]);
/* Every run, oldest (lowest id) first, with its stored hashes (NULL if
 * none) and, if it has a hash, computed: its hash recomputed from its
 * rows now and its stored prev_hash.  One read transaction; the strings
 * are valid during the call only. */
struct catalog_lab_link {
  int64_t id;
  const char *run, *lab;
  int64_t started;
  const char *prev_hash, *hash;
  char computed[SHA256_HEX_LEN + 1];
};
typedef int (*catalog_lab_chain_fn) (void *opaque, const struct catalog_lab_link *l);
int catalog_lab_chain (struct catalog *c, catalog_lab_chain_fn fn, void *opaque);
/* The state directory the catalog is in (where the report key is). */
const char *catalog_home (struct catalog *c);

/* One VM in one past run: its lab_vms row with its run's. */
struct catalog_lab_history {
  const char *run, *lab, *kind;
  int64_t started;               /* of the run, Unix time */
  const char *run_status;        /* of the run: "passed", "failed", "error", ... */
  const char *status, *source;   /* of the VM */
  double t_boot, t_heartbeat, t_app_ready;   /* -1 if not reached */
  const char *report_dir, *message;
  const char *failed_checks;     /* names, "; " between them, "" if none */
};
/* The runs that had a VM named vm, oldest first; the strings are valid
 * during the call only. */
typedef int (*catalog_lab_history_fn) (void *opaque,
                                       const struct catalog_lab_history *h);
int catalog_lab_history (struct catalog *c, const char *vm,
                         catalog_lab_history_fn fn, void *opaque);

/* ---- summaries (bootback report; verify/summary.c owns their meaning) -- */

/* One VM of one lab run, for summaries. */
struct catalog_lab_vm_row {
  const char *vm, *source, *status;
  int64_t started;               /* of the run, Unix time */
  double t_app_ready;            /* -1 if not reached */
};
/* The VM rows of the lab runs started at or after since that reached a
 * verdict (passed or failed: not a run that could not verify, was
 * interrupted or is a sandbox still up), oldest first; the strings are
 * valid during the call only. */
typedef int (*catalog_lab_vm_row_fn) (void *opaque,
                                      const struct catalog_lab_vm_row *v);
int catalog_lab_vm_rows (struct catalog *c, int64_t since,
                         catalog_lab_vm_row_fn fn, void *opaque);
/* The points of repository repo_id: VM, id and time, oldest first per VM
 * (lighter than catalog_point_list: no disks); strings valid during the
 * call only. */
typedef int (*catalog_point_time_fn) (void *opaque, const char *vm,
                                      const char *id, int64_t time);
int catalog_point_times (struct catalog *c, int64_t repo_id,
                         catalog_point_time_fn fn, void *opaque);

/* The number of lab runs of each status ("passed", "failed", ...). */
typedef int (*catalog_count_fn) (void *opaque, const char *key, int64_t n);
int catalog_lab_run_counts (struct catalog *c, catalog_count_fn fn, void *opaque);

/* ---- boot traces (recovery/repo/trace.h; recovery/instant/trace.c owns
 * their meaning): the newest of each VM's disk ------------------------------ */

struct catalog_trace {
  const char *vm, *disk;
  const char *point;             /* the point whose boot it is */
  const char *repo;              /* its repository's location */
  double seconds;                /* to the guest agent's first answer */
  int64_t chunks;
  const char *text;              /* the trace file's text */
};
/* Insert, or replace the VM's disk's trace. */
int catalog_trace_put (struct catalog *c, const struct catalog_trace *t);
/* The VM's disk's trace: point and *text (malloc'd).  0, 1 if there is
 * none, -1 on error. */
int catalog_trace_get (struct catalog *c, const char *vm, const char *disk,
                       char point[TIMESTAMP_LEN + 1], char **text);

/* ---- hypervisor hosts (bootback host add / hosts; schema 9) -------------- */

/* A host as kept: its name and libvirt URI; added is a Unix time; ssh its
 * ssh destination [USER@]HOST[:PORT] for labs there (schema 12), or NULL. */
struct catalog_host {
  const char *name;
  const char *uri;
  int64_t added;
  const char *ssh;
};
/* Add a host (ssh may be NULL); 1 (error set) if the name is taken. */
int catalog_host_add (struct catalog *c, const char *name, const char *uri,
                      const char *ssh);
/* Remove a host; 1 (error set) if there is none of that name. */
int catalog_host_remove (struct catalog *c, const char *name);
/* Every host (name NULL) or the one called name, by name; the strings are
 * valid during the call only.  The number of hosts, or -1. */
typedef int (*catalog_host_fn) (void *opaque, const struct catalog_host *h);
int catalog_host_list (struct catalog *c, const char *name, catalog_host_fn fn,
                       void *opaque);

/* ---- API tokens of bootback web (web/web.h owns their meaning) ---------- */

/* A token as kept: its name, the hex SHA-256 of the token (never the
 * token itself) and its role (web.h); times are Unix times, last_used 0
 * if never. */
struct catalog_token {
  const char *name, *sha256, *role;
  int64_t created, last_used;
};
/* Add a token; 1 (error set) if the name is taken. */
int catalog_token_add (struct catalog *c, const char *name, const char *sha256,
                       const char *role);
/* Remove a token; 1 (error set) if there is none of that name. */
int catalog_token_revoke (struct catalog *c, const char *name);
/* Every token, by name; the strings are valid during the call only. */
typedef int (*catalog_token_fn) (void *opaque, const struct catalog_token *t);
int catalog_token_list (struct catalog *c, catalog_token_fn fn, void *opaque);
/* Record that the token name was used now (to the minute: a use within
 * a minute of the recorded one writes nothing). */
int catalog_token_used (struct catalog *c, const char *name);

/* ---- ransomware scores (score.h) ---------------------------------------- */

struct catalog_score {
  char point[TIMESTAMP_LEN + 1];
  struct score_stats st;
  double score;
  bool suspicious, unflagged;   /* flagged = suspicious && !unflagged */
  char reason[SCORE_REASON_MAX];
};
/* Record (replace) point m's statistics and verdict. */
int catalog_score_put (struct catalog *c, int64_t repo_id,
                       const struct repo_manifest *m,
                       const struct score_stats *st,
                       const struct score_verdict *v);
/* 1 and *out filled, 0 if the point has no score, -1 on error. */
int catalog_score_get (struct catalog *c, int64_t repo_id, const char *vm,
                       const char *id, struct catalog_score *out);
/* The statistics of at most max of vm's existing points before t, oldest
 * first, leaving out points flagged suspicious (not unflagged). */
int catalog_score_history (struct catalog *c, int64_t repo_id,
                           const char *vm, time_t t,
                           struct score_stats *hist, size_t max, size_t *n);
/* Score new point m of repository r (score.c): its statistics against the
 * VM's point before it into *st, judged against the VM's history into *v
 * (not recorded: catalog_score_put).  -1 with the error set. */
int catalog_score_point (struct catalog *c, struct repo *r, int64_t repo_id,
                         const struct repo_manifest *m, struct score_stats *st,
                         struct score_verdict *v);
/* An administrator checked it: -1 "VM@ID is not marked suspicious". */
int catalog_score_unflag (struct catalog *c, int64_t repo_id, const char *vm,
                          const char *id);

/* ---- jobs of bootback web (web/jobs.c) ----------------------------------- */

struct catalog_webjob {
  int64_t id;
  const char *action, *args;     /* args: a JSON object's text */
  const char *state;             /* queued, running, done, failed */
  int64_t pid;                   /* of the job's process, 0 before */
  int64_t done, total;           /* progress */
  const char *phase;
  double started, ended;         /* ended 0: not yet */
  const char *result, *error;    /* result: JSON text; either may be NULL */
};
/* A new queued job: its id, -1 on error. */
int64_t catalog_webjob_add (struct catalog *c, const char *action,
                            const char *args);
/* Queued job id now runs in process pid. */
int catalog_webjob_running (struct catalog *c, int64_t id, int64_t pid);
/* Its progress (phase NULL: unchanged). */
int catalog_webjob_progress (struct catalog *c, int64_t id, uint64_t done,
                             uint64_t total, const char *phase);
/* Its end (state done or failed; result, error may be NULL): 1, or 0 if it
 * had ended already (the first end stays), -1 on error. */
int catalog_webjob_end (struct catalog *c, int64_t id, const char *state,
                        const char *result, const char *error);
/* Every queued or running job failed with error: how many, -1 on error. */
int catalog_webjob_end_all (struct catalog *c, const char *error);
/* The strings are valid during the call only. */
typedef int (*catalog_webjob_fn) (void *opaque, const struct catalog_webjob *j);
/* Job id (fn not called if there is none). */
int catalog_webjob_get (struct catalog *c, int64_t id, catalog_webjob_fn fn,
                        void *opaque);
/* Jobs [offset, offset + limit), newest first; *total: all of them. */
int catalog_webjob_page (struct catalog *c, int64_t offset, int64_t limit,
                         int64_t *total, catalog_webjob_fn fn, void *opaque);
/* ---- malware scans (bootback scan) ------------------------------------- */

struct catalog_scan {
  int64_t time;                 /* when it was scanned */
  char verdict[16];             /* "clean", "found", "incomplete" */
  int64_t found, files;
  char since[TIMESTAMP_LEN + 1];  /* --since's point, or "" */
  char *report;                 /* the report (JSON); get: caller frees */
};
/* Record (replace) the latest scan of vm@id. */
int catalog_scan_put (struct catalog *c, int64_t repo_id, const char *vm,
                      const char *id, const struct catalog_scan *r);
/* 1 and *out filled, 0 if the point was never scanned, -1 on error. */
int catalog_scan_get (struct catalog *c, int64_t repo_id, const char *vm,
                      const char *id, struct catalog_scan *out);

#endif /* BOOTBACK_CATALOG_H */
