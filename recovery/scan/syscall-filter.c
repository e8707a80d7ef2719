/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The scanning child's system call filter (seccomp, with libseccomp),
 * the last part of its drop (sandbox.c, step 2), after setresuid and
 * the rlimits.  Dropped to o->user (nobody) in namespaces of its own, a
 * parser taken over by the guest's bytes could still signal, trace or
 * re-limit every other process of that user (kill (-1, SIGKILL) ends
 * every process running as nobody on the host: other scans, daemons),
 * make a user namespace (Debian allows it unprivileged: every capability
 * inside) and reach kernel code no parser needs (keys, bpf, perf,
 * io_uring, the mount API, modules).
 *
 * A deny-list, the rest allowed: an allow-list would have to know every
 * call libc, libtsk, libfsxfs, libvslvm, libclamav and YARA make, in
 * every version Debian ships, and a call it missed would fail a scan of
 * some disk only.  Denied calls fail with EPERM, not a kill, so that a
 * library probing for a call goes on without it (clone3 with ENOSYS:
 * glibc then falls back to clone, whose flags the filter can read).
 * Calls in another ABI (32-bit x86, x32) kill the process: none of our
 * code makes them, and the filter's numbers are the native ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <seccomp.h>

#include "recovery/scan/scan-int.h"

#define DENY SCMP_ACT_ERRNO (EPERM)
#define LOW32 0xffffffffull     /* the kernel reads an int argument so */

/* Denied whatever the arguments: tracing, namespaces, mounts, keys,
 * bpf, perf, userfaultfd, io_uring, personality, modules, kexec, swap,
 * reboot, the kernel log, quotas, file handles (open_by_handle_at opens
 * any file of a mount by number), port I/O; and every call that acts on
 * another process by pid or pidfd (ptrace, process_vm_*, pidfd_*, kcmp,
 * process_madvise, scheduling and I/O priority, which a process may set
 * on its user's others: setpriority (PRIO_USER) reaches all of them). */
static const int denied[] = {
  SCMP_SYS (ptrace), SCMP_SYS (process_vm_readv), SCMP_SYS (process_vm_writev),
  SCMP_SYS (pidfd_open), SCMP_SYS (pidfd_getfd), SCMP_SYS (pidfd_send_signal),
  SCMP_SYS (kcmp), SCMP_SYS (process_madvise),
  SCMP_SYS (setpriority), SCMP_SYS (ioprio_set), SCMP_SYS (sched_setaffinity),
  SCMP_SYS (sched_setscheduler), SCMP_SYS (sched_setparam),
  SCMP_SYS (sched_setattr), SCMP_SYS (migrate_pages), SCMP_SYS (move_pages),
  SCMP_SYS (unshare), SCMP_SYS (setns),
  SCMP_SYS (mount), SCMP_SYS (umount2), SCMP_SYS (pivot_root),
  SCMP_SYS (chroot), SCMP_SYS (move_mount), SCMP_SYS (open_tree),
  SCMP_SYS (fsopen), SCMP_SYS (fsconfig), SCMP_SYS (fsmount),
  SCMP_SYS (fspick), SCMP_SYS (mount_setattr),
  SCMP_SYS (keyctl), SCMP_SYS (add_key), SCMP_SYS (request_key),
  SCMP_SYS (bpf), SCMP_SYS (perf_event_open), SCMP_SYS (userfaultfd),
  SCMP_SYS (io_uring_setup), SCMP_SYS (io_uring_enter),
  SCMP_SYS (io_uring_register), SCMP_SYS (personality),
  SCMP_SYS (kexec_load), SCMP_SYS (kexec_file_load), SCMP_SYS (init_module),
  SCMP_SYS (finit_module), SCMP_SYS (delete_module), SCMP_SYS (acct),
  SCMP_SYS (swapon), SCMP_SYS (swapoff), SCMP_SYS (reboot),
  SCMP_SYS (syslog), SCMP_SYS (quotactl), SCMP_SYS (name_to_handle_at),
  SCMP_SYS (open_by_handle_at), SCMP_SYS (lookup_dcookie), SCMP_SYS (iopl),
  SCMP_SYS (ioperm),
};

/* Denied unless their first argument is our own pid: kill (0, ...) is
 * our process group, kill (-1, ...) every process we may signal.
 * raise() and abort() are tgkill with our pid, and the single thread's
 * tid is the pid (RLIMIT_NPROC 0: no threads after the drop). */
