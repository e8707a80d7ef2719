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
 *   ocr.c          the words on a screenshot (tesseract), for boot
 *                  failures only the screen shows
 *   run.c          a lab run: state, network, isolation checks, groups in
 *                  boot order (boot timeout, delay), checks, timings,
 *                  teardown (also on SIGINT/SIGTERM)
 *   report.c       JSON, one-page HTML (screenshots inline), JUnit XML
 *   history.c      lab runs and check results in the catalog
 *   summary.c      per-VM summaries over a window (bootback report),
 *                  the regression of a VM's time to application ready
 *                  (bootback history), durations in words
 *   history.c      lab runs and check results in the catalog, their
 *                  hash chain; sealing a recorded run's reports
 *   sign.c         the appliance's report-signing key (Ed25519) and the
 *                  detached signatures FILE.sig
 *   find-good.c    the newest point that passes: newest first, then
 *                  bisection (verify --find-good)
 *   recheck.c      lab check: a sandbox's checks again, compared with
 *                  its run at lab up
 *
 * Findings of a verification are results (struct verify_report), not
 * errors; -1 and the last error mean the lab could not run.
 */
#ifndef BOOTBACK_VERIFY_H
#define BOOTBACK_VERIFY_H

#include <jansson.h>
#include <sys/types.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

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
  json_t *scan;              /* scan check: what the scan found (see
                                verify_scan_fn), or NULL */
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
  char *suspicious;          /* the restore point is flagged by the
                                ransomware score at backup time (and not
                                unflagged): its reason; NULL if not */
  char **notes;              /* what the rewrite of a restore point's saved
                                definition removed or replaced (allow-list),
                                NULL-terminated, or NULL */
  size_t nnotes;
};

/* The key fingerprint: "SHA256:" and the hex SHA-256 of the raw public key. */
#define VERIFY_KEY_FPR_LEN (7 + SHA256_HEX_LEN)

/* What makes a report evidence (history.c sets it when it records a run,
 * report.c writes it into report.json and report.html).  Fixed arrays:
 * nothing to free. */
struct verify_evidence {
  bool sealed;               /* set: the fields below say what is true */
  int64_t catalog_id;        /* the run's lab_runs row, 0: not recorded */
  char chain[SHA256_HEX_LEN + 1];     /* its hash in the run chain, or "" */
  char prev[SHA256_HEX_LEN + 1];      /* the hash it follows ("" = first) */
  char key[VERIFY_KEY_FPR_LEN + 1];   /* the signing key, "" = unsigned */
  char unsigned_reason[512];          /* why not signed */
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
  struct verify_evidence evidence;   /* zero until sealed (history.c) */
};
void verify_report_free (struct verify_report *r);

/* ---- checks (check.c) ---------------------------------------------------- */

/* The scan check's scanner, given by whoever runs the lab (the CLI has
 * the scanner, recovery/scan): the malware scan of restore point vm@id
 * (id "latest" or a time stamp) with the YARA rules file and the
 * signature directory (NULL: $BOOTBACK_HOME/scan/).  The catalog's last
 * scan of the point if it is conclusive (clean or found), else a scan
 * now.  Returns {"point": "VM@ID", "verdict": "clean"|"found"|
 * "incomplete", "from": "catalog"|"scan", "time", "matches": [{path,
 * rule, engine, disk, partition, volume ("VG/LV" or absent), fs}],
 * "not_scanned": [{disk, partition, volume, fs, reason}], "suspicious":
 * REASON or null}, or NULL with
 * the error set (it could not scan).  Every string in it but the verdict
 * and "from" may come from the guest.  Called from the VMs' threads. */
typedef json_t *(*verify_scan_fn) (void *opaque, const char *vm,
                                   const char *id, const char *rules,
                                   const char *signatures);

struct verify_target {
  virDomainPtr dom;
  const struct lab_net *net;
  const char *vm;            /* VM name */
  const char *domain;        /* libvirt domain name */
  const char *address;       /* IPv4 or NULL */
  const char *shot_path;     /* where a screenshot check writes its PNG */
  const char *point;         /* the restore point "VM@ID", or NULL (image) */
  verify_scan_fn scan;       /* the scan check's scanner, or NULL */
  void *scan_opaque;
  bool scan_force;           /* an infected or suspicious point passes */
};

