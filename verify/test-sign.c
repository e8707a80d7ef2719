/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of signed reports (sign.c): the appliance key is made once,
 * 0600 in a 0700 directory, with its public half beside it, and read back
 * the same; concurrent first uses end with one key; a signed file checks
 * good with the public key file, a changed byte is "changed", another
 * appliance's key is "other-key" naming the signer, a garbled signature
 * file is "malformed", a missing one cannot be checked; a key file with
 * loose permissions, a key directory others can enter, a public key file
 * that is another key's and a key of another type are refused, naming the
 * file; a FIFO at the signature's temporary name does not block signing.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static char dir[] = "/tmp/bootback-test-sign.XXXXXX";

static mode_t
mode_of (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 ? st.st_mode & 07777 : (mode_t) -1;
}

static void
put (const char *path, const char *text)
{
  CHECK (write_whole_file (path, text, strlen (text), 0644) == 0);
}

/* Check path with k: the verdict, or -1 if it could not be checked. */
static int
check (const struct verify_key *k, const char *path, char *signer)
{
  enum verify_sig_verdict v;
  char key[VERIFY_KEY_FPR_LEN + 1], msg[512];

  if (verify_sig_check (k, path, &v, key, msg, sizeof msg) == -1)
    return -1;
  if (signer)
    strcpy (signer, key);
  return v;
}

static void
test_key (void)
{
  CLEANUP_FREE char *home = xasprintf ("%s/a", dir);
  CLEANUP_FREE char *keys = xasprintf ("%s/keys", home);
  CLEANUP_FREE char *priv = xasprintf ("%s/keys/report-ed25519.pem", home);
  CLEANUP_FREE char *pub = xasprintf ("%s/keys/report-ed25519.pub.pem", home);
  struct verify_key *k = verify_key_appliance (home), *k2, *p;

  CHECK (k != NULL);
  CHECK (mode_of (keys) == 0700);
  CHECK (mode_of (priv) == 0600);
  CHECK (mode_of (pub) == 0644);
  CHECK (strncmp (verify_key_fingerprint (k), "SHA256:", 7) == 0 &&
         strlen (verify_key_fingerprint (k)) == VERIFY_KEY_FPR_LEN);
  k2 = verify_key_appliance (home);          /* read back, not made again */
  p = verify_key_public (pub);
  CHECK (k2 && p);
  CHECK (strcmp (verify_key_fingerprint (k), verify_key_fingerprint (k2)) == 0);
  CHECK (strcmp (verify_key_fingerprint (k), verify_key_fingerprint (p)) == 0);
  verify_key_free (k);
  verify_key_free (k2);
  verify_key_free (p);
}

static void
test_concurrent (void)
{
  CLEANUP_FREE char *home = xasprintf ("%s/race", dir);
  char fpr[4][VERIFY_KEY_FPR_LEN + 1];
  int pfd[4][2], i;

  for (i = 0; i < 4; i++) {
    pid_t pid;
    CHECK (pipe (pfd[i]) == 0);
    pid = fork ();
    if (pid == 0) {
      struct verify_key *k = verify_key_appliance (home);
      const char *f = k ? verify_key_fingerprint (k) : "failed";
      if (write (pfd[i][1], f, strlen (f) + 1) < 0)
        _exit (1);
      _exit (k ? 0 : 1);
    }
    close (pfd[i][1]);
  }
  for (i = 0; i < 4; i++) {
    int st;
    memset (fpr[i], 0, sizeof fpr[i]);
    CHECK (read (pfd[i][0], fpr[i], sizeof fpr[i] - 1) > 0);
    close (pfd[i][0]);
    CHECK (wait (&st) > 0 && WIFEXITED (st) && WEXITSTATUS (st) == 0);
  }
  for (i = 1; i < 4; i++)
    CHECK (strcmp (fpr[0], fpr[i]) == 0);
}

static void
test_sign (void)
{
  CLEANUP_FREE char *home_a = xasprintf ("%s/a", dir);
  CLEANUP_FREE char *home_b = xasprintf ("%s/b", dir);
  CLEANUP_FREE char *file = xasprintf ("%s/report.json", dir);
  CLEANUP_FREE char *sig = xasprintf ("%s/report.json.sig", dir);
  CLEANUP_FREE char *pub = xasprintf ("%s/a/keys/report-ed25519.pub.pem", dir);
  struct verify_key *a = verify_key_appliance (home_a);
  struct verify_key *b = verify_key_appliance (home_b);
  struct verify_key *pa = verify_key_public (pub);
  char signer[VERIFY_KEY_FPR_LEN + 1];

  CHECK (a && b && pa);
  put (file, "{\"status\": \"passed\"}\n");
  CHECK (check (pa, file, NULL) == -1);      /* not signed yet */
  CHECK (strstr (error_msg (), "not signed"));
  CHECK (verify_sign_file (a, file) == 0);
  CHECK (check (pa, file, signer) == VERIFY_SIG_GOOD);
  CHECK (strcmp (signer, verify_key_fingerprint (a)) == 0);
  /* one byte changed */
  put (file, "{\"status\": \"passed\"}\r");
  CHECK (check (pa, file, NULL) == VERIFY_SIG_CHANGED);
  put (file, "{\"status\": \"failed\"}\n");
  CHECK (check (pa, file, NULL) == VERIFY_SIG_CHANGED);
  /* signed again by the other appliance: other-key, naming it */
  CHECK (verify_sign_file (b, file) == 0);
  CHECK (check (pa, file, signer) == VERIFY_SIG_OTHER_KEY);
  CHECK (strcmp (signer, verify_key_fingerprint (b)) == 0);
  CHECK (check (b, file, NULL) == VERIFY_SIG_GOOD);
  /* a garbled signature file */
  put (sig, "bootback-signature: 1\nalgorithm: rsa\n");
  CHECK (check (pa, file, NULL) == VERIFY_SIG_MALFORMED);
  put (sig, "hello\n");
  CHECK (check (pa, file, NULL) == VERIFY_SIG_MALFORMED);
  verify_key_free (a);
  verify_key_free (b);
  verify_key_free (pa);
}

