/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Garbage collection (gc.c) keeps the protocol of its header comment:
 *  - mark and sweep: unreferenced chunks older than the cutoff go,
 *    referenced ones and recent ones stay; a dry run only counts;
 *  - the cutoff is lowered to the start of every live writer; a dead
 *    writer's registration is dropped and lowers nothing (steps 2-3);
 *  - the sweep's re-stat: a chunk touched between the first stat and the
 *    rename to the trash name is put back; a writer that comes after the
 *    rename gets ENOENT and writes the chunk anew, which survives (step 5);
 *  - a killed GC's trash names are renamed back (or dropped if the chunk
 *    was written anew) before the chunk is judged, never removed as temp
 *    files;
 *  - old incomplete point directories and temp files go, recent ones stay;
 *  - a point that cannot be read stops the GC before anything is removed;
 *  - one GC at a time (locks/gc).
 * Chunk mtimes are set by hand (utimensat) to make them old.
 */
#include <sys/wait.h>

#include "recovery/repo/test-repo.h"

#define CS REPO_MIN_CHUNK
#define N 4
#define OLD 1000.0                 /* seconds: far older than any cutoff */

static struct scratch s;
static struct repo *r;
static struct hook_io *h;

/* ---- helpers ------------------------------------------------------------------ */

static void
chunk_rel (const uint8_t d[REPO_DIGEST_LEN], char path[80])
{
  repo_chunk_path (d, path);
}

static bool
chunk_present (const uint8_t d[REPO_DIGEST_LEN])
{
  char p[80];

  chunk_rel (d, p);
  return scratch_exists (&s, p);
}

/* Set the age of chunks: OLD, or 0 to make them recent again (a slow run
 * must not age them past the GC's margin). */
static void
chunks_set_age (uint8_t (*d)[REPO_DIGEST_LEN], size_t n, double age)
{
  char p[80];
  size_t i;

  for (i = 0; i < n; i++) {
    chunk_rel (d[i], p);
    scratch_age (&s, p, age);
  }
}

/* A point of vm written and removed again: its chunks are unreferenced
 * (unless another point shares them) and old. */
static void
orphans_make (const char *vm, unsigned seed, uint8_t (*d)[REPO_DIGEST_LEN])
{
  char id[TIMESTAMP_LEN + 1];

  test_point_write (r, vm, seed, N, id, d);
  assert (repo_point_remove (r, vm, id, NULL) == 0);
  chunks_set_age (d, N, OLD);
}

static void
gc_ok (bool dry_run, struct repo_gc_result *res)
{
  if (repo_gc (r, dry_run, res) == -1) {
    fprintf (stderr, "test-gc: %s\n", error_msg ());
    assert (!"repo_gc failed");
  }
}

/* ---- mark and sweep ------------------------------------------------------------ */

static uint8_t kept[N][REPO_DIGEST_LEN];   /* the chunks of vm1's point */

static void
test_mark_sweep (void)
{
  uint8_t gone[N][REPO_DIGEST_LEN], recent[N][REPO_DIGEST_LEN];
  char id[TIMESTAMP_LEN + 1];
  struct repo_gc_result res;
  size_t i;

  test_point_write (r, "vm1", 1, N, id, kept);
  chunks_set_age (kept, N, OLD);
  orphans_make ("vm2", 2, gone);
  test_point_write (r, "vm3", 3, N, id, recent);
  assert (repo_point_remove (r, "vm3", id, NULL) == 0);

  chunks_set_age (recent, N, 0);
  gc_ok (true, &res);                           /* dry run: counts only */
  assert (res.chunks_removed == N && res.chunks_kept_recent == N);
  for (i = 0; i < N; i++)
    assert (chunk_present (gone[i]));

  chunks_set_age (recent, N, 0);
  gc_ok (false, &res);
  assert (res.chunks_total == 3 * N && res.chunks_referenced == N);
  assert (res.chunks_removed == N && res.bytes_removed > 0);
  assert (res.chunks_kept_recent == N);
  for (i = 0; i < N; i++) {
    assert (chunk_present (kept[i]));
    assert (!chunk_present (gone[i]));
    assert (chunk_present (recent[i]));
  }
  /* the recent ones go once they are old */
  chunks_set_age (recent, N, OLD);
  gc_ok (false, &res);
  assert (res.chunks_removed == N);
  for (i = 0; i < N; i++)
    assert (!chunk_present (recent[i]) && chunk_present (kept[i]));
}

/* ---- writers and the cutoff ------------------------------------------------------ */

