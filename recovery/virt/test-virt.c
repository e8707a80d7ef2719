/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of recovery/virt: the XML helpers on hostile and tricky
 * input (entities are not substituted, no external file is read, errors
 * carry libxml2's message and line, namespaced elements are not ours,
 * truncation), errors without any connection (a bogus URI fails naming
 * it), and, for real, against libvirt's test driver (test:///default runs
 * in this process, no daemon): lookups, the lifecycle of a domain
 * (define, start, destroy, undefine; create a transient one), its XML
 * and state, listing, and the errors of what the test driver lacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <libvirt/virterror.h>

#include "recovery/util/util.h"
#include "recovery/virt/virt.h"
#include "recovery/virt/ceph.h"
#include "recovery/virt/xml.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static bool
has_prefix (const char *s, const char *p)
{
  return strncmp (s, p, strlen (p)) == 0 && s[strlen (p)];
}

/* ---- XML ----------------------------------------------------------------- */

/* An external entity naming a file with a secret: the file is not read.
 * A billion laughs: refused, at once. */
static void
test_xml_entities (void)
{
  char secret[] = "/tmp/bootback-test-virt.XXXXXX";
  int fd = mkstemp (secret);
  char buf[256];

  CHECK (fd >= 0);
  if (fd < 0)
    return;
  CHECK (write (fd, "SECRET", 6) == 6);
  close (fd);
  {
    CLEANUP_FREE char *xml =
      xasprintf ("<?xml version='1.0'?>\n"
                 "<!DOCTYPE domain [ <!ENTITY x SYSTEM 'file://%s'> ]>\n"
                 "<domain><name>&x;</name></domain>", secret);
    CLEANUP_XML_DOC xmlDocPtr doc = virt_xml_parse (xml, 0, NULL);
    xmlNodePtr root = xmlDocGetRootElement (doc);

    CHECK (doc != NULL);
    CHECK (virt_xml_is (root, "domain"));
    virt_xml_text (root, buf, sizeof buf);
    CHECK (strstr (buf, "SECRET") == NULL);
  }
  unlink (secret);
  {
    static const char laughs[] =
      "<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'>"
      "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
      "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'><!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>"
      "<!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'><!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>"
      "<!ENTITY h '&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;'>]><d>&h;</d>";
    double t0 = now_monotonic ();
    xmlDocPtr doc = virt_xml_parse (laughs, 0, NULL);

    CHECK (doc == NULL && error_msg ()[0]);
    CHECK (now_monotonic () - t0 < 5);
    if (doc)
      xmlFreeDoc (doc);
  }
}

static void
test_xml_errors (void)
{
  int line = -1;
  xmlDocPtr doc;

  doc = virt_xml_parse ("<domain>\n<name>x</name>\n<devices>\n</domain>", 0, &line);
  CHECK (doc == NULL);
  CHECK (line == 4);
  /* libxml2's message, without its trailing newline */
  CHECK (error_msg ()[0] && error_msg ()[strlen (error_msg ()) - 1] != '\n');
  CHECK (strstr (error_msg (), "domain") != NULL);      /* "Premature end of data in tag domain" */
  error_prefix ("domain XML does not parse: line %d", line);
  CHECK (has_prefix (error_msg (), "domain XML does not parse: line 4: "));

  doc = virt_xml_parse (NULL, 0, &line);
  CHECK (doc == NULL && strcmp (error_msg (), "no XML") == 0 && line == 0);
  doc = virt_xml_parse ("", 0, &line);
  CHECK (doc == NULL && error_msg ()[0]);
  doc = virt_xml_parse ("not xml at all", 0, NULL);
  CHECK (doc == NULL && error_msg ()[0]);
  /* Options that would substitute entities or load DTDs are masked off. */
  doc = virt_xml_parse ("<!DOCTYPE d [ <!ENTITY e 'E'> ]><d>&e;</d>",
                        XML_PARSE_NOENT | XML_PARSE_DTDLOAD, NULL);
  CHECK (doc != NULL);
  if (doc) {
    char buf[16];
    CHECK (strcmp (virt_xml_text (xmlDocGetRootElement (doc), buf, sizeof buf), "E") != 0 ||
           xmlDocGetRootElement (doc)->children->type == XML_ENTITY_REF_NODE);
    xmlFreeDoc (doc);
  }
}

