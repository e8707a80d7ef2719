/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session state machine (session.c): session_set_state allows exactly
 * the moves of the diagram at the top of session.c and refuses every other
 * one with an error naming both states, leaving the state unchanged; the
 * catalog stores the states as the same text as before the enum, so rows
 * written by older versions load, and saving writes that text back.
 */
#include <errno.h>

#include "recovery/instant/instant-int.h"

static int failures;

#define CHECK(cond, ...)                                        \
  do {                                                          \
    if (!(cond)) {                                              \
      fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__);     \
      fprintf (stderr, __VA_ARGS__);                            \
      fputc ('\n', stderr);                                     \
      failures++;                                               \
    }                                                           \
  } while (0)

enum { S = INSTANT_STATE_STARTING, R = INSTANT_STATE_RUNNING,
       MI = INSTANT_STATE_MIGRATING, MD = INSTANT_STATE_MIGRATED,
       ST = INSTANT_STATE_STOPPED, F = INSTANT_STATE_FAILED, N = 6 };

/* Written out again from the diagram, not copied from session.c. */
static const struct { int from, to; } legal[] = {
  { S, R }, { S, F }, { S, ST },
  { R, MI }, { R, ST },
  { MI, R }, { MI, MD }, { MI, ST },
  { F, ST },
  { ST, ST },
};

static const char *const text[N] = {
  "starting", "running", "migrating", "migrated", "stopped", "failed",
};

static bool
is_legal (int from, int to)
{
  size_t i;

  for (i = 0; i < sizeof legal / sizeof legal[0]; i++)
    if (legal[i].from == from && legal[i].to == to)
      return true;
  return false;
}

static void
test_transitions (void)
{
  struct instant_session *s = xcalloc (1, sizeof *s);
  int from, to;

  s->id = 7;
  for (from = 0; from < N; from++)
    for (to = 0; to < N; to++) {
      int r;
      s->state = from;
      error_clear ();
      r = session_set_state (s, to);
      if (is_legal (from, to)) {
        CHECK (r == 0 && s->state == (enum instant_state) to,
               "%s -> %s refused: %s", text[from], text[to], error_msg ());
      }
      else {
        CHECK (r == -1, "%s -> %s allowed", text[from], text[to]);
        CHECK (s->state == (enum instant_state) from, "%s -> %s changed the state",
               text[from], text[to]);
        {
          CLEANUP_FREE char *want =
            xasprintf ("session 7 cannot go from %s to %s", text[from], text[to]);
          CHECK (strcmp (error_msg (), want) == 0, "error '%s', want '%s'",
                 error_msg (), want);
        }
      }
    }
  free (s);
}

static void
test_names (void)
{
  int i;

  for (i = 0; i < N; i++)
    CHECK (strcmp (instant_state_name (i), text[i]) == 0, "name of %d is %s", i,
           instant_state_name (i));
}

struct raw {
  char state[32];
};

static int
raw_row (void *opaque, const struct catalog_session *r)
{
  struct raw *w = opaque;

  snprintf (w->state, sizeof w->state, "%s", r->state);
  return 0;
}

/* A row as an older version wrote it loads into the enum, and saving
 * writes the same text back. */
static void
test_rows (void)
{
  char tmpl[] = "/tmp/test-session-state.XXXXXX";
  const char *home = mkdtemp (tmpl);
  struct instant_session *s = xcalloc (1, sizeof *s);
  struct catalog *cat;
  int i;

  if (!home) {
    perror ("mkdtemp");
    exit (1);
  }
  cat = catalog_open (home);
  if (!cat) {
    fprintf (stderr, "catalog_open: %s\n", error_msg ());
    exit (1);
  }
  for (i = 0; i < N; i++) {
    struct catalog_session r = {
      .name = "web1-instant", .vm = "web1", .point = "20260101T000000Z",
      .repo = "/srv/repo", .uri = "", .state = text[i],
      .data = "{\"uuid\":\"6f1c2a9e-0d5b-4c8e-9a3f-1b2c3d4e5f60\"}",
    };
    struct raw w = { "" };
    int64_t id;
    CHECK (catalog_session_add (cat, &r, &id) == 0, "add: %s", error_msg ());
    CHECK (session_load (cat, id, s) == 0, "load: %s", error_msg ());
    CHECK (s->state == (enum instant_state) i, "row '%s' loaded as %s", text[i],
           instant_state_name (s->state));
    CHECK (session_save (cat, s, text[i]) == 0, "save: %s", error_msg ());
    CHECK (catalog_session_list (cat, id, raw_row, &w) == 0, "list: %s",
           error_msg ());
    CHECK (strcmp (w.state, text[i]) == 0, "saved '%s' as '%s'", text[i], w.state);
  }
  catalog_close (cat);
  free (s);
  {
    CLEANUP_FREE char *cmd = xasprintf ("rm -rf '%s'", home);
    if (system (cmd) != 0)
      fprintf (stderr, "warning: %s failed\n", cmd);
  }
}

static void
test_path_set (void)
{
  char field[16] = "untouched";
  char msg[8];

  CHECK (path_set (field, sizeof field, "%s/%s", "/srv", "vda.qcow2") == 0 &&
         strcmp (field, "/srv/vda.qcow2") == 0, "a path that fits: '%s'", field);
  error_clear ();
  CHECK (path_set (field, sizeof field, "%s/%s", "/srv/overlays", "vda.qcow2") == -1,
         "a path one byte too long was accepted: '%s'", field);
  CHECK (strcmp (field, "/srv/vda.qcow2") == 0, "the field changed: '%s'", field);
  CHECK (error_errno () == ENAMETOOLONG, "errno %d", error_errno ());
  CHECK (strcmp (error_msg (), "path /srv/overlays/vda.qcow2 is longer than 15 "
                 "bytes: File name too long") == 0, "error '%s'", error_msg ());
  text_set (msg, sizeof msg, "%s", "a longer message");
  CHECK (strcmp (msg, "a longe") == 0, "text_set: '%s'", msg);
}

int
main (void)
{
  test_path_set ();
  test_names ();
  test_transitions ();
  test_rows ();
  if (failures) {
    fprintf (stderr, "test-session-state: %d failures\n", failures);
    return 1;
  }
  printf ("test-session-state: ok\n");
  return 0;
}
