/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * repo: the restore-point repository (docs/design.md, "Repository format").
 *
 *   <repo>/bootback-repo.json                 format, uuid, chunk size, codec
 *   <repo>/chunks/<4 hex>/<64 hex>            one chunk (header + payload)
 *   <repo>/points/<vm>/<time>/manifest.json   the restore point, written last
 *   <repo>/points/<vm>/<time>/<disk>.fidx     fixed index of one disk
 *   <repo>/points/<vm>/<time>/domain.xml      libvirt definition (optional;
 *                                             its SHA-256 in the manifest)
 *   <repo>/points/<vm>/<time>/protected       present = never pruned
 *   <repo>/locks/writers/<id>                 one per running writer (GC)
 *   <repo>/locks/gc                           held while a GC runs
 *   <repo>/holds/<name>                       a point in use (hold.c)
 *   <repo>/locks/holds                        held while a hold is added
 *                                             or a point removed
 *
 * All file I/O goes through a struct repo_io (io-posix.c, io-fault.c).
 * This library never touches the catalog and links no libvirt, so the
 * nbdkit plugin can use it.
 *
 * Thread safety: a struct repo may be used from many threads at once for
 * reading (points, disks, chunks, the cache).  A struct repo_writer belongs
 * to one import/backup job: repo_writer_put_chunk may be called from many
 * threads, the other writer calls from one.
 *
 * Errors: -1 or NULL and the last error (recovery/util/util.h) set.
 */
#ifndef BOOTBACK_REPO_H
#define BOOTBACK_REPO_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "recovery/util/util.h"

#define REPO_DIGEST_LEN 32
#define REPO_MIN_CHUNK (64 * 1024)
#define REPO_MAX_CHUNK (4 * 1024 * 1024)
/* zstd levels a repository may use: -7..-1 are zstd's fast levels. */
#define REPO_ZSTD_MIN_LEVEL (-7)
#define REPO_ZSTD_MAX_LEVEL 19
#define REPO_DEFAULT_CHUNK (1024 * 1024)
/* On an object store: the server spends about as much on an object
 * whatever its size (a request, its metadata, a write of the store's own),
 * so fewer, bigger chunks cost it far less; 4 MiB as Proxmox Backup Server
 * chunks VM images.  repo sync copies between chunk sizes. */
#define REPO_DEFAULT_CHUNK_OBJECT (4 * 1024 * 1024)
#define REPO_MAX_DISKS 64
/* The longest name of a hold (a file under holds/). */
#define REPO_HOLD_NAME_MAX 64
/* The longest lock of a point (repo init --lock, point lock --days). */
#define REPO_MAX_LOCK_DAYS 36500

struct repo;
struct repo_io;
struct repo_writer;
struct repo_point;
struct repo_disk;
struct repo_cache;

/* The sentinel digest of an all-zero chunk: 32 zero bytes.  Such chunks
 * are never stored. */
extern const uint8_t repo_zero_digest[REPO_DIGEST_LEN];
bool repo_digest_is_zero (const uint8_t d[REPO_DIGEST_LEN]);
/* SHA-256 of buf. Thread-safe. */
void repo_sha256 (const void *buf, size_t len, uint8_t out[REPO_DIGEST_LEN]);
/* The digest that names a chunk of r holding data: in repositories made
 * by this version ("hash": "sha256-tree") the SHA-256 of the SHA-256s of
 * its 64 KiB frames; in older ones ("sha256") the SHA-256 of data.  The
 * frames are hashed side by side on one of r's codecs (chunk.c). */
void repo_chunk_digest (struct repo *r, const void *data, size_t len,
                        uint8_t out[REPO_DIGEST_LEN]);
/* The same, on a hasher held across many digests (get, digest..., put);
 * put with jumped true if a digest was left by siglongjmp (a SIGBUS
 * under mapped data): that hasher is freed, not reused. */
struct repo_hasher;
struct repo_hasher *repo_hasher_get (struct repo *r);
void repo_hasher_digest (struct repo *r, struct repo_hasher *h,
                         const void *data, size_t len,
                         uint8_t out[REPO_DIGEST_LEN]);
void repo_hasher_put (struct repo *r, struct repo_hasher *h, bool jumped);

