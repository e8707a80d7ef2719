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

/* Byte offsets in a chunk file's header (repo-int.h, "chunk.c: the chunk
 * file formats"). */
#define HDR_CODEC       4         /* BBC1: the codec */
#define HDR_RAW_LEN     8         /* plaintext length */
#define HDR_PAYLOAD_CRC 16        /* crc32 of the payload */
#define HDR_HEADER_CRC  20        /* crc32 of the bytes before it */
/* In a BBC2 frame table entry: the frame's SHA-256 is first. */
#define ENTRY_SHA256    0
/* In a fixed index: the digest list follows the header. */
#define FIDX_DIGESTS    FIDX_HDR_LEN

static void
fix_crcs (uint8_t *f, size_t flen)
{
  uint32_t v = htole32 (crc32 (0, f + CHUNK_HDR_LEN, flen - CHUNK_HDR_LEN));
  memcpy (f + HDR_PAYLOAD_CRC, &v, 4);
  v = htole32 (crc32 (0, f, HDR_HEADER_CRC));
  memcpy (f + HDR_HEADER_CRC, &v, 4);
}

static void
set_raw_len (uint8_t *f, uint32_t len)
{
  uint32_t v = htole32 (len);
  memcpy (f + HDR_RAW_LEN, &v, 4);
}

/* Encode data (len bytes) with r's format, keep a copy of the file. */
static uint8_t *
encode (struct repo *r, struct codec *c, const uint8_t *data, size_t len,
        uint8_t d[REPO_DIGEST_LEN], size_t *flen)
{
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN];

  chunk_digest (r, NULL, data, len, fh, d);
  *flen = chunk_encode (r, c, data, len, (const uint8_t (*)[REPO_DIGEST_LEN]) fh);
  return memcpy (xmalloc (*flen), c->buf, *flen);
}

/* Damage of every kind is detected, in either format. */
static void
test_damage (struct repo *r, struct codec *c, uint8_t *data, size_t n)
{
  uint8_t *out = xmalloc (n), d[REPO_DIGEST_LEN], *f;
  size_t flen, len;

  f = encode (r, c, data, n, d, &flen);
  assert (memcmp (f, r->tree ? "BBC2" : "BBC1", 4) == 0);
  assert (flen < n);
  assert (chunk_decode (r, c, f, flen, out, n, &len, d) == 0);
  assert (len == n && memcmp (out, data, len) == 0);

  /* payload bit flip: CRC */
  f[flen - 5] ^= 1;
  assert (chunk_decode (r, c, f, flen, out, n, &len, d) == -1);
  assert (strstr (error_msg (), "CRC"));
  f[flen - 5] ^= 1;
  /* header bit flip (in the plaintext length): header CRC */
  f[HDR_RAW_LEN + 1] ^= 0x10;
  assert (chunk_decode (r, c, f, flen, out, n, &len, d) == -1);
  assert (strstr (error_msg (), "header"));
  f[HDR_RAW_LEN + 1] ^= 0x10;
  /* truncated */
  assert (chunk_decode (r, c, f, flen - 1, out, n, &len, d) == -1);
  assert (strstr (error_msg (), "truncated"));
  /* a header (with valid CRCs) claiming 4 GiB of plaintext: refused
   * before anything is allocated or written */
  {
    uint8_t *g = memcpy (xmalloc (flen), f, flen);
    set_raw_len (g, 0xfffffff0);
    fix_crcs (g, flen);
    assert (chunk_decode (r, c, g, flen, out, n, &len, d) == -1);
    assert (strstr (error_msg (), "more than the chunk size"));
    /* a plaintext length that does not fit the frames or the stream */
    set_raw_len (g, n - 1000);
    fix_crcs (g, flen);
    assert (chunk_decode (r, c, g, flen, out, n, &len, d) == -1);
    free (g);
  }
  /* valid CRCs, valid lengths, wrong content: the SHA-256 catches it */
  {
    uint8_t *g, d2[REPO_DIGEST_LEN];
    size_t glen;
    data[0] ^= 1;
    g = encode (r, c, data, n, d2, &glen);
    assert (chunk_decode (r, c, g, glen, out, n, &len, d) == -1);
    assert (strstr (error_msg (), "SHA-256 mismatch"));
    free (g);
    data[0] ^= 1;
  }
  if (r->tree) {
    /* a frame hash in the table changed, CRCs fixed: the frame check */
    uint8_t *g = memcpy (xmalloc (flen), f, flen);
    g[CHUNK_HDR_LEN + 1 * CHUNK_ENTRY_LEN + ENTRY_SHA256 + 3] ^= 1;
    fix_crcs (g, flen);
    assert (chunk_decode (r, c, g, flen, out, n, &len, d) == -1);
    assert (strstr (error_msg (), "SHA-256 mismatch in frame 1"));
    free (g);
  }
  free (f);
  free (out);
}

