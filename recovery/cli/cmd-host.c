/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback host add / remove, bootback hosts, and --host NAME: the
 * hypervisor hosts bootback talks to, by name, each a libvirt URI kept in
 * the catalog (schema 9).  The connections themselves are
 * recovery/virt's (virt_connect, virt_host_info): this file only names
 * them.  `hosts` connects to each in turn and says whether it answers,
 * with the libvirt and hypervisor versions, memory and storage pools
 * (what a host answers is its own choice, so the text prints it through
 * xstrdup_printable: put_remote); exit 2 when one does not answer.  A
 * host may have an ssh destination (--ssh, schema 12; from a qemu+ssh://
 * URI when not given): labs run there through it (lab/hostcmd.c,
 * cli_lab_host).
 */
#include "lab/lab.h"
#include "recovery/cli/cli.h"
#include "recovery/virt/virt.h"

#define HOST_NAME_MAX_LEN 64

static const char host_usage[] =
  "usage: bootback host add NAME URI [--ssh [USER@]HOST[:PORT]]\n"
  "       bootback host remove NAME\n"
  "\n"
  "Name a hypervisor host by its libvirt URI (qemu+ssh://root@host1/system,\n"
  "qemu+tls://host1/system, qemu+tcp://... for tests), kept in the catalog;\n"
  "commands that talk to libvirt take --host NAME.  `bootback hosts` lists\n"
  "them.\n"
  "\n"
  "  --ssh DEST         how labs reach the host to build their isolated\n"
  "                     network and run their checks there (OpenSSH, as\n"
  "                     root; $BOOTBACK_SSH_CONFIG names an ssh_config file);\n"
  "                     default: the user, host and port of a qemu+ssh:// URI\n";

static const char hosts_usage[] =
  "usage: bootback hosts [--json]\n"
  "\n"
  "Connect to every host of `bootback host add` and show whether it answers,\n"
  "its libvirt and hypervisor versions, memory and storage pools (what a\n"
  "host answered: control and non-ASCII bytes shown as '?').  Exit status\n"
  "2 if a host does not answer.\n"
  "\n"
  "  --json             as a JSON array\n";

static bool
host_name_ok (const char *s)
{
  size_t n = strlen (s);

  return n > 0 && n <= HOST_NAME_MAX_LEN && !strstr (s, ":") &&
    strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The [USER@]HOST[:PORT] of a qemu+ssh://[USER@]HOST[:PORT]/... URI into
 * out; false if it is not one. */
static bool
ssh_from_uri (const char *uri, char *out, size_t len)
{
  const char *p = strstr (uri, "+ssh://");
  size_t n;

  if (!p || strchr (uri, ':') < p)
    return false;
  p += 7;
  n = strcspn (p, "/?");
  if (n == 0 || n >= len)
    return false;
  snprintf (out, len, "%.*s", (int) n, p);
  return true;
}

/* host add NAME URI [--ssh DEST]: the ssh destination checked, or taken
 * from a qemu+ssh:// URI. */
static int
host_add (struct cli *c, int argc, char **argv)
{
  char from_uri[300], dest[300];
  const char *ssh = NULL;
  int port;

  if (argc == 6 && strcmp (argv[4], "--ssh") == 0)
    ssh = argv[5];
  else if (argc != 4)
    cli_bad_usage (host_usage);
  else if (ssh_from_uri (argv[3], from_uri, sizeof from_uri))
    ssh = from_uri;
  if (ssh && lab_ssh_dest_parse (ssh, dest, sizeof dest, &port) == -1)
    return -1;
  if (cli_catalog (c) == -1)
    return -1;
  return catalog_host_add (c->cat, argv[2], argv[3], ssh);
}

static int
take_uri (void *opaque, const struct catalog_host *h)
{
  *(char **) opaque = xstrdup (h->uri);
  return 0;
}

char *
cli_host_uri (struct cli *c, const char *host)
{
  char *uri = NULL;

  if (strstr (host, ":/"))
    return xstrdup (host);          /* a URI as it is */
  if (cli_catalog (c) == -1)
    return NULL;
  if (catalog_host_list (c->cat, host, take_uri, &uri) == -1) {
    cli_perror ();
    return NULL;
  }
  if (!uri)
    cli_error ("--host %s: no such host (bootback host add %s URI)", host, host);
  return uri;
}

struct lab_host_find {
  struct lab_host *out;
  char *uri;
  bool found, no_ssh;
};

static int
take_lab_host (void *opaque, const struct catalog_host *h)
{
  struct lab_host_find *f = opaque;

  f->found = true;
  f->uri = xstrdup (h->uri);
  f->no_ssh = !h->ssh[0];
  snprintf (f->out->name, sizeof f->out->name, "%s", h->name);
  snprintf (f->out->ssh, sizeof f->out->ssh, "%s", h->ssh);
  return 0;
}

char *
cli_lab_host (struct cli *c, const char *name, struct lab_host *out)
{
  struct lab_host_find f = { .out = out };

  memset (out, 0, sizeof *out);
  if (cli_catalog (c) == -1)
    return NULL;
  if (catalog_host_list (c->cat, name, take_lab_host, &f) == -1) {
    cli_perror ();
    return NULL;
  }
  if (!f.found)
    cli_error ("host %s: no such host (bootback host add %s URI --ssh "
               "[USER@]HOST)", name, name);
  else if (f.no_ssh)
    cli_error ("host %s has no ssh destination: a lab builds its network and "
               "runs its checks there over ssh (bootback host remove %s; "
               "bootback host add %s URI --ssh [USER@]HOST[:PORT])", name, name, name);
  if (!f.found || f.no_ssh) {
    free (f.uri);
    memset (out, 0, sizeof *out);
    return NULL;
  }
  return f.uri;
}

int
cli_host_option (struct cli *c, const char *host, const char **uri)
{
  if (!host)
    return 0;
  if (*uri) {
    cli_error ("give --host or --connect, not both");
    return -1;
  }
  *uri = cli_host_uri (c, host);
  return *uri ? 0 : -1;
}

int
cmd_host (struct cli *c, int argc, char **argv)
{
  int r;

  if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    cli_usage (host_usage);
  if ((argc == 4 || argc == 6) && strcmp (argv[1], "add") == 0) {
    if (!host_name_ok (argv[2])) {
      cli_error ("host name '%s': 1 to %d characters [A-Za-z0-9._-]", argv[2],
                 HOST_NAME_MAX_LEN);
      return 1;
    }
    if (!strstr (argv[3], ":/")) {
      cli_error ("%s: not a libvirt URI (qemu+ssh://HOST/system, ...)", argv[3]);
      return 1;
    }
    r = host_add (c, argc, argv);
  }
  else if (argc == 3 && strcmp (argv[1], "remove") == 0) {
    if (cli_catalog (c) == -1)
      return 1;
    r = catalog_host_remove (c->cat, argv[2]);
  }
  else
    cli_bad_usage (host_usage);
  if (r != 0) {
    cli_perror ();
    return 1;
  }
  printf ("host %s %s\n", argv[2], strcmp (argv[1], "add") == 0 ? "added" : "removed");
  return 0;
}

/* One host of the listing: connected to, asked, printed or put in JSON. */
struct hosts_out {
  json_t *arr;                  /* --json, else NULL */
  int unreachable;
};

static json_t *
info_json (const struct virt_host_info *i)
{
  json_t *pools = json_array ();
  size_t k;

  for (k = 0; k < i->npools; k++)
    json_array_append_new (pools, json_pack ("{s:s, s:b, s:I, s:I}",
                                             "name", i->pools[k].name,
                                             "active", i->pools[k].active,
                                             "capacity", (json_int_t) i->pools[k].capacity,
                                             "available", (json_int_t) i->pools[k].available));
  return json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:o}",
                    "hostname", i->hostname, "libvirt_version", i->libvirt_version,
                    "hypervisor", i->hypervisor,
                    "hypervisor_version", i->hypervisor_version,
                    "memory", (json_int_t) i->memory,
                    "free_memory", (json_int_t) i->free_memory,
                    "cpus", (int) i->cpus, "pools", pools);
}

