/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lab: the verification lab (docs/design.md, "Lab network", "Verification").
 *
 *   conf.c        the lab definition: YAML (libfyaml) -> struct lab_def,
 *                 validated, every error with its line; or built as data
 *                 under the same rules.  Pure.
 *   quick.c       the definition of a quick verification (bootback
 *                 verify): the options and the restore point's own
 *                 <bb:verify>, whose checks may only act on the guest.
 *                 Pure.
 *   domain-xml.c  the libvirt domain XML of a lab VM booted from a disk
 *                 image, reading a running domain's taps, and the check of
 *                 a VM's final XML before it starts.  Pure.
 *   hostcmd.c     running a lab's commands on its host: here as they
 *                 are, on another hypervisor host through ssh (one
 *                 multiplexed connection, every word quoted).
 *   net.c         the isolated network: bridge (no uplink, no host address,
 *                 no forwarding) + a network namespace holding the
 *                 production gateway address, joined by a veth pair; the
 *                 fail-closed isolation checks; teardown.
 *   vm.c          booting a lab VM (throwaway qcow2 overlay on an image,
 *                 or an instant-recovery session of a restore point) and
 *                 destroying it.
 *   state.c       runs and sandboxes on disk ($BOOTBACK_HOME/labs/ID/):
 *                 owner, lease, memory; the memory budget; teardown of a
 *                 run from its state alone (lab down, lab reap, signals).
 *   publish.c     published ports of a sandbox: host ADDR:PORT relayed to
 *                 one VM's port inside the lab namespace by a small relay
 *                 process (lab up --publish, publish: in a definition).
 *   guest.c       into and out of a sandbox's VMs through the guest agent
 *                 (exec, file copies) and the serial console.
 *   sandbox.c     a sandbox's checkpoints (internal snapshots of the
 *                 overlays), reset, lease.
 *
 * Errors: -1 / NULL and the thread-local last error (util.h).  Findings
 * (an isolation property that does not hold) are reported as errors too:
 * the lab must not start.
 */
#ifndef BOOTBACK_LAB_H
#define BOOTBACK_LAB_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <libvirt/libvirt.h>

/* ---- definition (conf.c, quick.c) -------------------------------------- */

struct lab_verify_hints;

enum lab_check_kind {
  LAB_CHECK_HEARTBEAT,    /* guest agent answers guest-ping */
  LAB_CHECK_PING,         /* ICMP echo from the lab namespace */
  LAB_CHECK_TCP,          /* TCP connect to port */
  LAB_CHECK_HTTP,         /* GET url, expect status, body contains text */
  LAB_CHECK_SCRIPT,       /* program run in the lab namespace */
  LAB_CHECK_GUEST_EXEC,   /* shell command run in the guest by the agent */
  LAB_CHECK_SCREENSHOT,   /* console picture kept in the report */
  LAB_CHECK_SCAN,         /* the point's malware scan (bootback scan) */
};

struct lab_check {
  enum lab_check_kind kind;
  char *name;             /* display name, e.g. "http http://{address}/" */
  int port;               /* tcp */
  char *url;              /* http; may contain {address} */
  int expect;             /* http: expected status (default 200) */
  char *contains;         /* http: text the body must contain, or NULL */
  char **argv;            /* script: program and arguments (NULL-ended) */
  char *command;          /* guest-exec: /bin/sh -c command */
  char *rules;            /* scan: YARA rules file, or NULL */
  char *signatures;       /* scan: signature directory, or NULL (the
                             default, $BOOTBACK_HOME/scan/) */
  double timeout;         /* seconds per attempt */
  int retries;            /* attempts after the first failure */
  double interval;        /* seconds between attempts */
  int line;
};

/* A check a restore point asked for that the lab refused: never run,
 * reported as a failed check. */
struct lab_refusal {
  char *check;            /* as asked for (printable, shortened) */
  char *why;
};

struct lab_vm {
  char *name;             /* the VM (restore points of this name) */
  char *point;            /* "latest" or a point time stamp */
  char *image;            /* or: boot this disk image (absolute path) */
  char *image_format;     /* "raw", "qcow2", ... (default raw) */
  char *address;          /* production IPv4 address, or NULL (ask agent) */
  char *mac;              /* NIC MAC for image VMs, or NULL (derived) */
  uint64_t memory_mib;    /* memory cap; 0 = the point's own (image: 256) */
  int vcpus;              /* 0 = 1 */
  double boot_timeout;    /* seconds until the guest must answer */
  double stall_timeout;   /* a boot that neither writes its console nor
                             reads its disks this long has failed; 0 = no
                             such limit */
  double reread_timeout;  /* a boot that keeps reading only what it read
                             before (a wait loop), with no console output,
                             this long has failed; 0 = no such limit */
  double delay;           /* seconds to wait after it answered */
  double rto;             /* recovery time objective: seconds from its
                             start to application ready at most; 0 = none */
  double rpo;             /* recovery point objective: its newest restore
                             point is younger than this at run time; 0 =
                             none (always 0 for an image VM) */
  struct lab_check *checks;
  size_t nchecks;
  struct lab_refusal *refused;  /* lab_vm_refuse */
  size_t nrefused;
  const char *group;      /* name of its group (points into lab_def) */
  int line;
};

