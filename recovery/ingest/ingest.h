/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest: moving disk data between QEMU-readable images and the
 * repository.  Import reads any image QEMU reads (raw, qcow2, vmdk, vhdx,
 * vpc, ...) through a private qemu-nbd and libnbd, skipping what block
 * status reports as zero; restore writes a point's disk back to a raw or
 * qcow2 file (through qemu-nbd for qcow2), sparse where the data is zero;
 * backup takes restore points of libvirt domains (pull-mode backup API,
 * checkpoints, the guest agent).
 *
 * Errors: -1 and the last error (util.h) set.
 */
#ifndef BOOTBACK_INGEST_H
#define BOOTBACK_INGEST_H

#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

/* ---- qemu.c: qemu-img and qemu-nbd helpers ---------------------------- */

/* What qemu-img info says of one image (it never opens the backing
 * chain).  Each name is "" when the image has none. */
struct qemu_img_info {
  char format[32];
  uint64_t size;              /* virtual size */
  char filename[1024];        /* as QEMU names it: "json:{...}" for options */
  char backing[1024];         /* backing file (full path when QEMU knows it) */
  char backing_format[32];    /* backing format recorded in the image */
  char data_file[1024];       /* qcow2 external data file */
  char extent[1024];          /* vmdk: an extent in another file */
};

/* qemu-img info of image.  format NULL lets QEMU guess the format from the
 * contents (probing): only for a file a user names, never a guest's disk,
 * whose contents the guest writes (a raw disk can hold a qcow2 header
 * naming any host file as its backing).  -1 with qemu-img's own message
 * in the error if it cannot read it. */
int qemu_img_info (const char *image, const char *format,
                   struct qemu_img_info *info);

/* The first other file QEMU would read when opening image (backing file,
 * external data file, vmdk extent) or its json: name, with *what saying
 * which ("a backing file"); NULL if it reads only itself. */
const char *qemu_img_link (const char *image, const struct qemu_img_info *info,
                           const char **what);

/* A private qemu-nbd serving one image on a unix socket in a fresh 0700
 * directory; the socket accepts connections when qemu_nbd_start returns.
 * qemu_nbd_stop kills it by PID and removes the directory. */
struct qemu_nbd {
  pid_t pid;
  char dir[64];
  char socket[96];
};
int qemu_nbd_start (struct qemu_nbd *q, const char *image, const char *format,
                    bool readonly);
/* The same, also exporting the image's persistent dirty bitmap (NULL:
 * none) as the meta context "qemu:dirty-bitmap:BITMAP". */
int qemu_nbd_start_bitmap (struct qemu_nbd *q, const char *image, const char *format,
                           bool readonly, const char *bitmap);
void qemu_nbd_stop (struct qemu_nbd *q);

/* ---- import.c ---------------------------------------------------------- */

struct ingest_disk {
  const char *image;      /* path of the image */
  const char *name;       /* disk name in the point, e.g. "vda" */
  const char *format;     /* "raw", "qcow2", ...; NULL = QEMU probes it */
};

struct ingest_opts {
  const char *vm;
  time_t time;            /* 0 = now */
  const char *domain_xml; /* contents, or NULL */
  int threads;            /* 0 = number of CPUs (at least 2) */
  bool allow_backing;     /* read an image's backing file, external data
                           * file, other extents or json: name; otherwise
                           * such an image is refused, naming the file */
};

struct ingest_result {
  uint64_t bytes_total;    /* sum of virtual sizes */
  uint64_t bytes_read;     /* read from the images (zeros skipped) */
  uint64_t zero_bytes;     /* known zero, not read or not stored */
};

/* Import one restore point made of n disks.  Steps 1-3 of the commit
 * protocol happen inside; on success m describes the new point (the caller
 * then records it in the catalog, step 4).  On error nothing is visible. */
int ingest_import (struct repo *r, const struct ingest_opts *o,
                   const struct ingest_disk *disks, size_t n,
                   struct repo_manifest *m, struct ingest_result *res);

/* ---- restore.c ----------------------------------------------------------- */

/* Write disk `disk` of point vm@id to `to` (must not exist) in format
 * "raw" or "qcow2".  Written to to.part and renamed when complete and
 * flushed: on any error (a bad chunk names chunk, point, disk, range) the
 * partial file is removed and nothing is left at `to`. */
int ingest_restore (struct repo *r, const char *vm, const char *id,
                    const char *disk, const char *to, const char *format,
                    int threads);

/* The same to a new Ceph RBD image, to = "rbd:POOL/IMAGE", as the cephx
 * user of co (recovery/virt/ceph.h): written as IMAGE.part and renamed
 * when complete and flushed.  An existing IMAGE is refused unless force
 * (then replaced, if no client has it open). */
