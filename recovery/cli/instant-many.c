/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback instant VM1 VM2 ...: mass instant recovery.  Every point boots
 * as a session of its own (overlays, front nbdkit, domain), all reading
 * through one pool (recovery/instant/pool.c): one backend nbdkit, one
 * chunk cache, whatever the count.  Sessions start one after another (a
 * start is about a second), then every guest agent is polled until all
 * answer or --agent-timeout runs out; a line per VM as it goes, a summary
 * of the times to running and to heartbeat (from the command's start) at
 * the end.
 *
 * Admission control by memory: the VMs started may together have at most
 * --memory-budget MiB (default: what the host has available at the start,
 * less MANY_RESERVE_MIB); a VM over it is not started, and says why.
 */
#include "recovery/cli/cli.h"
#include "recovery/instant/instant.h"

#define MANY_RESERVE_MIB 1024
#define MANY_DEFAULT_CACHE (256 * 1024 * 1024)

struct one {
  const char *point;
  struct instant_session s;
  bool started, answered;
  double t_running, t_heartbeat;   /* from the command's start, -1 none */
  char *error;
};

struct budget {
  uint64_t total, used;            /* MiB */
  uint64_t last;                   /* admitted to the start under way */
};

/* MemAvailable of /proc/meminfo, MiB (0 if unknown). */
static uint64_t
mem_available_mib (void)
{
  FILE *f = fopen ("/proc/meminfo", "re");
  char line[256];
  unsigned long long kib = 0;

  if (!f)
    return 0;
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "MemAvailable: %llu kB", &kib) == 1)
      break;
  fclose (f);
  return kib / 1024;
}

static int
admit (void *opaque, uint64_t memory_mib)
{
  struct budget *b = opaque;

  if (b->used + memory_mib > b->total) {
    error_setx ("memory budget: the VMs started use %" PRIu64 " MiB of %" PRIu64
                " MiB, this one needs %" PRIu64 " MiB (--memory-budget)",
                b->used, b->total, memory_mib);
    return -1;
  }
  b->used += memory_mib;
  b->last = memory_mib;
  return 0;
}

/* Start each point's session (what the gate approved of it, if it did); a
 * line per VM.  A start that fails after its admission gives its memory
 * back: a point whose definition claims much and cannot start (a hostile
 * one) must not keep the points after it from starting. */
static void
start_all (struct cli *c, struct instant_opts *o, struct repo_manifest *const *approved,
           struct one *v, size_t n, double t0)
{
  char spec[VM_NAME_MAX + TIMESTAMP_LEN + 2];
  struct budget *b = o->admit_opaque;
  size_t i;

  for (i = 0; i < n; i++) {
    o->point = v[i].point;
    o->approved = approved ? approved[i] : NULL;
    if (o->approved) {          /* the point the gate resolved, not a newer one */
      snprintf (spec, sizeof spec, "%s@%s", o->approved->vm, o->approved->id);
      o->point = spec;
    }
    b->last = 0;
    if (instant_start (c->cat, o, &v[i].s) == -1) {
      b->used -= b->last;
      v[i].error = xstrdup (error_msg ());
      fprintf (stderr, "bootback: %s: not started: %s\n", v[i].point, v[i].error);
      continue;
    }
    v[i].started = true;
    v[i].t_running = now_monotonic () - t0;
    fprintf (stderr, "bootback: %s: session %" PRId64 " (%s) running after %.1f s\n",
             v[i].point, v[i].s.id, v[i].s.name, v[i].t_running);
  }
}

/* Poll the guest agents until all answer or timeout seconds pass. */
static void
wait_heartbeats (struct one *v, size_t n, double t0, int timeout)
{
  double end = now_monotonic () + timeout;
  size_t i, left;

  do {
    for (i = left = 0; i < n; i++) {
      if (!v[i].started || v[i].answered)
        continue;
      if (instant_agent_answers (&v[i].s, 0.2)) {
        v[i].answered = true;
        v[i].t_heartbeat = now_monotonic () - t0;
        fprintf (stderr, "bootback: %s: guest agent heartbeat after %.1f s\n",
                 v[i].point, v[i].t_heartbeat);
      }
      else
        left++;
    }
    if (left)
      usleep (500000);
  } while (left && now_monotonic () < end);
}

static json_t *
secs_or_null (double t)
{
  return t >= 0 ? json_real (t) : json_null ();
}

static void
print_summary (const struct one *v, size_t n, const struct budget *b, bool json)
{
  json_t *arr = json ? json_array () : NULL;
  size_t i;

  if (!json)
    printf ("%-28s %-8s %-20s %9s %10s\n", "POINT", "SESSION", "VM", "RUNNING",
            "HEARTBEAT");
  for (i = 0; i < n; i++) {
    const struct one *e = &v[i];
    char run[32] = "-", hb[32] = "-", id[32] = "-";
    if (arr) {
      json_array_append_new (arr, json_pack (
        "{s:s, s:o, s:o, s:o, s:o, s:o}", "point", e->point,
        "session", e->started ? json_integer (e->s.id) : json_null (),
        "name", e->started ? json_string (e->s.name) : json_null (),
        "seconds_to_running", secs_or_null (e->t_running),
        "seconds_to_heartbeat", secs_or_null (e->t_heartbeat),
        "error", e->error ? json_string (e->error) : json_null ()));
      continue;
    }
    if (e->started) {
      snprintf (id, sizeof id, "%" PRId64, e->s.id);
      snprintf (run, sizeof run, "%.1f s", e->t_running);
    }
    if (e->answered)
      snprintf (hb, sizeof hb, "%.1f s", e->t_heartbeat);
    printf ("%-28s %-8s %-20s %9s %10s\n", e->point, id, e->started ? e->s.name : "-",
            run, hb);
    if (e->error)
      printf ("  not started: %s\n", e->error);
  }
  if (arr)
    cli_json_print (arr);
  else
    printf ("memory: %" PRIu64 " MiB of the %" PRIu64 " MiB budget\n", b->used, b->total);
}

int
cli_instant_many (struct cli *c, char **points, size_t n, struct instant_opts *o,
                  const struct instant_many_opts *m)
{
  struct one *v = xcalloc (n, sizeof *v);
  struct budget b = { .total = m->budget_mib };
  struct instant_pool pool;
  int timeout = o->agent_timeout, ret = 0;
  double t0 = now_monotonic ();
  size_t i;

  if (!b.total) {
    uint64_t avail = mem_available_mib ();
    b.total = avail > MANY_RESERVE_MIB ? avail - MANY_RESERVE_MIB : 0;
  }
  if (instant_pool_ensure (c->home, o->repo, m->cache > 0 ? m->cache : MANY_DEFAULT_CACHE,
                           &pool) == -1) {
    cli_perror ();
    free (v);
    return 1;
  }
  for (i = 0; i < n; i++) {
    v[i].point = points[i];
    v[i].t_running = v[i].t_heartbeat = -1;
  }
  o->pool = &pool;
  o->admit = admit;
  o->admit_opaque = &b;
  o->agent_timeout = 0;
  start_all (c, o, m->approved, v, n, t0);
  if (timeout > 0)
    wait_heartbeats (v, n, t0, timeout);
  print_summary (v, n, &b, m->json);
  for (i = 0; i < n; i++) {
    if (!v[i].started)
      ret = 1;
    free (v[i].error);
  }
  free (v);
  return ret;
}
