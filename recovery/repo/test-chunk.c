/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the chunk and fixed-index codecs: round trips, and every
 * kind of damage detected (header, payload CRC, lengths, a header that
 * claims more than the chunk size, digest mismatch, index checksum).
 */
#include <assert.h>
#include <endian.h>
#include <zlib.h>

#include "recovery/repo/repo-int.h"

static void
fix_crcs (uint8_t *f, size_t flen)
{
  uint32_t v = htole32 (crc32 (0, f + CHUNK_HDR_LEN, flen - CHUNK_HDR_LEN));
  memcpy (f + 16, &v, 4);
  v = htole32 (crc32 (0, f, 20));
  memcpy (f + 20, &v, 4);
}

int
main (void)
{
  char dir[] = "/tmp/test-chunk.XXXXXX";
  struct repo_init_opts o = { .chunk_size = 65536 };
  struct repo *r;
  struct codec *c;
  uint8_t data[65536], out[65536], d[32], *f;
  size_t flen, len, i;

  assert (mkdtemp (dir));
  CLEANUP_FREE char *loc = xasprintf ("%s/repo", dir);
  assert (repo_init (loc, &o) == 0);
  r = repo_open (loc);
  assert (r);
  c = codec_get (r);

  /* compressible data: zstd */
  for (i = 0; i < sizeof data; i++) data[i] = (i / 100) & 0xff;
  repo_sha256 (data, sizeof data, d);
  flen = chunk_encode (r, c, data, sizeof data);
  assert (c->buf[4] == CHUNK_CODEC_ZSTD && flen < sizeof data);
  f = xmalloc (flen);
  memcpy (f, c->buf, flen);
  assert (chunk_decode (c, f, flen, out, sizeof out, &len, d) == 0);
  assert (len == sizeof data && memcmp (out, data, len) == 0);

  /* payload bit flip: CRC */
  f[CHUNK_HDR_LEN + 5] ^= 1;
  assert (chunk_decode (c, f, flen, out, sizeof out, &len, d) == -1);
  assert (strstr (error_msg (), "CRC"));
  f[CHUNK_HDR_LEN + 5] ^= 1;
  /* header bit flip: header CRC */
  f[9] ^= 0x10;
  assert (chunk_decode (c, f, flen, out, sizeof out, &len, d) == -1);
  assert (strstr (error_msg (), "header"));
  f[9] ^= 0x10;
  /* truncated */
  assert (chunk_decode (c, f, flen - 1, out, sizeof out, &len, d) == -1);
  assert (strstr (error_msg (), "truncated"));
  /* a header (with valid CRCs) claiming 4 GiB of plaintext: refused
   * before anything is allocated or written */
  {
    uint32_t big = htole32 (0xfffffff0);
    memcpy (f + 8, &big, 4);
    fix_crcs (f, flen);
    assert (chunk_decode (c, f, flen, out, sizeof out, &len, d) == -1);
    assert (strstr (error_msg (), "more than the chunk size"));
  }
  /* valid CRCs, valid lengths, wrong content: the SHA-256 catches it */
  {
    uint8_t *g;
    size_t glen;
    data[0] ^= 1;
    glen = chunk_encode (r, c, data, sizeof data);
    g = xmalloc (glen);
    memcpy (g, c->buf, glen);
    assert (chunk_decode (c, g, glen, out, sizeof out, &len, d) == -1);
    assert (strstr (error_msg (), "SHA-256 mismatch"));
    free (g);
    data[0] ^= 1;
  }
  /* zstd frame whose content is larger than the claimed length */
  {
    uint8_t small[1000];
    memset (small, 7, sizeof small);
    flen = chunk_encode (r, c, data, sizeof data);
    uint32_t claim = htole32 (sizeof small);
    memcpy (c->buf + 8, &claim, 4);
    fix_crcs (c->buf, flen);
    assert (chunk_decode (c, c->buf, flen, small, sizeof small, &len, d) == -1);
  }
  /* incompressible data: stored raw */
  for (i = 0; i < sizeof data; i++) data[i] = rand ();
  repo_sha256 (data, sizeof data, d);
  flen = chunk_encode (r, c, data, sizeof data);
  assert (c->buf[4] == CHUNK_CODEC_RAW && flen == CHUNK_HDR_LEN + sizeof data);
  assert (chunk_decode (c, c->buf, flen, out, sizeof out, &len, d) == 0);
  assert (memcmp (out, data, sizeof data) == 0);
  free (f);

  /* fixed index */
  {
    uint8_t dg[5][32], (*got)[32];
    uint64_t size, count;
    uint32_t cs;
    uint8_t *b;
    memset (dg, 0, sizeof dg);
    for (i = 0; i < 5; i++) dg[i][0] = i + 1;
    memset (dg[2], 0, 32);            /* a zero chunk */
    b = fidx_encode (4 * 65536 + 17, 65536, (const uint8_t (*)[32]) dg, &len);
    assert (len == FIDX_HDR_LEN + 5 * 32);
    assert (fidx_decode (b, len, &size, &cs, &count, &got) == 0);
    assert (size == 4 * 65536 + 17 && cs == 65536 && count == 5);
    assert (memcmp (got, dg, sizeof dg) == 0);
    free (got);
    b[FIDX_HDR_LEN + 40] ^= 4;
    assert (fidx_decode (b, len, &size, &cs, &count, &got) == -1);
    assert (strstr (error_msg (), "checksum"));
    b[FIDX_HDR_LEN + 40] ^= 4;
    assert (fidx_decode (b, len - 32, &size, &cs, &count, &got) == -1);
    assert (strstr (error_msg (), "truncated"));
    b[0] = 'X';
    assert (fidx_decode (b, len, &size, &cs, &count, &got) == -1);
    free (b);
  }

  codec_put (r, c);
  repo_close (r);
  CLEANUP_FREE char *cmd = xasprintf ("rm -rf %s", dir);
  assert (system (cmd) == 0);
  printf ("test-chunk: ok\n");
  return 0;
}
