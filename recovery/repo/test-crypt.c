/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Encryption at rest (crypt.c): a point written to an encrypted
 * repository reads back; the same data gets the same keyed name (dedup)
 * and a name unlike a plain repository's; one changed byte of a chunk, a
 * manifest or an index, and two chunks swapped, are each caught naming
 * the object; a wrong passphrase is one clear error; keys are added,
 * changed and removed without a chunk being rewritten; a read of a few
 * frames opens only those (a damaged frame it does not read is no
 * error, one it reads is, named); a configuration rewritten to say
 * "plain" is refused.
 */
#include "recovery/repo/crypt.h"
#include "recovery/repo/test-repo.h"

#define CS (256 * 1024)          /* 64 frames of 4 KiB */
#define N 3

static struct scratch s;

static struct repo *
open_pw (const char *pw)
{
  struct repo_open_opts o = { 0 };

  repo_open_opts_secret (&o, pw, NULL, NULL);
  return repo_open_with (s.loc, &o);
}

/* Flip one byte at off of the file rel (off < 0: from the end); put it
 * back with the same call. */
static void
flip (const char *rel, long off)
{
  CLEANUP_FREE char *p = scratch_file (&s, rel);
  FILE *f = fopen (p, "r+");
  int c;

  assert (f);
  assert (fseek (f, off, off < 0 ? SEEK_END : SEEK_SET) == 0);
  c = fgetc (f);
  assert (fseek (f, -1, SEEK_CUR) == 0);
  fputc (c ^ 0x40, f);
  assert (fclose (f) == 0);
}

static void
expect_error (int r, const char *a, const char *b)
{
  assert (r == -1);
  if (!strstr (error_msg (), a) || (b && !strstr (error_msg (), b))) {
    fprintf (stderr, "unexpected error: %s\n", error_msg ());
    abort ();
  }
}

static void
chunk_name (const uint8_t *d, char path[80], char hex[65])
{
  repo_chunk_path (d, path);
  hex_encode (d, REPO_DIGEST_LEN, hex);
}

static void
tamper (struct repo *r, const char *id, uint8_t (*d)[REPO_DIGEST_LEN])
{
  CLEANUP_FREE char *man = xasprintf ("points/vm1/%s/manifest.json", id);
  CLEANUP_FREE char *idx = xasprintf ("points/vm1/%s/vda.fidx", id);
  CLEANUP_FREE uint8_t *buf = xmalloc (CS);
  char p0[80], p1[80], h0[65], h1[65], tmp[128];
  struct repo_manifest m;
  size_t len;

  chunk_name (d[0], p0, h0);
  chunk_name (d[1], p1, h1);
  {
    uint64_t raw = 1;           /* from the opened head: compressed */
    assert (repo_chunk_raw_bytes (r, d[0], &raw) == 0 && raw == 0);
  }
  flip (p0, -20);
  expect_error (repo_chunk_get (r, d[0], buf, CS, &len), h0,
                "authentication failed");
  flip (p0, -20);
  flip (p0, 30);                /* the sealed head */
  expect_error (repo_chunk_raw_bytes (r, d[0], &(uint64_t) { 0 }), h0,
                "authentication failed (header)");
  flip (p0, 30);
  assert (repo_chunk_get (r, d[0], buf, CS, &len) == 0);
  /* swapped: each is a good file under the other's name */
  snprintf (tmp, sizeof tmp, "%s/x", s.loc);
  {
    CLEANUP_FREE char *a = scratch_file (&s, p0), *b = scratch_file (&s, p1);
    assert (rename (a, tmp) == 0 && rename (b, a) == 0 && rename (tmp, b) == 0);
    expect_error (repo_chunk_get (r, d[0], buf, CS, &len), h0,
                  "authentication failed");
    expect_error (repo_chunk_get (r, d[1], buf, CS, &len), h1, NULL);
    assert (rename (a, tmp) == 0 && rename (b, a) == 0 && rename (tmp, b) == 0);
  }
  flip (man, 30);
  expect_error (repo_manifest_read (r, "vm1", id, &m), man,
                "authentication failed");
  flip (man, 30);
  flip (idx, 40);
  assert (repo_disk_open (r, "vm1", id, "vda") == NULL);
  expect_error (-1, idx, "authentication failed");
  flip (idx, 40);
  assert (repo_manifest_read (r, "vm1", id, &m) == 0);
}

/* Frames are sealed one by one: damage in frame 0 of chunk 1 fails a
 * read of that frame only (no cache: read_part, chunk_read_frames). */
static void
frames (struct repo *r, const char *id, uint8_t (*d)[REPO_DIGEST_LEN])
{
  struct repo_disk *disk = repo_disk_open (r, "vm1", id, "vda");
  CLEANUP_FREE uint8_t *want = xmalloc (CS), *got = xmalloc (4096);
  char p1[80], h1[65];
  size_t e0 = crypt_frame_off (CHUNK_HDR_LEN + CS / chunk_frame (r) *
                               CHUNK_ENTRY_LEN, 0);

  assert (disk);
  chunk_name (d[1], p1, h1);
  test_chunk_data (want, CS, 1, 1);
  flip (p1, e0 + 2);
  assert (repo_disk_pread (disk, NULL, got, 4096, CS + 2 * 65536 + 100) == 0);
  assert (memcmp (got, want + 2 * 65536 + 100, 4096) == 0);
  expect_error (repo_disk_pread (disk, NULL, got, 4096, CS + 100), h1,
                "authentication failed (frame 0)");
  flip (p1, e0 + 2);
  assert (repo_disk_pread (disk, NULL, got, 4096, CS + 100) == 0);
  assert (memcmp (got, want + 100, 4096) == 0);
  repo_disk_close (disk);
}

