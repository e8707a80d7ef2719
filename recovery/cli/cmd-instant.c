/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback instant, instant stop, sessions, migrate, and the hidden
 * supervise (the session supervisor daemon's entry point).  The work is in
 * recovery/instant; this file parses options and prints.
 */
#include <errno.h>
#include <signal.h>

#include "recovery/cli/cli.h"
#include "recovery/instant/instant.h"
#include "recovery/virt/ceph.h"

/* A note of the rewrite: said on stderr, kept for --json (opaque: a
 * JSON array or NULL). */
static void
print_note (void *opaque, const char *line)
{
  fprintf (stderr, "bootback: note: %s\n", line);
  if (opaque)
    json_array_append_new (opaque, json_string (line));
}

/* A warning of the library (something left behind): on stderr. */
static void
print_warning (void *opaque, const char *line)
{
  fprintf (stderr, "bootback: warning: %s\n", line);
}

/* The settings of instant recovery that come from the environment
 * (bootback.pod, ENVIRONMENT), and how to reach the repository. */
void
cli_instant_env (struct cli *c, struct instant_opts *o)
{
  instant_opts_env (o);
  o->repo_open = &c->repo_open;
}

static const char *
iso_time (double t, char buf[ISO_TIME_LEN + 1])
{
  iso_time_format ((time_t) t, buf);
  return buf;
}

/* ---- instant ---------------------------------------------------------------- */

static const char instant_usage[] =
  "usage: bootback instant VM[@TIME] [--name NEW] [--network NET]\n"
  "                        [--overlay-dir DIR] [--keep-identity|--new-identity]\n"
  "                        [--connect URI|--host NAME] [--transient] [--agent-timeout SECS]\n"
  "                        [--memory MIB] [--allow-passthrough] [--json]\n"
  "                        [--require-clean [--force]]\n"
  "                        [--pool POOL] [--listen ADDR] [--tls-dir DIR] [--insecure]\n"
  "       bootback instant VM[@TIME] VM[@TIME]... [--cache SIZE]\n"
  "                        [--memory-budget MIB] [options as above but --name]\n"
  "       bootback instant stop SESSION [--discard] [--connect URI|--host NAME]\n"
  "\n"
  "Boot a restore point now: nbdkit serves its disks, qcow2 overlays take\n"
  "the guest's writes, and libvirt runs the VM from its saved definition\n"
  "(name, UUID, MACs, disks and network rewritten).  Prints the session id\n"
  "and the time to VM running and to the guest agent's heartbeat.\n"
  "\n"
  "  --name NEW         domain name (default: the VM's; with --name the\n"
  "                     identity defaults to --new-identity)\n"
  "  --keep-identity    same UUID and MACs (replaces the original)\n"
  "  --new-identity     new UUID and MACs (a copy beside the original)\n"
  "  --network NET      a libvirt network, bridge:BR, or none (default: the\n"
  "                     saved interfaces)\n"
  "  --overlay-dir DIR  where the overlays go (default HOME/overlays)\n"
  "  --connect URI      libvirt URI (default: libvirt's)\n"
  "  --host NAME        the libvirt URI of a host of `bootback host add`\n"
  "  --transient        a transient domain (gone when destroyed)\n"
  "  --agent-timeout S  wait at most S seconds for the heartbeat (default 120,\n"
  "                     0: do not wait)\n"
  "  --memory MIB       memory of the default definition (points without XML)\n"
  "  --allow-passthrough keep what the saved definition passes to the host\n"
  "                     (graphics listeners, host directories and devices,\n"
  "                     char devices, QEMU command line): only for points\n"
  "                     you trust; by default they are removed or replaced\n"
  "                     and each is named\n"
  "  --require-clean    refuse a point whose last 'bootback scan' is not\n"
  "                     clean, or that is marked suspicious (--force: warn);\n"
  "                     the disks it approved are the disks that boot, or\n"
  "                     nothing does (a point changed since is refused)\n"
  "\n"
  "On another host (--host or --connect naming a server, or --pool or\n"
  "--listen given), nbdkit serves the point on TCP with TLS, only to the\n"
  "host's addresses (its name resolved), and the host's QEMU reads it; the\n"
  "guest's writes go to volumes of the host's pool:\n"
  "  --pool POOL        the host's storage pool for the overlays (default:\n"
  "                     default; dir, fs or netfs)\n"
  "  --listen ADDR      the address nbdkit listens on (default: this host's\n"
  "                     address on the route to the host)\n"
  "  --tls-dir DIR      the certificates of `bootback tls init` (default\n"
  "                     HOME/tls); clients need a certificate of its CA\n"
  "  --insecure         plaintext NBD instead of TLS (tests only)\n"
  "\n"
  "With several points (mass recovery), every session reads through one\n"
  "shared nbdkit (one chunk cache of --cache SIZE, default 256M), the VMs\n"
  "start one after another while their memory fits --memory-budget (default:\n"
  "the host's available memory less 1 GiB), then every heartbeat is awaited;\n"
  "a line per VM, and a summary of the times to running and to heartbeat.\n"
  "\n"
  "'instant stop' destroys the session's VM and stops its nbdkit; the\n"
  "overlays are kept unless --discard.  'bootback migrate' moves a session\n"
  "to production storage instead.\n";

static const char stop_usage[] =
  "usage: bootback instant stop SESSION [--discard] [--connect URI|--host NAME]\n"
  "\n"
  "End an instant-recovery session: destroy and undefine its VM, stop its\n"
  "nbdkit, remove its sockets.  The overlays (the guest's writes) are kept\n"
  "unless --discard, and with them the hold on the restore point (prune\n"
  "keeps it).  SESSION is the id or the domain name.  A domain with the\n"
  "session's name and UUID whose disks are not the session's overlays is\n"
  "not its VM: stop refuses and leaves it alone.  The session's VM is\n"
  "looked for where the session started it, unless --connect or --host\n"
  "(a host of `bootback host add`) says where it is reached now.\n";

static int
cmd_instant_stop (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "discard", no_argument, NULL, 'd' },
    { "connect", required_argument, NULL, 'c' },
    { "host", required_argument, NULL, 'H' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  CLEANUP_FREE struct instant_session *s = xcalloc (1, sizeof *s);
  struct instant_stop_opts o = { .warn = print_warning, .repo_open = &c->repo_open };
  const char *host = NULL;
  bool discard = false;
  size_t i;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': discard = true; break;
    case 'c': o.uri = optarg; break;
    case 'H': host = optarg; break;
    case 'h': cli_usage (stop_usage);
    default: cli_bad_usage (stop_usage);
    }
  }
  if (argc - optind != 1)
    cli_bad_usage (stop_usage);
  if (cli_catalog (c) == -1 || cli_host_option (c, host, &o.uri) == -1)
    return 1;
  o.discard = discard;
  if (instant_session_get (c->cat, argv[optind], s) == -1 ||
      instant_stop_with (c->cat, s->id, &o) == -1) {
    cli_perror ();
    return 1;
  }
  printf ("stopped session %" PRId64 " (%s)\n", s->id, s->name);
  if (!discard)
    for (i = 0; i < s->ndisks; i++)
      if (s->disks[i].overlay[0])
        printf ("  kept overlay %s\n", s->disks[i].overlay);
  return 0;
}

/* What a started session is and how to go on. */
static void
print_started (const struct instant_session *s, int agent_timeout)
{
  size_t i;

  printf ("session %" PRId64 ": %s running from %s@%s\n", s->id, s->name, s->vm,
          s->point);
  printf ("  VM running after %.2f s", s->t_running);
  if (s->t_heartbeat >= 0)
    printf ("; guest agent heartbeat after %.2f s\n", s->t_heartbeat);
  else
    printf ("; no guest agent heartbeat%s\n", agent_timeout ? "" : " (not waited for)");
  for (i = 0; i < s->ndisks; i++)
    printf ("  disk %s: overlay %s\n", s->disks[i].target, s->disks[i].overlay);
  if (s->listen[0])
    printf ("  served on %s with %s; overlays in pool %s of %s\n", s->listen,
            s->insecure ? "plaintext NBD (--insecure)" : "TLS", s->storage_pool, s->uri);
  else
    printf ("  console: %s\n", s->console_log);
  printf ("  move it to production storage: bootback migrate %" PRId64 " --to DIR\n"
          "  end it: bootback instant stop %" PRId64 " [--discard]\n", s->id, s->id);
}

/* The options of `bootback instant` into o and *json; -1 (said) if two
 * identities are given. */
static int
instant_args (int argc, char **argv, struct instant_opts *o,
              struct instant_many_opts *m, const char **host)
{
  static const struct option lo[] = {
    { "name", required_argument, NULL, 'n' },
    { "network", required_argument, NULL, 'N' },
    { "overlay-dir", required_argument, NULL, 'o' },
    { "keep-identity", no_argument, NULL, 'k' },
    { "new-identity", no_argument, NULL, 'K' },
    { "connect", required_argument, NULL, 'c' },
    { "host", required_argument, NULL, 'H' },
    { "transient", no_argument, NULL, 't' },
    { "agent-timeout", required_argument, NULL, 'a' },
    { "memory", required_argument, NULL, 'm' },
    { "json", no_argument, NULL, 'j' },
    { "allow-passthrough", no_argument, NULL, 'P' },
    { "cache", required_argument, NULL, 'C' },
    { "memory-budget", required_argument, NULL, 'B' },
    { "require-clean", no_argument, NULL, 'R' },
    { "force", no_argument, NULL, 'F' },
    { "pool", required_argument, NULL, 'p' },
    { "listen", required_argument, NULL, 'L' },
    { "tls-dir", required_argument, NULL, 'T' },
    { "insecure", no_argument, NULL, 'I' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'R': m->require_clean = true; break;
    case 'F': m->force = true; break;
    case 'p': o->storage_pool = optarg; break;
    case 'L': o->listen = optarg; break;
    case 'T': o->tls_dir = optarg; break;
    case 'I': o->insecure = true; break;
    case 'n': o->name = optarg; break;
    case 'N': o->network = optarg; break;
    case 'o': o->overlay_dir = optarg; break;
    case 'k':
    case 'K':
      if (o->identity != INSTANT_IDENTITY_DEFAULT) {
        cli_error ("give one of --keep-identity and --new-identity");
        return -1;
      }
      o->identity = opt == 'k' ? INSTANT_IDENTITY_KEEP : INSTANT_IDENTITY_NEW;
      break;
    case 'c': o->uri = optarg; break;
    case 'H': *host = optarg; break;
    case 't': o->transient = true; break;
    case 'a': o->agent_timeout = cli_int_arg ("--agent-timeout", optarg); break;
    case 'm': o->memory_mib = cli_int_arg ("--memory", optarg); break;
    case 'j': m->json = true; break;
    case 'P': o->allow_passthrough = true; break;
    case 'C':
      m->cache = parse_size (optarg);
      if (m->cache <= 0) {
        cli_error ("--cache '%s': not a size (e.g. 256M)", optarg);
        return -1;
      }
      break;
    case 'B': m->budget_mib = cli_int_arg ("--memory-budget", optarg); break;
    case 'h': cli_usage (instant_usage);
    default: cli_bad_usage (instant_usage);
    }
  }
  if (argc - optind < 1) {
    cli_error ("instant needs a restore point, VM or VM@TIME");
    cli_bad_usage (instant_usage);
  }
  if (argc - optind > 1 && o->name) {
    cli_error ("--name is for one restore point: several keep their names");
    return -1;
  }
  o->point = argv[optind];
  return 0;
}

