/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the lab definition (conf.c): a full valid definition,
 * defaults, both check syntaxes, and invalid definitions whose errors must
 * name the right line.
 */
#include <assert.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; } } while (0)

static const char good[] =
  "# a lab\n"                                                  /* 1 */
  "name: nightly\n"
  "network:\n"
  "  subnet: 10.77.0.0/24\n"
  "  gateway: 10.77.0.1\n"                                     /* 5 */
  "  dns: 10.77.0.53\n"
  "defaults:\n"
  "  boot-timeout: 3m\n"
  "  retries: 4\n"
  "groups:\n"                                                  /* 10 */
  "  - name: db\n"
  "    vms:\n"
  "      - name: db1\n"
  "        address: 10.77.0.20\n"
  "        memory: 1G\n"                                       /* 15 */
  "        delay: 5s\n"
  "        checks: [heartbeat, ping, \"tcp 5432\"]\n"
  "verify:\n"
  "  - name: web1\n"
  "    point: 20261122T045506Z\n"                              /* 20 */
  "    address: 10.77.0.10\n"
  "    memory: 512\n"
  "    checks:\n"
  "      - http http://{address}/health expect 200 contains \"status ok\"\n"
  "      - { http: \"http://10.77.0.10:8080/x\", expect: 503, retries: 0 }\n"
  "      - guest-exec test -s /srv/data && psql -c 'SELECT count(*) FROM t'\n"
  "      - script: [/bin/true, --quick]\n"
  "      - screenshot\n"
  "      - tcp: 7\n"
  "        timeout: 500ms\n";

static void
test_good (void)
{
  char *errs = NULL;
  struct lab_def *d = lab_def_read_string (good, "good.yaml", &errs);
  struct lab_vm *db, *web;

  if (!d) {
    fprintf (stderr, "unexpected errors:\n%s", errs);
    failures++;
    free (errs);
    return;
  }
  CHECK (strcmp (d->name, "nightly") == 0);
  CHECK (strcmp (d->subnet, "10.77.0.0") == 0 && d->prefix == 24);
  CHECK (strcmp (d->gateway, "10.77.0.1") == 0);
  CHECK (d->dns && strcmp (d->dns, "10.77.0.53") == 0);
  CHECK (d->ngroups == 2);
  CHECK (strcmp (d->groups[0].name, "db") == 0);
  CHECK (strcmp (d->groups[1].name, "verify") == 0);
  CHECK (lab_def_nvms (d) == 2);
  db = &d->groups[0].vms[0];
  web = &d->groups[1].vms[0];
  CHECK (strcmp (db->point, "latest") == 0);
  CHECK (db->memory_mib == 1024);
  CHECK (db->boot_timeout == 180);
  CHECK (db->delay == 5);
  CHECK (db->nchecks == 3);
  CHECK (db->checks[0].kind == LAB_CHECK_HEARTBEAT);
  CHECK (db->checks[1].kind == LAB_CHECK_PING);
  CHECK (db->checks[2].kind == LAB_CHECK_TCP && db->checks[2].port == 5432);
  CHECK (db->checks[2].retries == 4);
  CHECK (strcmp (db->checks[2].name, "tcp 5432") == 0);
  CHECK (web->memory_mib == 512);
  CHECK (web->nchecks == 6);
  CHECK (web->checks[0].kind == LAB_CHECK_HTTP);
  CHECK (strcmp (web->checks[0].url, "http://{address}/health") == 0);
  CHECK (web->checks[0].expect == 200);
  CHECK (strcmp (web->checks[0].contains, "status ok") == 0);
  CHECK (web->checks[1].expect == 503 && web->checks[1].retries == 0);
  CHECK (web->checks[2].kind == LAB_CHECK_GUEST_EXEC);
  CHECK (strcmp (web->checks[2].command,
                 "test -s /srv/data && psql -c 'SELECT count(*) FROM t'") == 0);
  CHECK (web->checks[3].kind == LAB_CHECK_SCRIPT);
  CHECK (strcmp (web->checks[3].argv[0], "/bin/true") == 0);
  CHECK (strcmp (web->checks[3].argv[1], "--quick") == 0 && !web->checks[3].argv[2]);
  CHECK (web->checks[4].kind == LAB_CHECK_SCREENSHOT);
  CHECK (web->checks[5].kind == LAB_CHECK_TCP && web->checks[5].port == 7);
  CHECK (web->checks[5].timeout == 0.5);
  CHECK (web->checks[5].line == 29);
  CHECK (web->line == 19);
  CHECK (lab_def_memory_mib (d, 256) == 1536);
  CHECK (lab_def_memory_mib (d, 1024) == 1536);
  lab_def_free (d);
}

