/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback scan: match a restore point's guest files against the user's
 * YARA rules and ClamAV signatures (recovery/scan, where the sandbox and
 * the choice of reader are explained).  Each disk is served read-only by
 * the plugin (nbdkit, in a private 0700 directory, without a hold) and
 * read over NBD by the unprivileged scanning child; the repository is
 * never written, only the catalog row of the scan (point_scans).
 *
 * Verdict: "found" (exit 2) if anything matched; else "incomplete" (exit
 * 1) if a disk or a partition could not be scanned, or a file was too
 * large or unreadable — never counted as clean; else "clean" (exit 0).
 * Everything the child reports is guest-controlled text: printed only
 * through xstrdup_printable.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>

#include "recovery/cli/cli.h"
#include "recovery/scan/scan.h"

static const char scan_usage[] =
  "usage: bootback scan VM[@TIME] [--disk NAME] [--rules FILE]\n"
  "                    [--signatures DIR] [--since TIME] [--timeout SECS]\n"
  "                    [--max-file-size BYTES] [--max-depth N] [--json]\n"
  "       bootback scan --find-clean VM [options above but --since]\n"
  "\n"
  "Scan the guest file systems of a restore point for malware: every file\n"
  "is matched against the YARA rules of FILE and the ClamAV signatures\n"
  "(.hdb, .ndb, ...) and YARA rules (*.yar) of DIR (default\n"
  "$BOOTBACK_HOME/scan/).  Partitions and file systems are read in user\n"
  "space (ext2/3/4, FAT, NTFS, XFS, LVM) by an unprivileged process\n"
  "with resource limits; guest symlinks are never followed.  --since TIME\n"
  "scans only files whose data or inode changed since TIME, a point of\n"
  "the same VM with a clean scan.  Exit 0 clean, 2 found, 1 could not scan\n"
  "(everything).  --find-clean finds the newest point of VM that is clean\n"
  "and not marked suspicious, scanning by bisection, newest first, and\n"
  "says which points it checked (exit 0 found one, 2 none).\n";

struct scan_run {
  struct cli *c;
  struct scan_opts o;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  const char *disk, *since;
  json_t *disks, *matches;
  bool incomplete;
  bool rules_bad;               /* the rules did not load: nothing recorded */
  bool find_clean;
};

/* Serve one disk and scan it: its result, or {"disk", "error"}. */
static json_t *
scan_one (struct scan_run *s, const char *disk, int64_t since_time)
{
  char dir[] = "/tmp/bootback-scan.XXXXXX", sock[64], pidfile[64];
  CLEANUP_FREE uint8_t *changed = NULL;
  CLEANUP_FREE char *needle = NULL;
  json_t *res = NULL;

  if (s->since) {
    changed = scan_changed_chunks (s->c->repo, s->vm, s->id, s->since, disk,
                                   &s->o.nchunks);
    if (!changed)
      return json_pack ("{s:s, s:s}", "disk", disk, "error", error_msg ());
    s->o.changed = changed;
    s->o.chunk_size = repo_chunk_size (s->c->repo);
    s->o.since_time = since_time;
  }
  if (!mkdtemp (dir))
    return json_pack ("{s:s, s:s}", "disk", disk, "error", strerror (errno));
  snprintf (sock, sizeof sock, "%s/nbd.sock", dir);
  snprintf (pidfile, sizeof pidfile, "%s/nbdkit.pid", dir);
  /* no hold: a scan writes nothing to the repository (a point pruned
   * meanwhile fails the scan as "could not scan") */
  if (start_nbdkit (s->c, s->vm, s->id, disk, 0, sock, pidfile, false,
                    NULL) == -1) {
    rmdir (dir);
    return json_pack ("{s:s, s:s}", "disk", disk, "error",
                      "nbdkit could not serve it");
  }
  res = scan_disk (&s->o, sock, disk, &s->rules_bad);
  needle = xasprintf ("-U %s ", sock);
  pid_stop (pid_file_read (pidfile, NULL), 0, needle, 5);
  unlink (pidfile);
  unlink (sock);
  rmdir (dir);
  s->o.changed = NULL;
  if (!res && !s->rules_bad)
    res = json_pack ("{s:s, s:s}", "disk", disk, "error", error_msg ());
  return res;
}

