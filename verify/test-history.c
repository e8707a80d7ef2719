/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the run history (history.c) through the catalog: runs
 * recorded with their VMs and checks come back for one VM, oldest run
 * first, with the times not reached as null and the failed checks named;
 * a run that cannot be recorded whole leaves nothing behind.
 */
#include <jansson.h>

#include "verify/verify.h"
#include "recovery/catalog/catalog.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static void
add_check (struct verify_vm_result *v, const char *name, enum verify_status st)
{
  struct verify_check_result *c = &v->checks[v->nchecks++];

  c->name = xstrdup (name);
  c->kind = "http";
  c->status = st;
  c->message = xstrdup (st == VERIFY_PASS ? "HTTP 200" : "HTTP 503, expected 200");
  c->attempts = 1;
  c->seconds = 0.5;
  c->at = 7.25;
}

/* A run of lab "nightly" with VM vm (and db1): vm passes with every time
 * if pass, or fails two checks without an app-ready time. */
static struct verify_report *
make_report (const char *id, time_t started, const char *vm, bool pass)
{
  struct verify_report *r = xcalloc (1, sizeof *r);
  struct verify_vm_result *v;

  r->lab = xstrdup ("nightly");
  r->run_id = xstrdup (id);
  r->kind = xstrdup ("run");
  r->dir = xasprintf ("/reports/%s", id);
  r->status = xstrdup (pass ? "passed" : "failed");
  r->started = started;
  r->seconds = 30;
  r->vms = xcalloc (2, sizeof *r->vms);
  r->nvms = 2;
  v = &r->vms[0];
  v->name = vm ? xstrdup (vm) : NULL;
  v->group = xstrdup ("web");
  v->source = xstrdup ("web1@20261122T045506Z");
  v->status = pass ? VERIFY_PASS : VERIFY_FAIL;
  v->t_boot = 3.5;
  v->t_heartbeat = pass ? 4.5 : -1;
  v->t_app_ready = pass ? 7.25 : -1;
  v->checks = xcalloc (3, sizeof *v->checks);
  add_check (v, "http http://{address}/", pass ? VERIFY_PASS : VERIFY_FAIL);
  add_check (v, "heartbeat", VERIFY_PASS);
  add_check (v, "tcp 22", pass ? VERIFY_PASS : VERIFY_FAIL);
  if (!pass)
    v->message = xstrdup ("2 checks failed");
  v = &r->vms[1];
  v->name = xstrdup ("db1");
  v->status = VERIFY_PASS;
  v->t_boot = v->t_heartbeat = v->t_app_ready = 2;
  v->checks = xcalloc (1, sizeof *v->checks);
  add_check (v, "heartbeat", VERIFY_PASS);
  r->checks = r->passed = 4;
  return r;
}

static void
record (struct catalog *cat, const char *id, time_t started, const char *vm,
        bool pass, int expect)
{
  struct verify_report *r = make_report (id, started, vm, pass);

  CHECK (verify_history_record (cat, r) == expect);
  verify_report_free (r);
}

static const char *
get_str (json_t *o, const char *key)
{
  const char *s = json_string_value (json_object_get (o, key));
  return s ? s : "(none)";
}

static void
test_history (struct catalog *cat)
{
  json_t *h, *o;

  /* Recorded newest first: the history still lists the oldest first. */
  record (cat, "run2", 1795000600, "web1", false, 0);
  record (cat, "run1", 1795000000, "web1", true, 0);
  /* A VM without a name cannot be recorded: its run is not either. */
  record (cat, "run3", 1795001200, NULL, true, -1);

  h = verify_history_json (cat, "web1");
  CHECK (h && json_array_size (h) == 2);
  o = json_array_get (h, 0);
  CHECK (strcmp (get_str (o, "run"), "run1") == 0);
  CHECK (strcmp (get_str (o, "lab"), "nightly") == 0);
  CHECK (strcmp (get_str (o, "kind"), "run") == 0);
  CHECK (strcmp (get_str (o, "started"), "2026-11-18T11:06:40Z") == 0);
  CHECK (strcmp (get_str (o, "status"), "pass") == 0);
  CHECK (strcmp (get_str (o, "source"), "web1@20261122T045506Z") == 0);
  CHECK (json_real_value (json_object_get (o, "t_boot")) == 3.5);
  CHECK (json_real_value (json_object_get (o, "t_app_ready")) == 7.25);
  CHECK (strcmp (get_str (o, "report_dir"), "/reports/run1") == 0);
  CHECK (strcmp (get_str (o, "failed_checks"), "") == 0);
  o = json_array_get (h, 1);
  CHECK (strcmp (get_str (o, "run"), "run2") == 0);
  CHECK (strcmp (get_str (o, "status"), "fail") == 0);
  CHECK (json_real_value (json_object_get (o, "t_boot")) == 3.5);
  CHECK (json_is_null (json_object_get (o, "t_heartbeat")));
  CHECK (json_is_null (json_object_get (o, "t_app_ready")));
  CHECK (strcmp (get_str (o, "message"), "2 checks failed") == 0);
  CHECK (strcmp (get_str (o, "failed_checks"), "http http://{address}/; tcp 22") == 0);
  json_decref (h);

  /* db1 was in both recorded runs, not in the one rolled back. */
  h = verify_history_json (cat, "db1");
  CHECK (h && json_array_size (h) == 2);
  json_decref (h);
  h = verify_history_json (cat, "nosuchvm");
  CHECK (h && json_array_size (h) == 0);
  json_decref (h);
}

int
main (void)
{
  char dir[] = "/tmp/bootback-test-history.XXXXXX";
  struct catalog *cat;

  if (!mkdtemp (dir)) {
    perror ("mkdtemp");
    return 1;
  }
  cat = catalog_open (dir);
  if (!cat) {
    fprintf (stderr, "catalog_open: %s\n", error_msg ());
    return 1;
  }
  test_history (cat);
  catalog_close (cat);
  {
    char *cmd = xasprintf ("rm -rf %s", dir);
    CHECK (system (cmd) == 0);
    free (cmd);
  }
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("verify history ok\n");
  return 0;
}
