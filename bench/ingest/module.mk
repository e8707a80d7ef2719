# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/ingest: import vs restic and borg (make bench runs every BENCHES).
BENCHES += bench/ingest/run
DEPS += restic borgbackup e2fsprogs python3
