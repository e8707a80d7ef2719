/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The decoded-chunk cache (cache.c) keeps its invariants:
 *  - single flight: threads asking for one chunk at once cause one read
 *    of its file and one decode, and all get its bytes;
 *  - eviction: the bytes held stay within max_bytes, least recently used
 *    first; a chunk evicted is read again, one still held is not;
 *  - read-ahead: what is read ahead and not yet read stays within half
 *    the cache, however much the readers ask for;
 *  - streaming reads: a full cache keeps what it holds, a damaged chunk
 *    still fails; while they are of whole chunks read-ahead only hints;
 *  - accounting: all the memory the cache holds (buffers in use, loading,
 *    spare or pooled, entries, tables) stays within max_bytes, whole
 *    chunks and frames mixed, eight threads at once;
 *  - a failed load is not cached: the asker and the threads waiting with
 *    it get the error, and the next read tries again and succeeds;
 *  - kept frame tables: a miss in an evicted chunk reads no head, its
 *    frames still checked; a file written again is read again;
 *  - frame-level reads: a read of part of a chunk decodes only the 64 KiB
 *    frames it touches, and every byte it returns is still checked: a
 *    damaged frame fails the reads that touch it (naming the frame and the
 *    chunk), a frame table that is not the chunk's fails every read.
 * Chunk file opens are counted below the cache, in the I/O table, so the
 * test does not take the cache's own statistics on trust.
 */
#include <endian.h>
#include <pthread.h>

#include "recovery/repo/test-repo.h"

#define CS REPO_MIN_CHUNK
#define NCHUNKS 16
#define NTHREADS 8

/* What the I/O hook does to chunk opens: hold them until released, and
 * fail the next fail_next of them with EIO. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static int fail_next;

static int
chunk_gate (struct hook_io *h, const char *op, const char *path)
{
  int fail = 0;

  (void) h;
  if (strcmp (op, "open") != 0 || strncmp (path, "chunks/", 7) != 0)
    return 0;
  pthread_mutex_lock (&gate_lock);
  while (gate_closed)
    pthread_cond_wait (&gate_cond, &gate_lock);
  if (fail_next > 0) {
    fail_next--;
    fail = -1;
  }
  pthread_mutex_unlock (&gate_lock);
  errno = EIO;
  return fail;
}

static void
gate_set (bool closed)
{
  pthread_mutex_lock (&gate_lock);
  gate_closed = closed;
  pthread_cond_broadcast (&gate_cond);
  pthread_mutex_unlock (&gate_lock);
}

struct env {
  struct scratch s;
  struct repo *r;
  struct hook_io *h;
  struct repo_disk *d;
};

/* Read chunk k through cache c and check its bytes: 0, or -1 (error set). */
static int
read_chunk (struct env *e, struct repo_cache *c, uint64_t k)
{
  CLEANUP_FREE uint8_t *buf = xmalloc (CS), *want = xmalloc (CS);

  if (repo_disk_pread (e->d, c, buf, CS, k * CS) == -1)
    return -1;
  test_chunk_data (want, CS, 1, k);
  assert (memcmp (buf, want, CS) == 0);
  return 0;
}

/* ---- single flight ----------------------------------------------------------- */

struct reader {
  struct env *e;
  struct repo_cache *c;
  uint64_t chunk;
  int ret;
  char err[256];
};
static _Atomic int started;

static void *
reader_thread (void *arg)
{
  struct reader *rd = arg;

  atomic_fetch_add (&started, 1);
  rd->ret = read_chunk (rd->e, rd->c, rd->chunk);
  snprintf (rd->err, sizeof rd->err, "%s", rd->ret ? error_msg () : "");
  return NULL;
}

/* How long the readers get to reach the cache while the load is held:
 * 0.3 s, times the slowness factor of tests/lib/slow.sh (valgrind: 20). */
static useconds_t
settle_us (void)
{
  const char *n = getenv ("BOOTBACK_SLOW");
  int slow = getenv ("BOOTBACK_VALGRIND") ? 20 : 1;

  if (n && atoi (n) >= 1)
    slow = atoi (n);
  return 300 * 1000 * slow;
}

