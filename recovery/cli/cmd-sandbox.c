/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bootback lab exec|cp|console|checkpoint|checkpoints|reset|extend: into,
 * out of and back in time in a sandbox (lab/lab.h, guest.c and
 * sandbox.c).  cmd_lab (cmd-lab.c) dispatches here.
 *
 * What a guest sends is printed as data: on a terminal its control
 * characters are shown escaped, in --json it is a JSON string; only into
 * a pipe or a file are its bytes copied as they are.  The interactive
 * console is the exception a terminal needs (full-screen programs), and
 * what is typed there reaches the guest only.
 *
 * Exit status: 0 done, 1 could not do it (wrong usage too); lab exec
 * passes on the guest command's (below).
 */
#include <errno.h>
#include <termios.h>

#include "lab/lab.h"
#include "recovery/cli/cli.h"
#include "recovery/virt/virt.h"

/* lab exec: bootback could not run the command (as ssh(1)); it still
 * runs after --timeout (as timeout(1)). */
#define EXEC_EXIT_FAILED 255
#define EXEC_EXIT_TIMEOUT 124

enum { OPT_JSON = 256, OPT_TIMEOUT, OPT_MAX_OUTPUT, OPT_MAX_SIZE, OPT_MODE, OPT_FORCE,
       OPT_WAIT, OPT_LEASE };

/* A lab, its libvirt connection and one VM's domain. */
struct sbx {
  struct lab_state *s;
  virConnectPtr conn;
  virDomainPtr d;
};

static void
sbx_close (struct sbx *x)
{
  if (x->d)
    virDomainFree (x->d);
  virt_close (x->conn);
  lab_state_free (x->s);
  memset (x, 0, sizeof *x);
}

/* Lab id (a sandbox if sandbox_only) and, if vm is not NULL, its VM.
 * -1 after printing why not. */
static int
sbx_open (struct cli *c, const char *id, const char *vm, bool sandbox_only,
          struct sbx *x)
{
  memset (x, 0, sizeof *x);
  x->s = lab_sandbox_load (c->home, id, sandbox_only);
  if (x->s && (x->conn = virt_connect (x->s->uri)) &&
      (!vm || (x->d = lab_sandbox_domain (x->conn, x->s, vm))))
    return 0;
  cli_perror ();
  sbx_close (x);
  return -1;
}

static double
duration_opt (const char *opt, const char *s)
{
  double v = lab_parse_duration (s);

  if (v < 0) {
    cli_error ("%s: %s", opt, error_msg ());
    exit (1);
  }
  return v;
}

static uint64_t
size_opt (const char *opt, const char *s)
{
  int64_t v = parse_size (s);

  if (v <= 0) {
    cli_error ("%s: '%s' is not a size above 0", opt, s);
    exit (1);
  }
  return v;
}

/* Length of the UTF-8 sequence at p (of n bytes) if it is a valid one of
 * a character that is not a C0/C1 control or DEL, else 0. */
static size_t
utf8_char (const unsigned char *p, size_t n)
{
  size_t len = utf8_seq_len (p, n);

  if (len == 1)
    return p[0] >= 0x20 && p[0] != 0x7f;
  if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)
    return 0;                           /* C1: U+0080-U+009F */
  return len;
}

/* The guest's bytes as a JSON string: UTF-8 kept (jansson escapes the
 * control characters), any other byte U+FFFD. */
static json_t *
json_bytes (const unsigned char *p, size_t n)
{
  char *o = xmalloc (3 * n + 1);
  size_t i = 0, k = 0, l;
  json_t *j;

  while (i < n) {
    l = utf8_char (p + i, n - i);
    if (l == 0 && p[i] < 0x80)
      l = 1;                            /* a control: jansson escapes it */
    if (l) {
      memcpy (o + k, p + i, l);
      k += l;
      i += l;
    }
    else {
      memcpy (o + k, "\xef\xbf\xbd", 3);
      k += 3;
      i++;
    }
  }
  j = json_stringn (o, k);
  free (o);
  return j;
}

