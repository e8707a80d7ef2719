/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session supervisor: the body of `bootback supervise ID`, a daemon
 * (session.c starts it detached, in its own session) that keeps, for every
 * disk of the session, two nbdkit processes serving on fixed sockets in
 * the session directory:
 *
 *   backend  nbdkit -r -f -U DISK.backend.sock bootback repo=R point=VM@T disk=D
 *   front    nbdkit -r -f -U DISK.sock --filter=retry nbd socket=DISK.backend.sock
 *
 * QEMU reads DISK.sock (the overlay's backing).  When a backend dies the
 * supervisor removes its stale socket (nbdkit 1.32 leaves it) and starts a
 * new one on the same path; the front's retry filter reconnects to it and
 * repeats the failed read, so the guest sees a delay, not an error.  A front
 * that dies is restarted the same way (QEMU then sees the error of the
 * requests in flight: the front is stock nbdkit code, read-only).
 *
 * nbdkit (1.32, -f) exits when its parent process dies, so the nbdkits are
 * not the supervisor's children: each is started through an intermediate
 * process that exits at once (init becomes the parent), in a session of
 * its own, and is watched with a pidfd.  So a supervisor started after a crash
 * of its predecessor adopts the nbdkits still running (found by their pid
 * files and checked by their command lines) instead of restarting them.
 * SIGTERM stops everything: nbdkits (TERM, then KILL after 5 s), sockets
 * and pid files are removed.  The log is HOME/sessions/ID/supervisor.log.
 *
 * Both ends of the start-up handshake are in this file.  supervisor_spawn
 * (called by instant_start and instant_reattach) runs `bootback --home HOME
 * supervise ID --ready-fd 3` detached (a new session, a grandchild init
 * adopts) with a pipe on fd 3, and reads one line from it: instant_supervise
 * writes "ready PID\n" (its own pid, which goes into the row) once every
 * socket serves, or "error: WHY\n" if it cannot start; EOF or nothing within
 * 120 s is an error pointing at the log.  The pid is then checked by its
 * command line ("supervise ID ") before it is signalled (recovery/util/pid.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "recovery/instant/instant-int.h"

/* ---- the caller's end: start, check and stop a supervisor ---------------- */

static char *
supervise_tag (const struct instant_session *s)
{
  return xasprintf ("supervise %" PRId64 " ", s->id);
}

bool
instant_supervisor_alive (const struct instant_session *s)
{
  CLEANUP_FREE char *tag = supervise_tag (s);

  return pid_matches (s->supervisor_pid, 0, tag);
}

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
 * init adopts), the pipe's write end on fd 3, and run `supervise`. */
static void __attribute__((noreturn))
spawn_daemon (const char *exe, const char *home, const char *idbuf,
              const char *log, int pipe_w)
{
  int fd, maxfd, i;

  setsid ();
  if (fork () != 0)
    _exit (0);
  fd = open ("/dev/null", O_RDWR);
  if (fd >= 0) { dup2 (fd, 0); dup2 (fd, 1); }
  fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) dup2 (fd, 2);
  dup2 (pipe_w, 3);               /* clears FD_CLOEXEC on 3 */
  maxfd = (int) sysconf (_SC_OPEN_MAX);
  for (i = 4; i < maxfd && i < 65536; i++)
    close (i);
  execl (exe, exe, "--home", home, "supervise", idbuf, "--ready-fd", "3",
         (char *) NULL);
  dprintf (3, "error: cannot run %s: %s\n", exe, strerror (errno));
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

int
supervisor_spawn (struct instant_session *s, const char *home)
{
  char self[4096], idbuf[32], msg[1024];
  CLEANUP_FREE char *log = xasprintf ("%s/supervisor.log", s->dir);
  const char *exe = bootback_exe (self, sizeof self);
  int pfd[2], status;
  pid_t pid;

  snprintf (idbuf, sizeof idbuf, "%" PRId64, s->id);
  pid = fork_with_pipe (pfd);
  if (pid == -1)
    return -1;
  if (pid == 0)
    spawn_daemon (exe, home, idbuf, log, pfd[1]);
  close (pfd[1]);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  read_answer (pfd[0], msg, sizeof msg);
  close (pfd[0]);
  if (strncmp (msg, "ready ", 6) == 0) {
    s->supervisor_pid = atoi (msg + 6);
    return 0;
  }
  if (strncmp (msg, "error: ", 7) == 0)
    error_setx ("supervisor: %s", msg + 7);
  else
    error_setx ("supervisor did not start (see %s/supervisor.log)", s->dir);
  return -1;
}

void
supervisor_stop (struct instant_session *s)
{
  CLEANUP_FREE char *tag = supervise_tag (s);
  size_t i;

  ERROR_SAVE (saved);
  pid_stop (s->supervisor_pid, 0, tag, 15);
  s->supervisor_pid = 0;
  /* Whatever nbdkit a dead supervisor left behind. */
  for (i = 0; i < s->ndisks; i++) {
    const struct instant_session_disk *k = &s->disks[i];
    const char *const socks[2] = { k->socket, k->backend_socket };
    const char *const kinds[2] = { "front", "backend" };
    int j;
    for (j = 0; j < 2; j++) {
      CLEANUP_FREE char *pf = xasprintf ("%s/%s.%s.pid", s->dir, k->name, kinds[j]);
      if (!socks[j][0])
        continue;
      pid_stop (pid_file_read (pf, NULL), 0, socks[j], 5);
      unlink (pf);
      unlink (socks[j]);
    }
  }
  ERROR_RESTORE (saved);
}

#define RESTART_WINDOW 60.0     /* seconds */
#define RESTART_BURST  10       /* restarts in a window before slowing down */

struct proc {
  const char *kind;             /* "backend" or "front" */
  const struct instant_session_disk *disk;
  char socket[256];
  char pidfile[4200];
  char logfile[4200];
  pid_t pid;
  int pidfd;                    /* -1 if not running */
  bool child;                   /* ours to reap */
  double restarts[RESTART_BURST];
  unsigned nrestarts;
};

/* ---- the supervisor's end: the daemon ------------------------------------ */

static const struct instant_session *sess;
static char plugin[4096];

static void
logmsg (const char *fmt, ...) __attribute__((format (printf, 1, 2)));

static void
logmsg (const char *fmt, ...)
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

static void
write_pidfile (struct proc *p)
{
  FILE *f = fopen_private (p->pidfile);

  if (f) {
    fprintf (f, "%d\n", (int) p->pid);
    fclose (f);
  }
}

/* exec the backend nbdkit of p: the plugin recording the boot trace
 * (trace.c) and loading the VM's previous one if the session has it. */
static void
exec_backend (const char *nbdkit, const struct proc *p, const char *repo_arg,
              const char *point_arg, const char *disk_arg)
{
  CLEANUP_FREE char *tpath = session_trace_path (sess, p->disk->name, "trace");
  CLEANUP_FREE char *ppath = session_trace_path (sess, p->disk->name, "prefetch");
  CLEANUP_FREE char *trace_arg = xasprintf ("trace=%s", tpath);
  CLEANUP_FREE char *prefetch_arg = xasprintf ("prefetch=%s", ppath);

  execlp (nbdkit, nbdkit, "-r", "-f", "-U", p->socket, "--log=stderr",
          plugin, repo_arg, point_arg, disk_arg, trace_arg,
          access (ppath, F_OK) == 0 ? prefetch_arg : (char *) NULL, (char *) NULL);
}

/* Start p's nbdkit (not waiting for it to serve).  -1 with error. */
static int
proc_launch (struct proc *p)
{
  char repo_arg[4200], point_arg[200], disk_arg[100], sock_arg[300], retries[32];
  const char *nbdkit = test_hook_env ("BOOTBACK_NBDKIT");
  pid_t pid, mid;
  int pfd[2];

  if (!nbdkit)
    nbdkit = "nbdkit";
  unlink (p->socket);                 /* invariant 6: stale socket first */
  snprintf (repo_arg, sizeof repo_arg, "repo=%s", sess->repo);
  snprintf (point_arg, sizeof point_arg, "point=%s@%s", sess->vm, sess->point);
  snprintf (disk_arg, sizeof disk_arg, "disk=%s", p->disk->name);
  snprintf (sock_arg, sizeof sock_arg, "socket=%s", p->disk->backend_socket);
  snprintf (retries, sizeof retries, "retries=%d",
            sess->read_retries > 0 ? sess->read_retries : 30);
  /* nbdkit exits when its parent dies (seen with 1.32 -f): make init its
   * parent.  An intermediate process forks it and exits; nbdkit waits for
   * that before exec'ing, and tells us nothing but its pid (pipe).  It
   * also gets its own session, away from our process group. */
  if (pipe2 (pfd, O_CLOEXEC) == -1) {
    error_set (errno, "pipe");
    return -1;
  }
  mid = fork ();
  if (mid == -1) {
    error_set (errno, "fork");
    close (pfd[0]); close (pfd[1]);
    return -1;
  }
  if (mid == 0) {
    pid_t parent = getpid ();
    setsid ();
    pid = fork ();
    if (pid == 0) {
      int fd = open ("/dev/null", O_RDWR);
      sigset_t all;
      while (getppid () == parent)
        usleep (1000);
      if (fd >= 0) { dup2 (fd, 0); dup2 (fd, 1); }
      fd = open (p->logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) dup2 (fd, 2);
      sigemptyset (&all);
      sigprocmask (SIG_SETMASK, &all, NULL);
      if (strcmp (p->kind, "backend") == 0)
        exec_backend (nbdkit, p, repo_arg, point_arg, disk_arg);
      else
        execlp (nbdkit, nbdkit, "-r", "-f", "-U", p->socket, "--log=stderr",
                "--filter=retry", "nbd", sock_arg, retries, "retry-delay=1",
                "retry-exponential=no", (char *) NULL);
      fprintf (stderr, "exec %s: %s\n", nbdkit, strerror (errno));
      _exit (127);
    }
    if (write (pfd[1], &pid, sizeof pid) != (ssize_t) sizeof pid)
      _exit (1);
    _exit (0);
  }
  close (pfd[1]);
  pid = -1;
  if (read (pfd[0], &pid, sizeof pid) != (ssize_t) sizeof pid)
    pid = -1;
  close (pfd[0]);
  while (waitpid (mid, NULL, 0) == -1 && errno == EINTR)
    ;
  if (pid <= 0) {
    error_setx ("could not start the %s nbdkit of disk %s", p->kind, p->disk->name);
    return -1;
  }
  p->pid = pid;
  p->child = false;
  p->pidfd = pidfd_open (pid, 0);
  write_pidfile (p);
  return 0;
}

/* Wait until p's socket accepts connections.  -1 with error. */
static int
proc_wait (struct proc *p)
{
  pid_t pid = p->pid;
  double end;

  end = now_monotonic () + 60;
  while (!unix_socket_serves (p->socket)) {
    struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };
    if (p->pidfd < 0 || poll (&pf, 1, 0) == 1) {
      if (p->pidfd >= 0) close (p->pidfd);
      p->pidfd = -1;
      p->pid = 0;
      error_setx ("%s nbdkit of disk %s exited at start (see %s)", p->kind,
                  p->disk->name, p->logfile);
      return -1;
    }
    if (now_monotonic () > end) {
      error_setx ("%s nbdkit of disk %s does not serve %s after 60 s (see %s)",
                  p->kind, p->disk->name, p->socket, p->logfile);
      return -1;
    }
    usleep (10000);
  }
  logmsg ("%s %s: nbdkit %d serving %s", p->disk->name, p->kind, (int) pid,
          p->socket);
  return 0;
}

