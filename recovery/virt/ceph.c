/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ceph RBD through librados and librbd, and the libvirt side of a
 * network disk on RBD (recovery/virt/ceph.h).
 *
 * Design notes.
 *  - One connection per command: librados reads the conf (o->conf or its
 *    own search: $CEPH_CONF, /etc/ceph/ceph.conf), becomes client.ID and
 *    authenticates with the keyring (o->keyring or the conf's); its own
 *    logging goes nowhere (bootback reports the error), and a cluster
 *    that does not answer fails after VIRT_CEPH_TIMEOUT seconds, not
 *    librados's 300.
 *  - The key is read from the keyring file by bootback only to hand it to
 *    libvirt (virSecretSetValue, raw bytes: libvirt base64-encodes it for
 *    QEMU's secret object).  The secret is ephemeral (never written to
 *    disk by libvirt) and private (libvirt never gives its value back);
 *    the caller removes it when the operation ends.  A running QEMU keeps
 *    the key it was given; the domain's persistent definition names a
 *    secret by usage (the user defines that one, README "Ceph RBD").
 *    A secret's usage name carries its process's PID: one left by a
 *    killed bootback is removed by the next virt_ceph_secret.
 *  - libvirt wants the monitors as <host name= port=>: taken from the
 *    conf's "mon host", its msgr1 ("v1:") addresses, or untyped ones
 *    (port 6789 by default), as QEMU's rbd driver connects by mon_host.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <signal.h>
#include <unistd.h>

#include "recovery/util/util.h"
#include "recovery/virt/ceph.h"
#include "recovery/virt/virt.h"

#define VIRT_CEPH_TIMEOUT "20"       /* seconds: mount and OSD operations */
#define VIRT_CEPH_QEMU_OP_TIMEOUT 60  /* seconds: an OSD write of qemu-img */
#define CEPH_MONS_MAX 8           /* monitors given to libvirt, at most */

struct virt_ceph {
  rados_t cluster;
  rados_ioctx_t io;
  char pool[VIRT_RBD_NAME_MAX + 1];
  char id[VIRT_RBD_NAME_MAX + 1];
  char *conf;                        /* as given, or NULL */
  char keyring[4096];                /* the file the key comes from */
};

struct virt_rbd_image {
  rbd_image_t img;
  char name[2 * VIRT_RBD_NAME_MAX + 8];  /* "rbd:POOL/NAME" for errors */
};

bool
virt_is_rbd (const char *spec)
{
  return spec && strncmp (spec, "rbd:", 4) == 0;
}

static bool
name_ok (const char *s, size_t n)
{
  size_t i;

  if (n == 0 || n > VIRT_RBD_NAME_MAX)
    return false;
  for (i = 0; i < n; i++)
    if (!isalnum ((unsigned char) s[i]) && !strchr ("._+-", s[i]))
      return false;
  return true;
}

int
virt_rbd_parse (const char *spec, bool need_image,
                char pool[VIRT_RBD_NAME_MAX + 1], char image[VIRT_RBD_NAME_MAX + 1])
{
  const char *p = spec + 4, *slash;
  size_t np;

  if (!virt_is_rbd (spec)) {
    error_setx ("%s: not an RBD name (rbd:POOL/IMAGE)", spec);
    return -1;
  }
  slash = strchr (p, '/');
  np = slash ? (size_t) (slash - p) : strlen (p);
  if (!name_ok (p, np) || (slash && !name_ok (slash + 1, strlen (slash + 1))) ||
      (need_image && !slash)) {
    error_setx ("%s: expected rbd:POOL%s, each name of 1 to %d characters "
                "[A-Za-z0-9._+-]", spec, need_image ? "/IMAGE" : "[/PREFIX]",
                VIRT_RBD_NAME_MAX);
    return -1;
  }
  memcpy (pool, p, np);
  pool[np] = '\0';
  snprintf (image, VIRT_RBD_NAME_MAX + 1, "%s", slash ? slash + 1 : "");
  return 0;
}

static int
keyring_set (struct virt_ceph *c, const char *path)
{
  if (strlen (path) >= sizeof c->keyring) {
    error_setx ("ceph: keyring path too long: %.64s...", path);
    return -1;
  }
  snprintf (c->keyring, sizeof c->keyring, "%s", path);
  return 0;
}

/* The keyring file: o->keyring, else the first readable file of the
 * conf's "keyring" list. */
static int
find_keyring (struct virt_ceph *c, const struct virt_ceph_opts *o)
{
  char list[4096], *tok, *save = NULL;

  if (o->keyring)
    return keyring_set (c, o->keyring);
  if (rados_conf_get (c->cluster, "keyring", list, sizeof list) < 0)
    list[0] = '\0';
  for (tok = strtok_r (list, ",; \t", &save); tok; tok = strtok_r (NULL, ",; \t", &save))
    if (access (tok, R_OK) == 0)
      return keyring_set (c, tok);
  error_setx ("ceph: no keyring for client.%s (give --ceph-keyring FILE)", c->id);
  return -1;
}

static int
cluster_connect (struct virt_ceph *c, const struct virt_ceph_opts *o)
{
  int r;

  r = rados_create (&c->cluster, c->id);
  if (r < 0) {
    error_set (-r, "ceph: client.%s", c->id);
    return -1;
  }
  r = rados_conf_read_file (c->cluster, o->conf);
  if (r < 0) {
    error_set (-r, "ceph: cannot read %s", o->conf ? o->conf : "the cluster's ceph.conf");
    return -1;
  }
  rados_conf_set (c->cluster, "log_to_stderr", "false");
  rados_conf_set (c->cluster, "err_to_stderr", "false");
  rados_conf_set (c->cluster, "log_file", "");
  rados_conf_set (c->cluster, "client_mount_timeout", VIRT_CEPH_TIMEOUT);
  rados_conf_set (c->cluster, "rados_osd_op_timeout", VIRT_CEPH_TIMEOUT);
  rados_conf_set (c->cluster, "rados_mon_op_timeout", VIRT_CEPH_TIMEOUT);
  if (find_keyring (c, o) == -1)
    return -1;
  rados_conf_set (c->cluster, "keyring", c->keyring);
  r = rados_connect (c->cluster);
  if (r < 0) {
    error_set (-r, "ceph pool %s: cannot connect as client.%s (keyring %s)%s", c->pool,
               c->id, c->keyring, r == -EACCES || r == -EPERM || r == -EIO
               ? ": the key was refused, or no monitor answered" : "");
    return -1;
  }
  return 0;
}

struct virt_ceph *
virt_ceph_open (const struct virt_ceph_opts *o, const char *pool)
{
  struct virt_ceph *c = xcalloc (1, sizeof *c);
  int r;

  snprintf (c->pool, sizeof c->pool, "%s", pool);
  snprintf (c->id, sizeof c->id, "%s", o->id ? o->id : "admin");
  if (!name_ok (c->id, strlen (c->id))) {
    error_setx ("ceph: '%s' is not a cephx user name", o->id);
    goto fail;
  }
  c->conf = o->conf ? xstrdup (o->conf) : NULL;
  if (cluster_connect (c, o) == -1)
    goto fail;
  r = rados_ioctx_create (c->cluster, pool, &c->io);
  if (r < 0) {
    if (r == -ENOENT)
      error_setx ("ceph pool %s: no such pool", pool);
    else
      error_set (-r, "ceph pool %s", pool);
    goto fail;
  }
  return c;
 fail:
  virt_ceph_close (c);
  return NULL;
}

void
virt_ceph_close (struct virt_ceph *c)
{
  if (!c)
    return;
  if (c->io)
    rados_ioctx_destroy (c->io);
  if (c->cluster)
    rados_shutdown (c->cluster);
  free (c->conf);
  free (c);
}

const char *
virt_ceph_pool (const struct virt_ceph *c)
{
  return c->pool;
}

/* Is token (a flag name) in the comma-separated list? */
static bool
has_flag (const char *list, const char *token)
{
  size_t n = strlen (token);

  for (const char *p = list; p && *p; p = strchr (p, ',') ? strchr (p, ',') + 1 : NULL)
    if (strncmp (p, token, n) == 0 && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

int
virt_ceph_pool_full (struct virt_ceph *c, char *why, size_t len)
{
  const char *cmd[] = { "{\"prefix\": \"osd dump\", \"format\": \"json\"}" };
  char *out = NULL, *status = NULL;
  size_t outlen = 0, statuslen = 0, i;
  json_t *root, *pools, *p;
  int r = rados_mon_command (c->cluster, cmd, 1, "", 0, &out, &outlen, &status,
                             &statuslen);

  if (r < 0) {
    error_set (-r, "ceph pool %s: the OSD map (osd dump)", c->pool);
    rados_buffer_free (out);
    rados_buffer_free (status);
    return -1;
  }
  root = json_loadb (out, outlen, 0, NULL);
  rados_buffer_free (out);
  rados_buffer_free (status);
  pools = json_object_get (root, "pools");
  r = 0;
  json_array_foreach (pools, i, p) {
    const char *name = json_string_value (json_object_get (p, "pool_name"));
    const char *flags = json_string_value (json_object_get (p, "flags_names"));
    if (!name || strcmp (name, c->pool) != 0 || !flags)
      continue;
    r = 1;
    if (has_flag (flags, "full_quota"))
      snprintf (why, len, "ceph pool %s is full: its quota is reached", c->pool);
    else if (has_flag (flags, "full"))
      snprintf (why, len, "ceph pool %s is full: an OSD of the cluster reached "
                "its full ratio", c->pool);
    else
      r = 0;
  }
  json_decref (root);
  return r;
}

/* ---- images ---------------------------------------------------------------- */

static int
rbd_fail (const struct virt_ceph *c, const char *name, int r, const char *what)
{
  error_set (-r, "rbd:%s/%s: %s", c->pool, name, what);
  return -1;
}

int
virt_ceph_image_exists (struct virt_ceph *c, const char *name)
{
  rbd_image_t img;
  int r = rbd_open_read_only (c->io, name, &img, NULL);

  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return rbd_fail (c, name, r, "open");
  rbd_close (img);
  return 1;
}

int
virt_ceph_image_create (struct virt_ceph *c, const char *name, uint64_t size)
{
  int order = 0, r = rbd_create (c->io, name, size, &order);

  if (r == -EEXIST) {
    error_setx ("rbd:%s/%s exists already", c->pool, name);
    return -1;
  }
  return r < 0 ? rbd_fail (c, name, r, "create") : 0;
}

int
virt_ceph_image_remove (struct virt_ceph *c, const char *name)
{
  int r = rbd_remove (c->io, name);

  return r < 0 ? rbd_fail (c, name, r, "remove") : 0;
}

int
virt_ceph_image_rename (struct virt_ceph *c, const char *from, const char *to)
{
  int r = rbd_rename (c->io, from, to);

  if (r == -EEXIST) {
    error_setx ("rbd:%s/%s exists already (created while restoring); refusing "
                "to overwrite it", c->pool, to);
    return -1;
  }
  return r < 0 ? rbd_fail (c, from, r, "rename") : 0;
}

#define OWNER_KEY "bootback.owner"

int
virt_ceph_image_tag (struct virt_ceph *c, const char *name, const char *owner)
{
  struct virt_rbd_image *im = virt_rbd_open (c, name);
  int r;

  if (!im)
    return -1;
  r = rbd_metadata_set (im->img, OWNER_KEY, owner);
  virt_rbd_close (im);
  return r < 0 ? rbd_fail (c, name, r, "set its metadata") : 0;
}

int
virt_ceph_image_tagged (struct virt_ceph *c, const char *name, const char *owner)
{
  struct virt_rbd_image *im = virt_rbd_open (c, name);
  char v[8192];
  size_t len = sizeof v;
  int r;

  if (!im)
    return -1;
  r = rbd_metadata_get (im->img, OWNER_KEY, v, &len);
  virt_rbd_close (im);
  if (r == -ENOENT || r == -ERANGE)
    return 0;
  if (r < 0)
    return rbd_fail (c, name, r, "read its metadata");
  return len <= sizeof v && strnlen (v, len) < len && strcmp (v, owner) == 0;
}

int64_t
virt_ceph_image_size (struct virt_ceph *c, const char *name)
{
  struct virt_rbd_image *im = virt_rbd_open (c, name);
  uint64_t size;
  int r;

  if (!im)
    return -1;
  r = rbd_get_size (im->img, &size);
  virt_rbd_close (im);
  return r < 0 ? rbd_fail (c, name, r, "size") : (int64_t) size;
}

struct virt_rbd_image *
virt_rbd_open (struct virt_ceph *c, const char *name)
{
  struct virt_rbd_image *im = xcalloc (1, sizeof *im);
  int r = rbd_open (c->io, name, &im->img, NULL);

  if (r < 0) {
    free (im);
    rbd_fail (c, name, r, "open");
    return NULL;
  }
  snprintf (im->name, sizeof im->name, "rbd:%s/%s", c->pool, name);
  return im;
}

int
virt_rbd_pwrite (struct virt_rbd_image *im, const void *buf, size_t len, uint64_t off)
{
  ssize_t r = rbd_write (im->img, off, len, buf);

  if (r < 0 || (size_t) r != len) {
    error_set (r < 0 ? (int) -r : EIO, "%s: write at %" PRIu64, im->name, off);
    return -1;
  }
  return 0;
}

int
virt_rbd_zero (struct virt_rbd_image *im, size_t len, uint64_t off)
{
  int r = rbd_write_zeroes (im->img, off, len, 0, 0);

  if (r < 0) {
    error_set (-r, "%s: zero at %" PRIu64, im->name, off);
    return -1;
  }
  return 0;
}

int
virt_rbd_flush (struct virt_rbd_image *im)
{
  int r = rbd_flush (im->img);

  if (r < 0) {
    error_set (-r, "%s: flush", im->name);
    return -1;
  }
  return 0;
}

void
virt_rbd_close (struct virt_rbd_image *im)
{
  if (!im)
    return;
  rbd_close (im->img);
  free (im);
}

/* ---- QEMU and libvirt -------------------------------------------------------- */

char *
virt_ceph_qemu_name (struct virt_ceph *c, const char *name)
{
  if (strpbrk (c->keyring, ":\\@") || (c->conf && strpbrk (c->conf, ":\\@"))) {
    error_setx ("ceph: the paths of the conf and keyring must not hold ':', '@' "
                "or '\\' (QEMU's rbd: syntax)");
    return NULL;
  }
  /* An OSD write that waits longer (a full or stuck cluster) fails the
   * copy instead of hanging it: QEMU hands unknown keys to librados. */
  return xasprintf ("rbd:%s/%s:id=%s%s%s:keyring=%s:rados_osd_op_timeout=%d", c->pool,
                    name, c->id, c->conf ? ":conf=" : "", c->conf ? c->conf : "",
                    c->keyring, VIRT_CEPH_QEMU_OP_TIMEOUT);
}

/* The key of client.ID in the keyring (base64), into key. */
static int
read_key (struct virt_ceph *c, char key[VIRT_CEPH_KEY_MAX + 1])
{
  CLEANUP_FCLOSE FILE *f = fopen (c->keyring, "re");
  char line[512], section[VIRT_RBD_NAME_MAX + 16];
  bool ours = false;

  if (!f) {
    error_set (errno, "ceph: keyring %s", c->keyring);
    return -1;
  }
  snprintf (section, sizeof section, "[client.%s]", c->id);
  while (fgets (line, sizeof line, f)) {
    char *p = line + strspn (line, " \t"), v[VIRT_CEPH_KEY_MAX + 1];
    if (*p == '[')
      ours = strncmp (p, section, strlen (section)) == 0;
    else if (ours && sscanf (p, "key = %128[A-Za-z0-9+/=]", v) == 1) {
      memcpy (key, v, sizeof v);
      return 0;
    }
  }
  error_setx ("ceph: keyring %s has no key for client.%s", c->keyring, c->id);
  return -1;
}

/* Remove the secrets of bootback processes that are gone (a killed
 * migrate could not remove its own): usage "bootback client.ID PID" with
 * no process PID.  Best effort. */
static void
sweep_secrets (virConnectPtr conn)
{
  virSecretPtr *secrets = NULL;
  int n = virConnectListAllSecrets (conn, &secrets, VIR_CONNECT_LIST_SECRETS_EPHEMERAL), k;

  for (k = 0; k < n; k++) {
    const char *usage = virSecretGetUsageID (secrets[k]);
    const char *sp = usage ? strrchr (usage, ' ') : NULL;
    long pid = sp ? strtol (sp + 1, NULL, 10) : 0;
    if (virSecretGetUsageType (secrets[k]) == VIR_SECRET_USAGE_TYPE_CEPH &&
        strncmp (usage, "bootback client.", 16) == 0 && pid > 0 &&
        kill ((pid_t) pid, 0) == -1 && errno == ESRCH)
      virSecretUndefine (secrets[k]);
    virSecretFree (secrets[k]);
  }
  free (secrets);
}

virSecretPtr
virt_ceph_secret (virConnectPtr conn, struct virt_ceph *c,
                  char uuid[VIR_UUID_STRING_BUFLEN])
{
  char key[VIRT_CEPH_KEY_MAX + 1];
  unsigned char raw[VIRT_CEPH_KEY_MAX];
  CLEANUP_FREE char *xml =
    xasprintf ("<secret ephemeral='yes' private='yes'><description>bootback: "
               "client.%s, removed when the operation ends</description><usage "
               "type='ceph'><name>bootback client.%s %ld</name></usage></secret>",
               c->id, c->id, (long) getpid ());
  virSecretPtr s;
  int n;

  sweep_secrets (conn);
  if (read_key (c, key) == -1)
    return NULL;
  n = EVP_DecodeBlock (raw, (const unsigned char *) key, strlen (key));
  if (n < 0) {
    error_setx ("ceph: keyring %s: the key of client.%s is not base64", c->keyring, c->id);
    return NULL;
  }
  n -= (strlen (key) > 1 && key[strlen (key) - 1] == '=') +
       (strlen (key) > 2 && key[strlen (key) - 2] == '=');
  s = virSecretDefineXML (conn, xml, 0);
  if (!s) {
    virt_error_set ("define a libvirt secret for client.%s", c->id);
    return NULL;
  }
  if (virSecretSetValue (s, raw, n, 0) == -1 ||
      virSecretGetUUIDString (s, uuid) == -1) {
    virt_error_set ("set the libvirt secret of client.%s", c->id);
    virt_ceph_secret_remove (s);
    s = NULL;
  }
  explicit_bzero (raw, sizeof raw);
  explicit_bzero (key, sizeof key);
  return s;
}

void
virt_ceph_secret_remove (virSecretPtr s)
{
  if (!s)
    return;
  virSecretUndefine (s);
  virSecretFree (s);
}

int
virt_ceph_mon_hosts (const char *mon_host, char *out, size_t len)
{
  CLEANUP_FREE char *list = xstrdup (mon_host ? mon_host : "");
  char *tok, *save = NULL, *port;
  size_t n = 0, used = 0;

  out[0] = '\0';
  for (tok = strtok_r (list, "[], ;\t", &save); tok && n < CEPH_MONS_MAX;
       tok = strtok_r (NULL, "[], ;\t", &save)) {
    if (strncmp (tok, "v2:", 3) == 0)
      continue;
    if (strncmp (tok, "v1:", 3) == 0)
      tok += 3;
    port = strrchr (tok, ':');
    if (port)
      *port++ = '\0';
    if (!name_ok (tok, strlen (tok)) || (port && (!*port || strspn (port, "0123456789") !=
                                                  strlen (port))))
      continue;
    used += snprintf (out + used, len - MIN (used, len), "<host name='%s' port='%s'/>",
                      tok, port ? port : "6789");
    n++;
  }
  if (n == 0 || used >= len) {
    error_setx ("ceph: no monitor address (v1 or untyped) in the conf's mon host '%s'",
                mon_host ? mon_host : "");
    return -1;
  }
  return 0;
}

char *
virt_ceph_disk_xml (struct virt_ceph *c, const char *name, const char *format,
                    const char *uuid, const char *usage)
{
  char hosts[VIRT_CEPH_MONS_XML_MAX], list[1024];

  if (rados_conf_get (c->cluster, "mon_host", list, sizeof list) < 0)
    list[0] = '\0';
  if (virt_ceph_mon_hosts (list, hosts, sizeof hosts) == -1)
    return NULL;
  /* Names are [A-Za-z0-9._+-] (virt_rbd_parse), the usage bootback's own. */
  return xasprintf ("<disk type='network' device='disk'><driver name='qemu' "
                    "type='%s'/><source protocol='rbd' name='%s/%s'>%s</source>"
                    "<auth username='%s'><secret type='ceph' %s='%s'/></auth></disk>",
                    format, c->pool, name, hosts, c->id, uuid ? "uuid" : "usage",
                    uuid ? uuid : usage);
}
