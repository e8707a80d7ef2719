/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The nbdkit processes a supervisor keeps serving (supervise.c for a
 * session's disks, pool.c for the backend shared by pooled sessions):
 * start one detached, wait until its socket serves, adopt one a previous
 * supervisor left, restart one that died (slower if it keeps dying), stop
 * one.  And the start-up handshake of a supervisor daemon (both sessions'
 * and the pool's).
 *
 * nbdkit (1.32, -f) exits when its parent process dies, so the nbdkits are
 * not the supervisor's children: each is started through an intermediate
 * process that exits at once (init becomes the parent), in a session of
 * its own, and is watched with a pidfd.  So a supervisor started after a
 * crash of its predecessor adopts the nbdkits still running (found by
 * their pid files and checked by their command lines: their socket path)
 * instead of restarting them.
 *
 * Between fork and exec only async-signal-safe calls (util/spawn.c): the
 * nbdkit's environment and a remote front's listening socket are made
 * before the fork (proc_launch), the child only moves descriptors, writes
 * its pid into the environment it was given, and execs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "recovery/instant/instant-int.h"

void
proc_log (const char *fmt, ...)
{
  char ts[TIMESTAMP_LEN + 1];
  va_list ap;

  timestamp_format (time (NULL), ts);
  fprintf (stderr, "%s supervise[%d]: ", ts, (int) getpid ());
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  fflush (stderr);
}

void
proc_init (struct proc *p, const char *kind, const char *what, const char *name,
           const char *socket, const char *dir)
{
  memset (p, 0, sizeof *p);
  p->kind = kind;
  p->pidfd = -1;
  snprintf (p->what, sizeof p->what, "%s", what);
  snprintf (p->name, sizeof p->name, "%s", name);
  snprintf (p->socket, sizeof p->socket, "%s", socket);
  snprintf (p->pidfile, sizeof p->pidfile, "%s/%s.%s.pid", dir, name, kind);
  snprintf (p->logfile, sizeof p->logfile, "%s/nbdkit-%s-%s.log", dir, name, kind);
}

void
proc_free (struct proc *p)
{
  strv_free (p->argv);
  p->argv = NULL;
}

static void
write_pidfile (struct proc *p)
{
  FILE *f = fopen_private (p->pidfile);

  if (f) {
    fprintf (f, "%d\n", (int) p->pid);
    fclose (f);
  }
}

/* What the grandchild execs with, made before the fork.  Only a backend
 * opens the repository: a front (the retry filter over the backend's
 * socket; a TCP listener for another host) gets the environment without
 * the secrets and where they are, and a TCP front its listening socket
 * (listen_fd) with LISTEN_FDS and LISTEN_PID (its digits written by the
 * child: nbdkit's pid is known only there). */
struct launch {
  char **envp;                  /* NULL: this process's environment */
  int listen_fd;                /* -1 if none */
  char listen_pid[32];          /* "LISTEN_PID=" and room for the digits */
};

static int
launch_prepare (const struct proc *p, struct launch *l)
{
  char *extra[4] = { NULL };
  size_t n = 0;

  l->envp = NULL;
  l->listen_fd = -1;
  if (strcmp (p->kind, "backend") == 0)
    return 0;
  if (p->env[0])
    extra[n++] = (char *) p->env;
  if (p->tcp) {
    l->listen_fd = remote_front_socket (p->s, p->k);
    if (l->listen_fd == -1)
      return -1;
    snprintf (l->listen_pid, sizeof l->listen_pid, "LISTEN_PID=%20s", "");
    extra[n++] = "LISTEN_FDS=1";
    extra[n++] = l->listen_pid;
  }
  l->envp = env_without_secrets (extra);
  return 0;
}

static void
launch_free (struct launch *l)
{
  free (l->envp);
  if (l->listen_fd >= 0)
    close (l->listen_fd);
}

/* In the grandchild: wait until the intermediate process is gone (init
 * is the parent), stdin/stdout to /dev/null, stderr to the log, a TCP
 * front's socket as fd 3, exec.  Only async-signal-safe calls. */
static void __attribute__((noreturn))
proc_exec (const struct proc *p, pid_t parent, struct launch *l)
{
  const struct timespec ms = { 0, 1000000 };
  int fd = open ("/dev/null", O_RDWR);
  sigset_t all;

  while (getppid () == parent)
    nanosleep (&ms, NULL);
  if (fd >= 0) { dup2 (fd, 0); dup2 (fd, 1); }
  fd = open (p->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd == 2)                  /* dup2 would leave FD_CLOEXEC on it */
    fcntl (2, F_SETFD, 0);
  else if (fd >= 0)
    dup2 (fd, 2);
  sigemptyset (&all);
  sigprocmask (SIG_SETMASK, &all, NULL);
  if (l->listen_fd >= 0) {
    /* dup2 clears close-on-exec on 3, but does nothing if it is 3 */
    if ((l->listen_fd == 3 ? fcntl (3, F_SETFD, 0) : dup2 (l->listen_fd, 3)) == -1) {
      child_say (2, "listening socket of", p->what, errno);
      _exit (127);
    }
    child_put_number (l->listen_pid, (long) getpid ());
  }
  if (l->envp)
    execvpe (p->argv[0], p->argv, l->envp);
  else
    execvp (p->argv[0], p->argv);
  child_say (2, "exec", p->argv[0], errno);
  _exit (127);
}

int
proc_launch (struct proc *p)
{
  struct launch l;
  pid_t pid, mid;
  int pfd[2];

  unlink (p->socket);                 /* a stale socket first */
  if (launch_prepare (p, &l) == -1)
    return -1;
  /* An intermediate process forks nbdkit and exits; nbdkit waits for that
   * before exec'ing, and tells us nothing but its pid (pipe).  It also
   * gets its own session, away from our process group. */
  if (pipe2 (pfd, O_CLOEXEC) == -1) {
    error_set (errno, "pipe");
    launch_free (&l);
    return -1;
  }
  mid = fork ();
  if (mid == -1) {
    error_set (errno, "fork");
    close (pfd[0]); close (pfd[1]);
    launch_free (&l);
    return -1;
  }
  if (mid == 0) {
    pid_t parent = getpid ();
    setsid ();
    pid = fork ();
    if (pid == 0)
      proc_exec (p, parent, &l);
    if (write (pfd[1], &pid, sizeof pid) != (ssize_t) sizeof pid)
      _exit (1);
    _exit (0);
  }
  close (pfd[1]);
  launch_free (&l);                   /* the child has its own copy */
  pid = -1;
  if (read (pfd[0], &pid, sizeof pid) != (ssize_t) sizeof pid)
    pid = -1;
  close (pfd[0]);
  while (waitpid (mid, NULL, 0) == -1 && errno == EINTR)
    ;
  if (pid <= 0) {
    error_setx ("could not start the %s nbdkit of %s", p->kind, p->what);
    return -1;
  }
  p->pid = pid;
  p->pidfd = pidfd_open (pid, 0);
  write_pidfile (p);
  return 0;
}

/* The last "error: " line of p's log (its last 4 KiB), printable, as
 * ": LINE" (malloc'd), or "" if there is none: why an nbdkit that exited
 * at start did (a plugin that refused the point names its disk there). */
static char *
log_error (const struct proc *p)
{
  char buf[4097], *line = NULL, *s, *e;
  int fd = open (p->logfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  off_t end;
  ssize_t n = 0;

  if (fd >= 0) {
    end = lseek (fd, 0, SEEK_END);
    if (end >= 0 && lseek (fd, end > 4096 ? end - 4096 : 0, SEEK_SET) >= 0)
      n = read (fd, buf, sizeof buf - 1);
    close (fd);
  }
  buf[n > 0 ? n : 0] = '\0';
  for (s = buf; (e = strstr (s, "error: ")); s = e + 1)
    line = e;
  if (!line)
    return xstrdup ("");
  line[strcspn (line, "\n")] = '\0';
  s = xstrdup_printable (line + strlen ("error: "), false);
  e = xasprintf (": %s", s);
  free (s);
  return e;
}

int
proc_wait (struct proc *p)
{
  pid_t pid = p->pid;
  double end;

  end = now_monotonic () + 60;
  while (!proc_serves (p)) {
    struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };
    if (p->pidfd < 0 || poll (&pf, 1, 0) == 1) {
      CLEANUP_FREE char *why = log_error (p);
      if (p->pidfd >= 0) close (p->pidfd);
      p->pidfd = -1;
      p->pid = 0;
      error_setx ("%s nbdkit of %s exited at start%s (see %s)", p->kind, p->what,
                  why, p->logfile);
      return -1;
    }
    if (now_monotonic () > end) {
      error_setx ("%s nbdkit of %s does not serve %s after 60 s (see %s)",
                  p->kind, p->what, p->socket, p->logfile);
      return -1;
    }
    usleep (10000);
  }
  proc_log ("%s %s: nbdkit %d serving %s", p->name, p->kind, (int) pid, p->socket);
  return 0;
}

bool
proc_serves (const struct proc *p)
{
  /* TCP: nbdkit writes its --pidfile once it listens (remote.c). */
  return p->tcp ? access (p->socket, F_OK) == 0 : unix_socket_serves (p->socket);
}

int
proc_start (struct proc *p)
{
  if (proc_launch (p) == -1)
    return -1;
  return proc_wait (p);
}

bool
proc_adopt (struct proc *p)
{
  pid_t pid = pid_file_read (p->pidfile, NULL);

  if (pid <= 0)
    return false;
  if (!pid_matches (pid, 0, p->socket)) {
    proc_log ("%s %s: nbdkit %d of the pid file is gone", p->name, p->kind, pid);
    return false;
  }
  if (!proc_serves (p)) {
    proc_log ("%s %s: nbdkit %d does not serve %s: replacing it", p->name,
              p->kind, pid, p->socket);
    pid_stop (pid, 0, p->socket, 0);  /* no grace: it is hung */
    return false;
  }
  p->pidfd = pidfd_open (pid, 0);
  if (p->pidfd < 0) {
    proc_log ("%s %s: pidfd_open %d: %s", p->name, p->kind, pid, strerror (errno));
    return false;
  }
  p->pid = pid;
  proc_log ("%s %s: adopted nbdkit %d serving %s", p->name, p->kind, pid, p->socket);
  return true;
}

void
proc_died (struct proc *p)
{
  double now = now_monotonic ();
  unsigned k;

  close (p->pidfd);
  p->pidfd = -1;
  proc_log ("%s %s: nbdkit %d ended; restarting on %s", p->name, p->kind,
            (int) p->pid, p->socket);
  k = p->nrestarts % PROC_RESTART_BURST;
  if (p->nrestarts >= PROC_RESTART_BURST &&
      now - p->restarts[k] < PROC_RESTART_WINDOW) {
    proc_log ("%s %s: %d restarts in %.0f s: waiting 2 s", p->name, p->kind,
              PROC_RESTART_BURST, PROC_RESTART_WINDOW);
    sleep (2);
  }
  p->restarts[k] = now;
  p->nrestarts++;
  if (proc_start (p) == -1)
    proc_log ("%s", error_msg ());    /* tried again when its pidfd fires */
}

void
proc_stop (struct proc *p)
{
  if (p->pid > 0 && p->pidfd >= 0) {
    pid_stop (p->pid, 0, p->socket, 5);
    close (p->pidfd);
    proc_log ("%s %s: stopped nbdkit %d", p->name, p->kind, (int) p->pid);
  }
  p->pidfd = -1;
  p->pid = 0;
  unlink (p->socket);
  unlink (p->pidfile);
}

/* ---- the start-up handshake of a supervisor daemon ------------------------ */

/* The bootback program to run `supervise` with. */
static const char *
bootback_exe (char *buf, size_t len)
{
  const char *e = test_hook_env ("BOOTBACK_EXE");
  ssize_t n;

  if (e)
    return e;
  n = readlink ("/proc/self/exe", buf, len - 1);
  if (n > 0) {
    const char *del = " (deleted)";      /* replaced while we run */
    buf[n] = '\0';
    if ((size_t) n > strlen (del) && strcmp (buf + n - strlen (del), del) == 0)
      buf[n - strlen (del)] = '\0';
    if (strcmp (strrchr (buf, '/') ? strrchr (buf, '/') + 1 : buf, "bootback") == 0)
      return buf;
  }
  return "bootback";
}

/* In the forked child: daemonise (a new session, then a grandchild that
 * init adopts), the pipe's write end on fd 3, and run `supervise ARG`.
 * Only async-signal-safe calls (argv is built before the fork). */
static void __attribute__((noreturn))
spawn_daemon (char *const argv[], const char *log, int pipe_w)
{
  int fd;

  setsid ();
  if (fork () != 0)
    _exit (0);
  fd = open ("/dev/null", O_RDWR);
  if (fd >= 0) { dup2 (fd, 0); dup2 (fd, 1); }
  fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) dup2 (fd, 2);
  if (pipe_w == 3)                /* dup2 would leave FD_CLOEXEC on it */
    fcntl (3, F_SETFD, 0);
  else
    dup2 (pipe_w, 3);             /* clears FD_CLOEXEC on 3 */
  if (syscall (SYS_close_range, 4u, ~0u, 0u) == -1)
    for (fd = 4; fd < 65536; fd++)        /* before Linux 5.9 */
      close (fd);
  execv (argv[0], argv);
  child_say (3, "error: cannot run", argv[0], errno);
  _exit (127);
}

/* Read the supervisor's one line ("ready PID" or "error: WHY") from fd,
 * 120 s at most, into msg (without the newline). */
static void
read_answer (int fd, char *msg, size_t len)
{
  double end = now_monotonic () + 120;
  size_t n = 0;

  msg[0] = '\0';
  while (n < len - 1 && now_monotonic () < end) {
    ssize_t r = read (fd, msg + n, len - 1 - n);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += r;
    msg[n] = '\0';
    if (strchr (msg, '\n'))
      break;
  }
  msg[strcspn (msg, "\n")] = '\0';
}

pid_t
daemon_spawn (const char *home, const char *arg, const char *log)
{
  char self[4096], msg[1024];
  const char *exe = bootback_exe (self, sizeof self);
  char *const argv[] = { (char *) exe, "--home", (char *) home, "supervise",
                         (char *) arg, "--ready-fd", "3", NULL };
  int pfd[2], status;
  pid_t pid;

  pid = fork_with_pipe (pfd);
  if (pid == -1)
    return -1;
  if (pid == 0)
    spawn_daemon (argv, log, pfd[1]);
  close (pfd[1]);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  read_answer (pfd[0], msg, sizeof msg);
  close (pfd[0]);
  if (strncmp (msg, "ready ", 6) == 0 && atoi (msg + 6) > 0)
    return atoi (msg + 6);
  if (strncmp (msg, "error: ", 7) == 0)
    error_setx ("supervisor: %s", msg + 7);
  else
    error_setx ("supervisor did not start (see %s)", log);
  return -1;
}

/* ---- a supervisor daemon's signals ------------------------------------------ */

int
daemon_signals (const char *pidpath)
{
  sigset_t mask;
  FILE *f;
  int sfd;

  sigemptyset (&mask);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGCHLD);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  signal (SIGPIPE, SIG_IGN);
  sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    error_set (errno, "signalfd");
    return -1;
  }
  f = fopen_private (pidpath);
  if (f) {
    fprintf (f, "%d\n", (int) getpid ());
    fclose (f);
  }
  return sfd;
}

bool
daemon_quit_signal (int sfd)
{
  struct signalfd_siginfo si;

  while (read (sfd, &si, sizeof si) == (ssize_t) sizeof si)
    if (si.ssi_signo != SIGCHLD) {
      proc_log ("signal %d: stopping", (int) si.ssi_signo);
      return true;
    }
  return false;
}
