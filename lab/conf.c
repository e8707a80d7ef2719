/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lab definition: a YAML file read with libfyaml into a struct
 * lab_def and validated.  Pure (no system changes, no network): every
 * problem is collected as "FILE:LINE: message", so `bootback lab validate`
 * shows all of them at once.
 *
 *   name: nightly
 *   network:
 *     subnet: 10.77.0.0/24      # the production subnet, rebuilt in the lab
 *     gateway: 10.77.0.1        # held by the lab namespace (the checker)
 *     dns: 10.77.0.53           # optional, also held by the namespace
 *   defaults: { boot-timeout: 2m, delay: 0, timeout: 10s, retries: 2,
 *               interval: 1s, memory: 256M }
 *   groups:                     # application groups, booted in this order
 *     - name: db
 *       vms:
 *         - name: db1           # a VM of the repository
 *           point: latest       # or a time stamp
 *           address: 10.77.0.20
 *           memory: 1G
 *           boot-timeout: 3m
 *           delay: 10s
 *           checks: [heartbeat, ping, "tcp 5432"]
 *   verify:                     # the VMs to verify, booted after the groups
 *     - name: web1
 *       image: /srv/images/web1.img   # instead of a restore point
 *       checks:
 *         - http http://{address}/health expect 200 contains ok
 *         - { http: "http://{address}/", expect: 200, retries: 5 }
 *         - script /usr/local/bin/check-web --quick
 *         - guest-exec test -s /var/lib/app/data
 *         - screenshot
 *
 * A check is a string "KIND ARGS..." (words split on blanks, "..." or
 * '...' quote) or a mapping whose first key is the kind; both take the
 * options timeout, retries and interval.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>

#include <libfyaml.h>

#include "lab/lab.h"
#include "recovery/util/util.h"

/* Parser state: where we read from and the collected problems. */
struct parser {
  const char *file;
  FILE *errs;
  char *errbuf;
  size_t errlen;
  int nerrs;
  char first[512];
  /* defaults */
  double boot_timeout, delay, timeout, interval;
  int retries;
  uint64_t memory_mib;
};

/* Record one problem at line (0 = unknown). */
static void __attribute__((format (printf, 3, 4)))
problem (struct parser *p, int line, const char *fmt, ...)
{
  char msg[400];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (line > 0)
    fprintf (p->errs, "%s:%d: %s\n", p->file, line, msg);
  else
    fprintf (p->errs, "%s: %s\n", p->file, msg);
  if (p->nerrs++ == 0) {
    if (line > 0)
      snprintf (p->first, sizeof p->first, "%s:%d: %s", p->file, line, msg);
    else
      snprintf (p->first, sizeof p->first, "%s: %s", p->file, msg);
  }
}

/* 1-based line of a node (scalars: their token; collections: their first
 * child, else the key that names them). */
static int
node_line (struct fy_node *n)
{
  const struct fy_mark *m;
  struct fy_token *t;
  void *it = NULL;

  if (!n)
    return 0;
  switch (fy_node_get_type (n)) {
  case FYNT_SCALAR:
    t = fy_node_get_scalar_token (n);
    m = t ? fy_token_start_mark (t) : NULL;
    return m ? m->line + 1 : 0;
  case FYNT_MAPPING: {
    struct fy_node_pair *pr = fy_node_mapping_iterate (n, &it);
    if (pr)
      return node_line (fy_node_pair_key (pr));
    break;
  }
  case FYNT_SEQUENCE: {
    struct fy_node *c = fy_node_sequence_iterate (n, &it);
    if (c)
      return node_line (c);
    break;
  }
  }
  return node_line (fy_node_get_parent (n));
}

/* The scalar text of n, or NULL (with a problem recorded) if it is not a
 * scalar. */
static const char *
scalar (struct parser *p, struct fy_node *n, const char *what, int line)
{
  const char *s;

  if (!n || fy_node_is_null (n)) {
    problem (p, line, "%s: a value is needed", what);
    return NULL;
  }
  if (!fy_node_is_scalar (n)) {
    problem (p, node_line (n), "%s: expected a single value, not a %s", what,
             fy_node_is_mapping (n) ? "mapping" : "list");
    return NULL;
  }
  s = fy_node_get_scalar0 (n);
  if (!s) {
    problem (p, node_line (n), "%s: unreadable value", what);
    return NULL;
  }
  return s;
}

