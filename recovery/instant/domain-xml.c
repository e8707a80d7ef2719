/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The domain XML rewrite of an instant-recovery session ("conf" in the
 * libvirt sense): pure functions from the XML saved with a restore point
 * and a spec to the XML the session defines.  No I/O, no libvirt, golden-
 * file tested (test-domain-xml.c, golden/).
 *
 * Rules, in the order applied:
 *  1. The root must be <domain>.  Its live-only id attribute goes; its type
 *     becomes spec->domain_type when given ("qemu" where KVM is unusable).
 *     A second <devices> joins the first (libvirt takes them all).
 *  2. <name> is spec->name; <uuid> is spec->uuid when given (new identity).
 *  3. Removed, because they cannot work on another host or would collide
 *     with the original VM (a note for each): <seclabel> (any level),
 *     <os><nvram> (libvirt makes a fresh one), <emulator> (libvirt picks
 *     this host's), <cpu mode='host-passthrough|host-model'> under TCG,
 *     live-only <alias> (not "ua-") and interface <target dev='vnetN'>.
 *  4. Disks (device disk or lun) are matched to the point's disks by
 *     <target dev> = disk name; if no name matches at all, by order.  A
 *     matched disk becomes a file disk on its qcow2 overlay, with an explicit
 *     <backingStore> of type network: NBD over the session's unix socket,
 *     format raw.  A disk the point lacks is removed; a point disk the XML
 *     lacks is added (virtio); a matched disk without <target dev> gets
 *     the point disk's name (or the first free vdX).  cdrom and floppy
 *     drives lose their media.
 *  5. Interfaces: with a chosen network every interface is plugged into it
 *     (type network or bridge; <virtualport>, <vlan> and passthrough
 *     <driver> dropped); "none" removes them.  New MACs come from
 *     spec->mac_seed (deterministic, distinct, 52:54:00 prefix).
 *  6. File serial/console/parallel ports write to spec->console_log; pty
 *     ports, unix channels and graphics sockets lose their paths (libvirt picks
 *     private ones); fixed graphics ports become autoport.
 *  7. Unless spec->allow_passthrough, the allow-list (sanitize.c): what
 *     the host would act on and is not known to be safe is removed or
 *     replaced, a note for each (host directories and devices, graphics
 *     listeners, char devices on host sockets and files, QEMU command
 *     line, kernels and firmware from host paths, ...).
 * Output is formatted (2-space indent) without an XML declaration.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "recovery/instant/instant-int.h"
#include "recovery/instant/xml-int.h"
#include "recovery/util/util.h"

/* Recursively remove <seclabel> and live-only <alias> elements. */
static void
scrub (xmlNodePtr n, int *seclabels)
{
  xmlNodePtr c, next;
  char buf[64];

  for (c = n->children; c; c = next) {
    next = c->next;
    if (is (c, "seclabel")) {
      drop (c);
      (*seclabels)++;
    }
    else if (is (c, "alias") &&
             strncmp (attr (c, "name", buf, sizeof buf), "ua-", 3) != 0)
      drop (c);
    else if (c->type == XML_ELEMENT_NODE)
      scrub (c, seclabels);
  }
}

/* 52:54:00:xx:xx:xx from the seed and index (a 32-bit mix). */
static void
make_mac (uint32_t seed, uint32_t i, char out[18])
{
  uint32_t x = seed ^ (i * 0x9e3779b9u + 0x7f4a7c15u);

  x ^= x >> 16; x *= 0x85ebca6bu;
  x ^= x >> 13; x *= 0xc2b2ae35u;
  x ^= x >> 16;
  snprintf (out, 18, "52:54:00:%02x:%02x:%02x",
            (x >> 16) & 0xff, (x >> 8) & 0xff, x & 0xff);
}

static bool
target_name_ok (const char *s)
{
  size_t p;

  if (strncmp (s, "vd", 2) == 0 || strncmp (s, "sd", 2) == 0 ||
      strncmp (s, "hd", 2) == 0)
    p = 2;
  else
    return false;
  if (!s[p])
    return false;
  for (; s[p]; p++)
    if (s[p] < 'a' || s[p] > 'z')
      return false;
  return true;
}

static bool
target_used (xmlNodePtr devices, const char *dev)
{
  xmlNodePtr d;
  char buf[DISK_NAME_MAX + 1];

  for (d = devices->children; d; d = d->next)
    if (is (d, "disk") && strcmp (attr (child (d, "target"), "dev", buf, sizeof buf),
                                  dev) == 0)
      return true;
  return false;
}

/* A target for point disk name: its own if that is a target name not in
 * use, else the first free vdX. */
static void
free_target (xmlNodePtr devices, const char *name, char out[DISK_NAME_MAX + 1])
{
  int l;

  if (target_name_ok (name) && !target_used (devices, name)) {
    snprintf (out, DISK_NAME_MAX + 1, "%s", name);
    return;
  }
  for (l = 0; l < 26; l++) {
    snprintf (out, DISK_NAME_MAX + 1, "vd%c", 'a' + l);
    if (!target_used (devices, out))
      return;
  }
}

/* " (SOURCE)" of a disk for a note: its file, device, or protocol:name. */
static const char *
disk_source (xmlNodePtr d, char *buf, size_t len)
{
  static const char *const keys[] = { "file", "dev", "dir", "volume", NULL };
  xmlNodePtr src = child (d, "source");
  char v[200], proto[32];
  size_t i;

  buf[0] = '\0';
  if (!src)
    return buf;
  for (i = 0; keys[i]; i++)
    if (attr (src, keys[i], v, sizeof v)[0]) {
      snprintf (buf, len, " (%s)", v);
      return buf;
    }
  if (attr (src, "protocol", proto, sizeof proto)[0])
    snprintf (buf, len, " (%s:%s)", proto, attr (src, "name", v, sizeof v));
  return buf;
}

/* Make disk element d the session's overlay disk for point disk k. */
static void
make_overlay_disk (xmlNodePtr d, const struct instant_xml_disk *k)
{
  xmlNodePtr drv, src, bs, bsrc, host, fmt, first, c, next;

  set_attr (d, "type", "file");
  set_attr (d, "device", "disk");
  for (c = d->children; c; c = next) {
    next = c->next;
    if (is (c, "source") || is (c, "backingStore") || is (c, "mirror") ||
        is (c, "auth") || is (c, "encryption") || is (c, "reservations"))
      drop (c);
  }
  drv = child (d, "driver");
  if (!drv) {
    drv = xmlNewNode (NULL, BAD_CAST "driver");
    first = d->children;
    if (first)
      xmlAddPrevSibling (first, drv);
    else
      xmlAddChild (d, drv);
  }
  set_attr (drv, "name", "qemu");
  set_attr (drv, "type", "qcow2");
  src = xmlNewNode (NULL, BAD_CAST "source");
  set_attr (src, "file", k->overlay);
  xmlAddNextSibling (drv, src);
  bs = xmlNewNode (NULL, BAD_CAST "backingStore");
  set_attr (bs, "type", "network");
  fmt = xmlNewChild (bs, NULL, BAD_CAST "format", NULL);
  set_attr (fmt, "type", "raw");
  bsrc = xmlNewChild (bs, NULL, BAD_CAST "source", NULL);
  set_attr (bsrc, "protocol", "nbd");
  host = xmlNewChild (bsrc, NULL, BAD_CAST "host", NULL);
  if (k->host) {                        /* remote: TCP, TLS (remote.c) */
    char port[16];
    snprintf (port, sizeof port, "%d", k->port);
    set_attr (bsrc, "tls", k->tls ? "yes" : "no");
    set_attr (host, "name", k->host);
    set_attr (host, "port", port);
  }
  else {
    set_attr (host, "transport", "unix");
    set_attr (host, "socket", k->socket);
  }
  xmlNewChild (bs, NULL, BAD_CAST "backingStore", NULL);
  xmlAddNextSibling (src, bs);
}

/* libvirt takes the devices of every <devices> element: the ones after
 * the first join it, so that every rule sees them. */
static void
merge_devices (struct ctx *cx, xmlNodePtr devices)
{
  xmlNodePtr d, next, c;

  for (d = devices->next; d; d = next) {
    next = d->next;
    if (!is (d, "devices"))
      continue;
    while ((c = d->children)) {
      xmlUnlinkNode (c);
      xmlAddChild (devices, c);
    }
    drop (d);
    note (cx, "a second <devices> joined the first");
  }
}

/* Which <disk> each point disk becomes (match[i], NULL: none, it is
 * added), and the last <disk> (new ones go after it). */
struct disk_match {
  xmlNodePtr match[REPO_MAX_DISKS];
  xmlNodePtr last;
};

/* A <disk> that can carry a point disk: device disk (or none) or lun. */
static bool
is_data_disk (xmlNodePtr d)
{
  char device[32];

  if (!is (d, "disk"))
    return false;
  attr (d, "device", device, sizeof device);
  return !device[0] || strcmp (device, "disk") == 0 || strcmp (device, "lun") == 0;
}

/* By target name first; if no name matches, by order. */
static void
match_disks (xmlNodePtr devices, const struct instant_xml_spec *sp,
             struct disk_match *dm)
{
  xmlNodePtr d;
  bool any_by_name = false;
  size_t i, pos;
  char dev[DISK_NAME_MAX + 1];

  for (d = devices->children; d; d = d->next) {
    if (!is (d, "disk"))
      continue;
    dm->last = d;
    if (!is_data_disk (d))
      continue;
    attr (child (d, "target"), "dev", dev, sizeof dev);
    for (i = 0; i < sp->ndisks; i++)
      if (!dm->match[i] && strcmp (sp->disks[i].name, dev) == 0) {
        dm->match[i] = d;
        any_by_name = true;
        break;
      }
  }
  if (any_by_name)
    return;
  pos = 0;
  for (d = devices->children; d && pos < sp->ndisks; d = d->next)
    if (is_data_disk (d))
      dm->match[pos++] = d;
}

/* A cdrom or floppy keeps its drive, not its media (not in the backup). */
static void
empty_drive (struct ctx *cx, xmlNodePtr d, const char *device, const char *dev)
{
  char type[32];

  if (child (d, "source")) {
    note (cx, "%s %s: media removed (not in the backup)", device, dev);
    drop_children (d, "source");
  }
  drop_children (d, "backingStore");
  if (strcmp (attr (d, "type", type, sizeof type), "file") != 0 &&
      strcmp (type, "block") != 0)
    set_attr (d, "type", "file");
  else if (strcmp (type, "block") == 0)
    set_attr (d, "type", "file");
}

/* A <disk> that is no point disk goes (and is no longer the last). */
static void
drop_disk (struct ctx *cx, xmlNodePtr d, const char *dev, struct disk_match *dm)
{
  char from[256];

  note (cx, "disk %s%s is not in the restore point: removed", dev[0] ? dev : "?",
        disk_source (d, from, sizeof from));
  if (dm->last == d) {
    xmlNodePtr p;
    dm->last = NULL;
    for (p = d->prev; p; p = p->prev)
      if (is (p, "disk")) { dm->last = p; break; }
  }
  drop (d);
}

/* Every <disk> of the saved definition: an empty drive, the overlay of
 * its point disk, or removed. */
static void
rewrite_saved_disks (struct ctx *cx, xmlNodePtr devices,
                     struct instant_xml_spec *sp, struct disk_match *dm)
{
  xmlNodePtr d, next;
  size_t i;
  char dev[DISK_NAME_MAX + 1], device[32];

  for (d = devices->children; d; d = next) {
    next = d->next;
    if (!is (d, "disk"))
      continue;
    attr (d, "device", device, sizeof device);
    attr (child (d, "target"), "dev", dev, sizeof dev);
    if (strcmp (device, "cdrom") == 0 || strcmp (device, "floppy") == 0) {
      empty_drive (cx, d, device, dev);
      continue;
    }
    for (i = 0; i < sp->ndisks; i++)
      if (dm->match[i] == d)
        break;
    if (i == sp->ndisks) {
      drop_disk (cx, d, dev, dm);
      continue;
    }
    if (strcmp (device, "lun") == 0)
      note (cx, "disk %s: lun passthrough becomes a plain disk", dev);
    if (!dev[0]) {
      free_target (devices, sp->disks[i].name, dev);
      set_attr (ensure_child (d, "target"), "dev", dev);
      note (cx, "disk %s had no target: %s", sp->disks[i].name, dev);
    }
    else if (!target_name_ok (dev)) {   /* it names files (migrate's) */
      free_target (devices, sp->disks[i].name, dev);
      set_attr (ensure_child (d, "target"), "dev", dev);
      note (cx, "disk %s had a target that is no disk name: %s",
            sp->disks[i].name, dev);
    }
    make_overlay_disk (d, &sp->disks[i]);
    snprintf (sp->disks[i].target, sizeof sp->disks[i].target, "%s", dev);
  }
}

/* Point disks the XML lacks: a new <disk> each, after the last one. */
static void
add_missing_disks (struct ctx *cx, xmlNodePtr devices,
                   struct instant_xml_spec *sp, struct disk_match *dm)
{
  size_t i;

  for (i = 0; i < sp->ndisks; i++) {
    xmlNodePtr nd, t;
    const char *bus = "virtio";
    char name[DISK_NAME_MAX + 1];

    if (dm->match[i])
      continue;
    free_target (devices, sp->disks[i].name, name);
    if (name[0] == 's') bus = "sata";
    else if (name[0] == 'h') bus = "ide";
    nd = xmlNewNode (NULL, BAD_CAST "disk");
    set_attr (nd, "type", "file");
    set_attr (nd, "device", "disk");
    t = xmlNewChild (nd, NULL, BAD_CAST "target", NULL);
    set_attr (t, "dev", name);
    set_attr (t, "bus", bus);
    if (dm->last)
      xmlAddNextSibling (dm->last, nd);
    else if (devices->children)
      xmlAddPrevSibling (devices->children, nd);
    else
      xmlAddChild (devices, nd);
    dm->last = nd;
    make_overlay_disk (nd, &sp->disks[i]);
    snprintf (sp->disks[i].target, sizeof sp->disks[i].target, "%s", name);
    note (cx, "disk %s is not in the saved definition: added as %s (%s)",
          sp->disks[i].name, name, bus);
  }
}

static void
rewrite_disks (struct ctx *cx, xmlNodePtr devices, struct instant_xml_spec *sp)
{
  struct disk_match dm;
  size_t i;

  if (sp->ndisks > REPO_MAX_DISKS)
    sp->ndisks = REPO_MAX_DISKS;
  memset (&dm, 0, sizeof dm);
  for (i = 0; i < sp->ndisks; i++)
    sp->disks[i].target[0] = '\0';
  match_disks (devices, sp, &dm);
  rewrite_saved_disks (cx, devices, sp, &dm);
  add_missing_disks (cx, devices, sp, &dm);
}

/* Interfaces: dropped (none), plugged into --network, or kept as saved.
 * Kept as saved, an interface may not name a bridge of bootback's labs
 * (INSTANT_LAB_NET_PREFIX...): a point's definition would join a running lab's isolated
 * network and answer its checks.  -1 with the error then. */
static int
rewrite_interfaces (struct ctx *cx, xmlNodePtr devices,
                    const struct instant_xml_spec *sp)
{
  xmlNodePtr n, next, c;
  uint32_t idx = 0;
  int removed = 0;
  char type[32], br[64];

  for (n = devices->children; n; n = next) {
    next = n->next;
    if (!is (n, "interface"))
      continue;
    if (sp->net == INSTANT_NET_KEEP && (c = child (n, "source")) &&
        strncmp (attr (c, "bridge", br, sizeof br), INSTANT_LAB_NET_PREFIX,
                 strlen (INSTANT_LAB_NET_PREFIX)) == 0) {
      error_setx ("the saved definition plugs an interface into bridge %s, a name "
                  "of bootback's lab networks: refused (give --network)", br);
      return -1;
    }
    if (sp->net == INSTANT_NET_NONE) {
      drop (n);
      removed++;
      continue;
    }
    drop_children (n, "target");
    if (sp->net == INSTANT_NET_NETWORK || sp->net == INSTANT_NET_BRIDGE) {
      const char *t = sp->net == INSTANT_NET_NETWORK ? "network" : "bridge";
      attr (n, "type", type, sizeof type);
      if (strcmp (type, "hostdev") == 0 || strcmp (type, "direct") == 0 ||
          strcmp (type, "vhostuser") == 0 || strcmp (type, "vdpa") == 0)
        drop_children (n, "driver");
      set_attr (n, "type", t);
      drop_children (n, "source");
      drop_children (n, "virtualport");
      drop_children (n, "vlan");
      c = xmlNewNode (NULL, BAD_CAST "source");
      set_attr (c, t, sp->net_source);
      if (n->children)
        xmlAddPrevSibling (n->children, c);
      else
        xmlAddChild (n, c);
      if (!child (n, "model")) {
        xmlNodePtr m = xmlNewChild (n, NULL, BAD_CAST "model", NULL);
        set_attr (m, "type", "virtio");
      }
    }
    if (sp->new_macs) {
      char mac[18];
      xmlNodePtr m = child (n, "mac");
      make_mac (sp->mac_seed, idx, mac);
      if (!m) {
        m = xmlNewNode (NULL, BAD_CAST "mac");
        c = child (n, "source");
        if (c)
          xmlAddNextSibling (c, m);
        else
          xmlAddChild (n, m);
      }
      set_attr (m, "address", mac);
    }
    idx++;
  }
  if (removed)
    note (cx, "%d network interface%s removed (--network none)", removed,
          removed == 1 ? "" : "s");
  return 0;
}

static void
rewrite_ports (struct ctx *cx, xmlNodePtr devices, const struct instant_xml_spec *sp)
{
  xmlNodePtr n, c;
  char type[32], path[256];

  for (n = devices->children; n; n = n->next) {
    if (is (n, "serial") || is (n, "console") || is (n, "parallel")) {
      attr (n, "type", type, sizeof type);
      if (strcmp (type, "file") == 0) {
        c = ensure_child (n, "source");
        attr (c, "path", path, sizeof path);
        if (sp->console_log && strcmp (path, sp->console_log) != 0) {
          if (path[0] && strcmp (path, "/dev/null") != 0)
            note (cx, "%s to the file %s writes to the session's console log instead",
                  (const char *) n->name, path);
          set_attr (c, "path", sp->console_log);
        }
      }
      else if (strcmp (type, "pty") == 0) {
        drop_children (n, "source");      /* the live /dev/pts/N */
        del_attr (n, "tty");
      }
    }
    else if (is (n, "channel")) {
      if (strcmp (attr (n, "type", type, sizeof type), "unix") == 0)
        drop_children (n, "source");
    }
    else if (is (n, "graphics") && sp->allow_passthrough) {
      del_attr (n, "socket");
      if (xmlHasProp (n, BAD_CAST "port")) {
        del_attr (n, "port");
        set_attr (n, "autoport", "yes");
      }
      for (c = n->children; c; c = c->next)
        if (is (c, "listen"))
          del_attr (c, "socket");
    }
  }
}

/* Serialise without declaration, formatted. */
static char *
dump (xmlDocPtr doc)
{
  xmlBufferPtr buf = xmlBufferCreate ();
  xmlSaveCtxtPtr sv;
  char *out;

  sv = xmlSaveToBuffer (buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  if (!sv) {
    xmlBufferFree (buf);
    error_setx ("domain XML: cannot serialise");
    return NULL;
  }
  xmlSaveDoc (sv, doc);
  xmlSaveClose (sv);
  out = xstrdup ((const char *) xmlBufferContent (buf));
  xmlBufferFree (buf);
  return out;
}

/* Parse, insisting on a <domain> root. */
static xmlDocPtr
parse (const char *xml)
{
  xmlDocPtr doc;
  xmlNodePtr root;
  int line;

  doc = virt_xml_parse (xml, XML_PARSE_NOBLANKS, &line);
  if (!doc) {
    error_prefix ("domain XML does not parse: line %d", line);
    return NULL;
  }
  root = xmlDocGetRootElement (doc);
  if (!is (root, "domain")) {
    error_setx ("domain XML: the root element is <%s>, not <domain>",
                root ? (const char *) root->name : "none");
    xmlFreeDoc (doc);
    return NULL;
  }
  return doc;
}

/* The firmware's messages on the serial console too (<bios
 * useserial='yes'/>), for SeaBIOS: a UEFI loader is left alone. */
static void
bios_on_serial (xmlNodePtr os)
{
  char fw[32];
  xmlNodePtr b;

  if (!os || child (os, "loader") || *attr (os, "firmware", fw, sizeof fw))
    return;
  b = child (os, "bios");
  if (!b)
    b = xmlNewChild (os, NULL, BAD_CAST "bios", NULL);
  set_attr (b, "useserial", "yes");
}

/* libvirt's memory units, in bytes, read as its virScaleInteger reads
 * them: no unit is KiB; "b", "byte", "bytes"; K, M, G, T, P or E alone or
 * with "iB" (powers of 1024) or with "B" (powers of 1000), in any case.
 * 0 for one it refuses.  (A unit read otherwise, "gib" as 0, let a point
 * get past the memory budget of mass instant recovery.) */
static uint64_t
memory_unit (const char *u)
{
  static const char letters[] = "kmgtpe";
  const char *l;
  uint64_t base, bytes = 1;

  if (!*u)
    return 1024;
  if (strcasecmp (u, "b") == 0 || strcasecmp (u, "byte") == 0 ||
      strcasecmp (u, "bytes") == 0)
    return 1;
  if (!u[1] || strcasecmp (u + 1, "iB") == 0)
    base = 1024;
  else if ((u[1] == 'b' || u[1] == 'B') && !u[2])
    base = 1000;
  else
    return 0;
  l = strchr (letters, tolower ((unsigned char) u[0]));
  if (!l)
    return 0;
  for (; l >= letters; l--)
    bytes *= base;
  return bytes;
}

/* A size in MiB: value v (text, or attribute value when attr_name) and
 * its unit attribute; 0 if none; too much is too much. */
static uint64_t
mib_of (const char *v, const char *unit_name, xmlNodePtr n)
{
  char unit[16];
  uint64_t x, mul = memory_unit (attr (n, unit_name, unit, sizeof unit));

  if (!v || !mul)
    return 0;
  x = strtoull (v, NULL, 10);
  return x > UINT64_MAX / mul ? UINT64_MAX >> 20 : x * mul >> 20;
}

static uint64_t
node_mib (xmlNodePtr n)
{
  xmlChar *t = n ? xmlNodeGetContent (n) : NULL;
  uint64_t mib = mib_of ((const char *) t, "unit", n);

  xmlFree (t);
  return mib;
}

static uint64_t
add_sat (uint64_t a, uint64_t b)
{
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The sizes of the memory devices (<memory model='dimm|virtio-mem'>
 * <target><size>) in every <devices>: QEMU gives each a RAM backend of
 * its size, beside the boot memory (a virtio-mem's is its whole size, of
 * which the guest is given <requested>). */
static uint64_t
memory_devices_mib (xmlNodePtr root)
{
  xmlNodePtr d, m;
  uint64_t mib = 0;

  for (d = root->children; d; d = d->next)
    for (m = is (d, "devices") ? d->children : NULL; m; m = m->next)
      if (is (m, "memory") && child (m, "target"))
        mib = add_sat (mib, node_mib (child (child (m, "target"), "size")));
  return mib;
}

/* <cpu><numa>, or NULL. */
static xmlNodePtr
numa_of (xmlNodePtr root)
{
  xmlNodePtr cpu = child (root, "cpu");

  return cpu ? child (cpu, "numa") : NULL;
}

/* The sum of the NUMA cells' memory. */
static uint64_t
cells_mib (xmlNodePtr numa)
{
  xmlNodePtr c;
  uint64_t mib = 0;
  char buf[32];

  for (c = numa ? numa->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrEqual (c->name, BAD_CAST "cell"))
      mib = add_sat (mib, mib_of (attr (c, "memory", buf, sizeof buf), "unit", c));
  return mib;
}

/* The memory a definition gives the VM: the largest of <memory>,
 * <currentMemory>, <maxMemory> and the sum of its NUMA cells and memory
 * devices.  libvirt (9.0, checked with the qemu driver) defines a VM with
 * cells with <memory> their sum plus its memory devices', whatever
 * <memory> said, and QEMU gets -m of the cells' sum and a backend per
 * device; without cells <memory> includes the devices.  libvirt also
 * refuses a <maxMemory> below that sum, but the count does not rely on
 * it. */
uint64_t
instant_xml_memory_mib (const char *xml)
{
  xmlDocPtr doc = parse (xml);
  xmlNodePtr root;
  uint64_t mib, cells;

  if (!doc) {
    error_clear ();
    return 0;
  }
  root = xmlDocGetRootElement (doc);
  mib = MAX (node_mib (child (root, "memory")), node_mib (child (root, "currentMemory")));
  mib = MAX (mib, node_mib (child (root, "maxMemory")));
  cells = add_sat (cells_mib (numa_of (root)), memory_devices_mib (root));
  xmlFreeDoc (doc);
  return MAX (mib, cells);
}

/* The rest of the lab's reservation: libvirt gives a VM with NUMA cells
 * their sum plus its memory devices, whatever <memory> says.  The
 * devices go (libvirt refuses them without the <maxMemory> the lab
 * removes), and so do cells over cap_mib (libvirt then gives the VM its
 * <memory>, in one node). */
static void
cap_hotplug (struct ctx *cx, xmlNodePtr root, uint64_t cap_mib)
{
  xmlNodePtr d, numa = numa_of (root);
  int k = 0;

  for (d = root->children; d; d = d->next)
    if (is (d, "devices"))
      k += drop_children (d, "memory");
  if (k)
    note (cx, "memory devices removed (%d): the lab gives a VM its memory, no more", k);
  if (numa && cells_mib (numa) > cap_mib) {
    note (cx, "<numa> removed: its cells' %" PRIu64 " MiB are over the lab's %"
          PRIu64 " MiB for this VM", cells_mib (numa), cap_mib);
    drop (numa);
  }
}

/* The lab's reservation: a <memory> above cap_mib is lowered to it (a
 * value or unit that does not parse too), a <currentMemory> above it goes
 * (libvirt then gives the VM its <memory>), and so does <maxMemory>
 * (memory hotplug beyond it).  The saved definition is
 * the point's: it must not take more of the host than the lab gave. */
static void
cap_memory (struct ctx *cx, xmlNodePtr root, uint64_t cap_mib)
{
  static const char *const names[] = { "memory", "currentMemory" };
  char unit[16], cap[32];
  size_t i;

  snprintf (cap, sizeof cap, "%" PRIu64, cap_mib);
  for (i = 0; i < 2; i++) {
    xmlNodePtr n = child (root, names[i]);
    xmlChar *t;
    uint64_t v, mul;
    char *end;
    bool over;
    if (!n)
      continue;
    t = xmlNodeGetContent (n);
    errno = 0;
    v = t ? strtoull ((const char *) t, &end, 10) : 0;
    mul = memory_unit (attr (n, "unit", unit, sizeof unit));
    over = !t || errno || end == (char *) t || *end || !mul ||
           v > UINT64_MAX / mul || v * mul > (cap_mib << 20);
    xmlFree (t);
    if (!over)
      continue;
    if (i == 1) {
      drop (n);
      note (cx, "<currentMemory> removed: over the lab's %s MiB for this VM", cap);
      continue;
    }
    set_text (n, cap);
    set_attr (n, "unit", "MiB");
    note (cx, "<memory> lowered to %s MiB (the lab's memory for this VM)", cap);
  }
  if (drop_children (root, "maxMemory"))
    note (cx, "<maxMemory> removed: the lab gives a VM its memory, no more");
  cap_hotplug (cx, root, cap_mib);
}

char *
instant_xml_rewrite (const char *xml, struct instant_xml_spec *sp,
                     void (*note_cb) (void *, const char *), void *opaque)
{
  struct ctx cx = { .note = note_cb, .opaque = opaque };
  xmlDocPtr doc;
  xmlNodePtr root, os, devices, n, next, cpu;
  int seclabels = 0;
  char buf[64];
  char *out;

  if (!sp->name || !*sp->name) {
    error_setx ("domain XML: no name given");
    return NULL;
  }
  doc = parse (xml);
  if (!doc)
    return NULL;
  root = xmlDocGetRootElement (doc);

  /* 1, 2 */
  del_attr (root, "id");
  if (sp->domain_type)
    set_attr (root, "type", sp->domain_type);
  n = child (root, "name");
  if (!n) {
    n = xmlNewNode (NULL, BAD_CAST "name");
    if (root->children)
      xmlAddPrevSibling (root->children, n);
    else
      xmlAddChild (root, n);
  }
  set_text (n, sp->name);
  if (sp->uuid) {
    xmlNodePtr u = child (root, "uuid");
    if (!u) {
      u = xmlNewNode (NULL, BAD_CAST "uuid");
      xmlAddNextSibling (n, u);
    }
    set_text (u, sp->uuid);
  }

  /* 3 */
  scrub (root, &seclabels);
  if (seclabels)
    note (&cx, "security labels removed (%d)", seclabels);
  os = child (root, "os");
  if (os && drop_children (os, "nvram"))
    note (&cx, "<nvram> removed: libvirt creates fresh UEFI variables");
  if (sp->bios_serial)
    bios_on_serial (os);
  if (sp->memory_cap_mib)
    cap_memory (&cx, root, sp->memory_cap_mib);
  cpu = child (root, "cpu");
  attr (root, "type", buf, sizeof buf);
  if (cpu && strcmp (buf, "qemu") == 0) {
    char mode[32];
    attr (cpu, "mode", mode, sizeof mode);
    if (strcmp (mode, "host-passthrough") == 0 || strcmp (mode, "host-model") == 0) {
      note (&cx, "<cpu mode='%s'> removed: not available without KVM", mode);
      drop (cpu);
    }
  }
  devices = child (root, "devices");
  if (!devices)
    devices = xmlNewChild (root, NULL, BAD_CAST "devices", NULL);
  merge_devices (&cx, devices);
  drop_children (devices, "emulator");

  /* 4, 5, 6, 7 */
  rewrite_disks (&cx, devices, sp);
  if (rewrite_interfaces (&cx, devices, sp) == -1) {
    xmlFreeDoc (doc);
    return NULL;
  }
  rewrite_ports (&cx, devices, sp);
  if (!sp->allow_passthrough)
    xml_sanitize (doc, sp, note_cb, opaque);

  /* Text nodes left between elements would spoil the formatting. */
  for (n = devices->children; n; n = next) {
    next = n->next;
    if (n->type == XML_TEXT_NODE && xmlIsBlankNode (n))
      drop (n);
  }
  out = dump (doc);
  xmlFreeDoc (doc);
  return out;
}

char *
instant_xml_default (const char *vm, const char *domain_type, int memory_mib,
                     size_t ndisks, const char *const *disk_names)
{
  char *xml, *p;
  size_t i;

  xml = xasprintf ("<domain type='%s'>\n"
                   "  <name>%s</name>\n"
                   "  <memory unit='MiB'>%d</memory>\n"
                   "  <vcpu>1</vcpu>\n"
                   "  <os>\n"
                   "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                   "    <boot dev='hd'/>\n"
                   "  </os>\n"
                   "  <features><acpi/><apic/></features>\n"
                   "  <clock offset='utc'/>\n"
                   "  <on_poweroff>destroy</on_poweroff>\n"
                   "  <on_reboot>restart</on_reboot>\n"
                   "  <on_crash>destroy</on_crash>\n"
                   "  <devices>\n",
                   domain_type ? domain_type : "kvm", vm,
                   memory_mib > 0 ? memory_mib : 1024);
  for (i = 0; i < ndisks; i++) {
    p = xasprintf ("%s    <disk type='file' device='disk'>\n"
                   "      <driver name='qemu' type='raw'/>\n"
                   "      <target dev='%s' bus='virtio'/>\n"
                   "    </disk>\n", xml, disk_names[i]);
    free (xml);
    xml = p;
  }
  p = xasprintf ("%s    <interface type='network'>\n"
                 "      <source network='default'/>\n"
                 "      <model type='virtio'/>\n"
                 "    </interface>\n"
                 "    <serial type='file'>\n"
                 "      <source path='/dev/null'/>\n"
                 "      <target port='0'/>\n"
                 "    </serial>\n"
                 "    <console type='file'>\n"
                 "      <source path='/dev/null'/>\n"
                 "      <target type='serial' port='0'/>\n"
                 "    </console>\n"
                 "    <channel type='unix'>\n"
                 "      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
                 "    </channel>\n"
                 "    <graphics type='vnc'>\n"
                 "      <listen type='socket'/>\n"
                 "    </graphics>\n"
                 "    <video>\n"
                 "      <model type='vga'/>\n"
                 "    </video>\n"
                 "  </devices>\n"
                 "</domain>\n", xml);
  free (xml);
  return p;
}

char *
instant_xml_set_disk (const char *xml, const char *target, const char *image,
                      const char *format)
{
  xmlDocPtr doc;
  xmlNodePtr devices, d, drv, src;
  char dev[DISK_NAME_MAX + 1];
  char *out;
  bool found = false;

  doc = parse (xml);
  if (!doc)
    return NULL;
  devices = child (xmlDocGetRootElement (doc), "devices");
  for (d = devices ? devices->children : NULL; d; d = d->next) {
    if (!is (d, "disk") ||
        strcmp (attr (child (d, "target"), "dev", dev, sizeof dev), target) != 0)
      continue;
    found = true;
    set_attr (d, "type", "file");
    drop_children (d, "source");
    drop_children (d, "backingStore");
    drop_children (d, "mirror");
    drv = ensure_child (d, "driver");
    set_attr (drv, "name", "qemu");
    set_attr (drv, "type", format);
    src = xmlNewNode (NULL, BAD_CAST "source");
    set_attr (src, "file", image);
    xmlAddNextSibling (drv, src);
  }
  if (!found) {
    xmlFreeDoc (doc);
    error_setx ("domain XML has no disk %s", target);
    return NULL;
  }
  out = dump (doc);
  xmlFreeDoc (doc);
  return out;
}

/* ---- small readers for the driver (instant-int.h) ------------------------- */

char *
xml_get_uuid (const char *xml)
{
  xmlDocPtr doc = parse (xml);
  xmlNodePtr u;
  xmlChar *t;
  char *out = NULL;

  if (!doc) {
    error_clear ();
    return NULL;
  }
  u = child (xmlDocGetRootElement (doc), "uuid");
  if (u && (t = xmlNodeGetContent (u))) {
    if (*t)
      out = xstrdup ((const char *) t);
    xmlFree (t);
  }
  xmlFreeDoc (doc);
  return out;
}

int
xml_each_interface (const char *xml,
                    void (*fn) (void *, const char *, const char *), void *opaque)
{
  xmlDocPtr doc = parse (xml);
  xmlNodePtr devices, n;
  char type[32], src[256];

  if (!doc)
    return -1;
  devices = child (xmlDocGetRootElement (doc), "devices");
  for (n = devices ? devices->children : NULL; n; n = n->next) {
    if (!is (n, "interface"))
      continue;
    attr (n, "type", type, sizeof type);
    if (strcmp (type, "network") == 0 || strcmp (type, "bridge") == 0)
      fn (opaque, type, attr (child (n, "source"), type, src, sizeof src));
  }
  xmlFreeDoc (doc);
  return 0;
}

int
xml_disk_source_is (const char *xml, const char *target, const char *image)
{
  xmlDocPtr doc = parse (xml);
  xmlNodePtr devices, d;
  char dev[DISK_NAME_MAX + 1], file[4096];
  int r = 0;

  if (!doc)
    return -1;
  devices = child (xmlDocGetRootElement (doc), "devices");
  for (d = devices ? devices->children : NULL; d; d = d->next)
    if (is (d, "disk") &&
        strcmp (attr (child (d, "target"), "dev", dev, sizeof dev), target) == 0 &&
        strcmp (attr (child (d, "source"), "file", file, sizeof file), image) == 0)
      r = 1;
  xmlFreeDoc (doc);
  return r;
}

int
xml_disk_sources (const char *xml, char ***targets, char ***sources)
{
  xmlDocPtr doc = parse (xml);
  xmlNodePtr devices, d, src;
  char dev[DISK_NAME_MAX + 1], buf[4096], proto[32], name[4000];
  size_t n = 0;

  if (!doc)
    return -1;
  *targets = xcalloc (1, sizeof (char *));
  *sources = xcalloc (1, sizeof (char *));
  devices = child (xmlDocGetRootElement (doc), "devices");
  for (d = devices ? devices->children : NULL; d; d = d->next) {
    if (!is (d, "disk"))
      continue;
    src = child (d, "source");
    if (*attr (src, "file", buf, sizeof buf) == '\0' &&
        *attr (src, "dev", buf, sizeof buf) == '\0' &&
        *attr (src, "protocol", proto, sizeof proto) != '\0')
      snprintf (buf, sizeof buf, "%s:%s", proto, attr (src, "name", name, sizeof name));
    *targets = xrealloc (*targets, (n + 2) * sizeof (char *));
    *sources = xrealloc (*sources, (n + 2) * sizeof (char *));
    (*targets)[n] = xstrdup (attr (child (d, "target"), "dev", dev, sizeof dev));
    (*sources)[n] = xstrdup (buf);
    n++;
    (*targets)[n] = (*sources)[n] = NULL;
  }
  xmlFreeDoc (doc);
  return (int) n;
}
