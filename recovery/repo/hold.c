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

int
repo_point_remove (struct repo *r, const char *vm, const char *id,
                   struct repo_hold *by)
{
  struct repo_hold h;
  int held, ret = -1;

  if (io_lock (r->io, LOCK, lock_what, LOCK_WAIT) == -1)
    return -1;
  held = find_hold (r, vm, id, &h);
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
