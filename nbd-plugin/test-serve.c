/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for serve.c: export names, disk choice, the export list, the
 * shared table of opened disks and sequential-access detection, against a
 * small repository made with the writer API in a temporary directory. */
#include <assert.h>
#include <errno.h>

#include "nbd-plugin/serve.h"
#include "recovery/util/util.h"

#define CS (64 * 1024)

static char dir[64];

static void
add_point (struct repo *r, const char *vm, const char *when, int ndisks)
{
  static const char *names[] = { "vda", "vdb", "sdc" };
  uint8_t data[CS], (*digests)[REPO_DIGEST_LEN];
  struct repo_writer *w;
  time_t t;
  bool was_new;
  int i;

  assert (timestamp_parse (when, &t) == 0);
  w = repo_writer_begin (r, vm, t);
  assert (w);
  for (i = 0; i < ndisks; i++) {
    /* Disk i: 3 chunks and a bit; chunk 1 is zero. */
    uint64_t size = 3 * CS + 100 + i;
    digests = xcalloc (4, REPO_DIGEST_LEN);
    for (int c = 0; c < 4; c++) {
      size_t len = c == 3 ? 100 + i : CS;
      if (c == 1)
        continue;
      memset (data, 'a' + c + i, sizeof data);
      assert (repo_writer_put_chunk (w, data, len, digests[c], &was_new) == 0);
    }
    assert (repo_writer_add_disk (w, names[i], size, "raw",
                                  (const uint8_t (*)[REPO_DIGEST_LEN]) digests) == 0);
    free (digests);
  }
  assert (repo_writer_commit (w, NULL) == 0);
}

static int
collect (void *opaque, const char *name, const char *desc)
{
  char *buf = opaque;

  strcat (buf, name);
  strcat (buf, "\n");
  assert (strstr (desc, "VM "));
  return 0;
}

static void
test_names (void)
{
  char point[146], disk[65];

  assert (serve_name_split ("web@20260101T000000Z/vda", point, disk) == 0);
  assert (strcmp (point, "web@20260101T000000Z") == 0 && strcmp (disk, "vda") == 0);
  assert (serve_name_split ("web", point, disk) == 0);
  assert (strcmp (point, "web") == 0 && disk[0] == '\0');
  assert (serve_name_split ("web/vdb", point, disk) == 0);
  assert (strcmp (point, "web") == 0 && strcmp (disk, "vdb") == 0);
  assert (serve_name_split ("web@latest", point, disk) == 0);
  assert (serve_name_split ("", point, disk) == -1);
  assert (serve_name_split ("/vda", point, disk) == -1);
  assert (serve_name_split ("web/", point, disk) == -1);
  assert (serve_name_split ("web/a/b", point, disk) == -1);
  assert (strstr (error_msg (), "invalid disk name"));
  assert (serve_name_split ("@x/vda", point, disk) == -1);
  assert (serve_name_split ("web@/vda", point, disk) == -1);
  assert (serve_name_split ("web@a@b", point, disk) == -1);
  assert (serve_name_split ("../etc", point, disk) == -1);
}

static void
test_pick (void)
{
  struct repo_manifest m = { .vm = "web", .id = "20260101T000000Z" };
  char out[65];

  m.ndisks = 1;
  strcpy (m.disks[0].name, "sda");
  assert (serve_pick_disk (&m, NULL, out) == 0 && strcmp (out, "sda") == 0);
  assert (serve_pick_disk (&m, "", out) == 0 && strcmp (out, "sda") == 0);
  assert (serve_pick_disk (&m, "vda", out) == -1);
  assert (strstr (error_msg (), "has no disk 'vda' (it has: sda)"));
  m.ndisks = 2;
  strcpy (m.disks[1].name, "sdb");
  assert (serve_pick_disk (&m, NULL, out) == -1);
  assert (strstr (error_msg (), "several disks (sda, sdb)"));
  assert (serve_pick_disk (&m, "sdb", out) == 0 && strcmp (out, "sdb") == 0);
  strcpy (m.disks[1].name, "vda");
  assert (serve_pick_disk (&m, NULL, out) == 0 && strcmp (out, "vda") == 0);
}

