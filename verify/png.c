/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PPM (what QEMU's screendump gives when libvirt cannot ask for PNG) to
 * PNG, so that every screenshot in a report is a PNG a browser shows.
 * Truecolour, 8 bits, filter 0 on every row, zlib-compressed.
 */
#include <ctype.h>
#include <zlib.h>

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

static void
put32 (unsigned char *p, uint32_t v)
{
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* Append a chunk (type, data) to out at *o. */
static void
chunk (unsigned char *out, size_t *o, const char *type, const unsigned char *data,
       size_t len)
{
  uLong crc;

  put32 (out + *o, len);
  memcpy (out + *o + 4, type, 4);
  if (len)
    memcpy (out + *o + 8, data, len);
  crc = crc32 (0, out + *o + 4, len + 4);
  put32 (out + *o + 8 + len, crc);
  *o += 12 + len;
}

int
verify_ppm_to_png (const unsigned char *ppm, size_t len, unsigned char **png,
                   size_t *pnglen)
{
  unsigned w, h, maxval;
  size_t pos = 2, rowlen, rawlen, y;
  unsigned char *raw, *z, *out, ihdr[13];
  uLongf zlen;

  if (len < 2 || ppm[0] != 'P' || ppm[1] != '6')
    return -1;
  if (ppm_num (ppm, len, &pos, &w) == -1 || ppm_num (ppm, len, &pos, &h) == -1 ||
      ppm_num (ppm, len, &pos, &maxval) == -1 || maxval != 255 || w == 0 || h == 0)
    return -1;
  pos++;                                       /* the one blank after maxval */
  rowlen = (size_t) w * 3;
  if (w > 16384 || h > 16384 || pos > len || len - pos < rowlen * h)
    return -1;
  rawlen = (rowlen + 1) * h;
  raw = xmalloc (rawlen);
  for (y = 0; y < h; y++) {
    raw[y * (rowlen + 1)] = 0;
    memcpy (raw + y * (rowlen + 1) + 1, ppm + pos + y * rowlen, rowlen);
  }
  zlen = compressBound (rawlen);
  z = xmalloc (zlen);
  if (compress2 (z, &zlen, raw, rawlen, 6) != Z_OK) {
    free (raw);
    free (z);
    return -1;
  }
  free (raw);
  out = xmalloc (8 + 25 + 12 + zlen + 12);
  memcpy (out, "\x89PNG\r\n\x1a\n", 8);
  *pnglen = 8;
  put32 (ihdr, w);
  put32 (ihdr + 4, h);
  ihdr[8] = 8;          /* bit depth */
  ihdr[9] = 2;          /* truecolour */
  ihdr[10] = ihdr[11] = ihdr[12] = 0;
  chunk (out, pnglen, "IHDR", ihdr, 13);
  chunk (out, pnglen, "IDAT", z, zlen);
  chunk (out, pnglen, "IEND", NULL, 0);
  free (z);
  *png = out;
  return 0;
}
