/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Full restore of one disk to a file: raw (direct pwrite, holes where the
 * index has zero chunks) or qcow2 (qemu-img create, then writes through a
 * private qemu-nbd, so the qcow2 is written by QEMU itself).  Output goes
 * to TARGET.part and is renamed into place only when complete and flushed.
 * The image is made 0600 (a disk is its owner's; chmod it to share it).
 * qemu-img, qemu-nbd and the rename take TARGET.part by name: TARGET's
 * directories must be writable by root and us only (dir_chain_private),
 * so nobody else can rename a link over it meanwhile; that .part is still
 * the file created is checked again before the rename.
 *
 * To Ceph RBD (rbd:POOL/IMAGE, ingest_restore_rbd): written with librbd
 * (recovery/virt/ceph.h) into a new image IMAGE.part of the disk's size,
 * flushed, then renamed to IMAGE (librbd refuses a rename over an
 * existing image).  An existing IMAGE is refused unless force; then it is
 * removed just before the rename (librbd refuses while a client has it
 * open: a running VM's disk is never replaced).
 */
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "recovery/ingest/ingest.h"
#include "recovery/util/util.h"
#include "recovery/virt/ceph.h"

/* The owner tag (RBD image metadata) of the .part image a restore writes:
 * only an image so tagged is removed when a later restore finds it. */
#define RESTORE_RBD_OWNER "bootback restore"

struct rjob {
  struct repo *r;
  struct repo_disk *d;
  int fd;                  /* raw */
  const char *socket;      /* qcow2 */
  const char *target;
  _Atomic uint64_t next;
  struct first_error fe;
  struct progress *prog;
  /* The output, written as part and renamed to target when complete. */
  char *part;
  bool created;            /* part is ours to remove on error */
  dev_t dev;               /* the part created */
  ino_t ino;
  struct qemu_nbd q;       /* qcow2: the qemu-nbd writing part */
  struct virt_rbd_image *im;  /* rbd: the image part */
};

/* Write one chunk's bytes to the output: NBD, RBD or the raw file. */
static int
write_chunk (struct rjob *j, struct nbd_handle *h, const uint8_t *buf,
             uint32_t len, uint64_t off)
{
  size_t done = 0;

  if (h) {
    if (nbd_pwrite (h, buf, len, off, 0) == -1) {
      error_set (nbd_get_errno () ? nbd_get_errno () : EIO, "%s: write: %s",
                 j->target, nbd_get_error ());
      return -1;
    }
    return 0;
  }
  if (j->im)
    return virt_rbd_pwrite (j->im, buf, len, off);
  while (done < len) {
    ssize_t r = pwrite (j->fd, buf + done, len - done, off + done);
    if (r == -1 && errno == EINTR) continue;
    if (r <= 0) {
      error_set (r == 0 ? EIO : errno, "write: %s", j->target);
      return -1;
    }
    done += r;
  }
  return 0;
}

static void *
rworker (void *arg)
{
  struct rjob *j = arg;
  uint32_t cs = repo_chunk_size (j->r);
  uint64_t n = repo_disk_nchunks (j->d), size = repo_disk_size (j->d), c;
  uint8_t *buf = xmalloc (cs);
  struct nbd_handle *h = NULL;

  if (j->socket) {
    h = nbd_create ();
    if (!h || nbd_connect_unix (h, j->socket) == -1) {
      error_setx ("%s: cannot connect to qemu-nbd: %s", j->target,
                  nbd_get_error ());
      first_error_record (&j->fe);
      goto out;
    }
  }
  while (!first_error_failed (&j->fe) &&
         (c = atomic_fetch_add (&j->next, 1)) < n) {
    uint64_t off = c * cs;
    uint32_t len = MIN ((uint64_t) cs, size - off);

    if (repo_digest_is_zero (repo_disk_digest (j->d, c))) {
      progress_add (j->prog, len);
      continue;
    }
    if (repo_disk_pread (j->d, NULL, buf, len, off) == -1 ||
        write_chunk (j, h, buf, len, off) == -1) {
      first_error_record (&j->fe);
      break;
    }
    progress_add (j->prog, len);
  }
 out:
  if (h) {
    if (!first_error_failed (&j->fe) && nbd_flush (h, 0) == -1) {
      error_setx ("%s: flush: %s", j->target, nbd_get_error ());
      first_error_record (&j->fe);
    }
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
  free (buf);
  return NULL;
}

/* j->part still names the file restore_create made.  -1 with the error
 * (then nothing is renamed, and that file is not ours to remove). */
static int
part_same (struct rjob *j)
{
  struct stat st;

  if (lstat (j->part, &st) == 0 && st.st_dev == j->dev && st.st_ino == j->ino)
    return 0;
  j->created = false;
  error_setx ("%s is no longer the file bootback created (renamed or replaced "
              "while restoring): refused", j->part);
  return -1;
}

/* Create the output file, j->part, of the disk's size: a raw file we
 * write, or a qcow2 image served by a private qemu-nbd. */
static int
restore_create (struct rjob *j, const char *format)
{
  char size[32], out[4096];
  char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", j->part, size,
                   NULL };
  struct stat st;

  unlink (j->part);
  j->fd = open_private (j->part, O_WRONLY | O_EXCL);
  if (j->fd == -1 || fstat (j->fd, &st) == -1) {
    error_set (errno, "create: %s", j->part);
    return -1;
  }
  j->created = true;
  j->dev = st.st_dev;
  j->ino = st.st_ino;
  if (strcmp (format, "raw") == 0) {
    if (ftruncate (j->fd, repo_disk_size (j->d)) == -1) {
      error_set (errno, "truncate: %s", j->part);
      return -1;
    }
    return 0;
  }
  close (j->fd);                /* qemu-img and qemu-nbd write it by name */
  j->fd = -1;
  snprintf (size, sizeof size, "%" PRIu64, repo_disk_size (j->d));
  if (run_command (argv, out, sizeof out) != 0) {
    error_setx ("qemu-img create %s: %s", j->part, out);
    return -1;
  }
  if (qemu_nbd_start (&j->q, j->part, "qcow2", false) == -1 || part_same (j) == -1)
    return -1;
  j->socket = j->q.socket;
  return 0;
}

/* Every chunk written: flush the output and rename it into place. */
static int
restore_finish (struct rjob *j)
{
  if (j->fd >= 0) {
    if (fsync (j->fd) == -1) {
      error_set (errno, "fsync: %s", j->part);
      return -1;
    }
    if (close (j->fd) == -1) {
      j->fd = -1;
      error_set (errno, "close: %s", j->part);
      return -1;
    }
    j->fd = -1;
  }
  qemu_nbd_stop (&j->q);
  if (part_same (j) == -1)
    return -1;
  /* Never over a file that appeared while we wrote (the check in
   * ingest_restore is only the early, friendly error). */
  if (rename_noreplace (j->part, j->target) == -1) {
    if (errno == EEXIST)
      error_setx ("%s exists already (created while restoring); refusing to "
                  "overwrite it", j->target);
    else
      error_set (errno, "rename: %s -> %s", j->part, j->target);
    return -1;
  }
  j->created = false;
  return 0;
}

/* Every chunk of the disk to the output, with progress. */
static int
restore_write (struct rjob *j, const char *disk, int threads)
{
  char label[96];

  snprintf (label, sizeof label, "restore %s", disk);
  j->prog = progress_new (label, repo_disk_size (j->d));
  run_workers (threads, rworker, j);
  progress_free (j->prog);
  if (first_error_failed (&j->fe)) {
    first_error_restore (&j->fe);
    return -1;
  }
  return 0;
}

int
ingest_restore (struct repo *r, const char *vm, const char *id,
                const char *disk, const char *to, const char *format,
                int threads)
{
  struct rjob j = { .r = r, .fd = -1 };
  char target[PATH_MAX];
  struct stat st;
  int ret = -1;

  if (!format)
    format = "raw";
  if (strcmp (format, "raw") != 0 && strcmp (format, "qcow2") != 0) {
    error_setx ("unsupported output format '%s' (raw or qcow2)", format);
    return -1;
  }
  if (stat (to, &st) == 0) {
    error_setx ("%s exists already; refusing to overwrite it", to);
    return -1;
  }
  if (dir_chain_private (to, target, sizeof target) == -1)
    return -1;
  j.target = target;            /* its directory resolved: no link to follow */
  j.d = repo_disk_open (r, vm, id, disk);
  if (!j.d)
    return -1;
  first_error_init (&j.fe);
  j.part = xasprintf ("%s.part", target);
  if (restore_create (&j, format) == -1)
    goto out;

  if (restore_write (&j, disk, threads) == 0 && restore_finish (&j) == 0)
    ret = 0;
 out:
  {
    ERROR_SAVE (saved);
    if (j.fd >= 0)
      close (j.fd);
    qemu_nbd_stop (&j.q);
    if (j.created)
      unlink (j.part);
    repo_disk_close (j.d);
    first_error_destroy (&j.fe);
    free (j.part);
    ERROR_RESTORE (saved);
  }
  return ret;
}

/* rbd: IMAGE.part written, flushed, closed; an existing IMAGE removed
 * (force), then the rename. */
static int
restore_rbd_finish (struct rjob *j, struct virt_ceph *c, const char *image,
                    bool replace)
{
  int r = virt_rbd_flush (j->im);

  virt_rbd_close (j->im);
  j->im = NULL;
  if (r == -1)
    return -1;
  if (replace && virt_ceph_image_remove (c, image) == -1) {
    error_prefix ("--force: cannot remove the existing image (in use?)");
    return -1;
  }
  if (virt_ceph_image_rename (c, j->part, image) == -1)
    return -1;
  j->created = false;
  return 0;
}

int
ingest_restore_rbd (struct repo *r, const char *vm, const char *id,
                    const char *disk, const char *to,
                    const struct virt_ceph_opts *co, bool force, int threads)
{
  struct rjob j = { .r = r, .fd = -1, .target = to };
  char pool[VIRT_RBD_NAME_MAX + 1], image[VIRT_RBD_NAME_MAX + 1];
  struct virt_ceph *c = NULL;
  int exists, ret = -1;

  if (virt_rbd_parse (to, true, pool, image) == -1)
    return -1;
  if (strlen (image) + 5 > VIRT_RBD_NAME_MAX) {
    error_setx ("%s: the image name is too long", to);
    return -1;
  }
  c = virt_ceph_open (co, pool);
  if (!c)
    return -1;
  exists = virt_ceph_image_exists (c, image);
  if (exists == 1 && !force)
    error_setx ("%s exists already; refusing to overwrite it (--force replaces it)", to);
  j.d = exists == 0 || (exists == 1 && force) ? repo_disk_open (r, vm, id, disk) : NULL;
  if (!j.d)
    goto out;
  first_error_init (&j.fe);
  j.part = xasprintf ("%s.part", image);
  /* A .part left by a killed restore (tagged as a restore's) is ours to
   * replace; any other image of that name is not. */
  if (virt_ceph_image_exists (c, j.part) == 1) {
    int mine = virt_ceph_image_tagged (c, j.part, RESTORE_RBD_OWNER);
    if (mine == 0)
      error_setx ("rbd:%s/%s exists and is not a restore's unfinished image: "
                  "refusing to remove it", pool, j.part);
    if (mine != 1 || virt_ceph_image_remove (c, j.part) == -1)
      goto out;
  }
  if (virt_ceph_image_create (c, j.part, repo_disk_size (j.d)) == -1)
    goto out;
  j.created = true;
  if (virt_ceph_image_tag (c, j.part, RESTORE_RBD_OWNER) == -1)
    goto out;
  j.im = virt_rbd_open (c, j.part);
  if (j.im && restore_write (&j, disk, threads) == 0 &&
      restore_rbd_finish (&j, c, image, exists == 1) == 0)
    ret = 0;
 out:
  {
    ERROR_SAVE (saved);
    virt_rbd_close (j.im);
    if (j.created)
      virt_ceph_image_remove (c, j.part);
    if (j.d) {
      repo_disk_close (j.d);
      first_error_destroy (&j.fe);
    }
    free (j.part);
    virt_ceph_close (c);
    ERROR_RESTORE (saved);
  }
  return ret;
}
