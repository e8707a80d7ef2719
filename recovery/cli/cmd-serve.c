/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback serve, mount, umount: a restore point as an NBD export on a
 * private unix socket, and file-level restore by mounting its filesystem
 * read-only (nbdkit + the bootback plugin, nbdfuse, a file-system reader).
 *
 * A restore point's disk is whatever the guest (maybe an attacker's) wrote
 * there, so neither command lets it act on the host:
 *
 *  - serve never changes a directory it did not create: without --socket
 *    the socket goes into a new 0700 directory; with --socket PATH only
 *    PATH is created (nbdkit makes it 0755: only its owner may connect),
 *    an existing PATH is replaced only if it is a stale socket of ours,
 *    and the pid file goes into bootback's own new directory, never next
 *    to PATH.
 *
 *  - mount reads only file-system types of an allow-list (blkid names the
 *    type; bootback never lets mount(8) guess) and mounts them
 *    nosuid,nodev,noexec and read-only: a setuid file or a device node of
 *    the guest gives nothing on the host.  ext2/3/4 are read by fuse2fs and
 *    NTFS by ntfs-3g, in user space, so the host kernel never parses the
 *    guest's metadata; a crafted superblock can at worst crash that
 *    process.  vfat, xfs and btrfs have no user-space reader in Debian 12:
 *    they are mounted by the host kernel only with --kernel-mount, the
 *    administrator's choice (a kernel file-system bug reachable from crafted
 *    metadata is a host compromise).  Journals are not replayed
 *    (norecovery).  Any other type is refused, naming it.  The files of a
 *    user-space mount are the mounting user's alone (no allow_other; for
 *    ntfs-3g, whose defaults have it, no_def_opts), vfat's 0700.
 *
 * A mount keeps its state in $BOOTBACK_HOME/mounts/<hash of DIR>/ (0700):
 * nbd.sock, nbdkit.pid, fuse/ (nbdfuse's mount point), fuse.pid, target.
 * The pid files say "PID START" (pid_file_stamp): umount signals a process
 * only if it still is the one mount started (pid_stop), so a stale pid
 * file never stops someone else's process.  umount undoes it all in
 * reverse order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "recovery/cli/cli.h"

static const char serve_usage[] =
  "usage: bootback serve VM[@TIME] [--disk NAME] [--socket PATH] [--background]\n"
  "\n"
  "Serve one disk of a restore point, read-only, over NBD on a unix socket\n"
  "in a new private (0700) directory, or at PATH, and print the NBD URI\n"
  "to use.  An existing PATH must be a stale socket of this user; its\n"
  "directory is left as it is.  Runs until interrupted, or in the\n"
  "background with --background (stop it with kill $(cat PIDFILE)).\n";

static const char mount_usage[] =
  "usage: bootback mount VM[@TIME] DIR [--disk NAME] [--partition N]\n"
  "                     [--kernel-mount]\n"
  "       bootback umount DIR\n"
  "\n"
  "File-level restore: mount the filesystem of a restore point's disk (or\n"
  "of partition N of it) read-only, nosuid, nodev and noexec on DIR.\n"
  "ext2/3/4 are read by fuse2fs and ntfs by ntfs-3g (user space); vfat, xfs\n"
  "and btrfs only with --kernel-mount (the host kernel parses the guest's\n"
  "metadata); other types are refused.  'bootback umount DIR' unmounts it\n"
  "and stops everything mount started.\n";

static const char umount_usage[] =
  "usage: bootback umount DIR\n"
  "\n"
  "Unmount what 'bootback mount' mounted on DIR and stop its nbdfuse and\n"
  "nbdkit.\n";

/* Resolve VM[@TIME] and the disk (the only one, if not given). */
static int
resolve (struct cli *c, const char *spec, const char **disk,
         char vm[VM_NAME_MAX + 1], char id[TIMESTAMP_LEN + 1],
         char disk_out[DISK_NAME_MAX + 1])
{
  struct repo_manifest m;

  if (cli_repo (c) == -1)
    return -1;
  if (repo_point_resolve_read (c->repo, spec, vm, id, &m) == -1) {
    cli_perror ();
    return -1;
  }
  if (!*disk) {
    if (m.ndisks != 1) {
      cli_error ("%s@%s has %zu disks; choose one with --disk", vm, id,
                 m.ndisks);
      return -1;
    }
    *disk = m.disks[0].name;
  }
  snprintf (disk_out, DISK_NAME_MAX + 1, "%s", *disk);
  *disk = disk_out;
  return 0;
}

/* Wait until path exists and is non-empty (a pid file), or pid dies. */
static int
wait_for_file (const char *path, pid_t pid, double secs)
{
  struct stat st;
  double t0 = now_monotonic ();

  while (now_monotonic () - t0 < secs) {
    if (stat (path, &st) == 0 && st.st_size > 0)
      return 0;
    if (pid > 0 && waitpid (pid, NULL, WNOHANG) == pid)
      return -1;
    usleep (10000);
  }
  return -1;
}

/* What only the nbdkit of a mount has in its command line (nbdfuse's has
 * the socket too, in its URI). */
static char *
nbdkit_needle (const char *sock)
{
  return xasprintf ("-U %s ", sock);
}

/* A point being served is in use: hold it (holds/ in the repository) for
 * as long as process pid (the nbdkit) lives, so prune keeps it.  The
 * hold is not removed when nbdkit stops: a dead process's hold is stale,
 * and the next prune on this host removes it. */
static int
hold_served (struct cli *c, const char *vm, const char *id, pid_t pid,
             const char *what)
{
  struct repo_hold h = { .pid = pid };

  snprintf (h.vm, sizeof h.vm, "%s", vm);
  snprintf (h.id, sizeof h.id, "%s", id);
  snprintf (h.owner, sizeof h.owner, "%s (nbdkit pid %d)", what, (int) pid);
  if (repo_hold_add (c->repo, &h) == -1) {
    if (!repo_hold_unwritable (error_errno ())) {
      cli_perror ();
      return -1;
    }
    fprintf (stderr, "bootback: warning: %s@%s is served without a hold (%s): "
             "a prune may remove it meanwhile\n", vm, id, error_msg ());
  }
  return 0;
}

/* Start nbdkit serving vm@id disk (partition > 0: that partition of it)
 * on sock, and hold the point for it (what: who, for prune's message;
 * NULL in the background: no hold, nothing written to the repository).
 * In the background (it forks once the socket listens and writes
 * pidfile), or in the foreground replacing this process (cli.h). */
int
start_nbdkit (struct cli *c, const char *vm, const char *id, const char *disk,
              int partition, const char *sock, const char *pidfile,
              bool foreground, const char *what)
{
  char plugin[PATH_MAX], repo[PATH_MAX + 8], point[200], diskarg[80],
    part[32], out[4096];
  char *argv[20];
  int n = 0, rc;

  bootback_plugin_path (plugin, sizeof plugin);
  snprintf (repo, sizeof repo, "repo=%s", repo_location (c->repo));
  snprintf (point, sizeof point, "point=%s@%s", vm, id);
  snprintf (diskarg, sizeof diskarg, "disk=%s", disk);
  snprintf (part, sizeof part, "partition=%d", partition);
  argv[n++] = "nbdkit";
  argv[n++] = "--threads=4";
  argv[n++] = "-U";
  argv[n++] = (char *) sock;
  argv[n++] = "-P";
  argv[n++] = (char *) pidfile;
  if (foreground)
    argv[n++] = "-f";
  if (partition > 0)
    argv[n++] = "--filter=partition";
  argv[n++] = plugin;
  argv[n++] = repo;
  argv[n++] = point;
  argv[n++] = diskarg;
  if (partition > 0)
    argv[n++] = part;
  argv[n] = NULL;
  if (foreground) {
    /* exec keeps the pid: the hold lives as long as nbdkit */
    if (hold_served (c, vm, id, getpid (), what) == -1)
      return -1;
    execvp ("nbdkit", argv);
    cli_error ("nbdkit: %s", strerror (errno));
    return -1;
  }
  rc = run_command_flags (argv, out, sizeof out, 0, SPAWN_KEEP_SECRETS);
  if (rc == 0 && wait_for_file (pidfile, 0, 30) == -1) {
    rc = -1;
    error_setx ("no pid in %s", pidfile);
  }
  if (rc != 0) {
    cli_error ("nbdkit could not serve %s@%s disk %s: %s", vm, id, disk,
               rc == -1 ? error_msg () : out);
    return -1;
  }
  if (what &&
      hold_served (c, vm, id, pid_file_read (pidfile, NULL), what) == -1) {
    CLEANUP_FREE char *needle = nbdkit_needle (sock);
    pid_stop (pid_file_read (pidfile, NULL), 0, needle, 3);
    return -1;
  }
  return 0;
}

/* --socket PATH: bootback creates PATH and changes nothing else there.  An
 * existing PATH is replaced only if it is a socket of this user that no
 * server listens on (nbdkit 1.32 leaves its socket behind when it stops). */
static int
socket_path_free (const char *path)
{
  struct stat st;

  if (strlen (path) >= sizeof ((struct sockaddr_un *) 0)->sun_path) {
    cli_error ("--socket %s: too long for a unix socket (at most %zu bytes)",
               path, sizeof ((struct sockaddr_un *) 0)->sun_path - 1);
    return -1;
  }
  if (lstat (path, &st) == -1) {
    if (errno == ENOENT)
      return 0;
    cli_error ("--socket %s: %s", path, strerror (errno));
    return -1;
  }
  if (!S_ISSOCK (st.st_mode)) {
    cli_error ("--socket %s: exists and is not a socket (not replacing it)",
               path);
    return -1;
  }
  if (st.st_uid != geteuid ()) {
    cli_error ("--socket %s: a socket of uid %u, not ours (not replacing it)",
               path, (unsigned) st.st_uid);
    return -1;
  }
  if (unix_socket_serves (path)) {
    cli_error ("--socket %s: a server is listening on it", path);
    return -1;
  }
  if (unlink (path) == -1) {
    cli_error ("--socket %s: %s", path, strerror (errno));
    return -1;
  }
  return 0;
}

int
cmd_serve (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "disk", required_argument, NULL, 'd' },
    { "socket", required_argument, NULL, 's' },
    { "background", no_argument, NULL, 'b' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  const char *disk = NULL, *sock = NULL;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], dname[DISK_NAME_MAX + 1],
    dir[PATH_MAX], sockbuf[PATH_MAX + 16], pidfile[PATH_MAX + 16];
  bool bg = false;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': disk = optarg; break;
    case 's': sock = optarg; break;
    case 'b': bg = true; break;
    case 'h': cli_usage (serve_usage);
    default: cli_bad_usage (serve_usage);
    }
  }
  if (optind != argc - 1)
    cli_bad_usage (serve_usage);
  if (resolve (c, argv[optind], &disk, vm, id, dname) == -1)
    return 1;
  if (sock && socket_path_free (sock) == -1)
    return 1;
  /* Our own directory (0700) for the pid file, and the socket unless
   * --socket puts it elsewhere. */
  snprintf (dir, sizeof dir, "/tmp/bootback-serve.XXXXXX");
  if (!mkdtemp (dir)) {
    cli_error ("mkdtemp: %s", strerror (errno));
    return 1;
  }
  snprintf (sockbuf, sizeof sockbuf, "%s", sock ? sock : dir);
  if (!sock)
    strcat (sockbuf, "/nbd.sock");
  snprintf (pidfile, sizeof pidfile, "%s/nbdkit.pid", dir);
  printf ("serving %s@%s disk %s read-only\nNBD URI: nbd+unix:///?socket=%s\n",
          vm, id, dname, sockbuf);
  if (bg) {
    if (start_nbdkit (c, vm, id, dname, 0, sockbuf, pidfile, false,
                      "bootback serve") == -1)
      return 1;
    printf ("nbdkit pid %d (pid file %s)\n", (int) pid_file_read (pidfile, NULL),
            pidfile);
    return 0;
  }
  printf ("press Ctrl-C to stop\n");
  fflush (stdout);
  start_nbdkit (c, vm, id, dname, 0, sockbuf, pidfile, true, "bootback serve");
  return 1;
}