static void
test_xml_access (void)
{
  static const char xml[] =
    "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
    "  <qemu:devices><disk type='evil'/></qemu:devices>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'><source file='/a/very/long/path.qcow2'/>"
    "<target dev='vda'/></disk>\n"
    "    <disk type='block'><target dev='vdb'/></disk>\n"
    "  </devices>\n"
    "  <metadata><bb:verify xmlns:bb='https://bootback.example/verify'>"
    "<check>ping</check></bb:verify></metadata>\n"
    "</domain>";
  CLEANUP_XML_DOC xmlDocPtr doc = virt_xml_parse (xml, XML_PARSE_NOBLANKS, NULL);
  xmlNodePtr root = xmlDocGetRootElement (doc), devs, disk;
  char buf[64], small[8];

  CHECK (doc != NULL);
  if (!doc)
    return;
  /* <qemu:devices> is not <devices> */
  devs = virt_xml_child (root, "devices");
  CHECK (devs && !devs->ns);
  disk = virt_xml_child (devs, "disk");
  CHECK (strcmp (virt_xml_attr (disk, "type", buf, sizeof buf), "file") == 0);
  CHECK (strcmp (virt_xml_attr (disk, "missing", buf, sizeof buf), "") == 0);
  CHECK (strcmp (virt_xml_attr (NULL, "type", buf, sizeof buf), "") == 0);
  CHECK (virt_xml_child (NULL, "disk") == NULL);
  CHECK (strcmp (virt_xml_attr (virt_xml_child (disk, "source"), "file", small, sizeof small),
                 "/a/very") == 0);
  CHECK (strcmp (virt_xml_text (NULL, buf, sizeof buf), "") == 0);
  {
    CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = virt_xpath_context (doc, NULL, NULL);
    CLEANUP_XPATH_OBJ xmlXPathObjectPtr o = virt_xpath_eval (ctx, "/domain/devices/disk");
    CLEANUP_XPATH_OBJ xmlXPathObjectPtr bad = virt_xpath_eval (ctx, "/domain/[");

    CHECK (virt_xpath_count (o) == 2);
    CHECK (strcmp (virt_xml_attr (virt_xml_child (virt_xpath_node (o, 1), "target"), "dev",
                                  buf, sizeof buf), "vdb") == 0);
    CHECK (virt_xpath_node (o, 2) == NULL);
    CHECK (bad == NULL && strstr (error_msg (), "/domain/[") != NULL);
    CHECK (virt_xpath_count (NULL) == 0);
  }
  {
    CLEANUP_XPATH_CTX xmlXPathContextPtr ctx =
      virt_xpath_context (doc, "bb", "https://bootback.example/verify");
    CLEANUP_XPATH_OBJ xmlXPathObjectPtr o = virt_xpath_eval (ctx, "/domain/metadata/bb:verify");

    CHECK (virt_xpath_count (o) == 1);
    CHECK (strcmp (virt_xml_text (virt_xpath_node (o, 0), buf, sizeof buf), "ping") == 0);
  }
}

/* A disk's storage replaced, its target, address and boot order kept; a
 * missing target refused. */
