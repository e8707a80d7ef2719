/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * NBD over TCP: what a connection to another host's QEMU needs that a
 * unix socket does not.  Alone in its file so that what links the
 * remote backup code without the chunk jobs does not pull them in.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "recovery/ingest/ingest-int.h"

void
chunk_nbd_quickack (struct nbd_handle *h)
{
  int fd = nbd_aio_get_fd (h), one = 1;

  /* Send the ACK the kernel is holding back now: QEMU 7.2's NBD server
   * writes a reply in pieces with Nagle on, so its second piece waits
   * for that ACK, which a client with nothing to send delays by 40 ms.
   * On a unix socket this fails, harmlessly. */
  if (fd >= 0)
    (void) setsockopt (fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}