/* Run check c against t: attempts until one passes, 1 + retries of them,
 * each bounded by the check's timeout, interval seconds apart; stops
 * early if lab_interrupted.  Fills r (free with verify_check_result_clear).
 * Network checks run inside the lab namespace. */
void verify_check_run (const struct lab_check *c, const struct verify_target *t,
                       struct verify_check_result *r);
void verify_check_result_clear (struct verify_check_result *r);

/* The scan check's verdict from what the scanner returned (scan, taken;
 * NULL: it could not scan, why in the error): pass (clean, or --force),
 * fail (matches, naming the first rule and file, or suspicious), skip
 * (could not scan: never a pass).  Fills r's status, message and scan. */
void verify_scan_verdict (json_t *scan, bool force,
                          struct verify_check_result *r);

/* One attempt of each kind; 0 pass, -1 fail with msg filled. */
int verify_agent_ping (virDomainPtr dom, int timeout, char *msg, size_t len);
int verify_icmp_ping (const struct lab_net *net, const char *address,
                      double timeout, char *msg, size_t len);
/* Run "/bin/sh -c command" in the guest through the agent: exit status
 * (>= 0) with its output (stdout then stderr, up to len-1 bytes) in out,
 * or -1 (agent error, timeout) with the reason in out. */
int verify_guest_exec (virDomainPtr dom, const char *command, double timeout,
                       char *out, size_t len);
/* The end of a guest command from guest-exec-status's reply st (exited):
 * its exit status (>= 0: 128 + a signal, 255 for a status that is none),
 * its output into out (as verify_guest_exec). */
int verify_guest_exec_status (json_t *st, char *out, size_t len);
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

/* ---- a quick verification's definition (quick.c) ------------------------ */

struct repo;
/* What `bootback verify` and a web verify job ask for beyond the VM. */
struct verify_quick {
  const char *address, *gateway, *subnet, *boot, *memory;
  double rto, rpo;        /* --rto, --rpo; < 0: not given */
  char *checks[64];       /* NULL-ended */
  int nchecks;
};
/* The lab definition verifying vm@point: HOME/verify/VM.yaml if there is
 * one (its problems on stderr), else q and the point's domain XML's
 * <bb:verify> (refused checks named on stderr); q's rto and rpo on the
 * point's VMs.  NULL with the error set. */
struct lab_def *verify_quick_def (const char *home, struct repo *repo,
                                  const struct verify_quick *q,
                                  const char *vm, const char *point);
/* Why a run's VM vm failed, in one line: its message, else its failed
 * checks ("heartbeat: no answer; http: HTTP 503, expected 200"); "" if
 * it passed (malloc'd). */
char *verify_report_reason (const struct verify_report *r, const char *vm);

/* ---- a lab run (run.c) --------------------------------------------------- */

