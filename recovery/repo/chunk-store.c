/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading chunks from the store: path, existence, read + decode + verify.
 * (Writing is in writer.c, because writes belong to a writer.)
 *
 * In an encrypted repository (crypt.h) a whole read opens the file (each
 * tag checked, the name bound) before it is decoded; a read of frames
 * opens the sealed header and table, then only the frames it reads.
 * The frames a read wants are all decoded, then all checked together
 * (chunk_table_decode_frames: their SHA-256s side by side, chunk.c).
 * A whole read of a plain framed chunk reads its head first: when every
 * frame is stored raw (incompressible data) the frames go straight into
 * the caller's buffer and are checked there, one copy fewer.
 * Reads of frames keep the files of a local repository's chunks open
 * (below: one pread per 4K random miss, not an open and a close too).
 * A read that fails drops the storage's local copy of the chunk file, if
 * it has one (the S3 read cache: the io's uncache), and is tried once
 * more from the original; a copy that fails again is dropped again.  A
 * wrong file the server once answered (intact by its own CRCs, so
 * cached) is then never served for ever: the next read fetches it anew.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

#include "recovery/repo/crypt.h"

void
repo_chunk_path (const uint8_t digest[REPO_DIGEST_LEN], char out[80])
{
  char hex[2 * REPO_DIGEST_LEN + 1];

  hex_encode (digest, REPO_DIGEST_LEN, hex);
  snprintf (out, 80, "chunks/%.4s/%s", hex, hex);
}

int
repo_chunk_exists (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN])
{
  char path[80];
  struct repo_stat st;

  repo_chunk_path (digest, path);
  if (r->io->ops->stat (r->io, path, &st) == 0)
    return 1;
  return errno == ENOENT ? 0 : -1;
}

/* Read n bytes at off of f (looping over short reads); -1 with the error
 * naming the chunk (path), also on a file shorter than that. */
static int
read_full (struct repo_io *io, struct repo_file *f, const char *path,
           uint8_t *buf, size_t n, uint64_t off)
{
  size_t done = 0;

  while (done < n) {
    ssize_t k = io->ops->pread (io, f, buf + done, n - done, off + done);
    if (k == -1) {
      error_prefix ("chunk %s", path + 12);
      return -1;
    }
    if (k == 0) {
      error_set (EIO, "chunk %s: file shrank while being read", path + 12);
      return -1;
    }
    done += k;
  }
  return 0;
}

/* Open the file of chunk digest (path filled) and stat it: its size, at
 * most cap.  NULL with the error naming the chunk. */
static struct repo_file *
chunk_open (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
            char path[80], size_t cap, uint64_t *size)
{
  struct repo_io *io = r->io;
  struct repo_file *f;
  struct repo_stat st;

  repo_chunk_path (digest, path);
  f = io->ops->open (io, path, O_RDONLY);
  if (!f) {
    if (errno == ENOENT)
      error_set (EIO, "chunk %s is missing", path + 12);
    return NULL;
  }
  if (io->ops->fstat (io, f, &st) == -1) {
    io->ops->close (io, f);
    return NULL;
  }
  if (st.size > cap) {
    error_set (EIO, "chunk %s: file is larger than any chunk can be "
               "(%" PRIu64 " bytes)", path + 12, st.size);
    io->ops->close (io, f);
    return NULL;
  }
  *size = st.size;
  return f;
}

int
chunk_read_file (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                 uint8_t *buf, size_t cap, size_t *len)
{
  struct repo_file *f;
  char path[80];
  uint64_t size;
  int ret;

  f = chunk_open (r, digest, path, cap, &size);
  if (!f)
    return -1;
  ret = read_full (r->io, f, path, buf, size, 0);
  *len = size;
  r->io->ops->close (r->io, f);
  if (ret == 0 && r->crypt &&
      crypt_chunk_unseal (r->crypt, buf, len, path) == -1) {
    error_prefix ("chunk %s", path + 12);
    return -1;
  }
  return ret;
}

