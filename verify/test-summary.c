/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of verify/summary.c: durations in words, median and p95, a
 * summary's window, pass rate, RTO and newest verified point (fed by hand
 * and through a catalog), and the regression of the time to application
 * ready.
 */
#include <math.h>

#include "verify/verify.h"
#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static bool
dur_is (double secs, const char *want)
{
  char buf[VERIFY_DURATION_LEN];

  verify_duration_str (secs, buf, sizeof buf);
  if (strcmp (buf, want) != 0) {
    fprintf (stderr, "duration %g: '%s', expected '%s'\n", secs, buf, want);
    return false;
  }
  return true;
}

static void
test_numbers (void)
{
  double a[] = { 5, 1, 3 }, b[] = { 4, 1, 3, 2 }, c[20], one[] = { 7 };
  int i;

  CHECK (dur_is (7.34, "7.3s"));
  CHECK (dur_is (1, "1s"));
  CHECK (dur_is (45, "45s"));
  CHECK (dur_is (10.54, "10.5s"));
  CHECK (dur_is (59.97, "1m"));
  CHECK (dur_is (120, "2m"));
  CHECK (dur_is (133, "2m13s"));
  CHECK (dur_is (86400, "1d"));
  CHECK (dur_is (3 * 86400 + 4 * 3600 + 59, "3d4h"));
  CHECK (dur_is (4 * 3600 + 600, "4h10m"));
  CHECK (verify_median (a, 3) == 3);
  CHECK (verify_median (b, 4) == 2.5);
  CHECK (verify_median (NULL, 0) == -1);
  CHECK (verify_percentile (one, 1, 95) == 7);
  for (i = 0; i < 20; i++)
    c[i] = 20 - i;                      /* 20 .. 1 */
  CHECK (verify_percentile (c, 20, 95) == 19);   /* nearest rank: the 19th */
  CHECK (verify_percentile (c, 20, 50) == 10);
  CHECK (verify_percentile (c, 20, 100) == 20);
}

/* The summary of web (3 points: 2 in the window; runs: 2 passed in the
 * window on p2 and p3 -- p3's pass is the newest --, one failed in it, one
 * passed before it on p1), db (an image run of its name, no points), and
 * other, not asked for. */
static void
test_summary (void)
{
  const time_t now = 1000000, since = now - 86400;
  char *only[] = { "web", "db", "gone", NULL };
  struct verify_summary *s = verify_summary_new (since, now, only);
  const struct verify_summary_vm *web, *db, *gone;
  json_t *j;
  char *html;

  verify_summary_add_run (s, "web", "web@p1", since - 10, true, 1);     /* before */
  verify_summary_add_run (s, "web", "web@p2", since + 10, true, 4);
  verify_summary_add_run (s, "web-lab", "web@p3", since + 20, true, 2); /* renamed */
  verify_summary_add_run (s, "web", "web@p3", since + 30, false, 9);
  verify_summary_add_run (s, "db", "image /srv/db.img", since + 40, true, 6);
  verify_summary_add_run (s, "other", "other@x", since + 40, true, 6);
  verify_summary_add_point (s, "web", "p1", since - 100);
  verify_summary_add_point (s, "web", "p2", since + 5);
  verify_summary_add_point (s, "web", "p4", now - 1);   /* newest, never verified */
  verify_summary_add_point (s, "web", "p3", since + 15);
  verify_summary_add_point (s, "other", "x", since + 1);
  verify_summary_finish (s);

  CHECK (s->nvms == 3);
  db = &s->vms[0];
  gone = &s->vms[1];
  web = &s->vms[2];
  CHECK (strcmp (db->vm, "db") == 0 && strcmp (gone->vm, "gone") == 0 &&
         strcmp (web->vm, "web") == 0);
  CHECK (web->points == 4 && web->points_window == 3);
  CHECK (web->runs == 3 && web->passed == 2);
  CHECK (web->rto_samples == 2 && web->rto_median == 3 && web->rto_p95 == 4);
  CHECK (web->newest && strcmp (web->newest, "p4") == 0 && web->newest_time == now - 1);
  CHECK (web->verified && strcmp (web->verified, "p3") == 0);
  CHECK (web->verified_time == since + 15 && web->verified_at == since + 20);
  CHECK (db->runs == 1 && db->passed == 1 && db->points == 0 && !db->verified);
  CHECK (db->rto_median == 6);
  CHECK (gone->runs == 0 && gone->points == 0 && gone->rto_median == -1);

  j = verify_summary_json (s);
  {
    json_t *w = json_array_get (json_object_get (j, "vms"), 2);
    CHECK (fabs (json_real_value (json_object_get (w, "pass_rate")) - 2.0 / 3) < 1e-9);
    CHECK (json_integer_value (json_object_get (w, "verifications")) == 3);
    CHECK (strcmp (json_string_value (json_object_get (
             json_object_get (w, "newest_verified_point"), "id")), "p3") == 0);
    CHECK (json_is_null (json_object_get (json_array_get (json_object_get (j, "vms"), 1),
                                          "pass_rate")));
  }
  json_decref (j);
  html = verify_summary_html (s);
  CHECK (strstr (html, "<td>web</td><td>3</td><td>4</td><td>3</td>"));
  CHECK (strstr (html, ">67%<"));
  CHECK (strstr (html, "</html>"));
  free (html);
  verify_summary_free (s);
}

