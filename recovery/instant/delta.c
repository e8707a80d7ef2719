/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Delta migrate-back: `bootback migrate SESSION --onto EXISTING`.  After an
 * outage the production disk often survives, only stale.  Instead of the
 * pre-copy of the whole point (migrate.c), the existing disk is compared
 * chunk by chunk with the point's fixed index; only the chunks that differ
 * are written, with the point's content read through the library
 * (repo_disk_pread: every chunk checked, as every read is).  Then
 * migrate.c's shallow block copy mirrors what the guest wrote since boot
 * onto it and pivots as always.
 *
 * A raw disk is read and written as a file.  A qcow2 is read and written
 * through a private read-write qemu-nbd (delta-qcow2.c; QEMU's image
 * locks replace the OFD lock below), and when it holds the dirty bitmap
 * of the point's checkpoint (usable: enabled, consistent), the chunks the
 * bitmap leaves clean are not looked at (bitmap_plan), but for a random
 * sample of them (SAMPLE_MIN, or 1 %), compared with the dirty ones in the
 * same scan; if one of them differs, the others are compared too
 * (bitmap_check: a bitmap that lies is said, never trusted).  The bitmap
 * is read once, before anything is written (the delta's own writes mark
 * it too).
 *
 * Comparing costs what must be hashed, so as little is: the file's
 * extents are walked once (SEEK_DATA/SEEK_HOLE); a chunk wholly in a hole
 * is zeros, equal to a zero chunk of the point and different from any
 * other, and is never read.  A chunk holding data is mapped (no copy out
 * of the page cache; a SIGBUS, an I/O error under the mapping, falls back
 * to pread, whose error names it) and found zero (is_zero), or data over
 * a zero chunk of the point (different, unhashed), or else hashed with
 * the repository's own chunk name (repo_chunk_digest: SHA-256 of the
 * frames' SHA-256s, keyed with HMAC in an encrypted repository) and
 * compared.  Two passes, each on two worker threads (both cores, taking
 * chunks in order, reading 16 chunks ahead for a cold disk): compare, and
 * journal the old content of each chunk that differs as it is found
 * (SHA-256 of the data is the bound; nothing written to the target); then,
 * once the journal is committed, write them (a zero chunk of the point as
 * a punched hole where the file system can).
 *
 * Undo journal.  Beside the target, named after it, DIR/.NAME.bootback-undo
 * (0600, O_EXCL, O_NOFOLLOW), host byte order (it never leaves the host):
 *
 *   header  128 bytes: "BBUNDO01", version, chunk size, disk size, the
 *           target's st_dev and st_ino, SHA-256 of the first 96 bytes
 *   commit  64 bytes, zeros until the record WRITING is written there
 *           once, its offset field the end of the CHUNK records: every
 *           one is durable, the target may be written
 *   records 64 bytes each: "BBUNDOR1", kind, length, offset, SHA-256 of
 *           the data, 8 bytes of the SHA-256 of the first 56; then, for
 *           kind CHUNK, the chunk's old content (length bytes); after the
 *           CHUNKs, MIRROR (no data): the delta is complete and durable,
 *           the block copy may write.
 *
 * Invariants:
 *  1. Nothing is written to a target before every check passed (a regular
 *     file, not a symbolic link, raw: no image header, the disk's size, not
 *     the session's own file, used by no libvirt domain, no other process
 *     holding a lock on it, no journal beside it) and its journal exists
 *     with its header, fsync'd, its directory fsync'd.  The target is held
 *     with an OFD write lock (QEMU's image locks conflict with it) until
 *     the block copy needs it.
 *  2. Every chunk the delta writes has its old content in the journal,
 *     fsync'd, and then the commit WRITING, fsync'd, before the first byte
 *     is written to the target; a delta writes a chunk at most once.  (A
 *     journal without a valid commit: nothing was written, undo only
 *     removes it.)
 *  3. A chunk that is not in the journal had the point's content when the
 *     delta read it (the same digest, or zeros where the point's is zero).
 *  4. The MIRROR record is appended (fsync'd) after the delta is complete
 *     and the target fsync'd, and before the block copy starts: from then
 *     on QEMU may write any chunk.
 *  5. Undo (delta_undo): if MIRROR is there, every chunk not in the
 *     journal is made the point's again (by 3, its original content);
 *     then every journaled chunk gets its old content back; fsync; the
 *     journal is removed.  The result is the original disk byte for byte.
 *     Undo is idempotent (its writes are all of original content), so a
 *     crash during undo is undone again.  A torn record can only be one
 *     whose fsync never returned: the commit (nothing written) or MIRROR
 *     (the block copy never started); it is ignored.  Any other invalid
 *     record before the commit's end is damage: undo refuses.
 *  6. The journal is removed only after an undo completed or after the
 *     disk's pivot completed (delta_finish), and never played back onto a
 *     file that is not the one it was made for (st_dev, st_ino) or that a
 *     domain runs from (the callers check the live XML first), nor played
 *     back if it is not bootback's own (a regular file of this user, 0600:
 *     the target's directory may have become writable by others since
 *     plan_onto checked it).
 *
 * For a qcow2 the same holds of its content (what QEMU reads from it):
 * every write of the delta and of undo goes through qemu-nbd, and "fsync"
 * is an NBD flush (QEMU flushes the qcow2's data and metadata); qemu-nbd
 * is stopped (it closes the image) before MIRROR and before the block copy
 * opens the file, and started again for undo.  The journal's header says
 * qcow2 (and undo then checks the virtual size, not the file's).  A chunk
 * the bitmap called clean is not journaled and not written: invariant 3
 * holds for it by the bitmap, checked on the sample.
 *
 * So a failure leaves the existing disk either untouched (undo) or, once
 * pivoted, the guest's disk; never a mix.  Where a crash is recovered:
 * migrate.c undoes every failure before the pivot at once; a killed
 * migrate is undone by the next reattach (every `bootback sessions`,
 * `instant`, `migrate`) or by `instant stop` of the session (session.c,
 * recover_migration).
 *
 * Test hook BOOTBACK_DELTA_TEST: "crash@N" kills the process (SIGKILL)
 * after the Nth chunk written, "stall@N" waits there until cancelled.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <libnbd.h>
#include <sys/random.h>

#include "recovery/instant/instant-int.h"

#define JOURNAL_SUFFIX ".bootback-undo"
#define HDR_MAGIC "BBUNDO01"
#define REC_MAGIC "BBUNDOR1"
#define MAGIC_LEN 8
#define HDR_LEN 128
#define HDR_CHECKED 96
#define COMMIT_POS HDR_LEN
#define RECORDS_POS (HDR_LEN + REC_LEN)
#define REC_LEN 64
#define REC_CHECKED 56
enum { REC_CHUNK = 1, REC_MIRROR = 2, REC_WRITING = 3 };

struct jheader {
  char magic[MAGIC_LEN];
  uint32_t version, chunk_size;
  uint64_t size, dev, ino;
  uint32_t qcow2;               /* 1: a qcow2 target (0 in older journals) */
  uint8_t reserved[HDR_CHECKED - 44];
  uint8_t check[REPO_DIGEST_LEN];
};
_Static_assert (sizeof (struct jheader) == HDR_LEN, "journal header size");

struct jrecord {
  char magic[MAGIC_LEN];
  uint32_t kind, len;
  uint64_t offset;
  uint8_t data_sha[REPO_DIGEST_LEN];
  uint8_t check[REC_LEN - REC_CHECKED];
};
_Static_assert (sizeof (struct jrecord) == REC_LEN, "journal record size");

int
delta_journal_path (const char *target, char *buf, size_t len)
{
  CLEANUP_FREE char *d = xstrdup (target), *b = xstrdup (target);

  return path_set (buf, len, "%s/.%s" JOURNAL_SUFFIX, dirname (d), basename (b));
}

/* fsync the directory holding path.  -1 with the error. */
static int
sync_dir_of (const char *path)
{
  CLEANUP_FREE char *d = xstrdup (path);
  const char *dir = dirname (d);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd == -1 || fsync (fd) == -1) {
    error_set (errno, "fsync: %s", dir);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  close (fd);
  return 0;
}

/* pread/pwrite all of len, or -1 with the error naming path. */
static int
full_io (bool write, int fd, void *buf, size_t len, uint64_t off, const char *path)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = write ? pwrite (fd, (char *) buf + done, len - done, off + done)
      : pread (fd, (char *) buf + done, len - done, off + done);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0) {
      error_set (r == 0 ? EIO : errno, "%s %s at byte %" PRIu64,
                 write ? "write" : "read", path, off + done);
      return -1;
    }
    done += r;
  }
  return 0;
}

/* ---- the target's checks -------------------------------------------------- */

/* An image format's signature at the start of fd's file, or NULL (raw). */
static const char *
image_format (int fd)
{
  static const struct { size_t off; const char *magic; size_t len; const char *name; }
  sig[] = {
    { 0, "QFI\xfb", 4, "qcow2" }, { 0, "QED\0", 4, "qed" },
    { 0, "KDMV", 4, "vmdk" }, { 0, "# Disk DescriptorFile", 21, "vmdk" },
    { 0, "vhdxfile", 8, "vhdx" }, { 0, "conectix", 8, "vpc" },
    { 0x40, "\x7f\x10\xda\xbe", 4, "vdi" }, { 0, "LUKS\xba\xbe", 6, "luks" },
  };
  uint8_t buf[512] = { 0 };
  size_t i;

  if (pread (fd, buf, sizeof buf, 0) < 0)
    return NULL;
  for (i = 0; i < sizeof sig / sizeof sig[0]; i++)
    if (memcmp (buf + sig[i].off, sig[i].magic, sig[i].len) == 0)
      return sig[i].name;
  return NULL;
}

/* Is the file (dev, ino) the top-level disk of a domain libvirt has (live
 * or persistent definition)?  1 and its name and disk in why, 0, -1. */
static int
used_by_domain (virConnectPtr conn, const struct stat *st, char *why, size_t len)
{
  virDomainPtr *doms = NULL;
  int n = virt_domain_list (conn, &doms), i, found = 0;

  if (n < 0)
    return -1;
  for (i = 0; i < n && !found; i++) {
    unsigned fl[] = { 0, VIR_DOMAIN_XML_INACTIVE };
    size_t f;
    for (f = 0; f < 2 && !found; f++) {
      CLEANUP_FREE char *x = virt_domain_xml (doms[i], fl[f]);
      CLEANUP_STRV char **targets = NULL, **sources = NULL;
      int k, nd = x ? xml_disk_sources (x, &targets, &sources) : -1;
      struct stat s2;
      for (k = 0; k < nd && !found; k++)
        if (sources[k][0] == '/' && stat (sources[k], &s2) == 0 &&
            s2.st_dev == st->st_dev && s2.st_ino == st->st_ino) {
          snprintf (why, len, "domain %s (disk %s)", virDomainGetName (doms[i]),
                    targets[k]);
          found = 1;
        }
    }
  }
  virt_domain_list_free (doms, n);
  return found;
}

/* The checks of invariant 1 on the open fd (st: its fstat).  -1 with the
 * error naming path. */
static int
target_check (int fd, const struct stat *st, const char *path, const char *format,
              const struct instant_session *s, const struct instant_session_disk *k,
              virConnectPtr conn)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  const char *looks = image_format (fd);
  bool qcow2 = format && strcmp (format, "qcow2") == 0;
  const char *fmt = qcow2 ? "qcow2" : NULL;
  char why[512], jpath[4096], h1[32], h2[32];
  struct stat o;
  size_t i;

  for (i = 0; i < s->ndisks; i++)
    if (stat (s->disks[i].overlay, &o) == 0 && o.st_dev == st->st_dev &&
        o.st_ino == st->st_ino) {
      error_setx ("%s is the session's own overlay of %s", path, s->disks[i].target);
      return -1;
    }
  if (format && !qcow2 && strcmp (format, "raw") != 0) {
    error_setx ("--format %s: --onto writes raw or qcow2 disks only", format);
    return -1;
  }
  if (qcow2 && (!looks || strcmp (looks, "qcow2") != 0)) {
    error_setx ("%s is not a qcow2 image (%s by its header): --format qcow2 refused",
                path, looks ? looks : "none");
    return -1;
  }
  if (!format && looks) {
    error_setx ("%s starts like a %s image: say its format (--format raw or "
                "--format qcow2; bootback does not take it from the file, whose "
                "guest may have written that header)", path, looks);
    return -1;
  }
  if (fmt && delta_qcow2_check (path, k->size, k->target) == -1)
    return -1;
  if (!fmt && (uint64_t) st->st_size != k->size) {
    error_setx ("%s is %s (%" PRIu64 " bytes), disk %s of %s@%s is %s (%" PRIu64
                " bytes): --onto needs a disk of the same size", path,
                human_size (st->st_size, h1, sizeof h1), (uint64_t) st->st_size,
                k->target, s->vm, s->point, human_size (k->size, h2, sizeof h2), k->size);
    return -1;
  }
  switch (used_by_domain (conn, st, why, sizeof why)) {
  case -1: error_prefix ("cannot tell whether %s is in use", path); return -1;
  case 1: error_setx ("%s is in use by %s: refused", path, why); return -1;
  }
  if (fcntl (fd, F_OFD_SETLK, &fl) == -1) {
    error_set (errno, "%s is in use by another process (it holds a lock on it, as "
               "QEMU does): refused", path);
    return -1;
  }
  if (fmt) {          /* qcow2: qemu-nbd takes QEMU's own locks (delta-qcow2.c) */
    fl.l_type = F_UNLCK;
    fcntl (fd, F_OFD_SETLK, &fl);
  }
  if (delta_journal_path (path, jpath, sizeof jpath) == -1)
    return -1;
  if (access (jpath, F_OK) == 0) {
    error_setx ("%s has the undo journal %s of an unfinished migrate --onto: "
                "`bootback sessions` undoes it (remove it only if %s is known "
                "good)", path, jpath, path);
    return -1;
  }
  return 0;
}