/* --require-clean: every point passes the scan gate (cli_scan_gate), or
 * nothing starts; m->approved gets what it approved of each (the sessions
 * boot those disks or nothing: instant_opts.approved). */
static int
instant_gate (struct cli *c, char **points, size_t n, struct instant_many_opts *m)
{
  size_t i;

  if (!m->require_clean)
    return 0;
  m->approved = xcalloc (n, sizeof *m->approved);
  for (i = 0; i < n; i++)
    if (cli_scan_gate (c, points[i], m->force, &m->approved[i]) == -1)
      return -1;
  return 0;
}

static void
approved_free (struct instant_many_opts *m, size_t n)
{
  size_t i;

  for (i = 0; m->approved && i < n; i++)
    free (m->approved[i]);
  free (m->approved);
  m->approved = NULL;
}

/* instant once its options are parsed and its points passed the gate. */
static int
instant_run (struct cli *c, char **points, size_t n, struct instant_opts *o,
             struct instant_many_opts *m)
{
  json_t *notes = json_array ();
  CLEANUP_FREE struct instant_session *s = xcalloc (1, sizeof *s);
  char spec[VM_NAME_MAX + TIMESTAMP_LEN + 2];

  o->note_opaque = notes;
  if (instant_reattach (c->cat, c->home) > 0)
    fprintf (stderr, "bootback: re-attached sessions whose supervisor was gone\n");
  o->home = c->home;
  o->repo = repo_location (c->repo);
  if (n > 1) {
    json_decref (notes);
    o->note = print_note;
    o->note_opaque = NULL;
    return cli_instant_many (c, points, n, o, m);
  }
  o->approved = m->approved ? m->approved[0] : NULL;
  if (o->approved) {            /* the point the gate resolved, not a newer one */
    snprintf (spec, sizeof spec, "%s@%s", o->approved->vm, o->approved->id);
    o->point = spec;
  }
  if (instant_start (c->cat, o, s) == -1) {
    if (s->id > 0)
      cli_error ("session %" PRId64 " failed (nothing left behind): %s", s->id,
                 error_msg ());
    else
      cli_perror ();
    json_decref (notes);
    return 1;
  }
  if (m->json) {
    json_t *j = instant_session_json (s);
    json_object_set_new (j, "notes", notes);
    cli_json_print (j);
    return 0;
  }
  json_decref (notes);
  print_started (s, o->agent_timeout);
  return 0;
}

