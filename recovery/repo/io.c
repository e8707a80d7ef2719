/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers built on the I/O ops table: whole-file read, write loops, the
 * atomic replace used by commit steps 2 and 3, the storage's clock, and
 * lock files (locks/gc, locks/holds).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>

#include "recovery/repo/repo-int.h"

int
io_read_file (struct repo_io *io, const char *path, size_t max, char **data,
              size_t *len)
{
  struct repo_file *f = io->ops->open (io, path, O_RDONLY);
  struct repo_stat st;
  char *buf = NULL;
  size_t n = 0;

  if (!f)
    return -1;
  if (io->ops->fstat (io, f, &st) == -1)
    goto err;
  if (st.size > max) {
    error_setx ("%s/%s: file too large (%" PRIu64 " bytes, at most %zu expected)",
                io->location, path, st.size, max);
    errno = EFBIG;
    goto err;
  }
  buf = xmalloc (st.size + 1);
  while (n < st.size) {
    ssize_t r = io->ops->pread (io, f, buf + n, st.size - n, n);
    if (r == -1) {
      error_prefix ("%s", path);
      goto err;
    }
    if (r == 0) {
      error_setx ("%s/%s: file shrank while reading", io->location, path);
      goto err;
    }
    n += r;
  }
  if (io->ops->close (io, f) == -1) {
    free (buf);
    return -1;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return 0;
 err:
  free (buf);
  io->ops->close (io, f);
  return -1;
}

int
io_write_all (struct repo_io *io, struct repo_file *f, const void *buf,
              size_t n, uint64_t off)
{
  const char *p = buf;

  while (n > 0) {
    ssize_t r = io->ops->pwrite (io, f, p, n, off);
    if (r == -1)
      return -1;
    if (r == 0) {
      error_set (EIO, "write: %s: wrote nothing", io->location);
      return -1;
    }
    p += r; n -= r; off += r;
  }
  return 0;
}

void
io_temp_suffix (char *buf, size_t len)
{
  static _Atomic unsigned long counter;

  snprintf (buf, len, ".tmp-%ld-%lu", (long) getpid (),
            atomic_fetch_add (&counter, 1));
}

int
io_write_file_atomic (struct repo_io *io, const char *path, const void *data,
                      size_t len)
{
  char suffix[48];
  CLEANUP_FREE char *tmp = NULL, *dir = xstrdup (path);
  struct repo_file *f;
  char *slash;

  io_temp_suffix (suffix, sizeof suffix);
  tmp = xasprintf ("%s%s", path, suffix);
  slash = strrchr (dir, '/');
  if (slash) *slash = '\0'; else strcpy (dir, ".");

  f = io->ops->open (io, tmp, O_WRONLY | O_CREAT | O_EXCL);
  if (!f)
    return -1;
  if (io_write_all (io, f, data, len, 0) == -1 ||
      io->ops->fsync (io, f) == -1) {
    error_prefix ("%s", tmp);
    io->ops->close (io, f);
    io->ops->unlink (io, tmp);
    return -1;
  }
  if (io->ops->close (io, f) == -1 ||
      io->ops->rename (io, tmp, path) == -1) {
    int e = errno;
    io->ops->unlink (io, tmp);
    errno = e;
    return -1;
  }
  return io->ops->sync_dir (io, dir);
}

int
io_mkdir_p1 (struct repo_io *io, const char *path)
{
  if (io->ops->mkdir (io, path) == -1 && errno != EEXIST)
    return -1;
  return 0;
}

int
io_remove_dir (struct repo_io *io, const char *path)
{
  char **names = io->ops->list (io, path);
  size_t i;
  int r = 0;

  if (!names)
    return errno == ENOENT ? 0 : -1;
  for (i = 0; names[i]; i++) {
    CLEANUP_FREE char *p = xasprintf ("%s/%s", path, names[i]);
    if (io->ops->unlink (io, p) == -1 && errno != ENOENT)
      r = -1;
  }
  strv_free (names);
  if (r == 0 && io->ops->rmdir (io, path) == -1 && errno != ENOENT)
    r = -1;
  return r;
}

bool
io_fetches_whole (struct repo_io *io, const char *path)
{
  return io->ops->fetches_whole && io->ops->fetches_whole (io, path);
}

int
io_clock (struct repo_io *io, double *now)
{
  struct repo_file *f;
  struct repo_stat st;

  if (io->ops->touch (io, "locks/clock") == -1) {
    if (errno != ENOENT)
      return -1;
    f = io->ops->open (io, "locks/clock", O_WRONLY | O_CREAT);
    if (!f)
      return -1;
    io->ops->close (io, f);
  }
  if (io->ops->stat (io, "locks/clock", &st) == -1)
    return -1;
  *now = st.mtime;
  return 0;
}

/* A lock file as a taker saw it: missing, or its holder (host, pid), whether
 * it is stale, and its identity: the SHA-256 of its bytes and mtime.  Two
 * different locks never have the same identity: one that was written has
 * a nonce (io_lock), and an empty one is stale only when older than
 * grace, while a new one is newer. */
struct lock_seen {
  bool missing, stale;
  char host[64];
  long pid;
  double mtime;                 /* by the storage's clock */
  uint8_t id[REPO_DIGEST_LEN];
};

/* Read lock file path into *s: true if it is stale, that is a process of
 * this host that is gone, or empty and older than grace seconds by the
 * storage's clock (its creator was killed between creating and writing it:
 * a lock is written within a moment of its creation).  The bytes and the
 * mtime come from one open file (one inode, one NFS file handle). */
static bool
lock_look (struct repo_io *io, const char *path, double grace,
           struct lock_seen *s)
{
  struct repo_file *f;
  struct repo_stat st = { 0 };
  char me[64] = "", text[4097], buf[4096 + 64];
  size_t n = 0;
  double now;
  bool statted;
  int len;

  memset (s, 0, sizeof *s);
  gethostname (me, sizeof me - 1);
  f = io->ops->open (io, path, O_RDONLY);
  if (!f) {
    s->missing = errno == ENOENT;
    error_clear ();
    return false;
  }
  statted = io->ops->fstat (io, f, &st) == 0;
  if (statted) {
    while (n < st.size && n < sizeof text - 1) {
      ssize_t r = io->ops->pread (io, f, text + n, sizeof text - 1 - n, n);
      if (r <= 0)
        break;
      n += r;
    }
  }
  io->ops->close (io, f);
  text[n] = '\0';
  error_clear ();
  sscanf (text, "host=%63s pid=%ld", s->host, &s->pid);
  /* %a: at most 24 characters, whatever a hostile server says */
  len = snprintf (buf, sizeof buf, "%a %" PRIu64 " ", st.mtime, st.size);
  memcpy (buf + len, text, n);
  repo_sha256 (buf, len + n, s->id);
  s->mtime = st.mtime;
  if (statted && n == 0 && st.size == 0 && io_clock (io, &now) == 0 &&
      now - st.mtime > grace)
    s->stale = true;
  else
    s->stale = strcmp (s->host, me) == 0 && s->pid > 0 &&
      kill (s->pid, 0) == -1 && errno == ESRCH;
  error_clear ();
  return s->stale;
}

#define LOCK_EMPTY_GRACE 30
#define LOCK_TEXT_MAX 192

int
io_lock_held (struct repo_io *io, const char *path)
{
  struct repo_stat st;
  struct lock_seen s;

  if (io->ops->stat (io, path, &st) == -1)
    return errno == ENOENT ? 0 : -1;
  return lock_look (io, path, LOCK_EMPTY_GRACE, &s) || s.missing ? 0 : 1;
}

/* The content of a lock or a claim: who holds it, and a nonce, so that no
 * two takers (two threads of one process) write the same bytes (an object
 * store tells its own version from another's by them, io-s3.c 3.).  On an
 * object store the exclusive create happens at close (io-s3.c 3.): EEXIST
 * may come from the close.  Elsewhere the file is read back once written:
 * a taker stopped between its create and its write for longer than
 * LOCK_EMPTY_GRACE has had its empty lock taken over, and its write went
 * to a file that no longer has the name (or, on NFS, failed); the lock is
 * then someone else's.  A lock whose write failed is removed if that took
 * less than a third of the grace (no one can have taken it over), else
 * left (it may be someone else's by now; empty, it is taken over after
 * the grace).  0, or -1 with errno (EEXIST: taken). */
static int
lock_create (struct repo_io *io, const char *path, char wrote[LOCK_TEXT_MAX])
{
  static _Atomic unsigned nonce;
  char host[64] = "", text[LOCK_TEXT_MAX];
  uint64_t rnd = 0;                   /* unseeded random () is the same in
                                       * every process: cloned hosts with
                                       * the same pid would match */
  double t0 = now_monotonic ();
  struct repo_file *f;
  int len;

  gethostname (host, sizeof host - 1);
  f = io->ops->open (io, path, O_WRONLY | O_CREAT | O_EXCL);
  if (!f)
    return -1;
  if (getrandom (&rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
    rnd = (uint64_t) (now_monotonic () * 1e9) ^ (uint64_t) time (NULL);
  len = snprintf (text, sizeof text, "host=%s pid=%ld n=%u-%016" PRIx64 "\n",
                  host, (long) getpid (), atomic_fetch_add (&nonce, 1), rnd);
  if (io_write_all (io, f, text, len, 0) == -1) {
    ERROR_SAVE (saved);
    io->ops->close (io, f);
    if (now_monotonic () - t0 < LOCK_EMPTY_GRACE / 3)
      io->ops->unlink (io, path);
    ERROR_RESTORE (saved);
    if (errno == EEXIST)
      errno = EIO;
    return -1;
  }
  if (io->ops->close (io, f) == -1)
    return -1;
  if (!io->ops->object_store) {
    CLEANUP_FREE char *back = NULL;
    size_t n = 0;

    if (io_read_file (io, path, 4096, &back, &n) == -1 && errno != ENOENT &&
        errno != EFBIG)
      return -1;
    if (!back || n != (size_t) len || memcmp (back, text, len) != 0) {
      error_set (EEXIST, "%s/%s: taken over while it was being written",
                 io->location, path);
      return -1;
    }
  }
  if (wrote)
    memcpy (wrote, text, len + 1);
  return 0;
}

/* Take over the lock file path, judged stale as *seen.  Removing it by
 * name is not enough: another taker that judged the same lock stale may
 * have removed it already and created its own, which a removal by name
 * would take from it (two holders).  So a taker first claims this stale
 * lock, by creating PATH.takeover-ID-K exclusively (ID: the stale lock's
 * identity), and, holding the claim, removes path only if it is still
 * the lock it judged: a claim is only ever removed after that, so a
 * second taker of the same stale lock either waits for the claim or finds
 * path changed.  A claim whose taker is gone (a process of this host that
 * is gone, or empty and older than CLAIM_GRACE) is passed over: K + 1.
 * 0: done (by this taker or another: try the lock again); 1: another
 * taker is at it (*busy: who); -1 with the error set. */
#define CLAIM_GRACE 60
#define CLAIM_MAX 8
static int
lock_take_over (struct repo_io *io, const char *path,
                const struct lock_seen *seen, struct lock_seen *busy)
{
  char hex[2 * 8 + 1];
  struct lock_seen now;
  int k, j, tries = 0, ret = 0;

  hex_encode (seen->id, 8, hex);
  for (k = 0; k < CLAIM_MAX; k++) {
    CLEANUP_FREE char *claim = xasprintf ("%s.takeover-%s-%d", path, hex, k);
    if (lock_create (io, claim, NULL) == 0)
      break;
    if (errno != EEXIST)
      return -1;
    error_clear ();
    if (!lock_look (io, claim, CLAIM_GRACE, busy) && !busy->missing)
      return 1;                       /* a live taker */
    if (busy->missing && ++tries < 100)
      k--;                            /* its taker just finished: again */
  }
  if (k == CLAIM_MAX) {
    error_setx ("%s/%s: %d takers of this stale lock were killed in the "
                "middle; remove %s and %s.takeover-*", io->location, path,
                CLAIM_MAX, path, path);
    return -1;
  }
  lock_look (io, path, LOCK_EMPTY_GRACE, &now);
  if (!now.missing && memcmp (now.id, seen->id, sizeof now.id) == 0 &&
      io->ops->unlink (io, path) == -1 && errno != ENOENT)
    ret = -1;
  ERROR_SAVE (saved);
  for (j = k; j >= 0; j--) {
    CLEANUP_FREE char *claim = xasprintf ("%s.takeover-%s-%d", path, hex, j);
    io->ops->unlink (io, claim);
  }
  ERROR_RESTORE (saved);
  return ret;
}

/* A lock just created and read back (wrote: its bytes) on storage that
 * is not an object store: is it still ours once no taker is at it?  Its
 * creator may have been stalled between its create and its write long
 * enough for the empty file to be judged stale: a taker holding a claim
 * (lock_take_over) may have re-read it, still empty, and be about to
 * remove it by name, after our write and read-back.  So while a live
 * claim on this lock is younger than CLAIM_GRACE (by the storage's
 * clock: one left by a taker killed, here or on another host, is passed
 * over then), wait for it to go (at most CLAIM_GRACE), then read the
 * lock again.  0: ours; 1: taken over (try again); -1 with the error
 * set. */
static int
lock_settle (struct repo_io *io, const char *path, const char *wrote)
{
  CLEANUP_FREE char *dir = xstrdup (path), *back = NULL;
  const char *base = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
  CLEANUP_FREE char *prefix = xasprintf ("%s.takeover-", base);
  double end = now_monotonic () + CLAIM_GRACE;
  bool waited = false;
  size_t n = 0;

  if (io->ops->object_store)
    return 0;
  if (strrchr (dir, '/'))
    *strrchr (dir, '/') = '\0';
  else
    strcpy (dir, ".");
  for (;;) {
    char **names = io->ops->list (io, dir);
    bool live = false;
    double now;

    if (!names)
      return -1;
    for (char **q = names; *q && !live; q++) {
      struct lock_seen c;
      CLEANUP_FREE char *claim = NULL;

      if (strncmp (*q, prefix, strlen (prefix)) != 0)
        continue;
      claim = xasprintf ("%s/%s", dir, *q);
      live = !lock_look (io, claim, CLAIM_GRACE, &c) && !c.missing &&
        io_clock (io, &now) == 0 && now - c.mtime <= CLAIM_GRACE;
      error_clear ();
    }
    for (char **q = names; *q; q++)
      free (*q);
    free (names);
    if (!live || now_monotonic () >= end)
      break;
    if (!waited)
      crash_step (11);                /* a test hook: about to wait */
    waited = true;
    usleep (50000);
  }
  if (!waited)
    return 0;
  if (io_read_file (io, path, 4096, &back, &n) == -1 && errno != ENOENT &&
      errno != EFBIG)
    return -1;
  error_clear ();
  return back && n == strlen (wrote) && memcmp (back, wrote, n) == 0 ? 0 : 1;
}

int
io_lock (struct repo_io *io, const char *path, const char *what, double wait)
{
  double end = now_monotonic () + wait;
  int gone = 0;

  if (io_mkdir_p1 (io, "locks") == -1)
    return -1;
  for (;;) {
    struct lock_seen s, busy;
    char mine[LOCK_TEXT_MAX];
    int r;

    if (lock_create (io, path, mine) == 0) {
      r = lock_settle (io, path, mine);
      if (r <= 0)
        return r;
      continue;                       /* taken over meanwhile */
    }
    if (errno != EEXIST)
      return -1;
    error_clear ();
    if (lock_look (io, path, LOCK_EMPTY_GRACE, &s)) {
      /* Left by a process that died on this host, or by one killed
       * between its create and its write. */
      r = lock_take_over (io, path, &s, &busy);
      if (r == -1)
        return -1;
      if (r == 0)
        continue;
      snprintf (s.host, sizeof s.host, "%s", busy.host);
      s.pid = busy.pid;
    }
    else if (s.missing && ++gone < 100)
      continue;                       /* released meanwhile */
    if (now_monotonic () >= end) {
      error_setx ("%s is running (%s/%s: host %s pid %ld); if it is not, "
                  "remove that file", what, io->location, path, s.host,
                  s.pid);
      return -1;
    }
    usleep (50000);
  }
}

void
io_unlock (struct repo_io *io, const char *path)
{
  ERROR_SAVE (saved);
  io->ops->unlink (io, path);
  ERROR_RESTORE (saved);
}
