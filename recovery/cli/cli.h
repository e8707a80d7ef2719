/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bootback command: shared state and helpers of the subcommands.
 *
 * Exit status: 0 done / verified, 1 could not do it, 2 checked and found
 * problems.  Messages: "bootback: ..." on stderr.
 */
#ifndef BOOTBACK_CLI_H
#define BOOTBACK_CLI_H

#include <getopt.h>
#include <jansson.h>

#include "recovery/catalog/catalog.h"
#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

#define EXIT_PROBLEMS 2

struct cli {
  const char *home;          /* state directory */
  const char *repo_opt;      /* --repo or BOOTBACK_REPO, or NULL */
  struct repo_open_opts repo_open;  /* BOOTBACK_NFS_TIMEOUT, _CONNECTIONS */
  struct catalog *cat;       /* opened on demand */
  struct repo *repo;         /* opened on demand */
  int64_t repo_id;
  const char *on_suspicious; /* --on-suspicious or BOOTBACK_ON_SUSPICIOUS */
  bool accept_rollback;      /* repo check --accept-rollback: the sync forgets
                                the points gone without bootback's prune */
  size_t missing;            /* points gone without it (cli_catalog_sync) */
  char missing_msg[1536];    /* ... said once, refused by cli_repo_intact */
};

/* Open the catalog (once).  -1 after printing the error. */
int cli_catalog (struct cli *c);
/* Open the repository chosen by --repo, BOOTBACK_REPO or the catalog's
 * default, register it in the catalog and bring the catalog's points up
 * to date with it.  -1 after printing. */
int cli_repo (struct cli *c);
/* Record r's "lock_days" in the catalog if it is more than it knew (or
 * with accept, whatever it is), and have r refuse to write points
 * (repo_expect_lock) while its file says less than recorded.  -1 with
 * the error set. */
int cli_repo_lock (struct cli *c, struct repo *r, bool accept);
/* A repository location as the catalog and the sessions keep it: a local
 * path made absolute (resolved if it exists), a URL as given. */
char *cli_absolute (const char *loc);
/* Bring the catalog's points of c->repo up to date with the repository
 * (catalog_points_sync; cli_repo does it).  -1 after printing. */
int cli_catalog_sync (struct cli *c);
/* After cli_repo: -1 (printed) if restore points the catalog recorded are
 * gone from the repository without bootback's prune (a rollback to an
 * older copy?): commands that write points, prune, gc and repo check call
 * it; reading commands only get cli_catalog_sync's warning. */
int cli_repo_intact (struct cli *c);
/* Commit step 4: the catalog row of a new point (cmd-point.c).  A failure
 * is harmless (reindex restores it) and is reported as a warning. */
void cli_record_point (struct cli *c, const struct repo_manifest *m);
/* The point's ransomware score: recorded, warned about and the hook run
 * if it is suspicious (score.c; cli_record_point calls it). */
void cli_score_point (struct cli *c, const struct repo_manifest *m);
/* Score every point of c->repo that has no score yet, oldest first, the
 * share of incompressible data from the changed chunks' headers; no hook
 * (repo reindex).  -1 with the error set. */
int cli_score_missing (struct cli *c, long *scored, long *suspicious);
/* The point's score as JSON (null if none). */
json_t *cli_score_json (struct cli *c, const char *vm, const char *id);
/* "suspicious", "unflagged" or "", and the reason (score.c). */
const char *cli_score_mark (struct cli *c, const char *vm, const char *id,
                            char reason[SCORE_REASON_MAX]);
/* This host's settings for instant sessions, from the environment
 * (BOOTBACK_DOMAIN_TYPE, BOOTBACK_OVERLAY_MIN_FREE) and c (how to reach
 * the repository), into o (cmd-instant.c; `lab run` and `verify` too). */
struct instant_opts;
void cli_instant_env (struct cli *c, struct instant_opts *o);
/* bootback instant with several points (instant-many.c): o as for one
 * (agent_timeout: how long to wait for all heartbeats). */
struct instant_many_opts {
  int64_t cache;            /* the pool's cache, bytes; 0: 256 MiB */
  uint64_t budget_mib;      /* memory of all the VMs; 0: available - 1 GiB */
  bool json;
  bool require_clean, force;  /* the scan gate (cli_scan_gate) of each point */
  /* what the gate approved of each point (instant_opts.approved), NULL
   * or NULL entries where there is none */
  struct repo_manifest **approved;
};
int cli_instant_many (struct cli *c, char **points, size_t n,
                      struct instant_opts *o, const struct instant_many_opts *m);
