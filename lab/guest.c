/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Into and out of a sandbox's VMs (bootback lab exec, cp, console): a
 * command run by the guest agent (guest-exec, guest-exec-status), files
 * copied through the agent's file calls (guest-file-open/read/write/seek/
 * close) in blocks (LAB_COPY_BLOCK, LAB_COPY_WRITE_BLOCK), and the serial
 * console.  Every agent command goes through libvirt
 * (recovery/virt/virt.h), never a socket of ours.
 *
 * The guest is hostile.  What it sends back (command output, file data,
 * sizes, counts, error texts) is checked and bounded before use:
 *  - output and file data are decoded from base64 with a cap (output:
 *    o->max_output per stream; a file: o->max_size and the free space of
 *    the host file system, checked before each block is written), and a
 *    block longer than asked for is an error;
 *  - the guest never chooses a host path: the destination is the user's,
 *    written to a temporary file made with O_EXCL | O_NOFOLLOW in the
 *    destination's directory, 0600 until it is complete, then renamed
 *    over the destination (a symbolic link there is replaced, never
 *    followed);
 *  - error texts of the agent are quoted printable and shortened;
 *  - the console's bytes go to the caller's descriptor, never to a parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lab/lab.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"
#include "recovery/virt/xml.h"

/* Seconds one agent call may take (a block of 1 MiB under TCG included). */
#define AGENT_TIMEOUT 60
/* What the host file system keeps free whatever a copy brings. */
#define COPY_RESERVE (64 << 20)

/* The agent's "return" of cmd (taken over), or NULL with the error
 * "VM NAME: WHAT: the agent's message (printable)". */
static json_t *
agent (virDomainPtr d, const char *vm, const char *what, json_t *cmd)
{
  CLEANUP_FREE char *text = json_dumps (cmd, JSON_COMPACT);
  CLEANUP_FREE char *reply = NULL;
  json_t *o, *r;

  json_decref (cmd);
  if (!text) {
    error_setx ("VM %s: %s: cannot encode the agent command", vm, what);
    return NULL;
  }
  reply = virt_agent_command (d, text, AGENT_TIMEOUT);
  if (!reply) {
    CLEANUP_FREE char *m = lab_printable (virt_failure (), 300);
    error_setx ("VM %s: %s: %s", vm, what, m);
    return NULL;
  }
  o = json_loads (reply, 0, NULL);
  r = json_incref (json_object_get (o, "return"));
  json_decref (o);
  if (!r)
    error_setx ("VM %s: %s: the guest agent's reply has no result", vm, what);
  return r;
}

/* Is s UTF-8 text (what a JSON string holds)? */
static bool
is_text (const char *s)
{
  json_t *j = json_string (s);

  json_decref (j);
  return j != NULL;
}

/* Decode base64 text of the guest into *out (malloc'd, *len bytes), at
 * most cap bytes (*cut set if there was more).  -1 if it is not base64. */
static int
b64_decode (const char *in, size_t cap, unsigned char **out, size_t *len, bool *cut)
{
  size_t n = in ? strlen (in) : 0, take = n, pad = 0;
  int r;

  *out = NULL;
  *len = 0;
  if (n % 4 != 0 || n > INT_MAX) {
    error_setx ("not base64");
    return -1;
  }
  if (n / 4 * 3 > cap + 2) {
    take = DIV_ROUND_UP (cap, 3) * 4;
    *cut = true;
  }
  else
    pad = (n > 0 && in[n - 1] == '=') + (n > 1 && in[n - 2] == '=');
  *out = xmalloc (take / 4 * 3 + 1);
  r = take ? EVP_DecodeBlock (*out, (const unsigned char *) in, (int) take) : 0;
  if (r < 0 || (size_t) r < pad) {
    free (*out);
    *out = NULL;
    error_setx ("not base64");
    return -1;
  }
  *len = MIN ((size_t) r - pad, cap);
  if ((size_t) r - pad > cap)
    *cut = true;
  return 0;
}

