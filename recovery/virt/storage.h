/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * virt/storage: libvirt's storage pools and volumes (part of libbbvirt.a),
 * for what bootback keeps on another host's storage through its libvirt
 * connection: a remote instant session's overlays and the images a
 * migration of it copies to.  Only file-based pools (dir, fs, netfs):
 * their volumes are files a domain names with <disk type='file'>.
 *
 * Errors as in virt.h: -1 with "pool P: ..." or "pool P: volume V: ..."
 * and libvirt's message.
 */
#ifndef BOOTBACK_VIRT_STORAGE_H
#define BOOTBACK_VIRT_STORAGE_H

#include <stdint.h>

#include <libvirt/libvirt.h>

/* The target directory of pool, into buf: the pool exists, is active and
 * file-based (refreshed, so that files made behind libvirt's back show as
 * volumes).  -1 with the error naming the pool and what is wrong. */
int virt_pool_dir (virConnectPtr c, const char *pool, char *buf, size_t len);
/* A new volume name in pool (format "qcow2" or "raw", capacity bytes; a
 * qcow2 one has no backing file: the domain's XML gives it), its path
 * into path.  -1 with the error ("exists already" if there is one). */
int virt_vol_create (virConnectPtr c, const char *pool, const char *name,
                     const char *format, uint64_t capacity, char *path, size_t len);
/* 1 if pool has a volume name, 0 if not, -1 with the error. */
int virt_vol_exists (virConnectPtr c, const char *pool, const char *name);
/* Delete volume name of pool; 0 too if there is none. */
int virt_vol_delete (virConnectPtr c, const char *pool, const char *name);
/* Delete the volume whose path is path (of any pool); 0 too if there is
 * none. */
int virt_vol_delete_path (virConnectPtr c, const char *path);

#endif /* BOOTBACK_VIRT_STORAGE_H */
