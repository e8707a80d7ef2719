/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback scan: the unprivileged child that parses and matches, and its
 * parent's side (scan_disk).
 *
 * Choice of reader (measured on the 2-core test host, Debian 12): the
 * libguestfs 1.48 appliance (a VM, the field's standard), with
 * LIBGUESTFS_BACKEND=direct and supermin given the tiny image's Debian
 * 6.1 cloud kernel (SUPERMIN_KERNEL/SUPERMIN_MODULES; /boot is empty
 * there), did not finish guestfs_launch in 11 minutes: supermin built it
 * in seconds, then QEMU (KVM present and enabled, the host at load ~10 on
 * 2 cores) ran 11 minutes, 2m44s of CPU, without the appliance answering
 * (not debugged further: the cloud kernel may lack what the appliance
 * needs; Debian's linux-image-amd64 was not tried).  A scan could not be
 * tested that way, and every scan would pay a VM boot.
 * (The kernel parsing guest file systems inside the appliance is the
 * other way to keep them off the host kernel.)  bootback scan
 * therefore reads file systems in user space, in-process, with The Sleuth
 * Kit (libtsk: DOS/GPT partition tables, ext2/3/4, FAT, NTFS, ...), over
 * the plugin's read-only NBD export through libnbd: no host kernel
 * mount, no FUSE, no helper program.  libtsk never follows a symlink (it
 * hands out names and inode numbers, and bootback opens files by inode
 * number inside the image), never replays a journal and never writes.
 * XFS, which libtsk 4.11 does not read, is read by libfsxfs (xfs.c) the
 * same way, and LVM physical volumes by libvslvm (lvm.c).  Encrypted
 * volumes are reported "not scanned" with the reason.
 *
 * The child (one per disk):
 *   0. closes every file descriptor of the parent but its pipe, starts a
 *      session of its own (no controlling terminal: no TIOCSTI into the
 *      administrator's shell) and has /dev/null as stdin, stdout and
 *      stderr (it says everything through the pipe);
 *   1. connects to the NBD socket and loads the YARA rules and ClamAV
 *      signatures (match.c) while it still may read them;
 *   2. drops: new network and IPC namespaces (the NBD connection, made
 *      before, stays; no other network: only loopback, down),
 *      no_new_privs, rlimits (address space o->memory, CPU =
 *      timeout, 64 open files, 1 GiB file size for libclamav's scratch
 *      files, no core, no new processes), supplementary groups cleared,
 *      setresgid/setresuid to o->user (nobody);
 *   3. walks the disk (walk.c), writing JSON lines to a pipe.
 * The parent reads the pipe with a wall-clock deadline (o->timeout) and
 * kills the child when it passes, or when it has written more than
 * CHILD_OUTPUT_MAX; a child that dies, fails or is killed makes the disk
 * "could not scan", never clean, and keeps the matches it reported
 * before (found stays found: a crafted disk can always run the scan out
 * of time, and before, that turned its detected malware into a mere
 * "incomplete", the matches gone).  What the child writes is parsed as
 * JSON, capped in size, and only printed escaped.
 *
 * libclamav's scratch files (the members of archives it unpacks: guest
 * bytes) go to a 0700 directory the parent makes before the fork and
 * gives to o->user, and removes after waitpid, whatever the child's end:
 * a child killed at the deadline or by a limit (which a crafted disk can
 * always arrange) cleans nothing up itself, and before, each such scan
 * left its directory, archive members included, in /tmp.  The removal
 * opens every directory with O_NOFOLLOW relative to its parent's fd: the
 * directory belongs to o->user, whose other processes could swap a
 * directory in it for a link meanwhile.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <libnbd.h>

#include "recovery/scan/scan-int.h"

#define CHILD_OUTPUT_MAX (64u << 20)
#define SCRATCH_DEPTH_MAX 32

char *
scan_escape (const char *s, size_t len)
{
  char *out = xmalloc (4 * len + 1), *p = out;
  size_t i;

  for (i = 0; i < len; i++) {
    unsigned char ch = s[i];
    if (ch < 0x20 || ch >= 0x7f || ch == '\\')
      p += sprintf (p, "\\x%02x", ch);
    else
      *p++ = ch;
  }
  *p = '\0';
  return out;
}

static int
set_limit (int res, rlim_t v)
{
  struct rlimit rl = { v, v };
  return setrlimit (res, &rl);
}

/* Step 0 of the child: a session of its own, /dev/null on 0, 1, 2. */
static void
child_detach (void)
{
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);

  setsid ();
  if (null < 0 || dup2 (null, 0) == -1 || dup2 (null, 1) == -1 || dup2 (null, 2) == -1)
    _exit (1);
  if (null > 2)
    close (null);
}

/* Step 2 of the child (see the top of the file). */
static int
drop_privileges (const struct scan_opts *o, uid_t uid, gid_t gid)
{
  if ((getuid () == 0 && unshare (CLONE_NEWNET | CLONE_NEWIPC) == -1)) {
    error_set (errno, "new network namespace");
    return -1;
  }
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
      set_limit (RLIMIT_AS, o->memory) == -1 ||
      set_limit (RLIMIT_CPU, o->timeout) == -1 ||
      set_limit (RLIMIT_NOFILE, 64) == -1 ||
      set_limit (RLIMIT_FSIZE, 1ull << 30) == -1 ||
      set_limit (RLIMIT_CORE, 0) == -1) {
    error_set (errno, "limits");
    return -1;
  }
  if (getuid () == 0 || geteuid () == 0) {
    if (setgroups (0, NULL) == -1 || setresgid (gid, gid, gid) == -1 ||
        setresuid (uid, uid, uid) == -1) {
      error_set (errno, "cannot become user %s", o->user);
      return -1;
    }
    if (setresuid (0, 0, 0) == 0) {
      error_setx ("still able to become root after dropping");
      return -1;
    }
  }
  if (set_limit (RLIMIT_NPROC, 0) == -1) {
    error_set (errno, "limits");
    return -1;
  }
  return 0;
}

