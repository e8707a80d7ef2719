/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback: the command.  Global options (--home, --repo, anywhere on the
 * line), then a subcommand from the table below.
 */
#include <errno.h>
#include <stdarg.h>

#include "recovery/cli/cli.h"
#include "recovery/scan/scan.h"


static const struct {
  const char *name;
  int (*fn) (struct cli *, int, char **);
  const char *summary;
} commands[] = {
  { "repo",    cmd_repo,    "init, add, list, verify, check, reindex a repository" },
  { "import",  cmd_import,  "turn disk images into a restore point" },
  { "backup",  cmd_backup,  "take a restore point of a libvirt domain (incremental)" },
  { "points",  cmd_points,  "list restore points" },
  { "point",   cmd_point,   "show, protect or unprotect one restore point" },
  { "restore", cmd_restore, "write a disk of a restore point to a file" },
  { "serve",   cmd_serve,   "serve a restore point over NBD (read-only)" },
  { "mount",   cmd_mount,   "mount a restore point's filesystem read-only" },
  { "umount",  cmd_umount,  "unmount what 'bootback mount' mounted" },
  { "scan",    cmd_scan,    "scan a restore point for malware (YARA, ClamAV)" },
  { "prune",   cmd_prune,   "remove restore points by retention rules" },
  { "gc",      cmd_gc,      "remove chunks no restore point uses" },
  { "instant", cmd_instant, "boot a restore point now; 'instant stop' ends it" },
  { "sessions", cmd_sessions, "list instant-recovery sessions" },
  { "migrate", cmd_migrate, "move a running session to production storage" },
  { "lab",     cmd_lab,     "verification lab: validate, run, up, list, down, reap" },
  { "verify",  cmd_verify,  "boot a restore point in an isolated lab and check it" },
  { "history", cmd_history, "past lab runs of a VM with timings and trend" },
  { "report",  cmd_report,  "per VM: points, pass rate, RTO; report verify: signatures" },
  { "web",     cmd_web,     "HTTP server: REST API and metrics; web token: API tokens" },
  { "tls",     cmd_tls,     "tls init|host: a CA and certificates for NBD and libvirt over TLS" },
  { "host",    cmd_host,    "host add NAME URI, host remove NAME: name a hypervisor host" },
  { "hosts",   cmd_hosts,   "list hypervisor hosts: reachable, versions, memory, pools" },
  { "supervise", cmd_supervise, NULL },   /* hidden: a session's daemon */
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
usage (FILE *f)
{
  size_t i;

  fprintf (f,
           "usage: bootback [--home DIR] [--repo PATH] COMMAND [ARGS]\n"
           "\n"
           "Instant recovery and backup verification for QEMU/KVM.\n"
           "\n"
           "Commands:\n");
  for (i = 0; i < NCOMMANDS; i++)
    if (commands[i].summary)
      fprintf (f, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fprintf (f,
           "\n"
           "Global options (anywhere on the command line):\n"
           "  --home DIR    state directory (catalog); default $BOOTBACK_HOME\n"
           "                or /var/lib/bootback\n"
           "  --repo PATH   repository to use; default $BOOTBACK_REPO or the\n"
           "                default repository (bootback repo init / add)\n"
           "  --s3-endpoint URL  S3 server of s3:// repositories; default\n"
           "                $BOOTBACK_S3_ENDPOINT or AWS's\n"
           "\n"
           "'bootback COMMAND --help' for a command; 'man bootback' for all.\n");
}

void
cli_error (const char *fmt, ...)
{
  va_list ap;

  fputs ("bootback: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

void
cli_perror (void)
{
  cli_error ("%s", error_msg ()[0] ? error_msg () : "unknown error");
}

void
cli_json_print (json_t *o)
{
  json_dumpf (o, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  fputc ('\n', stdout);
  json_decref (o);
}

int
cli_int_arg (const char *opt, const char *s)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || *end || end == s || v < 0 || v > 1000000) {
    cli_error ("%s: '%s' is not a valid number", opt, s);
    exit (1);
  }
  return v;
}

void
cli_usage (const char *text)
{
  fputs (text, stdout);
  exit (0);
}

void
cli_bad_usage (const char *text)
{
  fputs (text, stderr);
  exit (1);
}

int
cli_catalog (struct cli *c)
{
  if (c->cat)
    return 0;
  c->cat = catalog_open (c->home);
  if (!c->cat) {
    cli_perror ();
    return -1;
  }
  return 0;
}

char *
cli_absolute (const char *loc)
{
  CLEANUP_FREE char *cwd = NULL;
  char *r;

  if (strstr (loc, "://"))
    return xstrdup (loc);
  if ((r = realpath (loc, NULL)))
    return r;
  if (loc[0] == '/' || !(cwd = getcwd (NULL, 0)))
    return xstrdup (loc);
  return xasprintf ("%s/%s", cwd, loc);
}

int
cli_repo_lock (struct cli *c, struct repo *r, bool accept)
{
  int known;

  if (catalog_repo_lock (c->cat, repo_location (r), repo_file_lock_days (r),
                         accept, &known) == -1)
    return -1;
  repo_expect_lock (r, accept ? 0 : known);
  return 0;
}

int
cli_repo (struct cli *c)
{
  CLEANUP_FREE char *def = NULL, *abs = NULL;
  const char *loc = c->repo_opt;
  int err;

  if (c->repo)
    return 0;
  if (cli_catalog (c) == -1)
    return -1;
  if (!loc) {
    def = catalog_repo_default (c->cat, &err);
    if (err) {
      cli_perror ();
      return -1;
    }
    if (!def) {
      cli_error ("no repository: create one with 'bootback repo init PATH', "
                 "or give --repo PATH");
      return -1;
    }
    loc = def;
  }
  /* A relative --repo or $BOOTBACK_REPO is made absolute before anything
   * keeps it: the catalog, and sessions whose supervisor runs elsewhere. */
  loc = abs = cli_absolute (loc);
  c->repo_open.list_ahead = "points";    /* cli_catalog_sync's first list */
  c->repo = repo_open_with (loc, &c->repo_open);
  if (!c->repo) {
    cli_perror ();
    return -1;
  }
  if (repo_mode (c->repo) & 077)
    fprintf (stderr, "bootback: warning: %s is open to other users (mode "
             "%04o): run 'bootback repo init %s' to make it private\n", loc,
             repo_mode (c->repo), loc);
  if (catalog_repo_check (c->cat, repo_location (c->repo), repo_uuid (c->repo),
                          repo_encrypted (c->repo)) == -1 ||
      catalog_repo_add (c->cat, repo_location (c->repo), repo_uuid (c->repo),
                        repo_chunk_size (c->repo), repo_encrypted (c->repo),
                        false, &c->repo_id) == -1 ||
      cli_repo_lock (c, c->repo, false) == -1) {
    cli_perror ();
    return -1;
  }
  return cli_catalog_sync (c);
}

/* A catalog that lags its repository (a process killed between a point's
 * manifest and its catalog row, a prune killed halfway) catches up here,
 * so no listing and no decision misses a committed point. */
int
cli_catalog_sync (struct cli *c)
{
  struct catalog_sync sy = { .accept_missing = c->accept_rollback };

  if (catalog_points_sync (c->cat, c->repo_id, c->repo, &sy) == -1) {
    cli_error ("the catalog could not be brought up to date with %s: %s",
               repo_location (c->repo), error_msg ());
    return -1;
  }
  c->missing = c->accept_rollback ? 0 : sy.missing;
  if (sy.missing && c->accept_rollback)
    fprintf (stderr, "bootback: accepted: %zu restore points are gone from %s "
             "(%s); the catalog forgets them\n", sy.missing,
             repo_location (c->repo), sy.missing_names);
  else if (sy.missing) {
    snprintf (c->missing_msg, sizeof c->missing_msg,
              "%s: %zu restore points the catalog recorded are gone and bootback "
              "did not prune them (%s): the repository may have been replaced "
              "by an older copy or had points deleted", repo_location (c->repo),
              sy.missing, sy.missing_names);
    fprintf (stderr, "bootback: warning: %s; reading goes on, writing, prune, gc "
             "and repo check refuse until 'bootback repo check --accept-rollback'\n",
             c->missing_msg);
  }
  return 0;
}

int
cli_repo_intact (struct cli *c)
{
  if (!c->missing)
    return 0;
  cli_error ("%s; refusing (if it was deliberate: bootback repo check "
             "--accept-rollback)", c->missing_msg);
  return -1;
}

/* Take the global options out of argv, wherever they are. */
static int
global_options (struct cli *c, int *argc, char **argv)
{
  int i, j;

  for (i = j = 1; i < *argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL;
    const char *val = NULL;

    if (strcmp (a, "--") == 0) {
      while (i < *argc)
        argv[j++] = argv[i++];
      break;
    }
    if (strcmp (a, "--key-file") == 0 || strcmp (a, "--passphrase-file") == 0) {
      /* An encrypted repository's secret, for this process and the ones
       * it starts (nbdkit, a session's supervisor): by name, never the
       * secret itself on a command line. */
      if (i + 1 >= *argc) {
        cli_error ("%s needs an argument", a);
        return -1;
      }
      CLEANUP_FREE char *abs = cli_absolute (argv[++i]);
      unsetenv ("BOOTBACK_PASSPHRASE");   /* the option wins */
      unsetenv (a[2] == 'k' ? "BOOTBACK_PASSPHRASE_FILE" : "BOOTBACK_KEY_FILE");
      setenv (a[2] == 'k' ? "BOOTBACK_KEY_FILE" : "BOOTBACK_PASSPHRASE_FILE",
              abs, 1);
      continue;
    }
    if (strcmp (a, "--repo") == 0 || strcmp (a, "--home") == 0) {
      if (i + 1 >= *argc) {
        cli_error ("%s needs an argument", a);
        return -1;
      }
      dst = a[2] == 'r' ? &c->repo_opt : &c->home;
      val = argv[++i];
    }
    else if (strncmp (a, "--repo=", 7) == 0) {
      dst = &c->repo_opt;
      val = a + 7;
    }
    else if (strncmp (a, "--home=", 7) == 0) {
      dst = &c->home;
      val = a + 7;
    }
    else if (strcmp (a, "--s3-endpoint") == 0 && i + 1 < *argc) {
      dst = &c->repo_open.s3_endpoint;
      val = argv[++i];
    }
    else if (strncmp (a, "--s3-endpoint=", 14) == 0) {
      dst = &c->repo_open.s3_endpoint;
      val = a + 14;
    }
    if (dst)
      *dst = val;
    else
      argv[j++] = argv[i];
  }
  argv[j] = NULL;
  *argc = j;
  return 0;
}

int
main (int argc, char **argv)
{
  struct cli c = { 0 };
  size_t i;
  int r;

  /* the scanning process of bootback scan (recovery/scan/sandbox.c):
   * before anything is read or opened */
  if (argc >= 2 && strcmp (argv[1], SCAN_CHILD_COMMAND) == 0)
    return scan_child_main (argc - 1, argv + 1);
  c.home = getenv ("BOOTBACK_HOME");
  if (!c.home || !*c.home)
    c.home = "/var/lib/bootback";
  c.on_suspicious = getenv ("BOOTBACK_ON_SUSPICIOUS");
  c.repo_opt = getenv ("BOOTBACK_REPO");
  if (c.repo_opt && !*c.repo_opt)
    c.repo_opt = NULL;
  repo_open_opts_nfs (&c.repo_open, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  if (global_options (&c, &argc, argv) == -1)
    return 1;
  repo_open_opts_secret (&c.repo_open, getenv ("BOOTBACK_PASSPHRASE"),
                         getenv ("BOOTBACK_PASSPHRASE_FILE"),
                         getenv ("BOOTBACK_KEY_FILE"));
  /* the processes we start (nbdkit, sessions) reach S3 the same way */
  if (c.repo_open.s3_endpoint)
    setenv ("BOOTBACK_S3_ENDPOINT", c.repo_open.s3_endpoint, 1);
  repo_open_opts_s3_env (&c.repo_open);
  /* A secret in the environment is in this process's memory already. */
  if (env_has_secrets ())
    secrets_held ();
  if (argc < 2) {
    usage (stderr);
    return 1;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0) {
    usage (stdout);
    return 0;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("bootback %s%s\n", PACKAGE_VERSION,
            test_hooks_enabled ? " (build for testing: honours the test hooks)" : "");
    return 0;
  }
  for (i = 0; i < NCOMMANDS; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      break;
  if (i == NCOMMANDS) {
    cli_error ("unknown command '%s' (see 'bootback --help')", argv[1]);
    return 1;
  }
  r = commands[i].fn (&c, argc - 1, argv + 1);
  repo_close (c.repo);
  catalog_close (c.cat);
  return r;
}
