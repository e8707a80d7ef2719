/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the repository library: the I/O ops table and the structs
 * behind the opaque types of repo.h, sectioned by file.
 */
#ifndef BOOTBACK_REPO_INT_H
#define BOOTBACK_REPO_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

/* ---- io.c, io-posix.c, io-fault.c: the I/O ops table --------------------- */

/* Every file operation on a repository goes through this table.  Paths are
 * relative to the repository root ("chunks/ab12/ab12..." ).  Each op returns
 * -1 (or NULL) with the last error set, naming the operation and the full
 * location, and errno set (ENOENT, EIO, ENOSPC, ...) so callers can tell
 * cases apart.  Implementations must be thread-safe. */
struct repo_file;
struct repo_stat {
  uint64_t size;
  double mtime;             /* seconds, the storage's clock */
  bool is_dir;
  unsigned mode;            /* permission bits (07777) */
  time_t retain_until;      /* S3 Object Lock retention, 0 if none */
  unsigned nlink;           /* names of the file (posix; 0: not known) */
};
struct repo_io_ops {
  const char *name;
  /* Objects, not files (io-s3.c): no rename, a file is written whole at
   * close; GC and writers exclude each other (gc.c). */
  bool object_store;
  /* flags: O_RDONLY, or O_WRONLY|O_CREAT|O_EXCL (temp files).  Files are
   * created 0600 and directories 0700 (mkdir): a repository holds disks,
   * it is its owner's alone. */
  struct repo_file *(*open) (struct repo_io *io, const char *path, int flags);
  ssize_t (*pread) (struct repo_io *io, struct repo_file *f, void *buf,
                    size_t n, uint64_t off);
  /* May write fewer bytes than asked (callers loop). */
  ssize_t (*pwrite) (struct repo_io *io, struct repo_file *f, const void *buf,
                     size_t n, uint64_t off);
  int (*fsync) (struct repo_io *io, struct repo_file *f);
  /* Optional (may be NULL): start writing the file's dirty pages back
   * now, without waiting, so that a later sync_all has less to do.  A
   * hint: it promises nothing and reports no error. */
  void (*start_writeback) (struct repo_io *io, struct repo_file *f);
  /* Optional (may be NULL): the file at path will be read soon (read-
   * ahead): start reading it into memory now, without waiting.  A hint:
   * it promises nothing and reports no error. */
  void (*will_need) (struct repo_io *io, const char *path);
  /* Optional (may be NULL): a read of path failed its caller's checks
   * (an index, a chunk): drop any local copy of it (the S3 read cache),
   * so that the next read fetches the original.  True if there was
   * one. */
  bool (*uncache) (struct repo_io *io, const char *path);
  /* Optional (NULL: false): does an open of path fetch the whole file
   * from a server (an S3 object of at most a chunk not in the read
   * cache, io-s3.c 4.), so that a reader of part of it may as well take
   * all?  A hint: what is read is checked as any read. */
  bool (*fetches_whole) (struct repo_io *io, const char *path);
  int (*fstat) (struct repo_io *io, struct repo_file *f, struct repo_stat *st);
  int (*close) (struct repo_io *io, struct repo_file *f);
  int (*stat) (struct repo_io *io, const char *path, struct repo_stat *st);
  int (*mkdir) (struct repo_io *io, const char *path);
  int (*rmdir) (struct repo_io *io, const char *path);
  int (*unlink) (struct repo_io *io, const char *path);
  int (*rename) (struct repo_io *io, const char *from, const char *to);
  /* Take group and other permissions off path without following symbolic
   * links (bootback repo init of an existing repository): 1 if it had
   * any, 0 if not (or not a regular file or directory), -1 (ELOOP: a
   * symbolic link, left alone).  st: what it is, its mode before. */
  int (*tighten) (struct repo_io *io, const char *path, struct repo_stat *st);
  /* Set the mtime to now (the storage's clock).  ENOENT if missing. */
  int (*touch) (struct repo_io *io, const char *path);
  /* Names in a directory (no . and ..), NULL-terminated, malloc'd. */
  char **(*list) (struct repo_io *io, const char *path);
  /* Make a directory's entries durable. */
  int (*sync_dir) (struct repo_io *io, const char *path);
  /* Optional (may be NULL: locks are advisory, hold.c): keep path from
   * being deleted or overwritten until until (S3 Object Lock). */
  int (*retain) (struct repo_io *io, const char *path, time_t until);
  /* Make everything written so far durable (syncfs). */
  int (*sync_all) (struct repo_io *io);
  void (*free) (struct repo_io *io);
};

