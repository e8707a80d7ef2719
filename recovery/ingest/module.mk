# recovery/ingest: libbbingest.a, import of images and full restore
# (through qemu-img / qemu-nbd and libnbd).
INGEST_SRC := $(filter-out recovery/ingest/test-%,$(wildcard recovery/ingest/*.c))
INGEST_OBJ := $(INGEST_SRC:.c=.o)
INGEST_A   := recovery/ingest/libbbingest.a
LIBS_A     += $(INGEST_A)
DEPS       += libnbd-dev qemu-utils

$(INGEST_OBJ): ALL_CFLAGS += $(call pc_cflags,libnbd jansson)
$(INGEST_A): $(INGEST_OBJ)
	$(AR) rcs $@ $^
