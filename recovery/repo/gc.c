/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Garbage collection: mark every chunk any point's index references,
 * sweep the rest, safely while imports and backups run.
 *
 * The race (it hit Proxmox Backup Server in 2025): a writer finds chunk X
 * already stored and does not write it; meanwhile X is unreferenced (its
 * last point was pruned) and GC deletes it; the new point then refers to a
 * chunk that is gone.  The protocol that prevents it:
 *
 *  1. GC takes locks/gc (one GC at a time) and reads the storage clock:
 *     gc_start.
 *  2. It lists the registered writers (the files in locks/writers); each records the
 *     storage-clock time it started.  cutoff = min(gc_start, start of each
 *     live writer) - MARGIN.  A writer registered after step 1 started
 *     after gc_start.
 *  3. Every chunk a writer uses gets an mtime >= its start: new chunks by
 *     being written, existing ones by being touched (writer.c).
 *  4. Mark: read every index of every point (manifest present), one at a
 *     time, into a set of the unique digests (digest-set.c): memory grows
 *     with the chunks, not with the references.
 *  5. Sweep: a chunk not marked and with mtime < cutoff is renamed to a
 *     trash name, stat'ed again, and unlinked only if its mtime is still
 *     < cutoff; otherwise renamed back.  A writer touching X before the
 *     rename shows in the second stat; one touching after the rename gets
 *     ENOENT and writes X anew.
 *
 * A GC killed between the rename to the trash name and the rename back
 * leaves a chunk a writer may use under the trash name (X.gc.tmp-...).
 * The next GC renames every such file back to X first (or drops it if X
 * was written anew) and only then judges X like any chunk: a trash name
 * is never removed as a temp file.
 *
 * Incomplete point directories (no manifest) and temp files older than the
 * cutoff are the leftovers of killed writers and are removed too.
 * A writer is live if its lock file's mtime is recent (writers touch it
 * every 30 s) or, on this host, its pid exists.
 *
 * On an object store (S3, io-s3.c) there is no rename, so no trash name,
 * and a chunk's "touch" is not atomic with GC's look at it.  There the
 * sweep never overlaps a writer instead: GC takes locks/gc, then waits
 * until no live writer is registered (dead ones are dropped as above);
 * a writer registers, then looks for locks/gc, and if a GC holds it,
 * unregisters and waits for it to end (gc_wait_for_gc), then registers
 * again.  With S3's strong read-after-write consistency, either GC sees
 * the writer (and waits) or the writer sees GC's lock (and waits).  The
 * sweep then just deletes unmarked chunks older than the cutoff; one
 * still under Object Lock retention is kept (chunks_kept_locked).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>

#include "recovery/repo/digest-set.h"
#include "recovery/repo/repo-int.h"

#define MARGIN 2.0                 /* seconds, mtime granularity and skew */
#define WRITER_STALE (15 * 60)     /* seconds without heartbeat */
#define REGISTER_GRACE 30         /* seconds an empty registration may
                                    * wait for its content */
#define EXCLUDE_WAIT 3600.0        /* seconds GC and writers wait for
                                    * each other on an object store */


/* Lower *cutoff to the start of every live writer. */
static int
writers_cutoff (struct repo_io *io, double now, double *cutoff)
{
  char **names = io->ops->list (io, "locks/writers");
  char host[64] = "";
  size_t i;

  if (!names)
    return errno == ENOENT ? 0 : -1;
  gethostname (host, sizeof host - 1);
  for (i = 0; names[i]; i++) {
    CLEANUP_FREE char *path = xasprintf ("locks/writers/%s", names[i]);
    CLEANUP_FREE char *text = NULL;
    struct repo_stat st;
    double start = 0;
    char whost[64] = "";
    long pid = 0;
    size_t n;
    bool live;

    if (io_is_temp_name (names[i]) ||
        io->ops->stat (io, path, &st) == -1 ||
        io_read_file (io, path, 4096, &text, &n) == -1)
      continue;
    sscanf (text, "start=%lf host=%63s pid=%ld", &start, whost, &pid);
    if (n == 0)     /* killed between creating it and writing it */
      live = now - st.mtime < REGISTER_GRACE;
    else if (strcmp (whost, host) == 0 && pid > 0)
      live = kill (pid, 0) == 0 || errno == EPERM;
    else
      live = now - st.mtime < WRITER_STALE;
    if (!live) {
      io->ops->unlink (io, path);
      continue;
    }
    if (start <= 0)
      start = st.mtime - WRITER_STALE;
    if (start < *cutoff)
      *cutoff = start;
  }
  strv_free (names);
  return 0;
}