static void
keys (void)
{
  struct repo *r, *r2;
  struct repo_open_opts o = { 0 };
  CLEANUP_FREE struct repo_key_info *k = NULL;
  char id2[REPO_KEY_ID_LEN + 1];
  size_t n;

  expect_error (open_pw ("wrong") ? 0 : -1, "wrong passphrase for repository",
                s.loc);
  assert ((r = open_pw ("pw1")));
  repo_open_opts_secret (&o, "pw1", NULL, NULL);
  expect_error (repo_key_add (r, &o, id2), "already has that passphrase", NULL);
  repo_open_opts_secret (&o, "pw2", NULL, NULL);
  assert (repo_key_add (r, &o, id2) == 0);
  assert ((r2 = open_pw ("pw2")));
  assert ((k = repo_key_list (r2, &n)) && n == 2);
  for (size_t i = 0; i < n; i++)
    if (!k[i].current)
      assert (repo_key_remove (r2, k[i].id) == 0);   /* pw1 */
  expect_error (repo_key_remove (r2, id2), "last key", NULL);
  expect_error (open_pw ("pw1") ? 0 : -1, "wrong passphrase", NULL);
  repo_close (r);
  repo_close (r2);
}

/* bootback-repo.json rewritten as a plain repository's by someone
 * without the key: refused (not opened plain, which would write the next
 * points unencrypted and take forged ones as good). */
static void
downgrade (void)
{
  CLEANUP_FREE char *cfg = scratch_file (&s, "bootback-repo.json");
  CLEANUP_FREE char *save = xasprintf ("%s.save", cfg);
  char uuid[UUID_STR_LEN + 1];
  struct repo *r;
  FILE *f;

  assert ((r = open_pw ("pw2")));
  snprintf (uuid, sizeof uuid, "%s", repo_uuid (r));
  repo_close (r);
  assert (rename (cfg, save) == 0);
  assert ((f = fopen (cfg, "w")));
  fprintf (f, "{\"format\": \"bootback-repo\", \"version\": 1, "
           "\"uuid\": \"%s\", \"chunk_size\": %d, \"codec\": \"zstd\", "
           "\"zstd_level\": 1, \"hash\": \"sha256-tree\", "
           "\"sync\": \"filesystem\"}\n", uuid, CS);
  assert (fclose (f) == 0);
  expect_error (open_pw ("pw2") ? 0 : -1, "says the repository is not "
                "encrypted, but it has key slots", NULL);
  expect_error (repo_open (s.loc) ? 0 : -1, "refusing to use it unencrypted",
                NULL);
  assert (rename (save, cfg) == 0);
}

int
main (void)
{
  struct repo_init_opts o = { .chunk_size = CS, .encrypt = true };
  uint8_t d[N][REPO_DIGEST_LEN], plain[REPO_DIGEST_LEN], again[REPO_DIGEST_LEN];
  CLEANUP_FREE uint8_t *buf = xmalloc (CS), *got = xmalloc (CS);
  CLEANUP_FREE char *c0 = NULL;
  struct scratch ps;
  struct repo *r, *pr;
  struct repo_writer *w;
  char id[TIMESTAMP_LEN + 1], p0[80], h0[65];
  struct repo_disk *disk;
  bool was_new;

  snprintf (s.dir, sizeof s.dir, "/tmp/test-crypt.XXXXXX");
  assert (mkdtemp (s.dir));
  s.loc = xasprintf ("%s/repo", s.dir);
  repo_open_opts_secret (&o.open, "pw1", NULL, NULL);
  assert (repo_init (s.loc, &o) == 0);
  assert ((r = open_pw ("pw1")) && repo_encrypted (r));
  test_point_write (r, "vm1", 1, N, id, d);
  /* reads back; same data, same keyed name; unlike a plain repository */
  assert ((disk = repo_disk_open (r, "vm1", id, "vda")));
  assert (repo_disk_pread (disk, NULL, got, CS, CS) == 0);
  test_chunk_data (buf, CS, 1, 1);
  assert (memcmp (got, buf, CS) == 0);
  repo_disk_close (disk);
  assert ((w = repo_writer_begin (r, "vm1", 0)));
  assert (repo_writer_put_chunk (w, buf, CS, again, &was_new) == 0 && !was_new);
  assert (memcmp (again, d[1], REPO_DIGEST_LEN) == 0);
  repo_writer_abort (w);
  pr = scratch_open (&ps, "test-crypt-plain", CS);
  assert (!repo_encrypted (pr));
  repo_chunk_digest (pr, buf, CS, plain);
  assert (memcmp (plain, d[1], REPO_DIGEST_LEN) != 0);
  repo_close (pr);
  scratch_remove (&ps);

  tamper (r, id, d);
  frames (r, id, d);
  repo_close (r);
  chunk_name (d[0], p0, h0);
  c0 = scratch_file (&s, p0);
  {
    double before = scratch_mtime (&s, p0);
    keys ();
    assert (scratch_mtime (&s, p0) == before);   /* no chunk rewritten */
  }
  assert ((r = open_pw ("pw2")));
  assert (repo_chunk_get (r, d[0], got, CS, &(size_t) { 0 }) == 0);
  repo_close (r);
  downgrade ();
  assert ((r = open_pw ("pw2")));
  repo_close (r);
  scratch_remove (&s);
  printf ("test-crypt: ok\n");
  return 0;
}