/* The state directory of a mount and its files (see the top of this
 * file): what mount's steps and umount share. */
struct mount_files {
  char state[PATH_MAX];
  char sock[PATH_MAX + 16], pidfile[PATH_MAX + 16], fuse[PATH_MAX + 16],
    fusepid[PATH_MAX + 16], dev[PATH_MAX + 32], target[PATH_MAX + 16];
};

/* The files of a mount on dir (absolute). */
static void
mount_files (struct cli *c, const char *dir, struct mount_files *m)
{
  uint8_t d[REPO_DIGEST_LEN];
  char hex[2 * REPO_DIGEST_LEN + 1];
  const char *state = m->state;

  repo_sha256 (dir, strlen (dir), d);
  hex_encode (d, 8, hex);
  snprintf (m->state, sizeof m->state, "%s/mounts/%s", c->home, hex);
  snprintf (m->sock, sizeof m->sock, "%s/nbd.sock", state);
  snprintf (m->pidfile, sizeof m->pidfile, "%s/nbdkit.pid", state);
  snprintf (m->fuse, sizeof m->fuse, "%s/fuse", state);
  snprintf (m->fusepid, sizeof m->fusepid, "%s/fuse.pid", state);
  snprintf (m->dev, sizeof m->dev, "%s/nbd", m->fuse);
  snprintf (m->target, sizeof m->target, "%s/target", state);
}

