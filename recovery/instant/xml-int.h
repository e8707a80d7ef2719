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

typedef void (*note_fn) (void *, const char *);

struct ctx {
  note_fn note;
  void *opaque;
};

static inline void note (struct ctx *c, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));

/* Pass one formatted note to the caller's callback. */
static inline void
note (struct ctx *c, const char *fmt, ...)
{
  char buf[512];
  va_list ap;

  if (!c->note)
    return;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  c->note (c->opaque, buf);
}

/* Is n the element name (in no namespace: <qemu:devices> is not
 * <devices>)? */
static inline bool
is (xmlNodePtr n, const char *name)
{
  return n && n->type == XML_ELEMENT_NODE && !n->ns &&
    strcmp ((const char *) n->name, name) == 0;
}

/* First element child called name, or NULL. */
static inline xmlNodePtr
child (xmlNodePtr n, const char *name)
{
  xmlNodePtr c;

  for (c = n ? n->children : NULL; c; c = c->next)
    if (is (c, name))
      return c;
  return NULL;
}

/* The attribute's value (owned by the caller's buffer) or "" if absent. */
static inline const char *
attr (xmlNodePtr n, const char *name, char *buf, size_t len)
{
  xmlChar *v = n ? xmlGetProp (n, BAD_CAST name) : NULL;

  snprintf (buf, len, "%s", v ? (const char *) v : "");
  xmlFree (v);
  return buf;
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
