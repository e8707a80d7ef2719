/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * instant: instant-recovery sessions (libbbinstant.a).  A session boots a
 * restore point now: a supervised nbdkit serves each disk of the point on a
 * private unix socket, a qcow2 overlay per disk takes the guest's writes
 * (backing: the NBD export, format raw), and a libvirt domain built from the
 * point's saved domain XML (rewritten: name, UUID, MACs, disks, network) runs
 * from the overlays.  `instant_migrate` later moves the running VM's disks
 * to production storage with libvirt block copy and pivots, with no
 * downtime.  Sessions are rows of the catalog and outlive the process that
 * started them; the supervisor is a small daemon (`bootback supervise ID`).
 *
 * The session state machine and its invariants are described at the top of
 * session.c.  States: enum instant_state; their text ("starting",
 * "running", "migrating", "migrated", "stopped", "failed") is what the
 * catalog stores and what the CLI prints.
 *
 * Users of this API: the CLI (recovery/cli/cmd-instant.c) and the
 * verification lab, which boots its VMs as transient sessions with
 * throwaway overlays on a network of its choosing:
 *
 *   struct instant_opts o = {
 *     .home = home, .repo = repo_location, .point = "web1@latest",
 *     .name = "lab1-web1", .identity = INSTANT_IDENTITY_LAB,
 *     .network = "bridge:lab1br", .transient = true, .agent_timeout = 0,
 *   };
 *   struct instant_session *s = xcalloc (1, sizeof *s);   // large: heap
 *   if (instant_start (cat, &o, s) == -1) ... error_msg () says why ...
 *   ... checks against s->name ...
 *   instant_stop (cat, s->id, NULL, true);    // destroy, discard overlays
 *
 * Threads: one struct catalog per thread (catalog.h); the functions here
 * may be called from several threads with their own catalogs, each on its
 * own session.  libvirt is set up once per process by recovery/virt
 * (virt_init: its error printing silenced, the default event loop
 * registered) when the first function connects.
 *
 * Processes: a session's supervisor is the bootback program run as
 * `bootback --home HOME supervise ID` (detached).  The program is
 * $BOOTBACK_EXE if set, else /proc/self/exe when it is called bootback,
 * else "bootback" from PATH; the nbdkit plugin is $BOOTBACK_NBDKIT_PLUGIN, else
 * the build tree's next to the program, else the installed "bootback".
 *
 * Errors: -1 and the last error (recovery/util/util.h) set, with the
 * reason a user can act on ("domain web1 already exists: give --name").
 */
#ifndef BOOTBACK_INSTANT_H
#define BOOTBACK_INSTANT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "recovery/catalog/catalog.h"
#include "recovery/repo/repo.h"
#include "recovery/util/util.h"

/* What the restored VM keeps of the original's identity. */
enum instant_identity {
  INSTANT_IDENTITY_DEFAULT = 0, /* KEEP without opts.name, NEW with it */
  INSTANT_IDENTITY_KEEP,        /* same UUID and MACs (replaces the original;
                                   refused if a domain with that UUID exists) */
  INSTANT_IDENTITY_NEW,         /* new UUID and new MACs (a copy beside it) */
  INSTANT_IDENTITY_LAB,         /* new UUID, same MACs (isolated networks) */
};

/* The pool (pool.c): one backend nbdkit shared by the sessions of a mass
 * instant recovery. */
struct instant_pool {
  char key[17];             /* HOME/pools/KEY */
  char socket[256];         /* its backend's socket */
};

