/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writing a restore point: the commit protocol (docs/design.md).
 *
 * Invariants:
 *  1. A point is visible if and only if its manifest.json exists; the
 *     manifest is renamed into place only after every chunk it needs and
 *     every index it names is durable.
 *  2. Files are never written in place: temp name, write, (fsync), rename.
 *  3. A failed fsync aborts the point.  It is never retried and trusted
 *     (after a failed fsync the page cache may already have dropped the
 *     data, so a second fsync can succeed with the data lost).
 *  4. A writer is registered in locks/writers/ from before its first chunk
 *     until after its manifest, with the storage-clock time it started.
 *     Every chunk it uses, new or old, has an mtime at or after that start
 *     (old ones are touched), which is what keeps a concurrent GC from
 *     removing them (gc.c).
 *
 * Steps, numbered so tests can crash at each (BOOTBACK_CRASH_STEP):
 *   1. chunks: temp, [fsync], rename; then syncfs (or fsync of each chunk
 *      and of each touched chunk directory when the repository is
 *      configured with "sync": "file");
 *   2. indexes (and domain.xml): temp, fsync, rename, directory fsync;
 *   3. manifest (pinning each index and the domain.xml by SHA-256): temp,
 *      fsync, rename, directory fsync;
 *   4. (caller) catalog row, one transaction (6: killed inside it; a
 *      catalog that lacks a committed point adds it on its next open);
 *   5. (caller) the source's checkpoint.
 *
 * States: begun -> (chunks, disks) -> committed | aborted; a failed
 * put/commit makes the writer failed: only abort remains.
 *
 * The point's id (its directory, claimed by an exclusive mkdir) is only
 * needed by step 2.  On an object store, where each request waits for
 * the server's commit, a writer without an explicit time claims it on a
 * thread of its own (claim_point), started once the writer is
 * registered and no GC holds locks/gc, while the chunks are read and
 * stored; commit (before step 2), abort and repo_writer_id wait for it.
 * The order that matters holds: the registration and the GC check come
 * before the first chunk and before the claim (so a GC that starts
 * meanwhile waits for this writer and never removes the claimed
 * directory as a dead writer's leftover, gc.c), and the claim before any
 * index or the manifest.  With an explicit time (repo sync, --time) the
 * id is claimed at once, so that a point of that id that exists is an
 * error of begin, as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>

#include "recovery/repo/crypt.h"

struct wdisk {
  char name[DISK_NAME_MAX + 1];
  char format[16];
  uint64_t size, zero_chunks;
  uint8_t (*digests)[REPO_DIGEST_LEN];
};

struct repo_writer {
  struct repo *r;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  char dir[192];
  char lockpath[128];
  time_t time;
  double start;
  _Atomic double last_beat;
  _Atomic bool failed;
  char failure[512];           /* the first failure's error (under lock) */
  _Atomic uint64_t new_chunks, new_bytes, stored_bytes, reused, raw_bytes;
  pthread_mutex_t lock;
  uint8_t *dirty;              /* bitmap of chunk dirs, "file" sync mode */
  size_t ndisks;
  struct wdisk disks[REPO_MAX_DISKS];
  char *domain_xml;
  char kind[16], consistency[16], source[16], parent[TIMESTAMP_LEN + 1];
  char checkpoint[128];
  struct repo_point_stats stats;
  /* The claim of the point's id (claim_point): on a thread of its own
   * until claim_wait (claiming), then claim_ret: 0, or -1 and its error
   * (claim_errno, claim_msg).  pruned: a pruned/VM/ID marker was there
   * when the id was claimed (commit removes it before the manifest). */
  pthread_t claim_thread;
  bool claiming;
  time_t claim_t;
  bool claim_explicit;
  int claim_ret, claim_errno;
  char claim_msg[512];
  bool pruned;
};

static int
register_writer (struct repo_writer *w)
{
  struct repo_io *io = w->r->io;
  static _Atomic unsigned n;
  struct repo_file *f;
  struct repo_stat st;
  char host[64] = "localhost", text[256];
  int len;

  gethostname (host, sizeof host - 1);
  snprintf (w->lockpath, sizeof w->lockpath, "locks/writers/%s-%ld-%u",
            host, (long) getpid (), atomic_fetch_add (&n, 1));
  if (io_mkdir_p1 (io, "locks") == -1 ||
      io_mkdir_p1 (io, "locks/writers") == -1)
    return -1;
  f = io->ops->open (io, w->lockpath, O_WRONLY | O_CREAT | O_EXCL);
  if (!f)
    return -1;
  if (io->ops->fstat (io, f, &st) == -1)
    goto err;
  w->start = st.mtime;
  len = snprintf (text, sizeof text, "start=%.9f\nhost=%s\npid=%ld\n",
                  st.mtime, host, (long) getpid ());
  if (io_write_all (io, f, text, len, 0) == -1)
    goto err;
  if (io->ops->close (io, f) == -1)
    return -1;
  w->last_beat = now_monotonic ();
  return 0;
 err:
  {
    ERROR_SAVE (saved);
    io->ops->close (io, f);
    io->ops->unlink (io, w->lockpath);
    ERROR_RESTORE (saved);
  }
  return -1;
}

static void
heartbeat (struct repo_writer *w)
{
  double now = now_monotonic (), last = w->last_beat;

  if (now - last > 30 &&
      atomic_compare_exchange_strong (&w->last_beat, &last, now))
    w->r->io->ops->touch (w->r->io, w->lockpath);
}

/* Claim the point's id (w->claim_t, 0: now): points/VM made sure of,
 * then the first free id from the time on (newer than every existing
 * point directory unless explicit), claimed by an exclusive mkdir; and
 * whether a pruned/ marker of that id is there (commit step 3 removes it:
 * the point does not exist before its manifest, so no prune writes one
 * for this id meanwhile, repo.c).  Sets w->id, w->dir and w->time.  0, or
 * -1 with the error set. */
static int
claim_point (struct repo_writer *w)
{
  struct repo_io *io = w->r->io;
  CLEANUP_FREE char *vmdir = xasprintf ("points/%s", w->vm);
  CLEANUP_FREE char *pm = NULL;
  char id[TIMESTAMP_LEN + 1], dir[sizeof w->dir];
  struct repo_stat pst;
  time_t t = w->claim_t;
  char **pts;
  size_t n;

  if (io_mkdir_p1 (io, vmdir) == -1)
    return -1;
  if (!w->claim_explicit) {
    t = time (NULL);
    /* Newer than every existing point directory, complete or not. */
    pts = io->ops->list (io, vmdir);
    if (!pts)
      return -1;
    for (n = 0; pts[n]; n++) {
      time_t pt;
      if (strlen (pts[n]) == TIMESTAMP_LEN && timestamp_parse (pts[n], &pt) == 0
          && pt >= t)
        t = pt + 1;
    }
    strv_free (pts);
  }
  for (;;) {
    timestamp_format (t, id);
    snprintf (dir, sizeof dir, "points/%s/%s", w->vm, id);
    if (io->ops->mkdir (io, dir) == 0)
      break;
    if (errno == ENOENT) {
      /* An aborting writer removed the empty VM directory just now. */
      if (io_mkdir_p1 (io, vmdir) == -1)
        return -1;
      continue;
    }
    if (errno != EEXIST)
      return -1;
    if (w->claim_explicit) {
      error_setx ("restore point %s@%s exists already", w->vm, id);
      return -1;
    }
    t++;
  }
  /* under the lock: writer_failed may name the point meanwhile */
  pthread_mutex_lock (&w->lock);
  strcpy (w->id, id);
  strcpy (w->dir, dir);
  w->time = t;
  pthread_mutex_unlock (&w->lock);
  /* A point of this id was pruned before (repo sync copies it again from
   * a repository that still has it): its marker goes before the point
   * exists (commit), so that it never stands for this one
   * (repo_point_pruned).  stat first: a DELETE of a missing key leaves a
   * delete marker in a versioned bucket. */
  pm = xasprintf ("pruned/%s/%s", w->vm, id);
  if (io->ops->stat (io, pm, &pst) == 0)
    w->pruned = true;
  else if (errno != ENOENT) {
    /* the directory is claimed: abort removes it */
    return -1;
  }
  error_clear ();
  return 0;
}

static void *
claim_thread (void *opaque)
{
  struct repo_writer *w = opaque;

  if ((w->claim_ret = claim_point (w)) == -1) {
    w->claim_errno = error_errno ();
    snprintf (w->claim_msg, sizeof w->claim_msg, "%s", error_msg ());
  }
  return NULL;
}

/* Wait for the claim started by begin, if it still runs: 0 if the id is
 * claimed, -1 with its error if not. */
static int
claim_wait (struct repo_writer *w)
{
  if (w->claiming) {
    pthread_join (w->claim_thread, NULL);
    w->claiming = false;
  }
  if (w->claim_ret == -1) {
    error_restore (w->claim_errno, w->claim_msg);
    errno = w->claim_errno;
    return -1;
  }
  return 0;
}

static void writer_fail (struct repo_writer *w);

struct repo_writer *
repo_writer_begin (struct repo *r, const char *vm, time_t t)
{
  struct repo_writer *w;
  struct repo_io *io = r->io;
  CLEANUP_FREE char *vmdir = xasprintf ("points/%s", vm);

  if (!name_is_valid (vm)) {
    error_setx ("'%s' is not a valid VM name (letters, digits, '.', '_', "
                "'-'; at most 128)", vm);
    return NULL;
  }
  if (repo_lock_check (r) == -1)
    return NULL;
  w = xcalloc (1, sizeof *w);
  w->r = r;
  pthread_mutex_init (&w->lock, NULL);
  snprintf (w->vm, sizeof w->vm, "%s", vm);
  strcpy (w->kind, "full");
  strcpy (w->consistency, "crash");
  strcpy (w->source, "import");
  w->claim_t = t;
  w->claim_explicit = t != 0;
  if (register_writer (w) == -1)
    goto err;
  /* an object store's GC and writers exclude each other (gc.c) */
  while (io->ops->object_store && io_lock_held (io, "locks/gc") != 0) {
    io->ops->unlink (io, w->lockpath);
    w->lockpath[0] = '\0';
    if (gc_wait_for_gc (io) == -1 || register_writer (w) == -1)
      goto err;
  }
  /* Registered, and no GC runs (nor can one start sweeping before this
   * writer unregisters): the id may be claimed while the chunks go up
   * (see the top). */
  if (io->ops->object_store && !w->claim_explicit &&
      pthread_create (&w->claim_thread, NULL, claim_thread, w) == 0)
    w->claiming = true;
  else if (claim_point (w) == -1)
    goto err;
  if (!r->sync_each_chunk)
    return w;
  w->dirty = xcalloc (1, 65536 / 8);
  return w;
 err:
  {
    ERROR_SAVE (saved);
    if (w->dir[0])
      io_remove_dir (io, w->dir);
    if (w->lockpath[0])
      io->ops->unlink (io, w->lockpath);
    io->ops->rmdir (io, vmdir);      /* only if empty */
    pthread_mutex_destroy (&w->lock);
    free (w);
    ERROR_RESTORE (saved);
  }
  return NULL;
}

const char *
repo_writer_id (struct repo_writer *w)
{
  /* "" if the id could not be claimed: the writer has failed then */
  if (claim_wait (w) == -1)
    writer_fail (w);
  return w->id;
}

/* Write the chunk file encoded in c->buf (flen bytes, len of plaintext)
 * as path: temp file, [fsync], rename (step 1 of the commit protocol). */
static int
store_encoded (struct repo_writer *w, struct codec *c, const char *path,
               size_t flen, size_t len)
{
  struct repo_io *io = w->r->io;
  struct repo_file *f;
  char tmp[128], dir[16], suffix[48];
  size_t raw = chunk_raw_bytes (c->buf);

  io_temp_suffix (suffix, sizeof suffix);
  snprintf (tmp, sizeof tmp, "%s%s", path, suffix);
  memcpy (dir, path, 11);
  dir[11] = '\0';                        /* "chunks/abcd" */
  f = io->ops->open (io, tmp, O_WRONLY | O_CREAT | O_EXCL);
  if (!f && errno == ENOENT) {
    if (io_mkdir_p1 (io, dir) == -1)
      return -1;
    f = io->ops->open (io, tmp, O_WRONLY | O_CREAT | O_EXCL);
  }
  if (!f)
    return -1;
  if (w->r->crypt)
    flen = crypt_chunk_seal (w->r->crypt, c->buf, flen, path);
  if (io_write_all (io, f, c->buf, flen, 0) == -1 ||
      (w->r->sync_each_chunk && io->ops->fsync (io, f) == -1)) {
    error_prefix ("chunk %s", path + 12);
    io->ops->close (io, f);
    io->ops->unlink (io, tmp);
    return -1;
  }
  /* Sync level "filesystem": the syncfs before the indexes waits only for
   * what the disk has not yet taken while we went on hashing. */
  if (!w->r->sync_each_chunk && io->ops->start_writeback)
    io->ops->start_writeback (io, f);
  if (io->ops->close (io, f) == -1 || io->ops->rename (io, tmp, path) == -1) {
    int e = errno;
    io->ops->unlink (io, tmp);
    errno = e;
    return -1;
  }
  if (w->dirty) {
    unsigned k = strtoul (dir + 7, NULL, 16);
    pthread_mutex_lock (&w->lock);
    w->dirty[k / 8] |= 1 << (k % 8);
    pthread_mutex_unlock (&w->lock);
  }
  atomic_fetch_add (&w->new_chunks, 1);
  atomic_fetch_add (&w->new_bytes, len);
  atomic_fetch_add (&w->stored_bytes, flen);
  atomic_fetch_add (&w->raw_bytes, raw);
  return 0;
}

/* Touch the chunk named digest if it exists: both the existence test and
 * what keeps a concurrent GC away from it (invariant 4).  1 it exists, 0
 * it does not (path set), -1 error. */
static int
touch_existing (struct repo_writer *w, const uint8_t digest[REPO_DIGEST_LEN],
                char path[80])
{
  struct repo_io *io = w->r->io;

  heartbeat (w);
  repo_chunk_path (digest, path);
  if (io->ops->touch (io, path) == 0) {
    atomic_fetch_add (&w->reused, 1);
    return 1;
  }
  return errno == ENOENT ? 0 : -1;
}

/* w has failed with the error set now: the first failure's message is
 * kept, for the threads that find the writer failed before the failing
 * one has reported it (the report then names the cause either way). */
static void
writer_fail (struct repo_writer *w)
{
  pthread_mutex_lock (&w->lock);
  if (!w->failure[0])
    snprintf (w->failure, sizeof w->failure, "%s", error_msg ());
  w->failed = true;
  pthread_mutex_unlock (&w->lock);
}

/* -1 with the error set if w has failed (it can only be aborted). */
static int
writer_failed (struct repo_writer *w)
{
  char why[sizeof w->failure], id[TIMESTAMP_LEN + 1];

  if (!w->failed)
    return 0;
  pthread_mutex_lock (&w->lock);
  snprintf (why, sizeof why, "%s", w->failure);
  strcpy (id, w->id);                   /* "" while it is being claimed */
  pthread_mutex_unlock (&w->lock);
  error_setx ("writer of %s%s%s has failed: %s", w->vm, id[0] ? "@" : "", id,
              why[0] ? why : "an earlier error");
  return -1;
}

static int
writer_usable (struct repo_writer *w, size_t len)
{
  if (writer_failed (w) == -1)
    return -1;
  if (len == 0 || len > w->r->chunk_size) {
    error_setx ("chunk of %zu bytes does not fit the chunk size %" PRIu32,
                len, w->r->chunk_size);
    writer_fail (w);
    return -1;
  }
  return 0;
}

int
repo_writer_put_chunk (struct repo_writer *w, const void *data, size_t len,
                       uint8_t digest[REPO_DIGEST_LEN], bool *was_new)
{
  struct repo *r = w->r;
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN];
  struct codec *c;
  char path[80];
  int e;

  if (writer_usable (w, len) == -1)
    return -1;
  c = codec_get (r);
  chunk_digest (r, c, data, len, fh, digest);
  e = touch_existing (w, digest, path);
  if (e != 0) {
    if (was_new) *was_new = false;
    goto done;
  }
  e = store_encoded (w, c, path, chunk_encode (r, c, data, len,
                                               (const uint8_t (*)[32]) fh),
                     len);
  if (was_new) *was_new = true;
 done:
  codec_put (r, c);
  if (e == -1)
    writer_fail (w);
  return e == -1 ? -1 : 0;
}

