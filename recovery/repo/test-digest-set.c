/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The digest set: members and non-members answered right across growth,
 * duplicates and the zero digest ignored, iteration yields each member
 * once, crafted digests (equal in all but a few bytes) work, and memory
 * stays within 64 bytes per member (plus one page per shard).
 */
#include "recovery/repo/digest-set.h"
#include "recovery/util/util.h"

#define FAIL(...) do { fprintf (stderr, "test-digest-set: " __VA_ARGS__); \
                       fputc ('\n', stderr); exit (1); } while (0)

/* Digest i of family f: SHA-256 of (f, i), or a crafted one (f = 2):
 * zero but for bytes 24..31. */
static void
digest (int f, uint64_t i, uint8_t d[REPO_DIGEST_LEN])
{
  uint64_t in[2] = { f, i };

  if (f == 2) {
    memset (d, 0, REPO_DIGEST_LEN);
    memcpy (d + 24, &i, 8);
    return;
  }
  repo_sha256 (in, sizeof in, d);
}

static void
check_family (int f, uint64_t n)
{
  struct digest_set *s = digest_set_new ();
  uint8_t d[REPO_DIGEST_LEN];
  uint64_t i, seen = 0;
  size_t p;

  for (i = 1; i <= n; i++) {
    digest (f, i, d);
    if (!digest_set_add (s, d))
      FAIL ("family %d: digest %" PRIu64 " reported present before adding", f, i);
    if (i % 3 == 0 && digest_set_add (s, d))
      FAIL ("family %d: duplicate %" PRIu64 " added twice", f, i);
  }
  if (digest_set_count (s) != n)
    FAIL ("family %d: count %zu, expected %" PRIu64, f, digest_set_count (s), n);
  for (i = 1; i <= n; i++) {
    digest (f, i, d);
    if (!digest_set_has (s, d))
      FAIL ("family %d: member %" PRIu64 " not found", f, i);
    digest (f, i + n, d);
    if (digest_set_has (s, d))
      FAIL ("family %d: non-member %" PRIu64 " found", f, i + n);
  }
  for (p = 0; p < digest_set_parts (s); p++) {
    size_t pos = 0;
    const uint8_t *m;
    while ((m = digest_set_next (s, p, &pos)) != NULL) {
      if (!digest_set_has (s, m))
        FAIL ("family %d: iteration yields a non-member", f);
      seen++;
    }
  }
  if (seen != n)
    FAIL ("family %d: iteration yields %" PRIu64 " members, expected %" PRIu64,
          f, seen, n);
  /* 64 bytes per member, plus the rounding of each shard to a page */
  if (n >= 100000 && digest_set_bytes (s) > 64 * n + 256 * 4096)
    FAIL ("family %d: %zu bytes for %" PRIu64 " members (%.1f per member)",
          f, digest_set_bytes (s), n, (double) digest_set_bytes (s) / n);
  printf ("family %d: %" PRIu64 " members, %.1f bytes each\n", f, n,
          (double) digest_set_bytes (s) / n);
  digest_set_free (s);
}

int
main (void)
{
  struct digest_set *s = digest_set_new ();
  uint8_t zero[REPO_DIGEST_LEN] = { 0 };

  if (digest_set_add (s, zero) || digest_set_has (s, zero) ||
      digest_set_count (s) != 0)
    FAIL ("the zero digest must never be a member");
  if (digest_set_has (s, (uint8_t [REPO_DIGEST_LEN]) { 1 }))
    FAIL ("an empty set has a member");
  digest_set_free (s);
  digest_set_free (NULL);

  check_family (0, 1);
  check_family (0, 1000);
  check_family (1, 300000);
  check_family (2, 300000);
  /* every count around a growth step of the smallest tables */
  for (uint64_t n = 90; n < 110; n++)
    check_family (0, n * 256);
  printf ("digest set ok\n");
  return 0;
}
