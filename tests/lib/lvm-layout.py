#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# lvm-layout.py thin|raid1 VG.txt: a vgcfgbackup text turned into one
# with a layout lvm2 cannot make without device-mapper, printed for
# vgcfgrestore (tests/test-scan-lvm.sh):
#   thin   linear LVs "pool" and "pmeta" become the hidden pool_tdata and
#          pool_tmeta of a thin pool "pool", with a thin volume "thin1";
#   raid1  linear LVs "m0", "i0", "m1", "i1" become the hidden
#          mirror_rmeta_N and mirror_rimage_N of a raid1 LV "mirror".
import re, sys

LV = '''
		%s {
			id = "%s"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796582634
			creation_host = "test"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = %d

%s
			}
		}
'''
THIN = (LV % ("pool", "bbThin-Pool-0000-0000-0000-0000-000001", 2, '''\
				type = "thin-pool"
				metadata = "pool_tmeta"
				pool = "pool_tdata"
				transaction_id = 1
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 1''') +
        LV % ("thin1", "bbThin-Vol0-0000-0000-0000-0000-000002", 1, '''\
				type = "thin"
				thin_pool = "pool"
				transaction_id = 0
				device_id = 1'''))
RAID = LV % ("mirror", "bbRaid-Mirr-0000-0000-0000-0000-000001", 1, '''\
				type = "raid1"
				device_count = 2
				region_size = 1024
				raids = [
					"mirror_rmeta_0", "mirror_rimage_0",
					"mirror_rmeta_1", "mirror_rimage_1"
				]''')
layouts = {
    "thin": ({"pool": "pool_tdata", "pmeta": "pool_tmeta"}, THIN),
    "raid1": ({"m0": "mirror_rmeta_0", "i0": "mirror_rimage_0",
               "m1": "mirror_rmeta_1", "i1": "mirror_rimage_1"}, RAID),
}

renames, new = layouts[sys.argv[1]]
text = open(sys.argv[2]).read()
for old, sub in renames.items():
    text = text.replace("\t\t%s {" % old, "\t\t%s {" % sub, 1)
    # a sub-volume is hidden
    text = re.sub(r'(\t\t%s \{\n\t\t\tid = "[^"]*"\n\t\t\tstatus = )'
                  r'\["READ", "WRITE", "VISIBLE"\]' % sub,
                  r'\1["READ", "WRITE"]', text)
i = text.index("\tlogical_volumes {\n") + len("\tlogical_volumes {\n")
sys.stdout.write(text[:i] + new + text[i:])