int
repo_writer_patch_chunk (struct repo_writer *w,
                         const uint8_t base[REPO_DIGEST_LEN],
                         uint8_t *data, size_t len,
                         const struct repo_range *ranges, size_t nranges,
                         uint8_t digest[REPO_DIGEST_LEN])
{
  struct repo *r = w->r;
  struct chunk_patch pp;
  struct codec *c;
  char path[80];
  size_t i, blen, got;
  int e;

  if (writer_usable (w, len) == -1)
    return -1;
  if (!r->tree) {
    /* Unframed chunks: the whole base, the ranges over it, stored anew. */
    CLEANUP_FREE uint8_t *whole = xmalloc (r->chunk_size);
    if (repo_chunk_get (r, base, whole, r->chunk_size, &got) == -1 ||
        got != len)
      return 0;
    for (i = 0; i < nranges; i++)
      memcpy (whole + ranges[i].off, data + ranges[i].off, ranges[i].len);
    if (is_zero (whole, len)) {
      memset (digest, 0, REPO_DIGEST_LEN);
      return 1;
    }
    return repo_writer_put_chunk (w, whole, len, digest, NULL) == -1 ? -1 : 1;
  }
  c = codec_get (r);
  if (!c->in)
    c->in = xmalloc (c->buflen);
  if (chunk_read_file (r, base, c->in, c->buflen, &blen) == -1) {
    codec_put (r, c);
    return 0;
  }
  if (chunk_patch_plan (r, c, blen, base, data, len, ranges, nranges, &pp,
                        digest) == -1) {
    repo_chunk_path (base, path);
    error_prefix ("chunk %s", path + 12);
    codec_put (r, c);
    return 0;
  }
  e = 0;
  if (!repo_digest_is_zero (digest)) {
    e = touch_existing (w, digest, path);
    if (e == 0)
      e = store_encoded (w, c, path, chunk_patch_encode (r, c, data, &pp),
                         len);
  }
  codec_put (r, c);
  if (e == -1) {
    writer_fail (w);
    return -1;
  }
  return 1;
}

