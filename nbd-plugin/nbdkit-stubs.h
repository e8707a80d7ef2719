/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbdkit-stubs: just enough of nbdkit's server-side functions to run the
 * plugin's callbacks in one process without nbdkit (fuzz-plugin.c).  The
 * extents stub checks the rules nbdkit enforces (the first extent starts
 * at the request's offset, extents are contiguous and non-empty) and
 * keeps what was added.  Not thread-safe; one request at a time.
 */
#ifndef BOOTBACK_NBDKIT_STUBS_H
#define BOOTBACK_NBDKIT_STUBS_H

#include <stdint.h>

#define STUB_MAX_EXTENTS 4096
struct nbdkit_extents {
  uint64_t start, end;        /* the request */
  uint64_t next;              /* where the next extent must start */
  unsigned n;
  struct { uint64_t offset, length; uint32_t type; } e[STUB_MAX_EXTENTS];
};
void stub_extents_init (struct nbdkit_extents *x, uint64_t offset,
                        uint32_t count);

/* The export name nbdkit_export_name returns. */
extern const char *stub_export_name;
/* The last nbdkit_error message and nbdkit_set_error value. */
extern char stub_last_error[1024];
extern int stub_last_errno;
/* Print errors and debug messages to stderr (default: silent). */
extern int stub_verbose;

#endif /* BOOTBACK_NBDKIT_STUBS_H */
