/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Creating and opening repositories, listing and resolving restore points,
 * manifests, protection and removal of points.
 *
 * bootback-repo.json is written last by repo_init: a directory is a
 * repository if and only if that file exists and parses.
 *
 * A repository is its owner's alone: the I/O backends create directories
 * 0700 and files 0600.  Repositories made before that (0755, 0644) keep
 * working as they are; repo_tighten (bootback repo init on one) takes
 * the group's and others' permissions off everything in them once, so
 * opening a repository never walks it.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "recovery/repo/crypt.h"
#include "recovery/repo/io-nfs.h"
#include "recovery/repo/io-s3.h"
#include "recovery/repo/repo-int.h"

static struct repo_io *
io_for (const char *location, const struct repo_open_opts *o)
{
  if (strncmp (location, "nfs://", 6) == 0)
    return io_nfs_new (location, o);
  if (strncmp (location, "s3://", 5) == 0) {
    secrets_held ();                /* the credentials, in memory and environ */
    return io_s3_new (location, o);
  }
  return io_posix_new (location);
}

static void
make_uuid (char out[UUID_STR_LEN + 1])
{
  uint8_t b[16];
  char h[33];

  if (getrandom (b, sizeof b, 0) != sizeof b)
    abort ();
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  hex_encode (b, 16, h);
  snprintf (out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16,
            h + 20);
}

/* repo_init: the directory (or bucket) the repository goes in. */
static int
make_root (const char *location, const struct repo_open_opts *oo,
           int lock_days, bool object_lock)
{
  if (lock_days < 0 || lock_days > REPO_MAX_LOCK_DAYS) {
    error_setx ("lock of %d days is invalid: it must be from 1 to %d",
                lock_days, REPO_MAX_LOCK_DAYS);
    return -1;
  }
  if (object_lock && strncmp (location, "s3://", 5) != 0) {
    error_setx ("%s: Object Lock is for repositories on S3 (s3://BUCKET/PREFIX); "
                "here a lock (--lock DAYS) is advisory", location);
    return -1;
  }
  if (strncmp (location, "nfs://", 6) == 0)
    return io_nfs_mkdir_root (location, oo);
  if (strncmp (location, "s3://", 5) == 0)
    return io_s3_init_bucket (location, oo, lock_days, object_lock);
  return mkdir_private (location);
}

/* "hash" of the configuration: "sha256-tree" (64 KiB frames, what every
 * framed repository had before) or "sha256-tree-NK" (NK frames). */
#define HASH_NAME_MAX 24

/* The "hash" of a new repository with chunks of cs bytes and frames of
 * frame bytes (0: a 64th of the chunk, at least 4 KiB).  -1 if invalid. */
static int
frame_hash (uint32_t cs, uint32_t frame, char out[HASH_NAME_MAX])
{
  if (frame == 0)
    frame = MAX (cs / CHUNK_MAX_FRAMES, 1u << CHUNK_MIN_FRAME_SHIFT);
  if (frame < (1u << CHUNK_MIN_FRAME_SHIFT) || frame > CHUNK_FRAME ||
      (frame & (frame - 1)) || cs / frame > CHUNK_MAX_FRAMES) {
    error_setx ("frame size %" PRIu32 " is invalid: it must be a power of "
                "two from 4K to 64K, at least a 64th of the chunk", frame);
    return -1;
  }
  if (frame == CHUNK_FRAME)
    strcpy (out, "sha256-tree");
  else
    snprintf (out, HASH_NAME_MAX, "sha256-tree-%" PRIu32 "k", frame / 1024);
  return 0;
}

/* The frame shift named by a configuration's "hash" for chunks of cs
 * bytes: 0 for "sha256", -1 if bootback does not know it. */
static int
hash_frame_shift (const char *hash, uint32_t cs)
{
  char want[HASH_NAME_MAX];
  int shift;

  if (strcmp (hash, "sha256") == 0)
    return 0;
  for (shift = CHUNK_MIN_FRAME_SHIFT; shift <= CHUNK_FRAME_SHIFT; shift++)
    if (frame_hash (cs, 1u << shift, want) == 0 && strcmp (hash, want) == 0)
      return shift;
  error_clear ();
  return -1;
}

