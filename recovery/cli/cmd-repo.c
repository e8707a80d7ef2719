/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback repo init|add|list|verify|check|reindex, and bootback gc.
 */
#include <errno.h>
#include <limits.h>
#include <sys/sysinfo.h>

#include "recovery/cli/cli.h"

static const char repo_usage[] =
  "usage: bootback repo init [--chunk-size SIZE] [--compression zstd|none]\n"
  "                          [--zstd-level N] [--encrypt] [--lock DAYS]\n"
  "                          [--object-lock] PATH\n"
  "       bootback repo key list [--json]\n"
  "       bootback repo key add|change [--new-passphrase-file FILE |\n"
  "                                     --new-key-file FILE]\n"
  "       bootback repo key remove ID\n"
  "       bootback repo sync [--verify] [--json] [--src-plain]\n"
  "                          [--dst-passphrase-file FILE | --dst-key-file FILE |\n"
  "                          --dst-plain] SRC DST [VM[@TIME]...]\n"
  "       bootback repo add [--default] PATH\n"
  "       bootback repo list [--json]\n"
  "       bootback repo verify [--point VM[@TIME]] [--threads N] [--json]\n"
  "       bootback repo check [--json] [--accept-rollback]\n"
  "       bootback repo reindex\n"
  "\n"
  "init     create a repository (chunk size 64K..4M, default 1M, on s3://\n"
  "         4M) and make it the default; on an existing one, take group and other\n"
  "         permissions off everything in it.  PATH may be\n"
  "         s3://BUCKET/PREFIX (a missing bucket is made: plain, or with\n"
  "         S3 Object Lock, versioned, with --lock or --object-lock).\n"
  "         --object-lock (s3:// only): Object Lock without a default\n"
  "         retention, so that points can be locked later (point lock).\n"
  "         --lock DAYS: every point is locked that many days\n"
  "         after it is written: S3 Object Lock (COMPLIANCE) on s3://;\n"
  "         on a local or NFS repository only bootback honours it.  On\n"
  "         s3:// also the bucket's default retention; the catalog keeps\n"
  "         the days, and points are not written while the repository's\n"
  "         file says less.  --encrypt: AES-256-GCM at rest, opened with\n"
  "         BOOTBACK_PASSPHRASE, --passphrase-file FILE or --key-file FILE\n"
  "         (global options); fails on an existing plain repository\n"
  "key      the passphrases and key files of an encrypted repository: add\n"
  "         one (the new secret from BOOTBACK_NEW_PASSPHRASE or a file),\n"
  "         change the one used into a new one, remove one by ID; no chunk\n"
  "         is rewritten\n"
  "sync     copy restore points (all, a VM's, or one) from repository SRC\n"
  "         to DST, only the chunks DST lacks, each checked; resumable.\n"
  "         DST's secret: a file, BOOTBACK_DST_PASSPHRASE, else SRC's;\n"
  "         an end that opens plain though a secret applies to it is\n"
  "         refused: a plain SRC needs --src-plain (SRC gets no secret),\n"
  "         a plain DST --dst-plain (DST gets no secret)\n"
  "add      register an existing repository (the default if none is yet)\n"
  "list     registered repositories\n"
  "verify   read every chunk the points use once and check its SHA-256;\n"
  "         each bad chunk is named with every point, disk and byte range\n"
  "         using it; exit 2 if problems were found\n"
  "check    structure only (manifests, indexes, domain.xml against its\n"
  "         pin, chunk files present, the catalog against the repository),\n"
  "         no data read; exit 2 on problems.  Restore points the catalog\n"
  "         recorded that are gone without bootback's prune (the\n"
  "         repository replaced by an older copy?) are a problem, and\n"
  "         import, backup, prune, gc and sync into it refuse until\n"
  "         --accept-rollback (the catalog forgets them)\n"
  "reindex  rebuild the catalog's restore points from the manifests, and\n"
  "         give a ransomware score to the points that have none\n";

static long reindex (struct cli *c);
static int repo_key_cmd (struct cli *c, int argc, char **argv);
int repo_sync_cmd (struct cli *c, int argc, char **argv);

/* Say what repo_tighten changed: nothing is readable by others now. */
static void
print_tightened (const char *loc, const struct repo_tightened *t)
{
  if (t->dirs == 0 && t->files == 0)
    return;
  printf ("tightened permissions of %s (was %04o, now %04o): %" PRIu64
          " directories and %" PRIu64 " files were readable or writable by "
          "other users; now only the owner has access\n", loc, t->root_was,
          t->root_was & 0700, t->dirs, t->files);
}

/* repo init's --chunk-size (c), --compression (z) and --zstd-level (l)
 * into o; -1 after printing what is wrong. */
