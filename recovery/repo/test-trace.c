/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of boot traces (trace.c): the round trip, dedup and cut, the
 * file beside a point (written atomically, read back, survives nothing
 * else: removed with the point), and hostile files: each is refused whole
 * with an error naming the file and the line, never a partial trace, and
 * nothing it says can name a chunk past the disk or grow the list past
 * its caps.
 */
#include <assert.h>

#include "recovery/repo/test-repo.h"
#include "recovery/repo/trace.h"

static int
parse (const char *text, uint64_t nchunks, struct repo_trace *t)
{
  return repo_trace_parse (text, strlen (text), nchunks, "T", t);
}

/* text is refused, with an error mentioning want. */
static void
refused (const char *text, uint64_t nchunks, const char *want)
{
  struct repo_trace t;

  if (parse (text, nchunks, &t) != -1) {
    fprintf (stderr, "accepted: %s\n", text);
    abort ();
  }
  assert (t.n == 0 && t.e == NULL);
  if (!strstr (error_msg (), want)) {
    fprintf (stderr, "error '%s' does not say '%s'\n", error_msg (), want);
    abort ();
  }
}

static void
test_round_trip (void)
{
  struct repo_trace t = { .chunk_size = 1 << 20 }, u;
  struct repo_trace_entry e[] = { { 5, 100 }, { 0, 120 }, { 5, 130 }, { 9, 90 },
                                  { 3, 400 } };
  CLEANUP_FREE char *text = NULL;
  size_t len;

  t.e = xmalloc (sizeof e);
  memcpy (t.e, e, sizeof e);
  t.n = 5;
  text = repo_trace_format (&t, &len);
  assert (strncmp (text, "bootback-trace 1\nchunk-size 1048576\n5 100\n", 42) == 0);
  assert (repo_trace_parse (text, len, 10, "T", &u) == 0);
  assert (u.n == 5 && u.chunk_size == 1 << 20);
  assert (memcmp (u.e, e, sizeof e) == 0);
  /* dedup: the first read of each chunk, in time order */
  repo_trace_dedup (&u);
  assert (u.n == 4);
  assert (u.e[0].chunk == 9 && u.e[1].chunk == 5 && u.e[1].ms == 100);
  assert (u.e[2].chunk == 0 && u.e[3].chunk == 3);
  /* cut: [100, 200] relative to 100 */
  repo_trace_cut (&u, 100, 200);
  assert (u.n == 2 && u.e[0].chunk == 5 && u.e[0].ms == 0 && u.e[1].ms == 20);
  repo_trace_free (&u);
  repo_trace_free (&t);
  /* an empty trace, and no final newline */
  assert (parse ("bootback-trace 1\nchunk-size 65536\n", 1, &u) == 0 && u.n == 0);
  assert (parse ("bootback-trace 1\nchunk-size 65536\n0 7", 1, &u) == 0 && u.n == 1);
  repo_trace_free (&u);
}

