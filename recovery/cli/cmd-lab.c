/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback lab validate|run|up|list|down|reap, bootback verify,
 * bootback history: the verification lab (lab/lab.h, verify/verify.h).
 * lab up --publish starts the relay of lab/publish.c; lab check is in
 * cmd-lab-check.c.
 *
 * Exit status of run and verify: 0 every check passed, 2 some failed,
 * 1 the lab could not run (invalid definition, isolation not proven,
 * libvirt unreachable, interrupted).
 * Of history: 0, or 2 with --fail-on-regression when the newest time to
 * application ready regressed against the median before it.
 */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>

#include "recovery/cli/cli.h"
#include "recovery/instant/instant.h"
#include "lab/lab.h"
#include "verify/verify.h"

/* Options shared by run, up and verify. */
struct run_args {
  const char *report_dir;
  const char *uri;
  const char *host;              /* --host NAME (over the definition's) */
  int parallel;
  uint64_t budget_mib;
  double wait;
  double lease;
  int max_sandboxes;             /* lab up: refuse beyond this many */
  bool json, quiet;
  bool allow_passthrough;
  int check_chunks;              /* --check-chunks 1, --no-check-chunks 0,
                                    neither -1 (the command's default) */
  bool force;                    /* --force: the scan check passes an
                                    infected or suspicious point */
};

enum { OPT_REPORT = 256, OPT_PARALLEL, OPT_BUDGET, OPT_WAIT, OPT_CONNECT,
       OPT_LEASE, OPT_JSON, OPT_QUIET, OPT_ADDRESS, OPT_GATEWAY, OPT_SUBNET,
       OPT_HTTP, OPT_TCP, OPT_CHECK, OPT_BOOT, OPT_ALL, OPT_LATEST, OPT_MEMORY,
       OPT_PASSTHROUGH, OPT_CHECK_CHUNKS, OPT_NO_CHECK_CHUNKS, OPT_RTO, OPT_RPO,
       OPT_THRESHOLD, OPT_FAIL_REGRESSION, OPT_FIND_GOOD, OPT_RECHECK,
       OPT_PUBLISH, OPT_MAX_SANDBOXES, OPT_FORCE, OPT_HOST };

#define RUN_OPTIONS \
  { "report-dir", required_argument, NULL, OPT_REPORT }, \
  { "parallel", required_argument, NULL, OPT_PARALLEL }, \
  { "memory-budget", required_argument, NULL, OPT_BUDGET }, \
  { "wait", required_argument, NULL, OPT_WAIT }, \
  { "connect", required_argument, NULL, OPT_CONNECT }, \
  { "host", required_argument, NULL, OPT_HOST }, \
  { "json", no_argument, NULL, OPT_JSON }, \
  { "quiet", no_argument, NULL, OPT_QUIET }, \
  { "allow-passthrough", no_argument, NULL, OPT_PASSTHROUGH }, \
  { "check-chunks", no_argument, NULL, OPT_CHECK_CHUNKS }, \
  { "no-check-chunks", no_argument, NULL, OPT_NO_CHECK_CHUNKS }, \
  { "force", no_argument, NULL, OPT_FORCE }, \
  { "help", no_argument, NULL, 'h' }

#define RUN_OPTIONS_HELP \
  "  --report-dir DIR     where the reports go (default\n" \
  "                       $BOOTBACK_HOME/reports/LAB-TIME-ID)\n" \
  "  --parallel N         VMs booting at once (default 2)\n" \
  "  --memory-budget SIZE memory of all lab runs together (default half\n" \
  "                       of the host's); a run waits for its share\n" \
  "  --wait DURATION      how long to wait for it (default: forever; lab\n" \
  "                       up: not at all)\n" \
  "  --connect URI        libvirt URI (default: LIBVIRT_DEFAULT_URI)\n" \
  "  --host NAME          run the lab on a host of `bootback host add` with\n" \
  "                       --ssh: its network is made and checked there and\n" \
  "                       its checks run there, over ssh (over the\n" \
  "                       definition's host:)\n" \
  "  --json               print the report as JSON\n" \
  "  --quiet              no progress lines\n" \
  "  --allow-passthrough  restore points keep what their saved definition\n" \
  "                       passes to the host (graphics listeners, host\n" \
  "                       directories and devices, ...): only for points\n" \
  "                       you trust; NICs stay on the lab bridge\n" \
  "  --check-chunks       before a restore point boots, check that every\n" \
  "                       chunk it uses is there with its size (a point\n" \
  "                       with one missing fails without booting; reading\n" \
  "                       every byte is repo verify's job); the default of\n" \
  "                       verify, --no-check-chunks turns it off\n" \
  "  --force              a scan check passes a point that is infected or\n" \
  "                       marked suspicious (said in its message)\n"

static double
duration_arg (const char *opt, const char *s)
{
  double v = lab_parse_duration (s);

  if (v < 0) {
    cli_error ("%s: %s", opt, error_msg ());
    exit (1);
  }
  return v;
}

/* 1 if handled (a run option), 0 if not. */
static int
run_option (struct run_args *a, int opt, const char *arg)
{
  int64_t v;

  switch (opt) {
  case OPT_REPORT: a->report_dir = arg; return 1;
  case OPT_PARALLEL:
    a->parallel = cli_int_arg ("--parallel", arg);
    if (a->parallel < 1) {
      cli_error ("--parallel must be at least 1");
      exit (1);
    }
    return 1;
  case OPT_BUDGET:
    v = parse_size (arg);
    if (v < 0) {
      cli_error ("--memory-budget: %s", error_msg ());
      exit (1);
    }
    if (strspn (arg, "0123456789") == strlen (arg))
      v *= 1024 * 1024;               /* a bare number is MiB */
    a->budget_mib = v / (1024 * 1024);
    return 1;
  case OPT_WAIT: a->wait = duration_arg ("--wait", arg); return 1;
  case OPT_CONNECT: a->uri = arg; return 1;
  case OPT_HOST: a->host = arg; return 1;
  case OPT_JSON: a->json = true; return 1;
  case OPT_QUIET: a->quiet = true; return 1;
  case OPT_PASSTHROUGH: a->allow_passthrough = true; return 1;
  case OPT_CHECK_CHUNKS: a->check_chunks = 1; return 1;
  case OPT_NO_CHECK_CHUNKS: a->check_chunks = 0; return 1;
  case OPT_FORCE: a->force = true; return 1;
  case OPT_LEASE: a->lease = duration_arg ("--lease", arg); return 1;
  }
  return 0;
}

static void
print_secs (double s)
{
  if (s >= 0)
    printf ("%9.1fs", s);
  else
    printf ("%10s", "-");
}

/* Human summary of a report on stdout. */
static void
print_report (const struct verify_report *r)
{
  size_t i, j;

  printf ("lab %s: %s (%zu VM%s, %d checks: %d passed, %d failed, %d skipped) "
          "in %.1f s\n", r->lab, r->status, r->nvms, r->nvms == 1 ? "" : "s",
          r->checks, r->passed, r->failed, r->skipped, r->seconds);
  if (r->message)
    printf ("  %s\n", r->message);
  printf ("  %-20s %-7s %10s %10s %10s\n", "VM", "result", "boot", "heartbeat",
          "app-ready");
  for (i = 0; i < r->nvms; i++) {
    const struct verify_vm_result *v = &r->vms[i];
    printf ("  %-20s %-7s ", v->name, v->status == VERIFY_PASS ? "passed" : "FAILED");
    print_secs (v->t_boot);
    putchar (' ');
    print_secs (v->t_heartbeat);
    putchar (' ');
    print_secs (v->t_app_ready);
    putchar ('\n');
    for (j = 0; j < v->nchecks; j++)
      if (v->checks[j].status == VERIFY_FAIL)
        printf ("      failed: %s: %s\n", v->checks[j].name, v->checks[j].message);
    if (v->suspicious)
      printf ("      suspicious point: %s\n", v->suspicious);
  }
  printf ("report: %s/report.html\n", r->dir);
}

/* The lab run's lines on stderr: progress as it is, warnings as the
 * errors of bootback. */
