/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * web: libweb.a, the HTTP server of `bootback web` (libmicrohttpd, TLS
 * through GnuTLS): a REST API under /api/v1/ (JSON, jansson: reads, and
 * actions run as jobs) and /metrics (Prometheus text format 0.0.4), both
 * behind API tokens; the dashboard page, behind a session opened with an
 * API token.
 *
 *   server.c   the daemon: listen address, TLS, limits, security headers,
 *              authentication, the request log, dispatch
 *   api.c      the API's routes; they call the library functions the CLI
 *              calls (catalog, verify, instant, lab), never the CLI
 *   metrics.c  the /metrics text
 *   token.c    API tokens: made, hashed (SHA-256), checked in constant time
 *   jobs.c     jobs: a child process per action, their rows, progress
 *   actions.c  the actions' arguments (checked strictly) and what they do
 *   session.c  browser sessions: cookie, CSRF token, expiry (in memory)
 *   page.c     the dashboard: its files (web/static/, built into the
 *              program), its JSON (/ui/overview), screenshots and lab
 *              reports named by the catalog
 *
 * Trust (docs/design.md, "Web"): every value from a guest or the
 * repository leaves as a jansson string or an escaped label value; nothing
 * is rendered as HTML.  Tokens are kept hashed in the catalog and never
 * logged.  Plain HTTP only on a loopback address.
 *
 * One thread serves every request (libmicrohttpd's internal polling
 * thread), so the catalog is used by one thread at a time.  Actions
 * (POST /api/v1/jobs) run in child processes, one per job (jobs.c).
 * Errors: -1 and the last error (util.h) set.
 */
#ifndef BOOTBACK_WEB_H
#define BOOTBACK_WEB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"
#include "verify/verify.h"

/* ---- the server (server.c) ----------------------------------------------- */

#define WEB_DEFAULT_LISTEN "127.0.0.1:8443"
#define WEB_MAX_CONNECTIONS 64       /* at once, all clients */
#define WEB_MAX_PER_IP 16            /* at once, one client address */
#define WEB_TIMEOUT 30               /* seconds of silence before a close */
#define WEB_MEMORY_LIMIT (64 * 1024) /* per connection: request line, headers */
#define WEB_URL_MAX 2048             /* longer request URLs are 414 */

struct web_opts {
  const char *listen;        /* ADDR:PORT or [ADDR6]:PORT; port 0: any */
  /* The names the console is reached by besides its address (and
   * localhost on loopback), --server-name, NULL-terminated (NULL: none):
   * a request whose Host header is not one of them, with the port
   * listened on, is refused (server.c, invariant 9). */
  char **server_names;
  const char *cert, *key;    /* PEM files: HTTPS; both or neither */
  const char *home;          /* state directory (labs) */
  int64_t repo_id;           /* the repository the API shows, 0: none */
  const char *repo;          /* its location, "" if none */
  int max_jobs;              /* jobs running at once (1 to WEB_MAX_JOBS_MAX;
                                0: WEB_MAX_JOBS) */
  /* The directories a migrate job may move a session to (--migrate-dir,
   * absolute, resolved, NULL-terminated; NULL: migrate is refused): the
   * administrator names where the guest's bytes may be written, a token
   * holder only picks one of them (bootback names the files). */
  char **migrate_dirs;
  /* The scan check's scanner for lab jobs (the CLI's, as bootback lab
   * run has it); NULL: a definition with a scan check cannot verify. */
  verify_scan_fn scan;
  void *scan_opaque;
};

/* Serve until SIGINT or SIGTERM (blocked in the calling thread, which waits
 * for them).  Refuses plain HTTP on an address that is not loopback, and
 * a server name that is not a host name or address literal.  Says
 * "bootback web: listening on URL" on stderr once listening, then one line
 * per request (method, path, status, token name; never the token).
 * Actions run as jobs, each in a child process (jobs.c); they are stopped
 * with the server.  Takes cat: it is closed and reopened around forks,
 * and closed at the end (also on error).
 * 0 after a signal, -1 on error (address, certificate, port in use). */
