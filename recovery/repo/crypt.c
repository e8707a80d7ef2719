/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Encryption at rest (crypt.h): key slots, sealing files, keyed chunk
 * names.  OpenSSL 3: AES-256-GCM through EVP, HMAC-SHA256, and scrypt
 * through EVP_KDF ("SCRYPT"): Debian 12's OpenSSL 3.0 has no Argon2
 * (3.2 added it), and scrypt is memory-hard too (N 2^15, r 8: 32 MiB).
 *
 * Every buffer that held key material is OPENSSL_cleanse'd before it is
 * freed or goes out of scope.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "recovery/repo/crypt.h"

#define SCRYPT_LOG2N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_LEN 16
#define WRAPPED_LEN (CRYPT_OVERHEAD + CRYPT_KEY_LEN)
/* What a key slot read from the repository (which may be hostile) may
 * ask of this machine: scrypt's memory (128 r 2^log2n bytes) at most
 * 8 times the slots bootback writes, one lane, and so many slots tried. */
#define SCRYPT_MEM_MAX (256u << 20)
#define SCRYPT_P_MAX 1
#define SLOTS_MAX 64
/* ... and all the slots tried by one open together (32 of the slots
 * bootback writes, 4 of the costliest allowed). */
#define SCRYPT_TOTAL_MAX ((uint64_t) 1 << 30)

static void
random_bytes (void *buf, size_t n)
{
  if (getrandom (buf, n, 0) != (ssize_t) n)
    abort ();
}

/* ---- the secret: a passphrase or the bytes of a key file -------------- */

struct secret {
  uint8_t buf[CRYPT_SECRET_MAX];
  size_t len;
  const char *kind;             /* "passphrase" or "key-file" */
};

static int
secret_file (struct secret *s, const char *path, bool passphrase)
{
  FILE *f = fopen (path, "re");
  size_t n;

  if (!f) {
    error_set (errno, "%s", path);
    return -1;
  }
  setvbuf (f, NULL, _IONBF, 0);       /* no copy of the secret in stdio */
  n = fread (s->buf, 1, sizeof s->buf, f);
  fclose (f);
  if (passphrase)
    while (n > 0 && (s->buf[n - 1] == '\n' || s->buf[n - 1] == '\r'))
      n--;
  if (n == 0 || n == sizeof s->buf) {
    error_setx ("%s: a %s must be 1 to %d bytes", path,
                passphrase ? "passphrase" : "key file", CRYPT_SECRET_MAX - 1);
    return -1;
  }
  s->len = n;
  return 0;
}

/* The secret o gives: the passphrase, else the passphrase file, else the
 * key file.  -1 "R is encrypted: ..." when o gives none. */
static int
secret_get (struct secret *s, const struct repo_open_opts *o, const char *loc)
{
  s->kind = "passphrase";
  if (o && o->passphrase && *o->passphrase) {
    s->len = MIN (strlen (o->passphrase), sizeof s->buf - 1);
    memcpy (s->buf, o->passphrase, s->len);
    return 0;
  }
  if (o && o->passphrase_file && *o->passphrase_file)
    return secret_file (s, o->passphrase_file, true);
  if (o && o->key_file && *o->key_file) {
    s->kind = "key-file";
    return secret_file (s, o->key_file, false);
  }
  error_setx ("repository %s is encrypted: give its passphrase "
              "(BOOTBACK_PASSPHRASE or --passphrase-file FILE) or "
              "--key-file FILE", loc);
  errno = EACCES;
  return -1;
}

static int
scrypt (const struct secret *s, const uint8_t *salt, int log2n, int r, int p,
        uint8_t out[CRYPT_KEY_LEN])
{
  EVP_KDF *kdf = EVP_KDF_fetch (NULL, "SCRYPT", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new (kdf) : NULL;
  uint64_t n = UINT64_C (1) << log2n, maxmem = (uint64_t) 256 << 20;
  uint32_t rr = r, pp = p;
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_PASSWORD,
                                       (void *) s->buf, s->len),
    OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_SALT, (void *) salt,
                                       SALT_LEN),
    OSSL_PARAM_construct_uint64 (OSSL_KDF_PARAM_SCRYPT_N, &n),
    OSSL_PARAM_construct_uint32 (OSSL_KDF_PARAM_SCRYPT_R, &rr),
    OSSL_PARAM_construct_uint32 (OSSL_KDF_PARAM_SCRYPT_P, &pp),
    OSSL_PARAM_construct_uint64 (OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
    OSSL_PARAM_construct_end ()
  };
  int ok = ctx && EVP_KDF_derive (ctx, out, CRYPT_KEY_LEN, params) == 1;

  EVP_KDF_CTX_free (ctx);
  EVP_KDF_free (kdf);
  if (!ok)
    error_setx ("scrypt key derivation failed (N 2^%d, r %d, p %d)",
                log2n, r, p);
  return ok ? 0 : -1;
}

