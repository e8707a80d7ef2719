/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pool: one backend nbdkit shared by the sessions that `bootback
 * instant VM1 VM2 ...` starts (mass instant recovery).  N VMs booting at
 * once from one repository then share one chunk cache and one plugin's
 * memory (its cache plus a fixed overhead, whatever N) instead of N
 * backends each with a cache of its own, and a chunk two VMs read (their
 * common OS files) is fetched and checked once.
 *
 * HOME/pools/KEY/ (0700; KEY: 16 hex digits, a hash of the repository's
 * location, checked against conf):
 *   conf            "repo=LOCATION\ncache=BYTES\n", written by
 *                   instant_pool_ensure, read by the daemon
 *   backend.sock    the plugin serving every restore point of the
 *                   repository by export name (VM@TIME/DISK; no point=)
 *   lock            flock: one instant_pool_ensure at a time
 *   pending         touched by instant_pool_ensure: sessions are about to
 *                   use the pool (it does not end within POOL_GRACE of it)
 *   supervisor.pid, supervisor.log, pool.backend.pid, nbdkit-pool-backend.log
 *
 * The daemon is `bootback supervise pool:KEY` (daemon_spawn, procs.c).
 * It keeps the backend serving: when it dies it is restarted on the same
 * socket, and the sessions' fronts (nbdkit's retry filter) repeat the
 * failed reads, so the guests see a delay, not an error.  It ends when no
 * session uses it: every POOL_CHECK seconds it looks for a session whose
 * directory names KEY (HOME/sessions/ID/pool) and whose supervisor is
 * alive; after two looks that find none (and never within POOL_GRACE of
 * pending) it stops the backend and exits.
 *
 * A session started with a pool (instant_opts.pool) has the pool's socket
 * as every disk's backend_socket: its supervisor starts only the fronts
 * (supervise.c), each with its disk's export name.  Pooled sessions record
 * no boot trace and load none (the plugin's trace= is per server).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "recovery/instant/instant-int.h"

#define POOL_CHECK 5            /* seconds between looks for users */
#define POOL_GRACE 120          /* seconds after pending it stays up */
#define POOL_KEY_LEN 16

bool
session_pooled (const struct instant_session *s)
{
  size_t n = strlen (s->dir);

  return s->ndisks > 0 && n > 0 &&
    (strncmp (s->disks[0].backend_socket, s->dir, n) != 0 ||
     s->disks[0].backend_socket[n] != '/');
}

/* The pool's key of a repository location (FNV-1a 64: a directory name,
 * not a secret; conf says which repository it is). */
static void
pool_key (const char *repo, char key[POOL_KEY_LEN + 1])
{
  uint64_t h = 0xcbf29ce484222325ULL;

  for (; *repo; repo++)
    h = (h ^ (unsigned char) *repo) * 0x100000001b3ULL;
  snprintf (key, POOL_KEY_LEN + 1, "%016" PRIx64, h);
}

static bool
key_valid (const char *key)
{
  size_t i;

  for (i = 0; key[i]; i++)
    if (!strchr ("0123456789abcdef", key[i]))
      return false;
  return i == POOL_KEY_LEN;
}

static char *
pool_dir (const char *home, const char *key)
{
  return xasprintf ("%s/pools/%s", home, key);
}

static char *
pool_tag (const char *key)
{
  return xasprintf ("supervise pool:%s ", key);
}

/* conf's repository and cache size.  -1 with error. */
static int
conf_read (const char *dir, char *repo, size_t len, int64_t *cache)
{
  CLEANUP_FREE char *path = xasprintf ("%s/conf", dir);
  FILE *f = fopen (path, "re");
  char line[4200];

  repo[0] = '\0';
  *cache = 0;
  if (!f) {
    error_set (errno, "%s", path);
    return -1;
  }
  while (fgets (line, sizeof line, f)) {
    line[strcspn (line, "\n")] = '\0';
    if (strncmp (line, "repo=", 5) == 0)
      snprintf (repo, len, "%s", line + 5);
    else if (strncmp (line, "cache=", 6) == 0)
      *cache = strtoll (line + 6, NULL, 10);
  }
  fclose (f);
  if (!repo[0] || *cache <= 0) {
    error_setx ("%s: no repository or cache size", path);
    return -1;
  }
  return 0;
}

/* Whether the pool's daemon runs and its backend serves. */
static bool
pool_alive (const char *dir, const char *key)
{
  CLEANUP_FREE char *pidpath = xasprintf ("%s/supervisor.pid", dir);
  CLEANUP_FREE char *sock = xasprintf ("%s/backend.sock", dir);
  CLEANUP_FREE char *tag = pool_tag (key);

  return pid_matches (pid_file_read (pidpath, NULL), 0, tag) &&
    unix_socket_serves (sock);
}

/* A pool of repo serving (started if it is not): its key and socket.  The
 * caller starts its sessions within POOL_GRACE.  -1 with error. */
static int
pool_ensure_locked (const char *home, const char *dir, const char *key,
                    const char *repo, int64_t cache)
{
  CLEANUP_FREE char *conf = xasprintf ("%s/conf", dir);
  CLEANUP_FREE char *pending = xasprintf ("%s/pending", dir);
  CLEANUP_FREE char *log = xasprintf ("%s/supervisor.log", dir);
  CLEANUP_FREE char *text = xasprintf ("repo=%s\ncache=%" PRId64 "\n", repo, cache);
  CLEANUP_FREE char *arg = xasprintf ("pool:%s", key);
  char was[4200];
  int64_t was_cache;

  if (write_whole_file (pending, "", 0, 0600) == -1)
    return -1;
  if (pool_alive (dir, key)) {
    if (conf_read (dir, was, sizeof was, &was_cache) == -1)
      return -1;
    if (strcmp (was, repo) != 0) {
      error_setx ("pool %s serves %s, not %s", dir, was, repo);
      return -1;
    }
    return 0;
  }
  if (write_whole_file (conf, text, strlen (text), 0600) == -1)
    return -1;
  return daemon_spawn (home, arg, log) == -1 ? -1 : 0;
}

int
instant_pool_ensure (const char *home, const char *repo, int64_t cache,
                     struct instant_pool *out)
{
  CLEANUP_FREE char *pools = xasprintf ("%s/pools", home);
  CLEANUP_FREE char *dir = NULL, *lock = NULL;
  int fd, r;

  pool_key (repo, out->key);
  dir = pool_dir (home, out->key);
  lock = xasprintf ("%s/lock", dir);
  if (path_set (out->socket, sizeof out->socket, "%s/backend.sock", dir) == -1)
    return -1;
  if (mkdir_p_private (pools) == -1 || mkdir_p_private (dir) == -1)
    return -1;
  fd = open_private (lock, O_RDWR | O_CREAT | O_CLOEXEC);
  if (fd == -1)
    return -1;
  if (flock (fd, LOCK_EX) == -1) {
    error_set (errno, "flock %s", lock);
    close (fd);
    return -1;
  }
  r = pool_ensure_locked (home, dir, out->key, repo, cache);
  close (fd);
  if (r == -1)
    error_prefix ("pool for %s", repo);
  return r;
}

int
pool_revive (const char *home, const struct instant_session *s)
{
  CLEANUP_FREE char *dir = xstrdup (s->disks[0].backend_socket);
  char *slash = strrchr (dir, '/'), *key, repo[4200];
  CLEANUP_FREE char *want = NULL, *lock = NULL;
  int64_t cache;
  int fd, r;

  if (slash)
    *slash = '\0';
  key = strrchr (dir, '/') ? strrchr (dir, '/') + 1 : dir;
  want = pool_dir (home, key);
  if (!slash || !key_valid (key) || strcmp (want, dir) != 0) {
    error_setx ("session %" PRId64 " reads %s, which is no pool of %s", s->id,
                s->disks[0].backend_socket, home);
    return -1;
  }
  if (pool_alive (dir, key))
    return 0;
  if (conf_read (dir, repo, sizeof repo, &cache) == -1)
    return -1;
  lock = xasprintf ("%s/lock", dir);
  fd = open_private (lock, O_RDWR | O_CREAT | O_CLOEXEC);
  if (fd == -1)
    return -1;
  r = flock (fd, LOCK_EX) == -1 ? -1 : pool_ensure_locked (home, dir, key, repo, cache);
  close (fd);
  return r;
}

int
session_pool_mark (const struct instant_session *s, const char *key)
{
  CLEANUP_FREE char *path = xasprintf ("%s/pool", s->dir);

  return write_whole_file (path, key, strlen (key), 0600);
}

/* ---- the daemon ------------------------------------------------------------ */

/* Whether session directory NAME (of HOME/sessions) uses pool key: its
 * pool file names it and its supervisor is alive. */
static bool
session_uses (const char *sessions, const char *name, const char *key)
{
  CLEANUP_FREE char *pf = xasprintf ("%s/%s/pool", sessions, name);
  CLEANUP_FREE char *sp = xasprintf ("%s/%s/supervisor.pid", sessions, name);
  CLEANUP_FREE char *tag = xasprintf ("supervise %s ", name);
  char buf[POOL_KEY_LEN + 2] = "";
  FILE *f;

  if (strspn (name, "0123456789") != strlen (name))
    return false;
  f = fopen (pf, "re");
  if (!f)
    return false;
  if (!fgets (buf, sizeof buf, f))
    buf[0] = '\0';
  fclose (f);
  return strcmp (buf, key) == 0 && pid_matches (pid_file_read (sp, NULL), 0, tag);
}

static bool
pool_in_use (const char *home, const char *key)
{
  CLEANUP_FREE char *sessions = xasprintf ("%s/sessions", home);
  DIR *d = opendir (sessions);
  struct dirent *e;
  bool used = false;

  if (!d)
    return false;
  while (!used && (e = readdir (d)) != NULL)
    used = session_uses (sessions, e->d_name, key);
  closedir (d);
  return used;
}

/* POOL_GRACE; a test may shorten it (BOOTBACK_TEST_POOL_GRACE). */
static double
pool_grace (void)
{
  const char *e = test_hook_env ("BOOTBACK_TEST_POOL_GRACE");

  return e && atoi (e) >= 0 ? atoi (e) : POOL_GRACE;
}

/* Seconds since the pool's pending file was touched (large if none). */
static double
since_pending (const char *dir)
{
  CLEANUP_FREE char *pending = xasprintf ("%s/pending", dir);
  struct stat st;

  if (stat (pending, &st) == -1)
    return 1e9;
  return difftime (time (NULL), st.st_mtime);
}

struct pool_daemon {
  const char *home, *key;
  char *dir;
  struct proc backend;
  int sfd;
  unsigned idle;                /* looks in a row that found no user */
};

/* The backend's command: the plugin without point=, export names choose. */
static int
pool_setup (struct pool_daemon *pd)
{
  const char *nbdkit = test_hook_env ("BOOTBACK_NBDKIT");
  CLEANUP_FREE char *sock = xasprintf ("%s/backend.sock", pd->dir);
  char repo[4200], plugin[4096];
  int64_t cache;
  size_t n = 0;

  if (conf_read (pd->dir, repo, sizeof repo, &cache) == -1)
    return -1;
  bootback_plugin_path (plugin, sizeof plugin);
  proc_init (&pd->backend, "backend", "the pool", "pool", sock, pd->dir);
  strv_pushl (&pd->backend.argv, &n, nbdkit ? nbdkit : "nbdkit", "-r", "-f", "-U",
              sock, "--log=stderr", plugin, NULL);
  strv_push (&pd->backend.argv, &n, xasprintf ("repo=%s", repo));
  strv_push (&pd->backend.argv, &n, xasprintf ("cache=%" PRId64, cache));
  proc_log ("pool %s: %s, cache %" PRId64 " bytes, plugin %s", pd->key, repo, cache,
            plugin);
  return 0;
}

/* Whether the pool is to end now: no user in two looks, pending old.
 * Decided under the lock instant_pool_ensure takes (*lockfd: held until
 * the daemon has exited), so a pool it found alive does not end under the
 * sessions it is starting. */
static bool
pool_done (struct pool_daemon *pd, int *lockfd)
{
  CLEANUP_FREE char *lock = xasprintf ("%s/lock", pd->dir);
  int fd;

  pd->idle = pool_in_use (pd->home, pd->key) ? 0 : pd->idle + 1;
  if (pd->idle < 2 || since_pending (pd->dir) <= pool_grace ())
    return false;
  fd = open_private (lock, O_RDWR | O_CREAT | O_CLOEXEC);
  if (fd == -1 || flock (fd, LOCK_EX) == -1) {
    if (fd >= 0)
      close (fd);
    return false;
  }
  if (since_pending (pd->dir) <= pool_grace ()) {
    close (fd);
    return false;
  }
  *lockfd = fd;
  return true;
}

/* Keep the backend serving until a signal, or until no session has used
 * the pool for two looks in a row (never within POOL_GRACE of pending). */
static void
pool_watch (struct pool_daemon *pd, int *lockfd)
{
  for (;;) {
    struct pollfd p[2] = { { .fd = pd->backend.pidfd, .events = POLLIN },
                           { .fd = pd->sfd, .events = POLLIN } };
    int r = poll (p, 2, POOL_CHECK * 1000);
    if (r == -1 && errno != EINTR)
      return;
    if ((p[1].revents & POLLIN) && daemon_quit_signal (pd->sfd))
      return;
    if (pd->backend.pidfd < 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
      proc_died (&pd->backend);
    if (r == 0 && pool_done (pd, lockfd)) {
      proc_log ("pool %s: no session uses it: stopping", pd->key);
      return;
    }
  }
}

int
instant_pool_supervise (const char *home, const char *key, int ready_fd)
{
  struct pool_daemon pd = { .home = home, .key = key, .sfd = -1 };
  CLEANUP_FREE char *pidpath = NULL;
  int ret = 1, lockfd = -1;

  pd.backend.pidfd = -1;
  if (!key_valid (key)) {
    error_setx ("'%s' is not a pool key", key);
    goto out;
  }
  pd.dir = pool_dir (home, key);
  pidpath = xasprintf ("%s/supervisor.pid", pd.dir);
  if (pool_setup (&pd) == -1 || (pd.sfd = daemon_signals (pidpath)) == -1)
    goto out;
  if (!proc_adopt (&pd.backend) && proc_start (&pd.backend) == -1)
    goto out;
  dprintf (ready_fd, "ready %d\n", (int) getpid ());
  close (ready_fd);
  ready_fd = -1;
  pool_watch (&pd, &lockfd);
  ret = 0;
 out:
  if (ready_fd >= 0) {
    dprintf (ready_fd, "error: %s\n", error_msg ());
    close (ready_fd);
  }
  if (ret != 0)
    proc_log ("error: %s", error_msg ());
  proc_stop (&pd.backend);
  proc_free (&pd.backend);
  if (pidpath)
    unlink (pidpath);
  if (lockfd >= 0)
    close (lockfd);
  if (pd.sfd >= 0)
    close (pd.sfd);
  free (pd.dir);
  return ret;
}
