/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to recovery/instant: the small libxml2 helpers and the notes
 * context shared by the domain XML rewrite (domain-xml.c) and the
 * allow-list sanitizer (sanitize.c).
 */
#ifndef BOOTBACK_INSTANT_XML_INT_H
#define BOOTBACK_INSTANT_XML_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <libxml/tree.h>

#include "recovery/virt/xml.h"

typedef void (*note_fn) (void *, const char *);

struct ctx {
  note_fn note;
  void *opaque;
};

static inline void note (struct ctx *c, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Pass one formatted note to the caller's callback: one line of
 * printable ASCII, whatever the saved definition's values in it hold (a
 * character reference makes a newline, a carriage return or a C1 control
 * of one; the note goes to terminals, logs and JSON). */
static inline void
note (struct ctx *c, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  size_t i;

  if (!c->note)
    return;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  for (i = 0; buf[i]; i++)
    if ((unsigned char) buf[i] < 0x20 || (unsigned char) buf[i] >= 0x7f)
      buf[i] = '?';
  c->note (c->opaque, buf);
}

/* The element helpers of recovery/virt/xml.h under the short names the
 * rewrite and the allow-list read best with: is n the element name (in
 * no namespace), its first child called name, an attribute into buf. */
static inline bool
is (xmlNodePtr n, const char *name)
{
  return virt_xml_is (n, name);
}

static inline xmlNodePtr
child (xmlNodePtr n, const char *name)
{
  return virt_xml_child (n, name);
}

static inline const char *
attr (xmlNodePtr n, const char *name, char *buf, size_t len)
{
  return virt_xml_attr (n, name, buf, len);
}

static inline void
set_attr (xmlNodePtr n, const char *name, const char *value)
{
  xmlSetProp (n, BAD_CAST name, BAD_CAST value);
}

static inline void
del_attr (xmlNodePtr n, const char *name)
{
  xmlUnsetProp (n, BAD_CAST name);
}

static inline void
drop (xmlNodePtr n)
{
  if (n) {
    xmlUnlinkNode (n);
    xmlFreeNode (n);
  }
}

/* Remove every element child called name; returns how many. */
static inline int
drop_children (xmlNodePtr n, const char *name)
{
  xmlNodePtr c, next;
  int k = 0;

  for (c = n->children; c; c = next) {
    next = c->next;
    if (is (c, name)) {
      drop (c);
      k++;
    }
  }
  return k;
}

/* The element child called name, created (appended) if missing. */
static inline xmlNodePtr
ensure_child (xmlNodePtr n, const char *name)
{
  xmlNodePtr c = child (n, name);

  return c ? c : xmlNewChild (n, NULL, BAD_CAST name, NULL);
}

static inline void
set_text (xmlNodePtr n, const char *text)
{
  xmlNodeSetContent (n, NULL);
  xmlNodeAddContent (n, BAD_CAST text);
}

#endif /* BOOTBACK_INSTANT_XML_INT_H */
