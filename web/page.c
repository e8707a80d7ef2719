/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The dashboard page of bootback web: its files and its own routes.
 *
 *   GET /                     the dashboard (web/static/index.html)
 *   GET /login                the login page (public: no data in it)
 *   GET /static/...           scripts, style, uPlot (public)
 *   GET /ui/overview          every VM with its last point and last
 *                             verification, the repository's usage and
 *                             dedup ratio over time (JSON)
 *   GET /ui/shot?vm=&run=     the screenshot of lab VM vm in run (PNG)
 *   GET /ui/report?vm=&run=   that run's report.html (sandboxed)
 *
 * The files are built into the program (web/static-files.c, made by
 * web/embed.sh): nothing is read from disk to serve them.  The page's
 * data comes from the API and /ui/overview as JSON; its scripts put every
 * value into the page as text (textContent), never as HTML.
 *
 * Trust: a screenshot or report is looked up, never named by the request:
 * the request names a lab VM and a run, the catalog gives that run's
 * report directory, which must resolve (realpath) to a directory under the
 * state directory; the file in it has a fixed name (report.html) or the
 * lab VM's name (a valid name) and ".png", is opened with O_NOFOLLOW, must
 * be a regular file of at most WEB_FILE_MAX bytes (a PNG must start with
 * the PNG signature).  A report is served with CSP sandbox: it runs
 * nothing and reaches nothing, even if a guest's text in it were not
 * escaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "web/web.h"

#define WEB_FILE_MAX (16 * 1024 * 1024)
#define USAGE_SAMPLES 500            /* at most, on the usage chart */
#define CSP_REPORT "sandbox; default-src 'none'; img-src data:; " \
  "style-src 'unsafe-inline'; frame-ancestors 'none'"
#define TYPE_JSON "application/json; charset=utf-8"

const struct web_file *
web_static_find (const char *url)
{
  const struct web_file *f;

  for (f = web_static_files; f->path; f++)
    if (strcmp (f->path, url) == 0)
      return f;
  return NULL;
}

