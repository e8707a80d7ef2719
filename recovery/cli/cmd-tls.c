/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback tls init: the x509 certificates for NBD and libvirt over TLS,
 * made with OpenSSL's API (no certtool), in one directory laid out as
 * QEMU (tls-creds-x509 dir=), nbdkit (--tls-certificates) and libnbd
 * (tls-certificates=) read it, with libvirt's names beside them (the
 * pkipath= of a qemu+tls:// URI):
 *
 *   ca-cert.pem      the CA (cacert.pem: the same, libvirt's name)
 *   ca-key.pem       its key: 0600, needed only to issue more
 *   server-cert.pem  serverAuth, subjectAltName = the --hosts names and
 *                    addresses (servercert.pem; serverkey.pem)
 *   server-key.pem
 *   client-cert.pem  clientAuth, O=bootback,CN=bootback-server: the
 *   client-key.pem   backup server's identity, the one DN a host's
 *                    libvirtd accepts (tls_allowed_dn_list); older
 *                    directories' CN=bootback is kept (clientcert.pem;
 *                    clientkey.pem)
 *   dh-params.pem    the RFC 7919 group ffdhe2048 (0644): QEMU's TLS
 *                    servers (a backup job's NBD server) read it, and
 *                    without it generate new 2048-bit parameters each
 *                    time one starts (0.5 to 4 s per remote backup)
 *
 * The directory is 0700, keys 0600 (O_EXCL, never through a link),
 * certificates 0644, and it and every directory above it must be root's
 * or the user's and writable by its owner only (those above may be
 * sticky: dir_chain_private, as for migrate's and restore's targets), for
 * --dir and tls host's --out alike; it is used by its resolved path from
 * the check on.  What is there is
 * kept: an existing CA (ca-cert.pem and ca-key.pem) issues the missing
 * server and client pairs; existing pairs are checked against the CA
 * (signature, dates) and kept.  Nothing is overwritten.  ECDSA P-256
 * keys, SHA-256; the CA for 10 years, the others for 825 days.  Not RSA:
 * both ends of every TLS handshake sign with their key (mutual
 * authentication), and RSA 3072 signing made a handshake cost about
 * 45 ms of CPU against 5 ms with P-256 (measured with libnbd and nbdkit
 * on the 2 cores of the test machine), paid by the libvirt connection
 * and each NBD connection of a remote backup, on both hosts.  The leaf
 * certificates keep keyEncipherment beside digitalSignature in their
 * critical keyUsage: libvirt and QEMU refuse a certificate without it,
 * whatever its key type.  Directories made with RSA keys (older
 * bootbacks, or the user's CA) are kept and work as before.
 *
 * bootback tls host NAME [ADDR...] --out HOSTDIR: a hypervisor host's
 * directory, issued by the CA of DIR: ca-cert.pem (no key), a server
 * certificate for NAME and ADDR (its libvirtd, its backup jobs' NBD
 * server), dh-params.pem, and a client certificate CN=bootback-qemu-NAME
 * for its QEMU (reading the TLS NBD fronts of remote instant sessions).
 * Never the CA's key nor the backup server's client key: a guest that
 * escapes into QEMU there gets an identity no libvirtd accepts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "recovery/cli/cli.h"

#define TLS_EC_CURVE "P-256"
#define TLS_CA_DAYS 3650
#define TLS_LEAF_DAYS 825
#define TLS_SAN_MAX 4096

static const char tls_usage[] =
  "usage: bootback tls init [--dir DIR] [--hosts NAME...]\n"
  "       bootback tls host NAME [ADDR...] --out HOSTDIR [--dir DIR]\n"
  "\n"
  "Make a CA and server and client certificates for NBD and libvirt over\n"
  "TLS in DIR (default HOME/tls): ca-cert.pem, server-cert.pem,\n"
  "server-key.pem, client-cert.pem, client-key.pem, dh-params.pem, as QEMU,\n"
  "nbdkit and libnbd read them, and libvirt's names (cacert.pem, ...)\n"
  "beside them.  Keys 0600, the directory 0700; DIR (and HOSTDIR) must be\n"
  "root's or yours, and so every directory above, writable by its owner\n"
  "only (those above may be sticky, as /tmp).  What DIR holds is kept:\n"
  "an existing CA issues the missing certificates, existing ones are\n"
  "checked against it.  The client certificate (CN=bootback-server) is the\n"
  "backup server's: it stays on this host.\n"
  "\n"
  "tls host: a hypervisor host's directory HOSTDIR, issued by the CA of DIR:\n"
  "ca-cert.pem, a server certificate for NAME and the ADDRs (libvirtd, the\n"
  "backup jobs' NBD server), dh-params.pem and a client certificate\n"
  "CN=bootback-qemu-NAME for its QEMU; no CA key, no backup server's key.\n"
  "\n"
  "  --dir DIR          where the files go (created if missing); for tls host,\n"
  "                     the CA's directory\n"
  "  --hosts NAME...    the server certificate's names and IP addresses\n"
  "                     (default: this host's name, localhost, 127.0.0.1)\n"
  "  --out HOSTDIR      tls host: the host's directory (created if missing)\n";

/* OpenSSL's first queued error into bootback's: "WHAT: MESSAGE". */
static int
ssl_fail (const char *what)
{
  char buf[256];
  unsigned long e = ERR_get_error ();

  ERR_error_string_n (e, buf, sizeof buf);
  error_setx ("%s: %s", what, e ? buf : "OpenSSL failed");
  ERR_clear_error ();
  return -1;
}

static int
add_ext (X509 *crt, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;

  X509V3_set_ctx (&ctx, issuer, crt, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (!ext || !X509_add_ext (crt, ext, -1)) {
    X509_EXTENSION_free (ext);
    return ssl_fail ("x509 extension");
  }
  X509_EXTENSION_free (ext);
  return 0;
}

/* What a certificate is for: its subject, extensions and lifetime. */
struct cert_spec {
  const char *cn;
  bool ca;
  const char *eku;              /* "serverAuth", "clientAuth", NULL */
  const char *san;              /* "DNS:a,IP:1.2.3.4" or NULL */
};

/* A new certificate of spec for key, signed by ca_key (issuer: ca, or
 * itself if NULL).  NULL with the error. */
static X509 *
make_cert (const struct cert_spec *s, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
  X509 *crt = X509_new ();
  X509_NAME *name = X509_NAME_new ();
  unsigned char serial[16];
  BIGNUM *bn = NULL;
  bool ok;

  ok = crt && name && RAND_bytes (serial, sizeof serial) == 1 &&
    (serial[0] &= 0x7f, (bn = BN_bin2bn (serial, sizeof serial, NULL)) != NULL) &&
    BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (crt)) &&
    X509_set_version (crt, 2) &&
    X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8,
                                (const unsigned char *) "bootback", -1, -1, 0) &&
    X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8,
                                (const unsigned char *) s->cn, -1, -1, 0) &&
    X509_set_subject_name (crt, name) &&
    X509_set_issuer_name (crt, ca ? X509_get_subject_name (ca) : name) &&
    X509_gmtime_adj (X509_getm_notBefore (crt), -3600) &&
    X509_gmtime_adj (X509_getm_notAfter (crt),
                     86400L * (s->ca ? TLS_CA_DAYS : TLS_LEAF_DAYS)) &&
    X509_set_pubkey (crt, key);
  BN_free (bn);
  X509_NAME_free (name);
  if (!ok) {
    ssl_fail ("x509 certificate");
    goto fail;
  }
  ca = ca ? ca : crt;
  if (add_ext (crt, ca, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
      add_ext (crt, ca, NID_key_usage, s->ca ? "critical,keyCertSign,cRLSign"
               : "critical,digitalSignature,keyEncipherment") ||
      add_ext (crt, ca, NID_subject_key_identifier, "hash") ||
      (!s->ca && add_ext (crt, ca, NID_authority_key_identifier, "keyid")) ||
      (s->eku && add_ext (crt, ca, NID_ext_key_usage, s->eku)) ||
      (s->san && add_ext (crt, ca, NID_subject_alt_name, s->san)))
    goto fail;
  if (X509_sign (crt, ca_key, EVP_sha256 ()) <= 0) {
    ssl_fail ("x509 signature");
    goto fail;
  }
  return crt;
 fail:
  X509_free (crt);
  return NULL;
}

