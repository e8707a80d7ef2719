#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# subreaper.py COMMAND [ARG...]: run a self-daemonising COMMAND (libvirtd -d)
# under a child subreaper that reaps every orphan of it at once, as systemd
# does on a real host.
#
# Why: libvirt daemonises QEMU, so a QEMU that exits is reaped by the nearest
# subreaper or by PID 1, and `virsh destroy` waits until it is (a zombie
# still answers kill(pid, 0)).  This machine's PID 1 reaps orphans only every
# 1-2 s, which every lab teardown would pay.
#
# Exits with COMMAND's own exit status once COMMAND's first process has
# exited (for libvirtd -d: once the daemon is ready); the reaper stays behind,
# detached, until the last descendant is gone.
import ctypes
import os
import sys

PR_SET_CHILD_SUBREAPER = 36

if len(sys.argv) < 2:
    sys.stderr.write("usage: subreaper.py COMMAND [ARG...]\n")
    sys.exit(2)

rfd, wfd = os.pipe()
if os.fork() != 0:
    # The caller's process: report COMMAND's status.
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 64)
        if not chunk:
            break
        data += chunk
    sys.exit(int(data) if data.strip() else 1)

# The reaper.
os.close(rfd)
os.setsid()
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    os.write(wfd, b"1")
    sys.exit(1)
first = os.fork()
if first == 0:
    os.close(wfd)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as e:
        sys.stderr.write("subreaper.py: %s: %s\n" % (sys.argv[1], e.strerror))
    os._exit(127)
# Nothing of the caller's stays open here (a test runner waits for EOF).
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        continue
    if pid == first and wfd >= 0:
        os.write(wfd, str(os.waitstatus_to_exitcode(status)).encode())
        os.close(wfd)
        wfd = -1
