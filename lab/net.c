/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The isolated lab network (docs/design.md, "Lab network").
 *
 *      VM taps ──┐
 *                ├── bridge bbl<id>br ── veth bbl<id>h ═══ eth0 ┐ namespace
 *      VM taps ──┘   (no address, IPv6 off,                     │ bootback-lab-<id>
 *                     arp_ignore=8, INPUT/FORWARD DROP,         │ gateway address,
 *                     forwarding=0, no other port)              ┘ no forwarding
 *
 * Invariants (checked by lab_net_check before any VM starts, fail closed):
 *  1. The host holds no address in the lab subnet on any interface: a
 *     bridge with no address is still a host interface, and a host that
 *     owns the gateway address elsewhere would answer the guests' ARP
 *     through it and take their traffic.
 *  2. The bridge has no address and IPv6 is off on it and its ports.
 *  3. arp_ignore=8 on the bridge: the host answers no ARP there.
 *  4. iptables drops every packet arriving from the bridge for the host
 *     (INPUT) and every packet routed to or from it (FORWARD; frames
 *     bridged between its own ports pass, as br_netfilter shows them to
 *     FORWARD too), and forwarding is off on it; nothing but other labs'
 *     rules come first.  Its raw table exempts the bridge's traffic from
 *     connection tracking (IPv4 and IPv6): guests talking to each other
 *     through br_netfilter would otherwise fill the host's table.
 *  5. The bridge's ports are the lab's veth and its VMs' taps only, and
 *     none learns MAC addresses: a guest sending from ever new ones would
 *     grow the host's forwarding table without bound (the kernel keeps
 *     each for ageing_time, with no limit); frames are flooded to the
 *     lab's few ports instead.
 *  6. The namespace has lo and eth0 only, holds the gateway (and DNS)
 *     address, does not forward and has no route but its subnet.
 *  7. Nothing listens for TCP in the namespace: a sandbox's published
 *     ports (publish.c) are listened for on the host by a relay that
 *     only connects into the lab, so a VM that reaches the namespace's
 *     addresses finds no way back through it.
 * All checks that reach a VM run inside the namespace, never through the
 * host's routing table.
 *
 * The network is made with iproute2 and iptables (run as programs, their
 * own messages passed on) and /proc/sys.  Names derive from the run's
 * short id so that teardown needs nothing but the id.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lab/lab.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"

void
lab_net_init (struct lab_net *n, const char *id, const struct lab_def *d)
{
  memset (n, 0, sizeof *n);
  snprintf (n->id, sizeof n->id, "%s", id);
  snprintf (n->bridge, sizeof n->bridge, INSTANT_LAB_NET_PREFIX "%sbr", id);
  snprintf (n->veth_host, sizeof n->veth_host, INSTANT_LAB_NET_PREFIX "%sh", id);
  snprintf (n->veth_ns, sizeof n->veth_ns, INSTANT_LAB_NET_PREFIX "%sn", id);
  snprintf (n->netns, sizeof n->netns, "bootback-lab-%s", id);
  if (d) {
    snprintf (n->gateway, sizeof n->gateway, "%s", d->gateway ? d->gateway : "");
    snprintf (n->subnet, sizeof n->subnet, "%s", d->subnet ? d->subnet : "");
    snprintf (n->dns, sizeof n->dns, "%s", d->dns ? d->dns : "");
    n->prefix = d->prefix;
  }
}

/* Run a program given as NULL-terminated arguments on the lab's host
 * (hostcmd.c); output into out.  Returns its exit status or -1. */
static int
runv (const struct lab_net *n, char *out, size_t len, const char *prog, ...)
{
  const char *argv[32];
  va_list ap;
  int k = 0;

  argv[k++] = prog;
  va_start (ap, prog);
  while (k < 31 && (argv[k] = va_arg (ap, const char *)))
    k++;
  va_end (ap);
  argv[k] = NULL;
  return lab_host_run (n->host, (char *const *) argv, out, len);
}

/* Same, but a non-zero exit is an error naming the command. */
#define RUN(n, ...) run_ok (n, __VA_ARGS__, NULL)
static int
run_ok (const struct lab_net *n, const char *prog, ...)
{
  const char *argv[32];
  char out[1024], cmd[512] = "";
  va_list ap;
  int k = 0, r, i;

  argv[k++] = prog;
  va_start (ap, prog);
  while (k < 31 && (argv[k] = va_arg (ap, const char *)))
    k++;
  va_end (ap);
  argv[k] = NULL;
  r = lab_host_run (n->host, (char *const *) argv, out, sizeof out);
  if (r == 0)
    return 0;
  for (i = 0; i < k; i++) {
    strncat (cmd, argv[i], sizeof cmd - strlen (cmd) - 2);
    if (i + 1 < k)
      strcat (cmd, " ");
  }
  if (r > 0)
    error_setx ("%s: %s", cmd, out[0] ? out : "failed");
  else
    error_prefix ("%s", cmd);
  return -1;
}

/* Write value to path on the lab's host (a fixed script there: path and
 * value are its arguments, quoted). */
static int
sysctl_write (const struct lab_net *n, const char *path, const char *value)
{
  CLEANUP_CLOSE int fd = -1;

  if (lab_host_remote (n->host))
    return RUN (n, "sh", "-c", "echo \"$2\" > \"$1\"", "sh", path, value);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd == -1) {
    error_set (errno, "open %s", path);
    return -1;
  }
  if (write (fd, value, strlen (value)) != (ssize_t) strlen (value)) {
    error_set (errno, "write %s", path);
    return -1;
  }
  return 0;
}