/* ---- AES-256-GCM -------------------------------------------------------- */

/* One GCM operation on n bytes at in into out (may be in itself); tag
 * written (enc) or checked.  aad: the file's path. */
static bool
gcm (const uint8_t key[CRYPT_KEY_LEN], bool enc, const uint8_t *nonce,
     const char *aad, const uint8_t *in, size_t n, uint8_t *out,
     uint8_t tag[CRYPT_TAG_LEN])
{
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
  int l, ok;

  ok = ctx && EVP_CipherInit_ex (ctx, EVP_aes_256_gcm (), NULL, key, nonce,
                                 enc) == 1 &&
    EVP_CipherUpdate (ctx, NULL, &l, (const uint8_t *) aad,
                      strlen (aad)) == 1;
  for (size_t done = 0; ok && done < n; ) {
    int k = (int) MIN (n - done, (size_t) 1 << 30);
    ok = EVP_CipherUpdate (ctx, out + done, &l, in + done, k) == 1;
    done += k;
  }
  if (ok && !enc)
    ok = EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_LEN,
                              tag) == 1;
  ok = ok && EVP_CipherFinal_ex (ctx, out + n, &l) == 1;
  if (ok && enc)
    ok = EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_LEN,
                              tag) == 1;
  EVP_CIPHER_CTX_free (ctx);
  return ok;
}

static size_t
seal_key (const uint8_t key[CRYPT_KEY_LEN], uint8_t *buf, size_t len,
          const char *aad)
{
  memmove (buf + CRYPT_HDR_LEN, buf, len);
  memcpy (buf, CRYPT_MAGIC, 4);
  random_bytes (buf + 4, CRYPT_NONCE_LEN);
  if (!gcm (key, true, buf + 4, aad, buf + CRYPT_HDR_LEN, len,
            buf + CRYPT_HDR_LEN, buf + CRYPT_HDR_LEN + len))
    abort ();                   /* AES-GCM never fails on good input */
  return len + CRYPT_OVERHEAD;
}

/* -1 (no error set) if buf is not a sealed file or fails its tag. */
static int
unseal_key (const uint8_t key[CRYPT_KEY_LEN], uint8_t *buf, size_t *len,
            const char *aad)
{
  size_t n;

  if (*len < CRYPT_OVERHEAD || memcmp (buf, CRYPT_MAGIC, 4) != 0)
    return -1;
  n = *len - CRYPT_OVERHEAD;
  if (!gcm (key, false, buf + 4, aad, buf + CRYPT_HDR_LEN, n,
            buf + CRYPT_HDR_LEN, buf + CRYPT_HDR_LEN + n)) {
    OPENSSL_cleanse (buf + CRYPT_HDR_LEN, n);
    return -1;
  }
  memmove (buf, buf + CRYPT_HDR_LEN, n);
  *len = n;
  return 0;
}

size_t
crypt_seal (const struct repo_crypt *k, uint8_t *buf, size_t len,
            const char *path)
{
  return seal_key (k->data_key, buf, len, path);
}

int
crypt_unseal (const struct repo_crypt *k, uint8_t *buf, size_t *len,
              const char *path)
{
  if (unseal_key (k->data_key, buf, len, path) == 0)
    return 0;
  error_set (EIO, "%s: %s", path,
             *len < CRYPT_OVERHEAD || memcmp (buf, CRYPT_MAGIC, 4) != 0
             ? "not an encrypted file (no BBE1 header)"
             : "authentication failed: the file was changed, damaged or "
               "swapped with another");
  return -1;
}

