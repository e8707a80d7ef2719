/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared cache of decoded chunks, filled frame by frame.
 *
 * An entry is one chunk (by digest).  A read that needs part of a chunk
 * decodes only the frames it touches (64 KiB, or 16 KiB for 1 MiB chunks
 * of newer repositories): the first read of a chunk
 * reads its frame table and checks it against the digest (chunk_read_frames),
 * and each frame is checked against its hash in the table as it is
 * decoded.  A read of a whole chunk, read-ahead, and chunks that cannot be
 * read in part (BBC1 files) are decoded whole (repo_chunk_get).  Either
 * way every byte handed out has been checked against the point's index.
 *
 * Invariants:
 *  1. At most one thread reads and decodes a given frame at a time: the
 *     first asker of a chunk inserts a LOADING entry and loads it outside
 *     the lock; later askers wait on the cache's condition variable.  In a
 *     READY entry, a reader marks the frames it decodes busy; others
 *     needing them wait.  have and busy change only under the lock, the
 *     table (t) never after READY.
 *  2. A failed load never stays in the table: waiters see the error once,
 *     and the next request tries again (a server that comes back heals).
 *     A failed frame of a READY entry stays missing, to be tried again.
 *  3. held counts every byte the cache owns: the buffers of entries,
 *     those of loads in flight, the spare and pooled buffers, each
 *     entry's own memory and frame table, the hash table.  A load first
 *     evicts (whole) READY entries with no readers, least recently used
 *     first, until what it allocates fits max_bytes; spare and pooled
 *     buffers are given back while held is over it.  So held stays
 *     within max_bytes unless the entries in use alone are larger.
 *     Every buffer is its own mmap, so that freeing it gives the memory
 *     back at once (malloc'd frames left the arenas of many threads
 *     fragmented, uncounted): a whole chunk is one buffer; a chunk read
 *     in part has one per frame it holds, taken from a small pool of
 *     evicted frames' buffers (no page faults, no munmap per miss).
 *  4. Read-ahead threads only call the same get/put pair: a hint, never a
 *     different path.
 *  5. A streaming read (repo_disk_pread_stream: a sequential copy) of a
 *     whole chunk that no entry holds or loads, while the decoded frames
 *     held fill the cache, is decoded straight into the caller's buffer
 *     (repo_chunk_get: the same checks) and not kept: keeping it would
 *     only evict what others use (a copy larger than the cache reads
 *     each chunk once), and it saves a copy of the chunk.  A cache with
 *     room keeps it (a second pass is warm); other reads always do.
 *     Such a read takes the chunk out of the read-ahead queue; a
 *     read-ahead thread already loading it makes an entry, so at worst
 *     a chunk is decoded twice, never served unchecked.
 *  6. While the streaming reads are of whole chunks (qemu-img convert of
 *     a migration's pre-copy: 2 MiB requests, 8 at once; nbdcopy: the
 *     preferred block size, a chunk, 64 at once on each of 4
 *     connections), read-ahead only asks the storage for the files
 *     (hints) and decodes nothing: such a reader has its own reads in
 *     parallel, and a chunk read ahead into the cache would only cost a
 *     copy out of it (a fresh server and a 2 GiB random-data disk: 1803
 *     of 2049 reads were such copies, 0.35 s of nbdkit's 3.4 s of CPU).
 *     A streaming read of part of a chunk turns decoding read-ahead back
 *     on.
 *  7. The frame table of an evicted entry read in part is kept (it was
 *     checked against the digest when read), within a TABLES_SHARE-th
 *     of max_bytes, counted in held, least recently used dropped first,
 *     before any entry's frames: a later miss in the chunk takes it back
 *     and reads only its frames, each still checked against its hash in
 *     the table (4K random reads of a disk much larger than the cache
 *     missed in an evicted chunk nearly every time: its head was read
 *     and its table hashed again).  A chunk file written again since,
 *     the same plaintext laid out otherwise, no longer fits the table
 *     (its size) or fails a frame: its table is then read again, once.
 *  8. A chunk whose file the storage sends whole at its open
 *     (io_fetches_whole: an S3 object not in the read cache) is loaded whole even by a read
 *     of part of it: the bytes come anyway, and each later read of
 *     another frame would fetch the whole object again.
 *
 * Entry states: LOADING -> READY -> (evicted) | LOADING -> FAILED (freed
 * when the last waiter leaves).
 */
#include <errno.h>
#include <sys/mman.h>

#include "recovery/repo/repo-int.h"

enum { LOADING, READY, FAILED };

struct centry {
  uint8_t digest[REPO_DIGEST_LEN];
  uint8_t *data;                /* a whole chunk: chunk_size bytes, else NULL */
  uint8_t *fr[CHUNK_MAX_FRAMES];  /* frame i (into data, or its own buffer) */
  size_t len;                   /* plaintext length (READY) */
  size_t fs;                    /* frame size (the cache's) */
  struct chunk_table *t;        /* NULL: decoded whole (every frame in have) */
  uint64_t have, busy;          /* frames decoded / being decoded */
  size_t bytes;                 /* counted in used */
  size_t meta;                  /* this and its table, counted in held */
  int refs, state, err;
  bool ahead;                   /* loaded by read-ahead, not read yet */
  char errmsg[512];
  struct centry *hnext;
  struct centry *prev, *next;   /* LRU, READY only; head = most recent */
};

_Static_assert (CHUNK_MAX_FRAMES <= 64, "frames of a chunk fit a uint64_t");

#define PREFETCH_QUEUE 64
#define PREFETCH_THREADS 2
/* Threads that only open chunk files and ask the storage to read them
 * (will_need): a cold open reads directory and inode blocks, so several
 * run at once to keep the disk busy; they hold no buffers. */
#define HINT_THREADS 4
/* How far ahead of read-ahead the hint threads are (chunks). */
#define HINT_AHEAD 24
/* Buffers of evicted entries kept for whole-chunk loads: a sequential
 * read then reuses memory already mapped instead of faulting in a fresh
 * chunk's pages each time.  Partial loads always map fresh memory, so
 * that a frame costs a frame. */
#define SPARE_BUFFERS 4
/* Buffers of evicted frames kept for the next partial loads (counted:
 * they only keep memory the cache may hold mapped). */
#define POOL_FRAMES 256
/* Chunks whose whole file the storage was recently asked for on a first
 * partial read (a direct-mapped set of digest prefixes). */
#define HINTED_SLOTS 1024
/* The frame tables of evicted chunks are kept (invariant 7) in at most
 * this part of the cache's bytes: a quarter holds the tables of a 2 GiB
 * disk's chunks in a 16 MiB cache.  Per byte a table saves more than a
 * frame for reads at random (a head read and a table hash for each miss
 * in its chunk, against a decode for each read of the frame); an eighth
 * kept half as many (cold 4K random reads, -5% CPU per read at a
 * quarter). */
#define TABLES_SHARE 4

/* A chunk's checked frame table, kept after its entry was evicted. */
struct ktable {
  uint8_t digest[REPO_DIGEST_LEN];
  struct chunk_table *t;
  size_t bytes;                 /* this and t, counted in held */
  struct ktable *hnext;
  struct ktable *prev, *next;   /* LRU; head = most recent */
};

struct repo_cache {
  struct repo *repo;
  size_t fs;                    /* the repository's frame size */
  size_t max_bytes, used;
  size_t held, peak;            /* invariant 3, and its highest */
  size_t nbuckets;
  struct centry **table;
  struct centry *lru_head, *lru_tail;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct repo_cache_stats stats;
  /* read-ahead */
  uint8_t queue[PREFETCH_QUEUE][REPO_DIGEST_LEN];
  size_t qhead, qlen;
  size_t ahead;                 /* entries with ahead set */
  pthread_cond_t qcond;
  pthread_t threads[PREFETCH_THREADS];
  int nthreads;
  uint8_t hints[PREFETCH_QUEUE][REPO_DIGEST_LEN];
  size_t hhead, hlen;
  pthread_cond_t hcond;
  pthread_t hthreads[HINT_THREADS];
  int nhthreads;
  uint64_t hinted[HINTED_SLOTS];
  bool whole_stream;           /* invariant 6 */
  bool stopping;
  uint8_t *spare[SPARE_BUFFERS];
  size_t nspare;
  uint8_t *pool[POOL_FRAMES];
  size_t npool;
  /* kept frame tables (invariant 7) */
  struct ktable **ktab;         /* nbuckets buckets */
  struct ktable *khead, *ktail;
  size_t kbytes, kmax;
};

/* Frames [a, b) as bits. */
static uint64_t
frame_mask (size_t a, size_t b)
{
  if (a >= b)
    return 0;
  return (b - a >= 64 ? ~UINT64_C (0) : (UINT64_C (1) << (b - a)) - 1) << a;
}

/* Frames [a, b) of a loaded entry, cut to the frames it has. */
static uint64_t
entry_frames (const struct centry *e, size_t a, size_t b)
{
  return frame_mask (a, MIN (b, DIV_ROUND_UP (e->len, e->fs)));
}

static size_t
bucket (struct repo_cache *c, const uint8_t *d)
{
  uint64_t h;
  memcpy (&h, d, sizeof h);
  return h & (c->nbuckets - 1);
}

static struct centry *
lookup (struct repo_cache *c, const uint8_t *d)
{
  struct centry *e;
  for (e = c->table[bucket (c, d)]; e; e = e->hnext)
    if (memcmp (e->digest, d, REPO_DIGEST_LEN) == 0)
      return e;
  return NULL;
}

static void
unhash (struct repo_cache *c, struct centry *e)
{
  struct centry **p = &c->table[bucket (c, e->digest)];
  while (*p != e)
    p = &(*p)->hnext;
  *p = e->hnext;
}

static void
lru_unlink (struct repo_cache *c, struct centry *e)
{
  if (e->prev) e->prev->next = e->next; else c->lru_head = e->next;
  if (e->next) e->next->prev = e->prev; else c->lru_tail = e->prev;
  e->prev = e->next = NULL;
}

static void
lru_push (struct repo_cache *c, struct centry *e)
{
  e->prev = NULL;
  e->next = c->lru_head;
  if (c->lru_head) c->lru_head->prev = e; else c->lru_tail = e;
  c->lru_head = e;
}

/* Count n more bytes held (lock held). */
static void
charge (struct repo_cache *c, size_t n)
{
  c->held += n;
  if (c->held > c->peak)
    c->peak = c->held;
}

/* Forget kept table k (lock held). */
static void
ktable_drop (struct repo_cache *c, struct ktable *k, bool free_table)
{
  struct ktable **p;

  for (p = &c->ktab[bucket (c, k->digest)]; *p != k; p = &(*p)->hnext) ;
  *p = k->hnext;
  if (k->prev) k->prev->next = k->next; else c->khead = k->next;
  if (k->next) k->next->prev = k->prev; else c->ktail = k->prev;
  c->kbytes -= k->bytes;
  c->held -= k->bytes;
  if (free_table)
    free (k->t);
  free (k);
}

/* Drop the least recently used kept tables until they fit kmax and need
 * more bytes fit max_bytes, or none is left (lock held). */
static void
ktable_trim (struct repo_cache *c, size_t need)
{
  while (c->ktail &&
         (c->kbytes > c->kmax || c->held + need > c->max_bytes))
    ktable_drop (c, c->ktail, true);
}

/* Keep the checked table t of chunk digest, whose entry is going
 * (lock held). */
static void
ktable_keep (struct repo_cache *c, const uint8_t *digest,
             struct chunk_table *t)
{
  struct ktable *k = xmalloc (sizeof *k);
  size_t b = bucket (c, digest);

  memcpy (k->digest, digest, REPO_DIGEST_LEN);
  k->t = t;
  k->bytes = sizeof *k + sizeof *t + (size_t) t->n * CHUNK_ENTRY_LEN;
  k->hnext = c->ktab[b];
  c->ktab[b] = k;
  k->prev = NULL;
  k->next = c->khead;
  if (c->khead) c->khead->prev = k; else c->ktail = k;
  c->khead = k;
  c->kbytes += k->bytes;
  charge (c, k->bytes);
}

/* Take the kept table of chunk digest out of the kept ones: NULL if
 * there is none (lock held). */
static struct chunk_table *
ktable_take (struct repo_cache *c, const uint8_t *digest)
{
  struct ktable *k;
  struct chunk_table *t;

  for (k = c->ktab[bucket (c, digest)]; k; k = k->hnext)
    if (memcmp (k->digest, digest, REPO_DIGEST_LEN) == 0)
      break;
  if (!k)
    return NULL;
  t = k->t;
  ktable_drop (c, k, false);
  return t;
}

/* A new buffer of n bytes, counted (lock held). */
static uint8_t *
buffer_new (struct repo_cache *c, size_t n)
{
  void *p = mmap (NULL, n, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

  if (p == MAP_FAILED)
    return NULL;
  charge (c, n);
  return p;
}

static void
buffer_free (struct repo_cache *c, uint8_t *p, size_t n)
{
  munmap (p, n);
  c->held -= n;
}

/* Give spare and pooled buffers back until need more bytes fit
 * max_bytes, or none is left (lock held). */
static void
trim (struct repo_cache *c, size_t need)
{
  while (c->held + need > c->max_bytes && c->npool > 0)
    buffer_free (c, c->pool[--c->npool], c->fs);
  while (c->held + need > c->max_bytes && c->nspare > 0)
    buffer_free (c, c->spare[--c->nspare], c->repo->chunk_size);
  ktable_trim (c, need);
}

/* Give e's own buffers of the frames of mask back (lock held). */
static void
frames_release (struct repo_cache *c, struct centry *e, uint64_t mask)
{
  size_t i;

  for (i = 0; i < CHUNK_MAX_FRAMES; i++) {
    if (!(mask >> i & 1) || !e->fr[i])
      continue;
    if (!e->data && c->npool < POOL_FRAMES)
      c->pool[c->npool++] = e->fr[i];
    else if (!e->data)
      buffer_free (c, e->fr[i], c->fs);
    e->fr[i] = NULL;
  }
}

static void
entry_free (struct repo_cache *c, struct centry *e)
{
  frames_release (c, e, ~UINT64_C (0));
  if (e->ahead)
    c->ahead--;
  if (e->data && c->nspare < SPARE_BUFFERS)
    c->spare[c->nspare++] = e->data;
  else if (e->data)
    buffer_free (c, e->data, c->repo->chunk_size);
  c->held -= e->meta;
  free (e->t);
  free (e);
}

/* Evict entries until need more bytes fit max_bytes, with the spare
 * and pooled buffers (what evicting adds to them) counted as free (lock
 * held; trim afterwards). */
static void
evict (struct repo_cache *c, size_t need)
{
  struct centry *e = c->lru_tail, *prev;
  struct chunk_table *t;
  uint8_t d[REPO_DIGEST_LEN];

  while (c->held - c->nspare * c->repo->chunk_size - c->npool * c->fs +
         need > c->max_bytes && e) {
    prev = e->prev;
    if (e->refs == 0) {
      lru_unlink (c, e);
      unhash (c, e);
      c->used -= e->bytes;
      c->stats.evictions++;
      t = e->t;
      e->t = NULL;
      memcpy (d, e->digest, REPO_DIGEST_LEN);
      entry_free (c, e);
      if (t && c->kmax > 0)     /* invariant 7 */
        ktable_keep (c, d, t);
      else
        free (t);
    }
    e = prev;
  }
}

static void
shrink (struct repo_cache *c)
{
  evict (c, 0);
  trim (c, 0);
}

/* A whole-chunk buffer for e: a spare one or a new one, room made
 * first (lock held).  -1 with the error set. */
static int
data_alloc (struct repo_cache *c, struct centry *e)
{
  if (e->data)
    return 0;
  evict (c, c->repo->chunk_size);
  if (c->nspare > 0) {
    e->data = c->spare[--c->nspare];
    trim (c, 0);
    return 0;
  }
  trim (c, c->repo->chunk_size);
  e->data = buffer_new (c, c->repo->chunk_size);
  if (!e->data) {
    error_set (errno, "mmap");
    return -1;
  }
  return 0;
}

/* Load a new entry (outside the lock): frames [f0, f1) of it into the
 * buffers in e->fr, or all of it into e->data when whole or when it
 * cannot be read in part.  Sets e->len, e->t, e->have; -1 with the
 * error set. */
static int
load (struct repo_cache *c, struct centry *e, size_t f0, size_t f1, bool whole)
{
  struct repo *r = c->repo;
  size_t i;
  int rc = 0;

  if (!whole) {
    bool kept = e->t != NULL;
    rc = chunk_read_frames (r, e->digest, &e->t, f0, f1, e->fr);
    if (rc == -1 && kept) {
      /* A kept table (invariant 7) is checked, but the file may have
       * been written again since, the same plaintext laid out otherwise
       * (another compression): read its table again before failing. */
      free (e->t);
      e->t = NULL;
      rc = chunk_read_frames (r, e->digest, &e->t, f0, f1, e->fr);
    }
  }
  if (rc == -1)
    return -1;
  if (rc == 1) {
    e->len = e->t->raw_len;
    e->have = entry_frames (e, f0, f1);
    return 0;
  }
  pthread_mutex_lock (&c->lock);       /* rare: a chunk read whole */
  frames_release (c, e, frame_mask (f0, f1));
  rc = data_alloc (c, e);
  pthread_mutex_unlock (&c->lock);
  if (rc == -1)
    return -1;
  for (i = 0; i < CHUNK_MAX_FRAMES && i * c->fs < r->chunk_size; i++)
    e->fr[i] = e->data + i * c->fs;
  if (repo_chunk_get (r, e->digest, e->data, r->chunk_size, &e->len) == -1)
    return -1;
  e->have = entry_frames (e, 0, CHUNK_MAX_FRAMES);
  return 0;
}

/* Buffers for frames [a, b) of e, room made first: pooled ones, then
 * new ones once the other idle buffers are given back (lock held).  -1
 * (error set, the buffers given back) when out of memory. */
static int
frames_alloc (struct repo_cache *c, struct centry *e, size_t a, size_t b)
{
  size_t i;

  evict (c, (b - a) * c->fs);
  for (i = a; i < b && c->npool > 0; i++)
    e->fr[i] = c->pool[--c->npool];
  trim (c, (b - i) * c->fs);
  for (; i < b; i++)
    if (!(e->fr[i] = buffer_new (c, c->fs))) {
      frames_release (c, e, frame_mask (a, i));
      error_set (errno, "mmap");
      return -1;
    }
  return 0;
}

/* Count e's frames in used (lock held). */
static void
account (struct repo_cache *c, struct centry *e)
{
  size_t b = (size_t) __builtin_popcountll (e->have) * c->fs;

  c->used += b - e->bytes;
  e->bytes = b;
}

static void hint (struct repo_cache *c, const uint8_t *digest);

/* A new entry for digest, loaded; the lock is held on entry and exit
 * (dropped while loading).  NULL with the error set.  A partial load
 * first has the hint threads ask the storage for the chunk's whole file,
 * once in a while per chunk: the frames of a chunk read at random then
 * come from one read of the disk instead of one small read each (cold
 * 4K random reads: the disk's notifications were 6% of the CPU). */
static struct centry *
get_new (struct repo_cache *c, const uint8_t *digest, size_t f0, size_t f1,
         bool whole)
{
  struct centry *e = xcalloc (1, sizeof *e);
  char path[80];
  int rc;

  /* a server that sends the whole file at its open (S3): all of it
   * decoded now, not asked for again by each later read of a frame */
  repo_chunk_path (digest, path);
  if (!whole && io_fetches_whole (c->repo->io, path))
    whole = true;
  memcpy (e->digest, digest, REPO_DIGEST_LEN);
  e->fs = c->fs;
  e->refs = 1;
  e->state = LOADING;
  e->hnext = c->table[bucket (c, digest)];
  c->table[bucket (c, digest)] = e;
  /* the entry and the frame table it may get; room for it and its
   * buffers made at once, so that no idle buffer is given back only to
   * be mapped again */
  e->meta = sizeof *e + sizeof *e->t + c->repo->chunk_size / c->fs *
    CHUNK_ENTRY_LEN;
  /* a kept table: its file was read lately, no head to read (and no
   * hint to give: the first read of it gave one) */
  if (!whole && (e->t = ktable_take (c, digest)) != NULL)
    c->stats.tables_kept++;
  else if (!whole) {
    uint64_t h;
    memcpy (&h, digest + 8, sizeof h);
    if (c->hinted[h % HINTED_SLOTS] != h) {
      c->hinted[h % HINTED_SLOTS] = h;
      hint (c, digest);
    }
  }
  evict (c, e->meta + (whole ? c->repo->chunk_size : (f1 - f0) * c->fs));
  rc = whole ? data_alloc (c, e) : frames_alloc (c, e, f0, f1);
  trim (c, e->meta);
  charge (c, e->meta);
  pthread_mutex_unlock (&c->lock);
  if (rc == 0)
    rc = load (c, e, f0, f1, whole);
  pthread_mutex_lock (&c->lock);
  c->stats.decodes++;
  if (rc == 0) {
    if (!e->data)               /* frames past the chunk's end */
      frames_release (c, e, ~e->have);
    e->state = READY;
    account (c, e);
    lru_push (c, e);
    shrink (c);
  }
  else {
    e->state = FAILED;
    e->err = error_errno ();
    snprintf (e->errmsg, sizeof e->errmsg, "%s", error_msg ());
    unhash (c, e);
    if (--e->refs == 0)
      entry_free (c, e);
    e = NULL;
  }
  pthread_cond_broadcast (&c->cond);
  return e;
}

/* Make frames [f0, f1) of a READY entry present (lock held; dropped while
 * decoding).  -1 with the error set. */
static int
fill (struct repo_cache *c, struct centry *e, size_t f0, size_t f1)
{
  uint64_t want = entry_frames (e, f0, f1);
  uint64_t mine, run;
  size_t a, b;
  int rc;

  while (want & ~e->have) {
    mine = want & ~e->have & ~e->busy;
    if (!mine) {
      pthread_cond_wait (&c->cond, &c->lock);
      continue;
    }
    a = __builtin_ctzll (mine);
    for (b = a + 1; b < 64 && (mine >> b & 1); b++) ;
    run = frame_mask (a, b);
    if (frames_alloc (c, e, a, b) == -1)
      return -1;
    e->busy |= run;
    pthread_mutex_unlock (&c->lock);
    rc = chunk_read_frames (c->repo, e->digest, &e->t, a, b, e->fr);
    if (rc == -1) {
      /* the file may have been written again since its table was read,
       * laid out otherwise: try once with its table read again (e->t is
       * shared, and its hashes are the same: they make the digest) */
      struct chunk_table *t = NULL;
      rc = chunk_read_frames (c->repo, e->digest, &t, a, b, e->fr);
      free (t);
    }
    pthread_mutex_lock (&c->lock);
    e->busy &= ~run;
    c->stats.decodes++;
    if (rc == 1) {
      e->have |= run;
      account (c, e);
    }
    else
      frames_release (c, e, run);
    pthread_cond_broadcast (&c->cond);
    if (rc != 1)
      return -1;
  }
  return 0;
}

/* Get a READY entry holding frames [f0, f1) (all of it if whole) with a
 * reference held, or NULL with the error set. */
static struct centry *
get (struct repo_cache *c, const uint8_t *digest, size_t f0, size_t f1,
     bool whole, bool prefetch)
{
  struct centry *e;

  pthread_mutex_lock (&c->lock);
  e = lookup (c, digest);
  if (!e) {
    if (!prefetch) c->stats.misses++;
    e = get_new (c, digest, f0, f1, whole);
    if (e && prefetch) {
      e->ahead = true;
      c->ahead++;
    }
    pthread_mutex_unlock (&c->lock);
    return e;
  }
  e->refs++;
  if (e->ahead && !prefetch) {
    e->ahead = false;
    c->ahead--;
  }
  while (e->state == LOADING)
    pthread_cond_wait (&c->cond, &c->lock);
  if (e->state == FAILED) {
    /* Pass the loader's error on. */
    error_restore (e->err, e->errmsg);
    if (--e->refs == 0)
      entry_free (c, e);
    pthread_mutex_unlock (&c->lock);
    return NULL;
  }
  if (!prefetch) {
    if (entry_frames (e, f0, f1) & ~e->have)
      c->stats.misses++;
    else
      c->stats.hits++;
  }
  if (fill (c, e, whole ? 0 : f0, whole ? CHUNK_MAX_FRAMES : f1) == -1) {
    e->refs--;
    shrink (c);
    pthread_mutex_unlock (&c->lock);
    return NULL;
  }
  lru_unlink (c, e);
  lru_push (c, e);
  pthread_mutex_unlock (&c->lock);
  return e;
}

static void
put (struct repo_cache *c, struct centry *e)
{
  pthread_mutex_lock (&c->lock);
  e->refs--;
  if (c->held > c->max_bytes)
    shrink (c);
  pthread_mutex_unlock (&c->lock);
}

/* A streaming read of the whole chunk digest (len bytes) when no entry
 * holds or loads it and the cache is full: decoded straight into the
 * caller's buffer, with the same checks, and not kept (invariant 5).  1 when it
 * must go through the cache instead; 0, or -1 with the error set. */
static int
read_direct (struct repo_cache *c, const uint8_t *digest, void *buf,
             size_t len)
{
  size_t k, got;

  pthread_mutex_lock (&c->lock);
  /* full: keeping it would evict (as evict counts) */
  if (lookup (c, digest) ||
      c->held - c->nspare * c->repo->chunk_size - c->npool * c->fs + len <=
      c->max_bytes) {
    pthread_mutex_unlock (&c->lock);
    return 1;
  }
  c->stats.misses++;
  c->stats.decodes++;
  /* read-ahead need not load it now */
  for (k = 0; k < c->qlen; k++) {
    size_t at = (c->qhead + k) % PREFETCH_QUEUE, j;
    if (memcmp (c->queue[at], digest, REPO_DIGEST_LEN) != 0)
      continue;
    for (j = k; j + 1 < c->qlen; j++)
      memcpy (c->queue[(c->qhead + j) % PREFETCH_QUEUE],
              c->queue[(c->qhead + j + 1) % PREFETCH_QUEUE], REPO_DIGEST_LEN);
    c->qlen--;
    break;
  }
  pthread_mutex_unlock (&c->lock);
  if (repo_chunk_get (c->repo, digest, buf, len, &got) == -1)
    return -1;
  if (got != len) {
    error_set (EIO, "chunk has %zu bytes, the index expects at least %zu",
               got, len);
    return -1;
  }
  return 0;
}

int
cache_read (struct repo_cache *c, const uint8_t digest[REPO_DIGEST_LEN],
            void *buf, size_t off, size_t len, bool stream)
{
  size_t f0 = off / c->fs, f1 = DIV_ROUND_UP (off + len, c->fs), i, k;
  uint8_t *out = buf;
  struct centry *e;
  int rc;

  if (stream) {
    bool whole = off == 0 && len == c->repo->chunk_size;
    if (whole != __atomic_load_n (&c->whole_stream, __ATOMIC_RELAXED))
      __atomic_store_n (&c->whole_stream, whole, __ATOMIC_RELAXED);
    if (whole && (rc = read_direct (c, digest, buf, len)) != 1)
      return rc;
  }
  e = get (c, digest, f0, f1, off == 0 && len == c->repo->chunk_size, false);
  if (!e)
    return -1;
  if (off + len > e->len) {
    put (c, e);
    error_set (EIO, "chunk has %zu bytes, the index expects at least %zu",
               e->len, off + len);
    return -1;
  }
  for (; len > 0; off += k, out += k, len -= k) {
    i = off / c->fs;
    k = MIN (len, (i + 1) * c->fs - off);
    memcpy (out, e->fr[i] + (off - i * c->fs), k);
  }
  put (c, e);
  return 0;
}

/* Is e (may be NULL) loading or holding all its frames (lock held)?
 * Read-ahead completes chunks that reads left partly decoded. */
static bool
loaded (const struct centry *e)
{
  return e && (e->state != READY ||
               !(entry_frames (e, 0, CHUNK_MAX_FRAMES) & ~e->have));
}

static void *
prefetch_thread (void *arg)
{
  struct repo_cache *c = arg;
  uint8_t d[REPO_DIGEST_LEN];
  struct centry *e;

  pthread_mutex_lock (&c->lock);
  for (;;) {
    while (c->qlen == 0 && !c->stopping)
      pthread_cond_wait (&c->qcond, &c->lock);
    if (c->stopping)
      break;
    memcpy (d, c->queue[c->qhead], REPO_DIGEST_LEN);
    c->qhead = (c->qhead + 1) % PREFETCH_QUEUE;
    c->qlen--;
    if (loaded (lookup (c, d)))
      continue;
    pthread_mutex_unlock (&c->lock);
    e = get (c, d, 0, CHUNK_MAX_FRAMES, true, true);
    if (e)
      put (c, e);
    pthread_mutex_lock (&c->lock);
  }
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

static void *
hint_thread (void *arg)
{
  struct repo_cache *c = arg;
  struct repo_io *io = c->repo->io;
  uint8_t d[REPO_DIGEST_LEN];
  char path[80];

  pthread_mutex_lock (&c->lock);
  for (;;) {
    while (c->hlen == 0 && !c->stopping)
      pthread_cond_wait (&c->hcond, &c->lock);
    if (c->stopping)
      break;
    memcpy (d, c->hints[c->hhead], REPO_DIGEST_LEN);
    c->hhead = (c->hhead + 1) % PREFETCH_QUEUE;
    c->hlen--;
    pthread_mutex_unlock (&c->lock);
    repo_chunk_path (d, path);
    io->ops->will_need (io, path);
    pthread_mutex_lock (&c->lock);
  }
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

/* Have the hint threads ask the storage for chunk digest (lock held;
 * dropped when the queue is full: it is only a hint). */
static void
hint (struct repo_cache *c, const uint8_t *digest)
{
  if (!c->repo->io->ops->will_need || c->hlen == PREFETCH_QUEUE)
    return;
  while (c->nhthreads < HINT_THREADS) {
    if (pthread_create (&c->hthreads[c->nhthreads], NULL, hint_thread, c))
      break;
    c->nhthreads++;
  }
  memcpy (c->hints[(c->hhead + c->hlen) % PREFETCH_QUEUE], digest,
          REPO_DIGEST_LEN);
  c->hlen++;
  pthread_cond_signal (&c->hcond);
}

void
repo_cache_prefetch (struct repo_cache *c, struct repo_disk *d, uint64_t i)
{
  const uint8_t *digest;
  size_t k;

  if (!c || i >= d->nchunks || repo_digest_is_zero (d->digests[i]))
    return;
  digest = d->digests[i];
  pthread_mutex_lock (&c->lock);
  /* The storage is asked for the files of chunks further ahead, so that
   * their reads (directory and inode blocks, then the data) are done
   * when the decodes reach them. */
  if (i + HINT_AHEAD < d->nchunks &&
      !repo_digest_is_zero (d->digests[i + HINT_AHEAD]) &&
      !lookup (c, d->digests[i + HINT_AHEAD]))
    hint (c, d->digests[i + HINT_AHEAD]);
  if (loaded (lookup (c, digest)))
    goto out;
  /* Never have more than half the cache holds read ahead and not yet
   * read (queued, loading or loaded, however many readers stream at
   * once): what is read ahead must still be there when it is read (two
   * connections of nbdcopy, 8M ahead each, in a 16M cache had 77% of
   * what was read ahead evicted unread).  A chunk not queued is still
   * read from the storage into the page cache (not this process's
   * memory), so that the reads that decode it do not wait for the disk,
   * and the disk has many reads in flight. */
  hint (c, digest);
  if (__atomic_load_n (&c->whole_stream, __ATOMIC_RELAXED) ||  /* 6 */
      c->max_bytes < 4 * (size_t) c->repo->chunk_size ||
      c->qlen == PREFETCH_QUEUE ||
      (c->ahead + c->qlen + PREFETCH_THREADS + 1) * c->repo->chunk_size >
      c->max_bytes / 2)
    goto out;
  for (k = 0; k < c->qlen; k++)
    if (memcmp (c->queue[(c->qhead + k) % PREFETCH_QUEUE], digest,
                REPO_DIGEST_LEN) == 0)
      goto out;
  while (c->nthreads < PREFETCH_THREADS) {
    if (pthread_create (&c->threads[c->nthreads], NULL, prefetch_thread, c))
      break;
    c->nthreads++;
  }
  memcpy (c->queue[(c->qhead + c->qlen) % PREFETCH_QUEUE], digest,
          REPO_DIGEST_LEN);
  c->qlen++;
  pthread_cond_signal (&c->qcond);
 out:
  pthread_mutex_unlock (&c->lock);
}

struct repo_cache *
repo_cache_new (struct repo *r, size_t max_bytes)
{
  struct repo_cache *c = xcalloc (1, sizeof *c);
  size_t n = max_bytes / chunk_frame (r) + 64;

  c->repo = r;
  c->fs = chunk_frame (r);
  c->max_bytes = max_bytes;
  c->nbuckets = 64;
  while (c->nbuckets < 2 * n)
    c->nbuckets *= 2;
  c->table = xcalloc (c->nbuckets, sizeof *c->table);
  c->ktab = xcalloc (c->nbuckets, sizeof *c->ktab);
  c->kmax = max_bytes / TABLES_SHARE;
  charge (c, sizeof *c + c->nbuckets * (sizeof *c->table + sizeof *c->ktab));
  pthread_mutex_init (&c->lock, NULL);
  pthread_cond_init (&c->cond, NULL);
  pthread_cond_init (&c->qcond, NULL);
  pthread_cond_init (&c->hcond, NULL);
  return c;
}

void
repo_cache_free (struct repo_cache *c)
{
  struct centry *e, *n;
  int i;

  if (!c)
    return;
  pthread_mutex_lock (&c->lock);
  c->stopping = true;
  pthread_cond_broadcast (&c->qcond);
  pthread_cond_broadcast (&c->hcond);
  pthread_mutex_unlock (&c->lock);
  for (i = 0; i < c->nthreads; i++)
    pthread_join (c->threads[i], NULL);
  for (i = 0; i < c->nhthreads; i++)
    pthread_join (c->hthreads[i], NULL);
  for (e = c->lru_head; e; e = n) {
    n = e->next;
    entry_free (c, e);
  }
  while (c->nspare > 0)
    buffer_free (c, c->spare[--c->nspare], c->repo->chunk_size);
  while (c->npool > 0)
    buffer_free (c, c->pool[--c->npool], c->fs);
  while (c->khead)
    ktable_drop (c, c->khead, true);
  free (c->ktab);
  free (c->table);
  pthread_cond_destroy (&c->qcond);
  pthread_cond_destroy (&c->hcond);
  pthread_cond_destroy (&c->cond);
  pthread_mutex_destroy (&c->lock);
  free (c);
}

void
repo_cache_get_stats (struct repo_cache *c, struct repo_cache_stats *s)
{
  pthread_mutex_lock (&c->lock);
  *s = c->stats;
  s->bytes = c->used;
  s->held = c->held;
  s->peak = c->peak;
  pthread_mutex_unlock (&c->lock);
}
