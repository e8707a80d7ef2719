/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sandboxes kept up by `lab up`: finding one and its VMs, checkpoints,
 * reset and lease (bootback lab checkpoint, checkpoints, reset, extend).
 *
 * Checkpoints are internal snapshots of each VM's qcow2 overlay, disks
 * and memory together (libvirt's snapshot of a running domain): nothing
 * is added to the chain (overlay -> image or restore point stays one
 * layer), reverting one is a load of that state while the domain stays
 * defined, so the VM runs again at once, without a boot, its agent
 * answering.  Every VM is paused before the first snapshot and resumed
 * after the last, so the checkpoint is one moment of the whole sandbox.
 *
 *   $BOOTBACK_HOME/labs/<id>/checkpoints.json   [{name, created}], 0600
 *
 * Reset to the restore point itself (no checkpoint named) gives each VM
 * empty overlays: its domain is destroyed, each overlay in the run
 * directory made again over the same backing (the image, or the restore
 * point's NBD export: read from the overlay's own header, which we wrote
 * and the guest cannot reach), and the domain created again from its
 * definition (checked again: every interface on the lab bridge; new taps
 * hardened), and the isolation checks of the network run again with
 * every tap (lab_net_check; fail closed: on a failure every VM is
 * stopped).  That boots the VMs, and removes every checkpoint (they
 * lived in the old overlays; libvirt drops their records with the
 * transient domain).
 *
 * A sandbox on another host (lab up --host): checkpoints and a reset to
 * one go through its libvirt as here; a reset to the restore point is
 * refused there (its overlays are volumes of that host, made by the
 * remote session, not files of the run directory).
 *
 * Invariants:
 *  1. checkpoints.json names a checkpoint only after every VM has it.
 *  2. A VM is addressed only by a name its sandbox's state lists
 *     (name_is_valid), its domain by the name derived from the run id.
 */
#include <errno.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lab/lab.h"
#include "recovery/util/util.h"
#include "recovery/virt/virt.h"
#include "recovery/virt/xml.h"

struct lab_state *
lab_sandbox_load (const char *home, const char *id, bool sandbox_only)
{
  struct lab_state *s;

  if (strlen (id) != 6 || strspn (id, "0123456789abcdef") != 6) {
    CLEANUP_FREE char *shown = lab_printable (id, 40);
    error_setx ("'%s' is not a lab id (6 hex digits; bootback lab list)", shown);
    return NULL;
  }
  s = lab_state_load (home, id);
  if (!s) {
    error_setx ("no lab %s (bootback lab list)", id);
    return NULL;
  }
  if (sandbox_only && (!s->kind || strcmp (s->kind, "sandbox") != 0 || !s->expires)) {
    error_setx ("lab %s is not a sandbox (bootback lab up)", id);
    lab_state_free (s);
    return NULL;
  }
  if (!lab_state_alive (s, time (NULL))) {
    error_setx ("lab %s is %s (bootback lab list)", id,
                s->expires ? "past its lease" : "no longer running");
    lab_state_free (s);
    return NULL;
  }
  return s;
}

/* The VM called vm in s's list ("name domain address" lines): its
 * domain name into dom. */
static int
find_vm (const struct lab_state *s, const char *vm, char *dom, size_t len)
{
  size_t i;

  for (i = 0; s->vms && s->vms[i]; i++) {
    char name[VM_NAME_MAX + 1], d[256];
    if (sscanf (s->vms[i], "%128s %255s", name, d) == 2 && strcmp (name, vm) == 0) {
      snprintf (dom, len, "%s", d);
      return 0;
    }
  }
  error_setx ("lab %s has no VM %s (bootback lab list)", s->id, vm);
  return -1;
}

virDomainPtr
lab_sandbox_domain (virConnectPtr conn, const struct lab_state *s, const char *vm)
{
  char dom[256], prefix[32];
  virDomainPtr d;

  if (!name_is_valid (vm)) {
    CLEANUP_FREE char *shown = lab_printable (vm, 60);
    error_setx ("'%s' is not a VM name", shown);
    return NULL;
  }
  if (find_vm (s, vm, dom, sizeof dom) == -1)
    return NULL;
  lab_vm_prefix (s->id, prefix);
  if (strncmp (dom, prefix, strlen (prefix)) != 0) {
    error_setx ("lab %s: VM %s: domain %s is not one of the lab's", s->id, vm, dom);
    return NULL;
  }
  d = virt_domain_by_name (conn, dom);
  if (!d || virDomainIsActive (d) != 1) {
    error_setx ("lab %s: VM %s is not running (domain %s)", s->id, vm, dom);
    if (d)
      virDomainFree (d);
    return NULL;
  }
  return d;
}

/* The names of the sandbox's VMs (NULL-ended, malloc'd). */
static char **
vm_names (const struct lab_state *s)
{
  char **v = NULL;
  size_t n = 0, i;

  for (i = 0; s->vms && s->vms[i]; i++) {
    char name[VM_NAME_MAX + 1];
    if (sscanf (s->vms[i], "%128s", name) == 1 && name_is_valid (name))
      strv_push (&v, &n, xstrdup (name));
  }
  if (!v)
    v = xcalloc (1, sizeof *v);
  return v;
}

/* Every running domain of the sandbox, in the order of its VMs. */
static int
domains (virConnectPtr conn, const struct lab_state *s, virDomainPtr **doms,
         char ***names)
{
  size_t i, n;

  *names = vm_names (s);
  for (n = 0; (*names)[n]; n++)
    ;
  *doms = xcalloc (n + 1, sizeof **doms);
  for (i = 0; i < n; i++)
    if (!((*doms)[i] = lab_sandbox_domain (conn, s, (*names)[i])))
      return -1;
  if (n == 0) {
    error_setx ("lab %s has no VMs", s->id);
    return -1;
  }
  return (int) n;
}

static void
domains_free (virDomainPtr *doms, char **names)
{
  size_t i;

  for (i = 0; names && names[i]; i++)
    if (doms && doms[i])
      virDomainFree (doms[i]);
  free (doms);
  strv_free (names);
}

/* ---- checkpoints.json ------------------------------------------------------ */

static json_t *
cp_load (const struct lab_state *s)
{
  CLEANUP_FREE char *path = xasprintf ("%s/checkpoints.json", s->dir);
  json_t *a = json_load_file (path, 0, NULL);

  if (!json_is_array (a)) {
    json_decref (a);
    a = json_array ();
  }
  return a;
}

static int
cp_save (const struct lab_state *s, json_t *a)
{
  CLEANUP_FREE char *path = xasprintf ("%s/checkpoints.json", s->dir);
  CLEANUP_FREE char *tmp = xasprintf ("%s/.checkpoints.json.tmp", s->dir);
  CLEANUP_FREE char *text = json_dumps (a, JSON_INDENT (2));

  if (write_whole_file (tmp, text, strlen (text), PRIVATE_FILE_MODE) == -1)
    return -1;
  if (rename (tmp, path) == -1) {
    error_set (errno, "rename %s", path);
    return -1;
  }
  return 0;
}

static json_t *
cp_find (json_t *a, const char *name)
{
  size_t i;
  json_t *e;

  json_array_foreach (a, i, e)
    if (strcmp (json_string_value (json_object_get (e, "name")) ?: "", name) == 0)
      return e;
  return NULL;
}

struct lab_checkpoint *
lab_sandbox_checkpoints (const struct lab_state *s, size_t *n)
{
  json_t *a = cp_load (s), *e;
  struct lab_checkpoint *v = xcalloc (json_array_size (a) + 1, sizeof *v);
  size_t i;

  *n = 0;
  json_array_foreach (a, i, e) {
    const char *name = json_string_value (json_object_get (e, "name"));
    if (!name || !name_is_valid_max (name, LAB_CHECKPOINT_NAME_MAX))
      continue;
    snprintf (v[*n].name, sizeof v[*n].name, "%s", name);
    v[*n].created = json_integer_value (json_object_get (e, "created"));
    (*n)++;
  }
  json_decref (a);
  return v;
}

/* ---- checkpoint ------------------------------------------------------------- */

/* Snapshot every domain, paused together; undone on failure. */
static int
snapshot_all (virDomainPtr *doms, int n, const char *name)
{
  int i, paused, made = 0, r = 0;

  for (paused = 0; paused < n; paused++)
    if (virt_domain_suspend (doms[paused]) == -1) {
      r = -1;
      break;
    }
  for (; r == 0 && made < n; made++)
    if (virt_snapshot_create (doms[made], name) == -1) {
      r = -1;
      break;
    }
  if (r == -1) {
    ERROR_SAVE (e);
    for (i = 0; i < made; i++)
      virt_snapshot_delete (doms[i], name);
    ERROR_RESTORE (e);
  }
  for (i = 0; i < paused; i++)
    if (virt_domain_resume (doms[i]) == -1 && r == 0)
      r = -1;
  return r;
}

int
lab_sandbox_checkpoint (virConnectPtr conn, const struct lab_state *s,
                        const char *name, double *secs)
{
  virDomainPtr *doms = NULL;
  char **names = NULL;
  double t0 = now_monotonic ();
  json_t *a = cp_load (s);
  int n, r = -1;

  if (!name_is_valid_max (name, LAB_CHECKPOINT_NAME_MAX)) {
    CLEANUP_FREE char *shown = lab_printable (name, 60);
    error_setx ("'%s' is not a checkpoint name ([A-Za-z0-9._-], at most %d)", shown,
                LAB_CHECKPOINT_NAME_MAX);
  }
  else if (cp_find (a, name))
    error_setx ("lab %s has a checkpoint %s already", s->id, name);
  else if ((n = domains (conn, s, &doms, &names)) > 0 &&
           snapshot_all (doms, n, name) == 0) {
    json_array_append_new (a, json_pack ("{s:s, s:I}", "name", name,
                                         "created", (json_int_t) time (NULL)));
    r = cp_save (s, a);
  }
  domains_free (doms, names);
  json_decref (a);
  *secs = now_monotonic () - t0;
  return r;
}

/* ---- reset -------------------------------------------------------------------- */

/* Wait for every VM's agent; -1 naming the first that does not answer. */
static int
agents_wait (virDomainPtr *doms, char **names, int n, double timeout)
{
  double end = now_monotonic () + timeout;
  int i;

  for (i = 0; i < n; i++)
    if (virt_agent_wait (doms[i], MAX (end - now_monotonic (), 1)) != 0) {
      error_setx ("VM %s: the guest agent does not answer within %.0f s of the reset",
                  names[i], timeout);
      return -1;
    }
  return 0;
}

/* The overlays of a domain's XML that live in the run directory. */
static char **
overlays (const char *xml, const char *dir)
{
  CLEANUP_XML_DOC xmlDocPtr doc = virt_xml_parse (xml, 0, NULL);
  CLEANUP_XPATH_CTX xmlXPathContextPtr ctx = doc ? virt_xpath_context (doc, NULL, NULL) : NULL;
  CLEANUP_XPATH_OBJ xmlXPathObjectPtr o =
    ctx ? virt_xpath_eval (ctx, "/domain/devices/disk[@device='disk']/source") : NULL;
  char **v = xcalloc (1, sizeof *v), path[4096];
  size_t i, n = 0, dl = strlen (dir);

  for (i = 0; i < virt_xpath_count (o); i++) {
    virt_xml_attr (virt_xpath_node (o, i), "file", path, sizeof path);
    if (strncmp (path, dir, dl) == 0 && path[dl] == '/' && !strchr (path + dl + 1, '/'))
      strv_push (&v, &n, xstrdup (path));
  }
  return v;
}

/* Make overlay empty again over the same backing file and format. */
static int
overlay_fresh (const char *overlay)
{
  char *info_argv[] = { "qemu-img", "info", "-U", "--output=json", (char *) overlay, NULL };
  CLEANUP_FREE char *out = xmalloc (65536);
  CLEANUP_FREE char *tmp = xasprintf ("%s.fresh", overlay);
  const char *backing, *fmt;
  json_t *j;
  char size[32];
  int r;

  if (run_command (info_argv, out, 65536) != 0 || !(j = json_loads (out, 0, NULL))) {
    error_setx ("qemu-img info %s: %s", overlay, out);
    return -1;
  }
  backing = json_string_value (json_object_get (j, "backing-filename"));
  fmt = json_string_value (json_object_get (j, "backing-filename-format"));
  snprintf (size, sizeof size, "%" JSON_INTEGER_FORMAT,
            json_integer_value (json_object_get (j, "virtual-size")));
  if (!backing || !fmt) {
    json_decref (j);
    error_setx ("%s has no backing file: not a lab overlay", overlay);
    return -1;
  }
  {
    char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", (char *) fmt,
                     "-b", (char *) backing, tmp, size, NULL };
    unlink (tmp);
    r = create_private (tmp) == -1 ? -1 : run_command (argv, out, 65536);
  }
  json_decref (j);
  if (r > 0)
    error_setx ("qemu-img create %s: %s", tmp, out);
  else if (r == 0 && rename (tmp, overlay) == -1) {
    error_set (errno, "rename %s", tmp);
    r = -1;
  }
  if (r != 0)
    unlink (tmp);
  return r == 0 ? 0 : -1;
}