/* The network interfaces the child sees (1: loopback alone). */
static int
count_interfaces (void)
{
  struct if_nameindex *ifs = if_nameindex ();
  int n = 0;

  for (; ifs && ifs[n].if_index; n++)
    ;
  if (ifs)
    if_freenameindex (ifs);
  return n;
}

static void
child_error (FILE *out, const char *what)
{
  json_t *o = json_pack ("{s:s, s:s}", "kind", "error", "error", error_msg ());
  char *s = o ? json_dumps (o, JSON_COMPACT) : NULL;

  fprintf (out, "%s\n", s ? s : "{\"kind\":\"error\",\"error\":\"?\"}");
  fflush (out);
  free (s);
  json_decref (o);
}

static void __attribute__((noreturn))
child (const struct scan_opts *o, const char *sock, const char *scratch,
       uid_t uid, gid_t gid, int fd)
{
  FILE *out = fdopen (fd, "w");
  struct nbd_handle *nbd;
  struct scan_engines *e = NULL;

  if (!out)
    _exit (1);
  /* nothing of the parent's (the catalog, the repository) stays open,
   * and no terminal (step 0) */
  if (fd > 3)
    close_range (3, fd - 1, 0);
  close_range (fd + 1, ~0u, 0);
  child_detach ();
  nbd = nbd_create ();
  if (!nbd || nbd_connect_unix (nbd, sock) == -1) {
    error_setx ("NBD %s: %s", sock, nbd_get_error ());
    goto err;
  }
  if (!(e = engines_load (o))) {
    json_t *j = json_pack ("{s:s, s:s, s:b}", "kind", "error", "error",
                           error_msg (), "rules", 1);
    char *t = j ? json_dumps (j, JSON_COMPACT) : NULL;
    fprintf (out, "%s\n", t ? t : "");
    fflush (out);
    _exit (1);
  }
  if (drop_privileges (o, uid, gid) == -1 ||
      engines_tmpdir (e, scratch) == -1)
    goto err;
  crash_step (10);                      /* a test hook */
  /* what the report says of the sandbox is what the kernel says now */
  fprintf (out, "{\"kind\":\"sandbox\",\"uid\":%d,\"euid\":%d,"
           "\"no_new_privs\":%d,\"session_leader\":%d,\"tty\":%d,"
           "\"interfaces\":%d}\n", (int) getuid (), (int) geteuid (),
           prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), getsid (0) == getpid (),
           isatty (0) || isatty (1) || isatty (2), count_interfaces ());
  if (walk_disk (nbd, o, e, out) == -1)
    goto err;
  engines_free (e);
  nbd_close (nbd);
  fclose (out);
  _exit (0);
 err:
  child_error (out, NULL);
  _exit (1);
}