/* A byte range, e.g. of a chunk. */
struct repo_range {
  uint64_t off, len;
};

/* ---- opening ------------------------------------------------------------- */

/* What opening a repository needs besides its location.  The library
 * reads no environment: the command line and the nbdkit plugin fill this
 * from BOOTBACK_NFS_TIMEOUT and BOOTBACK_NFS_CONNECTIONS
 * (repo_open_opts_nfs).  Zero fields are the defaults. */
struct repo_open_opts {
  double nfs_timeout;           /* seconds without a reply before an NFS
                                 * call fails (1 to 3600; 0 = 30) */
  unsigned nfs_connections;     /* NFS connections at most (1 to 32;
                                 * 0 = 4) */
  /* The secret of an encrypted repository (the first one set is used):
   * a passphrase, a file whose first line is one, or a key file (its
   * bytes).  The command line fills these from BOOTBACK_PASSPHRASE,
   * BOOTBACK_PASSPHRASE_FILE and BOOTBACK_KEY_FILE. */
  const char *passphrase, *passphrase_file, *key_file;
  /* s3://BUCKET/PREFIX (io-s3.c): the endpoint (NULL: AWS's of the
   * region), the region (NULL: us-east-1), the keys, or a credentials
   * file and its profile (NULL: ~/.aws/credentials, "default").  Keys are
   * never taken from a command line nor put in a message. */
  const char *s3_endpoint, *s3_region;
  const char *s3_access_key, *s3_secret_key;
  const char *s3_credentials_file, *s3_profile;
  /* A local read cache of chunks (a directory, made 0700) and its size
   * ("4G" if NULL). */
  const char *s3_cache_dir, *s3_cache_size;
  /* A repository that opens plain though a secret is set is refused
   * (its configuration may have been turned plain by someone without
   * the key), unless this is true (repo sync, which checks each end
   * itself: --src-plain, --dst-plain). */
  bool allow_plain;
  /* A directory the caller lists first thing (points, or points/VM for
   * a point it names): an object store lists it while it opens, beside
   * the requests every open makes, and keeps the listing for its first
   * list (io-s3.c 15.).  NULL: none. */
  const char *list_ahead;
};
/* Is one of o's secret fields set? */
bool repo_open_opts_has_secret (const struct repo_open_opts *o);
/* Set o's secret fields (each may be NULL or empty: unset). */
void repo_open_opts_secret (struct repo_open_opts *o, const char *passphrase,
                            const char *passphrase_file, const char *key_file);
/* Set o's S3 fields from the environment: BOOTBACK_S3_ENDPOINT (unless
 * o->s3_endpoint is set already), BOOTBACK_S3_REGION, AWS_REGION or
 * AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, BOOTBACK_S3_CACHE,
 * BOOTBACK_S3_CACHE_SIZE. */
void repo_open_opts_s3_env (struct repo_open_opts *o);
/* Set o's NFS fields from the text of BOOTBACK_NFS_TIMEOUT and
 * BOOTBACK_NFS_CONNECTIONS (each may be NULL): text that is empty, not a
 * number or out of range gives the default, as it always has. */
void repo_open_opts_nfs (struct repo_open_opts *o, const char *timeout,
                         const char *connections);

struct repo_init_opts {
  uint32_t chunk_size;          /* 0 = REPO_DEFAULT_CHUNK, or
                                 * REPO_DEFAULT_CHUNK_OBJECT on s3://;
                                 * power of 2 */
  uint32_t frame_size;          /* 0 = a 64th of the chunk, 4K to 64K;
                                 * 65536 makes the "sha256-tree" chunks of
                                 * repositories made before (tests) */
  bool no_compression;          /* store every chunk raw */
  int zstd_level;               /* 0 = default (1); 1..19, or -7..-1 for
                                 * zstd's fast levels (faster, larger) */
  struct repo_open_opts open;   /* how to reach location (and the
                                 * secret, with encrypt) */
  bool encrypt;                 /* encrypt at rest (crypt.h): chunks,
                                 * manifests, indexes, domain.xml */
  int lock_days;                /* lock every point this many days after
                                 * it is written (S3: Object Lock
                                 * COMPLIANCE; elsewhere advisory) */
  bool object_lock;             /* S3: a bucket made is made with Object
                                 * Lock even without lock_days (so that
                                 * points can be locked later); else only
                                 * lock_days > 0 makes one with it.  An
                                 * error on local disk and NFS */
};