/* NTHREADS readers of chunk k at once, while the first load is held at
 * the gate; returns how many failed. */
static int
readers_at_once (struct env *e, struct repo_cache *c, uint64_t k,
                 struct reader *rd)
{
  pthread_t t[NTHREADS];
  int i, failed = 0;

  started = 0;
  gate_set (true);
  for (i = 0; i < NTHREADS; i++) {
    rd[i] = (struct reader) { .e = e, .c = c, .chunk = k };
    assert (pthread_create (&t[i], NULL, reader_thread, &rd[i]) == 0);
  }
  while (started < NTHREADS)
    usleep (1000);
  usleep (settle_us ());           /* every reader is in the cache now */
  gate_set (false);
  for (i = 0; i < NTHREADS; i++) {
    pthread_join (t[i], NULL);
    failed += rd[i].ret == -1;
  }
  return failed;
}

static void
test_single_flight (struct env *e)
{
  struct repo_cache *c = repo_cache_new (e->r, 64 * CS);
  struct repo_cache_stats st;
  struct reader rd[NTHREADS];

  e->h->chunk_opens = 0;
  assert (readers_at_once (e, c, 3, rd) == 0);
  assert (e->h->chunk_opens == 1);
  repo_cache_get_stats (c, &st);
  assert (st.decodes == 1 && st.misses == 1 && st.hits == NTHREADS - 1);
  /* and a later read is a hit, no I/O */
  assert (read_chunk (e, c, 3) == 0);
  assert (e->h->chunk_opens == 1);
  repo_cache_free (c);
}

/* ---- eviction ------------------------------------------------------------------ */

static void
test_eviction (struct env *e)
{
  /* four chunks and what the entries themselves take */
  const size_t max = 4 * CS + CS / 2;
  struct repo_cache *c = repo_cache_new (e->r, max);
  struct repo_cache_stats st;
  uint64_t k;

  e->h->chunk_opens = 0;
  for (k = 0; k < NCHUNKS; k++) {
    assert (read_chunk (e, c, k) == 0);
    repo_cache_get_stats (c, &st);
    assert (st.bytes <= 4 * CS && st.held <= max);
  }
  assert (e->h->chunk_opens == NCHUNKS);
  repo_cache_get_stats (c, &st);
  assert (st.evictions == NCHUNKS - 4 && st.bytes == 4 * CS);
  assert (st.held > st.bytes && st.peak <= max);
  /* the four most recent are held: no I/O */
  for (k = NCHUNKS - 4; k < NCHUNKS; k++)
    assert (read_chunk (e, c, k) == 0);
  assert (e->h->chunk_opens == NCHUNKS);
  /* use chunk NCHUNKS-4 again so that it is the most recent; the next
   * load evicts the least recent (NCHUNKS-3), not it */
  assert (read_chunk (e, c, NCHUNKS - 4) == 0);
  assert (read_chunk (e, c, 0) == 0);
  assert (e->h->chunk_opens == NCHUNKS + 1);
  assert (read_chunk (e, c, NCHUNKS - 4) == 0);
  assert (e->h->chunk_opens == NCHUNKS + 1);
  assert (read_chunk (e, c, NCHUNKS - 3) == 0);
  assert (e->h->chunk_opens == NCHUNKS + 2);
  repo_cache_get_stats (c, &st);
  assert (st.bytes <= 4 * CS && st.peak <= max);
  repo_cache_free (c);
}

/* ---- streaming reads ------------------------------------------------------------ */

static uint64_t prefetch_settle (struct repo_cache *c);

/* While the streaming reads are of whole chunks, read-ahead only hints
 * (no decode); a streaming read of part of a chunk turns decoding
 * read-ahead back on. */