/* Print "bootback: " + fmt + the last error's message (if with_error). */
void cli_error (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
/* "bootback: <last error>". */
void cli_perror (void);
/* Print json to stdout (and a newline) and free it. */
void cli_json_print (json_t *o);
/* Parse a non-negative integer option; exits 1 with a message if bad. */
int cli_int_arg (const char *opt, const char *s);
/* Print text (a usage message) to stdout and exit 0. */
void cli_usage (const char *text) __attribute__((noreturn));
/* Same on stderr with exit 1 (wrong usage). */
void cli_bad_usage (const char *text) __attribute__((noreturn));

/* Subcommands: argv[0] is the subcommand's name. */
int cmd_repo (struct cli *c, int argc, char **argv);
int cmd_import (struct cli *c, int argc, char **argv);
int cmd_points (struct cli *c, int argc, char **argv);
int cmd_point (struct cli *c, int argc, char **argv);
int cmd_restore (struct cli *c, int argc, char **argv);
int cmd_tls (struct cli *c, int argc, char **argv);
int cmd_host (struct cli *c, int argc, char **argv);
int cmd_hosts (struct cli *c, int argc, char **argv);
/* The libvirt URI --host NAME stands for (cmd-host.c): a host of
 * `bootback host add`, or a URI as it is (it holds ":/"); malloc'd, NULL
 * after printing the error. */
char *cli_host_uri (struct cli *c, const char *host);
/* After the options: if --host was given (host not NULL), *uri becomes
 * its URI (kept until exit).  -1 (said) if --connect was given too or the
 * host is unknown. */
int cli_host_option (struct cli *c, const char *host, const char **uri);
/* A host of the catalog for a lab (lab run/up, verify --host NAME, host:
 * in a definition): its name and ssh destination into out, and its URI
 * (malloc'd); NULL after printing the error if there is no such host or
 * it has no ssh destination (naming the host and --ssh). */
struct lab_host;
char *cli_lab_host (struct cli *c, const char *name, struct lab_host *out);
int cmd_prune (struct cli *c, int argc, char **argv);
int cmd_gc (struct cli *c, int argc, char **argv);
int cmd_serve (struct cli *c, int argc, char **argv);       /* cmd-serve.c */
int cmd_mount (struct cli *c, int argc, char **argv);
int cmd_umount (struct cli *c, int argc, char **argv);
/* nbdkit serving vm@id disk read-only on sock, holding the point (what:
 * the holder's name; NULL: no hold). */
int start_nbdkit (struct cli *c, const char *vm, const char *id,
                  const char *disk, int partition, const char *sock,
                  const char *pidfile, bool foreground, const char *what);
int cmd_scan (struct cli *c, int argc, char **argv);        /* cmd-scan.c */
/* The point's latest scan as JSON (null if none) and one line of text. */
json_t *cli_scan_json (struct cli *c, const char *vm, const char *id);
void cli_scan_show (struct cli *c, const char *vm, const char *id);
/* --require-clean: 0 if the point spec's last scan is clean and it is not
 * suspicious, or force (a warning); else -1, printed.  *approved gets
 * (malloc'd) the manifest the gate read and found to be the disks the scan
 * read, when it passed on its own (NULL with force): instant_start then
 * boots those disks or nothing (instant_opts.approved). */
int cli_scan_gate (struct cli *c, const char *spec, bool force,
                   struct repo_manifest **approved);
/* The lab's scan check (verify_scan_fn; opaque: the struct cli). */
json_t *cli_scan_lab (void *opaque, const char *vm, const char *id,
                      const char *rules, const char *signatures);
/* cmd-instant.c */
int cmd_instant (struct cli *c, int argc, char **argv);
int cmd_sessions (struct cli *c, int argc, char **argv);
int cmd_migrate (struct cli *c, int argc, char **argv);
int cmd_supervise (struct cli *c, int argc, char **argv);
int cmd_backup (struct cli *c, int argc, char **argv);
int cmd_lab (struct cli *c, int argc, char **argv);       /* cmd-lab.c */
int cli_lab_check (struct cli *c, int argc, char **argv); /* cmd-lab-check.c */
/* lab exec|cp|console|checkpoint|checkpoints|reset|extend (cmd-sandbox.c) */
int cli_lab_exec (struct cli *c, int argc, char **argv);
int cli_lab_cp (struct cli *c, int argc, char **argv);
int cli_lab_console (struct cli *c, int argc, char **argv);
int cli_lab_checkpoint (struct cli *c, int argc, char **argv);
int cli_lab_checkpoints (struct cli *c, int argc, char **argv);
int cli_lab_reset (struct cli *c, int argc, char **argv);
int cli_lab_extend (struct cli *c, int argc, char **argv);
int cmd_verify (struct cli *c, int argc, char **argv);
int cmd_history (struct cli *c, int argc, char **argv);
int cmd_report (struct cli *c, int argc, char **argv);     /* cmd-report.c */
int cmd_report_verify (struct cli *c, int argc, char **argv);  /* cmd-report-verify.c */
int cmd_web (struct cli *c, int argc, char **argv);        /* cmd-web.c */
/* While bootback web runs, $BOOTBACK_HOME/web.listen holds "PID
 * ADDR:PORT" (its --listen): lab up warns when it publishes a sandbox's
 * port on that address, where a browser sends the console's cookie to the
 * guest (cookies are scoped by host, not port). */
#define CLI_WEB_LISTEN_FILE "web.listen"
/* bootback history --check: the run chain; exit status (cmd-report-verify.c). */
int cli_history_check (struct cli *c, bool json);

#endif /* BOOTBACK_CLI_H */