/* The same rules through the catalog's rows. */
static void
test_catalog (void)
{
  char dir[] = "/tmp/test-summary.XXXXXX";
  struct catalog *cat;
  struct verify_summary *s;
  struct repo_manifest m = { 0 };
  const struct catalog_lab_run run = {
    .run = "abc123", .lab = "verify-web", .kind = "verify", .file = "",
    .started = 5000, .status = "passed", .report_dir = "", .message = "",
  };
  const struct catalog_lab_vm vm = {
    .vm = "web", .group = "verify", .source = "web@20260101T000000Z", .domain = "",
    .address = "", .status = "pass", .t_boot = 1, .t_heartbeat = 2, .t_app_ready = 3,
    .message = "",
  };
  int64_t repo_id, run_id, vm_id;

  CHECK (mkdtemp (dir) != NULL);
  cat = catalog_open (dir);
  CHECK (cat != NULL);
  CHECK (catalog_repo_add (cat, "/srv/repo", "uuid", 65536, false, true, &repo_id) == 0);
  snprintf (m.vm, sizeof m.vm, "web");
  snprintf (m.id, sizeof m.id, "20260101T000000Z");
  m.time = 4000;
  snprintf (m.kind, sizeof m.kind, "full");
  snprintf (m.consistency, sizeof m.consistency, "crash");
  snprintf (m.source, sizeof m.source, "import");
  CHECK (catalog_point_put (cat, repo_id, &m) == 0);
  CHECK (catalog_lab_run_add (cat, &run, &run_id) == 0);
  CHECK (catalog_lab_vm_add (cat, run_id, &vm, &vm_id) == 0);

  s = verify_summary_read (cat, repo_id, 4500, 6000, NULL);
  CHECK (s && s->nvms == 1);
  if (s && s->nvms == 1) {
    CHECK (s->vms[0].points == 1 && s->vms[0].points_window == 0);
    CHECK (s->vms[0].runs == 1 && s->vms[0].passed == 1 && s->vms[0].rto_median == 3);
    CHECK (s->vms[0].verified && s->vms[0].verified_at == 5000);
  }
  verify_summary_free (s);
  /* a window after the run: the point is still there, the run is not */
  s = verify_summary_read (cat, repo_id, 5500, 6000, NULL);
  CHECK (s && s->nvms == 1 && s->vms[0].runs == 0 && s->vms[0].verified);
  verify_summary_free (s);
  catalog_close (cat);
  {
    CLEANUP_FREE char *cmd = xasprintf ("rm -rf %s", dir);
    CHECK (system (cmd) == 0);
  }
}

static json_t *
history (const double *t, size_t n)
{
  json_t *a = json_array ();
  size_t i;

  for (i = 0; i < n; i++)
    json_array_append_new (a, json_pack ("{s:s, s:s, s:o}", "run", "r", "started",
                                         "2026-12-01T00:00:00Z", "t_app_ready",
                                         t[i] < 0 ? json_null () : json_real (t[i])));
  return a;
}

static void
test_regression (void)
{
  /* the median of the runs before the newest (a failed one has no time) */
  const double slow[] = { 10, 11, -1, 9, 10, 16 }, ok[] = { 10, 11, 9, 10, 14 };
  const double alone[] = { 5 }, failed[] = { 10, 10, -1 };
  const double window[] = { 100, 100, 100, 10, 10, 10, 16 };
  struct verify_regression r;
  json_t *h;

  h = history (slow, 6);
  CHECK (verify_regression (h, 20, 50, &r) == 1);
  CHECK (r.newest == 16 && r.median == 10 && r.previous == 4 && r.regression);
  CHECK (fabs (r.change_percent - 60) < 1e-9);
  {
    json_t *j = verify_regression_json (&r);
    CHECK (json_is_true (json_object_get (j, "regression")));
    CHECK (json_real_value (json_object_get (j, "median")) == 10);
    json_decref (j);
  }
  CHECK (verify_regression (h, 20, 75, &r) == 1 && !r.regression);
  json_decref (h);
  h = history (ok, 5);
  CHECK (verify_regression (h, 20, 50, &r) == 1 && !r.regression && r.median == 10);
  json_decref (h);
  h = history (alone, 1);
  CHECK (verify_regression (h, 20, 50, &r) == 0);
  json_decref (h);
  h = history (failed, 3);
  CHECK (verify_regression (h, 20, 50, &r) == 0);
  json_decref (h);
  /* only the last max_previous runs count */
  h = history (window, 7);
  CHECK (verify_regression (h, 3, 50, &r) == 1 && r.median == 10 && r.regression);
  CHECK (verify_regression (h, 20, 50, &r) == 1 && r.median == 55 && !r.regression);
  json_decref (h);
}

int
main (void)
{
  test_numbers ();
  test_summary ();
  test_catalog ();
  test_regression ();
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("summary ok\n");
  return 0;
}
