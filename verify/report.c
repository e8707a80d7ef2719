/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reports of a lab run, written into the run's report directory:
 *   report.json   everything, for tools (the shape is verify_report_json)
 *   report.html   one self-contained page for people: verdict, timings,
 *                 every check, the console screenshots inline (data: URIs,
 *                 so the page can be mailed or archived alone) and the
 *                 console's last lines
 *   junit.xml     one <testsuite> per VM, one <testcase> per check, for CI
 *                 dashboards (verify/junit.xsd describes what we write)
 * and, once the run is recorded (verify_report_seal, from history.c),
 * each again with the run's evidence (report.json "evidence", a line at
 * the end of report.html) and signed: FILE.sig (sign.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include <libxml/xmlwriter.h>
#include <openssl/evp.h>

#include "verify/verify.h"
#include "recovery/util/util.h"
#include "recovery/virt/xml.h"

static json_t *
seconds_or_null (double s)
{
  return s >= 0 ? json_real (s) : json_null ();
}

static json_t *report_json_body (const struct verify_report *r);

/* What the VM's scan check found (verify_scan_fn's object), or NULL. */
static json_t *
vm_scan (const struct verify_vm_result *v)
{
  size_t j;

  for (j = 0; j < v->nchecks; j++)
    if (v->checks[j].scan)
      return v->checks[j].scan;
  return NULL;
}

/* "evidence": {"signed", "key", "unsigned_reason"?, "chain"}, once sealed. */
static json_t *
evidence_json (const struct verify_evidence *e)
{
  json_t *o = json_pack ("{s:b, s:o}", "signed", e->key[0] != '\0',
                         "key", e->key[0] ? json_string (e->key) : json_null ());

  if (!e->key[0])
    json_object_set_new (o, "unsigned_reason", json_string (e->unsigned_reason));
  json_object_set_new (o, "chain", !e->chain[0] ? json_null () : json_pack (
    "{s:I, s:s, s:s}", "catalog_id", (json_int_t) e->catalog_id,
    "hash", e->chain, "prev", e->prev));
  return o;
}

json_t *
verify_report_json (const struct verify_report *r)
{
  json_t *o = report_json_body (r);

  if (r->evidence.sealed)
    json_object_set_new (o, "evidence", evidence_json (&r->evidence));
  return o;
}

static json_t *
report_json_body (const struct verify_report *r)
{
  json_t *vms = json_array ();
  char iso[32], exp[32];
  size_t i, j;

  iso_time_format (r->started, iso);
  for (i = 0; i < r->nvms; i++) {
    const struct verify_vm_result *v = &r->vms[i];
    json_t *checks = json_array ();
    for (j = 0; j < v->nchecks; j++) {
      const struct verify_check_result *c = &v->checks[j];
      json_t *o = json_pack ("{s:s, s:s, s:s, s:s, s:i, s:f, s:f}",
                             "name", c->name, "kind", c->kind ? c->kind : "",
                             "status", verify_status_name (c->status),
                             "message", c->message ? c->message : "",
                             "attempts", c->attempts, "seconds", c->seconds,
                             "at", c->at);
      if (c->screenshot)
        json_object_set_new (o, "screenshot", json_string (c->screenshot));
      if (c->output)
        json_object_set_new (o, "output", json_string (c->output));
      json_array_append_new (checks, o);
    }
    json_array_append_new (vms, json_pack (
      "{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:{s:o, s:o, s:o, s:o}, s:o, s:s?}",
      "name", v->name, "group", v->group, "source", v->source ? v->source : "",
      "domain", v->domain, "address", v->address,
      "status", verify_status_name (v->status), "message", v->message,
      "timings", "boot", seconds_or_null (v->t_boot),
      "heartbeat", seconds_or_null (v->t_heartbeat),
      "app_ready", seconds_or_null (v->t_app_ready),
      "start", seconds_or_null (v->t_start),
      "checks", checks, "console", v->console));
    {
      json_t *notes = json_array ();
      for (j = 0; j < v->nnotes; j++)
        json_array_append_new (notes, json_string (v->notes[j]));
      json_object_set_new (json_array_get (vms, json_array_size (vms) - 1), "notes",
                           notes);
      if (v->suspicious)
        json_object_set_new (json_array_get (vms, json_array_size (vms) - 1),
                             "suspicious", json_string (v->suspicious));
      if (vm_scan (v))
        json_object_set_new (json_array_get (vms, json_array_size (vms) - 1),
                             "scan", json_deep_copy (vm_scan (v)));
    }
  }
  if (r->expires)
    iso_time_format (r->expires, exp);
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s?, s:s?, s:s?,"
                    " s:{s:i, s:i, s:i, s:i, s:i}, s:{s:f, s:f}, s:o}",
                    "lab", r->lab, "run", r->run_id ? r->run_id : "",
                    "kind", r->kind, "file", r->file ? r->file : "",
                    "started", iso, "seconds", r->seconds, "status", r->status,
                    "message", r->message, "netns", r->expires ? r->netns : NULL,
                    "expires", r->expires ? exp : NULL,
                    "summary", "vms", (int) r->nvms, "checks", r->checks,
                    "passed", r->passed, "failed", r->failed, "skipped", r->skipped,
                    "phases", "setup", r->t_setup, "teardown", r->t_teardown,
                    "vms", vms);
}