int
cmd_instant (struct cli *c, int argc, char **argv)
{
  struct instant_opts o = {
    .agent_timeout = 120, .note = print_note, .warn = print_warning,
    .repo_open = &c->repo_open,
  };
  struct instant_many_opts m = { 0 };
  const char *host = NULL;
  size_t n;
  int ret = 1;

  if (argc >= 2 && strcmp (argv[1], "stop") == 0)
    return cmd_instant_stop (c, argc - 1, argv + 1);
  if (instant_args (argc, argv, &o, &m, &host) == -1 ||
      cli_host_option (c, host, &o.uri) == -1)
    return 1;
  n = argc - optind;
  cli_instant_env (c, &o);
  if (cli_repo (c) == 0 && instant_gate (c, argv + optind, n, &m) == 0)
    ret = instant_run (c, argv + optind, n, &o, &m);
  approved_free (&m, n);
  return ret;
}

/* ---- sessions ----------------------------------------------------------------- */

static const char sessions_usage[] =
  "usage: bootback sessions [--json]\n"
  "\n"
  "List instant-recovery sessions with their state (starting, running,\n"
  "migrating, migrated, stopped, failed).  Re-attaches first: a running\n"
  "session whose supervisor is gone (a restart of the appliance) gets a new\n"
  "one, which adopts the nbdkit processes still serving.\n";

