/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * verify: the checks of a verification lab, the lab run that boots groups
 * in order and checks every VM, and the reports (libverify.a).
 *
 *   check.c        one check with its timeout and retries: heartbeat
 *                  (guest agent), ping, tcp, http (inside the lab
 *                  namespace), script (run in the namespace), guest-exec,
 *                  screenshot
 *   png.c          PPM screenshots -> PNG
 *   run.c          a lab run: state, network, isolation checks, groups in
 *                  boot order (boot timeout, delay), checks, timings,
 *                  teardown (also on SIGINT/SIGTERM)
 *   report.c       JSON, one-page HTML (screenshots inline), JUnit XML
 *   history.c      lab runs and check results in the catalog
 *   find-good.c    the newest point that passes: newest first, then
 *                  bisection (verify --find-good)
 *
 * Findings of a verification are results (struct verify_report), not
 * errors; -1 and the last error mean the lab could not run.
 */
#ifndef BOOTBACK_VERIFY_H
#define BOOTBACK_VERIFY_H

#include <jansson.h>
#include <sys/types.h>

#include "lab/lab.h"

struct catalog;

enum verify_status { VERIFY_PASS, VERIFY_FAIL, VERIFY_SKIP };
const char *verify_status_name (enum verify_status s);   /* pass fail skip */
const char *verify_kind_name (enum lab_check_kind k);    /* "heartbeat", ... */

struct verify_check_result {
  char *name;                /* the check's display name */
  const char *kind;          /* "heartbeat", "http", ... */
  enum verify_status status;
  char *message;             /* what happened, e.g. "HTTP 503, expected 200" */
  char *output;              /* script/guest-exec output (tail), or NULL */
  char *screenshot;          /* PNG file name in the report directory */
  int attempts;
  double seconds;            /* from first attempt to result */
  double at;                 /* seconds from VM start to result */
};

struct verify_vm_result {
  char *name, *group, *source, *domain, *address, *mac;
  enum verify_status status; /* pass: every check passed */
  char *message;             /* why it failed or did not start */
  bool lab_fault;            /* it did not start because of the lab or the
                                host (libvirt, nbdkit, memory, space), not
                                of the restore point: the run could not
                                verify it */
  double t_boot;             /* from start to first sign of life, -1 */
  double t_heartbeat;        /* ... to the guest agent's first answer, -1 */
  double t_app_ready;        /* ... to every application check passed, -1 */
  double t_start;            /* of which starting it took (overlay or
                                instant session, domain), -1 */
  struct verify_check_result *checks;
  size_t nchecks;
  char *console;             /* last lines of the serial console */
  char **notes;              /* what the rewrite of a restore point's saved
                                definition removed or replaced (allow-list),
                                NULL-terminated, or NULL */
  size_t nnotes;
};

struct verify_report {
  char *lab, *run_id, *kind, *file, *dir;
  time_t started;
  double seconds;
  char *status;              /* "passed", "failed", "error", "interrupted" */
  char *message;             /* for "error" and "interrupted" */
  char *netns;               /* sandboxes: the namespace to reach VMs from */
  time_t expires;            /* sandboxes: lease end */
  double t_setup;            /* network made and proven isolated, seconds */
  double t_teardown;         /* everything removed again, seconds */
  int checks, passed, failed, skipped;
  struct verify_vm_result *vms;
  size_t nvms;
};
void verify_report_free (struct verify_report *r);

/* ---- checks (check.c) ---------------------------------------------------- */

struct verify_target {
  virDomainPtr dom;
  const struct lab_net *net;
  const char *vm;            /* VM name */
  const char *domain;        /* libvirt domain name */
  const char *address;       /* IPv4 or NULL */
  const char *shot_path;     /* where a screenshot check writes its PNG */
};

/* Run check c against t: attempts until one passes, 1 + retries of them,
 * each bounded by the check's timeout, interval seconds apart; stops
 * early if lab_interrupted.  Fills r (free with verify_check_result_clear).
 * Network checks run inside the lab namespace. */
void verify_check_run (const struct lab_check *c, const struct verify_target *t,
                       struct verify_check_result *r);
void verify_check_result_clear (struct verify_check_result *r);

/* One attempt of each kind; 0 pass, -1 fail with msg filled. */
int verify_agent_ping (virDomainPtr dom, int timeout, char *msg, size_t len);
int verify_icmp_ping (const struct lab_net *net, const char *address,
                      double timeout, char *msg, size_t len);
