/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The allow-list of a domain XML that came from a restore point.  The
 * saved definition is written by whoever controlled the VM or the
 * repository; libvirt acts on much of it on the host (opens listeners,
 * reads and writes host files, hands host devices and directories to the
 * guest, runs programs).  So what is not known to be safe goes, named in
 * a note, and what a VM needs is replaced by a safe equivalent:
 *
 *  domain       type kvm or qemu; children name, uuid, genid, title,
 *               description, metadata (libvirt does not act on it),
 *               memory, currentMemory, maxMemory, vcpu, vcpus, iothreads,
 *               iothreadids, defaultiothread, memtune, features, cpu,
 *               clock, on_* (on_crash without coredump: libvirt would
 *               dump the guest's memory on the host), pm, os, sysinfo,
 *               devices, resource (only libvirt's default partition
 *               /machine).  Elements in a
 *               namespace (<qemu:commandline>, <qemu:override>) go.
 *  os           type hvm, boot, bootmenu, bios, firmware, smbios (not
 *               mode='host'), loader only from the firmware directories
 *               (else libvirt's UEFI autoselection).  No kernel, initrd,
 *               dtb, cmdline, acpi tables, nvram (host files).
 *  sysinfo      type smbios, no file= anywhere (fwcfg reads host files).
 *  devices      disk: the session's overlays (type file, source one of
 *               spec's overlays, backing store NBD on the disk's socket,
 *               or, remote, on the session's address and port with TLS),
 *               cdrom/floppy without media; interface: network or bridge,
 *               no script, backend, rom file, host driver; input: mouse,
 *               tablet, keyboard; graphics: one, VNC on a unix socket
 *               libvirt places in its private directory (replaced);
 *               video: one, without host acceleration or vhost-user,
 *               sizes at most 128 MiB (ram, vram, vram64) or 64 MiB
 *               (vgamem), else libvirt's defaults; audio:
 *               type none (replaced); serial, console, parallel: pty,
 *               null, vc (a <log> only to spec's console log) or a file
 *               that is spec's console log (others replaced by a pty);
 *               channel: virtio, unix without a path
 *               (libvirt's private one) or pty (others replaced);
 *               rng: /dev/urandom, /dev/random or builtin (others
 *               replaced by /dev/urandom); memory: dimm or virtio-mem
 *               without a host path; controller, hub, sound, watchdog,
 *               memballoon, panic, iommu; a watchdog's action dump
 *               becomes reset.  Everything else goes:
 *               hostdev, filesystem, redirdev, smartcard, tpm, vsock,
 *               shmem, lease, crypto, pstore, emulator, ...
 *  anywhere     a document type declaration and entity references go.
 *
 * One walk serves two modes: FIX (instant_xml_rewrite: remove and
 * replace, a note for each) and CHECK (instant_xml_check, the fail-closed
 * test of a final XML before its domain starts: change nothing, the first
 * thing FIX would touch is the error).  Pure: no I/O, no libvirt.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "recovery/instant/instant-int.h"
#include "recovery/instant/xml-int.h"
#include "recovery/util/util.h"

struct san {
  struct ctx *cx;
  const struct instant_xml_spec *sp;
  bool check;               /* CHECK mode: report, change nothing */
  bool failed;              /* CHECK mode: a violation was found */
  bool graphics;            /* a graphics device is kept already */
  bool video;               /* a video device is kept already */
};

typedef void (*filter_fn) (struct san *, xmlNodePtr);

/* An element on (filter or neither) or off (why) the allow-list. */
struct rule {
  const char *name;
  filter_fn filter;         /* kept after filtering; NULL: kept as it is */
  const char *why;          /* removed, for this reason */
};

#define KEEP(n) { n, NULL, NULL }
#define FILTER(n, f) { n, f, NULL }
#define DROP(n, why) { n, NULL, why }
#define END { NULL, NULL, NULL }

/* "<graphics type='vnc' listen='0.0.0.0'> (source dir='/x')", shortened,
 * printable ASCII only. */
static const char *
describe (xmlNodePtr n, char *buf, size_t len)
{
  xmlNodePtr src, parts[2];
  xmlAttrPtr a;
  size_t k, l;
  int i;

  /* An entity reference's children are its declaration's: not ours. */
  if (n->type == XML_ENTITY_REF_NODE) {
    snprintf (buf, len, "&%s;", (const char *) n->name);
    return buf;
  }
  src = child (n, "source");
  parts[0] = n;
  parts[1] = src && src->properties ? src : NULL;
  l = snprintf (buf, len, "<%s%s%s", n->ns && n->ns->prefix ? (const char *) n->ns->prefix
                : "", n->ns && n->ns->prefix ? ":" : "", (const char *) n->name);
  for (i = 0; i < 2 && l < len; i++) {
    if (!parts[i])
      continue;
    if (i == 1)
      l += snprintf (buf + l, len - l, " (source");
    for (a = parts[i]->properties; a && l < len; a = a->next) {
      xmlChar *v = xmlNodeListGetString (n->doc, a->children, 1);
      bool secret = strcmp ((const char *) a->name, "passwd") == 0;
      l += snprintf (buf + l, len - l, " %s='%s'", (const char *) a->name,
                     secret ? "(not shown)" : v ? (const char *) v : "");
      xmlFree (v);
    }
    if (i == 0 && l < len)
      l += snprintf (buf + l, len - l, ">");
    else if (l < len)
      l += snprintf (buf + l, len - l, ")");
  }
  if (l >= len && len > 4) {
    for (k = len - 4; k < len - 1; k++)
      buf[k] = '.';
  }
  /* The values are the guest's: a character reference puts a newline, a
   * carriage return or a C1 control into one.  The note is one printable
   * line (a terminal, the server's log, JSON). */
  for (k = 0; buf[k]; k++)
    if ((unsigned char) buf[k] < 0x20 || (unsigned char) buf[k] >= 0x7f)
      buf[k] = '?';
  return buf;
}

/* CHECK mode: the first violation becomes the error. */
static void
violation (struct san *s, const char *what, const char *why)
{
  if (!s->failed)
    error_setx ("domain XML: %s is not allowed: %s (the allow-list of "
                "instant recovery and the lab; --allow-passthrough keeps it)",
                what, why);
  s->failed = true;
}

/* Remove n (FIX) or report it (CHECK). */
static void
removed (struct san *s, xmlNodePtr n, const char *why)
{
  char d[320];

  describe (n, d, sizeof d);
  if (s->check) {
    violation (s, d, why);
    return;
  }
  note (s->cx, "removed %s: %s", d, why);
  drop (n);
}

/* May n be replaced by what?  FIX: says so and returns true; CHECK:
 * reports it and returns false. */
static bool
replacing (struct san *s, xmlNodePtr n, const char *what)
{
  char d[320];

  describe (n, d, sizeof d);
  if (s->check) {
    violation (s, d, what);
    return false;
  }
  note (s->cx, "replaced %s by %s", d, what);
  return true;
}

/* Remove every attribute and child of n. */
static void
clear (xmlNodePtr n)
{
  xmlNodePtr c, next;

  while (n->properties)
    xmlRemoveProp (n->properties);
  for (c = n->children; c; c = next) {
    next = c->next;
    drop (c);
  }
}

static bool
in (const char *s, const char *const *list)
{
  for (; *list; list++)
    if (strcmp (s, *list) == 0)
      return true;
  return false;
}

/* Remove every attribute of n not in allowed. */
static void
only_attrs (struct san *s, xmlNodePtr n, const char *const *allowed)
{
  xmlAttrPtr a, next;
  char d[320];

  for (a = n->properties; a; a = next) {
    next = a->next;
    if (!a->ns && in ((const char *) a->name, allowed))
      continue;
    describe (n, d, sizeof d);
    if (s->check)
      violation (s, d, "an attribute not on the allow-list");
    else {
      note (s->cx, "removed attribute %s of %s: not known to be safe",
            (const char *) a->name, d);
      xmlRemoveProp (a);
    }
  }
}

/* Apply rules to the children of n: elements off the list (or in a
 * namespace) and entity references go. */
static void
apply (struct san *s, xmlNodePtr n, const struct rule *rules)
{
  xmlNodePtr c, next;
  const struct rule *r;

  for (c = n->children; c; c = next) {
    next = c->next;
    if (c->type == XML_ENTITY_REF_NODE) {
      removed (s, c, "an entity reference");
      continue;
    }
    if (c->type != XML_ELEMENT_NODE)
      continue;
    if (c->ns) {
      removed (s, c, "a hypervisor-specific extension (QEMU command line, "
               "overrides)");
      continue;
    }
    for (r = rules; r->name; r++)
      if (strcmp ((const char *) c->name, r->name) == 0)
        break;
    if (!r->name)
      removed (s, c, "not known to be safe");
    else if (r->why)
      removed (s, c, r->why);
    else if (r->filter)
      r->filter (s, c);
  }
}

/* Remove every child element of n not in allowed. */
static void
only_children (struct san *s, xmlNodePtr n, const char *const *allowed)
{
  struct rule rules[24];
  size_t i;

  for (i = 0; allowed[i] && i < 23; i++)
    rules[i] = (struct rule) { .name = allowed[i] };
  rules[i] = (struct rule) { NULL };
  apply (s, n, rules);
}

static bool
text_is (xmlNodePtr n, const char *want)
{
  xmlChar *t = xmlNodeGetContent (n);
  bool r = t && strcmp ((const char *) t, want) == 0;

  xmlFree (t);
  return r;
}

static bool
has_attr_anywhere (xmlNodePtr n, const char *name)
{
  xmlNodePtr c;

  if (n->type != XML_ELEMENT_NODE)
    return false;
  if (xmlHasProp (n, BAD_CAST name))
    return true;
  for (c = n->children; c; c = c->next)
    if (has_attr_anywhere (c, name))
      return true;
  return false;
}

/* ---- os ------------------------------------------------------------------- */

/* A firmware file from the distribution's firmware directories, no "..". */
static bool
firmware_path_ok (const char *p)
{
  static const char *const dirs[] = {
    "/usr/share/OVMF/", "/usr/share/ovmf/", "/usr/share/AAVMF/",
    "/usr/share/edk2/", "/usr/share/qemu/", "/usr/share/seabios/", NULL,
  };
  size_t i, l = strlen (p);

  if (strstr (p, "/../") || strstr (p, "/./") || strstr (p, "//") ||
      (l >= 3 && strcmp (p + l - 3, "/..") == 0))
    return false;
  for (i = 0; dirs[i]; i++)
    if (strncmp (p, dirs[i], strlen (dirs[i])) == 0 && p[strlen (dirs[i])])
      return true;
  return false;
}

static void
filter_loader (struct san *s, xmlNodePtr n)
{
  xmlChar *t = xmlNodeGetContent (n);
  bool ok = t && firmware_path_ok ((const char *) t);
  char type[32];
  xmlNodePtr os = n->parent;

  xmlFree (t);
  if (ok)
    return;
  attr (n, "type", type, sizeof type);
  if (strcmp (type, "pflash") == 0 && !xmlHasProp (os, BAD_CAST "firmware")) {
    if (replacing (s, n, "libvirt's own UEFI firmware (os firmware='efi'): "
                   "firmware only from the firmware directories")) {
      drop (n);
      set_attr (os, "firmware", "efi");
    }
    return;
  }
  removed (s, n, "firmware only from the firmware directories");
}

static void
filter_ostype (struct san *s, xmlNodePtr n)
{
  if (!text_is (n, "hvm") && replacing (s, n, "hvm: a full virtual machine"))
    set_text (n, "hvm");
}

static void
filter_smbios (struct san *s, xmlNodePtr n)
{
  char mode[32];

  if (strcmp (attr (n, "mode", mode, sizeof mode), "host") == 0)
    removed (s, n, "the host's SMBIOS data");
}

static void
filter_os (struct san *s, xmlNodePtr n)
{
  static const char kernel[] = "direct kernel boot from host files";
  static const struct rule rules[] = {
    FILTER ("type", filter_ostype), KEEP ("boot"), KEEP ("bootmenu"), KEEP ("bios"),
    KEEP ("firmware"), FILTER ("smbios", filter_smbios), FILTER ("loader", filter_loader),
    DROP ("nvram", "UEFI variables in a host file (libvirt makes fresh ones)"),
    DROP ("kernel", kernel), DROP ("initrd", kernel), DROP ("dtb", kernel),
    DROP ("cmdline", kernel), DROP ("acpi", "ACPI tables from host files"),
    END,
  };

  apply (s, n, rules);
}

static void
filter_sysinfo (struct san *s, xmlNodePtr n)
{
  char type[32];

  if (strcmp (attr (n, "type", type, sizeof type), "smbios") != 0 ||
      has_attr_anywhere (n, "file"))
    removed (s, n, "host files in the guest's firmware tables");
}

/* ---- disks ---------------------------------------------------------------- */

static bool
attr_is (xmlNodePtr n, const char *name, const char *want)
{
  char buf[4096];

  return n && strcmp (attr (n, name, buf, sizeof buf), want) == 0;
}

static size_t
nelements (xmlNodePtr n)
{
  xmlNodePtr c;
  size_t k = 0;

  for (c = n ? n->children : NULL; c; c = c->next)
    if (c->type != XML_TEXT_NODE && c->type != XML_COMMENT_NODE)
      k++;
  return k;
}

static size_t
nattrs (xmlNodePtr n)
{
  xmlAttrPtr a;
  size_t k = 0;

  for (a = n ? n->properties : NULL; a; a = a->next)
    k++;
  return k;
}

/* The NBD <source> of a backing store: protocol nbd and <host
 * transport='unix' socket='SOCK'/>, or, remote, tls='yes' (or 'no' for
 * --insecure) and <host name='ADDR' port='PORT'/> of the session. */
static bool
nbd_source_ok (xmlNodePtr src, const struct instant_xml_disk *k)
{
  xmlNodePtr host = child (src, "host");
  char port[16];

  if (!src || !attr_is (src, "protocol", "nbd") || nelements (src) != 1 || !host ||
      nattrs (host) != 2 || nelements (host) != 0)
    return false;
  if (!k->host)
    return nattrs (src) == 1 && attr_is (host, "transport", "unix") &&
      attr_is (host, "socket", k->socket);
  snprintf (port, sizeof port, "%d", k->port);
  return nattrs (src) == 2 && attr_is (src, "tls", k->tls ? "yes" : "no") &&
    attr_is (host, "name", k->host) && attr_is (host, "port", port);
}

/* <backingStore type='network'><format type='raw'/><source .../>
 * <backingStore/></backingStore> (nbd_source_ok), or none at all for a
 * disk without a socket or host. */
static bool
backing_ok (xmlNodePtr d, const struct instant_xml_disk *k)
{
  xmlNodePtr bs = child (d, "backingStore"), src, end, fmt;

  if (!k->socket && !k->host)
    return !bs || (nattrs (bs) == 0 && nelements (bs) == 0);
  if (!bs || nattrs (bs) != 1 || !attr_is (bs, "type", "network") || nelements (bs) != 3)
    return false;
  fmt = child (bs, "format");
  src = child (bs, "source");
  end = child (bs, "backingStore");
  return fmt && nattrs (fmt) == 1 && attr_is (fmt, "type", "raw") && nelements (fmt) == 0 &&
    nbd_source_ok (src, k) && end && nattrs (end) == 0 && nelements (end) == 0;
}

/* The spec disk whose overlay d's source is, or NULL. */
static const struct instant_xml_disk *
overlay_of (struct san *s, xmlNodePtr d)
{
  xmlNodePtr src = child (d, "source");
  size_t i;

  if (!src || nattrs (src) != 1 || nelements (src) != 0 || !attr_is (d, "type", "file"))
    return NULL;
  for (i = 0; i < s->sp->ndisks; i++)
    if (s->sp->disks[i].overlay && attr_is (src, "file", s->sp->disks[i].overlay))
      return &s->sp->disks[i];
  return NULL;
}

static void
filter_disk (struct san *s, xmlNodePtr d)
{
  static const char *const attrs[] = { "type", "device", "model", "snapshot", NULL };
  static const char *const kids[] = {
    "driver", "source", "backingStore", "target", "boot", "readonly",
    "shareable", "transient", "serial", "wwn", "vendor", "product", "address",
    "alias", "iotune", "geometry", "blockio", NULL,
  };
  const struct instant_xml_disk *k;
  char device[32];

  attr (d, "device", device, sizeof device);
  if (!device[0] || strcmp (device, "disk") == 0) {
    k = overlay_of (s, d);
    if (!k || !backing_ok (d, k)) {
      removed (s, d, "not one of the restore point's disks");
      return;
    }
  }
  else if (strcmp (device, "cdrom") == 0 || strcmp (device, "floppy") == 0) {
    if (child (d, "source") || child (d, "backingStore")) {
      removed (s, d, "media are not in the restore point");
      return;
    }
  }
  else {
    removed (s, d, "not one of the restore point's disks");
    return;
  }
  only_attrs (s, d, attrs);
  only_children (s, d, kids);
}

/* ---- network -------------------------------------------------------------- */

static void
filter_ifdriver (struct san *s, xmlNodePtr n)
{
  char name[32];

  attr (n, "name", name, sizeof name);
  if (name[0] && strcmp (name, "qemu") != 0 && strcmp (name, "vhost") != 0)
    removed (s, n, "a host device driver");
}

static void
filter_ifsource (struct san *s, xmlNodePtr n)
{
  static const char *const attrs[] = { "network", "bridge", "portgroup", NULL };
  static const char *const none[] = { NULL };

  only_attrs (s, n, attrs);
  only_children (s, n, none);
}

static void
filter_rom (struct san *s, xmlNodePtr n)
{
  static const char *const attrs[] = { "enabled", "bar", NULL };

  only_attrs (s, n, attrs);
}

static void
filter_interface (struct san *s, xmlNodePtr n)
{
  static const char *const attrs[] = { "type", "trustGuestRxFilters", NULL };
  static const struct rule rules[] = {
    FILTER ("source", filter_ifsource), KEEP ("mac"), KEEP ("model"),
    FILTER ("driver", filter_ifdriver), KEEP ("address"), KEEP ("alias"), KEEP ("boot"),
    FILTER ("rom", filter_rom), KEEP ("link"), KEEP ("mtu"), KEEP ("coalesce"), KEEP ("bandwidth"),
    KEEP ("filterref"), KEEP ("virtualport"), KEEP ("vlan"), KEEP ("tune"), KEEP ("guest"),
    KEEP ("acpi"), KEEP ("port"), KEEP ("teaming"),
    DROP ("script", "a program run on the host"),
    DROP ("downscript", "a program run on the host"),
    DROP ("backend", "host device files"),
    END,
  };

  if (!attr_is (n, "type", "network") && !attr_is (n, "type", "bridge")) {
    removed (s, n, "only network and bridge interfaces are allowed (--network "
             "plugs every interface into a network or bridge)");
    return;
  }
  only_attrs (s, n, attrs);
  apply (s, n, rules);
}

/* ---- console, graphics, sound, input ------------------------------------- */

static void
filter_input (struct san *s, xmlNodePtr n)
{
  static const char *const types[] = { "mouse", "tablet", "keyboard", NULL };
  static const char *const kids[] = { "address", "alias", "driver", "model", NULL };
  char type[32];

  if (!in (attr (n, "type", type, sizeof type), types)) {
    removed (s, n, "a host input device");
    return;
  }
  only_children (s, n, kids);
}

/* <graphics type='vnc'><listen type='socket'/></graphics>: libvirt puts
 * the socket in its private per-domain directory. */
static bool
graphics_safe (xmlNodePtr n)
{
  xmlNodePtr l = child (n, "listen");

  return nattrs (n) == 1 && attr_is (n, "type", "vnc") && nelements (n) == 1 &&
    l && nattrs (l) == 1 && attr_is (l, "type", "socket") && nelements (l) == 0;
}

static void
filter_graphics (struct san *s, xmlNodePtr n)
{
  xmlNodePtr l;

  if (s->graphics) {
    removed (s, n, "one console is enough");
    return;
  }
  s->graphics = true;
  if (graphics_safe (n) ||
      !replacing (s, n, "VNC on a unix socket in libvirt's private directory"))
    return;
  clear (n);
  set_attr (n, "type", "vnc");
  l = xmlNewChild (n, NULL, BAD_CAST "listen", NULL);
  set_attr (l, "type", "socket");
}

/* The video memory a <model> may ask for, per size attribute, in KiB.
 * QEMU allocates it in host RAM (qxl: ram, at least twice vgamem, and
 * the larger of vram and vram64; vga, vmvga, bochs: vram), each rounded
 * up to a power of two, and no budget counts it: a point asked for GiBs,
 * libvirt passes up to 4 GiB a size.  128 MiB is twice libvirt's qxl
 * defaults (ram and vram 64 MiB) and eight times its vga one (16 MiB);
 * vgamem, the framebuffer, 64 MiB (libvirt's 16 MiB is four times; a 4K
 * screen takes 32 MiB).  Over the cap, or not a plain decimal, the
 * attribute goes and libvirt's default applies: one video device takes
 * at most 256 MiB of the host (qxl: ram 128 + vram64 128), 128 MiB more
 * than libvirt's qxl defaults. */
static const struct { const char *name; unsigned long max_kib; } video_sizes[] = {
  { "ram", 128 * 1024 }, { "vram", 128 * 1024 }, { "vram64", 128 * 1024 },
  { "vgamem", 64 * 1024 },
};

static bool
video_size_ok (const char *v, unsigned long max_kib)
{
  size_t n = strspn (v, "0123456789");

  return n > 0 && n <= 7 && !v[n] && strtoul (v, NULL, 10) <= max_kib;
}

static void
filter_vmodel (struct san *s, xmlNodePtr n)
{
  static const char *const kids[] = { "resolution", NULL };
  char v[32], d[320], why[80];
  size_t i;

  for (i = 0; i < sizeof video_sizes / sizeof video_sizes[0]; i++) {
    const char *a = video_sizes[i].name;
    if (!xmlHasProp (n, BAD_CAST a) ||
        video_size_ok (attr (n, a, v, sizeof v), video_sizes[i].max_kib))
      continue;
    describe (n, d, sizeof d);
    snprintf (why, sizeof why, "not a video memory size up to %lu MiB",
              video_sizes[i].max_kib >> 10);
    if (s->check) {
      violation (s, d, why);
      continue;
    }
    note (s->cx, "removed attribute %s of %s: %s (libvirt's default applies)", a, d, why);
    xmlUnsetProp (n, BAD_CAST a);
  }
  only_children (s, n, kids);
}

/* One display: each video device is video RAM on the host, and the
 * console shows one. */
static void
filter_video (struct san *s, xmlNodePtr n)
{
  static const struct rule rules[] = {
    FILTER ("model", filter_vmodel), KEEP ("address"), KEEP ("alias"),
    FILTER ("driver", filter_ifdriver), END,
  };

  if (s->video) {
    char d[320], why[400];
    snprintf (why, sizeof why, "one display is enough, %s is video memory on "
              "the host", child (n, "model") ? describe (child (n, "model"), d, sizeof d)
              : "each");
    removed (s, n, why);
    return;
  }
  s->video = true;
  apply (s, n, rules);
}

static void
filter_audio (struct san *s, xmlNodePtr n)
{
  char id[32];

  attr (n, "id", id, sizeof id);
  if ((attr_is (n, "type", "none") && nattrs (n) == 1 + (id[0] != 0) &&
       nelements (n) == 0) || !replacing (s, n, "no audio backend (type none)"))
    return;
  clear (n);
  if (id[0])
    set_attr (n, "id", id);
  set_attr (n, "type", "none");
}

static void
filter_port_source (struct san *s, xmlNodePtr n)
{
  static const char *const attrs[] = { "path", "append", NULL };
  static const char *const none[] = { NULL };

  only_attrs (s, n, attrs);
  only_children (s, n, none);
}

/* Make a char device of another type: type, its target, address, alias. */
static void
chardev_retype (xmlNodePtr n, const char *type)
{
  xmlNodePtr c, next;

  for (c = n->children; c; c = next) {
    next = c->next;
    if (!is (c, "target") && !is (c, "address") && !is (c, "alias"))
      drop (c);
  }
  while (n->properties)
    xmlRemoveProp (n->properties);
  set_attr (n, "type", type);
}

/* <log file=...> of a port: only to spec's console log. */
static void
filter_port_log (struct san *s, xmlNodePtr n)
{
  static const char *const attrs[] = { "file", "append", NULL };
  static const char *const none[] = { NULL };

  if (!s->sp->console_log || !attr_is (n, "file", s->sp->console_log)) {
    removed (s, n, "not known to be safe");
    return;
  }
  only_attrs (s, n, attrs);
  only_children (s, n, none);
}

/* serial, console, parallel. */
static void
filter_port (struct san *s, xmlNodePtr n)
{
  static const char *const plain[] = { "pty", "null", "vc", NULL };
  static const struct rule kids[] = {
    KEEP ("target"), KEEP ("address"), KEEP ("alias"), FILTER ("log", filter_port_log), END,
  };
  static const struct rule file_rules[] = {
    FILTER ("source", filter_port_source), KEEP ("target"), KEEP ("address"), KEEP ("alias"),
    END,
  };
  const char *log = s->sp->console_log;
  xmlNodePtr src = child (n, "source");
  char type[32];

  attr (n, "type", type, sizeof type);
  if (in (type, plain)) {
    only_attrs (s, n, (const char *const[]) { "type", NULL });
    apply (s, n, kids);
  }
  else if (strcmp (type, "file") == 0 && log && src && attr_is (src, "path", log)) {
    only_attrs (s, n, (const char *const[]) { "type", NULL });
    apply (s, n, file_rules);
  }
  else if (replacing (s, n, "a pty"))
    chardev_retype (n, "pty");
}

static void
filter_channel (struct san *s, xmlNodePtr n)
{
  static const char *const kids[] = { "target", "address", "alias", NULL };
  xmlNodePtr t = child (n, "target");
  char type[32];

  attr (n, "type", type, sizeof type);
  if (!t || !attr_is (t, "type", "virtio")) {
    removed (s, n, "only virtio channels (guestfwd reaches host services)");
    return;
  }
  if (strcmp (type, "spicevmc") == 0 || strcmp (type, "spiceport") == 0 ||
      strcmp (type, "qemu-vdagent") == 0) {
    removed (s, n, "a channel to the console client (graphics are replaced)");
    return;
  }
  if (strcmp (type, "unix") == 0 || strcmp (type, "pty") == 0 ||
      strcmp (type, "null") == 0) {
    only_attrs (s, n, (const char *const[]) { "type", NULL });
    only_children (s, n, kids);
    return;
  }
  if (xmlHasProp (t, BAD_CAST "name")) {
    if (replacing (s, n, "a unix socket in libvirt's private directory"))
      chardev_retype (n, "unix");
  }
  else if (replacing (s, n, "a pty"))
    chardev_retype (n, "pty");
}

/* ---- other devices -------------------------------------------------------- */

static bool
rng_backend_ok (xmlNodePtr b)
{
  if (nelements (b) != 0)
    return false;
  if (attr_is (b, "model", "builtin"))
    return nattrs (b) == 1 && text_is (b, "");
  return attr_is (b, "model", "random") && nattrs (b) == 1 &&
    (text_is (b, "/dev/urandom") || text_is (b, "/dev/random"));
}

static void
filter_rng_backend (struct san *s, xmlNodePtr b)
{
  if (rng_backend_ok (b) || !replacing (s, b, "/dev/urandom"))
    return;
  clear (b);
  set_attr (b, "model", "random");
  set_text (b, "/dev/urandom");
}

static void
filter_rng (struct san *s, xmlNodePtr n)
{
  static const struct rule rules[] = {
    FILTER ("backend", filter_rng_backend), KEEP ("rate"), KEEP ("address"), KEEP ("alias"),
    KEEP ("driver"), END,
  };

  apply (s, n, rules);
}

static void
filter_memory (struct san *s, xmlNodePtr n)
{
  xmlNodePtr src = child (n, "source");

  if ((!attr_is (n, "model", "dimm") && !attr_is (n, "model", "virtio-mem")) ||
      (src && child (src, "path")))
    removed (s, n, "memory backed by a host file or device");
}

/* action='dump': libvirt writes the guest's whole memory to its
 * auto_dump_path on the host at each expiry, and resumes the guest, which
 * can arm the watchdog again at once: the host's disk filled at will. */
static void
filter_watchdog (struct san *s, xmlNodePtr n)
{
  if (attr_is (n, "action", "dump") &&
      replacing (s, n, "action reset: no dump of the guest's memory on the host"))
    set_attr (n, "action", "reset");
}

static void
filter_devices (struct san *s, xmlNodePtr n)
{
  static const struct rule rules[] = {
    FILTER ("disk", filter_disk), KEEP ("controller"), FILTER ("interface", filter_interface),
    FILTER ("input", filter_input), KEEP ("hub"), FILTER ("graphics", filter_graphics),
    FILTER ("video", filter_video), FILTER ("audio", filter_audio), KEEP ("sound"),
    FILTER ("serial", filter_port), FILTER ("console", filter_port),
    FILTER ("parallel", filter_port), FILTER ("channel", filter_channel),
    FILTER ("watchdog", filter_watchdog), KEEP ("memballoon"), FILTER ("rng", filter_rng),
    KEEP ("panic"), KEEP ("iommu"), FILTER ("memory", filter_memory),
    DROP ("emulator", "a host program (libvirt picks this host's)"),
    DROP ("hostdev", "a host device"),
    DROP ("filesystem", "a host directory"),
    DROP ("redirdev", "USB redirection from a host service"),
    DROP ("redirfilter", "USB redirection"),
    DROP ("smartcard", "the host's smartcard or a host service"),
    DROP ("tpm", "the host's TPM, or TPM state not in the restore point"),
    DROP ("vsock", "a socket to the host (AF_VSOCK)"),
    DROP ("shmem", "memory shared with the host"),
    DROP ("lease", "a host lock space"),
    DROP ("crypto", "a host crypto backend"),
    DROP ("pstore", "a host file"), DROP ("nvram", "a host file"),
    END,
  };

  apply (s, n, rules);
}

/* ---- the domain ----------------------------------------------------------- */

/* coredump-destroy, coredump-restart: libvirt writes the guest's whole
 * memory to its auto_dump_path on the host at each crash, which a guest
 * reports at will (pvpanic: one outb); with restart, again and again. */
static void
filter_on_crash (struct san *s, xmlNodePtr n)
{
  const char *to = text_is (n, "coredump-destroy") ? "destroy"
    : text_is (n, "coredump-restart") ? "restart" : NULL;
  CLEANUP_FREE char *what = NULL;

  if (!to)
    return;
  what = xasprintf ("%s: no dump of the guest's memory on the host", to);
  if (replacing (s, n, what))
    set_text (n, to);
}

/* <resource><partition>/machine</partition></resource> (libvirt's
 * default, in every live dump) is kept; any other placement goes. */
static void
filter_resource (struct san *s, xmlNodePtr n)
{
  xmlNodePtr p = child (n, "partition");

  if (nattrs (n) != 0 || nelements (n) != 1 || !p || nattrs (p) != 0 ||
      !text_is (p, "/machine"))
    removed (s, n, "a host resource partition");
}

/* Does attribute a hold an entity reference? */
static bool
attr_has_entity (xmlAttrPtr a)
{
  xmlNodePtr c;

  for (c = a->children; c; c = c->next)
    if (c->type == XML_ENTITY_REF_NODE)
      return true;
  return false;
}

/* Attributes of n holding entity references go. */
static void
scrub_attr_entities (struct san *s, xmlNodePtr n)
{
  xmlAttrPtr a, next;
  char d[320];

  for (a = n->properties; a; a = next) {
    next = a->next;
    if (!attr_has_entity (a))
      continue;
    snprintf (d, sizeof d, "%s= of <%s>", (const char *) a->name,
              (const char *) n->name);
    if (s->check) {
      violation (s, d, "an entity reference");
      continue;
    }
    note (s->cx, "removed %s: an entity reference", d);
    xmlRemoveProp (a);
  }
}

/* Entity references anywhere, in text and in attributes (their
 * declarations go with the DTD). */
static void
scrub_entities (struct san *s, xmlNodePtr n)
{
  xmlNodePtr c, next;

  scrub_attr_entities (s, n);
  for (c = n->children; c; c = next) {
    next = c->next;
    if (c->type == XML_ENTITY_REF_NODE)
      removed (s, c, "an entity reference");
    else if (c->type == XML_ELEMENT_NODE)
      scrub_entities (s, c);
  }
}

/* libvirt takes the devices of every <devices>; the rewrite joins them
 * (domain-xml.c), so a second one was never looked at. */
static void
second_devices (struct san *s, xmlNodePtr root)
{
  xmlNodePtr d = child (root, "devices");

  for (d = d ? d->next : NULL; d; d = d->next)
    if (is (d, "devices")) {
      removed (s, d, "a second <devices>, not checked");
      return;
    }
}

static void
sanitize_domain (struct san *s, xmlDocPtr doc)
{
  static const struct rule rules[] = {
    KEEP ("name"), KEEP ("uuid"), KEEP ("genid"), KEEP ("title"), KEEP ("description"),
    KEEP ("metadata"), KEEP ("memory"), KEEP ("currentMemory"), KEEP ("maxMemory"),
    KEEP ("vcpu"), KEEP ("vcpus"), KEEP ("iothreads"), KEEP ("iothreadids"),
    KEEP ("defaultiothread"), KEEP ("memtune"), KEEP ("features"), KEEP ("cpu"),
    KEEP ("clock"), KEEP ("on_poweroff"), KEEP ("on_reboot"),
    FILTER ("on_crash", filter_on_crash), KEEP ("on_lockfailure"), KEEP ("pm"),
    FILTER ("os", filter_os),
    FILTER ("sysinfo", filter_sysinfo), FILTER ("devices", filter_devices),
    DROP ("seclabel", "security labels of another host"),
    DROP ("memoryBacking", "host memory backing"),
    DROP ("cputune", "host CPU scheduling"),
    DROP ("numatune", "host NUMA placement"),
    DROP ("blkiotune", "host block device tuning"),
    FILTER ("resource", filter_resource),
    DROP ("bootloader", "a host program"),
    DROP ("bootloader_args", "a host program's arguments"),
    END,
  };
  xmlNodePtr root = xmlDocGetRootElement (doc);
  xmlDtdPtr dtd = doc->intSubset;

  if (dtd) {
    if (s->check)
      violation (s, "a document type declaration", "entities");
    else {
      note (s->cx, "removed the document type declaration: entities");
      xmlUnlinkNode ((xmlNodePtr) dtd);
      doc->intSubset = NULL;
    }
  }
  /* The references point into the declarations: freed after them. */
  scrub_entities (s, root);
  if (dtd && !s->check)
    xmlFreeDtd (dtd);
  second_devices (s, root);
  if (!attr_is (root, "type", "kvm") && !attr_is (root, "type", "qemu") &&
      replacing (s, root, "type kvm"))
    set_attr (root, "type", "kvm");
  apply (s, root, rules);
}

void
xml_sanitize (xmlDocPtr doc, const struct instant_xml_spec *sp,
              void (*note_cb) (void *, const char *), void *opaque)
{
  struct ctx cx = { .note = note_cb, .opaque = opaque };
  struct san s = { .cx = &cx, .sp = sp };

  sanitize_domain (&s, doc);
}

int
instant_xml_check (const char *xml, const struct instant_xml_spec *sp)
{
  struct ctx cx = { 0 };
  struct san s = { .cx = &cx, .sp = sp, .check = true };
  xmlDocPtr doc;

  doc = virt_xml_parse (xml, 0, NULL);
  if (!doc) {
    error_setx ("domain XML does not parse");
    return -1;
  }
  if (!is (xmlDocGetRootElement (doc), "domain"))
    violation (&s, "a root other than <domain>", "not a domain");
  else
    sanitize_domain (&s, doc);
  xmlFreeDoc (doc);
  return s.failed ? -1 : 0;
}