static void
test_stream_readahead (struct env *e)
{
  struct repo_cache *c = repo_cache_new (e->r, 16 * CS + CS / 2);
  CLEANUP_FREE uint8_t *buf = xmalloc (CS);
  struct repo_cache_stats st, st2;
  unsigned hints = e->h->will_needs;

  assert (repo_disk_pread_stream (e->d, c, buf, CS, 11 * CS) == 0);
  repo_cache_get_stats (c, &st);
  repo_cache_prefetch (c, e->d, 14);
  prefetch_settle (c);
  repo_cache_get_stats (c, &st2);
  assert (st2.decodes == st.decodes && e->h->will_needs > hints);
  assert (repo_disk_pread_stream (e->d, c, buf, CS / 2, 12 * CS) == 0);
  repo_cache_get_stats (c, &st);
  repo_cache_prefetch (c, e->d, 14);
  prefetch_settle (c);
  repo_cache_get_stats (c, &st2);
  assert (st2.decodes == st.decodes + 1);
  repo_cache_free (c);
}

/* A sequential reader's whole chunks: kept while the cache has room (a
 * second pass is warm); once it is full, read straight into the
 * caller's buffer, checked, and not kept: nothing is evicted for them. */
static void
test_stream (struct env *e)
{
  const size_t max = 4 * CS + CS / 2;
  struct repo_cache *c = repo_cache_new (e->r, max);
  struct repo_cache_stats st;
  CLEANUP_FREE uint8_t *buf = xmalloc (CS), *want = xmalloc (CS);
  uint64_t k;

  e->h->chunk_opens = 0;
  for (k = 0; k < NCHUNKS; k++) {
    assert (repo_disk_pread_stream (e->d, c, buf, CS, k * CS) == 0);
    test_chunk_data (want, CS, 1, k);
    assert (memcmp (buf, want, CS) == 0);
  }
  assert (e->h->chunk_opens == NCHUNKS);
  repo_cache_get_stats (c, &st);
  /* the first four filled it; the others evicted none of them */
  assert (st.evictions == 0 && st.bytes == 4 * CS && st.peak <= max);
  for (k = 0; k < 4; k++)
    assert (read_chunk (e, c, k) == 0);
  assert (e->h->chunk_opens == NCHUNKS);
  /* a streamed chunk was not kept: read (and checked) again */
  assert (repo_disk_pread_stream (e->d, c, buf, CS, 9 * CS) == 0);
  assert (e->h->chunk_opens == NCHUNKS + 1);
  /* a damaged chunk fails the streaming read too */
  {
    char path[80], *full;
    int i;
    repo_chunk_path (repo_disk_digest (e->d, 10), path);
    full = xasprintf ("%s/%s", e->r->location, path);
    for (i = 0; i < 2; i++) {         /* flip a byte, then put it back */
      FILE *fp = fopen (full, "r+");
      int ch;
      assert (fp && fseek (fp, -10, SEEK_END) == 0 && (ch = fgetc (fp)) != EOF);
      assert (fseek (fp, -10, SEEK_END) == 0 && fputc (ch ^ 0x5a, fp) != EOF);
      fclose (fp);
      if (i == 0) {
        assert (repo_disk_pread_stream (e->d, c, buf, CS, 10 * CS) == -1);
        assert (strstr (error_msg (), "chunk"));
      }
    }
    assert (repo_disk_pread_stream (e->d, c, buf, CS, 10 * CS) == 0);
    free (full);
  }
  repo_cache_free (c);
}

/* ---- read-ahead --------------------------------------------------------------- */

/* Wait until the read-ahead threads are idle: the decodes stop growing. */
static uint64_t
prefetch_settle (struct repo_cache *c)
{
  struct repo_cache_stats st;
  uint64_t last = UINT64_MAX;
  int still = 0;

  while (still < 20) {
    usleep (5000);
    repo_cache_get_stats (c, &st);
    still = st.decodes == last ? still + 1 : 0;
    last = st.decodes;
  }
  return last;
}

/* What is read ahead and not yet read stays within half the cache, even
 * when the readers ask for more ahead than that (several streams): the
 * chunks read ahead are not evicted unread; reading them lets more in. */