/* Run "/bin/sh -c command" in the guest through the agent: exit status
 * (>= 0) with its output (stdout then stderr, up to len-1 bytes) in out,
 * or -1 (agent error, timeout) with the reason in out. */
int verify_guest_exec (virDomainPtr dom, const char *command, double timeout,
                       char *out, size_t len);
/* The first IPv4 address in the lab subnet the guest agent reports, into
 * out (16 bytes); -1 if none. */
int verify_agent_address (virDomainPtr dom, const struct lab_net *net,
                          char out[16]);
/* Capture the console into a PNG file.  -1 with msg. */
int verify_screenshot (virDomainPtr dom, const char *path, char *msg, size_t len);

/* ---- PNG (png.c) ------------------------------------------------------- */

/* Convert a binary PPM (P6, maxval 255) to PNG.  *png malloc'd. -1 if the
 * PPM is not valid. */
int verify_ppm_to_png (const unsigned char *ppm, size_t len,
                       unsigned char **png, size_t *pnglen);

/* ---- a lab run (run.c) --------------------------------------------------- */

struct verify_run_opts {
  const char *home;          /* state directory (required) */
  const char *repo;          /* repository (restore-point VMs) */
  /* This host's settings for instant sessions (lab_vm_env.instant). */
  const struct instant_opts *instant;
  const char *uri;           /* libvirt URI; NULL = default */
  const char *report_dir;    /* NULL = HOME/reports/<lab>-<time>-<id> */
  const char *kind;          /* "run", "sandbox", "verify" */
  int parallel;              /* VMs booting at once (0 = 2) */
  uint64_t budget_mib;       /* memory budget of all lab runs (0 = default) */
  double budget_wait;        /* seconds to wait for the budget (<0 forever) */
  double lease;              /* > 0: sandbox; keep it up this long */
  bool quiet;                /* no progress lines */
  /* Before a restore point VM starts, check that every chunk of its point
   * is there with its size (repo check of the one point); a point with
   * problems fails without booting: "repository damaged: ...". */
  bool check_chunks;
  /* Where the run's lines go, one call per line (no newline), one call
   * at a time (the VM threads too): progress ("lab ID: web1: booted in
   * 3.1 s", none if quiet) and, with warning set, what went wrong while
   * the run went on ("reports: ...", "teardown of lab ...").  NULL: not
   * said. */
  void (*note) (void *opaque, bool warning, const char *line);
  void *note_opaque;
  struct catalog *record;    /* record the run in this catalog (the
                                caller's, opened in this thread); NULL:
                                not recorded */
  bool allow_passthrough;    /* restore points keep their host-side devices
                                (lab_vm_env.allow_passthrough) */
};

/* Run lab d: see run.c.  Returns 0 with *out the report (its status says
 * passed/failed; interrupted runs too, with status "interrupted"), or -1
 * if the lab could not run at all (nothing is left behind either way,
 * except a sandbox that came up).  The report files are written to
 * (*out)->dir and the run recorded in o->record (if set). */
int verify_run (const struct lab_def *d, const struct verify_run_opts *o,
                struct verify_report **out);

/* ---- reports (report.c) -------------------------------------------------- */

json_t *verify_report_json (const struct verify_report *r);
/* Write report.json, report.html and junit.xml into r->dir.  -1 on error. */
int verify_report_write (const struct verify_report *r);
/* The HTML page / JUnit XML as strings (malloc'd). */
char *verify_report_html (const struct verify_report *r);
char *verify_report_junit (const struct verify_report *r);

/* ---- history in the catalog (history.c) ---------------------------------- */

/* Record a finished run with its VMs and checks in the catalog, in one
 * transaction.  -1 on error. */
int verify_history_record (struct catalog *cat, const struct verify_report *r);
/* Past runs of vm, oldest first, as a JSON array of objects {run, lab,
 * kind, started, status, source, t_boot, t_heartbeat, t_app_ready,
 * report_dir, message, failed_checks}.  NULL on error. */
json_t *verify_history_json (struct catalog *cat, const char *vm);

/* ---- the newest good point (find-good.c) ----------------------------------- */

/* Verify point i of n (oldest first): 1 passed, 0 failed, -1 could not
 * verify (the search stops). */
typedef int (*verify_try_fn) (void *opaque, size_t i);
/* Try the newest of n points, then bisect the older ones (assuming good
 * points precede bad ones); *good is the index of the newest point found
 * to pass, -1 if none did.  -1 if a try returned -1. */
int verify_find_good (size_t n, verify_try_fn try, void *opaque, ssize_t *good);

#endif /* BOOTBACK_VERIFY_H */