/* Create a new, empty repository at location (a directory path; it may
 * exist if empty; made 0700).  Returns 0, 1 if location is a repository
 * already (left as it is), or -1. */
int repo_init (const char *location, const struct repo_init_opts *opts);

/* Take group and other permissions off the repository's directory and
 * everything in it (repositories made before bootback kept them private
 * were 0755/0644).  Symbolic links are not followed.  0 or -1. */
struct repo_tightened {
  unsigned root_was;            /* the directory's mode before */
  uint64_t dirs, files;         /* how many had group or other permissions */
};
int repo_tighten (const char *location, const struct repo_open_opts *o,
                  struct repo_tightened *t);
/* The permission bits of the repository's directory (0 if unknown). */
unsigned repo_mode (struct repo *r);

/* Open an existing repository; o may be NULL (the defaults).  Fault
 * injection from the environment (BOOTBACK_FAULT, see io-fault.c: a test
 * hook) is applied here. NULL on error. */
struct repo *repo_open_with (const char *location,
                             const struct repo_open_opts *o);
/* repo_open_with with the defaults. */
struct repo *repo_open (const char *location);
/* Close; NULL is fine.  Not while other threads still use it. */
void repo_close (struct repo *r);

const char *repo_location (const struct repo *r);
/* Does it compress chunks (false: codec "none", every chunk stored raw)? */
bool repo_compresses (const struct repo *r);
const char *repo_uuid (const struct repo *r);
uint32_t repo_chunk_size (const struct repo *r);
struct repo_io *repo_get_io (struct repo *r);
/* Is r on an object store (S3): no rename, every request a round trip
 * to a server that commits it? */
bool repo_object_store (const struct repo *r);
/* The "lock_days" of bootback-repo.json (0: none).  The file is not
 * authenticated: the host keeps what it said (the catalog) and tells
 * repo_expect_lock; a point is then written (repo_writer_begin) only if
 * the file says as much. */
int repo_file_lock_days (const struct repo *r);
void repo_expect_lock (struct repo *r, int days);

/* ---- encryption keys (crypt.c) ------------------------------------------- */

#define REPO_KEY_ID_LEN 16
/* Is r encrypted (opened with its secret)? */
bool repo_encrypted (const struct repo *r);
struct repo_key_info {
  char id[REPO_KEY_ID_LEN + 1];
  char kind[16];                /* "passphrase" or "key-file" */
  char created[TIMESTAMP_LEN + 1];
  bool current;                 /* the key that opened r */
};
/* The key slots of an encrypted repository (n of them, then a zeroed
 * one); free().  NULL on error. */
struct repo_key_info *repo_key_list (struct repo *r, size_t *n);
/* Add a key slot for the secret of o (passphrase, passphrase file or key
 * file) wrapping r's master key: no chunk is rewritten.  id: the new
 * slot's.  Refuses a secret r already has. */
int repo_key_add (struct repo *r, const struct repo_open_opts *o,
                  char id[REPO_KEY_ID_LEN + 1]);
/* Remove a key slot; refuses the last one. */
int repo_key_remove (struct repo *r, const char *id);

/* ---- restore points ------------------------------------------------------- */

struct repo_disk_info {
  char name[DISK_NAME_MAX + 1];
  uint64_t size;                       /* virtual size in bytes */
  uint8_t index_sha256[REPO_DIGEST_LEN];  /* of the whole .fidx file */
  char format[16];                     /* source format, informative */
  uint64_t zero_chunks;                /* chunks that are all zero */
};

struct repo_point_stats {
  uint64_t bytes_read;       /* read from the source */
  uint64_t new_chunks;       /* chunks stored by this point */
  uint64_t new_bytes;        /* plaintext bytes of those */
  uint64_t stored_bytes;     /* bytes written for them (compressed) */
  uint64_t reused_chunks;    /* chunks that were already there */
  double seconds;
  /* Plaintext bytes of the new chunks that zstd could not shrink (stored
   * raw), -1 if unknown (no compression, or a point read back from its
   * manifest: this one is not in the manifest, whose format it keeps). */
  int64_t raw_bytes;
};

