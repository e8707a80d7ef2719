/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the plugin's read path: the nbdkit callbacks
 * pread, extents and cache, driven with random offsets, lengths and
 * flags, on a small repository (64K chunks, data, zero runs, a partial
 * last chunk, chunks shared between offsets) behind a tiny cache so that
 * evictions and read-ahead happen all the time.  Every pread is compared
 * with the source image; every extent flagged zero must read as zeros;
 * extents must follow nbdkit's rules (nbdkit-stubs.c aborts otherwise).
 *
 * Input: a sequence of 13-byte operations: kind, offset (8), count (4).
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "nbd-plugin/nbdkit-stubs.h"
#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

#define CS (64 * 1024)
#define DISK_SIZE (40 * CS + 1234)

struct nbdkit_plugin *plugin_init (void);

static struct nbdkit_plugin *p;
static void *h;
static uint8_t *image;
static uint8_t *buf;
static char dir[64];
static struct nbdkit_extents ext;

static void
cleanup (void)
{
  char cmd[128];

  if (h)
    p->close (h);
  p->unload ();
  free (image);
  free (buf);
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  if (system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", dir);
}

/* The source image and its repository. */
static void
make_repo (void)
{
  struct repo_init_opts o = { .chunk_size = CS };
  uint8_t (*digests)[REPO_DIGEST_LEN] = xcalloc (41, REPO_DIGEST_LEN);
  struct repo_writer *w;
  struct repo *r;
  uint64_t x = 88172645463325252ULL;
  bool was_new;
  size_t i;

  image = xcalloc (1, DISK_SIZE);
  for (i = 0; i < DISK_SIZE; i++) {
    size_t c = i / CS;
    if (c % 5 == 1 || c % 7 == 3)
      continue;                          /* zero chunks */
    if (c % 6 == 4) {
      image[i] = image[i % CS];          /* same content as chunk 0 */
      continue;
    }
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    image[i] = (c % 4 == 2) ? (uint8_t) (i / 512) : (uint8_t) x;
  }
  strcpy (dir, "/tmp/fuzz-plugin.XXXXXX");
  if (!mkdtemp (dir))
    abort ();
  strcat (dir, "/repo");
  if (repo_init (dir, &o) == -1 || !(r = repo_open (dir)) ||
      !(w = repo_writer_begin (r, "vm", 1767225600)))
    abort ();
  for (i = 0; i < 41; i++) {
    size_t len = MIN ((size_t) CS, DISK_SIZE - i * CS);
    if (is_zero (image + i * CS, len))
      continue;
    if (repo_writer_put_chunk (w, image + i * CS, len, digests[i],
                               &was_new) == -1)
      abort ();
  }
  if (repo_writer_add_disk (w, "vda", DISK_SIZE, "raw",
                            (const uint8_t (*)[REPO_DIGEST_LEN]) digests) == -1 ||
      repo_writer_commit (w, NULL) == -1)
    abort ();
  repo_close (r);
  free (digests);
  *strrchr (dir, '/') = '\0';
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  char path[80];

  make_repo ();
  snprintf (path, sizeof path, "%s/repo", dir);
  p = plugin_init ();
  buf = xmalloc (4 * CS + 1);
  stub_export_name = "vm@latest/vda";
  if (p->config ("repo", path) == -1 ||
      p->config ("cache", "256K") == -1 ||       /* 4 chunks */
      p->config ("readahead", "128K") == -1 ||
      p->config_complete () == -1 ||
      p->get_ready () == -1 ||
      !(h = p->open (1)) ||
      p->get_size (h) != DISK_SIZE) {
    fprintf (stderr, "fuzz-plugin: setup: %s\n", stub_last_error);
    abort ();
  }
  atexit (cleanup);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  for (; size >= 13; data += 13, size -= 13) {
    uint64_t off;
    uint32_t count;
    unsigned i;

    memcpy (&off, data + 1, 8);
    memcpy (&count, data + 9, 4);
    /* What nbdkit lets through: 0 < count, offset + count <= size. */
    off %= DISK_SIZE;
    count = 1 + count % (4 * CS);
    if (count > DISK_SIZE - off)
      count = DISK_SIZE - off;

    switch (data[0] % 4) {
    case 0: case 1:
      if (p->pread (h, buf, count, off, 0) == -1) {
        fprintf (stderr, "pread %u at %lu: %s\n", count, (unsigned long) off,
                 stub_last_error);
        abort ();
      }
      if (memcmp (buf, image + off, count) != 0) {
        fprintf (stderr, "pread %u at %lu: wrong data\n", count,
                 (unsigned long) off);
        abort ();
      }
      break;
    case 2:
      stub_extents_init (&ext, off, count);
      if (p->extents (h, count, off, data[0] & 0x80 ? NBDKIT_FLAG_REQ_ONE : 0,
                      &ext) == -1)
        abort ();
      assert (ext.n > 0);
      if (!(data[0] & 0x80))
        assert (ext.next >= ext.start + count);
      for (i = 0; i < ext.n; i++) {
        uint64_t a = ext.e[i].offset;
        uint64_t b = MIN (a + ext.e[i].length, (uint64_t) DISK_SIZE);
        assert (a + ext.e[i].length <= DISK_SIZE);
        if (ext.e[i].type & NBDKIT_EXTENT_ZERO)
          assert (is_zero (image + a, b - a));
      }
      break;
    case 3:
      if (p->cache (h, count, off, 0) == -1)
        abort ();
      break;
    }
  }
  return 0;
}