static int
print_row (void *opaque, const struct instant_session *s)
{
  json_t *arr = opaque;
  char created[32], point[160];

  if (arr) {
    json_t *j = instant_session_json (s);
    char dstate[32] = "";
    if (s->state == INSTANT_STATE_RUNNING || s->state == INSTANT_STATE_MIGRATING ||
        s->state == INSTANT_STATE_MIGRATED)
      instant_domain_state (s, NULL, dstate, sizeof dstate);
    json_object_set_new (j, "domain_state", dstate[0] ? json_string (dstate)
                         : json_null ());
    json_array_append_new (arr, j);
    return 0;
  }
  snprintf (point, sizeof point, "%s@%s", s->vm, s->point);
  if (s->state == INSTANT_STATE_RUNNING || s->state == INSTANT_STATE_MIGRATING) {
    char dstate[32];
    instant_domain_state (s, NULL, dstate, sizeof dstate);
    char on[1100] = "";
    if (s->listen[0])
      snprintf (on, sizeof on, " on %s", s->uri);
    printf ("%-4" PRId64 " %-20s %-34s %-10s %-20s VM %s%s, %s%s%s\n", s->id, s->name,
            point, instant_state_name (s->state),
            iso_time (s->created, created), dstate, on,
            instant_supervisor_alive (s) ? "supervised" : "NOT SUPERVISED",
            s->message[0] ? "; " : "", s->message);
  }
  else
    printf ("%-4" PRId64 " %-20s %-34s %-10s %-20s %s\n", s->id, s->name, point,
            instant_state_name (s->state), iso_time (s->created, created),
            s->message);
  return 0;
}

int
cmd_sessions (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  json_t *arr = NULL;
  bool json = false;
  int opt, n;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'j': json = true; break;
    case 'h': cli_usage (sessions_usage);
    default: cli_bad_usage (sessions_usage);
    }
  }
  if (optind != argc)
    cli_bad_usage (sessions_usage);
  if (cli_catalog (c) == -1)
    return 1;
  n = instant_reattach (c->cat, c->home);
  if (n == -1)
    cli_error ("warning: re-attach: %s", error_msg ());
  else if (n > 0)
    fprintf (stderr, "bootback: re-attached %d session%s\n", n, n == 1 ? "" : "s");
  if (json)
    arr = json_array ();
  else
    printf ("%-4s %-20s %-34s %-10s %-20s %s\n", "ID", "NAME", "POINT", "STATE",
            "CREATED", "");
  if (instant_session_list (c->cat, print_row, arr) == -1) {
    json_decref (arr);
    cli_perror ();
    return 1;
  }
  if (json)
    cli_json_print (arr);
  return 0;
}

/* ---- migrate ------------------------------------------------------------------- */

static const char migrate_usage[] =
  "usage: bootback migrate SESSION --to DIR|FILE [--format qcow2|raw]\n"
  "                        [--connect URI|--host NAME]\n"
  "       bootback migrate SESSION [--pool POOL] [--format qcow2|raw]\n"
  "       bootback migrate SESSION --onto [DISK=]EXISTING...\n"
  "                        [--connect URI|--host NAME]\n"
  "       bootback migrate SESSION --to rbd:POOL[/PREFIX] [--ceph-conf FILE]\n"
  "                        [--ceph-id NAME] [--ceph-keyring FILE]\n"
  "                        [--connect URI|--host NAME]\n"
  "\n"
  "Move a running instant-recovery session to production storage with no\n"
  "downtime: libvirt block-copies every disk (backup + the guest's writes)\n"
  "to DIR/NAME-DISK.FORMAT (or FILE, for a one-disk VM), pivots when the\n"
  "copy is in sync, updates the VM's definition, then stops the session's\n"
  "nbdkit and removes its overlays.  If the copy fails (target full or\n"
  "unwritable), the VM keeps running from the backup and migrate can be\n"
  "run again.  The directories of DIR, FILE and --onto's EXISTING must be\n"
  "writable by you or root only (those above may also be sticky, as /tmp).\n"
  "\n"
  "  --onto [DISK=]EXISTING  instead of --to: bring an existing raw or qcow2\n"
  "                     disk (same size; e.g. the stale production disk) up\n"
  "                     to date: only the chunks that differ from the point\n"
  "                     are written (a qcow2's dirty bitmap of the point's\n"
  "                     checkpoint says which to read), then the guest's\n"
  "                     writes, then pivot.\n"
  "                     A one-disk VM takes one FILE; else DISK=FILE for\n"
  "                     each disk.  A failure gives each its content back.\n"
  "                     Raw unless --format qcow2 (never taken from the\n"
  "                     file: its guest may have written any header).\n"
  "  --to rbd:POOL[/PREFIX]  to new raw Ceph RBD images PREFIXNAME-DISK in\n"
  "                     POOL; the cephx key goes to QEMU through a libvirt\n"
  "                     secret bootback defines for the run and removes\n"
  "  --ceph-conf FILE   the cluster's ceph.conf (default: $CEPH_CONF or\n"
  "                     /etc/ceph/ceph.conf)\n"
  "  --ceph-id NAME     the cephx user, without client. (default: admin)\n"
  "  --ceph-keyring FILE  its keyring (default: the one the conf names)\n"
  "\n"
  "A session on another host (bootback instant --host) moves to new\n"
  "volumes NAME-DISK.FORMAT of a pool of that host, by a block copy there:\n"
  "  --pool POOL        the host's pool (default: the one of its overlays)\n";