/* Parse yaml; expect failure with an error at line that contains text. */
static void
expect_error (const char *yaml, int line, const char *text)
{
  char *errs = NULL;
  char want[64];
  struct lab_def *d = lab_def_read_string (yaml, "bad.yaml", &errs);

  snprintf (want, sizeof want, "bad.yaml:%d: ", line);
  if (d) {
    fprintf (stderr, "expected an error at line %d (%s), got none for:\n%s\n",
             line, text, yaml);
    failures++;
    lab_def_free (d);
    return;
  }
  if (!errs || !strstr (errs, want) || !strstr (errs, text)) {
    fprintf (stderr, "expected '%s...%s' in:\n%s\n", want, text, errs ? errs : "(null)");
    failures++;
  }
  free (errs);
}

#define HEAD "name: t\nnetwork:\n  subnet: 10.77.0.0/24\n  gateway: 10.77.0.1\n"
/* HEAD is 4 lines; the next line is 5. */

/* boot_failures: kept in order, the reason defaults to the text. */
static void
test_boot_failures (void)
{
  char *errs = NULL;
  struct lab_def *d = lab_def_read_string (
    HEAD "boot_failures:\n"
    "  - { text: \"app: cannot open database\", reason: the database is gone }\n"
    "  - text: \"FATAL: license expired\"\n"
    "verify:\n  - name: a\n", "bf.yaml", &errs);

  CHECK (d != NULL);
  if (!d) {
    fprintf (stderr, "%s", errs);
    free (errs);
    return;
  }
  CHECK (d->nboot_failures == 2);
  CHECK (strcmp (d->boot_failures[0].text, "app: cannot open database") == 0);
  CHECK (strcmp (d->boot_failures[0].reason, "the database is gone") == 0);
  CHECK (strcmp (d->boot_failures[1].reason, "FATAL: license expired") == 0);
  CHECK (d->groups[0].vms[0].stall_timeout == 60);    /* the default */
  CHECK (d->groups[0].vms[0].reread_timeout == 5);    /* the default */
  lab_def_free (d);
}

/* reread-timeout: from defaults:, a VM's own wins, 0 turns it off. */
static void
test_reread (void)
{
  char *errs = NULL;
  struct lab_def *d = lab_def_read_string (
    HEAD "defaults: { reread-timeout: 8s, stall-timeout: 2m }\n"
    "verify:\n  - name: a\n  - name: b\n    reread-timeout: 0\n", "rr.yaml", &errs);

  CHECK (d != NULL);
  if (!d) {
    fprintf (stderr, "%s", errs);
    free (errs);
    return;
  }
  CHECK (d->groups[0].vms[0].reread_timeout == 8);
  CHECK (d->groups[0].vms[0].stall_timeout == 120);
  CHECK (d->groups[0].vms[1].reread_timeout == 0);
  lab_def_free (d);
}

/* rto: and rpo: from the VM, else its group, else defaults:; an image VM
 * has no RPO. */
