/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libvirt calls of instant recovery that are not the block copy
 * ("driver" in the libvirt sense, beside the pure conf in domain-xml.c):
 * connecting with the event loop registered, lookups, network checks,
 * removing a session's domain, the guest agent's heartbeat.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "recovery/instant/instant-int.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* libvirt prints every error to stderr unless given a handler. */
static void
quiet (void *opaque, virErrorPtr e)
{
}

static void
init (void)
{
  virInitialize ();
  virSetErrorFunc (NULL, quiet);
  virEventRegisterDefaultImpl ();
}

const char *
drv_error (void)
{
  const char *m = virGetLastErrorMessage ();

  return m && *m ? m : "unknown libvirt error";
}

virConnectPtr
drv_connect (const char *uri)
{
  virConnectPtr c;

  pthread_once (&init_once, init);
  if (uri && !*uri)
    uri = NULL;
  c = virConnectOpen (uri);
  if (!c) {
    error_setx ("cannot connect to libvirt (%s): %s",
                uri ? uri : getenv ("LIBVIRT_DEFAULT_URI") ?
                getenv ("LIBVIRT_DEFAULT_URI") : "default URI", drv_error ());
    return NULL;
  }
  return c;
}

void
drv_close (virConnectPtr c)
{
  if (c)
    virConnectClose (c);
}

static void *
event_loop (void *arg)
{
  for (;;)
    virEventRunDefaultImpl ();
  return NULL;
}

int
drv_event_thread_start (void)
{
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static bool started;
  pthread_t t;
  int err = 0;

  pthread_once (&init_once, init);
  pthread_mutex_lock (&lock);
  if (!started) {
    err = pthread_create (&t, NULL, event_loop, NULL);
    if (err == 0) {
      pthread_detach (t);
      started = true;
    }
  }
  pthread_mutex_unlock (&lock);
  if (err) {
    error_set (err, "event loop thread");
    return -1;
  }
  return 0;
}

virDomainPtr
drv_lookup_uuid (virConnectPtr c, const char *uuid)
{
  if (!uuid || !*uuid)
    return NULL;
  return virDomainLookupByUUIDString (c, uuid);
}

virDomainPtr
drv_lookup_name (virConnectPtr c, const char *name)
{
  return virDomainLookupByName (c, name);
}

static bool
bridge_exists (const char *br)
{
  CLEANUP_FREE char *p = xasprintf ("/sys/class/net/%s/bridge", br);
  struct stat st;

  return stat (p, &st) == 0;
}

int
drv_check_network (virConnectPtr c, enum instant_net net, const char *src)
{
  virNetworkPtr n;
  int active;

  if (net == INSTANT_NET_BRIDGE) {
    if (!bridge_exists (src)) {
      error_setx ("network: there is no bridge %s on this host", src);
      return -1;
    }
    return 0;
  }
  if (net != INSTANT_NET_NETWORK)
    return 0;
  n = virNetworkLookupByName (c, src);
  if (!n) {
    error_setx ("network: libvirt has no network %s (virsh net-list --all); "
                "use --network NET or --network bridge:BR", src);
    return -1;
  }
  active = virNetworkIsActive (n);
  virNetworkFree (n);
  if (active != 1) {
    error_setx ("network: libvirt network %s is not active (virsh net-start %s)",
                src, src);
    return -1;
  }
  return 0;
}

struct net_check {
  virConnectPtr c;
  int bad;
};

static void
check_one (void *opaque, const char *kind, const char *src)
{
  struct net_check *nc = opaque;

  if (nc->bad)
    return;
  if (drv_check_network (nc->c, strcmp (kind, "bridge") == 0 ? INSTANT_NET_BRIDGE
                         : INSTANT_NET_NETWORK, src) == -1) {
    error_prefix ("the saved definition's interface cannot work here (give "
                  "--network NET, bridge:BR or none)");
    nc->bad = 1;
  }
}

int
drv_check_saved_networks (virConnectPtr c, const char *xml)
{
  struct net_check nc = { .c = c };

  if (xml_each_interface (xml, check_one, &nc) == -1)
    return -1;
  return nc.bad ? -1 : 0;
}

/* Is file one of the session's disk images (overlay, or the production
 * image of a disk that was pivoted)? */
static bool
session_file (const struct instant_session *s, const char *file)
{
  size_t i;

  for (i = 0; *file && i < s->ndisks; i++)
    if (strcmp (s->disks[i].overlay, file) == 0 ||
        strcmp (s->disks[i].migrated_to, file) == 0)
      return true;
  return false;
}

/* Every disk of xml is one of the session's images, and every disk of the
 * session (that still has an overlay) is there.  -1 with the error naming
 * the first disk that is not. */
