/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checks.  Each attempt is bounded by the check's timeout; a check
 * passes at its first passing attempt and fails after 1 + retries failed
 * ones.  Network checks (ping, tcp, http) use sockets made inside the lab
 * namespace (lab_net_socket), scripts run inside it (lab_net_run): no
 * probe ever goes through the host's routing table.  Agent checks go
 * through libvirt (virt_agent_command, recovery/virt), never a socket of
 * ours.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>

#include "verify/verify.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"

const char *
verify_status_name (enum verify_status s)
{
  switch (s) {
  case VERIFY_PASS: return "pass";
  case VERIFY_FAIL: return "fail";
  case VERIFY_SKIP: return "skip";
  }
  return "?";
}

/* ---- guest agent --------------------------------------------------------- */

/* Send one agent command; the reply's "return" member (new reference) or
 * NULL with msg. */
static json_t *
agent (virDomainPtr dom, json_t *cmd, int timeout, char *msg, size_t len)
{
  char *s = json_dumps (cmd, JSON_COMPACT);
  char *reply;
  json_t *o, *ret;
  json_error_t je;

  json_decref (cmd);
  reply = virt_agent_command (dom, s, timeout);
  free (s);
  if (!reply) {
    snprintf (msg, len, "%s", error_msg ());    /* "guest agent: ..." */
    return NULL;
  }
  o = json_loads (reply, 0, &je);
  free (reply);
  if (!o) {
    snprintf (msg, len, "guest agent: unreadable reply: %s", je.text);
    return NULL;
  }
  ret = json_object_get (o, "return");
  if (!ret) {
    json_t *e = json_object_get (json_object_get (o, "error"), "desc");
    snprintf (msg, len, "guest agent: %s",
              json_string_value (e) ? json_string_value (e) : "no return value");
    json_decref (o);
    return NULL;
  }
  json_incref (ret);
  json_decref (o);
  return ret;
}

int
verify_agent_ping (virDomainPtr dom, int timeout, char *msg, size_t len)
{
  json_t *r = agent (dom, json_pack ("{s:s}", "execute", "guest-ping"), timeout,
                     msg, len);
  if (!r)
    return -1;
  json_decref (r);
  return 0;
}

int
verify_agent_address (virDomainPtr dom, const struct lab_net *net, char out[16])
{
  char msg[256];
  json_t *r = agent (dom, json_pack ("{s:s}", "execute",
                                     "guest-network-get-interfaces"), 5,
                     msg, sizeof msg);
  size_t i, j;
  int found = -1;

  if (!r)
    return -1;
  for (i = 0; i < json_array_size (r) && found < 0; i++) {
    json_t *ips = json_object_get (json_array_get (r, i), "ip-addresses");
    for (j = 0; j < json_array_size (ips); j++) {
      json_t *a = json_array_get (ips, j);
      const char *t = json_string_value (json_object_get (a, "ip-address-type"));
      const char *ip = json_string_value (json_object_get (a, "ip-address"));
      if (t && ip && strcmp (t, "ipv4") == 0 &&
          lab_ipv4_in_subnet (ip, net->subnet, net->prefix) &&
          strcmp (ip, net->gateway) != 0) {
        snprintf (out, 16, "%s", ip);
        found = 0;
        break;
      }
    }
  }
  json_decref (r);
  return found;
}

static size_t
b64_decode (const char *in, unsigned char *out, size_t max)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;

  for (; *in && *in != '='; in++) {
    const char *p = strchr (tab, *in);
    if (!p || !*in)
      continue;
    acc = (acc << 6) | (uint32_t) (p - tab);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n < max)
        out[n] = (acc >> bits) & 0xff;
      n++;
    }
  }
  return MIN (n, max);
}

/* The guest says what its command's status was: one that is none (a
 * negative one, past int: a Windows NTSTATUS, or made up) counts as 255,
 * so that it fails the check as the command's status, never as
 * verify_guest_exec's own -1 (whose out is bootback's reason, not the
 * guest's output). */
int
verify_guest_exec_status (json_t *st, char *out, size_t len)
{
  const char *o = json_string_value (json_object_get (st, "out-data"));
  const char *e = json_string_value (json_object_get (st, "err-data"));
  json_int_t code = json_integer_value (json_object_get (st, "exitcode"));
  size_t n = 0;

  if (json_object_get (st, "signal")) {
    code = json_integer_value (json_object_get (st, "signal"));
    code = code > 0 && code < 128 ? 128 + code : -1;
  }
  if (code < 0 || code > INT_MAX)
    code = 255;
  if (o)
    n += b64_decode (o, (unsigned char *) out + n, len - 1 - n);
  if (e)
    n += b64_decode (e, (unsigned char *) out + n, len - 1 - n);
  out[n] = '\0';
  while (n > 0 && out[n - 1] == '\n')
    out[--n] = '\0';
  return (int) code;
}

