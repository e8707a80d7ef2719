/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading a lab VM's console for the reasons a boot fails.
 *
 * A broken restore point rarely stays silent: the firmware says it found
 * nothing to boot, the boot loader halts with a message, the kernel
 * panics, the initramfs or systemd drops to an emergency shell.  The
 * verification's boot wait polls this watcher on the VM's serial log and
 * gives up as soon as one of those lines appears, quoting it, instead of
 * running out the boot timeout with no reason ("did not boot").
 *
 * The patterns are fixed strings (no regular expressions: a lab
 * definition's own patterns must not be able to make matching slow), in
 * one table, lab_console_failures[], to which a lab definition adds its
 * own (boot_failures:).  They are matched against the console text with
 * terminal escapes and carriage returns taken out (SeaBIOS draws its
 * screen with cursor movements), line by line, so a message split over
 * two reads of the log still matches once its line is whole.  A guest
 * writes the console: what it writes is matched, quoted (printable ASCII
 * only, bounded) and never acted on.
 *
 * The firmware writes to the serial port only when the domain asks for it
 * (<bios useserial='yes'/>, lab/domain-xml.c); a Windows guest's stop
 * code or Automatic Repair is on the screen alone: the boot wait reads the
 * screen by OCR (verify/ocr.c) and matches its text here with
 * lab_console_match_text, against the same table, ignoring case and runs
 * of blanks, as OCR is loose with both.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

const struct lab_console_pattern lab_console_failures[] = {
  /* firmware */
  { "No bootable device", "no bootable device: the firmware found nothing to boot" },
  { "Boot failed: not a bootable disk", "the disk has no boot sector" },
  { "No bootable option or device was found", "UEFI found nothing to boot" },
  { "BdsDxe: failed to load Boot", "UEFI could not load the boot entry" },
  /* the boot sector and boot loaders */
  { "Missing operating system", "the boot partition has no boot loader (MBR: "
    "missing operating system)" },
  { "Operating system load error", "the boot loader could not be loaded (MBR)" },
  { "Could not find kernel image", "the boot loader cannot find the kernel" },
  { "Boot error", "the boot loader failed (Boot error)" },
  /* GRUB's "error: no such device" and the like are often followed by a
   * normal boot; only its rescue shell is final. */
  { "grub rescue>", "GRUB cannot find its files (grub rescue)" },
  { "Failed to start image", "the UEFI boot loader failed to start the kernel" },
  /* the kernel */
  { "Kernel panic - not syncing", "kernel panic" },
  /* early userspace */
  { "(initramfs) ", "the root file system was not mounted (initramfs emergency shell)" },
  { "Dropping to a shell!", "the root file system was not mounted (initramfs emergency shell)" },
  { "dracut:/#", "the root file system was not mounted (dracut emergency shell)" },
  { "Entering emergency mode", "systemd emergency mode" },
  { "You are in emergency mode", "systemd emergency mode" },
  { "You are in rescue mode", "systemd rescue mode" },
  { "Give root password for maintenance", "the boot stopped for maintenance "
    "(a file system check or mount failed)" },
  /* Windows, on the screen (OCR); the stop code is in the quoted line */
  { "Stop code:", "Windows stopped with a stop code (blue screen)" },
  { "ran into a problem and needs to restart", "Windows stopped (blue screen)" },
  { "STOP: 0x", "Windows stopped with a stop error (blue screen)" },
  { "INACCESSIBLE_BOOT_DEVICE", "Windows cannot reach its boot disk "
    "(INACCESSIBLE_BOOT_DEVICE)" },
  { "Automatic Repair", "Windows could not start (Automatic Repair)" },
  { "needs to be repaired", "Windows could not start: its boot configuration "
    "needs to be repaired" },
  { "BOOTMGR is missing", "the Windows boot manager is missing" },
  { "An operating system wasn't found", "no operating system found (Windows boot)" },
  { NULL, NULL },
};

/* Lines longer than this are cut (a guest may write anything). */
#define LINE_MAX_LEN 512
/* Lines quoted with a match: the matching one and those before it. */
#define QUOTE_LINES 3

struct lab_console_watch {
  char *path;
  off_t offset;                      /* read so far */
  const struct lab_console_pattern *extra;
  size_t nextra;
  char line[LINE_MAX_LEN + 1];       /* the line being read, cleaned */
  size_t len;
  char prev[QUOTE_LINES - 1][LINE_MAX_LEN + 1];  /* whole lines before it */
  int esc;                           /* 0, or inside an escape sequence */
  bool matched;
};

struct lab_console_watch *
lab_console_watch_new (const char *path, const struct lab_console_pattern *extra,
                       size_t nextra)
{
  struct lab_console_watch *w = xcalloc (1, sizeof *w);

  w->path = xstrdup (path);
  w->extra = extra;
  w->nextra = nextra;
  return w;
}

void
lab_console_watch_free (struct lab_console_watch *w)
{
  if (w) {
    free (w->path);
    free (w);
  }
}

static const struct lab_console_pattern *
match_line (const struct lab_console_watch *w, const char *line)
{
  const struct lab_console_pattern *p;
  size_t i;

  for (i = 0; i < w->nextra; i++)
    if (w->extra[i].text[0] && strstr (line, w->extra[i].text))
      return &w->extra[i];
  for (p = lab_console_failures; p->text; p++)
    if (strstr (line, p->text))
      return p;
  return NULL;
}

/* Screen text: a line as the patterns are matched, printable ASCII,
 * lower case, runs of blanks as one, at most LINE_MAX_LEN. */
static void
normalize (const char *in, size_t n, char *out)
{
  size_t i, k = 0;

  for (i = 0; i < n && k < LINE_MAX_LEN; i++) {
    unsigned char c = in[i];
    bool blank = c == ' ' || c == '\t';
    if (blank && (k == 0 || out[k - 1] == ' '))
      continue;
    out[k++] = blank ? ' ' : c >= 0x20 && c < 0x7f ? (char) tolower (c) : '?';
  }
  out[k] = '\0';
}

static bool
text_has (const char *norm_line, const char *pattern)
{
  char p[LINE_MAX_LEN + 1];

  normalize (pattern, strlen (pattern), p);
  return p[0] && strstr (norm_line, p);
}

/* The line of text (n lines) that holds pattern p, or -1. */
static ssize_t
text_find (char (*norm)[LINE_MAX_LEN + 1], size_t n, const char *p)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (text_has (norm[i], p))
      return (ssize_t) i;
  return -1;
}

