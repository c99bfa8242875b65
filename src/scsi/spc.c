/* Primary commands (SPC-4) for a disk LU: INQUIRY and its VPD pages,
 * REPORT LUNS, TEST UNIT READY, REQUEST SENSE, MODE SENSE / MODE SELECT,
 * START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL. Data follows LIO's
 * target_core_spc.c so initiators see the same identity. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

static int bad_cdb_field(struct scsi_cmd *cmd, uint16_t byte, int bit)
{
	scsi_set_sense_field(cmd, true, byte, bit);
	return 1;
}

/* Fixed-width ASCII field, left aligned and space padded (SPC-4 4.4.1). */
static void put_ascii(uint8_t *dst, const char *src, size_t width)
{
	size_t n = strnlen(src, width);

	memset(dst, ' ', width);
	memcpy(dst, src, n);
}

/* INQUIRY PRODUCT IDENTIFICATION: the storage object name when
 * emulate_model_alias (targetcli's export_backstore_name_as_model), else
 * the model string LIO's backend drivers report. */
static void lu_product(const struct scsi_lu *lu, char *out, size_t outlen)
{
	static const struct {
		const char *plugin, *model;
	} models[] = {
		{ "fileio", "FILEIO" },
		{ "block", "IBLOCK" },
		{ "iblock", "IBLOCK" },
		{ "ramdisk", "RAMDISK-MCP" },
		{ "rd_mcp", "RAMDISK-MCP" },
		{ "pscsi", "PSCSI" },
	};
	size_t i;

	if (lu->attrs.emulate_model_alias && lu->name[0]) {
		snprintf(out, outlen, "%.16s", lu->name);
		return;
	}
	for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		if (strcmp(lu->plugin, models[i].plugin) == 0) {
			snprintf(out, outlen, "%s", models[i].model);
			return;
		}
	}
	snprintf(out, outlen, "%.16s", lu->plugin);
	for (i = 0; out[i]; i++)
		out[i] = (char)toupper((unsigned char)out[i]);
}

/* --- INQUIRY (SPC-4 6.4) --- */

static bool vpd_supported(const struct scsi_lu *lu, uint8_t page)
{
	switch (page) {
	case 0x00:
		return true;
	case 0x80:
	case 0x83:
	case 0x86:
	case 0xb0:
	case 0xb1:
		return lu != NULL;
	case 0xb2:
		return lu && (scsi_lu_tpu(lu) || scsi_lu_tpws(lu));
	case 0x8f:
		return lu && lu->attrs.emulate_3pc;
	default:
		return false;
	}
}

int spc_prepare_inquiry(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;

	if (cdb[1] & 0x02) /* CMDDT: obsolete since SPC-3 */
		return bad_cdb_field(cmd, 1, 1);
	if (cdb[1] & 0x01) {
		if (!vpd_supported(cmd->lu, cdb[2]))
			return bad_cdb_field(cmd, 2, 7);
	} else if (cdb[2]) {
		/* PAGE CODE must be zero when EVPD is zero */
		return bad_cdb_field(cmd, 2, 7);
	}
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = get_be16(cdb + 3);
	return 0;
}

#define INQ_STD_LEN 96

static size_t inquiry_std(const struct scsi_cmd *cmd, uint8_t *b)
{
	const struct scsi_lu *lu = cmd->lu;
	char product[17] = "";

	memset(b, 0, INQ_STD_LEN);
	/* A LUN this nexus does not see: PERIPHERAL QUALIFIER 011b, device
	 * type 1Fh (SPC-4 6.4.2). */
	b[0] = lu ? 0x00 : 0x7f;
	b[2] = 0x06;                /* VERSION: SPC-4 */
	b[3] = 0x02 | 0x10;         /* response data format 2, HISUP */
	b[4] = INQ_STD_LEN - 5;     /* ADDITIONAL LENGTH */
	b[7] = 0x02;                /* CMDQUE: full task management model */
	if (lu && lu->attrs.emulate_3pc && scsi_op_dispatched(0x83))
		b[5] |= 0x08;       /* 3PC: EXTENDED COPY (xcopy.c) */
	b[5] |= scsi_alua_tpgs(cmd); /* TPGS: the port's ALUA group (alua.c) */
	if (lu)
		lu_product(lu, product, sizeof(product));
	put_ascii(b + 8, SCSI_VENDOR, 8);
	put_ascii(b + 16, product, 16);
	put_ascii(b + 32, SCSI_REVISION, 4);
	/* Version descriptors (SPC-4 table 142): SAM-5, SPC-4, SBC-3. */
	put_be16(b + 58, 0x00a0);
	put_be16(b + 60, 0x0460);
	put_be16(b + 62, 0x04c0);
	return INQ_STD_LEN;
}