int
verify_guest_exec (virDomainPtr dom, const char *command, double timeout,
                   char *out, size_t len)
{
  double end = now_monotonic () + timeout;
  json_t *r;
  json_int_t pid;

  out[0] = '\0';
  r = agent (dom, json_pack ("{s:s, s:{s:s, s:[s,s], s:b}}", "execute", "guest-exec",
                             "arguments", "path", "/bin/sh", "arg", "-c", command,
                             "capture-output", 1), (int) timeout, out, len);
  if (!r)
    return -1;
  pid = json_integer_value (json_object_get (r, "pid"));
  json_decref (r);
  for (;;) {
    json_t *st = agent (dom, json_pack ("{s:s, s:{s:I}}", "execute",
                                        "guest-exec-status", "arguments", "pid",
                                        pid), 5, out, len);
    if (!st)
      return -1;
    if (json_is_true (json_object_get (st, "exited"))) {
      int code = verify_guest_exec_status (st, out, len);
      json_decref (st);
      return code;
    }
    json_decref (st);
    if (now_monotonic () > end) {
      snprintf (out, len, "guest command still running after %.0f s", timeout);
      return -1;
    }
    if (lab_sleep (0.2) == -1) {
      snprintf (out, len, "interrupted");
      return -1;
    }
  }
}

/* ---- network, from inside the lab namespace -------------------------- */

static uint16_t
icmp_sum (const void *buf, size_t len)
{
  const uint8_t *p = buf;
  uint32_t s = 0;

  for (; len > 1; len -= 2, p += 2)
    s += (p[0] << 8) | p[1];
  if (len)
    s += p[0] << 8;
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return htons (~s & 0xffff);
}

/* The echo requests of one ping: to whom, with which identifier, which
 * sequence numbers went out (first, and how many). */
struct echo {
  struct sockaddr_in to;
  uint16_t id, first, sent;
};

/* Send the next echo request; -1 (errno) on an error other than the
 * destination being unreachable (yet). */
static int
echo_send (int fd, struct echo *e)
{
  static uint16_t seq;
  uint8_t pkt[64] = { 0 };
  struct icmphdr *h = (struct icmphdr *) pkt;
  uint16_t s = ++seq;

  if (!e->sent)
    e->first = s;
  h->type = ICMP_ECHO;
  h->un.echo.id = htons (e->id);
  h->un.echo.sequence = htons (s);
  memcpy (pkt + sizeof *h, "bootback-verify", 15);
  h->checksum = icmp_sum (pkt, sizeof pkt);
  if (sendto (fd, pkt, sizeof pkt, 0, (struct sockaddr *) &e->to, sizeof e->to) == -1 &&
      errno != EHOSTUNREACH && errno != ENETUNREACH)
    return -1;
  e->sent++;
  return 0;
}

/* Read one datagram: whether it is the reply to one of our requests. */
static bool
echo_reply (int fd, const struct echo *e)
{
  uint8_t buf[1500];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t n = recvfrom (fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &fl);
  const struct icmphdr *rh;
  size_t ihl;

  if (n < (ssize_t) sizeof (struct iphdr))
    return false;
  ihl = (buf[0] & 0x0f) * 4;
  rh = (const struct icmphdr *) (buf + ihl);
  if ((size_t) n < ihl + sizeof *rh || from.sin_addr.s_addr != e->to.sin_addr.s_addr)
    return false;
  return rh->type == ICMP_ECHOREPLY && ntohs (rh->un.echo.id) == e->id &&
         (uint16_t) (ntohs (rh->un.echo.sequence) - e->first) < e->sent;
}

/* ---- checks of a lab on another host ------------------------------------
 * The same checks through ssh, in the lab's namespace on that host
 * (lab_net_run): ping (iputils), and bash's /dev/tcp for TCP and HTTP.
 * The scripts are fixed; the address, port and request are their
 * arguments, each quoted by hostcmd.c; the request's path holds RFC
 * 3986's characters only (lab_http_path_ok: no backslash, which a fish
 * login shell would read inside single quotes). */

static const char remote_tcp_sh[] = "exec 3<>\"/dev/tcp/$1/$2\"";
static const char remote_http_sh[] =
  "exec 3<>\"/dev/tcp/$1/$2\" || exit 3; printf '%s' \"$3\" >&3; cat <&3";

