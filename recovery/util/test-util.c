/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for util: sizes, hex, names, time stamps, errors, process
 * identity, private files. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "recovery/util/util.h"

static unsigned
mode_of (const char *path)
{
  struct stat st;

  assert (stat (path, &st) == 0);
  return st.st_mode & 07777;
}

/* 0700 and 0600 under umask 0; tighten_mode takes group and other off. */
static void
test_private (void)
{
  char dir[] = "/tmp/bootback-test-util.XXXXXX";
  CLEANUP_FREE char *sub = NULL, *f1 = NULL, *f2 = NULL, *f3 = NULL;
  mode_t old = umask (0), was;
  FILE *f;

  assert (mkdtemp (dir));
  sub = xasprintf ("%s/a/b", dir);
  f1 = xasprintf ("%s/f1", sub);
  f2 = xasprintf ("%s/f2", sub);
  f3 = xasprintf ("%s/f3", sub);
  assert (mkdir_p_private (sub) == 0 && mode_of (sub) == 0700);
  assert (mkdir_private (sub) == 0);          /* exists: fine */
  assert ((f = fopen_private (f1)) && fclose (f) == 0 && mode_of (f1) == 0600);
  assert (create_private (f2) == 0 && mode_of (f2) == 0600);
  assert (create_private (f2) == -1 && errno == EEXIST);
  assert (chmod (f2, 0664) == 0);
  assert (tighten_mode (f2, &was) == 1 && was == 0664 && mode_of (f2) == 0600);
  assert (tighten_mode (f2, &was) == 0);
  assert (tighten_mode (f3, &was) == -1 && errno == ENOENT);
  unlink (f1);
  unlink (f2);
  rmdir (sub);
  *strrchr (sub, '/') = '\0';
  rmdir (sub);
  rmdir (dir);
  umask (old);
}

/* dir_chain_private: the directory of a path and each above it. */
static int
chain (const char *dir, const char *rel, char *out, size_t len)
{
  CLEANUP_FREE char *p = xasprintf ("%s/%s", dir, rel);

  return dir_chain_private (p, out, len);
}

static void
test_dir_chain (void)
{
  char dir[] = "/tmp/bootback-test-chain.XXXXXX", out[PATH_MAX];
  CLEANUP_FREE char *want = NULL;
  const char *mk[][2] = { { "ok", "0700" }, { "w", "0777" }, { "w/sub", "0700" },
                          { "s", "1777" }, { "s/mine", "0700" }, { "n", "0755" } };
  size_t i;

  assert (mkdtemp (dir));
  for (i = 0; i < sizeof mk / sizeof mk[0]; i++) {
    CLEANUP_FREE char *p = xasprintf ("%s/%s", dir, mk[i][0]);
    assert (mkdir (p, 0700) == 0 && chmod (p, strtol (mk[i][1], NULL, 8)) == 0);
  }
  want = xasprintf ("%s/ok/x", dir);
  assert (chain (dir, "ok/x", out, sizeof out) == 0 && strcmp (out, want) == 0);
  {                                     /* a link in the path: resolved */
    CLEANUP_FREE char *l = xasprintf ("%s/l", dir);
    assert (symlink ("ok", l) == 0);
    assert (chain (dir, "l/x", out, sizeof out) == 0 && strcmp (out, want) == 0);
    unlink (l);
  }
  assert (chain (dir, "s/mine/x", NULL, 0) == 0);     /* sticky above: fine */
  assert (chain (dir, "w/x", NULL, 0) == -1 && strstr (error_msg (), "mode 0777"));
  assert (chain (dir, "w/sub/x", NULL, 0) == -1 && strstr (error_msg (), "/w (owner"));
  assert (chain (dir, "s/x", NULL, 0) == -1 && strstr (error_msg (), "mode 1777"));
  if (geteuid () == 0) {                /* another user's directory */
    CLEANUP_FREE char *n = xasprintf ("%s/n", dir);
    assert (chown (n, 65534, -1) == 0);
    assert (chain (dir, "n/x", NULL, 0) == -1 && strstr (error_msg (), "mode 0755"));
  }
  assert (chain (dir, "none/x", NULL, 0) == -1 && error_errno () == ENOENT);
  for (i = sizeof mk / sizeof mk[0]; i-- > 0;) {
    CLEANUP_FREE char *p = xasprintf ("%s/%s", dir, mk[i][0]);
    rmdir (p);
  }
  rmdir (dir);
}

/* pid_matches, pid_file_*, pid_stop: a child "sleep 60 NEEDLE" is
 * recognised by its command line and start time, and only then stopped;
 * with pidfds and without (BOOTBACK_NO_PIDFD, as under valgrind 3.19). */
static void
test_pid (void)
{
  char path[] = "/tmp/test-util-pid.XXXXXX", file[64];
  unsigned long long start, st;
  pid_t pid;
  FILE *f;

  assert (mkdtemp (path));
  snprintf (file, sizeof file, "%s/x.pid", path);
  pid = fork ();
  if (pid == 0) {
    execlp ("sleep", "sleep", "60", (char *) NULL);   /* no shell: no exec to race with */
    _exit (127);
  }
  assert (pid > 0);
  while ((start = pid_start_time (pid)) == 0 || !pid_matches (pid, 0, "sleep"))
    usleep (1000);
  assert (pid_matches (pid, start, "sleep 60"));
  assert (!pid_matches (pid, start + 1, "sleep 60"));   /* a reused pid */
  assert (!pid_matches (pid, start, "nbdkit"));
  assert (pid_file_read (file, &st) == 0 && st == 0);   /* no file */
  f = fopen (file, "w");
  fprintf (f, "%d\n", (int) pid);
  fclose (f);
  assert (pid_file_stamp (file, "nbdkit") == -1);
  assert (strstr (error_msg (), "is not the one started"));
  assert (pid_file_read (file, &st) == pid && st == 0);
  assert (pid_file_stamp (file, "sleep 60") == 0);
  assert (pid_file_read (file, &st) == pid && st == start);
  /* Not the process named: nothing sent. */
  assert (pid_stop (pid, start + 1, "sleep 60", 1) == 0);
  assert (pid_stop (pid, start, "nbdkit", 1) == 0);
  assert (kill (pid, 0) == 0 && pid_matches (pid, start, NULL));
  assert (pid_stop (pid, start, "sleep 60", 5) == 1);
  assert (kill (pid, 0) == -1 && errno == ESRCH);        /* reaped */
  assert (pid_stop (pid, 0, NULL, 1) == 0);
  unlink (file);
  rmdir (path);
}

struct pair { int a, b; };

static int
locked_add (pthread_mutex_t *m, int *x, int by)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (m);
  if (by < 0)
    return -1;                  /* an early return unlocks too */
  *x += by;
  return 0;
}

static void
test_containers (void)
{
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  struct pair *v = NULL;
  size_t n = 0, i, sn = 0;
  char **sv = NULL;
  int x = 0;

  for (i = 0; i < 100; i++) {
    struct pair *p = ARRAY_PUSH (v, n);
    assert (p->a == 0 && p->b == 0);       /* each new element zeroed */
    p->a = i;
  }
  assert (n == 100 && v[0].a == 0 && v[99].a == 99);
  free (v);

  strv_push (&sv, &sn, xstrdup ("a"));
  strv_push (&sv, &sn, xstrdup ("b"));
  strv_push (&sv, NULL, xstrdup ("c"));   /* length counted */
  assert (sn == 2 && sv[2] && strcmp (sv[2], "c") == 0 && sv[3] == NULL);
  {
    CLEANUP_STRV char **owned = sv;      /* freed at the end of the block */
    assert (owned[0][0] == 'a');
  }

  assert (locked_add (&m, &x, 2) == 0 && locked_add (&m, &x, -1) == -1);
  assert (pthread_mutex_trylock (&m) == 0);  /* both paths unlocked */
  pthread_mutex_unlock (&m);
  assert (x == 2);
}

/* fopen_private on a file that exists (review finding: it truncated one
 * of someone else's and wrote into it, the file staying theirs): ours is
 * tightened and truncated; another user's, a second link of ours, a FIFO
 * are refused and left as they were. */
static void
test_fopen_existing (void)
{
  char dir[] = "/tmp/bb-test-util.XXXXXX", p[64], q[64];
  struct stat st;
  FILE *f;

  assert (mkdtemp (dir));
  snprintf (p, sizeof p, "%s/report.html", dir);
  assert (write_whole_file (p, "old text", 8, 0644) == 0 && chmod (p, 0644) == 0);
  assert ((f = fopen_private (p)) && fputs ("new", f) != EOF && fclose (f) == 0);
  assert (stat (p, &st) == 0 && st.st_size == 3 && (st.st_mode & 0777) == 0600);
  /* a second link to it (another name of a file of ours) */
  snprintf (q, sizeof q, "%s/other", dir);
  assert (link (p, q) == 0);
  assert (!(f = fopen_private (q)) && errno == EPERM && strstr (error_msg (), "2 links"));
  assert (stat (p, &st) == 0 && st.st_size == 3);
  unlink (q);
  /* someone else's (root only: chown) */
  if (geteuid () == 0) {
    assert (chown (p, 65534, 65534) == 0 && chmod (p, 0644) == 0);
    assert (!(f = fopen_private (p)) && errno == EPERM);
    assert (strstr (error_msg (), "not a file of ours (owner uid 65534"));
    assert (stat (p, &st) == 0 && st.st_size == 3 && st.st_uid == 65534 &&
            (st.st_mode & 0777) == 0644);
  }
  unlink (p);
  /* a FIFO: refused at once, not a writer blocked until someone reads */
  assert (mkfifo (p, 0600) == 0);
  assert (!(f = fopen_private (p)) && (errno == EINVAL || errno == ENXIO));
  unlink (p);
  rmdir (dir);
}

/* A symlink planted where a file is written is not followed. */
static void
test_no_symlink_follow (void)
{
  char dir[] = "/tmp/bb-test-util.XXXXXX", link[64], target[64];
  struct stat st;
  FILE *f;

  assert (mkdtemp (dir));
  snprintf (link, sizeof link, "%s/report.json", dir);
  snprintf (target, sizeof target, "%s/elsewhere", dir);
  assert (symlink (target, link) == 0);
  assert (write_whole_file (link, "x", 1, 0600) == -1 && errno == ELOOP);
  assert (!(f = fopen_private (link)) && errno == ELOOP);
  assert (stat (target, &st) == -1 && errno == ENOENT);
  unlink (link);
  /* nor does a FIFO there block the write (review finding: a FIFO at a
   * screenshot's name in a report directory others can write, a share,
   * hung every verification run) */
  assert (mkfifo (link, 0666) == 0);
  alarm (10);
  assert (write_whole_file (link, "x", 1, 0600) == -1 && errno == ENXIO);
  alarm (0);
  unlink (link);
  rmdir (dir);
}

#define U(s) ((const unsigned char *) (s))

/* utf8_seq_len: valid sequences by length, and what RFC 3629 refuses. */
static void
test_utf8 (void)
{
  assert (utf8_seq_len (U ("a"), 1) == 1);
  assert (utf8_seq_len (U ("\xc3\xa9"), 2) == 2);          /* é */
  assert (utf8_seq_len (U ("\xe2\x82\xac"), 3) == 3);      /* € */
  assert (utf8_seq_len (U ("\xf0\x9f\x98\x80"), 4) == 4);  /* 😀 */
  assert (utf8_seq_len (U ("\xc3\xa9"), 1) == 0);          /* cut short */
  assert (utf8_seq_len (U ("\xc0\x80"), 2) == 0);          /* overlong NUL */
  assert (utf8_seq_len (U ("\xe0\x80\xaf"), 3) == 0);      /* overlong '/' */
  assert (utf8_seq_len (U ("\xed\xa0\x80"), 3) == 0);      /* surrogate */
  assert (utf8_seq_len (U ("\xf4\x90\x80\x80"), 4) == 0);  /* past U+10FFFF */
  assert (utf8_seq_len (U ("\x80"), 1) == 0);              /* continuation */
  assert (utf8_seq_len (U ("\xc3\x28"), 2) == 0);          /* bad continuation */
}

/* What a child says and puts between fork and exec (write(2) only). */
static void
test_child_helpers (void)
{
  char buf[32], out[256] = "";
  int p[2];
  ssize_t n;

  snprintf (buf, sizeof buf, "LISTEN_PID=%20s", "");
  child_put_number (buf, 4194304);
  assert (strcmp (buf, "LISTEN_PID=4194304") == 0);
  snprintf (buf, sizeof buf, "LISTEN_PID=%20s", "");
  child_put_number (buf, 0);
  assert (strcmp (buf, "LISTEN_PID=0") == 0);
  assert (pipe (p) == 0);
  child_say (p[1], "exec", "nbdkit", ENOENT);
  child_say (p[1], "qemu-nbd", NULL, EACCES);
  close (p[1]);
  n = read (p[0], out, sizeof out - 1);
  close (p[0]);
  assert (n > 0);
  out[n] = '\0';
  assert (strcmp (out, "exec nbdkit: No such file or directory\n"
                  "qemu-nbd: Permission denied\n") == 0);
}

