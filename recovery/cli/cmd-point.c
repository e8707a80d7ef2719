/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback import, points, point show|protect|unprotect, restore, prune.
 */
#include <errno.h>

#include "recovery/cli/cli.h"
#include "recovery/ingest/ingest.h"
#include "recovery/instant/instant.h"
#include "recovery/virt/ceph.h"

/* Commit step 4 (cli.h). */
void
cli_record_point (struct cli *c, const struct repo_manifest *m)
{
  if (catalog_point_put (c->cat, c->repo_id, m) == -1)
    cli_error ("warning: the point is stored but the catalog could not "
               "record it (%s); 'bootback repo reindex' fixes that",
               error_msg ());
  crash_step (4);
  cli_score_point (c, m);
}

/* ---- import ------------------------------------------------------------------ */

static const char import_usage[] =
  "usage: bootback import IMAGE... --vm NAME [--disk NAME]...\n"
  "                       [--format FMT]... [--allow-backing]\n"
  "                       [--domain-xml FILE] [--time TIME] [--threads N]\n"
  "                       [--on-suspicious CMD] [--json]\n"
  "\n"
  "Turn disk images of any format QEMU reads (raw, qcow2, vmdk, vhdx, vpc)\n"
  "into one restore point of VM NAME.  Disks are named by --disk in order\n"
  "(default vda, vdb, ...).  Only chunks the repository does not have yet\n"
  "are stored.  --time sets the point's time (default now), e.g.\n"
  "20261122T045506Z.\n"
  "\n"
  "--format FMT reads the images as FMT (once for all, or once per image\n"
  "in order); without it QEMU guesses the format from the contents: give\n"
  "it for a guest's raw disk, which can hold any header.  An image with a\n"
  "backing file, an external data file, an extent in another file or a\n"
  "json: name is refused, naming that file, unless --allow-backing.\n"
  "--threads N sets how many chunks are read and stored in parallel\n"
  "(default: the CPUs, at least 2).\n"
  "--on-suspicious CMD runs CMD (no shell) if the new point is marked\n"
  "suspicious by its ransomware score (default $BOOTBACK_ON_SUSPICIOUS).\n";

/* What import's command line asks for. */
struct import_args {
  struct ingest_opts o;
  struct ingest_disk disks[REPO_MAX_DISKS];
  size_t ndisks;
  const char *names[REPO_MAX_DISKS], *formats[REPO_MAX_DISKS];
  size_t nnames, nformats;
  char defnames[REPO_MAX_DISKS][8];  /* vda, vdb, ... */
  const char *xml_path;
  char *xml;                         /* its contents */
  bool json;
  const char *on_suspicious;
};

/* The options (exits on --help and bad usage).  -1 if reported. */
static int
import_options (struct import_args *a, int argc, char **argv)
{
  static const struct option lo[] = {
    { "vm", required_argument, NULL, 'v' },
    { "disk", required_argument, NULL, 'd' },
    { "domain-xml", required_argument, NULL, 'x' },
    { "time", required_argument, NULL, 't' },
    { "threads", required_argument, NULL, 'T' },
    { "format", required_argument, NULL, 'f' },
    { "allow-backing", no_argument, NULL, 'B' },
    { "on-suspicious", required_argument, NULL, 'S' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'v': a->o.vm = optarg; break;
    case 'd':
      if (a->nnames == REPO_MAX_DISKS) {
        cli_error ("too many --disk");
        return -1;
      }
      a->names[a->nnames++] = optarg;
      break;
    case 'x': a->xml_path = optarg; break;
    case 'f':
      if (a->nformats == REPO_MAX_DISKS) {
        cli_error ("too many --format");
        return -1;
      }
      a->formats[a->nformats++] = optarg;
      break;
    case 'B': a->o.allow_backing = true; break;
    case 'S': a->on_suspicious = optarg; break;
    case 't':
      if (timestamp_parse (optarg, &a->o.time) == -1) {
        cli_perror ();
        return -1;
      }
      break;
    case 'T': a->o.threads = cli_int_arg ("--threads", optarg); break;
    case 'j': a->json = true; break;
    case 'h': cli_usage (import_usage);
    default: cli_bad_usage (import_usage);
    }
  }
  return 0;
}

