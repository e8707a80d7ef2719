/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Holds: "this restore point is in use", recorded in the repository so
 * that every host and process sharing it sees them, whatever its
 * $BOOTBACK_HOME.  An instant session (and so a lab run) holds its point
 * from before its nbdkit opens it until nothing can read it any more.
 *
 *   <repo>/holds/<name>   point=VM@ID, host=, pid=, home=, session=,
 *                         owner= (one key=value a line)
 *   <repo>/locks/holds    taken while a hold is added or a point removed
 *
 * The race of a session starting while prune runs: adding a hold and
 * removing a point both run under locks/holds, and a hold is added only
 * if the point's manifest still exists (checked under the lock), so either
 * the session finds the point gone (and fails to start, saying so) or
 * prune finds the hold (and keeps the point).  Once prune keeps a point,
 * gc keeps its chunks: gc marks from the manifests of every point.
 *
 * Liveness: a hold with a pid (a process of its host that lives as long
 * as the hold is needed) is dead when its host is this host and the
 * process is gone; such holds are removed by whoever finds them.  A hold
 * without a pid (an instant session: its processes come and go while the
 * guest runs) is judged by its owner (instant_hold_stale) and otherwise
 * kept: keeping a point too long costs space, removing it costs the guest
 * its disk.  Every field is read from a repository others may write: it
 * only ever keeps points, and is printed with control characters replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>

#include "recovery/repo/repo-int.h"

#define LOCK "locks/holds"
#define LOCK_WAIT 60.0
#define HOLD_MAX 16384

static const char lock_what[] =
  "another process adding a hold or removing a restore point";

/* Copy src into dst, replacing control characters. */
static void
copy_clean (char *dst, size_t len, const char *src, size_t n)
{
  size_t i;

  if (n >= len)
    n = len - 1;
  for (i = 0; i < n; i++)
    dst[i] = (unsigned char) src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
  dst[n] = '\0';
}

static void
parse (const char *name, const char *text, struct repo_hold *h)
{
  const char *p = text;

  memset (h, 0, sizeof *h);
  copy_clean (h->name, sizeof h->name, name, strlen (name));
  while (*p) {
    size_t n = strcspn (p, "\n");
    const char *eq = memchr (p, '=', n);
    if (eq) {
      size_t k = eq - p, vn = n - k - 1;
      const char *v = eq + 1;
      char buf[256];
      if (k == 5 && memcmp (p, "point", 5) == 0) {
        const char *at = memchr (v, '@', vn);
        if (at) {
          copy_clean (h->vm, sizeof h->vm, v, at - v);
          copy_clean (h->id, sizeof h->id, at + 1, vn - (at - v) - 1);
        }
      }
      else if (k == 4 && memcmp (p, "host", 4) == 0)
        copy_clean (h->host, sizeof h->host, v, vn);
      else if (k == 4 && memcmp (p, "home", 4) == 0)
        copy_clean (h->home, sizeof h->home, v, vn);
      else if (k == 5 && memcmp (p, "owner", 5) == 0)
        copy_clean (h->owner, sizeof h->owner, v, vn);
      else if (k == 3 && memcmp (p, "pid", 3) == 0) {
        copy_clean (buf, sizeof buf, v, vn);
        h->pid = atol (buf);
      }
      else if (k == 7 && memcmp (p, "session", 7) == 0) {
        copy_clean (buf, sizeof buf, v, vn);
        h->session = atoll (buf);
      }
    }
    p += n;
    if (*p)
      p++;
  }
  if (!h->owner[0])
    snprintf (h->owner, sizeof h->owner, "an unnamed holder");
}

bool
repo_hold_dead (const struct repo_hold *h)
{
  char host[64] = "";

  gethostname (host, sizeof host - 1);
  return h->pid > 0 && strcmp (h->host, host) == 0 &&
    kill ((pid_t) h->pid, 0) == -1 && errno == ESRCH;
}

struct repo_hold *
repo_hold_list (struct repo *r, size_t *nout)
{
  struct repo_io *io = r->io;
  char **names = io->ops->list (io, "holds");
  struct repo_hold *v = xcalloc (1, sizeof *v);
  size_t i, n = 0;

  *nout = 0;
  if (!names) {
    if (errno == ENOENT) {
      error_clear ();
      return v;
    }
    free (v);
    return NULL;
  }
  for (i = 0; names[i]; i++) {
    CLEANUP_FREE char *path = xasprintf ("holds/%s", names[i]);
    CLEANUP_FREE char *text = NULL;
    size_t len;

    if (io_is_temp_name (names[i]))
      continue;
    if (io_read_file (io, path, HOLD_MAX, &text, &len) == -1) {
      if (errno == ENOENT)
        continue;                  /* released meanwhile */
      strv_free (names);
      free (v);
      return NULL;
    }
    v = xrealloc (v, (n + 2) * sizeof *v);
    parse (names[i], text, &v[n++]);
  }
  strv_free (names);
  memset (&v[n], 0, sizeof v[n]);
  *nout = n;
  error_clear ();
  return v;
}