int
main (void)
{
  uint8_t b[4];
  char hex[9], ts[TIMESTAMP_LEN + 1];
  time_t t;

  test_containers ();
  test_child_helpers ();
  assert (parse_size ("1M") == 1048576);
  assert (parse_size ("64K") == 65536);
  assert (parse_size ("4MiB") == 4194304);
  assert (parse_size ("4096") == 4096);
  assert (parse_size ("4X") == -1);
  assert (strstr (error_msg (), "invalid size '4X'"));
  assert (parse_size ("") == -1);
  assert (parse_size ("99999999999999999999T") == -1);

  assert (hex_decode ("00ff10ab", b, 4) == 0 && b[1] == 0xff && b[3] == 0xab);
  hex_encode (b, 4, hex);
  assert (strcmp (hex, "00ff10ab") == 0);
  assert (hex_decode ("00ff10a", b, 4) == -1);
  assert (hex_decode ("00ff10ag", b, 4) == -1);

  /* write_whole_file: a full device fails by name, once (no double close) */
  assert (write_whole_file ("/dev/full", "x", 1, 0600) == -1);
  assert (error_errno () == ENOSPC && strstr (error_msg (), "/dev/full"));
  assert (write_whole_file ("/nonexistent/x", "x", 1, 0600) == -1);
  assert (strstr (error_msg (), "open /nonexistent/x"));
  test_no_symlink_follow ();
  test_fopen_existing ();
  test_utf8 ();

  assert (disk_name_is_valid ("vda"));
  static const char n65[] =
    "0123456789012345678901234567890123456789012345678901234567890123X";
  assert (!disk_name_is_valid (n65));
  assert (name_is_valid (n65));
  assert (point_id_is_valid ("20261122T045506Z"));
  assert (!point_id_is_valid ("2026-11-22T04:55:06Z"));
  assert (!point_id_is_valid ("../../20261122T0"));
  assert (!point_id_is_valid ("20261122T045506Z/"));
  assert (!point_id_is_valid ("20261122t045506Z"));
  assert (name_is_valid ("web-1.prod_a"));
  assert (!name_is_valid (""));
  assert (!name_is_valid (".hidden"));
  assert (!name_is_valid ("a/b"));
  assert (!name_is_valid ("a@b"));

  assert (timestamp_parse ("20261122T045506Z", &t) == 0);
  timestamp_format (t, ts);
  assert (strcmp (ts, "20261122T045506Z") == 0);
  assert (timestamp_parse ("2026-11-22T04:55:06Z", &t) == 0);
  timestamp_format (t, ts);
  assert (strcmp (ts, "20261122T045506Z") == 0);
  assert (timestamp_parse ("yesterday", &t) == -1);
  assert (timestamp_parse ("0999-12-06T10:27:02Z", &t) == -1);
  {
    char iso[ISO_TIME_LEN + 1];
    assert (timestamp_parse ("20261122T045506Z", &t) == 0);
    iso_time_format (t, iso);
    assert (strcmp (iso, "2026-11-22T04:55:06Z") == 0);
    iso_time_format ((time_t) 1 << 50, iso);        /* a hostile manifest's */
    assert (strcmp (iso, "0000-00-00T00:00:00Z") == 0);
    iso_time_format (-((time_t) 1 << 50), iso);
    assert (strcmp (iso, "0000-00-00T00:00:00Z") == 0);
  }

  error_set (ENOENT, "open: %s", "/x");
  assert (strcmp (error_msg (), "open: /x: No such file or directory") == 0);
  error_prefix ("repo %s", "r");
  assert (strcmp (error_msg (), "repo r: open: /x: No such file or directory") == 0);
  assert (error_errno () == ENOENT);

  {
    char z[4096] = { 0 };
    assert (is_zero (z, sizeof z));
    z[4095] = 1;
    assert (!is_zero (z, sizeof z));
    z[4095] = 0; z[3] = 1;
    assert (!is_zero (z, sizeof z));
    assert (is_zero (z, 3));
  }
  test_pid ();
  setenv ("BOOTBACK_NO_PIDFD", "1", 1);
  test_pid ();
  unsetenv ("BOOTBACK_NO_PIDFD");
  printf ("test-util: ok\n");
  test_private ();
  test_dir_chain ();
  return 0;
}
