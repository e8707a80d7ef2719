/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Remote instant recovery: the VM runs on another hypervisor host (a
 * libvirt URI naming a server), the restore point stays on this backup
 * server and reaches the host's QEMU over NBD on TCP with TLS.
 *
 * Per disk, as for a local session (session.c), the supervisor keeps a
 * backend nbdkit (the bootback plugin, unix socket) and a front nbdkit
 * (nbd plugin + retry filter) over it; only the front differs: it listens
 * on TCP at the session's address (--listen, else this host's address on
 * the route to the URI's host: the source address the kernel picks for a
 * datagram to it) on a port picked free at start and kept for the
 * session's life, with
 *
 *   --tls=require --tls-certificates=TLSDIR --tls-verify-peer
 *
 * (TLSDIR: the directory of `bootback tls init`, HOME/tls by default), so
 * only a client holding a certificate of the same CA (the host's QEMU,
 * default_tls_x509_cert_dir in its qemu.conf) can read the point, and
 * only from the target host's addresses: what the URI's host name
 * resolves to at start (every address), or the listen address for a
 * host-less URI (this host's own QEMU), recorded in the session ("allow")
 * so a restarted front gets the same list.  The CA signs every
 * hypervisor's certificate and nbdkit 1.32 can pin neither the client's
 * identity nor (its ip filter parses no address: built without
 * INET_PTON) its address, so the front's listening socket is ours
 * (remote_front_socket, made before nbdkit is forked): bound, given a
 * classic BPF socket filter that drops every packet (the SYN first;
 * accepted sockets inherit it) whose source is not an allowed address,
 * and handed to nbdkit by socket activation (LISTEN_FDS).  Without it
 * one host's QEMU certificate would read another host's sessions; with it
 * a certificate serves only from the target's address, and a client
 * elsewhere sees its SYN unanswered (README, "TLS").  The front writes
 * its pid file (--pidfile, the disk's "socket" field) once it listens:
 * that is its readiness (procs.c), and its command line's mark.
 * --insecure serves plaintext (tests, or a trusted private link).
 *
 * The guest's writes go to a qcow2 volume NAME.DISK.qcow2 in a pool of
 * the host (--pool, default "default"; file-based pools only), created and
 * deleted through libvirt's storage API.  libvirt refuses a volume whose
 * backing is not a local file, so the volume has none in its header: the
 * domain's XML gives the backing (<backingStore type='network'> with
 * <source protocol='nbd' tls='yes'><host name= port=/>), checked by the
 * allow-list (sanitize.c) like the local unix socket.
 *
 * Trust: nothing of the point's domain XML chooses an address, port,
 * pool, path or network here: the address and port are this host's, the
 * pool is the user's, the volume names are the session's (validated
 * domain name) and disk names, and the rewrite (domain-xml.c) replaces
 * every disk.  A file serial port of the saved definition becomes a pty
 * (there is no console log: the host has no path of ours to write).
 */
#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <libxml/uri.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "recovery/instant/instant-int.h"
#include "recovery/virt/storage.h"

bool
session_remote (const struct instant_session *s)
{
  return s->listen[0] != '\0';
}

/* The server of uri if it is another host's, into host. */
static bool
uri_remote_host (const char *uri, char *host, size_t len)
{
  xmlURIPtr u = uri ? xmlParseURI (uri) : NULL;
  bool remote = false;

  if (u && u->server && u->server[0] && strcmp (u->server, "localhost") != 0 &&
      strncmp (u->server, "127.", 4) != 0 && strcmp (u->server, "::1") != 0) {
    snprintf (host, len, "%s", u->server);
    remote = true;
  }
  if (u)
    xmlFreeURI (u);
  return remote;
}

bool
remote_wanted (const struct instant_opts *o)
{
  char host[256];

  return o->listen || o->storage_pool || uri_remote_host (o->uri, host, sizeof host);
}

/* This host's address on the route to host, into addr. */
static int
route_source (const char *host, char *addr, size_t len)
{
  struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int fd = -1, r, ret = -1;

  r = getaddrinfo (host, "16514", &hints, &ai);
  if (r != 0) {
    error_setx ("host %s: %s (give --listen ADDR)", host, gai_strerror (r));
    return -1;
  }
  fd = socket (ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      getsockname (fd, (struct sockaddr *) &ss, &sl) == 0 &&
      getnameinfo ((struct sockaddr *) &ss, sl, addr, len, NULL, 0, NI_NUMERICHOST) == 0)
    ret = 0;
  else
    error_set (errno, "no route to host %s (give --listen ADDR)", host);
  if (fd >= 0)
    close (fd);
  freeaddrinfo (ai);
  return ret;
}

/* A TCP port free on addr now (the front binds it a moment later). */
static int
free_port (const char *addr)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST },
    *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char port[NI_MAXSERV];
  int fd, ret = -1;

  if (getaddrinfo (addr, "0", &hints, &ai) != 0) {
    error_setx ("--listen %s: not an IP address of this host", addr);
    return -1;
  }
  fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && bind (fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      getsockname (fd, (struct sockaddr *) &ss, &sl) == 0 &&
      getnameinfo ((struct sockaddr *) &ss, sl, NULL, 0, port, sizeof port,
                   NI_NUMERICSERV) == 0)
    ret = atoi (port);
  else
    error_set (errno, "cannot listen on %s (is it an address of this host?)", addr);
  if (fd >= 0)
    close (fd);
  freeaddrinfo (ai);
  return ret;
}

