/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Signed reports: the appliance's Ed25519 key and detached signatures.
 *
 * The key: HOME/keys/report-ed25519.pem (PKCS#8 PEM, 0600, the directory
 * 0700), its public half HOME/keys/report-ed25519.pub.pem for auditors to
 * copy.  Made on first use; two runs making it at once each write a
 * temporary file and rename it into place without replacing, so the
 * second finds the first's key and uses that one (one key, always).  A
 * key file is read only if it is a regular file owned by us, mode 0600 or
 * stricter, holding an Ed25519 private key; anything else is refused
 * (a key others could read signs nothing).
 *
 * A signature: FILE.sig, text, over FILE's exact bytes (verify.h,
 * verify_sign_file).  The key it names is the fingerprint (SHA-256 of the
 * raw public key), so a check can tell "changed" from "another key".
 *
 * What signing proves: a signed file is as the appliance wrote it, unless
 * someone who can read the private key (root on the appliance) signed it
 * again.  Auditors keep the public key (or its fingerprint) apart from
 * the reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

#define SIG_FORMAT "bootback-signature: 1"
#define SIG_ALGORITHM "ed25519"
#define ED25519_SIG_LEN 64
#define ED25519_KEY_LEN 32
/* Reports hold screenshots inline; bigger is not a report. */
#define SIGNED_FILE_MAX ((size_t) 1 << 30)

struct verify_key {
  EVP_PKEY *pkey;
  char fpr[VERIFY_KEY_FPR_LEN + 1];
};

void
verify_key_free (struct verify_key *k)
{
  if (!k)
    return;
  EVP_PKEY_free (k->pkey);
  free (k);
}

const char *
verify_key_fingerprint (const struct verify_key *k)
{
  return k->fpr;
}

/* Wrap pkey (taken over): an Ed25519 key with its fingerprint, or NULL
 * with the error naming path. */
static struct verify_key *
key_wrap (EVP_PKEY *pkey, const char *path)
{
  unsigned char raw[ED25519_KEY_LEN], md[EVP_MAX_MD_SIZE];
  size_t len = sizeof raw;
  unsigned int mdlen;
  struct verify_key *k;

  if (EVP_PKEY_get_base_id (pkey) != EVP_PKEY_ED25519) {
    error_setx ("key %s: a %s key, expected Ed25519", path,
                OBJ_nid2sn (EVP_PKEY_get_base_id (pkey)));
    EVP_PKEY_free (pkey);
    return NULL;
  }
  if (EVP_PKEY_get_raw_public_key (pkey, raw, &len) != 1 ||
      len != ED25519_KEY_LEN ||
      EVP_Digest (raw, len, md, &mdlen, EVP_sha256 (), NULL) != 1) {
    error_setx ("key %s: cannot read its public key", path);
    EVP_PKEY_free (pkey);
    return NULL;
  }
  k = xcalloc (1, sizeof *k);
  k->pkey = pkey;
  memcpy (k->fpr, "SHA256:", 7);
  hex_encode (md, mdlen, k->fpr + 7);
  return k;
}

/* Open path for reading if it is a private file of ours: a regular file
 * (no symlink), our uid, no group or other permissions. */
static FILE *
open_key_file (const char *path)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  struct stat st;
  FILE *f;

  if (fd == -1) {
    error_set (errno, "key %s", path);
    return NULL;
  }
  if (fstat (fd, &st) == -1) {
    error_set (errno, "key %s", path);
    close (fd);
    return NULL;
  }
  if (!S_ISREG (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 077)) {
    error_setx ("key %s: refused: mode %04o, owner %u; a signing key must be a "
                "regular file of uid %u with mode 0600", path,
                (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid,
                (unsigned) geteuid ());
    close (fd);
    return NULL;
  }
  f = fdopen (fd, "r");
  if (!f) {
    error_set (errno, "key %s", path);
    close (fd);
  }
  return f;
}

static struct verify_key *
key_read_private (const char *path)
{
  FILE *f = open_key_file (path);
  EVP_PKEY *pkey;

  if (!f)
    return NULL;
  pkey = PEM_read_PrivateKey (f, NULL, NULL, NULL);
  fclose (f);
  if (!pkey) {
    error_setx ("key %s: not a PEM private key", path);
    return NULL;
  }
  return key_wrap (pkey, path);
}

struct verify_key *
verify_key_public (const char *path)
{
  FILE *f = fopen (path, "re");
  EVP_PKEY *pkey;

  if (!f) {
    error_set (errno, "key %s", path);
    return NULL;
  }
  pkey = PEM_read_PUBKEY (f, NULL, NULL, NULL);
  fclose (f);
  if (!pkey) {
    error_setx ("key %s: not a PEM public key", path);
    return NULL;
  }
  return key_wrap (pkey, path);
}

