/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The thread-local last error.  A fixed buffer per thread: nothing on the
 * heap, so threads that exit (nbdkit connection threads) leak nothing.
 */
#include <errno.h>
#include <stdarg.h>

#include "recovery/util/util.h"

static __thread char msg[1024];
static __thread int err;

/* Control characters (but newline and tab) of s become '?', the C1 ones
 * (U+0080..U+009F: "\xc2\x9b" is CSI to a terminal that takes them, as
 * xterm does) and bytes that are no UTF-8 too.  Messages carry what
 * repositories, servers and guests wrote (a manifest's bytes in a JSON
 * error, a lock file's host, a server's answer) to the administrator's
 * terminal and logs: no escape sequence gets there. */
static void
scrub (char *s)
{
  unsigned char *p = (unsigned char *) s;
  size_t n, i;

  while (*p) {
    if (*p < 0x80) {
      if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
        *p = '?';
      p++;
      continue;
    }
    n = *p >= 0xc2 && *p < 0xe0 ? 2 : *p >= 0xe0 && *p < 0xf0 ? 3
      : *p >= 0xf0 && *p < 0xf5 ? 4 : 0;
    for (i = 1; i < n; i++)
      if ((p[i] & 0xc0) != 0x80)
        n = 0;                          /* (a NUL ends it too) */
    if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
      n = 0;                            /* C1: both bytes go, one at a time */
    if (n == 0)
      *p++ = '?';
    else
      p += n;
  }
}

void
error_set (int errnum, const char *fmt, ...)
{
  va_list ap;
  size_t n;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  scrub (msg);
  if (errnum != 0) {
    n = strlen (msg);
    if (n < sizeof msg - 3)
      snprintf (msg + n, sizeof msg - n, ": %s", strerror (errnum));
  }
  err = errnum ? errnum : EINVAL;
  errno = err;
}

void
error_prefix (const char *fmt, ...)
{
  char old[sizeof msg];
  char pre[512];
  va_list ap;
  int saved = err;

  memcpy (old, msg, sizeof old);
  va_start (ap, fmt);
  vsnprintf (pre, sizeof pre, fmt, ap);
  va_end (ap);
  scrub (pre);
  snprintf (msg, sizeof msg, "%s: %s", pre, old);
  err = saved;
  errno = saved ? saved : EIO;
}

const char *
error_msg (void)
{
  return msg;
}

int
error_errno (void)
{
  return err ? err : EIO;
}

void
error_restore (int errnum, const char *message)
{
  snprintf (msg, sizeof msg, "%s", message);
  scrub (msg);
  err = errnum;
  errno = errnum;
}

void
error_clear (void)
{
  msg[0] = '\0';
  err = 0;
}

void
cleanup_free (void *ptr)
{
  free (*(void **) ptr);
}

void
cleanup_fclose (FILE **fp)
{
  if (*fp)
    fclose (*fp);
}

void
cleanup_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}

void
cleanup_strv (char ***v)
{
  strv_free (*v);
}

pthread_mutex_t *
lock_mutex (pthread_mutex_t *m)
{
  int r = pthread_mutex_lock (m);

  if (r != 0)
    abort ();                   /* a broken mutex: nothing sane to do */
  return m;
}

void
cleanup_unlock (pthread_mutex_t **m)
{
  if (*m)
    pthread_mutex_unlock (*m);
}
