/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk file formats (headers in repo-int.h), chunk digests, and the
 * codec.
 *
 * A chunk's digest depends on the repository's "hash":
 *   sha256-tree  the SHA-256 of the list of the SHA-256s of its 64 KiB
 *                frames; chunks are BBC2 files, each frame compressed on
 *                its own, its SHA-256 in the file's frame table;
 *   sha256-tree-NK  the same with frames of N KiB (4 to 32; new
 *                repositories: a 64th of the chunk, 16 KiB for 1 MiB
 *                chunks), so that a 4 KiB read decodes and hashes a
 *                quarter of what 64 KiB frames cost.  The frame size is a
 *                property of the repository (it changes every digest), and
 *                each BBC2 header records it;
 *   sha256       the SHA-256 of the plaintext (repositories made before
 *                framed chunks); chunks are BBC1 files, one zstd frame.
 * With frames, a chunk that changed in a few places is made from the
 * previous chunk by hashing and compressing only the changed frames: the
 * other frames' stored bytes and hashes are copied (chunk_patch_*).  That
 * is what keeps an incremental backup of scattered small writes cheap.
 * Because the digest covers the frame hashes and every read checks each
 * frame against its hash, a copied frame is still checked on every read.
 *
 * Decoding is bounded: it never writes or allocates more than the
 * caller's buffer (the repository's chunk size), whatever a header
 * claims, and it checks, in order, the header's own CRC, the lengths,
 * the payload CRC, each decompressed length and finally the SHA-256s.
 *
 * The frames of a chunk a read decodes are hashed side by side where the
 * build has intel-ipsec-mb and the CPU AVX-512 (sha256_frames: 16 lanes
 * at once, 2.2-3.6 times OpenSSL's SHA-NI on 16 KiB frames, 2.7 on
 * 64 KiB ones: mb_selftest); the digests are
 * the same SHA-256s, only the way they are computed differs, and every
 * frame is still checked before any byte of it is handed out.
 */
#include <errno.h>
#include <endian.h>
#include <openssl/evp.h>
#include <isa-l/crc.h>
#include <zstd.h>
#ifdef HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#endif

#include "recovery/repo/crypt.h"

const uint8_t repo_zero_digest[REPO_DIGEST_LEN];
static const uint8_t zero_frame[CHUNK_FRAME];

bool
repo_digest_is_zero (const uint8_t d[REPO_DIGEST_LEN])
{
  return memcmp (d, repo_zero_digest, REPO_DIGEST_LEN) == 0;
}

static const EVP_MD *sha256_md;
/* The SHA-256 of a frame of zeros of each size (by shift). */
static uint8_t zero_frame_hash[CHUNK_FRAME_SHIFT + 1][REPO_DIGEST_LEN];
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_init (void)
{
  int s;

  sha256_md = EVP_MD_fetch (NULL, "SHA256", NULL);
  if (!sha256_md)
    abort ();
  for (s = CHUNK_MIN_FRAME_SHIFT; s <= CHUNK_FRAME_SHIFT; s++)
    if (EVP_Digest (zero_frame, (size_t) 1 << s, zero_frame_hash[s], NULL,
                    sha256_md, NULL) != 1)
      abort ();
}

void
repo_sha256 (const void *buf, size_t len, uint8_t out[REPO_DIGEST_LEN])
{
  pthread_once (&sha256_once, sha256_init);
  if (EVP_Digest (buf, len, out, NULL, sha256_md, NULL) != 1)
    abort ();
}

/* In an encrypted repository the name is keyed (crypt.h). */
static void
tree_digest (const struct repo *r, const uint8_t *hashes, size_t n,
             uint8_t out[REPO_DIGEST_LEN])
{
  repo_sha256 (hashes, n * REPO_DIGEST_LEN, out);
  if (r->crypt)
    crypt_name (r->crypt, out);
}

static void sha256_frames (struct codec *c, const uint8_t *const *src,
                           const size_t *len, size_t n,
                           uint8_t (*out)[REPO_DIGEST_LEN]);

void
chunk_digest (const struct repo *r, struct codec *c, const void *data,
              size_t len, uint8_t (*fh)[REPO_DIGEST_LEN],
              uint8_t out[REPO_DIGEST_LEN])
{
  size_t fs = chunk_frame (r), i, n = DIV_ROUND_UP (len, fs);
  const uint8_t *src[CHUNK_MAX_FRAMES];
  size_t flen[CHUNK_MAX_FRAMES];

  if (!r->tree) {
    repo_sha256 (data, len, out);
    if (r->crypt)
      crypt_name (r->crypt, out);
    return;
  }
  for (i = 0; i < n; i++) {
    src[i] = (const uint8_t *) data + i * fs;
    flen[i] = MIN (fs, len - i * fs);
  }
  sha256_frames (c, src, flen, n, fh);
  tree_digest (r, fh[0], n, out);
}

void
repo_chunk_digest (struct repo *r, const void *data, size_t len,
                   uint8_t out[REPO_DIGEST_LEN])
{
  struct repo_hasher *h = repo_hasher_get (r);

  repo_hasher_digest (r, h, data, len, out);
  repo_hasher_put (r, h, false);
}