static void
test_targets (void)
{
  char img[] = "/tmp/test-conf-img.XXXXXX", *errs = NULL, *yaml;
  int fd = mkstemp (img);
  struct lab_def *d;
  struct lab_vm *a, *b, *c, *w, *i;

  CHECK (fd >= 0);
  close (fd);
  yaml = xasprintf (HEAD
    "defaults: { rto: 5m, rpo: 1d }\n"                      /* 5 */
    "groups:\n"
    "  - name: db\n"
    "    rto: 3m\n"
    "    vms:\n"
    "      - name: a\n"                                      /* 10 */
    "      - { name: b, rto: 90s, rpo: 12h }\n"
    "      - { name: c, rto: 0 }\n"
    "verify:\n"
    "  - name: w\n"
    "  - { name: i, image: %s }\n", img);
  d = lab_def_read_string (yaml, "t.yaml", &errs);
  CHECK (d != NULL);
  if (!d) {
    fprintf (stderr, "%s", errs);
    free (errs);
  }
  else {
    a = &d->groups[0].vms[0];
    b = &d->groups[0].vms[1];
    c = &d->groups[0].vms[2];
    w = &d->groups[1].vms[0];
    i = &d->groups[1].vms[1];
    CHECK (a->rto == 180 && a->rpo == 86400);   /* group, defaults */
    CHECK (b->rto == 90 && b->rpo == 43200);    /* its own */
    CHECK (c->rto == 0 && c->rpo == 86400);     /* 0: none */
    CHECK (w->rto == 300 && w->rpo == 86400);   /* defaults */
    CHECK (i->rto == 300 && i->rpo == 0);       /* an image: no RPO */
    lab_def_free (d);
  }
  free (yaml);
  /* no target unless one is given */
  d = lab_def_read_string (HEAD "verify:\n  - name: a\n", "t.yaml", NULL);
  CHECK (d && d->groups[0].vms[0].rto == 0 && d->groups[0].vms[0].rpo == 0);
  lab_def_free (d);
  /* rpo: on an image VM is an error at its line */
  yaml = xasprintf (HEAD "verify:\n  - name: i\n    image: %s\n    rpo: 1d\n", img);
  expect_error (yaml, 8, "VM i: rpo: applies to restore points; an image: VM has none");
  free (yaml);
  unlink (img);
  expect_error (HEAD "verify:\n  - name: a\n    rto: soon\n", 7,
                "rto: invalid duration 'soon'");
  expect_error (HEAD "defaults: { rpo: never }\nverify:\n  - name: a\n", 5,
                "rpo: invalid duration 'never'");
  expect_error (HEAD "groups:\n  - name: g\n    rto: -1s\n    vms: [{ name: a }]\n", 7,
                "rto: invalid duration '-1s'");
  expect_error (HEAD "groups:\n  - name: g\n    delay: 1s\n    vms: [{ name: a }]\n", 7,
                "unknown group key 'delay' (name, vms, rto, rpo, host)");
}

/* host: at the lab's level and per group; one lab, one host. */
static void
test_host (void)
{
  char *errs = NULL;
  struct lab_def *d;

  d = lab_def_read_string (HEAD "host: h2\ngroups:\n  - name: g\n    vms: [{ name: a }]\n"
                           "verify:\n  - name: b\n", "h.yaml", &errs);
  CHECK (d && strcmp (lab_def_host (d), "h2") == 0 && !d->groups[0].host);
  lab_def_free (d);
  d = lab_def_read_string (HEAD "groups:\n  - name: g\n    host: h2\n    vms: [{ name: a }]\n",
                           "h.yaml", &errs);
  CHECK (d && strcmp (lab_def_host (d), "h2") == 0);
  lab_def_free (d);
  d = lab_def_read_string (HEAD "verify:\n  - name: a\n", "h.yaml", &errs);
  CHECK (d && lab_def_host (d) == NULL);
  lab_def_free (d);
  /* a group may say the lab's host again, never another */
  d = lab_def_read_string (HEAD "host: h2\ngroups:\n  - name: g\n    host: h2\n"
                           "    vms: [{ name: a }]\n", "h.yaml", &errs);
  CHECK (d != NULL);
  lab_def_free (d);
  expect_error (HEAD "host: h2\ngroups:\n  - name: g\n    host: h3\n    vms: [{ name: a }]\n"
                "verify:\n  - name: b\n", 10, "group verify is on h2 but group g on h3: "
                "a lab runs on one host");
  expect_error (HEAD "groups:\n  - name: g\n    host: h3\n    vms: [{ name: a }]\n"
                "  - name: k\n    vms: [{ name: b }]\n", 9,
                "group k is on this host but group g on h3");
  /* only the lab and its groups name a host: not a VM, not network: */
  expect_error (HEAD "verify:\n  - name: a\n    host: h2\n", 7, "unknown VM key 'host'");
  expect_error ("name: t\nnetwork:\n  subnet: 10.77.0.0/24\n  gateway: 10.77.0.1\n"
                "  host: h2\nverify:\n  - name: a\n", 5, "host");
  expect_error (HEAD "host: 'a b'\nverify:\n  - name: a\n", 5,
                "host: 'a b' is not a host name of bootback host add");
  expect_error (HEAD "host: qemu+ssh://root@x/system\nverify:\n  - name: a\n", 5,
                "is not a host name");
  expect_error (HEAD "host: [h2]\nverify:\n  - name: a\n", 5, "host");
  free (errs);
}