/* base64 of len bytes, malloc'd. */
static char *
b64_encode (const unsigned char *buf, size_t len)
{
  char *o = xmalloc (DIV_ROUND_UP (len, 3) * 4 + 1);

  EVP_EncodeBlock ((unsigned char *) o, buf, (int) len);
  return o;
}

/* ---- exec ------------------------------------------------------------------ */

void
lab_exec_result_clear (struct lab_exec_result *r)
{
  free (r->out);
  free (r->err);
  memset (r, 0, sizeof *r);
}

/* The output of a finished command into r, each stream capped. */
static int
exec_output (json_t *st, const char *vm, size_t cap, struct lab_exec_result *r)
{
  const char *o = json_string_value (json_object_get (st, "out-data"));
  const char *e = json_string_value (json_object_get (st, "err-data"));

  if (b64_decode (o, cap, &r->out, &r->nout, &r->out_truncated) == -1 ||
      b64_decode (e, cap, &r->err, &r->nerr, &r->err_truncated) == -1) {
    error_prefix ("VM %s: the output of the command", vm);
    return -1;
  }
  if (json_is_true (json_object_get (st, "out-truncated")))
    r->out_truncated = true;
  if (json_is_true (json_object_get (st, "err-truncated")))
    r->err_truncated = true;
  return 0;
}

/* Start argv in the guest: its pid there, or -1. */
static json_int_t
exec_start (virDomainPtr d, const char *vm, char *const argv[])
{
  json_t *args = json_array (), *ret;
  json_int_t pid;
  size_t i;

  for (i = 1; argv[i]; i++)
    if (json_array_append_new (args, json_string (argv[i])) == -1) {
      json_decref (args);
      error_setx ("VM %s: argument %zu of the command is not UTF-8 text", vm, i);
      return -1;
    }
  if (!*argv[0] || !is_text (argv[0])) {
    json_decref (args);
    error_setx ("VM %s: the command's name is empty or not UTF-8 text", vm);
    return -1;
  }
  ret = agent (d, vm, "guest-exec",
               json_pack ("{s:s, s:{s:s, s:o, s:b}}", "execute", "guest-exec",
                          "arguments", "path", argv[0], "arg", args,
                          "capture-output", 1));
  if (!ret)
    return -1;
  pid = json_integer_value (json_object_get (ret, "pid"));
  json_decref (ret);
  return pid;
}

int
lab_guest_exec (virDomainPtr d, const char *vm, char *const argv[],
                const struct lab_exec_opts *o, struct lab_exec_result *r)
{
  double end = now_monotonic () + o->timeout, wait = 0.05;
  json_int_t pid;

  memset (r, 0, sizeof *r);
  pid = exec_start (d, vm, argv);
  if (pid < 0)
    return -1;
  r->pid = pid;
  for (;;) {
    json_t *st = agent (d, vm, "guest-exec-status",
                        json_pack ("{s:s, s:{s:I}}", "execute", "guest-exec-status",
                                   "arguments", "pid", pid));
    if (!st) {
      error_prefix ("the command is pid %lld in the guest (libvirt passes about %d MiB "
                    "of output at most: write more to a file and copy it out)",
                    (long long) pid, LAB_EXEC_OUTPUT_MAX >> 20);
      return -1;
    }
    if (json_is_true (json_object_get (st, "exited"))) {
      r->exited = true;
      r->exit_code = (int) json_integer_value (json_object_get (st, "exitcode"));
      r->signal = (int) json_integer_value (json_object_get (st, "signal"));
      int rc = exec_output (st, vm, o->max_output, r);
      json_decref (st);
      return rc;
    }
    json_decref (st);
    if (now_monotonic () >= end)
      return 0;                 /* r->exited false: timed out */
    if (lab_sleep (MIN (wait, end - now_monotonic ())) == -1) {
      error_setx ("VM %s: interrupted while the command runs (pid %lld in the guest)",
                  vm, (long long) pid);
      return -1;
    }
    wait = MIN (wait * 2, 0.5);
  }
}

/* ---- files --------------------------------------------------------------- */

/* Open path in the guest (mode "r" or "w"): the agent's handle or -1,
 * with the error naming the VM and the path. */