/* The child's scratch directory: dir (a mkdtemp template) made 0700 and
 * given to uid:gid if we are root.  -1 with the error. */
static int
scratch_make (char *dir, uid_t uid, gid_t gid)
{
  int fd;

  if (!mkdtemp (dir)) {
    error_set (errno, "mkdtemp %s", dir);
    return -1;
  }
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd == -1 ||
      ((getuid () == 0 || geteuid () == 0) && fchown (fd, uid, gid) == -1)) {
    error_set (errno, "scratch directory %s", dir);
    if (fd >= 0)
      close (fd);
    rmdir (dir);
    return -1;
  }
  close (fd);
  return 0;
}

/* Remove everything in the directory dfd (consumed), never through a
 * link: each subdirectory is opened O_NOFOLLOW from its parent's fd. */
static void
scratch_empty (int dfd, int depth)
{
  DIR *d = fdopendir (dfd);
  struct dirent *e;
  int sub;

  if (!d) {
    close (dfd);
    return;
  }
  while ((e = readdir (d))) {
    if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0 ||
        unlinkat (dirfd (d), e->d_name, 0) == 0 || errno != EISDIR)
      continue;
    if (depth < SCRATCH_DEPTH_MAX &&
        (sub = openat (dirfd (d), e->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
      scratch_empty (sub, depth + 1);
    unlinkat (dirfd (d), e->d_name, AT_REMOVEDIR);
  }
  closedir (d);
}

/* Remove the scratch directory dir and what the child left in it. */
static void
scratch_remove (const char *dir)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd >= 0)
    scratch_empty (fd, 0);
  rmdir (dir);
}

/* Read the child's lines until EOF or the deadline.  -1 on timeout, -2
 * when it wrote more than CHILD_OUTPUT_MAX. */
static int
read_child (int fd, unsigned timeout, char **buf, size_t *len)
{
  double deadline = now_monotonic () + timeout;
  size_t cap = 65536;

  *buf = xmalloc (cap);
  *len = 0;
  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    double left = deadline - now_monotonic ();
    ssize_t n;

    if (left <= 0)
      return -1;
    if (poll (&p, 1, left > 1 ? 1000 : (int) (left * 1000) + 1) <= 0)
      continue;
    if (*len + 4096 > cap) {
      if (cap >= CHILD_OUTPUT_MAX)
        return -2;
      *buf = realloc (*buf, cap *= 2);
      if (!*buf)
        abort ();
    }
    n = read (fd, *buf + *len, cap - *len - 1);
    if (n == 0)
      return 0;
    if (n < 0 && errno != EINTR)
      return 0;
    if (n > 0)
      *len += n;
  }
}

