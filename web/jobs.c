/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Jobs of bootback web: POST /api/v1/jobs starts an action (actions.c)
 * as a job; GET /api/v1/jobs and /api/v1/jobs/ID show them.
 *
 * Design: one forked child process per job, without exec: the child
 * calls the library functions the CLI calls (actions.c) and reports
 * through the job's catalog row (web_jobs, schema 10).  Not a thread:
 * the library keeps process-wide state (signal handlers of lab runs and
 * migrations, the progress sink, environment), a catalog connection is
 * for one thread (SQLITE_OPEN_NOMUTEX), and a crash in a job (abort, a
 * bug, a signal) must not take the server down: here it fails its job.
 *
 * Invariants:
 *  1. Only libmicrohttpd's polling thread forks, and it is the only
 *     thread of the server that uses the catalog; it closes its catalog
 *     connection around the fork (web_jobs_post), so that no SQLite
 *     connection crosses a fork.  The child opens its own two (the job's,
 *     and one for progress, which worker threads report on).
 *     The server's descriptors are close-on-exec in the child.
 *  2. A child dies with the server (PR_SET_PDEATHSIG: SIGTERM when the
 *     polling thread ends), and the server fails every queued or running
 *     job ("server stopped") when it starts and when it stops: a listing
 *     never shows a job nobody runs, also after a kill -9 of the server.
 *  3. The row is the job's state.  The child records its progress (each
 *     progress line of the library through progress_set_sink, at most 5
 *     a second each, and the phases its action names) and its end.  The
 *     parent reaps its children on every request (waitpid, WNOHANG) and
 *     fails the job of a child that ended without recording its end,
 *     saying how it ended ("job process killed by signal 11").
 *  4. At most --max-jobs (WEB_MAX_JOBS) run at once: 429 beyond, nothing
 *     started.
 *  5. The arguments are checked in the parent before the row is made
 *     (actions.c): a 400 starts nothing and records nothing; then the
 *     token's role against the action's (web.h): a 403 neither.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>

#include "web/web.h"
#include "web/web-int.h"

#define STOP_GRACE 20               /* seconds a job gets to end on SIGTERM */

struct web_jobs {
  pid_t pid[WEB_MAX_JOBS_MAX];
  int64_t id[WEB_MAX_JOBS_MAX];
  size_t n, max;
};

struct web_jobs *
web_jobs_new (struct catalog *cat, int max)
{
  int n = catalog_webjob_end_all (cat, "server stopped");
  struct web_jobs *js;

  if (n == -1)
    return NULL;
  if (n > 0)
    fprintf (stderr, "bootback web: %d jobs left by a server that stopped are "
             "failed\n", n);
  js = xcalloc (1, sizeof *js);
  js->max = max > 0 && max <= WEB_MAX_JOBS_MAX ? max : WEB_MAX_JOBS;
  return js;
}

/* How a child ended, for its job's error. */
static void
describe_exit (int st, char *buf, size_t len)
{
  if (WIFSIGNALED (st))
    snprintf (buf, len, "job process killed by signal %d", WTERMSIG (st));
  else
    snprintf (buf, len, "job process exited with status %d without an end",
              WEXITSTATUS (st));
}

/* Invariant 3; i: the child at js[i], ended with st. */
static void
reaped (struct web_jobs *js, struct catalog *cat, size_t i, int st)
{
  char why[96];

  describe_exit (st, why, sizeof why);
  if (cat && catalog_webjob_end (cat, js->id[i], "failed", NULL, why) == 1)
    fprintf (stderr, "bootback web: job %" PRId64 ": %s\n", js->id[i], why);
  js->pid[i] = js->pid[js->n - 1];
  js->id[i] = js->id[js->n - 1];
  js->n--;
}

void
web_jobs_reap (struct web_jobs *js, struct catalog *cat)
{
  size_t i = 0;
  int st;

  while (i < js->n)
    if (waitpid (js->pid[i], &st, WNOHANG) == js->pid[i])
      reaped (js, cat, i, st);
    else
      i++;
}

void
web_jobs_free (struct web_jobs *js, struct catalog *cat)
{
  size_t i;
  int st, t;

  if (!js)
    return;
  for (i = 0; i < js->n; i++)
    kill (js->pid[i], SIGTERM);
  for (t = 0; js->n && t < STOP_GRACE * 10; t++) {
    web_jobs_reap (js, cat);
    if (js->n)
      usleep (100000);
  }
  for (i = 0; i < js->n; i++) {
    kill (js->pid[i], SIGKILL);
    waitpid (js->pid[i], &st, 0);
  }
  if (cat && catalog_webjob_end_all (cat, "server stopped") == -1)
    fprintf (stderr, "bootback web: %s\n", error_msg ());
  free (js);
}

