/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Running a helper program (qemu-img, qemu-nbd) and capturing what it
 * says, so its own error message can be passed on to the user.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "recovery/util/util.h"

pid_t
fork_with_pipe (int pfd[2])
{
  pid_t pid;

  if (pipe2 (pfd, O_CLOEXEC) == -1) {
    error_set (errno, "pipe");
    return -1;
  }
  pid = fork ();
  if (pid == -1) {
    error_set (errno, "fork");
    close (pfd[0]); close (pfd[1]);
  }
  return pid;
}

int
spawn_output (char *const argv[], unsigned flags, pid_t *pidp)
{
  int pfd[2];
  pid_t pid;

  pid = fork_with_pipe (pfd);
  if (pid == -1)
    return -1;
  if (pid == 0) {
    int devnull = open ("/dev/null", O_RDONLY);
    if (flags & SPAWN_DIE_WITH_PARENT)
      prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (devnull >= 0) dup2 (devnull, 0);
    dup2 (pfd[1], 1);
    dup2 (pfd[1], 2);
    execvp (argv[0], argv);
    fprintf (stderr, "%s: %s\n", argv[0], strerror (errno));
    _exit (127);
  }
  close (pfd[1]);
  *pidp = pid;
  return pfd[0];
}

int
run_command (char *const argv[], char *out, size_t len)
{
  int fd, status;
  size_t n = 0;
  pid_t pid;
  char buf[4096];
  ssize_t r;

  fd = spawn_output (argv, 0, &pid);
  if (fd == -1)
    return -1;
  while ((r = read (fd, buf, sizeof buf)) > 0 || (r == -1 && errno == EINTR)) {
    if (r <= 0) continue;
    if (out && n + 1 < len) {
      size_t m = MIN ((size_t) r, len - 1 - n);
      memcpy (out + n, buf, m);
      n += m;
    }
  }
  if (out && len) {
    out[n] = '\0';
    while (n > 0 && (out[n-1] == '\n' || out[n-1] == ' '))
      out[--n] = '\0';
  }
  close (fd);
  while (waitpid (pid, &status, 0) == -1) {
    if (errno != EINTR) {
      error_set (errno, "waitpid %s", argv[0]);
      return -1;
    }
  }
  if (WIFEXITED (status)) {
    if (WEXITSTATUS (status) == 127) {
      error_setx ("%s: could not run (is it installed?)", argv[0]);
      return -1;
    }
    return WEXITSTATUS (status);
  }
  error_setx ("%s: killed by signal %d", argv[0], WTERMSIG (status));
  return -1;
}

void
bootback_plugin_path (char *buf, size_t len)
{
  const char *e = test_hook_env ("BOOTBACK_NBDKIT_PLUGIN");
  char exe[4096], *slash;
  ssize_t n;

  if (e) {
    snprintf (buf, len, "%s", e);
    return;
  }
  /* Only a build for testing looks for the plugin of its build tree. */
  n = test_hooks_enabled ? readlink ("/proc/self/exe", exe, sizeof exe - 1) : -1;
  if (n > 0) {
    exe[n] = '\0';
    slash = strrchr (exe, '/');
    if (slash) {
      *slash = '\0';
      snprintf (buf, len, "%s/../../nbd-plugin/nbdkit-bootback-plugin.so", exe);
      if (access (buf, R_OK) == 0)
        return;
    }
  }
  snprintf (buf, len, "bootback");
}

bool
unix_socket_serves (const char *path)
{
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  int fd, r;

  snprintf (a.sun_path, sizeof a.sun_path, "%s", path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  r = connect (fd, (struct sockaddr *) &a, sizeof a);
  close (fd);
  return r == 0;
}