int
delta_target_open (const char *path, const char *format,
                   const struct instant_session *s,
                   const struct instant_session_disk *k, virConnectPtr conn)
{
  struct stat ls, st;
  int fd;

  if (lstat (path, &ls) == -1) {
    error_set (errno, "--onto %s", path);
    return -1;
  }
  if (S_ISLNK (ls.st_mode)) {
    error_setx ("%s is a symbolic link: give the file itself", path);
    return -1;
  }
  if (!S_ISREG (ls.st_mode)) {
    error_setx ("%s is not a regular file: --onto takes a raw image file", path);
    return -1;
  }
  fd = open (path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -1) {
    error_set (errno, "open: %s", path);
    return -1;
  }
  if (fstat (fd, &st) == -1 || st.st_dev != ls.st_dev || st.st_ino != ls.st_ino) {
    error_setx ("%s changed while it was being opened", path);
    close (fd);
    return -1;
  }
  if (target_check (fd, &st, path, format, s, k, conn) == -1) {
    close (fd);
    return -1;
  }
  return fd;
}

/* ---- the journal ----------------------------------------------------------- */

static void
record_check (struct jrecord *r, uint8_t out[REC_LEN - REC_CHECKED])
{
  uint8_t h[REPO_DIGEST_LEN];

  repo_sha256 (r, REC_CHECKED, h);
  memcpy (out, h, REC_LEN - REC_CHECKED);
}

