/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading one disk of a restore point: its fixed index, checked against
 * the manifest, and reads that go chunk by chunk (zero chunks are zeros
 * without any I/O; the others are read, decoded and verified, directly or
 * through the shared cache).
 */
#include <errno.h>

#include "recovery/repo/crypt.h"

/* cache.c */
int cache_read (struct repo_cache *c, const uint8_t digest[REPO_DIGEST_LEN],
                void *buf, size_t off, size_t len, bool stream);

/* The index of disk di at path, checked against the manifest's SHA-256
 * (and, sealed, its GCM tag).  A local copy that fails (the S3 read
 * cache) is dropped and the object read again (the io's uncache). */
static char *
index_read (struct repo *r, const struct repo_disk_info *di,
            const char *path, size_t *len)
{
  uint8_t sum[REPO_DIGEST_LEN];
  uint64_t want;
  char *buf;

  /* The manifest gives the index's exact length: a larger file is
   * refused before it is read (a small disk's index padded to 4 GiB
   * would otherwise be read whole only to fail its SHA-256). */
  if (MUL_OVERFLOW (DIV_ROUND_UP (di->size, r->chunk_size),
                    (uint64_t) REPO_DIGEST_LEN, &want) ||
      want > (1ULL << 32)) {
    error_set (EIO, "%s/%s: the manifest gives disk '%s' a size of %" PRIu64
               " bytes, too large for an index", r->location, path, di->name,
               di->size);
    return NULL;
  }
  want += FIDX_HDR_LEN;
  for (int again = 0; ; again++) {
    if (repo_meta_read (r, path, want, &buf, len) == 0) {
      repo_sha256 (buf, *len, sum);
      if (memcmp (sum, di->index_sha256, REPO_DIGEST_LEN) == 0)
        return buf;
      free (buf);
      error_set (EIO, "%s/%s: index is corrupt (its SHA-256 does not match "
                 "the manifest)", r->location, path);
    }
    if (again || !r->io->ops->uncache || !r->io->ops->uncache (r->io, path))
      return NULL;
  }
}

struct repo_disk *
repo_disk_open_m (struct repo *r, const struct repo_manifest *m,
                  const char *disk)
{
  const char *vm = m->vm, *id = m->id;
  struct repo_disk *d;
  const struct repo_disk_info *di = NULL;
  CLEANUP_FREE char *path = NULL, *buf = NULL;
  size_t len, i;
  uint64_t size, count;
  uint32_t cs;

  for (i = 0; i < m->ndisks; i++)
    if (strcmp (m->disks[i].name, disk) == 0)
      di = &m->disks[i];
  if (!di) {
    char names[512] = "";
    for (i = 0; i < m->ndisks; i++)
      snprintf (names + strlen (names), sizeof names - strlen (names), "%s%s",
                i ? ", " : "", m->disks[i].name);
    error_setx ("restore point %s@%s has no disk '%s' (it has: %s)", vm, id,
                disk, names);
    return NULL;
  }
  path = xasprintf ("points/%s/%s/%s.fidx", vm, id, disk);
  if (!(buf = index_read (r, di, path, &len)))
    return NULL;
  d = xcalloc (1, sizeof *d);
  if (fidx_decode ((uint8_t *) buf, len, &size, &cs, &count, &d->digests) == -1) {
    error_prefix ("%s/%s", r->location, path);
    free (d);
    return NULL;
  }
  if (size != di->size || cs != r->chunk_size) {
    error_set (EIO, "%s/%s: index disagrees with the manifest or repository "
               "(size %" PRIu64 " vs %" PRIu64 ", chunk size %" PRIu32 ")",
               r->location, path, size, di->size, cs);
    free (d->digests);
    free (d);
    return NULL;
  }
  d->repo = r;
  d->size = size;
  d->nchunks = count;
  d->chunk_size = cs;
  snprintf (d->vm, sizeof d->vm, "%s", vm);
  snprintf (d->id, sizeof d->id, "%s", id);
  snprintf (d->name, sizeof d->name, "%s", disk);
  snprintf (d->point, sizeof d->point, "%s@%s", vm, id);
  return d;
}

struct repo_disk *
repo_disk_open (struct repo *r, const char *vm, const char *id,
                const char *disk)
{
  struct repo_manifest m;

  if (repo_manifest_read (r, vm, id, &m) == -1)
    return NULL;
  return repo_disk_open_m (r, &m, disk);
}

void
repo_disk_close (struct repo_disk *d)
{
  if (!d)
    return;
  free (d->digests);
  free (d);
}

uint64_t repo_disk_size (const struct repo_disk *d) { return d->size; }
uint64_t repo_disk_nchunks (const struct repo_disk *d) { return d->nchunks; }
const char *repo_disk_name (const struct repo_disk *d) { return d->name; }
const char *repo_disk_point (const struct repo_disk *d) { return d->point; }

const uint8_t *
repo_disk_digest (const struct repo_disk *d, uint64_t i)
{
  return d->digests[i];
}