static int
repo_init_option (struct repo_init_opts *o, int opt, const char *arg)
{
  int64_t v;

  switch (opt) {
  case 'c':
    if ((v = parse_size (arg)) == -1) { cli_perror (); return -1; }
    if (v > UINT32_MAX) {
      cli_error ("chunk size %s is too large (at most 4M)", arg);
      return -1;
    }
    o->chunk_size = v;
    break;
  case 'z':
    if (strcmp (arg, "none") == 0) o->no_compression = true;
    else if (strcmp (arg, "zstd") != 0) {
      cli_error ("--compression: '%s' is not zstd or none", arg);
      return -1;
    }
    break;
  case 'l': {
    char *end;
    long lv = strtol (arg, &end, 10);
    o->zstd_level = *end || end == arg || lv < -100 || lv > 100 ? 0 : (int) lv;
    if (o->zstd_level == 0 || o->zstd_level < REPO_ZSTD_MIN_LEVEL ||
        o->zstd_level > REPO_ZSTD_MAX_LEVEL) {
      cli_error ("--zstd-level must be %d..-1 (fast) or 1..%d",
                 REPO_ZSTD_MIN_LEVEL, REPO_ZSTD_MAX_LEVEL);
      return -1;
    }
    break;
  }
  }
  return 0;
}

/* repo init: open the repository made or found at abs.  --encrypt on an
 * existing plain one fails, leaving it (and the catalog) as they are:
 * it would be used unencrypted. */
static struct repo *
init_open (const char *abs, struct cli *c, int existed, bool encrypt)
{
  struct repo_open_opts oo = c->repo_open;
  struct repo *r;

  oo.allow_plain = !existed || encrypt;     /* made now; checked below */
  if (!(r = repo_open_with (abs, &oo))) {
    cli_perror ();
    return NULL;
  }
  if (existed && encrypt && !repo_encrypted (r)) {
    cli_error ("%s is an existing repository, and it is not encrypted: "
               "--encrypt makes new ones only; nothing was changed (copy "
               "its points into a new encrypted one with 'bootback repo "
               "sync')", abs);
    repo_close (r);
    return NULL;
  }
  return r;
}

static int
repo_init_cmd (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "chunk-size", required_argument, NULL, 'c' },
    { "compression", required_argument, NULL, 'z' },
    { "zstd-level", required_argument, NULL, 'l' },
    { "encrypt", no_argument, NULL, 'e' },
    { "lock", required_argument, NULL, 'L' },
    { "object-lock", no_argument, NULL, 'O' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct repo_init_opts o = { 0 };
  struct repo_tightened t;
  CLEANUP_FREE char *abs = NULL;
  struct repo *r;
  int64_t id;
  char hs[32];
  int opt, existed;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'c': case 'z': case 'l':
      if (repo_init_option (&o, opt, optarg) == -1)
        return 1;
      break;
    case 'e': o.encrypt = true; break;
    case 'O': o.object_lock = true; break;
    case 'L':
      o.lock_days = cli_int_arg ("--lock", optarg);
      if (o.lock_days < 1 || o.lock_days > REPO_MAX_LOCK_DAYS) {
        cli_error ("--lock: %s days is out of range (1 to %d)", optarg,
                   REPO_MAX_LOCK_DAYS);
        return 1;
      }
      break;
    case 'h': cli_usage (repo_usage);
    default: cli_bad_usage (repo_usage);
    }
  }
  if (optind != argc - 1)
    cli_bad_usage (repo_usage);
  o.open = c->repo_open;
  if ((existed = repo_init (argv[optind], &o)) == -1) {
    cli_perror ();
    return 1;
  }
  abs = cli_absolute (argv[optind]);
  if (!(r = init_open (abs, c, existed, o.encrypt)))
    return 1;
  if (repo_tighten (abs, &c->repo_open, &t) == -1) {
    cli_perror ();
    repo_close (r);
    return 1;
  }
  if (cli_catalog (c) == -1 ||
      catalog_repo_add (c->cat, abs, repo_uuid (r), repo_chunk_size (r),
                        repo_encrypted (r), true, &id) == -1 ||
      cli_repo_lock (c, r, true) == -1) {
    if (c->cat) cli_perror ();
    repo_close (r);
    return 1;
  }
  printf ("%s %srepository %s (chunk size %s, uuid %s); it is now the "
          "default\n", existed ? "existing" : "created",
          repo_encrypted (r) ? "encrypted " : "", abs,
          human_size (repo_chunk_size (r), hs, sizeof hs), repo_uuid (r));
  print_tightened (abs, &t);
  repo_close (r);
  return 0;
}

