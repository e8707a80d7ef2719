/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ransomware score (score.h, docs/design.md "Ransomware score").
 *
 * Three shares per point, each against the point before it:
 *   change   bytes of chunks that differ / the disks' size;
 *   raw      new chunks' bytes zstd could not shrink / new bytes (what
 *            encrypted data looks like).  The writer counts it for the
 *            chunks new to the repository; for a point whose writer did
 *            not (made before, reindexed), the changed chunks' headers
 *            are read instead; unknown without compression;
 *   rewrite  the previous point's data chunks replaced / its data (the
 *            drop in dedup against it: encryption in place replaces
 *            data, while a copy of compressed files adds to it).
 * Each is compared with the VM's last SCORE_HISTORY points by a robust
 * z-score, (x - median) / max(1.4826 MAD, floor); with fewer than
 * SCORE_MIN_HISTORY earlier points the median is taken as 0 and the
 * spread as the floor.  A point is suspicious when both its raw and its
 * rewrite z-scores reach SCORE_Z, at least SCORE_RAW_MIN of its new data
 * is incompressible and it has at least SCORE_MIN_NEW new bytes.  The
 * score is the smaller of those two z-scores.
 */
#include <math.h>
#include <stdlib.h>

#include "recovery/catalog/score.h"
#include "recovery/util/util.h"

enum { M_CHANGE, M_RAW, M_REWRITE, NMETRICS };
static const double floors[NMETRICS] = { 0.01, 0.08, 0.01 };

static double
share (uint64_t x, uint64_t d)
{
  return d ? (double) x / d : 0;
}