/* The frame shift of a configuration's "hash" (hash_frame_shift), or -1
 * with the error set. */
static int
config_hash (json_t *o, uint32_t cs, const char *location)
{
  json_t *v = json_object_get (o, "hash");
  int shift = json_is_string (v) ? hash_frame_shift (json_string_value (v), cs)
                                 : -1;

  if (shift == -1)
    error_setx ("%s/bootback-repo.json: hash %s is not supported (this "
                "bootback knows sha256-tree, sha256-tree-4k to -32k with "
                "at most 64 frames a chunk, and sha256)", location,
                json_is_string (v) ? json_string_value (v) : "(missing)");
  return shift;
}

int
repo_init (const char *location, const struct repo_init_opts *opts)
{
  uint32_t cs = opts && opts->chunk_size ? opts->chunk_size
    : strncmp (location, "s3://", 5) == 0 ? REPO_DEFAULT_CHUNK_OBJECT
    : REPO_DEFAULT_CHUNK;
  int level = opts && opts->zstd_level ? opts->zstd_level : 1;
  bool compress = !(opts && opts->no_compression);
  int lock_days = opts ? opts->lock_days : 0;
  const struct repo_open_opts *oo = opts ? &opts->open : NULL;
  struct repo_io *io;
  char **names;
  char uuid[UUID_STR_LEN + 1], hash[HASH_NAME_MAX];
  json_t *o;
  char *s;
  int r = -1;

  if (level < REPO_ZSTD_MIN_LEVEL || level > REPO_ZSTD_MAX_LEVEL) {
    error_setx ("zstd level %d is invalid: it must be from %d to -1 (fast) "
                "or 1 to %d", level, REPO_ZSTD_MIN_LEVEL, REPO_ZSTD_MAX_LEVEL);
    return -1;
  }
  if (cs < REPO_MIN_CHUNK || cs > REPO_MAX_CHUNK || (cs & (cs - 1))) {
    error_setx ("chunk size %" PRIu32 " is invalid: it must be a power of "
                "two from 64K to 4M", cs);
    return -1;
  }
  if (frame_hash (cs, opts ? opts->frame_size : 0, hash) == -1)
    return -1;
  if (make_root (location, oo, lock_days, opts && opts->object_lock) == -1)
    return -1;
  io = io_for (location, oo);
  if (!io)
    return -1;
  names = io->ops->list (io, ".");
  if (!names)
    goto out;
  for (size_t i = 0; names[i]; i++) {
    if (strcmp (names[i], "bootback-repo.json") == 0) {
      strv_free (names);
      r = 1;
      goto out;
    }
  }
  if (names[0]) {
    error_setx ("%s: directory is not empty (%s%s); refusing to create a "
                "repository there", location, names[0],
                names[1] ? ", ..." : "");
    strv_free (names);
    goto out;
  }
  strv_free (names);
  make_uuid (uuid);
  /* The key first: without a secret nothing is made.  An encrypted
   * repository is version 2: a bootback that cannot read it refuses it
   * rather than misreading it. */
  if (opts && opts->encrypt && crypt_init (io, location, uuid, oo) == -1)
    goto out;
  if (io->ops->mkdir (io, "chunks") == -1 ||
      io->ops->mkdir (io, "points") == -1 ||
      io->ops->mkdir (io, "locks") == -1 ||
      io->ops->mkdir (io, "locks/writers") == -1 ||
      io->ops->sync_dir (io, ".") == -1)
    goto out;
  o = json_pack ("{s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:s}",
                 "format", "bootback-repo", "version",
                 opts && opts->encrypt ? 2 : 1, "uuid", uuid,
                 "chunk_size", (json_int_t) cs,
                 "codec", compress ? "zstd" : "none",
                 "zstd_level", compress ? level : 0,
                 "hash", hash, "sync", "filesystem");
  if (opts && opts->encrypt)
    json_object_set_new (o, "encryption", json_string ("aes-256-gcm"));
  if (lock_days > 0)
    json_object_set_new (o, "lock_days", json_integer (lock_days));
  s = json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (o);
  r = io_write_file_atomic (io, "bootback-repo.json", s, strlen (s));
  free (s);
 out:
  io->ops->free (io);
  return r;
}

/* Tighten dir and, depth first, everything under it. */
static int
tighten_tree (struct repo_io *io, const char *dir, struct repo_tightened *t)
{
  struct repo_stat st;
  char **names;
  int r = io->ops->tighten (io, dir, &st), ret = 0;

  /* a symbolic link is not ours; GC may remove files meanwhile */
  if (r == -1)
    return errno == ELOOP || errno == ENOENT ? 0 : -1;
  if (strcmp (dir, ".") == 0)
    t->root_was = st.mode;
  if (r == 1)
    st.is_dir ? t->dirs++ : t->files++;
  if (!st.is_dir)
    return 0;
  names = io->ops->list (io, dir);
  if (!names)
    return errno == ENOENT ? 0 : -1;
  for (size_t i = 0; names[i] && ret == 0; i++) {
    CLEANUP_FREE char *p = strcmp (dir, ".") == 0 ? xstrdup (names[i])
                           : xasprintf ("%s/%s", dir, names[i]);
    ret = tighten_tree (io, p, t);
  }
  strv_free (names);
  return ret;
}

int
repo_tighten (const char *location, const struct repo_open_opts *o,
              struct repo_tightened *t)
{
  struct repo_io *io = io_for (location, o);
  int r;

  memset (t, 0, sizeof *t);
  if (!io)
    return -1;
  r = tighten_tree (io, ".", t);
  io->ops->free (io);
  return r;
}

unsigned
repo_mode (struct repo *r)
{
  struct repo_stat st;

  if (r->io->ops->stat (r->io, ".", &st) == -1) {
    error_clear ();
    return 0;
  }
  return st.mode;
}

/* The configuration's version and encryption: 1 encrypted (version 2,
 * aes-256-gcm), 0 plain (version 1), -1 neither. */
static int
config_encrypted (json_t *o, const char *location)
{
  json_t *v = json_object_get (o, "version");
  bool encrypted;

  if (!json_is_integer (v) || json_integer_value (v) < 1 ||
      json_integer_value (v) > 2) {
    error_setx ("%s: repository format version is not supported", location);
    return -1;
  }
  encrypted = json_integer_value (v) == 2;
  v = json_object_get (o, "encryption");
  if (encrypted != json_is_string (v) ||
      (encrypted && strcmp (json_string_value (v), "aes-256-gcm"))) {
    error_setx ("%s/bootback-repo.json: encryption %s is not supported "
                "(this bootback knows aes-256-gcm in version 2)", location,
                json_is_string (v) ? json_string_value (v) : "(missing)");
    return -1;
  }
  return encrypted;
}

/* Someone who can write the repository but has no key could make its
 * configuration say "plain": we would then write the next points
 * unencrypted and take forged ones as good.  Its key slots give it away
 * (unless they were removed too).  true with the error set. */
static bool
plain_has_slots (struct repo *r)
{
  int has = crypt_has_slots (r->io);

  if (has == 1)
    error_setx ("%s/bootback-repo.json says the repository is not "
                "encrypted, but it has key slots (keys/): the file was "
                "changed; refusing to use it unencrypted", r->location);
  return has != 0;
}

bool
repo_open_opts_has_secret (const struct repo_open_opts *o)
{
  return o && ((o->passphrase && *o->passphrase) ||
               (o->passphrase_file && *o->passphrase_file) ||
               (o->key_file && *o->key_file));
}

/* A plain repository opened with a secret: the caller means an encrypted
 * one.  Someone who can write the repository could have rewritten its
 * configuration and moved keys/ away; writing to it, or reading points
 * from it as good, would give them plaintext or forged points.  true
 * with the error set. */
static bool
plain_refused (struct repo *r, const struct repo_open_opts *oo)
{
  if (plain_has_slots (r))
    return true;
  if (!repo_open_opts_has_secret (oo) || oo->allow_plain)
    return false;
  error_setx ("%s is not encrypted (its bootback-repo.json says so, and it "
              "has no key slots), but a passphrase or key file was given "
              "for it: refusing to use it unencrypted; if it was encrypted, "
              "its configuration was replaced; if it is meant to be plain, "
              "open it without BOOTBACK_PASSPHRASE, --passphrase-file or "
              "--key-file", r->location);
  return true;
}

struct repo *
repo_open (const char *location)
{
  return repo_open_with (location, NULL);
}

