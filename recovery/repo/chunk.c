/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The chunk file format (header in repo-int.h) and its codec: zstd, or raw
 * when zstd does not save at least 1/64 of the size.  Decoding is bounded:
 * it never writes or allocates more than the caller's buffer (the
 * repository's chunk size), whatever a header claims, and it checks, in
 * order, the header's own CRC, the lengths, the payload CRC, the
 * decompressed length and finally the SHA-256 of the plaintext.
 */
#include <errno.h>
#include <endian.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "recovery/repo/repo-int.h"

const uint8_t repo_zero_digest[REPO_DIGEST_LEN];

bool
repo_digest_is_zero (const uint8_t d[REPO_DIGEST_LEN])
{
  return memcmp (d, repo_zero_digest, REPO_DIGEST_LEN) == 0;
}

static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_init (void)
{
  sha256_md = EVP_MD_fetch (NULL, "SHA256", NULL);
  if (!sha256_md)
    abort ();
}

void
repo_sha256 (const void *buf, size_t len, uint8_t out[REPO_DIGEST_LEN])
{
  pthread_once (&sha256_once, sha256_init);
  if (EVP_Digest (buf, len, out, NULL, sha256_md, NULL) != 1)
    abort ();
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
  c->buflen = CHUNK_HDR_LEN + ZSTD_compressBound (r->chunk_size);
  c->buf = xmalloc (c->buflen);
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

void
codec_free_all (struct repo *r)
{
  struct codec *c, *n;

  for (c = r->codecs; c; c = n) {
    n = c->next;
    ZSTD_freeCCtx (c->cctx);
    ZSTD_freeDCtx (c->dctx);
    free (c->buf);
    free (c);
  }
  r->codecs = NULL;
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

size_t
chunk_encode (struct repo *r, struct codec *c, const void *data, size_t len)
{
  uint8_t *h = c->buf;
  size_t stored = len;
  int codec = CHUNK_CODEC_RAW;

  if (r->compress) {
    size_t z = ZSTD_compressCCtx (c->cctx, c->buf + CHUNK_HDR_LEN,
                                  c->buflen - CHUNK_HDR_LEN, data, len,
                                  r->zstd_level);
    if (!ZSTD_isError (z) && z < len - len / 64) {
      codec = CHUNK_CODEC_ZSTD;
      stored = z;
    }
  }
  if (codec == CHUNK_CODEC_RAW)
    memcpy (c->buf + CHUNK_HDR_LEN, data, len);
  memset (h, 0, CHUNK_HDR_LEN);
  memcpy (h, "BBC1", 4);
  h[4] = codec;
  put32 (h + 8, len);
  put32 (h + 12, stored);
  put32 (h + 16, crc32 (0, c->buf + CHUNK_HDR_LEN, stored));
  put32 (h + 20, crc32 (0, h, 20));
  return CHUNK_HDR_LEN + stored;
}

int
chunk_decode (struct codec *c, const uint8_t *file, size_t flen, void *out,
              size_t outlen, size_t *len, const uint8_t digest[REPO_DIGEST_LEN])
{
  uint32_t raw_len, stored, crc;
  uint8_t got[REPO_DIGEST_LEN];
  char hex[2 * REPO_DIGEST_LEN + 1];

  if (flen < CHUNK_HDR_LEN || memcmp (file, "BBC1", 4) != 0) {
    error_set (EIO, "not a chunk file (bad magic or shorter than its header)");
    return -1;
  }
  if (get32 (file + 20) != crc32 (0, file, 20)) {
    error_set (EIO, "chunk header is corrupt (header CRC mismatch)");
    return -1;
  }
  raw_len = get32 (file + 8);
  stored = get32 (file + 12);
  if (raw_len == 0 || raw_len > outlen) {
    error_set (EIO, "chunk header claims %" PRIu32 " bytes, more than the "
               "chunk size %zu", raw_len, outlen);
    return -1;
  }
  if (stored != flen - CHUNK_HDR_LEN) {
    error_set (EIO, "chunk is truncated or has trailing data (%zu payload "
               "bytes, header says %" PRIu32 ")", flen - CHUNK_HDR_LEN, stored);
    return -1;
  }
  crc = crc32 (0, file + CHUNK_HDR_LEN, stored);
  if (crc != get32 (file + 16)) {
    error_set (EIO, "chunk payload is corrupt (CRC mismatch)");
    return -1;
  }
  switch (file[4]) {
  case CHUNK_CODEC_RAW:
    if (stored != raw_len) {
      error_set (EIO, "raw chunk length mismatch");
      return -1;
    }
    memcpy (out, file + CHUNK_HDR_LEN, raw_len);
    break;
  case CHUNK_CODEC_ZSTD: {
    size_t z = ZSTD_decompressDCtx (c->dctx, out, raw_len,
                                    file + CHUNK_HDR_LEN, stored);
    if (ZSTD_isError (z) || z != raw_len) {
      error_set (EIO, "chunk does not decompress (%s)",
                 ZSTD_isError (z) ? ZSTD_getErrorName (z) : "wrong length");
      return -1;
    }
    break;
  }
  default:
    error_set (EIO, "unknown chunk codec %d", file[4]);
    return -1;
  }
  repo_sha256 (out, raw_len, got);
  if (memcmp (got, digest, REPO_DIGEST_LEN) != 0) {
    hex_encode (got, REPO_DIGEST_LEN, hex);
    error_set (EIO, "SHA-256 mismatch (content hashes to %s)", hex);
    return -1;
  }
  *len = raw_len;
  return 0;
}
