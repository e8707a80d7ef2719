/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Retention rules against fixed calendars: for each retention/NAME.in
 * (rules, protected points, point times), the decisions must equal
 * retention/NAME.out.  BOOTBACK_REGENERATE=1 rewrites the .out files
 * (then read them!).
 */
#include <dirent.h>
#include <errno.h>

#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

#define DIR_ "recovery/repo/retention"

static char *
decide (const char *path)
{
  FILE *f = fopen (path, "re");
  struct repo_keep k = { 0 };
  struct repo_prune_item it[512];
  char line[256], *out = NULL;
  size_t n = 0, len = 0, i;
  FILE *o;

  if (!f) { perror (path); exit (1); }
  while (fgets (line, sizeof line, f)) {
    char ts[64];
    line[strcspn (line, "\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    if (strncmp (line, "keep ", 5) == 0) {
      char *tok, *save = NULL;
      for (tok = strtok_r (line + 5, " ", &save); tok; tok = strtok_r (NULL, " ", &save)) {
        int v;
        char name[32];
        if (sscanf (tok, "%31[a-z]=%d", name, &v) != 2) {
          fprintf (stderr, "%s: bad rule %s\n", path, tok);
          exit (1);
        }
        if (!strcmp (name, "last")) k.last = v;
        else if (!strcmp (name, "hourly")) k.hourly = v;
        else if (!strcmp (name, "daily")) k.daily = v;
        else if (!strcmp (name, "weekly")) k.weekly = v;
        else if (!strcmp (name, "monthly")) k.monthly = v;
        else if (!strcmp (name, "yearly")) k.yearly = v;
        else { fprintf (stderr, "%s: unknown rule %s\n", path, name); exit (1); }
      }
      continue;
    }
    bool prot = false;
    if (sscanf (line, "protected %63s", ts) == 1) prot = true;
    else if (sscanf (line, "%63s", ts) != 1) continue;
    if (n == 512 || timestamp_parse (ts, &it[n].time) == -1) {
      fprintf (stderr, "%s: %s\n", path, error_msg ()); exit (1);
    }
    it[n++].protected = prot;
  }
  fclose (f);
  /* newest first, as the caller must give them */
  for (i = 1; i < n; i++)
    for (size_t j = i; j > 0 && it[j].time > it[j-1].time; j--) {
      struct repo_prune_item t = it[j]; it[j] = it[j-1]; it[j-1] = t;
    }
  repo_prune_plan (it, n, &k);
  o = open_memstream (&out, &len);
  for (i = 0; i < n; i++) {
    char ts[TIMESTAMP_LEN + 1];
    timestamp_format (it[i].time, ts);
    fprintf (o, "%-6s %s %s\n", it[i].mark == REPO_PRUNE_REMOVE ? "remove" : "keep",
             ts, it[i].reason ? it[i].reason : "");
  }
  fclose (o);
  return out;
}

int
main (void)
{
  DIR *d = opendir (DIR_);
  struct dirent *e;
  int cases = 0, failed = 0;
  bool regen = getenv ("BOOTBACK_REGENERATE") != NULL;

  if (!d) { perror (DIR_); return 1; }
  while ((e = readdir (d)) != NULL) {
    size_t l = strlen (e->d_name);
    if (l < 4 || strcmp (e->d_name + l - 3, ".in") != 0)
      continue;
    CLEANUP_FREE char *in = xasprintf ("%s/%s", DIR_, e->d_name);
    CLEANUP_FREE char *outp = xasprintf ("%s/%.*s.out", DIR_, (int) l - 3, e->d_name);
    CLEANUP_FREE char *got = decide (in);
    char want[65536];
    size_t n;
    FILE *f;

    cases++;
    if (regen) {
      f = fopen (outp, "we");
      fputs (got, f);
      fclose (f);
      continue;
    }
    f = fopen (outp, "re");
    if (!f) { perror (outp); failed++; continue; }
    n = fread (want, 1, sizeof want - 1, f);
    want[n] = '\0';
    fclose (f);
    if (strcmp (want, got) != 0) {
      printf ("FAIL %s\n--- expected\n%s--- got\n%s", in, want, got);
      failed++;
    }
    else
      printf ("ok   %s\n", in);
  }
  closedir (d);
  if (cases == 0) { printf ("no cases found\n"); return 1; }
  return failed ? 1 : 0;
}