/* Write a PEM (public or private half of pkey) to tmp, 0600, synced. */
static int
pem_write (const char *tmp, EVP_PKEY *pkey, bool private)
{
  int fd = open_private (tmp, O_WRONLY | O_EXCL);
  FILE *f;
  int ok;

  if (fd == -1) {
    error_set (errno, "key %s", tmp);
    return -1;
  }
  f = fdopen (fd, "w");
  if (!f) {
    error_set (errno, "key %s", tmp);
    close (fd);
    unlink (tmp);
    return -1;
  }
  errno = 0;
  ok = private ? PEM_write_PrivateKey (f, pkey, NULL, NULL, 0, NULL, NULL)
               : PEM_write_PUBKEY (f, pkey);
  if (!ok || fflush (f) != 0 || fsync (fileno (f)) == -1) {
    error_set (errno ? errno : EIO, "key %s: write", tmp);
    fclose (f);
    unlink (tmp);
    return -1;
  }
  if (fclose (f) != 0) {
    error_set (errno, "key %s: write", tmp);
    unlink (tmp);
    return -1;
  }
  return 0;
}

/* Make a new key as path unless one appeared meanwhile: 0 either way. */
static int
key_make (const char *path)
{
  CLEANUP_FREE char *tmp = xasprintf ("%s.%d.tmp", path, (int) getpid ());
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  int ret = 0;

  if (!pkey) {
    error_setx ("key %s: Ed25519 key generation failed", path);
    return -1;
  }
  unlink (tmp);                     /* of a process of ours that died */
  if (pem_write (tmp, pkey, true) == -1)
    ret = -1;
  else if (rename_noreplace (tmp, path) == -1) {
    if (errno != EEXIST) {
      error_set (errno, "key %s", path);
      ret = -1;
    }
    unlink (tmp);                   /* another run made it first: theirs */
  }
  EVP_PKEY_free (pkey);
  return ret;
}

/* The public half next to the private key, if it is not there yet; one
 * that is there must be k's (else reports would be signed with a key the
 * appliance does not show). */
static int
pubkey_write (const char *dir, const struct verify_key *k)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s", dir, VERIFY_PUBKEY_FILE);
  CLEANUP_FREE char *tmp = xasprintf ("%s.%d.tmp", path, (int) getpid ());
  struct verify_key *pub;
  struct stat st;

  if (lstat (path, &st) == 0) {
    bool same;
    if (!(pub = verify_key_public (path)))
      return -1;
    same = strcmp (pub->fpr, k->fpr) == 0;
    if (!same)
      error_setx ("key %s (%s) is not the public half of %s (%s): remove the "
                  "one that is wrong", path, pub->fpr, VERIFY_KEY_FILE, k->fpr);
    verify_key_free (pub);
    return same ? 0 : -1;
  }
  unlink (tmp);
  if (pem_write (tmp, k->pkey, false) == -1)
    return -1;
  if (chmod (tmp, 0644) == -1 || rename (tmp, path) == -1) {
    error_set (errno, "key %s", path);
    unlink (tmp);
    return -1;
  }
  return 0;
}

/* HOME/keys, made 0700; an existing one others can enter is refused. */
static char *
key_dir (const char *home)
{
  char *dir = xasprintf ("%s/%s", home, VERIFY_KEY_DIR);
  struct stat st;

  if (mkdir_p_private (dir) == -1)
    goto err;
  if (lstat (dir, &st) == -1) {
    error_set (errno, "key directory %s", dir);
    goto err;
  }
  if (!S_ISDIR (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 077)) {
    error_setx ("key directory %s: refused: mode %04o, owner %u; it must be a "
                "directory of uid %u with mode 0700", dir,
                (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid,
                (unsigned) geteuid ());
    goto err;
  }
  return dir;
 err:
  free (dir);
  return NULL;
}

struct verify_key *
verify_key_appliance (const char *home)
{
  CLEANUP_FREE char *dir = key_dir (home);
  CLEANUP_FREE char *path = NULL;
  struct verify_key *k;
  struct stat st;

  if (!dir)
    return NULL;
  path = xasprintf ("%s/%s", dir, VERIFY_KEY_FILE);
  if (lstat (path, &st) == -1) {
    if (errno != ENOENT) {
      error_set (errno, "key %s", path);
      return NULL;
    }
    if (key_make (path) == -1)
      return NULL;
  }
  k = key_read_private (path);
  if (k && pubkey_write (dir, k) == -1) {
    verify_key_free (k);
    return NULL;
  }
  return k;
}

/* ---- signatures ------------------------------------------------------------- */

int
verify_read_file (const char *path, int oflags, unsigned char **buf,
                  size_t *len)
{
  /* O_NONBLOCK: a FIFO in place of the file fails below, not hangs here */
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                               oflags);
  struct stat st;
  size_t got = 0;
  ssize_t n;

  if (fd == -1 || fstat (fd, &st) == -1) {
    error_set (errno, "%s", path);
    return -1;
  }
  if (!S_ISREG (st.st_mode) || (size_t) st.st_size > SIGNED_FILE_MAX) {
    error_setx ("%s: not a regular file of at most 1 GiB", path);
    return -1;
  }
  *buf = xmalloc (st.st_size + 1);
  while (got < (size_t) st.st_size &&
         (n = read (fd, *buf + got, st.st_size - got)) != 0) {
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1) {
      error_set (errno, "read %s", path);
      free (*buf);
      return -1;
    }
    got += n;
  }
  (*buf)[got] = '\0';
  *len = got;
  return 0;
}

