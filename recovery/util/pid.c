/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process identity: signal only the process bootback started.
 *
 * A pid names whoever holds it now.  After a crash or a reboot a pid file
 * (or a pid kept in the catalog) can name an unrelated process, and a
 * `kill` of it stops someone else's program.  So before it signals a
 * process it started earlier, bootback checks that it is still that one:
 *
 *  - alive and not a zombie (a zombie has an empty command line);
 *  - its command line contains a needle that only that process has: the
 *    path of the socket it serves, the mount point it provides,
 *    "supervise ID ";
 *  - where the start time was recorded next to the pid (pid_file_stamp:
 *    "PID START", START being field 22 of /proc/PID/stat, clock ticks
 *    since boot), the same start time: a reused pid has another one.
 *
 * pid_stop holds a pidfd from before the check to the last signal, so the
 * process checked is the process signalled.  Where there are no pidfds
 * (Linux before 5.3, a seccomp filter, valgrind 3.19: ENOSYS; or the test
 * hook BOOTBACK_NO_PIDFD) it signals with kill (), checking the command
 * line and start time again just before each signal, and polls for the
 * exit: the same checks, with a window of a few microseconds for a reused
 * pid instead of none.  It never silently does nothing to a live process.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "recovery/util/util.h"

unsigned long long
pid_start_time (pid_t pid)
{
  char path[64], buf[1024];
  unsigned long long st = 0;
  char *p;
  int fd, i;
  ssize_t r;

  if (pid <= 0)
    return 0;
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return 0;
  r = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (r <= 0)
    return 0;
  buf[r] = '\0';
  p = strrchr (buf, ')');          /* after the command name */
  if (!p)
    return 0;
  /* Field 3 is the state, just after ") "; field 22 the start time. */
  for (i = 2; i < 22 && p; i++)
    p = strchr (p + 1, ' ');
  if (p)
    st = strtoull (p + 1, NULL, 10);
  return st;
}

bool
pid_matches (pid_t pid, unsigned long long start, const char *needle)
{
  char path[64], buf[8192];
  ssize_t n, i;
  int fd;

  if (pid <= 0)
    return false;
  snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return false;             /* a zombie has an empty command line */
  for (i = 0; i < n; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
  buf[n] = '\0';
  if (needle && !strstr (buf, needle))
    return false;
  return start == 0 || pid_start_time (pid) == start;
}

pid_t
pid_file_read (const char *path, unsigned long long *start)
{
  CLEANUP_FCLOSE FILE *f = fopen (path, "re");
  unsigned long long st = 0;
  int pid = 0;

  if (f && fscanf (f, "%d %llu", &pid, &st) < 1)
    pid = 0;
  if (pid < 0)
    pid = 0;
  if (start)
    *start = pid > 0 ? st : 0;
  return pid;
}

int
pid_file_stamp (const char *path, const char *needle)
{
  CLEANUP_FREE char *tmp = xasprintf ("%s.tmp", path);
  unsigned long long start;
  pid_t pid = pid_file_read (path, NULL);
  FILE *f;

  if (pid <= 0) {
    error_setx ("%s: no pid in it", path);
    return -1;
  }
  start = pid_start_time (pid);
  if (!pid_matches (pid, start, needle) || start == 0) {
    error_setx ("%s: process %d is not the one started (no \"%s\" in its "
                "command line)", path, (int) pid, needle);
    return -1;
  }
  f = fopen (tmp, "we");
  if (!f) {
    error_set (errno, "%s", tmp);
    return -1;
  }
  fprintf (f, "%d %llu\n", (int) pid, start);
  if (fclose (f) != 0 || rename (tmp, path) == -1) {
    error_set (errno, "%s", path);
    unlink (tmp);
    return -1;
  }
  return 0;
}

/* Wait up to secs for the process of pidfd to exit: true if it did. */
static bool
pidfd_wait (int pidfd, double secs)
{
  double end = now_monotonic () + secs;

  for (;;) {
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    double left = end - now_monotonic ();
    int r;
    if (left <= 0)
      return false;
    r = poll (&p, 1, (int) (left * 1000) + 1);
    if (r > 0)
      return true;
    if (r == -1 && errno != EINTR)
      return false;
  }
}

/* Reap pid if it is our child and has exited (or does within a second). */
static void
reap (pid_t pid)
{
  double end = now_monotonic () + 1;

  while (waitpid (pid, NULL, WNOHANG) == 0 && now_monotonic () < end)
    usleep (1000);
}

/* Wait up to secs for the process (pid, start) to be gone or a zombie. */
static bool
poll_gone (pid_t pid, unsigned long long start, double secs)
{
  double end = now_monotonic () + secs;

  while (pid_matches (pid, start, NULL)) {
    if (now_monotonic () >= end)
      return false;
    usleep (10000);
  }
  return true;
}

/* pid_stop without a pidfd (see the top of this file). */
static int
pid_stop_kill (pid_t pid, unsigned long long start, const char *needle,
               double secs)
{
  if (!pid_matches (pid, start, needle))
    return 0;
  if (start == 0 && (start = pid_start_time (pid)) == 0)
    return 0;                       /* gone since */
  if (pid_matches (pid, start, NULL) && kill (pid, SIGTERM) == 0 &&
      !poll_gone (pid, start, secs) && pid_matches (pid, start, NULL)) {
    kill (pid, SIGKILL);
    poll_gone (pid, start, 5);
  }
  reap (pid);
  return 1;
}

int
pid_stop (pid_t pid, unsigned long long start, const char *needle, double secs)
{
  int pidfd;

  if (pid <= 0)
    return 0;
  if (test_hook_env ("BOOTBACK_NO_PIDFD"))
    return pid_stop_kill (pid, start, needle, secs);
  pidfd = pidfd_open (pid, 0);
  if (pidfd == -1)
    return errno == ESRCH ? 0 : pid_stop_kill (pid, start, needle, secs);
  if (!pid_matches (pid, start, needle)) {
    close (pidfd);
    return 0;
  }
  if (pidfd_send_signal (pidfd, SIGTERM, NULL, 0) == 0 &&
      !pidfd_wait (pidfd, secs)) {
    pidfd_send_signal (pidfd, SIGKILL, NULL, 0);
    pidfd_wait (pidfd, 5);
  }
  close (pidfd);
  waitpid (pid, NULL, WNOHANG);     /* reap it if it is our child */
  return 1;
}