/* Decode frames [f0, f1) of t from f, frame i into out[i]. */
static int
decode_frames (struct repo *r, struct codec *c, struct repo_file *f,
               const char *path, const struct chunk_table *t, size_t f0,
               size_t f1, uint8_t *const *out)
{
  size_t i, base = t->off[f0], end = t->off[f1];
  const uint8_t *src[CHUNK_MAX_FRAMES];

  if (r->crypt) {
    base = crypt_frame_off (base, f0);
    end = crypt_frame_off (end, f1);
  }
  if (read_full (r->io, f, path, c->buf, end - base, base) == -1)
    return -1;
  for (i = f0; i < f1; i++) {
    size_t at = r->crypt ? crypt_frame_off (t->off[i], i) : t->off[i];
    src[i] = c->buf + (at - base);
    if (r->crypt &&
        crypt_chunk_frame (r->crypt, c->buf + (at - base),
                           t->off[i + 1] - t->off[i], i, t->nonce,
                           path) == -1) {
      error_prefix ("chunk %s", path + 12);
      return -1;
    }
  }
  /* all decoded, then all checked: their hashes side by side */
  if (chunk_table_decode_frames (c, t, f0, f1, src, out) == -1) {
    error_prefix ("chunk %s", path + 12);
    return -1;
  }
  return 0;
}

/* The head (header and frame table) of chunk file f, size bytes, into
 * c->buf, opened if sealed (its nonce left right after it): *avail its
 * bytes, *plen the plain file's length.  1; 0 for a chunk sealed whole
 * (read it whole); -1 with the error naming the chunk. */
static int
read_head (struct repo *r, struct codec *c, struct repo_file *f,
           const char *path, uint64_t size, size_t *avail, uint64_t *plen)
{
  size_t head = CHUNK_HDR_LEN + CHUNK_MAX_FRAMES * CHUNK_ENTRY_LEN, ht, n;
  int ret;

  head = MIN (size, head + (r->crypt ? CRYPT_CHUNK_HDR + CRYPT_TAG_LEN : 0));
  if (read_full (r->io, f, path, c->buf, head, 0) == -1)
    return -1;
  *avail = head;
  *plen = size;
  if (!r->crypt)
    return 1;
  if ((ret = crypt_chunk_head (r->crypt, c->buf, head, &ht, path)) != 1) {
    if (ret == -1)
      error_prefix ("chunk %s", path + 12);
    return ret;
  }
  n = (ht - CHUNK_HDR_LEN) / CHUNK_ENTRY_LEN;
  if (size < crypt_frame_off (ht, n)) {
    error_set (EIO, "chunk %s: truncated", path + 12);
    return -1;
  }
  *avail = ht;
  *plen = size - crypt_frame_off (0, n);
  return 1;
}

/* ---- chunk files kept open ---------------------------------------------------
 *
 * Reads of frames (chunk_read_frames: 4K random reads through the cache)
 * keep the files of the chunks they read open, up to MAX_OPEN_FILES (and
 * an eighth of the open-file limit), least recently used closed first:
 * a miss in a chunk read before costs one pread, not an open, two stats
 * and a close.  4096 covers every chunk of a 4 GiB disk in 1 MiB chunks:
 * with 1024, the 1403 chunk files of a 2 GiB ext4 image read at random
 * had a quarter of the misses open their file again (8219 opens in 33646
 * reads).  The plugin raises its soft open-file limit to make room
 * (nbd-plugin/plugin.c).  Local repositories only (io-posix): an NFS open holds state
 * on the server, an S3 one a local copy.  Nothing is trusted for being
 * open: every frame read from a kept file is still checked against its
 * hash in the table, and the table against the digest; a file replaced
 * (renamed over) is read as it was when opened, still checked; any error
 * closes the file, so that the caller's next try opens it again.  A file
 * removed (gc) would stay on the disk while it is kept open: every
 * SWEEP_SECS a read closes the kept files that have no name left
 * (files_sweep), so gc's space comes back while a session runs. */
#define MAX_OPEN_FILES 4096
#define FILES_BUCKETS 4096
#define SWEEP_SECS 10

struct ofile {
  uint8_t digest[REPO_DIGEST_LEN];
  struct repo_file *f;
  uint64_t size;
  int refs;
  bool gone;                    /* out of the set: closed by its last put */
  struct ofile *hnext, *prev, *next;   /* LRU: head = most recent */
};

struct chunk_files {
  pthread_mutex_t lock;
  uint64_t next_sweep_ms;       /* files_sweep's next time (monotonic) */
  size_t n, max;
  struct ofile *head, *tail;
  struct ofile *bucket[FILES_BUCKETS];
};