/* ---- chunk files: BBE2, frame by frame ----------------------------------- */

static uint32_t
rd32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
    (uint32_t) p[3] << 24;
}

/* Unit u (0 the head, i + 1 frame i) of a BBE2 file: its nonce and
 * additional data. */
static void
unit_params (const uint8_t *base, size_t u, const char *path,
             uint8_t nonce[CRYPT_NONCE_LEN], char *aad, size_t aadlen)
{
  memcpy (nonce, base, CRYPT_NONCE_LEN);
  for (int b = 0; b < 4; b++)
    nonce[8 + b] ^= (uint8_t) (u >> (8 * b));
  if (u == 0)
    snprintf (aad, aadlen, "%s#h", path);
  else
    snprintf (aad, aadlen, "%s#%zu", path, u - 1);
}

static bool
unit (const struct repo_crypt *k, bool enc, const uint8_t *base, size_t u,
      const char *path, uint8_t *p, size_t n)
{
  uint8_t nonce[CRYPT_NONCE_LEN];
  char aad[128];

  unit_params (base, u, path, nonce, aad, sizeof aad);
  return gcm (k->data_key, enc, nonce, aad, p, n, p, p + n);
}

size_t
crypt_chunk_seal (const struct repo_crypt *k, uint8_t *buf, size_t len,
                  const char *path)
{
  size_t n, ht, off[CHUNK_MAX_FRAMES + 1];
  uint8_t base[CRYPT_NONCE_LEN];

  if (len < CHUNK_HDR_LEN || memcmp (buf, "BBC2", 4) != 0)
    return crypt_seal (k, buf, len, path);
  n = DIV_ROUND_UP (rd32 (buf + 8), (size_t) 1 << buf[4]);   /* frames */
  ht = CHUNK_HDR_LEN + n * CHUNK_ENTRY_LEN;
  off[0] = ht;
  for (size_t i = 0; i < n; i++)
    off[i + 1] = off[i] + rd32 (buf + CHUNK_HDR_LEN + i * CHUNK_ENTRY_LEN + 32);
  assert (off[n] == len);
  random_bytes (base, sizeof base);
  /* back to front: each unit moves up by its overhead */
  for (size_t i = n; i-- > 0; ) {
    uint8_t *dst = buf + crypt_frame_off (off[i], i);
    memmove (dst, buf + off[i], off[i + 1] - off[i]);
    if (!unit (k, true, base, i + 1, path, dst, off[i + 1] - off[i]))
      abort ();
  }
  memmove (buf + CRYPT_CHUNK_HDR, buf, ht);
  if (!unit (k, true, base, 0, path, buf + CRYPT_CHUNK_HDR, ht))
    abort ();
  memcpy (buf, "BBE2", 4);
  buf[4] = ht & 0xff; buf[5] = ht >> 8 & 0xff; buf[6] = ht >> 16; buf[7] = 0;
  memcpy (buf + 8, base, CRYPT_NONCE_LEN);
  return crypt_frame_off (len, n);
}

/* Errors about a chunk file do not name it: the callers (chunk-store.c)
 * put "chunk HEX: " in front. */
static int
auth_failed (const char *what)
{
  error_set (EIO, "authentication failed (%s): the file was changed, "
             "damaged or swapped with another", what);
  return -1;
}

int
crypt_chunk_head (const struct repo_crypt *k, uint8_t *buf, size_t avail,
                  size_t *ht, const char *path)
{
  uint8_t base[CRYPT_NONCE_LEN];
  size_t h;

  if (avail < CRYPT_CHUNK_HDR || memcmp (buf, "BBE2", 4) != 0)
    return 0;
  h = rd32 (buf + 4);
  if (h < CHUNK_HDR_LEN || (h - CHUNK_HDR_LEN) % CHUNK_ENTRY_LEN ||
      h > CHUNK_HDR_LEN + CHUNK_MAX_FRAMES * CHUNK_ENTRY_LEN ||
      avail < CRYPT_CHUNK_HDR + h + CRYPT_TAG_LEN) {
    error_set (EIO, "bad encrypted chunk header");
    return -1;
  }
  memcpy (base, buf + 8, sizeof base);
  if (!unit (k, false, base, 0, path, buf + CRYPT_CHUNK_HDR, h))
    return auth_failed ("header");
  memmove (buf, buf + CRYPT_CHUNK_HDR, h);
  memcpy (buf + h, base, sizeof base);  /* kept for the frames */
  *ht = h;
  return 1;
}

