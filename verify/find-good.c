/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The newest restore point of a VM that passes verification (bootback
 * verify VM --find-good).
 *
 * The newest point is tried first: it is the one everybody wants, and
 * after a bad night it is usually fine again.  If it fails, the points
 * older than it are searched by bisection, which assumes what ransomware,
 * a broken update or slow corruption make true: once points turn bad they
 * stay bad, so the points form one run of good followed by one run of
 * bad.  With n points this tries at most 1 + ceil(log2 n) of them.  Where
 * the assumption does not hold (a good point after a bad one), the search
 * still ends on a point that passed and whose next newer tried point
 * failed, and the caller lists every point it tried with its verdict, so
 * nobody is misled about what was and was not booted.
 *
 * A verdict of "could not verify" (the lab failed, not the point) stops
 * the search: bisecting past it would blame the point for the host.
 */
#include "verify/verify.h"

int
verify_find_good (size_t n, verify_try_fn try, void *opaque, ssize_t *good)
{
  ssize_t lo = -1, hi;
  int v;

  *good = -1;
  if (n == 0)
    return 0;
  v = try (opaque, n - 1);
  if (v == -1)
    return -1;
  if (v == 1) {
    *good = (ssize_t) n - 1;
    return 0;
  }
  /* Invariant: lo passed (or is -1, before the oldest), hi failed. */
  hi = (ssize_t) n - 1;
  while (hi - lo > 1) {
    ssize_t mid = lo + (hi - lo) / 2;
    v = try (opaque, (size_t) mid);
    if (v == -1)
      return -1;
    if (v == 1)
      lo = mid;
    else
      hi = mid;
  }
  *good = lo;
  return 0;
}
