/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk engine (chunk-job.c) keeps the contract of its header, read
 * from a local file (fd) by several workers:
 *   1. after chunk_job_run returns 0, digests[c] is set for every chunk:
 *      the zero digest for zero chunks, else the digest of the chunk's
 *      bytes, and that chunk is in the repository;
 *   2. a REUSE chunk is touched, not read; one that has left the
 *      repository is read and stored again;
 *   3. a chunk planned ZERO, or READ but known zero, is neither read nor
 *      stored;
 *   4. a PATCH chunk reads only its dirty ranges over the previous chunk
 *      (or over zeros for a zero digest); when the previous chunk cannot
 *      be had, the whole chunk is read instead.
 * What was read is checked through bytes_read (every read is counted
 * there), and the point committed from the digests reads back as the
 * plan says.  A read error fails the run with the error.  The same
 * contract holds read over NBD through a connect hook (what a remote
 * backup uses: each worker keeps one whole-chunk read in flight), from
 * a private qemu-nbd serving the file (skipped without qemu-nbd), with
 * and without a spare connection handed to the job.
 */
#include <assert.h>
#include <fcntl.h>

#include "recovery/ingest/ingest-int.h"

#define CS (4 * 65536)                   /* four frames: patches are partial */
#define NCHUNKS 11
#define LAST_LEN (CS / 2 + 123)          /* the short last chunk */
#define SIZE ((uint64_t) (NCHUNKS - 1) * CS + LAST_LEN)

/* What each chunk of the source is, and what the job is told. */
enum {
  C_READ, C_READ_ZEROS, C_KNOWN_ZERO, C_PLAN_ZERO, C_REUSE, C_REUSE_GONE,
  C_PATCH, C_PATCH_GONE, C_PATCH_ZERO_BASE, C_REUSE_ZERO, C_LAST,
};

/* The dirty ranges of the PATCH chunks (sorted): two in C_PATCH, one
 * across the C_PATCH / C_PATCH_GONE boundary, one at the end of
 * C_PATCH_ZERO_BASE. */
static const struct chunk_range dirty[] = {
  { (uint64_t) C_PATCH * CS + 1000, 5000 },
  { (uint64_t) C_PATCH_GONE * CS - 100, 200 },
  { (uint64_t) C_REUSE_ZERO * CS - 50, 50 },
};
#define NDIRTY (sizeof dirty / sizeof dirty[0])

static uint8_t *source;                  /* the disk now, SIZE bytes */
static uint8_t *previous;                /* the previous point's bytes */

static void
fill (uint8_t *p, size_t len, unsigned seed)
{
  size_t i;

  for (i = 0; i < len; i++)
    p[i] = (uint8_t) ((i / 61) * 13 + seed * 101 + 1);
  p[0] = seed;
}

/* The previous point and the source: the PATCH chunks differ from the
 * previous ones in the dirty ranges only. */
static void
make_disks (void)
{
  size_t c, i;

  source = xcalloc (1, SIZE);
  previous = xcalloc (1, SIZE);
  for (c = 0; c < NCHUNKS; c++) {
    uint8_t *p = previous + c * CS;
    size_t len = c == C_LAST ? LAST_LEN : CS;
    if (c != C_READ_ZEROS && c != C_PATCH_ZERO_BASE && c != C_REUSE_ZERO)
      fill (p, len, c + 1);
  }
  memcpy (source, previous, SIZE);
  for (i = 0; i < NDIRTY; i++)
    fill (source + dirty[i].off, dirty[i].len, 200 + i);
  /* the chunks whose previous version has gone differ from it */
  fill (source + C_REUSE_GONE * CS + 7, 10, 77);
}

static char *
write_source (const char *dir)
{
  char *path = xasprintf ("%s/disk.raw", dir);

  assert (write_whole_file (path, source, SIZE, 0600) == 0);
  return path;
}

static size_t
chunk_len (uint64_t c)
{
  return c == C_LAST ? LAST_LEN : CS;
}

/* The plan, and the previous digests, of the job; the previous point's
 * chunks that are still there are stored by w. */
