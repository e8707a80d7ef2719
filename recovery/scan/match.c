/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The matching engines of bootback scan: libyara rules and libclamav
 * signatures, both the user's files, loaded as given and never updated
 * (there is no internet; freshclam is never run).  The YARA rules are
 * --rules FILE and every .yar / .yara file of the signature directory; the
 * ClamAV signatures are every database file of the signature directory
 * (.hdb, .ndb, .ldb, ...: libclamav's own list), YARA files excluded from
 * libclamav so that a rule matches once.  A file that does not load is an
 * error naming it and its line.  Both engines see each file's bytes from
 * memory: nothing of the guest is written where the host could run it
 * (libclamav's archive scratch files go to a 0700 directory the parent
 * made for the unprivileged child and removes once the child has ended,
 * however it ended: sandbox.c).
 */
#include <dirent.h>
#include <errno.h>

#include <clamav.h>
#include <yara.h>

#include "recovery/scan/scan-int.h"

struct scan_engines {
  YR_RULES *rules;              /* NULL: no YARA rules */
  struct cl_engine *clam;       /* NULL: no ClamAV signatures */
  unsigned nsigs;
};

struct compile_err {
  char msg[512];
};

static void
compile_cb (int level, const char *file, int line, const YR_RULE *rule,
            const char *message, void *opaque)
{
  struct compile_err *ce = opaque;

  if (level == YARA_ERROR_LEVEL_ERROR && !ce->msg[0])
    snprintf (ce->msg, sizeof ce->msg, "%s:%d: %s", file ? file : "?", line,
              message);
}

/* Add one rules file to comp.  -1 with the error naming it. */
static int
yara_add (YR_COMPILER *comp, const char *path, struct compile_err *ce)
{
  FILE *f = fopen (path, "re");

  if (!f) {
    error_set (errno, "YARA rules %s", path);
    return -1;
  }
  if (yr_compiler_add_file (comp, f, NULL, path) != 0) {
    fclose (f);
    error_setx ("YARA rules %s", ce->msg[0] ? ce->msg : "do not compile");
    return -1;
  }
  fclose (f);
  return 0;
}

static bool
has_suffix (const char *s, const char *suf)
{
  size_t n = strlen (s), m = strlen (suf);
  return n >= m && strcmp (s + n - m, suf) == 0;
}

/* The rules: o->rules and the .yar and .yara files of o->sigdir. */
static int
yara_load (struct scan_engines *e, const struct scan_opts *o)
{
  struct compile_err ce = { "" };
  YR_COMPILER *comp = NULL;
  struct dirent **ents = NULL;
  int i, n = 0, added = 0, rc = -1;

  if (o->sigdir && (n = scandir (o->sigdir, &ents, NULL, alphasort)) < 0)
    n = 0;
  if (yr_compiler_create (&comp) != ERROR_SUCCESS) {
    error_setx ("YARA: cannot create a compiler");
    goto out;
  }
  yr_compiler_set_callback (comp, compile_cb, &ce);
  if (o->rules) {
    if (yara_add (comp, o->rules, &ce) == -1)
      goto out;
    added++;
  }
  for (i = 0; i < n; i++) {
    CLEANUP_FREE char *p = NULL;
    if (!has_suffix (ents[i]->d_name, ".yar") &&
        !has_suffix (ents[i]->d_name, ".yara"))
      continue;
    p = xasprintf ("%s/%s", o->sigdir, ents[i]->d_name);
    if (yara_add (comp, p, &ce) == -1)
      goto out;
    added++;
  }
  if (added && yr_compiler_get_rules (comp, &e->rules) != ERROR_SUCCESS) {
    error_setx ("YARA: cannot build the rules");
    goto out;
  }
  rc = 0;
 out:
  for (i = 0; i < n; i++)
    free (ents[i]);
  free (ents);
  if (comp)
    yr_compiler_destroy (comp);
  return rc;
}

/* Does dir hold a file ClamAV would load (not counting YARA files)? */
static bool
clam_has_db (const char *dir)
{
  static const char *const ext[] = { ".hdb", ".hsb", ".hdu", ".hsu", ".mdb",
    ".msb", ".ndb", ".ndu", ".ldb", ".ldu", ".cvd", ".cld", ".cud", ".cdb",
    ".idb", ".pdb", ".wdb", ".fp", ".sfp", ".ign2", ".ftm", ".crb", ".cat",
    NULL };
  struct dirent *d;
  bool found = false;
  DIR *dh = opendir (dir);
  size_t i;

  if (!dh)
    return false;
  while (!found && (d = readdir (dh)) != NULL)
    for (i = 0; ext[i] && !found; i++)
      found = has_suffix (d->d_name, ext[i]);
  closedir (dh);
  return found;
}

static int
clam_load (struct scan_engines *e, const struct scan_opts *o)
{
  cl_error_t rc;

  if (!o->sigdir || !clam_has_db (o->sigdir))
    return 0;
  if ((rc = cl_init (CL_INIT_DEFAULT)) != CL_SUCCESS ||
      !(e->clam = cl_engine_new ())) {
    error_setx ("libclamav: %s", cl_strerror (rc));
    return -1;
  }
  rc = cl_load (o->sigdir, e->clam, &e->nsigs,
                CL_DB_STDOPT | CL_DB_YARA_EXCLUDE);
  if (rc != CL_SUCCESS) {
    error_setx ("ClamAV signatures in %s do not load: %s", o->sigdir,
                cl_strerror (rc));
    return -1;
  }
  if ((rc = cl_engine_compile (e->clam)) != CL_SUCCESS) {
    error_setx ("ClamAV signatures in %s: %s", o->sigdir, cl_strerror (rc));
    return -1;
  }
  return 0;
}

struct scan_engines *
engines_load (const struct scan_opts *o)
{
  struct scan_engines *e = xcalloc (1, sizeof *e);

  if (yr_initialize () != ERROR_SUCCESS) {
    error_setx ("libyara does not initialize");
    free (e);
    return NULL;
  }
  if (yara_load (e, o) == -1 || clam_load (e, o) == -1) {
    engines_free (e);
    return NULL;
  }
  if (!e->rules && !e->clam) {
    error_setx ("no YARA rules and no ClamAV signatures in %s (give --rules "
                "FILE or --signatures DIR)", o->sigdir ? o->sigdir : "-");
    engines_free (e);
    return NULL;
  }
  return e;
}

void
engines_free (struct scan_engines *e)
{
  if (!e)
    return;
  if (e->rules)
    yr_rules_destroy (e->rules);
  if (e->clam)
    cl_engine_free (e->clam);
  yr_finalize ();
  free (e);
}

int
engines_tmpdir (struct scan_engines *e, const char *dir)
{
  if (!e->clam)
    return 0;
  if (cl_engine_set_str (e->clam, CL_ENGINE_TMPDIR, dir) != CL_SUCCESS) {
    error_setx ("libclamav: cannot set its scratch directory");
    return -1;
  }
  return 0;
}

struct yara_ctx {
  match_fn fn;
  void *opaque;
};

static int
yara_cb (YR_SCAN_CONTEXT *ctx, int message, void *data, void *opaque)
{
  struct yara_ctx *y = opaque;

  if (message == CALLBACK_MSG_RULE_MATCHING)
    y->fn (y->opaque, "yara", ((YR_RULE *) data)->identifier);
  return CALLBACK_CONTINUE;
}

int
engines_scan (struct scan_engines *e, const void *buf, size_t len,
              match_fn fn, void *opaque)
{
  struct yara_ctx y = { fn, opaque };

  if (e->rules && yr_rules_scan_mem (e->rules, buf, len,
                                     SCAN_FLAGS_FAST_MODE, yara_cb, &y, 60)
      != ERROR_SUCCESS)
    fn (opaque, "yara", NULL);
  if (e->clam) {
    struct cl_scan_options so = { .parse = ~0u };
    const char *virname = NULL;
    unsigned long scanned = 0;
    cl_fmap_t *map = cl_fmap_open_memory (buf, len);
    cl_error_t rc;

    if (!map)
      return -1;
    rc = cl_scanmap_callback (map, NULL, &virname, &scanned, e->clam, &so,
                              NULL);
    cl_fmap_close (map);
    if (rc == CL_VIRUS)
      fn (opaque, "clamav", virname);
    else if (rc != CL_CLEAN)
      fn (opaque, "clamav", NULL);
  }
  return 0;
}