/* ---- HTML ---------------------------------------------------------------- */

/* The report page's footer line: a lab check's section goes before it. */
#define REPORT_FOOTER "<p class=\"meta\">bootback verification lab"

struct out {
  FILE *f;
  char *buf;
  size_t len;
};

static void __attribute__((format (printf, 2, 3)))
put (struct out *o, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vfprintf (o->f, fmt, ap);
  va_end (ap);
}

void
verify_html_escape (FILE *f, const char *s)
{
  for (; s && *s; s++)
    switch (*s) {
    case '<': fputs ("&lt;", f); break;
    case '>': fputs ("&gt;", f); break;
    case '&': fputs ("&amp;", f); break;
    case '"': fputs ("&quot;", f); break;
    case '\'': fputs ("&#39;", f); break;
    default: fputc (*s, f);
    }
}

/* HTML-escaped text. */
static void
esc (struct out *o, const char *s)
{
  verify_html_escape (o->f, s);
}

static void
secs (struct out *o, double s)
{
  if (s >= 0)
    put (o, "%.1f&nbsp;s", s);
  else
    put (o, "&mdash;");
}

/* The screenshot path as a base64 data: URI into o; false if it is not
 * a PNG file of ours.  The report directory may be one others can write
 * (--report-dir on a share): a link or a file of someone else's put
 * where the screenshot was is never read, so the page mailed or served
 * carries no host file. */
static bool
data_uri (struct out *o, const char *path)
{
  int fd = open (path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  unsigned char in[3 * 1024];
  unsigned char b64[4 * 1024 + 1];
  struct stat st;
  FILE *f = NULL;
  size_t n;

  if (fd == -1)
    return false;
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode) || st.st_uid != geteuid () ||
      pread (fd, in, 8, 0) != 8 || memcmp (in, "\x89PNG\r\n\x1a\n", 8) != 0 ||
      !(f = fdopen (fd, "r"))) {
    close (fd);
    return false;
  }
  put (o, "data:image/png;base64,");
  /* Whole 3-byte groups but for the last read, so no '=' in between. */
  while ((n = fread (in, 1, sizeof in, f)) > 0) {
    int k = EVP_EncodeBlock (b64, in, n);
    fwrite (b64, 1, k, o->f);
    if (n < sizeof in)
      break;
  }
  fclose (f);
  return true;
}

