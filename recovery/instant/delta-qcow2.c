/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A qcow2 target of migrate --onto (delta.c), read and written only
 * through QEMU's own code: qemu-img info for its size, links and
 * bitmaps, and a private qemu-nbd serving it read-write, reached with
 * libnbd.  No qcow2 is parsed here.
 *
 * The dirty bitmap.  bootback's backups of a running domain create a
 * libvirt checkpoint with each point (backup.c: bootback-<repo>-<point>),
 * that is a persistent dirty bitmap of that name in each qcow2 disk,
 * which QEMU keeps recording every write since the point.  When the
 * target holds the bitmap of the point's checkpoint, the chunks it
 * leaves clean still hold the point's content and need no reading.  It is
 * used only when qemu-img info lists it enabled ("auto"), not "in-use"
 * (a QEMU that died with it open: inconsistent), with a granularity that
 * is a power of two of at least 512 bytes; anything else is said, and
 * every chunk is hashed.  qemu-nbd exports it (--bitmap) as the meta
 * context qemu:dirty-bitmap:NAME, read with block status once, before
 * anything is written (writes through the export mark it too).  delta.c
 * then checks a random sample of the clean chunks against the point
 * (a bitmap that lies: another lineage, an image edited offline).
 *
 * Locking: qemu-nbd holds QEMU's own image locks while it serves the
 * file, so no QEMU (libvirt's or another) opens it meanwhile; it is
 * stopped (SIGTERM: it flushes and closes the image, the bitmaps marked
 * consistent again) before the block copy opens the file.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libnbd.h>

#include "recovery/instant/instant-int.h"
#include "recovery/ingest/ingest-int.h"

#define GRANULARITY_MIN 512

/* The bitmap name of the point's checkpoint in path's qemu-img info, if
 * usable: 1; 0 with why not in note; -1 with the error. */
static int
bitmap_usable (const char *path, const char *checkpoint, char *note, size_t len)
{
  char *argv[] = { "qemu-img", "info", "-U", "--output=json", "-f", "qcow2", "--",
                   (char *) path, NULL };
  CLEANUP_FREE char *out = xcalloc (1, 65536);
  json_auto_t *o = NULL;
  json_t *bm, *b, *fl, *f;
  size_t i, k;
  bool in_use = false, enabled = false;
  json_int_t g;

  if (run_command (argv, out, 65536) != 0 || !(o = json_loads (out, 0, NULL))) {
    error_setx ("%s: qemu-img info failed: %s", path, out);
    return -1;
  }
  bm = json_object_get (json_object_get (json_object_get (o, "format-specific"),
                                         "data"), "bitmaps");
  json_array_foreach (bm, i, b) {
    if (!json_is_string (json_object_get (b, "name")) ||
        strcmp (json_string_value (json_object_get (b, "name")), checkpoint) != 0)
      continue;
    fl = json_object_get (b, "flags");
    json_array_foreach (fl, k, f) {
      in_use |= json_is_string (f) && strcmp (json_string_value (f), "in-use") == 0;
      enabled |= json_is_string (f) && strcmp (json_string_value (f), "auto") == 0;
    }
    g = json_integer_value (json_object_get (b, "granularity"));
    if (in_use)
      snprintf (note, len, "bitmap %s is in use or inconsistent (a QEMU that "
                "stopped without closing the image)", checkpoint);
    else if (!enabled)
      snprintf (note, len, "bitmap %s is disabled: it stopped recording writes",
                checkpoint);
    else if (g < GRANULARITY_MIN || (g & (g - 1)))
      snprintf (note, len, "bitmap %s has an invalid granularity (%lld)", checkpoint,
                (long long) g);
    return !in_use && enabled && g >= GRANULARITY_MIN && !(g & (g - 1));
  }
  snprintf (note, len, "%s has no bitmap %s (the checkpoint of the point)", path,
            checkpoint);
  return 0;
}

int
delta_qcow2_check (const char *path, uint64_t size, const char *disk)
{
  struct qemu_img_info info;
  const char *what, *link;
  char h1[32], h2[32];

  if (qemu_img_info (path, "qcow2", &info) == -1) {
    error_prefix ("%s", path);
    return -1;
  }
  link = qemu_img_link (path, &info, &what);
  if (link) {
    error_setx ("%s has %s (%s): --onto takes a standalone qcow2 image", path, what,
                link);
    return -1;
  }
  if (info.size != size) {
    error_setx ("%s is a qcow2 image of virtual size %s (%" PRIu64 " bytes), disk %s "
                "is %s (%" PRIu64 " bytes): --onto needs a disk of the same size",
                path, human_size (info.size, h1, sizeof h1), info.size, disk,
                human_size (size, h2, sizeof h2), size);
    return -1;
  }
  return 0;
}

/* Is checkpoint the one bootback's backup made with point (backup.c:
 * bootback-<8 hex digits of a repository's uuid>-<point id>)?  The name
 * comes from the point's manifest, which a hostile repository writes: the
 * bitmap of another checkpoint (a later point's) would call chunks clean
 * that are not the point's, and only the sample would look at them. */
static bool
checkpoint_is_points (const char *checkpoint, const char *point)
{
  const char *p = "bootback-";
  size_t i, n = strlen (p);

  if (!point || strncmp (checkpoint, p, n) != 0)
    return false;
  for (i = n; i < n + 8; i++)
    if (!isxdigit ((unsigned char) checkpoint[i]))
      return false;
  return checkpoint[i] == '-' && strcmp (checkpoint + i + 1, point) == 0;
}

int
delta_qcow2_open (struct delta_qcow2 *t, const char *path, const char *checkpoint,
                  const char *point, char *note, size_t len)
{
  const char *ctx[] = { "base:allocation", NULL, NULL };
  CLEANUP_FREE char *bctx = NULL;
  struct chunk_job cj = { .what = path };
  int use = 0;

  memset (t, 0, sizeof *t);
  if (!checkpoint || !checkpoint[0])
    snprintf (note, len, "the point has no checkpoint (not a backup of a running "
              "domain)");
  else if (!checkpoint_is_points (checkpoint, point))
    snprintf (note, len, "the point's checkpoint is not bootback-XXXXXXXX-%s, "
              "the one its backup made", point ? point : "ID");
  else if ((use = bitmap_usable (path, checkpoint, note, len)) == -1)
    return -1;
  if (use) {
    snprintf (t->bitmap, sizeof t->bitmap, "%s", checkpoint);
    bctx = xasprintf ("qemu:dirty-bitmap:%s", checkpoint);
    ctx[1] = bctx;
  }
  if (qemu_nbd_start_bitmap (&t->q, path, "qcow2", false, use ? checkpoint : NULL) == -1)
    return -1;
  cj.socket = t->q.socket;
  t->nbd = chunk_job_connect (&cj, ctx);
  if (!t->nbd || (use && nbd_can_meta_context (t->nbd, bctx) != 1)) {
    if (t->nbd)
      error_setx ("%s: qemu-nbd does not offer the bitmap %s", path, checkpoint);
    delta_qcow2_close (t);
    return -1;
  }
  return 0;
}

void
delta_qcow2_close (struct delta_qcow2 *t)
{
  if (t->nbd) {
    nbd_shutdown (t->nbd, 0);
    nbd_close (t->nbd);
    t->nbd = NULL;
  }
  qemu_nbd_stop (&t->q);
}

/* Block status of the dirty bitmap: mark in bits[] each chunk a dirty
 * extent touches. */
struct marker {
  uint8_t *bits;
  uint32_t cs;
  uint64_t n;
};

static void
mark_dirty (void *opaque, uint64_t off, uint64_t len, uint32_t flags)
{
  struct marker *m = opaque;
  uint64_t c, last = DIV_ROUND_UP (off + len, m->cs);

  for (c = off / m->cs; (flags & 1) && c < last && c < m->n; c++)
    m->bits[c / 8] |= 1u << (c % 8);
}

int
delta_qcow2_map (struct delta_qcow2 *t, uint64_t size, uint32_t cs, bool dirty,
                 uint8_t *bits)
{
  struct chunk_job cj = { .what = "the --onto target", .size = size, .cs = cs,
                          .nchunks = DIV_ROUND_UP (size, cs) };
  struct marker m = { bits, cs, cj.nchunks };
  CLEANUP_FREE char *ctx = NULL;
  struct chunk_zero_map z;
  uint64_t c;
  int r;

  if (dirty) {
    ctx = xasprintf ("qemu:dirty-bitmap:%s", t->bitmap);
    return chunk_job_block_status (&cj, t->nbd, ctx, mark_dirty, &m);
  }
  /* the chunks wholly inside zero extents, as backup maps them */
  cj.known_zero = xcalloc (cj.nchunks + 1, 1);
  chunk_zero_map_init (&z, &cj);
  r = chunk_job_block_status (&cj, t->nbd, "base:allocation",
                              chunk_zero_map_extent, &z);
  for (c = 0; r == 0 && c < cj.nchunks; c++)
    if (cj.known_zero[c])
      bits[c / 8] |= 1u << (c % 8);
  free (cj.known_zero);
  return r;
}
