/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A lab run: everything `bootback lab run`, `lab up` and `verify` do.
 *
 *   state ──> network ──> isolation checks ──> group 1 ──> group 2 ... ──>
 *   (budget)  (bridge,    (fail closed: no VM   (VMs boot in parallel,
 *              netns)      starts if one fails)  at most `parallel` at once)
 *
 *   ──> reports ──> teardown (domains, sessions, overlays, network, state)
 *                   (a sandbox skips teardown until its lease ends)
 *
 * Each VM of a group, in its own thread:
 *   start (overlay + transient domain on the lab bridge; then the
 *   isolation checks run again with its tap, under the run's lock) ──> boot gate:
 *   until boot-timeout, poll the guest agent (heartbeat) and, if the
 *   address is known, ICMP (first sign of life = "boot"); a console line
 *   that means the boot failed (lab/console.c: firmware, boot loader,
 *   panic, emergency shell) or the VM stopping ends the wait at once ──>
 *   delay ──> checks in order.
 * A VM that did not boot gets its heartbeat check failed and its other
 * checks skipped (the screenshot is still taken: it shows why).  Checks
 * its restore point asked for and the definition refused (lab_vm_refuse)
 * are never run and count as failed, kind "refused".
 *
 * Timings per VM, from the start request: t_boot (first sign of life),
 * t_heartbeat (agent), t_app_ready (every tcp/http/script/guest-exec check
 * passed; without such checks, the heartbeat or boot).
 *
 * Targets: a VM with rto: gets a check "rto" (t_app_ready at most rto; a
 * VM never application ready fails it with the reason), one with rpo: a
 * check "rpo" (its newest restore point in the repository younger than
 * rpo when its verdict is made).  Both come after its other checks and
 * count like them, also for a VM that did not start.
 *
 * Invariants:
 *  1. No VM starts before lab_net_check passed; none after it failed.
 *  2. Every resource is named from the run id and the state file exists
 *     before any of them, so teardown (here, on SIGINT/SIGTERM, or by
 *     `lab down`/`lab reap` after a crash) finds everything.
 *  3. The isolation checks run under the run's lock.  A check that finds
 *     a port it does not know while other VMs are still starting (their
 *     taps exist, not yet known) waits for those starts and runs again;
 *     only a failure with no start in flight stops the run.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "verify/verify.h"
#include "recovery/util/util.h"
#include "recovery/instant/instant.h"
#include "recovery/repo/repo.h"
#include "recovery/virt/virt.h"

struct run;

struct vm_ctx {
  struct run *run;
  const struct lab_vm *vm;
  struct verify_vm_result *res;
  struct lab_vm_handle *h;
  pthread_t thread;
  bool thread_started;
};

struct run {
  const struct lab_def *d;
  const struct verify_run_opts *o;
  struct lab_state *st;
  struct lab_net net;
  struct lab_host host;        /* where the network is (o->host's copy) */
  virConnectPtr conn;
  pthread_mutex_t lock;
  pthread_cond_t started;      /* a start in flight ended */
  size_t starting;             /* VMs being started (under lock) */
  sem_t slots;
  char **taps;                 /* every tap of the run's VMs */
  size_t ntaps;
  bool isolation_broken;
  char isolation_msg[1024];
  struct vm_ctx *vms;
  size_t nvms;
  struct verify_report *rep;   /* what the run found (handed out at its end) */
  double t0;                   /* the run's start (monotonic) */
};

/* One line to o->note, under the run's lock: the VM threads say things
 * too, and the callback sees one line at a time. */
static void
tell (struct run *r, bool warning, const char *line)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);

  if (r->o->note)
    r->o->note (r->o->note_opaque, warning, line);
}

/* Progress, "lab ID: ..." (nothing if quiet). */
static void
say (struct run *r, const char *fmt, ...) __attribute__((format (printf, 2, 3)));
static void
say (struct run *r, const char *fmt, ...)
{
  CLEANUP_FREE char *msg = NULL, *line = NULL;
  va_list ap;

  if (r->o->quiet)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) == -1)
    abort ();
  va_end (ap);
  line = xasprintf ("lab %s: %s", r->st ? r->st->id : "-", msg);
  tell (r, false, line);
}

/* Something that went wrong while the run went on (said even if quiet). */
static void
say_warning (struct run *r, const char *fmt, ...) __attribute__((format (printf, 2, 3)));
static void
say_warning (struct run *r, const char *fmt, ...)
{
  CLEANUP_FREE char *line = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) == -1)
    abort ();
  va_end (ap);
  tell (r, true, line);
}

/* The last n lines of a console log, printable characters only. */
static char *
console_tail (const char *path, int nlines)
{
  FILE *f = path ? fopen (path, "re") : NULL;
  char *buf, *p;
  long size, start;
  size_t n, i, j;
  int lines = 0;

  if (!f)
    return NULL;
  fseek (f, 0, SEEK_END);
  size = ftell (f);
  start = size > 8192 ? size - 8192 : 0;
  fseek (f, start, SEEK_SET);
  buf = xcalloc (8193, 1);
  n = fread (buf, 1, 8192, f);
  fclose (f);
  for (i = j = 0; i < n; i++) {
    unsigned char c = buf[i];
    if (c == '\n' || c == '\t' || (c >= 32 && c < 127))
      buf[j++] = c;
  }
  buf[j] = '\0';
  while (j > 0 && buf[j - 1] == '\n')
    buf[--j] = '\0';
  for (p = buf + j; p > buf; p--)
    if (p[-1] == '\n' && ++lines >= nlines)
      break;
  p = xstrdup (p);
  free (buf);
  return p;
}

static bool
is_app_check (enum lab_check_kind k)
{
  return k == LAB_CHECK_TCP || k == LAB_CHECK_HTTP || k == LAB_CHECK_SCRIPT ||
         k == LAB_CHECK_GUEST_EXEC;
}

/* Wait for a free boot slot; false if interrupted. */
static bool
slot_take (struct run *r)
{
  for (;;) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    if (sem_timedwait (&r->slots, &ts) == 0)
      return true;
    if (lab_interrupted || r->isolation_broken)
      return false;
  }
}

static void
add_taps (struct run *r, char *const *taps)
{
  size_t i;

  for (i = 0; taps && taps[i]; i++)
    if (taps[i][0])
      strv_push (&r->taps, &r->ntaps, xstrdup (taps[i]));
}

