/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * API tokens of bootback web.  A token is "bbt_" and 32 random bytes in
 * hex; the catalog keeps only its SHA-256 (api_tokens, schema 6), so a
 * copy of the catalog does not let anyone in.  A request's token is hashed
 * and compared with every stored hash with CRYPTO_memcmp, all of them, so
 * the time taken does not say which hash (or how much of one) matched.
 * A revoked token's row is gone: the next request with it is refused.
 * Each token has a role (web.h); a role the catalog holds that this
 * program does not know counts as read, the least.
 */
#include <errno.h>
#include <sys/random.h>
#include <openssl/crypto.h>

#include "web/web.h"

static const char *const role_names[] = { "read", "operate", "admin" };

int
web_role_parse (const char *s)
{
  size_t i;

  for (i = 0; i < sizeof role_names / sizeof role_names[0]; i++)
    if (strcmp (s, role_names[i]) == 0)
      return i;
  return -1;
}

const char *
web_role_name (enum web_role r)
{
  return role_names[r];
}

enum web_role
web_token_role (const struct catalog_token *t)
{
  int r = t->role ? web_role_parse (t->role) : -1;

  return r == -1 ? WEB_ROLE_READ : (enum web_role) r;
}

int
web_token_new (char out[WEB_TOKEN_LEN + 1])
{
  uint8_t b[32];

  if (getrandom (b, sizeof b, 0) != (ssize_t) sizeof b) {
    error_set (errno, "getrandom");
    return -1;
  }
  memcpy (out, WEB_TOKEN_PREFIX, strlen (WEB_TOKEN_PREFIX));
  hex_encode (b, sizeof b, out + strlen (WEB_TOKEN_PREFIX));
  out[WEB_TOKEN_LEN] = '\0';
  return 0;
}

void
web_token_hash (const char *token, char out[SHA256_HEX_LEN + 1])
{
  uint8_t md[REPO_DIGEST_LEN];

  repo_sha256 (token, strlen (token), md);
  hex_encode (md, sizeof md, out);
}

int
web_token_add (struct catalog *cat, const char *name, enum web_role role,
               char out[WEB_TOKEN_LEN + 1])
{
  char hash[SHA256_HEX_LEN + 1];

  if (!name_is_valid_max (name, WEB_TOKEN_NAME_MAX)) {
    error_setx ("token name '%s' is not valid ([A-Za-z0-9._-], 1 to %d "
                "characters, not starting with '.' or '-')", name,
                WEB_TOKEN_NAME_MAX);
    return 1;
  }
  if (web_token_new (out) == -1)
    return -1;
  web_token_hash (out, hash);
  return catalog_token_add (cat, name, hash, web_role_name (role));
}

struct check {
  char hash[SHA256_HEX_LEN + 1];
  char *name;                    /* of the match, or NULL */
  enum web_role role;            /* of the match */
};

/* Compare with every row: no early exit. */
static int
check_one (void *opaque, const struct catalog_token *t)
{
  struct check *k = opaque;

  if (strlen (t->sha256) == SHA256_HEX_LEN &&
      CRYPTO_memcmp (k->hash, t->sha256, SHA256_HEX_LEN) == 0 && !k->name) {
    k->name = xstrdup (t->name);
    k->role = web_token_role (t);
  }
  return 0;
}

int
web_token_check (struct catalog *cat, const char *token,
                 char name[WEB_TOKEN_NAME_MAX + 1], enum web_role *role)
{
  struct check k = { .name = NULL };
  int ret = 0;

  web_token_hash (token, k.hash);
  if (catalog_token_list (cat, check_one, &k) == -1)
    return -1;
  if (k.name) {
    snprintf (name, WEB_TOKEN_NAME_MAX + 1, "%s", k.name);
    *role = k.role;
    /* The last use is a note: a catalog busy with a writer does not
     * refuse the request. */
    if (catalog_token_used (cat, k.name) == -1)
      fprintf (stderr, "bootback web: warning: %s\n", error_msg ());
    ret = 1;
  }
  free (k.name);
  return ret;
}