/* Stop the process of one of a mount's pid files, if it still is the one
 * the mount started (its command line has needle, same start time). */
static void
stop_pidfile (const char *path, const char *needle, const char *what,
              bool quiet)
{
  unsigned long long start;
  pid_t pid = pid_file_read (path, &start);

  /* Not stopped, yet alive (a zombie, whose command line is empty, is not
   * alive): someone else's. */
  if (pid > 0 && pid_stop (pid, start, needle, 5) == 0 &&
      pid_matches (pid, 0, NULL) && !quiet)
    fprintf (stderr, "bootback: warning: %s names process %d, which is not "
             "the %s this mount started: left alone\n", path, (int) pid, what);
  unlink (path);
}

static int
do_umount (const struct mount_files *m, const char *target, bool quiet)
{
  char out[1024];
  CLEANUP_FREE char *needle = NULL;
  int i, rc;

  if (target) {
    char *um[] = { "umount", (char *) target, NULL };
    rc = run_command (um, out, sizeof out);
    if (rc != 0 && !quiet) {
      cli_error ("umount %s: %s", target, rc == -1 ? error_msg () : out);
      return -1;
    }
  }
  /* A user-space reader lets go of fuse/nbd a moment after umount. */
  for (i = 0; i < 50; i++) {
    char *fu[] = { "fusermount3", "-u", (char *) m->fuse, NULL };
    rc = run_command (fu, out, sizeof out);
    if (rc == 0 || !strstr (out, "busy"))
      break;
    usleep (100000);
  }
  stop_pidfile (m->fusepid, m->fuse, "nbdfuse", quiet);
  needle = nbdkit_needle (m->sock);
  stop_pidfile (m->pidfile, needle, "nbdkit", quiet);
  rmdir (m->fuse);
  unlink (m->sock);
  unlink (m->target);
  rmdir (m->state);
  return 0;
}

