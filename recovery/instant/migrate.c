/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Migration of a running instant-recovery session to production storage
 * (the "Quick Migration" of the design), per disk in two steps:
 *  1. pre-copy: qemu-img convert writes the restore point's disk (read from
 *     the session's bootback nbdkit) into the new image, at full speed,
 *     while the guest runs (a file with O_DIRECT where its file system
 *     allows: precopy; every disk's at once);
 *  2. a shallow libvirt block copy (sync=top, reusing that image; transient
 *     job, as a persistent domain requires) mirrors what the guest wrote
 *     into its overlay, and keeps mirroring new writes.
 * The image's content is then the overlay over the backup, exactly the
 * guest's disk.  (One full block copy of everything, o->full_copy, from
 * BOOTBACK_MIGRATE_MODE=full in the CLI, is correct too but about twice as
 * slow: QEMU's mirror runs inside the VM's own process, behind the overlay
 * and the NBD client.)  When every
 * disk's job reported READY through the event loop, each is pivoted, the
 * persistent definition checked (and fixed) to name the new images, and
 * only then the nbdkits stopped and the overlays removed (session.c,
 * invariants 3 and 5).
 *
 * Events: VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2 (disk = target name) delivered by
 * the default event loop running in its own thread; this thread waits on a
 * condition variable and, between events, asks for the jobs' progress
 * (virDomainGetBlockJobInfo) for the progress callback only.
 *
 * Failure of a copy (QEMU stops the mirror on a target write error: full,
 * gone, read-only) or of starting one: every job of this attempt is aborted
 * without pivot, the images it created are removed, the state goes back to
 * running, and the message says why (the target's free space and
 * writability are looked at, since libvirt's event carries no reason).
 *
 * --onto (o->onto): the targets are existing raw disks, and the pre-copy
 * is a delta (delta.c): only the chunks that differ from the point are
 * written, each journaled first.  Such a target is never removed: a
 * failure before its pivot undoes the delta (delta_undo: the disk as it
 * was, byte for byte), a pivot removes its journal (delta_finish).  If
 * the undo itself fails the state stays migrating (no migrate process),
 * so the next reattach tries again.
 *
 * --to rbd:POOL[/PREFIX] (Ceph RBD, recovery/virt/ceph.h): each disk goes
 * to a new raw image PREFIXDOMAIN-DISK in POOL, recorded as
 * "rbd:POOL/IMAGE" (what xml_disk_sources reads back from the live XML).
 * Always pre-copy then shallow copy: qemu-img writes the image through
 * QEMU's rbd driver as the cephx user (conf and keyring by path), then
 * libvirt block-copies onto it as a network disk (<source protocol='rbd'>,
 * the monitors, <auth> with an ephemeral private libvirt secret bootback
 * defines for this run and removes at its end, pivoted or not: the key is
 * never on a command line).  The persistent definition names the image
 * with a secret by usage, "ceph client.ID", which the user defines once
 * for the VM to start again (README).  A failure removes the images this
 * attempt created.  Each image is created by bootback (librbd) and tagged
 * with its session (rbd_owner) before qemu-img writes into it: one left
 * by a killed migrate (the reattach removes files only) is removed by the
 * next migrate of the same session; any other existing image is refused.
 * A full pool (pool_full, asked every 2 s while a copy runs) stops the
 * migration but leaves its copy and image as they are: Ceph holds their
 * writes, and aborting or removing would wait for room (the VM with it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "recovery/instant/instant-int.h"
#include "recovery/virt/ceph.h"
#include "recovery/virt/xml.h"

struct job {
  const char *target;           /* device, e.g. "vda" */
  char dest[4096];
  bool created;                 /* dest made by this attempt */
  bool onto;                    /* dest is an existing disk (delta.c) */
  bool rbd;                     /* dest is rbd:POOL/IMAGE */
  char image[VIRT_RBD_NAME_MAX + 1];  /* rbd: IMAGE */
  int fd;                       /* onto: dest, locked until the delta; -1 */
  bool pinned;                  /* dev, ino: the file dest must stay */
  dev_t dev;                    /* onto: open_onto's; else the pre-copy's */
  ino_t ino;
  const char *format;           /* onto: dest's own (raw, qcow2); else NULL */
  bool started, ready, completed, failed, canceled;
  unsigned long long cur, end;
  pid_t qemu_img;               /* its pre-copy running, 0 if none */
  int qemu_img_out;             /* its output (qemu-img -p) */
};

/* A job's dest is copied whole into its disk's migrated_to. */
_Static_assert (sizeof ((struct job *) 0)->dest ==
                sizeof ((struct instant_session_disk *) 0)->migrated_to,
                "dest and migrated_to differ in size");

struct mctx {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct virt_ceph *ceph;       /* --to rbd: the pool's connection */
  bool held;                    /* the pool is full: Ceph holds the copies'
                                   writes (pool_full), so they are left as
                                   they are */
  unsigned events;              /* block job events so far: a waiter
                                   that let go of the lock after looking
                                   at the jobs waits only if none came
                                   meanwhile (wait_event_since) */
  size_t n;
  struct job jobs[INSTANT_MAX_DISKS];
};

static void
block_job_cb (virConnectPtr c, virDomainPtr d, const char *disk, int type,
              int status, void *opaque)
{
  struct mctx *m = opaque;
  size_t i;

  pthread_mutex_lock (&m->lock);
  for (i = 0; i < m->n; i++) {
    struct job *j = &m->jobs[i];
    if (strcmp (j->target, disk) != 0)
      continue;
    switch (status) {
    case VIR_DOMAIN_BLOCK_JOB_READY: j->ready = true; break;
    case VIR_DOMAIN_BLOCK_JOB_COMPLETED: j->completed = true; break;
    case VIR_DOMAIN_BLOCK_JOB_FAILED: j->failed = true; break;
    case VIR_DOMAIN_BLOCK_JOB_CANCELED: j->canceled = true; break;
    }
  }
  m->events++;
  pthread_cond_broadcast (&m->cond);
  pthread_mutex_unlock (&m->lock);
}

/* Wait for an event or timeout_ms; the lock is held by the caller. */
static void
wait_event (struct mctx *m, int timeout_ms)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_nsec += (long) timeout_ms * 1000000L;
  ts.tv_sec += ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  pthread_cond_timedwait (&m->cond, &m->lock, &ts);
}

/* wait_event, unless an event came since m->events was seen: a caller
 * that unlocked after looking at the jobs (to ask libvirt something)
 * would otherwise sleep through one that came meanwhile (a READY while
 * the progress was asked held the migration for the whole timeout,
 * 250 ms: 6 of 8 migrations measured). */
static void
wait_event_since (struct mctx *m, unsigned seen, int timeout_ms)
{
  if (m->events == seen)
    wait_event (m, timeout_ms);
}

static char *
xml_escape (const char *s)
{
  size_t n = 0;
  const char *p;
  char *out, *q;

  for (p = s; *p; p++)
    n += strchr ("<>&'\"", *p) ? 6 : 1;
  out = q = xmalloc (n + 1);
  for (p = s; *p; p++) {
    switch (*p) {
    case '<': q = stpcpy (q, "&lt;"); break;
    case '>': q = stpcpy (q, "&gt;"); break;
    case '&': q = stpcpy (q, "&amp;"); break;
    case '\'': q = stpcpy (q, "&apos;"); break;
    case '"': q = stpcpy (q, "&quot;"); break;
    default: *q++ = *p;
    }
  }
  *q = '\0';
  return out;
}

/* Why might a copy to dest have failed?  Into buf. */
static void
explain (const char *dest, char *buf, size_t len)
{
  CLEANUP_FREE char *d = xstrdup (dest);
  const char *dir = dirname (d);
  struct statvfs sv;
  char h[32];

  if (virt_is_rbd (dest))
    snprintf (buf, len, "QEMU stopped the copy (the pool full, or the cluster "
              "refused a write; see libvirt's log of the domain)");
  else if (statvfs (dir, &sv) == 0 &&
      (uint64_t) sv.f_bavail * sv.f_frsize < (16ull << 20))
    snprintf (buf, len, "no space left on the target file system (%s free in %s)",
              human_size ((uint64_t) sv.f_bavail * sv.f_frsize, h, sizeof h), dir);
  else if (access (dir, W_OK) == -1)
    snprintf (buf, len, "%s is not writable: %s", dir, strerror (errno));
  else
    snprintf (buf, len, "QEMU stopped the copy (a write or read error; see "
              "libvirt's log of the domain)");
}

/* Abort every started, unpivoted job and wait (10 s at most) for each to
 * end; remove the images of this attempt.  m->lock not held. */
static void
abort_all (virDomainPtr dom, struct mctx *m)
{
  double end = now_monotonic () + 10;
  size_t i;

  if (m->held)
    return;                     /* pool_full: left as they are */
  for (i = 0; i < m->n; i++)
    if (m->jobs[i].started && !m->jobs[i].completed)
      virt_block_job_abort (dom, m->jobs[i].target, false);
  pthread_mutex_lock (&m->lock);
  for (;;) {
    bool busy = false;
    unsigned seen = m->events;
    for (i = 0; i < m->n; i++) {
      struct job *j = &m->jobs[i];
      if (!j->started || j->completed || j->failed || j->canceled)
        continue;
      pthread_mutex_unlock (&m->lock);
      if (virt_block_job_info (dom, j->target, NULL) == 1)
        busy = true;
      pthread_mutex_lock (&m->lock);
    }
    if (!busy || now_monotonic () > end)
      break;
    wait_event_since (m, seen, 100);
  }
  pthread_mutex_unlock (&m->lock);
  for (i = 0; i < m->n; i++)
    if ((m->jobs[i].started || m->jobs[i].created) && !m->jobs[i].completed &&
        !m->jobs[i].onto) {
      if (m->jobs[i].rbd)
        virt_ceph_image_remove (m->ceph, m->jobs[i].image);
      else
        unlink (m->jobs[i].dest);
    }
}

/* One piece of qemu-img -p's output: progress, or a line of its message. */
static void
take_piece (const char *piece, char *msg, size_t msgsize, size_t *mlen,
            const struct instant_migrate_opts *o, uint64_t base,
            uint64_t total, uint64_t size)
{
  const char *pct = strchr (piece, '(');
  size_t n = strlen (piece);

  if (pct && strstr (pct, "/100%)")) {
    if (o->progress && total)
      o->progress (o->progress_opaque,
                   base + (uint64_t) (strtod (pct + 1, NULL) / 100.0 * size),
                   total);
    return;
  }
  if (n == strspn (piece, " ") || *mlen + 2 >= msgsize)
    return;
  n = MIN (n, msgsize - 2 - *mlen);
  memcpy (msg + *mlen, piece, n);
  *mlen += n;
  msg[(*mlen)++] = ' ';
  msg[*mlen] = '\0';
}

/* Can files in dest's directory be written with O_DIRECT (qemu-img -t
 * none)?  Asked of the file system itself with an unnamed file
 * (O_TMPFILE): tmpfs before Linux 6.6 and some FUSE file systems refuse
 * O_DIRECT, NFS refuses O_TMPFILE; either way the answer is no, and the
 * copy goes through the page cache as before. */
static bool
direct_io_ok (const char *dest)
{
  CLEANUP_FREE char *d = xstrdup (dest);
  int fd = open (dirname (d), O_TMPFILE | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);

  if (fd == -1)
    return false;
  close (fd);
  return true;
}

/* --to rbd: is the target pool full?  Asked every 2 s while a copy runs
 * (m->ceph; m NULL or no ceph: nothing to ask).  Ceph holds every write
 * to a full pool: qemu-img would wait for its operation timeout, QEMU's
 * mirror without end, and aborting that mirror (QEMU drains its writes)
 * or removing its image would wait for room in the pool too, the VM
 * stopped meanwhile.  So a full pool sets m->held: nothing of this
 * attempt is aborted or removed (abort_all), the next migrate ends the
 * copy once the pool has room (end_leftover_copies) and replaces the
 * image (rbd_existing).  1 with why; 0 if not, or if the cluster did
 * not say (the copy's own error will). */
static int
pool_full (struct mctx *m, double *next, char *why, size_t len)
{
  if (!m || !m->ceph || now_monotonic () < *next)
    return 0;
  *next = now_monotonic () + 2;
  if (virt_ceph_pool_full (m->ceph, why, len) != 1)
    return 0;
  m->held = true;
  return 1;
}

/* Pre-copy: write the restore point's disk (the overlay's backing, read
 * from the session's bootback nbdkit) to dest with qemu-img convert, at
 * full speed and in parallel with the running guest.  The block copy then
 * only mirrors what the guest wrote (shallow).  Progress from qemu-img -p.
 * A file target is written with O_DIRECT where its file system takes it
 * (-t none): the block copy's mirror flushes the target before it is
 * READY, and with qemu-img's default cache mode that flush waited for
 * the whole image to go from the page cache to the disk after the copy
 * (2 GiB: seconds), and the copy into the page cache was half of
 * qemu-img's CPU; with -t none the disk writes as the copy goes, and
 * qemu-img flushes once at its end.  Writes go out of order (-W): by
 * default qemu-img reads 8 requests of 2 MiB at once but writes them one
 * after the other, in order, each O_DIRECT write waited for before the
 * next; with -W its 8 coroutines write as they read.  The image is the
 * same; a qcow2's clusters are allocated in the order the writes land
 * (pieces of 2 MiB a few places apart; a raw or RBD target: in place).
 * Every disk's pre-copy is started at once (precopy_start) and each
 * waited for in turn (precopy_wait), so that a small disk's copy (the
 * system disk, 0.1 to 0.2 s) runs beside the large one's rather than
 * before it; qemu-img's output is a few hundred bytes, which its pipe
 * holds while another is waited for.  The qemu-img output's fd, -1 with
 * the error. */
static int
precopy_start (const struct instant_session_disk *k, const char *dest, const char *out,
               const char *format, pid_t *pid)
{
  bool reuse = virt_is_rbd (dest);   /* bootback created it */
  CLEANUP_FREE char *src = xasprintf ("nbd+unix:///?socket=%s", k->backend_socket);
  char *argv[16];
  size_t n = 0;

  argv[n++] = "qemu-img";
  argv[n++] = "convert";
  argv[n++] = "-p";
  if (reuse)                         /* into the existing image */
    argv[n++] = "-n";
  else if (direct_io_ok (dest)) {
    argv[n++] = "-t";
    argv[n++] = "none";
  }
  argv[n++] = "-W";
  argv[n++] = "-f";
  argv[n++] = "raw";
  argv[n++] = "-O";
  argv[n++] = (char *) format;
  argv[n++] = src;
  argv[n++] = (char *) out;
  argv[n] = NULL;

  /* Dies with a killed migrate. */
  return spawn_output (argv, SPAWN_DIE_WITH_PARENT, pid);
}

/* Wait for the pre-copy precopy_start started (fd, pid), its progress
 * to o->progress; stop it on cancel or (m: rbd) a full pool.  0, or -1
 * with qemu-img's message. */
static int
precopy_wait (const struct instant_session_disk *k, const char *dest, int fd, pid_t pid,
              const struct instant_migrate_opts *o, struct mctx *m, uint64_t base,
              uint64_t total)
{
  char buf[4096], msg[2048] = "", line[512], full[512] = "";
  double next = 0;
  size_t mlen = 0, llen = 0;
  int status;

  for (;;) {
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    ssize_t r;
    char *p;
    if ((o->cancel && *o->cancel) || (!full[0] && pool_full (m, &next, full, sizeof full)))
      kill (pid, SIGKILL);
    if (poll (&pf, 1, 250) == 0)
      continue;
    r = read (fd, buf, sizeof buf - 1);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    buf[r] = '\0';
    /* Pieces end at \r or \n and may be split across reads: progress
     * pieces "    (12.34/100%)\r" go to o->progress, the rest, qemu-img's
     * message, to msg. */
    for (p = buf; *p; p++) {
      if (*p != '\r' && *p != '\n') {
        if (llen < sizeof line - 1)
          line[llen++] = *p;
        continue;
      }
      line[llen] = '\0';
      take_piece (line, msg, sizeof msg, &mlen, o, base, total, k->size);
      llen = 0;
    }
  }
  line[llen] = '\0';
  take_piece (line, msg, sizeof msg, &mlen, o, base, total, k->size);
  close (fd);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  if (o->cancel && *o->cancel) {
    error_setx ("interrupted");
    return -1;
  }
  if (full[0]) {
    error_setx ("copy of the backup of %s to %s stopped: %s", k->target, dest, full);
    return -1;
  }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    while (mlen && msg[mlen - 1] == ' ')
      msg[--mlen] = '\0';
    error_setx ("copy of the backup of %s to %s: %s", k->target, dest,
                msg[0] ? msg : "qemu-img failed");
    return -1;
  }
  return 0;
}

