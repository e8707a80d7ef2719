/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Lab VMs: boot one on the lab bridge and destroy it.
 *
 * An image VM (image: in the definition) runs from a throwaway qcow2
 * overlay in the run directory whose backing file is the image, as a
 * transient libvirt domain "bbl-<run id>-<vm>": destroying the domain
 * leaves no definition behind, and removing the overlay leaves no disk.
 * A restore-point VM (point:) is booted through instant recovery: a
 * transient session named like the domain, identity LAB (new UUID, the
 * production MACs), every NIC on the lab bridge, overlays in the run
 * directory, removed when the session stops.
 *
 * Fail closed: the final XML is checked before the domain starts (for a
 * restore point, by instant_start through its check_xml hook) — every
 * interface must be on the lab bridge, and nothing off the allow-list of
 * recovery/instant/sanitize.c may be in it (unless allow_passthrough) —
 * and the taps libvirt made are hardened (IPv6 off) as soon as it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "lab/lab.h"
#include "recovery/catalog/catalog.h"
#include "recovery/instant/instant.h"
#include "recovery/repo/trace.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"

/* A VM on another host: its serial console is a pty there, so it is
 * copied here, into the run directory's NAME.console, where the same
 * watchers read it as a local VM's log (failed-boot lines, activity, the
 * report's last lines).  A thread polls the console's libvirt stream
 * (non-blocking) every 50 ms until the stream ends or the VM is
 * destroyed; at most CONSOLE_COPY_MAX bytes are written (a guest's flood
 * ends the copy, not the lab; the stream is still drained).  What the
 * guest writes is only ever read back as text by those watchers. */
#define CONSOLE_COPY_MAX (16u << 20)
struct console_copy {
  virStreamPtr st;
  int fd;
  pthread_t thread;
  volatile bool stop;
};

struct lab_vm_handle {
  struct console_copy *console;    /* another host's VM: its console here */
  virConnectPtr conn;
  virDomainPtr dom;
  char *home;                  /* instant sessions: the catalog's home */
  int64_t session;             /* instant session id, 0 if none */
  char *source;                /* "vm@id" of the restore point, or NULL */
  char *name;
  char *overlay;
  char *serial;
  char **taps;
  void (*warn) (void *opaque, const char *line);   /* lab_vm_env's */
  void *warn_opaque;
  const struct repo_open_opts *repo_open;          /* lab_vm_env's */
};

void
lab_virt_quiet (void)
{
  virt_init ();
}

/* A warning of cleanup: to the caller's callback, else stderr. */
static void
warn (const struct lab_vm_handle *h, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
static void
warn (const struct lab_vm_handle *h, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  report_linev (h->warn, h->warn_opaque, "", fmt, ap);
  va_end (ap);
}

void
lab_vm_prefix (const char *run_id, char out[32])
{
  snprintf (out, 32, "bbl-%s-", run_id);
}

static int
overlay_create (const char *image, const char *format, const char *overlay)
{
  char out[2048];
  char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F",
                   (char *) format, "-b", (char *) image, (char *) overlay, NULL };
  int r = run_command (argv, out, sizeof out);

  if (r != 0) {
    if (r > 0)
      error_setx ("qemu-img create %s: %s", overlay, out);
    return -1;
  }
  return 0;
}

/* The final XML of a session's domain, before it is started: every NIC
 * on the lab bridge (the allow-list is instant_start's own check). */
struct final_check {
  const char *bridge, *name;
};

static int
check_final (void *opaque, const char *xml)
{
  const struct final_check *ck = opaque;

  return lab_domain_check (xml, ck->bridge, ck->name, NULL);
}