/* r's set of kept files, made on first use; NULL when files are not
 * kept. */
static struct chunk_files *
files_of (struct repo *r)
{
  struct chunk_files *fs;
  struct rlimit rl;

  if (__atomic_load_n (&r->files_tried, __ATOMIC_ACQUIRE))
    return r->files;            /* set before files_tried, never again */
  pthread_mutex_lock (&r->codec_lock);
  if (!r->files_tried) {
    if (strcmp (r->io->ops->name, "posix") == 0 &&
        getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 64) {
      fs = xcalloc (1, sizeof *fs);
      pthread_mutex_init (&fs->lock, NULL);
      fs->max = MIN ((rlim_t) MAX_OPEN_FILES, rl.rlim_cur / 8);
      r->files = fs;
    }
    __atomic_store_n (&r->files_tried, true, __ATOMIC_RELEASE);
  }
  fs = r->files;
  pthread_mutex_unlock (&r->codec_lock);
  return fs;
}

static struct ofile **
files_slot (struct chunk_files *fs, const uint8_t *digest)
{
  size_t h;

  memcpy (&h, digest, sizeof h);
  return &fs->bucket[h % FILES_BUCKETS];
}

/* Take o out of the set (lock held); the caller closes it if unused. */
static void
files_unlink (struct chunk_files *fs, struct ofile *o)
{
  struct ofile **p = files_slot (fs, o->digest);

  while (*p != o)
    p = &(*p)->hnext;
  *p = o->hnext;
  if (o->prev) o->prev->next = o->next; else fs->head = o->next;
  if (o->next) o->next->prev = o->prev; else fs->tail = o->prev;
  o->gone = true;
  fs->n--;
}

static void
files_close (struct repo *r, struct ofile *o)
{
  r->io->ops->close (r->io, o->f);
  free (o);
}

/* Take o (not in use) out of the set onto *list (lock held), to be closed
 * by files_close_list once the lock is released. */
static void
files_take (struct chunk_files *fs, struct ofile *o, struct ofile **list)
{
  files_unlink (fs, o);
  o->hnext = *list;
  *list = o;
}

static void
files_close_list (struct repo *r, struct ofile *list)
{
  while (list) {
    struct ofile *next = list->hnext;
    files_close (r, list);
    list = next;
  }
}

/* Close the kept files not in use whose chunk was removed (gc: no name
 * left), at most every SWEEP_SECS.  An fstat per kept file, under the
 * lock. */
static void
files_sweep (struct repo *r, struct chunk_files *fs)
{
  uint64_t now = (uint64_t) (now_monotonic () * 1000);
  struct ofile *k, *next, *old = NULL;
  struct repo_stat st;

  if (now < __atomic_load_n (&fs->next_sweep_ms, __ATOMIC_RELAXED))
    return;
  pthread_mutex_lock (&fs->lock);
  if (now >= fs->next_sweep_ms) {
    fs->next_sweep_ms = now + SWEEP_SECS * 1000;
    for (k = fs->head; k; k = next) {
      next = k->next;
      if (k->refs == 0 && r->io->ops->fstat (r->io, k->f, &st) == 0 && st.nlink == 0)
        files_take (fs, k, &old);
    }
  }
  pthread_mutex_unlock (&fs->lock);
  files_close_list (r, old);
}

/* The open file of chunk digest (path filled, *size its size, at most
 * cap): a kept one, or opened now and kept; *o what to give to
 * files_put (NULL: close the file).  NULL with the error set. */