/* The images: one name and format each (exits on bad usage).  -1 if
 * reported. */
static int
import_images (struct import_args *a, int argc, char **argv)
{
  size_t i;

  a->ndisks = argc - optind;
  if (!a->o.vm || a->ndisks == 0) {
    cli_error ("import needs at least one IMAGE and --vm NAME");
    cli_bad_usage (import_usage);
  }
  if (!name_is_valid (a->o.vm)) {
    cli_error ("'%s' is not a valid VM name (letters, digits, '.', '_', '-')",
               a->o.vm);
    return -1;
  }
  if (a->ndisks > REPO_MAX_DISKS || (a->nnames && a->nnames != a->ndisks)) {
    cli_error ("give one --disk NAME per image (%zu images, %zu names)",
               a->ndisks, a->nnames);
    return -1;
  }
  if (a->nformats > 1 && a->nformats != a->ndisks) {
    cli_error ("give one --format for all images or one per image "
               "(%zu images, %zu formats)", a->ndisks, a->nformats);
    return -1;
  }
  for (i = 0; i < a->ndisks; i++) {
    struct ingest_disk *d = &a->disks[i];
    d->image = argv[optind + i];
    d->format = a->nformats ? a->formats[a->nformats > 1 ? i : 0] : NULL;
    if (a->nnames)
      d->name = a->names[i];
    else {
      snprintf (a->defnames[i], sizeof a->defnames[i], "vd%c",
                (char) ('a' + i % 26));
      d->name = a->defnames[i];
    }
    if (!disk_name_is_valid (d->name)) {
      cli_error ("'%s' is not a valid disk name ([A-Za-z0-9._-], at most %d)",
                 d->name, DISK_NAME_MAX);
      return -1;
    }
  }
  return 0;
}

/* --domain-xml FILE: read it (up to 16 MiB), a libvirt domain's.  -1 if
 * reported. */
static int
import_domain_xml (struct import_args *a)
{
  FILE *f;
  size_t len;

  if (!a->xml_path)
    return 0;
  f = fopen (a->xml_path, "re");
  if (!f) {
    cli_error ("%s: %s", a->xml_path, strerror (errno));
    return -1;
  }
  a->xml = xmalloc (16 << 20);
  len = fread (a->xml, 1, (16 << 20) - 1, f);
  fclose (f);
  a->xml[len] = '\0';
  if (!strstr (a->xml, "<domain")) {
    cli_error ("%s: not a libvirt domain XML (no <domain> element)",
               a->xml_path);
    return -1;
  }
  a->o.domain_xml = a->xml;
  return 0;
}

static void
import_print (struct cli *c, const struct repo_manifest *m,
              const struct ingest_result *res, double t0, bool json)
{
  char a[32], b[32], n[32], s[32], rate[32];
  /* Wall time including the commit (syncfs, indexes, manifest), which
   * the manifest's own figure cannot include. */
  double secs = now_monotonic () - t0;

  if (json) {
    json_t *j = repo_manifest_json (m);
    json_object_set_new (j, "score", cli_score_json (c, m->vm, m->id));
    json_object_set_new (j, "scan", cli_scan_json (c, m->vm, m->id));
    cli_json_print (j);
    return;
  }
  printf ("imported %s@%s: %zu disk%s, %s, read %s, new %s (stored %s), "
          "%" PRIu64 " chunks reused, %.1f s, %s/s\n",
          m->vm, m->id, m->ndisks, m->ndisks == 1 ? "" : "s",
          human_size (res->bytes_total, a, sizeof a),
          human_size (res->bytes_read, b, sizeof b),
          human_size (m->stats.new_bytes, n, sizeof n),
          human_size (m->stats.stored_bytes, s, sizeof s),
          m->stats.reused_chunks, secs,
          human_size (secs > 0 ? res->bytes_total / secs : 0, rate,
                      sizeof rate));
}