/* io.c: the ops' fetches_whole of path (false when it has none). */
bool io_fetches_whole (struct repo_io *io, const char *path);

struct repo_io {
  const struct repo_io_ops *ops;
  char *location;           /* for messages */
  void *priv;
};

/* io-posix.c: a local directory (must exist). */
struct repo_io *io_posix_new (const char *dir);
/* io-fault.c: wrap io with the fault spec (BOOTBACK_FAULT syntax). The
 * wrapper owns inner.  NULL + error if the spec is invalid. */
struct repo_io *io_fault_new (struct repo_io *inner, const char *spec);

/* io.c: helpers on top of the table. */
/* Read a whole file of at most max bytes (malloc'd, NUL added). */
int io_read_file (struct repo_io *io, const char *path, size_t max,
                  char **data, size_t *len);
/* Write all of buf at off, looping over short writes. */
int io_write_all (struct repo_io *io, struct repo_file *f, const void *buf,
                  size_t n, uint64_t off);
/* Atomically create or replace path with data: temp file in the same
 * directory, write, fsync, close, rename, fsync the directory (steps 2/3 of
 * the commit protocol).  A failed fsync is never retried. */
int io_write_file_atomic (struct repo_io *io, const char *path,
                          const void *data, size_t len);
/* mkdir that treats EEXIST as success. */
int io_mkdir_p1 (struct repo_io *io, const char *path);
/* Remove a directory and the files in it (one level). */
int io_remove_dir (struct repo_io *io, const char *path);
/* The storage's clock now: touch a scratch file and read its mtime. */
int io_clock (struct repo_io *io, double *now);
/* Take the lock file path (O_EXCL; it names this host and pid), waiting up
 * to wait seconds for its holder.  A lock left by a dead process of this
 * host, or left empty for more than 30 s (its taker killed between the
 * create and the write), is taken over: under a claim on that very lock
 * (PATH.takeover-ID-K), and removed only if it is still the one judged
 * stale, so that two takers never both hold it.  -1 with "WHAT is running
 * (...: host H pid P); if it is not, remove that file" if still held. */
int io_lock (struct repo_io *io, const char *path, const char *what,
             double wait);
/* Is the lock file path held: 1 yes (by a live process, or one of
 * another host), 0 no (missing, or left by a dead process of this host,
 * or empty for more than 30 s),
 * -1 on error. */
int io_lock_held (struct repo_io *io, const char *path);
/* gc.c, object stores: wait (up to an hour) while a garbage collection
 * holds locks/gc.  0, or -1 with the error set. */
int gc_wait_for_gc (struct repo_io *io);
int gc_dir_maybe_written (struct repo_io *io, double mtime);
/* Remove the lock file (keeps the last error). */
void io_unlock (struct repo_io *io, const char *path);
/* A unique suffix for temp names: ".tmp-PID-N". */
void io_temp_suffix (char *buf, size_t len);
static inline bool io_is_temp_name (const char *name)
{
  return strstr (name, ".tmp-") != NULL;
}
/* A listing's bounds (io-s3.c, io-nfs.c): at most IO_LIST_MAX names,
 * and a name a hostile server lists is kept only if it can be one of
 * ours: one component, not "." or "..", of at most IO_LIST_NAME_MAX
 * bytes, no NUL ("a/b", "../x" or a name cut at a NUL would leave the
 * directory listed when joined to it). */
#define IO_LIST_MAX (1 << 20)
#define IO_LIST_NAME_MAX 255
static inline bool io_list_name_ok (const char *name, size_t l)
{
  return l > 0 && l <= IO_LIST_NAME_MAX && memchr (name, '/', l) == NULL &&
    memchr (name, '\0', l) == NULL &&
    !(name[0] == '.' && (l == 1 || (l == 2 && name[1] == '.')));
}

/* ---- repo.c ----------------------------------------------------------- */

struct codec;
struct repo {
  struct repo_io *io;
  char *location;
  char uuid[UUID_STR_LEN + 1];
  uint32_t chunk_size;
  bool compress;              /* false: codec "none", every chunk raw */
  int zstd_level;             /* 1..19 or -7..-1 */
  int tree;                   /* "hash": "sha256-tree[-NK]": log2 of its
                               * frame size (chunk_frame_shift); 0 for
                               * "sha256" */
  bool sync_each_chunk;       /* "sync": "file" instead of "filesystem" */
  int lock_days;              /* points locked so long: "lock_days", or
                               * on S3 the bucket's default if longer */
  int file_lock_days;         /* "lock_days" of the file (0: none) */
  int lock_expected;          /* what the host recorded (repo_expect_lock) */
  pthread_mutex_t codec_lock;
  struct codec *codecs;       /* free list of compression contexts */
  struct chunk_files *files;  /* chunk files kept open (chunk-store.c) */
  bool files_tried;           /* files set up (or not), under codec_lock */
  struct repo_crypt *crypt;   /* keys of an encrypted repository (crypt.h),
                               * NULL if plain */
};

