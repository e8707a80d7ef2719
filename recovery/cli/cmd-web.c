/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback web: the HTTP server (web/web.h), and its API tokens (web
 * token add|list|revoke).
 */
#include <limits.h>
#include <sys/stat.h>

#include "recovery/cli/cli.h"
#include "web/web.h"

static const char web_usage[] =
  "usage: bootback web [--listen ADDR:PORT] [--cert FILE --key FILE]\n"
  "                    [--server-name NAME]... [--max-jobs N]\n"
  "                    [--migrate-dir DIR]...\n"
  "       bootback web token add NAME [--role read|operate|admin]\n"
  "       bootback web token list [--json]\n"
  "       bootback web token revoke NAME\n"
  "\n"
  "Serve the REST API (/api/v1/...) and Prometheus metrics (/metrics) of\n"
  "this appliance's catalog and default repository.  Actions (backup,\n"
  "verify, instant, stop, migrate, lab-up, lab-down, prune, gc) are jobs:\n"
  "POST /api/v1/jobs starts one in a process of its own, GET\n"
  "/api/v1/jobs/ID shows its progress and result.  Every request needs an\n"
  "API token (Authorization: Bearer TOKEN).  The dashboard is at / in a\n"
  "browser: log in with an API token.\n"
  "\n"
  "  --listen ADDR:PORT  address to listen on (default " WEB_DEFAULT_LISTEN ");\n"
  "                      plain HTTP only on a loopback address\n"
  "  --cert FILE         PEM certificate (chain): serve HTTPS\n"
  "  --key FILE          its PEM private key\n"
  "  --server-name NAME  a name (or address) clients reach the console by,\n"
  "                      besides the --listen address and, on loopback,\n"
  "                      localhost (repeatable); requests with another Host\n"
  "                      header are refused (421)\n"
  "  --max-jobs N        jobs running at once (default 4, at most 64);\n"
  "                      more are refused (429)\n"
  "  --migrate-dir DIR  a directory migrate jobs may move sessions to\n"
  "                      (repeatable; without one, migrate jobs are refused)\n"
  "\n"
  "token add NAME prints a new token once (the catalog keeps only its\n"
  "SHA-256); token list shows names, roles, when made and last used\n"
  "(--json as JSON); token revoke NAME refuses the token from the next\n"
  "request on.\n"
  "\n"
  "  --role ROLE         what the token may do (default admin): read, every\n"
  "                      GET (the API, /metrics, the dashboard); operate,\n"
  "                      also the jobs backup, verify, instant, stop,\n"
  "                      migrate, lab-up and lab-down; admin, also prune,\n"
  "                      gc and a stop that discards.  A job above the\n"
  "                      role is refused (403)\n";

static int
token_row (void *opaque, const struct catalog_token *t)
{
  char made[ISO_TIME_LEN + 1], used[ISO_TIME_LEN + 1] = "never";
  const char *role = web_role_name (web_token_role (t));

  iso_time_format (t->created, made);
  if (t->last_used)
    iso_time_format (t->last_used, used);
  if (opaque)
    json_array_append_new (opaque, json_pack ("{s:s, s:s, s:s, s:s?}", "name",
                                              t->name, "role", role, "created",
                                              made, "last_used",
                                              t->last_used ? used : NULL));
  else
    printf ("%-24s %-8s %-21s %s\n", t->name, role, made, used);
  return 0;
}

static int
token_list (struct cli *c, bool json)
{
  json_t *a = json ? json_array () : NULL;

  if (!json)
    printf ("%-24s %-8s %-21s %s\n", "NAME", "ROLE", "CREATED", "LAST USED");
  if (catalog_token_list (c->cat, token_row, a) == -1) {
    json_decref (a);
    cli_perror ();
    return 1;
  }
  if (json)
    cli_json_print (a);
  return 0;
}

/* token add NAME [--role ROLE] (argv[0] "token"). */
static int
token_add (struct cli *c, int argc, char **argv)
{
  char token[WEB_TOKEN_LEN + 1];
  bool given = argc == 5 && strcmp (argv[3], "--role") == 0;
  int role = given ? web_role_parse (argv[4]) : WEB_ROLE_ADMIN;

  if (argc != 3 && !given)
    cli_bad_usage (web_usage);
  if (role == -1) {
    fprintf (stderr, "bootback: --role '%s' is not a role (one of %s)\n",
             argv[4], WEB_ROLE_NAMES);
    return 2;
  }
  if (cli_catalog (c) == -1)
    return 1;
  if (web_token_add (c->cat, argv[2], role, token) != 0) {
    cli_perror ();
    return 1;
  }
  printf ("%s\n", token);
  fprintf (stderr, "bootback: token %s (role %s) added; it is shown only "
           "now\n", argv[2], web_role_name (role));
  return 0;
}

