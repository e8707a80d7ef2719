/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The delta of migrate --onto and its undo journal (delta.c), without
 * libvirt: a point of 20 chunks and a partial one; a stale target that
 * differs in 7 (random data, a hole over data, data over a zero chunk, a
 * few bytes, a hole over half a chunk of data, written zeros over data,
 * the partial last chunk) and is equal in the others (one a hole over a
 * zero chunk, never read).  delta_apply writes exactly those 7 and the
 * target is the point's byte for byte;
 * after writes of "the block copy" (a chunk outside the journal too)
 * delta_undo gives back the original byte for byte and removes the
 * journal.  A torn MIRROR or WRITING record (a crash while appending it)
 * is ignored; a record damaged in the middle, or a journal beside another
 * file than its own, makes undo refuse and keep the journal.  A target
 * that ends inside a chunk (its mapping faults: SIGBUS) fails with a read
 * error naming it, nothing written.  A raw target whose guest wrote a
 * qcow2 header (its data file a host file) is written as a file, the
 * host file untouched.  A qcow2 target (qemu-img, qemu-io,
 * qemu-nbd) holding the dirty bitmap of the point's checkpoint, 3 chunks
 * written after it: the bitmap used (only the 3 dirty chunks and the
 * sample of clean ones read), exactly those written, the image the
 * point's; undo gives it back.  The bitmap cleared after the writes (a
 * lie), disabled, or removed, or the point's checkpoint another's: every
 * chunk compared, said, the same result.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "recovery/instant/instant-int.h"
#include "recovery/repo/test-repo.h"

#define CS REPO_MIN_CHUNK
#define NFULL 20
#define SIZE ((uint64_t) NFULL * CS + 1000)

static uint8_t point[SIZE], stale[SIZE];

static void
fill_random (uint8_t *p, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    p[i] = (uint8_t) random ();
}

/* The point: random data but chunks 3 and 7 (zero). */
static void
make_point (struct repo *r, char id[TIMESTAMP_LEN + 1])
{
  struct repo_writer *w = repo_writer_begin (r, "vm", 0);
  uint8_t (*dg)[REPO_DIGEST_LEN] = xcalloc (NFULL + 1, REPO_DIGEST_LEN);
  struct repo_manifest m;
  uint64_t c;

  fill_random (point, SIZE);
  memset (point + 3 * CS, 0, CS);
  memset (point + 7 * CS, 0, CS);
  assert (w);
  for (c = 0; c <= NFULL; c++) {
    size_t len = MIN ((uint64_t) CS, SIZE - c * CS);
    if (!is_zero (point + c * CS, len))
      assert (repo_writer_put_chunk (w, point + c * CS, len, dg[c], NULL) == 0);
  }
  assert (repo_writer_add_disk (w, "vda", SIZE, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) dg) == 0);
  assert (repo_writer_commit (w, &m) == 0);
  memcpy (id, m.id, TIMESTAMP_LEN + 1);
  free (dg);
}

/* The stale disk: 7 chunks differ (2: random, 5: a hole, 7: data over a
 * zero chunk, 9: 100 bytes, 11: a hole over its second half, 13: zeros
 * written, 20: the partial last one); 3, a zero chunk, is a hole. */
static void
make_stale (const char *path)
{
  int fd;

  memcpy (stale, point, SIZE);
  fill_random (stale + 2 * CS, CS);
  memset (stale + 5 * CS, 0, CS);
  fill_random (stale + 7 * CS, CS);
  fill_random (stale + 9 * CS + 500, 100);
  memset (stale + 11 * CS + CS / 2, 0, CS / 2);
  memset (stale + 13 * CS, 0, CS);
  fill_random (stale + NFULL * CS, 10);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert (fd >= 0 && pwrite (fd, stale, SIZE, 0) == (ssize_t) SIZE);
  assert (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5 * CS, CS) == 0);
  assert (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3 * CS, CS) == 0);
  assert (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     11 * CS + CS / 2, CS / 2) == 0);
  close (fd);
}

static bool
equals (const char *path, const uint8_t *want)
{
  CLEANUP_FREE uint8_t *buf = xmalloc (SIZE);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  bool eq;

  assert (fd >= 0 && pread (fd, buf, SIZE, 0) == (ssize_t) SIZE);
  close (fd);
  eq = memcmp (buf, want, SIZE) == 0;
  return eq;
}

