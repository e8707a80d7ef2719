# recovery/cli: the bootback program and its man page.
CLI_SRC := $(filter-out recovery/cli/test-%,$(wildcard recovery/cli/*.c))
CLI_OBJ := $(CLI_SRC:.c=.o)
CLI_BIN := recovery/cli/bootback
BINS    += $(CLI_BIN)
MANS    += recovery/cli/bootback.1
DEPS    += libjansson-dev

$(CLI_OBJ): ALL_CFLAGS += $(call pc_cflags,jansson sqlite3 libnbd libvirt)
# verify/ and lab/ are included after this file: named, not $(VERIFY_A).
$(CLI_BIN): $(CLI_OBJ) verify/libverify.a lab/liblab.a $(INSTANT_A) $(INGEST_A) \
            $(CATALOG_A) $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(call pc_libs,libnbd sqlite3 libvirt libxml-2.0 $(PC_REPO)) \
	  $(INSTANT_LIBS) $(call pc_libs,libfyaml libvirt-qemu zlib) -lm -lpthread