/* Append a record (and data, len bytes, for a chunk); fdatasync if sync.
 * -1 with the error. */
static int
journal_append_sync (int jfd, const char *jpath, uint32_t kind, const void *data,
                     uint32_t len, uint64_t offset, bool sync)
{
  struct jrecord r = { .kind = kind, .len = len, .offset = offset };
  struct iovec iov[2] = { { &r, sizeof r }, { (void *) data, len } };
  off_t end = lseek (jfd, 0, SEEK_END);
  size_t want = sizeof r + len;
  ssize_t w;

  memcpy (r.magic, REC_MAGIC, MAGIC_LEN);
  repo_sha256 (data, len, r.data_sha);
  record_check (&r, r.check);
  w = end < 0 ? -1 : pwritev (jfd, iov, data ? 2 : 1, end);
  if (w != (ssize_t) want || (sync && fdatasync (jfd) == -1)) {
    error_set (w == -1 || w == (ssize_t) want ? errno : ENOSPC,
               "write the undo journal %s", jpath);
    return -1;
  }
  return 0;
}

static int
journal_append (int jfd, const char *jpath, uint32_t kind, const void *data,
                uint32_t len, uint64_t offset)
{
  return journal_append_sync (jfd, jpath, kind, data, len, offset, false);
}

/* Every CHUNK record durable, then the commit WRITING (invariant 2). */
static int
journal_commit (int jfd, const char *jpath)
{
  struct jrecord r = { .kind = REC_WRITING };
  off_t end = lseek (jfd, 0, SEEK_END);

  if (end < 0 || fdatasync (jfd) == -1) {
    error_set (errno, "fsync: %s", jpath);
    return -1;
  }
  memcpy (r.magic, REC_MAGIC, MAGIC_LEN);
  r.offset = end;
  repo_sha256 (NULL, 0, r.data_sha);
  record_check (&r, r.check);
  if (full_io (true, jfd, &r, sizeof r, COMMIT_POS, jpath) == -1 ||
      (fdatasync (jfd) == -1 && (error_set (errno, "fsync: %s", jpath), true)))
    return -1;
  return 0;
}

/* Create the journal of target (fd, st) with its header, durable. */
static int
journal_create (const char *jpath, int fd, uint32_t cs, uint64_t size, bool qcow2)
{
  struct jheader h = { .version = 1, .chunk_size = cs, .size = size, .qcow2 = qcow2 };
  struct stat st;
  int jfd;

  if (fstat (fd, &st) == -1) {
    error_set (errno, "fstat");
    return -1;
  }
  memcpy (h.magic, HDR_MAGIC, MAGIC_LEN);
  h.dev = st.st_dev;
  h.ino = st.st_ino;
  repo_sha256 (&h, HDR_CHECKED, h.check);
  jfd = open_private (jpath, O_WRONLY | O_EXCL);
  if (jfd == -1) {
    error_set (errno, "create the undo journal %s", jpath);
    return -1;
  }
  if (full_io (true, jfd, &h, sizeof h, 0, jpath) == -1 ||
      full_io (true, jfd, (uint8_t[REC_LEN]) { 0 }, REC_LEN, COMMIT_POS, jpath) == -1 ||
      (fsync (jfd) == -1 && (error_set (errno, "fsync: %s", jpath), true)) ||
      sync_dir_of (jpath) == -1) {
    close (jfd);
    unlink (jpath);
    return -1;
  }
  return jfd;
}

/* ---- the delta: hash, compare, write ------------------------------------------ */

/* Two passes.  1: the workers compare every chunk and journal the old
 * content of each that differs as they find it (nothing written to the
 * target); the journal is then made durable and committed (invariant 2).
 * 2: the workers write the point's content of each differing chunk.  The
 * target is locked throughout, so what pass 1 journaled is what pass 2
 * overwrites. */
struct djob {
  struct repo *r;
  struct repo_disk *d;
  int fd;                       /* the target */
  struct delta_qcow2 *q;        /* a qcow2 target: its qemu-nbd, else NULL */
  const char *target;
  uint32_t cs;
  uint64_t size, n;
  int jfd;                      /* the journal; -1: none (undo's re-sync) */
  const char *jpath;
  const uint8_t *skip;          /* chunks not to look at (bitmap), or NULL */
  const struct delta_opts *o;
  struct delta_stats *st;       /* delta_apply's (the bitmap is used), or NULL */
  long crash_at, stall_at;      /* BOOTBACK_DELTA_TEST, 0 if none */
  uint8_t *data;                /* bitmap: chunk i holds data (not all hole) */
  uint8_t *clean;               /* bitmap: clean by the target's dirty bitmap */
  uint64_t *sample, nsample;    /* clean chunks compared all the same */
  uint8_t *diff;                /* pass 1: 1 where chunk i differs */
  uint64_t *list, nlist;        /* pass 2: the chunks that differ */
  double seconds_scan;          /* pass 1 */
  _Atomic uint64_t next, written, done, hashed;
  pthread_mutex_t lock;         /* progress */
  pthread_mutex_t jlock;        /* journal appends */
  struct first_error fe;
};

/* Chunk c's length. */
static size_t
clen (const struct djob *j, uint64_t c)
{
  return MIN ((uint64_t) j->cs, j->size - c * j->cs);
}

static bool
bit (const uint8_t *map, uint64_t c)
{
  return map[c / 8] & (1u << (c % 8));
}

/* Read or write the target: its file, or a qcow2's qemu-nbd.  -1 with
 * the error naming it. */
static int
tgt_io (const struct djob *j, bool write, void *buf, size_t len, uint64_t off)
{
  int r;

  if (!j->q)
    return full_io (write, j->fd, buf, len, off, j->target);
  r = write ? nbd_pwrite (j->q->nbd, buf, len, off, 0)
    : nbd_pread (j->q->nbd, buf, len, off, 0);
  if (r == -1)
    error_set (nbd_get_errno () ? nbd_get_errno () : EIO, "%s %s at byte %" PRIu64
               ": %s", write ? "write" : "read", j->target, off, nbd_get_error ());
  return r;
}

/* Make what was written to the target durable.  -1 with the error. */
static int
tgt_sync (const struct djob *j)
{
  if (j->q ? nbd_flush (j->q->nbd, 0) == -1 : fsync (j->fd) == -1) {
    error_set (j->q ? (nbd_get_errno () ? nbd_get_errno () : EIO) : errno,
               "fsync: %s", j->target);
    return -1;
  }
  return 0;
}

/* Chunks first..last (inclusive) hold data. */
static void
mark_data (struct djob *j, uint64_t first, uint64_t last)
{
  for (; first <= last && first < j->n; first++)
    j->data[first / 8] |= 1u << (first % 8);
}

/* Which chunks of the target hold data (SEEK_DATA, SEEK_HOLE): one walk
 * over its extents.  A chunk wholly in a hole reads as zeros and is never
 * read.  Where the file system cannot tell, everything is data. */
static void
data_map (struct djob *j)
{
  off_t pos = 0, end;

  j->data = xcalloc (1, j->n / 8 + 1);
  if (j->q) {                 /* qcow2: the chunks that do not read as zeros */
    uint64_t c;
    if (delta_qcow2_map (j->q, j->size, j->cs, false, j->data) == -1) {
      memset (j->data, 0, j->n / 8 + 1);
      mark_data (j, 0, j->n);
      return;
    }
    for (c = 0; c < j->n; c++)
      j->data[c / 8] ^= 1u << (c % 8);
    return;
  }
  while ((uint64_t) pos < j->size) {
    pos = lseek (j->fd, pos, SEEK_DATA);
    if (pos == -1 && errno == ENXIO)
      return;                            /* a hole to the end */
    end = pos == -1 ? -1 : lseek (j->fd, pos, SEEK_HOLE);
    if (end == -1) {
      mark_data (j, 0, j->n);
      return;
    }
    mark_data (j, pos / j->cs, (end - 1) / j->cs);
    pos = end;
  }
}

/* Does data (len bytes, the target's chunk) differ from the point's
 * chunk of digest want?  Zeros are known without hashing, and so is data
 * over a zero chunk; else the repository's own name of the data
 * (repo_chunk_digest: keyed in an encrypted repository) is compared. */
static bool
data_differs (const struct djob *j, struct repo_hasher *h, const uint8_t *data,
              size_t len, const uint8_t want[REPO_DIGEST_LEN])
{
  uint8_t got[REPO_DIGEST_LEN];

  if (is_zero (data, len))
    return !repo_digest_is_zero (want);
  if (repo_digest_is_zero (want))
    return true;
  repo_hasher_digest (j->r, h, data, len, got);
  return memcmp (got, want, REPO_DIGEST_LEN) != 0;
}

/* The target is read through a mapping of each chunk (no copy out of the
 * page cache: SHA-256 reads it where it is).  An I/O error under a
 * mapping is a SIGBUS: the worker's handler jumps back and the chunk is
 * read again with pread, whose error names it. */
static __thread sigjmp_buf *bus_jump;

static void
on_sigbus (int sig)
{
  if (bus_jump)
    siglongjmp (*bus_jump, 1);
  signal (SIGBUS, SIG_DFL);     /* not ours: the fault comes again, fatal */
}

/* Compare chunk c (it holds data) through a mapping, into *old.  1
 * differs, 0 equal, -1 if it could not be mapped or read. */
static int
mapped_differs (struct djob *j, uint64_t c, const uint8_t **old)
{
  size_t len = clen (j, c);
  void *m = mmap (NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, j->fd, c * j->cs);
  sigjmp_buf jb;
  volatile int r = -1;          /* set between sigsetjmp and a jump */
  struct repo_hasher *h;

  if (m == MAP_FAILED)
    return -1;
  h = repo_hasher_get (j->r);
  if (sigsetjmp (jb, 0) == 0) {
    bus_jump = &jb;
    r = data_differs (j, h, m, len, repo_disk_digest (j->d, c));
  }
  bus_jump = NULL;
  repo_hasher_put (j->r, h, r == -1);   /* -1: jumped out of the hash */
  if (r == -1)
    munmap (m, len);
  else
    *old = m;
  return r;
}

/* Compare chunk c with the point's: 1 differs, 0 equal, -1 with the error.
 * *old: the chunk's content (a mapping of len bytes, or buf), NULL for
 * zeros (a hole). */
static int
chunk_differs (struct djob *j, uint64_t c, uint8_t *buf, const uint8_t **old)
{
  size_t len = clen (j, c);
  struct repo_hasher *h;
  int r;

  *old = NULL;
  if (!bit (j->data, c))                 /* wholly in a hole: zeros */
    return !repo_digest_is_zero (repo_disk_digest (j->d, c));
  atomic_fetch_add (&j->hashed, 1);
  r = j->q ? -1 : mapped_differs (j, c, old);
  if (r != -1)
    return r;
  *old = buf;
  if (tgt_io (j, false, buf, len, c * j->cs) == -1)
    return -1;
  h = repo_hasher_get (j->r);
  r = data_differs (j, h, buf, len, repo_disk_digest (j->d, c));
  repo_hasher_put (j->r, h, false);
  return r;
}

static bool
cancelled (const struct djob *j)
{
  return j->o && j->o->cancel && *j->o->cancel;
}

/* Start reading the chunk RA_CHUNKS ahead of c (a cold target). */
#define RA_CHUNKS 16
static void
read_ahead (struct djob *j, uint64_t c)
{
  c += RA_CHUNKS;
  if (!j->q && c < j->n && bit (j->data, c))
    posix_fadvise (j->fd, c * j->cs, clen (j, c), POSIX_FADV_WILLNEED);
}

/* Pass 1 on chunk c: compare, and journal its old content if it differs.
 * -1 with the error. */
static int
scan_chunk (struct djob *j, uint64_t c, uint8_t *buf)
{
  const uint8_t *old;
  int r;

  read_ahead (j, c);
  r = chunk_differs (j, c, buf, &old);
  if (r == 1 && j->jfd >= 0) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&j->jlock);
    if (!old)
      memset (buf, 0, clen (j, c));
    r = journal_append (j->jfd, j->jpath, REC_CHUNK, old ? old : buf, clen (j, c),
                        c * j->cs) == 0 ? 1 : -1;
  }
  if (old && old != buf)
    munmap ((void *) old, clen (j, c));
  if (r >= 0)
    j->diff[c] = r;
  return r;
}

/* Pass 1, a worker. */
static void *
scan_worker (void *arg)
{
  struct djob *j = arg;
  CLEANUP_FREE uint8_t *buf = xmalloc (j->cs);
  uint64_t c, done;

  while (!first_error_failed (&j->fe) &&
         (c = atomic_fetch_add (&j->next, 1)) < j->n) {
    if (j->skip && bit (j->skip, c))
      continue;
    if (cancelled (j) || scan_chunk (j, c, buf) == -1) {
      if (cancelled (j))
        error_setx ("interrupted");
      first_error_record (&j->fe);
      break;
    }
    done = atomic_fetch_add (&j->done, clen (j, c)) + clen (j, c);
    if (j->o && j->o->progress) {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&j->lock);
      j->o->progress (j->o->progress_opaque, j->o->base + done, j->o->total);
    }
  }
  return NULL;
}

/* Pass 1: the target's extents, then two workers (SIGBUS caught
 * meanwhile).  -1 with the first error recorded. */
static int
scan_pass (struct djob *j)
{
  /* SA_NODEFER: the jump out of the handler leaves SIGBUS unblocked. */
  struct sigaction sa = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER }, old;
  double t0 = now_monotonic ();

  sigemptyset (&sa.sa_mask);
  sigaction (SIGBUS, &sa, &old);
  run_workers (2, scan_worker, j);
  sigaction (SIGBUS, &old, NULL);
  j->seconds_scan += now_monotonic () - t0;
  return first_error_failed (&j->fe) ? -1 : 0;
}

/* The test hook after a chunk written: crash, or wait for the cancel. */
static void
test_hook (struct djob *j, uint64_t written)
{
  if (j->crash_at && (long) written >= j->crash_at)
    kill (getpid (), SIGKILL);
  if (j->stall_at && (long) written == j->stall_at)
    while (!cancelled (j))
      usleep (100000);
}

/* Chunk c gets the point's content: a hole for a zero chunk (where the
 * file system can punch one), else the data read and checked through the
 * library. */