static volatile int migrate_cancel;

static void
on_signal (int sig)
{
  migrate_cancel = 1;
}

struct mprog {
  struct progress *p;
  uint64_t last, total;
};

/* libvirt's job size grows while the guest writes: start over then. */
static void
on_progress (void *opaque, uint64_t done, uint64_t total)
{
  struct mprog *m = opaque;

  if (total <= 1)
    return;                  /* a job that has not sized itself yet */
  if (total < done)
    total = done;
  if (!m->p || total != m->total) {
    progress_free (m->p);
    m->p = progress_new ("migrate", total);
    m->total = total;
    m->last = 0;
  }
  if (done > m->last) {
    progress_add (m->p, done - m->last);
    m->last = done;
  }
}

static void
print_migrated (const struct instant_session *s,
                const struct instant_migrate_result *res,
                const struct instant_migrate_opts *o)
{
  const char *id = o->ceph && o->ceph->id ? o->ceph->id : "admin";
  char h[32];
  size_t i;

  printf ("migrated session %" PRId64 " (%s): %s copied in %.2f s, pivot %.3f s\n",
          s->id, s->name, human_size (res->bytes, h, sizeof h), res->seconds_copy,
          res->seconds_pivot);
  if (o->onto)
    printf ("delta: %" PRIu64 " of %" PRIu64 " chunks differed and were written "
            "in %.2f s (hashing %.2f s)\n", res->delta_written, res->delta_chunks,
            res->seconds_delta, res->seconds_hash);
  for (i = 0; o->onto && i < s->ndisks; i++)
    printf ("delta of %s: %s; %" PRIu64 " chunks written\n", s->disks[i].target,
            res->delta_how[i], res->delta_written_disk[i]);
  for (i = 0; i < s->ndisks; i++)
    printf ("  disk %s: %s\n", s->disks[i].target, s->disks[i].migrated_to);
  if (virt_is_rbd (o->to))
    printf ("the definition of %s reads RBD as client.%s with the libvirt secret of "
            "usage 'ceph client.%s': define it once (README, Ceph RBD) for the VM "
            "to start again\n", s->name, id, id);
}

/* The options of `bootback migrate` (exits on --help and bad usage):
 * o's target, format and URI, the Ceph user in co, --onto's list (kept
 * in *onto, malloc'd) and --host. */
static void
migrate_args (int argc, char **argv, struct instant_migrate_opts *o,
              struct virt_ceph_opts *co, const char ***onto, const char **host)
{
  static const struct option lo[] = {
    { "to", required_argument, NULL, 't' },
    { "format", required_argument, NULL, 'f' },
    { "connect", required_argument, NULL, 'c' },
    { "host", required_argument, NULL, 'H' },
    { "onto", required_argument, NULL, 'o' },
    { "ceph-conf", required_argument, NULL, 'C' },
    { "ceph-id", required_argument, NULL, 'I' },
    { "ceph-keyring", required_argument, NULL, 'K' },
    { "pool", required_argument, NULL, 'p' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  size_t nonto = 0;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 't': o->to = optarg; break;
    case 'f': o->format = optarg; break;
    case 'c': o->uri = optarg; break;
    case 'H': *host = optarg; break;
    case 'C': co->conf = optarg; break;
    case 'I': co->id = optarg; break;
    case 'K': co->keyring = optarg; break;
    case 'p': o->storage_pool = optarg; break;
    case 'o':
      *onto = xrealloc (*onto, (nonto + 2) * sizeof **onto);
      (*onto)[nonto++] = optarg;
      (*onto)[nonto] = NULL;
      break;
    case 'h': cli_usage (migrate_usage);
    default: cli_bad_usage (migrate_usage);
    }
  }
  if (argc - optind != 1 || (o->to && *onto) ||
      (o->storage_pool && (o->to || *onto))) {
    cli_error ("migrate needs a SESSION and either --to DIR|FILE, --onto EXISTING "
               "or, for a remote session, --pool POOL");
    cli_bad_usage (migrate_usage);
  }
}