/* dest = realpath of file's directory + its name (the name itself is
 * not resolved: a symbolic link there is refused by target_free). */
static int
resolve_dest (const char *file, char dest[4096])
{
  CLEANUP_FREE char *d = xstrdup (file);
  char rp[PATH_MAX];

  if (!realpath (dirname (d), rp)) {
    error_set (errno, "target directory of %s", file);
    return -1;
  }
  return path_set (dest, 4096, "%s/%s", rp,
                   strrchr (file, '/') ? strrchr (file, '/') + 1 : file);
}

/* The disk of s an --onto spec names ("TARGET=FILE"), or -1 if it names
 * none (then it is all a file name); *file set. */
static int
onto_disk (const struct instant_session *s, const char *spec, const char **file)
{
  const char *eq = strchr (spec, '=');
  size_t i;

  *file = spec;
  for (i = 0; eq && i < s->ndisks; i++)
    if (strlen (s->disks[i].target) == (size_t) (eq - spec) &&
        strncmp (s->disks[i].target, spec, eq - spec) == 0) {
      *file = eq + 1;
      return (int) i;
    }
  return -1;
}

/* --onto: every disk gets an existing file under directories only root or
 * we can write (the file itself is checked later, when opened). */
static int
plan_onto (const struct instant_session *s, const char *const *onto, struct mctx *m)
{
  size_t i;

  for (i = 0; onto[i]; i++) {
    const char *file;
    int d = onto_disk (s, onto[i], &file);
    if (d < 0 && (s->ndisks != 1 || onto[1])) {
      error_setx ("--onto %s: %s has %zu disks: give --onto DISK=FILE for each "
                  "(disks: %s%s)", onto[i], s->name, s->ndisks, s->disks[0].target,
                  s->ndisks > 1 ? ", ..." : "");
      return -1;
    }
    d = d < 0 ? 0 : d;
    if (m->jobs[d].onto) {
      error_setx ("--onto: disk %s is given twice", s->disks[d].target);
      return -1;
    }
    /* qemu-img, qemu-nbd, undo and the block copy open it by name again */
    if (resolve_dest (file, m->jobs[d].dest) == -1 ||
        dir_chain_private (m->jobs[d].dest, NULL, 0) == -1)
      return -1;
    m->jobs[d].onto = true;
  }
  for (i = 0; i < s->ndisks; i++)
    if (!m->jobs[i].onto) {
      error_setx ("disk %s of %s has no --onto target", s->disks[i].target, s->name);
      return -1;
    }
  return 0;
}

