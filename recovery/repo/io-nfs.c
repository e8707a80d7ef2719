/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The NFS backend of the I/O ops table: a repository at
 * nfs://SERVER/EXPORT/PATH[?OPTIONS] read and written with libnfs, without
 * a kernel mount (no root mount, works in containers).  The options are
 * libnfs's own (version=3|4, nfsport=, mountport=, uid=, gid=, ...);
 * without version= NFSv4 is tried first, then NFSv3.  Settings, from
 * struct repo_open_opts (the command line and the nbdkit plugin take
 * them from BOOTBACK_NFS_CONNECTIONS and BOOTBACK_NFS_TIMEOUT): the pool
 * size (default 4, at most 32) and the seconds without a reply before a
 * call fails (default 30).
 *
 * Design notes (invariants):
 *  1. A libnfs context is not thread-safe.  The backend keeps a pool of
 *     connections, each an nfs_context behind its own mutex.  A path
 *     operation takes a free connection (a connected one first), so N
 *     threads make up to N requests at once; an open file belongs to the
 *     connection it was opened on and locks it for each of its calls.  No
 *     thread ever holds two connection locks.
 *  2. Every call goes through libnfs's async API and our own poll loop
 *     (run) with a deadline.  Reads and writes are cut into pieces (PIECE
 *     bytes, or V4_WPIECE for NFSv4 writes) that are all sent before the
 *     first reply is awaited: a chunk costs about one round trip, not one
 *     per piece.
 *  3. A connection whose socket fails, or whose call passes the deadline,
 *     is dropped at once (pending calls die with it: EIO or ETIMEDOUT).
 *     Its generation changes: files opened on the old one fail with EIO,
 *     and the next operation that takes the connection connects again.
 *     Before a connection is used, a socket the server closed while we
 *     were idle is noticed (poll, nothing can be readable on an idle NFS
 *     connection) and replaced before anything is sent.  So a server
 *     that goes away costs errors for a bounded time, and nothing after it
 *     is back.  Calls that read (stat, list, open for reading, read) are
 *     retried once on a fresh connection; calls that change something are
 *     not, as the server may have done them before the connection broke.
 *  4. Durability: writes are UNSTABLE; fsync is COMMIT, and close commits
 *     a file written since its last COMMIT, so a closed file is on stable
 *     storage.  The server makes namespace changes (create, rename,
 *     remove, mkdir) stable before it replies (RFC 1813, RFC 7530), so
 *     sync_dir and sync_all have nothing left to do.
 *  5. Times are the server's: touch is SETATTR with SET_TO_SERVER_TIME,
 *     and every file we create gets its times (and mode 0600) set so too
 *     (GC compares mtimes with the storage clock, see gc.c).  Directories
 *     are made 0700: a repository is its owner's alone (util's
 *     PRIVATE_*_MODE).
 *  6. libnfs 4.0's NFSv4 quirks and what this file does about them:
 *     - every context of a process has the same client id, so a second
 *       mount expires the first one's open files: each connection of the
 *       pool has its own (nfs4_set_client_name) and a fresh verifier at
 *       every connect (the server then drops the old incarnation's state);
 *     - utimes (path, NULL) crashes: touch is our own COMPOUND
 *       (PUTROOTFH, LOOKUP..., SETATTR), and so is chmod (libnfs's fails
 *       with NFS4ERR_INVAL on the mounted directory itself);
 *     - files are created EXCLUSIVE4 with no attributes: the verifier
 *       stays in atime/mtime (fixed by 5., which also sets the mode);
 *     - an OPEN the server refuses (say NFS4ERR_EXIST) desynchronises the
 *       open-owner sequence id, and every later OPEN on the context gets
 *       the cached refusal: creating opens check for the file first, and
 *       a connection is dropped after any refused OPEN;
 *     - O_CREAT without O_EXCL fails on an existing file: such opens look
 *       first and leave O_CREAT out when the file is there;
 *     - the lease is never renewed: a connection with no open file and
 *       no stateful call for half the server's lease (asked at mount;
 *       IDLE_RESET at most) is reconnected before use, and a lost state
 *       (NFS4ERR_EXPIRED, STALE_CLIENTID, ...) drops the connection and
 *       is retried once;
 *     - opendir costs about 0.4 ms per entry (65536 chunk directories:
 *       half a minute): NFSv4 listings are our own READDIR;
 *     - the socket is written with send () without MSG_NOSIGNAL: SIGPIPE
 *       is blocked in the calling thread around our calls and a pending
 *       one discarded, so a server that resets the connection cannot kill
 *       the process;
 *     - an NFSv4 WRITE of more than about 3.9 KiB fails to encode (its
 *       buffer has a fixed size): NFSv4 writes go in pieces of V4_WPIECE
 *       bytes (256 less each time that still fails), all in flight at
 *       once.  The server's work per request then bounds imports (see
 *       bench/nfs); NFSv3 has no such limit;
 *     - nfs4_set_client_name leaks the default name (tests/lib/libnfs.supp);
 *     - nfs_pread/nfs_pwrite take (offset, count) where libnfs 5 takes
 *       (buf, count, offset): only the async forms are used, here only.
 *  7. A connection keeps a list of the files open on it.  When it is
 *     dropped, its pending calls fail first (rpc_disconnect), then each
 *     open file's handle is given to a close that is never sent: libnfs
 *     frees the handle when the context's destruction cancels that close
 *     (it has no other public way to free one).  A file whose close call
 *     is under way is off the list (the close owns the handle).  So a
 *     server that goes away under a long-running reader costs no memory.
 *  8. Some NFSv3 servers (nfs-ganesha) mount an export but no directory
 *     below it: the nearest parent that mounts is mounted instead and
 *     paths are prefixed with the rest (subdir).  NFSv4 walks the server's
 *     pseudo file system to any directory and needs no such thing.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "recovery/repo/io-nfs.h"

#define PIECE (256 * 1024)          /* one READ (or NFSv3 WRITE) request */
#define V4_WPIECE 3840              /* one NFSv4 WRITE request (6.) */
#define MAX_IO (4 * 1024 * 1024)    /* a call moves at most this much */
#define MAX_CONNS 32
#define IDLE_RESET 15.0             /* seconds, at most (half the lease) */
#define MAX_DEPTH 64                /* path components in a COMPOUND */

struct conn {
  pthread_mutex_t lock;
  struct nfs_context *nfs;          /* NULL: not connected */
  _Atomic bool up;                  /* nfs != NULL, read without the lock */
  unsigned gen;                     /* +1 at each drop */
  unsigned nfiles;                  /* files open on this generation */
  struct nfile *files;              /* the list of them (7.) */
  double renewed;                   /* now_monotonic () of the last call that
                                       renewed the NFSv4 lease */
  int slot;
};

struct nio {
  char *url;                        /* as given, options included */
  char *server, *root;              /* from the URL */
  char *mount_root;                 /* what is mounted: root or a parent */
  char *subdir;                     /* root below mount_root ("" or "/a/b") */
  bool mount_found;                 /* mount_root and subdir are settled */
  bool version_given;
  _Atomic int version;              /* 3 or 4 once a mount decided */
  _Atomic size_t v4_wpiece;         /* NFSv4 WRITE size that libnfs encodes */
  _Atomic double idle_reset;        /* seconds: half the server's lease */
  unsigned id;                      /* this process's nth nio: client names */
  double timeout;
  size_t nconns;
  _Atomic size_t next;
  struct conn conns[MAX_CONNS];
};