/* Write the guest's bytes to fd: as they are into a pipe or file; on a
 * terminal with controls (but newlines and tabs) and broken UTF-8 as \xHH. */
static void
print_guest_bytes (int fd, const unsigned char *p, size_t n)
{
  FILE *f = fd == 1 ? stdout : stderr;
  size_t i = 0, l;

  fflush (stdout);
  if (!isatty (fd)) {
    fwrite (p, 1, n, f);
    fflush (f);
    return;
  }
  while (i < n) {
    l = utf8_char (p + i, n - i);
    if (l) {
      fwrite (p + i, 1, l, f);
      i += l;
    }
    else {
      if (p[i] == '\n' || p[i] == '\t')
        fputc (p[i], f);
      else
        fprintf (f, "\\x%02x", p[i]);
      i++;
    }
  }
  fflush (f);
}

/* ---- exec ---------------------------------------------------------------------- */

static const char exec_usage[] =
  "usage: bootback lab exec ID VM [--timeout DURATION] [--max-output SIZE] [--json]\n"
  "                         -- COMMAND [ARG...]\n"
  "\n"
  "Run COMMAND in VM of lab ID through its guest agent (no shell: give\n"
  "/bin/sh -c '...' for one) and print what it wrote: its stdout on stdout,\n"
  "its stderr on stderr.  That output is the guest's, not trusted: on a\n"
  "terminal control characters are shown escaped (\\x1b); into a pipe or a\n"
  "file it is copied byte for byte.  Exit status: the command's own, 128+N\n"
  "if signal N ended it, 124 if it still runs after --timeout (the agent\n"
  "cannot stop it), 255 if bootback could not run it (why, on stderr).\n"
  "\n"
  "  --timeout DURATION  how long the command may run (default 5m)\n"
  "  --max-output SIZE   bytes kept of its stdout and of its stderr each\n"
  "                      (default 1M; more is cut, and said on stderr;\n"
  "                      libvirt passes about 3 MiB in all, more is an\n"
  "                      error: write it to a file and lab cp it)\n"
  "  --json              the result as JSON: exit_code (null if it still\n"
  "                      runs), signal, timed_out, pid, stdout and stderr\n"
  "                      as strings (bytes that are not UTF-8: U+FFFD),\n"
  "                      stdout_truncated, stderr_truncated\n";

static int
exec_print (const char *vm, const struct lab_exec_result *r, double timeout, bool json)
{
  int rc = !r->exited ? EXEC_EXIT_TIMEOUT : r->signal ? 128 + r->signal : r->exit_code;

  if (json) {
    cli_json_print (json_pack ("{s:s, s:I, s:o, s:i, s:b, s:o, s:o, s:b, s:b}",
                               "vm", vm, "pid", (json_int_t) r->pid,
                               "exit_code", r->exited && !r->signal
                                 ? json_integer (r->exit_code) : json_null (),
                               "signal", r->signal, "timed_out", !r->exited,
                               "stdout", json_bytes (r->out, r->nout),
                               "stderr", json_bytes (r->err, r->nerr),
                               "stdout_truncated", r->out_truncated,
                               "stderr_truncated", r->err_truncated));
    return rc;
  }
  print_guest_bytes (1, r->out, r->nout);
  print_guest_bytes (2, r->err, r->nerr);
  if (r->out_truncated || r->err_truncated)
    cli_error ("VM %s: the command's output was cut (--max-output)", vm);
  if (!r->exited)
    cli_error ("VM %s: the command still runs after %.0f s (pid %lld in the guest; "
               "the agent cannot stop it)", vm, timeout, (long long) r->pid);
  return rc;
}

