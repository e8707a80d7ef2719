/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Running a helper program (qemu-img, qemu-nbd) and capturing what it
 * says, so its own error message can be passed on to the user.
 *
 * bootback is threaded (libvirt's event loop, S3 and read-ahead workers,
 * the web server): between fork and exec a child may make only
 * async-signal-safe calls (another thread may have held a lock, malloc's
 * or stdio's, at the fork, and nobody is left to release it in the
 * child).  So the environment and everything else the child needs is
 * built before fork (env_without_secrets), and what the child says on a
 * failed exec goes through child_say, not stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "recovery/util/util.h"

extern char **environ;

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

/* What only the processes that open the repository may see: the
 * secrets, and where they and the S3 credentials are. */
static const char *const secret_names[] = {
  "BOOTBACK_PASSPHRASE", "BOOTBACK_PASSPHRASE_FILE", "BOOTBACK_KEY_FILE",
  "BOOTBACK_NEW_PASSPHRASE", "BOOTBACK_DST_PASSPHRASE", "BOOTBACK_DST_PASSPHRASE_FILE",
  "BOOTBACK_DST_KEY_FILE", "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE",
};

/* Is kv ("NAME=value") one of them? */
static bool
is_secret (const char *kv)
{
  for (size_t i = 0; i < sizeof secret_names / sizeof *secret_names; i++) {
    size_t n = strlen (secret_names[i]);
    if (strncmp (kv, secret_names[i], n) == 0 && kv[n] == '=')
      return true;
  }
  return false;
}

bool
env_has_secrets (void)
{
  for (size_t i = 0; i < sizeof secret_names / sizeof *secret_names; i++)
    if (getenv (secret_names[i]))
      return true;
  return false;
}

void
env_unset_secrets (void)
{
  for (size_t i = 0; i < sizeof secret_names / sizeof *secret_names; i++)
    unsetenv (secret_names[i]);
}

char **
env_without_secrets (char *const extra[])
{
  size_t ne = 0, nx = 0, n = 0, i;
  char **envp;

  while (environ[ne])
    ne++;
  while (extra && extra[nx])
    nx++;
  envp = xcalloc (ne + nx + 1, sizeof *envp);
  for (i = 0; i < nx; i++)
    envp[n++] = extra[i];
  for (i = 0; i < ne; i++)
    if (!is_secret (environ[i]))
      envp[n++] = environ[i];
  return envp;
}

void
child_fds_for_exec (char *const argv[])
{
  static const char tag[] = "/proc/self/fd/";

  if (syscall (SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == -1)
    for (int fd = 3; fd < 65536; fd++)        /* before Linux 5.11 */
      fcntl (fd, F_SETFD, FD_CLOEXEC);
  for (size_t i = 0; argv[i]; i++)
    for (const char *p = strstr (argv[i], tag); p; p = strstr (p + 1, tag)) {
      int fd = 0;
      const char *d = p + sizeof tag - 1;
      for (; *d >= '0' && *d <= '9' && fd < 65536; d++)
        fd = fd * 10 + (*d - '0');
      if (d > p + sizeof tag - 1 && fd >= 3)
        fcntl (fd, F_SETFD, 0);
    }
}

void
child_say (int fd, const char *what, const char *name, int errnum)
{
  const char *desc = strerrordesc_np (errnum);   /* a table: no locale, no lock */
  const char *parts[] = { what, name ? " " : "", name ? name : "", ": ",
                          desc ? desc : "unknown error", "\n" };

  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    ssize_t r = write (fd, parts[i], strlen (parts[i]));
    (void) r;                                    /* nothing to do if lost */
  }
}

void
child_put_number (char *buf, long n)
{
  char digits[24];
  size_t k = 0, end = strlen (buf), start;

  do
    digits[k++] = '0' + n % 10;
  while ((n /= 10) > 0 && k < sizeof digits);
  for (start = end; start > 0 && buf[start - 1] == ' '; start--)
    ;
  for (size_t i = 0; i < k && start + i < end; i++)
    buf[start + i] = digits[k - 1 - i];
  buf[start + k < end ? start + k : end] = '\0';
}