/* The signature's temporary file in a report directory others can write
 * (a share): a FIFO someone put at its name does not stop the run
 * (review finding: the open for writing waited for a reader, forever). */
static void
test_sign_fifo (void)
{
  CLEANUP_FREE char *home = xasprintf ("%s/a", dir);
  CLEANUP_FREE char *file = xasprintf ("%s/junit.xml", dir);
  CLEANUP_FREE char *tmp = xasprintf ("%s/junit.xml.sig.%d.tmp", dir, (int) getpid ());
  struct verify_key *k = verify_key_appliance (home);

  CHECK (k != NULL);
  put (file, "<testsuites/>\n");
  CHECK (mkfifo (tmp, 0666) == 0);
  alarm (10);
  CHECK (verify_sign_file (k, file) == 0);
  alarm (0);
  CHECK (check (k, file, NULL) == VERIFY_SIG_GOOD);
  CHECK (access (tmp, F_OK) == -1);
  verify_key_free (k);
}

static void
test_refused (void)
{
  CLEANUP_FREE char *home = xasprintf ("%s/a", dir);
  CLEANUP_FREE char *keys = xasprintf ("%s/keys", home);
  CLEANUP_FREE char *priv = xasprintf ("%s/keys/report-ed25519.pem", home);
  CLEANUP_FREE char *home_c = xasprintf ("%s/c", dir);
  CLEANUP_FREE char *keys_c = xasprintf ("%s/c/keys", dir);
  CLEANUP_FREE char *priv_c = xasprintf ("%s/c/keys/report-ed25519.pem", dir);
  EVP_PKEY *ec = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  FILE *f;

  /* a key others can read */
  CHECK (chmod (priv, 0644) == 0);
  CHECK (verify_key_appliance (home) == NULL);
  CHECK (strstr (error_msg (), priv) && strstr (error_msg (), "mode 0644"));
  CHECK (chmod (priv, 0600) == 0);
  /* a key directory others can enter */
  CHECK (chmod (keys, 0755) == 0);
  CHECK (verify_key_appliance (home) == NULL);
  CHECK (strstr (error_msg (), keys) && strstr (error_msg (), "mode 0755"));
  CHECK (chmod (keys, 0700) == 0);
  {
    struct verify_key *k = verify_key_appliance (home);
    CHECK (k != NULL);               /* tightened again: read */
    verify_key_free (k);
  }
  /* a public key file that is not the key's */
  {
    CLEANUP_FREE char *pub = xasprintf ("%s/report-ed25519.pub.pem", keys);
    CLEANUP_FREE char *other = xasprintf ("%s/b/keys/report-ed25519.pub.pem", dir);
    CLEANUP_FREE char *save = xasprintf ("%s/saved.pub.pem", dir);
    CHECK (rename (pub, save) == 0);
    CHECK (link (other, pub) == 0);
    CHECK (verify_key_appliance (home) == NULL);
    CHECK (strstr (error_msg (), pub) && strstr (error_msg (), "not the public half"));
    CHECK (rename (save, pub) == 0);
  }
  /* a key of another type */
  CHECK (mkdir_p_private (home_c) == 0);
  CHECK (mkdir_private (keys_c) == 0);
  f = fdopen (open_private (priv_c, O_WRONLY | O_EXCL), "w");
  CHECK (f && ec && PEM_write_PrivateKey (f, ec, NULL, NULL, 0, NULL, NULL));
  fclose (f);
  CHECK (verify_key_appliance (home_c) == NULL);
  CHECK (strstr (error_msg (), priv_c) && strstr (error_msg (), "expected Ed25519"));
  EVP_PKEY_free (ec);
}

int
main (void)
{
  CLEANUP_FREE char *cmd = NULL;

  if (!mkdtemp (dir)) {
    perror ("mkdtemp");
    return 1;
  }
  test_key ();
  test_concurrent ();
  test_sign ();
  test_sign_fifo ();
  test_refused ();
  cmd = xasprintf ("rm -rf %s", dir);
  CHECK (system (cmd) == 0);
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("verify sign ok\n");
  return 0;
}