static struct repo_file *
file_get (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN], char path[80],
          size_t cap, uint64_t *size, struct ofile **o)
{
  struct chunk_files *fs = files_of (r);
  struct ofile *k, *old = NULL, *p, *prev;
  struct repo_file *f;

  *o = NULL;
  if (fs) {
    files_sweep (r, fs);
    pthread_mutex_lock (&fs->lock);
    for (k = *files_slot (fs, digest); k; k = k->hnext)
      if (memcmp (k->digest, digest, REPO_DIGEST_LEN) == 0)
        break;
    if (k) {
      k->refs++;
      if (k != fs->head) {      /* most recent */
        k->prev->next = k->next;
        if (k->next) k->next->prev = k->prev; else fs->tail = k->prev;
        k->prev = NULL;
        k->next = fs->head;
        fs->head->prev = k;
        fs->head = k;
      }
      pthread_mutex_unlock (&fs->lock);
      repo_chunk_path (digest, path);
      *size = k->size;
      *o = k;
      return k->f;
    }
    pthread_mutex_unlock (&fs->lock);
  }
  f = chunk_open (r, digest, path, cap, size);
  if (!f || !fs)
    return f;
  k = xcalloc (1, sizeof *k);
  memcpy (k->digest, digest, REPO_DIGEST_LEN);
  k->f = f;
  k->size = *size;
  k->refs = 1;
  pthread_mutex_lock (&fs->lock);
  /* (another thread may keep this chunk's file too: both are kept, the
   * older one found first until it goes) */
  k->hnext = *files_slot (fs, digest);
  *files_slot (fs, digest) = k;
  k->next = fs->head;
  if (fs->head) fs->head->prev = k; else fs->tail = k;
  fs->head = k;
  fs->n++;
  /* the least recently used ones not in use go (closed unlocked) */
  for (p = fs->tail; p && fs->n > fs->max; p = prev) {
    prev = p->prev;
    if (p->refs == 0)
      files_take (fs, p, &old);
  }
  pthread_mutex_unlock (&fs->lock);
  files_close_list (r, old);
  *o = k;
  return f;
}

/* Done with file f of file_get (o its kept file or NULL); failed: the
 * read failed, close it (the next read opens the file again). */
static void
file_put (struct repo *r, struct repo_file *f, struct ofile *o, bool failed)
{
  struct chunk_files *fs = r->files;
  bool close_it;

  if (!o) {
    if (f)
      r->io->ops->close (r->io, f);
    return;
  }
  pthread_mutex_lock (&fs->lock);
  o->refs--;
  if (failed && !o->gone)
    files_unlink (fs, o);
  close_it = o->gone && o->refs == 0;
  pthread_mutex_unlock (&fs->lock);
  if (close_it)
    files_close (r, o);
}

void
chunk_files_free (struct repo *r)
{
  struct chunk_files *fs = r->files;

  if (!fs)
    return;
  while (fs->head) {
    struct ofile *o = fs->head;
    files_unlink (fs, o);
    files_close (r, o);
  }
  pthread_mutex_destroy (&fs->lock);
  free (fs);
  r->files = NULL;
}

/* A read of chunk digest failed: drop the storage's local copy of its
 * file, if it has one (the S3 read cache), so that the next read
 * fetches the original.  True if there was one. */
static bool
chunk_uncache (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN])
{
  char path[80];
  bool dropped;
  ERROR_SAVE (saved);

  if (!r->io->ops->uncache)
    return false;
  repo_chunk_path (digest, path);
  dropped = r->io->ops->uncache (r->io, path);
  ERROR_RESTORE (saved);
  return dropped;
}

static int
read_frames (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
             struct chunk_table **t, size_t f0, size_t f1,
             uint8_t *const *out)
{
  struct codec *c;
  struct repo_file *f;
  struct ofile *o;
  char path[80];
  uint64_t size;
  int ret = -1;

  c = codec_get (r);
  f = file_get (r, digest, path, c->buflen, &size, &o);
  if (!f)
    goto out;
  if (!*t) {
    size_t avail;
    uint64_t plen;
    ret = read_head (r, c, f, path, size, &avail, &plen);
    if (ret == 1 &&
        (ret = chunk_table_parse (r, c->buf, avail, plen, digest, t)) == -1)
      error_prefix ("chunk %s", path + 12);
    if (ret == 1 && r->crypt)
      memcpy ((*t)->nonce, c->buf + avail, CRYPT_NONCE_LEN);
    if (ret != 1)
      goto out;
  }
  else if (size != (r->crypt ? crypt_frame_off ((*t)->off[(*t)->n], (*t)->n)
                   : (*t)->off[(*t)->n])) {
    /* a table read before, of a file written again since, laid out
     * otherwise (the caller reads the table again) */
    error_set (EIO, "chunk %s: file changed since its frame table was read",
               path + 12);
    ret = -1;
    goto out;
  }
  f1 = MIN (f1, (*t)->n);
  ret = f0 >= f1 ? 1 : decode_frames (r, c, f, path, *t, f0, f1, out) == -1 ? -1 : 1;
 out:
  file_put (r, f, o, ret == -1);
  codec_put (r, c);
  return ret;
}

