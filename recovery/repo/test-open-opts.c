/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * repo_open_opts_nfs: the text of BOOTBACK_NFS_TIMEOUT and
 * BOOTBACK_NFS_CONNECTIONS becomes the NFS settings with the rules those
 * variables have always had: a number in range is taken (a fractional
 * connection count is cut down), anything else (missing, empty, not a
 * number, trailing text, out of range) gives the default (30 s, 4).
 */
#include <assert.h>
#include <stdio.h>

#include "recovery/repo/repo.h"

static void
check (const char *timeout, const char *conns, double want_timeout,
       unsigned want_conns)
{
  struct repo_open_opts o = { 0 };

  repo_open_opts_nfs (&o, timeout, conns);
  assert (o.nfs_timeout == want_timeout);
  assert (o.nfs_connections == want_conns);
}

int
main (void)
{
  check (NULL, NULL, 30, 4);
  check ("", "", 30, 4);
  check ("3", "8", 3, 8);
  check ("0.5", "0", 30, 4);            /* below the minimum */
  check ("1", "1", 1, 1);
  check ("3600", "32", 3600, 32);
  check ("3601", "33", 30, 4);          /* above the maximum */
  check ("2.5", "2.5", 2.5, 2);
  check ("3s", "8x", 30, 4);            /* trailing text */
  check ("abc", "-1", 30, 4);
  printf ("test-open-opts: ok\n");
  return 0;
}
