/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Progress line for long operations: "label  1.2 GiB / 2.0 GiB  60%
 * 512.0 MiB/s  ETA 0:02", redrawn in place on stderr at most five times a
 * second, and only when stderr is a terminal (or BOOTBACK_PROGRESS=1 for
 * tests).  Quiet otherwise, so logs and pipes stay clean.  A sink
 * (progress_set_sink: a web job's progress) gets the same updates.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "recovery/util/util.h"

struct progress {
  char label[64];
  uint64_t total;
  _Atomic uint64_t done;
  double start, last;
  bool enabled;
  bool drawn;
  pthread_mutex_t lock;
};

static progress_sink_fn sink;
static void *sink_opaque;

void
progress_set_sink (progress_sink_fn fn, void *opaque)
{
  sink = fn;
  sink_opaque = opaque;
}

struct progress *
progress_new (const char *label, uint64_t total)
{
  struct progress *p = xcalloc (1, sizeof *p);
  const char *env = getenv ("BOOTBACK_PROGRESS");

  snprintf (p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->start = p->last = now_monotonic ();
  p->enabled = env ? strcmp (env, "1") == 0 : isatty (2);
  pthread_mutex_init (&p->lock, NULL);
  return p;
}

static void
draw (struct progress *p, double now)
{
  char a[32], b[32], r[32], eta[32] = "";
  uint64_t done = atomic_load (&p->done);
  double el = now - p->start;
  double rate = el > 0 ? done / el : 0;

  if (rate > 0 && p->total > done) {
    unsigned s = (p->total - done) / rate;
    snprintf (eta, sizeof eta, "ETA %u:%02u", s / 60, s % 60);
  }
  fprintf (stderr, "\r\033[K%s  %s / %s  %3d%%  %s/s  %s", p->label,
           human_size (done, a, sizeof a), human_size (p->total, b, sizeof b),
           p->total ? (int) (100.0 * done / p->total) : 100,
           human_size ((uint64_t) rate, r, sizeof r), eta);
  fflush (stderr);
  p->drawn = true;
}

void
progress_add (struct progress *p, uint64_t bytes)
{
  double now;

  if (!p)
    return;
  atomic_fetch_add (&p->done, bytes);
  if (!p->enabled && !sink)
    return;
  now = now_monotonic ();
  if (now - p->last < 0.2)
    return;
  if (pthread_mutex_trylock (&p->lock) != 0)
    return;
  if (now - p->last >= 0.2) {
    p->last = now;
    if (p->enabled)
      draw (p, now);
    if (sink)
      sink (sink_opaque, p->label, atomic_load (&p->done), p->total);
  }
  pthread_mutex_unlock (&p->lock);
}

void
progress_free (struct progress *p)
{
  if (!p)
    return;
  if (sink)
    sink (sink_opaque, p->label, atomic_load (&p->done), p->total);
  if (p->drawn) {
    fputs ("\r\033[K", stderr);
    fflush (stderr);
  }
  pthread_mutex_destroy (&p->lock);
  free (p);
}
