/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The walk of bootback scan, in the unprivileged child (sandbox.c): the
 * disk read over NBD as a Sleuth Kit image; its partition table (DOS,
 * GPT) and file systems (ext2/3/4, FAT, NTFS, ...) parsed in user space
 * by libtsk; each regular file's bytes matched (match.c).
 *
 * Hostile file systems:
 *  - nothing is resolved through the host: names are read from directory
 *    entries and files opened by inode number inside the image; a guest
 *    symlink is a name with a target string, never followed (its target
 *    is not read at all);
 *  - a file with several links is scanned once (every inode number goes
 *    into a set); on NTFS, the named data streams (alternate data
 *    streams) of files and directories are matched too, as PATH:STREAM,
 *    once per inode (with --since, a file's streams when the file is
 *    scanned: its inode changed or its default data did); a directory reached twice
 *    (a loop) is walked once and noted; deeper than max_depth is not
 *    walked, and noted;
 *  - files larger than max_file are named, never counted as clean;
 *  - journals are never replayed (libtsk reads the on-disk state); an
 *    ext3/4 file system whose superblock says the journal needs recovery
 *    is scanned as it is and the report says "dirty journal";
 *  - a partition whose file system libtsk does not know, or cannot read,
 *    is "not scanned" with libtsk's reason; XFS goes to xfs.c, an LVM
 *    physical volume to lvm.c (each logical volume comes back here,
 *    walk_volume; a physical volume inside one is not read).
 *
 * --since: a file is scanned if any of its data runs overlaps a chunk that
 * changed between the two points, or its inode changed (ctime) after the
 * earlier point, or its data has no runs (resident, inline).  Others are
 * counted as "unchanged".
 *
 * Output: one JSON line per match and per partition to out.
 */
#include <search.h>

#include <libnbd.h>
#include <tsk/libtsk.h>
#undef MIN                      /* util.h's */
#undef MAX

#include "recovery/scan/scan-int.h"

/* What the walk reads (the NBD export, a logical volume) as a libtsk
 * image. */
struct src_img {
  TSK_IMG_INFO img;             /* first: libtsk casts */
  const struct scan_src *src;
};

static ssize_t
img_read (TSK_IMG_INFO *img, TSK_OFF_T off, char *buf, size_t len)
{
  struct src_img *n = (struct src_img *) img;

  if (off < 0 || off >= img->size)
    return -1;
  if ((uint64_t) len > (uint64_t) (img->size - off))
    len = img->size - off;
  if (n->src->pread (n->src->opaque, buf, len, off) == -1)
    return -1;
  return len;
}

static void
img_close (TSK_IMG_INFO *img)
{
  free (img);                   /* tsk_img_close's last step */
}

static void
img_stat (TSK_IMG_INFO *img, FILE *f)
{
}

static int
cmp_inum (const void *a, const void *b)
{
  TSK_INUM_T x = *(const TSK_INUM_T *) a, y = *(const TSK_INUM_T *) b;
  return x < y ? -1 : x > y;
}

/* Add inum to the set: false if it was there. */
bool
seen_add (struct walk *w, TSK_INUM_T inum)
{
  TSK_INUM_T *k = xmalloc (sizeof *k), **r;

  *k = inum;
  r = tsearch (k, &w->seen, cmp_inum);
  if (r && *r != k) {
    free (k);
    return false;
  }
  return true;
}

void
emit (struct walk *w, json_t *o)
{
  char *s = json_dumps (o, JSON_COMPACT);

  if (s) {
    fprintf (w->out, "%s\n", s);
    fflush (w->out);
    free (s);
  }
  json_decref (o);
}

void
note (struct walk *w, const char *fmt, const char *path)
{
  if (json_array_size (w->notes) < 100) {
    CLEANUP_FREE char *s = xasprintf (fmt, path);
    json_array_append_new (w->notes, json_string (s));
  }
}

void
on_match (void *opaque, const char *engine, const char *rule)
{
  struct walk *w = opaque;

  if (!rule) {
    note (w, "%s: an engine could not finish matching it", w->path);
    w->skipped++;
    return;
  }
  emit (w, json_pack ("{s:s, s:s, s:s, s:s, s:i, s:s, s:s?}", "kind", "match",
                      "path", w->path, "rule", rule, "engine", engine,
                      "partition", w->part, "fs", w->fstype,
                      "volume", w->volume));
}

/* --since: does the file need scanning? */
static bool
changed (struct walk *w, TSK_FS_FILE *f)
{
  const struct scan_opts *o = w->o;
  const TSK_FS_ATTR *a;
  const TSK_FS_ATTR_RUN *run;
  TSK_FS_INFO *fs = w->fs;
  uint64_t bs = fs->block_size, first, last, i;

  if (!o->changed || w->volume || f->meta->ctime >= o->since_time)
    return true;                /* a logical volume: no chunk map (lvm.c) */
  a = tsk_fs_file_attr_get (f);
  if (!a || !(a->flags & TSK_FS_ATTR_NONRES))
    return true;
  for (run = a->nrd.run; run; run = run->next) {
    if (run->flags & (TSK_FS_ATTR_RUN_FLAG_SPARSE | TSK_FS_ATTR_RUN_FLAG_FILLER))
      continue;
    first = ((uint64_t) fs->offset + run->addr * bs) / o->chunk_size;
    last = ((uint64_t) fs->offset + (run->addr + run->len) * bs - 1)
      / o->chunk_size;
    for (i = first; i <= last; i++)
      if (i >= o->nchunks || o->changed[i])
        return true;
  }
  return false;
}

/* Match len bytes of w->buf as path. */
static void
match_buf (struct walk *w, size_t len, const char *path)
{
  w->path = path;
  engines_scan (w->e, w->buf, len, on_match, w);
  w->files++;
  w->bytes += len;
}

/* The file's default data. */
static void
scan_data (struct walk *w, TSK_FS_FILE *f, const char *path)
{
  uint64_t size = f->meta->size;
  ssize_t n;

  if (size > w->o->max_file) {
    w->skipped++;
    note (w, "%s: not scanned, larger than the file size limit", path);
    return;
  }
  n = size ? tsk_fs_file_read (f, 0, w->buf, size, TSK_FS_FILE_READ_FLAG_NONE)
    : 0;
  if (n < 0 || (uint64_t) n != size) {
    w->skipped++;
    note (w, "%s: not scanned, its data cannot be read", path);
    tsk_error_reset ();
    return;
  }
  match_buf (w, size, path);
}

/* NTFS: the named $DATA streams (alternate data streams) of a file or a
 * directory, each matched as PATH:STREAM, once per inode.  Not those of
 * the file system's own files (MFT entries 0-23 but the root directory,
 * and $Extend's: $BadClus:$Bad spans the volume, $UsnJrnl:$J is a sparse
 * journal), whose default data is still matched like any file's. */
#define STREAMS_KEY (1ull << 63)        /* in the seen set, beside inodes */
#define NTFS_FIRST_USER_ENTRY 24
static void
scan_streams (struct walk *w, TSK_FS_FILE *f, const char *path)
{
  TSK_FS_INFO *fs = w->fs;
  int i, n;

  if (!TSK_FS_TYPE_ISNTFS (fs->ftype) ||
      (f->meta->addr < NTFS_FIRST_USER_ENTRY && f->meta->addr != fs->root_inum) ||
      strncmp (path, "/$Extend/", 9) == 0 ||
      !seen_add (w, f->meta->addr | STREAMS_KEY))
    return;
  n = tsk_fs_file_attr_getsize (f);
  for (i = 0; i < n; i++) {
    const TSK_FS_ATTR *a = tsk_fs_file_attr_get_idx (f, i);
    CLEANUP_FREE char *ename = NULL, *spath = NULL;
    ssize_t got;
    if (!a || a->type != TSK_FS_ATTR_TYPE_NTFS_DATA || !a->name ||
        !a->name[0] || strcmp (a->name, "$Data") == 0)
      continue;
    ename = scan_escape (a->name, strlen (a->name));
    spath = xasprintf ("%s:%s", path, ename);
    w->streams++;
    if ((uint64_t) a->size > w->o->max_file) {
      w->skipped++;
      note (w, "%s: stream not scanned, larger than the file size limit", spath);
      continue;
    }
    got = a->size ? tsk_fs_attr_read (a, 0, w->buf, a->size,
                                      TSK_FS_FILE_READ_FLAG_NONE) : 0;
    if (got < 0 || got != a->size) {
      w->skipped++;
      note (w, "%s: stream not scanned, its data cannot be read", spath);
      tsk_error_reset ();
      continue;
    }
    match_buf (w, a->size, spath);
  }
}

static void
scan_file (struct walk *w, TSK_FS_FILE *f, const char *path)
{
  /* by inode, whatever its link count says: a crafted count of 1 on a
   * file named a million times must not make it scanned a million times */
  if (!seen_add (w, f->meta->addr)) {
    w->links++;
    return;
  }
  if (!changed (w, f)) {
    w->unchanged++;
    return;
  }
  scan_data (w, f, path);
  scan_streams (w, f, path);
}

static void walk_dir (struct walk *w, TSK_INUM_T inum, const char *path,
                      unsigned depth);

static void
walk_entry (struct walk *w, TSK_FS_FILE *f, const char *dir, unsigned depth)
{
  const char *name = f->name->name;
  CLEANUP_FREE char *ename = NULL, *path = NULL;

  if (!f->meta || !(f->name->flags & TSK_FS_NAME_FLAG_ALLOC) ||
      strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return;                     /* libtsk's virtual files are neither */
  ename = scan_escape (name, strlen (name));
  path = xasprintf ("%s/%s", dir, ename);
  if (f->meta->type == TSK_FS_META_TYPE_DIR) {
    scan_streams (w, f, path);
    walk_dir (w, f->meta->addr, path, depth + 1);
  }
  else if (f->meta->type == TSK_FS_META_TYPE_REG)
    scan_file (w, f, path);
}

static void
walk_dir (struct walk *w, TSK_INUM_T inum, const char *path, unsigned depth)
{
  TSK_FS_DIR *d;
  size_t i, n;

  if (depth > w->o->max_depth) {
    w->capped++;
    note (w, "%s: deeper than the depth limit, not walked", path);
    return;
  }
  if (!seen_add (w, inum)) {
    w->loops++;
    note (w, "%s: a directory reached twice (a loop), walked once", path);
    return;
  }
  if (!(d = tsk_fs_dir_open_meta (w->fs, inum))) {
    note (w, "%s: directory cannot be read", *path ? path : "/");
    tsk_error_reset ();
    w->skipped++;
    return;
  }
  n = tsk_fs_dir_getsize (d);
  for (i = 0; i < n; i++) {
    TSK_FS_FILE *f = tsk_fs_dir_get (d, i);
    if (f) {
      walk_entry (w, f, path, depth);
      tsk_fs_file_close (f);
    }
  }
  tsk_fs_dir_close (d);
}

/* ext3/4: does the superblock at off say the journal needs recovery? */
static bool
ext_dirty (TSK_IMG_INFO *img, TSK_OFF_T off)
{
  unsigned char sb[1024];

  if (tsk_img_read (img, off + 1024, (char *) sb, sizeof sb) != sizeof sb)
    return false;
  return sb[0x38] == 0x53 && sb[0x39] == 0xef && (sb[0x5c] & 0x4) &&
    (sb[0x60] & 0x4);
}

/* A volume libtsk does not read, by its magic: its type in *type and why
 * it is not scanned, or NULL ("unknown"). */
static const char *
unread_volume (TSK_IMG_INFO *img, TSK_OFF_T off, const char **type)
{
  char b[1024];

  *type = "unknown";
  if (tsk_img_read (img, off, b, sizeof b) != sizeof b)
    return NULL;
  if (memcmp (b, "XFSB", 4) == 0)
    return *type = "xfs";
  if (memcmp (b + 512, "LABELONE", 8) == 0) {
    *type = "lvm2";
    return "an LVM physical volume inside a logical volume: not read";
  }
  if (memcmp (b, "LUKS\xba\xbe", 6) == 0) {
    *type = "luks";
    return "LUKS encrypted volume: cannot be read without its key";
  }
  if (memcmp (b + 3, "-FVE-FS-", 8) == 0) {
    *type = "bitlocker";
    return "BitLocker encrypted volume: cannot be read without its key";
  }
  return NULL;
}

void
part_result (FILE *out, int part, const char *volume, const char *fs,
             const char *status, const char *reason, struct walk *w)
{
  json_t *o = json_pack ("{s:s, s:i, s:s, s:s, s:s?}", "kind", "partition",
                         "partition", part, "fs", fs, "status", status,
                         "volume", volume);

  if (reason)
    json_object_set_new (o, "reason", json_string (reason));
  if (w) {
    json_object_set_new (o, "files", json_integer (w->files));
    json_object_set_new (o, "bytes", json_integer (w->bytes));
    json_object_set_new (o, "skipped", json_integer (w->skipped));
    json_object_set_new (o, "streams", json_integer (w->streams));
    json_object_set_new (o, "unchanged", json_integer (w->unchanged));
    json_object_set_new (o, "links_scanned_once", json_integer (w->links));
    json_object_set_new (o, "loops", json_integer (w->loops));
    json_object_set_new (o, "depth_capped", json_integer (w->capped));
    json_object_set_new (o, "notes", json_incref (w->notes));
  }
  {
    struct walk tmp = { .out = out };
    emit (&tmp, o);
  }
}

static void
free_key (void *k)
{
  free (k);
}

/* A volume libtsk does not open: XFS (xfs.c), LVM (lvm.c, not inside a
 * logical volume), or "not scanned" with the reason. */
static void
walk_other (TSK_IMG_INFO *img, TSK_OFF_T off, uint64_t len, int part,
            const char *volume, const struct scan_opts *o,
            struct scan_engines *e, FILE *out)
{
  const struct scan_src *src = ((struct src_img *) img)->src;
  const char *type, *why = unread_volume (img, off, &type);

  if (why && strcmp (type, "xfs") == 0) {
    tsk_error_reset ();
    if (xfs_walk (src, off, len, part, volume, o, e, out) == 0)
      return;
    why = error_msg ();
  }
  if (why && strcmp (type, "lvm2") == 0 && !volume) {
    tsk_error_reset ();
    lvm_walk (src, off, len, part, o, e, out);
    return;
  }
  part_result (out, part, volume, type, "not scanned",
               why ? why : tsk_error_get (), NULL);
  tsk_error_reset ();
}

/* Scan the file system at byte offset off, len bytes (partition part,
 * logical volume volume or NULL). */
static void
walk_fs (TSK_IMG_INFO *img, TSK_OFF_T off, uint64_t len, int part,
         const char *volume, const struct scan_opts *o,
         struct scan_engines *e, FILE *out)
{
  struct walk w = { .o = o, .e = e, .out = out, .part = part,
                    .volume = volume };
  TSK_FS_INFO *fs;
  bool dirty;

  if (!(fs = tsk_fs_open_img (img, off, TSK_FS_TYPE_DETECT))) {
    walk_other (img, off, len, part, volume, o, e, out);
    return;
  }
  w.fs = fs;
  w.fstype = tsk_fs_type_toname (fs->ftype);
  dirty = (fs->ftype & TSK_FS_TYPE_EXT_DETECT) && ext_dirty (img, off);
  w.notes = json_array ();
  if (dirty)
    json_array_append_new (w.notes, json_string ("dirty journal: read as it "
                                                 "is on disk, not replayed"));
  if (o->changed && volume)
    json_array_append_new (w.notes, json_string (LVM_SINCE_NOTE));
  w.buf = malloc (o->max_file ? o->max_file : 1);
  if (!w.buf) {
    part_result (out, part, volume, w.fstype, "not scanned", "out of memory",
                 NULL);
  } else {
    TSK_FS_FILE *root = tsk_fs_file_open_meta (fs, NULL, fs->root_inum);
    if (root) {
      scan_streams (&w, root, "/");
      tsk_fs_file_close (root);
    }
    walk_dir (&w, fs->root_inum, "", 0);
    part_result (out, part, volume, w.fstype, "scanned", NULL, &w);
  }
  free (w.buf);
  json_decref (w.notes);
  tdestroy (w.seen, free_key);
  tsk_fs_close (fs);
}

/* src as a libtsk image; NULL with the error. */
static TSK_IMG_INFO *
src_open (const struct scan_src *src)
{
  struct src_img *n = calloc (1, sizeof *n);
  TSK_IMG_INFO *img;

  if (!n) {
    error_setx ("out of memory");
    return NULL;
  }
  n->src = src;
  img = tsk_img_open_external (n, src->size, 512, img_read, img_close,
                               img_stat);
  if (!img)
    error_setx ("libtsk: %s", tsk_error_get ());
  return img;
}

void
walk_volume (const struct scan_src *src, int part, const char *volume,
             const struct scan_opts *o, struct scan_engines *e, FILE *out)
{
  TSK_IMG_INFO *img = src_open (src);

  if (!img) {
    part_result (out, part, volume, "unknown", "not scanned", error_msg (),
                 NULL);
    tsk_error_reset ();
    return;
  }
  walk_fs (img, 0, src->size, part, volume, o, e, out);
  tsk_img_close (img);
}

static int
nbd_src_pread (void *nbd, void *buf, size_t len, uint64_t off)
{
  return nbd_pread (nbd, buf, len, off, 0) == -1 ? -1 : 0;
}

int
walk_disk (void *nbd, const struct scan_opts *o, struct scan_engines *e,
           FILE *out)
{
  struct scan_src src = { .pread = nbd_src_pread, .opaque = nbd };
  TSK_IMG_INFO *img;
  TSK_VS_INFO *vs;
  int64_t size = nbd_get_size (nbd);
  TSK_PNUM_T i;
  int part = 0;

  if (size < 0) {
    error_setx ("the NBD export has no size");
    return -1;
  }
  src.size = size;
  if (!(img = src_open (&src)))
    return -1;
  if (!(vs = tsk_vs_open (img, 0, TSK_VS_TYPE_DETECT))) {
    tsk_error_reset ();
    walk_fs (img, 0, size, 0, NULL, o, e, out);
  } else {
    for (i = 0; i < vs->part_count; i++) {
      const TSK_VS_PART_INFO *p = tsk_vs_part_get (vs, i);
      if (!p || !(p->flags & TSK_VS_PART_FLAG_ALLOC))
        continue;
      part++;
      walk_fs (img, (TSK_OFF_T) p->start * vs->block_size,
               (uint64_t) p->len * vs->block_size, part, NULL, o, e, out);
    }
    tsk_vs_close (vs);
  }
  tsk_img_close (img);
  return 0;
}
