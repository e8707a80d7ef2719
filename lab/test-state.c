/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of runs and sandboxes on disk (state.c): a run's state is
 * written with a fresh id, read back and listed; the memory budget holds a
 * second run back and refuses one larger than the budget; a run is alive
 * while its owner lives (not after a fake owner died), a sandbox while its
 * lease lasts; waiting for memory is said through the note callback;
 * teardown of a run that made nothing removes its directory;
 * state files are 0600 under umask 0.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include "lab/lab.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"

static int failures;

struct notes {
  char **v;
  size_t n;
};

static void
collect (void *opaque, const char *line)
{
  struct notes *ns = opaque;

  strv_push (&ns->v, &ns->n, xstrdup (line));
}

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

/* A sandbox's owner, relay and published ports survive a save and a
 * load; --max-sandboxes refuses one more under the budget lock. */
static void
test_sandbox (const char *home)
{
  struct lab_state_opts o = {
    .home = home, .lab = "s1", .kind = "sandbox", .memory_mib = 100,
    .budget_mib = 1000, .wait = 0, .max_sandboxes = 1,
  };
  struct lab_state *a = lab_state_open (&o), *b, *c;

  CHECK (a != NULL);
  if (!a)
    return;
  CHECK (a->owner_uid == getuid () && a->owner && *a->owner);
  a->expires = time (NULL) + 600;
  a->pid = 0;
  a->relay_pid = 4242;
  a->relay_start = 77;
  strv_push (&a->published, NULL, xstrdup ("127.0.0.1:8080=web:80 10.77.0.10:80"));
  CHECK (lab_state_save (a) == 0);
  c = lab_state_load (home, a->id);
  CHECK (c && c->owner_uid == getuid () && strcmp (c->owner, a->owner) == 0);
  CHECK (c && c->relay_pid == 4242 && c->relay_start == 77);
  CHECK (c && c->published && c->published[0] && !c->published[1] &&
         strcmp (c->published[0], "127.0.0.1:8080=web:80 10.77.0.10:80") == 0);
  CHECK (c && !lab_publish_alive (c));        /* pid 4242 started at 77: not it */
  lab_state_free (c);
  CHECK (lab_sandboxes_count (home, NULL) == 1);
  o.lab = "s2";
  b = lab_state_open (&o);
  CHECK (b == NULL && strstr (error_msg (), "1 sandbox is up already (100 MiB), the "
                              "most allowed (--max-sandboxes 1)"));
  o.max_sandboxes = 0;                        /* no limit */
  b = lab_state_open (&o);
  CHECK (b != NULL);
  o.budget_mib = 150;                         /* 100 + 100 + 100 > 150 */
  c = lab_state_open (&o);
  CHECK (c == NULL && strstr (error_msg (), "the memory budget is taken: 200 of 150 MiB"));
  setenv ("LIBVIRT_DEFAULT_URI", "test:///default", 1);
  a->relay_pid = 0;
  CHECK (lab_state_teardown (a, NULL) == 0);
  if (b)
    CHECK (lab_state_teardown (b, NULL) == 0);
  lab_state_free (a);
  lab_state_free (b);
}

/* 256 + 256 > 400: the second waits (saying so through its note
 * callback, once), here a second at most; one larger than the whole
 * budget is refused at once. */
static void
test_budget_wait (const char *home, struct notes *notes)
{
  struct lab_state_opts o = {
    .home = home, .lab = "two", .kind = "run", .memory_mib = 256, .budget_mib = 400,
    .wait = 0.5, .note = collect, .note_opaque = notes,
  };
  struct lab_state *b = lab_state_open (&o);

  CHECK (b == NULL && strstr (error_msg (), "memory budget is taken"));
  CHECK (notes->n == 1 && notes->v && strcmp (notes->v[0], "waiting for memory: 256 of 400 "
                                              "MiB in use by other lab runs, this one "
                                              "needs 256 MiB") == 0);
  b = lab_state_new (home, "big", NULL, "run", NULL, 500, 400, -1);
  CHECK (b == NULL && strstr (error_msg (), "more than the whole budget"));
}

