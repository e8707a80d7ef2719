# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/web: bootback web's API and /metrics latency with 10,000 points
# and 1,000 lab runs, and the server's RSS (make bench runs every BENCHES).
BENCHES += bench/web/run
DEPS    += curl sqlite3 python3
