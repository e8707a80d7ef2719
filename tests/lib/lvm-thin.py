#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Turn a vgcfgbackup text of a VG with two linear LVs, "pool" and "pmeta",
# into one with a thin pool "pool" (data pool_tdata, metadata pool_tmeta,
# both hidden) and a thin volume "thin1" in it, for vgcfgrestore: a test
# of bootback scan (tests/test-scan-lvm.sh) needs a thin pool on a host
# without device-mapper.  Prints the new text.
import re, sys

text = open(sys.argv[1]).read()
text = text.replace("\t\tpool {", "\t\tpool_tdata {", 1)
text = text.replace("\t\tpmeta {", "\t\tpool_tmeta {", 1)
# the two become hidden sub-volumes of the pool
text = re.sub(r'(\t\tpool_t(?:data|meta) \{\n\t\t\tid = "[^"]*"\n\t\t\tstatus = )\["READ", "WRITE", "VISIBLE"\]',
              r'\1["READ", "WRITE"]', text)
pool = '''
		pool {
			id = "bbThin-Pool-0000-0000-0000-0000-000001"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796582634
			creation_host = "test"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 2

				type = "thin-pool"
				metadata = "pool_tmeta"
				pool = "pool_tdata"
				transaction_id = 1
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 1
			}
		}

		thin1 {
			id = "bbThin-Vol0-0000-0000-0000-0000-000002"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1796582634
			creation_host = "test"
			segment_count = 1

			segment1 {
				start_extent = 0
				extent_count = 1

				type = "thin"
				thin_pool = "pool"
				transaction_id = 0
				device_id = 1
			}
		}
'''
i = text.index("\tlogical_volumes {\n") + len("\tlogical_volumes {\n")
sys.stdout.write(text[:i] + pool + text[i:])
