/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Test hooks: the environment variables through which the test suite
 * injects faults, crashes and programs (BOOTBACK_FAULT, BOOTBACK_CRASH_STEP,
 * BOOTBACK_STOP_STEP, BOOTBACK_DELTA_TEST, BOOTBACK_BACKUP_TEST,
 * BOOTBACK_LAB_TEST_HOOK, BOOTBACK_NBDKIT, BOOTBACK_NBDKIT_PLUGIN, BOOTBACK_EXE,
 * BOOTBACK_NO_PIDFD, BOOTBACK_S3_STALL_SECONDS, BOOTBACK_SCAN_PROBE,
 * BOOTBACK_SCAN_SHARED_ROOT, BOOTBACK_SCAN_NO_SECCOMP).
 * Every read of one goes through test_hook_env().
 *
 * This file is compiled twice.  With BOOTBACK_TEST_HOOKS defined it is
 * util's hooks.o, in libbbutil.a, and the programs of the build tree (which
 * the tests run) honour the hooks.  Without it, it is hooks-release.o,
 * which `make install` links in front of libbbutil.a into the programs it
 * installs: there test_hook_env() always answers NULL, so an installed
 * bootback never runs a shell command, loads a program or injects a fault
 * because of its environment.
 */
#include <stdlib.h>

#include "recovery/util/util.h"

#ifdef BOOTBACK_TEST_HOOKS

const bool test_hooks_enabled = true;

const char *
test_hook_env (const char *name)
{
  const char *v = getenv (name);

  return v && *v ? v : NULL;
}

#else

const bool test_hooks_enabled = false;

const char *
test_hook_env (const char *name)
{
  return NULL;
}

#endif
