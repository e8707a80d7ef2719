/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The plugin's logic (see serve.h): export names, the shared table of
 * opened disks, the export list and sequential-access detection.
 *
 * Table invariants:
 *  1. One entry per canonical name "VM@TIME/DISK"; a disk is opened (its
 *     index read and checked) once however many connections use it.
 *  2. refs counts the connections holding the entry; an unpinned entry is
 *     closed by the put that drops refs to 0, so memory follows the set of
 *     exports in use.  The pinned entry (point= at start-up) stays until
 *     serve_disks_free.
 *  3. The lock covers the list and the reference counts only; reads of an
 *     opened disk need no lock (repo_disk_pread is thread-safe).
 *  4. An entry keeps the SHA-256 of the index it was opened with (the
 *     manifest's pin, checked by the open); a get that names the index it
 *     was approved to serve (want) gets the entry only if that is it.  The
 *     index is read once, into memory: what the repository holds later
 *     never changes what an entry serves.
 */
#include <errno.h>

#include "nbd-plugin/serve.h"
#include "recovery/util/util.h"

/* ---- export names ------------------------------------------------------- */

int
serve_name_split (const char *name, char point[SERVE_POINT_MAX + 1],
                  char disk[DISK_NAME_MAX + 1])
{
  const char *slash = strchr (name, '/');
  size_t plen = slash ? (size_t) (slash - name) : strlen (name);
  const char *at;
  char vm[VM_NAME_MAX + 1];
  size_t vlen;

  if (plen == 0 || plen > 145) {
    error_setx ("export '%s': expected VM@TIME/DISK, VM@latest/DISK, VM/DISK "
                "or VM", name);
    return -1;
  }
  memcpy (point, name, plen);
  point[plen] = '\0';
  at = strchr (point, '@');
  vlen = at ? (size_t) (at - point) : plen;
  if (vlen == 0 || vlen > 128) {
    error_setx ("export '%s': invalid VM name", name);
    return -1;
  }
  memcpy (vm, point, vlen);
  vm[vlen] = '\0';
  if (!name_is_valid (vm) || (at && (at[1] == '\0' || strchr (at + 1, '@')))) {
    error_setx ("export '%s': invalid VM name or time (expected "
                "VM@TIME/DISK)", name);
    return -1;
  }
  disk[0] = '\0';
  if (slash) {
    if (!disk_name_is_valid (slash + 1)) {
      error_setx ("export '%s': invalid disk name", name);
      return -1;
    }
    strcpy (disk, slash + 1);
  }
  return 0;
}

int
serve_name_pin (const char *name, char bare[SERVE_NAME_MAX], bool *pinned,
                uint8_t digest[REPO_DIGEST_LEN])
{
  const char *hash = strchr (name, '#');
  size_t len = hash ? (size_t) (hash - name) : strlen (name);

  *pinned = hash != NULL;
  if (len >= SERVE_NAME_MAX) {
    error_setx ("export name too long (%zu bytes)", len);
    return -1;
  }
  memcpy (bare, name, len);
  bare[len] = '\0';
  if (hash && (strlen (hash + 1) != 2 * REPO_DIGEST_LEN ||
               hex_decode (hash + 1, digest, REPO_DIGEST_LEN) == -1)) {
    error_setx ("export '%s': '#' must be followed by the 64 hex digits of "
                "the SHA-256 of the disk's index", name);
    return -1;
  }
  return 0;
}

int
serve_pick_disk (const struct repo_manifest *m, const char *want,
                 char out[DISK_NAME_MAX + 1])
{
  char names[512] = "";
  size_t i;

  for (i = 0; i < m->ndisks; i++) {
    if (want && *want ? strcmp (m->disks[i].name, want) == 0
                      : strcmp (m->disks[i].name, "vda") == 0) {
      strcpy (out, m->disks[i].name);
      return 0;
    }
  }
  if ((!want || !*want) && m->ndisks == 1) {
    strcpy (out, m->disks[0].name);
    return 0;
  }
  for (i = 0; i < m->ndisks; i++)
    snprintf (names + strlen (names), sizeof names - strlen (names), "%s%s",
              i ? ", " : "", m->disks[i].name);
  if (want && *want)
    error_setx ("restore point %s@%s has no disk '%s' (it has: %s)", m->vm,
                m->id, want, names);
  else
    error_setx ("restore point %s@%s has several disks (%s): name one",
                m->vm, m->id, names);
  return -1;
}

/* serve_resolve, also giving the parts of the canonical name. */
static int
resolve (struct repo *r, const char *name, const char *default_disk,
         char vm[VM_NAME_MAX + 1], char id[TIMESTAMP_LEN + 1], char disk[DISK_NAME_MAX + 1],
         struct repo_manifest *m)
{
  char point[SERVE_POINT_MAX + 1], want[DISK_NAME_MAX + 1];

  if (serve_name_split (name, point, want) == -1)
    return -1;
  if (repo_point_resolve_read (r, point, vm, id, m) == -1)
    return -1;
  return serve_pick_disk (m, *want ? want : default_disk, disk);
}

int
serve_resolve (struct repo *r, const char *name, const char *default_disk,
               char canonical[SERVE_NAME_MAX], struct repo_manifest *m)
{
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], disk[DISK_NAME_MAX + 1];
  CLEANUP_FREE struct repo_manifest *tmp = NULL;

  if (!m)
    m = tmp = xmalloc (sizeof *m);
  if (resolve (r, name, default_disk, vm, id, disk, m) == -1)
    return -1;
  snprintf (canonical, SERVE_NAME_MAX, "%s@%s/%s", vm, id, disk);
  return 0;
}

