/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdkit's server-side functions for running the plugin without nbdkit
 * (see nbdkit-stubs.h). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "nbd-plugin/nbdkit-stubs.h"

const char *stub_export_name = "";
char stub_last_error[1024];
int stub_last_errno;
int stub_verbose;

/* Interned strings stay reachable until exit, as in nbdkit. */
struct interned { struct interned *next; char s[]; };
static struct interned *interned;

void
nbdkit_verror (const char *fmt, va_list args)
{
  vsnprintf (stub_last_error, sizeof stub_last_error, fmt, args);
  if (stub_verbose)
    fprintf (stderr, "nbdkit: error: %s\n", stub_last_error);
}

void
nbdkit_error (const char *fmt, ...)
{
  va_list args;

  va_start (args, fmt);
  nbdkit_verror (fmt, args);
  va_end (args);
}

void
nbdkit_vdebug (const char *fmt, va_list args)
{
  if (stub_verbose) {
    vfprintf (stderr, fmt, args);
    fputc ('\n', stderr);
  }
}

void
nbdkit_debug (const char *fmt, ...)
{
  va_list args;

  va_start (args, fmt);
  nbdkit_vdebug (fmt, args);
  va_end (args);
}

void
nbdkit_set_error (int err)
{
  stub_last_errno = err;
}

char *
nbdkit_absolute_path (const char *path)
{
  char *r = realpath (path, NULL);

  if (!r)
    nbdkit_error ("realpath: %s: %m", path);
  return r;
}

int64_t
nbdkit_parse_size (const char *str)
{
  char *end;
  long long v;

  errno = 0;
  v = strtoll (str, &end, 10);
  if (errno || v < 0 || end == str) {
    nbdkit_error ("could not parse size string (%s)", str);
    return -1;
  }
  switch (*end) {
  case 'K': v <<= 10; break;
  case 'M': v <<= 20; break;
  case 'G': v <<= 30; break;
  case '\0': break;
  default:
    nbdkit_error ("could not parse size string (%s)", str);
    return -1;
  }
  return v;
}

const char *
nbdkit_strdup_intern (const char *str)
{
  size_t n = strlen (str) + 1;
  struct interned *i = malloc (sizeof *i + n);

  if (!i)
    abort ();
  memcpy (i->s, str, n);
  i->next = interned;
  interned = i;
  return i->s;
}

const char *
nbdkit_export_name (void)
{
  return stub_export_name;
}

int
nbdkit_add_export (struct nbdkit_exports *exports, const char *name,
                   const char *description)
{
  return 0;
}

void
stub_extents_init (struct nbdkit_extents *x, uint64_t offset, uint32_t count)
{
  x->start = x->next = offset;
  x->end = offset + count;
  x->n = 0;
}

int
nbdkit_add_extent (struct nbdkit_extents *x, uint64_t offset,
                   uint64_t length, uint32_t type)
{
  /* nbdkit's rules: contiguous, in order, the first at the request. */
  if (offset != x->next || length == 0 ||
      (type & ~(NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO))) {
    fprintf (stderr, "nbdkit_add_extent: bad extent %llu+%llu type %u "
             "(expected start %llu)\n", (unsigned long long) offset,
             (unsigned long long) length, type,
             (unsigned long long) x->next);
    abort ();
  }
  if (x->n == STUB_MAX_EXTENTS) {
    nbdkit_error ("too many extents");
    return -1;
  }
  x->e[x->n].offset = offset;
  x->e[x->n].length = length;
  x->e[x->n].type = type;
  x->n++;
  x->next = offset + length;
  return 0;
}