/* What an RBD image made for session s is tagged with: its id, domain and
 * first overlay (under its $BOOTBACK_HOME: another home's session 1 is
 * another session). */
static char *
rbd_owner (const struct instant_session *s)
{
  return xasprintf ("migrate of session %" PRId64 " (%s, domain %s, overlay %s)", s->id,
                    s->name, s->uuid, s->disks[0].overlay);
}

/* An image that is there: refused, unless a killed migrate of this very
 * session left it (then removed).  -1 with the error. */
static int
rbd_existing (const struct instant_session *s, struct mctx *m, const struct job *j)
{
  CLEANUP_FREE char *owner = rbd_owner (s);

  switch (virt_ceph_image_tagged (m->ceph, j->image, owner)) {
  case 1:
    if (virt_ceph_image_remove (m->ceph, j->image) == -1) {
      error_prefix ("%s, left by an interrupted migration of %s", j->dest, s->name);
      return -1;
    }
    return 0;
  case 0:
    error_setx ("%s exists already: bootback does not overwrite images", j->dest);
    return -1;
  default:
    return -1;
  }
}

/* --to rbd:POOL[/PREFIX]: the pool's connection in m->ceph, if the pool
 * has room. */
static int
rbd_connect (const struct instant_migrate_opts *o, const char *format, struct mctx *m)
{
  char pool[VIRT_RBD_NAME_MAX + 1], prefix[VIRT_RBD_NAME_MAX + 1], why[512];
  const struct virt_ceph_opts dflt = { 0 };

  if (virt_rbd_parse (o->to, false, pool, prefix) == -1)
    return -1;
  if (strcmp (format, "raw") != 0) {
    error_setx ("--to %s: RBD images are written raw (--format %s refused)", o->to, format);
    return -1;
  }
  m->ceph = virt_ceph_open (o->ceph ? o->ceph : &dflt, pool);
  if (!m->ceph)
    return -1;
  if (virt_ceph_pool_full (m->ceph, why, sizeof why) == 1) {
    error_setx ("--to %s: %s: nothing can be written to it", o->to, why);
    return -1;
  }
  return 0;
}