struct codec *
codec_get (struct repo *r)
{
  struct codec *c;

  pthread_mutex_lock (&r->codec_lock);
  c = r->codecs;
  if (c)
    r->codecs = c->next;
  pthread_mutex_unlock (&r->codec_lock);
  if (c)
    return c;
  c = xcalloc (1, sizeof *c);
  c->cctx = ZSTD_createCCtx ();
  c->dctx = ZSTD_createDCtx ();
  if (!c->cctx || !c->dctx)
    abort ();
  /* Room for a BBC1 file, or a BBC2 file whose frames all but the last
   * were stored raw and whose last one is being compressed. */
  c->buflen = CHUNK_HDR_LEN + CHUNK_MAX_FRAMES * CHUNK_ENTRY_LEN +
    ZSTD_compressBound (r->chunk_size) + ZSTD_compressBound (CHUNK_FRAME) +
    CRYPT_CHUNK_MAX_OVERHEAD;   /* sealed in an encrypted repository */
  c->buf = xmalloc (c->buflen);
  c->frame = xmalloc (CHUNK_FRAME);
  return c;
}

void
codec_put (struct repo *r, struct codec *c)
{
  pthread_mutex_lock (&r->codec_lock);
  c->next = r->codecs;
  r->codecs = c;
  pthread_mutex_unlock (&r->codec_lock);
}

static void
codec_free (struct codec *c)
{
  ZSTD_freeCCtx (c->cctx);
  ZSTD_freeDCtx (c->dctx);
#ifdef HAVE_IPSEC_MB
  if (c->mb)
    free_mb_mgr (c->mb);
#endif
  free (c->buf);
  free (c->in);
  free (c->frame);
  free (c);
}

void
codec_free_all (struct repo *r)
{
  struct codec *c, *n;

  for (c = r->codecs; c; c = n) {
    n = c->next;
    codec_free (c);
  }
  r->codecs = NULL;
}

/* The public face of a codec for hashing (repo.h): a hash jumped out of
 * (siglongjmp from a SIGBUS under mapped data) may leave jobs queued in
 * its manager that point at a dead stack, so that codec is freed, never
 * pooled again. */
struct repo_hasher *
repo_hasher_get (struct repo *r)
{
  return (struct repo_hasher *) codec_get (r);
}

void
repo_hasher_digest (struct repo *r, struct repo_hasher *h, const void *data,
                    size_t len, uint8_t out[REPO_DIGEST_LEN])
{
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN];

  chunk_digest (r, (struct codec *) h, data, len, fh, out);
}

void
repo_hasher_put (struct repo *r, struct repo_hasher *h, bool jumped)
{
  if (jumped)
    codec_free ((struct codec *) h);
  else
    codec_put (r, (struct codec *) h);
}

/* ---- frames hashed side by side ------------------------------------------
 *
 * intel-ipsec-mb's multi-buffer SHA-256 hashes up to 16 messages at once
 * in the lanes of AVX-512 registers.  A pass costs the same however many
 * lanes are used (about 7 single SHA-NI hashes of 16 KiB), so it is used
 * only for groups of at least MB_MIN frames and only with the AVX-512
 * manager (measured on 16 KiB frames, CPU time: OpenSSL 12 us a frame,
 * 16 lanes 5.2 us; the SSE and AVX2 managers use SHA-NI two at a time,
 * 9.3 us, not worth a second path).  Elsewhere, OpenSSL. */
#define MB_LANES 16
#define MB_MIN 8

#ifdef HAVE_IPSEC_MB
/* intel-ipsec-mb (1.3) checks each job before it runs it, and refuses a
 * hash of more than 65534 bytes (IMB_ERR_JOB_AUTH_LEN): two bytes short
 * of a full 64 KiB frame, the frame of every repository of 4 MiB chunks (S3's
 * default) and of those made before smaller frames.  Its AVX-512 SHA-256
 * hashes such a message right all the same, so those jobs go unchecked
 * (IMB_SUBMIT_JOB_NOCHECK; mb_hash_jobs builds each in full) when
 * mb_selftest found this library's digests of 64 KiB messages equal to
 * OpenSSL's; else they are hashed with OpenSSL, as before.  Measured
 * here on 16 lanes of 64 KiB: 14.6 us a frame against OpenSSL's 38.9. */
#define MB_CHECKED_MAX 65534
static bool mb_long_ok;
static pthread_once_t mb_long_once = PTHREAD_ONCE_INIT;

static int mb_hash_jobs (IMB_MGR *m, const uint8_t *const *src,
                         const size_t *len, size_t n,
                         uint8_t (*out)[REPO_DIGEST_LEN], bool check);

/* A multi-buffer manager with AVX-512 lanes, or NULL (no AVX-512 on
 * this CPU, or no memory: OpenSSL then). */
static IMB_MGR *
mb_new (void)
{
  IMB_MGR *m = alloc_mb_mgr (0);
  IMB_ARCH arch;

  if (!m)
    return NULL;
  init_mb_mgr_auto (m, &arch);
  if (imb_get_errno (m) != 0 || arch != IMB_ARCH_AVX512) {
    free_mb_mgr (m);
    return NULL;
  }
  return m;
}

/* mb_long_ok: messages of CHUNK_FRAME and CHUNK_FRAME - 1 bytes, each
 * different, hashed unchecked on a manager of this process, MB_LANES at
 * once and then 9 (a group the manager flushes), give OpenSSL's
 * digests. */
