/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The manifest (manifest.json): the restore point's description, written
 * last.  JSON through jansson; every field read back is checked.
 *
 * Files of the point are pinned by their SHA-256: each disk's index
 * ("index_sha256") and the domain XML ("domain_xml": "domain.xml",
 * "domain_xml_sha256").  Manifests written before the domain XML was
 * pinned have no "domain_xml_sha256": they are read as unpinned.
 */
#include <errno.h>
#include <jansson.h>

#include "recovery/repo/repo-int.h"

char *
manifest_encode (const struct repo_manifest *m)
{
  json_t *o = json_object (), *disks = json_array (), *st;
  char hex[2 * REPO_DIGEST_LEN + 1], iso[ISO_TIME_LEN + 1];
  size_t i;
  char *s;

  iso_time_format (m->time, iso);
  json_object_set_new (o, "format", json_string ("bootback-point"));
  json_object_set_new (o, "version", json_integer (1));
  json_object_set_new (o, "vm", json_string (m->vm));
  json_object_set_new (o, "id", json_string (m->id));
  json_object_set_new (o, "time", json_string (iso));
  json_object_set_new (o, "parent", m->parent[0] ? json_string (m->parent)
                                                  : json_null ());
  json_object_set_new (o, "kind", json_string (m->kind));
  json_object_set_new (o, "consistency", json_string (m->consistency));
  json_object_set_new (o, "source", json_string (m->source));
  json_object_set_new (o, "checkpoint", m->checkpoint[0]
                       ? json_string (m->checkpoint) : json_null ());
  json_object_set_new (o, "chunk_size", json_integer (m->chunk_size));
  json_object_set_new (o, "domain_xml", m->has_domain_xml
                       ? json_string ("domain.xml") : json_null ());
  if (m->has_domain_xml && m->domain_xml_pinned) {
    hex_encode (m->domain_xml_sha256, REPO_DIGEST_LEN, hex);
    json_object_set_new (o, "domain_xml_sha256", json_string (hex));
  }
  for (i = 0; i < m->ndisks; i++) {
    const struct repo_disk_info *d = &m->disks[i];
    json_t *dj = json_object ();
    CLEANUP_FREE char *idx = xasprintf ("%s.fidx", d->name);

    hex_encode (d->index_sha256, REPO_DIGEST_LEN, hex);
    json_object_set_new (dj, "name", json_string (d->name));
    json_object_set_new (dj, "size", json_integer (d->size));
    json_object_set_new (dj, "index", json_string (idx));
    json_object_set_new (dj, "index_sha256", json_string (hex));
    json_object_set_new (dj, "format", json_string (d->format));
    json_object_set_new (dj, "zero_chunks", json_integer (d->zero_chunks));
    json_array_append_new (disks, dj);
  }
  json_object_set_new (o, "disks", disks);
  st = json_object ();
  json_object_set_new (st, "bytes_read", json_integer (m->stats.bytes_read));
  json_object_set_new (st, "new_chunks", json_integer (m->stats.new_chunks));
  json_object_set_new (st, "new_bytes", json_integer (m->stats.new_bytes));
  json_object_set_new (st, "stored_bytes", json_integer (m->stats.stored_bytes));
  json_object_set_new (st, "reused_chunks", json_integer (m->stats.reused_chunks));
  json_object_set_new (st, "seconds", json_real (m->stats.seconds));
  json_object_set_new (o, "stats", st);
  s = json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (o);
  if (!s) abort ();
  return s;
}

static int
get_str (json_t *o, const char *key, char *out, size_t len, bool null_ok)
{
  json_t *v = json_object_get (o, key);

  if (null_ok && (!v || json_is_null (v))) {
    out[0] = '\0';
    return 0;
  }
  if (!json_is_string (v) || json_string_length (v) >= len) {
    error_set (EIO, "field '%s' is missing or invalid", key);
    return -1;
  }
  strcpy (out, json_string_value (v));
  return 0;
}

/* Text a command prints to the administrator's terminal: printable ASCII
 * only (an escape sequence from a repository others write could clear the
 * screen, hide lines, set the title or, on some terminals, the clipboard). */
