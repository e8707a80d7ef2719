# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/verdict: how fast `bootback verify` fails a broken restore point,
# against the time it takes to pass a healthy one (make bench runs every
# BENCHES).
BENCHES += bench/verdict/run
DEPS    += python3 bc