int
cli_lab_exec (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
    { "json", no_argument, NULL, OPT_JSON }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  struct lab_exec_opts o = { .timeout = 300, .max_output = 1 << 20 };
  struct lab_exec_result r;
  struct sbx x;
  bool json = false;
  int opt, rc;

  /* ID VM -- COMMAND...: getopt moves ID and VM next to COMMAND and
   * reads no option after "--" */
  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_TIMEOUT: o.timeout = duration_opt ("--timeout", optarg); break;
    case OPT_MAX_OUTPUT: o.max_output = size_opt ("--max-output", optarg); break;
    case OPT_JSON: json = true; break;
    case 'h': cli_usage (exec_usage);
    default: cli_bad_usage (exec_usage);
    }
  if (argc - optind < 3)
    cli_bad_usage (exec_usage);
  if (sbx_open (c, argv[optind], argv[optind + 1], false, &x) == -1)
    return EXEC_EXIT_FAILED;
  lab_signals_install ();
  if (lab_guest_exec (x.d, argv[optind + 1], argv + optind + 2, &o, &r) == -1) {
    cli_perror ();
    sbx_close (&x);
    return EXEC_EXIT_FAILED;
  }
  rc = exec_print (argv[optind + 1], &r, o.timeout, json);
  lab_exec_result_clear (&r);
  sbx_close (&x);
  return rc;
}

/* ---- cp ------------------------------------------------------------------------- */

static const char cp_usage[] =
  "usage: bootback lab cp ID SRC VM:DST [--json]\n"
  "       bootback lab cp ID VM:SRC DST [--max-size SIZE] [--mode MODE] [--json]\n"
  "\n"
  "Copy a file into or out of VM of lab ID through its guest agent, in\n"
  "blocks (1 MiB out, 128 KiB in), with a progress line on a terminal.\n"
  "Out of a VM it is item-level recovery from a restore point booted in a\n"
  "sandbox: a file, a database dump made with 'lab exec', a mailbox.  The\n"
  "host's copy is written to a temporary file beside DST and renamed over\n"
  "DST when complete (a symbolic link at DST is replaced, never followed),\n"
  "mode 0600 unless --mode; if DST is a directory, the file keeps SRC's\n"
  "name.  What the guest sends is not trusted: the copy stops at\n"
  "--max-size, and before the host's file system would have less than\n"
  "64 MiB free; then nothing is written.  Into a VM, DST is the file's\n"
  "path there (created or truncated).\n"
  "\n"
  "  --max-size SIZE     out: stop over SIZE bytes (default: no cap but\n"
  "                      the free space)\n"
  "  --mode MODE         out: the host file's mode, octal (default 0600)\n"
  "  --json              {vm, direction, source, destination, bytes, seconds}\n";

/* "VM:PATH" of a VM of s: the VM into vm, the path returned; else NULL. */
static const char *
vm_path (const struct lab_state *s, const char *arg, char *vm, size_t len)
{
  const char *colon = strchr (arg, ':');
  size_t i, n = colon ? (size_t) (colon - arg) : 0;

  if (!colon || n == 0 || n >= len)
    return NULL;
  memcpy (vm, arg, n);
  vm[n] = '\0';
  for (i = 0; s->vms && s->vms[i]; i++)
    if (strncmp (s->vms[i], vm, n) == 0 && s->vms[i][n] == ' ')
      return colon + 1;
  return NULL;
}

