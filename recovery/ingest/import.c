/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Import of disk images into a restore point.
 *
 * For each disk: qemu-img info (format, size: the user's --format, or
 * QEMU's guess; before the point is begun, and again just before QEMU
 * opens it: a header changed meanwhile is refused), a private read-only
 * qemu-nbd (a raw local file is read directly).  A local image (regular
 * file or block device) is opened once, before its first probe, and
 * both qemu-img and qemu-nbd are given that open file (/proc/self/fd/N,
 * inherited), as is the direct read of a raw file: a path someone points
 * elsewhere after the probe (a symbolic link, a rename in a directory
 * they can write) cannot bring another file in.  Not with
 * --allow-backing: QEMU then needs the image's name to find its backing
 * files, which the user trusts.  Nor can the file be rewritten between
 * the last probe and qemu-nbd's open (someone who can write the image
 * adding a backing or data file): once qemu-nbd serves it, the files it
 * holds open must be the image alone (nbd_holds_only).  An image
 * that would make QEMU read another file (backing file, data file, vmdk
 * extent, json: name) is refused unless the user allows it: a guessed
 * format must not pull host files into a point.  Block status
 * (base:allocation; SEEK_DATA/SEEK_HOLE for a raw file) marks the chunks
 * that are wholly zero: those are neither read nor stored.  The chunk
 * engine (chunk-job.c, shared with backup.c) then reads, hashes and stores
 * every other chunk with one libnbd connection per worker thread; the
 * writer stores a chunk unless the repository has it already (dedup).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>

#include "recovery/ingest/ingest-int.h"

/* Raw local files are plain bytes: QEMU's raw driver would only pread
 * them, so they are read directly (no qemu-nbd, no socket copies), and
 * holes are mapped with SEEK_DATA/SEEK_HOLE as QEMU's block status does. */
static void
map_holes (struct chunk_job *j)
{
  struct chunk_zero_map z;
  off_t pos = 0, data, hole;

  chunk_zero_map_init (&z, j);
  while ((uint64_t) pos < j->size) {
    data = lseek (j->fd, pos, SEEK_DATA);
    if (data == -1)                    /* ENXIO: only a hole is left */
      data = j->size;
    if ((uint64_t) data > (uint64_t) pos) {
      chunk_zero_map_add (&z, pos, MIN ((uint64_t) data, j->size) - pos, true);
      pos = MIN ((uint64_t) data, j->size);
      continue;
    }
    hole = lseek (j->fd, pos, SEEK_HOLE);
    if (hole == -1 || hole <= pos)
      hole = j->size;
    chunk_zero_map_add (&z, pos, MIN ((uint64_t) hole, j->size) - pos, false);
    pos = MIN ((uint64_t) hole, j->size);
  }
}

/* An image as QEMU is to open it: by name, or (fd >= 0) the file
 * bootback opened. */
struct pinned {
  int fd;                     /* O_CLOEXEC; -1: by name */
  int child_fd;               /* while a child is started: fd's inheritable
                               * copy, which name names; else -1 */
  char name[64];
};

/* Open d's image once (see the top), unless allow_backing or it is no
 * local file or device (QEMU's protocol names, nbd+unix://...: by name,
 * as before; qemu-img says what is wrong with a missing one). */
static void
pin_open (const struct ingest_disk *d, bool allow_backing, struct pinned *p)
{
  struct stat st;
  int fd;

  p->fd = p->child_fd = -1;
  if (allow_backing || strncmp (d->image, "json:", 5) == 0)
    return;
  /* O_NONBLOCK: a FIFO must not block the open (it is then left to QEMU
   * by name, as before). */
  fd = open (d->image, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd == -1)
    return;
  if (fstat (fd, &st) == -1 || !(S_ISREG (st.st_mode) || S_ISBLK (st.st_mode)) ||
      fcntl (fd, F_SETFL, 0) == -1) {
    close (fd);
    return;
  }
  p->fd = fd;
}

/* The name to give a child about to be started (qemu-img, qemu-nbd):
 * d->image, or /proc/self/fd/N for an inheritable copy of the pinned fd,
 * closed by pin_child_done once the child has started (has opened it).
 * NULL with the error set. */
static const char *
pin_child (const struct ingest_disk *d, struct pinned *p)
{
  if (p->fd == -1)
    return d->image;
  p->child_fd = fcntl (p->fd, F_DUPFD, 3);     /* without FD_CLOEXEC */
  if (p->child_fd == -1) {
    error_set (errno, "dup: %s", d->image);
    return NULL;
  }
  snprintf (p->name, sizeof p->name, "/proc/self/fd/%d", p->child_fd);
  return p->name;
}

