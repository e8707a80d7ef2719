/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback report: per VM over a window, its restore points, its
 * verifications and their pass rate, the RTO it achieves (median and p95
 * of the time to application ready of the passed ones), the newest
 * verified point and the newest point; as a table, JSON or an HTML page.
 * The numbers are verify/summary.c's; this file only prints them.
 *
 * Exit status: 0 printed, 1 could not (no catalog, no repository, a file
 * that cannot be written).
 */
#include <errno.h>

#include "recovery/cli/cli.h"
#include "lab/lab.h"
#include "verify/verify.h"

static const char report_usage[] =
  "usage: bootback report [--since DURATION] [--json] [--html FILE] [VM...]\n"
  "       bootback report verify FILE... [--key PUBKEY.pem] [--json]\n"
  "\n"
  "A summary per VM of the repository over the last DURATION (default\n"
  "30d): restore points (in the window and in all), verifications (lab\n"
  "runs and bootback verify of its points, lab runs of an image under its\n"
  "name) with their pass rate, the RTO achieved (median and p95 of the time\n"
  "to application ready of the verifications that passed), the newest\n"
  "point a verification passed on and the newest point.  Without VM: every\n"
  "VM with a point, or a verification in the window.  (A VM cannot be\n"
  "called 'verify' here: that word is the subcommand that checks the\n"
  "signatures of a lab run's reports; 'bootback report verify --help'.)\n"
  "\n"
  "  --since DURATION   the window, e.g. 7d, 30d, 12h\n"
  "  --json             the summary as JSON\n"
  "  --html FILE        also write it as a self-contained HTML page (an\n"
  "                     existing FILE only if it is this user's)\n";

enum { OPT_SINCE = 256, OPT_JSON, OPT_HTML };

/* A cell of the table: a duration or "-". */
static const char *
dur (double s, char *buf, size_t len)
{
  return s >= 0 ? verify_duration_str (s, buf, len) : "-";
}

static void
print_table (const struct verify_summary *s, const char *window)
{
  size_t i;

  if (s->nvms == 0) {
    printf ("no VM has a restore point or a verification in the last %s\n", window);
    return;
  }
  printf ("last %s:\n", window);
  printf ("%-20s %9s %6s %9s %10s %10s  %-18s %s\n", "VM", "POINTS", "VERIF",
          "PASS RATE", "RTO MEDIAN", "RTO P95", "NEWEST VERIFIED", "NEWEST POINT");
  for (i = 0; i < s->nvms; i++) {
    const struct verify_summary_vm *e = &s->vms[i];
    char pts[32], rate[16], med[VERIFY_DURATION_LEN], p95[VERIFY_DURATION_LEN];
    snprintf (pts, sizeof pts, "%d/%d", e->points_window, e->points);
    if (e->runs)
      snprintf (rate, sizeof rate, "%.0f%%", 100.0 * e->passed / e->runs);
    else
      snprintf (rate, sizeof rate, "-");
    printf ("%-20s %9s %6d %9s %10s %10s  %-18s %s\n", e->vm, pts, e->runs, rate,
            dur (e->rto_median, med, sizeof med), dur (e->rto_p95, p95, sizeof p95),
            e->verified ? e->verified : "-", e->newest ? e->newest : "-");
    if (e->suspicious)
      printf ("  %d suspicious point%s, newest %s: %s\n", e->suspicious,
              e->suspicious == 1 ? "" : "s", e->suspicious_newest, e->suspicious_reason);
  }
}

static int
write_html (const struct verify_summary *s, const char *path)
{
  CLEANUP_FREE char *html = verify_summary_html (s);
  FILE *f = fopen_private (path);

  if (!f) {
    cli_perror ();
    return -1;
  }
  if (fputs (html, f) == EOF || fclose (f) != 0) {
    cli_error ("%s: %s", path, strerror (errno));
    return -1;
  }
  return 0;
}

int
cmd_report (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "since", required_argument, NULL, OPT_SINCE },
    { "json", no_argument, NULL, OPT_JSON },
    { "html", required_argument, NULL, OPT_HTML },
    { "help", no_argument, NULL, 'h' }, { NULL }
  };
  const char *window = "30d", *html = NULL;
  struct verify_summary *s;
  time_t now = time (NULL);
  bool json = false;
  double since;
  int opt, i, rc = 0;

  if (argc >= 2 && strcmp (argv[1], "verify") == 0) {
    optind = 1;
    return cmd_report_verify (c, argc - 1, argv + 1);
  }
  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_SINCE: window = optarg; break;
    case OPT_JSON: json = true; break;
    case OPT_HTML: html = optarg; break;
    case 'h': cli_usage (report_usage);
    default: cli_bad_usage (report_usage);
    }
  for (i = optind; i < argc; i++)
    if (strcmp (argv[i], "verify") == 0 || !name_is_valid (argv[i]))
      cli_bad_usage (report_usage);
  if ((since = lab_parse_duration (window)) < 0) {
    cli_error ("--since: %s", error_msg ());
    return 1;
  }
  if (cli_repo (c) == -1)
    return 1;
  s = verify_summary_read (c->cat, c->repo_id, now - (time_t) since, now,
                           optind < argc ? argv + optind : NULL);
  if (!s) {
    cli_perror ();
    return 1;
  }
  if (html && write_html (s, html) == -1)
    rc = 1;
  if (json)
    cli_json_print (verify_summary_json (s));
  else
    print_table (s, window);
  verify_summary_free (s);
  return rc;
}
