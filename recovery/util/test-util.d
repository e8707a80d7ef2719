recovery/util/test-util.o: recovery/util/test-util.c \
 /work/main/recovery/util/util.h
/work/main/recovery/util/util.h:
