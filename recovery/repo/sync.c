/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * repo sync: copy restore points from one repository to another (any
 * backends, encrypted or not, the same keys or not).
 *
 * A point is copied through a writer of the destination, so the commit
 * protocol holds there as for an import: chunks, then indexes, then the
 * manifest; a point exists in DST iff its manifest does.  A sync killed
 * at any moment leaves DST consistent (an incomplete point directory that
 * GC or the next sync removes); a rerun skips the points DST has and the
 * chunks it has, so it copies only the rest.
 *
 * Names: when both repositories name chunks alike (both plain, or both
 * encrypted with the same master key, and the same hash), a chunk DST has
 * is only touched (GC safety), never read.  Otherwise every chunk is read
 * from SRC (decoded and checked against its name: decrypted with SRC's
 * key), named with DST's key and stored if DST lacks it (re-encrypted),
 * and the index is rewritten with DST's names.  Every chunk copied is
 * checked on the way; --verify reads the point back from DST.
 *
 * Chunk sizes: repositories of different chunk sizes (powers of two, so
 * one divides the other) are copied through units of the larger size:
 * each unit's source chunks are read (checked), its bytes cut into DST's
 * chunks, and each stored by its DST name if DST lacks it (all-zero ones
 * become the zero digest, as an import makes them).  Nothing is reused by
 * name then: every chunk is read.  A source chunk shorter or longer than
 * its place in the disk is an error naming it, whatever the chunk sizes
 * (a hostile SRC's index may name a chunk of another length: copied, the
 * point would read as broken in DST); --verify checks each length too
 * (a chunk DST had, reused by name, is read only then).
 *
 * A disk's chunks are copied by SYNC_THREADS threads (reading, hashing,
 * compressing and sealing are CPU work; on NFS each waits for the
 * server), which take chunk numbers in turn; the first error stops them
 * and is the one reported.
 */
#include <errno.h>

#include "recovery/repo/crypt.h"

#define SYNC_THREADS 4

struct sync_job {
  struct repo *src, *dst;
  bool same_names;
  uint8_t *buf;                          /* one chunk (verify) */
  repo_sync_fn fn;
  void *opaque;
  struct repo_sync_progress *pg;
};

/* One disk being copied by the threads: units of unit bytes (the larger
 * chunk size), each of unit / sc source chunks and unit / dc DST ones;
 * DST's digests into out (nout of them). */
struct sync_disk {
  struct sync_job *j;
  struct repo_writer *w;
  struct repo_disk *d;
  uint32_t sc, dc, unit;
  uint64_t size, nunits, nout;
  uint8_t (*out)[REPO_DIGEST_LEN];
  _Atomic uint64_t next;
  _Atomic bool failed;
  pthread_mutex_t lock;                  /* j->pg, done, the callback, err */
  uint64_t done;                         /* chunks of the disk gone through */
  char err[1024];
  int err_errno;
  uint64_t err_chunk;
};

static bool
same_names (const struct repo *a, const struct repo *b)
{
  if (a->tree != b->tree || !a->crypt != !b->crypt)
    return false;
  return !a->crypt || memcmp (a->crypt->name_key, b->crypt->name_key,
                              CRYPT_KEY_LEN) == 0;
}

/* Chunk i of SRC's disk sd (of the length the disk has there) into DST
 * (buf: a chunk's room); its DST name into out.  *copied: the plaintext
 * bytes written, or -1 if DST had it. */
static int
sync_chunk (struct sync_job *j, struct repo_writer *w, uint8_t *buf,
            struct repo_disk *sd, uint64_t i, uint8_t out[REPO_DIGEST_LEN],
            int64_t *copied)
{
  const uint8_t *d = repo_disk_digest (sd, i);
  ssize_t len;
  bool was_new;

  memcpy (out, d, REPO_DIGEST_LEN);
  *copied = -1;
  if (repo_digest_is_zero (d))
    return 0;
  if (j->same_names) {
    if (repo_writer_reuse_chunk (w, d) == 0)
      return 0;
    if (errno != ENOENT)
      return -1;
    error_clear ();
  }
  if ((len = disk_chunk_get (sd, i, buf, j->src->chunk_size)) == -1 ||
      repo_writer_put_chunk (w, buf, len, out, &was_new) == -1)
    return -1;
  if (j->same_names && memcmp (out, d, REPO_DIGEST_LEN) != 0) {
    char hex[2 * REPO_DIGEST_LEN + 1];
    hex_encode (d, REPO_DIGEST_LEN, hex);
    error_set (EIO, "chunk %s: its content has another name in the "
               "destination", hex);
    return -1;
  }
  if (was_new)
    *copied = len;
  return 0;
}

/* DST chunk k gone through: copied (its bytes), or -1 (DST had it, or
 * zero: out[k] says which). */
