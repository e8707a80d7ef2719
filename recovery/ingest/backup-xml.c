/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt XML for backups, built and parsed with libxml2: the domain's
 * disks, the pull-mode <domainbackup>, the <domaincheckpoint>, the disks
 * a checkpoint tracks, the socket of a running backup job, and bootback's
 * marker in a domain's <metadata>; and the host name and pkipath= of a
 * libvirt URI (libxml2's URI parser).  Pure functions (libvirt's "conf"
 * side): no libvirt calls, golden-file tested by test-backup-xml.c;
 * backup.c makes the calls that act.  The parse and the element and
 * attribute helpers are recovery/virt/xml.h's, shared by every reader of
 * libvirt's XML.
 */
#include <libxml/uri.h>
#include <libxml/xmlsave.h>

#include "recovery/ingest/ingest-int.h"
#include "recovery/virt/xml.h"

/* Parse xml safely (virt_xml_parse); NULL with an error naming what
 * ("WHAT: invalid XML: libxml2's message"). */
static xmlDocPtr
parse (const char *xml, const char *what)
{
  xmlDocPtr doc;

  if (!xml) {
    error_setx ("%s: no XML", what);
    return NULL;
  }
  doc = virt_xml_parse (xml, 0, NULL);
  if (!doc)
    error_prefix ("%s: invalid XML", what);
  return doc;
}

/* ---- parsing ------------------------------------------------------------------ */

/* The root element of doc (NULL if doc is NULL: parse said why), if it
 * is <name>; else NULL with an error naming what the XML is. */
static xmlNodePtr
root_is (xmlDocPtr doc, const char *what, const char *name)
{
  xmlNodePtr root;

  if (!doc)
    return NULL;
  root = xmlDocGetRootElement (doc);
  if (!virt_xml_is (root, name)) {
    error_setx ("%s: the root element is not <%s>", what, name);
    return NULL;
  }
  return root;
}

/* One <disk> of a domain into k.  -1 if it has no target. */
static int
domain_disk (xmlNodePtr x, struct backup_xml_disk *k)
{
  xmlNodePtr s = virt_xml_child (x, "source");

  memset (k, 0, sizeof *k);
  virt_xml_attr (x, "type", k->type, sizeof k->type);
  virt_xml_attr (x, "device", k->device, sizeof k->device);
  if (!k->device[0])
    snprintf (k->device, sizeof k->device, "disk");
  virt_xml_attr (virt_xml_child (x, "driver"), "type", k->format, sizeof k->format);
  if (!k->format[0])          /* libvirt's default; never probed */
    snprintf (k->format, sizeof k->format, "raw");
  virt_xml_attr (virt_xml_child (x, "target"), "dev", k->target, sizeof k->target);
  virt_xml_attr (s, "file", k->source, sizeof k->source);
  if (!k->source[0])
    virt_xml_attr (s, "dev", k->source, sizeof k->source);
  virt_xml_attr (s, "protocol", k->protocol, sizeof k->protocol);
  k->readonly = virt_xml_child (x, "readonly") != NULL;
  k->shareable = virt_xml_child (x, "shareable") != NULL;
  if (!k->target[0]) {
    error_setx ("domain XML: a <disk> has no <target dev=...>");
    return -1;
  }
  return 0;
}

int
backup_xml_domain_disks (const char *xml, struct backup_xml_disk *d,
                         size_t max, size_t *n)
{
  CLEANUP_XML_DOC xmlDocPtr doc = parse (xml, "domain XML");
  xmlNodePtr root, devs, x;

  *n = 0;
  if (!(root = root_is (doc, "domain XML", "domain")))
    return -1;
  devs = virt_xml_child (root, "devices");
  for (x = devs ? devs->children : NULL; x; x = x->next) {
    if (!virt_xml_is (x, "disk"))
      continue;
    if (*n == max) {
      error_setx ("domain XML: more than %zu disks", max);
      return -1;
    }
    if (domain_disk (x, &d[(*n)++]) == -1)
      return -1;
  }
  return 0;
}

int
backup_xml_checkpoint_disks (const char *xml,
                             char (*names)[DISK_NAME_MAX + 1], size_t max,
                             size_t *n)
{
  CLEANUP_XML_DOC xmlDocPtr doc = parse (xml, "checkpoint XML");
  xmlNodePtr root, x;

  *n = 0;
  if (!(root = root_is (doc, "checkpoint XML", "domaincheckpoint")))
    return -1;
  x = virt_xml_child (root, "disks");
  for (x = x ? x->children : NULL; x; x = x->next) {
    char mode[16], name[DISK_NAME_MAX + 1];
    if (!virt_xml_is (x, "disk"))
      continue;
    virt_xml_attr (x, "checkpoint", mode, sizeof mode);
    virt_xml_attr (x, "name", name, sizeof name);
    if (strcmp (mode, "bitmap") != 0 || !name[0] || *n == max)
      continue;
    memcpy (names[(*n)++], name, sizeof name);
  }
  return 0;
}

