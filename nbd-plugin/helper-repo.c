/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * helper-repo: a test fixture that makes repositories with the library's
 * writer API, for the plugin's tests and benchmark.  It exists so the
 * plugin can be tested with points of fixed times, several disks and
 * several VMs whatever the state of the `bootback` command; tests use
 * `bootback import` where they only need an imported image.
 *
 *   helper-repo init DIR CHUNK_SIZE [raw]
 *   helper-repo import DIR VM TIME|now DISK=RAW_IMAGE [DISK=RAW_IMAGE...]
 *   helper-repo hold REPO FILE
 *   helper-repo excl REPO PATH
 *   helper-repo claim REPO DIR
 *   helper-repo lock REPO PATH
 *   helper-repo held REPO PATH
 *
 * hold opens FILE (relative to the repository), prints "open", waits for
 * a line on stdin, then reads and closes FILE and closes the repository:
 * a test can make the storage fail while a file is open (io-nfs.c 7.).
 * It prints what the read did and exits 0 either way.
 * excl creates PATH exclusively (O_EXCL, a body of its own, as a lock
 * is taken) and claim makes the directory DIR (a point id's claim), at
 * the time HELPER_START_AT (seconds since the epoch, if set: processes
 * started apart race at once); each prints "won" or "lost" (EEXIST),
 * leaves what it made and exits 0, or 1 on another error; excl's
 * content names host HELPER_HOST (default "test": another host) and
 * its pid.  lock takes
 * the lock file PATH as gc takes locks/gc (io_lock), prints "locked PID",
 * waits for a line on stdin, releases it, prints "unlocked"; held prints
 * io_lock_held's answer (1 held, 0 not).  The S3 ones read the keys and
 * the endpoint from the environment, as bootback does.
 * TIME is a restore-point stamp (20260101T000000Z).  Images are raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "recovery/repo/repo.h"
#include "recovery/repo/repo-int.h"
#include "recovery/util/util.h"

static int
die (const char *what)
{
  fprintf (stderr, "helper-repo: %s%s%s\n", what, *error_msg () ? ": " : "",
           error_msg ());
  exit (1);
}

static void
import_disk (struct repo *r, struct repo_writer *w, const char *arg)
{
  const char *eq = strchr (arg, '=');
  uint32_t cs = repo_chunk_size (r);
  CLEANUP_FREE uint8_t *buf = xmalloc (cs);
  CLEANUP_FREE uint8_t (*digests)[REPO_DIGEST_LEN] = NULL;
  CLEANUP_FREE char *name = NULL;
  CLEANUP_CLOSE int fd = -1;
  struct stat st;
  uint64_t i, n;

  if (!eq)
    die ("expected DISK=IMAGE");
  name = strndup (arg, eq - arg);
  fd = open (eq + 1, O_RDONLY | O_CLOEXEC);
  if (fd == -1 || fstat (fd, &st) == -1) {
    error_set (errno, "%s", eq + 1);
    die ("open");
  }
  n = DIV_ROUND_UP ((uint64_t) st.st_size, cs);
  digests = xcalloc (n ? n : 1, REPO_DIGEST_LEN);
  for (i = 0; i < n; i++) {
    size_t len = MIN ((uint64_t) cs, st.st_size - i * cs), got = 0;
    bool was_new;

    while (got < len) {
      ssize_t k = pread (fd, buf + got, len - got, i * cs + got);
      if (k <= 0) {
        error_set (k == 0 ? EIO : errno, "read %s", eq + 1);
        die ("read");
      }
      got += k;
    }
    if (is_zero (buf, len))
      continue;                 /* zero digest: never stored */
    if (repo_writer_put_chunk (w, buf, len, digests[i], &was_new) == -1)
      die ("put chunk");
  }
  if (repo_writer_add_disk (w, name, st.st_size, "raw",
                            (const uint8_t (*)[REPO_DIGEST_LEN]) digests) == -1)
    die ("add disk");
}

static struct repo *
open_env (const char *location)
{
  struct repo_open_opts ro;
  struct repo *r;

  memset (&ro, 0, sizeof ro);
  repo_open_opts_nfs (&ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  repo_open_opts_secret (&ro, getenv ("BOOTBACK_PASSPHRASE"),
                         getenv ("BOOTBACK_PASSPHRASE_FILE"),
                         getenv ("BOOTBACK_KEY_FILE"));
  repo_open_opts_s3_env (&ro);
  r = repo_open_with (location, &ro);
  if (!r)
    die ("open");
  return r;
}

/* excl, claim, lock, held (see the top). */
static int
race (const char *cmd, const char *location, const char *path)
{
  struct repo *r = open_env (location);
  struct repo_io *io = repo_get_io (r);
  const char *at = getenv ("HELPER_START_AT");
  struct repo_file *f;
  char text[128], line[16];
  int len, rc;

  if (strcmp (cmd, "held") == 0) {
    if ((rc = io_lock_held (io, path)) == -1)
      die (path);
    printf ("%d\n", rc);
    return 0;
  }
  if (strcmp (cmd, "lock") == 0) {
    if (io_lock (io, path, "a test", 0) == -1)
      die (path);
    printf ("locked %ld\n", (long) getpid ());
    fflush (stdout);
    if (!fgets (line, sizeof line, stdin))
      die ("stdin");
    io_unlock (io, path);
    printf ("unlocked\n");
    repo_close (r);
    return 0;
  }
  if (at) {
    struct timespec now;
    double wait;
    clock_gettime (CLOCK_REALTIME, &now);
    wait = atof (at) - (now.tv_sec + now.tv_nsec / 1e9);
    if (wait > 0)
      usleep (wait * 1e6);
  }
  if (strcmp (cmd, "claim") == 0)
    rc = io->ops->mkdir (io, path);
  else if (!(f = io->ops->open (io, path, O_WRONLY | O_CREAT | O_EXCL)))
    rc = -1;
  else {
    const char *host = getenv ("HELPER_HOST");
    len = snprintf (text, sizeof text, "host=%s pid=%ld\n",
                    host ? host : "test", (long) getpid ());
    rc = io_write_all (io, f, text, len, 0);
    if (io->ops->close (io, f) == -1)
      rc = -1;
  }
  if (rc == -1 && errno != EEXIST)
    die (path);
  printf ("%s\n", rc == 0 ? "won" : "lost");
  repo_close (r);
  return 0;
}

static int
hold (const char *location, const char *path)
{
  struct repo *r = open_env (location);
  struct repo_io *io = repo_get_io (r);
  struct repo_file *f;
  char line[16], byte;

  f = io->ops->open (io, path, O_RDONLY);
  if (!f)
    die (path);
  printf ("open\n");
  fflush (stdout);
  if (!fgets (line, sizeof line, stdin))
    die ("stdin");
  if (io->ops->pread (io, f, &byte, 1, 0) == -1)
    printf ("read failed: %s\n", error_msg ());
  else
    printf ("read ok\n");
  io->ops->close (io, f);
  repo_close (r);
  return 0;
}

int
main (int argc, char **argv)
{
  struct repo *r;
  struct repo_writer *w;
  struct repo_manifest m;
  time_t t = 0;
  int i;

  if (argc >= 4 && strcmp (argv[1], "init") == 0) {
    struct repo_init_opts o = { .chunk_size = parse_size (argv[3]),
                                .no_compression = argc > 4 };
    if (repo_init (argv[2], &o) == -1)
      die ("init");
    return 0;
  }
  if (argc == 4 && strcmp (argv[1], "hold") == 0)
    return hold (argv[2], argv[3]);
  if (argc == 4 && (strcmp (argv[1], "excl") == 0 ||
                    strcmp (argv[1], "claim") == 0 ||
                    strcmp (argv[1], "lock") == 0 ||
                    strcmp (argv[1], "held") == 0))
    return race (argv[1], argv[2], argv[3]);
  if (argc < 6 || strcmp (argv[1], "import") != 0) {
    fprintf (stderr, "usage: helper-repo init DIR CHUNK_SIZE [raw]\n"
             "       helper-repo import DIR VM TIME|now DISK=IMAGE...\n"
             "       helper-repo hold REPO FILE\n"
             "       helper-repo excl|claim|lock|held REPO PATH\n");
    return 1;
  }
  r = repo_open (argv[2]);
  if (!r)
    die ("open");
  if (strcmp (argv[4], "now") != 0 && timestamp_parse (argv[4], &t) == -1)
    die ("time");
  w = repo_writer_begin (r, argv[3], t);
  if (!w)
    die ("begin");
  for (i = 5; i < argc; i++)
    import_disk (r, w, argv[i]);
  if (repo_writer_commit (w, &m) == -1)
    die ("commit");
  printf ("%s@%s\n", m.vm, m.id);
  repo_close (r);
  return 0;
}
