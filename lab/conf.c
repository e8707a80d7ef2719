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
 *   defaults: { boot-timeout: 2m, stall-timeout: 1m, reread-timeout: 5s, delay: 0,
 *               timeout: 10s, retries: 2, interval: 1s, memory: 256M, rto: 5m,
 *               rpo: 1d }
 *   groups:                     # application groups, booted in this order
 *     - name: db
 *       rto: 3m                 # for its VMs (a VM's own rto:/rpo: wins)
 *       vms:
 *         - name: db1           # a VM of the repository
 *           point: latest       # or a time stamp
 *           address: 10.77.0.20
 *           memory: 1G
 *           boot-timeout: 3m
 *           delay: 10s
 *           checks: [heartbeat, ping, "tcp 5432"]
 *   publish:                    # sandboxes (lab up): host ports relayed
 *     - 127.0.0.1:8080=web1:80  # to a VM with an address: (publish.c)
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
 *
 * rto: and rpo: (targets, checked by verify/run.c as the checks "rto" and
 * "rpo") come from the VM, else its group, else defaults:; 0 = none.  An
 * image: VM has no restore points: rpo: on it is an error, one it would
 * inherit does not apply to it.
 *
 * The same rules build a definition as data (lab_def_new and the other
 * constructors at the end, for bootback verify): each setter runs the
 * code a file's key runs.  A check from a restore point (LAB_FROM_POINT)
 * must also be of a kind that acts on the guest only (kinds[].guest) and
 * an http one must go to the VM's own address.  Messages are one line:
 * control characters in values are escaped.
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
  double boot_timeout, stall_timeout, reread_timeout, delay, timeout, interval;
  double rto, rpo;        /* of defaults:, then of the group being read */
  int retries;
  uint64_t memory_mib;
  /* shown (): a few values quoted for messages */
  char shown[4][256];
  int nshown;
};

/* Is the UTF-8 sequence at s (k bytes) a C1 control, U+0080 to U+009F? */
static bool
is_c1 (const unsigned char *s, size_t k)
{
  return k == 2 && s[0] == 0xc2 && s[1] < 0xa0;
}

/* s with control characters (C1 ones too) and bytes that are not UTF-8
 * escaped (\n, \t, \xHH) and cut after max characters, never inside
 * one ("..."), into out (len bytes): valid UTF-8, one line. */
static void
printable (char *out, size_t len, const char *s, size_t max)
{
  size_t j = 0, n, k;

  for (n = 0; *s && n < max && j + 8 < len; s += k, n++) {
    unsigned char ch = *s;
    k = utf8_seq_len ((const unsigned char *) s, strnlen (s, 4));
    if (ch == '\n')
      j += snprintf (out + j, len - j, "\\n");
    else if (ch == '\t')
      j += snprintf (out + j, len - j, "\\t");
    else if (ch < 0x20 || ch == 0x7f || k == 0 ||
             is_c1 ((const unsigned char *) s, k)) {
      j += snprintf (out + j, len - j, "\\x%02x", ch);
      k = 1;
    }
    else {
      memcpy (out + j, s, k);
      j += k;
    }
  }
  if (*s)
    j += snprintf (out + j, len - j, "...");
  out[j] = '\0';
}

/* Record one problem at line (0 = unknown); without a file (a definition
 * built as data) the message alone. */
static void __attribute__((format (printf, 3, 4)))
problem (struct parser *p, int line, const char *fmt, ...)
{
  char raw[400], msg[400];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (raw, sizeof raw, fmt, ap);
  va_end (ap);
  /* One line each, whatever the values in it hold. */
  printable (msg, sizeof msg, raw, sizeof raw);
  if (!p->file)
    fprintf (p->errs, "%s\n", msg);
  else if (line > 0)
    fprintf (p->errs, "%s:%d: %s\n", p->file, line, msg);
  else
    fprintf (p->errs, "%s: %s\n", p->file, msg);
  if (p->nerrs++ == 0) {
    if (!p->file)
      snprintf (p->first, sizeof p->first, "%s", msg);
    else if (line > 0)
      snprintf (p->first, sizeof p->first, "%s:%d: %s", p->file, line, msg);
    else
      snprintf (p->first, sizeof p->first, "%s: %s", p->file, msg);
  }
}

char *
lab_printable (const char *s, size_t max)
{
  size_t len = 4 * (max < strlen (s) ? max : strlen (s)) + 16;
  char *o = xmalloc (len);

  printable (o, len, s, max);
  return o;
}

/* A value quoted for a message: printable, at most 60 characters.  Valid
 * until the fourth call after it. */
static const char *
shown (struct parser *p, const char *s)
{
  char *o = p->shown[p->nshown++ % 4];

  printable (o, sizeof p->shown[0], s, 60);
  return o;
}

/* 1-based line of the first scalar in n's subtree, depth first; 0 if it
 * has none or lies deeper than 64 levels (a definition is not that deep;
 * a crafted one may be, and must not exhaust the stack). */
static int
first_line_below (struct fy_node *n, int depth)
{
  const struct fy_mark *m;
  struct fy_token *t;
  struct fy_node_pair *pr;
  struct fy_node *c;
  void *it = NULL;
  int l;

  if (!n || depth > 64)
    return 0;
  switch (fy_node_get_type (n)) {
  case FYNT_SCALAR:
    t = fy_node_get_scalar_token (n);
    m = t ? fy_token_start_mark (t) : NULL;
    return m ? m->line + 1 : 0;
  case FYNT_MAPPING:
    while ((pr = fy_node_mapping_iterate (n, &it)))
      if ((l = first_line_below (fy_node_pair_key (pr), depth + 1)) ||
          (l = first_line_below (fy_node_pair_value (pr), depth + 1)))
        return l;
    return 0;
  case FYNT_SEQUENCE:
    while ((c = fy_node_sequence_iterate (n, &it)))
      if ((l = first_line_below (c, depth + 1)))
        return l;
    return 0;
  }
  return 0;
}

/* 1-based line of a node (scalars: their token; collections: their first
 * scalar, else the key that names them, else that of the collection
 * holding them).  Walks up without recursion: an empty collection inside
 * an empty collection inside ... must not loop. */