struct nfile {
  struct nfile *prev, *next;        /* in c->files (7.) */
  struct conn *c;
  unsigned gen;
  struct nfsfh *fh;
  bool dirty;                       /* written since the last COMMIT */
  bool writable;
  char path[];                      /* relative, for messages */
};

#define PRIV(io) ((struct nio *) (io)->priv)
#define NFILE(f) ((struct nfile *) (f))

/* Connection setup calls getaddrinfo, getservbyport and a static port
 * counter in libnfs: one at a time. */
static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- one call in flight ------------------------------------------------ */

enum { K_NONE, K_STAT, K_PTR, K_READ };

struct call {
  bool done;
  int kind;
  int res;                          /* >= 0, or -errno */
  void *buf;                        /* K_READ: where the bytes go */
  size_t len;
  void *ptr;                        /* K_PTR: struct nfsfh / nfsdir */
  struct nfs_stat_64 st;            /* K_STAT */
  char msg[160];                    /* the server's or libnfs's words */
};

static void
call_init (struct call *k, int kind)
{
  memset (k, 0, offsetof (struct call, st));
  k->kind = kind;
  k->msg[0] = '\0';
}

/* Completion of an nfs_*_async call (data is only valid in here). */
static void
call_cb (int res, struct nfs_context *nfs, void *data, void *opaque)
{
  struct call *k = opaque;

  k->done = true;
  k->res = res;
  if (res < 0) {
    snprintf (k->msg, sizeof k->msg, "%s", data ? (const char *) data : "");
    return;
  }
  switch (k->kind) {
  case K_STAT: memcpy (&k->st, data, sizeof k->st); break;
  case K_PTR: k->ptr = data; break;
  case K_READ:
    k->res = MIN ((size_t) res, k->len);
    memcpy (k->buf, data, k->res);
    break;
  }
}

static int
nfs4_errno (int status)
{
  switch (status) {
  case NFS4ERR_PERM: return EPERM;
  case NFS4ERR_NOENT: return ENOENT;
  case NFS4ERR_ACCESS: return EACCES;
  case NFS4ERR_EXIST: return EEXIST;
  case NFS4ERR_NOTDIR: return ENOTDIR;
  case NFS4ERR_ISDIR: return EISDIR;
  case NFS4ERR_INVAL: return EINVAL;
  case NFS4ERR_FBIG: return EFBIG;
  case NFS4ERR_NOSPC: return ENOSPC;
  case NFS4ERR_ROFS: return EROFS;
  case NFS4ERR_NAMETOOLONG: return ENAMETOOLONG;
  case NFS4ERR_NOTEMPTY: return ENOTEMPTY;
  case NFS4ERR_DQUOT: return EDQUOT;
  case NFS4ERR_STALE: case NFS4ERR_FHEXPIRED: return ESTALE;
  default: return EIO;
  }
}

/* Completion of our own COMPOUND (rpc level). */
static void
compound_cb (struct rpc_context *rpc, int status, void *data, void *opaque)
{
  struct call *k = opaque;
  COMPOUND4res *res = data;

  k->done = true;
  if (status != RPC_STATUS_SUCCESS) {
    k->res = -EIO;
    snprintf (k->msg, sizeof k->msg, "RPC failed: %s",
              status == RPC_STATUS_ERROR && data ? (const char *) data : "cancelled");
  }
  else if (res->status != NFS4_OK) {
    k->res = -nfs4_errno (res->status);
    snprintf (k->msg, sizeof k->msg, "NFS4 COMPOUND failed with status %d",
              (int) res->status);
  }
  else
    k->res = 0;
}

/* Completion of PUTROOTFH, GETATTR (lease_time): k->res = the lease. */
static void
lease_cb (struct rpc_context *rpc, int status, void *data, void *opaque)
{
  struct call *k = opaque;
  COMPOUND4res *res = data;
  fattr4 *a;
  uint32_t v;

  compound_cb (rpc, status, data, opaque);
  if (k->res < 0 || res->resarray.resarray_len < 2)
    return;
  a = &res->resarray.resarray_val[1].nfs_resop4_u.opgetattr.GETATTR4res_u.resok4
        .obj_attributes;
  if (a->attr_vals.attrlist4_len < 4) {
    k->res = -EINVAL;
    return;
  }
  memcpy (&v, a->attr_vals.attrlist4_val, 4);
  k->res = be32toh (v) > INT32_MAX ? INT32_MAX : (int) be32toh (v);
}

/* What an error of libnfs means for the connection (quirk list, 6.). */
enum { E_PLAIN, E_STATE, E_WAIT };
static int
classify (const struct call *k)
{
  static const char *const state[] = {
    "NFS4ERR_EXPIRED", "NFS4ERR_STALE_CLIENTID", "NFS4ERR_STALE_STATEID",
    "NFS4ERR_BAD_STATEID", "NFS4ERR_OLD_STATEID", "NFS4ERR_BAD_SEQID",
    "NFS4ERR_ADMIN_REVOKED", "NFS4ERR_LEASE_MOVED", NULL
  };
  size_t i;

  for (i = 0; state[i]; i++)
    if (strstr (k->msg, state[i]))
      return E_STATE;
  if (strstr (k->msg, "NFS4ERR_GRACE") || strstr (k->msg, "NFS4ERR_DELAY"))
    return E_WAIT;
  return E_PLAIN;
}

/* ---- SIGPIPE (quirk list, 6.) ------------------------------------------ */

struct sigpipe_guard {
  sigset_t old;
  bool was_pending;
};

static void
sigpipe_block (struct sigpipe_guard *g)
{
  sigset_t s, pending;

  sigemptyset (&s);
  sigaddset (&s, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &s, &g->old);
  sigpending (&pending);
  g->was_pending = sigismember (&pending, SIGPIPE);
}

static void
sigpipe_unblock (struct sigpipe_guard *g)
{
  sigset_t s, pending;
  struct timespec zero = { 0, 0 };

  sigpending (&pending);
  if (!g->was_pending && sigismember (&pending, SIGPIPE)) {
    sigemptyset (&s);
    sigaddset (&s, SIGPIPE);
    while (sigtimedwait (&s, NULL, &zero) == -1 && errno == EINTR)
      ;
  }
  pthread_sigmask (SIG_SETMASK, &g->old, NULL);
}

/* ---- connections -------------------------------------------------------- */

/* f is open on c (7.).  Lock held. */
static void
file_link (struct conn *c, struct nfile *f)
{
  f->prev = NULL;
  f->next = c->files;
  if (c->files)
    c->files->prev = f;
  c->files = f;
  c->nfiles++;
}

/* f is closed, or its close call owns its handle (7.).  Lock held. */
static void
file_unlink (struct conn *c, struct nfile *f)
{
  if (f->prev)
    f->prev->next = f->next;
  else
    c->files = f->next;
  if (f->next)
    f->next->prev = f->prev;
  f->prev = f->next = NULL;
  c->nfiles--;
}

static void
discard_cb (int res, struct nfs_context *nfs, void *data, void *opaque)
{
}

/* Forget c's context: its pending calls fail, the handles of the files
 * open on it are freed (7.).  Lock held. */
