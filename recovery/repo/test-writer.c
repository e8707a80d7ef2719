/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The point writer (writer.c) keeps the promises of its header comment:
 *  - a point is visible (listed, its manifest there) only once committed,
 *    and the commit makes chunks durable, then the indexes, then the
 *    manifest, in that order (invariant 1, steps 1-3);
 *  - a chunk is stored once: putting it again, or reusing it, only
 *    touches it, which is what keeps a concurrent GC away (invariant 4);
 *  - the writer is registered in locks/writers from begin until commit
 *    or abort, with its start time (invariant 4);
 *  - a failed fsync fails the commit and is not retried; a failed put
 *    makes the writer failed (only abort remains), and either way nothing
 *    of the point is left (invariant 3, states);
 *  - killed at each numbered commit step (BOOTBACK_CRASH_STEP), the
 *    repository holds either no point or the whole point;
 *  - point ids are unique and newer than the existing ones.
 */
#include <signal.h>
#include <sys/wait.h>

#include "recovery/repo/test-repo.h"

#define CS REPO_MIN_CHUNK

static struct scratch s;
static struct repo *r;
static struct hook_io *h;

/* ---- what the I/O hook sees ------------------------------------------------ */

/* The order of the durable steps: renames into place and syncs. */
static char events[64][160];
static size_t nevents;
/* Fail operation op (on a path containing match, if set) once, after
 * letting fail_skip of them pass. */
static const char *fail_op, *fail_match;
static int fail_skip;

static int
record_before (struct hook_io *hk, const char *op, const char *path)
{
  (void) hk;
  if (fail_op && strcmp (op, fail_op) == 0 &&
      (!fail_match || strstr (path, fail_match)) && fail_skip-- == 0) {
    fail_op = NULL;
    if (nevents < 64)
      snprintf (events[nevents++], sizeof events[0], "FAILED %s", op);
    errno = EIO;
    return -1;
  }
  if ((strncmp (op, "sync", 4) == 0 || strcmp (op, "fsync") == 0) &&
      nevents < 64)
    snprintf (events[nevents++], sizeof events[0], "%s %s", op, path);
  return 0;
}

static int
record_after (struct hook_io *hk, const char *op, const char *path)
{
  (void) hk;
  if (strcmp (op, "rename") == 0 && nevents < 64)
    snprintf (events[nevents++], sizeof events[0], "rename %s", path);
  return 0;
}

/* The index of the first event containing text (exact: equal to it),
 * or -1. */
static int
event_find_in (const char *text, bool exact)
{
  size_t i;

  for (i = 0; i < nevents; i++)
    if (exact ? strcmp (events[i], text) == 0 : strstr (events[i], text) != NULL)
      return i;
  return -1;
}
#define event_find(text) event_find_in (text, false)

/* ---- helpers ------------------------------------------------------------------ */

static bool
point_listed (const char *vm, const char *id)
{
  CLEANUP_STRV char **ids = repo_list_points (r, vm);
  size_t i;

  for (i = 0; ids && ids[i]; i++)
    if (strcmp (ids[i], id) == 0)
      return true;
  return false;
}

static size_t
writers_registered (void)
{
  CLEANUP_FREE char *p = scratch_file (&s, "locks/writers");
  CLEANUP_FREE char *cmd = xasprintf ("ls -A %s | wc -l", p);
  FILE *f = popen (cmd, "r");
  size_t n = 0;

  assert (f && fscanf (f, "%zu", &n) == 1);
  pclose (f);
  return n;
}

/* A writer of vm with one disk of n chunks (seed) put, not committed. */
static struct repo_writer *
writer_with_disk (const char *vm, unsigned seed, uint64_t n)
{
  struct repo_writer *w = repo_writer_begin (r, vm, 0);
  uint8_t buf[CS], d[8][REPO_DIGEST_LEN];
  uint64_t k;

  assert (w && n <= 8);
  for (k = 0; k < n; k++) {
    test_chunk_data (buf, CS, seed, k);
    assert (repo_writer_put_chunk (w, buf, CS, d[k], NULL) == 0);
  }
  assert (repo_writer_add_disk (w, "vda", n * CS, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) d) == 0);
  return w;
}

/* ---- the tests ------------------------------------------------------------------- */

