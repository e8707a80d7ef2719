/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backup of libvirt domains into restore points (the "driver" side: the
 * libvirt calls that act, made through recovery/virt; the XML is built
 * and parsed in backup-xml.c).
 *
 * A running domain is backed up with libvirt's backup API in pull mode:
 * virDomainBackupBegin starts a point-in-time view of each disk, exported
 * by QEMU over NBD on a unix socket in a private 0700 directory (for a
 * domain on another host, on TCP there with TLS: backup-remote.c), and
 * creates a new checkpoint (a persistent dirty bitmap per qcow2 disk) at
 * the same instant.  The chunk engine (chunk-job.c) reads the export with
 * one libnbd connection per worker.  A shut-off domain's disks are read
 * directly through a private read-only qemu-nbd (full read, no
 * checkpoint), in the format the domain XML gives: never guessed from the
 * contents, which the guest writes (a raw disk holding a qcow2 header
 * whose backing file is /etc/shadow would put host data in the point).
 *
 * Design notes.
 *
 * Checkpoints are named bootback-<first 8 hex digits of the repository
 * uuid>-<point id>; a point's manifest records its checkpoint.  Those of
 * other repositories or tools are foreign: never used, never deleted.
 *
 * Invariants:
 *   1. An incremental read of a disk needs all of: the previous point of
 *      the domain names a checkpoint of this repository; libvirt has it
 *      and it tracks the disk with a bitmap; the previous point has the
 *      disk with the same size; the NBD export offers the bitmap's meta
 *      context.  Anything else is a full read of that disk, with its
 *      reason told to the user.  Never a silent wrong incremental.
 *   2. Unchanged chunks take the previous point's digests (touched through
 *      the writer, read again if gone), so every point has a complete index.
 *      A partly dirty chunk is the previous point's chunk (SHA-256 checked
 *      on read) with only its dirty ranges read over it; wholly dirty
 *      chunks are read whole.  Only dirty bytes cross the NBD socket.
 *   3. The checkpoint is advanced (older ones deleted) only after the point
 *      is committed and recorded (commit protocol step 5).  A failed
 *      backup deletes its new checkpoint; a killed one leaves it, and the
 *      next backup, still starting from the committed point's checkpoint,
 *      deletes it.  The previous checkpoint stays usable either way.
 *   4. The guest is frozen only between virDomainFSFreeze and the thaw
 *      right after virDomainBackupBegin.  A thaw guard process, started
 *      before the freeze, thaws the guest if bootback dies in between.
 *   5. A backup job left by a killed bootback (its socket directory, or
 *      for another host its export names, name a dead PID of this
 *      machine) is aborted before a new one begins; anyone else's job
 *      makes the backup fail.
 *
 * States of one run:
 *
 *   open -> [freeze] -> begin (checkpoint created) -> [thaw] -> read disks
 *        -> end job -> commit (steps 1-3) -> caller records (step 4)
 *        -> advance (step 5)
 *   any error after begin: end job, delete the new checkpoint, abort writer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#include "recovery/ingest/ingest-int.h"
#include "recovery/virt/virt.h"

struct ingest_backup {
  const struct backup_opts *o;
  virConnectPtr conn;
  virDomainPtr dom;
  char uri[512];
  char cp_prefix[32];            /* "bootback-1a2b3c4d-" of the repository */
  struct backup_remote rm;       /* rm.host[0]: the domain is on another host */
  char new_cp[128];              /* checkpoint made by the run, "" if none */
  bool committed;
};

/* One disk of the run. */
struct bdisk {
  struct backup_xml_disk x;
  bool selected;
  bool bitmap;                   /* the new checkpoint tracks it */
  const char *incremental;       /* checkpoint to read from, or NULL */
  char scratch[640];
  struct backup_disk_result *res;
};

/* ---- small helpers ----------------------------------------------------------- */

static void
note (struct ingest_backup *b, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (b->o->note)
    b->o->note (b->o->opaque, msg);
}

/* Test hooks: BOOTBACK_BACKUP_TEST=kill-frozen|fail-frozen (while the
 * guest is frozen), kill-reading (SIGKILL before the last disk is read,
 * the others being read and their chunks stored), stall-reading (sleep
 * there, said in a note: a test cuts the network to a remote host). */
#define BACKUP_TEST_STALL_SECS 5
/* libvirt keepalive to another host: a probe every 5 s, 3 unanswered
 * close the connection. */
#define BACKUP_KEEPALIVE_SECS 5
#define BACKUP_KEEPALIVE_COUNT 3
static bool
test_hook (const char *what)
{
  const char *t = test_hook_env ("BOOTBACK_BACKUP_TEST");
  return t && strcmp (t, what) == 0;
}

/* Remove a directory of ours and the files in it (best effort). */
static void
rm_dir (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;

  while (d && (e = readdir (d)) != NULL) {
    CLEANUP_FREE char *p = NULL;
    if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
      continue;
    p = xasprintf ("%s/%s", dir, e->d_name);
    unlink (p);
  }
  if (d)
    closedir (d);
  rmdir (dir);
}

/* ---- open / close --------------------------------------------------------------- */

struct ingest_backup *
ingest_backup_open (const struct backup_opts *o)
{
  struct ingest_backup *b = xcalloc (1, sizeof *b);
  char *u;

  b->o = o;
  b->conn = virt_connect (o->uri);
  if (!b->conn)
    goto err;
  /* The URI libvirt chose, for the thaw guard (virt has no call for it:
   * a plain getter). */
  u = virConnectGetURI (b->conn);
  snprintf (b->uri, sizeof b->uri, "%s", u ? u : (o->uri ? o->uri : ""));
  free (u);
  if (backup_remote_init (&b->rm, b->uri, o) == -1)
    goto err;
  /* A host that becomes unreachable mid-backup: its calls fail within
   * about 20 s (see backup-remote.c), not after TCP's minutes. */
  if (b->rm.host[0] && virt_keepalive (b->conn, BACKUP_KEEPALIVE_SECS,
                                       BACKUP_KEEPALIVE_COUNT) == -1)
    goto err;
  b->dom = virt_domain_by_name (b->conn, o->domain);
  if (!b->dom) {
    virt_error_set ("domain %s", o->domain);
    goto err;
  }
  return b;
 err:
  ingest_backup_close (b);
  return NULL;
}

void
ingest_backup_close (struct ingest_backup *b)
{
  if (!b)
    return;
  if (b->dom)
    virDomainFree (b->dom);
  virt_close (b->conn);
  free (b);
}

/* ---- thaw guard ------------------------------------------------------------------ */