int
repo_hold_add (struct repo *r, struct repo_hold *h)
{
  struct repo_io *io = r->io;
  struct repo_manifest m;
  CLEANUP_FREE char *path = NULL, *text = NULL;
  int ret = -1;

  if (!h->name[0]) {
    uint8_t b[8] = { 0 };
    char hex[2 * sizeof b + 1];
    if (getrandom (b, sizeof b, 0) != (ssize_t) sizeof b) {
      error_set (errno, "getrandom");
      return -1;
    }
    hex_encode (b, sizeof b, hex);
    snprintf (h->name, sizeof h->name, "%s", hex);
  }
  if (!h->host[0])
    gethostname (h->host, sizeof h->host - 1);
  path = xasprintf ("holds/%s", h->name);
  text = xasprintf ("point=%s@%s\nhost=%s\npid=%ld\nhome=%s\nsession=%" PRId64
                    "\nowner=%s\n", h->vm, h->id, h->host, h->pid, h->home,
                    h->session, h->owner);
  if (io_mkdir_p1 (io, "holds") == -1 ||
      io_lock (io, LOCK, lock_what, LOCK_WAIT) == -1)
    return -1;
  if (repo_manifest_read (r, h->vm, h->id, &m) == -1) {
    error_setx ("%s@%s no longer exists (removed by prune meanwhile?)",
                h->vm, h->id);
    goto out;
  }
  ret = io_write_file_atomic (io, path, text, strlen (text));
 out:
  io_unlock (io, LOCK);
  return ret;
}

bool
repo_hold_unwritable (int err)
{
  return err == EROFS || err == EACCES || err == EPERM;
}

int
repo_hold_remove (struct repo *r, const char *name)
{
  CLEANUP_FREE char *path = xasprintf ("holds/%s", name);

  if (!*name || strchr (name, '/'))
    return 0;
  if (r->io->ops->unlink (r->io, path) == -1 && errno != ENOENT)
    return -1;
  error_clear ();
  return 0;
}

/* The first live hold of vm@id into *out (dead ones are removed): 1 if
 * held, 0 if not, -1 on error.  Under the lock. */
static int
find_hold (struct repo *r, const char *vm, const char *id,
           struct repo_hold *out)
{
  size_t n, i;
  struct repo_hold *v = repo_hold_list (r, &n);
  int found = 0;

  if (!v)
    return -1;
  for (i = 0; i < n && !found; i++) {
    if (strcmp (v[i].vm, vm) != 0 || strcmp (v[i].id, id) != 0)
      continue;
    if (repo_hold_dead (&v[i])) {
      repo_hold_remove (r, v[i].name);
      continue;
    }
    *out = v[i];
    found = 1;
  }
  free (v);
  return found;
}

static int point_lock_check (struct repo *r, const char *vm, const char *id);

int
repo_point_remove (struct repo *r, const char *vm, const char *id,
                   struct repo_hold *by)
{
  struct repo_hold h;
  int held, ret = -1;

  if (io_lock (r->io, LOCK, lock_what, LOCK_WAIT) == -1)
    return -1;
  held = find_hold (r, vm, id, &h);
  if (held == 0 && point_lock_check (r, vm, id) == -1)
    held = -1;
  if (held == 1) {
    if (by)
      *by = h;
    error_set (EBUSY, "%s@%s is in use by %s on %s (%s/holds/%s)", vm, id,
               h.owner, h.host, r->location, h.name);
  }
  else if (held == 0)
    ret = point_remove_now (r, vm, id);
  io_unlock (r->io, LOCK);
  return ret;
}

/* ---- locks: points nobody may remove before a date ------------------------
 *
 *   <repo>/points/<vm>/<id>/lock   "until=EPOCH": locked until then
 *
 * A lock is set by bootback point lock, or for every point by a
 * repository made with repo init --lock DAYS ("lock_days": the point's
 * time + DAYS).  On S3 it is Object Lock retention in COMPLIANCE mode on
 * the point's objects and on every chunk it uses (io-s3.c): the server
 * refuses to delete them, whoever asks, until the date.  On local disk and
 * NFS it is advisory: prune and point removal refuse a locked point, but
 * anyone who can write the directory can delete the files.  A lock is
 * never shortened. */

#define LOCK_MARKER_MAX 64

