recovery/repo/test-retention.o: recovery/repo/test-retention.c \
 /work/main/recovery/repo/repo.h /work/main/recovery/util/util.h
/work/main/recovery/repo/repo.h:
/work/main/recovery/util/util.h:
