/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Published ports of a sandbox (docs/design.md, "Lab network"): the
 * host's ADDR:PORT relayed to one VM's PORT inside the lab namespace.
 *
 *   client ──> ADDR:PORT (host namespace, listening socket made by
 *              `lab up` before the lab) ── relay process ──> VM
 *              address:port (socket made inside the lab namespace)
 *
 * Why a relay process and not DNAT: DNAT into the namespace's veth would
 * need a host route into the lab subnet, forwarding on and ACCEPT rules
 * where the isolation checks demand DROP (invariants 4 and 6 of net.c),
 * i.e. a routed path between the host and the lab that every check would
 * have to tell apart from a leak.  The relay keeps the lab closed: no
 * address, route, rule or forwarding changes; the only bridge between
 * the two networks is a process that holds listening sockets of the host
 * and makes connections in the lab, to fixed targets.
 *
 * Invariants:
 *  1. The targets are the VMs' addresses from the lab definition (the
 *     administrator's) and the ports of `--publish` or publish:; nothing
 *     a guest sends or a restore point says opens a host port or chooses
 *     where the relay connects.
 *  2. The relay's pid (and start time) is in the sandbox's state before
 *     the relay does anything: it waits for a go byte sent after the
 *     state is saved, and exits if `lab up` dies first.  Teardown (lab
 *     down, lab reap) stops it by pid and start time before the network.
 *  3. The relay enters the lab namespace (the netns fd opened before the
 *     fork) for good, then drops to nobody with no_new_privs: it can only
 *     connect inside the lab and holds no privilege.  Its host side is
 *     the listening sockets it was given.  It ends by itself when the run
 *     directory is removed.
 *  4. At most LAB_RELAY_CONNS connections at once; more are closed at
 *     once, and one idle for RELAY_IDLE_TIMEOUT is closed.  Each is
 *     copied both ways through two fixed buffers (poll, non-blocking);
 *     the relay allocates nothing after the fork.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

#define NOBODY 65534
#define RELAY_BUF 16384
#define RELAY_CONNECT_TIMEOUT 10.0
#define RELAY_IDLE_TIMEOUT 3600.0  /* a connection with no byte this long goes */

void
lab_publish_close (int *fds, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (fds[i] >= 0) {
      close (fds[i]);
      fds[i] = -1;
    }
}

int
lab_publish_listen (const struct lab_def *d, int *fds)
{
  size_t i;

  for (i = 0; i < d->npublish; i++)
    fds[i] = -1;
  for (i = 0; i < d->npublish; i++) {
    const struct lab_publish *p = &d->publish[i];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (p->port) };
    int one = 1;

    inet_pton (AF_INET, p->addr, &sa.sin_addr);
    fds[i] = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fds[i] == -1 ||
        setsockopt (fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1 ||
        bind (fds[i], (struct sockaddr *) &sa, sizeof sa) == -1 ||
        listen (fds[i], 64) == -1) {
      error_set (errno, "publish %s:%d: cannot listen", p->addr, p->port);
      lab_publish_close (fds, i + 1);
      return -1;
    }
  }
  return 0;
}

/* ---- the relay process (after the fork: no allocation) ---------------- */

struct relay_conn {
  int fd[2];                 /* 0: the client (host), 1: the VM (lab) */
  bool connecting;
  double deadline;           /* of the connect, then of idleness */
  size_t len[2], off[2];     /* buf[d]: read from fd[d], to write to fd[!d] */
  bool eof[2], shut[2];
  char buf[2][RELAY_BUF];
};

struct relay {
  size_t nlisten;
  int listen[LAB_PUBLISH_MAX];
  struct sockaddr_in target[LAB_PUBLISH_MAX];
  int dirfd;                 /* O_PATH of the run directory */
  struct relay_conn conns[LAB_RELAY_CONNS];
};

static struct relay relay;

static void
conn_close (struct relay_conn *c)
{
  if (c->fd[0] >= 0)
    close (c->fd[0]);
  if (c->fd[1] >= 0)
    close (c->fd[1]);
  c->fd[0] = c->fd[1] = -1;
}

/* A new client on listener i: a socket in the lab namespace (the relay
 * lives there) connecting to the fixed target i. */