/* Read an integer from a /proc/sys file of the lab's host; -1 if
 * unreadable. */
static long
sysctl_read (const struct lab_net *n, const char *path)
{
  char buf[32];
  int fd;
  ssize_t r;

  if (lab_host_remote (n->host))
    return runv (n, buf, sizeof buf, "cat", path, NULL) == 0 ? strtol (buf, NULL, 10) : -1;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return -1;
  r = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (r <= 0)
    return -1;
  buf[r] = '\0';
  return strtol (buf, NULL, 10);
}

/* Does path exist on the lab's host? */
static bool
host_path_exists (const struct lab_net *n, const char *path)
{
  char out[256];

  if (lab_host_remote (n->host))
    return runv (n, out, sizeof out, "test", "-e", path, NULL) == 0;
  return access (path, F_OK) == 0;
}

/* Has the lab's host IPv6 at all? */
static bool
has_ipv6 (const struct lab_net *n)
{
  return host_path_exists (n, "/proc/sys/net/ipv6");
}

/* A port of the bridge learns no MAC address (what it learned is
 * flushed): the kernel keeps each source address a port receives from
 * for ageing_time, with no limit, so a guest sending from ever new ones
 * would grow the host's forwarding table by an entry a frame.  Frames to
 * a VM are flooded to the lab's few ports instead. */
static int
port_no_learning (const struct lab_net *n, const char *ifname)
{
  CLEANUP_FREE char *l = xasprintf ("/sys/class/net/%s/brif/%s/learning", n->bridge,
                                    ifname);
  CLEANUP_FREE char *f = xasprintf ("/sys/class/net/%s/brif/%s/flush", n->bridge,
                                    ifname);

  if (sysctl_write (n, l, "0") == -1 || sysctl_write (n, f, "1") == -1)
    return -1;
  return 0;
}

int
lab_net_port_harden (const struct lab_net *n, const char *ifname)
{
  CLEANUP_FREE char *p = xasprintf ("/proc/sys/net/ipv6/conf/%s/disable_ipv6",
                                    ifname);
  if (sysctl_write (n, p, "1") == -1 && has_ipv6 (n))
    return -1;
  if (strcmp (ifname, n->bridge) == 0)
    return 0;
  return port_no_learning (n, ifname);
}

static bool
iface_exists (const struct lab_net *n, const char *ifname)
{
  CLEANUP_FREE char *p = xasprintf ("/sys/class/net/%s", ifname);
  return host_path_exists (n, p);
}

static bool
netns_exists (const struct lab_net *n)
{
  CLEANUP_FREE char *p = xasprintf ("/run/netns/%s", n->netns);
  return host_path_exists (n, p);
}

/* The iptables rules of a lab, in the order they are inserted (each at
 * the top, so FORWARD ends up ACCEPT, DROP -i, DROP -o).  With
 * br_netfilter loaded (bridge-nf-call-iptables=1), frames bridged between
 * the lab's own ports traverse FORWARD as "-i BR -o BR": they are
 * accepted, whatever the chain's policy; everything routed in or out of
 * the bridge is dropped, and everything addressed to the host too.
 * They also pass the host's connection tracking, whose table is the
 * whole host's (nf_conntrack_max; an established TCP connection kept
 * for days): guests talking to each other could fill it and make the
 * host drop its own new connections.  So rules 4 and 5 (raw table,
 * IPv4 and IPv6) exempt everything from the bridge from tracking. */
#define NRULES 6
#define RULE_NOTRACK 4

/* iptables or ip6tables, and the table. */
static const char *
rule_prog (int i)
{
  return i == RULE_NOTRACK + 1 ? "ip6tables" : "iptables";
}

static const char *
rule_table (int i)
{
  return i >= RULE_NOTRACK ? "raw" : "filter";
}

static int
rule_args (const struct lab_net *n, int i, const char *argv[8])
{
  int k = 0;

  if (i >= RULE_NOTRACK) {
    argv[k++] = "PREROUTING";
    argv[k++] = "-i"; argv[k++] = n->bridge;
    argv[k++] = "-j"; argv[k++] = "CT"; argv[k++] = "--notrack";
    argv[k] = NULL;
    return k;
  }
  argv[k++] = i == 0 ? "INPUT" : "FORWARD";
  switch (i) {
  case 0: case 2: argv[k++] = "-i"; argv[k++] = n->bridge; break;
  case 1: argv[k++] = "-o"; argv[k++] = n->bridge; break;
  case 3:
    argv[k++] = "-i"; argv[k++] = n->bridge;
    argv[k++] = "-o"; argv[k++] = n->bridge;
    break;
  }
  argv[k++] = "-j";
  argv[k++] = i == 3 ? "ACCEPT" : "DROP";
  argv[k] = NULL;
  return k;
}

/* iptables -w -t TABLE OP RULE; exit status (or -1). */
static int
rule_op (const struct lab_net *n, const char *op, int i, char *out, size_t len)
{
  const char *argv[16] = { rule_prog (i), "-w", "-t", rule_table (i), op };
  const char *r[8];
  int k, j;

  k = rule_args (n, i, r);
  for (j = 0; j < k; j++)
    argv[5 + j] = r[j];
  argv[5 + k] = NULL;
  return lab_host_run (n->host, (char *const *) argv, out, len);
}