static int
write_chunk (struct djob *j, uint64_t c, uint8_t *buf)
{
  uint64_t off = c * j->cs;
  size_t len = clen (j, c);

  if (repo_digest_is_zero (repo_disk_digest (j->d, c)) &&
      (j->q ? nbd_zero (j->q->nbd, len, off, 0) == 0
       : fallocate (j->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0))
    return 0;
  if (repo_disk_pread (j->d, NULL, buf, len, off) == -1 ||
      tgt_io (j, true, buf, len, off) == -1)
    return -1;
  if (!j->q)
    sync_file_range (j->fd, off, len, SYNC_FILE_RANGE_WRITE);   /* for the fsync */
  return 0;
}

/* Pass 2, a worker: the point's content of each differing chunk (read
 * and checked through the library) written to the target. */
static void *
write_worker (void *arg)
{
  struct djob *j = arg;
  CLEANUP_FREE uint8_t *buf = xmalloc (j->cs);
  uint64_t i;

  while (!first_error_failed (&j->fe) &&
         (i = atomic_fetch_add (&j->next, 1)) < j->nlist) {
    uint64_t c = j->list[i];
    if (cancelled (j))
      error_setx ("interrupted");
    if (cancelled (j) || write_chunk (j, c, buf) == -1) {
      first_error_record (&j->fe);
      break;
    }
    test_hook (j, atomic_fetch_add (&j->written, 1) + 1);
  }
  return NULL;
}

/* The target's dirty bitmap of the point's checkpoint (delta-qcow2.c):
 * the chunks it leaves clean are not looked at (j->clean, the skip map),
 * but for a random sample of them (SAMPLE_MIN, or 1 %: j->sample), which
 * the scan compares with the dirty ones (bitmap_check).  -1 with the
 * error. */
#define SAMPLE_MIN 64
static int
bitmap_plan (struct djob *j)
{
  CLEANUP_FREE uint64_t *clean = xmalloc ((j->n + 1) * sizeof *clean);
  uint64_t c, nclean = 0, i, seed = 0;

  j->clean = xcalloc (1, j->n / 8 + 1);
  if (delta_qcow2_map (j->q, j->size, j->cs, true, j->clean) == -1)
    return -1;
  for (c = 0; c < j->n; c++)
    if (!bit (j->clean, c))
      clean[nclean++] = c;
  for (c = 0; c < j->n / 8 + 1; c++)
    j->clean[c] = ~j->clean[c];
  j->st->dirty = j->n - nclean;
  j->nsample = MIN (nclean, MAX ((uint64_t) SAMPLE_MIN, j->n / 100));
  j->sample = xmalloc ((j->nsample + 1) * sizeof *j->sample);
  if (getrandom (&seed, sizeof seed, 0) != sizeof seed)
    seed = (uint64_t) now_monotonic () ^ getpid ();
  for (i = 0; i < j->nsample; i++) {          /* a partial Fisher-Yates */
    uint64_t k = i + (seed = seed * 6364136223846793005ull + 1442695040888963407ull)
      % (nclean - i), t = clean[k];
    clean[k] = clean[i];
    clean[i] = t;
    j->sample[i] = t;
    j->clean[t / 8] &= ~(1u << (t % 8));      /* compared, as dirty ones */
  }
  j->st->sampled = j->nsample;
  j->skip = j->clean;
  return 0;
}

/* After the scan: every sampled clean chunk the point's, the bitmap is
 * used; else it lies (another lineage, an image written without it): said,
 * and the chunks it called clean are compared too.  -1 with the error. */
static int
bitmap_check (struct djob *j)
{
  uint64_t i, c;

  for (i = 0; i < j->nsample && !j->diff[j->sample[i]]; i++)
    ;
  if (i == j->nsample) {
    j->st->bitmap = true;
    snprintf (j->st->how, sizeof j->st->how, "bitmap %s used: %" PRIu64 " of %"
              PRIu64 " chunks dirty since the point; %" PRIu64 " clean chunks "
              "sampled, all the point's", j->q->bitmap, j->st->dirty, j->n, j->nsample);
    if (j->o && j->o->progress)              /* the clean ones known */
      j->o->progress (j->o->progress_opaque, j->o->base + j->size, j->o->total);
    return 0;
  }
  snprintf (j->st->how, sizeof j->st->how, "bitmap %s not used: chunk %" PRIu64
            ", clean by it, differs from the point (one of %" PRIu64 " clean chunks "
            "sampled; another lineage, or the image was written without it): every "
            "chunk compared", j->q->bitmap, j->sample[i], j->nsample);
  for (c = 0; c < j->n / 8 + 1; c++)
    j->clean[c] = ~j->clean[c];               /* now: those looked at */
  atomic_store (&j->next, 0);
  return scan_pass (j);
}

/* Both passes over j (two workers each: both cores), then fsync.  -1
 * with the first error. */
static int
djob_passes (struct djob *j)
{
  uint64_t c;

  data_map (j);
  if (j->st && j->q && j->q->bitmap[0] && bitmap_plan (j) == -1) {
    first_error_record (&j->fe);
    return -1;
  }
  if (scan_pass (j) == -1 || (j->sample && bitmap_check (j) == -1))
    return -1;
  j->list = xmalloc ((j->n + 1) * sizeof *j->list);
  for (c = 0; c < j->n; c++)
    if (j->diff[c])
      j->list[j->nlist++] = c;
  if (j->jfd >= 0 && j->nlist && journal_commit (j->jfd, j->jpath) == -1) {
    first_error_record (&j->fe);
    return -1;
  }
  atomic_store (&j->next, 0);
  run_workers (2, write_worker, j);
  if (!first_error_failed (&j->fe) && cancelled (j)) {
    error_setx ("interrupted");          /* after the last chunk was taken */
    first_error_record (&j->fe);
  }
  if (!first_error_failed (&j->fe) && tgt_sync (j) == -1)
    first_error_record (&j->fe);
  return first_error_failed (&j->fe) ? -1 : 0;
}

static int
djob_run (struct djob *j)
{
  int ret;

  j->cs = repo_chunk_size (j->r);
  j->size = repo_disk_size (j->d);
  j->n = repo_disk_nchunks (j->d);
  j->diff = xcalloc (1, j->n + 1);
  posix_fadvise (j->fd, 0, 0, POSIX_FADV_SEQUENTIAL);   /* a hint only */
  pthread_mutex_init (&j->lock, NULL);
  pthread_mutex_init (&j->jlock, NULL);
  first_error_init (&j->fe);
  ret = djob_passes (j);
  if (ret == -1)
    first_error_restore (&j->fe);
  first_error_destroy (&j->fe);
  pthread_mutex_destroy (&j->jlock);
  pthread_mutex_destroy (&j->lock);
  free (j->data);
  free (j->clean);
  free (j->sample);
  free (j->diff);
  free (j->list);
  return ret;
}

/* How the chunks were chosen, when no bitmap was used (note: why). */
static void
how_default (struct delta_stats *st, bool qcow2, const char *note)
{
  if (!st->how[0])
    snprintf (st->how, sizeof st->how, "every chunk compared: %s",
              qcow2 ? note : "a raw disk keeps no dirty bitmap");
}

/* qcow2: qemu-img info and qemu-nbd open target by name, not fd.  Only
 * root and we can write the directories above it (migrate.c, plan_onto:
 * dir_chain_private), so nobody else can rename a link or another qcow2
 * over it; handing QEMU /proc/self/fd/N instead would need the fd kept
 * open across run_command and qemu-nbd's fork, and the block copy's
 * libvirt opens (and relabels) by name anyway.  This catches a target
 * replaced all the same, before anything is written through qemu-nbd. */
static int
still_target (int fd, const char *target)
{
  struct stat a, b;

  if (fstat (fd, &a) == 0 && lstat (target, &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino)
    return 0;
  error_setx ("%s is no longer the file that was checked (renamed or replaced): "
              "refused, nothing written", target);
  return -1;
}

int
delta_apply (struct repo *r, struct repo_disk *d, int fd, const char *target,
             const struct delta_opts *o, struct delta_stats *st)
{
  struct djob j = { .r = r, .d = d, .fd = fd, .target = target, .o = o, .st = st };
  const char *hook = test_hook_env ("BOOTBACK_DELTA_TEST");
  bool qcow2 = o->qcow2;        /* the user's format, never the file's header */
  struct delta_qcow2 q;
  char jpath[4096], note[400] = "";
  double t0 = now_monotonic ();
  int ret = -1;

  if (hook && strncmp (hook, "crash@", 6) == 0)
    j.crash_at = atol (hook + 6);
  if (hook && strncmp (hook, "stall@", 6) == 0)
    j.stall_at = atol (hook + 6);

  if (repo_disk_size (d) != o->size) {   /* the repository may change */
    error_setx ("%s was checked for a disk of %" PRIu64 " bytes, the point's is %"
                PRIu64 " bytes in the repository now: refused", target, o->size,
                repo_disk_size (d));
    return -1;
  }
  if (delta_journal_path (target, jpath, sizeof jpath) == -1)
    return -1;
  j.jpath = jpath;
  if (qcow2 && delta_qcow2_open (&q, target, o->checkpoint, o->point, note,
                                    sizeof note) == -1)
    return -1;
  if (qcow2 && still_target (fd, target) == -1) {
    delta_qcow2_close (&q);
    return -1;
  }
  j.q = qcow2 ? &q : NULL;
  j.jfd = journal_create (jpath, fd, repo_chunk_size (r), repo_disk_size (d), qcow2);
  if (j.jfd == -1) {
    if (qcow2)
      delta_qcow2_close (&q);
    return -1;
  }
  ret = djob_run (&j);
  if (qcow2)                    /* flushed; QEMU's locks let go for the copy */
    delta_qcow2_close (&q);
  if (ret == 0 && journal_append_sync (j.jfd, jpath, REC_MIRROR, NULL, 0, 0, true) == -1)
    ret = -1;
  close (j.jfd);
  how_default (st, qcow2, note);
  st->hashed = j.hashed;
  st->chunks = j.n;
  st->written = j.written;
  st->seconds_scan = j.seconds_scan;
  st->seconds = now_monotonic () - t0;
  return ret;
}

int
delta_finish (const char *target)
{
  char jpath[4096];

  if (delta_journal_path (target, jpath, sizeof jpath) == -1)
    return -1;
  if (unlink (jpath) == -1 && errno != ENOENT) {
    error_set (errno, "remove the undo journal %s", jpath);
    return -1;
  }
  return sync_dir_of (jpath);
}

/* ---- undo -------------------------------------------------------------------- */

/* What a journal holds: its header, where each chunk record's data is. */
struct jscan {
  struct jheader h;
  bool writing, mirror;
  size_t n;
  uint64_t *pos;                /* file offset of each chunk record */
  uint8_t *bitmap;              /* chunks in the journal */
};

/* Read and check record at pos (its data into buf).  1 ok, 0 invalid. */
static int
record_read (int jfd, uint64_t pos, uint64_t fsize, const struct jheader *h,
             struct jrecord *r, uint8_t *buf)
{
  uint8_t check[REC_LEN - REC_CHECKED], sha[REPO_DIGEST_LEN];

  if (pos + REC_LEN > fsize || pread (jfd, r, REC_LEN, pos) != REC_LEN)
    return 0;
  record_check (r, check);
  if (memcmp (r->magic, REC_MAGIC, MAGIC_LEN) != 0 ||
      memcmp (check, r->check, sizeof check) != 0 ||
      (r->kind != REC_CHUNK && r->kind != REC_MIRROR && r->kind != REC_WRITING))
    return 0;
  if (r->kind != REC_CHUNK)
    return r->len == 0;
  if (r->len == 0 || r->len > h->chunk_size || r->offset % h->chunk_size ||
      r->offset >= h->size || r->len != MIN (h->chunk_size, h->size - r->offset) ||
      pos + REC_LEN + r->len > fsize ||
      pread (jfd, buf, r->len, pos + REC_LEN) != (ssize_t) r->len)
    return 0;
  repo_sha256 (buf, r->len, sha);
  return memcmp (sha, r->data_sha, sizeof sha) == 0;
}

/* Read the journal's header and commit (into js). */
static int
journal_head (int jfd, const char *jpath, struct jscan *js, uint64_t fsize,
              uint64_t *records_end)
{
  uint8_t check[REPO_DIGEST_LEN];
  struct jrecord c;

  if (pread (jfd, &js->h, HDR_LEN, 0) != HDR_LEN) {
    error_set (errno ? errno : EIO, "read the undo journal %s", jpath);
    return -1;
  }
  repo_sha256 (&js->h, HDR_CHECKED, check);
  if (memcmp (js->h.magic, HDR_MAGIC, MAGIC_LEN) != 0 ||
      memcmp (check, js->h.check, sizeof check) != 0 ||
      js->h.chunk_size < REPO_MIN_CHUNK || js->h.chunk_size > REPO_MAX_CHUNK) {
    error_setx ("%s is not a valid undo journal (header)", jpath);
    return -1;
  }
  /* No valid commit: its fsync never returned, nothing was written. */
  js->writing = record_read (jfd, COMMIT_POS, fsize, &js->h, &c, NULL) &&
    c.kind == REC_WRITING && c.offset >= RECORDS_POS && c.offset <= fsize;
  *records_end = js->writing ? c.offset : RECORDS_POS;
  return 0;
}

/* Only a journal bootback made is played back: a regular file of this
 * user, 0600 (journal_create).  One of someone else, who can write the
 * target's directory, would write what it likes into the target. */
static int
journal_own (int jfd, const char *jpath)
{
  struct stat st;

  if (fstat (jfd, &st) == -1) {
    error_set (errno, "fstat: %s", jpath);
    return -1;
  }
  if (!S_ISREG (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 077)) {
    error_setx ("the undo journal %s is not bootback's own (owner %u, mode %04o): "
                "refused", jpath, (unsigned) st.st_uid, (unsigned) st.st_mode & 07777);
    return -1;
  }
  return 0;
}

/* Read the journal: header, commit, records (invariants 2 and 5). */
static int
journal_scan (int jfd, const char *jpath, struct jscan *js)
{
  CLEANUP_FREE uint8_t *buf = NULL;
  struct stat st;
  uint64_t pos = RECORDS_POS, end, nchunks;
  struct jrecord r;

  if (fstat (jfd, &st) == -1) {
    error_set (errno, "fstat: %s", jpath);
    return -1;
  }
  if (journal_head (jfd, jpath, js, st.st_size, &end) == -1)
    return -1;
  nchunks = DIV_ROUND_UP (js->h.size, js->h.chunk_size);
  js->bitmap = xcalloc (1, nchunks / 8 + 1);
  buf = xmalloc (js->h.chunk_size);
  for (; pos < end; pos += REC_LEN + r.len) {
    if (!record_read (jfd, pos, end, &js->h, &r, buf) || r.kind != REC_CHUNK) {
      error_setx ("the undo journal %s is damaged at byte %" PRIu64, jpath, pos);
      return -1;
    }
    js->pos = xrealloc (js->pos, (js->n + 1) * sizeof *js->pos);
    js->pos[js->n++] = pos;
    js->bitmap[r.offset / js->h.chunk_size / 8] |= 1u << (r.offset / js->h.chunk_size % 8);
  }
  if (js->writing && pos < (uint64_t) st.st_size) {
    js->mirror = record_read (jfd, pos, st.st_size, &js->h, &r, NULL) &&
      r.kind == REC_MIRROR;
    if (!js->mirror && (uint64_t) st.st_size - pos > REC_LEN) {
      error_setx ("the undo journal %s is damaged at byte %" PRIu64, jpath, pos);
      return -1;
    }
  }
  return 0;
}

/* Make every chunk not in the journal the point's again (invariant 5). */
static int
undo_resync (int fd, struct delta_qcow2 *q, const char *target, const struct jscan *js,
             const struct instant_session *s, const struct instant_session_disk *k,
             const struct repo_open_opts *ro)
{
  struct repo *r = repo_open_with (s->repo, ro);
  struct djob j = { .r = r, .fd = fd, .q = q, .target = target, .jfd = -1,
                    .skip = js->bitmap };
  int ret = -1;

  if (!r)
    return -1;
  j.d = repo_disk_open (r, s->vm, s->point, k->name);
  if (j.d && (repo_disk_size (j.d) != js->h.size ||
              repo_chunk_size (r) != js->h.chunk_size))
    error_setx ("the undo journal of %s does not match disk %s of %s@%s", target,
                k->name, s->vm, s->point);
  else if (j.d)
    ret = djob_run (&j);
  repo_disk_close (j.d);
  repo_close (r);
  return ret;
}

/* Write back every journaled chunk; fsync. */
static int
undo_playback (int jfd, int fd, struct delta_qcow2 *q, const char *target,
               const struct jscan *js)
{
  CLEANUP_FREE uint8_t *buf = xmalloc (js->h.chunk_size);
  const struct djob w = { .fd = fd, .q = q, .target = target };
  struct stat st;
  size_t i;

  if (fstat (jfd, &st) == -1)
    return -1;
  for (i = 0; i < js->n; i++) {
    struct jrecord r;
    if (!record_read (jfd, js->pos[i], st.st_size, &js->h, &r, buf)) {
      error_setx ("the undo journal of %s changed while it was played back", target);
      return -1;
    }
    if (tgt_io (&w, true, buf, r.len, r.offset) == -1)
      return -1;
  }
  return tgt_sync (&w);
}

/* Open target for undo: the very file the journal was made for. */
static int
undo_open_target (const char *target, const struct jscan *js)
{
  struct stat st;
  int fd = open (target, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

  if (fd == -1) {
    error_set (errno, "open: %s", target);
    return -1;
  }
  if (fstat (fd, &st) == -1 || st.st_dev != js->h.dev || st.st_ino != js->h.ino ||
      (!js->h.qcow2 && (uint64_t) st.st_size != js->h.size) ||
      (js->h.qcow2 && delta_qcow2_check (target, js->h.size, target) == -1)) {
    error_setx ("%s is not the file its undo journal was made for", target);
    close (fd);
    return -1;
  }
  return fd;
}

int
delta_undo (const char *target, const struct instant_session *s,
            const struct instant_session_disk *k, const struct repo_open_opts *ro)
{
  struct jscan js = { 0 };
  struct delta_qcow2 q, *qp = NULL;
  char jpath[4096], note[400];
  int jfd, fd = -1, ret = -1;

  if (delta_journal_path (target, jpath, sizeof jpath) == -1)
    return -1;
  jfd = open (jpath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (jfd == -1) {
    if (errno == ENOENT)
      return 0;                          /* nothing was written */
    error_set (errno, "open the undo journal %s", jpath);
    return -1;
  }
  /* One undo at a time (two commands may reattach at once). */
  if (flock (jfd, LOCK_EX) == -1 || journal_own (jfd, jpath) == -1 ||
      journal_scan (jfd, jpath, &js) == -1)
    goto out;
  fd = undo_open_target (target, &js);
  if (fd == -1 ||
      (js.h.qcow2 && delta_qcow2_open (&q, target, NULL, NULL, note, sizeof note) == -1))
    goto out;
  qp = js.h.qcow2 ? &q : NULL;
  if (qp && still_target (fd, target) == -1)
    goto out;
  if ((js.mirror && undo_resync (fd, qp, target, &js, s, k, ro) == -1) ||
      undo_playback (jfd, fd, qp, target, &js) == -1)
    goto out;
  if (qp) {
    delta_qcow2_close (qp);
    qp = NULL;
  }
  if (access (jpath, F_OK) == 0 && delta_finish (target) == -1)
    goto out;
  ret = 0;
 out:
  if (ret == -1)
    error_prefix ("%s could not be restored (its undo journal %s stays)", target,
                  jpath);
  if (qp)
    delta_qcow2_close (qp);
  if (fd >= 0)
    close (fd);
  close (jfd);
  free (js.pos);
  free (js.bitmap);
  return ret;
}
