/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback backup: restore points of libvirt domains (recovery/ingest/
 * backup.c does the work).  This file parses options, runs one backup per
 * domain (--all: every domain marked in its metadata or listed in the
 * backup-domains file), records the point in the catalog (commit step 4),
 * lets the checkpoint advance (step 5), and prints the notes and the
 * summary.
 */
#include <errno.h>
#include <signal.h>

#include "recovery/cli/cli.h"
#include "recovery/ingest/ingest.h"

static const char backup_usage[] =
  "usage: bootback backup DOMAIN... [--full] [--disk NAME]... [--connect URI|--host NAME]\n"
  "                       [--no-quiesce] [--scratch-dir DIR] [--threads N]\n"
  "                       [--tls-dir DIR] [--nbd-ports MIN-MAX] [--insecure]\n"
  "                       [--on-suspicious CMD] [--json]\n"
  "       bootback backup --all [--list FILE] [options]\n"
  "\n"
  "Take a restore point of each libvirt DOMAIN, running or shut off.  A\n"
  "running domain is read through libvirt's backup API (pull mode, NBD);\n"
  "after the first point only the chunks changed since the last point are\n"
  "read (a checkpoint's dirty bitmap), and the checkpoint advances only once\n"
  "the new point is stored.  A missing, foreign or broken checkpoint, a\n"
  "resized or new disk, or a raw disk means a full read, and the output says\n"
  "why.  With a guest agent, filesystems are frozen for the instant the\n"
  "backup starts (application-consistent); --no-quiesce skips that.  A\n"
  "domain on another host (a URI with a host name) is read over NBD on TCP\n"
  "with TLS from that host name: its qemu.conf needs backup_tls_x509_cert_dir\n"
  "(or default_tls_x509_cert_dir), and this machine a client certificate of\n"
  "the same CA.\n"
  "\n"
  "  --all             every domain whose metadata has\n"
  "                    <backup xmlns=\"https://bootback.dev/xmlns/backup/1\"/>,\n"
  "                    and every domain listed in $BOOTBACK_HOME/backup-domains\n"
  "  --list FILE       with --all: the list file (one domain a line, # comments)\n"
  "                    instead of $BOOTBACK_HOME/backup-domains\n"
  "  --full            read every disk in full (a new checkpoint chain)\n"
  "  --disk NAME       back up only this disk (repeatable; default: all)\n"
  "  --connect URI     libvirt URI (default: libvirt's, $LIBVIRT_DEFAULT_URI)\n"
  "  --host NAME       the libvirt URI of a host of `bootback host add`\n"
  "  --scratch-dir DIR where QEMU keeps the point-in-time view (/var/tmp,\n"
  "                    $BOOTBACK_SCRATCH_DIR); for another host, a directory\n"
  "                    there (default: its /var/tmp)\n"
  "  --tls-dir DIR     another host: the CA and client certificate for NBD\n"
  "                    over TLS, as `bootback tls init` makes them (default:\n"
  "                    the URI's pkipath=, else $BOOTBACK_HOME/tls)\n"
  "  --nbd-ports MIN-MAX  another host: the TCP ports its backup NBD server\n"
  "                    may listen on; one in use there is skipped (default\n"
  "                    $BOOTBACK_NBD_PORTS, else 10809-10872)\n"
  "  --insecure        another host: plaintext NBD, no TLS (tests only)\n"
  "  --threads N       parallel readers (default: the CPUs, at least 2;\n"
  "                    twice that for an incremental read)\n"
  "  --on-suspicious CMD  run CMD (a program and arguments, no shell) when a\n"
  "                    new point is marked suspicious by its ransomware\n"
  "                    score; the environment has BOOTBACK_VM,\n"
  "                    BOOTBACK_POINT, BOOTBACK_SCORE and BOOTBACK_REASON\n"
  "                    (default $BOOTBACK_ON_SUSPICIOUS)\n";

struct out {
  bool json;
};

/* Add the domains listed in path (one a line; blank lines and # comments
 * skipped) to the NULL-terminated *v of *n names, unless already there.
 * A missing file is an error only if required.  -1 with a message. */