int
serve_default_name (struct repo *r, const char *default_disk,
                    char canonical[SERVE_NAME_MAX])
{
  char **vms = repo_list_vms (r);
  size_t n;
  int ret = -1;

  if (!vms)
    return -1;
  for (n = 0; vms[n]; n++) ;
  if (n == 1)
    ret = serve_resolve (r, vms[0], default_disk, canonical, NULL);
  else if (n == 0)
    error_setx ("repository %s holds no restore point", repo_location (r));
  else
    error_setx ("repository %s holds %zu VMs: name the export as "
                "VM@TIME/DISK (nbdinfo --list shows them)",
                repo_location (r), n);
  strv_free (vms);
  return ret;
}

void
serve_describe (const struct repo_manifest *m,
                const struct repo_disk_info *di, char *buf, size_t len)
{
  struct tm tm;
  char when[32] = "?", size[32];

  if (gmtime_r (&m->time, &tm))
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  human_size (di->size, size, sizeof size);
  snprintf (buf, len, "VM %s, disk %s, %s, %s (%s, %s-consistent)",
            m->vm, di->name, when, size, m->kind, m->consistency);
}

int
serve_list (struct repo *r, serve_export_fn fn, void *opaque)
{
  char **vms = repo_list_vms (r), **pts = NULL;
  CLEANUP_FREE struct repo_manifest *m = xmalloc (sizeof *m);
  char name[SERVE_NAME_MAX], desc[512];
  size_t i, j, k;
  int n = 0;

  if (!vms)
    return -1;
  for (i = 0; vms[i]; i++) {
    pts = repo_list_points (r, vms[i]);
    if (!pts)
      goto err;
    for (j = 0; pts[j]; j++) {
      if (repo_manifest_read (r, vms[i], pts[j], m) == -1) {
        error_clear ();        /* a bad point hides nothing else */
        continue;
      }
      for (k = 0; k < m->ndisks; k++) {
        snprintf (name, sizeof name, "%s@%s/%s", vms[i], pts[j],
                  m->disks[k].name);
        serve_describe (m, &m->disks[k], desc, sizeof desc);
        if (fn (opaque, name, desc) == -1)
          goto err;
        n++;
      }
    }
    strv_free (pts);
    pts = NULL;
  }
  strv_free (vms);
  return n;
 err:
  strv_free (pts);
  strv_free (vms);
  return -1;
}

/* ---- the table of opened disks --------------------------------------------- */

struct sdisk {
  struct sdisk *next;
  char name[SERVE_NAME_MAX];
  struct repo_disk *d;
  uint8_t index_sha256[REPO_DIGEST_LEN];   /* invariant 4 */
  unsigned refs;
  bool pinned;
};

struct serve_disks {
  struct repo *r;
  pthread_mutex_t lock;
  struct sdisk *head;
};

struct serve_disks *
serve_disks_new (struct repo *r)
{
  struct serve_disks *t = xcalloc (1, sizeof *t);

  t->r = r;
  pthread_mutex_init (&t->lock, NULL);
  return t;
}

void
serve_disks_free (struct serve_disks *t)
{
  struct sdisk *e, *n;

  if (!t)
    return;
  for (e = t->head; e; e = n) {
    n = e->next;
    repo_disk_close (e->d);
    free (e);
  }
  pthread_mutex_destroy (&t->lock);
  free (t);
}

/* Invariant 4: is have (the index of disk name) the one want names?  -1
 * with the error if not. */
static int
check_want (const char *name, const uint8_t *have, const uint8_t *want,
            const char *repo)
{
  char h[SHA256_HEX_LEN + 1], w[SHA256_HEX_LEN + 1];

  if (!want || memcmp (want, have, REPO_DIGEST_LEN) == 0)
    return 0;
  hex_encode (have, REPO_DIGEST_LEN, h);
  hex_encode (want, REPO_DIGEST_LEN, w);
  error_setx ("disk %s in %s: its index is not the one approved for it "
             "(SHA-256 %s, approved %s): the restore point changed in the "
             "repository since it was checked; not serving it", name, repo, h, w);
  return -1;
}

