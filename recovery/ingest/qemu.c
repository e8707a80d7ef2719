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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "recovery/ingest/ingest.h"
#include "recovery/util/util.h"

int
qemu_img_info (const char *image, char *format, size_t flen, uint64_t *size)
{
  char *argv[] = { "qemu-img", "info", "--output=json", "--", (char *) image, NULL };
  CLEANUP_FREE char *out = xmalloc (65536);
  json_error_t je;
  json_t *o, *f, *s;
  int rc;

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
    json_decref (o);
    return -1;
  }
  snprintf (format, flen, "%s", json_string_value (f));
  *size = json_integer_value (s);
  json_decref (o);
  return 0;
}

int
qemu_nbd_start (struct qemu_nbd *q, const char *image, const char *format,
                bool readonly)
{
  char fmt[64], sock[128], logpath[128];
  char *argv[16];
  int n = 0, i, status;

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
  argv[n++] = "--";
  argv[n++] = (char *) image;
  argv[n] = NULL;

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
    /* Dies with us: a killed bootback leaves no qemu-nbd behind. */
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    execvp (argv[0], argv);
    fprintf (stderr, "qemu-nbd: %s\n", strerror (errno));
    _exit (127);
  }
  /* Wait until the socket accepts connections, or qemu-nbd exits. */
  for (i = 0; i < 3000; i++) {
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (waitpid (q->pid, &status, WNOHANG) == q->pid) {
      char msg[1024] = "";
      FILE *f = fopen (logpath, "re");
      size_t k = f ? fread (msg, 1, sizeof msg - 1, f) : 0;
      if (f) fclose (f);
      msg[k] = '\0';
      while (k > 0 && msg[k-1] == '\n') msg[--k] = '\0';
      error_setx ("qemu-nbd could not serve %s: %s", image,
                  strncmp (msg, "qemu-nbd: ", 10) == 0 ? msg + 10 : msg);
      q->pid = 0;
      qemu_nbd_stop (q);
      return -1;
    }
    fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf (sa.sun_path, sizeof sa.sun_path, "%s", q->socket);
    if (fd >= 0 && connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0) {
      close (fd);
      return 0;
    }
    if (fd >= 0) close (fd);
    usleep (i < 100 ? 1000 : 10000);
  }
  error_setx ("qemu-nbd did not start serving %s", image);
  qemu_nbd_stop (q);
  return -1;
}

void
qemu_nbd_stop (struct qemu_nbd *q)
{
  char path[128];
  int i, status;

  if (q->pid > 0) {
    kill (q->pid, SIGTERM);
    for (i = 0; i < 500; i++) {
      if (waitpid (q->pid, &status, WNOHANG) == q->pid)
        break;
      usleep (i < 50 ? 1000 : 10000);
    }
    if (i == 500) {
      kill (q->pid, SIGKILL);
      waitpid (q->pid, &status, 0);
    }
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