struct verify_run_opts {
  const char *home;          /* state directory (required) */
  const char *repo;          /* repository (restore-point VMs) */
  /* This host's settings for instant sessions (lab_vm_env.instant). */
  const struct instant_opts *instant;
  const char *uri;           /* libvirt URI; NULL = default */
  /* Another host (uri is its URI): the network is made and checked there
   * and the checks run there, through ssh (lab/hostcmd.c); NULL: here. */
  const struct lab_host *host;
  const char *report_dir;    /* NULL = HOME/reports/<lab>-<time>-<id> */
  const char *kind;          /* "run", "sandbox", "verify" */
  int parallel;              /* VMs booting at once (0 = 2) */
  uint64_t budget_mib;       /* memory budget of all lab runs (0 = default) */
  double budget_wait;        /* seconds to wait for the budget (<0 forever) */
  double lease;              /* > 0: sandbox; keep it up this long */
  int max_sandboxes;         /* refuse a sandbox when this many are up
                                (lab_state_opts.max_sandboxes; 0 none) */
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
  int64_t repo_id;           /* repo's id in record: the report marks
                                points the ransomware score flags; 0 not */
  bool allow_passthrough;    /* restore points keep their host-side devices
                                (lab_vm_env.allow_passthrough) */
  /* The scan check (verify_scan_fn; NULL: a scan check cannot run, it
   * could not verify) and --force: an infected or suspicious point passes
   * it, said in its message. */
  verify_scan_fn scan;
  void *scan_opaque;
  bool scan_force;
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
/* Helpers of the HTML pages (the lab report's and others'): text with
 * < > & " ' escaped, and the <style> element of the report's look, its
 * header in header_colour (e.g. "#1a7f37"). */
void verify_html_escape (FILE *f, const char *s);
void verify_html_style (FILE *f, const char *header_colour);

/* Write the reports of r (with r->evidence) into r->dir again and sign
 * each with key (sign.c); key NULL: unsigned, r->evidence says why.
 * -1 on the first file that could not be written or signed. */
struct verify_key;
int verify_report_seal (const struct verify_report *r, const struct verify_key *key);

/* Add a lab check's result (verify_recheck) to the reports in dir: it is
 * appended to recheck.json (an array) and shown as a section "lab check"
 * of report.html, before its footer.  report.json stays as the run wrote
 * it.  With key (the reports were signed): report.html and recheck.json
 * (if there is one yet) must be as key signed them, else nothing is
 * changed (dir may be one others can write); both are signed again, as
 * written.  Links in their place are not followed.  -1 with the error
 * set. */
int verify_report_add_recheck (const char *dir, json_t *recheck,
                               const struct verify_key *key);

/* ---- lab check (recheck.c) ------------------------------------------------ */

/* Run the checks of sandbox s's definition d again on its running VMs
 * (after proving its isolation again) and compare each with its result
 * at lab up: {run, lab, checked, isolation: "proven" or why not,
 * isolated, checks: [{vm, check, kind, before, now, message,
 * regressed}], regressions}.  before is null for a check not run at lab
 * up; a check "regressed" when it passed then and fails now.  NULL (error
 * set) if libvirt cannot be reached. */
json_t *verify_recheck (const struct lab_state *s, const struct lab_def *d);

/* ---- history in the catalog (history.c) ---------------------------------- */

/* Record a finished run with its VMs and checks in the catalog, in one
 * transaction (BEGIN IMMEDIATE) that also chains it: the run's hash over
 * its rows and the hash of the run recorded before it.  Then, if its
 * reports were written (r->dir/report.json), seal them: write them again
 * with the run's chain hash and sign each with the appliance key of the
 * catalog's state directory (verify_key_appliance).  Reports that cannot
 * be signed stay, marked "signed": false, said on stderr as a warning.
 * -1 if the catalog could not record the run. */
int verify_history_record (struct catalog *cat, const struct verify_report *r);
/* Past runs of vm, oldest first, as a JSON array of objects {run, lab,
 * kind, started, status, source, t_boot, t_heartbeat, t_app_ready,
 * report_dir, message, failed_checks}.  NULL on error. */
json_t *verify_history_json (struct catalog *cat, const char *vm);

/* ---- summaries (summary.c) ---------------------------------------------- */

/* A duration in words: under a minute to a tenth of a second ("7.3s",
 * "45s"), else its two largest units, rounded down ("2m13s", "2m",
 * "4h10m", "3d4h").  Returns buf. */
#define VERIFY_DURATION_LEN 32
char *verify_duration_str (double secs, char *buf, size_t len);
/* The median and the p-th percentile (0 < p <= 100, nearest rank) of
 * v[0..n), which they sort; -1 if n is 0. */
double verify_median (double *v, size_t n);
double verify_percentile (double *v, size_t n, double p);

/* One VM over a window [since, now]: restore points, verifications (lab
 * VM rows whose source is one of its points, or image runs of its name)
 * with their pass rate and their time to application ready. */
struct verify_summary_vm {
  char *vm;
  int points, points_window;      /* restore points: all, in the window */
  int runs, passed;               /* verifications in the window */
  double rto_median, rto_p95;     /* t_app_ready of the passed ones; -1 none */
  int rto_samples;
  char *newest;                   /* newest point id, or NULL */
  time_t newest_time;
  char *verified;                 /* newest point with a passed
                                     verification (at any time), or NULL */
  time_t verified_time, verified_at;   /* its time, that verification's */
  int suspicious;                 /* points in the window the ransomware
                                     score flags (not unflagged) */
  char *suspicious_newest;        /* the newest of them, or NULL */
  time_t suspicious_time;
  char *suspicious_reason;        /* its score's reason */
  /* gathered by the add functions, for verify_summary_finish */
  double *ready;
  size_t nready;
  char **point_ids;               /* the VM's points, as added */
  time_t *point_times;
  size_t npoints;
  char **ok_points;               /* points of passed verifications */
  time_t *ok_at;
  size_t nok;
};
struct verify_summary {
  time_t since, now;
  char **only;                    /* the VMs asked for, or NULL: all */
  struct verify_summary_vm *vms;  /* by name */
  size_t nvms;
};
/* An empty summary of [since, now] for the VMs only (NULL-ended; NULL:
 * every VM that has a point, or a verification in the window). */
struct verify_summary *verify_summary_new (time_t since, time_t now,
                                           char *const *only);
/* Add a restore point, a lab VM row (vm: the lab VM's name; source: "VM@ID"
 * or "image PATH"; passed: its status was pass; t_app_ready < 0: none). */
void verify_summary_add_point (struct verify_summary *s, const char *vm,
                               const char *id, time_t t);
void verify_summary_add_run (struct verify_summary *s, const char *vm,
                             const char *source, time_t started, bool passed,
                             double t_app_ready);
/* Compute the rates, medians and newest points once everything is added. */
void verify_summary_finish (struct verify_summary *s);
/* A summary from the catalog: the points of repository repo_id and every
 * lab run recorded.  NULL on error. */
struct verify_summary *verify_summary_read (struct catalog *cat, int64_t repo_id,
                                            time_t since, time_t now,
                                            char *const *only);
json_t *verify_summary_json (const struct verify_summary *s);
/* A self-contained HTML page (malloc'd). */
char *verify_summary_html (const struct verify_summary *s);
void verify_summary_free (struct verify_summary *s);

/* The regression of a VM's time to application ready: its newest run's
 * against the median of up to max_previous runs before it that have one.
 * history: verify_history_json's array.  Returns 1 and fills r if both
 * exist (r->regression: the newest is more than threshold percent over
 * the median), 0 if not. */
struct verify_regression {
  double newest, median;          /* seconds */
  int previous;                   /* runs the median is of */
  double change_percent;          /* (newest - median) / median * 100 */
  double threshold_percent;
  bool regression;
  const char *run, *started;      /* the newest run's (in history) */
};
int verify_regression (json_t *history, int max_previous, double threshold,
                       struct verify_regression *r);
json_t *verify_regression_json (const struct verify_regression *r);
/* Walk the run chain, oldest run first (history.c): every chained run's
 * hash recomputed from its rows and the hash it names as its previous
 * matched against the run before it.  Runs recorded before the chain
 * (schema 3) are unchained, not broken; a run without a hash after a
 * chained one is broken (its hash was removed).  Deleting the newest runs
 * leaves an intact chain: only their signed reports (evidence.chain) or a
 * copy kept elsewhere show it. */
struct verify_chain_check {
  size_t checked, unchained; /* chained runs verified, runs before it */
  bool broken;               /* the first break, if broken: */
  int64_t id;                /* the run's lab_runs row */
  char run[64], lab[128];
  time_t started;
  const char *problem;       /* "edited", "deleted", "unhashed" */
  char message[512];         /* the sentence naming the run */
};
/* 0 with *out filled (broken or not), -1 if the catalog cannot be read. */
int verify_history_check (struct catalog *cat, struct verify_chain_check *out);
json_t *verify_chain_check_json (const struct verify_chain_check *k);

/* ---- signed reports (sign.c) ----------------------------------------------- */

/* An Ed25519 key with its fingerprint; private or public only. */
struct verify_key;
#define VERIFY_KEY_DIR "keys"
#define VERIFY_KEY_FILE "report-ed25519.pem"
#define VERIFY_PUBKEY_FILE "report-ed25519.pub.pem"
#define VERIFY_SIG_SUFFIX ".sig"

/* The appliance's signing key, HOME/keys/report-ed25519.pem, made on
 * first use (0600 in a 0700 directory, created under a temporary name and
 * renamed without replacing, so concurrent runs end up with one key), its
 * public half written next to it as report-ed25519.pub.pem.  An existing
 * key file that is not a regular file of ours with mode 0600 (or
 * stricter), or not an Ed25519 private key, is refused.  NULL with the
 * error set naming the file. */
struct verify_key *verify_key_appliance (const char *home);
/* A public key from a PEM file (an auditor's copy, or HOME/keys/
 * report-ed25519.pub.pem); not Ed25519 is refused.  NULL with the error. */
struct verify_key *verify_key_public (const char *path);
const char *verify_key_fingerprint (const struct verify_key *k);
void verify_key_free (struct verify_key *k);

/* Sign the file's exact bytes into PATH.sig (written under a temporary
 * name, renamed).  The signature file is text, one "name: value" a line:
 *   bootback-signature: 1
 *   algorithm: ed25519
 *   key: SHA256:<hex of SHA-256 of the raw 32-byte public key>
 *   signature: <base64 of the 64-byte Ed25519 signature>
 * -1 with the error set. */
int verify_sign_file (const struct verify_key *k, const char *path);
/* The whole of path into *buf (malloc'd, NUL-ended), *len its bytes:
 * a regular file of at most 1 GiB (a FIFO in its place fails, never
 * blocks); oflags are added to the open's (O_NOFOLLOW).  -1 with the
 * error set (its errno the open's, e.g. ENOENT). */
int verify_read_file (const char *path, int oflags, unsigned char **buf,
                      size_t *len);
/* text as the new file tmp, 0600: what is at that name is removed first
 * (a file of a run of ours that died, or anything someone put there in a
 * directory others can write, a FIFO that would block the open) and the
 * file is created, never opened (O_EXCL).  -1 with the error set. */
int verify_write_new (const char *tmp, const char *text);
/* The same over data, the bytes written to path: what is in path when it
 * is signed is not read (a report directory others can write may hold
 * their file by then). */
int verify_sign_data (const struct verify_key *k, const char *path, const void *data,
                      size_t len);

enum verify_sig_verdict {
  VERIFY_SIG_GOOD,           /* signed by k, unchanged since */
  VERIFY_SIG_CHANGED,        /* signed by k, the bytes differ now */
  VERIFY_SIG_OTHER_KEY,      /* signed by another key (sig_key says which) */
  VERIFY_SIG_MALFORMED,      /* PATH.sig is not a bootback signature */
};
const char *verify_sig_verdict_name (enum verify_sig_verdict v);
/* Check path against PATH.sig with k: 0 with *verdict (and the key the
 * signature names in sig_key, "" if none) and why in msg; -1 if it could
 * not be checked (no PATH.sig, unreadable file) with the error set. */
int verify_sig_check (const struct verify_key *k, const char *path,
                      enum verify_sig_verdict *verdict,
                      char sig_key[VERIFY_KEY_FPR_LEN + 1], char *msg, size_t len);
/* The same for data, the bytes of path already read (what is checked is
 * what the caller goes on to use). */
int verify_sig_check_data (const struct verify_key *k, const char *path,
                           const void *data, size_t dlen,
                           enum verify_sig_verdict *verdict,
                           char sig_key[VERIFY_KEY_FPR_LEN + 1], char *msg, size_t len);
/* ---- the screen's words (ocr.c) ------------------------------------------- */

/* The text on a screenshot (PPM or PNG bytes, as virt_screenshot gives
 * them), read by tesseract in a process of its own (as nobody, at most
 * 30 s, 64 KiB of text), malloc'd; NULL with the error set (tesseract or
 * its English data not installed, not an image, too slow). */
char *verify_ocr (const unsigned char *img, size_t len);

/* ---- the newest good point (find-good.c) ----------------------------------- */

/* Verify point i of n (oldest first): 1 passed, 0 failed, -1 could not
 * verify (the search stops). */
typedef int (*verify_try_fn) (void *opaque, size_t i);
/* Try the newest of n points, then bisect the older ones (assuming good
 * points precede bad ones); *good is the index of the newest point found
 * to pass, -1 if none did.  -1 if a try returned -1. */
int verify_find_good (size_t n, verify_try_fn try, void *opaque, ssize_t *good);

#endif /* BOOTBACK_VERIFY_H */
