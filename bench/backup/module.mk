# bench/backup: bootback backup vs virtnbdbackup on a running VM (make bench).
BENCHES += bench/backup/run
DEPS += virtnbdbackup
