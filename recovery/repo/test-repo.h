/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers of the repository's unit tests (test-cache.c, test-writer.c,
 * test-gc.c): a scratch repository, points written into it, and an I/O
 * table wrapped around the real one that counts operations and lets a
 * test delay, fail or act between them (the states a real race or a real
 * failure would leave).  Header only, for test programs.
 */
#ifndef BOOTBACK_REPO_TEST_REPO_H
#define BOOTBACK_REPO_TEST_REPO_H

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "recovery/repo/repo-int.h"

/* ---- a scratch repository ------------------------------------------------ */

struct scratch {
  char dir[64];              /* /tmp/NAME.XXXXXX */
  char *loc;                 /* dir/repo */
};

/* A scratch repository with frames of frame bytes (0: the default for
 * new repositories; CHUNK_FRAME: the "sha256-tree" format of
 * repositories made before smaller frames). */
static inline struct repo *
scratch_open_frames (struct scratch *s, const char *name, uint32_t chunk_size,
                     uint32_t frame)
{
  struct repo_init_opts o = { .chunk_size = chunk_size, .frame_size = frame };
  struct repo *r;

  snprintf (s->dir, sizeof s->dir, "/tmp/%s.XXXXXX", name);
  assert (mkdtemp (s->dir));
  s->loc = xasprintf ("%s/repo", s->dir);
  assert (repo_init (s->loc, &o) == 0);
  r = repo_open (s->loc);
  assert (r);
  return r;
}

static inline struct repo *
scratch_open (struct scratch *s, const char *name, uint32_t chunk_size)
{
  return scratch_open_frames (s, name, chunk_size, 0);
}

static inline void
scratch_remove (struct scratch *s)
{
  CLEANUP_FREE char *cmd = xasprintf ("rm -rf %s", s->dir);

  assert (system (cmd) == 0);
  free (s->loc);
}

/* The file of a path relative to the repository root. */
static inline char *
scratch_file (const struct scratch *s, const char *rel)
{
  return xasprintf ("%s/%s", s->loc, rel);
}

/* Set a file's mtime to age seconds before now. */
static inline void
scratch_age (const struct scratch *s, const char *rel, double age)
{
  CLEANUP_FREE char *p = scratch_file (s, rel);
  struct timespec ts[2];

  clock_gettime (CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= (time_t) age;
  ts[1] = ts[0];
  assert (utimensat (AT_FDCWD, p, ts, 0) == 0);
}

static inline bool
scratch_exists (const struct scratch *s, const char *rel)
{
  CLEANUP_FREE char *p = scratch_file (s, rel);
  struct stat st;

  return stat (p, &st) == 0;
}

static inline double
scratch_mtime (const struct scratch *s, const char *rel)
{
  CLEANUP_FREE char *p = scratch_file (s, rel);
  struct stat st;

  assert (stat (p, &st) == 0);
  return st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
}

/* Chunk k of a test disk: len bytes, distinct for every (seed, k), never
 * all zero. */
static inline void
test_chunk_data (uint8_t *buf, size_t len, unsigned seed, uint64_t k)
{
  size_t i;

  for (i = 0; i < len; i++)
    buf[i] = (uint8_t) ((i / 97) * 31 + k * 7 + seed * 131 + 1);
  memcpy (buf, &k, sizeof k);
  buf[8] = seed;
  buf[9] = 1;
}

/* Write a point of vm with one disk "vda" of nchunks chunks of
 * test_chunk_data (seed); its id into id; digests (may be NULL) get the
 * chunks' digests. */
static inline void
test_point_write (struct repo *r, const char *vm, unsigned seed,
                  uint64_t nchunks, char id[TIMESTAMP_LEN + 1],
                  uint8_t (*digests)[REPO_DIGEST_LEN])
{
  uint32_t cs = repo_chunk_size (r);
  CLEANUP_FREE uint8_t *buf = xmalloc (cs);
  CLEANUP_FREE uint8_t (*d)[REPO_DIGEST_LEN] = xcalloc (nchunks, REPO_DIGEST_LEN);
  struct repo_writer *w = repo_writer_begin (r, vm, 0);
  struct repo_manifest m;
  uint64_t k;

  assert (w);
  for (k = 0; k < nchunks; k++) {
    test_chunk_data (buf, cs, seed, k);
    assert (repo_writer_put_chunk (w, buf, cs, d[k], NULL) == 0);
  }
  assert (repo_writer_add_disk (w, "vda", nchunks * cs, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) d) == 0);
  assert (repo_writer_commit (w, &m) == 0);
  snprintf (id, TIMESTAMP_LEN + 1, "%s", m.id);
  if (digests)
    memcpy (digests, d, nchunks * REPO_DIGEST_LEN);
}

/* ---- an I/O table that lets a test step in ---------------------------------- */

/* Called before each operation on path (from is the path of a rename):
 * return -1 with errno set to fail it (not passed on), else 0.  after:
 * called after each operation that succeeded. */
struct hook_io;
typedef int (*hook_fn) (struct hook_io *h, const char *op, const char *path);
struct hook_io {
  struct repo_io *inner;
  hook_fn before, after;
  void *opaque;
  _Atomic unsigned chunk_opens;   /* opens of chunks/... files */
  _Atomic unsigned fsyncs;        /* fsync, sync_dir, sync_all */
  _Atomic unsigned will_needs;    /* storage hints (will_need) */
};

#define HOOK(io) ((struct hook_io *) (io)->priv)
#define INNER(io) (HOOK (io)->inner)

