/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the boot-trace parser (recovery/repo/trace.h),
 * which reads files a repository's attacker may have written.  It must
 * never crash or read out of bounds (the input is not NUL-terminated),
 * and what it accepts must hold at most REPO_TRACE_MAX_ENTRIES indexes,
 * each below the disk's chunk count, a valid chunk size, and survive
 * formatting and parsing again unchanged.
 *
 * Input: bytes 0-1 are the disk's chunk count (little-endian), the rest
 * the file.  test-fuzz.sh seeds the corpus with a trace the plugin wrote.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recovery/repo/trace.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct repo_trace t, u;
  uint64_t nchunks;
  char *file, *again;
  size_t i, len;

  if (size < 2)
    return 0;
  nchunks = data[0] | (uint64_t) data[1] << 8;
  size -= 2;
  file = xmalloc (size ? size : 1);
  memcpy (file, data + 2, size);
  if (repo_trace_parse (file, size, nchunks, "fuzz", &t) == 0) {
    assert (t.n <= REPO_TRACE_MAX_ENTRIES);
    assert (t.chunk_size >= REPO_MIN_CHUNK && t.chunk_size <= REPO_MAX_CHUNK);
    for (i = 0; i < t.n; i++)
      assert (t.e[i].chunk < nchunks);
    again = repo_trace_format (&t, &len);
    assert (repo_trace_parse (again, len, nchunks, "again", &u) == 0);
    assert (u.n == t.n && u.chunk_size == t.chunk_size);
    assert (t.n == 0 || memcmp (u.e, t.e, t.n * sizeof *t.e) == 0);
    repo_trace_dedup (&u);
    assert (u.n <= t.n);
    free (again);
    repo_trace_free (&u);
    repo_trace_free (&t);
  }
  free (file);
  return 0;
}