int
cmd_import (struct cli *c, int argc, char **argv)
{
  struct import_args a = { 0 };
  struct ingest_result res;
  struct repo_manifest m;
  int64_t job;
  double t0;
  int ret = 1;

  if (import_options (&a, argc, argv) == -1 ||
      import_images (&a, argc, argv) == -1 ||
      import_domain_xml (&a) == -1 || cli_repo (c) == -1 || cli_repo_intact (c) == -1)
    goto out;
  if (a.on_suspicious)
    c->on_suspicious = a.on_suspicious;
  job = catalog_job_begin (c->cat, "import", c->repo_id, a.o.vm);
  t0 = now_monotonic ();
  if (ingest_import (c->repo, &a.o, a.disks, a.ndisks, &m, &res) == -1) {
    cli_perror ();
    catalog_job_end (c->cat, job, "failed", NULL, error_msg (), NULL);
    goto out;
  }
  cli_record_point (c, &m);
  {
    CLEANUP_FREE char *pt = xasprintf ("%s@%s", m.vm, m.id);
    catalog_job_end (c->cat, job, "ok", pt, NULL, NULL);
  }
  import_print (c, &m, &res, t0, a.json);
  ret = 0;
 out:
  free (a.xml);
  return ret;
}

/* ---- points / point show ------------------------------------------------------ */

static const char points_usage[] =
  "usage: bootback points [VM] [--json]\n"
  "\n"
  "List restore points (of one VM, or all), oldest first.  The last column\n"
  "says 'protected', and 'suspicious' when the point's ransomware score\n"
  "flagged it (with the reason below it).\n";

struct plist {
  struct cli *c;
  json_t *a;
  size_t n;
};

static int
point_row (void *opaque, const struct repo_manifest *m)
{
  struct plist *pl = opaque;
  char sz[32], nb[32], iso[32], reason[SCORE_REASON_MAX];
  const char *mark;
  uint64_t total = 0;
  struct tm tm;
  size_t i;

  pl->n++;
  if (pl->a) {
    json_t *j = repo_manifest_json (m);
    json_object_set_new (j, "score", cli_score_json (pl->c, m->vm, m->id));
    json_object_set_new (j, "scan", cli_scan_json (pl->c, m->vm, m->id));
    json_array_append_new (pl->a, j);
    return 0;
  }
  if (pl->n == 1)
    printf ("%-32s %-20s %-6s %-11s %5s %10s %10s %s\n", "POINT", "TIME",
            "KIND", "CONSISTENCY", "DISKS", "SIZE", "NEW", "");
  for (i = 0; i < m->ndisks; i++)
    total += m->disks[i].size;
  gmtime_r (&m->time, &tm);
  strftime (iso, sizeof iso, "%Y-%m-%d %H:%M:%S", &tm);
  {
    CLEANUP_FREE char *pt = xasprintf ("%s@%s", m->vm, m->id);
    mark = cli_score_mark (pl->c, m->vm, m->id, reason);
    printf ("%-32s %-20s %-6s %-11s %5zu %10s %10s %s%s%s\n", pt, iso,
            m->kind, m->consistency, m->ndisks,
            human_size (total, sz, sizeof sz),
            human_size (m->stats.new_bytes, nb, sizeof nb),
            m->protected ? "protected" : "",
            m->protected && strcmp (mark, "suspicious") == 0 ? " " : "",
            strcmp (mark, "suspicious") == 0 ? mark : "");
    if (strcmp (mark, "suspicious") == 0)
      printf ("  %s\n", reason);
  }
  return 0;
}

int
cmd_points (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct plist pl = { .c = c };
  const char *vm = NULL;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'j': pl.a = json_array (); break;
    case 'h': cli_usage (points_usage);
    default: cli_bad_usage (points_usage);
    }
  }
  if (argc - optind > 1)
    cli_bad_usage (points_usage);
  if (optind < argc)
    vm = argv[optind];
  if (cli_repo (c) == -1 ||
      catalog_point_list (c->cat, c->repo_id, vm, point_row, &pl) == -1) {
    if (c->repo) cli_perror ();
    json_decref (pl.a);
    return 1;
  }
  if (pl.a)
    cli_json_print (pl.a);
  else if (pl.n == 0)
    printf ("no restore points%s%s in %s\n", vm ? " of " : "", vm ? vm : "",
            repo_location (c->repo));
  return 0;
}