static void
count (struct sync_disk *sd, uint64_t k, int64_t copied)
{
  struct repo_sync_progress *pg = sd->j->pg;

  pthread_mutex_lock (&sd->lock);
  if (copied >= 0) {
    pg->chunks_copied++;
    pg->bytes_copied += copied;
  }
  else if (!repo_digest_is_zero (sd->out[k]))
    pg->chunks_present++;
  pg->chunks_done++;
  /* (sd->done counted first: behind the || it was skipped on every
   * 64th chunk, and the last call of a disk could be missed) */
  sd->done++;
  if (sd->j->fn && (pg->chunks_done % 64 == 0 || sd->done == sd->nout))
    sd->j->fn (sd->j->opaque, pg);
  pthread_mutex_unlock (&sd->lock);
}

/* Unit u of a copy between chunk sizes (buf: unit bytes): its source
 * chunks read into buf, cut into DST chunks, each stored and counted.
 * On error *bad is the source chunk that failed, if one did. */
static int
rechunk_unit (struct sync_disk *sd, uint8_t *buf, uint64_t u, uint64_t *bad)
{
  uint64_t off = u * sd->unit, end = MIN (off + sd->unit, sd->size), o;
  int64_t copied;

  /* (a unit starts at a source chunk: each has a chunk's room in buf) */
  for (o = off; o < end; o += sd->sc) {
    uint64_t i = o / sd->sc;

    *bad = i;
    if (repo_digest_is_zero (repo_disk_digest (sd->d, i)))
      memset (buf + (o - off), 0, MIN (sd->sc, end - o));
    else if (disk_chunk_get (sd->d, i, buf + (o - off), sd->sc) == -1)
      return -1;
  }
  *bad = UINT64_MAX;
  for (o = off; o < end; o += sd->dc) {
    uint64_t k = o / sd->dc;
    size_t n = MIN (sd->dc, end - o);
    bool was_new = false;

    copied = -1;
    if (is_zero (buf + (o - off), n))
      memset (sd->out[k], 0, REPO_DIGEST_LEN);
    else if (repo_writer_put_chunk (sd->w, buf + (o - off), n, sd->out[k],
                                    &was_new) == -1)
      return -1;
    if (was_new)
      copied = n;
    count (sd, k, copied);
  }
  return 0;
}

/* Unit u of a copy between equal chunk sizes: source chunk u. */
static int
same_unit (struct sync_disk *sd, uint8_t *buf, uint64_t u, uint64_t *bad)
{
  int64_t copied;

  *bad = u;
  if (sync_chunk (sd->j, sd->w, buf, sd->d, u, sd->out[u], &copied) == -1)
    return -1;
  count (sd, u, copied);
  return 0;
}

static void *
sync_worker (void *arg)
{
  struct sync_disk *sd = arg;
  uint8_t *buf = xmalloc (sd->unit);
  uint64_t u, bad;
  int r;

  while (!sd->failed && (u = atomic_fetch_add (&sd->next, 1)) < sd->nunits) {
    r = sd->sc == sd->dc ? same_unit (sd, buf, u, &bad)
                         : rechunk_unit (sd, buf, u, &bad);
    if (r == 0)
      continue;
    pthread_mutex_lock (&sd->lock);
    if (!sd->failed) {
      snprintf (sd->err, sizeof sd->err, "%s", error_msg ());
      sd->err_errno = error_errno ();
      sd->err_chunk = bad;
      sd->failed = true;
    }
    pthread_mutex_unlock (&sd->lock);
  }
  free (buf);
  return NULL;
}

static int
sync_disk (struct sync_job *j, struct repo_writer *w,
           const struct repo_manifest *m, const struct repo_disk_info *di)
{
  struct sync_disk sd = { .j = j, .w = w };
  pthread_t th[SYNC_THREADS];
  size_t k, started = 0;
  int ret = -1;

  /* The index checked against m, the manifest read once: read again, a
   * hostile SRC's could give the disk another size than m's, which
   * repo_writer_add_disk takes (as many digests as it says). */
  if (!(sd.d = repo_disk_open_m (j->src, m, di->name)))
    return -1;
  pthread_mutex_init (&sd.lock, NULL);
  sd.sc = j->src->chunk_size;
  sd.dc = j->dst->chunk_size;
  sd.unit = MAX (sd.sc, sd.dc);
  sd.size = repo_disk_size (sd.d);
  sd.nunits = sd.sc == sd.dc ? repo_disk_nchunks (sd.d)
                             : (sd.size + sd.unit - 1) / sd.unit;
  sd.nout = (sd.size + sd.dc - 1) / sd.dc;
  sd.out = xcalloc (MAX (sd.nout, 1), REPO_DIGEST_LEN);
  for (k = 0; k < SYNC_THREADS; k++)
    if (pthread_create (&th[started], NULL, sync_worker, &sd) == 0)
      started++;
  if (started == 0)
    sync_worker (&sd);
  for (k = 0; k < started; k++)
    pthread_join (th[k], NULL);
  if (sd.failed) {
    error_restore (sd.err_errno, sd.err);
    if (sd.err_chunk != UINT64_MAX)
      disk_chunk_error (sd.d, sd.err_chunk);
  }
  else
    ret = repo_writer_add_disk (w, di->name, di->size, di->format,
                                (const uint8_t (*)[REPO_DIGEST_LEN]) sd.out);
  free (sd.out);
  pthread_mutex_destroy (&sd.lock);
  repo_disk_close (sd.d);
  return ret;
}

