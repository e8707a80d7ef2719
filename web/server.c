/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon of bootback web, on libmicrohttpd.
 *
 * Invariants:
 *  1. Plain HTTP only on a loopback address (127.0.0.0/8, ::1); anything
 *     else needs --cert and --key (HTTPS, GnuTLS through libmicrohttpd).
 *  2. Every response, errors included, carries the security headers
 *     (security_headers) and Cache-Control: no-store; except the 414 and
 *     431 that libmicrohttpd itself sends, before any handler, for a
 *     request line or headers over the memory limit (a fixed text).
 *  3. Every request is authenticated before anything else is looked at
 *     (but its path's length, invariant 4, and its Host and Origin,
 *     invariant 9):
 *     without "Authorization: Bearer TOKEN" of a token the catalog holds
 *     now, or the cookie of a live session (session.c) whose token still
 *     exists, it is 401, whatever the path or method (GET / is a 303 to
 *     /login instead).  The one exception: GET or HEAD of the files built
 *     into the program that hold no data (/login, /static/...), the same
 *     for everyone.  POST /login opens a session only for a bearer token.
 *     What the token may do (its role, web.h) is read from the catalog
 *     at each request, a session's too; jobs.c refuses a job above it.
 *  4. Only POST /api/v1/jobs has a body read, after authentication (and
 *     the CSRF check of invariant 6): its Content-Type must be
 *     application/json (else 415), its length at most WEB_BODY_MAX (else
 *     413: a larger Content-Length is refused before any byte is read, a
 *     chunked body once it grows past it, the rest discarded), and it is
 *     parsed only once whole (jobs.c).  Any other request with a body is
 *     413; methods other than GET and HEAD are 405, but POST there and on
 *     /login and /logout (without a body).  Headers and the request line are capped
 *     by the per-connection memory limit (WEB_MEMORY_LIMIT), connections
 *     by WEB_MAX_CONNECTIONS and WEB_MAX_PER_IP, silence by WEB_TIMEOUT;
 *     a path longer than WEB_URL_MAX is 414, before anything else.
 *  5. The request log has the method, path, status and the token's name;
 *     never the Authorization header, the cookie, the CSRF token or the
 *     query string.  The method and path are the client's (the path
 *     %XX-decoded by libmicrohttpd), logged before anyone is
 *     authenticated: one printable line (xstrdup_printable), so that no
 *     client writes a line of its own into the log or a control sequence
 *     to the terminal of whoever reads it; cut after WEB_URL_MAX and
 *     LOG_METHOD_MAX bytes, so that none makes a line of 64 KiB.
 *  6. CSRF: a request the session cookie authenticates, other than GET or
 *     HEAD, is 403 unless its X-CSRF-Token header is the session's (the
 *     cookie is also SameSite=Strict).  A bearer token needs none: no
 *     browser sends it by itself.
 *  7. The page's answers get a Content-Security-Policy that allows only
 *     this origin's script, style, images and fetches (CSP_PAGE: no inline
 *     script, no eval); lab reports are sandboxed (page.c).
 *  8. The catalog is used by the polling thread only; a job's process
 *     is forked from it (jobs.c), with the catalog closed around the fork.
 *  9. Host and Origin (DNS rebinding; a page served on another port of
 *     this host, e.g. a published lab sandbox, which gets this console's
 *     cookie: browsers scope cookies by host, not port): every request,
 *     right after invariant 4's 414, is 421 unless its Host header is
 *     NAME:PORT with PORT the port listened on (absent only if that is
 *     the scheme's default) and NAME the listen address (an address
 *     literal, IPv6 in brackets), localhost on a loopback address, or a
 *     --server-name; no Host (HTTP/1.0) is 421 too.  A request other
 *     than GET or HEAD with an Origin header is 403 unless the Origin is
 *     this scheme and such a NAME:PORT; before authentication, so before
 *     the CSRF check of invariant 6 (a second lock, not a replacement).
 *
 * One thread (libmicrohttpd's internal polling thread) answers every
 * request; the calling thread waits for SIGINT or SIGTERM.  The jobs'
 * children are reaped on each request, and stopped with the server.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "web/web.h"

#define PEM_MAX (1024 * 1024)
#define LOG_METHOD_MAX 32            /* of a method, logged; then "..." */

#define CSP_API "default-src 'none'; frame-ancestors 'none'"
#define CSP_PAGE "default-src 'none'; script-src 'self'; style-src 'self'; " \
  "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; " \
  "frame-ancestors 'none'"

struct server {
  struct catalog *cat;       /* NULL: reopened on the next request */
  const struct web_opts *o;
  bool tls;
  struct sockaddr_storage sa;  /* the listen address (invariant 9) */
  bool loopback;
  struct web_sessions *sessions;
  struct web_jobs *jobs;
};

/* A POST body being read (invariant 4): the connection's *con_cls. */
struct body {
  char *buf;
  size_t len;
  bool too_big;
  char who[WEB_TOKEN_NAME_MAX + 1];  /* the token's name */
  enum web_role role;                /* and its role */
};

/* Who sent a request: a token's name, and its session if by cookie. */
struct who {
  char name[WEB_TOKEN_NAME_MAX + 1];
  enum web_role role;            /* the token's, now */
  char token_hash[SHA256_HEX_LEN + 1];  /* of a bearer token, "" if none */
  struct web_session *session;   /* NULL: by bearer token */
};

/* Invariant 2. */
static void
security_headers (struct MHD_Response *r, bool tls, const char *type,
                  const char *csp)
{
  MHD_add_response_header (r, "Content-Type", type);
  MHD_add_response_header (r, "Content-Security-Policy", csp ? csp : CSP_API);
  MHD_add_response_header (r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header (r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header (r, "Cache-Control", "no-store");
  MHD_add_response_header (r, "X-Frame-Options", "DENY");
  if (tls)
    MHD_add_response_header (r, "Strict-Transport-Security", "max-age=31536000");
}

/* Queue r with status and the security headers (csp NULL: the API's);
 * log the request. */
static enum MHD_Result
reply_response (struct server *s, struct MHD_Connection *conn, const char *method,
                const char *url, const char *who, int status,
                struct MHD_Response *r, const char *type, const char *csp)
{
  CLEANUP_FREE char *m = xstrdup_printable (method, false);
  CLEANUP_FREE char *u = xstrdup_printable (url, false);
  enum MHD_Result ret;

  security_headers (r, s->tls, type, csp);
  if (status == 401)
    MHD_add_response_header (r, "WWW-Authenticate", "Bearer realm=\"bootback\"");
  if (status == 405)
    MHD_add_response_header (r, "Allow", strcmp (url, "/api/v1/jobs") == 0
                             ? "GET, HEAD, POST" : "GET, HEAD");
  ret = MHD_queue_response (conn, status, r);
  MHD_destroy_response (r);
  fprintf (stderr, "bootback web: %.*s%s %.*s%s %d%s%s\n", LOG_METHOD_MAX, m,
           strlen (m) > LOG_METHOD_MAX ? "..." : "", WEB_URL_MAX, u,
           strlen (u) > WEB_URL_MAX ? "..." : "", status, who ? " token=" : "",
           who ? who : "");
  return ret;
}

/* Queue body (malloc'd, taken) with status; log the request. */
static enum MHD_Result
reply (struct server *s, struct MHD_Connection *conn, const char *method,
       const char *url, const char *who, int status, char *body,
       const char *type)
{
  struct MHD_Response *r =
    MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);

  return reply_response (s, conn, method, url, who, status, r, type, NULL);
}

static enum MHD_Result
reply_json (struct server *s, struct MHD_Connection *conn, const char *method,
            const char *url, const char *who, int status, json_t *j)
{
  char *body = json_dumps (j, JSON_COMPACT | JSON_PRESERVE_ORDER);

  json_decref (j);
  if (!body)
    abort ();
  return reply (s, conn, method, url, who, status, body,
                "application/json; charset=utf-8");
}

/* The session of the request's cookie (invariant 3), or NULL; 0 or
 * -1 on error. */
static int
session_of (struct server *s, struct MHD_Connection *conn, struct who *w)
{
  const char *c = MHD_lookup_connection_value (conn, MHD_COOKIE_KIND,
                                               WEB_SESSION_COOKIE);
  struct web_session *ws = web_session_find (s->sessions, c);
  int live;

  if (!ws)
    return 0;
  if ((live = web_session_token_live (s->cat, ws, &w->role)) != 1) {
    if (live == 0)
      web_session_end (ws);     /* its token was revoked */
    return live;
  }
  snprintf (w->name, sizeof w->name, "%s", web_session_who (ws));
  w->session = ws;
  return 1;
}

/* Invariant 3: 1 and who sent it, 0 refused, -1 catalog error.  A bearer
 * token, else a session cookie. */
static int
authenticate (struct server *s, struct MHD_Connection *conn, struct who *w)
{
  const char *h = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_AUTHORIZATION);

  w->session = NULL;
  w->token_hash[0] = '\0';
  if (!h)
    return session_of (s, conn, w);
  if (strncasecmp (h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  while (*h == ' ')
    h++;
  if (strlen (h) != WEB_TOKEN_LEN)
    return 0;
  web_token_hash (h, w->token_hash);
  return web_token_check (s->cat, h, w->name, &w->role);
}

/* A file built into the program (invariant 7's policy). */
static enum MHD_Result
reply_file (struct server *s, struct MHD_Connection *conn, const char *method,
            const char *url, const char *who, const struct web_file *f)
{
  struct MHD_Response *r =
    MHD_create_response_from_buffer (f->len, (void *) f->data, MHD_RESPMEM_PERSISTENT);

  return reply_response (s, conn, method, url, who, 200, r, f->type, CSP_PAGE);
}

/* GET /session: who is logged in, the token's role, the CSRF token, until
 * when. */
static enum MHD_Result
reply_session (struct server *s, struct MHD_Connection *conn, const char *method,
               const char *url, const struct who *w)
{
  char until[ISO_TIME_LEN + 1];

  if (!w->session)
    return reply_json (s, conn, method, url, w->name, 200,
                       json_pack ("{s:s, s:s, s:n}", "user", w->name, "role",
                                  web_role_name (w->role), "csrf"));
  iso_time_format (web_session_expires (w->session), until);
  return reply_json (s, conn, method, url, w->name, 200,
                     json_pack ("{s:s, s:s, s:s, s:s}", "user", w->name, "role",
                                web_role_name (w->role), "csrf",
                                web_session_csrf (w->session), "expires", until));
}

static const char *
query_arg (void *opaque, const char *key)
{
  return MHD_lookup_connection_value (opaque, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result
route (struct server *s, struct MHD_Connection *conn, const char *method,
       const char *url, const char *who)
{
  char *text;
  int status;

  if (strcmp (url, "/metrics") == 0) {
    if (!(text = web_metrics (s->cat, s->o)))
      return reply_json (s, conn, method, url, who, 500,
                         web_error_json ("%s", error_msg ()));
    return reply (s, conn, method, url, who, 200, text,
                  "text/plain; version=0.0.4; charset=utf-8");
  }
  if (strcmp (url, "/") == 0)
    return reply_file (s, conn, method, url, who, web_static_find (url));
  if (strncmp (url, "/ui/", 4) == 0) {
    struct web_blob b;
    web_page_get (s->cat, s->o, url, query_arg, conn, &status, &b);
    return reply_response (s, conn, method, url, who, status,
                           MHD_create_response_from_buffer (b.len, b.data,
                                                            MHD_RESPMEM_MUST_FREE),
                           b.type, b.csp);
  }
  if (strncmp (url, "/api/v1/", 8) != 0)
    return reply_json (s, conn, method, url, who, 404,
                       web_error_json ("no such resource"));
  json_t *j = web_api_get (s->cat, s->o, url, query_arg, conn, &status);
  return reply_json (s, conn, method, url, who, status, j);
}

static json_t *
too_big (void)
{
  return web_error_json ("the request body is too large (at most %d bytes)",
                         WEB_BODY_MAX);
}

/* Invariant 4: the headers of POST /api/v1/jobs; NULL if they are fine
 * (the body is read next), else the error to refuse it with (*status). */
static json_t *
post_refused (struct MHD_Connection *conn, const char *url, const char *len,
              int *status)
{
  const char *type = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
  size_t n = strlen ("application/json");
  char *end;

  if (strcmp (url, "/api/v1/jobs") != 0) {
    *status = 405;
    return web_error_json ("method POST not allowed here (only on /api/v1/jobs, "
                           "/login and /logout)");
  }
  if (!type || strncasecmp (type, "application/json", n) != 0 ||
      (type[n] && type[n] != ';' && type[n] != ' ')) {
    *status = 415;
    return web_error_json ("the request body must be JSON (Content-Type: "
                           "application/json)");
  }
  if (len && (strtoull (len, &end, 10) > WEB_BODY_MAX || *end)) {
    *status = 413;
    return too_big ();
  }
  return NULL;
}

/* The body of POST /api/v1/jobs, a piece at a time; then the job. */
static enum MHD_Result
post_body (struct server *s, struct MHD_Connection *conn, const char *url,
           struct body *b, const char *data, size_t *size)
{
  const char *who = b->who;
  int status;
  json_t *j;

  if (*size) {
    if (!b->too_big && b->len + *size <= WEB_BODY_MAX) {
      b->buf = xrealloc (b->buf, b->len + *size + 1);
      memcpy (b->buf + b->len, data, *size);
      b->len += *size;
    }
    else
      b->too_big = true;
    *size = 0;
    return MHD_YES;
  }
  if (b->too_big)
    return reply_json (s, conn, "POST", url, who, 413, too_big ());
  if (!s->cat)
    return reply_json (s, conn, "POST", url, who, 500,
                       web_error_json ("the catalog is not open"));
  j = web_jobs_post (s->jobs, &s->cat, s->o, b->role, b->buf ? b->buf : "",
                     b->len, &status);
  return reply_json (s, conn, "POST", url, who, status, j);
}

/* GET / without a session: to the login page. */
static enum MHD_Result
redirect_login (struct server *s, struct MHD_Connection *conn, const char *method,
                const char *url)
{
  struct MHD_Response *r =
    MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);

  MHD_add_response_header (r, MHD_HTTP_HEADER_LOCATION, "/login");
  return reply_response (s, conn, method, url, NULL, 303, r,
                         "text/plain; charset=utf-8", NULL);
}

/* The session cookie: set to id for max_age seconds, or cleared. */
static void
set_cookie (struct server *s, struct MHD_Response *r, const char *id, int max_age)
{
  CLEANUP_FREE char *c = xasprintf ("%s=%s; Path=/; Max-Age=%d; HttpOnly; "
                                    "SameSite=Strict%s", WEB_SESSION_COOKIE, id,
                                    max_age, s->tls ? "; Secure" : "");

  MHD_add_response_header (r, MHD_HTTP_HEADER_SET_COOKIE, c);
}

/* POST /login (bearer token only: invariant 3) and POST /logout. */
static enum MHD_Result
login_logout (struct server *s, struct MHD_Connection *conn, const char *method,
              const char *url, struct who *w)
{
  char id[WEB_SECRET_LEN + 1] = "";
  struct MHD_Response *r;
  bool in = strcmp (url, "/login") == 0;
  json_auto_t *j = in ? json_pack ("{s:s}", "user", w->name) : NULL;
  char *body;

  if (in && w->session)
    return reply_json (s, conn, method, url, w->name, 400,
                       web_error_json ("log in with an API token "
                                       "(Authorization: Bearer TOKEN)"));
  if (in && web_session_new (s->sessions, w->name, w->token_hash, id) == -1)
    return reply_json (s, conn, method, url, w->name, 500,
                       web_error_json ("%s", error_msg ()));
  if (!in && w->session)
    web_session_end (w->session);
  body = j ? json_dumps (j, JSON_COMPACT) : xstrdup ("");
  if (!body)
    abort ();
  r = MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
  set_cookie (s, r, id, in ? WEB_SESSION_LIFE : 0);
  OPENSSL_cleanse (id, sizeof id);
  return reply_response (s, conn, method, url, w->name, in ? 200 : 204, r,
                         "application/json; charset=utf-8", NULL);
}

static bool
is_read (const char *method)
{
  return strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0;
}

/* Invariant 9: the port of the daemon conn came to (the kernel's pick
 * for port 0). */
static unsigned
bound_port (struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info (conn, MHD_CONNECTION_INFO_DAEMON);
  const union MHD_DaemonInfo *di =
    ci ? MHD_get_daemon_info (ci->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;

  return di ? di->port : 0;
}

/* Is name (without a port) the listen address, localhost on loopback, or
 * a --server-name? */
static bool
name_ok (const struct server *s, const char *name)
{
  const struct sockaddr_in *v4 = (const struct sockaddr_in *) &s->sa;
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *) &s->sa;
  char lit[INET6_ADDRSTRLEN + 1];
  size_t n = strlen (name);
  struct in6_addr a6;
  struct in_addr a4;
  char **sn;

  if (s->sa.ss_family == AF_INET && inet_pton (AF_INET, name, &a4) == 1 &&
      a4.s_addr == v4->sin_addr.s_addr)
    return true;
  if (s->sa.ss_family == AF_INET6 && name[0] == '[' && n >= 3 &&
      name[n - 1] == ']' && n - 2 < sizeof lit) {
    memcpy (lit, name + 1, n - 2);
    lit[n - 2] = '\0';
    if (inet_pton (AF_INET6, lit, &a6) == 1 &&
        memcmp (&a6, &v6->sin6_addr, sizeof a6) == 0)
      return true;
  }
  if (s->loopback && strcasecmp (name, "localhost") == 0)
    return true;
  for (sn = s->o->server_names; sn && *sn; sn++)
    if (strcasecmp (name, *sn) == 0)
      return true;
  return false;
}

/* Invariant 9: is host (len bytes: a Host header, or an Origin after its
 * scheme) NAME[:PORT] of this console, listening on port? */
static bool
host_ok (const struct server *s, const char *host, size_t len, unsigned port)
{
  char name[256];
  const char *end = host[0] == '[' ? memchr (host, ']', len) : NULL;
  const char *colon = memchr (end ? end : host, ':', len - (end ? end - host : 0));
  size_t nl = colon ? (size_t) (colon - host) : len, i;
  unsigned long p = 0;

  if (nl == 0 || nl >= sizeof name || (host[0] == '[' && !end))
    return false;
  if (!colon && port != (s->tls ? 443u : 80u))
    return false;
  if (colon) {
    if (len - nl < 2 || len - nl > 6)
      return false;
    for (i = nl + 1; i < len; i++) {
      if (!isdigit ((unsigned char) host[i]))
        return false;
      p = p * 10 + (host[i] - '0');
    }
    if (p != port)
      return false;
  }
  memcpy (name, host, nl);
  name[nl] = '\0';
  return name_ok (s, name);
}

/* Invariant 9: an Origin header of this console (this scheme). */
static bool
origin_ok (const struct server *s, const char *origin, unsigned port)
{
  const char *scheme = s->tls ? "https://" : "http://";
  size_t n = strlen (scheme);

  return strncasecmp (origin, scheme, n) == 0 &&
    host_ok (s, origin + n, strlen (origin + n), port);
}

/* Invariant 9: 421, naming the Host (printable, cut; not logged). */
static enum MHD_Result
reply_misdirected (struct server *s, struct MHD_Connection *conn,
                   const char *method, const char *url, const char *host)
{
  CLEANUP_FREE char *h = host ? xstrdup_printable (host, false) : NULL;

  return reply (s, conn, method, url, NULL, 421,
                h ? xasprintf ("this console does not answer to Host %.200s%s "
                               "(bootback web --server-name NAME adds a name)\n",
                               h, strlen (h) > 200 ? "..." : "")
                  : xstrdup ("a Host header is needed\n"),
                "text/plain; charset=utf-8");
}

/* Invariants 9, 3, 4 and 6, on the first call of each request (so that no
 * body is read before; only POST /api/v1/jobs reads one, in later calls). */
static enum MHD_Result
answer (void *cls, struct MHD_Connection *conn, const char *url,
        const char *method, const char *version, const char *upload_data,
        size_t *upload_data_size, void **con_cls)
{
  struct server *s = cls;
  const char *len = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
  const char *te = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_TRANSFER_ENCODING);
  const char *host = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_HOST);
  const char *origin = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_ORIGIN);
  const struct web_file *f = web_static_find (url);
  unsigned port = bound_port (conn);
  struct who w;
  char *name = w.name;
  json_t *refused;
  int auth, status;

  if (*con_cls && *con_cls != s)   /* the body of a POST, read after checks */
    return post_body (s, conn, url, *con_cls, upload_data, upload_data_size);
  if (*con_cls)                  /* a body arrived after the answer */
    return MHD_NO;
  *con_cls = s;
  if (strlen (url) > WEB_URL_MAX)
    return reply_json (s, conn, method, url, NULL, 414,
                       web_error_json ("the path is longer than %d bytes",
                                       WEB_URL_MAX));
  if (!host || !host_ok (s, host, strlen (host), port))
    return reply_misdirected (s, conn, method, url, host);
  if (origin && !is_read (method) && !origin_ok (s, origin, port))
    return reply_json (s, conn, method, url, NULL, 403,
                       web_error_json ("Origin %.200s is not this console's; "
                                       "refused", origin));
  if (f && strcmp (url, "/") != 0 && is_read (method))
    return reply_file (s, conn, method, url, NULL, f);
  if (!s->cat && !(s->cat = catalog_open (s->o->home)))
    return reply_json (s, conn, method, url, NULL, 500,
                       web_error_json ("%s", error_msg ()));
  web_jobs_reap (s->jobs, s->cat);
  if ((auth = authenticate (s, conn, &w)) == -1)
    return reply_json (s, conn, method, url, NULL, 500,
                       web_error_json ("%s", error_msg ()));
  if (auth == 0 && strcmp (url, "/") == 0 && is_read (method))
    return redirect_login (s, conn, method, url);
  if (auth == 0)
    return reply_json (s, conn, method, url, NULL, 401,
                       web_error_json ("a valid API token is needed "
                                       "(Authorization: Bearer TOKEN)"));
  if (w.session && !is_read (method) &&
      !web_session_csrf_ok (w.session, MHD_lookup_connection_value (conn,
                                         MHD_HEADER_KIND, "X-CSRF-Token")))
    return reply_json (s, conn, method, url, name, 403,
                       web_error_json ("the X-CSRF-Token header of this "
                                       "session is needed"));
  if (strcmp (url, "/session") == 0 && is_read (method))
    return reply_session (s, conn, method, url, &w);
  if ((strcmp (url, "/login") == 0 || strcmp (url, "/logout") == 0) &&
      strcmp (method, "POST") == 0)
    return (len && strcmp (len, "0") != 0) || te
      ? reply_json (s, conn, method, url, name, 413,
                    web_error_json ("a request body is not accepted"))
      : login_logout (s, conn, method, url, &w);
  if (strcmp (method, "POST") == 0) {
    if ((refused = post_refused (conn, url, len, &status)))
      return reply_json (s, conn, method, url, name, status, refused);
    struct body *b = xcalloc (1, sizeof *b);
    snprintf (b->who, sizeof b->who, "%s", name);
    b->role = w.role;
    *con_cls = b;
    return MHD_YES;
  }
  if (!is_read (method))
    return reply_json (s, conn, method, url, name, 405,
                       web_error_json ("method %s not allowed", method));
  if ((len && strcmp (len, "0") != 0) || te)
    return reply_json (s, conn, method, url, name, 413,
                       web_error_json ("a request body is not accepted"));
  return route (s, conn, method, url, name);
}

/* The end of a request: a POST's body is freed. */
static void
completed (void *cls, struct MHD_Connection *conn, void **con_cls,
           enum MHD_RequestTerminationCode toe)
{
  struct body *b = *con_cls;

  if (b && *con_cls != cls) {
    free (b->buf);
    free (b);
  }
  *con_cls = NULL;
}

/* libmicrohttpd's own messages. */
static void
mhd_log (void *cls, const char *fmt, va_list ap)
{
  fputs ("bootback web: ", stderr);
  vfprintf (stderr, fmt, ap);
}

/* ADDR:PORT or [ADDR6]:PORT into sa; invariant 1's loopback test in
 * *loopback. */
static int
parse_listen (const char *s, struct sockaddr_storage *sa, bool *loopback)
{
  char host[INET6_ADDRSTRLEN + 1];
  const char *colon = strrchr (s, ':');
  struct sockaddr_in *v4 = (struct sockaddr_in *) sa;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) sa;
  size_t hl;
  char *end;
  long port;

  if (!colon)
    goto bad;
  errno = 0;
  port = strtol (colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
    goto bad;
  hl = colon - s;
  if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']')
    s++, hl -= 2;
  if (hl == 0 || hl >= sizeof host)
    goto bad;
  memcpy (host, s, hl);
  host[hl] = '\0';
  memset (sa, 0, sizeof *sa);
  if (inet_pton (AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons (port);
    *loopback = (ntohl (v4->sin_addr.s_addr) >> 24) == 127;
    return 0;
  }
  if (inet_pton (AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons (port);
    *loopback = IN6_IS_ADDR_LOOPBACK (&v6->sin6_addr);
    return 0;
  }
 bad:
  error_setx ("--listen %s: not ADDR:PORT or [ADDR6]:PORT with a numeric "
              "address", s);
  return -1;
}

/* A PEM file's text (malloc'd), or NULL. */
static char *
read_pem (const char *opt, const char *path)
{
  FILE *f = fopen (path, "re");
  char *buf = NULL;
  size_t n = 0;
  ssize_t len;

  if (!f) {
    error_set (errno, "%s %s", opt, path);
    return NULL;
  }
  len = getdelim (&buf, &n, '\0', f);
  fclose (f);
  if (len <= 0 || len > PEM_MAX || strlen (buf) != (size_t) len) {
    error_setx ("%s %s: not a PEM file", opt, path);
    free (buf);
    return NULL;
  }
  return buf;
}

/* Wait for SIGINT or SIGTERM (blocked before the daemon's thread starts,
 * so that it inherits the mask). */
static void
block_signals (sigset_t *set)
{
  sigemptyset (set);
  sigaddset (set, SIGINT);
  sigaddset (set, SIGTERM);
  pthread_sigmask (SIG_BLOCK, set, NULL);
  signal (SIGPIPE, SIG_IGN);
}

static struct MHD_Daemon *
start (struct server *s, const struct sockaddr_storage *sa, const char *cert,
       const char *key)
{
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
    (sa->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) | (s->tls ? MHD_USE_TLS : 0);

  return MHD_start_daemon (flags, 0, NULL, NULL, answer, s,
                           MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                           MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                           MHD_OPTION_SOCK_ADDR, sa,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned) WEB_MAX_CONNECTIONS,
                           MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) WEB_MAX_PER_IP,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) WEB_TIMEOUT,
                           MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) WEB_MEMORY_LIMIT,
                           s->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
                           MHD_OPTION_HTTPS_MEM_KEY, key,
                           MHD_OPTION_END);
}