static int
node_line (struct fy_node *n)
{
  int hops, l;

  for (hops = 0; n && hops < 1000; hops++) {
    struct fy_node *parent = fy_node_get_parent (n);
    struct fy_node_pair *pr;
    void *it = NULL;

    if ((l = first_line_below (n, 0)))
      return l;
    if (parent && fy_node_get_type (parent) == FYNT_MAPPING)
      while ((pr = fy_node_mapping_iterate (parent, &it)))
        if (fy_node_pair_value (pr) == n &&
            (l = first_line_below (fy_node_pair_key (pr), 0)))
          return l;
    n = parent;
  }
  return 0;
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
  /* (capped: callers cast to time_t or int; 1e300d was infinity) */
  if (v * mul > LAB_DURATION_MAX) {
    error_setx ("duration '%s' is longer than 10 years", s);
    return -1;
  }
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

int
lab_parse_memory (const char *s, uint64_t *mib)
{
  int64_t v = parse_size (s);

  if (v < 0)
    return -1;
  /* A bare number is MiB (libvirt's habit); with a unit, bytes. */
  if (strspn (s, "0123456789") == strlen (s))
    v *= 1024 * 1024;
  if (v < 32 * 1024 * 1024 || v > (int64_t) 1 << 42) {
    error_setx ("'%s' is out of range (32M to 4T)", s);
    return -1;
  }
  *mib = v / (1024 * 1024);
  return 0;
}

static bool
get_memory (struct parser *p, struct fy_node *n, const char *what, int line,
            uint64_t *mib)
{
  const char *s = scalar (p, n, what, line);

  if (!s)
    return false;
  if (lab_parse_memory (s, mib) == -1) {
    problem (p, node_line (n), "%s: %s", what, error_msg ());
    return false;
  }
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
  size_t n = 0;
  char **v = xcalloc (1, sizeof *v);
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
    strv_push (&v, &n, xstrdup (w));
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

/* guest: a restore point may ask for it (lab_vm_add_check, LAB_FROM_POINT):
 * it acts on the guest only, from the lab namespace or through the guest
 * agent or the console, and its arguments name nothing of the host.  A
 * script runs a host program: only the administrator's files name one. */
static const struct {
  const char *name;
  enum lab_check_kind kind;
  bool guest;
} kinds[] = {
  { "heartbeat", LAB_CHECK_HEARTBEAT, true },
  { "ping", LAB_CHECK_PING, true },
  { "tcp", LAB_CHECK_TCP, true },
  { "http", LAB_CHECK_HTTP, true },     /* to the guest's own address only */
  { "script", LAB_CHECK_SCRIPT, false },
  { "guest-exec", LAB_CHECK_GUEST_EXEC, true },
  { "screenshot", LAB_CHECK_SCREENSHOT, true },
  { "scan", LAB_CHECK_SCAN, false },    /* names host rule files */
};
#define GUEST_KINDS "heartbeat, ping, tcp, http, guest-exec, screenshot"

static int
kind_of (const char *s)
{
  size_t i;

  for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp (s, kinds[i].name) == 0)
      return kinds[i].kind;
  return -1;
}

bool
lab_http_path_ok (const char *path)
{
  static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "0123456789-._~!$&'()*+,;=:@/?%#";

  return path[strspn (path, ok)] == '\0';
}

/* Check an http URL: http://HOST[:PORT]/..., HOST an address in the lab
 * subnet or {address}, the rest of RFC 3986's characters only. */
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
  if (!lab_http_path_ok (e + strcspn (e, "/?#")))
    problem (p, line, "http: '%s': the path may hold only RFC 3986's "
             "unreserved and reserved characters and %%-escapes (no quotes, "
             "backslashes, blanks or control characters)", shown (p, url));
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

/* scan: rules FILE, signatures DIR (absolute paths, read when the check
 * runs). */
static void
scan_option (struct parser *p, struct lab_check *c, const char *k,
             const char *v, int line)
{
  char **slot = strcmp (k, "rules") == 0 ? &c->rules
    : strcmp (k, "signatures") == 0 ? &c->signatures : NULL;

  if (!slot) {
    problem (p, line, "scan: unknown option '%s' (rules, signatures)",
             shown (p, k));
    return;
  }
  if (!v || v[0] != '/') {
    problem (p, line, "scan: %s needs an absolute path", k);
    return;
  }
  free (*slot);
  *slot = xstrdup (v);
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
  case LAB_CHECK_SCAN:
    for (i = 1; i < n; i += 2)
      scan_option (p, c, w[i], w[i + 1], line);
    break;
  }
}

/* The first key of a check mapping, KIND: ARG, as words (KIND first;
 * NULL-terminated, malloc'd), the kind set in c.  NULL after a problem. */
static char **
check_map_kind (struct parser *p, struct lab_check *c, const char *k,
                struct fy_node *vn, int line)
{
  int kind = kind_of (k);
  char **w;

  if (kind < 0) {
    problem (p, line, "unknown check '%s' (heartbeat, ping, tcp, http, "
             "script, guest-exec, screenshot, scan)", k);
    return NULL;
  }
  c->kind = kind;
  c->line = line;
  if (vn && !fy_node_is_null (vn) && fy_node_is_sequence (vn)) {
    /* script: [PATH, ARG...] */
    void *it = NULL;
    struct fy_node *e;
    size_t m = 1;
    w = xcalloc (fy_node_sequence_item_count (vn) + 2, sizeof *w);
    w[0] = xstrdup (k);
    while ((e = fy_node_sequence_iterate (vn, &it))) {
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
    else if (!(w = split_words (txt)))
      problem (p, line, "%s: unbalanced quotes", k);
  }
  else {
    w = xcalloc (2, sizeof *w);
    w[0] = xstrdup (k);
  }
  return w;
}

/* An option of a check mapping (the keys after the first). */
static void
check_map_option (struct parser *p, struct lab_check *c, const char *k,
                  struct fy_node *vn, int line)
{
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
  else if (c->kind == LAB_CHECK_SCAN &&
           (strcmp (k, "rules") == 0 || strcmp (k, "signatures") == 0))
    scan_option (p, c, k, scalar (p, vn, k, line), line);
  else
    problem (p, line, "%s check: unknown option '%s'", kinds[c->kind].name, k);
}

/* A check given as a mapping: {KIND: ARG, option: value...}. */
static void
parse_check_map (struct parser *p, const struct lab_def *d,
                 struct lab_check *c, struct fy_node *n)
{
  void *it = NULL;
  struct fy_node_pair *pr;
  bool first = true;
  CLEANUP_STRV char **w = NULL;