static json_int_t
gfile_open (virDomainPtr d, const char *vm, const char *path, const char *mode)
{
  CLEANUP_FREE char *shown = lab_printable (path, 200);
  json_t *r;
  json_int_t h;

  if (!is_text (path)) {
    error_setx ("VM %s: %s: the path is not UTF-8 text", vm, shown);
    return -1;
  }
  r = agent (d, vm, "guest-file-open",
             json_pack ("{s:s, s:{s:s, s:s}}", "execute", "guest-file-open",
                        "arguments", "path", path, "mode", mode));
  if (!r) {
    CLEANUP_FREE char *m = lab_printable (virt_failure (), 300);
    error_setx ("VM %s: cannot open %s in the guest: %s", vm, shown, m);
    return -1;
  }
  h = json_integer_value (r);
  json_decref (r);
  return h;
}

static void
gfile_close (virDomainPtr d, const char *vm, json_int_t h)
{
  ERROR_SAVE (e);
  json_decref (agent (d, vm, "guest-file-close",
                      json_pack ("{s:s, s:{s:I}}", "execute", "guest-file-close",
                                 "arguments", "handle", h)));
  ERROR_RESTORE (e);
}

/* The size the guest says the open file has (seek to its end and back):
 * only shown and checked against the free space, never trusted.  -1 if
 * it cannot seek (a pipe, a /proc file), -2 (error set) if it cannot seek
 * back. */
static int64_t
gfile_size (virDomainPtr d, const char *vm, json_int_t h)
{
  json_t *r = agent (d, vm, "guest-file-seek",
                     json_pack ("{s:s, s:{s:I, s:i, s:s}}", "execute", "guest-file-seek",
                                "arguments", "handle", h, "offset", 0, "whence", "end"));
  int64_t size;

  if (!r) {
    error_clear ();
    return -1;
  }
  size = json_integer_value (json_object_get (r, "position"));
  json_decref (r);
  r = agent (d, vm, "guest-file-seek",
             json_pack ("{s:s, s:{s:I, s:i, s:s}}", "execute", "guest-file-seek",
                        "arguments", "handle", h, "offset", 0, "whence", "set"));
  if (!r)
    return -2;
  json_decref (r);
  return size;
}

/* Refuse to go on if n more bytes would leave the host file system of fd
 * less than COPY_RESERVE free, or the copy over max. */
static int
room_for (int fd, const char *dst, uint64_t done, uint64_t n, uint64_t max)
{
  struct statvfs sv;
  char a[32];

  if (max && done + n > max) {
    error_setx ("%s: the guest's file is larger than --max-size %s; stopped",
                dst, human_size (max, a, sizeof a));
    return -1;
  }
  if (fstatvfs (fd, &sv) == 0 &&
      (uint64_t) sv.f_bavail * sv.f_frsize < n + COPY_RESERVE) {
    error_set (ENOSPC, "%s: %s more would leave less than %d MiB free on its file "
               "system; stopped", dst, human_size (n, a, sizeof a), COPY_RESERVE >> 20);
    return -1;
  }
  return 0;
}

static int
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t n = write (fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= n;
  }
  return 0;
}

/* One block of the guest's file into fd: its length (0 at the end). */
static ssize_t
read_block (virDomainPtr d, const char *vm, json_int_t h, int fd,
            const char *dst, uint64_t done, uint64_t max)
{
  CLEANUP_FREE unsigned char *buf = NULL;
  json_t *r = agent (d, vm, "guest-file-read",
                     json_pack ("{s:s, s:{s:I, s:i}}", "execute", "guest-file-read",
                                "arguments", "handle", h, "count", LAB_COPY_BLOCK));
  bool cut = false, eof;
  size_t n;

  if (!r)
    return -1;
  eof = json_is_true (json_object_get (r, "eof"));
  if (b64_decode (json_string_value (json_object_get (r, "buf-b64")), LAB_COPY_BLOCK,
                  &buf, &n, &cut) == -1 || cut ||
      json_integer_value (json_object_get (r, "count")) != (json_int_t) n) {
    json_decref (r);
    error_setx ("VM %s: guest-file-read: a block that is not what was asked for", vm);
    return -1;
  }
  json_decref (r);
  if (n > 0 && room_for (fd, dst, done, n, max) == -1)
    return -1;
  if (write_all (fd, buf, n) == -1) {
    error_set (errno ? errno : EIO, "write %s", dst);
    return -1;
  }
  return n == 0 && !eof ? -2 : (ssize_t) n;
}