static int
cp_run (struct cli *c, const char *id, const char *a, const char *b,
        const struct lab_copy_opts *o, bool json)
{
  struct lab_state *s = lab_sandbox_load (c->home, id, false);
  char vm[VM_NAME_MAX + 1], vm2[VM_NAME_MAX + 1];
  const char *gsrc, *gdst;
  double t0 = now_monotonic (), secs;
  struct sbx x;
  uint64_t bytes;
  char hs[32];
  int r;

  if (!s) {
    cli_perror ();
    return 1;
  }
  gsrc = vm_path (s, a, vm, sizeof vm);
  gdst = vm_path (s, b, vm2, sizeof vm2);
  lab_state_free (s);
  if (!gsrc == !gdst || (gsrc && !*gsrc) || (gdst && !*gdst)) {
    cli_error ("lab cp: give one of SRC and DST as VM:PATH, VM one of lab %s's VMs "
               "(bootback lab list)", id);
    return 1;
  }
  if (sbx_open (c, id, gsrc ? vm : vm2, false, &x) == -1)
    return 1;
  lab_signals_install ();
  r = gsrc ? lab_guest_copy_out (x.d, vm, gsrc, b, o, &bytes)
           : lab_guest_copy_in (x.d, vm2, a, gdst, o, &bytes);
  sbx_close (&x);
  if (r == -1) {
    cli_perror ();
    return 1;
  }
  secs = now_monotonic () - t0;
  if (json)
    cli_json_print (json_pack ("{s:s, s:s, s:s, s:s, s:I, s:f}", "vm", gsrc ? vm : vm2,
                               "direction", gsrc ? "out" : "in", "source", a,
                               "destination", b, "bytes", (json_int_t) bytes,
                               "seconds", secs));
  else
    printf ("%s -> %s: %s in %.1f s (%.1f MiB/s)\n", a, b, human_size (bytes, hs, sizeof hs),
            secs, secs > 0 ? bytes / secs / (1 << 20) : 0.0);
  return 0;
}

int
cli_lab_cp (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "max-size", required_argument, NULL, OPT_MAX_SIZE },
    { "mode", required_argument, NULL, OPT_MODE },
    { "json", no_argument, NULL, OPT_JSON }, { "help", no_argument, NULL, 'h' }, { NULL }
  };
  struct lab_copy_opts o = { 0 };
  bool json = false;
  char *end;
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_MAX_SIZE: o.max_size = size_opt ("--max-size", optarg); break;
    case OPT_MODE:
      o.mode = strtoul (optarg, &end, 8);
      if (*end || end == optarg || o.mode == 0 || o.mode > 0777) {
        cli_error ("--mode: '%s' is not an octal file mode (e.g. 0640)", optarg);
        return 1;
      }
      break;
    case OPT_JSON: json = true; break;
    case 'h': cli_usage (cp_usage);
    default: cli_bad_usage (cp_usage);
    }
  if (argc - optind != 3)
    cli_bad_usage (cp_usage);
  return cp_run (c, argv[optind], argv[optind + 1], argv[optind + 2], &o, json);
}

/* ---- console --------------------------------------------------------------------- */

static const char console_usage[] =
  "usage: bootback lab console ID VM [--force] [--wait DURATION]\n"
  "\n"
  "Attach the serial console of VM of lab ID: what the guest writes is\n"
  "shown, what is typed goes to the guest, Ctrl-] ends it.  Without a\n"
  "terminal on stdin, stdin is copied to the console until it ends, output\n"
  "is shown --wait more, and it exits 0.  Nothing typed reaches the host\n"
  "(there is no other escape).  A console libvirt cannot attach (a restore\n"
  "point whose saved definition writes its serial port to a file) is\n"
  "followed read-only from its log.\n"
  "\n"
  "  --force            take the console from another client attached to it\n"
  "  --wait DURATION    after stdin ends, how long output is still shown\n"
  "                     (default 2s)\n";

static void
console_ready (void *opaque, bool read_only, const char *why)
{
  const char *vm = opaque;

  if (read_only)
    fprintf (stderr, "bootback: VM %s: cannot attach its console (%s); following its "
             "log read-only\n", vm, why);
  else if (isatty (0))
    fprintf (stderr, "Connected to the console of VM %s (escape character is ^])\r\n", vm);
}