struct lab_group {
  char *name;
  char *host;             /* host: a host of the catalog, or NULL (the lab's) */
  struct lab_vm *vms;
  size_t nvms;
  int line;
};

/* A console line that means the boot has failed: a fixed string, and the
 * reason in words.  lab_console_failures[] is the built-in table (NULL
 * text ends it); a lab definition adds its own (boot_failures:). */
struct lab_console_pattern {
  const char *text;
  const char *reason;
};

/* A published port: the host's addr:port relayed to the VM's address
 * (from the definition, never from the guest or a restore point) and
 * vm_port, inside the lab namespace (publish.c). */
struct lab_publish {
  char addr[16];          /* host IPv4 address the relay listens on */
  int port;
  char *vm;               /* a VM of the lab */
  int vm_port;
  int line;               /* in the definition; 0: the command line */
};

struct lab_def {
  char *file;             /* where it was read from ("-" for a string) */
  char *name;             /* the lab's name */
  char *subnet;           /* network address, e.g. "10.77.0.0" */
  int prefix;             /* e.g. 24 */
  char *gateway;          /* held by the lab namespace, e.g. "10.77.0.1" */
  char *dns;              /* also held by the namespace, or NULL */
  struct lab_group *groups;  /* in boot order; "verify:" is the last */
  size_t ngroups;
  /* boot_failures: console lines that mean a boot failed, beyond the
   * built-in ones (lab_console_failures; strings owned) */
  struct lab_console_pattern *boot_failures;
  size_t nboot_failures;
  /* publish: host ports relayed to VMs of a sandbox (lab up) */
  struct lab_publish *publish;
  size_t npublish;
  /* host: the catalog host (bootback host add) the lab runs on, or NULL
   * (this host, unless --host); groups may say it again, never another */
  char *host;
};

/* Parse and validate a lab definition.  On success returns the definition
 * (lab_def_free).  On failure returns NULL; if errors is not NULL it gets
 * a malloc'd text with every problem found, one per line, as
 * "FILE:LINE: message" (the last error is set to the first of them). */
struct lab_def *lab_def_read_file (const char *path, char **errors);
/* Same from a string (name is used in messages). */
struct lab_def *lab_def_read_string (const char *yaml, const char *name,
                                     char **errors);
void lab_def_free (struct lab_def *d);
/* The host d runs on: its groups' host:, else its own; NULL: this host. */
const char *lab_def_host (const struct lab_def *d);
/* Whether d has a VM booted from a restore point (not an image:): a
 * repository is needed to run it. */
bool lab_def_needs_repo (const struct lab_def *d);
/* Parse a duration: "90", "90s", "500ms", "2m", "4h", "1d" -> seconds,
 * at most LAB_DURATION_MAX (10 years).  -1 on error (error set). */
#define LAB_DURATION_MAX (10 * 366 * 86400.0)
double lab_parse_duration (const char *s);
/* Total memory in MiB of every VM of the lab: its memory: cap, else 256
 * for an image VM (what it gets) and default_mib for a restore point. */
uint64_t lab_def_memory_mib (const struct lab_def *d, uint64_t default_mib);
/* What a VM without memory: reserves of the budget, and so the most a
 * restore point's saved definition gets in a lab. */
#define LAB_VM_MEMORY_MIB 1024
/* Number of VMs. */
size_t lab_def_nvms (const struct lab_def *d);
/* Is ipv4 (dotted quad) inside subnet/prefix? */
bool lab_ipv4_in_subnet (const char *ip, const char *subnet, int prefix);
/* Does an http check's path (with its query and fragment) hold only RFC
 * 3986's unreserved and reserved characters and '%'?  (It reaches the
 * remote shell of a lab on another host as a quoted word: no quote,
 * backslash, blank or control character there.) */
bool lab_http_path_ok (const char *path);
/* A memory size as in a definition ("512" MiB, "1G"; 32M to 4T) -> MiB.
 * -1 on error (error set). */
int lab_parse_memory (const char *s, uint64_t *mib);
/* s for a message or a terminal: control characters escaped (\n, \xHH),
 * cut after max characters ("...").  Malloc'd. */
char *lab_printable (const char *s, size_t max);

/* A definition built as data (bootback verify), validated by the same
 * rules as a file.  Each call returns -1 or NULL with the error set to
 * the problem, naming the value, e.g. "subnet: '10.0.0.0/33' is not an
 * IPv4 ADDRESS/PREFIX with a prefix from 8 to 30"; nothing is changed
 * then.  file: what the definition is called in the lab's state. */
struct lab_def *lab_def_new (const char *name, const char *file);
/* network: subnet (ADDRESS/PREFIX) and gateway. */
int lab_def_set_subnet (struct lab_def *d, const char *subnet);
int lab_def_set_gateway (struct lab_def *d, const char *gateway);
/* A restore point VM (point: "latest" or a time stamp) in the verify
 * group, with the built-in defaults.  Valid until the next add. */
struct lab_vm *lab_def_add_vm (struct lab_def *d, const char *name,
                               const char *point);