/* The rule as iptables -S prints it. */
static void
rule_text (const struct lab_net *n, int i, char *out, size_t len)
{
  const char *r[8];
  int k, j;

  k = rule_args (n, i, r);
  snprintf (out, len, "-A");
  for (j = 0; j < k; j++)
    snprintf (out + strlen (out), len - strlen (out), " %s", r[j]);
}

/* -1 unless the host holds no IPv4 address inside the lab subnet. */
static int
check_host_addresses (const struct lab_net *n)
{
  char out[16384];
  char *line, *save = NULL;

  if (runv (n, out, sizeof out, "ip", "-o", "-4", "addr", "show", NULL) != 0) {
    error_setx ("isolation: host-address: cannot list the host's addresses: %s",
                out);
    return -1;
  }
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char ifname[64], addr[64];
    char *slash;
    if (sscanf (line, "%*d: %63s inet %63s", ifname, addr) != 2)
      continue;
    slash = strchr (addr, '/');
    if (slash)
      *slash = '\0';
    if (lab_ipv4_in_subnet (addr, n->subnet, n->prefix)) {
      error_setx ("isolation: host-address: the host holds %s on %s, inside "
                  "the lab subnet %s/%d; it would answer the lab's ARP and "
                  "take its traffic", addr, ifname, n->subnet, n->prefix);
      return -1;
    }
  }
  return 0;
}

/* Does an iptables interface match ("eth+" is a prefix) name the bridge? */
static bool
iface_names (const char *match, const char *bridge)
{
  size_t n = strlen (match);

  if (n > 0 && match[n - 1] == '+')
    return strncmp (match, bridge, n - 1) == 0;
  return strcmp (match, bridge) == 0;
}

/* Does LINE say "DIR NAME" (or "! DIR NAME") in a way that no packet
 * with BRIDGE on that side can match?  Only the rule's head counts:
 * iptables -S prints "-A CHAIN", then its [!] -s/-d/-i/-o/-p matches,
 * then -m modules and the target, whose arguments (a comment's text
 * too, unquoted when it is one word) may read like anything.  A line
 * with a quote is never excused. */
static bool
line_excludes (const char *line, const char *dir, const char *bridge)
{
  static const char *const head[] = { "-s", "-d", "-i", "-o", "-p", NULL };
  CLEANUP_FREE char *copy = xstrdup (line);
  char *tok, *save = NULL;
  bool negated = false;
  size_t k;

  if (strchr (line, '"') || strncmp (line, "-A ", 3) != 0)
    return false;
  strtok_r (copy, " ", &save);                  /* -A */
  if (!strtok_r (NULL, " ", &save))             /* CHAIN */
    return false;
  while ((tok = strtok_r (NULL, " ", &save))) {
    if (strcmp (tok, "!") == 0 && !negated) {
      negated = true;
      continue;
    }
    for (k = 0; head[k] && strcmp (tok, head[k]) != 0; k++)
      ;
    if (!head[k] || !(tok = strtok_r (NULL, " ", &save)))
      return false;             /* the head ended: DIR was not in it */
    if (strcmp (head[k], dir) == 0)
      return iface_names (tok, bridge) == negated;
    negated = false;
  }
  return false;
}

bool
lab_rule_may_match (const char *line, const char *in, const char *out)
{
  if (in && line_excludes (line, "-i", in))
    return false;
  if (out && line_excludes (line, "-o", out))
    return false;
  return true;
}

/* Is rule i present, with only harmless rules before it in its chain:
 * rules that cannot match the lab's packets (another interface named on
 * the same side: another lab's, a test's), and other labs' (or our own)
 * "-i X -j DROP", "-o X -j DROP" and "-i X -o X -j ACCEPT"?  Anything
 * else (a rule naming no interface, a wildcard that covers the bridge)
 * may let the lab's packets through first: refused.  Returns 0, or -1
 * with the reason in why. */
static int
check_rule (const struct lab_net *n, int i, char *why, size_t len)
{
  char out[65536];
  char mine[160];
  const char *r[8];
  const char *in = i == 1 ? NULL : n->bridge, *outif = i == 1 || i == 3 ? n->bridge : NULL;
  char *line, *save = NULL;

  rule_args (n, i, r);
  rule_text (n, i, mine, sizeof mine);
  if (runv (n, out, sizeof out, rule_prog (i), "-w", "-t", rule_table (i), "-S", r[0],
            NULL) != 0) {
    snprintf (why, len, "%s -t %s -S %s: %.400s", rule_prog (i), rule_table (i), r[0], out);
    return -1;
  }
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char c[32], d[8], ifn[64], ifn2[64], target[32], extra;
    if (strncmp (line, "-A ", 3) != 0)
      continue;
    if (strcmp (line, mine) == 0)
      return 0;
    if (!lab_rule_may_match (line, in, outif))
      continue;
    if (sscanf (line, "-A %31s %7s %63s -j %31s %c", c, d, ifn, target, &extra) == 4 &&
        (strcmp (d, "-i") == 0 || strcmp (d, "-o") == 0) &&
        strcmp (target, "DROP") == 0)
      continue;
    if (sscanf (line, "-A %31s -i %63s -o %63s -j %31s %c", c, ifn, ifn2, target,
                &extra) == 4 && strcmp (ifn, ifn2) == 0 && strcmp (target, "ACCEPT") == 0)
      continue;
    snprintf (why, len, "'%.300s' comes before the lab's '%s'", line, mine);
    return -1;
  }
  snprintf (why, len, "no rule '%s'", mine);
  return -1;
}

/* The same on another host: ls there. */
static char **
bridge_ports_remote (const struct lab_net *n, const char *dir)
{
  char out[8192];
  char *line, *save = NULL;
  char **v = xcalloc (1, sizeof *v);
  size_t k = 0;

  if (runv (n, out, sizeof out, "ls", "-1", dir, NULL) != 0)
    return v;
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    strv_push (&v, &k, xstrdup (line));
  return v;
}

/* The bridge's ports (names in /sys/class/net/BR/brif); an empty array if
 * it has none or cannot be read. */
static char **
bridge_ports (const struct lab_net *nt)
{
  CLEANUP_FREE char *p = xasprintf ("/sys/class/net/%s/brif", nt->bridge);
  DIR *d;
  struct dirent *e;
  char **v;
  size_t n = 0;

  if (lab_host_remote (nt->host))
    return bridge_ports_remote (nt, p);
  v = xcalloc (1, sizeof *v);
  d = opendir (p);
  if (!d)
    return v;
  while ((e = readdir (d))) {
    if (e->d_name[0] == '.')
      continue;
    strv_push (&v, &n, xstrdup (e->d_name));
  }
  closedir (d);
  return v;
}

/* The checks below are numbered as the invariants at the top of this
 * file (and in docs/design.md); each sets the error ("isolation: NAME:
 * ...") and returns -1 when its invariant does not hold. */

/* 2a. ipv6, on the bridge and every port.  Where the kernel has no IPv6
 * at all there is nothing to disable. */
static int
check_ipv6 (const struct lab_net *n, char *const *ports)
{
  char path[256];
  long v;
  size_t i;

  snprintf (path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", n->bridge);
  if ((v = sysctl_read (n, path)) != 1 && has_ipv6 (n)) {
    error_setx ("isolation: ipv6: IPv6 is not disabled on the bridge %s "
                "(disable_ipv6=%ld)", n->bridge, v);
    return -1;
  }
  for (i = 0; ports[i]; i++) {
    snprintf (path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ports[i]);
    if ((v = sysctl_read (n, path)) != 1 && has_ipv6 (n)) {
      error_setx ("isolation: ipv6: IPv6 is not disabled on the bridge port %s "
                  "(disable_ipv6=%ld)", ports[i], v);
      return -1;
    }
  }
  return 0;
}

/* 2b. bridge-address (after ipv6: IPv6 on gives it a link-local one) */
static int
check_bridge_address (const struct lab_net *n)
{
  char out[8192];

  if (runv (n, out, sizeof out, "ip", "-o", "addr", "show", "dev", n->bridge, NULL) != 0) {
    error_setx ("isolation: bridge-address: ip addr show dev %s: %s", n->bridge, out);
    return -1;
  }
  if (strstr (out, " inet ") || strstr (out, " inet6 ")) {
    error_setx ("isolation: bridge-address: the bridge %s has an address (%s); "
                "a lab bridge must have none", n->bridge, out);
    return -1;
  }
  return 0;
}

/* 3. arp */
static int
check_arp (const struct lab_net *n)
{
  char path[256];
  long v;

  snprintf (path, sizeof path, "/proc/sys/net/ipv4/conf/%s/arp_ignore", n->bridge);
  if ((v = sysctl_read (n, path)) != 8) {
    error_setx ("isolation: arp: arp_ignore on %s is %ld, not 8: the host could "
                "answer the lab's ARP", n->bridge, v);
    return -1;
  }
  return 0;
}

/* 4. input-drop, forward-drop */
static int
check_drop_rules (const struct lab_net *n)
{
  char why[1024], path[256];
  long v;
  int i;

  if (check_rule (n, 0, why, sizeof why) == -1) {
    error_setx ("isolation: input-drop: %s", why);
    return -1;
  }
  for (i = 1; i < 3; i++)
    if (check_rule (n, i, why, sizeof why) == -1) {
      error_setx ("isolation: forward-drop: %s", why);
      return -1;
    }
  snprintf (path, sizeof path, "/proc/sys/net/ipv4/conf/%s/forwarding", n->bridge);
  if ((v = sysctl_read (n, path)) != 0) {
    error_setx ("isolation: forward-drop: forwarding is %ld on %s, not 0", v,
                n->bridge);
    return -1;
  }
  return 0;
}

/* 4. notrack: the bridge's traffic is exempt from the host's connection
 * tracking (rules 4 and 5).  That they are there is checked, not what
 * comes before them: a rule that skips them costs the host's table
 * entries, not isolation. */
static int
check_notrack (const struct lab_net *n)
{
  char out[1024], mine[160];
  int i;

  for (i = RULE_NOTRACK; i < NRULES; i++) {
    if (i > RULE_NOTRACK && !has_ipv6 (n))
      continue;
    if (rule_op (n, "-C", i, out, sizeof out) != 0) {
      rule_text (n, i, mine, sizeof mine);
      error_setx ("isolation: notrack: no rule '%s' in %s's raw table: the host "
                  "would track the lab's connections in its own table, which "
                  "guests could fill", mine, rule_prog (i));
      return -1;
    }
  }
  return 0;
}

/* 5. uplink */
static int
check_uplink (const struct lab_net *n, char *const *ports, char *const *allowed)
{
  size_t i, j;

  for (i = 0; ports[i]; i++) {
    bool ok = strcmp (ports[i], n->veth_host) == 0;
    for (j = 0; !ok && allowed && allowed[j]; j++)
      ok = strcmp (ports[i], allowed[j]) == 0;
    if (!ok) {
      error_setx ("isolation: uplink: %s is a port of the lab bridge %s but "
                  "neither the lab's veth nor one of its VMs", ports[i], n->bridge);
      return -1;
    }
  }
  return 0;
}

/* 5. learning: no port learns MAC addresses (port_no_learning). */
static int
check_learning (const struct lab_net *n, char *const *ports)
{
  char path[256];
  long v;
  size_t i;

  for (i = 0; ports[i]; i++) {
    snprintf (path, sizeof path, "/sys/class/net/%s/brif/%s/learning", n->bridge,
              ports[i]);
    if ((v = sysctl_read (n, path)) != 0) {
      error_setx ("isolation: learning: the bridge %s learns the MAC addresses its "
                  "port %s receives from (learning=%ld): a guest sending from ever "
                  "new ones would grow the host's forwarding table without bound",
                  n->bridge, ports[i], v);
      return -1;
    }
  }
  return 0;
}

/* 6. namespace, first part: it exists and has lo and eth0 only. */
static int
check_namespace_links (const struct lab_net *n)
{
  char out[8192];
  char *line, *save = NULL;
  int nlinks = 0;

  if (!netns_exists (n)) {
    error_setx ("isolation: namespace: %s does not exist", n->netns);
    return -1;
  }
  if (runv (n, out, sizeof out, "ip", "-n", n->netns, "-o", "link", "show", NULL) != 0) {
    error_setx ("isolation: namespace: ip -n %s link show: %s", n->netns, out);
    return -1;
  }
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char name[64];
    char *at;
    if (sscanf (line, "%*d: %63[^:]", name) != 1)
      continue;
    if ((at = strchr (name, '@')))
      *at = '\0';
    nlinks++;
    if (strcmp (name, "lo") != 0 && strcmp (name, "eth0") != 0) {
      error_setx ("isolation: namespace: %s has an interface %s besides lo "
                  "and eth0", n->netns, name);
      return -1;
    }
  }
  if (nlinks != 2) {
    error_setx ("isolation: namespace: %s should have exactly lo and eth0", n->netns);
    return -1;
  }
  return 0;
}

