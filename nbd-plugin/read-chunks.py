# SPDX-License-Identifier: LGPL-2.1-or-later
#
# read-chunks.py URI IMAGE CHUNK_SIZE [SPAN...]: read the export chunk by
# chunk (and each SPAN "OFFSET:LENGTH"), compare what reads with IMAGE,
# and print one line per request that failed: "bad OFFSET LENGTH ERRNO".
# Exit 1 if a successful read differs from IMAGE (never wrong data).
import errno
import sys

import nbd

uri, image, cs = sys.argv[1], sys.argv[2], int(sys.argv[3])
spans = [tuple(int(x) for x in s.split(":")) for s in sys.argv[4:]]
with open(image, "rb") as f:
    src = f.read()
h = nbd.NBD()
h.connect_uri(uri)
size = h.get_size()
assert size == len(src), (size, len(src))
reqs = [(o, min(cs, size - o)) for o in range(0, size, cs)] + spans
wrong = 0
for off, n in reqs:
    try:
        buf = h.pread(n, off)
    except nbd.Error as e:
        print("bad %d %d %s" % (off, n, errno.errorcode.get(e.errnum, e.errnum)))
        continue
    if buf != src[off:off + n]:
        print("WRONG DATA at %d %d" % (off, n))
        wrong += 1
h.shutdown()
sys.exit(1 if wrong else 0)
