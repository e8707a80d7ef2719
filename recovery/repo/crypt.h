/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crypt: encryption at rest of a repository (docs/design.md, "Encryption").
 * Private to the repository library.
 *
 * An encrypted repository ("version": 2, "encryption": "aes-256-gcm" in
 * bootback-repo.json) has a random 32-byte master key, stored only
 * wrapped: keys/<slot>.json, one per passphrase or key file, holds the
 * scrypt parameters and salt and the master key sealed (AES-256-GCM) with
 * the key scrypt derives from that secret.  Adding, removing or changing a
 * passphrase rewrites one slot file, never a chunk.
 *
 * From the master key (HMAC-SHA256 of it over a label):
 *  - data key: AES-256-GCM of every chunk file and of every manifest,
 *    index and domain.xml;
 *  - name key: a chunk's name is HMAC-SHA256(name key, the digest a plain
 *    repository would use), so names leak nothing of the content and equal
 *    chunks still get equal names (dedup within the repository).
 *
 * A sealed file: "BBE1", a random 12-byte nonce, the ciphertext, the
 * 16-byte GCM tag.  The additional data is the file's path in the
 * repository ("chunks/ab12/ab12...", "points/vm/id/manifest.json"), so a
 * file moved or swapped under another name fails to open.
 */
#ifndef BOOTBACK_REPO_CRYPT_H
#define BOOTBACK_REPO_CRYPT_H

#include "recovery/repo/repo-int.h"

#define CRYPT_KEY_LEN 32
#define CRYPT_NONCE_LEN 12
#define CRYPT_TAG_LEN 16
#define CRYPT_MAGIC "BBE1"
#define CRYPT_HDR_LEN (4 + CRYPT_NONCE_LEN)
#define CRYPT_OVERHEAD (CRYPT_HDR_LEN + CRYPT_TAG_LEN)
#define CRYPT_SLOT_LEN 16           /* hex characters of a key slot's id */
#define CRYPT_SECRET_MAX 4096       /* bytes of a passphrase or key file */

struct repo_crypt {
  uint8_t master[CRYPT_KEY_LEN];
  uint8_t data_key[CRYPT_KEY_LEN];
  uint8_t name_key[CRYPT_KEY_LEN];
  char slot[CRYPT_SLOT_LEN + 1];    /* the slot that unlocked it */
};

/* repo_init --encrypt: a new master key, its first slot (the secret of
 * o) under keys/.  Before bootback-repo.json is written. */
int crypt_init (struct repo_io *io, const char *location, const char *uuid,
                const struct repo_open_opts *o);
/* repo_open of an encrypted repository: unwrap the master key with the
 * secret of o, trying each slot.  r->crypt set, or -1 "wrong passphrase
 * for repository R". */
int crypt_unlock (struct repo *r, const struct repo_open_opts *o);
/* Does the repository hold key slots (keys/<slot>.json)?  1, 0, -1.  A
 * configuration that says "plain" beside them was changed (repo_open). */
int crypt_has_slots (struct repo_io *io);
/* Cleanse and free (NULL is fine). */
void crypt_free (struct repo_crypt *k);

/* Seal len bytes at buf in place (capacity len + CRYPT_OVERHEAD) as the
 * file at path; returns the sealed length. */
size_t crypt_seal (const struct repo_crypt *k, uint8_t *buf, size_t len,
                   const char *path);
/* Open a sealed file in place: *len becomes the plaintext length.  -1
 * with the error naming path ("authentication failed"). */
int crypt_unseal (const struct repo_crypt *k, uint8_t *buf, size_t *len,
                  const char *path);
/* Chunk files.  A framed (BBC2) chunk is sealed frame by frame, so that a
 * read of a few frames opens only those ("BBE2"):
 *    0  "BBE2"
 *    4  ht: length of the plain header and frame table (32 + 40 n)
 *    8  12-byte random nonce
 *   20  the header and table sealed (nonce as is; additional data
 *       "PATH#h"), ht + 16 bytes
 *  then each frame's stored bytes sealed (nonce with (i + 1) xored into
 *  its last 4 bytes; additional data "PATH#i"), stored + 16 bytes.
 * Frame i of the plain file at off[i] is at off[i] + 36 + 16 i.  Any
 * other chunk file (BBC1) is sealed whole ("BBE1"). */
#define CRYPT_CHUNK_HDR 20
#define CRYPT_CHUNK_MAX_OVERHEAD \
  (CRYPT_CHUNK_HDR + CRYPT_TAG_LEN * (CHUNK_MAX_FRAMES + 1))
static inline uint64_t
crypt_frame_off (uint64_t plain_off, size_t i)
{
  return plain_off + CRYPT_CHUNK_HDR + CRYPT_TAG_LEN * (i + 1);
}
/* Seal the plain chunk file in buf (len bytes, this process's encoding;
 * capacity len + CRYPT_CHUNK_MAX_OVERHEAD) in place; the sealed length. */
size_t crypt_chunk_seal (const struct repo_crypt *k, uint8_t *buf, size_t len,
                         const char *path);
/* Open a sealed chunk file (whole) in place into the plain file. */
int crypt_chunk_unseal (const struct repo_crypt *k, uint8_t *buf, size_t *len,
                        const char *path);
/* BBE2: open the head (header and table) at buf (CRYPT_CHUNK_HDR + ht +
 * 16 bytes, read from the file) in place: the plain head at buf, *ht its
 * length.  1 done, 0 not a BBE2 file (read it whole), -1 error. */
int crypt_chunk_head (const struct repo_crypt *k, uint8_t *buf, size_t avail,
                      size_t *ht, const char *path);
/* BBE2: open frame i (sealed: stored + 16 bytes at p) in place; base:
 * the file's nonce, which crypt_chunk_head leaves right after the head. */
int crypt_chunk_frame (const struct repo_crypt *k, uint8_t *p, size_t stored,
                       size_t i, const uint8_t base[CRYPT_NONCE_LEN],
                       const char *path);

/* A chunk's keyed name from the plain digest. */
void crypt_name (const struct repo_crypt *k, uint8_t digest[REPO_DIGEST_LEN]);

/* Read or write (atomically, io_write_file_atomic) a point's metadata
 * file (manifest, index, domain.xml): sealed in an encrypted repository,
 * as is in a plain one.  Read: malloc'd, NUL added. */
int repo_meta_read (struct repo *r, const char *path, size_t max,
                    char **data, size_t *len);
int repo_meta_write (struct repo *r, const char *path, const void *data,
                     size_t len);

#endif /* BOOTBACK_REPO_CRYPT_H */
