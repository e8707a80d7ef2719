/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Golden-file tests of backup-xml.c (QEMU iotests style): each case
 * renders what the function makes of an input into text and compares it
 * with recovery/ingest/backup-golden/NAME.out.  BOOTBACK_REGENERATE=1
 * rewrites the .out files instead (review the diff before committing).
 */
#include <errno.h>

#include "recovery/ingest/ingest-int.h"

static const char *dir;
static int failures;

static char *
slurp (const char *name)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s", dir, name);
  FILE *f = fopen (path, "re");
  char *buf;
  size_t n;

  if (!f) {
    fprintf (stderr, "%s: %s\n", path, strerror (errno));
    exit (1);
  }
  buf = xmalloc (1 << 20);
  n = fread (buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose (f);
  return buf;
}

/* Compare got with NAME.out (or write it). */
static void
golden (const char *name, const char *got)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s.out", dir, name);
  CLEANUP_FREE char *want = NULL;
  const char *upd = getenv ("BOOTBACK_REGENERATE");

  if (upd && *upd) {
    FILE *f = fopen (path, "we");
    if (!f || fputs (got, f) < 0 || fclose (f) != 0) {
      fprintf (stderr, "%s: cannot write\n", path);
      exit (1);
    }
    printf ("updated %s\n", path);
    return;
  }
  {
    CLEANUP_FREE char *base = xasprintf ("%s.out", name);
    want = slurp (base);
  }
  if (strcmp (want, got) != 0) {
    fprintf (stderr, "FAIL %s: output differs from %s\n--- got:\n%s--- want:\n%s",
             name, path, got, want);
    failures++;
  }
  else
    printf ("ok %s\n", name);
}

static void
test_domain_disks (void)
{
  CLEANUP_FREE char *xml = slurp ("domain-mixed.xml");
  struct backup_xml_disk d[8];
  char out[4096] = "";
  size_t n, i, len = 0;

  if (backup_xml_domain_disks (xml, d, 8, &n) == -1) {
    fprintf (stderr, "domain-mixed: %s\n", error_msg ());
    exit (1);
  }
  for (i = 0; i < n; i++)
    len += snprintf (out + len, sizeof out - len,
                     "target=%s device=%s type=%s format=%s source=%s%s%s\n",
                     d[i].target, d[i].device, d[i].type, d[i].format,
                     d[i].source, d[i].readonly ? " readonly" : "",
                     d[i].shareable ? " shareable" : "");
  golden ("domain-disks", out);
}

