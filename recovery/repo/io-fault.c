/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection for tests (SQLite's test6.c idea): a struct repo_io that
 * wraps another and, following a spec, fails or crashes at a chosen
 * operation.  repo_open() installs it when BOOTBACK_FAULT is set:
 *
 *   count            at exit, print "bootback-fault: N ops, M fsyncs" on stderr
 *   eio@K            the K-th operation (1-based, any kind) fails with EIO
 *   enospc@K         the K-th operation fails with ENOSPC
 *   crash@K          SIGKILL this process at the K-th operation
 *   stop@K           SIGSTOP this process at the K-th operation (a test
 *                    then breaks something and sends SIGCONT)
 *   fsync-eio@K      the K-th fsync (file, directory or syncfs) fails with EIO
 *   crash-fsync@K    SIGKILL at the K-th fsync
 *   short            every write writes at most half of what it was asked
 *
 * Items are separated by commas.  (BOOTBACK_CRASH_STEP=N, for the
 * numbered commit steps, is util's crash_step.)
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>

#include "recovery/repo/repo-int.h"

struct fault {
  struct repo_io *inner;
  long eio_at, enospc_at, crash_at, stop_at, fsync_eio_at, crash_fsync_at;
  bool shortw, count;
};

static _Atomic long nops, nfsyncs;

#define F(io) ((struct fault *) (io)->priv)
#define IN(io) (F (io)->inner)

static void
report (void)
{
  fprintf (stderr, "bootback-fault: %ld ops, %ld fsyncs\n",
           atomic_load (&nops), atomic_load (&nfsyncs));
}

/* Count an operation; returns -1 with errno and error set to inject. */
static int
tick (struct repo_io *io, const char *op, bool is_fsync)
{
  struct fault *f = F (io);
  long k = atomic_fetch_add (&nops, 1) + 1;
  long s = is_fsync ? atomic_fetch_add (&nfsyncs, 1) + 1 : 0;

  if (k == f->crash_at || (is_fsync && s == f->crash_fsync_at))
    kill (getpid (), SIGKILL);
  /* raise: the thread at operation K takes the stop itself, so it stops
   * there (sent to the process, another thread may take it while this
   * one goes on for a moment, through more operations) */
  if (k == f->stop_at)
    raise (SIGSTOP);
  if (k == f->eio_at || (is_fsync && s == f->fsync_eio_at)) {
    error_set (EIO, "%s: %s (injected fault at operation %ld)", op,
               io->location, k);
    return -1;
  }
  if (k == f->enospc_at) {
    error_set (ENOSPC, "%s: %s (injected fault at operation %ld)", op,
               io->location, k);
    return -1;
  }
  return 0;
}

static struct repo_file *
f_open (struct repo_io *io, const char *path, int flags)
{
  if (tick (io, "open", false) == -1) return NULL;
  return IN (io)->ops->open (IN (io), path, flags);
}
static ssize_t
f_pread (struct repo_io *io, struct repo_file *fl, void *b, size_t n, uint64_t o)
{
  if (tick (io, "read", false) == -1) return -1;
  return IN (io)->ops->pread (IN (io), fl, b, n, o);
}
static ssize_t
f_pwrite (struct repo_io *io, struct repo_file *fl, const void *b, size_t n,
          uint64_t o)
{
  if (tick (io, "write", false) == -1) return -1;
  if (F (io)->shortw && n > 1)
    n /= 2;
  return IN (io)->ops->pwrite (IN (io), fl, b, n, o);
}
static int
f_fsync (struct repo_io *io, struct repo_file *fl)
{
  if (tick (io, "fsync", true) == -1) return -1;
  return IN (io)->ops->fsync (IN (io), fl);
}
static void
f_start_writeback (struct repo_io *io, struct repo_file *fl)
{
  if (IN (io)->ops->start_writeback)
    IN (io)->ops->start_writeback (IN (io), fl);
}
static void
f_will_need (struct repo_io *io, const char *path)
{
  if (IN (io)->ops->will_need)
    IN (io)->ops->will_need (IN (io), path);
}
static bool
f_uncache (struct repo_io *io, const char *path)
{
  return IN (io)->ops->uncache && IN (io)->ops->uncache (IN (io), path);
}
static bool
f_fetches_whole (struct repo_io *io, const char *path)
{
  return io_fetches_whole (IN (io), path);
}
static int
f_fstat (struct repo_io *io, struct repo_file *fl, struct repo_stat *st)
{
  if (tick (io, "fstat", false) == -1) return -1;
  return IN (io)->ops->fstat (IN (io), fl, st);
}
static int
f_close (struct repo_io *io, struct repo_file *fl)
{
  /* The file is closed even when a fault is injected (no fd leak). */
  int r = tick (io, "close", false);
  if (IN (io)->ops->close (IN (io), fl) == -1) return -1;
  return r;
}
static int
f_stat (struct repo_io *io, const char *p, struct repo_stat *st)
{
  if (tick (io, "stat", false) == -1) return -1;
  return IN (io)->ops->stat (IN (io), p, st);
}
#define PATH_OP(name, op)                                       \
  static int f_##name (struct repo_io *io, const char *p)      \
  {                                                             \
    if (tick (io, op, false) == -1) return -1;                  \
    return IN (io)->ops->name (IN (io), p);                     \
  }
PATH_OP (mkdir, "mkdir")
PATH_OP (rmdir, "rmdir")
PATH_OP (unlink, "unlink")
PATH_OP (touch, "touch")
static int
f_rename (struct repo_io *io, const char *a, const char *b)
{
  if (tick (io, "rename", false) == -1) return -1;
  return IN (io)->ops->rename (IN (io), a, b);
}
static int
f_tighten (struct repo_io *io, const char *p, struct repo_stat *st)
{
  if (tick (io, "tighten", false) == -1) return -1;
  return IN (io)->ops->tighten (IN (io), p, st);
}
static char **
f_list (struct repo_io *io, const char *p)
{
  if (tick (io, "list", false) == -1) return NULL;
  return IN (io)->ops->list (IN (io), p);
}
static int
f_sync_dir (struct repo_io *io, const char *p)
{
  if (tick (io, "fsync", true) == -1) return -1;
  return IN (io)->ops->sync_dir (IN (io), p);
}
static int
f_sync_all (struct repo_io *io)
{
  if (tick (io, "syncfs", true) == -1) return -1;
  return IN (io)->ops->sync_all (IN (io));
}
static void
f_free (struct repo_io *io)
{
  IN (io)->ops->free (IN (io));
  free (io->priv);
  free (io->location);
  free (io);
}

static int
f_retain (struct repo_io *io, const char *p, time_t until)
{
  if (tick (io, "lock", false) == -1) return -1;
  return IN (io)->ops->retain (IN (io), p, until);
}

#define FAULT_OPS                                                       \
  .name = "fault",                                                      \
  .open = f_open, .pread = f_pread, .pwrite = f_pwrite, .fsync = f_fsync, \
  .start_writeback = f_start_writeback,                                 \
  .will_need = f_will_need, .uncache = f_uncache, .fetches_whole = f_fetches_whole, \
  .fstat = f_fstat, .close = f_close, .stat = f_stat, .mkdir = f_mkdir, \
  .rmdir = f_rmdir, .unlink = f_unlink, .rename = f_rename, .touch = f_touch, \
  .tighten = f_tighten,                                                 \
  .list = f_list, .sync_dir = f_sync_dir, .sync_all = f_sync_all,       \
  .free = f_free
static const struct repo_io_ops fault_ops = { FAULT_OPS };
/* Around an object store (io-s3.c): its nature and its locks kept. */
static const struct repo_io_ops fault_object_ops = {
  FAULT_OPS, .object_store = true, .retain = f_retain,
};

struct repo_io *
io_fault_new (struct repo_io *inner, const char *spec)
{
  struct fault *f = xcalloc (1, sizeof *f);
  struct repo_io *io;
  CLEANUP_FREE char *s = xstrdup (spec);
  char *tok, *save = NULL;

  for (tok = strtok_r (s, ",", &save); tok; tok = strtok_r (NULL, ",", &save)) {
    char *at = strchr (tok, '@');
    long k = 0;

    if (at) {
      *at = '\0';
      k = atol (at + 1);
      if (k <= 0) goto bad;
    }
    if (strcmp (tok, "count") == 0 && !at) f->count = true;
    else if (strcmp (tok, "short") == 0 && !at) f->shortw = true;
    else if (strcmp (tok, "eio") == 0 && at) f->eio_at = k;
    else if (strcmp (tok, "enospc") == 0 && at) f->enospc_at = k;
    else if (strcmp (tok, "crash") == 0 && at) f->crash_at = k;
    else if (strcmp (tok, "stop") == 0 && at) f->stop_at = k;
    else if (strcmp (tok, "fsync-eio") == 0 && at) f->fsync_eio_at = k;
    else if (strcmp (tok, "crash-fsync") == 0 && at) f->crash_fsync_at = k;
    else goto bad;
  }
  if (f->count)
    atexit (report);
  io = xcalloc (1, sizeof *io);
  io->ops = inner->ops->object_store ? &fault_object_ops : &fault_ops;
  io->priv = f;
  f->inner = inner;
  io->location = xstrdup (inner->location);
  return io;
 bad:
  error_setx ("BOOTBACK_FAULT: invalid item '%s' in '%s'", tok, spec);
  free (f);
  return NULL;
}