static void
print_run_note (void *opaque, bool warning, const char *line)
{
  if (warning)
    cli_error ("%s", line);
  else
    fprintf (stderr, "%s\n", line);
}

/* The host d runs on (--host, else its host:) into h, and its URI into
 * *uri (kept until exit): 0, or -1 after printing why not.  Nothing of
 * the lab's VMs or of a restore point names it. */
static int
run_host (struct cli *c, const struct lab_def *d, const struct run_args *a,
          struct lab_host *h, const char **uri)
{
  const char *name = a->host ? a->host : lab_def_host (d);
  size_t g;

  if (!name)
    return 0;
  for (g = 0; a->host && g < d->ngroups; g++)
    if (d->groups[g].host && strcmp (d->groups[g].host, a->host) != 0) {
      cli_error ("--host %s: group %s of lab %s is on host %s: a lab runs on one "
                 "host", a->host, d->groups[g].name, d->name, d->groups[g].host);
      return -1;
    }
  if (a->uri) {
    cli_error ("give --host or --connect, not both (lab %s is on host %s)", d->name, name);
    return -1;
  }
  *uri = cli_lab_host (c, name, h);
  return *uri ? 0 : -1;
}

/* Run d: its report in *rp (verify_report_free), or -1 after printing
 * why the lab could not run. */
static int
run_report (struct cli *c, const struct lab_def *d, const struct run_args *a,
            const char *kind, struct verify_report **rp)
{
  struct verify_run_opts o = {
    .home = c->home, .uri = a->uri, .report_dir = a->report_dir, .kind = kind,
    .parallel = a->parallel, .budget_mib = a->budget_mib, .budget_wait = a->wait,
    .lease = a->lease, .quiet = a->quiet, .note = print_run_note,
    .max_sandboxes = a->max_sandboxes,
    .allow_passthrough = a->allow_passthrough,
    .scan = cli_scan_lab, .scan_opaque = c, .scan_force = a->force,
    .check_chunks = a->check_chunks > 0 || (a->check_chunks < 0 && strcmp (kind, "verify") == 0),
  };
  struct instant_opts host = { 0 };
  static struct lab_host lh;

  *rp = NULL;
  if (cli_catalog (c) == -1)
    return -1;
  if (run_host (c, d, a, &lh, &o.uri) == -1)
    return -1;
  if (lab_host_remote (&lh))
    o.host = &lh;
  o.record = c->cat;
  if (lab_def_needs_repo (d)) {
    if (cli_repo (c) == -1)
      return -1;
    o.repo = repo_location (c->repo);
    o.repo_id = c->repo_id;
  }
  cli_instant_env (c, &host);
  o.instant = &host;
  lab_signals_install ();
  if (verify_run (d, &o, rp) == -1) {
    cli_error ("lab %s could not run: %s", d->name, error_msg ());
    return -1;
  }
  return 0;
}

/* The exit status a report stands for: 0 passed, 2 failed, 1 could not
 * verify (error, interrupted). */
static int
report_exit (const struct verify_report *r)
{
  if (strcmp (r->status, "passed") == 0)
    return 0;
  if (strcmp (r->status, "failed") == 0)
    return EXIT_PROBLEMS;
  return 1;
}

/* The host lab d runs on (--host, else its host:), NULL for this one. */
static const char *
def_host (const struct lab_def *d, const struct run_args *a)
{
  return a->host ? a->host : d ? lab_def_host (d) : NULL;
}

static void
print_sandbox (const struct verify_report *r, const char *host)
{
  char when[64];
  struct tm tm;
  size_t i;

  localtime_r (&r->expires, &tm);
  strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", &tm);
  printf ("\nsandbox %s is up%s%s until %s (bootback lab down %s)\n",
          r->run_id, host ? " on host " : "", host ? host : "", when, r->run_id);
  printf ("  shell in the lab network: bootback lab shell %s   (ip netns exec %s%s%s)\n",
          r->run_id, r->netns, host ? " on " : "", host ? host : "");
  for (i = 0; i < r->nvms; i++)
    if (r->vms[i].domain)
      printf ("  %s: bootback lab console %s %s%s%s\n", r->vms[i].name, r->run_id,
              r->vms[i].name, r->vms[i].address ? "   address " : "",
              r->vms[i].address ? r->vms[i].address : "");
}

/* Print r (json or text, then the sandbox's ways in: d's published
 * ports if it is up); free it; its exit status. */
static int
report_done (struct verify_report *r, const struct run_args *a,
             const struct lab_def *d)
{
  int rc;
  size_t i;

  if (a->json) {
    json_t *o = verify_report_json (r), *pub = json_array ();
    for (i = 0; r->expires && d && i < d->npublish; i++) {
      char spec[LAB_PUBLISH_LEN];
      lab_publish_format (&d->publish[i], spec, sizeof spec);
      json_array_append_new (pub, json_string (spec));
    }
    if (r->expires) {
      json_object_set_new (o, "published", pub);
      json_object_set_new (o, "host", def_host (d, a) ? json_string (def_host (d, a))
                                                       : json_null ());
    }
    else
      json_decref (pub);
    cli_json_print (o);
  }
  else {
    print_report (r);
    if (r->expires)
      print_sandbox (r, def_host (d, a));
    for (i = 0; r->expires && d && i < d->npublish; i++)
      printf ("  published: %s:%d -> %s port %d   (curl http://%s:%d/)\n",
              d->publish[i].addr, d->publish[i].port, d->publish[i].vm,
              d->publish[i].vm_port, d->publish[i].addr, d->publish[i].port);
  }
  rc = report_exit (r);
  verify_report_free (r);
  return rc;
}

/* Run d; print; exit status. */
static int
run_def (struct cli *c, const struct lab_def *d, const struct run_args *a,
         const char *kind)
{
  struct verify_report *r;

  if (run_report (c, d, a, kind, &r) == -1)
    return 1;
  return report_done (r, a, NULL);
}

/* ---- validate --------------------------------------------------------------- */

static const char validate_usage[] =
  "usage: bootback lab validate FILE [--json]\n"
  "\n"
  "Check a lab definition: YAML syntax, keys, addresses, checks.  Every\n"
  "problem is printed as FILE:LINE: message.  Exit 0 valid, 2 invalid,\n"
  "1 unreadable.\n";

static int
lab_validate (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' }, { NULL }
  };
  bool json = false;
  char *errs = NULL;
  struct lab_def *d;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_JSON: json = true; break;
    case 'h': cli_usage (validate_usage);
    default: cli_bad_usage (validate_usage);
    }
  if (optind + 1 != argc)
    cli_bad_usage (validate_usage);
  if (access (argv[optind], R_OK) == -1) {
    cli_error ("%s: %s", argv[optind], strerror (errno));
    return 1;
  }
  d = lab_def_read_file (argv[optind], &errs);
  if (json) {
    json_t *e = json_array ();
    char *line, *save = NULL;
    for (line = errs ? strtok_r (errs, "\n", &save) : NULL; line;
         line = strtok_r (NULL, "\n", &save))
      json_array_append_new (e, json_string (line));
    cli_json_print (json_pack ("{s:s, s:b, s:o, s:i, s:i}", "file", argv[optind],
                               "valid", d != NULL, "errors", e,
                               "groups", d ? (int) d->ngroups : 0,
                               "vms", d ? (int) lab_def_nvms (d) : 0));
  }
  else if (d) {
    size_t g, i, n = 0;
    for (g = 0; g < d->ngroups; g++)
      for (i = 0; i < d->groups[g].nvms; i++)
        n += d->groups[g].vms[i].nchecks;
    printf ("%s: valid: lab %s, network %s/%d (gateway %s), %zu group%s, "
            "%zu VM%s, %zu checks\n", argv[optind], d->name, d->subnet, d->prefix,
            d->gateway, d->ngroups, d->ngroups == 1 ? "" : "s", lab_def_nvms (d),
            lab_def_nvms (d) == 1 ? "" : "s", n);
  }
  else
    fputs (errs, stderr);
  free (errs);
  if (!d)
    return EXIT_PROBLEMS;
  lab_def_free (d);
  return 0;
}