static int
add_listed_domains (const char *path, bool required, char ***v, size_t *n)
{
  CLEANUP_FCLOSE FILE *fp = fopen (path, "r");
  CLEANUP_FREE char *line = NULL;
  size_t cap = 0, lineno = 0, i;

  if (!fp) {
    if (errno == ENOENT && !required)
      return 0;
    cli_error ("%s: %s", path, strerror (errno));
    return -1;
  }
  while (getline (&line, &cap, fp) != -1) {
    char *s = line, *e;
    lineno++;
    s[strcspn (s, "#")] = '\0';
    s += strspn (s, " \t\r\n");
    for (e = s + strlen (s); e > s && strchr (" \t\r\n", e[-1]); e--)
      ;
    *e = '\0';
    if (!*s)
      continue;
    if (strpbrk (s, " \t") || strlen (s) > VM_NAME_MAX) {
      cli_error ("%s:%zu: not a domain name: '%s'", path, lineno, s);
      return -1;
    }
    for (i = 0; i < *n && strcmp ((*v)[i], s) != 0; i++)
      ;
    if (i < *n)
      continue;
    strv_push (v, n, xstrdup (s));
  }
  return 0;
}

/* The thaw guard's notes: it runs on its own, so they are messages of
 * their own on stderr, "bootback: thaw guard: ...". */
static void
guard_note (void *opaque, const char *msg)
{
  cli_error ("%s", msg);
}

static void
print_note (void *opaque, const char *msg)
{
  struct out *o = opaque;

  fprintf (o->json ? stderr : stdout, "  %s\n", msg);
  fflush (stdout);
}

static json_t *
result_json (const char *domain, const struct repo_manifest *m,
             const struct backup_result *res)
{
  json_t *disks = json_array ();
  char pt[160];
  size_t i;

  snprintf (pt, sizeof pt, "%s@%s", m->vm, m->id);
  for (i = 0; i < res->ndisks; i++) {
    const struct backup_disk_result *d = &res->disks[i];
    json_array_append_new (disks, json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, "
                                                         "s:I, s:I, s:I}",
                                             "name", d->name, "mode", d->mode,
                                             "reason", d->reason, "format", d->format,
                                             "size", (json_int_t) d->size,
                                             "dirty_bytes", (json_int_t) d->dirty_bytes,
                                             "planned_bytes", (json_int_t) d->planned_bytes,
                                             "bytes_read", (json_int_t) d->bytes_read,
                                             "reused_chunks", (json_int_t) d->reused_chunks,
                                             "patched_chunks", (json_int_t) d->patched_chunks,
                                             "reread_chunks", (json_int_t) d->reread_chunks));
  }
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I,"
                    " s:I, s:I, s:f, s:o}",
                    "point", pt,
                    "domain", domain, "state", res->state,
                    "kind", res->kind, "consistency", res->consistency,
                    "checkpoint", res->checkpoint, "parent", res->parent,
                    "id", m->id,
                    "size", (json_int_t) res->bytes_total,
                    "planned_bytes", (json_int_t) res->planned_bytes,
                    "bytes_read", (json_int_t) res->bytes_read,
                    "new_chunks", (json_int_t) m->stats.new_chunks,
                    "stored_bytes", (json_int_t) m->stats.stored_bytes,
                    "reused_chunks", (json_int_t) m->stats.reused_chunks,
                    "seconds", m->stats.seconds, "disks", disks);
}