static void
test_writer_cutoff (void)
{
  uint8_t d[N][REPO_DIGEST_LEN];
  struct repo_writer *w = repo_writer_begin (r, "vmw", 0);
  CLEANUP_STRV char **names = NULL;
  struct repo_gc_result res;
  char host[64] = "", text[256], lock[128];
  CLEANUP_FREE char *path = NULL;
  int status;
  pid_t dead;

  /* a live writer that started before the orphans were last used */
  assert (w);
  orphans_make ("vm4", 4, d);
  names = h->inner->ops->list (h->inner, "locks/writers");
  assert (names && names[0] && !names[1]);
  snprintf (lock, sizeof lock, "locks/writers/%s", names[0]);
  path = scratch_file (&s, lock);
  gethostname (host, sizeof host - 1);
  snprintf (text, sizeof text, "start=%.9f\nhost=%s\npid=%ld\n",
            time (NULL) - 2 * OLD, host, (long) getpid ());
  assert (write_whole_file (path, text, strlen (text), 0600) == 0);
  gc_ok (false, &res);
  assert (res.chunks_removed == 0 && res.chunks_kept_recent == N);
  assert (res.cutoff < time (NULL) - 2 * OLD + 1);
  repo_writer_abort (w);

  /* the same registration, its process gone: dropped, lowers nothing */
  dead = fork ();
  if (dead == 0)
    _exit (0);
  assert (waitpid (dead, &status, 0) == dead);
  snprintf (text, sizeof text, "start=%.9f\nhost=%s\npid=%ld\n",
            time (NULL) - 2 * OLD, host, (long) dead);
  assert (write_whole_file (path, text, strlen (text), 0600) == 0);
  gc_ok (false, &res);
  assert (res.chunks_removed == N);
  assert (!scratch_exists (&s, lock));
}

/* ---- the sweep's re-stat ------------------------------------------------------------ */

static char target[80];            /* the chunk the hook acts on */
static bool touched, renamed, act_after_rename;
static struct repo_writer *late;   /* writes target's data after the rename */
static uint8_t target_data[CS];

static int
sweep_race (struct hook_io *hk, const char *op, const char *path)
{
  CLEANUP_FREE char *p = NULL;
  uint8_t d[REPO_DIGEST_LEN];
  bool was_new;

  (void) hk;
  if (!target[0])
    return 0;
  if (strcmp (op, "stat") == 0 && strcmp (path, target) == 0 &&
      !act_after_rename && !touched) {
    /* a writer touches the chunk between the GC's stat and its rename */
    p = scratch_file (&s, target);
    assert (utimensat (AT_FDCWD, p, NULL, 0) == 0);
    touched = true;
  }
  else if (strcmp (op, "rename") == 0 && strstr (path, ".gc.tmp-") &&
           strncmp (path, target, strlen (target)) == 0) {
    renamed = true;
    if (act_after_rename) {
      /* a writer comes after the rename: it finds no chunk, writes it */
      target[0] = '\0';
      assert (repo_writer_put_chunk (late, target_data, CS, d, &was_new) == 0);
      assert (was_new);
    }
  }
  return 0;
}

static void
test_restat (void)
{
  uint8_t d[N][REPO_DIGEST_LEN];
  struct repo_gc_result res;
  char id[TIMESTAMP_LEN + 1];

  /* touched before the rename: the second stat sees it, it goes back */
  orphans_make ("vm5", 5, d);
  chunk_rel (d[0], target);
  touched = renamed = act_after_rename = false;
  h->after = sweep_race;
  gc_ok (false, &res);
  assert (touched && renamed);
  assert (res.chunks_removed == N - 1 && res.chunks_kept_recent == 1);
  assert (chunk_present (d[0]));

  /* a writer after the rename writes the chunk anew; the GC removes only
   * its trash copy, and the point the writer commits is whole */
  chunks_set_age (d, 1, OLD);
  late = repo_writer_begin (r, "vm6", 0);
  assert (late);
  test_chunk_data (target_data, CS, 5, 0);
  chunk_rel (d[0], target);
  renamed = false;
  act_after_rename = true;
  gc_ok (false, &res);
  h->after = NULL;
  assert (renamed && res.chunks_removed == 1);
  assert (chunk_present (d[0]));
  assert (repo_writer_add_disk (late, "vda", CS, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) d) == 0);
  assert (repo_writer_commit (late, NULL) == 0);
  {
    CLEANUP_STRV char **ids = repo_list_points (r, "vm6");
    struct repo_disk *disk = repo_disk_open (r, "vm6", ids[0], "vda");
    uint8_t buf[CS];
    assert (disk && repo_disk_pread (disk, NULL, buf, CS, 0) == 0);
    assert (memcmp (buf, target_data, CS) == 0);
    repo_disk_close (disk);
    snprintf (id, sizeof id, "%s", ids[0]);
  }
  assert (repo_point_remove (r, "vm6", id, NULL) == 0);
}

/* ---- a killed GC's trash ----------------------------------------------------------- */

static void
trash (const uint8_t d[REPO_DIGEST_LEN], const char *suffix, bool keep)
{
  char rel[80];
  CLEANUP_FREE char *from = NULL, *to = NULL;

  chunk_rel (d, rel);
  from = scratch_file (&s, rel);
  to = xasprintf ("%s.gc%s", from, suffix);
  if (keep) {
    CLEANUP_FREE char *cmd = xasprintf ("cp -p %s %s", from, to);
    assert (system (cmd) == 0);
  }
  else
    assert (rename (from, to) == 0);
  scratch_age (&s, strstr (to, "chunks/"), OLD);
}

