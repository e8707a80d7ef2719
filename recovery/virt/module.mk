# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/virt: libbbvirt.a, the one home of libvirt (virt.c: connections,
# errors, the event loop, domains, block jobs, the guest agent, backups)
# and of the libxml2 helpers for libvirt's XML (xml.c, libxml2 only).
# Everything that talks to libvirt links it and adds $(VIRT_LIBS).
PC_VIRT   := libvirt libvirt-qemu libxml-2.0 jansson
VIRT_SRC  := recovery/virt/virt.c recovery/virt/xml.c recovery/virt/ceph.c \
             recovery/virt/storage.c
VIRT_OBJ  := $(VIRT_SRC:.c=.o)
VIRT_A    := recovery/virt/libbbvirt.a
# librbd and librados ship no .pc file (Debian 12): linked by name.
CEPH_LIBS := -lrbd -lrados
VIRT_LIBS  = $(call pc_libs,$(PC_VIRT) openssl) $(CEPH_LIBS)
LIBS_A    += $(VIRT_A)
DEPS      += libvirt-dev libxml2-dev libjansson-dev librbd-dev librados-dev qemu-block-extra libssl-dev

$(VIRT_OBJ) recovery/virt/test-virt.o: ALL_CFLAGS += $(call pc_cflags,$(PC_VIRT) openssl)
$(VIRT_A): $(VIRT_OBJ)
	$(AR) rcs $@ $^

# Unit test: the XML helpers on hostile input, rbd: names, errors without a daemon,
# and lifecycle and lookups for real against libvirt's test driver
# (test:///default, in-process: no daemon).
recovery/virt/test-virt: recovery/virt/test-virt.o $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(VIRT_LIBS) -lpthread
TEST_BINS += recovery/virt/test-virt
TESTS     += recovery/virt/test-virt