struct repo_manifest {
  char vm[VM_NAME_MAX + 1];
  char id[TIMESTAMP_LEN + 1];                 /* time stamp, also the directory name */
  time_t time;
  char parent[TIMESTAMP_LEN + 1];             /* "" if none */
  char kind[16];               /* "full" or "incremental" */
  char consistency[16];        /* "crash" or "application" */
  char source[16];             /* "import" or "backup" */
  char checkpoint[128];        /* source-side checkpoint this point is at
                                  (libvirt checkpoint name), "" if none */
  uint32_t chunk_size;
  bool has_domain_xml;
  /* The manifest pins domain.xml by its SHA-256 ("domain_xml_sha256"):
   * every read checks it.  Points made before bootback pinned it have no
   * pin; their domain.xml is used as it is, and repo check says so. */
  bool domain_xml_pinned;
  uint8_t domain_xml_sha256[REPO_DIGEST_LEN];
  bool protected;              /* the protected marker exists */
  size_t ndisks;
  struct repo_disk_info disks[REPO_MAX_DISKS];
  struct repo_point_stats stats;
};

/* List the VMs that have points (names into a NULL-terminated array the
 * caller frees with strv_free). */
char **repo_list_vms (struct repo *r);
/* List the point ids of one VM, oldest first, only points whose manifest
 * exists.  NULL-terminated; strv_free. */
char **repo_list_points (struct repo *r, const char *vm);
/* The ids of vm's point directories, complete or not, sorted: one
 * directory listing, nothing stat'ed (the catalog's cheap comparison).
 * NULL-terminated; strv_free. */
char **repo_list_point_dirs (struct repo *r, const char *vm);
/* The id of vm's newest point older than id (its manifest exists) into
 * prev, "" if none, and its manifest read into m as repo_manifest_read
 * does: one listing, and a read of the manifests from the newest down
 * until one is there (the read is the look: no stat first, a round trip
 * on S3).  1 if there is one, 0 if not, -1 if a manifest could not be
 * read for another reason than its absence. */
int repo_point_before_read (struct repo *r, const char *vm, const char *id,
                            char prev[TIMESTAMP_LEN + 1],
                            struct repo_manifest *m);

/* Parse "VM@TIME", "VM@latest" or "VM" (= latest) into vm and id (the
 * existing point's id). -1 if malformed or no such point, naming it. */
int repo_point_resolve (struct repo *r, const char *spec,
                        char vm[VM_NAME_MAX + 1], char id[TIMESTAMP_LEN + 1]);
/* repo_point_resolve, and the point's manifest read into m as
 * repo_manifest_read does: usually one read of it, which is also the
 * check that the point exists (no stat of it first: a round trip on
 * S3). */
int repo_point_resolve_read (struct repo *r, const char *spec,
                             char vm[VM_NAME_MAX + 1],
                             char id[TIMESTAMP_LEN + 1],
                             struct repo_manifest *m);

/* The point as a JSON object (bootback points --json, point show --json,
 * the web API): vm, id, time, kind, consistency, protected, size, disks,
 * stats.  A new reference. */
struct json_t;
struct json_t *repo_manifest_json (const struct repo_manifest *m);
/* Read and validate a point's manifest.  -1 if missing or invalid. */
int repo_manifest_read (struct repo *r, const char *vm, const char *id,
                        struct repo_manifest *m);
/* Read the saved domain XML of a point (malloc'd, NUL-terminated),
 * checked against the SHA-256 its manifest pins.  NULL with errno ENOENT
 * if the point has none; NULL with the error naming the file and the
 * point if it is missing, unreadable or changed ("SHA-256 mismatch"). */
char *repo_domain_xml_read (struct repo *r, const char *vm, const char *id);

/* Mark or unmark a point as protected (a marker file beside the manifest;
 * the manifest itself is never rewritten). */
int repo_point_protect (struct repo *r, const char *vm, const char *id,
                        bool on);
/* ---- holds: points in use (hold.c) ------------------------------------------ */