int
crypt_chunk_frame (const struct repo_crypt *k, uint8_t *p, size_t stored,
                   size_t i, const uint8_t base[CRYPT_NONCE_LEN],
                   const char *path)
{
  char what[32];

  if (unit (k, false, base, i + 1, path, p, stored))
    return 0;
  snprintf (what, sizeof what, "frame %zu", i);
  return auth_failed (what);
}

int
crypt_chunk_unseal (const struct repo_crypt *k, uint8_t *buf, size_t *len,
                    const char *path)
{
  uint8_t base[CRYPT_NONCE_LEN];
  size_t ht, n, pos;
  int r;

  if (*len >= 4 && memcmp (buf, "BBE1", 4) == 0)
    return unseal_key (k->data_key, buf, len, path) == 0 ? 0
      : auth_failed ("whole file");
  if ((r = crypt_chunk_head (k, buf, *len, &ht, path)) != 1) {
    if (r == 0)
      error_set (EIO, "not an encrypted chunk file");
    return -1;
  }
  memcpy (base, buf + ht, sizeof base);
  n = (ht - CHUNK_HDR_LEN) / CHUNK_ENTRY_LEN;
  pos = ht;
  for (size_t i = 0; i < n; i++) {
    size_t st = rd32 (buf + CHUNK_HDR_LEN + i * CHUNK_ENTRY_LEN + 32);
    uint64_t at = crypt_frame_off (pos, i);
    if (st > *len || at + st + CRYPT_TAG_LEN > *len) {
      error_set (EIO, "encrypted chunk is truncated");
      return -1;
    }
    if (crypt_chunk_frame (k, buf + at, st, i, base, path) == -1)
      return -1;
    memmove (buf + pos, buf + at, st);
    pos += st;
  }
  if (crypt_frame_off (pos, n) != *len) {
    error_set (EIO, "encrypted chunk has trailing bytes");
    return -1;
  }
  *len = pos;
  return 0;
}

void
crypt_name (const struct repo_crypt *k, uint8_t digest[REPO_DIGEST_LEN])
{
  unsigned n = REPO_DIGEST_LEN;
  uint8_t in[REPO_DIGEST_LEN];

  memcpy (in, digest, sizeof in);
  if (!HMAC (EVP_sha256 (), k->name_key, CRYPT_KEY_LEN, in, sizeof in,
             digest, &n))
    abort ();
}

/* data key and name key from the master key. */
static void
derive (struct repo_crypt *k)
{
  unsigned n = CRYPT_KEY_LEN;

  if (!HMAC (EVP_sha256 (), k->master, CRYPT_KEY_LEN,
             (const uint8_t *) "bootback data key 1", 19, k->data_key, &n) ||
      !HMAC (EVP_sha256 (), k->master, CRYPT_KEY_LEN,
             (const uint8_t *) "bootback chunk name key 1", 25, k->name_key,
             &n))
    abort ();
}

void
crypt_free (struct repo_crypt *k)
{
  if (!k)
    return;
  OPENSSL_cleanse (k, sizeof *k);
  free (k);
}

/* ---- key slots: keys/<id>.json ------------------------------------------ */

static char *
slot_path (const char *id)
{
  return xasprintf ("keys/%s.json", id);
}

/* The additional data of a slot's wrapped key: its id and the
 * repository's uuid (a slot copied from another repository fails). */
static char *
slot_aad (const char *id, const char *uuid)
{
  return xasprintf ("keys/%s %s", id, uuid);
}