/* Apply the delta to a fresh stale target; the target is the point's. */
static void
apply (struct repo *r, const char *id, const char *target)
{
  struct repo_disk *d = repo_disk_open (r, "vm", id, "vda");
  struct delta_stats st;
  struct delta_opts o = { .size = SIZE };
  int fd;

  make_stale (target);
  fd = open (target, O_RDWR | O_CLOEXEC);
  assert (d && fd >= 0);
  assert (delta_apply (r, d, fd, target, &o, &st) == 0);
  assert (st.chunks == NFULL + 1 && st.written == 7);
  assert (equals (target, point));
  close (fd);
  repo_disk_close (d);
}

static void
poke (const char *path, uint64_t off, size_t len)
{
  uint8_t buf[4096];
  int fd = open (path, O_RDWR | O_CLOEXEC);

  assert (len <= sizeof buf);
  fill_random (buf, len);
  assert (fd >= 0 && pwrite (fd, buf, len, off) == (ssize_t) len);
  close (fd);
}

/* What every case uses: the repository, the point, the session naming
 * it, the target and its journal. */
static struct repo *r;
static char id[TIMESTAMP_LEN + 1], target[4096], jpath[4096];
static struct instant_session *s;
static struct instant_session_disk *k;

/* Write the byte string b at off of path. */
static void
overwrite (const char *path, const void *b, size_t len, uint64_t off)
{
  int fd = open (path, O_RDWR | O_CLOEXEC);

  assert (fd >= 0 && pwrite (fd, b, len, off) == (ssize_t) len);
  close (fd);
}

/* Delta, then "the block copy" writes in and out of the journal's chunks:
 * undo gives the original back and removes the journal. */
static void
test_undo_after_mirror (void)
{
  struct stat st;

  apply (r, id, target);
  assert (stat (jpath, &st) == 0 && (st.st_mode & 0777) == 0600);
  poke (target, 2 * CS + 7, 4000);
  poke (target, 12 * CS + 9, 4000);
  assert (delta_undo (target, s, k, NULL) == 0);
  assert (equals (target, stale));
  assert (access (jpath, F_OK) == -1 && errno == ENOENT);
  assert (delta_undo (target, s, k, NULL) == 0);       /* nothing to undo */
}

/* Crashes while appending: MIRROR torn (the block copy never began),
 * played back; the commit torn (the target never written), only removed. */
static void
test_torn (void)
{
  uint8_t torn[64] = "BBUNDOR1";
  struct stat st;

  apply (r, id, target);
  assert (stat (jpath, &st) == 0);
  assert (truncate (jpath, st.st_size - 10) == 0);
  assert (delta_undo (target, s, k, NULL) == 0);
  assert (equals (target, stale) && access (jpath, F_OK) == -1);
  apply (r, id, target);
  overwrite (jpath, torn, sizeof torn, 128);
  make_stale (target);                   /* no write began: the stale disk */
  assert (delta_undo (target, s, k, NULL) == 0);
  assert (equals (target, stale) && access (jpath, F_OK) == -1);
}

/* A record damaged in the middle, a journal not bootback's own, or
 * another file at the target's path: refused, both left alone. */
static void
test_refused (void)
{
  CLEANUP_FREE char *cmd = xasprintf ("cp %s %s.new && mv %s.new %s", target, target,
                                      target, target);
  uint8_t b = 0x55;

  apply (r, id, target);
  overwrite (jpath, &b, 1, 128 + 64 + 64 + 100);  /* the 1st record's data */
  assert (delta_undo (target, s, k, NULL) == -1);
  assert (strstr (error_msg (), "damaged") && strstr (error_msg (), "stays"));
  assert (access (jpath, F_OK) == 0);
  unlink (jpath);

  /* A journal that is not bootback's own (another owner, or readable or
   * writable by others: someone who can write the directory put it
   * there): never played back. */
  apply (r, id, target);
  assert (chmod (jpath, 0660) == 0);
  assert (delta_undo (target, s, k, NULL) == -1);
  assert (strstr (error_msg (), "not bootback's own") && strstr (error_msg (), "stays"));
  assert (equals (target, point) && access (jpath, F_OK) == 0);
  unlink (jpath);

  apply (r, id, target);
  assert (system (cmd) == 0);
  assert (delta_undo (target, s, k, NULL) == -1);
  assert (strstr (error_msg (), "not the file its undo journal was made for"));
  assert (equals (target, point) && access (jpath, F_OK) == 0);
}