int
backup_xml_job_socket (const char *xml, char *sock, size_t len)
{
  CLEANUP_XML_DOC xmlDocPtr doc = parse (xml, "backup job XML");
  xmlNodePtr root, srv;
  char mode[16], transport[16];

  sock[0] = '\0';
  if (!(root = root_is (doc, "backup job XML", "domainbackup")))
    return -1;
  virt_xml_attr (root, "mode", mode, sizeof mode);
  srv = virt_xml_child (root, "server");
  virt_xml_attr (srv, "transport", transport, sizeof transport);
  if (strcmp (mode, "pull") == 0 && strcmp (transport, "unix") == 0)
    virt_xml_attr (srv, "socket", sock, len);
  return 0;
}

int
backup_xml_job_export (const char *xml, char *prefix, size_t len)
{
  CLEANUP_XML_DOC xmlDocPtr doc = parse (xml, "backup job XML");
  xmlNodePtr root, x;

  prefix[0] = '\0';
  if (!(root = root_is (doc, "backup job XML", "domainbackup")))
    return -1;
  x = virt_xml_child (root, "disks");
  for (x = x ? x->children : NULL; x; x = x->next) {
    char name[DISK_NAME_MAX + 1], export[512], backup[8];
    size_t ln, le;
    if (!virt_xml_is (x, "disk"))
      continue;
    virt_xml_attr (x, "backup", backup, sizeof backup);
    virt_xml_attr (x, "name", name, sizeof name);
    virt_xml_attr (x, "exportname", export, sizeof export);
    ln = strlen (name);
    le = strlen (export);
    if (strcmp (backup, "no") == 0 || !ln || le < ln ||
        strcmp (export + le - ln, name) != 0)
      continue;
    snprintf (prefix, len, "%.*s", (int) (le - ln), export);
    return 0;
  }
  return 0;
}

bool
backup_xml_marked (const char *metadata_xml)
{
  CLEANUP_XML_DOC xmlDocPtr doc = NULL;
  xmlNodePtr root;
  char en[16];

  if (!metadata_xml)
    return false;
  doc = parse (metadata_xml, "metadata");
  if (!doc)
    return false;
  root = xmlDocGetRootElement (doc);
  virt_xml_attr (root, "enabled", en, sizeof en);
  /* libvirt returns the element without its namespace (the query names
   * it); one that carries another namespace is not ours. */
  return root && (!root->ns || !root->ns->href ||
                  xmlStrcmp (root->ns->href, BAD_CAST BACKUP_XML_NS) == 0) &&
    strcmp (en, "no") != 0;
}

/* ---- building ----------------------------------------------------------------- */

/* Serialize the document's root element, indented, without the XML
 * declaration.  malloc'd; frees doc. */