static void
test_disk_replace (void)
{
  static const char xml[] =
    "<domain><devices><disk type='file' device='disk'><driver name='qemu' "
    "type='qcow2'/><source file='/o.qcow2'/><backingStore type='network'/>"
    "<target dev='vda' bus='virtio'/><boot order='1'/></disk>"
    "<disk type='file'><source file='/b'/><target dev='vdb'/></disk></devices></domain>";
  static const char rbd[] =
    "<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
    "<source protocol='rbd' name='p/i'><host name='10.0.0.1' port='6789'/></source>"
    "<auth username='u'><secret type='ceph' usage='ceph client.u'/></auth></disk>";
  CLEANUP_FREE char *out = virt_xml_disk_replace (xml, "vda", rbd);

  CHECK (out != NULL);
  if (!out)
    return;
  CHECK (strstr (out, "<disk type=\"network\" device=\"disk\">") != NULL);
  CHECK (strstr (out, "protocol=\"rbd\" name=\"p/i\"") != NULL);
  CHECK (strstr (out, "usage=\"ceph client.u\"") != NULL);
  CHECK (strstr (out, "<target dev=\"vda\" bus=\"virtio\"/><boot order=\"1\"/>") != NULL);
  CHECK (strstr (out, "/o.qcow2") == NULL && strstr (out, "backingStore") == NULL);
  CHECK (strstr (out, "type=\"qcow2\"") == NULL);
  CHECK (strstr (out, "<source file=\"/b\"/>") != NULL);        /* vdb untouched */
  CHECK (virt_xml_disk_replace (xml, "vdc", rbd) == NULL &&
         strstr (error_msg (), "no disk vdc") != NULL);
  CHECK (virt_xml_disk_replace (xml, "vda", "<source/>") == NULL);
}

/* rbd: names: what QEMU or libvirt could read as more than a name refused. */
static void
test_rbd_names (void)
{
  char pool[VIRT_RBD_NAME_MAX + 1], image[VIRT_RBD_NAME_MAX + 1];

  CHECK (virt_is_rbd ("rbd:p/i") && !virt_is_rbd ("/rbd:p") && !virt_is_rbd (NULL));
  CHECK (virt_rbd_parse ("rbd:vms/web-1.raw", true, pool, image) == 0 &&
         strcmp (pool, "vms") == 0 && strcmp (image, "web-1.raw") == 0);
  CHECK (virt_rbd_parse ("rbd:vms", false, pool, image) == 0 && image[0] == '\0');
  CHECK (virt_rbd_parse ("rbd:vms/prod-", false, pool, image) == 0 &&
         strcmp (image, "prod-") == 0);
  CHECK (virt_rbd_parse ("rbd:vms", true, pool, image) == -1 &&
         strstr (error_msg (), "rbd:POOL/IMAGE") != NULL);
  CHECK (virt_rbd_parse ("rbd:vms/a:conf=/etc/shadow", true, pool, image) == -1);
  CHECK (virt_rbd_parse ("rbd:vms/a@snap", true, pool, image) == -1);
  CHECK (virt_rbd_parse ("rbd:vms/ns/a", true, pool, image) == -1);
  CHECK (virt_rbd_parse ("rbd:/a", true, pool, image) == -1);
  CHECK (virt_rbd_parse ("rbd:v/a'b", true, pool, image) == -1);
  CHECK (virt_rbd_parse ("file:/x", false, pool, image) == -1);
}

/* The monitors libvirt gets from a conf's mon host. */
static void
test_mon_hosts (void)
{
  char out[VIRT_CEPH_MONS_XML_MAX];

  CHECK (virt_ceph_mon_hosts ("[v2:127.0.0.1:3300,v1:127.0.0.1:40001]", out, sizeof out) == 0 &&
         strcmp (out, "<host name='127.0.0.1' port='40001'/>") == 0);
  CHECK (virt_ceph_mon_hosts ("10.0.0.1, mon2.example:6790;10.0.0.3", out, sizeof out) == 0 &&
         strcmp (out, "<host name='10.0.0.1' port='6789'/><host name='mon2.example' "
                 "port='6790'/><host name='10.0.0.3' port='6789'/>") == 0);
  /* msgr2 only, or names XML or QEMU would read as more: none */
  CHECK (virt_ceph_mon_hosts ("[v2:10.0.0.1:3300]", out, sizeof out) == -1 &&
         strstr (error_msg (), "no monitor address") != NULL);
  CHECK (virt_ceph_mon_hosts ("a'b:1 <x>:2 h:p0rt h:", out, sizeof out) == -1);
  CHECK (virt_ceph_mon_hosts (NULL, out, sizeof out) == -1);
  CHECK (virt_ceph_mon_hosts ("10.0.0.1", out, 10) == -1);
}

/* ---- libvirt without a connection ------------------------------------------- */

