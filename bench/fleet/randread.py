#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/fleet: 4 KiB random reads over NBD with libnbd, QUEUE requests in
# flight, for SECONDS; prints the reads per second.  (fio's nbd engine
# cannot be given the TLS certificates: libnbd refuses a URI naming a
# local file unless the program allows it, which fio does not.)
#
#   randread.py URI SECONDS [QUEUE]
import random
import sys
import time

import nbd

uri, secs = sys.argv[1], float(sys.argv[2])
queue = int(sys.argv[3]) if len(sys.argv) > 3 else 16
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(uri)
blocks = h.get_size() // 4096
rng = random.Random(1)
bufs = [nbd.Buffer(4096) for _ in range(queue)]
done = 0


def completed(err):
    global done
    if err.value:
        sys.exit("randread: read failed: %s" % err.value)
    done += 1
    return 1


end = time.monotonic() + secs
i = 0
while time.monotonic() < end:
    while h.aio_in_flight() < queue:
        h.aio_pread(bufs[i % queue], rng.randrange(blocks) * 4096, completed)
        i += 1
    h.poll(-1)
while h.aio_in_flight() > 0:
    h.poll(-1)
print(round(done / secs))
h.shutdown()
