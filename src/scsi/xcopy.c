/* Third-party copy: EXTENDED COPY (LID1) (SPC-4 6.3), RECEIVE COPY
 * RESULTS (SPC-4 6.18: COPY STATUS, OPERATING PARAMETERS) and the
 * Third-party Copy VPD page (SPC-4 7.8.17), between the LUs of this
 * daemon (VMware's VAAI XCOPY).
 *
 * Copy targets are named by identification descriptors (E4h) carrying
 * the NAA designator of VPD 0x83; scsi_lu_find_naa finds the LU. Only
 * block-to-block segments (02h) are supported, as in LIO. The copy runs
 * synchronously on the worker, in chunks of XCOPY_CHUNK bytes, under the
 * destination's cmp_lock (so it does not interleave with COMPARE AND
 * WRITE); a segment is at most 65535 blocks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"
#include "util/bytes.h"

#define SK_COPY_ABORTED 0x0a
#define ASC_COPY_TARGET_UNREACHABLE 0x0d02
#define ASC_TOO_MANY_TARGET_DESC 0x2606
#define ASC_UNSUPPORTED_TARGET_DESC 0x2607
#define ASC_TOO_MANY_SEGMENT_DESC 0x2608
#define ASC_UNSUPPORTED_SEGMENT_DESC 0x2609

#define XCOPY_MAX_TARGETS 8u
#define XCOPY_MAX_SEGMENTS 8u
#define XCOPY_MAX_DESC_LIST 1024u
#define XCOPY_HDR 16u
#define XCOPY_TD_LEN 32u
#define XCOPY_B2B_LEN 28u
#define XCOPY_CHUNK (1u << 20)
#define XCOPY_HIST 16u

/* Results of the last copies, for RECEIVE COPY RESULTS COPY STATUS: per
 * LU, keyed by list identifier and initiator port (SPC-4 6.18.3). */
struct xcopy_result {
	bool used;
	uint8_t list_id;
	uint8_t status;     /* COPY MANAGER STATUS: 1 done, 2 done with error */
	uint16_t segments;  /* SEGMENTS PROCESSED */
	uint64_t blocks;    /* TRANSFER COUNT, in blocks */
	char iport[SCSI_NAME_MAX + 32];
};

struct scsi_xcopy {
	struct xcopy_result r[XCOPY_HIST];
	unsigned next;
};

void scsi_xcopy_free(struct scsi_lu *lu)
{
	free(lu->xcopy);
	lu->xcopy = NULL;
}

/* Records a result under lu->lock. */
static void record(struct scsi_cmd *cmd, uint8_t list_id, uint8_t status,
		   uint16_t segments, uint64_t blocks)
{
	struct scsi_lu *lu = cmd->lu;
	struct xcopy_result *res = NULL;
	struct scsi_xcopy *x;

	pthread_mutex_lock(&lu->lock);
	if (!lu->xcopy)
		lu->xcopy = calloc(1, sizeof(*lu->xcopy));
	x = lu->xcopy;
	if (!x)
		goto out;
	for (unsigned i = 0; i < XCOPY_HIST; i++)
		if (x->r[i].used && x->r[i].list_id == list_id &&
		    strcmp(x->r[i].iport, cmd->nexus->initiator_port) == 0)
			res = &x->r[i];
	if (!res) {
		res = &x->r[x->next];
		x->next = (x->next + 1) % XCOPY_HIST;
	}
	res->used = true;
	res->list_id = list_id;
	res->status = status;
	res->segments = segments;
	res->blocks = blocks;
	snprintf(res->iport, sizeof(res->iport), "%s",
		 cmd->nexus->initiator_port);
out:
	pthread_mutex_unlock(&lu->lock);
}

/* --- EXTENDED COPY (LID1) --- */

int spc_prepare_xcopy(struct scsi_cmd *cmd)
{
	uint32_t len = get_be32(cmd->cdb + 10);

	if (!cmd->lu->attrs.emulate_3pc) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	if ((cmd->cdb[1] & 0x1f) != 0x00) { /* LID1 only */
		scsi_set_sense_field(cmd, true, 1, 4);
		return 1;
	}
	if (len > XCOPY_HDR + XCOPY_MAX_DESC_LIST) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAM_LIST_LENGTH_ERROR);
		return 1;
	}
	cmd->dir = SCSI_DIR_WRITE;
	cmd->xfer_len = len;
	return 0;
}

