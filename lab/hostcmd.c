/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place that runs a lab's commands on its host (docs/design.md,
 * "Labs on another host").  On this host a command runs as it is; on
 * another it runs through the OpenSSH client,
 *
 *   ssh -n -T -o BatchMode=yes -o ConnectTimeout=10
 *       -o ControlMaster=auto -o ControlPath=DIR/%C -o ControlPersist=60
 *       [-F $BOOTBACK_SSH_CONFIG] [-p PORT] -- [USER@]HOST 'word' 'word' ...
 *
 * one multiplexed connection per process (DIR is a private directory made
 * by lab_host_open and removed by lab_host_close, which ends the master
 * with ssh -O exit, both only if DIR is still ours: 0700, our uid, not a
 * link).  `lab shell` of a lab there is one ssh of its own,
 * without -n and without a master (-t with a terminal:
 * lab_host_shell_argv).  ssh hands the remote shell one string: every word is
 * single-quoted here, so a word is never split or expanded there.  The
 * destination and the port are the catalog's (bootback host add --ssh),
 * checked by lab_ssh_dest_parse; nothing of a lab definition's VMs or of a
 * restore point ever reaches this file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

bool
lab_host_remote (const struct lab_host *h)
{
  return h && h->ssh[0];
}

/* A user or host name: letters, digits, '.', '_', '-', not starting with
 * '-' (never an ssh option). */
static bool
ssh_word_ok (const char *s, size_t n)
{
  size_t i;

  if (n == 0 || n > 255 || s[0] == '-')
    return false;
  for (i = 0; i < n; i++)
    if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                 s[i]))
      return false;
  return true;
}

int
lab_ssh_dest_parse (const char *s, char *dest, size_t len, int *port)
{
  const char *at = strchr (s, '@'), *host = at ? at + 1 : s;
  const char *colon = strchr (host, ':');
  size_t hlen = colon ? (size_t) (colon - host) : strlen (host);
  char *end;
  long p = 0;

  if (colon) {
    errno = 0;
    p = strtol (colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 1 || p > 65535)
      goto bad;
  }
  if ((at && !ssh_word_ok (s, (size_t) (at - s))) || !ssh_word_ok (host, hlen) ||
      (size_t) (host - s) + hlen + 1 > len)
    goto bad;
  snprintf (dest, len, "%.*s", (int) ((size_t) (host - s) + hlen), s);
  *port = (int) p;
  return 0;
 bad:
  error_setx ("ssh destination '%s' is not [USER@]HOST[:PORT] (letters, digits, "
              "'.', '_', '-'; a port from 1 to 65535)", s);
  return -1;
}

char *
lab_shell_quote (const char *w)
{
  size_t n = 2, i, k = 0;
  char *q;

  for (i = 0; w[i]; i++)
    n += w[i] == '\'' ? 4 : 1;
  q = xmalloc (n + 1);
  q[k++] = '\'';
  for (i = 0; w[i]; i++) {
    if (w[i] == '\'') {
      memcpy (q + k, "'\\''", 4);
      k += 4;
    }
    else
      q[k++] = w[i];
  }
  q[k++] = '\'';
  q[k] = '\0';
  return q;
}

/* ssh's options shared by every use: keep-alives, the master (mux) or
 * none, the config, the port; the destination into dest. */
static void
ssh_options (const struct lab_host *h, bool mux, char ***v, size_t *n, char *dest,
             size_t len)
{
  const char *cfg = getenv ("BOOTBACK_SSH_CONFIG");
  int port = 0;

  strv_pushl (v, n, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
              "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", NULL);
  if (mux) {
    strv_pushl (v, n, "-o", "ControlMaster=auto", "-o", "ControlPersist=60", NULL);
    strv_push (v, n, xasprintf ("-oControlPath=%s/%%C", h->ctl));
  }
  else
    strv_pushl (v, n, "-o", "ControlMaster=no", "-o", "ControlPath=none", NULL);
  if (cfg && cfg[0])
    strv_pushl (v, n, "-F", cfg, NULL);
  if (lab_ssh_dest_parse (h->ssh, dest, len, &port) == -1)
    snprintf (dest, len, "invalid.");     /* never used: lab_host_open and
                                             lab shell refused it */
  if (port)
    strv_push (v, n, xasprintf ("-p%d", port));
}

/* ssh and its options up to and with the destination, into *v; with
 * ctl_op "-O OP" (the master's control command) before it. */
static void
ssh_prefix (const struct lab_host *h, const char *ctl_op, char ***v, size_t *n)
{
  char dest[300];

  strv_pushl (v, n, "ssh", "-n", "-T", NULL);
  ssh_options (h, true, v, n, dest, sizeof dest);
  if (ctl_op)
    strv_pushl (v, n, "-O", ctl_op, NULL);
  strv_pushl (v, n, "--", dest, NULL);
}