static void
test_trash (void)
{
  uint8_t d[N][REPO_DIGEST_LEN];
  struct repo_gc_result res;
  char rel[80], trash_rel[128];
  size_t i;

  /* a referenced chunk left under its trash name: restored and kept */
  trash (kept[0], ".tmp-999999-1", false);
  assert (!chunk_present (kept[0]));
  /* an unreferenced one: restored, then judged (old: removed) */
  orphans_make ("vm7", 7, d);
  trash (d[0], ".tmp-999999-2", false);
  /* a trash copy of a chunk written anew: dropped, the chunk stays */
  trash (kept[1], ".tmp-999999-3", true);
  gc_ok (false, &res);
  assert (res.trash_restored == 2 && res.temps_removed == 0);
  assert (chunk_present (kept[0]) && chunk_present (kept[1]));
  for (i = 0; i < N; i++)
    assert (!chunk_present (d[i]));
  chunk_rel (kept[1], rel);
  snprintf (trash_rel, sizeof trash_rel, "%s.gc.tmp-999999-3", rel);
  assert (!scratch_exists (&s, trash_rel));
  /* what a dry run sees of a trash name: it leaves it */
  trash (kept[0], ".tmp-999999-4", false);
  gc_ok (true, &res);
  assert (res.trash_restored == 0 && !chunk_present (kept[0]));
  gc_ok (false, &res);
  assert (res.trash_restored == 1 && chunk_present (kept[0]));
}

/* ---- leftovers of killed writers ------------------------------------------------------ */

static void
test_leftovers (void)
{
  struct repo_gc_result res;
  char rel[80], tmp_old[128], tmp_new[128];
  CLEANUP_FREE char *a = NULL, *b = NULL;

  /* incomplete point directories: an old one goes, a recent one stays */
  a = scratch_file (&s, "points/vm1/20000101T000000Z");
  b = scratch_file (&s, "points/vm1/20000101T000001Z");
  assert (mkdir (a, 0700) == 0 && mkdir (b, 0700) == 0);
  scratch_age (&s, "points/vm1/20000101T000000Z", OLD);
  /* temp files of chunks: an old one goes, a recent one stays */
  chunk_rel (kept[2], rel);
  snprintf (tmp_old, sizeof tmp_old, "%s.tmp-999999-7", rel);
  snprintf (tmp_new, sizeof tmp_new, "%s.tmp-999999-8", rel);
  {
    CLEANUP_FREE char *p1 = scratch_file (&s, tmp_old);
    CLEANUP_FREE char *p2 = scratch_file (&s, tmp_new);
    assert (write_whole_file (p1, "x", 1, 0600) == 0);
    assert (write_whole_file (p2, "x", 1, 0600) == 0);
  }
  scratch_age (&s, tmp_old, OLD);
  gc_ok (false, &res);
  assert (res.dirs_removed == 1 && res.temps_removed == 1);
  assert (!scratch_exists (&s, "points/vm1/20000101T000000Z"));
  assert (scratch_exists (&s, "points/vm1/20000101T000001Z"));
  assert (!scratch_exists (&s, tmp_old) && scratch_exists (&s, tmp_new));
  assert (rmdir (b) == 0);
}

/* ---- refusals ------------------------------------------------------------------------ */

static void
test_refusals (void)
{
  uint8_t d[N][REPO_DIGEST_LEN];
  struct repo_gc_result res;
  CLEANUP_STRV char **ids = repo_list_points (r, "vm1");
  CLEANUP_FREE char *fidx = NULL;
  size_t i;
  int fd;

  /* a damaged index: stop, remove nothing */
  orphans_make ("vm8", 8, d);
  fidx = xasprintf ("%s/points/vm1/%s/vda.fidx", s.loc, ids[0]);
  fd = open (fidx, O_WRONLY);
  assert (fd >= 0 && pwrite (fd, "X", 1, FIDX_HDR_LEN) == 1);
  close (fd);
  assert (repo_gc (r, false, &res) == -1);
  assert (strstr (error_msg (), "gc stopped, nothing was removed"));
  for (i = 0; i < N; i++)
    assert (chunk_present (d[i]) && chunk_present (kept[i]));
  assert (!scratch_exists (&s, "locks/gc"));

  /* one GC at a time */
  assert (io_lock (r->io, "locks/gc", "a test", 0) == 0);
  assert (repo_gc (r, false, &res) == -1);
  assert (strstr (error_msg (), "another garbage collection is running"));
  io_unlock (r->io, "locks/gc");
}

int
main (void)
{
  r = scratch_open (&s, "test-gc", CS);
  h = hook_install (r);

  test_mark_sweep ();
  test_writer_cutoff ();
  test_restat ();
  test_trash ();
  test_leftovers ();
  test_refusals ();

  repo_close (r);
  scratch_remove (&s);
  printf ("test-gc: ok\n");
  return 0;
}