int lab_vm_set_address (struct lab_vm *vm, const char *address);
/* Where a check comes from.  An administrator's file or command line may
 * ask for any check.  A restore point's domain XML is written by whoever
 * controls the guest: it may only ask for checks that act on the guest
 * (heartbeat, ping, tcp, http to the VM's own address, guest-exec,
 * screenshot), in printable text, never for a script (a host program). */
enum lab_origin { LAB_FROM_ADMIN, LAB_FROM_POINT };
/* Add a check written as in a definition ("tcp 22", "http URL expect
 * 200"), after the network and the VM's address are set.  Returns it
 * (valid until the next add) or NULL: then it is not added. */
struct lab_check *lab_vm_add_check (const struct lab_def *d, struct lab_vm *vm,
                                    const char *check, enum lab_origin from);
/* Record that the lab refused check (why): see struct lab_refusal. */
void lab_vm_refuse (struct lab_vm *vm, const char *check, const char *why);
/* Add a published port "[ADDR:]PORT=VM:PORT" (lab up --publish): its VM
 * must be in the lab with an address: and ADDR:PORT published once.
 * -1 with the error naming the value (nothing added). */
int lab_def_add_publish (struct lab_def *d, const char *spec);
/* The checks across the definition (the gateway a host address of the
 * subnet, every VM's address one too and not the gateway, ...). */
int lab_def_finish (struct lab_def *d);

/* The lab definition of a quick verification of one restore point
 * (bootback verify): heartbeat, ping (with an address), the checks of
 * the point's <bb:verify>, the administrator's checks, a screenshot.  The
 * administrator's values win over the point's; the address gives a /24
 * and its .1 as gateway unless they are given.  A point's check that is
 * not allowed (LAB_FROM_POINT) or not valid is refused (vm->refused), the
 * rest still run; any other problem fails it (NULL, error set, naming
 * the value and where it came from). */
struct lab_quick {
  const char *vm, *point;       /* the restore point */
  const char *address, *subnet, *gateway, *boot_timeout, *memory;
  char *const *checks;          /* NULL-ended or NULL */
  const struct lab_verify_hints *hints;  /* the point's, or NULL */
};
struct lab_def *lab_quick_def (const struct lab_quick *q);

/* ---- the lab's host (hostcmd.c) ----------------------------------------- */

/* Where a lab runs: this host (ssh "") or a host of the catalog, reached
 * with ssh for the network's commands and checks (bootback host add
 * --ssh).  Only the catalog fills it, never a definition or a point. */
struct lab_host {
  char name[72];          /* the catalog's name ("" for this host) */
  char ssh[300];          /* [USER@]HOST[:PORT], "" for this host */
  char ctl[64];           /* ssh's ControlPath directory while open */
};
bool lab_host_remote (const struct lab_host *h);
/* Check an ssh destination [USER@]HOST[:PORT] (user and host: letters,
 * digits, '.', '_', '-', not starting with '-'): [USER@]HOST into dest,
 * the port (0: none given) into *port.  -1 with the error naming it. */
int lab_ssh_dest_parse (const char *s, char *dest, size_t len, int *port);
/* w single-quoted for a POSIX shell (malloc'd). */
char *lab_shell_quote (const char *w);
/* The argv that runs argv on h: a copy (this host), or ssh with its
 * options, the destination and every word quoted (lab_shell_quote). */
char **lab_host_argv (const struct lab_host *h, char *const argv[]);
/* The argv of an interactive run of argv on remote host h (lab shell):
 * ssh with stdin, -t if tty (else -T), no master, the same options and
 * checked destination, every word quoted. */
char **lab_host_shell_argv (const struct lab_host *h, char *const argv[], bool tty);
/* Open h's ssh connection (the master; nothing for this host): -1 with
 * the error "could not verify: host NAME does not answer over ssh (DEST):
 * ..." (as for every command that ssh could not run, exit 255) */
int lab_host_open (struct lab_host *h);
/* Run argv on h (run_command): its exit status, or -1 with the error set
 * (for another host: ssh could not reach it, naming the host). */
int lab_host_run (const struct lab_host *h, char *const argv[], char *out, size_t len);
/* End h's ssh master (ssh -O exit) and remove its directory, if that
 * is ours (a directory, not a link, our uid, mode 0700); one that is not
 * (a killed run's state naming a path someone else made since) gets
 * neither. */
void lab_host_close (struct lab_host *h);
/* Is dir a control directory lab_host_open makes (/tmp/bootback-ssh.X)? */
bool lab_host_ctl_valid (const char *dir);

/* ---- network (net.c) --------------------------------------------------- */

/* Names of one lab network, derived from the run's short id (6 hex
 * digits): bridge bbl<id>br, veth bbl<id>h (host side, a bridge port) and
 * bbl<id>n (inside the namespace, renamed eth0), namespace bootback-lab-<id>. */
struct lab_net {
  char id[8];
  char bridge[16], veth_host[16], veth_ns[16];
  char netns[32];
  char gateway[16];
  int prefix;
  char subnet[16];
  char dns[16];           /* "" if none */
  const struct lab_host *host;  /* where it is (NULL: this host): every
                                   command and check of net.c runs there */
};

/* Can a rule, as iptables -S prints it (LINE), match a packet that came
 * in on IN and goes out on OUT (NULL: either side unknown)?  False only
 * when the line names another interface on that side ("-i X", "-i X+",
 * "! -i BR"): the rest of the rule is not looked at. */
