/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The S3 backend of the I/O ops table: a repository at
 * s3://BUCKET[/PREFIX] on an S3 server (Ceph RGW, AWS, MinIO, ...),
 * path-style requests to the endpoint (BOOTBACK_S3_ENDPOINT or
 * --s3-endpoint; default https://s3.REGION.amazonaws.com).  The keys
 * come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or from a
 * credentials file (~/.aws/credentials or AWS_SHARED_CREDENTIALS_FILE,
 * profile AWS_PROFILE or "default"): never from a command line, never in
 * a message (repo_open_opts_s3_env).
 *
 * Why libcurl: it is on every host already (libcurl4), well kept, does
 * TLS, connection reuse and proxies, and signs AWS SigV4 itself since
 * 7.75 (CURLOPT_AWS_SIGV4; Debian 12 has 7.88).  The C S3 libraries
 * (libs3: unmaintained since 2019, no SigV4 for every region; the AWS
 * C++ SDK: C++, huge) would bring more than they save.  The signing
 * needs the body at hand, so every request body is a buffer
 * (CURLOPT_POSTFIELDS with a custom method), which suits objects written
 * whole.  Query strings are given in SigV4's canonical (sorted) order.
 *
 * Design notes (invariants):
 *  1. A path is the key PREFIX/path.  "Directories" are key prefixes;
 *     mkdir PUTs a marker object "path/" with If-None-Match: * (EEXIST if
 *     it exists: the writer claims a point id with it), list is
 *     ListObjectsV2 with delimiter "/" and pagination, rmdir removes the
 *     marker of an empty prefix.  The parents that are only made sure
 *     of (locks, locks/writers, points/VM, holds, keys) get no marker: a
 *     prefix exists by what is below it.  stat of a missing path lists its
 *     prefix (a directory without marker) unless it can only be a file
 *     (a point's file, a lock).
 *  2. No rename, no partial write: a file opened for writing is a buffer,
 *     sent whole by one PUT (atomic: readers see the old object or the
 *     new one, never a part).  A temp name (".tmp-", io.c) is never sent:
 *     its buffer waits in memory (pending) until rename PUTs it under the
 *     final name, or unlink drops it.  So "temp, fsync, rename" (steps
 *     1-3 of the commit protocol) is one PUT of the final object, chunks,
 *     then indexes, then the manifest, and a killed writer leaves no temp
 *     behind.  fsync has nothing to do (a PUT is durable when it
 *     returns); sync_dir and sync_all wait for the uploads of 9.  Other
 *     renames (none on the paths that
 *     matter) are a server-side copy and a delete.
 *  3. O_EXCL of a non-temp name (a lock: locks/gc, locks/holds; a
 *     writer's registration) is created at close, with its content, and
 *     mkdir's marker (a point id's claim) at once: a PUT with
 *     If-None-Match: * (412 = EEXIST).  RGW 16.2 honours the condition in
 *     an unversioned bucket, but not in a versioned one (every bucket
 *     with Object Lock, and one whose owner turned versioning on: open
 *     asks GET ?versioning when there is no Object Lock, and a PUT that
 *     makes a version marks the handle versioned whatever open found):
 *     there a second create succeeds too (AWS S3 since
 *     2024 and MinIO honour it).  So when the PUT made a version
 *     (x-amz-version-id), the create lists the key's versions
 *     (ListObjectVersions, every page, the exact key; RGW lists them in
 *     the order its bucket index made them, newest first) and the oldest
 *     live version wins.  Live are the versions newer than the newest
 *     delete marker (a delete marker is a removal of the file: what is
 *     older is gone).  The winner keeps the ids of its versions (11.),
 *     which unlink deletes (the release); a loser deletes its own by id
 *     and returns EEXIST; one with no live version left (deleted, or
 *     hidden by a delete marker made meanwhile) tries again (EXCL_TRIES).
 *     A version is the taker's own by its id or, for a content of its own
 *     (a lock names host, pid and a nonce: io.c), by its ETag: a PUT sent
 *     again after a lost reply made two, both its own.  Races: two takers
 *     each list after their own PUT and see the same oldest; a release
 *     deletes the holder's versions, the newest first, so a taker listing
 *     meanwhile sees the holder (it loses, and waits) or nothing of it; a
 *     taker killed between its PUT and its check leaves a version with
 *     its content (host, pid), the oldest one at once or once the holder
 *     releases: a lock held by a dead process, taken over as on local
 *     disk (io.c: its pid gone on this host; empty for 30 s), which
 *     deletes that version alone.  So a read of a contended lock in a
 *     versioned bucket reads its holder's version (the oldest live, by
 *     id), and unlink then deletes that one only: never every version,
 *     which would take a new taker's too and let two hold.  A writer's
 *     registration (locks/writers/NAME, a name of this process's own)
 *     needs no check (its PUT decides); its mtime until then (the start
 *     it records, gc.c) is the Date of the server's last answer, less a
 *     second: never later than the PUT.  A directory marker has no
 *     content, only its id tells it: a PUT sent again after a lost reply
 *     loses to its first (EEXIST: the writer takes the next point id, gc
 *     removes the empty one).  In an unversioned bucket a conditional PUT
 *     sent again after a lost reply finds its own object (EEXIST): a lock
 *     then reads as held by this host's live process and is waited for or
 *     reported, never taken twice.
 *  4. Reading: open GETs the first HEAD_MAX bytes (a whole chunk) in one
 *     request; reads beyond them are ranged GETs.
 *  5. Times are the server's: mtime is Last-Modified, and a new file's
 *     mtime is the Date of the PUT that made it.  touch of a non-chunk
 *     object is a copy onto itself (a new Last-Modified).  Chunks are not
 *     touched: on S3 GC and writers exclude each other (gc.c), so touch
 *     of a chunk only checks that it exists (and extends its lock).
 *  6. Objects bigger than the multipart threshold (16 MiB) go up in
 *     parts of that size.  Requests run in parallel as the callers'
 *     threads make them, each on a curl handle of a pool (connections are
 *     reused).  Connection errors, 5xx, 429 and SlowDown are retried with
 *     exponential back-off (MAX_TRIES); a 4xx is an error naming the
 *     bucket, the key, the HTTP status and S3's error code.
 *  8. A local read cache (BOOTBACK_S3_CACHE=DIR, at most
 *     BOOTBACK_S3_CACHE_SIZE bytes, default 4G): chunk objects, which never
 *     change under their name, are kept whole in DIR/<repo>/<digest>
 *     (0600; DIR, ours alone, and <repo>, 16 hex of the SHA-256 of
 *     endpoint, bucket and prefix, 0700) when read, and read from there
 *     next time.  A cached file is
 *     checked (the chunk header's CRCs of itself and its payload; a sealed
 *     chunk of an encrypted repository has only its GCM tags, checked
 *     above at every read: damaged, it is an error naming it) at its
 *     first read by this handle, fetched again if damaged, then read in
 *     place (pread of what is asked, as from local disk); what is read
 *     is checked above against the chunk's digest at every read as
 *     always.  Past the size, the least recently used files go (their
 *     mtime is set at the first hit of each handle).  A point's index
 *     (points/VM/ID/DISK.fidx) is kept too, as DIR/<repo>/i<SHA-256 of
 *     its path>; it is checked above at every open against the SHA-256
 *     the manifest pins (and its GCM tag if sealed), and one that fails
 *     is removed and fetched again (s_uncache); one this handle writes
 *     is put there at once (19.).  So is a chunk whose
 *     read fails above (chunk-store.c): a file the server answered under
 *     another's name, intact by its CRCs, is not served for ever.  The
 *     manifest is never cached: it is what says that the point exists.
 *  9. Chunk objects are sent in the background: the rename of a chunk's
 *     temp name queues its buffer for UPLOADERS threads (each with a curl
 *     handle of the pool) and returns; at most UPLOADS_MAX wait (the
 *     caller waits for room).  sync_all and sync_dir wait until every
 *     queued upload is acknowledged, so step 1 of the commit protocol
 *     (every chunk durable before the indexes and the manifest) holds.
 *     An upload that fails (after its retries) is remembered: sync_all,
 *     sync_dir and later chunk renames return its error (bucket, key,
 *     status) for the rest of the handle's life, and the uploads still
 *     queued are dropped, so the point is never committed.  Until it is
 *     acknowledged, a queued chunk is found by touch, stat and open from
 *     its buffer (a chunk stored twice in one import is sent once).
 * 10. A new chunk costs no HEAD in a directory without chunks: the chunk
 *     directories there are are listed (one page of ListObjectsV2 with
 *     delimiter "/", up to 1000; more: every touch asks, as before) on a
 *     thread of its own when a writer registers (3.: the open of its
 *     registration), so that its first chunk does not wait for it, else
 *     at the first touch of a chunk, and again after DIRS_TTL seconds; a
 *     chunk in a directory that had none, and in which this handle
 *     queued none, is missing without asking.  A chunk another writer
 *     stores there meanwhile is only stored a second time, under the
 *     same name with the same content (GC and writers exclude each
 *     other: nothing goes away meanwhile; a listing made before a GC
 *     the writer then waited for only costs HEADs that find nothing).
 * 11. An exclusive create (3.) makes an object's first version: its id
 *     (x-amz-version-id) and those of the versions this handle writes
 *     after it (content, touch) are kept, and unlink deletes them by id
 *     without listing the key's versions (a writer's registration, a
 *     lock, a point directory's marker); so are the id of a contended
 *     lock's holder's version this handle read (3.) and nothing else.  Whether the
 *     bucket is versioned (Object Lock, or versioning alone) is asked by
 *     every open (12.: with its default retention; a missing bucket is
 *     named; GET ?object-lock and GET ?versioning at once), on a thread
 *     of its own while bootback-repo.json is read (one round trip for
 *     all), and seen in such an id.
 *  7. Object Lock: in a repository with "lock_days" (repo init --lock),
 *     every object under points/ and chunks/ is written with COMPLIANCE
 *     retention until now + lock_days; touch of a reused chunk extends
 *     its retention.  retain (bootback point lock) sets it on an existing
 *     object.  A bucket with Object Lock is versioned: unlink removes
 *     every version of the key by version id (a locked one fails: EPERM,
 *     and the object stays visible).
 * 12. bootback-repo.json is not authenticated: someone with the bucket's
 *     keys could take "lock_days" out of it and have every later point
 *     written unlocked.  So repo init --lock DAYS also gives the bucket a
 *     default retention (COMPLIANCE, DAYS): the server locks every new
 *     object that comes without a retention of its own, whatever the
 *     file says.  An open asks for it (one GET ?object-lock) and locks
 *     for the longer of the file's days and the bucket's.  The default
 *     locks the repository's bookkeeping too, but for locks/ and the
 *     directory markers (13.): a version of holds/ or keys/ that cannot
 *     be deleted is hidden by a delete marker instead, and stays until
 *     its lock ends.
 * 13. Locks and directory markers stay deletable: a lock that cannot be
 *     deleted is never released, and a delete marker in its stead would
 *     hide a new taker's version too (3.).  In a bucket with a default
 *     retention, an object without a retention of its own gets the
 *     default's (COMPLIANCE, for days), so everything under locks/ and
 *     every directory marker is written (PUT, copy) with a GOVERNANCE
 *     retention of its own, SHORT_RETENTION seconds past the server's
 *     Date, and their versions are deleted with
 *     x-amz-bypass-governance-retention (the bucket owner may; past the
 *     date, anyone may).  Nothing of a point's or a chunk's is among them.
 * 14. A writer's registration is deleted (unlink) by an uploader (9.)
 *     when they run: the caller goes on (the catalog, the ransomware
 *     score) meanwhile, and the handle's free waits for it.  A failed
 *     delete fails nothing else (the registration is then a dead
 *     writer's, dropped by gc); a registration lingering a moment longer
 *     only makes a gc wait a moment longer.
 * 15. An open lists keys/ (one request beside those of 11. and 12.) and
 *     keeps what it found for the first list of keys/ (the repository's
 *     open lists it at once, repo.c: key slots); so it does with the
 *     directory its caller names (repo_open_opts list_ahead: points for
 *     the command line, whose catalog check lists it at once, main.c;
 *     points/VM for the plugin's point=VM@...).  A write or removal of
 *     anything in such a directory by this handle drops its listing
 *     first, and one not taken within LISTED_TTL seconds of its request
 *     is not used (a caller that lists it only later asks then).  It is a
 *     listing a round trip older than one asked then: no less current
 *     than a listing always is.
 * 16. A chunk object (chunks/...) is sent with x-amz-content-sha256:
 *     UNSIGNED-PAYLOAD (standard SigV4; the request is still signed:
 *     method, key, headers, length): neither bootback nor the server
 *     hashes its body for the signature (together about twice the
 *     chunks' bytes of SHA-256, on the same cores as the server in the
 *     bench).  The signed hash only made the server refuse a body
 *     altered on the way; a chunk is never trusted on the way back
 *     either: it is named by the SHA-256 of its content, checked at
 *     every read, with the CRCs of its header and payload (an encrypted
 *     repository's sealed chunk by its GCM tag too), as one altered in
 *     the bucket by anyone who can write there is (its bytes are
 *     hostile).  So a chunk damaged between here and the server's disk
 *     is found by reads and by repo verify instead of being refused by
 *     its PUT; the link has TCP's checksum, and TLS's integrity over
 *     https; an attacker on a plain http:// path could answer the PUT
 *     itself anyway (7.).  In a repository with a retention a chunk's
 *     PUT carries Content-MD5 (7.), which the server checks.  All else
 *     (manifests, indexes, bootback-repo.json, locks, keys/, markers)
 *     stays signed with its SHA-256: small, and not all of it named by
 *     its content.  And a body over 1 MiB is sent at once, without
 *     waiting for a "100 Continue" (curl's Expect).
 * 17. A bucket repo init makes has Object Lock (and so versioning) only
 *     when asked for (--lock DAYS, --object-lock: io_s3_init_bucket);
 *     otherwise it is plain.  In a versioned bucket every PUT makes a
 *     version beside the object's head, which RGW keeps in step with
 *     more operations on its bucket index and the head object (on the
 *     bench's 2 GiB import radosgw and ceph-osd, on the same cores as
 *     bootback, spent about 9.6 ms of CPU per chunk PUT in a versioned
 *     bucket, 5.4 ms in a plain one), and every removal must name each
 *     version (7.).  A plain bucket has none of
 *     that, and its exclusive creates are one conditional PUT (3.).
 *     Buckets made before, all with Object Lock, are used as they are:
 *     what an open finds decides (11., 12.), never what init would make.
 * 18. A server that answers slowly on purpose (a byte now and then) must
 *     not keep bootback for ever: an attempt fails when it moves less
 *     than 1 KiB/s for STALL_SECONDS (60 s), and whatever it moves, when
 *     it outlasts twice that plus its bytes at 16 KiB/s (a 4 MiB chunk:
 *     6 min); then the retries (6.) and their end.  A link slower than
 *     that is no link to keep backups on.  (Before, only a minute below
 *     1 byte/s failed: a byte every 59 s held a chunk's GET for weeks.)
 * 19. A point's index this handle PUT (up to HEAD_MAX bytes) is kept in
 *     memory (WRITTEN_MAX bytes at most, the oldest dropped) and put into
 *     the read cache (8.) if there is one, and an open of it reads that
 *     copy instead of asking again: an import's ransomware score reads
 *     the new point's indexes back at once.  The copy is what the PUT
 *     sent; it is checked above at every open as any index is (the
 *     SHA-256 the manifest pins, read from the server every time; its
 *     GCM tag if sealed), and uncache drops it (8.).  A write or removal
 *     of the path by this handle drops it first.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <time.h>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <isa-l/crc.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "recovery/repo/crypt.h"
#include "recovery/repo/digest-set.h"
#include "recovery/repo/io-s3.h"

#define HEAD_MAX (REPO_MAX_CHUNK + 256 * 1024)   /* read at open (4.) */
#define MULTIPART (16 * 1024 * 1024)             /* 6. */
#define MAX_TRIES 6
#define POOL_MAX 32
#define KEY_MAX 1024
#define CACHE_DEFAULT (4LL << 30)                /* 8. */
#define UPLOADERS 8                              /* 9. */
#define UPLOADS_MAX (2 * UPLOADERS)
#define CONF_NAME "bootback-repo.json"
#define DIRS_TTL 60                              /* 10. */
#define SHORT_RETENTION 60                       /* 13. */
#define EXCL_TRIES 4                             /* 3. */
#define LISTED 2                                 /* 15. */
#define LISTED_TTL 10                            /* 15. */
#define WRITTEN_MAX (64 * 1024 * 1024)           /* 19. */

struct pending {                 /* a closed temp file, not sent (2.) */
  struct pending *next;
  char *path;
  uint8_t *buf;
  size_t len;
};

struct upload {                  /* a chunk object being sent (9.) */
  struct upload *next;
  char *path;
  uint8_t *buf;
  size_t len;
  bool taken;                    /* an uploader is sending it */
  bool unlink;                   /* a registration to delete (14.) */
};

struct created {                 /* an object this handle made (11.) */
  struct created *next;
  char *path;
  char **versions;               /* the ids of all its versions */
  size_t n;
};

struct written {                 /* an index this handle wrote (19.) */
  struct written *next;
  char *path;
  uint8_t *buf;
  size_t len;
  double mtime;
};

struct listed {                  /* a directory listed at open (15.) */
  char *path;                    /* NULL: none */
  char **v;                      /* NULL: not (or no longer) there */
  double time;                   /* when it was asked (monotonic) */
};

struct handle {                  /* a curl handle and its connection */
  CURL *c;
  curl_socket_t fd;
};

struct s3 {
  char *endpoint, *bucket, *prefix;   /* prefix "" or "a/b/" */
  char *userpwd, *sigv4;              /* "AK:SK", "aws:amz:REGION:s3" */
  int versioned;                      /* Object Lock enabled; -1: not
                                       * asked yet (bucket_versioned) */
  _Atomic time_t server_date;         /* the newest Date answered */
  struct created *created;            /* 11., under lock */
  int lock_days;                      /* 7. */
  int default_days;                   /* 12.: the bucket's default
                                       * COMPLIANCE retention, days */
  bool has_default;                   /* 12.: a default of any mode */
  bool trace;                         /* BOOTBACK_S3_TRACE: requests */
  bool sign_chunks;                   /* BOOTBACK_S3_SIGN_CHUNKS (16.): a
                                       * chunk's body signed too (A/B) */
  size_t multipart;
  char *cache_dir;                    /* 8. (NULL: no cache) */
  uint64_t cache_max, cache_bytes;    /* cache_bytes: under lock */
  struct digest_set *cache_known;     /* checked files (8.), under lock */
  struct s3_file *conf;               /* read_lock_days's, under lock */
  struct listed listed[LISTED];       /* 15.: keys/ and the caller's
                                       * directory, listed at open,
                                       * under lock */
  struct written *written;            /* 19.: newest first, under lock */
  size_t written_bytes;
  /* 10.: bit k of dirs: chunks/%04x/ had an object, as listed at
   * dirs_time; of mine: this handle queued a chunk there; dirs_all: too
   * many to list.  Under dirs_lock. */
  pthread_mutex_t dirs_lock;
  uint8_t *dirs, *mine;
  double dirs_time;
  bool dirs_all;
  pthread_t dirs_thread;              /* 10.: the listing ahead */
  bool dirs_ahead;                    /* it was started (joined at free) */
  pthread_mutex_t lock;               /* pending, pool, cache_bytes */
  struct pending *pending;
  struct handle *pool[POOL_MAX];
  size_t npool;
  /* 9.: under lock.  uploads: queued and being sent, nuploads of them;
   * up_error: the first failed upload's message (sticky). */
  pthread_cond_t up_cond;
  struct upload *uploads;
  size_t nuploads;
  pthread_t uploaders[UPLOADERS];
  size_t nuploaders;
  bool up_stop;
  _Atomic bool uploading;             /* an upload was ever queued */
  char *up_error;
  int up_errno;
};

struct s3_file {
  char *path;
  int flags;
  int fd;                       /* read from the cache (8.), or -1 */
  bool excl_close;              /* created exclusively at close (3.) */
  uint8_t *buf;
  size_t len, cap;              /* write: the content; read: the head */
  uint64_t size;
  double mtime;
  time_t retain_until;
};

/* One request and what came back. */
struct rq {
  const char *method, *key, *query;   /* key: below the bucket */
  struct curl_slist *hdrs;
  const void *body;
  size_t blen;
  bool unsigned_body;           /* 16.: UNSIGNED-PAYLOAD, not its SHA-256 */
  uint8_t *dst;                 /* GET: the body goes here (dcap bytes) */
  size_t dcap, dlen;
  long status;
  char *resp;                   /* any other body (errors, XML) */
  size_t rlen;
  uint64_t total;               /* object size (Content-Range/-Length) */
  time_t last_modified, date, retain_until;
  char etag[80];
  char version[128];            /* x-amz-version-id */
  struct handle *h;             /* the handle running it */
};

#define PRIV(io) ((struct s3 *) (io)->priv)
#define FILE_OF(f) ((struct s3_file *) (f))

/* ---- requests ------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void
curl_init_once (void)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
  xmlInitParser ();       /* before threads parse at once */
}

static struct handle *
handle_get (struct s3 *s)
{
  struct handle *h = NULL;

  pthread_mutex_lock (&s->lock);
  if (s->npool > 0)
    h = s->pool[--s->npool];
  pthread_mutex_unlock (&s->lock);
  if (h)
    return h;
  h = xcalloc (1, sizeof *h);
  h->fd = CURL_SOCKET_BAD;
  if (!(h->c = curl_easy_init ()))
    abort ();
  return h;
}

static void
handle_free (struct handle *h)
{
  curl_easy_cleanup (h->c);
  free (h);
}

static void
handle_put (struct s3 *s, struct handle *h)
{
  pthread_mutex_lock (&s->lock);
  if (s->npool < POOL_MAX) {
    s->pool[s->npool++] = h;
    h = NULL;
  }
  pthread_mutex_unlock (&s->lock);
  if (h)
    handle_free (h);
}

/* A new connection's socket: remember it (on_header). */
static int
on_sockopt (void *opaque, curl_socket_t fd, curlsocktype purpose)
{
  ((struct handle *) opaque)->fd = fd;
  return CURL_SOCKOPT_OK;
}

/* Percent-encode s (every byte but A-Z a-z 0-9 - . _ ~, and '/' if
 * keep_slash) onto out. */
static void
uri_encode (const char *s, bool keep_slash, char *out, size_t cap)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;

  for (; *s && n + 4 < cap; s++) {
    unsigned char c = *s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~' || (c == '/' && keep_slash))
      out[n++] = c;
    else {
      out[n++] = '%';
      out[n++] = hex[c >> 4];
      out[n++] = hex[c & 15];
    }
  }
  out[n] = '\0';
}

static size_t
on_body (char *p, size_t sz, size_t nm, void *opaque)
{
  struct rq *q = opaque;
  size_t n = sz * nm;

  if (q->dst && q->status >= 200 && q->status < 300) {
    if (q->dlen + n > q->dcap)
      n = q->dcap - q->dlen;          /* never more than asked */
    memcpy (q->dst + q->dlen, p, n);
    q->dlen += n;
    return sz * nm;
  }
  if (q->rlen + n > 1024 * 1024 * 64)
    return 0;
  q->resp = xrealloc (q->resp, q->rlen + n + 1);
  memcpy (q->resp + q->rlen, p, n);
  q->rlen += n;
  q->resp[q->rlen] = '\0';
  return n;
}

static time_t
parse_iso (const char *v)
{
  struct tm tm = { 0 };

  if (!strptime (v, "%Y-%m-%dT%H:%M:%S", &tm))
    return 0;
  return timegm (&tm);
}

static size_t
on_header (char *p, size_t sz, size_t nm, void *opaque)
{
  struct rq *q = opaque;
  size_t n = sz * nm;
  char line[512], *v;
  unsigned long long a, b, t;

  snprintf (line, sizeof line, "%.*s", (int) (n < sizeof line ? n : sizeof line - 1), p);
  line[strcspn (line, "\r\n")] = '\0';
  if (!line[0]) {
    /* The end of the headers.  RGW sends them and the body in two
     * writes; with Nagle on its side and our delayed ACK, the body would
     * wait 40 ms on a reused connection: ACK now. */
    int one = 1;
    if (q->h->fd != CURL_SOCKET_BAD)
      setsockopt (q->h->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    return n;
  }
  if (strncmp (line, "HTTP/", 5) == 0) {
    sscanf (line, "HTTP/%*s %ld", &q->status);
    return n;
  }
  if (!(v = strchr (line, ':')))
    return n;
  *v++ = '\0';
  v += strspn (v, " ");
  if (strcasecmp (line, "content-range") == 0 &&
      sscanf (v, "bytes %llu-%llu/%llu", &a, &b, &t) == 3)
    q->total = t;
  else if (strcasecmp (line, "content-length") == 0 && !q->total)
    q->total = strtoull (v, NULL, 10);
  else if (strcasecmp (line, "last-modified") == 0)
    q->last_modified = curl_getdate (v, NULL);
  else if (strcasecmp (line, "date") == 0)
    q->date = curl_getdate (v, NULL);
  else if (strcasecmp (line, "x-amz-object-lock-retain-until-date") == 0)
    q->retain_until = parse_iso (v);
  else if (strcasecmp (line, "etag") == 0)
    snprintf (q->etag, sizeof q->etag, "%s", v);
  else if (strcasecmp (line, "x-amz-version-id") == 0)
    snprintf (q->version, sizeof q->version, "%s", v);
  return n;
}

/* 18.: how long an attempt may move less than 1 KiB/s (60 s; a test
 * makes it shorter: BOOTBACK_S3_STALL_SECONDS). */
static long
stall_seconds (void)
{
  const char *v = test_hook_env ("BOOTBACK_S3_STALL_SECONDS");
  long n = v ? atol (v) : 0;

  return n > 0 && n <= 60 ? n : 60;
}

/* Set up h for q (one attempt). */
static void
rq_setup (struct s3 *s, struct handle *hd, struct rq *q, char *url, size_t ulen)
{
  CURL *h = hd->c;

  char enc[3 * KEY_MAX];

  uri_encode (q->key, true, enc, sizeof enc);
  snprintf (url, ulen, "%s/%s%s%s%s%s", s->endpoint, s->bucket,
            q->key[0] ? "/" : "", enc, q->query[0] ? "?" : "", q->query);
  curl_easy_setopt (h, CURLOPT_URL, url);
  curl_easy_setopt (h, CURLOPT_PATH_AS_IS, 1L);  /* no "../" squashing */
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_USERPWD, s->userpwd);
  curl_easy_setopt (h, CURLOPT_AWS_SIGV4, s->sigv4);
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, q->hdrs);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1024L);          /* 18. */
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, stall_seconds ());
  curl_easy_setopt (h, CURLOPT_TIMEOUT,
                    2 * stall_seconds () + (long) (MAX (q->blen, q->dcap) >> 14));
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, q);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, q);
  curl_easy_setopt (h, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
  curl_easy_setopt (h, CURLOPT_SOCKOPTDATA, hd);
  if (strcmp (q->method, "HEAD") == 0)
    curl_easy_setopt (h, CURLOPT_NOBODY, 1L);
  else
    curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, q->method);
  if (strcmp (q->method, "PUT") == 0 || strcmp (q->method, "POST") == 0) {
    curl_easy_setopt (h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->blen);
    /* curl sends "Expect: 100-continue" with a body over 1 MiB and waits
     * up to a second for the 100 before the body: a round trip or more
     * before every big chunk (16.).  Send the body at once (an "Expect:"
     * header would take it out, but curl 7.88 signs that empty header,
     * which then does not match what the server gets). */
    curl_easy_setopt (h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
  }
}

static void
rq_reset (struct rq *q)
{
  free (q->resp);
  q->resp = NULL;
  q->rlen = q->dlen = 0;
  q->status = 0;
  q->total = 0;
  q->last_modified = q->date = q->retain_until = 0;
  q->etag[0] = q->version[0] = '\0';
}

/* Should this outcome be tried again (6.)? */
static bool
retryable (CURLcode rc, const struct rq *q)
{
  if (rc != CURLE_OK)
    return rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL &&
      rc != CURLE_OUT_OF_MEMORY;
  return q->status >= 500 || q->status == 429 ||
    (q->resp && strstr (q->resp, "<Code>SlowDown</Code>"));
}

static void add_header (struct rq *q, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Run q with retries.  0 with q->status set (any status), or -1 with the
 * error set if the server could not be reached. */
static int
rq_run (struct s3 *s, const char *op, struct rq *q)
{
  struct handle *h = handle_get (s);
  char url[4 * KEY_MAX], errbuf[CURL_ERROR_SIZE];
  uint8_t md[REPO_DIGEST_LEN];
  char hex[2 * REPO_DIGEST_LEN + 1];
  CURLcode rc = CURLE_OK;
  unsigned delay = 100;         /* ms */
  double t0 = now_monotonic ();

  /* curl 7.88 signs the payload hash it is given (and RGW wants one):
   * the body's SHA-256, so the server checks what it got; or, for a
   * chunk, UNSIGNED-PAYLOAD (16.) */
  if (q->unsigned_body)
    add_header (q, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  else {
    repo_sha256 (q->body ? q->body : "", q->blen, md);
    hex_encode (md, sizeof md, hex);
    add_header (q, "x-amz-content-sha256: %s", hex);
  }

  for (int i = 0; i < MAX_TRIES; i++) {
    if (i > 0) {
      usleep ((delay + random () % delay) * 1000);
      delay = delay * 2 > 5000 ? 5000 : delay * 2;
    }
    curl_easy_reset (h->c);         /* keeps the connection */
    rq_reset (q);
    q->h = h;
    rq_setup (s, h, q, url, sizeof url);
    errbuf[0] = '\0';
    curl_easy_setopt (h->c, CURLOPT_ERRORBUFFER, errbuf);
    rc = curl_easy_perform (h->c);
    if (rc == CURLE_OK)
      curl_easy_getinfo (h->c, CURLINFO_RESPONSE_CODE, &q->status);
    if (!retryable (rc, q))
      break;
  }
  handle_put (s, h);
  if (q->date > s->server_date)
    s->server_date = q->date;
  if (s->trace)
    fprintf (stderr, "s3: %.3f %s %s%s%s %ld %.1f ms\n", now_monotonic (),
             q->method, q->key, q->query[0] ? "?" : "", q->query, q->status,
             (now_monotonic () - t0) * 1000);
  if (rc != CURLE_OK) {
    error_set (rc == CURLE_COULDNT_CONNECT ? ECONNREFUSED : EIO,
               "%s s3://%s/%s: %s (endpoint %s, %d tries)", op, s->bucket,
               q->key, errbuf[0] ? errbuf : curl_easy_strerror (rc),
               s->endpoint, MAX_TRIES);
    return -1;
  }
  return 0;
}

/* The text of the first element called name in the XML doc. */
static char *
xml_find (xmlNode *n, const char *name)
{
  for (; n; n = n->next) {
    char *t;
    if (n->type == XML_ELEMENT_NODE && strcmp ((const char *) n->name, name) == 0)
      return (char *) xmlNodeGetContent (n);
    if ((t = xml_find (n->children, name)))
      return t;
  }
  return NULL;
}

static xmlDoc *
xml_parse (const struct rq *q)
{
  if (!q->resp || q->rlen == 0)
    return NULL;
  return xmlReadMemory (q->resp, q->rlen, "s3.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* Set the error for a response that is not 2xx: one line with the
 * bucket, key, HTTP status, S3 error code and message. */
static void
rq_error (struct s3 *s, const char *op, const struct rq *q)
{
  xmlDoc *doc = xml_parse (q);
  xmlNode *root = doc ? xmlDocGetRootElement (doc) : NULL;
  char *code = root ? xml_find (root, "Code") : NULL;
  char *msg = root ? xml_find (root, "Message") : NULL;
  int e = q->status == 404 ? ENOENT : q->status == 403 ? EACCES
    : q->status == 412 || q->status == 409 ? EEXIST : EIO;
  /* the server's words: one printable line, bounded */
  CLEANUP_FREE char *pc = code ? xstrdup_printable (code, false) : NULL;
  CLEANUP_FREE char *pm = msg ? xstrdup_printable (msg, false) : NULL;
  CLEANUP_FREE char *text =
    xasprintf ("%s s3://%s/%s: HTTP %ld%s%.64s%s%.200s", op, s->bucket, q->key,
               q->status, pc ? " " : "", pc ? pc : "",
               pm && *pm ? ": " : "", pm && *pm ? pm : "");

  error_restore (e, text);           /* no strerror: the status says it */
  errno = e;
  xmlFree (code);
  xmlFree (msg);
  xmlFreeDoc (doc);
}

/* rq_run, then -1 with rq_error's error unless the status is 2xx. */
static int
rq_ok (struct s3 *s, const char *op, struct rq *q)
{
  if (rq_run (s, op, q) == -1)
    return -1;
  if (q->status >= 200 && q->status < 300)
    return 0;
  rq_error (s, op, q);
  return -1;
}

static void
rq_free (struct rq *q)
{
  free (q->resp);
  curl_slist_free_all (q->hdrs);
}

/* ---- keys, headers ---------------------------------------------------------- */

static char *
key_of (struct s3 *s, const char *path)
{
  if (strcmp (path, ".") == 0)
    return xstrdup (s->prefix);
  return xasprintf ("%s%s", s->prefix, path);
}

static void
add_header (struct rq *q, const char *fmt, ...)
{
  va_list ap;
  char *h;

  va_start (ap, fmt);
  if (vasprintf (&h, fmt, ap) == -1)
    abort ();
  va_end (ap);
  q->hdrs = curl_slist_append (q->hdrs, h);
  free (h);
}

static void
add_md5 (struct rq *q, const void *data, size_t len)
{
  unsigned char md[16], b64[32];
  unsigned n;

  EVP_Digest (data, len, md, &n, EVP_md5 (), NULL);
  EVP_EncodeBlock (b64, md, 16);
  add_header (q, "Content-MD5: %s", b64);
}

static void
format_iso (time_t t, char out[32])
{
  struct tm tm;

  gmtime_r (&t, &tm);
  strftime (out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The retention a new object at path gets (7.), 0 if none. */
static time_t
retention_for (struct s3 *s, const char *path)
{
  size_t n = strlen (path);

  if (s->lock_days <= 0 || (n > 0 && path[n - 1] == '/') ||
      (strncmp (path, "points/", 7) && strncmp (path, "chunks/", 7)))
    return 0;
  return time (NULL) + (time_t) s->lock_days * 86400;
}

static void
add_retention (struct rq *q, time_t until)
{
  char iso[32];

  if (!until)
    return;
  format_iso (until, iso);
  add_header (q, "x-amz-object-lock-mode: COMPLIANCE");
  add_header (q, "x-amz-object-lock-retain-until-date: %s", iso);
}

/* 13.: the bookkeeping that must stay deletable: locks/ (locks,
 * registrations, the clock) and directory markers (a point id's claim). */
static bool
unlockable (const char *path)
{
  size_t n = strlen (path);

  return strncmp (path, "locks/", 6) == 0 || (n > 0 && path[n - 1] == '/');
}

/* 13.: in a bucket with a default retention, an unlockable object gets a
 * short GOVERNANCE retention of its own instead of the default's
 * COMPLIANCE one (an explicit retention replaces the default), and its
 * versions are deleted with the bypass.  True if path needs that. */
static bool
needs_bypass (struct s3 *s, const char *path)
{
  return s->has_default && unlockable (path);
}

static void
add_short_retention (struct s3 *s, struct rq *q, const char *path)
{
  time_t now = time (NULL);
  char iso[32];

  if (!needs_bypass (s, path))
    return;
  /* in the future by the server's clock too (RGW refuses a date past) */
  format_iso (MAX (now, s->server_date) + SHORT_RETENTION, iso);
  add_header (q, "x-amz-object-lock-mode: GOVERNANCE");
  add_header (q, "x-amz-object-lock-retain-until-date: %s", iso);
}

static void
base_headers (struct rq *q)
{
  q->hdrs = curl_slist_append (q->hdrs, "Content-Type: application/octet-stream");
}

/* An XML configuration as q's body, with the headers and the
 * Content-MD5 that S3 wants for one (retention, Object Lock). */
static void
xml_body (struct rq *q, const char *body)
{
  q->body = body;
  q->blen = strlen (body);
  base_headers (q);
  add_md5 (q, body, q->blen);
}

/* ---- objects ---------------------------------------------------------------- */

/* 11.: where path's entry is or would go in s->created (lock held). */
static struct created **
created_find (struct s3 *s, const char *path)
{
  struct created **pp = &s->created;

  while (*pp && strcmp ((*pp)->path, path))
    pp = &(*pp)->next;
  return pp;
}

/* 11.: forget path's entry (lock held): the ids of its versions, or NULL. */
static char **
created_unlink (struct s3 *s, const char *path)
{
  struct created **pp = created_find (s, path), *c = *pp;
  char **v;

  if (!c)
    return NULL;
  *pp = c->next;
  v = c->versions;
  free (c->path);
  free (c);
  return v;
}

/* A PUT made a version: the bucket is versioned (as bucket_versioned
 * knows it), whatever open found. */
static void
mark_versioned (struct s3 *s)
{
  pthread_mutex_lock (&s->dirs_lock);
  s->versioned = 1;
  pthread_mutex_unlock (&s->dirs_lock);
}

/* 11.: path was just written (version: the new version's id), by a
 * conditional create (excl: the key had no object) or not (a version
 * more of an object this handle made, or of one it does not know). */
static void
created_note (struct s3 *s, const char *path, const char *version, bool excl)
{
  struct created *c;

  if (version && *version && strcmp (version, "null")) {
    mark_versioned (s);
  }
  else
    version = NULL;
  pthread_mutex_lock (&s->lock);
  if (excl || !version)
    strv_free (created_unlink (s, path));
  if (version && excl) {
    c = xcalloc (1, sizeof *c);
    c->path = xstrdup (path);
    c->next = s->created;
    s->created = c;
  }
  else
    c = version ? *created_find (s, path) : NULL;
  if (c)
    strv_push (&c->versions, &c->n, xstrdup (version));
  pthread_mutex_unlock (&s->lock);
}

/* 11.: the ids of every version of path if this handle made them all,
 * else NULL (forgotten; the caller frees them). */
static char **
created_take (struct s3 *s, const char *path)
{
  char **v;

  pthread_mutex_lock (&s->lock);
  v = created_unlink (s, path);
  pthread_mutex_unlock (&s->lock);
  return v;
}

/* 16.: a chunk object goes with UNSIGNED-PAYLOAD, but with
 * BOOTBACK_S3_SIGN_CHUNKS=1. */
static bool
unsigned_ok (struct s3 *s, const char *path)
{
  return !s->sign_chunks && strncmp (path, "chunks/", 7) == 0;
}

/* PUT data whole as path (If-None-Match: * if excl).  *date: the
 * server's Date (may be NULL). */
static int put_multipart (struct s3 *s, const char *path, const uint8_t *data,
                          size_t len);

/* The PUT of data whole as path (If-None-Match: * if excl), q set up by
 * the caller (method, key, query); the version made in q->version. */
static int
put_rq (struct s3 *s, const char *path, const void *data, size_t len,
        bool excl, struct rq *q)
{
  time_t until = retention_for (s, path);

  q->body = data;
  q->blen = len;
  q->unsigned_body = unsigned_ok (s, path);
  base_headers (q);
  /* the body's SHA-256 is signed (rq_run) and checked by the server, but
   * a chunk's (16.); a PUT with a retention needs Content-MD5 too (AWS) */
  if (until || needs_bypass (s, path))
    add_md5 (q, data ? data : "", len);
  if (excl)
    add_header (q, "If-None-Match: *");
  add_retention (q, until);
  if (!until)
    add_short_retention (s, q, path);
  return rq_ok (s, "PUT", q);
}

static int
put_object (struct s3 *s, const char *path, const void *data, size_t len,
            bool excl, time_t *date)
{
  CLEANUP_FREE char *key = key_of (s, path);
  struct rq q = { .method = "PUT", .key = key, .query = "" };
  int r;

  if (len > s->multipart && !excl)
    return put_multipart (s, path, data, len);
  r = put_rq (s, path, data, len, excl, &q);
  if (r == 0 && date)
    *date = q.date ? q.date : time (NULL);
  if (r == 0)
    created_note (s, path, q.version, excl);
  rq_free (&q);
  return r;
}

static int
part_put (struct s3 *s, const char *key, const char *upload, int n,
          const uint8_t *data, size_t len, FILE *xml)
{
  char enc[512], query[600];
  struct rq q = { .method = "PUT", .key = key, .query = query,
                  .body = data, .blen = len };
  int r;

  uri_encode (upload, false, enc, sizeof enc);
  snprintf (query, sizeof query, "partNumber=%d&uploadId=%s", n, enc);
  base_headers (&q);
  add_md5 (&q, data, len);
  r = rq_ok (s, "PUT part", &q);
  if (r == 0)
    fprintf (xml, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
             n, q.etag);
  rq_free (&q);
  return r;
}

/* POST ?uploadId=: complete (xml != NULL) the upload; DELETE: abort. */
static int
upload_end (struct s3 *s, const char *key, const char *upload, const char *xml)
{
  char enc[512], query[600];
  struct rq q = { .method = xml ? "POST" : "DELETE", .key = key,
                  .query = query, .body = xml, .blen = xml ? strlen (xml) : 0 };
  int r;

  uri_encode (upload, false, enc, sizeof enc);
  snprintf (query, sizeof query, "uploadId=%s", enc);
  base_headers (&q);
  r = rq_ok (s, xml ? "complete multipart upload" : "abort multipart upload", &q);
  /* a complete may fail after a 200 with an <Error> body */
  if (r == 0 && xml && q.resp && strstr (q.resp, "<Error>")) {
    q.status = 500;
    rq_error (s, "complete multipart upload", &q);
    r = -1;
  }
  rq_free (&q);
  return r;
}

/* Parts of s->multipart bytes, one after the other (6.). */
static int
put_multipart (struct s3 *s, const char *path, const uint8_t *data, size_t len)
{
  CLEANUP_FREE char *key = key_of (s, path), *upload = NULL, *xml = NULL;
  struct rq q = { .method = "POST", .key = key, .query = "uploads=" };
  size_t xlen = 0, off;
  xmlDoc *doc;
  FILE *f;
  int r = -1, n;

  base_headers (&q);
  add_retention (&q, retention_for (s, path));
  if (rq_ok (s, "start multipart upload", &q) == -1)
    goto out;
  doc = xml_parse (&q);
  upload = doc ? xml_find (xmlDocGetRootElement (doc), "UploadId") : NULL;
  xmlFreeDoc (doc);
  if (!upload) {
    error_setx ("start multipart upload s3://%s/%s: no UploadId in the reply",
                s->bucket, key);
    goto out;
  }
  f = open_memstream (&xml, &xlen);
  fputs ("<CompleteMultipartUpload>", f);
  for (off = 0, n = 1; off < len; off += s->multipart, n++)
    if (part_put (s, key, upload, n, data + off,
                  len - off < s->multipart ? len - off : s->multipart, f) == -1)
      break;
  fputs ("</CompleteMultipartUpload>", f);
  fclose (f);
  if (off >= len)
    r = upload_end (s, key, upload, xml);
  if (r == -1) {
    ERROR_SAVE (saved);
    upload_end (s, key, upload, NULL);
    ERROR_RESTORE (saved);
  }
 out:
  rq_free (&q);
  return r;
}

/* HEAD path: 0 (q filled: total, last_modified, retain_until), -1 with
 * errno ENOENT if missing. */
static int
head_object (struct s3 *s, const char *op, const char *path, struct rq *q)
{
  CLEANUP_FREE char *key = key_of (s, path);

  memset (q, 0, sizeof *q);
  q->method = "HEAD";
  q->key = key;
  q->query = "";
  if (rq_ok (s, op, q) == -1) {
    rq_free (q);
    return -1;
  }
  q->key = NULL;
  rq_free (q);
  q->resp = NULL;
  q->hdrs = NULL;
  return 0;
}

/* DELETE key (?versionId=version if not NULL; bypass: the GOVERNANCE
 * retention of 13.). */
static int
delete_key (struct s3 *s, const char *key, const char *version, bool bypass)
{
  char enc[512], query[600] = "";
  struct rq q = { .method = "DELETE", .key = key, .query = query };
  int r;

  if (version) {
    uri_encode (version, false, enc, sizeof enc);
    snprintf (query, sizeof query, "versionId=%s", enc);
  }
  if (version && bypass)
    add_header (&q, "x-amz-bypass-governance-retention: true");
  r = rq_ok (s, "DELETE", &q);
  if (r == -1 && errno == EACCES && version)
    error_set (EPERM, "%s (the object is locked)", error_msg ());
  rq_free (&q);
  return r;
}

/* One entry of a key's versions (3.): a version or a delete marker. */
struct ver {
  char *id, *etag;               /* etag: without its quotes */
  bool marker;
};

static void
vers_free (struct ver *v, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free (v[i].id);
    free (v[i].etag);
  }
  free (v);
}

/* The versions and delete markers of exactly key, newest first (the
 * order of ListObjectVersions: RGW orders a key's versions by the epoch
 * its bucket index gave each, in the order they were made), every page
 * of them.  -1 with the error set. */
#define VERS_PAGES 64
static int
list_key_versions (struct s3 *s, const char *key, struct ver **out, size_t *nout)
{
  char ep[3 * KEY_MAX], ek[3 * KEY_MAX] = "", evid[600] = "";
  struct ver *v = NULL;
  size_t n = 0;
  bool more = true;

  uri_encode (key, false, ep, sizeof ep);
  for (int page = 0; more; page++) {
    CLEANUP_FREE char *query = NULL;
    struct rq q = { .method = "GET", .key = "" };
    xmlDoc *doc;
    xmlNode *root;
    char *t;

    if (page == VERS_PAGES) {
      error_set (EIO, "list versions s3://%s/%s: more than %d pages of "
                 "versions", s->bucket, key, VERS_PAGES);
      vers_free (v, n);
      return -1;
    }
    /* SigV4's canonical order of the parameters */
    q.query = query = ek[0]
      ? xasprintf ("key-marker=%s&prefix=%s&version-id-marker=%s&versions=",
                   ek, ep, evid)
      : xasprintf ("prefix=%s&versions=", ep);
    if (rq_ok (s, "list versions", &q) == -1) {
      rq_free (&q);
      vers_free (v, n);
      return -1;
    }
    more = false;
    doc = xml_parse (&q);
    root = doc ? xmlDocGetRootElement (doc) : NULL;
    for (xmlNode *e = root ? root->children : NULL; e; e = e->next) {
      bool marker;
      char *k, *id, *etag;
      if (e->type != XML_ELEMENT_NODE ||
          (strcmp ((const char *) e->name, "Version") &&
           strcmp ((const char *) e->name, "DeleteMarker")))
        continue;
      marker = strcmp ((const char *) e->name, "DeleteMarker") == 0;
      k = xml_find (e->children, "Key");
      id = xml_find (e->children, "VersionId");
      etag = marker ? NULL : xml_find (e->children, "ETag");
      if (k && id && strcmp (k, key) == 0) {
        v = xreallocarray_zero (v, n, sizeof *v);
        v[n].id = xstrdup (id);
        v[n].etag = xstrdup (etag ? etag + strspn (etag, "\"") : "");
        v[n].etag[strcspn (v[n].etag, "\"")] = '\0';
        v[n++].marker = marker;
      }
      xmlFree (k);
      xmlFree (id);
      xmlFree (etag);
    }
    /* the key's own entries come first (every other key with it as a
     * prefix sorts after it): the next page only while they go on */
    t = root ? xml_find (root, "IsTruncated") : NULL;
    if (t && strcmp (t, "true") == 0) {
      char *nk = xml_find (root, "NextKeyMarker");
      char *nv = xml_find (root, "NextVersionIdMarker");
      if (nk && nv && strcmp (nk, key) == 0) {
        uri_encode (nk, false, ek, sizeof ek);
        uri_encode (nv, false, evid, sizeof evid);
        more = true;
      }
      xmlFree (nk);
      xmlFree (nv);
    }
    xmlFree (t);
    xmlFreeDoc (doc);
    rq_free (&q);
  }
  *out = v;
  *nout = n;
  return 0;
}

/* Delete every version of path (key) (7.): 0, -1 (EPERM if one is
 * locked). */
static int
delete_versions (struct s3 *s, const char *path, const char *key)
{
  struct ver *v;
  size_t n;
  int r = 0;

  if (list_key_versions (s, key, &v, &n) == -1)
    return -1;
  for (size_t i = 0; i < n && r == 0; i++)
    r = delete_key (s, key, v[i].id, needs_bypass (s, path));
  vers_free (v, n);
  return r;
}

static int bucket_versioned (struct s3 *s);

/* 12.: the bookkeeping (not a point's file nor a chunk, or a directory
 * marker): what the bucket's default retention locks, not bootback. */
static bool
bookkeeping (const char *path)
{
  size_t n = strlen (path);

  return (n > 0 && path[n - 1] == '/') ||
    (strncmp (path, "points/", 7) && strncmp (path, "chunks/", 7));
}

static int
delete_versioned (struct s3 *s, const char *path, const char *key)
{
  CLEANUP_STRV char **versions = created_take (s, path);
  size_t n = 0;
  int v;

  if (versions) {                     /* 11.: the newest first */
    while (versions[n])
      n++;
    while (n-- > 0)
      if (delete_key (s, key, versions[n], needs_bypass (s, path)) == -1 &&
          errno != ENOENT)
        return -1;
    return 0;
  }
  if ((v = bucket_versioned (s)) == -1)
    return -1;
  return v ? delete_versions (s, path, key) : delete_key (s, key, NULL, false);
}

static int
delete_object (struct s3 *s, const char *path)
{
  CLEANUP_FREE char *key = key_of (s, path);

  if (delete_versioned (s, path, key) == 0)
    return 0;
  if (errno != EPERM || !bookkeeping (path))
    return -1;
  error_clear ();                     /* 12.: hidden by a delete marker */
  return delete_key (s, key, NULL, false);
}

/* 3.: is path a lock that processes contend for (locks/NAME: locks/gc,
 * locks/holds; not a registration, nor the clock)? */
static bool
contended (const char *path)
{
  return strncmp (path, "locks/", 6) == 0 && !strchr (path + 6, '/') &&
    strcmp (path, "locks/clock");
}

/* 3.: the oldest live version of key: the oldest of the versions newer
 * than its newest delete marker (v, n: its entries, newest first); -1 if
 * none. */
static ssize_t
oldest_live (const struct ver *v, size_t n)
{
  size_t live = 0;

  while (live < n && !v[live].marker)
    live++;
  return (ssize_t) live - 1;
}

/* 3.: 11.'s entry of path: the ids of v's entries that are ours (oldest
 * first, so that unlink deletes the newest first), after any it has. */
static void
created_set (struct s3 *s, const char *path, const struct ver *v,
             const bool *ours, size_t n)
{
  struct created *c;

  pthread_mutex_lock (&s->lock);
  strv_free (created_unlink (s, path));
  c = xcalloc (1, sizeof *c);
  c->path = xstrdup (path);
  for (size_t i = n; i-- > 0;)
    if (ours[i])
      strv_push (&c->versions, &c->n, xstrdup (v[i].id));
  c->next = s->created;
  s->created = c;
  pthread_mutex_unlock (&s->lock);
}

/* 3.: create path exclusively with data (len bytes).  0: this handle
 * holds it; -1 with EEXIST: another does; -1 with another error. */
static int
excl_create (struct s3 *s, const char *path, const void *data, size_t len)
{
  CLEANUP_FREE char *key = key_of (s, path);
  unsigned char md[16];
  char etag[33] = "";
  unsigned mdlen;

  /* a body of this taker's own (a lock names its host, pid and a
   * nonce): a version with its MD5 (the ETag) is this taker's, even one
   * whose reply was lost and whose PUT was sent again */
  if (len > 0) {
    EVP_Digest (data, len, md, &mdlen, EVP_md5 (), NULL);
    hex_encode (md, 16, etag);
  }
  for (int t = 0; t < EXCL_TRIES; t++) {
    struct rq q = { .method = "PUT", .key = key, .query = "" };
    char mine[sizeof q.version];
    struct ver *v;
    size_t n;
    ssize_t old;
    bool *ours, any = false;
    int r = put_rq (s, path, data, len, true, &q);

    snprintf (mine, sizeof mine, "%s", q.version);
    rq_free (&q);
    if (r == -1 && errno == EEXIST)
      error_set (EEXIST, "create s3://%s/%s: exists", s->bucket, key);
    if (r == -1)
      return -1;
    /* the server honoured If-None-Match (no versions), or a name of
     * this process's own (a registration): the PUT decided */
    if (!mine[0] || strcmp (mine, "null") == 0 ||
        strncmp (path, "locks/writers/", 14) == 0) {
      created_note (s, path, mine, true);
      return 0;
    }
    mark_versioned (s);                 /* whatever open found */
    if (list_key_versions (s, key, &v, &n) == -1) {
      ERROR_SAVE (saved);             /* undecided: take ours back */
      delete_key (s, key, mine, needs_bypass (s, path));
      ERROR_RESTORE (saved);
      return -1;
    }
    ours = xcalloc (n ? n : 1, sizeof *ours);
    old = oldest_live (v, n);
    for (size_t i = 0; i < n; i++) {
      ours[i] = !v[i].marker && (strcmp (v[i].id, mine) == 0 ||
                                 (etag[0] && strcmp (v[i].etag, etag) == 0));
      any |= ours[i] && (ssize_t) i <= old;
    }
    if (old >= 0 && ours[old]) {      /* the oldest live version: held */
      for (ssize_t i = old + 1; i < (ssize_t) n; i++)
        ours[i] = false;              /* dead (behind a marker): kept out */
      created_set (s, path, v, ours, n);
      free (ours);
      vers_free (v, n);
      return 0;
    }
    /* another's (or ours are gone): take ours back, every one */
    for (size_t i = 0; i < n; i++)
      if (ours[i] && delete_key (s, key, v[i].id, needs_bypass (s, path)) == -1 &&
          errno != ENOENT) {
        free (ours);
        vers_free (v, n);
        return -1;
      }
    free (ours);
    vers_free (v, n);
    if (any) {
      error_set (EEXIST, "create s3://%s/%s: exists", s->bucket, key);
      return -1;
    }
    /* no live version of ours (deleted, or hidden by a delete marker
     * made meanwhile): try again */
  }
  error_set (EEXIST, "create s3://%s/%s: exists (this host's versions of "
             "it keep vanishing)", s->bucket, key);
  return -1;
}

/* 3.: the holder's version of a contended lock (the oldest live one) in
 * a versioned bucket: its id in id (cap bytes), 0; -1 with ENOENT if
 * there is none. */
static int
holder_version (struct s3 *s, const char *path, char *id, size_t cap)
{
  CLEANUP_FREE char *key = key_of (s, path);
  struct ver *v;
  size_t n;
  ssize_t old;

  if (list_key_versions (s, key, &v, &n) == -1)
    return -1;
  if ((old = oldest_live (v, n)) >= 0)
    snprintf (id, cap, "%s", v[old].id);
  vers_free (v, n);
  if (old >= 0)
    return 0;
  error_set (ENOENT, "open s3://%s/%s: no such object", s->bucket, key);
  return -1;
}

/* The names below the key prefix dir ("chunks/" ...): objects and
 * common prefixes, one page of ListObjectsV2 at a time.  max: stop after
 * that many (0: all). */
static int
list_page (struct s3 *s, const char *pfx, char **token, size_t max,
           char ***v, size_t *n)
{
  CLEANUP_FREE char *query = NULL;
  char ep[3 * KEY_MAX], et[3 * KEY_MAX] = "";
  struct rq q = { .method = "GET", .key = "" };
  size_t plen = strlen (pfx);
  xmlDoc *doc;
  char *trunc = NULL;

  uri_encode (pfx, false, ep, sizeof ep);
  if (*token)
    uri_encode (*token, false, et, sizeof et);
  q.query = query = xasprintf ("%s%s%sdelimiter=%%2F&list-type=2%s&prefix=%s",
                               *token ? "continuation-token=" : "", et,
                               *token ? "&" : "", max ? "&max-keys=2" : "", ep);
  xmlFree (*token);
  *token = NULL;
  if (rq_ok (s, "list", &q) == -1) {
    rq_free (&q);
    return -1;
  }
  doc = xml_parse (&q);
  for (xmlNode *e = doc ? xmlDocGetRootElement (doc)->children : NULL; e; e = e->next) {
    bool obj = strcmp ((const char *) e->name, "Contents") == 0;
    char *k;
    if (e->type != XML_ELEMENT_NODE ||
        (!obj && strcmp ((const char *) e->name, "CommonPrefixes")))
      continue;
    k = xml_find (e->children, obj ? "Key" : "Prefix");
    if (k && strlen (k) > plen && strncmp (k, pfx, plen) == 0) {
      size_t l = strlen (k + plen);
      if (!obj && k[plen + l - 1] == '/')
        l--;
      /* a name is one component ("..", "a/b" or a huge one from a key
       * someone else put there, or a hostile server, would leave dir) */
      if (io_list_name_ok (k + plen, l))
        strv_push (v, n, xasprintf ("%.*s", (int) l, k + plen));
    }
    xmlFree (k);
  }
  if (doc && !max &&
      (trunc = xml_find (xmlDocGetRootElement (doc), "IsTruncated")) &&
      strcmp (trunc, "true") == 0)
    *token = xml_find (xmlDocGetRootElement (doc), "NextContinuationToken");
  xmlFree (trunc);
  xmlFreeDoc (doc);
  rq_free (&q);
  return 0;
}

static char **
list_prefix (struct s3 *s, const char *path, size_t max)
{
  CLEANUP_FREE char *key = key_of (s, path);
  CLEANUP_FREE char *pfx = key[0] && strcmp (path, ".") ? xasprintf ("%s/", key)
                                                         : xstrdup (s->prefix);
  char **v = NULL, *token = NULL;
  size_t n = 0, pages = 0;

  do {
    if (list_page (s, pfx, &token, max, &v, &n) == -1) {
      strv_free (v);
      return NULL;
    }
    /* a server that pages for ever (empty pages, the same token) or
     * without end must not keep us: every page but a few brings names */
    if (token && (++pages > n / 16 + 16 || n > IO_LIST_MAX)) {
      error_set (EIO, "list s3://%s/%s: the server's listing does not end "
                 "(%zu pages, %zu names)", s->bucket, pfx, pages, n);
      xmlFree (token);
      strv_free (v);
      return NULL;
    }
  } while (token);
  return v ? v : xcalloc (1, sizeof *v);
}

/* Is there any object whose key starts with path's "directory" (its
 * marker, or anything below it): 1 yes, 0 no, -1 error.  One request. */
static int
prefix_any (struct s3 *s, const char *path)
{
  CLEANUP_FREE char *key = key_of (s, path), *query = NULL;
  char ep[3 * KEY_MAX];
  struct rq q = { .method = "GET", .key = "" };
  int r = -1;

  uri_encode (key, false, ep, sizeof ep);
  q.query = query = xasprintf ("list-type=2&max-keys=1&prefix=%s%%2F", ep);
  if (rq_ok (s, "list", &q) == 0)
    r = q.resp && strstr (q.resp, "<Contents>") ? 1 : 0;
  rq_free (&q);
  return r;
}

/* ---- the local read cache (8.) ------------------------------------------- */

static uint32_t
le32_at (const uint8_t *p)
{
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Is buf (len bytes) a whole chunk file by its own CRCs?  A sealed one
 * (an encrypted repository's) has none: it is taken as it is, its GCM
 * tags are checked above at every read. */
static bool
chunk_file_intact (const uint8_t *buf, size_t len)
{
  if (len >= CRYPT_OVERHEAD &&
      (memcmp (buf, "BBE1", 4) == 0 || memcmp (buf, "BBE2", 4) == 0))
    return true;
  /* zlib's CRC-32, by ISA-L (as chunk.c: ten times as fast) */
  return len >= CHUNK_HDR_LEN &&
    le32_at (buf + 20) == crc32_gzip_refl (0, buf, 20) &&
    le32_at (buf + 12) == len - CHUNK_HDR_LEN &&
    le32_at (buf + 16) == crc32_gzip_refl (0, buf + CHUNK_HDR_LEN,
                                           len - CHUNK_HDR_LEN);
}

/* Is the file fd, size bytes, a whole chunk file by its own CRCs
 * (chunk_file_intact), read a piece at a time into a buffer of its own:
 * no copy of the whole file is made (what is served is read from the
 * file, and checked above against the chunk's digest at every read). */
static bool
chunk_fd_intact (int fd, size_t size)
{
  uint8_t buf[64 * 1024];
  uint32_t crc = 0, want;
  size_t off, n;

  if (size < CHUNK_HDR_LEN ||
      pread (fd, buf, CHUNK_HDR_LEN, 0) != CHUNK_HDR_LEN)
    return false;
  if (size >= CRYPT_OVERHEAD &&
      (memcmp (buf, "BBE1", 4) == 0 || memcmp (buf, "BBE2", 4) == 0))
    return true;
  if (le32_at (buf + 20) != crc32_gzip_refl (0, buf, 20) ||
      le32_at (buf + 12) != size - CHUNK_HDR_LEN)
    return false;
  want = le32_at (buf + 16);
  for (off = CHUNK_HDR_LEN; off < size; off += n) {
    n = MIN (sizeof buf, size - off);
    if (pread (fd, buf, n, off) != (ssize_t) n)
      return false;
    crc = crc32_gzip_refl (crc, buf, n);
  }
  return crc == want;
}

/* Is path a point's index ("points/VM/ID/DISK.fidx")? */
static bool
is_index (const char *path)
{
  size_t n = strlen (path);

  return strncmp (path, "points/", 7) == 0 && n > 12 &&
    strcmp (path + n - 5, ".fidx") == 0;
}

/* The cache file of a chunk path ("chunks/ab12/<64 hex>": its digest)
 * or of a point's index ("i" and the SHA-256 of its path), NULL if path
 * is neither or there is no cache. */
static char *
cache_path (struct s3 *s, const char *path)
{
  const char *name = strrchr (path, '/');

  if (s->cache_dir && is_index (path)) {
    uint8_t d[REPO_DIGEST_LEN];
    char hex[2 * REPO_DIGEST_LEN + 1];
    repo_sha256 (path, strlen (path), d);
    hex_encode (d, sizeof d, hex);
    return xasprintf ("%s/i%s", s->cache_dir, hex);
  }
  if (!s->cache_dir || strncmp (path, "chunks/", 7) || !name ||
      strlen (name + 1) != 2 * REPO_DIGEST_LEN ||
      strspn (name + 1, "0123456789abcdef") != 2 * REPO_DIGEST_LEN)
    return NULL;
  return xasprintf ("%s/%s", s->cache_dir, name + 1);
}

/* Is the cached file fd (path cp, size bytes) intact?  It is checked
 * whole (its CRCs) at its first use by this handle, and marked used
 * then; a damaged file is removed. */
static bool
cache_check (struct s3 *s, int fd, const char *cp, size_t size)
{
  uint8_t d[REPO_DIGEST_LEN];
  bool known;

  if (hex_decode (strrchr (cp, '/') + 1, d, REPO_DIGEST_LEN) == -1)
    return false;
  pthread_mutex_lock (&s->lock);
  known = digest_set_has (s->cache_known, d);
  pthread_mutex_unlock (&s->lock);
  if (known)
    return true;
  if (!chunk_fd_intact (fd, size)) {
    unlink (cp);                      /* damaged: fetch it again */
    return false;
  }
  futimens (fd, NULL);                /* recently used */
  pthread_mutex_lock (&s->lock);
  digest_set_add (s->cache_known, d);
  pthread_mutex_unlock (&s->lock);
  return true;
}

/* Open f on its cached file: true on a hit (an intact file).  Reads go
 * to the file (s_pread). */
static bool
cache_get (struct s3 *s, const char *path, struct s3_file *f)
{
  CLEANUP_FREE char *cp = cache_path (s, path);
  int fd = cp ? open (cp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
  struct stat st;

  if (fd == -1)
    return false;
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode) ||
      st.st_size > HEAD_MAX ||
      (is_index (path) ? futimens (fd, NULL) == -1    /* checked above */
                       : !cache_check (s, fd, cp, st.st_size))) {
    close (fd);
    return false;
  }
  f->fd = fd;
  f->len = 0;
  f->size = st.st_size;
  f->mtime = st.st_mtim.tv_sec;
  return true;
}

/* Drop the least recently used files until the cache is at 90% of its
 * size. */
static void
cache_evict (struct s3 *s)
{
  DIR *d = opendir (s->cache_dir);
  struct dirent *e;
  struct { time_t t; off_t size; char name[80]; } *v = NULL;
  size_t n = 0;
  uint64_t total = 0;

  if (!d)
    return;
  while ((e = readdir (d))) {
    struct stat st;
    size_t l = strlen (e->d_name);
    if ((l != 2 * REPO_DIGEST_LEN &&
         (l != 2 * REPO_DIGEST_LEN + 1 || e->d_name[0] != 'i')) ||
        fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
      continue;
    v = xreallocarray_zero (v, n, sizeof *v);
    v[n].t = st.st_mtime;
    v[n].size = st.st_size;
    snprintf (v[n++].name, sizeof v->name, "%s", e->d_name);
    total += st.st_size;
  }
  for (size_t i = 0; i < n && total > s->cache_max / 10 * 9; i++) {
    size_t old = i;
    for (size_t j = i + 1; j < n; j++)
      if (v[j].t < v[old].t)
        old = j;
    if (unlinkat (dirfd (d), v[old].name, 0) == 0)
      total -= v[old].size;
    v[old] = v[i];
  }
  closedir (d);
  free (v);
  pthread_mutex_lock (&s->lock);
  s->cache_bytes = total;
  pthread_mutex_unlock (&s->lock);
}

/* Keep a chunk just read whole (temp file, rename). */
static void
cache_put (struct s3 *s, const char *path, const uint8_t *buf, size_t len)
{
  CLEANUP_FREE char *cp = cache_path (s, path), *tmp = NULL;
  char suffix[48];
  int fd;
  bool full;

  if (!cp || (!is_index (path) && !chunk_file_intact (buf, len)))
    return;
  io_temp_suffix (suffix, sizeof suffix);
  tmp = xasprintf ("%s%s", cp, suffix);
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, PRIVATE_FILE_MODE);
  if (fd == -1)
    return;
  if (write (fd, buf, len) != (ssize_t) len || close (fd) == -1 ||
      rename (tmp, cp) == -1) {
    unlink (tmp);
    return;
  }
  pthread_mutex_lock (&s->lock);
  s->cache_bytes += len;
  full = s->cache_bytes > s->cache_max;
  pthread_mutex_unlock (&s->lock);
  if (full)
    cache_evict (s);
}

/* ---- the indexes this handle wrote (19.) ---------------------------------- */

static void
written_free (struct written *w)
{
  free (w->path);
  free (w->buf);
  free (w);
}

/* Under lock: take path's entry out of the list (NULL: none). */
static struct written *
written_take (struct s3 *s, const char *path)
{
  for (struct written **p = &s->written; *p; p = &(*p)->next)
    if (strcmp ((*p)->path, path) == 0) {
      struct written *w = *p;
      *p = w->next;
      s->written_bytes -= w->len;
      return w;
    }
  return NULL;
}

/* path is being written or removed, or was found damaged: forget what
 * this handle wrote there.  True if there was something. */
static bool
written_forget (struct s3 *s, const char *path)
{
  struct written *w;

  pthread_mutex_lock (&s->lock);
  w = written_take (s, path);
  pthread_mutex_unlock (&s->lock);
  if (w)
    written_free (w);
  return w != NULL;
}

/* A point's index just PUT whole (buf, len bytes): keep a copy for the
 * reads of it that follow (the ransomware score of the new point reads
 * it back), the oldest going past WRITTEN_MAX bytes; and put it into
 * the read cache (8.). */
static void
written_note (struct s3 *s, const char *path, const uint8_t *buf, size_t len)
{
  struct written *w, *drop = NULL;

  if (!is_index (path) || len > HEAD_MAX)
    return;
  cache_put (s, path, buf, len);
  w = xcalloc (1, sizeof *w);
  w->path = xstrdup (path);
  w->buf = xmalloc (len ? len : 1);
  memcpy (w->buf, buf, len);
  w->len = len;
  w->mtime = s->server_date ? s->server_date : time (NULL);
  pthread_mutex_lock (&s->lock);
  w->next = s->written;
  s->written = w;
  s->written_bytes += len;
  while (s->written_bytes > WRITTEN_MAX) {
    struct written **p = &s->written;
    while ((*p)->next)
      p = &(*p)->next;
    s->written_bytes -= (*p)->len;
    (*p)->next = drop;
    drop = *p;
    *p = NULL;
  }
  pthread_mutex_unlock (&s->lock);
  while (drop) {
    w = drop;
    drop = w->next;
    written_free (w);
  }
}

/* Open f on the copy of what this handle wrote at path: true if there
 * is one. */
static bool
written_get (struct s3 *s, const char *path, struct s3_file *f)
{
  bool found = false;

  pthread_mutex_lock (&s->lock);
  for (struct written *w = s->written; w && !found; w = w->next)
    if (strcmp (w->path, path) == 0) {
      f->buf = xmalloc (w->len ? w->len : 1);
      memcpy (f->buf, w->buf, w->len);
      f->len = f->size = w->len;
      f->mtime = w->mtime;
      found = true;
    }
  pthread_mutex_unlock (&s->lock);
  return found;
}

/* The ops' uncache: a point's index or a chunk kept in the read cache,
 * or an index kept as this handle wrote it (19.), found damaged by its
 * caller (disk.c, chunk-store.c: its SHA-256), is dropped. */
static bool
s_uncache (struct repo_io *io, const char *path)
{
  CLEANUP_FREE char *cp = cache_path (PRIV (io), path);
  bool kept = written_forget (PRIV (io), path);

  return (cp && unlink (cp) == 0) || kept;
}

/* The ops' fetches_whole: a chunk (an object of at most HEAD_MAX bytes)
 * is fetched whole by its open (4.) unless the read cache has it (8.:
 * read from the file then, in place). */
static bool
s_fetches_whole (struct repo_io *io, const char *path)
{
  CLEANUP_FREE char *cp = NULL;
  struct stat st;

  if (strncmp (path, "chunks/", 7) != 0)
    return false;
  cp = cache_path (PRIV (io), path);
  return !(cp && lstat (cp, &st) == 0 && S_ISREG (st.st_mode));
}

/* ---- chunk directories (10.) ----------------------------------------------- */

/* Under dirs_lock: list the chunk directories into s->dirs. */
static void
dirs_list (struct s3 *s)
{
  CLEANUP_FREE char *pfx = xasprintf ("%schunks/", s->prefix);
  char **v = NULL, *token = NULL;
  size_t n = 0;

  if (!s->dirs)
    s->dirs = xmalloc (65536 / 8);
  memset (s->dirs, 0, 65536 / 8);
  s->dirs_time = now_monotonic ();
  if (list_page (s, pfx, &token, 0, &v, &n) == -1 || token) {
    s->dirs_all = true;               /* unknown, or too many */
    error_clear ();
  }
  for (size_t i = 0; i < n; i++)
    if (strlen (v[i]) == 4 && strspn (v[i], "0123456789abcdef") == 4) {
      unsigned k = strtoul (v[i], NULL, 16);
      s->dirs[k / 8] |= 1 << (k % 8);
    }
  xmlFree (token);
  strv_free (v);
}

/* 10.: the listing ahead, on a thread of its own. */
static void *
dirs_ahead (void *opaque)
{
  struct s3 *s = opaque;

  pthread_mutex_lock (&s->dirs_lock);
  if (!s->dirs_all && (!s->dirs || now_monotonic () - s->dirs_time > DIRS_TTL)) {
    ERROR_SAVE (saved);
    dirs_list (s);
    ERROR_RESTORE (saved);
  }
  pthread_mutex_unlock (&s->dirs_lock);
  return NULL;
}

/* 10.: a writer begins (it registers): list the chunk directories now,
 * in the background, so that its first chunk does not wait for it. */
static void
dirs_start (struct s3 *s)
{
  pthread_mutex_lock (&s->lock);
  if (!s->dirs_ahead &&
      pthread_create (&s->dirs_thread, NULL, dirs_ahead, s) == 0)
    s->dirs_ahead = true;
  pthread_mutex_unlock (&s->lock);
}

/* The chunk directory of path ("chunks/abcd/..."), -1 if not a chunk. */
static int
chunk_dir_of (const char *path)
{
  if (strncmp (path, "chunks/", 7) || strlen (path) < 12 || path[11] != '/' ||
      strspn (path + 7, "0123456789abcdef") != 4)
    return -1;
  return strtoul (path + 7, NULL, 16);
}

/* May the chunk at path exist (10.)?  When seen (a chunk queued there),
 * mark its directory. */
static bool
chunk_dir_seen (struct s3 *s, const char *path, bool seen)
{
  int k = chunk_dir_of (path);
  bool may = true;

  if (k == -1)
    return true;
  pthread_mutex_lock (&s->dirs_lock);
  if (!seen && !s->dirs_all &&
      (!s->dirs || now_monotonic () - s->dirs_time > DIRS_TTL))
    dirs_list (s);
  if (!s->mine)
    s->mine = xcalloc (1, 65536 / 8);
  if (seen)
    s->mine[k / 8] |= 1 << (k % 8);
  else
    may = s->dirs_all || (s->dirs[k / 8] & (1 << (k % 8))) ||
      (s->mine[k / 8] & (1 << (k % 8)));
  pthread_mutex_unlock (&s->dirs_lock);
  return may;
}

/* ---- background uploads (9.) ---------------------------------------------- */

static void
upload_free (struct upload *u)
{
  free (u->path);
  free (u->buf);
  free (u);
}

/* Under lock: -1 with the first failed upload's error, 0 if none. */
static int
upload_failed (struct s3 *s)
{
  if (!s->up_error)
    return 0;
  error_restore (s->up_errno, s->up_error);
  errno = s->up_errno;
  return -1;
}

/* An uploader: sends the oldest queued object not taken, until stopped
 * with nothing queued.  After a failure, what is queued is dropped. */
static void *
uploader (void *opaque)
{
  struct s3 *s = opaque;
  struct upload *u, **pp;

  pthread_mutex_lock (&s->lock);
  for (;;) {
    bool skip;
    int r = 0, e = 0;

    for (u = s->uploads; u && u->taken; u = u->next)
      ;
    if (!u && s->up_stop)
      break;
    if (!u) {
      pthread_cond_wait (&s->up_cond, &s->lock);
      continue;
    }
    u->taken = true;
    skip = s->up_error != NULL;
    pthread_mutex_unlock (&s->lock);
    if (u->unlink) {                  /* 14.: its failure fails nothing */
      ERROR_SAVE (saved);
      delete_object (s, u->path);
      ERROR_RESTORE (saved);
    }
    else if (!skip &&
             put_object (s, u->path, u->buf, u->len, false, NULL) == -1) {
      r = -1;
      e = errno;
    }
    pthread_mutex_lock (&s->lock);
    if (r == -1 && !s->up_error) {
      s->up_error = xstrdup (error_msg ());
      s->up_errno = e;
    }
    for (pp = &s->uploads; *pp != u; pp = &(*pp)->next)
      ;
    *pp = u->next;
    s->nuploads--;
    upload_free (u);
    pthread_cond_broadcast (&s->up_cond);
  }
  pthread_mutex_unlock (&s->lock);
  return NULL;
}

/* Queue path (buf of len bytes: both taken) for the uploaders, started
 * as needed; wait while UPLOADS_MAX are queued.  -1 with the error of an
 * upload that failed before. */
static int
upload_queue (struct s3 *s, char *path, uint8_t *buf, size_t len)
{
  struct upload *u = xcalloc (1, sizeof *u), **pp;
  bool queued = false;
  int r;

  u->path = path;
  u->buf = buf;
  u->len = len;
  pthread_mutex_lock (&s->lock);
  while (s->nuploads >= UPLOADS_MAX && !s->up_error)
    pthread_cond_wait (&s->up_cond, &s->lock);
  if ((r = upload_failed (s)) == 0) {
    if (s->nuploaders <= s->nuploads && s->nuploaders < UPLOADERS &&
        pthread_create (&s->uploaders[s->nuploaders], NULL, uploader, s) == 0)
      s->nuploaders++;
    if (s->nuploaders > 0) {
      for (pp = &s->uploads; *pp; pp = &(*pp)->next)
        ;
      *pp = u;
      s->nuploads++;
      s->uploading = queued = true;
      pthread_cond_broadcast (&s->up_cond);
    }
  }
  pthread_mutex_unlock (&s->lock);
  if (queued)
    return 0;
  if (r == 0)                         /* no thread: send it here */
    r = put_object (s, path, buf, len, false, NULL);
  upload_free (u);
  return r;
}

/* 14.: queue the delete of a writer's registration for the uploaders,
 * if they run: true if queued. */
static bool
unregister (struct s3 *s, const char *path)
{
  struct upload *u, **pp;
  bool queued = false;

  pthread_mutex_lock (&s->lock);
  if (s->nuploaders > 0 && !s->up_stop) {
    u = xcalloc (1, sizeof *u);
    u->path = xstrdup (path);
    u->unlink = true;
    for (pp = &s->uploads; *pp; pp = &(*pp)->next)
      ;
    *pp = u;
    s->nuploads++;
    queued = true;
    pthread_cond_broadcast (&s->up_cond);
  }
  pthread_mutex_unlock (&s->lock);
  return queued;
}

/* Wait until every queued upload is acknowledged: 0, or -1 with the
 * first failed one's error (sticky: this handle writes nothing more). */
static int
upload_wait (struct s3 *s)
{
  int r;

  pthread_mutex_lock (&s->lock);
  while (s->nuploads > 0)
    pthread_cond_wait (&s->up_cond, &s->lock);
  r = upload_failed (s);
  pthread_mutex_unlock (&s->lock);
  return r;
}

/* Is path queued or being sent: true, its length in *len and, if it
 * fits in cap bytes, its content in buf (may be NULL). */
static bool
upload_find (struct s3 *s, const char *path, uint8_t *buf, size_t cap,
             size_t *len)
{
  bool found = false;

  if (!s->uploading)
    return false;
  pthread_mutex_lock (&s->lock);
  for (struct upload *u = s->uploads; u && !found; u = u->next)
    if (!u->unlink && strcmp (u->path, path) == 0) {
      found = true;
      *len = u->len;
      if (buf && u->len <= cap)
        memcpy (buf, u->buf, u->len);
    }
  pthread_mutex_unlock (&s->lock);
  return found;
}

/* Send what is queued and stop the uploaders. */
static void
uploaders_stop (struct s3 *s)
{
  pthread_mutex_lock (&s->lock);
  s->up_stop = true;
  pthread_cond_broadcast (&s->up_cond);
  pthread_mutex_unlock (&s->lock);
  for (size_t i = 0; i < s->nuploaders; i++)
    pthread_join (s->uploaders[i], NULL);
}

/* ---- the ops ---------------------------------------------------------------- */

static struct pending *
pending_take (struct s3 *s, const char *path)
{
  struct pending **pp, *p = NULL;

  pthread_mutex_lock (&s->lock);
  for (pp = &s->pending; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->path, path) == 0) {
      p = *pp;
      *pp = p->next;
      break;
    }
  pthread_mutex_unlock (&s->lock);
  return p;
}

static void
pending_free (struct pending *p)
{
  if (!p)
    return;
  free (p->path);
  free (p->buf);
  free (p);
}

static void
file_free (struct s3_file *f)
{
  if (f->fd != -1)
    close (f->fd);
  free (f->path);
  free (f->buf);
  free (f);
}

/* GET bytes [off, off + n) of path (its version version, if not NULL)
 * into buf; *got, and *q's headers. */
static int
get_range (struct s3 *s, const char *path, const char *version, void *buf,
           size_t n, uint64_t off, struct rq *q)
{
  CLEANUP_FREE char *key = key_of (s, path), *query = NULL;
  char enc[512];
  int r;

  memset (q, 0, sizeof *q);
  q->method = "GET";
  q->key = key;
  q->query = "";
  if (version) {
    uri_encode (version, false, enc, sizeof enc);
    q->query = query = xasprintf ("versionId=%s", enc);
  }
  q->dst = buf;
  q->dcap = n;
  add_header (q, "Range: bytes=%" PRIu64 "-%" PRIu64, off, off + n - 1);
  r = rq_run (s, "GET", q);
  if (r == 0 && q->status == 416)       /* an empty object, or off past it */
    q->total = 0;
  else if (r == 0 && (q->status < 200 || q->status >= 300)) {
    rq_error (s, "GET", q);
    r = -1;
  }
  else if (r == 0 && q->status == 200)
    q->total = q->dlen;               /* the server ignored Range */
  free (q->resp);
  q->resp = NULL;
  curl_slist_free_all (q->hdrs);
  q->hdrs = NULL;
  q->key = NULL;
  q->query = NULL;
  return r;
}

/* bootback-repo.json as read at open, once. */
static struct s3_file *
conf_take (struct s3 *s)
{
  struct s3_file *f;

  pthread_mutex_lock (&s->lock);
  f = s->conf;
  s->conf = NULL;
  pthread_mutex_unlock (&s->lock);
  return f;
}

/* 15.: the listing of path made at open, once, if it is less than
 * LISTED_TTL seconds old (NULL: none). */
static char **
listed_take (struct s3 *s, const char *path)
{
  char **v = NULL;

  pthread_mutex_lock (&s->lock);
  for (size_t i = 0; i < LISTED; i++)
    if (s->listed[i].path && strcmp (s->listed[i].path, path) == 0) {
      v = s->listed[i].v;
      s->listed[i].v = NULL;
      if (v && now_monotonic () - s->listed[i].time > LISTED_TTL) {
        strv_free (v);
        v = NULL;
      }
    }
  pthread_mutex_unlock (&s->lock);
  return v;
}

/* path is being written or removed: forget bootback-repo.json as read
 * at open if that is it, and a listing made at open of a directory that
 * path is in or is (15.). */
static void
conf_forget (struct s3 *s, const char *path)
{
  struct s3_file *f = strcmp (path, CONF_NAME) == 0 ? conf_take (s) : NULL;

  if (f)
    file_free (f);
  written_forget (s, path);
  for (size_t i = 0; i < LISTED; i++) {
    const char *d = s->listed[i].path;
    size_t n = d ? strlen (d) : 0;
    if (d && strncmp (path, d, n) == 0 && (!path[n] || path[n] == '/'))
      strv_free (listed_take (s, d));
  }
}

static struct repo_file *
s_open_read (struct repo_io *io, const char *path)
{
  struct s3 *s = PRIV (io);
  struct s3_file *f;
  struct rq q;
  char holder[128] = "";
  bool known;

  if (strcmp (path, CONF_NAME) == 0 && (f = conf_take (PRIV (io))))
    return (struct repo_file *) f;
  f = xcalloc (1, sizeof *f);
  f->path = xstrdup (path);
  f->flags = O_RDONLY;
  f->fd = -1;
  if (cache_get (PRIV (io), path, f) || written_get (PRIV (io), path, f))
    return (struct repo_file *) f;
  f->buf = xmalloc (HEAD_MAX);
  if (upload_find (PRIV (io), path, f->buf, HEAD_MAX, &f->len) &&
      f->len <= HEAD_MAX) {
    f->size = f->len;                 /* not sent yet (9.) */
    f->mtime = time (NULL);
    return (struct repo_file *) f;
  }
  /* 3.: a contended lock in a versioned bucket reads as its holder's
   * version, which an unlink of it then deletes (and no other) */
  if (contended (path) && s->versioned == 1 &&
      holder_version (s, path, holder, sizeof holder) == -1) {
    file_free (f);
    return NULL;
  }
  if (get_range (s, path, holder[0] ? holder : NULL, f->buf, HEAD_MAX, 0,
                 &q) == -1) {
    file_free (f);
    return NULL;
  }
  if (holder[0]) {
    struct ver v = { .id = holder };
    struct created *c;
    bool ours = true;
    pthread_mutex_lock (&s->lock);
    c = *created_find (s, path);
    known = false;
    for (size_t i = 0; c && i < c->n; i++)
      known |= strcmp (c->versions[i], holder) == 0;
    pthread_mutex_unlock (&s->lock);
    if (!known)                       /* not this handle's own lock, nor
                                       * the holder it read before */
      created_set (s, path, &v, &ours, 1);
  }
  if (q.dlen == q.total)
    cache_put (PRIV (io), path, f->buf, q.dlen);
  f->len = q.dlen;
  f->size = q.total;
  f->mtime = q.last_modified;
  f->retain_until = q.retain_until;
  return (struct repo_file *) f;
}

static struct repo_file *
s_open (struct repo_io *io, const char *path, int flags)
{
  struct s3_file *f;
  time_t date = PRIV (io)->server_date;

  if ((flags & O_ACCMODE) == O_RDONLY)
    return s_open_read (io, path);
  conf_forget (PRIV (io), path);
  f = xcalloc (1, sizeof *f);
  f->path = xstrdup (path);
  f->flags = flags;
  f->fd = -1;
  /* 3.: created at close, with its content */
  f->excl_close = (flags & O_EXCL) && !io_is_temp_name (path);
  if (f->excl_close && strncmp (path, "locks/writers/", 14) == 0)
    dirs_start (PRIV (io));           /* 10. */
  f->mtime = date ? date - 1 : time (NULL);
  return (struct repo_file *) f;
}

static ssize_t
s_pread (struct repo_io *io, struct repo_file *rf, void *buf, size_t n,
         uint64_t off)
{
  struct s3_file *f = FILE_OF (rf);
  struct rq q;

  if (off >= f->size || n == 0)
    return 0;
  if (n > f->size - off)
    n = f->size - off;
  if (f->fd != -1) {
    ssize_t r = pread (f->fd, buf, n, off);
    if (r == -1)
      error_set (errno, "read %s from the S3 read cache", f->path);
    return r;
  }
  if (off + n <= f->len) {
    memcpy (buf, f->buf + off, n);
    return n;
  }
  if (get_range (PRIV (io), f->path, NULL, buf, n, off, &q) == -1)
    return -1;
  return q.dlen;
}

static ssize_t
s_pwrite (struct repo_io *io, struct repo_file *rf, const void *buf, size_t n,
          uint64_t off)
{
  struct s3_file *f = FILE_OF (rf);

  if (off + n > f->cap) {
    f->cap = off + n > 2 * f->cap ? off + n : 2 * f->cap;
    f->buf = xrealloc (f->buf, f->cap);
  }
  if (off > f->len)
    memset (f->buf + f->len, 0, off - f->len);
  memcpy (f->buf + off, buf, n);
  if (off + n > f->len)
    f->len = off + n;
  f->size = f->len;
  return n;
}

static int
s_nothing (struct repo_io *io, struct repo_file *f)
{
  return 0;
}

static int
s_fstat (struct repo_io *io, struct repo_file *rf, struct repo_stat *st)
{
  struct s3_file *f = FILE_OF (rf);

  memset (st, 0, sizeof *st);
  st->size = f->size;
  st->mtime = f->mtime;
  st->mode = 0600;
  st->retain_until = f->retain_until;
  return 0;
}

static int
s_close (struct repo_io *io, struct repo_file *rf)
{
  struct s3_file *f = FILE_OF (rf);
  struct s3 *s = PRIV (io);
  int r = 0;

  if ((f->flags & O_ACCMODE) != O_RDONLY && io_is_temp_name (f->path)) {
    struct pending *p = xcalloc (1, sizeof *p);   /* 2. */
    p->path = f->path;
    p->buf = f->buf;
    p->len = f->len;
    pthread_mutex_lock (&s->lock);
    p->next = s->pending;
    s->pending = p;
    pthread_mutex_unlock (&s->lock);
    free (f);
    return 0;
  }
  if ((f->flags & O_ACCMODE) != O_RDONLY)
    r = f->excl_close ? excl_create (s, f->path, f->buf, f->len)
                      : put_object (s, f->path, f->buf, f->len, false, NULL);
  file_free (f);
  return r;
}

/* Can path only be a file: a file of a point (points/VM/ID/NAME: points
 * have no subdirectories), a point's pruned marker (pruned/VM/ID) or a
 * lock (locks/NAME but locks/writers)?  Its stat then needs no listing
 * when it is missing. */
static bool
only_file (const char *path)
{
  int slashes = 0;

  for (const char *p = path; *p; p++)
    slashes += *p == '/';
  return (strncmp (path, "points/", 7) == 0 && slashes == 3) ||
    (strncmp (path, "pruned/", 7) == 0 && slashes == 2) ||
    (strncmp (path, "locks/", 6) == 0 && slashes == 1 &&
     strcmp (path, "locks/writers"));
}

static int
s_stat (struct repo_io *io, const char *path, struct repo_stat *st)
{
  struct s3 *s = PRIV (io);
  struct rq q;
  size_t len;
  int found;

  memset (st, 0, sizeof *st);
  st->mode = 0700;
  st->is_dir = true;
  if (strcmp (path, ".") == 0)
    return 0;
  if (upload_find (s, path, NULL, 0, &len)) {
    st->is_dir = false;               /* being sent (9.) */
    st->mode = 0600;
    st->size = len;
    st->mtime = time (NULL);
    return 0;
  }
  if (head_object (s, "stat", path, &q) == 0) {
    st->is_dir = false;
    st->mode = 0600;
    st->size = q.total;
    st->mtime = q.last_modified;
    st->retain_until = q.retain_until;
    return 0;
  }
  if (errno != ENOENT || (found = only_file (path) ? 0
                           : prefix_any (s, path)) == -1)
    return -1;
  if (found)
    return 0;
  error_set (ENOENT, "stat: s3://%s/%s%s: no such object", s->bucket,
             s->prefix, path);
  return -1;
}

/* Does mkdir of path need its marker (1.)?  Not the parents that are
 * only made sure of (locks, locks/writers, points/VM, holds, keys): a prefix
 * exists by what is below it, and they are never claimed. */
static bool
marker_needed (const char *path)
{
  return strcmp (path, "locks") && strcmp (path, "locks/writers") &&
    strcmp (path, "holds") && strcmp (path, "keys") &&
    (strncmp (path, "points/", 7) || !path[7] || strchr (path + 7, '/'));
}

static int
s_mkdir (struct repo_io *io, const char *path)
{
  CLEANUP_FREE char *dir = xasprintf ("%s/", path);

  conf_forget (PRIV (io), path);
  if (!marker_needed (path))
    return 0;
  if (excl_create (PRIV (io), dir, "", 0) == -1) {
    if (errno == EEXIST)
      error_set (EEXIST, "mkdir: s3://%s/%s%s: exists", PRIV (io)->bucket,
                 PRIV (io)->prefix, path);
    return -1;
  }
  return 0;
}

static int
s_unlink (struct repo_io *io, const char *path)
{
  struct pending *p = pending_take (PRIV (io), path);

  conf_forget (PRIV (io), path);
  if (p || io_is_temp_name (path)) {
    pending_free (p);                 /* a temp name is never sent (2.) */
    return 0;
  }
  if (strncmp (path, "locks/writers/", 14) == 0 && unregister (PRIV (io), path))
    return 0;                         /* 14. */
  return delete_object (PRIV (io), path);
}

static int
s_rmdir (struct repo_io *io, const char *path)
{
  CLEANUP_FREE char *dir = xasprintf ("%s/", path);
  char **v;

  conf_forget (PRIV (io), path);
  v = list_prefix (PRIV (io), path, 1);
  bool empty = v && !v[0];

  strv_free (v);
  if (!v)
    return -1;
  if (!empty) {
    error_set (ENOTEMPTY, "rmdir: s3://%s/%s%s: not empty", PRIV (io)->bucket,
               PRIV (io)->prefix, path);
    return -1;
  }
  return delete_object (PRIV (io), dir);
}

/* Server-side copy of from onto to (REPLACE: a new Last-Modified). */
static int
copy_object (struct s3 *s, const char *from, const char *to, time_t until)
{
  CLEANUP_FREE char *src = key_of (s, from), *dst = key_of (s, to);
  char enc[3 * KEY_MAX];
  struct rq q = { .method = "PUT", .key = dst, .query = "" };
  int r;

  uri_encode (src, true, enc, sizeof enc);
  base_headers (&q);
  add_header (&q, "x-amz-copy-source: /%s/%s", s->bucket, enc);
  add_header (&q, "x-amz-metadata-directive: REPLACE");
  add_retention (&q, until);
  if (!until)
    add_short_retention (s, &q, to);
  r = rq_ok (s, "copy", &q);
  if (r == 0)
    created_note (s, to, q.version, false);
  rq_free (&q);
  return r;
}

static int
s_rename (struct repo_io *io, const char *from, const char *to)
{
  struct s3 *s = PRIV (io);
  struct pending *p = pending_take (s, from);
  int r;

  conf_forget (s, from);
  conf_forget (s, to);
  if (p && strncmp (to, "chunks/", 7) == 0) {
    chunk_dir_seen (s, to, true);
    r = upload_queue (s, xstrdup (to), p->buf, p->len);   /* 9. */
    p->buf = NULL;
    pending_free (p);
    return r;
  }
  if (p) {
    r = put_object (s, to, p->buf, p->len, false, NULL);
    if (r == 0)
      written_note (s, to, p->buf, p->len);   /* 19. */
    pending_free (p);
    return r;
  }
  if (copy_object (s, from, to, retention_for (s, to)) == -1)
    return -1;
  return delete_object (s, from);
}

/* Set the COMPLIANCE retention of path to until, unless it is already
 * locked as long (a retention is never shortened). */
static int
s_retain (struct repo_io *io, const char *path, time_t until)
{
  struct s3 *s = PRIV (io);
  CLEANUP_FREE char *key = key_of (s, path), *body = NULL;
  struct rq q = { .method = "PUT", .key = key, .query = "retention=" };
  struct rq h;
  char iso[32];
  int r;

  if (head_object (s, "lock", path, &h) == -1)
    return -1;
  if (h.retain_until >= until)
    return 0;
  if ((r = bucket_versioned (s)) == -1)
    return -1;
  if (!r) {
    error_set (EOPNOTSUPP, "lock s3://%s/%s: the bucket has no Object Lock "
               "(create it with 'bootback repo init --object-lock s3://...' "
               "or '--lock DAYS')", s->bucket, key);
    return -1;
  }
  format_iso (until, iso);
  body = xasprintf ("<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>%s"
                    "</RetainUntilDate></Retention>", iso);
  xml_body (&q, body);
  r = rq_ok (s, "lock", &q);
  rq_free (&q);
  /* a 200 is not a lock: read it back (a server that ignores it says so
   * here; one that lies to both cannot be caught from this side) */
  if (r == 0 && (r = head_object (s, "lock", path, &h)) == 0 &&
      h.retain_until < until) {
    error_set (EIO, "lock s3://%s/%s: the server answered but does not "
               "keep the retention", s->bucket, key);
    r = -1;
  }
  return r;
}

static int
s_touch (struct repo_io *io, const char *path)
{
  struct s3 *s = PRIV (io);
  time_t until = retention_for (s, path);
  struct rq q;

  if (strncmp (path, "chunks/", 7) == 0) {        /* 5. */
    size_t len;
    if (upload_find (s, path, NULL, 0, &len))
      return 0;                       /* its PUT has the retention */
    if (!chunk_dir_seen (s, path, false)) {
      error_set (ENOENT, "touch: s3://%s/%s%s: no such object", s->bucket,
                 s->prefix, path);
      return -1;
    }
    if (head_object (s, "touch", path, &q) == -1)
      return -1;
    return until && q.retain_until < until ? s_retain (io, path, until) : 0;
  }
  return copy_object (s, path, path, until);
}

static int
s_tighten (struct repo_io *io, const char *path, struct repo_stat *st)
{
  return s_stat (io, path, st) == -1 ? -1 : 0;
}

static char **
s_list (struct repo_io *io, const char *path)
{
  char **v = listed_take (PRIV (io), path);

  return v ? v : list_prefix (PRIV (io), path, 0);
}

static int
s_sync_dir (struct repo_io *io, const char *path)
{
  return upload_wait (PRIV (io));
}

static int
s_sync_all (struct repo_io *io)
{
  return upload_wait (PRIV (io));
}

static void
s_free (struct repo_io *io)
{
  struct s3 *s = PRIV (io);

  uploaders_stop (s);
  if (s->dirs_ahead)
    pthread_join (s->dirs_thread, NULL);
  for (size_t i = 0; i < LISTED; i++) {
    free (s->listed[i].path);
    strv_free (s->listed[i].v);
  }
  while (s->written) {
    struct written *w = s->written;
    s->written = w->next;
    written_free (w);
  }
  if (s->conf)
    file_free (s->conf);
  free (s->up_error);
  free (s->dirs);
  free (s->mine);
  pthread_cond_destroy (&s->up_cond);
  pthread_mutex_destroy (&s->dirs_lock);
  while (s->created)
    strv_free (created_take (s, s->created->path));
  while (s->pending) {
    struct pending *p = s->pending;
    s->pending = p->next;
    pending_free (p);
  }
  for (size_t i = 0; i < s->npool; i++)
    handle_free (s->pool[i]);
  pthread_mutex_destroy (&s->lock);
  free (s->endpoint);
  free (s->bucket);
  free (s->prefix);
  free (s->cache_dir);
  if (s->cache_known)
    digest_set_free (s->cache_known);
  if (s->userpwd)
    explicit_bzero (s->userpwd, strlen (s->userpwd));
  free (s->userpwd);
  free (s->sigv4);
  free (s);
  free (io->location);
  free (io);
}

static const struct repo_io_ops s3_ops = {
  .name = "s3",
  .object_store = true,
  .open = s_open, .pread = s_pread, .pwrite = s_pwrite, .fsync = s_nothing,
  .fstat = s_fstat, .close = s_close, .stat = s_stat, .mkdir = s_mkdir,
  .rmdir = s_rmdir, .unlink = s_unlink, .rename = s_rename, .touch = s_touch,
  .tighten = s_tighten, .retain = s_retain, .uncache = s_uncache,
  .fetches_whole = s_fetches_whole,
  .list = s_list, .sync_dir = s_sync_dir, .sync_all = s_sync_all,
  .free = s_free,
};

/* ---- opening ---------------------------------------------------------------- */

void
repo_open_opts_s3_env (struct repo_open_opts *o)
{
  const char *region = getenv ("BOOTBACK_S3_REGION");

  if (!region || !*region)
    region = getenv ("AWS_REGION");
  if (!region || !*region)
    region = getenv ("AWS_DEFAULT_REGION");
  if (!o->s3_endpoint)
    o->s3_endpoint = getenv ("BOOTBACK_S3_ENDPOINT");
  o->s3_region = region;
  o->s3_access_key = getenv ("AWS_ACCESS_KEY_ID");
  o->s3_secret_key = getenv ("AWS_SECRET_ACCESS_KEY");
  o->s3_credentials_file = getenv ("AWS_SHARED_CREDENTIALS_FILE");
  o->s3_profile = getenv ("AWS_PROFILE");
  o->s3_cache_dir = getenv ("BOOTBACK_S3_CACHE");
  o->s3_cache_size = getenv ("BOOTBACK_S3_CACHE_SIZE");
}

/* The keys of profile in a credentials file (INI: [profile], then
 * aws_access_key_id = ..., aws_secret_access_key = ...). */
static int
read_credentials (const char *file, const char *profile, char **ak, char **sk)
{
  CLEANUP_FCLOSE FILE *f = fopen (file, "re");
  char line[1024], want[256], key[64], val[512];
  bool in = false;

  if (!f)
    return -1;
  snprintf (want, sizeof want, "[%s]", profile);
  while (fgets (line, sizeof line, f)) {
    line[strcspn (line, "\r\n")] = '\0';
    if (line[0] == '[') {
      in = strcmp (line, want) == 0;
      continue;
    }
    if (!in || sscanf (line, " %63[^= ] = %511s", key, val) != 2)
      continue;
    if (strcmp (key, "aws_access_key_id") == 0 && !*ak)
      *ak = xstrdup (val);
    else if (strcmp (key, "aws_secret_access_key") == 0 && !*sk)
      *sk = xstrdup (val);
  }
  explicit_bzero (line, sizeof line);
  explicit_bzero (val, sizeof val);
  return *ak && *sk ? 0 : -1;
}

static int
s3_credentials (struct s3 *s, const struct repo_open_opts *o)
{
  CLEANUP_FREE char *ak = NULL, *sk = NULL, *file = NULL;
  const char *home = getenv ("HOME");
  const char *profile = o->s3_profile && *o->s3_profile ? o->s3_profile : "default";

  if (o->s3_access_key && *o->s3_access_key && o->s3_secret_key && *o->s3_secret_key) {
    s->userpwd = xasprintf ("%s:%s", o->s3_access_key, o->s3_secret_key);
    return 0;
  }
  file = o->s3_credentials_file && *o->s3_credentials_file
    ? xstrdup (o->s3_credentials_file)
    : xasprintf ("%s/.aws/credentials", home ? home : "/root");
  if (read_credentials (file, profile, &ak, &sk) == -1) {
    CLEANUP_FREE char *t =
      xasprintf ("s3://%s: no S3 credentials (set AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY, or put profile [%s] in %s)",
                 s->bucket, profile, file);
    error_restore (EACCES, t);
    if (sk) explicit_bzero (sk, strlen (sk));
    return -1;
  }
  s->userpwd = xasprintf ("%s:%s", ak, sk);
  explicit_bzero (sk, strlen (sk));
  return 0;
}

/* s3://BUCKET[/PREFIX] into s->bucket and s->prefix ("" or "P/"). */
static int
parse_url (struct s3 *s, const char *url)
{
  const char *b = url + 5, *slash = strchr (b, '/');
  size_t bl = slash ? (size_t) (slash - b) : strlen (b);

  if (strncmp (url, "s3://", 5) || bl < 3 || bl > 63 ||
      strspn (b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < bl) {
    error_setx ("%s: not an S3 repository location (the form is "
                "s3://BUCKET/PREFIX; a bucket name is 3 to 63 of a-z 0-9 . -)",
                url);
    return -1;
  }
  s->bucket = xasprintf ("%.*s", (int) bl, b);
  if (slash && slash[1]) {
    size_t pl = strlen (slash + 1);
    while (pl > 0 && slash[pl] == '/')
      pl--;
    s->prefix = xasprintf ("%.*s/", (int) pl, slash + 1);
  }
  else
    s->prefix = xstrdup ("");
  return 0;
}

/* The read cache of o, if any (8.). */
static int
cache_open (struct s3 *s, const struct repo_open_opts *o)
{
  int64_t max = o->s3_cache_size && *o->s3_cache_size
    ? parse_size (o->s3_cache_size) : CACHE_DEFAULT;
  struct stat st;
  CLEANUP_FREE char *where = xasprintf ("%s/%s/%s", s->endpoint, s->bucket,
                                        s->prefix);
  uint8_t md[REPO_DIGEST_LEN];
  char hex[17];

  if (!o->s3_cache_dir || !*o->s3_cache_dir)
    return 0;
  if (max <= 0) {
    error_setx ("BOOTBACK_S3_CACHE_SIZE: '%s' is not a size", o->s3_cache_size);
    return -1;
  }
  if (mkdir_p_private (o->s3_cache_dir) == -1 || mkdir_private (o->s3_cache_dir) == -1)
    return -1;
  /* ours alone: another user's directory (made first in a shared place)
   * could read every chunk and replace them between check and use */
  if (lstat (o->s3_cache_dir, &st) == -1 || !S_ISDIR (st.st_mode) ||
      st.st_uid != geteuid () || (st.st_mode & 077)) {
    error_setx ("BOOTBACK_S3_CACHE %s: not a directory of this user's "
                "alone (it must be a directory, not a link, of uid %u, "
                "mode 0700)", o->s3_cache_dir, (unsigned) geteuid ());
    return -1;
  }
  /* a directory per repository: a chunk another (hostile) bucket served
   * under a name this one uses is never this one's */
  repo_sha256 (where, strlen (where), md);
  hex_encode (md, 8, hex);
  s->cache_dir = xasprintf ("%s/%s", o->s3_cache_dir, hex);
  if (mkdir_private (s->cache_dir) == -1)
    return -1;
  s->cache_max = max;
  s->cache_known = digest_set_new ();
  cache_evict (s);                    /* and count what is there */
  return 0;
}

static struct repo_io *
s3_alloc (const char *url, const struct repo_open_opts *o)
{
  const char *region = o && o->s3_region && *o->s3_region ? o->s3_region : "us-east-1";
  const char *mp = test_hook_env ("BOOTBACK_S3_MULTIPART");
  struct repo_open_opts none = { 0 };
  struct repo_io *io = xcalloc (1, sizeof *io);
  struct s3 *s = xcalloc (1, sizeof *s);

  pthread_once (&curl_once, curl_init_once);
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->up_cond, NULL);
  pthread_mutex_init (&s->dirs_lock, NULL);
  io->ops = &s3_ops;
  io->priv = s;
  io->location = xstrdup (url);
  if (!o)
    o = &none;
  s->multipart = mp && atol (mp) >= 5 * 1024 * 1024 ? (size_t) atol (mp) : MULTIPART;
  s->endpoint = o->s3_endpoint && *o->s3_endpoint
    ? xstrdup (o->s3_endpoint) : xasprintf ("https://s3.%s.amazonaws.com", region);
  if (s->endpoint[strlen (s->endpoint) - 1] == '/')
    s->endpoint[strlen (s->endpoint) - 1] = '\0';
  s->sigv4 = xasprintf ("aws:amz:%s:s3", region);
  s->trace = test_hook_env ("BOOTBACK_S3_TRACE") != NULL;
  s->sign_chunks = test_hook_env ("BOOTBACK_S3_SIGN_CHUNKS") != NULL;
  s->versioned = -1;
  s->listed[0].path = xstrdup ("keys");
  if (o->list_ahead && *o->list_ahead && strcmp (o->list_ahead, "keys"))
    s->listed[1].path = xstrdup (o->list_ahead);
  if (parse_url (s, url) == -1 || s3_credentials (s, o) == -1 ||
      cache_open (s, o) == -1) {
    s_free (io);
    return NULL;
  }
  return io;
}

/* 12.: the days of a COMPLIANCE DefaultRetention in an
 * ObjectLockConfiguration (Years as 365 days), 0 if none. */
static int
default_days (const char *xml)
{
  const char *d = strstr (xml, "<DefaultRetention>");
  long n = 0;

  if (!d || !strstr (d, "<Mode>COMPLIANCE</Mode>"))
    return 0;
  if (strstr (d, "<Days>"))
    n = strtol (strstr (d, "<Days>") + 6, NULL, 10);
  else if (strstr (d, "<Years>"))
    n = strtol (strstr (d, "<Years>") + 7, NULL, 10) * 365;
  return n > 0 && n <= REPO_MAX_LOCK_DAYS ? n : n > 0 ? REPO_MAX_LOCK_DAYS : 0;
}

/* GET ?versioning= on a thread of its own, beside bucket_lock's GET
 * ?object-lock= (17.: a plain bucket needs both answers). */
struct vask {
  struct s3 *s;
  struct rq q;
  int r, e;                     /* rq_run's; its error in e, msg */
  char msg[512];
};

static void *
versioning_ask (void *opaque)
{
  struct vask *v = opaque;

  if ((v->r = rq_run (v->s, "open bucket", &v->q)) == -1) {
    v->e = error_errno ();
    snprintf (v->msg, sizeof v->msg, "%s", error_msg ());
  }
  return NULL;
}

/* GET ?object-lock=: 1 Object Lock enabled; else GET ?versioning=: 2
 * versioned all the same (its owner turned versioning on: locks need the
 * version protocol of 3. there too), 0 not; -1 (the bucket is missing or
 * unreachable: the error names it).  Notes the bucket's default
 * retention (12.).  The two are asked at once (one round trip: a plain
 * bucket, repo init's own since 17., needs both). */
static int
bucket_lock (struct s3 *s)
{
  struct rq q = { .method = "GET", .key = "", .query = "object-lock=" };
  struct vask va = { .s = s, .q = { .method = "GET", .key = "",
                                    .query = "versioning=" } };
  pthread_t vt;
  bool ahead = pthread_create (&vt, NULL, versioning_ask, &va) == 0;
  int r = -1;

  if (rq_run (s, "open bucket", &q) == -1)
    goto out;
  if (q.status == 200) {
    r = q.resp && strstr (q.resp, "<ObjectLockEnabled>Enabled<") ? 1 : 0;
    s->default_days = r ? default_days (q.resp) : 0;
    s->has_default = r && strstr (q.resp, "<DefaultRetention>");
  }
  else if (q.status == 404 && q.resp && !strstr (q.resp, "NoSuchBucket"))
    r = 0;                            /* no lock configuration */
  else
    rq_error (s, "open bucket", &q);
  if (r == 0) {                       /* versioned without Object Lock? */
    struct rq *v = &va.q;
    if (ahead) {
      pthread_join (vt, NULL);
      ahead = false;
    }
    else
      versioning_ask (&va);
    if (va.r == -1) {
      error_restore (va.e, va.msg);
      errno = va.e;
      r = -1;
    }
    else if (v->status != 200) {
      rq_error (s, "open bucket", v);
      r = -1;
    }
    else if (v->resp && (strstr (v->resp, "<Status>Enabled<") ||
                         strstr (v->resp, "<Status>Suspended<")))
      r = 2;
  }
 out:
  if (ahead)                          /* (its error is its thread's) */
    pthread_join (vt, NULL);
  rq_free (&va.q);
  rq_free (&q);
  return r;
}

/* Is the bucket versioned (Object Lock, or versioning turned on by its
 * owner: bucket_lock's 2): 1, 0, -1 with the error set.
 * Asked once, when first needed (a repository's open does not ask). */
static int
bucket_versioned (struct s3 *s)
{
  int v;

  pthread_mutex_lock (&s->dirs_lock);
  if (s->versioned == -1 && (v = bucket_lock (s)) != -1)
    s->versioned = v != 0;
  v = s->versioned;
  pthread_mutex_unlock (&s->dirs_lock);
  return v;
}

/* "lock_days" of bootback-repo.json, if the repository exists.  The
 * file read stays open for the repository's own open of it, which
 * follows (conf: one request less). */
static void
read_lock_days (struct repo_io *io)
{
  struct s3_file *f = FILE_OF (s_open_read (io, CONF_NAME));
  json_t *o, *v;

  if (!f) {
    error_clear ();
    return;
  }
  o = f->fd == -1 && f->len == f->size
    ? json_loadb ((const char *) f->buf, f->len, 0, NULL) : NULL;
  v = o ? json_object_get (o, "lock_days") : NULL;
  if (json_is_integer (v) && json_integer_value (v) > 0 &&
      json_integer_value (v) <= REPO_MAX_LOCK_DAYS)
    PRIV (io)->lock_days = json_integer_value (v);
  if (o)
    PRIV (io)->conf = f;
  else
    file_free (f);
  json_decref (o);
}

/* bucket_lock on a thread of its own, its error carried back. */
struct bucket_ask {
  struct s3 *s;
  int r, e;
  char msg[1024];
};

static void *
bucket_ask (void *opaque)
{
  struct bucket_ask *a = opaque;

  if ((a->r = bucket_lock (a->s)) == -1) {
    a->e = error_errno ();
    snprintf (a->msg, sizeof a->msg, "%s", error_msg ());
  }
  return NULL;
}

/* 15.: list a directory (keys/: every open of a repository does,
 * repo.c; the caller's list_ahead), kept for the first list of it; an
 * error is not kept (that list asks again). */
struct list_ask {
  struct s3 *s;
  struct listed *l;
  pthread_t t;
  bool threaded;
};

static void *
list_ask (void *opaque)
{
  struct list_ask *a = opaque;
  double t = now_monotonic ();
  char **v;

  ERROR_SAVE (saved);
  v = list_prefix (a->s, a->l->path, 0);
  ERROR_RESTORE (saved);
  pthread_mutex_lock (&a->s->lock);
  strv_free (a->l->v);
  a->l->v = v;
  a->l->time = t;
  pthread_mutex_unlock (&a->s->lock);
  return NULL;
}

struct repo_io *
io_s3_new (const char *url, const struct repo_open_opts *o)
{
  struct repo_io *io = s3_alloc (url, o);
  struct bucket_ask a;
  struct list_ask l[LISTED] = { 0 };
  pthread_t t;
  bool threaded;
  int lock;

  if (!io)
    return NULL;
  /* The file's days, and the bucket's Object Lock and default retention
   * (12.), asked at once, and keys/ and the caller's directory listed
   * meanwhile (15.: up to five requests, one round trip): the longer of
   * the two is kept. */
  a.s = PRIV (io);
  threaded = pthread_create (&t, NULL, bucket_ask, &a) == 0;
  for (size_t i = 0; i < LISTED; i++) {
    l[i].s = PRIV (io);
    l[i].l = &PRIV (io)->listed[i];
    l[i].threaded = l[i].l->path &&
      pthread_create (&l[i].t, NULL, list_ask, &l[i]) == 0;
  }
  read_lock_days (io);
  if (threaded)
    pthread_join (t, NULL);
  else
    bucket_ask (&a);
  for (size_t i = 0; i < LISTED; i++)
    if (l[i].threaded)
      pthread_join (l[i].t, NULL);
  if ((lock = a.r) == -1) {
    error_restore (a.e, a.msg);
    errno = a.e;
    s_free (io);
    return NULL;
  }
  PRIV (io)->versioned = lock != 0;     /* Object Lock (1) or versioning (2) */
  PRIV (io)->lock_days = MAX (PRIV (io)->lock_days, PRIV (io)->default_days);
  return io;
}

int
io_s3_default_days (struct repo_io *io)
{
  return PRIV (io)->default_days;
}

/* 12.: give the bucket a default retention of days (COMPLIANCE), unless
 * it has that one already; another one is refused (it is the whole
 * bucket's, other prefixes' too). */
static int
set_default_retention (struct s3 *s, int days)
{
  CLEANUP_FREE char *body = NULL;
  struct rq q = { .method = "PUT", .key = "", .query = "object-lock=" };
  int r;

  if (s->default_days == days)
    return 0;
  if (s->has_default) {
    if (s->default_days)
      error_setx ("s3://%s: the bucket has a default retention of %d days "
                  "already: it is the whole bucket's (other repositories "
                  "in it too); use --lock %d, or a bucket of this "
                  "repository's own", s->bucket, s->default_days,
                  s->default_days);
    else
      error_setx ("s3://%s: the bucket has a default retention already, "
                  "not COMPLIANCE: it is the whole bucket's (other "
                  "repositories in it too); use a bucket of this "
                  "repository's own for --lock", s->bucket);
    return -1;
  }
  body = xasprintf ("<ObjectLockConfiguration xmlns=\"http://s3.amazonaws."
                    "com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled"
                    "</ObjectLockEnabled><Rule><DefaultRetention><Mode>"
                    "COMPLIANCE</Mode><Days>%d</Days></DefaultRetention>"
                    "</Rule></ObjectLockConfiguration>", days);
  xml_body (&q, body);
  r = rq_ok (s, "set the bucket's default retention", &q);
  rq_free (&q);
  if (r == 0 && (bucket_lock (s) == -1 || s->default_days != days)) {
    error_set (EIO, "s3://%s: the server answered but does not keep the "
               "default retention", s->bucket);
    r = -1;
  }
  return r;
}

int
io_s3_init_bucket (const char *url, const struct repo_open_opts *o,
                   int lock_days, bool object_lock)
{
  struct repo_io *io = s3_alloc (url, o);
  bool want_lock = lock_days > 0 || object_lock;
  struct s3 *s;
  int lock, r = -1;

  if (!io)
    return -1;
  s = PRIV (io);
  lock = bucket_lock (s);
  if (lock == -1 && errno == ENOENT) {
    struct rq q = { .method = "PUT", .key = "", .query = "" };
    base_headers (&q);
    if (want_lock)                    /* 17.: else a plain bucket */
      add_header (&q, "x-amz-bucket-object-lock-enabled: true");
    r = rq_ok (s, "create bucket", &q);
    rq_free (&q);
    if (r == -1)
      goto out;
    lock = want_lock ? 1 : 0;
    s->default_days = 0;
    s->has_default = false;
  }
  r = -1;
  if (lock != 1 && lock >= 0 && want_lock)
    error_setx ("s3://%s: the bucket has no Object Lock configuration: "
                "%s needs a bucket created with Object Lock (let "
                "'bootback repo init %s' create it)", s->bucket,
                lock_days > 0 ? "--lock" : "--object-lock",
                lock_days > 0 ? "--lock DAYS" : "--object-lock");
  else if (lock >= 0)
    r = lock_days > 0 ? set_default_retention (s, lock_days) : 0;
 out:
  s_free (io);
  return r;
}
