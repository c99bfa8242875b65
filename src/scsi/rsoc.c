/* MAINTENANCE IN: REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) and
 * REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 6.36).
 *
 * The table below describes each command's CDB (length and CDB USAGE
 * DATA: the bits the device server looks at). A command is reported only
 * when cmd.c dispatches its opcode and, for the optional features, the LU
 * offers it, so the report never promises more than the dispatcher does.
 * The unit tests check the table against cmd.c. */
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

/* Bits of the usage data that depend on the LU. */
enum {
	U_DPOFUA = 1, /* byte 1 0x18: DPO / FUA only when both are emulated */
	U_DPO = 2,    /* byte 1 0x10: DPO only when emulated */
	U_WSUNMAP = 4, /* byte 1 0x08: WRITE SAME UNMAP only with LBPWS */
};

enum avail { A_ALL, A_TPU, A_CAW, A_3PC, A_PR };

struct rsoc_ent {
	uint8_t op;
	uint16_t sa;
	bool servactv;
	uint8_t len;
	uint8_t dyn;
	enum avail avail;
	uint8_t usage[16];
};

#define C 0x00 /* CONTROL byte: NACA and LINK are not supported */

static const struct rsoc_ent rsoc_tab[] = {
	{ 0x00, 0, false, 6, 0, A_ALL, { 0x00, 0, 0, 0, 0, C } },
	{ 0x03, 0, false, 6, 0, A_ALL, { 0x03, 0x01, 0, 0, 0xff, C } },
	{ 0x08, 0, false, 6, 0, A_ALL, { 0x08, 0x1f, 0xff, 0xff, 0xff, C } },
	{ 0x0a, 0, false, 6, 0, A_ALL, { 0x0a, 0x1f, 0xff, 0xff, 0xff, C } },
	{ 0x12, 0, false, 6, 0, A_ALL, { 0x12, 0x01, 0xff, 0xff, 0xff, C } },
	{ 0x15, 0, false, 6, 0, A_ALL, { 0x15, 0x11, 0, 0, 0xff, C } },
	{ 0x16, 0, false, 6, 0, A_ALL, { 0x16, 0, 0, 0, 0, C } },
	{ 0x17, 0, false, 6, 0, A_ALL, { 0x17, 0, 0, 0, 0, C } },
	{ 0x1a, 0, false, 6, 0, A_ALL, { 0x1a, 0x08, 0xff, 0xff, 0xff, C } },
	{ 0x1b, 0, false, 6, 0, A_ALL, { 0x1b, 0x01, 0, 0x0f, 0xf7, C } },
	{ 0x1e, 0, false, 6, 0, A_ALL, { 0x1e, 0, 0, 0, 0x03, C } },
	{ 0x25, 0, false, 10, 0, A_ALL,
	  { 0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, C } },
	{ 0x28, 0, false, 10, U_DPOFUA, A_ALL,
	  { 0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x2a, 0, false, 10, U_DPOFUA, A_ALL,
	  { 0x2a, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x2e, 0, false, 10, U_DPO, A_ALL,
	  { 0x2e, 0x12, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x2f, 0, false, 10, U_DPO, A_ALL,
	  { 0x2f, 0x12, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x34, 0, false, 10, 0, A_ALL,
	  { 0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x35, 0, false, 10, 0, A_ALL,
	  { 0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x37, 0, false, 10, 0, A_ALL,
	  { 0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, C } },
	{ 0x41, 0, false, 10, U_WSUNMAP, A_ALL,
	  { 0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C } },
	{ 0x42, 0, false, 10, 0, A_TPU,
	  { 0x42, 0, 0, 0, 0, 0, 0x1f, 0xff, 0xff, C } },
	{ 0x55, 0, false, 10, 0, A_ALL,
	  { 0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, C } },
	{ 0x56, 0, false, 10, 0, A_ALL, { 0x56, 0, 0, 0, 0, 0, 0, 0, 0, C } },
	{ 0x57, 0, false, 10, 0, A_ALL, { 0x57, 0, 0, 0, 0, 0, 0, 0, 0, C } },
	{ 0x5a, 0, false, 10, 0, A_ALL,
	  { 0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, C } },
	{ 0x5e, 0x00, true, 10, 0, A_PR,
	  { 0x5e, 0x00, 0, 0, 0, 0, 0, 0xff, 0xff, C } },
	{ 0x5e, 0x01, true, 10, 0, A_PR,
	  { 0x5e, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, C } },
	{ 0x5e, 0x02, true, 10, 0, A_PR,
	  { 0x5e, 0x02, 0, 0, 0, 0, 0, 0xff, 0xff, C } },
	{ 0x5e, 0x03, true, 10, 0, A_PR,
	  { 0x5e, 0x03, 0, 0, 0, 0, 0, 0xff, 0xff, C } },
#define PROUT(sa) { 0x5f, sa, true, 10, 0, A_PR, \
	{ 0x5f, sa, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, C } }
	PROUT(0x00), PROUT(0x01), PROUT(0x02), PROUT(0x03), PROUT(0x04),
	PROUT(0x05), PROUT(0x06), PROUT(0x07),
#undef PROUT
	{ 0x83, 0x00, true, 16, 0, A_3PC,
	  { 0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0x84, 0x00, true, 16, 0, A_3PC,
	  { 0x84, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0x84, 0x03, true, 16, 0, A_3PC,
	  { 0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0x88, 0, false, 16, U_DPOFUA, A_ALL,
	  { 0x88, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x89, 0, false, 16, U_DPOFUA, A_CAW,
	  { 0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0, 0, 0, 0xff, 0x1f, C } },
	{ 0x8a, 0, false, 16, U_DPOFUA, A_ALL,
	  { 0x8a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x8b, 0, false, 16, U_DPOFUA, A_ALL,
	  { 0x8b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x8e, 0, false, 16, U_DPO, A_ALL,
	  { 0x8e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x8f, 0, false, 16, U_DPO, A_ALL,
	  { 0x8f, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x90, 0, false, 16, 0, A_ALL,
	  { 0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x91, 0, false, 16, 0, A_ALL,
	  { 0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x93, 0, false, 16, U_WSUNMAP, A_ALL,
	  { 0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x9c, 0, false, 16, U_DPOFUA, A_ALL,
	  { 0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0x9e, 0x10, true, 16, 0, A_ALL,
	  { 0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0x9e, 0x12, true, 16, 0, A_ALL,
	  { 0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0xa0, 0, false, 12, 0, A_ALL,
	  { 0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0xa3, 0x0a, true, 12, 0, A_ALL,
	  { 0xa3, 0xea, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0xa3, 0x0c, true, 12, 0, A_ALL,
	  { 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0xa3, 0x0d, true, 12, 0, A_ALL,
	  { 0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0xa4, 0x0a, true, 12, 0, A_ALL,
	  { 0xa4, 0x0a, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
	{ 0xa8, 0, false, 12, U_DPOFUA, A_ALL,
	  { 0xa8, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0xaa, 0, false, 12, U_DPOFUA, A_ALL,
	  { 0xaa, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0xae, 0, false, 12, U_DPO, A_ALL,
	  { 0xae, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0xaf, 0, false, 12, U_DPO, A_ALL,
	  { 0xaf, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C } },
	{ 0xb7, 0, false, 12, 0, A_ALL,
	  { 0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, C } },
};

#undef C

size_t scsi_rsoc_count(void)
{
	return sizeof(rsoc_tab) / sizeof(rsoc_tab[0]);
}

void scsi_rsoc_entry(size_t i, uint8_t *op, uint16_t *sa, bool *servactv)
{
	*op = rsoc_tab[i].op;
	*sa = rsoc_tab[i].sa;
	*servactv = rsoc_tab[i].servactv;
}

static bool ent_avail(const struct rsoc_ent *e, const struct scsi_lu *lu)
{
	if (!scsi_op_dispatched(e->op))
		return false;
	switch (e->avail) {
	case A_TPU: return scsi_lu_tpu(lu);
	case A_CAW: return lu->attrs.emulate_caw;
	case A_3PC: return lu->attrs.emulate_3pc;
	case A_PR: return lu->attrs.emulate_pr;
	default: return true;
	}
}

static void ent_usage(const struct rsoc_ent *e, const struct scsi_lu *lu,
		      uint8_t *u)
{
	const struct scsi_lu_attrs *a = &lu->attrs;

	memcpy(u, e->usage, e->len);
	if ((e->dyn & U_DPOFUA) && !(a->emulate_dpo && a->emulate_fua_write))
		u[1] &= (uint8_t)~0x18;
	if ((e->dyn & U_DPO) && !a->emulate_dpo)
		u[1] &= (uint8_t)~0x10;
	if ((e->dyn & U_WSUNMAP) && !scsi_lu_tpws(lu))
		u[1] &= (uint8_t)~0x08;
}

/* Command timeouts descriptor (SPC-4 6.35.4): no timeouts are known, so
 * NOMINAL and RECOMMENDED COMMAND TIMEOUT are 0 (not specified). */
static size_t put_timeouts(uint8_t *b)
{
	memset(b, 0, 12);
	put_be16(b, 0x0a);
	return 12;
}

#define RSOC_BUF 4096

int spc_prepare_maint_in(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint8_t sa = cdb[1] & 0x1f;

	if (sa == 0x0a)
		return spc_prepare_rtpg(cmd);
	if (sa == 0x0c) {
		/* REPORTING OPTIONS 000b-011b */
		if ((cdb[2] & 0x07) > 0x03)
			goto bad_options;
	} else if (sa != 0x0d) {
		scsi_set_sense_field(cmd, true, 1, 4);
		return 1;
	}
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = get_be32(cdb + 6);
	return 0;
bad_options:
	scsi_set_sense_field(cmd, true, 2, 2);
	return 1;
}

static void rstmf(struct scsi_cmd *cmd)
{
	uint8_t b[16];

	memset(b, 0, sizeof(b));
	/* ABORT TASK, ABORT TASK SET, CLEAR ACA, CLEAR TASK SET, LOGICAL UNIT
	 * RESET, TARGET RESET (the iSCSI layer's TMF set, RFC 7143 11.5). */
	b[0] = 0x80 | 0x40 | 0x20 | 0x10 | 0x08 | 0x02;
	/* REPD: the extended format is 16 bytes with ADDITIONAL DATA LENGTH
	 * 0Ch (SPC-4 6.36.2); otherwise 4 bytes. */
	if (cmd->cdb[2] & 0x80) {
		b[3] = 0x0c;
		scsi_data_in(cmd, b, 16);
	} else {
		scsi_data_in(cmd, b, 4);
	}
}

static const struct rsoc_ent *find_ent(const struct scsi_lu *lu, uint8_t op,
				       uint16_t sa, bool by_sa)
{
	for (size_t i = 0; i < scsi_rsoc_count(); i++) {
		const struct rsoc_ent *e = &rsoc_tab[i];

		if (e->op != op || !ent_avail(e, lu))
			continue;
		if (!by_sa || !e->servactv || e->sa == sa)
			return e;
	}
	return NULL;
}

static bool op_has_sa(uint8_t op)
{
	for (size_t i = 0; i < scsi_rsoc_count(); i++)
		if (rsoc_tab[i].op == op)
			return rsoc_tab[i].servactv;
	return false;
}

static void rsoc(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	bool rctd = cdb[2] & 0x80;
	unsigned opts = cdb[2] & 0x07;
	uint8_t op = cdb[3];
	uint16_t sa = get_be16(cdb + 4);
	uint8_t b[RSOC_BUF];
	size_t n;

	memset(b, 0, sizeof(b));
	if (opts == 0) {
		/* All commands (SPC-4 6.35.2): 8-byte descriptors, each with
		 * a timeouts descriptor when RCTD is set. */
		n = 4;
		for (size_t i = 0; i < scsi_rsoc_count(); i++) {
			const struct rsoc_ent *e = &rsoc_tab[i];

			if (!ent_avail(e, lu))
				continue;
			b[n] = e->op;
			put_be16(b + n + 2, e->servactv ? e->sa : 0);
			b[n + 5] = (uint8_t)((rctd ? 0x02 : 0) |
					     (e->servactv ? 0x01 : 0));
			put_be16(b + n + 6, e->len);
			n += 8;
			if (rctd)
				n += put_timeouts(b + n);
		}
		put_be32(b, (uint32_t)(n - 4));
	} else {
		/* One command (SPC-4 6.35.3). Options 001b name an opcode
		 * without service actions, 010b an opcode and a service
		 * action; asking the wrong way is an invalid field. 011b
		 * accepts either. */
		const struct rsoc_ent *e;
		bool has_sa = op_has_sa(op);

		if (opts == 1 && has_sa) {
			scsi_set_sense_field(cmd, true, 2, 2);
			return;
		}
		if (opts == 2 && !has_sa) {
			scsi_set_sense_field(cmd, true, 2, 2);
			return;
		}
		e = find_ent(lu, op, sa, opts != 1);
		n = 4;
		if (!e) {
			b[1] = 0x01; /* SUPPORT 001b: not supported */
		} else {
			b[1] = 0x03; /* SUPPORT 011b: supported as the standard says */
			put_be16(b + 2, e->len);
			ent_usage(e, lu, b + 4);
			n += e->len;
			if (rctd) {
				b[1] |= 0x80; /* CTDP */
				n += put_timeouts(b + n);
			}
		}
	}
	scsi_data_in(cmd, b, n);
}

void spc_exec_maint_in(struct scsi_cmd *cmd)
{
	if ((cmd->cdb[1] & 0x1f) == 0x0a) {
		spc_exec_rtpg(cmd);
		return;
	}
	if ((cmd->cdb[1] & 0x1f) == 0x0d)
		rstmf(cmd);
	else
		rsoc(cmd);
	scsi_cmd_complete(cmd);
}