/* Identification descriptor (E4h, SPC-4 7.3.6.2) -> LU, with a reference.
 * The command's own LU is found without the registry. */
static int target_lu(struct scsi_cmd *cmd, const uint8_t *td, size_t off,
		     struct scsi_lu **out)
{
	uint8_t naa[16];

	*out = NULL;
	if (td[0] != 0xe4) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_UNSUPPORTED_TARGET_DESC);
		return 1;
	}
	/* Byte 1: the LU ID TYPE bits are reserved in SPC-4 and ignored
	 * (SPC-3 defined them); NUL (obsolete: a null copy target) and a
	 * non-block peripheral type name no target we have. The designator
	 * must be the LU's NAA one: code set binary, association LU. */
	if ((td[1] & 0x20) || (td[1] & 0x1f) ||
	    (td[4] & 0x0f) != 0x01 || (td[5] & 0x30) != 0 ||
	    (td[5] & 0x0f) != 0x03 || td[7] != 16) {
		scsi_set_sense(cmd, SK_COPY_ABORTED, ASC_COPY_TARGET_UNREACHABLE);
		return 1;
	}
	scsi_lu_naa(cmd->lu, naa);
	if (memcmp(naa, td + 8, 16) == 0) {
		scsi_lu_get(cmd->lu);
		*out = cmd->lu;
		return 0;
	}
	*out = scsi_lu_find_naa(td + 8);
	if (!*out) {
		scsi_set_sense(cmd, SK_COPY_ABORTED, ASC_COPY_TARGET_UNREACHABLE);
		return 1;
	}
	return 0;
}

/* One block-to-block segment (SPC-4 6.3.7.5). */
static int copy_segment(struct scsi_cmd *cmd, struct scsi_lu *src,
			struct scsi_lu *dst, const uint8_t *sd, uint64_t *done)
{
	uint32_t nblk = get_be16(sd + 10);
	uint64_t slba = get_be64(sd + 12), dlba = get_be64(sd + 20);
	uint32_t bsz = src->attrs.block_size;
	uint64_t bytes = (uint64_t)nblk * bsz, pos = 0;
	uint8_t *buf;
	int res = 0;