int
repo_writer_reuse_chunk (struct repo_writer *w,
                         const uint8_t digest[REPO_DIGEST_LEN])
{
  char path[80];

  if (writer_failed (w) == -1)
    return -1;
  if (repo_digest_is_zero (digest))
    return 0;
  switch (touch_existing (w, digest, path)) {
  case 1:
    return 0;
  case 0:
    error_set (ENOENT, "chunk %s is not in the repository", path + 12);
    return -1;
  default:
    writer_fail (w);
    return -1;
  }
}

void
repo_writer_set_checkpoint (struct repo_writer *w, const char *name)
{
  snprintf (w->checkpoint, sizeof w->checkpoint, "%s", name ? name : "");
}

int
repo_writer_add_disk (struct repo_writer *w, const char *name, uint64_t size,
                      const char *format,
                      const uint8_t (*digests)[REPO_DIGEST_LEN])
{
  uint64_t n = DIV_ROUND_UP (size, w->r->chunk_size), i;
  struct wdisk *d;

  if (!disk_name_is_valid (name)) {
    error_setx ("'%s' is not a valid disk name ([A-Za-z0-9._-], at most %d)",
                name, DISK_NAME_MAX);
    return -1;
  }
  if (size == 0) {
    error_setx ("disk %s has size 0; a restore point cannot hold an empty "
                "disk", name);
    return -1;
  }
  for (i = 0; i < w->ndisks; i++)
    if (strcmp (w->disks[i].name, name) == 0) {
      error_setx ("disk %s given twice", name);
      return -1;
    }
  if (w->ndisks >= REPO_MAX_DISKS) {
    error_setx ("too many disks (at most %d)", REPO_MAX_DISKS);
    return -1;
  }
  d = &w->disks[w->ndisks++];
  snprintf (d->name, sizeof d->name, "%s", name);
  snprintf (d->format, sizeof d->format, "%s", format ? format : "");
  d->size = size;
  d->digests = xmalloc (n * REPO_DIGEST_LEN);
  memcpy (d->digests, digests, n * REPO_DIGEST_LEN);
  for (i = 0; i < n; i++)
    if (repo_digest_is_zero (d->digests[i]))
      d->zero_chunks++;
  return 0;
}

