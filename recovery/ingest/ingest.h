/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest: moving disk data between QEMU-readable images and the
 * repository.  Import reads any image QEMU reads (raw, qcow2, vmdk, vhdx,
 * vpc, ...) through a private qemu-nbd and libnbd, skipping what block
 * status reports as zero; restore writes a point's disk back to a raw or
 * qcow2 file (through qemu-nbd for qcow2), sparse where the data is zero.
 *
 * Errors: -1 and the last error (util.h) set.
 */
#ifndef BOOTBACK_INGEST_H
#define BOOTBACK_INGEST_H

#include "recovery/repo/repo.h"

/* ---- qemu.c: qemu-img and qemu-nbd helpers ---------------------------- */

/* What qemu-img says of an image: its format and virtual size.  -1 with
 * qemu-img's own message in the error if it cannot read it. */
int qemu_img_info (const char *image, char *format, size_t format_len,
                   uint64_t *virtual_size);

/* A private qemu-nbd serving one image on a unix socket in a fresh 0700
 * directory; the socket accepts connections when qemu_nbd_start returns.
 * qemu_nbd_stop kills it by PID and removes the directory. */
struct qemu_nbd {
  pid_t pid;
  char dir[64];
  char socket[96];
};
int qemu_nbd_start (struct qemu_nbd *q, const char *image, const char *format,
                    bool readonly);
void qemu_nbd_stop (struct qemu_nbd *q);

/* ---- import.c ---------------------------------------------------------- */

struct ingest_disk {
  const char *image;      /* path of the image */
  const char *name;       /* disk name in the point, e.g. "vda" */
};

struct ingest_opts {
  const char *vm;
  time_t time;            /* 0 = now */
  const char *domain_xml; /* contents, or NULL */
  int threads;            /* 0 = number of CPUs (at least 2) */
};

struct ingest_result {
  uint64_t bytes_total;    /* sum of virtual sizes */
  uint64_t bytes_read;     /* read from the images (zeros skipped) */
  uint64_t zero_bytes;     /* known zero, not read or not stored */
};

/* Import one restore point made of n disks.  Steps 1-3 of the commit
 * protocol happen inside; on success m describes the new point (the caller
 * then records it in the catalog, step 4).  On error nothing is visible. */
int ingest_import (struct repo *r, const struct ingest_opts *o,
                   const struct ingest_disk *disks, size_t n,
                   struct repo_manifest *m, struct ingest_result *res);

/* ---- restore.c ----------------------------------------------------------- */

/* Write disk `disk` of point vm@id to `to` (must not exist) in format
 * "raw" or "qcow2".  Written to to.part and renamed when complete and
 * flushed: on any error (a bad chunk names chunk, point, disk, range) the
 * partial file is removed and nothing is left at `to`. */
int ingest_restore (struct repo *r, const char *vm, const char *id,
                    const char *disk, const char *to, const char *format,
                    int threads);

#endif /* BOOTBACK_INGEST_H */
