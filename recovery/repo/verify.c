/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * repo verify (read every referenced chunk once and check its SHA-256) and
 * repo check (structure only: manifests, indexes, chunk files present).
 *
 * Two passes over the indexes, one index in memory at a time, so memory
 * grows with the unique chunks, not with the references:
 *
 *  1. Read every index; add each non-zero digest to a set (digest-set.c),
 *     so a chunk shared by many points is checked once.  A disk's last
 *     chunk, when shorter than the chunk size, goes to a short list with
 *     its length instead (at most one per disk).  Then check the chunks,
 *     in threads, collecting the bad ones.
 *  2. Only if some are bad: read the indexes again and note, for each bad
 *     chunk, every point, disk and byte range that uses it, in the order
 *     of the first pass (points, disks, chunks).  The bad chunks are then
 *     reported in digest order.
 *
 * A chunk whose length differs from what any of its users expects is a
 * "chunk length mismatch" (only a crafted or corrupt index makes users of
 * one digest expect different lengths).
 *
 * Each point's domain.xml is read and checked against the SHA-256 its
 * manifest pins (both modes; it is small).  One without a pin (a point
 * made before bootback pinned it) is a note, not a problem.
 */
#include <errno.h>

#include "recovery/repo/digest-set.h"
#include "recovery/repo/repo-int.h"

/* A disk whose index the first pass read. */
struct vdisk {
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], name[DISK_NAME_MAX + 1], point[160];
  uint64_t size;
  uint32_t chunk_size;
};

/* A disk's last chunk, shorter than the chunk size. */
struct shortref {
  uint8_t digest[REPO_DIGEST_LEN];
  uint64_t want;
};

/* A chunk found bad, and (second pass) where it is used. */
struct bad {
  uint8_t digest[REPO_DIGEST_LEN];
  const char *what;
  char *detail;
  FILE *f;                  /* users, as used_by text */
  char *users;
  size_t ulen;
  size_t run_disk, printed_disk;  /* SIZE_MAX: none yet */
  uint64_t first, last;     /* the run of chunks being collected */
};

struct vstate {
  struct repo *r;
  bool read_data;
  struct vdisk *disks;
  size_t ndisks;
  struct digest_set *set;   /* digests used as whole chunks */
  struct shortref *shorts;  /* sorted by digest */
  size_t nshorts;
  uint8_t (*only_short)[REPO_DIGEST_LEN];  /* in shorts, not in set */
  size_t nonly_short;
  _Atomic size_t next;      /* the next part of the set to check */
  _Atomic uint64_t checked, bytes;
  pthread_mutex_t lock;     /* serialises fn, problems and bad */
  struct bad *bad;
  size_t nbad;
  repo_problem_fn fn;
  void *opaque;
  uint64_t problems;
  struct progress *prog;
};

static int
cmp_short (const void *a, const void *b)
{
  const struct shortref *x = a, *y = b;
  int c = memcmp (x->digest, y->digest, REPO_DIGEST_LEN);
  if (c) return c;
  return x->want < y->want ? -1 : x->want > y->want;
}

static int
cmp_bad (const void *a, const void *b)
{
  return memcmp (((const struct bad *) a)->digest,
                 ((const struct bad *) b)->digest, REPO_DIGEST_LEN);
}

static void
problem (struct vstate *s, const char *what, const char *object,
         const char *detail, const char *used_by)
{
  struct repo_problem p = { what, object, detail, used_by ? used_by : "",
                            false };

  pthread_mutex_lock (&s->lock);
  s->problems++;
  if (s->fn)
    s->fn (s->opaque, &p);
  pthread_mutex_unlock (&s->lock);
}

/* Something worth saying that is not a problem. */
static void
note (struct vstate *s, const char *what, const char *object,
      const char *detail)
{
  struct repo_problem p = { what, object, detail, "", true };

  pthread_mutex_lock (&s->lock);
  if (s->fn)
    s->fn (s->opaque, &p);
  pthread_mutex_unlock (&s->lock);
}

