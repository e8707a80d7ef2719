/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Boot traces of instant sessions (recovery/repo/trace.h): which chunks a
 * boot read, in order, up to the guest agent's first answer; the next
 * boot of the VM loads them ahead of the guest.
 *
 * Each disk's backend nbdkit records DIR/DISK.trace (trace=, the wall
 * clock of each chunk's first read; a restarted nbdkit appends).  After
 * the agent's first answer (instant) or the lab's app-ready
 * (instant_trace_keep), session_trace_store dedups it, cuts it there
 * (times relative to the boot's start) and keeps it twice: in
 * the catalog (boot_traces: the VM's newest, per disk) and beside the
 * point in the repository (points/VM/TIME/DISK.trace), so that it survives
 * a new catalog.  Before the supervisor starts, session_trace_prepare
 * writes DIR/DISK.prefetch for each disk from the VM's newest trace: the
 * catalog's, else the repository's of the newest point up to this one
 * that has one (TRACE_LOOKBACK points at most).  The trace is applied by
 * offset: chunk i of the old point is chunk i of this one.
 *
 * Trust: a trace in the repository may be an attacker's.  It is parsed
 * bounded (trace.h) and checked against this point's disk (every index
 * inside it, the repository's chunk size); a bad one is a warning and no
 * prefetch.  The plugin only ever opens the session's own files (0600 in
 * the session's 0700 directory), never a path from the repository, and a
 * prefetch can only change when a chunk is read, not what.  Everything
 * here is a hint: no failure fails a session.
 */
#include <errno.h>
#include <inttypes.h>

#include "recovery/catalog/catalog.h"
#include "recovery/instant/instant-int.h"
#include "recovery/repo/trace.h"

/* How many older points are tried for a trace in the repository. */
#define TRACE_LOOKBACK 8

char *
session_trace_path (const struct instant_session *s, const char *disk,
                    const char *kind)
{
  return xasprintf ("%s/%s.%s", s->dir, disk, kind);
}

static uint64_t
disk_chunks (const struct instant_session_disk *k, uint32_t cs)
{
  return (k->size + cs - 1) / cs;
}

/* The catalog's trace of the VM's disk: 0, or -1 if there is none or it
 * is unusable (a warning). */
static int
from_catalog (struct catalog *cat, const struct instant_session *s,
              const char *disk, uint64_t nchunks, struct repo_trace *t,
              const struct instant_caller *w)
{
  CLEANUP_FREE char *text = NULL;
  CLEANUP_FREE char *what = NULL;
  char point[TIMESTAMP_LEN + 1];

  if (catalog_trace_get (cat, s->vm, disk, point, &text) != 0)
    return -1;
  what = xasprintf ("the catalog's boot trace of %s@%s disk %s", s->vm, point, disk);
  if (repo_trace_parse (text, strlen (text), nchunks, what, t) == -1) {
    session_warn (w, "%s: ignored", error_msg ());
    return -1;
  }
  return 0;
}

/* The repository's trace of the newest point up to this one that has
 * one: 0, or -1 if there is none (a bad file is a warning, and the next
 * older point is tried).  The points are the VM's directories, one
 * listing, no manifest looked at (a look per point, per disk, cost a
 * request each on S3 before the VM booted, however many points a
 * repository has or was given): a trace is a hint whatever directory it
 * is in. */
static int
from_repo (struct repo *repo, const struct instant_session *s, const char *disk,
           uint64_t nchunks, struct repo_trace *t, const struct instant_caller *w)
{
  CLEANUP_STRV char **ids = repo_list_point_dirs (repo, s->vm);
  size_t n = 0, tries = 0;

  while (ids && ids[n])
    n++;
  while (n-- > 0 && tries < TRACE_LOOKBACK) {
    if (strcmp (ids[n], s->point) > 0)
      continue;                        /* newer than the point booted */
    tries++;
    if (repo_trace_read (repo, s->vm, ids[n], disk, nchunks, t) == 0)
      return 0;
    if (error_errno () != ENOENT)
      session_warn (w, "boot trace of %s@%s disk %s ignored: %s", s->vm, ids[n],
                    disk, error_msg ());
  }
  error_clear ();
  return -1;
}

void
session_trace_prepare (struct catalog *cat, struct repo *repo,
                       const struct instant_session *s,
                       const struct instant_caller *w)
{
  uint32_t cs = repo_chunk_size (repo);
  size_t i;

  for (i = 0; i < s->ndisks; i++) {
    const struct instant_session_disk *k = &s->disks[i];
    CLEANUP_FREE char *path = session_trace_path (s, k->name, "prefetch");
    struct repo_trace t;
    uint64_t nchunks = disk_chunks (k, cs);

    if (from_catalog (cat, s, k->name, nchunks, &t, w) == -1 &&
        from_repo (repo, s, k->name, nchunks, &t, w) == -1)
      continue;
    if (t.chunk_size != cs)
      session_warn (w, "boot trace of %s disk %s ignored: chunk size %" PRIu32
                    ", the repository's is %" PRIu32, s->vm, k->name,
                    t.chunk_size, cs);
    else if (t.n > 0 && repo_trace_save (path, &t) == -1)
      session_warn (w, "no prefetch for disk %s: %s", k->name, error_msg ());
    repo_trace_free (&t);
  }
}

/* One disk's recorded trace, cut and kept. */
static void
store_one (struct catalog *cat, struct repo *repo, const struct instant_session *s,
           const struct instant_session_disk *k, uint64_t t0_ms, uint64_t answer_ms,
           const struct instant_caller *w)
{
  CLEANUP_FREE char *path = session_trace_path (s, k->name, "trace");
  CLEANUP_FREE char *text = NULL;
  struct repo_trace t;
  size_t len;

  if (repo_trace_load (path, disk_chunks (k, repo_chunk_size (repo)), &t) == -1) {
    if (error_errno () != ENOENT)
      session_warn (w, "boot trace of disk %s not kept: %s", k->name, error_msg ());
    return;
  }
  repo_trace_dedup (&t);
  repo_trace_cut (&t, t0_ms, answer_ms);
  text = repo_trace_format (&t, &len);
  if (t.n > 0 && repo_trace_write (repo, s->vm, s->point, k->name, &t) == -1)
    session_warn (w, "boot trace of disk %s not kept beside %s@%s: %s", k->name,
                  s->vm, s->point, error_msg ());
  if (t.n > 0) {
    struct catalog_trace row = {
      .vm = s->vm, .disk = k->name, .point = s->point, .repo = s->repo,
      .seconds = (answer_ms - t0_ms) / 1000.0, .chunks = t.n, .text = text,
    };
    if (catalog_trace_put (cat, &row) == -1)
      session_warn (w, "boot trace of disk %s not kept in the catalog: %s",
                    k->name, error_msg ());
  }
  repo_trace_free (&t);
}

void
session_trace_store (struct catalog *cat, struct repo *repo,
                     const struct instant_session *s, double from_ago,
                     double upto_ago, const struct instant_caller *w)
{
  struct timespec ts;
  uint64_t now_ms;
  size_t i;

  clock_gettime (CLOCK_REALTIME, &ts);
  now_ms = (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (from_ago < upto_ago || upto_ago < 0 || from_ago * 1000 > now_ms)
    return;
  for (i = 0; i < s->ndisks; i++)
    store_one (cat, repo, s, &s->disks[i], now_ms - (uint64_t) (from_ago * 1000),
               now_ms - (uint64_t) (upto_ago * 1000), w);
}

void
instant_trace_keep (struct catalog *cat, int64_t id, double from_ago,
                    double upto_ago, const struct repo_open_opts *ro,
                    void (*warn) (void *opaque, const char *line), void *opaque)
{
  struct instant_session *s = xmalloc (sizeof *s);
  struct instant_caller w = { warn, opaque, ro };
  struct repo *repo = NULL;

  if (session_load (cat, id, s) == -1 ||
      !(repo = repo_open_with (s->repo, ro)))
    session_warn (&w, "boot trace of session %" PRId64 " not kept: %s", id,
                  error_msg ());
  else
    session_trace_store (cat, repo, s, from_ago, upto_ago, &w);
  repo_close (repo);
  free (s);
}
