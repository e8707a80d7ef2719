/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The small libxml2 helpers shared by every reader of libvirt's XML
 * (instant/domain-xml.c, ingest/backup-xml.c, lab/domain-xml.c): parse
 * safely, find elements, copy an attribute or text into a buffer,
 * evaluate an XPath, and free what libxml2 allocates at the end of the
 * scope.  libxml2 and util only, no libvirt (recovery/virt/xml.c), so the
 * fuzzers can build it from source with the parsers they fuzz.
 *
 * Safety: the XML comes from libvirt, from a restore point (written by
 * the production host) or from a user's file; it is never trusted.  The
 * parse never touches the network (XML_PARSE_NONET), never substitutes
 * entities (no XML_PARSE_NOENT) nor loads a DTD (no XML_PARSE_DTDLOAD),
 * and libxml2's own messages go nowhere (XML_PARSE_NOERROR,
 * XML_PARSE_NOWARNING): the error is bootback's.
 */
#ifndef BOOTBACK_VIRT_XML_H
#define BOOTBACK_VIRT_XML_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <libxml/xpath.h>

/* The options of every parse; callers may add XML_PARSE_NOBLANKS. */
#define VIRT_XML_PARSE_SAFE (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/* Parse the NUL-terminated xml with VIRT_XML_PARSE_SAFE | extra_options
 * (only XML_PARSE_NOBLANKS is accepted; anything that would substitute
 * entities or load a DTD is masked off).  NULL with bootback's error set
 * to libxml2's message, its trailing newlines removed ("no XML" for NULL
 * xml, "not XML" if libxml2 gives none), and *line (if not NULL) to the
 * line of the error (0 if unknown); callers put their context in front
 * with error_prefix:
 *   doc = virt_xml_parse (xml, 0, &line);
 *   if (!doc) error_prefix ("domain XML does not parse: line %d", line); */
xmlDocPtr virt_xml_parse (const char *xml, int extra_options, int *line);

/* Is n the element called name in no namespace (<qemu:devices> is not
 * <devices>)? */
bool virt_xml_is (xmlNodePtr n, const char *name);
/* The first element child of n (NULL is fine) called name, or NULL. */
xmlNodePtr virt_xml_child (xmlNodePtr n, const char *name);
/* Copy attribute name of n (NULL is fine) into buf, "" if absent;
 * truncated to len - 1 bytes.  Returns buf. */
const char *virt_xml_attr (xmlNodePtr n, const char *name, char *buf, size_t len);
/* Copy the text content of n (NULL is fine: "") into buf, truncated.
 * Returns buf. */
const char *virt_xml_text (xmlNodePtr n, char *buf, size_t len);

/* An XPath context on doc with prefix bound to the namespace ns_uri
 * (both NULL: none); NULL with the error set. */
xmlXPathContextPtr virt_xpath_context (xmlDocPtr doc, const char *prefix,
                                       const char *ns_uri);
/* Evaluate expr: the result, or NULL with the error
 * "XPath EXPR: cannot evaluate". */
xmlXPathObjectPtr virt_xpath_eval (xmlXPathContextPtr ctx, const char *expr);
/* The number of nodes of a node-set result (0 for NULL or another type)
 * and its i-th node. */
size_t virt_xpath_count (xmlXPathObjectPtr obj);
xmlNodePtr virt_xpath_node (xmlXPathObjectPtr obj, size_t i);

/* A document written by write (w, arg) with libxml2's writer, in memory:
 * the text, malloc'd, or NULL with the error "libxml2: could not write
 * WHAT" (write returns < 0 on a failed call of the writer). */
char *virt_xml_write (int (*write) (xmlTextWriterPtr w, const void *arg),
                      const void *arg, const char *what);

/* The domain XML xml with the storage of its disk target (<driver>,
 * <source>, <auth>, <backingStore>, <mirror> and the type attribute)
 * taken from disk_xml, a <disk>; everything else of the disk (target,
 * address, boot order, ...) kept.  malloc'd, NULL with the error. */
char *virt_xml_disk_replace (const char *xml, const char *target, const char *disk_xml);

/* Free at the end of the scope (NULL is fine):
 *   CLEANUP_XML_DOC xmlDocPtr doc = virt_xml_parse (xml, 0, NULL);
 *   CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = virt_xpath_context (doc, NULL, NULL);
 *   CLEANUP_XPATH_OBJ xmlXPathObjectPtr o = virt_xpath_eval (ctx, "/domain/devices/disk");
 *   CLEANUP_XML_FREE xmlChar *v = xmlGetProp (n, BAD_CAST "type"); */
void virt_cleanup_xml_doc (xmlDocPtr *p);
void virt_cleanup_xpath_ctx (xmlXPathContextPtr *p);
void virt_cleanup_xpath_obj (xmlXPathObjectPtr *p);
void virt_cleanup_xml_free (xmlChar **p);
#define CLEANUP_XML_DOC   __attribute__((cleanup (virt_cleanup_xml_doc)))
#define CLEANUP_XPATH_CTX __attribute__((cleanup (virt_cleanup_xpath_ctx)))
#define CLEANUP_XPATH_OBJ __attribute__((cleanup (virt_cleanup_xpath_obj)))
#define CLEANUP_XML_FREE  __attribute__((cleanup (virt_cleanup_xml_free)))

#endif /* BOOTBACK_VIRT_XML_H */
