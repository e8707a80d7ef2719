/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk engine shared by import (import.c) and backup (backup.c):
 * block-status walks, zero mapping, and the worker threads that read,
 * hash and store chunks or reuse the previous point's digests
 * (ingest-int.h describes the plan).
 *
 * Invariants:
 *   1. When chunk_job_run returns 0, digests[c] is set for every chunk:
 *      the zero digest for zero chunks, else the SHA-256 of the chunk's
 *      bytes, stored in (or already in) the repository.
 *   2. A REUSE chunk is never trusted blindly: the writer touches it; if it
 *      has left the repository (ENOENT) it is read and stored again.
 *   3. A chunk planned READ or PATCH but known zero is neither read nor
 *      stored.
 *   4. A PATCH chunk's base is the previous chunk, checked against its
 *      digest by repo_writer_patch_chunk (or zeros for a zero digest); if
 *      it cannot be had, the whole chunk is read from the source instead.
 *   5. Over TCP (a connect hook) each worker has at most one whole-chunk
 *      read in flight besides the chunk it computes; that read is finished
 *      (hashed, stored, digests[c] set) before the worker takes another
 *      read ahead and before it returns.
 */
#include <errno.h>

#include "recovery/ingest/ingest-int.h"

void
chunk_job_init (struct chunk_job *j, struct repo_writer *w, const char *what,
                uint64_t size, uint32_t cs)
{
  memset (j, 0, sizeof *j);
  j->w = w;
  j->what = what;
  j->fd = -1;
  j->size = size;
  j->cs = cs;
  j->nchunks = DIV_ROUND_UP (size, cs);
  j->plan = xcalloc (j->nchunks ? j->nchunks : 1, 1);
  j->known_zero = xcalloc (j->nchunks ? j->nchunks : 1, 1);
  j->digests = xcalloc (j->nchunks ? j->nchunks : 1, REPO_DIGEST_LEN);
  first_error_init (&j->fe);
  first_error_init (&j->reread);
}