static void
drop (struct conn *c)
{
  struct nfs_context *nfs = c->nfs;
  struct nfile *f;

  if (!nfs)
    return;
  c->nfs = NULL;
  atomic_store (&c->up, false);
  c->gen++;
  rpc_disconnect (nfs_get_rpc_context (nfs), "connection dropped");
  for (f = c->files; f; f = f->next) {
    nfs_close_async (nfs, f->fh, discard_cb, NULL);
    f->fh = NULL;
  }
  c->files = NULL;
  c->nfiles = 0;
  nfs_destroy_context (nfs);
}

/* Service c until every one of ks[0..nk) is done.  0, or -1 with why set
 * and errno ETIMEDOUT (no reply in time) or EIO (connection failed), the
 * connection dropped.  Lock held. */
static int
run (struct nio *n, struct conn *c, struct call *ks, size_t nk, char *why,
     size_t whylen)
{
  double deadline = now_monotonic () + n->timeout;

  for (;;) {
    struct pollfd p;
    double left;
    size_t i;
    int r;

    for (i = 0; i < nk && ks[i].done; i++)
      ;
    if (i == nk)
      return 0;
    left = deadline - now_monotonic ();
    if (left <= 0) {
      snprintf (why, whylen, "no reply from the server in %g s", n->timeout);
      drop (c);
      errno = ETIMEDOUT;
      return -1;
    }
    p.fd = nfs_get_fd (c->nfs);
    p.events = nfs_which_events (c->nfs);
    p.revents = 0;
    r = poll (&p, 1, (int) MIN (left * 1000 + 1, 500));
    if (r == -1 && errno != EINTR) {
      snprintf (why, whylen, "poll: %s", strerror (errno));
      drop (c);
      errno = EIO;
      return -1;
    }
    if (nfs_service (c->nfs, r > 0 ? p.revents : 0) < 0) {
      const char *e = nfs_get_error (c->nfs);
      snprintf (why, whylen, "connection to the server failed (%s)",
                e && *e ? e : "closed by the server");
      drop (c);
      errno = EIO;
      return -1;
    }
  }
}