static void
add_bad (struct vstate *s, const uint8_t *digest, const char *what,
         const char *detail)
{
  struct bad *b;

  pthread_mutex_lock (&s->lock);
  s->bad = xrealloc (s->bad, (s->nbad + 1) * sizeof *s->bad);
  b = &s->bad[s->nbad++];
  memset (b, 0, sizeof *b);
  memcpy (b->digest, digest, REPO_DIGEST_LEN);
  b->what = what;
  b->detail = xstrdup (detail);
  pthread_mutex_unlock (&s->lock);
}

/* A length that a user of digest expects and len is not, or 0.  full:
 * digest is used as a whole chunk. */
static uint64_t
wrong_length (struct vstate *s, const uint8_t *digest, bool full, size_t len)
{
  size_t lo = 0, hi = s->nshorts;

  if (full && len != s->r->chunk_size)
    return s->r->chunk_size;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (memcmp (s->shorts[mid].digest, digest, REPO_DIGEST_LEN) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (; lo < s->nshorts &&
         memcmp (s->shorts[lo].digest, digest, REPO_DIGEST_LEN) == 0; lo++)
    if (len != s->shorts[lo].want)
      return s->shorts[lo].want;
  return 0;
}

static void
check_chunk (struct vstate *s, uint8_t *buf, const uint8_t *digest, bool full)
{
  char path[80];
  size_t len = 0;
  uint64_t want;

  repo_chunk_path (digest, path);
  if (!s->read_data) {
    struct repo_stat st;
    if (s->r->io->ops->stat (s->r->io, path, &st) == -1)
      add_bad (s, digest, errno == ENOENT ? "chunk missing" : "chunk unreadable",
               error_msg ());
    else if (st.size < CHUNK_HDR_LEN + 1)
      add_bad (s, digest, "chunk truncated", "file shorter than a chunk header");
    atomic_fetch_add (&s->checked, 1);
    return;
  }
  if (repo_chunk_get (s->r, digest, buf, s->r->chunk_size, &len) == -1)
    add_bad (s, digest, strstr (error_msg (), "missing") ? "chunk missing"
             : "chunk corrupt", error_msg ());
  else if ((want = wrong_length (s, digest, full, len)) != 0) {
    char detail[128];
    snprintf (detail, sizeof detail, "chunk has %zu bytes, the index expects %"
              PRIu64, len, want);
    add_bad (s, digest, "chunk length mismatch", detail);
  }
  atomic_fetch_add (&s->checked, 1);
  atomic_fetch_add (&s->bytes, len);
  progress_add (s->prog, s->r->chunk_size);
}

static void *
worker (void *arg)
{
  struct vstate *s = arg;
  uint8_t *buf = xmalloc (s->r->chunk_size);
  size_t nparts = digest_set_parts (s->set), p, i;

  while ((p = atomic_fetch_add (&s->next, 1)) <= nparts) {
    const uint8_t *d;
    size_t pos = 0;

    if (p == nparts) {
      for (i = 0; i < s->nonly_short; i++)
        check_chunk (s, buf, s->only_short[i], false);
      continue;
    }
    while ((d = digest_set_next (s->set, p, &pos)) != NULL)
      check_chunk (s, buf, d, true);
  }
  free (buf);
  return NULL;
}

/* The point's domain.xml against the manifest's pin. */
static void
check_domain_xml (struct vstate *s, const struct repo_manifest *m,
                  struct repo_verify_result *res)
{
  CLEANUP_FREE char *obj = NULL, *xml = NULL;

  if (!m->has_domain_xml)
    return;
  obj = xasprintf ("points/%s/%s/domain.xml", m->vm, m->id);
  xml = domain_xml_read_checked (s->r, m);
  if (!xml)
    problem (s, strstr (error_msg (), "SHA-256 mismatch")
             ? "domain XML changed" : "domain XML unreadable", obj,
             error_msg (), NULL);
  else if (!m->domain_xml_pinned) {
    res->unpinned++;
    note (s, "domain XML unpinned", obj, "the manifest has no SHA-256 of it "
          "(the point was made before bootback pinned domain.xml), so a "
          "change to it cannot be detected");
  }
}

/* First pass over one point: its disks and their digests. */
static void
add_point (struct vstate *s, const char *vm, const char *id,
           struct repo_verify_result *res)
{
  struct repo_manifest m;
  size_t i;
  uint64_t c;

  if (repo_manifest_read (s->r, vm, id, &m) == -1) {
    char obj[200];
    snprintf (obj, sizeof obj, "points/%s/%s/manifest.json", vm, id);
    problem (s, "manifest invalid", obj, error_msg (), NULL);
    return;
  }
  res->points++;
  check_domain_xml (s, &m, res);
  for (i = 0; i < m.ndisks; i++) {
    struct repo_disk *d = repo_disk_open (s->r, vm, id, m.disks[i].name);
    struct vdisk *v;

    if (!d) {
      char obj[256];
      snprintf (obj, sizeof obj, "points/%s/%s/%s.fidx", vm, id, m.disks[i].name);
      problem (s, "index invalid", obj, error_msg (), NULL);
      continue;
    }
    res->disks++;
    s->disks = xrealloc (s->disks, (s->ndisks + 1) * sizeof *s->disks);
    v = &s->disks[s->ndisks++];
    memcpy (v->vm, d->vm, sizeof v->vm);
    memcpy (v->id, d->id, sizeof v->id);
    memcpy (v->name, d->name, sizeof v->name);
    memcpy (v->point, d->point, sizeof v->point);
    v->size = d->size;
    v->chunk_size = d->chunk_size;
    for (c = 0; c < d->nchunks; c++) {
      uint64_t want = MIN ((uint64_t) d->chunk_size, d->size - c * d->chunk_size);
      if (want == d->chunk_size)
        digest_set_add (s->set, d->digests[c]);   /* not the zero digest */
      else if (!repo_digest_is_zero (d->digests[c])) {
        s->shorts = xrealloc (s->shorts, (s->nshorts + 1) * sizeof *s->shorts);
        memcpy (s->shorts[s->nshorts].digest, d->digests[c], REPO_DIGEST_LEN);
        s->shorts[s->nshorts++].want = want;
      }
    }
    repo_disk_close (d);
  }
}

/* The short chunks' digests that the set lacks, once each. */
static void
collect_only_short (struct vstate *s)
{
  size_t i;

  qsort (s->shorts, s->nshorts, sizeof *s->shorts, cmp_short);
  s->only_short = xmalloc ((s->nshorts + 1) * REPO_DIGEST_LEN);
  for (i = 0; i < s->nshorts; i++)
    if ((i == 0 || memcmp (s->shorts[i].digest, s->shorts[i-1].digest,
                           REPO_DIGEST_LEN) != 0) &&
        !digest_set_has (s->set, s->shorts[i].digest))
      memcpy (s->only_short[s->nonly_short++], s->shorts[i].digest,
              REPO_DIGEST_LEN);
}

/* "vm@id disk vda bytes 0-1048575, 4194304-5242879; vm@id2 ..." built a
 * run of consecutive chunks at a time. */
static void
flush_run (struct vstate *s, struct bad *b)
{
  const struct vdisk *v = &s->disks[b->run_disk];
  uint64_t end = MIN ((b->last + 1) * v->chunk_size, v->size) - 1;

  if (b->run_disk != b->printed_disk)
    fprintf (b->f, "%s%s disk %s bytes ", b->printed_disk == SIZE_MAX ? "" : "; ",
             v->point, v->name);
  else
    fputs (", ", b->f);
  fprintf (b->f, "%" PRIu64 "-%" PRIu64, b->first * v->chunk_size, end);
  b->printed_disk = b->run_disk;
}

static void
add_user (struct vstate *s, struct bad *b, size_t disk, uint64_t chunk)
{
  if (b->run_disk == disk && chunk == b->last + 1) {
    b->last = chunk;
    return;
  }
  if (b->run_disk != SIZE_MAX)
    flush_run (s, b);
  b->run_disk = disk;
  b->first = b->last = chunk;
}

/* Second pass: every user of every bad chunk. */
static void
name_users (struct vstate *s)
{
  struct digest_set *badset = digest_set_new ();
  size_t i, k;
  uint64_t c;

  qsort (s->bad, s->nbad, sizeof *s->bad, cmp_bad);
  for (i = 0; i < s->nbad; i++) {
    s->bad[i].f = open_memstream (&s->bad[i].users, &s->bad[i].ulen);
    s->bad[i].run_disk = s->bad[i].printed_disk = SIZE_MAX;
    digest_set_add (badset, s->bad[i].digest);
  }
  for (k = 0; k < s->ndisks; k++) {
    const struct vdisk *v = &s->disks[k];
    struct repo_disk *d = repo_disk_open (s->r, v->vm, v->id, v->name);

    if (!d)
      continue;             /* removed since the first pass */
    for (c = 0; c < d->nchunks; c++)
      if (digest_set_has (badset, d->digests[c])) {
        struct bad key, *b;
        memcpy (key.digest, d->digests[c], REPO_DIGEST_LEN);
        b = bsearch (&key, s->bad, s->nbad, sizeof *s->bad, cmp_bad);
        add_user (s, b, k, c);
      }
    repo_disk_close (d);
  }
  for (i = 0; i < s->nbad; i++) {
    if (s->bad[i].run_disk != SIZE_MAX)
      flush_run (s, &s->bad[i]);
    fclose (s->bad[i].f);
  }
  digest_set_free (badset);
}

static void
report_bad (struct vstate *s)
{
  size_t i;

  if (s->nbad == 0)
    return;
  name_users (s);
  for (i = 0; i < s->nbad; i++) {
    char path[80];
    repo_chunk_path (s->bad[i].digest, path);
    problem (s, s->bad[i].what, path + 12, s->bad[i].detail, s->bad[i].users);
  }
}

static int
count_incomplete (struct vstate *s, const char *vm,
                  struct repo_verify_result *res)
{
  CLEANUP_FREE char *dir = xasprintf ("points/%s", vm);
  char **all = s->r->io->ops->list (s->r->io, dir);
  char **done = repo_list_points (s->r, vm);
  size_t i, j;

  if (!all || !done) {
    strv_free (all);
    strv_free (done);
    return -1;
  }
  for (i = 0; all[i]; i++) {
    bool found = false;
    for (j = 0; done[j]; j++)
      if (strcmp (all[i], done[j]) == 0)
        found = true;
    if (!found)
      res->incomplete++;
  }
  strv_free (all);
  strv_free (done);
  return 0;
}

int
repo_verify (struct repo *r, const char *point, bool read_data, int threads,
             repo_problem_fn fn, void *opaque, struct repo_verify_result *res)
{
  struct vstate s = { .r = r, .read_data = read_data, .fn = fn,
                      .opaque = opaque, .set = digest_set_new () };
  char **vms = NULL;
  size_t i, j;
  int ret = -1;
  uint64_t total = 0;

  memset (res, 0, sizeof *res);
  pthread_mutex_init (&s.lock, NULL);
  if (point && strchr (point, '@')) {
    char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1];
    if (repo_point_resolve (r, point, vm, id) == -1)
      goto out;
    add_point (&s, vm, id, res);
  }
  else {
    vms = repo_list_vms (r);
    if (!vms)
      goto out;
    for (i = 0; vms[i]; i++) {
      char **pts;
      if (point && strcmp (point, vms[i]) != 0)
        continue;
      pts = repo_list_points (r, vms[i]);
      if (!pts)
        goto out;
      for (j = 0; pts[j]; j++)
        add_point (&s, vms[i], pts[j], res);
      strv_free (pts);
      count_incomplete (&s, vms[i], res);
    }
    if (point && res->points == 0 && s.problems == 0) {
      error_setx ("no restore points of VM '%s'", point);
      goto out;
    }
  }

  collect_only_short (&s);
  total = (digest_set_count (s.set) + s.nonly_short) * (uint64_t) r->chunk_size;
  if (read_data)
    s.prog = progress_new ("verify", total);
  if (threads < 1) threads = 1;
  if (threads > 16) threads = 16;
  run_workers (threads, worker, &s);
  progress_free (s.prog);
  report_bad (&s);

  res->chunks_checked = s.checked;
  res->bytes_checked = s.bytes;
  res->problems = s.problems;
  ret = 0;
 out:
  for (i = 0; i < s.nbad; i++) {
    free (s.bad[i].detail);
    free (s.bad[i].users);
  }
  free (s.bad);
  free (s.disks);
  free (s.shorts);
  free (s.only_short);
  digest_set_free (s.set);
  strv_free (vms);
  pthread_mutex_destroy (&s.lock);
  return ret;
}
