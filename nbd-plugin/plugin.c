/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbdkit-bootback-plugin: serve any disk of any restore point of a
 * bootback repository over NBD, read-only (nbdkit-bootback-plugin.pod).
 *
 * Only the nbdkit callbacks live here, in the order nbdkit calls them;
 * they translate between nbdkit and the repository library
 * (recovery/repo/repo.h) and serve.c (export names, the shared table of
 * opened disks, sequential-access detection).  Every library error is
 * reported once, here: nbdkit_error with the library's message (which
 * names the chunk, restore point, disk and byte range) and
 * nbdkit_set_error.
 *
 * Sharing: one repository, one cache of decoded chunks and one table of
 * opened disks for the whole server; each connection has a handle with
 * its disk and its sequential-access state.
 *
 * Approval: whoever checked a point before serving it (the scan gate of
 * `bootback instant --require-clean`, and every session: the point it
 * read) names the index it checked, index-sha256= with point=, or an
 * export name ending in "#HEX" (serve.h).  The disk is then served only if
 * the index opened is that one: a point replaced in the repository between
 * the check and this open is refused, naming the disk, rather than served.
 */
#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "nbd-plugin/serve.h"
#include "nbd-plugin/trace.h"
#include "recovery/util/util.h"

#define DEFAULT_CACHE (256 * 1024 * 1024)
#define DEFAULT_READAHEAD (8 * 1024 * 1024)

/* At most this many reads run in the library at once, whatever the
 * number of connections and nbdkit threads (16 per connection).  The
 * cache counts the buffers of the chunks being decoded (cache.c); each
 * read that misses it also holds a codec, whose buffer gets the chunk's
 * file (up to a chunk and its table), so this bounds the memory beyond
 * the cache; 8 is plenty to keep two cores busy decoding.  The library's
 * read-ahead adds 2 decodes. */
#define PARALLEL_READS 8
#define PREFETCH_DECODES 2
/* A codec's multi-buffer SHA-256 manager (recovery/repo/chunk.c; 196
 * KiB, measured: peak RSS +5 MiB at cache=256M). */
#define CODEC_MB (256 * 1024)
/* What nbdkit holds for requests in flight, measured with its default 16
 * threads per connection and nbdcopy's 256K requests. */
#define NBDKIT_BUFFERS (16 * 1024 * 1024)
/* The process's own resident memory: nbdkit, the libraries, the heap
 * (measured: 13 MiB of mapped files, 2 MiB of heap). */
#define PROCESS_BASE (16 * 1024 * 1024)

/* The soft open-file limit the plugin wants: the library keeps the chunk
 * files that reads of frames open, up to an eighth of it and 4096
 * (recovery/repo/chunk-store.c), so that a 4K random miss is one pread,
 * not an open, two stats, a pread and a close.  The usual soft limit of
 * 1024 would keep 128.  Descriptors above 1024 are safe here: nbdkit and
 * the library poll, nothing selects. */
#define NOFILE_WANT (8 * 4096)

/* Parameters. */
static char *repo_path;              /* repo= */
static char *point_spec;             /* point=, NULL = export names choose */
static char *disk_name;              /* disk=, NULL = the point's default */
static int64_t cache_size = DEFAULT_CACHE;
static int64_t readahead = DEFAULT_READAHEAD;
static char *trace_path;             /* trace=, NULL = do not record */
static char *prefetch_path;          /* prefetch=, NULL = none */
static bool want_index;              /* index-sha256= given */
static uint8_t want_sha256[REPO_DIGEST_LEN];

/* Server-wide state, set up in get_ready. */
static struct repo *repo;
static struct repo_cache *cache;     /* NULL with cache=0 */
static sem_t reads;                  /* PARALLEL_READS slots */
static struct serve_disks *disks;
static struct repo_disk *pinned;     /* the disk of point=, if given */
static char pinned_name[SERVE_NAME_MAX];
static char pinned_desc[512];
static struct bb_trace *trace;       /* trace= or prefetch= (pinned disk) */
static size_t lru_bytes;             /* what the cache holds at most */

struct handle {
  struct repo_disk *disk;
  struct serve_seq seq;
  const char *desc;                  /* interned */
};