/* A result no attempt made (message taken over). */
static void
result_set (struct verify_check_result *cr, const char *name, const char *kind,
            enum verify_status status, char *message)
{
  cr->name = xstrdup (name);
  cr->kind = kind;
  cr->status = status;
  cr->message = message;
}

/* The checks its restore point asked for that the lab refused (never
 * run): failed, named. */
static void
add_refused (struct run *r, const struct lab_vm *vm, struct verify_vm_result *res)
{
  size_t i;

  for (i = 0; i < vm->nrefused; i++) {
    struct verify_check_result *cr = &res->checks[res->nchecks++];
    result_set (cr, vm->refused[i].check, "refused", VERIFY_FAIL,
                xasprintf ("refused: %s", vm->refused[i].why));
    say (r, "%s: FAIL %s (not run) %s", vm->name, cr->name, cr->message);
  }
}

/* A note of a restore point's rewrite: kept in the report, said. */
static void
vm_note (void *opaque, const char *line)
{
  struct vm_ctx *x = opaque;
  struct verify_vm_result *res = x->res;

  strv_push (&res->notes, &res->nnotes, xstrdup (line));
  say (x->run, "%s: %s", x->vm->name, line);
}

/* A warning of a VM's cleanup (an instant session that would not stop). */
static void
vm_warn (void *opaque, const char *line)
{
  struct vm_ctx *x = opaque;

  say_warning (x->run, "%s", line);
}

/* What the steps of a VM's thread hand on: start, boot gate, checks,
 * verdict. */
struct vm_run {
  struct run *r;
  struct vm_ctx *x;
  const struct lab_vm *vm;
  struct verify_vm_result *res;
  bool need_agent;           /* the boot gate waits for the guest agent */
  bool slot;                 /* holds a boot slot */
  double t0;                 /* the start request (monotonic) */
  bool booted;
  char address[16];          /* "" until known */
};

/* ---- start ---------------------------------------------------------------- */

/* Isolation again, with the new tap (invariant 3), under the run's lock.
 * A port the check does not know may be the tap of a VM still starting:
 * the verdict waits until no start is in flight.  -1 with res->message
 * if the run is stopped (by this check or another VM's). */
static int
isolation_recheck_locked (struct vm_run *v)
{
  struct run *r = v->r;
  int rc;

  while ((rc = lab_net_check (&r->net, r->taps)) == -1 && r->starting > 0 &&
         !r->isolation_broken)
    pthread_cond_wait (&r->started, &r->lock);
  if (rc != -1)
    return 0;
  if (!r->isolation_broken) {
    r->isolation_broken = true;
    snprintf (r->isolation_msg, sizeof r->isolation_msg, "%s", error_msg ());
    pthread_cond_broadcast (&r->started);
  }
  v->res->message = xasprintf ("stopped: %s", r->isolation_msg);
  return -1;
}

/* Under the run's lock, once lab_vm_start returned: the start is no
 * longer in flight; record the VM in the state, then check isolation
 * again.  -1 with res->message (x->h NULL: it did not start). */
static int
vm_started_locked (struct vm_run *v, bool point_fault)
{
  struct run *r = v->r;
  struct lab_vm_handle *h = v->x->h;
  struct verify_vm_result *res = v->res;

  r->starting--;
  pthread_cond_broadcast (&r->started);
  if (!h) {
    res->message = xasprintf ("did not start: %s", error_msg ());
    res->lab_fault = !point_fault;
    return -1;
  }
  res->domain = xstrdup (lab_vm_domain_name (h));
  if (lab_vm_source (h)) {
    free (res->source);
    res->source = xstrdup (lab_vm_source (h));
  }
  lab_state_add_vm (r->st, v->vm->name, res->domain, v->vm->address);
  lab_state_save (r->st);
  add_taps (r, lab_vm_taps (h));
  return isolation_recheck_locked (v);
}

/* Start (VMs of a group start at once, up to the run's boot slots), then
 * check isolation again.  -1 with res->message if the VM did not start
 * or the run was stopped (nothing of the VM left running). */
static int
vm_start (struct vm_run *v)
{
  struct run *r = v->r;
  struct vm_ctx *x = v->x;
  struct lab_vm_env env = {
    .conn = r->conn, .run_id = r->st->id, .run_dir = r->st->dir,
    .net = &r->net, .repo = r->o->repo, .instant = r->o->instant,
    .home = r->o->home, .uri = r->o->uri,
    .allow_passthrough = r->o->allow_passthrough, .note = vm_note, .note_opaque = x,
    .warn = vm_warn, .warn_opaque = x,
  };
  bool point_fault;
  int rc;

  if (!(v->slot = slot_take (r))) {
    v->res->message = xstrdup ("not started: the run was stopped");
    return -1;
  }
  v->t0 = now_monotonic ();
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
    if (r->isolation_broken || lab_interrupted) {
      v->res->message = xstrdup ("not started: the run was stopped");
      return -1;
    }
    r->starting++;
  }
  x->h = lab_vm_start (&env, v->vm, &point_fault);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->lock);
    rc = vm_started_locked (v, point_fault);
  }
  if (rc == -1) {
    if (x->h) {              /* stopped by an isolation check */
      lab_vm_destroy (x->h);
      x->h = NULL;
    }
    else
      say (r, "%s: %s", v->vm->name, v->res->message);
    return -1;
  }
  v->res->t_start = now_monotonic () - v->t0;
  say (r, "%s: started as %s (%.1f s)", v->vm->name, v->res->domain,
       v->res->t_start);
  return 0;
}

/* ---- boot gate ------------------------------------------------------------ */

/* The console shows a failed boot (lab/console.c): "REASON (console:
 * "LINE")" in *failed (the report has the console's last lines too).  A
 * console log that cannot be read is no reason to stop waiting. */
static bool
console_failed (struct lab_console_watch *w, char **failed)
{
  const char *reason;
  CLEANUP_FREE char *quoted = NULL;
  char *last;

  if (lab_console_watch_poll (w, &reason, &quoted) != 1)
    return false;
  last = strrchr (quoted, '\n');
  *failed = xasprintf ("%s (console: \"%s\")", reason, last ? last + 1 : quoted);
  return true;
}

/* The restore point's server logged a read error (at most once a second):
 * the guest cannot be trusted to boot; vm_boot blames the repository. */
static bool
disk_failed (struct vm_run *v, double *checked, char **failed)
{
  CLEANUP_FREE char *read_error = NULL;
  double now = now_monotonic ();

  if (now - *checked < 1)
    return false;
  *checked = now;
  read_error = lab_vm_read_error (v->x->h);
  if (!read_error)
    return false;
  *failed = xstrdup ("its disk cannot be read");
  return true;
}

