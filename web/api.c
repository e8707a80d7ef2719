/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The REST API of bootback web under /api/v1/ (reads here; actions are
 * jobs, jobs.c):
 *
 *   GET repositories                 the catalog's repositories
 *   GET points?vm=&limit=&cursor=    points of the server's repository,
 *                                    oldest first per VM, paged: total,
 *                                    next (a cursor, null at the end)
 *   GET points/VM/TIME               one point (disks, sizes, kind, ...)
 *   GET sessions                     instant-recovery sessions
 *   GET labs                         labs that exist now
 *   GET history?vm=                  past lab runs of a VM
 *   GET report?since=                per VM: points, pass rate, RTO
 *   GET jobs?limit=&cursor=          jobs of actions, newest first, paged
 *   GET jobs/ID                      one job: state, progress, result
 *   POST jobs {"action": A, ...}     start one (jobs.c, actions.c): 202
 *
 * Each calls the library function its CLI command calls and returns what
 * that command's --json prints, wrapped in an object.  A bad argument is
 * 400 naming it, an unknown path 404.  Values go out as jansson strings
 * (escaped JSON), never as HTML.
 */
#include <errno.h>
#include <stdarg.h>

#include "web/web.h"
#include "lab/lab.h"
#include "recovery/instant/instant.h"
#include "verify/verify.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000                /* a larger limit= is cut to this */

/* msg's text may be cut in a UTF-8 sequence (%.64s, a full buffer) or
 * hold any byte of a request (its method): json_pack would refuse it and
 * the server abort on the NULL.  Invalid bytes become '?'. */
json_t *
web_error_json (const char *fmt, ...)
{
  CLEANUP_FREE char *msg = NULL;
  va_list ap;
  size_t i, k, n;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) == -1)
    abort ();
  va_end (ap);
  n = strlen (msg);
  for (i = 0; i < n; i += k)
    if (!(k = utf8_seq_len ((unsigned char *) msg + i, n - i)))
      msg[i] = '?', k = 1;
  return json_pack ("{s:s}", "error", msg);
}

/* A 400 naming the argument. */
static json_t *
bad_arg (int *status, const char *key, const char *why)
{
  *status = 400;
  return web_error_json ("bad parameter '%s': %s", key, why);
}

/* The catalog's last error as a 500. */
static json_t *
server_error (int *status)
{
  *status = 500;
  return web_error_json ("%s", error_msg ()[0] ? error_msg () : "internal error");
}

/* A non-negative count argument; -2 if absent, -1 if bad. */
static long
count_arg (const char *s)
{
  char *end;
  long v;

  if (!s)
    return -2;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > 100000000)
    return -1;
  return v;
}

/* A page's limit= and cursor= (or offset=): NULL, or the 400. */
static json_t *
page_args (web_arg_fn arg, void *opaque, int64_t *offset, int64_t *limit,
           int *status)
{
  const char *cursor = arg (opaque, "cursor") ? arg (opaque, "cursor")
                                              : arg (opaque, "offset");
  long l = count_arg (arg (opaque, "limit")), o = count_arg (cursor);

  if (l == -1 || l == 0)
    return bad_arg (status, "limit", "not a positive number");
  if (o == -1)
    return bad_arg (status, arg (opaque, "cursor") ? "cursor" : "offset",
                    "not a cursor this API gave");
  *limit = l == -2 ? PAGE_DEFAULT : l > PAGE_MAX ? PAGE_MAX : l;
  *offset = o == -2 ? 0 : o;
  return NULL;
}

static int
repo_one (void *opaque, const struct catalog_repo *r)
{
  json_array_append_new (opaque, json_pack ("{s:I, s:s, s:s, s:I, s:b, s:I}",
                                            "id", (json_int_t) r->id,
                                            "location", r->location, "uuid", r->uuid,
                                            "chunk_size", (json_int_t) r->chunk_size,
                                            "default", r->is_default,
                                            "points", (json_int_t) r->points));
  return 0;
}

static json_t *
get_repositories (struct catalog *cat, int *status)
{
  json_t *a = json_array ();

  if (catalog_repo_list (cat, repo_one, a) == -1) {
    json_decref (a);
    return server_error (status);
  }
  return json_pack ("{s:o}", "repositories", a);
}

/* Points into an array (or, with id, only that point). */
struct page {
  json_t *a;
  const char *id;
};

static int
point_one (void *opaque, const struct repo_manifest *m)
{
  struct page *p = opaque;

  if (!p->id || strcmp (m->id, p->id) == 0)
    json_array_append_new (p->a, repo_manifest_json (m));
  return 0;
}

static json_t *
get_points (struct catalog *cat, const struct web_opts *o, web_arg_fn arg,
            void *opaque, int *status)
{
  const char *vm = arg (opaque, "vm");
  struct page p = { .a = NULL };
  int64_t total = 0, offset, limit;
  char next[32];
  json_t *bad;

  if (vm && !name_is_valid (vm))
    return bad_arg (status, "vm", "not a VM name");
  if ((bad = page_args (arg, opaque, &offset, &limit, status)))
    return bad;
  p.a = json_array ();
  if (o->repo_id && catalog_point_page (cat, o->repo_id, vm, offset, limit, &total,
                                        point_one, &p) == -1)
    return json_decref (p.a), server_error (status);
  snprintf (next, sizeof next, "%" PRId64, offset + limit);
  return json_pack ("{s:I, s:I, s:I, s:s?, s:o}", "total", (json_int_t) total,
                    "offset", (json_int_t) offset, "limit", (json_int_t) limit,
                    "next", offset + limit < total ? next : NULL, "points", p.a);
}