/* The document's head: title and style, the header's colour the verdict. */
static void
html_head (struct out *o, const struct verify_report *r)
{
  bool ok = strcmp (r->status, "passed") == 0;

  put (o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<title>bootback lab ");
  esc (o, r->lab);
  put (o, ": %s</title>\n", r->status);
  verify_html_style (o->f, ok ? "#1a7f37" : "#c62828");
  put (o, "</head>\n<body>\n");
}

void
verify_html_style (FILE *f, const char *header_colour)
{
  fprintf (f, "<style>\n"
       "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;"
       "background:#f4f5f7;color:#1d2025}\n"
       "header{padding:18px 28px;color:#fff;background:%s}\n"
       "header h1{margin:0;font-size:24px}header p{margin:4px 0 0;opacity:.9}\n"
       "main{padding:8px 28px 28px}\n"
       "table{border-collapse:collapse;background:#fff;margin:8px 0 16px;width:100%%}\n"
       "th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e5e8;"
       "vertical-align:top;font-size:14px}\n"
       "th{background:#eceef1}\n"
       ".pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}"
       ".skip{color:#8a8f98;font-weight:600}\n"
       "section{background:#fff;border-radius:6px;padding:12px 18px;margin:16px 0;"
       "box-shadow:0 1px 2px rgba(0,0,0,.08)}\n"
       "section h2{margin:4px 0 8px;font-size:19px}\n"
       ".shot{max-width:640px;width:100%%;border:1px solid #ccc}\n"
       "pre{background:#15171a;color:#d7dae0;padding:8px;overflow:auto;font-size:12px;"
       "max-height:260px}\n"
       ".meta{color:#5b616b;font-size:13px}\n"
       "</style>\n",
       header_colour);
}

/* The header: lab, verdict, counts, when, how long, which run. */
static void
html_header (struct out *o, const struct verify_report *r)
{
  char iso[32];

  iso_time_format (r->started, iso);
  put (o, "<header><h1>Lab <span id=\"lab\">");
  esc (o, r->lab);
  put (o, "</span>: <span id=\"status\">%s</span></h1>\n<p>", r->status);
  put (o, "%zu VM%s, %d checks: %d passed, %d failed, %d skipped &middot; "
       "started %s &middot; %.1f s &middot; run ", r->nvms, r->nvms == 1 ? "" : "s",
       r->checks, r->passed, r->failed, r->skipped, iso, r->seconds);
  esc (o, r->run_id);
  put (o, "</p>");
  if (r->message) {
    put (o, "<p>");
    esc (o, r->message);
    put (o, "</p>");
  }
  put (o, "</header>\n<main>\n");
}

/* One row per VM: verdict and timings, a link to its section. */
static void
html_summary (struct out *o, const struct verify_report *r)
{
  size_t i;

  put (o, "<table id=\"summary\">\n<tr><th>VM</th><th>group</th><th>result</th>"
       "<th>boot</th><th>heartbeat</th><th>app ready</th><th>address</th>"
       "<th>from</th></tr>\n");
  for (i = 0; i < r->nvms; i++) {
    const struct verify_vm_result *v = &r->vms[i];
    put (o, "<tr><td><a href=\"#vm-%zu\">", i);
    esc (o, v->name);
    put (o, "</a></td><td>");
    esc (o, v->group);
    put (o, "</td><td class=\"%s\">%s</td><td>", verify_status_name (v->status),
         v->status == VERIFY_PASS ? "passed" : "FAILED");
    secs (o, v->t_boot);
    put (o, "</td><td>");
    secs (o, v->t_heartbeat);
    put (o, "</td><td>");
    secs (o, v->t_app_ready);
    put (o, "</td><td>");
    esc (o, v->address ? v->address : "");
    put (o, "</td><td>");
    esc (o, v->source);
    if (v->suspicious)
      put (o, " <span class=\"fail\">suspicious</span>");
    put (o, "</td></tr>\n");
  }
  put (o, "</table>\n");
}

/* A VM's checks as a table; the last screenshot taken (NULL if none). */
static const char *
html_checks (struct out *o, const struct verify_vm_result *v)
{
  const char *shot = NULL;
  size_t j;

  put (o, "<table><tr><th>check</th><th>result</th><th>time</th>"
       "<th>attempts</th><th>details</th></tr>\n");
  for (j = 0; j < v->nchecks; j++) {
    const struct verify_check_result *c = &v->checks[j];
    put (o, "<tr><td>");
    esc (o, c->name);
    put (o, "</td><td class=\"%s\">%s</td><td>", verify_status_name (c->status),
         verify_status_name (c->status));
    secs (o, c->status == VERIFY_SKIP ? -1 : c->seconds);
    put (o, "</td><td>%d</td><td>", c->attempts);
    esc (o, c->message);
    if (c->output && *c->output) {
      put (o, "<pre>");
      esc (o, c->output);
      put (o, "</pre>");
    }
    put (o, "</td></tr>\n");
    if (c->screenshot)
      shot = c->screenshot;
  }
  put (o, "</table>\n");
  return shot;
}

/* The VM's malware scan in one line (its findings are the scan check's
 * output, in the table below). */
static void
html_scan (struct out *o, json_t *scan)
{
  const char *v = json_string_value (json_object_get (scan, "verdict"));
  const char *from = json_string_value (json_object_get (scan, "from"));

  if (!scan)
    return;
  put (o, "<p class=\"%s\">Malware scan of ", v && strcmp (v, "clean") == 0
       ? "pass" : "fail");
  esc (o, json_string_value (json_object_get (scan, "point")) ?: "?");
  put (o, ": ");
  esc (o, v ? v : "?");
  put (o, ", %zu match%s, %zu not scanned (%s)</p>\n",
       json_array_size (json_object_get (scan, "matches")),
       json_array_size (json_object_get (scan, "matches")) == 1 ? "" : "es",
       json_array_size (json_object_get (scan, "not_scanned")),
       from && strcmp (from, "catalog") == 0 ? "its last scan, from the catalog"
       : "scanned by this run");
}

/* A VM's section: verdict, domain and source, checks, the screenshot
 * inline, the console's last lines. */
static void
html_vm (struct out *o, const struct verify_report *r, size_t i)
{
  const struct verify_vm_result *v = &r->vms[i];
  const char *shot;

  put (o, "<section id=\"vm-%zu\" class=\"vm\"><h2>", i);
  esc (o, v->name);
  put (o, " <span class=\"%s\">%s</span></h2>\n<p class=\"meta\">",
       verify_status_name (v->status), v->status == VERIFY_PASS ? "passed" : "failed");
  esc (o, v->domain ? v->domain : "not started");
  put (o, " &middot; ");
  esc (o, v->source);
  if (v->message) {
    put (o, " &middot; ");
    esc (o, v->message);
  }
  put (o, "</p>\n");
  if (v->suspicious) {
    put (o, "<p class=\"fail\">Suspicious restore point (ransomware score at backup "
         "time): ");
    esc (o, v->suspicious);
    put (o, "</p>\n");
  }
  html_scan (o, vm_scan (v));
  shot = html_checks (o, v);
  if (shot) {
    CLEANUP_FREE char *path = xasprintf ("%s/%s", r->dir, shot);
    put (o, "<p><img class=\"shot\" alt=\"console of ");
    esc (o, v->name);
    put (o, "\" src=\"");
    if (!data_uri (o, path))
      esc (o, shot);
    put (o, "\"></p>\n");
  }
  if (v->console && *v->console) {
    put (o, "<details><summary>console (last lines)</summary><pre>");
    esc (o, v->console);
    put (o, "</pre></details>\n");
  }
  put (o, "</section>\n");
}

/* Whether the page is signed and its run chained (once sealed). */
static void
html_evidence (struct out *o, const struct verify_evidence *e)
{
  if (!e->sealed)
    return;
  put (o, "<p class=\"meta\" id=\"evidence\">");
  if (e->key[0])
    put (o, "signed (report.html.sig), key %s", e->key);
  else {
    put (o, "<span class=\"fail\">NOT SIGNED</span>: ");
    esc (o, e->unsigned_reason);
  }
  if (e->chain[0])
    put (o, " &middot; run #%" PRId64 " in the catalog's run chain, hash %s",
         e->catalog_id, e->chain);
  else
    put (o, " &middot; not in the catalog's run chain");
  put (o, "</p>\n");
}

char *
verify_report_html (const struct verify_report *r)
{
  struct out o = { 0 };
  size_t i;

  o.f = open_memstream (&o.buf, &o.len);
  if (!o.f)
    abort ();
  html_head (&o, r);
  html_header (&o, r);
  html_summary (&o, r);
  for (i = 0; i < r->nvms; i++)
    html_vm (&o, r, i);
  put (&o, "%s &middot; definition ", REPORT_FOOTER);
  esc (&o, r->file);
  put (&o, "</p>\n");
  html_evidence (&o, &r->evidence);
  put (&o, "</main>\n</body>\n</html>\n");
  fclose (o.f);
  return o.buf;
}

/* ---- JUnit ------------------------------------------------------------------ */

/* Each writer call: -1 from the function on failure. */
#define W(call) do { if ((call) < 0) return -1; } while (0)

static int
attr_printf (xmlTextWriterPtr w, const char *name, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));
static int
attr_printf (xmlTextWriterPtr w, const char *name, const char *fmt, ...)
{
  char buf[256];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  return xmlTextWriterWriteAttribute (w, BAD_CAST name, BAD_CAST buf);
}

