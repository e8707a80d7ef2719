/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of web/'s tokens and escaping: Prometheus label escaping (the
 * exposition format's three escapes, nothing else touched), API token
 * making and hashing (format, the SHA-256 of a known input, two tokens
 * differ), and checking against a catalog made here (the right token and
 * its name, a wrong one, one changed in its last character, a revoked one);
 * the actions' arguments, and a migrate job's target resolved at the
 * request and checked again when the job runs (a link swapped between);
 * error objects of any bytes.
 */
#undef NDEBUG
#include <assert.h>
#include <limits.h>

#include "web/web.h"
#include "web/web-int.h"

static void
escape_is (const char *in, const char *want)
{
  char *got = web_prom_escape (in);

  if (strcmp (got, want) != 0) {
    fprintf (stderr, "web_prom_escape (%s) = %s, want %s\n", in, got, want);
    abort ();
  }
  free (got);
}

static int
role_is_read (void *opaque, const struct catalog_token *t)
{
  assert (strcmp (t->name, "new") != 0 || web_token_role (t) == WEB_ROLE_READ);
  return 0;
}

static void
test_check (void)
{
  enum web_role role;
  char dir[] = "/tmp/test-web.XXXXXX", tok[WEB_TOKEN_LEN + 1], other[WEB_TOKEN_LEN + 1];
  char name[WEB_TOKEN_NAME_MAX + 1] = "", scratch[WEB_TOKEN_LEN + 1];
  CLEANUP_FREE char *cmd = NULL;
  struct catalog *c;

  assert (mkdtemp (dir));
  assert ((c = catalog_open (dir)));
  assert (web_token_add (c, "ci", WEB_ROLE_READ, tok) == 0);
  assert (web_token_add (c, "ops", WEB_ROLE_OPERATE, other) == 0);
  assert (web_token_add (c, "ci", WEB_ROLE_ADMIN, scratch) == 1);
  assert (web_token_add (c, "-bad", WEB_ROLE_READ, scratch) == 1 &&
          strstr (error_msg (), "not valid"));
  assert (web_token_check (c, tok, name, &role) == 1 && strcmp (name, "ci") == 0 &&
          role == WEB_ROLE_READ);
  tok[WEB_TOKEN_LEN - 1] = tok[WEB_TOKEN_LEN - 1] == '0' ? '1' : '0';
  assert (web_token_check (c, tok, name, &role) == 0);
  assert (web_token_check (c, "", name, &role) == 0);
  assert (web_token_check (c, other, name, &role) == 1 &&
          strcmp (name, "ops") == 0 && role == WEB_ROLE_OPERATE);
  assert (catalog_token_revoke (c, "ops") == 0);
  assert (web_token_check (c, other, name, &role) == 0);
  /* a role this program does not know (a newer one's) is the least */
  assert (catalog_token_add (c, "new", "ab12", "superuser") == 0);
  assert (catalog_token_list (c, role_is_read, NULL) == 0);
  assert (web_role_parse ("admin") == WEB_ROLE_ADMIN && web_role_parse ("Admin") == -1);
  catalog_close (c);
  cmd = xasprintf ("rm -rf %s", dir);
  assert (system (cmd) == 0);
}

/* The server's options: migrate jobs may move sessions to /tmp only. */
static char *migrate_dirs[] = { "/tmp", NULL };
static struct web_opts opts = { .migrate_dirs = migrate_dirs };

/* body is checked as action (NULL: refused, why containing reason). */
static void
action_is (const char *body, const char *action, const char *reason)
{
  const struct web_action *a = NULL;
  char why[256] = "";
  json_t *args = web_action_check (&opts, body, strlen (body), &a, why, sizeof why);

  if (action) {
    if (!args || strcmp (a->name, action) != 0 || json_object_get (args, "action")) {
      fprintf (stderr, "%s: refused: %s\n", body, why);
      abort ();
    }
  }
  else if (args || !strstr (why, reason)) {
    fprintf (stderr, "%s: '%s', expected '%s'\n", body, args ? "accepted" : why, reason);
    abort ();
  }
  json_decref (args);
}

/* migrate's to (review finding): the job gets the directory that was
 * checked, resolved, not the link of the request, which may be pointed
 * elsewhere before the job runs; and the job checks it again. */