/* The file-system types mount reads, and how (see the top of the file). */
static const struct fs_reader {
  const char *type;             /* as blkid names it */
  const char *program;          /* user-space reader; NULL: the host kernel */
  const char *options;
} fs_readers[] = {
  { "ext2", "fuse2fs", "ro,norecovery,nosuid,nodev,noexec" },
  { "ext3", "fuse2fs", "ro,norecovery,nosuid,nodev,noexec" },
  { "ext4", "fuse2fs", "ro,norecovery,nosuid,nodev,noexec" },
  /* ntfs-3g's default options (no_def_opts drops them) include
   * allow_other, and its files are 0777: every user of the host read the
   * guest's files.  Like fuse2fs: only the mounting user. */
  { "ntfs", "ntfs-3g", "ro,nosuid,nodev,noexec,no_def_opts,umask=077" },
  { "vfat", NULL, "ro,nosuid,nodev,noexec,umask=077,loop" },
  { "xfs", NULL, "ro,norecovery,nouuid,nosuid,nodev,noexec,loop" },
  { "btrfs", NULL, "ro,rescue=nologreplay,nosuid,nodev,noexec,loop" },
};

/* The file-system type on dev as blkid's probe says (never mount(8)'s
 * guess) into type.  what names the disk for messages.  -1 if none. */