struct instant_opts {
  const char *home;         /* state directory: catalog, sessions/ (required) */
  const char *repo;         /* repository location (required) */
  const struct repo_open_opts *repo_open;  /* how to reach it; NULL = the
                                              defaults */
  const char *point;        /* "VM", "VM@latest" or "VM@TIME" (required) */
  /* The point as the caller checked it (the CLI's scan gate: the
   * manifest whose disks the clean scan read), or NULL.  With it, point
   * must resolve to approved's VM@TIME and hold exactly its disks (names,
   * sizes, index digests) when instant_start reads it, else the start is
   * refused, naming what changed.  With it or not, every disk's nbdkit
   * serves only the index instant_start read (its SHA-256 is passed to the
   * plugin, index-sha256= or the export name's #HEX, kept in the row for
   * restarts): a point replaced in the repository afterwards is refused by
   * the plugin, naming the disk, never served. */
  const struct repo_manifest *approved;
  const char *uri;          /* libvirt URI; NULL = libvirt's default
                               (LIBVIRT_DEFAULT_URI) */
  const char *name;         /* domain name; NULL = the VM's name (KEEP) or
                               "VM-instant" (NEW, LAB) */
  enum instant_identity identity;
  /* identity LAB on another host: the lab made its isolated network and
   * checked it there (lab/hostcmd.c); without it a lab VM runs here only */
  bool lab_remote;
  /* NULL: keep the saved interfaces (their network or bridge must exist);
   * "none": no NIC; "bridge:BR": a host bridge; "network:NET" or "NET":
   * a libvirt network.  Every interface of the VM goes to it. */
  const char *network;
  const char *overlay_dir;  /* NULL = HOME/overlays */
  /* The free space (bytes) the overlay directory needs; < 0: none; 0:
   * 64 MiB.  The CLI passes $BOOTBACK_OVERLAY_MIN_FREE here (through the
   * lab too: lab_vm_env.instant). */
  int64_t overlay_min_free;
  /* "qemu" or "kvm": the domain type of the restored VM (and of the
   * default definition, else "kvm"); NULL keeps the saved one.  The CLI
   * passes $BOOTBACK_DOMAIN_TYPE here (through the lab too). */
  const char *domain_type;
  bool transient;           /* transient domain, overlays removed at stop
                               (the lab); default persistent */
  /* How long (seconds, 1 s apart) a failed read of the backup is
   * retried before the guest sees the error: a restarted backend nbdkit
   * answers again within that (supervise.c).  0 = 30.  The lab gives
   * less: a chunk that failed its check fails again, and the verdict
   * should not wait for it. */
  int read_retries;
  int agent_timeout;        /* seconds to wait for the guest agent's
                               heartbeat after start; 0 = do not wait */
  int memory_mib;           /* only for points without domain XML:
                               0 = 1024 */
  uint64_t memory_cap_mib;  /* at most this much for a saved definition
                               (the lab's reservation); 0: as saved */
  /* Who holds the point, for prune's messages ("lab run 1a2b3c"); NULL =
   * "instant session ID (NAME)". */
  const char *owner;
  /* Called with one line of notes about the rewrite ("removed <hostdev>",
   * "disk vdb has no backup: removed"); may be NULL. */
  void (*note) (void *opaque, const char *line);
  void *note_opaque;
  /* Called with a warning (something left behind while undoing a failed
   * start: "the hold of ... stays: why"); NULL = "bootback: warning: LINE"
   * on stderr. */
  void (*warn) (void *opaque, const char *line);
  void *warn_opaque;
  /* Keep what the saved definition passes through to the host (graphics
   * listeners, host directories and devices, char devices, QEMU command
   * line, ...): for an administrator who trusts the point.  By default
   * the allow-list of sanitize.c applies and the final XML is checked
   * against it before the domain is defined (fail closed). */
  bool allow_passthrough;
  /* The firmware's messages on the serial console too (instant_xml_spec
   * bios_serial): the lab, which reads the console for failed boots. */
  bool bios_serial;
  /* Called with the final domain XML before the domain is defined or
   * started; -1 (error set) refuses to start it.  May be NULL. */
  int (*check_xml) (void *opaque, const char *xml);
  void *check_opaque;
  /* Read the disks through this pool's backend (instant_pool_ensure)
   * instead of a backend of the session's own; NULL: its own. */
  const struct instant_pool *pool;
  /* Admission control: called with the VM's memory (MiB, from the final
   * XML) before the domain is defined; -1 (error set) refuses to start it
   * (nothing is left).  May be NULL. */
  int (*admit) (void *opaque, uint64_t memory_mib);
  void *admit_opaque;
  /* Remote instant recovery (remote.c): used when uri names another host
   * (a server other than localhost) or listen or storage_pool is given.
   * Each disk's front nbdkit serves on TCP at listen (NULL: this host's
   * address on the route to the URI's host) with TLS (x509, tls_dir:
   * NULL = HOME/tls, client certificates of its CA required; insecure:
   * plaintext, tests only), QEMU on the host reads it as the overlay's
   * backing, and the overlays are volumes of storage_pool (NULL:
   * "default") on the host, made through libvirt's storage API. */
  const char *listen;
  const char *storage_pool;
  const char *tls_dir;
  bool insecure;
};

