/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * XFS for bootback scan, which libtsk 4.11 does not read: libfsxfs (a
 * read-only user-space XFS reader), over the same NBD connection as a
 * libbfio handle, in the same unprivileged child.  The rules of walk.c
 * hold: entries are opened inside the file system, symlinks are never
 * followed, every inode is scanned once, loops and depth are capped, the
 * log is never replayed.  libfsxfs (20201117) gives no extent map, so
 * --since cannot tell which XFS files changed: it reads every file (said
 * in a note).  The inode change time is no guide: the guest sets it (a
 * clock set back, xfs_db, or one that simply runs behind), and before, a
 * file whose ctime was older than the earlier point was never read, so a
 * payload back-dated that way made the point clean.
 * Names are as libfsxfs gives them (UTF-8); an entry whose name it cannot
 * convert is skipped and noted.
 */
#include <search.h>
#include <sys/stat.h>

#include <libbfio.h>
#include <libfsxfs.h>

#include "recovery/scan/scan-int.h"

static void xfs_dir (struct walk *w, libfsxfs_file_entry_t *d,
                     const char *path, unsigned depth);

static void
xfs_file (struct walk *w, libfsxfs_file_entry_t *f, const char *path)
{
  size64_t size = 0;

  libfsxfs_file_entry_get_size (f, &size, NULL);
  if (size > w->o->max_file) {
    w->skipped++;
    note (w, "%s: not scanned, larger than the file size limit", path);
    return;
  }
  if (size && libfsxfs_file_entry_read_buffer_at_offset (f, w->buf, size, 0,
                                                         NULL) != (ssize_t) size) {
    w->skipped++;
    note (w, "%s: not scanned, its data cannot be read", path);
    return;
  }
  w->path = path;
  engines_scan (w->e, w->buf, size, on_match, w);
  w->files++;
  w->bytes += size;
}

static void
xfs_entry (struct walk *w, libfsxfs_file_entry_t *f, const char *dir,
           unsigned depth)
{
  CLEANUP_FREE char *name = NULL, *ename = NULL, *path = NULL;
  uint64_t inum = 0;
  uint16_t mode = 0;
  size_t n = 0;

  if (libfsxfs_file_entry_get_utf8_name_size (f, &n, NULL) != 1 || n == 0 ||
      n > 4096 ||
      libfsxfs_file_entry_get_utf8_name (f, (uint8_t *) (name = xmalloc (n)),
                                         n, NULL) != 1) {
    w->skipped++;
    note (w, "%s: an entry whose name cannot be read, skipped", dir);
    return;
  }
  ename = scan_escape (name, strlen (name));
  path = xasprintf ("%s/%s", dir, ename);
  libfsxfs_file_entry_get_file_mode (f, &mode, NULL);
  libfsxfs_file_entry_get_inode_number (f, &inum, NULL);
  if (S_ISDIR (mode))
    xfs_dir (w, f, path, depth + 1);
  else if (S_ISREG (mode)) {
    if (!seen_add (w, inum))
      w->links++;
    else
      xfs_file (w, f, path);
  }
}

static void
xfs_dir (struct walk *w, libfsxfs_file_entry_t *d, const char *path,
         unsigned depth)
{
  uint64_t inum = 0;
  int i, n = 0;

  if (depth > w->o->max_depth) {
    w->capped++;
    note (w, "%s: deeper than the depth limit, not walked", path);
    return;
  }
  libfsxfs_file_entry_get_inode_number (d, &inum, NULL);
  if (!seen_add (w, inum)) {
    w->loops++;
    note (w, "%s: a directory reached twice (a loop), walked once", path);
    return;
  }
  if (libfsxfs_file_entry_get_number_of_sub_file_entries (d, &n, NULL) != 1) {
    w->skipped++;
    note (w, "%s: directory cannot be read", *path ? path : "/");
    return;
  }
  for (i = 0; i < n; i++) {
    libfsxfs_file_entry_t *f = NULL;
    if (libfsxfs_file_entry_get_sub_file_entry_by_index (d, i, &f, NULL) == 1) {
      xfs_entry (w, f, path, depth);
      libfsxfs_file_entry_free (&f, NULL);
    }
  }
}

static void
free_key (void *k)
{
  free (k);
}

int
xfs_walk (const struct scan_src *src, uint64_t off, uint64_t len, int part,
          const char *volume, const struct scan_opts *o,
          struct scan_engines *e, FILE *out)
{
  struct bfio_range x = { .src = src, .base = off, .size = len };
  struct walk w = { .o = o, .e = e, .out = out, .part = part,
                    .volume = volume, .fstype = "xfs" };
  libbfio_handle_t *h = NULL;
  libfsxfs_volume_t *v = NULL;
  libfsxfs_file_entry_t *root = NULL;
  int rc = -1;

  if (bfio_range_handle (&x, (void **) &h) == -1 ||
      libfsxfs_volume_initialize (&v, NULL) != 1 ||
      libfsxfs_volume_open_file_io_handle (v, h, LIBFSXFS_OPEN_READ, NULL) != 1 ||
      libfsxfs_volume_get_root_directory (v, &root, NULL) != 1) {
    error_setx ("xfs: libfsxfs cannot read this file system");
    goto out;
  }
  w.notes = json_array ();
  if (o->changed)
    json_array_append_new (w.notes, json_string (volume ? LVM_SINCE_NOTE
                                                 : XFS_SINCE_NOTE));
  if (!(w.buf = malloc (o->max_file ? o->max_file : 1)))
    part_result (out, part, volume, "xfs", "not scanned", "out of memory",
                 NULL);
  else {
    xfs_dir (&w, root, "", 0);
    part_result (out, part, volume, "xfs", "scanned", NULL, &w);
  }
  rc = 0;
 out:
  free (w.buf);
  json_decref (w.notes);
  tdestroy (w.seen, free_key);
  libfsxfs_file_entry_free (&root, NULL);
  if (v) {
    libfsxfs_volume_close (v, NULL);
    libfsxfs_volume_free (&v, NULL);
  }
  libbfio_handle_free (&h, NULL);
  return rc;
}