/* --to rbd:POOL[/PREFIX] (rbd_connect first): a new raw image
 * PREFIXDOMAIN-DISK per disk. */
static int
plan_rbd (const struct instant_session *s, const struct instant_migrate_opts *o,
          struct mctx *m)
{
  char pool[VIRT_RBD_NAME_MAX + 1], prefix[VIRT_RBD_NAME_MAX + 1];
  size_t i;

  if (virt_rbd_parse (o->to, false, pool, prefix) == -1)
    return -1;
  for (i = 0; i < s->ndisks; i++) {
    struct job *j = &m->jobs[i];
    char p2[VIRT_RBD_NAME_MAX + 1];
    snprintf (j->dest, sizeof j->dest, "rbd:%s/%s%s-%s", pool, prefix, s->name,
              s->disks[i].target);
    if (virt_rbd_parse (j->dest, true, p2, j->image) == -1) {
      error_prefix ("--to %s: the image name of disk %s", o->to, s->disks[i].target);
      return -1;
    }
    j->rbd = true;
    switch (virt_ceph_image_exists (m->ceph, j->image)) {
    case 0: break;
    case 1:
      if (rbd_existing (s, m, j) == -1)
        return -1;
      break;
    default: return -1;
    }
  }
  return 0;
}

/* dest does not exist, not even as a (dangling) symbolic link, under
 * directories only root or we can write (dir_chain_private): nobody else
 * can plant a link there that qemu-img or libvirt would follow when they
 * create the image. */
static int
target_free (const char *dest)
{
  CLEANUP_FREE char *d = xstrdup (dest);
  struct stat st;

  if (lstat (dest, &st) == 0) {
    error_setx ("%s exists already: bootback does not overwrite images", dest);
    return -1;
  }
  if (access (dirname (d), W_OK) == -1) {
    error_set (errno, "target directory %s is not writable", d);
    return -1;
  }
  return dir_chain_private (dest, NULL, 0);
}

static int
plan_targets (const struct instant_session *s, const char *to, const char *format,
              struct mctx *m)
{
  struct stat st;
  size_t i;

  if (stat (to, &st) == 0 && S_ISDIR (st.st_mode)) {
    char rp[PATH_MAX];
    if (!realpath (to, rp)) {
      error_set (errno, "%s", to);
      return -1;
    }
    for (i = 0; i < s->ndisks; i++)
      if (path_set (m->jobs[i].dest, sizeof m->jobs[i].dest, "%s/%s-%s.%s", rp,
                    s->name, s->disks[i].target, format) == -1)
        return -1;
  }
  else {
    if (s->ndisks != 1) {
      error_setx ("%s is not a directory; %s has %zu disks: give a directory",
                  to, s->name, s->ndisks);
      return -1;
    }
    if (resolve_dest (to, m->jobs[0].dest) == -1)
      return -1;
  }
  for (i = 0; i < s->ndisks; i++)
    if (target_free (m->jobs[i].dest) == -1)
      return -1;
  return 0;
}

/* What one step of instant_migrate hands to the next. */
struct migration {
  struct catalog *cat;
  int64_t id;
  const struct instant_migrate_opts *o;
  struct instant_migrate_result *res;
  const char *format;           /* of the new images */
  struct instant_session *s;
  struct mctx *m;               /* the jobs, shared with the event loop */
  virConnectPtr conn;
  virDomainPtr dom;
  struct virt_copy_params params; /* of every block copy */
  struct repo *repo;            /* onto: the point's repository */
  virSecretPtr secret;          /* rbd: the key, for this run only */
  char secret_uuid[VIR_UUID_STRING_BUFLEN];
  int cb;                       /* block job event callback, -1 if none */
  bool migrating;               /* the row says migrating (ours) */
  double t0, t1;                /* copy started, every disk ready */
};

/* How a step after running -> migrating failed: what there is to undo. */
enum undo {
  UNDO_STATE,                   /* nothing started: back to running */
  UNDO_JOBS,                    /* abort the jobs, remove their images */
  UNDO_PARTIAL,                 /* some disks pivoted: abort the rest */
  UNDO_PARTIAL_KEEP,            /* every disk pivoted, the definition not */
};

/* --onto: open (and lock) every target after its checks (delta.c), each
 * a different file.  Nothing is written. */
static int
open_onto (struct migration *mg)
{
  struct mctx *m = mg->m;
  struct stat st[INSTANT_MAX_DISKS];
  size_t i, k;

  for (i = 0; i < m->n; i++) {
    m->jobs[i].fd = delta_target_open (m->jobs[i].dest, mg->o->format, mg->s,
                                       &mg->s->disks[i], mg->conn);
    if (m->jobs[i].fd == -1 || fstat (m->jobs[i].fd, &st[i]) == -1)
      return -1;
    m->jobs[i].format = mg->o->format ? mg->o->format : "raw";
    m->jobs[i].pinned = true;
    m->jobs[i].dev = st[i].st_dev;
    m->jobs[i].ino = st[i].st_ino;
    for (k = 0; k < i; k++)
      if (st[k].st_dev == st[i].st_dev && st[k].st_ino == st[i].st_ino) {
        error_setx ("%s is given for both %s and %s", m->jobs[i].dest,
                    m->jobs[k].target, m->jobs[i].target);
        return -1;
      }
  }
  return 0;
}

/* dest still names the file open_onto checked (--onto) or the pre-copy
 * made.  qemu-img and qemu-nbd (a qcow2 target), libvirt and QEMU (the
 * block copy) open it by name again; the rule on its directories
 * (dir_chain_private) keeps anyone but root and us from renaming another
 * file or a link over it meanwhile, and this catches what slipped through
 * (a rule changed under us) before the pivot makes it the disk.  -1 with
 * the error. */
static int
dest_same (const struct job *j)
{
  struct stat st;

  if (!j->pinned || (lstat (j->dest, &st) == 0 && st.st_dev == j->dev &&
                     st.st_ino == j->ino))
    return 0;
  error_setx ("%s is no longer the file that was checked (renamed or replaced "
              "while migrating): refused; the VM runs on from the backup", j->dest);
  return -1;
}

/* --to: the image the pre-copy made, a regular file (not a link planted
 * before qemu-img created it), is the one dest must name until the pivot. */
static int
pin_dest (struct job *j)
{
  struct stat st;

  if (lstat (j->dest, &st) == -1 || !S_ISREG (st.st_mode)) {
    error_setx ("%s is not the regular file the copy made (replaced while "
                "migrating): refused; the VM runs on from the backup", j->dest);
    return -1;
  }
  j->pinned = true;
  j->dev = st.st_dev;
  j->ino = st.st_ino;
  return 0;
}

/* The Ceph pool disk target's block copy writes to (the live XML's
 * <mirror>), into pool: 1, or 0 if the copy is not to RBD, -1 with the
 * error. */