/* The states of a session (session.c has the diagram and the one
 * function that changes them). */
enum instant_state {
  INSTANT_STATE_STARTING,
  INSTANT_STATE_RUNNING,
  INSTANT_STATE_MIGRATING,
  INSTANT_STATE_MIGRATED,
  INSTANT_STATE_STOPPED,
  INSTANT_STATE_FAILED,
};
/* The state's text, as stored in the catalog and printed: "starting",
 * "running", "migrating", "migrated", "stopped", "failed". */
const char *instant_state_name (enum instant_state state);

/* A session as stored in the catalog (all strings owned by the struct).
 * It is large (the disks' paths): allocate it, do not put it on the
 * stack. */
#define INSTANT_MAX_DISKS 64
/* Larger disks are refused (QEMU's qcow2 overlays take up to a few PiB). */
#define INSTANT_MAX_DISK_SIZE ((uint64_t) 1 << 50)
#define INSTANT_HOLD_NAME_MAX 64    /* a hold's file name (struct repo_hold) */
struct instant_session_disk {
  char name[DISK_NAME_MAX + 1];     /* disk of the point, e.g. "vda" */
  char target[DISK_NAME_MAX + 1];   /* device in the domain, e.g. "vda" */
  char socket[256];         /* NBD unix socket QEMU reads the backup from */
  char backend_socket[256]; /* the bootback nbdkit's own socket */
  char overlay[4096];       /* qcow2 overlay (guest writes) */
  char migrated_to[4096];   /* the production image (while migrating:
                               the copy's target) */
  uint64_t size;
  /* the SHA-256 of the disk's index as instant_start read it (hex), which
   * its nbdkit is told to serve and nothing else; "" in rows of versions
   * before it (their nbdkit serves what it opens) */
  char index_sha256[SHA256_HEX_LEN + 1];
  bool onto;                /* migrated_to is an existing disk (migrate
                               --onto): never removed, undone (delta.c) */
  int port;                 /* remote: the front's TCP port (socket is
                               then the front's pid file, its readiness) */
  bool overlay_made;        /* this session created overlay (recorded right
                               after it did): only then may undo and stop
                               --discard delete it; a same-named file or
                               volume that was there is someone else's */
  bool target_made;         /* a remote migration created migrated_to
                               (recorded right after): only then may the
                               recovery of a dead migration delete it */
};
struct instant_session {
  int64_t id;
  char name[256];           /* libvirt domain name */
  char uuid[UUID_STR_LEN + 1];   /* libvirt domain UUID */
  char vm[VM_NAME_MAX + 1];      /* the restore point: VM ... */
  char point[TIMESTAMP_LEN + 1]; /* ... and time */
  char repo[4096];          /* repository location */
  char uri[1024];           /* libvirt URI ("" = default) */
  enum instant_state state; /* see session.c */
  char message[1024];       /* last error or note ("" if none) */
  char dir[4096];           /* HOME/sessions/ID: sockets, logs, pid files */
  char overlay_dir[4096];
  uint64_t overlay_floor;   /* the supervisor pauses the domain when
                               overlay_dir has less free (0: never) */
  char console_log[4096];   /* the guest's serial console */
  bool transient;
  int read_retries;         /* instant_opts.read_retries (0 = 30) */
  char hold[INSTANT_HOLD_NAME_MAX + 1]; /* the point's hold in the repository (prune
                               keeps the point), "" once released */
  pid_t supervisor_pid;     /* 0 if none */
  pid_t migrate_pid;        /* the migrating process, 0 if none */
  char migrate_uri[1024];   /* the URI that migration connected to (migrate
                               --connect/--host), "" = uri: a dead
                               migration's recovery acts through it */
  double created, updated;  /* Unix time */
  double t_running;         /* seconds from command to VM running, -1 */
  double t_heartbeat;       /* ... to the agent's first answer, -1 */
  size_t ndisks;
  struct instant_session_disk disks[INSTANT_MAX_DISKS];
  /* Remote sessions (listen not ""): the front nbdkits' address, the
   * host's pool holding the overlays (named NAME.DISK.qcow2 there), the
   * certificates' directory, plaintext NBD; the addresses the fronts
   * serve (the host's, comma-separated: nbdkit's ip filter). */
  char listen[64];
  char allow[512];
  char storage_pool[256];
  char tls_dir[4096];
  bool insecure;
  bool point_fault;         /* instant_start failed on the point itself (its
                               manifest, its saved definition), not on the
                               host; not stored */
};