/* OpenSSL writes parameters to a BIO only. */
static int
write_params (FILE *f, EVP_PKEY *params)
{
  BIO *b = BIO_new_fp (f, BIO_NOCLOSE);
  int ok = b && PEM_write_bio_Parameters (b, params);

  BIO_free (b);
  return ok;
}

/* Write a key (0600), a certificate or parameters (0644) as DIR/NAME,
 * which must not exist.  -1 with the error. */
static int
write_pem (const char *dir, const char *name, EVP_PKEY *key, X509 *crt,
           EVP_PKEY *params)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s", dir, name);
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 key ? 0600 : 0644);
  FILE *f = fd >= 0 ? fdopen (fd, "w") : NULL;
  bool ok;

  if (!f) {
    error_set (errno, "%s", path);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  ok = key ? PEM_write_PrivateKey (f, key, NULL, NULL, 0, NULL, NULL)
    : params ? write_params (f, params) : PEM_write_X509 (f, crt);
  if (fclose (f) != 0 || !ok) {
    unlink (path);
    return ok ? (error_set (errno, "%s", path), -1) : ssl_fail (path);
  }
  return 0;
}

static X509 *
read_cert (const char *path)
{
  FILE *f = fopen (path, "re");
  X509 *x = f ? PEM_read_X509 (f, NULL, NULL, NULL) : NULL;

  if (!f)
    error_set (errno, "%s", path);
  else if (!x)
    ssl_fail (path);
  if (f)
    fclose (f);
  return x;
}

