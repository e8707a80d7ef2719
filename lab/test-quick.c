/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the quick verification's definition (quick.c) and the
 * constructors under it (conf.c): a restore point's <bb:verify> may only
 * ask for checks that act on the guest (every other kind, and every
 * option that would reach something else, is refused and named, the rest
 * kept); its address, subnet and gateway are parsed strictly and refused
 * with an error naming them; the administrator's options may ask for
 * anything.
 */
#include "lab/lab.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static struct lab_verify_hints
hints (const char *address, const char *subnet, const char *gateway,
       const char *const *checks)
{
  struct lab_verify_hints h = { 0 };

  h.address = address ? xstrdup (address) : NULL;
  h.subnet = subnet ? xstrdup (subnet) : NULL;
  h.gateway = gateway ? xstrdup (gateway) : NULL;
  for (; checks && *checks; checks++)
    h.checks[h.nchecks++] = xstrdup (*checks);
  return h;
}

static struct lab_vm *
the_vm (struct lab_def *d)
{
  return d && d->ngroups == 1 && d->groups[0].nvms == 1 ? &d->groups[0].vms[0] : NULL;
}

static bool
has_check (const struct lab_vm *vm, const char *name)
{
  size_t i;

  for (i = 0; i < vm->nchecks; i++)
    if (strcmp (vm->checks[i].name, name) == 0)
      return true;
  return false;
}

/* Is check refused, the reason containing why? */
static bool
refused (const struct lab_vm *vm, const char *check, const char *why)
{
  size_t i;

  for (i = 0; i < vm->nrefused; i++)
    if (strcmp (vm->refused[i].check, check) == 0 && strstr (vm->refused[i].why, why))
      return true;
  return false;
}

/* The point's checks: the allowed ones kept, every other refused. */
static void
test_point_checks (void)
{
  static const char *const checks[] = {
    "tcp 7",
    "http http://{address}/health expect 200 contains ok",
    "http http://10.77.0.21:8080/",
    "guest-exec test -s /srv/data && echo 'ok'",
    "ping",
    "script /bin/sh -c 'touch /tmp/owned'",
    "script /bin/true",
    "  script   /bin/true",
    "http http://10.77.0.99/",               /* another lab address */
    "http http://{address}@10.77.0.99/",
    "http http://10.77.0.1/",                /* the lab namespace */
    "http http://127.0.0.1/",
    "tcp 99999",
    "tcp 7\n- script /bin/true",
    "guest-exec \x1b]0;owned\x07",
    "frobnicate",
    "http \"http://{address}/a'\\b\"",      /* a quote, a backslash */
    "http 'http://{address}/a\"b c'",
    NULL,
  };
  struct lab_verify_hints h = hints ("10.77.0.21", NULL, NULL, checks);
  struct lab_quick q = { .vm = "web1", .point = "20260101T000000Z", .hints = &h };
  struct lab_def *d = lab_quick_def (&q);
  struct lab_vm *vm = the_vm (d);
  size_t i;

  CHECK (vm != NULL);
  if (!vm) {
    fprintf (stderr, "  %s\n", error_msg ());
    lab_verify_hints_clear (&h);
    return;
  }
  CHECK (strcmp (d->name, "verify-web1") == 0);
  CHECK (strcmp (d->subnet, "10.77.0.0") == 0 && d->prefix == 24);
  CHECK (strcmp (d->gateway, "10.77.0.1") == 0);
  CHECK (strcmp (vm->address, "10.77.0.21") == 0);
  CHECK (strcmp (vm->point, "20260101T000000Z") == 0);
  /* heartbeat, ping, the 4 allowed other than ping (which runs once),
   * screenshot; no script anywhere. */
  CHECK (vm->nchecks == 7);
  CHECK (vm->checks[0].kind == LAB_CHECK_HEARTBEAT);
  CHECK (vm->checks[vm->nchecks - 1].kind == LAB_CHECK_SCREENSHOT);
  CHECK (has_check (vm, "tcp 7"));
  CHECK (has_check (vm, "http http://{address}/health"));
  CHECK (has_check (vm, "http http://10.77.0.21:8080/"));
  CHECK (has_check (vm, "guest-exec test -s /srv/data && echo 'ok'"));
  for (i = 0; i < vm->nchecks; i++) {
    CHECK (vm->checks[i].kind != LAB_CHECK_SCRIPT);
    CHECK (vm->checks[i].retries == 20 && vm->checks[i].timeout == 5);
  }
  CHECK (vm->nrefused == 13);
  /* a path reaches a remote host's shell as a quoted word: RFC 3986 only */
  CHECK (refused (vm, "http \"http://{address}/a'\\b\"", "RFC 3986"));
  CHECK (refused (vm, "http 'http://{address}/a\"b c'", "RFC 3986"));
  CHECK (refused (vm, "script /bin/sh -c 'touch /tmp/owned'", "runs on the host"));
  CHECK (refused (vm, "script /bin/sh -c 'touch /tmp/owned'", "verify/web1.yaml"));
  CHECK (refused (vm, "script /bin/true", "a script check runs on the host"));
  CHECK (refused (vm, "  script   /bin/true", "a script check runs on the host"));
  CHECK (refused (vm, "http http://10.77.0.99/", "only reach the guest itself"));
  CHECK (refused (vm, "http http://{address}@10.77.0.99/", "the host must be"));
  CHECK (refused (vm, "http http://10.77.0.1/", "only reach the guest itself"));
  CHECK (refused (vm, "http http://127.0.0.1/", "checks never leave the lab"));
  CHECK (refused (vm, "tcp 99999", "is not a port number"));
  CHECK (refused (vm, "tcp 7\\n- script /bin/true", "printable"));
  CHECK (refused (vm, "guest-exec \\x1b]0;owned\\x07", "printable"));
  CHECK (refused (vm, "frobnicate", "unknown check"));
  lab_def_free (d);
  lab_verify_hints_clear (&h);
}