/* Signs that a boot is still going on (lab/activity.c): the console's
 * size every time (the screen reader asks when it was last written); the
 * disks' reads and the point's first reads only with a stall-timeout or
 * reread-timeout. */
static void
activity_poll (struct vm_run *v, struct lab_activity *a)
{
  struct stat st;
  off_t console = stat (lab_vm_serial_log (v->x->h), &st) == 0 ? st.st_size : 0;
  int64_t bytes = -1, first = -1;
  int64_t reads = v->vm->stall_timeout > 0 || v->vm->reread_timeout > 0 ?
    virt_block_reads (lab_vm_domain (v->x->h), &bytes) : -1;
  uint32_t chunk_size = 0;

  if (reads < 0)
    error_clear ();                     /* no stats: no stall checks */
  else if (v->vm->reread_timeout > 0)
    first = lab_vm_first_reads (v->x->h, &chunk_size);
  lab_activity_poll (a, now_monotonic (), console, reads, bytes, first, chunk_size);
}

/* The VM neither wrote its console nor read its disks for its
 * stall-timeout: a boot that hangs silently (a loop in a boot sector, a
 * wait for a device that never comes). */
static bool
stalled (struct vm_run *v, const struct lab_activity *a, char **failed)
{
  double now = now_monotonic ();

  if (v->vm->stall_timeout <= 0 || now - a->last < v->vm->stall_timeout)
    return false;
  *failed = xasprintf ("stalled: no console output and no disk reads for %.0f s "
                       "(stall-timeout)", now - a->last);
  return true;
}

/* reread-timeout: the VM kept reading its disks, but only what it had
 * read before, and wrote nothing to its console (lab/activity.c): a boot
 * in a wait loop that polls its disks for a device that is not there. */
static bool
rereading (struct vm_run *v, const struct lab_activity *a, char **failed)
{
  double span = lab_activity_rereading (a, v->vm->reread_timeout);

  if (span <= 0)
    return false;
  *failed = xasprintf ("stalled in a wait: for %.0f s it read only what it had read "
                       "before (%.1f MiB again) and wrote nothing to its console, as a "
                       "boot waiting for a device that is not there (such as its root "
                       "file system) does (reread-timeout)", span,
                       (double) (a->bytes - a->progress_bytes) / (1024 * 1024));
  return true;
}

/* The screen, read by OCR, shows a failed boot that the serial console
 * does not (a Windows stop code, Automatic Repair).  Read only once the
 * console has been quiet for SCREEN_QUIET seconds (a guest that writes its
 * console says why there, and a healthy one is not slowed down), then at
 * most every SCREEN_EVERY seconds; never again once OCR cannot run here. */
#define SCREEN_QUIET 5
#define SCREEN_EVERY 10
struct screen {
  double read;              /* when the screen was last read */
  bool off;                 /* OCR does not work here */
};

static bool
screen_failed (struct vm_run *v, const struct lab_activity *a, struct screen *s,
               char **failed)
{
  CLEANUP_FREE unsigned char *img = NULL;
  CLEANUP_FREE char *mime = NULL, *text = NULL, *line = NULL;
  const struct lab_def *d = v->r->d;
  double now = now_monotonic ();
  const char *reason;
  size_t len;

  if (s->off || now - a->console_changed < SCREEN_QUIET || now - s->read < SCREEN_EVERY)
    return false;
  s->read = now;
  if (virt_screenshot (lab_vm_domain (v->x->h), &img, &len, &mime) == -1) {
    error_clear ();                     /* no screen: nothing to read */
    return false;
  }
  text = verify_ocr (img, len);
  if (!text) {
    say_warning (v->r, "%s: the screen is not read: %s", v->vm->name, error_msg ());
    s->off = true;
    return false;
  }
  reason = lab_console_match_text (text, d->boot_failures, d->nboot_failures, &line);
  if (!reason)
    return false;
  *failed = xasprintf ("%s (screen: \"%s\")", reason, line);
  return true;
}

/* Until boot-timeout, poll the guest agent (heartbeat) and, if the address
 * is known, ICMP (first sign of life = "boot"); a console line that means
 * the boot failed (*failed: the reason) or a stopped VM (msg) ends the
 * wait at once.  Whether the VM booted. */
static bool
boot_wait (struct vm_run *v, char *msg, size_t len, char **failed)
{
  struct run *r = v->r;
  struct verify_vm_result *res = v->res;
  virDomainPtr dom = lab_vm_domain (v->x->h);
  double deadline = v->t0 + v->vm->boot_timeout;
  struct lab_console_watch *console =
    lab_console_watch_new (lab_vm_serial_log (v->x->h), r->d->boot_failures,
                           r->d->nboot_failures);
  bool booted = false;
  double read_checked = 0;
  struct lab_activity act;
  struct screen screen = { 0 };

  lab_activity_init (&act);
  while (!lab_interrupted && !r->isolation_broken) {
    double tick = now_monotonic ();
    if (tick > deadline)
      break;
    activity_poll (v, &act);
    if (console_failed (console, failed) || disk_failed (v, &read_checked, failed) ||
        screen_failed (v, &act, &screen, failed) || stalled (v, &act, failed) ||
        rereading (v, &act, failed))
      break;
    if (virDomainIsActive (dom) != 1) {
      snprintf (msg, len, "the VM stopped while booting");
      break;
    }
    if (verify_agent_ping (dom, 1, msg, len) == 0) {
      res->t_heartbeat = now_monotonic () - v->t0;
      if (res->t_boot < 0)
        res->t_boot = res->t_heartbeat;
      booted = true;
      break;
    }
    if (v->address[0] && res->t_boot < 0 &&
        verify_icmp_ping (&r->net, v->address, 0.25, msg, len) == 0) {
      res->t_boot = now_monotonic () - v->t0;
      if (!v->need_agent) {
        booted = true;
        break;
      }
    }
    if (now_monotonic () - tick < 0.25)
      lab_sleep (0.25 - (now_monotonic () - tick));
  }
  /* What the console said between its last read and the answer counts:
   * a failure line printed just before the agent answered still fails. */
  if ((booted || res->t_boot >= 0) && !*failed && console_failed (console, failed))
    booted = false;
  lab_console_watch_free (console);
  return booted || (!*failed && res->t_boot >= 0 && !v->need_agent);
}

/* Wait for the VM to boot, say how it went, learn its address, wait its
 * delay; the boot slot is given back. */
static void
vm_boot (struct vm_run *v)
{
  struct run *r = v->r;
  const struct lab_vm *vm = v->vm;
  struct verify_vm_result *res = v->res;
  CLEANUP_FREE char *failed = NULL;
  char msg[512] = "";

  v->booted = boot_wait (v, msg, sizeof msg, &failed);
  if (!v->booted) {
    CLEANUP_FREE char *read_error = lab_vm_read_error (v->x->h);
    if (read_error)        /* the disk could not be read: not the VM's fault */
      res->message = xasprintf ("repository damaged: %s (so the VM did not boot)",
                                read_error);
    else if (failed)
      res->message = xasprintf ("did not boot: %s", failed);
    else if (msg[0] && strstr (msg, "stopped"))
      res->message = xstrdup (msg);
    else if (lab_interrupted)
      res->message = xstrdup ("interrupted while booting");
    else
      res->message = xasprintf ("did not boot: no answer from the guest%s within "
                                "the boot timeout of %.0f s",
                                v->need_agent ? " agent" : "", vm->boot_timeout);
    say (r, "%s: %s", vm->name, res->message);
  }
  else {
    say (r, "%s: booted in %.1f s%s", vm->name, res->t_boot,
         res->t_heartbeat >= 0 ? " (heartbeat)" : "");
    if (!v->address[0] &&
        verify_agent_address (lab_vm_domain (v->x->h), &r->net, v->address) == 0)
      say (r, "%s: address %s (from the guest agent)", vm->name, v->address);
    if (vm->delay > 0)
      lab_sleep (vm->delay);
  }
  if (v->address[0])
    res->address = xstrdup (v->address);
  sem_post (&r->slots);
  v->slot = false;
}

/* ---- checks --------------------------------------------------------------- */

/* One check of a started VM.  One that did not boot gets its heartbeat
 * check failed and its other checks skipped, but for the screenshot (it
 * shows why). */
static void
vm_check (struct vm_run *v, const struct lab_check *c,
          struct verify_check_result *cr, const char *shot)
{
  struct verify_vm_result *res = v->res;
  struct verify_target t = {
    .dom = lab_vm_domain (v->x->h), .net = &v->r->net, .vm = v->vm->name,
    .domain = res->domain, .address = v->address[0] ? v->address : NULL,
    .shot_path = shot, .point = v->vm->image ? NULL : res->source,
    .scan = v->r->o->scan, .scan_opaque = v->r->o->scan_opaque,
    .scan_force = v->r->o->scan_force,
  };

  if (!v->booted && c->kind == LAB_CHECK_HEARTBEAT) {
    result_set (cr, c->name, "heartbeat", VERIFY_FAIL, xstrdup (res->message));
    cr->attempts = 0;
    cr->at = now_monotonic () - v->t0;
  }
  else if (!v->booted && c->kind != LAB_CHECK_SCREENSHOT &&
           c->kind != LAB_CHECK_SCAN)     /* a scan reads the point */
    result_set (cr, c->name, verify_kind_name (c->kind), VERIFY_SKIP,
                xstrdup ("not run: the VM did not boot"));
  else {
    verify_check_run (c, &t, cr);
    cr->at = now_monotonic () - v->t0;
  }
}

/* The checks, in order (the ones left when the run is stopped are
 * skipped, not said), then the refused ones.  A VM that did not boot and
 * has no heartbeat check still fails: a "boot" check says so. */
static void
vm_checks (struct vm_run *v)
{
  struct run *r = v->r;
  const struct lab_vm *vm = v->vm;
  struct verify_vm_result *res = v->res;
  CLEANUP_FREE char *shot = xasprintf ("%s/%s.png", r->st->report_dir, vm->name);
  bool failed = false;
  size_t i;

  for (i = 0; i < vm->nchecks; i++) {
    const struct lab_check *c = &vm->checks[i];
    struct verify_check_result *cr = &res->checks[res->nchecks++];
    if (lab_interrupted || r->isolation_broken) {
      result_set (cr, c->name, verify_kind_name (c->kind), VERIFY_SKIP,
                  xstrdup ("not run: the run was stopped"));
      continue;
    }
    vm_check (v, c, cr, shot);
    say (r, "%s: %-4s %s (%.1f s%s) %s", vm->name,
         cr->status == VERIFY_PASS ? "PASS" : cr->status == VERIFY_FAIL ? "FAIL" : "SKIP",
         cr->name, cr->seconds, cr->attempts > 1 ? ", retried" : "", cr->message);
  }
  add_refused (r, vm, res);
  if (v->booted)
    return;
  for (i = 0; i < res->nchecks; i++)
    failed |= res->checks[i].status == VERIFY_FAIL;
  if (!failed) {
    struct verify_check_result *cr = &res->checks[res->nchecks++];
    result_set (cr, "boot", "boot", VERIFY_FAIL, xstrdup (res->message));
    cr->at = now_monotonic () - v->t0;
  }
}

/* ---- targets (rto, rpo) --------------------------------------------------- */

/* Why a VM never got application ready: its message (did not start or
 * boot), else the first check that failed. */
static char *
not_ready_reason (const struct verify_vm_result *res)
{
  size_t i;

  if (res->message)
    return xstrdup (res->message);
  for (i = 0; i < res->nchecks; i++)
    if (res->checks[i].status == VERIFY_FAIL)
      return xasprintf ("check %s failed", res->checks[i].name);
  return xstrdup ("no time to application ready");
}

/* rto: the time from the VM's start to application ready against it. */
static void
rto_check (struct vm_run *v, struct verify_check_result *cr)
{
  const struct verify_vm_result *res = v->res;
  char target[VERIFY_DURATION_LEN], took[VERIFY_DURATION_LEN];
  CLEANUP_FREE char *why = NULL;

  verify_duration_str (v->vm->rto, target, sizeof target);
  if (res->t_app_ready < 0) {
    why = not_ready_reason (res);
    result_set (cr, "rto", "rto", VERIFY_FAIL,
                xasprintf ("never application ready (%s), RTO %s", why, target));
    return;
  }
  verify_duration_str (res->t_app_ready, took, sizeof took);
  if (res->t_app_ready > v->vm->rto)
    result_set (cr, "rto", "rto", VERIFY_FAIL,
                xasprintf ("application ready after %s, over the RTO of %s", took,
                           target));
  else
    result_set (cr, "rto", "rto", VERIFY_PASS,
                xasprintf ("application ready after %s, within the RTO of %s", took,
                           target));
}

