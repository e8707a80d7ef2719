recovery/repo/test-chunk.o: recovery/repo/test-chunk.c \
 /work/main/recovery/repo/repo-int.h /work/main/recovery/repo/repo.h \
 /work/main/recovery/util/util.h
/work/main/recovery/repo/repo-int.h:
/work/main/recovery/repo/repo.h:
/work/main/recovery/util/util.h:
