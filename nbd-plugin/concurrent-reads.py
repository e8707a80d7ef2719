# SPDX-License-Identifier: LGPL-2.1-or-later
#
# concurrent-reads.py SOCKET THREADS REQUESTS SEED EXPORT=IMAGE...:
# THREADS connections at once, each to one of the exports, each issuing
# REQUESTS random reads (random offset and length, 16 in flight at a time)
# and checking every byte against IMAGE.  Exit 1 on any difference or
# error.
import random
import sys
import threading

import nbd

sock, nthreads, nreqs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
exports = []
for arg in sys.argv[5:]:
    name, image = arg.split("=", 1)
    with open(image, "rb") as f:
        exports.append((name, f.read()))
failures = []


def worker(k):
    rng = random.Random(seed * 1000 + k)
    name, src = exports[k % len(exports)]
    h = nbd.NBD()
    h.connect_uri("nbd+unix:///%s?socket=%s" % (name, sock))
    size = h.get_size()
    done = 0
    try:
        while done < nreqs:
            batch = []
            for _ in range(min(16, nreqs - done)):
                # Mostly small reads, some spanning several chunks.
                n = rng.choice([1, 512, 4096, 65536, 100000, 1 << 20, 3 << 20])
                n = max(1, min(n, size))
                off = rng.randrange(0, size - n + 1)
                buf = nbd.Buffer(n)
                cookie = h.aio_pread(buf, off)
                batch.append((cookie, buf, off, n))
            for cookie, buf, off, n in batch:
                while not h.aio_command_completed(cookie):
                    h.poll(-1)
                if buf.to_bytearray() != src[off:off + n]:
                    failures.append("%s: wrong data at %d+%d" % (name, off, n))
            done += len(batch)
        h.shutdown()
    except nbd.Error as e:
        failures.append("%s: %s" % (name, e))


threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for f in failures[:20]:
    print(f)
sys.exit(1 if failures else 0)