static void
test_build (void)
{
  struct backup_xml_plan_disk disks[] = {
    { "vda", true, "bootback-1a2b3c4d-20261122T052748Z", true,
      "/var/tmp/bootback-backup-1-x/vda.qcow2" },
    { "vdb", true, NULL, false, "/var/tmp/bootback-backup-1-x/vdb.qcow2" },
    { "sda", false, NULL, false, NULL },
    { "vdc", true, NULL, true, "/var/tmp/bootback-backup-1-x/vdc.qcow2" },
  };
  struct backup_xml_plan p = {
    .socket = "/var/tmp/bootback-backup-1-x/nbd.sock",
    .checkpoint = "bootback-1a2b3c4d-20261122T060000Z",
    .description = "bootback point web-1@20261122T060000Z <&>",
    .ndisks = 4, .disks = disks,
  };
  CLEANUP_FREE char *b = backup_xml_backup (&p);
  CLEANUP_FREE char *c = backup_xml_checkpoint (&p);
  CLEANUP_FREE char *c2 = NULL;
  char names[8][DISK_NAME_MAX + 1], out[1024] = "";
  size_t n, i, len = 0;

  if (!b || !c) {
    fprintf (stderr, "build: %s\n", error_msg ());
    exit (1);
  }
  golden ("backup-pull", b);
  golden ("checkpoint-new", c);
  /* What bootback builds, bootback parses back. */
  if (backup_xml_checkpoint_disks (c, names, 8, &n) == -1)
    exit (1);
  for (i = 0; i < n; i++)
    len += snprintf (out + len, sizeof out - len, "%s\n", names[i]);
  c2 = slurp ("checkpoint-libvirt.xml");
  if (backup_xml_checkpoint_disks (c2, names, 8, &n) == -1)
    exit (1);
  len += snprintf (out + len, sizeof out - len, "-- libvirt's:\n");
  for (i = 0; i < n; i++)
    len += snprintf (out + len, sizeof out - len, "%s\n", names[i]);
  golden ("checkpoint-disks", out);

  /* A remote host's job: TCP with TLS, exports named after the job's
   * owner, libvirt's scratch files (none given). */
  {
    struct backup_xml_plan_disk rd[] = {
      { "vda", true, "bootback-1a2b3c4d-20261122T052748Z", true, NULL },
      { "vdb", false, NULL, false, NULL },
    };
    struct backup_xml_plan t = {
      .tcp_host = "hv1.example.org", .tcp_port = 10811, .tls = true,
      .export_prefix = "bootback-backup-4242-backup1-",
      .checkpoint = p.checkpoint, .ndisks = 2, .disks = rd,
    };
    CLEANUP_FREE char *tb = backup_xml_backup (&t);
    CLEANUP_FREE char *got = NULL;
    char prefix[256];
    if (!tb || backup_xml_job_export (tb, prefix, sizeof prefix) == -1) {
      fprintf (stderr, "build tcp: %s\n", error_msg ());
      exit (1);
    }
    got = xasprintf ("%s-- export prefix: '%s'\n", tb, prefix);
    golden ("backup-tcp", got);
    t.tcp_port = 0;
    if (backup_xml_backup (&t) != NULL) {
      fprintf (stderr, "FAIL backup XML without a port\n");
      failures++;
    }
  }

  /* No checkpoint name: no checkpoint XML. */
  p.checkpoint = NULL;
  if (backup_xml_checkpoint (&p) != NULL) {
    fprintf (stderr, "FAIL checkpoint XML without a name\n");
    failures++;
  }
}

static void
test_parse_misc (void)
{
  CLEANUP_FREE char *job = slurp ("job-pull.xml");
  char sock[256], out[2048] = "";
  size_t len = 0, n;
  struct backup_xml_disk d[2];
  char names[2][DISK_NAME_MAX + 1];
  static const char *const meta[] = {
    "<backup xmlns='" BACKUP_XML_NS "'/>",
    "<bb:backup xmlns:bb='" BACKUP_XML_NS "' enabled='yes'/>",
    "<backup xmlns='" BACKUP_XML_NS "' enabled='no'/>",
    "<backup xmlns='https://example.org/other'/>",
    "<backup/>",
    "<backup",
    NULL,
  };
  size_t i;

  if (backup_xml_job_socket (job, sock, sizeof sock) == -1)
    exit (1);
  len += snprintf (out + len, sizeof out - len, "job socket: %s\n", sock);
  backup_xml_job_socket ("<domainbackup mode='push'><disks/></domainbackup>",
                         sock, sizeof sock);
  len += snprintf (out + len, sizeof out - len, "push job socket: '%s'\n", sock);
  backup_xml_job_export (job, sock, sizeof sock);
  len += snprintf (out + len, sizeof out - len, "job export prefix: '%s'\n", sock);
  for (i = 0; i < sizeof meta / sizeof meta[0]; i++)
    len += snprintf (out + len, sizeof out - len, "marked %s: %s\n",
                     meta[i] ? meta[i] : "(none)",
                     backup_xml_marked (meta[i]) ? "yes" : "no");
  {
    static const char *const uris[] = {
      "qemu:///system", "qemu+unix:///system?socket=/run/x/libvirt-sock",
      "qemu+tls://hv1.example.org/system?pkipath=/etc/bb%20tls&no_verify=0",
      "qemu+ssh://root@10.1.2.3:2222/system", "qemu+tcp://[fd00::2]/system",
      "", "not a uri%",
    };
    for (i = 0; i < sizeof uris / sizeof uris[0]; i++) {
      char host[256], pki[256];
      int r = backup_uri_host (uris[i], host, sizeof host, pki, sizeof pki);
      if (r == -1)
        len += snprintf (out + len, sizeof out - len, "uri '%s': %s\n",
                         uris[i], error_msg ());
      else
        len += snprintf (out + len, sizeof out - len,
                         "uri '%s': host '%s' pkipath '%s'\n", uris[i], host,
                         pki);
    }
  }
  /* Errors name what was being parsed. */
  backup_xml_domain_disks ("<domain><devices>", d, 2, &n);
  len += snprintf (out + len, sizeof out - len, "error: %s\n", error_msg ());
  backup_xml_domain_disks ("<network/>", d, 2, &n);
  len += snprintf (out + len, sizeof out - len, "error: %s\n", error_msg ());
  backup_xml_domain_disks ("<domain><devices><disk type='file'/></devices></domain>",
                           d, 2, &n);
  len += snprintf (out + len, sizeof out - len, "error: %s\n", error_msg ());
  backup_xml_checkpoint_disks ("<domain/>", names, 2, &n);
  len += snprintf (out + len, sizeof out - len, "error: %s\n", error_msg ());
  golden ("parse-misc", out);
}