static void
plan (struct chunk_job *j, struct repo *r, struct repo_writer *w)
{
  j->known_zero[C_KNOWN_ZERO] = 1;
  j->plan[C_PLAN_ZERO] = CHUNK_ZERO;
  j->plan[C_REUSE] = j->plan[C_REUSE_GONE] = j->plan[C_REUSE_ZERO] = CHUNK_REUSE;
  j->plan[C_PATCH] = j->plan[C_PATCH_GONE] = CHUNK_PATCH;
  j->plan[C_PATCH_ZERO_BASE] = CHUNK_PATCH;
  assert (repo_writer_put_chunk (w, previous + C_REUSE * CS, CS,
                                 j->digests[C_REUSE], NULL) == 0);
  assert (repo_writer_put_chunk (w, previous + C_PATCH * CS, CS,
                                 j->digests[C_PATCH], NULL) == 0);
  /* gone: their digests name chunks the repository does not have */
  repo_chunk_digest (r, previous + C_REUSE_GONE * CS, CS, j->digests[C_REUSE_GONE]);
  repo_chunk_digest (r, previous + C_PATCH_GONE * CS, CS, j->digests[C_PATCH_GONE]);
  assert (repo_chunk_exists (r, j->digests[C_REUSE_GONE]) == 0);
  assert (repo_chunk_exists (r, j->digests[C_PATCH_GONE]) == 0);
  /* C_PATCH_ZERO_BASE and C_REUSE_ZERO keep the zero digest of init */
}

/* What the point must hold at chunk c: zeros where the plan says zero,
 * else the source. */
static bool
planned_zero (uint64_t c)
{
  return c == C_READ_ZEROS || c == C_KNOWN_ZERO || c == C_PLAN_ZERO ||
         c == C_REUSE_ZERO;
}

/* 1 and 3: every digest set, zero where planned, the chunk stored. */
static void
check_digests (struct chunk_job *j, struct repo *r)
{
  uint8_t want[REPO_DIGEST_LEN];
  uint64_t c;

  for (c = 0; c < NCHUNKS; c++) {
    if (planned_zero (c)) {
      assert (repo_digest_is_zero (j->digests[c]));
      continue;
    }
    repo_chunk_digest (r, source + c * CS, chunk_len (c), want);
    assert (memcmp (j->digests[c], want, REPO_DIGEST_LEN) == 0);
    assert (repo_chunk_exists (r, want) == 1);
  }
  /* the non-zero bytes of the chunks planned zero were not stored */
  repo_chunk_digest (r, source + C_KNOWN_ZERO * CS, CS, want);
  assert (repo_chunk_exists (r, want) == 0);
  repo_chunk_digest (r, source + C_PLAN_ZERO * CS, CS, want);
  assert (repo_chunk_exists (r, want) == 0);
}

/* 2, 3 and 4: what was read, and the counters. */
static void
check_reads (struct chunk_job *j)
{
  uint64_t read = CS                     /* C_READ */
    + CS                                 /* C_READ_ZEROS: read, found zero */
    + CS                                 /* C_REUSE_GONE: read again */
    + 5000 + 100                         /* C_PATCH: its dirty bytes */
    + 100 + CS                           /* C_PATCH_GONE: dirty, then whole */
    + 50                                 /* C_PATCH_ZERO_BASE: dirty */
    + LAST_LEN;

  assert (j->bytes_read == read);
  assert (j->zero_bytes == 4 * (uint64_t) CS);
  assert (j->reused_chunks == 1);
  assert (j->reread_chunks == 2);
  assert (j->patched_chunks == 2);
}

