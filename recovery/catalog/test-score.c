/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * score_judge (score.h): history in, verdict and reason out.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "recovery/catalog/score.h"

#define MiB (1ull << 20)
#define DISK (1024 * MiB)

/* A point that changed `changed` bytes, rewrote `rewritten` of 512 MiB of
 * data, with `fresh` new bytes of which `raw` incompressible. */
static struct score_stats
pt (uint64_t changed, uint64_t rewritten, uint64_t fresh, int64_t raw)
{
  struct score_stats s = {
    .has_prev = true, .disk_bytes = DISK, .changed_bytes = changed,
    .prev_data_bytes = 512 * MiB, .rewritten_bytes = rewritten,
    .new_bytes = fresh, .raw_bytes = raw,
  };
  return s;
}

int
main (void)
{
  struct score_stats h[10], cur;
  struct score_verdict v;
  size_t i;

  /* A steady history: 8-12 MiB changed, 1-3 MiB rewritten, 2-6%
   * incompressible. */
  for (i = 0; i < 10; i++)
    h[i] = pt ((8 + i % 5) * MiB, (1 + i % 3) * MiB, (8 + i % 5) * MiB,
               (int64_t) ((8 + i % 5) * MiB * (2 + i % 5) / 100));

  /* Encryption in place: 200 MiB rewritten, 95% incompressible. */
  cur = pt (200 * MiB, 200 * MiB, 200 * MiB, 190 * MiB);
  score_judge (h, 10, &cur, &v);
  printf ("encryption: %.1f: %s\n", v.score, v.reason);
  assert (v.suspicious);
  assert (v.score >= SCORE_Z);
  assert (strstr (v.reason, "95% of new data incompressible (usual 2.0%-6.0%)"));
  assert (strstr (v.reason, "of the previous point's data rewritten (usual"));
  assert (strstr (v.reason, "20% of the disk changed (usual 0.8%-1.2%)"));

  /* A copy of compressed files into free space: incompressible, but the
   * previous data stays. */
  cur = pt (200 * MiB, 2 * MiB, 200 * MiB, 190 * MiB);
  score_judge (h, 10, &cur, &v);
  assert (!v.suspicious);
  printf ("copy: %.1f: %s\n", v.score, v.reason);

  /* A database rewrite: much rewritten, compressible. */
  cur = pt (300 * MiB, 300 * MiB, 300 * MiB, 9 * MiB);
  score_judge (h, 10, &cur, &v);
  assert (!v.suspicious);

  /* Log growth: within the usual range. */
  cur = pt (10 * MiB, 1 * MiB, 10 * MiB, (int64_t) (MiB / 4));
  score_judge (h, 10, &cur, &v);
  assert (!v.suspicious && v.score < 1);

  /* Too little new data to judge, however incompressible. */
  cur = pt (MiB / 2, MiB / 2, MiB / 2, MiB / 2);
  score_judge (h, 10, &cur, &v);
  assert (!v.suspicious);

  /* Unknown incompressible share (a reindexed point): never flagged, and
   * said. */
  cur = pt (200 * MiB, 200 * MiB, 200 * MiB, -1);
  score_judge (h, 10, &cur, &v);
  assert (!v.suspicious && v.raw < 0);
  assert (strstr (v.reason, "incompressible share unknown"));

  /* A VM whose points are usually incompressible (a media store that
   * rewrites in place): the same encryption is within its range. */
  for (i = 0; i < 10; i++)
    h[i] = pt (150 * MiB, 150 * MiB, 150 * MiB,
               (int64_t) (150 * MiB * (90 + i % 5) / 100));
  cur = pt (200 * MiB, 200 * MiB, 200 * MiB, 190 * MiB);
  score_judge (h, 10, &cur, &v);
  assert (!v.suspicious);

  /* Young history (one earlier point): the floors decide. */
  h[0] = pt (8 * MiB, MiB, 8 * MiB, (int64_t) MiB / 8);
  cur = pt (100 * MiB, 100 * MiB, 100 * MiB, 95 * MiB);
  score_judge (h, 1, &cur, &v);
  assert (v.suspicious);
  assert (strstr (v.reason, "no usual range yet: 1 earlier point"));
  cur = pt (100 * MiB, 2 * MiB, 100 * MiB, 95 * MiB);
  score_judge (h, 1, &cur, &v);
  assert (!v.suspicious);

  /* Flagged points are left out of the history by the caller; points
   * without a previous one are skipped here. */
  h[0].has_prev = false;
  score_judge (h, 1, &cur, &v);
  assert (strstr (v.reason, "no usual range yet: 0 earlier points"));

  /* The first point: nothing to compare. */
  cur.has_prev = false;
  score_judge (h, 0, &cur, &v);
  assert (!v.suspicious && strstr (v.reason, "first point"));
  return 0;
}