static void
test_errors (void)
{
  expect_error (HEAD "verify:\n  - name: a\n    adress: 10.77.0.2\n", 7,
                "unknown VM key 'adress'");
  expect_error (HEAD "verify:\n  - name: a\n    address: 10.78.0.2\n", 6,
                "not a host address of the lab subnet");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - htp http://x/\n",
                8, "unknown check 'htp'");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - tcp 99999\n",
                8, "not a port number");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - http http://8.8.8.8/\n",
                8, "checks never leave the lab");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n"
                "      - { http: \"http://{address}/\", frob: 1 }\n",
                8, "unknown option 'frob'");
  expect_error (HEAD "verify:\n  - name: a\n    boot-timeout: soon\n", 7,
                "invalid duration");
  expect_error (HEAD "verify:\n  - name: a\n    image: relative.img\n", 7,
                "absolute path");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - script /nonexistent/x\n",
                8, "/nonexistent/x");
  expect_error (HEAD "verify:\n  - name: a\n  - name: a\n", 7, "appears twice");
  expect_error (HEAD "boot_failures:\n  - { reason: no text }\nverify:\n  - name: a\n",
                6, "boot_failures: text: a console text of 4 to 200");
  expect_error (HEAD "boot_failures: oops\nverify:\n  - name: a\n", 5,
                "boot_failures: expected a list");
  /* an empty mapping in a list in ... : its line is its parent's key's
   * (node_line looped between them once) */
  expect_error (HEAD "boot_failures: [{}]\nverify:\n  - name: a\n", 5,
                "boot_failures: text: a console text");
  expect_error (HEAD "boot_failures: [[[[]]]]\nverify:\n  - name: a\n", 5,
                "boot_failures: each entry is a mapping");
  expect_error (HEAD "verify:\n  - name: a\n    stall-timeout: never\n", 7,
                "invalid duration");
  expect_error (HEAD "defaults:\n  reread-timeout: soon\nverify:\n  - name: a\n", 6,
                "reread-timeout: ");
  expect_error (HEAD "verify:\n  - name: a\n    address: 10.77.0.1\n", 6,
                "lab's own");
  expect_error ("name: t\nnetwork:\n  subnet: 10.77.0.0/24\n  gateway: 10.77.1.1\n"
                "verify:\n  - name: a\n", 2, "gateway 10.77.1.1 is not a host");
  expect_error ("name: t\nnetwork:\n  subnet: 10.77.0.1/24\n  gateway: 10.77.0.1\n"
                "verify:\n  - name: a\n", 3, "host bits");
  expect_error ("name: t\nnetwork:\n  subnet: 10.77.0.0/+24\n  gateway: 10.77.0.1\n"
                "verify:\n  - name: a\n", 3, "a prefix from 8 to 30");
  expect_error ("name: t\nnetwork:\n  subnet: 127.0.0.0/8\n  gateway: 127.0.0.1\n"
                "verify:\n  - name: a\n", 3, "not a unicast network");
  expect_error ("name: t\nnetwork:\n  subnet: 10.77.0.0/24\n  gateway: \"10.77.0.1\\n\"\n"
                "verify:\n  - name: a\n", 4, "gateway: '10.77.0.1\\n' is not an IPv4");
  expect_error (HEAD "verify:\n  - name: a\n    name: b\n", 7, "YAML: duplicate key");
  expect_error (HEAD "verify:\n  - name: a\n    memory: 1\n", 7, "out of range");
  expect_error (HEAD "colour: blue\nverify:\n  - name: a\n", 5, "unknown key 'colour'");
  expect_error (HEAD "verify:\n  - name: a\n    point: yesterday\n", 7,
                "neither 'latest' nor a time stamp");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - ping 3\n", 8,
                "takes no arguments");
  /* Without network: the addresses went unchecked and lab run failed. */
  expect_error ("name: t\nverify:\n  - name: a\n    address: 10.77.0.2\n", 1,
                "the lab needs a network:");
  /* libfyaml 0.7 loops forever on a directive of bytes that are not
   * UTF-8: never given them. */
  expect_error (HEAD "verify:\n  - name: a\n%\xff\n", 7, "not UTF-8 text");
  expect_error (HEAD "verify:\n  - name: \xc3(\n", 6, "not UTF-8 text");
  expect_error (HEAD "verify:\n  - name: a\n%\x91\x91\n", 7, "not UTF-8 text");
  expect_error (HEAD "verify:\n  - name: a\n%\xc0\x80\n", 7, "not UTF-8 text");
  expect_error (HEAD "verify:\n  - name: a\n%\xed\xa0\x80\n", 7, "not UTF-8 text");
  {
    /* UTF-8 is fine. */
    struct lab_def *d =
      lab_def_read_string (HEAD "verify:\n  - name: a # caf\xc3\xa9 \xf0\x9f\x98\x80\n",
                           "ok.yaml", NULL);
    CHECK (d != NULL);
    lab_def_free (d);
  }
}