bool lab_rule_may_match (const char *line, const char *in, const char *out);
/* Fill in the names for id and the addresses from d (no system change). */
void lab_net_init (struct lab_net *n, const char *id, const struct lab_def *d);
/* Create the network.  Refuses (-1) before creating anything if the host
 * holds an address in the lab subnet.  On failure, whatever was created
 * is removed again. Needs root, iproute2, iptables. */
int lab_net_create (const struct lab_net *n);
/* The fail-closed isolation checks.  allowed_ports: the bridge ports the
 * lab made besides its veth (the VMs' taps), NULL-terminated or NULL.
 * Returns 0 if every property holds, -1 with the error naming the first
 * property that does not (e.g. "isolation: arp: ...").  Properties:
 *   host-address    no interface outside the lab holds a lab-subnet address
 *   bridge-address  the bridge has no IPv4 or IPv6 address
 *   ipv6            IPv6 disabled on the bridge and all its ports
 *   arp             arp_ignore=8 on the bridge (the host answers no ARP)
 *   input-drop      iptables INPUT drops everything from the bridge, with
 *                   only DROP rules and rules that name another interface
 *                   (lab_rule_may_match) before it
 *   forward-drop    FORWARD drops what is routed to or from the bridge
 *                   (frames between its own ports pass), forwarding=0; the
 *                   same rules may come before
 *   uplink          the bridge's ports are the lab's veth and VM taps only
 *   namespace       the namespace has only lo and eth0, holds the gateway
 *                   address, does not forward, has no route but its subnet
 *   listeners       nothing listens for TCP in the namespace (a published
 *                   port's relay listens on the host only) */
int lab_net_check (const struct lab_net *n, char *const *allowed_ports);
/* Harden a new bridge port (a VM's tap) on n's host: IPv6 off (nothing
 * to do where the kernel has no IPv6). */
int lab_net_port_harden (const struct lab_net *n, const char *ifname);
/* Remove everything lab_net_create makes; idempotent, never fails on
 * what is already gone.  Returns -1 only if something could not be
 * removed (error set). */
int lab_net_destroy (const struct lab_net *n);
/* Does any of the network's pieces exist (bridge, veth, namespace, rule)? */
bool lab_net_exists (const struct lab_net *n);
/* An fd for a socket(domain, type, protocol) created inside the lab
 * namespace (a short-lived thread does setns and socket), or -1. */
int lab_net_socket (const struct lab_net *n, int domain, int type, int proto);
/* Run argv inside the namespace (fork, setns, exec) with extra env
 * ("K=V", NULL-ended, may be NULL); wait at most timeout seconds (then
 * SIGKILL).  Output (stdout+stderr, up to len-1 bytes) into out.
 * Returns the exit status, 124 on timeout, or -1 (error set). */
int lab_net_run (const struct lab_net *n, char *const argv[],
                 char *const env[], double timeout, char *out, size_t len);

/* ---- published ports (publish.c) -------------------------------------- */

/* Parse (conf.c) "[ADDR:]PORT=VM:PORT" into p (p->vm malloc'd).  ADDR is an IPv4
 * address (default 127.0.0.1; 0.0.0.0 only when written), ports 1-65535.
 * -1 with the error naming the value. */
int lab_publish_parse (const char *spec, struct lab_publish *p);
/* "ADDR:PORT=VM:PORT" into out. */
#define LAB_PUBLISH_LEN (16 + 6 + 1 + 64 + 6 + 1)
void lab_publish_format (const struct lab_publish *p, char *out, size_t len);
/* Most published ports of one lab, and connections a relay serves at once. */
#define LAB_PUBLISH_MAX 16
#define LAB_RELAY_CONNS 64
/* Listen on every published port of d (fds[i], close-on-exec), before the
 * lab is made: -1 with the error naming ADDR:PORT (e.g. in use), nothing
 * left open. */
int lab_publish_listen (const struct lab_def *d, int *fds);
void lab_publish_close (int *fds, size_t n);
struct lab_state;
/* Start the relay of sandbox s (network net, definition d) on the
 * listening fds (taken over, closed here): a daemon whose pid is written
 * into s's state before it does anything, that enters the lab namespace,
 * drops to nobody and copies each connection of fds[i] to d's VM's
 * address and port (nothing else, whatever it is sent).  It ends with
 * SIGTERM (lab down, lab reap) or when the run directory goes.  -1 with
 * the error set (no relay left). */
int lab_publish_start (struct lab_state *s, const struct lab_net *net,
                       const struct lab_def *d, int *fds);
/* Stop s's relay (by pid and start time); 0 also if there is none. */
int lab_publish_stop (struct lab_state *s);
/* Is s's relay running? */
bool lab_publish_alive (const struct lab_state *s);

/* ---- domain XML (domain-xml.c) ----------------------------------------- */

struct lab_domain_spec {
  const char *name;          /* libvirt domain name */
  const char *disk;          /* absolute path */
  const char *disk_format;   /* "qcow2" */
  const char *bridge;        /* lab bridge */
  const char *mac;
  uint64_t memory_mib;
  int vcpus;
  const char *serial_log;    /* absolute path or NULL */
};
/* A transient domain's XML (malloc'd) for an image VM: TCG, ACPI, virtio
 * disk and NIC on the bridge, serial to a file, guest agent channel, VNC
 * on a unix socket (for screenshots).  NULL on error. */
