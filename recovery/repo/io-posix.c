/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The local-directory backend of the I/O ops table: POSIX *at() calls on a
 * directory file descriptor of the repository root.  A struct repo_file
 * is the fd itself (stored as fd + 1 so that NULL means failure).  Files
 * are created 0600 and directories 0700 (util's PRIVATE_*_MODE).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "recovery/repo/repo-int.h"

struct posix {
  int dirfd;
};

#define FD(f) ((int) (intptr_t) (f) - 1)
#define PRIV(io) ((struct posix *) (io)->priv)

/* openat2 (Linux 5.6) with RESOLVE_NO_SYMLINKS: path below dirfd opened
 * in one call, no symbolic link followed in any component (ELOOP).  -1
 * with errno ENOSYS where the kernel (or valgrind 3.19, or a seccomp
 * filter: EPERM) does not have it; the callers then walk. */
static int
open_beneath (int dirfd, const char *path, int flags, mode_t mode)
{
  static _Atomic bool missing;
  struct open_how how = {
    .flags = flags, .mode = flags & O_CREAT ? mode : 0,
    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
  };
  int fd;

  if (missing) {
    errno = ENOSYS;
    return -1;
  }
  fd = syscall (SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd == -1 && (errno == ENOSYS || errno == EPERM)) {
    missing = true;
    errno = ENOSYS;
  }
  return fd;
}

/* Open path (below the root) with O_PATH, never following a symbolic
 * link: openat2, else one component at a time, where a link is opened as
 * itself and nothing can be opened below it (ENOTDIR). */
static int
open_nofollow (int dirfd, const char *path)
{
  CLEANUP_FREE char *p = NULL;
  char *save = NULL, *c;
  int fd = open_beneath (dirfd, path, O_PATH | O_CLOEXEC, 0), next;

  if (fd != -1 || errno != ENOSYS)
    return fd;
  p = xstrdup (path);
  fd = dirfd;
  for (c = strtok_r (p, "/", &save); c; c = strtok_r (NULL, "/", &save)) {
    next = openat (fd, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd != dirfd)
      close (fd);
    if (next == -1)
      return -1;
    fd = next;
  }
  return fd == dirfd ? openat (dirfd, ".", O_PATH | O_CLOEXEC) : fd;
}

/* The directory holding path's last component, reached without following
 * a symbolic link (open_nofollow), and that component in *last (in path).
 * Every operation on a path goes through it and acts on *last with its
 * own no-follow flag: a link planted anywhere in a repository on a share
 * (points/VM -> /root, chunks/abcd -> /etc/cron.d) leads nowhere (ENOTDIR,
 * ELOOP), so nothing outside the repository is listed, created, renamed
 * or removed through it.  Returns the descriptor (dirfd itself for a path
 * of one component; close it with parent_close) or -1 with errno set. */
static int
parent_open (int dirfd, const char *path, const char **last)
{
  const char *slash = strrchr (path, '/');
  CLEANUP_FREE char *dir = NULL;

  if (!slash) {
    *last = path;
    return dirfd;
  }
  *last = slash + 1;
  dir = xasprintf ("%.*s", (int) (slash - path), path);
  return open_nofollow (dirfd, dir);
}

static void
parent_close (int dirfd, int fd)
{
  int e = errno;

  if (fd >= 0 && fd != dirfd)
    close (fd);
  errno = e;
}

static struct repo_file *
p_open (struct repo_io *io, const char *path, int flags)
{
  /* A repository holds no symbolic links: one planted in a shared
   * repository (a chunk, an index, domain.xml) is not followed.  Nor
   * anything but regular files: O_NONBLOCK keeps the open of a FIFO
   * planted there from waiting for a writer forever, and the check
   * refuses it (and devices, sockets). */
  int dirfd = PRIV (io)->dirfd, pfd, fd;
  const char *last;
  struct stat st;

  fd = open_beneath (dirfd, path, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                     PRIVATE_FILE_MODE);
  if (fd == -1 && errno == ENOSYS) {
    pfd = parent_open (dirfd, path, &last);
    if (pfd != -1)
      fd = openat (pfd, last, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
                   PRIVATE_FILE_MODE);
    parent_close (dirfd, pfd);
  }
  if (fd == -1) {
    error_set (errno, "open: %s/%s", io->location, path);
    return NULL;
  }
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    error_set (errno = EIO, "open: %s/%s: not a regular file", io->location, path);
    close (fd);
    return NULL;
  }
  return (struct repo_file *) (intptr_t) (fd + 1);
}

