/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lab definition of a quick verification (bootback verify VM[@TIME]),
 * built as data with conf.c's constructors, so the same rules hold as for
 * a lab file and no value is ever printed into YAML.  Pure.
 *
 * Two sources, two levels of trust:
 *   - the administrator's options (--address, --subnet, --gateway,
 *     --check, ...): any check, script included;
 *   - the restore point's own <bb:verify> in its saved domain XML
 *     (lab_domain_verify_hints), written by whoever controls the guest
 *     (a compromised guest's definition is backed up with it): its values
 *     are validated like a file's and its checks are LAB_FROM_POINT, only
 *     kinds that act on the guest.  A check it may not ask for is refused
 *     and reported as a failed check, the others still run; a bad
 *     address, subnet or gateway fails the verification with an error
 *     naming it, before anything boots.
 */
#include <arpa/inet.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

/* Check defaults: application checks run right after the heartbeat, when
 * services may still be starting, so try often for a while. */
#define QUICK_RETRIES   20
#define QUICK_INTERVAL  0.5
#define QUICK_TIMEOUT   5.0

/* A value and who gave it, for the messages. */
struct val {
  const char *s;
  const char *from;
};

static struct val
pick (const char *opt, const char *optname, const struct lab_verify_hints *h,
      const char *hint, const char *hintname)
{
  struct val v = { opt, optname };

  if (!opt && h && hint) {
    v.s = hint;
    v.from = hintname;
  }
  return v;
}

/* The /24 of address and its .1 (defaults for the subnet and gateway). */
static void
default_net (const char *address, char subnet[32], char gateway[16])
{
  struct in_addr a;
  uint32_t h;

  inet_pton (AF_INET, address, &a);
  h = ntohl (a.s_addr) & 0xffffff00;
  a.s_addr = htonl (h);
  inet_ntop (AF_INET, &a, subnet, 16);
  strcat (subnet, "/24");
  a.s_addr = htonl (h | 1);
  inet_ntop (AF_INET, &a, gateway, 16);
}

/* The network and the VM's address; *hinted: some came from the point. */
static int
quick_net (struct lab_def *d, struct lab_vm *vm, const struct lab_quick *q,
           bool *hinted)
{
  const struct lab_verify_hints *h = q->hints;
  struct val address = pick (q->address, "--address", h, h ? h->address : NULL,
                             "<address> of its <bb:verify>");
  struct val subnet = pick (q->subnet, "--subnet", h, h ? h->subnet : NULL,
                            "<subnet> of its <bb:verify>");
  struct val gateway = pick (q->gateway, "--gateway", h, h ? h->gateway : NULL,
                             "<gateway> of its <bb:verify>");
  /* No address: the guest is reached through its agent only. */
  char sub[32] = "198.18.255.0/24", gw[16] = "198.18.255.1";

  *hinted = address.s != q->address || subnet.s != q->subnet ||
            gateway.s != q->gateway;
  if (address.s) {
    if (lab_vm_set_address (vm, address.s) == -1) {
      error_prefix ("%s", address.from);
      return -1;
    }
    default_net (address.s, sub, gw);
  }
  if (lab_def_set_subnet (d, subnet.s ? subnet.s : sub) == -1) {
    error_prefix ("%s", subnet.from);
    return -1;
  }
  if (lab_def_set_gateway (d, gateway.s ? gateway.s : gw) == -1) {
    error_prefix ("%s", gateway.from);
    return -1;
  }
  return 0;
}

/* Whether VM already has a check written exactly as TEXT: `--check
 * heartbeat` beside the heartbeat every verification has runs it once. */
static bool
has_check (const struct lab_vm *vm, const char *text)
{
  size_t i;

  for (i = 0; i < vm->nchecks; i++)
    if (strcmp (vm->checks[i].name, text) == 0)
      return true;
  return false;
}

/* The checks: heartbeat, ping, the point's, the administrator's, a
 * screenshot; each once. */
static int
quick_checks (struct lab_def *d, struct lab_vm *vm, const struct lab_quick *q)
{
  size_t i;
  int k;

  if (!lab_vm_add_check (d, vm, "heartbeat", LAB_FROM_ADMIN) ||
      (vm->address && !lab_vm_add_check (d, vm, "ping", LAB_FROM_ADMIN)))
    return -1;
  for (k = 0; q->hints && k < q->hints->nchecks; k++)
    if (!has_check (vm, q->hints->checks[k]) &&
        !lab_vm_add_check (d, vm, q->hints->checks[k], LAB_FROM_POINT))
      lab_vm_refuse (vm, q->hints->checks[k], error_msg ());
  for (i = 0; q->checks && q->checks[i]; i++)
    if (!has_check (vm, q->checks[i]) &&
        !lab_vm_add_check (d, vm, q->checks[i], LAB_FROM_ADMIN)) {
      CLEANUP_FREE char *s = lab_printable (q->checks[i], 200);
      error_prefix ("--check '%s'", s);
      return -1;
    }
  if (!lab_vm_add_check (d, vm, "screenshot", LAB_FROM_ADMIN))
    return -1;
  for (i = 0; i < vm->nchecks; i++) {
    vm->checks[i].retries = QUICK_RETRIES;
    vm->checks[i].interval = QUICK_INTERVAL;
    vm->checks[i].timeout = QUICK_TIMEOUT;
  }
  return 0;
}

/* --boot-timeout and --memory. */
static int
quick_limits (struct lab_vm *vm, const struct lab_quick *q)
{
  if (q->boot_timeout) {
    double t = lab_parse_duration (q->boot_timeout);
    if (t < 0) {
      error_prefix ("--boot-timeout");
      return -1;
    }
    vm->boot_timeout = t;
  }
  if (q->memory && lab_parse_memory (q->memory, &vm->memory_mib) == -1) {
    error_prefix ("--memory");
    return -1;
  }
  return 0;
}

struct lab_def *
lab_quick_def (const struct lab_quick *q)
{
  CLEANUP_FREE char *name = xasprintf ("verify-%s", q->vm);
  struct lab_def *d = lab_def_new (name, "bootback verify");
  struct lab_vm *vm;
  bool hinted = false;

  if (!d || !(vm = lab_def_add_vm (d, q->vm, q->point)) ||
      quick_net (d, vm, q, &hinted) == -1)
    goto fail;
  /* The network's rules (the gateway and the address host addresses of
   * the subnet, the address not the gateway) before the checks use it. */
  if (lab_def_finish (d) == -1) {
    if (hinted)
      error_prefix ("the network of its <bb:verify>");
    goto fail;
  }
  if (quick_limits (vm, q) == -1 || quick_checks (d, vm, q) == -1 ||
      lab_def_finish (d) == -1)
    goto fail;
  return d;
 fail:
  error_prefix ("%s@%s", q->vm, q->point);
  lab_def_free (d);
  return NULL;
}
