/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/gc/gen-repo: fill a repository (made by `bootback repo init`)
 * with a synthetic history for bench/gc and tests/test-gc-memory.sh:
 *
 *   gen-repo REPO VMS POINTS CHUNKS UNIQUE [GARBAGE]
 *
 * VMS x POINTS restore points of one disk (vda) of CHUNKS chunks each,
 * whose indexes refer to UNIQUE distinct chunks (digest i is the SHA-256
 * of "bench" and i), written directly in the repository format: indexes
 * and manifests.  VM v's point p uses chunks (v * UNIQUE/VMS + c + 7p)
 * mod UNIQUE, so neighbouring points share most chunks, as a backup
 * history does, and together they use all UNIQUE when CHUNKS >=
 * UNIQUE/VMS.  Each chunk file is a stub of 64 bytes (enough for `repo
 * check`, which only stats; not readable by `repo verify`) dated an hour
 * back; GARBAGE more stubs no point uses are what gc removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "recovery/repo/repo-int.h"

static void
die (const char *what)
{
  fprintf (stderr, "gen-repo: %s: %s\n", what, error_msg ()[0] ? error_msg ()
           : strerror (errno));
  exit (1);
}

static void
write_file (const char *path, const void *buf, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  if (fd == -1 || write (fd, buf, len) != (ssize_t) len || close (fd) == -1)
    die (path);
}

static void
stub (const char *repo, const uint8_t d[REPO_DIGEST_LEN], time_t when)
{
  char rel[80];
  CLEANUP_FREE char *dir = NULL, *path = NULL;
  uint8_t body[64] = { 0 };
  struct timespec ts[2] = { { when, 0 }, { when, 0 } };

  repo_chunk_path (d, rel);
  dir = xasprintf ("%s/%.11s", repo, rel);
  if (mkdir (dir, 0755) == -1 && errno != EEXIST)
    die (dir);
  path = xasprintf ("%s/%s", repo, rel);
  write_file (path, body, sizeof body);
  if (utimensat (AT_FDCWD, path, ts, 0) == -1)
    die (path);
}

static void
point (struct repo *r, const char *repo, const char *vm, time_t t,
       const uint8_t (*d)[REPO_DIGEST_LEN], uint64_t nchunks)
{
  struct repo_manifest m = { 0 };
  CLEANUP_FREE char *dir = NULL, *fidx = NULL, *man = NULL, *json = NULL;
  CLEANUP_FREE uint8_t *idx = NULL;
  size_t len;

  snprintf (m.vm, sizeof m.vm, "%s", vm);
  timestamp_format (t, m.id);
  m.time = t;
  strcpy (m.kind, "full");
  strcpy (m.consistency, "crash");
  strcpy (m.source, "import");
  m.chunk_size = r->chunk_size;
  m.ndisks = 1;
  strcpy (m.disks[0].name, "vda");
  strcpy (m.disks[0].format, "raw");
  m.disks[0].size = nchunks * r->chunk_size;
  idx = fidx_encode (m.disks[0].size, r->chunk_size, d, &len);
  repo_sha256 (idx, len, m.disks[0].index_sha256);
  dir = xasprintf ("%s/points/%s/%s", repo, vm, m.id);
  fidx = xasprintf ("%s/vda.fidx", dir);
  man = xasprintf ("%s/manifest.json", dir);
  if (mkdir (dir, 0755) == -1)
    die (dir);
  write_file (fidx, idx, len);
  json = manifest_encode (&m);
  write_file (man, json, strlen (json));
}

int
main (int argc, char **argv)
{
  struct repo *r;
  uint64_t vms, points, chunks, unique, garbage = 0, v, p, c, i;
  uint8_t (*all)[REPO_DIGEST_LEN], (*d)[REPO_DIGEST_LEN];
  time_t old = time (NULL) - 3600, t0 = 1700000000;

  if (argc < 6 || argc > 7) {
    fputs ("usage: gen-repo REPO VMS POINTS CHUNKS UNIQUE [GARBAGE]\n", stderr);
    return 2;
  }
  vms = strtoull (argv[2], NULL, 10);
  points = strtoull (argv[3], NULL, 10);
  chunks = strtoull (argv[4], NULL, 10);
  unique = strtoull (argv[5], NULL, 10);
  if (argc == 7)
    garbage = strtoull (argv[6], NULL, 10);
  if (!vms || !points || !chunks || !unique)
    die ("every count must be at least 1");
  r = repo_open (argv[1]);
  if (!r)
    die (argv[1]);
  all = xmalloc ((unique + garbage) * REPO_DIGEST_LEN);
  for (i = 0; i < unique + garbage; i++) {
    uint8_t in[13] = "bench";
    memcpy (in + 5, &i, 8);
    repo_sha256 (in, sizeof in, all[i]);
    stub (argv[1], all[i], old);
  }
  d = xmalloc (chunks * REPO_DIGEST_LEN);
  for (v = 0; v < vms; v++) {
    char vm[32];
    CLEANUP_FREE char *dir = NULL;
    snprintf (vm, sizeof vm, "vm%03" PRIu64, v);
    dir = xasprintf ("%s/points/%s", argv[1], vm);
    if (mkdir (dir, 0755) == -1)
      die (dir);
    for (p = 0; p < points; p++) {
      for (c = 0; c < chunks; c++)
        memcpy (d[c], all[(v * (unique / vms) + c + 7 * p) % unique],
                REPO_DIGEST_LEN);
      point (r, argv[1], vm, t0 + p * 86400, (const uint8_t (*)[REPO_DIGEST_LEN]) d,
             chunks);
    }
  }
  free (d);
  free (all);
  repo_close (r);
  return 0;
}
