/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain XML of lab VMs ("conf" in libvirt's sense: build and parse,
 * pure, no libvirt calls).  A lab VM booted from a disk image gets a
 * transient domain modelled on images/tiny.xml.in: TCG (KVM hangs on the
 * machines we test on; a lab VM is throwaway, speed of the guest matters
 * less than booting at all), ACPI, virtio disk and NIC on the lab bridge,
 * serial console on a pty logged to a file, the guest agent channel, VNC
 * on a unix socket
 * so that virDomainScreenshot works.
 */
#include <errno.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "lab/lab.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"
#include "recovery/virt/xml.h"

/* Each writer below writes one part of the domain and returns -1 as soon
 * as a libxml2 call fails. */
#define W(call) do { if ((call) < 0) return -1; } while (0)

/* <tag ATTR="VALUE"/> */
static int
empty_element (xmlTextWriterPtr w, const char *tag, const char *attr,
               const char *value)
{
  W (xmlTextWriterStartElement (w, BAD_CAST tag));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST attr, BAD_CAST value));
  W (xmlTextWriterEndElement (w));
  return 0;
}

/* name, memory, vcpus, os, features, clock, lifecycle actions */
static int
write_machine (xmlTextWriterPtr w, const struct lab_domain_spec *s)
{
  char mem[32], vcpus[16];

  snprintf (mem, sizeof mem, "%" PRIu64, s->memory_mib ? s->memory_mib : 256);
  snprintf (vcpus, sizeof vcpus, "%d", s->vcpus > 0 ? s->vcpus : 1);
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "qemu"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "name", BAD_CAST s->name));
  W (xmlTextWriterStartElement (w, BAD_CAST "memory"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "unit", BAD_CAST "MiB"));
  W (xmlTextWriterWriteString (w, BAD_CAST mem));
  W (xmlTextWriterEndElement (w));
  W (xmlTextWriterWriteElement (w, BAD_CAST "vcpu", BAD_CAST vcpus));
  W (xmlTextWriterStartElement (w, BAD_CAST "os"));
  W (xmlTextWriterStartElement (w, BAD_CAST "type"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "arch", BAD_CAST "x86_64"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "machine", BAD_CAST "pc"));
  W (xmlTextWriterWriteString (w, BAD_CAST "hvm"));
  W (xmlTextWriterEndElement (w));
  W (empty_element (w, "boot", "dev", "hd"));
  /* the firmware's messages ("No bootable device", ...) on the serial
   * console too, where lab/console.c reads them */
  W (empty_element (w, "bios", "useserial", "yes"));
  W (xmlTextWriterEndElement (w));                      /* os */
  W (xmlTextWriterStartElement (w, BAD_CAST "features"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "acpi", NULL));
  W (xmlTextWriterEndElement (w));
  W (empty_element (w, "clock", "offset", "utc"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "on_poweroff", BAD_CAST "destroy"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "on_reboot", BAD_CAST "restart"));
  W (xmlTextWriterWriteElement (w, BAD_CAST "on_crash", BAD_CAST "destroy"));
  return 0;
}

/* The disk image, virtio. */
static int
write_disk (xmlTextWriterPtr w, const struct lab_domain_spec *s)
{
  W (xmlTextWriterStartElement (w, BAD_CAST "disk"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "file"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "device", BAD_CAST "disk"));
  W (xmlTextWriterStartElement (w, BAD_CAST "driver"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "name", BAD_CAST "qemu"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type",
                                  BAD_CAST (s->disk_format ? s->disk_format : "qcow2")));
  W (xmlTextWriterEndElement (w));
  W (empty_element (w, "source", "file", s->disk));
  W (xmlTextWriterStartElement (w, BAD_CAST "target"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "dev", BAD_CAST "vda"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "bus", BAD_CAST "virtio"));
  W (xmlTextWriterEndElement (w));
  W (xmlTextWriterEndElement (w));                      /* disk */
  return 0;
}

/* The NIC, on the lab bridge, no option ROM. */
static int
write_interface (xmlTextWriterPtr w, const struct lab_domain_spec *s)
{
  W (xmlTextWriterStartElement (w, BAD_CAST "interface"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "bridge"));
  W (empty_element (w, "source", "bridge", s->bridge));
  W (empty_element (w, "mac", "address", s->mac));
  W (empty_element (w, "model", "type", "virtio"));
  W (empty_element (w, "rom", "enabled", "no"));
  W (xmlTextWriterEndElement (w));                      /* interface */
  return 0;
}