/* Patch base (n bytes) with the ranges of new; the result must be base
 * with the ranges replaced, named as if it had been stored whole. */
static void
check_patch (struct repo *r, struct codec *c, const uint8_t *base,
             const uint8_t *new, size_t n, const struct repo_range *ranges,
             size_t nr)
{
  uint8_t *want = memcpy (xmalloc (n), base, n), *data = xmalloc (n);
  uint8_t *out = xmalloc (n), bd[REPO_DIGEST_LEN], d[REPO_DIGEST_LEN], wd[REPO_DIGEST_LEN];
  struct chunk_patch pp;
  size_t i, flen, len, bflen;
  uint8_t *bf = encode (r, c, base, n, bd, &bflen);

  memset (data, 0xee, n);                   /* garbage outside the ranges */
  for (i = 0; i < nr; i++) {
    memcpy (want + ranges[i].off, new + ranges[i].off, ranges[i].len);
    memcpy (data + ranges[i].off, new + ranges[i].off, ranges[i].len);
  }
  if (!c->in)
    c->in = xmalloc (c->buflen);
  memcpy (c->in, bf, bflen);
  assert (chunk_patch_plan (r, c, bflen, bd, data, n, ranges, nr, &pp, d) == 0);
  if (is_zero (want, n))
    assert (repo_digest_is_zero (d));
  else {
    repo_chunk_digest (r, want, n, wd);
    assert (memcmp (d, wd, REPO_DIGEST_LEN) == 0);
    flen = chunk_patch_encode (r, c, data, &pp);
    assert (chunk_decode (r, c, c->buf, flen, out, n, &len, d) == 0);
    assert (len == n && memcmp (out, want, n) == 0);
  }
  /* the wrong base digest: refused */
  bd[0] ^= 1;
  memcpy (c->in, bf, bflen);
  assert (chunk_patch_plan (r, c, bflen, bd, data, n, ranges, nr, &pp, d) == -1);
  assert (strstr (error_msg (), "SHA-256 mismatch"));
  free (bf);
  free (want);
  free (data);
  free (out);
}

/* A short last frame decodes; an output buffer smaller than the
 * plaintext is refused. */
static void
test_lengths (struct repo *r, struct codec *c, const uint8_t *data, size_t n)
{
  uint8_t *out = xmalloc (n), d[REPO_DIGEST_LEN], *f;
  size_t flen, len;

  f = encode (r, c, data, n - 100, d, &flen);
  assert (chunk_decode (r, c, f, flen, out, n, &len, d) == 0);
  assert (len == n - 100 && memcmp (out, data, len) == 0);
  free (f);
  f = encode (r, c, data, n, d, &flen);
  assert (chunk_decode (r, c, f, flen, out, n / 2, &len, d) == -1);
  free (f);
  free (out);
}

/* Incompressible data: every frame stored raw (BBC2), or the whole chunk
 * raw (BBC1). */