/* ---- run, up ------------------------------------------------------------------ */

static const char run_usage[] =
  "usage: bootback lab run FILE [options]\n"
  "\n"
  "Boot the lab's VMs in an isolated network (its groups in order), run\n"
  "their checks, write the reports (JSON, HTML, JUnit), record the run in\n"
  "the catalog and tear everything down.  Exit 0 all checks passed, 2 some\n"
  "failed, 1 the lab could not run.\n"
  "\n"
  RUN_OPTIONS_HELP;

static const char up_usage[] =
  "usage: bootback lab up FILE [--lease DURATION] [--publish [ADDR:]PORT=VM:PORT]...\n"
  "                            [--max-sandboxes N] [options]\n"
  "\n"
  "Like 'lab run' but leave the lab running as a sandbox until the lease\n"
  "ends (default 4h; 'bootback lab reap' removes it then) or 'bootback lab\n"
  "down'.  Prints how to reach the VMs: a shell in the lab namespace,\n"
  "their consoles, the published ports.  A sandbox that does not fit in\n"
  "the memory budget or the sandbox count is refused at once.  On another\n"
  "host (--host, host:) it stays up there: lab shell, down, reap, check,\n"
  "exec, cp, console, checkpoint and reset to a checkpoint reach it over\n"
  "ssh or its libvirt; published ports are refused there.\n"
  "\n"
  "  --lease DURATION     e.g. 30m, 4h, 2d\n"
  "  --publish [ADDR:]PORT=VM:PORT\n"
  "                       relay the host's ADDR:PORT (default address\n"
  "                       127.0.0.1; 0.0.0.0 only when written) to VM's\n"
  "                       PORT at its address: in the lab; repeatable, also\n"
  "                       publish: in the definition\n"
  "  --max-sandboxes N    refuse when N sandboxes are up already (default\n"
  "                       $BOOTBACK_LAB_MAX_SANDBOXES, else 8; 0: no limit)\n"
  RUN_OPTIONS_HELP;

/* The default of --max-sandboxes: $BOOTBACK_LAB_MAX_SANDBOXES, else 8. */
static int
default_max_sandboxes (void)
{
  const char *e = getenv ("BOOTBACK_LAB_MAX_SANDBOXES");

  return e && *e ? cli_int_arg ("BOOTBACK_LAB_MAX_SANDBOXES", e) : 8;
}

/* Start the relay of sandbox r for d's published ports (listening on
 * fds, taken over).  If it cannot start, the sandbox is torn down: -1
 * after saying why. */
static int
up_publish (struct cli *c, const struct lab_def *d, const struct verify_report *r,
            int *fds)
{
  struct lab_state *s = lab_state_load (c->home, r->run_id);
  struct lab_net n;
  int rc = 0;

  if (!s) {
    lab_publish_close (fds, d->npublish);
    cli_perror ();
    return -1;
  }
  lab_net_init (&n, s->id, d);
  if (lab_publish_start (s, &n, d, fds) == -1) {
    cli_error ("lab %s: %s; tearing the sandbox down", s->id, error_msg ());
    if (lab_state_teardown (s, NULL) == -1)
      cli_error ("lab %s: %s", s->id, error_msg ());
    rc = -1;
  }
  lab_state_free (s);
  return rc;
}

/* A published port on the address of a running bootback web (its
 * record, cli.h), or either on a wildcard address: a browser that opens
 * both sends the console's session cookie to the guest (cookies are
 * scoped by host, not port).  A warning only: the console refuses other
 * Hosts and Origins, so the cookie is no use through a browser
 * (docs/design.md, "Web"); the operator is told how to keep it apart. */
static void
warn_console_address (struct cli *c, const struct lab_def *d)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s", c->home, CLI_WEB_LISTEN_FILE);
  FILE *f = fopen (path, "re");
  char addr[80], *colon;
  bool any;
  size_t i;
  int pid = 0, n;

  if (!f)
    return;
  n = fscanf (f, "%d %79s", &pid, addr);
  fclose (f);
  if (n != 2 || pid <= 0 || (kill (pid, 0) == -1 && errno == ESRCH) ||
      !(colon = strrchr (addr, ':')))
    return;
  *colon = '\0';
  any = strcmp (addr, "0.0.0.0") == 0 || strcmp (addr, "[::]") == 0;
  for (i = 0; i < d->npublish; i++)
    if (any || strcmp (d->publish[i].addr, addr) == 0 ||
        strcmp (d->publish[i].addr, "0.0.0.0") == 0)
      fprintf (stderr, "bootback: warning: publish %s:%d: the web console (pid %d) "
               "listens on %s: a browser that opens both sends the console's "
               "session cookie to the sandbox (cookies are scoped by host, not "
               "port); publish on another address (e.g. 127.0.0.2), or open the "
               "console by another name (localhost, --server-name)\n",
               d->publish[i].addr, d->publish[i].port, pid, addr);
}

/* lab up: the published ports are listened for first (a port in use
 * stops it before anything is made), the relay starts once the sandbox
 * is up. */
static int
up_def (struct cli *c, const struct lab_def *d, const struct run_args *a)
{
  int fds[LAB_PUBLISH_MAX];
  struct verify_report *r;

  if (d->npublish && def_host (d, a)) {
    cli_error ("lab up: published ports of a sandbox on another host (%s) are not "
               "supported: the relay would have to run there (reach the VMs with "
               "bootback lab shell ID, or an ssh tunnel to that host)", def_host (d, a));
    return 1;
  }
  if (lab_publish_listen (d, fds) == -1) {
    cli_error ("%s", error_msg ());
    return 1;
  }
  if (d->npublish)
    warn_console_address (c, d);
  if (run_report (c, d, a, "sandbox", &r) == -1) {
    lab_publish_close (fds, d->npublish);
    return 1;
  }
  if (!r->expires)
    lab_publish_close (fds, d->npublish);
  else if (d->npublish && up_publish (c, d, r, fds) == -1) {
    verify_report_free (r);
    return 1;
  }
  return report_done (r, a, d);
}

/* --publish specs into d; exit 1 on the first bad one. */
static void
add_publishes (struct lab_def *d, char **specs, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (lab_def_add_publish (d, specs[i]) == -1) {
      cli_error ("--publish: %s", error_msg ());
      lab_def_free (d);
      exit (1);
    }
}

static int
lab_run_or_up (struct cli *c, int argc, char **argv, bool up)
{
  static const struct option lo[] = {
    RUN_OPTIONS, { "lease", required_argument, NULL, OPT_LEASE },
    { "publish", required_argument, NULL, OPT_PUBLISH },
    { "max-sandboxes", required_argument, NULL, OPT_MAX_SANDBOXES }, { NULL }
  };
  const char *usage = up ? up_usage : run_usage;
  struct run_args a = { .wait = up ? 0 : -1, .lease = up ? 4 * 3600 : 0,
                        .check_chunks = -1 };
  CLEANUP_FREE char **publish = NULL;
  size_t npublish = 0;
  struct lab_def *d;
  char *errs = NULL;
  int opt, rc;

  if (up)
    a.max_sandboxes = default_max_sandboxes ();
  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    if (opt == 'h')
      cli_usage (usage);
    if ((opt == OPT_LEASE || opt == OPT_PUBLISH || opt == OPT_MAX_SANDBOXES) && !up)
      cli_bad_usage (usage);
    if (opt == OPT_PUBLISH)
      *ARRAY_PUSH (publish, npublish) = optarg;
    else if (opt == OPT_MAX_SANDBOXES)
      a.max_sandboxes = cli_int_arg ("--max-sandboxes", optarg);
    else if (!run_option (&a, opt, optarg))
      cli_bad_usage (usage);
  }
  if (optind + 1 != argc)
    cli_bad_usage (usage);
  if (up && a.lease < 60) {
    cli_error ("--lease must be at least 1m");
    return 1;
  }
  d = lab_def_read_file (argv[optind], &errs);
  if (!d) {
    fputs (errs ? errs : "", stderr);
    cli_error ("%s is not a valid lab definition", argv[optind]);
    free (errs);
    return 1;
  }
  add_publishes (d, publish, npublish);
  if (up)
    rc = up_def (c, d, &a);
  else
    rc = run_def (c, d, &a, "run");         /* publish: is for sandboxes */
  lab_def_free (d);
  return rc;
}