/* --server-name: a host name (letters, digits, '-' and '.', labels not
 * empty nor starting or ending with '-') or an address literal (IPv6 in
 * brackets); no port, the console's is the one it listens on. */
static bool
server_name_valid (const char *n)
{
  char lit[INET6_ADDRSTRLEN + 1];
  struct in6_addr a6;
  size_t len = strlen (n), i;

  if (n[0] == '[')
    return len >= 3 && len - 2 < sizeof lit && n[len - 1] == ']' &&
      (memcpy (lit, n + 1, len - 2), lit[len - 2] = '\0',
       inet_pton (AF_INET6, lit, &a6) == 1);
  if (len == 0 || len > 253)
    return false;
  for (i = 0; i < len; i++) {
    bool start = i == 0 || n[i - 1] == '.', end = i + 1 == len || n[i + 1] == '.';
    if (n[i] == '.' ? start || end
        : !(isalnum ((unsigned char) n[i]) || (n[i] == '-' && !start && !end)))
      return false;
  }
  return true;
}

static int
serve (struct server *sv)
{
  struct server s = *sv;
  const struct web_opts *o = s.o;
  CLEANUP_FREE char *cert = NULL, *key = NULL;
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *) &s.sa;
  const struct sockaddr_in *v4 = (const struct sockaddr_in *) &s.sa;
  const union MHD_DaemonInfo *info;
  struct MHD_Daemon *d;
  char **sn;
  sigset_t set;
  int sig;

  if (parse_listen (o->listen, &s.sa, &s.loopback) == -1)
    return -1;
  for (sn = o->server_names; sn && *sn; sn++)
    if (!server_name_valid (*sn)) {
      error_setx ("--server-name %s: not a host name or an address literal "
                  "(IPv6 in brackets; no port: the one listened on is used)", *sn);
      return -1;
    }
  if (!!o->cert != !!o->key) {
    error_setx ("--cert and --key go together");
    return -1;
  }
  if (!s.tls && !s.loopback) {
    error_setx ("--listen %s: plain HTTP only on a loopback address; give "
                "--cert and --key for HTTPS", o->listen);
    return -1;
  }
  if (s.tls && (!(cert = read_pem ("--cert", o->cert)) ||
                !(key = read_pem ("--key", o->key))))
    return -1;
  if (!(s.jobs = web_jobs_new (s.cat, o->max_jobs)))
    return -1;
  block_signals (&set);
  s.sessions = web_sessions_new ();
  if (!(d = start (&s, &s.sa, cert, key))) {
    error_setx ("cannot listen on %s (address in use, or a bad certificate "
                "or key)", o->listen);
    web_sessions_free (s.sessions);
    web_jobs_free (s.jobs, s.cat);
    return -1;
  }
  info = MHD_get_daemon_info (d, MHD_DAEMON_INFO_BIND_PORT);
  fprintf (stderr, "bootback web: listening on %s://%.*s:%u\n",
           s.tls ? "https" : "http",
           (int) (strrchr (o->listen, ':') - o->listen), o->listen,
           info ? info->port : 0);
  if (!(o->server_names && o->server_names[0]) &&
      (s.sa.ss_family == AF_INET ? v4->sin_addr.s_addr == htonl (INADDR_ANY)
       : IN6_IS_ADDR_UNSPECIFIED (&v6->sin6_addr)))
    fprintf (stderr, "bootback web: note: on a wildcard address, give --server-name "
             "for each name or address clients use (other Hosts are refused)\n");
  sigwait (&set, &sig);
  fprintf (stderr, "bootback web: stopping (signal %d)\n", sig);
  MHD_stop_daemon (d);
  web_sessions_free (s.sessions);
  if (!s.cat)
    s.cat = catalog_open (o->home);
  web_jobs_free (s.jobs, s.cat);
  sv->cat = s.cat;
  return 0;
}

int
web_serve (struct catalog *cat, const struct web_opts *o)
{
  struct server s = { .cat = cat, .o = o, .tls = o->cert != NULL };
  int rc = serve (&s);

  catalog_close (s.cat);
  return rc;
}