static bool
printable (const char *s)
{
  for (; *s; s++)
    if (*s < 0x20 || *s > 0x7e)
      return false;
  return true;
}

static int
get_u64 (json_t *o, const char *key, uint64_t *out)
{
  json_t *v = json_object_get (o, key);

  if (!json_is_integer (v) || json_integer_value (v) < 0) {
    error_set (EIO, "field '%s' is missing or invalid", key);
    return -1;
  }
  *out = json_integer_value (v);
  return 0;
}

/* "domain_xml_sha256": absent (unpinned) or the file's SHA-256. */
static int
decode_domain_xml_pin (json_t *o, struct repo_manifest *m)
{
  json_t *v = json_object_get (o, "domain_xml_sha256");
  char hex[2 * REPO_DIGEST_LEN + 1];

  if (!v || json_is_null (v))
    return 0;
  if (!m->has_domain_xml) {
    error_set (EIO, "field 'domain_xml_sha256' is set but there is no "
               "domain XML");
    return -1;
  }
  if (get_str (o, "domain_xml_sha256", hex, sizeof hex, false) == -1 ||
      hex_decode (hex, m->domain_xml_sha256, REPO_DIGEST_LEN) == -1) {
    error_set (EIO, "field 'domain_xml_sha256' is invalid");
    return -1;
  }
  m->domain_xml_pinned = true;
  return 0;
}

int
manifest_decode (const char *text, struct repo_manifest *m)
{
  json_error_t je;
  json_t *o = json_loads (text, 0, &je), *disks, *st, *v;
  char iso[32], hex[2 * REPO_DIGEST_LEN + 1];
  uint64_t u;
  size_t i;

  memset (m, 0, sizeof *m);
  if (!o) {
    error_set (EIO, "invalid JSON at line %d: %s", je.line, je.text);
    return -1;
  }
  v = json_object_get (o, "format");
  if (!json_is_string (v) || strcmp (json_string_value (v), "bootback-point")) {
    error_set (EIO, "not a bootback manifest");
    goto err;
  }
  if (get_u64 (o, "version", &u) == -1) goto err;
  if (u != 1) {
    error_set (EIO, "manifest version %" PRIu64 " is not supported", u);
    goto err;
  }
  if (get_str (o, "vm", m->vm, sizeof m->vm, false) == -1 ||
      get_str (o, "id", m->id, sizeof m->id, false) == -1 ||
      get_str (o, "time", iso, sizeof iso, false) == -1 ||
      get_str (o, "parent", m->parent, sizeof m->parent, true) == -1 ||
      get_str (o, "kind", m->kind, sizeof m->kind, false) == -1 ||
      get_str (o, "consistency", m->consistency, sizeof m->consistency, false) == -1 ||
      get_str (o, "source", m->source, sizeof m->source, false) == -1 ||
      get_str (o, "checkpoint", m->checkpoint, sizeof m->checkpoint, true) == -1)
    goto err;
  if (timestamp_parse (iso, &m->time) == -1) {
    error_set (EIO, "field 'time' is invalid");
    goto err;
  }
  /* Names that become paths and catalog keys: only well-formed ones. */
  if (!name_is_valid (m->vm) || !point_id_is_valid (m->id) ||
      (m->parent[0] && !point_id_is_valid (m->parent))) {
    error_set (EIO, "field 'vm', 'id' or 'parent' is invalid");
    goto err;
  }
  if (!printable (m->kind) || !printable (m->consistency) ||
      !printable (m->source) || !printable (m->checkpoint)) {
    error_set (EIO, "field 'kind', 'consistency', 'source' or 'checkpoint' "
               "has a character that is not printable ASCII");
    goto err;
  }
  if (get_u64 (o, "chunk_size", &u) == -1) goto err;
  m->chunk_size = u;
  v = json_object_get (o, "domain_xml");
  m->has_domain_xml = json_is_string (v);
  if (decode_domain_xml_pin (o, m) == -1)
    goto err;
  disks = json_object_get (o, "disks");
  if (!json_is_array (disks) || json_array_size (disks) == 0 ||
      json_array_size (disks) > REPO_MAX_DISKS) {
    error_set (EIO, "field 'disks' is missing or invalid");
    goto err;
  }
  m->ndisks = json_array_size (disks);
  for (i = 0; i < m->ndisks; i++) {
    json_t *dj = json_array_get (disks, i);
    struct repo_disk_info *d = &m->disks[i];

    if (get_str (dj, "name", d->name, sizeof d->name, false) == -1 ||
        get_u64 (dj, "size", &d->size) == -1 ||
        get_str (dj, "index_sha256", hex, sizeof hex, false) == -1 ||
        get_str (dj, "format", d->format, sizeof d->format, true) == -1 ||
        get_u64 (dj, "zero_chunks", &d->zero_chunks) == -1)
      goto err;
    if (!disk_name_is_valid (d->name) || !printable (d->format) ||
        hex_decode (hex, d->index_sha256, REPO_DIGEST_LEN) == -1) {
      error_set (EIO, "disk %zu has an invalid name, format or index checksum", i);
      goto err;
    }
    for (size_t k = 0; k < i; k++)
      if (strcmp (m->disks[k].name, d->name) == 0) {
        error_set (EIO, "disk '%s' is named twice", d->name);
        goto err;
      }
  }
  m->stats.raw_bytes = -1;     /* never in a manifest (repo.h) */
  st = json_object_get (o, "stats");
  if (json_is_object (st)) {
    get_u64 (st, "bytes_read", &m->stats.bytes_read);
    get_u64 (st, "new_chunks", &m->stats.new_chunks);
    get_u64 (st, "new_bytes", &m->stats.new_bytes);
    get_u64 (st, "stored_bytes", &m->stats.stored_bytes);
    get_u64 (st, "reused_chunks", &m->stats.reused_chunks);
    v = json_object_get (st, "seconds");
    if (json_is_number (v))
      m->stats.seconds = json_number_value (v);
  }
  json_decref (o);
  return 0;
 err:
  json_decref (o);
  return -1;
}