static void
test_incompressible (struct repo *r, struct codec *c, size_t n)
{
  uint8_t *data = xmalloc (n), *out = xmalloc (n), d[REPO_DIGEST_LEN], *f;
  size_t i, flen, len;
  int tree;

  for (i = 0; i < n; i++)
    data[i] = rand ();
  f = encode (r, c, data, n, d, &flen);
  assert (flen == CHUNK_HDR_LEN + n / chunk_frame (r) * CHUNK_ENTRY_LEN + n);
  assert (chunk_decode (r, c, f, flen, out, n, &len, d) == 0);
  assert (memcmp (out, data, n) == 0);
  /* every frame raw: read in place (the frames straight into out), with
   * the same checks */
  {
    size_t hlen;
    uint8_t *g;
    uint32_t v;
    assert (chunk_raw_head (r, f, flen, flen, n, &hlen) == 1);
    assert (hlen == flen - n);
    memset (out, 0, n);
    memcpy (out, f + hlen, n);
    assert (chunk_decode_raw (r, c, f, hlen, out, n, &len, d) == 0);
    assert (len == n && memcmp (out, data, n) == 0);
    out[n - 3] ^= 1;                    /* a frame's byte: the payload CRC */
    assert (chunk_decode_raw (r, c, f, hlen, out, n, &len, d) == -1);
    assert (strstr (error_msg (), "CRC"));
    g = memcpy (xmalloc (flen), f, flen);  /* CRC fixed: the frame's hash */
    g[flen - 3] ^= 1;
    fix_crcs (g, flen);
    assert (chunk_decode_raw (r, c, g, hlen, out, n, &len, d) == -1);
    assert (strstr (error_msg (), "SHA-256 mismatch in frame"));
    /* a sound chunk, but not the one the index names: the digest */
    memcpy (out, f + hlen, n);
    {
      uint8_t other[REPO_DIGEST_LEN];
      memcpy (other, d, sizeof other);
      other[0] ^= 1;
      assert (chunk_decode_raw (r, c, f, hlen, out, n, &len, other) == -1);
      assert (strstr (error_msg (), "SHA-256 mismatch (content"));
    }
    /* a frame claimed raw that is not: refused */
    memcpy (g, f, flen);
    v = htole32 (CHUNK_CODEC_ZSTD);
    memcpy (g + CHUNK_HDR_LEN + 36, &v, 4);
    fix_crcs (g, flen);
    assert (chunk_raw_head (r, g, flen, flen, n, &hlen) == 0);
    /* a chunk longer than the buffer: not in place */
    assert (chunk_raw_head (r, f, flen, flen, n - 1, &hlen) == 0);
    free (g);
  }
  free (f);
  tree = r->tree;
  r->tree = 0;
  f = encode (r, c, data, n, d, &flen);
  assert (f[HDR_CODEC] == CHUNK_CODEC_RAW && flen == CHUNK_HDR_LEN + n);
  assert (chunk_decode (r, c, f, flen, out, n, &len, d) == 0);
  assert (memcmp (out, data, n) == 0);
  free (f);
  r->tree = tree;
  free (data);
  free (out);
}

/* Patches: whole frames, part of a frame, across two frames, the short
 * last frame, nothing; and a patch that leaves only zeros. */
static void
test_patches (struct repo *r, struct codec *c, size_t n)
{
  uint8_t *base = xmalloc (n), *new = xmalloc (n);
  const size_t fs = chunk_frame (r);
  const struct repo_range whole[] = { { fs, fs } };
  const struct repo_range parts[] = {
    { 10, 100 }, { 3000, 7 }, { fs - 3, 20 }, { 3 * fs + 1, fs - 1 },
  };
  const struct repo_range all[] = { { 0, n } };
  size_t i;

  for (i = 0; i < n; i++) {
    base[i] = (i / 50) & 0xff;
    new[i] = rand ();
  }
  check_patch (r, c, base, new, n, whole, 1);
  check_patch (r, c, base, new, n, parts, 4);
  check_patch (r, c, base, new, n, NULL, 0);
  memset (new, 0, n);
  check_patch (r, c, base, new, n, all, 1);
  check_patch (r, c, base, new, n - 5000, parts, 3);
  free (base);
  free (new);
}

