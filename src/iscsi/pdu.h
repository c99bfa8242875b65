/* iSCSI PDU layout (RFC 7143 §11): opcodes, flags and the offsets of the
 * Basic Header Segment fields we use. */
#ifndef UT_ISCSI_PDU_H
#define UT_ISCSI_PDU_H

#include <stdint.h>

#include "util/bytes.h"

#define ISCSI_BHS_LEN 48
#define ISCSI_DIGEST_LEN 4
#define ISCSI_RSVD_TAG 0xffffffffu

/* Initiator opcodes (§11.1.1) */
#define ISCSI_OP_NOP_OUT 0x00
#define ISCSI_OP_SCSI_CMD 0x01
#define ISCSI_OP_TMF_REQ 0x02
#define ISCSI_OP_LOGIN_REQ 0x03
#define ISCSI_OP_TEXT_REQ 0x04
#define ISCSI_OP_DATA_OUT 0x05
#define ISCSI_OP_LOGOUT_REQ 0x06
#define ISCSI_OP_SNACK_REQ 0x10
/* Target opcodes */
#define ISCSI_OP_NOP_IN 0x20
#define ISCSI_OP_SCSI_RSP 0x21
#define ISCSI_OP_TMF_RSP 0x22
#define ISCSI_OP_LOGIN_RSP 0x23
#define ISCSI_OP_TEXT_RSP 0x24
#define ISCSI_OP_DATA_IN 0x25
#define ISCSI_OP_LOGOUT_RSP 0x26
#define ISCSI_OP_R2T 0x31
#define ISCSI_OP_ASYNC_MSG 0x32
#define ISCSI_OP_REJECT 0x3f

#define ISCSI_OPCODE_MASK 0x3f
#define ISCSI_OP_IMMEDIATE 0x40

/* byte 1 flags */
#define ISCSI_FLAG_FINAL 0x80
#define ISCSI_FLAG_CMD_READ 0x40
#define ISCSI_FLAG_CMD_WRITE 0x20
#define ISCSI_FLAG_CMD_ATTR_MASK 0x07
#define ISCSI_FLAG_LOGIN_TRANSIT 0x80
#define ISCSI_FLAG_LOGIN_CONTINUE 0x40
#define ISCSI_FLAG_TEXT_CONTINUE 0x40
#define ISCSI_FLAG_DATA_ACK 0x40
#define ISCSI_FLAG_DATA_OVERFLOW 0x04
#define ISCSI_FLAG_DATA_UNDERFLOW 0x02
#define ISCSI_FLAG_DATA_STATUS 0x01
#define ISCSI_FLAG_RSP_OVERFLOW 0x04
#define ISCSI_FLAG_RSP_UNDERFLOW 0x02

/* Common BHS offsets */
#define BHS_OPCODE 0
#define BHS_FLAGS 1
#define BHS_AHSLEN 4
#define BHS_DLEN 5  /* 3 bytes */
#define BHS_LUN 8   /* 8 bytes */
#define BHS_ITT 16
#define BHS_TTT 20  /* also EDTL (SCSI cmd), CID (login) field areas vary */
#define BHS_CMDSN 24 /* StatSN in target PDUs */
#define BHS_EXPSTATSN 28 /* ExpCmdSN in target PDUs */
#define BHS_MAXCMDSN 32
/* Fields of particular PDUs (RFC 7143 section of the layout) */
#define BHS_ISID 8      /* Login Request / Response, 6 bytes (11.12) */
#define BHS_TSIH 14     /* Login Request / Response (11.12.5) */
#define BHS_CID 20      /* Login Request (11.12.6), Logout Request (11.14.3) */
#define BHS_EDTL 20     /* SCSI Command: Expected Data Transfer Length (11.3.4) */
#define BHS_REFTT 20    /* Task Management Function: Referenced Task Tag (11.5.2) */
#define BHS_DATASN 36   /* Data-In / Data-Out DataSN (11.7.4), R2TSN (11.8.2),
			 * SCSI Response ExpDataSN (11.4.6) */
#define BHS_BUFOFF 40   /* Data-In / Data-Out, R2T: Buffer Offset (11.7.5, 11.8.3) */
#define BHS_RESIDUAL 44 /* SCSI Response, Data-In: Residual Count (11.4.5);
			 * R2T: Desired Data Transfer Length (11.8.4) */