/* The point as bootback points --json and the web API show it (repo.h). */
json_t *
repo_manifest_json (const struct repo_manifest *m)
{
  json_t *disks = json_array ();
  char iso[ISO_TIME_LEN + 1], hex[2 * REPO_DIGEST_LEN + 1], pt[160];
  uint64_t total = 0;
  size_t i;

  snprintf (pt, sizeof pt, "%s@%s", m->vm, m->id);

  iso_time_format (m->time, iso);
  for (i = 0; i < m->ndisks; i++) {
    hex_encode (m->disks[i].index_sha256, REPO_DIGEST_LEN, hex);
    json_array_append_new (disks, json_pack ("{s:s, s:I, s:s, s:s, s:I}",
                                             "name", m->disks[i].name,
                                             "size", (json_int_t) m->disks[i].size,
                                             "format", m->disks[i].format,
                                             "index_sha256", hex,
                                             "zero_chunks", (json_int_t) m->disks[i].zero_chunks));
    total += m->disks[i].size;
  }
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I,"
                    " s:o, s:{s:I, s:I, s:I, s:I, s:I, s:f}}",
                    "point", pt,
                    "vm", m->vm, "time", iso, "id", m->id,
                    "kind", m->kind, "consistency", m->consistency,
                    "source", m->source, "protected", m->protected,
                    "domain_xml", m->has_domain_xml,
                    "chunk_size", (json_int_t) m->chunk_size,
                    "size", (json_int_t) total, "disks", disks, "stats",
                    "bytes_read", (json_int_t) m->stats.bytes_read,
                    "new_chunks", (json_int_t) m->stats.new_chunks,
                    "new_bytes", (json_int_t) m->stats.new_bytes,
                    "stored_bytes", (json_int_t) m->stats.stored_bytes,
                    "reused_chunks", (json_int_t) m->stats.reused_chunks,
                    "seconds", m->stats.seconds);
}