static bool
utf8_ok (const char *s)
{
  size_t n = strlen (s), i, k;

  for (i = 0; i < n; i += k)
    if (!(k = utf8_seq_len ((const unsigned char *) s + i, n - i)))
      return false;
  return true;
}

/* A refused check is named cut at a character, never inside one (review
 * finding: cut at byte 200 in the middle of an 'é', the name was no
 * UTF-8, and JSON dropped the failed check from report.json and the
 * whole run from the history); a C1 control (U+009B, CSI to terminals
 * that honour C1) is no printable text. */
static void
test_point_check_utf8 (void)
{
  char cut[256];
  const char *checks[] = { cut, "guest-exec echo \xc2\x9b" "2J", NULL };
  struct lab_verify_hints h;
  struct lab_quick q = { .vm = "web1", .point = "20260101T000000Z", .hints = &h };
  struct lab_def *d;
  struct lab_vm *vm;
  size_t i;

  snprintf (cut, sizeof cut, "script /%0191d\xc3\xa9\xc3\xa9", 0);
  h = hints ("10.77.0.21", NULL, NULL, checks);
  d = lab_quick_def (&q);
  vm = the_vm (d);
  CHECK (vm && vm->nrefused == 2);
  for (i = 0; vm && i < vm->nrefused; i++)
    CHECK (utf8_ok (vm->refused[i].check) && utf8_ok (vm->refused[i].why));
  CHECK (vm && refused (vm, "guest-exec echo \\xc2\\x9b2J", "printable"));
  lab_def_free (d);
  lab_verify_hints_clear (&h);
}

/* The administrator's options: any check, script included; they win
 * over the point's values. */
static void
test_admin (void)
{
  static const char *const pc[] = { "tcp 22", NULL };
  char *checks[] = { "script /bin/true --quick", "http http://10.78.0.99/", "heartbeat",
                     "ping", NULL };
  struct lab_verify_hints h = hints ("10.77.0.21", "10.77.0.0/24", "10.77.0.1", pc);
  struct lab_quick q = {
    .vm = "db1", .point = "latest", .address = "10.78.0.5", .subnet = "10.78.0.0/16",
    .gateway = "10.78.255.254", .boot_timeout = "3m", .memory = "512",
    .checks = checks, .hints = &h,
  };
  struct lab_def *d = lab_quick_def (&q);
  struct lab_vm *vm = the_vm (d);

  CHECK (vm != NULL);
  if (vm) {
    CHECK (strcmp (vm->address, "10.78.0.5") == 0);
    CHECK (strcmp (d->subnet, "10.78.0.0") == 0 && d->prefix == 16);
    CHECK (strcmp (d->gateway, "10.78.255.254") == 0);
    CHECK (vm->boot_timeout == 180 && vm->memory_mib == 512);
    CHECK (has_check (vm, "script /bin/true") && has_check (vm, "tcp 22"));
    CHECK (has_check (vm, "http http://10.78.0.99/"));
    CHECK (vm->nrefused == 0);
    /* --check heartbeat and --check ping run once, beside the defaults. */
    CHECK (vm->nchecks == 6);
  }
  else
    fprintf (stderr, "  %s\n", error_msg ());
  lab_def_free (d);
  /* A bad --check fails the whole verification, naming it. */
  checks[0] = "script relative/path";
  d = lab_quick_def (&q);
  CHECK (!d && strstr (error_msg (), "--check 'script relative/path'") &&
         strstr (error_msg (), "must be an absolute path"));
  lab_verify_hints_clear (&h);
  /* No address: the agent's network, heartbeat and screenshot only. */
  q = (struct lab_quick) { .vm = "db1", .point = "latest" };
  d = lab_quick_def (&q);
  vm = the_vm (d);
  CHECK (vm && !vm->address && vm->nchecks == 2 && strcmp (d->subnet, "198.18.255.0") == 0);
  lab_def_free (d);
}