/* ---- list, down, reap -------------------------------------------------------- */

static const char list_usage[] =
  "usage: bootback lab list [--json]\n"
  "\n"
  "Labs that exist now: running labs, sandboxes with their owner (who ran\n"
  "'lab up'), lease, memory and published ports (with whether their relay\n"
  "runs), and leftovers of runs that died (removed by 'bootback lab reap').\n";

static const char *
liveness (const struct lab_state *s, time_t now, char *buf, size_t len)
{
  if (s->expires) {
    long left = (long) (s->expires - now);
    if (left <= 0)
      return "expired";
    snprintf (buf, len, "%ldh%02ldm left", left / 3600, (left % 3600) / 60);
    return buf;
  }
  return lab_state_alive (s, now) ? "running" : "orphaned";
}

/* A state's VM lines as JSON objects. */
static json_t *
list_vms_json (const struct lab_state *s)
{
  json_t *vms = json_array ();
  size_t j;

  for (j = 0; s->vms && s->vms[j]; j++) {
    char name[160], dom[200], addr[64];
    if (sscanf (s->vms[j], "%159s %199s %63s", name, dom, addr) == 3)
      json_array_append_new (vms, json_pack ("{s:s, s:s, s:s?}", "name", name,
                                             "domain", dom, "address",
                                             strcmp (addr, "-") ? addr : NULL));
  }
  return vms;
}

/* Its published ports ("ADDR:PORT=VM:PORT TARGET:PORT" lines). */
static json_t *
list_published_json (const struct lab_state *s)
{
  json_t *a = json_array ();
  size_t j;

  for (j = 0; s->published && s->published[j]; j++) {
    char listen[32], vm[80], target[32];
    int port;
    if (sscanf (s->published[j], "%31[^=]=%79[^:]:%d %31s", listen, vm, &port,
                target) == 4)
      json_array_append_new (a, json_pack ("{s:s, s:s, s:i, s:s}", "listen", listen,
                                           "vm", vm, "port", port, "target", target));
  }
  return a;
}

static json_t *
list_json (const struct lab_state *s, time_t now)
{
  char buf[64], exp[32] = "";
  json_t *o;

  if (s->expires)
    iso_time_format (s->expires, exp);
  o = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:s?, s:s, s:s, s:I,"
                 " s:s, s:I, s:o, s:o}",
                 "id", s->id, "lab", s->lab ? s->lab : "",
                 "kind", s->kind ? s->kind : "", "status", s->status ? s->status : "",
                 "state", liveness (s, now, buf, sizeof buf),
                 "alive", lab_state_alive (s, now), "created", (json_int_t) s->created,
                 "expires", (json_int_t) s->expires, "expires_at", exp[0] ? exp : NULL,
                 "netns", s->netns ? s->netns : "",
                 "report_dir", s->report_dir ? s->report_dir : "",
                 "memory_mib", (json_int_t) s->memory_mib,
                 "owner", s->owner ? s->owner : "",
                 "owner_uid", (json_int_t) s->owner_uid,
                 "vms", list_vms_json (s), "published", list_published_json (s));
  json_object_set_new (o, "host", s->host && s->host[0] ? json_string (s->host) : json_null ());
  json_object_set_new (o, "relay", s->relay_pid <= 0 ? json_null ()
                       : json_pack ("{s:i, s:b}", "pid", (int) s->relay_pid,
                                    "alive", lab_publish_alive (s)));
  return o;
}

static void
list_line (const struct lab_state *s, time_t now)
{
  char buf[64], mem[32];
  size_t j;

  snprintf (mem, sizeof mem, "%" PRIu64 "M", s->memory_mib);
  printf ("%-7s %-16s %-8s %-14s %-10s %7s %-22s", s->id, s->lab ? s->lab : "?",
          s->kind ? s->kind : "?", liveness (s, now, buf, sizeof buf),
          s->owner ? s->owner : "-", mem, s->netns ? s->netns : "-");
  for (j = 0; s->vms && s->vms[j]; j++) {
    char name[160], dom[200], addr[64];
    if (sscanf (s->vms[j], "%159s %199s %63s", name, dom, addr) == 3)
      printf (" %s%s%s%s", name, strcmp (addr, "-") ? "(" : "",
              strcmp (addr, "-") ? addr : "", strcmp (addr, "-") ? ")" : "");
  }
  putchar ('\n');
  if (s->ssh && s->ssh[0])
    printf ("        on host %s (ssh %s)\n", s->host ? s->host : "?", s->ssh);
  for (j = 0; s->published && s->published[j]; j++)
    printf ("        published %s (relay %d %s)\n", s->published[j], (int) s->relay_pid,
            lab_publish_alive (s) ? "running" : "NOT RUNNING");
}

static int
lab_list (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, OPT_JSON }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  struct lab_state **v;
  bool json = false;
  time_t now = time (NULL);
  int opt;
  size_t i;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_JSON: json = true; break;
    case 'h': cli_usage (list_usage);
    default: cli_bad_usage (list_usage);
    }
  if (optind != argc)
    cli_bad_usage (list_usage);
  v = lab_state_list (c->home);
  if (json) {
    json_t *a = json_array ();
    for (i = 0; v[i]; i++)
      json_array_append_new (a, list_json (v[i], now));
    cli_json_print (a);
  }
  else if (!v[0])
    printf ("no labs\n");
  else {
    printf ("%-7s %-16s %-8s %-14s %-10s %7s %-22s %s\n", "ID", "LAB", "KIND", "STATE",
            "OWNER", "MEMORY", "NAMESPACE", "VMS");
    for (i = 0; v[i]; i++)
      list_line (v[i], now);
  }
  lab_state_list_free (v);
  return 0;
}

static const char down_usage[] =
  "usage: bootback lab down [ID...] [--all] [--connect URI|--host NAME]\n"
  "\n"
  "Tear labs down: their VMs, instant-recovery sessions, overlays, network\n"
  "and namespace.  Without ID: the only sandbox there is.  A lab's VMs are\n"
  "looked for where the lab started them, unless --connect or --host (a\n"
  "host of `bootback host add`) says where they are reached now.\n";

static int
teardown_one (struct lab_state *s, const char *uri)
{
  if (uri) {
    free (s->uri);
    s->uri = xstrdup (uri);
  }
  if (lab_state_teardown (s, NULL) == -1) {
    cli_error ("lab %s: %s", s->id, error_msg ());
    return -1;
  }
  return 0;
}

static int
lab_down (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "all", no_argument, NULL, OPT_ALL }, { "connect", required_argument, NULL, OPT_CONNECT },
    { "host", required_argument, NULL, OPT_HOST }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  bool all = false;
  const char *uri = NULL, *host = NULL;
  struct lab_state **v;
  int opt, rc = 0, i;
  size_t k, nsandbox = 0, which = 0;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_ALL: all = true; break;
    case OPT_CONNECT: uri = optarg; break;
    case OPT_HOST: host = optarg; break;
    case 'h': cli_usage (down_usage);
    default: cli_bad_usage (down_usage);
    }
  if (cli_host_option (c, host, &uri) == -1)
    return 1;
  v = lab_state_list (c->home);
  if (all || optind == argc) {
    for (k = 0; v[k]; k++)
      if (all || (v[k]->kind && strcmp (v[k]->kind, "sandbox") == 0)) {
        nsandbox++;
        which = k;
      }
    if (!all && nsandbox != 1) {
      cli_error (nsandbox ? "there are %zu sandboxes: name one (bootback lab list)"
                          : "no sandbox is up (bootback lab list)", nsandbox);
      lab_state_list_free (v);
      return 1;
    }
    for (k = 0; v[k]; k++)
      if (all || k == which) {
        if (teardown_one (v[k], uri) == -1)
          rc = 1;
        else
          printf ("lab %s (%s) is down\n", v[k]->id, v[k]->lab ? v[k]->lab : "?");
      }
  }
  else
    for (i = optind; i < argc; i++) {
      for (k = 0; v[k]; k++)
        if (strcmp (v[k]->id, argv[i]) == 0)
          break;
      if (!v[k]) {
        cli_error ("no lab %s (bootback lab list)", argv[i]);
        rc = 1;
        continue;
      }
      if (teardown_one (v[k], uri) == -1)
        rc = 1;
      else
        printf ("lab %s (%s) is down\n", v[k]->id, v[k]->lab ? v[k]->lab : "?");
    }
  lab_state_list_free (v);
  return rc;
}