static void
test_migrate_swap (void)
{
  char tmpl[] = "/tmp/test-web-mig.XXXXXX", real[PATH_MAX], why[PATH_MAX + 256];
  char *dirs[] = { real, NULL };
  struct web_opts o = { .migrate_dirs = dirs };
  const struct web_action *a = NULL;
  CLEANUP_FREE char *link = NULL, *body = NULL, *moved = NULL, *cmd = NULL;
  json_t *args;

  assert (mkdtemp (tmpl) && realpath (tmpl, real));
  link = xasprintf ("%s.link", real);
  moved = xasprintf ("%s.moved", real);
  assert (symlink (real, link) == 0);
  body = xasprintf ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"%s\"}", link);
  assert ((args = web_action_check (&o, body, strlen (body), &a, why, sizeof why)));
  /* the link now names a root-owned directory: the job does not follow it */
  assert (unlink (link) == 0 && symlink ("/etc", link) == 0);
  assert (strcmp (json_string_value (json_object_get (args, "to")), real) == 0);
  assert (web_migrate_dir_ok (&o, real, why, sizeof why));
  assert (!web_migrate_dir_ok (&o, link, why, sizeof why));
  /* the directory itself replaced by a link after the request: refused */
  assert (rename (real, moved) == 0 && symlink ("/etc", real) == 0);
  assert (!web_migrate_dir_ok (&o, real, why, sizeof why));
  assert (strstr (why, "must be one of the server's --migrate-dir"));
  assert (unlink (real) == 0 && rename (moved, real) == 0);
  /* a job whose to is not resolved (queued by an older server): refused */
  assert (unlink (link) == 0 && symlink (real, link) == 0);
  assert (!web_migrate_dir_ok (&o, link, why, sizeof why));
  assert (strstr (why, "no longer resolves to itself"));
  json_decref (args);
  cmd = xasprintf ("rm -rf %s %s", real, link);
  assert (system (cmd) == 0);
}

static void
test_actions (void)
{
  action_is ("{\"action\":\"gc\"}", "gc", NULL);
  action_is ("{\"action\":\"prune\",\"vm\":\"web1\",\"keep_last\":3,\"dry_run\":true}",
             "prune", NULL);
  action_is ("{\"action\":\"verify\",\"vm\":\"web1\",\"point\":\"20261122T045506Z\"}",
             "verify", NULL);
  action_is ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"/tmp\"}",
             "migrate", NULL);
  action_is ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"/tmp/\"}",
             "migrate", NULL);
  /* a token holder picks one of the administrator's directories, never a
   * file or another path (the guest's bytes would be written there) */
  action_is ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"/tmp/x.raw\"}",
             NULL, "must be one of the server's --migrate-dir directories");
  action_is ("{\"action\":\"migrate\",\"session\":\"3\","
             "\"to\":\"/var/lib/bootback/lab-definitions/x.yaml\"}", NULL,
             "must be one of the server's --migrate-dir directories");
  opts.migrate_dirs = NULL;
  action_is ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"/tmp\"}",
             NULL, "this server has no --migrate-dir");
  opts.migrate_dirs = migrate_dirs;
  action_is ("{\"action\":\"lab-up\",\"definition\":\"name: x\\nnetwork: "
             "{ subnet: 10.77.0.0/24, gateway: 10.77.0.1 }\\npublish: "
             "[\\\"0.0.0.0:23=web1:22\\\"]\\nverify:\\n  - name: web1\\n"
             "    address: 10.77.0.21\\n\"}", NULL, "publish: opens host ports");
  action_is ("{\"action\":\"backup\",\"vm\":\"db\",\"disks\":[\"vda\",\"vdb\"]}",
             "backup", NULL);
  action_is ("", NULL, "not JSON");
  action_is ("[]", NULL, "not a JSON object");
  action_is ("{}", NULL, "'action'");
  action_is ("{\"action\":7}", NULL, "'action'");
  action_is ("{\"action\":\"format\"}", NULL, "unknown action 'format'");
  action_is ("{\"action\":\"gc\",\"all\":true}", NULL, "unknown argument 'all'");
  action_is ("{\"action\":\"gc\",\"dry_run\":1}", NULL, "'dry_run' is not true or false");
  action_is ("{\"action\":\"verify\"}", NULL, "'vm' is missing");
  action_is ("{\"action\":\"verify\",\"vm\":\"../x\"}", NULL, "'vm' is not a name");
  action_is ("{\"action\":\"verify\",\"vm\":\"a/b\"}", NULL, "'vm' is not a name");
  action_is ("{\"action\":\"verify\",\"vm\":\"a..b\"}", NULL, "'vm' is not a name");
  action_is ("{\"action\":\"verify\",\"vm\":\"w\",\"point\":\"yesterday\"}", NULL,
             "'point' is not a point time");
  action_is ("{\"action\":\"prune\",\"keep_last\":-1}", NULL, "'keep_last' is not a count");
  action_is ("{\"action\":\"prune\",\"keep_last\":1.5}", NULL, "'keep_last' is not a count");
  action_is ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"/a/../b\"}", NULL,
             "'to' is not an absolute path");
  action_is ("{\"action\":\"migrate\",\"session\":\"3\",\"to\":\"/a\\nb\"}", NULL,
             "'to' is not an absolute path");
  action_is ("{\"action\":\"backup\",\"vm\":\"db\",\"disks\":[\"../vda\"]}", NULL,
             "'disks' is not an array of names");
  action_is ("{\"action\":\"lab-up\"}", NULL, "give one of 'definition'");
  action_is ("{\"action\":\"lab-up\",\"name\":\"x\",\"lease\":\"5s\"}", NULL,
             "'lease' is not a duration");
  action_is ("{\"action\":\"gc\",\"action\":\"gc\"}", NULL, "not JSON");
}