/* Write a new slot wrapping master with the secret s; its id into id. */
static int
slot_write (struct repo_io *io, const char *uuid,
            const uint8_t master[CRYPT_KEY_LEN], const struct secret *s,
            char id[CRYPT_SLOT_LEN + 1])
{
  uint8_t salt[SALT_LEN], wrapped[WRAPPED_LEN], kek[CRYPT_KEY_LEN], rid[8];
  char salt_hex[2 * SALT_LEN + 1], wrapped_hex[2 * WRAPPED_LEN + 1];
  char ts[TIMESTAMP_LEN + 1];
  CLEANUP_FREE char *path = NULL, *aad = NULL, *text = NULL;
  json_t *o;
  int r;

  random_bytes (rid, sizeof rid);
  hex_encode (rid, sizeof rid, id);
  random_bytes (salt, sizeof salt);
  if (scrypt (s, salt, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P, kek) == -1)
    return -1;
  path = slot_path (id);
  aad = slot_aad (id, uuid);
  memcpy (wrapped, master, CRYPT_KEY_LEN);
  seal_key (kek, wrapped, CRYPT_KEY_LEN, aad);
  OPENSSL_cleanse (kek, sizeof kek);
  hex_encode (salt, sizeof salt, salt_hex);
  hex_encode (wrapped, sizeof wrapped, wrapped_hex);
  timestamp_format (time (NULL), ts);
  o = json_pack ("{s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:s}",
                 "id", id, "kind", s->kind, "kdf", "scrypt",
                 "log2n", SCRYPT_LOG2N, "r", SCRYPT_R, "p", SCRYPT_P,
                 "salt", salt_hex, "wrapped", wrapped_hex, "created", ts);
  text = json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (o);
  if (io_mkdir_p1 (io, "keys") == -1)
    return -1;
  r = io_write_file_atomic (io, path, text, strlen (text));
  return r;
}

static int
json_int_in (json_t *o, const char *key, int lo, int hi)
{
  json_t *v = json_object_get (o, key);
  json_int_t n = json_is_integer (v) ? json_integer_value (v) : lo - 1;

  return n < lo || n > hi ? -1 : (int) n;
}

/* Try the slot in text with s: 1 and master set if it opens, 0 if not
 * (another secret's slot), -1 if the slot is malformed. */
static int
slot_try (const char *text, const char *id, const char *uuid,
          const struct secret *s, uint8_t master[CRYPT_KEY_LEN],
          uint64_t *budget)
{
  json_t *o = json_loads (text, 0, NULL);
  uint8_t salt[SALT_LEN], wrapped[WRAPPED_LEN], kek[CRYPT_KEY_LEN];
  const char *sh = o ? json_string_value (json_object_get (o, "salt")) : NULL;
  const char *wh = o ? json_string_value (json_object_get (o, "wrapped")) : NULL;
  int log2n = json_int_in (o, "log2n", 10, 22), r = json_int_in (o, "r", 1, 32);
  int p = json_int_in (o, "p", 1, SCRYPT_P_MAX), ret = -1;
  size_t len = WRAPPED_LEN;
  uint64_t mem;
  CLEANUP_FREE char *aad = slot_aad (id, uuid);

  if (!sh || !wh || strlen (sh) != 2 * SALT_LEN ||
      strlen (wh) != 2 * WRAPPED_LEN || hex_decode (sh, salt, SALT_LEN) == -1 ||
      hex_decode (wh, wrapped, WRAPPED_LEN) == -1 || log2n < 0 || r < 0 ||
      p < 0) {
    error_setx ("keys/%s.json: not a valid key slot", id);
    goto out;
  }
  mem = (uint64_t) 128 * r << log2n;         /* scrypt's memory */
  if (mem > SCRYPT_MEM_MAX) {
    error_setx ("keys/%s.json: the key slot asks for %" PRIu64 " MiB of memory "
                "to derive its key (at most %u)", id, mem >> 20, SCRYPT_MEM_MAX >> 20);
    goto out;
  }
  if (mem > *budget) {
    error_setx ("keys/%s.json: the key slots tried ask for more than %" PRIu64
                " MiB of key derivation in all", id, SCRYPT_TOTAL_MAX >> 20);
    goto out;
  }
  *budget -= mem;
  if (scrypt (s, salt, log2n, r, p, kek) == -1)
    goto out;
  ret = unseal_key (kek, wrapped, &len, aad) == 0 ? 1 : 0;
  if (ret == 1)
    memcpy (master, wrapped, CRYPT_KEY_LEN);
  OPENSSL_cleanse (kek, sizeof kek);
  OPENSSL_cleanse (wrapped, sizeof wrapped);
 out:
  json_decref (o);
  return ret;
}

