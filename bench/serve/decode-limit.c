/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/serve/decode-limit: how fast this machine can decode and check the
 * chunks of one disk of a restore point, from memory, with T threads: the
 * bound on any cold read of it (every byte served is decompressed and
 * hashed).  bench/serve/run compares the plugin's cold sequential read
 * with it.
 *
 *   decode-limit REPO VM@TIME DISK THREADS
 *
 * Reads every distinct non-zero chunk file of the disk into memory first
 * (not timed), then decodes them all (chunk_decode: CRCs, zstd, SHA-256
 * of every frame, the tree digest) on THREADS threads and prints
 * "SECONDS PLAINTEXT_BYTES".
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "recovery/repo/repo-int.h"

struct job {
  struct repo *r;
  uint8_t **file;
  size_t *flen;
  const uint8_t (*digest)[REPO_DIGEST_LEN];
  size_t n;
  _Atomic size_t next;
  _Atomic uint64_t bytes;
};

static void
die (const char *what)
{
  fprintf (stderr, "decode-limit: %s: %s\n", what, error_msg ());
  exit (1);
}

static void *
worker (void *arg)
{
  struct job *j = arg;
  struct codec *c = codec_get (j->r);
  uint8_t *out = xmalloc (j->r->chunk_size);
  size_t i, len;

  while ((i = atomic_fetch_add (&j->next, 1)) < j->n) {
    if (chunk_decode (j->r, c, j->file[i], j->flen[i], out, j->r->chunk_size,
                      &len, j->digest[i]) == -1)
      die ("decode");
    atomic_fetch_add (&j->bytes, len);
  }
  codec_put (j->r, c);
  free (out);
  return NULL;
}

/* The disk's distinct non-zero digests, in index order. */
static size_t
distinct (struct repo_disk *d, uint8_t (**out)[REPO_DIGEST_LEN])
{
  uint64_t i, k, n = repo_disk_nchunks (d);
  uint8_t (*v)[REPO_DIGEST_LEN] = xcalloc (n ? n : 1, REPO_DIGEST_LEN);
  size_t m = 0;

  for (i = 0; i < n; i++) {
    const uint8_t *dg = repo_disk_digest (d, i);
    if (repo_digest_is_zero (dg))
      continue;
    for (k = m; k > 0 && k + 64 > m; k--)      /* neighbours only: cheap */
      if (memcmp (v[k - 1], dg, REPO_DIGEST_LEN) == 0)
        break;
    if (k > 0 && k + 64 > m)
      continue;
    memcpy (v[m++], dg, REPO_DIGEST_LEN);
  }
  *out = v;
  return m;
}

int
main (int argc, char **argv)
{
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
  struct job j = { 0 };
  uint8_t (*dg)[REPO_DIGEST_LEN];
  struct timespec t0, t1;
  struct repo_disk *d;
  pthread_t *t;
  int i, nt;

  if (argc != 5 || (nt = atoi (argv[4])) < 1 || nt > 64) {
    fprintf (stderr, "usage: decode-limit REPO VM@TIME DISK THREADS\n");
    return 1;
  }
  j.r = repo_open (argv[1]);
  if (!j.r) die (argv[1]);
  if (repo_point_resolve (j.r, argv[2], vm, id) == -1) die (argv[2]);
  d = repo_disk_open (j.r, vm, id, argv[3]);
  if (!d) die (argv[3]);
  j.n = distinct (d, &dg);
  j.digest = (const uint8_t (*)[REPO_DIGEST_LEN]) dg;
  j.file = xcalloc (j.n + 1, sizeof *j.file);
  j.flen = xcalloc (j.n + 1, sizeof *j.flen);
  for (size_t k = 0; k < j.n; k++) {
    j.file[k] = xmalloc (2 * (size_t) j.r->chunk_size + 65536);
    if (chunk_read_file (j.r, dg[k], j.file[k], 2 * (size_t) j.r->chunk_size + 65536,
                         &j.flen[k]) == -1)
      die ("read");
  }
  t = xcalloc (nt, sizeof *t);
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (i = 0; i < nt; i++)
    if (pthread_create (&t[i], NULL, worker, &j) != 0)
      die ("pthread_create");
  for (i = 0; i < nt; i++)
    pthread_join (t[i], NULL);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  printf ("%.3f %" PRIu64 "\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
          (uint64_t) j.bytes);
  return 0;
}