static void
test_errors (void)
{
  virConnectPtr c;

  virt_init ();
  virt_init ();                      /* once */
  virResetLastError ();
  virt_error_set ("what %d", 1);
  CHECK (has_prefix (error_msg (), "what 1: ") && error_msg ()[8]);

  c = virt_connect ("bogus+nothing:///nowhere");
  CHECK (c == NULL);
  CHECK (has_prefix (error_msg (), "cannot connect to libvirt (bogus+nothing:///nowhere): "));
  /* followed by libvirt's message, the one virt_last_error gives */
  CHECK (strstr (error_msg (), virt_last_error ()) != NULL);
  CHECK (strstr (error_msg (), "transport") != NULL);
  /* With no URI, the message names $LIBVIRT_DEFAULT_URI. */
  setenv ("LIBVIRT_DEFAULT_URI", "bogus+nothing:///default", 1);
  c = virt_connect ("");
  CHECK (c == NULL);
  CHECK (strstr (error_msg (), "(bogus+nothing:///default): ") != NULL);
  unsetenv ("LIBVIRT_DEFAULT_URI");
  virt_close (NULL);
  CHECK (virt_domain_by_name (NULL, "x") == NULL);
  CHECK (virt_domain_by_uuid (NULL, "") == NULL);
  CHECK (strcmp (virt_state_name (VIR_DOMAIN_SHUTOFF), "shut off") == 0);
  CHECK (strcmp (virt_state_name (-1), "unknown") == 0);
  CHECK (strcmp (virt_state_name (1000), "unknown") == 0);
  CHECK (virt_event_thread_start () == 0);
  CHECK (virt_event_thread_start () == 0);
}

/* ---- libvirt's test driver ------------------------------------------------- */

static const char domain_xml[] =
  "<domain type='test'><name>bbvirt-one</name>"
  "<uuid>0a6f4c0e-4a8d-4a59-9c3f-2b0e8f1d7a01</uuid>"
  "<memory>65536</memory><os><type>hvm</type></os>"
  "<devices><disk type='file' device='disk'><source file='/nonexistent/one.img'/>"
  "<target dev='vda'/></disk></devices></domain>";

static const char transient_xml[] =
  "<domain type='test'><name>bbvirt-two</name>"
  "<memory>65536</memory><os><type>hvm</type></os></domain>";

static void
test_lifecycle (virConnectPtr c)
{
  CLEANUP_VIR_DOMAIN virDomainPtr d = virt_domain_define_xml (c, domain_xml, "bbvirt-one");
  CLEANUP_FREE char *xml = NULL;
  int reason = -1;

  CHECK (d != NULL);
  if (!d)
    return;
  CHECK (virt_domain_state (d, &reason) == VIR_DOMAIN_SHUTOFF);
  CHECK (virt_domain_start (d) == 0);
  CHECK (virt_domain_state (d, NULL) == VIR_DOMAIN_RUNNING);
  /* Starting it again fails, with the error naming it. */
  CHECK (virt_domain_start (d) == -1);
  CHECK (has_prefix (error_msg (), "start domain bbvirt-one: "));
  /* ... and libvirt's reason, not what asking for the name left */
  CHECK (!strstr (error_msg (), "no error") && !strstr (error_msg (), "unknown libvirt"));
  /* libvirt's words alone, for callers that quote them in their own */
  CHECK (strstr (error_msg (), virt_failure ()) &&
         strcmp (error_msg () + strlen ("start domain bbvirt-one: "), virt_failure ()) == 0);
  {
    CLEANUP_VIR_DOMAIN virDomainPtr byname = virt_domain_by_name (c, "bbvirt-one");
    CLEANUP_VIR_DOMAIN virDomainPtr byuuid =
      virt_domain_by_uuid (c, "0a6f4c0e-4a8d-4a59-9c3f-2b0e8f1d7a01");
    CLEANUP_VIR_DOMAIN virDomainPtr none = virt_domain_by_name (c, "bbvirt-none");

    CHECK (byname && strcmp (virDomainGetName (byname), "bbvirt-one") == 0);
    CHECK (byuuid && strcmp (virDomainGetName (byuuid), "bbvirt-one") == 0);
    CHECK (none == NULL);
  }
  xml = virt_domain_xml (d, 0);
  CHECK (xml && strstr (xml, "/nonexistent/one.img"));
  {
    CLEANUP_XML_DOC xmlDocPtr doc = virt_xml_parse (xml, XML_PARSE_NOBLANKS, NULL);
    char dev[16];
    xmlNodePtr disk = virt_xml_child (virt_xml_child (xmlDocGetRootElement (doc), "devices"),
                                      "disk");
    CHECK (strcmp (virt_xml_attr (virt_xml_child (disk, "target"), "dev", dev, sizeof dev),
                   "vda") == 0);
  }
  /* What the test driver lacks fails with the error text of its call. */
  CHECK (virt_agent_command (d, "{\"execute\":\"guest-ping\"}", 0) == NULL);
  CHECK (has_prefix (error_msg (), "guest agent: "));
  CHECK (virt_agent_wait (d, 0.3) == 1);
  CHECK (virt_block_copy (d, "vda", "<disk type='file'><source file='/nonexistent/x'/></disk>",
                          &(struct virt_copy_params) { .granularity = 65536 }, 0) == -1);
  CHECK (has_prefix (error_msg (), "block copy of vda: "));

  CHECK (virt_domain_destroy (d) == 0);
  CHECK (virt_domain_state (d, NULL) == VIR_DOMAIN_SHUTOFF);
  CHECK (virt_domain_destroy (d) == 0);        /* not running: nothing to do */
  CHECK (virt_domain_undefine (d, VIRT_UNDEFINE_ALL) == 0);
  {
    CLEANUP_VIR_DOMAIN virDomainPtr gone = virt_domain_by_name (c, "bbvirt-one");
    CHECK (gone == NULL);
  }
}