/* -1 with the error set if bootback-repo.json's "lock_days" is less than
 * the host expects (repo_expect_lock). */
int repo_lock_check (const struct repo *r);

/* repo_point_remove without looking at holds (hold.c calls it under the
 * holds lock). */
int point_remove_now (struct repo *r, const char *vm, const char *id);

/* ---- chunk.c: the chunk file formats ---------------------------------- */

/* Header, little-endian, 32 bytes:
 *   0  magic "BBC1" (one zstd frame or raw) or "BBC2" (framed)
 *   4  BBC1: codec (0 raw, 1 zstd); BBC2: log2 of the frame size (the
 *      repository's: 16 for "sha256-tree", 12-15 for "sha256-tree-4k"
 *      ... "-32k"); then 3 bytes zero
 *   8  raw_len    plaintext length
 *  12  stored_len payload length (file size = 32 + stored_len)
 *  16  crc32 of the payload (zlib's CRC-32)
 *  20  crc32 of bytes 0..19
 *  24  8 bytes zero
 * A BBC2 payload is a frame table, one 40-byte entry per frame of
 * the plaintext (the last may be shorter):
 *   0  SHA-256 of the frame's plaintext
 *  32  stored length of the frame
 *  36  codec of the frame (0 raw, 1 zstd)
 * then the frames' stored bytes in order.  The chunk's digest in a
 * "sha256-tree" repository is the SHA-256 of the concatenated frame
 * hashes (chunk.c). */
#define CHUNK_HDR_LEN 32
#define CHUNK_CODEC_RAW  0
#define CHUNK_CODEC_ZSTD 1
/* Frames: 64 KiB in "sha256-tree" repositories (the first framed
 * ones), smaller in newer ones (repo_init: a 64th of the chunk, at least
 * 4 KiB), so that reading 4 KiB decodes and hashes little.  A chunk has
 * at most CHUNK_MAX_FRAMES frames of at most CHUNK_FRAME bytes. */
#define CHUNK_FRAME_SHIFT 16
#define CHUNK_MIN_FRAME_SHIFT 12
#define CHUNK_FRAME (1u << CHUNK_FRAME_SHIFT)
#define CHUNK_MAX_FRAMES 64
_Static_assert (CHUNK_MAX_FRAMES * CHUNK_FRAME >= REPO_MAX_CHUNK,
                "64 KiB frames cover the largest chunk");
/* The frame size of r (its frames when it has tree digests; BBC2 files of
 * other repositories have 64 KiB frames). */
static inline size_t
chunk_frame (const struct repo *r)
{
  return (size_t) 1 << (r->tree ? r->tree : CHUNK_FRAME_SHIFT);
}
#define CHUNK_ENTRY_LEN 40

struct codec {
  struct codec *next;
  void *cctx;                 /* ZSTD_CCtx */
  void *dctx;                 /* ZSTD_DCtx */
  uint8_t *buf;               /* a chunk file being encoded or decoded */
  uint8_t *in;                /* the base chunk file of a patch (made by
                               * the first patch) */
  uint8_t *frame;             /* one frame of plaintext */
  size_t buflen;              /* of buf and in */
  void *mb;                   /* IMB_MGR: frames hashed side by side
                               * (chunk.c), made on first use */
  bool mb_tried;
};
struct codec *codec_get (struct repo *r);
void codec_put (struct repo *r, struct codec *c);
void codec_free_all (struct repo *r);

/* The digest of data (repo_chunk_digest) and, in a tree repository, the
 * SHA-256 of each frame in fh, hashed side by side on c's manager (c may
 * be NULL: OpenSSL). */
void chunk_digest (const struct repo *r, struct codec *c, const void *data,
                   size_t len, uint8_t (*fh)[REPO_DIGEST_LEN],
                   uint8_t out[REPO_DIGEST_LEN]);
/* Encode data into c->buf; returns the file length (header + payload).
 * fh: the frame hashes from chunk_digest (unused unless tree). */
size_t chunk_encode (struct repo *r, struct codec *c, const void *data,
                     size_t len, const uint8_t (*fh)[REPO_DIGEST_LEN]);
/* Plaintext bytes of a chunk file this process encoded (chunk_encode or
 * a patch) that are stored raw: zstd did not save enough on them. */