static int
mirror_pool (virDomainPtr dom, const char *target, char pool[VIRT_RBD_NAME_MAX + 1])
{
  CLEANUP_FREE char *xml = virt_domain_xml (dom, 0);
  CLEANUP_XML_DOC xmlDocPtr doc = xml ? virt_xml_parse (xml, 0, NULL) : NULL;
  CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = doc ? virt_xpath_context (doc, NULL, NULL) : NULL;
  CLEANUP_XPATH_OBJ xmlXPathObjectPtr o =
    ctx ? virt_xpath_eval (ctx, "/domain/devices/disk[mirror]") : NULL;
  char buf[64], name[2 * VIRT_RBD_NAME_MAX + 2];
  size_t i;

  if (!o) {
    error_setx ("the live definition of the domain (its block copies)");
    return -1;
  }
  for (i = 0; i < virt_xpath_count (o); i++) {
    xmlNodePtr d = virt_xpath_node (o, i);
    xmlNodePtr src = virt_xml_child (virt_xml_child (d, "mirror"), "source");
    if (strcmp (virt_xml_attr (virt_xml_child (d, "target"), "dev", buf, sizeof buf),
                target) != 0)
      continue;
    if (strcmp (virt_xml_attr (src, "protocol", buf, sizeof buf), "rbd") != 0)
      return 0;
    virt_xml_attr (src, "name", name, sizeof name);
    snprintf (pool, VIRT_RBD_NAME_MAX + 1, "%.*s", (int) strcspn (name, "/"), name);
    return 1;
  }
  return 0;
}

/* A copy a migrate left on a disk (held by a full pool: pool_full) ends
 * before a new one starts, and only such a copy: one to RBD whose pool
 * can be asked and has room (ending it while Ceph holds its writes would
 * stop the VM), on a session no other migrate has claimed since it was
 * loaded (a copy exists only after its migrate claimed the session:
 * migrate_begin comes before migrate_copy, so reading the session again
 * after seeing the copy tells a live migrate's from a leftover).  Any
 * other copy is refused, as libvirt would.  -1 with the error. */
static int
end_leftover_copies (struct migration *mg)
{
  const struct virt_ceph_opts dflt = { 0 };
  char why[512], pool[VIRT_RBD_NAME_MAX + 1];
  size_t i;

  for (i = 0; i < mg->m->n; i++) {
    const char *target = mg->m->jobs[i].target;
    CLEANUP_FREE struct instant_session *now = xcalloc (1, sizeof *now);
    virDomainBlockJobInfo info;
    struct virt_ceph *c;
    int r;
    if (virt_block_job_info (mg->dom, target, &info) != 1)
      continue;
    if (session_load (mg->cat, mg->id, now) == -1)
      return -1;
    if (now->state != INSTANT_STATE_RUNNING || now->migrate_pid) {
      error_setx ("session %" PRId64 " is being migrated by another process", mg->id);
      return -1;
    }
    r = info.type == VIR_DOMAIN_BLOCK_JOB_TYPE_COPY ? mirror_pool (mg->dom, target, pool) : 0;
    if (r == -1)
      return -1;
    if (r == 0) {
      error_setx ("disk %s has a block job that is no migration's (virsh blockjob %s %s)",
                  target, now->name, target);
      return -1;
    }
    c = virt_ceph_open (mg->o->ceph ? mg->o->ceph : &dflt, pool);
    r = c ? virt_ceph_pool_full (c, why, sizeof why) : -1;
    virt_ceph_close (c);
    if (r != 0) {
      if (r == -1)
        error_prefix ("%s is still being copied to ceph pool %s, which could not be "
                      "asked whether it has room", target, pool);
      else
        error_setx ("%s is still being copied by an earlier migrate whose writes "
                    "Ceph holds: %s", target, why);
      return -1;
    }
    if (virt_block_job_abort_wait (mg->dom, target, 10) == -1)
      return -1;
  }
  return 0;
}

/* Everything that can be checked before anything changes: the format,
 * the session running, the targets free, the domain running. */
static int
migrate_prepare (struct migration *mg)
{
  struct instant_session *s = mg->s;
  size_t i;

  if (strcmp (mg->format, "qcow2") != 0 && strcmp (mg->format, "raw") != 0) {
    error_setx ("--format %s: use qcow2 or raw", mg->format);
    return -1;
  }
  if (session_load (mg->cat, mg->id, s) == -1)
    return -1;
  if (s->state == INSTANT_STATE_MIGRATING && s->migrate_pid == 0) {
    error_setx ("session %" PRId64 " is migrating, not running: %s", mg->id,
                s->message);      /* an --onto undo that has not succeeded */
    return -1;
  }
  if (s->state != INSTANT_STATE_RUNNING) {
    error_setx ("session %" PRId64 " is %s, not running%s", mg->id,
                instant_state_name (s->state),
                s->state == INSTANT_STATE_MIGRATING ? " (a migration is in progress)"
                : "");
    return -1;
  }
  mg->m->n = s->ndisks;
  for (i = 0; i < s->ndisks; i++) {
    mg->m->jobs[i].target = s->disks[i].target;
    mg->m->jobs[i].fd = -1;
  }
  bool rbd = !mg->o->onto && virt_is_rbd (mg->o->to);
  if ((rbd && rbd_connect (mg->o, mg->format, mg->m) == -1) ||
      virt_event_thread_start () == -1)
    return -1;
  mg->conn = virt_connect (mg->o->uri ? mg->o->uri : s->uri);
  if (!mg->conn)
    return -1;
  mg->dom = virt_domain_by_uuid (mg->conn, s->uuid);
  if (!mg->dom || virDomainIsActive (mg->dom) != 1) {
    error_setx ("the domain %s of session %" PRId64 " is not running; start it "
                "(virsh start %s) and migrate again", s->name, mg->id, s->name);
    return -1;
  }
  /* a copy left holding an image the plan may replace ends first */
  if (end_leftover_copies (mg) == -1 ||
      (mg->o->onto ? plan_onto (s, mg->o->onto, mg->m)
       : rbd ? plan_rbd (s, mg->o, mg->m)
       : plan_targets (s, mg->o->to, mg->format, mg->m)) == -1)
    return -1;
  return mg->o->onto ? open_onto (mg) : 0;
}

/* running -> migrating (invariant 4); the targets recorded first, so a
 * reattach after this process dies can remove them. */
static int
migrate_begin (struct migration *mg)
{
  struct instant_session *s = mg->s;
  size_t i;
  int r;

  for (i = 0; i < s->ndisks; i++) {
    memcpy (s->disks[i].migrated_to, mg->m->jobs[i].dest, sizeof mg->m->jobs[i].dest);
    s->disks[i].onto = mg->m->jobs[i].onto;
  }
  s->migrate_pid = getpid ();
  /* The host it acts on, for a recovery after this process dies. */
  text_set (s->migrate_uri, sizeof s->migrate_uri, "%s", mg->o->uri ? mg->o->uri : "");
  if (session_set_state (s, INSTANT_STATE_MIGRATING) == -1)
    return -1;
  s->message[0] = '\0';
  r = session_save (mg->cat, s, instant_state_name (INSTANT_STATE_RUNNING));
  if (r != 0) {
    if (r == 1)
      error_setx ("session %" PRId64 " is no longer running (another command "
                  "changed it)", mg->id);
    return -1;
  }
  mg->migrating = true;
  return 0;
}

/* --onto: the delta of disk i onto its existing target (delta.c), then
 * the target's lock is let go for QEMU.  -1 with the error. */
