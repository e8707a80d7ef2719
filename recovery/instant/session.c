/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instant-recovery sessions: start, list, re-attach, stop.
 *
 * A session is a row of the catalog's sessions table (its JSON data column
 * holds what only this library reads: UUID, directories, disks, sockets,
 * overlays, timings) plus, on the host: a directory HOME/sessions/ID (0700:
 * sockets, pid files, logs, the guest's console), one qcow2 overlay per
 * disk in the overlay directory, a supervisor daemon (`bootback supervise
 * ID`, supervise.c) keeping two nbdkit processes per disk serving, and a
 * libvirt domain.
 *
 * Per disk, QEMU reads the backup through two nbdkits: a "front" on the
 * socket named in the overlay (stock nbdkit: nbd plugin + retry filter) and
 * the bootback plugin's nbdkit behind it.  libvirt 9.0 cannot pass QEMU's
 * NBD reconnect-delay, and without it QEMU fails the guest's reads while a
 * restarted server comes back; the front holds QEMU's connection instead
 * and, when the bootback nbdkit dies, reconnects to its restarted
 * successor and retries the read.  The bootback nbdkit (the code with the
 * repository, cache and decoders) can die at any moment; the front is
 * stock nbdkit code and read-only.
 *
 * State diagram:
 *
 *                 instant_start
 *                      |
 *                      v
 *                  starting ---- any failure (all undone) ----> failed
 *                      |
 *                      | domain started
 *                      v
 *       +--------> running <------- copy failed / aborted / migrate died
 *       |           |     |                          |
 *       |   stop    |     | migrate (CAS)            |
 *       |           |     v                          |
 *       |           |  migrating --------------------+
 *       |           |     |
 *       |           |     | every disk pivoted, definition updated
 *       |           v     v
 *       |      stopped   migrated
 *       |
 *   reattach (a new supervisor; the state does not change)
 *
 * stopped, migrated and failed are final.  `instant stop` of a failed or
 * starting session (a crashed start) cleans up what the row names.
 * session_set_state is the one place a state changes, and it allows
 * exactly these moves (anything else is refused with an error naming both
 * states):
 *
 *   starting  -> running, failed, stopped (stop of a crashed start)
 *   running   -> migrating, stopped
 *   migrating -> running, migrated, stopped (its migrate process died)
 *   failed    -> stopped (stop cleans up what the row names)
 *   stopped   -> stopped (stop --discard of a stopped session)
 *   migrated  -> (none)
 *
 * The row stores the state as text (instant_state_name), the same text
 * as before the enum, so sessions of older versions load unchanged.
 *
 * Invariants:
 *  1. The row exists, in state "starting", before anything is created on
 *     the host, and every path and name is recorded in it before the thing
 *     is created: whatever a crash leaves, the row names it.
 *  2. While the state is running or migrating, every disk's overlay exists
 *     and the supervisor (or, after a crash of it, the next reattach) keeps
 *     both nbdkits of every disk serving on their fixed sockets.
 *  3. The overlays and the nbdkits of a session are removed only when no
 *     domain can read them any more: after the domain is destroyed (stop,
 *     failed start) or after every disk's pivot completed and the
 *     persistent definition names the production images (migrated).
 *  4. One migration at a time: running -> migrating is a compare-and-set
 *     on the row, which records the migrating process's pid; a reattach
 *     finding that pid dead aborts the block jobs and goes back to running.
 *  5. A failed migration leaves every disk on its overlay (block jobs
 *     aborted without pivot) and removes the images it created; an
 *     existing disk it wrote (migrate --onto) gets its content from before
 *     back (delta.c), and while that has not succeeded the state stays
 *     migrating (no migrate process), so reattach and stop try again.
 *  6. Sockets live in the session's 0700 directory; a supervisor removes a
 *     stale socket before it starts an nbdkit on it.
 *  7. Only domains this library defined are destroyed: by UUID, and only if
 *     the name still matches and its disks are exactly the session's
 *     overlays (with --keep-identity the name and UUID are production's,
 *     and another domain may have taken them since).
 *  8. The point is held (repo_hold_add: a file holds/NAME in the repository,
 *     its name recorded in the row first) from before its nbdkit opens it
 *     until nothing needs it: the overlays are discarded (stop --discard, a
 *     failed start) or the session migrated.  prune keeps a held point, so
 *     the guest never loses its disk to retention.
 *  9. Undo deletes only what this session made.  An overlay's path is in
 *     the row before it exists (invariant 1), but it counts as the
 *     session's only once its creation succeeded and the row says so
 *     (overlay_made, saved at once); a failed start, stop --discard and
 *     stop of a crashed start delete no file or volume that took the name
 *     meanwhile (the name was found free, then another made it).  So for a
 *     remote migration's new volumes (target_made), which the recovery of
 *     a dead migrate deletes through the URI the migration used
 *     (migrate_uri).  A crash between a creation and its row leaks the
 *     thing (the row names its path), never destroys another's data.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <jansson.h>

#include "recovery/instant/instant-int.h"
#include "recovery/repo/repo.h"
#include "recovery/virt/storage.h"

#define SOCKET_MAX 107
#define DEFAULT_MIN_FREE (64ull << 20)

/* ---- states ------------------------------------------------------------------ */

static const char *const state_names[] = {
  [INSTANT_STATE_STARTING] = "starting",
  [INSTANT_STATE_RUNNING] = "running",
  [INSTANT_STATE_MIGRATING] = "migrating",
  [INSTANT_STATE_MIGRATED] = "migrated",
  [INSTANT_STATE_STOPPED] = "stopped",
  [INSTANT_STATE_FAILED] = "failed",
};
#define NSTATES (sizeof state_names / sizeof state_names[0])

const char *
instant_state_name (enum instant_state state)
{
  if ((size_t) state < NSTATES)
    return state_names[state];
  return "unknown";
}

/* The state stored as text; a text no version wrote reads as failed (a
 * final state: nothing acts on such a row but stop). */
static enum instant_state
state_parse (const char *text)
{
  size_t i;

  for (i = 0; text && i < NSTATES; i++)
    if (strcmp (text, state_names[i]) == 0)
      return (enum instant_state) i;
  return INSTANT_STATE_FAILED;
}

/* The diagram at the top of this file, as a table: allowed[from][to]. */
static const bool allowed[NSTATES][NSTATES] = {
  [INSTANT_STATE_STARTING] = {
    [INSTANT_STATE_RUNNING] = true, [INSTANT_STATE_FAILED] = true,
    [INSTANT_STATE_STOPPED] = true,
  },
  [INSTANT_STATE_RUNNING] = {
    [INSTANT_STATE_MIGRATING] = true, [INSTANT_STATE_STOPPED] = true,
  },
  [INSTANT_STATE_MIGRATING] = {
    [INSTANT_STATE_RUNNING] = true, [INSTANT_STATE_MIGRATED] = true,
    [INSTANT_STATE_STOPPED] = true,
  },
  [INSTANT_STATE_FAILED] = { [INSTANT_STATE_STOPPED] = true },
  [INSTANT_STATE_STOPPED] = { [INSTANT_STATE_STOPPED] = true },
};

int
session_set_state (struct instant_session *s, enum instant_state to)
{
  if ((size_t) s->state >= NSTATES || (size_t) to >= NSTATES ||
      !allowed[s->state][to]) {
    error_setx ("session %" PRId64 " cannot go from %s to %s", s->id,
                instant_state_name (s->state), instant_state_name (to));
    return -1;
  }
  s->state = to;
  return 0;
}

/* ---- rows <-> struct instant_session --------------------------------------- */

/* A string of the row, into a field of s: what was stored fitted when it
 * was stored (paths go through path_set, names are validated first). */
static void
copy (char *dst, size_t len, const char *src)
{
  text_set (dst, len, "%s", src ? src : "");
}

void
text_set (char *dst, size_t len, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (dst, len, fmt, ap);
  va_end (ap);
}

int
path_set (char *dst, size_t len, const char *fmt, ...)
{
  CLEANUP_FREE char *path = NULL;
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vasprintf (&path, fmt, ap);
  va_end (ap);
  if (n < 0)
    abort ();                   /* out of memory, as xasprintf */
  if ((size_t) n >= len) {
    error_set (ENAMETOOLONG, "path %s is longer than %zu bytes", path, len - 1);
    return -1;
  }
  memcpy (dst, path, n + 1);
  return 0;
}

static const char *
jstr (json_t *o, const char *k)
{
  const char *s = json_string_value (json_object_get (o, k));
  return s ? s : "";
}

static void
from_row (const struct catalog_session *r, struct instant_session *s)
{
  json_t *d, *disks, *e;
  json_error_t jerr;
  size_t i;

  memset (s, 0, sizeof *s);
  s->id = r->id;
  copy (s->name, sizeof s->name, r->name);
  copy (s->vm, sizeof s->vm, r->vm);
  copy (s->point, sizeof s->point, r->point);
  copy (s->repo, sizeof s->repo, r->repo);
  copy (s->uri, sizeof s->uri, r->uri);
  s->state = state_parse (r->state);
  copy (s->message, sizeof s->message, r->message);
  s->supervisor_pid = r->supervisor_pid;
  s->created = r->created;
  s->updated = r->updated;
  s->t_running = s->t_heartbeat = -1;
  d = json_loads (r->data ? r->data : "{}", 0, &jerr);
  if (!d)
    return;
  copy (s->uuid, sizeof s->uuid, jstr (d, "uuid"));
  copy (s->dir, sizeof s->dir, jstr (d, "dir"));
  copy (s->overlay_dir, sizeof s->overlay_dir, jstr (d, "overlay_dir"));
  copy (s->console_log, sizeof s->console_log, jstr (d, "console_log"));
  /* a row of a version before it: the default minimum */
  s->overlay_floor = json_object_get (d, "overlay_floor")
    ? (uint64_t) json_integer_value (json_object_get (d, "overlay_floor")) : DEFAULT_MIN_FREE;
  s->transient = json_is_true (json_object_get (d, "transient"));
  s->read_retries = json_integer_value (json_object_get (d, "read_retries"));
  copy (s->hold, sizeof s->hold, jstr (d, "hold"));
  copy (s->listen, sizeof s->listen, jstr (d, "listen"));
  copy (s->allow, sizeof s->allow, jstr (d, "allow"));
  copy (s->storage_pool, sizeof s->storage_pool, jstr (d, "storage_pool"));
  copy (s->tls_dir, sizeof s->tls_dir, jstr (d, "tls_dir"));
  s->insecure = json_is_true (json_object_get (d, "insecure"));
  s->migrate_pid = json_integer_value (json_object_get (d, "migrate_pid"));
  copy (s->migrate_uri, sizeof s->migrate_uri, jstr (d, "migrate_uri"));
  if (json_is_number (json_object_get (d, "t_running")))
    s->t_running = json_number_value (json_object_get (d, "t_running"));
  if (json_is_number (json_object_get (d, "t_heartbeat")))
    s->t_heartbeat = json_number_value (json_object_get (d, "t_heartbeat"));
  disks = json_object_get (d, "disks");
  json_array_foreach (disks, i, e) {
    struct instant_session_disk *k;
    if (i >= INSTANT_MAX_DISKS)
      break;
    k = &s->disks[s->ndisks++];
    copy (k->name, sizeof k->name, jstr (e, "name"));
    copy (k->target, sizeof k->target, jstr (e, "target"));
    copy (k->socket, sizeof k->socket, jstr (e, "socket"));
    copy (k->backend_socket, sizeof k->backend_socket, jstr (e, "backend_socket"));
    copy (k->overlay, sizeof k->overlay, jstr (e, "overlay"));
    copy (k->migrated_to, sizeof k->migrated_to, jstr (e, "migrated_to"));
    k->size = json_integer_value (json_object_get (e, "size"));
    copy (k->index_sha256, sizeof k->index_sha256, jstr (e, "index_sha256"));
    k->onto = json_is_true (json_object_get (e, "onto"));
    k->port = json_integer_value (json_object_get (e, "port"));
    /* A row of a version before these flags: what it names was made. */
    k->overlay_made = json_object_get (e, "overlay_made")
      ? json_is_true (json_object_get (e, "overlay_made")) : k->overlay[0] != '\0';
    k->target_made = json_object_get (e, "target_made")
      ? json_is_true (json_object_get (e, "target_made")) : k->migrated_to[0] != '\0';
  }
  json_decref (d);
}

static char *
data_json (const struct instant_session *s)
{
  json_t *d = json_object (), *disks = json_array ();
  char *out;
  size_t i;

  json_object_set_new (d, "uuid", json_string (s->uuid));
  json_object_set_new (d, "dir", json_string (s->dir));
  json_object_set_new (d, "overlay_dir", json_string (s->overlay_dir));
  json_object_set_new (d, "console_log", json_string (s->console_log));
  json_object_set_new (d, "overlay_floor", json_integer ((json_int_t) s->overlay_floor));
  json_object_set_new (d, "transient", json_boolean (s->transient));
  if (s->read_retries > 0)
    json_object_set_new (d, "read_retries", json_integer (s->read_retries));
  json_object_set_new (d, "hold", json_string (s->hold));
  json_object_set_new (d, "migrate_pid", json_integer (s->migrate_pid));
  if (s->migrate_uri[0])
    json_object_set_new (d, "migrate_uri", json_string (s->migrate_uri));
  if (session_remote (s)) {
    json_object_set_new (d, "listen", json_string (s->listen));
    json_object_set_new (d, "allow", json_string (s->allow));
    json_object_set_new (d, "storage_pool", json_string (s->storage_pool));
    json_object_set_new (d, "tls_dir", json_string (s->tls_dir));
    json_object_set_new (d, "insecure", json_boolean (s->insecure));
  }
  if (s->t_running >= 0)
    json_object_set_new (d, "t_running", json_real (s->t_running));
  if (s->t_heartbeat >= 0)
    json_object_set_new (d, "t_heartbeat", json_real (s->t_heartbeat));
  for (i = 0; i < s->ndisks; i++) {
    const struct instant_session_disk *k = &s->disks[i];
    json_array_append_new (disks, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                                             "name", k->name, "target", k->target,
                                             "socket", k->socket,
                                             "backend_socket", k->backend_socket,
                                             "overlay", k->overlay,
                                             "migrated_to", k->migrated_to,
                                             "size", (json_int_t) k->size));
    if (k->index_sha256[0])
      json_object_set_new (json_array_get (disks, i), "index_sha256",
                           json_string (k->index_sha256));
    if (k->onto)
      json_object_set_new (json_array_get (disks, i), "onto", json_true ());
    if (k->port > 0)
      json_object_set_new (json_array_get (disks, i), "port", json_integer (k->port));
    json_object_set_new (json_array_get (disks, i), "overlay_made",
                         json_boolean (k->overlay_made));
    json_object_set_new (json_array_get (disks, i), "target_made",
                         json_boolean (k->target_made));
  }
  json_object_set_new (d, "disks", disks);
  out = json_dumps (d, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (d);
  return out;
}

int
session_save (struct catalog *cat, const struct instant_session *s,
              const char *from_state)
{
  CLEANUP_FREE char *data = data_json (s);
  struct catalog_session r = {
    .id = s->id, .name = s->name, .state = instant_state_name (s->state),
    .supervisor_pid = s->supervisor_pid, .data = data, .message = s->message,
  };

  return catalog_session_update (cat, &r, from_state);
}

struct load_ctx {
  struct instant_session *s;
  bool found;
};

static int
load_one (void *opaque, const struct catalog_session *r)
{
  struct load_ctx *l = opaque;

  from_row (r, l->s);
  l->found = true;
  return 0;
}

int
session_load (struct catalog *cat, int64_t id, struct instant_session *s)
{
  struct load_ctx l = { .s = s };

  if (catalog_session_list (cat, id, load_one, &l) == -1)
    return -1;
  if (!l.found) {
    error_setx ("no session %" PRId64 " (bootback sessions)", id);
    return -1;
  }
  return 0;
}

struct find_ctx {
  const char *name;
  struct instant_session *s, tmp;
  bool found;
  instant_session_fn fn;
  void *opaque;
};

static int
find_name (void *opaque, const struct catalog_session *r)
{
  struct find_ctx *f = opaque;

  if (strcmp (r->name, f->name) == 0) {
    from_row (r, f->s);
    f->found = true;
  }
  return 0;
}

int
instant_session_get (struct catalog *cat, const char *key,
                     struct instant_session *s)
{
  struct find_ctx f = { .name = key, .s = s };
  char *end;
  long long id;

  errno = 0;
  id = strtoll (key, &end, 10);
  if (*key && !*end && errno == 0 && id > 0)
    return session_load (cat, id, s);
  if (catalog_session_list (cat, 0, find_name, &f) == -1)
    return -1;
  if (!f.found) {
    error_setx ("no session '%s' (bootback sessions lists them)", key);
    return -1;
  }
  return 0;
}

static int
list_one (void *opaque, const struct catalog_session *r)
{
  struct find_ctx *f = opaque;

  from_row (r, &f->tmp);
  return f->fn (f->opaque, &f->tmp);
}

int
instant_session_list (struct catalog *cat, instant_session_fn fn, void *opaque)
{
  struct find_ctx *f = xcalloc (1, sizeof *f);
  int r;

  f->fn = fn;
  f->opaque = opaque;
  r = catalog_session_list (cat, 0, list_one, f);
  free (f);
  return r;
}

/* ---- start ------------------------------------------------------------------- */

static int
parse_network (const char *spec, enum instant_net *net, const char **src)
{
  *src = NULL;
  if (!spec) {
    *net = INSTANT_NET_KEEP;
    return 0;
  }
  if (strcmp (spec, "none") == 0) {
    *net = INSTANT_NET_NONE;
    return 0;
  }
  if (strncmp (spec, "bridge:", 7) == 0) {
    *net = INSTANT_NET_BRIDGE;
    *src = spec + 7;
  }
  else if (strncmp (spec, "network:", 8) == 0) {
    *net = INSTANT_NET_NETWORK;
    *src = spec + 8;
  }
  else {
    *net = INSTANT_NET_NETWORK;
    *src = spec;
  }
  if (!**src || strchr (*src, '/') || strlen (*src) > 200) {
    error_setx ("--network %s: not a valid network or bridge name", spec);
    return -1;
  }
  return 0;
}

static int
rm_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  remove (path);
  return 0;
}

