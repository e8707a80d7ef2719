/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* scan_escape: a guest name (any bytes) becomes printable ASCII that
 * cannot fake a line or an escape of its own. */
#include <assert.h>

#include "recovery/scan/scan.h"

static void
check (const char *in, size_t len, const char *want)
{
  char *got = scan_escape (in, len);

  assert (strcmp (got, want) == 0);
  free (got);
}

int
main (void)
{
  check ("etc/passwd", 10, "etc/passwd");
  check ("a\nFOUND: x", 10, "a\\x0aFOUND: x");
  check ("back\\slash", 10, "back\\x5cslash");
  check ("\xc3\xa9t\xe9", 4, "\\xc3\\xa9t\\xe9");
  check ("nul\0x", 5, "nul\\x00x");
  check ("\x1b[31m", 5, "\\x1b[31m");
  return 0;
}