static int
delta_one (struct migration *mg, size_t i, uint64_t base, uint64_t total)
{
  struct job *j = &mg->m->jobs[i];
  const struct instant_session_disk *k = &mg->s->disks[i];
  CLEANUP_FREE struct repo_manifest *mf = xcalloc (1, sizeof *mf);
  struct delta_opts o = {
    .progress = mg->o->progress, .progress_opaque = mg->o->progress_opaque,
    .base = base, .total = total, .cancel = mg->o->cancel,
    /* The point's checkpoint: its bitmap in a qcow2 target (delta-qcow2.c). */
    .checkpoint = mf->checkpoint, .point = mg->s->point,
    .qcow2 = strcmp (j->format, "qcow2") == 0,    /* open_onto's, the user's */
    .size = k->size,
  };
  struct delta_stats st = { 0 };
  struct repo_disk *d = NULL;
  int r;

  if (!mg->repo)
    mg->repo = repo_open_with (mg->s->repo, mg->o->repo_open);
  /* the manifest read once: for the disk and for its checkpoint */
  if (mg->repo && repo_manifest_read (mg->repo, mg->s->vm, mg->s->point, mf) == 0)
    d = repo_disk_open_m (mg->repo, mf, k->name);
  if (!d)
    return -1;
  r = delta_apply (mg->repo, d, j->fd, j->dest, &o, &st);
  snprintf (mg->res->delta_how[i], sizeof mg->res->delta_how[i], "%s", st.how);
  mg->res->delta_hashed += st.hashed;
  mg->res->delta_written_disk[i] = st.written;
  repo_disk_close (d);
  mg->res->delta_chunks += st.chunks;
  mg->res->delta_written += st.written;
  mg->res->seconds_delta += st.seconds;
  mg->res->seconds_hash += st.seconds_scan;
  close (j->fd);
  j->fd = -1;
  return r;
}

/* rbd: the image of disk i, created and tagged as this session's. */
static int
rbd_create (struct migration *mg, struct job *j, size_t i)
{
  CLEANUP_FREE char *owner = rbd_owner (mg->s);

  if (virt_ceph_image_create (mg->m->ceph, j->image, mg->s->disks[i].size) == -1)
    return -1;
  j->created = true;
  return virt_ceph_image_tag (mg->m->ceph, j->image, owner);
}

/* Start disk i's pre-copy (its rbd image created first).  -1 with the
 * error. */
static int
migrate_precopy_start (struct migration *mg, size_t i)
{
  struct job *j = &mg->m->jobs[i];
  CLEANUP_FREE char *out = j->rbd ? virt_ceph_qemu_name (mg->m->ceph, j->image)
                                  : xstrdup (j->dest);
  pid_t pid;
  int fd;

  if (!out)
    return -1;
  if (j->rbd && rbd_create (mg, j, i) == -1)
    return -1;
  j->created = true;
  fd = precopy_start (&mg->s->disks[i], j->dest, out, mg->format, &pid);
  if (fd == -1)
    return -1;
  j->qemu_img = pid;
  j->qemu_img_out = fd;
  return 0;
}

/* Kill and reap every pre-copy still running (a failure or cancel of
 * another disk's copy): before abort_all removes their images. */
static void
migrate_precopy_stop (struct migration *mg)
{
  size_t i;

  for (i = 0; i < mg->m->n; i++) {
    struct job *j = &mg->m->jobs[i];
    if (!j->qemu_img)
      continue;
    kill (j->qemu_img, SIGKILL);
    close (j->qemu_img_out);
    while (waitpid (j->qemu_img, NULL, 0) == -1 && errno == EINTR)
      ;
    j->qemu_img = 0;
  }
}

/* Finish disk i's copy: wait for its pre-copy (migrate_precopy_start;
 * none if full), or make the delta (onto), then start the block copy.
 * -1 with the error. */
static int
migrate_start_job (struct migration *mg, size_t i, bool full, uint64_t *base,
                   uint64_t total)
{
  struct job *j = &mg->m->jobs[i];
  CLEANUP_FREE char *esc = xml_escape (j->dest);
  CLEANUP_FREE char *dxml = j->rbd
    ? virt_ceph_disk_xml (mg->m->ceph, j->image, "raw", mg->secret_uuid, NULL)
    : xasprintf ("<disk type='file'><driver type='%s'/><source file='%s'/></disk>",
                 j->format ? j->format : mg->format, esc);
  unsigned flags = VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB;
  char why[1024];
  pid_t pid = j->qemu_img;

  if (!dxml)
    return -1;

  if (j->onto) {
    if (delta_one (mg, i, *base, total) == -1 || dest_same (j) == -1)
      return -1;
    *base += mg->s->disks[i].size;
    flags |= VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT;
  }
  else if (!full) {
    j->qemu_img = 0;                    /* reaped by precopy_wait */
    if (precopy_wait (&mg->s->disks[i], j->dest, j->qemu_img_out, pid, mg->o,
                      j->rbd ? mg->m : NULL, *base, total) == -1) {
      if (strcmp (error_msg (), "interrupted") != 0 &&
          (error_errno () == ENOSPC || strstr (error_msg (), "space"))) {
        explain (j->dest, why, sizeof why);
        error_prefix ("%s", why);
      }
      return -1;
    }
    if (!j->rbd && pin_dest (j) == -1)
      return -1;
    *base += mg->s->disks[i].size;
    flags |= VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT;
  }
  if (virt_block_copy (mg->dom, j->target, dxml, &mg->params, flags) == -1) {
    snprintf (why, sizeof why, "%s", virt_failure ());
    error_setx ("block copy of %s to %s: %s", j->target, j->dest, why);
    if (!j->onto && (j->rbd || access (j->dest, F_OK) == 0))
      j->created = true;        /* so abort_all removes what libvirt made */
    return -1;
  }
  j->created = !j->onto;
  j->started = true;
  return j->rbd || j->pinned ? 0 : pin_dest (j);     /* full: libvirt made it */
}

/* Copy: the backup at full speed with qemu-img, then a shallow block
 * copy of the guest's writes on top (o->full_copy: one block copy of
 * everything, as before, slower: QEMU's mirror inside the
 * running VM's process). */
static int
migrate_copy (struct migration *mg)
{
  /* libvirt creates no RBD image: always the pre-copy then. */
  bool full = mg->o->full_copy && !mg->o->onto && !mg->m->ceph;
  uint64_t total = 0, base = 0;
  size_t i;

  if (mg->m->ceph) {
    mg->secret = virt_ceph_secret (mg->conn, mg->m->ceph, mg->secret_uuid);
    if (!mg->secret)
      return -1;
  }

  /* The mirror's granularity and buffer (0 leaves QEMU's default) and a
   * bandwidth limit (bytes/s, 0: none; for tests). */
  mg->params.granularity = mg->o->granularity;
  mg->params.buf_size = mg->o->buf_size;
  mg->params.bandwidth = mg->o->bandwidth;
  mg->t0 = now_monotonic ();
  for (i = 0; i < mg->s->ndisks; i++)
    total += mg->s->disks[i].size;
  for (i = 0; i < mg->m->n; i++)
    if (!full && !mg->m->jobs[i].onto && migrate_precopy_start (mg, i) == -1)
      goto err;
  for (i = 0; i < mg->m->n; i++)
    if (migrate_start_job (mg, i, full, &base, total) == -1)
      goto err;
  return 0;
 err:
  migrate_precopy_stop (mg);
  return -1;
}