static size_t vpd_supported_pages(const struct scsi_cmd *cmd, uint8_t *b)
{
	static const uint8_t pages[] = { 0x00, 0x80, 0x83, 0x86, 0x8f,
					 0xb0, 0xb1, 0xb2 };
	size_t n = 4;

	for (size_t i = 0; i < sizeof(pages); i++)
		if (vpd_supported(cmd->lu, pages[i]))
			b[n++] = pages[i];
	return n;
}

/* VPD 0x80 (SPC-4 7.8.15): the storage object's unit serial (its wwn). */
static size_t vpd_unit_serial(const struct scsi_cmd *cmd, uint8_t *b)
{
	size_t n = strnlen(cmd->lu->wwn, sizeof(cmd->lu->wwn));

	memcpy(b + 4, cmd->lu->wwn, n);
	return 4 + n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* NAA IEEE Registered Extended designator (SPC-4 7.8.6.6.5), built as
 * LIO's spc_gen_naa_6h_vendor_specific does: NAA 6, company id 001405h,
 * then the hex digits of the unit serial fill the 36-bit vendor specific
 * identifier and the 64-bit extension. Initiators that met a LIO LU see
 * the same identifier here. */
static void naa_6h(const char *wwn, uint8_t d[16])
{
	uint32_t cid = SCSI_LIO_COMPANY_ID;
	size_t off = 3;
	bool hi = false;

	memset(d, 0, 16);
	d[0] = (uint8_t)(0x60 | ((cid >> 20) & 0xf));
	d[1] = (uint8_t)(cid >> 12);
	d[2] = (uint8_t)(cid >> 4);
	d[3] = (uint8_t)((cid & 0xf) << 4);
	for (const char *p = wwn; *p && off < 16; p++) {
		int v = hexval(*p);

		if (v < 0)
			continue;
		if (!hi) {
			d[off++] |= (uint8_t)v;
			hi = true;
		} else {
			d[off] = (uint8_t)(v << 4);
			hi = false;
		}
	}
}

void scsi_lu_naa(const struct scsi_lu *lu, uint8_t d[16])
{
	naa_6h(lu->wwn, d);
}

/* One designation descriptor (SPC-4 7.8.6.1). */
static size_t desig(uint8_t *b, uint8_t b0, uint8_t b1, const void *data,
		    size_t len)
{
	b[0] = b0;
	b[1] = b1;
	b[2] = 0;
	b[3] = (uint8_t)len;
	memcpy(b + 4, data, len);
	return 4 + len;
}

/* SCSI name string designator: UTF-8, NUL terminated, padded to a
 * multiple of 4, at most 256 bytes (SPC-4 7.8.6.11). */
static size_t desig_name(uint8_t *b, uint8_t b0, uint8_t b1, const char *name)
{
	uint8_t s[256];
	size_t n = strnlen(name, sizeof(s) - 1);

	memset(s, 0, sizeof(s));
	memcpy(s, name, n);
	n = (n + 1 + 3) & ~(size_t)3;
	if (n > sizeof(s))
		n = sizeof(s);
	return desig(b, b0, b1, s, n);
}

/* VPD 0x83 device identification (SPC-4 7.8.6), LIO's set and order. */
static size_t vpd_device_id(const struct scsi_cmd *cmd, uint8_t *b)
{
	const struct scsi_lu *lu = cmd->lu;
	size_t n = 4;
	uint8_t d[16];
	char product[17], t10[8 + 16 + 1 + 64 + 1], name[SCSI_NAME_MAX + 16];
	int len;

	/* LU: NAA, code set binary, association LU, type 3 */
	naa_6h(lu->wwn, d);
	n += desig(b + n, 0x01, 0x03, d, 16);

	/* LU: T10 vendor id "LIO-ORG " + "<product>:<serial>" + NUL, code set
	 * ASCII, type 1 (LIO appends the terminating NUL too). */
	lu_product(lu, product, sizeof(product));
	len = snprintf(t10, sizeof(t10), "%-8.8s%s:%s", SCSI_VENDOR, product,
		       lu->wwn);
	if (len < 0)
		len = 0;
	if ((size_t)len >= sizeof(t10))
		len = sizeof(t10) - 1;
	n += desig(b + n, 0x02, 0x01, t10, (size_t)len + 1);

	if (cmd->nexus) {
		const struct scsi_tport *tp = &cmd->nexus->tport;
		uint8_t proto = (uint8_t)(tp->proto_id << 4);

		/* Target port: relative target port (type 4), PIV=1 and the
		 * protocol identifier, association target port (01b). */
		memset(d, 0, 4);
		put_be16(d + 2, tp->rel_port_id);
		n += desig(b + n, proto | 0x01, 0x80 | 0x10 | 0x04, d, 4);
		/* Target port group (type 5): the port's ALUA group. */
		memset(d, 0, 4);
		put_be16(d + 2, scsi_alua_gp_id(cmd));
		n += desig(b + n, proto | 0x01, 0x80 | 0x10 | 0x05, d, 4);
		memset(d, 0, 4);
		/* Logical unit group (type 6): default_lu_gp, id 0. */
		n += desig(b + n, 0x01, 0x06, d, 4);
		/* Target port name: "<target>,t,0x<tpgt>" (iSCSI RFC 7143
		 * 13.1 form), code set UTF-8, type 8. */
		snprintf(name, sizeof(name), "%s,t,0x%04x", tp->target_name,
			 tp->tpgt);
		n += desig_name(b + n, proto | 0x03, 0x80 | 0x10 | 0x08, name);
		/* Target device name: association target device (10b). */
		n += desig_name(b + n, proto | 0x03, 0x80 | 0x20 | 0x08,
				tp->target_name);
	}
	return n;
}

/* VPD 0x86 extended INQUIRY data (SPC-4 7.8.7). */
static size_t vpd_extended_inquiry(const struct scsi_cmd *cmd, uint8_t *b)
{
	b[5] = 0x07; /* HEADSUP, ORDSUP, SIMPSUP: all task attributes */
	if (atomic_load(&cmd->lu->bs->write_back))
		b[6] = 0x01; /* V_SUP: a volatile cache exists */
	b[8] = 0x10;         /* LUICLR: see report_ua() in cmd.c */
	return 64;
}

/* VPD 0xB0 block limits (SBC-3 6.5.3). */
static size_t vpd_block_limits(const struct scsi_cmd *cmd, uint8_t *b)
{
	const struct scsi_lu *lu = cmd->lu;
	const struct scsi_lu_attrs *a = &lu->attrs;
	uint32_t max = scsi_max_xfer_blocks(lu);
	uint32_t opt = a->optimal_sectors && a->optimal_sectors < max ?
			       a->optimal_sectors : max;

	b[4] = 0x01; /* WSNZ: WRITE SAME with 0 blocks is refused */
	if (a->emulate_caw) /* MAXIMUM COMPARE AND WRITE LENGTH */
		b[5] = (uint8_t)SCSI_CAW_MAX_BLOCKS;
	put_be16(b + 6, (uint16_t)(1u << scsi_lbppbe(lu)));
	put_be32(b + 8, max);
	put_be32(b + 12, opt);
	if (scsi_lu_tpu(lu)) {
		put_be32(b + 20, a->max_unmap_lba_count);
		put_be32(b + 24, a->max_unmap_block_desc_count);
		put_be32(b + 28, a->unmap_granularity);
		if (a->unmap_granularity_alignment)
			put_be32(b + 32, a->unmap_granularity_alignment |
						 0x80000000u); /* UGAVALID */
	}
	put_be64(b + 36, a->max_write_same_len);
	/* SBC-4 6.6.4: MAXIMUM ATOMIC TRANSFER LENGTH (WRITE ATOMIC(16));
	 * no alignment, granularity or boundary constraints. */
	put_be32(b + 44, SCSI_ATOMIC_MAX_BYTES / a->block_size < max ?
				 SCSI_ATOMIC_MAX_BYTES / a->block_size : max);
	return 64;
}

/* VPD 0xB1 block device characteristics (SBC-3 6.5.2). */
static size_t vpd_block_chars(const struct scsi_cmd *cmd, uint8_t *b)
{
	/* MEDIUM ROTATION RATE 0001h: non-rotating medium */
	if (cmd->lu->attrs.is_nonrot)
		put_be16(b + 4, 1);
	return 64;
}

/* VPD 0xB2 logical block provisioning (SBC-3 6.5.4). */
static size_t vpd_lbp(const struct scsi_cmd *cmd, uint8_t *b)
{
	if (scsi_lu_tpu(cmd->lu))
		b[5] |= 0x80; /* LBPU: UNMAP */
	if (scsi_lu_tpws(cmd->lu))
		b[5] |= 0x40 | 0x20; /* LBPWS, LBPWS10 */
	/* LBPRZ: an unmapped block reads as zeros (BS_UNMAP contract),
	 * reported unless the unmap_zeroes_data attribute says otherwise */
	if (cmd->lu->attrs.unmap_zeroes_data)
		b[5] |= 0x04;
	b[6] = 0x02; /* PROVISIONING TYPE: thin */
	return 8;
}

void spc_exec_inquiry(struct scsi_cmd *cmd)
{
	uint8_t b[1024];
	size_t n;

	memset(b, 0, sizeof(b));
	if (!(cmd->cdb[1] & 0x01)) {
		n = inquiry_std(cmd, b);
	} else {
		uint8_t page = cmd->cdb[2];

		switch (page) {
		case 0x00: n = vpd_supported_pages(cmd, b); break;
		case 0x80: n = vpd_unit_serial(cmd, b); break;
		case 0x83: n = vpd_device_id(cmd, b); break;
		case 0x86: n = vpd_extended_inquiry(cmd, b); break;
		case 0xb0: n = vpd_block_limits(cmd, b); break;
		case 0xb1: n = vpd_block_chars(cmd, b); break;
		case 0x8f: n = scsi_vpd_3pc(cmd->lu, b); break;
		default: n = vpd_lbp(cmd, b); break;
		}
		b[0] = cmd->lu ? 0x00 : 0x7f;
		b[1] = page;
		put_be16(b + 2, (uint16_t)(n - 4));
	}
	scsi_data_in(cmd, b, n);
	scsi_cmd_complete(cmd);
}

/* --- REPORT LUNS (SPC-4 6.33) --- */

static unsigned nexus_lun_count(const struct scsi_nexus *nx)
{
	return nx && nx->map ? nx->map->n : 0;
}

int spc_prepare_report_luns(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	uint32_t alloc = get_be32(cdb + 6);
	uint64_t need;

	/* SELECT REPORT 00h, 01h (well known only: we have none), 02h */
	if (cdb[2] > 0x02)
		return bad_cdb_field(cmd, 2, 7);
	/* Only what we can return needs a buffer (at least the virtual
	 * LUN 0 entry). */
	need = 8 + 8 * (uint64_t)(nexus_lun_count(cmd->nexus) + 1);
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = (uint32_t)(alloc < need ? alloc : need);
	return 0;
}

/* Copies len bytes at offset off of the parameter data into buf, as far
 * as the allocation length and buffer allow. */
static void put_clipped(uint8_t *buf, size_t cap, size_t off, const void *src,
			size_t len)
{
	if (off >= cap)
		return;
	if (len > cap - off)
		len = cap - off;
	memcpy(buf + off, src, len);
}

void spc_exec_report_luns(struct scsi_cmd *cmd)
{
	const struct scsi_nexus *nx = cmd->nexus;
	size_t cap = cmd->xfer_len < cmd->buf_len ? cmd->xfer_len : cmd->buf_len;
	size_t off = 8;
	uint8_t hdr[8] = { 0 }, e[8];
	unsigned n = nexus_lun_count(nx);

	if (!cmd->buf)
		cap = 0;
	if (cmd->cdb[2] != 0x01) {
		for (unsigned i = 0; i < n; i++) {
			if (!nx->map->ent[i].lu)
				continue;
			scsi_lun_encode(nx->map->ent[i].lun, e);
			put_clipped(cmd->buf, cap, off, e, 8);
			off += 8;
		}
		/* Nothing mapped: report LUN 0, as LIO does (SPC-4 6.33: LUN 0
		 * answers REPORT LUNS even with no LU behind it). */
		if (off == 8) {
			scsi_lun_encode(0, e);
			put_clipped(cmd->buf, cap, off, e, 8);
			off += 8;
		}
	}
	put_be32(hdr, (uint32_t)(off - 8));
	put_clipped(cmd->buf, cap, 0, hdr, 8);
	/* The initiator now knows the inventory (SPC-4 6.33). */
	scsi_nexus_clear_ua(cmd->nexus, SCSI_UA_LUNS_CHANGED);
	scsi_set_good(cmd);
	cmd->data_len = (uint32_t)(off < cap ? off : cap);
	scsi_cmd_complete(cmd);
}

/* --- TEST UNIT READY, START STOP UNIT, PREVENT ALLOW --- */

int spc_prepare_test_unit_ready(struct scsi_cmd *cmd)
{
	return 0;
}

void spc_exec_good(struct scsi_cmd *cmd)
{
	scsi_set_good(cmd);
	scsi_cmd_complete(cmd);
}

/* SBC-3 5.25: the medium is not removable, so LOEJ cannot be honoured;
 * starting and stopping are accepted and change nothing. With a POWER
 * CONDITION other than 0 the START and LOEJ bits are ignored. */
int spc_prepare_start_stop(struct scsi_cmd *cmd)
{
	uint8_t b4 = cmd->cdb[4];

	if ((b4 >> 4) == 0 && (b4 & 0x02))
		return bad_cdb_field(cmd, 4, 1);
	return 0;
}

/* SBC-3 5.13: nothing to lock on a non-removable medium; LIO accepts. */
int spc_prepare_prevent_allow(struct scsi_cmd *cmd)
{
	return 0;
}

/* --- REQUEST SENSE (SPC-4 6.39) --- */

int spc_prepare_request_sense(struct scsi_cmd *cmd)
{
	if (cmd->cdb[1] & 0x01) /* DESC: descriptor format not supported */
		return bad_cdb_field(cmd, 1, 0);
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = cmd->cdb[4];
	return 0;
}

/* Sense is delivered with the failing command (autosense), so the only
 * condition to report here is a pending unit attention, which this
 * returns and clears; or LOGICAL UNIT NOT SUPPORTED for an unmapped LUN. */
void spc_exec_request_sense(struct scsi_cmd *cmd)
{
	struct scsi_lun_ent *ent = scsi_nexus_lookup(cmd->nexus, cmd->lun);
	uint8_t s[SCSI_FIXED_SENSE_LEN];
	unsigned bit;

	if (!ent) {
		scsi_sense_fill(s, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
	} else if ((bit = scsi_ua_pop(ent)) != 0) {
		if (bit == SCSI_UA_LUNS_CHANGED)
			scsi_nexus_clear_ua(cmd->nexus, bit);
		scsi_sense_fill(s, SK_UNIT_ATTENTION, scsi_ua_asc(bit));
	} else {
		scsi_sense_fill(s, SK_NO_SENSE, ASC_NO_ADDITIONAL_SENSE);
	}
	scsi_data_in(cmd, s, sizeof(s));
	scsi_cmd_complete(cmd);
}

/* --- MODE SENSE / MODE SELECT (SPC-4 6.11-6.14, 7.5) --- */

enum { PC_CURRENT = 0, PC_CHANGEABLE = 1, PC_DEFAULT = 2, PC_SAVED = 3 };

#define MS_WP 0x1u /* cmd->state: the LUN is write protected */

/* One mode page in the requested page control; 0 if not supported. */
static size_t mode_page(const struct scsi_lu *lu, uint8_t page, int pc,
			uint8_t *p)
{
	switch (page) {
	case 0x01: /* read-write error recovery (SBC-3 6.4.8): nothing set */
		memset(p, 0, 12);
		p[0] = 0x01;
		p[1] = 0x0a;
		return 12;
	case 0x08: /* caching (SBC-3 6.4.5) */
		memset(p, 0, 20);
		p[0] = 0x08;
		p[1] = 0x12;
		if (pc == PC_CHANGEABLE) {
			p[2] = 0x04; /* WCE may be changed by MODE SELECT */
			return 20;
		}
		if (pc == PC_DEFAULT ? lu->attrs.emulate_write_cache :
				       atomic_load(&lu->bs->write_back))
			p[2] = 0x04; /* WCE */
		p[12] = 0x20; /* DRA: no read-ahead of our own */
		return 20;
	case 0x0a: /* control (SPC-4 7.5.8) */
		memset(p, 0, 12);
		p[0] = 0x0a;
		p[1] = 0x0a;
		if (pc == PC_CHANGEABLE)
			return 12;
		p[2] = 0x02; /* GLTSD: no log parameters are saved */
		p[3] = 0x10; /* QUEUE ALGORITHM MODIFIER 1: unrestricted */
		if (lu->attrs.emulate_tas)
			p[5] = 0x40; /* TAS */
		put_be16(p + 8, 0xffff); /* BUSY TIMEOUT PERIOD: unlimited */
		return 12;
	case 0x1c: /* informational exceptions control (SPC-4 7.5.12) */
		memset(p, 0, 12);
		p[0] = 0x1c;
		p[1] = 0x0a;
		return 12;
	default:
		return 0;
	}
}

static const uint8_t mode_pages[] = { 0x01, 0x08, 0x0a, 0x1c };

int spc_prepare_mode_sense(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool ten = cdb[0] == 0x5a;
	uint8_t page = cdb[2] & 0x3f, sub = cdb[3];
	uint8_t scratch[32];

	if ((cdb[2] >> 6) == PC_SAVED) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_UNSUP);
		return 1;
	}
	if (page != 0x3f && !mode_page(cmd->lu, page, PC_CURRENT, scratch))
		return bad_cdb_field(cmd, 2, 5);
	/* No subpages: only 00h, or FFh (the page and all its subpages). */
	if (sub != 0x00 && sub != 0xff)
		return bad_cdb_field(cmd, 3, 7);
	if (scsi_lun_write_protected(cmd))
		cmd->state |= MS_WP;
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = ten ? get_be16(cdb + 7) : cdb[4];
	return 0;
}