/* Visible only when complete, committed in protocol order. */
static void
test_commit_visibility (void)
{
  struct repo_writer *w = writer_with_disk ("vm1", 1, 3);
  char id[TIMESTAMP_LEN + 1], man[128];
  struct repo_manifest m;
  int sync, fidx, vmdir, manifest;

  snprintf (id, sizeof id, "%s", repo_writer_id (w));
  snprintf (man, sizeof man, "points/vm1/%s/manifest.json", id);
  assert (writers_registered () == 1);
  assert (!point_listed ("vm1", id) && !scratch_exists (&s, man));
  nevents = 0;
  assert (repo_writer_commit (w, &m) == 0);
  assert (point_listed ("vm1", id) && scratch_exists (&s, man));
  assert (writers_registered () == 0);
  assert (strcmp (m.id, id) == 0 && m.ndisks == 1 && m.disks[0].size == 3 * CS);
  assert (m.stats.new_chunks == 3);

  sync = event_find ("sync_all");
  fidx = event_find ("vda.fidx");
  vmdir = event_find_in ("sync_dir points/vm1", true);
  manifest = event_find ("manifest.json");
  assert (sync >= 0 && fidx > sync && vmdir > fidx && manifest > vmdir);
  assert (manifest == (int) nevents - 2);   /* then its directory's sync */
}

/* Putting or reusing a stored chunk touches it and writes nothing. */
static void
test_chunks_written_once (void)
{
  struct repo_writer *w = repo_writer_begin (r, "vm2", 0);
  uint8_t buf[CS], d1[REPO_DIGEST_LEN], d2[REPO_DIGEST_LEN];
  uint8_t missing[REPO_DIGEST_LEN] = { 1, 2, 3 };
  struct repo_point_stats st;
  char path[80];
  bool was_new;
  double t;

  assert (w);
  test_chunk_data (buf, CS, 2, 0);
  assert (repo_writer_put_chunk (w, buf, CS, d1, &was_new) == 0 && was_new);
  repo_chunk_path (d1, path);
  scratch_age (&s, path, 1000);
  t = scratch_mtime (&s, path);
  assert (repo_writer_put_chunk (w, buf, CS, d2, &was_new) == 0 && !was_new);
  assert (memcmp (d1, d2, REPO_DIGEST_LEN) == 0);
  assert (scratch_mtime (&s, path) > t + 900);          /* touched */
  scratch_age (&s, path, 1000);
  assert (repo_writer_reuse_chunk (w, d1) == 0);
  assert (scratch_mtime (&s, path) > t + 900);
  repo_writer_get_stats (w, &st);
  assert (st.new_chunks == 1 && st.reused_chunks == 2);

  /* reusing a chunk that is not there: ENOENT, and the writer goes on */
  assert (repo_writer_reuse_chunk (w, missing) == -1 && error_errno () == ENOENT);
  assert (repo_writer_reuse_chunk (w, repo_zero_digest) == 0);
  assert (repo_writer_put_chunk (w, buf, CS, d2, NULL) == 0);
  repo_writer_abort (w);
  /* abort: the point's directory and the writer's lock go, chunks stay */
  assert (!scratch_exists (&s, "points/vm2"));
  assert (writers_registered () == 0);
  assert (scratch_exists (&s, path));
}

/* A failed fsync at any step fails the commit, is not retried, and
 * leaves nothing of the point. */
static void
test_failed_sync (void)
{
  static const struct { const char *op; int skip; } steps[] = {
    { "sync_all", 0 },              /* step 1: the chunks */
    { "fsync", 0 },                 /* step 2: the index file */
    { "fsync", 1 },                 /* step 3: the manifest file */
  };
  size_t i;

  for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    struct repo_writer *w = writer_with_disk ("vm3", 3, 2);
    char id[TIMESTAMP_LEN + 1];

    snprintf (id, sizeof id, "%s", repo_writer_id (w));
    fail_op = steps[i].op;
    fail_match = NULL;
    fail_skip = steps[i].skip;
    nevents = 0;
    assert (repo_writer_commit (w, NULL) == -1);
    assert (fail_op == NULL);                  /* the fault was hit */
    assert (strstr (error_msg (), "test hook"));
    assert (event_find ("manifest.json") == -1);
    /* nothing synced after the failure, the failed sync not retried */
    assert (event_find ("FAILED") == (int) nevents - 1);
    assert (!point_listed ("vm3", id));
    assert (!scratch_exists (&s, "points/vm3"));
    assert (writers_registered () == 0);
  }
}

