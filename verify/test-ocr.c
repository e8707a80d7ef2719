/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of verify_ocr's failures: an image tesseract cannot read and
 * a host without tesseract each give NULL and an error that says which;
 * no child is left behind.  (A real screen is read in
 * tests/test-lab-boot-failures.sh, the bluescreen VM.) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
  fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf (stderr, __VA_ARGS__); fputc ('\n', stderr); } } while (0)

int
main (void)
{
  static const unsigned char junk[] = "P6\n99999 99999\n255\nnot really";
  char *t;

  signal (SIGPIPE, SIG_IGN);   /* as bootback (virt_init): a child that ends early */
  t = verify_ocr (junk, sizeof junk);
  CHECK (!t && strstr (error_msg (), "tesseract failed on the screenshot"),
         "junk: %s", t ? t : error_msg ());
  free (t);
  setenv ("BOOTBACK_OCR_PROGRAM", "/nonexistent/tesseract", 1);
  t = verify_ocr (junk, sizeof junk);
  CHECK (!t && strstr (error_msg (), "/nonexistent/tesseract is not installed"),
         "no tesseract: %s", t ? t : error_msg ());
  free (t);
  CHECK (waitpid (-1, NULL, WNOHANG) == -1, "a child is left");
  if (failures)
    return 1;
  printf ("test-ocr: ok\n");
  return 0;
}