/* Start p's nbdkit and wait until it serves.  -1 with error. */
static int
proc_start (struct proc *p)
{
  if (proc_launch (p) == -1)
    return -1;
  return proc_wait (p);
}

/* Adopt a running nbdkit from a previous supervisor, if there is one. */
static bool
proc_adopt (struct proc *p)
{
  pid_t pid = pid_file_read (p->pidfile, NULL);

  if (pid <= 0)
    return false;
  if (!pid_matches (pid, 0, p->socket)) {
    logmsg ("%s %s: nbdkit %d of the pid file is gone", p->disk->name, p->kind, pid);
    return false;
  }
  if (!unix_socket_serves (p->socket)) {
    logmsg ("%s %s: nbdkit %d does not serve %s: replacing it", p->disk->name,
            p->kind, pid, p->socket);
    pid_stop (pid, 0, p->socket, 0);  /* no grace: it is hung */
    return false;
  }
  p->pidfd = pidfd_open (pid, 0);
  if (p->pidfd < 0) {
    logmsg ("%s %s: pidfd_open %d: %s", p->disk->name, p->kind, pid, strerror (errno));
    return false;
  }
  p->pid = pid;
  p->child = false;
  logmsg ("%s %s: adopted nbdkit %d serving %s", p->disk->name, p->kind, pid,
          p->socket);
  return true;
}