struct repo *
repo_open_with (const char *location, const struct repo_open_opts *oo)
{
  struct repo *r = xcalloc (1, sizeof *r);
  const char *fault = test_hook_env ("BOOTBACK_FAULT");
  CLEANUP_FREE char *text = NULL;
  json_t *o = NULL, *v;
  json_error_t je;
  size_t len;
  int encrypted, default_days = 0;

  pthread_mutex_init (&r->codec_lock, NULL);
  r->location = xstrdup (location);
  r->io = io_for (location, oo);
  if (!r->io)
    goto err;
  if (strncmp (location, "s3://", 5) == 0)
    default_days = io_s3_default_days (r->io);
  if (fault) {
    struct repo_io *f = io_fault_new (r->io, fault);
    if (!f)
      goto err;
    r->io = f;
  }
  if (io_read_file (r->io, "bootback-repo.json", 65536, &text, &len) == -1) {
    if (errno == ENOENT)
      error_setx ("%s: not a bootback repository (no bootback-repo.json; "
                  "create one with 'bootback repo init')", location);
    goto err;
  }
  o = json_loads (text, 0, &je);
  v = o ? json_object_get (o, "format") : NULL;
  if (!json_is_string (v) || strcmp (json_string_value (v), "bootback-repo")) {
    error_setx ("%s/bootback-repo.json: not a bootback repository "
                "configuration", location);
    goto err;
  }
  if ((encrypted = config_encrypted (o, location)) == -1)
    goto err;
  v = json_object_get (o, "chunk_size");
  r->chunk_size = json_is_integer (v) ? json_integer_value (v) : 0;
  if (r->chunk_size < REPO_MIN_CHUNK || r->chunk_size > REPO_MAX_CHUNK ||
      (r->chunk_size & (r->chunk_size - 1))) {
    error_setx ("%s/bootback-repo.json: invalid chunk_size", location);
    goto err;
  }
  v = json_object_get (o, "uuid");
  /* shown in messages and listings: hex digits and dashes only */
  if (!json_is_string (v) || strlen (json_string_value (v)) != 36 ||
      strspn (json_string_value (v), "0123456789abcdefABCDEF-") != 36) {
    error_setx ("%s/bootback-repo.json: invalid uuid", location);
    goto err;
  }
  strcpy (r->uuid, json_string_value (v));
  v = json_object_get (o, "codec");
  r->compress = !(json_is_string (v) && strcmp (json_string_value (v), "none") == 0);
  v = json_object_get (o, "zstd_level");
  r->zstd_level = json_is_integer (v) ? json_integer_value (v) : 1;
  if (r->compress && (r->zstd_level == 0 || r->zstd_level < REPO_ZSTD_MIN_LEVEL ||
                      r->zstd_level > REPO_ZSTD_MAX_LEVEL)) {
    error_setx ("%s/bootback-repo.json: invalid zstd_level", location);
    goto err;
  }
  if ((r->tree = config_hash (o, r->chunk_size, location)) == -1)
    goto err;
  v = json_object_get (o, "sync");
  r->sync_each_chunk = json_is_string (v) &&
    strcmp (json_string_value (v), "file") == 0;
  v = json_object_get (o, "lock_days");
  r->file_lock_days = json_is_integer (v) && json_integer_value (v) > 0 &&
    json_integer_value (v) <= REPO_MAX_LOCK_DAYS ? json_integer_value (v) : 0;
  r->lock_days = MAX (r->file_lock_days, default_days);
  json_decref (o);
  o = NULL;
  if (encrypted ? crypt_unlock (r, oo) == -1 : plain_refused (r, oo))
    goto err;
  return r;
 err:
  json_decref (o);
  repo_close (r);
  return NULL;
}

void
repo_close (struct repo *r)
{
  if (!r)
    return;
  chunk_files_free (r);
  if (r->io)
    r->io->ops->free (r->io);
  codec_free_all (r);
  crypt_free (r->crypt);
  pthread_mutex_destroy (&r->codec_lock);
  free (r->location);
  free (r);
}

int repo_file_lock_days (const struct repo *r) { return r->file_lock_days; }
void repo_expect_lock (struct repo *r, int days) { r->lock_expected = days; }

