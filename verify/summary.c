/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Summaries for people who answer for recovery (bootback report,
 * bootback history): per VM over a window, its restore points, its
 * verifications and their pass rate, its time to application ready
 * (median, p95: the RTO it achieves), the newest point a verification
 * passed on; and the regression of a VM's time to application ready.
 *
 * A summary is built in three steps, so the aggregation is pure and
 * tested alone (verify/test-summary.c): verify_summary_new, the add
 * functions (points, lab VM rows; in any order), verify_summary_finish.
 * verify_summary_read feeds it from the catalog.
 *
 * Which verifications are a VM's: a lab VM row whose source is one of its
 * points ("VM@ID", whatever the lab VM was called), or whose source is an
 * image and whose name is the VM's.  Counts, pass rate and the times are
 * of the window; the newest point and the newest verified point are of
 * all time (a point verified before the window is still the last good
 * one), the latter only while the point still exists.
 */
#include <math.h>

#include "verify/verify.h"
#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

/* ---- numbers --------------------------------------------------------------- */

char *
verify_duration_str (double secs, char *buf, size_t len)
{
  static const struct { long long s; char unit; } units[] = {
    { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
  };
  long long t;
  size_t i;

  if (secs < 59.95 && secs != floor (secs)) {
    snprintf (buf, len, "%.1fs", secs);
    return buf;
  }
  t = llround (secs);
  for (i = 0; i < 3 && t < units[i].s; i++)
    ;
  if (i == 3 || t % units[i].s / units[i + 1].s == 0)
    snprintf (buf, len, "%lld%c", t / units[i].s, units[i].unit);
  else
    snprintf (buf, len, "%lld%c%lld%c", t / units[i].s, units[i].unit,
              t % units[i].s / units[i + 1].s, units[i + 1].unit);
  return buf;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

double
verify_median (double *v, size_t n)
{
  if (n == 0)
    return -1;
  qsort (v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double
verify_percentile (double *v, size_t n, double p)
{
  size_t rank;

  if (n == 0)
    return -1;
  qsort (v, n, sizeof *v, cmp_double);
  rank = (size_t) ceil (p / 100 * n);
  return v[rank > 0 ? MIN (rank, n) - 1 : 0];
}

/* ---- building a summary ------------------------------------------------------ */

struct verify_summary *
verify_summary_new (time_t since, time_t now, char *const *only)
{
  struct verify_summary *s = xcalloc (1, sizeof *s);
  size_t i, n = 0;

  s->since = since;
  s->now = now;
  if (only) {
    s->only = xcalloc (1, sizeof *s->only);
    for (i = 0; only[i]; i++)
      strv_push (&s->only, &n, xstrdup (only[i]));
  }
  return s;
}

static bool
wanted (const struct verify_summary *s, const char *vm)
{
  size_t i;

  if (!s->only)
    return true;
  for (i = 0; s->only[i]; i++)
    if (strcmp (s->only[i], vm) == 0)
      return true;
  return false;
}

/* The entry of vm (made if new), or NULL if it is not wanted. */
static struct verify_summary_vm *
entry (struct verify_summary *s, const char *vm)
{
  struct verify_summary_vm *e;
  size_t i;

  if (!wanted (s, vm))
    return NULL;
  for (i = 0; i < s->nvms; i++)
    if (strcmp (s->vms[i].vm, vm) == 0)
      return &s->vms[i];
  e = ARRAY_PUSH (s->vms, s->nvms);
  memset (e, 0, sizeof *e);
  e->vm = xstrdup (vm);
  e->rto_median = e->rto_p95 = -1;
  return e;
}

void
verify_summary_add_point (struct verify_summary *s, const char *vm,
                          const char *id, time_t t)
{
  struct verify_summary_vm *e = entry (s, vm);
  size_t n;

  if (!e)
    return;
  e->points++;
  e->points_window += t >= s->since && t <= s->now;
  n = e->npoints;                 /* point_ids and point_times go together */
  strv_push (&e->point_ids, &n, xstrdup (id));
  *ARRAY_PUSH (e->point_times, e->npoints) = t;
  /* a point dated more than an hour ahead is not the newest (whoever can
   * write the repository could otherwise make it look current) */
  if (t > s->now + 3600)
    return;
  if (!e->newest || t >= e->newest_time) {
    free (e->newest);
    e->newest = xstrdup (id);
    e->newest_time = t;
  }
}

void
verify_summary_add_run (struct verify_summary *s, const char *vm,
                        const char *source, time_t started, bool passed,
                        double t_app_ready)
{
  const char *at = strchr (source, '@');
  CLEANUP_FREE char *owner = NULL;
  struct verify_summary_vm *e;
  size_t n;

  if (strncmp (source, "image ", 6) != 0 && at && at > source)
    owner = xasprintf ("%.*s", (int) (at - source), source);
  else
    owner = xstrdup (vm);
  if (!(e = entry (s, owner)))
    return;
  if (started >= s->since && started <= s->now) {
    e->runs++;
    e->passed += passed;
    if (passed && t_app_ready >= 0)
      *ARRAY_PUSH (e->ready, e->nready) = t_app_ready;
  }
  if (passed && at && strncmp (source, "image ", 6) != 0) {
    n = e->nok;
    strv_push (&e->ok_points, &n, xstrdup (at + 1));
    *ARRAY_PUSH (e->ok_at, e->nok) = started;
  }
}

/* The newest of e's points that a verification passed on, with the time
 * of its newest passed verification. */
static void
newest_verified (struct verify_summary_vm *e)
{
  size_t i, j;

  for (i = 0; i < e->npoints; i++)
    for (j = 0; j < e->nok; j++) {
      if (strcmp (e->point_ids[i], e->ok_points[j]) != 0)
        continue;
      if (e->verified && e->point_times[i] < e->verified_time)
        continue;
      if (!e->verified || strcmp (e->verified, e->point_ids[i]) != 0) {
        free (e->verified);
        e->verified = xstrdup (e->point_ids[i]);
        e->verified_at = 0;
      }
      e->verified_time = e->point_times[i];
      e->verified_at = MAX (e->verified_at, e->ok_at[j]);
    }
}

static int
cmp_vm (const void *a, const void *b)
{
  return strcmp (((const struct verify_summary_vm *) a)->vm,
                 ((const struct verify_summary_vm *) b)->vm);
}

void
verify_summary_finish (struct verify_summary *s)
{
  size_t i;

  /* The VMs asked for are there even without any point or run. */
  for (i = 0; s->only && s->only[i]; i++)
    entry (s, s->only[i]);
  for (i = 0; i < s->nvms; i++) {
    struct verify_summary_vm *e = &s->vms[i];
    e->rto_samples = e->nready;
    e->rto_median = verify_median (e->ready, e->nready);
    e->rto_p95 = verify_percentile (e->ready, e->nready, 95);
    newest_verified (e);
  }
  qsort (s->vms, s->nvms, sizeof *s->vms, cmp_vm);
}

static void
vm_clear (struct verify_summary_vm *e)
{
  free (e->vm);
  free (e->newest);
  free (e->verified);
  free (e->suspicious_newest);
  free (e->suspicious_reason);
  free (e->ready);
  strv_free (e->point_ids);
  free (e->point_times);
  strv_free (e->ok_points);
  free (e->ok_at);
}

void
verify_summary_free (struct verify_summary *s)
{
  size_t i;

  if (!s)
    return;
  for (i = 0; i < s->nvms; i++)
    vm_clear (&s->vms[i]);
  free (s->vms);
  strv_free (s->only);
  free (s);
}

/* ---- from the catalog -------------------------------------------------------- */

static int
add_point_row (void *opaque, const char *vm, const char *id, int64_t t)
{
  verify_summary_add_point (opaque, vm, id, (time_t) t);
  return 0;
}

static int
add_run_row (void *opaque, const struct catalog_lab_vm_row *v)
{
  verify_summary_add_run (opaque, v->vm, v->source, (time_t) v->started,
                          strcmp (v->status, "pass") == 0, v->t_app_ready);
  return 0;
}

/* The points of e in the window that the ransomware score flags (and no
 * one unflagged): their count, the newest with its reason. */
static int
add_suspicious (struct catalog *cat, int64_t repo_id, const struct verify_summary *s,
                struct verify_summary_vm *e)
{
  struct catalog_score sc;
  size_t i;
  int r;

  for (i = 0; i < e->npoints; i++) {
    if (e->point_times[i] < s->since || e->point_times[i] > s->now)
      continue;
    r = catalog_score_get (cat, repo_id, e->vm, e->point_ids[i], &sc);
    if (r == -1)
      return -1;
    if (r == 0 || !sc.suspicious || sc.unflagged)
      continue;
    e->suspicious++;
    if (!e->suspicious_newest || e->point_times[i] > e->suspicious_time) {
      free (e->suspicious_newest);
      free (e->suspicious_reason);
      e->suspicious_newest = xstrdup (e->point_ids[i]);
      e->suspicious_reason = xstrdup (sc.reason);
      e->suspicious_time = e->point_times[i];
    }
  }
  return 0;
}

struct verify_summary *
verify_summary_read (struct catalog *cat, int64_t repo_id, time_t since,
                     time_t now, char *const *only)
{
  size_t i;
  struct verify_summary *s = verify_summary_new (since, now, only);

  if (catalog_point_times (cat, repo_id, add_point_row, s) == -1 ||
      catalog_lab_vm_rows (cat, 0, add_run_row, s) == -1) {
    verify_summary_free (s);
    return NULL;
  }
  /* Without a list: the VMs with a point, or a verification in the
   * window (one with neither is no longer there to answer for). */
  if (!only) {
    size_t k;
    for (i = k = 0; i < s->nvms; i++) {
      struct verify_summary_vm *e = &s->vms[i];
      if (e->points == 0 && e->runs == 0) {
        vm_clear (e);
        continue;
      }
      s->vms[k++] = *e;
    }
    s->nvms = k;
  }
  for (i = 0; i < s->nvms; i++)
    if (add_suspicious (cat, repo_id, s, &s->vms[i]) == -1) {
      verify_summary_free (s);
      return NULL;
    }
  verify_summary_finish (s);
  return s;
}

/* ---- output ---------------------------------------------------------------- */

static json_t *
secs_or_null (double s)
{
  return s >= 0 ? json_real (s) : json_null ();
}

static json_t *
point_json (const char *id, time_t t, time_t verified)
{
  char when[32], at[32];
  json_t *o;

  if (!id)
    return json_null ();
  iso_time_format (t, when);
  o = json_pack ("{s:s, s:s}", "id", id, "time", when);
  if (verified) {
    iso_time_format (verified, at);
    json_object_set_new (o, "verified", json_string (at));
  }
  return o;
}

/* The newest suspicious point, or null. */
static json_t *
suspicious_json (const struct verify_summary_vm *e)
{
  json_t *o = point_json (e->suspicious_newest, e->suspicious_time, 0);

  if (e->suspicious_newest)
    json_object_set_new (o, "reason", json_string (e->suspicious_reason));
  return o;
}

static json_t *
vm_json (const struct verify_summary_vm *e)
{
  return json_pack ("{s:s, s:i, s:i, s:i, s:i, s:o, s:o, s:o, s:i, s:o, s:o, s:i, s:o}",
                    "vm", e->vm, "points", e->points,
                    "points_in_window", e->points_window,
                    "verifications", e->runs, "passed", e->passed,
                    "pass_rate", e->runs ? json_real ((double) e->passed / e->runs)
                                         : json_null (),
                    "rto_median", secs_or_null (e->rto_median),
                    "rto_p95", secs_or_null (e->rto_p95),
                    "rto_samples", e->rto_samples,
                    "newest_point", point_json (e->newest, e->newest_time, 0),
                    "newest_verified_point",
                    point_json (e->verified, e->verified_time, e->verified_at),
                    "suspicious_points", e->suspicious,
                    "newest_suspicious_point", suspicious_json (e));
}

json_t *
verify_summary_json (const struct verify_summary *s)
{
  json_t *vms = json_array ();
  char since[32], now[32];
  size_t i;

  iso_time_format (s->since, since);
  iso_time_format (s->now, now);
  for (i = 0; i < s->nvms; i++)
    json_array_append_new (vms, vm_json (&s->vms[i]));
  return json_pack ("{s:s, s:s, s:I, s:o}", "since", since, "now", now,
                    "window_seconds", (json_int_t) (s->now - s->since), "vms", vms);
}

/* A table cell: a duration or a dash. */
static void
html_secs (FILE *f, double s)
{
  char d[VERIFY_DURATION_LEN];

  fprintf (f, "<td>%s</td>", s >= 0 ? verify_duration_str (s, d, sizeof d) : "&mdash;");
}

/* A table cell: a point and its time (and when it was verified), or a
 * dash. */
static void
html_point (FILE *f, const char *id, time_t t, time_t verified)
{
  char when[32], at[32];

  if (!id) {
    fputs ("<td>&mdash;</td>", f);
    return;
  }
  iso_time_format (t, when);
  fputs ("<td>", f);
  verify_html_escape (f, id);
  fprintf (f, "<br><span class=\"meta\">%s", when);
  if (verified) {
    iso_time_format (verified, at);
    fprintf (f, ", verified %s", at);
  }
  fputs ("</span></td>", f);
}

/* A table cell: how many points the ransomware score flags, the newest
 * with its reason; "none" if none. */
static void
html_suspicious (FILE *f, const struct verify_summary_vm *e)
{
  if (!e->suspicious) {
    fputs ("<td class=\"pass\">none</td>", f);
    return;
  }
  fprintf (f, "<td class=\"fail\">%d, newest ", e->suspicious);
  verify_html_escape (f, e->suspicious_newest);
  fputs ("<br><span class=\"meta\">", f);
  verify_html_escape (f, e->suspicious_reason);
  fputs ("</span></td>", f);
}

static void
html_row (FILE *f, const struct verify_summary_vm *e)
{
  bool ok = e->runs > 0 && e->passed == e->runs;

  fputs ("<tr><td>", f);
  verify_html_escape (f, e->vm);
  fprintf (f, "</td><td>%d</td><td>%d</td><td>%d</td>", e->points_window, e->points,
           e->runs);
  if (e->runs)
    fprintf (f, "<td class=\"%s\">%.0f%%</td>", ok ? "pass" : "fail",
             100.0 * e->passed / e->runs);
  else
    fputs ("<td class=\"skip\">none</td>", f);
  html_secs (f, e->rto_median);
  html_secs (f, e->rto_p95);
  html_point (f, e->verified, e->verified_time, e->verified_at);
  html_point (f, e->newest, e->newest_time, 0);
  html_suspicious (f, e);
  fputs ("</tr>\n", f);
}

char *
verify_summary_html (const struct verify_summary *s)
{
  char since[32], now[32];
  char *buf = NULL;
  size_t len = 0, i;
  bool ok = true;
  FILE *f = open_memstream (&buf, &len);

  if (!f)
    abort ();
  for (i = 0; i < s->nvms; i++)
    ok &= s->vms[i].runs > 0 && s->vms[i].passed == s->vms[i].runs;
  iso_time_format (s->since, since);
  iso_time_format (s->now, now);
  fprintf (f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<title>bootback report %s to %s</title>\n", since, now);
  verify_html_style (f, ok ? "#1a7f37" : "#c62828");
  fprintf (f, "</head>\n<body>\n<header><h1>Recovery report</h1>\n"
           "<p>%zu VM%s &middot; from %s to %s</p></header>\n<main>\n",
           s->nvms, s->nvms == 1 ? "" : "s", since, now);
  fputs ("<table id=\"summary\">\n<tr><th>VM</th><th>points in window</th>"
         "<th>points</th><th>verifications</th><th>pass rate</th>"
         "<th>RTO median</th><th>RTO p95</th><th>newest verified point</th>"
         "<th>newest point</th><th>suspicious points</th></tr>\n", f);
  for (i = 0; i < s->nvms; i++)
    html_row (f, &s->vms[i]);
  fputs ("</table>\n<p class=\"meta\">RTO: time from a verification's start of the "
         "VM to application ready, of the verifications that passed.  Pass rate "
         "and RTO are of the window; the newest points of all time.  Suspicious: "
         "points of the window that the ransomware score at backup time flags "
         "(<code>bootback point unflag</code> clears it).</p>\n"
         "</main>\n</body>\n</html>\n", f);
  fclose (f);
  return buf;
}

/* ---- regression of the time to application ready ------------------------- */

static bool
app_ready (json_t *run, double *t)
{
  json_t *v = json_object_get (run, "t_app_ready");

  if (!json_is_number (v))
    return false;
  *t = json_number_value (v);
  return true;
}

int
verify_regression (json_t *history, int max_previous, double threshold,
                   struct verify_regression *r)
{
  size_t n = json_array_size (history), i, np = 0;
  json_t *last = n ? json_array_get (history, n - 1) : NULL;
  CLEANUP_FREE double *prev = NULL;
  double newest;

  memset (r, 0, sizeof *r);
  if (!last || max_previous < 1 || !app_ready (last, &newest))
    return 0;
  prev = xcalloc (max_previous, sizeof *prev);
  for (i = n - 1; i-- > 0 && np < (size_t) max_previous;)
    if (app_ready (json_array_get (history, i), &prev[np]))
      np++;
  if (np == 0)
    return 0;
  r->newest = newest;
  r->median = verify_median (prev, np);
  r->previous = np;
  r->threshold_percent = threshold;
  r->change_percent = r->median > 0 ? 100 * (newest - r->median) / r->median : 0;
  r->regression = newest > r->median * (1 + threshold / 100);
  r->run = json_string_value (json_object_get (last, "run"));
  r->started = json_string_value (json_object_get (last, "started"));
  return 1;
}

json_t *
verify_regression_json (const struct verify_regression *r)
{
  return json_pack ("{s:s?, s:s?, s:f, s:f, s:i, s:f, s:f, s:b}",
                    "run", r->run, "started", r->started,
                    "t_app_ready", r->newest, "median", r->median,
                    "previous_runs", r->previous,
                    "change_percent", r->change_percent,
                    "threshold_percent", r->threshold_percent,
                    "regression", r->regression);
}