/* Back up one domain.  0 done, 1 failed (reported). */
static int
backup_one (struct cli *c, struct backup_opts *o, struct out *out, json_t *arr)
{
  struct ingest_backup *b;
  struct backup_result res;
  struct repo_manifest m;
  int64_t job;

  if (!out->json)
    printf ("backup %s\n", o->domain);
  fflush (stdout);
  job = catalog_job_begin (c->cat, "backup", c->repo_id, o->domain);
  b = ingest_backup_open (o);
  if (!b || ingest_backup_run (b, c->repo, &m, &res) == -1) {
    cli_perror ();
    catalog_job_end (c->cat, job, "failed", NULL, error_msg (), NULL);
    ingest_backup_close (b);
    return 1;
  }
  cli_record_point (c, &m);
  {
    CLEANUP_FREE char *pt = xasprintf ("%s@%s", m.vm, m.id);
    CLEANUP_FREE char *stats =
      xasprintf ("{\"kind\":\"%s\",\"consistency\":\"%s\",\"bytes_read\":%" PRIu64
                 ",\"new_chunks\":%" PRIu64 ",\"reused_chunks\":%" PRIu64
                 ",\"seconds\":%.3f}", res.kind, res.consistency, res.bytes_read,
                 m.stats.new_chunks, m.stats.reused_chunks, m.stats.seconds);
    catalog_job_end (c->cat, job, "ok", pt, NULL, stats);
  }
  if (ingest_backup_advance (b) == -1)
    cli_error ("warning: the point is stored but older checkpoints could not "
               "be removed (%s); the next backup retries", error_msg ());
  ingest_backup_close (b);

  if (out->json) {
    json_t *j = result_json (o->domain, &m, &res);
    json_object_set_new (j, "score", cli_score_json (c, m.vm, m.id));
    json_array_append_new (arr, j);
  }
  else {
    char a[32], r[32], s[32], rate[32];
    double secs = m.stats.seconds;
    printf ("backed up %s@%s: %s, %s-consistent; read %s of %s, "
            "%" PRIu64 " new chunks (%s stored), %" PRIu64 " chunks reused, "
            "%.1f s, %s/s\n",
            m.vm, m.id, res.kind, res.consistency,
            human_size (res.bytes_read, r, sizeof r),
            human_size (res.bytes_total, a, sizeof a),
            m.stats.new_chunks, human_size (m.stats.stored_bytes, s, sizeof s),
            m.stats.reused_chunks, secs,
            human_size (secs > 0 ? res.bytes_read / secs : 0, rate, sizeof rate));
  }
  return 0;
}

/* What backup's command line asks for. */
struct backup_args {
  struct backup_opts o;
  const char *disks[REPO_MAX_DISKS];
  struct out out;
  bool all;
  const char *list;              /* --list FILE */
  bool thaw_guard;               /* internal: --thaw-guard URI DOMAIN */
  const char *on_suspicious;     /* --on-suspicious CMD */
  const char *host;              /* --host NAME */
  const char *scratch;           /* --scratch-dir DIR */
  char tls_default[4096];        /* $BOOTBACK_HOME/tls */
};

/* "MIN-MAX" (--nbd-ports, $BOOTBACK_NBD_PORTS) into o.  -1 if reported. */
static int
nbd_ports (struct backup_opts *o, const char *what, const char *s)
{
  int min, max, n = 0;

  if (sscanf (s, "%d-%d%n", &min, &max, &n) != 2 || s[n] || min < 1 ||
      max > 65535 || min > max) {
    cli_error ("%s '%s': not a range of TCP ports (MIN-MAX, e.g. 10809-10872)",
               what, s);
    return -1;
  }
  o->nbd_port_min = min;
  o->nbd_port_max = max;
  return 0;
}