/* The fixed index: round trip (with a zero chunk), checksum, length and
 * magic checked. */
static void
test_fidx (void)
{
  uint8_t dg[5][REPO_DIGEST_LEN], (*got)[REPO_DIGEST_LEN], *b;
  uint64_t size, count;
  uint32_t cs;
  size_t i, len;

  memset (dg, 0, sizeof dg);
  for (i = 0; i < 5; i++) dg[i][0] = i + 1;
  memset (dg[2], 0, REPO_DIGEST_LEN);   /* a zero chunk */
  b = fidx_encode (4 * 65536 + 17, 65536, (const uint8_t (*)[REPO_DIGEST_LEN]) dg, &len);
  assert (len == FIDX_HDR_LEN + 5 * REPO_DIGEST_LEN);
  assert (fidx_decode (b, len, &size, &cs, &count, &got) == 0);
  assert (size == 4 * 65536 + 17 && cs == 65536 && count == 5);
  assert (memcmp (got, dg, sizeof dg) == 0);
  free (got);
  /* a bit of the second digest */
  b[FIDX_DIGESTS + REPO_DIGEST_LEN + 8] ^= 4;
  assert (fidx_decode (b, len, &size, &cs, &count, &got) == -1);
  assert (strstr (error_msg (), "checksum"));
  b[FIDX_DIGESTS + REPO_DIGEST_LEN + 8] ^= 4;
  assert (fidx_decode (b, len - REPO_DIGEST_LEN, &size, &cs, &count, &got) == -1);
  assert (strstr (error_msg (), "truncated"));
  b[0] = 'X';                           /* the magic */
  assert (fidx_decode (b, len, &size, &cs, &count, &got) == -1);
  free (b);
}

/* Every test on a repository of chunks of 256 KiB with frames of frame
 * bytes (whose "hash" is want); other frame sizes refused. */
static void
test_format (uint32_t frame, const char *want)
{
  char dir[] = "/tmp/test-chunk.XXXXXX";
  struct repo_init_opts o = { .chunk_size = 4 * CHUNK_FRAME,
                              .frame_size = frame };
  struct repo *r;
  struct codec *c;
  size_t n = 4 * CHUNK_FRAME, i;
  uint8_t *data = xmalloc (n);
  int tree;

  assert (mkdtemp (dir));
  CLEANUP_FREE char *loc = xasprintf ("%s/repo", dir);
  CLEANUP_FREE char *conf = xasprintf ("%s/bootback-repo.json", loc);
  char text[1024] = "";
  FILE *fp;
  assert (repo_init (loc, &o) == 0);
  assert ((fp = fopen (conf, "r")) && fread (text, 1, sizeof text - 1, fp) > 0);
  fclose (fp);
  assert (strstr (text, want));
  r = repo_open (loc);
  assert (r && r->tree && chunk_frame (r) == (frame ? frame : 4096));
  c = codec_get (r);

  /* compressible frames, and one random (stored raw) */
  for (i = 0; i < n; i++)
    data[i] = (i / 100) & 0xff;
  for (i = 2 * CHUNK_FRAME; i < 3 * CHUNK_FRAME; i++)
    data[i] = rand ();
  test_damage (r, c, data, n);
  {
    /* some frames compressed: not read in place */
    uint8_t d[REPO_DIGEST_LEN], *f;
    size_t flen, hlen;
    f = encode (r, c, data, n, d, &flen);
    assert (chunk_raw_head (r, f, flen, flen, n, &hlen) == 0);
    free (f);
  }
  tree = r->tree;
  r->tree = 0;                    /* a repository of the "sha256" kind */
  test_damage (r, c, data, n);
  r->tree = tree;
  /* a chunk of another frame size is not this repository's */
  {
    uint8_t d[REPO_DIGEST_LEN], *f, *out = xmalloc (n);
    size_t flen, len;
    f = encode (r, c, data, n, d, &flen);
    r->tree = tree == CHUNK_FRAME_SHIFT ? 14 : CHUNK_FRAME_SHIFT;
    assert (chunk_decode (r, c, f, flen, out, n, &len, d) == -1);
    assert (strstr (error_msg (), "frames of 2^"));
    r->tree = tree;
    free (f);
    free (out);
  }
  test_lengths (r, c, data, n);
  free (data);
  test_incompressible (r, c, n);
  test_patches (r, c, n);

  codec_put (r, c);
  repo_close (r);
  CLEANUP_FREE char *cmd = xasprintf ("rm -rf %s", dir);
  assert (system (cmd) == 0);
}