#define BHS_ASYNC_P1 38 /* Asynchronous Message Parameter1 (11.9.1) */
#define BHS_ASYNC_P3 42 /* Asynchronous Message Parameter3 */
#define BHS_T2W 40      /* Logout Response: Time2Wait (11.15.2) */
#define BHS_T2R 42      /* Logout Response: Time2Retain (11.15.3) */

/* Reject reasons (§11.17.1) */
#define ISCSI_REJECT_DATA_DIGEST 0x02
#define ISCSI_REJECT_SNACK 0x03
#define ISCSI_REJECT_PROTOCOL 0x04
#define ISCSI_REJECT_CMD_NOT_SUPPORTED 0x05
#define ISCSI_REJECT_IMM_CMD 0x06
#define ISCSI_REJECT_TASK_IN_PROGRESS 0x07
#define ISCSI_REJECT_INVALID_DATA_ACK 0x08
#define ISCSI_REJECT_INVALID_PDU_FIELD 0x09
#define ISCSI_REJECT_OUT_OF_RESOURCES 0x0a
#define ISCSI_REJECT_WAITING_FOR_LOGOUT 0x0c

/* Login status (§11.13.5): class << 8 | detail */
#define ISCSI_LOGIN_OK 0x0000
#define ISCSI_LOGIN_TARGET_MOVED_TEMP 0x0101
#define ISCSI_LOGIN_INITIATOR_ERROR 0x0200
#define ISCSI_LOGIN_AUTH_FAILED 0x0201
#define ISCSI_LOGIN_FORBIDDEN 0x0202
#define ISCSI_LOGIN_NOT_FOUND 0x0203
#define ISCSI_LOGIN_TARGET_REMOVED 0x0204
#define ISCSI_LOGIN_UNSUPPORTED_VERSION 0x0205
#define ISCSI_LOGIN_TOO_MANY_CONNECTIONS 0x0206
#define ISCSI_LOGIN_MISSING_PARAMETER 0x0207
#define ISCSI_LOGIN_CANT_INCLUDE_IN_SESSION 0x0208
#define ISCSI_LOGIN_SESSION_TYPE_UNSUPPORTED 0x0209
#define ISCSI_LOGIN_SESSION_DOES_NOT_EXIST 0x020a
#define ISCSI_LOGIN_INVALID_DURING_LOGIN 0x020b
#define ISCSI_LOGIN_TARGET_ERROR 0x0300
#define ISCSI_LOGIN_SERVICE_UNAVAILABLE 0x0301
#define ISCSI_LOGIN_OUT_OF_RESOURCES 0x0302

/* Task management functions (§11.5.1) and responses (§11.6.1) */
#define ISCSI_TMF_ABORT_TASK 1
#define ISCSI_TMF_ABORT_TASK_SET 2
#define ISCSI_TMF_CLEAR_ACA 3
#define ISCSI_TMF_CLEAR_TASK_SET 4
#define ISCSI_TMF_LUN_RESET 5
#define ISCSI_TMF_TARGET_WARM_RESET 6
#define ISCSI_TMF_TARGET_COLD_RESET 7
#define ISCSI_TMF_TASK_REASSIGN 8
#define ISCSI_TMF_RSP_COMPLETE 0
#define ISCSI_TMF_RSP_NO_TASK 1
#define ISCSI_TMF_RSP_NO_LUN 2
#define ISCSI_TMF_RSP_TASK_ALLEGIANT 3
#define ISCSI_TMF_RSP_NO_FAILOVER 4
#define ISCSI_TMF_RSP_NOT_SUPPORTED 5
#define ISCSI_TMF_RSP_AUTH_FAILED 6
#define ISCSI_TMF_RSP_REJECTED 255

static inline uint8_t bhs_opcode(const uint8_t *bhs)
{
	return bhs[0] & ISCSI_OPCODE_MASK;
}

static inline uint32_t bhs_dlen(const uint8_t *bhs)
{
	return get_be24(bhs + BHS_DLEN);
}

static inline uint32_t bhs_ahslen(const uint8_t *bhs)
{
	return (uint32_t)bhs[BHS_AHSLEN] * 4;
}

static inline uint32_t pad4(uint32_t n)
{
	return (4 - (n & 3)) & 3;
}

/* Serial number arithmetic (RFC 1982) for CmdSN / StatSN comparisons. */
static inline int sn_cmp(uint32_t a, uint32_t b)
{
	return a == b ? 0 : ((int32_t)(a - b) < 0 ? -1 : 1);
}

#endif
