/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs and sandboxes on disk, so that whatever a run made can be removed
 * by anyone who knows its id: `lab down`, `lab reap` (from the timer),
 * the run itself on SIGINT/SIGTERM, or the next reap after a SIGKILL.
 *
 *   $BOOTBACK_HOME/labs/<id>/state.json   owner, lease, memory, VMs, the
 *                                         relay and its published ports
 *   $BOOTBACK_HOME/labs/<id>/NAME.qcow2   throwaway overlays
 *   $BOOTBACK_HOME/labs/<id>/NAME.console console logs
 *   $BOOTBACK_HOME/labs/.budget.lock      flock: the memory budget
 *
 * Invariants:
 *  1. The state file exists before any resource of the run does, and
 *     every resource's name derives from the id (bridge, veth, namespace,
 *     iptables rules, domains "bbl-<id>-*", files in the run directory),
 *     so teardown needs nothing else and is idempotent.
 *  2. A run counts against the memory budget from the moment its state is
 *     written (under the budget lock) until its directory is removed.
 *  3. A run is alive while its owner process lives (pid + start time, so
 *     a reused pid does not count); a sandbox while its lease lasts.
 *  4. A sandbox's relay (published ports, publish.c) is in its state
 *     (relay_pid, relay_start) before it does anything, and teardown stops
 *     it before the network goes.
 *  5. The sandbox count (max_sandboxes) is checked under the budget lock
 *     with the memory, so two `lab up` cannot both take the last place.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lab/lab.h"
#include "recovery/catalog/catalog.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"

volatile sig_atomic_t lab_interrupted;

static void
on_signal (int sig)
{
  lab_interrupted = sig;
}