/* The target shorter than the disk, ending inside chunk 19 (random data):
 * hashing its mapping faults past the end (SIGBUS), the pread that
 * follows names the file; nothing was written, undo only removes the
 * journal (once the file has its size again: undo wants the file it was
 * made for). */
static void
test_sigbus (void)
{
  struct repo_disk *d = repo_disk_open (r, "vm", id, "vda");
  struct delta_stats st;
  struct delta_opts o = { .size = SIZE };
  uint64_t end = 19 * CS + 100;
  int fd;

  unlink (jpath);                        /* test_refused's, kept */
  make_stale (target);
  assert (truncate (target, end) == 0);
  fd = open (target, O_RDWR | O_CLOEXEC);
  assert (d && fd >= 0);
  assert (delta_apply (r, d, fd, target, &o, &st) == -1);
  assert (strstr (error_msg (), "read") && strstr (error_msg (), target));
  assert (st.written == 0);
  close (fd);
  repo_disk_close (d);
  assert (truncate (target, SIZE) == 0);         /* undo wants its size */
  assert (delta_undo (target, s, k, NULL) == 0 && access (jpath, F_OK) == -1);
  memset (stale + end, 0, SIZE - end);
  assert (equals (target, stale));
}

/* The point's disk of another size in the repository than the target was
 * checked for (o.size: the session's disk; a share rewritten since):
 * refused before anything is written, the target neither grown nor
 * written. */
static void
test_size (void)
{
  struct repo_disk *d = repo_disk_open (r, "vm", id, "vda");
  struct delta_opts o = { .size = NFULL * CS };     /* no partial chunk */
  struct delta_stats st;
  struct stat sb;
  int fd;

  make_stale (target);
  assert (truncate (target, NFULL * CS) == 0);
  fd = open (target, O_RDWR | O_CLOEXEC);
  assert (d && fd >= 0);
  assert (delta_apply (r, d, fd, target, &o, &st) == -1);
  assert (strstr (error_msg (), "bytes") && strstr (error_msg (), target));
  assert (fstat (fd, &sb) == 0 && sb.st_size == NFULL * CS);
  assert (access (jpath, F_OK) == -1);
  close (fd);
  repo_disk_close (d);
}

/* A raw target whose guest wrote a qcow2 header at its start, one whose
 * external data file is a host file (victim): delta_apply of a raw
 * target (no .qcow2) writes the file itself, the point's byte for byte,
 * and never opens it as a qcow2 (which would write the victim). */
static void
test_raw_qcow2_header (const char *dir)
{
  CLEANUP_FREE char *hdr = xasprintf ("%s/hdr.qcow2", dir);
  CLEANUP_FREE char *victim = xasprintf ("%s/victim", dir);
  CLEANUP_FREE char *mk = xasprintf (
    "qemu-img create -q -f qcow2 -o data_file=%s,data_file_raw=on %s 2M && "
    "dd if=%s of=%s conv=notrunc status=none", victim, hdr, hdr, target);
  struct repo_disk *d = repo_disk_open (r, "vm", id, "vda");
  CLEANUP_FREE uint8_t *vbuf = xmalloc (SIZE);
  struct delta_stats st;
  struct delta_opts o = { .size = SIZE };
  int fd, rc;

  unlink (jpath);
  make_stale (target);
  assert (system (mk) == 0);
  memset (vbuf, 0xaa, SIZE);
  overwrite (victim, vbuf, SIZE, 0);
  fd = open (target, O_RDWR | O_CLOEXEC);
  assert (d && fd >= 0);
  rc = delta_apply (r, d, fd, target, &o, &st);
  if (rc == -1)
    fprintf (stderr, "delta_apply: %s\n", error_msg ());
  assert (rc == 0 && equals (target, point));
  assert (equals (victim, vbuf));
  assert (delta_finish (target) == 0);
  close (fd);
  repo_disk_close (d);
  unlink (hdr);
  unlink (victim);
}

/* ---- a qcow2 target and its dirty bitmap ------------------------------------ */

#define NQ 40                   /* chunks of the qcow2 case's point */
#define QSIZE ((uint64_t) NQ * CS)
#define CHECKPOINT qcp          /* bootback-0123abcd-<the point's id> */
static char qcp[64];
static uint8_t qpoint[QSIZE], qstale[QSIZE];