int
spawn_output (char *const argv[], unsigned flags, pid_t *pidp)
{
  CLEANUP_FREE char **envp = flags & SPAWN_KEEP_SECRETS ? NULL
    : env_without_secrets (NULL);
  int pfd[2];
  pid_t pid;

  pid = fork_with_pipe (pfd);
  if (pid == -1)
    return -1;
  if (pid == 0) {
    int devnull = open ("/dev/null", O_RDONLY);
    if (flags & SPAWN_DIE_WITH_PARENT)
      prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (flags & SPAWN_NEW_GROUP)
      setpgid (0, 0);
    if (devnull >= 0) dup2 (devnull, 0);
    dup2 (pfd[1], 1);
    dup2 (pfd[1], 2);
    child_fds_for_exec (argv);
    if (envp)
      execvpe (argv[0], argv, envp);
    else
      execvp (argv[0], argv);
    child_say (2, argv[0], NULL, errno);
    _exit (127);
  }
  close (pfd[1]);
  *pidp = pid;
  return pfd[0];
}

/* Append what r bytes of buf add to out (up to len-1 bytes in all). */
static void
capture (char *out, size_t len, size_t *n, const char *buf, ssize_t r)
{
  size_t m;

  if (!out || r <= 0 || *n + 1 >= len)
    return;
  m = MIN ((size_t) r, len - 1 - *n);
  memcpy (out + *n, buf, m);
  *n += m;
}

/* Read fd to EOF into out; with a deadline (> 0, monotonic seconds), stop
 * at it: false if it passed first. */
static bool
read_until (int fd, char *out, size_t len, double deadline)
{
  size_t n = 0;
  char buf[4096];
  ssize_t r;
  bool in_time = true;

  for (;;) {
    if (deadline > 0) {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      double left = deadline - now_monotonic ();
      if (left <= 0 || poll (&p, 1, (int) (left * 1000) + 1) == 0) {
        in_time = false;
        break;
      }
    }
    r = read (fd, buf, sizeof buf);
    if (r == 0 || (r == -1 && errno != EINTR && errno != EAGAIN))
      break;
    capture (out, len, &n, buf, r);
  }
  if (out && len) {
    out[n] = '\0';
    while (n > 0 && (out[n-1] == '\n' || out[n-1] == ' '))
      out[--n] = '\0';
  }
  return in_time;
}

/* Wait for pid; its exit status, or -1 (error set). */
static int
reap (pid_t pid, const char *prog)
{
  int status;

  while (waitpid (pid, &status, 0) == -1) {
    if (errno != EINTR) {
      error_set (errno, "waitpid %s", prog);
      return -1;
    }
  }
  if (WIFEXITED (status)) {
    if (WEXITSTATUS (status) == 127) {
      error_setx ("%s: could not run (is it installed?)", prog);
      return -1;
    }
    return WEXITSTATUS (status);
  }
  error_setx ("%s: killed by signal %d", prog, WTERMSIG (status));
  return -1;
}

int
run_command_flags (char *const argv[], char *out, size_t len, int timeout,
                   unsigned flags)
{
  pid_t pid;
  int fd, st;
  bool in_time;

  fd = spawn_output (argv, flags | (timeout > 0 ? SPAWN_NEW_GROUP : 0), &pid);
  if (fd == -1)
    return -1;
  in_time = read_until (fd, out, len, timeout > 0 ? now_monotonic () + timeout : 0);
  close (fd);
  if (!in_time)
    kill (-pid, SIGKILL);
  st = reap (pid, argv[0]);
  if (!in_time) {
    error_setx ("%s: did not finish within %d s: killed", argv[0], timeout);
    return -1;
  }
  return st;
}

int
run_command_timeout (char *const argv[], char *out, size_t len, int timeout)
{
  return run_command_flags (argv, out, len, timeout, 0);
}

int
run_command (char *const argv[], char *out, size_t len)
{
  return run_command_timeout (argv, out, len, 0);
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