static char *
dump (xmlDocPtr doc)
{
  xmlBufferPtr buf = xmlBufferCreate ();
  xmlSaveCtxtPtr ctx = xmlSaveToBuffer (buf, "UTF-8",
                                        XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  char *s = NULL;

  if (ctx) {
    xmlSaveDoc (ctx, doc);
    xmlSaveClose (ctx);
    s = xstrdup ((const char *) xmlBufferContent (buf));
  }
  xmlBufferFree (buf);
  xmlFreeDoc (doc);
  if (!s)
    error_setx ("cannot serialize XML");
  return s;
}

static xmlNodePtr
new_root (xmlDocPtr *doc, const char *name)
{
  xmlNodePtr root;

  *doc = xmlNewDoc (BAD_CAST "1.0");
  root = xmlNewNode (NULL, BAD_CAST name);
  xmlDocSetRootElement (*doc, root);
  return root;
}

char *
backup_xml_backup (const struct backup_xml_plan *p)
{
  xmlDocPtr doc;
  xmlNodePtr root, srv, disks;
  size_t i;

  if (!p->socket && (!p->tcp_host || p->tcp_port <= 0)) {
    error_setx ("backup XML: no NBD socket or TCP address");
    return NULL;
  }
  root = new_root (&doc, "domainbackup");
  xmlNewProp (root, BAD_CAST "mode", BAD_CAST "pull");
  srv = xmlNewChild (root, NULL, BAD_CAST "server", NULL);
  if (p->socket) {
    xmlNewProp (srv, BAD_CAST "transport", BAD_CAST "unix");
    xmlNewProp (srv, BAD_CAST "socket", BAD_CAST p->socket);
  }
  else {
    char port[16];
    snprintf (port, sizeof port, "%d", p->tcp_port);
    xmlNewProp (srv, BAD_CAST "transport", BAD_CAST "tcp");
    if (p->tls)
      xmlNewProp (srv, BAD_CAST "tls", BAD_CAST "yes");
    xmlNewProp (srv, BAD_CAST "name", BAD_CAST p->tcp_host);
    xmlNewProp (srv, BAD_CAST "port", BAD_CAST port);
  }
  disks = xmlNewChild (root, NULL, BAD_CAST "disks", NULL);
  for (i = 0; i < p->ndisks; i++) {
    const struct backup_xml_plan_disk *d = &p->disks[i];
    xmlNodePtr x = xmlNewChild (disks, NULL, BAD_CAST "disk", NULL);

    CLEANUP_FREE char *export = NULL;

    xmlNewProp (x, BAD_CAST "name", BAD_CAST d->name);
    if (!d->backup) {
      xmlNewProp (x, BAD_CAST "backup", BAD_CAST "no");
      continue;
    }
    export = xasprintf ("%s%s", p->export_prefix ? p->export_prefix : "",
                        d->name);
    if (d->scratch) {           /* else libvirt's: a listed disk is */
      xmlNewProp (x, BAD_CAST "backup", BAD_CAST "yes");  /* backed up, */
      xmlNewProp (x, BAD_CAST "type", BAD_CAST "file");   /* both or none */
    }
    if (d->incremental) {
      CLEANUP_FREE char *bm = xasprintf ("backup-%s", d->name);
      xmlNewProp (x, BAD_CAST "backupmode", BAD_CAST "incremental");
      xmlNewProp (x, BAD_CAST "incremental", BAD_CAST d->incremental);
      xmlNewProp (x, BAD_CAST "exportname", BAD_CAST export);
      xmlNewProp (x, BAD_CAST "exportbitmap", BAD_CAST bm);
    }
    else {
      xmlNewProp (x, BAD_CAST "backupmode", BAD_CAST "full");
      xmlNewProp (x, BAD_CAST "exportname", BAD_CAST export);
    }
    if (d->scratch) {
      xmlNodePtr s = xmlNewChild (x, NULL, BAD_CAST "scratch", NULL);
      xmlNewProp (s, BAD_CAST "file", BAD_CAST d->scratch);
    }
  }
  return dump (doc);
}

char *
backup_xml_checkpoint (const struct backup_xml_plan *p)
{
  xmlDocPtr doc;
  xmlNodePtr root, disks;
  size_t i;

  if (!p->checkpoint) {
    error_setx ("checkpoint XML: no checkpoint name");
    return NULL;
  }
  root = new_root (&doc, "domaincheckpoint");
  xmlNewTextChild (root, NULL, BAD_CAST "name", BAD_CAST p->checkpoint);
  if (p->description)
    xmlNewTextChild (root, NULL, BAD_CAST "description",
                     BAD_CAST p->description);
  disks = xmlNewChild (root, NULL, BAD_CAST "disks", NULL);
  for (i = 0; i < p->ndisks; i++) {
    xmlNodePtr x = xmlNewChild (disks, NULL, BAD_CAST "disk", NULL);
    xmlNewProp (x, BAD_CAST "name", BAD_CAST p->disks[i].name);
    xmlNewProp (x, BAD_CAST "checkpoint",
                BAD_CAST (p->disks[i].bitmap ? "bitmap" : "no"));
  }
  return dump (doc);
}

/* ---- libvirt URIs -------------------------------------------------------------- */

int
backup_uri_host (const char *uri, char *host, size_t hlen, char *pkipath,
                 size_t plen)
{
  xmlURIPtr u;
  char *q, *save = NULL, *kv;

  host[0] = pkipath[0] = '\0';
  if (!uri || !*uri)
    return 0;
  u = xmlParseURI (uri);
  if (!u) {
    error_setx ("%s: not a libvirt URI", uri);
    return -1;
  }
  if (u->server && *u->server) {
    if (strlen (u->server) >= hlen) {
      xmlFreeURI (u);
      error_setx ("%s: host name too long", uri);
      return -1;
    }
    snprintf (host, hlen, "%s", u->server);
    if (host[0] == '[' && host[strlen (host) - 1] == ']') {  /* IPv6 */
      memmove (host, host + 1, strlen (host));
      host[strlen (host) - 1] = '\0';
    }
  }
  q = u->query_raw ? xstrdup (u->query_raw) : NULL;
  for (kv = q ? strtok_r (q, "&", &save) : NULL; kv;
       kv = strtok_r (NULL, "&", &save))
    if (strncmp (kv, "pkipath=", 8) == 0) {
      char *v = xmlURIUnescapeString (kv + 8, 0, NULL);
      snprintf (pkipath, plen, "%s", v ? v : "");
      xmlFree (v);
    }
  free (q);
  xmlFreeURI (u);
  return 0;
}
