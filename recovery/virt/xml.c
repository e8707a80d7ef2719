/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxml2 helpers for libvirt's XML (recovery/virt/xml.h): the safe
 * parse, element and attribute access, XPath, scoped frees.
 */
#include <libxml/xpathInternals.h>

#include "recovery/util/util.h"
#include "recovery/virt/xml.h"

xmlDocPtr
virt_xml_parse (const char *xml, int extra_options, int *line)
{
  xmlDocPtr doc;
  const xmlError *e;
  char msg[256];
  size_t l;

  if (line)
    *line = 0;
  if (!xml) {
    error_setx ("no XML");
    return NULL;
  }
  xmlResetLastError ();
  doc = xmlReadMemory (xml, (int) strlen (xml), "in.xml", NULL,
                       VIRT_XML_PARSE_SAFE | (extra_options & XML_PARSE_NOBLANKS));
  if (doc)
    return doc;
  e = xmlGetLastError ();
  snprintf (msg, sizeof msg, "%s", e && e->message ? e->message : "not XML");
  l = strlen (msg);
  while (l && msg[l - 1] == '\n')    /* libxml2 ends it with a newline */
    msg[--l] = '\0';
  if (line && e)
    *line = e->line;
  error_setx ("%s", msg);
  return NULL;
}

bool
virt_xml_is (xmlNodePtr n, const char *name)
{
  return n && n->type == XML_ELEMENT_NODE && !n->ns &&
    strcmp ((const char *) n->name, name) == 0;
}

xmlNodePtr
virt_xml_child (xmlNodePtr n, const char *name)
{
  xmlNodePtr c;

  for (c = n ? n->children : NULL; c; c = c->next)
    if (virt_xml_is (c, name))
      return c;
  return NULL;
}

const char *
virt_xml_attr (xmlNodePtr n, const char *name, char *buf, size_t len)
{
  CLEANUP_XML_FREE xmlChar *v = n ? xmlGetProp (n, BAD_CAST name) : NULL;

  snprintf (buf, len, "%s", v ? (const char *) v : "");
  return buf;
}

const char *
virt_xml_text (xmlNodePtr n, char *buf, size_t len)
{
  CLEANUP_XML_FREE xmlChar *t = n ? xmlNodeGetContent (n) : NULL;

  snprintf (buf, len, "%s", t ? (const char *) t : "");
  return buf;
}

/* XPath errors are bootback's, not printed by libxml2. */
static void
quiet (void *opaque, const xmlError *e)
{
}

xmlXPathContextPtr
virt_xpath_context (xmlDocPtr doc, const char *prefix, const char *ns_uri)
{
  xmlXPathContextPtr ctx = doc ? xmlXPathNewContext (doc) : NULL;

  if (!ctx) {
    error_setx ("XPath: no context");
    return NULL;
  }
  ctx->error = (xmlStructuredErrorFunc) quiet;
  if (prefix && ns_uri &&
      xmlXPathRegisterNs (ctx, BAD_CAST prefix, BAD_CAST ns_uri) != 0) {
    xmlXPathFreeContext (ctx);
    error_setx ("XPath: cannot bind %s to %s", prefix, ns_uri);
    return NULL;
  }
  return ctx;
}

xmlXPathObjectPtr
virt_xpath_eval (xmlXPathContextPtr ctx, const char *expr)
{
  xmlXPathObjectPtr o = ctx ? xmlXPathEvalExpression (BAD_CAST expr, ctx) : NULL;

  if (!o)
    error_setx ("XPath %s: cannot evaluate", expr);
  return o;
}

size_t
virt_xpath_count (xmlXPathObjectPtr obj)
{
  if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval)
    return 0;
  return (size_t) obj->nodesetval->nodeNr;
}

xmlNodePtr
virt_xpath_node (xmlXPathObjectPtr obj, size_t i)
{
  return i < virt_xpath_count (obj) ? obj->nodesetval->nodeTab[i] : NULL;
}

char *
virt_xml_write (int (*write) (xmlTextWriterPtr w, const void *arg),
                const void *arg, const char *what)
{
  xmlBufferPtr buf = xmlBufferCreate ();
  xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory (buf, 0) : NULL;
  char *out = NULL;

  if (!w)
    error_setx ("libxml2: cannot create a writer");
  else if (write (w, arg) < 0)
    error_setx ("libxml2: could not write %s", what);
  else {
    xmlFreeTextWriter (w);             /* flushes into buf */
    w = NULL;
    out = xstrdup ((const char *) xmlBufferContent (buf));
  }
  xmlFreeTextWriter (w);
  if (buf)
    xmlBufferFree (buf);
  return out;
}

/* The <disk> of devices whose <target dev=> is target, or NULL. */
static xmlNodePtr
disk_by_target (xmlNodePtr devs, const char *target)
{
  char dev[256];
  xmlNodePtr x;

  for (x = devs ? devs->children : NULL; x; x = x->next)
    if (virt_xml_is (x, "disk") &&
        strcmp (virt_xml_attr (virt_xml_child (x, "target"), "dev", dev, sizeof dev),
                target) == 0)
      return x;
  return NULL;
}

char *
virt_xml_disk_replace (const char *xml, const char *target, const char *disk_xml)
{
  static const char *const storage[] = { "driver", "source", "auth", "backingStore",
                                         "mirror", NULL };
  CLEANUP_XML_DOC xmlDocPtr doc = virt_xml_parse (xml, 0, NULL);
  CLEANUP_XML_DOC xmlDocPtr nd = virt_xml_parse (disk_xml, 0, NULL);
  xmlNodePtr old, neu, x, next, first;
  xmlChar *out = NULL;
  int len = 0;
  char *ret, type[32];
  size_t i;

  old = doc ? disk_by_target (virt_xml_child (xmlDocGetRootElement (doc), "devices"),
                              target) : NULL;
  neu = nd ? xmlDocGetRootElement (nd) : NULL;
  if (!old || !virt_xml_is (neu, "disk")) {
    error_setx ("domain XML: no disk %s to replace (or not a <disk> to put there)", target);
    return NULL;
  }
  for (x = old->children; x; x = next) {
    next = x->next;
    for (i = 0; storage[i]; i++)
      if (virt_xml_is (x, storage[i])) {
        xmlUnlinkNode (x);
        xmlFreeNode (x);
        break;
      }
  }
  virt_xml_attr (neu, "type", type, sizeof type);
  xmlSetProp (old, BAD_CAST "type", BAD_CAST (type[0] ? type : "file"));
  first = old->children;
  for (x = neu->children; x; x = x->next) {
    xmlNodePtr c = xmlDocCopyNode (x, doc, 1);
    if (first)
      xmlAddPrevSibling (first, c);
    else
      xmlAddChild (old, c);
  }
  xmlDocDumpMemory (doc, &out, &len);
  ret = out ? xstrdup ((const char *) out) : NULL;
  xmlFree (out);
  if (!ret)
    error_setx ("libxml2: could not write the domain XML");
  return ret;
}

void
virt_cleanup_xml_doc (xmlDocPtr *p)
{
  if (*p)
    xmlFreeDoc (*p);
}

void
virt_cleanup_xpath_ctx (xmlXPathContextPtr *p)
{
  if (*p)
    xmlXPathFreeContext (*p);
}

void
virt_cleanup_xpath_obj (xmlXPathObjectPtr *p)
{
  if (*p)
    xmlXPathFreeObject (*p);
}

void
virt_cleanup_xml_free (xmlChar **p)
{
  if (*p)
    xmlFree (*p);
}