char *lab_domain_xml (const struct lab_domain_spec *s);
/* The tap names (target dev) and bridge sources of a domain's XML:
 * returns a NULL-terminated array of malloc'd "tap bridge type" triples
 * flattened as taps[i] = tap, bridges[i] = source (either may be ""),
 * types[i] = interface type.  Returns the count or -1. */
int lab_domain_interfaces (const char *xml, char ***taps, char ***bridges,
                           char ***types);
/* The fail-closed check of a lab VM's final XML before it starts: every
 * interface a bridge on the lab bridge, and, if allowed is not NULL,
 * nothing off the allow-list of instant recovery (instant_xml_check with
 * allowed's disks and console log).  -1 with the error naming VM name
 * and what is wrong. */
struct instant_xml_spec;
int lab_domain_check (const char *xml, const char *bridge, const char *name,
                      const struct instant_xml_spec *allowed);
/* What a VM's own definition says about verifying it: an element in the
 * domain XML's <metadata> (kept in every restore point),
 *   <bb:verify xmlns:bb="urn:bootback:verify:1">
 *     <address>10.77.0.10</address> <subnet>10.77.0.0/24</subnet>
 *     <gateway>10.77.0.1</gateway> <check>http http://{address}/</check>
 *   </bb:verify>
 * Returns 1 and fills h (lab_verify_hints_clear) if there is one, 0 if
 * not, -1 if the XML does not parse. */
#define LAB_VERIFY_XMLNS "urn:bootback:verify:1"
/* A lab VM is named like the VM of its restore points (VM_NAME_MAX); a
 * lab's name holds "verify-" and any VM name (bootback verify). */
#define LAB_NAME_MAX (VM_NAME_MAX + 8)
#define LAB_MAX_HINT_CHECKS 32
struct lab_verify_hints {
  char *address, *subnet, *gateway;      /* NULL if not given */
  char *checks[LAB_MAX_HINT_CHECKS];
  int nchecks;
};
int lab_domain_verify_hints (const char *xml, struct lab_verify_hints *h);
void lab_verify_hints_clear (struct lab_verify_hints *h);
/* A MAC derived from a name: 52:54:00:xx:xx:xx. */
void lab_mac_from_name (const char *name, char out[18]);

/* ---- VMs (vm.c) -------------------------------------------------------- */

struct lab_vm_handle;

/* Where the run keeps its files and how it reaches libvirt. */
struct lab_vm_env {
  virConnectPtr conn;
  const char *run_id;        /* short id */
  const char *run_dir;       /* overlays, console logs */
  const struct lab_net *net;
  const char *repo;          /* repository location (point VMs) */
  const char *home;          /* state directory (instant sessions) */
  /* This host's settings for the instant sessions of point VMs: their
   * domain_type, overlay_min_free and repo_open are used (the CLI reads
   * them from the environment); NULL: the defaults. */
  const struct instant_opts *instant;
  const char *uri;           /* libvirt URI or NULL (instant sessions) */
  bool allow_passthrough;    /* restore points keep their host-side
                                devices (instant_opts.allow_passthrough) */
  /* Each note of a restore point's rewrite (what the allow-list removed
   * or replaced); may be NULL.  Called from the thread starting the VM. */
  void (*note) (void *opaque, const char *line);
  void *note_opaque;
  /* Warnings of a cleanup that cannot fail (an instant session that would
   * not stop), one line without "bootback: "; NULL: they go to stderr as
   * "bootback: LINE".  Called from the thread destroying the VM. */
  void (*warn) (void *opaque, const char *line);
  void *warn_opaque;
};

/* Boot one lab VM on the lab bridge: the domain is named
 * "bbl-<run id>-<vm name>".  The overlay and console log go to run_dir.
 * Before the domain starts, its XML is checked: every interface must be a
 * bridge or network interface on the lab bridge (fail closed).  Returns a
 * handle (lab_vm_destroy) or NULL; then *point_fault says whether the
 * restore point itself was to blame (instant_session.point_fault), not the
 * lab or the host. */
struct lab_vm_handle *lab_vm_start (const struct lab_vm_env *env,
                                    const struct lab_vm *vm, bool *point_fault);
virDomainPtr lab_vm_domain (struct lab_vm_handle *h);
const char *lab_vm_domain_name (struct lab_vm_handle *h);
const char *lab_vm_serial_log (struct lab_vm_handle *h);
/* The first read error the restore point's server (the session's nbdkit)
 * logged, e.g. "read of 512 bytes at offset 0: chunk DIGEST: SHA-256
 * mismatch ... (VM@TIME disk vda bytes A-B)", malloc'd; NULL if none
 * (or an image VM).  What a failed boot is blamed on before the guest. */
char *lab_vm_read_error (struct lab_vm_handle *h);
/* How far the guest has got through its restore point: a number that
 * grows each time it reads a chunk for the first time (the sizes of its
 * disks' boot traces, which the session's nbdkit writes as it goes:
 * nbd-plugin/trace.c), and in *chunk_size (if larger) the chunk size; -1
 * if that cannot be told (an image VM, no trace yet, a trace that may
 * have stopped recording).  Re-reads of the same chunks do not count:
 * the reread-timeout of the boot wait (verify/run.c). */