/* Report the library's last error once, as nbdkit wants it. */
static void
report (const char *what, uint32_t count, uint64_t offset)
{
  int err = error_errno ();

  if (what)
    nbdkit_error ("%s of %" PRIu32 " bytes at offset %" PRIu64 ": %s",
                  what, count, offset, error_msg ());
  else
    nbdkit_error ("%s", error_msg ());
  /* A bad chunk, a missing file, a failing disk: all EIO for the client.
   * Only a request the client got wrong keeps its own code. */
  nbdkit_set_error (err == EINVAL || err == ENOMEM ? err : EIO);
}

static void
bb_unload (void)
{
  struct repo_cache_stats st;

  bb_trace_free (trace);
  serve_disks_free (disks);
  if (cache) {
    repo_cache_get_stats (cache, &st);
    nbdkit_debug ("bootback: cache hits %" PRIu64 ", misses %" PRIu64
                  ", decodes %" PRIu64 ", evictions %" PRIu64 ", frame "
                  "tables kept %" PRIu64 ", memory held at most %" PRIu64
                  " of %zu bytes", st.hits, st.misses, st.decodes,
                  st.evictions, st.tables_kept, st.peak, lru_bytes);
  }
  repo_cache_free (cache);
  repo_close (repo);
  if (repo)
    sem_destroy (&reads);
  free (repo_path);
  free (point_spec);
  free (disk_name);
  free (trace_path);
  free (prefetch_path);
}