/* A screen is one picture, not a stream: the pattern that comes first
 * (the definition's, then the table's order) wins, wherever its line is,
 * so "Stop code: X" is quoted rather than the line above it. */
const char *
lab_console_match_text (const char *text, const struct lab_console_pattern *extra,
                        size_t nextra, char **line)
{
  enum { MAX_LINES = 256 };
  CLEANUP_FREE char (*norm)[LINE_MAX_LEN + 1] = xcalloc (MAX_LINES, sizeof *norm);
  const char *start[MAX_LINES];
  size_t len[MAX_LINES], n = 0, i, k;
  const struct lab_console_pattern *p = NULL;
  const char *s = text;
  ssize_t at = -1;

  *line = NULL;
  for (; *s && n < MAX_LINES; n++) {
    len[n] = strcspn (s, "\n");
    start[n] = s;
    normalize (s, len[n], norm[n]);
    s += len[n] + (s[len[n]] == '\n');
  }
  for (i = 0; i < nextra && at < 0; i++)
    if ((at = text_find (norm, n, extra[i].text)) >= 0)
      p = &extra[i];
  for (i = 0; at < 0 && lab_console_failures[i].text; i++)
    if ((at = text_find (norm, n, lab_console_failures[i].text)) >= 0)
      p = &lab_console_failures[i];
  if (!p)
    return NULL;
  *line = xcalloc (1, LINE_MAX_LEN + 1);
  for (k = 0; k < len[at] && k < LINE_MAX_LEN; k++) {
    unsigned char c = start[at][k];
    (*line)[k] = c >= 0x20 && c < 0x7f ? (char) c : '?';
  }
  return p->reason;
}

/* Escape sequences: ESC [ params final-byte, ESC c and other two-byte
 * ones.  1 while inside one. */
static int
skip_escape (struct lab_console_watch *w, unsigned char c)
{
  if (w->esc == 0) {
    if (c != 0x1b)
      return 0;
    w->esc = 1;
    return 1;
  }
  if (w->esc == 1)
    w->esc = c == '[' ? 2 : 0;          /* ESC c, ESC 7, ...: done */
  else if (c >= 0x40 && c <= 0x7e)
    w->esc = 0;                         /* the final byte of ESC [ ... */
  return 1;
}

/* The quote: the lines before the matching one and it, newline-separated. */
static char *
quote (const struct lab_console_watch *w)
{
  char *q = NULL;
  size_t qlen = 0, i;
  FILE *f = open_memstream (&q, &qlen);

  if (!f)
    abort ();
  for (i = 0; i < QUOTE_LINES - 1; i++)
    if (w->prev[i][0])
      fprintf (f, "%s\n", w->prev[i]);
  fprintf (f, "%s", w->line);
  fclose (f);
  return q;
}

/* The line is whole (or the pattern may already be in it): match it. */
static const struct lab_console_pattern *
end_line (struct lab_console_watch *w, bool whole)
{
  const struct lab_console_pattern *p;
  size_t i;

  w->line[w->len] = '\0';
  p = match_line (w, w->line);
  if (p || !whole)
    return p;
  if (w->len > 0) {                     /* keep it for the quote */
    for (i = 0; i + 1 < QUOTE_LINES - 1; i++)
      memcpy (w->prev[i], w->prev[i + 1], sizeof w->prev[i]);
    memcpy (w->prev[QUOTE_LINES - 2], w->line, w->len + 1);
  }
  w->len = 0;
  return NULL;
}

static const struct lab_console_pattern *
feed (struct lab_console_watch *w, const unsigned char *buf, size_t n)
{
  const struct lab_console_pattern *p;
  size_t i;

  for (i = 0; i < n; i++) {
    unsigned char c = buf[i];

    if (skip_escape (w, c) || c == '\r')
      continue;
    if (c == '\n') {
      if ((p = end_line (w, true)))
        return p;
      continue;
    }
    if (w->len < LINE_MAX_LEN)
      w->line[w->len++] = c >= 0x20 && c < 0x7f ? (char) c : '?';
  }
  /* A prompt ends no line: "(initramfs) " waits for input as it is. */
  return end_line (w, false);
}

int
lab_console_watch_poll (struct lab_console_watch *w, const char **reason,
                        char **quoted)
{
  CLEANUP_CLOSE int fd = -1;
  unsigned char buf[16384];
  ssize_t r;

  if (w->matched)
    return 0;
  fd = open (w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd == -1) {
    if (errno == ENOENT)
      return 0;                         /* not written yet */
    error_set (errno, "console log %s", w->path);
    return -1;
  }
  while ((r = pread (fd, buf, sizeof buf, w->offset)) > 0) {
    const struct lab_console_pattern *p;

    w->offset += r;
    if ((p = feed (w, buf, (size_t) r))) {
      w->matched = true;
      *reason = p->reason;
      *quoted = quote (w);
      return 1;
    }
  }
  if (r == -1) {
    error_set (errno, "console log %s", w->path);
    return -1;
  }
  return 0;
}
