/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the lab VM domain XML (domain-xml.c): what is built for an
 * image VM, escaping, reading interfaces back, and the fail-closed check
 * of a VM's final XML before it starts (lab_domain_check: NICs on the lab
 * bridge, nothing off instant recovery's allow-list).  The rewrite of a
 * restore point's hostile definition as the lab boots it is a golden file
 * of recovery/instant (golden/hostile-lab.in).
 */
#include "lab/lab.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

/* xml with add inserted before </devices> (malloc'd). */
static char *
with (const char *xml, const char *add)
{
  const char *p = strstr (xml, "</devices>");

  return xasprintf ("%.*s%s%s", (int) (p - xml), xml, add, p);
}

/* The fail-closed check before a lab VM starts: the image VM's own XML
 * passes; each host-side backend added to it is refused, by name. */
static void
check_final (const char *xml)
{
  static const struct { const char *add, *want; } bad[] = {
    { "<graphics type='vnc' listen='0.0.0.0'/>", "<graphics type='vnc' listen='0.0.0.0'>" },
    { "<filesystem type='mount'><source dir='/'/><target dir='r'/></filesystem>",
      "<filesystem type='mount'> (source dir='/')" },
    { "<serial type='tcp'><source mode='bind' host='0.0.0.0' service='4444'/></serial>",
      "<serial type='tcp'>" },
    { "<disk type='block' device='disk'><source dev='/dev/sda'/>"
      "<target dev='vdb'/></disk>", "<disk type='block' device='disk'>" },
    { "<hostdev mode='subsystem' type='pci'/>", "<hostdev" },
    { "<vsock model='virtio'/>", "<vsock" },
    { "<rng model='virtio'><backend model='egd' type='tcp'/></rng>", "<backend model='egd'" },
    { "<interface type='bridge'><source bridge='br0'/></interface>",
      "interface 1 is type 'bridge' on 'br0'" },
  };
  struct instant_xml_disk d = { .name = "vda", .overlay = "/var/lib/x & y/web.qcow2" };
  struct instant_xml_spec allowed = {
    .name = "bbl-abc123-web<1>", .console_log = "/tmp/web.console", .ndisks = 1,
    .disks = &d,
  };
  size_t i;

  CHECK (lab_domain_check (xml, "bblabc123br", "web", &allowed) == 0);
  CHECK (lab_domain_check (xml, "bblother", "web", &allowed) == -1 &&
         strstr (error_msg (), "not on the lab bridge bblother"));
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CLEANUP_FREE char *x = with (xml, bad[i].add);
    if (lab_domain_check (x, "bblabc123br", "web", &allowed) != -1 ||
        !strstr (error_msg (), bad[i].want) || !strstr (error_msg (), "VM web")) {
      fprintf (stderr, "FAIL: %s: not refused as %s: %s\n", bad[i].add, bad[i].want,
               error_msg ());
      failures++;
    }
  }
  {
    const char *p = strstr (xml, "</domain>");
    CLEANUP_FREE char *x =
      xasprintf ("%.*s<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/"
                 "domain/qemu/1.0'/>%s", (int) (p - xml), xml, p);
    CHECK (lab_domain_check (x, "bblabc123br", "web", &allowed) == -1 &&
           strstr (error_msg (), "<qemu:commandline>"));
  }
}

