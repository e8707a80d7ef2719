/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback lab check [ID]: a sandbox's checks run again and compared with
 * its run at lab up (verify/recheck.c), as a before/after table (or
 * JSON) and a section of the sandbox's report.
 *
 * Exit status: 0 no check that passed at lab up fails now; 2 one does,
 * or the isolation no longer holds; 1 the sandbox or its definition could
 * not be read, or libvirt reached.
 */
#include <errno.h>

#include "recovery/cli/cli.h"
#include "lab/lab.h"
#include "verify/verify.h"

static const char check_usage[] =
  "usage: bootback lab check [ID] [--json]\n"
  "\n"
  "Run the checks of a sandbox's lab definition again on the running\n"
  "sandbox (after proving its isolation again) and compare each with its\n"
  "result at 'lab up': a table VM, check, at lab up, now.  The comparison\n"
  "is also added to the sandbox's report (a section of report.html, and\n"
  "recheck.json).  Without ID: the only sandbox there is.  Exit 0 nothing\n"
  "that passed fails now, 2 a check that passed at lab up fails now (or\n"
  "the isolation does not hold), 1 the check could not run.\n"
  "\n"
  "  --json               the comparison as JSON\n";

/* The sandbox named id, or the only one: NULL after saying why. */
static struct lab_state *
find_sandbox (struct cli *c, const char *id)
{
  struct lab_state **v = lab_state_list (c->home), *s = NULL;
  char found[8] = "", kind[16] = "";
  size_t k, n = 0;

  for (k = 0; v[k]; k++)
    if (id ? strcmp (v[k]->id, id) == 0
           : v[k]->kind && strcmp (v[k]->kind, "sandbox") == 0 &&
             lab_state_alive (v[k], time (NULL))) {
      n++;
      snprintf (found, sizeof found, "%s", v[k]->id);
      snprintf (kind, sizeof kind, "%s", v[k]->kind ? v[k]->kind : "run");
    }
  lab_state_list_free (v);
  if (n == 1 && strcmp (kind, "sandbox") == 0) {
    if (!(s = lab_state_load (c->home, found)))
      cli_perror ();
  }
  else if (n == 1)
    cli_error ("lab %s is a %s, not a sandbox", found, kind);
  else if (id)
    cli_error ("no lab %s (bootback lab list)", id);
  else
    cli_error (n ? "there are %zu sandboxes: name one (bootback lab list)"
                 : "no sandbox is up (bootback lab list)", n);
  return s;
}

static void
print_table (json_t *k)
{
  json_t *row;
  size_t i;
  int changed = 0;

  printf ("lab %s (%s): checks again at %s, against lab up\n",
          json_string_value (json_object_get (k, "run")),
          json_string_value (json_object_get (k, "lab")),
          json_string_value (json_object_get (k, "checked")));
  printf ("  isolation: %s\n", json_string_value (json_object_get (k, "isolation")));
  if (json_array_size (json_object_get (k, "checks")))
    printf ("  %-16s %-40s %-10s %-10s %s\n", "VM", "CHECK", "AT LAB UP", "NOW",
            "DETAILS");
  json_array_foreach (json_object_get (k, "checks"), i, row) {
    const char *was = json_string_value (json_object_get (row, "before"));
    const char *now = json_string_value (json_object_get (row, "now"));
    bool reg = json_is_true (json_object_get (row, "regressed"));
    changed += !was || strcmp (was, now) != 0;
    printf ("  %-16s %-40.40s %-10s %-10s %s\n",
            json_string_value (json_object_get (row, "vm")),
            json_string_value (json_object_get (row, "check")), was ? was : "-",
            reg ? "FAIL" : now, json_string_value (json_object_get (row, "message")));
  }
  printf ("%zu check%s, %d changed, %d regressed (passed at lab up, fail now)\n",
          json_array_size (json_object_get (k, "checks")),
          json_array_size (json_object_get (k, "checks")) == 1 ? "" : "s", changed,
          (int) json_integer_value (json_object_get (k, "regressions")));
}

/* The comparison into the sandbox's report; its signatures (if the
 * report was signed) made again over what changed, if it is still the
 * report the appliance signed (verify_report_add_recheck).  A warning if
 * not. */
static void
add_to_report (struct cli *c, const struct lab_state *s, json_t *k)
{
  CLEANUP_FREE char *sig = NULL;
  struct verify_key *key = NULL;

  if (!s->report_dir)
    return;
  sig = xasprintf ("%s/report.html%s", s->report_dir, VERIFY_SIG_SUFFIX);
  if (access (sig, F_OK) == 0 && !(key = verify_key_appliance (c->home)))
    cli_error ("warning: the report of lab %s is not signed again: %s", s->id,
               error_msg ());
  if (verify_report_add_recheck (s->report_dir, k, key) == -1)
    cli_error ("warning: the report of lab %s: %s", s->id, error_msg ());
  verify_key_free (key);
}

int
cli_lab_check (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  struct lab_state *s;
  struct lab_def *d;
  char *errs = NULL;
  bool json = false;
  json_t *k;
  int opt, rc;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case 'j': json = true; break;
    case 'h': cli_usage (check_usage);
    default: cli_bad_usage (check_usage);
    }
  if (optind + 1 < argc)
    cli_bad_usage (check_usage);
  if (!(s = find_sandbox (c, optind < argc ? argv[optind] : NULL)))
    return 1;
  d = s->file ? lab_def_read_file (s->file, &errs) : NULL;
  if (!d) {
    fputs (errs ? errs : "", stderr);
    cli_error ("lab %s: its definition %s cannot be read again", s->id,
               s->file ? s->file : "(none recorded)");
    free (errs);
    lab_state_free (s);
    return 1;
  }
  k = verify_recheck (s, d);
  if (!k) {
    cli_perror ();
    rc = 1;
  }
  else {
    add_to_report (c, s, k);
    rc = json_integer_value (json_object_get (k, "regressions")) > 0 ||
         !json_is_true (json_object_get (k, "isolated")) ? EXIT_PROBLEMS : 0;
    if (s->relay_pid > 0)
      json_object_set_new (k, "relay", json_pack ("{s:i, s:b}", "pid", (int) s->relay_pid,
                                                   "alive", lab_publish_alive (s)));
    if (json)
      cli_json_print (k);
    else {
      print_table (k);
      if (s->relay_pid > 0)
        printf ("published ports: relay %d %s\n", (int) s->relay_pid,
                lab_publish_alive (s) ? "running" : "NOT RUNNING ('bootback lab list')");
      json_decref (k);
    }
  }
  lab_def_free (d);
  lab_state_free (s);
  return rc;
}
