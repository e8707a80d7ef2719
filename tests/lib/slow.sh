# SPDX-License-Identifier: LGPL-2.1-or-later
#
# How much slower than usual the tests run: the one factor that scales
# every time budget, sourced by tests/run (the per-test timeout) and by
# tests/functions.sh ($slow, for the waits inside tests).  Under make
# check-valgrind (BOOTBACK_VALGRIND) every bootback and nbdkit process
# runs about 20 times slower; BOOTBACK_SLOW=N overrides the factor (a
# whole number, at least 1).
slow=1
[ -z "${BOOTBACK_VALGRIND:-}" ] || slow=20
if [ -n "${BOOTBACK_SLOW:-}" ]; then
    [[ $BOOTBACK_SLOW =~ ^[1-9][0-9]*$ ]] ||
        { echo "BOOTBACK_SLOW=$BOOTBACK_SLOW: not a whole number >= 1" >&2; exit 2; }
    slow=$BOOTBACK_SLOW
fi
