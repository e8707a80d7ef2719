/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to recovery/instant: what its files share, sectioned by file.
 */
#ifndef BOOTBACK_INSTANT_INT_H
#define BOOTBACK_INSTANT_INT_H

#include <libvirt/libvirt.h>
#include <libxml/tree.h>

#include "recovery/ingest/ingest.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"
#include "recovery/virt/xml.h"

/* ---- driver.c: what instant recovery asks of libvirt beyond recovery/virt */

/* Check that the network exists here: a libvirt network (active) or a
 * host bridge.  -1 with a message naming it. */
int drv_check_network (virConnectPtr c, enum instant_net net, const char *src);
/* Check the bridges/networks named by the interfaces of xml (keep);
 * bridges only if bridges (those of this host: not for a remote one). */
int drv_check_saved_networks (virConnectPtr c, const char *xml, bool bridges);
/* The session's domain (invariant 7): the one with its UUID, if it is
 * also called its name and its disks are exactly the session's images
 * (disks_are_session in driver.c).  1 and *d (virDomainFree it) if so, 0
 * if there is no such domain or it has another name (someone else's), -1
 * if it has the name and UUID but other disks: the error names the domain
 * and the disk. */
int drv_session_domain (virConnectPtr c, const struct instant_session *s,
                        virDomainPtr *d);
/* Destroy (if running) and undefine (if persistent) the session's domain
 * (drv_session_domain).  0 if gone or never there, or someone else's
 * under another name; -1 if not the session's (left alone) or libvirt
 * fails. */
int drv_remove_domain (virConnectPtr c, const struct instant_session *s);
/* A random RFC 4122 version 4 UUID. */
void drv_new_uuid (char out[UUID_STR_LEN + 1]);

/* ---- domain-xml.c --------------------------------------------------------- */

/* The allow-list (sanitize.c) applied to a parsed domain XML in place:
 * what is not known to be safe is removed or replaced, a note for each. */
void xml_sanitize (xmlDocPtr doc, const struct instant_xml_spec *spec,
                   void (*note) (void *, const char *), void *opaque);

/* The <uuid> of a domain XML (malloc'd), or NULL if it has none or does
 * not parse (no error set). */
char *xml_get_uuid (const char *xml);
/* Every interface's network (kind "network") or bridge (kind "bridge");
 * fn is called for each.  -1 if the XML does not parse. */
int xml_each_interface (const char *xml,
                        void (*fn) (void *, const char *kind, const char *src),
                        void *opaque);
/* Does <disk> target's <source file> equal image? 1 yes, 0 no, -1 error. */
int xml_disk_source_is (const char *xml, const char *target, const char *image);
/* Every <disk>'s target device and top-level source (file, dev, or
 * "PROTOCOL:NAME"; "" if it has none), as two NULL-terminated arrays
 * (strv_free).  Returns the number of disks, -1 if the XML does not parse. */
int xml_disk_sources (const char *xml, char ***targets, char ***sources);

/* ---- session.c -------------------------------------------------------------- */

/* What the caller of a public function gave that the steps under it need:
 * where warnings go, fn (opaque, line), or if fn is NULL stderr as
 * "bootback: warning: LINE" (what callers that pass none got before); how
 * to reach the repository (NULL: the defaults). */
struct instant_caller {
  void (*fn) (void *opaque, const char *line);
  void *opaque;
  const struct repo_open_opts *repo_open;
};
void session_warn (const struct instant_caller *w, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Text for people (a message, an owner) into a field of len bytes: cut
 * if it is longer (a shorter message still says what happened). */
void text_set (char *dst, size_t len, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));
/* A path into a field of len bytes: a path that does not fit would name
 * another file, so it is -1 with the error naming it (ENAMETOOLONG). */
int path_set (char *dst, size_t len, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));

/* Move s to state to, in memory (session_save writes it): the one place a
 * state changes.  -1, s unchanged, with "session ID cannot go from FROM to
 * TO" if the diagram at the top of session.c does not have that move. */
int session_set_state (struct instant_session *s, enum instant_state to);
/* Load row id into s.  -1 if missing. */
int session_load (struct catalog *cat, int64_t id, struct instant_session *s);
/* Write s (state, supervisor_pid, message, data) back; from_state as in
 * catalog_session_update (returns 1 if the state did not match). */