/* The host file a copy out writes: dst, or dst/BASENAME of src if dst is
 * a directory (src is the user's argument, not the guest's). */
static char *
host_target (const char *src, const char *dst)
{
  struct stat st;
  const char *base = strrchr (src, '/') ? strrchr (src, '/') + 1 : src;

  if (stat (dst, &st) == 0 && S_ISDIR (st.st_mode)) {
    if (!*base || strcmp (base, ".") == 0 || strcmp (base, "..") == 0) {
      error_setx ("%s is a directory: name the file to write", dst);
      return NULL;
    }
    return xasprintf ("%s/%s", dst, base);
  }
  return xstrdup (dst);
}

/* A temporary file beside target, 0600, never through a symlink. */
static int
open_temp (const char *target, char **tmp)
{
  CLEANUP_FREE char *dir = xstrdup (target);
  char *slash = strrchr (dir, '/');
  const char *base = slash ? slash + 1 : target;
  int fd;

  if (slash)
    *(slash == dir ? slash + 1 : slash) = '\0';
  *tmp = xasprintf ("%s/.%s.bootback-%d.tmp", slash ? dir : ".", base, (int) getpid ());
  fd = open_private (*tmp, O_WRONLY | O_EXCL);
  if (fd == -1) {
    error_set (errno, "create %s", *tmp);
    free (*tmp);
    *tmp = NULL;
  }
  return fd;
}

/* Read the open guest file h into fd until its end. */
static int
copy_blocks_out (virDomainPtr d, const char *vm, json_int_t h, int fd,
                 const char *target, const struct lab_copy_opts *o,
                 struct progress *p, uint64_t *bytes)
{
  ssize_t n;
  int empty = 0;

  while ((n = read_block (d, vm, h, fd, target, *bytes, o->max_size)) != 0) {
    if (n == -1)
      return -1;
    if (n == -2 && ++empty > 3) {
      error_setx ("VM %s: guest-file-read returns nothing but no end", vm);
      return -1;
    }
    if (n > 0) {
      *bytes += n;
      progress_add (p, n);
    }
    if (lab_interrupted) {
      error_setx ("interrupted");
      return -1;
    }
  }
  return 0;
}

int
lab_guest_copy_out (virDomainPtr d, const char *vm, const char *src, const char *dst,
                    const struct lab_copy_opts *o, uint64_t *bytes)
{
  CLEANUP_FREE char *target = host_target (src, dst);
  CLEANUP_FREE char *tmp = NULL;
  CLEANUP_FREE char *label = NULL;
  CLEANUP_CLOSE int fd = -1;
  struct progress *p;
  json_int_t h;
  int64_t size;
  int r = -1;

  *bytes = 0;
  if (!target || (h = gfile_open (d, vm, src, "r")) < 0)
    return -1;
  size = gfile_size (d, vm, h);
  if (size == -2 || (fd = open_temp (target, &tmp)) == -1) {
    gfile_close (d, vm, h);
    return -1;
  }
  label = lab_printable (src, 40);
  p = progress_new (label, size > 0 ? (uint64_t) size : 0);
  if ((size <= 0 || room_for (fd, target, 0, size, o->max_size) == 0) &&
      copy_blocks_out (d, vm, h, fd, target, o, p, bytes) == 0) {
    if (fchmod (fd, o->mode ? o->mode : PRIVATE_FILE_MODE) == -1 || fsync (fd) == -1)
      error_set (errno, "write %s", tmp);
    else if (rename (tmp, target) == -1)
      error_set (errno, "rename %s to %s", tmp, target);
    else
      r = 0;
  }
  progress_free (p);
  gfile_close (d, vm, h);
  if (r == -1)
    unlink (tmp);
  return r;
}