static int
repo_add_cmd (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "default", no_argument, NULL, 'd' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  CLEANUP_FREE char *abs = NULL, *def = NULL;
  bool make_default = false;
  int opt, err;
  long n;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': make_default = true; break;
    case 'h': cli_usage (repo_usage);
    default: cli_bad_usage (repo_usage);
    }
  }
  if (optind != argc - 1)
    cli_bad_usage (repo_usage);
  abs = cli_absolute (argv[optind]);
  c->repo_opt = abs;
  if (cli_repo (c) == -1)
    return 1;
  def = catalog_repo_default (c->cat, &err);
  if ((!def && !err) || make_default) {
    int64_t id;
    make_default = true;
    if (catalog_repo_add (c->cat, abs, repo_uuid (c->repo),
                          repo_chunk_size (c->repo), repo_encrypted (c->repo),
                          true, &id) == -1) {
      cli_perror ();
      return 1;
    }
  }
  if ((n = reindex (c)) == -1)
    return 1;
  printf ("added repository %s with %ld restore points%s\n", abs, n,
          make_default ? " (default)" : "");
  return 0;
}

static int
list_one (void *opaque, const struct catalog_repo *r)
{
  json_t *a = opaque;
  char hs[32];

  if (a)
    json_array_append_new (a, json_pack ("{s:s, s:s, s:I, s:b, s:I}",
                                         "location", r->location,
                                         "uuid", r->uuid,
                                         "chunk_size", (json_int_t) r->chunk_size,
                                         "default", r->is_default,
                                         "points", (json_int_t) r->points));
  else
    printf ("%s %-40s %-8s %6" PRId64 " points  %s\n", r->is_default ? "*" : " ",
            r->location, human_size (r->chunk_size, hs, sizeof hs), r->points,
            r->uuid);
  return 0;
}

static int
repo_list_cmd (struct cli *c, int argc, char **argv)
{
  bool json = argc > 1 && strcmp (argv[1], "--json") == 0;
  json_t *a = json ? json_array () : NULL;

  if (argc > 1 && !json) {
    if (strcmp (argv[1], "--help") == 0) cli_usage (repo_usage);
    cli_bad_usage (repo_usage);
  }
  if (cli_catalog (c) == -1 || catalog_repo_list (c->cat, list_one, a) == -1) {
    if (c->cat) cli_perror ();
    json_decref (a);
    return 1;
  }
  if (a)
    cli_json_print (a);
  return 0;
}

/* ---- verify / check ----------------------------------------------------- */

struct problems {
  json_t *list;           /* --json */
  json_t *notes;          /* --json: notes (not problems) */
  uint64_t n;
};

static void
on_problem (void *opaque, const struct repo_problem *p)
{
  struct problems *ps = opaque;

  if (!p->note)
    ps->n++;
  if (ps->list) {
    json_array_append_new (p->note ? ps->notes : ps->list,
                           json_pack ("{s:s, s:s, s:s, s:s}", "problem", p->what,
                                      "object", p->object, "detail", p->detail,
                                      "used_by", p->used_by));
    return;
  }
  fprintf (stderr, "bootback: %s%s: %s\n    %s\n", p->note ? "note: " : "",
           p->what, p->object, p->detail);
  if (p->used_by[0])
    fprintf (stderr, "    used by: %s\n", p->used_by);
}

/* Compare the catalog's points of this repository with the manifests. */
struct cat_cmp {
  struct cli *c;
  struct problems *ps;
  size_t seen;
};

static int
cat_point (void *opaque, const struct repo_manifest *cm)
{
  struct cat_cmp *cc = opaque;
  struct repo_manifest m;
  char obj[200];
  size_t i;

  cc->seen++;
  snprintf (obj, sizeof obj, "%s@%s", cm->vm, cm->id);
  if (repo_manifest_read (cc->c->repo, cm->vm, cm->id, &m) == -1) {
    struct repo_problem p = { "catalog lists a point the repository does not "
                              "have", obj, error_msg (), "", false };
    on_problem (cc->ps, &p);
    return 0;
  }
  for (i = 0; i < MAX (m.ndisks, cm->ndisks); i++)
    if (i >= cm->ndisks || i >= m.ndisks || strcmp (m.disks[i].name, cm->disks[i].name) ||
        m.disks[i].size != cm->disks[i].size ||
        memcmp (m.disks[i].index_sha256, cm->disks[i].index_sha256,
                REPO_DIGEST_LEN)) {
      struct repo_problem p = { "catalog differs from the repository", obj,
                                "disk list, sizes or index checksums differ "
                                "(run 'bootback repo reindex')", "", false };
      on_problem (cc->ps, &p);
      break;
    }
  return 0;
}

/* repo check: every manifest must be in the catalog, and every catalog
 * row in the repository (a problem if not).  -1 if the catalog cannot be
 * read (error set). */
