/* libFuzzer harness: SCSI CDB parsing and execution (src/scsi:
 * scsi_cmd_prepare / scsi_cmd_exec) against a 4 MiB ramdisk LU, as the iSCSI
 * task code drives them (buffer sizes as task.c computes them).
 *
 * Input: byte 0 = flags (bit 0: the LUN is write protected; bit 1: address
 * an unmapped LUN; bit 2: a TEST UNIT READY takes the POWER ON unit
 * attention first; bit 3: a second LU is mapped as LUN 1, for EXTENDED
 * COPY), bytes 1-4 = expected data transfer length (big-endian, capped at
 * 1 MiB), bytes 5-20 = the CDB, the rest = Data-Out (parameter data or
 * blocks; what is missing up to the EDTL is zeros, as a short Data-Out
 * sequence leaves it).
 *
 * Each input gets a fresh LU and nexus, so reservations and unit
 * attentions do not leak from one input into the next. Checks: done runs
 * exactly once, Data-In fits the buffer, the sense fits its array. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/loop.h"
#include "scsi/scsi.h"
#include "util/bytes.h"

#define MAX_EDTL (1u << 20)

static struct io_loop *loop;
static int done_calls;

static void cmd_done(struct scsi_cmd *cmd)
{
	(void)cmd;
	done_calls++;
}

static struct scsi_lu *new_lu(const char *name, const char *wwn)
{
	struct bs_config cfg = { .name = name, .size = 4u << 20 };
	struct bs_dev *bs;
	struct scsi_lu_attrs a;
	struct scsi_lu *lu;
	char err[256];

	if (bs_open("ramdisk", &cfg, &bs, err, sizeof(err)))
		abort();
	scsi_lu_attrs_default(&a, bs);
	a.emulate_tpu = true;
	a.emulate_tpws = true;
	a.emulate_3pc = true;
	lu = scsi_lu_create(bs, name, "ramdisk", wwn, &a);
	if (!lu)
		abort();
	return lu;
}

static void run(struct scsi_nexus *nx, uint64_t lun, const uint8_t *cdb,
		uint32_t edtl, const uint8_t *data, size_t dlen)
{
	struct scsi_cmd cmd;
	uint32_t cap, want;
	int i;

	memset(&cmd, 0, sizeof(cmd));
	cmd.nexus = nx;
	cmd.lun = lun;
	memcpy(cmd.cdb, cdb, SCSI_CDB_MAX);
	cmd.edtl = edtl;
	cmd.loop = loop;
	cmd.done = cmd_done;
	done_calls = 0;
	if (scsi_cmd_prepare(&cmd)) {
		assert(cmd.sense_len <= SCSI_SENSE_MAX);
		return;
	}
	cap = cmd.xfer_len;
	if (cap) {
		if (posix_memalign((void **)&cmd.buf, 4096, cap))
			abort();
		memset(cmd.buf, 0, cap);
	}
	if (cmd.dir == SCSI_DIR_WRITE) {
		want = edtl < cmd.xfer_len ? edtl : cmd.xfer_len;
		if (dlen > want)
			dlen = want;
		if (dlen)
			memcpy(cmd.buf, data, dlen);
		cmd.buf_len = want; /* the rest reads as zeros */
	} else {
		cmd.buf_len = cap;
	}
	scsi_cmd_exec(&cmd);
	for (i = 0; i < 1000 && !done_calls; i++)
		io_loop_run_once(loop, 10);
	assert(done_calls == 1);
	assert(cmd.sense_len <= SCSI_SENSE_MAX);
	if (cmd.dir == SCSI_DIR_READ)
		assert(cmd.data_len <= cmd.buf_len);
	free(cmd.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t tur[SCSI_CDB_MAX];
	struct scsi_nexus nx;
	struct scsi_lun_map *map;
	struct scsi_lu *lu, *lu2 = NULL;
	uint32_t edtl;
	uint8_t flags;

	if (!loop) {
		fuzz_quiet();
		if (io_loop_create(&loop, 0))
			abort();
	}
	if (size < 21)
		return 0;
	flags = data[0];
	edtl = get_be32(data + 1);
	if (edtl > MAX_EDTL)
		edtl = MAX_EDTL;

	lu = new_lu("rd0", "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d");
	if (flags & 8)
		lu2 = new_lu("rd1", "6a1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5e");
	map = scsi_lun_map_new(lu2 ? 2 : 1);
	if (!map)
		abort();
	map->ent[0].lun = 0;
	map->ent[0].lu = lu; /* the map takes our reference */
	map->ent[0].write_protect = flags & 1;
	if (lu2) {
		map->ent[1].lun = 1;
		map->ent[1].lu = lu2;
	}
	memset(&nx, 0, sizeof(nx));
	strcpy(nx.initiator_port, "iqn.1994-05.com.example:fuzz,i,0x400000000001");
	strcpy(nx.initiator_name, "iqn.1994-05.com.example:fuzz");
	strcpy(nx.tport.target_name, "iqn.2003-01.org.utarget.fuzz:t1");
	nx.tport.tpgt = 1;
	nx.tport.rel_port_id = 1;
	nx.tport.proto_id = SCSI_PROTO_ISCSI;
	scsi_nexus_set_map(&nx, map);

	if (flags & 4)
		run(&nx, 0, tur, 0, NULL, 0);
	run(&nx, (flags & 2) ? 5 : 0, data + 5, edtl, data + 21, size - 21);

	scsi_nexus_clear(&nx);
	/* LUs whose last reference went with the map are freed at the end
	 * of a loop round */
	io_loop_run_once(loop, 0);
	return 0;
}
