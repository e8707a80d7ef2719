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

/* A point that changed `changed` bytes and rewrote `rewritten` of the
 * previous point's 512 MiB of data (`rawrw` of it now incompressible),
 * with `fresh` new bytes of which `raw` incompressible. */
static struct score_stats
pt (uint64_t changed, uint64_t rewritten, int64_t rawrw, uint64_t fresh,
    int64_t raw)
{
  struct score_stats s = {
    .has_prev = true, .disk_bytes = DISK, .changed_bytes = changed,
    .prev_data_bytes = 512 * MiB, .rewritten_bytes = rewritten,
    .raw_rewritten_bytes = rawrw, .new_bytes = fresh, .raw_bytes = raw,
  };
  return s;
}

static struct score_verdict
judge (const struct score_stats *h, size_t n, struct score_stats cur)
{
  struct score_verdict v;

  score_judge (h, n, &cur, &v);
  printf ("%s %.1f: %s\n", v.suspicious ? "SUSPICIOUS" : "ok", v.score,
          v.reason);
  return v;
}

/* A steady history and the change kinds against it. */
static void
test_steady (void)
{
  struct score_stats h[10];
  struct score_verdict v;
  size_t i;

  /* A steady history: 8-12 MiB changed, 1-3 MiB rewritten (compressible:
   * 0-256 KiB of it raw), 2-6% of new data incompressible. */
  for (i = 0; i < 10; i++)
    h[i] = pt ((8 + i % 5) * MiB, (1 + i % 3) * MiB,
               (int64_t) (i % 2 * MiB / 4), (8 + i % 5) * MiB,
               (int64_t) ((8 + i % 5) * MiB * (2 + i % 5) / 100));

  /* Encryption in place: 200 MiB replaced by incompressible data. */
  v = judge (h, 10, pt (200 * MiB, 200 * MiB, 190 * MiB, 200 * MiB,
                        190 * MiB));
  assert (v.suspicious && v.score >= SCORE_Z);
  assert (strstr (v.reason, "37% of the previous point's data replaced by "
                  "incompressible data (usual 0.0%-0.0%)"));
  assert (strstr (v.reason, "95% of new data incompressible (usual 2.0%-6.0%)"));
  assert (strstr (v.reason, "39% of the previous point's data rewritten "
                  "(usual 0.2%-0.6%)"));
  assert (strstr (v.reason, "20% of the disk changed (usual 0.8%-1.2%)"));

  /* A copy of compressed files into free space: new data incompressible,
   * but almost nothing replaced. */
  v = judge (h, 10, pt (200 * MiB, 2 * MiB, MiB, 200 * MiB, 190 * MiB));
  assert (!v.suspicious);

  /* A database rewrite: much replaced, compressible. */
  v = judge (h, 10, pt (300 * MiB, 300 * MiB, 9 * MiB, 300 * MiB, 9 * MiB));
  assert (!v.suspicious);

  /* Both in one interval: a compressed copy and a database rewrite. */
  v = judge (h, 10, pt (400 * MiB, 200 * MiB, 5 * MiB, 400 * MiB, 200 * MiB));
  assert (!v.suspicious);

  /* Log growth: within the usual range. */
  v = judge (h, 10, pt (10 * MiB, MiB, 0, 10 * MiB, (int64_t) MiB / 4));
  assert (!v.suspicious && v.score < 1);

  /* Less than SCORE_MIN_NEW replaced, however incompressible. */
  v = judge (h, 10, pt (MiB / 2, MiB / 2, MiB / 2, MiB / 2, MiB / 2));
  assert (!v.suspicious);

  /* Encryption mixed with a larger compressible rewrite: less than half
   * of the replaced data is incompressible, not flagged (a limit). */
  v = judge (h, 10, pt (300 * MiB, 300 * MiB, 100 * MiB, 300 * MiB,
                        100 * MiB));
  assert (!v.suspicious && v.score >= SCORE_Z);

  /* Unknown (a repository without compression): never flagged, said. */
  v = judge (h, 10, pt (200 * MiB, 200 * MiB, -1, 200 * MiB, -1));
  assert (!v.suspicious && v.raw < 0 && v.encrypt < 0);
  assert (strstr (v.reason, "incompressible share unknown"));

}

/* Other histories: incompressible rewrites as usual, young, none. */
static void
test_histories (void)
{
  struct score_stats h[10];
  struct score_verdict v;
  size_t i;

  /* A VM that usually replaces data with incompressible data (a media
   * store): an encryption of its usual size is within its range, one
   * twice that is not. */
  for (i = 0; i < 10; i++)
    h[i] = pt (150 * MiB, 150 * MiB, (int64_t) (150 * MiB * (90 + i) / 100),
               150 * MiB, (int64_t) (150 * MiB * (90 + i) / 100));
  v = judge (h, 10, pt (150 * MiB, 150 * MiB, 142 * MiB, 150 * MiB,
                        142 * MiB));
  assert (!v.suspicious);
  v = judge (h, 10, pt (300 * MiB, 300 * MiB, 290 * MiB, 300 * MiB,
                        290 * MiB));
  assert (v.suspicious);

  /* Young history (one earlier point): the floors decide. */
  h[0] = pt (8 * MiB, MiB, 0, 8 * MiB, (int64_t) MiB / 8);
  v = judge (h, 1, pt (40 * MiB, 40 * MiB, 38 * MiB, 40 * MiB, 38 * MiB));
  assert (v.suspicious);
  assert (strstr (v.reason, "no usual range yet: 1 earlier point"));
  v = judge (h, 1, pt (100 * MiB, 2 * MiB, MiB / 2, 100 * MiB, 95 * MiB));
  assert (!v.suspicious);

  /* Points without a previous one are not history. */
  h[0].has_prev = false;
  v = judge (h, 1, pt (100 * MiB, 2 * MiB, 0, 100 * MiB, 95 * MiB));
  assert (strstr (v.reason, "no usual range yet: 0 earlier points"));

  /* The first point: nothing to compare. */
  struct score_stats first = { .has_prev = false };
  v = judge (h, 0, first);
  assert (!v.suspicious && strstr (v.reason, "first point"));
}

int
main (void)
{
  setvbuf (stdout, NULL, _IONBF, 0);
  test_steady ();
  test_histories ();
  return 0;
}
