/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for what the lab reads: a lab definition
 * (lab_def_read_string, conf.c) and a restore point's saved domain XML
 * (lab_domain_verify_hints and lab_quick_def, quick.c; lab_domain_check
 * of the XML the instant rewrite makes for a lab VM, domain-xml.c).
 * Beyond "no crash, no leak, no overread":
 *   - a definition that parses has valid names (lab, groups, VMs), a
 *     point "latest" or a time stamp, addresses inside the subnet, and
 *     at least one VM; one that does not has errors, every one a line
 *     "NAME:LINE: message" without control characters;
 *   - a definition built from a point's <bb:verify> never holds a script
 *     check (it would run on the host) and every check the point asked
 *     for is either in it or refused; the error when it cannot be built
 *     and the refusals are printable;
 *   - what instant_xml_rewrite makes for the lab bridge passes
 *     lab_domain_check with the allow-list if it has an interface.
 *
 * Input: byte 0 even: the rest is YAML; odd: the rest is domain XML,
 * bit 1 gives the administrator's --address, bit 2 passes the point's
 * disk.  lab/test-fuzz.sh seeds the corpus with the lab files of the
 * tests and README and recovery/instant/golden/ *.in.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <time.h>

#include "lab/lab.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"

#define BRIDGE "bblfuzzbr"

/* No control character but newlines between lines. */
static bool
printable (const char *s, bool lines)
{
  for (; *s; s++)
    if (((unsigned char) *s < 0x20 && !(lines && *s == '\n')) || *s == 0x7f)
      return false;
  return true;
}

static void
check_vm (const struct lab_def *d, const struct lab_vm *vm)
{
  struct in_addr a;
  time_t t;
  size_t i;

  assert (vm->name && name_is_valid (vm->name));
  assert (!vm->point != !vm->image);
  assert (!vm->point || strcmp (vm->point, "latest") == 0 ||
          timestamp_parse (vm->point, &t) == 0);
  assert (!vm->address || (inet_pton (AF_INET, vm->address, &a) == 1 &&
                           d->subnet &&
                           lab_ipv4_in_subnet (vm->address, d->subnet, d->prefix)));
  for (i = 0; i < vm->nchecks; i++) {
    const struct lab_check *c = &vm->checks[i];
    assert (c->kind >= LAB_CHECK_HEARTBEAT && c->kind <= LAB_CHECK_SCAN);
    assert (c->name);
    assert (c->kind != LAB_CHECK_SCRIPT || (c->argv && c->argv[0]));
    assert (c->kind != LAB_CHECK_HTTP || c->url);
  }
}

static void
fuzz_yaml (const char *yaml)
{
  char *errs = NULL;
  struct lab_def *d = lab_def_read_string (yaml, "fuzz.yaml", &errs);
  size_t g, i;

  if (d) {
    assert (d->name && name_is_valid_max (d->name, LAB_NAME_MAX));
    assert (!d->gateway || (d->subnet &&
                            lab_ipv4_in_subnet (d->gateway, d->subnet, d->prefix)));
    assert (lab_def_nvms (d) >= 1);
    for (g = 0; g < d->ngroups; g++) {
      assert (d->groups[g].name);
      for (i = 0; i < d->groups[g].nvms; i++)
        check_vm (d, &d->groups[g].vms[i]);
    }
    lab_def_free (d);
  }
  else {
    char *l, *save = NULL;
    assert (errs && errs[0]);
    if (!printable (errs, true)) {
      fprintf (stderr, "an error with a control character:\n%s\n", errs);
      abort ();
    }
    for (l = strtok_r (errs, "\n", &save); l; l = strtok_r (NULL, "\n", &save))
      assert (strncmp (l, "fuzz.yaml:", 10) == 0);
  }
  free (errs);
  error_clear ();
}

/* The quick definition of the point's <bb:verify>. */
static void
fuzz_hints (const char *xml, uint8_t flags)
{
  struct lab_verify_hints h;
  struct lab_quick q = { .vm = "web1", .point = "latest", .hints = &h };
  struct lab_def *d;
  struct lab_vm *vm;
  size_t i, npoint;

  if (lab_domain_verify_hints (xml, &h) != 1) {
    error_clear ();
    return;
  }
  if (flags & 2)
    q.address = "10.77.0.10";
  d = lab_quick_def (&q);
  if (!d) {
    if (!printable (error_msg (), false)) {
      fprintf (stderr, "an error with a control character: %s\n", error_msg ());
      abort ();
    }
  }
  else {
    assert (lab_def_nvms (d) == 1);
    vm = &d->groups[d->ngroups - 1].vms[0];
    check_vm (d, vm);
    for (i = 0; i < vm->nchecks; i++)
      assert (vm->checks[i].kind != LAB_CHECK_SCRIPT);
    /* heartbeat, ping with an address, the point's, screenshot */
    npoint = vm->nchecks - 2 - (vm->address ? 1 : 0);
    assert (npoint + vm->nrefused == (size_t) h.nchecks);
    for (i = 0; i < vm->nrefused; i++)
      assert (printable (vm->refused[i].check, false) &&
              printable (vm->refused[i].why, false));
    lab_def_free (d);
  }
  lab_verify_hints_clear (&h);
  error_clear ();
}

/* The rewrite for a lab VM passes the lab's own check. */
static void
fuzz_lab_rewrite (const char *xml, uint8_t flags)
{
  struct instant_xml_disk disk = {
    .name = "vda", .overlay = "/var/lib/bootback/instant/1/vda.qcow2",
    .socket = "/run/bootback/1/vda.sock",
  };
  struct instant_xml_spec sp = {
    .name = "bbl-abc123-web1", .new_macs = true, .mac_seed = 7,
    .net = INSTANT_NET_BRIDGE, .net_source = BRIDGE, .domain_type = "qemu",
    .console_log = "/var/lib/bootback/labs/abc123/web1.log",
    .ndisks = (flags & 4) ? 1 : 0, .disks = &disk,
  };
  char **taps, **bridges, **types;
  char *out;
  int n;

  (void) lab_domain_check (xml, BRIDGE, "web1", &sp);
  error_clear ();
  out = instant_xml_rewrite (xml, &sp, NULL, NULL);
  if (!out) {
    error_clear ();
    return;
  }
  n = lab_domain_interfaces (out, &taps, &bridges, &types);
  assert (n >= 0);
  strv_free (taps);
  strv_free (bridges);
  strv_free (types);
  if (n > 0 && lab_domain_check (out, BRIDGE, "web1", &sp) == -1) {
    fprintf (stderr, "the lab refuses the rewrite's output: %s\n%s\n",
             error_msg (), out);
    abort ();
  }
  free (out);
  error_clear ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text;

  if (size < 1)
    return 0;
  text = xmalloc (size);
  memcpy (text, data + 1, size - 1);
  text[size - 1] = '\0';
  if (data[0] % 2 == 0)
    fuzz_yaml (text);
  else {
    fuzz_hints (text, data[0]);
    fuzz_lab_rewrite (text, data[0]);
  }
  free (text);
  return 0;
}