uint64_t
lab_console_copy_loop (int (*recv) (void *opaque, char *buf, size_t len),
                       void *opaque, int fd, volatile bool *stop, uint64_t max)
{
  uint64_t total = 0;
  char buf[16384];

  /* Past the cap (or a failed write) the stream is still read, and what
   * it brings dropped: libvirt's client queues every byte of a stream
   * nobody reads in this process's memory, without a limit, so a guest
   * flooding its serial port would grow it until the lab ends. */
  while (!*stop) {
    int n = recv (opaque, buf, sizeof buf);
    if (n == -2) {
      usleep (50000);
      continue;
    }
    if (n <= 0)
      break;
    n = (int) MIN ((uint64_t) n, max - total);
    for (int off = 0; off < n; ) {       /* a regular file: short only on error */
      ssize_t w = write (fd, buf + off, n - off);
      if (w <= 0) {
        max = total;                     /* nothing more is written */
        break;
      }
      off += w;
      total += w;
    }
  }
  return total;
}

static int
console_recv (void *opaque, char *buf, size_t len)
{
  return virt_stream_recv (opaque, buf, len);
}

static void *
console_copy_thread (void *arg)
{
  struct console_copy *c = arg;

  lab_console_copy_loop (console_recv, c->st, c->fd, &c->stop, CONSOLE_COPY_MAX);
  return NULL;
}

/* Start copying h->dom's console into path (made 0600 here, never
 * through a link).  -1 with the error set. */
static int
console_copy_start (struct lab_vm_handle *h, const char *path)
{
  struct console_copy *c = xcalloc (1, sizeof *c);
  int e;

  c->fd = open_private (path, O_WRONLY | O_APPEND);
  if (c->fd == -1) {
    error_set (errno, "%s", path);
    free (c);
    return -1;
  }
  if (virt_event_thread_start () == -1 || !(c->st = virt_console_open (h->dom, false))) {
    close (c->fd);
    free (c);
    return -1;
  }
  if ((e = pthread_create (&c->thread, NULL, console_copy_thread, c)) != 0) {
    error_set (e, "console copy");
    virt_stream_close (c->st);
    close (c->fd);
    free (c);
    return -1;
  }
  h->console = c;
  return 0;
}

static void
console_copy_stop (struct lab_vm_handle *h)
{
  struct console_copy *c = h->console;

  if (!c)
    return;
  c->stop = true;
  pthread_join (c->thread, NULL);
  virt_stream_close (c->st);
  close (c->fd);
  free (c);
  h->console = NULL;
}

/* Boot a restore point as a transient instant-recovery session. */
static int
start_point (const struct lab_vm_env *env, const struct lab_vm *vm,
             struct lab_vm_handle *h, bool *point_fault)
{
  CLEANUP_FREE char *point = xasprintf ("%s@%s", vm->name, vm->point);
  CLEANUP_FREE char *net = xasprintf ("bridge:%s", env->net->bridge);
  CLEANUP_FREE char *owner = xasprintf ("lab run %s", env->run_id);
  CLEANUP_FREE char *xml = NULL;
  struct instant_session *s = xcalloc (1, sizeof *s);
  struct final_check ck = { .bridge = env->net->bridge, .name = vm->name };
  struct instant_opts o = {
    .home = env->home, .repo = env->repo, .point = point, .uri = env->uri,
    .name = h->name, .identity = INSTANT_IDENTITY_LAB, .network = net,
    .overlay_dir = env->run_dir, .transient = true, .agent_timeout = 0,
    .memory_mib = vm->memory_mib, .allow_passthrough = env->allow_passthrough,
    /* the budget reserved this much for it: no more, whatever it saved */
    .memory_cap_mib = vm->memory_mib ? vm->memory_mib : LAB_VM_MEMORY_MIB,
    .bios_serial = true, .read_retries = 3,
    .owner = owner, .note = env->note, .note_opaque = env->note_opaque,
    .check_xml = check_final, .check_opaque = &ck,
  };