/* One attempt of the guard to thaw domain: 0, or -1 with the error. */
static int
guard_thaw (const char *uri, const char *domain)
{
  CLEANUP_VIR_CONNECT virConnectPtr conn = virt_connect (uri);
  CLEANUP_VIR_DOMAIN virDomainPtr dom = NULL;

  if (!conn)
    return -1;
  dom = virt_domain_by_name (conn, domain);
  if (!dom) {
    virt_error_set ("domain %s", domain);
    return -1;
  }
  return virt_fs_thaw (dom);
}

int
ingest_backup_thaw_guard (const char *uri, const char *domain, int fd,
                          void (*say) (void *opaque, const char *msg),
                          void *opaque)
{
  char buf[64], msg[1024];
  size_t got = 0;
  int i;

  signal (SIGINT, SIG_IGN);    /* a ^C kills bootback: the guard must thaw */
  signal (SIGTERM, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  for (;;) {
    ssize_t r = read (fd, buf + got, sizeof buf - 1 - got);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += r;
    if (got == sizeof buf - 1)
      got = 0;
  }
  buf[got] = '\0';
  if (strstr (buf, "thawed"))
    return 0;
  /* bootback died (or failed to thaw) while the guest may be frozen. */
  for (i = 0; i < 30; i++) {
    if (guard_thaw (uri, domain) == 0) {
      snprintf (msg, sizeof msg, "thaw guard: thawed %s's filesystems "
                "after the backup stopped", domain);
      say (opaque, msg);
      return 0;
    }
    sleep (1);
  }
  snprintf (msg, sizeof msg, "thaw guard: could not thaw %s: %s", domain,
            error_msg ());
  say (opaque, msg);
  return 1;
}

/* Start the guard: a child running "bootback backup --thaw-guard URI DOM"
 * with stdin on a pipe whose write end we keep.  -1 if it cannot start
 * (then we do not freeze). */
static int
guard_start (struct ingest_backup *b, pid_t *pid)
{
  char exe[4096];
  ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  int p[2];

  if (n <= 0) {
    error_set (errno, "readlink /proc/self/exe");
    return -1;
  }
  exe[n] = '\0';
  if (pipe2 (p, O_CLOEXEC) == -1) {
    error_set (errno, "pipe");
    return -1;
  }
  *pid = fork ();
  if (*pid == -1) {
    error_set (errno, "fork");
    close (p[0]);
    close (p[1]);
    return -1;
  }
  if (*pid == 0) {
    dup2 (p[0], 0);
    execl (exe, "bootback", "backup", "--thaw-guard", b->uri, b->o->domain,
           (char *) NULL);
    _exit (127);
  }
  close (p[0]);
  return p[1];
}

/* Tell the guard how it went.  Thawed: it exits at once and is reaped.
 * Not thawed: it goes on retrying the thaw on its own (not waited for). */
static void
guard_stop (int fd, pid_t pid, bool thawed)
{
  if (thawed) {
    ssize_t r = write (fd, "thawed\n", 7);   /* if lost, the guard thaws */
    (void) r;                                /* once more: harmless */
  }
  close (fd);
  while (thawed && waitpid (pid, NULL, 0) == -1 && errno == EINTR)
    ;
}

/* ---- stale jobs ---------------------------------------------------------------------- */

/* Is pid a running bootback (and not a reused PID)?  One whose command
 * line cannot be read (another user's, /proc hidden) is assumed to be. */
static bool
bootback_alive (long pid)
{
  CLEANUP_FREE char *path = xasprintf ("/proc/%ld/cmdline", pid);

  if (kill ((pid_t) pid, 0) == -1 && errno != EPERM)
    return false;
  if (access (path, R_OK) == -1)
    return true;                /* cannot tell: assume it is */
  return pid_matches ((pid_t) pid, 0, "bootback");
}

/* If the domain has a backup job: abort it if a dead bootback of this
 * machine left it (invariant 5), else fail. */
static int
clear_stale_job (struct ingest_backup *b)
{
  CLEANUP_FREE char *xml = virt_backup_xml (b->dom);
  char dir[1024], host[256];
  long pid = 0;

  if (!xml) {
    error_clear ();
    return 0;                   /* no backup job */
  }
  if (backup_job_owner (xml, b->rm.host[0] != '\0', &pid, host, sizeof host,
                        dir, sizeof dir) == -1)
    return -1;
  if (pid <= 0) {
    error_setx ("domain %s already has a backup job that is not bootback's "
                "(virsh backup-dumpxml %s); it must end first",
                b->o->domain, b->o->domain);
    return -1;
  }
  if (host[0]) {
    error_setx ("domain %s is being backed up by bootback pid %ld on %s; if "
                "that has stopped, end its job (virsh domjobabort %s)",
                b->o->domain, pid, host, b->o->domain);
    return -1;
  }
  if (bootback_alive (pid)) {
    error_setx ("domain %s is being backed up by another bootback "
                "(pid %ld)", b->o->domain, pid);
    return -1;
  }
  if (virt_job_abort (b->dom) == -1) {
    error_prefix ("%s: cannot end the backup job left by bootback pid %ld",
                  b->o->domain, pid);
    return -1;
  }
  if (dir[0])
    rm_dir (dir);
  note (b, "ended the backup job left by an interrupted bootback (pid %ld)",
        pid);
  return 0;
}

/* ---- planning ------------------------------------------------------------------------- */

/* Is checkpoint name ours, does libvirt have it, and which disks does it
 * track?  Returns 1 usable (names filled), 0 not usable (why filled). */
static int
check_checkpoint (struct ingest_backup *b, const char *name,
                  char (*names)[DISK_NAME_MAX + 1], size_t *n, char *why,
                  size_t wlen)
{
  CLEANUP_VIR_CHECKPOINT virDomainCheckpointPtr cp = NULL;
  CLEANUP_FREE char *xml = NULL;

  *n = 0;
  if (!name[0]) {
    snprintf (why, wlen, "the last point has no checkpoint");
    return 0;
  }
  if (strncmp (name, b->cp_prefix, strlen (b->cp_prefix)) != 0) {
    snprintf (why, wlen, "checkpoint %s of the last point is foreign "
              "(not this repository's)", name);
    return 0;
  }
  cp = virt_checkpoint_by_name (b->dom, name);
  if (!cp) {
    snprintf (why, wlen, "checkpoint %s of the last point is missing in "
              "libvirt", name);
    return 0;
  }
  xml = virt_checkpoint_xml (cp);
  if (!xml || backup_xml_checkpoint_disks (xml, names, REPO_MAX_DISKS, n) == -1) {
    snprintf (why, wlen, "checkpoint %s cannot be read: %s", name,
              xml ? error_msg () : virt_failure ());
    return 0;
  }
  return 1;
}

/* The disk's current virtual size as libvirt sees it. */
static int
disk_capacity (struct ingest_backup *b, const char *target, uint64_t *size)
{
  virDomainBlockInfo info;

  if (virt_block_info (b->dom, target, &info) == -1)
    return -1;
  *size = info.capacity;
  return 0;
}

/* Can disk d of a shut-off domain be read?  A file or block device, and
 * the format of each layer of its image is never guessed: the top's is
 * the domain XML's, each backing file's the one its overlay records.  A
 * layer whose backing format is not recorded is refused (QEMU would guess
 * it from contents a guest may have written), as libvirt refuses to
 * start such a domain.  -1 with the error. */
static int
check_offline_disk (struct ingest_backup *b, const struct bdisk *d)
{
  struct qemu_img_info i;
  char image[1024], format[32];
  int depth;

  if (!d->x.source[0] || (strcmp (d->x.type, "file") != 0 &&
                          strcmp (d->x.type, "block") != 0)) {
    error_setx ("%s: disk %s of the shut-off domain is not a file or block "
                "device (type %s): start the domain to back it up",
                b->o->domain, d->x.target, d->x.type);
    return -1;
  }
  snprintf (image, sizeof image, "%s", d->x.source);
  snprintf (format, sizeof format, "%s", d->res->format);
  for (depth = 0; depth < 64; depth++) {
    if (qemu_img_info (image, format, &i) == -1) {
      error_prefix ("%s: disk %s: %s", b->o->domain, d->x.target, image);
      return -1;
    }
    if (!i.backing[0])
      return 0;
    if (!i.backing_format[0]) {
      error_setx ("%s: disk %s: %s has a backing file %s but does not record "
                  "its format; refusing to let QEMU guess it (record it: "
                  "qemu-img rebase -u -F FORMAT -b %s %s)", b->o->domain,
                  d->x.target, image, i.backing, i.backing, image);
      return -1;
    }
    snprintf (image, sizeof image, "%s", i.backing);
    snprintf (format, sizeof format, "%s", i.backing_format);
  }
  error_setx ("%s: disk %s: a backing chain deeper than %d", b->o->domain,
              d->x.target, depth);
  return -1;
}

/* Which disks the run backs up: those named with --disk (each must be a
 * disk of the domain, and a disk, not a cdrom), else every writable disk.
 * Either way each must be able to name a disk in a point. */
static int
select_disks (struct ingest_backup *b, struct bdisk *d, size_t nd)
{
  size_t i, k;

  for (i = 0; i < b->o->ndisks; i++) {
    for (k = 0; k < nd; k++)
      if (strcmp (d[k].x.target, b->o->disks[i]) == 0)
        break;
    if (k == nd) {
      error_setx ("domain %s has no disk %s", b->o->domain, b->o->disks[i]);
      return -1;
    }
    if (strcmp (d[k].x.device, "disk") != 0) {
      error_setx ("%s: %s is a %s, not a disk", b->o->domain,
                  d[k].x.target, d[k].x.device);
      return -1;
    }
    d[k].selected = true;
  }
  for (k = 0; !b->o->disks && k < nd; k++)
    d[k].selected = strcmp (d[k].x.device, "disk") == 0 && !d[k].x.readonly;
  for (k = 0; k < nd; k++)
    if (d[k].selected && !disk_name_is_valid (d[k].x.target)) {
      error_setx ("%s: disk target '%s' cannot name a disk in a point",
                  b->o->domain, d[k].x.target);
      return -1;
    }
  return 0;
}

/* What the previous point offers an incremental read (check_checkpoint). */
struct prev_checkpoint {
  const struct repo_manifest *prev;  /* NULL: the domain's first point */
  int ok;                            /* 1: the checkpoint is usable */
  char names[REPO_MAX_DISKS][DISK_NAME_MAX + 1];  /* the disks it tracks */
  size_t n;
  char why[256];                     /* why not, when !ok (a disk's reason) */
};

/* Full or incremental for one selected disk of a running domain, whose
 * size is known (invariant 1): incremental only if every condition holds,
 * else d->res->reason says which did not. */
static void
plan_disk_mode (struct ingest_backup *b, struct bdisk *d,
                const struct prev_checkpoint *cp)
{
  const struct repo_manifest *prev = cp->prev;
  struct backup_disk_result *r = d->res;
  size_t p;

  d->bitmap = strcmp (r->format, "qcow2") == 0;
  if (!d->bitmap && strcmp (d->x.protocol, "rbd") == 0) {
    snprintf (r->reason, sizeof r->reason,
              "RBD disk (%s): QEMU keeps no persistent dirty bitmap for it, so "
              "every backup of it is a full read", d->x.format);
    return;
  }
  if (!d->bitmap) {
    char fmt[sizeof r->format];
    memcpy (fmt, r->format, sizeof fmt);
    snprintf (r->reason, sizeof r->reason,
              "%s disk: no persistent dirty bitmap, so every backup of it "
              "is a full read (convert it to qcow2 for incremental backups)",
              fmt);
    return;
  }
  if (!prev)
    return;                     /* first point: full, nothing to explain */
  if (b->o->full) {
    snprintf (r->reason, sizeof r->reason, "--full");
    return;
  }
  if (!cp->ok) {
    snprintf (r->reason, sizeof r->reason, "%s", cp->why);
    return;
  }
  for (p = 0; p < prev->ndisks; p++)
    if (strcmp (prev->disks[p].name, r->name) == 0)
      break;
  if (p == prev->ndisks) {
    snprintf (r->reason, sizeof r->reason,
              "the last point %s does not have this disk (added since, "
              "or left out with --disk)", prev->id);
    return;
  }
  if (prev->disks[p].size != r->size) {
    snprintf (r->reason, sizeof r->reason,
              "disk resized since the last point (%" PRIu64 " -> %" PRIu64
              " bytes)", prev->disks[p].size, r->size);
    return;
  }
  for (p = 0; p < cp->n; p++)
    if (strcmp (cp->names[p], r->name) == 0)
      break;
  if (p == cp->n) {
    snprintf (r->reason, sizeof r->reason,
              "checkpoint %s does not track this disk", prev->checkpoint);
    return;
  }
  d->incremental = prev->checkpoint;
  snprintf (r->mode, sizeof r->mode, "incremental");
}

/* Choose disks and, for each, full or incremental (invariant 1). */
static int
plan_disks (struct ingest_backup *b, struct bdisk *d, size_t nd, bool running,
            const struct repo_manifest *prev, struct backup_result *res)
{
  struct prev_checkpoint cp = { .prev = prev };
  size_t k;

  if (select_disks (b, d, nd) == -1)
    return -1;
  if (prev && running && !b->o->full)
    cp.ok = check_checkpoint (b, prev->checkpoint, cp.names, &cp.n, cp.why,
                              sizeof cp.why);

  for (k = 0; k < nd; k++) {
    struct backup_disk_result *r;
    uint64_t size = 0;

    if (!d[k].selected)
      continue;
    if (res->ndisks == REPO_MAX_DISKS) {
      error_setx ("%s: more than %d disks", b->o->domain, REPO_MAX_DISKS);
      return -1;
    }
    r = d[k].res = &res->disks[res->ndisks++];
    /* Same sizes, both NUL-terminated by the parser. */
    memcpy (r->name, d[k].x.target, sizeof r->name);
    memcpy (r->format, d[k].x.format, sizeof r->format);
    snprintf (r->mode, sizeof r->mode, "full");
    if (!running) {
      if (check_offline_disk (b, &d[k]) == -1)
        return -1;
      continue;
    }
    if (disk_capacity (b, d[k].x.target, &size) == -1)
      return -1;
    r->size = size;
    plan_disk_mode (b, &d[k], &cp);
  }
  if (res->ndisks == 0) {
    error_setx ("domain %s has no disk to back up", b->o->domain);
    return -1;
  }
  return 0;
}

/* ---- reading one disk -------------------------------------------------------------------- */

/* The dirty bitmap of an incremental: ranges (merged) and, per chunk, how
 * many of its bytes are dirty. */
struct dirty_map {
  struct chunk_job *j;
  struct chunk_range *r;
  size_t n;
  uint32_t *in_chunk;
  uint64_t dirty;
};

static void
dirty_extent (void *opaque, uint64_t off, uint64_t len, uint32_t flags)
{
  struct dirty_map *m = opaque;
  struct chunk_job *j = m->j;
  uint64_t c, end;

  if (!(flags & 1) || len == 0 || off >= j->size)
    return;
  end = MIN (off + len, j->size);
  m->dirty += end - off;
  if (m->n && m->r[m->n - 1].off + m->r[m->n - 1].len == off)
    m->r[m->n - 1].len += end - off;
  else {
    struct chunk_range *r = ARRAY_PUSH (m->r, m->n);
    r->off = off;
    r->len = end - off;
  }
  for (c = off / j->cs; c < j->nchunks && c * j->cs < end; c++)
    m->in_chunk[c] += MIN (end, (c + 1) * j->cs) - MAX (off, c * j->cs);
}

/* One disk being read: what the steps of read_disk hand each other. */
struct disk_read {
  struct ingest_backup *b;
  struct bdisk *d;
  struct repo_disk *prev_disk;   /* the previous point's index, or NULL */
  char *what;                    /* "DOMAIN TARGET", names it in messages */
  char *bitmap_ctx;              /* the dirty bitmap's meta context */
  struct nbd_handle *h;          /* for block status; then the job's spare */
  int64_t size;
  struct chunk_job j;
  struct dirty_map dm;
};

/* Connect to the export and set up the chunk job for its size. */
static int
export_open (struct disk_read *dr, struct repo *r, struct repo_writer *w,
             const char *socket, const char *export_name)
{
  const char *ctx[] = { LIBNBD_CONTEXT_BASE_ALLOCATION, dr->bitmap_ctx, NULL };
  int i;

  /* QEMU creates the socket in virDomainBackupBegin; give it a moment.
   * No socket: the domain's host over TCP (remote.c waits itself). */
  for (i = 0; i < (socket ? 100 : 1); i++) {
    struct chunk_job probe = {
      .what = dr->what, .socket = socket, .export_name = export_name,
      .connect = socket ? NULL : backup_remote_connect,
      .connect_opaque = &dr->b->rm,
    };
    dr->h = chunk_job_connect (&probe, ctx);
    if (dr->h)
      break;
    usleep (100 * 1000);
  }
  if (!dr->h)
    return -1;
  dr->size = nbd_get_size (dr->h);
  if (dr->size <= 0) {
    error_setx ("%s: the NBD export has no size: %s", dr->what,
                nbd_get_error ());
    return -1;
  }
  chunk_job_init (&dr->j, w, dr->what, dr->size, repo_chunk_size (r));
  dr->j.socket = socket;
  dr->j.export_name = export_name;
  if (!socket) {
    dr->j.connect = backup_remote_connect;
    dr->j.connect_opaque = &dr->b->rm;
  }
  dr->d->res->size = dr->size;
  return 0;
}

/* An incremental read: every chunk starts as the previous point's, and
 * the dirty bitmap says which to read whole or patch (invariant 2).  If
 * the export or the previous index does not allow it, a full read with
 * its reason.  -1 on a libnbd error. */
static int
plan_dirty (struct disk_read *dr, struct repo *r)
{
  struct backup_disk_result *res = dr->d->res;
  struct chunk_job *j = &dr->j;
  uint64_t c;

  if (!dr->d->incremental)
    return 0;
  if (!dr->prev_disk || repo_disk_size (dr->prev_disk) != (uint64_t) dr->size ||
      repo_disk_nchunks (dr->prev_disk) != j->nchunks ||
      nbd_can_meta_context (dr->h, dr->bitmap_ctx) != 1) {
    snprintf (res->mode, sizeof res->mode, "full");
    snprintf (res->reason, sizeof res->reason, "%s",
              nbd_can_meta_context (dr->h, dr->bitmap_ctx) != 1
              ? "the NBD export has no dirty bitmap"
              : "the previous point's index does not match the disk");
    note (dr->b, "%s: full read (%s)", dr->d->x.target, res->reason);
    return 0;
  }
  for (c = 0; c < j->nchunks; c++) {
    j->plan[c] = CHUNK_REUSE;
    memcpy (j->digests[c], repo_disk_digest (dr->prev_disk, c), REPO_DIGEST_LEN);
  }
  dr->dm.j = j;
  dr->dm.in_chunk = xcalloc (j->nchunks, sizeof *dr->dm.in_chunk);
  if (chunk_job_block_status (j, dr->h, dr->bitmap_ctx, dirty_extent,
                              &dr->dm) == -1)
    return -1;
  res->dirty_bytes = dr->dm.dirty;
  /* Wholly dirty: read; partly: patch the previous chunk (only the
   * dirty ranges are read); clean: reuse the previous digest. */
  for (c = 0; c < j->nchunks; c++) {
    uint64_t len = MIN ((uint64_t) j->cs, (uint64_t) dr->size - c * j->cs);
    if (dr->dm.in_chunk[c] == len)
      j->plan[c] = CHUNK_READ;
    else if (dr->dm.in_chunk[c])
      j->plan[c] = CHUNK_PATCH;
  }
  j->repo = r;
  j->dirty = dr->dm.r;
  j->ndirty = dr->dm.n;
  return 0;
}

/* Mark the chunks block status reports zero, count the bytes to read, and
 * tell the user the plan.  The block status connection goes to the chunk
 * job, whose first reader takes it. */
static int
plan_zero (struct disk_read *dr)
{
  struct backup_disk_result *res = dr->d->res;
  struct chunk_job *j = &dr->j;
  struct chunk_zero_map z;
  uint64_t c;

  chunk_zero_map_init (&z, j);
  if (nbd_can_meta_context (dr->h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1 &&
      chunk_job_block_status (j, dr->h, LIBNBD_CONTEXT_BASE_ALLOCATION,
                              chunk_zero_map_extent, &z) == -1)
    return -1;
  for (c = 0; c < j->nchunks; c++) {
    if (j->known_zero[c])
      continue;
    if (j->plan[c] == CHUNK_READ)
      res->planned_bytes += MIN ((uint64_t) j->cs, (uint64_t) dr->size - c * j->cs);
    else if (j->plan[c] == CHUNK_PATCH)
      res->planned_bytes += dr->dm.in_chunk[c];
  }
  atomic_store (&j->spare, dr->h);
  dr->h = NULL;

  if (strcmp (res->mode, "incremental") == 0)
    note (dr->b, "%s: incremental since %s: %s dirty, %s to read of %s",
          dr->d->x.target, dr->d->incremental,
          human_size (res->dirty_bytes, (char[32]) { 0 }, 32),
          human_size (res->planned_bytes, (char[32]) { 0 }, 32),
          human_size (dr->size, (char[32]) { 0 }, 32));
  else
    note (dr->b, "%s: full read of %s%s%s%s", dr->d->x.target,
          human_size (dr->size, (char[32]) { 0 }, 32),
          res->reason[0] ? " (" : "", res->reason, res->reason[0] ? ")" : "");
  return 0;
}

/* Run the plan with the workers and add the disk to the writer. */
static int
store_disk (struct disk_read *dr, struct repo_writer *w, int threads)
{
  struct backup_disk_result *res = dr->d->res;
  struct chunk_job *j = &dr->j;
  char label[96];
  int ret;

  /* An incremental read is small scattered reads and chunk patches, as
   * much waiting as computing: twice the threads (measured: 15-25% faster
   * than one a CPU on 2 CPUs; a full read is not faster with more), up
   * to 16 NBD connections. */
  if (strcmp (res->mode, "incremental") == 0 && dr->b->o->threads <= 0)
    threads = MAX (threads, MIN (2 * threads, 16));
  snprintf (label, sizeof label, "backup %s", dr->d->x.target);
  j->prog = progress_new (label, res->planned_bytes);
  ret = chunk_job_run (j, threads);
  progress_free (j->prog);
  if (ret == -1)
    return -1;
  if (repo_writer_add_disk (w, dr->d->x.target, dr->size, res->format,
                            (const uint8_t (*)[REPO_DIGEST_LEN]) j->digests) == -1)
    return -1;
  res->bytes_read = j->bytes_read;
  res->reused_chunks = j->reused_chunks;
  res->patched_chunks = j->patched_chunks;
  res->reread_chunks = j->reread_chunks;
  if (j->reread_chunks)
    note (dr->b, "%s: %" PRIu64 " chunk%s of the last point could not be used "
          "(%s%s): read again from the disk", dr->d->x.target, j->reread_chunks,
          j->reread_chunks == 1 ? "" : "s", j->reread.msg,
          j->reread_chunks > 1 ? ", and others" : "");
  return 0;
}

/* Read disk d from the NBD export at socket (or a local qemu-nbd) into
 * the writer.  prev_disk: the previous point's index for incremental. */
static int
read_disk (struct ingest_backup *b, struct repo *r, struct repo_writer *w,
           struct bdisk *d, const char *socket, const char *export_name,
           struct repo_disk *prev_disk, int threads)
{
  struct disk_read dr = {
    .b = b, .d = d, .prev_disk = prev_disk,
    .what = xasprintf ("%s %s", b->o->domain, d->x.target),
    .bitmap_ctx = xasprintf ("qemu:dirty-bitmap:backup-%s", d->x.target),
  };
  int ret = -1;

  if (export_open (&dr, r, w, socket, export_name) == 0 &&
      plan_dirty (&dr, r) == 0 && plan_zero (&dr) == 0 &&
      store_disk (&dr, w, threads) == 0)
    ret = 0;
  {
    ERROR_SAVE (saved);
    if (dr.h) {
      nbd_shutdown (dr.h, 0);
      nbd_close (dr.h);
    }
    if (dr.j.plan)
      chunk_job_fini (&dr.j);
    free (dr.dm.r);
    free (dr.dm.in_chunk);
    free (dr.what);
    free (dr.bitmap_ctx);
    ERROR_RESTORE (saved);
  }
  return ret;
}

/* A shut-off domain: each disk read from its image by a private qemu-nbd,
 * in the format the domain XML gives (raw without one, as libvirt);
 * check_offline_disk has passed. */
static int
read_offline_disk (struct ingest_backup *b, struct repo *r,
                   struct repo_writer *w, struct bdisk *d, int threads)
{
  struct qemu_nbd q = { 0 };
  int ret;

  if (qemu_nbd_start (&q, d->x.source, d->res->format, true) == -1)
    return -1;
  d->incremental = NULL;
  ret = read_disk (b, r, w, d, q.socket, NULL, NULL, threads);
  qemu_nbd_stop (&q);
  return ret;
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Delete a checkpoint with its bitmaps.  One whose bitmaps are broken
 * (libvirt cannot find them) cannot be deleted so: its metadata is then
 * dropped alone, or it would be in the way forever.  -1 with the error. */
static int
drop_checkpoint (struct ingest_backup *b, virDomainCheckpointPtr cp)
{
  const char *name = virDomainCheckpointGetName (cp);
  char first[512];

  if (virt_checkpoint_delete (cp, false) == 0)
    return 0;
  snprintf (first, sizeof first, "%s", virt_failure ());
  if (virt_checkpoint_delete (cp, true) == 0) {
    note (b, "removed broken checkpoint %s from libvirt's metadata (%s)",
          name, first);
    return 0;
  }
  error_prefix ("%s", b->o->domain);
  return -1;
}

static void
delete_checkpoint (struct ingest_backup *b, const char *name)
{
  CLEANUP_VIR_CHECKPOINT virDomainCheckpointPtr cp =
    virt_checkpoint_by_name (b->dom, name);

  if (cp && drop_checkpoint (b, cp) == -1)
    note (b, "warning: could not delete checkpoint %s: %s", name,
          error_msg ());
}

/* The domain's XML to keep with the point: the persistent definition if
 * there is one, else the live one. */
static char *
saved_xml (struct ingest_backup *b)
{
  char *x = NULL;

  if (virDomainIsPersistent (b->dom) == 1)
    x = virt_domain_xml (b->dom, VIR_DOMAIN_XML_INACTIVE);
  if (!x)
    x = virt_domain_xml (b->dom, 0);
  return x;
}

/* One ingest_backup_run: what each of its steps hands the next. */
struct run {
  struct ingest_backup *b;
  struct repo *r;
  struct backup_result *res;
  int threads;
  double t0;
  /* The domain, its disks and the previous point (run_inspect, run_plan). */
  int state;                     /* virt_domain_state's */
  bool running;
  size_t nd;
  struct bdisk d[REPO_MAX_DISKS];
  bool have_prev;
  struct repo_manifest prev;
  char vm[VM_NAME_MAX + 1], prev_id[TIMESTAMP_LEN + 1];
  char *keep;                    /* the domain XML kept with the point */
  struct repo_writer *w;
  /* The pull-mode job of a running domain (job_*). */
  char dir[512], sock[600];      /* private directory, its NBD socket; or a
                                  * remote host's scratch directory */
  bool owns_dir;                 /* dir is ours, removed at the end */
  struct backup_xml_plan_disk pd[REPO_MAX_DISKS];
  struct backup_xml_plan plan;
  char *desc;                    /* the new checkpoint's description */
  bool job, frozen, created;     /* job begun, guest frozen, checkpoint made */
  int guard_fd;                  /* the thaw guard's pipe, or -1 */
  pid_t guard_pid;
};

/* Is the domain in a state to back up?  Sets run->running and the
 * result's state. */
static int
run_inspect (struct run *run)
{
  const struct backup_opts *o = run->b->o;
  int state;

  if (!name_is_valid (o->domain)) {
    error_setx ("domain name '%s' cannot name a VM in the repository "
                "(letters, digits, '.', '_', '-')", o->domain);
    return -1;
  }
  state = virt_domain_state (run->b->dom, NULL);
  if (state == -1)
    return -1;
  run->state = state;
  run->running = state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED ||
    state == VIR_DOMAIN_BLOCKED;
  snprintf (run->res->state, sizeof run->res->state, "%s",
            run->running ? (state == VIR_DOMAIN_PAUSED ? "paused" : "running")
            : "shut off");
  if (!run->running && state != VIR_DOMAIN_SHUTOFF) {
    error_setx ("domain %s is neither running nor shut off (state %d): "
                "try again when it is", o->domain, state);
    return -1;
  }
  if (!run->running && run->b->rm.host[0]) {
    error_setx ("domain %s on %s is shut off: its disk images are on that "
                "host, and bootback reads them from there only through a "
                "running domain's backup job (start it, even paused)",
                o->domain, run->b->rm.host);
    return -1;
  }
  return 0;
}

/* The disks, and the previous point: what to read from each disk. */
static int
run_plan (struct run *run)
{
  struct ingest_backup *b = run->b;
  struct backup_xml_disk xd[REPO_MAX_DISKS];
  CLEANUP_FREE char *live = NULL;
  size_t k;

  live = virt_domain_xml (b->dom, run->running ? 0 : VIR_DOMAIN_XML_INACTIVE);
  if (!live)
    return -1;
  run->keep = saved_xml (b);
  if (!run->keep ||
      backup_xml_domain_disks (live, xd, REPO_MAX_DISKS, &run->nd) == -1)
    return -1;
  for (k = 0; k < run->nd; k++)
    run->d[k].x = xd[k];
  if (repo_point_resolve (run->r, b->o->domain, run->vm, run->prev_id) == 0 &&
      repo_manifest_read (run->r, run->vm, run->prev_id, &run->prev) == 0)
    run->have_prev = true;
  error_clear ();
  if (plan_disks (b, run->d, run->nd, run->running,
                  run->have_prev ? &run->prev : NULL, run->res) == -1)
    return -1;
  if (!run->running)
    note (b, "%s is shut off: reading its disk images directly (full read, "
          "no checkpoint)", b->o->domain);
  else if (run->have_prev && run->prev.checkpoint[0] == '\0' && !b->o->full)
    note (b, "the last point %s@%s has no checkpoint: full read", b->o->domain,
          run->prev_id);
  return 0;
}

/* Where the job's NBD server listens and its scratch files go: for a
 * local domain a private directory (socket, scratch files); for one on
 * another host TCP there (backup-remote.c), and its scratch files in
 * --scratch-dir there (/var/tmp).  -1 with the error. */
static int
job_where (struct run *run)
{
  struct ingest_backup *b = run->b;
  const char *scratch = b->o->scratch_dir;

  if (b->rm.host[0]) {
    if (backup_remote_check_tls (&b->rm) == -1)
      return -1;
    run->plan.tcp_host = b->rm.host;
    run->plan.tls = !b->rm.insecure;
    run->plan.export_prefix = b->rm.export_prefix;
    /* libvirt 9.0 makes no scratch file name of its own in pull mode */
    snprintf (run->dir, sizeof run->dir, "%s",
              b->o->remote_scratch_dir && *b->o->remote_scratch_dir
              ? b->o->remote_scratch_dir : "/var/tmp");
    return 0;
  }
  if (!scratch || !*scratch)
    scratch = "/var/tmp";
  snprintf (run->dir, sizeof run->dir, "%s/bootback-backup-%ld-XXXXXX", scratch,
            (long) getpid ());
  if (!mkdtemp (run->dir)) {
    error_set (errno, "mkdtemp: %s", run->dir);
    run->dir[0] = '\0';
    return -1;
  }
  snprintf (run->sock, sizeof run->sock, "%s/nbd.sock", run->dir);
  run->plan.socket = run->sock;
  run->owns_dir = true;
  return 0;
}

/* Pull-mode backup job: where (job_where), and the plan of the job
 * (which disks, from which checkpoint, the new checkpoint).  A job a
 * killed bootback left is ended first. */
static int
job_prepare (struct run *run)
{
  struct ingest_backup *b = run->b;
  size_t k;

  if (job_where (run) == -1)
    return -1;
  /* the point's id names the checkpoint: none without it (an object
   * store's claim failed; repo_writer_id set the claim's error) */
  if (!repo_writer_id (run->w)[0]) {
    error_prefix ("the restore point's id");
    return -1;
  }
  snprintf (b->new_cp, sizeof b->new_cp, "%s%s", b->cp_prefix,
            repo_writer_id (run->w));
  for (k = 0; k < run->nd; k++) {
    struct bdisk *d = &run->d[k];
    struct backup_xml_plan_disk *pd = &run->pd[k];
    pd->name = d->x.target;
    pd->backup = d->selected;
    pd->incremental = d->incremental;
    pd->bitmap = d->selected && d->bitmap;
    pd->scratch = NULL;
    if (d->selected && run->owns_dir)
      snprintf (d->scratch, sizeof d->scratch, "%.500s/%.64s.scratch.qcow2",
                run->dir, d->x.target);
    else if (d->selected && run->dir[0]) {  /* a remote host's directory */
      /* A name nobody can guess: in a shared /var/tmp a file planted at
       * a predictable one (the point id is the time) made libvirt refuse
       * the backup ("store ... exists"). */
      uint8_t rnd[8];
      char hex[2 * sizeof rnd + 1];
      if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd) {
        error_set (errno, "getrandom");
        return -1;
      }
      hex_encode (rnd, sizeof rnd, hex);
      snprintf (d->scratch, sizeof d->scratch,
                "%.500s/bootback-%s-%s-%.64s.scratch.qcow2", run->dir,
                repo_writer_id (run->w), hex, d->x.target);
    }
    if (d->selected && run->dir[0])
      pd->scratch = d->scratch;
    if (pd->bitmap)
      run->plan.checkpoint = b->new_cp;
  }
  if (!run->plan.checkpoint)
    b->new_cp[0] = '\0';
  run->desc = xasprintf ("bootback restore point %s@%s", b->o->domain,
                         repo_writer_id (run->w));
  run->plan.description = run->desc;
  run->plan.ndisks = run->nd;
  run->plan.disks = run->pd;
  return clear_stale_job (b);
}

/* Quiesce (invariant 4): start the thaw guard, then freeze.  A guest that
 * cannot be frozen gives a crash-consistent point, said in a note. */
static void
job_freeze (struct run *run)
{
  struct ingest_backup *b = run->b;
  bool thawed;

  if (!b->o->quiesce)
    return;
  if (run->state == VIR_DOMAIN_PAUSED) {
    note (b, "the domain is paused: no guest agent, crash-consistent point");
    return;
  }
  if (run->guard_fd != -1)
    return;                     /* frozen by an earlier attempt */
  run->guard_fd = guard_start (b, &run->guard_pid);
  if (run->guard_fd == -1) {
    note (b, "cannot start the thaw guard (%s): not freezing the guest",
          error_msg ());
    return;
  }
  if (virt_fs_freeze (b->dom) == 0) {
    run->frozen = true;
    note (b, "guest agent: filesystems frozen");
    return;
  }
  note (b, "guest agent: cannot freeze (%s): the point is "
        "crash-consistent", virt_failure ());
  /* A freeze that failed late (a lost reply) may have frozen some
   * filesystems: thaw anyway.  If that fails too, the guard keeps
   * trying, unless no agent is connected (then nothing froze). */
  thawed = virt_fs_thaw (b->dom) == 0 ||
    strstr (virt_failure (), "not connected") != NULL;
  guard_stop (run->guard_fd, run->guard_pid, thawed);
  run->guard_fd = -1;
}

/* After libvirt refused to begin: if some disk was incremental (a
 * checkpoint libvirt refuses, a broken bitmap), make them all full and
 * say so.  True if there is something to retry. */
static bool
job_retry_full (struct run *run)
{
  bool retry = false;
  size_t k;

  for (k = 0; k < run->nd; k++)
    if (run->pd[k].incremental) {
      struct backup_disk_result *res = run->d[k].res;
      run->pd[k].incremental = run->d[k].incremental = NULL;
      snprintf (res->mode, sizeof res->mode, "full");
      snprintf (res->reason, sizeof res->reason,
                "libvirt refused the incremental backup: %.180s",
                virt_failure ());
      retry = true;
    }
  if (retry)
    note (run->b, "libvirt refused the incremental backup (%s): full read",
          virt_failure ());
  return retry;
}

/* Freeze, begin the job with its new checkpoint, thaw (invariant 4). */
static int
job_begin (struct run *run)
{
  struct ingest_backup *b = run->b;
  CLEANUP_FREE char *bxml = NULL, *cxml = NULL;

  for (;;) {
    free (bxml);
    free (cxml);
    run->plan.tcp_port = b->rm.port;
    bxml = backup_xml_backup (&run->plan);
    cxml = run->plan.checkpoint ? backup_xml_checkpoint (&run->plan) : NULL;
    if (!bxml || (run->plan.checkpoint && !cxml))
      return -1;
    job_freeze (run);
    if (run->frozen && test_hook ("kill-frozen"))
      kill (getpid (), SIGKILL);
    if (run->frozen && test_hook ("fail-frozen")) {
      error_setx ("injected failure while the guest is frozen "
                  "(BOOTBACK_BACKUP_TEST=fail-frozen)");
      return -1;
    }
    if (virt_backup_begin (b->dom, bxml, cxml) == 0) {
      run->job = true;
      run->created = cxml != NULL;
      break;
    }
    if (b->rm.host[0] && backup_remote_next_port (&b->rm, virt_failure ()))
      continue;                 /* the port is in use there: the next one */
    if (b->rm.gave_up || !job_retry_full (run)) {
      backup_remote_begin_failed (&b->rm, b->o->domain, virt_failure ());
      return -1;
    }
  }
  if (b->rm.host[0])
    note (b, "reading the disks over NBD %s from %s:%d",
          b->rm.insecure ? "in plaintext (--insecure)" : "with TLS",
          b->rm.host, b->rm.port);
  if (run->frozen) {
    bool thawed = virt_fs_thaw (b->dom) == 0;
    if (!thawed)
      note (b, "warning: guest agent: thaw failed (%s); the thaw guard "
            "retries", virt_failure ());
    else
      note (b, "guest agent: filesystems thawed");
    guard_stop (run->guard_fd, run->guard_pid, thawed);
    run->guard_fd = -1;
    snprintf (run->res->consistency, sizeof run->res->consistency,
              "application");
  }
  return 0;
}

/* Read each selected disk from the job's export, then end the job. */
static int
job_read (struct run *run)
{
  struct ingest_backup *b = run->b;
  size_t k, last = 0;

  for (k = 0; k < run->nd; k++)
    if (run->d[k].selected)
      last = k;
  for (k = 0; k < run->nd; k++) {
    struct bdisk *d = &run->d[k];
    struct repo_disk *pdisk = NULL;
    char *export;
    int rr;
    if (!d->selected)
      continue;
    if (d->incremental)
      pdisk = repo_disk_open (run->r, run->vm, run->prev_id, d->x.target);
    if (d->incremental && !pdisk) {
      note (b, "%s: the previous point's index cannot be read (%s)",
            d->x.target, error_msg ());
      d->incremental = NULL;
      snprintf (d->res->mode, sizeof d->res->mode, "full");
      snprintf (d->res->reason, sizeof d->res->reason,
                "the previous point's index cannot be read");
    }
    if (k == last && test_hook ("kill-reading"))   /* mid-way: the other */
      kill (getpid (), SIGKILL);                     /* disks are stored */
    if (k == last && test_hook ("stall-reading")) {
      note (b, "test: stalling %d s before reading %s", BACKUP_TEST_STALL_SECS,
            d->x.target);
      sleep (BACKUP_TEST_STALL_SECS);
    }
    export = xasprintf ("%s%s", b->rm.export_prefix, d->x.target);
    rr = read_disk (b, run->r, run->w, d, run->sock[0] ? run->sock : NULL,
                    export, pdisk, run->threads);
    free (export);
    repo_disk_close (pdisk);
    if (rr == -1)
      return -1;
  }
  if (virt_job_abort (b->dom) == -1)
    note (b, "warning: ending the backup job: %s", virt_failure ());
  run->job = false;
  return 0;
}

/* Read the selected disks: a shut-off domain's from its images, a
 * running one's through a pull-mode backup job. */
static int
run_read (struct run *run)
{
  size_t k;

  if (run->running)
    return job_prepare (run) == -1 || job_begin (run) == -1 ||
      job_read (run) == -1 ? -1 : 0;
  for (k = 0; k < run->nd; k++)
    if (run->d[k].selected &&
        read_offline_disk (run->b, run->r, run->w, &run->d[k],
                           run->threads) == -1)
      return -1;
  return 0;
}

/* The totals, then commit steps 1-3 (the writer is gone either way). */
static int
run_commit (struct run *run, struct repo_manifest *m)
{
  struct backup_result *res = run->res;
  struct repo_writer *w = run->w;
  struct repo_point_stats st;
  size_t k;

  for (k = 0; k < res->ndisks; k++) {
    res->bytes_total += res->disks[k].size;
    res->planned_bytes += res->disks[k].planned_bytes;
    res->bytes_read += res->disks[k].bytes_read;
    res->reused_chunks += res->disks[k].reused_chunks;
    if (strcmp (res->disks[k].mode, "incremental") == 0)
      snprintf (res->kind, sizeof res->kind, "incremental");
  }
  if (!res->kind[0])
    snprintf (res->kind, sizeof res->kind, "full");
  if (strcmp (res->kind, "incremental") == 0)
    snprintf (res->parent, sizeof res->parent, "%s", run->prev_id);
  snprintf (res->checkpoint, sizeof res->checkpoint, "%s", run->b->new_cp);
  if (repo_writer_set_domain_xml (w, run->keep) == -1)
    return -1;
  repo_writer_set_checkpoint (w, run->b->new_cp);
  repo_writer_get_stats (w, &st);
  st.bytes_read = res->bytes_read;
  st.seconds = now_monotonic () - run->t0;
  repo_writer_set_info (w, res->kind, res->consistency, "backup",
                        res->parent[0] ? res->parent : NULL, &st);
  run->w = NULL;
  return repo_writer_commit (w, m);
}

/* Any error after the writer began: thaw, end the job, delete the new
 * checkpoint, abort the writer (the previous checkpoint stays usable). */
static void
run_fail (struct run *run)
{
  struct ingest_backup *b = run->b;
  ERROR_SAVE (saved);

  if (run->guard_fd != -1) {
    bool thawed = run->frozen && virt_fs_thaw (b->dom) == 0;
    if (run->frozen && !thawed)
      note (b, "warning: guest agent: thaw failed (%s); the thaw guard "
            "retries", virt_failure ());
    guard_stop (run->guard_fd, run->guard_pid, thawed || !run->frozen);
  }
  if (run->job)
    virt_job_abort (b->dom);
  if (run->created)
    delete_checkpoint (b, b->new_cp);
  repo_writer_abort (run->w);
  if (run->owns_dir)
    rm_dir (run->dir);
  b->new_cp[0] = '\0';
  ERROR_RESTORE (saved);
}

int
ingest_backup_run (struct ingest_backup *b, struct repo *r,
                   struct repo_manifest *m, struct backup_result *res)
{
  const struct backup_opts *o = b->o;
  struct run *run = xcalloc (1, sizeof *run);
  int ret = -1;

  run->b = b;
  run->r = r;
  run->res = res;
  run->threads = o->threads > 0 ? o->threads : MAX (2, get_nprocs ());
  run->t0 = now_monotonic ();
  run->guard_fd = -1;
  memset (res, 0, sizeof *res);
  snprintf (res->consistency, sizeof res->consistency, "crash");
  snprintf (b->cp_prefix, sizeof b->cp_prefix, "bootback-%.8s-", repo_uuid (r));
  if (run_inspect (run) == -1 || run_plan (run) == -1)
    goto out;
  run->w = repo_writer_begin (r, o->domain, 0);
  if (!run->w)
    goto out;
  if (run_read (run) == -1 || run_commit (run, m) == -1)
    goto err;
  b->committed = true;
  if (run->owns_dir)
    rm_dir (run->dir);
  ret = 0;
  goto out;

 err:
  run_fail (run);
 out:
  free (run->keep);
  free (run->desc);
  free (run);
  return ret;
}

int
ingest_backup_advance (struct ingest_backup *b)
{
  virDomainCheckpointPtr *cps = NULL;
  int n, i, ret = 0;

  if (!b->committed || !b->new_cp[0])
    return 0;
  crash_step (5);
  n = virt_checkpoint_list (b->dom, &cps);
  if (n < 0)
    return -1;
  /* Oldest first is not required: each is deleted alone. */
  for (i = 0; i < n; i++) {
    const char *name = virDomainCheckpointGetName (cps[i]);
    if (name && strncmp (name, b->cp_prefix, strlen (b->cp_prefix)) == 0 &&
        strcmp (name, b->new_cp) != 0 &&
        drop_checkpoint (b, cps[i]) == -1)
      ret = -1;
  }
  virt_checkpoint_list_free (cps, n);
  return ret;
}

/* ---- --all ------------------------------------------------------------------------------- */

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

char **
ingest_backup_marked_domains (const char *uri)
{
  CLEANUP_VIR_CONNECT virConnectPtr conn = virt_connect (uri);
  virDomainPtr *doms = NULL;
  char **out;
  int n, i, k = 0;

  if (!conn)
    return NULL;
  n = virt_domain_list (conn, &doms);
  if (n < 0)
    return NULL;
  out = xcalloc (n + 1, sizeof *out);
  for (i = 0; i < n; i++) {
    CLEANUP_FREE char *meta = virt_domain_metadata (doms[i], BACKUP_XML_NS);
    if (backup_xml_marked (meta))
      out[k++] = xstrdup (virDomainGetName (doms[i]));
  }
  virt_domain_list_free (doms, n);
  qsort (out, k, sizeof *out, cmp_str);
  error_clear ();
  return out;
}
