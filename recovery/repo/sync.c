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
 */
#include <errno.h>

#include "recovery/repo/crypt.h"

struct sync_job {
  struct repo *src, *dst;
  bool same_names;
  uint8_t *buf;                          /* one chunk */
  repo_sync_fn fn;
  void *opaque;
  struct repo_sync_progress *pg;
};

static bool
same_names (const struct repo *a, const struct repo *b)
{
  if (a->tree != b->tree || !a->crypt != !b->crypt)
    return false;
  return !a->crypt || memcmp (a->crypt->name_key, b->crypt->name_key,
                              CRYPT_KEY_LEN) == 0;
}

/* Chunk d of SRC into DST; its DST name into out. */
static int
sync_chunk (struct sync_job *j, struct repo_writer *w, const uint8_t *d,
            uint8_t out[REPO_DIGEST_LEN])
{
  size_t len;
  bool was_new;

  memcpy (out, d, REPO_DIGEST_LEN);
  if (repo_digest_is_zero (d))
    return 0;
  if (j->same_names) {
    if (repo_writer_reuse_chunk (w, d) == 0) {
      j->pg->chunks_present++;
      return 0;
    }
    if (errno != ENOENT)
      return -1;
    error_clear ();
  }
  if (repo_chunk_get (j->src, d, j->buf, j->src->chunk_size, &len) == -1 ||
      repo_writer_put_chunk (w, j->buf, len, out, &was_new) == -1)
    return -1;
  if (j->same_names && memcmp (out, d, REPO_DIGEST_LEN) != 0) {
    char hex[2 * REPO_DIGEST_LEN + 1];
    hex_encode (d, REPO_DIGEST_LEN, hex);
    error_set (EIO, "chunk %s: its content has another name in the "
               "destination", hex);
    return -1;
  }
  if (was_new) {
    j->pg->chunks_copied++;
    j->pg->bytes_copied += len;
  }
  else
    j->pg->chunks_present++;
  return 0;
}

static int
sync_disk (struct sync_job *j, struct repo_writer *w,
           const struct repo_manifest *m, const struct repo_disk_info *di)
{
  struct repo_disk *d = repo_disk_open (j->src, m->vm, m->id, di->name);
  CLEANUP_FREE uint8_t (*out)[REPO_DIGEST_LEN] = NULL;
  uint64_t i, n;
  int ret = -1;

  if (!d)
    return -1;
  n = repo_disk_nchunks (d);
  out = xcalloc (n ? n : 1, REPO_DIGEST_LEN);
  for (i = 0; i < n; i++) {
    if (sync_chunk (j, w, repo_disk_digest (d, i), out[i]) == -1) {
      disk_chunk_error (d, i);
      goto out;
    }
    j->pg->chunks_done++;
    if (j->fn && (j->pg->chunks_done % 64 == 0 || i + 1 == n))
      j->fn (j->opaque, j->pg);
  }
  ret = repo_writer_add_disk (w, di->name, di->size, di->format,
                              (const uint8_t (*)[REPO_DIGEST_LEN]) out);
 out:
  repo_disk_close (d);
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
    size_t len;
    if (!d)
      return -1;
    for (uint64_t i = 0; i < repo_disk_nchunks (d); i++) {
      const uint8_t *dg = repo_disk_digest (d, i);
      if (!repo_digest_is_zero (dg) &&
          repo_chunk_get (j->dst, dg, j->buf, j->dst->chunk_size, &len) == -1) {
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
 * import's) leftover; removed so the point can be written again. */
static int
clear_leftover (struct repo *dst, const char *vm, const char *id)
{
  CLEANUP_FREE char *dir = xasprintf ("points/%s/%s", vm, id);
  struct repo_stat st;

  if (dst->io->ops->stat (dst->io, dir, &st) == -1)
    return errno == ENOENT ? (error_clear (), 0) : -1;
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

  if (src->chunk_size != dst->chunk_size) {
    error_setx ("cannot copy %s@%s from %s to %s: their chunk sizes differ "
                "(%" PRIu32 " and %" PRIu32 ")", vm, id, src->location,
                dst->location, src->chunk_size, dst->chunk_size);
    return -1;
  }
  if (repo_manifest_read (src, vm, id, m) == -1)
    return -1;
  snprintf (pg->point, sizeof pg->point, "%s@%s", vm, id);
  if (dst->io->ops->stat (dst->io, man, &st) == 0)
    return 1;                   /* DST has it already */
  if (errno != ENOENT)
    return -1;
  j.buf = xmalloc (src->chunk_size);
  if (copy_point (&j, m) == 0 && (!verify || verify_point (&j, m) == 0))
    ret = 0;
  free (j.buf);
  return ret;
}