static void
test_misc (void)
{
  CHECK (lab_parse_duration ("90") == 90);
  CHECK (lab_parse_duration ("250ms") == 0.25);
  CHECK (lab_parse_duration ("4h") == 14400);
  CHECK (lab_parse_duration ("2m") == 120);
  CHECK (lab_parse_duration ("x") < 0);
  CHECK (lab_parse_duration ("-3s") < 0);
  /* (a lease or timeout beyond int/time_t: refused, not cast) */
  CHECK (lab_parse_duration ("1e300d") < 0);
  CHECK (lab_parse_duration ("3000000000") < 0);
  CHECK (lab_parse_duration ("3650d") == 3650 * 86400.0);
  CHECK (lab_ipv4_in_subnet ("10.77.0.200", "10.77.0.0", 24));
  CHECK (!lab_ipv4_in_subnet ("10.77.1.2", "10.77.0.0", 24));
  CHECK (lab_ipv4_in_subnet ("10.77.1.2", "10.77.0.0", 16));
  {
    /* A missing file is an error naming it. */
    char *errs = NULL;
    CHECK (!lab_def_read_file ("/nonexistent/lab.yaml", &errs));
    CHECK (errs && strstr (errs, "/nonexistent/lab.yaml"));
    free (errs);
  }
  {
    /* So is a file that is not UTF-8 text (a NUL byte too). */
    char path[] = "/tmp/test-conf.XXXXXX", *errs = NULL;
    int fd = mkstemp (path);
    static const char bad[] = HEAD "verify:\n  - name: a\n\0\n";
    CHECK (fd >= 0 && write (fd, bad, sizeof bad - 1) == sizeof bad - 1);
    close (fd);
    CHECK (!lab_def_read_file (path, &errs));
    CHECK (errs && strstr (errs, ":7: not UTF-8 text"));
    free (errs);
    unlink (path);
  }
}

/* publish: a list of [ADDR:]PORT=VM:PORT, checked against the VMs (with
 * their line); --publish through lab_def_add_publish. */