/* Only characters XML 1.0 allows (console output may hold others). */
static char *
xml_clean (const char *s)
{
  char *c = xstrdup (s ? s : "");
  unsigned char *p;

  for (p = (unsigned char *) c; *p; p++)
    if (*p < 32 && *p != '\n' && *p != '\t' && *p != '\r')
      *p = '?';
    else if (*p >= 0x80)
      *p = '?';
  return c;
}

static int
write_text_attr (xmlTextWriterPtr w, const char *name, const char *value)
{
  CLEANUP_FREE char *c = xml_clean (value);
  return xmlTextWriterWriteAttribute (w, BAD_CAST name, BAD_CAST c);
}

/* A VM's properties: where it came from, its timings. */
static int
junit_properties (xmlTextWriterPtr w, const struct verify_vm_result *v)
{
  const char *names[] = { "group", "source", "domain", "address" };
  const char *values[] = { v->group, v->source, v->domain, v->address };
  double tv[] = { v->t_boot, v->t_heartbeat, v->t_app_ready };
  const char *tn[] = { "time_to_boot", "time_to_heartbeat", "time_to_app_ready" };
  size_t k;

  W (xmlTextWriterStartElement (w, BAD_CAST "properties"));
  for (k = 0; k < 4; k++) {
    if (!values[k])
      continue;
    W (xmlTextWriterStartElement (w, BAD_CAST "property"));
    W (write_text_attr (w, "name", names[k]));
    W (write_text_attr (w, "value", values[k]));
    W (xmlTextWriterEndElement (w));
  }
  for (k = 0; k < 3; k++) {
    if (tv[k] < 0)
      continue;
    W (xmlTextWriterStartElement (w, BAD_CAST "property"));
    W (write_text_attr (w, "name", tn[k]));
    W (attr_printf (w, "value", "%.3f", tv[k]));
    W (xmlTextWriterEndElement (w));
  }
  if (vm_scan (v)) {
    json_t *scan = vm_scan (v);
    W (xmlTextWriterStartElement (w, BAD_CAST "property"));
    W (write_text_attr (w, "name", "scan"));
    W (write_text_attr (w, "value", json_string_value
                        (json_object_get (scan, "verdict")) ?: "?"));
    W (xmlTextWriterEndElement (w));
    W (xmlTextWriterStartElement (w, BAD_CAST "property"));
    W (write_text_attr (w, "name", "scan_matches"));
    W (attr_printf (w, "value", "%zu", json_array_size
                    (json_object_get (scan, "matches"))));
    W (xmlTextWriterEndElement (w));
  }
  W (xmlTextWriterEndElement (w));          /* properties */
  return 0;
}