double
lab_parse_duration (const char *s)
{
  char *end;
  double v, mul = 1;

  errno = 0;
  v = strtod (s, &end);
  if (errno || end == s || v < 0 || !isfinite (v))
    goto bad;
  if (strcmp (end, "") == 0 || strcmp (end, "s") == 0)
    mul = 1;
  else if (strcmp (end, "ms") == 0)
    mul = 0.001;
  else if (strcmp (end, "m") == 0 || strcmp (end, "min") == 0)
    mul = 60;
  else if (strcmp (end, "h") == 0)
    mul = 3600;
  else if (strcmp (end, "d") == 0)
    mul = 86400;
  else
    goto bad;
  return v * mul;
 bad:
  error_setx ("invalid duration '%s' (expected e.g. 90s, 500ms, 2m, 4h)", s);
  return -1;
}

static bool
get_duration (struct parser *p, struct fy_node *n, const char *what,
              int line, double *out)
{
  const char *s = scalar (p, n, what, line);
  double v;

  if (!s)
    return false;
  v = lab_parse_duration (s);
  if (v < 0) {
    problem (p, node_line (n), "%s: %s", what, error_msg ());
    return false;
  }
  *out = v;
  return true;
}

static bool
get_int (struct parser *p, struct fy_node *n, const char *what, int line,
         long lo, long hi, int *out)
{
  const char *s = scalar (p, n, what, line);
  char *end;
  long v;

  if (!s)
    return false;
  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    problem (p, node_line (n), "%s: '%s' is not a number from %ld to %ld",
             what, s, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

static bool
get_memory (struct parser *p, struct fy_node *n, const char *what, int line,
            uint64_t *mib)
{
  const char *s = scalar (p, n, what, line);
  int64_t v;

  if (!s)
    return false;
  v = parse_size (s);
  if (v < 0) {
    problem (p, node_line (n), "%s: %s", what, error_msg ());
    return false;
  }
  /* A bare number is MiB (libvirt's habit); with a unit, bytes. */
  if (strspn (s, "0123456789") == strlen (s))
    v *= 1024 * 1024;
  if (v < 32 * 1024 * 1024 || v > (int64_t) 1 << 42) {
    problem (p, node_line (n), "%s: '%s' is out of range (32M to 4T)", what, s);
    return false;
  }
  *mib = v / (1024 * 1024);
  return true;
}

bool
lab_ipv4_in_subnet (const char *ip, const char *subnet, int prefix)
{
  struct in_addr a, s;
  uint32_t mask;

  if (inet_pton (AF_INET, ip, &a) != 1 || inet_pton (AF_INET, subnet, &s) != 1)
    return false;
  if (prefix < 0 || prefix > 32)
    return false;
  mask = prefix == 0 ? 0 : htonl (~(uint32_t) 0 << (32 - prefix));
  return (a.s_addr & mask) == (s.s_addr & mask);
}

/* Is ip a host address of the subnet (not network, not broadcast)? */
static bool
host_address (const char *ip, const char *subnet, int prefix)
{
  struct in_addr a;
  uint32_t h, hostmask;

  if (!lab_ipv4_in_subnet (ip, subnet, prefix))
    return false;
  inet_pton (AF_INET, ip, &a);
  h = ntohl (a.s_addr);
  hostmask = prefix >= 32 ? 0 : (~(uint32_t) 0 >> prefix);
  return (h & hostmask) != 0 && (h & hostmask) != hostmask;
}

/* Split a check string into words: blanks separate, "..." and '...'
 * quote.  NULL-terminated, malloc'd; NULL if a quote is not closed. */
static char **
split_words (const char *s)
{
  size_t n = 0, cap = 8;
  char **v = xcalloc (cap, sizeof *v);
  char *w = xmalloc (strlen (s) + 1);

  for (;;) {
    size_t len = 0;
    while (*s == ' ' || *s == '\t')
      s++;
    if (!*s)
      break;
    while (*s && *s != ' ' && *s != '\t') {
      if (*s == '"' || *s == '\'') {
        char q = *s++;
        while (*s && *s != q)
          w[len++] = *s++;
        if (*s != q) {
          free (w);
          strv_free (v);
          return NULL;
        }
        s++;
      }
      else
        w[len++] = *s++;
    }
    w[len] = '\0';
    if (n + 2 > cap) {
      cap *= 2;
      v = xrealloc (v, cap * sizeof *v);
    }
    v[n++] = xstrdup (w);
    v[n] = NULL;
  }
  free (w);
  return v;
}

static char *
join_words (char **w)
{
  size_t len = 1, i;
  char *s;

  for (i = 0; w[i]; i++)
    len += strlen (w[i]) + 1;
  s = xcalloc (len, 1);
  for (i = 0; w[i]; i++) {
    if (i)
      strcat (s, " ");
    strcat (s, w[i]);
  }
  return s;
}

static const struct {
  const char *name;
  enum lab_check_kind kind;
} kinds[] = {
  { "heartbeat", LAB_CHECK_HEARTBEAT },
  { "ping", LAB_CHECK_PING },
  { "tcp", LAB_CHECK_TCP },
  { "http", LAB_CHECK_HTTP },
  { "script", LAB_CHECK_SCRIPT },
  { "guest-exec", LAB_CHECK_GUEST_EXEC },
  { "screenshot", LAB_CHECK_SCREENSHOT },
};

static int
kind_of (const char *s)
{
  size_t i;

  for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp (s, kinds[i].name) == 0)
      return kinds[i].kind;
  return -1;
}

/* Check an http URL: http://HOST[:PORT]/..., HOST an address in the lab
 * subnet or {address}. */
static void
check_url (struct parser *p, const struct lab_def *d, const char *url, int line)
{
  const char *h, *e;
  char host[64];

  if (strncmp (url, "http://", 7) != 0) {
    problem (p, line, "http: '%s': only http:// URLs are supported", url);
    return;
  }
  h = url + 7;
  e = h + strcspn (h, ":/?#");
  if ((size_t) (e - h) >= sizeof host || e == h) {
    problem (p, line, "http: '%s': no host", url);
    return;
  }
  memcpy (host, h, e - h);
  host[e - h] = '\0';
  if (strcmp (host, "{address}") == 0)
    return;
  if (d->subnet && !lab_ipv4_in_subnet (host, d->subnet, d->prefix))
    problem (p, line, "http: '%s': the host must be {address} or an address "
             "in the lab subnet %s/%d (checks never leave the lab)", url,
             d->subnet, d->prefix);
  if (*e == ':') {
    char *end;
    long port = strtol (e + 1, &end, 10);
    if (end == e + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
      problem (p, line, "http: '%s': bad port", url);
  }
}

/* Fill c from words (kind first). */
static void
check_from_words (struct parser *p, const struct lab_def *d,
                  struct lab_check *c, char **w, int line)
{
  size_t n, i;

  for (n = 0; w[n]; n++)
    ;
  switch (c->kind) {
  case LAB_CHECK_HEARTBEAT: case LAB_CHECK_PING: case LAB_CHECK_SCREENSHOT:
    if (n > 1)
      problem (p, line, "%s takes no arguments", w[0]);
    break;
  case LAB_CHECK_TCP: {
    char *end;
    long port;
    if (n != 2) {
      problem (p, line, "tcp needs one argument: PORT");
      break;
    }
    port = strtol (w[1], &end, 10);
    if (*end || end == w[1] || port < 1 || port > 65535)
      problem (p, line, "tcp: '%s' is not a port number", w[1]);
    c->port = port;
    break;
  }
  case LAB_CHECK_HTTP:
    if (n < 2) {
      problem (p, line, "http needs a URL");
      break;
    }
    c->url = xstrdup (w[1]);
    check_url (p, d, c->url, line);
    for (i = 2; i < n; i += 2) {
      if (!w[i + 1]) {
        problem (p, line, "http: '%s' needs a value", w[i]);
        break;
      }
      if (strcmp (w[i], "expect") == 0) {
        char *end;
        long v = strtol (w[i + 1], &end, 10);
        if (*end || v < 100 || v > 599)
          problem (p, line, "http: expect '%s' is not an HTTP status", w[i + 1]);
        c->expect = v;
      }
      else if (strcmp (w[i], "contains") == 0) {
        free (c->contains);
        c->contains = xstrdup (w[i + 1]);
      }
      else
        problem (p, line, "http: unknown option '%s' (expect, contains)", w[i]);
    }
    break;
  case LAB_CHECK_SCRIPT:
    if (n < 2) {
      problem (p, line, "script needs a program");
      break;
    }
    c->argv = xcalloc (n, sizeof *c->argv);
    for (i = 1; i < n; i++)
      c->argv[i - 1] = xstrdup (w[i]);
    if (c->argv[0][0] != '/')
      problem (p, line, "script: '%s' must be an absolute path", c->argv[0]);
    else if (access (c->argv[0], X_OK) == -1)
      problem (p, line, "script: %s: %s", c->argv[0], strerror (errno));
    break;
  case LAB_CHECK_GUEST_EXEC:
    if (n < 2) {
      problem (p, line, "guest-exec needs a command");
      break;
    }
    c->command = join_words (w + 1);
    break;
  }
}

/* A check given as a mapping: {KIND: ARG, option: value...}. */
static void
parse_check_map (struct parser *p, const struct lab_def *d,
                 struct lab_check *c, struct fy_node *n)
{
  void *it = NULL;
  struct fy_node_pair *pr;
  bool first = true;
  char **w = NULL;

  while ((pr = fy_node_mapping_iterate (n, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : NULL;
    int line = node_line (kn);

    if (!k) {
      problem (p, line, "check: keys must be plain words");
      continue;
    }
    if (first) {
      int kind = kind_of (k);
      first = false;
      if (kind < 0) {
        problem (p, line, "unknown check '%s' (heartbeat, ping, tcp, http, "
                 "script, guest-exec, screenshot)", k);
        return;
      }
      c->kind = kind;
      c->line = line;
      if (vn && !fy_node_is_null (vn) && fy_node_is_sequence (vn)) {
        /* script: [PATH, ARG...] */
        void *it2 = NULL;
        struct fy_node *e;
        size_t m = 1;
        w = xcalloc (fy_node_sequence_item_count (vn) + 2, sizeof *w);
        w[0] = xstrdup (k);
        while ((e = fy_node_sequence_iterate (vn, &it2))) {
          const char *s = scalar (p, e, k, line);
          w[m++] = xstrdup (s ? s : "");
        }
      }
      else if (vn && !fy_node_is_null (vn)) {
        const char *s = scalar (p, vn, k, line);
        CLEANUP_FREE char *txt = xasprintf ("%s %s", k, s ? s : "");
        if (c->kind == LAB_CHECK_GUEST_EXEC || c->kind == LAB_CHECK_HTTP) {
          w = xcalloc (3, sizeof *w);
          w[0] = xstrdup (k);
          w[1] = xstrdup (s ? s : "");
        }
        else if (!(w = split_words (txt))) {
          problem (p, line, "%s: unbalanced quotes", k);
          return;
        }
      }
      else {
        w = xcalloc (2, sizeof *w);
        w[0] = xstrdup (k);
      }
      continue;
    }
    if (strcmp (k, "timeout") == 0)
      get_duration (p, vn, k, line, &c->timeout);
    else if (strcmp (k, "interval") == 0)
      get_duration (p, vn, k, line, &c->interval);
    else if (strcmp (k, "retries") == 0)
      get_int (p, vn, k, line, 0, 1000, &c->retries);
    else if (strcmp (k, "expect") == 0 && c->kind == LAB_CHECK_HTTP)
      get_int (p, vn, k, line, 100, 599, &c->expect);
    else if (strcmp (k, "contains") == 0 && c->kind == LAB_CHECK_HTTP) {
      const char *s = scalar (p, vn, k, line);
      if (s) {
        free (c->contains);
        c->contains = xstrdup (s);
      }
    }
    else
      problem (p, line, "%s check: unknown option '%s'", kinds[c->kind].name, k);
  }
  if (w) {
    /* Options given as keys win over words; keep them. */
    int expect = c->expect;
    char *contains = c->contains;
    c->contains = NULL;
    check_from_words (p, d, c, w, c->line);
    if (expect)
      c->expect = expect;
    if (contains) {
      free (c->contains);
      c->contains = contains;
    }
    strv_free (w);
  }
}

static void
parse_check (struct parser *p, const struct lab_def *d, struct lab_check *c,
             struct fy_node *n)
{
  c->timeout = p->timeout;
  c->retries = p->retries;
  c->interval = p->interval;
  c->line = node_line (n);
  if (fy_node_is_mapping (n))
    parse_check_map (p, d, c, n);
  else {
    const char *s = scalar (p, n, "check", c->line);
    char **w;
    int kind;

    if (!s)
      return;
    w = split_words (s);
    if (!w || !w[0]) {
      problem (p, c->line, "check: '%s' is empty or has unbalanced quotes", s);
      strv_free (w);
      return;
    }
    kind = kind_of (w[0]);
    if (kind < 0)
      problem (p, c->line, "unknown check '%s' (heartbeat, ping, tcp, http, "
               "script, guest-exec, screenshot)", w[0]);
    else {
      c->kind = kind;
      check_from_words (p, d, c, w, c->line);
      /* A guest command is shell text: keep it as written, quotes and all. */
      if (kind == LAB_CHECK_GUEST_EXEC && c->command) {
        const char *rest = s + strspn (s, " \t") + strlen ("guest-exec");
        free (c->command);
        c->command = xstrdup (rest + strspn (rest, " \t"));
      }
    }
    strv_free (w);
  }
  if (c->kind == LAB_CHECK_HTTP && c->expect == 0)
    c->expect = 200;
  /* Display name. */
  switch (c->kind) {
  case LAB_CHECK_TCP: c->name = xasprintf ("tcp %d", c->port); break;
  case LAB_CHECK_HTTP: c->name = xasprintf ("http %s", c->url ? c->url : ""); break;
  case LAB_CHECK_SCRIPT:
    c->name = c->argv ? xasprintf ("script %s", c->argv[0]) : xstrdup ("script");
    break;
  case LAB_CHECK_GUEST_EXEC:
    c->name = xasprintf ("guest-exec %s", c->command ? c->command : "");
    break;
  default: c->name = xstrdup (kinds[c->kind].name); break;
  }
}

static void
parse_vm (struct parser *p, struct lab_def *d, struct lab_vm *vm,
          struct fy_node *n)
{
  void *it = NULL;
  struct fy_node_pair *pr;

  vm->line = node_line (n);
  vm->boot_timeout = p->boot_timeout;
  vm->delay = p->delay;
  vm->memory_mib = p->memory_mib;
  if (!fy_node_is_mapping (n)) {
    problem (p, vm->line, "a VM is a mapping (name:, point: or image:, "
             "checks:, ...)");
    return;
  }
  while ((pr = fy_node_mapping_iterate (n, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
    int line = node_line (kn);
    const char *s;

    if (strcmp (k, "name") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        if (!name_is_valid (s) || strlen (s) > 48)
          problem (p, line, "name: '%s' is not a valid VM name "
                   "([A-Za-z0-9._-], at most 48)", s);
        vm->name = xstrdup (s);
      }
    }
    else if (strcmp (k, "point") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        time_t t;
        if (strcmp (s, "latest") != 0 && timestamp_parse (s, &t) == -1)
          problem (p, line, "point: '%s' is neither 'latest' nor a time "
                   "stamp like 20261122T045506Z", s);
        vm->point = xstrdup (s);
      }
    }
    else if (strcmp (k, "image") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        if (s[0] != '/')
          problem (p, line, "image: '%s' must be an absolute path", s);
        else if (access (s, R_OK) == -1)
          problem (p, line, "image: %s: %s", s, strerror (errno));
        vm->image = xstrdup (s);
      }
    }
    else if (strcmp (k, "format") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        if (strspn (s, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen (s) || !*s)
          problem (p, line, "format: '%s' is not a disk format name", s);
        vm->image_format = xstrdup (s);
      }
    }
    else if (strcmp (k, "address") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        struct in_addr a;
        if (inet_pton (AF_INET, s, &a) != 1)
          problem (p, line, "address: '%s' is not an IPv4 address", s);
        vm->address = xstrdup (s);
      }
    }
    else if (strcmp (k, "mac") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        unsigned b[6];
        char end;
        if (sscanf (s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
                    &b[4], &b[5], &end) != 6 || strlen (s) != 17 || (b[0] & 1))
          problem (p, line, "mac: '%s' is not a unicast MAC address", s);
        vm->mac = xstrdup (s);
      }
    }
    else if (strcmp (k, "memory") == 0)
      get_memory (p, vn, k, line, &vm->memory_mib);
    else if (strcmp (k, "vcpus") == 0)
      get_int (p, vn, k, line, 1, 64, &vm->vcpus);
    else if (strcmp (k, "boot-timeout") == 0)
      get_duration (p, vn, k, line, &vm->boot_timeout);
    else if (strcmp (k, "delay") == 0)
      get_duration (p, vn, k, line, &vm->delay);
    else if (strcmp (k, "checks") == 0) {
      void *it2 = NULL;
      struct fy_node *c;
      if (!vn || !fy_node_is_sequence (vn)) {
        problem (p, line, "checks: expected a list");
        continue;
      }
      vm->checks = xcalloc (fy_node_sequence_item_count (vn) + 1,
                            sizeof *vm->checks);
      while ((c = fy_node_sequence_iterate (vn, &it2)))
        parse_check (p, d, &vm->checks[vm->nchecks++], c);
    }
    else
      problem (p, line, "unknown VM key '%s' (name, point, image, format, "
               "address, mac, memory, vcpus, boot-timeout, delay, checks)", k);
  }
  if (!vm->name)
    problem (p, vm->line, "a VM needs a name");
  if (vm->image && vm->point)
    problem (p, vm->line, "VM %s: give point: or image:, not both",
             vm->name ? vm->name : "?");
  if (vm->image_format && !vm->image)
    problem (p, vm->line, "VM %s: format: applies to image: only",
             vm->name ? vm->name : "?");
  if (!vm->image && !vm->point)
    vm->point = xstrdup ("latest");
  if (vm->boot_timeout < 1)
    problem (p, vm->line, "VM %s: boot-timeout must be at least 1s",
             vm->name ? vm->name : "?");
}

static void
parse_vm_list (struct parser *p, struct lab_def *d, struct lab_group *g,
               struct fy_node *n, int line)
{
  void *it = NULL;
  struct fy_node *e;

  if (!n || !fy_node_is_sequence (n)) {
    problem (p, line, "%s: expected a list of VMs", g->name);
    return;
  }
  g->vms = xcalloc (fy_node_sequence_item_count (n) + 1, sizeof *g->vms);
  while ((e = fy_node_sequence_iterate (n, &it))) {
    struct lab_vm *vm = &g->vms[g->nvms++];
    parse_vm (p, d, vm, e);
    vm->group = g->name;
  }
}

static void
parse_network (struct parser *p, struct lab_def *d, struct fy_node *n, int line)
{
  void *it = NULL;
  struct fy_node_pair *pr;

  if (!n || !fy_node_is_mapping (n)) {
    problem (p, line, "network: expected a mapping (subnet:, gateway:, dns:)");
    return;
  }
  while ((pr = fy_node_mapping_iterate (n, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
    int l = node_line (kn);
    const char *s = NULL;
    struct in_addr a;

    if (strcmp (k, "subnet") == 0) {
      if ((s = scalar (p, vn, k, l))) {
        const char *slash = strchr (s, '/');
        char addr[32];
        char *end;
        long pfx;
        if (!slash || (size_t) (slash - s) >= sizeof addr) {
          problem (p, l, "subnet: '%s' is not ADDRESS/PREFIX", s);
          continue;
        }
        memcpy (addr, s, slash - s);
        addr[slash - s] = '\0';
        pfx = strtol (slash + 1, &end, 10);
        if (inet_pton (AF_INET, addr, &a) != 1 || *end || end == slash + 1 ||
            pfx < 8 || pfx > 30) {
          problem (p, l, "subnet: '%s' is not an IPv4 ADDRESS/PREFIX "
                   "with a prefix from 8 to 30", s);
          continue;
        }
        d->subnet = xstrdup (addr);
        d->prefix = pfx;
        if (!lab_ipv4_in_subnet (addr, addr, pfx) ||
            host_address (addr, addr, pfx))
          problem (p, l, "subnet: '%s' has host bits set", s);
      }
    }
    else if (strcmp (k, "gateway") == 0 || strcmp (k, "dns") == 0) {
      if ((s = scalar (p, vn, k, l))) {
        if (inet_pton (AF_INET, s, &a) != 1)
          problem (p, l, "%s: '%s' is not an IPv4 address", k, s);
        if (k[0] == 'g')
          d->gateway = xstrdup (s);
        else
          d->dns = xstrdup (s);
      }
    }
    else
      problem (p, l, "unknown network key '%s' (subnet, gateway, dns)", k);
  }
  if (!d->subnet)
    problem (p, line, "network: subnet is required (e.g. 10.77.0.0/24)");
  if (!d->gateway)
    problem (p, line, "network: gateway is required (the production gateway "
             "address, held by the lab's namespace)");
  if (d->subnet && d->gateway && !host_address (d->gateway, d->subnet, d->prefix))
    problem (p, line, "network: gateway %s is not a host address of %s/%d",
             d->gateway, d->subnet, d->prefix);
  if (d->subnet && d->dns && !host_address (d->dns, d->subnet, d->prefix))
    problem (p, line, "network: dns %s is not a host address of %s/%d",
             d->dns, d->subnet, d->prefix);
  if (d->dns && d->gateway && strcmp (d->dns, d->gateway) == 0) {
    free (d->dns);
    d->dns = NULL;
  }
}

static void
parse_defaults (struct parser *p, struct fy_node *n, int line)
{
  void *it = NULL;
  struct fy_node_pair *pr;

  if (!n || !fy_node_is_mapping (n)) {
    problem (p, line, "defaults: expected a mapping");
    return;
  }
  while ((pr = fy_node_mapping_iterate (n, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
    int l = node_line (kn);

    if (strcmp (k, "boot-timeout") == 0) get_duration (p, vn, k, l, &p->boot_timeout);
    else if (strcmp (k, "delay") == 0) get_duration (p, vn, k, l, &p->delay);
    else if (strcmp (k, "timeout") == 0) get_duration (p, vn, k, l, &p->timeout);
    else if (strcmp (k, "interval") == 0) get_duration (p, vn, k, l, &p->interval);
    else if (strcmp (k, "retries") == 0) get_int (p, vn, k, l, 0, 1000, &p->retries);
    else if (strcmp (k, "memory") == 0) get_memory (p, vn, k, l, &p->memory_mib);
    else
      problem (p, l, "unknown defaults key '%s' (boot-timeout, delay, "
               "timeout, interval, retries, memory)", k);
  }
}

/* Checks across the whole definition: unique names and addresses, checks
 * that need an address, addresses in the subnet. */
static void
cross_check (struct parser *p, struct lab_def *d)
{
  size_t g, i, h, j, nvms = 0;

  for (g = 0; g < d->ngroups; g++)
    for (i = 0; i < d->groups[g].nvms; i++) {
      struct lab_vm *vm = &d->groups[g].vms[i];
      nvms++;
      if (vm->address && d->subnet) {
        if (!host_address (vm->address, d->subnet, d->prefix))
          problem (p, vm->line, "VM %s: address %s is not a host address of "
                   "the lab subnet %s/%d", vm->name ? vm->name : "?",
                   vm->address, d->subnet, d->prefix);
        if ((d->gateway && strcmp (vm->address, d->gateway) == 0) ||
            (d->dns && strcmp (vm->address, d->dns) == 0))
          problem (p, vm->line, "VM %s: address %s is the lab's own (gateway "
                   "or dns)", vm->name ? vm->name : "?", vm->address);
      }
      for (h = 0; h <= g; h++)
        for (j = 0; j < (h == g ? i : d->groups[h].nvms); j++) {
          struct lab_vm *o = &d->groups[h].vms[j];
          if (vm->name && o->name && strcmp (vm->name, o->name) == 0)
            problem (p, vm->line, "VM %s appears twice (also line %d)",
                     vm->name, o->line);
          if (vm->address && o->address && strcmp (vm->address, o->address) == 0)
            problem (p, vm->line, "VMs %s and %s have the same address %s",
                     o->name ? o->name : "?", vm->name ? vm->name : "?",
                     vm->address);
        }
    }
  for (g = 0; g < d->ngroups; g++)
    for (h = 0; h < g; h++)
      if (strcmp (d->groups[g].name, d->groups[h].name) == 0)
        problem (p, d->groups[g].line, "group '%s' appears twice",
                 d->groups[g].name);
  if (nvms == 0)
    problem (p, 0, "the lab has no VM (groups: or verify:)");
}

static struct lab_def *
parse_document (struct parser *p, struct fy_document *doc)
{
  struct lab_def *d = xcalloc (1, sizeof *d);
  struct fy_node *root = fy_document_root (doc);
  struct fy_node *groups = NULL, *verify = NULL;
  int groups_line = 0, verify_line = 0;
  void *it = NULL;
  struct fy_node_pair *pr;

  d->file = xstrdup (p->file);
  if (!root || !fy_node_is_mapping (root)) {
    problem (p, node_line (root), "a lab definition is a mapping "
             "(name:, network:, groups:, verify:)");
    return d;
  }
  /* defaults first: they apply whatever the order of keys. */
  {
    struct fy_node *dn = fy_node_mapping_lookup_by_string (root, "defaults", -1);
    if (dn)
      parse_defaults (p, dn, node_line (dn));
  }
  while ((pr = fy_node_mapping_iterate (root, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
    int line = node_line (kn);
    const char *s;

    if (strcmp (k, "name") == 0) {
      if ((s = scalar (p, vn, k, line))) {
        if (!name_is_valid (s) || strlen (s) > 64)
          problem (p, line, "name: '%s' is not a valid lab name "
                   "([A-Za-z0-9._-], at most 64)", s);
        d->name = xstrdup (s);
      }
    }
    else if (strcmp (k, "network") == 0)
      parse_network (p, d, vn, line);
    else if (strcmp (k, "defaults") == 0)
      ;
    else if (strcmp (k, "groups") == 0) {
      groups = vn;
      groups_line = line;
    }
    else if (strcmp (k, "verify") == 0) {
      verify = vn;
      verify_line = line;
    }
    else
      problem (p, line, "unknown key '%s' (name, network, defaults, groups, "
               "verify)", k);
  }
  if (!d->name)
    problem (p, 0, "the lab needs a name");
  if (groups) {
    void *it2 = NULL;
    struct fy_node *gn;
    if (!fy_node_is_sequence (groups))
      problem (p, groups_line, "groups: expected a list of groups");
    else {
      d->groups = xcalloc (fy_node_sequence_item_count (groups) + 2,
                           sizeof *d->groups);
      while ((gn = fy_node_sequence_iterate (groups, &it2))) {
        struct lab_group *g = &d->groups[d->ngroups++];
        struct fy_node *vms = NULL;
        void *it3 = NULL;
        g->line = node_line (gn);
        if (!fy_node_is_mapping (gn)) {
          problem (p, g->line, "a group is a mapping (name:, vms:)");
          g->name = xasprintf ("group%zu", d->ngroups);
          continue;
        }
        while ((pr = fy_node_mapping_iterate (gn, &it3))) {
          struct fy_node *kn = fy_node_pair_key (pr);
          const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
          int line = node_line (kn);
          if (strcmp (k, "name") == 0) {
            const char *s = scalar (p, fy_node_pair_value (pr), k, line);
            if (s && (!name_is_valid (s) || strlen (s) > 64))
              problem (p, line, "name: '%s' is not a valid group name", s);
            if (s)
              g->name = xstrdup (s);
          }
          else if (strcmp (k, "vms") == 0)
            vms = fy_node_pair_value (pr);
          else
            problem (p, line, "unknown group key '%s' (name, vms)", k);
        }
        if (!g->name)
          g->name = xasprintf ("group%zu", d->ngroups);
        if (!vms)
          problem (p, g->line, "group %s has no vms:", g->name);
        else
          parse_vm_list (p, d, g, vms, g->line);
      }
    }
  }
  if (verify) {
    struct lab_group *g;
    if (!d->groups)
      d->groups = xcalloc (2, sizeof *d->groups);
    g = &d->groups[d->ngroups++];
    g->name = xstrdup ("verify");
    g->line = verify_line;
    parse_vm_list (p, d, g, verify, verify_line);
  }
  cross_check (p, d);
  return d;
}

static struct lab_def *
read_common (const char *yaml, const char *path, const char *name,
             char **errors)
{
  struct parser p = { .file = name };
  struct fy_diag_cfg dcfg;
  struct fy_diag *diag;
  struct fy_parse_cfg cfg = { 0 };
  struct fy_document *doc;
  struct lab_def *d = NULL;

  p.boot_timeout = 120;
  p.timeout = 10;
  p.retries = 2;
  p.interval = 1;
  p.memory_mib = 0;
  p.errs = open_memstream (&p.errbuf, &p.errlen);
  if (!p.errs)
    abort ();
  if (errors)
    *errors = NULL;

  fy_diag_cfg_default (&dcfg);
  dcfg.fp = NULL;
  dcfg.colorize = false;
  diag = fy_diag_create (&dcfg);
  if (!diag)
    abort ();
  fy_diag_set_collect_errors (diag, true);
  cfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG;
  cfg.diag = diag;
  if (path)
    doc = fy_document_build_from_file (&cfg, path);
  else
    doc = fy_document_build_from_string (&cfg, yaml, strlen (yaml));
  if (!doc) {
    void *it = NULL;
    struct fy_diag_error *e;
    int n = 0;
    while ((e = fy_diag_errors_iterate (diag, &it))) {
      if (e->type < FYET_ERROR)
        continue;
      problem (&p, e->line, "YAML: %s", e->msg);
      n++;
    }
    if (n == 0) {
      if (path && access (path, R_OK) == -1)
        problem (&p, 0, "%s", strerror (errno));
      else
        problem (&p, 0, "YAML: the document could not be parsed");
    }
  }
  else
    d = parse_document (&p, doc);
  fy_document_destroy (doc);
  fy_diag_destroy (diag);
  fclose (p.errs);
  if (p.nerrs) {
    lab_def_free (d);
    error_setx ("%s", p.first);
    if (errors)
      *errors = p.errbuf;
    else
      free (p.errbuf);
    return NULL;
  }
  free (p.errbuf);
  return d;
}

struct lab_def *
lab_def_read_file (const char *path, char **errors)
{
  return read_common (NULL, path, path, errors);
}

struct lab_def *
lab_def_read_string (const char *yaml, const char *name, char **errors)
{
  return read_common (yaml, NULL, name, errors);
}

static void
check_free (struct lab_check *c)
{
  free (c->name);
  free (c->url);
  free (c->contains);
  strv_free (c->argv);
  free (c->command);
}

void
lab_def_free (struct lab_def *d)
{
  size_t g, i, j;

  if (!d)
    return;
  for (g = 0; g < d->ngroups; g++) {
    for (i = 0; i < d->groups[g].nvms; i++) {
      struct lab_vm *vm = &d->groups[g].vms[i];
      free (vm->name);
      free (vm->point);
      free (vm->image);
      free (vm->image_format);
      free (vm->address);
      free (vm->mac);
      for (j = 0; j < vm->nchecks; j++)
        check_free (&vm->checks[j]);
      free (vm->checks);
    }
    free (d->groups[g].vms);
    free (d->groups[g].name);
  }
  free (d->groups);
  free (d->file);
  free (d->name);
  free (d->subnet);
  free (d->gateway);
  free (d->dns);
  free (d);
}

uint64_t
lab_def_memory_mib (const struct lab_def *d, uint64_t default_mib)
{
  uint64_t total = 0;
  size_t g, i;

  for (g = 0; g < d->ngroups; g++)
    for (i = 0; i < d->groups[g].nvms; i++) {
      const struct lab_vm *vm = &d->groups[g].vms[i];
      total += vm->memory_mib ? vm->memory_mib : vm->image ? 256 : default_mib;
    }
  return total;
}

size_t
lab_def_nvms (const struct lab_def *d)
{
  size_t g, n = 0;

  for (g = 0; g < d->ngroups; g++)
    n += d->groups[g].nvms;
  return n;
}