/* Boot vm's domain again on empty overlays, its XML checked first. */
static int
fresh_vm (virConnectPtr conn, const struct lab_state *s, virDomainPtr *d, const char *vm)
{
  CLEANUP_FREE char *xml = virt_domain_xml (*d, VIR_DOMAIN_XML_INACTIVE);
  CLEANUP_FREE char *name = xstrdup (virDomainGetName (*d) ?: "");
  CLEANUP_STRV char **ov = NULL, **taps = NULL, **bridges = NULL, **types = NULL;
  struct lab_net net;
  size_t i;

  lab_net_init (&net, s->id, NULL);
  if (!xml || lab_domain_check (xml, net.bridge, vm, NULL) == -1)
    return -1;
  ov = overlays (xml, s->dir);
  if (!ov[0]) {
    error_setx ("VM %s: no overlay in %s to reset", vm, s->dir);
    return -1;
  }
  if (virt_domain_destroy (*d) == -1)
    return -1;
  for (i = 0; ov[i]; i++)
    if (overlay_fresh (ov[i]) == -1)
      return -1;
  virDomainFree (*d);
  *d = virt_domain_create_xml (conn, xml, name);
  if (!*d)
    return -1;
  free (xml);
  xml = virt_domain_xml (*d, 0);
  if (!xml || lab_domain_check (xml, net.bridge, vm, NULL) == -1 ||
      lab_domain_interfaces (xml, &taps, &bridges, &types) < 0)
    return -1;
  for (i = 0; taps[i]; i++)
    if (taps[i][0] && lab_net_port_harden (&net, taps[i]) == -1)
      return -1;
  return 0;
}