/* Serial console on a pty logged to a file, guest agent channel, VNC on a unix socket and
 * a VGA card (for screenshots), no balloon. */
static int
write_console (xmlTextWriterPtr w, const struct lab_domain_spec *s)
{
  if (s->serial_log) {
    /* a pty, so that `lab console` can attach it (libvirt attaches a pty
     * or a unix socket, not a file), every byte also logged to the file */
    W (xmlTextWriterStartElement (w, BAD_CAST "serial"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "pty"));
    W (xmlTextWriterStartElement (w, BAD_CAST "log"));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "file", BAD_CAST s->serial_log));
    W (xmlTextWriterWriteAttribute (w, BAD_CAST "append", BAD_CAST "on"));
    W (xmlTextWriterEndElement (w));
    W (empty_element (w, "target", "port", "0"));
    W (xmlTextWriterEndElement (w));
  }
  W (xmlTextWriterStartElement (w, BAD_CAST "channel"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "unix"));
  W (xmlTextWriterStartElement (w, BAD_CAST "target"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "virtio"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "name", BAD_CAST "org.qemu.guest_agent.0"));
  W (xmlTextWriterEndElement (w));
  W (xmlTextWriterEndElement (w));
  W (xmlTextWriterStartElement (w, BAD_CAST "graphics"));
  W (xmlTextWriterWriteAttribute (w, BAD_CAST "type", BAD_CAST "vnc"));
  W (empty_element (w, "listen", "type", "socket"));
  W (xmlTextWriterEndElement (w));
  W (xmlTextWriterStartElement (w, BAD_CAST "video"));
  W (empty_element (w, "model", "type", "vga"));
  W (xmlTextWriterEndElement (w));
  W (empty_element (w, "memballoon", "model", "none"));
  return 0;
}

static int
write_domain (xmlTextWriterPtr w, const void *arg)
{
  const struct lab_domain_spec *s = arg;

  xmlTextWriterSetIndent (w, 1);
  xmlTextWriterSetIndentString (w, BAD_CAST "  ");
  W (xmlTextWriterStartElement (w, BAD_CAST "domain"));
  W (write_machine (w, s));
  W (xmlTextWriterStartElement (w, BAD_CAST "devices"));
  W (write_disk (w, s));
  W (write_interface (w, s));
  W (write_console (w, s));
  W (xmlTextWriterEndElement (w));                      /* devices */
  W (xmlTextWriterEndElement (w));                      /* domain */
  W (xmlTextWriterEndDocument (w));
  return 0;
}

char *
lab_domain_xml (const struct lab_domain_spec *s)
{
  char what[300];

  snprintf (what, sizeof what, "the domain XML of %s", s->name);
  return virt_xml_write (write_domain, s, what);
}

static char *
attr (xmlNodePtr n, const char *child, const char *name)
{
  xmlNodePtr c;

  for (c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp (c->name, BAD_CAST child) == 0) {
      xmlChar *v = xmlGetProp (c, BAD_CAST name);
      if (v) {
        char *s = xstrdup ((const char *) v);
        xmlFree (v);
        return s;
      }
    }
  return xstrdup ("");
}

/* The document of a domain XML and an XPath context on it (prefix bb
 * bound to the verification hints' namespace): 0, or -1 with the error
 * set.  Parsed as every libvirt XML is (recovery/virt/xml.h). */
static int
parse_domain (const char *xml, xmlDocPtr *doc, xmlXPathContextPtr *ctx)
{
  *doc = virt_xml_parse (xml, 0, NULL);
  if (!*doc) {
    error_prefix ("domain XML does not parse");
    return -1;
  }
  *ctx = virt_xpath_context (*doc, "bb", LAB_VERIFY_XMLNS);
  return *ctx ? 0 : -1;
}

