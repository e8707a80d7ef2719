# SPDX-License-Identifier: LGPL-2.1-or-later
#
# frames-image.py FILE: the 1 MiB image of test-frames.sh (text, 16 KiB
# of seeded random data, 4 KiB of zeros), the same bytes on every run:
# old-repo-64k.tar.gz holds it as imported by the bootback of 254412b.
import random
import sys

r = random.Random(7)
b = bytearray(b"".join(b"line %08d of the old-format fixture\n" % i
                       for i in range(40000))[:1 << 20])
b[300000:300000 + 16384] = r.randbytes(16384)
b[700000:700000 + 4096] = bytes(4096)
open(sys.argv[1], "wb").write(b)