/* Every tap of the sandbox's domains (NULL-ended, malloc'd). */
static char **
all_taps (virDomainPtr *doms, int n)
{
  char **v = xcalloc (1, sizeof *v);
  size_t len = 0;
  int i, j;

  for (i = 0; i < n; i++) {
    CLEANUP_FREE char *xml = virt_domain_xml (doms[i], 0);
    CLEANUP_STRV char **taps = NULL, **bridges = NULL, **types = NULL;
    int k = xml ? lab_domain_interfaces (xml, &taps, &bridges, &types) : -1;
    for (j = 0; j < k; j++)
      if (taps[j][0])
        strv_push (&v, &len, xstrdup (taps[j]));
  }
  return v;
}

/* After new taps: the isolation checks of the whole network again, with
 * the addresses of the lab's definition (fail closed: on a failure every
 * VM of the sandbox is stopped).  1 if the definition cannot be read
 * (the error says why; the VMs' own checks held), 0, or -1. */
static int
isolation_recheck (const struct lab_state *s, virDomainPtr *doms, int n)
{
  CLEANUP_STRV char **taps = NULL;
  struct lab_def *def = s->file ? lab_def_read_file (s->file, NULL) : NULL;
  struct lab_net net;
  int i, r;

  if (!def) {
    error_setx ("lab %s: the isolation of its network was not checked again: its "
                "definition %s cannot be read", s->id, s->file ? s->file : "(none)");
    return 1;
  }
  lab_net_init (&net, s->id, def);
  lab_def_free (def);
  taps = all_taps (doms, n);
  r = lab_net_check (&net, taps);
  if (r == -1) {
    ERROR_SAVE (e);
    for (i = 0; i < n; i++)
      virt_domain_destroy (doms[i]);
    ERROR_RESTORE (e);
    error_prefix ("lab %s: its VMs were stopped (bootback lab down %s)", s->id, s->id);
  }
  return r;
}