static void
mb_selftest (void)
{
  const uint8_t *src[MB_LANES];
  size_t len[MB_LANES], i, n;
  uint8_t got[MB_LANES][REPO_DIGEST_LEN], want[REPO_DIGEST_LEN];
  uint8_t *buf = xmalloc ((size_t) MB_LANES * CHUNK_FRAME);
  IMB_MGR *m = mb_new ();
  bool ok = m != NULL;

  for (i = 0; i < (size_t) MB_LANES * CHUNK_FRAME; i++)
    buf[i] = (uint8_t) (i * 2654435761u >> 11);
  for (i = 0; i < MB_LANES; i++) {
    src[i] = buf + i * CHUNK_FRAME;
    len[i] = CHUNK_FRAME - (i & 1);     /* 65536 and 65535 in turn */
  }
  for (n = MB_LANES; ok && n >= 9; n -= MB_LANES - 9) {
    memset (got, 0, sizeof got);
    ok = mb_hash_jobs (m, src + MB_LANES - n, len + MB_LANES - n, n, got,
                       false) == 0;
    for (i = 0; ok && i < n; i++) {
      repo_sha256 (src[MB_LANES - n + i], len[MB_LANES - n + i], want);
      ok = memcmp (got[i], want, REPO_DIGEST_LEN) == 0;
    }
  }
  mb_long_ok = ok;
  if (m)
    free_mb_mgr (m);
  free (buf);
}

/* c's multi-buffer manager, made on first use; NULL when this CPU has no
 * AVX-512 (OpenSSL then). */
static IMB_MGR *
mb_of (struct codec *c)
{
  if (c->mb_tried)
    return c->mb;
  c->mb_tried = true;
  pthread_once (&mb_long_once, mb_selftest);
  return c->mb = mb_new ();
}

/* Hash n (at most 64) messages on m: 0, or -1 if a message is longer
 * than this library hashes (above) or a job failed (the caller hashes
 * them again with OpenSSL). */
static int
mb_hash (IMB_MGR *m, const uint8_t *const *src, const size_t *len, size_t n,
         uint8_t (*out)[REPO_DIGEST_LEN])
{
  size_t i, longest = 0;

  for (i = 0; i < n; i++)
    longest = MAX (longest, len[i]);
  if (longest > (mb_long_ok ? CHUNK_FRAME : MB_CHECKED_MAX))
    return -1;
  return mb_hash_jobs (m, src, len, n, out, longest <= MB_CHECKED_MAX);
}

/* mb_hash's jobs, each checked by the library before it runs if check. */
static int
mb_hash_jobs (IMB_MGR *m, const uint8_t *const *src, const size_t *len,
              size_t n, uint8_t (*out)[REPO_DIGEST_LEN], bool check)
{
  IMB_JOB *j;
  size_t i, done = 0;
  int ret = 0;

  for (i = 0; i < n; i++) {
    j = IMB_GET_NEXT_JOB (m);
    j->src = src[i];
    j->hash_start_src_offset_in_bytes = 0;
    j->msg_len_to_hash_in_bytes = len[i];
    j->auth_tag_output = out[i];
    j->auth_tag_output_len_in_bytes = REPO_DIGEST_LEN;
    j->hash_alg = IMB_AUTH_SHA_256;
    j->cipher_mode = IMB_CIPHER_NULL;
    j->cipher_direction = IMB_DIR_ENCRYPT;
    j->chain_order = IMB_ORDER_HASH_CIPHER;
    j = check ? IMB_SUBMIT_JOB (m) : IMB_SUBMIT_JOB_NOCHECK (m);
    for (; j; j = IMB_GET_COMPLETED_JOB (m)) {
      done++;
      if (j->status != IMB_STATUS_COMPLETED)
        ret = -1;
    }
  }
  while ((j = IMB_FLUSH_JOB (m)) != NULL) {
    done++;
    if (j->status != IMB_STATUS_COMPLETED)
      ret = -1;
  }
  return done == n ? ret : -1;
}
#endif

/* The SHA-256 of each of n (at most 64) messages, src[i] of len[i]
 * bytes, into out[i]: side by side on c's manager in groups of 16 (and a
 * last group of at least MB_MIN), the rest with OpenSSL.  c may be
 * NULL. */
static void
sha256_frames (struct codec *c, const uint8_t *const *src, const size_t *len,
               size_t n, uint8_t (*out)[REPO_DIGEST_LEN])
{
  size_t i = 0;

#ifdef HAVE_IPSEC_MB
  IMB_MGR *m = c && n >= MB_MIN ? mb_of (c) : NULL;

  if (m) {
    size_t k = n % MB_LANES >= MB_MIN ? n : n - n % MB_LANES;
    if (mb_hash (m, src, len, k, out) == 0)
      i = k;
  }
#endif
  for (; i < n; i++)
    repo_sha256 (src[i], len[i], out[i]);
}

void
chunk_sha256_frames (struct codec *c, const uint8_t *const *src,
                     const size_t *len, size_t n,
                     uint8_t (*out)[REPO_DIGEST_LEN])
{
  sha256_frames (c, src, len, n, out);
}

/* zlib's CRC-32 (the format's), computed by ISA-L: the same values,
 * about ten times as fast, which matters when a patch checks a whole
 * base chunk to copy most of it. */