  if (env->instant) {
    o.domain_type = env->instant->domain_type;
    o.overlay_min_free = env->instant->overlay_min_free;
    o.repo_open = env->instant->repo_open;
  }
  if (lab_host_remote (env->net->host)) {
    /* its network is there: overlays in the host's pool, the point
     * served to it with TLS (instant's remote session) */
    o.lab_remote = true;
    o.overlay_dir = NULL;
  }
  struct catalog *cat;
  int r = -1;

  if (!env->home || !env->repo) {
    error_setx ("VM %s: a restore point needs a repository", vm->name);
    goto out;
  }
  cat = catalog_open (env->home);
  if (!cat)
    goto out;
  h->home = xstrdup (env->home);
  if (instant_start (cat, &o, s) == -1) {
    *point_fault = s->point_fault;
    error_prefix ("VM %s: instant recovery of %s", vm->name, point);
    catalog_close (cat);
    goto out;
  }
  catalog_close (cat);
  h->session = s->id;
  h->source = xasprintf ("%s@%s", s->vm, s->point);
  free (h->serial);
  h->serial = xstrdup (s->console_log);
  h->dom = virt_domain_by_name (env->conn, s->name);
  if (!h->dom) {
    virt_error_set ("VM %s: the session's domain", vm->name);
    goto out;
  }
  if (!s->console_log[0]) {
    /* a pty on the VM's host: copied here (console_copy) */
    free (h->serial);
    h->serial = xasprintf ("%s/%s.console", env->run_dir, vm->name);
    if (console_copy_start (h, h->serial) == -1) {
      if (env->note) {
        CLEANUP_FREE char *line = xasprintf ("its serial console is not copied here "
                                             "(%s): console lines are not watched "
                                             "for a failed boot", error_msg ());
        env->note (env->note_opaque, line);
      }
      error_clear ();
    }
  }
  /* Fail closed: every NIC must be on the lab bridge. */
  xml = virt_domain_xml (h->dom, 0);
  if (!xml) {
    virt_error_set ("VM %s: XML", vm->name);
    goto out;
  }
  if (lab_domain_check (xml, env->net->bridge, vm->name, NULL) == -1) {
    *point_fault = true;      /* what the point's definition asked for */
    goto out;
  }
  r = 0;
 out:
  free (s);
  return r;
}

/* Boot an image VM: a throwaway overlay on the image, the lab's domain
 * XML checked against the allow-list, a transient domain. */
static int
start_image (const struct lab_vm_env *env, const struct lab_vm *vm,
             struct lab_vm_handle *h)
{
  struct lab_domain_spec spec = { 0 };
  struct instant_xml_disk d = { .name = "vda" };
  struct instant_xml_spec allowed = { .ndisks = 1, .disks = &d };
  CLEANUP_FREE char *xml = NULL;
  char mac[18];

  h->overlay = xasprintf ("%s/%s.qcow2", env->run_dir, vm->name);
  if (overlay_create (vm->image, vm->image_format ? vm->image_format : "raw",
                      h->overlay) == -1)
    return -1;
  if (vm->mac)
    snprintf (mac, sizeof mac, "%s", vm->mac);
  else
    lab_mac_from_name (vm->name, mac);
  spec.name = h->name;
  spec.disk = h->overlay;
  spec.disk_format = "qcow2";
  spec.bridge = env->net->bridge;
  spec.mac = mac;
  spec.memory_mib = vm->memory_mib ? vm->memory_mib : 256;
  spec.vcpus = vm->vcpus;
  spec.serial_log = h->serial;
  xml = lab_domain_xml (&spec);
  if (!xml)
    return -1;
  d.overlay = h->overlay;
  allowed.name = h->name;
  allowed.console_log = h->serial;
  if (lab_domain_check (xml, env->net->bridge, vm->name, &allowed) == -1)
    return -1;
  h->dom = virt_domain_create_xml (env->conn, xml, h->name);
  if (!h->dom) {
    virt_error_set ("VM %s: start", vm->name);
    return -1;
  }
  return 0;
}

/* The taps libvirt made: IPv6 off at once, and remembered so the
 * isolation check can tell them from foreign ports. */
