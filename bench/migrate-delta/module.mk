# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/migrate-delta: migrate --onto a stale copy vs a full migration of
# the same session (make bench runs every BENCHES).
BENCHES += bench/migrate-delta/run
DEPS    += python3 qemu-utils
