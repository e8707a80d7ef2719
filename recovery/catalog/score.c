/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ransomware score (score.h, docs/design.md "Ransomware score").
 *
 * Four shares per point, each against the point before it:
 *   change   bytes of chunks that differ / the disks' size;
 *   raw      new chunks' bytes zstd could not shrink / new bytes (what
 *            encrypted data looks like).  The writer counts it for the
 *            chunks new to the repository; for a point whose writer did
 *            not (made before, reindexed), the changed chunks' headers
 *            are read instead; unknown without compression;
 *   rewrite  the previous point's data chunks replaced / its data (the
 *            drop in dedup against it);
 *   encrypted-rewrite  of those replaced chunks, the bytes the new
 *            chunks store raw (their headers) / the previous data: data
 *            replaced by incompressible data, which is what encryption in
 *            place does, and neither a database rewrite (compressible)
 *            nor a copy of compressed files (no data replaced) does.
 * Each is compared with the VM's last SCORE_HISTORY points by a robust
 * z-score, (x - median) / max(1.4826 MAD, floor); with fewer than
 * SCORE_MIN_HISTORY earlier points the median is taken as 0 and the
 * spread as the floor.  The score is the encrypted-rewrite z-score; a
 * point is suspicious when it reaches SCORE_Z, at least SCORE_RAW_MIN of
 * the replaced data is incompressible, and at least SCORE_MIN_NEW bytes
 * are.  The other shares are context, in the reason.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "recovery/catalog/catalog.h"
#include "recovery/catalog/score.h"
#include "recovery/util/util.h"

enum { M_CHANGE, M_RAW, M_REWRITE, M_ENCRYPT, NMETRICS };
static const double floors[NMETRICS] = { 0.01, 0.08, 0.01, 0.001 };

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
  case M_REWRITE: return share (s->rewritten_bytes, s->prev_data_bytes);
  default:
    return s->raw_rewritten_bytes < 0 ? -1
      : share (s->raw_rewritten_bytes, s->prev_data_bytes);
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

/* z-score of metric k of cur against hist, and the usual range in words
 * (" (usual 1.0%-3.0%)", or "" and *young set to the number of earlier
 * points if too few). */
static double
zscore (const struct score_stats *hist, size_t n, int k, double x,
        char usual[48], long *young)
{
  double v[SCORE_HISTORY], dev[SCORE_HISTORY], med, mad, spread;
  char lo[16], hi[16];
  size_t i, m = 0;

  for (i = n; i-- > 0 && m < SCORE_HISTORY;)
    if (hist[i].has_prev && metric (&hist[i], k) >= 0)
      v[m++] = metric (&hist[i], k);
  if (m < SCORE_MIN_HISTORY) {
    usual[0] = '\0';
    *young = m;
    return x / floors[k];
  }
  med = median (v, m);             /* v is sorted from here */
  pct (v[0], lo);
  pct (v[m - 1], hi);
  snprintf (usual, 48, " (usual %s-%s)", lo, hi);
  for (i = 0; i < m; i++)
    dev[i] = fabs (v[i] - med);
  mad = median (dev, m);
  spread = fmax (1.4826 * mad, floors[k]);
  return (x - med) / spread;
}

/* Append to v's reason ("; " between parts), truncating. */
static void __attribute__((format (printf, 3, 4)))
append (struct score_verdict *v, size_t *len, const char *fmt, ...)
{
  va_list ap;

  if (*len + 3 >= sizeof v->reason)
    return;
  if (*len)
    *len += snprintf (v->reason + *len, sizeof v->reason - *len, "; ");
  va_start (ap, fmt);
  vsnprintf (v->reason + *len, sizeof v->reason - *len, fmt, ap);
  va_end (ap);
  *len = strlen (v->reason);
}

void
score_judge (const struct score_stats *hist, size_t n,
             const struct score_stats *cur, struct score_verdict *v)
{
  static const char *const what[NMETRICS] = {
    "of the disk changed", "of new data incompressible",
    "of the previous point's data rewritten",
    "of the previous point's data replaced by incompressible data",
  };
  static const int order[NMETRICS] = { M_ENCRYPT, M_RAW, M_REWRITE, M_CHANGE };
  double z[NMETRICS], x[NMETRICS];
  char usual[48], p[16];
  size_t len = 0;
  long young = -1;
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
      if (k == M_RAW)           /* said once for both */
        append (v, &len, "incompressible share unknown");
      continue;
    }
    z[k] = zscore (hist, n, k, x[k], usual, &young);
    pct (x[k], p);
    append (v, &len, "%s %s%s", p, what[k], usual);
  }
  if (young >= 0)
    append (v, &len, "no usual range yet: %ld earlier point%s", young,
            young == 1 ? "" : "s");
  v->change = x[M_CHANGE];
  v->raw = x[M_RAW];
  v->rewrite = x[M_REWRITE];
  v->encrypt = x[M_ENCRYPT];
  v->score = z[M_ENCRYPT];
  v->suspicious = x[M_ENCRYPT] >= 0 && v->score >= SCORE_Z &&
    cur->raw_rewritten_bytes >= SCORE_MIN_NEW &&
    share (cur->raw_rewritten_bytes, cur->rewritten_bytes) >= SCORE_RAW_MIN;
}

/* Add disk d of the point (its previous version pd, NULL if none).  With
 * heads (the repository compresses), the rewritten chunks' raw bytes are
 * read from their headers; with heads and fresh, the changed chunks
 * count as new and their raw bytes too (a point whose writer did not
 * count them). */