static void
test_readahead_bound (struct env *e)
{
  const size_t max = 8 * CS + CS / 2;
  struct repo_cache *c = repo_cache_new (e->r, max);
  struct repo_cache_stats st;
  uint64_t k, n;

  for (k = 0; k < NCHUNKS; k++) {
    repo_cache_prefetch (c, e->d, k);
    prefetch_settle (c);        /* the queue is empty again each time */
  }
  repo_cache_get_stats (c, &st);
  n = st.decodes;
  assert (n >= 1 && n * CS <= max / 2 && st.evictions == 0);
  /* read them (hits, no I/O): the next ones may be read ahead */
  e->h->chunk_opens = 0;
  for (k = 0; k < n; k++)
    assert (read_chunk (e, c, k) == 0);
  assert (e->h->chunk_opens == 0);
  repo_cache_prefetch (c, e->d, NCHUNKS - 1);
  assert (prefetch_settle (c) == n + 1);
  repo_cache_free (c);
}

/* The storage hints reach the hook: n of them, within a second. */
static void
wait_hints (struct env *e, unsigned n)
{
  int i;

  for (i = 0; i < 200 && e->h->will_needs < n; i++)
    usleep (5000);
  usleep (20000);               /* and no more */
  assert (e->h->will_needs == n);
}

/* A chunk's first partial read asks the storage for its whole file (one
 * disk read for the frames read at random later), once: not again for
 * its other frames, nor when it is read again after an eviction. */
static void
test_first_read_hint (struct env *e)
{
  struct repo_cache *c = repo_cache_new (e->r, 2 * CS);
  uint8_t buf[4096];

  e->h->will_needs = 0;
  assert (repo_disk_pread (e->d, c, buf, sizeof buf, 3 * CS + CS / 2) == 0);
  wait_hints (e, 1);
  assert (repo_disk_pread (e->d, c, buf, sizeof buf, 3 * CS) == 0);
  wait_hints (e, 1);
  assert (repo_disk_pread (e->d, c, buf, sizeof buf, 5 * CS + 100) == 0);
  wait_hints (e, 2);
  /* whole-chunk reads of other chunks evict 3 and 5; 3 read again */
  assert (read_chunk (e, c, 7) == 0 && read_chunk (e, c, 8) == 0);
  assert (repo_disk_pread (e->d, c, buf, sizeof buf, 3 * CS + 100) == 0);
  wait_hints (e, 2);
  repo_cache_free (c);
}

/* ---- a failed load is not cached ---------------------------------------------- */

static void
test_failure_not_cached (struct env *e)
{
  struct repo_cache *c = repo_cache_new (e->r, 64 * CS);
  struct reader rd[NTHREADS];
  int i;

  /* one reader alone */
  e->h->chunk_opens = 0;
  fail_next = 1;
  assert (read_chunk (e, c, 5) == -1);
  assert (error_errno () == EIO && strstr (error_msg (), "test hook"));
  assert (read_chunk (e, c, 5) == 0);
  assert (e->h->chunk_opens == 2);

  /* readers waiting on a load that fails all see its error; the next
   * read loads again */
  e->h->chunk_opens = 0;
  fail_next = 1;
  assert (readers_at_once (e, c, 6, rd) == NTHREADS);
  for (i = 0; i < NTHREADS; i++)
    assert (strstr (rd[i].err, "test hook"));
  assert (e->h->chunk_opens == 1);
  assert (read_chunk (e, c, 6) == 0);
  assert (e->h->chunk_opens == 2);
  repo_cache_free (c);
}

/* ---- frame-level reads ------------------------------------------------------- */

#define FCS (1024 * 1024)               /* 16 or 64 frames */
static size_t F;                        /* test_frames: the frame size */

/* Read len bytes at off of disk d through c and compare with the test
 * data (seed 1): 0, or -1 with the error set. */
static int
read_part (struct repo_disk *d, struct repo_cache *c, uint64_t off, size_t len)
{
  CLEANUP_FREE uint8_t *buf = xmalloc (len), *want = xmalloc (FCS);
  uint64_t k = off / FCS;

  if (repo_disk_pread (d, c, buf, len, off) == -1)
    return -1;
  test_chunk_data (want, FCS, 1, k);
  assert (memcmp (buf, want + off % FCS, len) == 0);
  return 0;
}

static size_t
frames_held (struct repo_cache *c)
{
  struct repo_cache_stats st;

  repo_cache_get_stats (c, &st);
  return st.bytes / F;
}