void spc_exec_mode_sense(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	const uint8_t *cdb = cmd->cdb;
	bool ten = cdb[0] == 0x5a;
	bool dbd = cdb[1] & 0x08;
	bool llba = ten && (cdb[1] & 0x10);
	int pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3f;
	uint8_t b[256];
	size_t hdr = ten ? 8 : 4, n, bdl = 0;
	uint8_t dev_spec = 0;
	uint64_t nblocks = atomic_load(&lu->nblocks);

	memset(b, 0, sizeof(b));
	/* DEVICE-SPECIFIC PARAMETER (SBC-3 6.4.1): WP, DPOFUA */
	if (cmd->state & MS_WP)
		dev_spec |= 0x80;
	if (lu->attrs.emulate_fua_write && lu->attrs.emulate_dpo)
		dev_spec |= 0x10;
	n = hdr;
	if (!dbd) {
		/* Block descriptor (SBC-3 6.4.2): nothing in it is
		 * changeable. */
		bool zero = pc == PC_CHANGEABLE;

		if (llba) {
			bdl = 16;
			if (!zero) {
				put_be64(b + n, nblocks);
				put_be32(b + n + 12, lu->attrs.block_size);
			}
		} else {
			bdl = 8;
			if (!zero) {
				put_be32(b + n, nblocks > 0xffffffffu ?
							0xffffffffu :
							(uint32_t)nblocks);
				put_be24(b + n + 5, lu->attrs.block_size);
			}
		}
		n += bdl;
	}
	if (page == 0x3f) {
		for (size_t i = 0; i < sizeof(mode_pages); i++)
			n += mode_page(lu, mode_pages[i], pc, b + n);
	} else {
		n += mode_page(lu, page, pc, b + n);
	}
	if (ten) {
		put_be16(b, (uint16_t)(n - 2));
		b[3] = dev_spec;
		if (llba)
			b[4] = 0x01; /* LONGLBA */
		put_be16(b + 6, (uint16_t)bdl);
	} else {
		b[0] = (uint8_t)(n - 1);
		b[2] = dev_spec;
		b[3] = (uint8_t)bdl;
	}
	scsi_data_in(cmd, b, n);
	scsi_cmd_complete(cmd);
}

