# tests/: the runner, shared shell helpers and the integration tests.
DEPS += bc coreutils
TESTS += $(sort $(wildcard tests/test-*.sh))
TESTS_SLOW += $(sort $(wildcard tests/slow-*.sh))
