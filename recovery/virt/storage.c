/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt's storage API for volumes on another host (storage.h).  Names
 * of pools and volumes come from bootback (the user's --pool, the session
 * and disk names, validated), never from a restore point; they are
 * XML-escaped anyway where they go into a volume's XML.
 */
#include <stdio.h>
#include <string.h>
#include <libxml/tree.h>

#include "recovery/util/util.h"
#include "recovery/virt/storage.h"
#include "recovery/virt/virt.h"
#include "recovery/virt/xml.h"

static void
pool_free (virStoragePoolPtr *p)
{
  if (*p)
    virStoragePoolFree (*p);
}
#define CLEANUP_POOL __attribute__((cleanup (pool_free)))

static void
vol_free (virStorageVolPtr *v)
{
  if (*v)
    virStorageVolFree (*v);
}
#define CLEANUP_VOL __attribute__((cleanup (vol_free)))

/* Pool name, active, refreshed; NULL with the error. */
static virStoragePoolPtr
pool_get (virConnectPtr c, const char *pool)
{
  virStoragePoolPtr p = virStoragePoolLookupByName (c, pool);

  if (!p) {
    virt_error_set ("pool %s: no such storage pool (virsh pool-list --all)", pool);
    return NULL;
  }
  if (virStoragePoolIsActive (p) != 1) {
    error_setx ("pool %s is not active (virsh pool-start %s)", pool, pool);
    virStoragePoolFree (p);
    return NULL;
  }
  if (virStoragePoolRefresh (p, 0) == -1) {
    virt_error_set ("pool %s: refresh", pool);
    virStoragePoolFree (p);
    return NULL;
  }
  return p;
}

int
virt_pool_dir (virConnectPtr c, const char *pool, char *buf, size_t len)
{
  CLEANUP_POOL virStoragePoolPtr p = pool_get (c, pool);
  CLEANUP_FREE char *xml = NULL;
  CLEANUP_XML_DOC xmlDocPtr doc = NULL;
  xmlNodePtr root;
  char type[32] = "", dir[4096] = "";

  if (!p)
    return -1;
  xml = virStoragePoolGetXMLDesc (p, 0);
  if (!xml) {
    virt_error_set ("pool %s: its XML", pool);
    return -1;
  }
  doc = virt_xml_parse (xml, 0, NULL);
  root = doc ? xmlDocGetRootElement (doc) : NULL;
  if (root) {
    virt_xml_attr (root, "type", type, sizeof type);
    virt_xml_text (virt_xml_child (virt_xml_child (root, "target"), "path"),
                   dir, sizeof dir);
  }
  if ((strcmp (type, "dir") != 0 && strcmp (type, "fs") != 0 &&
       strcmp (type, "netfs") != 0) || dir[0] != '/') {
    error_setx ("pool %s is of type %s: give a file-based pool (dir, fs, netfs)",
                pool, type[0] ? type : "unknown");
    return -1;
  }
  if (snprintf (buf, len, "%s", dir) >= (int) len) {
    error_setx ("pool %s: its path %s is too long", pool, dir);
    return -1;
  }
  return 0;
}

int
virt_vol_exists (virConnectPtr c, const char *pool, const char *name)
{
  CLEANUP_POOL virStoragePoolPtr p = pool_get (c, pool);
  CLEANUP_VOL virStorageVolPtr v = NULL;

  if (!p)
    return -1;
  v = virStorageVolLookupByName (p, name);
  return v ? 1 : 0;
}

int
virt_vol_create (virConnectPtr c, const char *pool, const char *name,
                 const char *format, uint64_t capacity, char *path, size_t len)
{
  CLEANUP_POOL virStoragePoolPtr p = pool_get (c, pool);
  CLEANUP_VOL virStorageVolPtr v = NULL;
  CLEANUP_FREE char *xml = NULL, *vp = NULL;
  xmlChar *en;

  if (!p)
    return -1;
  if ((v = virStorageVolLookupByName (p, name)) != NULL) {
    error_setx ("pool %s: volume %s exists already", pool, name);
    return -1;
  }
  en = xmlEncodeSpecialChars (NULL, BAD_CAST name);
  xml = xasprintf ("<volume><name>%s</name><capacity unit='bytes'>%" PRIu64
                   "</capacity><allocation>0</allocation><target><format type='%s'/>"
                   "<permissions><mode>0600</mode></permissions></target></volume>",
                   (const char *) en, capacity, format);
  xmlFree (en);
  v = virStorageVolCreateXML (p, xml, 0);
  if (!v) {
    virt_error_set ("pool %s: create volume %s", pool, name);
    return -1;
  }
  vp = virStorageVolGetPath (v);
  if (!vp || snprintf (path, len, "%s", vp) >= (int) len) {
    virt_error_set ("pool %s: volume %s: its path", pool, name);
    virStorageVolDelete (v, 0);
    return -1;
  }
  return 0;
}

int
virt_vol_delete (virConnectPtr c, const char *pool, const char *name)
{
  CLEANUP_POOL virStoragePoolPtr p = pool_get (c, pool);
  CLEANUP_VOL virStorageVolPtr v = NULL;

  if (!p)
    return -1;
  v = virStorageVolLookupByName (p, name);
  if (!v)
    return 0;
  if (virStorageVolDelete (v, 0) == -1) {
    virt_error_set ("pool %s: delete volume %s", pool, name);
    return -1;
  }
  return 0;
}

int
virt_vol_delete_path (virConnectPtr c, const char *path)
{
  CLEANUP_VOL virStorageVolPtr v = virStorageVolLookupByPath (c, path);

  if (!v)
    return 0;
  if (virStorageVolDelete (v, 0) == -1) {
    virt_error_set ("delete volume %s", path);
    return -1;
  }
  return 0;
}