/* The point of VM "vq": random data, chunks 4 and 8 zero, made at
 * checkpoint CHECKPOINT (named as backup.c names it). */
static void
make_qpoint (char qid[TIMESTAMP_LEN + 1])
{
  struct repo_writer *w = repo_writer_begin (r, "vq", 0);
  uint8_t (*dg)[REPO_DIGEST_LEN] = xcalloc (NQ, REPO_DIGEST_LEN);
  struct repo_manifest m;
  uint64_t c;

  fill_random (qpoint, QSIZE);
  memset (qpoint + 4 * CS, 0, CS);
  memset (qpoint + 8 * CS, 0, CS);
  for (c = 0; c < NQ; c++)
    if (!is_zero (qpoint + c * CS, CS))
      assert (repo_writer_put_chunk (w, qpoint + c * CS, CS, dg[c], NULL) == 0);
  assert (repo_writer_add_disk (w, "vda", QSIZE, "raw",
                                (const uint8_t (*)[REPO_DIGEST_LEN]) dg) == 0);
  snprintf (qcp, sizeof qcp, "bootback-0123abcd-%s", repo_writer_id (w));
  repo_writer_set_checkpoint (w, CHECKPOINT);
  assert (repo_writer_commit (w, &m) == 0);
  memcpy (qid, m.id, TIMESTAMP_LEN + 1);
  free (dg);
}

static void
sh (const char *fmt, const char *a, const char *b)
{
  CLEANUP_FREE char *cmd = xasprintf (fmt, a, b);

  assert (system (cmd) == 0);
}

/* The production qcow2 as it was at the point, with the checkpoint's
 * bitmap (then: bitmap_cmd, e.g. disabling it), after which 3 chunks are
 * written (1: 4 KiB, 6: zeros, 8: data over a zero chunk); lie: the
 * bitmap cleared after those writes, as an image edited without it. */