/* Each host has a budget of its own: with 256 of 400 MiB taken here by
 * run "one", a run of 256 on host h2 fits; a second there does not, and
 * the error names the host. */
static void
test_budget_hosts (const char *home)
{
  const struct lab_host h2 = { .name = "h2", .ssh = "root@h2" };
  struct lab_state_opts o = {
    .home = home, .lab = "r1", .kind = "run", .host = &h2, .memory_mib = 256,
    .budget_mib = 400, .wait = 0,
  };
  struct lab_state *a = lab_state_open (&o), *b;

  CHECK (a != NULL);
  o.lab = "r2";
  b = lab_state_open (&o);
  CHECK (b == NULL && strstr (error_msg (), "the memory budget of host h2 is taken: "
                              "256 of 400 MiB"));
  if (a) {                      /* made nothing on h2: its directory goes */
    CLEANUP_FREE char *p = xasprintf ("%s/state.json", a->dir);
    CHECK (unlink (p) == 0 && rmdir (a->dir) == 0);
    lab_state_free (a);
  }
}

int
main (void)
{
  char home[] = "/tmp/bootback-test-state.XXXXXX";
  struct lab_state *a, *b, *c, **v;
  time_t now = time (NULL);
  pid_t child;
  size_t n;
  struct notes notes = { 0 };

  if (!mkdtemp (home)) {
    perror ("mkdtemp");
    return 1;
  }
  virt_init ();
  a = lab_state_new (home, "one", "/x/one.yaml", "run", NULL, 256, 400, 0);
  CHECK (a != NULL);
  if (!a)
    return 1;
  CHECK (strlen (a->id) == 6);
  CHECK (lab_state_alive (a, now));
  test_budget_wait (home, &notes);
  test_budget_hosts (home);
  /* With room, a second run fits. */
  b = lab_state_new (home, "two", NULL, "sandbox", NULL, 100, 400, 0);
  CHECK (b != NULL);
  if (!b)
    return 1;
  CHECK (strcmp (a->id, b->id) != 0);
  b->expires = now + 3600;
  b->pid = 0;
  lab_state_add_vm (b, "web1", "bbl-x-web1", "10.77.0.10");
  {
    mode_t old = umask (0);
    CLEANUP_FREE char *p = xasprintf ("%s/state.json", b->dir);
    struct stat st;

    CHECK (lab_state_save (b) == 0);
    CHECK (stat (p, &st) == 0 && (st.st_mode & 0777) == 0600);
    umask (old);
  }

  c = lab_state_load (home, b->id);
  CHECK (c && strcmp (c->lab, "two") == 0 && c->expires == b->expires);
  CHECK (c && c->vms && c->vms[0] && strcmp (c->vms[0], "web1 bbl-x-web1 10.77.0.10") == 0);
  CHECK (c && lab_state_alive (c, now) && !lab_state_alive (c, now + 7200));
  lab_state_free (c);

  /* A run whose owner is gone is not alive (what lab reap removes). */
  child = fork ();
  if (child == 0) {
    execl ("/bin/true", "true", (char *) NULL);
    _exit (0);
  }
  waitpid (child, NULL, 0);
  a->pid = child;
  CHECK (!lab_state_alive (a, now));

  v = lab_state_list (home);
  for (n = 0; v[n]; n++)
    ;
  CHECK (n == 2);
  lab_state_list_free (v);

  /* Teardown of runs that made nothing (libvirt's test driver has no
   * domain of theirs): their directories go. */
  setenv ("LIBVIRT_DEFAULT_URI", "test:///default", 1);
  CHECK (lab_state_teardown (a, NULL) == 0);
  CHECK (lab_state_teardown (b, NULL) == 0);
  v = lab_state_list (home);
  CHECK (v[0] == NULL);
  lab_state_list_free (v);
  lab_state_free (a);
  lab_state_free (b);
  strv_free (notes.v);
  test_sandbox (home);
  {
    char *p = xasprintf ("%s/labs/.budget.lock", home), *l = xasprintf ("%s/labs", home);
    unlink (p);
    rmdir (l);
    free (p);
    free (l);
  }
  rmdir (home);
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("lab state ok\n");
  return 0;
}
