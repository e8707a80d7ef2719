/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Boot traces in the plugin (trace.h): recording the first read of each
 * chunk of the pinned disk (trace=FILE) and prefetching a previous boot's
 * chunks ahead of the guest (prefetch=FILE).
 *
 * Recording: a bitmap of the disk's chunks (seen); the pread callback sets
 * a chunk's bit with an atomic fetch-or and only the read that set it
 * appends "CHUNK MS" to the trace file, one write(2) on an O_APPEND
 * descriptor (atomic for a line, no lock).  MS is the wall clock, so that
 * a restarted nbdkit appends to the same file on the same time line (its
 * header is written only when the file is empty); the session dedups and
 * cuts the file at the guest agent's first answer.  Recording stops after
 * REPO_TRACE_MAX_ENTRIES chunks (more would not parse).
 *
 * Prefetch: two threads take the list's positions in order and read each
 * chunk through the cache (repo_disk_pread: decoded and verified exactly
 * as a guest read is, so a prefetch can only change when a chunk is
 * loaded, never what a read returns).  A thread waits while the next
 * position is window positions past the furthest traced chunk the guest
 * has read (guest_pos), so the prefetched chunks fit the cache and are
 * not evicted before the guest gets to them; a chunk the guest read
 * already is skipped.  A failed prefetch read is ignored (the guest's own
 * read reports it).
 *
 * Invariants:
 *  1. The list (trace.h's parser) holds at most REPO_TRACE_MAX_ENTRIES
 *     indexes, each below the disk's chunk count.
 *  2. lock covers next, guest_pos's waiters and stopping; the counters and
 *     bitmaps are atomics.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nbd-plugin/trace.h"
#include "recovery/repo/trace.h"
#include "recovery/util/util.h"

#define PREFETCH_THREADS 2

struct slot {                  /* the list's position of a traced chunk */
  uint64_t chunk;
  size_t pos;
};

struct bb_trace {
  struct repo_disk *disk;
  struct repo_cache *cache;
  sem_t *reads;
  uint64_t nchunks;
  uint32_t cs;
  int fd;                      /* trace=, -1 if none */
  _Atomic uint64_t *seen;      /* nchunks bits: the guest read it */
  /* prefetch= */
  struct repo_trace list;
  struct slot *slots;          /* list.n, sorted by chunk */
  _Atomic uint8_t *loaded;     /* list.n: the prefetch loaded it */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  size_t next, guest_pos, window;
  bool stopping;
  pthread_t threads[PREFETCH_THREADS];
  int nthreads, finished;
  double t_start, t_done;
  _Atomic uint64_t n_loaded, n_skipped, n_guest, n_guest_ready;
  _Atomic uint64_t n_recorded;  /* stops at REPO_TRACE_MAX_ENTRIES */
  _Atomic uint64_t n_reads, read_ns;   /* the guest's reads, their time */
};

static uint64_t
wall_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
cmp_slot (const void *a, const void *b)
{
  const struct slot *x = a, *y = b;

  return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int
open_trace (struct bb_trace *t, const char *path)
{
  struct stat st;
  char head[64];
  int n;

  t->fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (t->fd == -1 || fstat (t->fd, &st) == -1) {
    error_set (errno, "trace=%s", path);
    return -1;
  }
  if (st.st_size > 0)
    return 0;                  /* a restarted nbdkit: same time line */
  n = snprintf (head, sizeof head, "%s\nchunk-size %" PRIu32 "\n",
                REPO_TRACE_MAGIC, t->cs);
  if (write (t->fd, head, n) != n) {
    error_set (errno, "trace=%s", path);
    return -1;
  }
  return 0;
}

/* The list to prefetch; a bad file leaves it empty, with a warning. */
static void
load_list (struct bb_trace *t, const char *path)
{
  size_t i;

  if (repo_trace_load (path, t->nchunks, &t->list) == -1) {
    fprintf (stderr, "bootback: warning: prefetch=%s ignored: %s\n", path, error_msg ());
    return;
  }
  if (t->list.chunk_size != t->cs) {
    fprintf (stderr, "bootback: warning: prefetch=%s ignored: its chunk size %" PRIu32
             " is not the repository's %" PRIu32 "\n", path, t->list.chunk_size, t->cs);
    repo_trace_free (&t->list);
    return;
  }
  repo_trace_dedup (&t->list);
  t->slots = xcalloc (t->list.n ? t->list.n : 1, sizeof *t->slots);
  t->loaded = xcalloc (t->list.n ? t->list.n : 1, sizeof *t->loaded);
  for (i = 0; i < t->list.n; i++) {
    t->slots[i].chunk = t->list.e[i].chunk;
    t->slots[i].pos = i;
  }
  qsort (t->slots, t->list.n, sizeof *t->slots, cmp_slot);
}

struct bb_trace *
bb_trace_new (const char *trace_path, const char *prefetch_path,
              struct repo_disk *d, uint32_t chunk_size, struct repo_cache *cache,
              uint64_t window, sem_t *reads)
{
  struct bb_trace *t = xcalloc (1, sizeof *t);

  t->disk = d;
  t->cache = cache;
  t->reads = reads;
  t->cs = chunk_size;
  t->nchunks = repo_disk_nchunks (d);
  t->window = window < 4 ? 4 : window;
  t->fd = -1;
  t->seen = xcalloc (t->nchunks / 64 + 1, sizeof *t->seen);
  pthread_mutex_init (&t->lock, NULL);
  pthread_cond_init (&t->cond, NULL);
  t->t_start = now_monotonic ();
  if (trace_path && open_trace (t, trace_path) == -1) {
    bb_trace_free (t);
    return NULL;
  }
  if (prefetch_path)
    load_list (t, prefetch_path);
  return t;
}

/* The next position to prefetch, waiting for the guest if it is window
 * ahead; list.n when done or stopping. */
static size_t
take_next (struct bb_trace *t)
{
  size_t i;

  pthread_mutex_lock (&t->lock);
  while (!t->stopping && t->next < t->list.n && t->next >= t->guest_pos + t->window)
    pthread_cond_wait (&t->cond, &t->lock);
  i = t->stopping ? t->list.n : t->next;
  if (i < t->list.n)
    t->next++;
  pthread_mutex_unlock (&t->lock);
  return i;
}

static bool
seen (struct bb_trace *t, uint64_t chunk)
{
  return atomic_load (&t->seen[chunk / 64]) & (UINT64_C (1) << (chunk % 64));
}

static void *
prefetch_thread (void *arg)
{
  struct bb_trace *t = arg;
  CLEANUP_FREE uint8_t *buf = xmalloc (t->cs);
  uint64_t size = repo_disk_size (t->disk), off;
  size_t i;

  while ((i = take_next (t)) < t->list.n) {
    off = t->list.e[i].chunk * t->cs;
    if (seen (t, t->list.e[i].chunk)) {
      t->n_skipped++;
      continue;
    }
    while (sem_wait (t->reads) == -1)
      ;                                /* EINTR */
    if (repo_disk_pread (t->disk, t->cache, buf, MIN ((uint64_t) t->cs, size - off),
                         off) == 0) {
      t->loaded[i] = 1;
      t->n_loaded++;
    }
    sem_post (t->reads);
  }
  pthread_mutex_lock (&t->lock);
  if (++t->finished == t->nthreads && !t->stopping) {
    t->t_done = now_monotonic ();
    fprintf (stderr, "bootback: prefetch: done: %" PRIu64 " of %zu traced chunks "
             "loaded, %" PRIu64 " read by the guest first, in %.2f s\n",
             (uint64_t) t->n_loaded, t->list.n, (uint64_t) t->n_skipped,
             t->t_done - t->t_start);
  }
  pthread_mutex_unlock (&t->lock);
  return NULL;
}

void
bb_trace_start (struct bb_trace *t)
{
  if (!t || t->list.n == 0 || !t->cache)
    return;
  pthread_mutex_lock (&t->lock);
  while (t->nthreads < PREFETCH_THREADS &&
         pthread_create (&t->threads[t->nthreads], NULL, prefetch_thread, t) == 0)
    t->nthreads++;
  pthread_mutex_unlock (&t->lock);
}

/* The guest read a traced chunk for the first time. */
static void
guest_traced (struct bb_trace *t, uint64_t chunk)
{
  struct slot key = { .chunk = chunk }, *s;

  s = bsearch (&key, t->slots, t->list.n, sizeof *t->slots, cmp_slot);
  if (!s)
    return;
  t->n_guest++;
  if (t->loaded[s->pos])
    t->n_guest_ready++;
  pthread_mutex_lock (&t->lock);
  if (s->pos + 1 > t->guest_pos) {
    t->guest_pos = s->pos + 1;
    pthread_cond_broadcast (&t->cond);
  }
  pthread_mutex_unlock (&t->lock);
}

void
bb_trace_note (struct bb_trace *t, uint64_t offset, uint32_t count)
{
  uint64_t c, last, bit;
  char line[48];
  int n;

  if (!t || count == 0)
    return;
  last = (offset + count - 1) / t->cs;
  for (c = offset / t->cs; c <= last && c < t->nchunks; c++) {
    bit = UINT64_C (1) << (c % 64);
    if (atomic_load (&t->seen[c / 64]) & bit ||
        atomic_fetch_or (&t->seen[c / 64], bit) & bit)
      continue;
    if (t->fd >= 0 && t->n_recorded++ < REPO_TRACE_MAX_ENTRIES) {
      n = snprintf (line, sizeof line, "%" PRIu64 " %" PRIu64 "\n", c, wall_ms ());
      if (write (t->fd, line, n) != n)   /* a trace is a hint: stop recording */
        t->n_recorded = REPO_TRACE_MAX_ENTRIES;   /* (fd closed in free only) */
    }
    if (t->list.n)
      guest_traced (t, c);
  }
}

void
bb_trace_read_done (struct bb_trace *t, double seconds)
{
  if (!t)
    return;
  t->n_reads++;
  t->read_ns += (uint64_t) (seconds * 1e9);
}

void
bb_trace_free (struct bb_trace *t)
{
  int i;

  if (!t)
    return;
  pthread_mutex_lock (&t->lock);
  t->stopping = true;
  pthread_cond_broadcast (&t->cond);
  pthread_mutex_unlock (&t->lock);
  for (i = 0; i < t->nthreads; i++)
    pthread_join (t->threads[i], NULL);
  if (t->list.n)
    fprintf (stderr, "bootback: prefetch: %" PRIu64 " of %zu traced chunks loaded; "
             "the guest read %" PRIu64 " traced chunks, %" PRIu64 " of them "
             "prefetched (cache hits)\n", (uint64_t) t->n_loaded, t->list.n,
             (uint64_t) t->n_guest, (uint64_t) t->n_guest_ready);
  fprintf (stderr, "bootback: reads: %" PRIu64 " reads of the guest waited %.3f s "
           "in total\n", (uint64_t) t->n_reads, t->read_ns / 1e9);
  if (t->fd >= 0)
    close (t->fd);
  repo_trace_free (&t->list);
  free (t->slots);
  free ((void *) t->loaded);
  free ((void *) t->seen);
  pthread_mutex_destroy (&t->lock);
  pthread_cond_destroy (&t->cond);
  free (t);
}