/* Close the handed-over connection if no worker took it. */
static void
close_spare (struct chunk_job *j)
{
  struct nbd_handle *h = atomic_exchange (&j->spare, NULL);

  if (h) {
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
}

void
chunk_job_fini (struct chunk_job *j)
{
  close_spare (j);
  free (j->plan);
  free (j->known_zero);
  free (j->digests);
  j->plan = j->known_zero = NULL;
  j->digests = NULL;
  first_error_destroy (&j->fe);
  first_error_destroy (&j->reread);
}

struct nbd_handle *
chunk_job_connect (const struct chunk_job *j, const char *const *ctx)
{
  struct nbd_handle *h = nbd_create ();
  size_t i;

  if (!h) {
    error_setx ("libnbd: %s", nbd_get_error ());
    return NULL;
  }
  for (i = 0; ctx && ctx[i]; i++)
    if (nbd_add_meta_context (h, ctx[i]) == -1)
      goto err;
  if (j->export_name && nbd_set_export_name (h, j->export_name) == -1)
    goto err;
  if (j->connect) {
    if (j->connect (j, h) == -1) {
      nbd_close (h);            /* the hook set the error */
      return NULL;
    }
    return h;
  }
  if (nbd_connect_unix (h, j->socket) == -1)
    goto err;
  return h;
 err:
  error_setx ("%s: cannot connect to the NBD export: %s", j->what,
              nbd_get_error ());
  nbd_close (h);
  return NULL;
}

/* ---- waiting for a reply ------------------------------------------------ */

/* Wait for the command cookie to complete; over TCP (a connect hook:
 * another host's export) acknowledging what arrives at once
 * (chunk_nbd_quickack).  0, or -1 (libnbd's error). */
static int
nbd_wait (const struct chunk_job *j, struct nbd_handle *h, int64_t cookie)
{
  int r;

  if (cookie == -1)
    return -1;
  while ((r = nbd_aio_command_completed (h, cookie)) == 0) {
    if (j->connect)
      chunk_nbd_quickack (h);
    if (nbd_poll (h, -1) == -1)
      return -1;
  }
  return r == 1 ? 0 : -1;
}

/* ---- block status ---------------------------------------------------------- */

struct walk {
  const char *context;
  chunk_extent_fn fn;
  void *opaque;
  uint64_t pos;
};

static int
walk_cb (void *opaque, const char *metacontext, uint64_t offset,
         uint32_t *entries, size_t nr, int *error)
{
  struct walk *w = opaque;
  uint64_t pos = offset;
  size_t i;

  if (strcmp (metacontext, w->context) != 0)
    return 0;
  for (i = 0; i + 1 < nr; i += 2) {
    w->fn (w->opaque, pos, entries[i], entries[i+1]);
    pos += entries[i];
  }
  w->pos = pos;
  return 0;
}

int
chunk_job_block_status (struct chunk_job *j, struct nbd_handle *h,
                        const char *context, chunk_extent_fn fn, void *opaque)
{
  struct walk w = { context, fn, opaque, 0 };

  while (w.pos < j->size) {
    uint64_t start = w.pos;
    uint64_t count = MIN (j->size - w.pos, (uint64_t) 1 << 30);
    int64_t cookie =
      nbd_aio_block_status (h, count, w.pos,
                            (nbd_extent_callback) { .callback = walk_cb,
                                                    .user_data = &w },
                            NBD_NULL_COMPLETION, 0);
    if (nbd_wait (j, h, cookie) == -1) {
      error_set (nbd_get_errno () ? nbd_get_errno () : EIO,
                 "%s: block status (%s): %s", j->what, context,
                 nbd_get_error ());
      return -1;
    }
    if (w.pos <= start) {
      /* No progress: the server broke the protocol.  Fail rather than
       * take the rest for clean or unallocated (an incremental backup or
       * a delta would then skip data that changed). */
      error_setx ("%s: block status (%s) made no progress at byte %" PRIu64,
                  j->what, context, start);
      return -1;
    }
  }
  return 0;
}

void
chunk_zero_map_init (struct chunk_zero_map *z, struct chunk_job *j)
{
  z->j = j;
  z->zstart = UINT64_MAX;
}

void
chunk_zero_map_add (struct chunk_zero_map *z, uint64_t offset, uint64_t len,
                    bool zero)
{
  struct chunk_job *j = z->j;
  uint64_t end = offset + len, c;

  if (!zero) {
    z->zstart = UINT64_MAX;
    return;
  }
  if (z->zstart == UINT64_MAX || z->zstart > offset)
    z->zstart = offset;
  for (c = DIV_ROUND_UP (z->zstart, j->cs);
       c < j->nchunks && MIN ((c + 1) * j->cs, j->size) <= end; c++)
    j->known_zero[c] = 1;
}

void
chunk_zero_map_extent (void *opaque, uint64_t offset, uint64_t len,
                       uint32_t flags)
{
  chunk_zero_map_add (opaque, offset, len, (flags & LIBNBD_STATE_ZERO) != 0);
}

/* ---- workers ---------------------------------------------------------------- */

/* Read len bytes at off from a local file; zeros past EOF (a file shorter
 * than its sector-rounded size). */
static int
read_fd (struct chunk_job *j, uint8_t *buf, size_t len, uint64_t off)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = pread (j->fd, buf + done, len - done, off + done);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      error_set (errno, "%s: read at offset %" PRIu64, j->what, off + done);
      return -1;
    }
    if (r == 0) {
      memset (buf + done, 0, len - done);
      break;
    }
    done += r;
  }
  return 0;
}

/* Read len bytes at off from the source into buf. */
static int
read_range (struct chunk_job *j, struct nbd_handle *h, uint8_t *buf,
            size_t len, uint64_t off)
{
  if (h && nbd_wait (j, h, nbd_aio_pread (h, buf, len, off, NBD_NULL_COMPLETION, 0)) == -1) {
    error_set (nbd_get_errno () ? nbd_get_errno () : EIO,
               "%s: read at offset %" PRIu64 ": %s", j->what, off,
               nbd_get_error ());
    return -1;
  }
  if (!h && read_fd (j, buf, len, off) == -1)
    return -1;
  atomic_fetch_add (&j->bytes_read, len);
  progress_add (j->prog, len);
  return 0;
}