/* Fold one disk's result into the run; print it unless json. */
static void
fold (struct scan_run *s, json_t *d, bool json)
{
  const char *disk = json_string_value (json_object_get (d, "disk"));
  json_t *p, *m, *err = json_object_get (d, "error");
  size_t i, scanned = 0;

  if (err) {
    s->incomplete = true;
    if (!json)
      printf ("not scanned: disk %s: %s\n", disk, json_string_value (err));
  }
  json_array_foreach (json_object_get (d, "partitions"), i, p)
    scanned += strcmp (json_string_value (json_object_get (p, "status")) ?: "",
                       "scanned") == 0;
  /* A disk none of whose file systems was scanned (a partition table
   * listing none, data outside any partition) is never clean. */
  if (!err && scanned == 0) {
    s->incomplete = true;
    if (!json)
      printf ("not scanned: disk %s: no file system found on it\n", disk);
  }
  json_array_foreach (json_object_get (d, "partitions"), i, p) {
    CLEANUP_FREE char *fs = xstrdup_printable
      (json_string_value (json_object_get (p, "fs")) ?: "?", false);
    CLEANUP_FREE char *vol = xstrdup_printable
      (json_string_value (json_object_get (p, "volume")) ?: "", false);
    const char *st = json_string_value (json_object_get (p, "status")) ?: "";
    json_t *notes = json_object_get (p, "notes"), *nt;
    size_t k;

    if (strcmp (st, "scanned") != 0 ||
        json_integer_value (json_object_get (p, "skipped")) > 0)
      s->incomplete = true;
    if (json)
      continue;
    if (strcmp (st, "scanned") == 0)
      printf ("scanned: disk %s partition %" JSON_INTEGER_FORMAT "%s%s (%s): %"
              JSON_INTEGER_FORMAT " files, %" JSON_INTEGER_FORMAT " bytes%s\n",
              disk, json_integer_value (json_object_get (p, "partition")),
              vol[0] ? " volume " : "", vol, fs,
              json_integer_value (json_object_get (p, "files")),
              json_integer_value (json_object_get (p, "bytes")),
              s->since ? ", the others unchanged" : "");
    else {
      CLEANUP_FREE char *why = xstrdup_printable
        (json_string_value (json_object_get (p, "reason")) ?: "?", false);
      printf ("not scanned: disk %s partition %" JSON_INTEGER_FORMAT
              "%s%s (%s): %s\n", disk,
              json_integer_value (json_object_get (p, "partition")),
              vol[0] ? " volume " : "", vol, fs, why);
    }
    json_array_foreach (notes, k, nt) {
      CLEANUP_FREE char *t = xstrdup_printable (json_string_value (nt) ?: "",
                                                false);
      printf ("  note: %s\n", t);
    }
  }
  json_array_foreach (json_object_get (d, "matches"), i, m) {
    json_object_set_new (m, "disk", json_string (disk));
    json_array_append (s->matches, m);
    if (!json) {
      CLEANUP_FREE char *path = xstrdup_printable
        (json_string_value (json_object_get (m, "path")) ?: "?", false);
      CLEANUP_FREE char *rule = xstrdup_printable
        (json_string_value (json_object_get (m, "rule")) ?: "?", false);
      CLEANUP_FREE char *vol = xstrdup_printable
        (json_string_value (json_object_get (m, "volume")) ?: "", false);
      const char *engine = json_string_value (json_object_get (m, "engine"));
      printf ("FOUND: disk %s partition %" JSON_INTEGER_FORMAT "%s%s: %s: %s "
              "(%s)\n", disk, json_integer_value (json_object_get (m, "partition")),
              vol[0] ? " volume " : "", vol, path, rule,
              engine && strcmp (engine, "yara") == 0 ? "yara" : "clamav");
    }
  }
  json_array_append_new (s->disks, d);
}

