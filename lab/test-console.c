/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the console watcher (console.c): the consoles of real
 * broken boots (SeaBIOS with its escapes, the MBR, the initramfs prompt,
 * a panic) are recognised with the right reason and quoted; a healthy
 * boot's console is not; a message split over two writes of the log
 * matches once whole; a lab definition's own patterns are checked; what
 * a guest writes is quoted printable and bounded.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

static int failures;
static char dir[] = "/tmp/bb-test-console.XXXXXX";

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static void
append (const char *path, const char *text, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

  if (fd == -1 || write (fd, text, len) != (ssize_t) len)
    abort ();
  close (fd);
}

/* Feed text (whole) to a new watch: its poll's answer, reason, quote. */
static int
run (const char *text, size_t len, const struct lab_console_pattern *extra,
     size_t nextra, const char **reason, char **quoted)
{
  CLEANUP_FREE char *path = xasprintf ("%s/console.log", dir);
  struct lab_console_watch *w;
  int r;

  unlink (path);
  w = lab_console_watch_new (path, extra, nextra);
  CHECK (lab_console_watch_poll (w, reason, quoted) == 0);   /* no file yet */
  append (path, text, len);
  *reason = NULL;
  *quoted = NULL;
  r = lab_console_watch_poll (w, reason, quoted);
  if (r == 1) {
    const char *again_reason;
    char *again;
    CHECK (lab_console_watch_poll (w, &again_reason, &again) == 0);  /* once */
  }
  lab_console_watch_free (w);
  return r;
}

static void
expect (const char *what, const char *text, const char *reason_part,
        const char *quote_part)
{
  const char *reason;
  char *quoted;

  if (run (text, strlen (text), NULL, 0, &reason, &quoted) != 1) {
    fprintf (stderr, "%s: no failure found\n", what);
    failures++;
    return;
  }
  if (!strstr (reason, reason_part) || !strstr (quoted, quote_part)) {
    fprintf (stderr, "%s: reason \"%s\", quote \"%s\"\n", what, reason, quoted);
    failures++;
  }
  free (quoted);
}

static void
test_broken_boots (void)
{
  /* SeaBIOS with -machine graphics=off, as written to the serial log */
  expect ("nombr",
          "\x1b" "c\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n"
          "Booting from Hard Disk...\r\nBoot failed: not a bootable disk\r\n\r\n"
          "Booting from Floppy...\r\nBoot failed: could not read the boot disk\r\n",
          "no boot sector", "Boot failed: not a bootable disk");
  expect ("badboot", "Booting from Hard Disk...\r\nMissing operating system.\r\n",
          "no boot loader", "Booting from Hard Disk...\nMissing operating system.");
  expect ("badroot (a prompt ends no line)",
          "\x1b[2JGave up waiting for root file system device.\n"
          "ALERT!  LABEL=bbroot does not exist.  Dropping to a shell!\n",
          "initramfs emergency shell", "ALERT!  LABEL=bbroot does not exist");
  expect ("initramfs prompt", "BusyBox v1.35.0\nsh: can't access tty\n(initramfs) \x1b[6n",
          "initramfs", "(initramfs) ");
  expect ("panic", "[    2.1] Kernel panic - not syncing: Attempted to kill init!\n",
          "kernel panic", "Attempted to kill init");
  expect ("systemd", "[FAILED] Failed to mount /srv.\nYou are in emergency mode. After "
          "logging in, type \"journalctl -xb\"\n", "systemd emergency mode",
          "Failed to mount /srv.");
  expect ("grub", "error: unknown filesystem.\nEntering rescue mode...\ngrub rescue> ",
          "grub rescue", "grub rescue>");
}

static void
test_healthy_and_split (void)
{
  CLEANUP_FREE char *path = xasprintf ("%s/split.log", dir);
  const char *healthy =
    "SeaBIOS (version 1.16.2)\r\nBooting from Hard Disk...\r\n"
    "SYSLINUX 6.04 EDD 20210613 Copyright (C) 1994-2015 H. Peter Anvin et al\r\n"
    "bootback: starting (tiny, kernel 6.1.0-57-cloud-amd64)\n"
    "error: no such device: 8d7c-11\n"     /* GRUB's, often harmless */
    "bootback: web: listening on tcp port 80\n";
  struct lab_console_watch *w;
  const char *reason;
  char *quoted = NULL;

  CHECK (run (healthy, strlen (healthy), NULL, 0, &reason, &quoted) == 0);

  /* "Kernel pa" + "nic - not syncing" in two writes of the log */
  w = lab_console_watch_new (path, NULL, 0);
  append (path, "booting\nKernel pa", 17);
  CHECK (lab_console_watch_poll (w, &reason, &quoted) == 0);
  append (path, "nic - not syncing: VFS\n", 23);
  CHECK (lab_console_watch_poll (w, &reason, &quoted) == 1);
  CHECK (quoted && strcmp (quoted, "booting\nKernel panic - not syncing: VFS") == 0);
  free (quoted);
  lab_console_watch_free (w);
}