/* True if the server closed c's socket while it was idle. Lock held. */
static bool
closed_while_idle (struct conn *c)
{
  struct pollfd p = { .fd = nfs_get_fd (c->nfs), .events = POLLIN };

  if (p.fd < 0)
    return true;
  return poll (&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

static struct nfs_context *
new_context (struct nio *n, struct conn *c, int version)
{
  struct nfs_context *nfs = nfs_init_context ();
  struct nfs_url *u;
  char name[128], host[64] = "localhost", verf[8];
  uint32_t xid;

  if (!nfs)
    return NULL;
  gethostname (host, sizeof host - 1);
  /* Unique among live connections; the same for a reconnect of the same
   * connection, so that the server drops the old incarnation's state. */
  snprintf (name, sizeof name, "bootback/%s/%ld/%u/%d", host, (long) getpid (),
            n->id, c->slot);
  nfs4_set_client_name (nfs, name);
  if (getrandom (verf, sizeof verf, 0) != sizeof verf ||
      getrandom (&xid, sizeof xid, 0) != sizeof xid)
    abort ();
  nfs4_set_verifier (nfs, verf);
  rpc_set_next_xid (nfs_get_rpc_context (nfs), xid);
  u = nfs_parse_url_dir (nfs, n->url);     /* applies the URL's options */
  if (!u) {
    nfs_destroy_context (nfs);
    return NULL;
  }
  nfs_destroy_url (u);
  if (version)
    nfs_set_version (nfs, version);
  nfs_set_autoreconnect (nfs, 0);          /* we reconnect (3.) */
  nfs_set_dircache (nfs, 0);               /* other clients change dirs */
  return nfs;
}

/* Ask the server for its NFSv4 lease; reconnect idle connections after
 * half of it (quirk list, 6.).  Failure only leaves the default. */
static void
query_lease (struct nio *n, struct conn *c)
{
  uint32_t mask[2] = { 1u << FATTR4_LEASE_TIME, 0 };
  nfs_argop4 ops[2];
  COMPOUND4args args;
  struct call k;
  char why[256];

  memset (ops, 0, sizeof ops);
  memset (&args, 0, sizeof args);
  ops[0].argop = OP_PUTROOTFH;
  ops[1].argop = OP_GETATTR;
  ops[1].nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 1;
  ops[1].nfs_argop4_u.opgetattr.attr_request.bitmap4_val = mask;
  args.argarray.argarray_len = 2;
  args.argarray.argarray_val = ops;
  call_init (&k, K_NONE);
  if (rpc_nfs4_compound_async (nfs_get_rpc_context (c->nfs), lease_cb, &args, &k) < 0 ||
      run (n, c, &k, 1, why, sizeof why) == -1 || k.res <= 0)
    return;
  atomic_store (&n->idle_reset, MIN (IDLE_RESET, MAX (k.res / 2.0, 1.0)));
}

/* Mount mroot with one version (0: as the URL says) into c.  Lock held. */
static int
mount_one (struct nio *n, struct conn *c, int version, const char *mroot,
           char *why, size_t whylen)
{
  struct call k;

  c->nfs = new_context (n, c, version);
  if (!c->nfs) {
    snprintf (why, whylen, "cannot make an NFS context");
    errno = ENOMEM;
    return -1;
  }
  call_init (&k, K_NONE);
  if (nfs_mount_async (c->nfs, n->server, mroot[0] ? mroot : "/", call_cb, &k) < 0) {
    snprintf (why, whylen, "%s", nfs_get_error (c->nfs));
    nfs_destroy_context (c->nfs);
    c->nfs = NULL;
    errno = EIO;
    return -1;
  }
  if (run (n, c, &k, 1, why, whylen) == -1)
    return -1;
  if (k.res < 0) {
    snprintf (why, whylen, "%s", k.msg);
    nfs_destroy_context (c->nfs);
    c->nfs = NULL;
    /* libnfs reports a refused connection as EFAULT or EIO */
    errno = -k.res == ENOENT || -k.res == EACCES || -k.res == EPERM ? -k.res : EIO;
    return -1;
  }
  atomic_store (&c->up, true);
  c->renewed = now_monotonic ();
  if ((version ? version : atomic_load (&n->version)) == 4)
    query_lease (n, c);
  return 0;
}

/* Mount the URL's directory with one version (0: as the URL says).  Some
 * NFSv3 servers (nfs-ganesha) mount only an export itself, not a directory
 * below it: then mount the nearest parent that mounts and reach the
 * directory from there (mount_root, subdir).  Lock held. */
static int
mount_v (struct nio *n, struct conn *c, int version, char *why, size_t whylen)
{
  char why2[512];
  char *cut;
  int e;

  if (mount_one (n, c, version, n->mount_root, why, whylen) == 0)
    return 0;
  e = errno;
  if (n->mount_found || (version ? version : atomic_load (&n->version)) != 3 ||
      (e != EACCES && e != ENOENT))
    return -1;
  for (cut = strrchr (n->root, '/'); cut && cut > n->root;
       cut = memrchr (n->root, '/', cut - n->root)) {
    CLEANUP_FREE char *mroot = strndup (n->root, cut - n->root);
    struct call k;

    if (!mroot) abort ();
    if (mount_one (n, c, version, mroot, why2, sizeof why2) == -1)
      continue;
    call_init (&k, K_STAT);
    if (nfs_stat64_async (c->nfs, cut, call_cb, &k) < 0 ||
        run (n, c, &k, 1, why2, sizeof why2) == -1 || k.res < 0 ||
        !S_ISDIR (k.st.nfs_mode)) {
      snprintf (why, whylen, "%s is mounted, %s is not a directory in it",
                mroot, cut);
      drop (c);
      errno = k.res < 0 ? -k.res : ENOTDIR;
      return -1;
    }
    free (n->mount_root);
    free (n->subdir);
    n->mount_root = mroot;
    mroot = NULL;
    n->subdir = xstrdup (cut);
    return 0;
  }
  errno = e;
  return -1;
}

/* Connect c (lock held); -1 with the error set. */
static int
conn_connect (struct nio *n, struct conn *c)
{
  char why[512], why3[512] = "";
  int v = atomic_load (&n->version), r, e;

  pthread_mutex_lock (&connect_lock);
  if (n->version_given || v)
    r = mount_v (n, c, n->version_given ? 0 : v, why, sizeof why);
  else {
    r = mount_v (n, c, 4, why, sizeof why);
    if (r == 0)
      atomic_store (&n->version, 4);
    else {
      e = errno;
      r = mount_v (n, c, 3, why3, sizeof why3);
      if (r == 0)
        atomic_store (&n->version, 3);
      else
        errno = e;
    }
  }
  if (r == 0)
    n->mount_found = true;
  pthread_mutex_unlock (&connect_lock);
  if (r == -1) {
    if (why3[0])
      error_set (errno, "mount: nfs://%s%s: %s (NFSv3: %s)", n->server, n->root,
                 why, why3);
    else
      error_set (errno, "mount: nfs://%s%s: %s", n->server, n->root, why);
    return -1;
  }
  return 0;
}

/* Make c (locked) ready to send: connected, not closed by the server while
 * idle, not idle for longer than a lease. */
static int
conn_ready (struct nio *n, struct conn *c)
{
  if (c->nfs &&
      (closed_while_idle (c) ||
       (c->nfiles == 0 && atomic_load (&n->version) != 3 &&
        now_monotonic () - c->renewed > atomic_load (&n->idle_reset))))
    drop (c);
  if (!c->nfs)
    return conn_connect (n, c);
  return 0;
}

/* Take a free connection, preferring connected ones; wait if all are
 * busy.  Returns it locked. */
static struct conn *
conn_take (struct nio *n)
{
  size_t start = atomic_fetch_add (&n->next, 1), i;
  int pass;

  for (pass = 0; pass < 2; pass++)
    for (i = 0; i < n->nconns; i++) {
      struct conn *c = &n->conns[(start + i) % n->nconns];
      if (pass == 0 && !atomic_load (&c->up))
        continue;
      if (pthread_mutex_trylock (&c->lock) == 0)
        return c;
    }
  pthread_mutex_lock (&n->conns[start % n->nconns].lock);
  return &n->conns[start % n->nconns];
}

/* ---- paths and errors --------------------------------------------------- */

/* "chunks/ab12/..." -> "/chunks/ab12/..." in the mounted directory
 * (below subdir, 8.); "." -> the directory itself (malloc'd). */
static char *
abs_path (struct nio *n, const char *path)
{
  while (path[0] == '.' && path[1] == '/')
    path += 2;
  if (strcmp (path, ".") == 0 || path[0] == '\0')
    return xstrdup (n->subdir[0] ? n->subdir : "/");
  return xasprintf ("%s/%s", n->subdir, path);
}

/* Set the error of a failed call: errno as the server said (EIO for what
 * libnfs reports as ERANGE: an NFS4 status it has no errno for). */
static void
call_error (struct nio *n, const struct call *k, const char *op,
            const char *path, const char *path2)
{
  int e = -k->res;
  const char *sep = path2 ? " -> " : "";

  if (e <= 0 || e == ERANGE || e == EFAULT || e == EINTR)
    e = EIO;
  if (e == ENOENT || e == EEXIST || !k->msg[0])
    error_set (e, "%s: nfs://%s%s/%s%s%s", op, n->server, n->root, path, sep,
               path2 ? path2 : "");
  else
    error_set (e, "%s: nfs://%s%s/%s%s%s (%s)", op, n->server, n->root, path,
               sep, path2 ? path2 : "", k->msg);
}

static void
lost_error (struct nio *n, int e, const char *why, const char *op,
            const char *path)
{
  error_set (e, "%s: nfs://%s%s/%s: %s", op, n->server, n->root, path, why);
}

/* ---- path operations ---------------------------------------------------- */

enum pop { P_STAT, P_MKDIR, P_RMDIR, P_UNLINK, P_RENAME, P_OPENDIR, P_OPEN,
           P_TIMES, P_TIMES_MODE, P_READDIR4, P_CHMOD };

static const char *const pop_name[] = {
  "stat", "mkdir", "rmdir", "unlink", "rename", "opendir", "open", "touch",
  "touch", "readdir", "chmod"
};

/* PUTROOTFH and a LOOKUP of each component of the URL's directory and
 * path into ops (MAX_DEPTH + 2 of them, zeroed); full (malloc'd by the
 * caller, modified) holds the names.  Returns the count, or 0 if too deep
 * (the call is then done with ENAMETOOLONG). */
static size_t
lookups4 (char *full, nfs_argop4 *ops, struct call *k)
{
  size_t nops = 0;
  char *save = NULL, *p;

  ops[nops++].argop = OP_PUTROOTFH;
  for (p = strtok_r (full, "/", &save); p; p = strtok_r (NULL, "/", &save)) {
    if (strcmp (p, ".") == 0)
      continue;
    if (nops > MAX_DEPTH) {
      k->res = -ENAMETOOLONG;
      k->done = true;
      return 0;
    }
    ops[nops].argop = OP_LOOKUP;
    ops[nops].nfs_argop4_u.oplookup.objname.utf8string_len = strlen (p);
    ops[nops].nfs_argop4_u.oplookup.objname.utf8string_val = p;
    nops++;
  }
  return nops;
}

/* Our SETATTR by path: PUTROOTFH, LOOKUP of each component, SETATTR of
 * the mode (unless mode < 0) and, if times, of atime and mtime to the
 * server's clock. */
static int
start_setattr4 (struct nio *n, struct conn *c, const char *path, int mode,
                bool times, struct call *k)
{
  CLEANUP_FREE char *full = xasprintf ("%s/%s", n->root, path);
  nfs_argop4 ops[MAX_DEPTH + 2];
  COMPOUND4args args;
  uint32_t mask[2];
  /* mode (if any), time_access_set, time_modify_set: SET_TO_SERVER_TIME4 */
  char vals[12] = { 0 };
  size_t nops, nvals = 0;

  memset (ops, 0, sizeof ops);
  nops = lookups4 (full, ops, k);
  if (nops == 0)
    return 0;
  mask[0] = 0;
  mask[1] = 0;
  if (mode >= 0) {
    uint32_t m = htobe32 (mode);
    mask[1] |= 1u << (FATTR4_MODE - 32);
    memcpy (vals, &m, 4);
    nvals = 4;
  }
  if (times) {
    mask[1] |= (1u << (FATTR4_TIME_ACCESS_SET - 32)) |
               (1u << (FATTR4_TIME_MODIFY_SET - 32));
    nvals += 8;
  }
  ops[nops].argop = OP_SETATTR;
  /* anonymous stateid: all zero (memset above) */
  ops[nops].nfs_argop4_u.opsetattr.obj_attributes.attrmask.bitmap4_len = 2;
  ops[nops].nfs_argop4_u.opsetattr.obj_attributes.attrmask.bitmap4_val = mask;
  ops[nops].nfs_argop4_u.opsetattr.obj_attributes.attr_vals.attrlist4_len = nvals;
  ops[nops].nfs_argop4_u.opsetattr.obj_attributes.attr_vals.attrlist4_val = vals;
  nops++;
  memset (&args, 0, sizeof args);
  args.argarray.argarray_len = nops;
  args.argarray.argarray_val = ops;
  /* The arguments are encoded now: stack storage is fine. */
  return rpc_nfs4_compound_async (nfs_get_rpc_context (c->nfs), compound_cb,
                                  &args, k);
}

/* A directory listing in the making (NFSv4, our READDIR). */
struct listing {
  char **v;
  size_t len, cap;
  size_t seen;                      /* entries the server sent */
  uint64_t cookie;
  char verf[NFS4_VERIFIER_SIZE];
  bool eof, empty;                  /* empty: the last reply had no entry */
};

/* Completion of PUTROOTFH, LOOKUP..., READDIR: names into k->ptr. */
static void
readdir_cb (struct rpc_context *rpc, int status, void *data, void *opaque)
{
  struct call *k = opaque;
  struct listing *l = k->ptr;
  COMPOUND4res *res = data;
  READDIR4resok *ok;
  entry4 *e;

  compound_cb (rpc, status, data, opaque);
  if (k->res < 0)
    return;
  if (res->resarray.resarray_len == 0) {
    k->res = -EIO;
    return;
  }
  ok = &res->resarray.resarray_val[res->resarray.resarray_len - 1]
          .nfs_resop4_u.opreaddir.READDIR4res_u.resok4;
  memcpy (l->verf, ok->cookieverf, sizeof l->verf);
  l->empty = true;
  for (e = ok->reply.entries; e; e = e->nextentry) {
    const char *name = e->name.utf8string_val;
    size_t len = e->name.utf8string_len;

    l->cookie = e->cookie;
    l->empty = false;
    /* a server that lists without end (never eof, entries every time)
     * must not keep us nor take all memory: at most IO_LIST_MAX entries */
    if (++l->seen > IO_LIST_MAX) {
      k->res = -EFBIG;
      snprintf (k->msg, sizeof k->msg, "the server's listing does not end "
                "(more than %d entries)", IO_LIST_MAX);
      break;
    }
    if (!io_list_name_ok (name, len))
      continue;
    if (l->len + 1 >= l->cap) {
      l->cap = l->cap ? 2 * l->cap : 64;
      l->v = xrealloc (l->v, l->cap * sizeof *l->v);
    }
    l->v[l->len] = strndup (name, len);
    if (!l->v[l->len]) abort ();
    l->len++;
  }
  l->v[l->len] = NULL;
  l->eof = ok->reply.eof;
}

/* One READDIR of path from l->cookie on (quirk list, 6.). */
static int
start_readdir4 (struct nio *n, struct conn *c, const char *path,
                struct listing *l, struct call *k)
{
  CLEANUP_FREE char *full = xasprintf ("%s/%s", n->root, path);
  nfs_argop4 ops[MAX_DEPTH + 2];
  COMPOUND4args args;
  READDIR4args *rd;
  size_t nops;

  memset (ops, 0, sizeof ops);
  nops = lookups4 (full, ops, k);
  if (nops == 0)
    return 0;
  ops[nops].argop = OP_READDIR;
  rd = &ops[nops].nfs_argop4_u.opreaddir;
  rd->cookie = l->cookie;
  memcpy (rd->cookieverf, l->verf, sizeof rd->cookieverf);
  rd->dircount = 64 * 1024;
  rd->maxcount = 256 * 1024;        /* below libnfs's 1 MiB reply limit */
  rd->attr_request.bitmap4_len = 0; /* names only */
  nops++;
  memset (&args, 0, sizeof args);
  args.argarray.argarray_len = nops;
  args.argarray.argarray_val = ops;
  k->ptr = l;
  return rpc_nfs4_compound_async (nfs_get_rpc_context (c->nfs), readdir_cb,
                                  &args, k);
}

static int
start_path (struct nio *n, struct conn *c, enum pop op, const char *path,
            const char *p, const char *p2, int flags, void *arg, struct call *k)
{
  switch (op) {
  case P_READDIR4: return start_readdir4 (n, c, path, arg, k);
  case P_STAT:
    k->kind = K_STAT;
    return nfs_stat64_async (c->nfs, p, call_cb, k);
  case P_MKDIR:
    return nfs_mkdir2_async (c->nfs, p, PRIVATE_DIR_MODE, call_cb, k);
  case P_CHMOD:
    if (atomic_load (&n->version) == 4)
      return start_setattr4 (n, c, path, flags, false, k);
    return nfs_chmod_async (c->nfs, p, flags, call_cb, k);
  case P_RMDIR: return nfs_rmdir_async (c->nfs, p, call_cb, k);
  case P_UNLINK: return nfs_unlink_async (c->nfs, p, call_cb, k);
  case P_RENAME: return nfs_rename_async (c->nfs, p, p2, call_cb, k);
  case P_OPENDIR:
    k->kind = K_PTR;
    return nfs_opendir_async (c->nfs, p, call_cb, k);
  case P_OPEN:
    k->kind = K_PTR;
    return nfs_open2_async (c->nfs, p, flags, PRIVATE_FILE_MODE, call_cb, k);
  case P_TIMES:
  case P_TIMES_MODE:
    if (atomic_load (&n->version) == 4)
      return start_setattr4 (n, c, path,
                             op == P_TIMES_MODE ? PRIVATE_FILE_MODE : -1, true,
                             k);
    /* NFSv3: libnfs sends SETATTR with SET_TO_SERVER_TIME itself */
    return nfs_utimes_async (c->nfs, p, NULL, call_cb, k);
  }
  abort ();
}

/* May op be sent again after the connection broke under it? */
static bool
idempotent (enum pop op, int flags)
{
  return op == P_STAT || op == P_OPENDIR || op == P_TIMES || op == P_TIMES_MODE ||
         op == P_READDIR4 || op == P_CHMOD ||
         (op == P_OPEN && !(flags & (O_CREAT | O_TRUNC)));
}

/* Run op on path with a connection of the pool (*cp, when given, is
 * an already-taken connection to use).  On success returns 0 with the
 * result in *k and the connection still locked in *cp (the caller calls
 * conn_put); if cp is NULL it is released.  On failure returns -1 with
 * the error set and nothing locked. */
static int
path_op (struct nio *n, enum pop op, const char *path, const char *path2,
         int flags, void *arg, struct call *k, struct conn **cp)
{
  CLEANUP_FREE char *p = NULL, *p2 = NULL;
  struct sigpipe_guard g;
  struct conn *c = cp && *cp ? *cp : NULL;
  bool given = c != NULL;
  double deadline = now_monotonic () + n->timeout;
  int attempt = 0, kind;
  char why[512];

  sigpipe_block (&g);
  for (;;) {
    if (!c)
      c = conn_take (n);
    if (conn_ready (n, c) == -1) {
      error_prefix ("%s: nfs://%s%s/%s", pop_name[op], n->server, n->root, path);
      goto err;
    }
    if (!p) {
      p = abs_path (n, path);
      p2 = path2 ? abs_path (n, path2) : NULL;
    }
    call_init (k, K_NONE);
    if (start_path (n, c, op, path, p, p2, flags, arg, k) < 0) {
      lost_error (n, EIO, nfs_get_error (c->nfs), pop_name[op], path);
      drop (c);
      goto err;
    }
    if (run (n, c, k, 1, why, sizeof why) == -1) {
      int e = errno;
      if (e == EIO && idempotent (op, flags) && attempt++ == 0)
        continue;                   /* 3.: once more, on a new connection */
      lost_error (n, e, why, pop_name[op], path);
      goto err;
    }
    if (k->res >= 0) {
      if (op == P_OPEN)
        c->renewed = now_monotonic ();
      break;
    }
    kind = classify (k);
    if (kind == E_STATE && attempt++ == 0) {
      drop (c);                     /* the server forgot us: start over */
      continue;
    }
    if (kind == E_WAIT && now_monotonic () < deadline) {
      usleep (200000);              /* grace period after a server restart */
      continue;
    }
    call_error (n, k, pop_name[op], path, path2);
    /* 6.: a refused NFSv4 OPEN spoils the context's open-owner seqid */
    if (op == P_OPEN && k->res != -ENOENT && atomic_load (&n->version) == 4) {
      ERROR_SAVE (saved);
      drop (c);
      ERROR_RESTORE (saved);
    }
    goto err;
  }
  sigpipe_unblock (&g);
  if (cp)
    *cp = c;
  else
    pthread_mutex_unlock (&c->lock);
  return 0;
 err:
  sigpipe_unblock (&g);
  if (c && !given)
    pthread_mutex_unlock (&c->lock);
  if (cp && !given)
    *cp = NULL;
  return -1;
}

static void
conn_put (struct conn *c)
{
  pthread_mutex_unlock (&c->lock);
}

static void
fill_stat (const struct nfs_stat_64 *s, struct repo_stat *st)
{
  st->size = s->nfs_size;
  st->mtime = s->nfs_mtime + s->nfs_mtime_nsec / 1e9;
  st->is_dir = S_ISDIR (s->nfs_mode);
  st->mode = s->nfs_mode & 07777;
}

static int
n_stat (struct repo_io *io, const char *path, struct repo_stat *st)
{
  struct call k;

  if (path_op (PRIV (io), P_STAT, path, NULL, 0, NULL, &k, NULL) == -1)
    return -1;
  fill_stat (&k.st, st);
  return 0;
}

static int
simple (struct repo_io *io, enum pop op, const char *path, const char *path2)
{
  struct call k;

  return path_op (PRIV (io), op, path, path2, 0, NULL, &k, NULL);
}

static int
n_mkdir (struct repo_io *io, const char *path)
{
  return simple (io, P_MKDIR, path, NULL);
}

/* The server resolves nothing outside the export: a symbolic link there
 * can lead only to the share's own files. */
static int
n_tighten (struct repo_io *io, const char *path, struct repo_stat *st)
{
  struct call k;

  if (n_stat (io, path, st) == -1)
    return -1;
  if ((st->mode & 077) == 0)
    return 0;
  /* the mode travels in flags */
  if (path_op (PRIV (io), P_CHMOD, path, NULL, st->mode & 0700, NULL, &k,
               NULL) == -1)
    return -1;
  return 1;
}

static int
n_rmdir (struct repo_io *io, const char *path)
{
  return simple (io, P_RMDIR, path, NULL);
}

static int
n_unlink (struct repo_io *io, const char *path)
{
  return simple (io, P_UNLINK, path, NULL);
}

static int
n_rename (struct repo_io *io, const char *from, const char *to)
{
  return simple (io, P_RENAME, from, to);
}

static int
n_touch (struct repo_io *io, const char *path)
{
  return simple (io, P_TIMES, path, NULL);
}

/* NFSv4 listing with our READDIR, a few hundred names per round trip
 * (libnfs 4.0's opendir costs about 0.4 ms per entry). */
static char **
list4 (struct nio *n, const char *path)
{
  struct listing l = { .v = NULL };
  struct call k;
  size_t i;

  l.cap = 64;
  l.v = xmalloc (l.cap * sizeof *l.v);
  l.v[0] = NULL;
  do {
    if (path_op (n, P_READDIR4, path, NULL, 0, &l, &k, NULL) == -1)
      goto err;
    if (!l.eof && l.empty) {
      error_set (EIO, "readdir: nfs://%s%s/%s: the server returned no entry "
                 "and no end of directory", n->server, n->root, path);
      goto err;
    }
  } while (!l.eof);
  return l.v;
 err:
  for (i = 0; i < l.len; i++)
    free (l.v[i]);
  free (l.v);
  return NULL;
}

static char **
n_list (struct repo_io *io, const char *path)
{
  struct nio *n = PRIV (io);
  struct conn *c = NULL;
  struct nfsdirent *e;
  struct nfsdir *d;
  struct call k;
  char **v;
  size_t len = 0, cap = 16;

  if (atomic_load (&n->version) == 4)
    return list4 (n, path);
  if (path_op (n, P_OPENDIR, path, NULL, 0, NULL, &k, &c) == -1)
    return NULL;
  d = k.ptr;
  v = xmalloc (cap * sizeof *v);
  while ((e = nfs_readdir (c->nfs, d)) != NULL) {
    if (!io_list_name_ok (e->name, strlen (e->name)))
      continue;
    if (len + 1 >= cap) {
      cap *= 2;
      v = xrealloc (v, cap * sizeof *v);
    }
    v[len++] = xstrdup (e->name);
  }
  v[len] = NULL;
  nfs_closedir (c->nfs, d);
  conn_put (c);
  return v;
}

static int
n_sync_dir (struct repo_io *io, const char *path)
{
  return 0;                         /* 4. */
}

static int
n_sync_all (struct repo_io *io)
{
  return 0;                         /* 4. */
}

/* ---- files -------------------------------------------------------------- */

/* Lock f's connection; -1 with the error set (and unlocked) if the
 * connection f was opened on is gone. */
static int
file_lock (struct nio *n, struct nfile *f, const char *op)
{
  pthread_mutex_lock (&f->c->lock);
  if (f->gen != f->c->gen) {
    pthread_mutex_unlock (&f->c->lock);
    lost_error (n, EIO, "the connection to the server was lost while the file "
                "was open", op, f->path);
    return -1;
  }
  return 0;
}

/* Reads (write == false) or writes of len bytes at off, in pieces sent
 * at once (2.).  Returns the bytes of the leading run of complete pieces
 * plus the first short one, or -1 if the first piece failed. */
static ssize_t
rw (struct repo_io *io, struct nfile *f, void *buf, size_t len, uint64_t off,
    bool write)
{
  struct nio *n = PRIV (io);
  struct conn *c = f->c;
  CLEANUP_FREE struct call *ks = NULL;
  struct sigpipe_guard g;
  const char *op = write ? "write" : "read";
  size_t piece, np, started, i;
  ssize_t total = -1;
  char why[512];
  int r = 0;

  if (len == 0)
    return 0;
  len = MIN (len, (size_t) MAX_IO);
  if (file_lock (n, f, op) == -1)
    return -1;
  sigpipe_block (&g);
 again:
  piece = write && atomic_load (&n->version) == 4 ? atomic_load (&n->v4_wpiece)
                                                   : PIECE;
  np = DIV_ROUND_UP (len, piece);
  free (ks);
  ks = xmalloc (np * sizeof *ks);
  for (started = 0; started < np; started++) {
    struct call *k = &ks[started];
    size_t at = started * piece, m = MIN (piece, len - at);
    call_init (k, write ? K_NONE : K_READ);
    k->buf = (char *) buf + at;
    k->len = m;
    if (write)
      r = nfs_pwrite_async (c->nfs, f->fh, off + at, m, k->buf, call_cb, k);
    else
      r = nfs_pread_async (c->nfs, f->fh, off + at, m, call_cb, k);
    if (r < 0)
      break;
  }
  if (started == 0) {
    /* 6.: libnfs 4.0 cannot encode an NFSv4 WRITE of more than about
     * 3.9 KiB (the size depends on the file handle and credentials) */
    if (write && piece > 512 && strstr (nfs_get_error (c->nfs), "encode")) {
      size_t smaller = piece - 256;
      atomic_compare_exchange_strong (&n->v4_wpiece, &piece, smaller);
      goto again;
    }
    lost_error (n, EIO, nfs_get_error (c->nfs), op, f->path);
    drop (c);
    goto out;
  }
  if (run (n, c, ks, started, why, sizeof why) == -1) {
    lost_error (n, errno, why, op, f->path);
    goto out;
  }
  total = 0;
  for (i = 0; i < started; i++) {
    if (ks[i].res < 0) {
      if (i == 0) {
        call_error (n, &ks[i], op, f->path, NULL);
        if (classify (&ks[i]) == E_STATE) {
          ERROR_SAVE (saved);
          drop (c);
          ERROR_RESTORE (saved);
        }
        total = -1;
      }
      break;
    }
    total += ks[i].res;
    if ((size_t) ks[i].res < ks[i].len)
      break;
  }
  if (total > 0)
    c->renewed = now_monotonic ();
  if (write && total > 0)
    f->dirty = true;
 out:
  sigpipe_unblock (&g);
  pthread_mutex_unlock (&c->lock);
  return total;
}

static ssize_t
n_pread (struct repo_io *io, struct repo_file *rf, void *buf, size_t len,
         uint64_t off)
{
  return rw (io, NFILE (rf), buf, len, off, false);
}

static ssize_t
n_pwrite (struct repo_io *io, struct repo_file *rf, const void *buf,
          size_t len, uint64_t off)
{
  return rw (io, NFILE (rf), (void *) buf, len, off, true);
}

/* One call on an open file (fsync, fstat, close).  Lock held. */
static int
file_call (struct nio *n, struct nfile *f, int which, struct call *k,
           const char *op)
{
  struct conn *c = f->c;
  struct sigpipe_guard g;
  char why[512];
  int r;

  call_init (k, which == 1 ? K_STAT : K_NONE);
  sigpipe_block (&g);
  if (which == 0)
    r = nfs_fsync_async (c->nfs, f->fh, call_cb, k);
  else if (which == 1)
    r = nfs_fstat64_async (c->nfs, f->fh, call_cb, k);
  else
    r = nfs_close_async (c->nfs, f->fh, call_cb, k);
  if (r < 0) {
    lost_error (n, EIO, nfs_get_error (c->nfs), op, f->path);
    drop (c);
    r = -1;
  }
  else if (run (n, c, k, 1, why, sizeof why) == -1) {
    lost_error (n, errno, why, op, f->path);
    r = -1;
  }
  else if (k->res < 0) {
    call_error (n, k, op, f->path, NULL);
    r = -1;
  }
  else
    r = 0;
  sigpipe_unblock (&g);
  return r;
}

static struct repo_file *
n_open (struct repo_io *io, const char *path, int flags)
{
  struct nio *n = PRIV (io);
  struct conn *c = NULL;
  struct nfile *f;
  struct call k;
  bool creat = flags & O_CREAT, excl = flags & O_EXCL;

  flags &= O_RDONLY | O_WRONLY | O_RDWR | O_CREAT | O_EXCL | O_TRUNC;
  /* 6.: look before creating, unless the name is ours alone */
  if (creat && !(excl && io_is_temp_name (path))) {
    if (path_op (n, P_STAT, path, NULL, 0, NULL, &k, NULL) == 0) {
      if (excl) {
        error_set (EEXIST, "open: nfs://%s%s/%s", n->server, n->root, path);
        return NULL;
      }
      flags &= ~O_CREAT;
      creat = false;
    }
    else if (errno != ENOENT)
      return NULL;
  }
  if (path_op (n, P_OPEN, path, NULL, flags | (creat ? O_EXCL : 0), NULL, &k,
               &c) == -1) {
    if (!(creat && !excl && errno == EEXIST))
      return NULL;
    /* created by someone else just now: open theirs */
    creat = false;
    if (path_op (n, P_OPEN, path, NULL, flags & ~O_CREAT, NULL, &k, &c) == -1)
      return NULL;
  }
  f = xcalloc (1, sizeof *f + strlen (path) + 1);
  f->c = c;
  f->gen = c->gen;
  f->fh = k.ptr;
  f->writable = (flags & O_ACCMODE) != O_RDONLY;
  strcpy (f->path, path);
  file_link (c, f);
  if (creat) {
    /* 5.: the server's times and mode 0600, not EXCLUSIVE4's verifier */
    struct call t;
    int r = path_op (n, P_TIMES_MODE, path, NULL, 0, NULL, &t, &c);

    if (r == 0 && c->gen != f->gen) {
      lost_error (n, EIO, "the connection to the server was lost while the "
                  "file was created", "open", path);
      r = -1;
    }
    if (r == -1) {
      ERROR_SAVE (saved);
      if (c->gen == f->gen) {
        file_unlink (c, f);
        file_call (n, f, 2, &t, "close");
      }
      conn_put (c);
      free (f);
      simple (io, P_UNLINK, path, NULL);
      ERROR_RESTORE (saved);
      return NULL;
    }
  }
  conn_put (c);
  return (struct repo_file *) f;
}

static int
n_fsync (struct repo_io *io, struct repo_file *rf)
{
  struct nio *n = PRIV (io);
  struct nfile *f = NFILE (rf);
  struct call k;
  int r;

  if (file_lock (n, f, "fsync") == -1)
    return -1;
  r = file_call (n, f, 0, &k, "fsync");
  if (r == 0)
    f->dirty = false;
  pthread_mutex_unlock (&f->c->lock);
  return r;
}

static int
n_fstat (struct repo_io *io, struct repo_file *rf, struct repo_stat *st)
{
  struct nio *n = PRIV (io);
  struct nfile *f = NFILE (rf);
  struct call k;
  int r;

  if (file_lock (n, f, "fstat") == -1)
    return -1;
  r = file_call (n, f, 1, &k, "fstat");
  pthread_mutex_unlock (&f->c->lock);
  if (r == 0)
    fill_stat (&k.st, st);
  return r;
}

/* Commit what was written (4.), then close.  The struct is freed in every
 * case; -1 if written data may not be on stable storage (or the close of
 * a written file failed). */
static int
n_close (struct repo_io *io, struct repo_file *rf)
{
  struct nio *n = PRIV (io);
  struct nfile *f = NFILE (rf);
  struct conn *c = f->c;
  struct call k;
  int r = 0;

  pthread_mutex_lock (&c->lock);
  if (f->gen != c->gen) {
    pthread_mutex_unlock (&c->lock);
    if (f->dirty) {
      lost_error (n, EIO, "the connection to the server was lost before the "
                  "data written was committed", "close", f->path);
      r = -1;
    }
    free (f);                       /* 7.: drop freed f->fh */
    return r;
  }
  if (f->dirty && file_call (n, f, 0, &k, "fsync") == -1)
    r = -1;
  if (f->gen == c->gen) {
    ERROR_SAVE (saved);
    file_unlink (c, f);             /* 7.: the close owns the handle */
    if (file_call (n, f, 2, &k, "close") == -1 && f->writable && r == 0)
      r = -1;
    else if (r == -1)
      ERROR_RESTORE (saved);
  }
  pthread_mutex_unlock (&c->lock);
  free (f);
  return r;
}

/* ---- the table ------------------------------------------------------------ */

static void
n_free (struct repo_io *io)
{
  struct nio *n = PRIV (io);
  size_t i;

  for (i = 0; i < n->nconns; i++) {
    pthread_mutex_lock (&n->conns[i].lock);
    drop (&n->conns[i]);
    pthread_mutex_unlock (&n->conns[i].lock);
    pthread_mutex_destroy (&n->conns[i].lock);
  }
  free (n->url);
  free (n->server);
  free (n->root);
  free (n->mount_root);
  free (n->subdir);
  free (n);
  free (io->location);
  free (io);
}

static const struct repo_io_ops nfs_ops = {
  .name = "nfs",
  .open = n_open, .pread = n_pread, .pwrite = n_pwrite, .fsync = n_fsync,
  .fstat = n_fstat, .close = n_close, .stat = n_stat, .mkdir = n_mkdir,
  .rmdir = n_rmdir, .unlink = n_unlink, .rename = n_rename, .touch = n_touch,
  .tighten = n_tighten,
  .list = n_list, .sync_dir = n_sync_dir, .sync_all = n_sync_all,
  .free = n_free,
};

#define DEFAULT_TIMEOUT 30
#define DEFAULT_CONNS 4

/* A setting's text as a number from min to max; def if the text is
 * missing, empty, not a number or out of range. */
static double
setting_number (const char *s, double def, double min, double max)
{
  char *end;
  double v;

  if (!s || !*s)
    return def;
  v = strtod (s, &end);
  if (*end || v < min || v > max)
    return def;
  return v;
}

void
repo_open_opts_nfs (struct repo_open_opts *o, const char *timeout,
                    const char *connections)
{
  o->nfs_timeout = setting_number (timeout, DEFAULT_TIMEOUT, 1, 3600);
  o->nfs_connections = (unsigned) setting_number (connections, DEFAULT_CONNS,
                                                  1, MAX_CONNS);
}

struct repo_io *
io_nfs_new (const char *url, const struct repo_open_opts *o)
{
  struct nfs_context *nfs;
  struct nfs_url *u;
  struct repo_io *io;
  struct nio *n;
  const char *q;
  size_t i;

  nfs = nfs_init_context ();
  if (!nfs) {
    error_set (ENOMEM, "%s: cannot make an NFS context", url);
    return NULL;
  }
  pthread_mutex_lock (&connect_lock);
  u = nfs_parse_url_dir (nfs, url);
  pthread_mutex_unlock (&connect_lock);
  if (!u || !u->server || !u->path) {
    error_set (EINVAL, "%s: not an NFS URL that libnfs understands (%s); the "
               "form is nfs://SERVER/EXPORT/PATH[?version=4&nfsport=N...]",
               url, nfs_get_error (nfs));
    if (u)
      nfs_destroy_url (u);
    nfs_destroy_context (nfs);
    return NULL;
  }
  n = xcalloc (1, sizeof *n);
  n->url = xstrdup (url);
  n->server = xstrdup (u->server);
  n->root = xstrdup (u->path);
  /* "/export/repo/" and "/export/repo" are the same directory */
  for (i = strlen (n->root); i > 1 && n->root[i - 1] == '/'; i--)
    n->root[i - 1] = '\0';
  if (strcmp (n->root, "/") == 0)
    n->root[0] = '\0';
  n->mount_root = xstrdup (n->root);
  n->subdir = xstrdup ("");
  nfs_destroy_url (u);
  nfs_destroy_context (nfs);
  q = strchr (url, '?');
  n->version_given = q && strstr (q, "version=");
  if (n->version_given) {
    const char *v = strstr (q, "version=") + 8;
    n->version = atoi (v) == 4 ? 4 : 3;
  }
  {
    static _Atomic unsigned count;
    n->id = atomic_fetch_add (&count, 1);
  }
  n->v4_wpiece = V4_WPIECE;
  n->idle_reset = IDLE_RESET;
  n->timeout = o && o->nfs_timeout > 0 ? o->nfs_timeout : DEFAULT_TIMEOUT;
  n->nconns = o && o->nfs_connections > 0 ?
    MIN (o->nfs_connections, MAX_CONNS) : DEFAULT_CONNS;
  for (i = 0; i < n->nconns; i++) {
    pthread_mutex_init (&n->conns[i].lock, NULL);
    n->conns[i].slot = i;
  }
  io = xcalloc (1, sizeof *io);
  io->ops = &nfs_ops;
  io->priv = n;
  io->location = xasprintf ("nfs://%s%s", n->server, n->root);
  /* Mount now, so that a wrong server or path is said at once. */
  {
    struct sigpipe_guard g;
    int r;

    sigpipe_block (&g);
    pthread_mutex_lock (&n->conns[0].lock);
    r = conn_connect (n, &n->conns[0]);
    pthread_mutex_unlock (&n->conns[0].lock);
    sigpipe_unblock (&g);
    if (r == -1) {
      ERROR_SAVE (saved);
      n_free (io);
      ERROR_RESTORE (saved);
      return NULL;
    }
  }
  return io;
}

int
io_nfs_mkdir_root (const char *url, const struct repo_open_opts *o)
{
  const char *q = strchr (url, '?');
  CLEANUP_FREE char *base = strndup (url, q ? (size_t) (q - url) : strlen (url));
  CLEANUP_FREE char *purl = NULL, *name = NULL;
  struct repo_io *io;
  char *host_end, *slash;
  size_t len;
  int r;

  if (!base) abort ();
  for (len = strlen (base); len > 6 && base[len - 1] == '/'; len--)
    base[len - 1] = '\0';
  io = io_nfs_new (url, o);
  if (io) {
    io->ops->free (io);             /* there already */
    return 0;
  }
  if (errno != ENOENT)
    return -1;
  host_end = strchr (base + 6, '/');
  slash = strrchr (base + 6, '/');
  if (!host_end || slash == host_end)
    return -1;                      /* the export itself is missing */
  name = xstrdup (slash + 1);
  *slash = '\0';
  purl = xasprintf ("%s%s", base, q ? q : "");
  io = io_nfs_new (purl, o);
  if (!io && errno == ENOENT) {
    /* make the parent first */
    if (io_nfs_mkdir_root (purl, o) == -1)
      return -1;
    io = io_nfs_new (purl, o);
  }
  if (!io)
    return -1;
  r = io->ops->mkdir (io, name);
  if (r == -1 && errno == EEXIST)
    r = 0;
  io->ops->free (io);
  return r;
}