static void
relay_accept (size_t i)
{
  struct relay_conn *c = NULL;
  size_t k;
  int cfd = accept4 (relay.listen[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

  if (cfd == -1)
    return;
  for (k = 0; k < LAB_RELAY_CONNS && !c; k++)
    if (relay.conns[k].fd[0] < 0)
      c = &relay.conns[k];
  if (!c) {                  /* invariant 4: bounded */
    close (cfd);
    return;
  }
  c->fd[0] = cfd;
  c->fd[1] = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  c->len[0] = c->len[1] = c->off[0] = c->off[1] = 0;
  c->eof[0] = c->eof[1] = c->shut[0] = c->shut[1] = false;
  c->connecting = true;
  c->deadline = now_monotonic () + RELAY_CONNECT_TIMEOUT;
  if (c->fd[1] == -1 ||
      (connect (c->fd[1], (struct sockaddr *) &relay.target[i], sizeof relay.target[i]) == -1 &&
       errno != EINPROGRESS))
    conn_close (c);
}

/* Copy what can be copied in direction d (fd[d] -> fd[!d]); -1: close. */
static int
conn_pump (struct relay_conn *c, int d, short rev_src, short rev_dst)
{
  ssize_t r;

  if (c->len[d] == 0 && !c->eof[d] && (rev_src & (POLLIN | POLLHUP | POLLERR))) {
    r = read (c->fd[d], c->buf[d], RELAY_BUF);
    if (r == -1 && errno != EAGAIN && errno != EINTR)
      return -1;
    if (r == 0)
      c->eof[d] = true;
    if (r > 0) {
      c->len[d] = r;
      c->off[d] = 0;
      rev_dst |= POLLOUT;            /* try at once */
    }
  }
  if (c->len[d] > c->off[d] && (rev_dst & POLLOUT)) {
    r = send (c->fd[!d], c->buf[d] + c->off[d], c->len[d] - c->off[d], MSG_NOSIGNAL);
    if (r == -1 && errno != EAGAIN && errno != EINTR)
      return -1;
    if (r > 0)
      c->off[d] += r;
    if (c->off[d] == c->len[d])
      c->len[d] = c->off[d] = 0;
  }
  if (c->eof[d] && c->len[d] == 0 && !c->shut[d]) {
    shutdown (c->fd[!d], SHUT_WR);
    c->shut[d] = true;
  }
  return 0;
}

static void
conn_events (struct relay_conn *c, struct pollfd p[2])
{
  int d;

  p[0].fd = c->fd[0];
  p[1].fd = c->fd[1];
  p[0].events = p[1].events = 0;
  if (c->connecting) {
    p[1].events = POLLOUT;
    return;
  }
  for (d = 0; d < 2; d++) {
    if (c->len[d] == 0 && !c->eof[d])
      p[d].events |= POLLIN;
    if (c->len[d] > 0)
      p[!d].events |= POLLOUT;
  }
}

static void
conn_step (struct relay_conn *c, const struct pollfd p[2])
{
  if (c->connecting) {
    int err = 0;
    socklen_t l = sizeof err;
    if (!(p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      if (now_monotonic () > c->deadline)
        conn_close (c);
      return;
    }
    if (getsockopt (c->fd[1], SOL_SOCKET, SO_ERROR, &err, &l) == -1 || err) {
      conn_close (c);
      return;
    }
    c->connecting = false;
    c->deadline = now_monotonic () + RELAY_IDLE_TIMEOUT;
    return;
  }
  if ((p[0].revents | p[1].revents) & (POLLIN | POLLOUT))
    c->deadline = now_monotonic () + RELAY_IDLE_TIMEOUT;
  else if (now_monotonic () > c->deadline) {
    conn_close (c);
    return;
  }
  if (conn_pump (c, 0, p[0].revents, p[1].revents) == -1 ||
      conn_pump (c, 1, p[1].revents, p[0].revents) == -1 ||
      (c->shut[0] && c->shut[1]))
    conn_close (c);
}

/* The run directory is gone (teardown finished): time to go. */
static bool
relay_orphaned (void)
{
  struct stat st;

  return fstat (relay.dirfd, &st) == -1 || st.st_nlink == 0;
}

static void __attribute__((noreturn))
relay_loop (void)
{
  struct pollfd p[LAB_PUBLISH_MAX + 2 * LAB_RELAY_CONNS];
  size_t i, k;

  for (;;) {
    for (i = 0; i < relay.nlisten; i++)
      p[i] = (struct pollfd) { .fd = relay.listen[i], .events = POLLIN };
    for (k = 0; k < LAB_RELAY_CONNS; k++) {
      struct pollfd *q = &p[relay.nlisten + 2 * k];
      if (relay.conns[k].fd[0] >= 0)
        conn_events (&relay.conns[k], q);
      else
        q[0].fd = q[1].fd = -1;
    }
    if (poll (p, relay.nlisten + 2 * LAB_RELAY_CONNS, 1000) == -1 && errno != EINTR)
      _exit (1);
    if (relay_orphaned ())
      _exit (0);
    for (k = 0; k < LAB_RELAY_CONNS; k++)
      if (relay.conns[k].fd[0] >= 0)
        conn_step (&relay.conns[k], &p[relay.nlisten + 2 * k]);
    for (i = 0; i < relay.nlisten; i++)
      if (p[i].revents & POLLIN)
        relay_accept (i);
  }
}

/* Close every fd but 0-2 and those of keep[0..n). */
static void
close_others (const int *keep, size_t n)
{
  int fd, max = (int) sysconf (_SC_OPEN_MAX);
  size_t i;

  if (max < 0 || max > 65536)
    max = 65536;
  for (fd = 3; fd < max; fd++) {
    bool k = false;
    for (i = 0; i < n && !k; i++)
      k = keep[i] == fd;
    if (!k)
      close (fd);
  }
}

/* Invariant 3: into the lab namespace, then nobody.  0, or -1 with a
 * message in msg. */
static int
relay_confine (int nsfd, const char **msg)
{
  if (setns (nsfd, CLONE_NEWNET) == -1) {
    *msg = "setns into the lab namespace failed";
    return -1;
  }
  close (nsfd);
  if (geteuid () == 0 &&
      (setgroups (0, NULL) == -1 || setresgid (NOBODY, NOBODY, NOBODY) == -1 ||
       setresuid (NOBODY, NOBODY, NOBODY) == -1)) {
    *msg = "cannot drop to nobody";
    return -1;
  }
  /* no_new_privs; not dumpable: no other nobody process may ptrace it */
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
      prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
    *msg = "cannot set no_new_privs or clear dumpable";
    return -1;
  }
  return 0;
}

/* The child: wait for go (invariant 2), confine, say "ok" (or why not)
 * on sock, serve. */
static void __attribute__((noreturn))
relay_child (int sock, int nsfd, const char *id)
{
  int keep[LAB_PUBLISH_MAX + 3];
  const char *msg = NULL;
  char go = 0, name[16];
  int null = open ("/dev/null", O_RDWR);
  size_t i, n = 0;

  signal (SIGINT, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGHUP, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  if (read (sock, &go, 1) != 1 || go != 'g')
    _exit (0);                     /* lab up died before recording us */
  setsid ();
  snprintf (name, sizeof name, "bbrelay-%s", id);
  prctl (PR_SET_NAME, name);
  if (null >= 0) {
    dup2 (null, 0);
    dup2 (null, 1);
    dup2 (null, 2);
  }
  for (i = 0; i < relay.nlisten; i++)
    keep[n++] = relay.listen[i];
  keep[n++] = relay.dirfd;
  keep[n++] = sock;
  keep[n++] = nsfd;
  close_others (keep, n);
  for (i = 0; i < LAB_RELAY_CONNS; i++)
    relay.conns[i].fd[0] = relay.conns[i].fd[1] = -1;
  if (relay_confine (nsfd, &msg) == -1) {
    if (write (sock, msg, strlen (msg)) < 0) {}
    _exit (1);
  }
  if (write (sock, "ok", 2) < 0) {}
  close (sock);
  relay_loop ();
}

/* Fill the relay's table: listener i connects to the address of d's VM
 * (from the definition, invariant 1).  The state's published lines too. */
static int
relay_table (struct lab_state *s, const struct lab_def *d, int *fds)
{
  size_t i, g, k;

  memset (&relay, 0, sizeof relay);
  strv_free (s->published);
  s->published = xcalloc (d->npublish + 1, sizeof *s->published);
  for (i = 0; i < d->npublish; i++) {
    const struct lab_publish *p = &d->publish[i];
    const struct lab_vm *vm = NULL;
    char spec[LAB_PUBLISH_LEN];
    for (g = 0; g < d->ngroups; g++)
      for (k = 0; k < d->groups[g].nvms; k++)
        if (strcmp (d->groups[g].vms[k].name, p->vm) == 0)
          vm = &d->groups[g].vms[k];
    if (!vm || !vm->address) {
      error_setx ("publish: VM %s has no address in the lab definition", p->vm);
      return -1;
    }
    relay.listen[i] = fds[i];
    relay.target[i].sin_family = AF_INET;
    relay.target[i].sin_port = htons (p->vm_port);
    inet_pton (AF_INET, vm->address, &relay.target[i].sin_addr);
    lab_publish_format (p, spec, sizeof spec);
    s->published[i] = xasprintf ("%s %s:%d", spec, vm->address, p->vm_port);
  }
  relay.nlisten = d->npublish;
  return 0;
}

/* After the fork: record the child (invariant 2), send go, wait for its
 * "ok".  -1 with the error set; the caller stops the child. */
static int
relay_handshake (struct lab_state *s, pid_t pid, int sock)
{
  char msg[256] = "";
  ssize_t r;
  struct pollfd p = { .fd = sock, .events = POLLIN };

  s->relay_pid = pid;
  s->relay_start = pid_start_time (pid);
  if (lab_state_save (s) == -1)
    return -1;
  if (write (sock, "g", 1) != 1) {
    error_set (errno, "relay of lab %s: cannot start it", s->id);
    return -1;
  }
  if (poll (&p, 1, 10000) != 1 || (r = read (sock, msg, sizeof msg - 1)) <= 0) {
    error_setx ("relay of lab %s: no answer", s->id);
    return -1;
  }
  msg[r] = '\0';
  if (strcmp (msg, "ok") != 0) {
    error_setx ("relay of lab %s: %s", s->id, msg);
    return -1;
  }
  return 0;
}

int
lab_publish_start (struct lab_state *s, const struct lab_net *net,
                   const struct lab_def *d, int *fds)
{
  CLEANUP_FREE char *ns = xasprintf ("/run/netns/%s", net->netns);
  int sv[2], nsfd;
  pid_t pid;

  if (d->npublish == 0)
    return 0;
  if (relay_table (s, d, fds) == -1)
    goto fail;
  nsfd = open (ns, O_RDONLY | O_CLOEXEC);
  relay.dirfd = open (s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (nsfd == -1 || relay.dirfd == -1 ||
      socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    error_set (errno, "relay of lab %s: open %s", s->id, nsfd == -1 ? ns : s->dir);
    if (nsfd != -1)
      close (nsfd);
    goto fail;
  }
  pid = fork ();
  if (pid == 0) {
    close (sv[0]);
    relay_child (sv[1], nsfd, s->id);
  }
  if (pid == -1)
    error_set (errno, "relay of lab %s: fork", s->id);
  close (sv[1]);
  close (nsfd);
  close (relay.dirfd);
  lab_publish_close (fds, d->npublish);
  if (pid > 0 && relay_handshake (s, pid, sv[0]) == 0) {
    close (sv[0]);
    return 0;
  }
  close (sv[0]);
  if (pid > 0) {
    ERROR_SAVE (e);
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    s->relay_pid = 0;
    s->relay_start = 0;
    lab_state_save (s);
    ERROR_RESTORE (e);
  }
  return -1;
 fail:
  lab_publish_close (fds, d->npublish);
  return -1;
}

bool
lab_publish_alive (const struct lab_state *s)
{
  return s->relay_pid > 0 && pid_matches (s->relay_pid, s->relay_start, NULL);
}

int
lab_publish_stop (struct lab_state *s)
{
  if (s->relay_pid <= 0)
    return 0;
  pid_stop (s->relay_pid, s->relay_start, NULL, 5);
  if (lab_publish_alive (s)) {
    error_setx ("lab %s: its relay (pid %d) does not stop", s->id, (int) s->relay_pid);
    return -1;
  }
  return 0;
}