/* p died: reap it if ours, restart it (slower if it keeps dying). */
static void
proc_died (struct proc *p)
{
  int status = 0;
  double now = now_monotonic ();
  unsigned k;

  if (p->child)
    waitpid (p->pid, &status, 0);
  close (p->pidfd);
  p->pidfd = -1;
  logmsg ("%s %s: nbdkit %d %s %d; restarting on %s", p->disk->name, p->kind,
          (int) p->pid, p->child && WIFSIGNALED (status) ? "killed by signal"
          : "exited with", p->child ? (WIFSIGNALED (status) ? WTERMSIG (status)
                                       : WEXITSTATUS (status)) : -1, p->socket);
  k = p->nrestarts % RESTART_BURST;
  if (p->nrestarts >= RESTART_BURST && now - p->restarts[k] < RESTART_WINDOW) {
    logmsg ("%s %s: %d restarts in %.0f s: waiting 2 s", p->disk->name, p->kind,
            RESTART_BURST, RESTART_WINDOW);
    sleep (2);
  }
  p->restarts[k] = now;
  p->nrestarts++;
  if (proc_start (p) == -1)
    logmsg ("%s", error_msg ());      /* tried again when its pidfd fires */
}

/* TERM, then KILL after 5 s (pid_stop: only if it is still the nbdkit
 * serving p's socket). */