static const char point_usage[] =
  "usage: bootback point show VM[@TIME] [--json]\n"
  "       bootback point protect VM@TIME\n"
  "       bootback point unprotect VM@TIME\n"
  "       bootback point unflag VM@TIME\n"
  "       bootback point lock VM@TIME --days N\n"
  "\n"
  "TIME is the point's time stamp (e.g. 20261122T045506Z) or 'latest'.\n"
  "Protected points are never removed by prune.  unflag clears the\n"
  "'suspicious' mark of the ransomware score once someone checked the\n"
  "point; it then counts in the VM's usual range again.  lock keeps the\n"
  "point from prune and removal for N days (never shortening a lock): on\n"
  "an s3:// repository with S3 Object Lock (COMPLIANCE) on its objects and\n"
  "chunks, which the server enforces even against the repository's own\n"
  "keys (the bucket needs Object Lock: repo init makes one with it only\n"
  "with --lock or --object-lock); on local disk and NFS it is only a flag\n"
  "that bootback honours.\n";

/* point show's ransomware lines. */
static void
point_show_score (struct cli *c, const struct repo_manifest *m)
{
  struct catalog_score s;
  int r = catalog_score_get (c->cat, c->repo_id, m->vm, m->id, &s);

  if (r <= 0) {
    printf ("ransomware:  unknown (no score recorded)\n");
    return;
  }
  printf ("ransomware:  %s, score %.1f\nscore notes: %s\n",
          !s.suspicious ? "not suspicious"
          : s.unflagged ? "suspicious, unflagged by an administrator"
          : "SUSPICIOUS", s.score, s.reason);
}

/* point show: the manifest of point m (its domain XML checked against
 * its pin when it has one).  The exit status. */
static int
point_show (struct cli *c, const struct repo_manifest *m, bool json)
{
  const char *pin = m->domain_xml_pinned ? "yes (SHA-256 pinned)"
    : "yes (unpinned: made before bootback pinned domain.xml)";
  char a[32], iso[32];
  struct tm tm;
  size_t k;

  if (m->has_domain_xml) {
    CLEANUP_FREE char *xml = repo_domain_xml_read (c->repo, m->vm, m->id);
    if (!xml) {
      cli_perror ();
      return 1;
    }
  }
  if (json) {
    json_t *j = repo_manifest_json (m);
    char hex[2 * REPO_DIGEST_LEN + 1];
    hex_encode (m->domain_xml_sha256, REPO_DIGEST_LEN, hex);
    json_object_set_new (j, "domain_xml_sha256", m->domain_xml_pinned
                         ? json_string (hex) : json_null ());
    json_object_set_new (j, "score", cli_score_json (c, m->vm, m->id));
    json_object_set_new (j, "scan", cli_scan_json (c, m->vm, m->id));
    cli_json_print (j);
    return 0;
  }
  gmtime_r (&m->time, &tm);
  strftime (iso, sizeof iso, "%Y-%m-%d %H:%M:%S UTC", &tm);
  printf ("point:       %s@%s\ntime:        %s\nkind:        %s\n"
          "consistency: %s\nsource:      %s\nprotected:   %s\n"
          "domain XML:  %s\nchunk size:  %s\n",
          m->vm, m->id, iso, m->kind, m->consistency, m->source,
          m->protected ? "yes" : "no", m->has_domain_xml ? pin : "no",
          human_size (m->chunk_size, a, sizeof a));
  for (k = 0; k < m->ndisks; k++)
    printf ("disk:        %s  %s  (%" PRIu64 " bytes, source format %s)\n",
            m->disks[k].name, human_size (m->disks[k].size, a, sizeof a),
            m->disks[k].size, m->disks[k].format);
  printf ("stored:      %s new in %" PRIu64 " chunks, %" PRIu64
          " chunks reused\n", human_size (m->stats.stored_bytes, a, sizeof a),
          m->stats.new_chunks, m->stats.reused_chunks);
  point_show_score (c, m);
  cli_scan_show (c, m->vm, m->id);
  return 0;
}