static void
test_transient (virConnectPtr c)
{
  CLEANUP_VIR_DOMAIN virDomainPtr d = virt_domain_create_xml (c, transient_xml, "bbvirt-two");
  CLEANUP_VIR_DOMAIN virDomainPtr dup = NULL;
  virDomainPtr *doms;
  int n, i, seen = 0;

  CHECK (d != NULL);
  if (!d)
    return;
  CHECK (virDomainIsPersistent (d) == 0);
  CHECK (virt_domain_state (d, NULL) == VIR_DOMAIN_RUNNING);
  dup = virt_domain_create_xml (c, transient_xml, "bbvirt-two");
  CHECK (dup == NULL && has_prefix (error_msg (), "create domain bbvirt-two: "));
  CHECK (virt_domain_define_xml (c, "<domain/>", "broken") == NULL);
  CHECK (has_prefix (error_msg (), "define domain broken: "));
  n = virt_domain_list (c, &doms);
  CHECK (n >= 2);                 /* the driver's own "test" and ours */
  for (i = 0; i < n; i++)
    seen += strcmp (virDomainGetName (doms[i]), "bbvirt-two") == 0;
  CHECK (seen == 1);
  virt_domain_list_free (doms, n);
  CHECK (virt_domain_undefine (d, VIRT_UNDEFINE_ALL) == 0);   /* not persistent */
  CHECK (virt_domain_destroy (d) == 0);
  {
    CLEANUP_VIR_DOMAIN virDomainPtr gone = virt_domain_by_name (c, "bbvirt-two");
    CHECK (gone == NULL);
  }
}

static void
test_network (virConnectPtr c)
{
  CHECK (virt_network_active (c, "default") == 1);
  CHECK (virt_network_active (c, "bbvirt-none") == -1);
  CHECK (has_prefix (error_msg (), "network bbvirt-none: "));
}

int
main (void)
{
  test_xml_entities ();
  test_xml_errors ();
  test_xml_access ();
  test_disk_replace ();
  test_rbd_names ();
  test_mon_hosts ();
  test_errors ();
  {
    CLEANUP_VIR_CONNECT virConnectPtr c = virt_connect ("test:///default");

    CHECK (c != NULL);
    if (c) {
      test_lifecycle (c);
      test_transient (c);
      test_network (c);
    }
  }
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("virt ok\n");
  return 0;
}
