/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * repo verify (read every referenced chunk once and check its SHA-256) and
 * repo check (structure only: manifests, indexes, chunk files present).
 *
 * Every reference (point, disk, chunk index) to a non-zero chunk is
 * collected and sorted by digest, so a chunk shared by many points is read
 * once, and a bad chunk is reported with every point, disk and byte range
 * that uses it.
 *
 * Each point's domain.xml is read and checked against the SHA-256 its
 * manifest pins (both modes; it is small).  One without a pin (a point
 * made before bootback pinned it) is a note, not a problem.
 */
#include <errno.h>

#include "recovery/repo/repo-int.h"

struct ref {
  uint8_t digest[REPO_DIGEST_LEN];
  uint32_t disk;            /* index into disks[] */
  uint64_t chunk;
};

struct vstate {
  struct repo *r;
  bool read_data;
  struct repo_disk **disks;
  size_t ndisks;
  struct ref *refs;
  size_t nrefs;
  size_t *groups;           /* start of each digest group; ngroups + 1 */
  size_t ngroups;
  _Atomic size_t next;
  _Atomic uint64_t checked, bytes;
  pthread_mutex_t lock;     /* serialises fn and problems */
  repo_problem_fn fn;
  void *opaque;
  uint64_t problems;
  struct progress *prog;
};

static int
cmp_ref (const void *a, const void *b)
{
  const struct ref *x = a, *y = b;
  int c = memcmp (x->digest, y->digest, REPO_DIGEST_LEN);
  if (c) return c;
  if (x->disk != y->disk) return x->disk < y->disk ? -1 : 1;
  return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
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

/* "vm@id disk vda bytes 0-1048575, 4194304-5242879; vm@id2 ..." */
static char *
used_by (struct vstate *s, size_t a, size_t b)
{
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&out, &len);
  size_t i;
  uint32_t last_disk = UINT32_MAX;

  for (i = a; i < b; ) {
    struct ref *x = &s->refs[i];
    struct repo_disk *d = s->disks[x->disk];
    uint64_t first = x->chunk, last = x->chunk;
    uint64_t end;

    while (i + 1 < b && s->refs[i+1].disk == x->disk &&
           s->refs[i+1].chunk == last + 1) {
      i++;
      last++;
    }
    i++;
    end = MIN ((last + 1) * d->chunk_size, d->size) - 1;
    if (x->disk != last_disk)
      fprintf (f, "%s%s disk %s bytes ", last_disk == UINT32_MAX ? "" : "; ",
               d->point, d->name);
    else
      fputs (", ", f);
    fprintf (f, "%" PRIu64 "-%" PRIu64, first * d->chunk_size, end);
    last_disk = x->disk;
  }
  fclose (f);
  return out;
}

static void
check_group (struct vstate *s, uint8_t *buf, size_t g)
{
  size_t a = s->groups[g], b = s->groups[g + 1];
  struct ref *x = &s->refs[a];
  struct repo_disk *d = s->disks[x->disk];
  uint64_t want = MIN ((uint64_t) d->chunk_size, d->size - x->chunk * d->chunk_size);
  char path[80];
  size_t len = 0;
  CLEANUP_FREE char *users = NULL;

  repo_chunk_path (x->digest, path);
  if (!s->read_data) {
    struct repo_stat st;
    if (s->r->io->ops->stat (s->r->io, path, &st) == -1) {
      users = used_by (s, a, b);
      problem (s, errno == ENOENT ? "chunk missing" : "chunk unreadable",
               path + 12, error_msg (), users);
    }
    else if (st.size < CHUNK_HDR_LEN + 1) {
      users = used_by (s, a, b);
      problem (s, "chunk truncated", path + 12, "file shorter than a chunk header", users);
    }
    atomic_fetch_add (&s->checked, 1);
    return;
  }
  if (repo_chunk_get (s->r, x->digest, buf, s->r->chunk_size, &len) == -1) {
    users = used_by (s, a, b);
    problem (s, strstr (error_msg (), "missing") ? "chunk missing" : "chunk corrupt",
             path + 12, error_msg (), users);
  }
  else if (len != want) {
    char detail[128];
    users = used_by (s, a, b);
    snprintf (detail, sizeof detail, "chunk has %zu bytes, the index expects %"
              PRIu64, len, want);
    problem (s, "chunk length mismatch", path + 12, detail, users);
  }
  atomic_fetch_add (&s->checked, 1);
  atomic_fetch_add (&s->bytes, len);
  progress_add (s->prog, d->chunk_size);
}

static void *
worker (void *arg)
{
  struct vstate *s = arg;
  uint8_t *buf = xmalloc (s->r->chunk_size);
  size_t g;

  while ((g = atomic_fetch_add (&s->next, 1)) < s->ngroups)
    check_group (s, buf, g);
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

/* Add one point's disks and references. */
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
    if (!d) {
      char obj[256];
      snprintf (obj, sizeof obj, "points/%s/%s/%s.fidx", vm, id, m.disks[i].name);
      problem (s, "index invalid", obj, error_msg (), NULL);
      continue;
    }
    res->disks++;
    s->disks = xrealloc (s->disks, (s->ndisks + 1) * sizeof *s->disks);
    s->disks[s->ndisks] = d;
    s->refs = xrealloc (s->refs, (s->nrefs + d->nchunks) * sizeof *s->refs);
    for (c = 0; c < d->nchunks; c++) {
      if (repo_digest_is_zero (d->digests[c]))
        continue;
      memcpy (s->refs[s->nrefs].digest, d->digests[c], REPO_DIGEST_LEN);
      s->refs[s->nrefs].disk = s->ndisks;
      s->refs[s->nrefs].chunk = c;
      s->nrefs++;
    }
    s->ndisks++;
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
                      .opaque = opaque };
  char **vms = NULL;
  size_t i, j;
  int ret = -1;
  uint64_t total = 0;

  memset (res, 0, sizeof *res);
  pthread_mutex_init (&s.lock, NULL);
  if (point && strchr (point, '@')) {
    char vm[129], id[17];
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

  qsort (s.refs, s.nrefs, sizeof *s.refs, cmp_ref);
  s.groups = xmalloc ((s.nrefs + 1) * sizeof *s.groups);
  for (i = 0; i < s.nrefs; i++)
    if (i == 0 || memcmp (s.refs[i].digest, s.refs[i-1].digest,
                          REPO_DIGEST_LEN) != 0) {
      s.groups[s.ngroups++] = i;
      total += s.disks[s.refs[i].disk]->chunk_size;
    }
  s.groups[s.ngroups] = s.nrefs;

  if (read_data)
    s.prog = progress_new ("verify", total);
  if (threads < 1) threads = 1;
  if (threads > 16) threads = 16;
  run_workers (threads, worker, &s);
  progress_free (s.prog);

  res->chunks_checked = s.checked;
  res->bytes_checked = s.bytes;
  res->problems = s.problems;
  ret = 0;
 out:
  for (i = 0; i < s.ndisks; i++)
    repo_disk_close (s.disks[i]);
  free (s.disks);
  free (s.refs);
  free (s.groups);
  strv_free (vms);
  pthread_mutex_destroy (&s.lock);
  return ret;
}