static EVP_PKEY *
read_key (const char *path)
{
  FILE *f = fopen (path, "re");
  EVP_PKEY *k = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;

  if (!f)
    error_set (errno, "%s", path);
  else if (!k)
    ssl_fail (path);
  if (f)
    fclose (f);
  return k;
}

static bool
exists (const char *dir, const char *name)
{
  CLEANUP_FREE char *p = xasprintf ("%s/%s", dir, name);

  return access (p, F_OK) == 0;
}

/* The directory being filled, and its CA. */
struct tls_dir {
  const char *dir;
  X509 *ca;
  EVP_PKEY *ca_key;             /* NULL: an existing CA without its key */
};

/* An existing NAME-cert.pem / NAME-key.pem pair: signed by the CA, in
 * date, the key its own.  -1 with the error naming the file. */
static int
check_pair (struct tls_dir *t, const char *name)
{
  CLEANUP_FREE char *cp = xasprintf ("%s/%s-cert.pem", t->dir, name);
  CLEANUP_FREE char *kp = xasprintf ("%s/%s-key.pem", t->dir, name);
  X509 *crt = read_cert (cp);
  EVP_PKEY *k = crt ? read_key (kp) : NULL;
  int r = -1;

  if (!k)
    ;
  else if (X509_verify (crt, X509_get0_pubkey (t->ca)) != 1)
    error_setx ("%s is not signed by the CA %s/ca-cert.pem", cp, t->dir);
  else if (X509_check_private_key (crt, k) != 1)
    error_setx ("%s is not the key of %s", kp, cp);
  else if (X509_cmp_current_time (X509_get0_notAfter (crt)) <= 0)
    error_setx ("%s has expired", cp);
  else
    r = 0;
  ERR_clear_error ();
  X509_free (crt);
  EVP_PKEY_free (k);
  return r;
}

