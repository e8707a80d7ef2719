/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /metrics of bootback web: the Prometheus text exposition format 0.0.4,
 * from the catalog (nothing is measured here):
 *
 *   bootback_last_backup_timestamp_seconds{vm}        newest point's time
 *   bootback_last_verification_success{vm}            1 passed, 0 failed
 *   bootback_last_verification_timestamp_seconds{vm}  that run's start
 *   bootback_rto_seconds{vm,phase}                    boot, heartbeat,
 *                                                     app_ready of the
 *                                                     lab VM's last run
 *   bootback_repository_logical_bytes{repo}           disks of all points
 *   bootback_repository_stored_bytes{repo}            what the points wrote
 *   bootback_repository_dedup_ratio{repo}             logical / stored
 *   bootback_sessions{state}                          sessions by state
 *   bootback_lab_runs_total{status}                   lab runs by status
 *
 * A verification belongs to the VM of its source point ("VM@TIME"), else
 * to the lab VM's name (an image run).  Label values are escaped here
 * (web_prom_escape); they may come from guests or the repository.
 */
#include "web/web.h"
#include "recovery/instant/instant.h"

char *
web_prom_escape (const char *s)
{
  char *out = xmalloc (2 * strlen (s) + 1), *q = out;

  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      *q++ = '\\', *q++ = *s;
    else if (*s == '\n')
      *q++ = '\\', *q++ = 'n';
    else
      *q++ = *s;
  }
  *q = '\0';
  return out;
}

/* One sample: name{label="value"[,label2="value2"]} value. */
static void
sample (FILE *f, const char *name, const char *label, const char *value,
        const char *label2, const char *value2, double v)
{
  CLEANUP_FREE char *e = web_prom_escape (value);
  CLEANUP_FREE char *e2 = label2 ? web_prom_escape (value2) : NULL;

  if (label2)
    fprintf (f, "%s{%s=\"%s\",%s=\"%s\"} %.17g\n", name, label, e, label2, e2, v);
  else
    fprintf (f, "%s{%s=\"%s\"} %.17g\n", name, label, e, v);
}

