/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The words on a VM's screen, read by OCR (Tesseract, English), for the
 * boot failures only a screen shows: a Windows stop code, Automatic
 * Repair, a boot manager's complaint on a machine without a serial
 * console.  verify/run.c's boot wait reads the screen while the serial
 * console is quiet and matches the text against lab/console.c's table.
 *
 * The picture is the guest's: its text is only matched against fixed
 * strings and quoted (printable, bounded), never acted on.  Its size is
 * bounded before Tesseract sees it, so a guest cannot make a read take
 * long by drawing a huge screen.
 */
#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

/* Larger screens are not read (4K is 8.3 Mpixel). */
#define OCR_MAX_PIXELS (3840 * 2160)

/* The screenshot as 8-bit grey, or NULL with the error set. */
static PIX *
ocr_image (const unsigned char *img, size_t len)
{
  PIX *pix, *gray;

  setMsgSeverity (L_SEVERITY_NONE);     /* leptonica's own stderr lines */
  pix = pixReadMem (img, len);
  if (!pix) {
    error_setx ("OCR: the screenshot is not an image it can read");
    return NULL;
  }
  if ((uint64_t) pixGetWidth (pix) * pixGetHeight (pix) > OCR_MAX_PIXELS) {
    error_setx ("OCR: the screen is larger than %d pixels", OCR_MAX_PIXELS);
    pixDestroy (&pix);
    return NULL;
  }
  gray = pixConvertTo8 (pix, 0);
  pixDestroy (&pix);
  if (!gray)
    error_setx ("OCR: cannot convert the screenshot to grey");
  return gray;
}

char *
verify_ocr (const unsigned char *img, size_t len)
{
  PIX *gray = ocr_image (img, len);
  TessBaseAPI *api;
  char *text, *out = NULL;

  if (!gray)
    return NULL;
  api = TessBaseAPICreate ();
  TessBaseAPISetVariable (api, "debug_file", "/dev/null");
  if (TessBaseAPIInit3 (api, NULL, "eng") != 0) {
    error_setx ("OCR: Tesseract has no English language data "
                "(apt-get install tesseract-ocr-eng)");
    goto out;
  }
  TessBaseAPISetImage2 (api, gray);
  TessBaseAPISetSourceResolution (api, 96);
  text = TessBaseAPIGetUTF8Text (api);
  if (!text) {
    error_setx ("OCR: Tesseract could not read the screen");
    goto out;
  }
  out = xstrdup (text);
  TessDeleteText (text);
 out:
  TessBaseAPIEnd (api);
  TessBaseAPIDelete (api);
  pixDestroy (&gray);
  return out;
}