static void
rm_rf (const char *path)
{
  if (path && *path)
    nftw (path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* o->overlay_min_free: 0 is the default, < 0 no minimum. */
static uint64_t
min_free (const struct instant_opts *o)
{
  if (o->overlay_min_free > 0)
    return o->overlay_min_free;
  return o->overlay_min_free < 0 ? 0 : DEFAULT_MIN_FREE;
}

static int
check_overlay_dir (const char *dir, uint64_t need)
{
  struct statvfs sv;
  uint64_t avail;
  char a[32], b[32];

  if (mkdir_p_private (dir) == -1) {
    error_prefix ("overlay directory");
    return -1;
  }
  /* qemu-img and libvirt open the overlays by name (libvirt chowns them):
   * nobody else may rename or replace them there */
  CLEANUP_FREE char *probe = xasprintf ("%s/overlay", dir);
  if (dir_chain_private (probe, NULL, 0) == -1) {
    error_prefix ("overlay directory");
    return -1;
  }
  if (access (dir, W_OK) == -1) {
    error_set (errno, "overlay directory %s is not writable", dir);
    return -1;
  }
  if (statvfs (dir, &sv) == -1) {
    error_set (errno, "statvfs: %s", dir);
    return -1;
  }
  avail = (uint64_t) sv.f_bavail * sv.f_frsize;
  if (avail < need) {
    error_set (ENOSPC, "no space for the overlay: %s has %s free, the guest's "
               "writes need at least %s (BOOTBACK_OVERLAY_MIN_FREE; or "
               "--overlay-dir DIR elsewhere)", dir,
               human_size (avail, a, sizeof a), human_size (need, b, sizeof b));
    return -1;
  }
  return 0;
}

static int
create_overlay (const struct instant_session_disk *k)
{
  CLEANUP_FREE char *backing = xasprintf ("nbd+unix:///?socket=%s", k->socket);
  char size[32], out[2048];
  char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                   "-b", backing, "-u", (char *) k->overlay, size, NULL };
  int r;

  snprintf (size, sizeof size, "%" PRIu64, k->size);
  /* the guest's writes: 0600 */
  if (create_private (k->overlay) == -1)
    return -1;
  r = run_command (argv, out, sizeof out);
  if (r != 0)
    unlink (k->overlay);
  if (r == -1)
    return -1;
  if (r != 0) {
    error_setx ("create overlay %s: %s", k->overlay, out);
    return -1;
  }
  return 0;
}

void
session_warn (const struct instant_caller *w, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  report_linev (w ? w->fn : NULL, w ? w->opaque : NULL, "warning: ", fmt, ap);
  va_end (ap);
}

/* What a failed start or a stop leaves to undo. */
static void
teardown (virConnectPtr conn, struct instant_session *s, bool remove_domain,
          bool discard, const struct instant_caller *w)
{
  size_t i;

  ERROR_SAVE (saved);
  if (conn && remove_domain && s->uuid[0] &&
      drv_remove_domain (conn, s) == -1)
    session_warn (w, "%s", error_msg ());
  supervisor_stop (s);
  if (discard) {
    if (session_remote (s))
      remote_overlays_delete (conn, s, w);
    for (i = 0; i < s->ndisks && !session_remote (s); i++)
      if (s->disks[i].overlay[0] && s->disks[i].overlay_made)
        unlink (s->disks[i].overlay);
    session_release_hold (s, w);
  }
  ERROR_RESTORE (saved);
}

static void
pass_note (const struct instant_opts *o, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

static void
pass_note (const struct instant_opts *o, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;

  if (!o->note)
    return;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  o->note (o->note_opaque, buf);
}

/* ---- the point's hold (invariant 8) ------------------------------------------ */

static int
hold_point (struct catalog *cat, struct repo *repo, struct instant_session *s,
            const struct instant_opts *o)
{
  struct repo_hold h = { 0 };
  char rp[PATH_MAX];

  drv_new_uuid (s->hold);
  if (session_save (cat, s, NULL) == -1)
    return -1;
  copy (h.name, sizeof h.name, s->hold);
  copy (h.vm, sizeof h.vm, s->vm);
  copy (h.id, sizeof h.id, s->point);
  if (path_set (h.home, sizeof h.home, "%s", realpath (o->home, rp) ? rp : o->home) == -1)
    return -1;
  h.session = s->id;
  if (o->owner)
    text_set (h.owner, sizeof h.owner, "%s (instant session %" PRId64 ")",
              o->owner, s->id);
  else
    text_set (h.owner, sizeof h.owner, "instant session %" PRId64 " (%s)",
              s->id, s->name);
  if (repo_hold_add (repo, &h) == -1) {
    s->hold[0] = '\0';
    if (!repo_hold_unwritable (error_errno ()))
      return -1;
    /* A read-only repository: recovery comes first. */
    pass_note (o, "%s@%s runs without a hold (%s): a prune may remove it "
               "meanwhile", s->vm, s->point, error_msg ());
    error_clear ();
  }
  return 0;
}

void
session_release_hold (struct instant_session *s, const struct instant_caller *w)
{
  struct repo *r;

  if (!s->hold[0])
    return;
  ERROR_SAVE (saved);
  r = repo_open_with (s->repo, w ? w->repo_open : NULL);
  if (r && repo_hold_remove (r, s->hold) == 0)
    s->hold[0] = '\0';
  else
    session_warn (w, "the hold of %s@%s (%s/holds/%s) stays: %s", s->vm, s->point,
                  s->repo, s->hold, error_msg ());
  repo_close (r);
  ERROR_RESTORE (saved);
}

static bool
overlays_kept (const struct instant_session *s)
{
  size_t i;

  for (i = 0; i < s->ndisks; i++)
    if (s->disks[i].overlay[0])
      return true;
  return false;
}

bool
instant_hold_stale (struct catalog *cat, const char *home,
                    const struct repo_hold *h)
{
  struct instant_session *s;
  struct load_ctx l = { 0 };
  char host[64] = "", a[PATH_MAX], b[PATH_MAX];
  bool stale;

  gethostname (host, sizeof host - 1);
  if (h->session <= 0 || strcmp (h->host, host) != 0 ||
      !realpath (home, a) || !realpath (h->home, b) || strcmp (a, b) != 0)
    return false;
  s = xmalloc (sizeof *s);
  l.s = s;
  ERROR_SAVE (saved);
  if (catalog_session_list (cat, h->session, load_one, &l) == -1)
    stale = false;                        /* cannot tell: keep it */
  else if (!l.found)
    stale = true;
  else
    stale = strcmp (s->hold, h->name) != 0 ||
      s->state == INSTANT_STATE_FAILED || s->state == INSTANT_STATE_MIGRATED ||
      (s->state == INSTANT_STATE_STOPPED && !overlays_kept (s));
  ERROR_RESTORE (saved);
  free (s);
  return stale;
}

/* o->domain_type ("" is none). */
static const char *
domain_type (const struct instant_opts *o)
{
  return o->domain_type && *o->domain_type ? o->domain_type : NULL;
}

/* What one step of instant_start hands to the next. */
struct start {
  struct catalog *cat;
  const struct instant_opts *o;
  struct instant_session *s;
  double t0;                    /* when the command began */
  enum instant_net net;
  const char *net_src;
  struct repo *repo;
  struct repo_manifest *m;
  char *saved_xml;              /* the point's domain XML, or NULL */
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  enum instant_identity ident;
  char uuid[UUID_STR_LEN + 1];  /* the domain's */
  virConnectPtr conn;
  virDomainPtr dom;
  bool row;                     /* the catalog row exists */
  bool domain_made;             /* libvirt may have a domain of ours */
};

/* Is m the point the caller approved (instant_opts.approved)?  -1 with
 * the error naming what changed if not. */
static int
point_approved (const struct repo_manifest *m, const struct repo_manifest *a)
{
  size_t i;

  if (strcmp (m->vm, a->vm) != 0 || strcmp (m->id, a->id) != 0) {
    error_setx ("the restore point is now %s@%s, not the %s@%s that was checked",
                m->vm, m->id, a->vm, a->id);
    return -1;
  }
  if (m->ndisks != a->ndisks) {
    error_setx ("%s@%s has %zu disks now, %zu when it was checked: it changed in "
                "the repository since", m->vm, m->id, m->ndisks, a->ndisks);
    return -1;
  }
  for (i = 0; i < m->ndisks; i++)
    if (strcmp (m->disks[i].name, a->disks[i].name) != 0 ||
        m->disks[i].size != a->disks[i].size ||
        memcmp (m->disks[i].index_sha256, a->disks[i].index_sha256,
                REPO_DIGEST_LEN) != 0) {
      error_setx ("%s@%s: disk %s is not the one that was checked (its name, "
                  "size or index changed in the repository since)", m->vm, m->id,
                  a->disks[i].name);
      return -1;
    }
  return 0;
}

/* The point: resolved, its manifest and saved domain XML read. */
static int
start_point (struct start *st)
{
  size_t i;

  st->repo = repo_open_with (st->o->repo, st->o->repo_open);
  if (!st->repo)
    return -1;
  if (repo_point_resolve (st->repo, st->o->point, st->vm, st->id) == -1)
    return -1;
  /* From here on a failure is the point's own: it cannot boot anywhere. */
  st->s->point_fault = true;
  st->m = xmalloc (sizeof *st->m);
  if (repo_manifest_read (st->repo, st->vm, st->id, st->m) == -1)
    return -1;
  if (st->o->approved && point_approved (st->m, st->o->approved) == -1)
    return -1;
  if (st->m->ndisks == 0 || st->m->ndisks > INSTANT_MAX_DISKS) {
    error_setx ("%s@%s has %zu disks", st->vm, st->id, st->m->ndisks);
    return -1;
  }
  for (i = 0; i < st->m->ndisks; i++)
    if (st->m->disks[i].size > INSTANT_MAX_DISK_SIZE) {
      error_setx ("%s@%s: disk %s claims %" PRIu64 " bytes, more than the %llu "
                  "a session serves", st->vm, st->id, st->m->disks[i].name,
                  st->m->disks[i].size, (unsigned long long) INSTANT_MAX_DISK_SIZE);
      return -1;
    }
  if (st->m->has_domain_xml) {
    st->saved_xml = repo_domain_xml_read (st->repo, st->vm, st->id);
    if (!st->saved_xml)
      return -1;
  }
  st->s->point_fault = false;
  return 0;
}

/* Identity and name. */
static int
start_identity (struct start *st)
{
  const struct instant_opts *o = st->o;
  struct instant_session *s = st->s;
  CLEANUP_FREE char *saved_uuid = NULL;

  st->ident = o->identity;
  if (st->ident == INSTANT_IDENTITY_DEFAULT)
    st->ident = o->name ? INSTANT_IDENTITY_NEW : INSTANT_IDENTITY_KEEP;
  if (o->name)
    copy (s->name, sizeof s->name, o->name);
  else if (st->ident == INSTANT_IDENTITY_KEEP)
    copy (s->name, sizeof s->name, st->vm);
  else
    text_set (s->name, sizeof s->name, "%s-instant", st->vm);
  if (!name_is_valid (s->name)) {
    error_setx ("'%s' is not a valid domain name (letters, digits, '.', '_', '-')",
                s->name);
    return -1;
  }
  if (st->saved_xml)
    saved_uuid = xml_get_uuid (st->saved_xml);
  if (st->ident == INSTANT_IDENTITY_KEEP && saved_uuid)
    copy (st->uuid, sizeof st->uuid, saved_uuid);
  else
    drv_new_uuid (st->uuid);
  copy (s->uuid, sizeof s->uuid, st->uuid);
  return 0;
}

/* libvirt: reachable, name and UUID free, network there. */
static int
start_check_libvirt (struct start *st)
{
  const char *name = st->s->name;

  st->conn = virt_connect (st->o->uri);
  if (!st->conn)
    return -1;
  st->dom = virt_domain_by_name (st->conn, name);
  if (st->dom) {
    error_setx ("a domain called %s already exists here: give another name with "
                "--name NEW%s", name,
                st->ident == INSTANT_IDENTITY_KEEP ? " (and --new-identity if the "
                "original may still run)" : "");
    return -1;
  }
  st->dom = virt_domain_by_uuid (st->conn, st->uuid);
  if (st->dom) {
    error_setx ("domain %s already has UUID %s: the original VM is still defined; "
                "use --new-identity (new UUID and MACs) or remove it",
                virDomainGetName (st->dom), st->uuid);
    return -1;
  }
  if (st->net != INSTANT_NET_KEEP && st->net != INSTANT_NET_NONE &&
      !(st->net == INSTANT_NET_BRIDGE && remote_wanted (st->o)) &&
      drv_check_network (st->conn, st->net, st->net_src) == -1)
    return -1;
  if (st->net == INSTANT_NET_KEEP && st->saved_xml &&
      drv_check_saved_networks (st->conn, st->saved_xml, !remote_wanted (st->o)) == -1)
    return -1;
  if (st->net == INSTANT_NET_KEEP && !st->saved_xml &&
      drv_check_network (st->conn, INSTANT_NET_NETWORK, "default") == -1) {
    error_prefix ("%s@%s has no saved domain XML and the default definition "
                  "uses libvirt's network 'default'; give --network", st->vm, st->id);
    return -1;
  }
  return 0;
}

/* Overlay space. */
static int
start_overlay_dir (struct start *st)
{
  const struct instant_opts *o = st->o;
  CLEANUP_FREE char *ovdir = o->overlay_dir ? xstrdup (o->overlay_dir)
    : xasprintf ("%s/overlays", o->home);
  char rp[PATH_MAX];

  if (remote_wanted (o)) {
    /* A lab VM elsewhere is behind a lab network only if the lab made
     * and checked one on that host (lab_remote). */
    if (o->identity == INSTANT_IDENTITY_LAB && !o->lab_remote) {
      error_setx ("a lab VM runs on this host only, not on %s",
                  o->uri ? o->uri : "another host (--pool, --listen)");
      return -1;
    }
    if (o->pool || o->overlay_dir) {
      error_setx ("a remote session has its overlays in the host's pool (--pool), "
                  "not in %s", o->pool ? "a shared nbdkit pool" : o->overlay_dir);
      return -1;
    }
    return remote_prepare (st->s, o, st->conn);
  }
  if (check_overlay_dir (ovdir, min_free (o)) == -1)
    return -1;
  if (!o->overlay_dir) {
    mode_t was;
    tighten_mode (ovdir, &was);         /* older versions made it 0755 */
  }
  return path_set (st->s->overlay_dir, sizeof st->s->overlay_dir, "%s",
                   realpath (ovdir, rp) ? rp : ovdir);
}

/* The row (invariant 1): paths first, then things.  Nothing exists on the
 * host yet; an overlay that does (another session's) is refused. */
static int
start_row (struct start *st)
{
  struct instant_session *s = st->s;
  CLEANUP_FREE char *data = NULL;
  size_t i;

  copy (s->vm, sizeof s->vm, st->vm);
  copy (s->point, sizeof s->point, st->id);
  if (path_set (s->repo, sizeof s->repo, "%s", repo_location (st->repo)) == -1)
    return -1;
  copy (s->uri, sizeof s->uri, st->o->uri);
  s->state = INSTANT_STATE_STARTING;        /* a new row: where the diagram starts */
  s->transient = st->o->transient;
  s->read_retries = st->o->read_retries;
  s->overlay_floor = min_free (st->o);
  s->ndisks = st->m->ndisks;
  for (i = 0; i < st->m->ndisks; i++) {
    struct instant_session_disk *k = &s->disks[i];
    copy (k->name, sizeof k->name, st->m->disks[i].name);
    k->size = st->m->disks[i].size;
    hex_encode (st->m->disks[i].index_sha256, REPO_DIGEST_LEN, k->index_sha256);
    if (path_set (k->overlay, sizeof k->overlay, "%s/%s.%s.qcow2", s->overlay_dir,
                  s->name, k->name) == -1)
      return -1;
    if (session_remote (s)) {
      if (remote_overlay_free (st->conn, s, k) == -1)
        return -1;
    }
    else if (access (k->overlay, F_OK) == 0) {
      error_setx ("overlay %s exists already (another session of %s?); "
                  "stop that session with --discard or remove the file",
                  k->overlay, s->name);
      return -1;
    }
  }
  data = data_json (s);
  {
    struct catalog_session r = {
      .name = s->name, .vm = st->vm, .point = st->id, .repo = s->repo,
      .uri = s->uri, .state = instant_state_name (s->state), .data = data,
    };
    if (catalog_session_add (st->cat, &r, &s->id) == -1)
      return -1;
  }
  s->created = s->updated = (double) time (NULL);   /* as the row says */
  st->row = true;
  return 0;
}

/* The session's directory (0700: sockets, pid files, logs, console) and
 * the paths in it, recorded in the row. */
static int
start_session_dir (struct start *st)
{
  struct instant_session *s = st->s;
  CLEANUP_FREE char *sessions = xasprintf ("%s/sessions", st->o->home);
  char rp[PATH_MAX];
  size_t i;

  if (mkdir_p_private (sessions) == -1)
    return -1;
  if (path_set (s->dir, sizeof s->dir, "%s/%" PRId64, sessions, s->id) == -1)
    return -1;
  if (mkdir (s->dir, 0700) == -1) {
    error_set (errno, "mkdir: %s", s->dir);
    return -1;
  }
  if (realpath (s->dir, rp))
    copy (s->dir, sizeof s->dir, rp);
  if (!session_remote (s) &&       /* the host has no path of ours */
      path_set (s->console_log, sizeof s->console_log, "%s/console.log", s->dir) == -1)
    return -1;
  for (i = 0; i < s->ndisks; i++) {
    struct instant_session_disk *k = &s->disks[i];
    CLEANUP_FREE char *backend = xasprintf ("%s/%s.backend.sock", s->dir, k->name);
    /* The longer of the two: if it fits a socket address, both do. */
    if (strlen (backend) > SOCKET_MAX) {
      error_setx ("socket path %s is longer than %d bytes: use a shorter state "
                  "directory (--home)", backend, SOCKET_MAX);
      return -1;
    }
    if ((session_remote (s) ? remote_disk_front (s, k)
         : path_set (k->socket, sizeof k->socket, "%s/%s.sock", s->dir, k->name)) == -1 ||
        path_set (k->backend_socket, sizeof k->backend_socket, "%s",
                  st->o->pool ? st->o->pool->socket : backend) == -1)
      return -1;
  }
  if (st->o->pool && session_pool_mark (s, st->o->pool->key) == -1)
    return -1;
  return session_save (st->cat, s, NULL);
}

/* The hold, then the overlays, then the servers they read. */
static int
start_servers (struct start *st)
{
  struct instant_caller w = { st->o->warn, st->o->warn_opaque, st->o->repo_open };
  size_t i;

  if (hold_point (st->cat, st->repo, st->s, st->o) == -1)
    return -1;
  if (!st->o->pool)                    /* a pool's plugin records none */
    session_trace_prepare (st->cat, st->repo, st->s, &w);
  crash_step (7);
  for (i = 0; i < st->s->ndisks; i++) {
    struct instant_session_disk *k = &st->s->disks[i];
    if ((session_remote (st->s) ? remote_overlay_create (st->conn, st->s, k)
         : create_overlay (k)) == -1)
      return -1;
    /* Ours now (invariant 9): recorded before anything else can fail. */
    k->overlay_made = true;
    if (session_save (st->cat, st->s, NULL) == -1)
      return -1;
  }
  if (supervisor_spawn (st->s, st->o->home) == -1)
    return -1;
  return session_save (st->cat, st->s, NULL);
}

/* The rewrite's spec for this session (xd: one per disk). */
static void
start_spec (struct start *st, struct instant_xml_spec *spec,
            struct instant_xml_disk *xd)
{
  struct instant_session *s = st->s;
  uint8_t r[4];
  char u[UUID_STR_LEN + 1];
  size_t i;

  for (i = 0; i < s->ndisks; i++) {
    xd[i].name = s->disks[i].name;
    xd[i].overlay = s->disks[i].overlay;
    xd[i].socket = session_remote (s) ? NULL : s->disks[i].socket;
    xd[i].host = session_remote (s) ? s->listen : NULL;
    xd[i].port = s->disks[i].port;
    xd[i].tls = !s->insecure;
    xd[i].target[0] = '\0';
  }
  spec->name = s->name;
  spec->uuid = st->uuid;
  spec->new_macs = st->ident == INSTANT_IDENTITY_NEW;
  drv_new_uuid (u);
  u[8] = '\0';               /* its first 4 random bytes, in hex */
  if (hex_decode (u, r, 4) == -1)
    abort ();
  spec->mac_seed = (uint32_t) r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3];
  spec->net = st->net;
  spec->net_source = st->net_src;
  spec->domain_type = domain_type (st->o);
  spec->console_log = s->console_log[0] ? s->console_log : NULL;
  spec->ndisks = s->ndisks;
  spec->disks = xd;
  spec->allow_passthrough = st->o->allow_passthrough;
  spec->bios_serial = st->o->bios_serial;
  spec->memory_cap_mib = st->o->memory_cap_mib;
}

/* A lab's reservation, checked on the final XML: what libvirt would
 * give the VM (NUMA cells and memory devices too) within it.  The
 * rewrite lowers and removes what is over (cap_memory, domain-xml.c);
 * this is the fail-closed test that it did. */
static int
within_cap (const struct instant_xml_spec *sp, const char *xml)
{
  uint64_t mib = instant_xml_memory_mib (xml);

  if (!sp->memory_cap_mib || mib <= sp->memory_cap_mib)
    return 0;
  error_setx ("domain XML: %" PRIu64 " MiB of memory, over the %" PRIu64
              " MiB reserved for this VM", mib, sp->memory_cap_mib);
  return -1;
}

/* The final domain XML (malloc'd), checked, kept as domain.xml in the
 * session directory, its disk targets in the row; NULL with the error. */
static char *
start_domain_xml (struct start *st)
{
  const struct instant_opts *o = st->o;
  struct instant_session *s = st->s;
  struct instant_xml_disk xd[INSTANT_MAX_DISKS];
  struct instant_xml_spec spec = { 0 };
  CLEANUP_FREE char *p = NULL;
  char *xml;
  size_t i;

  if (!st->saved_xml) {
    const char *names[INSTANT_MAX_DISKS];
    for (i = 0; i < s->ndisks; i++)
      names[i] = s->disks[i].name;
    st->saved_xml = instant_xml_default (s->name, domain_type (o) ? domain_type (o)
                                         : "kvm", o->memory_mib, s->ndisks, names);
    pass_note (o, "%s@%s has no saved domain XML: using a default definition "
               "(%d MiB, 1 vCPU, virtio)", st->vm, st->id,
               o->memory_mib > 0 ? o->memory_mib : 1024);
  }
  start_spec (st, &spec, xd);
  xml = instant_xml_rewrite (st->saved_xml, &spec, o->note, o->note_opaque);
  if (!xml)
    return NULL;
  /* Fail closed: nothing off the allow-list reaches libvirt. */
  if ((!o->allow_passthrough && instant_xml_check (xml, &spec) == -1) ||
      within_cap (&spec, xml) == -1 ||
      (o->check_xml && o->check_xml (o->check_opaque, xml) == -1) ||
      (o->admit && o->admit (o->admit_opaque, instant_xml_memory_mib (xml)) == -1)) {
    free (xml);
    return NULL;
  }
  for (i = 0; i < s->ndisks; i++)
    copy (s->disks[i].target, sizeof s->disks[i].target, xd[i].target);
  p = xasprintf ("%s/domain.xml", s->dir);
  {
    FILE *f = fopen_private (p);
    if (f) {
      fputs (xml, f);
      fclose (f);
    }
  }
  return xml;
}

/* Define (unless transient) and start the domain: state running. */
static int
start_domain (struct start *st)
{
  struct instant_session *s = st->s;
  CLEANUP_FREE char *xml = start_domain_xml (st);

  /* The saved definition could not be made safe to start: the point's. */
  s->point_fault = !xml;
  if (!xml || session_save (st->cat, s, NULL) == -1)
    return -1;
  st->domain_made = true;
  if (st->o->transient)
    st->dom = virt_domain_create_xml (st->conn, xml, s->name);
  else {
    st->dom = virt_domain_define_xml (st->conn, xml, s->name);
    if (st->dom && virt_domain_start (st->dom) == -1)
      return -1;
  }
  if (!st->dom)
    return -1;
  s->t_running = now_monotonic () - st->t0;
  if (session_set_state (s, INSTANT_STATE_RUNNING) == -1)
    return -1;
  if (session_save (st->cat, s, NULL) == -1) {
    s->state = INSTANT_STATE_STARTING;     /* the row still says so */
    return -1;
  }
  return 0;
}

/* The guest agent's first answer (not an error if there is none). */
static void
start_agent_wait (struct start *st)
{
  const struct instant_opts *o = st->o;

  if (o->agent_timeout <= 0)
    return;
  if (virt_agent_wait (st->dom, o->agent_timeout) == 0) {
    struct instant_caller w = { o->warn, o->warn_opaque, o->repo_open };
    st->s->t_heartbeat = now_monotonic () - st->t0;
    session_save (st->cat, st->s, NULL);
    if (!o->pool)
      session_trace_store (st->cat, st->repo, st->s, st->s->t_heartbeat, 0, &w);
  }
  else
    pass_note (o, "no heartbeat from the guest agent within %d s (is "
               "qemu-guest-agent installed and is there an agent channel?)",
               o->agent_timeout);
}

/* A failed start after the row: undo everything, the row says failed. */
static void
start_undo (struct start *st)
{
  struct instant_session *s = st->s;
  struct instant_caller w = { st->o->warn, st->o->warn_opaque, st->o->repo_open };
  size_t i;

  ERROR_SAVE (why);
  teardown (st->conn, s, st->domain_made, true, &w);
  rm_rf (s->dir);
  session_set_state (s, INSTANT_STATE_FAILED);
  copy (s->message, sizeof s->message, why_msg);
  for (i = 0; i < s->ndisks; i++)
    s->disks[i].overlay[0] = '\0';
  session_save (st->cat, s, NULL);
  ERROR_RESTORE (why);
}

int
instant_start (struct catalog *cat, const struct instant_opts *o,
               struct instant_session *s)
{
  struct start st = { .cat = cat, .o = o, .s = s, .t0 = now_monotonic () };
  int ret = -1;

  memset (s, 0, sizeof *s);
  s->t_running = s->t_heartbeat = -1;
  if (!o->home || !o->repo || !o->point) {
    error_setx ("instant_start: home, repo and point are required");
    return -1;
  }
  if (parse_network (o->network, &st.net, &st.net_src) == -1)
    return -1;
  if (start_point (&st) == -1 || start_identity (&st) == -1 ||
      start_check_libvirt (&st) == -1 || start_overlay_dir (&st) == -1 ||
      start_row (&st) == -1)
    goto out;
  if (start_session_dir (&st) == -1 || start_servers (&st) == -1 ||
      start_domain (&st) == -1) {
    start_undo (&st);
    goto out;
  }
  start_agent_wait (&st);
  ret = 0;
 out:
  if (st.dom)
    virDomainFree (st.dom);
  virt_close (st.conn);
  free (st.saved_xml);
  free (st.m);
  repo_close (st.repo);
  return ret;
}

/* ---- stop ------------------------------------------------------------------- */

static int recover_migration (struct instant_session *s);

/* Can session s be stopped (not migrated, not being migrated, not
 * stopped already unless discarding)?  -1 with the reason. */
static int
stop_allowed (const struct instant_session *s, bool discard)
{
  if (s->state == INSTANT_STATE_MIGRATED) {
    error_setx ("session %" PRId64 " was migrated: %s runs from production storage "
                "now and is no longer a session (virsh destroy %s to stop it)",
                s->id, s->name, s->name);
    return -1;
  }
  if (s->state == INSTANT_STATE_MIGRATING &&
      pid_matches (s->migrate_pid, 0, "migrate")) {
    error_setx ("session %" PRId64 " is being migrated (process %d); wait for it "
                "or interrupt it first", s->id, (int) s->migrate_pid);
    return -1;
  }
  if (s->state == INSTANT_STATE_STOPPED && !discard) {
    error_setx ("session %" PRId64 " is already stopped", s->id);
    return -1;
  }
  return 0;
}

/* libvirt, unless the session is stopped already (*conn NULL then), and
 * the check that its domain is still its own (invariant 7: a domain that
 * took the name and UUID is not ours). */
static int
stop_connect (const struct instant_session *s, const char *uri,
              virConnectPtr *conn)
{
  virDomainPtr d;

  *conn = NULL;
  if (s->state == INSTANT_STATE_STOPPED)
    return 0;
  *conn = virt_connect (uri ? uri : s->uri);
  if (!*conn) {
    error_prefix ("cannot stop session %" PRId64 " (its VM keeps running)", s->id);
    return -1;
  }
  if (drv_session_domain (*conn, s, &d) == -1) {
    error_prefix ("cannot stop session %" PRId64, s->id);
    return -1;
  }
  if (d)
    virDomainFree (d);
  return 0;
}

int
instant_stop_with (struct catalog *cat, int64_t id,
                   const struct instant_stop_opts *o)
{
  struct instant_session *s = xmalloc (sizeof *s);
  struct instant_caller w = { o->warn, o->warn_opaque, o->repo_open };
  virConnectPtr conn = NULL;
  size_t i;
  int ret = -1;

  if (session_load (cat, id, s) == -1 || stop_allowed (s, o->discard) == -1 ||
      stop_connect (s, o->uri, &conn) == -1)
    goto out;
  /* A dead migration's --onto disks are restored first (delta.c). */
  if (s->state == INSTANT_STATE_MIGRATING && recover_migration (s) == -1) {
    error_prefix ("cannot stop session %" PRId64, s->id);
    goto out;
  }
  /* Refused before anything is undone if the diagram does not allow it. */
  if (session_set_state (s, INSTANT_STATE_STOPPED) == -1)
    goto out;
  teardown (conn, s, true, o->discard, &w);
  if (o->discard) {
    for (i = 0; i < s->ndisks; i++)
      s->disks[i].overlay[0] = '\0';
    rm_rf (s->dir);
  }
  copy (s->message, sizeof s->message, o->discard ? "stopped; overlays discarded"
        : "stopped; overlays kept");
  s->migrate_pid = 0;
  if (session_save (cat, s, NULL) == -1)
    goto out;
  ret = 0;
 out:
  virt_close (conn);
  free (s);
  return ret;
}

int
instant_stop (struct catalog *cat, int64_t id, const char *uri, bool discard)
{
  struct instant_stop_opts o = { .uri = uri, .discard = discard };

  return instant_stop_with (cat, id, &o);
}

/* ---- reattach --------------------------------------------------------------- */

struct reattach_ctx {
  int64_t ids[4096];
  size_t n;
};

static int
collect (void *opaque, const struct instant_session *s)
{
  struct reattach_ctx *r = opaque;

  if ((s->state == INSTANT_STATE_RUNNING || s->state == INSTANT_STATE_MIGRATING) &&
      r->n < sizeof r->ids / sizeof r->ids[0])
    r->ids[r->n++] = s->id;
  return 0;
}

/* An --onto disk of a dead migration (d: the domain, NULL if gone; live:
 * its live XML): pivoted, its journal goes; else, once no block job
 * writes it, its content from before comes back (delta.c).  -1 if not. */
static int
recover_onto (struct instant_session *s, struct instant_session_disk *k,
              virDomainPtr d, const char *live)
{
  if (live && xml_disk_source_is (live, k->target, k->migrated_to) == 1)
    return delta_finish (k->migrated_to);
  if (d && (!live || (virDomainIsActive (d) == 1 &&
                      virt_block_job_info (d, k->target, NULL) != 0))) {
    error_setx ("%s: the domain's block job did not end (or libvirt could not "
                "say); it stays as the delta left it", k->migrated_to);
    return -1;
  }
  if (delta_undo (k->migrated_to, s, k, NULL) == -1)
    return -1;
  k->migrated_to[0] = '\0';
  k->onto = false;
  return 0;
}

/* A migration whose process died: abort its block jobs, back to running.
 * -1 (the error set; the state must stay migrating, the next reattach
 * tries again) if an --onto disk could not be restored. */
static int
recover_migration (struct instant_session *s)
{
  /* The host the migration acted on, through the URI it used. */
  CLEANUP_VIR_CONNECT virConnectPtr conn =
    virt_connect (s->migrate_uri[0] ? s->migrate_uri : s->uri);
  CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
  CLEANUP_FREE char *live = NULL;
  size_t i;
  int ret = 0;

  if (!conn) {
    for (i = 0; i < s->ndisks; i++)
      if ((s->disks[i].onto || (session_remote (s) && s->disks[i].target_made)) &&
          s->disks[i].migrated_to[0])
        return -1;          /* QEMU may still write it; a volume of ours stays */
    return 0;
  }
  d = virt_domain_by_uuid (conn, s->uuid);
  for (i = 0; d && i < s->ndisks; i++)
    virt_block_job_abort_wait (d, s->disks[i].target, 10);
  live = d ? virt_domain_xml (d, 0) : NULL;
  /* Targets the VM does not use (not pivoted) go (invariant 5); --onto
   * disks get their content back instead. */
  for (i = 0; i < s->ndisks; i++) {
    struct instant_session_disk *k = &s->disks[i];
    if (!k->migrated_to[0])
      continue;
    if (k->onto) {
      if (recover_onto (s, k, d, live) == -1 && ret == 0)
        ret = -1;
    }
    else if (live && xml_disk_source_is (live, k->target, k->migrated_to) != 1) {
      /* A volume of the host: only if the migration made it (invariant 9). */
      if (session_remote (s) && k->target_made)
        virt_vol_delete_path (conn, k->migrated_to);
      else if (!session_remote (s))
        unlink (k->migrated_to);
      k->migrated_to[0] = '\0';
      k->target_made = false;
    }
  }
  return ret;
}

/* A session left migrating by a dead migrate: recovered, back to running
 * (or, if an --onto disk could not be restored, still migrating with the
 * reason). */
static void
reattach_migration (struct catalog *cat, struct instant_session *s)
{
  bool ok = recover_migration (s) == 0;

  if (ok)
    session_set_state (s, INSTANT_STATE_RUNNING);
  text_set (s->message, sizeof s->message, "the migration was interrupted%s%s%s",
            ok ? "; run migrate again" : " and ", ok ? "" : error_msg (),
            ok ? "" : "; the next bootback sessions tries again");
  s->migrate_pid = 0;
  session_save (cat, s, instant_state_name (INSTANT_STATE_MIGRATING));
}

int
instant_reattach (struct catalog *cat, const char *home)
{
  struct reattach_ctx *r = xcalloc (1, sizeof *r);
  struct instant_session *s = xmalloc (sizeof *s);
  size_t i;
  int count = 0, err = 0;

  if (instant_session_list (cat, collect, r) == -1) {
    free (r); free (s);
    return -1;
  }
  for (i = 0; i < r->n; i++) {
    if (session_load (cat, r->ids[i], s) == -1)
      continue;
    if (s->state == INSTANT_STATE_MIGRATING &&
        !pid_matches (s->migrate_pid, 0, "migrate"))
      reattach_migration (cat, s);
    if (session_pooled (s) && pool_revive (home, s) == -1) {
      if (!err) {
        error_prefix ("session %" PRId64, s->id);
        err = 1;
      }
      continue;
    }
    if (instant_supervisor_alive (s))
      continue;
    if (supervisor_spawn (s, home) == -1) {
      if (!err) {
        error_prefix ("session %" PRId64, s->id);
        err = 1;
      }
      continue;
    }
    session_save (cat, s, NULL);
    count++;
  }
  free (r);
  free (s);
  return err ? -1 : count;
}

static const char *
iso_time_str (double t, char buf[ISO_TIME_LEN + 1])
{
  iso_time_format ((time_t) t, buf);
  return buf;
}

/* The session as bootback sessions --json and the web API show it. */
json_t *
instant_session_json (const struct instant_session *s)
{
  json_t *disks = json_array (), *j;
  char created[32];
  size_t i;

  for (i = 0; i < s->ndisks; i++) {
    const struct instant_session_disk *k = &s->disks[i];
    json_array_append_new (disks, json_pack ("{s:s, s:s, s:I, s:s, s:s, s:s}",
                                             "name", k->name, "target", k->target,
                                             "size", (json_int_t) k->size,
                                             "socket", k->socket,
                                             "overlay", k->overlay,
                                             "migrated_to", k->migrated_to));
    if (k->port > 0)
      json_object_set_new (json_array_get (disks, i), "port", json_integer (k->port));
  }
  j = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b,"
                 " s:I, s:b, s:o, s:o, s:s, s:s, s:s, s:s, s:o}",
                 "id", (json_int_t) s->id, "name", s->name, "uuid", s->uuid,
                 "vm", s->vm, "point", s->point, "repo", s->repo,
                 "state", instant_state_name (s->state), "message", s->message,
                 "created", iso_time_str (s->created, created),
                 "transient", s->transient,
                 "supervisor_pid", (json_int_t) s->supervisor_pid,
                 "supervisor_alive", instant_supervisor_alive (s),
                 "seconds_to_running",
                 s->t_running >= 0 ? json_real (s->t_running) : json_null (),
                 "seconds_to_heartbeat",
                 s->t_heartbeat >= 0 ? json_real (s->t_heartbeat) : json_null (),
                 "dir", s->dir, "console_log", s->console_log,
                 "overlay_dir", s->overlay_dir, "hold", s->hold,
                 "disks", disks);
  if (session_remote (s))
    json_object_update_new (j, json_pack ("{s:s, s:s, s:s, s:b}", "uri", s->uri,
                                          "listen", s->listen, "pool", s->storage_pool,
                                          "tls", !s->insecure));
  return j;
}
