/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest: private declarations shared by the files of recovery/ingest
 * (not installed, not for other folders).
 *
 * chunk-job.c is the engine that import.c and backup.c both drive: a
 * disk is a list of chunks, each with a plan (read it, it is zero, or
 * reuse the previous point's digest); worker threads take chunk numbers
 * from a shared counter, read what must be read (libnbd, one connection
 * per worker, or pread on a local file), hash it and hand it to the
 * repository writer, and fill in the disk's complete digest list.
 */
#ifndef BOOTBACK_INGEST_INT_H
#define BOOTBACK_INGEST_INT_H

#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "recovery/ingest/ingest.h"
#include "recovery/util/util.h"

/* ---- chunk-job.c ------------------------------------------------------- */

enum chunk_plan {
  CHUNK_READ = 0,     /* read it from the source, hash, store */
  CHUNK_ZERO,         /* known to be all zero: zero digest, nothing read */
  CHUNK_REUSE,        /* unchanged: digests[c] holds the previous digest;
                         read it anyway if the chunk left the repository */
};

struct chunk_job {
  /* Set by the caller (chunk_job_init fills size, cs, nchunks, plan,
   * digests; the caller owns the rest and keeps it alive). */
  struct repo_writer *w;
  const char *what;          /* names the source in messages ("IMG", "dom vda") */
  const char *socket;        /* NBD unix socket, or NULL to read fd */
  const char *export_name;   /* NBD export name, NULL = default ("") */
  int fd;                    /* local raw file when socket is NULL */
  uint64_t size;
  uint32_t cs;
  uint64_t nchunks;
  uint8_t *plan;             /* per chunk: enum chunk_plan (all READ at init) */
  uint8_t *known_zero;       /* per chunk: 1 = wholly zero per block status */
  uint8_t (*digests)[REPO_DIGEST_LEN];  /* in: REUSE digests; out: all */
  struct progress *prog;     /* may be NULL */
  bool progress_all;         /* count zero and reused chunks in progress too */
  /* Results (read after chunk_job_run). */
  _Atomic uint64_t bytes_read;     /* read from the source */
  _Atomic uint64_t zero_bytes;     /* zero, not stored */
  _Atomic uint64_t reused_chunks;  /* taken from the previous point */
  _Atomic uint64_t reread_chunks;  /* REUSE whose chunk was gone: read */
  /* Private. */
  _Atomic uint64_t next;
  struct first_error fe;
};

/* Set up j for a disk of size bytes in chunks of cs: allocates plan (all
 * CHUNK_READ), known_zero and digests (zeroed).  fd = -1. */
void chunk_job_init (struct chunk_job *j, struct repo_writer *w,
                     const char *what, uint64_t size, uint32_t cs);
/* Free what chunk_job_init allocated. */
void chunk_job_fini (struct chunk_job *j);

/* Connect to j->socket and j->export_name, asking for the meta contexts
 * in ctx (NULL-terminated, may be NULL).  NULL with the error set. */
struct nbd_handle *chunk_job_connect (const struct chunk_job *j,
                                      const char *const *ctx);

/* Walk block status of the whole disk for one meta context and call fn
 * for each extent (offset, length, flags), in order.  Stops early (and
 * returns 0) if the server makes no progress.  -1 on a libnbd error. */
typedef void (*chunk_extent_fn) (void *opaque, uint64_t offset,
                                 uint64_t len, uint32_t flags);
int chunk_job_block_status (struct chunk_job *j, struct nbd_handle *h,
                            const char *context, chunk_extent_fn fn,
                            void *opaque);

/* Zero mapping: feed extents in order; the chunks that lie wholly inside
 * a run of zero extents get known_zero[c] = 1 (adjacent zero extents are
 * merged, so a chunk made of several zero extents counts). */
struct chunk_zero_map {
  struct chunk_job *j;
  uint64_t zstart;           /* start of the current zero run, or UINT64_MAX */
};
void chunk_zero_map_init (struct chunk_zero_map *z, struct chunk_job *j);
void chunk_zero_map_add (struct chunk_zero_map *z, uint64_t offset,
                         uint64_t len, bool zero);
/* chunk_extent_fn for base:allocation: opaque is a chunk_zero_map. */
void chunk_zero_map_extent (void *opaque, uint64_t offset, uint64_t len,
                            uint32_t flags);

/* Run the plan with up to threads workers.  0, or -1 with the first
 * worker's error restored in this thread. */
int chunk_job_run (struct chunk_job *j, int threads);

#endif /* BOOTBACK_INGEST_INT_H */