/* 6. namespace: eth0 holds the gateway (and DNS) address. */
static int
check_namespace_addresses (const struct lab_net *n)
{
  char out[8192];
  char *line, *save = NULL;
  bool has_gw = false, has_dns = !n->dns[0];

  if (runv (n, out, sizeof out, "ip", "-n", n->netns, "-o", "-4", "addr", "show",
            "dev", "eth0", NULL) != 0) {
    error_setx ("isolation: namespace: ip addr: %s", out);
    return -1;
  }
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char addr[64];
    char *slash;
    if (sscanf (line, "%*d: %*s inet %63s", addr) != 1)
      continue;
    if ((slash = strchr (addr, '/')))
      *slash = '\0';
    if (strcmp (addr, n->gateway) == 0)
      has_gw = true;
    if (n->dns[0] && strcmp (addr, n->dns) == 0)
      has_dns = true;
  }
  if (!has_gw || !has_dns) {
    error_setx ("isolation: namespace: %s does not hold the gateway%s address",
                n->netns, has_gw ? " (dns)" : "");
    return -1;
  }
  return 0;
}

/* 6. namespace: it does not forward (read inside it). */
static int
check_namespace_forwarding (const struct lab_net *n)
{
  char out[8192];
  char *argv[] = { "cat", "/proc/sys/net/ipv4/ip_forward",
                   "/proc/sys/net/ipv4/conf/all/forwarding", NULL };

  if (lab_net_run (n, argv, NULL, 10, out, sizeof out) != 0) {
    error_setx ("isolation: namespace: cannot read ip_forward: %s", out);
    return -1;
  }
  if (strcmp (out, "0\n0") != 0) {
    error_setx ("isolation: namespace: %s forwards packets (ip_forward "
                "%s)", n->netns, out);
    return -1;
  }
  return 0;
}

/* 6. namespace: no route but its subnet, in any table. */
static int
check_namespace_routes (const struct lab_net *n)
{
  char out[8192];
  char *line, *save = NULL;

  if (runv (n, out, sizeof out, "ip", "-n", n->netns, "-4", "route", "show",
            "table", "all", NULL) != 0) {
    error_setx ("isolation: namespace: ip route: %s", out);
    return -1;
  }
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char dst[64];
    char *slash;
    if (strncmp (line, "local ", 6) == 0 || strncmp (line, "broadcast ", 10) == 0)
      continue;                      /* the local table: own addresses */
    if (sscanf (line, "%63s", dst) != 1)
      continue;
    if ((slash = strchr (dst, '/')))
      *slash = '\0';
    if (strcmp (dst, "default") == 0 ||
        !lab_ipv4_in_subnet (dst, n->subnet, n->prefix) ||
        strstr (line, " via ")) {
      error_setx ("isolation: namespace: %s has a route out of the lab "
                  "subnet: %s", n->netns, line);
      return -1;
    }
  }
  return 0;
}

