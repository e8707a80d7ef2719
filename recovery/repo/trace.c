/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Boot traces: the file format, its bounded parser, and the file beside
 * a point (trace.h).  The parser reads at most REPO_TRACE_MAX_BYTES and
 * REPO_TRACE_MAX_ENTRIES, takes only digits (at most 20, no overflow), and
 * refuses an index at or past the disk's chunk count: whatever the file
 * says, the result is a list of valid chunk indexes of bounded length.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "recovery/repo/repo-int.h"
#include "recovery/repo/trace.h"

void
repo_trace_free (struct repo_trace *t)
{
  free (t->e);
  t->e = NULL;
  t->n = 0;
}

/* One decimal number of at most 20 digits ending at a space, a newline or
 * end; *p moves past it.  -1 if there is none or it overflows. */
static int
number (const char **p, const char *end, uint64_t *v)
{
  const char *s = *p;
  uint64_t x = 0;

  if (s == end || *s < '0' || *s > '9')
    return -1;
  for (; s < end && *s >= '0' && *s <= '9'; s++) {
    if (x > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
      return -1;
    x = x * 10 + (uint64_t) (*s - '0');
  }
  *p = s;
  *v = x;
  return 0;
}

/* The line starting at *p (without its newline) in [*p, *le); *p is moved
 * to the next line.  false at the end. */
static bool
next_line (const char **p, const char *end, const char **le)
{
  const char *nl;

  if (*p >= end)
    return false;
  nl = memchr (*p, '\n', end - *p);
  *le = nl ? nl : end;
  return true;
}

static int
parse_header (const char **p, const char *end, const char *what,
              struct repo_trace *t)
{
  const char *le, *s;
  size_t ml = strlen (REPO_TRACE_MAGIC);
  uint64_t cs;

  if (!next_line (p, end, &le) || (size_t) (le - *p) != ml ||
      memcmp (*p, REPO_TRACE_MAGIC, ml) != 0) {
    error_setx ("%s: not a boot trace (line 1 is not \"%s\")", what,
                REPO_TRACE_MAGIC);
    return -1;
  }
  *p = le + 1;
  if (!next_line (p, end, &le) || le - *p < 12 ||
      memcmp (*p, "chunk-size ", 11) != 0 || (s = *p + 11, number (&s, le, &cs)) == -1 ||
      s != le || cs < REPO_MIN_CHUNK || cs > REPO_MAX_CHUNK || (cs & (cs - 1))) {
    error_setx ("%s: line 2: expected \"chunk-size N\" (a power of two from %d to %d)",
                what, REPO_MIN_CHUNK, REPO_MAX_CHUNK);
    return -1;
  }
  *p = le + 1;
  t->chunk_size = cs;
  return 0;
}

int
repo_trace_parse (const char *text, size_t len, uint64_t nchunks,
                  const char *what, struct repo_trace *t)
{
  const char *p = text, *end, *le, *s;
  size_t line = 2;
  struct repo_trace_entry e;

  memset (t, 0, sizeof *t);
  if (len > REPO_TRACE_MAX_BYTES) {
    error_setx ("%s: %zu bytes, more than a trace may have (%zu)", what, len,
                REPO_TRACE_MAX_BYTES);
    return -1;
  }
  end = text + len;
  if (parse_header (&p, end, what, t) == -1)
    return -1;
  while (next_line (&p, end, &le)) {
    line++;
    s = p;
    if (number (&s, le, &e.chunk) == -1 || s == le || *s++ != ' ' ||
        number (&s, le, &e.ms) == -1 || s != le) {
      error_setx ("%s: line %zu: expected \"CHUNK MS\"", what, line);
      goto err;
    }
    if (e.chunk >= nchunks) {
      error_setx ("%s: line %zu: chunk %" PRIu64 " is past the disk's %" PRIu64,
                  what, line, e.chunk, nchunks);
      goto err;
    }
    if (t->n == REPO_TRACE_MAX_ENTRIES) {
      error_setx ("%s: more than %d records", what, REPO_TRACE_MAX_ENTRIES);
      goto err;
    }
    *ARRAY_PUSH (t->e, t->n) = e;
    p = le + 1;
  }
  return 0;
 err:
  repo_trace_free (t);
  return -1;
}

char *
repo_trace_format (const struct repo_trace *t, size_t *len)
{
  char *buf = NULL;
  size_t size = 0, i;
  FILE *f = open_memstream (&buf, &size);

  if (!f)
    abort ();
  fprintf (f, "%s\nchunk-size %" PRIu32 "\n", REPO_TRACE_MAGIC, t->chunk_size);
  for (i = 0; i < t->n; i++)
    fprintf (f, "%" PRIu64 " %" PRIu64 "\n", t->e[i].chunk, t->e[i].ms);
  if (fclose (f) != 0)
    abort ();
  *len = size;
  return buf;
}

static int
cmp_chunk (const void *a, const void *b)
{
  const struct repo_trace_entry *x = a, *y = b;

  if (x->chunk != y->chunk)
    return x->chunk < y->chunk ? -1 : 1;
  return x->ms < y->ms ? -1 : x->ms > y->ms;
}

static int
cmp_ms (const void *a, const void *b)
{
  const struct repo_trace_entry *x = a, *y = b;

  if (x->ms != y->ms)
    return x->ms < y->ms ? -1 : 1;
  return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

void
repo_trace_dedup (struct repo_trace *t)
{
  size_t i, k = 0;

  if (t->n == 0)
    return;                            /* (qsort of NULL) */
  qsort (t->e, t->n, sizeof *t->e, cmp_chunk);
  for (i = 0; i < t->n; i++)
    if (k == 0 || t->e[k - 1].chunk != t->e[i].chunk)
      t->e[k++] = t->e[i];
  t->n = k;
  qsort (t->e, t->n, sizeof *t->e, cmp_ms);
}

void
repo_trace_cut (struct repo_trace *t, uint64_t from, uint64_t to)
{
  size_t i, k = 0;

  for (i = 0; i < t->n; i++)
    if (t->e[i].ms >= from && t->e[i].ms <= to) {
      t->e[k] = t->e[i];
      t->e[k++].ms -= from;
    }
  t->n = k;
}

int
repo_trace_load (const char *path, uint64_t nchunks, struct repo_trace *t)
{
  CLEANUP_FREE char *buf = xmalloc (REPO_TRACE_MAX_BYTES + 1);
  FILE *f = fopen (path, "re");
  size_t n;

  memset (t, 0, sizeof *t);
  if (!f) {
    error_set (errno, "%s", path);
    return -1;
  }
  n = fread (buf, 1, REPO_TRACE_MAX_BYTES + 1, f);
  if (ferror (f)) {
    error_set (errno ? errno : EIO, "read %s", path);
    fclose (f);
    return -1;
  }
  fclose (f);
  return repo_trace_parse (buf, n, nchunks, path, t);
}

int
repo_trace_save (const char *path, const struct repo_trace *t)
{
  size_t len;
  CLEANUP_FREE char *text = repo_trace_format (t, &len);
  FILE *f = fopen_private (path);

  if (!f)
    return -1;
  if (fwrite (text, 1, len, f) != len || fclose (f) != 0) {
    error_set (errno ? errno : EIO, "write %s", path);
    return -1;
  }
  return 0;
}

static char *
trace_path (const char *vm, const char *id, const char *disk)
{
  return xasprintf ("points/%s/%s/%s.trace", vm, id, disk);
}

int
repo_trace_write (struct repo *r, const char *vm, const char *id,
                  const char *disk, const struct repo_trace *t)
{
  struct repo_manifest m;
  CLEANUP_FREE char *path = trace_path (vm, id, disk);
  CLEANUP_FREE char *text = NULL;
  size_t len;

  /* Only beside a point that exists: a removed point's directory is not
   * made again (if a prune races us, GC removes the directory). */
  if (repo_manifest_read (r, vm, id, &m) == -1)
    return -1;
  text = repo_trace_format (t, &len);
  return io_write_file_atomic (r->io, path, text, len);
}

int
repo_trace_read (struct repo *r, const char *vm, const char *id,
                 const char *disk, uint64_t nchunks, struct repo_trace *t)
{
  CLEANUP_FREE char *path = trace_path (vm, id, disk);
  CLEANUP_FREE char *text = NULL;
  CLEANUP_FREE char *what = NULL;
  size_t len;

  memset (t, 0, sizeof *t);
  if (io_read_file (r->io, path, REPO_TRACE_MAX_BYTES, &text, &len) == -1)
    return -1;
  what = xasprintf ("%s/%s", repo_location (r), path);
  return repo_trace_parse (text, len, nchunks, what, t);
}