static int
check_catalog_agrees (struct cli *c, struct problems *ps,
                      const struct repo_verify_result *res)
{
  struct cat_cmp cc = { c, ps, 0 };

  if (catalog_point_list (c->cat, c->repo_id, NULL, cat_point, &cc) == -1)
    return -1;
  if (cc.seen != res->points) {
    char detail[160];
    struct repo_problem p = { "catalog out of date", repo_location (c->repo),
                              detail, "", false };
    snprintf (detail, sizeof detail, "the catalog lists %zu points, the "
              "repository has %" PRIu64 " (run 'bootback repo reindex')",
              cc.seen, res->points);
    on_problem (ps, &p);
  }
  return 0;
}

/* The summary of repo check or verify, as JSON (ps->list and ps->notes
 * taken into it) or as a line of text. */
static void
print_verify_result (struct cli *c, bool read_data, bool json,
                     struct problems *ps, const struct repo_verify_result *res,
                     double t0)
{
  char a[32];

  if (json) {
    cli_json_print (json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f,"
                               " s:o, s:o}",
                               "repository", repo_location (c->repo),
                               "mode", read_data ? "verify" : "check",
                               "points", (json_int_t) res->points,
                               "disks", (json_int_t) res->disks,
                               "chunks", (json_int_t) res->chunks_checked,
                               "incomplete", (json_int_t) res->incomplete,
                               "unpinned", (json_int_t) res->unpinned,
                               "problems", (json_int_t) ps->n,
                               "seconds", now_monotonic () - t0,
                               "problem_list", ps->list,
                               "notes", ps->notes));
  }
  else {
    printf ("%s %s: %" PRIu64 " points, %" PRIu64 " disks, %" PRIu64
            " chunks%s%s: %s", read_data ? "verified" : "checked",
            repo_location (c->repo), res->points, res->disks,
            res->chunks_checked,
            read_data ? " read, " : "",
            read_data ? human_size (res->bytes_checked, a, sizeof a) : "",
            ps->n ? "" : "no problems");
    if (ps->n)
      printf ("%" PRIu64 " PROBLEMS", ps->n);
    if (res->incomplete)
      printf (" (%" PRIu64 " unfinished point directories, harmless; gc "
              "removes them)", res->incomplete);
    if (res->unpinned)
      printf (" (%" PRIu64 " points with an unpinned domain.xml, made before "
              "bootback pinned it)", res->unpinned);
    printf ("\n");
  }
}

static int
repo_verify_cmd (struct cli *c, int argc, char **argv, bool read_data)
{
  static const struct option lo[] = {
    { "point", required_argument, NULL, 'p' },
    { "threads", required_argument, NULL, 't' },
    { "json", no_argument, NULL, 'j' },
    { "accept-rollback", no_argument, NULL, 'a' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct problems ps = { 0 };
  struct repo_verify_result res;
  const char *point = NULL;
  int threads = MAX (2, get_nprocs ()), opt;
  bool json = false;
  int64_t job;
  double t0 = now_monotonic ();

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'p': point = optarg; break;
    case 't': threads = cli_int_arg ("--threads", optarg); break;
    case 'j': json = true; break;
    case 'a': c->accept_rollback = true; break;
    case 'h': cli_usage (repo_usage);
    default: cli_bad_usage (repo_usage);
    }
  }
  if (optind != argc || (c->accept_rollback && read_data))
    cli_bad_usage (repo_usage);
  if (cli_repo (c) == -1)
    return 1;
  if (cli_repo_intact (c) == -1)
    return EXIT_PROBLEMS;           /* a finding: what is missing is named */
  if (json) {
    ps.list = json_array ();
    ps.notes = json_array ();
  }
  job = catalog_job_begin (c->cat, read_data ? "verify" : "check", c->repo_id,
                           NULL);
  if (repo_verify (c->repo, point, read_data, threads, on_problem, &ps,
                   &res) == -1) {
    cli_perror ();
    catalog_job_end (c->cat, job, "failed", point, error_msg (), NULL);
    json_decref (ps.list);
    json_decref (ps.notes);
    return 1;
  }
  if (!read_data && check_catalog_agrees (c, &ps, &res) == -1) {
    cli_perror ();
    json_decref (ps.list);
    json_decref (ps.notes);
    return 1;
  }
  catalog_job_end (c->cat, job, ps.n ? "problems" : "ok", point, NULL, NULL);
  print_verify_result (c, read_data, json, &ps, &res, t0);
  return ps.n ? EXIT_PROBLEMS : 0;
}

/* Rebuild the catalog's points of c->repo from its manifests, in one
 * transaction.  Returns the number of points, or -1 after printing. */
