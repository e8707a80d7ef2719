/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * virt: the one home of libvirt in bootback (libbbvirt.a).
 *
 * What lives here: setting libvirt up once per process (its error handler
 * silenced, the default event loop registered), connecting with a URI and
 * authentication, the text of libvirt's last error, the event loop thread,
 * domain lookups and lifecycle (define, create, start, destroy, undefine),
 * block jobs (copy, progress, abort, pivot), guest agent commands, the
 * backup side's checkpoints, backup job and file system freeze, console
 * screenshots, a sandbox's pauses, snapshots and serial console stream,
 * and scoped cleanups for libvirt's objects.  The libxml2
 * helpers every parser of libvirt's XML shares are in recovery/virt/xml.h
 * (no libvirt in them, so the fuzzers build them alone).
 *
 * Why one owner: every part of bootback that talks to libvirt (ingest's
 * backup, instant recovery and migration, the lab, verification) used to
 * open its own connection, install its own silent error handler and spell
 * libvirt's last error its own way.  Remote hosts are next (a URI such as
 * qemu+ssh://host/system, credentials asked for through libvirt's
 * default authentication callback): with one owner, connecting to them,
 * keeping the event loop right and reporting their errors is one change.
 *
 * Rules:
 *  - Every function that fails returns -1 or NULL with bootback's error
 *    set (recovery/util/util.h; docs/design.md, "Errors") in the form
 *    "WHAT: libvirt's message"; libvirt's message alone is
 *    virt_failure () until the next failure in here (libvirt's own last
 *    error, virt_last_error (), is gone with the next libvirt call, even
 *    a getter's).  A caller that calls libvirt directly and words its
 *    error differently calls virt_error_set () itself.
 *  - Lookups do not set the error: a missing domain is often the answer
 *    (a session's VM that is gone), not a failure.
 *  - libvirt's plain getters of an object (virDomainGetName,
 *    virDomainIsActive, virDomainIsPersistent, virDomainGetUUIDString)
 *    may be called directly; what connects, acts on a domain or needs the
 *    error text goes through here.
 *  - virt_connect and virt_event_thread_start call virt_init themselves;
 *    a program needs to call it only to silence libvirt before it uses
 *    nothing else of this library.
 */
#ifndef BOOTBACK_VIRT_H
#define BOOTBACK_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

/* ---- set-up, errors, connections (virt.c) ------------------------------ */

/* Once per process (pthread_once): virInitialize, an error handler that
 * keeps libvirt from printing every error on stderr (bootback reports its
 * own), and libvirt's default event loop implementation (registered
 * before any connection is opened, so events can be had on every one). */
void virt_init (void);

/* libvirt's last error message of this thread ("unknown libvirt error"
 * if libvirt gives no text).  Valid until the next libvirt call. */
const char *virt_last_error (void);

/* libvirt's message of this thread's last failed virt_* call ("unknown
 * libvirt error" if none): what a caller quotes in its own words. */
const char *virt_failure (void);

/* Set bootback's error to "WHAT: libvirt's last error", WHAT formatted
 * (the arguments must not call libvirt: that resets its error). */
void virt_error_set (const char *fmt, ...) __attribute__((format (printf, 1, 2)));

/* Connect to uri (NULL or "" means libvirt's default: $LIBVIRT_DEFAULT_URI
 * or its own choice) with libvirt's default authentication callback, so a
 * remote URI can ask for credentials.  NULL with the error
 * "cannot connect to libvirt (URI): MESSAGE", where URI is uri,
 * $LIBVIRT_DEFAULT_URI or "default URI". */
virConnectPtr virt_connect (const char *uri);
/* virConnectClose; NULL is fine. */
void virt_close (virConnectPtr c);

/* Start the thread that runs libvirt's default event loop (once per
 * process; later calls do nothing).  virt_connect starts it: libvirtd
 * drops a connection whose keepalive pings go unanswered, and events
 * (virt_block_job_events) need it.  -1 with the error set. */
int virt_event_thread_start (void);

/* ---- hosts (virt.c) -------------------------------------------------------- */

/* What `bootback hosts` shows of a connected host. */
#define VIRT_HOST_POOLS_MAX 32
struct virt_host_pool {
  char name[128];
  bool active;
  uint64_t capacity, available;     /* bytes; 0 if inactive */
};
struct virt_host_info {
  char hostname[256];
  char libvirt_version[32];         /* of the daemon: "9.0.0" */
  char hypervisor[32];              /* "QEMU" */
  char hypervisor_version[32];      /* "7.2.0" */
  uint64_t memory, free_memory;     /* bytes */
  unsigned cpus;
  size_t npools;                    /* at most VIRT_HOST_POOLS_MAX */
  struct virt_host_pool pools[VIRT_HOST_POOLS_MAX];
};
/* Ask the host behind c: 0, or -1 with "host: WHAT: MESSAGE". */
int virt_host_info (virConnectPtr c, struct virt_host_info *i);

/* ---- lookups (virt.c) ----------------------------------------------------- */

/* The domain called name / with this UUID, or NULL (error not set; see the
 * rules above).  uuid NULL or "" gives NULL. */
virDomainPtr virt_domain_by_name (virConnectPtr c, const char *name);
virDomainPtr virt_domain_by_uuid (virConnectPtr c, const char *uuid);

/* Every domain (active or not) into *doms: their number, or -1 with the
 * error "list domains: MESSAGE".  Free with virt_domain_list_free. */
int virt_domain_list (virConnectPtr c, virDomainPtr **doms);
void virt_domain_list_free (virDomainPtr *doms, int n);

/* 1 if libvirt has the network called name and it is active, 0 if it has
 * it inactive, -1 if it has no such network (error "network NAME:
 * MESSAGE"). */
int virt_network_active (virConnectPtr c, const char *name);

/* ---- domain lifecycle (virt.c) -------------------------------------------- */

/* A transient domain from xml, started: NULL with the error
 * "create domain NAME: MESSAGE" (name is for the message). */
virDomainPtr virt_domain_create_xml (virConnectPtr c, const char *xml, const char *name);
/* Define (or redefine) a persistent domain: NULL with the error
 * "define domain NAME: MESSAGE". */
virDomainPtr virt_domain_define_xml (virConnectPtr c, const char *xml, const char *name);
/* Start a defined domain: -1 with the error "start domain NAME: MESSAGE". */
int virt_domain_start (virDomainPtr d);
/* Power off at once if it runs (graceful would only cost time): 0 if it
 * is not running afterwards, -1 with "destroy domain NAME: MESSAGE". */
int virt_domain_destroy (virDomainPtr d);
/* Remove the definition of a persistent domain with flags
 * (VIR_DOMAIN_UNDEFINE_*, e.g. VIRT_UNDEFINE_ALL); if libvirt refuses
 * them, a plain undefine.  0 if the domain was not persistent or is
 * undefined, -1 with "undefine domain NAME: MESSAGE". */
#define VIRT_UNDEFINE_ALL                                            \
  (VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |    \
   VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |                          \
   VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
int virt_domain_undefine (virDomainPtr d, unsigned flags);

/* The domain's XML (flags: VIR_DOMAIN_XML_*, 0 for the live one),
 * malloc'd; NULL with "domain NAME: cannot read its XML: MESSAGE". */
char *virt_domain_xml (virDomainPtr d, unsigned flags);
/* Its state (VIR_DOMAIN_RUNNING, ...; *reason too if not NULL), or -1
 * with "domain NAME: state: MESSAGE". */
int virt_domain_state (virDomainPtr d, int *reason);
/* "running", "shut off", ... for a state; "unknown" for anything else. */
const char *virt_state_name (int state);
/* The element of namespace ns_uri in the domain's <metadata> (of its
 * persistent definition if it has one, else the live one), malloc'd, or
 * NULL (error set) if it has none. */
char *virt_domain_metadata (virDomainPtr d, const char *ns_uri);

/* ---- block jobs (virt.c) -------------------------------------------------- */

/* The tunables of a block copy; 0 leaves QEMU's default (bandwidth 0: no
 * limit). */
struct virt_copy_params {
  uint64_t granularity;        /* bytes, a power of two */
  uint64_t buf_size;           /* bytes */
  uint64_t bandwidth;          /* bytes per second */
};
/* Start copying disk (its target name, "vda") to the destination
 * described by dest_xml (a <disk>), flags VIR_DOMAIN_BLOCK_COPY_*.
 * -1 with "block copy of DISK: MESSAGE". */
int virt_block_copy (virDomainPtr d, const char *disk, const char *dest_xml,
                     const struct virt_copy_params *p, unsigned flags);
/* 1 if disk has a block job (its progress in *info if not NULL), 0 if
 * not, -1 with "block job of DISK: MESSAGE". */
int virt_block_job_info (virDomainPtr d, const char *disk, virDomainBlockJobInfo *info);
/* End disk's block job: pivot (a copy in its mirror phase switches the
 * disk to the copy) or abort (the disk stays on its source; asked, not
 * waited for: a copy whose target holds its writes, a full Ceph pool,
 * would keep a synchronous abort waiting without end; callers poll
 * virt_block_job_info).  -1 with "pivot of DISK: MESSAGE" / "abort the
 * block job of DISK: MESSAGE". */
int virt_block_job_abort (virDomainPtr d, const char *disk, bool pivot);
/* Abort disk's block job if it has one and wait up to secs for it to be
 * gone; 0 if it is, -1 (error set) if not. */
int virt_block_job_abort_wait (virDomainPtr d, const char *disk, double secs);
/* Register cb for d's block job events (VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2;
 * the event thread must run): the callback id, or -1 with "register for
 * block job events: MESSAGE".  virt_events_deregister (c, id) ends it
 * (id < 0 is fine). */
int virt_block_job_events (virConnectPtr c, virDomainPtr d,
                           virConnectDomainEventBlockJobCallback cb, void *opaque);
void virt_events_deregister (virConnectPtr c, int id);
/* Read requests of all the domain's disks together so far (and in *bytes,
 * if not NULL, the bytes they read), or -1 with
 * "DOMAIN: block stats: MESSAGE". */
int64_t virt_block_reads (virDomainPtr d, int64_t *bytes);
/* Capacity, allocation and physical size of disk: -1 with
 * "DOMAIN: block info of DISK: MESSAGE". */
int virt_block_info (virDomainPtr d, const char *disk, virDomainBlockInfo *info);

/* ---- guest agent (virt.c) -------------------------------------------------- */

/* Send the JSON command cmd to the guest agent, waiting at most timeout_s
 * seconds (less than 1 counts as 1): its reply (malloc'd JSON text), or
 * NULL with "guest agent: MESSAGE". */
char *virt_agent_command (virDomainPtr d, const char *cmd, int timeout_s);
/* Ping the agent until it answers or timeout_s passes: 0 if it answered,
 * 1 if not (or the domain stopped running).  Sets no error. */
int virt_agent_wait (virDomainPtr d, double timeout_s);

/* ---- backups (virt.c) -------------------------------------------------------- */

/* Freeze / thaw the guest's file systems through its agent: -1 with
 * "freeze the file systems of NAME: MESSAGE" / "thaw ...". */
int virt_fs_freeze (virDomainPtr d);
int virt_fs_thaw (virDomainPtr d);
/* virDomainBackupBegin (pull mode XML, checkpoint XML or NULL): -1 with
 * "start the backup job of NAME: MESSAGE". */
int virt_backup_begin (virDomainPtr d, const char *backup_xml, const char *checkpoint_xml);
/* The XML of the running backup job, malloc'd; NULL with
 * "NAME: backup job XML: MESSAGE". */
char *virt_backup_xml (virDomainPtr d);
/* End the domain's current job (the backup): -1 with
 * "end the job of NAME: MESSAGE". */
int virt_job_abort (virDomainPtr d);
/* The checkpoint called name, or NULL (error not set, like lookups). */
virDomainCheckpointPtr virt_checkpoint_by_name (virDomainPtr d, const char *name);
/* Every checkpoint of d into *cps: their number, or -1 with
 * "NAME: list checkpoints: MESSAGE".  Free with virt_checkpoint_list_free. */
int virt_checkpoint_list (virDomainPtr d, virDomainCheckpointPtr **cps);
void virt_checkpoint_list_free (virDomainCheckpointPtr *cps, int n);
/* A checkpoint's XML (malloc'd), or NULL with
 * "checkpoint NAME: cannot read its XML: MESSAGE". */
char *virt_checkpoint_xml (virDomainCheckpointPtr cp);
/* Delete a checkpoint (metadata_only: libvirt's record only, not the
 * bitmaps in the images): -1 with "delete checkpoint NAME: MESSAGE". */
int virt_checkpoint_delete (virDomainCheckpointPtr cp, bool metadata_only);

/* ---- console (virt.c) -------------------------------------------------------- */

/* A screenshot of the domain's first screen: *data (malloc'd, *len
 * bytes) in the format *mime (malloc'd, "image/png" or a PPM type), 0; or
 * -1 with "screenshot: MESSAGE".  The guest sets the screen's size: one
 * over VIRT_SCREENSHOT_MAX bytes is refused (a 4K screen as PPM is 24 MiB). */
#define VIRT_SCREENSHOT_MAX (32 << 20)
int virt_screenshot (virDomainPtr d, unsigned char **data, size_t *len, char **mime);

/* ---- sandboxes: pause, snapshots, serial console (virt.c) ------------------ */

/* Pause / resume a running domain: -1 with "pause domain NAME: MESSAGE" /
 * "resume domain NAME: MESSAGE". */
int virt_domain_suspend (virDomainPtr d);
int virt_domain_resume (virDomainPtr d);
/* An internal snapshot called name of the running domain d: its disks
 * (every writable one qcow2) and its memory, kept inside the qcow2
 * images (libvirt's default for a running domain).  -1 with
 * "snapshot NAME of DOMAIN: MESSAGE". */
int virt_snapshot_create (virDomainPtr d, const char *name);
/* 1 if d has a snapshot called name, 0 if not (error not set). */
int virt_snapshot_exists (virDomainPtr d, const char *name);
/* Revert d to its snapshot name and leave it running: -1 with
 * "revert DOMAIN to snapshot NAME: MESSAGE". */
int virt_snapshot_revert (virDomainPtr d, const char *name);
/* Delete d's snapshot name (its data in the images too): -1 with
 * "delete snapshot NAME of DOMAIN: MESSAGE". */
int virt_snapshot_delete (virDomainPtr d, const char *name);

/* A non-blocking stream on d's first serial console (virDomainOpenConsole;
 * the console must be a pty: libvirt cannot attach a file).  force takes
 * it from another client.  NULL with "console of DOMAIN: MESSAGE". */
virStreamPtr virt_console_open (virDomainPtr d, bool force);
/* Up to len bytes from the stream: their number, 0 at its end, -2 if none
 * are there now, -1 with "console: MESSAGE". */
int virt_stream_recv (virStreamPtr st, char *buf, size_t len);
/* Send all len bytes (waiting while the stream is full): 0, or -1 with
 * "console: MESSAGE". */
int virt_stream_send_all (virStreamPtr st, const char *buf, size_t len);
/* End the stream (finish, or abort if that fails); NULL is fine. */
void virt_stream_close (virStreamPtr st);

/* ---- scoped cleanups ----------------------------------------------------------- */

/* Free (close) the object at the end of the scope; NULL is fine:
 *   CLEANUP_VIR_CONNECT virConnectPtr c = virt_connect (uri);
 *   CLEANUP_VIR_DOMAIN virDomainPtr d = virt_domain_by_name (c, name); */
void virt_cleanup_connect (virConnectPtr *p);
void virt_cleanup_domain (virDomainPtr *p);
void virt_cleanup_checkpoint (virDomainCheckpointPtr *p);
void virt_cleanup_network (virNetworkPtr *p);
void virt_cleanup_stream (virStreamPtr *p);
#define CLEANUP_VIR_CONNECT    __attribute__((cleanup (virt_cleanup_connect)))
#define CLEANUP_VIR_DOMAIN     __attribute__((cleanup (virt_cleanup_domain)))
#define CLEANUP_VIR_CHECKPOINT __attribute__((cleanup (virt_cleanup_checkpoint)))
#define CLEANUP_VIR_NETWORK    __attribute__((cleanup (virt_cleanup_network)))
#define CLEANUP_VIR_STREAM     __attribute__((cleanup (virt_cleanup_stream)))

/* ---- remote backup (recovery/ingest/backup-remote.c) ------------------------ */

/* Probe the connection every interval seconds; count probes without an
 * answer close it, so a call to a host that became unreachable fails
 * instead of waiting for TCP to give up (minutes).  -1 with the error. */
int virt_keepalive (virConnectPtr c, int interval, unsigned count);

#endif /* BOOTBACK_VIRT_H */