static int
fs_type (const char *dev, const char *what, char *type, size_t len)
{
  char *argv[] = { "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o",
                   "export", (char *) dev, NULL };
  char out[1024], copy[1024], pttype[64] = "", *line, *save;
  int rc = run_command (argv, out, sizeof out);

  if (rc == -1) {
    cli_error ("%s: %s", what, error_msg ());
    return -1;
  }
  snprintf (copy, sizeof copy, "%s", out);
  *type = '\0';
  for (line = strtok_r (copy, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    if (strncmp (line, "TYPE=", 5) == 0)
      snprintf (type, len, "%s", line + 5);
    else if (strncmp (line, "PTTYPE=", 7) == 0)
      snprintf (pttype, sizeof pttype, "%s", line + 7);
  }
  if (*type && rc == 0)
    return 0;
  if (*pttype)
    cli_error ("%s holds a %s partition table, not a file system: choose a "
               "partition with --partition N", what, pttype);
  else if (rc == 2)
    cli_error ("%s: no file system found", what);
  else
    cli_error ("%s: blkid cannot tell the file system: %s", what, out);
  return -1;
}

/* Mount dev (of type) on target as fs_readers says.  -1 with the error. */
static int
fs_mount (const char *dev, const char *type, const char *what,
          const char *target, bool kernel_ok, const char **reader)
{
  const struct fs_reader *r = NULL;
  char out[4096];
  size_t i;
  int rc;

  for (i = 0; i < sizeof fs_readers / sizeof fs_readers[0]; i++)
    if (strcmp (fs_readers[i].type, type) == 0)
      r = &fs_readers[i];
  if (!r) {
    cli_error ("%s: bootback mount does not read %s file systems (ext2, ext3, "
               "ext4 with fuse2fs, ntfs with ntfs-3g; vfat, xfs, btrfs with "
               "--kernel-mount)", what, type);
    return -1;
  }
  if (!r->program && !kernel_ok) {
    cli_error ("%s: %s has no user-space reader: only --kernel-mount mounts it, "
               "letting the host kernel parse the guest's metadata", what, type);
    return -1;
  }
  *reader = r->program ? r->program : "the host kernel";
  {
    char *user[] = { (char *) r->program, "-o", (char *) r->options,
                     (char *) dev, (char *) target, NULL };
    char *kern[] = { "mount", "-t", (char *) type, "-o", (char *) r->options,
                     (char *) dev, (char *) target, NULL };
    rc = run_command (r->program ? user : kern, out, sizeof out);
  }
  if (rc != 0) {
    cli_error ("cannot mount %s (%s) on %s with %s: %s", what, type, target,
               *reader, rc == -1 ? error_msg () : out);
    return -1;
  }
  return 0;
}

/* nbdfuse: the export on sock as the file fuse/nbd; its pid file stamped. */
static int
start_nbdfuse (const char *fuse, const char *fusepid, const char *sock)
{
  CLEANUP_FREE char *uri = xasprintf ("nbd+unix:///?socket=%s", sock);
  pid_t pid = fork ();

  if (pid == 0) {
    int nul = open ("/dev/null", O_RDWR);
    setsid ();
    if (nul >= 0) { dup2 (nul, 0); dup2 (nul, 1); dup2 (nul, 2); }
    execlp ("nbdfuse", "nbdfuse", "-r", "-P", fusepid, fuse, uri, (char *) NULL);
    _exit (127);
  }
  if (pid == -1 || wait_for_file (fusepid, pid, 30) == -1) {
    cli_error ("nbdfuse could not expose %s (is libnbd-bin installed, and "
               "/dev/fuse there?)", uri);
    return -1;
  }
  if (pid_file_stamp (fusepid, fuse) == -1) {
    cli_perror ();
    return -1;
  }
  return 0;
}

/* mount's state directory, with the file naming what is mounted where
 * and the directory nbdfuse mounts on.  -1 (printed) if bootback mounted
 * something on target already. */
static int
mount_state_create (struct cli *c, const struct mount_files *m,
                    const char *target, const char *point, const char *dname)
{
  char path[PATH_MAX + 16];
  FILE *f;

  snprintf (path, sizeof path, "%s/mounts", c->home);
  mkdir (path, 0700);
  if (mkdir (m->state, 0700) == -1) {
    cli_error ("%s: %s", m->state, errno == EEXIST
               ? "something is mounted there by bootback already (bootback umount it)"
               : strerror (errno));
    return -1;
  }
  if ((f = fopen (m->target, "we")) != NULL) {
    fprintf (f, "%s\n%s %s\n", target, point, dname);
    fclose (f);
  }
  mkdir (m->fuse, 0700);
  return 0;
}

int
cmd_mount (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "disk", required_argument, NULL, 'd' },
    { "partition", required_argument, NULL, 'p' },
    { "kernel-mount", no_argument, NULL, 'k' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  const char *disk = NULL, *reader = NULL;
  CLEANUP_FREE char *needle = NULL;
  char vm[VM_NAME_MAX + 1], id[TIMESTAMP_LEN + 1], dname[DISK_NAME_MAX + 1],
    target[PATH_MAX], point[VM_NAME_MAX + TIMESTAMP_LEN + 2], what[300],
    type[64];
  struct mount_files m;
  int opt, partition = 0;
  bool kernel_ok = false;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': disk = optarg; break;
    case 'p': partition = cli_int_arg ("--partition", optarg); break;
    case 'k': kernel_ok = true; break;
    case 'h': cli_usage (mount_usage);
    default: cli_bad_usage (mount_usage);
    }
  }
  if (optind != argc - 2)
    cli_bad_usage (mount_usage);
  if (!realpath (argv[optind + 1], target)) {
    cli_error ("%s: %s", argv[optind + 1], strerror (errno));
    return 1;
  }
  if (resolve (c, argv[optind], &disk, vm, id, dname) == -1)
    return 1;
  mount_files (c, target, &m);
  snprintf (point, sizeof point, "%s@%s", vm, id);
  if (mount_state_create (c, &m, target, point, dname) == -1)
    return 1;
  snprintf (what, sizeof what, "%s disk %s%s%.0d", point, dname,
            partition ? " partition " : "", partition);

  /* nbdkit in the background, nbdfuse, then the file system's reader */
  if (start_nbdkit (c, vm, id, dname, partition, m.sock, m.pidfile, false,
                    "bootback mount") == -1)
    goto err;
  needle = nbdkit_needle (m.sock);
  if (pid_file_stamp (m.pidfile, needle) == -1) {
    cli_perror ();
    goto err;
  }
  /* nbdkit has them; what reads the guest's file system (nbdfuse, blkid,
   * fuse2fs, ntfs-3g) must not find our secrets in its environment */
  env_unset_secrets ();
  if (start_nbdfuse (m.fuse, m.fusepid, m.sock) == -1 ||
      fs_type (m.dev, what, type, sizeof type) == -1 ||
      fs_mount (m.dev, type, what, target, kernel_ok, &reader) == -1)
    goto err;
  printf ("mounted %s read-only on %s with %s (%s), nosuid,nodev,noexec\n",
          what, target, reader, type);
  return 0;
 err:
  do_umount (&m, NULL, true);
  return 1;
}

int
cmd_umount (struct cli *c, int argc, char **argv)
{
  char target[PATH_MAX];
  struct mount_files m;
  struct stat st;

  if (argc == 2 && strcmp (argv[1], "--help") == 0)
    cli_usage (umount_usage);
  if (argc != 2)
    cli_bad_usage (umount_usage);
  if (!realpath (argv[1], target)) {
    cli_error ("%s: %s", argv[1], strerror (errno));
    return 1;
  }
  mount_files (c, target, &m);
  if (stat (m.state, &st) == -1) {
    cli_error ("%s: not mounted by bootback", target);
    return 1;
  }
  if (do_umount (&m, target, false) == -1)
    return 1;
  printf ("unmounted %s\n", target);
  return 0;
}