static int
harden_taps (const struct lab_net *net, const struct lab_vm *vm, struct lab_vm_handle *h)
{
  CLEANUP_FREE char *live = virt_domain_xml (h->dom, 0);
  CLEANUP_STRV char **bridges = NULL;
  CLEANUP_STRV char **types = NULL;
  int i, n;

  if (!live) {
    virt_error_set ("VM %s: XML", vm->name);
    return -1;
  }
  n = lab_domain_interfaces (live, &h->taps, &bridges, &types);
  if (n < 0)
    return -1;
  for (i = 0; i < n; i++)
    if (h->taps[i][0] && lab_net_port_harden (net, h->taps[i]) == -1)
      return -1;
  return 0;
}

struct lab_vm_handle *
lab_vm_start (const struct lab_vm_env *env, const struct lab_vm *vm,
              bool *point_fault)
{
  struct lab_vm_handle *h = xcalloc (1, sizeof *h);
  char prefix[32];
  int r;

  h->conn = env->conn;
  h->warn = env->warn;
  h->warn_opaque = env->warn_opaque;
  h->repo_open = env->instant ? env->instant->repo_open : NULL;
  lab_vm_prefix (env->run_id, prefix);
  h->name = xasprintf ("%s%s", prefix, vm->name);
  h->serial = xasprintf ("%s/%s.console", env->run_dir, vm->name);
  *point_fault = false;
  r = vm->image ? start_image (env, vm, h) : start_point (env, vm, h, point_fault);
  if (r == 0 && harden_taps (env->net, vm, h) == 0)
    return h;
  {
    ERROR_SAVE (e);
    lab_vm_destroy (h);
    ERROR_RESTORE (e);
  }
  return NULL;
}

virDomainPtr
lab_vm_domain (struct lab_vm_handle *h)
{
  return h->dom;
}

const char *
lab_vm_domain_name (struct lab_vm_handle *h)
{
  return h->name;
}

const char *
lab_vm_source (struct lab_vm_handle *h)
{
  return h->source;
}

const char *
lab_vm_serial_log (struct lab_vm_handle *h)
{
  return h->serial;
}

/* The first error of one nbdkit log that names a chunk (bounded,
 * printable): the repository's fault, not a client's. */
static char *
log_first_error (const char *path)
{
  CLEANUP_FCLOSE FILE *f = fopen (path, "re");
  char line[1024];

  while (f && fgets (line, sizeof line, f)) {
    char *e = strstr (line, "error: ");
    if (e && strstr (e, "chunk")) {
      e += strlen ("error: ");
      e[strcspn (e, "\r\n")] = '\0';
      return lab_printable (e, 600);
    }
  }
  return NULL;
}

char *
lab_vm_read_error (struct lab_vm_handle *h)
{
  CLEANUP_FREE char *dir = NULL;
  glob_t g;
  char *err = NULL;
  size_t i;

  if (!h->session)
    return NULL;
  dir = xasprintf ("%s/sessions/%" PRId64 "/nbdkit-*.log", h->home, h->session);
  if (glob (dir, 0, NULL, &g) != 0)
    return NULL;
  for (i = 0; i < g.gl_pathc && !err; i++)
    err = log_first_error (g.gl_pathv[i]);
  globfree (&g);
  return err;
}

/* A boot trace this long may have stopped recording (the plugin stops
 * after REPO_TRACE_MAX_ENTRIES lines, each at least "C MS\n" with a
 * 13-digit MS): the guest's reads can no longer be told apart. */
#define TRACE_MAYBE_FULL (64 + (off_t) REPO_TRACE_MAX_ENTRIES * 16)

/* The chunk size in a trace's header ("chunk-size N", its second line),
 * or 0. */