/* Flip one byte of chunk k's file at offset pos (k's digest in dg). */
static void
damage (struct scratch *s, const uint8_t dg[REPO_DIGEST_LEN], long pos)
{
  char rel[80];
  CLEANUP_FREE char *path = NULL;
  FILE *f;
  int ch;

  repo_chunk_path (dg, rel);
  path = xasprintf ("%s/%s", s->loc, rel);
  f = fopen (path, "r+");
  assert (f && fseek (f, pos, SEEK_SET) == 0);
  ch = fgetc (f);
  assert (ch != EOF && fseek (f, pos, SEEK_SET) == 0);
  fputc (ch ^ 0x55, f);
  assert (fclose (f) == 0);
}

/* Where frame i's stored bytes start in chunk dg's file. */
static long
frame_pos (struct scratch *s, const uint8_t dg[REPO_DIGEST_LEN], size_t i)
{
  char rel[80];
  CLEANUP_FREE char *path = NULL;
  uint8_t e[CHUNK_ENTRY_LEN];
  long pos = CHUNK_HDR_LEN + (FCS / F) * CHUNK_ENTRY_LEN;
  uint32_t n;
  size_t j;
  FILE *f;

  repo_chunk_path (dg, rel);
  path = xasprintf ("%s/%s", s->loc, rel);
  f = fopen (path, "r");
  assert (f && fseek (f, CHUNK_HDR_LEN, SEEK_SET) == 0);
  for (j = 0; j < i; j++) {
    assert (fread (e, 1, sizeof e, f) == sizeof e);
    memcpy (&n, e + 32, 4);
    pos += le32toh (n);
  }
  fclose (f);
  return pos;
}

/* Reading in part, with frames of frame bytes: 64 KiB (repositories
 * made before smaller frames: they read as they did) or 16 KiB (the
 * default for 1 MiB chunks now). */
static void
test_frames (uint32_t frame)
{
  struct scratch s;
  struct repo *r = scratch_open_frames (&s, "test-cache-frames", FCS, frame);
  uint8_t dg[4][REPO_DIGEST_LEN];
  char id[TIMESTAMP_LEN + 1];
  struct repo_disk *d;
  struct repo_cache *c;

  test_point_write (r, "vm1", 1, 4, id, dg);
  d = repo_disk_open (r, "vm1", id, "vda");
  c = repo_cache_new (r, 64 * FCS);
  assert (d && c);
  F = frame;
  assert (chunk_frame (r) == F);
  /* 4K in frame 3 of chunk 0: one frame decoded; then frame 9 */
  assert (read_part (d, c, 3 * F + 100, 4096) == 0);
  assert (frames_held (c) == 1);
  assert (read_part (d, c, 9 * F, 4096) == 0);
  assert (frames_held (c) == 2);
  /* a read across frames 14 and 15 decodes both; a whole read the rest */
  assert (read_part (d, c, 15 * F - 10, 20) == 0);
  assert (frames_held (c) == 4);
  assert (read_part (d, c, 0, FCS) == 0);
  assert (frames_held (c) == FCS / F);

  /* chunk 1, frame 5 damaged: frames 0 and 6 read fine, 5 does not */
  damage (&s, dg[1], frame_pos (&s, dg[1], 5) + 3);
  assert (read_part (d, c, FCS + 100, 4096) == 0);
  assert (read_part (d, c, FCS + 6 * F, 4096) == 0);
  assert (read_part (d, c, FCS + 5 * F + 10, 4096) == -1);
  assert (strstr (error_msg (), "frame 5") && strstr (error_msg (), "chunk "));
  assert (strstr (error_msg (), "bytes 1048576-2097151"));
  /* ... and again: a failed frame is not cached */
  assert (read_part (d, c, FCS + 5 * F, 4096) == -1);
  /* a whole read of it fails on the payload's CRC */
  assert (read_part (d, c, FCS, FCS) == -1);
  /* the same without a cache */
  assert (read_part (d, NULL, FCS + 100, 4096) == 0);
  assert (read_part (d, NULL, FCS + 5 * F + 10, 4096) == -1);
  assert (strstr (error_msg (), "frame 5"));

  /* chunk 2's frame table altered (one hash): no read of it passes */
  damage (&s, dg[2], CHUNK_HDR_LEN + 7 * CHUNK_ENTRY_LEN + 1);
  assert (read_part (d, c, 2 * FCS + 4096, 4096) == -1);
  assert (strstr (error_msg (), "SHA-256 mismatch"));
  assert (read_part (d, c, 2 * FCS + 7 * F, 4096) == -1);
  /* chunk 3's header damaged */
  damage (&s, dg[3], 9);
  assert (read_part (d, c, 3 * FCS, 4096) == -1);
  assert (strstr (error_msg (), "header"));

  repo_cache_free (c);
  repo_disk_close (d);
  repo_close (r);
  scratch_remove (&s);
}