static void
test_publish (void)
{
  char *errs = NULL;
  struct lab_def *d = lab_def_read_string (
    HEAD "publish:\n"
    "  - 8080=a:80\n"
    "  - 0.0.0.0:2222=a:22\n"
    "verify:\n  - name: a\n    address: 10.77.0.10\n"
    "  - name: b\n", "pub.yaml", &errs);

  CHECK (d != NULL);
  if (!d) {
    fprintf (stderr, "%s", errs);
    free (errs);
    return;
  }
  CHECK (d->npublish == 2);
  CHECK (strcmp (d->publish[0].addr, "127.0.0.1") == 0 && d->publish[0].port == 8080);
  CHECK (strcmp (d->publish[0].vm, "a") == 0 && d->publish[0].vm_port == 80);
  CHECK (d->publish[0].line == 6);
  CHECK (strcmp (d->publish[1].addr, "0.0.0.0") == 0 && d->publish[1].port == 2222);
  CHECK (lab_def_add_publish (d, "127.0.0.1:9090=a:443") == 0 && d->npublish == 3);
  CHECK (lab_def_add_publish (d, "9091=nosuch:80") == -1 &&
         strstr (error_msg (), "no VM 'nosuch' in the lab") && d->npublish == 3);
  CHECK (lab_def_add_publish (d, "9092=b:80") == -1 &&
         strstr (error_msg (), "VM b has no address") && d->npublish == 3);
  CHECK (lab_def_add_publish (d, "10.0.0.1:2222=a:80") == -1 &&
         strstr (error_msg (), "published twice"));
  CHECK (lab_def_add_publish (d, "localhost:80=a:80") == -1 &&
         strstr (error_msg (), "'localhost' is not an IPv4 address"));
  CHECK (lab_def_add_publish (d, "70000=a:80") == -1 &&
         strstr (error_msg (), "'70000' is not a port"));
  CHECK (lab_def_add_publish (d, "80=a") == -1 && strstr (error_msg (), "expected VM:PORT"));
  CHECK (lab_def_add_publish (d, "80") == -1 && strstr (error_msg (), "[ADDR:]PORT=VM:PORT"));
  CHECK (d->npublish == 3);
  lab_def_free (d);
  expect_error (HEAD "publish: [\"8080=zz:80\"]\nverify:\n  - name: a\n", 5,
                "publish 127.0.0.1:8080: no VM 'zz' in the lab");
  expect_error (HEAD "publish:\n  - 8080=a:80\n  - 8080=a:81\n"
                "verify:\n  - name: a\n    address: 10.77.0.10\n", 7,
                "publish 127.0.0.1:8080: the port is published twice");
  expect_error (HEAD "publish: 8080=a:80\nverify:\n  - name: a\n", 5,
                "publish: expected a list");
}

/* scan: as a word or a mapping, with its rules and signatures; only an
 * administrator's, and only on a restore point VM. */
static void
test_scan (void)
{
  char *errs = NULL;
  struct lab_def *d = lab_def_read_string (
    HEAD "verify:\n  - name: a\n    checks:\n      - scan\n"
    "      - scan rules /etc/r.yar signatures /srv/sigs\n"
    "      - { scan: , rules: /etc/x.yar }\n", "scan.yaml", &errs);
  const struct lab_vm *vm;

  CHECK (d != NULL);
  if (!d) {
    fprintf (stderr, "%s\n", errs);
    free (errs);
    return;
  }
  vm = &d->groups[0].vms[0];
  CHECK (vm->nchecks == 3);
  CHECK (vm->checks[0].kind == LAB_CHECK_SCAN && !vm->checks[0].rules);
  CHECK (strcmp (vm->checks[0].name, "scan") == 0);
  CHECK (strcmp (vm->checks[1].rules, "/etc/r.yar") == 0);
  CHECK (strcmp (vm->checks[1].signatures, "/srv/sigs") == 0);
  CHECK (strcmp (vm->checks[2].rules, "/etc/x.yar") == 0);
  CHECK (lab_vm_add_check (d, &d->groups[0].vms[0], "scan",
                           LAB_FROM_POINT) == NULL);
  CHECK (lab_vm_add_check (d, &d->groups[0].vms[0], "scan", LAB_FROM_ADMIN));
  /* A quoted kind is the same kind: a point may not ask for it either. */
  CHECK (lab_vm_add_check (d, &d->groups[0].vms[0], "'scan' rules /etc/shadow",
                           LAB_FROM_POINT) == NULL);
  CHECK (lab_vm_add_check (d, &d->groups[0].vms[0], "sc\"an\" rules /etc/shadow",
                           LAB_FROM_POINT) == NULL);
  CHECK (lab_vm_add_check (d, &d->groups[0].vms[0], " \"script\" /bin/sh -c id",
                           LAB_FROM_POINT) == NULL);
  lab_def_free (d);
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - scan rules x.yar\n",
                8, "scan: rules needs an absolute path");
  expect_error (HEAD "verify:\n  - name: a\n    checks:\n      - scan rulez /x\n",
                8, "scan: unknown option 'rulez'");
  expect_error (HEAD "verify:\n  - name: a\n    image: /x.img\n    checks: [scan]\n",
                8, "VM a: scan: an image: VM has no restore point to scan");
}