/* Write len bytes to the open guest file h. */
static int
write_block (virDomainPtr d, const char *vm, json_int_t h, const unsigned char *buf,
             size_t len)
{
  CLEANUP_FREE char *b64 = b64_encode (buf, len);
  json_t *r = agent (d, vm, "guest-file-write",
                     json_pack ("{s:s, s:{s:I, s:s}}", "execute", "guest-file-write",
                                "arguments", "handle", h, "buf-b64", b64));
  json_int_t n = r ? json_integer_value (json_object_get (r, "count")) : -1;

  json_decref (r);
  if (r && n != (json_int_t) len) {
    error_setx ("VM %s: guest-file-write wrote %lld of %zu bytes", vm, (long long) n, len);
    return -1;
  }
  return r ? 0 : -1;
}

int
lab_guest_copy_in (virDomainPtr d, const char *vm, const char *src, const char *dst,
                   const struct lab_copy_opts *o, uint64_t *bytes)
{
  CLEANUP_CLOSE int fd = open (src, O_RDONLY | O_CLOEXEC);
  CLEANUP_FREE unsigned char *buf = NULL;
  struct progress *p;
  struct stat st;
  json_int_t h;
  ssize_t n;
  int r = 0;

  *bytes = 0;
  if (fd == -1 || fstat (fd, &st) == -1) {
    error_set (errno, "open %s", src);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    error_setx ("%s is not a regular file", src);
    return -1;
  }
  if ((h = gfile_open (d, vm, dst, "w")) < 0)
    return -1;
  buf = xmalloc (LAB_COPY_WRITE_BLOCK);
  p = progress_new (src, st.st_size);
  while (r == 0 && (n = read (fd, buf, LAB_COPY_WRITE_BLOCK)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      error_set (errno, "read %s", src);
      r = -1;
    }
    else if (write_block (d, vm, h, buf, n) == -1 || lab_interrupted) {
      if (lab_interrupted)
        error_setx ("interrupted");
      r = -1;
    }
    else {
      *bytes += n;
      progress_add (p, n);
    }
  }
  progress_free (p);
  if (r == 0) {
    json_t *f = agent (d, vm, "guest-file-flush",
                       json_pack ("{s:s, s:{s:I}}", "execute", "guest-file-flush",
                                  "arguments", "handle", h));
    r = f ? 0 : -1;
    json_decref (f);
  }
  gfile_close (d, vm, h);
  return r;
}

/* ---- console ------------------------------------------------------------- */

/* Where the console's bytes come from: libvirt's stream on a pty, or the
 * console log followed read-only (a file chardev cannot be attached). */
struct console_src {
  virStreamPtr st;
  int log;
};

/* Bytes the console has now into buf: their number, 0 if none now, -1
 * (error set) on failure, -3 at the end of the stream (the VM stopped). */
static ssize_t
console_read (struct console_src *c, char *buf, size_t len)
{
  ssize_t n;

  if (c->st) {
    n = virt_stream_recv (c->st, buf, len);
    return n == -2 ? 0 : n == 0 ? -3 : n;
  }
  n = read (c->log, buf, len);
  if (n < 0)
    error_set (errno, "read the console log");
  return n;
}

/* Forward what the console has to out; -1 on failure, 1 at its end. */
static int
console_drain (struct console_src *c, int out)
{
  char buf[16384];
  ssize_t n;

  while ((n = console_read (c, buf, sizeof buf)) > 0)
    if (write_all (out, buf, n) == -1) {
      error_set (errno, "write the console's output");
      return -1;
    }
  return n == -3 ? 1 : n < 0 ? -1 : 0;
}

/* Input from in to the console (dropped when following the log): 1 at
 * the escape byte or the end of input, -1 on failure. */