int64_t lab_vm_first_reads (struct lab_vm_handle *h, uint32_t *chunk_size);
/* "vm@id" of the restore point a session booted, or NULL (image VMs). */
const char *lab_vm_source (struct lab_vm_handle *h);
/* Taps of the running domain (NULL-terminated, owned by the handle). */
char *const *lab_vm_taps (struct lab_vm_handle *h);
/* A restore point's session: keep its boot trace from the boot's start,
 * from_ago seconds ago, to app-ready, upto_ago seconds ago
 * (instant_trace_keep).  Nothing for image VMs; never fails. */
void lab_vm_keep_trace (struct lab_vm_handle *h, double from_ago, double upto_ago);
/* Free the handle but leave the VM running (a sandbox). NULL ok. */
void lab_vm_forget (struct lab_vm_handle *h);
/* Destroy the domain and remove its overlay; free the handle.  NULL ok. */
void lab_vm_destroy (struct lab_vm_handle *h);
/* Keep libvirt from printing its errors on stderr (we report them):
 * virt_init (recovery/virt/virt.h), which is what new code calls. */
void lab_virt_quiet (void);
/* Name prefix of every domain of a run: "bbl-<id>-". */
void lab_vm_prefix (const char *run_id, char out[32]);
/* Destroy every domain whose name starts with prefix (teardown from
 * state).  Returns the number destroyed, or -1. */
int lab_vm_destroy_prefix (virConnectPtr conn, const char *prefix);

/* ---- runs and sandboxes (state.c) -------------------------------------- */

/* Set by SIGINT/SIGTERM once lab_signals_install ran; long waits poll it. */
extern volatile sig_atomic_t lab_interrupted;
/* Install SIGINT/SIGTERM/SIGHUP handlers that set lab_interrupted. */
void lab_signals_install (void);
/* Sleep up to secs, returning early (-1) if interrupted. */
int lab_sleep (double secs);

struct lab_state {
  char id[8];                /* short id, 6 hex digits */
  char *dir;                 /* $home/labs/<id> */
  char *lab;                 /* lab name */
  char *file;                /* definition file */
  char *kind;                /* "run", "sandbox", "verify" */
  char *uri;                 /* libvirt URI ("" = default) */
  char *host, *ssh;          /* the catalog host and its ssh destination
                                of a lab on another host, else NULL/"" */
  char *ssh_ctl;             /* its run's ssh control directory ("" none):
                                teardown ends that master too */
  pid_t pid;                 /* owner process (run), 0 for sandboxes */
  unsigned long long pid_start;  /* its start time (/proc/PID/stat) */
  time_t created;
  time_t expires;            /* sandbox lease end; 0 = none */
  uint64_t memory_mib;       /* reserved in the memory budget */
  char *netns;               /* namespace name, for the user */
  char *report_dir;          /* where reports go, or NULL */
  char *status;              /* "starting", "running", "up", "down" */
  char **vms;                /* "name domain address" lines for lab list */
  uid_t owner_uid;           /* real uid of who made it */
  char *owner;               /* its user name (or the uid) */
  pid_t relay_pid;           /* published ports' relay (publish.c), 0 none */
  unsigned long long relay_start;
  char **published;          /* "ADDR:PORT=VM:PORT TARGET:PORT" lines */
};

/* Make a new run directory under home/labs with a fresh id and write its
 * state (owner = this process).  Waits (polling every second, giving up
 * after wait seconds; <0 = forever) until memory_mib fits in budget_mib
 * next to the live runs; refuses at once if it never can.  NULL on error
 * or interruption. */
struct lab_state_opts {
  const char *home, *lab, *file, *kind;
  const char *uri;           /* libvirt URI, NULL = default */
  const struct lab_host *host;  /* another host (its name and ssh kept), or NULL */
  uint64_t memory_mib, budget_mib;
  double wait;               /* seconds; < 0: forever */
  /* kind "sandbox": refuse when this many live sandboxes exist already
   * (0: no limit); checked under the budget lock */
  int max_sandboxes;
  /* "waiting for memory: ..." (once, when it has to wait), without
   * "bootback: "; NULL: to stderr as "bootback: LINE". */
  void (*note) (void *opaque, const char *line);
  void *note_opaque;
};
struct lab_state *lab_state_open (const struct lab_state_opts *o);
/* The same with the settings as arguments and no note callback (for the
 * callers that have not moved to lab_state_open). */
struct lab_state *lab_state_new (const char *home, const char *lab,
                                 const char *file, const char *kind,
                                 const char *uri, uint64_t memory_mib,
                                 uint64_t budget_mib, double wait);
/* Rewrite the state file (atomically). */
int lab_state_save (const struct lab_state *s);
/* Read one run's state (id) or NULL. */
struct lab_state *lab_state_load (const char *home, const char *id);
/* All runs, NULL-terminated array (lab_state_list_free). */
struct lab_state **lab_state_list (const char *home);
void lab_state_list_free (struct lab_state **v);
void lab_state_free (struct lab_state *s);
/* Is the run alive: a sandbox whose lease has not expired, or a run whose
 * owner process still exists?  Expired sandboxes and orphaned runs are
 * what lab reap removes. */
