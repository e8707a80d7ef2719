/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fixed index: one 32-byte digest per chunk of a disk, behind a
 * 64-byte header carrying the SHA-256 of the digest list.  Every restore
 * point has a complete index, so reading any point costs the same.
 */
#include <endian.h>
#include <errno.h>

#include "recovery/repo/repo-int.h"

uint8_t *
fidx_encode (uint64_t disk_size, uint32_t chunk_size,
             const uint8_t (*digests)[REPO_DIGEST_LEN], size_t *len)
{
  uint64_t count = DIV_ROUND_UP (disk_size, chunk_size);
  size_t n = FIDX_HDR_LEN + count * REPO_DIGEST_LEN;
  uint8_t *b = xcalloc (1, n);
  uint32_t v32;
  uint64_t v64;

  memcpy (b, "BBFIDX01", 8);
  v32 = htole32 (1); memcpy (b + 8, &v32, 4);
  v32 = htole32 (chunk_size); memcpy (b + 12, &v32, 4);
  v64 = htole64 (disk_size); memcpy (b + 16, &v64, 8);
  v64 = htole64 (count); memcpy (b + 24, &v64, 8);
  memcpy (b + FIDX_HDR_LEN, digests, count * REPO_DIGEST_LEN);
  repo_sha256 (b + FIDX_HDR_LEN, count * REPO_DIGEST_LEN, b + 32);
  *len = n;
  return b;
}

int
fidx_decode (const uint8_t *b, size_t len, uint64_t *disk_size,
             uint32_t *chunk_size, uint64_t *count,
             uint8_t (**digests)[REPO_DIGEST_LEN])
{
  uint32_t ver, cs;
  uint64_t ds, cnt, bytes;
  uint8_t sum[REPO_DIGEST_LEN];

  if (len < FIDX_HDR_LEN || memcmp (b, "BBFIDX01", 8) != 0) {
    error_set (EIO, "not a fixed index (bad magic)");
    return -1;
  }
  memcpy (&ver, b + 8, 4); ver = le32toh (ver);
  memcpy (&cs, b + 12, 4); cs = le32toh (cs);
  memcpy (&ds, b + 16, 8); ds = le64toh (ds);
  memcpy (&cnt, b + 24, 8); cnt = le64toh (cnt);
  if (ver != 1) {
    error_set (EIO, "fixed index version %" PRIu32 " is not supported", ver);
    return -1;
  }
  if (cs < REPO_MIN_CHUNK || cs > REPO_MAX_CHUNK || (cs & (cs - 1))) {
    error_set (EIO, "fixed index has an invalid chunk size %" PRIu32, cs);
    return -1;
  }
  if (cnt != DIV_ROUND_UP (ds, cs) ||
      MUL_OVERFLOW (cnt, (uint64_t) REPO_DIGEST_LEN, &bytes) ||
      bytes != len - FIDX_HDR_LEN) {
    error_set (EIO, "fixed index is truncated or inconsistent (disk size %"
               PRIu64 ", %" PRIu64 " chunks, %zu bytes)", ds, cnt, len);
    return -1;
  }
  repo_sha256 (b + FIDX_HDR_LEN, bytes, sum);
  if (memcmp (sum, b + 32, REPO_DIGEST_LEN) != 0) {
    error_set (EIO, "fixed index is corrupt (digest list checksum mismatch)");
    return -1;
  }
  *digests = xmalloc (bytes ? bytes : 1);
  memcpy (*digests, b + FIDX_HDR_LEN, bytes);
  *disk_size = ds;
  *chunk_size = cs;
  *count = cnt;
  return 0;
}
