/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shared cache of decoded chunks.
 *
 * Invariants:
 *  1. At most one thread reads and decodes a given digest at a time: the
 *     first asker inserts a LOADING entry and decodes outside the lock;
 *     later askers wait on the cache's condition variable.
 *  2. A failed load never stays in the table: waiters see the error once,
 *     and the next request tries again (a server that comes back heals).
 *  3. Only READY entries with no readers are evicted, least recently used
 *     first, so the bytes held stay near max_bytes (plus one chunk per
 *     reader in flight).  Buffers are mmap'd so that freeing them gives the
 *     memory back to the system at once.
 *  4. Read-ahead threads only call the same get/put pair: a hint, never a
 *     different path.
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
  uint8_t *data;
  size_t len;
  int refs, state, err;
  char errmsg[512];
  struct centry *hnext;
  struct centry *prev, *next;   /* LRU, READY only; head = most recent */
};

#define PREFETCH_QUEUE 64
#define PREFETCH_THREADS 2

struct repo_cache {
  struct repo *repo;
  size_t max_bytes, used;
  size_t nbuckets;
  struct centry **table;
  struct centry *lru_head, *lru_tail;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct repo_cache_stats stats;
  /* read-ahead */
  uint8_t queue[PREFETCH_QUEUE][REPO_DIGEST_LEN];
  size_t qhead, qlen;
  pthread_cond_t qcond;
  pthread_t threads[PREFETCH_THREADS];
  int nthreads;
  bool stopping;
};

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

static void
entry_free (struct repo_cache *c, struct centry *e)
{
  if (e->data)
    munmap (e->data, c->repo->chunk_size);
  free (e);
}

static void
evict (struct repo_cache *c)
{
  struct centry *e = c->lru_tail, *prev;

  while (c->used > c->max_bytes && e) {
    prev = e->prev;
    if (e->refs == 0) {
      lru_unlink (c, e);
      unhash (c, e);
      c->used -= c->repo->chunk_size;
      c->stats.evictions++;
      entry_free (c, e);
    }
    e = prev;
  }
}

/* Get a READY entry with a reference held, or NULL with the error set. */
static struct centry *
get (struct repo_cache *c, const uint8_t *digest, bool prefetch)
{
  struct centry *e;
  size_t len;
  int rc;

  pthread_mutex_lock (&c->lock);
  e = lookup (c, digest);
  if (e) {
    e->refs++;
    while (e->state == LOADING)
      pthread_cond_wait (&c->cond, &c->lock);
    if (e->state == READY) {
      if (!prefetch) c->stats.hits++;
      lru_unlink (c, e);
      lru_push (c, e);
      pthread_mutex_unlock (&c->lock);
      return e;
    }
    /* FAILED: pass the loader's error on. */
    error_restore (e->err, e->errmsg);
    if (--e->refs == 0)
      entry_free (c, e);
    pthread_mutex_unlock (&c->lock);
    return NULL;
  }
  if (!prefetch) c->stats.misses++;
  e = xcalloc (1, sizeof *e);
  memcpy (e->digest, digest, REPO_DIGEST_LEN);
  e->refs = 1;
  e->state = LOADING;
  e->hnext = c->table[bucket (c, digest)];
  c->table[bucket (c, digest)] = e;
  pthread_mutex_unlock (&c->lock);

  e->data = mmap (NULL, c->repo->chunk_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (e->data == MAP_FAILED) {
    e->data = NULL;
    error_set (errno, "mmap");
    rc = -1;
  }
  else
    rc = repo_chunk_get (c->repo, digest, e->data, c->repo->chunk_size, &len);

  pthread_mutex_lock (&c->lock);
  c->stats.decodes++;
  if (rc == 0) {
    e->len = len;
    e->state = READY;
    c->used += c->repo->chunk_size;
    lru_push (c, e);
    evict (c);
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
  pthread_mutex_unlock (&c->lock);
  return e;
}

static void
put (struct repo_cache *c, struct centry *e)
{
  pthread_mutex_lock (&c->lock);
  e->refs--;
  if (c->used > c->max_bytes)
    evict (c);
  pthread_mutex_unlock (&c->lock);
}

int
cache_read (struct repo_cache *c, const uint8_t digest[REPO_DIGEST_LEN],
            void *buf, size_t off, size_t len)
{
  struct centry *e = get (c, digest, false);

  if (!e)
    return -1;
  if (off + len > e->len) {
    put (c, e);
    error_set (EIO, "chunk has %zu bytes, the index expects at least %zu",
               e->len, off + len);
    return -1;
  }
  memcpy (buf, e->data + off, len);
  put (c, e);
  return 0;
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
    if (lookup (c, d))
      continue;
    pthread_mutex_unlock (&c->lock);
    e = get (c, d, true);
    if (e)
      put (c, e);
    pthread_mutex_lock (&c->lock);
  }
  pthread_mutex_unlock (&c->lock);
  return NULL;
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
  if (c->max_bytes < 4 * (size_t) c->repo->chunk_size || lookup (c, digest) ||
      c->qlen == PREFETCH_QUEUE)
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
  size_t n = max_bytes / r->chunk_size + 64;

  c->repo = r;
  c->max_bytes = max_bytes;
  c->nbuckets = 64;
  while (c->nbuckets < 2 * n)
    c->nbuckets *= 2;
  c->table = xcalloc (c->nbuckets, sizeof *c->table);
  pthread_mutex_init (&c->lock, NULL);
  pthread_cond_init (&c->cond, NULL);
  pthread_cond_init (&c->qcond, NULL);
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
  pthread_mutex_unlock (&c->lock);
  for (i = 0; i < c->nthreads; i++)
    pthread_join (c->threads[i], NULL);
  for (e = c->lru_head; e; e = n) {
    n = e->next;
    entry_free (c, e);
  }
  free (c->table);
  pthread_cond_destroy (&c->qcond);
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
  pthread_mutex_unlock (&c->lock);
}