/* Who owns a job: a remote host's job XML never names a directory of
 * this machine to remove, and an export name that is not of bootback's
 * form names no PID. */
static void
test_job_owner (void)
{
  CLEANUP_FREE char *job = slurp ("job-pull.xml");
  char host[256], d[1024];
  long pid;

  if (backup_job_owner (job, false, &pid, host, sizeof host, d, sizeof d) == -1 ||
      pid != 4242 || strcmp (d, "/var/tmp/bootback-backup-4242-AbCdEf") != 0) {
    fprintf (stderr, "local job: pid %ld dir '%s'\n", pid, d);
    failures++;
  }
  if (backup_job_owner (job, true, &pid, host, sizeof host, d, sizeof d) == -1 ||
      pid != 0 || d[0]) {
    fprintf (stderr, "remote host's unix-socket job: pid %ld dir '%s' (must "
             "be 0 and none)\n", pid, d);
    failures++;
  }
  if (backup_job_owner ("<domainbackup mode='pull'><server transport='tcp' "
                        "name='h' port='1'/><disks><disk name='vda' "
                        "exportname='bootback-backup-77-vda'/></disks>"
                        "</domainbackup>", true, &pid, host, sizeof host, d,
                        sizeof d) == -1 || pid != 0) {
    fprintf (stderr, "export without a host tag: pid %ld (must be 0)\n", pid);
    failures++;
  }
  /* Another backup server of the same host name is not this one. */
  {
    char me[64] = "", *xml;
    gethostname (me, sizeof me - 1);
    xml = xasprintf ("<domainbackup mode='pull'><server transport='tcp' "
                     "name='h' port='1'/><disks><disk name='vda' exportname="
                     "'bootback-backup-77-%s-vda'/></disks></domainbackup>", me);
    if (backup_job_owner (xml, true, &pid, host, sizeof host, d,
                          sizeof d) == -1 || pid != 77 || !host[0]) {
      fprintf (stderr, "a job of another machine named %s: taken as this "
               "machine's (pid %ld host '%s')\n", me, pid, host);
      failures++;
    }
    free (xml);
  }
}

int
main (void)
{
  const char *top = getenv ("top_srcdir");
  CLEANUP_FREE char *d = xasprintf ("%s/recovery/ingest/backup-golden",
                                    top && *top ? top : ".");

  dir = d;
  test_domain_disks ();
  test_build ();
  test_parse_misc ();
  test_job_owner ();
  if (failures) {
    fprintf (stderr, "%d golden test(s) failed\n", failures);
    return 1;
  }
  return 0;
}