/* point lock: lock vm@id for days days and say until when. */
static int
point_lock (struct cli *c, const char *vm, const char *id, int days)
{
  CLEANUP_FREE char *until = NULL;

  if (repo_point_lock (c->repo, vm, id, time (NULL) + (time_t) days * 86400) == -1) {
    cli_perror ();
    return 1;
  }
  until = repo_point_lock_text (c->repo, vm, id);
  printf ("%s@%s is locked until %s (%s)\n", vm, id, until ? until : "?",
          strncmp (repo_location (c->repo), "s3://", 5) == 0
          ? "S3 Object Lock, COMPLIANCE mode: the server enforces it"
          : "advisory: bootback honours it, the file system does not");
  return 0;
}

int
cmd_point (struct cli *c, int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : NULL;
  bool json = false;
  struct repo_manifest m;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  int i;

  if (!sub)
    cli_bad_usage (point_usage);
  if (strcmp (sub, "--help") == 0 || strcmp (sub, "-h") == 0)
    cli_usage (point_usage);
  if (strcmp (sub, "show") && strcmp (sub, "protect") &&
      strcmp (sub, "unprotect") && strcmp (sub, "unflag") &&
      strcmp (sub, "lock")) {
    cli_error ("unknown point command '%s'", sub);
    cli_bad_usage (point_usage);
  }
  const char *spec = NULL;
  int days = 0;
  for (i = 2; i < argc; i++) {
    if (strcmp (argv[i], "--json") == 0) json = true;
    else if (strcmp (argv[i], "--days") == 0 && i + 1 < argc &&
             strcmp (sub, "lock") == 0)
      days = cli_int_arg ("--days", argv[++i]);
    else if (strcmp (argv[i], "--help") == 0) cli_usage (point_usage);
    else if (!spec && argv[i][0] != '-') spec = argv[i];
    else cli_bad_usage (point_usage);
  }
  if (!spec || (strcmp (sub, "lock") == 0 &&
                (days < 1 || days > REPO_MAX_LOCK_DAYS))) {
    if (spec)
      cli_error ("point lock needs --days N (1 to %d)", REPO_MAX_LOCK_DAYS);
    cli_bad_usage (point_usage);
  }
  if (cli_repo (c) == -1)
    return 1;
  if (repo_point_resolve_read (c->repo, spec, vm, id, &m) == -1) {
    cli_perror ();
    return 1;
  }
  if (strcmp (sub, "show") == 0)
    return point_show (c, &m, json);
  if (strcmp (sub, "lock") == 0)
    return point_lock (c, vm, id, days);
  if (strcmp (sub, "unflag") == 0) {
    if (catalog_score_unflag (c->cat, c->repo_id, vm, id) == -1) {
      cli_perror ();
      return 1;
    }
    printf ("%s@%s is no longer marked suspicious\n", vm, id);
    return 0;
  }
  bool on = strcmp (sub, "protect") == 0;
  if (repo_point_protect (c->repo, vm, id, on) == -1) {
    cli_perror ();
    return 1;
  }
  m.protected = on;
  if (catalog_point_put (c->cat, c->repo_id, &m) == -1)
    cli_error ("warning: catalog not updated: %s", error_msg ());
  printf ("%s@%s is %s\n", vm, id, on ? "protected" : "no longer protected");
  return 0;
}

/* ---- restore --------------------------------------------------------------------- */

static const char restore_usage[] =
  "usage: bootback restore VM[@TIME] --to FILE [--disk NAME]\n"
  "                        [--format raw|qcow2]\n"
  "       bootback restore VM[@TIME] --to rbd:POOL/IMAGE [--disk NAME] [--force]\n"
  "                        [--ceph-conf FILE] [--ceph-id NAME] [--ceph-keyring FILE]\n"
  "\n"
  "Write one disk of a restore point to FILE (which must not exist), sparse\n"
  "where the data is zero.  --disk may be left out when the point has one\n"
  "disk.  Every chunk is checked; on a bad chunk nothing is left at FILE.\n"
  "FILE's directory and those above it must be writable by you or root\n"
  "only (or, above it, sticky like /tmp).\n"
  "\n"
  "  --to rbd:POOL/IMAGE  write it into a new Ceph RBD image instead (raw),\n"
  "                     through librbd; an existing image is refused\n"
  "  --force            replace an existing RBD image (not one in use)\n"
  "  --ceph-conf FILE   the cluster's ceph.conf (default: $CEPH_CONF or\n"
  "                     /etc/ceph/ceph.conf)\n"
  "  --ceph-id NAME     the cephx user, without client. (default: admin)\n"
  "  --ceph-keyring FILE  its keyring (default: the one the conf names)\n";