/* repo_writer_begin: the file says at least what the host recorded. */
int
repo_lock_check (const struct repo *r)
{
  char now[32] = "no \"lock_days\"";

  if (r->file_lock_days >= r->lock_expected)
    return 0;
  if (r->file_lock_days)
    snprintf (now, sizeof now, "\"lock_days\": %d", r->file_lock_days);
  error_setx ("%s/bootback-repo.json has %s, but this host recorded a lock "
              "of %d days for the repository: the file was changed (it is "
              "not authenticated); refusing to write points locked for "
              "less.  Put \"lock_days\": %d back into it; or, if the lock "
              "was lowered on purpose, accept it with 'bootback repo init "
              "%s'", r->location, now, r->lock_expected, r->lock_expected,
              r->location);
  return -1;
}

const char *repo_location (const struct repo *r) { return r->location; }
bool repo_compresses (const struct repo *r) { return r->compress; }
const char *repo_uuid (const struct repo *r) { return r->uuid; }
uint32_t repo_chunk_size (const struct repo *r) { return r->chunk_size; }
struct repo_io *repo_get_io (struct repo *r) { return r->io; }
bool repo_object_store (const struct repo *r) { return r->io->ops->object_store; }

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

char **
repo_list_vms (struct repo *r)
{
  char **v = r->io->ops->list (r->io, "points");
  size_t i, j;

  if (!v)
    return NULL;
  for (i = j = 0; v[i]; i++) {
    if (name_is_valid (v[i])) v[j++] = v[i];
    else free (v[i]);
  }
  v[j] = NULL;
  qsort (v, j, sizeof *v, cmp_str);
  return v;
}

/* A VM name and point id that may be put into a path: neither can leave
 * points/ (callers pass names from the command line and from catalogs). */
static int
check_vm (const char *vm)
{
  if (!name_is_valid (vm)) {
    error_setx ("'%s' is not a valid VM name ([A-Za-z0-9._-], 1 to 128, "
                "not starting with '.' or '-')", vm);
    return -1;
  }
  return 0;
}

static int
check_point (const char *vm, const char *id)
{
  if (check_vm (vm) == -1)
    return -1;
  if (!point_id_is_valid (id)) {
    error_setx ("'%s' is not a restore point id (like 20261122T045506Z)", id);
    return -1;
  }
  return 0;
}

char **
repo_list_points (struct repo *r, const char *vm)
{
  char **v = repo_list_point_dirs (r, vm);
  size_t i, j;

  if (!v)
    return NULL;
  /* The ids whose manifest exists (the point is committed). */
  for (i = j = 0; v[i]; i++) {
    CLEANUP_FREE char *m = xasprintf ("points/%s/%s/manifest.json", vm, v[i]);
    struct repo_stat st;

    if (r->io->ops->stat (r->io, m, &st) == 0)
      v[j++] = v[i];
    else
      free (v[i]);
  }
  v[j] = NULL;
  error_clear ();
  return v;
}

/* Is vm@id committed (its manifest there)?  With m, the manifest is read
 * into m, the read being the look (one request on S3, not a stat and
 * then a read); without, stat'ed.  1 if so, 0 if not (ENOENT, or any
 * failed stat), -1 if the read failed otherwise (its error set). */
static int
point_look (struct repo *r, const char *vm, const char *id,
            struct repo_manifest *m)
{
  CLEANUP_FREE char *p = NULL;
  struct repo_stat st;

  if (m) {
    if (repo_manifest_read (r, vm, id, m) == 0)
      return 1;
    return error_errno () == ENOENT ? 0 : -1;
  }
  p = xasprintf ("points/%s/%s/manifest.json", vm, id);
  return r->io->ops->stat (r->io, p, &st) == 0;
}

int
repo_point_before_read (struct repo *r, const char *vm, const char *id,
                        char prev[TIMESTAMP_LEN + 1], struct repo_manifest *m)
{
  CLEANUP_STRV char **v = repo_list_point_dirs (r, vm);
  size_t i, n = 0;

  prev[0] = '\0';
  while (v && v[n])
    n++;
  /* From the newest down: the first whose manifest is there (usually
   * the first one looked at), not a look at every point of vm (each a
   * round trip on S3) as repo_list_points does; the read of it is the
   * look (ENOENT: not committed, the next older one is looked at). */
  for (i = n; i-- > 0;) {
    if (strcmp (v[i], id) >= 0)
      continue;
    switch (point_look (r, vm, v[i], m)) {
    case 1:
      snprintf (prev, TIMESTAMP_LEN + 1, "%s", v[i]);
      return 1;
    case -1:
      return -1;
    }
  }
  error_clear ();
  return 0;
}

