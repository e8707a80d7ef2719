/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Files and directories only their owner may read.  Everything bootback
 * keeps holds backed-up disks or says what is in them (repositories, the
 * catalog, sessions, reports, restored images), so what it creates is
 * 0700 (directories) or 0600 (files), set by the call that creates it:
 * there is no moment when another user could open it, and a umask can
 * only narrow these modes, never widen them.  Existing directories are
 * left as they are (bootback repo init tightens a repository).  An
 * existing file is written into (fopen_private) only if it is ours: a
 * regular file of our uid with one link, tightened to 0600 before it is
 * truncated; a file someone else put in a shared directory (a report
 * directory, report --html PATH) is refused, not filled and left theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>

#include "recovery/util/util.h"

int
mkdir_private (const char *path)
{
  if (mkdir (path, PRIVATE_DIR_MODE) == -1 && errno != EEXIST) {
    error_set (errno, "mkdir: %s", path);
    return -1;
  }
  return 0;
}

int
mkdir_p_private (const char *path)
{
  CLEANUP_FREE char *p = xstrdup (path);
  char *q;

  for (q = p + 1; *q; q++) {
    if (*q != '/')
      continue;
    *q = '\0';
    if (mkdir_private (p) == -1)
      return -1;
    *q = '/';
  }
  return mkdir_private (p);
}

int
open_private (const char *path, int flags)
{
  /* never through a symlink: a directory others can write (a report
   * directory given on the command line, a share) must not make root
   * write elsewhere */
  return open (path, flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW, PRIVATE_FILE_MODE);
}

int
create_private (const char *path)
{
  int fd = open_private (path, O_WRONLY | O_EXCL);

  if (fd == -1) {
    error_set (errno, "create: %s", path);
    return -1;
  }
  close (fd);
  return 0;
}

FILE *
fopen_private (const char *path)
{
  /* not truncated before it is checked; O_NONBLOCK: a FIFO there fails
   * (ENXIO) instead of blocking */
  int fd = open_private (path, O_WRONLY | O_NONBLOCK);
  struct stat st;
  FILE *f;

  if (fd == -1) {
    int e = errno;
    error_set (e, "open: %s", path);
    errno = e;
    return NULL;
  }
  if (fstat (fd, &st) == -1) {
    int e = errno;
    error_set (e, "fstat: %s", path);
    close (fd);
    errno = e;
    return NULL;
  }
  if (!S_ISREG (st.st_mode) || st.st_uid != geteuid () || st.st_nlink != 1) {
    int e = S_ISREG (st.st_mode) ? EPERM : EINVAL;
    error_setx ("%s exists and is not a file of ours (owner uid %u, %u link%s, "
                "mode %o): refusing to write into it", path, (unsigned) st.st_uid,
                (unsigned) st.st_nlink, st.st_nlink == 1 ? "" : "s",
                (unsigned) (st.st_mode & 07777));
    close (fd);
    errno = e;
    return NULL;
  }
  if (((st.st_mode & 077) && fchmod (fd, PRIVATE_FILE_MODE) == -1) ||
      ftruncate (fd, 0) == -1 ||
      fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK) == -1) {
    int e = errno;
    error_set (e, "%s", path);
    close (fd);
    errno = e;
    return NULL;
  }
  f = fdopen (fd, "w");
  if (!f) {
    int e = errno;
    close (fd);
    errno = e;
  }
  return f;
}

int
tighten_mode (const char *path, mode_t *was)
{
  struct stat st;

  if (stat (path, &st) == -1) {
    error_set (errno, "stat: %s", path);
    return -1;
  }
  *was = st.st_mode & 07777;
  if ((st.st_mode & 077) == 0)
    return 0;
  if (chmod (path, st.st_mode & 0700) == -1) {
    error_set (errno, "chmod: %s", path);
    return -1;
  }
  return 1;
}

/* Could someone else than root and us rename an entry of directory st
 * (the one holding the output itself when first)?  Its owner could; so
 * could a group or others who may write it, unless it is sticky (then
 * only an entry's owner may rename it, and the next directory down is
 * checked to be root's or ours) and not the output's own directory. */
static bool
dir_unsafe (const struct stat *st, bool first)
{
  if (st->st_uid != 0 && st->st_uid != geteuid ())
    return true;
  return (st->st_mode & (S_IWGRP | S_IWOTH)) && (first || !(st->st_mode & S_ISVTX));
}

static int
dir_refuse (const char *dir, const struct stat *st, const char *path)
{
  struct passwd pw, *pp = NULL;
  char buf[1024], uid[32];

  snprintf (uid, sizeof uid, "uid %u", (unsigned) st->st_uid);
  getpwuid_r (st->st_uid, &pw, buf, sizeof buf, &pp);
  error_setx ("directory %s (owner %s, mode %04o) can be written by another "
              "user than root or you: they could rename a symbolic link over %s "
              "after bootback checked it and before QEMU opens it by name; give "
              "a path under directories only you or root can write (chmod go-w "
              "%s if it is yours, or use a directory of your own)", dir,
              pp ? pp->pw_name : uid, (unsigned) (st->st_mode & 07777), path, dir);
  return -1;
}

int
dir_chain_private (const char *path, char *resolved, size_t len)
{
  CLEANUP_FREE char *d = xstrdup (path), *b = xstrdup (path);
  char rp[PATH_MAX], *slash;
  struct stat st;
  bool first = true;

  if (!realpath (dirname (d), rp)) {
    error_set (errno, "the directory of %s", path);
    return -1;
  }
  if (resolved && (size_t) snprintf (resolved, len, "%s%s%s", rp,
                                     strcmp (rp, "/") ? "/" : "", basename (b)) >= len) {
    error_set (ENAMETOOLONG, "%s", path);
    return -1;
  }
  for (;; first = false) {
    if (stat (rp, &st) == -1) {
      error_set (errno, "stat: %s", rp);
      return -1;
    }
    if (dir_unsafe (&st, first))
      return dir_refuse (rp, &st, path);
    if (strcmp (rp, "/") == 0)
      return 0;
    slash = strrchr (rp, '/');
    slash[slash == rp] = '\0';
  }
}