/* The newest restore point of vm in the run's repository (*id, *t) that
 * is not in the future: a point dated ahead (by a clock gone wrong, or by
 * whoever can write the repository) would make every RPO look met while
 * backups have stopped; more than RPO_FUTURE_SLACK ahead is skipped.  -1
 * with the error set if there is none or the repository cannot say. */
#define RPO_FUTURE_SLACK 3600
static int
newest_point (const struct verify_run_opts *o, const char *vm,
              char id[TIMESTAMP_LEN + 1], time_t *t)
{
  const struct repo_open_opts *ro = o->instant ? o->instant->repo_open : NULL;
  struct repo *repo;
  CLEANUP_STRV char **ids = NULL;
  size_t n = 0;

  if (!o->repo) {
    error_setx ("no repository");
    return -1;
  }
  if (!(repo = repo_open_with (o->repo, ro)))
    return -1;
  ids = repo_list_points (repo, vm);
  repo_close (repo);
  if (!ids)
    return -1;
  while (ids[n])
    n++;
  while (n > 0 && (timestamp_parse (ids[n - 1], t) == -1 ||
                   *t > time (NULL) + RPO_FUTURE_SLACK))
    n--;
  if (n == 0) {
    error_setx ("%s has no restore point (none that is not dated in the future)", vm);
    return -1;
  }
  snprintf (id, TIMESTAMP_LEN + 1, "%s", ids[n - 1]);
  return 0;
}

/* rpo: the age of the VM's newest restore point, now, against it. */
static void
rpo_check (struct vm_run *v, struct verify_check_result *cr)
{
  char target[VERIFY_DURATION_LEN], age_s[VERIFY_DURATION_LEN];
  char id[TIMESTAMP_LEN + 1];
  time_t t;
  double age;

  verify_duration_str (v->vm->rpo, target, sizeof target);
  if (newest_point (v->r->o, v->vm->name, id, &t) == -1) {
    result_set (cr, "rpo", "rpo", VERIFY_FAIL,
                xasprintf ("no newest point to hold against the RPO of %s: %s",
                           target, error_msg ()));
    return;
  }
  age = difftime (time (NULL), t);
  verify_duration_str (age > 0 ? age : 0, age_s, sizeof age_s);
  if (age > v->vm->rpo)
    result_set (cr, "rpo", "rpo", VERIFY_FAIL,
                xasprintf ("newest point %s is %s old, over the RPO of %s", id,
                           age_s, target));
  else
    result_set (cr, "rpo", "rpo", VERIFY_PASS,
                xasprintf ("newest point %s is %s old, within the RPO of %s", id,
                           age_s, target));
}

/* The VM's targets as checks after its others (said like them).  The
 * number of them that failed. */
static int
vm_targets (struct vm_run *v)
{
  struct verify_vm_result *res = v->res;
  int failed = 0;
  int k;

  for (k = 0; k < 2; k++) {
    struct verify_check_result *cr;
    if ((k == 0 ? v->vm->rto : v->vm->rpo) <= 0)
      continue;
    cr = &res->checks[res->nchecks++];
    if (k == 0)
      rto_check (v, cr);
    else
      rpo_check (v, cr);
    cr->attempts = 1;
    cr->at = v->t0 > 0 ? now_monotonic () - v->t0 : 0;
    failed += cr->status == VERIFY_FAIL;
    say (v->r, "%s: %-4s %s %s", v->vm->name,
         cr->status == VERIFY_PASS ? "PASS" : "FAIL", cr->name, cr->message);
  }
  return failed;
}

/* ---- verdict -------------------------------------------------------------- */

/* A check that could not run (skipped, "could not verify: ..."): a scan
 * that could not scan, a check whose lab host did not answer over ssh; on a
 * VM that failed nothing else: the run could not verify it (exit 1), as
 * for a lab fault; never a pass, and not the point's fault either. */
static void
scan_not_verified (struct verify_vm_result *res)
{
  const struct verify_check_result *scan = NULL;
  size_t i;

  for (i = 0; i < res->nchecks; i++) {
    const struct verify_check_result *cr = &res->checks[i];
    if (cr->status == VERIFY_FAIL)
      return;
    if (cr->status == VERIFY_SKIP && cr->message &&
        strncmp (cr->message, "could not verify: ", 18) == 0)
      scan = cr;
  }
  if (!scan)
    return;
  res->lab_fault = true;
  if (!res->message)
    res->message = xasprintf ("%s: %s", scan->kind, scan->message + 18);
}

/* Timings and the VM's verdict: it passes if it booted and every check
 * passed; app-ready is when the last application check passed (without
 * such checks, the heartbeat or boot). */
static void
vm_verdict (struct vm_run *v)
{
  const struct lab_vm *vm = v->vm;
  struct verify_vm_result *res = v->res;
  bool all = true, any_app = false;
  double ready = -1;
  size_t i;

  for (i = 0; i < res->nchecks; i++) {
    if (res->checks[i].status != VERIFY_PASS)
      all = false;
    if (i < vm->nchecks && is_app_check (vm->checks[i].kind)) {
      any_app = true;
      if (res->checks[i].status == VERIFY_PASS)
        ready = MAX (ready, res->checks[i].at);
    }
  }
  if (v->booted)
    res->t_app_ready = any_app ? (all ? ready : -1)
                               : (res->t_heartbeat >= 0 ? res->t_heartbeat : res->t_boot);
  if (res->t_app_ready >= 0 && !all)
    res->t_app_ready = -1;
  if (res->t_app_ready >= 0) {          /* the boot's trace, for the next */
    double now = now_monotonic ();
    lab_vm_keep_trace (v->x->h, now - v->t0, now - v->t0 - res->t_app_ready);
  }
  if (vm_targets (v) > 0)
    all = false;
  res->status = all && v->booted ? VERIFY_PASS : VERIFY_FAIL;
  if (res->status == VERIFY_FAIL)
    scan_not_verified (res);
  res->console = console_tail (lab_vm_serial_log (v->x->h), 15);
}

/* A VM that did not start: its checks not run, its refused ones failed,
 * and a failed "start" check that says why. */