/* Write chunk k's file again (dg its digest) with every frame stored raw:
 * the same plaintext and digest, another layout. */
static void
rewrite_raw (struct repo *r, struct scratch *s,
             const uint8_t dg[REPO_DIGEST_LEN], uint64_t k)
{
  CLEANUP_FREE uint8_t *data = xmalloc (FCS);
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN], got[REPO_DIGEST_LEN];
  CLEANUP_FREE char *path = NULL;
  struct codec *c = codec_get (r);
  char rel[80];
  size_t n;
  FILE *f;

  test_chunk_data (data, FCS, 1, k);
  r->compress = false;
  chunk_digest (r, NULL, data, FCS, fh, got);
  assert (memcmp (got, dg, REPO_DIGEST_LEN) == 0);
  n = chunk_encode (r, c, data, FCS, fh);
  r->compress = true;
  repo_chunk_path (dg, rel);
  path = xasprintf ("%s/%s", s->loc, rel);
  f = fopen (path, "w");
  assert (f && fwrite (c->buf, 1, n, f) == n && fclose (f) == 0);
  codec_put (r, c);
}

/* The checked frame tables of evicted chunks are kept: a later miss in
 * the chunk reads only its frames, each still checked against its hash
 * in the table; a file written again with another layout is read again,
 * a damaged frame still fails. */
static void
test_kept_tables (void)
{
  struct scratch s;
  struct repo *r = scratch_open_frames (&s, "test-cache-tables", FCS, 16384);
  uint8_t dg[4][REPO_DIGEST_LEN];
  char id[TIMESTAMP_LEN + 1];
  struct repo_cache_stats st;
  struct repo_disk *d;
  struct repo_cache *c;
  size_t j, k;

  test_point_write (r, "vm1", 1, 4, id, dg);
  d = repo_disk_open (r, "vm1", id, "vda");
  c = repo_cache_new (r, 6 * 16384);
  assert (d && c);
  F = 16384;
  /* 4K in 16 frames of each of 4 chunks, round robin: each miss evicts */
  for (j = 0; j < 16; j++)
    for (k = 0; k < 4; k++)
      assert (read_part (d, c, k * FCS + j * 3 * F + 100, 4096) == 0);
  repo_cache_get_stats (c, &st);
  fprintf (stderr, "test-cache: kept tables: %" PRIu64 " of %" PRIu64
           " misses, %" PRIu64 " evictions\n", st.tables_kept, st.misses,
           st.evictions);
  assert (st.tables_kept > 30 && st.evictions > 30);
  assert (st.held <= 6 * 16384);
  /* chunk 1 written again, raw: its kept table no longer fits the file,
   * which is read again; chunk 2, frame 50 damaged: that frame fails */
  rewrite_raw (r, &s, dg[1], 1);
  damage (&s, dg[2], frame_pos (&s, dg[2], 50) + 3);
  for (j = 0; j < 64; j += 7)
    for (k = 0; k < 4; k++)
      assert (read_part (d, c, k * FCS + j * F + 9, 4096) == 0);
  assert (read_part (d, c, 2 * FCS + 50 * F, 4096) == -1);
  assert (strstr (error_msg (), "frame 50"));
  assert (read_part (d, c, 2 * FCS + 50 * F + 4096, 4096) == -1);
  assert (read_part (d, c, 2 * FCS + 51 * F, 4096) == 0);
  assert (read_part (d, c, 1 * FCS, FCS) == 0);
  repo_cache_free (c);
  repo_disk_close (d);
  repo_close (r);
  scratch_remove (&s);
}