int
main (void)
{
  struct lab_domain_spec s = {
    .name = "bbl-abc123-web<1>", .disk = "/var/lib/x & y/web.qcow2",
    .disk_format = "qcow2", .bridge = "bblabc123br", .mac = "52:54:00:11:22:33",
    .memory_mib = 384, .vcpus = 2, .serial_log = "/tmp/web.console",
  };
  char *xml = lab_domain_xml (&s);
  char **taps, **bridges, **types;
  char mac[18], mac2[18];
  int n;

  CHECK (xml != NULL);
  if (!xml)
    return 1;
  CHECK (strstr (xml, "<domain type=\"qemu\">"));
  CHECK (strstr (xml, "<name>bbl-abc123-web&lt;1&gt;</name>"));
  CHECK (strstr (xml, "<memory unit=\"MiB\">384</memory>"));
  CHECK (strstr (xml, "<vcpu>2</vcpu>"));
  CHECK (strstr (xml, "file=\"/var/lib/x &amp; y/web.qcow2\""));
  CHECK (strstr (xml, "<acpi/>"));
  CHECK (strstr (xml, "org.qemu.guest_agent.0"));
  CHECK (strstr (xml, "<listen type=\"socket\"/>"));
  CHECK (strstr (xml, "<source bridge=\"bblabc123br\"/>"));
  CHECK (strstr (xml, "<mac address=\"52:54:00:11:22:33\"/>"));
  CHECK (strstr (xml, "<serial type=\"pty\">"));
  CHECK (strstr (xml, "<log file=\"/tmp/web.console\" append=\"on\"/>"));
  CHECK (!strstr (xml, "kvm"));

  check_final (xml);

  n = lab_domain_interfaces (xml, &taps, &bridges, &types);
  CHECK (n == 1);
  if (n == 1) {
    CHECK (strcmp (types[0], "bridge") == 0);
    CHECK (strcmp (bridges[0], "bblabc123br") == 0);
    CHECK (strcmp (taps[0], "") == 0);
  }
  strv_free (taps); strv_free (bridges); strv_free (types);
  free (xml);

  /* A running domain's XML as libvirt reports it, with two NICs. */
  n = lab_domain_interfaces (
    "<domain><devices>"
    "<interface type='bridge'><source bridge='bblx'/><target dev='vnet7'/></interface>"
    "<interface type='network'><source network='default'/></interface>"
    "<interface type='user'/>"
    "</devices></domain>", &taps, &bridges, &types);
  CHECK (n == 3);
  if (n == 3) {
    CHECK (strcmp (taps[0], "vnet7") == 0 && strcmp (bridges[0], "bblx") == 0);
    CHECK (strcmp (types[1], "network") == 0 && strcmp (bridges[1], "default") == 0);
    CHECK (strcmp (types[2], "user") == 0 && strcmp (bridges[2], "") == 0);
  }
  strv_free (taps); strv_free (bridges); strv_free (types);
  CHECK (lab_domain_interfaces ("<domain><oops", &taps, &bridges, &types) == -1);

  {
    struct lab_verify_hints h;
    CHECK (lab_domain_verify_hints (
      "<domain><name>x</name><metadata>"
      "<other xmlns='urn:x'/>"
      "<bb:verify xmlns:bb='urn:bootback:verify:1'><bb:address>10.77.0.10</bb:address>"
      "<bb:gateway>10.77.0.1</bb:gateway>"
      "<bb:check>tcp 5432</bb:check><bb:check>http http://{address}/ expect 200</bb:check>"
      "</bb:verify></metadata></domain>", &h) == 1);
    CHECK (h.address && strcmp (h.address, "10.77.0.10") == 0);
    CHECK (h.gateway && strcmp (h.gateway, "10.77.0.1") == 0);
    CHECK (h.subnet == NULL);
    CHECK (h.nchecks == 2 && strcmp (h.checks[1], "http http://{address}/ expect 200") == 0);
    lab_verify_hints_clear (&h);
    CHECK (lab_domain_verify_hints ("<domain><metadata/></domain>", &h) == 0);
    CHECK (lab_domain_verify_hints ("<domain", &h) == -1);
  }

  lab_mac_from_name ("web1", mac);
  lab_mac_from_name ("web1", mac2);
  CHECK (strcmp (mac, mac2) == 0 && strncmp (mac, "52:54:00:", 9) == 0 &&
         strlen (mac) == 17);
  lab_mac_from_name ("web2", mac2);
  CHECK (strcmp (mac, mac2) != 0);

  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("lab domain xml ok\n");
  return 0;
}