struct virt_ceph_opts;
int ingest_restore_rbd (struct repo *r, const char *vm, const char *id,
                        const char *disk, const char *to,
                        const struct virt_ceph_opts *co, bool force, int threads);

/* ---- backup.c: restore points of libvirt domains ------------------------- */

/* Options of one backup.  Notes (what bootback decided and why: a full
 * read and its reason, the guest agent's answer) go to note(). */
struct backup_opts {
  const char *domain;        /* libvirt domain name (also the point's VM) */
  const char *uri;           /* libvirt URI, NULL = libvirt's default */
  const char *const *disks;  /* targets to back up; NULL = every disk */
  size_t ndisks;
  bool full;                 /* read everything, whatever the checkpoint */
  bool quiesce;              /* freeze the guest's filesystems (agent) */
  int threads;               /* 0 = number of CPUs (at least 2), twice
                              * that for an incremental read */
  const char *scratch_dir;   /* NULL = /var/tmp (the CLI gives --scratch-dir
                              * or $BOOTBACK_SCRATCH_DIR) */
  /* A domain on another host (a URI with a host name): its backup job's
   * NBD server listens there on TCP, with TLS unless insecure. */
  const char *remote_scratch_dir;  /* a directory on that host; NULL =
                              * its /var/tmp */
  const char *tls_dir;       /* client certificates (ca-cert.pem,
                              * client-cert.pem, client-key.pem); NULL =
                              * the URI's pkipath=, else tls_dir_default */
  const char *tls_dir_default;
  bool insecure;             /* plaintext NBD (tests only) */
  int nbd_port_min, nbd_port_max;  /* the ports to try there; 0 = 10809-10872 */
  void (*note) (void *opaque, const char *msg);
  void *opaque;
};

struct backup_disk_result {
  char name[DISK_NAME_MAX + 1];
  char mode[16];             /* "full" or "incremental" */
  char reason[256];          /* why full ("" for a first or --full read) */
  char format[16];
  uint64_t size;
  uint64_t dirty_bytes;      /* incremental: bytes the bitmap marks dirty */
  uint64_t planned_bytes;    /* bytes to read (dirty chunks, not zero) */
  uint64_t bytes_read;
  uint64_t reused_chunks;
  uint64_t patched_chunks;   /* partly dirty: the previous chunk patched */
  uint64_t reread_chunks;    /* the previous chunk was gone: read whole */
};

struct backup_result {
  char state[16];            /* "running", "paused", "shut off" */
  char kind[16];             /* "full" or "incremental" */
  char consistency[16];      /* "application" or "crash" */
  char checkpoint[128];      /* libvirt checkpoint of the point, "" if none */
  char parent[TIMESTAMP_LEN + 1];  /* previous point, incremental only */
  size_t ndisks;
  struct backup_disk_result disks[REPO_MAX_DISKS];
  uint64_t bytes_total, planned_bytes, bytes_read, reused_chunks;
};

/* A backup of one domain: a libvirt connection and the domain. */
struct ingest_backup;

/* Connect (o->uri) and find the domain.  o must outlive the handle.
 * NULL with the error set. */
struct ingest_backup *ingest_backup_open (const struct backup_opts *o);
/* Take the restore point: quiesce (agent), begin a pull-mode backup with a
 * new checkpoint, thaw, read each disk's point-in-time view over NBD
 * (incremental: only the chunks the previous checkpoint marks dirty;
 * every other digest comes from the previous point), end the job, and
 * commit steps 1-3.  On success m describes the point; the caller records
 * it (step 4) and then calls ingest_backup_advance (step 5).  On error
 * nothing is visible, the guest is thawed, and the new checkpoint is
 * removed: the previous checkpoint stays usable. */
int ingest_backup_run (struct ingest_backup *b, struct repo *r,
                       struct repo_manifest *m, struct backup_result *res);
/* Step 5: remove this repository's older checkpoints of the domain (the
 * previous one and any left by interrupted backups), keeping the new one.
 * Failures are harmless (reported, retried next time). */
int ingest_backup_advance (struct ingest_backup *b);
void ingest_backup_close (struct ingest_backup *b);

/* The domains (active or not) whose <metadata> has bootback's marker
 * (<backup xmlns="https://bootback.dev/xmlns/backup/1"/>), sorted; NULL-
 * terminated, free with strv_free.  NULL with the error set. */
char **ingest_backup_marked_domains (const char *uri);

/* The thaw guard (a child process started before a freeze): reads fd
 * until EOF; unless the backup wrote "thawed", thaws domain's filesystems
 * (the backup was killed while they were frozen), and says what it did
 * through say ("thaw guard: thawed ...", or why it could not).  Returns
 * an exit code. */
int ingest_backup_thaw_guard (const char *uri, const char *domain, int fd,
                              void (*say) (void *opaque, const char *msg),
                              void *opaque);

#endif /* BOOTBACK_INGEST_H */