/* Read every chunk of the point back from DST (--verify). */
static int
verify_point (struct sync_job *j, const struct repo_manifest *m)
{
  struct repo_manifest back;

  if (repo_manifest_read (j->dst, m->vm, m->id, &back) == -1)
    return -1;
  for (size_t k = 0; k < back.ndisks; k++) {
    struct repo_disk *d = repo_disk_open (j->dst, m->vm, m->id,
                                          back.disks[k].name);
    if (!d)
      return -1;
    for (uint64_t i = 0; i < repo_disk_nchunks (d); i++) {
      if (!repo_digest_is_zero (repo_disk_digest (d, i)) &&
          disk_chunk_get (d, i, j->buf, j->dst->chunk_size) == -1) {
        disk_chunk_error (d, i);
        repo_disk_close (d);
        return -1;
      }
      j->pg->chunks_verified++;
    }
    repo_disk_close (d);
  }
  return 0;
}

/* A directory of vm@id in DST without a manifest: a killed sync's (or
 * import's) leftover; removed so the point can be written again.  Not
 * if a live writer of DST may be writing it (a backup that claimed that
 * id: SRC, perhaps hostile, names its points as it likes). */
static int
clear_leftover (struct repo *dst, const char *vm, const char *id)
{
  CLEANUP_FREE char *dir = xasprintf ("points/%s/%s", vm, id);
  struct repo_stat st;
  int live;

  if (dst->io->ops->stat (dst->io, dir, &st) == -1)
    return errno == ENOENT ? (error_clear (), 0) : -1;
  if ((live = gc_dir_maybe_written (dst->io, st.mtime)) == -1)
    return -1;
  if (live) {
    error_setx ("%s@%s: the destination has an unfinished point of that id "
                "that a running import or backup may be writing: not "
                "removed (run the sync again once it is done)", vm, id);
    return -1;
  }
  return io_remove_dir (dst->io, dir);
}

static int
copy_point (struct sync_job *j, const struct repo_manifest *m)
{
  struct repo_writer *w;
  CLEANUP_FREE char *xml = NULL;

  if (clear_leftover (j->dst, m->vm, m->id) == -1 ||
      !(w = repo_writer_begin (j->dst, m->vm, m->time)))
    return -1;
  if (strcmp (repo_writer_id (w), m->id) != 0) {
    error_setx ("%s@%s: its id is not its time; cannot copy it", m->vm, m->id);
    goto err;
  }
  for (size_t k = 0; k < m->ndisks; k++)
    if (sync_disk (j, w, m, &m->disks[k]) == -1)
      goto err;
  if (m->has_domain_xml) {
    if (!(xml = repo_domain_xml_read (j->src, m->vm, m->id)) ||
        repo_writer_set_domain_xml (w, xml) == -1)
      goto err;
  }
  repo_writer_set_checkpoint (w, m->checkpoint);
  repo_writer_set_info (w, m->kind, m->consistency, m->source, m->parent,
                        &m->stats);
  if (repo_writer_commit (w, NULL) == -1)
    return -1;
  if (m->protected && repo_point_protect (j->dst, m->vm, m->id, true) == -1)
    return -1;
  return 0;
 err:
  repo_writer_abort (w);
  return -1;
}

int
repo_sync_point (struct repo *src, struct repo *dst, const char *vm,
                 const char *id, bool verify, repo_sync_fn fn, void *opaque,
                 struct repo_sync_progress *pg)
{
  struct sync_job j = { src, dst, same_names (src, dst), NULL, fn, opaque,
                        pg };
  CLEANUP_FREE struct repo_manifest *m = xmalloc (sizeof *m);
  CLEANUP_FREE char *man = xasprintf ("points/%s/%s/manifest.json", vm, id);
  struct repo_stat st;
  int ret = -1;

  if (src->chunk_size != dst->chunk_size)
    j.same_names = false;     /* other chunks: nothing is DST's by name */
  if (repo_manifest_read (src, vm, id, m) == -1)
    return -1;
  snprintf (pg->point, sizeof pg->point, "%s@%s", vm, id);
  if (dst->io->ops->stat (dst->io, man, &st) == 0)
    return 1;                   /* DST has it already */
  if (errno != ENOENT)
    return -1;
  j.buf = xmalloc (dst->chunk_size);         /* verify reads DST's */
  if (copy_point (&j, m) == 0 && (!verify || verify_point (&j, m) == 0))
    ret = 0;
  free (j.buf);
  return ret;
}