static void
proc_stop (struct proc *p)
{
  if (p->pid > 0 && p->pidfd >= 0) {
    pid_stop (p->pid, 0, p->socket, 5);
    if (p->child)
      waitpid (p->pid, NULL, 0);
    close (p->pidfd);
    logmsg ("%s %s: stopped nbdkit %d", p->disk->name, p->kind, (int) p->pid);
  }
  p->pidfd = -1;
  p->pid = 0;
  unlink (p->socket);
  unlink (p->pidfile);
}

/* The daemon's state, from one step of instant_supervise to the next. */
struct supervisor {
  int64_t id;
  struct instant_session *s;
  size_t n;                     /* 2 per disk: backend, front */
  struct proc *procs;
  struct pollfd *pfds;          /* n pidfds, then the signalfd */
  int sfd;                      /* signalfd, -1 if none */
  char *pidpath;                /* supervisor.pid, NULL until written */
  int ready_fd;                 /* the handshake's pipe, -1 once answered */
};

/* The session, from the catalog (closed again: the daemon holds none). */
static int
sup_load (struct supervisor *sv, const char *home)
{
  struct catalog *cat = catalog_open (home);

  if (!cat || session_load (cat, sv->id, sv->s) == -1) {
    catalog_close (cat);
    return -1;
  }
  catalog_close (cat);
  sess = sv->s;
  if (!sv->s->dir[0] || sv->s->ndisks == 0) {
    error_setx ("session %" PRId64 " has no directory or no disks", sv->id);
    return -1;
  }
  bootback_plugin_path (plugin, sizeof plugin);
  return 0;
}

/* Signals through a signalfd: TERM/INT/HUP end, CHLD wakes us.  Then the
 * supervisor's pid file. */
static int
sup_signals (struct supervisor *sv)
{
  sigset_t mask;
  FILE *f;

  sigemptyset (&mask);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGHUP);
  sigaddset (&mask, SIGCHLD);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  signal (SIGPIPE, SIG_IGN);
  sv->sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sv->sfd < 0) {
    error_set (errno, "signalfd");
    return -1;
  }
  sv->pidpath = xasprintf ("%s/supervisor.pid", sv->s->dir);
  f = fopen_private (sv->pidpath);
  if (f) {
    fprintf (f, "%d\n", (int) getpid ());
    fclose (f);
  }
  return 0;
}

/* The two nbdkits of every disk, not started yet. */
static void
sup_procs (struct supervisor *sv)
{
  const struct instant_session *s = sv->s;
  size_t i;

  sv->n = 2 * s->ndisks;
  sv->procs = xcalloc (sv->n, sizeof *sv->procs);
  sv->pfds = xcalloc (sv->n + 1, sizeof *sv->pfds);
  for (i = 0; i < sv->n; i++) {
    struct proc *p = &sv->procs[i];
    const struct instant_session_disk *k = &s->disks[i / 2];
    p->disk = k;
    p->kind = i % 2 == 0 ? "backend" : "front";
    p->pidfd = -1;
    snprintf (p->socket, sizeof p->socket, "%s",
              i % 2 == 0 ? k->backend_socket : k->socket);
    snprintf (p->pidfile, sizeof p->pidfile, "%s/%s.%s.pid", s->dir, k->name, p->kind);
    snprintf (p->logfile, sizeof p->logfile, "%s/nbdkit-%s-%s.log", s->dir,
              k->name, p->kind);
  }
  logmsg ("session %" PRId64 " (%s, %s@%s): %zu disk%s, plugin %s", sv->id, s->name,
          s->vm, s->point, s->ndisks, s->ndisks == 1 ? "" : "s", plugin);
}

