/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the lab's host runner (hostcmd.c): a word quoted for the
 * remote shell comes out of /bin/sh byte for byte whatever it holds
 * (quotes, $(...), backquotes, blanks, newlines, globs); an ssh
 * destination is [USER@]HOST[:PORT] and never an option; the ssh command
 * line has its options first, "--", the destination, then only quoted
 * words; this host's commands are run as they are; lab_host_close runs
 * no ssh -O exit on a control directory that is not ours.
 */
#include <sys/stat.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static const char *const nasty[] = {
  "plain", "", "a b", "it's", "'", "''", "$(touch /tmp/bb-pwned)", "`id`",
  "$HOME", "*", "a\nb", ";rm -rf /", "\\", "\"", "-oProxyCommand=x", "!x", NULL,
};

/* sh -c "printf '%s|' QUOTED..." prints each word as it was. */
static void
test_quote_shell (void)
{
  char *cmd = xstrdup ("printf '%s|'");
  char *want = xstrdup ("");
  char out[4096];
  size_t i;

  for (i = 0; nasty[i]; i++) {
    CLEANUP_FREE char *q = lab_shell_quote (nasty[i]);
    char *c2 = xasprintf ("%s %s", cmd, q), *w2 = xasprintf ("%s%s|", want, nasty[i]);
    free (cmd);
    free (want);
    cmd = c2;
    want = w2;
  }
  {
    char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    CHECK (run_command (argv, out, sizeof out) == 0);
  }
  /* run_command keeps the output as it is but for a trailing newline */
  CHECK (strcmp (out, want) == 0);
  CHECK (access ("/tmp/bb-pwned", F_OK) == -1);
  free (cmd);
  free (want);
}

static void
test_dest (void)
{
  static const char *const bad[] = {
    "-oProxyCommand=x", "root@-x", "a b", "h:0", "h:70000", "h:", "@h", "u@", "h;id",
    "", "h:22x", "u@h@k", "h/x", "h\n", NULL,
  };
  char dest[300];
  int port = -1;
  size_t i;

  CHECK (lab_ssh_dest_parse ("root@h1", dest, sizeof dest, &port) == 0 &&
         strcmp (dest, "root@h1") == 0 && port == 0);
  CHECK (lab_ssh_dest_parse ("h1.example:2222", dest, sizeof dest, &port) == 0 &&
         strcmp (dest, "h1.example") == 0 && port == 2222);
  CHECK (lab_ssh_dest_parse ("bb_admin@10.0.0.5:22", dest, sizeof dest, &port) == 0 &&
         strcmp (dest, "bb_admin@10.0.0.5") == 0 && port == 22);
  for (i = 0; bad[i]; i++) {
    int r = lab_ssh_dest_parse (bad[i], dest, sizeof dest, &port);
    if (r != -1)
      fprintf (stderr, "accepted: '%s'\n", bad[i]);
    CHECK (r == -1);
  }
}

