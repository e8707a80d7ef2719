# SPDX-License-Identifier: LGPL-2.1-or-later
#
# virtnbd-stream.py URI STREAM BLOCKMAP: write a full virtnbdbackup backup
# ("stream" format, uncompressed) of the NBD export URI, the way
# virtnbdbackup's backupDisk does it (block status, then one data frame per
# data extent and one zero frame per zero extent), but without libvirt:
# with virtnbdbackup's own stream writer (libvirtnbdbackup.sparsestream).
# Then write the block map that virtnbdmap gives its nbdkit plugin
# (offset of each frame's payload in the file, original offset, length,
# data or zero).  Run with the system python3 (libnbd, libvirtnbdbackup).
import json
import os
import sys
from types import SimpleNamespace

import nbd
from libvirtnbdbackup.sparsestream import streamer, types

uri, out, mapfile = sys.argv[1:4]
MAX_REQUEST = 32 * 1024 * 1024

h = nbd.NBD()
h.add_meta_context("base:allocation")
h.connect_uri(uri)
size = h.get_size()

# Extents: (offset, length, data), merged, as virtnbdbackup's handler does.
extents = []
off = 0
while off < size:
    got = []

    def cb(metacontext, offset, entries, err):
        if metacontext != "base:allocation":
            return 0
        o = offset
        for i in range(0, len(entries), 2):
            got.append((o, entries[i], not (entries[i + 1] & 1)))
            o += entries[i]
        return 0

    h.block_status(min(size - off, 1 << 30), off, cb)
    for o, n, data in got:
        n = min(n, size - o)
        if extents and extents[-1][2] == data and extents[-1][0] + extents[-1][1] == o:
            extents[-1] = (extents[-1][0], extents[-1][1] + n, data)
        else:
            extents.append((o, n, data))
    off = got[-1][0] + got[-1][1]

stream = streamer.SparseStream(types)
t = types.SparseStreamTypes()
args = SimpleNamespace(cpt=SimpleNamespace(name="bench", parent=None),
                       compress=False, level="full")
disk = SimpleNamespace(target="vda", format="raw")
data_size = sum(n for _, n, d in extents if d)
with open(out, "wb") as w:
    meta = stream.dumpMetadata(args, size, data_size, disk)
    stream.writeFrame(w, t.META, 0, len(meta))
    w.write(meta)
    w.write(t.TERM)
    for o, n, data in extents:
        if data:
            stream.writeFrame(w, t.DATA, o, n)
            for p in range(o, o + n, MAX_REQUEST):
                w.write(h.pread(min(MAX_REQUEST, o + n - p), p))
            w.write(t.TERM)
        else:
            stream.writeFrame(w, t.ZERO, o, n)
    stream.writeFrame(w, t.STOP, 0, 0)
h.shutdown()

# The block map, as virtnbdmap's getDataRanges builds it.
ranges = []
with open(out, "rb") as r:
    kind, start, length = stream.readFrame(r)
    meta = stream.loadMetadata(r.read(length))
    assert r.read(len(t.TERM)) == t.TERM
    while True:
        kind, start, length = stream.readFrame(r)
        if kind == t.STOP:
            ranges[-1]["nextBlockOffset"] = None
            break
        b = {"offset": r.tell(), "originalOffset": start,
             "nextOriginalOffset": start + length, "length": length,
             "data": kind == t.DATA, "file": os.path.abspath(out),
             "inc": meta["incremental"]}
        if kind == t.DATA:
            r.seek(length, os.SEEK_CUR)
            assert r.read(len(t.TERM)) == t.TERM
        b["nextBlockOffset"] = r.tell() + t.FRAME_LEN
        ranges.append(b)
with open(mapfile, "w") as f:
    json.dump(ranges, f)
print("%d extents, %d frames, %d data bytes" % (len(extents), len(ranges), data_size))