/* A remote check's failure in msg: its output, or ssh's error. */
static int
remote_failed (int st, const char *what, const char *out, double timeout,
               char *msg, size_t len)
{
  if (st < 0)
    snprintf (msg, len, "%s", error_msg ());
  else if (st == 124)
    snprintf (msg, len, "%s: no answer within %.1f s", what, timeout);
  else if (st == 127)
    snprintf (msg, len, "%s: a program is missing on the lab's host: %.300s", what, out);
  else
    snprintf (msg, len, "%s: %.400s", what, out[0] ? out : "failed");
  return -1;
}

static int
remote_ping (const struct lab_net *net, const char *address, double timeout,
             char *msg, size_t len)
{
  char w[16], out[1024];
  char *argv[] = { "ping", "-n", "-q", "-c", "1", "-w", w, (char *) address, NULL };
  int st;

  snprintf (w, sizeof w, "%d", timeout < 1 ? 1 : (int) (timeout + 0.5));
  st = lab_net_run (net, argv, NULL, timeout + 1, out, sizeof out);
  if (st == 0)
    return 0;
  if (st == 1)
    snprintf (msg, len, "no ICMP echo reply from %s within %.1f s", address, timeout);
  else
    remote_failed (st, "ping", out, timeout, msg, len);
  return -1;
}

static int
remote_tcp (const struct lab_net *net, const char *address, int port, double timeout,
            char *msg, size_t len)
{
  char p[8], out[1024];
  char *argv[] = { "bash", "-c", (char *) remote_tcp_sh, "bb", (char *) address, p, NULL };
  CLEANUP_FREE char *what = xasprintf ("connect %s:%d", address, port);
  struct in_addr a;
  int st;

  if (inet_pton (AF_INET, address, &a) != 1) {   /* never a name to resolve */
    snprintf (msg, len, "'%s' is not an IPv4 address", address);
    return -1;
  }
  snprintf (p, sizeof p, "%d", port);
  st = lab_net_run (net, argv, NULL, timeout, out, sizeof out);
  return st == 0 ? 0 : remote_failed (st, what, out, timeout, msg, len);
}

int
verify_icmp_ping (const struct lab_net *net, const char *address, double timeout,
                  char *msg, size_t len)
{
  struct echo e = { .to = { .sin_family = AF_INET } };
  double end = now_monotonic () + timeout, next = 0;
  int fd, r = -1;

  e.id = (getpid () ^ (uintptr_t) &e) & 0xffff;
  if (inet_pton (AF_INET, address, &e.to.sin_addr) != 1) {
    snprintf (msg, len, "'%s' is not an IPv4 address", address);
    return -1;
  }
  if (lab_host_remote (net->host))
    return remote_ping (net, address, timeout, msg, len);
  fd = lab_net_socket (net, AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd == -1) {
    snprintf (msg, len, "%s", error_msg ());
    return -1;
  }
  /* One echo request a second until a reply or the timeout: the first
   * may be lost while the neighbour is being resolved. */
  for (;;) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    double now = now_monotonic (), left = end - now;
    if (left <= 0) {
      snprintf (msg, len, "no ICMP echo reply from %s within %.1f s (%u sent)",
                address, timeout, e.sent);
      break;
    }
    if (now >= next) {
      if (echo_send (fd, &e) == -1) {
        snprintf (msg, len, "ICMP echo to %s: %s", address, strerror (errno));
        break;
      }
      next = now + 1;
    }
    left = MIN (end, next) - now_monotonic ();
    if (poll (&p, 1, left > 0 ? (int) (left * 1000) + 1 : 0) > 0 && echo_reply (fd, &e)) {
      r = 0;
      break;
    }
  }
  close (fd);
  return r;
}

/* Connect to address:port from the namespace within timeout; the fd or
 * -1 with msg. */
static int
tcp_connect (const struct lab_net *net, const char *address, int port,
             double timeout, char *msg, size_t len)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct pollfd p;
  int fd, err = 0;
  socklen_t el = sizeof err;

  if (inet_pton (AF_INET, address, &sa.sin_addr) != 1) {
    snprintf (msg, len, "'%s' is not an IPv4 address", address);
    return -1;
  }
  fd = lab_net_socket (net, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd == -1) {
    snprintf (msg, len, "%s", error_msg ());
    return -1;
  }
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0)
    return fd;
  if (errno != EINPROGRESS) {
    snprintf (msg, len, "connect %s:%d: %s", address, port, strerror (errno));
    close (fd);
    return -1;
  }
  p.fd = fd;
  p.events = POLLOUT;
  if (poll (&p, 1, (int) (timeout * 1000)) <= 0) {
    snprintf (msg, len, "connect %s:%d: no answer within %.1f s", address, port,
              timeout);
    close (fd);
    return -1;
  }
  getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err) {
    snprintf (msg, len, "connect %s:%d: %s", address, port, strerror (err));
    close (fd);
    return -1;
  }
  return fd;
}