/* The index of s in v, or -1. */
static int
find (char **v, const char *s)
{
  int i;

  for (i = 0; v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return i;
  return -1;
}

static void
test_argv (void)
{
  struct lab_host h = { .name = "h1", .ssh = "root@h1:2222", .ctl = "/tmp/bb-ctl" };
  char *argv[] = { "ip", "netns", "exec", "it's", "$(id)", NULL };
  char **v;
  int dd, i;

  setenv ("BOOTBACK_SSH_CONFIG", "/etc/bb/ssh_config", 1);
  v = lab_host_argv (&h, argv);
  dd = find (v, "--");
  CHECK (strcmp (v[0], "ssh") == 0);
  CHECK (find (v, "BatchMode=yes") > 0 && find (v, "BatchMode=yes") < dd);
  CHECK (find (v, "-oControlPath=/tmp/bb-ctl/%C") > 0);
  CHECK (find (v, "-p2222") > 0 && find (v, "-p2222") < dd);
  CHECK (find (v, "-F") > 0 && strcmp (v[find (v, "-F") + 1], "/etc/bb/ssh_config") == 0);
  CHECK (dd > 0 && strcmp (v[dd + 1], "root@h1") == 0);
  for (i = 0; argv[i]; i++) {
    CLEANUP_FREE char *q = lab_shell_quote (argv[i]);
    CHECK (v[dd + 2 + i] && strcmp (v[dd + 2 + i], q) == 0);
  }
  CHECK (v[dd + 2 + i] == NULL);
  CHECK (find (v, "-n") > 0 && find (v, "-n") < dd);
  strv_free (v);
  /* lab shell: stdin kept, a terminal if asked, no master, same words */
  v = lab_host_shell_argv (&h, argv, true);
  dd = find (v, "--");
  CHECK (find (v, "-t") == 1 && find (v, "-n") == -1 && find (v, "-T") == -1);
  CHECK (find (v, "ControlPath=none") > 0 && find (v, "-oControlPath=/tmp/bb-ctl/%C") == -1);
  CHECK (find (v, "-p2222") > 0 && find (v, "-p2222") < dd);
  CHECK (dd > 0 && strcmp (v[dd + 1], "root@h1") == 0);
  for (i = 0; argv[i]; i++) {
    CLEANUP_FREE char *q = lab_shell_quote (argv[i]);
    CHECK (v[dd + 2 + i] && strcmp (v[dd + 2 + i], q) == 0);
  }
  CHECK (v[dd + 2 + i] == NULL);
  strv_free (v);
  v = lab_host_shell_argv (&h, argv, false);
  CHECK (find (v, "-T") == 1 && find (v, "-t") == -1);
  strv_free (v);
  unsetenv ("BOOTBACK_SSH_CONFIG");
  v = lab_host_argv (&h, argv);
  CHECK (find (v, "-F") == -1);
  strv_free (v);
  /* this host: the command as it is */
  v = lab_host_argv (NULL, argv);
  for (i = 0; argv[i]; i++)
    CHECK (v[i] && strcmp (v[i], argv[i]) == 0);
  CHECK (v[i] == NULL);
  strv_free (v);
  CHECK (!lab_host_remote (NULL));
  h.ssh[0] = '\0';
  CHECK (!lab_host_remote (&h));
  CHECK (lab_host_open (&h) == 0 && h.ctl[0] == '/');   /* nothing to open here */
  /* a control directory named in a run's state: only one of ours */
  CHECK (lab_host_ctl_valid ("/tmp/bootback-ssh.AbC123"));
  CHECK (!lab_host_ctl_valid ("/tmp/bootback-ssh.../etc"));
  CHECK (!lab_host_ctl_valid ("/tmp/bootback-ssh.abc/xy"));
  CHECK (!lab_host_ctl_valid ("/tmp/bootback-ssh.abc1234"));
  CHECK (!lab_host_ctl_valid ("/etc"));
  CHECK (!lab_host_ctl_valid (""));
}

/* lab_host_close with a control directory that is not ours (review
 * finding: a killed run's state may name one someone else made since):
 * no ssh -O exit at a socket in it, and it stays; ours: both.  ssh here
 * is a script that records its arguments. */
static void
test_close_not_ours (void)
{
  char bin[] = "/tmp/test-hostcmd.XXXXXX", ctl[] = "/tmp/bootback-ssh.XXXXXX";
  struct lab_host h = { .name = "h1", .ssh = "root@h1" };
  CLEANUP_FREE char *ssh = NULL, *log = NULL, *path = NULL, *cmd = NULL;
  FILE *f;

  CHECK (mkdtemp (bin) != NULL);
  ssh = xasprintf ("%s/ssh", bin);
  log = xasprintf ("%s/log", bin);
  CHECK ((f = fopen (ssh, "w")) != NULL);
  fprintf (f, "#!/bin/sh\necho \"$*\" >> %s\n", log);
  fclose (f);
  CHECK (chmod (ssh, 0755) == 0);
  path = xasprintf ("%s:%s", bin, getenv ("PATH"));
  setenv ("PATH", path, 1);
  CHECK (mkdtemp (ctl) != NULL);
  /* not ours: open to others */
  CHECK (chmod (ctl, 0755) == 0);
  snprintf (h.ctl, sizeof h.ctl, "%s", ctl);
  lab_host_close (&h);
  CHECK (access (log, F_OK) == -1);
  CHECK (access (ctl, F_OK) == 0);
  CHECK (h.ctl[0] == '\0');
  /* ours: the master is told to exit, the directory goes */
  CHECK (chmod (ctl, 0700) == 0);
  snprintf (h.ctl, sizeof h.ctl, "%s", ctl);
  lab_host_close (&h);
  CHECK (access (log, F_OK) == 0);
  CHECK (access (ctl, F_OK) == -1);
  cmd = xasprintf ("rm -rf %s %s", bin, ctl);
  CHECK (system (cmd) == 0);
}

int
main (void)
{
  test_quote_shell ();
  test_dest ();
  test_argv ();
  test_close_not_ours ();
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("lab hostcmd ok\n");
  return 0;
}