/* A PATCH chunk: the previous point's chunk (digests[c]) with the dirty
 * ranges read over it.  Only the dirty ranges are read; the repository
 * hashes and compresses only the frames they touch (4.).  1 done
 * (digests[c] set); 2 the previous chunk was zeros: buf now holds the
 * whole chunk; 0 the previous chunk cannot be had (the caller reads the
 * whole chunk instead); -1 error. */
static int
patch_chunk (struct chunk_job *j, struct nbd_handle *h, uint8_t *buf,
             uint64_t c)
{
  uint64_t off = c * j->cs, end;
  size_t len = MIN ((uint64_t) j->cs, j->size - off), n = 0, first;
  size_t lo = 0, hi = j->ndirty;
  CLEANUP_FREE struct repo_range *ranges = NULL;
  bool zero_base = repo_digest_is_zero (j->digests[c]);
  int r;

  if (zero_base)                  /* the previous chunk was zeros */
    memset (buf, 0, len);
  end = off + len;
  while (lo < hi) {               /* first extent ending after off */
    size_t mid = lo + (hi - lo) / 2;
    if (j->dirty[mid].off + j->dirty[mid].len <= off)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (first = lo; lo < j->ndirty && j->dirty[lo].off < end; lo++)
    ;
  ranges = xcalloc (lo - first + 1, sizeof *ranges);
  for (lo = first; lo < j->ndirty && j->dirty[lo].off < end; lo++) {
    uint64_t a = MAX (j->dirty[lo].off, off);
    uint64_t b = MIN (j->dirty[lo].off + j->dirty[lo].len, end);
    if (read_range (j, h, buf + (a - off), b - a, a) == -1)
      return -1;
    ranges[n++] = (struct repo_range) { a - off, b - a };
  }
  if (zero_base) {
    atomic_fetch_add (&j->patched_chunks, 1);
    return 2;                     /* buf is the chunk: hash and store it */
  }
  r = repo_writer_patch_chunk (j->w, j->digests[c], buf, len, ranges, n,
                               j->digests[c]);
  if (r == 0) {
    first_error_record (&j->reread);
    error_clear ();
  }
  else if (r == 1) {
    atomic_fetch_add (&j->patched_chunks, 1);
    if (repo_digest_is_zero (j->digests[c]))
      atomic_fetch_add (&j->zero_bytes, len);
  }
  return r;
}

/* Hash chunk c, whose len bytes are in buf, and store it unless it is
 * zero. */
static int
store_chunk (struct chunk_job *j, const uint8_t *buf, size_t len, uint64_t c)
{
  if (is_zero (buf, len)) {
    atomic_fetch_add (&j->zero_bytes, len);
    memset (j->digests[c], 0, REPO_DIGEST_LEN);
    return 0;
  }
  return repo_writer_put_chunk (j->w, buf, len, j->digests[c], NULL);
}

/* Fill chunk c into buf (whole read, or patch), hash it, store it unless
 * it is zero. */
static int
read_chunk (struct chunk_job *j, struct nbd_handle *h, uint8_t *buf,
            uint64_t c)
{
  uint64_t off = c * j->cs;
  size_t len = MIN ((uint64_t) j->cs, j->size - off);
  int r = 0;

  if (j->plan[c] == CHUNK_PATCH) {
    r = patch_chunk (j, h, buf, c);
    if (r == 1)                          /* patched and stored */
      return 0;
    if (r == 0)                          /* previous chunk gone: read all */
      atomic_fetch_add (&j->reread_chunks, 1);
  }
  if (r == 0)
    r = read_range (j, h, buf, len, off);
  if (r == -1)
    return -1;
  return store_chunk (j, buf, len, c);
}

/* A whole-chunk read in flight on a worker's connection (read ahead). */
struct ahead {
  uint64_t c;
  int64_t cookie;            /* -1: none */
  uint8_t *buf;
};

/* Wait for the read in flight, then hash and store its chunk. */
static int
ahead_finish (struct chunk_job *j, struct nbd_handle *h, struct ahead *a)
{
  uint64_t off = a->c * j->cs;
  size_t len = MIN ((uint64_t) j->cs, j->size - off);
  int64_t cookie = a->cookie;

  a->cookie = -1;
  if (nbd_wait (j, h, cookie) == -1) {
    error_set (nbd_get_errno () ? nbd_get_errno () : EIO,
               "%s: read at offset %" PRIu64 ": %s", j->what, off,
               nbd_get_error ());
    return -1;
  }
  atomic_fetch_add (&j->bytes_read, len);
  progress_add (j->prog, len);
  return store_chunk (j, a->buf, len, a->c);
}

/* Over TCP (a connect hook: another host's export over TLS) a worker
 * keeps one whole-chunk read in flight while it hashes and stores the
 * chunk before it: each reply crosses the network and the other end's
 * TLS, and with only one request per connection the server idled while
 * the reader computed.  Two buffers: the one in flight (a.buf) and buf. */
static void *
worker (void *arg)
{
  struct chunk_job *j = arg;
  struct nbd_handle *h = NULL;
  uint8_t *buf = NULL;
  struct ahead a = { .cookie = -1 };
  uint64_t c;

  buf = xmalloc (j->cs);
  if (j->connect)
    a.buf = xmalloc (j->cs);
  while (!first_error_failed (&j->fe) &&
         (c = atomic_fetch_add (&j->next, 1)) < j->nchunks) {
    uint64_t off = c * j->cs;
    size_t len = MIN ((uint64_t) j->cs, j->size - off);

    if (j->plan[c] == CHUNK_REUSE) {
      if (repo_digest_is_zero (j->digests[c])) {
        atomic_fetch_add (&j->zero_bytes, len);
        if (j->progress_all)
          progress_add (j->prog, len);
        continue;
      }
      if (repo_writer_reuse_chunk (j->w, j->digests[c]) == 0) {
        atomic_fetch_add (&j->reused_chunks, 1);
        if (j->progress_all)
          progress_add (j->prog, len);
        continue;
      }
      if (error_errno () != ENOENT) {
        first_error_record (&j->fe);
        break;
      }
      atomic_fetch_add (&j->reread_chunks, 1);   /* gone: read it (2.) */
      first_error_record (&j->reread);
      error_clear ();
    }
    else if (j->plan[c] == CHUNK_ZERO || j->known_zero[c]) {   /* READ, PATCH */
      atomic_fetch_add (&j->zero_bytes, len);
      memset (j->digests[c], 0, REPO_DIGEST_LEN);
      if (j->progress_all)
        progress_add (j->prog, len);
      continue;
    }
    /* Connected at the first chunk to read: an incremental with little
     * to read opens few connections (over TLS each is a handshake); the
     * first worker takes the caller's spare one. */
    if (!h && (j->socket || j->connect) &&
        !(h = atomic_exchange (&j->spare, NULL)) &&
        !(h = chunk_job_connect (j, NULL))) {
      first_error_record (&j->fe);
      break;
    }
    if (j->connect && j->plan[c] == CHUNK_READ) {
      /* Start reading c into buf, then finish the read before it. */
      int64_t cookie = nbd_aio_pread (h, buf, len, off, NBD_NULL_COMPLETION, 0);
      uint8_t *t;
      if (cookie == -1) {
        error_set (nbd_get_errno () ? nbd_get_errno () : EIO,
                   "%s: read at offset %" PRIu64 ": %s", j->what, off,
                   nbd_get_error ());
        first_error_record (&j->fe);
        break;
      }
      if (a.cookie != -1 && ahead_finish (j, h, &a) == -1) {
        first_error_record (&j->fe);
        break;
      }
      t = a.buf;
      a = (struct ahead) { .c = c, .cookie = cookie, .buf = buf };
      buf = t;
      continue;
    }
    if (read_chunk (j, h, buf, c) == -1) {
      first_error_record (&j->fe);
      break;
    }
  }
  if (a.cookie != -1 && !first_error_failed (&j->fe) &&
      ahead_finish (j, h, &a) == -1)
    first_error_record (&j->fe);
  if (h) {
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
  free (buf);
  free (a.buf);
  return NULL;
}

int
chunk_job_run (struct chunk_job *j, int threads)
{
  atomic_store (&j->next, 0);
  run_workers (threads, worker, j);
  close_spare (j);
  if (first_error_failed (&j->fe)) {
    first_error_restore (&j->fe);
    return -1;
  }
  return 0;
}
