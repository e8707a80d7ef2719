/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session supervisor: the body of `bootback supervise ID`, a daemon
 * (session.c starts it detached, in its own session) that keeps, for every
 * disk of the session, two nbdkit processes serving on fixed sockets in
 * the session directory:
 *
 *   backend  nbdkit -r -f -U DISK.backend.sock bootback repo=R point=VM@T disk=D
 *                   index-sha256=HEX
 *   front    nbdkit -r -f -U DISK.sock --filter=retry nbd socket=DISK.backend.sock
 *
 * QEMU reads DISK.sock (the overlay's backing).  A remote session's
 * fronts listen on TCP with TLS instead (remote.c).  When a backend dies the
 * supervisor removes its stale socket (nbdkit 1.32 leaves it) and starts a
 * new one on the same path; the front's retry filter reconnects to it and
 * repeats the failed read, so the guest sees a delay, not an error.  A front
 * that dies is restarted the same way (QEMU then sees the error of the
 * requests in flight: the front is stock nbdkit code, read-only).
 *
 * HEX is the SHA-256 of the disk's index as instant_start read the point
 * (the row keeps it): a backend started or restarted after the point was
 * replaced in the repository refuses to serve it (nbd-plugin/plugin.c).
 *
 * A pooled session (instant with several points, pool.c) has no backends
 * of its own: its fronts read the pool's backend socket, each with its
 * disk's export name (VM@TIME/DISK#HEX, the same pin); the pool's supervisor keeps that one
 * serving, and nothing here starts, watches or stops it.
 *
 * The nbdkits are started detached and watched with pidfds (procs.c), so a
 * supervisor started after a crash of its predecessor adopts the nbdkits
 * still running.  SIGTERM stops everything: nbdkits (TERM, then KILL after
 * 5 s), sockets and pid files are removed.  The log is
 * HOME/sessions/ID/supervisor.log.
 *
 * supervisor_spawn (called by instant_start and instant_reattach) runs
 * `bootback --home HOME supervise ID --ready-fd 3` as a daemon
 * (daemon_spawn, procs.c): instant_supervise writes "ready PID\n" (its own
 * pid, which goes into the row) once every socket serves, or "error:
 * WHY\n" if it cannot start.  The pid is then checked by its command line
 * ("supervise ID ") before it is signalled (recovery/util/pid.c).
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
#include <sys/statvfs.h>
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

int
supervisor_spawn (struct instant_session *s, const char *home)
{
  CLEANUP_FREE char *log = xasprintf ("%s/supervisor.log", s->dir);
  char idbuf[32];
  pid_t pid;

  snprintf (idbuf, sizeof idbuf, "%" PRId64, s->id);
  pid = daemon_spawn (home, idbuf, log);
  if (pid == -1)
    return -1;
  s->supervisor_pid = pid;
  return 0;
}

void
supervisor_stop (struct instant_session *s)
{
  CLEANUP_FREE char *tag = supervise_tag (s);
  bool pooled = session_pooled (s);
  size_t i;

  ERROR_SAVE (saved);
  pid_stop (s->supervisor_pid, 0, tag, 15);
  s->supervisor_pid = 0;
  /* Whatever nbdkit a dead supervisor left behind (never the pool's). */
  for (i = 0; i < s->ndisks; i++) {
    const struct instant_session_disk *k = &s->disks[i];
    const char *const socks[2] = { k->socket, pooled ? "" : k->backend_socket };
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

/* ---- the supervisor's end: the daemon ------------------------------------ */

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
  virConnectPtr conn;           /* to pause the domain (sup_space), or NULL */
  double space_next;            /* now_monotonic () of the next look */
  bool paused;                  /* sup_space paused the domain */
  double restart_next;          /* ... of the next try of a failed restart */
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
  if (!sv->s->dir[0] || sv->s->ndisks == 0) {
    error_setx ("session %" PRId64 " has no directory or no disks", sv->id);
    return -1;
  }
  return 0;
}

/* Signals and the supervisor's pid file. */
static int
sup_signals (struct supervisor *sv)
{
  sv->pidpath = xasprintf ("%s/supervisor.pid", sv->s->dir);
  sv->sfd = daemon_signals (sv->pidpath);
  return sv->sfd < 0 ? -1 : 0;
}

/* The backend nbdkit of disk k: the plugin serving its point, recording
 * the boot trace (trace.c) and loading the VM's previous one if the
 * session has it.  8 threads per connection (nbdkit's default is 16):
 * the plugin lets 8 reads into the repository library at once
 * (PARALLEL_READS, nbd-plugin/plugin.c), so a connection's further
 * threads only waited there, and cost nbdkit CPU in the pre-copy's
 * stream of reads (switches, contention).  An nbdkit adopted from an
 * earlier bootback keeps its 16 (proc_adopt matches the socket). */
static char **
backend_argv (const struct instant_session *s, const struct instant_session_disk *k,
              const char *nbdkit, const char *plugin)
{
  CLEANUP_FREE char *ppath = session_trace_path (s, k->name, "prefetch");
  CLEANUP_FREE char *tpath = session_trace_path (s, k->name, "trace");
  char **v = NULL;
  size_t n = 0;

  strv_pushl (&v, &n, nbdkit, "-r", "-f", "-t", "8", "-U", k->backend_socket,
              "--log=stderr", plugin, NULL);
  strv_push (&v, &n, xasprintf ("repo=%s", s->repo));
  strv_push (&v, &n, xasprintf ("point=%s@%s", s->vm, s->point));
  strv_push (&v, &n, xasprintf ("disk=%s", k->name));
  if (k->index_sha256[0])              /* the index instant_start read */
    strv_push (&v, &n, xasprintf ("index-sha256=%s", k->index_sha256));
  strv_push (&v, &n, xasprintf ("trace=%s", tpath));
  if (access (ppath, F_OK) == 0)
    strv_push (&v, &n, xasprintf ("prefetch=%s", ppath));
  return v;
}

/* The front nbdkit of disk k: the retry filter over the backend's socket
 * (the pool's: with the disk's export name). */
static char **
front_argv (const struct instant_session *s, const struct instant_session_disk *k,
            const char *nbdkit, bool pooled)
{
  char **v = NULL;
  size_t n = 0;

  strv_pushl (&v, &n, nbdkit, "-r", "-f", NULL);
  if (session_remote (s))
    remote_front_args (s, k, &v, &n);
  else
    strv_pushl (&v, &n, "-U", k->socket, NULL);
  strv_pushl (&v, &n, "--log=stderr", "--filter=retry", "nbd", NULL);
  strv_push (&v, &n, xasprintf ("socket=%s", k->backend_socket));
  if (pooled)                           /* #HEX: the index instant_start read */
    strv_push (&v, &n, xasprintf ("export=%s@%s/%s%s%s", s->vm, s->point, k->name,
                                  k->index_sha256[0] ? "#" : "", k->index_sha256));
  strv_push (&v, &n, xasprintf ("retries=%d", s->read_retries > 0 ? s->read_retries : 30));
  strv_pushl (&v, &n, "retry-delay=1", "retry-exponential=no", NULL);
  return v;
}

/* A TLS front's GnuTLS configuration (remote_front_tls_config) in the
 * session's directory, in p's environment.  Without it (an error,
 * logged) the front keeps GnuTLS's own order: AES-256-GCM first. */
static void
front_tls_env (const struct instant_session *s, struct proc *p)
{
  char path[4200];
  int r;

  snprintf (path, sizeof path, "%s/gnutls-front.conf", s->dir);
  r = remote_front_tls_config (path);
  if (r == -1)
    proc_log ("%s: %s; its front negotiates GnuTLS's default cipher", p->what,
              error_msg ());
  else if (r == 1)
    snprintf (p->env, sizeof p->env, "GNUTLS_SYSTEM_PRIORITY_FILE=%s", path);
}

/* The two nbdkits of every disk, not started yet; a pooled session's
 * backends are the pool's (external). */
static void
sup_procs (struct supervisor *sv)
{
  const struct instant_session *s = sv->s;
  const char *nbdkit = test_hook_env ("BOOTBACK_NBDKIT");
  bool pooled = session_pooled (s);
  char plugin[4096];
  size_t i;

  if (!nbdkit)
    nbdkit = "nbdkit";
  bootback_plugin_path (plugin, sizeof plugin);
  sv->n = 2 * s->ndisks;
  sv->procs = xcalloc (sv->n, sizeof *sv->procs);
  sv->pfds = xcalloc (sv->n + 1, sizeof *sv->pfds);
  for (i = 0; i < sv->n; i++) {
    struct proc *p = &sv->procs[i];
    const struct instant_session_disk *k = &s->disks[i / 2];
    CLEANUP_FREE char *what = xasprintf ("disk %s", k->name);
    bool backend = i % 2 == 0;
    proc_init (p, backend ? "backend" : "front", what, k->name,
               backend ? k->backend_socket : k->socket, s->dir);
    p->external = backend && pooled;
    p->tcp = !backend && session_remote (s);
    if (p->tcp && !s->insecure)
      front_tls_env (s, p);
    p->s = s;
    p->k = k;
    p->argv = backend ? (pooled ? NULL : backend_argv (s, k, nbdkit, plugin))
                      : front_argv (s, k, nbdkit, pooled);
  }
  proc_log ("session %" PRId64 " (%s, %s@%s): %zu disk%s, %s", sv->id, s->name,
            s->vm, s->point, s->ndisks, s->ndisks == 1 ? "" : "s",
            pooled ? "backend: the pool's" : plugin);
}

/* All at once (a front connects to its backend only when QEMU connects
 * to it), then wait until every socket serves; then "ready PID". */
static int
sup_start_all (struct supervisor *sv)
{
  size_t i;

  for (i = 0; i < sv->n; i++)
    if (!sv->procs[i].external && !proc_adopt (&sv->procs[i]) &&
        proc_launch (&sv->procs[i]) == -1)
      return -1;
  for (i = 0; i < sv->n; i++)
    if (!sv->procs[i].external && !proc_serves (&sv->procs[i]) &&
        proc_wait (&sv->procs[i]) == -1)
      return -1;
  if (sv->ready_fd >= 0) {
    dprintf (sv->ready_fd, "ready %d\n", (int) getpid ());
    close (sv->ready_fd);
    sv->ready_fd = -1;
  }
  return 0;
}

/* The guest's writes grow its overlays up to its disks' size, whatever
 * the host has free (QEMU pauses it only when the file system is full,
 * the host's other files with it).  Ten times a second, a hundred once
 * under four times the minimum instant_start asked for: if the overlay
 * directory has less free than that minimum, pause the domain (found as
 * driver.c checks it: UUID, name, disks); once it has that much again,
 * resume it if this supervisor paused it and it is still paused by a
 * user (libvirt cannot tell that pause from an operator's).  Writes of
 * up to a hundredth of a second, and those in flight when QEMU stops,
 * may go past the minimum: a guest writing more than the minimum in
 * that time (64 MiB: 6.4 GB/s) can still fill the file system.  While
 * paused, a look every half second (each costs libvirt calls).  A
 * remote session's overlays are in its host's pool. */
static void
sup_space (struct supervisor *sv)
{
  const struct instant_session *s = sv->s;
  CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
  struct statvfs st;
  uint64_t avail;
  double now = now_monotonic ();
  bool low;
  int state, reason;
  char a[32], b[32];

  if (session_remote (s) || !s->overlay_floor || !s->overlay_dir[0] ||
      now < sv->space_next)
    return;
  sv->space_next = now + 0.1;
  if (statvfs (s->overlay_dir, &st) == -1)
    return;
  avail = (uint64_t) st.f_bavail * st.f_frsize;
  low = avail < s->overlay_floor;
  if (low && sv->paused)
    sv->space_next = now + 0.5;
  else if (avail / 4 < s->overlay_floor)
    sv->space_next = now + 0.01;
  if (!low && !sv->paused)
    return;
  if (!sv->conn && !(sv->conn = virt_connect (s->uri))) {
    proc_log ("overlay space: %s", error_msg ());
    return;
  }
  if (drv_session_domain (sv->conn, s, &d) <= 0) {
    /* gone, or the connection died with a libvirtd restart (it then
     * finds nothing): a new connection at the next look, in a second */
    virt_close (sv->conn);
    sv->conn = NULL;
    sv->space_next = now + 1;
    return;
  }
  state = virt_domain_state (d, &reason);
  human_size (avail, a, sizeof a);
  human_size (s->overlay_floor, b, sizeof b);
  if (!low) {
    sv->paused = false;
    if (state != VIR_DOMAIN_PAUSED || reason != VIR_DOMAIN_PAUSED_USER)
      return;
    if (virt_domain_resume (d) == -1)
      proc_log ("overlay space: %s", error_msg ());
    else
      proc_log ("domain %s resumed: the overlay directory %s has %s free again", s->name,
                s->overlay_dir, a);
    return;
  }
  if (state != VIR_DOMAIN_RUNNING)
    return;
  if (virt_domain_suspend (d) == -1) {
    proc_log ("overlay space low, domain not paused: %s", error_msg ());
    virt_close (sv->conn);                 /* a new connection next time */
    sv->conn = NULL;
    return;
  }
  sv->paused = true;
  proc_log ("domain %s paused: the overlay directory %s has %s free, under the minimum "
            "%s (BOOTBACK_OVERLAY_MIN_FREE): the guest's writes would fill the host's "
            "file system; it is resumed once there is that much free again", s->name,
            s->overlay_dir, a, b);
}

/* How long poll may wait: until sup_space's next look, at most 100 ms
 * (space_next 0: it has not looked, or does not look). */
static int
sup_wait_ms (const struct supervisor *sv)
{
  double left = sv->space_next - now_monotonic ();

  if (sv->space_next == 0 || left >= 0.1)
    return 100;
  return left <= 0 ? 0 : (int) (left * 1000) + 1;
}

/* Keep every nbdkit serving until a signal says stop (0) or poll fails
 * (1); watch the overlays' free space (sup_space). */
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
    r = poll (sv->pfds, n + 1, sup_wait_ms (sv));
    if (r == -1 && errno != EINTR) {
      proc_log ("poll: %s", strerror (errno));
      return 1;
    }
    if ((sv->pfds[n].revents & POLLIN) && daemon_quit_signal (sv->sfd))
      return 0;
    sup_space (sv);
    for (i = 0; i < n; i++) {
      if (sv->procs[i].external)
        continue;
      if (sv->procs[i].pidfd < 0) {
        /* A failed restart: try again (every 5 s at most). */
        if (now_monotonic () >= sv->restart_next && proc_start (&sv->procs[i]) == -1) {
          proc_log ("%s", error_msg ());
          sv->restart_next = now_monotonic () + 5;
        }
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
    proc_log ("error: %s", error_msg ());
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
    if (i % 2 == 0 && !sv->procs[i].external)
      proc_stop (&sv->procs[i]);
  if (sv->pidpath)
    unlink (sv->pidpath);
  proc_log ("stopped");
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
  virt_close (sv.conn);
  free (sv.pidpath);
  for (size_t i = 0; i < sv.n; i++)
    proc_free (&sv.procs[i]);
  free (sv.procs);
  free (sv.pfds);
  free (sv.s);
  return ret;
}