int
lab_domain_interfaces (const char *xml, char ***taps, char ***bridges,
                       char ***types)
{
  CLEANUP_XML_DOC xmlDocPtr doc = NULL;
  CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = NULL;
  CLEANUP_XPATH_OBJ xmlXPathObjectPtr obj = NULL;
  int n, i;

  *taps = *bridges = *types = NULL;
  if (parse_domain (xml, &doc, &ctx) == -1)
    return -1;
  obj = virt_xpath_eval (ctx, "/domain/devices/interface");
  if (!obj)
    return -1;
  n = (int) virt_xpath_count (obj);
  *taps = xcalloc (n + 1, sizeof (char *));
  *bridges = xcalloc (n + 1, sizeof (char *));
  *types = xcalloc (n + 1, sizeof (char *));
  for (i = 0; i < n; i++) {
    xmlNodePtr node = virt_xpath_node (obj, i);
    xmlChar *type = xmlGetProp (node, BAD_CAST "type");
    char *src;

    (*types)[i] = xstrdup (type ? (const char *) type : "");
    (*taps)[i] = attr (node, "target", "dev");
    /* bridge= for type bridge (and network, once libvirt resolved it),
     * network= for type network. */
    src = attr (node, "source", "bridge");
    if (!src[0] && type && xmlStrcmp (type, BAD_CAST "network") == 0) {
      free (src);
      src = attr (node, "source", "network");
    }
    (*bridges)[i] = src;
    xmlFree (type);
  }
  return n;
}

int
lab_domain_check (const char *xml, const char *bridge, const char *name,
                  const struct instant_xml_spec *allowed)
{
  char **taps, **bridges, **types;
  int n, i, r = 0;

  n = lab_domain_interfaces (xml, &taps, &bridges, &types);
  if (n < 0)
    return -1;
  if (n == 0) {
    error_setx ("VM %s has no network interface: it cannot be checked", name);
    r = -1;
  }
  for (i = 0; i < n && r == 0; i++)
    if (strcmp (types[i], "bridge") != 0 || strcmp (bridges[i], bridge) != 0) {
      error_setx ("isolation: VM %s: interface %d is type '%s' on '%s', not "
                  "on the lab bridge %s; refusing to start it", name, i,
                  types[i], bridges[i], bridge);
      r = -1;
    }
  strv_free (taps);
  strv_free (bridges);
  strv_free (types);
  if (r == 0 && allowed && instant_xml_check (xml, allowed) == -1) {
    error_prefix ("VM %s: refusing to start it", name);
    r = -1;
  }
  return r;
}

void
lab_mac_from_name (const char *name, char out[18])
{
  uint32_t h = 2166136261u;                     /* FNV-1a */

  for (; *name; name++)
    h = (h ^ (unsigned char) *name) * 16777619u;
  snprintf (out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff,
            (h >> 8) & 0xff, h & 0xff);
}

/* Text of the first child element of n named name (malloc'd) or NULL. */
static char *
child_text (xmlNodePtr n, const char *name)
{
  xmlNodePtr c;

  for (c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp (c->name, BAD_CAST name) == 0) {
      xmlChar *t = xmlNodeGetContent (c);
      char *s = xstrdup (t ? (const char *) t : "");
      xmlFree (t);
      return s;
    }
  return NULL;
}

int
lab_domain_verify_hints (const char *xml, struct lab_verify_hints *h)
{
  CLEANUP_XML_DOC xmlDocPtr doc = NULL;
  CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = NULL;
  CLEANUP_XPATH_OBJ xmlXPathObjectPtr obj = NULL;
  xmlNodePtr n, c;

  memset (h, 0, sizeof *h);
  if (parse_domain (xml, &doc, &ctx) == -1)
    return -1;
  obj = virt_xpath_eval (ctx, "/domain/metadata/bb:verify");
  if (!obj || virt_xpath_count (obj) == 0) {
    error_clear ();
    return 0;
  }
  n = virt_xpath_node (obj, 0);
  h->address = child_text (n, "address");
  h->subnet = child_text (n, "subnet");
  h->gateway = child_text (n, "gateway");
  for (c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrcmp (c->name, BAD_CAST "check") == 0 &&
        h->nchecks < LAB_MAX_HINT_CHECKS) {
      xmlChar *t = xmlNodeGetContent (c);
      h->checks[h->nchecks++] = xstrdup (t ? (const char *) t : "");
      xmlFree (t);
    }
  return 1;
}

void
lab_verify_hints_clear (struct lab_verify_hints *h)
{
  int i;

  free (h->address);
  free (h->subnet);
  free (h->gateway);
  for (i = 0; i < h->nchecks; i++)
    free (h->checks[i]);
  memset (h, 0, sizeof *h);
}