int session_save (struct catalog *cat, const struct instant_session *s,
                  const char *from_state);
/* ---- procs.c: the nbdkits a supervisor keeps serving ----------------------- */

#define PROC_RESTART_WINDOW 60.0  /* seconds */
#define PROC_RESTART_BURST  10    /* restarts in a window before slowing down */
struct proc {
  const char *kind;             /* "backend" or "front" */
  char what[80];                /* for errors: "disk vda", "the pool" */
  char name[80];                /* for the log and file names: "vda", "pool" */
  char **argv;                  /* the nbdkit command (owned) */
  bool external;                /* served by someone else (the pool): never
                                   started, watched or stopped here */
  char socket[256];             /* tcp: nbdkit's own pid file instead */
  bool tcp;                     /* listens on TCP (a remote front): on
                                   remote_front_socket (s, k)'s socket */
  const struct instant_session *s;
  const struct instant_session_disk *k;
  char env[4300];                       /* "NAME=VALUE" for nbdkit, or "" */
  char pidfile[4200];
  char logfile[4200];
  pid_t pid;
  int pidfd;                    /* -1 if not running */
  double restarts[PROC_RESTART_BURST];
  unsigned nrestarts;
};
/* p for an nbdkit serving socket; its pid file and log in dir. */
void proc_init (struct proc *p, const char *kind, const char *what,
                const char *name, const char *socket, const char *dir);