/* Print s, what a host answered (a compromised hypervisor chooses it),
 * with every control and non-ASCII byte as '?' (xstrdup_printable): no
 * terminal escape sequence reaches the terminal. */
static void
put_remote (const char *s)
{
  CLEANUP_FREE char *p = xstrdup_printable (s ? s : "", false);

  fputs (p, stdout);
}

static void
info_print (const struct catalog_host *h, const struct virt_host_info *i)
{
  char fm[32], tm[32], av[32];
  size_t k;

  printf ("%s  %s\n  up: ", h->name, h->uri);
  put_remote (i->hostname);
  printf (", libvirt ");
  put_remote (i->libvirt_version);
  printf (", ");
  put_remote (i->hypervisor);
  printf (" ");
  put_remote (i->hypervisor_version);
  printf (", %s of %s memory free, %u CPUs\n", human_size (i->free_memory, fm, sizeof fm),
          human_size (i->memory, tm, sizeof tm), i->cpus);
  printf ("  pools:%s", i->npools ? "" : " none");
  for (k = 0; k < i->npools; k++) {
    printf ("%s ", k ? "," : "");
    put_remote (i->pools[k].name);
    printf (" (%s)", i->pools[k].active
            ? human_size (i->pools[k].available, av, sizeof av) : "inactive");
  }
  printf ("\n");
}

static int
host_one (void *opaque, const struct catalog_host *h)
{
  struct hosts_out *o = opaque;
  CLEANUP_VIR_CONNECT virConnectPtr conn = virt_connect (h->uri);
  struct virt_host_info i;
  bool up = conn && virt_host_info (conn, &i) == 0;
  json_t *j;

  if (!up)
    o->unreachable++;
  if (o->arr) {
    j = up ? info_json (&i) : json_object ();
    json_object_set_new (j, "name", json_string (h->name));
    json_object_set_new (j, "uri", json_string (h->uri));
    json_object_set_new (j, "ssh", h->ssh[0] ? json_string (h->ssh) : json_null ());
    json_object_set_new (j, "reachable", json_boolean (up));
    json_object_set_new (j, "error", up ? json_null () : json_string (error_msg ()));
    json_array_append_new (o->arr, j);
  }
  else if (up)
    info_print (h, &i);
  else {
    printf ("%s  %s\n  unreachable: ", h->name, h->uri);
    put_remote (error_msg ());     /* libvirt's words, the remote's too */
    printf ("\n");
  }
  if (!o->arr)
    printf ("  ssh (labs): %s\n", h->ssh[0] ? h->ssh : "none (host add --ssh)");
  return 0;
}

int
cmd_hosts (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  struct hosts_out o = { 0 };
  int opt, n;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'j': o.arr = json_array (); break;
    case 'h': cli_usage (hosts_usage);
    default: cli_bad_usage (hosts_usage);
    }
  }
  if (optind != argc)
    cli_bad_usage (hosts_usage);
  if (cli_catalog (c) == -1)
    return 1;
  n = catalog_host_list (c->cat, NULL, host_one, &o);
  if (n < 0) {
    cli_perror ();
    return 1;
  }
  if (o.arr)
    cli_json_print (o.arr);
  else if (n == 0)
    printf ("no hosts (bootback host add NAME URI)\n");
  return o.unreachable ? EXIT_PROBLEMS : 0;
}