static void
blob_json (struct web_blob *out, json_t *j)
{
  out->data = json_dumps (j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (j);
  if (!out->data)
    abort ();
  out->len = strlen (out->data);
  out->type = TYPE_JSON;
  out->csp = NULL;
}

static void
blob_error (struct web_blob *out, int *status, int code, const char *msg)
{
  *status = code;
  blob_json (out, web_error_json ("%s", msg));
}

/* ---- /ui/overview ----------------------------------------------------------- */

/* The VM's object in vms, made if new. */
static json_t *
vm_of (json_t *vms, const char *vm)
{
  json_t *v = json_object_get (vms, vm);

  if (!v) {
    v = json_pack ("{s:s, s:i, s:n, s:n}", "vm", vm, "points", 0,
                   "last_point", "verification");
    json_object_set_new (vms, vm, v);
  }
  return v;
}

/* Points come oldest first per VM, VM by VM: one VM's count and last
 * point are kept here until the next VM's first row. */
struct last_points {
  json_t *vms;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  int64_t time, n;
};

static void
last_point_flush (struct last_points *l)
{
  char iso[ISO_TIME_LEN + 1];
  json_t *v;

  if (!l->n)
    return;
  v = vm_of (l->vms, l->vm);
  iso_time_format (l->time, iso);
  json_object_set_new (v, "points", json_integer (l->n));
  json_object_set_new (v, "last_point", json_pack ("{s:s, s:s}", "id", l->id,
                                                   "time", iso));
  l->n = 0;
}

static int
point_one (void *opaque, const char *vm, const char *id, int64_t time)
{
  struct last_points *l = opaque;

  if (l->n && strcmp (l->vm, vm) != 0)
    last_point_flush (l);
  snprintf (l->vm, sizeof l->vm, "%s", vm);
  snprintf (l->id, sizeof l->id, "%s", id);
  l->time = time;
  l->n++;
  return 0;
}

/* The last verdict of each VM: its source point's VM, else the lab VM
 * (as /metrics counts them); rows come oldest first. */
static int
verdict_one (void *opaque, const struct catalog_lab_vm_row *r)
{
  const char *at = strchr (r->source, '@');
  CLEANUP_FREE char *vm = at && strncmp (r->source, "image ", 6) != 0
    ? strndup (r->source, at - r->source) : xstrdup (r->vm);
  char iso[ISO_TIME_LEN + 1];

  iso_time_format (r->started, iso);
  json_object_set_new (vm_of (opaque, vm), "verification",
                       json_pack ("{s:s, s:s, s:s, s:I}", "status", r->status,
                                  "started", iso, "labvm", r->vm,
                                  "at", (json_int_t) r->started));
  return 0;
}

/* The run of a lab VM that started at a time: its name, report directory. */
struct run_find {
  const char *run;               /* wanted by name, or NULL: by start */
  int64_t started;
  char *name, *dir, *message;
};

static int
run_one (void *opaque, const struct catalog_lab_history *h)
{
  struct run_find *k = opaque;

  if (k->run ? strcmp (h->run, k->run) != 0 : h->started != k->started)
    return 0;
  free (k->name), free (k->dir), free (k->message);
  k->name = xstrdup (h->run);
  k->dir = xstrdup (h->report_dir);
  k->message = xstrdup (h->message);
  return 0;
}

static void
run_find_free (struct run_find *k)
{
  free (k->name), free (k->dir), free (k->message);
}

/* The path of leaf in a report directory the catalog gave, if that
 * directory is under the state directory (malloc'd), else NULL. */
static char *
under_home (const struct web_opts *o, const char *dir, const char *leaf)
{
  CLEANUP_FREE char *home = realpath (o->home, NULL);
  CLEANUP_FREE char *real = dir[0] ? realpath (dir, NULL) : NULL;
  size_t n = home ? strlen (home) : 0;

  if (!home || !real || strncmp (real, home, n) != 0 || real[n] != '/')
    return NULL;
  return xasprintf ("%s/%s", real, leaf);
}

/* The file's bytes (regular, not a link, at most WEB_FILE_MAX), or NULL. */
static char *
read_regular (const char *path, size_t *len)
{
  int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st;
  char *buf = NULL;
  ssize_t n;

  if (fd == -1)
    return NULL;
  if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_size <= WEB_FILE_MAX) {
    buf = xmalloc (st.st_size + 1);
    n = read (fd, buf, st.st_size);
    if (n != st.st_size) {
      free (buf);
      buf = NULL;
    }
    *len = st.st_size;
  }
  close (fd);
  return buf;
}

/* The path of a lab VM's file of one run (k found by run name or start
 * time), NULL if the catalog names none under the state directory. */
static char *
run_file (struct catalog *cat, const struct web_opts *o, const char *vm,
          struct run_find *k, bool shot)
{
  CLEANUP_FREE char *leaf = shot ? xasprintf ("%s.png", vm) : xstrdup ("report.html");

  if (!name_is_valid (vm) || catalog_lab_history (cat, vm, run_one, k) == -1 ||
      !k->dir)
    return NULL;
  return under_home (o, k->dir, leaf);
}

/* Add run, report and screenshot (whether there is one) to a VM's last
 * verification. */
static int
verification_files (struct catalog *cat, const struct web_opts *o, json_t *ver)
{
  const char *labvm = json_string_value (json_object_get (ver, "labvm"));
  struct run_find k = { .started = json_integer_value (json_object_get (ver, "at")) };
  CLEANUP_FREE char *shot = run_file (cat, o, labvm, &k, true);
  CLEANUP_FREE char *report = k.dir ? under_home (o, k.dir, "report.html") : NULL;

  json_object_del (ver, "at");
  json_object_set_new (ver, "run", k.name ? json_string (k.name) : json_null ());
  json_object_set_new (ver, "message", json_string (k.message ? k.message : ""));
  json_object_set_new (ver, "screenshot", json_boolean (shot && access (shot, R_OK) == 0));
  json_object_set_new (ver, "report", json_boolean (report && access (report, R_OK) == 0));
  run_find_free (&k);
  return 0;
}

/* Usage over time: [[time, logical, stored, dedup], ...], running sums
 * over the points oldest first, at most USAGE_SAMPLES of them (the last
 * always). */
struct usage {
  struct sample { int64_t t; double logical, stored; } *v;
  size_t n, cap;
};