/* Replace {address} in s. */
static char *
expand (const char *s, const char *address)
{
  const char *p = strstr (s, "{address}");

  if (!p)
    return xstrdup (s);
  return xasprintf ("%.*s%s%s", (int) (p - s), s, address ? address : "",
                    p + strlen ("{address}"));
}

/* One GET of an http check, from step to step. */
struct http_exchange {
  const char *url;           /* the check's, {address} replaced */
  char host[64], path[2048];
  int port;
  double end;                /* the attempt's deadline (monotonic) */
  char *resp;                /* the answer, NUL-terminated */
  size_t got;
};

/* Host, port and path of the http:// URL. */
static void
http_parse_url (struct http_exchange *g)
{
  const char *h = g->url + 7, *e;

  g->port = 80;
  e = h + strcspn (h, ":/?#");
  snprintf (g->host, sizeof g->host, "%.*s", (int) (e - h), h);
  if (*e == ':')
    g->port = atoi (e + 1);
  e += strcspn (e, "/?#");
  snprintf (g->path, sizeof g->path, "%s", *e ? e : "/");
}

/* The request (malloc'd). */
static char *
http_request (const struct http_exchange *g)
{
  return xasprintf ("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: bootback-verify\r\n"
                    "Accept: */*\r\nConnection: close\r\n\r\n", g->path, g->host);
}

/* Send the request; false if it was not all sent by the deadline. */
static bool
http_send (int fd, const struct http_exchange *g)
{
  CLEANUP_FREE char *req = http_request (g);
  size_t off = 0, rl = strlen (req);

  while (off < rl) {
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    ssize_t w;
    if (poll (&p, 1, 1000) <= 0 && now_monotonic () > g->end)
      break;
    w = write (fd, req + off, rl - off);
    if (w > 0)
      off += w;
    else if (w == -1 && errno != EAGAIN && errno != EINTR)
      break;
  }
  return off == rl;
}

/* Read the answer until the server closes the connection (or 1 MiB of
 * it) into g->resp; -1 with msg if it did not come whole by the
 * deadline. */
static int
http_read (int fd, struct http_exchange *g, double timeout, char *msg, size_t len)
{
  size_t cap = 1 << 20;

  g->resp = xmalloc (cap + 1);
  for (;;) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    double left = g->end - now_monotonic ();
    ssize_t r;
    if (left <= 0) {
      snprintf (msg, len, "GET %s: no complete answer within %.1f s", g->url, timeout);
      return -1;
    }
    if (poll (&p, 1, (int) (left * 1000) + 1) <= 0)
      continue;
    r = read (fd, g->resp + g->got, cap - g->got);
    if (r == -1 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (r == -1) {
      snprintf (msg, len, "GET %s: %s", g->url, strerror (errno));
      return -1;
    }
    if (r == 0 || (g->got += r) == cap)
      break;
  }
  g->resp[g->got] = '\0';
  return 0;
}

/* The answer's status and body against the check's expectations: 0 if
 * as expected; msg says what was found. */
static int
http_judge (const struct lab_check *c, const struct http_exchange *g,
            char *msg, size_t len)
{
  const char *resp = g->resp, *body;
  int status = 0;

  if (sscanf (resp, "HTTP/%*d.%*d %d", &status) != 1) {
    snprintf (msg, len, "GET %s: not an HTTP answer", g->url);
    return -1;
  }
  body = strstr (resp, "\r\n\r\n");
  body = body ? body + 4 : resp + g->got;
  if (status != c->expect) {
    size_t bl = strcspn (body, "\r\n");
    snprintf (msg, len, "GET %s: HTTP %d, expected %d%s%.*s", g->url, status,
              c->expect, bl ? ": " : "", (int) MIN (bl, 300), body);
    return -1;
  }
  if (c->contains && !memmem (body, resp + g->got - body, c->contains,
                              strlen (c->contains))) {
    snprintf (msg, len, "GET %s: HTTP %d but the body does not contain \"%s\"",
              g->url, status, c->contains);
    return -1;
  }
  snprintf (msg, len, "HTTP %d%s%s%s", status, c->contains ? ", contains \"" : "",
            c->contains ? c->contains : "", c->contains ? "\"" : "");
  return 0;
}