int spc_prepare_mode_select(struct scsi_cmd *cmd)
{
	const uint8_t *cdb = cmd->cdb;
	bool ten = cdb[0] == 0x55;
	uint32_t len = ten ? get_be16(cdb + 7) : cdb[4];

	/* SP: there are no saved pages (SPC-4 6.11) */
	if (cdb[1] & 0x01)
		return bad_cdb_field(cmd, 1, 0);
	/* PF=0 would mean vendor-specific page format; we only have the
	 * SPC-4 one (LIO refuses it the same way). */
	if (len && !(cdb[1] & 0x10))
		return bad_cdb_field(cmd, 1, 4);
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = len;
	return 0;
}

static void param_error(struct scsi_cmd *cmd, size_t byte, int bit)
{
	scsi_set_sense_field(cmd, false, (uint16_t)byte, bit);
}

static int highest_bit(uint8_t v)
{
	int b = 7;

	while (b > 0 && !(v & (1u << b)))
		b--;
	return b;
}

/* Checks the whole parameter list before changing anything, so a list
 * that fails leaves every parameter as it was (SPC-4 6.11). Only WCE in
 * the caching page is changeable; every other field must carry its
 * current value. */
static void mode_select(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	bool ten = cmd->cdb[0] == 0x55;
	const uint8_t *b = cmd->buf;
	size_t n = cmd->xfer_len < cmd->buf_len ? cmd->xfer_len : cmd->buf_len;
	size_t hdr = ten ? 8 : 4, bdl, dlen, off;
	bool wce = atomic_load(&lu->bs->write_back);
	uint8_t cur[32], chg[32];

	if (cmd->xfer_len == 0) {
		scsi_set_good(cmd);
		return;
	}
	if (!b || n < hdr)
		goto length_error;
	bdl = ten ? get_be16(b + 6) : b[3];
	dlen = ten && (b[4] & 0x01) ? 16 : 8; /* LONGLBA */
	if (bdl > n - hdr)
		goto length_error;
	if (bdl % dlen) {
		param_error(cmd, ten ? 6 : 3, -1);
		return;
	}
	for (off = hdr; off < hdr + bdl; off += dlen) {
		const uint8_t *d = b + off;
		uint64_t nb = dlen == 16 ? get_be64(d) : get_be32(d);
		uint64_t cur_nb = atomic_load(&lu->nblocks);
		uint32_t blen = dlen == 16 ? get_be32(d + 12) : get_be24(d + 5);

		if (dlen == 8 && cur_nb > 0xffffffffu)
			cur_nb = 0xffffffffu;
		/* SBC-3 6.4.2: 0 blocks means "no change" */
		if (nb != 0 && nb != cur_nb) {
			param_error(cmd, off, -1);
			return;
		}
		if (blen != lu->attrs.block_size) {
			param_error(cmd, off + (dlen == 16 ? 12 : 5), -1);
			return;
		}
	}
	for (off = hdr + bdl; off < n;) {
		const uint8_t *p = b + off;
		size_t plen, clen;

		if (p[0] & 0x40) { /* SPF: we have no subpages */
			param_error(cmd, off, 6);
			return;
		}
		if (n - off < 2)
			goto length_error;
		plen = (size_t)p[1] + 2;
		if (plen > n - off)
			goto length_error;
		/* PS (bit 7) is reserved in MODE SELECT: ignore it */
		clen = mode_page(lu, p[0] & 0x3f, PC_CURRENT, cur);
		if (!clen) {
			param_error(cmd, off, 5);
			return;
		}
		if (plen != clen) {
			param_error(cmd, off + 1, 7);
			return;
		}
		mode_page(lu, p[0] & 0x3f, PC_CHANGEABLE, chg);
		for (size_t i = 2; i < plen; i++) {
			uint8_t diff = (uint8_t)((p[i] ^ cur[i]) & ~chg[i]);

			if (diff) {
				param_error(cmd, off + i, highest_bit(diff));
				return;
			}
		}
		if ((p[0] & 0x3f) == 0x08)
			wce = p[2] & 0x04;
		off += plen;
	}
	/* SPC-4 7.5.2: a change made through one I_T nexus is announced to
	 * the others with MODE PARAMETERS CHANGED. */
	if (atomic_exchange(&lu->bs->write_back, wce) != wce)
		scsi_lu_establish_ua_except(lu, SCSI_UA_MODE_CHANGED,
					    cmd->nexus);
	scsi_set_good(cmd);
	return;

length_error:
	scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH_ERROR);
}

void spc_exec_mode_select(struct scsi_cmd *cmd)
{
	mode_select(cmd);
	scsi_cmd_complete(cmd);
}