int
lab_sandbox_reset (virConnectPtr conn, const struct lab_state *s, const char *name,
                   double agent_timeout, double *secs)
{
  virDomainPtr *doms = NULL;
  char **names = NULL;
  double t0 = now_monotonic ();
  json_t *a = cp_load (s);
  int n, i, r = -1;

  if (name && !cp_find (a, name))
    error_setx ("lab %s has no checkpoint %s (bootback lab checkpoints %s)", s->id,
                name, s->id);
  else if (!name && s->ssh && s->ssh[0])
    error_setx ("lab %s runs on host %s: a reset to the restore point is not "
                "supported there (its overlays are volumes of that host): reset to a "
                "checkpoint, or lab down and lab up again", s->id, s->host ? s->host : "?");
  else if ((n = domains (conn, s, &doms, &names)) > 0) {
    for (i = 0, r = 0; i < n && r == 0; i++)
      if (name ? virt_snapshot_revert (doms[i], name) : fresh_vm (conn, s, &doms[i], names[i]))
        r = -1;
    if (r == 0 && !name) {
      json_array_clear (a);
      r = cp_save (s, a);
    }
    if (r == 0 && !name)
      r = isolation_recheck (s, doms, n);
    if (r >= 0) {
      ERROR_SAVE (e);
      int w = agents_wait (doms, names, n, agent_timeout);
      if (w == -1)
        r = -1;
      else
        ERROR_RESTORE (e);
    }
  }
  domains_free (doms, names);
  json_decref (a);
  *secs = now_monotonic () - t0;
  return r;
}

/* ---- lease ------------------------------------------------------------------------ */

int
lab_sandbox_extend (struct lab_state *s, double lease)
{
  s->expires = time (NULL) + (time_t) lease;
  return lab_state_save (s);
}