static const char reap_usage[] =
  "usage: bootback lab reap [--connect URI|--host NAME] [--json]\n"
  "\n"
  "Tear down sandboxes whose lease ended and labs whose run died (killed,\n"
  "crashed host).  Run by bootback-lab-reap.timer.  --connect or --host\n"
  "(a host of `bootback host add`): where their VMs are reached now, for\n"
  "all of them (default: where each lab started them).\n";

static int
lab_reap (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "connect", required_argument, NULL, OPT_CONNECT }, { "json", no_argument, NULL, OPT_JSON },
    { "host", required_argument, NULL, OPT_HOST }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  const char *uri = NULL, *host = NULL;
  bool json = false;
  struct lab_state **v;
  json_t *out = json_array ();
  time_t now = time (NULL);
  int opt, rc = 0;
  size_t k;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_CONNECT: uri = optarg; break;
    case OPT_HOST: host = optarg; break;
    case OPT_JSON: json = true; break;
    case 'h': cli_usage (reap_usage);
    default: cli_bad_usage (reap_usage);
    }
  if (optind != argc)
    cli_bad_usage (reap_usage);
  if (cli_host_option (c, host, &uri) == -1)
    return 1;
  v = lab_state_list (c->home);
  for (k = 0; v[k]; k++) {
    const char *why;
    if (lab_state_alive (v[k], now))
      continue;
    why = v[k]->expires ? "lease ended" : "its run is gone";
    if (teardown_one (v[k], uri) == -1) {
      rc = 1;
      continue;
    }
    json_array_append_new (out, json_pack ("{s:s, s:s, s:s}", "id", v[k]->id,
                                           "lab", v[k]->lab ? v[k]->lab : "",
                                           "reason", why));
    if (!json)
      printf ("reaped lab %s (%s): %s\n", v[k]->id, v[k]->lab ? v[k]->lab : "?", why);
  }
  lab_state_list_free (v);
  if (json)
    cli_json_print (out);
  else
    json_decref (out);
  return rc;
}

static const char shell_usage[] =
  "usage: bootback lab shell [ID] [-- COMMAND [ARG...]]\n"
  "\n"
  "A shell (or COMMAND) inside a lab's network namespace, where the lab's\n"
  "VMs are reachable at their production addresses and nothing else is.\n"
  "Without ID: the only lab there is.  A lab on another host: its namespace\n"
  "is there, reached over ssh (the host's ssh destination; a terminal with\n"
  "ssh -t when stdin is one); COMMAND's output and exit status come back.\n";

/* lab shell of a lab on another host: ssh there (-t when stdin is a
 * terminal), ip netns exec NS env BOOTBACK_LAB_...=... CMD, or the remote
 * user's shell; every word quoted (lab_host_shell_argv).  The host is
 * asked first, so that an ssh that cannot connect is said as such (ssh's
 * 255 would be the command's).  Returns only on error. */
static int
shell_remote (const struct lab_state *s, char **cmd, int ncmd)
{
  CLEANUP_FREE char *e_id = xasprintf ("BOOTBACK_LAB_ID=%s", s->id);
  CLEANUP_FREE char *e_ns = xasprintf ("BOOTBACK_LAB_NETNS=%s", s->netns);
  char *head[] = { "ip", "netns", "exec", s->netns, "env", "--", e_id, e_ns, "env", "--" };
  char *sh[] = { "sh", "-c", "exec \"${SHELL:-/bin/sh}\" -i" };
  char **w = xcalloc (ncmd + 14, sizeof *w), **ssh;
  struct lab_host h;
  int i;

  lab_state_host (s, &h);
  if (lab_host_open (&h) == -1) {
    cli_error ("lab %s: %s", s->id, error_msg ());
    free (w);
    return 1;
  }
  lab_host_close (&h);
  memcpy (w, head, sizeof head);
  if (ncmd)
    memcpy (w + 10, cmd, ncmd * sizeof *w);
  else {
    memcpy (w + 10, sh, sizeof sh);
    fprintf (stderr, "lab %s (%s): a shell in namespace %s on host %s (ssh %s); the "
             "VMs:\n", s->id, s->lab ? s->lab : "?", s->netns, h.name, h.ssh);
    for (i = 0; s->vms && s->vms[i]; i++)
      fprintf (stderr, "  %s\n", s->vms[i]);
  }
  ssh = lab_host_shell_argv (&h, w, isatty (0));
  free (w);
  env_unset_secrets ();
  fflush (NULL);
  execvp (ssh[0], ssh);
  cli_error ("ssh: %s", strerror (errno));
  strv_free (ssh);
  return 1;
}

static int
lab_shell (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = { { "help", no_argument, NULL, 'h' }, { NULL } };
  struct lab_state **v, *s = NULL;
  const char *id = NULL;
  char **cmd;
  size_t k, n = 0;
  int opt;

  while ((opt = getopt_long (argc, argv, "+h", lo, NULL)) != -1)
    switch (opt) {
    case 'h': cli_usage (shell_usage);
    default: cli_bad_usage (shell_usage);
    }
  if (optind < argc && strcmp (argv[optind - 1], "--") != 0)
    id = argv[optind++];
  if (optind < argc && strcmp (argv[optind], "--") == 0)
    optind++;
  v = lab_state_list (c->home);
  for (k = 0; v[k]; k++)
    if (id ? strcmp (v[k]->id, id) == 0 : lab_state_alive (v[k], time (NULL))) {
      s = v[k];
      n++;
    }
  if (n != 1 || !s->netns) {
    if (id)
      cli_error ("no lab %s (bootback lab list)", id);
    else if (n)
      cli_error ("there are %zu labs: name one (bootback lab list)", n);
    else
      cli_error ("no lab is up (bootback lab list)");
    lab_state_list_free (v);
    return 1;
  }
  if (s->ssh && s->ssh[0]) {
    int rc = shell_remote (s, argv + optind, argc - optind);
    lab_state_list_free (v);
    return rc;
  }
  cmd = xcalloc (argc - optind + 5, sizeof *cmd);
  cmd[0] = "ip";
  cmd[1] = "netns";
  cmd[2] = "exec";
  cmd[3] = xstrdup (s->netns);
  if (optind < argc)
    memcpy (cmd + 4, argv + optind, (argc - optind) * sizeof *cmd);
  else {
    const char *sh = getenv ("SHELL");
    cmd[4] = (char *) (sh && *sh ? sh : "/bin/sh");
    fprintf (stderr, "lab %s (%s): a shell in namespace %s; the VMs:\n", s->id,
             s->lab ? s->lab : "?", s->netns);
    for (k = 0; s->vms && s->vms[k]; k++)
      fprintf (stderr, "  %s\n", s->vms[k]);
  }
  setenv ("BOOTBACK_LAB_ID", s->id, 1);
  setenv ("BOOTBACK_LAB_NETNS", s->netns, 1);
  lab_state_list_free (v);
  fflush (NULL);
  execvp (cmd[0], cmd);
  cli_error ("ip netns exec: %s", strerror (errno));
  return 1;
}