static uint32_t
crc (const void *p, size_t n)
{
  return crc32_gzip_refl (0, p, n);
}

static void
put32 (uint8_t *p, uint32_t v)
{
  v = htole32 (v);
  memcpy (p, &v, 4);
}

static uint32_t
get32 (const uint8_t *p)
{
  uint32_t v;
  memcpy (&v, p, 4);
  return le32toh (v);
}

/* The header of a chunk file whose payload (c->buf[32..flen)) is
 * written. */
static void
put_header (uint8_t *h, const char *magic, int byte4, size_t len,
            size_t flen)
{
  memset (h, 0, CHUNK_HDR_LEN);
  memcpy (h, magic, 4);
  h[4] = byte4;
  put32 (h + 8, len);
  put32 (h + 12, flen - CHUNK_HDR_LEN);
  put32 (h + 16, crc (h + CHUNK_HDR_LEN, flen - CHUNK_HDR_LEN));
  put32 (h + 20, crc (h, 20));
}

/* Compress len bytes into dst (room for at least ZSTD_compressBound(len))
 * or copy them: zstd is kept only if it saves 1/64 of the size. */
static size_t
compress_or_copy (struct repo *r, struct codec *c, uint8_t *dst,
                  size_t room, const void *data, size_t len, int *codec)
{
  if (r->compress) {
    size_t z = ZSTD_compressCCtx (c->cctx, dst, room, data, len,
                                  r->zstd_level);
    if (!ZSTD_isError (z) && z < len - len / 64) {
      *codec = CHUNK_CODEC_ZSTD;
      return z;
    }
  }
  memcpy (dst, data, len);
  *codec = CHUNK_CODEC_RAW;
  return len;
}

/* Append frame i (hash, len bytes of data) to the BBC2 file being built
 * in c->buf at *pos, filling its table entry. */
static void
put_frame (struct repo *r, struct codec *c, size_t i,
           const uint8_t hash[REPO_DIGEST_LEN], const void *data, size_t len,
           size_t *pos)
{
  uint8_t *e = c->buf + CHUNK_HDR_LEN + i * CHUNK_ENTRY_LEN;
  int codec;
  size_t n = compress_or_copy (r, c, c->buf + *pos, c->buflen - *pos,
                               data, len, &codec);

  memcpy (e, hash, REPO_DIGEST_LEN);
  put32 (e + 32, n);
  put32 (e + 36, codec);
  *pos += n;
}

size_t
chunk_encode (struct repo *r, struct codec *c, const void *data, size_t len,
              const uint8_t (*fh)[REPO_DIGEST_LEN])
{
  size_t fs = chunk_frame (r), i, n, pos;
  int codec;

  if (!r->tree) {
    pos = CHUNK_HDR_LEN + compress_or_copy (r, c, c->buf + CHUNK_HDR_LEN,
                                            c->buflen - CHUNK_HDR_LEN,
                                            data, len, &codec);
    put_header (c->buf, "BBC1", codec, len, pos);
    return pos;
  }
  n = DIV_ROUND_UP (len, fs);
  pos = CHUNK_HDR_LEN + n * CHUNK_ENTRY_LEN;
  for (i = 0; i < n; i++)
    put_frame (r, c, i, fh[i], (const uint8_t *) data + i * fs,
               MIN (fs, len - i * fs), &pos);
  put_header (c->buf, "BBC2", r->tree, len, pos);
  return pos;
}

size_t
chunk_raw_bytes (const uint8_t *file)
{
  size_t len = get32 (file + 8), fs = (size_t) 1 << file[4], i, n, raw = 0;

  if (memcmp (file, "BBC1", 4) == 0)
    return file[4] == CHUNK_CODEC_RAW ? len : 0;
  n = DIV_ROUND_UP (len, fs);
  for (i = 0; i < n; i++)
    if (get32 (file + CHUNK_HDR_LEN + i * CHUNK_ENTRY_LEN + 36)
        == CHUNK_CODEC_RAW)
      raw += MIN (fs, len - i * fs);
  return raw;
}

/* ---- parsing and decoding ------------------------------------------------ */

static size_t
frame_len (const struct chunk_parsed *p, size_t i)
{
  return MIN (p->frame, p->raw_len - i * p->frame);
}

/* The header of a chunk file of flen bytes (its first CHUNK_HDR_LEN
 * bytes are in file): magic, its CRC, the lengths. */
static int
parse_header (const uint8_t *file, uint64_t flen, size_t outlen,
              struct chunk_parsed *p)
{
  uint32_t stored;

  memset (p, 0, sizeof *p);
  p->file = file;
  if (flen < CHUNK_HDR_LEN ||
      (memcmp (file, "BBC1", 4) != 0 && memcmp (file, "BBC2", 4) != 0)) {
    error_set (EIO, "not a chunk file (bad magic or shorter than its header)");
    return -1;
  }
  if (get32 (file + 20) != crc (file, 20)) {
    error_set (EIO, "chunk header is corrupt (header CRC mismatch)");
    return -1;
  }
  p->framed = file[3] == '2';
  p->raw_len = get32 (file + 8);
  stored = get32 (file + 12);
  if (p->raw_len == 0 || p->raw_len > outlen) {
    error_set (EIO, "chunk header claims %" PRIu32 " bytes, more than the "
               "chunk size %zu", p->raw_len, outlen);
    return -1;
  }
  if (stored != flen - CHUNK_HDR_LEN) {
    error_set (EIO, "chunk is truncated or has trailing data (%" PRIu64
               " payload bytes, header says %" PRIu32 ")",
               flen - CHUNK_HDR_LEN, stored);
    return -1;
  }
  return 0;
}