struct repo_disk *
serve_disks_get (struct serve_disks *t, const char *name,
                 const char *default_disk, bool pin, const uint8_t *want,
                 struct repo_manifest *m)
{
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], disk[DISK_NAME_MAX + 1];
  char canonical[SERVE_NAME_MAX];
  CLEANUP_FREE struct repo_manifest *tmp = NULL;
  struct repo_disk *d = NULL;
  struct sdisk *e;

  if (!m)
    m = tmp = xmalloc (sizeof *m);
  if (resolve (t->r, name, default_disk, vm, id, disk, m) == -1)
    return NULL;
  snprintf (canonical, sizeof canonical, "%s@%s/%s", vm, id, disk);

  pthread_mutex_lock (&t->lock);
  for (e = t->head; e; e = e->next)
    if (strcmp (e->name, canonical) == 0)
      break;
  if (!e) {
    /* Opening under the lock keeps invariant 1 simple; it reads one
     * index, and only the first connection to a disk pays for it. */
    const uint8_t *pin_of = NULL;
    size_t i;
    for (i = 0; i < m->ndisks; i++)       /* the pin the open checks */
      if (strcmp (m->disks[i].name, disk) == 0)
        pin_of = m->disks[i].index_sha256;
    if (pin_of && check_want (canonical, pin_of, want, repo_location (t->r)) == -1)
      goto out;
    d = repo_disk_open_m (t->r, m, disk);   /* m: read by resolve */
    if (!d)
      goto out;
    e = xcalloc (1, sizeof *e);
    strcpy (e->name, canonical);
    e->d = d;
    if (pin_of)                         /* always: resolve picked it from m */
      memcpy (e->index_sha256, pin_of, REPO_DIGEST_LEN);
    e->next = t->head;
    t->head = e;
  }
  else if (check_want (canonical, e->index_sha256, want,
                       repo_location (t->r)) == -1)
    goto out;
  e->refs++;
  e->pinned |= pin;
  d = e->d;
 out:
  pthread_mutex_unlock (&t->lock);
  return d;
}

void
serve_disks_put (struct serve_disks *t, struct repo_disk *d)
{
  struct sdisk **p, *e;

  if (!d)
    return;
  pthread_mutex_lock (&t->lock);
  for (p = &t->head; *p; p = &(*p)->next) {
    e = *p;
    if (e->d != d)
      continue;
    if (--e->refs == 0 && !e->pinned) {
      *p = e->next;
      repo_disk_close (e->d);
      free (e);
    }
    break;
  }
  pthread_mutex_unlock (&t->lock);
}

size_t
serve_disks_count (struct serve_disks *t)
{
  struct sdisk *e;
  size_t n = 0;

  pthread_mutex_lock (&t->lock);
  for (e = t->head; e; e = e->next)
    n++;
  pthread_mutex_unlock (&t->lock);
  return n;
}

/* ---- sequential access and read-ahead ---------------------------------------- */

/* The most chunks asked for in one call (the library queues 64). */
#define RA_MAX_CHUNKS 32

void
serve_seq_init (struct serve_seq *s)
{
  memset (s, 0, sizeof *s);
  pthread_mutex_init (&s->lock, NULL);
}

void
serve_seq_destroy (struct serve_seq *s)
{
  pthread_mutex_destroy (&s->lock);
}

bool
serve_seq_note (struct serve_seq *s, uint64_t offset, uint32_t count,
                uint32_t chunk_size, uint64_t disk_size, uint64_t ra_bytes,
                uint64_t *first, uint64_t *end)
{
  uint64_t e = offset + count, a, b;
  bool run;

  *first = *end = 0;
  pthread_mutex_lock (&s->lock);
  if (offset <= s->hi_end + chunk_size && offset + SERVE_SEQ_BEHIND >= s->hi_end &&
      e > s->hi_end) {
    /* The run goes on: this request takes it further. */
    s->streak++;
    s->hi_end = e;
  }
  else if (offset <= s->hi_end && offset + SERVE_SEQ_BEHIND >= s->hi_end) {
    /* Behind the run: a request of it arriving late, or a random read
     * that happens to land there.  Neither counts: random reads of a
     * small disk land within SERVE_SEQ_BEHIND of the last one often
     * enough that counting them read whole chunks ahead for 4K reads
     * (18% more CPU per read, measured). */
  }
  else {
    /* A jump: this request starts a new run. */
    s->streak = 1;
    s->hi_end = e;
    s->ra_next = 0;
  }
  if (s->streak >= SERVE_SEQ_STREAK && ra_bytes > 0) {
    a = MAX (DIV_ROUND_UP (s->hi_end, chunk_size), s->ra_next);
    b = DIV_ROUND_UP (MIN (s->hi_end + ra_bytes, disk_size), chunk_size);
    if (b > a + RA_MAX_CHUNKS)
      b = a + RA_MAX_CHUNKS;
    if (a < b) {
      *first = a;
      *end = b;
      s->ra_next = b;
    }
  }
  run = s->streak >= SERVE_SEQ_STREAK;
  pthread_mutex_unlock (&s->lock);
  return run;
}