/* A hostile or broken address, subnet or gateway in the point: refused
 * with an error naming the value and where it came from. */
static void
test_point_network (void)
{
  static const struct {
    const char *address, *subnet, *gateway, *want;
  } t[] = {
    { "10.77.0.21\n  - name: evil\n    image: /etc/hostname", NULL, NULL,
      "<address> of its <bb:verify>: address: '10.77.0.21\\n  - name: evil\\n" },
    { "10.77.0.21 ", NULL, NULL, "address: '10.77.0.21 ' is not an IPv4 address" },
    { "10.77.0.021", NULL, NULL, "address: '10.77.0.021' is not an IPv4" },
    { "10.77.0", NULL, NULL, "address: '10.77.0' is not an IPv4" },
    { "10.77.0.1", NULL, NULL, "address 10.77.0.1 is the lab's own" },
    { "10.77.0.255", NULL, NULL, "not a host address of the lab subnet" },
    { "10.77.0.21", "10.77.0.0/24\nverify: []", NULL,
      "<subnet> of its <bb:verify>: subnet: '10.77.0.0/24\\nverify: []' is not" },
    { "10.77.0.21", "10.77.0.0/ 24", NULL, "prefix from 8 to 30" },
    { "10.77.0.21", "10.77.0.0/+24", NULL, "prefix from 8 to 30" },
    { "10.77.0.21", "10.77.0.0/024", NULL, "prefix from 8 to 30" },
    { "10.77.0.21", "10.0.0.0/4", NULL, "prefix from 8 to 30" },
    { "10.77.0.21", "10.77.0.0/31", NULL, "prefix from 8 to 30" },
    { "10.77.0.21", "10.77.0.0", NULL, "is not ADDRESS/PREFIX" },
    { "10.77.0.21", "10.77.0.5/24", NULL, "has host bits set" },
    { "127.0.0.2", "127.0.0.0/8", "127.0.0.1", "is not a unicast network" },
    { "224.0.0.2", "224.0.0.0/24", "224.0.0.1", "is not a unicast network" },
    { "10.77.0.21", "10.78.0.0/24", NULL,
      "the network of its <bb:verify>: network: gateway 10.77.0.1 is not a host "
      "address of 10.78.0.0/24" },
    { "10.77.0.21", NULL, "10.77.0.1; reboot",
      "<gateway> of its <bb:verify>: gateway: '10.77.0.1; reboot'" },
    { "10.77.0.21", NULL, "10.77.1.1", "gateway 10.77.1.1 is not a host address of 10.77.0.0/24" },
    { "10.77.0.21", NULL, "10.77.0.21", "address 10.77.0.21 is the lab's own" },
    { "10.77.0.21", NULL, "10.77.0.0", "gateway 10.77.0.0 is not a host address" },
    { NULL, "10.77.0.0/24", NULL, "gateway 198.18.255.1 is not a host address of 10.77.0.0/24" },
  };
  size_t i;

  for (i = 0; i < sizeof t / sizeof t[0]; i++) {
    struct lab_verify_hints h = hints (t[i].address, t[i].subnet, t[i].gateway, NULL);
    struct lab_quick q = { .vm = "web1", .point = "20260101T000000Z", .hints = &h };
    struct lab_def *d = lab_quick_def (&q);
    if (d || !strstr (error_msg (), t[i].want) ||
        strncmp (error_msg (), "web1@20260101T000000Z: ", 23) != 0) {
      fprintf (stderr, "case %zu: got %s, want an error with \"%s\"\n", i,
               d ? "a definition" : error_msg (), t[i].want);
      failures++;
    }
    lab_def_free (d);
    lab_verify_hints_clear (&h);
  }
}

/* lab_printable: control characters escaped, long text cut. */
static void
test_printable (void)
{
  char *s = lab_printable ("a\nb\tc\x1b[0m", 100);
  CHECK (strcmp (s, "a\\nb\\tc\\x1b[0m") == 0);
  free (s);
  s = lab_printable ("abcdef", 3);
  CHECK (strcmp (s, "abc...") == 0);
  free (s);
}

/* Every VM name a restore point may have can be verified: the name of
 * the quick lab ("verify-VM") and of its VM take VM_NAME_MAX characters. */
static void
test_long_name (void)
{
  char name[VM_NAME_MAX + 1];
  struct lab_quick q = { .vm = name, .point = "latest" };
  struct lab_def *d;

  memset (name, 'v', VM_NAME_MAX);
  name[VM_NAME_MAX] = '\0';
  d = lab_quick_def (&q);
  CHECK (d != NULL && the_vm (d) && strcmp (the_vm (d)->name, name) == 0);
  if (!d)
    fprintf (stderr, "  %s\n", error_msg ());
  lab_def_free (d);
}

int
main (void)
{
  test_long_name ();
  test_point_checks ();
  test_point_check_utf8 ();
  test_admin ();
  test_point_network ();
  test_printable ();
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("lab quick ok\n");
  return 0;
}