/* A BBC2 file's frame table (in the avail bytes at file) against a file
 * of flen bytes in repository r: frame shift (r's), each entry, the
 * frames covering the payload exactly. */
static int
parse_table (const struct repo *r, const uint8_t *file, size_t avail,
             uint64_t flen, struct chunk_parsed *p)
{
  int shift = r->tree ? r->tree : CHUNK_FRAME_SHIFT;
  size_t i;
  uint64_t pos;

  if (file[4] != shift) {
    error_set (EIO, "chunk has frames of 2^%d bytes; this repository's "
               "have 2^%d", file[4], shift);
    return -1;
  }
  p->frame = (size_t) 1 << shift;
  p->n = DIV_ROUND_UP (p->raw_len, p->frame);
  p->table = file + CHUNK_HDR_LEN;
  pos = CHUNK_HDR_LEN + p->n * CHUNK_ENTRY_LEN;
  if (p->n > CHUNK_MAX_FRAMES || pos > flen || pos > avail) {
    error_set (EIO, "chunk frame table is truncated");
    return -1;
  }
  for (i = 0; i < p->n; i++) {
    const uint8_t *e = p->table + i * CHUNK_ENTRY_LEN;
    uint32_t n = get32 (e + 32), codec = get32 (e + 36);
    if ((codec == CHUNK_CODEC_RAW && n != frame_len (p, i)) ||
        (codec == CHUNK_CODEC_ZSTD && n >= frame_len (p, i)) ||
        (codec != CHUNK_CODEC_RAW && codec != CHUNK_CODEC_ZSTD) ||
        n > flen - pos) {
      error_set (EIO, "chunk frame %zu has a bad table entry", i);
      return -1;
    }
    p->off[i] = pos;
    pos += n;
  }
  p->off[p->n] = pos;
  if (pos != flen) {
    error_set (EIO, "chunk frame table does not cover the payload");
    return -1;
  }
  return 0;
}

/* A whole chunk file of r: header, payload CRC, then the codec or the
 * table. */
static int
parse (const struct repo *r, const uint8_t *file, size_t flen, size_t outlen,
       struct chunk_parsed *p)
{
  if (parse_header (file, flen, outlen, p) == -1)
    return -1;
  if (crc (file + CHUNK_HDR_LEN, flen - CHUNK_HDR_LEN) != get32 (file + 16)) {
    error_set (EIO, "chunk payload is corrupt (CRC mismatch)");
    return -1;
  }
  if (p->framed)
    return parse_table (r, file, flen, flen, p);
  if (file[4] != CHUNK_CODEC_RAW && file[4] != CHUNK_CODEC_ZSTD) {
    error_set (EIO, "unknown chunk codec %d", file[4]);
    return -1;
  }
  if (file[4] == CHUNK_CODEC_RAW && flen - CHUNK_HDR_LEN != p->raw_len) {
    error_set (EIO, "raw chunk length mismatch");
    return -1;
  }
  return 0;
}

static bool is_zero_frame (const uint8_t hash[REPO_DIGEST_LEN], size_t len);

/* Decode frame i (plaintext len bytes, of a chunk with frames of fs
 * bytes; e its table entry; its stored bytes at src) into out, not yet
 * checked: 1 when it is zeros without decoding (a full frame whose entry
 * is the hash of zeros: whatever its stored bytes, only zeros could pass
 * its check, so there is nothing to check), 0, or -1 with the error
 * set. */
static int
decode_body (struct codec *c, const uint8_t *e, size_t i, size_t len,
             size_t fs, const uint8_t *src, size_t stored, uint8_t *out)
{
  if (len == fs && is_zero_frame (e, len)) {
    memset (out, 0, len);
    return 1;
  }
  if (get32 (e + 36) == CHUNK_CODEC_RAW) {
    if (out != src)             /* read in place (chunk_decode_raw) */
      memcpy (out, src, len);
  }
  else {
    size_t z = ZSTD_decompressDCtx (c->dctx, out, len, src, stored);
    if (ZSTD_isError (z) || z != len) {
      error_set (EIO, "chunk frame %zu does not decompress (%s)", i,
                 ZSTD_isError (z) ? ZSTD_getErrorName (z) : "wrong length");
      return -1;
    }
  }
  return 0;
}

/* Check decoded frames [f0, f1) (frame i at out[i], the table's entries
 * at table, frames of fs bytes, raw_len bytes in all) against their
 * hashes, hashed side by side (sha256_frames); the frames in skip
 * (decode_body's zeros) need no check.  -1 with the error naming the
 * first frame that fails. */