/* The CN of DIR/NAME-cert.pem into buf ("" if it cannot be read). */
static void
pair_cn (const char *dir, const char *name, char *buf, size_t len)
{
  CLEANUP_FREE char *cp = xasprintf ("%s/%s-cert.pem", dir, name);
  X509 *crt = read_cert (cp);

  if (!crt || X509_NAME_get_text_by_NID (X509_get_subject_name (crt), NID_commonName,
                                         buf, len) < 0)
    buf[0] = '\0';
  ERR_clear_error ();
  X509_free (crt);
}

/* A new key and certificate NAME-key.pem / NAME-cert.pem from the CA. */
static int
issue_pair (struct tls_dir *t, const char *name, const struct cert_spec *s)
{
  CLEANUP_FREE char *kn = xasprintf ("%s-key.pem", name);
  CLEANUP_FREE char *cn = xasprintf ("%s-cert.pem", name);
  EVP_PKEY *k;
  X509 *crt = NULL;
  int r = -1;

  if (!t->ca_key) {
    error_setx ("%s/%s is missing, and the CA's key %s/ca-key.pem is not there to "
                "issue it", t->dir, cn, t->dir);
    return -1;
  }
  k = EVP_EC_gen (TLS_EC_CURVE);
  if (!k)
    return ssl_fail ("ECDSA key");
  crt = make_cert (s, k, t->ca, t->ca_key);
  if (crt && write_pem (t->dir, kn, k, NULL, NULL) == 0 &&
      write_pem (t->dir, cn, NULL, crt, NULL) == 0)
    r = 0;
  X509_free (crt);
  EVP_PKEY_free (k);
  return r;
}

/* The CA: the one in the directory, or a new one. */
static int
ensure_ca (struct tls_dir *t, bool *made)
{
  CLEANUP_FREE char *cp = xasprintf ("%s/ca-cert.pem", t->dir);
  CLEANUP_FREE char *kp = xasprintf ("%s/ca-key.pem", t->dir);
  const struct cert_spec s = { "bootback CA", true, NULL, NULL };

  *made = false;
  if (exists (t->dir, "ca-cert.pem")) {
    t->ca = read_cert (cp);
    if (t->ca && exists (t->dir, "ca-key.pem"))
      t->ca_key = read_key (kp);
    return t->ca && (t->ca_key || !exists (t->dir, "ca-key.pem")) ? 0 : -1;
  }
  if (exists (t->dir, "ca-key.pem")) {
    error_setx ("%s is there without %s: refusing to replace it", kp, cp);
    return -1;
  }
  t->ca_key = EVP_EC_gen (TLS_EC_CURVE);
  if (!t->ca_key)
    return ssl_fail ("ECDSA key");
  t->ca = make_cert (&s, t->ca_key, NULL, t->ca_key);
  *made = true;
  return t->ca && write_pem (t->dir, "ca-key.pem", t->ca_key, NULL, NULL) == 0 &&
    write_pem (t->dir, "ca-cert.pem", NULL, t->ca, NULL) == 0 ? 0 : -1;
}

/* dh-params.pem (see the top): the known group, nothing to generate. */
static int
ensure_dh_params (const char *dir)
{
  EVP_PKEY_CTX *ctx;
  EVP_PKEY *p = NULL;
  int r;

  if (exists (dir, "dh-params.pem"))
    return 0;
  ctx = EVP_PKEY_CTX_new_from_name (NULL, "DH", NULL);
  if (!ctx || EVP_PKEY_paramgen_init (ctx) <= 0 ||
      EVP_PKEY_CTX_set_dh_nid (ctx, NID_ffdhe2048) <= 0 ||
      EVP_PKEY_paramgen (ctx, &p) <= 0) {
    EVP_PKEY_CTX_free (ctx);
    return ssl_fail ("DH parameters ffdhe2048");
  }
  EVP_PKEY_CTX_free (ctx);
  r = write_pem (dir, "dh-params.pem", NULL, NULL, p);
  EVP_PKEY_free (p);
  if (r == 0)
    printf ("made %s/dh-params.pem (ffdhe2048)\n", dir);
  return r;
}