int web_serve (struct catalog *cat, const struct web_opts *o);

/* ---- tokens (token.c) ----------------------------------------------------- */

#define WEB_TOKEN_PREFIX "bbt_"
#define WEB_TOKEN_LEN (4 + 64)       /* the prefix and 32 random bytes in hex */
#define WEB_TOKEN_NAME_MAX 64

/* What a token may do, each role all that the one before may:
 *  - read: every GET (the API, /metrics, the dashboard), log in;
 *  - operate: also the jobs that back up, verify and recover (backup,
 *    verify, instant, stop, migrate, lab-up, lab-down);
 *  - admin: also the jobs that delete (prune, gc, a stop that discards
 *    the guest's writes: web_action_role).
 * Tokens made before roles existed are admin (catalog schema 15). */
enum web_role { WEB_ROLE_READ, WEB_ROLE_OPERATE, WEB_ROLE_ADMIN };
#define WEB_ROLE_NAMES "read, operate, admin"
/* The role called s, or -1. */
int web_role_parse (const char *s);
const char *web_role_name (enum web_role r);
/* The role of a catalog row: one this program does not know is read. */
enum web_role web_token_role (const struct catalog_token *t);

/* A new token (32 bytes from the system's random source) in out. */
int web_token_new (char out[WEB_TOKEN_LEN + 1]);
/* The hex SHA-256 of a token, the form the catalog keeps. */
void web_token_hash (const char *token, char out[SHA256_HEX_LEN + 1]);
/* Make a token named name with role, store its hash: out gets the token
 * (shown once).  1 if the name is taken or invalid (error set), -1 on
 * error. */
int web_token_add (struct catalog *cat, const char *name, enum web_role role,
                   char out[WEB_TOKEN_LEN + 1]);
/* Is token (from an Authorization header, any length) one of the
 * catalog's?  Every stored hash is compared, in constant time.  1, its
 * name in name and its role in *role (and its last use recorded, or a
 * warning on stderr if that fails), 0 if not, -1 on error. */
int web_token_check (struct catalog *cat, const char *token,
                     char name[WEB_TOKEN_NAME_MAX + 1], enum web_role *role);

/* ---- the API (api.c) ------------------------------------------------------ */

/* A query argument of the request, or NULL. */
typedef const char *(*web_arg_fn) (void *opaque, const char *key);
/* Answer GET url (the path, without its query) under /api/v1/: *status
 * gets the HTTP status, and the result is the JSON body (an object;
 * {"error": "..."} unless 200).  Never NULL. */
json_t *web_api_get (struct catalog *cat, const struct web_opts *o,
                     const char *url, web_arg_fn arg, void *opaque, int *status);
/* {"error": msg} (a new reference; bytes of msg that are not UTF-8 as
 * '?'). */
json_t *web_error_json (const char *fmt, ...) __attribute__((format (printf, 1, 2)));

/* ---- jobs (jobs.c, actions.c) --------------------------------------------- */

#define WEB_MAX_JOBS 4               /* running at once (default); 429 beyond */
#define WEB_MAX_JOBS_MAX 64
#define WEB_BODY_MAX (64 * 1024)     /* a POST body, at most; 413 beyond */

/* The jobs this server runs: each a child process (jobs.c says why). */
struct web_jobs;
/* Fails the jobs a stopped server left queued or running; NULL on error.
 * max: how many may run at once (0: WEB_MAX_JOBS). */
struct web_jobs *web_jobs_new (struct catalog *cat, int max);
/* Reap the children that ended; fail the job of one that did not say. */
void web_jobs_reap (struct web_jobs *js, struct catalog *cat);
/* POST /api/v1/jobs with body from a token of role: check it, record the
 * job, fork its process (*cat is closed and reopened around the fork:
 * NULL if that failed).  202 {"id", "href"}; 400, 403 (an action above
 * role), 429, 500 {"error"}. */