static int
check_frames (struct codec *c, const uint8_t *table, size_t f0, size_t f1,
              size_t fs, size_t raw_len, uint8_t *const *out, uint64_t skip)
{
  const uint8_t *src[CHUNK_MAX_FRAMES];
  size_t len[CHUNK_MAX_FRAMES], idx[CHUNK_MAX_FRAMES], i, n = 0;
  uint8_t got[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN];
  char hex[2 * REPO_DIGEST_LEN + 1];

  for (i = f0; i < f1; i++) {
    if (skip >> i & 1)
      continue;
    src[n] = out[i];
    len[n] = MIN (fs, raw_len - i * fs);
    idx[n++] = i;
  }
  if (n == 0)
    return 0;
  sha256_frames (c, src, len, n, got);
  for (i = 0; i < n; i++)
    if (memcmp (got[i], table + idx[i] * CHUNK_ENTRY_LEN, REPO_DIGEST_LEN)
        != 0) {
      hex_encode (got[i], REPO_DIGEST_LEN, hex);
      error_set (EIO, "SHA-256 mismatch in frame %zu (content hashes to %s)",
                 idx[i], hex);
      return -1;
    }
  return 0;
}

/* Decode frame i (as decode_body) and check it against its entry (one
 * frame: OpenSSL, nothing to hash side by side). */
static int
decode_one (struct codec *c, const uint8_t *e, size_t i, size_t len,
            size_t fs, const uint8_t *src, size_t stored, uint8_t *out)
{
  uint8_t got[REPO_DIGEST_LEN];
  char hex[2 * REPO_DIGEST_LEN + 1];
  int rc = decode_body (c, e, i, len, fs, src, stored, out);

  if (rc != 0)
    return rc == 1 ? 0 : -1;
  repo_sha256 (out, len, got);
  if (memcmp (got, e, REPO_DIGEST_LEN) != 0) {
    hex_encode (got, REPO_DIGEST_LEN, hex);
    error_set (EIO, "SHA-256 mismatch in frame %zu (content hashes to %s)",
               i, hex);
    return -1;
  }
  return 0;
}

/* decode_one for frame i of a parsed file, stored bytes at src. */
static int
decode_frame (struct codec *c, const struct chunk_parsed *p, size_t i,
              const uint8_t *src, uint8_t *out)
{
  return decode_one (c, p->table + i * CHUNK_ENTRY_LEN, i, frame_len (p, i),
                     p->frame, src, p->off[i + 1] - p->off[i], out);
}

/* Decode every frame of a parsed file (frame i's stored bytes at
 * src + p->off[i] - base; base: where src is in the file) into out,
 * then check them all. */
static int
decode_all (struct codec *c, const struct chunk_parsed *p, const uint8_t *src,
            size_t base, uint8_t *out)
{
  uint8_t *o[CHUNK_MAX_FRAMES];
  uint64_t zero = 0;
  size_t i;
  int rc;

  for (i = 0; i < p->n; i++) {
    o[i] = out + i * p->frame;
    rc = decode_body (c, p->table + i * CHUNK_ENTRY_LEN, i, frame_len (p, i),
                      p->frame, src + (p->off[i] - base),
                      p->off[i + 1] - p->off[i], o[i]);
    if (rc == -1)
      return -1;
    if (rc == 1)
      zero |= UINT64_C (1) << i;
  }
  return check_frames (c, p->table, 0, p->n, p->frame, p->raw_len, o, zero);
}

/* The frame hashes of a BBC2 file's table into fh, and their digest. */
static void
table_digest (const struct repo *r, const struct chunk_parsed *p,
              uint8_t (*fh)[REPO_DIGEST_LEN], uint8_t out[REPO_DIGEST_LEN])
{
  size_t i;

  for (i = 0; i < p->n; i++)
    memcpy (fh[i], p->table + i * CHUNK_ENTRY_LEN, REPO_DIGEST_LEN);
  tree_digest (r, fh[0], p->n, out);
}

static int
check_digest (const uint8_t got[REPO_DIGEST_LEN],
              const uint8_t want[REPO_DIGEST_LEN])
{
  char hex[2 * REPO_DIGEST_LEN + 1];

  if (memcmp (got, want, REPO_DIGEST_LEN) != 0) {
    hex_encode (got, REPO_DIGEST_LEN, hex);
    error_set (EIO, "SHA-256 mismatch (content hashes to %s)", hex);
    return -1;
  }
  return 0;
}

int
chunk_table_parse (struct repo *r, const uint8_t *head, size_t avail,
                   uint64_t flen, const uint8_t digest[REPO_DIGEST_LEN],
                   struct chunk_table **out)
{
  struct chunk_parsed p;
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN], got[REPO_DIGEST_LEN];
  struct chunk_table *t;
  size_t i;

  *out = NULL;
  if (avail < CHUNK_HDR_LEN) {
    error_set (EIO, "not a chunk file (shorter than its header)");
    return -1;
  }
  if (parse_header (head, flen, r->chunk_size, &p) == -1)
    return -1;
  if (!p.framed || !r->tree)
    return 0;
  if (parse_table (r, head, avail, flen, &p) == -1)
    return -1;
  table_digest (r, &p, fh, got);
  if (check_digest (got, digest) == -1)
    return -1;
  t = xmalloc (sizeof *t + p.n * CHUNK_ENTRY_LEN);
  t->raw_len = p.raw_len;
  t->n = p.n;
  t->frame = p.frame;
  for (i = 0; i <= p.n; i++)
    t->off[i] = p.off[i];
  memcpy (t->entry, p.table, p.n * CHUNK_ENTRY_LEN);
  *out = t;
  return 1;
}

