# SPDX-License-Identifier: LGPL-2.1-or-later
# images/: recipes for small bootable guest images (images/README.md).
# Built images live in images/build/ (git-ignored), rebuilt only when the
# recipe changes.

# Building the images (build-tiny.sh, build-debian.sh) and booting them in
# the tests (plain QEMU, private libvirtd, network namespaces).
DEPS += qemu-system-x86 qemu-utils seabios ipxe-qemu busybox-static \
        syslinux syslinux-common mtools dosfstools fdisk e2fsprogs \
        qemu-guest-agent openssl util-linux \
        libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
        iproute2 iptables curl python3 bc debootstrap netcat-openbsd

images:
	@images/build-tiny.sh

images-debian:
	@images/build-debian.sh

images-clean:
	rm -rf images/build

TESTS += $(sort $(filter-out images/test-debian%,$(wildcard images/test-*.sh)))
TESTS_SLOW += $(sort $(wildcard images/test-debian*.sh))

.PHONY: images-debian images-clean