void proc_free (struct proc *p);
/* Start p's nbdkit detached (not waiting for it to serve).  -1 with error. */
int proc_launch (struct proc *p);
/* Wait until p's socket accepts connections (60 s).  -1 with error. */
int proc_wait (struct proc *p);
int proc_start (struct proc *p);
/* Does p serve (its unix socket accepts; tcp: it wrote its pid file)? */
bool proc_serves (const struct proc *p);
/* Adopt a running nbdkit of p's pid file that serves p's socket. */
bool proc_adopt (struct proc *p);
/* p died: restart it (slower if it keeps dying). */
void proc_died (struct proc *p);
/* TERM, then KILL after 5 s; its socket and pid file removed. */
void proc_stop (struct proc *p);
/* A line of the supervisor's log (its stderr). */
void proc_log (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
/* Run `bootback --home HOME supervise ARG --ready-fd 3` as a daemon (a new
 * session, adopted by init, stderr to log) and wait for its "ready PID"
 * (120 s): its pid, or -1 with its "error: WHY". */
pid_t daemon_spawn (const char *home, const char *arg, const char *log);
/* In a daemon: TERM, INT, HUP (stop) and CHLD through a signalfd, and its
 * pid into pidpath (0600).  The signalfd, or -1 with error. */
int daemon_signals (const char *pidpath);
/* Drain the signalfd: true if a signal other than CHLD came (stop). */
bool daemon_quit_signal (int sfd);

/* ---- pool.c: one backend nbdkit shared by pooled sessions ------------------ */

/* Whether s's disks read the pool's backend (not one of their own). */
bool session_pooled (const struct instant_session *s);
/* The pool a pooled session reads, started again if its supervisor is
 * gone (after a restart of the appliance: its backend is adopted if it
 * still serves).  -1 with error. */
int pool_revive (const char *home, const struct instant_session *s);
/* Mark s's directory as using pool key (the pool daemon looks for it). */
int session_pool_mark (const struct instant_session *s, const char *key);

/* Start the supervisor daemon of s and wait until every socket serves;
 * sets s->supervisor_pid.  -1 with the supervisor's reason. */
int supervisor_spawn (struct instant_session *s, const char *home);
/* Stop it (SIGTERM, then SIGKILL), and any nbdkit it left; remove the
 * sockets and pid files.  Never fails. */
void supervisor_stop (struct instant_session *s);
/* Remove the point's hold from the repository (invariant 8) and clear
 * s->hold; a failure is a warning to w (the hold is then stale: prune on
 * this host removes it).  Never fails. */
void session_release_hold (struct instant_session *s, const struct instant_caller *w);

/* ---- trace.c: boot traces (recording, keeping, prefetching) ---------------- */

struct catalog;
struct repo;
/* DIR/DISK.KIND of the session (KIND "trace": the plugin's recording,
 * "prefetch": the list it loads ahead of the guest), malloc'd. */
char *session_trace_path (const struct instant_session *s, const char *disk,
                          const char *kind);
/* Before the supervisor starts: each disk's prefetch list from the VM's
 * newest usable trace (a bad one is a warning to w).  Never fails. */
void session_trace_prepare (struct catalog *cat, struct repo *repo,
                            const struct instant_session *s,
                            const struct instant_caller *w);
/* Each disk's recording from the boot's start (from_ago seconds ago) to
 * the guest's readiness (upto_ago seconds ago), kept in the catalog and
 * beside the point.  Never fails (warnings to w). */
void session_trace_store (struct catalog *cat, struct repo *repo,
                          const struct instant_session *s, double from_ago,
                          double upto_ago, const struct instant_caller *w);

/* ---- delta.c: migrate --onto an existing disk -------------------------------- */

/* The undo journal of target: DIR/.NAME.bootback-undo, into buf.  -1 if
 * it does not fit (error set). */
int delta_journal_path (const char *target, char *buf, size_t len);
/* Open path (an existing raw or qcow2 file, not a symbolic link) as the
 * --onto target of disk k of session s, after every check of delta.c's
 * invariant 1 (conn: to find the domains using it).  format is the
 * user's (--format: "raw" or "qcow2"), or NULL: raw.  A format is never
 * taken from the file's contents (the guest of a raw disk can write any
 * header there): a file that looks like another format than the one
 * given is refused.  Returns the descriptor (O_RDWR, an OFD write lock
 * held: close it before QEMU opens the file), or -1 with the error naming
 * path and what is wrong; nothing written. */
int delta_target_open (const char *path, const char *format,
                       const struct instant_session *s,
                       const struct instant_session_disk *k, virConnectPtr conn);
struct delta_opts {
  /* Progress: base + bytes looked at, of total; from worker threads, one
   * call at a time.  May be NULL. */
  void (*progress) (void *opaque, uint64_t done, uint64_t total);
  void *progress_opaque;
  uint64_t base, total;
  volatile int *cancel;         /* non-zero: stop, "interrupted" */
  /* The point's checkpoint (its manifest's): a qcow2 target's dirty
   * bitmap of that name says which chunks need reading.  NULL or "". */
  const char *checkpoint;
  const char *point;            /* the point's id: its checkpoint's name ends so */
  /* The target is a qcow2 (the user's --format qcow2), else raw: never
   * taken from the file, whose guest may have written a qcow2 header. */
  bool qcow2;
  /* The size the target was checked for (the session's disk): the point's
   * disk must still have it in the repository. */
  uint64_t size;
};
struct delta_stats {
  uint64_t chunks, written;     /* looked at, written (differed) */
  double seconds, seconds_scan; /* all, hashing and comparing */
  uint64_t hashed;              /* chunks read and compared */
  uint64_t dirty, sampled;      /* bitmap: dirty chunks, clean ones checked */
  bool bitmap;                  /* the bitmap was used */
  char how[512];                /* one line: how the chunks were chosen */
};
/* Make the file of fd (target) disk d's content: create the undo journal,
 * write every chunk whose digest differs (its old content journaled
 * first), fsync, append the MIRROR record.  0, or -1 with the error: the
 * journal then stays and delta_undo must run.  st is filled either way. */
int delta_apply (struct repo *r, struct repo_disk *d, int fd, const char *target,
                 const struct delta_opts *o, struct delta_stats *st);
/* ---- delta-qcow2.c: a qcow2 target, through a private qemu-nbd ---- */
struct nbd_handle;
struct delta_qcow2 {
  struct qemu_nbd q;
  struct nbd_handle *nbd;
  char bitmap[128];             /* the usable bitmap exported, "" if none */
};
/* A qcow2 target's checks (qemu-img info): no backing or data file, the
 * virtual size size (of disk).  -1 with the error naming path. */
int delta_qcow2_check (const char *path, uint64_t size, const char *disk);
/* Serve path read-write through a private qemu-nbd and connect; with the
 * bitmap named checkpoint exported if it is usable (and the one backup.c
 * names after point), else why not in note.  -1 with the error. */
int delta_qcow2_open (struct delta_qcow2 *t, const char *path, const char *checkpoint,
                      const char *point, char *note, size_t len);
/* Disconnect, stop qemu-nbd (it flushes and closes the image). */
void delta_qcow2_close (struct delta_qcow2 *t);
/* Into bits (a bitmap of the size's chunks of cs bytes, zeroed by the
 * caller): dirty, every chunk the bitmap marks; else every chunk that
 * reads as zeros (base:allocation).  -1 with the error. */
int delta_qcow2_map (struct delta_qcow2 *t, uint64_t size, uint32_t cs, bool dirty,
                     uint8_t *bits);

/* The disk pivoted: remove target's journal (a missing one is fine). */
int delta_finish (const char *target);
/* Give target its content from before the delta back (invariant 5) and
 * remove the journal; 0 at once if there is none.  Nothing may write
 * target meanwhile (no block job).  The point (of s, disk k) is read if
 * the block copy may have written.  -1 with the error naming target and
 * its journal, which stays (run again). */
int delta_undo (const char *target, const struct instant_session *s,
                const struct instant_session_disk *k, const struct repo_open_opts *ro);

/* ---- remote.c: sessions whose VM runs on another host ------------------------ */

/* Is s remote (its fronts on TCP, its overlays volumes of the host)? */
bool session_remote (const struct instant_session *s);
/* Does o ask for a remote session (another host's URI, --listen or
 * --pool)? */
bool remote_wanted (const struct instant_opts *o);
/* At start, libvirt connected: the listen address, the certificates and
 * the host's pool checked and recorded in s (overlay_dir: the pool's
 * directory on the host).  -1 with the error naming what is wrong. */
int remote_prepare (struct instant_session *s, const struct instant_opts *o,
                    virConnectPtr conn);
/* Disk k's overlay volume is free on the host (-1 if it exists). */
int remote_overlay_free (virConnectPtr conn, const struct instant_session *s,
                         const struct instant_session_disk *k);
/* Disk k's front: its readiness file (k->socket) and a free TCP port. */
int remote_disk_front (const struct instant_session *s,
                       struct instant_session_disk *k);
/* Create disk k's overlay volume in the host's pool. */
int remote_overlay_create (virConnectPtr conn, const struct instant_session *s,
                           struct instant_session_disk *k);
/* Delete the overlay volumes of s that it names and made (overlay_made;
 * a warning to w for one that could not be), through conn (the host the
 * caller acts on: stop's or migrate's --connect), else s->uri.  Never
 * fails. */
void remote_overlays_delete (virConnectPtr conn, const struct instant_session *s,
                             const struct instant_caller *w);
/* The front nbdkit's pid file and TLS options for disk k, appended (it
 * listens on the socket of remote_front_socket). */
void remote_front_args (const struct instant_session *s,
                        const struct instant_session_disk *k, char ***v, size_t *n);
/* Write the GnuTLS configuration of a TLS front to path (0600): the
 * host's, then overrides that make AES-128-GCM the cipher.  1 if
 * written, 0 if the host's is in allow-list mode (the front keeps it:
 * no file), -1 with the error set. */
int remote_front_tls_config (const char *path);
/* Before the front's nbdkit is forked: a socket (close-on-exec)
 * listening on s->listen, k->port, that drops every packet from an
 * address not in s->allow (all of them if none is known; a session
 * recorded before "allow" resolves the URI's host now).  The child makes
 * it fd 3 with LISTEN_FDS and LISTEN_PID (socket activation; procs.c).
 * The descriptor, or -1 with the error set. */
int remote_front_socket (const struct instant_session *s,
                         const struct instant_session_disk *k);
/* remote-migrate.c: instant_migrate of a remote session. */
int remote_migrate (struct catalog *cat, struct instant_session *s,
                    const struct instant_migrate_opts *o,
                    struct instant_migrate_result *res);

#endif /* BOOTBACK_INSTANT_INT_H */