/* ---- sessions (session.c) ------------------------------------------------ */

/* Start a session: resolve the point, check everything that can be
 * checked (libvirt reachable, name and UUID free, overlay space, network
 * exists), create the overlays, start the supervisor (nbdkit serving), then
 * define and start the domain.  On success *s describes the running session
 * (state "running"), with t_running and, if agent_timeout > 0 and the agent
 * answered in time, t_heartbeat (a missing heartbeat is not an error: the
 * note callback says so).  On error everything created is removed again
 * (domain, supervisor, nbdkit, sockets, overlays), the row is left in
 * state "failed" with the message, and -1 is returned; s->point_fault
 * then says whether the point was to blame (it cannot be booted anywhere)
 * rather than the host (repository unreachable, no such point, libvirt,
 * nbdkit, overlay space). */
int instant_start (struct catalog *cat, const struct instant_opts *o,
                   struct instant_session *s);

/* Find a session by id ("12") or by domain name (the newest session with
 * that name).  -1 with a message naming key if there is none. */
int instant_session_get (struct catalog *cat, const char *key,
                         struct instant_session *s);

/* Every session, oldest first; fn's return of -1 stops the walk and is
 * returned.  Does not change anything (see instant_reattach). */
typedef int (*instant_session_fn) (void *opaque, const struct instant_session *s);
int instant_session_list (struct catalog *cat, instant_session_fn fn,
                          void *opaque);

/* The session as a JSON object (bootback sessions --json, the web API):
 * id, name, vm, point, state, times, disks.  A new reference. */
struct json_t;
struct json_t *instant_session_json (const struct instant_session *s);
/* Is the session's supervisor alive (and really ours)? */
bool instant_supervisor_alive (const struct instant_session *s);

/* Whether the guest agent of the session's domain answers within timeout
 * seconds.  Never fails. */
bool instant_agent_answers (const struct instant_session *s, double timeout);
/* The state of the session's domain as libvirt reports it ("running",
 * "paused", "shut off", "crashed", ..., "gone" if there is no such domain,
 * "unknown" if libvirt cannot be asked), into buf.  uri NULL = the
 * session's.  Never fails. */
void instant_domain_state (const struct instant_session *s, const char *uri,
                           char *buf, size_t len);

/* Re-attach after a restart of the appliance: for every session in state
 * running or migrating whose supervisor is gone, start a new one (it adopts
 * the nbdkit processes still serving, restarts those that died).  A session
 * left in "migrating" by a migrate command that died gets its block jobs
 * aborted and goes back to "running".  Returns the number of sessions it
 * re-attached, or -1 (the others are still tried; the first error is
 * kept). */
int instant_reattach (struct catalog *cat, const char *home);

/* End a session: destroy (and undefine) its domain, stop its supervisor and
 * nbdkit, remove its sockets; with discard, remove its overlays too (they
 * are kept otherwise, and their paths stay in the row) and release the
 * point's hold (a kept overlay is worthless without its point, so the hold
 * stays with it).  A migrated session is not touched (the VM now lives on
 * production storage): error.  A failed or half-started session is cleaned
 * up.  The domain is destroyed only if it is the session's: its UUID and
 * name, and its disks exactly the session's overlays; another domain that
 * took them is left alone, with an error naming it and its disk.  uri:
 * NULL = the session's. */
