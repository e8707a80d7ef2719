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

/* Read the holder of lock file path into host and pid; true if it is a
 * process of this host that is gone, or if the file is empty and older
 * than LOCK_EMPTY_GRACE seconds by the storage's clock (its creator was
 * killed between creating and writing it: a lock is written within a
 * moment of its creation). */
#define LOCK_EMPTY_GRACE 30
static bool
lock_holder_dead (struct repo_io *io, const char *path, char host[64],
                  long *pid)
{
  CLEANUP_FREE char *text = NULL;
  char me[64] = "";
  struct repo_stat st;
  double now;
  size_t n = 1;

  host[0] = '\0';
  *pid = 0;
  gethostname (me, sizeof me - 1);
  if (io_read_file (io, path, 4096, &text, &n) == 0)
    sscanf (text, "host=%63s pid=%ld", host, pid);
  if (n == 0 && io->ops->stat (io, path, &st) == 0 &&
      io_clock (io, &now) == 0 && now - st.mtime > LOCK_EMPTY_GRACE)
    return true;
  error_clear ();
  return strcmp (host, me) == 0 && *pid > 0 && kill (*pid, 0) == -1 &&
    errno == ESRCH;
}

int
io_lock_held (struct repo_io *io, const char *path)
{
  struct repo_stat st;
  char host[64];
  long pid;

  if (io->ops->stat (io, path, &st) == -1)
    return errno == ENOENT ? 0 : -1;
  return lock_holder_dead (io, path, host, &pid) ? 0 : 1;
}

/* The content of a lock: who holds it, and a nonce, so that no two
 * takers (two threads of one process) write the same bytes (an object
 * store tells its own version from another's by them, io-s3.c 3.).  On
 * an object store the exclusive create happens at close (io-s3.c 3.):
 * EEXIST may come from the close. */
int
io_lock (struct repo_io *io, const char *path, const char *what, double wait)
{
  static _Atomic unsigned nonce;
  double end = now_monotonic () + wait;
  struct repo_file *f;
  char host[64] = "", text[192];
  int len;

  gethostname (host, sizeof host - 1);
  if (io_mkdir_p1 (io, "locks") == -1)
    return -1;
  for (;;) {
    char ohost[64] = "";
    long pid = 0;

    f = io->ops->open (io, path, O_WRONLY | O_CREAT | O_EXCL);
    if (f) {
      uint64_t rnd = 0;               /* unseeded random () is the same
                                       * in every process: cloned hosts
                                       * with the same pid would match */
      if (getrandom (&rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
        rnd = (uint64_t) (now_monotonic () * 1e9) ^ (uint64_t) time (NULL);
      len = snprintf (text, sizeof text, "host=%s pid=%ld n=%u-%016" PRIx64 "\n",
                      host, (long) getpid (), atomic_fetch_add (&nonce, 1), rnd);
      if (io_write_all (io, f, text, len, 0) == -1) {
        ERROR_SAVE (saved);
        io->ops->close (io, f);
        io->ops->unlink (io, path);
        ERROR_RESTORE (saved);
        return -1;
      }
      if (io->ops->close (io, f) == 0)
        return 0;
    }
    if (errno != EEXIST)
      return -1;
    if (lock_holder_dead (io, path, ohost, &pid)) {
      /* Left by a process that died on this host. */
      io->ops->unlink (io, path);
      continue;
    }
    if (now_monotonic () >= end) {
      error_setx ("%s is running (%s/%s: host %s pid %ld); if it is not, "
                  "remove that file", what, io->location, path, ohost, pid);
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