static int
usage_one (void *opaque, int64_t time, uint64_t logical, uint64_t stored)
{
  struct usage *u = opaque;

  if (u->n == u->cap) {
    u->cap = u->cap ? 2 * u->cap : 1024;
    u->v = xrealloc (u->v, u->cap * sizeof *u->v);
  }
  u->v[u->n++] = (struct sample) { .t = time, .logical = logical, .stored = stored };
  return 0;
}

static int
by_time (const void *a, const void *b)
{
  const struct sample *x = a, *y = b;

  return x->t < y->t ? -1 : x->t > y->t;
}

static json_t *
usage_json (struct catalog *cat, const struct web_opts *o)
{
  struct usage u = { .v = NULL };
  json_t *a = json_array ();
  double logical = 0, stored = 0;
  size_t i, step;

  if (o->repo_id && catalog_repo_usage_times (cat, o->repo_id, usage_one, &u) == -1) {
    free (u.v);
    json_decref (a);
    return NULL;
  }
  qsort (u.v, u.n, sizeof *u.v, by_time);
  step = u.n / USAGE_SAMPLES + 1;
  for (i = 0; i < u.n; i++) {
    logical += u.v[i].logical, stored += u.v[i].stored;
    if (i % step == 0 || i == u.n - 1)
      json_array_append_new (a, json_pack ("[I, f, f, f]", (json_int_t) u.v[i].t,
                                           logical, stored,
                                           stored > 0 ? logical / stored : 0.0));
  }
  free (u.v);
  return a;
}

static void
get_overview (struct catalog *cat, const struct web_opts *o, int *status,
              struct web_blob *out)
{
  json_auto_t *vms = json_object ();
  json_t *a, *usage, *v;
  const char *vm;

  struct last_points l = { .vms = vms };

  if (o->repo_id && catalog_point_times (cat, o->repo_id, point_one, &l) == -1)
    return blob_error (out, status, 500, error_msg ());
  last_point_flush (&l);
  if (catalog_lab_vm_rows (cat, 0, verdict_one, vms) == -1 ||
      !(usage = usage_json (cat, o)))
    return blob_error (out, status, 500, error_msg ());
  a = json_array ();
  json_object_foreach (vms, vm, v) {
    json_t *ver = json_object_get (v, "verification");
    if (json_is_object (ver))
      verification_files (cat, o, ver);
    json_array_append (a, v);
  }
  *status = 200;
  blob_json (out, json_pack ("{s:s, s:o, s:o}", "repo", o->repo, "vms", a,
                             "usage", usage));
}

/* ---- /ui/shot, /ui/report ---------------------------------------------------- */

static void
get_run_file (struct catalog *cat, const struct web_opts *o, web_arg_fn arg,
              void *opaque, bool shot, int *status, struct web_blob *out)
{
  const char *vm = arg (opaque, "vm"), *run = arg (opaque, "run");
  struct run_find k = { .run = run };
  CLEANUP_FREE char *path = NULL;
  char *data;
  size_t len = 0;

  if (!vm || !run || !name_is_valid (run))
    return blob_error (out, status, 400, "bad parameters: vm and run (a lab "
                       "VM's name and a run) are needed");
  path = run_file (cat, o, vm, &k, shot);
  run_find_free (&k);
  if (!path || !(data = read_regular (path, &len)))
    return blob_error (out, status, 404, shot ? "no such screenshot"
                                              : "no such report");
  if (shot && (len < 8 || memcmp (data, "\x89PNG\r\n\x1a\n", 8) != 0)) {
    free (data);
    return blob_error (out, status, 404, "no such screenshot (not a PNG)");
  }
  *status = 200;
  out->data = data, out->len = len;
  out->type = shot ? "image/png" : "text/html; charset=utf-8";
  out->csp = shot ? NULL : CSP_REPORT;
}

void
web_page_get (struct catalog *cat, const struct web_opts *o, const char *url,
              web_arg_fn arg, void *opaque, int *status, struct web_blob *out)
{
  if (strcmp (url, "/ui/overview") == 0)
    return get_overview (cat, o, status, out);
  if (strcmp (url, "/ui/shot") == 0)
    return get_run_file (cat, o, arg, opaque, true, status, out);
  if (strcmp (url, "/ui/report") == 0)
    return get_run_file (cat, o, arg, opaque, false, status, out);
  blob_error (out, status, 404, "no such resource");
}
