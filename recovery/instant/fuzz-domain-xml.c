/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the domain XML saved with a restore point, which
 * whoever controlled the guest or the repository wrote: the instant
 * rewrite (instant_xml_rewrite with the allow-list of sanitize.c), the
 * final check (instant_xml_check) and the backup side's disk parser
 * (backup_xml_domain_disks, recovery/ingest/backup-xml.c).  Beyond "no
 * crash, no leak, no overread":
 *   - what the rewrite returns (without allow_passthrough) passes
 *     instant_xml_check: the session never refuses its own output;
 *   - its output rewrites again with the same spec, and that passes the
 *     check too (not always to the same text: a disk matched by order
 *     next to one it added under the point disk's name is matched by name
 *     the second time);
 *   - every point disk gets a target of its own (the session records it);
 *   - backup_xml_domain_disks lists at most max disks, each with a target.
 *
 * Input: byte 0 and 1 pick the spec (network mode, new MACs, domain
 * type, number of point disks, console log, a disk without socket,
 * allow_passthrough); the rest is the XML.  lab/test-fuzz.sh seeds the
 * corpus with recovery/instant/golden/ *.in.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recovery/ingest/ingest-int.h"
#include "recovery/instant/instant.h"
#include "recovery/util/util.h"

static const char *const names[] = { "vda", "vdb", "sda" };

static void
spec_from (const uint8_t *data, struct instant_xml_spec *sp,
           struct instant_xml_disk disks[3])
{
  uint8_t a = data[0], b = data[1];
  size_t i;

  memset (sp, 0, sizeof *sp);
  sp->name = "bb-fuzz";
  sp->uuid = (b & 1) ? "6b1f2ad6-0c4e-4a8e-9a52-0d6f4b4b8f01" : NULL;
  sp->new_macs = a & 4;
  sp->mac_seed = 0x12345678u;
  sp->net = (enum instant_net) (a & 3);
  sp->net_source = sp->net == INSTANT_NET_BRIDGE ? "bblfuzzbr" : "default";
  sp->domain_type = (a & 8) ? "qemu" : NULL;
  sp->console_log = (a & 64) ? "/var/lib/bootback/instant/1/console.log" : NULL;
  sp->ndisks = (a >> 4) & 3;
  if (sp->ndisks == 3 && (b & 2))
    sp->ndisks = 0;
  sp->allow_passthrough = a & 128;
  sp->memory_cap_mib = (b & 8) ? 1024 : 0;      /* a lab VM's reservation */
  for (i = 0; i < 3; i++) {
    memset (&disks[i], 0, sizeof disks[i]);
    disks[i].name = names[i];
    disks[i].overlay = i == 0 ? "/var/lib/bootback/instant/1/vda.qcow2"
      : i == 1 ? "/var/lib/bootback/instant/1/vdb.qcow2"
      : "/var/lib/bootback/instant/1/sda.qcow2";
    disks[i].socket = (b & 4) && i == 1 ? NULL
      : i == 0 ? "/run/bootback/1/vda.sock"
      : i == 1 ? "/run/bootback/1/vdb.sock" : "/run/bootback/1/sda.sock";
  }
  sp->disks = disks;
}

static void
backup_disks (const char *xml)
{
  struct backup_xml_disk d[4];
  size_t n = 99, i;

  if (backup_xml_domain_disks (xml, d, 4, &n) == 0) {
    assert (n <= 4);
    for (i = 0; i < n; i++)
      assert (d[i].target[0] && memchr (d[i].source, '\0', sizeof d[i].source));
  }
  error_clear ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct instant_xml_spec sp;
  struct instant_xml_disk disks[3];
  char *xml, *out, *again;

  if (size < 2)
    return 0;
  spec_from (data, &sp, disks);
  xml = xmalloc (size - 1);
  memcpy (xml, data + 2, size - 2);
  xml[size - 2] = '\0';

  backup_disks (xml);
  (void) instant_xml_check (xml, &sp);
  out = instant_xml_rewrite (xml, &sp, NULL, NULL);
  if (out) {
    size_t i, j;
    for (i = 0; i < sp.ndisks; i++) {
      assert (disks[i].target[0]);
      for (j = 0; j < i; j++)
        assert (strcmp (disks[i].target, disks[j].target) != 0);
    }
    if (!sp.allow_passthrough && instant_xml_check (out, &sp) == -1) {
      fprintf (stderr, "rewrite output fails the check: %s\n%s\n",
               error_msg (), out);
      abort ();
    }
    again = instant_xml_rewrite (out, &sp, NULL, NULL);
    if (!again ||
        (!sp.allow_passthrough && instant_xml_check (again, &sp) == -1)) {
      fprintf (stderr, "the rewrite of the output fails: %s\n%s\n---\n%s\n",
               error_msg (), out, again ? again : "");
      abort ();
    }
    backup_disks (out);
    free (again);
    free (out);
  }
  error_clear ();
  free (xml);
  return 0;
}