static void
test_extra_and_hostile (void)
{
  static const struct lab_console_pattern extra[] = {
    { "app: cannot open database", "the application's database is gone" },
  };
  const char *reason;
  char *quoted = NULL;
  char big[3000];

  CHECK (run ("app: cannot open database /srv/db\n", 34, extra, 1, &reason, &quoted) == 1);
  CHECK (reason && strcmp (reason, "the application's database is gone") == 0);
  free (quoted);

  /* control bytes and high bytes are quoted as '?'; a long line is cut */
  memset (big, 'A', sizeof big);
  memcpy (big, "\x01\xff" "Kernel panic - not syncing", 28);
  CHECK (run (big, sizeof big, NULL, 0, &reason, &quoted) == 1);
  CHECK (quoted && strncmp (quoted, "??Kernel panic", 14) == 0);
  CHECK (quoted && strlen (quoted) <= 512);
  free (quoted);
  /* a NUL in the middle does not hide what follows it */
  CHECK (run ("x\0y\nKernel panic - not syncing\n", 31, NULL, 0, &reason, &quoted) == 1);
  free (quoted);
}

/* Screen text (OCR): case and blanks do not matter, the first pattern of
 * the table wins wherever its line is, the definition's come first, the
 * quoted line is printable and bounded, a healthy screen matches nothing. */
static void
test_screen_text (void)
{
  static const struct lab_console_pattern extra[] = {
    { "Contoso ERP: licence expired", "the ERP's licence expired" },
  };
  const char *bsod = ":(\n\nYour PC ran into a problem and needs to restart.\n\n"
                     "Stop  code:   CRITICAL_PROCESS_DIED\n";
  const char *reason;
  char *line, big[3000];

  reason = lab_console_match_text (bsod, NULL, 0, &line);
  CHECK (reason && strstr (reason, "stop code"));
  CHECK (line && strcmp (line, "Stop  code:   CRITICAL_PROCESS_DIED") == 0);
  free (line);
  reason = lab_console_match_text ("PREPARING AUTOMATIC REPAIR", NULL, 0, &line);
  CHECK (reason && strstr (reason, "Automatic Repair"));
  free (line);
  reason = lab_console_match_text ("contoso erp:   LICENCE expired\nStop code: X", extra, 1, &line);
  CHECK (reason && strcmp (reason, "the ERP's licence expired") == 0);
  free (line);
  reason = lab_console_match_text ("Debian GNU/Linux 12 web1 tty1\n\nweb1 login:", NULL, 0, &line);
  CHECK (!reason && !line);
  memset (big, 'B', sizeof big);
  memcpy (big, "\x01\xff" "STOP: 0x0000007B", 18);
  big[sizeof big - 1] = '\0';
  reason = lab_console_match_text (big, NULL, 0, &line);
  CHECK (reason && line && strncmp (line, "??STOP: 0x", 10) == 0 && strlen (line) <= 512);
  free (line);
}

/* A flooding guest's console stream (lab_console_copy_loop, a remote
 * VM's console copy): 4 KiB per read, 100 reads, then the end.  At most
 * max bytes reach the file, and every read is taken past the cap (a
 * stream left unread is queued by libvirt's client in memory, without a
 * limit). */
struct flood {
  int reads, left;
};

static int
flood_recv (void *opaque, char *buf, size_t len)
{
  struct flood *f = opaque;

  f->reads++;
  if (f->left == 0)
    return 0;
  f->left--;
  len = MIN (len, 4096);
  memset (buf, 'x', len);
  return (int) len;
}

static void
test_copy_flood (void)
{
  CLEANUP_FREE char *path = xasprintf ("%s/copy.console", dir);
  struct flood f = { .left = 100 };
  volatile bool stop = false;
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  struct stat st;

  CHECK (fd >= 0);
  CHECK (lab_console_copy_loop (flood_recv, &f, fd, &stop, 16384) == 16384);
  close (fd);
  CHECK (stat (path, &st) == 0 && st.st_size == 16384);
  CHECK (f.reads == 101);              /* drained to its end */
}

int
main (void)
{
  if (!mkdtemp (dir))
    abort ();
  test_broken_boots ();
  test_healthy_and_split ();
  test_extra_and_hostile ();
  test_screen_text ();
  test_copy_flood ();
  {
    CLEANUP_FREE char *rm = xasprintf ("rm -rf %s", dir);
    if (system (rm) != 0)
      failures++;
  }
  if (failures) {
    fprintf (stderr, "%d failure(s)\n", failures);
    return 1;
  }
  printf ("console ok\n");
  return 0;
}