size_t chunk_raw_bytes (const uint8_t *file);
/* Decode a whole chunk file (file, flen) into out (outlen = capacity,
 * never more is written or allocated) and check the digest.  -1 with the
 * error saying what is wrong (without the chunk name: callers add it). */
int chunk_decode (struct repo *r, struct codec *c, const uint8_t *file,
                  size_t flen, void *out, size_t outlen, size_t *len,
                  const uint8_t digest[REPO_DIGEST_LEN]);
/* Is the chunk file of flen bytes whose first avail bytes are at head a
 * BBC2 file (of r, of at most outlen plaintext bytes) whose frames are
 * all stored raw (incompressible data)?  1 and *hlen the length of its
 * header and table: its frames follow, the plaintext as it is; else 0
 * (read it whole: chunk_decode says what is wrong, if anything). */
int chunk_raw_head (struct repo *r, const uint8_t *head, size_t avail,
                    uint64_t flen, size_t outlen, size_t *hlen);
/* chunk_decode for a file chunk_raw_head accepted, read as its head
 * (hlen bytes at head) and its frames, read straight into out: the same
 * checks (header, payload CRC, table, each frame's SHA-256, the digest),
 * without copying the plaintext. */
int chunk_decode_raw (struct repo *r, struct codec *c, const uint8_t *head,
                      size_t hlen, uint8_t *out, size_t outlen, size_t *len,
                      const uint8_t digest[REPO_DIGEST_LEN]);

/* The SHA-256 of each of n (at most CHUNK_MAX_FRAMES) messages, src[i]
 * of len[i] bytes, into out[i]: side by side where the build and the CPU
 * allow (chunk.c), else one by one; the same digests either way.  c (may
 * be NULL) lends its multi-buffer manager. */
void chunk_sha256_frames (struct codec *c, const uint8_t *const *src,
                          const size_t *len, size_t n,
                          uint8_t (*out)[REPO_DIGEST_LEN]);

/* A framed chunk's table, read without its frames and checked against
 * the chunk's digest: header CRC, lengths, every entry, and the tree
 * digest of the frame hashes.  Not the payload CRC: each frame's SHA-256
 * is checked when it is decoded.  What reading part of a chunk needs. */
struct chunk_table {
  uint32_t raw_len, n, frame;           /* frame: its frames' size */
  uint32_t off[CHUNK_MAX_FRAMES + 1];   /* frame i's stored bytes in the file */
  uint8_t nonce[12];                    /* an encrypted chunk's (crypt.h) */
  uint8_t entry[];                      /* n table entries */
};
/* head: the first avail bytes of a chunk file of flen bytes.  1 and *out
 * a malloc'd table; 0 (*out NULL) when the chunk is not read in part (a
 * BBC1 file, or a repository without tree digests: read it whole); -1
 * with the error set (without the chunk name). */
int chunk_table_parse (struct repo *r, const uint8_t *head, size_t avail,
                       uint64_t flen, const uint8_t digest[REPO_DIGEST_LEN],
                       struct chunk_table **out);
/* The plaintext bytes stored raw in a chunk file, from its header (and
 * frame table, checked against digest): head as for chunk_table_parse.
 * -1 with the error set (without the chunk name). */
int chunk_head_raw_bytes (struct repo *r, const uint8_t *head, size_t avail,
                          uint64_t flen,
                          const uint8_t digest[REPO_DIGEST_LEN],
                          uint64_t *raw);
/* Decode frame i, whose stored bytes are at src, into out and check it
 * against its hash in t. */
int chunk_table_decode (struct codec *c, const struct chunk_table *t,
                        size_t i, const uint8_t *src, uint8_t *out);
/* Decode frames [f0, f1) of t, frame i's stored bytes at src[i], into
 * out[i], then check them all against their hashes in t (hashed side by
 * side, chunk.c).  -1 with the error naming the first bad frame. */
int chunk_table_decode_frames (struct codec *c, const struct chunk_table *t,
                               size_t f0, size_t f1,
                               const uint8_t *const *src,
                               uint8_t *const *out);

/* A chunk file, checked (magic, CRCs, lengths, frame table) but not
 * decoded. */