static int
disks_are_session (const struct instant_session *s, const char *xml)
{
  char **targets = NULL, **sources = NULL;
  int n, i, r = 0;
  size_t k;

  n = xml_disk_sources (xml, &targets, &sources);
  if (n < 0)
    return -1;
  for (i = 0; i < n && r == 0; i++)
    if (sources[i][0] && !session_file (s, sources[i])) {
      error_setx ("its disk %s is %s, not an overlay of the session", targets[i],
                  sources[i]);
      r = -1;
    }
  for (k = 0; k < s->ndisks && r == 0; k++) {
    const struct instant_session_disk *d = &s->disks[k];
    bool found = false;
    if (!d->overlay[0])
      continue;
    for (i = 0; i < n && !found; i++)
      found = strcmp (sources[i], d->overlay) == 0 ||
        (d->migrated_to[0] && strcmp (sources[i], d->migrated_to) == 0);
    if (!found) {
      error_setx ("it has no disk on the session's overlay %s", d->overlay);
      r = -1;
    }
  }
  strv_free (targets);
  strv_free (sources);
  return r;
}

int
drv_session_domain (virConnectPtr c, const struct instant_session *s,
                    virDomainPtr *out)
{
  virDomainPtr d = drv_lookup_uuid (c, s->uuid);
  const char *dn;
  char *xml;
  int r;

  *out = NULL;
  if (!d)
    return 0;
  dn = virDomainGetName (d);
  if (!dn || strcmp (dn, s->name) != 0) {
    virDomainFree (d);
    return 0;          /* not ours: someone else's domain has the UUID now */
  }
  xml = virDomainGetXMLDesc (d, 0);
  if (!xml) {
    error_setx ("domain %s (UUID %s): cannot read its definition: %s", dn,
                s->uuid, drv_error ());
    virDomainFree (d);
    return -1;
  }
  r = disks_are_session (s, xml);
  free (xml);
  if (r == -1) {
    error_prefix ("domain %s (UUID %s) is not the VM of session %" PRId64
                  "; it was left alone", dn, s->uuid, s->id);
    virDomainFree (d);
    return -1;
  }
  *out = d;
  return 1;
}

int
drv_remove_domain (virConnectPtr c, const struct instant_session *s)
{
  const char *name = s->name;
  virDomainPtr d;
  int ret = drv_session_domain (c, s, &d);

  if (ret <= 0)
    return ret;
  ret = 0;
  if (virDomainIsActive (d) == 1 && virDomainDestroy (d) == -1 &&
      virDomainIsActive (d) == 1) {
    error_setx ("destroy domain %s: %s", name, drv_error ());
    ret = -1;
  }
  if (ret == 0 && virDomainIsPersistent (d) == 1 &&
      virDomainUndefineFlags (d, VIR_DOMAIN_UNDEFINE_NVRAM |
                              VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                              VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                              VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) == -1 &&
      virDomainUndefine (d) == -1) {
    error_setx ("undefine domain %s: %s", name, drv_error ());
    ret = -1;
  }
  virDomainFree (d);
  return ret;
}

int
drv_agent_wait (virDomainPtr d, double timeout_s)
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

void
drv_new_uuid (char out[UUID_STR_LEN + 1])
{
  uint8_t b[16];
  int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  size_t i;

  if (fd < 0 || read (fd, b, sizeof b) != (ssize_t) sizeof b) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    for (i = 0; i < sizeof b; i++)
      b[i] = (uint8_t) ((ts.tv_nsec >> (i % 4 * 8)) ^ (getpid () * (i + 1)) ^ rand ());
  }
  if (fd >= 0)
    close (fd);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf (out, UUID_STR_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
            b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void
instant_domain_state (const struct instant_session *s, const char *uri,
                      char *buf, size_t len)
{
  static const char *const names[] = {
    [VIR_DOMAIN_NOSTATE] = "no state", [VIR_DOMAIN_RUNNING] = "running",
    [VIR_DOMAIN_BLOCKED] = "blocked", [VIR_DOMAIN_PAUSED] = "paused",
    [VIR_DOMAIN_SHUTDOWN] = "shutting down", [VIR_DOMAIN_SHUTOFF] = "shut off",
    [VIR_DOMAIN_CRASHED] = "crashed", [VIR_DOMAIN_PMSUSPENDED] = "suspended",
  };
  virConnectPtr c;
  virDomainPtr d;
  int state, reason;

  ERROR_SAVE (saved);
  snprintf (buf, len, "unknown");
  c = drv_connect (uri ? uri : s->uri);
  if (c) {
    d = drv_lookup_uuid (c, s->uuid);
    if (!d)
      snprintf (buf, len, "gone");
    else {
      if (virDomainGetState (d, &state, &reason, 0) == 0 && state >= 0 &&
          (size_t) state < sizeof names / sizeof names[0] && names[state])
        snprintf (buf, len, "%s", names[state]);
      virDomainFree (d);
    }
    drv_close (c);
  }
  ERROR_RESTORE (saved);
}
