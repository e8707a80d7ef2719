/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of web/'s sessions and built-in files: a session is found by
 * its cookie and no other (a changed character, a short one, none); its
 * CSRF token matches only itself; logout ends it; a full table drops the
 * session used least recently; a revoked token's session is not live.
 * The files: /, /login and the scripts are there with their types, no
 * other path is, and no script of the page uses innerHTML, eval or
 * document.write (guest values go in as text).
 */
#undef NDEBUG
#include <assert.h>

#include "web/web.h"

static void
test_sessions (void)
{
  struct web_sessions *t = web_sessions_new ();
  char a[WEB_SECRET_LEN + 1], b[WEB_SECRET_LEN + 1], first[WEB_SECRET_LEN + 1];
  struct web_session *s;
  char csrf[WEB_SECRET_LEN + 1];
  int i;

  assert (web_session_new (t, "ci", "", a) == 0 && strlen (a) == WEB_SECRET_LEN);
  assert (web_session_new (t, "ops", "", b) == 0 && strcmp (a, b) != 0);
  assert ((s = web_session_find (t, a)) && strcmp (web_session_who (s), "ci") == 0);
  snprintf (csrf, sizeof csrf, "%s", web_session_csrf (s));
  assert (strlen (csrf) == WEB_SECRET_LEN && strcmp (csrf, a) != 0);
  assert (web_session_csrf_ok (s, csrf));
  assert (!web_session_csrf_ok (s, NULL));
  assert (!web_session_csrf_ok (s, ""));
  csrf[WEB_SECRET_LEN - 1] ^= 1;
  assert (!web_session_csrf_ok (s, csrf));
  assert (web_session_expires (s) > time (NULL));
  assert (strcmp (web_session_who (web_session_find (t, b)), "ops") == 0);
  a[0] ^= 1;
  assert (!web_session_find (t, a));
  a[0] ^= 1;
  assert (!web_session_find (t, NULL) && !web_session_find (t, "") &&
          !web_session_find (t, "abc"));
  web_session_end (s);
  assert (!web_session_find (t, a));
  assert (web_session_find (t, b));
  /* full: the least recently used (b) goes */
  snprintf (first, sizeof first, "%s", b);
  for (i = 0; i < WEB_SESSION_MAX; i++)
    assert (web_session_new (t, "many", "", a) == 0);
  assert (web_session_find (t, a));
  assert (!web_session_find (t, first));
  web_sessions_free (t);
}

static void
test_revoked (void)
{
  char dir[] = "/tmp/test-session.XXXXXX", tok[WEB_TOKEN_LEN + 1], id[WEB_SECRET_LEN + 1];
  char hash[SHA256_HEX_LEN + 1];
  CLEANUP_FREE char *cmd = NULL;
  struct web_sessions *t = web_sessions_new ();
  struct web_session *s;
  struct catalog *c;
  enum web_role role;

  assert (mkdtemp (dir));
  assert ((c = catalog_open (dir)));
  assert (web_token_add (c, "ci", WEB_ROLE_OPERATE, tok) == 0);
  web_token_hash (tok, hash);
  assert (web_session_new (t, "ci", hash, id) == 0 && (s = web_session_find (t, id)));
  assert (web_session_token_live (c, s, &role) == 1 && role == WEB_ROLE_OPERATE);
  assert (catalog_token_revoke (c, "ci") == 0);
  assert (web_session_token_live (c, s, &role) == 0);
  /* a new token of the same name is another token: the session stays dead */
  assert (web_token_add (c, "ci", WEB_ROLE_OPERATE, tok) == 0);
  assert (web_session_token_live (c, s, &role) == 0);
  catalog_close (c);
  web_sessions_free (t);
  cmd = xasprintf ("rm -rf %s", dir);
  assert (system (cmd) == 0);
}

static void
test_files (void)
{
  static const char *const paths[] = { "/", "/login", "/static/app.js",
                                       "/static/login.js", "/static/style.css",
                                       "/static/vendor/uPlot.iife.min.js" };
  const struct web_file *f;
  size_t i;

  for (i = 0; i < sizeof paths / sizeof *paths; i++)
    assert ((f = web_static_find (paths[i])) && f->len > 0 && f->data[f->len] == 0);
  assert (strncmp (web_static_find ("/")->type, "text/html", 9) == 0);
  assert (strncmp (web_static_find ("/static/app.js")->type, "text/javascript", 15) == 0);
  assert (!web_static_find ("/static/") && !web_static_find ("/static/../web.h") &&
          !web_static_find ("/index.html") && !web_static_find (""));
  for (f = web_static_files; f->path; f++)
    if (strstr (f->path, ".js") && !strstr (f->path, "/vendor/")) {
      assert (!strstr ((const char *) f->data, "innerHTML"));
      assert (!strstr ((const char *) f->data, "eval("));
      assert (!strstr ((const char *) f->data, "document.write"));
    }
}

int
main (void)
{
  test_sessions ();
  test_revoked ();
  test_files ();
  printf ("web sessions ok\n");
  return 0;
}