static void
help (FILE *f, const char *name, const char *type, const char *text)
{
  fprintf (f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* Newest point time of each VM (they come oldest first per VM). */
static int
backup_one (void *opaque, const char *vm, const char *id, int64_t time)
{
  json_t *o = opaque;

  json_object_set_new (o, vm, json_integer (time));
  return 0;
}

/* The last verdict of each VM (rows come oldest first). */
static int
verdict_one (void *opaque, const struct catalog_lab_vm_row *v)
{
  json_t *o = opaque;
  const char *at = strchr (v->source, '@');
  CLEANUP_FREE char *vm = at && strncmp (v->source, "image ", 6) != 0
    ? strndup (v->source, at - v->source) : xstrdup (v->vm);

  json_object_set_new (o, vm, json_pack ("{s:b, s:I, s:s}", "ok",
                                         strcmp (v->status, "pass") == 0,
                                         "at", (json_int_t) v->started,
                                         "labvm", v->vm));
  return 0;
}

/* The lab VM's last run's times. */
static int
rto_one (void *opaque, const struct catalog_lab_history *h)
{
  double *t = opaque;

  t[0] = h->t_boot, t[1] = h->t_heartbeat, t[2] = h->t_app_ready;
  return 0;
}

static int
verifications (FILE *f, struct catalog *cat)
{
  static const char *const phase[] = { "boot", "heartbeat", "app_ready" };
  json_t *o = json_object (), *v;
  const char *vm;
  int i;

  if (catalog_lab_vm_rows (cat, 0, verdict_one, o) == -1)
    return json_decref (o), -1;
  help (f, "bootback_last_verification_success", "gauge",
        "1 if the VM's last verification passed, 0 if it failed");
  json_object_foreach (o, vm, v)
    sample (f, "bootback_last_verification_success", "vm", vm, NULL, NULL,
            json_is_true (json_object_get (v, "ok")));
  help (f, "bootback_last_verification_timestamp_seconds", "gauge",
        "start of the VM's last verification (Unix time)");
  json_object_foreach (o, vm, v)
    sample (f, "bootback_last_verification_timestamp_seconds", "vm", vm, NULL,
            NULL, json_integer_value (json_object_get (v, "at")));
  help (f, "bootback_rto_seconds", "gauge",
        "seconds to boot, heartbeat and app-ready in the VM's last lab run");
  json_object_foreach (o, vm, v) {
    double t[3] = { -1, -1, -1 };
    if (catalog_lab_history (cat, json_string_value (json_object_get (v, "labvm")),
                             rto_one, t) == -1)
      return json_decref (o), -1;
    for (i = 0; i < 3; i++)
      if (t[i] >= 0)
        sample (f, "bootback_rto_seconds", "vm", vm, "phase", phase[i], t[i]);
  }
  json_decref (o);
  return 0;
}

static int
repository (FILE *f, struct catalog *cat, const struct web_opts *o)
{
  uint64_t logical, stored;

  if (!o->repo_id)
    return 0;
  if (catalog_repo_usage (cat, o->repo_id, &logical, &stored) == -1)
    return -1;
  help (f, "bootback_repository_logical_bytes", "gauge",
        "sum of the disk sizes of every restore point");
  sample (f, "bootback_repository_logical_bytes", "repo", o->repo, NULL, NULL,
          logical);
  help (f, "bootback_repository_stored_bytes", "gauge",
        "bytes the restore points wrote to the repository (compressed, deduplicated)");
  sample (f, "bootback_repository_stored_bytes", "repo", o->repo, NULL, NULL,
          stored);
  help (f, "bootback_repository_dedup_ratio", "gauge",
        "logical bytes over stored bytes");
  sample (f, "bootback_repository_dedup_ratio", "repo", o->repo, NULL, NULL,
          stored > 0 ? (double) logical / stored : 0);
  return 0;
}

static int
session_one (void *opaque, const struct instant_session *s)
{
  json_t *o = opaque;
  const char *st = instant_state_name (s->state);

  json_object_set_new (o, st, json_integer (json_integer_value (json_object_get (o, st)) + 1));
  return 0;
}

static int
count_one (void *opaque, const char *key, int64_t n)
{
  json_object_set_new (opaque, key, json_integer (n));
  return 0;
}

/* A gauge or counter of one label from an object of counts. */
static void
counts (FILE *f, const char *name, const char *type, const char *text,
        const char *label, json_t *o)
{
  const char *k;
  json_t *v;

  help (f, name, type, text);
  json_object_foreach (o, k, v)
    sample (f, name, label, k, NULL, NULL, json_integer_value (v));
}

static int
states (FILE *f, struct catalog *cat)
{
  json_auto_t *s = json_object (), *r = json_object ();

  json_object_set_new (r, "passed", json_integer (0));
  json_object_set_new (r, "failed", json_integer (0));
  if (instant_session_list (cat, session_one, s) == -1 ||
      catalog_lab_run_counts (cat, count_one, r) == -1)
    return -1;
  counts (f, "bootback_sessions", "gauge", "instant-recovery sessions by state",
          "state", s);
  counts (f, "bootback_lab_runs_total", "counter", "lab runs by status",
          "status", r);
  return 0;
}

char *
web_metrics (struct catalog *cat, const struct web_opts *o)
{
  json_auto_t *last = json_object ();
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  const char *vm;
  json_t *v;
  int rc = 0;

  if (!f)
    abort ();
  if (o->repo_id && catalog_point_times (cat, o->repo_id, backup_one, last) == -1)
    rc = -1;
  help (f, "bootback_last_backup_timestamp_seconds", "gauge",
        "time of the VM's newest restore point (Unix time)");
  json_object_foreach (last, vm, v)
    sample (f, "bootback_last_backup_timestamp_seconds", "vm", vm, NULL, NULL,
            json_integer_value (v));
  if (rc == 0 && (verifications (f, cat) == -1 || repository (f, cat, o) == -1 ||
                  states (f, cat) == -1))
    rc = -1;
  fclose (f);
  if (rc == -1) {
    free (buf);
    return NULL;
  }
  return buf;
}