/* Commit the point and read it back: the plan's bytes. */
static void
check_point (struct chunk_job *j, struct repo *r, struct repo_writer *w)
{
  struct repo_manifest m;
  struct repo_disk *d;
  uint8_t *buf = xmalloc (SIZE), *want = xmalloc (SIZE);
  uint64_t c;

  assert (repo_writer_add_disk (w, "vda", SIZE, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) j->digests) == 0);
  assert (repo_writer_commit (w, &m) == 0);
  d = repo_disk_open (r, m.vm, m.id, "vda");
  assert (d && repo_disk_pread (d, NULL, buf, SIZE, 0) == 0);
  memcpy (want, source, SIZE);
  for (c = 0; c < NCHUNKS; c++)
    if (planned_zero (c))
      memset (want + c * CS, 0, chunk_len (c));
  assert (memcmp (buf, want, SIZE) == 0);
  repo_disk_close (d);
  free (buf);
  free (want);
}

/* The connect hook of the NBD case: connect_opaque is the socket. */
static int
connect_hook (const struct chunk_job *j, struct nbd_handle *h)
{
  if (nbd_connect_unix (h, j->connect_opaque) == -1) {
    error_setx ("%s: %s", j->what, nbd_get_error ());
    return -1;
  }
  return 0;
}

/* With one worker, every chunk goes through the same buffer (what one
 * chunk leaves there must not leak into the next); with three, at once.
 * socket: read over NBD through the connect hook instead of the file. */
static void
test_contract (struct repo *r, const char *path, int threads,
               const char *socket)
{
  struct repo_writer *w = repo_writer_begin (r, "vm1", 0);
  struct chunk_job j;

  assert (w);
  chunk_job_init (&j, w, "test disk", SIZE, CS);
  assert (j.nchunks == NCHUNKS);
  j.repo = r;
  j.dirty = dirty;
  j.ndirty = NDIRTY;
  if (socket) {
    j.connect = connect_hook;
    j.connect_opaque = socket;
  }
  if (socket && threads > 1) {          /* the first reader takes it */
    struct nbd_handle *h = nbd_create ();
    assert (h && nbd_connect_unix (h, socket) == 0);
    atomic_store (&j.spare, h);
  }
  else {
    j.fd = open (path, O_RDONLY);
    assert (j.fd >= 0);
  }
  plan (&j, r, w);
  if (chunk_job_run (&j, threads) == -1) {
    fprintf (stderr, "test-chunk-job: %s\n", error_msg ());
    assert (!"chunk_job_run failed");
  }
  if (j.fd >= 0)
    close (j.fd);
  check_digests (&j, r);
  check_reads (&j);
  check_point (&j, r, w);
  chunk_job_fini (&j);
}

/* A source that cannot be read: -1, the error naming the source. */
static void
test_read_error (struct repo *r)
{
  struct repo_writer *w = repo_writer_begin (r, "vm2", 0);
  struct chunk_job j;

  assert (w);
  chunk_job_init (&j, w, "broken disk", SIZE, CS);
  j.fd = -1;
  assert (chunk_job_run (&j, 2) == -1);
  assert (strstr (error_msg (), "broken disk: read at offset"));
  chunk_job_fini (&j);
  repo_writer_abort (w);
}

int
main (void)
{
  char dir[] = "/tmp/test-chunk-job.XXXXXX";
  struct repo_init_opts o = { .chunk_size = CS };
  CLEANUP_FREE char *loc = NULL, *path = NULL, *cmd = NULL;
  struct repo *r;

  assert (mkdtemp (dir));
  loc = xasprintf ("%s/repo", dir);
  assert (repo_init (loc, &o) == 0);
  r = repo_open (loc);
  assert (r);
  make_disks ();
  path = write_source (dir);

  test_contract (r, path, 1, NULL);
  test_contract (r, path, 3, NULL);
  test_read_error (r);
  if (system ("qemu-nbd --version >/dev/null 2>&1") == 0) {
    struct qemu_nbd q = { 0 };
    assert (qemu_nbd_start (&q, path, "raw", true) == 0);
    test_contract (r, path, 1, q.socket);
    test_contract (r, path, 3, q.socket);
    qemu_nbd_stop (&q);
  }
  else
    printf ("test-chunk-job: no qemu-nbd: the NBD case skipped\n");

  repo_close (r);
  free (source);
  free (previous);
  cmd = xasprintf ("rm -rf %s", dir);
  assert (system (cmd) == 0);
  printf ("test-chunk-job: ok\n");
  return 0;
}
