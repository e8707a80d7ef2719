/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ransomware score at backup time (recovery/catalog/score.h): after a
 * point's catalog row (commit step 4), its statistics against the point
 * before it, the verdict against the VM's history, the catalog row, a
 * warning and the alert hook if it is suspicious.
 *
 * The hook ($BOOTBACK_ON_SUSPICIOUS or --on-suspicious) is a program and
 * fixed arguments split at blanks, run without a shell; what it learns
 * of the point is in its environment only (BOOTBACK_VM, BOOTBACK_POINT,
 * BOOTBACK_SCORE, BOOTBACK_REASON), so nothing from the guest or the
 * repository ever becomes part of a command line.  Its failure is a
 * warning: the point is stored either way.  It has HOOK_TIMEOUT seconds;
 * then it and everything it started are killed (a hung alert must not
 * hold the backup, or the nightly job behind it).
 */
#include <errno.h>

#include "recovery/cli/cli.h"

/* Score m; with alert, a suspicious one runs the hook.  1 suspicious, 0
 * not, -1 if it could not be scored (warned). */
static int
score_one (struct cli *c, const struct repo_manifest *m, bool alert)
{
  struct score_stats st;
  struct score_verdict v;

  if (catalog_score_point (c->cat, c->repo, c->repo_id, m, &st, &v) == -1) {
    cli_error ("warning: no ransomware score for %s@%s: %s", m->vm, m->id,
               error_msg ());
    return -1;
  }
  if (catalog_score_put (c->cat, c->repo_id, m, &st, &v) == -1)
    cli_error ("warning: the ransomware score of %s@%s is not recorded: %s",
               m->vm, m->id, error_msg ());
  if (!v.suspicious)
    return 0;
  cli_error ("warning: %s@%s is suspicious (score %.1f): %s", m->vm, m->id,
             v.score, v.reason);
  if (alert && c->on_suspicious && *c->on_suspicious &&
      score_alert (c->on_suspicious, m->vm, m->id, &v) == -1)
    cli_error ("warning: suspicious-point %s", error_msg ());
  return 1;
}

void
cli_score_point (struct cli *c, const struct repo_manifest *m)
{
  score_one (c, m, true);
}

struct missing {
  struct cli *c;
  long scored, suspicious;
};

static int
score_if_missing (void *opaque, const struct repo_manifest *m)
{
  struct missing *ms = opaque;
  struct catalog_score s;
  int r = catalog_score_get (ms->c->cat, ms->c->repo_id, m->vm, m->id, &s);

  if (r != 0)
    return r == -1 ? -1 : 0;
  r = score_one (ms->c, m, false);
  ms->scored += r >= 0;
  ms->suspicious += r == 1;
  return 0;
}

int
cli_score_missing (struct cli *c, long *scored, long *suspicious)
{
  struct missing ms = { .c = c };

  if (catalog_point_list (c->cat, c->repo_id, NULL, score_if_missing,
                          &ms) == -1)
    return -1;
  *scored = ms.scored;
  *suspicious = ms.suspicious;
  return 0;
}

json_t *
cli_score_json (struct cli *c, const char *vm, const char *id)
{
  struct catalog_score s;
  int r = catalog_score_get (c->cat, c->repo_id, vm, id, &s);

  if (r <= 0)
    return json_null ();
  return json_pack ("{s:b, s:b, s:f, s:s, s:{s:b, s:I, s:I, s:I, s:I, s:o,"
                    " s:I, s:o}}",
                    "suspicious", s.suspicious && !s.unflagged,
                    "unflagged", s.unflagged, "score", s.score,
                    "reason", s.reason, "stats",
                    "has_prev", s.st.has_prev,
                    "disk_bytes", (json_int_t) s.st.disk_bytes,
                    "changed_bytes", (json_int_t) s.st.changed_bytes,
                    "prev_data_bytes", (json_int_t) s.st.prev_data_bytes,
                    "rewritten_bytes", (json_int_t) s.st.rewritten_bytes,
                    "raw_rewritten_bytes", s.st.raw_rewritten_bytes < 0
                    ? json_null () : json_integer (s.st.raw_rewritten_bytes),
                    "new_bytes", (json_int_t) s.st.new_bytes,
                    "raw_bytes", s.st.raw_bytes < 0 ? json_null ()
                    : json_integer (s.st.raw_bytes));
}

const char *
cli_score_mark (struct cli *c, const char *vm, const char *id,
                char reason[SCORE_REASON_MAX])
{
  struct catalog_score s;

  reason[0] = '\0';
  if (catalog_score_get (c->cat, c->repo_id, vm, id, &s) <= 0)
    return "";
  snprintf (reason, SCORE_REASON_MAX, "%s", s.reason);
  if (!s.suspicious)
    return "";
  return s.unflagged ? "unflagged" : "suspicious";
}