/* The jobs' progress for the callback, between events (lock not held). */
static void
report_progress (struct migration *mg)
{
  struct mctx *m = mg->m;
  uint64_t done = 0, total = 0;
  size_t i;

  for (i = 0; i < m->n; i++) {
    virDomainBlockJobInfo info;
    if (virt_block_job_info (mg->dom, m->jobs[i].target, &info) == 1) {
      m->jobs[i].cur = info.cur;
      m->jobs[i].end = info.end;
    }
    done += m->jobs[i].cur;
    total += m->jobs[i].end;
  }
  if (mg->o->progress && total)
    mg->o->progress (mg->o->progress_opaque, done, total);
}

/* Wait until every job is READY (or one ended, or cancel).  -1 with the
 * reason if it is not. */
static int
migrate_wait_ready (struct migration *mg)
{
  const struct instant_migrate_opts *o = mg->o;
  struct mctx *m = mg->m;
  char why[1024], full[512] = "";
  double next = 0;
  unsigned seen;
  size_t i;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->lock);
  for (;;) {
    bool all_ready = true, failed = false;
    for (i = 0; i < m->n; i++) {
      struct job *j = &m->jobs[i];
      if (j->failed || j->canceled || j->completed)
        failed = true;
      if (!j->ready)
        all_ready = false;
    }
    if (failed || all_ready || (o->cancel && *o->cancel) || full[0])
      break;
    seen = m->events;
    pthread_mutex_unlock (&m->lock);
    report_progress (mg);
    pool_full (m, &next, full, sizeof full);
    pthread_mutex_lock (&m->lock);
    wait_event_since (m, seen, 250);
  }
  if (o->cancel && *o->cancel) {
    error_setx ("interrupted");
    return -1;
  }
  if (full[0]) {
    error_setx ("block copy to %s stopped: %s", o->to, full);
    return -1;
  }
  for (i = 0; i < m->n; i++) {
    struct job *j = &m->jobs[i];
    if (j->failed || j->canceled || j->completed) {
      explain (j->dest, why, sizeof why);
      error_setx ("block copy of %s to %s %s: %s", j->target, j->dest,
                  j->canceled ? "was cancelled" : "failed", why);
      return -1;
    }
  }
  return 0;
}

/* Every job READY: the copy's time and size. */
static void
migrate_copied (struct migration *mg)
{
  struct instant_migrate_result *res = mg->res;
  size_t i;

  mg->t1 = now_monotonic ();
  res->seconds_copy = mg->t1 - mg->t0;
  for (i = 0; i < mg->m->n; i++) {
    virDomainBlockJobInfo info;
    if (virt_block_job_info (mg->dom, mg->m->jobs[i].target, &info) == 1)
      mg->m->jobs[i].end = info.end;
    res->bytes += mg->m->jobs[i].end;
  }
  if (mg->o->progress)
    mg->o->progress (mg->o->progress_opaque, res->bytes, res->bytes);
}

/* Pivot job i and wait (60 s at most) for its COMPLETED event.  -1 with
 * the error. */
static int
pivot_one (struct migration *mg, size_t i)
{
  struct mctx *m = mg->m;
  struct job *j = &m->jobs[i];
  double end;
  bool completed;
  char why[1024];

  if (virt_block_job_abort (mg->dom, j->target, true) == -1) {
    snprintf (why, sizeof why, "%s", virt_failure ());
    error_setx ("pivot of %s to %s: %s", j->target, j->dest, why);
    return -1;
  }
  end = now_monotonic () + 60;
  pthread_mutex_lock (&m->lock);
  while (!j->completed && !j->failed && !j->canceled && now_monotonic () < end)
    wait_event (m, 100);
  completed = j->completed;
  pthread_mutex_unlock (&m->lock);
  if (!completed) {
    error_setx ("pivot of %s to %s did not complete", j->target, j->dest);
    return -1;
  }
  return 0;
}

/* Pivot, disk by disk; each ends with a COMPLETED event.  -1 with *undo
 * set to what the failure leaves: the jobs if no disk pivoted yet, a
 * partial migration if some did. */
static int
migrate_pivot (struct migration *mg, enum undo *undo)
{
  struct instant_migrate_result *res = mg->res;
  size_t i;

  for (i = 0; i < mg->m->n; i++)
    if (dest_same (&mg->m->jobs[i]) == -1) {
      *undo = UNDO_JOBS;
      return -1;
    }
  for (i = 0; i < mg->m->n; i++) {
    struct job *j = &mg->m->jobs[i];
    if (pivot_one (mg, i) == -1) {
      *undo = i == 0 ? UNDO_JOBS : UNDO_PARTIAL;
      return -1;
    }
    memcpy (mg->s->disks[i].migrated_to, j->dest, sizeof j->dest);
    if (j->onto && delta_finish (j->dest) == -1) {
      struct instant_caller w = { mg->o->warn, mg->o->warn_opaque, NULL };
      session_warn (&w, "%s (the disk pivoted; remove it)", error_msg ());
    }
  }
  res->seconds_pivot = now_monotonic () - mg->t1;
  /* What now lives on production storage. */
  res->bytes = 0;
  for (i = 0; i < mg->m->n; i++) {
    struct stat st;
    if (mg->m->jobs[i].rbd)
      res->bytes += mg->s->disks[i].size;
    else if (stat (mg->m->jobs[i].dest, &st) == 0)
      res->bytes += (uint64_t) st.st_blocks * 512;
  }
  return 0;
}

/* The definition xml with disk j on its RBD image, the key by usage. */
static char *
rbd_set_disk (struct migration *mg, const char *x, const struct job *j)
{
  CLEANUP_FREE char *usage = xasprintf ("ceph client.%s", mg->o->ceph && mg->o->ceph->id
                                        ? mg->o->ceph->id : "admin");
  CLEANUP_FREE char *d = virt_ceph_disk_xml (mg->m->ceph, j->image, "raw", NULL, usage);

  return d ? virt_xml_disk_replace (x, j->target, d) : NULL;
}

/* The persistent definition must name the new images. */
static int
migrate_fix_definition (struct migration *mg)
{
  struct instant_session *s = mg->s;
  CLEANUP_FREE char *x = NULL;
  bool changed = false;
  size_t i;

  if (s->transient || virDomainIsPersistent (mg->dom) != 1)
    return 0;
  x = virt_domain_xml (mg->dom, VIR_DOMAIN_XML_INACTIVE);
  for (i = 0; x && i < mg->m->n; i++) {
    struct job *j = &mg->m->jobs[i];
    char *y;
    if (xml_disk_source_is (x, j->target, j->dest) == 1)
      continue;
    y = j->rbd ? rbd_set_disk (mg, x, j)
      : instant_xml_set_disk (x, j->target, j->dest, j->format ? j->format : mg->format);
    free (x);
    x = y;
    changed = true;
  }
  if (!x) {
    error_prefix ("every disk pivoted, but the persistent definition of %s "
                  "could not be updated", s->name);
    return -1;
  }
  if (changed) {
    virDomainPtr d2 = virt_domain_define_xml (mg->conn, x, s->name);
    char why[1024];
    if (!d2) {
      snprintf (why, sizeof why, "%s", virt_failure ());
      error_setx ("every disk pivoted, but redefining %s failed: %s", s->name, why);
      return -1;
    }
    virDomainFree (d2);
  }
  return 0;
}