  while ((pr = fy_node_mapping_iterate (n, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : NULL;
    int line = node_line (kn);

    if (!k)
      problem (p, line, "check: keys must be plain words");
    else if (first) {
      first = false;
      if (!(w = check_map_kind (p, c, k, vn, line)))
        return;
    }
    else
      check_map_option (p, c, k, vn, line);
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
  }
}

static void
check_init (struct parser *p, struct lab_check *c, int line)
{
  c->timeout = p->timeout;
  c->retries = p->retries;
  c->interval = p->interval;
  c->line = line;
}

/* A check given as a string "KIND ARGS...". */
static void
check_from_string (struct parser *p, const struct lab_def *d,
                   struct lab_check *c, const char *s)
{
  char **w = split_words (s);
  int kind;

  if (!w || !w[0]) {
    problem (p, c->line, "check: '%s' is empty or has unbalanced quotes",
             shown (p, s));
    strv_free (w);
    return;
  }
  kind = kind_of (w[0]);
  if (kind < 0)
    problem (p, c->line, "unknown check '%s' (heartbeat, ping, tcp, http, "
             "script, guest-exec, screenshot, scan)", shown (p, w[0]));
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

/* Defaults that depend on the kind, and the display name. */
static void
check_finish (struct lab_check *c)
{
  if (c->kind == LAB_CHECK_HTTP && c->expect == 0)
    c->expect = 200;
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
parse_check (struct parser *p, const struct lab_def *d, struct lab_check *c,
             struct fy_node *n)
{
  check_init (p, c, node_line (n));
  if (fy_node_is_mapping (n))
    parse_check_map (p, d, c, n);
  else {
    const char *s = scalar (p, n, "check", c->line);
    if (!s)
      return;
    check_from_string (p, d, c, s);
  }
  check_finish (c);
}

static void
vm_set_name (struct parser *p, struct lab_vm *vm, const char *s, int line)
{
  if (!name_is_valid (s))
    problem (p, line, "name: '%s' is not a valid VM name "
             "([A-Za-z0-9._-], at most %d)", shown (p, s), VM_NAME_MAX);
  free (vm->name);
  vm->name = xstrdup (s);
}

static void
vm_set_point (struct parser *p, struct lab_vm *vm, const char *s, int line)
{
  time_t t;

  if (strcmp (s, "latest") != 0 && timestamp_parse (s, &t) == -1)
    problem (p, line, "point: '%s' is neither 'latest' nor a time "
             "stamp like 20261122T045506Z", shown (p, s));
  free (vm->point);
  vm->point = xstrdup (s);
}

static void
vm_set_address (struct parser *p, struct lab_vm *vm, const char *s, int line)
{
  struct in_addr a;

  if (inet_pton (AF_INET, s, &a) != 1)
    problem (p, line, "address: '%s' is not an IPv4 address", shown (p, s));
  free (vm->address);
  vm->address = xstrdup (s);
}

/* What a VM needs whatever order its keys came in. */
static void
vm_finish (struct parser *p, struct lab_vm *vm)
{
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
vm_set_image (struct parser *p, struct lab_vm *vm, const char *s, int line)
{
  if (s[0] != '/')
    problem (p, line, "image: '%s' must be an absolute path", s);
  else if (access (s, R_OK) == -1)
    problem (p, line, "image: %s: %s", s, strerror (errno));
  vm->image = xstrdup (s);
}

static void
vm_set_format (struct parser *p, struct lab_vm *vm, const char *s, int line)
{
  if (strspn (s, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen (s) || !*s)
    problem (p, line, "format: '%s' is not a disk format name", s);
  vm->image_format = xstrdup (s);
}

static void
vm_set_mac (struct parser *p, struct lab_vm *vm, const char *s, int line)
{
  unsigned b[6];
  char end;

  if (sscanf (s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
              &b[4], &b[5], &end) != 6 || strlen (s) != 17 || (b[0] & 1))
    problem (p, line, "mac: '%s' is not a unicast MAC address", s);
  vm->mac = xstrdup (s);
}

/* checks: a list of checks. */
static void
parse_vm_checks (struct parser *p, struct lab_def *d, struct lab_vm *vm,
                 struct fy_node *vn, int line)
{
  void *it = NULL;
  struct fy_node *c;

  if (!vn || !fy_node_is_sequence (vn)) {
    problem (p, line, "checks: expected a list");
    return;
  }
  vm->checks = xcalloc (fy_node_sequence_item_count (vn) + 1,
                        sizeof *vm->checks);
  while ((c = fy_node_sequence_iterate (vn, &it)))
    parse_check (p, d, &vm->checks[vm->nchecks++], c);
}

/* rto: or rpo: of a VM (*rpo_line: where rpo: is); false if k is
 * neither. */
static bool
vm_target_key (struct parser *p, struct lab_vm *vm, const char *k,
               struct fy_node *vn, int line, int *rpo_line)
{
  if (strcmp (k, "rto") == 0)
    get_duration (p, vn, k, line, &vm->rto);
  else if (strcmp (k, "rpo") == 0) {
    get_duration (p, vn, k, line, &vm->rpo);
    *rpo_line = line;
  }
  else
    return false;
  return true;
}

/* An image VM has no restore points, so no RPO: its own rpo: is an error,
 * an inherited one does not apply. */
static void
vm_targets_finish (struct parser *p, struct lab_vm *vm, int rpo_line)
{
  if (!vm->image)
    return;
  if (rpo_line && vm->rpo > 0)
    problem (p, rpo_line, "VM %s: rpo: applies to restore points; an image: "
             "VM has none", vm->name ? vm->name : "?");
  vm->rpo = 0;
}

static void
parse_vm (struct parser *p, struct lab_def *d, struct lab_vm *vm,
          struct fy_node *n)
{
  void *it = NULL;
  struct fy_node_pair *pr;
  int rpo_line = 0;

  vm->line = node_line (n);
  vm->boot_timeout = p->boot_timeout;
  vm->stall_timeout = p->stall_timeout;
  vm->reread_timeout = p->reread_timeout;
  vm->delay = p->delay;
  vm->memory_mib = p->memory_mib;
  vm->rto = p->rto;
  vm->rpo = p->rpo;
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
      if ((s = scalar (p, vn, k, line)))
        vm_set_name (p, vm, s, line);
    }
    else if (strcmp (k, "point") == 0) {
      if ((s = scalar (p, vn, k, line)))
        vm_set_point (p, vm, s, line);
    }
    else if (strcmp (k, "image") == 0) {
      if ((s = scalar (p, vn, k, line)))
        vm_set_image (p, vm, s, line);
    }
    else if (strcmp (k, "format") == 0) {
      if ((s = scalar (p, vn, k, line)))
        vm_set_format (p, vm, s, line);
    }
    else if (strcmp (k, "address") == 0) {
      if ((s = scalar (p, vn, k, line)))
        vm_set_address (p, vm, s, line);
    }
    else if (strcmp (k, "mac") == 0) {
      if ((s = scalar (p, vn, k, line)))
        vm_set_mac (p, vm, s, line);
    }
    else if (strcmp (k, "memory") == 0)
      get_memory (p, vn, k, line, &vm->memory_mib);
    else if (strcmp (k, "vcpus") == 0)
      get_int (p, vn, k, line, 1, 64, &vm->vcpus);
    else if (strcmp (k, "boot-timeout") == 0)
      get_duration (p, vn, k, line, &vm->boot_timeout);
    else if (strcmp (k, "stall-timeout") == 0)
      get_duration (p, vn, k, line, &vm->stall_timeout);
    else if (strcmp (k, "reread-timeout") == 0)
      get_duration (p, vn, k, line, &vm->reread_timeout);
    else if (strcmp (k, "delay") == 0)
      get_duration (p, vn, k, line, &vm->delay);
    else if (strcmp (k, "checks") == 0)
      parse_vm_checks (p, d, vm, vn, line);
    else if (!vm_target_key (p, vm, k, vn, line, &rpo_line))
      problem (p, line, "unknown VM key '%s' (name, point, image, format, "
               "address, mac, memory, vcpus, boot-timeout, stall-timeout, "
               "reread-timeout, delay, rto, rpo, checks)", k);
  }
  vm_targets_finish (p, vm, rpo_line);
  vm_finish (p, vm);
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

/* The first octet of a unicast network: not 0/8, loopback, multicast or
 * reserved. */
static bool
unicast_net (struct in_addr a)
{
  unsigned first = ntohl (a.s_addr) >> 24;

  return first != 0 && first != 127 && first < 224;
}

/* subnet: ADDRESS/PREFIX, the prefix in decimal digits from 8 to 30. */
static void
net_set_subnet (struct parser *p, struct lab_def *d, const char *s, int l)
{
  const char *slash = strchr (s, '/');
  char addr[32];
  struct in_addr a;
  size_t nd;
  int pfx = -1;

  if (!slash || (size_t) (slash - s) >= sizeof addr) {
    problem (p, l, "subnet: '%s' is not ADDRESS/PREFIX", shown (p, s));
    return;
  }
  memcpy (addr, s, slash - s);
  addr[slash - s] = '\0';
  nd = strspn (slash + 1, "0123456789");
  if (nd >= 1 && nd <= 2 && slash[1 + nd] == '\0')
    pfx = atoi (slash + 1);
  if (inet_pton (AF_INET, addr, &a) != 1 || pfx < 8 || pfx > 30) {
    problem (p, l, "subnet: '%s' is not an IPv4 ADDRESS/PREFIX "
             "with a prefix from 8 to 30", shown (p, s));
    return;
  }
  if (!unicast_net (a)) {
    problem (p, l, "subnet: '%s' is not a unicast network (0.0.0.0/8, "
             "127.0.0.0/8 and 224.0.0.0/3 are not)", shown (p, s));
    return;
  }
  free (d->subnet);
  d->subnet = xstrdup (addr);
  d->prefix = pfx;
  if (!lab_ipv4_in_subnet (addr, addr, pfx) || host_address (addr, addr, pfx))
    problem (p, l, "subnet: '%s' has host bits set", shown (p, s));
}

/* gateway: or dns: (k), an IPv4 address. */
static void
net_set_address (struct parser *p, struct lab_def *d, const char *k,
                 const char *s, int l)
{
  struct in_addr a;
  char **dst = k[0] == 'g' ? &d->gateway : &d->dns;

  if (inet_pton (AF_INET, s, &a) != 1)
    problem (p, l, "%s: '%s' is not an IPv4 address", k, shown (p, s));
  free (*dst);
  *dst = xstrdup (s);
}

/* What the network needs whatever order its keys came in. */
static void
net_finish (struct parser *p, struct lab_def *d, int line)
{
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

    if (strcmp (k, "subnet") == 0) {
      if ((s = scalar (p, vn, k, l)))
        net_set_subnet (p, d, s, l);
    }
    else if (strcmp (k, "gateway") == 0 || strcmp (k, "dns") == 0) {
      if ((s = scalar (p, vn, k, l)))
        net_set_address (p, d, k, s, l);
    }
    else
      problem (p, l, "unknown network key '%s' (subnet, gateway, dns)", k);
  }
  net_finish (p, d, line);
}

/* One entry of boot_failures: {text:, reason:}. */
static void
parse_boot_failure (struct parser *p, struct lab_def *d, struct fy_node *e)
{
  const char *text = NULL, *reason = NULL;
  struct fy_node_pair *pr;
  void *it = NULL;
  int line = node_line (e);
  struct lab_console_pattern *bf;

  if (!fy_node_is_mapping (e)) {
    problem (p, line, "boot_failures: each entry is a mapping (text:, reason:)");
    return;
  }
  while ((pr = fy_node_mapping_iterate (e, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
    if (strcmp (k, "text") == 0)
      text = scalar (p, vn, "boot_failures: text", node_line (kn));
    else if (strcmp (k, "reason") == 0)
      reason = scalar (p, vn, "boot_failures: reason", node_line (kn));
    else
      problem (p, node_line (kn), "boot_failures: unknown key '%s' (text, reason)", k);
  }
  if (!text || strlen (text) < 4 || strlen (text) > 200) {
    problem (p, line, "boot_failures: text: a console text of 4 to 200 characters "
             "is needed");
    return;
  }
  bf = ARRAY_PUSH (d->boot_failures, d->nboot_failures);
  bf->text = xstrdup (text);
  bf->reason = xasprintf ("%s", reason ? reason : text);
}

/* ---- publish: ----------------------------------------------------------- */

static int
port_arg (const char *s, const char *spec)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (s, &end, 10);
  if (errno || end == s || *end || v < 1 || v > 65535) {
    error_setx ("publish '%s': '%s' is not a port (1-65535)", spec, s);
    return -1;
  }
  return (int) v;
}

int
lab_publish_parse (const char *spec, struct lab_publish *p)
{
  CLEANUP_FREE char *s = xstrdup (spec);
  char *eq = strchr (s, '='), *colon, *host, *vm;
  struct in_addr a;

  memset (p, 0, sizeof *p);
  if (!eq) {
    error_setx ("publish '%s': expected [ADDR:]PORT=VM:PORT", spec);
    return -1;
  }
  *eq = '\0';
  host = s;
  vm = eq + 1;
  snprintf (p->addr, sizeof p->addr, "127.0.0.1");
  if ((colon = strrchr (host, ':'))) {
    *colon = '\0';
    if (inet_pton (AF_INET, host, &a) != 1) {
      error_setx ("publish '%s': '%s' is not an IPv4 address", spec, host);
      return -1;
    }
    inet_ntop (AF_INET, &a, p->addr, sizeof p->addr);
    host = colon + 1;
  }
  if ((p->port = port_arg (host, spec)) == -1)
    return -1;
  if (!(colon = strrchr (vm, ':'))) {
    error_setx ("publish '%s': expected VM:PORT after '='", spec);
    return -1;
  }
  *colon = '\0';
  if (!name_is_valid (vm)) {
    error_setx ("publish '%s': '%s' is not a VM name", spec, vm);
    return -1;
  }
  if ((p->vm_port = port_arg (colon + 1, spec)) == -1)
    return -1;
  p->vm = xstrdup (vm);
  return 0;
}

void
lab_publish_format (const struct lab_publish *p, char *out, size_t len)
{
  snprintf (out, len, "%s:%d=%s:%d", p->addr, p->port, p->vm, p->vm_port);
}

/* One published port at line: parsed and kept; checked against the VMs
 * by publish_check once they are read. */
static void
add_publish (struct parser *p, struct lab_def *d, const char *spec, int line)
{
  struct lab_publish pub;

  if (lab_publish_parse (spec, &pub) == -1) {
    problem (p, line, "%s", error_msg ());
    return;
  }
  if (d->npublish == LAB_PUBLISH_MAX) {
    problem (p, line, "publish: at most %d ports", LAB_PUBLISH_MAX);
    free (pub.vm);
    return;
  }
  pub.line = line;
  *ARRAY_PUSH (d->publish, d->npublish) = pub;
}

/* publish: a list of "[ADDR:]PORT=VM:PORT". */
static void
parse_publish (struct parser *p, struct lab_def *d, struct fy_node *n, int line)
{
  struct fy_node *e;
  void *it = NULL;
  const char *s;

  if (!n || !fy_node_is_sequence (n)) {
    problem (p, line, "publish: expected a list of [ADDR:]PORT=VM:PORT");
    return;
  }
  while ((e = fy_node_sequence_iterate (n, &it)))
    if ((s = scalar (p, e, "publish", node_line (e))))
      add_publish (p, d, s, node_line (e));
}

/* The published port i: its VM is in the lab with an address (the relay
 * goes there and nowhere else), its ADDR:PORT is not published twice. */
static void
publish_check (struct parser *p, const struct lab_def *d, size_t i)
{
  const struct lab_publish *pub = &d->publish[i];
  const struct lab_vm *vm = NULL;
  size_t g, k;

  for (g = 0; g < d->ngroups; g++)
    for (k = 0; k < d->groups[g].nvms; k++)
      if (d->groups[g].vms[k].name && strcmp (d->groups[g].vms[k].name, pub->vm) == 0)
        vm = &d->groups[g].vms[k];
  if (!vm)
    problem (p, pub->line, "publish %s:%d: no VM '%s' in the lab", pub->addr,
             pub->port, pub->vm);
  else if (!vm->address)
    problem (p, pub->line, "publish %s:%d: VM %s has no address: (the relay "
             "connects only to an address of the definition)", pub->addr,
             pub->port, pub->vm);
  for (k = 0; k < i; k++)
    if (d->publish[k].port == pub->port &&
        (strcmp (d->publish[k].addr, pub->addr) == 0 ||
         strcmp (d->publish[k].addr, "0.0.0.0") == 0 ||
         strcmp (pub->addr, "0.0.0.0") == 0))
      problem (p, pub->line, "publish %s:%d: the port is published twice", pub->addr,
               pub->port);
}

/* boot_failures: console lines that mean a boot failed (lab/console.c). */
static void
parse_boot_failures (struct parser *p, struct lab_def *d, struct fy_node *n, int line)
{
  struct fy_node *e;
  void *it = NULL;

  if (!n || !fy_node_is_sequence (n)) {
    problem (p, line, "boot_failures: expected a list of (text:, reason:)");
    return;
  }
  while ((e = fy_node_sequence_iterate (n, &it)))
    parse_boot_failure (p, d, e);
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
    else if (strcmp (k, "stall-timeout") == 0)
      get_duration (p, vn, k, l, &p->stall_timeout);
    else if (strcmp (k, "reread-timeout") == 0)
      get_duration (p, vn, k, l, &p->reread_timeout);
    else if (strcmp (k, "delay") == 0) get_duration (p, vn, k, l, &p->delay);
    else if (strcmp (k, "timeout") == 0) get_duration (p, vn, k, l, &p->timeout);
    else if (strcmp (k, "interval") == 0) get_duration (p, vn, k, l, &p->interval);
    else if (strcmp (k, "retries") == 0) get_int (p, vn, k, l, 0, 1000, &p->retries);
    else if (strcmp (k, "memory") == 0) get_memory (p, vn, k, l, &p->memory_mib);
    else if (strcmp (k, "rto") == 0) get_duration (p, vn, k, l, &p->rto);
    else if (strcmp (k, "rpo") == 0) get_duration (p, vn, k, l, &p->rpo);
    else
      problem (p, l, "unknown defaults key '%s' (boot-timeout, stall-timeout, "
               "reread-timeout, delay, timeout, interval, retries, memory, rto, "
               "rpo)", k);
  }
}

/* A group's host: its own, else the lab's (NULL: this host). */
static const char *
group_host (const struct lab_def *d, const struct lab_group *g)
{
  return g->host ? g->host : d->host;
}

/* One lab run is on one host: groups may repeat it, not name another. */
static void
check_one_host (struct parser *p, const struct lab_def *d)
{
  size_t g;

  for (g = 1; g < d->ngroups; g++) {
    const char *a = group_host (d, &d->groups[0]), *b = group_host (d, &d->groups[g]);
    if ((a || b) && (!a || !b || strcmp (a, b) != 0))
      problem (p, d->groups[g].line, "group %s is on %s but group %s on %s: a lab "
               "runs on one host (one isolated network); make two labs",
               d->groups[g].name, b ? b : "this host", d->groups[0].name,
               a ? a : "this host");
  }
}

const char *
lab_def_host (const struct lab_def *d)
{
  return d->ngroups ? group_host (d, &d->groups[0]) : d->host;
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
      for (j = 0; vm->image && j < vm->nchecks; j++)
        if (vm->checks[j].kind == LAB_CHECK_SCAN)
          problem (p, vm->checks[j].line, "VM %s: scan: an image: VM has no "
                   "restore point to scan", vm->name ? vm->name : "?");
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
  for (i = 0; i < d->npublish; i++)
    publish_check (p, d, i);
  check_one_host (p, d);
}

static void
def_set_name (struct parser *p, struct lab_def *d, const char *s, int line)
{
  if (!name_is_valid_max (s, LAB_NAME_MAX))
    problem (p, line, "name: '%s' is not a valid lab name "
             "([A-Za-z0-9._-], at most %d)", shown (p, s), LAB_NAME_MAX);
  free (d->name);
  d->name = xstrdup (s);
}

/* The top-level keys parse_document parses after the others: groups: and
 * verify:, once name:, network: and defaults: are read, whatever the
 * order of the keys. */
struct top_keys {
  struct fy_node *groups, *verify;
  int groups_line, verify_line;
};

/* host: NAME, a host of the catalog (bootback host add), checked when the
 * run starts; here only its form. */
static void
get_host (struct parser *p, struct fy_node *vn, int line, char **out)
{
  const char *s = scalar (p, vn, "host", line);
  size_t n;

  if (!s)
    return;
  n = strlen (s);
  if (n == 0 || n > 64 || strchr (s, ':') ||
      strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
    problem (p, line, "host: '%s' is not a host name of bootback host add", s);
    return;
  }
  free (*out);
  *out = xstrdup (s);
}

/* name:, network: and the places of groups: and verify: into t. */
static void
parse_top_keys (struct parser *p, struct lab_def *d, struct fy_node *root,
                struct top_keys *t)
{
  void *it = NULL;
  struct fy_node_pair *pr;

  while ((pr = fy_node_mapping_iterate (root, &it))) {
    struct fy_node *kn = fy_node_pair_key (pr), *vn = fy_node_pair_value (pr);
    const char *k = fy_node_is_scalar (kn) ? fy_node_get_scalar0 (kn) : "";
    int line = node_line (kn);
    const char *s;

    if (strcmp (k, "name") == 0) {
      if ((s = scalar (p, vn, k, line)))
        def_set_name (p, d, s, line);
    }
    else if (strcmp (k, "network") == 0)
      parse_network (p, d, vn, line);
    else if (strcmp (k, "defaults") == 0)
      ;
    else if (strcmp (k, "groups") == 0) {
      t->groups = vn;
      t->groups_line = line;
    }
    else if (strcmp (k, "verify") == 0) {
      t->verify = vn;
      t->verify_line = line;
    }
    else if (strcmp (k, "boot_failures") == 0)
      parse_boot_failures (p, d, vn, line);
    else if (strcmp (k, "publish") == 0)
      parse_publish (p, d, vn, line);
    else if (strcmp (k, "host") == 0)
      get_host (p, vn, line, &d->host);
    else
      problem (p, line, "unknown key '%s' (name, network, defaults, groups, "
               "verify, boot_failures, publish, host)", k);
  }
}

/* The group's VMs, with its rto: and rpo: (the defaults' unless given)
 * as the defaults while they are read. */
static void
parse_group_vms (struct parser *p, struct lab_def *d, struct lab_group *g,
                 struct fy_node *vms, double rto, double rpo)
{
  double saved_rto = p->rto, saved_rpo = p->rpo;

  p->rto = rto;
  p->rpo = rpo;
  parse_vm_list (p, d, g, vms, g->line);
  p->rto = saved_rto;
  p->rpo = saved_rpo;
}

/* One group of groups: (name:, vms:, rto:, rpo:) into
 * d->groups[d->ngroups++]. */
static void
parse_group (struct parser *p, struct lab_def *d, struct fy_node *gn)
{
  struct lab_group *g = &d->groups[d->ngroups++];
  struct fy_node *vms = NULL;
  struct fy_node_pair *pr;
  void *it = NULL;
  double rto = p->rto, rpo = p->rpo;

  g->line = node_line (gn);
  if (!fy_node_is_mapping (gn)) {
    problem (p, g->line, "a group is a mapping (name:, vms:, rto:, rpo:)");
    g->name = xasprintf ("group%zu", d->ngroups);
    return;
  }
  while ((pr = fy_node_mapping_iterate (gn, &it))) {
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
    else if (strcmp (k, "rto") == 0 || strcmp (k, "rpo") == 0)
      get_duration (p, fy_node_pair_value (pr), k, line, k[1] == 't' ? &rto : &rpo);
    else if (strcmp (k, "host") == 0)
      get_host (p, fy_node_pair_value (pr), line, &g->host);
    else
      problem (p, line, "unknown group key '%s' (name, vms, rto, rpo, host)", k);
  }
  if (!g->name)
    g->name = xasprintf ("group%zu", d->ngroups);
  if (!vms)
    problem (p, g->line, "group %s has no vms:", g->name);
  else
    parse_group_vms (p, d, g, vms, rto, rpo);
}

/* groups:, then verify: as the last group.  d->groups is allocated once,
 * with room for both: a group is filled in place. */
static void
parse_groups (struct parser *p, struct lab_def *d, const struct top_keys *t)
{
  struct lab_group *g;
  struct fy_node *gn;
  void *it = NULL;

  if (t->groups) {
    if (!fy_node_is_sequence (t->groups))
      problem (p, t->groups_line, "groups: expected a list of groups");
    else {
      d->groups = xcalloc (fy_node_sequence_item_count (t->groups) + 2,
                           sizeof *d->groups);
      while ((gn = fy_node_sequence_iterate (t->groups, &it)))
        parse_group (p, d, gn);
    }
  }
  if (t->verify) {
    if (!d->groups)
      d->groups = xcalloc (2, sizeof *d->groups);
    g = &d->groups[d->ngroups++];
    g->name = xstrdup ("verify");
    g->line = t->verify_line;
    parse_vm_list (p, d, g, t->verify, t->verify_line);
  }
}

static struct lab_def *
parse_document (struct parser *p, struct fy_document *doc)
{
  struct lab_def *d = xcalloc (1, sizeof *d);
  struct fy_node *root = fy_document_root (doc);
  struct top_keys t = { 0 };
  struct fy_node *dn;

  d->file = xstrdup (p->file);
  if (!root || !fy_node_is_mapping (root)) {
    problem (p, node_line (root), "a lab definition is a mapping "
             "(name:, network:, groups:, verify:)");
    return d;
  }
  /* defaults first: they apply whatever the order of keys. */
  dn = fy_node_mapping_lookup_by_string (root, "defaults", -1);
  if (dn)
    parse_defaults (p, dn, node_line (dn));
  parse_top_keys (p, d, root, &t);
  if (!d->name)
    problem (p, 0, "the lab needs a name");
  if (!fy_node_mapping_lookup_by_string (root, "network", -1))
    problem (p, node_line (root), "the lab needs a network: (subnet: and "
             "gateway:)");
  parse_groups (p, d, &t);
  cross_check (p, d);
  return d;
}

/* A parser with the built-in defaults. */
static void
parser_init (struct parser *p, const char *file)
{
  memset (p, 0, sizeof *p);
  p->file = file;
  p->boot_timeout = 120;
  p->stall_timeout = 60;
  p->reread_timeout = 5;
  p->timeout = 10;
  p->retries = 2;
  p->interval = 1;
  p->memory_mib = 0;
  p->errs = open_memstream (&p->errbuf, &p->errlen);
  if (!p->errs)
    abort ();
}

/* d, or NULL and the problems into *errors (the first is the error). */
static struct lab_def *
read_end (struct parser *p, struct lab_def *d, char **errors)
{
  fclose (p->errs);
  if (p->nerrs) {
    lab_def_free (d);
    error_setx ("%s", p->first);
    if (errors)
      *errors = p->errbuf;
    else
      free (p->errbuf);
    return NULL;
  }
  free (p->errbuf);
  return d;
}

/* The whole file at path (NUL-terminated, *len bytes), or NULL (errno). */
static char *
slurp (const char *path, size_t *len)
{
  FILE *f = fopen (path, "re"), *m;
  char *buf = NULL, b[4096];
  size_t n;
  int err;

  if (!f)
    return NULL;
  m = open_memstream (&buf, len);
  if (!m)
    abort ();
  while ((n = fread (b, 1, sizeof b, f)) > 0)
    fwrite (b, 1, n, m);
  err = ferror (f) ? errno : 0;
  fclose (f);
  fclose (m);
  if (err) {
    free (buf);
    errno = err;
    return NULL;
  }
  return buf;
}

/* YAML is Unicode text: the first line (from 1) holding a NUL byte or
 * bytes that are not UTF-8, or 0.  (libfyaml 0.7 loops forever on some
 * invalid bytes, e.g. after a '%'.) */
static int
bad_text_line (const char *yaml, size_t len)
{
  const unsigned char *c = (const unsigned char *) yaml, *end = c + len;
  int line = 1;
  size_t n;

  for (; c < end; c += n) {
    n = utf8_seq_len (c, end - c);
    if (n == 0 || *c == '\0')
      return line;
    if (*c == '\n')
      line++;
  }
  return 0;
}

static struct lab_def *
read_common (const char *yaml, const char *path, const char *name,
             char **errors)
{
  struct parser p;
  struct fy_diag_cfg dcfg;
  struct fy_diag *diag;
  struct fy_parse_cfg cfg = { 0 };
  struct fy_document *doc;
  struct lab_def *d = NULL;
  CLEANUP_FREE char *text = NULL;
  size_t len;
  int bad;

  parser_init (&p, name);
  if (errors)
    *errors = NULL;
  if (path) {
    yaml = text = slurp (path, &len);
    if (!text) {
      problem (&p, 0, "%s", strerror (errno));
      return read_end (&p, NULL, errors);
    }
  }
  else
    len = strlen (yaml);
  if ((bad = bad_text_line (yaml, len)) > 0) {
    problem (&p, bad, "not UTF-8 text (YAML is Unicode)");
    return read_end (&p, NULL, errors);
  }

  fy_diag_cfg_default (&dcfg);
  dcfg.fp = NULL;
  dcfg.colorize = false;
  diag = fy_diag_create (&dcfg);
  if (!diag)
    abort ();
  fy_diag_set_collect_errors (diag, true);
  cfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG;
  cfg.diag = diag;
  doc = fy_document_build_from_string (&cfg, yaml, len);
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
    if (n == 0)
      problem (&p, 0, "YAML: the document could not be parsed");
  }
  else
    d = parse_document (&p, doc);
  fy_document_destroy (doc);
  fy_diag_destroy (diag);
  return read_end (&p, d, errors);
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
  free (c->rules);
  free (c->signatures);
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
      for (j = 0; j < vm->nrefused; j++) {
        free (vm->refused[j].check);
        free (vm->refused[j].why);
      }
      free (vm->refused);
    }
    free (d->groups[g].vms);
    free (d->groups[g].name);
    free (d->groups[g].host);
  }
  free (d->groups);
  for (i = 0; i < d->nboot_failures; i++) {
    free ((char *) d->boot_failures[i].text);
    free ((char *) d->boot_failures[i].reason);
  }
  free (d->boot_failures);
  for (i = 0; i < d->npublish; i++)
    free (d->publish[i].vm);
  free (d->publish);
  free (d->file);
  free (d->name);
  free (d->subnet);
  free (d->gateway);
  free (d->dns);
  free (d->host);
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

/* ---- built as data ------------------------------------------------------ */

/* End of one builder step: 0, or -1 with the error set to its first
 * problem. */
static int
builder_end (struct parser *p)
{
  fclose (p->errs);
  free (p->errbuf);
  if (p->nerrs) {
    error_setx ("%s", p->first);
    return -1;
  }
  return 0;
}

struct lab_def *
lab_def_new (const char *name, const char *file)
{
  struct lab_def *d = xcalloc (1, sizeof *d);
  struct parser p;

  parser_init (&p, NULL);
  d->file = xstrdup (file);
  def_set_name (&p, d, name, 0);
  if (builder_end (&p) == -1) {
    lab_def_free (d);
    return NULL;
  }
  return d;
}

int
lab_def_set_subnet (struct lab_def *d, const char *subnet)
{
  struct lab_def tmp = { 0 };
  struct parser p;

  parser_init (&p, NULL);
  net_set_subnet (&p, &tmp, subnet, 0);
  if (builder_end (&p) == -1) {
    free (tmp.subnet);
    return -1;
  }
  free (d->subnet);
  d->subnet = tmp.subnet;
  d->prefix = tmp.prefix;
  return 0;
}

int
lab_def_set_gateway (struct lab_def *d, const char *gateway)
{
  struct lab_def tmp = { 0 };
  struct parser p;

  parser_init (&p, NULL);
  net_set_address (&p, &tmp, "gateway", gateway, 0);
  if (builder_end (&p) == -1) {
    free (tmp.gateway);
    return -1;
  }
  free (d->gateway);
  d->gateway = tmp.gateway;
  return 0;
}

struct lab_vm *
lab_def_add_vm (struct lab_def *d, const char *name, const char *point)
{
  struct lab_vm vm = { 0 }, *slot;
  struct lab_group *g;
  struct parser p;

  parser_init (&p, NULL);
  vm_set_name (&p, &vm, name, 0);
  vm_set_point (&p, &vm, point, 0);
  if (builder_end (&p) == -1) {
    free (vm.name);
    free (vm.point);
    return NULL;
  }
  vm.boot_timeout = p.boot_timeout;
  vm.stall_timeout = p.stall_timeout;
  vm.reread_timeout = p.reread_timeout;
  vm.delay = p.delay;
  vm.memory_mib = p.memory_mib;
  if (d->ngroups == 0 || strcmp (d->groups[d->ngroups - 1].name, "verify") != 0)
    ARRAY_PUSH (d->groups, d->ngroups)->name = xstrdup ("verify");
  g = &d->groups[d->ngroups - 1];
  vm.group = g->name;
  slot = ARRAY_PUSH (g->vms, g->nvms);
  *slot = vm;
  return slot;
}

int
lab_vm_set_address (struct lab_vm *vm, const char *address)
{
  struct lab_vm tmp = { 0 };
  struct parser p;

  parser_init (&p, NULL);
  vm_set_address (&p, &tmp, address, 0);
  if (builder_end (&p) == -1) {
    free (tmp.address);
    return -1;
  }
  free (vm->address);
  vm->address = tmp.address;
  return 0;
}

/* May a restore point ask for check s of vm?  A problem if not. */
static void
point_may_ask (struct parser *p, const struct lab_vm *vm, const char *s)
{
  const char *c;
  char **w;
  int k;

  for (c = s; *c; c++)
    if ((unsigned char) *c < 0x20 || *c == 0x7f ||
        is_c1 ((const unsigned char *) c, utf8_seq_len ((const unsigned char *) c,
                                                       strnlen (c, 4)))) {
      problem (p, 0, "a restore point's check must be printable text");
      return;
    }
  if (strlen (s) > 1024) {
    problem (p, 0, "a restore point's check must be at most 1024 characters");
    return;
  }
  /* The kind as check_from_string reads it: quotes removed */
  w = split_words (s);
  k = w && w[0] ? kind_of (w[0]) : -1;
  strv_free (w);
  if (k >= 0 && !kinds[k].guest)
    problem (p, 0, "a %s check runs on the host: a restore point may only ask "
             "for checks of the guest (" GUEST_KINDS "); host-side checks "
             "belong in a lab file or $BOOTBACK_HOME/verify/%s.yaml",
             kinds[k].name, vm->name ? vm->name : "VM");
}

/* An http check a restore point asked for reaches the guest only: its
 * host is {address} or the VM's own address (check_url kept it in the
 * lab subnet already). */
static void
point_url (struct parser *p, const struct lab_vm *vm, const char *url)
{
  const char *h = url + strlen ("http://");
  size_t n = strcspn (h, ":/?#");

  if ((n == strlen ("{address}") && strncmp (h, "{address}", n) == 0) ||
      (vm->address && n == strlen (vm->address) && strncmp (h, vm->address, n) == 0))
    return;
  problem (p, 0, "http: '%s': a restore point's check may only reach the "
           "guest itself (http://{address}/...)", shown (p, url));
}

struct lab_check *
lab_vm_add_check (const struct lab_def *d, struct lab_vm *vm,
                  const char *check, enum lab_origin from)
{
  struct lab_check c = { 0 }, *slot;
  struct parser p;

  parser_init (&p, NULL);
  check_init (&p, &c, 0);
  if (from == LAB_FROM_POINT)
    point_may_ask (&p, vm, check);
  if (p.nerrs == 0)
    check_from_string (&p, d, &c, check);
  if (p.nerrs == 0 && from == LAB_FROM_POINT && !kinds[c.kind].guest)
    problem (&p, 0, "a %s check runs on the host: a restore point may not "
             "ask for it", kinds[c.kind].name);
  if (p.nerrs == 0 && from == LAB_FROM_POINT && c.kind == LAB_CHECK_HTTP)
    point_url (&p, vm, c.url);
  if (builder_end (&p) == -1) {
    check_free (&c);
    return NULL;
  }
  check_finish (&c);
  slot = ARRAY_PUSH (vm->checks, vm->nchecks);
  *slot = c;
  return slot;
}

void
lab_vm_refuse (struct lab_vm *vm, const char *check, const char *why)
{
  struct lab_refusal *r = ARRAY_PUSH (vm->refused, vm->nrefused);

  r->check = lab_printable (check, 200);
  r->why = xstrdup (why);
}

int
lab_def_add_publish (struct lab_def *d, const char *spec)
{
  struct parser p;
  size_t n = d->npublish;

  parser_init (&p, NULL);
  add_publish (&p, d, spec, 0);
  if (p.nerrs == 0)
    publish_check (&p, d, n);
  if (p.nerrs && d->npublish > n)
    free (d->publish[--d->npublish].vm);      /* taken out again */
  return builder_end (&p);
}

int
lab_def_finish (struct lab_def *d)
{
  struct parser p;
  size_t g, i;

  parser_init (&p, NULL);
  if (!d->name)
    problem (&p, 0, "the lab needs a name");
  net_finish (&p, d, 0);
  for (g = 0; g < d->ngroups; g++)
    for (i = 0; i < d->groups[g].nvms; i++)
      vm_finish (&p, &d->groups[g].vms[i]);
  cross_check (&p, d);
  return builder_end (&p);
}

bool
lab_def_needs_repo (const struct lab_def *d)
{
  size_t g, i;

  for (g = 0; g < d->ngroups; g++)
    for (i = 0; i < d->groups[g].nvms; i++)
      if (!d->groups[g].vms[i].image)
        return true;
  return false;
}