int instant_stop (struct catalog *cat, int64_t id, const char *uri,
                  bool discard);
/* The same with a warning callback (a domain or hold left behind while
 * stopping; instant_stop and warn NULL: "bootback: warning: LINE" on
 * stderr). */
struct instant_stop_opts {
  const char *uri;          /* NULL = the session's */
  bool discard;
  const struct repo_open_opts *repo_open;  /* NULL = the defaults */
  void (*warn) (void *opaque, const char *line);
  void *warn_opaque;
};
int instant_stop_with (struct catalog *cat, int64_t id,
                       const struct instant_stop_opts *o);

/* Keep the boot trace session id recorded (trace.c) from its boot's start,
 * from_ago seconds ago, to its guest's readiness, upto_ago seconds ago
 * (the lab's app-ready; instant itself keeps it at the agent's answer):
 * in the catalog and beside the point, for the VM's next boots to
 * prefetch.  Never fails: warnings to warn (NULL: stderr). */
void instant_trace_keep (struct catalog *cat, int64_t id, double from_ago,
                         double upto_ago, const struct repo_open_opts *ro,
                         void (*warn) (void *opaque, const char *line),
                         void *opaque);

/* Is h the hold of a session of this host whose catalog is cat (home)
 * that no longer needs it: no such session, or the session is failed,
 * migrated, stopped with its overlays discarded, or holds another hold?
 * Holds of other hosts or homes are never stale here. */
bool instant_hold_stale (struct catalog *cat, const char *home,
                         const struct repo_hold *h);

/* ---- migration (migrate.c) ----------------------------------------------- */

struct virt_ceph_opts;
struct instant_migrate_opts {
  const char *to;           /* a directory (one image per disk, named
                               DOMAIN-DISK.FORMAT) or, for a one-disk VM, a
                               file; must not exist yet */
  /* Instead of to: existing raw disks to bring up to date (delta.c),
   * NULL-terminated: one "FILE" for a one-disk VM, or "TARGET=FILE" for
   * every disk.  Only the chunks that differ from the point are written;
   * a failure gives each its content from before back. */
  const char *const *onto;
  const char *format;       /* "qcow2" (default) or "raw"; --onto: NULL */
  /* to = "rbd:POOL[/PREFIX]": new raw Ceph RBD images PREFIXDOMAIN-DISK,
   * reached as this cephx user (NULL: librados's defaults). */
  const struct virt_ceph_opts *ceph;
  const char *uri;          /* NULL = the session's */
  const struct repo_open_opts *repo_open;  /* NULL = the defaults */
  /* Progress: bytes copied and total over all disks, called from the
   * event loop a few times a second while copying; may be NULL. */
  void (*progress) (void *opaque, uint64_t done, uint64_t total);
  void *progress_opaque;
  /* If not NULL and it becomes non-zero (a signal handler sets it) before
   * the pivot, the copy is abandoned as if it had failed. */
  volatile int *cancel;
  /* One full block copy of everything (backup and writes) instead of the
   * pre-copy plus a shallow block copy: about twice as slow
   * (BOOTBACK_MIGRATE_MODE=full in the CLI). */
  bool full_copy;
  /* The block copies' granularity and buffer size (0: QEMU's defaults)
   * and bandwidth limit in bytes/s (0: none; for tests).  The CLI reads
   * BOOTBACK_MIGRATE_GRANULARITY, _BUF_SIZE and _BANDWIDTH. */
  uint64_t granularity, buf_size, bandwidth;
  /* A remote session (remote-migrate.c): the host's pool the new images
   * go to (NULL: the session's own); to is not used then. */
  const char *storage_pool;
  /* Called with a warning (the point's hold left behind); NULL =
   * "bootback: warning: LINE" on stderr. */
  void (*warn) (void *opaque, const char *line);
  void *warn_opaque;
};
struct instant_migrate_result {
  double seconds_copy;      /* start of copy to every disk READY */
  double seconds_pivot;     /* pivot of every disk */
  uint64_t bytes;           /* allocated in the new images */
  /* onto: chunks looked at and written (those that differed), over all
   * disks, and the seconds the delta took. */
  uint64_t delta_chunks, delta_written;
  double seconds_delta, seconds_hash;  /* the delta, of which hashing */
  uint64_t delta_hashed;    /* chunks read and compared, over all disks */
  /* Per disk: how its chunks were chosen (its qcow2's dirty bitmap of the
   * point's checkpoint used, or why not). */
  char delta_how[INSTANT_MAX_DISKS][512];
  uint64_t delta_written_disk[INSTANT_MAX_DISKS];
};

/* Move a running session's disks to production storage: the backup of each
 * disk copied into a new image with qemu-img (fast, while the guest runs),
 * then a shallow libvirt block copy (transient job) mirroring the guest's
 * writes on top (o->full_copy: one block copy of everything),
 * wait for the READY events (libvirt event loop), pivot every disk, make sure the
 * persistent definition names the new images, then stop the supervisor and
 * nbdkit and remove the overlays.  The guest keeps running throughout.
 * State: running -> migrating -> migrated.  If a copy fails (target full,
 * unwritable, gone) every block job is aborted without pivot, the images
 * this attempt created are removed, the VM keeps running from the backup
 * with nothing lost, the state goes back to running, and -1 is returned
 * with the reason (e.g. "no space left on /srv/prod"); it may be retried.
 * With o->onto the pre-copy is a delta onto existing disks (delta.c),
 * which a failure before the pivot undoes (each disk as it was). */
int instant_migrate (struct catalog *cat, int64_t id,
                     const struct instant_migrate_opts *o,
                     struct instant_migrate_result *res);

/* ---- prune (prune.c) ------------------------------------------------------ */

/* What became of one point. */
struct instant_prune_item {
  const char *vm, *id;
  bool removed;             /* removed (dry_run: would be) */
  const char *reason;       /* the rule that keeps it, or the holder; NULL */
  const char *held_by;      /* who holds it, or NULL */
};
struct instant_prune {
  const char *home;         /* the catalog's state directory */
  int64_t repo_id;          /* r's id in the catalog */
  const char *vm;           /* NULL: every VM */
  struct repo_keep keep;    /* the rules; at least one */
  bool dry_run;
  /* Each point, newest first per VM; -1 stops with that. */
  int (*decided) (void *opaque, const struct instant_prune_item *it);
  void *decided_opaque;
  /* A stale hold removed ("removed the stale hold of VM@ID by OWNER"). */
  void (*note) (void *opaque, const char *line);
  void *opaque;
  size_t removed, kept;     /* out */
};
/* Remove the points of r no rule of o keeps, unless protected or held by
 * a live hold (stale ones are removed first).  Only manifests and
 * indexes go (gc frees chunks).  -1 with the error set. */
int instant_prune (struct catalog *cat, struct repo *r, struct instant_prune *o);

/* ---- the environment (env.c) --------------------------------------------- */

/* o's host settings from BOOTBACK_DOMAIN_TYPE and BOOTBACK_OVERLAY_MIN_FREE. */
void instant_opts_env (struct instant_opts *o);
/* o's copy settings from BOOTBACK_MIGRATE_MODE, _GRANULARITY, _BUF_SIZE
 * and _BANDWIDTH. */
void instant_migrate_opts_env (struct instant_migrate_opts *o);

/* ---- the supervisor (supervise.c) ---------------------------------------- */

/* The body of the hidden `bootback supervise ID` command: become the
 * session's supervisor.  Starts (or adopts) one bootback nbdkit and one
 * front nbdkit per disk, writes "ready\n" to ready_fd (if >= 0) once every
 * socket accepts connections (or "error: ...\n" and returns 1), then
 * restarts any of them that dies, on the same socket, until SIGTERM; then
 * stops them all, removes the sockets and returns 0. */
int instant_supervise (const char *home, int64_t id, int ready_fd);

/* The pool of repository repo (HOME/pools/KEY): started with a cache of
 * cache bytes unless it runs; *out says how to reach it.  Sessions using
 * it must start within 2 minutes (it ends when none uses it).  -1 with
 * error. */
int instant_pool_ensure (const char *home, const char *repo, int64_t cache,
                         struct instant_pool *out);