char **
lab_host_shell_argv (const struct lab_host *h, char *const argv[], bool tty)
{
  char **v = xcalloc (1, sizeof *v);
  char dest[300];
  size_t n = 0, i;

  strv_pushl (&v, &n, "ssh", tty ? "-t" : "-T", NULL);
  ssh_options (h, false, &v, &n, dest, sizeof dest);
  strv_pushl (&v, &n, "--", dest, NULL);
  for (i = 0; argv[i]; i++)
    strv_push (&v, &n, lab_shell_quote (argv[i]));
  return v;
}

char **
lab_host_argv (const struct lab_host *h, char *const argv[])
{
  char **v = xcalloc (1, sizeof *v);
  size_t n = 0, i;

  if (!lab_host_remote (h)) {
    for (i = 0; argv[i]; i++)
      strv_push (&v, &n, xstrdup (argv[i]));
    return v;
  }
  ssh_prefix (h, NULL, &v, &n);
  for (i = 0; argv[i]; i++)
    strv_push (&v, &n, lab_shell_quote (argv[i]));
  return v;
}

/* ssh's own failure (exit 255) as an error naming the host. */
static void
ssh_failed (const struct lab_host *h, const char *out)
{
  error_setx ("could not verify: host %s does not answer over ssh (%s): %s",
              h->name, h->ssh, out && out[0] ? out : "ssh failed");
}

int
lab_host_run (const struct lab_host *h, char *const argv[], char *out, size_t len)
{
  CLEANUP_STRV char **v = lab_host_argv (h, argv);
  int r = run_command_timeout (v, out, len, lab_host_remote (h) ? 120 : 0);

  if (r == 255 && lab_host_remote (h)) {
    ssh_failed (h, out);
    return -1;
  }
  return r;
}

#define CTL_PREFIX "/tmp/bootback-ssh."

bool
lab_host_ctl_valid (const char *dir)
{
  const char *x = dir + strlen (CTL_PREFIX);

  return strncmp (dir, CTL_PREFIX, strlen (CTL_PREFIX)) == 0 && strlen (x) == 6 &&
    strspn (x, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == 6;
}

int
lab_host_open (struct lab_host *h)
{
  char *argv[] = { "true", NULL };
  char out[1024];
  char tmpl[] = CTL_PREFIX "XXXXXX";

  char dest[300];
  int port;

  if (!lab_host_remote (h) || h->ctl[0])
    return 0;
  /* checked at host add; again here: a state file or an older catalog */
  if (lab_ssh_dest_parse (h->ssh, dest, sizeof dest, &port) == -1) {
    error_prefix ("host %s", h->name);
    return -1;
  }
  if (!mkdtemp (tmpl)) {
    error_set (errno, "mkdtemp %s", tmpl);
    return -1;
  }
  snprintf (h->ctl, sizeof h->ctl, "%s", tmpl);
  if (lab_host_run (h, argv, out, sizeof out) != 0) {
    ERROR_SAVE (e);
    lab_host_close (h);
    ERROR_RESTORE (e);
    return -1;
  }
  return 0;
}

/* The control directory open if it is ours (a directory, not a link,
 * our uid, no access for others), else -1: in /tmp, a directory of that
 * name made by someone else (after ours went) or a symlink there. */
static int
ctl_dir_open (const char *dir)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;

  if (fd >= 0 && fstat (fd, &st) == 0 && st.st_uid == geteuid () &&
      (st.st_mode & 077) == 0)
    return fd;
  if (fd >= 0)
    close (fd);
  return -1;
}

/* The control directory fd (ctl_dir_open's, consumed), with the master's
 * socket if the master, told to exit, has not removed it yet. */
static void
ctl_dir_remove (const char *dir, int fd)
{
  struct dirent *e;
  DIR *d = fdopendir (fd);

  if (!d) {
    close (fd);
    return;
  }
  while ((e = readdir (d)))
    if (e->d_name[0] != '.')
      unlinkat (dirfd (d), e->d_name, 0);
  closedir (d);
  rmdir (dir);
}

void
lab_host_close (struct lab_host *h)
{
  CLEANUP_STRV char **v = xcalloc (1, sizeof *v);
  size_t n = 0;
  char out[256];

  int fd;

  if (!lab_host_remote (h) || !lab_host_ctl_valid (h->ctl))
    return;
  /* ours first (a killed run's state may name one someone else made
   * since): else no ssh is pointed at a socket in it */
  if ((fd = ctl_dir_open (h->ctl)) >= 0) {
    ssh_prefix (h, "exit", &v, &n);
    run_command_timeout (v, out, sizeof out, 20);
    ctl_dir_remove (h->ctl, fd);
  }
  h->ctl[0] = '\0';
}