static void
vm_not_started (struct vm_run *v)
{
  const struct lab_vm *vm = v->vm;
  struct verify_vm_result *res = v->res;
  size_t i;

  if (v->slot)
    sem_post (&v->r->slots);
  for (i = 0; i < vm->nchecks; i++)
    result_set (&res->checks[res->nchecks++], vm->checks[i].name,
                verify_kind_name (vm->checks[i].kind), VERIFY_SKIP,
                xstrdup ("not run"));
  add_refused (v->r, vm, res);
  result_set (&res->checks[res->nchecks++], "start", "start", VERIFY_FAIL,
              xstrdup (res->message ? res->message : "not started"));
  vm_targets (v);
  res->status = VERIFY_FAIL;
}

/* ---- chunk pre-check ------------------------------------------------------ */

/* The first problem repo check finds, as the VM's message. */
static void
first_problem (void *opaque, const struct repo_problem *p)
{
  char **msg = opaque;

  if (*msg || p->note)
    return;
  *msg = xasprintf ("repository damaged: %s: %s%s%s%s", p->what, p->object,
                    p->detail && *p->detail ? " (" : "", p->detail ? p->detail : "",
                    p->detail && *p->detail ? ")" : "");
  if (p->used_by && *p->used_by) {
    char *m = xasprintf ("%s, used by %.400s", *msg, p->used_by);
    free (*msg);
    *msg = m;
  }
}

/* check_chunks: every chunk of a restore point VM's point is there with
 * its size; -1 with res->message if not.  A check that cannot run (no
 * such point, repository unreachable) lets the start say why. */
static int
point_precheck (struct vm_run *v)
{
  const struct verify_run_opts *o = v->r->o;
  const struct repo_open_opts *ro = o->instant ? o->instant->repo_open : NULL;
  struct repo_verify_result res = { 0 };
  CLEANUP_FREE char *spec = NULL;
  char *msg = NULL;
  struct repo *repo;

  if (!o->check_chunks || !v->vm->point || !o->repo)
    return 0;
  spec = xasprintf ("%s@%s", v->vm->name, v->vm->point);
  repo = repo_open_with (o->repo, ro);
  if (repo && repo_verify (repo, spec, false, 2, first_problem, &msg, &res) == 0 &&
      res.problems > 0 && msg) {
    v->res->message = msg;
    say (v->r, "%s: %s", v->vm->name, msg);
    repo_close (repo);
    return -1;
  }
  free (msg);
  repo_close (repo);
  error_clear ();
  return 0;
}

/* A VM of a group, in its own thread: start, boot gate, checks, verdict. */
static void *
vm_thread (void *arg)
{
  struct vm_ctx *x = arg;
  const struct lab_vm *vm = x->vm;
  struct vm_run v = { .r = x->run, .x = x, .vm = vm, .res = x->res,
                      .need_agent = !vm->address };
  size_t i;

  for (i = 0; i < vm->nchecks; i++)
    if (vm->checks[i].kind == LAB_CHECK_HEARTBEAT ||
        vm->checks[i].kind == LAB_CHECK_GUEST_EXEC)
      v.need_agent = true;
  if (vm->address)
    snprintf (v.address, sizeof v.address, "%s", vm->address);
  /* its checks, the refused ones, boot or start, rto, rpo */
  v.res->checks = xcalloc (vm->nchecks + vm->nrefused + 3, sizeof *v.res->checks);

  if (point_precheck (&v) == -1 || vm_start (&v) == -1) {
    vm_not_started (&v);
    return NULL;
  }
  vm_boot (&v);
  vm_checks (&v);
  vm_verdict (&v);
  return NULL;
}


void
verify_report_free (struct verify_report *r)
{
  size_t i, j;

  if (!r)
    return;
  for (i = 0; i < r->nvms; i++) {
    struct verify_vm_result *v = &r->vms[i];
    for (j = 0; j < v->nchecks; j++)
      verify_check_result_clear (&v->checks[j]);
    free (v->checks);
    free (v->name); free (v->group); free (v->source); free (v->domain);
    free (v->address); free (v->mac); free (v->message); free (v->console);
    free (v->suspicious);
    strv_free (v->notes);
  }
  free (r->vms);
  free (r->lab); free (r->run_id); free (r->kind); free (r->file); free (r->dir);
  free (r->status); free (r->message); free (r->netns);
  free (r);
}

/* Run the test hook (BOOTBACK_LAB_TEST_HOOK): a shell command run after
 * the network is made and before it is checked, with the names in its
 * environment, so tests can break an isolation property on purpose. */
static void
test_hook (struct run *r)
{
  const char *hook = test_hook_env ("BOOTBACK_LAB_TEST_HOOK");
  char *argv[] = { "/bin/sh", "-c", (char *) hook, NULL };
  char out[4096];
  CLEANUP_FREE char *br = NULL, *ns = NULL, *veth = NULL, *id = NULL;

  if (!hook)
    return;
  setenv ("BOOTBACK_LAB_BRIDGE", r->net.bridge, 1);
  setenv ("BOOTBACK_LAB_NETNS", r->net.netns, 1);
  setenv ("BOOTBACK_LAB_VETH", r->net.veth_host, 1);
  setenv ("BOOTBACK_LAB_ID", r->net.id, 1);
  if (lab_host_remote (&r->host)) {     /* where the network is */
    br = xasprintf ("BOOTBACK_LAB_BRIDGE=%s", r->net.bridge);
    ns = xasprintf ("BOOTBACK_LAB_NETNS=%s", r->net.netns);
    veth = xasprintf ("BOOTBACK_LAB_VETH=%s", r->net.veth_host);
    id = xasprintf ("BOOTBACK_LAB_ID=%s", r->net.id);
    char *renv[] = { "env", br, ns, veth, id, "sh", "-c", (char *) hook, NULL };
    if (lab_host_run (&r->host, renv, out, sizeof out) != 0)
      say_warning (r, "test hook: %s", out);
    return;
  }
  if (run_command (argv, out, sizeof out) != 0)
    say_warning (r, "test hook: %s", out);
}

static void *
destroy_thread (void *arg)
{
  struct vm_ctx *x = arg;

  lab_vm_destroy (x->h);
  x->h = NULL;
  return NULL;
}

static void
teardown (struct run *r)
{
  size_t i;

  /* The VMs in parallel: each destroy waits for its QEMU to be gone. */
  for (i = 0; i < r->nvms; i++) {
    r->vms[i].thread_started = false;
    if (r->vms[i].h &&
        pthread_create (&r->vms[i].thread, NULL, destroy_thread, &r->vms[i]) == 0)
      r->vms[i].thread_started = true;
  }
  for (i = 0; i < r->nvms; i++) {
    if (r->vms[i].thread_started)
      pthread_join (r->vms[i].thread, NULL);
    else
      destroy_thread (&r->vms[i]);
  }
  if (lab_state_teardown (r->st, r->conn) == -1)
    say_warning (r, "teardown of lab %s: %s (run 'bootback lab down %s' to "
                 "try again)", r->st->id, error_msg (), r->st->id);
}

