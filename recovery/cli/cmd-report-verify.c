/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback report verify FILE... [--key PUBKEY.pem] [--json]: check signed
 * reports (report.json, report.html, junit.xml of a lab run) against their
 * detached signatures FILE.sig (verify/sign.c), with the appliance's
 * public key HOME/keys/report-ed25519.pub.pem or the one given (an
 * auditor's copy on another machine).
 *
 * Exit 0: every file has a good signature; 2: a file was changed, signed
 * by another key, or its signature file is not one; 1: a file could not
 * be checked (no FILE.sig, unreadable) or the key could not be read.
 */
#include "recovery/cli/cli.h"
#include "verify/verify.h"

static const char report_verify_usage[] =
  "usage: bootback report verify FILE... [--key PUBKEY.pem] [--json]\n"
  "\n"
  "Check that each FILE (a report of a lab run: report.json, report.html,\n"
  "junit.xml) is as the appliance signed it: FILE.sig, an Ed25519\n"
  "signature over FILE's bytes, made with the appliance's key.\n"
  "  --key PUBKEY.pem  the public key to check with (default: the\n"
  "                    appliance's, $BOOTBACK_HOME/keys/report-ed25519.pub.pem)\n"
  "  --json            one object per file: file, verdict (good, changed,\n"
  "                    other-key, malformed, unchecked), key, signed_by,\n"
  "                    message\n"
  "Exit 0 all good, 2 a file changed or signed by another key, 1 a file or\n"
  "the key could not be read.\n";

enum { OPT_KEY = 256, OPT_JSON };

/* Check one file; its exit status (0, 1, 2), said as text or into out. */
static int
verify_one (const struct verify_key *k, const char *file, json_t *out)
{
  enum verify_sig_verdict v;
  char sig_key[VERIFY_KEY_FPR_LEN + 1], msg[512];
  const char *verdict;
  int rc;

  if (verify_sig_check (k, file, &v, sig_key, msg, sizeof msg) == -1) {
    snprintf (msg, sizeof msg, "cannot check: %s", error_msg ());
    verdict = "unchecked";
    rc = 1;
  }
  else {
    verdict = verify_sig_verdict_name (v);
    rc = v == VERIFY_SIG_GOOD ? 0 : EXIT_PROBLEMS;
  }
  if (out)
    json_array_append_new (out, json_pack (
      "{s:s, s:s, s:s, s:s?, s:s}", "file", file, "verdict", verdict,
      "key", verify_key_fingerprint (k),
      "signed_by", rc != 1 && sig_key[0] ? sig_key : NULL, "message", msg));
  else if (rc == 0)
    printf ("%s: %s\n", file, msg);
  else if (rc == 1)
    cli_error ("%s", msg);          /* the error names the file */
  else
    cli_error ("%s: %s", file, msg);
  return rc;
}

int
cmd_report_verify (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "key", required_argument, NULL, OPT_KEY },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' }, { NULL }
  };
  CLEANUP_FREE char *own = NULL;
  const char *keyfile = NULL;
  struct verify_key *k;
  json_t *out = NULL;
  bool json = false;
  int opt, rc = 0, r, i;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_KEY: keyfile = optarg; break;
    case OPT_JSON: json = true; break;
    case 'h': cli_usage (report_verify_usage);
    default: cli_bad_usage (report_verify_usage);
    }
  if (optind >= argc)
    cli_bad_usage (report_verify_usage);
  if (!keyfile)
    keyfile = own = xasprintf ("%s/%s/%s", c->home, VERIFY_KEY_DIR,
                               VERIFY_PUBKEY_FILE);
  k = verify_key_public (keyfile);
  if (!k) {
    cli_error ("cannot check signatures: %s%s", error_msg (),
               own ? " (the appliance has signed no report yet? give --key)" : "");
    return 1;
  }
  if (json)
    out = json_array ();
  for (i = optind; i < argc; i++) {
    r = verify_one (k, argv[i], out);
    if (r == 1 || (r == EXIT_PROBLEMS && rc == 0))
      rc = r;
  }
  if (out)
    cli_json_print (out);
  verify_key_free (k);
  return rc;
}

/* ---- history --check ------------------------------------------------------ */

int
cli_history_check (struct cli *c, bool json)
{
  struct verify_chain_check k;

  if (verify_history_check (c->cat, &k) == -1) {
    cli_perror ();
    return 1;
  }
  if (json)
    cli_json_print (verify_chain_check_json (&k));
  else if (k.broken)
    cli_error ("run history: chain BROKEN at %s", k.message);
  else {
    printf ("run history: chain intact, %zu run%s checked", k.checked,
            k.checked == 1 ? "" : "s");
    if (k.unchained)
      printf (" (%zu older run%s recorded before the chain, unchained)",
              k.unchained, k.unchained == 1 ? "" : "s");
    printf ("\n");
  }
  if (k.broken) {
    if (json)
      cli_error ("run history: chain BROKEN at %s", k.message);
    return EXIT_PROBLEMS;
  }
  return 0;
}