int
repo_point_locked_until (struct repo *r, const struct repo_manifest *m,
                         time_t *until)
{
  CLEANUP_FREE char *dir = xasprintf ("points/%s/%s", m->vm, m->id);
  CLEANUP_FREE char *mark = xasprintf ("%s/lock", dir);
  CLEANUP_FREE char *man = xasprintf ("%s/manifest.json", dir);
  CLEANUP_FREE char *text = NULL;
  struct repo_stat st;
  long long t = 0;
  size_t n;

  *until = r->lock_days > 0 ? m->time + (time_t) r->lock_days * 86400 : 0;
  if (io_read_file (r->io, mark, LOCK_MARKER_MAX, &text, &n) == 0 &&
      sscanf (text, "until=%lld", &t) == 1 && t > *until)
    *until = t;
  else if (!text && errno != ENOENT)
    return -1;
  if (r->io->ops->retain) {
    if (r->io->ops->stat (r->io, man, &st) == -1)
      return -1;
    if (st.retain_until > *until)
      *until = st.retain_until;
  }
  error_clear ();
  return 0;
}

/* Lock path (a file of the point, or a chunk) until then, if the
 * backend can. */
static int
retain (struct repo *r, const char *path, time_t until)
{
  if (!r->io->ops->retain)
    return 0;
  return r->io->ops->retain (r->io, path, until);
}

/* Every chunk of the point's disks. */
static int
lock_chunks (struct repo *r, const struct repo_manifest *m, time_t until)
{
  for (size_t k = 0; k < m->ndisks; k++) {
    struct repo_disk *d = repo_disk_open (r, m->vm, m->id, m->disks[k].name);
    if (!d)
      return -1;
    for (uint64_t i = 0; i < d->nchunks; i++) {
      char path[80];
      if (repo_digest_is_zero (d->digests[i]) ||
          (i > 0 && memcmp (d->digests[i], d->digests[i - 1], REPO_DIGEST_LEN) == 0))
        continue;
      repo_chunk_path (d->digests[i], path);
      if (retain (r, path, until) == -1) {
        repo_disk_close (d);
        return -1;
      }
    }
    repo_disk_close (d);
  }
  return 0;
}

int
repo_point_lock (struct repo *r, const char *vm, const char *id, time_t until)
{
  CLEANUP_FREE char *dir = xasprintf ("points/%s/%s", vm, id);
  CLEANUP_FREE char *mark = xasprintf ("%s/lock", dir);
  CLEANUP_FREE struct repo_manifest *m = xmalloc (sizeof *m);
  CLEANUP_FREE char *text = NULL;
  time_t now;

  if (repo_manifest_read (r, vm, id, m) == -1 ||
      repo_point_locked_until (r, m, &now) == -1)
    return -1;
  if (now >= until)
    return 0;                           /* never shortened */
  text = xasprintf ("until=%lld\n", (long long) until);
  if (io_write_file_atomic (r->io, mark, text, strlen (text)) == -1 ||
      retain (r, mark, until) == -1 || lock_chunks (r, m, until) == -1)
    return -1;
  for (size_t k = 0; k < m->ndisks; k++) {
    CLEANUP_FREE char *p = xasprintf ("%s/%s.fidx", dir, m->disks[k].name);
    if (retain (r, p, until) == -1)
      return -1;
  }
  if (m->has_domain_xml) {
    CLEANUP_FREE char *p = xasprintf ("%s/domain.xml", dir);
    if (retain (r, p, until) == -1)
      return -1;
  }
  /* the manifest last: a point reads as locked only when all of it is */
  CLEANUP_FREE char *man = xasprintf ("%s/manifest.json", dir);
  return retain (r, man, until);
}

/* -1 (EPERM, saying until when) if vm@id is locked now. */
static int
point_lock_check (struct repo *r, const char *vm, const char *id)
{
  struct repo_manifest *m = xmalloc (sizeof *m);
  time_t until;
  char iso[32];
  int ret = 0;

  if (repo_manifest_read (r, vm, id, m) == -1 ||
      repo_point_locked_until (r, m, &until) == -1)
    ret = -1;
  else if (until > time (NULL)) {
    struct tm tm;
    gmtime_r (&until, &tm);
    strftime (iso, sizeof iso, "%Y-%m-%d %H:%M:%S UTC", &tm);
    CLEANUP_FREE char *t = xasprintf ("%s@%s is locked until %s", vm, id, iso);
    error_restore (EPERM, t);
    errno = EPERM;
    ret = -1;
  }
  free (m);
  return ret;
}

char *
repo_point_lock_text (struct repo *r, const char *vm, const char *id)
{
  struct repo_manifest *m = xmalloc (sizeof *m);
  time_t until = 0;
  struct tm tm;
  char iso[32];

  if (repo_manifest_read (r, vm, id, m) == -1 ||
      repo_point_locked_until (r, m, &until) == -1) {
    free (m);
    return xasprintf ("unknown (%s)", error_msg ());
  }
  free (m);
  if (until <= time (NULL))
    return NULL;
  gmtime_r (&until, &tm);
  strftime (iso, sizeof iso, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return xstrdup (iso);
}