/* ---- in the child ------------------------------------------------------- */

void
web_job_progress (struct web_job *j, uint64_t done, uint64_t total,
                  const char *phase)
{
  pthread_mutex_lock (&j->lock);
  if (catalog_webjob_progress (j->pcat, j->id, done, total, phase) == -1)
    fprintf (stderr, "bootback web: job %" PRId64 ": %s\n", j->id, error_msg ());
  pthread_mutex_unlock (&j->lock);
}

/* The library's progress lines (progress_set_sink). */
static void
sink (void *opaque, const char *label, uint64_t done, uint64_t total)
{
  web_job_progress (opaque, done, total, label);
}

/* The child's signals: what a plain process has, death with the server
 * (invariant 2); stdin /dev/null, stdout the log; no descriptor of the
 * server's passed on. */
static void
child_setup (pid_t parent)
{
  sigset_t none;
  int fd;

  sigemptyset (&none);
  pthread_sigmask (SIG_SETMASK, &none, NULL);
  signal (SIGINT, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGPIPE, SIG_IGN);
  prctl (PR_SET_PDEATHSIG, SIGTERM);
  if (getppid () != parent)
    _exit (1);
  if ((fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
    dup2 (fd, 0);
    close (fd);
  }
  dup2 (2, 1);                  /* what the library prints: the server's log */
  /* What the job starts (nbdkit, a session's supervisor, qemu-img) gets
   * none of the server's descriptors: its listening socket would keep the
   * port after the server stopped. */
  if (close_range (3, ~0U, CLOSE_RANGE_CLOEXEC) == -1)
    fprintf (stderr, "bootback web: warning: close_range: %s\n", strerror (errno));
}

/* Run the job; never returns. */
static void __attribute__((noreturn))
child (int64_t id, const struct web_action *a, json_t *args,
       const struct web_opts *o, pid_t parent)
{
  struct web_job j = { .id = id, .o = o };
  CLEANUP_FREE char *res = NULL;
  json_t *result = NULL;
  int rc;

  child_setup (parent);
  pthread_mutex_init (&j.lock, NULL);
  if (!(j.cat = catalog_open (o->home)) || !(j.pcat = catalog_open (o->home))) {
    fprintf (stderr, "bootback web: job %" PRId64 ": %s\n", id, error_msg ());
    _exit (1);
  }
  progress_set_sink (sink, &j);
  error_clear ();
  rc = a->run (&j, args, &result);
  progress_set_sink (NULL, NULL);
  if (rc == -1 && !j.error[0])
    snprintf (j.error, sizeof j.error, "%s",
              error_msg ()[0] ? error_msg () : "failed");
  if (result)
    res = json_dumps (result, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (catalog_webjob_end (j.cat, id, rc == 0 ? "done" : "failed", res,
                          rc == 0 ? NULL : j.error) == -1) {
    fprintf (stderr, "bootback web: job %" PRId64 ": %s\n", id, error_msg ());
    _exit (1);
  }
  fprintf (stderr, "bootback web: job %" PRId64 " (%s) %s%s%s\n", id, a->name,
           rc == 0 ? "done" : "failed", rc == 0 ? "" : ": ", rc == 0 ? "" : j.error);
  _exit (0);
}

/* ---- starting one ------------------------------------------------------- */

/* Fork the job's child (invariant 1: *cat is closed around the fork and
 * reopened).  The child's pid, or -1. */
static pid_t
spawn (struct catalog **cat, int64_t id, const struct web_action *a,
       json_t *args, const struct web_opts *o)
{
  pid_t parent = getpid (), pid;
  int saved;

  catalog_close (*cat);
  *cat = NULL;
  fflush (NULL);
  pid = fork ();
  if (pid == 0)
    child (id, a, args, o, parent);
  saved = errno;
  *cat = catalog_open (o->home);
  if (pid == -1)
    error_set (saved, "fork");
  return pid;
}

json_t *
web_jobs_post (struct web_jobs *js, struct catalog **cat,
               const struct web_opts *o, enum web_role role,
               const char *body, size_t len, int *status)
{
  const struct web_action *a;
  enum web_role need;
  json_auto_t *args = NULL;
  CLEANUP_FREE char *text = NULL;
  char why[256];
  int64_t id;
  pid_t pid;

  if (!(args = web_action_check (o, body, len, &a, why, sizeof why))) {
    *status = 400;
    return web_error_json ("%s", why);
  }
  if (role < (need = web_action_role (a, args))) {
    *status = 403;
    return web_error_json ("action %s%s needs a token of role %s; this one's "
                           "is %s", a->name,
                           need > a->role ? " with these arguments" : "",
                           web_role_name (need), web_role_name (role));
  }
  web_jobs_reap (js, *cat);
  if (js->n >= js->max) {
    *status = 429;
    return web_error_json ("%zu jobs run already (--max-jobs); try again when "
                           "one ended", js->n);
  }
  text = json_dumps (args, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (!text || (id = catalog_webjob_add (*cat, a->name, text)) == -1) {
    *status = 500;
    return web_error_json ("%s", error_msg ());
  }
  if ((pid = spawn (cat, id, a, args, o)) == -1) {
    *status = 500;
    if (*cat)
      catalog_webjob_end (*cat, id, "failed", NULL, error_msg ());
    return web_error_json ("%s", error_msg ());
  }
  js->pid[js->n] = pid;
  js->id[js->n++] = id;
  if (!*cat || catalog_webjob_running (*cat, id, pid) == -1)
    fprintf (stderr, "bootback web: job %" PRId64 ": %s\n", id, error_msg ());
  fprintf (stderr, "bootback web: job %" PRId64 " (%s) started, process %d\n",
           id, a->name, (int) pid);
  *status = 202;
  return web_job_ref (id);
}

json_t *
web_job_ref (int64_t id)
{
  char href[64];

  snprintf (href, sizeof href, "/api/v1/jobs/%" PRId64, id);
  return json_pack ("{s:I, s:s}", "id", (json_int_t) id, "href", href);
}

/* ---- reading them -------------------------------------------------------- */

static json_t *
time_json (double t)
{
  char iso[ISO_TIME_LEN + 1];

  if (t <= 0)
    return json_null ();
  iso_time_format ((time_t) t, iso);
  return json_string (iso);
}

/* A JSON text of the catalog's, or null if it is none (never). */
static json_t *
parse_or_null (const char *text)
{
  json_t *j = text ? json_loads (text, 0, NULL) : NULL;

  return j ? j : json_null ();
}

static int
job_one (void *opaque, const struct catalog_webjob *j)
{
  json_t *o = web_job_ref (j->id);

  json_object_set_new (o, "action", json_string (j->action));
  json_object_set_new (o, "args", parse_or_null (j->args));
  json_object_set_new (o, "state", json_string (j->state));
  json_object_set_new (o, "progress",
                       json_pack ("{s:I, s:I, s:s}", "done", (json_int_t) j->done,
                                  "total", (json_int_t) j->total,
                                  "phase", j->phase));
  json_object_set_new (o, "started", time_json (j->started));
  json_object_set_new (o, "ended", time_json (j->ended));
  json_object_set_new (o, "result", parse_or_null (j->result));
  json_object_set_new (o, "error", j->error ? json_string (j->error) : json_null ());
  json_array_append_new (opaque, o);
  return 0;
}

json_t *
web_jobs_get (struct catalog *cat, const char *rest, int64_t offset,
              int64_t limit, int *status)
{
  json_t *a = json_array (), *r;
  int64_t id, total = 0;
  char *end, next[32];

  if (!*rest) {
    if (catalog_webjob_page (cat, offset, limit, &total, job_one, a) == -1)
      goto err;
    snprintf (next, sizeof next, "%" PRId64, offset + limit);
    return json_pack ("{s:I, s:I, s:I, s:s?, s:o}", "total", (json_int_t) total,
                      "offset", (json_int_t) offset, "limit", (json_int_t) limit,
                      "next", offset + limit < total ? next : NULL, "jobs", a);
  }
  errno = 0;
  id = strtoll (rest, &end, 10);
  if (errno || *end || id <= 0 || !(*rest >= '0' && *rest <= '9')) {
    json_decref (a);
    *status = 404;
    return web_error_json ("no such job");
  }
  if (catalog_webjob_get (cat, id, job_one, a) == -1)
    goto err;
  if (json_array_size (a) == 0) {
    json_decref (a);
    *status = 404;
    return web_error_json ("no job %" PRId64, id);
  }
  r = json_incref (json_array_get (a, 0));
  json_decref (a);
  return r;
 err:
  json_decref (a);
  *status = 500;
  return web_error_json ("%s", error_msg ());
}