int
chunk_head_raw_bytes (struct repo *r, const uint8_t *head, size_t avail,
                      uint64_t flen, const uint8_t digest[REPO_DIGEST_LEN],
                      uint64_t *raw)
{
  struct chunk_table *t;
  uint32_t i;
  int ret = chunk_table_parse (r, head, avail, flen, digest, &t);

  *raw = 0;
  if (ret == -1)
    return -1;
  if (ret == 0) {
    if (memcmp (head, "BBC1", 4) != 0) {
      error_set (EIO, "framed chunk in a repository without tree digests");
      return -1;
    }
    *raw = head[4] == CHUNK_CODEC_RAW ? get32 (head + 8) : 0;
    return 0;
  }
  for (i = 0; i < t->n; i++)
    if (get32 (t->entry + i * CHUNK_ENTRY_LEN + 36) == CHUNK_CODEC_RAW)
      *raw += MIN (t->frame, t->raw_len - i * t->frame);
  free (t);
  return 0;
}

int
chunk_table_decode (struct codec *c, const struct chunk_table *t, size_t i,
                    const uint8_t *src, uint8_t *out)
{
  return decode_one (c, t->entry + i * CHUNK_ENTRY_LEN, i,
                     MIN (t->frame, t->raw_len - i * t->frame), t->frame, src,
                     t->off[i + 1] - t->off[i], out);
}

int
chunk_table_decode_frames (struct codec *c, const struct chunk_table *t,
                           size_t f0, size_t f1, const uint8_t *const *src,
                           uint8_t *const *out)
{
  uint64_t zero = 0;
  size_t i;
  int rc;

  for (i = f0; i < f1; i++) {
    rc = decode_body (c, t->entry + i * CHUNK_ENTRY_LEN, i,
                      MIN (t->frame, t->raw_len - i * t->frame), t->frame,
                      src[i], t->off[i + 1] - t->off[i], out[i]);
    if (rc == -1)
      return -1;
    if (rc == 1)
      zero |= UINT64_C (1) << i;
  }
  return check_frames (c, t->entry, f0, f1, t->frame, t->raw_len, out, zero);
}

int
chunk_decode (struct repo *r, struct codec *c, const uint8_t *file,
              size_t flen, void *out, size_t outlen, size_t *len,
              const uint8_t digest[REPO_DIGEST_LEN])
{
  struct chunk_parsed p;
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN], got[REPO_DIGEST_LEN];

  if (parse (r, file, flen, outlen, &p) == -1)
    return -1;
  if (p.framed) {
    if (decode_all (c, &p, file, 0, out) == -1)
      return -1;
  }
  else if (file[4] == CHUNK_CODEC_RAW)
    memcpy (out, file + CHUNK_HDR_LEN, p.raw_len);
  else {
    size_t z = ZSTD_decompressDCtx (c->dctx, out, p.raw_len,
                                    file + CHUNK_HDR_LEN, flen - CHUNK_HDR_LEN);
    if (ZSTD_isError (z) || z != p.raw_len) {
      error_set (EIO, "chunk does not decompress (%s)",
                 ZSTD_isError (z) ? ZSTD_getErrorName (z) : "wrong length");
      return -1;
    }
  }
  /* Each frame matched its table entry: in a tree repository the
   * table's hashes make the digest. */
  if (p.framed && r->tree)
    table_digest (r, &p, fh, got);
  else
    chunk_digest (r, c, out, p.raw_len, fh, got);
  if (check_digest (got, digest) == -1)
    return -1;
  *len = p.raw_len;
  return 0;
}

int
chunk_raw_head (struct repo *r, const uint8_t *head, size_t avail,
                uint64_t flen, size_t outlen, size_t *hlen)
{
  struct chunk_parsed p;
  size_t i;

  if (!r->tree || avail < CHUNK_HDR_LEN || memcmp (head, "BBC2", 4) != 0)
    return 0;
  if (parse_header (head, flen, outlen, &p) == -1 ||
      parse_table (r, head, avail, flen, &p) == -1) {
    error_clear ();             /* read whole, the error said there */
    return 0;
  }
  for (i = 0; i < p.n; i++)
    if (get32 (p.table + i * CHUNK_ENTRY_LEN + 36) != CHUNK_CODEC_RAW)
      return 0;
  *hlen = CHUNK_HDR_LEN + p.n * CHUNK_ENTRY_LEN;
  return 1;
}

int
chunk_decode_raw (struct repo *r, struct codec *c, const uint8_t *head,
                  size_t hlen, uint8_t *out, size_t outlen, size_t *len,
                  const uint8_t digest[REPO_DIGEST_LEN])
{
  struct chunk_parsed p;
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN], got[REPO_DIGEST_LEN];
  size_t i, flen;

  if (hlen < CHUNK_HDR_LEN ||
      parse_header (head, hlen + (uint64_t) get32 (head + 8), outlen, &p) == -1)
    return -1;
  flen = hlen + p.raw_len;
  /* The payload CRC runs over the table, then the frames (zlib's CRC
   * chains). */
  if (crc32_gzip_refl (crc (head + CHUNK_HDR_LEN, hlen - CHUNK_HDR_LEN), out,
                       p.raw_len) != get32 (head + 16)) {
    error_set (EIO, "chunk payload is corrupt (CRC mismatch)");
    return -1;
  }
  if (parse_table (r, head, hlen, flen, &p) == -1)
    return -1;
  for (i = 0; i < p.n; i++) {
    if (get32 (p.table + i * CHUNK_ENTRY_LEN + 36) != CHUNK_CODEC_RAW ||
        p.off[i] - hlen != i * p.frame) {
      error_set (EIO, "chunk frame %zu is not stored raw", i);
      return -1;
    }
  }
  /* in place: each frame is where the file has it, after the head */
  if (decode_all (c, &p, out, hlen, out) == -1)
    return -1;
  table_digest (r, &p, fh, got);
  if (check_digest (got, digest) == -1)
    return -1;
  *len = p.raw_len;
  return 0;
}

