/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The words on a VM's screen, read by OCR, for the boot failures only a
 * screen shows: a Windows stop code, Automatic Repair, a boot manager's
 * complaint on a machine without a serial console.  verify/run.c's boot
 * wait reads the screen while the serial console is quiet and matches the
 * text against lab/console.c's table.
 *
 * The picture is the guest's.  It is handed to Tesseract (Debian's
 * tesseract-ocr, English data, /usr/bin/tesseract) in a process of its
 * own: fed on its stdin, with no other descriptor open; when we are root,
 * in network, mount, IPC and UTS namespaces of its own (no network at
 * all) and then as nobody; with no new privileges, no core, no file it
 * may write, OCR_MAX_MEMORY of address space, an environment of its own
 * (one OpenMP thread); killed after OCR_TIMEOUT seconds, waited for no
 * longer; its output read up to OCR_MAX_TEXT bytes.  A parser bug that a
 * crafted screen could reach in the image or OCR libraries stays in that
 * process, away from every network; a screen that takes
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
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

#define OCR_PROGRAM "/usr/bin/tesseract"
#define OCR_TIMEOUT 20
#define OCR_MAX_TEXT 65536
#define OCR_MAX_MEMORY ((rlim_t) 1 << 30)
#define NOBODY 65534

/* Root: namespaces of its own (no network), then nobody. */
static int
ocr_confine (void)
{
  if (geteuid () != 0)
    return 0;
  if (unshare (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) == -1 ||
      setgroups (0, NULL) == -1 || setresgid (NOBODY, NOBODY, NOBODY) == -1 ||
      setresuid (NOBODY, NOBODY, NOBODY) == -1)
    return -1;
  return 0;
}

/* The child: stdin in, stdout out, stderr /dev/null, nothing else open,
 * confined, limited, exec.  Only async-signal-safe calls (a fork of a
 * threaded process). */
static void __attribute__((noreturn))
ocr_child (int in, int out, int null, const char *program)
{
  static char *const argv[] = { "tesseract", "stdin", "stdout", "-l", "eng",
                                "--dpi", "96", NULL };
  static char *const envp[] = { "PATH=/usr/bin:/bin", "LANG=C", "OMP_THREAD_LIMIT=1",
                                NULL };
  const struct rlimit as = { OCR_MAX_MEMORY, OCR_MAX_MEMORY }, zero = { 0, 0 };

  if (dup2 (in, 0) == -1 || dup2 (out, 1) == -1 || dup2 (null, 2) == -1)
    _exit (126);
  close_range (3, ~0U, 0);
  if (ocr_confine () == -1 || prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
      setrlimit (RLIMIT_AS, &as) == -1 || setrlimit (RLIMIT_CORE, &zero) == -1 ||
      setrlimit (RLIMIT_FSIZE, &zero) == -1)
    _exit (126);
  /* after the uid change, which clears it */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  execve (program, argv, envp);
  _exit (127);
}

/* Feed img to fd in, read fd out into *text, until out ends or the
 * deadline.  0, or -1 with the error set. */
static int
ocr_exchange (int *in, int out, const unsigned char *img, size_t len, char *text,
              size_t *n, double deadline)
{
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

/* Wait for the child until the deadline, then kill it: its status. */
static int
ocr_reap (pid_t pid, double deadline)
{
  int status;
  pid_t r;

  while ((r = waitpid (pid, &status, WNOHANG)) == 0 || (r == -1 && errno == EINTR)) {
    if (r == 0 && now_monotonic () > deadline)
      kill (pid, SIGKILL);
    usleep (20000);
  }
  return r == pid ? status : -1;
}

char *
verify_ocr (const unsigned char *img, size_t len)
{
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, status, rc;
  CLEANUP_CLOSE int null = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  double deadline = now_monotonic () + OCR_TIMEOUT;
  const char *program = test_hook_env ("BOOTBACK_OCR_PROGRAM");
  size_t n = 0;
  char *text;
  pid_t pid;

  if (null < 0 || pipe2 (in, O_CLOEXEC) == -1 || pipe2 (out, O_CLOEXEC) == -1) {
    error_set (errno, "OCR: pipe");
    close (in[0]); close (in[1]);
    return NULL;
  }
  pid = fork ();
  if (pid == 0)
    ocr_child (in[0], out[1], null, program ? program : OCR_PROGRAM);
  close (in[0]);
  close (out[1]);
  if (pid == -1) {
    error_set (errno, "OCR: fork");
    close (in[1]); close (out[0]);
    return NULL;
  }
  text = xmalloc (OCR_MAX_TEXT + 1);
  rc = ocr_exchange (&in[1], out[0], img, len, text, &n, deadline);
  if (rc == -1)
    kill (pid, SIGKILL);
  if (in[1] >= 0)
    close (in[1]);
  close (out[0]);
  status = ocr_reap (pid, deadline);
  if (rc == 0 && !(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
    if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
      error_setx ("OCR: %s is not installed (apt-get install tesseract-ocr "
                  "tesseract-ocr-eng)", program ? program : OCR_PROGRAM);
    else if (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL)
      error_setx ("OCR: tesseract took more than %d s", OCR_TIMEOUT);
    else
      error_setx ("OCR: tesseract failed on the screenshot");
    rc = -1;
  }
  if (rc == -1) {
    free (text);
    return NULL;
  }
  text[n] = '\0';
  return text;
}