/* --since TIME: an earlier point of the VM with a clean scan.  Its time,
 * or -1 (printed). */
static int64_t
since_check (struct scan_run *s)
{
  struct catalog_scan r;
  struct repo_manifest m;
  int got;

  if (strcmp (s->since, s->id) >= 0) {
    cli_error ("--since %s: not earlier than %s@%s", s->since, s->vm, s->id);
    return -1;
  }
  if (repo_manifest_read (s->c->repo, s->vm, s->since, &m) == -1) {
    cli_perror ();
    return -1;
  }
  got = catalog_scan_get (s->c->cat, s->c->repo_id, s->vm, s->since, &r);
  if (got == -1) {
    cli_perror ();
    return -1;
  }
  if (got == 1)
    free (r.report);
  if (got == 0 || strcmp (r.verdict, "clean") != 0) {
    cli_error ("--since %s@%s: %s", s->vm, s->since, got == 0
               ? "never scanned (scan it first)"
               : "its last scan was not clean");
    return -1;
  }
  return m.time;
}

/* Record the run in the catalog; a failure is a warning. */
static void
record (struct scan_run *s, json_t *report, const char *verdict)
{
  struct catalog_scan r = { .time = time (NULL) };
  CLEANUP_FREE char *text = json_dumps (report, JSON_COMPACT);
  json_t *d, *p;
  size_t i, k;

  snprintf (r.verdict, sizeof r.verdict, "%s", verdict);
  snprintf (r.since, sizeof r.since, "%s", s->since ? s->since : "");
  r.found = json_array_size (s->matches);
  json_array_foreach (s->disks, i, d)
    json_array_foreach (json_object_get (d, "partitions"), k, p)
      r.files += json_integer_value (json_object_get (p, "files"));
  r.report = text;
  if (catalog_scan_put (s->c->cat, s->c->repo_id, s->vm, s->id, &r) == -1)
    fprintf (stderr, "bootback: warning: the scan of %s@%s is not recorded "
             "in the catalog: %s\n", s->vm, s->id, error_msg ());
}

static int
scan_opts_parse (struct scan_run *s, int argc, char **argv, bool *json)
{
  static const struct option lo[] = {
    { "disk", required_argument, NULL, 'd' },
    { "rules", required_argument, NULL, 'r' },
    { "signatures", required_argument, NULL, 's' },
    { "since", required_argument, NULL, 'S' },
    { "timeout", required_argument, NULL, 't' },
    { "max-file-size", required_argument, NULL, 'm' },
    { "max-depth", required_argument, NULL, 'D' },
    { "json", no_argument, NULL, 'j' },
    { "find-clean", no_argument, NULL, 'F' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': s->disk = optarg; break;
    case 'r': s->o.rules = optarg; break;
    case 's': s->o.sigdir = optarg; break;
    case 'S': s->since = optarg; break;
    case 't': s->o.timeout = cli_int_arg ("--timeout", optarg); break;
    case 'm': s->o.max_file = cli_int_arg ("--max-file-size", optarg); break;
    case 'D': s->o.max_depth = cli_int_arg ("--max-depth", optarg); break;
    case 'j': *json = true; break;
    case 'F': s->find_clean = true; break;
    case 'h': cli_usage (scan_usage);
    default: cli_bad_usage (scan_usage);
    }
  }
  if (optind != argc - 1 || (s->find_clean && s->since))
    cli_bad_usage (scan_usage);
  return optind;
}

/* The default signature directory, if it exists. */
static const char *
default_sigdir (struct cli *c, char *buf, size_t len)
{
  struct stat st;

  snprintf (buf, len, "%s/scan", c->home);
  return stat (buf, &st) == 0 && S_ISDIR (st.st_mode) ? buf : NULL;
}

