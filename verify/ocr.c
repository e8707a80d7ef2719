/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The words on a VM's screen, read by OCR, for the boot failures only a
 * screen shows: a Windows stop code, Automatic Repair, a boot manager's
 * complaint on a machine without a serial console.  verify/run.c's boot
 * wait reads the screen while the serial console is quiet and matches the
 * text against lab/console.c's table.
 *
 * The picture is the guest's.  It is handed to Tesseract (Debian's
 * tesseract-ocr, English data) in a process of its own: fed on its stdin,
 * as nobody with no new privileges when we are root, with one OpenMP
 * thread, killed after OCR_TIMEOUT seconds, its output read up to
 * OCR_MAX_TEXT bytes.  A parser bug that a crafted screen could reach in
 * the image or OCR libraries stays in that process; a screen that takes
 * long to read costs at most the timeout; and the boot wait, which calls
 * this, is not slowed by a tool (valgrind) watching this process.  The
 * text is only matched against fixed strings and quoted (printable,
 * bounded), never acted on.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

#define OCR_TIMEOUT 30
#define OCR_MAX_TEXT 65536
#define NOBODY 65534

extern char **environ;

/* The child: stdin in, stdout out, stderr /dev/null, nobody, exec. */
static void __attribute__((noreturn))
ocr_child (int in, int out, char *const envp[])
{
  static char *const argv[] = { "tesseract", "stdin", "stdout", "-l", "eng",
                                "--dpi", "96", NULL };
  int null = open ("/dev/null", O_WRONLY);

  if (dup2 (in, 0) == -1 || dup2 (out, 1) == -1 || null < 0 || dup2 (null, 2) == -1)
    _exit (126);
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
    _exit (126);
  if (geteuid () == 0 &&
      (setgroups (0, NULL) == -1 || setresgid (NOBODY, NOBODY, NOBODY) == -1 ||
       setresuid (NOBODY, NOBODY, NOBODY) == -1))
    _exit (126);
  execvpe (argv[0], argv, envp);
  _exit (127);
}

/* Feed img to fd in, read fd out into *text, until out ends or the
 * deadline.  0, or -1 with the error set. */
static int
ocr_exchange (int *in, int out, const unsigned char *img, size_t len, char *text,
              size_t *n)
{
  double deadline = now_monotonic () + OCR_TIMEOUT;
  size_t sent = 0;

  for (;;) {
    struct pollfd p[2] = { { .fd = out, .events = POLLIN },
                           { .fd = *in, .events = POLLOUT } };
    int left = (int) ((deadline - now_monotonic ()) * 1000);
    ssize_t r;
    if (left <= 0) {
      error_setx ("OCR: tesseract took more than %d s", OCR_TIMEOUT);
      return -1;
    }
    if (poll (p, *in >= 0 ? 2 : 1, left) == -1) {
      if (errno == EINTR)
        continue;
      error_set (errno, "OCR: poll");
      return -1;
    }
    if (*in >= 0 && p[1].revents) {
      r = write (*in, img + sent, MIN (len - sent, (size_t) 65536));
      if (r > 0)
        sent += r;
      if (r < 0 || sent == len) {
        close (*in);                    /* its EOF: the image is whole */
        *in = -1;
      }
    }
    if (p[0].revents) {
      char buf[4096];
      r = read (out, buf, sizeof buf);
      if (r == 0)
        return 0;
      if (r > 0 && *n < OCR_MAX_TEXT) {
        size_t m = MIN ((size_t) r, OCR_MAX_TEXT - *n);
        memcpy (text + *n, buf, m);
        *n += m;
      }
    }
  }
}

char *
verify_ocr (const unsigned char *img, size_t len)
{
  CLEANUP_STRV char **envp = NULL;
  size_t nenv = 0, n = 0, i;
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, status, rc;
  char *text;
  pid_t pid;

  for (i = 0; environ[i]; i++)
    if (strncmp (environ[i], "OMP_THREAD_LIMIT=", 17) != 0)
      strv_push (&envp, &nenv, xstrdup (environ[i]));
  strv_push (&envp, &nenv, xstrdup ("OMP_THREAD_LIMIT=1"));
  if (pipe2 (in, O_CLOEXEC) == -1 || pipe2 (out, O_CLOEXEC) == -1) {
    error_set (errno, "OCR: pipe");
    close (in[0]); close (in[1]);
    return NULL;
  }
  pid = fork ();
  if (pid == 0)
    ocr_child (in[0], out[1], envp);
  close (in[0]);
  close (out[1]);
  if (pid == -1) {
    error_set (errno, "OCR: fork");
    close (in[1]); close (out[0]);
    return NULL;
  }
  text = xmalloc (OCR_MAX_TEXT + 1);
  rc = ocr_exchange (&in[1], out[0], img, len, text, &n);
  if (rc == -1)
    kill (pid, SIGKILL);
  if (in[1] >= 0)
    close (in[1]);
  close (out[0]);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  if (rc == 0 && !(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
    error_setx ("OCR: tesseract %s", WIFEXITED (status) && WEXITSTATUS (status) == 127
                ? "is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)"
                : "failed on the screenshot");
    rc = -1;
  }
  if (rc == -1) {
    free (text);
    return NULL;
  }
  text[n] = '\0';
  return text;
}