/* One GET on another host: the answer is what the script prints. */
static int
http_get_remote (const struct lab_check *c, const struct verify_target *t,
                 struct http_exchange *g, char *msg, size_t len)
{
  CLEANUP_FREE char *req = http_request (g);
  CLEANUP_FREE char *what = xasprintf ("GET %s", g->url);
  char p[8];
  char *argv[] = { "bash", "-c", (char *) remote_http_sh, "bb", g->host, p, req, NULL };
  size_t cap = (1 << 20) + 1;
  int st, r;

  snprintf (p, sizeof p, "%d", g->port);
  g->resp = xmalloc (cap);
  st = lab_net_run (t->net, argv, NULL, c->timeout, g->resp, cap);
  g->got = strlen (g->resp);
  r = st == 0 ? http_judge (c, g, msg, len)
              : remote_failed (st, what, g->resp, c->timeout, msg, len);
  free (g->resp);
  return r;
}

/* One GET; 0 if status and content are as expected. */
static int
http_get (const struct lab_check *c, const struct verify_target *t,
          char *msg, size_t len)
{
  CLEANUP_FREE char *url = expand (c->url, t->address);
  struct http_exchange g = { .url = url, .end = now_monotonic () + c->timeout };
  int fd, r;

  if (strstr (c->url, "{address}") && !t->address) {
    snprintf (msg, len, "the VM's address is not known (give address: or run "
              "the guest agent)");
    return -1;
  }
  http_parse_url (&g);
  if (!lab_http_path_ok (g.path)) {
    snprintf (msg, len, "%s: the path holds characters outside RFC 3986's: "
              "refusing to send", url);
    return -1;
  }
  if (!lab_ipv4_in_subnet (g.host, t->net->subnet, t->net->prefix)) {
    snprintf (msg, len, "%s is not in the lab subnet: refusing to send", g.host);
    return -1;
  }
  if (lab_host_remote (t->net->host))
    return http_get_remote (c, t, &g, msg, len);
  fd = tcp_connect (t->net, g.host, g.port, c->timeout, msg, len);
  if (fd == -1)
    return -1;
  if (!http_send (fd, &g)) {
    snprintf (msg, len, "GET %s: could not send the request", url);
    close (fd);
    return -1;
  }
  r = http_read (fd, &g, c->timeout, msg, len);
  close (fd);
  if (r == 0)
    r = http_judge (c, &g, msg, len);
  free (g.resp);
  return r;
}

/* ---- screenshot ------------------------------------------------------- */

int
verify_screenshot (virDomainPtr dom, const char *path, char *msg, size_t len)
{
  CLEANUP_FREE unsigned char *data = NULL, *png = NULL;
  CLEANUP_FREE char *mime = NULL;
  size_t datalen, pnglen = 0;

  if (virt_screenshot (dom, &data, &datalen, &mime) == -1) {
    snprintf (msg, len, "%s", error_msg ());     /* "screenshot: ..." */
    return -1;
  }
  if (strcmp (mime, "image/png") == 0) {
    png = data;
    pnglen = datalen;
    data = NULL;
  }
  else if (verify_ppm_to_png (data, datalen, &png, &pnglen) == -1) {
    snprintf (msg, len, "screenshot: cannot convert %s to PNG", mime);
    return -1;
  }
  if (write_whole_file (path, png, pnglen, 0600) == -1) {
    snprintf (msg, len, "screenshot: %s", error_msg ());
    return -1;
  }
  snprintf (msg, len, "console captured (%zu bytes PNG)", pnglen);
  return 0;
}

/* ---- one check with retries ---------------------------------------------- */

static const char *const kind_names[] = {
  "heartbeat", "ping", "tcp", "http", "script", "guest-exec", "screenshot",
  "scan",
};

static int
attempt_tcp (const struct lab_check *c, const struct verify_target *t,
             char *msg, size_t len)
{
  int fd;

  if (!t->address) {
    snprintf (msg, len, "the VM's address is not known");
    return -1;
  }
  if (lab_host_remote (t->net->host)) {
    if (remote_tcp (t->net, t->address, c->port, c->timeout, msg, len) == -1)
      return -1;
    snprintf (msg, len, "port %d accepts connections", c->port);
    return 0;
  }
  fd = tcp_connect (t->net, t->address, c->port, c->timeout, msg, len);
  if (fd == -1)
    return -1;
  close (fd);
  snprintf (msg, len, "port %d accepts connections", c->port);
  return 0;
}

