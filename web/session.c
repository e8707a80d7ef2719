/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Browser sessions of bootback web (the dashboard page).
 *
 * Logging in: the login page sends POST /login with the header
 * "Authorization: Bearer TOKEN" of an API token (`bootback web token add`)
 * and no body.  Tokens are the one secret the appliance already keeps
 * hashed and can revoke, so there is no second password store to keep
 * safe, and a cross-site page cannot send that header (it would need a
 * CORS preflight, which this server never allows): no login CSRF.
 *
 * A session is a row in this table, in the server's memory only (a restart
 * logs everyone out; nothing about sessions is on disk):
 *  - its id: 32 random bytes in hex, the HttpOnly, SameSite=Strict cookie
 *    WEB_SESSION_COOKIE (Secure under TLS); the table keeps only its
 *    SHA-256, compared in constant time;
 *  - its CSRF token: 32 other random bytes, handed to the page by
 *    GET /session; every request the cookie authenticates, other than GET
 *    or HEAD, must carry it in X-CSRF-Token (web_session_csrf_ok);
 *  - the API token it was opened with (name and SHA-256): once that token
 *    is revoked the session is refused, also when a new token gets the
 *    same name (server.c asks web_session_token_live, which also says
 *    the token's role now: a session has no role of its own);
 *  - its expiry: WEB_SESSION_IDLE seconds unused or WEB_SESSION_LIFE after
 *    login, whichever comes first; POST /logout ends it at once.
 * When the table is full the session used least recently is dropped.
 *
 * Only libmicrohttpd's one polling thread calls these: no lock.
 */
#include <errno.h>
#include <sys/random.h>
#include <openssl/crypto.h>

#include "web/web.h"

struct web_session {
  char id_hash[SHA256_HEX_LEN + 1];  /* "" for a free slot */
  char csrf[WEB_SECRET_LEN + 1];
  char who[WEB_TOKEN_NAME_MAX + 1];
  char token_hash[SHA256_HEX_LEN + 1];  /* of the token it was opened with */
  time_t created, used;
  uint64_t seq;                      /* of its last use: the LRU order */
};

struct web_sessions {
  struct web_session s[WEB_SESSION_MAX];
  uint64_t clock;
};

struct web_sessions *
web_sessions_new (void)
{
  return xcalloc (1, sizeof (struct web_sessions));
}

void
web_sessions_free (struct web_sessions *t)
{
  if (t)
    OPENSSL_cleanse (t, sizeof *t);
  free (t);
}

int
web_secret_new (char out[WEB_SECRET_LEN + 1])
{
  uint8_t b[WEB_SECRET_LEN / 2];

  if (getrandom (b, sizeof b, 0) != (ssize_t) sizeof b) {
    error_set (errno, "getrandom");
    return -1;
  }
  hex_encode (b, sizeof b, out);
  out[WEB_SECRET_LEN] = '\0';
  return 0;
}

static bool
expired (const struct web_session *s, time_t now)
{
  return now - s->used > WEB_SESSION_IDLE || now - s->created > WEB_SESSION_LIFE ||
         now < s->created;
}

int
web_session_new (struct web_sessions *t, const char *who, const char *token_hash,
                 char cookie[WEB_SECRET_LEN + 1])
{
  time_t now = time (NULL);
  struct web_session *slot = &t->s[0];
  size_t i;

  for (i = 0; i < WEB_SESSION_MAX; i++) {
    struct web_session *s = &t->s[i];
    if (!s->id_hash[0] || expired (s, now)) {
      slot = s;
      break;
    }
    if (s->seq < slot->seq)
      slot = s;
  }
  memset (slot, 0, sizeof *slot);
  if (web_secret_new (cookie) == -1 || web_secret_new (slot->csrf) == -1)
    return -1;
  web_token_hash (cookie, slot->id_hash);
  snprintf (slot->who, sizeof slot->who, "%s", who);
  snprintf (slot->token_hash, sizeof slot->token_hash, "%s", token_hash);
  slot->created = slot->used = now;
  slot->seq = ++t->clock;
  return 0;
}

struct web_session *
web_session_find (struct web_sessions *t, const char *cookie)
{
  char hash[SHA256_HEX_LEN + 1];
  struct web_session *found = NULL;
  time_t now = time (NULL);
  size_t i;

  if (!cookie || strlen (cookie) != WEB_SECRET_LEN)
    return NULL;
  web_token_hash (cookie, hash);
  /* every slot compared: the time does not say which one matched */
  for (i = 0; i < WEB_SESSION_MAX; i++)
    if (CRYPTO_memcmp (hash, t->s[i].id_hash, SHA256_HEX_LEN) == 0 && !found)
      found = &t->s[i];
  if (!found || !found->id_hash[0])
    return NULL;
  if (expired (found, now)) {
    web_session_end (found);
    return NULL;
  }
  found->used = now;
  found->seq = ++t->clock;
  return found;
}

void
web_session_end (struct web_session *s)
{
  OPENSSL_cleanse (s, sizeof *s);
}

bool
web_session_csrf_ok (const struct web_session *s, const char *header)
{
  return header && strlen (header) == WEB_SECRET_LEN &&
         CRYPTO_memcmp (header, s->csrf, WEB_SECRET_LEN) == 0;
}

const char *
web_session_who (const struct web_session *s)
{
  return s->who;
}

const char *
web_session_csrf (const struct web_session *s)
{
  return s->csrf;
}

time_t
web_session_expires (const struct web_session *s)
{
  time_t idle = s->used + WEB_SESSION_IDLE, life = s->created + WEB_SESSION_LIFE;

  return idle < life ? idle : life;
}

struct live {
  const struct web_session *s;   /* NULL once its token is found */
  enum web_role role;
};

static int
token_is (void *opaque, const struct catalog_token *t)
{
  struct live *l = opaque;

  if (l->s && strcmp (t->name, l->s->who) == 0 &&
      strcmp (t->sha256, l->s->token_hash) == 0) {
    l->s = NULL;
    l->role = web_token_role (t);
  }
  return 0;
}

int
web_session_token_live (struct catalog *cat, const struct web_session *s,
                        enum web_role *role)
{
  struct live l = { s, WEB_ROLE_READ };

  if (catalog_token_list (cat, token_is, &l) == -1)
    return -1;
  *role = l.role;
  return l.s == NULL;
}