/* Writers of a restore to RBD: each librbd write waits for the OSD, so
 * more than the file restore's 2 (512 MiB of random data on the 2-core
 * test machine, load 10: 6.4-6.9 s with 2, 4.1-4.5 s with 4; to a local
 * file 3.0-4.5 s). */
#define RESTORE_RBD_THREADS 4

/* --force and --format with --to: -1 (said) if they do not go together. */
static int
restore_target_ok (const char *to, const char *format, bool force)
{
  if (force && !virt_is_rbd (to)) {
    cli_error ("--force replaces RBD images only; %s is a file", to);
    return -1;
  }
  if (virt_is_rbd (to) && strcmp (format, "raw") != 0) {
    cli_error ("--to %s: an RBD image is written raw (no --format %s)", to, format);
    return -1;
  }
  return 0;
}

int
cmd_restore (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "to", required_argument, NULL, 't' },
    { "disk", required_argument, NULL, 'd' },
    { "format", required_argument, NULL, 'f' },
    { "force", no_argument, NULL, 'F' },
    { "ceph-conf", required_argument, NULL, 'C' },
    { "ceph-id", required_argument, NULL, 'I' },
    { "ceph-keyring", required_argument, NULL, 'K' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  const char *to = NULL, *disk = NULL, *format = "raw";
  struct virt_ceph_opts co = { 0 };
  bool force = false;
  struct repo_manifest m;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], a[32];
  double t0 = now_monotonic ();
  int opt;
  int64_t job;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 't': to = optarg; break;
    case 'd': disk = optarg; break;
    case 'f': format = optarg; break;
    case 'F': force = true; break;
    case 'C': co.conf = optarg; break;
    case 'I': co.id = optarg; break;
    case 'K': co.keyring = optarg; break;
    case 'h': cli_usage (restore_usage);
    default: cli_bad_usage (restore_usage);
    }
  }
  if (optind != argc - 1 || !to)
    cli_bad_usage (restore_usage);
  if (restore_target_ok (to, format, force) == -1 || cli_repo (c) == -1)
    return 1;
  if (repo_point_resolve_read (c->repo, argv[optind], vm, id, &m) == -1) {
    cli_perror ();
    return 1;
  }
  if (!disk) {
    if (m.ndisks != 1) {
      cli_error ("%s@%s has %zu disks; choose one with --disk", vm, id,
                 m.ndisks);
      return 1;
    }
    disk = m.disks[0].name;
  }
  job = catalog_job_begin (c->cat, "restore", c->repo_id, vm);
  if (virt_is_rbd (to)
      ? ingest_restore_rbd (c->repo, vm, id, disk, to, &co, force, RESTORE_RBD_THREADS) == -1
      : ingest_restore (c->repo, vm, id, disk, to, format, 2) == -1) {
    cli_perror ();
    catalog_job_end (c->cat, job, "failed", id, error_msg (), NULL);
    return 1;
  }
  catalog_job_end (c->cat, job, "ok", id, NULL, NULL);
  for (size_t i = 0; i < m.ndisks; i++)
    if (strcmp (m.disks[i].name, disk) == 0)
      human_size (m.disks[i].size, a, sizeof a);
  printf ("restored %s@%s disk %s to %s (%s, %s) in %.1f s\n", vm, id, disk,
          to, format, a, now_monotonic () - t0);
  return 0;
}

/* ---- prune ------------------------------------------------------------------------ */

static const char prune_usage[] =
  "usage: bootback prune [VM] [--keep-last N] [--keep-hourly N]\n"
  "                      [--keep-daily N] [--keep-weekly N]\n"
  "                      [--keep-monthly N] [--keep-yearly N]\n"
  "                      [--dry-run] [--json]\n"
  "\n"
  "Remove the restore points (of VM, or of every VM) that no rule keeps.\n"
  "Each rule keeps the newest point of each of its N most recent hours,\n"
  "days, ISO weeks, months or years (UTC) that are not already covered by a\n"
  "point an earlier rule kept.  Protected points are always kept, and so\n"
  "are points in use (held by an instant session or lab run, on any host).\n"
  "Only manifests and indexes go; run 'bootback gc' to free the chunks.\n";