/* Scan s->vm@s->id (since_time for --since): its report, the verdict in
 * it, recorded; printed unless quiet.  NULL (printed) if the rules do not
 * load or the point cannot be read. */
static json_t *
scan_point (struct scan_run *s, int64_t since_time, bool quiet)
{
  json_t *report;
  struct repo_manifest m;
  const char *verdict;
  double t0 = now_monotonic ();
  size_t i, ran = 0;

  if (repo_manifest_read (s->c->repo, s->vm, s->id, &m) == -1) {
    cli_perror ();
    return NULL;
  }
  s->disks = json_array ();
  s->matches = json_array ();
  s->incomplete = false;
  report = json_pack ("{s:s++, s:o, s:o}", "point", s->vm, "@", s->id,
                      "disks", s->disks, "matches", s->matches);
  for (i = 0; i < m.ndisks; i++) {
    json_t *d;
    if (s->disk && strcmp (s->disk, m.disks[i].name) != 0)
      continue;
    if (!(d = scan_one (s, m.disks[i].name, since_time))) {
      cli_perror ();
      json_decref (report);
      return NULL;
    }
    fold (s, d, quiet);
    ran++;
  }
  if (!ran) {
    cli_error ("%s@%s has no disk %s", s->vm, s->id, s->disk);
    json_decref (report);
    return NULL;
  }
  verdict = json_array_size (s->matches) ? "found"
    : s->incomplete ? "incomplete" : "clean";
  json_object_set_new (report, "verdict", json_string (verdict));
  json_object_set_new (report, "since", s->since ? json_string (s->since)
                       : json_null ());
  json_object_set_new (report, "seconds", json_real (now_monotonic () - t0));
  record (s, report, verdict);
  if (!quiet)
    printf ("%s@%s: %s%s (%.1f s)\n", s->vm, s->id, verdict,
            strcmp (verdict, "incomplete") == 0
            ? ": something could not be scanned, see above" : "",
            now_monotonic () - t0);
  return report;
}

static int
verdict_status (json_t *report)
{
  const char *v = json_string_value (json_object_get (report, "verdict"));

  return strcmp (v, "found") == 0 ? EXIT_PROBLEMS
    : strcmp (v, "clean") == 0 ? 0 : 1;
}

/* --find-clean: is point i (of ids) clean and not suspicious?  Scans it
 * and appends what was checked to checked.  -1 if it cannot be scanned
 * at all (printed). */
static int
check_point (struct scan_run *s, char **ids, size_t i, json_t *checked,
             bool quiet)
{
  char reason[SCORE_REASON_MAX];
  const char *mark;
  json_auto_t *r = NULL;
  const char *v;

  snprintf (s->id, sizeof s->id, "%s", ids[i]);
  if (!(r = scan_point (s, 0, quiet)))
    return -1;
  v = json_string_value (json_object_get (r, "verdict"));
  mark = cli_score_mark (s->c, s->vm, s->id, reason);
  json_array_append_new (checked, json_pack ("{s:s++, s:s, s:b}", "point",
                                             s->vm, "@", s->id, "scan", v,
                                             "suspicious",
                                             strcmp (mark, "suspicious") == 0));
  if (!quiet)
    printf ("checked %s@%s: %s%s\n", s->vm, s->id, v,
            strcmp (mark, "suspicious") == 0 ? ", suspicious" : "");
  return strcmp (v, "clean") == 0 && strcmp (mark, "suspicious") != 0;
}

/* bootback scan --find-clean VM: the newest point that is clean, by
 * bisection over the VM's points (assuming a point after an infected one
 * is infected too), the newest checked first. */
