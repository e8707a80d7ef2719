/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PPM (what QEMU's screendump gives when libvirt cannot ask for PNG) to
 * PNG, so that every screenshot in a report is a PNG a browser shows.
 * The header is parsed here (strictly: P6, maxval 255, at most 16384 x
 * 16384, all pixels present); libpng writes the PNG.
 */
#include <ctype.h>
#include <png.h>

#include "verify/verify.h"
#include "recovery/util/util.h"

/* Next decimal number of a PPM header (skipping blanks and comments). */
static int
ppm_num (const unsigned char *p, size_t len, size_t *pos, unsigned *out)
{
  unsigned long v = 0;
  bool any = false;

  while (*pos < len) {
    if (p[*pos] == '#')
      while (*pos < len && p[*pos] != '\n')
        (*pos)++;
    else if (isspace (p[*pos]))
      (*pos)++;
    else
      break;
  }
  while (*pos < len && isdigit (p[*pos]) && v < 1000000) {
    v = v * 10 + (p[(*pos)++] - '0');
    any = true;
  }
  if (!any || v >= 1000000)
    return -1;
  *out = v;
  return 0;
}

int
verify_ppm_to_png (const unsigned char *ppm, size_t len, unsigned char **png,
                   size_t *pnglen)
{
  unsigned w, h, maxval;
  size_t pos = 2, rowlen;
  png_image img;
  png_alloc_size_t size = 0;
  unsigned char *out;

  if (len < 2 || ppm[0] != 'P' || ppm[1] != '6')
    return -1;
  if (ppm_num (ppm, len, &pos, &w) == -1 || ppm_num (ppm, len, &pos, &h) == -1 ||
      ppm_num (ppm, len, &pos, &maxval) == -1 || maxval != 255 || w == 0 || h == 0)
    return -1;
  pos++;                                       /* the one blank after maxval */
  rowlen = (size_t) w * 3;
  if (w > 16384 || h > 16384 || pos > len || len - pos < rowlen * h)
    return -1;
  memset (&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = PNG_FORMAT_RGB;
  /* libpng's simplified API: ask for the size, then write. */
  if (!png_image_write_to_memory (&img, NULL, &size, 0, ppm + pos, rowlen, NULL) ||
      size == 0)
    return -1;
  out = xmalloc (size);
  if (!png_image_write_to_memory (&img, out, &size, 0, ppm + pos, rowlen, NULL)) {
    free (out);
    return -1;
  }
  *png = out;
  *pnglen = size;
  return 0;
}