void
lab_signals_install (void)
{
  struct sigaction sa = { 0 };

  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

int
lab_sleep (double secs)
{
  double end = now_monotonic () + secs;

  while (!lab_interrupted) {
    double left = end - now_monotonic ();
    if (left <= 0)
      return 0;
    usleep (left > 0.1 ? 100000 : (useconds_t) (left * 1e6) + 1);
  }
  return -1;
}

static json_t *
strv_json (char *const *v)
{
  json_t *a = json_array ();
  size_t i;

  for (i = 0; v && v[i]; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static char **
json_strv (json_t *a)
{
  char **v = xcalloc (json_array_size (a) + 1, sizeof *v);
  size_t i;

  for (i = 0; i < json_array_size (a); i++)
    v[i] = xstrdup (json_string_value (json_array_get (a, i)) ?: "");
  return v;
}

static json_t *
state_json (const struct lab_state *s)
{
  json_t *o = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s,"
                         " s:s, s:s, s:o}",
                         "id", s->id, "lab", s->lab ? s->lab : "",
                         "file", s->file ? s->file : "", "kind", s->kind ? s->kind : "",
                         "uri", s->uri ? s->uri : "",
                         "pid", (json_int_t) s->pid,
                         "pid_start", (json_int_t) s->pid_start,
                         "created", (json_int_t) s->created,
                         "expires", (json_int_t) s->expires,
                         "memory_mib", (json_int_t) s->memory_mib,
                         "netns", s->netns ? s->netns : "",
                         "report_dir", s->report_dir ? s->report_dir : "",
                         "status", s->status ? s->status : "",
                         "vms", strv_json (s->vms));

  json_object_set_new (o, "owner_uid", json_integer (s->owner_uid));
  json_object_set_new (o, "owner", json_string (s->owner ? s->owner : ""));
  json_object_set_new (o, "relay_pid", json_integer (s->relay_pid));
  json_object_set_new (o, "relay_start", json_integer ((json_int_t) s->relay_start));
  json_object_set_new (o, "published", strv_json (s->published));
  json_object_set_new (o, "host", json_string (s->host ? s->host : ""));
  json_object_set_new (o, "ssh", json_string (s->ssh ? s->ssh : ""));
  json_object_set_new (o, "ssh_ctl", json_string (s->ssh_ctl ? s->ssh_ctl : ""));
  return o;
}

int
lab_state_save (const struct lab_state *s)
{
  CLEANUP_FREE char *path = xasprintf ("%s/state.json", s->dir);
  CLEANUP_FREE char *tmp = xasprintf ("%s/.state.json.tmp", s->dir);
  json_t *o = state_json (s);
  FILE *f = fopen_private (tmp);
  int r = f ? json_dumpf (o, f, JSON_INDENT (2) | JSON_PRESERVE_ORDER) : -1;

  json_decref (o);
  if (f && fclose (f) != 0)
    r = -1;
  if (r != 0) {
    error_set (errno ? errno : EIO, "write %s", tmp);
    return -1;
  }
  if (rename (tmp, path) == -1) {
    error_set (errno, "rename %s", path);
    return -1;
  }
  return 0;
}

static char *
jstr (json_t *o, const char *key)
{
  const char *s = json_string_value (json_object_get (o, key));
  return s && *s ? xstrdup (s) : NULL;
}

struct lab_state *
lab_state_load (const char *home, const char *id)
{
  CLEANUP_FREE char *dir = xasprintf ("%s/labs/%s", home, id);
  CLEANUP_FREE char *path = xasprintf ("%s/state.json", dir);
  json_error_t je;
  json_t *o = json_load_file (path, 0, &je);
  struct lab_state *s;

  if (!o) {
    error_setx ("lab run %s: %s: %s", id, path, je.text);
    return NULL;
  }
  s = xcalloc (1, sizeof *s);
  snprintf (s->id, sizeof s->id, "%s", id);
  s->dir = xstrdup (dir);
  s->lab = jstr (o, "lab");
  s->file = jstr (o, "file");
  s->kind = jstr (o, "kind");
  s->uri = jstr (o, "uri");
  s->host = jstr (o, "host");
  s->ssh = jstr (o, "ssh");
  s->ssh_ctl = jstr (o, "ssh_ctl");
  s->netns = jstr (o, "netns");
  s->report_dir = jstr (o, "report_dir");
  s->status = jstr (o, "status");
  s->pid = json_integer_value (json_object_get (o, "pid"));
  s->pid_start = json_integer_value (json_object_get (o, "pid_start"));
  s->created = json_integer_value (json_object_get (o, "created"));
  s->expires = json_integer_value (json_object_get (o, "expires"));
  s->memory_mib = json_integer_value (json_object_get (o, "memory_mib"));
  s->vms = json_strv (json_object_get (o, "vms"));
  s->owner_uid = json_integer_value (json_object_get (o, "owner_uid"));
  s->owner = jstr (o, "owner");
  s->relay_pid = json_integer_value (json_object_get (o, "relay_pid"));
  s->relay_start = json_integer_value (json_object_get (o, "relay_start"));
  s->published = json_strv (json_object_get (o, "published"));
  json_decref (o);
  return s;
}

void
lab_state_free (struct lab_state *s)
{
  if (!s)
    return;
  free (s->dir);
  free (s->lab);
  free (s->file);
  free (s->kind);
  free (s->uri);
  free (s->host);
  free (s->ssh);
  free (s->ssh_ctl);
  free (s->netns);
  free (s->report_dir);
  free (s->status);
  strv_free (s->vms);
  free (s->owner);
  strv_free (s->published);
  free (s);
}

static int
cmp_state (const void *a, const void *b)
{
  const struct lab_state *x = *(struct lab_state *const *) a;
  const struct lab_state *y = *(struct lab_state *const *) b;

  if (x->created != y->created)
    return x->created < y->created ? -1 : 1;
  return strcmp (x->id, y->id);
}

struct lab_state **
lab_state_list (const char *home)
{
  CLEANUP_FREE char *dir = xasprintf ("%s/labs", home);
  DIR *d = opendir (dir);
  struct dirent *e;
  struct lab_state **v = xcalloc (1, sizeof *v);
  size_t len = 1;                 /* with the terminating NULL */

  if (!d)
    return v;
  while ((e = readdir (d))) {
    struct lab_state *s;
    if (e->d_name[0] == '.')
      continue;
    s = lab_state_load (home, e->d_name);
    if (!s) {
      /* A directory without a readable state: a run that died before it
       * wrote one.  Keep it listed so reap removes it. */
      s = xcalloc (1, sizeof *s);
      snprintf (s->id, sizeof s->id, "%.7s", e->d_name);
      s->dir = xasprintf ("%s/%s", dir, e->d_name);
      s->status = xstrdup ("broken");
      s->vms = xcalloc (1, sizeof *s->vms);
    }
    v[len - 1] = s;
    ARRAY_PUSH (v, len);          /* the new terminating NULL */
  }
  closedir (d);
  qsort (v, len - 1, sizeof *v, cmp_state);
  return v;
}

void
lab_state_list_free (struct lab_state **v)
{
  size_t i;

  if (!v)
    return;
  for (i = 0; v[i]; i++)
    lab_state_free (v[i]);
  free (v);
}

bool
lab_state_alive (const struct lab_state *s, time_t now)
{
  if (s->status && strcmp (s->status, "broken") == 0)
    return false;
  if (s->expires)
    return now < s->expires;
  if (s->pid <= 0)
    return false;
  return pid_start_time (s->pid) == s->pid_start && s->pid_start != 0;
}

uint64_t
lab_default_budget_mib (void)
{
  FILE *f = fopen ("/proc/meminfo", "re");
  char line[256];
  unsigned long long kb = 0;

  if (f) {
    while (fgets (line, sizeof line, f))
      if (sscanf (line, "MemTotal: %llu kB", &kb) == 1)
        break;
    fclose (f);
  }
  return kb ? kb / 1024 / 2 : 4096;
}

int
lab_sandboxes_count (const char *home, uint64_t *memory_mib)
{
  struct lab_state **v = lab_state_list (home);
  time_t now = time (NULL);
  uint64_t sum = 0;
  int n = 0;
  size_t i;

  for (i = 0; v[i]; i++)
    if (v[i]->kind && strcmp (v[i]->kind, "sandbox") == 0 &&
        lab_state_alive (v[i], now)) {
      n++;
      sum += v[i]->memory_mib;
    }
  lab_state_list_free (v);
  if (memory_mib)
    *memory_mib = sum;
  return n;
}

/* The catalog name of the host s's VMs run on ("" for this host). */
static const char *
state_host_name (const struct lab_state *s)
{
  return s->ssh && s->ssh[0] && s->host ? s->host : "";
}

/* Memory reserved by live runs on host ("" this host; each host has a
 * budget of its own: the VMs of a lab on another host use its memory)
 * other than skip_id. */
static uint64_t
reserved_mib (const char *home, const char *host, const char *skip_id)
{
  struct lab_state **v = lab_state_list (home);
  time_t now = time (NULL);
  uint64_t sum = 0;
  size_t i;

  for (i = 0; v[i]; i++)
    if ((!skip_id || strcmp (v[i]->id, skip_id) != 0) && lab_state_alive (v[i], now) &&
        strcmp (state_host_name (v[i]), host) == 0)
      sum += v[i]->memory_mib;
  lab_state_list_free (v);
  return sum;
}

static void
random_id (char out[8])
{
  unsigned char b[3] = { 0 };
  int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);

  if (fd == -1 || read (fd, b, 3) != 3) {
    unsigned v = (unsigned) getpid () ^ (unsigned) time (NULL);
    b[0] = v; b[1] = v >> 8; b[2] = v >> 16;
  }
  if (fd != -1)
    close (fd);
  snprintf (out, 8, "%02x%02x%02x", b[0], b[1], b[2]);
}

/* A note to the caller's callback, else stderr. */
static void
note (const struct lab_state_opts *o, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
static void
note (const struct lab_state_opts *o, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  report_linev (o->note, o->note_opaque, "", fmt, ap);
  va_end (ap);
}

/* Take the budget lock (lockfd, on lockp) once memory_mib fits next to
 * the live runs, waiting for them as o->wait allows.  0 with the lock
 * held, -1 (error set) without. */
static int
lock_budget (const struct lab_state_opts *o, int lockfd, const char *lockp)
{
  double start = now_monotonic ();
  bool told = false;
  const char *host = o->host && lab_host_remote (o->host) ? o->host->name : "";
  CLEANUP_FREE char *of = host[0] ? xasprintf (" of host %s", host) : xstrdup ("");

  for (;;) {
    uint64_t used;
    if (flock (lockfd, LOCK_EX) == -1 && errno != EINTR) {
      error_set (errno, "flock %s", lockp);
      return -1;
    }
    used = reserved_mib (o->home, host, NULL);
    if (used + o->memory_mib <= o->budget_mib)
      return 0;
    flock (lockfd, LOCK_UN);
    if (o->wait == 0) {
      error_setx ("the memory budget%s is taken: %" PRIu64 " of %" PRIu64
                  " MiB used by other lab runs, this one needs %" PRIu64
                  " MiB (--memory-budget; --wait to wait for it)", of, used,
                  o->budget_mib, o->memory_mib);
      return -1;
    }
    if (o->wait > 0 && now_monotonic () - start > o->wait) {
      error_setx ("the memory budget%s is taken: %" PRIu64 " of %" PRIu64
                  " MiB used by other lab runs, this one needs %" PRIu64
                  " MiB; gave up after %.0f s", of, used, o->budget_mib, o->memory_mib,
                  o->wait);
      return -1;
    }
    if (!told) {
      note (o, "waiting for memory%s: %" PRIu64 " of %" PRIu64 " MiB in use by other "
            "lab runs, this one needs %" PRIu64 " MiB", of, used, o->budget_mib,
            o->memory_mib);
      told = true;
    }
    if (lab_sleep (1) == -1) {
      error_setx ("interrupted while waiting for the memory budget");
      return -1;
    }
  }
}

/* Under the budget lock: a fresh id whose directory (made here) and
 * bridge do not exist yet.  -1 with the error set. */
static int
make_run_dir (struct lab_state *s, const char *labs)
{
  int tries;

  for (tries = 0; tries < 100; tries++) {
    char br[32];
    random_id (s->id);
    free (s->dir);
    s->dir = xasprintf ("%s/%s", labs, s->id);
    snprintf (br, sizeof br, "/sys/class/net/bbl%sbr", s->id);
    if (access (br, F_OK) == 0)
      continue;
    if (mkdir (s->dir, 0700) == 0)
      return 0;
    if (errno != EEXIST) {
      error_set (errno, "mkdir %s", s->dir);
      return -1;
    }
  }
  error_setx ("no free lab id in %s", labs);
  return -1;
}

/* The user name of uid, else the number (malloc'd). */
static char *
owner_name (uid_t uid)
{
  struct passwd pw, *res = NULL;
  char buf[4096];

  if (getpwuid_r (uid, &pw, buf, sizeof buf, &res) == 0 && res)
    return xstrdup (res->pw_name);
  return xasprintf ("%u", (unsigned) uid);
}

/* Under the budget lock: may one more sandbox start?  -1 with the error
 * naming the count if o->max_sandboxes are up already. */
static int
sandbox_room (const struct lab_state_opts *o)
{
  uint64_t mib;
  int n;

  if (o->max_sandboxes <= 0 || strcmp (o->kind, "sandbox") != 0)
    return 0;
  n = lab_sandboxes_count (o->home, &mib);
  if (n < o->max_sandboxes)
    return 0;
  error_setx ("%d sandbox%s up already (%" PRIu64 " MiB), the most allowed "
              "(--max-sandboxes %d): 'bootback lab down ID' one first", n,
              n == 1 ? " is" : "es are", mib, o->max_sandboxes);
  return -1;
}

/* Under the budget lock: the run's directory and state, owned by this
 * process.  NULL with the error set. */
static struct lab_state *
write_state (const struct lab_state_opts *o, const char *labs)
{
  struct lab_state *s = xcalloc (1, sizeof *s);

  if (make_run_dir (s, labs) == -1)
    goto fail;
  s->lab = xstrdup (o->lab);
  s->file = o->file ? xstrdup (o->file) : NULL;
  s->kind = xstrdup (o->kind);
  s->uri = o->uri ? xstrdup (o->uri) : NULL;
  if (lab_host_remote (o->host)) {
    s->host = xstrdup (o->host->name);
    s->ssh = xstrdup (o->host->ssh);
  }
  s->pid = getpid ();
  s->pid_start = pid_start_time (s->pid);
  s->owner_uid = getuid ();
  s->owner = owner_name (s->owner_uid);
  s->created = time (NULL);
  s->memory_mib = o->memory_mib;
  s->netns = xasprintf ("bootback-lab-%s", s->id);
  s->status = xstrdup ("starting");
  s->vms = xcalloc (1, sizeof *s->vms);
  if (lab_state_save (s) == -1) {
    ERROR_SAVE (e);
    rmdir (s->dir);
    ERROR_RESTORE (e);
    goto fail;
  }
  return s;
 fail:
  lab_state_free (s);
  return NULL;
}

struct lab_state *
lab_state_open (const struct lab_state_opts *o)
{
  CLEANUP_FREE char *labs = xasprintf ("%s/labs", o->home);
  CLEANUP_FREE char *lockp = xasprintf ("%s/labs/.budget.lock", o->home);
  CLEANUP_CLOSE int lockfd = -1;
  struct lab_state *s;

  if (o->memory_mib > o->budget_mib) {
    error_setx ("the lab needs %" PRIu64 " MiB of memory, more than the whole "
                "budget of %" PRIu64 " MiB (--memory-budget)", o->memory_mib,
                o->budget_mib);
    return NULL;
  }
  if (mkdir_private (o->home) == -1 || mkdir_private (labs) == -1)
    return NULL;
  lockfd = open_private (lockp, O_RDWR);
  if (lockfd == -1) {
    error_set (errno, "open %s", lockp);
    return NULL;
  }
  if (lock_budget (o, lockfd, lockp) == -1)
    return NULL;
  s = sandbox_room (o) == -1 ? NULL : write_state (o, labs);
  flock (lockfd, LOCK_UN);
  return s;
}

struct lab_state *
lab_state_new (const char *home, const char *lab, const char *file,
               const char *kind, const char *uri, uint64_t memory_mib,
               uint64_t budget_mib, double wait)
{
  const struct lab_state_opts o = {
    .home = home, .lab = lab, .file = file, .kind = kind, .uri = uri,
    .memory_mib = memory_mib, .budget_mib = budget_mib, .wait = wait,
  };

  return lab_state_open (&o);
}

void
lab_state_add_vm (struct lab_state *s, const char *name, const char *domain,
                  const char *address)
{
  strv_push (&s->vms, NULL,
             xasprintf ("%s %s %s", name, domain, address && *address ? address : "-"));
}

struct sess_find {
  const char *prefix;
  int64_t *ids;
  size_t n;
};

static int
sess_match (void *opaque, const struct instant_session *s)
{
  struct sess_find *f = opaque;

  if (strncmp (s->name, f->prefix, strlen (f->prefix)) != 0 ||
      s->state == INSTANT_STATE_STOPPED || s->state == INSTANT_STATE_MIGRATED)
    return 0;
  *ARRAY_PUSH (f->ids, f->n) = s->id;
  return 0;
}

/* Stop the instant sessions of a run (name prefix), discarding overlays.
 * home is the run directory's grandparent. */
static int
stop_sessions (const struct lab_state *s, const char *prefix)
{
  CLEANUP_FREE char *home = xstrdup (s->dir);
  struct sess_find f = { .prefix = prefix };
  struct catalog *cat;
  char *slash;
  size_t i;
  int r = 0;

  /* dir = HOME/labs/ID */
  for (i = 0; i < 2; i++)
    if ((slash = strrchr (home, '/')))
      *slash = '\0';
  {
    CLEANUP_FREE char *db = xasprintf ("%s/catalog.db", home);
    if (access (db, F_OK) == -1)
      return 0;                   /* no catalog: no sessions */
  }
  cat = catalog_open (home);
  if (!cat)
    return -1;
  if (instant_session_list (cat, sess_match, &f) == -1)
    r = -1;
  for (i = 0; i < f.n; i++)
    if (instant_stop (cat, f.ids[i], s->uri && *s->uri ? s->uri : NULL, true) == -1)
      r = -1;
  free (f.ids);
  catalog_close (cat);
  return r;
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  if (flag == FTW_DP || flag == FTW_D)
    return rmdir (path) == -1 && errno != ENOENT ? -1 : 0;
  return unlink (path) == -1 && errno != ENOENT ? -1 : 0;
}

void
lab_state_host (const struct lab_state *s, struct lab_host *h)
{
  memset (h, 0, sizeof *h);
  if (s->ssh && s->ssh[0]) {
    snprintf (h->name, sizeof h->name, "%s", s->host ? s->host : "");
    snprintf (h->ssh, sizeof h->ssh, "%s", s->ssh);
  }
}

/* Remove s's network where it is (its own ssh connection to another
 * host, closed again). */
static int
state_net_destroy (const struct lab_state *s)
{
  struct lab_host h;
  struct lab_net n;
  int r;

  lab_state_host (s, &h);
  lab_net_init (&n, s->id, NULL);
  n.host = &h;
  if (lab_host_open (&h) == -1) {
    error_prefix ("its network on host %s is left", h.name);   /* callers name the lab */
    return -1;
  }
  r = lab_net_destroy (&n);
  lab_host_close (&h);
  /* the run's own connection, if its process died holding it */
  if (s->ssh_ctl && lab_host_ctl_valid (s->ssh_ctl)) {
    snprintf (h.ctl, sizeof h.ctl, "%s", s->ssh_ctl);
    lab_host_close (&h);
  }
  return r;
}

int
lab_state_teardown (struct lab_state *s, virConnectPtr conn)
{
  char prefix[32];
  CLEANUP_VIR_CONNECT virConnectPtr own = NULL;
  int r = 0;

  /* 0. The relay of its published ports (invariant 4): it holds the
   * namespace open while it lives. */
  if (lab_publish_stop (s) == -1)
    r = -1;
  /* 1. Instant sessions (domain, supervisor, nbdkit, sockets, overlays),
   * then any other domain of the run (their taps go with them). */
  virt_init ();
  lab_vm_prefix (s->id, prefix);
  if (s->dir && stop_sessions (s, prefix) == -1)
    r = -1;
  if (!conn)
    conn = own = virt_connect (s->uri);
  if (!conn) {
    error_setx ("cannot reach libvirt (%s) to destroy its VMs: %s",
                s->uri && *s->uri ? s->uri : "default URI", virt_failure ());
    r = -1;
  }
  else if (lab_vm_destroy_prefix (conn, prefix) < 0)
    r = -1;
  /* 2. The network, on its host. */
  if (state_net_destroy (s) == -1)
    r = -1;
  /* 3. Overlays, console logs, the state itself: last, so that a failed
   * teardown can be tried again. */
  if (r == 0 && s->dir &&
      nftw (s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1 && errno != ENOENT) {
    error_set (errno, "remove %s", s->dir);
    r = -1;
  }
  return r;
}
