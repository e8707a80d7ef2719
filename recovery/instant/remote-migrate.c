/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Migration of a remote session (remote.c) to the host's own storage:
 * every disk to a new volume NAME-DISK.FORMAT of a pool of the host (the
 * session's, or migrate --pool), made through libvirt's storage API, then
 * one full libvirt block copy per disk on the host (the backup comes over
 * the session's TLS NBD, the guest's writes from its overlay volume),
 * pivot, the persistent definition made to name the new volumes; only
 * then the session's nbdkits stop and its overlay volumes go (session.c,
 * invariant 3), and the VM no longer depends on this backup server.
 *
 * No pre-copy (migrate.c's qemu-img convert writes local files; the host
 * is another machine), and the jobs' readiness is polled (cur == end,
 * then the pivot retried until QEMU takes it) rather than awaited as
 * events: a migration of a remote session is one disk or a few.
 *
 * Failure before every disk pivoted: the jobs are aborted without pivot,
 * the volumes this attempt made are deleted, the state goes back to
 * running with the reason (invariant 5); migrate can be run again.
 *
 * A migrate that dies is recovered by the next reattach (session.c,
 * recover_migration) through the URI this one used (migrate_uri: its
 * --connect or --host, else the session's), and deletes only the volumes
 * the row says this migration made (target_made, saved as soon as each is
 * created): a volume that took a target's name after rm_prepare found it
 * free is someone else's, and stays.
 */
#include <errno.h>

#include "recovery/instant/instant-int.h"
#include "recovery/virt/storage.h"

struct rmig {
  struct catalog *cat;
  struct instant_session *s;
  const struct instant_migrate_opts *o;
  struct instant_migrate_result *res;
  const char *pool, *format;
  virConnectPtr conn;
  virDomainPtr dom;
  bool created[INSTANT_MAX_DISKS], pivoted[INSTANT_MAX_DISKS];
};

/* The session running, its domain, the pool, each volume free (its path
 * recorded in migrated_to: invariant 1). */
static int
rm_prepare (struct rmig *r)
{
  struct instant_session *s = r->s;
  char dir[4096];
  size_t i;

  if (strcmp (r->format, "qcow2") != 0 && strcmp (r->format, "raw") != 0) {
    error_setx ("--format %s: use qcow2 or raw", r->format);
    return -1;
  }
  if (s->state != INSTANT_STATE_RUNNING) {
    error_setx ("session %" PRId64 " is %s, not running", s->id,
                instant_state_name (s->state));
    return -1;
  }
  r->conn = virt_connect (r->o->uri ? r->o->uri : s->uri);
  if (!r->conn || virt_pool_dir (r->conn, r->pool, dir, sizeof dir) == -1)
    return -1;
  r->dom = virt_domain_by_uuid (r->conn, s->uuid);
  if (!r->dom || virDomainIsActive (r->dom) != 1) {
    error_setx ("the domain %s of session %" PRId64 " is not running on %s", s->name,
                s->id, s->uri);
    return -1;
  }
  for (i = 0; i < s->ndisks; i++) {
    struct instant_session_disk *k = &s->disks[i];
    CLEANUP_FREE char *name = xasprintf ("%s-%s.%s", s->name, k->target, r->format);
    if (virt_vol_exists (r->conn, r->pool, name) != 0) {
      error_setx ("pool %s has a volume %s already: bootback does not overwrite "
                  "images", r->pool, name);
      return -1;
    }
    if (path_set (k->migrated_to, sizeof k->migrated_to, "%s/%s", dir, name) == -1)
      return -1;
  }
  return 0;
}

/* running -> migrating, compare-and-set (invariant 4). */
static int
rm_begin (struct rmig *r)
{
  int rc;

  r->s->migrate_pid = getpid ();
  /* The host it acts on, for a recovery after this process dies. */
  text_set (r->s->migrate_uri, sizeof r->s->migrate_uri, "%s",
            r->o->uri ? r->o->uri : "");
  if (session_set_state (r->s, INSTANT_STATE_MIGRATING) == -1)
    return -1;
  r->s->message[0] = '\0';
  rc = session_save (r->cat, r->s, instant_state_name (INSTANT_STATE_RUNNING));
  if (rc == 1)
    error_setx ("session %" PRId64 " is no longer running (another command "
                "changed it)", r->s->id);
  return rc == 0 ? 0 : -1;
}

/* Disk i: its volume, then the full block copy onto it. */
static int
rm_start (struct rmig *r, size_t i)
{
  struct instant_session_disk *k = &r->s->disks[i];
  const char *name = strrchr (k->migrated_to, '/') + 1;
  char path[4096];
  CLEANUP_FREE char *dxml = NULL;
  CLEANUP_XML_FREE xmlChar *esc = NULL;
  struct virt_copy_params p = { r->o->granularity, r->o->buf_size, r->o->bandwidth };

  crash_step (8);
  if (virt_vol_create (r->conn, r->pool, name, r->format, k->size, path,
                       sizeof path) == -1)
    return -1;
  r->created[i] = true;
  if (strcmp (path, k->migrated_to) != 0)
    memcpy (k->migrated_to, path, sizeof path);
  /* Ours (session.c, invariant 9): recorded before the copy starts. */
  k->target_made = true;
  if (session_save (r->cat, r->s, NULL) == -1)
    return -1;
  crash_step (9);
  esc = xmlEncodeSpecialChars (NULL, BAD_CAST path);   /* the host's pool's */
  dxml = xasprintf ("<disk type='file'><driver type='%s'/><source file='%s'/></disk>",
                    r->format, (const char *) esc);
  return virt_block_copy (r->dom, k->target, dxml, &p,
                          VIR_DOMAIN_BLOCK_COPY_REUSE_EXT |
                          VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB);
}

/* Every job in its mirror phase (cur == end); progress meanwhile. */
static int
rm_wait_ready (struct rmig *r)
{
  size_t i, ready = 0;

  while (ready < r->s->ndisks) {
    uint64_t done = 0, total = 0;
    ready = 0;
    if (r->o->cancel && *r->o->cancel) {
      error_setx ("interrupted");
      return -1;
    }
    for (i = 0; i < r->s->ndisks; i++) {
      virDomainBlockJobInfo info;
      int j = virt_block_job_info (r->dom, r->s->disks[i].target, &info);
      if (j != 1) {
        if (j == 0)
          error_setx ("the block copy of %s to %s ended before it was in sync "
                      "(see the host's libvirt log)", r->s->disks[i].target,
                      r->s->disks[i].migrated_to);
        return -1;
      }
      done += info.cur;
      total += info.end;
      ready += info.end > 0 && info.cur == info.end;
    }
    if (r->o->progress)
      r->o->progress (r->o->progress_opaque, done, total);
    r->res->bytes = total;
    if (ready < r->s->ndisks)
      usleep (200000);
  }
  return 0;
}

/* Pivot disk i (retried while QEMU says the job is not ready), then wait
 * until the domain reads the new volume. */
static int
rm_pivot (struct rmig *r, size_t i)
{
  struct instant_session_disk *k = &r->s->disks[i];
  double end = now_monotonic () + 60;
  int ok = -1;

  while (ok == -1 && now_monotonic () < end) {
    CLEANUP_FREE char *live = NULL;
    if (virt_block_job_info (r->dom, k->target, NULL) == 1)
      virt_block_job_abort (r->dom, k->target, true);
    live = virt_domain_xml (r->dom, 0);
    if (live && xml_disk_source_is (live, k->target, k->migrated_to) == 1 &&
        virt_block_job_info (r->dom, k->target, NULL) == 0)
      ok = 0;
    else
      usleep (200000);
  }
  if (ok == -1)
    error_setx ("pivot of %s to %s did not complete", k->target, k->migrated_to);
  else
    r->pivoted[i] = true;
  return ok;
}

/* The persistent definition names the new volumes. */
static int
rm_fix_definition (struct rmig *r)
{
  CLEANUP_FREE char *x = NULL;
  virDomainPtr d2;
  size_t i;

  if (r->s->transient || virDomainIsPersistent (r->dom) != 1)
    return 0;
  x = virt_domain_xml (r->dom, VIR_DOMAIN_XML_INACTIVE);
  for (i = 0; x && i < r->s->ndisks; i++) {
    char *y = instant_xml_set_disk (x, r->s->disks[i].target,
                                    r->s->disks[i].migrated_to, r->format);
    free (x);
    x = y;
  }
  d2 = x ? virt_domain_define_xml (r->conn, x, r->s->name) : NULL;
  if (!d2) {
    error_prefix ("every disk pivoted, but the persistent definition of %s could "
                  "not be updated", r->s->name);
    return -1;
  }
  virDomainFree (d2);
  return 0;
}

/* No disk pivoted: abort the jobs, delete the volumes made, running. */
static void
rm_undo (struct rmig *r)
{
  struct instant_session *s = r->s;
  struct instant_caller w = { r->o->warn, r->o->warn_opaque, r->o->repo_open };
  size_t i;

  ERROR_SAVE (why);
  for (i = 0; i < s->ndisks; i++) {
    if (r->dom)
      virt_block_job_abort_wait (r->dom, s->disks[i].target, 10);
    if (r->created[i] && virt_vol_delete_path (r->conn, s->disks[i].migrated_to) == -1)
      session_warn (&w, "%s", error_msg ());
    s->disks[i].migrated_to[0] = '\0';
    s->disks[i].target_made = false;
  }
  session_set_state (s, INSTANT_STATE_RUNNING);
  text_set (s->message, sizeof s->message, "migration failed: %s", why_msg);
  s->migrate_pid = 0;
  session_save (r->cat, s, NULL);
  ERROR_RESTORE (why);
}

/* Every disk on its volume: nbdkits, overlays and hold go; migrated. */
static void
rm_finish (struct rmig *r, double t0, double t1)
{
  struct instant_session *s = r->s;
  struct instant_caller w = { r->o->warn, r->o->warn_opaque, r->o->repo_open };
  size_t i;

  r->res->seconds_copy = t1 - t0;
  r->res->seconds_pivot = now_monotonic () - t1;
  supervisor_stop (s);
  session_release_hold (s, &w);
  remote_overlays_delete (r->conn, s, &w);     /* the host migrated on */
  for (i = 0; i < s->ndisks; i++)
    s->disks[i].overlay[0] = '\0';
  session_set_state (s, INSTANT_STATE_MIGRATED);
  text_set (s->message, sizeof s->message, "migrated to %s (pool %s of %s) in %.1f s "
            "(copy) + %.2f s (pivot)", s->disks[0].migrated_to, r->pool, s->uri,
            r->res->seconds_copy, r->res->seconds_pivot);
  s->migrate_pid = 0;
  session_save (r->cat, s, NULL);
}

static int
rm_run (struct rmig *r)
{
  double t0 = now_monotonic (), t1;
  size_t i;

  for (i = 0; i < r->s->ndisks; i++)
    if (rm_start (r, i) == -1)
      return -1;
  if (rm_wait_ready (r) == -1)
    return -1;
  t1 = now_monotonic ();
  for (i = 0; i < r->s->ndisks; i++)
    if (rm_pivot (r, i) == -1)
      return -1;
  if (rm_fix_definition (r) == -1)
    return -1;
  rm_finish (r, t0, t1);
  return 0;
}

int
remote_migrate (struct catalog *cat, struct instant_session *s,
                const struct instant_migrate_opts *o,
                struct instant_migrate_result *res)
{
  struct rmig r = {
    .cat = cat, .s = s, .o = o, .res = res,
    .pool = o->storage_pool ? o->storage_pool : s->storage_pool,
    .format = o->format ? o->format : "qcow2",
  };
  int ret = -1;

  memset (res, 0, sizeof *res);
  if (rm_prepare (&r) == 0 && rm_begin (&r) == 0) {
    ret = rm_run (&r);
    if (ret == -1 && !r.pivoted[0])
      rm_undo (&r);
    else if (ret == -1) {
      /* Some disks pivoted: they stay; the state stays migrating for
       * reattach (session.c) to settle the others. */
      text_set (s->message, sizeof s->message, "migration stopped after a pivot: %s",
                error_msg ());
      s->migrate_pid = 0;
      session_save (cat, s, NULL);
    }
  }
  if (r.dom)
    virDomainFree (r.dom);
  virt_close (r.conn);
  return ret;
}