static ssize_t
p_pread (struct repo_io *io, struct repo_file *f, void *buf, size_t n,
         uint64_t off)
{
  ssize_t r;

  do r = pread (FD (f), buf, n, off); while (r == -1 && errno == EINTR);
  if (r == -1)
    error_set (errno, "read: %s", io->location);
  return r;
}

static ssize_t
p_pwrite (struct repo_io *io, struct repo_file *f, const void *buf, size_t n,
          uint64_t off)
{
  ssize_t r;

  do r = pwrite (FD (f), buf, n, off); while (r == -1 && errno == EINTR);
  if (r == -1)
    error_set (errno, "write: %s", io->location);
  return r;
}

static int
p_fsync (struct repo_io *io, struct repo_file *f)
{
  if (fsync (FD (f)) == -1) {
    error_set (errno, "fsync: %s", io->location);
    return -1;
  }
  return 0;
}

static void
p_start_writeback (struct repo_io *io, struct repo_file *f)
{
  /* Errors surface at the syncfs that follows (sync level "filesystem"). */
  (void) sync_file_range (FD (f), 0, 0, SYNC_FILE_RANGE_WRITE);
}

static void
p_will_need (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, pfd, fd;
  const char *last;

  fd = open_beneath (dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
  if (fd == -1 && errno == ENOSYS) {
    pfd = parent_open (dirfd, path, &last);
    if (pfd != -1)
      fd = openat (pfd, last, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    parent_close (dirfd, pfd);
  }
  if (fd == -1)
    return;
  (void) posix_fadvise (fd, 0, 0, POSIX_FADV_WILLNEED);
  close (fd);
}

static void
fill_stat (const struct stat *s, struct repo_stat *st)
{
  st->size = s->st_size;
  st->mtime = s->st_mtim.tv_sec + s->st_mtim.tv_nsec / 1e9;
  st->is_dir = S_ISDIR (s->st_mode);
  st->mode = s->st_mode & 07777;
  st->nlink = s->st_nlink;
}

static int
p_fstat (struct repo_io *io, struct repo_file *f, struct repo_stat *st)
{
  struct stat s;

  if (fstat (FD (f), &s) == -1) {
    error_set (errno, "fstat: %s", io->location);
    return -1;
  }
  fill_stat (&s, st);
  return 0;
}

static int
p_close (struct repo_io *io, struct repo_file *f)
{
  if (close (FD (f)) == -1 && errno != EINTR) {
    error_set (errno, "close: %s", io->location);
    return -1;
  }
  return 0;
}

static int
p_stat (struct repo_io *io, const char *path, struct repo_stat *st)
{
  int dirfd = PRIV (io)->dirfd, r = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);
  struct stat s;

  if (pfd != -1)
    r = fstatat (pfd, last, &s, AT_SYMLINK_NOFOLLOW);
  parent_close (dirfd, pfd);
  if (r == -1) {
    error_set (errno, "stat: %s/%s", io->location, path);
    return -1;
  }
  fill_stat (&s, st);
  return 0;
}

static int
p_mkdir (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, r = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);

  if (pfd != -1)
    r = mkdirat (pfd, last, PRIVATE_DIR_MODE);
  parent_close (dirfd, pfd);
  if (r == -1) {
    error_set (errno, "mkdir: %s/%s", io->location, path);
    return -1;
  }
  return 0;
}

static int
p_rmdir (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, r = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);

  if (pfd != -1)
    r = unlinkat (pfd, last, AT_REMOVEDIR);
  parent_close (dirfd, pfd);
  if (r == -1) {
    error_set (errno, "rmdir: %s/%s", io->location, path);
    return -1;
  }
  return 0;
}

static int
p_unlink (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, r = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);

  if (pfd != -1)
    r = unlinkat (pfd, last, 0);
  parent_close (dirfd, pfd);
  if (r == -1) {
    error_set (errno, "unlink: %s/%s", io->location, path);
    return -1;
  }
  return 0;
}

static int
p_rename (struct repo_io *io, const char *from, const char *to)
{
  int d = PRIV (io)->dirfd, r = -1;
  const char *lf, *lt;
  int pf = parent_open (d, from, &lf), pt = pf == -1 ? -1 : parent_open (d, to, &lt);

  if (pt != -1)
    r = renameat (pf, lf, pt, lt);
  parent_close (d, pf);
  parent_close (d, pt);
  if (r == -1) {
    error_set (errno, "rename: %s/%s -> %s", io->location, from, to);
    return -1;
  }
  return 0;
}