static int
find_clean (struct scan_run *s, const char *vm, bool json)
{
  CLEANUP_STRV char **ids = NULL;
  json_auto_t *checked = json_array ();
  long lo = -1, hi, mid, n = 0;
  int ok;

  snprintf (s->vm, sizeof s->vm, "%s", vm);
  ids = repo_list_points (s->c->repo, vm);
  while (ids && ids[n])
    n++;
  if (n == 0) {
    cli_error ("VM %s has no points", vm);
    return 1;
  }
  hi = n - 1;                   /* ids[lo] is clean, ids[hi] is not */
  if ((ok = check_point (s, ids, hi, checked, json)) == -1)
    return 1;
  if (ok)
    lo = hi;
  while (hi - lo > 1) {
    mid = lo + (hi - lo) / 2;
    if ((ok = check_point (s, ids, mid, checked, json)) == -1)
      return 1;
    *(ok ? &lo : &hi) = mid;
  }
  if (json)
    cli_json_print (json_pack ("{s:O, s:s?}", "checked", checked, "clean",
                               lo >= 0 ? ids[lo] : NULL));
  else if (lo >= 0)
    printf ("newest clean point: %s@%s\n", vm, ids[lo]);
  else
    printf ("no clean point of %s among its %ld points\n", vm, n);
  return lo >= 0 ? 0 : EXIT_PROBLEMS;
}

int
cmd_scan (struct cli *c, int argc, char **argv)
{
  struct scan_run s = {
    .c = c, .o = { .timeout = SCAN_DEFAULT_TIMEOUT,
                   .max_file = SCAN_DEFAULT_MAX_FILE,
                   .max_depth = SCAN_DEFAULT_MAX_DEPTH,
                   .memory = SCAN_DEFAULT_MEMORY } };
  json_auto_t *report = NULL;
  char sigbuf[PATH_MAX];
  int64_t since_time = 0;
  bool json = false;
  int ix = scan_opts_parse (&s, argc, argv, &json);

  if (!s.o.sigdir)
    s.o.sigdir = default_sigdir (c, sigbuf, sizeof sigbuf);
  if (cli_repo (c) == -1 || cli_catalog (c) == -1)
    return 1;
  if (s.find_clean)
    return find_clean (&s, argv[ix], json);
  if (repo_point_resolve (c->repo, argv[ix], s.vm, s.id) == -1) {
    cli_perror ();
    return 1;
  }
  if (s.since && (since_time = since_check (&s)) == -1)
    return 1;
  if (!(report = scan_point (&s, since_time, json)))
    return 1;
  if (json)
    cli_json_print (json_incref (report));
  return verdict_status (report);
}

json_t *
cli_scan_json (struct cli *c, const char *vm, const char *id)
{
  struct catalog_scan r;
  json_t *o;

  if (!c->cat || catalog_scan_get (c->cat, c->repo_id, vm, id, &r) != 1)
    return json_null ();
  o = json_pack ("{s:I, s:s, s:I, s:I, s:s?}", "time", (json_int_t) r.time,
                 "verdict", r.verdict, "found", (json_int_t) r.found,
                 "files", (json_int_t) r.files, "since",
                 r.since[0] ? r.since : NULL);
  json_object_set_new (o, "report", json_loads (r.report, 0, NULL));
  free (r.report);
  return o;
}

void
cli_scan_show (struct cli *c, const char *vm, const char *id)
{
  struct catalog_scan r;
  char iso[32];
  struct tm tm;

  if (!c->cat || catalog_scan_get (c->cat, c->repo_id, vm, id, &r) != 1) {
    printf ("malware:     not scanned\n");
    return;
  }
  gmtime_r (&(time_t) { r.time }, &tm);
  strftime (iso, sizeof iso, "%Y-%m-%d %H:%M:%S UTC", &tm);
  printf ("malware:     %s, %" PRId64 " matches in %" PRId64 " files "
          "scanned %s%s%s\n", r.verdict, r.found, r.files, iso,
          r.since[0] ? " since " : "", r.since);
  free (r.report);
}

