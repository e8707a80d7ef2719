/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qemu-img info and a private qemu-nbd: bootback reads and writes image
 * formats only through QEMU's own code, never a parser of its own.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "recovery/ingest/ingest.h"
#include "recovery/util/util.h"

/* Copy string member name of o (if it is one) into buf. */
static void
json_str (json_t *o, const char *name, char *buf, size_t len)
{
  json_t *v = json_object_get (o, name);

  if (json_is_string (v))
    snprintf (buf, len, "%s", json_string_value (v));
}

/* vmdk: the first extent that is a file other than the image itself. */
static void
vmdk_extent (const char *image, json_t *extents, char *buf, size_t len)
{
  CLEANUP_FREE char *self = realpath (image, NULL);
  json_t *e;
  size_t k;

  json_array_foreach (extents, k, e) {
    const char *f = json_string_value (json_object_get (e, "filename"));
    CLEANUP_FREE char *real = f ? realpath (f, NULL) : NULL;
    if (!f || strcmp (f, image) == 0 ||
        (self && real && strcmp (real, self) == 0))
      continue;
    snprintf (buf, len, "%s", f);
    return;
  }
}

int
qemu_img_info (const char *image, const char *format, struct qemu_img_info *i)
{
  char *argv[8];
  CLEANUP_FREE char *out = xmalloc (65536);
  json_error_t je;
  json_auto_t *o = NULL;
  json_t *f, *s, *data;
  int rc, n = 0;

  argv[n++] = "qemu-img";
  argv[n++] = "info";
  argv[n++] = "--output=json";
  if (format) {                 /* never guess: QEMU's own rule for guests */
    argv[n++] = "-f";
    argv[n++] = (char *) format;
  }
  argv[n++] = "--";
  argv[n++] = (char *) image;
  argv[n] = NULL;
  memset (i, 0, sizeof *i);
  rc = run_command (argv, out, 65536);
  if (rc == -1)
    return -1;
  if (rc != 0) {
    /* qemu-img's message, without its "qemu-img: " prefix. */
    const char *m = strncmp (out, "qemu-img: ", 10) == 0 ? out + 10 : out;
    error_setx ("cannot read image: %s", m);
    return -1;
  }
  o = json_loads (out, 0, &je);
  f = o ? json_object_get (o, "format") : NULL;
  s = o ? json_object_get (o, "virtual-size") : NULL;
  if (!json_is_string (f) || !json_is_integer (s)) {
    error_setx ("%s: unexpected output from qemu-img info", image);
    return -1;
  }
  snprintf (i->format, sizeof i->format, "%s", json_string_value (f));
  i->size = json_integer_value (s);
  json_str (o, "filename", i->filename, sizeof i->filename);
  json_str (o, "backing-filename", i->backing, sizeof i->backing);
  json_str (o, "full-backing-filename", i->backing, sizeof i->backing);
  json_str (o, "backing-filename-format", i->backing_format,
            sizeof i->backing_format);
  data = json_object_get (json_object_get (o, "format-specific"), "data");
  json_str (data, "data-file", i->data_file, sizeof i->data_file);
  vmdk_extent (image, json_object_get (data, "extents"), i->extent,
               sizeof i->extent);
  return 0;
}

const char *
qemu_img_link (const char *image, const struct qemu_img_info *i,
               const char **what)
{
  if (strncmp (image, "json:", 5) == 0 ||
      strncmp (i->filename, "json:", 5) == 0) {
    *what = "a json: name (QEMU options, not a file)";
    return image;
  }
  if (i->backing[0]) {
    *what = "a backing file";
    return i->backing;
  }
  if (i->data_file[0]) {
    *what = "an external data file";
    return i->data_file;
  }
  if (i->extent[0]) {
    *what = "an extent file";
    return i->extent;
  }
  return NULL;
}

/* The error of a qemu-nbd that exited before serving image: its own
 * message, from its log, without the "qemu-nbd: " in front. */
static void
died_error (const char *logpath, const char *image)
{
  char msg[1024] = "";
  FILE *f = fopen (logpath, "re");
  size_t k = f ? fread (msg, 1, sizeof msg - 1, f) : 0;

  if (f)
    fclose (f);
  msg[k] = '\0';
  while (k > 0 && msg[k - 1] == '\n')
    msg[--k] = '\0';
  error_setx ("qemu-nbd could not serve %s: %s", image,
              strncmp (msg, "qemu-nbd: ", 10) == 0 ? msg + 10 : msg);
}