static int
add_disk (struct repo *r, struct score_stats *s, struct repo_disk *d,
          struct repo_disk *pd, uint32_t chunk_size, bool heads, bool fresh)
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
    raw = 0;
    if (heads && !repo_digest_is_zero (cur) &&
        (fresh || !repo_digest_is_zero (prev)) &&
        repo_chunk_raw_bytes (r, cur, &raw) == -1)
      return -1;
    if (!repo_digest_is_zero (prev)) {
      s->rewritten_bytes += len;
      s->raw_rewritten_bytes += raw;
    }
    if (fresh && !repo_digest_is_zero (cur)) {
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

/* score_stats_compute against the previous point's manifest pm (NULL:
 * none). */
static int
stats_compute (struct repo *r, const struct repo_manifest *m,
               const struct repo_manifest *pm, struct score_stats *s)
{
  bool heads = repo_compresses (r), fresh = heads && m->stats.raw_bytes < 0;
  size_t i;
  int ret;

  memset (s, 0, sizeof *s);
  s->new_bytes = fresh ? 0 : m->stats.new_bytes;
  s->raw_bytes = fresh ? 0 : m->stats.raw_bytes;
  s->raw_rewritten_bytes = heads ? 0 : -1;
  s->has_prev = pm != NULL;
  for (i = 0; i < m->ndisks; i++) {
    struct repo_disk *d = repo_disk_open_m (r, m, m->disks[i].name);
    struct repo_disk *pd = NULL;

    if (!d)
      return -1;
    if (s->has_prev && has_disk (pm, m->disks[i].name) &&
        !(pd = repo_disk_open_m (r, pm, m->disks[i].name))) {
      repo_disk_close (d);
      return -1;
    }
    ret = add_disk (r, s, d, pd, m->chunk_size, heads, fresh);
    repo_disk_close (d);
    repo_disk_close (pd);
    if (ret == -1)
      return -1;
  }
  return 0;
}

int
score_stats_compute (struct repo *r, const struct repo_manifest *m,
                     const char *prev, struct score_stats *s)
{
  CLEANUP_FREE struct repo_manifest *pm = xcalloc (1, sizeof *pm);

  if (prev[0] && repo_manifest_read (r, m->vm, prev, pm) == -1) {
    memset (s, 0, sizeof *s);
    return -1;
  }
  return stats_compute (r, m, prev[0] ? pm : NULL, s);
}

int
catalog_score_point (struct catalog *c, struct repo *r, int64_t repo_id,
                     const struct repo_manifest *m, struct score_stats *st,
                     struct score_verdict *v)
{
  CLEANUP_FREE struct repo_manifest *pm = xcalloc (1, sizeof *pm);
  struct score_stats hist[SCORE_HISTORY];
  char prev[TIMESTAMP_LEN + 1];
  size_t n;
  int has;

  /* the point of vm just before m, its manifest read as the look at it
   * (one round trip fewer on S3 than a stat and then a read) */
  if ((has = repo_point_before_read (r, m->vm, m->id, prev, pm)) == -1) {
    memset (st, 0, sizeof *st);
    return -1;
  }
  if (stats_compute (r, m, has ? pm : NULL, st) == -1 ||
      catalog_score_history (c, repo_id, m->vm, m->time, hist,
                             SCORE_HISTORY, &n) == -1)
    return -1;
  score_judge (hist, n, st, v);
  return 0;
}

/* ---- the alert hook ------------------------------------------------------ */

#define HOOK_ARGS_MAX 32
#define HOOK_TIMEOUT 60

/* HOOK_TIMEOUT; a test may shorten it (BOOTBACK_TEST_HOOK_TIMEOUT). */
static int
hook_timeout (void)
{
  const char *e = test_hook_env ("BOOTBACK_TEST_HOOK_TIMEOUT");

  return e && atoi (e) > 0 ? atoi (e) : HOOK_TIMEOUT;
}

int
score_alert (const char *hook, const char *vm, const char *id,
             const struct score_verdict *v)
{
  CLEANUP_FREE char *cmd = xstrdup (hook);
  CLEANUP_FREE char *pt = xasprintf ("%s@%s", vm, id);
  char *argv[HOOK_ARGS_MAX + 1], *save = NULL, *w, score[32], out[512];
  size_t n = 0;
  int st;

  for (w = strtok_r (cmd, " \t", &save); w && n < HOOK_ARGS_MAX;
       w = strtok_r (NULL, " \t", &save))
    argv[n++] = w;
  argv[n] = NULL;
  if (n == 0)
    return 0;
  snprintf (score, sizeof score, "%.1f", v->score);
  setenv ("BOOTBACK_VM", vm, 1);
  setenv ("BOOTBACK_POINT", pt, 1);
  setenv ("BOOTBACK_SCORE", score, 1);
  setenv ("BOOTBACK_REASON", v->reason, 1);
  st = run_command_timeout (argv, out, sizeof out, hook_timeout ());
  unsetenv ("BOOTBACK_VM");
  unsetenv ("BOOTBACK_POINT");
  unsetenv ("BOOTBACK_SCORE");
  unsetenv ("BOOTBACK_REASON");
  out[strcspn (out, "\n")] = '\0';
  if (st == -1)
    error_prefix ("hook");
  else if (st != 0)
    error_setx ("hook %s exited with status %d%s%s", argv[0], st, out[0] ? ": " : "",
                out);
  return st == 0 ? 0 : -1;
}