	/* both ends must have the same block size (no DC/CAT padding) */
	if (dst->attrs.block_size != bsz) {
		scsi_set_sense(cmd, SK_COPY_ABORTED, ASC_INVALID_FIELD_IN_PARAM_LIST);
		return 1;
	}
	if (slba > atomic_load(&src->nblocks) ||
	    nblk > atomic_load(&src->nblocks) - slba ||
	    dlba > atomic_load(&dst->nblocks) ||
	    nblk > atomic_load(&dst->nblocks) - dlba) {
		/* SPC-4 6.3.4: the segment fails; COPY ABORTED with the
		 * segment's failure reported as no additional sense */
		scsi_set_sense(cmd, SK_COPY_ABORTED, ASC_NO_ADDITIONAL_SENSE);
		return 1;
	}
	if (dst->bs->readonly) {
		scsi_set_sense(cmd, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return 1;
	}
	if (!nblk)
		return 0;
	buf = aligned_alloc(4096, XCOPY_CHUNK);
	if (!buf) {
		scsi_set_sense(cmd, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
		return 1;
	}
	pthread_mutex_lock(&dst->cmp_lock);
	while (pos < bytes) {
		uint64_t n = bytes - pos < XCOPY_CHUNK ? bytes - pos : XCOPY_CHUNK;

		res = sbc_sync_io(src, BS_READ, slba * bsz + pos, n, buf, false);
		if (res == 0)
			res = sbc_sync_io(dst, BS_WRITE, dlba * bsz + pos, n, buf,
					  false);
		if (res < 0)
			break;
		pos += n;
		*done += n / bsz;
	}
	pthread_mutex_unlock(&dst->cmp_lock);
	free(buf);
	if (res < 0) {
		scsi_set_sense(cmd, SK_COPY_ABORTED, res == -ENOSPC ?
			       ASC_SPACE_ALLOC_FAILED : ASC_WRITE_ERROR);
		return 1;
	}
	return 0;
}

static void xcopy(struct scsi_cmd *cmd)
{
	const uint8_t *p = cmd->buf;
	size_t len = cmd->xfer_len;
	struct scsi_lu *tgt[XCOPY_MAX_TARGETS] = { NULL };
	uint32_t tdl, sdl, ntd, off;
	unsigned nseg = 0;
	uint64_t blocks = 0;
	uint8_t list_id;

	if (len == 0) { /* SPC-4 6.3.1: nothing to do */
		scsi_set_good(cmd);
		return;
	}
	if (sbc_data_out_short(cmd))
		return;
	if (len < XCOPY_HDR) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	list_id = p[0];
	tdl = get_be16(p + 2);
	sdl = get_be32(p + 8);
	/* LIST ID USAGE 11b is reserved; inline data is not supported */
	if ((p[1] & 0x18) == 0x18) {
		scsi_set_sense_field(cmd, false, 1, 4);
		return;
	}
	if (get_be32(p + 12)) {
		scsi_set_sense_field(cmd, false, 12, -1);
		return;
	}
	if ((uint64_t)XCOPY_HDR + tdl + sdl > len) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
			       ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	if (tdl % XCOPY_TD_LEN) {
		scsi_set_sense_field(cmd, false, 2, -1);
		return;
	}
	ntd = tdl / XCOPY_TD_LEN;
	if (ntd > XCOPY_MAX_TARGETS) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_TOO_MANY_TARGET_DESC);
		return;
	}
	/* count the segments first: too many is refused before any copy */
	for (off = XCOPY_HDR + tdl; off < XCOPY_HDR + tdl + sdl; nseg++) {
		const uint8_t *sd = p + off;

		if (off + 4 > XCOPY_HDR + tdl + sdl) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_PARAM_LIST_LENGTH_ERROR);
			return;
		}
		off += 4 + get_be16(sd + 2);
	}
	if (nseg > XCOPY_MAX_SEGMENTS) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_TOO_MANY_SEGMENT_DESC);
		return;
	}
	for (uint32_t i = 0; i < ntd; i++)
		if (target_lu(cmd, p + XCOPY_HDR + i * XCOPY_TD_LEN,
			      XCOPY_HDR + i * XCOPY_TD_LEN, &tgt[i]))
			goto out;
	nseg = 0;
	for (off = XCOPY_HDR + tdl; off < XCOPY_HDR + tdl + sdl; nseg++) {
		const uint8_t *sd = p + off;
		uint16_t dlen = get_be16(sd + 2);
		uint16_t si, di;

		if (sd[0] != 0x02) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_UNSUPPORTED_SEGMENT_DESC);
			goto out;
		}
		if (dlen != XCOPY_B2B_LEN - 4 ||
		    off + XCOPY_B2B_LEN > XCOPY_HDR + tdl + sdl) {
			scsi_set_sense(cmd, SK_ILLEGAL_REQUEST,
				       ASC_PARAM_LIST_LENGTH_ERROR);
			goto out;
		}
		si = get_be16(sd + 4);
		di = get_be16(sd + 6);
		/* SPC-4 6.3.7.1: an index naming no target descriptor */
		if (si >= ntd || di >= ntd) {
			scsi_set_sense(cmd, SK_COPY_ABORTED,
				       ASC_COPY_TARGET_UNREACHABLE);
			goto out;
		}
		if (copy_segment(cmd, tgt[si], tgt[di], sd, &blocks))
			goto out;
		off += XCOPY_B2B_LEN;
	}
	scsi_set_good(cmd);
out:
	record(cmd, list_id, cmd->status == SAM_STAT_GOOD ? 1 : 2,
	       (uint16_t)nseg, blocks);
	for (uint32_t i = 0; i < XCOPY_MAX_TARGETS; i++)
		scsi_lu_put_on(tgt[i], cmd->loop);
}

void spc_exec_xcopy(struct scsi_cmd *cmd)
{
	xcopy(cmd);
	scsi_cmd_complete(cmd);
}

/* --- RECEIVE COPY RESULTS (SPC-4 6.18) --- */