/* The share of metric k in s; < 0 if unknown. */
static double
metric (const struct score_stats *s, int k)
{
  switch (k) {
  case M_CHANGE: return share (s->changed_bytes, s->disk_bytes);
  case M_RAW:
    return s->raw_bytes < 0 || s->new_bytes == 0 ? -1
      : share (s->raw_bytes, s->new_bytes);
  default: return share (s->rewritten_bytes, s->prev_data_bytes);
  }
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *v, size_t n)
{
  qsort (v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "12%" or "0.5%". */
static void
pct (double x, char out[16])
{
  snprintf (out, 16, x < 0.1 ? "%.1f%%" : "%.0f%%", 100 * x);
}

/* z-score of metric k of cur against hist, and the usual range in words. */
static double
zscore (const struct score_stats *hist, size_t n, int k, double x,
        char usual[48])
{
  double v[SCORE_HISTORY], dev[SCORE_HISTORY], med, mad, spread;
  char lo[16], hi[16];
  size_t i, m = 0;

  for (i = n; i-- > 0 && m < SCORE_HISTORY;)
    if (hist[i].has_prev && metric (&hist[i], k) >= 0)
      v[m++] = metric (&hist[i], k);
  if (m < SCORE_MIN_HISTORY) {
    snprintf (usual, 48, "no usual range yet: %zu earlier point%s", m,
              m == 1 ? "" : "s");
    return x / floors[k];
  }
  med = median (v, m);             /* v is sorted from here */
  pct (v[0], lo);
  pct (v[m - 1], hi);
  snprintf (usual, 48, "usual %s-%s", lo, hi);
  for (i = 0; i < m; i++)
    dev[i] = fabs (v[i] - med);
  mad = median (dev, m);
  spread = fmax (1.4826 * mad, floors[k]);
  return (x - med) / spread;
}

void
score_judge (const struct score_stats *hist, size_t n,
             const struct score_stats *cur, struct score_verdict *v)
{
  static const char *const what[NMETRICS] = {
    "of the disk changed", "of new data incompressible",
    "of the previous point's data rewritten",
  };
  static const int order[NMETRICS] = { M_RAW, M_REWRITE, M_CHANGE };
  double z[NMETRICS], x[NMETRICS];
  char usual[48], p[16];
  size_t len = 0;
  int i, k;

  memset (v, 0, sizeof *v);
  if (!cur->has_prev) {
    snprintf (v->reason, sizeof v->reason, "first point: nothing to compare");
    v->raw = -1;
    return;
  }
  for (i = 0; i < NMETRICS; i++) {
    k = order[i];
    x[k] = metric (cur, k);
    if (x[k] < 0) {
      z[k] = 0;
      len += snprintf (v->reason + len, sizeof v->reason - len, "%s%s",
                       len ? "; " : "", "incompressible share unknown");
      continue;
    }
    z[k] = zscore (hist, n, k, x[k], usual);
    pct (x[k], p);
    if (len < sizeof v->reason)
      len += snprintf (v->reason + len, sizeof v->reason - len,
                       "%s%s %s (%s)", len ? "; " : "", p, what[k], usual);
  }
  v->change = x[M_CHANGE];
  v->raw = x[M_RAW];
  v->rewrite = x[M_REWRITE];
  v->score = x[M_RAW] < 0 ? 0 : fmin (z[M_RAW], z[M_REWRITE]);
  v->suspicious = x[M_RAW] >= SCORE_RAW_MIN && v->score >= SCORE_Z &&
    cur->new_bytes >= SCORE_MIN_NEW;
}

/* Add disk d of the point (its previous version pd, NULL if none).  With
 * heads, the changed chunks also count as new, and the raw bytes are
 * read from their headers (a point whose writer did not count them). */
static int
add_disk (struct repo *r, struct score_stats *s, struct repo_disk *d,
          struct repo_disk *pd, uint32_t chunk_size, bool heads)
{
  uint64_t i, n = repo_disk_nchunks (d), pn = pd ? repo_disk_nchunks (pd) : 0;
  uint64_t size = repo_disk_size (d), raw;

  s->disk_bytes += size;
  for (i = 0; i < n; i++) {
    const uint8_t *cur = repo_disk_digest (d, i);
    const uint8_t *prev = i < pn ? repo_disk_digest (pd, i) : repo_zero_digest;
    uint64_t len = MIN ((uint64_t) chunk_size, size - i * chunk_size);

    if (memcmp (cur, prev, REPO_DIGEST_LEN) == 0)
      continue;
    s->changed_bytes += len;
    if (!repo_digest_is_zero (prev))
      s->rewritten_bytes += len;
    if (heads && !repo_digest_is_zero (cur)) {
      if (repo_chunk_raw_bytes (r, cur, &raw) == -1)
        return -1;
      s->new_bytes += len;
      s->raw_bytes += raw;
    }
  }
  for (i = 0; i < pn; i++)
    if (!repo_digest_is_zero (repo_disk_digest (pd, i)))
      s->prev_data_bytes += MIN ((uint64_t) chunk_size,
                                 repo_disk_size (pd) - i * chunk_size);
  return 0;
}

/* Is disk name in the point's manifest pm? */
static bool
has_disk (const struct repo_manifest *pm, const char *name)
{
  size_t i;

  for (i = 0; i < pm->ndisks; i++)
    if (strcmp (pm->disks[i].name, name) == 0)
      return true;
  return false;
}

int
score_stats_compute (struct repo *r, const struct repo_manifest *m,
                     const char *prev, struct score_stats *s)
{
  CLEANUP_FREE struct repo_manifest *pm = xcalloc (1, sizeof *pm);
  bool heads = m->stats.raw_bytes < 0 && repo_compresses (r);
  size_t i;
  int ret;

  memset (s, 0, sizeof *s);
  s->new_bytes = heads ? 0 : m->stats.new_bytes;
  s->raw_bytes = heads ? 0 : m->stats.raw_bytes;
  s->has_prev = prev[0] && repo_manifest_read (r, m->vm, prev, pm) == 0;
  if (prev[0] && !s->has_prev)
    return -1;
  for (i = 0; i < m->ndisks; i++) {
    struct repo_disk *d = repo_disk_open (r, m->vm, m->id, m->disks[i].name);
    struct repo_disk *pd = NULL;

    if (!d)
      return -1;
    if (s->has_prev && has_disk (pm, m->disks[i].name) &&
        !(pd = repo_disk_open (r, m->vm, prev, m->disks[i].name))) {
      repo_disk_close (d);
      return -1;
    }
    ret = add_disk (r, s, d, pd, m->chunk_size, heads);
    repo_disk_close (d);
    repo_disk_close (pd);
    if (ret == -1)
      return -1;
  }
  return 0;
}
