/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Golden-file tests of the domain XML rewrite (domain-xml.c).  Each
 * golden/NAME.in holds the spec as KEY=VALUE lines, a line "---", then the
 * saved domain XML (or "default" for instant_xml_default's output); the
 * notes, the verdict of instant_xml_check on the result ("check: ") and
 * the rewritten XML must equal golden/NAME.out.  Also checks
 * instant_xml_set_disk and the refusals.  BOOTBACK_REGENERATE=1 rewrites
 * the .out files (then read them!).
 */
#include <dirent.h>
#include <errno.h>

#include "recovery/instant/instant.h"
#include "recovery/util/util.h"

#define DIR_ "recovery/instant/golden"

static int failures;

static char *
slurp (const char *path)
{
  FILE *f = fopen (path, "re");
  char *buf;
  size_t n;

  if (!f)
    return NULL;
  buf = xmalloc (1 << 20);
  n = fread (buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose (f);
  return buf;
}

struct out {
  char *text;
  size_t len;
};

static void
append (struct out *o, const char *s)
{
  size_t l = strlen (s);
  o->text = realloc (o->text, o->len + l + 1);
  if (!o->text)
    abort ();
  memcpy (o->text + o->len, s, l + 1);
  o->len += l;
}

static void
note_cb (void *opaque, const char *line)
{
  append (opaque, "note: ");
  append (opaque, line);
  append (opaque, "\n");
}

/* Run one case; returns the text to compare (malloc'd). */
/* disk=NAME:OVERLAY:SOCKET, or remote_disk=NAME:OVERLAY:HOST:PORT:TLS
 * (remote.c: TCP, no socket), into d. */
static void
parse_disk (struct instant_xml_disk *d, char *v, bool remote)
{
  char *f[5] = { v };
  int k;

  memset (d, 0, sizeof *d);
  for (k = 0; k < 4 && f[k]; k++) {
    f[k + 1] = strchr (f[k], ':');
    if (f[k + 1])
      *f[k + 1]++ = '\0';
  }
  d->name = f[0];
  d->overlay = f[1];
  if (!remote) {
    d->socket = f[2];
    return;
  }
  d->host = f[2];
  d->port = f[3] ? atoi (f[3]) : 0;
  d->tls = f[4] && atoi (f[4]);
}

static char *
run_case (char *in)
{
  struct instant_xml_spec sp = { 0 };
  struct instant_xml_disk disks[8];
  struct out o = { 0 };
  char *line, *save = NULL, *xml = NULL, *res;
  char *body = strstr (in, "\n---\n");
  size_t i;

  if (!body) {
    fprintf (stderr, "no --- line\n");
    exit (1);
  }
  *body = '\0';
  xml = body + 5;
  for (line = strtok_r (in, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char *v = strchr (line, '=');
    if (line[0] == '#' || !v)
      continue;
    *v++ = '\0';
    if (strcmp (line, "name") == 0) sp.name = v;
    else if (strcmp (line, "uuid") == 0) sp.uuid = v;
    else if (strcmp (line, "new_macs") == 0) sp.new_macs = atoi (v);
    else if (strcmp (line, "mac_seed") == 0) sp.mac_seed = strtoul (v, NULL, 0);
    else if (strcmp (line, "domain_type") == 0) sp.domain_type = v;
    else if (strcmp (line, "console_log") == 0) sp.console_log = v;
    else if (strcmp (line, "allow_passthrough") == 0) sp.allow_passthrough = atoi (v);
    else if (strcmp (line, "bios_serial") == 0) sp.bios_serial = atoi (v);
    else if (strcmp (line, "memory_cap_mib") == 0) sp.memory_cap_mib = strtoull (v, NULL, 10);
    else if (strcmp (line, "net") == 0) {
      if (strcmp (v, "none") == 0) sp.net = INSTANT_NET_NONE;
      else if (strncmp (v, "bridge:", 7) == 0) {
        sp.net = INSTANT_NET_BRIDGE; sp.net_source = v + 7;
      }
      else if (strncmp (v, "network:", 8) == 0) {
        sp.net = INSTANT_NET_NETWORK; sp.net_source = v + 8;
      }
    }
    else if ((strcmp (line, "disk") == 0 || strcmp (line, "remote_disk") == 0) &&
             sp.ndisks < 8)
      parse_disk (&disks[sp.ndisks++], v, line[0] == 'r');
  }
  sp.disks = disks;
  if (strncmp (xml, "default", 7) == 0) {
    const char *names[8];
    for (i = 0; i < sp.ndisks; i++)
      names[i] = disks[i].name;
    xml = instant_xml_default ("vm1", "qemu", 512, sp.ndisks, names);
  }
  else
    xml = xstrdup (xml);
  res = instant_xml_rewrite (xml, &sp, note_cb, &o);
  free (xml);
  if (!res) {
    append (&o, "error: ");
    append (&o, error_msg ());
    append (&o, "\n");
  }
  else {
    for (i = 0; i < sp.ndisks; i++) {
      char t[200];
      snprintf (t, sizeof t, "target: %s -> %s\n", disks[i].name, disks[i].target);
      append (&o, t);
    }
    /* The fail-closed check of the final XML (instant_start, the lab). */
    if (instant_xml_check (res, &sp) == 0)
      append (&o, "check: ok\n");
    else {
      append (&o, "check: ");
      append (&o, error_msg ());
      append (&o, "\n");
    }
    append (&o, res);
    free (res);
  }
  return o.text;
}

static void
check_set_disk (void)
{
  const char *xml =
    "<domain type='qemu'><name>a</name><devices>"
    "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
    "<source file='/ov/a.qcow2'/><backingStore type='network'><format type='raw'/>"
    "<source protocol='nbd'><host transport='unix' socket='/s'/></source>"
    "</backingStore><target dev='vda' bus='virtio'/></disk></devices></domain>";
  char *out = instant_xml_set_disk (xml, "vda", "/prod/a.raw", "raw");

  if (!out || !strstr (out, "<source file=\"/prod/a.raw\"/>") ||
      strstr (out, "backingStore") || !strstr (out, "type=\"raw\"")) {
    fprintf (stderr, "FAIL: set_disk: %s\n", out ? out : error_msg ());
    failures++;
  }
  free (out);
  out = instant_xml_set_disk (xml, "vdz", "/x", "raw");
  if (out || !strstr (error_msg (), "no disk vdz")) {
    fprintf (stderr, "FAIL: set_disk on a missing disk: %s\n", error_msg ());
    failures++;
  }
  free (out);
  {
    /* Remote: the backing must be the session's own address, port and
     * TLS; another host, port or plaintext is refused. */
    struct instant_xml_disk k = { .name = "vda", .overlay = "/pool/a.vda.qcow2",
                                  .host = "10.0.0.5", .port = 40000, .tls = true };
    struct instant_xml_spec sp = { .name = "a", .ndisks = 1, .disks = &k };
    static const char *const bad[] = { "10.0.0.6' port='40000'", "10.0.0.5' port='40001'" };
    const char *fmt =
      "<domain type='qemu'><name>a</name><devices><disk type='file' device='disk'>"
      "<driver name='qemu' type='qcow2'/><source file='/pool/a.vda.qcow2'/>"
      "<backingStore type='network'><format type='raw'/><source protocol='nbd' "
      "tls='%s'><host name='%s/></source><backingStore/></backingStore>"
      "<target dev='vda' bus='virtio'/></disk></devices></domain>";
    char *x = xasprintf (fmt, "yes", "10.0.0.5' port='40000'");
    size_t i;
    if (instant_xml_check (x, &sp) != 0) {
      fprintf (stderr, "FAIL: remote backing refused: %s\n", error_msg ());
      failures++;
    }
    free (x);
    for (i = 0; i < 3; i++) {
      x = xasprintf (fmt, i == 2 ? "no" : "yes", i == 2 ? "10.0.0.5' port='40000'" : bad[i]);
      if (instant_xml_check (x, &sp) == 0) {
        fprintf (stderr, "FAIL: a foreign remote backing passed: %s\n", x);
        failures++;
      }
      free (x);
    }
  }
  {
    /* libvirt takes the interfaces of a second <devices> too: the final
     * check refuses one (the rewrite joins them, golden/two-devices). */
    struct instant_xml_spec sp = { .name = "a" };
    if (instant_xml_check ("<domain type='kvm'><name>a</name><devices/><devices>"
                           "<interface type='bridge'><source bridge='br0'/>"
                           "</interface></devices></domain>", &sp) == 0 ||
        !strstr (error_msg (), "a second <devices>")) {
      fprintf (stderr, "FAIL: check of a second <devices>: %s\n", error_msg ());
      failures++;
    }
  }
  {
    /* The final check refuses a second video device and video memory
     * over the caps (golden/hostile-video). */
    static const char *const bad[] = {
      "<video><model type='qxl'/></video><video><model type='qxl'/></video>",
      "<video><model type='qxl' vram64='16777216'/></video>",
      "<video><model type='vga' vram='0x100000'/></video>",
    };
    struct instant_xml_spec sp = { .name = "a" };
    size_t i;
    for (i = 0; i < 3; i++) {
      char *x = xasprintf ("<domain type='kvm'><name>a</name><devices>%s</devices>"
                           "</domain>", bad[i]);
      if (instant_xml_check (x, &sp) == 0 || !strstr (error_msg (), "video")) {
        fprintf (stderr, "FAIL: check of %s: %s\n", bad[i], error_msg ());
        failures++;
      }
      free (x);
    }
  }
}

/* The memory mass instant recovery admits a VM by (instant-many.c): what
 * libvirt would give it, however the saved definition spells it. */
static void
check_memory (void)
{
  static const struct { const char *xml; uint64_t mib; } cases[] = {
    { "<domain><memory unit='MiB'>512</memory></domain>", 512 },
    { "<domain><memory>1048576</memory></domain>", 1024 },          /* KiB */
    { "<domain><memory unit='MiB'>1</memory><cpu><numa>"
      "<cell id='0' cpus='0' memory='4' unit='GiB'/>"
      "<cell id='1' cpus='1' memory='1024' unit='MiB'/></numa></cpu></domain>", 5120 },
    { "<domain><memory unit='MiB'>1</memory><maxMemory slots='4' unit='GiB'>64"
      "</maxMemory></domain>", 65536 },
    { "<domain><memory unit='EiB'>99999999999</memory></domain>", UINT64_MAX >> 20 },
    /* libvirt reads a unit as virScaleInteger does: any case, P and E too */
    { "<domain><memory unit='gib'>64</memory></domain>", 65536 },
    { "<domain><memory unit='mb'>1000</memory></domain>", 953 },
    { "<domain><memory unit='Byte'>1073741824</memory></domain>", 1024 },
    { "<domain><memory unit='p'>1</memory></domain>", 1ull << 30 },
    { "<domain><memory unit='EB'>1</memory></domain>", 1000000000000000000ull >> 20 },
    { "<domain><memory unit='MiBs'>64</memory></domain>", 0 },          /* no such unit */
    { "<domain><memory unit='x'>64</memory></domain>", 0 },
    { "<domain><memory unit='TiB'>99999999999999</memory></domain>", UINT64_MAX >> 20 },
    { "<domain/>", 0 },
    /* memory devices add to the NUMA cells (libvirt's <memory> is then
     * their sum), whatever <memory> and <maxMemory> say */
    { "<domain><memory unit='MiB'>512</memory><cpu><numa>"
      "<cell id='0' cpus='0' memory='512' unit='MiB'/></numa></cpu><devices>"
      "<memory model='dimm'><target><size unit='GiB'>32</size></target></memory>"
      "<memory model='virtio-mem'><target><size unit='GiB'>16</size>"
      "<requested unit='MiB'>0</requested></target></memory></devices></domain>", 49664 },
    { "<domain><memory unit='MiB'>1</memory><maxMemory slots='2' unit='MiB'>1024"
      "</maxMemory><devices><memory model='dimm'><target><size>8388608</size>"
      "</target></memory></devices><devices><memory model='dimm'><target>"
      "<size unit='TiB'>1</size></target></memory></devices></domain>", 8192 + (1 << 20) },
    /* without cells, <memory> includes them */
    { "<domain><memory unit='GiB'>40</memory><devices><memory model='dimm'><target>"
      "<size unit='GiB'>32</size></target></memory></devices></domain>", 40960 },
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t got = instant_xml_memory_mib (cases[i].xml);
    if (got != cases[i].mib) {
      fprintf (stderr, "FAIL: memory of %s: %" PRIu64 " MiB, not %" PRIu64 "\n",
               cases[i].xml, got, cases[i].mib);
      failures++;
    }
  }
}

int
main (void)
{
  DIR *d = opendir (DIR_);
  struct dirent *e;
  bool regen = getenv ("BOOTBACK_REGENERATE") != NULL;
  int cases = 0;

  if (!d) {
    perror (DIR_);
    return 1;
  }
  while ((e = readdir (d))) {
    size_t l = strlen (e->d_name);
    char path[512], outpath[512];
    char *in, *got, *want;

    if (l < 4 || strcmp (e->d_name + l - 3, ".in") != 0)
      continue;
    snprintf (path, sizeof path, "%s/%s", DIR_, e->d_name);
    snprintf (outpath, sizeof outpath, "%s/%.*s.out", DIR_, (int) (l - 3), e->d_name);
    in = slurp (path);
    if (!in) {
      perror (path);
      return 1;
    }
    got = run_case (in);
    free (in);
    cases++;
    if (regen) {
      FILE *f = fopen (outpath, "we");
      if (!f || fputs (got, f) < 0 || fclose (f) != 0) {
        perror (outpath);
        return 1;
      }
      printf ("wrote %s\n", outpath);
    }
    else {
      want = slurp (outpath);
      if (!want || strcmp (want, got) != 0) {
        fprintf (stderr, "FAIL: %s differs from %s; got:\n%s\n", path, outpath, got);
        failures++;
      }
      else
        printf ("ok %s\n", e->d_name);
      free (want);
    }
    free (got);
  }
  closedir (d);
  check_set_disk ();
  check_memory ();
  if (cases < 5) {
    fprintf (stderr, "FAIL: only %d golden cases found\n", cases);
    failures++;
  }
  printf ("%d cases, %d failures\n", cases, failures);
  return failures ? 1 : 0;
}
