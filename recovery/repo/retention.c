/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Retention rules (keep-last/hourly/daily/weekly/monthly/yearly).  Pure
 * computation on a list of point times, tested against fixed calendars.
 *
 * Each rule walks the points newest first and keeps the newest point of
 * each calendar bucket (hour, day, ISO week, month, year, in UTC) until it
 * has kept N buckets.  Buckets that already hold a point kept by an earlier
 * rule are covered and do not use up the rule's N.  Protected points are
 * always kept and never counted.
 */
#include "recovery/repo/repo-int.h"

enum rule { R_LAST, R_HOURLY, R_DAILY, R_WEEKLY, R_MONTHLY, R_YEARLY, R_N };
static const char *rule_names[R_N] = {
  "last", "hourly", "daily", "weekly", "monthly", "yearly"
};

static long
bucket_of (time_t t, enum rule r, long index)
{
  struct tm tm;
  char buf[16];

  gmtime_r (&t, &tm);
  switch (r) {
  case R_LAST: return index;
  case R_HOURLY: return (long) (t / 3600);
  case R_DAILY: return (long) (t / 86400);
  case R_WEEKLY:
    strftime (buf, sizeof buf, "%G%V", &tm);    /* ISO year and week */
    return atol (buf);
  case R_MONTHLY: return (tm.tm_year + 1900L) * 12 + tm.tm_mon;
  case R_YEARLY: return tm.tm_year + 1900L;
  default: abort ();
  }
}

void
repo_prune_plan (struct repo_prune_item *it, size_t n,
                 const struct repo_keep *keep)
{
  const int want[R_N] = { keep->last, keep->hourly, keep->daily,
                          keep->weekly, keep->monthly, keep->yearly };
  bool any = false;
  size_t i, j;
  int r;

  for (i = 0; i < n; i++) {
    it[i].mark = REPO_PRUNE_REMOVE;
    it[i].reason = NULL;
    if (it[i].protected) {
      it[i].mark = REPO_PRUNE_PROTECTED;
      it[i].reason = "protected";
    }
  }
  for (r = 0; r < R_N; r++)
    any |= want[r] > 0;
  if (!any) {
    for (i = 0; i < n; i++)
      if (it[i].mark == REPO_PRUNE_REMOVE) {
        it[i].mark = REPO_PRUNE_KEEP;
        it[i].reason = "no rule";
      }
    return;
  }
  for (r = 0; r < R_N; r++) {
    long *seen;
    size_t nseen = 0;

    if (want[r] <= 0)
      continue;
    seen = xcalloc (n + 1, sizeof *seen);
    /* Buckets covered by points earlier rules kept. */
    for (i = 0; i < n; i++)
      if (it[i].mark == REPO_PRUNE_KEEP)
        seen[nseen++] = bucket_of (it[i].time, r, -1 - (long) i);
    int kept = 0;
    for (i = 0; i < n && kept < want[r]; i++) {
      long b;
      bool dup = false;

      if (it[i].mark != REPO_PRUNE_REMOVE)
        continue;
      b = bucket_of (it[i].time, r, (long) i);
      for (j = 0; j < nseen; j++)
        if (seen[j] == b) { dup = true; break; }
      if (dup)
        continue;
      seen[nseen++] = b;
      it[i].mark = REPO_PRUNE_KEEP;
      it[i].reason = rule_names[r];
      kept++;
    }
    free (seen);
  }
}