int
cli_lab_console (struct cli *c, int argc, char **argv)
{
  static const struct option lo[] = {
    { "force", no_argument, NULL, OPT_FORCE }, { "wait", required_argument, NULL, OPT_WAIT },
    { "help", no_argument, NULL, 'h' }, { NULL }
  };
  struct lab_console_opts o = { .escape = -1, .linger = 2 };
  struct termios saved, raw;
  bool tty = isatty (0) && tcgetattr (0, &saved) == 0;
  struct sbx x;
  int opt, r;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_FORCE: o.force = true; break;
    case OPT_WAIT: o.linger = duration_opt ("--wait", optarg); break;
    case 'h': cli_usage (console_usage);
    default: cli_bad_usage (console_usage);
    }
  if (argc - optind != 2)
    cli_bad_usage (console_usage);
  if (sbx_open (c, argv[optind], argv[optind + 1], false, &x) == -1)
    return 1;
  o.ready = console_ready;
  o.opaque = argv[optind + 1];
  lab_signals_install ();
  if (tty) {
    o.escape = 0x1d;                    /* Ctrl-] */
    raw = saved;
    cfmakeraw (&raw);
    tcsetattr (0, TCSAFLUSH, &raw);
  }
  fflush (NULL);
  r = lab_guest_console (x.d, argv[optind + 1], c->home, 0, 1, &o);
  if (tty) {
    tcsetattr (0, TCSAFLUSH, &saved);
    fputc ('\n', stderr);
  }
  sbx_close (&x);
  if (r == -1) {
    cli_perror ();
    return 1;
  }
  return 0;
}

/* ---- checkpoint, checkpoints, reset, extend --------------------------------------- */

static const char checkpoint_usage[] =
  "usage: bootback lab checkpoint ID [NAME] [--json]\n"
  "\n"
  "Save every VM of sandbox ID, disks and memory, as checkpoint NAME\n"
  "(default: the time, e.g. 20261206T120000Z): an internal snapshot of each\n"
  "VM's qcow2 overlay, all VMs paused for it together, so it is one moment\n"
  "of the whole sandbox.  'bootback lab reset ID NAME' returns to it.\n";

static const char checkpoints_usage[] =
  "usage: bootback lab checkpoints ID [--json]\n"
  "\n"
  "The checkpoints of sandbox ID, oldest first.\n";

static const char reset_usage[] =
  "usage: bootback lab reset ID [NAME] [--timeout DURATION] [--json]\n"
  "\n"
  "Return every VM of sandbox ID to checkpoint NAME: disks and memory as\n"
  "they were then, running on at once.  Without NAME, to the restore point\n"
  "(or image) itself: every VM gets empty overlays and boots again, the\n"
  "isolation checks run again with its new taps (if one fails, the VMs are\n"
  "stopped), and every checkpoint is gone.  Then waits until every VM's\n"
  "guest agent answers and prints how long the reset took.  A sandbox on\n"
  "another host: to a checkpoint only.\n"
  "\n"
  "  --timeout DURATION  how long to wait for the agents (default 2m)\n";

static const char extend_usage[] =
  "usage: bootback lab extend ID --lease DURATION [--json]\n"
  "\n"
  "Sandbox ID's lease now ends DURATION from now (at least 1m); 'bootback\n"
  "lab reap' removes it only after that.\n";