/* Wait until the socket accepts connections (0), or qemu-nbd exits or
 * does not serve within about 30 s (-1 with the error; q->pid 0 if it
 * was reaped). */
static int
wait_serving (struct qemu_nbd *q, const char *logpath, const char *image)
{
  int i, status;

  for (i = 0; i < 3000; i++) {
    if (waitpid (q->pid, &status, WNOHANG) == q->pid) {
      died_error (logpath, image);
      q->pid = 0;
      return -1;
    }
    if (unix_socket_serves (q->socket))
      return 0;
    usleep (i < 100 ? 1000 : 10000);
  }
  error_setx ("qemu-nbd did not start serving %s", image);
  return -1;
}

int
qemu_nbd_start (struct qemu_nbd *q, const char *image, const char *format,
                bool readonly)
{
  return qemu_nbd_start_bitmap (q, image, format, readonly, NULL);
}

int
qemu_nbd_start_bitmap (struct qemu_nbd *q, const char *image, const char *format,
                       bool readonly, const char *bitmap)
{
  char fmt[64], sock[128], logpath[128];
  char *argv[18];
  CLEANUP_FREE char **envp = NULL;
  int n = 0;

  memset (q, 0, sizeof *q);
  snprintf (q->dir, sizeof q->dir, "/tmp/bootback-nbd.XXXXXX");
  if (!mkdtemp (q->dir)) {
    error_set (errno, "mkdtemp");
    return -1;
  }
  snprintf (q->socket, sizeof q->socket, "%s/nbd.sock", q->dir);
  snprintf (logpath, sizeof logpath, "%s/log", q->dir);
  snprintf (fmt, sizeof fmt, "--format=%s", format);
  snprintf (sock, sizeof sock, "--socket=%s", q->socket);
  argv[n++] = "qemu-nbd";
  argv[n++] = fmt;
  argv[n++] = sock;
  argv[n++] = "--shared=16";
  argv[n++] = "--persistent";
  argv[n++] = "--cache=writeback";
  if (readonly)
    argv[n++] = "--read-only";
  if (bitmap) {                 /* its meta context qemu:dirty-bitmap:NAME */
    argv[n++] = "--bitmap";
    argv[n++] = (char *) bitmap;
  }
  argv[n++] = "--";
  argv[n++] = (char *) image;
  argv[n] = NULL;

  envp = env_without_secrets (NULL);
  q->pid = fork ();
  if (q->pid == -1) {
    error_set (errno, "fork");
    qemu_nbd_stop (q);
    return -1;
  }
  if (q->pid == 0) {
    int fd = open (logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int nul = open ("/dev/null", O_RDWR);
    if (nul >= 0) { dup2 (nul, 0); dup2 (nul, 1); }
    if (fd >= 0) dup2 (fd, 2);
    /* nothing of ours but the image: QEMU may hold no other file or
     * socket (nbd_holds_only) */
    child_fds_for_exec (argv);
    /* Dies with us: a killed bootback leaves no qemu-nbd behind. */
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    execvpe (argv[0], argv, envp);
    child_say (2, "qemu-nbd", NULL, errno);
    _exit (127);
  }
  if (wait_serving (q, logpath, image) == -1) {
    ERROR_SAVE (saved);
    qemu_nbd_stop (q);
    ERROR_RESTORE (saved);
    return -1;
  }
  return 0;
}

void
qemu_nbd_stop (struct qemu_nbd *q)
{
  char path[128];

  if (q->pid > 0) {
    /* Our own child, not reaped yet: its pid cannot name another process.
     * SIGTERM, then SIGKILL after 5 s; then reap it (pid_stop reaps it
     * too when it can: then waitpid says ECHILD at once). */
    pid_stop (q->pid, 0, NULL, 5);
    while (waitpid (q->pid, NULL, 0) == -1 && errno == EINTR)
      ;
    q->pid = 0;
  }
  if (q->dir[0]) {
    snprintf (path, sizeof path, "%s/nbd.sock", q->dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/log", q->dir);
    unlink (path);
    rmdir (q->dir);
    q->dir[0] = '\0';
  }
}