/* One check: a testcase, with its failure or skip and its output. */
static int
junit_case (xmlTextWriterPtr w, const char *classname,
            const struct verify_check_result *c)
{
  W (xmlTextWriterStartElement (w, BAD_CAST "testcase"));
  W (write_text_attr (w, "name", c->name));
  W (write_text_attr (w, "classname", classname));
  W (attr_printf (w, "time", "%.3f", c->seconds));
  if (c->status == VERIFY_FAIL) {
    CLEANUP_FREE char *m = xml_clean (c->message);
    W (xmlTextWriterStartElement (w, BAD_CAST "failure"));
    W (write_text_attr (w, "message", c->message));
    W (write_text_attr (w, "type", c->kind && *c->kind ? c->kind : "check"));
    W (xmlTextWriterWriteString (w, BAD_CAST m));
    W (xmlTextWriterEndElement (w));
  }
  else if (c->status == VERIFY_SKIP) {
    W (xmlTextWriterStartElement (w, BAD_CAST "skipped"));
    W (write_text_attr (w, "message", c->message));
    W (xmlTextWriterEndElement (w));
  }
  if (c->output && *c->output) {
    CLEANUP_FREE char *m = xml_clean (c->output);
    W (xmlTextWriterWriteElement (w, BAD_CAST "system-out", BAD_CAST m));
  }
  W (xmlTextWriterEndElement (w));          /* testcase */
  return 0;
}