static long
reindex (struct cli *c)
{
  char **vms = repo_list_vms (c->repo);
  size_t i, j;
  long n = 0;

  if (!vms || catalog_begin (c->cat) == -1)
    goto err;
  if (catalog_points_clear (c->cat, c->repo_id) == -1)
    goto err_tx;
  for (i = 0; vms[i]; i++) {
    char **pts = repo_list_points (c->repo, vms[i]);
    if (!pts)
      goto err_tx;
    for (j = 0; pts[j]; j++) {
      struct repo_manifest m;
      if (repo_manifest_read (c->repo, vms[i], pts[j], &m) == -1) {
        cli_error ("skipping %s@%s: %s", vms[i], pts[j], error_msg ());
        continue;
      }
      if (catalog_point_put (c->cat, c->repo_id, &m) == -1) {
        strv_free (pts);
        goto err_tx;
      }
      n++;
    }
    strv_free (pts);
  }
  if (catalog_commit (c->cat) == -1)
    goto err_tx;
  strv_free (vms);
  return n;
 err_tx:
  catalog_rollback (c->cat);
 err:
  cli_perror ();
  strv_free (vms);
  return -1;
}

static int
repo_reindex_cmd (struct cli *c, int argc, char **argv)
{
  long n, scored, suspicious;

  if (argc > 1) {
    if (strcmp (argv[1], "--help") == 0) cli_usage (repo_usage);
    cli_bad_usage (repo_usage);
  }
  if (cli_repo (c) == -1 || (n = reindex (c)) == -1)
    return 1;
  printf ("reindexed %s: %ld restore points\n", repo_location (c->repo), n);
  if (cli_score_missing (c, &scored, &suspicious) == -1) {
    cli_perror ();
    return 1;
  }
  if (scored)
    printf ("ransomware scores computed for %ld points without one: %ld "
            "suspicious\n", scored, suspicious);
  return 0;
}

int
cmd_repo (struct cli *c, int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;

  if (!sub)
    cli_bad_usage (repo_usage);
  if (strcmp (sub, "--help") == 0 || strcmp (sub, "-h") == 0)
    cli_usage (repo_usage);
  argc--; argv++;
  if (strcmp (sub, "init") == 0) return repo_init_cmd (c, argc, argv);
  if (strcmp (sub, "add") == 0) return repo_add_cmd (c, argc, argv);
  if (strcmp (sub, "list") == 0) return repo_list_cmd (c, argc, argv);
  if (strcmp (sub, "verify") == 0) return repo_verify_cmd (c, argc, argv, true);
  if (strcmp (sub, "check") == 0) return repo_verify_cmd (c, argc, argv, false);
  if (strcmp (sub, "reindex") == 0) return repo_reindex_cmd (c, argc, argv);
  if (strcmp (sub, "key") == 0) return repo_key_cmd (c, argc, argv);
  if (strcmp (sub, "sync") == 0) return repo_sync_cmd (c, argc, argv);
  cli_error ("unknown repo command '%s'", sub);
  cli_bad_usage (repo_usage);
}

/* ---- repo key ---------------------------------------------------------- */

static int
repo_key_list_cmd (struct cli *c, bool json)
{
  CLEANUP_FREE struct repo_key_info *k = NULL;
  json_t *a = json ? json_array () : NULL;
  size_t n;

  if (!(k = repo_key_list (c->repo, &n))) {
    cli_perror ();
    json_decref (a);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    if (a)
      json_array_append_new (a, json_pack ("{s:s, s:s, s:s, s:b}", "id",
                                            k[i].id, "kind", k[i].kind,
                                            "created", k[i].created,
                                            "current", k[i].current));
    else
      printf ("%s  %-10s  %s%s\n", k[i].id, k[i].kind, k[i].created,
              k[i].current ? "  (opened this time)" : "");
  }
  if (a)
    cli_json_print (a);
  return 0;
}

/* add (change: then remove the key that opened the repository). */
static int
repo_key_add_cmd (struct cli *c, const struct repo_open_opts *nw, bool change)
{
  CLEANUP_FREE struct repo_key_info *k = NULL;
  char id[REPO_KEY_ID_LEN + 1];
  size_t n, i;

  if (repo_key_add (c->repo, nw, id) == -1) {
    cli_perror ();
    return 1;
  }
  printf ("added key %s to %s\n", id, repo_location (c->repo));
  if (!change)
    return 0;
  if (!(k = repo_key_list (c->repo, &n))) {
    cli_perror ();
    return 1;
  }
  for (i = 0; i < n && !k[i].current; i++) ;
  if (i == n || repo_key_remove (c->repo, k[i].id) == -1) {
    cli_perror ();
    return 1;
  }
  printf ("removed key %s (the old one)\n", k[i].id);
  return 0;
}

static int
repo_key_cmd (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "new-passphrase-file", required_argument, NULL, 'p' },
    { "new-key-file", required_argument, NULL, 'k' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct repo_open_opts nw = { 0 };
  const char *sub = argc > 1 ? argv[1] : "";
  bool json = false;
  int opt;

  nw.passphrase = getenv ("BOOTBACK_NEW_PASSPHRASE");
  argc--; argv++;
  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'p': nw.passphrase = NULL; nw.passphrase_file = optarg; break;
    case 'k': nw.passphrase = NULL; nw.key_file = optarg; break;
    case 'j': json = true; break;
    case 'h': cli_usage (repo_usage);
    default: cli_bad_usage (repo_usage);
    }
  }
  if (optind != argc - (strcmp (sub, "remove") == 0))
    cli_bad_usage (repo_usage);
  if (strcmp (sub, "list") && strcmp (sub, "add") && strcmp (sub, "change") &&
      strcmp (sub, "remove"))
    cli_bad_usage (repo_usage);
  if (cli_repo (c) == -1)
    return 1;
  if (strcmp (sub, "list") == 0)
    return repo_key_list_cmd (c, json);
  if (strcmp (sub, "remove") != 0)
    return repo_key_add_cmd (c, &nw, sub[0] == 'c');
  if (repo_key_remove (c->repo, argv[optind]) == -1) {
    cli_perror ();
    return 1;
  }
  printf ("removed key %s from %s\n", argv[optind], repo_location (c->repo));
  return 0;
}

/* ---- gc --------------------------------------------------------------------- */

static const char gc_usage[] =
  "usage: bootback gc [--dry-run] [--json]\n"
  "\n"
  "Remove the chunks that no restore point uses (after 'bootback prune').\n"
  "Safe while imports and backups run: chunks they use are kept.  prune\n"
  "keeps the points in use, so their chunks stay too.\n";

int
cmd_gc (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "dry-run", no_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct repo_gc_result res;
  bool dry = false, json = false;
  int opt;
  int64_t job;
  char b[32];

  while ((opt = getopt_long (argc, argv, "nh", lo, NULL)) != -1) {
    switch (opt) {
    case 'n': dry = true; break;
    case 'j': json = true; break;
    case 'h': cli_usage (gc_usage);
    default: cli_bad_usage (gc_usage);
    }
  }
  if (optind != argc)
    cli_bad_usage (gc_usage);
  if (cli_repo (c) == -1 || cli_repo_intact (c) == -1)
    return 1;
  job = catalog_job_begin (c->cat, "gc", c->repo_id, NULL);
  if (repo_gc (c->repo, dry, &res) == -1) {
    cli_perror ();
    catalog_job_end (c->cat, job, "failed", NULL, error_msg (), NULL);
    return 1;
  }
  catalog_job_end (c->cat, job, "ok", NULL, NULL, NULL);
  if (json)
    cli_json_print (repo_gc_result_json (&res, dry));
  else
    printf ("%s %" PRIu64 " of %" PRIu64 " chunks (%s); %" PRIu64
            " in use, %" PRIu64 " unused but too recent to remove; %" PRIu64
            " unfinished points and %" PRIu64 " temp files %s\n",
            dry ? "would remove" : "removed", res.chunks_removed,
            res.chunks_total, human_size (res.bytes_removed, b, sizeof b),
            res.chunks_referenced, res.chunks_kept_recent, res.dirs_removed,
            res.temps_removed, dry ? "to remove" : "removed");
  if (res.chunks_kept_locked && !json)
    printf ("kept %" PRIu64 " unused chunks that are still locked (S3 Object "
            "Lock)\n", res.chunks_kept_locked);
  if (res.trash_restored && !json)
    printf ("put back %" PRIu64 " chunks an interrupted garbage collection had "
            "left under trash names\n", res.trash_restored);
  return 0;
}

/* ---- repo sync -------------------------------------------------------------- */

struct sync_cli {
  double last;                /* when progress was last shown */
  uint64_t points_copied, points_present;
};

static void
sync_progress (void *opaque, const struct repo_sync_progress *p)
{
  struct sync_cli *s = opaque;
  double now = now_monotonic ();

  if (now - s->last < 2)
    return;
  s->last = now;
  fprintf (stderr, "sync: %s: %" PRIu64 " chunks gone through, %" PRIu64
           " copied, %" PRIu64 " present\n", p->point, p->chunks_done,
           p->chunks_copied, p->chunks_present);
}

/* The points to copy: every point of SRC, or of each VM given, or the
 * points given ("VM@TIME").  NULL-terminated "vm@id"s. */
