/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* recovery/scan internals, by file. */
#ifndef BOOTBACK_SCAN_INT_H
#define BOOTBACK_SCAN_INT_H

#include "recovery/scan/scan.h"

/* ---- match.c: the engines ------------------------------------------- */
struct scan_engines;
/* Load the YARA rules and ClamAV signatures of o.  NULL with the error
 * (naming the file that did not load). */
struct scan_engines *engines_load (const struct scan_opts *o);
void engines_free (struct scan_engines *e);
/* Match buf against both engines: fn(opaque, engine, rule) per match. */
typedef void (*match_fn) (void *opaque, const char *engine, const char *rule);
int engines_scan (struct scan_engines *e, const void *buf, size_t len,
                  match_fn fn, void *opaque);
/* ClamAV's scratch directory (made after the privileges are dropped). */
int engines_tmpdir (struct scan_engines *e);

/* ---- walk.c: partitions and file systems (libtsk), in the child ------ */
/* Scan the disk read through nbd (a connected struct nbd_handle *),
 * writing one JSON line per partition and per match to out. */
int walk_disk (void *nbd, const struct scan_opts *o,
               struct scan_engines *e, FILE *out);

#endif /* BOOTBACK_SCAN_INT_H */
