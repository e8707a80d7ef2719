/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * serve: the logic behind nbdkit-bootback-plugin, kept apart from the
 * nbdkit callbacks (plugin.c) so that it can be unit-tested without
 * nbdkit (test-serve.c):
 *
 *  - export names, "VM@TIME/DISK" and the shorter forms, resolved against
 *    the repository;
 *  - a table of opened disks shared by every connection, so a disk's fixed
 *    index is in memory once however many clients read it;
 *  - the list of exports with their descriptions;
 *  - per-connection detection of sequential access, which decides what to
 *    read ahead.
 *
 * Errors follow the library convention: -1 or NULL with the last error
 * set (recovery/util/util.h).  Nothing here calls nbdkit.
 */
#ifndef BOOTBACK_SERVE_H
#define BOOTBACK_SERVE_H

#include <pthread.h>
#include <stdint.h>

#include "recovery/repo/repo.h"

/* The point part of an export name, "VM@TIME" at the longest. */
#define SERVE_POINT_MAX (VM_NAME_MAX + 1 + TIMESTAMP_LEN)

/* Longest canonical export name: VM (128) '@' TIME (16) '/' DISK (64). */
#define SERVE_NAME_MAX (128 + 1 + 16 + 1 + 64 + 1)

/* ---- export names ------------------------------------------------------- */

/* Split an export name into its point part and its disk part:
 *   "VM@TIME/DISK", "VM@latest/DISK", "VM/DISK", "VM@TIME", "VM@latest", "VM"
 * point gets everything before '/' (for repo_point_resolve), disk the name
 * after it, or "" when there is none.  Checks the characters of both
 * (util.h name_is_valid) but not whether they exist.  0, or -1 with the
 * error set. */
int serve_name_split (const char *name, char point[SERVE_POINT_MAX + 1],
                      char disk[DISK_NAME_MAX + 1]);

/* Choose the disk of a point: want if not NULL or "", else "vda" when the
 * point has it, else the point's only disk.  out gets the name.  -1 with
 * an error listing the point's disks if want is missing or the choice is
 * ambiguous. */
int serve_pick_disk (const struct repo_manifest *m, const char *want,
                     char out[DISK_NAME_MAX + 1]);

/* An export name may end in "#HEX", HEX being 64 hex digits: the SHA-256
 * of the disk's index that the client was approved to read (a session of
 * a pooled instant recovery; the plugin's index-sha256= for point=).  The
 * disk is then served only if the index the plugin opened for it is that
 * one.  Split such a name: bare gets the name without "#HEX", *pinned
 * whether there was one, digest its bytes.  0, or -1 with the error set
 * (a '#' not followed by exactly 64 hex digits). */
#define SERVE_PIN_SUFFIX_LEN (1 + 2 * REPO_DIGEST_LEN)
int serve_name_pin (const char *name, char bare[SERVE_NAME_MAX], bool *pinned,
                    uint8_t digest[REPO_DIGEST_LEN]);

/* Resolve an export name (any form above) to its canonical
 * "VM@TIME/DISK" (TIME being the point's id), using default_disk (may be
 * NULL) when the name has no disk.  m (may be NULL) gets the manifest.
 * 0, or -1 with the error naming what does not exist. */
int serve_resolve (struct repo *r, const char *name, const char *default_disk,
                   char canonical[SERVE_NAME_MAX], struct repo_manifest *m);

/* The export to serve when a client asks for the empty name: the latest
 * point of the repository's only VM.  -1 with an error telling the user to
 * name one if the repository holds no VM or several. */
int serve_default_name (struct repo *r, const char *default_disk,
                        char canonical[SERVE_NAME_MAX]);

/* A one-line description of a disk of a point, e.g.
 *   "VM web1, disk vda, 2026-11-22 04:55:06 UTC, 2.00 GiB (full, crash-consistent)"
 * written into buf (always NUL-terminated). */
void serve_describe (const struct repo_manifest *m,
                     const struct repo_disk_info *di, char *buf, size_t len);

/* Call fn for every disk of every restore point, VMs in name order, points
 * oldest first, with the canonical name and the description.  Stops and
 * returns -1 if fn does (fn sets the error), or on a repository error;
 * unreadable manifests are skipped.  Returns the number of exports. */
typedef int (*serve_export_fn) (void *opaque, const char *name,
                                const char *description);
int serve_list (struct repo *r, serve_export_fn fn, void *opaque);

/* ---- the table of opened disks --------------------------------------------- */

/* Thread-safe.  Each get returns the disk with one reference held; the
 * last put closes it, unless the disk was pinned.  The table borrows r,
 * which must outlive it. */
struct serve_disks;
struct serve_disks *serve_disks_new (struct repo *r);
/* Close every disk (pinned ones too).  No reference may remain in use. */
void serve_disks_free (struct serve_disks *t);
/* Open (or share) the disk named by an export name, resolved as
 * serve_resolve does; m (may be NULL) gets the point's manifest.  pin:
 * keep it open even when unreferenced (the disk given with point= at
 * start-up).  want (may be NULL): the SHA-256 of the index the caller was
 * approved to serve; the disk is returned only if the index it was opened
 * with (checked against the manifest of that open, and kept in memory
 * from then on) is that one, else NULL with an error naming the disk and
 * both digests.  NULL with the error set. */
struct repo_disk *serve_disks_get (struct serve_disks *t, const char *name,
                                   const char *default_disk, bool pin,
                                   const uint8_t *want,
                                   struct repo_manifest *m);
/* Drop a reference taken by serve_disks_get.  NULL is fine. */
void serve_disks_put (struct serve_disks *t, struct repo_disk *d);
/* How many disks are open (for tests). */
size_t serve_disks_count (struct serve_disks *t);

/* ---- sequential access and read-ahead ---------------------------------------- */

/* One per connection.  Requests of one connection arrive on several
 * threads and slightly out of order, so "sequential" means: a request
 * that starts no further than one chunk past the furthest end seen so
 * far and ends past it takes the run further (counts); one that starts
 * no more than SERVE_SEQ_BEHIND bytes before that end and ends before it
 * (a late request of the run, or a random read landing there) neither
 * counts nor breaks the run; any other starts a new run.  After
 * SERVE_SEQ_STREAK requests of a run took it further, the chunks up to
 * ra_bytes past the furthest end are worth reading ahead, each one
 * once. */
#define SERVE_SEQ_STREAK 3
#define SERVE_SEQ_BEHIND (64 * 1024 * 1024)
struct serve_seq {
  pthread_mutex_t lock;
  uint64_t hi_end;        /* furthest end of the current run */
  uint64_t ra_next;       /* first chunk not yet asked for */
  unsigned streak;        /* sequential requests in a row */
};
void serve_seq_init (struct serve_seq *s);
void serve_seq_destroy (struct serve_seq *s);
/* Note a read of count bytes at offset of a disk of disk_size bytes in
 * chunks of chunk_size.  Sets [*first, *end) to the chunks to read ahead
 * now (empty when *first == *end).  Returns whether the connection is
 * reading sequentially (a run of SERVE_SEQ_STREAK requests or more).
 * Thread-safe. */
bool serve_seq_note (struct serve_seq *s, uint64_t offset, uint32_t count,
                     uint32_t chunk_size, uint64_t disk_size,
                     uint64_t ra_bytes, uint64_t *first, uint64_t *end);

#endif /* BOOTBACK_SERVE_H */
