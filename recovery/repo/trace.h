/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Boot traces (trace.c): which chunks of a disk a boot read, in the order
 * it first read them, with the time of each first read.  The plugin
 * records one (trace=FILE), instant stores it beside the point it booted
 * and in the catalog, and the next boot of the VM prefetches the chunks
 * in that order (prefetch=FILE).
 *
 * The file format (text, one record a line):
 *
 *   bootback-trace 1
 *   chunk-size 1048576
 *   CHUNK MS
 *   ...
 *
 * CHUNK is the chunk's index in the disk (offset / chunk size), MS the
 * milliseconds of its first read: since the boot began in a stored trace,
 * the wall clock's (since the epoch) in the plugin's raw trace.
 *
 * Trust: a trace in the repository may have been written by an attacker.
 * It can only change the order in which chunks are loaded into the cache:
 * every parse is bounded (REPO_TRACE_MAX_BYTES, REPO_TRACE_MAX_ENTRIES,
 * every index below the disk's chunk count) and a bad file is an error
 * naming the file and the line, never a partial trace.
 */
#ifndef BOOTBACK_REPO_TRACE_H
#define BOOTBACK_REPO_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "recovery/repo/repo.h"

#define REPO_TRACE_MAX_ENTRIES 65536
/* The longest line is "CHUNK MS\n": two 20-digit numbers. */
#define REPO_TRACE_MAX_BYTES (64 + (size_t) REPO_TRACE_MAX_ENTRIES * 42)
#define REPO_TRACE_MAGIC "bootback-trace 1"

struct repo_trace_entry {
  uint64_t chunk;
  uint64_t ms;
};

struct repo_trace {
  uint32_t chunk_size;
  size_t n;
  struct repo_trace_entry *e;   /* malloc'd, n entries */
};

/* Parse text (len bytes; NUL-terminated or not) of the format above, for
 * a disk of nchunks chunks.  what names the file in errors.  0, or -1 with
 * an error naming what and the line (t is then empty). */
int repo_trace_parse (const char *text, size_t len, uint64_t nchunks,
                      const char *what, struct repo_trace *t);
/* The file text (malloc'd), *len its length. */
char *repo_trace_format (const struct repo_trace *t, size_t *len);
void repo_trace_free (struct repo_trace *t);
/* Keep only the first record of each chunk, in order. */
void repo_trace_dedup (struct repo_trace *t);
/* Keep the records whose ms is in [from, to], and make ms relative to
 * from. */
void repo_trace_cut (struct repo_trace *t, uint64_t from, uint64_t to);

/* A local file (the plugin's raw trace, a session's prefetch list). */
int repo_trace_load (const char *path, uint64_t nchunks, struct repo_trace *t);
int repo_trace_save (const char *path, const struct repo_trace *t);

/* points/VM/ID/DISK.trace, beside the point (the point must exist): an
 * atomic create-or-replace through the repository's I/O.  The file is a
 * hint kept with the point, not part of it: the manifest does not name
 * it, check and verify ignore it, prune and GC remove it with the point's
 * directory. */
int repo_trace_write (struct repo *r, const char *vm, const char *id,
                      const char *disk, const struct repo_trace *t);
/* Read it back for a disk of nchunks chunks.  -1 with errno ENOENT if the
 * point has none. */
int repo_trace_read (struct repo *r, const char *vm, const char *id,
                     const char *disk, uint64_t nchunks, struct repo_trace *t);

#endif /* BOOTBACK_REPO_TRACE_H */
