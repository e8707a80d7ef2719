# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/crypt: the cost of encryption at rest (issue 18 item 4): import,
# serving warm and cold, and repo sync, encrypted vs plain.
BENCHES += bench/crypt/run
DEPS    += fio qemu-utils nbdkit libnbd-bin e2fsprogs bc