/* ---- the run ------------------------------------------------------------- */

/* The report's directory, HOME/reports/<lab>-<time>-<id> unless given,
 * made private and named in the state. */
static int
run_report_dir (struct run *r)
{
  const struct verify_run_opts *o = r->o;
  struct verify_report *rep = r->rep;
  char stamp[TIMESTAMP_LEN + 1];

  timestamp_format (rep->started, stamp);
  rep->dir = o->report_dir ? xstrdup (o->report_dir)
                           : xasprintf ("%s/reports/%s-%s-%s", o->home, r->d->name,
                                        stamp, r->st->id);
  if (mkdir_p_private (rep->dir) == -1)
    return -1;
  if (!o->report_dir) {
    /* reports/ of older versions was 0755 */
    CLEANUP_FREE char *reports = xasprintf ("%s/reports", o->home);
    mode_t was;
    tighten_mode (reports, &was);
  }
  r->st->report_dir = xstrdup (rep->dir);
  lab_state_save (r->st);
  return 0;
}

/* The network, proven isolated before any VM starts (invariant 1). */
static int
run_network (struct run *r)
{
  lab_net_init (&r->net, r->st->id, r->d);
  r->net.host = &r->host;
  if (lab_net_create (&r->net) == -1)
    return -1;
  test_hook (r);
  if (lab_net_check (&r->net, NULL) == -1) {
    error_prefix ("refusing to start lab %s", r->d->name);
    return -1;
  }
  r->rep->t_setup = now_monotonic () - r->t0;
  say (r, "network %s isolated (bridge %s, namespace %s holds %s/%d)%s%s",
       r->net.id, r->net.bridge, r->net.netns, r->net.gateway, r->net.prefix,
       lab_host_remote (&r->host) ? " on host " : "", r->host.name);
  free (r->st->status);
  r->st->status = xstrdup ("running");
  lab_state_save (r->st);
  return 0;
}

/* The memory budget: --memory-budget, else half of the memory of the
 * host the VMs run on: this host's MemTotal, or another host's, as its
 * libvirt says (each host has a budget of its own, lab/state.c).  0 with
 * the error set if that host does not answer. */
static uint64_t
run_budget_mib (const struct verify_run_opts *o)
{
  struct virt_host_info info;

  if (o->budget_mib)
    return o->budget_mib;
  if (!o->host || !lab_host_remote (o->host))
    return lab_default_budget_mib ();
  CLEANUP_VIR_CONNECT virConnectPtr c = virt_connect (o->uri);
  if (!c || virt_host_info (c, &info) == -1) {
    error_prefix ("host %s: its memory (the lab's memory budget)", o->host->name);
    return 0;
  }
  return info.memory / 2 / (1024 * 1024);
}

/* State (its file before any resource, invariant 2), report directory,
 * libvirt, network.  On error what was made is torn down again. */
static int
run_setup (struct run *r)
{
  const struct verify_run_opts *o = r->o;
  uint64_t budget = run_budget_mib (o);

  if (budget == 0)
    return -1;
  const struct lab_state_opts so = {
    .home = o->home, .lab = r->d->name, .file = r->d->file, .kind = r->rep->kind,
    .uri = o->uri, .host = o->host,
    .memory_mib = lab_def_memory_mib (r->d, LAB_VM_MEMORY_MIB),
    .budget_mib = budget, .wait = o->budget_wait, .max_sandboxes = o->max_sandboxes,
  };

  /* the host answers before anything is made (nothing to tear down
   * there if it does not) */
  if (lab_host_open (&r->host) == -1)
    return -1;
  r->st = lab_state_open (&so);
  if (!r->st)
    return -1;
  if (r->host.ctl[0]) {             /* a teardown from state ends it too */
    r->st->ssh_ctl = xstrdup (r->host.ctl);
    lab_state_save (r->st);
  }
  r->rep->run_id = xstrdup (r->st->id);
  r->rep->netns = xstrdup (r->st->netns);
  if (run_report_dir (r) == -1)
    goto err;
  if (!(r->conn = virt_connect (o->uri)))
    goto err;
  if (run_network (r) == -1)
    goto err;
  return 0;
 err:
  {
    ERROR_SAVE (e);
    teardown (r);
    ERROR_RESTORE (e);
  }
  return -1;
}

/* A result and a thread context per VM of the definition, in order. */
static void
run_vms_init (struct run *r)
{
  const struct lab_def *d = r->d;
  struct verify_report *rep = r->rep;
  size_t g, i, k, n = lab_def_nvms (d);

  rep->vms = xcalloc (n + 1, sizeof *rep->vms);
  r->vms = xcalloc (n + 1, sizeof *r->vms);
  for (g = 0, k = 0; g < d->ngroups; g++)
    for (i = 0; i < d->groups[g].nvms; i++, k++) {
      const struct lab_vm *vm = &d->groups[g].vms[i];
      struct verify_vm_result *v = &rep->vms[k];
      v->name = xstrdup (vm->name);
      v->group = xstrdup (d->groups[g].name);
      v->source = vm->image ? xasprintf ("image %s", vm->image)
                            : xasprintf ("%s@%s", vm->name, vm->point);
      v->t_boot = v->t_heartbeat = v->t_app_ready = v->t_start = -1;
      v->status = VERIFY_FAIL;
      r->vms[k].run = r;
      r->vms[k].vm = vm;
      r->vms[k].res = v;
    }
  rep->nvms = r->nvms = n;
}

/* Groups in boot order: a group starts when the one before it booted
 * and was checked; its VMs keep running until the end. */
static void
run_groups (struct run *r)
{
  const struct lab_def *d = r->d;
  size_t g, i, k, first;

  for (g = 0, k = 0; g < d->ngroups; g++) {
    first = k;
    if (!lab_interrupted && !r->isolation_broken)
      say (r, "group %s: %zu VM%s", d->groups[g].name, d->groups[g].nvms,
           d->groups[g].nvms == 1 ? "" : "s");
    for (i = 0; i < d->groups[g].nvms; i++, k++) {
      int e = pthread_create (&r->vms[k].thread, NULL, vm_thread, &r->vms[k]);
      if (e) {
        error_set (e, "pthread_create");
        vm_thread (&r->vms[k]);
      }
      else
        r->vms[k].thread_started = true;
    }
    for (i = first; i < k; i++)
      if (r->vms[i].thread_started)
        pthread_join (r->vms[i].thread, NULL);
  }
}

