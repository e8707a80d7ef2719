/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small helpers: hex, sizes, allocation that cannot fail, names, time
 * stamps.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "recovery/util/util.h"

void
hex_encode (const uint8_t *in, size_t len, char *out)
{
  static const char d[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < len; i++) {
    out[2*i] = d[in[i] >> 4];
    out[2*i+1] = d[in[i] & 15];
  }
  out[2*len] = '\0';
}

static int
hexval (int c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int
hex_decode (const char *in, uint8_t *out, size_t len)
{
  size_t i;

  if (strlen (in) != 2*len)
    return -1;
  for (i = 0; i < len; i++) {
    int h = hexval (in[2*i]), l = hexval (in[2*i+1]);
    if (h < 0 || l < 0)
      return -1;
    out[i] = h << 4 | l;
  }
  return 0;
}

int64_t
parse_size (const char *s)
{
  char *end;
  uint64_t v, mul = 1;

  errno = 0;
  if (!isdigit ((unsigned char) *s))
    goto bad;
  v = strtoull (s, &end, 10);
  if (errno)
    goto bad;
  switch (*end) {
  case '\0': break;
  case 'k': case 'K': mul = 1ULL << 10; end++; break;
  case 'm': case 'M': mul = 1ULL << 20; end++; break;
  case 'g': case 'G': mul = 1ULL << 30; end++; break;
  case 't': case 'T': mul = 1ULL << 40; end++; break;
  default: goto bad;
  }
  if (mul > 1 && (strcmp (end, "iB") == 0 || strcmp (end, "B") == 0))
    end += strlen (end);
  if (*end != '\0')
    goto bad;
  if (MUL_OVERFLOW (v, mul, &v) || v > INT64_MAX)
    goto bad;
  return v;
 bad:
  error_setx ("invalid size '%s' (expected e.g. 1M, 64K, 4MiB or bytes)", s);
  return -1;
}

char *
human_size (uint64_t b, char *buf, size_t len)
{
  static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = b;
  int i = 0;

  while (v >= 1024 && i < 5) { v /= 1024; i++; }
  if (i == 0)
    snprintf (buf, len, "%" PRIu64 " B", b);
  else
    snprintf (buf, len, "%.1f %s", v, u[i]);
  return buf;
}

static void
oom (void)
{
  fputs ("bootback: out of memory\n", stderr);
  abort ();
}

void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p) oom ();
  return p;
}

void *
xcalloc (size_t n, size_t m)
{
  void *p = calloc (n ? n : 1, m ? m : 1);
  if (!p) oom ();
  return p;
}

void *
xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (!p) oom ();
  return p;
}

char *
xstrdup (const char *s)
{
  char *p = strdup (s);
  if (!p) oom ();
  return p;
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *s;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (r < 0) oom ();
  return s;
}

void
report_linev (void (*fn) (void *opaque, const char *line), void *opaque,
              const char *prefix, const char *fmt, va_list ap)
{
  char line[1024];

  vsnprintf (line, sizeof line, fmt, ap);
  if (fn)
    fn (opaque, line);
  else
    fprintf (stderr, "bootback: %s%s\n", prefix, line);
}

void *
xreallocarray_zero (void *v, size_t n, size_t size)
{
  size_t bytes;
  char *p;

  if (MUL_OVERFLOW (n + 1, size, &bytes))
    abort ();
  p = xrealloc (v, bytes);
  memset (p + n * size, 0, size);
  return p;
}

void
strv_push (char ***v, size_t *n, char *s)
{
  size_t len = 0;

  if (n)
    len = *n;
  else
    while (*v && (*v)[len])
      len++;
  *v = xrealloc (*v, (len + 2) * sizeof **v);
  (*v)[len] = s;
  (*v)[len + 1] = NULL;
  if (n)
    (*n)++;
}

void
strv_pushl (char ***v, size_t *n, ...)
{
  va_list ap;
  const char *s;

  va_start (ap, n);
  while ((s = va_arg (ap, const char *)) != NULL)
    strv_push (v, n, xstrdup (s));
  va_end (ap);
}

void
strv_free (char **v)
{
  size_t i;

  if (!v)
    return;
  for (i = 0; v[i]; i++)
    free (v[i]);
  free (v);
}

bool
is_zero (const void *buf, size_t len)
{
  const unsigned char *p = buf;
  size_t i;

  /* First 16 bytes one by one, then memcmp the buffer against itself
   * shifted by 16: the classic fast zero test (nbdkit's is_zero). */
  for (i = 0; i < 16 && i < len; i++)
    if (p[i])
      return false;
  if (len <= 16)
    return true;
  return memcmp (p, p + 16, len - 16) == 0;
}

bool
name_is_valid (const char *s)
{
  return name_is_valid_max (s, VM_NAME_MAX);
}

bool
name_is_valid_max (const char *s, size_t max)
{
  size_t n = strlen (s), i;

  if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
    return false;
  for (i = 0; i < n; i++)
    if (!isalnum ((unsigned char) s[i]) && !strchr ("._-", s[i]))
      return false;
  return true;
}