char **
repo_list_point_dirs (struct repo *r, const char *vm)
{
  CLEANUP_FREE char *dir = xasprintf ("points/%s", vm);
  char **v;
  size_t i, j;

  if (check_vm (vm) == -1)
    return NULL;
  v = r->io->ops->list (r->io, dir);
  if (!v) {
    if (errno != ENOENT && errno != ENOTDIR)   /* a stray file: no points */
      return NULL;
    error_clear ();
    return xcalloc (1, sizeof *v);
  }
  for (i = j = 0; v[i]; i++) {
    /* only names a point can have (what check_point accepts) */
    if (point_id_is_valid (v[i]))
      v[j++] = v[i];
    else
      free (v[i]);
  }
  v[j] = NULL;
  qsort (v, j, sizeof *v, cmp_str);
  error_clear ();
  return v;
}

/* repo_point_resolve of VM@when without a stat of every point's manifest
 * (a request each on S3): the newest committed point, or the one named.
 * With m, the candidate's manifest is read into m instead of stat'ed:
 * the read is the check that the point exists (one request, not a stat
 * and then a read), a missing one (ENOENT: not committed) is passed
 * over as a failed stat was.  1 if found, 0 if not (the caller says
 * why), -1 if m's read failed otherwise (its error set). */
static int
resolve_fast (struct repo *r, const char *vm, const char *when,
              char id[TIMESTAMP_LEN + 1], struct repo_manifest *m)
{
  CLEANUP_STRV char **v = repo_list_point_dirs (r, vm);
  char want[TIMESTAMP_LEN + 1] = "";
  time_t t;
  size_t n;

  if (!v || (strcmp (when, "latest") && timestamp_parse (when, &t) == -1)) {
    error_clear ();
    return 0;                         /* the caller says why */
  }
  if (strcmp (when, "latest"))
    timestamp_format (t, want);
  for (n = 0; v[n]; n++) ;
  while (n-- > 0) {
    if (want[0] && strcmp (v[n], want))
      continue;
    switch (point_look (r, vm, v[n], m)) {
    case 1:
      strcpy (id, v[n]);
      return 1;
    case -1:
      return -1;
    }
  }
  error_clear ();
  return 0;
}

/* repo_point_resolve; with m, *got tells whether it read the point's
 * manifest into m meanwhile (resolve_fast). */
static int
point_resolve (struct repo *r, const char *spec, char vm[VM_NAME_MAX + 1],
               char id[TIMESTAMP_LEN + 1], struct repo_manifest *m, bool *got)
{
  const char *at = strchr (spec, '@');
  size_t vlen = at ? (size_t) (at - spec) : strlen (spec);
  const char *when = at ? at + 1 : "latest";
  char **pts;
  size_t n;
  time_t t;
  char want[TIMESTAMP_LEN + 1];

  if (vlen == 0 || vlen > 128) {
    error_setx ("'%s': expected VM@TIME, VM@latest or VM", spec);
    return -1;
  }
  memcpy (vm, spec, vlen);
  vm[vlen] = '\0';
  if (!name_is_valid (vm)) {
    error_setx ("'%s': invalid VM name", vm);
    return -1;
  }
  switch (resolve_fast (r, vm, when, id, m)) {
  case 1:
    *got = m != NULL;
    return 0;
  case -1:
    return -1;
  }
  pts = repo_list_points (r, vm);
  if (!pts)
    return -1;
  for (n = 0; pts[n]; n++) ;
  if (n == 0) {
    error_setx ("no restore points of VM '%s' in %s", vm, r->location);
    strv_free (pts);
    return -1;
  }
  if (strcmp (when, "latest") == 0) {
    strcpy (id, pts[n-1]);
    strv_free (pts);
    return 0;
  }
  if (timestamp_parse (when, &t) == -1) {
    error_prefix ("'%s'", spec);
    strv_free (pts);
    return -1;
  }
  timestamp_format (t, want);
  for (size_t i = 0; i < n; i++) {
    if (strcmp (pts[i], want) == 0) {
      strcpy (id, pts[i]);
      strv_free (pts);
      return 0;
    }
  }
  error_setx ("no restore point %s@%s (VM '%s' has %zu points, newest %s)",
              vm, want, vm, n, pts[n-1]);
  strv_free (pts);
  return -1;
}