static const char lab_usage[] =
  "usage: bootback lab validate|run|up|list|down|reap|shell|check|exec|cp|\n"
  "                    console|checkpoint|checkpoints|reset|extend ...\n"
  "\n"
  "The verification lab: boot restore points (or images) in an isolated\n"
  "network that has the production addresses, check them, report.\n"
  "\n"
  "  validate FILE           check a lab definition\n"
  "  run FILE                run it once: boot, check, report, tear down\n"
  "  up FILE --lease 4h      keep it running as a sandbox\n"
  "  list                    labs that exist now\n"
  "  down [ID]               tear a lab down\n"
  "  shell [ID] [-- CMD]     a shell in a lab's network namespace\n"
  "  check [ID]              a sandbox's checks again, against lab up\n"
  "  reap                    tear down expired sandboxes and orphans\n"
  "  exec ID VM -- CMD       run a command in a lab VM (guest agent)\n"
  "  cp ID SRC VM:DST        copy a file into a lab VM, or out of it\n"
  "  cp ID VM:SRC DST        (item-level recovery)\n"
  "  console ID VM           attach a lab VM's serial console\n"
  "  checkpoint ID [NAME]    save a sandbox's VMs, disks and memory\n"
  "  checkpoints ID          list them\n"
  "  reset ID [NAME]         back to a checkpoint, or to the restore point\n"
  "  extend ID --lease DUR   a sandbox's lease ends DUR from now\n"
  "\n"
  "'bootback lab SUBCOMMAND --help' for each; 'man bootback' for the\n"
  "definition format.\n";

int
cmd_lab (struct cli *c, int argc, char **argv)
{
  const char *sub;

  if (argc < 2)
    cli_bad_usage (lab_usage);
  sub = argv[1];
  if (strcmp (sub, "--help") == 0 || strcmp (sub, "-h") == 0)
    cli_usage (lab_usage);
  argc--;
  argv++;
  optind = 1;
  if (strcmp (sub, "validate") == 0) return lab_validate (c, argc, argv);
  if (strcmp (sub, "run") == 0) return lab_run_or_up (c, argc, argv, false);
  if (strcmp (sub, "up") == 0) return lab_run_or_up (c, argc, argv, true);
  if (strcmp (sub, "list") == 0) return lab_list (c, argc, argv);
  if (strcmp (sub, "down") == 0) return lab_down (c, argc, argv);
  if (strcmp (sub, "reap") == 0) return lab_reap (c, argc, argv);
  if (strcmp (sub, "shell") == 0) return lab_shell (c, argc, argv);
  if (strcmp (sub, "check") == 0) return cli_lab_check (c, argc, argv);
  if (strcmp (sub, "exec") == 0) return cli_lab_exec (c, argc, argv);
  if (strcmp (sub, "cp") == 0) return cli_lab_cp (c, argc, argv);
  if (strcmp (sub, "console") == 0) return cli_lab_console (c, argc, argv);
  if (strcmp (sub, "checkpoint") == 0) return cli_lab_checkpoint (c, argc, argv);
  if (strcmp (sub, "checkpoints") == 0) return cli_lab_checkpoints (c, argc, argv);
  if (strcmp (sub, "reset") == 0) return cli_lab_reset (c, argc, argv);
  if (strcmp (sub, "extend") == 0) return cli_lab_extend (c, argc, argv);
  cli_error ("unknown lab command '%s'", sub);
  cli_bad_usage (lab_usage);
}

/* ---- verify (quick mode) ---------------------------------------------------- */

static const char verify_usage[] =
  "usage: bootback verify VM[@TIME] [options]\n"
  "       bootback verify --all --latest [options]\n"
  "       bootback verify VM --find-good [--recheck] [options]\n"
  "\n"
  "Quick verification of one restore point (default: the latest) in a lab\n"
  "of its own: heartbeat (guest agent) and a console screenshot, plus ping,\n"
  "TCP and HTTP checks when the VM's address is given.  If\n"
  "$BOOTBACK_HOME/verify/VM.yaml exists it is the VM's lab definition (its\n"
  "points are replaced by the one chosen).  Else the VM's domain XML may\n"
  "say how to verify it, in its <metadata>: <bb:verify xmlns:bb=\n"
  "\"urn:bootback:verify:1\"> with <address>, <subnet>, <gateway> and\n"
  "<check> elements; those checks may only act on the guest (heartbeat,\n"
  "ping, tcp, http to its address, guest-exec, screenshot): others, script\n"
  "above all, are refused and count as failed.  --all --latest verifies the\n"
  "newest point of every VM of the repository, one lab after the other.\n"
  "--find-good finds the newest point of VM that passes: the newest first,\n"
  "then by bisection over the older ones (assuming that once points turn\n"
  "bad they stay bad), reusing the verdicts of earlier runs of a point\n"
  "unless --recheck; it lists each point tried with its verdict and reason.\n"
  "Exit 0 verified (a good point found), 2 some check failed (no point\n"
  "passed), 1 could not verify.\n"
  "\n"
  "  --address IP         the VM's production address (enables ping)\n"
  "  --gateway IP         its gateway (default: .1 of a /24)\n"
  "  --subnet CIDR        its subnet (default: the /24 of --address)\n"
  "  --tcp PORT           also check that PORT accepts connections\n"
  "  --http URL           also GET URL ({address} = the VM's), expect 200\n"
  "  --check CHECK        any check, as in a lab definition (repeatable)\n"
  "  --boot-timeout DUR   default 2m\n"
  "  --memory SIZE        memory cap for the VM\n"
  "  --rto DURATION       fail (check \"rto\") if the VM is not application\n"
  "                       ready this long after its start\n"
  "  --rpo DURATION       fail (check \"rpo\") if the VM's newest restore\n"
  "                       point is older than this\n"
  "  --find-good          search VM's points for the newest that passes\n"
  "  --recheck            with --find-good: verify again points that have\n"
  "                       a verdict already\n"
  RUN_OPTIONS_HELP;

/* Verify VM[@POINT] spec (a heading first when it is one of --all): the
 * exit code of its run, 1 if it did not run (after printing why). */
static int
verify_one (struct cli *c, const struct verify_quick *q, const struct run_args *a,
            const char *spec, bool all)
{
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  struct lab_def *d;
  int r;

  if (repo_point_resolve (c->repo, spec, vm, id) == -1) {
    cli_perror ();
    return 1;
  }
  d = verify_quick_def (c->home, c->repo, q, vm, id);
  if (!d) {
    cli_perror ();
    return 1;
  }
  if (!a->quiet && all)
    fprintf (stderr, "== %s@%s\n", vm, id);
  r = run_def (c, d, a, "verify");
  lab_def_free (d);
  return r;
}

/* ---- verify --find-good ----------------------------------------------------- */

struct find {
  struct cli *c;
  const struct verify_quick *q;
  const struct run_args *a;
  const char *vm;
  char **ids;               /* the VM's points, oldest first */
  signed char *verdict;     /* per point: 1 passed, -1 failed, 0 not tried */
  bool *fresh;              /* per point: verified by this search */
  bool recheck;             /* ignore the verdicts of earlier runs */
  json_t *tried;            /* what was tried, in order */
};

/* The newest verdict an earlier run that ran to its end gave VM@POINT;
 * a pass over today's --rto is a failure. */
struct cached {
  const char *source;       /* "VM@POINT" */
  double rto;               /* --rto, < 0 none */
  json_t *found;            /* a "tried" object, or NULL */
};

static int
cached_row (void *opaque, const struct catalog_lab_history *h)
{
  struct cached *k = opaque;
  bool pass = strcmp (h->status, "pass") == 0;
  CLEANUP_FREE char *reason = NULL;

  if (strcmp (h->source, k->source) != 0 ||
      (strcmp (h->run_status, "passed") != 0 && strcmp (h->run_status, "failed") != 0))
    return 0;
  if (pass && k->rto >= 0 && !(h->t_app_ready >= 0 && h->t_app_ready <= k->rto)) {
    pass = false;
    reason = xasprintf ("rto: application ready after %.1f s, over the RTO of %.0f s",
                        h->t_app_ready, k->rto);
  }
  else
    reason = xstrdup_printable (pass ? "" : *h->message ? h->message : h->failed_checks,
                                false);
  json_decref (k->found);
  k->found = json_pack ("{s:s, s:b, s:s, s:I, s:s, s:s}",
                        "verdict", pass ? "passed" : "failed", "cached", 1,
                        "run", h->run, "started", (json_int_t) h->started,
                        "report_dir", h->report_dir, "reason", reason);
  return 0;
}