/* 6. namespace */
static int
check_namespace (const struct lab_net *n)
{
  if (check_namespace_links (n) == -1 ||
      check_namespace_addresses (n) == -1 ||
      check_namespace_forwarding (n) == -1 ||
      check_namespace_routes (n) == -1)
    return -1;
  return 0;
}

/* 7. listeners: no TCP socket in state LISTEN (0A) in the namespace's
 * /proc/net/tcp and tcp6 (read inside it). */
static int
check_listeners (const struct lab_net *n)
{
  char out[16384];
  char *argv[] = { "sh", "-c", "cat /proc/net/tcp; cat /proc/net/tcp6 2>/dev/null; true",
                   NULL };
  char *line, *save = NULL;

  if (lab_net_run (n, argv, NULL, 10, out, sizeof out) != 0) {
    error_setx ("isolation: listeners: cannot read /proc/net/tcp in %s: %s",
                n->netns, out);
    return -1;
  }
  for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
    char local[64], st[8];
    if (sscanf (line, " %*[0-9]: %63s %*s %7s", local, st) == 2 &&
        strcmp (st, "0A") == 0) {
      error_setx ("isolation: listeners: a socket listens in the namespace %s "
                  "(%s, /proc/net/tcp): the lab could reach it", n->netns, local);
      return -1;
    }
  }
  return 0;
}

int
lab_net_check (const struct lab_net *n, char *const *allowed)
{
  CLEANUP_STRV char **ports = NULL;

  /* 1. host-address */
  if (check_host_addresses (n) == -1)
    return -1;
  if (!iface_exists (n, n->bridge)) {
    error_setx ("isolation: bridge %s does not exist", n->bridge);
    return -1;
  }
  ports = bridge_ports (n);
  if (check_ipv6 (n, ports) == -1 ||                 /* 2a. */
      check_bridge_address (n) == -1 ||              /* 2b. */
      check_arp (n) == -1 ||                         /* 3. */
      check_drop_rules (n) == -1 ||                  /* 4. */
      check_notrack (n) == -1 ||
      check_uplink (n, ports, allowed) == -1 ||      /* 5. */
      check_learning (n, ports) == -1 ||
      check_namespace (n) == -1 ||                   /* 6. */
      check_listeners (n) == -1)                     /* 7. */
    return -1;
  return 0;
}

/* lab_net_create, step 1: the namespace, and the bridge, hardened before
 * it comes up (no IPv6: no link-local address, no router solicitation; no
 * ARP answers; no forwarding), with its iptables rules. */
static int
create_bridge (const struct lab_net *n)
{
  char path[256];
  size_t i;

  if (RUN (n, "ip", "netns", "add", n->netns) == -1)
    return -1;
  if (RUN (n, "ip", "link", "add", n->bridge, "type", "bridge", "stp_state", "0") == -1)
    return -1;
  if (lab_net_port_harden (n, n->bridge) == -1)
    return -1;
  snprintf (path, sizeof path, "/proc/sys/net/ipv4/conf/%s/arp_ignore", n->bridge);
  if (sysctl_write (n, path, "8") == -1)
    return -1;
  snprintf (path, sizeof path, "/proc/sys/net/ipv4/conf/%s/forwarding", n->bridge);
  if (sysctl_write (n, path, "0") == -1)
    return -1;
  for (i = 0; i < NRULES; i++) {
    char out[1024];
    int st;
    if (i > RULE_NOTRACK && !has_ipv6 (n))
      continue;
    if ((st = rule_op (n, "-I", i, out, sizeof out)) != 0) {
      if (st > 0)
        error_setx ("%s -I: %s", rule_prog (i), out);
      return -1;
    }
  }
  return 0;
}

/* Step 2: the veth pair, one end a port of the bridge, the other in the
 * namespace. */
static int
create_veth (const struct lab_net *n)
{
  if (RUN (n, "ip", "link", "add", n->veth_host, "type", "veth", "peer", "name",
           n->veth_ns, "netns", n->netns) == -1)
    return -1;
  if (RUN (n, "ip", "link", "set", n->veth_host, "master", n->bridge) == -1 ||
      lab_net_port_harden (n, n->veth_host) == -1 ||
      RUN (n, "ip", "link", "set", n->veth_host, "up") == -1)
    return -1;
  return 0;
}

/* Step 3, inside: IPv6 off, no forwarding, quick ARP retries; lo up, eth0
 * with the gateway (and DNS) address. */
static int
setup_namespace (const struct lab_net *n)
{
  char *argv[] = { "sh", "-c",
                   "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null;"
                   "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null;"
                   "echo 0 > /proc/sys/net/ipv4/ip_forward;"
                   /* Re-ask ARP every 100 ms, not every second, for a
                    * guest that is not up yet: its first answer is seen
                    * at once instead of up to a second late. */
                   "for f in /proc/sys/net/ipv4/neigh/*/retrans_time_ms; do"
                   " echo 100 > $f; done", NULL };
  char out[512], cidr[40];

  if (lab_net_run (n, argv, NULL, 10, out, sizeof out) != 0) {
    error_setx ("lab namespace %s: sysctl: %s", n->netns, out);
    return -1;
  }
  if (RUN (n, "ip", "-n", n->netns, "link", "set", "lo", "up") == -1 ||
      RUN (n, "ip", "-n", n->netns, "link", "set", n->veth_ns, "name", "eth0") == -1)
    return -1;
  snprintf (cidr, sizeof cidr, "%s/%d", n->gateway, n->prefix);
  if (RUN (n, "ip", "-n", n->netns, "addr", "add", cidr, "dev", "eth0") == -1)
    return -1;
  if (n->dns[0]) {
    snprintf (cidr, sizeof cidr, "%s/%d", n->dns, n->prefix);
    if (RUN (n, "ip", "-n", n->netns, "addr", "add", cidr, "dev", "eth0") == -1)
      return -1;
  }
  if (RUN (n, "ip", "-n", n->netns, "link", "set", "eth0", "up") == -1)
    return -1;
  return 0;
}

