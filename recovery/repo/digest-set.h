/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A set of chunk digests (32 bytes each), for passes over every index of
 * a repository (gc's mark, repo verify/check): memory grows with the
 * unique digests, not with the references, at most 64 bytes per digest
 * (digest-set.c says how).  The zero digest (a zero chunk) is never a
 * member.  Not thread-safe for adding; lookups and iteration may run in
 * many threads once adding is done.
 */
#ifndef BOOTBACK_DIGEST_SET_H
#define BOOTBACK_DIGEST_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recovery/repo/repo.h"

struct digest_set;

struct digest_set *digest_set_new (void);
void digest_set_free (struct digest_set *s);
/* Add d: true if it was not there yet.  The zero digest is ignored
 * (false). */
bool digest_set_add (struct digest_set *s, const uint8_t d[REPO_DIGEST_LEN]);
bool digest_set_has (const struct digest_set *s,
                     const uint8_t d[REPO_DIGEST_LEN]);
size_t digest_set_count (const struct digest_set *s);
/* Bytes of memory the set holds (its tables). */
size_t digest_set_bytes (const struct digest_set *s);
/* Iteration, in parts that threads can share: part p < digest_set_parts;
 * start with *pos = 0; returns the next member of part p, or NULL at its
 * end.  Every member is in exactly one part. */
size_t digest_set_parts (const struct digest_set *s);
const uint8_t *digest_set_next (const struct digest_set *s, size_t part,
                                size_t *pos);

#endif /* BOOTBACK_DIGEST_SET_H */