static uint32_t
trace_chunk_size (const char *path)
{
  CLEANUP_FCLOSE FILE *f = fopen (path, "re");
  char line[64];
  unsigned long cs = 0;

  if (f && fgets (line, sizeof line, f) && fgets (line, sizeof line, f) &&
      sscanf (line, "chunk-size %lu", &cs) == 1 && cs <= UINT32_MAX)
    return (uint32_t) cs;
  return 0;
}

int64_t
lab_vm_first_reads (struct lab_vm_handle *h, uint32_t *chunk_size)
{
  CLEANUP_FREE char *pattern = NULL;
  glob_t g;
  int64_t sum = 0;
  size_t i;

  if (!h->session)
    return -1;
  pattern = xasprintf ("%s/sessions/%" PRId64 "/*.trace", h->home, h->session);
  if (glob (pattern, 0, NULL, &g) != 0)
    return -1;
  for (i = 0; i < g.gl_pathc && sum >= 0; i++) {
    struct stat st;
    uint32_t cs;

    if (stat (g.gl_pathv[i], &st) == -1 || st.st_size >= TRACE_MAYBE_FULL)
      sum = -1;
    else if (st.st_size > 0 && (cs = trace_chunk_size (g.gl_pathv[i])) > 0) {
      sum += st.st_size;
      if (cs > *chunk_size)
        *chunk_size = cs;
    }
  }
  globfree (&g);
  return sum;
}

void
lab_vm_keep_trace (struct lab_vm_handle *h, double from_ago, double upto_ago)
{
  struct catalog *cat;

  if (!h || !h->session)
    return;
  cat = catalog_open (h->home);
  if (!cat) {
    warn (h, "boot trace of %s not kept: %s", h->name, error_msg ());
    return;
  }
  instant_trace_keep (cat, h->session, from_ago, upto_ago, h->repo_open,
                      h->warn, h->warn_opaque);
  catalog_close (cat);
}

char *const *
lab_vm_taps (struct lab_vm_handle *h)
{
  return h->taps;
}

static void
handle_free (struct lab_vm_handle *h)
{
  console_copy_stop (h);
  if (h->dom)
    virDomainFree (h->dom);
  free (h->overlay);
  free (h->home);
  free (h->source);
  free (h->name);
  free (h->serial);
  strv_free (h->taps);
  free (h);
}

void
lab_vm_forget (struct lab_vm_handle *h)
{
  if (h)
    handle_free (h);
}

void
lab_vm_destroy (struct lab_vm_handle *h)
{
  if (!h)
    return;
  if (h->session) {
    /* The session destroys its domain and discards its overlays. */
    struct catalog *cat = catalog_open (h->home);
    struct instant_stop_opts so = { .discard = true, .repo_open = h->repo_open };
    if (!cat || instant_stop_with (cat, h->session, &so) == -1)
      warn (h, "stopping instant session %" PRId64 " of %s: %s", h->session, h->name,
            error_msg ());
    catalog_close (cat);
  }
  /* Destroyed at once: graceful would only cost time. */
  if (h->dom)
    virt_domain_destroy (h->dom);
  else if (h->conn && h->name) {
    CLEANUP_VIR_DOMAIN virDomainPtr d = virt_domain_by_name (h->conn, h->name);
    if (d)
      virt_domain_destroy (d);
  }
  if (h->overlay)
    unlink (h->overlay);
  handle_free (h);
}

int
lab_vm_destroy_prefix (virConnectPtr conn, const char *prefix)
{
  virDomainPtr *doms;
  int n, i, count = 0;

  n = virt_domain_list (conn, &doms);
  if (n < 0)
    return -1;
  for (i = 0; i < n; i++) {
    const char *name = virDomainGetName (doms[i]);
    if (name && strncmp (name, prefix, strlen (prefix)) == 0) {
      virt_domain_destroy (doms[i]);
      virt_domain_undefine (doms[i], VIR_DOMAIN_UNDEFINE_NVRAM);
      count++;
    }
  }
  virt_domain_list_free (doms, n);
  return count;
}
