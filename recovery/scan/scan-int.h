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
/* ClamAV's scratch directory: dir, made and removed by the parent
 * (sandbox.c). */
int engines_tmpdir (struct scan_engines *e, const char *dir);

/* ---- syscall-filter.c: the child's seccomp filter ------------------- */
/* Install it (the last of the drop, sandbox.c step 2): -1 with the
 * error, which names seccomp if the kernel has none. */
int syscall_filter (void);

/* ---- what the walk reads --------------------------------------------- */
/* A run of bytes: the disk (over NBD) or a logical volume (lvm.c). */
struct scan_src {
  /* len bytes at off into buf: 0, or -1 (nothing to say: the reader
   * names what failed) */
  int (*pread) (void *opaque, void *buf, size_t len, uint64_t off);
  void *opaque;
  uint64_t size;
};
/* A libbfio handle reading [base, base + size) of src (bfio.c).  r is the
 * handle's state, kept by the caller for as long as the handle lives;
 * libbfio_handle_free (or the pool holding it) frees the handle. */
struct bfio_range {
  const struct scan_src *src;
  uint64_t base, size, pos;
};
struct libbfio_handle;
int bfio_range_handle (struct bfio_range *r, void **handle);

/* ---- walk.c: partitions and file systems (libtsk), in the child ------ */
/* One file system's walk. */
struct walk {
  const struct scan_opts *o;
  struct scan_engines *e;
  FILE *out;
  void *fs;                     /* TSK_FS_INFO * (libtsk walks) */
  int part;                     /* partition number, 0 = whole disk */
  const char *volume;           /* "VG/LV" of a logical volume, or NULL */
  const char *fstype;
  void *seen;                   /* tsearch set of inode numbers */
  uint64_t files, bytes, skipped, unchanged, links, loops, capped;
  uint64_t streams;             /* NTFS alternate data streams found */
  json_t *notes;
  char *buf;
  const char *path;             /* the file being matched (escaped) */
};

/* Add an inode number to w's set: false if it was there. */
bool seen_add (struct walk *w, uint64_t inum);
/* Write o (taken) as one JSON line; a note (fmt with one %s) on w. */
void emit (struct walk *w, json_t *o);
void note (struct walk *w, const char *fmt, const char *path);
/* match_fn for engines_scan: one JSON line per match of w->path. */
void on_match (void *opaque, const char *engine, const char *rule);
/* The JSON line of a partition or logical volume (volume: "VG/LV" or
 * NULL; w: its counts, NULL if not scanned). */
void part_result (FILE *out, int part, const char *volume, const char *fs,
                  const char *status, const char *reason, struct walk *w);
/* Scan the XFS file system at byte off, len bytes of src, with libfsxfs
 * (xfs.c).  -1 with the error if it cannot be opened. */
int xfs_walk (const struct scan_src *src, uint64_t off, uint64_t len,
              int part, const char *volume, const struct scan_opts *o,
              struct scan_engines *e, FILE *out);
/* --since on XFS: libfsxfs gives no extent map, and the inode change
 * time is the guest's to set, so every file is read. */
#define XFS_SINCE_NOTE "xfs: --since reads every file (no extent map; " \
  "the guest's inode change times are not trusted)"
/* Scan the file system of src from byte 0 as partition part, volume
 * (walk.c). */
void walk_volume (const struct scan_src *src, int part, const char *volume,
                  const struct scan_opts *o, struct scan_engines *e, FILE *out);
/* --since on a logical volume: its file systems' offsets are not mapped
 * through LVM to the disk's chunks, so every file is read. */
#define LVM_SINCE_NOTE "--since: a logical volume is read in full (its " \
  "chunks are not mapped through LVM)"
/* The LVM physical volume at byte off, len bytes of src (lvm.c): each
 * logical volume scanned like a partition, or not scanned with the
 * reason.  Lines to out. */
void lvm_walk (const struct scan_src *src, uint64_t off, uint64_t len,
               int part, const struct scan_opts *o, struct scan_engines *e,
               FILE *out);

/* Scan the disk read through nbd (a connected struct nbd_handle *),
 * writing one JSON line per partition and per match to out. */
int walk_disk (void *nbd, const struct scan_opts *o,
               struct scan_engines *e, FILE *out);

#endif /* BOOTBACK_SCAN_INT_H */