/* The options (exits on --help and bad usage).  -1 if reported. */
static int
backup_options (struct backup_args *a, int argc, char **argv)
{
  static const struct option lo[] = {
    { "all", no_argument, NULL, 'a' },
    { "list", required_argument, NULL, 'l' },
    { "full", no_argument, NULL, 'f' },
    { "disk", required_argument, NULL, 'd' },
    { "connect", required_argument, NULL, 'c' },
    { "host", required_argument, NULL, 'H' },
    { "no-quiesce", no_argument, NULL, 'Q' },
    { "scratch-dir", required_argument, NULL, 's' },
    { "threads", required_argument, NULL, 'T' },
    { "json", no_argument, NULL, 'j' },
    { "on-suspicious", required_argument, NULL, 'S' },
    { "tls-dir", required_argument, NULL, 'D' },
    { "nbd-ports", required_argument, NULL, 'P' },
    { "insecure", no_argument, NULL, 'I' },
    { "thaw-guard", no_argument, NULL, 'G' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct backup_opts *o = &a->o;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'a': a->all = true; break;
    case 'l': a->list = optarg; break;
    case 'f': o->full = true; break;
    case 'd':
      if (o->ndisks == REPO_MAX_DISKS) {
        cli_error ("too many --disk");
        return -1;
      }
      a->disks[o->ndisks++] = optarg;
      break;
    case 'c': o->uri = optarg; break;
    case 'H': a->host = optarg; break;
    case 'Q': o->quiesce = false; break;
    case 's': o->scratch_dir = a->scratch = optarg; break;
    case 'D': o->tls_dir = optarg; break;
    case 'P':
      if (nbd_ports (o, "--nbd-ports", optarg) == -1)
        return -1;
      break;
    case 'I': o->insecure = true; break;
    case 'T': o->threads = cli_int_arg ("--threads", optarg); break;
    case 'j': a->out.json = true; break;
    case 'S': a->on_suspicious = optarg; break;
    case 'G':
      /* Internal: the thaw guard (backup.c); its arguments follow. */
      a->thaw_guard = true;
      return 0;
    case 'h': cli_usage (backup_usage);
    default: cli_bad_usage (backup_usage);
    }
  }
  if (o->ndisks)
    o->disks = a->disks;
  if (!o->scratch_dir || !*o->scratch_dir)
    o->scratch_dir = getenv ("BOOTBACK_SCRATCH_DIR");
  o->remote_scratch_dir = a->scratch;
  if (!o->nbd_port_max && getenv ("BOOTBACK_NBD_PORTS") &&
      nbd_ports (o, "BOOTBACK_NBD_PORTS", getenv ("BOOTBACK_NBD_PORTS")) == -1)
    return -1;
  if (a->all == (optind < argc)) {
    cli_error ("backup needs DOMAIN... or --all (not both)");
    cli_bad_usage (backup_usage);
  }
  if (a->list && !a->all) {
    cli_error ("--list goes with --all");
    cli_bad_usage (backup_usage);
  }
  return 0;
}

/* --all: the marked domains and those of the list file, into *doms (*n of
 * them).  -1 if reported. */
static int
backup_all_domains (struct cli *c, const struct backup_args *a, char ***doms,
                    size_t *n)
{
  CLEANUP_FREE char *deflist = xasprintf ("%s/backup-domains", c->home);

  *doms = ingest_backup_marked_domains (a->o.uri);
  if (!*doms) {
    cli_perror ();
    return -1;
  }
  for (*n = 0; (*doms)[*n]; (*n)++)
    ;
  if (add_listed_domains (a->list ? a->list : deflist, a->list != NULL,
                          doms, n) == -1)
    return -1;
  if (*n == 0)
    printf ("no domain is marked for backup (virsh metadata DOMAIN "
            "--uri https://bootback.dev/xmlns/backup/1 --key bootback "
            "--set '<backup/>' marks one) or listed in %s\n",
            a->list ? a->list : deflist);
  return 0;
}

int
cmd_backup (struct cli *c, int argc, char **argv)
{
  struct backup_args a = { .o.quiesce = true };
  CLEANUP_STRV char **doms = NULL;
  json_t *arr = NULL;
  size_t n = 0, i, failed = 0;

  if (backup_options (&a, argc, argv) == -1 ||
      cli_host_option (c, a.host, &a.o.uri) == -1)
    return 1;
  if (a.on_suspicious)
    c->on_suspicious = a.on_suspicious;
  if (a.thaw_guard) {           /* "--thaw-guard URI DOMAIN" */
    if (optind + 2 != argc)
      return 1;
    return ingest_backup_thaw_guard (argv[optind], argv[optind + 1], 0,
                                     guard_note, NULL);
  }
  signal (SIGPIPE, SIG_IGN);
  if (a.all) {
    if (backup_all_domains (c, &a, &doms, &n) == -1)
      return 1;
    if (n == 0)
      return 0;
  }
  else
    n = argc - optind;
  if (cli_repo (c) == -1 || cli_repo_intact (c) == -1)
    return 1;
  snprintf (a.tls_default, sizeof a.tls_default, "%s/tls", c->home);
  a.o.tls_dir_default = a.tls_default;
  a.o.note = print_note;
  a.o.opaque = &a.out;
  if (a.out.json)
    arr = json_array ();
  for (i = 0; i < n; i++) {
    a.o.domain = a.all ? doms[i] : argv[optind + i];
    failed += backup_one (c, &a.o, &a.out, arr);
  }
  if (a.out.json)
    cli_json_print (arr);
  else if (n > 1)
    printf ("%zu of %zu domains backed up%s\n", n - failed, n,
            failed ? "; see the errors above" : "");
  return failed ? 1 : 0;
}
