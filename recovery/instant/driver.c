/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What instant recovery asks of libvirt beyond recovery/virt (which owns
 * connecting, errors, the event loop, lookups, lifecycle, block jobs and
 * the guest agent): the network checks of a start, finding and removing a
 * session's own domain (invariant 7 of session.c), the state of a
 * session's domain for `sessions`, and a random UUID.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "recovery/instant/instant-int.h"

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
  active = virt_network_active (c, src);
  if (active == -1) {
    error_setx ("network: libvirt has no network %s (virsh net-list --all); "
                "use --network NET or --network bridge:BR", src);
    return -1;
  }
  if (active != 1) {
    error_setx ("network: libvirt network %s is not active (virsh net-start %s)",
                src, src);
    return -1;
  }
  return 0;
}

struct net_check {
  virConnectPtr c;
  bool bridges;                 /* look for bridges (this host's) */
  int bad;
};

static void
check_one (void *opaque, const char *kind, const char *src)
{
  struct net_check *nc = opaque;

  if (nc->bad || (!nc->bridges && strcmp (kind, "bridge") == 0))
    return;
  if (drv_check_network (nc->c, strcmp (kind, "bridge") == 0 ? INSTANT_NET_BRIDGE
                         : INSTANT_NET_NETWORK, src) == -1) {
    error_prefix ("the saved definition's interface cannot work here (give "
                  "--network NET, bridge:BR or none)");
    nc->bad = 1;
  }
}

int
drv_check_saved_networks (virConnectPtr c, const char *xml, bool bridges)
{
  struct net_check nc = { .c = c, .bridges = bridges };

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
  virDomainPtr d = virt_domain_by_uuid (c, s->uuid);
  const char *dn;
  char *xml, why[1024];
  int r;

  *out = NULL;
  if (!d)
    return 0;
  dn = virDomainGetName (d);
  if (!dn || strcmp (dn, s->name) != 0) {
    virDomainFree (d);
    return 0;          /* not ours: someone else's domain has the UUID now */
  }
  xml = virt_domain_xml (d, 0);
  if (!xml) {
    snprintf (why, sizeof why, "%s", virt_failure ());
    error_setx ("domain %s (UUID %s): cannot read its definition: %s", dn,
                s->uuid, why);
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
  CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
  int ret = drv_session_domain (c, s, &d);

  if (ret <= 0)
    return ret;
  if (virt_domain_destroy (d) == -1 || virt_domain_undefine (d, VIRT_UNDEFINE_ALL) == -1)
    return -1;
  return 0;
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
  CLEANUP_VIR_CONNECT virConnectPtr c = NULL;
  CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
  int state;

  ERROR_SAVE (saved);
  snprintf (buf, len, "unknown");
  c = virt_connect (uri ? uri : s->uri);
  if (c) {
    d = virt_domain_by_uuid (c, s->uuid);
    if (!d)
      snprintf (buf, len, "gone");
    else if ((state = virt_domain_state (d, NULL)) >= 0)
      snprintf (buf, len, "%s", virt_state_name (state));
  }
  ERROR_RESTORE (saved);
}

bool
instant_agent_answers (const struct instant_session *s, double timeout)
{
  CLEANUP_VIR_CONNECT virConnectPtr c = NULL;
  CLEANUP_VIR_DOMAIN virDomainPtr d = NULL;
  bool ok = false;

  ERROR_SAVE (saved);
  c = virt_connect (s->uri[0] ? s->uri : NULL);
  if (c && (d = virt_domain_by_uuid (c, s->uuid)) != NULL)
    ok = virt_agent_wait (d, timeout) == 0;
  ERROR_RESTORE (saved);
  return ok;
}