/* A hold says a point is in use (an instant session or lab run boots it, a
 * server serves it): prune keeps it.  Stored in the repository as
 * holds/NAME, so every host and process sharing the repository sees it. */
struct repo_hold {
  char name[REPO_HOLD_NAME_MAX + 1];  /* file name under holds/ ("" =
                                         make one) */
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];       /* the point */
  char host[64];              /* the holder's host ("" = this one) */
  long pid;                   /* a process of host that lives as long as the
                                 hold is needed, 0 if none */
  char home[1024];            /* the holder's state directory, "" if none */
  int64_t session;            /* instant session id in home's catalog, 0 */
  char owner[256];            /* for messages: "instant session 3 (web1)" */
};
/* Record h (fills h->name and h->host if empty).  Under locks/holds, and
 * only if the point still exists: -1 "VM@ID no longer exists" if a prune
 * removed it meanwhile; I/O errors (a read-only repository: EROFS,
 * EACCES) keep their errno. */
int repo_hold_add (struct repo *r, struct repo_hold *h);
/* Does the error of a failed repo_hold_add only mean the repository
 * cannot be written here (so a reader may go on without a hold)? */
bool repo_hold_unwritable (int err);
/* Remove a hold by name; a missing one is fine. */
int repo_hold_remove (struct repo *r, const char *name);
/* Every hold (n of them, then a zeroed one); free() the array.  Control
 * characters of the stored text are replaced.  NULL on error. */
struct repo_hold *repo_hold_list (struct repo *r, size_t *n);
/* Is the holder surely gone: h has a pid, h->host is this host, and there
 * is no such process? */
bool repo_hold_dead (const struct repo_hold *h);

/* ---- locks (hold.c) ---------------------------------------------------------- */

/* Lock vm@id until until: no prune or removal before then.  On S3, Object
 * Lock retention (COMPLIANCE) of the point's objects and of every chunk it
 * uses: the server refuses their deletion, even to the repository's own
 * keys (-1 with errno EOPNOTSUPP if the bucket has no Object Lock).  On
 * local disk and NFS an advisory marker that bootback honours.  An
 * earlier until than the current lock changes nothing. */
int repo_point_lock (struct repo *r, const char *vm, const char *id,
                     time_t until);
/* Until when m's point is locked (0 or a past time: not locked): its
 * marker, the repository's lock_days after the point's time, and on S3 its
 * manifest's retention.  0 or -1. */
int repo_point_locked_until (struct repo *r, const struct repo_manifest *m,
                             time_t *until);
/* "YYYY-MM-DD HH:MM:SS UTC" if vm@id is locked now (malloc'd), else NULL;
 * "unknown (WHY)" if its lock cannot be read (that counts as locked). */
char *repo_point_lock_text (struct repo *r, const char *vm, const char *id);

/* Remove a point: the manifest first (the point vanishes atomically), then
 * its other files and its directory.  Chunks stay until GC. Refuses a
 * protected point, and a held one (errno EBUSY, the error naming the
 * holder, *held_by (may be NULL) set to the hold); dead holds of the
 * point are removed.  Runs under locks/holds (see repo_hold_add). */
int repo_point_remove (struct repo *r, const char *vm, const char *id,
                       struct repo_hold *held_by);
/* Did bootback remove vm@id (prune, on any host)?  repo_point_remove
 * writes pruned/VM/ID before the manifest goes (sealed with the key in an
 * encrypted repository: one that does not open counts as none), and only
 * a new point of the same id removes it: a point the catalog recorded
 * that is gone without it was lost some other way (the repository rolled
 * back to an older copy, or files deleted by hand).  1 yes, 0 no, -1
 * with the error. */
int repo_point_pruned (struct repo *r, const char *vm, const char *id);

/* ---- reading a disk of a point --------------------------------------------- */

/* Open one disk of a point: reads its fixed index and checks it against
 * the manifest's checksum.  NULL on error. */
struct repo_disk *repo_disk_open (struct repo *r, const char *vm,
                                  const char *id, const char *disk);
/* The same with the point's manifest already read (m: its vm, id and
 * disks), which is not read again. */
struct repo_disk *repo_disk_open_m (struct repo *r,
                                    const struct repo_manifest *m,
                                    const char *disk);