/* An error's text cut in a UTF-8 sequence (the 64 bytes of an unknown
 * action quoted, the end of a buffer) or holding any other byte is still
 * an error object: json_pack refuses invalid UTF-8, and the server
 * aborted on the NULL (review finding: any token holder stopped it). */
static void
test_error_utf8 (void)
{
  const char *body = "{\"action\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaa\xc3\xa9\"}";
  const struct web_action *a = NULL;
  char why[256] = "";
  json_t *j;

  assert (!web_action_check (&opts, body, strlen (body), &a, why, sizeof why));
  assert ((j = web_error_json ("%s", why)));
  assert (strstr (json_string_value (json_object_get (j, "error")), "unknown action"));
  json_decref (j);
  assert ((j = web_error_json ("method %s not allowed", "G\xffT")));
  assert (strcmp (json_string_value (json_object_get (j, "error")),
                  "method G?T not allowed") == 0);
  json_decref (j);
  assert ((j = web_error_json ("caf\xc3\xa9")));
  assert (strcmp (json_string_value (json_object_get (j, "error")), "caf\xc3\xa9") == 0);
  json_decref (j);
}

int
main (void)
{
  char a[WEB_TOKEN_LEN + 1], b[WEB_TOKEN_LEN + 1], h[SHA256_HEX_LEN + 1];
  size_t i;

  escape_is ("web-01", "web-01");
  escape_is ("", "");
  escape_is ("a\\b", "a\\\\b");
  escape_is ("say \"hi\"", "say \\\"hi\\\"");
  escape_is ("two\nlines", "two\\nlines");
  escape_is ("}{=,<script>", "}{=,<script>");
  escape_is ("\\\"\n", "\\\\\\\"\\n");

  assert (web_token_new (a) == 0 && web_token_new (b) == 0);
  assert (strlen (a) == WEB_TOKEN_LEN && strncmp (a, WEB_TOKEN_PREFIX, 4) == 0);
  for (i = 4; i < WEB_TOKEN_LEN; i++)
    assert (strchr ("0123456789abcdef", a[i]));
  assert (strcmp (a, b) != 0);
  /* SHA-256 ("abc"), FIPS 180-2 appendix B.1 */
  web_token_hash ("abc", h);
  assert (strcmp (h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  web_token_hash (a, h);
  assert (strlen (h) == SHA256_HEX_LEN && strstr (h, a + 4) == NULL);
  test_check ();
  test_actions ();
  test_migrate_swap ();
  test_error_utf8 ();
  printf ("web unit tests ok\n");
  return 0;
}