int
lab_net_create (const struct lab_net *n)
{
  if (!n->subnet[0] || !n->gateway[0]) {
    error_setx ("lab network %s: no subnet or gateway", n->id);
    return -1;
  }
  if (check_host_addresses (n) == -1)
    return -1;
  if (iface_exists (n, n->bridge) || netns_exists (n)) {
    error_setx ("lab network %s exists already", n->id);
    return -1;
  }
  if (create_bridge (n) == -1 || create_veth (n) == -1 ||
      setup_namespace (n) == -1 ||
      RUN (n, "ip", "link", "set", n->bridge, "up") == -1) {
    ERROR_SAVE (e);
    lab_net_destroy (n);
    ERROR_RESTORE (e);
    error_prefix ("lab network %s", n->id);
    return -1;
  }
  return 0;
}

bool
lab_net_exists (const struct lab_net *n)
{
  char out[256];
  size_t i;

  if (iface_exists (n, n->bridge) || iface_exists (n, n->veth_host) || netns_exists (n))
    return true;
  for (i = 0; i < NRULES; i++)
    if (rule_op (n, "-C", i, out, sizeof out) == 0)
      return true;
  return false;
}

int
lab_net_destroy (const struct lab_net *n)
{
  char out[256];
  size_t i;
  int k;

  if (iface_exists (n, n->veth_host))
    runv (n, out, sizeof out, "ip", "link", "del", n->veth_host, NULL);
  if (iface_exists (n, n->bridge))
    runv (n, out, sizeof out, "ip", "link", "del", n->bridge, NULL);
  for (i = 0; i < NRULES; i++)
    for (k = 0; k < 16; k++)
      if (rule_op (n, "-D", (int) i, out, sizeof out) != 0)
        break;
  if (netns_exists (n))
    runv (n, out, sizeof out, "ip", "netns", "del", n->netns, NULL);
  if (lab_net_exists (n)) {
    error_setx ("lab network %s: could not remove all of it (bridge %s, "
                "namespace %s)", n->id, n->bridge, n->netns);
    return -1;
  }
  return 0;
}

/* ---- doing things inside the namespace --------------------------------- */

static int
open_netns (const struct lab_net *n)
{
  CLEANUP_FREE char *p = xasprintf ("/run/netns/%s", n->netns);
  int fd = open (p, O_RDONLY | O_CLOEXEC);

  if (fd == -1)
    error_set (errno, "open %s", p);
  return fd;
}

struct sock_req {
  int nsfd, domain, type, proto;
  int fd, err;
};

static void *
sock_thread (void *arg)
{
  struct sock_req *r = arg;

  if (setns (r->nsfd, CLONE_NEWNET) == -1) {
    r->err = errno;
    return NULL;
  }
  r->fd = socket (r->domain, r->type | SOCK_CLOEXEC, r->proto);
  if (r->fd == -1)
    r->err = errno;
  return NULL;
}

int
lab_net_socket (const struct lab_net *n, int domain, int type, int proto)
{
  struct sock_req r = { .domain = domain, .type = type, .proto = proto, .fd = -1 };
  pthread_t t;
  int e;

  if (lab_host_remote (n->host)) {
    error_setx ("a socket in the namespace of a lab on host %s: not from here",
                n->host->name);
    return -1;
  }
  r.nsfd = open_netns (n);
  if (r.nsfd == -1)
    return -1;
  /* A thread of its own: setns changes only the calling thread, and the
   * socket stays in the namespace it was made in after the thread ends. */
  if ((e = pthread_create (&t, NULL, sock_thread, &r)) != 0) {
    close (r.nsfd);
    error_set (e, "pthread_create");
    return -1;
  }
  pthread_join (t, NULL);
  close (r.nsfd);
  if (r.fd == -1)
    error_set (r.err, "socket in namespace %s", n->netns);
  return r.fd;
}

/* A program lab_net_run started in the namespace: what its steps share. */
struct ns_child {
  pid_t pid;                 /* its own process group */
  int fd;                    /* read end of its stdout and stderr */
  double deadline;           /* now_monotonic () when it is killed */
  bool timed_out;
};

/* In the child: argv with envp (no secrets), stdin /dev/null, output
 * to out_fd, in a process group of its own: ssh running argv on the
 * lab's host (remote_argv), or, once in the namespace, the command
 * itself (exec_in_netns). */
static void __attribute__((noreturn))
exec_child (int out_fd, char *const argv[], char *const envp[])
{
  int devnull = open ("/dev/null", O_RDONLY);

  setpgid (0, 0);
  if (devnull >= 0)
    dup2 (devnull, 0);
  dup2 (out_fd, 1);
  dup2 (out_fd, 2);
  signal (SIGINT, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGHUP, SIG_DFL);
  execvpe (argv[0], argv, envp);
  _exit (127);
}