static void
test_repo (struct repo *r)
{
  char name[SERVE_NAME_MAX], list[4096] = "";
  struct repo_manifest m;
  struct serve_disks *t;
  struct repo_disk *d1, *d2, *d3;

  assert (serve_resolve (r, "web", NULL, name, &m) == 0);
  assert (strcmp (name, "web@20260102T000000Z/vda") == 0);
  assert (m.ndisks == 2);
  assert (serve_resolve (r, "web/vdb", NULL, name, NULL) == 0);
  assert (strcmp (name, "web@20260102T000000Z/vdb") == 0);
  assert (serve_resolve (r, "web", "vdb", name, NULL) == 0);
  assert (strcmp (name, "web@20260102T000000Z/vdb") == 0);
  assert (serve_resolve (r, "web@2026-01-01T00:00:00Z", NULL, name, NULL) == 0);
  assert (strcmp (name, "web@20260101T000000Z/vda") == 0);
  assert (serve_resolve (r, "web@20260101T000000Z/vdb", NULL, name, NULL) == -1);
  assert (strstr (error_msg (), "has no disk 'vdb'"));
  assert (serve_resolve (r, "nosuch", NULL, name, NULL) == -1);
  assert (strstr (error_msg (), "no restore points of VM 'nosuch'"));

  assert (serve_default_name (r, NULL, name) == -1);
  assert (strstr (error_msg (), "holds 2 VMs"));

  assert (serve_list (r, collect, list) == 4);
  assert (strcmp (list, "db@20260103T000000Z/vda\n"
                        "web@20260101T000000Z/vda\n"
                        "web@20260102T000000Z/vda\n"
                        "web@20260102T000000Z/vdb\n") == 0);

  serve_describe (&m, &m.disks[1], list, sizeof list);
  assert (strcmp (list, "VM web, disk vdb, 2026-01-02 00:00:00 UTC, 192.1 KiB "
                        "(full, crash-consistent)") == 0);

  /* The table shares and counts. */
  t = serve_disks_new (r);
  d1 = serve_disks_get (t, "web", NULL, false, NULL, NULL);
  d2 = serve_disks_get (t, "web@latest/vda", NULL, false, NULL, &m);
  assert (d1 && d1 == d2 && serve_disks_count (t) == 1);
  assert (strcmp (m.vm, "web") == 0);
  d3 = serve_disks_get (t, "web/vdb", NULL, false, NULL, NULL);
  assert (d3 && d3 != d1 && serve_disks_count (t) == 2);
  assert (repo_disk_size (d3) == 3 * CS + 101);
  assert (serve_disks_get (t, "web/vdz", NULL, false, NULL, NULL) == NULL);
  assert (serve_disks_count (t) == 2);
  serve_disks_put (t, d1);
  assert (serve_disks_count (t) == 2);
  serve_disks_put (t, d2);
  assert (serve_disks_count (t) == 1);
  serve_disks_put (t, d3);
  assert (serve_disks_count (t) == 0);
  serve_disks_put (t, NULL);
  d1 = serve_disks_get (t, "db", NULL, true, NULL, NULL);
  serve_disks_put (t, d1);
  assert (serve_disks_count (t) == 1);       /* pinned */

  /* An approved index (invariant 4): served if it is the one opened,
   * refused naming the disk if not, opened or not yet. */
  uint8_t want[REPO_DIGEST_LEN];
  char hexd[SHA256_HEX_LEN + 1], pinned_name[SERVE_NAME_MAX + 80], bare[SERVE_NAME_MAX];
  bool pin;
  assert (serve_resolve (r, "web/vda", NULL, name, &m) == 0);
  memcpy (want, m.disks[0].index_sha256, REPO_DIGEST_LEN);
  d1 = serve_disks_get (t, "web/vda", NULL, false, want, NULL);
  assert (d1);
  d2 = serve_disks_get (t, "web/vda", NULL, false, want, NULL);   /* shared */
  assert (d2 == d1);
  want[0] ^= 1;
  assert (serve_disks_get (t, "web/vda", NULL, false, want, NULL) == NULL);
  assert (strstr (error_msg (), "disk web@20260102T000000Z/vda in "));
  assert (strstr (error_msg (), "its index is not the one approved for it"));
  assert (serve_disks_get (t, "web/vdb", NULL, false, want, NULL) == NULL);
  assert (serve_disks_count (t) == 2);       /* db and web/vda: vdb not opened */
  serve_disks_put (t, d1);
  serve_disks_put (t, d2);
  assert (serve_disks_count (t) == 1);

  /* Export names with #HEX. */
  want[0] ^= 1;
  hex_encode (want, REPO_DIGEST_LEN, hexd);
  snprintf (pinned_name, sizeof pinned_name, "web/vda#%s", hexd);
  memset (want, 0, sizeof want);
  assert (serve_name_pin (pinned_name, bare, &pin, want) == 0);
  assert (pin && strcmp (bare, "web/vda") == 0);
  assert (memcmp (want, m.disks[0].index_sha256, REPO_DIGEST_LEN) == 0);
  assert (serve_name_pin ("web/vda", bare, &pin, want) == 0);
  assert (!pin && strcmp (bare, "web/vda") == 0);
  assert (serve_name_pin ("web/vda#abc", bare, &pin, want) == -1);
  assert (strstr (error_msg (), "64 hex digits"));
  pinned_name[strlen (pinned_name) - 1] = 'g';
  assert (serve_name_pin (pinned_name, bare, &pin, want) == -1);
  serve_disks_free (t);
}

