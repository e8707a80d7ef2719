/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whether a lab VM's boot is still going somewhere, from what can be seen
 * of it from outside: its console log growing, its disks being read, and
 * (restore points) its chunks being read for the first time.
 *
 * The boot wait (verify/run.c) samples these once per poll and gives them
 * to lab_activity_poll; two rules read the result:
 *
 *  - stall-timeout: no console output and no disk reads at all for that
 *    long (a boot sector looping, a guest waiting without touching its
 *    disks).  Long by default (1m): a healthy kernel decompressing and
 *    starting under TCG on a loaded host is silent and reads nothing for
 *    20 s and more.
 *  - reread-timeout: the guest keeps reading its disks, but only what it
 *    read before, and says nothing.  Progress is console output or a chunk
 *    of the restore point read for the first time (the session's boot
 *    trace, lab_vm_first_reads); reads in between re-read.  The span from
 *    the first such read to the latest must reach the timeout, and the
 *    bytes read since the last progress must be more than one chunk (so a
 *    boot loader slowly reading the rest of a chunk it began is not
 *    re-reading, whatever the load).  An initramfs polling for a root file
 *    system that is not there (findfs/blkid by label, re-reading every
 *    partition's superblock each round, as the block device's cache is
 *    dropped on its last close) does this for as long as its own wait
 *    lasts (10 s in the tiny image, 30 s in Debian's initramfs-tools);
 *    healthy boots of the test images (tiny; Debian 12 with systemd, up
 *    to its guest agent) never re-read for more than 1.8 s, under load
 *    averages of 16 to 19 on 2 cores, so the default is 5 s.
 *
 * Pure: times and counters in, no system calls (lab/test-activity.c feeds
 * it recorded boots).
 */
#include <string.h>

#include "lab/lab.h"

void
lab_activity_init (struct lab_activity *a)
{
  memset (a, 0, sizeof *a);
  a->reads = -1;
  a->first_reads = -1;
}

/* Progress resets the re-read span; a read without it extends it. */
static void
reread_poll (struct lab_activity *a, bool grew, bool read, int64_t bytes,
             int64_t first_reads, double now)
{
  if (first_reads < 0 || bytes < 0 || grew || first_reads != a->first_reads) {
    a->first_reads = first_reads;
    a->progress_bytes = bytes;
    a->reread_from = a->reread_to = 0;
  }
  else if (read) {
    if (a->reread_from == 0)
      a->reread_from = now;
    a->reread_to = now;
  }
  a->bytes = bytes;
}

void
lab_activity_poll (struct lab_activity *a, double now, int64_t console,
                   int64_t reads, int64_t bytes, int64_t first_reads,
                   uint32_t chunk_size)
{
  bool grew = a->console_changed == 0 || console != a->console;
  bool read = reads >= 0 && reads != a->reads;

  if (grew)
    a->console_changed = now;
  if (a->last == 0 || grew || read)
    a->last = now;
  a->console = console;
  a->reads = reads;
  if (chunk_size > a->chunk_size)
    a->chunk_size = chunk_size;
  reread_poll (a, grew, read, reads >= 0 ? bytes : -1, first_reads, now);
}

double
lab_activity_rereading (const struct lab_activity *a, double timeout)
{
  double span = a->reread_to - a->reread_from;

  if (timeout <= 0 || a->reread_from == 0 || span < timeout ||
      a->bytes - a->progress_bytes <= (int64_t) a->chunk_size)
    return 0;
  return span;
}