/* The ids of the slots (file names under keys/ without ".json"). */
static char **
slot_ids (struct repo_io *io)
{
  char **names = io->ops->list (io, "keys");

  if (!names)
    return NULL;
  for (size_t i = 0, j = 0;; i++) {
    size_t l = names[i] ? strlen (names[i]) : 0;
    if (!names[i]) {
      names[j] = NULL;
      break;
    }
    if (l == CRYPT_SLOT_LEN + 5 && strcmp (names[i] + CRYPT_SLOT_LEN, ".json") == 0) {
      names[i][CRYPT_SLOT_LEN] = '\0';
      names[j++] = names[i];
    }
    else
      free (names[i]);
  }
  return names;
}

int
crypt_has_slots (struct repo_io *io)
{
  char **ids = slot_ids (io);
  int r = ids && ids[0] ? 1 : 0;

  if (!ids && errno != ENOENT && errno != ENOTDIR)
    return -1;
  error_clear ();
  strv_free (ids);
  return r;
}

int
crypt_init (struct repo_io *io, const char *location, const char *uuid,
            const struct repo_open_opts *o)
{
  struct secret s;
  uint8_t master[CRYPT_KEY_LEN];
  char id[CRYPT_SLOT_LEN + 1];
  int r;

  if (secret_get (&s, o, location) == -1) {
    if (errno == EACCES)
      error_setx ("%s: an encrypted repository needs a passphrase "
                  "(BOOTBACK_PASSPHRASE or --passphrase-file FILE) or "
                  "--key-file FILE", location);
    return -1;
  }
  secrets_held ();
  random_bytes (master, sizeof master);
  r = slot_write (io, uuid, master, &s, id);
  OPENSSL_cleanse (master, sizeof master);
  OPENSSL_cleanse (&s, sizeof s);
  return r;
}

/* Find the slot s opens: 1 (master, id set), 0 none, -1 error. */
static int
slot_find (struct repo *r, const struct secret *s,
           uint8_t master[CRYPT_KEY_LEN], char id[CRYPT_SLOT_LEN + 1])
{
  CLEANUP_STRV char **ids = slot_ids (r->io);
  uint64_t budget = SCRYPT_TOTAL_MAX;
  size_t n = 0;
  int ret = 0;

  if (!ids)
    return -1;
  while (ids[n])
    n++;
  if (n > SLOTS_MAX) {
    error_setx ("%s: %zu key slots under keys/ (at most %d)", r->location,
                n, SLOTS_MAX);
    return -1;
  }
  for (size_t i = 0; ids[i] && ret == 0; i++) {
    CLEANUP_FREE char *path = slot_path (ids[i]), *text = NULL;
    size_t len;
    if (io_read_file (r->io, path, 65536, &text, &len) == -1)
      return -1;
    ret = slot_try (text, ids[i], r->uuid, s, master, &budget);
    if (ret == 1)
      strcpy (id, ids[i]);
  }
  return ret;
}

int
crypt_unlock (struct repo *r, const struct repo_open_opts *o)
{
  struct repo_crypt *k;
  struct secret s;
  int ret;

  if (secret_get (&s, o, r->location) == -1)
    return -1;
  k = xcalloc (1, sizeof *k);
  ret = slot_find (r, &s, k->master, k->slot);
  OPENSSL_cleanse (s.buf, sizeof s.buf);
  if (ret != 1) {
    if (ret == 0)
      error_setx ("wrong %s for repository %s",
                 s.kind[0] == 'p' ? "passphrase" : "key file", r->location);
    crypt_free (k);
    return -1;
  }
  derive (k);
  r->crypt = k;
  /* A crash must not leave the key (or what it decrypts) on disk. */
  secrets_held ();
  return 0;
}

/* ---- metadata files ------------------------------------------------------- */

int
repo_meta_read (struct repo *r, const char *path, size_t max, char **data,
                size_t *len)
{
  if (io_read_file (r->io, path, max + (r->crypt ? CRYPT_OVERHEAD : 0), data,
                    len) == -1)
    return -1;
  if (!r->crypt)
    return 0;
  if (crypt_unseal (r->crypt, (uint8_t *) *data, len, path) == -1) {
    error_prefix ("%s", r->location);
    free (*data);
    *data = NULL;
    return -1;
  }
  (*data)[*len] = '\0';
  return 0;
}