/* The body of the hidden `bootback supervise pool:KEY`: keep the pool's
 * backend serving until no session uses it (pool.c).  0, or 1 with error
 * (also written to ready_fd as "error: WHY" if it could not start). */
int instant_pool_supervise (const char *home, const char *key, int ready_fd);

/* ---- the domain XML rewrite, pure (domain-xml.c) ------------------------- */

struct instant_xml_disk {
  const char *name;         /* disk of the point, e.g. "vda" */
  const char *overlay;      /* qcow2 overlay path */
  const char *socket;       /* NBD unix socket of the backing */
  const char *host;         /* or NBD over TCP at host:port (remote), */
  int port;
  bool tls;                 /* with TLS (tls='yes') */
  char target[DISK_NAME_MAX + 1]; /* out: the device it became ("" if none) */
};
enum instant_net { INSTANT_NET_KEEP, INSTANT_NET_NONE, INSTANT_NET_NETWORK,
                   INSTANT_NET_BRIDGE };
/* What the names of a lab's bridge and veths begin with (lab/net.c): a
 * point's saved interfaces may not name such a bridge (domain-xml.c). */
#define INSTANT_LAB_NET_PREFIX "bbl"
/* The <memory> of a domain XML in MiB; 0 if it has none that parses. */
uint64_t instant_xml_memory_mib (const char *xml);

struct instant_xml_spec {
  const char *name;         /* domain name (required) */
  const char *uuid;         /* new UUID, or NULL to keep the saved one */
  bool new_macs;            /* new MACs 52:54:00:xx:xx:xx from mac_seed */
  uint32_t mac_seed;
  enum instant_net net;
  const char *net_source;   /* network or bridge name */
  const char *domain_type;  /* "qemu", "kvm", or NULL to keep */
  const char *console_log;  /* file serial/console ports write here */
  size_t ndisks;
  struct instant_xml_disk *disks;
  bool allow_passthrough;   /* skip the allow-list (sanitize.c) */
  bool bios_serial;         /* the firmware's messages on the serial
                               console too (SeaBIOS; not with a UEFI
                               loader): the lab reads them */
  uint64_t memory_cap_mib;  /* a saved <memory>/<currentMemory> above
                               this is lowered to it (<maxMemory>, memory
                               hotplug, goes); 0: no cap */
};

/* Rewrite a saved domain XML for this host and session (see domain-xml.c
 * for every rule; unless spec->allow_passthrough, the allow-list of
 * sanitize.c removes or replaces what the host would act on, a note for
 * each).  Returns the new XML (malloc'd) or NULL with the error
 * set (not XML, not a domain).  Each note goes to note (may be NULL).
 * Sets disks[i].target.  Pure: no I/O, no libvirt.  Thread-safe. */
char *instant_xml_rewrite (const char *xml, struct instant_xml_spec *spec,
                           void (*note) (void *, const char *), void *opaque);

/* Check a final domain XML against the allow-list (sanitize.c): disks
 * only spec's overlays (on their NBD sockets; a disk with a NULL socket
 * has no backing store in the XML), file char devices only to
 * spec->console_log.  0 if everything in it is allowed, else -1 with the
 * error naming the first thing that is not.  Pure. */
int instant_xml_check (const char *xml, const struct instant_xml_spec *spec);

/* A sensible definition for a point imported without domain XML: one
 * virtio disk per point disk (in order), one virtio NIC on the libvirt
 * network "default" (the spec's network replaces it), serial console, guest
 * agent channel, VNC on a unix socket.  Give the result to
 * instant_xml_rewrite.  malloc'd; never NULL. */
char *instant_xml_default (const char *vm, const char *domain_type,
                           int memory_mib, size_t ndisks,
                           const char *const *disk_names);

/* Give every <disk> whose <target dev> is target the file image of format
 * (e.g. after a migration); drops its <backingStore>.  Returns new XML
 * (malloc'd) or NULL with the error set.  Pure. */
char *instant_xml_set_disk (const char *xml, const char *target,
                            const char *image, const char *format);

#endif /* BOOTBACK_INSTANT_H */