/* lab_rule_may_match: which iptables rules before the lab's own can
 * touch its packets (net.c's input-drop and forward-drop checks). */
static void
test_rule_may_match (void)
{
  const char *br = "bbl0a1b2cbr";

  /* Another lab's (or a test's) rule on its own bridge: not ours. */
  CHECK (!lab_rule_may_match ("-A INPUT -i bbl78f013br -j ACCEPT", br, NULL));
  CHECK (!lab_rule_may_match ("-A FORWARD -i eth0 -o eth1 -j ACCEPT", br, br));
  CHECK (!lab_rule_may_match ("-A FORWARD -o virbr0 -j ACCEPT", NULL, br));
  CHECK (!lab_rule_may_match ("-A INPUT ! -i bbl0a1b2cbr -j ACCEPT", br, NULL));
  CHECK (!lab_rule_may_match ("-A INPUT -i bbl9+ -j ACCEPT", br, NULL));
  /* Ours, a wildcard covering ours, no interface, a negation of another. */
  CHECK (lab_rule_may_match ("-A INPUT -i bbl0a1b2cbr -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -i bbl+ -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -i + -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -s 10.0.0.0/8 -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT ! -i lo -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A FORWARD -i eth0 -o bbl0a1b2cbr -j ACCEPT", NULL, br));
  /* Only the side the lab's rule names counts. */
  CHECK (lab_rule_may_match ("-A FORWARD -i eth0 -j ACCEPT", NULL, br));
  /* A comment that reads like an interface match is a comment, quoted
   * or not (iptables 1.8.9 prints a one-word comment unquoted, and \"
   * inside a quoted one), and so is anything after the rule's head. */
  CHECK (lab_rule_may_match ("-A INPUT -m comment --comment \"x -i eth9\" -j ACCEPT",
                             br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -m comment --comment \"-i eth9 y\" -j ACCEPT",
                             br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -m comment --comment \"-i\" -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -m comment --comment -i -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -m comment --comment -i eth9 -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A FORWARD -m comment --comment \"x\\\" -i y -o z\" -j ACCEPT",
                             br, br));
  CHECK (lab_rule_may_match ("-A INPUT -p tcp -m tcp --dport 22 -i eth9 -j ACCEPT", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT -j LOG --log-prefix -i", br, NULL));
  CHECK (lab_rule_may_match ("-A INPUT ! ! -i eth9 -j ACCEPT", br, NULL));
  /* The head, in iptables -S order: addresses, interfaces, protocol. */
  CHECK (!lab_rule_may_match ("-A INPUT -s 10.0.0.0/8 -i eth9 -p tcp -m tcp --dport 22 -j ACCEPT",
                              br, NULL));
  CHECK (!lab_rule_may_match ("-A FORWARD ! -s 10.1.0.0/16 -d 10.2.0.0/16 "
                              "-i eth0 -o eth1 -j ACCEPT", br, br));
}

int
main (void)
{
  test_rule_may_match ();
  test_scan ();
  test_good ();
  test_publish ();
  test_errors ();
  test_host ();
  test_boot_failures ();
  test_reread ();
  test_targets ();
  test_misc ();
  if (failures) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("lab conf ok\n");
  return 0;
}
