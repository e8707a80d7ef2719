# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/backup: bootback backup vs virtnbdbackup on a running VM (make bench).
BENCHES += bench/backup/run
DEPS += virtnbdbackup