/* The child's lines into the disk's result.  -1 if it reported an error. */
static int
collect (json_t *res, char *buf, bool *rules_bad)
{
  char *line, *save = NULL;

  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    json_auto_t *o = json_loads (line, 0, NULL);
    const char *kind = o ? json_string_value (json_object_get (o, "kind"))
      : NULL;
    if (!kind)
      continue;
    if (strcmp (kind, "error") == 0) {
      CLEANUP_FREE char *t = xstrdup_printable
        (json_string_value (json_object_get (o, "error")) ?: "?", false);
      error_setx ("%s", t);
      *rules_bad = json_is_true (json_object_get (o, "rules"));
      return -1;
    }
    if (strcmp (kind, "sandbox") == 0)
      json_object_set (res, "sandbox", o);
    else
      json_array_append (json_object_get (res, strcmp (kind, "match") == 0
                                        ? "matches" : "partitions"), o);
    json_object_del (o, "kind");    /* frees kind */
  }
  return 0;
}

json_t *
scan_disk (const struct scan_opts *o, const char *sock, const char *disk,
           bool *rules_bad)
{
  struct passwd *pw = getpwnam (o->user ? o->user : "nobody");
  char scratch[] = "/tmp/bootback-scan.XXXXXX";
  CLEANUP_FREE char *buf = NULL;
  json_auto_t *res = NULL;
  int pfd[2], st = 0, rc;
  size_t len;
  pid_t pid;

  if (!pw) {
    error_setx ("no user %s to scan as", o->user ? o->user : "nobody");
    return NULL;
  }
  if (scratch_make (scratch, pw->pw_uid, pw->pw_gid) == -1)
    return NULL;
  if (pipe2 (pfd, O_CLOEXEC) == -1 || (pid = fork ()) == -1) {
    error_set (errno, "fork");
    scratch_remove (scratch);
    return NULL;
  }
  if (pid == 0) {
    close (pfd[0]);
    child (o, sock, scratch, pw->pw_uid, pw->pw_gid, pfd[1]);
  }
  close (pfd[1]);
  rc = read_child (pfd[0], o->timeout, &buf, &len);
  close (pfd[0]);
  if (rc < 0)
    kill (pid, SIGKILL);
  waitpid (pid, &st, 0);
  scratch_remove (scratch);
  buf[len] = '\0';
  res = json_pack ("{s:s, s:[], s:[]}", "disk", disk, "partitions",
                   "matches");
  *rules_bad = false;
  if (collect (res, buf, rules_bad) == -1)
    ;                                   /* the child's own error */
  else if (rc == -1)
    error_setx ("the scan did not finish within %u s (killed)", o->timeout);
  else if (rc == -2)
    error_setx ("the scanning process wrote more than %u MiB (killed)",
                CHILD_OUTPUT_MAX >> 20);
  else if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    error_setx ("the scanning process %s %d",
                WIFSIGNALED (st) ? "died of signal" : "exited with status",
                WIFSIGNALED (st) ? WTERMSIG (st) : WEXITSTATUS (st));
  else
    return json_incref (res);
  /* It did not finish: what it matched before stays found (a disk that
   * makes the scan fail or run out of time hides nothing it had shown),
   * and the disk says why it is not scanned. */
  if (*rules_bad || json_array_size (json_object_get (res, "matches")) == 0)
    return NULL;
  json_object_set_new (res, "error", json_string (error_msg ()));
  return json_incref (res);
}

uint8_t *
scan_changed_chunks (struct repo *r, const char *vm, const char *id,
                     const char *since, const char *disk, uint64_t *n)
{
  struct repo_disk *a = repo_disk_open (r, vm, id, disk), *b;
  uint8_t *ch;
  uint64_t i, nb;

  if (!a)
    return NULL;
  if (!(b = repo_disk_open (r, vm, since, disk))) {
    repo_disk_close (a);
    return NULL;
  }
  *n = repo_disk_nchunks (a);
  nb = repo_disk_nchunks (b);
  ch = xcalloc (*n ? *n : 1, 1);
  for (i = 0; i < *n; i++)
    ch[i] = i >= nb || memcmp (repo_disk_digest (a, i),
                               repo_disk_digest (b, i), REPO_DIGEST_LEN) != 0;
  repo_disk_close (a);
  repo_disk_close (b);
  return ch;
}
