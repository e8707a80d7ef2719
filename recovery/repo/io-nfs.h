/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the repository library: the NFS backend of the I/O ops table
 * (io-nfs.c), for repositories at nfs://SERVER/EXPORT/PATH[?OPTIONS].
 */
#ifndef BOOTBACK_REPO_IO_NFS_H
#define BOOTBACK_REPO_IO_NFS_H

#include "recovery/repo/repo-int.h"

/* A repository directory on an NFS server, read and written with libnfs
 * (no kernel mount).  url: libnfs URL syntax, options included
 * (?version=3|4, nfsport=, mountport=, uid=, gid=, ...); without version=
 * NFSv4 is tried first, then NFSv3.  Mounts once at once (more
 * connections are made as threads need them).  Returns NULL with the
 * error set if the URL does not parse or the mount fails (ENOENT for a
 * missing directory).  o (may be NULL): the timeout and the number of
 * connections.
 * Thread-safe; the caller frees it with io->ops->free. */
struct repo_io *io_nfs_new (const char *url, const struct repo_open_opts *o);

/* Create the directory the URL names (and missing parents below the
 * export), like mkdir -p.  0 if it exists already.  -1 with the error set
 * (naming the URL) on failure. */
int io_nfs_mkdir_root (const char *url, const struct repo_open_opts *o);

#endif /* BOOTBACK_REPO_IO_NFS_H */