/* A failed put fails the writer: every later call is refused. */
static void
test_failed_put (void)
{
  struct repo_writer *w = repo_writer_begin (r, "vm4", 0);
  uint8_t buf[CS], d[REPO_DIGEST_LEN];

  assert (w);
  test_chunk_data (buf, CS, 4, 0);
  fail_op = "open";
  fail_match = "chunks/";
  fail_skip = 0;
  assert (repo_writer_put_chunk (w, buf, CS, d, NULL) == -1);
  test_chunk_data (buf, CS, 4, 1);
  assert (repo_writer_put_chunk (w, buf, CS, d, NULL) == -1);
  assert (strstr (error_msg (), "has failed"));
  assert (repo_writer_reuse_chunk (w, d) == -1);
  assert (strstr (error_msg (), "has failed"));
  /* a chunk larger than the chunk size fails it too */
  repo_writer_abort (w);
  w = repo_writer_begin (r, "vm4", 0);
  assert (repo_writer_put_chunk (w, buf, CS + 1, d, NULL) == -1);
  assert (repo_writer_commit (w, NULL) == -1);
  assert (strstr (error_msg (), "has failed"));
  assert (!scratch_exists (&s, "points/vm4"));
  assert (writers_registered () == 0);
}

/* Killed at each step: no point, or the whole point. */
static void
test_crash_steps (void)
{
  int step;

  for (step = 1; step <= 3; step++) {
    char vm[16], fidx[80];
    int status;
    pid_t pid;
    CLEANUP_STRV char **dirs = NULL;

    snprintf (vm, sizeof vm, "crash%d", step);
    pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
      struct repo_writer *w = writer_with_disk (vm, 10 + step, 2);
      char n[8];
      snprintf (n, sizeof n, "%d", step);
      setenv ("BOOTBACK_CRASH_STEP", n, 1);
      repo_writer_commit (w, NULL);
      _exit (0);                               /* not reached */
    }
    assert (waitpid (pid, &status, 0) == pid);
    assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    dirs = repo_list_point_dirs (r, vm);
    assert (dirs && dirs[0] && !dirs[1]);      /* the writer's directory */
    snprintf (fidx, sizeof fidx, "points/%s/%s/vda.fidx", vm, dirs[0]);
    assert (scratch_exists (&s, fidx) == (step >= 2));
    if (step < 3)
      assert (!point_listed (vm, dirs[0]));
    else {
      struct repo_disk *d = repo_disk_open (r, vm, dirs[0], "vda");
      uint8_t buf[CS], want[CS];
      assert (point_listed (vm, dirs[0]) && d);
      assert (repo_disk_pread (d, NULL, buf, CS, CS) == 0);
      test_chunk_data (want, CS, 10 + step, 1);
      assert (memcmp (buf, want, CS) == 0);
      repo_disk_close (d);
    }
  }
}

/* Ids: unique, newer than every point of the VM; an explicit time that
 * is taken is refused.  (The writers killed above left their locks:
 * the next GC judges them.) */
static void
test_ids (void)
{
  size_t before = writers_registered ();
  struct repo_writer *a = repo_writer_begin (r, "vm5", 0);
  struct repo_writer *b = repo_writer_begin (r, "vm5", 0);
  struct repo_writer *c;
  time_t t;

  assert (a && b);
  assert (strcmp (repo_writer_id (a), repo_writer_id (b)) < 0);
  assert (timestamp_parse (repo_writer_id (a), &t) == 0);
  c = repo_writer_begin (r, "vm5", t);
  assert (!c && strstr (error_msg (), "exists already"));
  c = repo_writer_begin (r, "bad/name", 0);
  assert (!c && strstr (error_msg (), "not a valid VM name"));
  assert (writers_registered () == before + 2);
  repo_writer_abort (a);
  repo_writer_abort (b);
  assert (writers_registered () == before);
}

/* repo sync (sync.c) calls its progress function as chunks go by, and
 * last with every chunk counted: 65 chunks, so the last is not a 64th. */
static struct repo_sync_progress last_progress;
static unsigned progress_calls;

static void
on_sync_progress (void *opaque, const struct repo_sync_progress *p)
{
  (void) opaque;
  progress_calls++;
  last_progress = *p;
}

static void
test_sync_progress (void)
{
  struct scratch d;
  struct repo *dst = scratch_open (&d, "test-writer-dst", CS);
  struct repo_sync_progress pg = { 0 };
  char id[TIMESTAMP_LEN + 1];

  test_point_write (r, "vm6", 6, 65, id, NULL);
  snprintf (pg.point, sizeof pg.point, "vm6@%s", id);
  assert (repo_sync_point (r, dst, "vm6", id, false, on_sync_progress, NULL,
                           &pg) == 0);
  assert (progress_calls >= 2);
  assert (last_progress.chunks_done == 65 && last_progress.chunks_copied == 65);
  assert (pg.chunks_done == 65);
  repo_close (dst);
  scratch_remove (&d);
}

/* A hostile source repository answers the manifest of a point with
 * another size the first time it is read, its real one after: sync
 * copied as many digests as the first manifest's size from a list made
 * for the index's (heap read past it, or a crash).  It must fail
 * cleanly, DST without the point. */