static json_t *
find_cached (struct find *f, const char *id)
{
  CLEANUP_FREE char *source = xasprintf ("%s@%s", f->vm, id);
  struct cached k = { .source = source, .rto = f->q->rto };

  if (catalog_lab_history (f->c->cat, f->vm, cached_row, &k) == -1) {
    json_decref (k.found);
    return NULL;
  }
  return k.found;
}

/* Verify VM@id now; NULL (after printing why) if it could not be. */
static json_t *
find_verify (struct find *f, const char *id)
{
  struct run_args a = *f->a;
  CLEANUP_FREE char *dir = a.report_dir ? xasprintf ("%s/%s", a.report_dir, id) : NULL;
  CLEANUP_FREE char *reason = NULL;
  struct verify_report *r;
  struct lab_def *d;
  json_t *t;
  int rc;

  a.report_dir = dir;
  d = verify_quick_def (f->c->home, f->c->repo, f->q, f->vm, id);
  if (!d) {
    cli_error ("%s@%s: %s", f->vm, id, error_msg ());
    return NULL;
  }
  if (!a.quiet)
    fprintf (stderr, "== %s@%s\n", f->vm, id);
  rc = run_report (f->c, d, &a, "verify", &r);
  lab_def_free (d);
  if (rc == -1)
    return NULL;
  if (report_exit (r) == 1) {
    cli_error ("could not verify %s@%s (%s): %s", f->vm, id, r->status,
               r->message ? r->message : "see the report");
    verify_report_free (r);
    return NULL;
  }
  reason = verify_report_reason (r, f->vm);
  t = json_pack ("{s:s, s:b, s:s, s:I, s:s, s:s}", "verdict", r->status,
                 "cached", 0, "run", r->run_id, "started", (json_int_t) r->started,
                 "report_dir", r->dir, "reason", reason);
  if (!t)
    cli_error ("%s@%s: its verdict cannot be recorded (run %s)", f->vm, id, r->run_id);
  verify_report_free (r);
  return t;
}

/* verify_try_fn: what this search found already, else an earlier run's
 * verdict of point i, else a verification now. */
static int
find_try (void *opaque, size_t i)
{
  struct find *f = opaque;
  json_t *t;
  bool pass;

  if (f->verdict[i])
    return f->verdict[i] > 0;
  t = f->recheck ? NULL : find_cached (f, f->ids[i]);
  if (!t) {
    if (!(t = find_verify (f, f->ids[i])))
      return -1;
    f->fresh[i] = true;
  }
  json_object_set_new (t, "point", json_string (f->ids[i]));
  pass = strcmp (json_string_value (json_object_get (t, "verdict")), "passed") == 0;
  f->verdict[i] = pass ? 1 : -1;
  if (!f->a->json) {
    printf ("  %-18s %-7s %s", f->ids[i], pass ? "passed" : "failed",
            pass ? "every check passed" : json_string_value (json_object_get (t, "reason")));
    if (json_is_true (json_object_get (t, "cached")))
      printf (" (verdict of run %s)", json_string_value (json_object_get (t, "run")));
    putchar ('\n');
  }
  fflush (stdout);
  json_array_append_new (f->tried, t);
  return pass;
}

/* The oldest point newer than good that failed (its index), or -1. */
static ssize_t
first_bad_after (const struct find *f, ssize_t good)
{
  size_t i;

  for (i = good + 1; f->ids[i]; i++)
    if (f->verdict[i] < 0)
      return (ssize_t) i;
  return -1;
}

static void
find_print (const struct find *f, size_t n, ssize_t good)
{
  ssize_t bad = first_bad_after (f, good);

  if (good >= 0) {
    printf ("newest good point: %s@%s", f->vm, f->ids[good]);
    if ((size_t) good + 1 < n)
      printf (" (%zu newer point%s: %s@%s, the oldest of them tried, failed)",
              n - good - 1, n - good - 1 == 1 ? "" : "s", f->vm, f->ids[bad]);
    printf ("\n");
  }
  else
    printf ("no good point: %s@%s, the oldest of %zu, failed\n", f->vm,
            f->ids[bad], n);
  printf ("%zu of %zu points tried; the search assumes that once points turn "
          "bad they stay bad\n", json_array_size (f->tried), n);
}

/* bootback verify VM --find-good: exit 0 a good point found, 2 none, 1
 * could not verify. */
static int
find_good (struct cli *c, const struct verify_quick *q, const struct run_args *a,
           const char *vm, bool recheck)
{
  struct find f = { .c = c, .q = q, .a = a, .vm = vm, .recheck = recheck };
  CLEANUP_STRV char **ids = NULL;
  size_t n;
  ssize_t good;
  int rc;

  if (strchr (vm, '@')) {
    cli_error ("--find-good searches the points of a VM: give VM, not %s", vm);
    return 1;
  }
  if (cli_catalog (c) == -1)
    return 1;
  f.ids = ids = repo_list_points (c->repo, vm);
  if (!ids) {
    cli_perror ();
    return 1;
  }
  for (n = 0; ids[n]; n++)
    ;
  if (n == 0) {
    cli_error ("VM %s has no restore points", vm);
    return 1;
  }
  f.verdict = xcalloc (n, 1);
  f.fresh = xcalloc (n, sizeof *f.fresh);
  f.tried = json_array ();
  if (!a->json)
    printf ("%s: %zu restore point%s; trying the newest, then bisecting\n", vm, n,
            n == 1 ? "" : "s");
  /* An answer from the catalog is booted now before it is given: its
   * data may have changed since (a repository others can write); if it
   * fails now, the search goes on with it failed. */
  while ((rc = verify_find_good (n, find_try, &f, &good)) == 0 && good >= 0 &&
         !f.fresh[good]) {
    if (!a->json)
      printf ("  %-18s booting it again: its verdict is an earlier run's\n", ids[good]);
    f.verdict[good] = 0;
    f.recheck = true;
    rc = find_try (&f, good);
    f.recheck = recheck;
    if (rc == -1)
      break;
  }
  if (rc == 0 && a->json)
    cli_json_print (json_pack ("{s:s, s:I, s:o, s:o}", "vm", vm, "points", (json_int_t) n,
                               "newest_good", good >= 0 ? json_string (ids[good]) : json_null (),
                               "tried", json_incref (f.tried)));
  else if (rc == 0)
    find_print (&f, n, good);
  json_decref (f.tried);
  free (f.verdict);
  free (f.fresh);
  return rc == -1 ? 1 : good >= 0 ? 0 : EXIT_PROBLEMS;
}

