/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The actions of POST /api/v1/jobs: their arguments, checked strictly in
 * the server before anything starts (web_action_check), and what each
 * does in its job's process (jobs.c).  Each calls the library functions
 * its CLI command calls (recovery/ingest, recovery/instant, recovery/repo,
 * lab, verify), never the CLI.
 *
 *   backup  {vm, full?, disks?, quiesce?}      bootback backup VM
 *   verify  {vm, point?}                       bootback verify VM[@TIME]
 *   instant {vm, point?, name?, network?, agent_timeout?}
 *   stop    {session, discard?}                bootback instant stop
 *   migrate {session, to, format?}             bootback migrate --to
 *           (to: a --migrate-dir; the job gets it resolved and checks
 *           again that it still resolves to itself)
 *   lab-up  {definition | name, lease?}        bootback lab up
 *   lab-down {lab}                             bootback lab down ID
 *   prune   {vm?, keep_last?, ..., dry_run?}   bootback prune
 *   gc      {dry_run?}                         bootback gc
 *
 * Trust: arguments come from a token holder, not from guests; still,
 * names are names (no '/', no ".."), paths are absolute without "..", a
 * lab-up name picks a file of HOME/lab-definitions/, a lab-up definition
 * sent in the request may neither run a host program (script checks),
 * read host files (a scan check's rules or signatures) nor boot a host
 * file (image VMs), and nothing reaches a shell.  What a
 * guest or the repository says leaves as JSON strings.
 */
#include <errno.h>
#include <limits.h>

#include "web/web-int.h"
#include "lab/lab.h"
#include "recovery/ingest/ingest.h"
#include "recovery/instant/instant.h"
#include "verify/verify.h"

#define TEXT_MAX (32 * 1024)         /* a lab definition in a request */
#define COUNT_MAX 1000000

enum kind { NAME, POINT, SESSION, BOOL, COUNT, PATH, TEXT, DURATION, NAMES,
            FORMAT };

struct arg {
  const char *key;
  enum kind kind;
  bool required;
};

struct action {
  struct web_action a;
  struct arg args[10];
};

/* ---- checking ------------------------------------------------------------ */

static const char *
kind_name (enum kind k)
{
  static const char *const n[] = {
    "a name", "a point time like 20261122T045506Z", "a session id or name",
    "true or false", "a count", "an absolute path", "a string",
    "a duration like 4h", "an array of names", "\"qcow2\" or \"raw\"",
  };
  return n[k];
}

static bool
name_ok (const char *s)
{
  return name_is_valid (s) && !strstr (s, "..") && !strchr (s, '/');
}

static bool
path_ok (const char *s)
{
  const char *p;

  if (s[0] != '/' || strlen (s) >= 4096 || strstr (s, "/../") ||
      (strlen (s) >= 3 && strcmp (s + strlen (s) - 3, "/..") == 0))
    return false;
  for (p = s; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return false;
  return true;
}

static bool
names_ok (json_t *v)
{
  size_t i;
  json_t *e;

  if (!json_is_array (v) || json_array_size (v) == 0 ||
      json_array_size (v) > REPO_MAX_DISKS)
    return false;
  json_array_foreach (v, i, e)
    if (!json_is_string (e) || !name_ok (json_string_value (e)))
      return false;
  return true;
}

/* Is v what kind k wants? */
static bool
value_ok (enum kind k, json_t *v)
{
  const char *s = json_string_value (v);

  switch (k) {
  case BOOL: return json_is_boolean (v);
  case COUNT: return json_is_integer (v) && json_integer_value (v) >= 0 &&
                     json_integer_value (v) <= COUNT_MAX;
  case NAMES: return names_ok (v);
  default: break;
  }
  if (!s)
    return false;
  switch (k) {
  case NAME: case SESSION: return name_ok (s);
  case POINT: return point_id_is_valid (s) || strcmp (s, "latest") == 0;
  case PATH: return path_ok (s);
  case TEXT: return *s && strlen (s) <= TEXT_MAX;
  case DURATION: return lab_parse_duration (s) >= 60 || (error_clear (), false);
  case FORMAT: return strcmp (s, "qcow2") == 0 || strcmp (s, "raw") == 0;
  default: return false;
  }
}

static const struct arg *
find_arg (const struct action *a, const char *key)
{
  const struct arg *g;

  for (g = a->args; g->key; g++)
    if (strcmp (g->key, key) == 0)
      return g;
  return NULL;
}

/* The known keys of a, for a message. */
static void
known_keys (const struct action *a, char *buf, size_t n)
{
  const struct arg *g;
  size_t len = 0;

  buf[0] = '\0';
  for (g = a->args; g->key && len < n; g++)
    len += snprintf (buf + len, n - len, "%s%s", len ? ", " : "", g->key);
  if (!a->args[0].key)
    snprintf (buf, n, "none");
}

/* Every key of args is a's, of the right kind; every required one is
 * there.  false with why. */
static bool
args_ok (const struct action *a, json_t *args, char *why, size_t n)
{
  const struct arg *g;
  const char *key;
  json_t *v;
  char known[256];

  json_object_foreach (args, key, v) {
    if (!(g = find_arg (a, key))) {
      known_keys (a, known, sizeof known);
      snprintf (why, n, "action %s: unknown argument '%.64s' (known: %s)",
                a->a.name, key, known);
      return false;
    }
    if (!value_ok (g->kind, v)) {
      snprintf (why, n, "action %s: argument '%s' is not %s", a->a.name,
                key, kind_name (g->kind));
      return false;
    }
  }
  for (g = a->args; g->key; g++)
    if (g->required && !json_object_get (args, g->key)) {
      snprintf (why, n, "action %s: argument '%s' is missing", a->a.name, g->key);
      return false;
    }
  return true;
}

/* ---- helpers of the jobs ------------------------------------------------- */

static const char *
str (json_t *args, const char *key)
{
  return json_string_value (json_object_get (args, key));
}

static bool
flag (json_t *args, const char *key, bool dflt)
{
  json_t *v = json_object_get (args, key);

  return v ? json_is_true (v) : dflt;
}

/* The server's repository, opened as the CLI does ($BOOTBACK_NFS_*). */
static struct repo *
job_repo (struct web_job *j, struct repo_open_opts *ro)
{
  struct repo *r;
  int known = 0;

  if (!j->o->repo || !*j->o->repo || !j->o->repo_id) {
    snprintf (j->error, sizeof j->error, "bootback web has no repository "
              "(bootback repo init, or --repo)");
    return NULL;
  }
  repo_open_opts_nfs (ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  r = repo_open_with (j->o->repo, ro);
  /* the lock the catalog knows: no point is written while the
   * repository's file says less (repo_expect_lock) */
  if (r && (catalog_repo_check (j->cat, repo_location (r), repo_uuid (r),
                                repo_encrypted (r)) == -1 ||
            catalog_repo_lock (j->cat, repo_location (r),
                               repo_file_lock_days (r), false, &known) == -1)) {
    repo_close (r);
    return NULL;
  }
  if (r)
    repo_expect_lock (r, known);
  return r;
}

/* job_repo, for a job that writes points or removes chunks: refused
 * while restore points the catalog recorded are gone without bootback's
 * prune (catalog_points_sync: a rollback), as the CLI refuses. */
static struct repo *
job_repo_intact (struct web_job *j, struct repo_open_opts *ro)
{
  struct repo *r = job_repo (j, ro);
  struct catalog_sync sy = { 0 };

  if (!r)
    return NULL;
  if (catalog_points_sync (j->cat, j->o->repo_id, r, &sy) == -1 || sy.missing) {
    if (sy.missing)
      error_setx ("%s: %zu restore points the catalog recorded are gone and "
                  "bootback did not prune them (%s): the repository may have been "
                  "replaced by an older copy; refusing (if it was deliberate: "
                  "bootback repo check --accept-rollback)", repo_location (r),
                  sy.missing, sy.missing_names);
    repo_close (r);
    return NULL;
  }
  return r;
}

/* A library note or warning: the job's phase, and the server's log. */
static void
job_note (void *opaque, const char *line)
{
  struct web_job *j = opaque;

  fprintf (stderr, "bootback web: job %" PRId64 ": %s\n", j->id, line);
  web_job_progress (j, 0, 0, line);
}

static void
run_note (void *opaque, bool warning, const char *line)
{
  job_note (opaque, line);
}

/* ---- the actions ---------------------------------------------------------- */

static int
do_gc (struct web_job *j, json_t *args, json_t **result)
{
  struct repo_open_opts ro = { 0 };
  struct repo *r = job_repo_intact (j, &ro);
  struct repo_gc_result res;
  bool dry = flag (args, "dry_run", false);
  int64_t job;
  int rc;

  if (!r)
    return -1;
  web_job_progress (j, 0, 1, "collecting garbage");
  job = catalog_job_begin (j->cat, "gc", j->o->repo_id, NULL);
  rc = repo_gc (r, dry, &res);
  catalog_job_end (j->cat, job, rc == 0 ? "ok" : "failed", NULL,
                   rc == 0 ? NULL : error_msg (), NULL);
  repo_close (r);
  if (rc == 0) {
    *result = repo_gc_result_json (&res, dry);
    web_job_progress (j, 1, 1, NULL);
  }
  return rc;
}

static int
do_instant (struct web_job *j, json_t *args, json_t **result)
{
  struct repo_open_opts ro = { 0 };
  CLEANUP_FREE struct instant_session *s = xcalloc (1, sizeof *s);
  CLEANUP_FREE char *spec = xasprintf ("%s@%s", str (args, "vm"),
                                       str (args, "point") ? str (args, "point")
                                       : "latest");
  json_t *at = json_object_get (args, "agent_timeout");
  struct instant_opts o = {
    .home = j->o->home, .repo = j->o->repo, .point = spec,
    .name = str (args, "name"), .network = str (args, "network"),
    .agent_timeout = at ? json_integer_value (at) : 120,
    .note = job_note, .note_opaque = j, .warn = job_note, .warn_opaque = j,
    .repo_open = &ro,
  };

  instant_opts_env (&o);
  repo_open_opts_nfs (&ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  web_job_progress (j, 0, 1, "starting the session");
  instant_reattach (j->cat, j->o->home);
  if (instant_start (j->cat, &o, s) == -1) {
    if (s->id > 0)
      snprintf (j->error, sizeof j->error, "session %" PRId64 " failed "
                "(nothing left behind): %s", s->id, error_msg ());
    return -1;
  }
  *result = instant_session_json (s);
  web_job_progress (j, 1, 1, "running");
  return 0;
}

static int
do_stop (struct web_job *j, json_t *args, json_t **result)
{
  CLEANUP_FREE struct instant_session *s = xcalloc (1, sizeof *s);
  struct repo_open_opts ro = { 0 };
  struct instant_stop_opts o = {
    .discard = flag (args, "discard", false), .repo_open = &ro,
    .warn = job_note, .warn_opaque = j,
  };

  repo_open_opts_nfs (&ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  web_job_progress (j, 0, 1, "stopping the session");
  if (instant_session_get (j->cat, str (args, "session"), s) == -1 ||
      instant_stop_with (j->cat, s->id, &o) == -1)
    return -1;
  *result = json_pack ("{s:I, s:s, s:b}", "session", (json_int_t) s->id,
                       "name", s->name, "discarded", o.discard);
  web_job_progress (j, 1, 1, "stopped");
  return 0;
}

/* Migration's progress: bytes copied of all. */
static void
migrate_progress (void *opaque, uint64_t done, uint64_t total)
{
  web_job_progress (opaque, done, total, "copying");
}

static int
do_migrate (struct web_job *j, json_t *args, json_t **result)
{
  CLEANUP_FREE struct instant_session *s = xcalloc (1, sizeof *s);
  struct repo_open_opts ro = { 0 };
  struct instant_migrate_opts o = {
    .to = str (args, "to"), .format = str (args, "format"), .repo_open = &ro,
    .progress = migrate_progress, .progress_opaque = j,
    .warn = job_note, .warn_opaque = j,
  };
  struct instant_migrate_result res;
  char why[PATH_MAX + 256];

  /* the request's check again: its "to" is a --migrate-dir, resolved */
  if (!web_migrate_dir_ok (j->o, o.to, why, sizeof why)) {
    error_setx ("%s", why);
    return -1;
  }
  instant_migrate_opts_env (&o);
  repo_open_opts_nfs (&ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  instant_reattach (j->cat, j->o->home);
  if (instant_session_get (j->cat, str (args, "session"), s) == -1 ||
      instant_migrate (j->cat, s->id, &o, &res) == -1)
    return -1;
  *result = json_pack ("{s:I, s:I, s:f, s:f}", "session", (json_int_t) s->id,
                       "bytes", (json_int_t) res.bytes,
                       "seconds_copy", res.seconds_copy,
                       "seconds_pivot", res.seconds_pivot);
  web_job_progress (j, res.bytes, res.bytes, "migrated");
  return 0;
}

/* Run d (kind "verify" or "sandbox") as the CLI's lab run does: the
 * report in *rp. */
static int
run_lab (struct web_job *j, struct repo *r, const struct lab_def *d,
         const char *kind, double lease, struct verify_report **rp)
{
  const char *max = getenv ("BOOTBACK_LAB_MAX_SANDBOXES");
  struct instant_opts host = { 0 };
  struct verify_run_opts o = {
    .home = j->o->home, .repo = r ? repo_location (r) : NULL, .kind = kind,
    .budget_wait = lease > 0 ? 0 : -1, .lease = lease,
    .max_sandboxes = max && *max ? atoi (max) : 8, .record = j->cat,
    .check_chunks = strcmp (kind, "verify") == 0, .note = run_note,
    .note_opaque = j, .scan = j->o->scan, .scan_opaque = j->o->scan_opaque,
  };

  instant_opts_env (&host);
  o.instant = &host;
  lab_signals_install ();
  if (verify_run (d, &o, rp) == -1) {
    snprintf (j->error, sizeof j->error, "lab %s could not run: %s", d->name,
              error_msg ());
    return -1;
  }
  return 0;
}

static int
do_verify (struct web_job *j, json_t *args, json_t **result)
{
  struct repo_open_opts ro = { 0 };
  struct repo *r = job_repo (j, &ro);
  struct verify_quick q = { .rto = -1, .rpo = -1 };
  CLEANUP_FREE char *spec = NULL, *why = NULL;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  struct verify_report *rep = NULL;
  struct lab_def *d = NULL;
  int rc = -1;

  if (!r)
    return -1;
  spec = xasprintf ("%s@%s", str (args, "vm"),
                    str (args, "point") ? str (args, "point") : "latest");
  if (repo_point_resolve (r, spec, vm, id) == -1 ||
      !(d = verify_quick_def (j->o->home, r, &q, vm, id)))
    goto out;
  web_job_progress (j, 0, 1, "starting the lab");
  if (run_lab (j, r, d, "verify", 0, &rep) == -1)
    goto out;
  *result = verify_report_json (rep);
  rc = strcmp (rep->status, "passed") == 0 ? 0 : -1;
  why = verify_report_reason (rep, vm);
  if (rc == -1)
    snprintf (j->error, sizeof j->error, "%s@%s: verification %s: %s", vm, id,
              rep->status, *why ? why : rep->message ? rep->message : "see the report");
  web_job_progress (j, 1, 1, rep->status);
 out:
  verify_report_free (rep);
  lab_def_free (d);
  repo_close (r);
  return rc;
}

/* The definition lab-up asks for: its text, or HOME/lab-definitions/NAME.yaml. */
static struct lab_def *
lab_up_def (struct web_job *j, json_t *args)
{
  CLEANUP_FREE char *errs = NULL, *path = NULL;
  struct lab_def *d;

  if (str (args, "definition"))
    d = lab_def_read_string (str (args, "definition"), "definition", &errs);
  else {
    path = xasprintf ("%s/lab-definitions/%s.yaml", j->o->home, str (args, "name"));
    d = lab_def_read_file (path, &errs);
  }
  if (!d && errs) {
    errs[strcspn (errs, "\n")] = '\0';
    snprintf (j->error, sizeof j->error, "not a valid lab definition: %s", errs);
  }
  return d;
}

static int
do_lab_up (struct web_job *j, json_t *args, json_t **result)
{
  struct repo_open_opts ro = { 0 };
  struct lab_def *d = lab_up_def (j, args);
  struct verify_report *rep = NULL;
  struct repo *r = NULL;
  double lease = str (args, "lease") ? lab_parse_duration (str (args, "lease"))
                                     : 4 * 3600;
  int rc = -1;

  if (!d)
    return -1;
  if (lab_def_needs_repo (d) && !(r = job_repo (j, &ro)))
    goto out;
  web_job_progress (j, 0, 1, "starting the sandbox");
  if (run_lab (j, r, d, "sandbox", lease, &rep) == -1)
    goto out;
  *result = verify_report_json (rep);
  rc = rep->expires ? 0 : -1;
  if (rc == -1)
    snprintf (j->error, sizeof j->error, "sandbox %s did not come up: %s",
              rep->run_id ? rep->run_id : d->name,
              rep->message ? rep->message : rep->status);
  web_job_progress (j, 1, 1, rc == 0 ? "up" : rep->status);
 out:
  verify_report_free (rep);
  lab_def_free (d);
  repo_close (r);
  return rc;
}

static int
do_lab_down (struct web_job *j, json_t *args, json_t **result)
{
  struct lab_state **v = lab_state_list (j->o->home);
  const char *id = str (args, "lab");
  size_t k;
  int rc = -1;

  for (k = 0; v && v[k] && strcmp (v[k]->id, id) != 0; k++)
    ;
  if (!v || !v[k])
    snprintf (j->error, sizeof j->error, "no lab %s (GET /api/v1/labs)", id);
  else {
    web_job_progress (j, 0, 1, "tearing down");
    if ((rc = lab_state_teardown (v[k], NULL)) == 0) {
      *result = json_pack ("{s:s, s:s}", "lab", id, "name", v[k]->lab ? v[k]->lab : "");
      web_job_progress (j, 1, 1, "down");
    }
  }
  lab_state_list_free (v);
  return rc;
}

static void
backup_note (void *opaque, const char *msg)
{
  job_note (opaque, msg);
}

/* Steps 4 and 5 of a backup's commit, as bootback backup does: the
 * catalog's row and ransomware score, then the checkpoint advances. */
static json_t *
backup_record (struct web_job *j, struct repo *r, struct ingest_backup *b,
               const struct repo_manifest *m, const struct backup_result *res)
{
  struct score_verdict v = { 0 };
  struct score_stats st;
  int scored;

  if (catalog_point_put (j->cat, j->o->repo_id, m) == -1)
    job_note (j, error_msg ());
  scored = catalog_score_point (j->cat, r, j->o->repo_id, m, &st, &v);
  if (scored == -1)
    job_note (j, error_msg ());
  else if (catalog_score_put (j->cat, j->o->repo_id, m, &st, &v) == -1)
    job_note (j, error_msg ());
  /* the alert, as bootback backup runs it (the server's environment) */
  if (scored != -1 && v.suspicious && getenv ("BOOTBACK_ON_SUSPICIOUS") &&
      score_alert (getenv ("BOOTBACK_ON_SUSPICIOUS"), m->vm, m->id, &v) == -1) {
    CLEANUP_FREE char *why = xasprintf ("suspicious-point %s", error_msg ());
    job_note (j, why);
  }
  if (ingest_backup_advance (b) == -1)
    job_note (j, error_msg ());
  return json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:o}",
                    "vm", m->vm, "id", m->id, "kind", res->kind,
                    "consistency", res->consistency,
                    "bytes_read", (json_int_t) res->bytes_read,
                    "new_chunks", (json_int_t) m->stats.new_chunks,
                    "reused_chunks", (json_int_t) m->stats.reused_chunks,
                    "seconds", m->stats.seconds,
                    "score", scored == -1 ? json_null ()
                    : json_pack ("{s:f, s:b, s:s}", "score", v.score,
                                 "suspicious", v.suspicious, "reason", v.reason));
}

static int
do_backup (struct web_job *j, json_t *args, json_t **result)
{
  struct repo_open_opts ro = { 0 };
  struct repo *r = job_repo_intact (j, &ro);
  const char *disks[REPO_MAX_DISKS];
  json_t *dv = json_object_get (args, "disks"), *e;
  struct backup_opts o = {
    .domain = str (args, "vm"), .full = flag (args, "full", false),
    .quiesce = flag (args, "quiesce", true), .note = backup_note, .opaque = j,
    .scratch_dir = getenv ("BOOTBACK_SCRATCH_DIR"),
  };
  struct ingest_backup *b = NULL;
  struct backup_result res;
  struct repo_manifest m;
  int64_t job;
  size_t i;
  int rc = -1;

  if (!r)
    return -1;
  json_array_foreach (dv, i, e)
    disks[o.ndisks++] = json_string_value (e);
  o.disks = o.ndisks ? disks : NULL;
  job = catalog_job_begin (j->cat, "backup", j->o->repo_id, o.domain);
  web_job_progress (j, 0, 0, "starting the backup");
  if ((b = ingest_backup_open (&o)) && ingest_backup_run (b, r, &m, &res) == 0) {
    rc = 0;
    *result = backup_record (j, r, b, &m, &res);
  }
  catalog_job_end (j->cat, job, rc == 0 ? "ok" : "failed", rc == 0 ? m.id : NULL,
                   rc == 0 ? NULL : error_msg (), NULL);
  ingest_backup_close (b);
  repo_close (r);
  return rc;
}

/* A prune decision: into the result's array. */
static int
prune_one (void *opaque, const struct instant_prune_item *it)
{
  json_array_append_new (opaque, json_pack ("{s:s, s:s, s:s, s:s?, s:s?}",
                                            "vm", it->vm, "id", it->id,
                                            "action", it->removed ? "remove" : "keep",
                                            "reason", it->reason,
                                            "held_by", it->held_by));
  return 0;
}

static int
do_prune (struct web_job *j, json_t *args, json_t **result)
{
  struct repo_open_opts ro = { 0 };
  struct repo *r = job_repo (j, &ro);
  struct instant_prune o = {
    .home = j->o->home, .repo_id = j->o->repo_id, .vm = str (args, "vm"),
    .dry_run = flag (args, "dry_run", false), .decided = prune_one,
    .note = job_note, .opaque = j,
  };
  static const char *const keys[] = { "keep_last", "keep_hourly", "keep_daily",
                                      "keep_weekly", "keep_monthly", "keep_yearly" };
  int *rules[] = { &o.keep.last, &o.keep.hourly, &o.keep.daily, &o.keep.weekly,
                   &o.keep.monthly, &o.keep.yearly };
  json_t *a = json_array ();
  size_t i, any = 0;
  int rc;

  for (i = 0; i < 6; i++)
    if (json_object_get (args, keys[i])) {
      *rules[i] = json_integer_value (json_object_get (args, keys[i]));
      any++;
    }
  if (!r || !any) {
    if (!any)
      snprintf (j->error, sizeof j->error, "prune needs at least one keep_* "
                "rule (it would remove nothing)");
    json_decref (a);
    repo_close (r);
    return -1;
  }
  o.decided_opaque = a;
  web_job_progress (j, 0, 1, "pruning");
  rc = instant_prune (j->cat, r, &o);
  repo_close (r);
  if (rc == -1) {
    json_decref (a);
    return -1;
  }
  *result = json_pack ("{s:b, s:I, s:I, s:o}", "dry_run", o.dry_run,
                       "removed", (json_int_t) o.removed,
                       "kept", (json_int_t) o.kept, "points", a);
  web_job_progress (j, 1, 1, NULL);
  return 0;
}

/* ---- the table ------------------------------------------------------------ */

#define REQ(k, kind) { k, kind, true }
#define OPT(k, kind) { k, kind, false }

static const struct action actions[] = {
  { { "backup", WEB_ROLE_OPERATE, do_backup },
    { REQ ("vm", NAME), OPT ("full", BOOL), OPT ("disks", NAMES),
      OPT ("quiesce", BOOL) } },
  { { "verify", WEB_ROLE_OPERATE, do_verify },
    { REQ ("vm", NAME), OPT ("point", POINT) } },
  { { "instant", WEB_ROLE_OPERATE, do_instant },
    { REQ ("vm", NAME), OPT ("point", POINT), OPT ("name", NAME),
      OPT ("network", NAME), OPT ("agent_timeout", COUNT) } },
  { { "stop", WEB_ROLE_OPERATE, do_stop },
    { REQ ("session", SESSION), OPT ("discard", BOOL) } },
  { { "migrate", WEB_ROLE_OPERATE, do_migrate },
    { REQ ("session", SESSION), REQ ("to", PATH), OPT ("format", FORMAT) } },
  { { "lab-up", WEB_ROLE_OPERATE, do_lab_up },
    { OPT ("definition", TEXT), OPT ("name", NAME), OPT ("lease", DURATION) } },
  { { "lab-down", WEB_ROLE_OPERATE, do_lab_down }, { REQ ("lab", NAME) } },
  { { "prune", WEB_ROLE_ADMIN, do_prune },
    { OPT ("vm", NAME), OPT ("keep_last", COUNT), OPT ("keep_hourly", COUNT),
      OPT ("keep_daily", COUNT), OPT ("keep_weekly", COUNT),
      OPT ("keep_monthly", COUNT), OPT ("keep_yearly", COUNT),
      OPT ("dry_run", BOOL) } },
  { { "gc", WEB_ROLE_ADMIN, do_gc }, { OPT ("dry_run", BOOL) } },
};
#define NACTIONS (sizeof actions / sizeof actions[0])
#define ACTION_NAMES "backup, verify, instant, stop, migrate, lab-up, lab-down, " \
  "prune, gc"

/* A definition sent in a request may not make the host run a program
 * (script checks), boot a host file (image VMs) or listen on a host port
 * (publish): only a definition the administrator put in
 * HOME/lab-definitions/ may.  false with why. */
static bool
definition_ok (const char *yaml, char *why, size_t n)
{
  CLEANUP_FREE char *errs = NULL;
  struct lab_def *d = lab_def_read_string (yaml, "definition", &errs);
  size_t g, i, k;
  bool ok = true;

  if (!d) {
    snprintf (why, n, "action lab-up: argument 'definition' is not a valid "
              "lab definition: %.*s", (int) strcspn (errs ? errs : "", "\n"),
              errs ? errs : "");
    return false;
  }
  for (g = 0; ok && g < d->ngroups; g++)
    for (i = 0; ok && i < d->groups[g].nvms; i++) {
      const struct lab_vm *v = &d->groups[g].vms[i];
      if (v->image) {
        snprintf (why, n, "action lab-up: definition: VM %s boots a host file "
                  "(image:); only a definition of HOME/lab-definitions/ may",
                  v->name);
        ok = false;
      }
      for (k = 0; ok && k < v->nchecks; k++)
        if (v->checks[k].kind == LAB_CHECK_SCRIPT) {
          snprintf (why, n, "action lab-up: definition: VM %s: check '%s' runs "
                    "a host program; only a definition of HOME/lab-definitions/ "
                    "may", v->name, v->checks[k].name);
          ok = false;
        }
        else if (v->checks[k].kind == LAB_CHECK_SCAN &&
                 (v->checks[k].rules || v->checks[k].signatures)) {
          snprintf (why, n, "action lab-up: definition: VM %s: check '%s' reads "
                    "host files (rules, signatures); only a definition of "
                    "HOME/lab-definitions/ may (a scan without them uses "
                    "HOME/scan/)", v->name, v->checks[k].name);
          ok = false;
        }
    }
  if (ok && d->npublish) {
    snprintf (why, n, "action lab-up: definition: publish: opens host ports; only "
              "a definition of HOME/lab-definitions/ may");
    ok = false;
  }
  lab_def_free (d);
  return ok;
}

/* The --migrate-dir that to resolves to (links followed), or NULL with
 * why. */
static const char *
migrate_dir_of (const struct web_opts *o, const char *to, char *why, size_t n)
{
  char real[PATH_MAX];
  size_t i;

  if (!o || !o->migrate_dirs) {
    snprintf (why, n, "action migrate: this server has no --migrate-dir: the "
              "administrator names where sessions may be moved to");
    return NULL;
  }
  for (i = 0; o->migrate_dirs[i]; i++)
    if (realpath (to, real) && strcmp (real, o->migrate_dirs[i]) == 0)
      return o->migrate_dirs[i];
  snprintf (why, n, "action migrate: argument 'to' must be one of the server's "
            "--migrate-dir directories");
  return NULL;
}

/* migrate's to: one of the directories the administrator gave the server
 * (--migrate-dir), exactly; bootback names the files in it.  args' "to"
 * becomes that directory, resolved: the job uses what was checked, not
 * a link someone may point elsewhere before it runs. */
static bool
migrate_dir_ok (const struct web_opts *o, json_t *args, char *why, size_t n)
{
  const char *dir = migrate_dir_of (o, str (args, "to"), why, n);

  if (dir)
    json_object_set_new (args, "to", json_string (dir));
  return dir != NULL;
}

bool
web_migrate_dir_ok (const struct web_opts *o, const char *to, char *why, size_t n)
{
  const char *dir = migrate_dir_of (o, to, why, n);

  if (dir && strcmp (dir, to) != 0) {
    snprintf (why, n, "action migrate: %s no longer resolves to itself (a "
              "link was put on its path since the request): refused", to);
    return false;
  }
  return dir != NULL;
}

enum web_role
web_action_role (const struct web_action *a, json_t *args)
{
  if (strcmp (a->name, "stop") == 0 && flag (args, "discard", false))
    return WEB_ROLE_ADMIN;
  return a->role;
}

/* What only one action checks: migrate's target, lab-up's one of
 * definition and name, and its definition. */
static bool
action_rules_ok (const struct web_opts *o, const struct action *a, json_t *args,
                 char *why, size_t n)
{
  if (strcmp (a->a.name, "migrate") == 0)
    return migrate_dir_ok (o, args, why, n);
  if (strcmp (a->a.name, "lab-up") != 0)
    return true;
  if (!json_object_get (args, "definition") == !json_object_get (args, "name")) {
    snprintf (why, n, "action lab-up: give one of 'definition' (the YAML "
              "text) and 'name' (of HOME/lab-definitions/NAME.yaml)");
    return false;
  }
  return !str (args, "definition") || definition_ok (str (args, "definition"), why, n);
}

json_t *
web_action_check (const struct web_opts *o, const char *body, size_t len,
                  const struct web_action **wa,
                  char *why, size_t n)
{
  json_error_t e;
  json_t *args = json_loadb (body, len, JSON_REJECT_DUPLICATES, &e);
  const char *name;
  size_t i;

  if (!args) {
    snprintf (why, n, "request body: not JSON: %s (line %d, column %d)",
              e.text, e.line, e.column);
    return NULL;
  }
  if (!json_is_object (args)) {
    snprintf (why, n, "request body: not a JSON object");
    goto bad;
  }
  if (!(name = json_string_value (json_object_get (args, "action")))) {
    snprintf (why, n, "request body: 'action' (a string: one of %s) is missing",
              ACTION_NAMES);
    goto bad;
  }
  for (i = 0; i < NACTIONS && strcmp (actions[i].a.name, name) != 0; i++)
    ;
  if (i == NACTIONS) {
    snprintf (why, n, "unknown action '%.64s' (one of %s)", name, ACTION_NAMES);
    goto bad;
  }
  json_object_del (args, "action");
  if (!args_ok (&actions[i], args, why, n) ||
      !action_rules_ok (o, &actions[i], args, why, n))
    goto bad;
  *wa = &actions[i].a;
  return args;
 bad:
  json_decref (args);
  return NULL;
}