/* The script runs in the lab namespace, {address} replaced in its
 * arguments, the VM and the lab named in its environment. */
static int
attempt_script (const struct lab_check *c, const struct verify_target *t,
                struct verify_check_result *r, char *msg, size_t len)
{
  char out[4096];
  size_t n, i;
  char **argv;
  char *env[6];
  int st;

  for (n = 0; c->argv[n]; n++)
    ;
  argv = xcalloc (n + 1, sizeof *argv);
  for (i = 0; i < n; i++)
    argv[i] = expand (c->argv[i], t->address);
  env[0] = xasprintf ("BOOTBACK_VM=%s", t->vm);
  env[1] = xasprintf ("BOOTBACK_VM_ADDRESS=%s", t->address ? t->address : "");
  env[2] = xasprintf ("BOOTBACK_VM_DOMAIN=%s", t->domain);
  env[3] = xasprintf ("BOOTBACK_LAB_NETNS=%s", t->net->netns);
  env[4] = xasprintf ("BOOTBACK_LAB_GATEWAY=%s", t->net->gateway);
  env[5] = NULL;
  st = lab_net_run (t->net, argv, env, c->timeout, out, sizeof out);
  strv_free (argv);
  for (i = 0; i < 5; i++)
    free (env[i]);
  free (r->output);
  r->output = xstrdup_printable (out, true);
  if (st == 0) {
    snprintf (msg, len, "exit 0");
    return 0;
  }
  if (st == 124)
    snprintf (msg, len, "still running after %.1f s (killed)", c->timeout);
  else if (st < 0)
    snprintf (msg, len, "%s", error_msg ());
  else
    snprintf (msg, len, "exit %d%s%.200s", st, out[0] ? ": " : "", out);
  return -1;
}

static int
attempt_guest_exec (const struct lab_check *c, const struct verify_target *t,
                    struct verify_check_result *r, char *msg, size_t len)
{
  char out[4096];
  int st = verify_guest_exec (t->dom, c->command, c->timeout, out, sizeof out);

  free (r->output);
  r->output = xstrdup_printable (out, true);
  if (st == 0) {
    snprintf (msg, len, "exit 0");
    return 0;
  }
  if (st < 0)
    snprintf (msg, len, "%.300s", out);
  else
    snprintf (msg, len, "exit %d%s%.200s", st, out[0] ? ": " : "", out);
  return -1;
}

static int
attempt (const struct lab_check *c, const struct verify_target *t,
         struct verify_check_result *r, char *msg, size_t len)
{
  switch (c->kind) {
  case LAB_CHECK_HEARTBEAT:
    if (verify_agent_ping (t->dom, (int) (c->timeout + 0.999), msg, len) == -1)
      return -1;
    snprintf (msg, len, "guest agent answered guest-ping");
    return 0;
  case LAB_CHECK_PING:
    if (!t->address) {
      snprintf (msg, len, "the VM's address is not known");
      return -1;
    }
    if (verify_icmp_ping (t->net, t->address, c->timeout, msg, len) == -1)
      return -1;
    snprintf (msg, len, "ICMP echo reply from %s", t->address);
    return 0;
  case LAB_CHECK_TCP:
    return attempt_tcp (c, t, msg, len);
  case LAB_CHECK_HTTP:
    return http_get (c, t, msg, len);
  case LAB_CHECK_SCRIPT:
    return attempt_script (c, t, r, msg, len);
  case LAB_CHECK_GUEST_EXEC:
    return attempt_guest_exec (c, t, r, msg, len);
  case LAB_CHECK_SCAN:               /* scan_run */
    break;
  case LAB_CHECK_SCREENSHOT:
    if (verify_screenshot (t->dom, t->shot_path, msg, len) == -1)
      return -1;
    free (r->screenshot);
    r->screenshot = xstrdup (strrchr (t->shot_path, '/') ?
                             strrchr (t->shot_path, '/') + 1 : t->shot_path);
    return 0;
  }
  snprintf (msg, len, "unknown check");
  return -1;
}

/* ---- scan ---------------------------------------------------------------- */

/* Append a line (fmt) to *text. */
static void __attribute__((format (printf, 2, 3)))
append_line (char **text, const char *fmt, ...)
{
  CLEANUP_FREE char *line = NULL;
  char *t;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) == -1)
    abort ();
  va_end (ap);
  t = xasprintf ("%s%s\n", *text, line);
  free (*text);
  *text = t;
}

