/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backup of a domain on another host: what differs from a local one.
 * backup.c drives the run; this file decides the transport and connects.
 *
 * A libvirt URI with a host name (qemu+tls://hv1/system, qemu+ssh://...)
 * means the domain, its QEMU and its disks are on that host: a unix
 * socket or a scratch directory of this machine means nothing there.  So
 * the pull-mode job's NBD server listens on TCP on the URI's host name
 * (it must be one of that host's addresses, and the backup server must
 * reach it), with TLS: QEMU's tls-creds-x509 from the host's qemu.conf
 * (backup_tls_x509_cert_dir, else default_tls_x509_cert_dir; with
 * verification, a client certificate of the same CA is required), and
 * libnbd on this side with LIBNBD_TLS_REQUIRE and the client certificates
 * of `bootback tls init` (--tls-dir, else the URI's pkipath=, else
 * $BOOTBACK_HOME/tls), checking the host's certificate against the URI's
 * host name.  Plaintext only with --insecure (tests).
 *
 * Design notes.
 *
 * The port.  libvirt has no port allocator for backup jobs: the caller
 * names one.  bootback tries the ports of a range (--nbd-ports, default
 * 10809-10872, the firewall opening the README describes) from one
 * derived from its PID, and takes the next one when QEMU says the port is
 * in use; after BACKUP_PORT_TRIES ports (or the whole range) the error
 * says so.  A refused begin does not create the checkpoint (libvirt rolls
 * it back), so retrying is harmless.
 *
 * Who owns a job.  A local job's socket directory names bootback's PID;
 * a remote job has none, so its export names carry it:
 * "bootback-backup-PID-HOST-vda", HOST being this machine's name and the
 * start of its machine-id (two backup servers may share a name).  A job
 * of a dead bootback of this machine is ended; one of another machine is
 * an error naming it (bootback cannot tell whether it still runs).
 *
 * Connecting.  Each worker opens its own TLS connection (the export
 * allows several), but the first takes over the one that walked block
 * status (a handshake fewer).  The connection and TLS handshake run in libnbd's
 * state machine with a deadline (BACKUP_CONNECT_SECS), so a firewall that
 * drops packets gives an error naming the address and port, not a
 * two-minute hang.  The certificate files are checked before the job
 * begins: a missing client certificate is an error before anything
 * changes on the host.
 *
 * Delayed ACKs.  QEMU 7.2's NBD server writes a reply in pieces (a
 * header, then its payload, each its own TLS record) with Nagle on, so
 * the second piece waits until the first is acknowledged, and a client
 * that has nothing to send acknowledges 40 ms late: every option of the
 * negotiation, every block status reply.  Before each wait the client
 * sends the pending ACK itself (TCP_QUICKACK, nbd-tcp.c; the waits go
 * through libnbd's aio calls for that).  QEMU 8.1 corks its replies.
 */
#include <ctype.h>
#include <errno.h>
#include <unistd.h>

#include "recovery/ingest/ingest-int.h"

#define BACKUP_PORT_MIN 10809
#define BACKUP_PORT_MAX 10872
#define BACKUP_PORT_TRIES 32
#define BACKUP_CONNECT_SECS 30

/* The characters of /etc/machine-id in a host tag: two backup servers of
 * the same host name must not end each other's jobs. */
#define MACHINE_ID_TAG 8

/* This machine's name and the start of its machine-id as they go in
 * export names ("backup1.3d1219c7"): [A-Za-z0-9.-] only. */
static void
host_tag (char *buf, size_t len)
{
  char name[64] = "", id[MACHINE_ID_TAG + 1] = "", *p;
  FILE *f = fopen ("/etc/machine-id", "re");

  if (gethostname (name, sizeof name - 1) == -1 || !name[0])
    snprintf (name, sizeof name, "localhost");
  if (f && !fgets (id, sizeof id, f))
    id[0] = '\0';
  if (f)
    fclose (f);
  id[strspn (id, "0123456789abcdef")] = '\0';
  snprintf (buf, len, "%.*s%s%s", (int) (len - MACHINE_ID_TAG - 2), name,
            id[0] ? "." : "", id);
  for (p = buf; *p; p++)
    if (!isalnum ((unsigned char) *p) && *p != '.' && *p != '-')
      *p = '.';
}

int
backup_remote_init (struct backup_remote *rm, const char *uri,
                    const struct backup_opts *o)
{
  char pki[1024], tag[64];
  const char *dir;

  memset (rm, 0, sizeof *rm);
  if (backup_uri_host (uri, rm->host, sizeof rm->host, pki, sizeof pki) == -1)
    return -1;
  if (!rm->host[0])
    return 0;
  rm->insecure = o->insecure;
  dir = o->tls_dir && *o->tls_dir ? o->tls_dir : pki[0] ? pki : o->tls_dir_default;
  if (!rm->insecure && (!dir || !*dir)) {
    error_setx ("%s: no directory of TLS client certificates for the backup's "
                "NBD connection (give --tls-dir)", rm->host);
    return -1;
  }
  snprintf (rm->tls_dir, sizeof rm->tls_dir, "%s", dir ? dir : "");
  rm->port_min = o->nbd_port_min > 0 ? o->nbd_port_min : BACKUP_PORT_MIN;
  rm->port_max = o->nbd_port_max > 0 ? o->nbd_port_max : BACKUP_PORT_MAX;
  if (rm->port_min > rm->port_max || rm->port_max > 65535) {
    error_setx ("NBD port range %d-%d is not a range of TCP ports",
                rm->port_min, rm->port_max);
    return -1;
  }
  host_tag (tag, sizeof tag);
  snprintf (rm->export_prefix, sizeof rm->export_prefix,
            "bootback-backup-%ld-%s-", (long) getpid (), tag);
  rm->port = rm->port_min + getpid () % (rm->port_max - rm->port_min + 1);
  return 0;
}

int
backup_remote_check_tls (const struct backup_remote *rm)
{
  static const char *const files[] = {
    "ca-cert.pem", "client-cert.pem", "client-key.pem",
  };
  size_t i;

  if (rm->insecure)
    return 0;
  for (i = 0; i < sizeof files / sizeof files[0]; i++) {
    CLEANUP_FREE char *p = xasprintf ("%s/%s", rm->tls_dir, files[i]);
    if (access (p, R_OK) == -1) {
      error_setx ("TLS: %s: %s (the backup server's certificates for NBD "
                  "over TLS to %s: make them with bootback tls init, or give "
                  "--tls-dir)", p, strerror (errno), rm->host);
      return -1;
    }
  }
  return 0;
}

bool
backup_remote_next_port (struct backup_remote *rm, const char *failure)
{
  int span = rm->port_max - rm->port_min + 1;

  if (!strstr (failure, "Address already in use"))
    return false;
  rm->tries++;
  if (rm->tries >= MIN (span, BACKUP_PORT_TRIES)) {
    error_setx ("%s: no free port for the backup's NBD server: tried %d of "
                "%d-%d, all in use (widen --nbd-ports)", rm->host, rm->tries,
                rm->port_min, rm->port_max);
    rm->gave_up = true;
    return false;
  }
  rm->port = rm->port == rm->port_max ? rm->port_min : rm->port + 1;
  return true;
}

void
backup_remote_begin_failed (const struct backup_remote *rm, const char *domain,
                            const char *failure)
{
  if (!rm->host[0] || rm->gave_up)
    return;
  if (strstr (failure, "TLS directory not configured"))
    error_setx ("%s: host %s has no TLS certificates for the backup's NBD "
                "server: set backup_tls_x509_cert_dir (or "
                "default_tls_x509_cert_dir) in its qemu.conf; plaintext NBD "
                "only with --insecure (%s)", domain, rm->host, failure);
  else if (strstr (failure, "bind") || strstr (failure, "resolution"))
    error_setx ("%s: the backup's NBD server cannot listen on %s:%d on the "
                "domain's host (the URI's host name must be one of its "
                "addresses): %s", domain, rm->host, rm->port, failure);
}

int
backup_remote_owner (const char *prefix, long *pid, char *host, size_t len)
{
  int n = 0;

  *pid = 0;
  host[0] = '\0';
  if (sscanf (prefix, "bootback-backup-%ld-%n", pid, &n) != 1 || n == 0 ||
      *pid <= 0 || strlen (prefix + n) < 2)
    return -1;
  snprintf (host, len, "%.*s", (int) strlen (prefix + n) - 1, prefix + n);
  return 0;
}

bool
backup_remote_owner_is_me (const char *host)
{
  char tag[64];

  host_tag (tag, sizeof tag);
  return strcmp (tag, host) == 0;
}

int
backup_job_owner (const char *xml, bool remote, long *pid, char *host,
                  size_t hlen, char *dir, size_t dlen)
{
  char sock[1024], prefix[256], *slash;
  const char *base;

  *pid = 0;
  host[0] = dir[0] = '\0';
  if (backup_xml_job_socket (xml, sock, sizeof sock) == -1)
    return -1;
  if (sock[0] && remote)        /* a path of that host: nothing here */
    return 0;
  if (!sock[0]) {               /* TCP: the export names say */
    if (backup_xml_job_export (xml, prefix, sizeof prefix) == -1)
      return -1;
    if (backup_remote_owner (prefix, pid, host, hlen) == -1)
      *pid = 0;
    if (*pid == 0 || backup_remote_owner_is_me (host))
      host[0] = '\0';
    return 0;
  }
  snprintf (dir, dlen, "%s", sock);
  slash = strrchr (dir, '/');
  if (slash)
    *slash = '\0';
  base = strrchr (dir, '/');
  base = base ? base + 1 : dir;
  if (sscanf (base, "bootback-backup-%ld-", pid) != 1 || *pid < 0)
    *pid = 0;
  return 0;
}

/* Wait until h, connecting, is ready: 0, -1 (libnbd's error), or -2 when
 * the deadline passed. */
static int
wait_ready (struct nbd_handle *h, double secs)
{
  double end = now_monotonic () + secs;

  while (nbd_aio_is_connecting (h)) {
    int left = (int) ((end - now_monotonic ()) * 1000);
    if (left <= 0)
      return -2;
    chunk_nbd_quickack (h);
    if (nbd_poll (h, left) == -1)
      return -1;
  }
  return nbd_aio_is_ready (h) ? 0 : -1;
}

int
backup_remote_connect (const struct chunk_job *j, struct nbd_handle *h)
{
  const struct backup_remote *rm = j->connect_opaque;
  char port[16];
  int r = -1;

  snprintf (port, sizeof port, "%d", rm->port);
  if (!rm->insecure &&
      (nbd_set_tls (h, LIBNBD_TLS_REQUIRE) == -1 ||
       nbd_set_tls_certificates (h, rm->tls_dir) == -1))
    goto err;
  if (nbd_aio_connect_tcp (h, rm->host, port) == -1)
    goto err;
  r = wait_ready (h, BACKUP_CONNECT_SECS);
  if (r == 0)
    return 0;
 err:
  if (r == -2)
    error_setx ("%s: no connection to the NBD export at %s:%s within %d s "
                "(is TCP port %s of %s open to this machine?)", j->what,
                rm->host, port, BACKUP_CONNECT_SECS, port, rm->host);
  else if (rm->insecure)
    error_setx ("%s: cannot connect to the NBD export at %s:%s (plaintext, "
                "--insecure): %s", j->what, rm->host, port, nbd_get_error ());
  else
    error_setx ("%s: cannot connect to the NBD export at %s:%s over TLS "
                "(client certificates in %s): %s", j->what, rm->host, port,
                rm->tls_dir, nbd_get_error ());
  return -1;
}