int
repo_writer_set_domain_xml (struct repo_writer *w, const char *xml)
{
  free (w->domain_xml);
  w->domain_xml = xstrdup (xml);
  return 0;
}

void
repo_writer_set_info (struct repo_writer *w, const char *kind,
                      const char *consistency, const char *source,
                      const char *parent, const struct repo_point_stats *st)
{
  if (kind) snprintf (w->kind, sizeof w->kind, "%s", kind);
  if (consistency)
    snprintf (w->consistency, sizeof w->consistency, "%s", consistency);
  if (source) snprintf (w->source, sizeof w->source, "%s", source);
  if (parent) snprintf (w->parent, sizeof w->parent, "%s", parent);
  if (st) w->stats = *st;
}

void
repo_writer_get_stats (struct repo_writer *w, struct repo_point_stats *s)
{
  *s = w->stats;
  s->new_chunks = w->new_chunks;
  s->new_bytes = w->new_bytes;
  s->stored_bytes = w->stored_bytes;
  s->reused_chunks = w->reused;
  s->raw_bytes = w->r->compress ? (int64_t) w->raw_bytes : -1;
}

static void
writer_free (struct repo_writer *w, bool remove_dir)
{
  struct repo_io *io = w->r->io;
  size_t i;
  ERROR_SAVE (saved);

  /* the claim first: nothing of it may be left behind nor outlive w */
  claim_wait (w);
  if (remove_dir) {
    CLEANUP_FREE char *vmdir = xasprintf ("points/%s", w->vm);
    if (w->dir[0])                   /* "": no id was claimed */
      io_remove_dir (io, w->dir);
    io->ops->rmdir (io, vmdir);      /* only if empty: no other point */
  }
  io->ops->unlink (io, w->lockpath);
  for (i = 0; i < w->ndisks; i++)
    free (w->disks[i].digests);
  free (w->dirty);
  free (w->domain_xml);
  pthread_mutex_destroy (&w->lock);
  free (w);
  ERROR_RESTORE (saved);
}