static const int signals[] = {
  SCMP_SYS (kill), SCMP_SYS (tkill), SCMP_SYS (tgkill),
  SCMP_SYS (rt_sigqueueinfo), SCMP_SYS (rt_tgsigqueueinfo),
};

/* clone's flags (its first argument on x86-64) that make a namespace.
 * (CLONE_NEWTIME is clone3's and unshare's alone: in clone's flags that
 * bit is part of the exit signal.) */
static const unsigned long clone_new[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
  CLONE_NEWPID, CLONE_NEWNET,
};

/* fcntl and ioctl commands that send SIGIO (or any signal, F_SETSIG)
 * to a pid we name: the kernel checks only that it is of our user. */
static const int fcntl_owner[] = { F_SETOWN, F_SETOWN_EX, F_SETSIG };
static const unsigned long ioctl_owner[] = { FIOSETOWN, SIOCSPGRP };

/* The rules of the argument checks above.  A negative errno. */
static int
add_arg_rules (scmp_filter_ctx ctx)
{
  scmp_datum_t pid = (scmp_datum_t) getpid ();
  int rc = 0;
  size_t i;

  for (i = 0; rc == 0 && i < sizeof signals / sizeof signals[0]; i++)
    rc = seccomp_rule_add (ctx, DENY, signals[i], 1,
                           SCMP_A0 (SCMP_CMP_NE, pid));
  for (i = 0; rc == 0 && i < sizeof clone_new / sizeof clone_new[0]; i++)
    rc = seccomp_rule_add (ctx, DENY, SCMP_SYS (clone), 1,
                           SCMP_A0 (SCMP_CMP_MASKED_EQ, clone_new[i],
                                    clone_new[i]));
  for (i = 0; rc == 0 && i < sizeof fcntl_owner / sizeof fcntl_owner[0]; i++)
    rc = seccomp_rule_add (ctx, DENY, SCMP_SYS (fcntl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, LOW32,
                                    (scmp_datum_t) fcntl_owner[i]));
  for (i = 0; rc == 0 && i < sizeof ioctl_owner / sizeof ioctl_owner[0]; i++)
    rc = seccomp_rule_add (ctx, DENY, SCMP_SYS (ioctl), 1,
                           SCMP_A1 (SCMP_CMP_MASKED_EQ, LOW32,
                                    ioctl_owner[i]));
  /* a unix socket alone (the NBD connection is made before the drop);
   * a compare of all 64 bits: an int with junk above reads as another
   * family, and is denied */
  if (rc == 0)
    rc = seccomp_rule_add (ctx, DENY, SCMP_SYS (socket), 1,
                           SCMP_A0 (SCMP_CMP_NE, AF_UNIX));
  if (rc == 0)
    rc = seccomp_rule_add (ctx, DENY, SCMP_SYS (socketpair), 1,
                           SCMP_A0 (SCMP_CMP_NE, AF_UNIX));
  /* no limit set on any process (ours are set before, soft = hard);
   * reading them stays: getrlimit is prlimit64 (0, r, NULL, old) */
  if (rc == 0)
    rc = seccomp_rule_add (ctx, DENY, SCMP_SYS (prlimit64), 1,
                           SCMP_A2 (SCMP_CMP_NE, 0));
  /* clone3's flags are in memory, which a filter cannot read */
  if (rc == 0)
    rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (ENOSYS), SCMP_SYS (clone3), 0);
  return rc;
}

int
syscall_filter (void)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  int rc = ctx ? 0 : -ENOMEM;
  size_t i;

  /* other ABIs killed; every thread filtered (there should be one) */
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  /* the kernel's errno from seccomp_load, not ECANCELED */
  if (rc == 0)
    rc = seccomp_attr_set (ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  for (i = 0; rc == 0 && i < sizeof denied / sizeof denied[0]; i++)
    rc = seccomp_rule_add (ctx, DENY, denied[i], 0);
  if (rc == 0)
    rc = add_arg_rules (ctx);
  if (rc == 0 && (rc = seccomp_load (ctx)) != 0)
    error_set (-rc, "cannot filter the scan's system calls: the kernel "
               "needs seccomp filters");
  else if (rc != 0)
    error_set (-rc, "cannot make the scan's system call filter");
  if (ctx)
    seccomp_release (ctx);
  return rc == 0 ? 0 : -1;
}