/* libvirt's names for the same files (pkipath=DIR), as symbolic links;
 * a name already there is left alone. */
static void
link_libvirt_names (const char *dir)
{
  static const char *const names[][2] = {
    { "cacert.pem", "ca-cert.pem" }, { "servercert.pem", "server-cert.pem" },
    { "serverkey.pem", "server-key.pem" }, { "clientcert.pem", "client-cert.pem" },
    { "clientkey.pem", "client-key.pem" },
  };
  size_t i;

  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    CLEANUP_FREE char *p = xasprintf ("%s/%s", dir, names[i][0]);
    if (symlink (names[i][1], p) == -1 && errno != EEXIST)
      cli_error ("warning: %s: %s", p, strerror (errno));
  }
}

/* The server certificate's subjectAltName from the host names and
 * addresses: "DNS:a,IP:127.0.0.1".  -1 (said) on a name that is neither. */
static int
make_san (char **hosts, size_t n, char *san, size_t len)
{
  size_t i, used = 0;
  unsigned char a[16];

  san[0] = '\0';
  for (i = 0; i < n; i++) {
    const char *h = hosts[i];
    bool ip = inet_pton (AF_INET, h, a) == 1 || inet_pton (AF_INET6, h, a) == 1;
    if (!ip && (!h[0] || strspn (h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789.-") != strlen (h))) {
      cli_error ("--hosts %s: not a host name or an IP address", h);
      return -1;
    }
    used += snprintf (san + used, len - MIN (used, len), "%s%s:%s", i ? "," : "",
                      ip ? "IP" : "DNS", h);
    if (used >= len) {
      cli_error ("--hosts: too many names");
      return -1;
    }
  }
  return 0;
}

/* An existing DIR (links resolved into rdir, the name used from then on)
 * that only root or we can change: DIR and every directory above it
 * root's or ours, written by its owner only (those above may be sticky),
 * as dir_chain_private requires of migrate's and restore's targets;
 * else whoever could rename an entry could swap a key or the CA's
 * certificate after it is written, or read one.  DIR itself 0700. */
static int
private_dir (const char *dir, char *rdir, size_t len)
{
  CLEANUP_FREE char *probe = xasprintf ("%s/ca-key.pem", dir);
  struct stat st;

  if (dir_chain_private (probe, rdir, len) == -1) {
    cli_perror ();
    return -1;
  }
  *strrchr (rdir, '/') = '\0';
  if (lstat (rdir, &st) == -1 || !S_ISDIR (st.st_mode)) {
    cli_error ("%s is not a directory", dir);
    return -1;
  }
  if (st.st_mode & 077) {
    cli_error ("%s is mode %04o: keys go only into a directory of mode 0700 "
               "(chmod 700 %s)", dir, (unsigned) st.st_mode & 07777, dir);
    return -1;
  }
  return 0;
}

/* DIR made 0700 if missing, then private_dir. */
static int
prepare_dir (const char *dir, char *rdir, size_t len)
{
  if (mkdir (dir, 0700) == -1 && errno != EEXIST) {
    cli_error ("%s: %s", dir, strerror (errno));
    return -1;
  }
  return private_dir (dir, rdir, len);
}

/* The server or client pair: checked if there, else issued.  Says which. */
static int
ensure_pair (struct tls_dir *t, const char *name, const struct cert_spec *s)
{
  CLEANUP_FREE char *cn = xasprintf ("%s-cert.pem", name);
  bool had = exists (t->dir, cn);

  if ((had ? check_pair (t, name) : issue_pair (t, name, s)) == -1) {
    cli_perror ();
    return -1;
  }
  printf ("%s %s/%s-cert.pem and %s-key.pem%s\n", had ? "kept" : "made", t->dir, name,
          name, had ? " (signed by the CA, in date)" : "");
  return 0;
}

/* The files every directory gets after its certificates. */
static int
finish_dir (const char *dir)
{
  if (ensure_dh_params (dir) == -1) {
    cli_perror ();
    return 1;
  }
  link_libvirt_names (dir);
  return 0;
}

/* An older bootback's client certificate: CN=bootback, which a host's
 * libvirtd allowing only CN=bootback-server refuses.  Kept, with a note. */
static void
note_old_client (const char *dir)
{
  char cn[256];

  pair_cn (dir, "client", cn, sizeof cn);
  if (strcmp (cn, "bootback") == 0)
    printf ("note: %s/client-cert.pem is CN=bootback (older bootback): a host's libvirtd "
            "with tls_allowed_dn_list = [\"O=bootback,CN=bootback-server\"] refuses it; "
            "to re-issue it, move client-cert.pem and client-key.pem away and run tls "
            "init again\n", dir);
}

static int
tls_init (const char *given, char **hosts, size_t n)
{
  char dir[PATH_MAX];
  struct tls_dir t = { .dir = dir };
  char san[TLS_SAN_MAX];
  const struct cert_spec server = { hosts[0], false, "serverAuth", san };
  const struct cert_spec client = { "bootback-server", false, "clientAuth", NULL };
  bool made;
  int r = 1;

  if (make_san (hosts, n, san, sizeof san) == -1 ||
      prepare_dir (given, dir, sizeof dir) == -1)
    return 1;
  if (ensure_ca (&t, &made) == -1) {
    cli_perror ();
    goto out;
  }
  printf ("%s %s/ca-cert.pem%s\n", made ? "made" : "kept", dir,
          made ? " and ca-key.pem" : t.ca_key ? "" : " (no ca-key.pem: can check, not issue)");
  made = !exists (dir, "server-cert.pem");
  if (ensure_pair (&t, "server", &server) == 0 && ensure_pair (&t, "client", &client) == 0 &&
      (r = finish_dir (dir)) == 0) {
    note_old_client (dir);
    if (made)
      printf ("server names: %s\n", san);
  }
 out:
  X509_free (t.ca);
  EVP_PKEY_free (t.ca_key);
  return r;
}

/* The CA of t->dir with its key, to issue a host's certificates. */
static int
load_ca (struct tls_dir *t)
{
  CLEANUP_FREE char *cp = xasprintf ("%s/ca-cert.pem", t->dir);
  CLEANUP_FREE char *kp = xasprintf ("%s/ca-key.pem", t->dir);

  t->ca = read_cert (cp);
  t->ca_key = t->ca ? read_key (kp) : NULL;
  return t->ca_key ? 0 : -1;
}

/* t->dir/ca-cert.pem: the CA's certificate, written or the same one. */
static int
put_ca_cert (struct tls_dir *t)
{
  CLEANUP_FREE char *cp = xasprintf ("%s/ca-cert.pem", t->dir);
  X509 *had;
  int r;

  if (!exists (t->dir, "ca-cert.pem")) {
    r = write_pem (t->dir, "ca-cert.pem", NULL, t->ca, NULL);
    if (r == 0)
      printf ("made %s (the CA's certificate, not its key)\n", cp);
    return r;
  }
  had = read_cert (cp);
  r = had && X509_cmp (had, t->ca) == 0 ? 0 : -1;
  if (had && r == -1)
    error_setx ("%s is another CA's certificate", cp);
  X509_free (had);
  return r;
}

/* A host's directory: no CA key, and no client certificate but its
 * QEMU's (an older layout had the backup server's there). */
static int
check_host_dir (const char *dir, const char *cn)
{
  char had[256];

  if (exists (dir, "ca-key.pem")) {
    cli_error ("%s holds a CA key: a host's directory must not; give another --out", dir);
    return -1;
  }
  if (!exists (dir, "client-cert.pem"))
    return 0;
  pair_cn (dir, "client", had, sizeof had);
  if (strcmp (had, cn) == 0)
    return 0;
  cli_error ("%s/client-cert.pem is CN=%s, not %s: a hypervisor host must hold no other "
             "identity (the backup server's?); remove client-cert.pem and client-key.pem "
             "there and run again", dir, had, cn);
  return -1;
}

static int
tls_host (const char *given, const char *given_out, char **hosts, size_t n)
{
  char dir[PATH_MAX], out[PATH_MAX];
  struct tls_dir t = { .dir = dir };
  char san[TLS_SAN_MAX];
  CLEANUP_FREE char *cn = xasprintf ("bootback-qemu-%s", hosts[0]);
  const struct cert_spec server = { hosts[0], false, "serverAuth", san };
  const struct cert_spec client = { cn, false, "clientAuth", NULL };
  int r = 1;

  /* The CA's directory too: a CA swapped there would be the host's. */
  if (make_san (hosts, n, san, sizeof san) == -1 ||
      private_dir (given, dir, sizeof dir) == -1)
    return 1;
  if (load_ca (&t) == -1) {
    cli_perror ();
    goto out;
  }
  if (prepare_dir (given_out, out, sizeof out) == -1 || check_host_dir (out, cn) == -1)
    goto out;
  t.dir = out;
  if (put_ca_cert (&t) == -1)
    cli_perror ();
  else if (ensure_pair (&t, "server", &server) == 0 &&
           ensure_pair (&t, "client", &client) == 0)
    r = finish_dir (out);
 out:
  X509_free (t.ca);
  EVP_PKEY_free (t.ca_key);
  return r;
}

int
cmd_tls (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "dir", required_argument, NULL, 'd' },
    { "hosts", required_argument, NULL, 'H' },
    { "out", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { 0 }
  };
  CLEANUP_FREE char *dflt = NULL;
  CLEANUP_FREE char **hosts = NULL;
  char me[256];
  size_t n = 0;
  int opt;
  const char *dir = NULL, *out = NULL;
  bool host;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1) {
    switch (opt) {
    case 'd': dir = optarg; break;
    case 'o': out = optarg; break;
    case 'H':
      hosts = xrealloc (hosts, (n + 1) * sizeof *hosts);
      hosts[n++] = optarg;
      break;
    case 'h': cli_usage (tls_usage);
    default: cli_bad_usage (tls_usage);
    }
  }
  if (argc - optind < 1)
    cli_bad_usage (tls_usage);
  host = strcmp (argv[optind], "host") == 0;
  if ((!host && strcmp (argv[optind], "init") != 0) || (host != (out != NULL)) ||
      (!host && argc - optind > 1 && n == 0) || (host && argc - optind < 2))
    cli_bad_usage (tls_usage);
  for (optind++; optind < argc; optind++) {      /* --hosts a b c; host NAME ADDR */
    hosts = xrealloc (hosts, (n + 1) * sizeof *hosts);
    hosts[n++] = argv[optind];
  }
  if (n == 0) {
    hosts = xcalloc (3, sizeof *hosts);
    if (gethostname (me, sizeof me) == 0 && me[0])
      hosts[n++] = me;
    hosts[n++] = "localhost";
    hosts[n++] = "127.0.0.1";
  }
  if (!dir) {
    if (cli_catalog (c) == -1)      /* makes HOME if it is not there */
      return 1;
    dir = dflt = xasprintf ("%s/tls", c->home);
  }
  return host ? tls_host (dir, out, hosts, n) : tls_init (dir, hosts, n);
}