/* One VM: a testsuite with its counts, properties, checks and console. */
static int
junit_suite (xmlTextWriterPtr w, const struct verify_report *r,
             const struct verify_vm_result *v, const char *timestamp)
{
  CLEANUP_FREE char *cls = xasprintf ("%s.%s.%s", r->lab, v->group, v->name);
  int fails = 0, skips = 0;
  double t = 0;
  size_t j;

  for (j = 0; j < v->nchecks; j++) {
    fails += v->checks[j].status == VERIFY_FAIL;
    skips += v->checks[j].status == VERIFY_SKIP;
    t += v->checks[j].seconds;
  }
  W (xmlTextWriterStartElement (w, BAD_CAST "testsuite"));
  W (write_text_attr (w, "name", v->name));
  W (attr_printf (w, "tests", "%zu", v->nchecks));
  W (attr_printf (w, "failures", "%d", fails));
  W (attr_printf (w, "errors", "0"));
  W (attr_printf (w, "skipped", "%d", skips));
  W (attr_printf (w, "time", "%.3f", t));
  W (write_text_attr (w, "timestamp", timestamp));
  W (write_text_attr (w, "hostname", r->run_id ? r->run_id : "lab"));
  W (junit_properties (w, v));
  for (j = 0; j < v->nchecks; j++)
    W (junit_case (w, cls, &v->checks[j]));
  if (v->console && *v->console) {
    CLEANUP_FREE char *m = xml_clean (v->console);
    W (xmlTextWriterWriteElement (w, BAD_CAST "system-out", BAD_CAST m));
  }
  W (xmlTextWriterEndElement (w));          /* testsuite */
  return 0;
}

/* The document: one testsuites with the run's counts, a suite per VM. */
static int
junit_write (xmlTextWriterPtr w, const void *arg)
{
  const struct verify_report *r = arg;
  char iso[32], suite[256];
  size_t i;

  iso_time_format (r->started, iso);
  iso[19] = '\0';                     /* JUnit timestamps have no zone */
  xmlTextWriterSetIndent (w, 1);
  W (xmlTextWriterStartDocument (w, NULL, "UTF-8", NULL));
  W (xmlTextWriterStartElement (w, BAD_CAST "testsuites"));
  snprintf (suite, sizeof suite, "bootback lab %s", r->lab);
  W (write_text_attr (w, "name", suite));
  W (attr_printf (w, "tests", "%d", r->checks));
  W (attr_printf (w, "failures", "%d", r->failed));
  W (attr_printf (w, "errors", "%d", strcmp (r->status, "error") == 0 ? 1 : 0));
  W (attr_printf (w, "skipped", "%d", r->skipped));
  W (attr_printf (w, "time", "%.3f", r->seconds));
  for (i = 0; i < r->nvms; i++)
    W (junit_suite (w, r, &r->vms[i], iso));
  W (xmlTextWriterEndElement (w));            /* testsuites */
  W (xmlTextWriterEndDocument (w));
  return 0;
}