/* Only now: nbdkit and the overlays go (invariant 3), and the point's
 * hold (invariant 8).  State migrated. */
static void
migrate_finish (struct migration *mg)
{
  struct instant_session *s = mg->s;
  size_t i;

  supervisor_stop (s);
  {
    struct instant_caller w = { mg->o->warn, mg->o->warn_opaque, mg->o->repo_open };
    session_release_hold (s, &w);
  }
  for (i = 0; i < s->ndisks; i++) {
    if (s->disks[i].overlay[0])
      unlink (s->disks[i].overlay);
    s->disks[i].overlay[0] = '\0';
  }
  session_set_state (s, INSTANT_STATE_MIGRATED);
  text_set (s->message, sizeof s->message, "migrated to %s in %.1f s (copy) + "
            "%.2f s (pivot)", mg->m->jobs[0].dest, mg->res->seconds_copy,
            mg->res->seconds_pivot);
  s->migrate_pid = 0;
  session_save (mg->cat, s, NULL);
}

/* --onto: every target not pivoted gets its content from before back
 * (the jobs aborted first).  If that fails the state stays migrating with
 * no migrate process, so the next reattach tries again; -1 then, the
 * error saying both. */
static int
undo_onto (struct migration *mg, const char *why)
{
  struct instant_session *s = mg->s;
  size_t i;

  for (i = 0; i < mg->m->n; i++) {
    struct job *j = &mg->m->jobs[i];
    if (!j->onto || j->completed)
      continue;
    /* QEMU must have let go of it (abort_all waits 10 s at most). */
    if (j->started && virt_block_job_info (mg->dom, j->target, NULL) != 0)
      error_setx ("the block job of %s did not end; %s stays as the delta left it",
                  j->target, j->dest);
    else if (delta_undo (j->dest, s, &s->disks[i], mg->o->repo_open) == 0)
      continue;
    text_set (s->message, sizeof s->message, "migration failed: %s; then %s; "
              "the VM runs from the backup, the next `bootback sessions` "
              "tries again", why, error_msg ());
    s->migrate_pid = 0;
    session_save (mg->cat, s, NULL);
    error_restore (error_errno (), s->message);
    return -1;
  }
  return 0;
}

/* What a full pool left (pool_full), for the session's message. */
static const char *
held_note (const struct mctx *m)
{
  size_t i;

  if (!m->held)
    return "";
  for (i = 0; i < m->n; i++)
    if (m->jobs[i].started && !m->jobs[i].completed)
      return "; the copy to the full pool is left to Ceph, which holds its "
        "writes (ending it now would stop the VM until the pool has room): "
        "give the pool room, then migrate again";
  return "; the image is left in the full pool (removing it waits for room "
    "there): the next migrate replaces it";
}

/* A failure after running -> migrating: undo what undo says, back to
 * running with a message; the error stays (as that message for a failed
 * copy). */
static void
migrate_undo (struct migration *mg, enum undo undo)
{
  struct instant_session *s = mg->s;
  size_t i;

  ERROR_SAVE (e);
  if (undo == UNDO_PARTIAL || undo == UNDO_PARTIAL_KEEP) {
    /* Some disks pivoted, others not: the VM needs both the production
     * images and the backup now.  Abort what is left; keep nbdkit and
     * overlays. */
    if (undo == UNDO_PARTIAL) {
      abort_all (mg->dom, mg->m);
      if (undo_onto (mg, e_msg) == -1)
        return;
      for (i = 0; i < mg->m->n; i++)
        if (!mg->m->jobs[i].completed)
          s->disks[i].migrated_to[0] = '\0';
    }
    session_set_state (s, INSTANT_STATE_RUNNING);
    text_set (s->message, sizeof s->message, "partly migrated: %s", e_msg);
    s->migrate_pid = 0;
    session_save (mg->cat, s, NULL);
    ERROR_RESTORE (e);
    return;
  }
  if (undo == UNDO_JOBS)
    abort_all (mg->dom, mg->m);
  if (undo_onto (mg, e_msg) == -1)
    return;
  for (i = 0; i < s->ndisks; i++)
    s->disks[i].migrated_to[0] = '\0';
  session_set_state (s, INSTANT_STATE_RUNNING);
  text_set (s->message, sizeof s->message, "migration failed: %s; the VM runs "
            "from the backup, nothing was lost%s%s", e_msg,
            mg->o->onto ? " (every --onto disk is as it was)" : "",
            held_note (mg->m));
  s->migrate_pid = 0;
  session_save (mg->cat, s, NULL);
  error_restore (e_errno, s->message);
}

/* From migrating to migrated, or -1 with what is left to undo. */
static int
migrate_run (struct migration *mg, enum undo *undo)
{
  *undo = UNDO_STATE;
  mg->cb = virt_block_job_events (mg->conn, mg->dom, block_job_cb, mg->m);
  if (mg->cb < 0)
    return -1;
  *undo = UNDO_JOBS;
  if (migrate_copy (mg) == -1 || migrate_wait_ready (mg) == -1)
    return -1;
  migrate_copied (mg);
  if (migrate_pivot (mg, undo) == -1)
    return -1;
  *undo = UNDO_PARTIAL_KEEP;
  if (migrate_fix_definition (mg) == -1)
    return -1;
  migrate_finish (mg);
  return 0;
}

int
instant_migrate (struct catalog *cat, int64_t id,
                 const struct instant_migrate_opts *o,
                 struct instant_migrate_result *res)
{
  struct migration mg = {
    .cat = cat, .id = id, .o = o, .res = res, .cb = -1,
    .format = o->format ? o->format : o->onto || virt_is_rbd (o->to) ? "raw" : "qcow2",
    .s = xmalloc (sizeof *mg.s), .m = xcalloc (1, sizeof *mg.m),
  };
  enum undo undo;
  size_t i;
  int ret = -1;

  pthread_mutex_init (&mg.m->lock, NULL);
  pthread_cond_init (&mg.m->cond, NULL);
  memset (res, 0, sizeof *res);
  /* A remote session's disks go to the host's pool (remote-migrate.c). */
  if (session_load (cat, id, mg.s) == 0 && session_remote (mg.s))
    ret = remote_migrate (cat, mg.s, o, res);
  else if (migrate_prepare (&mg) == 0 && migrate_begin (&mg) == 0) {
    ret = migrate_run (&mg, &undo);
    if (ret == -1)
      migrate_undo (&mg, undo);
  }
  for (i = 0; i < mg.m->n; i++)
    if (mg.m->jobs[i].fd >= 0)
      close (mg.m->jobs[i].fd);
  repo_close (mg.repo);
  virt_ceph_secret_remove (mg.secret);
  virt_ceph_close (mg.m->ceph);
  virt_events_deregister (mg.conn, mg.cb);
  if (mg.dom)
    virDomainFree (mg.dom);
  virt_close (mg.conn);
  pthread_mutex_destroy (&mg.m->lock);
  pthread_cond_destroy (&mg.m->cond);
  free (mg.m);
  free (mg.s);
  return ret;
}