json_t *web_jobs_post (struct web_jobs *js, struct catalog **cat,
                       const struct web_opts *o, enum web_role role,
                       const char *body, size_t len, int *status);
/* GET /api/v1/jobs (rest "": the page [offset, offset + limit), newest
 * first) or /api/v1/jobs/ID (rest "ID"). */
json_t *web_jobs_get (struct catalog *cat, const char *rest, int64_t offset,
                      int64_t limit, int *status);
/* Stop: SIGTERM to every job's process, wait (then SIGKILL), fail their
 * jobs ("server stopped"), free. */
void web_jobs_free (struct web_jobs *js, struct catalog *cat);

/* ---- metrics (metrics.c) -------------------------------------------------- */

/* The /metrics text (malloc'd), or NULL on error. */
char *web_metrics (struct catalog *cat, const struct web_opts *o);
/* s as a Prometheus label value: backslash, double quote and newline
 * escaped (malloc'd). */
char *web_prom_escape (const char *s);

/* ---- browser sessions (session.c) ----------------------------------------- */

#define WEB_SECRET_LEN 64            /* session ids, CSRF tokens: 32 bytes in hex */
#define WEB_SESSION_MAX 256          /* at once; the least recently used goes */
#define WEB_SESSION_IDLE (30 * 60)   /* seconds unused before it expires */
#define WEB_SESSION_LIFE (12 * 3600) /* seconds after login, at most */
#define WEB_SESSION_COOKIE "bootback_session"

struct web_sessions;
struct web_session;
struct web_sessions *web_sessions_new (void);
void web_sessions_free (struct web_sessions *t);
/* 32 random bytes in hex. */
int web_secret_new (char out[WEB_SECRET_LEN + 1]);
/* Open a session for the token of name who and SHA-256 token_hash
 * (hex): cookie gets its id. */
int web_session_new (struct web_sessions *t, const char *who,
                     const char *token_hash, char cookie[WEB_SECRET_LEN + 1]);
/* The live session of a cookie value (its last use now), or NULL. */
struct web_session *web_session_find (struct web_sessions *t, const char *cookie);
void web_session_end (struct web_session *s);
/* Does an X-CSRF-Token header (NULL: none) match? Constant time. */
bool web_session_csrf_ok (const struct web_session *s, const char *header);
const char *web_session_who (const struct web_session *s);
const char *web_session_csrf (const struct web_session *s);
time_t web_session_expires (const struct web_session *s);
/* 1 if the token the session was opened with still exists (its name and
 * its hash: a new token of the same name is not it) and its role now in
 * *role, 0 if it was revoked, -1 on error. */
int web_session_token_live (struct catalog *cat, const struct web_session *s,
                            enum web_role *role);

/* ---- the page (page.c) ----------------------------------------------------- */

/* A file of web/static/, built into the program (web/static-files.c, made
 * by web/embed.sh): served as it is, the same for everyone. */
struct web_file {
  const char *path;              /* "/", "/login", "/static/app.js", ... */
  const char *type;              /* its Content-Type */
  const unsigned char *data;
  size_t len;
};
extern const struct web_file web_static_files[];   /* ends with path NULL */
/* The file served at url, or NULL. */
const struct web_file *web_static_find (const char *url);

/* An answer of the page's routes. */
struct web_blob {
  char *data;                    /* malloc'd */
  size_t len;
  const char *type;
  const char *csp;               /* NULL: the API's */
};
/* Answer GET url under /ui/: *status gets the HTTP status, out the body
 * (JSON, or a screenshot or lab report the catalog names, only from
 * under the state directory). */
void web_page_get (struct catalog *cat, const struct web_opts *o, const char *url,
                   web_arg_fn arg, void *opaque, int *status, struct web_blob *out);

#endif /* BOOTBACK_WEB_H */