static void
test_hostile (void)
{
  CLEANUP_FREE char *big = NULL;
  FILE *f;
  size_t size, i;

  refused ("", 10, "not a boot trace");
  refused ("bootback-trace 2\nchunk-size 65536\n", 10, "not a boot trace");
  refused ("bootback-trace 1\n", 10, "line 2");
  refused ("bootback-trace 1\nchunk-size 1000\n", 10, "power of two");
  refused ("bootback-trace 1\nchunk-size 134217728\n", 10, "power of two");
  refused ("bootback-trace 1\nchunk-size 65536x\n", 10, "line 2");
  refused ("bootback-trace 1\nchunk-size 65536\n10 5\n", 10, "line 3: chunk 10 is past");
  refused ("bootback-trace 1\nchunk-size 65536\n1 5\n-1 5\n", 10, "line 4");
  refused ("bootback-trace 1\nchunk-size 65536\n1  5\n", 10, "line 3");
  refused ("bootback-trace 1\nchunk-size 65536\n1 5 6\n", 10, "line 3");
  refused ("bootback-trace 1\nchunk-size 65536\n1\n", 10, "line 3");
  refused ("bootback-trace 1\nchunk-size 65536\n\n", 10, "line 3");
  refused ("bootback-trace 1\nchunk-size 65536\n1 18446744073709551616\n", 10, "line 3");
  refused ("bootback-trace 1\nchunk-size 65536\n99999999999999999999999 1\n", 10, "line 3");
  refused ("bootback-trace 1\nchunk-size 65536\n0x10 1\n", 100, "line 3");
  /* A NUL inside a line */
  {
    static const char nul[] = "bootback-trace 1\nchunk-size 65536\n1\0 5\n";
    struct repo_trace t;
    assert (repo_trace_parse (nul, sizeof nul - 1, 10, "T", &t) == -1);
  }
  /* more records than the cap, each valid */
  f = open_memstream (&big, &size);
  fprintf (f, "bootback-trace 1\nchunk-size 65536\n");
  for (i = 0; i <= REPO_TRACE_MAX_ENTRIES; i++)
    fprintf (f, "%zu 1\n", i % 7);
  fclose (f);
  refused (big, 10, "more than 65536 records");
  free (big);
  /* larger than the byte cap */
  big = xmalloc (REPO_TRACE_MAX_BYTES + 2);
  memset (big, '1', REPO_TRACE_MAX_BYTES + 1);
  big[REPO_TRACE_MAX_BYTES + 1] = '\0';
  refused (big, 10, "more than a trace may have");
}

static void
test_beside_point (void)
{
  struct scratch s;
  struct repo *r = scratch_open (&s, "test-trace", 64 * 1024);
  char id[TIMESTAMP_LEN + 1];
  struct repo_trace t = { .chunk_size = 64 * 1024 }, u;
  struct repo_trace_entry e = { 3, 42 };
  CLEANUP_FREE char *rel = NULL;
  CLEANUP_FREE char *path = NULL;
  FILE *f;

  test_point_write (r, "vm1", 1, 4, id, NULL);
  t.e = &e;
  t.n = 1;
  /* none yet: ENOENT */
  assert (repo_trace_read (r, "vm1", id, "vda", 4, &u) == -1);
  assert (error_errno () == ENOENT);
  /* not beside a point that does not exist */
  assert (repo_trace_write (r, "vm1", "20200101T000000Z", "vda", &t) == -1);
  assert (!scratch_exists (&s, "points/vm1/20200101T000000Z"));
  assert (repo_trace_write (r, "vm1", id, "vda", &t) == 0);
  assert (repo_trace_read (r, "vm1", id, "vda", 4, &u) == 0);
  assert (u.n == 1 && u.e[0].chunk == 3 && u.e[0].ms == 42);
  repo_trace_free (&u);
  /* a disk that shrank: the index is refused, the file named */
  assert (repo_trace_read (r, "vm1", id, "vda", 3, &u) == -1);
  assert (strstr (error_msg (), "vda.trace: line 3"));
  /* damaged: refused */
  rel = xasprintf ("points/vm1/%s/vda.trace", id);
  path = scratch_file (&s, rel);
  f = fopen (path, "w");
  fputs ("bootback-trace 1\nchunk-size 65536\n1 x\n", f);
  fclose (f);
  assert (repo_trace_read (r, "vm1", id, "vda", 4, &u) == -1);
  /* a local copy, saved and loaded */
  free (path);
  path = xasprintf ("%s/copy.trace", s.dir);
  assert (repo_trace_save (path, &t) == 0);
  assert (repo_trace_load (path, 4, &u) == 0 && u.n == 1);
  repo_trace_free (&u);
  /* the point removed: its trace with it */
  assert (repo_point_remove (r, "vm1", id, NULL) == 0);
  assert (!scratch_exists (&s, rel));
  repo_close (r);
  scratch_remove (&s);
}

int
main (void)
{
  test_round_trip ();
  test_hostile ();
  test_beside_point ();
  printf ("test-trace: ok\n");
  return 0;
}
