/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ingest: private declarations shared by the files of recovery/ingest
 * (not installed, not for other folders).
 *
 * chunk-job.c is the engine that import.c and backup.c both drive: a
 * disk is a list of chunks, each with a plan (read it, it is zero, or
 * reuse the previous point's digest); worker threads take chunk numbers
 * from a shared counter, read what must be read (libnbd, one connection
 * per worker, over TCP one read ahead on it, or pread on a local file),
 * hash it and hand it to the repository writer, and fill in the disk's
 * complete digest list.
 */
#ifndef BOOTBACK_INGEST_INT_H
#define BOOTBACK_INGEST_INT_H

#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "recovery/ingest/ingest.h"
#include "recovery/util/util.h"

/* ---- chunk-job.c ------------------------------------------------------- */

enum chunk_plan {
  CHUNK_READ = 0,     /* read it from the source, hash, store */
  CHUNK_ZERO,         /* known to be all zero: zero digest, nothing read */
  CHUNK_REUSE,        /* unchanged: digests[c] holds the previous digest;
                         read it anyway if the chunk left the repository */
  CHUNK_PATCH,        /* partly changed: the previous chunk (digests[c])
                         with only the dirty ranges read over it; read it
                         whole if the previous chunk cannot be had */
};

/* A changed byte range of the source (sorted, not overlapping). */
struct chunk_range {
  uint64_t off, len;
};

struct chunk_job {
  /* Set by the caller (chunk_job_init fills size, cs, nchunks, plan,
   * digests; the caller owns the rest and keeps it alive). */
  struct repo_writer *w;
  const char *what;          /* names the source in messages ("IMG", "dom vda") */
  const char *socket;        /* NBD unix socket, or NULL to read fd (or
                              * to use connect) */
  const char *export_name;   /* NBD export name, NULL = default ("") */
  /* Instead of socket: connects h (export name and contexts set) some
   * other way (TCP with TLS); -1 with the error set. */
  int (*connect) (const struct chunk_job *j, struct nbd_handle *h);
  const void *connect_opaque;
  int fd;                    /* local raw file when socket is NULL */
  uint64_t size;
  uint32_t cs;
  uint64_t nchunks;
  uint8_t *plan;             /* per chunk: enum chunk_plan (all READ at init) */
  uint8_t *known_zero;       /* per chunk: 1 = wholly zero per block status */
  uint8_t (*digests)[REPO_DIGEST_LEN];  /* in: REUSE digests; out: all */
  struct repo *repo;         /* for PATCH: where the previous chunks are */
  const struct chunk_range *dirty;  /* for PATCH: the dirty ranges */
  size_t ndirty;
  struct progress *prog;     /* may be NULL */
  /* A connection to the source the caller hands over (backup: the one
   * that walked block status): the first worker that needs a connection
   * takes it instead of opening one (over TLS, a handshake saved);
   * chunk_job_run or chunk_job_fini closes it if no worker did. */
  _Atomic (struct nbd_handle *) spare;
  bool progress_all;         /* count zero and reused chunks in progress too */
  /* Results (read after chunk_job_run). */
  _Atomic uint64_t bytes_read;     /* read from the source */
  _Atomic uint64_t zero_bytes;     /* zero, not stored */
  _Atomic uint64_t reused_chunks;  /* taken from the previous point */
  _Atomic uint64_t reread_chunks;  /* REUSE or PATCH whose chunk was
                                    * gone: read whole */
  _Atomic uint64_t patched_chunks; /* PATCH done on the previous chunk */
  struct first_error reread;       /* why the first re-read was needed */
  /* Private. */
  _Atomic uint64_t next;
  struct first_error fe;
};

/* Set up j for a disk of size bytes in chunks of cs: allocates plan (all
 * CHUNK_READ), known_zero and digests (zeroed).  fd = -1. */
void chunk_job_init (struct chunk_job *j, struct repo_writer *w,
                     const char *what, uint64_t size, uint32_t cs);
/* Free what chunk_job_init allocated. */
void chunk_job_fini (struct chunk_job *j);

/* Connect to j->socket and j->export_name, asking for the meta contexts
 * in ctx (NULL-terminated, may be NULL).  NULL with the error set. */
/* On TCP, send at once the ACK the kernel would delay (QEMU 7.2's NBD
 * server waits for it between the pieces of a reply); call before
 * waiting on h.  Nothing on a unix socket. */
void chunk_nbd_quickack (struct nbd_handle *h);
struct nbd_handle *chunk_job_connect (const struct chunk_job *j,
                                      const char *const *ctx);

/* Walk block status of the whole disk for one meta context and call fn
 * for each extent (offset, length, flags), in order.  -1 on a libnbd
 * error or if the server makes no progress (the rest of the disk is
 * never taken for clean or unallocated). */
typedef void (*chunk_extent_fn) (void *opaque, uint64_t offset,
                                 uint64_t len, uint32_t flags);
int chunk_job_block_status (struct chunk_job *j, struct nbd_handle *h,
                            const char *context, chunk_extent_fn fn,
                            void *opaque);

/* Zero mapping: feed extents in order; the chunks that lie wholly inside
 * a run of zero extents get known_zero[c] = 1 (adjacent zero extents are
 * merged, so a chunk made of several zero extents counts). */
struct chunk_zero_map {
  struct chunk_job *j;
  uint64_t zstart;           /* start of the current zero run, or UINT64_MAX */
};
void chunk_zero_map_init (struct chunk_zero_map *z, struct chunk_job *j);
void chunk_zero_map_add (struct chunk_zero_map *z, uint64_t offset,
                         uint64_t len, bool zero);
/* chunk_extent_fn for base:allocation: opaque is a chunk_zero_map. */
void chunk_zero_map_extent (void *opaque, uint64_t offset, uint64_t len,
                            uint32_t flags);

/* Run the plan with up to threads workers.  0, or -1 with the first
 * worker's error restored in this thread. */
int chunk_job_run (struct chunk_job *j, int threads);

/* ---- backup-remote.c: a domain on another host (TCP, TLS) --------------- */

struct backup_remote {
  char host[256];            /* the URI's host name; "" = a local domain */
  char tls_dir[1024];        /* the client certificates ("" if insecure) */
  bool insecure;             /* plaintext NBD */
  char export_prefix[128];   /* "bootback-backup-PID-HOST-" */
  int port_min, port_max;
  int port;                  /* the port to try next / in use */
  int tries;                 /* ports found in use */
  bool gave_up;              /* no free port: the error says so */
};

/* From the libvirt URI and the options: rm->host "" for a local URI.
 * -1 with the error (no certificate directory, a bad port range). */
int backup_remote_init (struct backup_remote *rm, const char *uri,
                        const struct backup_opts *o);
/* Are the client certificate files there and readable?  -1 naming the
 * missing one. */
int backup_remote_check_tls (const struct backup_remote *rm);
/* After libvirt refused to begin with failure: if the port was in use,
 * move to the next one and say true; false if that was not why (or no
 * port is left: then the error says so). */
bool backup_remote_next_port (struct backup_remote *rm, const char *failure);
/* Set an error explaining a refused begin, if failure is one the user
 * must fix on the host (no TLS certificates there, a bind error). */
void backup_remote_begin_failed (const struct backup_remote *rm,
                                 const char *domain, const char *failure);
/* The owner of a remote job from its export prefix
 * ("bootback-backup-PID-HOST-"): -1 if not bootback's. */
int backup_remote_owner (const char *prefix, long *pid, char *host, size_t len);
/* Is host (of backup_remote_owner) this machine? */
bool backup_remote_owner_is_me (const char *host);
/* Who began the backup job of job XML xml: the PID of a bootback (0 if
 * not bootback's job), the machine it runs on ("" this one), and for a
 * local job its socket directory (dir, removed when the job is ended).
 * remote: the domain is on another host, whose job XML is not trusted
 * to name a directory of this machine (a unix socket there: not
 * bootback's).  -1 if the XML cannot be parsed. */
int backup_job_owner (const char *xml, bool remote, long *pid, char *host,
                      size_t hlen, char *dir, size_t dlen);
/* chunk_job's connect hook: connect_opaque is the backup_remote. */
int backup_remote_connect (const struct chunk_job *j, struct nbd_handle *h);

/* ---- backup-xml.c: libvirt XML for backups (pure: no libvirt calls) ---- */

/* One disk of a domain, as its XML describes it. */
struct backup_xml_disk {
  char target[DISK_NAME_MAX + 1];  /* "vda" */
  char device[16];           /* "disk", "cdrom", "floppy", "lun" */
  char type[16];             /* "file", "block", "network", "volume", ... */
  char format[16];           /* <driver type=...>: "qcow2", "raw"; without
                              * one "raw", as libvirt (never probed) */
  char source[1024];         /* file or dev path, "" if none */
  char protocol[16];         /* type network: <source protocol=> ("rbd") */
  bool readonly;
  bool shareable;
};

/* Parse a domain's XML (live or inactive) and list its <disk> devices in
 * document order into d (at most max).  *n gets the count.  -1 with the
 * error set if the XML is not a domain or a disk has no target. */
int backup_xml_domain_disks (const char *xml, struct backup_xml_disk *d,
                             size_t max, size_t *n);

/* What one disk does in a backup (every disk of the domain is listed). */
struct backup_xml_plan_disk {
  const char *name;          /* target, "vda" */
  bool backup;               /* exported by this backup */
  const char *incremental;   /* checkpoint to start from, NULL = full */
  bool bitmap;               /* the new checkpoint tracks this disk */
  const char *scratch;       /* scratch file (qcow2) when backup */
};
struct backup_xml_plan {
  const char *socket;        /* pull mode: NBD server unix socket, or */
  const char *tcp_host;      /* NULL and a TCP server on this address */
  int tcp_port;              /* and port (of the domain's host) */
  bool tls;                  /* TCP: with TLS (x509, libvirt's qemu.conf) */
  const char *export_prefix; /* before each export name, NULL = none */
  const char *checkpoint;    /* name of the new checkpoint, NULL = none */
  const char *description;   /* of the new checkpoint, may be NULL */
  size_t ndisks;
  const struct backup_xml_plan_disk *disks;
};

/* <domainbackup mode='pull'> for plan; each backed-up disk is exported
 * as export_prefix + its target name with the dirty bitmap
 * "backup-TARGET" when incremental.  malloc'd string, or NULL with the error set. */
char *backup_xml_backup (const struct backup_xml_plan *p);
/* <domaincheckpoint> for plan (every disk: checkpoint='bitmap' or 'no').
 * NULL with the error set if plan has no checkpoint name. */
char *backup_xml_checkpoint (const struct backup_xml_plan *p);

/* The disks a checkpoint tracks with a bitmap (checkpoint='bitmap'), from
 * its XML (virDomainCheckpointGetXMLDesc): names into names[0..max), *n
 * the count.  -1 if it is not a checkpoint's XML. */
int backup_xml_checkpoint_disks (const char *xml,
                                 char (*names)[DISK_NAME_MAX + 1],
                                 size_t max, size_t *n);

/* The unix socket of a running pull-mode backup job, from its XML
 * (virDomainBackupGetXMLDesc), into sock; "" if it is push mode or TCP.
 * -1 if the XML cannot be parsed. */
int backup_xml_job_socket (const char *xml, char *sock, size_t len);

/* The prefix of a running pull-mode backup job's export names, from its
 * XML, into prefix: what precedes the disk's name in the exportname of
 * its first backed-up disk ("" if none).  -1 if the XML cannot be parsed. */
int backup_xml_job_export (const char *xml, char *prefix, size_t len);

/* The host name of a libvirt URI into host ("" for a local URI:
 * qemu:///system, qemu+unix://...) and its pkipath= query parameter
 * (the client certificates of qemu+tls://) into pkipath ("" if none).
 * -1 if it is not a URI. */
int backup_uri_host (const char *uri, char *host, size_t hlen, char *pkipath,
                     size_t plen);

/* The namespace of bootback's element in a domain's <metadata>. */
#define BACKUP_XML_NS "https://bootback.dev/xmlns/backup/1"
/* Does bootback's metadata element (what virDomainGetMetadata returns
 * for BACKUP_XML_NS: the element without its namespace, e.g. <backup/>)
 * mark the domain for `backup --all`?  Yes unless it says enabled='no' or
 * carries another namespace.  NULL (no element) or unparsable: false. */
bool backup_xml_marked (const char *metadata_xml);

#endif /* BOOTBACK_INGEST_INT_H */