static void
pin_child_done (struct pinned *p)
{
  if (p->child_fd >= 0)
    close (p->child_fd);
  p->child_fd = -1;
}

static void
pin_close (struct pinned *p)
{
  pin_child_done (p);
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
}

/* Is the socket whose inode starts ino ("123]") one of pid's unix sockets
 * bound to sock, the export's: its listening socket, or a connection
 * accepted on it (which shows the listener's path)?  Any other socket (TCP
 * or UDP: a backing file such as nbd://HOST or an http(s) URL, QEMU's
 * protocol drivers reaching a host network; a unix socket connected to
 * another, nbd+unix:///?socket=PATH, which is bound to nothing) is not.
 * Fails closed: false when the table cannot be read. */
static bool
export_socket (pid_t pid, const char *ino, const char *sock)
{
  unsigned long want = strtoul (ino, NULL, 10);
  char path[64], line[512 + PATH_MAX];
  bool ok = false;
  FILE *fp;

  snprintf (path, sizeof path, "/proc/%ld/net/unix", (long) pid);
  fp = fopen (path, "re");
  if (!fp)
    return false;
  while (!ok && fgets (line, sizeof line, fp)) {
    unsigned long inode;
    int n = 0;
    /* Num RefCount Protocol Flags Type St Inode Path */
    if (sscanf (line, "%*s %*s %*s %*s %*s %*s %lu %n", &inode, &n) == 1 &&
        n > 0 && inode == want && want != 0) {
      line[strcspn (line, "\n")] = '\0';
      ok = strcmp (line + n, sock) == 0;
    }
  }
  fclose (fp);
  return ok;
}

/* After qemu-nbd (pid) has opened the pinned image p (its export
 * answered): the only files and devices it holds open are that image,
 * its log (dir/log) and /dev/null and the like, and its only sockets the
 * export's (sock).  The probe just before it checked
 * the header, but someone who can write the image itself can rewrite it
 * between that probe and qemu-nbd's open (a backing file, a data file, a
 * vmdk extent naming a host file): QEMU opens every file of an image when
 * it opens the image and keeps them open, so such a file shows here.
 * -1 with the error set when one does (or the check cannot be made). */
static int
nbd_holds_only (pid_t pid, const struct pinned *p, const char *dir,
                const char *sock, const char *image)
{
  char fddir[64], fp[64 + sizeof ((struct dirent *) 0)->d_name], target[256];
  struct stat want, log, st;
  bool have_log;
  struct dirent *de;
  DIR *dh;
  ssize_t n;
  int ret = 0;

  if (p->fd < 0)
    return 0;
  if (fstat (p->fd, &want) == -1) {
    error_set (errno, "fstat: %s", image);
    return -1;
  }
  snprintf (fp, sizeof fp, "%s/log", dir);
  have_log = stat (fp, &log) == 0;
  snprintf (fddir, sizeof fddir, "/proc/%ld/fd", (long) pid);
  dh = opendir (fddir);
  if (!dh) {
    error_set (errno, "%s: cannot see what qemu-nbd opened (%s)", image, fddir);
    return -1;
  }
  while ((de = readdir (dh)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf (fp, sizeof fp, "%s/%s", fddir, de->d_name);
    n = readlink (fp, target, sizeof target - 1);
    if (n > 0)
      target[n] = '\0';
    if (n <= 0 || stat (fp, &st) == -1) {
      if (errno == ENOENT)
        continue;                       /* closed meanwhile */
      error_set (errno, "%s: cannot see what qemu-nbd opened (%s)", image, fp);
      ret = -1;
      break;
    }
    /* a socket other than the export's (export_socket) */
    if (strncmp (target, "socket:[", 8) == 0 &&
        !export_socket (pid, target + 8, sock)) {
      error_setx ("%s changed while importing: QEMU opened a connection for "
                  "it (a backing or data file on the network or on another "
                  "socket, added after it was checked); refusing it", image);
      ret = -1;
      break;
    }
    /* the export's sockets, pipes, anonymous inodes (eventfd, ...),
     * memfds */
    if (target[0] != '/' || strncmp (target, "/memfd:", 7) == 0)
      continue;
    /* /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom */
    if (S_ISCHR (st.st_mode) && major (st.st_rdev) == 1 &&
        (minor (st.st_rdev) == 3 || minor (st.st_rdev) == 5 ||
         minor (st.st_rdev) == 7 || minor (st.st_rdev) == 8 ||
         minor (st.st_rdev) == 9))
      continue;
    if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode) &&
        !S_ISCHR (st.st_mode))
      continue;
    if (S_ISBLK (want.st_mode) ? S_ISBLK (st.st_mode) &&
        st.st_rdev == want.st_rdev
        : st.st_dev == want.st_dev && st.st_ino == want.st_ino)
      continue;
    if (have_log && st.st_dev == log.st_dev && st.st_ino == log.st_ino)
      continue;
    error_setx ("%s changed while importing: QEMU opened another file for it "
                "(%s: a backing or data file added after it was checked); "
                "refusing it", image, target);
    ret = -1;
    break;
  }
  closedir (dh);
  return ret;
}

