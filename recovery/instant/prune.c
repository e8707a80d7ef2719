/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Prune (bootback prune, a web prune job): remove the restore points no
 * retention rule keeps, unless protected, held or locked (repo point
 * lock, repo init --lock: S3 Object Lock, or bootback's advisory lock).  Here because a hold's
 * staleness is the instant sessions' to judge (instant_hold_stale).
 *
 * Order: a point's catalog row goes before its manifest: killed in
 * between, the point (still there) is listed again by the next
 * catalog_points_sync; the other way round a row could outlive its
 * manifest.  Nothing is pruned while points the catalog recorded are gone
 * without bootback's pruned marker (catalog_points_sync: a rollback).
 * A hold taken after the holds were listed makes
 * repo_point_remove fail with EBUSY: the point is kept and its row put
 * back.
 */
#include <errno.h>

#include "recovery/instant/instant.h"

static void
say (const struct instant_prune *o, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
static void
say (const struct instant_prune *o, const char *fmt, ...)
{
  CLEANUP_FREE char *line = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) == -1)
    abort ();
  va_end (ap);
  if (o->note)
    o->note (o->opaque, line);
}

/* The repository's holds, without the stale ones (removed and said): a
 * dead holder process of this host, or a session of this home's catalog
 * that no longer needs its point. */
static struct repo_hold *
live_holds (struct catalog *cat, struct repo *r, const struct instant_prune *o,
            size_t *n)
{
  struct repo_hold *v = repo_hold_list (r, n);
  size_t i, j;

  if (!v)
    return NULL;
  for (i = j = 0; i < *n; i++) {
    if (repo_hold_dead (&v[i]) || instant_hold_stale (cat, o->home, &v[i])) {
      if (!o->dry_run)
        repo_hold_remove (r, v[i].name);
      say (o, "%s the stale hold of %s@%s by %s",
           o->dry_run ? "would remove" : "removed", v[i].vm, v[i].id, v[i].owner);
      continue;
    }
    v[j++] = v[i];
  }
  *n = j;
  return v;
}

static const struct repo_hold *
held (const struct repo_hold *v, size_t n, const char *vm, const char *id)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp (v[i].vm, vm) == 0 && strcmp (v[i].id, id) == 0)
      return &v[i];
  return NULL;
}

struct run {
  struct catalog *cat;
  struct repo *r;
  struct instant_prune *o;
  struct repo_hold *holds;
  size_t nholds;
};

/* Remove (unless dry_run) point vm@id if the plan says so, nobody holds
 * it and it is not locked, and hand on what became of it.  -1 with the
 * error set. */
static int
prune_point (struct run *p, const char *vm, const char *id,
             const struct repo_prune_item *it)
{
  struct instant_prune *o = p->o;
  const struct repo_hold *h = held (p->holds, p->nholds, vm, id);
  struct repo_hold by;
  CLEANUP_FREE char *why = NULL, *locked = NULL;
  bool rm = it->mark == REPO_PRUNE_REMOVE && !h;
  struct catalog_sync sy = { 0 };

  if (rm && (locked = repo_point_lock_text (p->r, vm, id)))
    rm = false;
  if (rm && !o->dry_run) {
    catalog_point_delete (p->cat, o->repo_id, vm, id);
    if (repo_point_remove (p->r, vm, id, &by) == -1) {
      if (error_errno () != EBUSY)
        return -1;
      h = &by;                /* held since we listed the holds */
      rm = false;
      if (catalog_points_sync (p->cat, o->repo_id, p->r, &sy) == -1)
        say (o, "the catalog could not be brought up to date: %s", error_msg ());
    }
  }
  if (h && it->mark == REPO_PRUNE_REMOVE)
    why = xasprintf ("in use by %s on %s", h->owner, h->host);
  else if (locked)
    why = xasprintf ("locked until %s", locked);
  else if (it->reason)
    why = xstrdup (it->reason);
  if (rm) o->removed++; else o->kept++;
  return o->decided (o->decided_opaque, &(struct instant_prune_item) {
      .vm = vm, .id = id, .removed = rm, .reason = why,
      .held_by = h ? h->owner : NULL });
}

/* Plan the points of vm by the rules, newest first, and prune each. */
static int
prune_vm (struct run *p, const char *vm)
{
  CLEANUP_STRV char **pts = repo_list_points (p->r, vm);
  CLEANUP_FREE struct repo_prune_item *it = NULL;
  size_t j, n;

  if (!pts)
    return -1;
  for (n = 0; pts[n]; n++) ;
  it = xcalloc (n + 1, sizeof *it);
  /* newest first */
  for (j = 0; j < n; j++) {
    struct repo_manifest m;
    const char *id = pts[n - 1 - j];
    timestamp_parse (id, &it[j].time);
    if (repo_manifest_read (p->r, vm, id, &m) == 0)
      it[j].protected = m.protected;
    else
      it[j].protected = true;          /* unreadable: never touch it */
  }
  repo_prune_plan (it, n, &p->o->keep);
  for (j = 0; j < n; j++)
    if (prune_point (p, vm, pts[n - 1 - j], &it[j]) == -1)
      return -1;
  return 0;
}

int
instant_prune (struct catalog *cat, struct repo *r, struct instant_prune *o)
{
  struct run p = { .cat = cat, .r = r, .o = o };
  struct catalog_sync sy = { 0 };
  CLEANUP_STRV char **vms = NULL;
  CLEANUP_FREE struct repo_hold *holds = NULL;
  size_t i;

  o->removed = o->kept = 0;
  /* Retention decided on a repository rolled back to an older copy would
   * remove what the copy still has of the points it lost. */
  if (catalog_points_sync (cat, o->repo_id, r, &sy) == -1)
    return -1;
  if (sy.missing) {
    error_setx ("%s: %zu restore points the catalog recorded are gone and "
                "bootback did not prune them (%s): the repository may have been "
                "replaced by an older copy; not pruning (if that was deliberate: "
                "bootback repo check --accept-rollback)", repo_location (r),
                sy.missing, sy.missing_names);
    return -1;
  }
  if (o->vm) {
    vms = xcalloc (2, sizeof *vms);
    vms[0] = xstrdup (o->vm);
  }
  else if (!(vms = repo_list_vms (r)))
    return -1;
  if (!(holds = p.holds = live_holds (cat, r, o, &p.nholds)))
    return -1;
  for (i = 0; vms[i]; i++)
    if (prune_vm (&p, vms[i]) == -1)
      return -1;
  return 0;
}