static char **
sync_points (struct repo *src, char **specs, int n)
{
  CLEANUP_STRV char **vms = n ? NULL : repo_list_vms (src);
  char **out = xcalloc (1, sizeof *out);
  size_t k = 0;

  for (int i = 0; n ? i < n : vms && vms[i]; i++) {
    const char *spec = n ? specs[i] : vms[i];
    CLEANUP_STRV char **ids = NULL;
    char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
    if (strchr (spec, '@')) {
      if (repo_point_resolve (src, spec, vm, id) == -1)
        goto err;
      ids = xcalloc (2, sizeof *ids);
      ids[0] = xstrdup (id);
    }
    else if (!(ids = repo_list_points (src, spec)) || !ids[0]) {
      if (ids)
        error_setx ("%s has no restore points of %s", repo_location (src), spec);
      goto err;
    }
    else
      snprintf (vm, sizeof vm, "%s", spec);
    for (size_t j = 0; ids[j]; j++) {
      out = xrealloc (out, (k + 2) * sizeof *out);
      out[k++] = xasprintf ("%s@%s", vm, ids[j]);
      out[k] = NULL;
    }
  }
  return out;
 err:
  strv_free (out);
  return NULL;
}

static int
sync_run (struct repo *src, struct repo *dst, char **points, bool verify,
          struct sync_cli *s, struct repo_sync_progress *pg)
{
  for (size_t i = 0; points[i]; i++) {
    char *at = strchr (points[i], '@');
    int r;
    *at = '\0';
    r = repo_sync_point (src, dst, points[i], at + 1, verify, sync_progress,
                         s, pg);
    *at = '@';
    if (r == -1) {
      cli_error ("sync of %s failed: %s", points[i], error_msg ());
      return -1;
    }
    r == 1 ? s->points_present++ : s->points_copied++;
    fprintf (stderr, "sync: %s: %s\n", points[i],
             r == 1 ? "the destination has it already" : "copied");
  }
  return 0;
}

/* R, the sync's END ("src", "dst") opened with OO, is plain though a
 * secret applies to it: refused (someone without the key may have put a
 * plain repository there, or turned this one plain), naming it, what
 * would happen (WHAT) and the option that says it is meant.  true with
 * the error set. */
static bool
sync_plain_refused (struct repo *r, const struct repo_open_opts *oo,
                    const char *end, const char *what)
{
  if (repo_encrypted (r) || !repo_open_opts_has_secret (oo))
    return false;
  error_setx ("%s opened plain (not encrypted, no key slots) though a "
              "passphrase or key file was given that applies to it (the "
              "sync's %s): refusing it, %s; if it was encrypted, its "
              "configuration was replaced; if it is meant to be plain, "
              "give --%s-plain", repo_location (r), end, what, end);
  return true;
}

struct find_repo {
  const char *location;
  int64_t id;
};

static int
find_repo (void *opaque, const struct catalog_repo *r)
{
  struct find_repo *f = opaque;

  if (strcmp (r->location, f->location) == 0)
    f->id = r->id;
  return 0;
}

/* DST as the catalog knows it, if it does (*id, else 0): refused while
 * restore points it recorded there are gone without bootback's prune (a
 * rollback; as cli_repo_intact for --repo).  -1 with the error set. */
static int
sync_dst_intact (struct cli *c, struct repo *dst, int64_t *id)
{
  struct find_repo f = { repo_location (dst), 0 };
  struct catalog_sync sy = { 0 };

  *id = 0;
  if (catalog_repo_list (c->cat, find_repo, &f) == -1)
    return -1;
  if (!(*id = f.id))
    return 0;
  if (catalog_points_sync (c->cat, f.id, dst, &sy) == -1)
    return -1;
  if (sy.missing) {
    error_setx ("%s: %zu restore points the catalog recorded are gone and bootback "
                "did not prune them (%s): the repository may have been replaced by "
                "an older copy; refusing (if it was deliberate: bootback --repo %s "
                "repo check --accept-rollback)", repo_location (dst), sy.missing,
                sy.missing_names, repo_location (dst));
    return -1;
  }
  return 0;
}

/* SRC with the usual secret, which forbids a plain SRC (a forged one would
 * have its points copied as genuine), unless --src-plain (which gives SRC
 * no secret: it must be plain). */
static struct repo *
sync_open_src (struct cli *c, const char *loc, bool src_plain)
{
  struct repo_open_opts oo = c->repo_open;
  struct repo *src;

  if (src_plain)
    repo_open_opts_secret (&oo, NULL, NULL, NULL);
  oo.allow_plain = true;                /* checked below, for sync */
  src = repo_open_with (loc, &oo);
  if (src && sync_plain_refused (src, &oo, "src", "its points would be "
                                 "copied as genuine")) {
    repo_close (src);
    return NULL;
  }
  return src;
}

/* DST with its secret, else SRC's; whichever applies forbids a plain DST
 * (data would be written to it in clear), unless --dst-plain (which gives
 * DST no secret: it must be plain). */