static int
set_string (char **var, const char *key, const char *value)
{
  if (*var) {
    nbdkit_error ("%s= was given more than once", key);
    return -1;
  }
  *var = strdup (value);
  if (!*var) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

static int
parse_size_param (int64_t *var, const char *key, const char *value)
{
  *var = nbdkit_parse_size (value);
  if (*var == -1) {
    nbdkit_error ("%s=%s: expected a size such as 256M", key, value);
    return -1;
  }
  return 0;
}

static int
bb_config (const char *key, const char *value)
{
  if (strcmp (key, "repo") == 0) {
    if (repo_path) {
      nbdkit_error ("repo= was given more than once");
      return -1;
    }
    repo_path = strstr (value, "://") ? strdup (value)
                                                  : nbdkit_absolute_path (value);
    return repo_path ? 0 : -1;
  }
  if (strcmp (key, "point") == 0)
    return set_string (&point_spec, key, value);
  if (strcmp (key, "disk") == 0) {
    if (!disk_name_is_valid (value)) {
      nbdkit_error ("disk=%s: not a valid disk name", value);
      return -1;
    }
    return set_string (&disk_name, key, value);
  }
  if (strcmp (key, "index-sha256") == 0) {
    if (want_index) {
      nbdkit_error ("index-sha256= was given more than once");
      return -1;
    }
    if (strlen (value) != 2 * REPO_DIGEST_LEN ||
        hex_decode (value, want_sha256, REPO_DIGEST_LEN) == -1) {
      nbdkit_error ("index-sha256=%s: expected the 64 hex digits of a SHA-256",
                    value);
      return -1;
    }
    want_index = true;
    return 0;
  }
  if (strcmp (key, "cache") == 0)
    return parse_size_param (&cache_size, key, value);
  if (strcmp (key, "readahead") == 0) {
    if (strcmp (value, "off") == 0) {
      readahead = 0;
      return 0;
    }
    return parse_size_param (&readahead, key, value);
  }
  if (strcmp (key, "trace") == 0 || strcmp (key, "prefetch") == 0) {
    char **var = key[0] == 't' ? &trace_path : &prefetch_path;
    if (*var) {
      nbdkit_error ("%s= was given more than once", key);
      return -1;
    }
    *var = nbdkit_absolute_path (value);
    return *var ? 0 : -1;
  }
  nbdkit_error ("unknown parameter '%s' (see nbdkit-bootback-plugin(1): "
                "repo, point, disk, index-sha256, cache, readahead, trace, prefetch)",
                key);
  return -1;
}

static int
bb_config_complete (void)
{
  if (!repo_path) {
    nbdkit_error ("the repo=PATH parameter is required");
    return -1;
  }
  if ((trace_path || prefetch_path) && !point_spec) {
    nbdkit_error ("trace= and prefetch= need point= (the disk they are of)");
    return -1;
  }
  if (want_index && !point_spec) {
    nbdkit_error ("index-sha256= needs point= (without it, an export name "
                  "ending in #HEX names the index)");
    return -1;
  }
  /* nbdkit's environment holds the repository's secrets: no core of it. */
  if (env_has_secrets ())
    secrets_held ();
  return 0;
}

#define bb_config_help \
  "repo=PATH              (required) The bootback repository.\n" \
  "point=VM@TIME|VM@latest|VM  Serve this restore point only\n" \
  "                       (default: the export name chooses).\n" \
  "disk=NAME              The disk of the point (default: vda or the\n" \
  "                       only disk).\n" \
  "index-sha256=HEX       Serve the disk only if its index is this one.\n" \
  "cache=SIZE             Memory for decoded chunks (default 256M, 0 = none).\n" \
  "readahead=SIZE         Read ahead on sequential access (default 8M, 0 = off).\n" \
  "trace=FILE             Append the first read of each chunk (boot trace).\n" \
  "prefetch=FILE          Load a boot trace's chunks ahead of the guest."

/* trace= and prefetch= for the pinned disk; prefetch stays half the
 * cache ahead of the guest. */
static int
start_trace (void)
{
  uint32_t cs = repo_chunk_size (repo);

  if (!trace_path && !prefetch_path)
    return 0;
  trace = bb_trace_new (trace_path, prefetch_path, pinned, cs, cache,
                        lru_bytes / cs / 2, &reads);
  if (!trace) {
    nbdkit_error ("%s", error_msg ());
    return -1;
  }
  return 0;
}

/* Raise the soft open-file limit towards NOFILE_WANT, within the hard
 * limit; never lower it.  A failure only keeps fewer files open. */
static void
raise_nofile (void)
{
  struct rlimit rl;
  rlim_t want = NOFILE_WANT;

  if (getrlimit (RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
    return;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
    want = rl.rlim_max;
  if (want <= rl.rlim_cur)
    return;
  rl.rlim_cur = want;
  if (setrlimit (RLIMIT_NOFILE, &rl) == -1)
    nbdkit_debug ("bootback: setrlimit NOFILE: %m");
}

static int
bb_get_ready (void)
{
  CLEANUP_FREE struct repo_manifest *m = NULL;
  CLEANUP_FREE char *spec = NULL, *ahead = NULL;
  struct repo_open_opts ro = { 0 };
  size_t i;

  /* The repository library reads no environment: its settings are ours. */
  repo_open_opts_nfs (&ro, getenv ("BOOTBACK_NFS_TIMEOUT"),
                      getenv ("BOOTBACK_NFS_CONNECTIONS"));
  repo_open_opts_secret (&ro, getenv ("BOOTBACK_PASSPHRASE"),
                         getenv ("BOOTBACK_PASSPHRASE_FILE"),
                         getenv ("BOOTBACK_KEY_FILE"));
  repo_open_opts_s3_env (&ro);
  /* point=VM...: its point directories are what is listed first */
  if (point_spec)
    ro.list_ahead = ahead = xasprintf ("points/%.*s",
                                       (int) strcspn (point_spec, "@/"),
                                       point_spec);
  raise_nofile ();
  repo = repo_open_with (repo_path, &ro);
  if (!repo) {
    nbdkit_error ("cannot open the repository: %s", error_msg ());
    return -1;
  }
  /* cache= is the process's memory: the cache (which counts all it
   * holds, the chunks being decoded too) gets what is left after the
   * codecs of the reads in flight, nbdkit's request buffers and the
   * process's own (the man page's MEMORY section has the figures). */
  if (cache_size > 0) {
    uint64_t size = cache_size, cs = repo_chunk_size (repo);
    uint64_t reserve = (PARALLEL_READS + PREFETCH_DECODES) *
                       (cs + cs / 16 + CODEC_MB) +
                       NBDKIT_BUFFERS + PROCESS_BASE;
    lru_bytes = size > 2 * reserve ? size - reserve : size / 2;
    cache = repo_cache_new (repo, lru_bytes);
  }
  sem_init (&reads, 0, PARALLEL_READS);
  disks = serve_disks_new (repo);
  if (!point_spec)
    return 0;

  /* point=: a wrong point or disk is an error now, not at each open. */
  m = malloc (sizeof *m);
  if (!m) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  pinned = serve_disks_get (disks, point_spec, disk_name, true,
                            want_index ? want_sha256 : NULL, m);
  if (!pinned) {
    nbdkit_error ("point=%s%s%s: %s", point_spec, disk_name ? " disk=" : "",
                  disk_name ? disk_name : "", error_msg ());
    return -1;
  }
  serve_disks_put (disks, pinned);     /* pinned: stays open */
  snprintf (pinned_name, sizeof pinned_name, "%s/%s",
            repo_disk_point (pinned), repo_disk_name (pinned));
  for (i = 0; i < m->ndisks; i++)
    if (strcmp (m->disks[i].name, repo_disk_name (pinned)) == 0)
      serve_describe (m, &m->disks[i], pinned_desc, sizeof pinned_desc);
  nbdkit_debug ("bootback: serving %s (%s)", pinned_name, pinned_desc);
  return start_trace ();
}

static int
bb_after_fork (void)
{
  bb_trace_start (trace);
  return 0;
}

static int
add_export (void *exports, const char *name, const char *description)
{
  if (nbdkit_add_export (exports, name, description) == -1) {
    error_setx ("too many exports");
    return -1;
  }
  return 0;
}

static int
bb_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  if (pinned)
    return nbdkit_add_export (exports, pinned_name, pinned_desc);
  if (serve_list (repo, add_export, exports) == -1) {
    report (NULL, 0, 0);
    return -1;
  }
  return 0;
}

static const char *
bb_default_export (int readonly, int is_tls)
{
  char name[SERVE_NAME_MAX];

  if (pinned)
    return pinned_name;
  if (serve_default_name (repo, disk_name, name) == -1) {
    report (NULL, 0, 0);
    return NULL;
  }
  return nbdkit_strdup_intern (name);
}

static void *
bb_open (int readonly)
{
  CLEANUP_FREE struct repo_manifest *m = NULL;
  const char *name;
  char def[SERVE_NAME_MAX], bare[SERVE_NAME_MAX], desc[512] = "";
  uint8_t want[REPO_DIGEST_LEN];
  bool pin;
  struct handle *h;
  size_t i;

  h = calloc (1, sizeof *h);
  m = malloc (sizeof *m);
  if (!h || !m) {
    nbdkit_error ("calloc: %m");
    free (h);
    return NULL;
  }
  if (pinned) {
    /* Whatever name the client asked for: point= decides. */
    h->disk = pinned;
    h->desc = pinned_desc;
  }
  else {
    name = nbdkit_export_name ();
    if (!name || !*name) {
      if (serve_default_name (repo, disk_name, def) == -1)
        goto err;
      name = def;
    }
    if (serve_name_pin (name, bare, &pin, want) == -1)
      goto err;
    name = bare;
    h->disk = serve_disks_get (disks, name, disk_name, false, pin ? want : NULL, m);
    if (!h->disk) {
      error_prefix ("export '%s'", name);
      goto err;
    }
    for (i = 0; i < m->ndisks; i++)
      if (strcmp (m->disks[i].name, repo_disk_name (h->disk)) == 0)
        serve_describe (m, &m->disks[i], desc, sizeof desc);
    h->desc = nbdkit_strdup_intern (desc);
    nbdkit_debug ("bootback: export %s is %s/%s", name,
                  repo_disk_point (h->disk), repo_disk_name (h->disk));
  }
  serve_seq_init (&h->seq);
  return h;
 err:
  report (NULL, 0, 0);
  free (h);
  return NULL;
}

static void
bb_close (void *handle)
{
  struct handle *h = handle;

  if (h->disk != pinned)
    serve_disks_put (disks, h->disk);
  serve_seq_destroy (&h->seq);
  free (h);
}

static const char *
bb_export_description (void *handle)
{
  struct handle *h = handle;

  return h->desc;
}

static int64_t
bb_get_size (void *handle)
{
  struct handle *h = handle;

  return repo_disk_size (h->disk);
}

static int
bb_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
               uint32_t *maximum)
{
  *minimum = 1;
  *preferred = repo_chunk_size (repo);
  *maximum = 0xffffffff;
  return 0;
}

static int
bb_is_rotational (void *handle)
{
  return 0;
}

static int
bb_can_multi_conn (void *handle)
{
  return 1;                            /* read-only: every view is the same */
}

static int
bb_can_extents (void *handle)
{
  return 1;
}

static int
bb_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
bb_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
          uint32_t flags)
{
  struct handle *h = handle;
  double t0 = trace ? now_monotonic () : 0;
  uint64_t i, end;
  bool stream = false;
  int r;

  if (cache && readahead > 0) {
    stream = serve_seq_note (&h->seq, offset, count, repo_chunk_size (repo),
                             repo_disk_size (h->disk), readahead, &i, &end);
    for (; i < end; i++)
      repo_cache_prefetch (cache, h->disk, i);
  }
  if (h->disk == pinned)
    bb_trace_note (trace, offset, count);
  while (sem_wait (&reads) == -1)
    ;                                  /* EINTR */
  /* A sequential reader's whole chunks that the cache has no room for
   * are decoded straight into buf and not kept (cache.c invariant 5). */
  r = stream ? repo_disk_pread_stream (h->disk, cache, buf, count, offset)
             : repo_disk_pread (h->disk, cache, buf, count, offset);
  sem_post (&reads);
  if (h->disk == pinned && trace)
    bb_trace_read_done (trace, now_monotonic () - t0);
  if (r == -1) {
    report ("read", count, offset);
    return -1;
  }
  return 0;
}