static int
console_input (struct console_src *c, int in, int escape)
{
  char buf[4096];
  ssize_t n = read (in, buf, sizeof buf);
  char *e;

  if (n < 0)
    return errno == EINTR || errno == EAGAIN ? 0 : -1;
  if (n == 0)
    return 1;
  e = escape >= 0 ? memchr (buf, escape, n) : NULL;
  if (e)
    n = e - buf;
  if (c->st && n > 0 && virt_stream_send_all (c->st, buf, n) == -1)
    return -1;
  return e ? 2 : 0;
}

static int
console_loop (struct console_src *c, int in, int out, const struct lab_console_opts *o)
{
  double until = -1;
  struct pollfd pfd = { .fd = in, .events = POLLIN };
  int r;

  for (;;) {
    if (until < 0 && poll (&pfd, 1, 20) > 0) {
      r = console_input (c, in, o->escape);
      if (r == -1)
        return -1;
      if (r == 2)
        return 0;                       /* the escape byte */
      if (r == 1)
        until = now_monotonic () + o->linger;
    }
    else if (until >= 0)
      usleep (20000);
    r = console_drain (c, out);
    if (r != 0)
      return r == 1 ? 0 : -1;
    if (lab_interrupted || (until >= 0 && now_monotonic () >= until))
      return 0;
  }
}

/* What d's console is (its first serial port or console: console 0
 * mirrors serial port 0 when both exist): 1 a pty or unix socket, which
 * libvirt attaches; 0 a file, its path into path; -1 anything else. */
static int
console_kind (virDomainPtr d, char *path, size_t len)
{
  CLEANUP_FREE char *xml = virt_domain_xml (d, 0);
  CLEANUP_XML_DOC xmlDocPtr doc = xml ? virt_xml_parse (xml, 0, NULL) : NULL;
  CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = doc ? virt_xpath_context (doc, NULL, NULL) : NULL;
  CLEANUP_XPATH_OBJ xmlXPathObjectPtr o =
    ctx ? virt_xpath_eval (ctx, "/domain/devices/console[1] | /domain/devices/serial[1]")
        : NULL;
  xmlNodePtr n = virt_xpath_count (o) ? virt_xpath_node (o, 0) : NULL;
  char type[16];

  error_clear ();
  virt_xml_attr (n, "type", type, sizeof type);
  virt_xml_attr (virt_xml_child (n, "source"), "path", path, len);
  if (strcmp (type, "pty") == 0 || strcmp (type, "unix") == 0)
    return 1;
  return strcmp (type, "file") == 0 && path[0] ? 0 : -1;
}

/* The console log at path, if it lies in dir, read-only without
 * following a link, from its last 4 KiB. */
static int
open_log (const char *path, const char *dir)
{
  size_t dl = strlen (dir);
  struct stat st;
  int fd = -1;

  if (strncmp (path, dir, dl) != 0 || path[dl] != '/' || strstr (path, "/../")) {
    CLEANUP_FREE char *shown = lab_printable (path, 200);
    error_setx ("its console writes to %s, outside %s: not followed", shown, dir);
    return -1;
  }
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd == -1) {
    error_set (errno, "console log %s", path);
    return -1;
  }
  if (fstat (fd, &st) == 0 && st.st_size > 4096)
    lseek (fd, st.st_size - 4096, SEEK_SET);
  return fd;
}

int
lab_guest_console (virDomainPtr d, const char *vm, const char *log_dir, int in, int out,
                   const struct lab_console_opts *o)
{
  struct console_src c = { .log = -1 };
  char path[4096];
  int kind = console_kind (d, path, sizeof path), r;

  if (kind == 1 && !(c.st = virt_console_open (d, o->force)))
    kind = -2;
  else if (kind == 0 && (c.log = open_log (path, log_dir)) == -1)
    kind = -2;
  else if (kind == -1)
    error_setx ("its console is neither a pty nor a file");
  if (kind < 0) {
    error_prefix ("VM %s", vm);
    return -1;
  }
  if (o->ready)
    o->ready (o->opaque, kind == 0, kind == 0 ? "its serial port writes to a file" : NULL);
  r = console_loop (&c, in, out, o);
  if (r == -1)
    error_prefix ("VM %s: console", vm);
  virt_stream_close (c.st);
  if (c.log != -1)
    close (c.log);
  return r;
}