/* Does the server certificate cert name addr (QEMU checks that it names
 * the address it connects to)?  -1 with the error if not. */
static int
cert_names (const char *cert, const char *addr)
{
  FILE *f = fopen (cert, "re");
  X509 *x = f ? PEM_read_X509 (f, NULL, NULL, NULL) : NULL;
  int ok = x && (X509_check_ip_asc (x, addr, 0) == 1 ||
                 X509_check_host (x, addr, 0, 0, NULL) == 1);

  if (f)
    fclose (f);
  X509_free (x);
  if (!ok)
    error_setx ("TLS: %s does not name %s, the address nbdkit listens on (bootback "
                "tls init --hosts ... %s, or --listen an address it names)", cert,
                addr, addr);
  return ok ? 0 : -1;
}

/* Is a one of the comma-separated list's items? */
static bool
list_has (const char *list, const char *a)
{
  size_t l = strlen (a);

  for (const char *p = list; *p; p += strcspn (p, ",") + (p[strcspn (p, ",")] != '\0'))
    if (strncmp (p, a, l) == 0 && (p[l] == ',' || p[l] == '\0'))
      return true;
  return false;
}

/* Every address host resolves to, numeric and comma-separated (a
 * session's "allow"), into allow.  -1 with the error if none. */
static int
host_addrs (const char *host, char *allow, size_t len)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *p;
  size_t used = 0;
  int r;

  allow[0] = '\0';
  r = getaddrinfo (host, NULL, &hints, &ai);
  if (r != 0) {
    error_setx ("host %s: %s (the front serves only its addresses)", host,
                gai_strerror (r));
    return -1;
  }
  for (p = ai; p; p = p->ai_next) {
    char a[NI_MAXHOST], *pct;
    if (getnameinfo (p->ai_addr, p->ai_addrlen, a, sizeof a, NULL, 0,
                     NI_NUMERICHOST) != 0)
      continue;
    if ((pct = strchr (a, '%')))        /* fe80::1%eth0: no scope there */
      *pct = '\0';
    if (list_has (allow, a))
      continue;
    r = snprintf (allow + used, len - used, "%s%s", used ? "," : "", a);
    if (r < 0 || (size_t) r >= len - used) {
      allow[used] = '\0';
      break;
    }
    used += r;
  }
  freeaddrinfo (ai);
  if (!allow[0]) {
    error_setx ("host %s: no address (the front serves only its addresses)", host);
    return -1;
  }
  return 0;
}

/* The certificates nbdkit serves with: the directory's CA, server
 * certificate (naming the listen address) and key. */
static int
tls_dir_check (struct instant_session *s, const struct instant_opts *o)
{
  static const char *const files[] = { "ca-cert.pem", "server-cert.pem",
                                       "server-key.pem", NULL };
  CLEANUP_FREE char *dir = o->tls_dir ? xstrdup (o->tls_dir)
    : xasprintf ("%s/tls", o->home);
  char rp[PATH_MAX];
  size_t i;

  for (i = 0; files[i]; i++) {
    CLEANUP_FREE char *f = xasprintf ("%s/%s", dir, files[i]);
    if (access (f, R_OK) == -1) {
      error_set (errno, "TLS: %s (bootback tls init --dir %s --hosts ADDRESS; "
                 "or --insecure for plaintext)", f, dir);
      return -1;
    }
  }
  {
    CLEANUP_FREE char *cert = xasprintf ("%s/server-cert.pem", dir);
    if (cert_names (cert, s->listen) == -1)
      return -1;
  }
  return path_set (s->tls_dir, sizeof s->tls_dir, "%s", realpath (dir, rp) ? rp : dir);
}