static int
bb_extents (void *handle, uint32_t count, uint64_t offset, uint32_t flags,
            struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  uint64_t end = offset + count, len;
  bool zero;

  while (offset < end) {
    repo_disk_extent (h->disk, offset, end - offset, &len, &zero);
    if (nbdkit_add_extent (extents, offset, len,
                           zero ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO
                                : 0) == -1)
      return -1;
    offset += len;
    if (flags & NBDKIT_FLAG_REQ_ONE)
      break;
  }
  return 0;
}

/* NBD_CMD_CACHE: load (and verify) the chunks of the range into the cache
 * now, so that an error shows here rather than at the later read. */
static int
bb_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  uint32_t cs = repo_chunk_size (repo);
  CLEANUP_FREE void *buf = NULL;
  uint64_t end = offset + count, n;
  int r;

  if (!cache)
    return 0;
  buf = malloc (cs);
  if (!buf) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  while (offset < end) {
    n = MIN (end - offset, cs - offset % cs);
    while (sem_wait (&reads) == -1)
      ;
    r = repo_disk_pread (h->disk, cache, buf, n, offset);
    sem_post (&reads);
    if (r == -1) {
      report ("cache", count, offset);
      return -1;
    }
    offset += n;
  }
  return 0;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "bootback",
  .longname           = "bootback restore points",
  .version            = PACKAGE_VERSION,
  .description        = "Serve the disks of bootback restore points, read-only",
  .unload             = bb_unload,
  .config             = bb_config,
  .config_complete    = bb_config_complete,
  .config_help        = bb_config_help,
  .magic_config_key   = "repo",
  .get_ready          = bb_get_ready,
  .after_fork         = bb_after_fork,
  .list_exports       = bb_list_exports,
  .default_export     = bb_default_export,
  .open               = bb_open,
  .close              = bb_close,
  .export_description = bb_export_description,
  .get_size           = bb_get_size,
  .block_size         = bb_block_size,
  .is_rotational      = bb_is_rotational,
  .can_multi_conn     = bb_can_multi_conn,
  .can_extents        = bb_can_extents,
  .can_cache          = bb_can_cache,
  .pread              = bb_pread,
  .extents            = bb_extents,
  .cache              = bb_cache,
};

NBDKIT_REGISTER_PLUGIN (plugin)