/* Is the point the repository holds now the one the catalog recorded
 * (and its scan read)?  A verdict is kept by VM and time: someone who can
 * write the repository could put other disks (another manifest and
 * indexes) under a point found clean.  1 yes (*same, if same is not NULL,
 * gets the manifest), 0 no (*why set), -1 error. */
static int
gate_same_point (struct cli *c, const char *vm, const char *id, char **why,
                 struct repo_manifest **same)
{
  struct repo_manifest *m = xmalloc (sizeof *m);
  int r = -1;

  if (repo_manifest_read (c->repo, vm, id, m) == -1 ||
      (r = catalog_point_same_disks (c->cat, c->repo_id, m)) == -1)
    goto out;
  if (r != 1)
    *why = xasprintf ("its disks in %s are not the ones the catalog recorded "
                      "for it%s (bootback repo check)", repo_location (c->repo),
                      r == 0 ? " and its scan read" : "");
  r = r == 1;
  if (r && same) {
    *same = m;
    m = NULL;
  }
 out:
  free (m);
  return r;
}

int
cli_scan_gate (struct cli *c, const char *spec, bool force,
               struct repo_manifest **approved)
{
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], reason[SCORE_REASON_MAX];
  CLEANUP_FREE char *why = NULL;
  struct catalog_scan r = { .report = NULL };
  int got;

  *approved = NULL;
  if (cli_catalog (c) == -1)
    return -1;
  if (repo_point_resolve (c->repo, spec, vm, id) == -1) {
    cli_perror ();
    return -1;
  }
  got = catalog_scan_get (c->cat, c->repo_id, vm, id, &r);
  free (r.report);
  if (got == -1) {
    cli_perror ();
    return -1;
  }
  if (got == 0)
    why = xasprintf ("it was never scanned (bootback scan %s@%s)", vm, id);
  else if (strcmp (r.verdict, "clean") != 0)
    why = xasprintf ("its last scan is %s (%" PRId64 " matches)", r.verdict,
                     r.found);
  else if (strcmp (cli_score_mark (c, vm, id, reason), "suspicious") == 0)
    why = xasprintf ("it is marked suspicious: %s", reason);
  else if (gate_same_point (c, vm, id, &why, approved) == -1) {
    cli_perror ();
    return -1;
  }
  if (!why)
    return 0;
  if (force) {
    fprintf (stderr, "bootback: warning: --force: %s@%s is not known clean: "
             "%s\n", vm, id, why);
    return 0;
  }
  cli_error ("--require-clean: refusing %s@%s: %s (--force to use it anyway)",
             vm, id, why);
  return -1;
}

/* ---- the lab's scan check (verify_scan_fn) -------------------------------- */

/* What was not scanned in a scan report, as the lab reports it:
 * [{disk, partition, fs, reason}]. */
static json_t *
lab_not_scanned (json_t *report)
{
  json_t *out = json_array (), *d, *p;
  size_t i, k;

  json_array_foreach (json_object_get (report, "disks"), i, d) {
    json_t *disk = json_object_get (d, "disk"), *err = json_object_get (d, "error");
    size_t scanned = 0;
    if (err)
      json_array_append_new (out, json_pack ("{s:O, s:O}", "disk", disk,
                                             "reason", err));
    json_array_foreach (json_object_get (d, "partitions"), k, p) {
      const char *st = json_string_value (json_object_get (p, "status")) ?: "";
      json_int_t skipped = json_integer_value (json_object_get (p, "skipped"));
      json_t *o = json_pack ("{s:O, s:O, s:O, s:O}", "disk", disk, "partition",
                             json_object_get (p, "partition"), "fs",
                             json_object_get (p, "fs") ?: json_null (),
                             "volume", json_object_get (p, "volume")
                             ?: json_null ());
      scanned += strcmp (st, "scanned") == 0;
      if (strcmp (st, "scanned") != 0)
        json_object_set (o, "reason", json_object_get (p, "reason")
                         ?: json_string ("not scanned"));
      else if (skipped > 0)
        json_object_set_new (o, "reason", json_sprintf
                             ("%" JSON_INTEGER_FORMAT " files not scanned "
                              "(too large or unreadable)", skipped));
      else {
        json_decref (o);
        continue;
      }
      json_array_append_new (out, o);
    }
    if (!err && scanned == 0)
      json_array_append_new (out, json_pack ("{s:O, s:s}", "disk", disk,
                                             "reason", "no file system found "
                                             "on it"));
  }
  return out;
}