static char swap_path[128], *swap_real;
static int swap_opens;

static void
file_put (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");

  assert (f && fputs (text, f) >= 0 && fclose (f) == 0);
}

static int
swap_before (struct hook_io *hk, const char *op, const char *path)
{
  (void) hk;
  if (strcmp (op, "open") == 0 && strcmp (path, swap_path) == 0 &&
      ++swap_opens == 2) {
    CLEANUP_FREE char *f = scratch_file (&s, swap_path);
    file_put (f, swap_real);
  }
  return 0;
}

static void
test_sync_manifest_changes (void)
{
  struct scratch d;
  struct repo *dst = scratch_open (&d, "test-writer-dst", CS);
  struct repo_sync_progress pg = { 0 };
  char id[TIMESTAMP_LEN + 1], *p, *big;
  CLEANUP_FREE char *f = NULL, *man = NULL, *size = NULL;
  FILE *fp;
  long n;

  test_point_write (r, "vm7", 7, 3, id, NULL);
  snprintf (swap_path, sizeof swap_path, "points/vm7/%s/manifest.json", id);
  f = scratch_file (&s, swap_path);
  assert ((fp = fopen (f, "r")));
  assert (fseek (fp, 0, SEEK_END) == 0 && (n = ftell (fp)) > 0);
  rewind (fp);
  swap_real = xmalloc (n + 1);
  assert (fread (swap_real, 1, n, fp) == (size_t) n && fclose (fp) == 0);
  swap_real[n] = '\0';
  size = xasprintf ("\"size\": %d,", 3 * CS);
  assert ((p = strstr (swap_real, size)));
  big = xasprintf ("%.*s\"size\": 1099511627776,%s", (int) (p - swap_real),
                   swap_real, p + strlen (size));
  file_put (f, big);
  free (big);

  h->before = swap_before;
  swap_opens = 0;
  assert (repo_sync_point (r, dst, "vm7", id, false, NULL, NULL, &pg) == -1);
  h->before = record_before;
  man = xasprintf ("points/vm7/%s/manifest.json", id);
  assert (!scratch_exists (&d, man));
  file_put (f, swap_real);
  free (swap_real);
  repo_close (dst);
  scratch_remove (&d);
}

/* A point of SRC has the id of a point a backup of DST is writing now
 * (claimed, not committed): sync removed that directory as a leftover
 * and wrote SRC's point in its place.  It must leave it alone. */
static void
test_sync_live_writer (void)
{
  struct scratch d;
  struct repo *dst = scratch_open (&d, "test-writer-dst", CS);
  struct repo_sync_progress pg = { 0 };
  uint8_t buf[CS], dg[REPO_DIGEST_LEN];
  time_t t = time (NULL) - 100;
  struct repo_writer *src_w, *live;
  struct repo_manifest m;
  CLEANUP_FREE char *dir = NULL;

  src_w = repo_writer_begin (r, "vm8", t);
  assert (src_w);
  test_chunk_data (buf, CS, 8, 0);
  assert (repo_writer_put_chunk (src_w, buf, CS, dg, NULL) == 0);
  assert (repo_writer_add_disk (src_w, "vda", CS, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) &dg) == 0);
  assert (repo_writer_commit (src_w, &m) == 0);

  live = repo_writer_begin (dst, "vm8", t);      /* DST's backup, running */
  assert (live && strcmp (repo_writer_id (live), m.id) == 0);
  test_chunk_data (buf, CS, 9, 0);
  assert (repo_writer_put_chunk (live, buf, CS, dg, NULL) == 0);
  assert (repo_writer_add_disk (live, "vda", CS, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) &dg) == 0);

  assert (repo_sync_point (r, dst, "vm8", m.id, false, NULL, NULL, &pg) == -1);
  dir = xasprintf ("points/vm8/%s", m.id);
  assert (scratch_exists (&d, dir));
  assert (repo_writer_commit (live, NULL) == 0);
  repo_close (dst);
  scratch_remove (&d);
}

int
main (void)
{
  r = scratch_open (&s, "test-writer", CS);
  h = hook_install (r);
  h->before = record_before;
  h->after = record_after;

  test_commit_visibility ();
  test_chunks_written_once ();
  test_failed_sync ();
  test_failed_put ();
  test_crash_steps ();
  test_ids ();
  test_sync_progress ();
  test_sync_manifest_changes ();
  test_sync_live_writer ();

  repo_close (r);
  scratch_remove (&s);
  printf ("test-writer: ok\n");
  return 0;
}