bool lab_state_alive (const struct lab_state *s, time_t now);
/* Tear a run down from its state alone: destroy its domains (by name
 * prefix, on its libvirt URI), instant sessions, network, overlays and
 * the run directory.  Idempotent.  -1 if something was left (error set,
 * without the lab's id: the caller names it). */
int lab_state_teardown (struct lab_state *s, virConnectPtr conn);
/* The host of s's lab (lab_host_remote false: this host). */
void lab_state_host (const struct lab_state *s, struct lab_host *h);
/* Add a VM line for lab list. */
void lab_state_add_vm (struct lab_state *s, const char *name,
                       const char *domain, const char *address);
/* Default memory budget: half of the host's MemTotal, in MiB. */
uint64_t lab_default_budget_mib (void);
/* Live sandboxes in home, and the memory they reserve (MiB). */
int lab_sandboxes_count (const char *home, uint64_t *memory_mib);

/* ---- sandboxes: into and out of the guests (guest.c) -------------------- */

/* What the guest sends back is bounded and checked (guest.c). */
struct lab_exec_opts {
  double timeout;            /* seconds the command may run */
  size_t max_output;         /* bytes kept of stdout and of stderr each */
};
struct lab_exec_result {
  int64_t pid;               /* the command's pid in the guest */
  bool exited;               /* false: still running after the timeout */
  int exit_code;             /* its exit status (if exited) */
  int signal;                /* the signal that ended it, 0 if none */
  unsigned char *out, *err;  /* its output (malloc'd, not NUL-ended) */
  size_t nout, nerr;
  bool out_truncated, err_truncated;   /* over max_output (or the agent's cap) */
};
/* What libvirt passes back of a command's output at most (its RPC
 * strings are 4 MiB; the agent sends base64): more fails the status. */
#define LAB_EXEC_OUTPUT_MAX (3 << 20)
/* Run argv (argv[0] an absolute path or a name the agent finds) in VM vm
 * (domain d) through the guest agent (guest-exec), polling
 * guest-exec-status until it ends or o->timeout passes (r->exited false:
 * the agent cannot stop it; it runs on in the guest).  0 with r filled
 * (lab_exec_result_clear), or -1 with the error naming the VM. */
int lab_guest_exec (virDomainPtr d, const char *vm, char *const argv[],
                    const struct lab_exec_opts *o, struct lab_exec_result *r);
void lab_exec_result_clear (struct lab_exec_result *r);

/* Files through the agent's file calls, with a progress line
 * (recovery/util progress): LAB_COPY_BLOCK bytes a read, and
 * LAB_COPY_WRITE_BLOCK a write (qemu-ga 7.2 never answered a command of
 * 256 KiB of data, 350 KB of JSON, here; 160 KiB worked). */
#define LAB_COPY_BLOCK (1 << 20)
#define LAB_COPY_WRITE_BLOCK (128 << 10)
struct lab_copy_opts {
  uint64_t max_size;         /* copy out: stop over this many bytes; 0: no cap
                                but the host file system's free space */
  mode_t mode;               /* copy out: the host file's mode (0: 0600) */
};
/* Copy the guest's file src (VM vm, domain d) to the host path dst (a
 * directory: dst/the last part of src), byte for byte: a temporary file
 * beside it (O_EXCL, O_NOFOLLOW, 0600) renamed over dst when complete;
 * nothing is left at dst on failure.  *bytes: how many were copied.  -1
 * with the error naming the VM and the path (e.g. "VM web: cannot open
 * /x in the guest: ... No such file or directory"). */
int lab_guest_copy_out (virDomainPtr d, const char *vm, const char *src, const char *dst,
                        const struct lab_copy_opts *o, uint64_t *bytes);
/* Copy the host's regular file src to the guest's path dst (created or
 * truncated by the agent).  -1 with the error set. */
int lab_guest_copy_in (virDomainPtr d, const char *vm, const char *src, const char *dst,
                       const struct lab_copy_opts *o, uint64_t *bytes);

/* The serial console of VM vm: bytes from in go to the guest, the
 * guest's to out, until the escape byte on in, the end of in (then
 * output is shown linger seconds more), the VM stopping, or
 * lab_interrupted.  A pty console is attached through libvirt (force:
 * taking it from another client); a console libvirt cannot attach (a
 * file: a restore point's serial port rewritten to its session's console
 * log) is followed read-only, input dropped, if the file lies in log_dir
 * (the state directory).  ready (may be NULL) is called once attached
 * (read_only, and why not attached).  -1 with the error naming the VM. */
struct lab_console_opts {
  int escape;                /* e.g. 0x1d (Ctrl-]); -1: none */
  double linger;
  bool force;
  void (*ready) (void *opaque, bool read_only, const char *why);
  void *opaque;
};
int lab_guest_console (virDomainPtr d, const char *vm, const char *log_dir, int in,
                       int out, const struct lab_console_opts *o);

/* ---- sandboxes: checkpoints, reset, lease (sandbox.c) -------------------- */

/* The lab id (6 hex digits), running (a sandbox in its lease, or a run
 * whose owner lives), and with sandbox_only a sandbox: its state, or NULL
 * with the error saying which of these it is not. */
