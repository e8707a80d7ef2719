# bench/ingest: import vs restic and borg (make bench runs every BENCHES).
BENCHES += bench/ingest/run
DEPS += restic borgbackup e2fsprogs python3
