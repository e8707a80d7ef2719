/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of the pure parts of web/: Prometheus label escaping (the
 * exposition format's three escapes, nothing else touched) and API token
 * making and hashing (format, the SHA-256 of a known input, two tokens
 * differ).
 */
#undef NDEBUG
#include <assert.h>

#include "web/web.h"

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
  printf ("web unit tests ok\n");
  return 0;
}