int
chunk_read_frames (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                   struct chunk_table **t, size_t f0, size_t f1,
                   uint8_t *const *out)
{
  int ret = read_frames (r, digest, t, f0, f1, out);

  if (ret == -1 && chunk_uncache (r, digest) &&
      (ret = read_frames (r, digest, t, f0, f1, out)) == -1)
    chunk_uncache (r, digest);
  return ret;
}

int
repo_chunk_raw_bytes (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                      uint64_t *raw)
{
  struct codec *c = codec_get (r);
  struct repo_file *f;
  char path[80];
  uint64_t size, plen;
  size_t head;
  int ret = -1;

  f = chunk_open (r, digest, path, c->buflen, &size);
  if (!f)
    goto out;
  ret = read_head (r, c, f, path, size, &head, &plen);
  if (ret == 0) {               /* sealed whole: open it all */
    ret = chunk_read_file (r, digest, c->buf, c->buflen, &head);
    plen = head;
  }
  if (ret != -1 &&
      (ret = chunk_head_raw_bytes (r, c->buf, head, plen, digest, raw)) == -1)
    error_prefix ("chunk %s", path + 12);
 out:
  if (f)
    r->io->ops->close (r->io, f);
  codec_put (r, c);
  return ret;
}

/* A plain framed chunk: its head first; if every frame is stored raw
 * (incompressible data), the frames are read straight into buf and
 * checked there (1), without the copy out of c->buf; else the rest of
 * the file joins its head in c->buf, *n bytes, for chunk_decode (0).
 * -1 with the error naming the chunk. */
static int
read_raw (struct repo *r, struct codec *c, const uint8_t *digest,
          uint8_t *buf, size_t buflen, size_t *len, size_t *n)
{
  struct repo_file *f;
  char path[80];
  uint64_t size;
  size_t head, hlen;
  int ret = -1;

  f = chunk_open (r, digest, path, c->buflen, &size);
  if (!f)
    return -1;
  head = MIN (size, CHUNK_HDR_LEN + CHUNK_MAX_FRAMES * CHUNK_ENTRY_LEN);
  if (read_full (r->io, f, path, c->buf, head, 0) == -1)
    goto out;
  if (chunk_raw_head (r, c->buf, head, size, buflen, &hlen) == 1) {
    if (read_full (r->io, f, path, buf, size - hlen, hlen) == -1)
      goto out;
    if (chunk_decode_raw (r, c, c->buf, hlen, buf, buflen, len, digest) == -1) {
      error_prefix ("chunk %s", path + 12);
      goto out;
    }
    ret = 1;
  }
  else if (read_full (r->io, f, path, c->buf + head, size - head, head) == 0) {
    *n = size;
    ret = 0;
  }
 out:
  r->io->ops->close (r->io, f);
  return ret;
}

static int
chunk_get (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
           void *buf, size_t buflen, size_t *len)
{
  struct codec *c = codec_get (r);
  char path[80];
  size_t n;
  int ret = -1;

  if (buflen > r->chunk_size)
    buflen = r->chunk_size;
  if (!r->crypt && r->tree) {
    ret = read_raw (r, c, digest, buf, buflen, len, &n);
    if (ret != 0) {
      ret = ret == 1 ? 0 : -1;
      goto out;
    }
    ret = -1;
  }
  else if (chunk_read_file (r, digest, c->buf, c->buflen, &n) == -1)
    goto out;
  if (chunk_decode (r, c, c->buf, n, buf, buflen, len, digest) == -1) {
    repo_chunk_path (digest, path);
    error_prefix ("chunk %s", path + 12);
    goto out;
  }
  ret = 0;
 out:
  codec_put (r, c);
  return ret;
}

int
repo_chunk_get (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                void *buf, size_t buflen, size_t *len)
{
  int ret = chunk_get (r, digest, buf, buflen, len);

  if (ret == -1 && chunk_uncache (r, digest) &&
      (ret = chunk_get (r, digest, buf, buflen, len)) == -1)
    chunk_uncache (r, digest);
  return ret;
}