void
disk_chunk_error (struct repo_disk *d, uint64_t i)
{
  uint64_t a = i * d->chunk_size;
  uint64_t b = MIN (a + d->chunk_size, d->size) - 1;

  error_prefix ("%s disk %s bytes %" PRIu64 "-%" PRIu64, d->point, d->name,
                a, b);
}

/* The plaintext length of chunk i (the last one may be short). */
static size_t
chunk_len (const struct repo_disk *d, uint64_t i)
{
  return MIN ((uint64_t) d->chunk_size, d->size - i * d->chunk_size);
}

ssize_t
disk_chunk_get (struct repo_disk *d, uint64_t i, void *buf, size_t cap)
{
  size_t len;

  if (repo_chunk_get (d->repo, d->digests[i], buf, cap, &len) == -1)
    return -1;
  if (len != chunk_len (d, i)) {
    error_set (EIO, "chunk has %zu bytes, the index expects %zu", len,
               chunk_len (d, i));
    return -1;
  }
  return len;
}

/* Bytes [off, off + n) of chunk i into tmp (a chunk-sized buffer, at
 * the same offsets) without a cache: only the frames they touch when the
 * chunk can be read in part, else all of it. */
static int
read_part (struct repo_disk *d, uint64_t i, uint8_t *tmp, size_t off, size_t n)
{
  CLEANUP_FREE struct chunk_table *t = NULL;
  size_t len = chunk_len (d, i), fs = chunk_frame (d->repo), k;
  uint8_t *out[CHUNK_MAX_FRAMES];
  int rc;

  for (k = 0; k < CHUNK_MAX_FRAMES && k * fs < d->chunk_size; k++)
    out[k] = tmp + k * fs;
  rc = chunk_read_frames (d->repo, d->digests[i], &t, off / fs,
                          DIV_ROUND_UP (off + n, fs), out);
  if (rc == 0 &&
      repo_chunk_get (d->repo, d->digests[i], tmp, d->chunk_size, &len) == -1)
    return -1;
  if (rc == -1)
    return -1;
  if (len != chunk_len (d, i) || (t && t->raw_len != len)) {
    error_set (EIO, "chunk has %u bytes, the index expects %zu",
               t ? t->raw_len : (unsigned) len, chunk_len (d, i));
    return -1;
  }
  return 0;
}

static int
disk_pread (struct repo_disk *d, struct repo_cache *cache, void *buf,
            uint32_t count, uint64_t offset, bool stream)
{
  uint8_t *out = buf;
  CLEANUP_FREE uint8_t *tmp = NULL;
  uint64_t end;

  if (ADD_OVERFLOW (offset, (uint64_t) count, &end) || end > d->size) {
    error_set (EINVAL, "read beyond the end of %s disk %s", d->point, d->name);
    return -1;
  }
  while (count > 0) {
    uint64_t i = offset / d->chunk_size;
    size_t off = offset % d->chunk_size;
    size_t n = MIN ((uint64_t) count, d->chunk_size - off);

    if (repo_digest_is_zero (d->digests[i]))
      memset (out, 0, n);
    else if (cache) {
      if (cache_read (cache, d->digests[i], out, off, n, stream) == -1) {
        disk_chunk_error (d, i);
        return -1;
      }
    }
    else if (off == 0 && n == chunk_len (d, i)) {
      /* A whole chunk: decode straight into the caller's buffer (the
       * decoder never writes more than n bytes). */
      if (disk_chunk_get (d, i, out, n) == -1) {
        disk_chunk_error (d, i);
        return -1;
      }
    }
    else {
      if (!tmp)
        tmp = xmalloc (d->chunk_size);
      if (read_part (d, i, tmp, off, n) == -1) {
        disk_chunk_error (d, i);
        return -1;
      }
      memcpy (out, tmp + off, n);
    }
    out += n;
    offset += n;
    count -= n;
  }
  return 0;
}

int
repo_disk_pread (struct repo_disk *d, struct repo_cache *cache, void *buf,
                 uint32_t count, uint64_t offset)
{
  return disk_pread (d, cache, buf, count, offset, false);
}

int
repo_disk_pread_stream (struct repo_disk *d, struct repo_cache *cache,
                        void *buf, uint32_t count, uint64_t offset)
{
  return disk_pread (d, cache, buf, count, offset, true);
}

void
repo_disk_extent (const struct repo_disk *d, uint64_t offset, uint64_t count,
                  uint64_t *len, bool *zero)
{
  uint64_t i = offset / d->chunk_size, end = offset + count, pos;
  bool z = repo_digest_is_zero (d->digests[i]);

  pos = (i + 1) * d->chunk_size;
  while (pos < end && pos < d->size &&
         repo_digest_is_zero (d->digests[pos / d->chunk_size]) == z)
    pos += d->chunk_size;
  *len = MIN (pos, end) - offset;
  *zero = z;
}
