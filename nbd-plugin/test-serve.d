nbd-plugin/test-serve.o: nbd-plugin/test-serve.c \
 /work/main/nbd-plugin/serve.h /work/main/recovery/repo/repo.h \
 /work/main/recovery/util/util.h
/work/main/nbd-plugin/serve.h:
/work/main/recovery/repo/repo.h:
/work/main/recovery/util/util.h:
