/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of verify_find_good: the bisection over restore points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify/verify.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
  fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); } } while (0)

struct sim {
  const char *verdicts;   /* per point, oldest first: g good, b bad, e error */
  int tries;
  char tried[64];         /* 1 where tried */
};

static int
sim_try (void *opaque, size_t i)
{
  struct sim *s = opaque;

  s->tries++;
  if (s->tried[i])
    fprintf (stderr, "point %zu tried twice\n", i), failures++;
  s->tried[i] = 1;
  return s->verdicts[i] == 'g' ? 1 : s->verdicts[i] == 'b' ? 0 : -1;
}

static int
ceil_log2 (size_t n)
{
  int k = 0;

  while (((size_t) 1 << k) < n)
    k++;
  return k;
}

/* Every split of n points into good then bad: the boundary is found
 * exactly, within 1 + ceil(log2 n) tries. */
static void
test_monotonic (void)
{
  size_t n, good;

  for (n = 1; n <= 40; n++)
    for (good = 0; good <= n; good++) {
      char v[64];
      struct sim s = { .verdicts = v };
      ssize_t found;
      memset (v, 'g', good);
      memset (v + good, 'b', n - good);
      v[n] = '\0';
      CHECK (verify_find_good (n, sim_try, &s, &found) == 0, "%s", v);
      CHECK (found == (ssize_t) good - 1, "%s: found %zd", v, found);
      CHECK (s.tries <= 1 + ceil_log2 (n), "%s: %d tries", v, s.tries);
      if (good == n)
        CHECK (s.tries == 1, "%s: the newest passes, yet %d tries", v, s.tries);
    }
}

/* Good after bad: the answer passed, and the next newer tried point
 * failed. */
static void
test_not_monotonic (void)
{
  const char *cases[] = { "gbgbgbgb", "bgbbbbgb", "ggbgbbgbb", "bbbbbbbgb", NULL };
  size_t k, j;

  for (k = 0; cases[k]; k++) {
    struct sim s = { .verdicts = cases[k] };
    size_t n = strlen (cases[k]);
    ssize_t found;
    CHECK (verify_find_good (n, sim_try, &s, &found) == 0, "%s", cases[k]);
    if (found < 0)
      continue;
    CHECK (cases[k][found] == 'g' && s.tried[found], "%s: %zd", cases[k], found);
    for (j = found + 1; j < n && !s.tried[j]; j++)
      ;
    CHECK (j < n && cases[k][j] == 'b', "%s: %zd has no failing newer tried point",
           cases[k], found);
  }
}

/* "Could not verify" stops the search at once. */
static void
test_error (void)
{
  struct sim s = { .verdicts = "ggggbbbe" };
  struct sim t = { .verdicts = "gggebbbb" };
  ssize_t found;

  CHECK (verify_find_good (8, sim_try, &s, &found) == -1 && s.tries == 1,
         "error on the newest: %d tries", s.tries);
  CHECK (verify_find_good (8, sim_try, &t, &found) == -1, "error in the middle");
  CHECK (verify_find_good (0, sim_try, &t, &found) == 0 && found == -1, "no points");
}

int
main (void)
{
  test_monotonic ();
  test_not_monotonic ();
  test_error ();
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("test-find-good: ok\n");
  return 0;
}