int
cmd_migrate (struct cli *c, int argc, char **argv)
{
  CLEANUP_FREE const char **onto = NULL;
  struct instant_migrate_opts o = {
    .progress = on_progress, .warn = print_warning, .repo_open = &c->repo_open,
  };
  struct instant_migrate_result res;
  struct virt_ceph_opts co = { 0 };
  const char *host = NULL;
  CLEANUP_FREE struct instant_session *s = xcalloc (1, sizeof *s);
  struct mprog mp = { 0 };
  int r;

  migrate_args (argc, argv, &o, &co, &onto, &host);
  o.onto = onto;
  o.ceph = &co;
  o.progress_opaque = &mp;
  instant_migrate_opts_env (&o);
  if (cli_host_option (c, host, &o.uri) == -1 || cli_catalog (c) == -1)
    return 1;
  instant_reattach (c->cat, c->home);
  if (instant_session_get (c->cat, argv[optind], s) == -1) {
    cli_perror ();
    return 1;
  }
  if (!s->listen[0] && (!o.to == !onto || o.storage_pool)) {
    cli_error ("session %" PRId64 " runs on this host: give --to DIR|FILE or "
               "--onto EXISTING (--pool is for a session on another host)", s->id);
    return 1;
  }
  if (s->listen[0] && (o.to || onto)) {
    cli_error ("session %" PRId64 " runs on another host: it migrates into a "
               "storage pool of that host (--pool POOL, default the session's); "
               "--to and --onto are for a session on this host", s->id);
    return 1;
  }
  /* Ctrl-C or SIGTERM before the pivot abandons the copy cleanly. */
  o.cancel = &migrate_cancel;
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  r = instant_migrate (c->cat, s->id, &o, &res);
  signal (SIGINT, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  progress_free (mp.p);
  if (r == -1) {
    cli_perror ();
    return 1;
  }
  instant_session_get (c->cat, argv[optind], s);
  print_migrated (s, &res, &o);
  return 0;
}

/* ---- supervise (hidden) ---------------------------------------------------------- */

int
cmd_supervise (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "ready-fd", required_argument, NULL, 'r' },
    { 0 }
  };
  int opt, ready_fd = -1, r;
  long long id;
  char *end;

  while ((opt = getopt_long (argc, argv, "", lo, NULL)) != -1) {
    switch (opt) {
    case 'r': ready_fd = cli_int_arg ("--ready-fd", optarg); break;
    default: cli_bad_usage ("usage: bootback supervise SESSION|pool:KEY [--ready-fd N]\n");
    }
  }
  if (argc - optind != 1)
    cli_bad_usage ("usage: bootback supervise SESSION|pool:KEY [--ready-fd N]\n");
  if (strncmp (argv[optind], "pool:", 5) == 0) {
    r = instant_pool_supervise (c->home, argv[optind] + 5, ready_fd);
    if (r != 0)
      cli_perror ();
    return r;
  }
  errno = 0;
  id = strtoll (argv[optind], &end, 10);
  if (errno || *end || id <= 0) {
    cli_error ("supervise: '%s' is not a session id", argv[optind]);
    return 1;
  }
  r = instant_supervise (c->home, id, ready_fd);
  if (r != 0)
    cli_perror ();
  return r;
}