/* ---- patching ------------------------------------------------------------ */

static bool
is_zero_frame (const uint8_t hash[REPO_DIGEST_LEN], size_t len)
{
  uint8_t h[REPO_DIGEST_LEN];

  pthread_once (&sha256_once, sha256_init);
  if (len >= (1u << CHUNK_MIN_FRAME_SHIFT) && len <= CHUNK_FRAME &&
      (len & (len - 1)) == 0)
    return memcmp (hash, zero_frame_hash[__builtin_ctzl (len)],
                   REPO_DIGEST_LEN) == 0;
  repo_sha256 (zero_frame, len, h);
  return memcmp (hash, h, REPO_DIGEST_LEN) == 0;
}

int
chunk_patch_plan (struct repo *r, struct codec *c, size_t bflen,
                  const uint8_t base[REPO_DIGEST_LEN], uint8_t *data,
                  size_t len, const struct repo_range *ranges, size_t nranges,
                  struct chunk_patch *pp, uint8_t digest[REPO_DIGEST_LEN])
{
  struct chunk_parsed *p = &pp->base;
  uint8_t got[REPO_DIGEST_LEN], fresh_fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN];
  const uint8_t *src[CHUNK_MAX_FRAMES];
  size_t flen[CHUNK_MAX_FRAMES], idx[CHUNK_MAX_FRAMES], nfresh = 0;
  bool zero = true;
  size_t i, j, k = 0;

  if (parse (r, c->in, bflen, r->chunk_size, p) == -1)
    return -1;
  if (!p->framed || p->raw_len != len) {
    error_set (EIO, "chunk is not framed or not %zu bytes long", len);
    return -1;
  }
  table_digest (r, p, pp->fh, got);       /* the base's hashes, then ours */
  if (check_digest (got, base) == -1)
    return -1;
  for (i = 0; i < p->n; i++) {
    size_t fo = i * p->frame, fl = frame_len (p, i), cov = 0;

    while (k < nranges && ranges[k].off + ranges[k].len <= fo)
      k++;
    for (j = k; j < nranges && ranges[j].off < fo + fl; j++)
      cov += MIN (ranges[j].off + ranges[j].len, fo + fl) -
        MAX (ranges[j].off, fo);
    pp->fresh[i] = cov > 0;
    if (cov > 0 && cov < fl) {      /* partly new: the rest is the base's */
      if (decode_frame (c, p, i, p->file + p->off[i], c->frame) == -1)
        return -1;
      for (j = k; j < nranges && ranges[j].off < fo + fl; j++) {
        size_t a = MAX (ranges[j].off, fo);
        size_t b = MIN (ranges[j].off + ranges[j].len, fo + fl);
        memcpy (c->frame + (a - fo), data + a, b - a);
      }
      memcpy (data + fo, c->frame, fl);
    }
    if (pp->fresh[i]) {
      src[nfresh] = data + fo;
      flen[nfresh] = fl;
      idx[nfresh++] = i;
    }
  }
  /* the fresh frames' hashes, side by side */
  if (nfresh > 0)
    sha256_frames (c, src, flen, nfresh, fresh_fh);
  for (j = 0; j < nfresh; j++)
    memcpy (pp->fh[idx[j]], fresh_fh[j], REPO_DIGEST_LEN);
  for (i = 0; i < p->n && zero; i++)
    zero = is_zero_frame (pp->fh[i], frame_len (p, i));
  if (zero)
    memset (digest, 0, REPO_DIGEST_LEN);
  else
    tree_digest (r, pp->fh[0], p->n, digest);
  return 0;
}

size_t
chunk_patch_encode (struct repo *r, struct codec *c, const uint8_t *data,
                    const struct chunk_patch *pp)
{
  const struct chunk_parsed *p = &pp->base;
  size_t i, pos = CHUNK_HDR_LEN + p->n * CHUNK_ENTRY_LEN;

  for (i = 0; i < p->n; i++) {
    size_t n = p->off[i + 1] - p->off[i];
    if (pp->fresh[i]) {
      put_frame (r, c, i, pp->fh[i], data + i * p->frame, frame_len (p, i),
                 &pos);
      continue;
    }
    memcpy (c->buf + CHUNK_HDR_LEN + i * CHUNK_ENTRY_LEN,
            p->table + i * CHUNK_ENTRY_LEN, CHUNK_ENTRY_LEN);
    memcpy (c->buf + pos, p->file + p->off[i], n);
    pos += n;
  }
  put_header (c->buf, "BBC2", r->tree, p->raw_len, pos);
  return pos;
}