/* points/VM/TIME */
static json_t *
get_point (struct catalog *cat, const struct web_opts *o, const char *rest,
           int *status)
{
  char vm[VM_NAME_MAX + 1], id[64];
  const char *slash = strchr (rest, '/');
  struct page p = { .a = json_array (), .id = id };
  json_t *r;

  if (!slash || (size_t) (slash - rest) > VM_NAME_MAX || strlen (slash + 1) >= sizeof id)
    return json_decref (p.a), *status = 404, web_error_json ("no such point");
  snprintf (vm, sizeof vm, "%.*s", (int) (slash - rest), rest);
  snprintf (id, sizeof id, "%s", slash + 1);
  if (!name_is_valid (vm))
    return json_decref (p.a), bad_arg (status, "vm", "not a VM name");
  if (!point_id_is_valid (id))
    return json_decref (p.a), bad_arg (status, "time", "not a point time "
                                       "like 20261122T045506Z");
  if (o->repo_id && catalog_point_list (cat, o->repo_id, vm, point_one, &p) == -1)
    return json_decref (p.a), server_error (status);
  if (json_array_size (p.a) == 0) {
    json_decref (p.a);
    *status = 404;
    return web_error_json ("no point %s@%s", vm, id);
  }
  r = json_incref (json_array_get (p.a, 0));
  json_decref (p.a);
  return r;
}

static int
session_one (void *opaque, const struct instant_session *s)
{
  json_array_append_new (opaque, instant_session_json (s));
  return 0;
}

static json_t *
get_sessions (struct catalog *cat, int *status)
{
  json_t *a = json_array ();

  if (instant_session_list (cat, session_one, a) == -1) {
    json_decref (a);
    return server_error (status);
  }
  return json_pack ("{s:o}", "sessions", a);
}

static json_t *
get_labs (const struct web_opts *o)
{
  struct lab_state **v = lab_state_list (o->home);
  time_t now = time (NULL);
  json_t *a = json_array ();
  size_t i;

  for (i = 0; v && v[i]; i++) {
    const struct lab_state *s = v[i];
    json_array_append_new (a, json_pack ("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:s}",
                                         "id", s->id, "lab", s->lab ? s->lab : "",
                                         "kind", s->kind ? s->kind : "",
                                         "status", s->status ? s->status : "",
                                         "alive", lab_state_alive (s, now),
                                         "created", (json_int_t) s->created,
                                         "expires", (json_int_t) s->expires,
                                         "owner", s->owner ? s->owner : ""));
  }
  lab_state_list_free (v);
  return json_pack ("{s:o}", "labs", a);
}

static json_t *
get_history (struct catalog *cat, web_arg_fn arg, void *opaque, int *status)
{
  const char *vm = arg (opaque, "vm");
  json_t *h;

  if (!vm)
    return bad_arg (status, "vm", "missing");
  if (!name_is_valid (vm))
    return bad_arg (status, "vm", "not a VM name");
  if (!(h = verify_history_json (cat, vm)))
    return server_error (status);
  return json_pack ("{s:s, s:o}", "vm", vm, "runs", h);
}

static json_t *
get_report (struct catalog *cat, const struct web_opts *o, web_arg_fn arg,
            void *opaque, int *status)
{
  const char *window = arg (opaque, "since");
  struct verify_summary *s;
  time_t now = time (NULL);
  double since;
  json_t *j;

  if ((since = lab_parse_duration (window ? window : "30d")) < 0)
    return bad_arg (status, "since", "not a duration like 30d or 12h");
  s = verify_summary_read (cat, o->repo_id, now - (time_t) since, now, NULL);
  if (!s)
    return server_error (status);
  j = verify_summary_json (s);
  verify_summary_free (s);
  return j;
}

/* jobs (rest "") or jobs/ID (rest "/ID"): jobs.c */
static json_t *
get_jobs (struct catalog *cat, const char *rest, web_arg_fn arg, void *opaque,
          int *status)
{
  int64_t offset = 0, limit = PAGE_DEFAULT;
  json_t *bad;

  if (*rest == '/' && !rest[1]) {
    *status = 404;
    return web_error_json ("no such job");
  }
  if (!*rest && (bad = page_args (arg, opaque, &offset, &limit, status)))
    return bad;
  return web_jobs_get (cat, *rest ? rest + 1 : rest, offset, limit, status);
}

json_t *
web_api_get (struct catalog *cat, const struct web_opts *o, const char *url,
             web_arg_fn arg, void *opaque, int *status)
{
  const char *p = url + strlen ("/api/v1/");

  *status = 200;
  if (strncmp (url, "/api/v1/", strlen ("/api/v1/")) != 0)
    p = "";
  if (strcmp (p, "repositories") == 0)
    return get_repositories (cat, status);
  if (strcmp (p, "points") == 0)
    return get_points (cat, o, arg, opaque, status);
  if (strncmp (p, "points/", 7) == 0)
    return get_point (cat, o, p + 7, status);
  if (strcmp (p, "sessions") == 0)
    return get_sessions (cat, status);
  if (strcmp (p, "labs") == 0)
    return get_labs (o);
  if (strcmp (p, "history") == 0)
    return get_history (cat, arg, opaque, status);
  if (strcmp (p, "report") == 0)
    return get_report (cat, o, arg, opaque, status);
  if (strcmp (p, "jobs") == 0 || strncmp (p, "jobs/", 5) == 0)
    return get_jobs (cat, p + 4, arg, opaque, status);
  *status = 404;
  return web_error_json ("no such resource");
}