struct chunk_parsed {
  const uint8_t *file;
  bool framed;                        /* BBC2 */
  size_t frame;                       /* BBC2: frame size */
  uint32_t raw_len;
  size_t n;                           /* BBC2: frames */
  const uint8_t *table;               /* BBC2: n entries */
  size_t off[CHUNK_MAX_FRAMES + 1];   /* BBC2: frame i's bytes in file */
};
/* Patching a framed chunk (tree repositories): the base chunk file,
 * bflen bytes, is in c->in.  Plan: check the base against its digest;
 * for each frame that ranges (sorted, disjoint, relative to the chunk)
 * touch, complete it in data from the base (if partly touched) and hash
 * it; set digest (the zero digest when every frame is zero).  -1 with the
 * error set when the base cannot serve (the caller then stores the whole
 * chunk another way).  Encode: the new file into c->buf, copying the
 * untouched frames' stored bytes; returns its length. */
struct chunk_patch {
  struct chunk_parsed base;
  bool fresh[CHUNK_MAX_FRAMES];
  uint8_t fh[CHUNK_MAX_FRAMES][REPO_DIGEST_LEN];
};
int chunk_patch_plan (struct repo *r, struct codec *c, size_t bflen,
                      const uint8_t base[REPO_DIGEST_LEN], uint8_t *data,
                      size_t len, const struct repo_range *ranges,
                      size_t nranges, struct chunk_patch *pp,
                      uint8_t digest[REPO_DIGEST_LEN]);
size_t chunk_patch_encode (struct repo *r, struct codec *c,
                           const uint8_t *data, const struct chunk_patch *pp);

/* chunk-store.c: read the file of chunk digest whole into buf (cap
 * bytes: a codec's buffer).  -1 with the error naming the chunk. */
int chunk_read_file (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                     uint8_t *buf, size_t cap, size_t *len);

/* chunk-store.c: read, decode and check frames [f0, f1) (clamped to the
 * chunk's frames) of chunk digest, frame i into out[i] (chunk_frame
 * bytes; the caller's buffers, one per frame, or pointers into one).
 * *t: the chunk's table; when NULL it is read first from the same open
 * file (the caller then owns it); a given table (read before) whose
 * file's size no longer fits it fails (EIO): the file was written again
 * since, laid out otherwise.  1 done; 0 when the chunk is not read
 * in part (*t stays NULL: read it whole with repo_chunk_get); -1 with the
 * error naming the chunk. */
int chunk_read_frames (struct repo *r, const uint8_t digest[REPO_DIGEST_LEN],
                       struct chunk_table **t, size_t f0, size_t f1,
                       uint8_t *const *out);
/* Close the chunk files chunk_read_frames kept open (repo_close, before
 * the I/O table goes). */
void chunk_files_free (struct repo *r);

/* ---- fidx.c: the fixed index format ----------------------------------- */

/* Header, little-endian, 64 bytes, then count digests of 32 bytes:
 *   0  magic "BBFIDX01"
 *   8  version (1)
 *  12  chunk_size
 *  16  disk_size
 *  24  count = ceil(disk_size / chunk_size)
 *  32  SHA-256 of the digest list
 */
#define FIDX_HDR_LEN 64
/* Serialise (malloc'd buffer, *len). */
uint8_t *fidx_encode (uint64_t disk_size, uint32_t chunk_size,
                      const uint8_t (*digests)[REPO_DIGEST_LEN], size_t *len);
/* Parse and check (magic, version, count, digest-list checksum). The
 * digests are copied into a malloc'd array.  Error text names what is
 * wrong, not the file (callers add it). */
int fidx_decode (const uint8_t *buf, size_t len, uint64_t *disk_size,
                 uint32_t *chunk_size, uint64_t *count,
                 uint8_t (**digests)[REPO_DIGEST_LEN]);

/* ---- repo.c, manifest.c -------------------------------------------------- */

/* repo_domain_xml_read for the point m describes (m read already). */
char *domain_xml_read_checked (struct repo *r, const struct repo_manifest *m);

char *manifest_encode (const struct repo_manifest *m);
int manifest_decode (const char *json, struct repo_manifest *m);

/* ---- disk.c ------------------------------------------------------------- */

struct repo_disk {
  struct repo *repo;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], name[DISK_NAME_MAX + 1];
  char point[160];            /* "vm@id" */
  uint64_t size, nchunks;
  uint32_t chunk_size;
  uint8_t (*digests)[REPO_DIGEST_LEN];
};
/* Report a failed chunk read of d with the full context. */
void disk_chunk_error (struct repo_disk *d, uint64_t chunk);
/* Chunk i of d (not the zero digest) into buf (cap bytes of room),
 * decoded and checked, and of the length the disk has there: that
 * length, or -1 with the error ("chunk has N bytes, the index expects
 * M") if not. */
ssize_t disk_chunk_get (struct repo_disk *d, uint64_t i, void *buf,
                        size_t cap);

#endif /* BOOTBACK_REPO_INT_H */