/* The first VM the lab could not start through no fault of its point. */
static const struct verify_vm_result *
first_lab_fault (const struct verify_report *rep)
{
  size_t i;

  for (i = 0; i < rep->nvms; i++)
    if (rep->vms[i].lab_fault)
      return &rep->vms[i];
  return NULL;
}

/* The counts of the checks and the run's status: "error" (could not
 * verify, exit 1) when the lab failed a VM and no other VM failed for
 * what its own point did: a point never tested is not called bad, and a
 * failure of the lab does not hide one that was ("failed", with the VMs
 * that could not be verified in the message). */
static void
run_verdict (struct run *r)
{
  struct verify_report *rep = r->rep;
  const struct verify_vm_result *lab_fault = first_lab_fault (rep);
  bool point_failed = false;
  size_t i, k;

  for (i = 0; i < rep->nvms; i++) {
    struct verify_vm_result *v = &rep->vms[i];
    if (v->status == VERIFY_FAIL && !v->lab_fault)
      point_failed = true;
    for (k = 0; k < v->nchecks; k++) {
      rep->checks++;
      switch (v->checks[k].status) {
      case VERIFY_PASS: rep->passed++; break;
      case VERIFY_FAIL: rep->failed++; break;
      case VERIFY_SKIP: rep->skipped++; break;
      }
    }
  }
  if (r->isolation_broken) {
    rep->status = xstrdup ("error");
    rep->message = xasprintf ("stopped: %s", r->isolation_msg);
  }
  else if (lab_interrupted) {
    rep->status = xstrdup ("interrupted");
    rep->message = xasprintf ("interrupted by signal %d", (int) lab_interrupted);
  }
  else if (lab_fault) {
    rep->status = xstrdup (point_failed ? "failed" : "error");
    rep->message = xasprintf ("could not verify %s: %s", lab_fault->name,
                              lab_fault->message);
  }
  else
    rep->status = xstrdup (rep->failed ? "failed" : "passed");
}

/* The restore points of the run that the ransomware score flagged at
 * backup time (and no one unflagged): their reason into the report, so
 * that "it boots" is never read as "it is clean".  In the calling thread,
 * where the catalog was opened. */
static void
mark_suspicious (struct run *r)
{
  struct verify_report *rep = r->rep;
  struct catalog_score sc;
  size_t i;

  if (!r->o->record || r->o->repo_id <= 0)
    return;
  for (i = 0; i < rep->nvms; i++) {
    struct verify_vm_result *v = &rep->vms[i];
    CLEANUP_FREE char *vm = v->source ? xstrdup (v->source) : NULL;
    char *at = vm ? strrchr (vm, '@') : NULL;
    int k;
    if (!at || strncmp (vm, "image ", 6) == 0)
      continue;
    *at = '\0';
    k = catalog_score_get (r->o->record, r->o->repo_id, vm, at + 1, &sc);
    if (k == -1)
      say_warning (r, "warning: the ransomware score of %s: %s", v->source, error_msg ());
    else if (k == 1 && sc.suspicious && !sc.unflagged)
      v->suspicious = xstrdup (sc.reason);
  }
}

/* A sandbox stays up until its lease ends (its VMs' handles go, the
 * domains stay; its ssh master, if any, ends); any other run is torn down. */
static void
run_end (struct run *r)
{
  struct verify_report *rep = r->rep;
  size_t i;

  if (r->o->lease > 0 && !r->isolation_broken && !lab_interrupted) {
    r->st->expires = time (NULL) + (time_t) r->o->lease;
    rep->expires = r->st->expires;
    r->st->pid = 0;
    free (r->st->status);
    r->st->status = xstrdup ("up");
    /* nothing holds a connection to the lab's host while it is up: each
     * later command (lab shell, down, reap) opens its own from the state */
    lab_host_close (&r->host);
    free (r->st->ssh_ctl);
    r->st->ssh_ctl = NULL;
    lab_state_save (r->st);
    for (i = 0; i < r->nvms; i++) {
      if (r->vms[i].h)
        lab_vm_forget (r->vms[i].h);
      r->vms[i].h = NULL;
    }
  }
  else {
    double t1 = now_monotonic ();
    teardown (r);
    rep->t_teardown = now_monotonic () - t1;
  }
}

static void
run_free (struct run *r)
{
  size_t i;

  for (i = 0; i < r->nvms; i++)
    lab_vm_destroy (r->vms[i].h);
  free (r->vms);
  strv_free (r->taps);
  lab_host_close (&r->host);
  virt_close (r->conn);
  lab_state_free (r->st);
  verify_report_free (r->rep);
  sem_destroy (&r->slots);
  pthread_cond_destroy (&r->started);
  pthread_mutex_destroy (&r->lock);
}

int
verify_run (const struct lab_def *d, const struct verify_run_opts *o,
            struct verify_report **out)
{
  struct run r = { .d = d, .o = o, .t0 = now_monotonic () };
  struct verify_report *rep = xcalloc (1, sizeof *rep);

  *out = NULL;
  if (o->host)
    r.host = *o->host;
  virt_init ();
  pthread_mutex_init (&r.lock, NULL);
  pthread_cond_init (&r.started, NULL);
  sem_init (&r.slots, 0, o->parallel > 0 ? o->parallel : 2);
  r.rep = rep;
  rep->lab = xstrdup (d->name);
  rep->kind = xstrdup (o->kind ? o->kind : "run");
  rep->file = xstrdup (d->file ? d->file : "");
  rep->started = time (NULL);

  if (run_setup (&r) == -1) {
    run_free (&r);
    return -1;
  }
  run_vms_init (&r);
  run_groups (&r);
  run_verdict (&r);
  run_end (&r);
  mark_suspicious (&r);
  rep->seconds = now_monotonic () - r.t0;
  if (verify_report_write (rep) == -1)
    say_warning (&r, "reports: %s", error_msg ());
  if (o->record && verify_history_record (o->record, rep) == -1)
    say_warning (&r, "warning: the catalog could not record the run: %s",
                 error_msg ());
  *out = rep;
  r.rep = NULL;
  run_free (&r);
  return 0;
}
