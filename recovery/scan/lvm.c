/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LVM for bootback scan: a physical volume (a partition of type LVM, or a
 * whole disk) read by libvslvm (user space, read-only) over the same
 * connection, in the same unprivileged child as the other readers
 * (libvslvm parses hostile metadata too).  Each logical volume of its
 * volume group is scanned like a partition (walk_volume), named "VG/LV"
 * in the report; the first physical volume of the group is the only one
 * read, so a logical volume with data on another one reads as
 * unreadable, never as clean.  A logical volume libvslvm does not map
 * (thin pools and thin volumes, RAID, mirrors, snapshots: no segment it
 * can read) is "not scanned" with the reason.  An LVM physical volume
 * inside a logical volume is not read (walk.c).  With --since, every file
 * of a logical volume is read (LVM_SINCE_NOTE): a file system's offsets
 * are the logical volume's, which the changed chunks of the disk are not
 * mapped to.
 */
#include <libbfio.h>
#define LIBVSLVM_HAVE_BFIO
#include <libvslvm.h>

#include "recovery/scan/scan-int.h"

#define LVM_NAME_MAX 128        /* LVM's own limit on VG and LV names */

/* libvslvm's last error in one line (freed). */
static const char *
lvm_error (libvslvm_error_t **err, char *buf, size_t len)
{
  char *nl;

  snprintf (buf, len, "libvslvm could not read it");
  if (err && *err) {
    libvslvm_error_sprint (*err, buf, len);
    libvslvm_error_free (err);
    for (nl = buf; (nl = strchr (nl, '\n')); )
      *nl = ' ';
  }
  return buf;
}

static int
lv_pread (void *lv, void *buf, size_t len, uint64_t off)
{
  return libvslvm_logical_volume_read_buffer_at_offset (lv, buf, len, off,
                                                        NULL)
    == (ssize_t) len ? 0 : -1;
}

/* Why libvslvm cannot read logical volume lv, or NULL if it can: every
 * segment must have stripes. */
static const char *
lv_unreadable (libvslvm_logical_volume_t *lv)
{
  int n = 0, i, stripes;

  if (libvslvm_logical_volume_get_number_of_segments (lv, &n, NULL) != 1 ||
      n <= 0)
    return "not a linear or striped logical volume (thin pool or volume, "
      "RAID, mirror, snapshot, ...): not read by libvslvm";
  for (i = 0; i < n; i++) {
    libvslvm_segment_t *sg = NULL;
    stripes = 0;
    if (libvslvm_logical_volume_get_segment (lv, i, &sg, NULL) != 1 ||
        libvslvm_segment_get_number_of_stripes (sg, &stripes, NULL) != 1 ||
        stripes <= 0) {
      libvslvm_segment_free (&sg, NULL);
      return "a segment that is not linear or striped (thin pool or "
        "volume, RAID, mirror, snapshot, ...): not read by libvslvm";
    }
    libvslvm_segment_free (&sg, NULL);
  }
  return NULL;
}

/* Scan logical volume i of vg (named vgname) as partition part. */
static void
lv_walk (libvslvm_volume_group_t *vg, const char *vgname, int i, int part,
         const struct scan_opts *o, struct scan_engines *e, FILE *out)
{
  libvslvm_logical_volume_t *lv = NULL;
  char name[LVM_NAME_MAX + 1] = "?", buf[512];
  CLEANUP_FREE char *ename = NULL, *volume = NULL;
  libvslvm_error_t *err = NULL;
  const char *why;
  size64_t size = 0;

  if (libvslvm_volume_group_get_logical_volume (vg, i, &lv, &err) != 1) {
    CLEANUP_FREE char *msg = NULL;
    volume = xasprintf ("%s/#%d", vgname, i);   /* no name without it */
    msg = xasprintf ("logical volume %d of %s: libvslvm cannot map it (a "
                     "thin pool or thin volume, RAID, mirror, snapshot, "
                     "...): %s", i + 1, vgname, lvm_error (&err, buf,
                                                           sizeof buf));
    part_result (out, part, volume, "lvm2", "not scanned", msg, NULL);
    return;
  }
  libvslvm_logical_volume_get_name (lv, name, sizeof name, NULL);
  name[LVM_NAME_MAX] = '\0';
  ename = scan_escape (name, strnlen (name, LVM_NAME_MAX));
  volume = xasprintf ("%s/%s", vgname, ename);
  if ((why = lv_unreadable (lv)) ||
      libvslvm_logical_volume_get_size (lv, &size, NULL) != 1)
    part_result (out, part, volume, "lvm2", "not scanned",
                 why ? why : "its size cannot be read", NULL);
  else {
    struct scan_src src = { .pread = lv_pread, .opaque = lv, .size = size };
    walk_volume (&src, part, volume, o, e, out);
  }
  libvslvm_logical_volume_free (&lv, NULL);
}

