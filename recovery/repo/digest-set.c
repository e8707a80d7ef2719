/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The digest set: open addressing with linear probing, the zero digest
 * marking an empty slot.
 *
 * Memory: a table holds at most 3/4 of its slots and grows by half, so
 * right after growing it is half full: 2 slots of 32 bytes per member,
 * 64 bytes, at worst.  Growing needs the old and the new table at once;
 * so that this transient does not double the peak, the set is 256 tables
 * (shards, by the top byte of the hash), each growing alone: the
 * transient is 1/256 of the set.  Tables are mmap'd, so a table given
 * back is given back to the system (malloc would keep freed tables of
 * every size in its heap).
 *
 * Hashing: digests come from index files, which a hostile repository
 * writes: they need not be SHA-256 outputs at all.  Slots are picked by a
 * hash of all 32 bytes mixed with a key drawn per set, so that crafted
 * digests cannot pile up in one run of slots.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "recovery/repo/digest-set.h"
#include "recovery/util/util.h"

#define SHARD_BITS 8
#define NSHARDS (1u << SHARD_BITS)
#define MIN_SLOTS 128

struct shard {
  uint8_t (*slot)[REPO_DIGEST_LEN];
  size_t cap, n;
};

struct digest_set {
  uint64_t key[5];
  size_t n;
  struct shard shard[NSHARDS];
};

static inline uint64_t
load64 (const uint8_t *p)
{
  uint64_t v;
  memcpy (&v, p, 8);
  return v;
}

static inline bool
slot_empty (const uint8_t *p)
{
  return (load64 (p) | load64 (p + 8) | load64 (p + 16) | load64 (p + 24)) == 0;
}

static inline uint64_t
hash (const struct digest_set *s, const uint8_t *d)
{
  uint64_t h = s->key[4];
  int i;

  for (i = 0; i < 4; i++) {
    h = (h ^ load64 (d + 8 * i) ^ s->key[i]) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
  }
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}

/* The home slot: the bits below the shard's, scaled to cap. */
static inline size_t
home (uint64_t h, size_t cap)
{
  return ((unsigned __int128) (h << SHARD_BITS) * cap) >> 64;
}

static void *
map_zeroed (size_t bytes)
{
  void *p = mmap (NULL, bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fputs ("bootback: out of memory\n", stderr);
    abort ();
  }
  return p;
}

static size_t
table_bytes (size_t cap)
{
  return cap * REPO_DIGEST_LEN;
}

/* Place d (not there yet) in table t of cap slots. */
static void
place (uint8_t (*t)[REPO_DIGEST_LEN], size_t cap, uint64_t h, const uint8_t *d)
{
  size_t i = home (h, cap);

  while (!slot_empty (t[i]))
    i = i + 1 == cap ? 0 : i + 1;
  memcpy (t[i], d, REPO_DIGEST_LEN);
}

static void
grow (struct digest_set *s, struct shard *sh)
{
  long page = sysconf (_SC_PAGESIZE);
  size_t want = MAX ((size_t) MIN_SLOTS, sh->cap + sh->cap / 2);
  size_t bytes = DIV_ROUND_UP (table_bytes (want), page) * page;
  size_t cap = bytes / REPO_DIGEST_LEN, i;
  uint8_t (*t)[REPO_DIGEST_LEN] = map_zeroed (bytes);

  for (i = 0; i < sh->cap; i++)
    if (!slot_empty (sh->slot[i]))
      place (t, cap, hash (s, sh->slot[i]), sh->slot[i]);
  if (sh->slot)
    munmap (sh->slot, table_bytes (sh->cap));
  sh->slot = t;
  sh->cap = cap;
}

struct digest_set *
digest_set_new (void)
{
  struct digest_set *s = xcalloc (1, sizeof *s);

  if (getrandom (s->key, sizeof s->key, 0) != sizeof s->key) {
    /* No entropy source: a fixed key still hashes fine, only without
     * the protection against crafted digests. */
    s->key[0] = (uint64_t) getpid () * 0x9e3779b97f4a7c15ULL;
  }
  return s;
}

void
digest_set_free (struct digest_set *s)
{
  size_t i;

  if (!s)
    return;
  for (i = 0; i < NSHARDS; i++)
    if (s->shard[i].slot)
      munmap (s->shard[i].slot, table_bytes (s->shard[i].cap));
  free (s);
}

/* The slot of d in sh, or of the empty slot ending its probe. */
static size_t
probe (const struct shard *sh, uint64_t h, const uint8_t *d)
{
  size_t i = home (h, sh->cap);

  while (!slot_empty (sh->slot[i]) &&
         memcmp (sh->slot[i], d, REPO_DIGEST_LEN) != 0)
    i = i + 1 == sh->cap ? 0 : i + 1;
  return i;
}

bool
digest_set_add (struct digest_set *s, const uint8_t d[REPO_DIGEST_LEN])
{
  uint64_t h;
  struct shard *sh;
  size_t i = 0;

  if (slot_empty (d))
    return false;
  h = hash (s, d);
  sh = &s->shard[h >> (64 - SHARD_BITS)];
  if (sh->cap) {
    i = probe (sh, h, d);
    if (!slot_empty (sh->slot[i]))
      return false;
  }
  if ((sh->n + 1) * 4 > sh->cap * 3) {
    grow (s, sh);
    i = probe (sh, h, d);
  }
  memcpy (sh->slot[i], d, REPO_DIGEST_LEN);
  sh->n++;
  s->n++;
  return true;
}

bool
digest_set_has (const struct digest_set *s, const uint8_t d[REPO_DIGEST_LEN])
{
  uint64_t h;
  const struct shard *sh;

  if (slot_empty (d))
    return false;
  h = hash (s, d);
  sh = &s->shard[h >> (64 - SHARD_BITS)];
  return sh->cap && !slot_empty (sh->slot[probe (sh, h, d)]);
}

size_t
digest_set_count (const struct digest_set *s)
{
  return s->n;
}

size_t
digest_set_bytes (const struct digest_set *s)
{
  size_t i, b = 0;

  for (i = 0; i < NSHARDS; i++)
    b += table_bytes (s->shard[i].cap);
  return b;
}

size_t
digest_set_parts (const struct digest_set *s)
{
  return NSHARDS;
}

const uint8_t *
digest_set_next (const struct digest_set *s, size_t part, size_t *pos)
{
  const struct shard *sh = &s->shard[part];

  while (*pos < sh->cap) {
    const uint8_t *p = sh->slot[(*pos)++];
    if (!slot_empty (p))
      return p;
  }
  return NULL;
}
