/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Import of disk images into a restore point.
 *
 * For each disk: qemu-img info (format, size), a private read-only
 * qemu-nbd, one libnbd connection per worker thread (a raw local file is
 * read directly, see read_fd).  Block status
 * (base:allocation) marks the chunks that are wholly zero: those are
 * neither read nor stored.  Workers take chunk numbers from a shared
 * counter, read the chunk, hash it (SHA-256), and hand it to the writer,
 * which stores it unless the repository has it already (dedup).
 */
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>

#include "recovery/ingest/ingest.h"
#include "recovery/util/util.h"

struct job {
  struct repo_writer *w;
  const char *image;
  const char *socket;          /* qemu-nbd, or NULL when reading fd */
  int fd;                      /* a local raw file, read directly */
  uint64_t size;
  uint32_t cs;
  uint64_t nchunks;
  uint8_t *known_zero;             /* per chunk: 1 = all zero per block status */
  uint8_t (*digests)[REPO_DIGEST_LEN];
  _Atomic uint64_t next;
  _Atomic uint64_t bytes_read, zero_bytes;
  _Atomic bool failed;
  pthread_mutex_t lock;
  char errmsg[1024];
  int err;
  struct progress *prog;
};

static void
job_fail (struct job *j)
{
  pthread_mutex_lock (&j->lock);
  if (!j->failed) {
    j->err = error_errno ();
    snprintf (j->errmsg, sizeof j->errmsg, "%s", error_msg ());
    j->failed = true;
  }
  pthread_mutex_unlock (&j->lock);
}

static struct nbd_handle *
connect_nbd (struct job *j, bool meta)
{
  struct nbd_handle *h = nbd_create ();

  if (!h) {
    error_setx ("libnbd: %s", nbd_get_error ());
    return NULL;
  }
  if ((meta && nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) ||
      nbd_connect_unix (h, j->socket) == -1) {
    error_setx ("%s: cannot connect to qemu-nbd: %s", j->image,
                nbd_get_error ());
    nbd_close (h);
    return NULL;
  }
  return h;
}

/* Block status callback: mark the chunks that lie wholly inside a run of
 * zero extents (adjacent zero extents are merged into one run). */
struct bs {
  struct job *j;
  uint64_t pos;
  uint64_t zstart;          /* start of the current zero run, or UINT64_MAX */
};

static int
extent_cb (void *opaque, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr, int *error)
{
  struct bs *b = opaque;
  struct job *j = b->j;
  size_t i;
  uint64_t pos = offset;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (i = 0; i + 1 < nr; i += 2) {
    uint64_t end = pos + entries[i];

    if (entries[i+1] & LIBNBD_STATE_ZERO) {
      uint64_t c;
      if (b->zstart == UINT64_MAX || b->zstart > pos)
        b->zstart = pos;
      for (c = DIV_ROUND_UP (b->zstart, j->cs);
           c < j->nchunks && MIN ((c + 1) * j->cs, j->size) <= end; c++)
        j->known_zero[c] = 1;
    }
    else
      b->zstart = UINT64_MAX;
    pos = end;
  }
  b->pos = pos;
  return 0;
}

static int
map_zeros (struct job *j, struct nbd_handle *h)
{
  struct bs b = { j, 0, UINT64_MAX };

  if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
    return 0;
  while (b.pos < j->size) {
    uint64_t start = b.pos;
    uint64_t count = MIN (j->size - b.pos, (uint64_t) 1 << 30);
    if (nbd_block_status (h, count, b.pos,
                          (nbd_extent_callback) { .callback = extent_cb,
                                                  .user_data = &b }, 0) == -1) {
      error_setx ("%s: block status: %s", j->image, nbd_get_error ());
      return -1;
    }
    if (b.pos <= start)   /* no progress: give up mapping, read everything */
      break;
  }
  return 0;
}

/* Raw local files are plain bytes: QEMU's raw driver would only pread
 * them, so read them directly (no qemu-nbd, no socket copies), and map
 * holes with SEEK_DATA/SEEK_HOLE as QEMU's block status does. */