char *
verify_report_junit (const struct verify_report *r)
{
  return virt_xml_write (junit_write, r, "the JUnit report");
}

/* The temporary name is fixed: what is there is removed first (a run of
 * ours that died, or a file someone put there in a report directory
 * others can write, which would refuse every run's write). */
static int
write_file (const char *dir, const char *name, const char *text)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s", dir, name);
  CLEANUP_FREE char *tmp = xasprintf ("%s/.%s.tmp", dir, name);

  if (verify_write_new (tmp, text) == -1)
    return -1;                  /* the error names tmp */
  if (rename (tmp, path) == -1) {
    error_set (errno, "rename %s", path);
    return -1;
  }
  return 0;
}

static const char *const report_files[] = { "report.json", "report.html", "junit.xml" };
#define NREPORT_FILES (sizeof report_files / sizeof report_files[0])

/* The texts of report_files written into r->dir (NULL: not made); -1 if
 * one was not made or written. */
static int
report_write (const struct verify_report *r, char *texts[NREPORT_FILES])
{
  json_t *j = verify_report_json (r);
  size_t i;
  int ret = 0;

  texts[0] = json_dumps (j, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (j);
  texts[1] = verify_report_html (r);
  texts[2] = verify_report_junit (r);
  for (i = 0; i < NREPORT_FILES; i++)
    if (!texts[i] || write_file (r->dir, report_files[i], texts[i]) == -1)
      ret = -1;
  return ret;
}

int
verify_report_write (const struct verify_report *r)
{
  char *texts[NREPORT_FILES];
  int ret = report_write (r, texts);
  size_t i;

  for (i = 0; i < NREPORT_FILES; i++)
    free (texts[i]);
  return ret;
}

/* The section of a lab check in report.html. */
static char *
recheck_html (json_t *k)
{
  struct out o = { 0 };
  json_t *row;
  size_t i;

  o.f = open_memstream (&o.buf, &o.len);
  if (!o.f)
    abort ();
  put (&o, "<section class=\"recheck\"><h2>lab check ");
  esc (&o, json_string_value (json_object_get (k, "checked")));
  put (&o, "</h2>\n<p class=\"meta\">the sandbox's checks again, against the run "
       "at lab up; isolation: ");
  esc (&o, json_string_value (json_object_get (k, "isolation")));
  put (&o, "</p>\n<table><tr><th>VM</th><th>check</th><th>at lab up</th><th>now</th>"
       "<th>details</th></tr>\n");
  json_array_foreach (json_object_get (k, "checks"), i, row) {
    const char *was = json_string_value (json_object_get (row, "before"));
    const char *now = json_string_value (json_object_get (row, "now"));
    put (&o, "<tr><td>");
    esc (&o, json_string_value (json_object_get (row, "vm")));
    put (&o, "</td><td>");
    esc (&o, json_string_value (json_object_get (row, "check")));
    put (&o, "</td><td class=\"%s\">%s</td><td class=\"%s\">%s%s</td><td>",
         was ? was : "skip", was ? was : "-", now, now,
         json_is_true (json_object_get (row, "regressed")) ? " (regressed)" : "");
    esc (&o, json_string_value (json_object_get (row, "message")));
    put (&o, "</td></tr>\n");
  }
  put (&o, "</table></section>\n");
  fclose (o.f);
  return o.buf;
}

/* A file of a report directory (not a link: O_NOFOLLOW), NUL-ended, or
 * NULL with the error set (and *missing if it is not there). */
static char *
read_report_file (const char *path, size_t *len, bool *missing)
{
  unsigned char *buf;

  *missing = false;
  if (verify_read_file (path, O_NOFOLLOW, &buf, len) == -1) {
    *missing = error_errno () == ENOENT;
    return NULL;
  }
  return (char *) buf;
}

/* data (path's bytes) as key signed them: 0, else -1 with the error. */
static int
signed_as_is (const struct verify_key *key, const char *path, const char *data,
              size_t len)
{
  enum verify_sig_verdict v;
  char signer[VERIFY_KEY_FPR_LEN + 1], msg[512];

  if (verify_sig_check_data (key, path, data, len, &v, signer, msg, sizeof msg) == -1)
    return -1;
  if (v != VERIFY_SIG_GOOD) {
    error_setx ("%s: %s: not added to or signed again", path, msg);
    return -1;
  }
  return 0;
}

/* Write text as dir/name and, with key, sign what was written. */
static int
write_signed (const char *dir, const char *name, const char *text,
              const struct verify_key *key)
{
  CLEANUP_FREE char *path = xasprintf ("%s/%s", dir, name);

  if (write_file (dir, name, text) == -1)
    return -1;
  return key ? verify_sign_data (key, path, text, strlen (text)) : 0;
}

int
verify_report_add_recheck (const char *dir, json_t *recheck,
                           const struct verify_key *key)
{
  CLEANUP_FREE char *jp = xasprintf ("%s/recheck.json", dir);
  CLEANUP_FREE char *hp = xasprintf ("%s/report.html", dir);
  CLEANUP_FREE char *html = NULL, *sect = NULL, *out = NULL, *js = NULL, *old = NULL;
  json_t *all;
  size_t hlen, jlen;
  bool missing;
  char *at;

  if (!(html = read_report_file (hp, &hlen, &missing)) ||
      (key && signed_as_is (key, hp, html, hlen) == -1))
    return -1;
  old = read_report_file (jp, &jlen, &missing);
  if ((!old && !missing) || (old && key && signed_as_is (key, jp, old, jlen) == -1))
    return -1;
  all = old ? json_loadb (old, jlen, 0, NULL) : NULL;
  if (!json_is_array (all)) {
    json_decref (all);
    all = json_array ();
  }
  json_array_append (all, recheck);
  js = json_dumps (all, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (all);
  at = strstr (html, REPORT_FOOTER);
  if (!at) {
    error_setx ("%s: no footer to put the lab check before", hp);
    return -1;
  }
  if (!js || write_signed (dir, "recheck.json", js, key) == -1)
    return -1;
  sect = recheck_html (recheck);
  out = xasprintf ("%.*s%s%s", (int) (at - html), html, sect, at);
  return write_signed (dir, "report.html", out, key);
}

/* What is signed is what was written: the report directory may be one
 * others can write (a share), who could put a file of theirs in place of
 * one of ours before it is read back. */
int
verify_report_seal (const struct verify_report *r, const struct verify_key *key)
{
  char *texts[NREPORT_FILES];
  size_t i;
  int ret = report_write (r, texts);

  for (i = 0; ret == 0 && i < NREPORT_FILES; i++) {
    CLEANUP_FREE char *path = xasprintf ("%s/%s", r->dir, report_files[i]);
    if (key) {
      if (verify_sign_data (key, path, texts[i], strlen (texts[i])) == -1)
        ret = -1;
    }
    else {
      /* no signature of an earlier report in the same directory left */
      CLEANUP_FREE char *sig = xasprintf ("%s%s", path, VERIFY_SIG_SUFFIX);
      if (unlink (sig) == -1 && errno != ENOENT) {
        error_set (errno, "remove %s", sig);
        ret = -1;
      }
    }
  }
  for (i = 0; i < NREPORT_FILES; i++)
    free (texts[i]);
  return ret;
}