/* A match's or a partition's "partition": a number, or the name of a
 * logical volume (printable, malloc'd). */
static char *
part_words (json_t *p)
{
  if (json_is_integer (p))
    return xasprintf ("%" JSON_INTEGER_FORMAT, json_integer_value (p));
  return xstrdup_printable (json_string_value (p) ?: "?", false);
}

/* " volume VG/LV" of a match or a partition on a logical volume, else
 * "" (printable, malloc'd). */
static char *
volume_words (json_t *m)
{
  const char *v = json_string_value (json_object_get (m, "volume"));
  CLEANUP_FREE char *t = v ? xstrdup_printable (v, false) : NULL;

  return t ? xasprintf (" volume %.200s", t) : xstrdup ("");
}

/* "RULE (ENGINE) in PATH (disk D partition P[ volume VG/LV])" of match
 * m, printable. */
static char *
match_words (json_t *m)
{
  CLEANUP_FREE char *rule = xstrdup_printable
    (json_string_value (json_object_get (m, "rule")) ?: "?", false);
  CLEANUP_FREE char *path = xstrdup_printable
    (json_string_value (json_object_get (m, "path")) ?: "?", false);
  CLEANUP_FREE char *disk = xstrdup_printable
    (json_string_value (json_object_get (m, "disk")) ?: "?", false);
  CLEANUP_FREE char *part = part_words (json_object_get (m, "partition"));
  CLEANUP_FREE char *vol = volume_words (m);
  const char *engine = json_string_value (json_object_get (m, "engine"));

  return xasprintf ("%.200s (%s) in %.400s (disk %.64s partition %.100s%s)",
                    rule, engine && strcmp (engine, "yara") == 0 ? "yara"
                    : "clamav", path, disk, part, vol);
}

/* Why scan does not pass (malloc'd), or NULL if it does; *could_not when
 * the scan is not conclusive. */
static char *
scan_problem (json_t *scan, bool *could_not)
{
  const char *v = json_string_value (json_object_get (scan, "verdict")) ?: "";
  json_t *matches = json_object_get (scan, "matches");
  json_t *sus = json_object_get (scan, "suspicious");
  size_t n = json_array_size (matches);

  *could_not = false;
  if (n > 0 || strcmp (v, "found") == 0) {
    CLEANUP_FREE char *first = n ? match_words (json_array_get (matches, 0))
      : xstrdup ("?");
    return n > 1 ? xasprintf ("infected: %s, and %zu more match%s", first,
                              n - 1, n > 2 ? "es" : "")
      : xasprintf ("infected: %s", first);
  }
  if (json_is_string (sus)) {
    CLEANUP_FREE char *why = xstrdup_printable (json_string_value (sus), false);
    return xasprintf ("suspicious (ransomware score at backup time): %.400s",
                      why);
  }
  if (strcmp (v, "clean") != 0) {
    json_t *ns = json_array_get (json_object_get (scan, "not_scanned"), 0);
    CLEANUP_FREE char *why = xstrdup_printable
      (json_string_value (json_object_get (ns, "reason")) ?: "", false);
    *could_not = true;
    return xasprintf ("could not verify: the scan is %s%s%.400s",
                      v[0] ? v : "unknown", why[0] ? ": " : "", why);
  }
  return NULL;
}

/* What the scan found, a line each (the check's output): its matches,
 * what was not scanned and why, the suspicious mark.  Guest text is made
 * printable here; the reports escape it again for their format. */
#define SCAN_OUTPUT_LINES 100
static char *
scan_output (json_t *scan)
{
  json_t *m, *ns = json_object_get (scan, "not_scanned");
  json_t *sus = json_object_get (scan, "suspicious");
  CLEANUP_FREE char *text = xasprintf ("%s: %s\n", json_string_value
                                       (json_object_get (scan, "point")) ?: "?",
                                       json_string_value (json_object_get
                                                          (scan, "verdict"))
                                       ?: "?");
  size_t i;

  json_array_foreach (json_object_get (scan, "matches"), i, m) {
    CLEANUP_FREE char *w = i < SCAN_OUTPUT_LINES ? match_words (m) : NULL;
    if (w)
      append_line (&text, "found: %s", w);
  }
  json_array_foreach (ns, i, m) {
    CLEANUP_FREE char *disk = xstrdup_printable
      (json_string_value (json_object_get (m, "disk")) ?: "?", false);
    CLEANUP_FREE char *part = part_words (json_object_get (m, "partition"));
    CLEANUP_FREE char *fs = xstrdup_printable
      (json_string_value (json_object_get (m, "fs")) ?: "-", false);
    CLEANUP_FREE char *why = xstrdup_printable
      (json_string_value (json_object_get (m, "reason")) ?: "?", false);
    CLEANUP_FREE char *vol = volume_words (m);
    if (i < SCAN_OUTPUT_LINES)
      append_line (&text, "not scanned: disk %s partition %s%s (%s): %s", disk,
                   json_object_get (m, "partition") ? part : "-", vol, fs, why);
  }
  if (json_is_string (sus)) {
    CLEANUP_FREE char *why = xstrdup_printable (json_string_value (sus), false);
    append_line (&text, "suspicious: %s", why);
  }
  return xstrdup (text);
}

