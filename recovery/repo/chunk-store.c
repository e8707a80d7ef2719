/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading chunks from the store: path, existence, read + decode + verify.
 * (Writing is in writer.c, because writes belong to a writer.)
 */
#include <errno.h>
#include <fcntl.h>

#include "recovery/repo/repo-int.h"

void
repo_chunk_path (const uint8_t digest[REPO_DIGEST_LEN], char out[80])
{
  char hex[2 * REPO_DIGEST_LEN + 1];

  hex_encode (digest, REPO_DIGEST_LEN, hex);
  snprintf (out, 80, "chunks/%.4s/%s", hex, hex);
}

int
repo_chunk_exists (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN])
{
  char path[80];
  struct repo_stat st;

  repo_chunk_path (digest, path);
  if (r->io->ops->stat (r->io, path, &st) == 0)
    return 1;
  return errno == ENOENT ? 0 : -1;
}

int
chunk_read_file (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                 uint8_t *buf, size_t cap, size_t *len)
{
  struct repo_io *io = r->io;
  struct repo_file *f;
  struct repo_stat st;
  char path[80];
  size_t n = 0;
  int ret = -1;

  repo_chunk_path (digest, path);
  f = io->ops->open (io, path, O_RDONLY);
  if (!f) {
    if (errno == ENOENT)
      error_set (EIO, "chunk %s is missing", path + 12);
    return -1;
  }
  if (io->ops->fstat (io, f, &st) == -1)
    goto out;
  if (st.size > cap) {
    error_set (EIO, "chunk %s: file is larger than any chunk can be "
               "(%" PRIu64 " bytes)", path + 12, st.size);
    goto out;
  }
  while (n < st.size) {
    ssize_t k = io->ops->pread (io, f, buf + n, st.size - n, n);
    if (k == -1) {
      error_prefix ("chunk %s", path + 12);
      goto out;
    }
    if (k == 0)
      break;
    n += k;
  }
  *len = n;
  ret = 0;
 out:
  io->ops->close (io, f);
  return ret;
}

int
repo_chunk_get (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                void *buf, size_t buflen, size_t *len)
{
  struct codec *c = codec_get (r);
  char path[80];
  size_t n;
  int ret = -1;

  if (buflen > r->chunk_size)
    buflen = r->chunk_size;
  if (chunk_read_file (r, digest, c->buf, c->buflen, &n) == -1)
    goto out;
  if (chunk_decode (r, c, c->buf, n, buf, buflen, len, digest) == -1) {
    repo_chunk_path (digest, path);
    error_prefix ("chunk %s", path + 12);
    goto out;
  }
  ret = 0;
 out:
  codec_put (r, c);
  return ret;
}
