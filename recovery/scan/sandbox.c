/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback scan: the unprivileged process that parses and matches
 * (scan_child_main), and its parent's side (scan_disk).
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
 * The child (one per disk) is forked, then execs this very program: the
 * parent holds the repository's keys (and, in the web server, the API
 * tokens), and its environment the passphrase or key file, the S3
 * credentials; a fork's memory and environment are the parent's, which
 * an exploit of any parser below (libtsk, libfsxfs, libvslvm,
 * libclamav, YARA: they read a hostile guest's bytes) would read and
 * smuggle out through the JSON it writes (catalog, reports, terminal).
 * So the child starts from a fresh address space: scan_disk builds,
 * before the fork (the parent may be threaded: between fork and exec
 * only async-signal-safe calls), the command line `PROGRAM scan-child
 * --sock=... --scratch=... --uid=... ...` (PROGRAM: /proc/self/exe read
 * in the parent; every option of struct scan_opts as an argument, none a
 * secret), an environment of PATH=/usr/bin:/bin and LC_ALL=C alone
 * (plus, in a build for testing, the test hooks: BOOTBACK_STOP_STEP and
 * BOOTBACK_CRASH_STEP, so that crash_step (10) stops it for a test;
 * BOOTBACK_SCAN_PROBE, child_probe's host paths and system calls to
 * try; BOOTBACK_SCAN_SHARED_ROOT, which leaves out private_root;
 * BOOTBACK_SCAN_NO_SECCOMP, which leaves out the filter), the
 * --since bitmap (nchunks bytes, maybe large) in a memfd; main() hands
 * `scan-child` to scan_child_main before it reads its environment or
 * opens anything.  bootback itself rather than a helper program: the
 * same build, found without a path to install or configure.  An exec
 * that fails writes a JSON error line to the pipe (write(2) only).
 *   0. between fork and exec: a session of its own (no controlling
 *      terminal: no TIOCSTI into the administrator's shell), /dev/null as
 *      stdin, stdout and stderr (it says everything through the pipe),
 *      the pipe on fd 3 (SCAN_CHILD_OUT_FD) and the bitmap's memfd on fd
 *      4 (SCAN_CHILD_MAP_FD; both at 10 and up before the dup2s), every
 *      other descriptor of the parent closed (the catalog, the
 *      repository, S3 connections);
 *   1. (after the exec) reads the bitmap, connects to the NBD socket and
 *      loads the YARA rules and ClamAV signatures (match.c) while it
 *      still may read them;
 *   2. drops: new network and IPC namespaces (the NBD connection, made
 *      before, stays; no other network: only loopback, down), a mount
 *      namespace whose root is an empty read-only tmpfs holding the
 *      scratch directory alone (private_root: no host file, /proc, /dev
 *      or /etc, no path-based unix socket such as libvirt's read-only
 *      one, no world-writable host directory; what is needed after, the
 *      network namespace's /proc file, is opened before),
 *      no_new_privs, rlimits (address space o->memory, CPU =
 *      timeout, 64 open files, 1 GiB file size for libclamav's scratch
 *      files, no core, no new processes), supplementary groups cleared,
 *      setresgid/setresuid to o->user (nobody; its uid and gid looked
 *      up by the parent), and last a seccomp filter (syscall-filter.c):
 *      nobody's other processes (other scans, daemons) are still within
 *      reach of the same uid, so signals, ptrace and the like to any
 *      pid but its own fail, and so do user and other namespaces,
 *      sockets other than unix ones, and kernel features no parser
 *      needs (mounts, keys, bpf, perf, io_uring, modules);
 *   3. reports its sandbox as the kernel sees it (uid, euid,
 *      no_new_privs, its network namespace's inode, its interfaces,
 *      whether its root is a read-only tmpfs without /etc and /proc,
 *      its seccomp mode: 2, a filter), before it reads a guest byte:
 *      the parent takes nothing from a child whose first such line does
 *      not show the sandbox holding (sandbox_holds), as when bootback
 *      runs as a user other than root, who can neither change uid nor
 *      make a namespace, or on a kernel without seccomp filters;
 *   4. walks the disk (walk.c), writing JSON lines to the pipe.
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
 * gives to o->user (the one host directory the child sees), and removes
 * after waitpid, whatever the child's end:
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
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
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

/* Step 0 of the child, between fork and exec: a session of its own,
 * /dev/null on 0, 1, 2.  Only async-signal-safe calls. */
static void
child_detach (void)
{
  int null = open ("/dev/null", O_RDWR);     /* 0-2 must survive the exec */

  setsid ();
  if (null < 0 || dup2 (null, 0) == -1 || dup2 (null, 1) == -1 || dup2 (null, 2) == -1)
    _exit (1);
  if (null > 2)
    close (null);
}

/* The directories of the relative path dir made under the current
 * directory (mkdir -p), 0755.  -1 with errno. */
static int
mkdir_below (const char *dir)
{
  CLEANUP_FREE char *rel = xstrdup (dir);
  char *p = rel;

  for (;;) {
    p += strcspn (p, "/");
    bool last = *p == '\0';
    *p = '\0';
    if (*rel && mkdir (rel, 0755) == -1 && errno != EEXIST)
      return -1;
    if (last)
      return 0;
    *p++ = '/';
  }
}

/* A tmpfs of at most 64 KiB, not yet attached (fsmount), nosuid, nodev,
 * noexec.  -1 with errno. */
static int
small_tmpfs (void)
{
  int fs = fsopen ("tmpfs", FSOPEN_CLOEXEC), m = -1;

  if (fs >= 0 && fsconfig (fs, FSCONFIG_SET_STRING, "size", "64k", 0) == 0 &&
      fsconfig (fs, FSCONFIG_SET_STRING, "mode", "0755", 0) == 0 &&
      fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
    m = fsmount (fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                 MOUNT_ATTR_NOEXEC);
  if (fs >= 0) {
    int e = errno;
    close (fs);
    errno = e;
  }
  return m;
}

/* Part of step 2, as root: a mount namespace whose root is an empty
 * tmpfs, read-only, holding the scratch directory alone, bound at its
 * host path (libclamav is given that path: engines_tmpdir), nosuid,
 * nodev, noexec.  No host file, no /proc, /dev or /etc, no path-based
 * unix socket (libvirt's read-only one, D-Bus, other points' nbdkit) is
 * left to open, and no world-writable host directory to plant files in.
 * / is made private first, so that nothing mounted here propagates to
 * the host.  The scratch directory is opened once, O_NOFOLLOW (it is
 * o->user's: another process of that user could swap it for a link),
 * and every step goes through that fd: a copy of it (open_tree), and the
 * tmpfs attached over it, as a mount point that exists (pivot_root
 * wants one), the copy moved inside (Linux 5.2 and up: mount_setattr,
 * 5.12, is not needed).  pivot_root (".", ".") with the tmpfs as the
 * current directory stacks the old root on it, to be detached; no fd of
 * the host's tree is left open (openat (fd, "..") would walk out). */
static int
private_root (const char *scratch)
{
  const unsigned long nx = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const char *rel = scratch + strspn (scratch, "/");
  int dir = -1, tree = -1, root = -1, rc = -1;

  if (scratch[0] != '/' || !*rel) {
    error_setx ("scratch directory %s: not an absolute path", scratch);
    return -1;
  }
  if (unshare (CLONE_NEWNS) == -1 ||
      mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
      (dir = open (scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
      (tree = open_tree (dir, "", AT_EMPTY_PATH | OPEN_TREE_CLONE |
                         OPEN_TREE_CLOEXEC)) == -1 ||
      (root = small_tmpfs ()) == -1 ||
      move_mount (root, "", dir, "", MOVE_MOUNT_F_EMPTY_PATH |
                  MOVE_MOUNT_T_EMPTY_PATH) == -1 ||
      fchdir (root) == -1 || mkdir_below (rel) == -1 ||
      move_mount (tree, "", AT_FDCWD, rel, MOVE_MOUNT_F_EMPTY_PATH) == -1 ||
      mount (NULL, rel, NULL, MS_REMOUNT | MS_BIND | nx, NULL) == -1 ||
      syscall (SYS_pivot_root, ".", ".") == -1 ||
      umount2 (".", MNT_DETACH) == -1 || chdir ("/") == -1 ||
      mount (NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | nx,
             NULL) == -1)
    error_set (errno, "cannot make a private file system view");
  else
    rc = 0;
  if (dir >= 0)
    close (dir);
  if (tree >= 0)
    close (tree);
  if (root >= 0)
    close (root);
  return rc;
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

/* Step 2 of the child (see the top of the file).  *netns: its network
 * namespace, open (after this, /proc is gone); *interfaces: the
 * interfaces it holds. */
static int
drop_privileges (const struct scan_opts *o, uid_t uid, gid_t gid,
                 const char *scratch, int *netns, int *interfaces)
{
  if ((getuid () == 0 && unshare (CLONE_NEWNET | CLONE_NEWIPC) == -1)) {
    error_set (errno, "new network namespace");
    return -1;
  }
  if ((*netns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) == -1) {
    error_set (errno, "/proc/self/ns/net");
    return -1;
  }
  /* the time zone read while /etc is there (libclamav names its scratch
   * directories by local time); the test hook shows the parent refusing
   * a child without the private root */
  tzset ();
  if (getuid () == 0 && !test_hook_env ("BOOTBACK_SCAN_SHARED_ROOT") &&
      private_root (scratch) == -1)
    return -1;
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
  /* counted before the filter, which denies the netlink socket
   * if_nameindex opens; the namespace stays (setns and unshare denied).
   * The test hook shows the parent refusing a child without the
   * filter. */
  *interfaces = count_interfaces ();
  if (!test_hook_env ("BOOTBACK_SCAN_NO_SECCOMP") && syscall_filter () == -1)
    return -1;
  return 0;
}

/* The inode of this process's network namespace, 0 if unknown. */
static uint64_t
netns_inode (void)
{
  struct stat st;

  return stat ("/proc/self/ns/net", &st) == 0 ? (uint64_t) st.st_ino : 0;
}

/* The inode of the open file fd, 0 if unknown. */
static uint64_t
fd_inode (int fd)
{
  struct stat st;

  return fstat (fd, &st) == 0 ? (uint64_t) st.st_ino : 0;
}

/* Is the root this process sees now the private one (private_root): a
 * read-only tmpfs without the host's /etc or /proc? */
static int
root_is_private (void)
{
  struct statfs sf;

  return statfs ("/", &sf) == 0 && sf.f_type == TMPFS_MAGIC &&
    (sf.f_flags & ST_RDONLY) && access ("/etc", F_OK) == -1 &&
    access ("/proc", F_OK) == -1;
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

/* A number argument of the scanning process, or exit. */
static uint64_t
child_number (FILE *out, const char *opt, const char *arg)
{
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull (arg, &end, 10);
  if (errno || end == arg || *end || arg[0] == '-') {
    error_setx ("scanning process: %s: '%s' is not a number", opt, arg);
    child_error (out, NULL);
    _exit (1);
  }
  return v;
}

/* The --since bitmap, nchunks bytes on SCAN_CHILD_MAP_FD (closed).  NULL
 * with the error. */
static uint8_t *
child_read_changed (uint64_t nchunks)
{
  uint8_t *map = xmalloc (nchunks ? nchunks : 1);
  uint64_t got = 0;

  while (got < nchunks) {
    ssize_t n = read (SCAN_CHILD_MAP_FD, map + got,
                      MIN (nchunks - got, (uint64_t) 1 << 30));
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0) {
      error_set (n == 0 ? EIO : errno, "the --since chunk map (%" PRIu64
                 " of %" PRIu64 " bytes)", got, nchunks);
      free (map);
      return NULL;
    }
    got += n;
  }
  close (SCAN_CHILD_MAP_FD);
  return map;
}

/* child_probe's host PATH: one ending in '/' is a directory to create
 * a file in, anything else a file to open or a unix socket to connect
 * to.  Reached? */
static bool
probe_path (const char *path)
{
  size_t n = strlen (path);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = -1;

  if (path[n - 1] == '/') {
    CLEANUP_FREE char *f = xasprintf ("%sbootback-scan-probe.%d", path,
                                      (int) getpid ());
    if ((fd = open (f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0)
      unlink (f);
  }
  else if ((fd = open (path, O_RDONLY | O_CLOEXEC)) == -1 &&
           n < sizeof sa.sun_path &&
           (fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
    memcpy (sa.sun_path, path, n);
    if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == -1) {
      close (fd);
      fd = -1;
    }
  }
  if (fd >= 0)
    close (fd);
  return fd >= 0;
}

/* getpid through int 0x80 (the 32-bit x86 ABI, 20 is its getpid):
 * true if it answers.  False where there is no such ABI. */
static bool
probe_i386 (void)
{
#ifdef __x86_64__
  long r = 20;

  __asm__ volatile ("int $0x80" : "+a" (r) : : "r8", "r9", "r10", "r11",
                    "memory");
  return r == getpid ();
#else
  return false;
#endif
}

/* child_probe's system call ACTION: kill=PID (SIGTERM to PID),
 * kill0=PID (signal 0: may we signal PID? -1 is every process we may
 * signal, 0 our group), ptrace=PID (PTRACE_SEIZE, left when we exit),
 * userns (a new user namespace, where we would hold every capability),
 * socket=inet, socket=inet6, socket=netlink (a socket of that family),
 * i386 (getpid in the 32-bit x86 ABI, whose numbers a filter for
 * x86-64 would read as other calls).  Reached? */
static bool
probe_action (const char *a)
{
  static const struct { const char *name; int family; } fam[] = {
    { "inet", AF_INET }, { "inet6", AF_INET6 }, { "netlink", AF_NETLINK },
  };
  int fd;

  if (strncmp (a, "kill=", 5) == 0)
    return kill (atoi (a + 5), SIGTERM) == 0;
  if (strncmp (a, "kill0=", 6) == 0)
    return kill (atoi (a + 6), 0) == 0;
  if (strncmp (a, "ptrace=", 7) == 0)
    return ptrace (PTRACE_SEIZE, atoi (a + 7), NULL, NULL) == 0;
  if (strcmp (a, "userns") == 0)
    return unshare (CLONE_NEWUSER) == 0;
  if (strcmp (a, "i386") == 0)
    return probe_i386 ();
  if (strncmp (a, "socket=", 7) != 0)
    return false;
  for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
    if (strcmp (a + 7, fam[i].name) == 0 &&
        (fd = socket (fam[i].family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0) {
      close (fd);
      return true;
    }
  return false;
}

/* A test hook (BOOTBACK_SCAN_PROBE=ITEM[:ITEM...]): do what a parser
 * taken over by the guest's bytes would try, after the sandbox line.
 * An ITEM starting with '/' is a host path (probe_path), any other a
 * system call to try (probe_action).  -1 with the error naming the
 * first ITEM reached, 0 if none was. */
static int
child_probe (void)
{
  CLEANUP_FREE char *list = xstrdup (test_hook_env ("BOOTBACK_SCAN_PROBE") ?: "");
  char *item, *save = NULL;

  for (item = strtok_r (list, ":", &save); item;
       item = strtok_r (NULL, ":", &save))
    if (item[0] == '/' ? probe_path (item) : probe_action (item)) {
      error_setx ("scan probe reached %s", item);
      return -1;
    }
  return 0;
}

int
scan_child_main (int argc, char **argv)
{
  static const struct option lo[] = {
    { "sock", required_argument, NULL, 'S' },
    { "scratch", required_argument, NULL, 'T' },
    { "uid", required_argument, NULL, 'u' },
    { "gid", required_argument, NULL, 'g' },
    { "user", required_argument, NULL, 'U' },
    { "rules", required_argument, NULL, 'r' },
    { "sigdir", required_argument, NULL, 's' },
    { "timeout", required_argument, NULL, 't' },
    { "max-file", required_argument, NULL, 'm' },
    { "max-depth", required_argument, NULL, 'D' },
    { "memory", required_argument, NULL, 'M' },
    { "since-time", required_argument, NULL, 'W' },
    { "chunk-size", required_argument, NULL, 'C' },
    { "nchunks", required_argument, NULL, 'N' },
    { 0 }
  };
  struct scan_opts o = { 0 };
  const char *sock = NULL, *scratch = NULL;
  uid_t uid = 0;
  gid_t gid = 0;
  bool since = false, have_uid = false, have_gid = false;
  FILE *out;
  struct nbd_handle *nbd;
  struct scan_engines *e = NULL;
  uint8_t *changed = NULL;
  int opt, netns = -1, interfaces = 0;

  /* fds 0-2 are /dev/null, the pipe is SCAN_CHILD_OUT_FD and nothing
   * else of the parent's is open (step 0, before the exec) */
  if (fcntl (SCAN_CHILD_OUT_FD, F_SETFD, FD_CLOEXEC) == -1 ||
      !(out = fdopen (SCAN_CHILD_OUT_FD, "w")))
    _exit (1);
  opterr = 0;
  while ((opt = getopt_long (argc, argv, "", lo, NULL)) != -1) {
    const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    switch (opt) {
    case 'S': sock = optarg; break;
    case 'T': scratch = optarg; break;
    case 'u': uid = child_number (out, name, optarg); have_uid = true; break;
    case 'g': gid = child_number (out, name, optarg); have_gid = true; break;
    case 'U': o.user = optarg; break;
    case 'r': o.rules = optarg; break;
    case 's': o.sigdir = optarg; break;
    case 't': o.timeout = child_number (out, name, optarg); break;
    case 'm': o.max_file = child_number (out, name, optarg); break;
    case 'D': o.max_depth = child_number (out, name, optarg); break;
    case 'M': o.memory = child_number (out, name, optarg); break;
    case 'W': o.since_time = child_number (out, name, optarg); since = true; break;
    case 'C': o.chunk_size = child_number (out, name, optarg); break;
    case 'N': o.nchunks = child_number (out, name, optarg); break;
    default:
      error_setx ("scanning process: bad option %s", name);
      goto err;
    }
  }
  /* no --uid is no uid 0: the user to scan as is always named */
  if (!sock || !scratch || !o.user || !have_uid || !have_gid || optind != argc) {
    error_setx ("scanning process: missing or extra arguments");
    goto err;
  }
  if (since && !(o.changed = changed = child_read_changed (o.nchunks)))
    goto err;
  nbd = nbd_create ();
  if (!nbd || nbd_connect_unix (nbd, sock) == -1) {
    error_setx ("NBD %s: %s", sock, nbd_get_error ());
    goto err;
  }
  if (!(e = engines_load (&o))) {
    json_t *j = json_pack ("{s:s, s:s, s:b}", "kind", "error", "error",
                           error_msg (), "rules", 1);
    char *t = j ? json_dumps (j, JSON_COMPACT) : NULL;
    fprintf (out, "%s\n", t ? t : "");
    fflush (out);
    _exit (1);
  }
  if (drop_privileges (&o, uid, gid, scratch, &netns, &interfaces) == -1 ||
      engines_tmpdir (e, scratch) == -1)
    goto err;
  crash_step (10);                      /* a test hook */
  /* what the report says of the sandbox is what the kernel says now,
   * before any guest byte is parsed: the parent trusts this line alone
   * (sandbox_holds) */
  fprintf (out, "{\"kind\":\"sandbox\",\"uid\":%d,\"euid\":%d,"
           "\"no_new_privs\":%d,\"session_leader\":%d,\"tty\":%d,"
           "\"interfaces\":%d,\"netns\":%" PRIu64 ",\"private_root\":%d,"
           "\"seccomp\":%d}\n",
           (int) getuid (), (int) geteuid (),
           prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), getsid (0) == getpid (),
           isatty (0) || isatty (1) || isatty (2), interfaces,
           fd_inode (netns), root_is_private (),
           prctl (PR_GET_SECCOMP, 0, 0, 0, 0));
  if (child_probe () == -1 || walk_disk (nbd, &o, e, out) == -1)
    goto err;
  engines_free (e);
  nbd_close (nbd);
  free (changed);
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

/* Does the child's sandbox line (written after it dropped, before it
 * read a guest byte) show the sandbox holds: another uid than ours and
 * not root, no_new_privs, a network namespace of its own with loopback
 * alone, a private root (private_root), a seccomp filter?  Run by a
 * user other than root, the child could neither change uid nor make a
 * namespace, and before, it went on to parse the guest's disk with that
 * user's uid and network.  NULL if it holds, else why not. */
static const char *
sandbox_holds (json_t *sb)
{
  json_int_t uid = json_integer_value (json_object_get (sb, "uid"));
  json_int_t euid = json_integer_value (json_object_get (sb, "euid"));
  json_int_t ns = json_integer_value (json_object_get (sb, "netns"));

  /* a missing or non-integer field reads as 0 */
  if (uid == 0 || euid == 0 || uid != euid ||
      uid == (json_int_t) getuid () || uid == (json_int_t) geteuid () ||
      json_integer_value (json_object_get (sb, "no_new_privs")) != 1)
    return "the scan sandbox could not drop privileges: run as root";
  if (!ns || ns == (json_int_t) netns_inode () ||
      json_integer_value (json_object_get (sb, "interfaces")) != 1)
    return "the scan sandbox could not make a network namespace: run as root";
  if (json_integer_value (json_object_get (sb, "private_root")) != 1)
    return "the scan sandbox could not make a private file system view: "
      "run as root";
  /* 2: a filter (SECCOMP_MODE_FILTER) */
  if (json_integer_value (json_object_get (sb, "seccomp")) != 2)
    return "the scan sandbox could not filter its system calls (seccomp): "
      "the kernel needs seccomp filters";
  return NULL;
}

/* The child's lines into the disk's result.  -1 if it reported an error,
 * or wrote a partition or a match before a sandbox line that holds. */
static int
collect (json_t *res, char *buf, bool *rules_bad)
{
  char *line, *save = NULL;
  const char *weak = "the scanning process did not report its sandbox";

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
    if (strcmp (kind, "sandbox") == 0) {
      /* the first one only: a later one comes after guest bytes */
      if (json_object_get (res, "sandbox")) {
        error_setx ("the scanning process reported its sandbox twice");
        return -1;
      }
      json_object_set (res, "sandbox", o);
      if ((weak = sandbox_holds (o))) {
        error_setx ("%s", weak);
        return -1;
      }
    }
    else if (weak) {
      error_setx ("%s", weak);
      return -1;
    }
    else
      json_array_append (json_object_get (res, strcmp (kind, "match") == 0
                                        ? "matches" : "partitions"), o);
    json_object_del (o, "kind");    /* frees kind */
  }
  return 0;
}

/* The scanning process's command line, built before the fork: this very
 * program (/proc/self/exe, read here: valgrind answers with its guest's)
 * run as `bootback scan-child OPTIONS`.  NULL with the error.  Free with
 * strv_free. */
static char **
child_argv (const struct scan_opts *o, const char *sock, const char *scratch,
            const struct passwd *pw)
{
  char exe[PATH_MAX], **argv = xcalloc (40, sizeof *argv);
  const char *del = " (deleted)";            /* replaced while we run */
  ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  size_t k = 0;

  if (n <= 0) {
    error_set (errno, "cannot find this program (/proc/self/exe) to scan with");
    free (argv);
    return NULL;
  }
  exe[n] = '\0';
  if ((size_t) n > strlen (del) && strcmp (exe + n - strlen (del), del) == 0)
    exe[n - strlen (del)] = '\0';
  argv[k++] = xstrdup (exe);
  argv[k++] = xstrdup (SCAN_CHILD_COMMAND);
  argv[k++] = xasprintf ("--sock=%s", sock);
  argv[k++] = xasprintf ("--scratch=%s", scratch);
  argv[k++] = xasprintf ("--uid=%u", (unsigned) pw->pw_uid);
  argv[k++] = xasprintf ("--gid=%u", (unsigned) pw->pw_gid);
  argv[k++] = xasprintf ("--user=%s", pw->pw_name);
  argv[k++] = xasprintf ("--timeout=%u", o->timeout);
  argv[k++] = xasprintf ("--max-file=%" PRIu64, o->max_file);
  argv[k++] = xasprintf ("--max-depth=%u", o->max_depth);
  argv[k++] = xasprintf ("--memory=%" PRIu64, o->memory);
  if (o->rules)
    argv[k++] = xasprintf ("--rules=%s", o->rules);
  if (o->sigdir)
    argv[k++] = xasprintf ("--sigdir=%s", o->sigdir);
  if (o->changed) {
    argv[k++] = xasprintf ("--since-time=%" PRId64, MAX (o->since_time, 0));
    argv[k++] = xasprintf ("--chunk-size=%" PRIu32, o->chunk_size);
    argv[k++] = xasprintf ("--nchunks=%" PRIu64, o->nchunks);
  }
  return argv;
}

/* Its environment: nothing of ours (the secrets, the web server's
 * tokens), only what a program needs, and the test hooks it honours
 * (crash_step, child_probe, BOOTBACK_SCAN_SHARED_ROOT,
 * BOOTBACK_SCAN_NO_SECCOMP; never in an installed build). */
static char **
child_envp (void)
{
  char **envp = xcalloc (10, sizeof *envp);
  const char *v;
  size_t k = 0;

  envp[k++] = xstrdup ("PATH=/usr/bin:/bin");
  envp[k++] = xstrdup ("LC_ALL=C");
  if ((v = test_hook_env ("BOOTBACK_STOP_STEP")))
    envp[k++] = xasprintf ("BOOTBACK_STOP_STEP=%s", v);
  if ((v = test_hook_env ("BOOTBACK_CRASH_STEP")))
    envp[k++] = xasprintf ("BOOTBACK_CRASH_STEP=%s", v);
  if ((v = test_hook_env ("BOOTBACK_SCAN_PROBE")))
    envp[k++] = xasprintf ("BOOTBACK_SCAN_PROBE=%s", v);
  if ((v = test_hook_env ("BOOTBACK_SCAN_SHARED_ROOT")))
    envp[k++] = xasprintf ("BOOTBACK_SCAN_SHARED_ROOT=%s", v);
  if ((v = test_hook_env ("BOOTBACK_SCAN_NO_SECCOMP")))
    envp[k++] = xasprintf ("BOOTBACK_SCAN_NO_SECCOMP=%s", v);
  return envp;
}

/* The --since bitmap in a memfd (read from its start), or -1 with the
 * error. */
static int
changed_memfd (const struct scan_opts *o)
{
  int fd = memfd_create ("bootback-scan-changed", MFD_CLOEXEC);
  uint64_t done = 0;

  if (fd == -1) {
    error_set (errno, "memfd_create");
    return -1;
  }
  while (done < o->nchunks) {
    ssize_t n = write (fd, o->changed + done, MIN (o->nchunks - done,
                                                  (uint64_t) 1 << 30));
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0) {
      error_set (n == 0 ? EIO : errno, "the --since chunk map");
      close (fd);
      return -1;
    }
    done += n;
  }
  if (lseek (fd, 0, SEEK_SET) == -1) {
    error_set (errno, "the --since chunk map");
    close (fd);
    return -1;
  }
  return fd;
}

/* fd moved to 10 or above (close-on-exec), or -1 with the error (fd
 * closed either way). */
static int
move_fd (int fd)
{
  int hi = fcntl (fd, F_DUPFD_CLOEXEC, 10);

  if (hi == -1)
    error_set (errno, "fcntl");
  close (fd);
  return hi;
}

/* What the child writes if exec fails, up to the reason (which it
 * appends, then '"}' and a newline): a JSON line of kind "error". */
static char *
child_fail_prefix (const char *exe)
{
  CLEANUP_FREE char *msg = xasprintf ("cannot run %s: ", exe);
  json_auto_t *j = json_string (msg);
  CLEANUP_FREE char *q = j ? json_dumps (j, JSON_ENCODE_ANY) : NULL;

  if (!q)
    return xstrdup ("{\"kind\":\"error\",\"error\":\"cannot run the scanner: ");
  q[strlen (q) - 1] = '\0';                  /* the closing quote */
  return xasprintf ("{\"kind\":\"error\",\"error\":%s", q);
}

/* In the child, between fork and exec (only async-signal-safe calls):
 * the pipe on SCAN_CHILD_OUT_FD, the bitmap (or nothing) on
 * SCAN_CHILD_MAP_FD, both >= 10 here, nothing else open (step 0). */
static void __attribute__((noreturn))
child_exec (char *const argv[], char *const envp[], int out, int map,
            const char *fail)
{
  const char *desc, *parts[3];

  child_detach ();
  if (dup2 (out, SCAN_CHILD_OUT_FD) == -1 ||
      (map >= 0 && dup2 (map, SCAN_CHILD_MAP_FD) == -1))
    _exit (1);
  close_range (map >= 0 ? SCAN_CHILD_MAP_FD + 1 : SCAN_CHILD_OUT_FD + 1, ~0u, 0);
  execve (argv[0], argv, envp);
  desc = strerrordesc_np (errno);          /* a table: no locale, no lock */
  parts[0] = fail;
  parts[1] = desc ? desc : "unknown error";
  parts[2] = "\"}\n";
  for (size_t i = 0; i < 3; i++) {
    ssize_t r = write (SCAN_CHILD_OUT_FD, parts[i], strlen (parts[i]));
    (void) r;                                    /* nothing to do if lost */
  }
  _exit (127);
}

json_t *
scan_disk (const struct scan_opts *o, const char *sock, const char *disk,
           bool *rules_bad)
{
  struct passwd *pw = getpwnam (o->user ? o->user : "nobody");
  char scratch[] = "/tmp/bootback-scan.XXXXXX";
  CLEANUP_FREE char *buf = NULL;
  json_auto_t *res = NULL;
  CLEANUP_STRV char **argv = NULL, **envp = NULL;
  CLEANUP_FREE char *fail = NULL;
  int pfd[2], st = 0, rc, map = -1;
  size_t len;
  pid_t pid = -1;

  if (!pw) {
    error_setx ("no user %s to scan as", o->user ? o->user : "nobody");
    return NULL;
  }
  if (scratch_make (scratch, pw->pw_uid, pw->pw_gid) == -1)
    return NULL;
  if (!(argv = child_argv (o, sock, scratch, pw))) {
    scratch_remove (scratch);
    return NULL;
  }
  envp = child_envp ();
  fail = child_fail_prefix (argv[0]);
  /* both fds at 10 and up: the child's dup2 to 3 and 4 overwrites
   * neither */
  if ((o->changed && (map = changed_memfd (o)) == -1) ||
      (map >= 0 && (map = move_fd (map)) == -1)) {
    scratch_remove (scratch);
    return NULL;
  }
  if (pipe2 (pfd, O_CLOEXEC) == -1) {
    error_set (errno, "pipe");
    pfd[0] = pfd[1] = -1;
  }
  else if ((pfd[1] = move_fd (pfd[1])) >= 0 && (pid = fork ()) == -1)
    error_set (errno, "fork");
  if (pfd[1] < 0 || pid == -1) {
    if (pfd[0] >= 0)
      close (pfd[0]);
    if (pfd[1] >= 0)
      close (pfd[1]);
    if (map >= 0)
      close (map);
    scratch_remove (scratch);
    return NULL;
  }
  if (pid == 0)
    child_exec (argv, envp, pfd[1], map, fail);
  close (pfd[1]);
  if (map >= 0)
    close (map);
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
