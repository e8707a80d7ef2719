/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A run of bytes the walk reads (struct scan_src: the disk over NBD, or a
 * logical volume) as a read-only libbfio handle, for the libyal readers
 * (libfsxfs in xfs.c, libvslvm in lvm.c), in the scanning child.
 */
#include <libbfio.h>

#include "recovery/scan/scan-int.h"

static int
io_free (intptr_t **h, libbfio_error_t **err)
{
  return 1;                     /* the caller's (struct bfio_range) */
}

static int
io_open (intptr_t *h, int flags, libbfio_error_t **err)
{
  return 1;
}

static int
io_close (intptr_t *h, libbfio_error_t **err)
{
  return 0;
}

static ssize_t
io_read (intptr_t *h, uint8_t *buf, size_t len, libbfio_error_t **err)
{
  struct bfio_range *x = (struct bfio_range *) h;

  if (x->pos >= x->size)
    return 0;
  if (len > x->size - x->pos)
    len = x->size - x->pos;
  if (x->src->pread (x->src->opaque, buf, len, x->base + x->pos) == -1)
    return -1;
  x->pos += len;
  return len;
}

static ssize_t
io_write (intptr_t *h, const uint8_t *buf, size_t len, libbfio_error_t **err)
{
  return -1;                    /* read-only */
}

static off64_t
io_seek (intptr_t *h, off64_t off, int whence, libbfio_error_t **err)
{
  struct bfio_range *x = (struct bfio_range *) h;
  int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR
    ? (int64_t) x->pos : (int64_t) x->size, p;

  /* offsets come from hostile volume headers: no signed overflow */
  if (__builtin_add_overflow (base, (int64_t) off, &p) || p < 0)
    return -1;
  x->pos = p;
  return p;
}

static int
io_yes (intptr_t *h, libbfio_error_t **err)
{
  return 1;
}

static int
io_size (intptr_t *h, size64_t *size, libbfio_error_t **err)
{
  *size = ((struct bfio_range *) h)->size;
  return 1;
}

int
bfio_range_handle (struct bfio_range *r, void **handle)
{
  libbfio_handle_t *h = NULL;

  if (libbfio_handle_initialize (&h, (intptr_t *) r, io_free, NULL, io_open,
                                 io_close, io_read, io_write, io_seek, io_yes,
                                 io_yes, io_size, 0, NULL) != 1)
    return -1;
  *handle = h;
  return 0;
}