/* The point's scan for the lab: the catalog's if conclusive and the
 * point still the one it recorded, else a scan now (recorded).  NULL with the error set. */
static json_t *
lab_scan_report (struct cli *c, struct scan_run *s, int64_t *when,
                 const char **from)
{
  struct catalog_scan r = { .report = NULL };
  CLEANUP_FREE char *differs = NULL;
  json_t *report;
  int got = catalog_scan_get (c->cat, c->repo_id, s->vm, s->id, &r);

  if (got == -1)
    return NULL;
  /* the catalog's verdict only for the disks it recorded (gate_same_point) */
  if (got == 1 && (strcmp (r.verdict, "clean") == 0 ||
                   strcmp (r.verdict, "found") == 0) &&
      gate_same_point (c, s->vm, s->id, &differs, NULL) == 1 &&
      (report = json_loads (r.report, 0, NULL))) {
    free (r.report);
    *when = r.time;
    *from = "catalog";
    return report;
  }
  free (r.report);
  *when = time (NULL);
  *from = "scan";
  if (!(report = scan_point (s, 0, true))) {
    CLEANUP_FREE char *why = xstrdup (error_msg ());
    error_setx ("%s@%s: %s%s", s->vm, s->id, s->rules_bad
                ? "the rules or signatures did not load: " : "", why);
  }
  return report;
}

json_t *
cli_scan_lab (void *opaque, const char *vm, const char *id, const char *rules,
              const char *signatures)
{
  static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&one_at_a_time);
  struct cli *main_cli = opaque, c = { .home = main_cli->home,
                                       .repo_open = main_cli->repo_open };
  struct scan_run s = {
    .c = &c, .o = { .rules = rules, .sigdir = signatures,
                    .timeout = SCAN_DEFAULT_TIMEOUT,
                    .max_file = SCAN_DEFAULT_MAX_FILE,
                    .max_depth = SCAN_DEFAULT_MAX_DEPTH,
                    .memory = SCAN_DEFAULT_MEMORY } };
  CLEANUP_FREE char *spec = xasprintf ("%s@%s", vm, id);
  char sigbuf[PATH_MAX], reason[SCORE_REASON_MAX];
  json_t *report = NULL, *out = NULL;
  const char *from = "scan";
  int64_t when = 0;

  /* the lab's threads each get their own catalog and repository */
  c.repo_opt = main_cli->repo ? repo_location (main_cli->repo)
    : main_cli->repo_opt;
  if (!s.o.sigdir)
    s.o.sigdir = default_sigdir (&c, sigbuf, sizeof sigbuf);
  if (cli_repo (&c) == -1 ||
      repo_point_resolve (c.repo, spec, s.vm, s.id) == -1 ||
      !(report = lab_scan_report (&c, &s, &when, &from)))
    goto out;
  out = json_pack ("{s:s++, s:O, s:s, s:I, s:O, s:o}", "point", s.vm, "@",
                   s.id, "verdict", json_object_get (report, "verdict"),
                   "from", from, "time", (json_int_t) when, "matches",
                   json_object_get (report, "matches"), "not_scanned",
                   lab_not_scanned (report));
  json_object_set_new (out, "suspicious",
                       strcmp (cli_score_mark (&c, s.vm, s.id, reason),
                               "suspicious") == 0 ? json_string (reason)
                       : json_null ());
 out:
  json_decref (report);
  repo_close (c.repo);
  catalog_close (c.cat);
  return out;
}
