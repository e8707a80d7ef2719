/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * recovery/scan: libbbscan.a, malware scanning of a restore point's
 * guest file systems (bootback scan).  Used only by the CLI.
 *
 * The disk is read over the plugin's read-only NBD export; partition
 * tables and file systems are parsed in user space by The Sleuth Kit
 * (libtsk), libfsxfs (XFS) and libvslvm (LVM), and the files matched by
 * libyara and libclamav, all in a
 * child process (forked, then this program exec'd again: none of the
 * parent's memory, keys or environment) that has dropped to an
 * unprivileged user with resource limits (sandbox.c).  See sandbox.c for
 * the choice and the rules.
 */
#ifndef BOOTBACK_SCAN_H
#define BOOTBACK_SCAN_H

#include <jansson.h>

#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

#define SCAN_DEFAULT_TIMEOUT   3600       /* seconds per disk */
#define SCAN_DEFAULT_MAX_FILE  (256ull << 20)
#define SCAN_DEFAULT_MAX_DEPTH 64
#define SCAN_DEFAULT_MEMORY    (2ull << 30)

struct scan_opts {
  const char *rules;        /* YARA rules file, or NULL */
  const char *sigdir;       /* directory of ClamAV .hdb/.ndb/... or NULL */
  unsigned timeout;         /* wall-clock seconds per disk */
  uint64_t max_file;        /* larger files are named "not scanned" */
  unsigned max_depth;       /* directory depth cap */
  uint64_t memory;          /* the child's address-space limit */
  const char *user;         /* the unprivileged user (default "nobody") */
  /* --since: changed[i] != 0 when chunk i (of chunk_size bytes) differs
   * from the earlier point; NULL scans every file.  Files whose inode
   * changed after since_time are scanned too (see walk.c). */
  const uint8_t *changed;
  uint64_t nchunks;
  uint32_t chunk_size;
  int64_t since_time;
};

/* Scan the disk served read-only on unix socket sock.  Returns
 * {"disk", "sandbox": {"uid", "euid", "no_new_privs"},
 *  "partitions": [{"partition", "volume", "fs", "status": "scanned"|"not
 *  scanned", "reason", "files", "bytes", "skipped", "unchanged", "notes",
 *  ...}], "matches": [{"path", "rule", "engine", "partition", "volume",
 *  "fs"}]} ("volume": "VG/LV" of a logical volume, absent otherwise), or NULL
 * with the error (the child failed, died or was killed; *rules_bad: the
 * rules or signatures did not load).  A child that did not finish but had
 * reported matches gives its result with them and "error": the reason
 * (the disk is not scanned, its matches found). */
json_t *scan_disk (const struct scan_opts *o, const char *sock,
                   const char *disk, bool *rules_bad);

/* The scanning process (sandbox.c): scan_disk runs this very program as
 * `PROGRAM scan-child OPTIONS` with a clean environment, the result pipe
 * on SCAN_CHILD_OUT_FD and the --since bitmap on SCAN_CHILD_MAP_FD;
 * main() hands such a command line to scan_child_main before anything
 * else (it never returns). */
#define SCAN_CHILD_COMMAND "scan-child"
#define SCAN_CHILD_OUT_FD 3
#define SCAN_CHILD_MAP_FD 4
int scan_child_main (int argc, char **argv);

/* Chunks of disk that differ between points id and since of vm: a
 * calloc'ed array of *n flags (1 = changed or new).  NULL with the error. */
uint8_t *scan_changed_chunks (struct repo *r, const char *vm, const char *id,
                              const char *since, const char *disk,
                              uint64_t *n);

/* A guest path (any bytes) as printable text: bytes outside printable
 * ASCII and the backslash as \xHH.  Caller frees. */
char *scan_escape (const char *s, size_t len);

#endif /* BOOTBACK_SCAN_H */
