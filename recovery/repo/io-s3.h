/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the repository library: the S3 backend of the I/O ops table
 * (io-s3.c), for repositories at s3://BUCKET[/PREFIX].
 */
#ifndef BOOTBACK_REPO_IO_S3_H
#define BOOTBACK_REPO_IO_S3_H

#include "recovery/repo/repo-int.h"

/* A repository under PREFIX in BUCKET of an S3 server (path-style
 * requests to o->s3_endpoint, SigV4 with the keys of o or of its
 * credentials file).  Reads bootback-repo.json's "lock_days" if the
 * repository exists, and the bucket's Object Lock configuration (its
 * default retention).  NULL with the error set (naming the bucket, the
 * HTTP status and the S3 error code) if the bucket cannot be reached.
 * Thread-safe; the caller frees it with io->ops->free. */
struct repo_io *io_s3_new (const char *url, const struct repo_open_opts *o);

/* The days of the bucket's default retention (COMPLIANCE; 0 if none), as
 * io_s3_new found it.  The handle locks new objects for the longer of
 * these and the file's "lock_days". */
int io_s3_default_days (struct repo_io *io);

/* repo init: create the bucket if it does not exist, with Object Lock
 * enabled if lock_days > 0 or object_lock (so points can be locked
 * later), else a plain one (unversioned: every object PUT costs the
 * server less, io-s3.c 17.); and check that lock_days > 0 or object_lock
 * is possible (the bucket has Object Lock); with lock_days > 0 give the
 * bucket a default retention of lock_days (COMPLIANCE), refused if it has
 * another one.  0 or -1 with the error set. */
int io_s3_init_bucket (const char *url, const struct repo_open_opts *o,
                       int lock_days, bool object_lock);

#endif /* BOOTBACK_REPO_IO_S3_H */