/* The storage's clock into *now, and into *cutoff the start of the
 * oldest live writer (*now if none). */
static int
writers_since (struct repo_io *io, double *now, double *cutoff)
{
  if (io_clock (io, now) == -1)
    return -1;
  *cutoff = *now;
  return writers_cutoff (io, *now, cutoff);
}

/* Can the point directory dir (mtime, on the storage's clock) be a live
 * writer's (one registered in locks/writers that started before it)? 1
 * if so, 0 if not, -1 on error.  (repo sync's leftovers.) */
int
gc_dir_maybe_written (struct repo_io *io, double mtime)
{
  double now, cutoff;

  if (writers_since (io, &now, &cutoff) == -1)
    return -1;
  return cutoff < now && mtime >= cutoff - MARGIN;
}

/* Object stores: wait until no live writer is registered (see the
 * top). */
static int
wait_for_writers (struct repo_io *io)
{
  double end = now_monotonic () + EXCLUDE_WAIT, now, cutoff;

  for (;;) {
    if (writers_since (io, &now, &cutoff) == -1)
      return -1;
    if (cutoff >= now)
      return 0;
    if (now_monotonic () >= end) {
      error_setx ("%s: garbage collection waited %.0f s for the running "
                  "imports and backups (locks/writers) to end", io->location,
                  EXCLUDE_WAIT);
      return -1;
    }
    sleep (1);
  }
}

int
gc_wait_for_gc (struct repo_io *io)
{
  double end = now_monotonic () + EXCLUDE_WAIT;
  int held;

  while ((held = io_lock_held (io, "locks/gc")) == 1) {
    if (now_monotonic () >= end) {
      error_setx ("%s: a garbage collection holds locks/gc for more than "
                  "%.0f s; if none runs, remove that object", io->location,
                  EXCLUDE_WAIT);
      return -1;
    }
    usleep (500000);
  }
  return held;
}

/* Add every referenced digest to set; also removes incomplete point
 * directories older than the cutoff. */
static int
mark (struct repo *r, double cutoff, bool dry_run, struct digest_set *set,
      struct repo_gc_result *res)
{
  struct repo_io *io = r->io;
  char **vms = repo_list_vms (r);
  size_t i, j, k;

  if (!vms)
    return -1;
  for (i = 0; vms[i]; i++) {
    CLEANUP_FREE char *vmdir = xasprintf ("points/%s", vms[i]);
    char **all = io->ops->list (io, vmdir);

    if (!all)
      goto err;
    for (j = 0; all[j]; j++) {
      struct repo_manifest m;
      CLEANUP_FREE char *dir = xasprintf ("%s/%s", vmdir, all[j]);
      CLEANUP_FREE char *man = xasprintf ("%s/manifest.json", dir);
      struct repo_stat st;

      if (io->ops->stat (io, man, &st) == -1) {
        if (errno != ENOENT)
          goto err_all;
        /* Incomplete: remove if its writer is surely gone. */
        if (io->ops->stat (io, dir, &st) == 0 && st.is_dir &&
            st.mtime < cutoff) {
          if (!dry_run)
            io_remove_dir (io, dir);
          res->dirs_removed++;
        }
        continue;
      }
      if (repo_manifest_read (r, vms[i], all[j], &m) == -1)
        goto err_all;
      for (k = 0; k < m.ndisks; k++) {
        struct repo_disk *d = repo_disk_open (r, vms[i], all[j], m.disks[k].name);
        uint64_t c;

        /* A point we cannot read must not lose its chunks: stop. */
        if (!d) {
          error_prefix ("gc stopped, nothing was removed");
          goto err_all;
        }
        for (c = 0; c < d->nchunks; c++)
          digest_set_add (set, d->digests[c]);      /* not the zero digest */
        repo_disk_close (d);
      }
    }
    strv_free (all);
    continue;
   err_all:
    strv_free (all);
    goto err;
  }
  strv_free (vms);
  return 0;
 err:
  strv_free (vms);
  return -1;
}