/* All at once (a front connects to its backend only when QEMU connects
 * to it), then wait until every socket serves; then "ready PID". */
static int
sup_start_all (struct supervisor *sv)
{
  size_t i;

  for (i = 0; i < sv->n; i++)
    if (!proc_adopt (&sv->procs[i]) && proc_launch (&sv->procs[i]) == -1)
      return -1;
  for (i = 0; i < sv->n; i++)
    if (!unix_socket_serves (sv->procs[i].socket) && proc_wait (&sv->procs[i]) == -1)
      return -1;
  if (sv->ready_fd >= 0) {
    dprintf (sv->ready_fd, "ready %d\n", (int) getpid ());
    close (sv->ready_fd);
    sv->ready_fd = -1;
  }
  return 0;
}

/* Drain the signalfd: true if a signal other than CHLD came (stop). */
static bool
sup_quit_signal (struct supervisor *sv)
{
  struct signalfd_siginfo si;

  while (read (sv->sfd, &si, sizeof si) == (ssize_t) sizeof si)
    if (si.ssi_signo != SIGCHLD) {
      logmsg ("signal %d: stopping", (int) si.ssi_signo);
      return true;
    }
  return false;
}

/* Keep every nbdkit serving until a signal says stop (0) or poll fails
 * (1). */
static int
sup_watch (struct supervisor *sv)
{
  size_t i, n = sv->n;

  for (;;) {
    int r;
    for (i = 0; i < n; i++) {
      sv->pfds[i].fd = sv->procs[i].pidfd;
      sv->pfds[i].events = POLLIN;
      sv->pfds[i].revents = 0;
    }
    sv->pfds[n].fd = sv->sfd;
    sv->pfds[n].events = POLLIN;
    sv->pfds[n].revents = 0;
    r = poll (sv->pfds, n + 1, 5000);
    if (r == -1 && errno != EINTR) {
      logmsg ("poll: %s", strerror (errno));
      return 1;
    }
    if ((sv->pfds[n].revents & POLLIN) && sup_quit_signal (sv))
      return 0;
    for (i = 0; i < n; i++) {
      if (sv->procs[i].pidfd < 0) {
        /* A failed restart: try again (every 5 s at most). */
        if (proc_start (&sv->procs[i]) == -1)
          logmsg ("%s", error_msg ());
      }
      else if (sv->pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
        proc_died (&sv->procs[i]);
    }
  }
}

/* The handshake's answer if it is still owed: "error: WHY". */
static void
sup_answer_error (struct supervisor *sv, bool log)
{
  if (sv->ready_fd < 0)
    return;
  dprintf (sv->ready_fd, "error: %s\n", error_msg ());
  if (log)
    logmsg ("error: %s", error_msg ());
  close (sv->ready_fd);
  sv->ready_fd = -1;
}

/* Fronts first (they hold QEMU), then backends; then the pid file. */
static void
sup_stop_all (struct supervisor *sv)
{
  size_t i;

  for (i = sv->n; i-- > 0; )
    if (i % 2 == 1)
      proc_stop (&sv->procs[i]);
  for (i = sv->n; i-- > 0; )
    if (i % 2 == 0)
      proc_stop (&sv->procs[i]);
  if (sv->pidpath)
    unlink (sv->pidpath);
  logmsg ("stopped");
}

int
instant_supervise (const char *home, int64_t id, int ready_fd)
{
  struct supervisor sv = {
    .id = id, .s = xmalloc (sizeof *sv.s), .sfd = -1, .ready_fd = ready_fd,
  };
  int ret = 1;

  if (sup_load (&sv, home) == 0 && sup_signals (&sv) == 0) {
    sup_procs (&sv);
    if (sup_start_all (&sv) == 0)
      ret = sup_watch (&sv);
    sup_answer_error (&sv, true);
    sup_stop_all (&sv);
  }
  sup_answer_error (&sv, false);
  if (sv.sfd >= 0)
    close (sv.sfd);
  free (sv.pidpath);
  free (sv.procs);
  free (sv.pfds);
  free (sv.s);
  return ret;
}