/* The options of the four: --json, and --timeout / --lease where given. */
static int
parse_simple (int argc, char **argv, const char *usage, int min, int max, bool *json,
              double *timeout, double *lease)
{
  static const struct option lo[] = {
    { "json", no_argument, NULL, OPT_JSON }, { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "lease", required_argument, NULL, OPT_LEASE }, { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  int opt;

  while ((opt = getopt_long (argc, argv, "h", lo, NULL)) != -1)
    switch (opt) {
    case OPT_JSON: *json = true; break;
    case OPT_TIMEOUT:
      if (!timeout)
        cli_bad_usage (usage);
      *timeout = duration_opt ("--timeout", optarg);
      break;
    case OPT_LEASE:
      if (!lease)
        cli_bad_usage (usage);
      *lease = duration_opt ("--lease", optarg);
      break;
    case 'h': cli_usage (usage);
    default: cli_bad_usage (usage);
    }
  if (argc - optind < min || argc - optind > max)
    cli_bad_usage (usage);
  return optind;
}

int
cli_lab_checkpoint (struct cli *c, int argc, char **argv)
{
  bool json = false;
  int i = parse_simple (argc, argv, checkpoint_usage, 1, 2, &json, NULL, NULL);
  char stamp[TIMESTAMP_LEN + 1];
  const char *name = argv[i + 1];
  struct sbx x;
  double secs;
  int r;

  if (!name) {
    timestamp_format (time (NULL), stamp);
    name = stamp;
  }
  if (sbx_open (c, argv[i], NULL, true, &x) == -1)
    return 1;
  r = lab_sandbox_checkpoint (x.conn, x.s, name, &secs);
  if (r == -1)
    cli_perror ();
  else if (json)
    cli_json_print (json_pack ("{s:s, s:s, s:f}", "lab", x.s->id, "checkpoint", name,
                               "seconds", secs));
  else
    printf ("lab %s: checkpoint %s saved in %.1f s (bootback lab reset %s %s)\n",
            x.s->id, name, secs, x.s->id, name);
  sbx_close (&x);
  return r == -1 ? 1 : 0;
}

int
cli_lab_checkpoints (struct cli *c, int argc, char **argv)
{
  bool json = false;
  int i = parse_simple (argc, argv, checkpoints_usage, 1, 1, &json, NULL, NULL);
  struct lab_state *s = lab_sandbox_load (c->home, argv[i], true);
  struct lab_checkpoint *v;
  json_t *a = json_array ();
  char when[ISO_TIME_LEN + 1];
  size_t n, k;

  if (!s) {
    json_decref (a);
    cli_perror ();
    return 1;
  }
  v = lab_sandbox_checkpoints (s, &n);
  if (!json && n == 0)
    printf ("lab %s has no checkpoints\n", s->id);
  for (k = 0; k < n; k++) {
    iso_time_format (v[k].created, when);
    if (json)
      json_array_append_new (a, json_pack ("{s:s, s:s}", "name", v[k].name,
                                           "created", when));
    else
      printf ("%-24s %s\n", v[k].name, when);
  }
  if (json)
    cli_json_print (a);
  else
    json_decref (a);
  free (v);
  lab_state_free (s);
  return 0;
}

int
cli_lab_reset (struct cli *c, int argc, char **argv)
{
  bool json = false;
  double timeout = 120, secs;
  int i = parse_simple (argc, argv, reset_usage, 1, 2, &json, &timeout, NULL);
  const char *name = argv[i + 1];
  struct sbx x;
  int r;

  if (sbx_open (c, argv[i], NULL, true, &x) == -1)
    return 1;
  r = lab_sandbox_reset (x.conn, x.s, name, timeout, &secs);
  if (r != 0)
    cli_perror ();                      /* 1: a warning, the reset is done */
  if (r >= 0 && json)
    cli_json_print (json_pack ("{s:s, s:s?, s:f, s:s?}", "lab", x.s->id, "checkpoint", name,
                               "seconds", secs, "warning", r == 1 ? error_msg () : NULL));
  else if (r >= 0)
    printf ("lab %s: reset to %s%s in %.1f s, every guest agent answers\n", x.s->id,
            name ? "checkpoint " : "the restore point", name ? name : "", secs);
  sbx_close (&x);
  return r == -1 ? 1 : 0;
}

int
cli_lab_extend (struct cli *c, int argc, char **argv)
{
  bool json = false;
  double lease = -1;
  int i = parse_simple (argc, argv, extend_usage, 1, 1, &json, NULL, &lease);
  struct lab_state *s;
  char when[ISO_TIME_LEN + 1];

  if (lease < 60) {
    if (lease < 0)
      cli_bad_usage (extend_usage);
    cli_error ("--lease must be at least 1m");
    return 1;
  }
  s = lab_sandbox_load (c->home, argv[i], true);
  if (!s || lab_sandbox_extend (s, lease) == -1) {
    cli_perror ();
    lab_state_free (s);
    return 1;
  }
  iso_time_format (s->expires, when);
  if (json)
    cli_json_print (json_pack ("{s:s, s:I, s:s}", "lab", s->id,
                               "expires", (json_int_t) s->expires, "until", when));
  else
    printf ("sandbox %s is up until %s (bootback lab down %s)\n", s->id, when, s->id);
  lab_state_free (s);
  return 0;
}
