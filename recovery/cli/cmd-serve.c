/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback serve, mount, umount: a restore point as an NBD export on a
 * private unix socket, and file-level restore by mounting its filesystem
 * read-only (nbdkit + the bootback plugin, nbdfuse, a loop mount).
 *
 * A mount keeps its state in $BOOTBACK_HOME/mounts/<hash of DIR>/ (0700):
 * nbd.sock, nbdkit.pid, fuse/ (nbdfuse's mount point), fuse.pid, target.
 * umount undoes it in reverse order.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "recovery/cli/cli.h"

static const char serve_usage[] =
  "usage: bootback serve VM[@TIME] [--disk NAME] [--socket PATH] [--background]\n"
  "\n"
  "Serve one disk of a restore point, read-only, over NBD on a unix socket\n"
  "in a private (0700) directory, and print the NBD URI to use.  Runs until\n"
  "interrupted, or in the background with --background (stop it with\n"
  "kill $(cat DIR/nbdkit.pid)).\n";

static const char mount_usage[] =
  "usage: bootback mount VM[@TIME] DIR [--disk NAME] [--partition N]\n"
  "       bootback umount DIR\n"
  "\n"
  "File-level restore: mount the filesystem of a restore point's disk (or\n"
  "of partition N of it) read-only on DIR.  'bootback umount DIR' unmounts\n"
  "it and stops everything mount started.\n";

static const char umount_usage[] =
  "usage: bootback umount DIR\n"
  "\n"
  "Unmount what 'bootback mount' mounted on DIR and stop its nbdfuse and\n"
  "nbdkit.\n";

/* Resolve VM[@TIME] and the disk (the only one, if not given). */
static int
resolve (struct cli *c, const char *spec, const char **disk, char vm[129],
         char id[17], char disk_out[65])
{
  struct repo_manifest m;

  if (cli_repo (c) == -1)
    return -1;
  if (repo_point_resolve (c->repo, spec, vm, id) == -1 ||
      repo_manifest_read (c->repo, vm, id, &m) == -1) {
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
  snprintf (disk_out, 65, "%s", *disk);
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

static pid_t
read_pid (const char *path)
{
  FILE *f = fopen (path, "re");
  int pid = 0;

  if (f) {
    if (fscanf (f, "%d", &pid) != 1)
      pid = 0;
    fclose (f);
  }
  return pid;
}

static void
kill_and_wait (pid_t pid)
{
  int i;

  if (pid <= 0 || kill (pid, SIGTERM) == -1)
    return;
  for (i = 0; i < 300 && kill (pid, 0) == 0; i++) {
    waitpid (pid, NULL, WNOHANG);
    usleep (10000);
  }
  if (kill (pid, 0) == 0)
    kill (pid, SIGKILL);
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
 * on sock, and hold the point for it (what: who, for prune's message).
 * In the background (it forks once the socket listens and writes
 * pidfile), or in the foreground replacing this process. */
static int
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
  rc = run_command (argv, out, sizeof out);
  if (rc != 0) {
    cli_error ("nbdkit could not serve %s@%s disk %s: %s", vm, id, disk,
               rc == -1 ? error_msg () : out);
    return -1;
  }
  if (hold_served (c, vm, id, read_pid (pidfile), what) == -1) {
    kill_and_wait (read_pid (pidfile));
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
  char vm[129], id[17], dname[65], dir[PATH_MAX], sockbuf[PATH_MAX + 16],
    pidfile[PATH_MAX + 16];
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
  if (sock) {
    snprintf (sockbuf, sizeof sockbuf, "%s", sock);
    snprintf (dir, sizeof dir, "%s", sock);
    char *slash = strrchr (dir, '/');
    if (slash) *slash = '\0'; else strcpy (dir, ".");
  }
  else {
    snprintf (dir, sizeof dir, "/tmp/bootback-serve.XXXXXX");
    if (!mkdtemp (dir)) {
      cli_error ("mkdtemp: %s", strerror (errno));
      return 1;
    }
    snprintf (sockbuf, sizeof sockbuf, "%s/nbd.sock", dir);
  }
  chmod (dir, 0700);
  unlink (sockbuf);          /* nbdkit 1.32 leaves its socket behind */
  snprintf (pidfile, sizeof pidfile, "%s/nbdkit.pid", dir);
  printf ("serving %s@%s disk %s read-only\nNBD URI: nbd+unix:///?socket=%s\n",
          vm, id, dname, sockbuf);
  if (bg) {
    if (start_nbdkit (c, vm, id, dname, 0, sockbuf, pidfile, false,
                      "bootback serve") == -1)
      return 1;
    printf ("nbdkit pid %d (pid file %s)\n", (int) read_pid (pidfile), pidfile);
    return 0;
  }
  printf ("press Ctrl-C to stop\n");
  fflush (stdout);
  start_nbdkit (c, vm, id, dname, 0, sockbuf, pidfile, true, "bootback serve");
  return 1;
}

/* The state directory of a mount on dir (absolute). */
static void
mount_state (struct cli *c, const char *dir, char *out, size_t len)
{
  uint8_t d[REPO_DIGEST_LEN];
  char hex[2 * REPO_DIGEST_LEN + 1];

  repo_sha256 (dir, strlen (dir), d);
  hex_encode (d, 8, hex);
  snprintf (out, len, "%s/mounts/%s", c->home, hex);
}

static int
do_umount (const char *state, const char *target, bool quiet)
{
  char fuse[PATH_MAX + 16], path[PATH_MAX + 16], out[1024];
  int i, rc;

  if (target) {
    char *um[] = { "umount", (char *) target, NULL };
    rc = run_command (um, out, sizeof out);
    if (rc != 0 && !quiet) {
      cli_error ("umount %s: %s", target, rc == -1 ? error_msg () : out);
      return -1;
    }
  }
  snprintf (fuse, sizeof fuse, "%s/fuse", state);
  for (i = 0; i < 50; i++) {
    char *fu[] = { "fusermount3", "-u", fuse, NULL };
    rc = run_command (fu, out, sizeof out);
    if (rc == 0 || !strstr (out, "busy"))
      break;
    usleep (100000);
  }
  snprintf (path, sizeof path, "%s/fuse.pid", state);
  kill_and_wait (read_pid (path));
  unlink (path);
  snprintf (path, sizeof path, "%s/nbdkit.pid", state);
  kill_and_wait (read_pid (path));
  unlink (path);
  rmdir (fuse);
  snprintf (path, sizeof path, "%s/nbd.sock", state);
  unlink (path);
  snprintf (path, sizeof path, "%s/target", state);
  unlink (path);
  rmdir (state);
  return 0;
}

int
cmd_mount (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "disk", required_argument, NULL, 'd' },
    { "partition", required_argument, NULL, 'p' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  const char *disk = NULL;
  char vm[129], id[17], dname[65], target[PATH_MAX], state[PATH_MAX],
    sock[PATH_MAX + 16], pidfile[PATH_MAX + 16], fuse[PATH_MAX + 16],
    fusepid[PATH_MAX + 16], dev[PATH_MAX + 32], uri[PATH_MAX + 48],
    out[4096], path[PATH_MAX + 16];
  int opt, partition = 0, rc;
  pid_t pid;
  FILE *f;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': disk = optarg; break;
    case 'p': partition = cli_int_arg ("--partition", optarg); break;
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
  mount_state (c, target, state, sizeof state);
  snprintf (path, sizeof path, "%s/mounts", c->home);
  mkdir (path, 0700);
  if (mkdir (state, 0700) == -1) {
    cli_error ("%s: %s", state, errno == EEXIST
               ? "something is mounted there by bootback already (bootback umount it)"
               : strerror (errno));
    return 1;
  }
  snprintf (sock, sizeof sock, "%s/nbd.sock", state);
  snprintf (pidfile, sizeof pidfile, "%s/nbdkit.pid", state);
  snprintf (fuse, sizeof fuse, "%s/fuse", state);
  snprintf (fusepid, sizeof fusepid, "%s/fuse.pid", state);
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s", sock);
  snprintf (path, sizeof path, "%s/target", state);
  if ((f = fopen (path, "we")) != NULL) {
    fprintf (f, "%s\n%s@%s %s\n", target, vm, id, dname);
    fclose (f);
  }
  mkdir (fuse, 0700);

  /* 1. nbdkit, in the background */
  if (start_nbdkit (c, vm, id, dname, partition, sock, pidfile, false,
                    "bootback mount") == -1)
    goto err;
  /* 2. nbdfuse: the export as the file fuse/nbd */
  pid = fork ();
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
    goto err;
  }
  /* 3. a read-only loop mount of the filesystem */
  snprintf (dev, sizeof dev, "%s/nbd", fuse);
  {
    char *mv[] = { "mount", "-o", "ro,noload,loop", dev, target, NULL };
    char *mv2[] = { "mount", "-o", "ro,loop", dev, target, NULL };
    rc = run_command (mv, out, sizeof out);
    if (rc != 0)          /* not ext*: no "noload" */
      rc = run_command (mv2, out, sizeof out);
    if (rc != 0) {
      cli_error ("cannot mount %s@%s disk %s%s%.0d on %s: %s%s", vm, id, dname,
                 partition ? " partition " : "", partition, target,
                 rc == -1 ? error_msg () : out,
                 partition ? "" : " (a partitioned disk needs --partition N)");
      goto err;
    }
  }
  printf ("mounted %s@%s disk %s%s%.0d read-only on %s\n", vm, id, dname,
          partition ? " partition " : "", partition, target);
  return 0;
 err:
  do_umount (state, NULL, true);
  return 1;
}

int
cmd_umount (struct cli *c, int argc, char **argv)
{
  char target[PATH_MAX], state[PATH_MAX];
  struct stat st;

  if (argc == 2 && strcmp (argv[1], "--help") == 0)
    cli_usage (umount_usage);
  if (argc != 2)
    cli_bad_usage (umount_usage);
  if (!realpath (argv[1], target)) {
    cli_error ("%s: %s", argv[1], strerror (errno));
    return 1;
  }
  mount_state (c, target, state, sizeof state);
  if (stat (state, &st) == -1) {
    cli_error ("%s: not mounted by bootback", target);
    return 1;
  }
  if (do_umount (state, target, false) == -1)
    return 1;
  printf ("unmounted %s\n", target);
  return 0;
}