int spc_prepare_rcr(struct scsi_cmd *cmd)
{
	uint8_t sa = cmd->cdb[1] & 0x1f;

	if (!cmd->lu->attrs.emulate_3pc) {
		scsi_set_sense(cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return 1;
	}
	if (sa != 0x00 && sa != 0x03) {
		scsi_set_sense_field(cmd, true, 1, 4);
		return 1;
	}
	cmd->dir = SCSI_DIR_READ;
	cmd->xfer_len = get_be32(cmd->cdb + 10);
	return 0;
}

static size_t op_params(uint8_t *b)
{
	memset(b, 0, 44 + 2);
	put_be32(b, 44 + 2 - 4);               /* AVAILABLE DATA */
	b[4] = 0x01;                           /* SNLID */
	put_be16(b + 8, XCOPY_MAX_TARGETS);    /* MAXIMUM TARGET DESCRIPTOR COUNT */
	put_be16(b + 10, XCOPY_MAX_SEGMENTS);  /* MAXIMUM SEGMENT DESCRIPTOR COUNT */
	put_be32(b + 12, XCOPY_MAX_DESC_LIST); /* MAXIMUM DESCRIPTOR LIST LENGTH */
	put_be32(b + 16, 65535u * 512u);       /* MAXIMUM SEGMENT LENGTH (bytes) */
	put_be16(b + 34, 1);                   /* TOTAL CONCURRENT COPIES */
	b[36] = 1;                             /* MAXIMUM CONCURRENT COPIES */
	b[37] = 9;                             /* DATA SEGMENT GRANULARITY: 2^9 */
	b[43] = 2;                             /* IMPLEMENTED DESCRIPTOR LIST LENGTH */
	b[44] = 0x02;                          /* block to block */
	b[45] = 0xe4;                          /* identification descriptor */
	return 46;
}

void spc_exec_rcr(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	uint8_t b[64];
	bool found = false;

	memset(b, 0, sizeof(b));
	if ((cmd->cdb[1] & 0x1f) == 0x03) {
		scsi_data_in(cmd, b, op_params(b));
		scsi_cmd_complete(cmd);
		return;
	}
	/* COPY STATUS for LIST IDENTIFIER cdb[2] from this initiator port;
	 * an unknown list is an invalid field (SPC-4 6.18.3). */
	pthread_mutex_lock(&lu->lock);
	for (unsigned i = 0; lu->xcopy && i < XCOPY_HIST; i++) {
		const struct xcopy_result *r = &lu->xcopy->r[i];

		if (!r->used || r->list_id != cmd->cdb[2] ||
		    strcmp(r->iport, cmd->nexus->initiator_port))
			continue;
		put_be32(b, 8);
		b[4] = r->status;
		put_be16(b + 5, r->segments);
		b[7] = 0xf1; /* TRANSFER COUNT UNITS: logical blocks */
		put_be32(b + 8, r->blocks > 0xffffffffu ? 0xffffffffu :
							  (uint32_t)r->blocks);
		found = true;
		break;
	}
	pthread_mutex_unlock(&lu->lock);
	if (found)
		scsi_data_in(cmd, b, 12);
	else
		scsi_set_sense_field(cmd, true, 2, -1);
	scsi_cmd_complete(cmd);
}

/* --- Third-party Copy VPD page (SPC-4 7.8.17) --- */

size_t scsi_vpd_3pc(const struct scsi_lu *lu, uint8_t *b)
{
	size_t n = 4, start;

	/* Supported Commands descriptor (0001h) */
	start = n;
	put_be16(b + n, 0x0001);
	n += 4;
	b[n++] = 0; /* COMMANDS SUPPORTED LIST LENGTH, below */
	b[n++] = 0x83; b[n++] = 1; b[n++] = 0x00;                /* EXTENDED COPY: LID1 */
	b[n++] = 0x84; b[n++] = 2; b[n++] = 0x00; b[n++] = 0x03; /* RCR */
	b[start + 4] = (uint8_t)(n - start - 5);
	n = start + ((n - start + 3) & ~(size_t)3);
	put_be16(b + start + 2, (uint16_t)(n - start - 4));
	/* Parameter Data descriptor (0004h) */
	start = n;
	put_be16(b + n, 0x0004);
	put_be16(b + n + 2, 0x1c);
	put_be16(b + n + 8, XCOPY_MAX_TARGETS);
	put_be16(b + n + 10, XCOPY_MAX_SEGMENTS);
	put_be32(b + n + 12, XCOPY_MAX_DESC_LIST);
	n += 32;
	/* Supported Descriptors descriptor (0008h) */
	start = n;
	put_be16(b + n, 0x0008);
	b[n + 4] = 2;
	b[n + 5] = 0x02;
	b[n + 6] = 0xe4;
	n += 8;
	put_be16(b + start + 2, 4);
	/* Supported CSCD Descriptor IDs descriptor (000Ch): none */
	put_be16(b + n, 0x000c);
	put_be16(b + n + 2, 4);
	n += 8;
	(void)lu;
	return n;
}