/* Open the physical volume with r's handle (*hm, the caller's to free)
 * for the metadata, p's (given to a pool) for the data.  NULL with why in
 * buf. */
static libvslvm_handle_t *
lvm_open (struct bfio_range *r, struct bfio_range *p, libbfio_handle_t **hm,
          libbfio_pool_t **pool, char *buf, size_t len)
{
  libvslvm_handle_t *h = NULL;
  libbfio_handle_t *hd = NULL;
  libvslvm_error_t *err = NULL;
  int entry;

  snprintf (buf, len, "libvslvm could not read it");
  if (bfio_range_handle (r, (void **) hm) == -1 ||
      bfio_range_handle (p, (void **) &hd) == -1 ||
      libbfio_pool_initialize (pool, 0, 0, NULL) != 1 ||
      libbfio_pool_append_handle (*pool, &entry, hd, LIBBFIO_OPEN_READ,
                                  NULL) != 1)
    goto err;
  hd = NULL;                    /* the pool's */
  if (libvslvm_handle_initialize (&h, &err) != 1 ||
      libvslvm_handle_open_file_io_handle (h, *hm, LIBVSLVM_OPEN_READ,
                                           &err) != 1 ||
      libvslvm_handle_open_physical_volume_files_file_io_pool (h, *pool,
                                                               &err) != 1) {
    lvm_error (&err, buf, len);
    goto err;
  }
  return h;
 err:
  libbfio_handle_free (&hd, NULL);
  libvslvm_handle_free (&h, NULL);
  return NULL;
}

void
lvm_walk (const struct scan_src *src, uint64_t off, uint64_t len, int part,
          const struct scan_opts *o, struct scan_engines *e, FILE *out)
{
  struct bfio_range meta = { .src = src, .base = off, .size = len };
  struct bfio_range data = meta;
  libbfio_pool_t *pool = NULL;
  libbfio_handle_t *hm = NULL;
  libvslvm_volume_group_t *vg = NULL;
  libvslvm_error_t *err = NULL;
  char buf[512], name[LVM_NAME_MAX + 1] = "?";
  CLEANUP_FREE char *vgname = NULL;
  libvslvm_handle_t *h = lvm_open (&meta, &data, &hm, &pool, buf,
                                   sizeof buf);
  int n = 0, i;

  if (!h || libvslvm_handle_get_volume_group (h, &vg, &err) != 1 ||
      libvslvm_volume_group_get_number_of_logical_volumes (vg, &n, &err) != 1) {
    if (h)
      lvm_error (&err, buf, sizeof buf);
    part_result (out, part, NULL, "lvm2", "not scanned", buf, NULL);
    goto out;
  }
  libvslvm_volume_group_get_name (vg, name, sizeof name, NULL);
  name[LVM_NAME_MAX] = '\0';
  vgname = scan_escape (name, strnlen (name, LVM_NAME_MAX));
  if (n == 0)
    part_result (out, part, vgname, "lvm2", "not scanned",
                 "an LVM volume group without logical volumes", NULL);
  for (i = 0; i < n; i++)
    lv_walk (vg, vgname, i, part, o, e, out);
 out:
  libvslvm_volume_group_free (&vg, NULL);
  if (h) {
    libvslvm_handle_close (h, NULL);
    libvslvm_handle_free (&h, NULL);
  }
  libbfio_pool_free (&pool, NULL);
  libbfio_handle_free (&hm, NULL);
}
