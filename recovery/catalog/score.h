/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ransomware score of a restore point (docs/design.md, "Ransomware
 * score").  Raw statistics per point, measured at backup time (or, for a
 * point reindexed without them, from the indexes and the changed chunks'
 * headers), and a pure verdict
 * comparing them with the VM's earlier points.
 */
#ifndef BOOTBACK_SCORE_H
#define BOOTBACK_SCORE_H

#include <stdbool.h>
#include <stdint.h>

#include "recovery/repo/repo.h"

#define SCORE_REASON_MAX 512
#define SCORE_HISTORY 20        /* earlier points compared with */
#define SCORE_MIN_HISTORY 4     /* fewer: young history, fixed floors */
#define SCORE_Z 5.0             /* robust z-score flagged */
#define SCORE_RAW_MIN 0.5       /* and this share of the replaced data
                                   incompressible */
#define SCORE_MIN_NEW (1u << 20) /* and at least this many bytes of it */

/* The raw statistics of one point against the point before it. */
struct score_stats {
  bool has_prev;              /* false: the VM's first point, no score */
  uint64_t disk_bytes;        /* the disks' sizes */
  uint64_t changed_bytes;     /* chunks differing from the previous point */
  uint64_t prev_data_bytes;   /* non-zero chunks of the previous point */
  uint64_t rewritten_bytes;   /* of those, replaced in this point */
  int64_t raw_rewritten_bytes;  /* of those, stored raw now; -1 unknown */
  uint64_t new_bytes;         /* chunks new to the repository */
  int64_t raw_bytes;          /* of those, stored raw; -1 unknown */
};

struct score_verdict {
  double change, raw, rewrite, encrypt;  /* the shares, < 0 if unknown */
  double score;                 /* the encrypted-rewrite z-score */
  bool suspicious;
  char reason[SCORE_REASON_MAX];
};

/* Judge cur against hist[0..n) (the VM's earlier points, oldest first;
 * only the last SCORE_HISTORY with a previous point count).  Pure. */
void score_judge (const struct score_stats *hist, size_t n,
                  const struct score_stats *cur, struct score_verdict *v);

/* The alert of a suspicious point (bootback backup --on-suspicious, a web
 * backup job): run cmd, a program and fixed arguments split at blanks,
 * without a shell, with BOOTBACK_VM, BOOTBACK_POINT (VM@ID),
 * BOOTBACK_SCORE and BOOTBACK_REASON in its environment (nothing of the
 * point on its command line), for at most 60 s (then it and its process
 * group are killed).  0 if it exited 0; -1 with "hook PROG exited with
 * status N: its first line", "hook: PROG: did not finish within N s:
 * killed" or "hook: PROG: could not run ...". */
int score_alert (const char *cmd, const char *vm, const char *id,
                 const struct score_verdict *v);

/* Fill s for point m of repository r against the VM's point prev ("" if
 * none) by comparing their indexes; new_bytes and raw_bytes come from
 * m->stats, or if it has no raw_bytes, from the headers of the chunks
 * that changed.  m's indexes are read as m pins them (each checked
 * against its SHA-256): m is the manifest the writer committed or the
 * catalog's row of it, and the repository's manifest is not read again
 * (on S3 two requests in sequence).  -1 with the error set if an index
 * or header cannot be read. */
int score_stats_compute (struct repo *r, const struct repo_manifest *m,
                         const char *prev, struct score_stats *s);

#endif