static void
test_seq (void)
{
  struct serve_seq s;
  uint64_t a, b, size = 100 * (uint64_t) CS;
  const uint64_t ra = 4 * CS;

  serve_seq_init (&s);
  /* Two sequential reads: not yet. */
  serve_seq_note (&s, 0, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 4096, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  /* The third: the next 4 chunks after the furthest end (chunk 0). */
  serve_seq_note (&s, 8192, 4096, CS, size, ra, &a, &b);
  assert (a == 1 && b == 5);
  /* Still in chunk 0: nothing new to ask for. */
  serve_seq_note (&s, 12288, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  /* The next chunk: one more to ask for. */
  serve_seq_note (&s, CS, CS, CS, size, ra, &a, &b);
  assert (a == 5 && b == 6);
  /* Slightly out of order (an earlier request arriving late) is fine. */
  serve_seq_note (&s, 16384, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 2 * CS, CS, CS, size, ra, &a, &b);
  assert (a == 6 && b == 7);
  /* A jump starts a new run. */
  serve_seq_note (&s, 50 * CS, CS, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 51 * CS, CS, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 52 * CS, CS, CS, size, ra, &a, &b);
  assert (a == 53 && b == 57);
  serve_seq_destroy (&s);

  /* Random 4K reads that land behind the last one (within
   * SERVE_SEQ_BEHIND) are not a run: no read-ahead. */
  serve_seq_init (&s);
  serve_seq_note (&s, 60 * CS, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 40 * CS + 8192, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 20 * CS + 4096, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_note (&s, 45 * CS, 4096, CS, size, ra, &a, &b);
  assert (a == b);
  serve_seq_destroy (&s);

  /* Never past the end of the disk, at most 32 chunks at a time. */
  serve_seq_init (&s);
  size = 50 * (uint64_t) CS;
  serve_seq_note (&s, 0, CS, CS, size, 100 * CS, &a, &b);
  serve_seq_note (&s, CS, CS, CS, size, 100 * CS, &a, &b);
  serve_seq_note (&s, 2 * CS, CS, CS, size, 100 * CS, &a, &b);
  assert (a == 3 && b == 35);
  serve_seq_note (&s, 3 * CS, CS, CS, size, 100 * CS, &a, &b);
  assert (a == 35 && b == 50);
  serve_seq_note (&s, 4 * CS, CS, CS, size, 100 * CS, &a, &b);
  assert (a == b);
  /* Read-ahead off. */
  serve_seq_note (&s, 99 * CS, CS, CS, size, 0, &a, &b);
  assert (a == b);
  serve_seq_destroy (&s);
}

int
main (void)
{
  struct repo_init_opts o = { .chunk_size = CS };
  struct repo *r;
  char cmd[128];

  test_names ();
  test_pick ();
  test_seq ();

  strcpy (dir, "/tmp/test-serve.XXXXXX");
  assert (mkdtemp (dir));
  strcat (dir, "/repo");
  assert (repo_init (dir, &o) == 0);
  r = repo_open (dir);
  assert (r);
  add_point (r, "web", "20260101T000000Z", 1);
  add_point (r, "web", "20260102T000000Z", 2);
  add_point (r, "db", "20260103T000000Z", 1);
  test_repo (r);
  repo_close (r);

  *strrchr (dir, '/') = '\0';
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  assert (system (cmd) == 0);
  printf ("test-serve: ok\n");
  return 0;
}