/* ---- accounting ------------------------------------------------------------- */

#define ACHUNKS 24
#define AMAX (12 * FCS)

struct mixer {
  struct repo_disk *d;
  struct repo_cache *c;
  unsigned seed;
  int failed;
};

/* 300 reads of random places and lengths: 4K in a frame, 256K, whole
 * chunks, across chunk ends; each checked byte for byte. */
static void *
mixer_thread (void *arg)
{
  static const size_t lens[] = { 4096, 256 * 1024, FCS, 20, 3 * 16384 + 7 };
  struct mixer *m = arg;
  uint64_t off;
  size_t len;
  int i;

  for (i = 0; i < 300; i++) {
    len = lens[rand_r (&m->seed) % 5];
    off = (uint64_t) (rand_r (&m->seed) % ACHUNKS) * FCS;
    if (len < FCS)
      off += rand_r (&m->seed) % (FCS - len);
    if (off + len > (uint64_t) ACHUNKS * FCS)
      off = (uint64_t) ACHUNKS * FCS - len;
    m->failed += read_part (m->d, m->c, off, len) == -1;
  }
  return NULL;
}

/* Eight threads read a disk twice the cache's size in whole chunks and
 * in frames of frame bytes, each read checked byte for byte: what the
 * cache holds never went over its limit. */
static void
test_accounting (uint32_t frame)
{
  struct scratch s;
  struct repo *r = scratch_open_frames (&s, "test-cache-acct", FCS, frame);
  struct mixer mx[NTHREADS];
  pthread_t t[NTHREADS];
  char id[TIMESTAMP_LEN + 1];
  struct repo_cache_stats st;
  struct repo_disk *d;
  struct repo_cache *c;
  int i;

  test_point_write (r, "vm1", 1, ACHUNKS, id, NULL);
  d = repo_disk_open (r, "vm1", id, "vda");
  c = repo_cache_new (r, AMAX);
  assert (d && c);
  F = frame;
  for (i = 0; i < NTHREADS; i++) {
    mx[i] = (struct mixer) { .d = d, .c = c, .seed = i + 1 };
    assert (pthread_create (&t[i], NULL, mixer_thread, &mx[i]) == 0);
  }
  for (i = 0; i < NTHREADS; i++) {
    pthread_join (t[i], NULL);
    assert (mx[i].failed == 0);
  }
  repo_cache_get_stats (c, &st);
  fprintf (stderr, "test-cache: accounting: peak %" PRIu64 " of %d bytes, %" PRIu64
          " evictions, held %" PRIu64 "\n", st.peak, AMAX, st.evictions, st.held);
  assert (st.evictions > 0 && st.bytes > AMAX / 2);
  assert (st.held <= AMAX && st.peak <= AMAX && st.held > st.bytes);
  repo_cache_free (c);
  repo_disk_close (d);
  repo_close (r);
  scratch_remove (&s);
}

int
main (void)
{
  struct env e;
  char id[TIMESTAMP_LEN + 1];

  e.r = scratch_open (&e.s, "test-cache", CS);
  test_point_write (e.r, "vm1", 1, NCHUNKS, id, NULL);
  e.h = hook_install (e.r);
  e.h->before = chunk_gate;
  e.d = repo_disk_open (e.r, "vm1", id, "vda");
  assert (e.d);

  test_single_flight (&e);
  test_eviction (&e);
  test_stream (&e);
  test_stream_readahead (&e);
  test_readahead_bound (&e);
  test_first_read_hint (&e);
  test_failure_not_cached (&e);
  test_frames (CHUNK_FRAME);
  test_kept_tables ();
  test_frames (16 * 1024);
  test_accounting (16 * 1024);
  test_accounting (CHUNK_FRAME);

  repo_disk_close (e.d);
  repo_close (e.r);
  scratch_remove (&e.s);
  printf ("test-cache: ok\n");
  return 0;
}