static int
read_fd (struct job *j, uint8_t *buf, size_t len, uint64_t off)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = pread (j->fd, buf + done, len - done, off + done);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      error_set (errno, "%s: read at offset %" PRIu64, j->image, off + done);
      return -1;
    }
    if (r == 0) {                      /* past EOF of a sector-rounded size */
      memset (buf + done, 0, len - done);
      break;
    }
    done += r;
  }
  return 0;
}

static void
map_holes (struct job *j)
{
  struct bs b = { j, 0, UINT64_MAX };
  off_t pos = 0, data, hole;

  while ((uint64_t) pos < j->size) {
    data = lseek (j->fd, pos, SEEK_DATA);
    if (data == -1)                    /* ENXIO: only a hole is left */
      data = j->size;
    if ((uint64_t) data > (uint64_t) pos) {
      uint32_t e[2] = { (uint32_t) MIN ((uint64_t) data - pos, UINT32_MAX / 2),
                        LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO };
      int err = 0;
      extent_cb (&b, LIBNBD_CONTEXT_BASE_ALLOCATION, pos, e, 2, &err);
      pos += e[0];
      continue;
    }
    hole = lseek (j->fd, pos, SEEK_HOLE);
    if (hole == -1 || hole <= pos)
      hole = j->size;
    uint32_t e[2] = { (uint32_t) MIN ((uint64_t) hole - pos, UINT32_MAX / 2), 0 };
    int err = 0;
    extent_cb (&b, LIBNBD_CONTEXT_BASE_ALLOCATION, pos, e, 2, &err);
    pos += e[0];
  }
}