int
repo_meta_write (struct repo *r, const char *path, const void *data,
                 size_t len)
{
  CLEANUP_FREE uint8_t *buf = NULL;

  if (!r->crypt)
    return io_write_file_atomic (r->io, path, data, len);
  buf = xmalloc (len + CRYPT_OVERHEAD);
  memcpy (buf, data, len);
  len = crypt_seal (r->crypt, buf, len, path);
  return io_write_file_atomic (r->io, path, buf, len);
}

void
repo_open_opts_secret (struct repo_open_opts *o, const char *passphrase,
                       const char *passphrase_file, const char *key_file)
{
  o->passphrase = passphrase;
  o->passphrase_file = passphrase_file;
  o->key_file = key_file;
}

/* ---- repo key list|add|remove ----------------------------------------- */

bool
repo_encrypted (const struct repo *r)
{
  return r->crypt != NULL;
}

struct repo_key_info *
repo_key_list (struct repo *r, size_t *n)
{
  CLEANUP_STRV char **ids = NULL;
  struct repo_key_info *keys;
  size_t i;

  if (!r->crypt) {
    error_setx ("repository %s is not encrypted", r->location);
    return NULL;
  }
  if (!(ids = slot_ids (r->io)))
    return NULL;
  for (i = 0; ids[i]; i++) ;
  keys = xcalloc (i + 1, sizeof *keys);
  for (*n = 0; ids[*n]; (*n)++) {
    struct repo_key_info *k = &keys[*n];
    CLEANUP_FREE char *path = slot_path (ids[*n]), *text = NULL;
    json_t *o = NULL;
    size_t len;
    snprintf (k->id, sizeof k->id, "%s", ids[*n]);
    k->current = strcmp (ids[*n], r->crypt->slot) == 0;
    if (io_read_file (r->io, path, 65536, &text, &len) == 0)
      o = json_loads (text, 0, NULL);
    snprintf (k->kind, sizeof k->kind, "%s",
              json_string_value (json_object_get (o, "kind")) ?: "?");
    snprintf (k->created, sizeof k->created, "%s",
              json_string_value (json_object_get (o, "created")) ?: "?");
    json_decref (o);
  }
  return keys;
}

int
repo_key_add (struct repo *r, const struct repo_open_opts *o,
              char id[REPO_KEY_ID_LEN + 1])
{
  struct secret s;
  uint8_t master[CRYPT_KEY_LEN];
  char other[CRYPT_SLOT_LEN + 1];
  int ret;

  if (!r->crypt) {
    error_setx ("repository %s is not encrypted", r->location);
    return -1;
  }
  if (secret_get (&s, o, r->location) == -1)
    return -1;
  ret = slot_find (r, &s, master, other);
  OPENSSL_cleanse (master, sizeof master);
  if (ret == 1)
    error_setx ("repository %s already has that %s (key %s)", r->location,
                s.kind, other);
  if (ret == 0)
    ret = slot_write (r->io, r->uuid, r->crypt->master, &s, id) == 0 ? 0 : -1;
  else
    ret = -1;
  OPENSSL_cleanse (&s, sizeof s);
  return ret;
}

int
repo_key_remove (struct repo *r, const char *id)
{
  CLEANUP_STRV char **ids = NULL;
  CLEANUP_FREE char *path = NULL;
  size_t n;
  bool found = false;

  if (!r->crypt) {
    error_setx ("repository %s is not encrypted", r->location);
    return -1;
  }
  if (!(ids = slot_ids (r->io)))
    return -1;
  for (n = 0; ids[n]; n++)
    found |= strcmp (ids[n], id) == 0;
  if (!found) {
    error_setx ("repository %s has no key %s (see 'bootback repo key list')",
                r->location, id);
    return -1;
  }
  if (n == 1) {
    error_setx ("key %s is the last key of repository %s: add another "
                "first, or nothing could open it again", id, r->location);
    return -1;
  }
  path = slot_path (id);
  if (r->io->ops->unlink (r->io, path) == -1 ||
      r->io->ops->sync_dir (r->io, "keys") == -1)
    return -1;
  return 0;
}