/* No symbolic link in path is followed, so a link planted in a repository
 * on a share cannot make us chmod a host file; special files are left
 * alone. */
static int
p_tighten (struct repo_io *io, const char *path, struct repo_stat *st)
{
  CLEANUP_CLOSE int fd = open_nofollow (PRIV (io)->dirfd, path);
  char proc[64];
  struct stat s;

  if (fd == -1 || fstat (fd, &s) == -1) {
    error_set (errno, "open: %s/%s", io->location, path);
    return -1;
  }
  if (S_ISLNK (s.st_mode)) {
    error_set (ELOOP, "%s/%s: a symbolic link", io->location, path);
    return -1;
  }
  fill_stat (&s, st);
  if ((!S_ISREG (s.st_mode) && !S_ISDIR (s.st_mode)) || (s.st_mode & 077) == 0)
    return 0;
  /* an O_PATH descriptor cannot be fchmod'ed: its /proc link can */
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (chmod (proc, s.st_mode & 0700) == -1) {
    /* ENOENT here means no /proc, not a missing file */
    error_set (errno == ENOENT ? EOPNOTSUPP : errno, "chmod: %s/%s (through %s)",
               io->location, path, proc);
    return -1;
  }
  return 1;
}

static int
p_touch (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, r = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);

  if (pfd != -1)
    r = utimensat (pfd, last, NULL, AT_SYMLINK_NOFOLLOW);
  parent_close (dirfd, pfd);
  if (r == -1) {
    error_set (errno, "touch: %s/%s", io->location, path);
    return -1;
  }
  return 0;
}

static char **
p_list (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, fd = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);
  DIR *d;
  struct dirent *e;
  char **v;
  size_t n = 0, cap = 16;

  if (pfd != -1)
    fd = openat (pfd, last, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  parent_close (dirfd, pfd);
  if (fd == -1 || (d = fdopendir (fd)) == NULL) {
    error_set (errno, "opendir: %s/%s", io->location, path);
    if (fd >= 0) close (fd);
    return NULL;
  }
  v = xmalloc (cap * sizeof *v);
  errno = 0;
  while ((e = readdir (d)) != NULL) {
    if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
      continue;
    if (n + 1 >= cap) {
      cap *= 2;
      v = xrealloc (v, cap * sizeof *v);
    }
    v[n++] = xstrdup (e->d_name);
  }
  v[n] = NULL;
  closedir (d);
  return v;
}

static int
p_sync_dir (struct repo_io *io, const char *path)
{
  int dirfd = PRIV (io)->dirfd, fd = -1;
  const char *last;
  int pfd = parent_open (dirfd, path, &last);

  if (pfd != -1)
    fd = openat (pfd, last, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  parent_close (dirfd, pfd);
  if (fd == -1) {
    error_set (errno, "open: %s/%s", io->location, path);
    return -1;
  }
  if (fsync (fd) == -1) {
    error_set (errno, "fsync: %s/%s", io->location, path);
    close (fd);
    return -1;
  }
  close (fd);
  return 0;
}

static int
p_sync_all (struct repo_io *io)
{
  if (syncfs (PRIV (io)->dirfd) == -1) {
    error_set (errno, "syncfs: %s", io->location);
    return -1;
  }
  return 0;
}

static void
p_free (struct repo_io *io)
{
  close (PRIV (io)->dirfd);
  free (io->priv);
  free (io->location);
  free (io);
}

static const struct repo_io_ops posix_ops = {
  .name = "posix",
  .open = p_open, .pread = p_pread, .pwrite = p_pwrite, .fsync = p_fsync,
  .start_writeback = p_start_writeback,
  .will_need = p_will_need,
  .fstat = p_fstat, .close = p_close, .stat = p_stat, .mkdir = p_mkdir,
  .rmdir = p_rmdir, .unlink = p_unlink, .rename = p_rename, .touch = p_touch,
  .tighten = p_tighten,
  .list = p_list, .sync_dir = p_sync_dir, .sync_all = p_sync_all,
  .free = p_free,
};

struct repo_io *
io_posix_new (const char *dir)
{
  struct repo_io *io;
  struct posix *p;
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd == -1) {
    error_set (errno, "open: %s", dir);
    return NULL;
  }
  io = xcalloc (1, sizeof *io);
  p = xcalloc (1, sizeof *p);
  p->dirfd = fd;
  io->ops = &posix_ops;
  io->priv = p;
  io->location = xstrdup (dir);
  return io;
}