/* name is a chunk's trash name (64 hex digits, ".gc", a temp suffix):
 * put it back as the chunk dir/X (unless X exists again: then drop it),
 * and give X's name in chunk (65 bytes).  0 if name is not a trash name;
 * 1 if chunk now names a chunk to judge; 2 if there is nothing more to do
 * (X existed, the trash copy is gone; or a dry run); -1 on error. */
static int
restore_trash (struct repo_io *io, const char *dir, const char *name,
               bool dry_run, char chunk[2 * REPO_DIGEST_LEN + 1],
               struct repo_gc_result *res)
{
  uint8_t d[REPO_DIGEST_LEN];
  CLEANUP_FREE char *from = NULL, *to = NULL;
  struct repo_stat st;

  if (strlen (name) <= 2 * REPO_DIGEST_LEN + 3 ||
      strncmp (name + 2 * REPO_DIGEST_LEN, ".gc", 3) != 0 ||
      !io_is_temp_name (name + 2 * REPO_DIGEST_LEN + 3))
    return 0;
  memcpy (chunk, name, 2 * REPO_DIGEST_LEN);
  chunk[2 * REPO_DIGEST_LEN] = '\0';
  if (hex_decode (chunk, d, REPO_DIGEST_LEN) == -1)
    return 0;
  from = xasprintf ("%s/%s", dir, name);
  to = xasprintf ("%s/%s", dir, chunk);
  if (dry_run)
    return 2;
  if (io->ops->stat (io, to, &st) == 0)
    return io->ops->unlink (io, from) == -1 && errno != ENOENT ? -1 : 2;
  if (io->ops->rename (io, from, to) == -1)
    return errno == ENOENT ? 2 : -1;
  res->trash_restored++;
  return 1;
}

/* Object stores: no writer runs (see the top), delete it; a chunk under
 * Object Lock retention stays. */
static int
sweep_object (struct repo_io *io, const char *path, const struct repo_stat *st,
              struct repo_gc_result *res)
{
  if (st->retain_until > time (NULL)) {
    res->chunks_kept_locked++;
    return 0;
  }
  if (io->ops->unlink (io, path) == -1) {
    if (errno == EPERM) {
      res->chunks_kept_locked++;
      return 0;
    }
    return errno == ENOENT ? 0 : -1;
  }
  res->chunks_removed++;
  res->bytes_removed += st->size;
  return 0;
}

static int
sweep_one (struct repo_io *io, const char *path, double cutoff, bool dry_run,
           struct repo_gc_result *res)
{
  struct repo_stat st;
  char trash[128], suffix[48];