/* One prune run: its rules and what the points of each VM hand on. */
struct prune {
  struct instant_prune o;
  json_t *out;                   /* --json: the array of decisions */
};

/* The options (exits on --help and bad usage); the VM, if one is given,
 * is argv[optind].  -1 if reported. */
static int
prune_options (struct prune *p, bool *json, int argc, char **argv)
{
  static const struct option lo[] = {
    { "keep-last", required_argument, NULL, 'L' },
    { "keep-hourly", required_argument, NULL, 'H' },
    { "keep-daily", required_argument, NULL, 'D' },
    { "keep-weekly", required_argument, NULL, 'W' },
    { "keep-monthly", required_argument, NULL, 'M' },
    { "keep-yearly", required_argument, NULL, 'Y' },
    { "dry-run", no_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct repo_keep *k = &p->o.keep;
  bool any = false;
  int opt;

  while ((opt = getopt_long (argc, argv, "nh", lo, NULL)) != -1) {
    switch (opt) {
    case 'L': k->last = cli_int_arg ("--keep-last", optarg); any = true; break;
    case 'H': k->hourly = cli_int_arg ("--keep-hourly", optarg); any = true; break;
    case 'D': k->daily = cli_int_arg ("--keep-daily", optarg); any = true; break;
    case 'W': k->weekly = cli_int_arg ("--keep-weekly", optarg); any = true; break;
    case 'M': k->monthly = cli_int_arg ("--keep-monthly", optarg); any = true; break;
    case 'Y': k->yearly = cli_int_arg ("--keep-yearly", optarg); any = true; break;
    case 'n': p->o.dry_run = true; break;
    case 'j': *json = true; break;
    case 'h': cli_usage (prune_usage);
    default: cli_bad_usage (prune_usage);
    }
  }
  if (argc - optind > 1)
    cli_bad_usage (prune_usage);
  if (!any) {
    cli_error ("prune needs at least one --keep-* rule (it would remove "
               "nothing)");
    return -1;
  }
  if (optind < argc && !name_is_valid (argv[optind])) {
    cli_error ("prune: '%s' is not a valid VM name", argv[optind]);
    return -1;
  }
  return 0;
}

/* Say what became of a point. */
static int
prune_said (void *opaque, const struct instant_prune_item *it)
{
  struct prune *p = opaque;

  if (p->out)
    json_array_append_new (p->out, json_pack ("{s:s, s:s, s:s, s:s?, s:s?}",
                                              "vm", it->vm, "id", it->id,
                                              "action", it->removed ? "remove" : "keep",
                                              "reason", it->reason,
                                              "held_by", it->held_by));
  else
    printf ("%-7s %s@%s%s%s%s\n", it->removed ? (p->o.dry_run ? "remove?" : "removed")
            : "keep", it->vm, it->id, it->reason ? " (" : "",
            it->reason ? it->reason : "", it->reason ? ")" : "");
  return 0;
}

static void
prune_note (void *opaque, const char *line)
{
  fprintf (stderr, "bootback: %s\n", line);
}

int
cmd_prune (struct cli *c, int argc, char **argv)
{
  struct prune p = { .o.decided = prune_said, .o.decided_opaque = &p,
                     .o.note = prune_note };
  bool json = false;

  if (prune_options (&p, &json, argc, argv) == -1 || cli_repo (c) == -1 ||
      cli_repo_intact (c) == -1)
    return 1;
  p.o.home = c->home;
  p.o.repo_id = c->repo_id;
  p.o.vm = optind < argc ? argv[optind] : NULL;
  if (json)
    p.out = json_array ();
  if (instant_prune (c->cat, c->repo, &p.o) == -1) {
    cli_perror ();
    json_decref (p.out);
    return 1;
  }
  if (p.out)
    cli_json_print (p.out);
  else
    printf ("%s %zu restore points, kept %zu%s\n",
            p.o.dry_run ? "would remove" : "removed", p.o.removed, p.o.kept,
            p.o.dry_run || !p.o.removed ? "" : "; run 'bootback gc' to free "
            "their chunks");
  return 0;
}