/* Format and size of an image (d->format, or QEMU's guess when NULL);
 * refuses what cannot be imported, and an image that would make QEMU read
 * another file unless allow_backing: a guess from contents someone else
 * wrote must not pull host files (a backing file /etc/shadow) in. */
static int
probe (const struct ingest_disk *d, struct pinned *p, bool allow_backing,
       char *format, size_t flen, uint64_t *size)
{
  struct qemu_img_info i;
  const char *link, *what, *image = pin_child (d, p);
  struct stat st;
  int r;

  if (!image)
    return -1;
  r = qemu_img_info (image, d->format, &i);
  pin_child_done (p);
  if (r == -1) {
    error_prefix ("%s", d->image);
    return -1;
  }
  link = qemu_img_link (d->image, &i, &what);
  if (link && !allow_backing) {
    bool self = strcmp (link, d->image) == 0;        /* its json: name */
    error_setx ("image %s (%s) has %s%s%s; refusing (pass --allow-backing "
                "if you trust it)", d->image, i.format, what, self ? "" : " ",
                self ? "" : link);
    return -1;
  }
  snprintf (format, flen, "%s", i.format);
  *size = i.size;
  /* QEMU rounds a raw file up to whole sectors; keep its exact length so a
   * raw restore is identical byte for byte (cmp, not only qemu-img compare). */
  if (strcmp (format, "raw") == 0 &&
      (p->fd >= 0 ? fstat (p->fd, &st) : stat (d->image, &st)) == 0 &&
      S_ISREG (st.st_mode) && (uint64_t) st.st_size <= *size)
    *size = st.st_size;
  if (*size == 0) {
    error_setx ("%s: the disk is 0 bytes; there is nothing to import",
                d->image);
    return -1;
  }
  return 0;
}

/* Import disk d, of format and size as probed before the point was
 * begun; one that QEMU opens is probed again just before (allow_backing
 * as then). */
static int
import_disk (struct repo_writer *w, struct repo *r, const struct ingest_disk *d,
             struct pinned *p, const char *format, uint64_t size,
             bool allow_backing, int threads, struct ingest_result *res)
{
  static const char *const ctx[] = { LIBNBD_CONTEXT_BASE_ALLOCATION, NULL };
  struct chunk_job j;
  struct qemu_nbd q = { 0 };
  struct nbd_handle *h = NULL;
  char label[96];
  struct stat st;
  int ret = -1;

  chunk_job_init (&j, w, d->image, size, repo_chunk_size (r));
  j.progress_all = true;
  if (strcmp (format, "raw") == 0 &&
      (p->fd >= 0 ? fstat (p->fd, &st) : stat (d->image, &st)) == 0 &&
      S_ISREG (st.st_mode)) {
    j.fd = p->fd >= 0 ? fcntl (p->fd, F_DUPFD_CLOEXEC, 3)
      : open (d->image, O_RDONLY | O_CLOEXEC);
    if (j.fd == -1) {
      error_set (errno, "open: %s", d->image);
      goto out;
    }
    map_holes (&j);
  }
  else {
    struct chunk_zero_map z;
    char again[32];
    const char *image;
    uint64_t sz;
    int started;
    /* QEMU opens it now, maybe long after the first probe (the disks
     * before it): its header must still say what was checked then, with
     * no backing or data file added meanwhile. */
    if (probe (d, p, allow_backing, again, sizeof again, &sz) == -1)
      goto out;
    if (strcmp (again, format) != 0 || sz != size) {
      error_setx ("%s changed while importing (%s of %" PRIu64 " bytes, now "
                  "%s of %" PRIu64 "); refusing it", d->image, format, size,
                  again, sz);
      goto out;
    }
    image = pin_child (d, p);
    if (!image)
      goto out;
    started = qemu_nbd_start (&q, image, format, true);
    pin_child_done (p);
    if (started == -1) {
      error_prefix ("%s", d->image);
      goto out;
    }
    j.socket = q.socket;
    h = chunk_job_connect (&j, ctx);
    if (!h)
      goto out;
    /* its export answered: the image is open, with all it brought in */
    if (nbd_holds_only (q.pid, p, q.dir, q.socket, d->image) == -1)
      goto out;
    chunk_zero_map_init (&z, &j);
    if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1 &&
        chunk_job_block_status (&j, h, LIBNBD_CONTEXT_BASE_ALLOCATION,
                                chunk_zero_map_extent, &z) == -1)
      goto out;
  }

  snprintf (label, sizeof label, "import %s", d->name);
  j.prog = progress_new (label, j.size);
  ret = chunk_job_run (&j, threads);
  progress_free (j.prog);
  if (ret == -1)
    goto out;
  ret = -1;
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
    chunk_job_fini (&j);
    ERROR_RESTORE (saved);
  }
  return ret;
}

