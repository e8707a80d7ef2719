/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Boot-trace recording and prefetch for the plugin's pinned disk
 * (trace.c; the file format is recovery/repo/trace.h).
 */
#ifndef BOOTBACK_NBD_PLUGIN_TRACE_H
#define BOOTBACK_NBD_PLUGIN_TRACE_H

#include <semaphore.h>
#include <stdint.h>

#include "recovery/repo/repo.h"

struct bb_trace;

/* trace_path: append the first read of each chunk to this file (NULL =
 * do not record).  prefetch_path: a trace whose chunks are loaded into
 * cache in its order, at most window chunks ahead of the guest's reads of
 * them (NULL = none; a bad file is a warning on stderr, not an error).
 * reads: the plugin's semaphore of reads in flight.  NULL with the error
 * if trace_path cannot be opened. */
struct bb_trace *bb_trace_new (const char *trace_path, const char *prefetch_path,
                               struct repo_disk *d, uint32_t chunk_size,
                               struct repo_cache *cache, uint64_t window,
                               sem_t *reads);
/* Start the prefetch threads (after nbdkit forked). */
void bb_trace_start (struct bb_trace *t);
/* The guest reads [offset, offset+count): cheap, no lock unless a chunk is
 * read for the first time. */
void bb_trace_note (struct bb_trace *t, uint64_t offset, uint32_t count);
/* A read of the guest took seconds (waiting for a slot included). */
void bb_trace_read_done (struct bb_trace *t, double seconds);
/* Stop the threads, write the statistics lines to stderr, free. */
void bb_trace_free (struct bb_trace *t);

#endif /* BOOTBACK_NBD_PLUGIN_TRACE_H */