void repo_disk_close (struct repo_disk *d);
uint64_t repo_disk_size (const struct repo_disk *d);
uint64_t repo_disk_nchunks (const struct repo_disk *d);
/* The digest of chunk i (i < nchunks). */
const uint8_t *repo_disk_digest (const struct repo_disk *d, uint64_t i);
const char *repo_disk_name (const struct repo_disk *d);
/* "vm@id" of the disk's point. */
const char *repo_disk_point (const struct repo_disk *d);

/* Read count bytes at offset (must lie inside the disk).  Goes through
 * cache if not NULL.  Every chunk is checked against its SHA-256; on any
 * bad or missing chunk returns -1 with an error naming the chunk, point,
 * disk and byte range, and buf's content is unspecified.  Thread-safe. */
int repo_disk_pread (struct repo_disk *d, struct repo_cache *cache,
                     void *buf, uint32_t count, uint64_t offset);
/* repo_disk_pread for a reader that streams through the disk (a
 * sequential copy): a whole chunk that the cache neither holds nor has
 * room for is decoded straight into buf and not kept (cache.c invariant
 * 5), so that the stream neither evicts what others use nor pays a copy
 * through the cache. */
int repo_disk_pread_stream (struct repo_disk *d, struct repo_cache *cache,
                            void *buf, uint32_t count, uint64_t offset);

/* Is [offset, offset+count) made of zero chunks only?  Reports the run of
 * equal kind starting at offset: *len = bytes up to the first chunk of the
 * other kind (or count), *zero = whether that run is zero. */
void repo_disk_extent (const struct repo_disk *d, uint64_t offset,
                       uint64_t count, uint64_t *len, bool *zero);

/* ---- decoded-chunk cache (cache.c) ------------------------------------------ */

/* A shared LRU cache of decoded chunks, bounded to max_bytes.  However many
 * threads ask for the same chunk at once, it is read and decoded once. */
struct repo_cache *repo_cache_new (struct repo *r, size_t max_bytes);
void repo_cache_free (struct repo_cache *c);
struct repo_cache_stats {
  uint64_t hits, misses, decodes, evictions;
  uint64_t tables_kept;         /* misses that found the chunk's frame
                                 * table kept (no head read) */
  uint64_t bytes;               /* decoded bytes held */
  uint64_t held, peak;          /* all the memory held (<= max_bytes unless
                                 * the chunks in use need more), highest */
};
void repo_cache_get_stats (struct repo_cache *c, struct repo_cache_stats *s);
/* Ask for chunk i of d to be loaded in the background (read-ahead).
 * Never blocks, never fails (it is only a hint). */
void repo_cache_prefetch (struct repo_cache *c, struct repo_disk *d,
                          uint64_t chunk);

/* ---- chunks (chunk-store.c) ------------------------------------------------- */

/* Read, decode and verify one chunk into buf (buflen >= chunk size).
 * *len gets the plaintext length.  -1 with an error naming the chunk and
 * what is wrong (missing, bad header, CRC, decode, SHA-256 mismatch). */
int repo_chunk_get (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                    void *buf, size_t buflen, size_t *len);
/* How many of a chunk's plaintext bytes are stored raw (zstd did not
 * shrink them), from its header and frame table only (checked against
 * the digest).  -1 with the error naming the chunk. */
int repo_chunk_raw_bytes (struct repo *r,
                          const uint8_t digest[REPO_DIGEST_LEN],
                          uint64_t *raw);
/* Does the chunk file exist (stat only)? 1 yes, 0 no, -1 error. */
int repo_chunk_exists (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN]);
/* Relative path of a chunk, "chunks/abcd/abcd...". */
void repo_chunk_path (const uint8_t digest[REPO_DIGEST_LEN], char out[80]);

/* ---- writing a point (writer.c) -------------------------------------------- */

/* Start writing a new point of vm.  time 0 = now.  The point's id is the
 * time, moved forward a second at a time until it is newer than every
 * existing point of vm and unused.  Registers the writer in locks/writers
 * (so a concurrent GC keeps every chunk this writer touches).  On an
 * object store with time 0 the id is claimed on a thread of its own
 * while the chunks are stored (writer.c); a failed claim fails the
 * commit. */