/* In the child: enter the namespace, output into the pipe, exec. */
static void __attribute__((noreturn))
exec_in_netns (const struct lab_net *n, int nsfd, int out_fd,
               char *const argv[], char *const envp[])
{
  if (setns (nsfd, CLONE_NEWNET) == -1) {
    child_say (out_fd, "setns", n->netns, errno);
    _exit (126);
  }
  exec_child (out_fd, argv, envp);
}

/* What runs argv in the namespace on another host: timeout (so that it
 * ends there too), ip netns exec NS, env K=V... (the extra env only),
 * argv; every word quoted by lab_host_argv. */
static char **
remote_argv (const struct lab_net *n, char *const argv[], char *const env[],
             double timeout)
{
  CLEANUP_STRV char **v = xcalloc (1, sizeof *v);
  size_t k = 0, i;

  strv_pushl (&v, &k, "timeout", "-k", "2", NULL);
  strv_push (&v, &k, xasprintf ("%d", (int) timeout + 1));
  strv_pushl (&v, &k, "ip", "netns", "exec", n->netns, "env", "--", NULL);
  for (i = 0; env && env[i]; i++)
    strv_pushl (&v, &k, env[i], NULL);
  if (env && env[0])          /* env K=V -- CMD runs "--": a second env */
    strv_pushl (&v, &k, "env", "--", NULL);
  for (i = 0; argv[i]; i++)
    strv_pushl (&v, &k, argv[i], NULL);
  return lab_host_argv (n->host, v);
}

/* Read the child's output (up to len-1 bytes into out, the rest read and
 * dropped) until it closes it or the deadline passes; out is
 * NUL-terminated without trailing newlines and blanks. */
static void
read_output (struct ns_child *c, char *out, size_t len)
{
  size_t got = 0;

  for (;;) {
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    double left = c->deadline - now_monotonic ();
    char buf[4096];
    ssize_t r;
    if (left <= 0) {
      c->timed_out = true;
      break;
    }
    r = poll (&p, 1, left > 0.2 ? 200 : (int) (left * 1000) + 1);
    if (r == -1 && errno != EINTR)
      break;
    if (r <= 0)
      continue;
    r = read (c->fd, buf, sizeof buf);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    if (out && got + 1 < len) {
      size_t m = MIN ((size_t) r, len - 1 - got);
      memcpy (out + got, buf, m);
      got += m;
    }
  }
  if (out && len) {
    out[got] = '\0';
    while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == ' '))
      out[--got] = '\0';
  }
}

/* Reap the child, killing its process group at the deadline: the program
 * may linger after closing its output.  Its exit status as lab_net_run
 * returns it, or -1 (error set). */
static int
wait_child (struct ns_child *c)
{
  int status;

  if (c->timed_out)
    kill (-c->pid, SIGKILL);
  for (;;) {
    pid_t w = waitpid (c->pid, &status, WNOHANG);
    if (w == c->pid)
      break;
    if (w == -1 && errno != EINTR) {
      error_set (errno, "waitpid");
      return -1;
    }
    if (now_monotonic () > c->deadline && !c->timed_out) {
      c->timed_out = true;
      kill (-c->pid, SIGKILL);
    }
    usleep (10000);
  }
  if (c->timed_out)
    return 124;
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
}

/* lab_net_run on another host: ssh in place of setns.  An ssh that could
 * not reach the host (255) is an error naming it. */
static int
run_remote (const struct lab_net *n, struct ns_child *c, char *const argv[],
            char *const env[], double timeout, char *out, size_t len)
{
  CLEANUP_STRV char **v = remote_argv (n, argv, env, timeout);
  CLEANUP_FREE char **envp = env_without_secrets (NULL);
  int pfd[2], st;

  c->deadline += 15;          /* ssh's own time to connect and end */
  c->pid = fork_with_pipe (pfd);
  if (c->pid == -1)
    return -1;
  if (c->pid == 0)
    exec_child (pfd[1], v, envp);
  close (pfd[1]);
  c->fd = pfd[0];
  read_output (c, out, len);
  close (c->fd);
  st = wait_child (c);
  if (st == 255) {
    error_setx ("could not verify: host %s does not answer over ssh (%s): %s",
                n->host->name, n->host->ssh, out && out[0] ? out : "ssh failed");
    return -1;
  }
  return st;
}

int
lab_net_run (const struct lab_net *n, char *const argv[], char *const env[],
             double timeout, char *out, size_t len)
{
  struct ns_child c = { .deadline = now_monotonic () + timeout };
  CLEANUP_FREE char **envp = NULL;
  int pfd[2], nsfd;

  if (out && len)
    out[0] = '\0';
  if (lab_host_remote (n->host))
    return run_remote (n, &c, argv, env, timeout, out, len);
  envp = env_without_secrets (env);
  nsfd = open_netns (n);
  if (nsfd == -1)
    return -1;
  c.pid = fork_with_pipe (pfd);
  if (c.pid == -1) {
    close (nsfd);
    return -1;
  }
  if (c.pid == 0)
    exec_in_netns (n, nsfd, pfd[1], argv, envp);
  close (nsfd);
  close (pfd[1]);
  c.fd = pfd[0];
  read_output (&c, out, len);
  close (c.fd);
  return wait_child (&c);
}