void
repo_writer_abort (struct repo_writer *w)
{
  if (w)
    writer_free (w, true);
}

/* Step 1: make every chunk durable. */
static int
sync_chunks (struct repo_writer *w)
{
  struct repo_io *io = w->r->io;
  unsigned k;
  char dir[16];

  if (!w->dirty)
    return io->ops->sync_all (io);
  for (k = 0; k < 65536; k++) {
    if (!(w->dirty[k / 8] & (1 << (k % 8))))
      continue;
    snprintf (dir, sizeof dir, "chunks/%04x", k);
    if (io->ops->sync_dir (io, dir) == -1)
      return -1;
  }
  return io->ops->sync_dir (io, "chunks");
}

int
repo_writer_commit (struct repo_writer *w, struct repo_manifest *out)
{
  struct repo_io *io = w->r->io;
  struct repo_manifest *m = xcalloc (1, sizeof *m);
  CLEANUP_FREE char *vmdir = xasprintf ("points/%s", w->vm);
  CLEANUP_FREE char *man_path = NULL;  /* w->dir: once claimed (below) */
  char *json = NULL;
  size_t i;

  if (writer_failed (w) == -1)
    goto err;

  /* Step 1. */
  if (sync_chunks (w) == -1)
    goto err;
  crash_step (1);

  /* The point's directory (claimed on its own thread meanwhile on an
   * object store: see the top) before anything goes into it. */
  if (claim_wait (w) == -1)
    goto err;
  man_path = xasprintf ("%s/manifest.json", w->dir);
  if (w->ndisks == 0) {
    error_setx ("restore point %s@%s has no disks", w->vm, w->id);
    goto err;
  }

  /* Step 2. */
  for (i = 0; i < w->ndisks; i++) {
    struct wdisk *d = &w->disks[i];
    struct repo_disk_info *di = &m->disks[i];
    CLEANUP_FREE char *path = xasprintf ("%s/%s.fidx", w->dir, d->name);
    CLEANUP_FREE uint8_t *buf = NULL;
    size_t len;

    buf = fidx_encode (d->size, w->r->chunk_size,
                       (const uint8_t (*)[REPO_DIGEST_LEN]) d->digests, &len);
    if (repo_meta_write (w->r, path, buf, len) == -1)
      goto err;
    snprintf (di->name, sizeof di->name, "%s", d->name);
    snprintf (di->format, sizeof di->format, "%s", d->format);
    di->size = d->size;
    di->zero_chunks = d->zero_chunks;
    repo_sha256 (buf, len, di->index_sha256);
  }
  if (w->domain_xml) {
    CLEANUP_FREE char *path = xasprintf ("%s/domain.xml", w->dir);
    if (repo_meta_write (w->r, path, w->domain_xml,
                         strlen (w->domain_xml)) == -1)
      goto err;
  }
  /* The point directory's own entry in points/<vm> must be durable before
   * the manifest makes the point visible. */
  if (io->ops->sync_dir (io, vmdir) == -1 ||
      io->ops->sync_dir (io, "points") == -1)
    goto err;
  crash_step (2);

  /* A point of this id was pruned before (claim_point found its marker
   * when it claimed the id): the marker goes before the point exists, so
   * that it never stands for this one (repo_point_pruned). */
  if (w->pruned) {
    CLEANUP_FREE char *pm = xasprintf ("pruned/%s/%s", w->vm, w->id);
    CLEANUP_FREE char *pm_dir = xasprintf ("pruned/%s", w->vm);
    if ((io->ops->unlink (io, pm) == -1 && errno != ENOENT) ||
        io->ops->sync_dir (io, pm_dir) == -1)
      goto err;
    error_clear ();
  }

  /* Step 3. */
  snprintf (m->vm, sizeof m->vm, "%s", w->vm);
  strcpy (m->id, w->id);
  m->time = w->time;
  strcpy (m->parent, w->parent);
  strcpy (m->kind, w->kind);
  strcpy (m->consistency, w->consistency);
  strcpy (m->source, w->source);
  strcpy (m->checkpoint, w->checkpoint);
  m->chunk_size = w->r->chunk_size;
  m->has_domain_xml = m->domain_xml_pinned = w->domain_xml != NULL;
  if (w->domain_xml)
    repo_sha256 (w->domain_xml, strlen (w->domain_xml), m->domain_xml_sha256);
  m->ndisks = w->ndisks;
  repo_writer_get_stats (w, &m->stats);
  json = manifest_encode (m);
  if (repo_meta_write (w->r, man_path, json, strlen (json)) == -1)
    goto err;
  free (json);
  crash_step (3);

  if (out)
    *out = *m;
  free (m);
  writer_free (w, false);
  return 0;
 err:
  free (json);
  free (m);
  writer_free (w, true);
  return -1;
}