static int
cmd_token (struct cli *c, int argc, char **argv)
{
  bool json = argc == 3 && strcmp (argv[2], "--json") == 0;

  if (argc >= 3 && strcmp (argv[1], "add") == 0)
    return token_add (c, argc, argv);
  if (argc < 2 || (strcmp (argv[1], "list") == 0 && argc != 2 && !json) ||
      (strcmp (argv[1], "list") != 0 && argc != 3))
    cli_bad_usage (web_usage);
  if (cli_catalog (c) == -1)
    return 1;
  if (strcmp (argv[1], "list") == 0)
    return token_list (c, json);
  if (strcmp (argv[1], "revoke") == 0) {
    if (catalog_token_revoke (c->cat, argv[2]) != 0) {
      cli_perror ();
      return 1;
    }
    return 0;
  }
  cli_bad_usage (web_usage);
}

/* The repository the API shows: --repo, $BOOTBACK_REPO or the default;
 * none is fine (an appliance without one yet). */
static int
web_repo (struct cli *c, struct web_opts *o)
{
  CLEANUP_FREE char *def = NULL;
  int err;

  if (!c->repo_opt) {
    def = catalog_repo_default (c->cat, &err);
    if (err) {
      cli_perror ();
      return -1;
    }
    if (!def)
      return 0;
  }
  if (cli_repo (c) == -1)
    return -1;
  o->repo_id = c->repo_id;
  o->repo = repo_location (c->repo);
  return 0;
}

/* --migrate-dir DIR: an existing directory, kept resolved. */
static int
migrate_dir_add (struct web_opts *o, const char *dir)
{
  char real[PATH_MAX];
  struct stat st;

  if (!realpath (dir, real) || stat (real, &st) == -1 || !S_ISDIR (st.st_mode)) {
    cli_error ("--migrate-dir %s: not an existing directory", dir);
    return -1;
  }
  strv_push (&o->migrate_dirs, NULL, xstrdup (real));
  return 0;
}

/* CLI_WEB_LISTEN_FILE while serving (cli.h); the path to remove after,
 * or NULL (a failure only warns: it is for lab up's warning). */
static char *
listen_record (struct cli *c, const char *listen)
{
  char *path = xasprintf ("%s/%s", c->home, CLI_WEB_LISTEN_FILE);
  CLEANUP_FREE char *tmp = xasprintf ("%s.%d", path, (int) getpid ());
  FILE *f = fopen (tmp, "we");
  bool ok = f && fprintf (f, "%d %s\n", (int) getpid (), listen) > 0;

  if (f && fclose (f) != 0)
    ok = false;
  if (ok && rename (tmp, path) == 0)
    return path;
  fprintf (stderr, "bootback: warning: cannot record the listen address in %s "
           "(lab up will not warn about publishing on it)\n", path);
  unlink (tmp);
  free (path);
  return NULL;
}

int
cmd_web (struct cli *c, int argc, char **argv)
{
  enum { OPT_LISTEN = 256, OPT_CERT, OPT_KEY, OPT_MAX_JOBS, OPT_MIGRATE_DIR,
         OPT_SERVER_NAME };
  static const struct option lo[] = {
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "cert", required_argument, NULL, OPT_CERT },
    { "key", required_argument, NULL, OPT_KEY },
    { "max-jobs", required_argument, NULL, OPT_MAX_JOBS },
    { "migrate-dir", required_argument, NULL, OPT_MIGRATE_DIR },
    { "server-name", required_argument, NULL, OPT_SERVER_NAME },
    { "help", no_argument, NULL, 'h' }, { NULL }
  };
  struct web_opts o = { .listen = WEB_DEFAULT_LISTEN, .home = c->home, .repo = "",
                        .scan = cli_scan_lab, .scan_opaque = c };
  CLEANUP_FREE char *record = NULL;
  struct catalog *cat;
  int opt, rc = 0;

  if (argc >= 2 && strcmp (argv[1], "token") == 0)
    return cmd_token (c, argc - 1, argv + 1);
  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_LISTEN: o.listen = optarg; break;
    case OPT_CERT: o.cert = optarg; break;
    case OPT_KEY: o.key = optarg; break;
    case OPT_SERVER_NAME: strv_push (&o.server_names, NULL, xstrdup (optarg)); break;
    case OPT_MAX_JOBS:
      o.max_jobs = cli_int_arg ("--max-jobs", optarg);
      if (o.max_jobs < 1 || o.max_jobs > WEB_MAX_JOBS_MAX) {
        cli_error ("--max-jobs %s: not from 1 to %d", optarg, WEB_MAX_JOBS_MAX);
        return 1;
      }
      break;
    case OPT_MIGRATE_DIR:
      if (migrate_dir_add (&o, optarg) == -1)
        return 1;
      break;
    case 'h': cli_usage (web_usage);
    default: cli_bad_usage (web_usage);
    }
  if (optind != argc)
    cli_bad_usage (web_usage);
  if (cli_catalog (c) == -1 || web_repo (c, &o) == -1)
    return 1;
  cat = c->cat;                 /* web_serve takes it */
  c->cat = NULL;
  record = listen_record (c, o.listen);
  if (web_serve (cat, &o) == -1) {
    cli_perror ();
    rc = 1;
  }
  if (record)
    unlink (record);
  return rc;
}