static inline int
hook_before (struct repo_io *io, const char *op, const char *path)
{
  struct hook_io *h = HOOK (io);

  if (strcmp (op, "open") == 0 && strncmp (path, "chunks/", 7) == 0)
    atomic_fetch_add (&h->chunk_opens, 1);
  if (strncmp (op, "fsync", 5) == 0 || strncmp (op, "sync", 4) == 0)
    atomic_fetch_add (&h->fsyncs, 1);
  if (strcmp (op, "will_need") == 0)
    atomic_fetch_add (&h->will_needs, 1);
  if (h->before && h->before (h, op, path) == -1) {
    error_set (errno, "%s: %s (test hook)", op, path);
    return -1;
  }
  return 0;
}

static inline int
hook_after (struct repo_io *io, const char *op, const char *path, int r)
{
  if (r == 0 && HOOK (io)->after)
    HOOK (io)->after (HOOK (io), op, path);
  return r;
}

static inline struct repo_file *
h_open (struct repo_io *io, const char *path, int flags)
{
  if (hook_before (io, "open", path) == -1)
    return NULL;
  return INNER (io)->ops->open (INNER (io), path, flags);
}
static inline ssize_t
h_pread (struct repo_io *io, struct repo_file *f, void *b, size_t n, uint64_t o)
{
  return INNER (io)->ops->pread (INNER (io), f, b, n, o);
}
static inline ssize_t
h_pwrite (struct repo_io *io, struct repo_file *f, const void *b, size_t n,
          uint64_t o)
{
  return INNER (io)->ops->pwrite (INNER (io), f, b, n, o);
}
static inline int
h_fsync (struct repo_io *io, struct repo_file *f)
{
  if (hook_before (io, "fsync", "") == -1)
    return -1;
  return INNER (io)->ops->fsync (INNER (io), f);
}
static inline void
h_start_writeback (struct repo_io *io, struct repo_file *f)
{
  if (INNER (io)->ops->start_writeback)
    INNER (io)->ops->start_writeback (INNER (io), f);
}
static inline int
h_fstat (struct repo_io *io, struct repo_file *f, struct repo_stat *st)
{
  return INNER (io)->ops->fstat (INNER (io), f, st);
}
static inline int
h_close (struct repo_io *io, struct repo_file *f)
{
  return INNER (io)->ops->close (INNER (io), f);
}
static inline int
h_stat (struct repo_io *io, const char *path, struct repo_stat *st)
{
  if (hook_before (io, "stat", path) == -1)
    return -1;
  return hook_after (io, "stat", path,
                     INNER (io)->ops->stat (INNER (io), path, st));
}
static inline int
h_mkdir (struct repo_io *io, const char *path)
{
  if (hook_before (io, "mkdir", path) == -1)
    return -1;
  return INNER (io)->ops->mkdir (INNER (io), path);
}
static inline int
h_rmdir (struct repo_io *io, const char *path)
{
  return INNER (io)->ops->rmdir (INNER (io), path);
}
static inline int
h_unlink (struct repo_io *io, const char *path)
{
  if (hook_before (io, "unlink", path) == -1)
    return -1;
  return INNER (io)->ops->unlink (INNER (io), path);
}
static inline int
h_rename (struct repo_io *io, const char *from, const char *to)
{
  if (hook_before (io, "rename", from) == -1)
    return -1;
  return hook_after (io, "rename", to,
                     INNER (io)->ops->rename (INNER (io), from, to));
}
static inline int
h_tighten (struct repo_io *io, const char *path, struct repo_stat *st)
{
  return INNER (io)->ops->tighten (INNER (io), path, st);
}
static inline int
h_touch (struct repo_io *io, const char *path)
{
  if (hook_before (io, "touch", path) == -1)
    return -1;
  return INNER (io)->ops->touch (INNER (io), path);
}
static inline char **
h_list (struct repo_io *io, const char *path)
{
  return INNER (io)->ops->list (INNER (io), path);
}
static inline int
h_sync_dir (struct repo_io *io, const char *path)
{
  if (hook_before (io, "sync_dir", path) == -1)
    return -1;
  return INNER (io)->ops->sync_dir (INNER (io), path);
}
static inline int
h_sync_all (struct repo_io *io)
{
  if (hook_before (io, "sync_all", "") == -1)
    return -1;
  return INNER (io)->ops->sync_all (INNER (io));
}
static inline void
h_will_need (struct repo_io *io, const char *path)
{
  if (hook_before (io, "will_need", path) == 0 && INNER (io)->ops->will_need)
    INNER (io)->ops->will_need (INNER (io), path);
}
static inline void
h_free (struct repo_io *io)
{
  INNER (io)->ops->free (INNER (io));
  free (io->priv);
  free (io->location);
  free (io);
}

static const struct repo_io_ops hook_ops = {
  .name = "test-hook",
  .open = h_open, .pread = h_pread, .pwrite = h_pwrite, .fsync = h_fsync,
  .start_writeback = h_start_writeback, .fstat = h_fstat, .close = h_close,
  .stat = h_stat, .mkdir = h_mkdir, .rmdir = h_rmdir, .unlink = h_unlink,
  .rename = h_rename, .tighten = h_tighten, .touch = h_touch, .list = h_list,
  .sync_dir = h_sync_dir, .sync_all = h_sync_all, .will_need = h_will_need,
  .free = h_free,
};

/* Put a hook_io between r and its storage; it is freed with r. */
static inline struct hook_io *
hook_install (struct repo *r)
{
  struct repo_io *io = xcalloc (1, sizeof *io);
  struct hook_io *h = xcalloc (1, sizeof *h);

  h->inner = r->io;
  io->ops = &hook_ops;
  io->priv = h;
  io->location = xstrdup (r->io->location);
  r->io = io;
  return h;
}

#endif /* BOOTBACK_REPO_TEST_REPO_H */
