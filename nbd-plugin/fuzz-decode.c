/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the decoders of what is read from a repository:
 * chunk_decode (chunk files), fidx_decode (fixed indexes) and
 * manifest_decode (point manifests), all in recovery/repo/repo-int.h.
 * They must never crash, read or write out of bounds or allocate beyond
 * their limits, whatever the bytes; a chunk that decodes must hash to the
 * digest it was asked for.  The same chunk file also goes through the
 * path of reads of part of a chunk (chunk_table_parse on its head, then
 * chunk_table_decode of each frame): frames that decode there must be
 * the bytes a whole decode gives.
 *
 * Input: byte 0 selects the decoder (even: chunk; 1 mod 4: index; 3 mod 4:
 * manifest, which must then name a valid VM, point and disks and survive
 * encoding and decoding again).  Chunk:
 * bit 1 of byte 0 picks the repository's hash (set: sha256-tree, clear:
 * sha256), bits 2-4 its frame size (shifts[]: 0 is 64 KiB, 2 is the 4 KiB
 * of new repositories of small chunks), bytes 1-32 are the expected
 * digest, the rest the file.  Index:
 * bytes 1.. are the file; likewise a manifest.  test-fuzz.sh seeds the corpus with real files
 * (framed chunks of a sha256-tree repository).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recovery/repo/repo-int.h"

#define CS (256 * 1024)           /* up to 4 frames */

/* The frame shift of the repository by bits 2-4 of byte 0. */
static const int shifts[8] = { CHUNK_FRAME_SHIFT, 14, 12, 13, 15, 16, 16, 16 };
static struct repo r;
/* FUZZ_EXPECT_DECODE set: every chunk input must decode (test-fuzz.sh
 * checks so that its seeds reach the frame decoders). */
static bool expect_decode;
static struct codec *codec;
static uint8_t *out;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  r.chunk_size = CS;
  pthread_mutex_init (&r.codec_lock, NULL);
  codec = codec_get (&r);
  out = xmalloc (CS);
  expect_decode = getenv ("FUZZ_EXPECT_DECODE") != NULL;
  return 0;
}

/* The partial-read path on the same file: its table from the file's
 * head (a buffer of just that size), then each frame on its own.  whole:
 * the length a whole decode gave (0 if it failed); out holds its bytes. */
static void
in_part (const uint8_t *file, size_t size, const uint8_t *digest, size_t whole)
{
  size_t head = MIN (size, CHUNK_HDR_LEN + CHUNK_MAX_FRAMES * CHUNK_ENTRY_LEN);
  uint8_t *h = xmalloc (head ? head : 1), *frame = NULL;
  struct chunk_table *t = NULL;
  size_t i;

  memcpy (h, file, head);
  if (chunk_table_parse (&r, h, head, size, digest, &t) == 1) {
    assert (t->n >= 1 && t->raw_len <= CS && t->off[t->n] == size);
    assert (t->frame == (size_t) 1 << r.tree);
    frame = xmalloc (t->frame);     /* the frame's size: ASan sees more */
    for (i = 0; i < t->n; i++) {
      assert (t->off[i] <= t->off[i + 1]);
      if (chunk_table_decode (codec, t, i, file + t->off[i], frame) == 0 && whole)
        assert (memcmp (frame, out + i * t->frame,
                        MIN (t->frame, whole - i * t->frame)) == 0);
    }
  }
  free (t);
  free (frame);
  free (h);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  if (data[0] % 2 == 0) {
    uint8_t got[REPO_DIGEST_LEN];
    size_t len;

    if (size < 1 + REPO_DIGEST_LEN)
      return 0;
    /* A buffer of exactly the file's size, so ASan sees any overread. */
    size -= 1 + REPO_DIGEST_LEN;
    uint8_t *file = xmalloc (size);
    memcpy (file, data + 1 + REPO_DIGEST_LEN, size);
    /* both digests, both formats, frames of 4 to 64 KiB */
    r.tree = data[0] & 2 ? shifts[(data[0] >> 2) & 7] : 0;
    int whole = chunk_decode (&r, codec, file, size, out, CS, &len, data + 1);
    assert (!expect_decode || whole == 0);
    if (whole == 0) {
      assert (len > 0 && len <= CS);
      repo_chunk_digest (&r, out, len, got);
      assert (memcmp (got, data + 1, REPO_DIGEST_LEN) == 0);
    }
    in_part (file, size, data + 1, whole == 0 ? len : 0);
    free (file);
  }
  else if (data[0] % 4 == 3) {
    struct repo_manifest m, m2;
    char *text = xmalloc (size), *again;
    size_t i;

    memcpy (text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (manifest_decode (text, &m) == 0) {
      assert (name_is_valid (m.vm) && point_id_is_valid (m.id));
      assert (m.ndisks >= 1 && m.ndisks <= REPO_MAX_DISKS);
      for (i = 0; i < m.ndisks; i++)
        assert (disk_name_is_valid (m.disks[i].name));
      again = manifest_encode (&m);
      assert (manifest_decode (again, &m2) == 0);
      assert (strcmp (m.vm, m2.vm) == 0 && strcmp (m.id, m2.id) == 0 &&
              m.ndisks == m2.ndisks && m.time == m2.time);
      free (again);
    }
    free (text);
  }
  else {
    uint64_t disk_size, count;
    uint32_t chunk_size;
    uint8_t (*digests)[REPO_DIGEST_LEN];
    uint8_t *file = xmalloc (size - 1);

    memcpy (file, data + 1, size - 1);
    if (fidx_decode (file, size - 1, &disk_size, &chunk_size, &count,
                     &digests) == 0) {
      assert (chunk_size >= REPO_MIN_CHUNK && chunk_size <= REPO_MAX_CHUNK);
      assert (count == DIV_ROUND_UP (disk_size, chunk_size));
      assert (FIDX_HDR_LEN + count * REPO_DIGEST_LEN == size - 1);
      if (count)
        assert (memcmp (digests[count - 1],
                        file + FIDX_HDR_LEN + (count - 1) * REPO_DIGEST_LEN,
                        REPO_DIGEST_LEN) == 0);
      free (digests);
    }
    free (file);
  }
  return 0;
}