static void
make_qstale (const char *path, const char *bitmap_cmd, bool lie)
{
  CLEANUP_FREE char *raw = xasprintf ("%s.raw", path);
  CLEANUP_FREE char *io = xasprintf (
    "qemu-io -f qcow2 -c 'write -P 0x55 %d 4096' -c 'write -z %d %d' "
    "-c 'write -P 0x66 %d %d' %%s >/dev/null%%s", CS + 100, 6 * CS, CS, 8 * CS, CS);
  CLEANUP_FREE char *bm = xasprintf ("qemu-img bitmap %%s %%s %s", CHECKPOINT);
  int fd = open (raw, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  assert (fd >= 0 && pwrite (fd, qpoint, QSIZE, 0) == (ssize_t) QSIZE);
  close (fd);
  sh ("qemu-img convert -f raw -O qcow2 %s %s", raw, path);
  sh ("qemu-img bitmap --add %s %s", path, CHECKPOINT);
  if (bitmap_cmd)
    sh (bm, bitmap_cmd, path);
  sh (io, path, "");
  if (lie)
    sh ("qemu-img bitmap --clear %s %s", path, CHECKPOINT);
  memcpy (qstale, qpoint, QSIZE);
  memset (qstale + CS + 100, 0x55, 4096);
  memset (qstale + 6 * CS, 0, CS);
  memset (qstale + 8 * CS, 0x66, CS);
  unlink (raw);
}

static bool
qcow2_equals (const char *path, const uint8_t *want)
{
  CLEANUP_FREE char *raw = xasprintf ("%s.raw", path);
  CLEANUP_FREE uint8_t *buf = xmalloc (QSIZE);
  int fd;
  bool eq;

  sh ("qemu-img convert -f qcow2 -O raw %s %s", path, raw);
  fd = open (raw, O_RDONLY | O_CLOEXEC);
  assert (fd >= 0 && pread (fd, buf, QSIZE, 0) == (ssize_t) QSIZE);
  close (fd);
  unlink (raw);
  eq = memcmp (buf, want, QSIZE) == 0;
  return eq;
}

/* delta_apply onto a fresh qcow2 (make_qstale's arguments): exactly the
 * 3 changed chunks written, the image the point's; stats into st.  as: the
 * point id the session names (NULL: qid). */
static void
qapply (const char *qid, const char *as, const char *path, const char *bitmap_cmd,
        bool lie, struct delta_stats *st)
{
  struct repo_disk *d = repo_disk_open (r, "vq", qid, "vda");
  struct delta_opts o = { .checkpoint = CHECKPOINT, .point = as ? as : qid, .size = QSIZE,
                          .qcow2 = true };
  int fd, rc;

  make_qstale (path, bitmap_cmd, lie);
  fd = open (path, O_RDWR | O_CLOEXEC);
  assert (d && fd >= 0);
  memset (st, 0, sizeof *st);
  rc = delta_apply (r, d, fd, path, &o, st);
  if (rc == -1)
    fprintf (stderr, "delta_apply: %s\n", error_msg ());
  assert (rc == 0);
  printf ("qcow2%s%s: %s; %" PRIu64 " written, %" PRIu64 " read\n",
          bitmap_cmd ? " " : "", bitmap_cmd ? bitmap_cmd : "", st->how, st->written,
          st->hashed);
  assert (st->chunks == NQ && st->written == 3);
  assert (qcow2_equals (path, qpoint));
  close (fd);
  repo_disk_close (d);
}

/* The bitmap used: only the dirty chunks and the sample read; undo
 * gives the image its content back.  A bitmap that lies, a disabled one,
 * none: every chunk compared, said, the image the point's all the same. */
static void
test_qcow2 (const char *dir)
{
  CLEANUP_FREE char *path = xasprintf ("%s/prod.qcow2", dir);
  struct instant_session *qs = xcalloc (1, sizeof *qs);
  char qid[TIMESTAMP_LEN + 1];
  struct delta_stats st;

  make_qpoint (qid);
  snprintf (qs->repo, sizeof qs->repo, "%s", s->repo);
  snprintf (qs->vm, sizeof qs->vm, "vq");
  snprintf (qs->point, sizeof qs->point, "%s", qid);
  snprintf (qs->disks[0].name, sizeof qs->disks[0].name, "vda");

  qapply (qid, NULL, path, NULL, false, &st);
  assert (st.bitmap && st.dirty == 3 && strstr (st.how, "bitmap bootback-0123abcd-") &&
          strstr (st.how, " used"));
  assert (st.sampled == NQ - 3);          /* a small disk: every clean chunk */
  assert (delta_undo (path, qs, &qs->disks[0], NULL) == 0);
  assert (qcow2_equals (path, qstale));
  /* Each time after this: as if the disk pivoted. */

  qapply (qid, NULL, path, NULL, true, &st);
  assert (delta_finish (path) == 0);
  assert (!st.bitmap && strstr (st.how, "not used: chunk ") &&
          strstr (st.how, ", clean by it, differs from the point"));
  assert (st.hashed >= NQ - 2 - 1);       /* all but the zero chunks */
  qapply (qid, NULL, path, "--disable", false, &st);
  assert (delta_finish (path) == 0);
  assert (!st.bitmap && strstr (st.how, "disabled"));
  qapply (qid, NULL, path, "--remove", false, &st);
  assert (!st.bitmap && strstr (st.how, "has no bitmap ") && strstr (st.how, CHECKPOINT));
  assert (delta_finish (path) == 0);
  /* The point's manifest (a hostile repository's) names a checkpoint not
   * its own (a later point's, whose bitmap calls clean what changed in
   * between): its bitmap is not used. */
  qapply (qid, "20000101T000000Z", path, NULL, false, &st);
  assert (!st.bitmap && strstr (st.how, "is not bootback-XXXXXXXX-20000101T000000Z"));
  assert (delta_finish (path) == 0);
  free (qs);
}

int
main (void)
{
  struct scratch sc;

  r = scratch_open (&sc, "test-delta", CS);
  s = xcalloc (1, sizeof *s);
  k = &s->disks[0];
  srandom (16);
  make_point (r, id);
  snprintf (target, sizeof target, "%s/prod.img", sc.dir);
  assert (delta_journal_path (target, jpath, sizeof jpath) == 0);
  snprintf (s->repo, sizeof s->repo, "%s", sc.loc);
  snprintf (s->vm, sizeof s->vm, "vm");
  snprintf (s->point, sizeof s->point, "%s", id);
  snprintf (k->name, sizeof k->name, "vda");

  test_undo_after_mirror ();
  test_torn ();
  test_refused ();
  test_sigbus ();
  test_size ();
  test_raw_qcow2_header (sc.dir);
  test_qcow2 (sc.dir);

  free (s);
  repo_close (r);
  scratch_remove (&sc);
  return 0;
}