static void *
worker (void *arg)
{
  struct job *j = arg;
  struct nbd_handle *h = j->socket ? connect_nbd (j, false) : NULL;
  uint8_t *buf = xmalloc (j->cs);
  uint64_t c;

  if (j->socket && !h) {
    job_fail (j);
    free (buf);
    return NULL;
  }
  while (!j->failed && (c = atomic_fetch_add (&j->next, 1)) < j->nchunks) {
    uint64_t off = c * j->cs;
    size_t len = MIN ((uint64_t) j->cs, j->size - off);

    if (j->known_zero[c]) {
      atomic_fetch_add (&j->zero_bytes, len);
      memset (j->digests[c], 0, REPO_DIGEST_LEN);
      progress_add (j->prog, len);
      continue;
    }
    if (h && nbd_pread (h, buf, len, off, 0) == -1) {
      error_set (nbd_get_errno () ? nbd_get_errno () : EIO,
                 "%s: read at offset %" PRIu64 ": %s", j->image, off,
                 nbd_get_error ());
      job_fail (j);
      break;
    }
    if (!h && read_fd (j, buf, len, off) == -1) {
      job_fail (j);
      break;
    }
    atomic_fetch_add (&j->bytes_read, len);
    if (is_zero (buf, len)) {
      atomic_fetch_add (&j->zero_bytes, len);
      memset (j->digests[c], 0, REPO_DIGEST_LEN);
    }
    else {
      repo_sha256 (buf, len, j->digests[c]);
      if (repo_writer_put_chunk (j->w, j->digests[c], buf, len, NULL) == -1) {
        job_fail (j);
        break;
      }
    }
    progress_add (j->prog, len);
  }
  if (h) {
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
  free (buf);
  return NULL;
}

/* Format and size of an image; refuses what cannot be imported. */
static int
probe (const struct ingest_disk *d, char *format, size_t flen, uint64_t *size)
{
  struct stat st;

  if (qemu_img_info (d->image, format, flen, size) == -1) {
    error_prefix ("%s", d->image);
    return -1;
  }
  /* QEMU rounds a raw file up to whole sectors; keep its exact length so a
   * raw restore is identical byte for byte (cmp, not only qemu-img compare). */
  if (strcmp (format, "raw") == 0 && stat (d->image, &st) == 0 &&
      S_ISREG (st.st_mode) && (uint64_t) st.st_size <= *size)
    *size = st.st_size;
  if (*size == 0) {
    error_setx ("%s: the disk is 0 bytes; there is nothing to import",
                d->image);
    return -1;
  }
  return 0;
}

static int
import_disk (struct repo_writer *w, struct repo *r, const struct ingest_disk *d,
             int threads, struct ingest_result *res)
{
  struct job j = { .w = w, .image = d->image, .fd = -1 };
  struct qemu_nbd q = { 0 };
  struct nbd_handle *h = NULL;
  char format[32], label[96];
  struct stat st;
  pthread_t th[64];
  int nt = 0, i, ret = -1;

  pthread_mutex_init (&j.lock, NULL);
  if (probe (d, format, sizeof format, &j.size) == -1)
    goto out;
  j.cs = repo_chunk_size (r);
  j.nchunks = DIV_ROUND_UP (j.size, j.cs);
  j.known_zero = xcalloc (j.nchunks, 1);
  j.digests = xcalloc (j.nchunks, REPO_DIGEST_LEN);
  if (strcmp (format, "raw") == 0 && stat (d->image, &st) == 0 &&
      S_ISREG (st.st_mode)) {
    j.fd = open (d->image, O_RDONLY | O_CLOEXEC);
    if (j.fd == -1) {
      error_set (errno, "open: %s", d->image);
      goto out;
    }
    map_holes (&j);
  }
  else {
    if (qemu_nbd_start (&q, d->image, format, true) == -1)
      goto out;
    j.socket = q.socket;
    h = connect_nbd (&j, true);
    if (!h || map_zeros (&j, h) == -1)
      goto out;
  }

  snprintf (label, sizeof label, "import %s", d->name);
  j.prog = progress_new (label, j.size);
  for (nt = 0; nt < threads && nt < 64; nt++)
    if (pthread_create (&th[nt], NULL, worker, &j) != 0)
      break;
  if (nt == 0)
    worker (&j);
  for (i = 0; i < nt; i++)
    pthread_join (th[i], NULL);
  progress_free (j.prog);
  if (j.failed) {
    error_restore (j.err, j.errmsg);
    goto out;
  }
  if (repo_writer_add_disk (w, d->name, j.size, format,
                            (const uint8_t (*)[REPO_DIGEST_LEN]) j.digests) == -1)
    goto out;
  res->bytes_total += j.size;
  res->bytes_read += j.bytes_read;
  res->zero_bytes += j.zero_bytes;
  ret = 0;
 out:
  {
    ERROR_SAVE (saved);
    if (h) {
      nbd_shutdown (h, 0);
      nbd_close (h);
    }
    qemu_nbd_stop (&q);
    if (j.fd >= 0)
      close (j.fd);
    free (j.known_zero);
    free (j.digests);
    pthread_mutex_destroy (&j.lock);
    ERROR_RESTORE (saved);
  }
  return ret;
}

int
ingest_import (struct repo *r, const struct ingest_opts *o,
               const struct ingest_disk *disks, size_t n,
               struct repo_manifest *m, struct ingest_result *res)
{
  struct repo_writer *w;
  struct repo_point_stats st;
  int threads = o->threads > 0 ? o->threads : MAX (2, get_nprocs ());
  double t0 = now_monotonic ();
  size_t i;

  memset (res, 0, sizeof *res);
  if (n == 0) {
    error_setx ("no disk image given");
    return -1;
  }
  /* Refuse unreadable or empty images before anything is written. */
  for (i = 0; i < n; i++) {
    char format[32];
    uint64_t size;
    if (probe (&disks[i], format, sizeof format, &size) == -1)
      return -1;
  }
  w = repo_writer_begin (r, o->vm, o->time);
  if (!w)
    return -1;
  for (i = 0; i < n; i++) {
    if (import_disk (w, r, &disks[i], threads, res) == -1)
      goto err;
  }
  if (o->domain_xml)
    repo_writer_set_domain_xml (w, o->domain_xml);
  repo_writer_get_stats (w, &st);
  st.bytes_read = res->bytes_read;
  st.seconds = now_monotonic () - t0;
  repo_writer_set_info (w, "full", "crash", "import", NULL, &st);
  return repo_writer_commit (w, m);
 err:
  repo_writer_abort (w);
  return -1;
}