int
remote_prepare (struct instant_session *s, const struct instant_opts *o,
                virConnectPtr conn)
{
  char host[256] = "";

  if (o->listen)
    text_set (s->listen, sizeof s->listen, "%s", o->listen);
  else if (!uri_remote_host (o->uri, host, sizeof host)) {
    error_setx ("remote instant recovery: the URI %s names no host to find the "
                "address to listen on: give --listen ADDR", o->uri ? o->uri : "(default)");
    return -1;
  }
  else if (route_source (host, s->listen, sizeof s->listen) == -1)
    return -1;
  if (free_port (s->listen) == -1)
    return -1;
  if (!host[0])
    uri_remote_host (o->uri, host, sizeof host);
  if (!host[0])                         /* this host's QEMU */
    text_set (s->allow, sizeof s->allow, "%s", s->listen);
  else if (host_addrs (host, s->allow, sizeof s->allow) == -1)
    return -1;
  s->insecure = o->insecure;
  if (!o->insecure && tls_dir_check (s, o) == -1)
    return -1;
  text_set (s->storage_pool, sizeof s->storage_pool, "%s",
            o->storage_pool ? o->storage_pool : "default");
  if (virt_pool_dir (conn, s->storage_pool, s->overlay_dir, sizeof s->overlay_dir) == -1) {
    error_prefix ("the overlays go to a pool of the host (--pool NAME)");
    return -1;
  }
  return 0;
}

/* NAME.DISK.qcow2, the file name of k's overlay. */
static const char *
vol_name (const struct instant_session_disk *k)
{
  const char *slash = strrchr (k->overlay, '/');

  return slash ? slash + 1 : k->overlay;
}

int
remote_overlay_free (virConnectPtr conn, const struct instant_session *s,
                     const struct instant_session_disk *k)
{
  int r = virt_vol_exists (conn, s->storage_pool, vol_name (k));

  if (r == 1)
    error_setx ("pool %s has a volume %s already (another session of %s?); stop "
                "that session with --discard or delete the volume",
                s->storage_pool, vol_name (k), s->name);
  return r == 0 ? 0 : -1;
}

int
remote_disk_front (const struct instant_session *s, struct instant_session_disk *k)
{
  k->port = free_port (s->listen);
  if (k->port == -1)
    return -1;
  return path_set (k->socket, sizeof k->socket, "%s/%s.front.tcp.pid", s->dir, k->name);
}

int
remote_overlay_create (virConnectPtr conn, const struct instant_session *s,
                       struct instant_session_disk *k)
{
  char path[sizeof k->overlay];

  if (virt_vol_create (conn, s->storage_pool, vol_name (k), "qcow2", k->size,
                       path, sizeof path) == -1)
    return -1;
  if (strcmp (path, k->overlay) != 0)
    memcpy (k->overlay, path, sizeof path);
  return 0;
}

void
remote_overlays_delete (virConnectPtr conn, const struct instant_session *s,
                        const struct instant_caller *w)
{
  CLEANUP_VIR_CONNECT virConnectPtr own = NULL;
  virConnectPtr c = conn;
  size_t i;

  ERROR_SAVE (saved);
  for (i = 0; i < s->ndisks; i++) {
    const struct instant_session_disk *k = &s->disks[i];
    if (!k->overlay[0] || !k->overlay_made)
      continue;                  /* a volume of that name is not ours */
    if (!c && !(c = own = virt_connect (s->uri))) {
      session_warn (w, "the overlay volumes of session %" PRId64 " stay in pool %s "
                    "of %s: %s", s->id, s->storage_pool, s->uri, error_msg ());
      break;
    }
    if (virt_vol_delete (c, s->storage_pool, vol_name (k)) == -1)
      session_warn (w, "%s", error_msg ());
  }
  ERROR_RESTORE (saved);
}

void
remote_front_args (const struct instant_session *s,
                   const struct instant_session_disk *k, char ***v, size_t *n)
{
  strv_push (v, n, xasprintf ("--pidfile=%s", k->socket));
  if (s->insecure) {
    strv_pushl (v, n, "--tls=off", NULL);
    return;
  }
  strv_pushl (v, n, "--tls=require", "--tls-verify-peer", NULL);
  strv_push (v, n, xasprintf ("--tls-certificates=%s", s->tls_dir));
}

/* The front's TLS costs the backup server's CPU on every byte it serves
 * (GnuTLS encrypts in nbdkit, no kernel TLS here).  nbdkit 1.32 asks
 * GnuTLS for "NORMAL" and follows the client's order, which puts
 * AES-256-GCM first; AES-128-GCM (TLS 1.3's mandatory cipher, as strong
 * for this use) does four fewer AES rounds per block.  nbdkit offers no
 * priority option, so the front gets a GnuTLS configuration of its own
 * (GNUTLS_SYSTEM_PRIORITY_FILE): the host's (GNUTLS_SYSTEM_PRIORITY_FILE
 * of our environment, else /etc/gnutls/config), whatever it restricts,
 * then an [overrides] section that turns off the ciphers a client would
 * pick before AES-128-GCM.  A host configuration in allow-list mode
 * takes no such lines: it is left as it is (no file).  bench/fleet writes
 * the same overrides for its TLS row. */
