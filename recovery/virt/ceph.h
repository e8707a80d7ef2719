/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ceph RBD as production storage (recovery/virt/ceph.c, librados and
 * librbd; part of libbbvirt.a): the rbd:POOL/IMAGE names bootback takes,
 * a connection to a cluster as one cephx user, the images of one pool
 * (exists, create, open, write, rename, remove), and what libvirt needs
 * to open an image as a network disk: the monitors' addresses, the
 * user's key in an ephemeral private libvirt secret, and the <disk> XML.
 *
 * Credentials: the cluster's conf and the user's keyring are files, named
 * by path (defaults: librados's, $CEPH_CONF or /etc/ceph/ceph.conf, and
 * the keyring the conf names); the key itself is read from the keyring
 * into memory and handed to libvirt with virSecretSetValue, never put on
 * a command line.  Names of pools and images are [A-Za-z0-9._+-] (no
 * ':', '@' or '/' QEMU would read as options, snapshots or namespaces).
 *
 * Errors: -1 or NULL with bootback's error set, one line naming the
 * pool, the image or the user ("ceph pool NAME: no such pool").
 */
#ifndef BOOTBACK_VIRT_CEPH_H
#define BOOTBACK_VIRT_CEPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#define VIRT_RBD_NAME_MAX 128        /* a pool's or an image's name */
#define VIRT_CEPH_KEY_MAX 128        /* a cephx key, base64 */

/* Where to find the cluster and who to be; NULL: librados's default. */
struct virt_ceph_opts {
  const char *conf;                  /* ceph.conf */
  const char *id;                    /* cephx user without "client." ("admin") */
  const char *keyring;               /* keyring file (else the conf's) */
};

/* Does spec name RBD storage ("rbd:...")? */
bool virt_is_rbd (const char *spec);
/* Split "rbd:POOL/IMAGE" (need_image) or "rbd:POOL[/PREFIX]" into pool
 * and image (prefix; "" if none).  -1 with "SPEC: ..." if malformed. */
int virt_rbd_parse (const char *spec, bool need_image,
                    char pool[VIRT_RBD_NAME_MAX + 1],
                    char image[VIRT_RBD_NAME_MAX + 1]);

/* A connection to the cluster and an I/O context on pool: NULL with
 * "ceph pool POOL: cannot connect as client.ID (keyring FILE): MESSAGE" or
 * "ceph pool POOL: no such pool". */
struct virt_ceph;
struct virt_ceph *virt_ceph_open (const struct virt_ceph_opts *o, const char *pool);
void virt_ceph_close (struct virt_ceph *c);
const char *virt_ceph_pool (const struct virt_ceph *c);

/* Is the pool flagged full in the OSD map (its quota reached, or an OSD
 * at the cluster's full ratio)?  Ceph then holds every write to it, and
 * a writer without an operation timeout (QEMU's rbd driver) waits
 * without end.  1 with why (a sentence naming the pool), 0 if not, -1
 * with the error. */
int virt_ceph_pool_full (struct virt_ceph *c, char *why, size_t len);
/* 1 if the pool has an image called name, 0 if not, -1 with the error. */
int virt_ceph_image_exists (struct virt_ceph *c, const char *name);
/* Create / remove / rename an image: -1 with "rbd:POOL/NAME: ...". */
int virt_ceph_image_create (struct virt_ceph *c, const char *name, uint64_t size);
int virt_ceph_image_remove (struct virt_ceph *c, const char *name);
int virt_ceph_image_rename (struct virt_ceph *c, const char *from, const char *to);
/* The image's owner tag (RBD image metadata "bootback.owner"): set it;
 * 1 if it is owner, 0 if not (or none), -1 with the error. */
int virt_ceph_image_tag (struct virt_ceph *c, const char *name, const char *owner);
int virt_ceph_image_tagged (struct virt_ceph *c, const char *name, const char *owner);
/* Size of an image, or -1 with the error. */
int64_t virt_ceph_image_size (struct virt_ceph *c, const char *name);

/* An open image, safe to write from several threads at once. */
struct virt_rbd_image;
struct virt_rbd_image *virt_rbd_open (struct virt_ceph *c, const char *name);
/* Write len bytes at off (zero: zero the range): -1 with the error. */
int virt_rbd_pwrite (struct virt_rbd_image *im, const void *buf, size_t len,
                     uint64_t off);
int virt_rbd_zero (struct virt_rbd_image *im, size_t len, uint64_t off);
int virt_rbd_flush (struct virt_rbd_image *im);
void virt_rbd_close (struct virt_rbd_image *im);

/* QEMU's name of an image, for qemu-img (paths, never the key):
 * "rbd:POOL/NAME:id=ID[:conf=CONF]:keyring=KEYRING:rados_osd_op_timeout=60"
 * (a write stuck for a minute, on a full pool, fails), malloc'd; NULL
 * with the error if a path holds a character QEMU's syntax cannot take. */
char *virt_ceph_qemu_name (struct virt_ceph *c, const char *name);

/* An ephemeral, private libvirt secret (usage type ceph, usage name
 * "bootback client.ID PID") holding the user's key, read from the
 * keyring; its UUID in uuid.  Secrets of that form whose PID is gone (a
 * killed bootback's) are removed first.  NULL with the error.  virt_ceph_secret_remove
 * undefines and frees it (NULL is fine). */
virSecretPtr virt_ceph_secret (virConnectPtr conn, struct virt_ceph *c,
                               char uuid[VIR_UUID_STRING_BUFLEN]);
void virt_ceph_secret_remove (virSecretPtr s);

/* The <host name='H' port='P'/> elements libvirt wants from a conf's
 * "mon host" ("[v2:10.0.0.1:3300,v1:10.0.0.1:6789] 10.0.0.2", ...): its
 * msgr1 and untyped addresses (port 6789 by default), at most 8, into
 * out.  -1 with the error if there is none.  (IPv6 and DNS SRV names are
 * not read.) */
#define VIRT_CEPH_MONS_XML_MAX 1280
int virt_ceph_mon_hosts (const char *mon_host, char *out, size_t len);

/* The <disk type='network'> of image name in the pool, format "raw" or
 * "qcow2": the monitors' addresses (<host name= port=>) from the conf,
 * <auth username='ID'> with the secret uuid (NULL: usage="usage" instead,
 * for a definition that outlives bootback's secret).  malloc'd, NULL with
 * the error. */
char *virt_ceph_disk_xml (struct virt_ceph *c, const char *name, const char *format,
                          const char *uuid, const char *usage);

#endif /* BOOTBACK_VIRT_CEPH_H */