struct repo_writer *repo_writer_begin (struct repo *r, const char *vm,
                                       time_t time);
/* The point's id (waits for its claim): "" if it could not be claimed
 * (the writer has failed; only abort remains). */
const char *repo_writer_id (struct repo_writer *w);

/* Store one chunk (data of len bytes, len <= chunk size, not all zero)
 * and set digest to its name (repo_chunk_digest).  If the chunk exists it
 * is only touched (GC safety); otherwise compressed and written (temp,
 * [fsync], rename).  *was_new (may be NULL) tells which.  Thread-safe.
 * -1 on error: the writer is then failed and can only be aborted. */
int repo_writer_put_chunk (struct repo_writer *w, const void *data,
                           size_t len, uint8_t digest[REPO_DIGEST_LEN],
                           bool *was_new);

/* Store the chunk that is the existing chunk base (not the zero digest)
 * with new bytes written over it: data holds them at the byte ranges
 * given (relative to the chunk; sorted, disjoint), len is the chunk's
 * length.  Only the 64 KiB frames the ranges touch are hashed and
 * compressed; the others are copied from base as stored.  Sets digest
 * (the zero digest if the result is all zeros: nothing is stored).
 * Returns 1 done; 0 if base cannot serve (missing, damaged, another
 * length; the caller must read and put the whole chunk); -1 on error
 * (the writer is failed).  data is scratch: its contents are changed. */
int repo_writer_patch_chunk (struct repo_writer *w,
                             const uint8_t base[REPO_DIGEST_LEN],
                             uint8_t *data, size_t len,
                             const struct repo_range *ranges, size_t nranges,
                             uint8_t digest[REPO_DIGEST_LEN]);

/* Use an existing chunk by digest alone (an incremental backup reusing
 * the previous point's digest for a range that did not change): touches
 * it, which keeps a concurrent GC away.  Returns 0, or -1 with errno
 * ENOENT if the chunk is not in the repository (the caller must then read
 * the data and put it), or -1 on other errors (the writer fails). */
int repo_writer_reuse_chunk (struct repo_writer *w,
                             const uint8_t digest[REPO_DIGEST_LEN]);

/* Add a disk: size and its digest list (nchunks = ceil(size/chunk size)),
 * copied.  Call after all its chunks were put. */
int repo_writer_add_disk (struct repo_writer *w, const char *name,
                          uint64_t size, const char *format,
                          const uint8_t (*digests)[REPO_DIGEST_LEN]);
int repo_writer_set_domain_xml (struct repo_writer *w, const char *xml);
/* Record the source-side checkpoint the point corresponds to. */
void repo_writer_set_checkpoint (struct repo_writer *w, const char *name);
/* Fill in the point's description (kind, consistency, parent, source,
 * stats). Fields vm/id/time/disks are the writer's.  NULL leaves a field
 * as it is. */
void repo_writer_set_info (struct repo_writer *w, const char *kind,
                           const char *consistency, const char *source,
                           const char *parent,
                           const struct repo_point_stats *stats);
/* The commit protocol, steps 1-3 (docs/design.md): make chunks durable, write
 * each index, then the manifest.  On success the point exists and m (if
 * not NULL) describes it.  On error nothing is visible.  Either way the
 * writer is freed. */
int repo_writer_commit (struct repo_writer *w, struct repo_manifest *m);
/* Give up: remove what was written of the point (not chunks), unregister,
 * free.  NULL is fine. */
void repo_writer_abort (struct repo_writer *w);
/* Counters (thread-safe reads at any time). */
void repo_writer_get_stats (struct repo_writer *w, struct repo_point_stats *s);

/* ---- verify and check (verify.c) ---------------------------------------------- */

struct repo_problem {
  const char *what;         /* e.g. "chunk missing", "SHA-256 mismatch" */
  const char *object;       /* chunk digest hex, or a path */
  const char *detail;       /* error text */
  /* Where it is used: "vm@id disk bytes a-b; ..." (may be long) */
  const char *used_by;
  /* Not a problem, worth saying: a domain.xml without a pin (a point
   * made before bootback pinned it). */
  bool note;
};
typedef void (*repo_problem_fn) (void *opaque, const struct repo_problem *p);