static const char front_tls_overrides[] =
  "\n# bootback: the remote fronts' TLS, AES-128-GCM (recovery/instant/remote.c)\n"
  "[overrides]\n"
  "tls-disabled-cipher = AES-256-GCM\n"
  "tls-disabled-cipher = CHACHA20-POLY1305\n"
  "tls-disabled-cipher = AES-256-CCM\n";

int
remote_front_tls_config (const char *path)
{
  const char *sys = getenv ("GNUTLS_SYSTEM_PRIORITY_FILE");
  CLEANUP_FREE char *host = xmalloc (65536);
  size_t len = 0;
  FILE *f;

  if (!sys || !*sys)
    sys = "/etc/gnutls/config";
  if ((f = fopen (sys, "re"))) {
    len = fread (host, 1, 65536, f);
    bool bad = ferror (f) || !feof (f);
    fclose (f);
    if (bad) {
      error_set (EFBIG, "%s (the host's GnuTLS configuration): unreadable, or over 64 KiB", sys);
      return -1;
    }
  }
  else if (errno != ENOENT) {
    error_set (errno, "%s (the host's GnuTLS configuration)", sys);
    return -1;
  }
  if (memmem (host, len, "allowlist", 9))
    return 0;
  if (!(f = fopen_private (path)))
    return -1;
  fwrite (host, 1, len, f);
  fputs (front_tls_overrides, f);
  if (fclose (f) != 0) {
    error_set (errno, "%s", path);
    return -1;
  }
  return 1;
}

/* The filter: accept a packet whose IPv4 (IPv6) source is one of the
 * allowed addresses of family, drop any other.  Blocks of one load and
 * compare per IPv4 word (one for IPv4, four for IPv6), then "drop",
 * then "accept".  The count of instructions, 0 if no address fits. */
static size_t
allow_filter (int family, const char *allow, struct sock_filter *f, size_t max)
{
  const size_t words = family == AF_INET ? 1 : 4, block = 2 * words;
  CLEANUP_FREE char *list = xstrdup (allow);
  unsigned char a[16][16];
  size_t na = 0, b, w;
  char *save = NULL;

  for (char *t = strtok_r (list, ",", &save); t && na < 16; t = strtok_r (NULL, ",", &save))
    if (inet_pton (family, t, a[na]) == 1)
      na++;
  if (na == 0 || na * block + 2 > max)
    return 0;
  for (b = 0; b < na; b++)
    for (w = 0; w < words; w++) {
      size_t at = b * block + 2 * w;
      uint32_t v;
      memcpy (&v, a[b] + 4 * w, 4);
      f[at] = (struct sock_filter)
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS,
                  SKF_NET_OFF + (family == AF_INET ? 12 : 8) + 4 * w);
      /* a match: the next word, or "accept" after the last; else the
       * next block (or "drop") */
      f[at + 1] = (struct sock_filter)
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, ntohl (v),
                  w + 1 < words ? 0 : na * block - at - 1,
                  w + 1 < words ? block - 2 * w - 2 : 0);
    }
  f[na * block] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, 0);
  f[na * block + 1] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, 0xffffffff);
  return na * block + 2;
}

int
remote_front_socket (const struct instant_session *s,
                     const struct instant_session_disk *k)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICHOST }, *ai = NULL;
  struct sock_filter f[16 * 8 + 2];
  struct sock_fprog prog = { 0 };
  char port[16], host[256], allow[sizeof s->allow] = "";
  int fd = -1, one = 1;

  snprintf (port, sizeof port, "%d", k->port);
  if (getaddrinfo (s->listen, port, &hints, &ai) != 0) {
    error_setx ("front of disk %s: %s: not an address", k->name, s->listen);
    return -1;
  }
  /* a session recorded before "allow" was: the URI's host now */
  if (s->allow[0])
    snprintf (allow, sizeof allow, "%s", s->allow);
  else if (uri_remote_host (s->uri, host, sizeof host))
    host_addrs (host, allow, sizeof allow);
  prog.filter = f;
  prog.len = allow_filter (ai->ai_family, allow, f, sizeof f / sizeof f[0]);
  if (prog.len == 0) {          /* nobody: a filter that drops everything */
    f[0] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, 0);
    prog.len = 1;
  }
  fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 ||
      setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1 ||
      setsockopt (fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == -1 ||
      bind (fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen (fd, SOMAXCONN) == -1) {
    error_set (errno, "front of disk %s: listening on %s port %s", k->name,
               s->listen, port);
    if (fd >= 0)
      close (fd);
    freeaddrinfo (ai);
    return -1;
  }
  freeaddrinfo (ai);
  return fd;
}