  if (io->ops->stat (io, path, &st) == -1)
    return errno == ENOENT ? 0 : -1;
  if (st.mtime >= cutoff) {
    res->chunks_kept_recent++;
    return 0;
  }
  if (io->ops->object_store && !dry_run)
    return sweep_object (io, path, &st, res);
  if (dry_run) {
    res->chunks_removed++;
    res->bytes_removed += st.size;
    return 0;
  }
  io_temp_suffix (suffix, sizeof suffix);
  snprintf (trash, sizeof trash, "%s.gc%s", path, suffix);
  if (io->ops->rename (io, path, trash) == -1)
    return errno == ENOENT ? 0 : -1;
  if (io->ops->stat (io, trash, &st) == -1)
    return -1;
  if (st.mtime >= cutoff) {
    /* A writer touched it just now: put it back. */
    res->chunks_kept_recent++;
    return io->ops->rename (io, trash, path);
  }
  if (io->ops->unlink (io, trash) == -1)
    return -1;
  res->chunks_removed++;
  res->bytes_removed += st.size;
  return 0;
}

int
repo_gc (struct repo *r, bool dry_run, struct repo_gc_result *res)
{
  struct repo_io *io = r->io;
  struct digest_set *set;
  size_t i, j;
  double start, cutoff;
  char **dirs = NULL;
  int ret = -1;

  memset (res, 0, sizeof *res);
  if (io_lock (io, "locks/gc", "another garbage collection", 0) == -1)
    return -1;
  set = digest_set_new ();
  if (io->ops->object_store && wait_for_writers (io) == -1)
    goto out;
  if (writers_since (io, &start, &cutoff) == -1)
    goto out;
  cutoff -= MARGIN;
  res->cutoff = cutoff;
  if (mark (r, cutoff, dry_run, set, res) == -1)
    goto out;
  res->chunks_referenced = digest_set_count (set);

  dirs = io->ops->list (io, "chunks");
  if (!dirs)
    goto out;
  for (i = 0; dirs[i]; i++) {
    CLEANUP_FREE char *dir = xasprintf ("chunks/%s", dirs[i]);
    char **names;

    if (strlen (dirs[i]) != 4)
      continue;
    names = io->ops->list (io, dir);
    if (!names)
      goto out;
    for (j = 0; names[j]; j++) {
      CLEANUP_FREE char *path = NULL;
      uint8_t d[REPO_DIGEST_LEN];
      struct repo_stat st;
      char chunk[2 * REPO_DIGEST_LEN + 1];
      int t = restore_trash (io, dir, names[j], dry_run, chunk, res);

      if (t == -1) {
        strv_free (names);
        goto out;
      }
      if (t == 1) {                  /* judged below under its own name */
        free (names[j]);
        names[j] = xstrdup (chunk);
      }
      else if (t == 2)
        continue;
      path = xasprintf ("%s/%s", dir, names[j]);
      if (io_is_temp_name (names[j])) {
        if (io->ops->stat (io, path, &st) == 0 && st.mtime < cutoff) {
          if (!dry_run)
            io->ops->unlink (io, path);
          res->temps_removed++;
        }
        continue;
      }
      if (hex_decode (names[j], d, REPO_DIGEST_LEN) == -1)
        continue;
      res->chunks_total++;
      if (digest_set_has (set, d))
        continue;
      if (sweep_one (io, path, cutoff, dry_run, res) == -1) {
        strv_free (names);
        goto out;
      }
    }
    strv_free (names);
  }
  ret = 0;
 out:
  {
    ERROR_SAVE (saved);
    strv_free (dirs);
    digest_set_free (set);
    io_unlock (io, "locks/gc");
    ERROR_RESTORE (saved);
  }
  return ret;
}

json_t *
repo_gc_result_json (const struct repo_gc_result *res, bool dry_run)
{
  return json_pack ("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                    "dry_run", dry_run,
                    "chunks", (json_int_t) res->chunks_total,
                    "referenced", (json_int_t) res->chunks_referenced,
                    "removed", (json_int_t) res->chunks_removed,
                    "bytes_removed", (json_int_t) res->bytes_removed,
                    "kept_recent", (json_int_t) res->chunks_kept_recent,
                    "incomplete_points_removed", (json_int_t) res->dirs_removed,
                    "temp_files_removed", (json_int_t) res->temps_removed,
                    "trash_restored", (json_int_t) res->trash_restored);
}