/* Frames hashed side by side (chunk_sha256_frames: intel-ipsec-mb's 16
 * lanes where the build and CPU have them) give OpenSSL's SHA-256 of
 * each, for every count of frames (groups of 16, a last group hashed
 * side by side or one by one) and lengths that are not multiples of a
 * SHA-256 block, on frames of fs bytes (64 KiB: longer than the library
 * checks jobs for, chunk.c). */
static void
test_sha256_frames (size_t fs)
{
  struct repo r = { 0 };
  size_t n, i, len[CHUNK_MAX_FRAMES];
  const uint8_t *src[CHUNK_MAX_FRAMES];
  uint8_t got[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN], want[REPO_DIGEST_LEN];
  uint8_t *buf = xmalloc (CHUNK_MAX_FRAMES * fs);

  for (i = 0; i < CHUNK_MAX_FRAMES * fs; i++)
    buf[i] = (uint8_t) (i * 2654435761u >> 13);
  r.codecs = xcalloc (1, sizeof *r.codecs);
  for (n = 0; n <= CHUNK_MAX_FRAMES; n++) {
    for (i = 0; i < n; i++) {
      src[i] = buf + i * fs;
      len[i] = i % 5 == 4 ? 1 + (i * 977) % (fs - 1) : i % 7 == 6 ? fs - 1 : fs;
    }
    memset (got, 0, sizeof got);
    chunk_sha256_frames (r.codecs, src, len, n, got);
    for (i = 0; i < n; i++) {
      repo_sha256 (src[i], len[i], want);
      assert (memcmp (got[i], want, REPO_DIGEST_LEN) == 0);
    }
  }
  codec_free_all (&r);
  free (buf);
}

int
main (void)
{
  char dir[] = "/tmp/test-chunk.XXXXXX";
  struct repo_init_opts o = { .chunk_size = 4 * CHUNK_FRAME,
                              .frame_size = 2048 };

  /* 64 KiB frames: the format of repositories made before smaller
   * frames; 16 KiB; the default for 256 KiB chunks (4 KiB) */
  test_format (CHUNK_FRAME, "\"sha256-tree\"");
  test_format (16384, "\"sha256-tree-16k\"");
  test_format (0, "\"sha256-tree-4k\"");
  test_sha256_frames (16384);
  test_sha256_frames (CHUNK_FRAME);     /* past intel-ipsec-mb's check */
  test_sha256_frames (CHUNK_FRAME - 1); /* at most 65535: still past it */
  assert (mkdtemp (dir));
  CLEANUP_FREE char *loc = xasprintf ("%s/repo", dir);
  assert (repo_init (loc, &o) == -1 && strstr (error_msg (), "frame size"));
  assert (rmdir (dir) == 0);
  test_fidx ();
  printf ("test-chunk: ok\n");
  return 0;
}