int
repo_point_resolve (struct repo *r, const char *spec, char vm[VM_NAME_MAX + 1],
                    char id[TIMESTAMP_LEN + 1])
{
  bool got;

  return point_resolve (r, spec, vm, id, NULL, &got);
}

int
repo_point_resolve_read (struct repo *r, const char *spec,
                         char vm[VM_NAME_MAX + 1], char id[TIMESTAMP_LEN + 1],
                         struct repo_manifest *m)
{
  bool got = false;

  if (point_resolve (r, spec, vm, id, m, &got) == -1)
    return -1;
  return got ? 0 : repo_manifest_read (r, vm, id, m);
}

/* The stat of a point's protected marker, on a thread of its own beside
 * the read of its manifest on an object store (a round trip each). */
struct prot_ask {
  struct repo_io *io;
  char *path;
  bool is, threaded;
  pthread_t t;
};

static void *
prot_ask (void *opaque)
{
  struct prot_ask *a = opaque;
  struct repo_stat st;

  a->is = a->io->ops->stat (a->io, a->path, &st) == 0;
  error_clear ();
  return NULL;
}

static void
prot_start (struct prot_ask *a)
{
  a->threaded = a->io->ops->object_store &&
    pthread_create (&a->t, NULL, prot_ask, a) == 0;
}

/* Whether the marker is there (what the thread found, or a stat now). */
static bool
prot_end (struct prot_ask *a)
{
  if (a->threaded)
    pthread_join (a->t, NULL);
  else
    prot_ask (a);
  free (a->path);
  return a->is;
}

int
repo_manifest_read (struct repo *r, const char *vm, const char *id,
                    struct repo_manifest *m)
{
  CLEANUP_FREE char *path = xasprintf ("points/%s/%s/manifest.json", vm, id);
  CLEANUP_FREE char *text = NULL;
  struct prot_ask prot = { .io = r->io };
  size_t len;
  int ret = -1;

  if (check_point (vm, id) == -1)
    return -1;
  prot.path = xasprintf ("points/%s/%s/protected", vm, id);
  prot_start (&prot);
  if (repo_meta_read (r, path, 1 << 20, &text, &len) == -1)
    ;
  else if (manifest_decode (text, m) == -1)
    error_prefix ("%s/%s", r->location, path);
  else if (strcmp (m->vm, vm) != 0 || strcmp (m->id, id) != 0)
    error_set (EIO, "%s/%s: manifest names %s@%s, not %s@%s", r->location,
               path, m->vm, m->id, vm, id);
  else
    ret = 0;
  if (ret == -1) {
    ERROR_SAVE (saved);
    prot_end (&prot);
    ERROR_RESTORE (saved);
    return -1;
  }
  m->protected = prot_end (&prot);
  error_clear ();
  return 0;
}

char *
domain_xml_read_checked (struct repo *r, const struct repo_manifest *m)
{
  CLEANUP_FREE char *path = xasprintf ("points/%s/%s/domain.xml", m->vm,
                                       m->id);
  uint8_t sum[REPO_DIGEST_LEN];
  char *text;
  size_t len;

  if (!m->has_domain_xml) {
    error_set (ENOENT, "%s@%s has no saved domain XML", m->vm, m->id);
    return NULL;
  }
  if (repo_meta_read (r, path, 16 << 20, &text, &len) == -1) {
    if (errno == ENOENT)
      error_set (EIO, "%s/%s: missing (the manifest of %s@%s names it)",
                 r->location, path, m->vm, m->id);
    else
      error_prefix ("domain XML of %s@%s", m->vm, m->id);
    return NULL;
  }
  if (!m->domain_xml_pinned)
    return text;
  repo_sha256 (text, len, sum);
  if (memcmp (sum, m->domain_xml_sha256, REPO_DIGEST_LEN) != 0) {
    free (text);
    error_setx ("%s/%s: SHA-256 mismatch: the file is not the domain XML "
                "the manifest of %s@%s pins (it was changed after the point "
                "was taken); refusing to use it", r->location, path, m->vm,
                m->id);
    return NULL;
  }
  return text;
}