struct lab_state *lab_sandbox_load (const char *home, const char *id, bool sandbox_only);
/* The running domain of VM vm of lab s (vm a valid name the lab lists),
 * or NULL with the error "lab ID has no VM NAME" / "... is not running". */
virDomainPtr lab_sandbox_domain (virConnectPtr conn, const struct lab_state *s,
                                 const char *vm);
#define LAB_CHECKPOINT_NAME_MAX 64
struct lab_checkpoint {
  char name[LAB_CHECKPOINT_NAME_MAX + 1];
  time_t created;
};
/* Save every VM of sandbox s (disks and memory: internal snapshots of
 * their qcow2 overlays, all VMs paused together) as checkpoint name
 * (name_is_valid, at most LAB_CHECKPOINT_NAME_MAX, new).  *secs: how long
 * it took.  -1 with the error set; then no VM keeps it. */
int lab_sandbox_checkpoint (virConnectPtr conn, const struct lab_state *s,
                            const char *name, double *secs);
/* The checkpoints of s, oldest first (*n of them; free()). */
struct lab_checkpoint *lab_sandbox_checkpoints (const struct lab_state *s, size_t *n);
/* Return every VM of s to checkpoint name (running on at once), or with
 * name NULL to the restore point or image itself: empty overlays, the VMs
 * booted again, every checkpoint gone, and the isolation checks run again
 * with the new taps (on a failure every VM is stopped).  Then wait up to
 * agent_timeout for every VM's guest agent.  *secs: the time to all
 * agents answering.  0; 1 if done but the isolation checks could not run
 * again (the lab's definition is gone; the error says so, each VM's own
 * checks held); -1 with the error naming the VM. */
int lab_sandbox_reset (virConnectPtr conn, const struct lab_state *s, const char *name,
                       double agent_timeout, double *secs);
/* The lease of sandbox s ends lease seconds from now (lab reap reads it
 * from the state): 0, or -1 with the error set. */
int lab_sandbox_extend (struct lab_state *s, double lease);

/* ---- boot activity (activity.c) ---------------------------------------- */

/* What a booting VM has shown of itself so far (lab_activity_poll). */
struct lab_activity {
  int64_t console;          /* the console log's size */
  int64_t reads;            /* read requests of its disks; -1 unknown */
  double console_changed;   /* when the console last grew (0: never polled) */
  double last;              /* when the console grew or the disks were read */
  int64_t first_reads;      /* lab_vm_first_reads at the last progress; -1 */
  uint32_t chunk_size;      /* of its restore point (0: unknown) */
  int64_t bytes;            /* read from its disks, at the last poll */
  int64_t progress_bytes;   /* ... at the last progress */
  double reread_from, reread_to;  /* the first and latest poll since the
                                     last progress that saw reads; 0: none */
};

void lab_activity_init (struct lab_activity *a);
/* One sample at time now (seconds, monotonic, > 0): the console log's
 * size, the disks' read requests and bytes (-1: unknown), the VM's
 * lab_vm_first_reads (-1: unknown) and its chunk size. */
void lab_activity_poll (struct lab_activity *a, double now, int64_t console,
                        int64_t reads, int64_t bytes, int64_t first_reads,
                        uint32_t chunk_size);
/* reread-timeout: the seconds the guest has spent re-reading only what it
 * read before (more than a chunk of it) with no console output, if that
 * reached timeout; else 0. */
double lab_activity_rereading (const struct lab_activity *a, double timeout);

/* ---- console (console.c) ------------------------------------------------ */

extern const struct lab_console_pattern lab_console_failures[];

/* Watch the console log at path (it may not exist yet) for the patterns
 * of the table and extra[0..nextra) (checked first; kept by the caller). */
struct lab_console_watch;
/* A remote VM's console copy (vm.c): what recv (a libvirt stream's
 * virStreamRecv: bytes, -2 for none yet, 0 at its end, -1 an error) brings
 * is written to fd until *stop or its end, at most max bytes; past them
 * the stream is still drained.  The bytes written. */
uint64_t lab_console_copy_loop (int (*recv) (void *opaque, char *buf, size_t len),
                                void *opaque, int fd, volatile bool *stop,
                                uint64_t max);
struct lab_console_watch *lab_console_watch_new (const char *path,
                                                 const struct lab_console_pattern *extra,
                                                 size_t nextra);
/* Read what the log gained: 1 if a failure showed (*reason: its words,
 * *quoted: the console lines, malloc'd), then 0 on every later call; 0 if
 * none; -1 with the error set if the log cannot be read. */
int lab_console_watch_poll (struct lab_console_watch *w, const char **reason,
                            char **quoted);
void lab_console_watch_free (struct lab_console_watch *w);
/* The reason of the first line of text (what a screen shows, read by OCR)
 * that holds a pattern of extra[0..nextra) or the table, ignoring case and
 * runs of blanks; the line in *line (printable, bounded, malloc'd).  NULL
 * (and *line NULL) if none. */
const char *lab_console_match_text (const char *text,
                                    const struct lab_console_pattern *extra,
                                    size_t nextra, char **line);

#endif /* BOOTBACK_LAB_H */