static struct repo *
sync_open_dst (const char *loc, struct repo_open_opts *dro, bool dst_plain)
{
  struct repo *dst;

  if (dst_plain)
    repo_open_opts_secret (dro, NULL, NULL, NULL);
  dro->allow_plain = true;              /* checked below, for sync */
  dst = repo_open_with (loc, dro);
  if (dst && sync_plain_refused (dst, dro, "dst", "points would be "
                                 "written to it in clear")) {
    repo_close (dst);
    return NULL;
  }
  return dst;
}

int
repo_sync_cmd (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "verify", no_argument, NULL, 'v' },
    { "json", no_argument, NULL, 'j' },
    { "dst-passphrase-file", required_argument, NULL, 'p' },
    { "dst-key-file", required_argument, NULL, 'k' },
    { "dst-plain", no_argument, NULL, 'P' },
    { "src-plain", no_argument, NULL, 'S' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct repo_open_opts dro = c->repo_open;
  struct repo_sync_progress pg = { 0 };
  struct sync_cli s = { 0 };
  CLEANUP_STRV char **points = NULL;
  struct repo *src = NULL, *dst = NULL;
  bool verify = false, json = false, dst_secret, dst_plain = false;
  bool src_plain = false;
  double t0 = now_monotonic ();
  int64_t dst_id = 0;
  int opt, copied, ret = 1;

  if ((dst_secret = getenv ("BOOTBACK_DST_PASSPHRASE") ||
       getenv ("BOOTBACK_DST_PASSPHRASE_FILE") ||
       getenv ("BOOTBACK_DST_KEY_FILE")))
    repo_open_opts_secret (&dro, getenv ("BOOTBACK_DST_PASSPHRASE"),
                           getenv ("BOOTBACK_DST_PASSPHRASE_FILE"),
                           getenv ("BOOTBACK_DST_KEY_FILE"));
  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'v': verify = true; break;
    case 'j': json = true; break;
    case 'p': repo_open_opts_secret (&dro, NULL, optarg, NULL);
      dst_secret = true; break;
    case 'k': repo_open_opts_secret (&dro, NULL, NULL, optarg);
      dst_secret = true; break;
    case 'P': dst_plain = true; break;
    case 'S': src_plain = true; break;
    case 'h': cli_usage (repo_usage);
    default: cli_bad_usage (repo_usage);
    }
  }
  if (argc - optind < 2)
    cli_bad_usage (repo_usage);
  if (dst_plain && dst_secret) {
    cli_error ("--dst-plain and a secret for DST (--dst-passphrase-file, "
               "--dst-key-file, BOOTBACK_DST_*) exclude each other");
    return 1;
  }
  if (!(src = sync_open_src (c, argv[optind], src_plain)) ||
      !(dst = sync_open_dst (argv[optind + 1], &dro, dst_plain)) ||
      cli_catalog (c) == -1 ||
      catalog_repo_check (c->cat, repo_location (src), repo_uuid (src),
                          repo_encrypted (src)) == -1 ||
      catalog_repo_check (c->cat, repo_location (dst), repo_uuid (dst),
                          repo_encrypted (dst)) == -1 ||
      cli_repo_lock (c, dst, false) == -1 ||
      sync_dst_intact (c, dst, &dst_id) == -1 ||
      !(points = sync_points (src, argv + optind + 2, argc - optind - 2))) {
    cli_perror ();
    goto out;
  }
  copied = sync_run (src, dst, points, verify, &s, &pg);
  /* The points copied (also by a sync that failed later) are not recorded
   * here: the next command on DST finds them, even those whose directory
   * a killed sync left and a catalog sync saw unfinished. */
  if (dst_id && catalog_unfinished_clear (c->cat, dst_id) == -1)
    cli_error ("warning: %s", error_msg ());
  if (copied == -1)
    goto out;
  ret = 0;
  if (json)
    cli_json_print (json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
                               "source", repo_location (src),
                               "destination", repo_location (dst),
                               "points_copied", (json_int_t) s.points_copied,
                               "points_present", (json_int_t) s.points_present,
                               "chunks_copied", (json_int_t) pg.chunks_copied,
                               "bytes_copied", (json_int_t) pg.bytes_copied,
                               "chunks_present", (json_int_t) pg.chunks_present,
                               "chunks_verified", (json_int_t) pg.chunks_verified,
                               "seconds", now_monotonic () - t0));
  else
    printf ("copied %" PRIu64 " restore points (%" PRIu64 " there already) "
            "from %s to %s: %" PRIu64 " chunks copied, %" PRIu64 " present%s\n",
            s.points_copied, s.points_present, repo_location (src),
            repo_location (dst), pg.chunks_copied, pg.chunks_present,
            verify ? ", every copied point read back" : "");
 out:
  repo_close (src);
  repo_close (dst);
  return ret;
}