char *
repo_domain_xml_read (struct repo *r, const char *vm, const char *id)
{
  struct repo_manifest *m = xmalloc (sizeof *m);
  char *text = NULL;

  if (repo_manifest_read (r, vm, id, m) == 0)
    text = domain_xml_read_checked (r, m);
  free (m);
  return text;
}

int
repo_point_protect (struct repo *r, const char *vm, const char *id, bool on)
{
  struct repo_manifest m;
  CLEANUP_FREE char *path = xasprintf ("points/%s/%s/protected", vm, id);

  if (repo_manifest_read (r, vm, id, &m) == -1)
    return -1;
  if (on)
    return io_write_file_atomic (r->io, path, "protected\n", 10);
  if (r->io->ops->unlink (r->io, path) == -1 && errno != ENOENT)
    return -1;
  return 0;
}

int
repo_point_pruned (struct repo *r, const char *vm, const char *id)
{
  CLEANUP_FREE char *pm = NULL;
  struct repo_stat st;

  if (check_point (vm, id) == -1)
    return -1;
  pm = xasprintf ("pruned/%s/%s", vm, id);
  if (!r->crypt) {
    /* Anyone who can write the repository can write this. */
    if (r->io->ops->stat (r->io, pm, &st) == 0)
      return 1;
  }
  else {
    /* Sealed with the repository's key and bound to its path: only a
     * holder of the key wrote it, for this point.  One that does not
     * open (forged, or another point's copied here) is no marker. */
    CLEANUP_FREE char *text = NULL;
    size_t len;

    if (io_read_file (r->io, pm, 64 + CRYPT_OVERHEAD, &text, &len) == 0) {
      if (crypt_unseal (r->crypt, (uint8_t *) text, &len, pm) == 0)
        return 1;
      error_clear ();
      return 0;
    }
    if (error_errno () == EFBIG) {
      error_clear ();
      return 0;
    }
  }
  if (error_errno () == ENOENT) {
    error_clear ();
    return 0;
  }
  return -1;
}

int
point_remove_now (struct repo *r, const char *vm, const char *id)
{
  struct repo_manifest m;
  bool gone;
  CLEANUP_FREE char *dir = xasprintf ("points/%s/%s", vm, id);
  CLEANUP_FREE char *man = xasprintf ("%s/manifest.json", dir);
  CLEANUP_FREE char *vmdir = xasprintf ("points/%s", vm);
  CLEANUP_FREE char *pm_dir = xasprintf ("pruned/%s", vm);
  CLEANUP_FREE char *pm = xasprintf ("pruned/%s/%s", vm, id);

  if (repo_manifest_read (r, vm, id, &m) == -1)
    return -1;
  if (m.protected) {
    error_setx ("%s@%s is protected; unprotect it first", vm, id);
    return -1;
  }
  /* The marker first: every host's catalog then knows the point was
   * pruned, not lost to a rollback (catalog_points_sync).  Sealed in an
   * encrypted repository (repo_point_pruned). */
  if (io_mkdir_p1 (r->io, "pruned") == -1 || io_mkdir_p1 (r->io, pm_dir) == -1 ||
      repo_meta_write (r, pm, "pruned\n", 7) == -1)
    return -1;
  gone = r->io->ops->unlink (r->io, man) == 0;
  if (!gone && errno == ENOENT) {
    /* Gone all the same (an NFS REMOVE sent again after it was done,
     * another prune): the marker stands, as it was meant to. */
    error_clear ();
    gone = true;
  }
  if (!gone) {
    /* Still there: no marker may stand for it. */
    ERROR_SAVE (saved);
    r->io->ops->unlink (r->io, pm);
    ERROR_RESTORE (saved);
    return -1;
  }
  if (r->io->ops->sync_dir (r->io, dir) == -1)
    return -1;
  /* The point is gone; the rest is tidying (GC finishes it if we crash). */
  io_remove_dir (r->io, dir);
  r->io->ops->sync_dir (r->io, vmdir);
  error_clear ();
  return 0;
}