static int
sign_bytes (const struct verify_key *k, const unsigned char *data, size_t len,
            unsigned char sig[ED25519_SIG_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  size_t siglen = ED25519_SIG_LEN;
  int ok;

  if (!ctx)
    abort ();
  ok = EVP_DigestSignInit (ctx, NULL, NULL, NULL, k->pkey) == 1 &&
       EVP_DigestSign (ctx, sig, &siglen, data, len) == 1 &&
       siglen == ED25519_SIG_LEN;
  EVP_MD_CTX_free (ctx);
  if (!ok) {
    error_setx ("Ed25519 signing failed (is the key a private key?)");
    return -1;
  }
  return 0;
}

int
verify_write_new (const char *tmp, const char *text)
{
  int fd;
  bool ok;
  FILE *f;

  unlink (tmp);
  if ((fd = open_private (tmp, O_WRONLY | O_EXCL)) == -1) {
    error_set (errno, "create %s", tmp);
    return -1;
  }
  if (!(f = fdopen (fd, "w"))) {
    error_set (errno, "create %s", tmp);
    close (fd);
    unlink (tmp);
    return -1;
  }
  ok = fputs (text, f) != EOF;
  if (fclose (f) != 0 || !ok) {
    error_set (errno ? errno : EIO, "write %s", tmp);
    unlink (tmp);
    return -1;
  }
  return 0;
}

int
verify_sign_file (const struct verify_key *k, const char *path)
{
  CLEANUP_FREE unsigned char *data = NULL;
  size_t len;

  if (verify_read_file (path, 0, &data, &len) == -1) {
    error_prefix ("sign %s", path);
    return -1;
  }
  return verify_sign_data (k, path, data, len);
}

int
verify_sign_data (const struct verify_key *k, const char *path, const void *data,
                  size_t len)
{
  CLEANUP_FREE char *sigpath = xasprintf ("%s%s", path, VERIFY_SIG_SUFFIX);
  CLEANUP_FREE char *text = NULL;
  unsigned char sig[ED25519_SIG_LEN], b64[4 * ((ED25519_SIG_LEN + 2) / 3) + 1];

  if (sign_bytes (k, data, len, sig) == -1)
    goto err;
  EVP_EncodeBlock (b64, sig, sizeof sig);
  text = xasprintf (SIG_FORMAT "\nalgorithm: " SIG_ALGORITHM "\nkey: %s\n"
                    "signature: %s\n", k->fpr, b64);
  {
    CLEANUP_FREE char *tmp = xasprintf ("%s.%d.tmp", sigpath, (int) getpid ());
    if (verify_write_new (tmp, text) == -1)
      goto err;
    if (rename (tmp, sigpath) == -1) {
      error_set (errno, "rename %s", sigpath);
      unlink (tmp);
      goto err;
    }
  }
  return 0;
 err:
  error_prefix ("sign %s", path);
  return -1;
}

const char *
verify_sig_verdict_name (enum verify_sig_verdict v)
{
  switch (v) {
  case VERIFY_SIG_GOOD: return "good";
  case VERIFY_SIG_CHANGED: return "changed";
  case VERIFY_SIG_OTHER_KEY: return "other-key";
  case VERIFY_SIG_MALFORMED: return "malformed";
  }
  return "?";
}

/* The value of "name: " in a signature file's text, into out; -1 if the
 * line is not there or the value too long. */
static int
sig_field (const char *text, const char *name, char *out, size_t len)
{
  size_t nl = strlen (name);
  const char *p = text, *end;

  for (; *p; p = *end ? end + 1 : end) {
    end = strchrnul (p, '\n');
    if (strncmp (p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
      p += nl + 2;
      if ((size_t) (end - p) >= len)
        return -1;
      snprintf (out, len, "%.*s", (int) (end - p), p);
      return 0;
    }
  }
  return -1;
}

/* Parse a signature file's text: the key it names and the signature. */
static int
sig_parse (const char *text, char key[VERIFY_KEY_FPR_LEN + 1],
           unsigned char sig[ED25519_SIG_LEN], char *msg, size_t len)
{
  char alg[32], b64[128];
  unsigned char raw[sizeof b64];
  int n;

  if (strncmp (text, SIG_FORMAT "\n", strlen (SIG_FORMAT) + 1) != 0) {
    snprintf (msg, len, "not a bootback signature (no \"%s\" line)", SIG_FORMAT);
    return -1;
  }
  if (sig_field (text, "algorithm", alg, sizeof alg) == -1 ||
      strcmp (alg, SIG_ALGORITHM) != 0) {
    snprintf (msg, len, "algorithm is not %s", SIG_ALGORITHM);
    return -1;
  }
  if (sig_field (text, "key", key, VERIFY_KEY_FPR_LEN + 1) == -1 ||
      strncmp (key, "SHA256:", 7) != 0 || strlen (key) != VERIFY_KEY_FPR_LEN) {
    key[0] = '\0';
    snprintf (msg, len, "no key fingerprint (key: SHA256:...)");
    return -1;
  }
  n = sig_field (text, "signature", b64, sizeof b64) == -1 ? -1
    : EVP_DecodeBlock (raw, (unsigned char *) b64, strlen (b64));
  /* base64 of 64 bytes is 88 characters, two of them '=' padding */
  if (n != ED25519_SIG_LEN + 2 || strlen (b64) != 88) {
    snprintf (msg, len, "no Ed25519 signature (signature: base64 of 64 bytes)");
    return -1;
  }
  memcpy (sig, raw, ED25519_SIG_LEN);
  return 0;
}

static bool
sig_matches (const struct verify_key *k, const unsigned char *data, size_t len,
             const unsigned char sig[ED25519_SIG_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  bool ok;

  if (!ctx)
    abort ();
  ok = EVP_DigestVerifyInit (ctx, NULL, NULL, NULL, k->pkey) == 1 &&
       EVP_DigestVerify (ctx, sig, ED25519_SIG_LEN, data, len) == 1;
  EVP_MD_CTX_free (ctx);
  return ok;
}

int
verify_sig_check (const struct verify_key *k, const char *path,
                  enum verify_sig_verdict *verdict,
                  char sig_key[VERIFY_KEY_FPR_LEN + 1], char *msg, size_t len)
{
  CLEANUP_FREE unsigned char *data = NULL;
  size_t dlen;

  sig_key[0] = '\0';
  if (verify_read_file (path, 0, &data, &dlen) == -1)
    return -1;
  return verify_sig_check_data (k, path, data, dlen, verdict, sig_key, msg, len);
}

int
verify_sig_check_data (const struct verify_key *k, const char *path,
                       const void *data, size_t dlen,
                       enum verify_sig_verdict *verdict,
                       char sig_key[VERIFY_KEY_FPR_LEN + 1], char *msg, size_t len)
{
  CLEANUP_FREE char *sigpath = xasprintf ("%s%s", path, VERIFY_SIG_SUFFIX);
  CLEANUP_FREE unsigned char *text = NULL;
  unsigned char sig[ED25519_SIG_LEN];
  size_t tlen;

  sig_key[0] = '\0';
  if (access (sigpath, F_OK) == -1 && errno == ENOENT) {
    error_setx ("%s: not signed (no %s)", path, sigpath);
    return -1;
  }
  if (verify_read_file (sigpath, 0, &text, &tlen) == -1)
    return -1;
  if (strlen ((char *) text) != tlen ||
      sig_parse ((char *) text, sig_key, sig, msg, len) == -1) {
    if (strlen ((char *) text) != tlen)
      snprintf (msg, len, "not a bootback signature (binary data)");
    *verdict = VERIFY_SIG_MALFORMED;
    return 0;
  }
  if (strcmp (sig_key, k->fpr) != 0) {
    snprintf (msg, len, "signed by another key, %s, not %s", sig_key, k->fpr);
    *verdict = VERIFY_SIG_OTHER_KEY;
  }
  else if (!sig_matches (k, data, dlen, sig)) {
    snprintf (msg, len, "BAD signature: the file was changed after it was "
              "signed (key %s)", k->fpr);
    *verdict = VERIFY_SIG_CHANGED;
  }
  else {
    snprintf (msg, len, "good signature, key %s", k->fpr);
    *verdict = VERIFY_SIG_GOOD;
  }
  return 0;
}
