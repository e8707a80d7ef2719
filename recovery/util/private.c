/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Files and directories only their owner may read.  Everything bootback
 * keeps holds backed-up disks or says what is in them (repositories, the
 * catalog, sessions, reports, restored images), so what it creates is
 * 0700 (directories) or 0600 (files), set by the call that creates it:
 * there is no moment when another user could open it, and a umask can
 * only narrow these modes, never widen them.  Existing directories are
 * left as they are (bootback repo init tightens a repository).
 */
#include <errno.h>
#include <fcntl.h>
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
  int fd = open_private (path, O_WRONLY | O_TRUNC);
  FILE *f;

  if (fd == -1)
    return NULL;
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