struct repo_verify_result {
  uint64_t points, disks, chunks_checked, bytes_checked, problems;
  uint64_t incomplete;     /* directories of unfinished points (harmless) */
  uint64_t unpinned;       /* points whose domain.xml has no pin (notes) */
};

/* point: NULL for all, else "VM" or "VM@TIME".  read_data: true = verify
 * (read and hash every referenced chunk once), false = check (structure:
 * manifests, indexes, chunk files present, sizes).  Each problem is given
 * to fn.  Returns 0 (res filled, problems may be > 0) or -1 if it could
 * not run at all. */
int repo_verify (struct repo *r, const char *point, bool read_data,
                 int threads, repo_problem_fn fn, void *opaque,
                 struct repo_verify_result *res);

/* ---- retention (retention.c) --------------------------------------------------- */

struct repo_keep {
  int last, hourly, daily, weekly, monthly, yearly;   /* 0 = rule unused */
};
enum repo_prune_mark { REPO_PRUNE_REMOVE = 0, REPO_PRUNE_KEEP, REPO_PRUNE_PROTECTED };
struct repo_prune_item {
  time_t time;
  bool protected;
  enum repo_prune_mark mark;   /* out */
  const char *reason;          /* out: "last", "daily", ... or "protected" */
};
/* Decide for the points of one VM (items sorted newest first) which to
 * keep.  Calendar buckets are in UTC.  A rule keeps the newest point of each
 * of the N most recent buckets that hold points and are not already covered
 * by a point kept by an earlier rule (order: last, hourly, daily, weekly,
 * monthly, yearly).  With no rule at all, everything is kept. */
void repo_prune_plan (struct repo_prune_item *items, size_t n,
                      const struct repo_keep *keep);

/* ---- copying points between repositories (sync.c) -------------------------- */

struct repo_sync_progress {
  char point[VM_NAME_MAX + TIMESTAMP_LEN + 2];   /* "vm@id" being copied */
  uint64_t chunks_done;       /* chunk references gone through */
  uint64_t chunks_copied;     /* chunks written to DST */
  uint64_t bytes_copied;      /* their plaintext bytes */
  uint64_t chunks_present;    /* chunks DST had already */
  uint64_t chunks_verified;   /* read back from DST (verify) */
};
typedef void (*repo_sync_fn) (void *opaque, const struct repo_sync_progress *p);
/* Copy point vm@id of src into dst (same id, same content; dst's keys):
 * only the chunks dst lacks, each read from src checked; the commit
 * protocol of dst's writer; verify: read every chunk back from dst.
 * fn (may be NULL) is called as chunks go by; pg accumulates.  Returns
 * 0 copied, 1 dst had the point already, -1 on error (dst stays
 * consistent; a rerun resumes). */
int repo_sync_point (struct repo *src, struct repo *dst, const char *vm,
                     const char *id, bool verify, repo_sync_fn fn,
                     void *opaque, struct repo_sync_progress *pg);

/* ---- garbage collection (gc.c) -------------------------------------------------- */

struct repo_gc_result {
  uint64_t chunks_total, chunks_referenced, chunks_removed, bytes_removed;
  uint64_t chunks_kept_recent;   /* unreferenced but too recent to remove */
  uint64_t chunks_kept_locked;   /* unreferenced but under Object Lock */
  uint64_t dirs_removed;          /* incomplete point directories */
  uint64_t temps_removed;
  uint64_t trash_restored;        /* chunks a killed GC left in its trash */
  double cutoff;                  /* fs clock; older unreferenced go */
};
/* Mark every chunk referenced by any point's index, then sweep the others
 * that are older than the cutoff: the GC's start or the start of the
 * oldest running writer, whichever is earlier, less a safety margin.
 * dry_run: count only.  Only one GC at a time (locks/gc). */
int repo_gc (struct repo *r, bool dry_run, struct repo_gc_result *res);
/* What `gc --json` prints and a web gc job's result are. */
struct json_t *repo_gc_result_json (const struct repo_gc_result *res,
                                    bool dry_run);

#endif /* BOOTBACK_REPO_H */