int
cmd_verify (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    RUN_OPTIONS,
    { "address", required_argument, NULL, OPT_ADDRESS },
    { "gateway", required_argument, NULL, OPT_GATEWAY },
    { "subnet", required_argument, NULL, OPT_SUBNET },
    { "tcp", required_argument, NULL, OPT_TCP },
    { "http", required_argument, NULL, OPT_HTTP },
    { "check", required_argument, NULL, OPT_CHECK },
    { "boot-timeout", required_argument, NULL, OPT_BOOT },
    { "memory", required_argument, NULL, OPT_MEMORY },
    { "rto", required_argument, NULL, OPT_RTO },
    { "rpo", required_argument, NULL, OPT_RPO },
    { "all", no_argument, NULL, OPT_ALL },
    { "latest", no_argument, NULL, OPT_LATEST },
    { "find-good", no_argument, NULL, OPT_FIND_GOOD },
    { "recheck", no_argument, NULL, OPT_RECHECK },
    { NULL }
  };
  struct run_args a = { .wait = -1, .check_chunks = -1 };
  struct verify_quick q = { .rto = -1, .rpo = -1 };
  bool all = false, latest = false, find = false, recheck = false;
  CLEANUP_STRV char **vms = NULL;
  int opt, rc = 0, i;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    if (opt == 'h')
      cli_usage (verify_usage);
    if (run_option (&a, opt, optarg))
      continue;
    switch (opt) {
    case OPT_ADDRESS: q.address = optarg; break;
    case OPT_GATEWAY: q.gateway = optarg; break;
    case OPT_SUBNET: q.subnet = optarg; break;
    case OPT_BOOT: q.boot = optarg; break;
    case OPT_MEMORY: q.memory = optarg; break;
    case OPT_RTO: q.rto = duration_arg ("--rto", optarg); break;
    case OPT_RPO: q.rpo = duration_arg ("--rpo", optarg); break;
    case OPT_ALL: all = true; break;
    case OPT_LATEST: latest = true; break;
    case OPT_FIND_GOOD: find = true; break;
    case OPT_RECHECK: recheck = true; break;
    case OPT_TCP: case OPT_HTTP: case OPT_CHECK:
      if (q.nchecks == 60) {
        cli_error ("too many checks");
        while (q.nchecks > 0)
          free (q.checks[--q.nchecks]);
        return 1;
      }
      q.checks[q.nchecks++] = opt == OPT_TCP ? xasprintf ("tcp %s", optarg)
                            : opt == OPT_HTTP ? xasprintf ("http %s", optarg)
                            : xstrdup (optarg);
      break;
    default: cli_bad_usage (verify_usage);
    }
  }
  if (all ? (optind != argc || !latest || q.address || find) : optind + 1 != argc)
    cli_bad_usage (verify_usage);
  if ((recheck && !find) || (find && q.rpo >= 0))
    cli_bad_usage (verify_usage);    /* --rpo is about the newest point */
  if (cli_repo (c) == -1)
    return 1;
  if (find) {
    rc = find_good (c, &q, &a, argv[optind], recheck);
    for (i = 0; i < q.nchecks; i++)
      free (q.checks[i]);
    return rc;
  }
  if (all) {
    vms = repo_list_vms (c->repo);
    if (!vms) {
      cli_perror ();
      return 1;
    }
    if (!vms[0])
      printf ("no VM has restore points\n");
  }
  else {
    vms = xcalloc (2, sizeof *vms);
    vms[0] = xstrdup (argv[optind]);
  }
  for (i = 0; vms[i] && !lab_interrupted; i++) {
    int r = verify_one (c, &q, &a, vms[i], all);
    if (r == 1 || (r == EXIT_PROBLEMS && rc == 0))
      rc = r;
  }
  for (i = 0; i < q.nchecks; i++)
    free (q.checks[i]);
  return rc;
}

/* ---- history ------------------------------------------------------------------ */

static const char history_usage[] =
  "usage: bootback history VM [--threshold PERCENT] [--fail-on-regression]\n"
  "                           [--json]\n"
  "       bootback history --check [--json]\n"
  "\n"
  "Past lab runs and verifications of VM, oldest first, with their times\n"
  "to boot, heartbeat and application ready, and the trend of the time to\n"
  "application ready: the newest run's against the median of up to 20 runs\n"
  "before it.  More than PERCENT over that median (default 50) is a\n"
  "regression, printed as \"regression: ...\" (in --json: the newest run's\n"
  "\"regression\" object, null if none).  Exit 0, also with a regression;\n"
  "2 with a regression and --fail-on-regression; 1 if the history could not\n"
  "be read.\n"
  "\n"
  "  --threshold PERCENT    growth over the median that is a regression\n"
  "  --fail-on-regression   exit 2 when there is one\n"
  "  --json                 the runs as JSON\n"
  "  --check                check the catalog's hash chain of lab runs\n"
  "                         instead: exit 0 intact, 2 with the first edited\n"
  "                         or deleted run named\n";

/* Runs before the newest that the trend's median is of (at most). */
#define HISTORY_PREVIOUS 20

/* The trend of a history (an array of runs, oldest first): the newest
 * time to app-ready against the median of the runs before it, printed
 * (json false) or set as the newest run's "regression" (json).  Whether
 * it grew by more than threshold percent. */
static bool
print_trend (json_t *h, double threshold, bool json)
{
  size_t n = json_array_size (h);
  json_t *last = n ? json_array_get (h, n - 1) : NULL;
  struct verify_regression r;
  int have = verify_regression (h, HISTORY_PREVIOUS, threshold, &r);

  if (json) {
    if (last)
      json_object_set_new (last, "regression", have && r.regression
                                               ? verify_regression_json (&r)
                                               : json_null ());
    return have && r.regression;
  }
  if (!have) {
    json_t *t = last ? json_object_get (last, "t_app_ready") : NULL;
    if (json_is_number (t))
      printf ("trend: time to app-ready %.1f s, no run before it to compare with\n",
              json_number_value (t));
    return false;
  }
  printf ("trend: time to app-ready %.1f s in the last run, %.1f s median of the "
          "%d before (%+.0f%%)\n", r.newest, r.median, r.previous, r.change_percent);
  if (r.regression)
    printf ("regression: time to app-ready %.1f s in the last run (%s), %.1f s "
            "median of the %d runs before: %+.0f%%, over the threshold of %.0f%%\n",
            r.newest, r.started ? r.started : "?", r.median, r.previous,
            r.change_percent, r.threshold_percent);
  return r.regression;
}

/* --threshold: a percentage ("50" or "50%") above 0. */
static double
percent_arg (const char *opt, const char *s)
{
  char *end;
  double v;

  errno = 0;
  v = strtod (s, &end);
  if (*end == '%')
    end++;
  if (errno || end == s || *end || !(v > 0) || v > 1e6) {
    cli_error ("%s: '%s' is not a percentage above 0", opt, s);
    exit (1);
  }
  return v;
}

int
cmd_history (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "threshold", required_argument, NULL, OPT_THRESHOLD },
    { "fail-on-regression", no_argument, NULL, OPT_FAIL_REGRESSION },
    { "check", no_argument, NULL, OPT_CHECK },
    { "json", no_argument, NULL, OPT_JSON }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  bool fail_on_regression = false, regressed, check = false;
  double threshold = 50;
  bool json = false;
  json_t *h;
  size_t i, n;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_JSON: json = true; break;
    case OPT_THRESHOLD: threshold = percent_arg ("--threshold", optarg); break;
    case OPT_FAIL_REGRESSION: fail_on_regression = true; break;
    case OPT_CHECK: check = true; break;
    case 'h': cli_usage (history_usage);
    default: cli_bad_usage (history_usage);
    }
  if (optind + (check ? 0 : 1) != argc)
    cli_bad_usage (history_usage);
  if (cli_catalog (c) == -1)
    return 1;
  if (check)
    return cli_history_check (c, json);       /* cmd-report-verify.c */
  h = verify_history_json (c->cat, argv[optind]);
  if (!h) {
    cli_perror ();
    return 1;
  }
  n = json_array_size (h);
  if (json) {
    regressed = print_trend (h, threshold, true);
    cli_json_print (h);
    return regressed && fail_on_regression ? EXIT_PROBLEMS : 0;
  }
  if (n == 0)
    printf ("no lab run has checked %s\n", argv[optind]);
  else
    printf ("%-20s %-18s %-7s %-6s %10s %10s %10s  %s\n", "STARTED", "LAB", "KIND",
            "RESULT", "BOOT", "HEARTBEAT", "APP-READY", "FAILED CHECKS");
  for (i = 0; i < n; i++) {
    json_t *o = json_array_get (h, i);
    const char *nm[] = { "t_boot", "t_heartbeat", "t_app_ready" };
    size_t k;
    printf ("%-20s %-18s %-7s %-6s", json_string_value (json_object_get (o, "started")),
            json_string_value (json_object_get (o, "lab")),
            json_string_value (json_object_get (o, "kind")),
            json_string_value (json_object_get (o, "status")));
    for (k = 0; k < 3; k++) {
      json_t *t = json_object_get (o, nm[k]);
      putchar (' ');
      print_secs (json_is_number (t) ? json_number_value (t) : -1);
    }
    printf ("  %s\n", json_string_value (json_object_get (o, "failed_checks")));
  }
  regressed = print_trend (h, threshold, false);
  json_decref (h);
  return regressed && fail_on_regression ? EXIT_PROBLEMS : 0;
}
