/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libvirt calls of bootback (virt.h says what lives here and why).
 * Each function is the libvirt call plus the error text bootback reports
 * ("WHAT: libvirt's message") and, where a call is several, the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "recovery/util/util.h"
#include "recovery/virt/virt.h"

/* ---- set-up, errors, connections ------------------------------------------------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* libvirt prints every error to stderr unless given a handler. */
static void
quiet (void *opaque, virErrorPtr e)
{
}

static void
init (void)
{
  struct sigaction sa;

  virSetErrorFunc (NULL, quiet);
  virInitialize ();
  virEventRegisterDefaultImpl ();
  /* libvirt writes its sockets with write (): a connection libvirtd has
   * closed would kill the process with SIGPIPE instead of failing the
   * call.  libvirt asks its applications to ignore the signal. */
  if (sigaction (SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal (SIGPIPE, SIG_IGN);
}

void
virt_init (void)
{
  pthread_once (&init_once, init);
}

const char *
virt_last_error (void)
{
  const char *m = virGetLastErrorMessage ();

  return m && *m ? m : "unknown libvirt error";
}

/* libvirt's message of this thread's last failure in here. */
static __thread char failure[1024];

/* Keep libvirt's message of the failure that just happened, before
 * anything else calls libvirt (even a getter such as virDomainGetName
 * resets libvirt's last error).  Printable ASCII only: libvirt passes a
 * guest agent's error text on as the guest wrote it, and every message
 * here may end up on a terminal. */
static void
keep_failure (void)
{
  char *p;

  snprintf (failure, sizeof failure, "%s", virt_last_error ());
  for (p = failure; *p; p++)
    if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
      *p = *p == '\n' || *p == '\t' ? ' ' : '?';
}

const char *
virt_failure (void)
{
  return failure[0] ? failure : "unknown libvirt error";
}

void
virt_error_set (const char *fmt, ...)
{
  char what[512];
  va_list ap;

  keep_failure ();
  va_start (ap, fmt);
  vsnprintf (what, sizeof what, fmt, ap);
  va_end (ap);
  error_setx ("%s: %s", what, failure);
}

/* virt_error_set where the message names an object whose name libvirt
 * must be asked for (name_expr, the first %s of fmt): libvirt's message
 * is kept first. */
#define named_error(name_expr, fmt, ...)                                  \
  do {                                                                    \
    keep_failure ();                                                      \
    error_setx (fmt ": %s", name_expr, ##__VA_ARGS__, failure);           \
  } while (0)

/* The name of a domain for a message ("?" if libvirt has none). */
static const char *
dname (virDomainPtr d)
{
  const char *n = d ? virDomainGetName (d) : NULL;

  return n ? n : "?";
}

/* A failure on domain d, its name the first %s of fmt. */
#define domain_error(d, fmt, ...) named_error (dname (d), fmt, ##__VA_ARGS__)

virConnectPtr
virt_connect (const char *uri)
{
  virConnectPtr c;
  const char *env;

  /* With an event implementation registered, a connection does keepalive:
   * libvirtd closes it after 30 s of unanswered pings unless the loop
   * runs.  So it always runs while bootback talks to libvirt. */
  if (virt_event_thread_start () == -1)
    return NULL;
  if (uri && !*uri)
    uri = NULL;
  c = virConnectOpenAuth (uri, virConnectAuthPtrDefault, 0);
  if (!c) {
    env = getenv ("LIBVIRT_DEFAULT_URI");
    virt_error_set ("cannot connect to libvirt (%s)",
                    uri ? uri : env ? env : "default URI");
    return NULL;
  }
  return c;
}

void
virt_close (virConnectPtr c)
{
  if (c)
    virConnectClose (c);
}

static void
version_text (unsigned long v, char *buf, size_t len)
{
  snprintf (buf, len, "%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
}

/* The host's storage pools, by name, at most VIRT_HOST_POOLS_MAX. */
static int
host_pools (virConnectPtr c, struct virt_host_info *i)
{
  virStoragePoolPtr *pools = NULL;
  int n = virConnectListAllStoragePools (c, &pools, 0), k;

  if (n < 0) {
    virt_error_set ("host: storage pools");
    return -1;
  }
  for (k = 0; k < n; k++) {
    virStoragePoolInfo pi;
    if (i->npools < VIRT_HOST_POOLS_MAX) {
      struct virt_host_pool *p = &i->pools[i->npools++];
      snprintf (p->name, sizeof p->name, "%s", virStoragePoolGetName (pools[k]));
      p->active = virStoragePoolIsActive (pools[k]) == 1;
      if (p->active && virStoragePoolGetInfo (pools[k], &pi) == 0) {
        p->capacity = pi.capacity;
        p->available = pi.available;
      }
    }
    virStoragePoolFree (pools[k]);
  }
  free (pools);
  return 0;
}

int
virt_host_info (virConnectPtr c, struct virt_host_info *i)
{
  unsigned long lv = 0, hv = 0;
  unsigned long long fm;
  virNodeInfo ni;
  char *h;
  const char *type;

  memset (i, 0, sizeof *i);
  if (virConnectGetLibVersion (c, &lv) == -1 || virConnectGetVersion (c, &hv) == -1) {
    virt_error_set ("host: versions");
    return -1;
  }
  version_text (lv, i->libvirt_version, sizeof i->libvirt_version);
  version_text (hv, i->hypervisor_version, sizeof i->hypervisor_version);
  type = virConnectGetType (c);
  snprintf (i->hypervisor, sizeof i->hypervisor, "%s", type ? type : "");
  h = virConnectGetHostname (c);
  snprintf (i->hostname, sizeof i->hostname, "%s", h ? h : "");
  free (h);
  fm = virNodeGetFreeMemory (c);
  if (virNodeGetInfo (c, &ni) == -1 || fm == 0) {
    virt_error_set ("host: memory");
    return -1;
  }
  i->free_memory = fm;
  i->memory = (uint64_t) ni.memory * 1024;
  i->cpus = ni.cpus;
  return host_pools (c, i);
}

static void *
event_loop (void *arg)
{
  for (;;)
    virEventRunDefaultImpl ();
  return NULL;
}

int
virt_event_thread_start (void)
{
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static bool started;
  pthread_t t;
  int err = 0;

  virt_init ();
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    if (!started) {
      err = pthread_create (&t, NULL, event_loop, NULL);
      if (err == 0) {
        pthread_detach (t);
        started = true;
      }
    }
  }
  if (err) {
    error_set (err, "event loop thread");
    return -1;
  }
  return 0;
}

/* ---- lookups ----------------------------------------------------------------------- */

virDomainPtr
virt_domain_by_name (virConnectPtr c, const char *name)
{
  if (!c || !name)
    return NULL;
  return virDomainLookupByName (c, name);
}

virDomainPtr
virt_domain_by_uuid (virConnectPtr c, const char *uuid)
{
  if (!c || !uuid || !*uuid)
    return NULL;
  return virDomainLookupByUUIDString (c, uuid);
}

int
virt_domain_list (virConnectPtr c, virDomainPtr **doms)
{
  int n = virConnectListAllDomains (c, doms, 0);

  if (n < 0) {
    *doms = NULL;
    virt_error_set ("list domains");
    return -1;
  }
  return n;
}

void
virt_domain_list_free (virDomainPtr *doms, int n)
{
  int i;

  for (i = 0; doms && i < n; i++)
    virDomainFree (doms[i]);
  free (doms);
}

int
virt_network_active (virConnectPtr c, const char *name)
{
  CLEANUP_VIR_NETWORK virNetworkPtr n = virNetworkLookupByName (c, name);

  if (!n) {
    virt_error_set ("network %s", name);
    return -1;
  }
  return virNetworkIsActive (n) == 1 ? 1 : 0;
}

/* ---- domain lifecycle ------------------------------------------------------------- */

virDomainPtr
virt_domain_create_xml (virConnectPtr c, const char *xml, const char *name)
{
  virDomainPtr d = virDomainCreateXML (c, xml, 0);

  if (!d)
    virt_error_set ("create domain %s", name);
  return d;
}

virDomainPtr
virt_domain_define_xml (virConnectPtr c, const char *xml, const char *name)
{
  virDomainPtr d = virDomainDefineXML (c, xml);

  if (!d)
    virt_error_set ("define domain %s", name);
  return d;
}

int
virt_domain_start (virDomainPtr d)
{
  if (virDomainCreate (d) == -1) {
    domain_error (d, "start domain %s");
    return -1;
  }
  return 0;
}

int
virt_domain_destroy (virDomainPtr d)
{
  /* A domain that stops by itself meanwhile makes destroy fail: fine. */
  if (virDomainIsActive (d) == 1 && virDomainDestroy (d) == -1 &&
      virDomainIsActive (d) == 1) {
    domain_error (d, "destroy domain %s");
    return -1;
  }
  return 0;
}

int
virt_domain_undefine (virDomainPtr d, unsigned flags)
{
  if (virDomainIsPersistent (d) != 1)
    return 0;
  if (virDomainUndefineFlags (d, flags) == 0 || virDomainUndefine (d) == 0)
    return 0;
  domain_error (d, "undefine domain %s");
  return -1;
}

char *
virt_domain_xml (virDomainPtr d, unsigned flags)
{
  char *x = virDomainGetXMLDesc (d, flags);

  if (!x)
    domain_error (d, "domain %s: cannot read its XML");
  return x;
}

int
virt_domain_state (virDomainPtr d, int *reason)
{
  int state, r;

  if (virDomainGetState (d, &state, &r, 0) == -1) {
    domain_error (d, "domain %s: state");
    return -1;
  }
  if (reason)
    *reason = r;
  return state;
}

const char *
virt_state_name (int state)
{
  static const char *const names[] = {
    [VIR_DOMAIN_NOSTATE] = "no state", [VIR_DOMAIN_RUNNING] = "running",
    [VIR_DOMAIN_BLOCKED] = "blocked", [VIR_DOMAIN_PAUSED] = "paused",
    [VIR_DOMAIN_SHUTDOWN] = "shutting down", [VIR_DOMAIN_SHUTOFF] = "shut off",
    [VIR_DOMAIN_CRASHED] = "crashed", [VIR_DOMAIN_PMSUSPENDED] = "suspended",
  };

  if (state >= 0 && (size_t) state < sizeof names / sizeof names[0] && names[state])
    return names[state];
  return "unknown";
}

char *
virt_domain_metadata (virDomainPtr d, const char *ns_uri)
{
  unsigned where = virDomainIsPersistent (d) == 1
    ? VIR_DOMAIN_AFFECT_CONFIG : VIR_DOMAIN_AFFECT_LIVE;
  char *m = virDomainGetMetadata (d, VIR_DOMAIN_METADATA_ELEMENT, ns_uri, where);

  if (!m)
    domain_error (d, "domain %s: metadata %s", ns_uri);
  return m;
}

/* ---- block jobs ------------------------------------------------------------------- */

int
virt_block_copy (virDomainPtr d, const char *disk, const char *dest_xml,
                 const struct virt_copy_params *p, unsigned flags)
{
  virTypedParameterPtr params = NULL;
  int nparams = 0, max = 0, r;

  if (p && p->granularity)
    virTypedParamsAddUInt (&params, &nparams, &max, VIR_DOMAIN_BLOCK_COPY_GRANULARITY,
                           (unsigned) p->granularity);
  if (p && p->buf_size)
    virTypedParamsAddULLong (&params, &nparams, &max, VIR_DOMAIN_BLOCK_COPY_BUF_SIZE,
                             p->buf_size);
  if (p && p->bandwidth)
    virTypedParamsAddULLong (&params, &nparams, &max, VIR_DOMAIN_BLOCK_COPY_BANDWIDTH,
                             p->bandwidth);
  r = virDomainBlockCopy (d, disk, dest_xml, params, nparams, flags);
  if (r == -1)
    virt_error_set ("block copy of %s", disk);
  virTypedParamsFree (params, nparams);
  return r == -1 ? -1 : 0;
}

int
virt_block_job_info (virDomainPtr d, const char *disk, virDomainBlockJobInfo *info)
{
  virDomainBlockJobInfo local;
  int r = virDomainGetBlockJobInfo (d, disk, info ? info : &local, 0);

  if (r < 0) {
    virt_error_set ("block job of %s", disk);
    return -1;
  }
  return r == 1 ? 1 : 0;
}

int
virt_block_job_abort (virDomainPtr d, const char *disk, bool pivot)
{
  if (virDomainBlockJobAbort (d, disk, pivot ? VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT
                                             : VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC) == -1) {
    if (pivot)
      virt_error_set ("pivot of %s", disk);
    else
      virt_error_set ("abort the block job of %s", disk);
    return -1;
  }
  return 0;
}

int
virt_block_job_abort_wait (virDomainPtr d, const char *disk, double secs)
{
  double end = now_monotonic () + secs;
  int r = virt_block_job_info (d, disk, NULL);

  if (r <= 0)
    return r;
  virt_block_job_abort (d, disk, false);
  while ((r = virt_block_job_info (d, disk, NULL)) == 1 && now_monotonic () < end)
    usleep (50000);
  if (r == 1) {
    error_setx ("the block job of %s did not end within %.0f s", disk, secs);
    return -1;
  }
  return r;
}

int
virt_block_job_events (virConnectPtr c, virDomainPtr d,
                       virConnectDomainEventBlockJobCallback cb, void *opaque)
{
  int id = virConnectDomainEventRegisterAny (c, d, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                             VIR_DOMAIN_EVENT_CALLBACK (cb), opaque, NULL);

  if (id < 0)
    virt_error_set ("register for block job events");
  return id < 0 ? -1 : id;
}

void
virt_events_deregister (virConnectPtr c, int id)
{
  if (c && id >= 0)
    virConnectDomainEventDeregisterAny (c, id);
}

int64_t
virt_block_reads (virDomainPtr d, int64_t *bytes)
{
  virDomainBlockStatsStruct st;

  /* An empty path sums every disk (QEMU driver). */
  if (virDomainBlockStats (d, "", &st, sizeof st) == -1) {
    domain_error (d, "%s: block stats");
    return -1;
  }
  if (bytes)
    *bytes = st.rd_bytes;
  return st.rd_req;
}

int
virt_block_info (virDomainPtr d, const char *disk, virDomainBlockInfo *info)
{
  if (virDomainGetBlockInfo (d, disk, info, 0) == -1) {
    domain_error (d, "%s: block info of %s", disk);
    return -1;
  }
  return 0;
}

/* ---- guest agent ------------------------------------------------------------------- */

char *
virt_agent_command (virDomainPtr d, const char *cmd, int timeout_s)
{
  char *r = virDomainQemuAgentCommand (d, cmd, timeout_s < 1 ? 1 : timeout_s, 0);

  if (!r)
    virt_error_set ("guest agent");
  return r;
}

int
virt_agent_wait (virDomainPtr d, double timeout_s)
{
  double end = now_monotonic () + timeout_s;
  char *r;

  while (now_monotonic () < end) {
    r = virDomainQemuAgentCommand (d, "{\"execute\":\"guest-ping\"}", 2, 0);
    if (r) {
      free (r);
      return 0;
    }
    if (virDomainIsActive (d) != 1)
      return 1;
    usleep (200000);
  }
  return 1;
}

/* ---- backups ----------------------------------------------------------------------- */

int
virt_fs_freeze (virDomainPtr d)
{
  if (virDomainFSFreeze (d, NULL, 0, 0) < 0) {
    domain_error (d, "freeze the file systems of %s");
    return -1;
  }
  return 0;
}

int
virt_fs_thaw (virDomainPtr d)
{
  if (virDomainFSThaw (d, NULL, 0, 0) < 0) {
    domain_error (d, "thaw the file systems of %s");
    return -1;
  }
  return 0;
}

int
virt_backup_begin (virDomainPtr d, const char *backup_xml, const char *checkpoint_xml)
{
  if (virDomainBackupBegin (d, backup_xml, checkpoint_xml, 0) == -1) {
    domain_error (d, "start the backup job of %s");
    return -1;
  }
  return 0;
}

char *
virt_backup_xml (virDomainPtr d)
{
  char *x = virDomainBackupGetXMLDesc (d, 0);

  if (!x)
    domain_error (d, "%s: backup job XML");
  return x;
}

int
virt_job_abort (virDomainPtr d)
{
  if (virDomainAbortJob (d) == -1) {
    domain_error (d, "end the job of %s");
    return -1;
  }
  return 0;
}

virDomainCheckpointPtr
virt_checkpoint_by_name (virDomainPtr d, const char *name)
{
  return virDomainCheckpointLookupByName (d, name, 0);
}

int
virt_checkpoint_list (virDomainPtr d, virDomainCheckpointPtr **cps)
{
  int n = virDomainListAllCheckpoints (d, cps, 0);

  if (n < 0) {
    *cps = NULL;
    domain_error (d, "%s: list checkpoints");
    return -1;
  }
  return n;
}

void
virt_checkpoint_list_free (virDomainCheckpointPtr *cps, int n)
{
  int i;

  for (i = 0; cps && i < n; i++)
    virDomainCheckpointFree (cps[i]);
  free (cps);
}

static const char *
cpname (virDomainCheckpointPtr cp)
{
  const char *n = virDomainCheckpointGetName (cp);

  return n ? n : "?";
}

char *
virt_checkpoint_xml (virDomainCheckpointPtr cp)
{
  char *x = virDomainCheckpointGetXMLDesc (cp, 0);

  if (!x)
    named_error (cpname (cp), "checkpoint %s: cannot read its XML");
  return x;
}

int
virt_checkpoint_delete (virDomainCheckpointPtr cp, bool metadata_only)
{
  unsigned flags = metadata_only ? VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY : 0;

  if (virDomainCheckpointDelete (cp, flags) == -1) {
    named_error (cpname (cp), "delete checkpoint %s");
    return -1;
  }
  return 0;
}

/* ---- console ----------------------------------------------------------------------- */

int
virt_screenshot (virDomainPtr d, unsigned char **data, size_t *len, char **mime)
{
  CLEANUP_VIR_STREAM virStreamPtr st = virStreamNew (virDomainGetConnect (d), 0);
  unsigned char *p = NULL;
  size_t n = 0, cap = 0;
  int got;

  *data = NULL;
  *len = 0;
  *mime = NULL;
  if (!st || !(*mime = virDomainScreenshot (d, st, 0, 0))) {
    virt_error_set ("screenshot");
    return -1;
  }
  for (;;) {
    if (cap - n < 65536) {
      cap = cap ? cap * 2 : 1 << 20;
      p = xrealloc (p, cap);
    }
    got = n >= VIRT_SCREENSHOT_MAX ? -2 : virStreamRecv (st, (char *) p + n, cap - n);
    if (got == -2)
      error_setx ("screenshot: larger than %d MiB (the guest's screen)",
                  VIRT_SCREENSHOT_MAX >> 20);
    if (got < 0) {
      if (got == -1)
        virt_error_set ("screenshot");
      virStreamAbort (st);
      free (p);
      free (*mime);
      *mime = NULL;
      return -1;
    }
    if (got == 0)
      break;
    n += got;
  }
  virStreamFinish (st);
  *data = p;
  *len = n;
  return 0;
}

/* ---- sandboxes: pause, snapshots, serial console ------------------------------ */

int
virt_domain_suspend (virDomainPtr d)
{
  if (virDomainSuspend (d) == -1) {
    domain_error (d, "pause domain %s");
    return -1;
  }
  return 0;
}

int
virt_domain_resume (virDomainPtr d)
{
  if (virDomainResume (d) == -1) {
    domain_error (d, "resume domain %s");
    return -1;
  }
  return 0;
}

int
virt_snapshot_create (virDomainPtr d, const char *name)
{
  CLEANUP_FREE char *xml = xasprintf ("<domainsnapshot><name>%s</name></domainsnapshot>",
                                      name);
  virDomainSnapshotPtr sn;

  /* name is checked by the caller (name_is_valid): nothing to escape */
  sn = virDomainSnapshotCreateXML (d, xml, VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
  if (!sn) {
    named_error (name, "snapshot %s of %s", dname (d));
    return -1;
  }
  virDomainSnapshotFree (sn);
  return 0;
}

int
virt_snapshot_exists (virDomainPtr d, const char *name)
{
  virDomainSnapshotPtr sn = virDomainSnapshotLookupByName (d, name, 0);

  if (!sn)
    return 0;
  virDomainSnapshotFree (sn);
  return 1;
}

int
virt_snapshot_revert (virDomainPtr d, const char *name)
{
  virDomainSnapshotPtr sn = virDomainSnapshotLookupByName (d, name, 0);
  int r = sn ? virDomainRevertToSnapshot (sn, VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING) : -1;

  if (r == -1)
    domain_error (d, "revert %s to snapshot %s", name);
  if (sn)
    virDomainSnapshotFree (sn);
  return r == -1 ? -1 : 0;
}

int
virt_snapshot_delete (virDomainPtr d, const char *name)
{
  virDomainSnapshotPtr sn = virDomainSnapshotLookupByName (d, name, 0);
  int r = sn ? virDomainSnapshotDelete (sn, 0) : -1;

  if (r == -1)
    named_error (name, "delete snapshot %s of %s", dname (d));
  if (sn)
    virDomainSnapshotFree (sn);
  return r == -1 ? -1 : 0;
}

virStreamPtr
virt_console_open (virDomainPtr d, bool force)
{
  virStreamPtr st = virStreamNew (virDomainGetConnect (d), VIR_STREAM_NONBLOCK);

  if (!st || virDomainOpenConsole (d, NULL, st, force ? VIR_DOMAIN_CONSOLE_FORCE : 0) == -1) {
    domain_error (d, "console of %s");
    if (st)
      virStreamFree (st);
    return NULL;
  }
  return st;
}

int
virt_stream_recv (virStreamPtr st, char *buf, size_t len)
{
  int n = virStreamRecv (st, buf, len);

  if (n == -1)
    virt_error_set ("console");
  return n;
}

int
virt_stream_send_all (virStreamPtr st, const char *buf, size_t len)
{
  while (len > 0) {
    int n = virStreamSend (st, buf, len);
    if (n == -2) {
      usleep (10000);
      continue;
    }
    if (n < 0) {
      virt_error_set ("console");
      return -1;
    }
    buf += n;
    len -= n;
  }
  return 0;
}

void
virt_stream_close (virStreamPtr st)
{
  if (!st)
    return;
  if (virStreamFinish (st) == -1)
    virStreamAbort (st);
  virStreamFree (st);
}

/* ---- scoped cleanups ------------------------------------------------------------- */

void
virt_cleanup_connect (virConnectPtr *p)
{
  virt_close (*p);
}

void
virt_cleanup_domain (virDomainPtr *p)
{
  if (*p)
    virDomainFree (*p);
}

void
virt_cleanup_checkpoint (virDomainCheckpointPtr *p)
{
  if (*p)
    virDomainCheckpointFree (*p);
}

void
virt_cleanup_network (virNetworkPtr *p)
{
  if (*p)
    virNetworkFree (*p);
}

void
virt_cleanup_stream (virStreamPtr *p)
{
  if (*p)
    virStreamFree (*p);
}

/* ---- remote backup (recovery/ingest/backup-remote.c) ------------------------ */

int
virt_keepalive (virConnectPtr c, int interval, unsigned count)
{
  if (virConnectSetKeepAlive (c, interval, count) == -1) {
    virt_error_set ("libvirt keepalive");
    return -1;
  }
  return 0;
}