/* repo_writer_begin on a thread of its own, its error carried back. */
struct begin_ask {
  struct repo *r;
  const char *vm;
  time_t time;
  struct repo_writer *w;
  int e;
  char msg[1024];
};

static void *
begin_ask (void *opaque)
{
  struct begin_ask *a = opaque;

  if (!(a->w = repo_writer_begin (a->r, a->vm, a->time))) {
    a->e = error_errno ();
    snprintf (a->msg, sizeof a->msg, "%s", error_msg ());
  }
  return NULL;
}

int
ingest_import (struct repo *r, const struct ingest_opts *o,
               const struct ingest_disk *disks, size_t n,
               struct repo_manifest *m, struct ingest_result *res)
{
  struct repo_writer *w = NULL;
  struct repo_point_stats st;
  struct begin_ask ba = { .r = r, .vm = o->vm, .time = o->time };
  pthread_t bt;
  bool ahead = false;
  int threads = o->threads > 0 ? o->threads : MAX (2, get_nprocs ());
  double t0 = now_monotonic ();
  char formats[REPO_MAX_DISKS][32];
  uint64_t sizes[REPO_MAX_DISKS];
  struct pinned pins[REPO_MAX_DISKS];
  int ret = -1;
  size_t i;

  memset (res, 0, sizeof *res);
  if (n == 0) {
    error_setx ("no disk image given");
    return -1;
  }
  if (n > REPO_MAX_DISKS) {
    error_setx ("%zu disks: at most %d", n, REPO_MAX_DISKS);
    return -1;
  }
  /* Refuse unreadable or empty images before anything is written; what
   * the probe found is what is imported (one qemu-img info a disk).  On
   * an object store the writer begins meanwhile (its registration and the
   * look for a GC are round trips to the server, the probe a local
   * process): nothing of the point is read or stored before both are
   * done (the first chunk comes after the join below), and a refused
   * image only costs a registration that the abort deletes. */
  if (repo_object_store (r) &&
      pthread_create (&bt, NULL, begin_ask, &ba) == 0)
    ahead = true;
  for (i = 0; i < n; i++)
    pin_open (&disks[i], o->allow_backing, &pins[i]);
  for (i = 0; i < n; i++)
    if (probe (&disks[i], &pins[i], o->allow_backing, formats[i],
               sizeof formats[i], &sizes[i]) == -1)
      goto err;
  if (ahead) {
    pthread_join (bt, NULL);
    ahead = false;
    if (!(w = ba.w)) {
      error_restore (ba.e, ba.msg);
      errno = ba.e;
    }
  }
  else
    w = repo_writer_begin (r, o->vm, o->time);
  if (!w)
    goto out;
  for (i = 0; i < n; i++) {
    if (import_disk (w, r, &disks[i], &pins[i], formats[i], sizes[i],
                     o->allow_backing, threads, res) == -1)
      goto err;
  }
  if (o->domain_xml)
    repo_writer_set_domain_xml (w, o->domain_xml);
  repo_writer_get_stats (w, &st);
  st.bytes_read = res->bytes_read;
  st.seconds = now_monotonic () - t0;
  repo_writer_set_info (w, "full", "crash", "import", NULL, &st);
  ret = repo_writer_commit (w, m);
  goto out;
 err:
  {
    ERROR_SAVE (saved);
    if (ahead) {                      /* a probe failed meanwhile */
      pthread_join (bt, NULL);
      w = ba.w;
    }
    repo_writer_abort (w);            /* NULL is fine */
    ERROR_RESTORE (saved);
  }
 out:
  for (i = 0; i < n; i++)
    pin_close (&pins[i]);
  return ret;
}
