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
 *
 * hold opens FILE (relative to the repository), prints "open", waits for
 * a line on stdin, then reads and closes FILE and closes the repository:
 * a test can make the storage fail while a file is open (io-nfs.c 7.).
 * It prints what the read did and exits 0 either way.
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

static int
hold (const char *location, const char *path)
{
  struct repo_open_opts ro;
  struct repo *r;
  struct repo_io *io;
  struct repo_file *f;
  char line[16], byte;

  repo_open_opts_nfs (&ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  repo_open_opts_secret (&ro, getenv ("BOOTBACK_PASSPHRASE"),
                         getenv ("BOOTBACK_PASSPHRASE_FILE"),
                         getenv ("BOOTBACK_KEY_FILE"));
  r = repo_open_with (location, &ro);
  if (!r)
    die ("open");
  io = repo_get_io (r);
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
  if (argc < 6 || strcmp (argv[1], "import") != 0) {
    fprintf (stderr, "usage: helper-repo init DIR CHUNK_SIZE [raw]\n"
             "       helper-repo import DIR VM TIME|now DISK=IMAGE...\n"
             "       helper-repo hold REPO FILE\n");
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