void
verify_scan_verdict (json_t *scan, bool force, struct verify_check_result *r)
{
  CLEANUP_FREE char *why = NULL;
  bool could_not = true;

  r->scan = scan;
  if (scan)
    r->output = scan_output (scan);
  if (!scan) {
    r->status = VERIFY_SKIP;
    r->message = xasprintf ("could not verify: could not scan: %s", error_msg ());
    return;
  }
  why = scan_problem (scan, &could_not);
  if (!why) {
    json_t *from = json_object_get (scan, "from");
    r->status = VERIFY_PASS;
    r->message = xasprintf ("clean (%s)", json_is_string (from) &&
                            strcmp (json_string_value (from), "catalog") == 0
                            ? "its last scan, from the catalog" : "scanned now");
  }
  else if (could_not) {
    r->status = VERIFY_SKIP;
    r->message = xstrdup (why);
  }
  else if (force) {
    r->status = VERIFY_PASS;
    r->message = xasprintf ("--force: passed anyway, %s", why);
  }
  else {
    r->status = VERIFY_FAIL;
    r->message = xstrdup (why);
  }
}

/* The scan check: one attempt (a scan says the same twice). */
static void
scan_run (const struct lab_check *c, const struct verify_target *t,
          struct verify_check_result *r)
{
  CLEANUP_FREE char *vm = t->point ? xstrdup (t->point) : NULL;
  char *at = vm ? strrchr (vm, '@') : NULL;
  json_t *scan = NULL;

  r->attempts = 1;
  if (!at)
    error_setx ("%s is not a restore point", t->vm);
  else if (!t->scan)
    error_setx ("no scanner in this process (run it with bootback lab run "
                "or bootback verify)");
  else {
    *at = '\0';
    scan = t->scan (t->scan_opaque, vm, at + 1, c->rules, c->signatures);
  }
  verify_scan_verdict (scan, t->scan_force, r);
}

const char *
verify_kind_name (enum lab_check_kind k)
{
  return (size_t) k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

void
verify_check_run (const struct lab_check *c, const struct verify_target *t,
                  struct verify_check_result *r)
{
  double start = now_monotonic ();
  char msg[1024] = "";
  int i;

  r->name = xstrdup (c->name);
  r->kind = verify_kind_name (c->kind);
  r->status = VERIFY_FAIL;
  if (c->kind == LAB_CHECK_SCAN) {
    scan_run (c, t, r);
    r->seconds = now_monotonic () - start;
    return;
  }
  for (i = 0; i <= c->retries; i++) {
    double t0 = now_monotonic ();
    r->attempts = i + 1;
    if (attempt (c, t, r, msg, sizeof msg) == 0) {
      r->status = VERIFY_PASS;
      break;
    }
    if (lab_interrupted) {
      snprintf (msg + strlen (msg), sizeof msg - strlen (msg), " (interrupted)");
      break;
    }
    /* Keep attempts at least interval apart (an attempt that took its
     * whole timeout needs no extra wait). */
    if (i < c->retries) {
      double wait = c->interval - (now_monotonic () - t0);
      if (wait > 0 && lab_sleep (wait) == -1)
        break;
    }
  }
  /* the lab's host did not answer (ssh): the lab's fault, not the VM's */
  if (r->status == VERIFY_FAIL && strncmp (msg, "could not verify: ", 18) == 0)
    r->status = VERIFY_SKIP;
  r->message = xstrdup_printable (msg, false);   /* may quote the guest */
  r->seconds = now_monotonic () - start;
}

void
verify_check_result_clear (struct verify_check_result *r)
{
  free (r->name);
  free (r->message);
  free (r->output);
  free (r->screenshot);
  json_decref (r->scan);
  memset (r, 0, sizeof *r);
}