bool
disk_name_is_valid (const char *s)
{
  return strlen (s) <= DISK_NAME_MAX && name_is_valid (s);
}

bool
point_id_is_valid (const char *s)
{
  time_t t;

  return strlen (s) == TIMESTAMP_LEN && strspn (s, "0123456789") == 8 &&
         s[8] == 'T' && strspn (s + 9, "0123456789") == 6 && s[15] == 'Z' &&
         timestamp_parse (s, &t) == 0;
}

void
timestamp_format (time_t t, char out[TIMESTAMP_LEN + 1])
{
  struct tm tm;

  gmtime_r (&t, &tm);
  strftime (out, TIMESTAMP_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

void
iso_time_format (time_t t, char out[ISO_TIME_LEN + 1])
{
  struct tm tm;

  /* One that does not fit (a year past 9999 or before 1000, which
   * timestamp_parse refuses too) is written as zeros, never left
   * unterminated. */
  if (!gmtime_r (&t, &tm) || tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900 ||
      strftime (out, ISO_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != ISO_TIME_LEN)
    snprintf (out, ISO_TIME_LEN + 1, "0000-00-00T00:00:00Z");
}

int
timestamp_parse (const char *s, time_t *t)
{
  struct tm tm;
  const char *end;

  memset (&tm, 0, sizeof tm);
  if ((end = strptime (s, "%Y%m%dT%H%M%SZ", &tm)) != NULL && *end == '\0')
    goto ok;
  memset (&tm, 0, sizeof tm);
  if ((end = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm)) != NULL &&
      (strcmp (end, "Z") == 0 || strcmp (end, "+00:00") == 0 || *end == '\0'))
    goto ok;
  error_setx ("invalid time '%s' (expected e.g. 20261122T045506Z)", s);
  return -1;
 ok:
  /* four-digit years only: what the formats above write back */
  if (tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900) {
    error_setx ("invalid time '%s' (a year from 1000 to 9999)", s);
    return -1;
  }
  *t = timegm (&tm);
  return 0;
}

double
now_monotonic (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void
secrets_held (void)
{
  struct rlimit zero = { 0, 0 };

  if (setrlimit (RLIMIT_CORE, &zero) == -1)
    fprintf (stderr, "bootback: warning: could not turn core dumps off: %m\n");
  /* A core_pattern pipe gets the core whatever RLIMIT_CORE says. */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
    fprintf (stderr, "bootback: warning: could not make this process "
             "non-dumpable: %m\n");
}

void
crash_step (int step)
{
  const char *s = test_hook_env ("BOOTBACK_CRASH_STEP");
  const char *t = test_hook_env ("BOOTBACK_STOP_STEP");

  if (s && atoi (s) == step)
    kill (getpid (), SIGKILL);
  if (t && atoi (t) == step)
    raise (SIGSTOP);
}

int
write_whole_file (const char *path, const void *buf, size_t len, mode_t mode)
{
  const char *p = buf;
  /* O_NONBLOCK: a FIFO someone put at path (a report directory others
   * can write) fails (ENXIO) instead of blocking */
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW |
                 O_NONBLOCK, mode);

  if (fd == -1) {
    error_set (errno, "open %s", path);
    return -1;
  }
  while (len > 0) {
    ssize_t n = write (fd, p, len);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0) {
      error_set (n == 0 ? EIO : errno, "write %s", path);
      close (fd);
      return -1;
    }
    p += n;
    len -= n;
  }
  if (close (fd) == -1) {
    error_set (errno, "close %s", path);
    return -1;
  }
  return 0;
}

int
rename_noreplace (const char *from, const char *to)
{
  if (renameat2 (AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
    return 0;
  if (errno != EINVAL && errno != ENOSYS)
    return -1;
  if (link (from, to) == -1)
    return -1;
  unlink (from);
  return 0;
}

char *
xstrdup_printable (const char *s, bool keep_lines)
{
  char *out = xstrdup (s), *p;

  for (p = out; *p; p++) {
    unsigned char c = *p;
    if (c == '\n' || c == '\t')
      *p = keep_lines ? (char) c : ' ';
    else if (c < 0x20 || c >= 0x7f)
      *p = '?';
  }
  return out;
}

size_t
utf8_seq_len (const unsigned char *c, size_t n)
{
  size_t len, i;
  uint32_t cp;

  if (c[0] < 0x80)
    return 1;
  if ((c[0] & 0xe0) == 0xc0)
    len = 2, cp = c[0] & 0x1f;
  else if ((c[0] & 0xf0) == 0xe0)
    len = 3, cp = c[0] & 0x0f;
  else if ((c[0] & 0xf8) == 0xf0)
    len = 4, cp = c[0] & 0x07;
  else
    return 0;
  if (len > n)
    return 0;
  for (i = 1; i < len; i++) {
    if ((c[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (c[i] & 0x3f);
  }
  if (cp < (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u) ||
      cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}
