/* iSCSI login / text key negotiation (RFC 7143 §6, §13): one table of keys
 * with their RFC defaults, value kinds and result functions, the TPG's
 * configured values (LIO's "parameter" group, kept as strings), and the
 * negotiated values of a session. */
#ifndef UT_ISCSI_PARAMS_H
#define UT_ISCSI_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys the TPG "parameter" group holds (LIO names, LIO defaults). */
enum iscsi_tpg_key {
	ITK_AUTHMETHOD,          /* "CHAP,None" list */
	ITK_HEADERDIGEST,        /* "CRC32C,None" */
	ITK_DATADIGEST,          /* "CRC32C,None" */
	ITK_MAXCONNECTIONS,      /* 1 */
	ITK_TARGETALIAS,         /* "LIO Target" */
	ITK_INITIALR2T,          /* Yes */
	ITK_IMMEDIATEDATA,       /* Yes */
	ITK_MAXRECVDATASEGMENTLENGTH, /* 8192: what the target can receive */
	ITK_MAXXMITDATASEGMENTLENGTH, /* 262144: cap on what the target sends */
	ITK_MAXBURSTLENGTH,      /* 262144 */
	ITK_FIRSTBURSTLENGTH,    /* 65536 */
	ITK_DEFAULTTIME2WAIT,    /* 2 */
	ITK_DEFAULTTIME2RETAIN,  /* 20 */
	ITK_MAXOUTSTANDINGR2T,   /* 1 */
	ITK_DATAPDUINORDER,      /* Yes */
	ITK_DATASEQUENCEINORDER, /* Yes */
	ITK_ERRORRECOVERYLEVEL,  /* 0 */
	ITK_IFMARKER,            /* No */
	ITK_OFMARKER,            /* No */
	ITK_IFMARKINT,           /* Reject */
	ITK_OFMARKINT,           /* Reject */
	/* iSER (RFC 7147) keys LIO keeps on every TPG; configuration only
	 * here (iSCSI over TCP), saved and restored like LIO. */
	ITK_RDMAEXTENSIONS,      /* No */
	ITK_INITIATORRECVDATASEGMENTLENGTH, /* 262144 */
	ITK_TARGETRECVDATASEGMENTLENGTH,    /* 8192 */
	ITK__COUNT
};

#define ISCSI_PARAM_VALUE_MAX 256

struct iscsi_tpg_params {
	char val[ITK__COUNT][ISCSI_PARAM_VALUE_MAX];
};

/* LIO's name for a TPG key ("HeaderDigest", ...), NULL if out of range. */
const char *iscsi_tpg_key_name(enum iscsi_tpg_key k);
/* A TPG key's row as `describe tpg_parameter` shows it. */
struct iscsi_tpg_key_info {
	const char *name, *desc;
	bool honoured;			/* a configured value takes effect */
	bool numeric;			/* min / max bound it */
	uint32_t min, max;
	const char *const *values;	/* list keys: the members, NULL ends */
};
void iscsi_tpg_key_describe(enum iscsi_tpg_key k,
			    struct iscsi_tpg_key_info *out);
/* Index of a key by name (case-sensitive, as RFC 7143 §6.1), or -1. */
int iscsi_tpg_key_find(const char *name);
void iscsi_tpg_params_default(struct iscsi_tpg_params *p);
/* Validates value against the key's kind and range; on error returns
 * -EINVAL with a message in err and leaves p unchanged. */
int iscsi_tpg_param_set(struct iscsi_tpg_params *p, const char *name,
			const char *value, char *err, size_t errlen);

/* Negotiated, typed values of one session / connection. */
struct iscsi_sess_params {
	bool header_digest;
	bool data_digest;
	uint32_t max_connections;
	bool initial_r2t;
	bool immediate_data;
	uint32_t max_recv_dsl;  /* target receives at most this per PDU */
	uint32_t max_xmit_dsl;  /* target sends at most this per PDU (the
				 * initiator's MaxRecvDataSegmentLength, capped
				 * by MaxXmitDataSegmentLength) */
	uint32_t max_burst;
	uint32_t first_burst;
	uint32_t time2wait;
	uint32_t time2retain;
	uint32_t max_outstanding_r2t;
	bool data_pdu_in_order;
	bool data_seq_in_order;
	uint32_t erl;
	char target_alias[ISCSI_PARAM_VALUE_MAX];
	char initiator_alias[ISCSI_PARAM_VALUE_MAX];
};

/* RFC 7143 defaults (what holds if a key is never negotiated). */
void iscsi_sess_params_default(struct iscsi_sess_params *sp);

/* A growing "key=value\0key=value\0" buffer (RFC 7143 §6.1 text format). */
struct iscsi_text {
	char *buf;
	size_t len;
	size_t cap;
};
void iscsi_text_init(struct iscsi_text *t);
void iscsi_text_free(struct iscsi_text *t);
void iscsi_text_reset(struct iscsi_text *t);
int iscsi_text_add(struct iscsi_text *t, const char *key, const char *value);
int iscsi_text_addf(struct iscsi_text *t, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends len bytes verbatim: collects the text of a request continued over
 * several PDUs (C bit; a key=value pair may span PDUs, RFC 7143 §6.1).
 * 0, or -ENOMEM / -E2BIG (total above 16 MiB) / -EINVAL. */
int iscsi_text_add_raw(struct iscsi_text *t, const char *data, size_t len);

/* Splits text into key=value pairs. Calls fn for each; a pair without '='
 * or with an empty / too long key (> 63 bytes) or value (> 8192 bytes) makes
 * the whole parse fail with -EINVAL before any fn call. A final pair need
 * not be NUL terminated. fn returning non-zero stops with that value. */
int iscsi_text_foreach(const char *text, size_t len,
		       int (*fn)(void *arg, const char *key, const char *value),
		       void *arg);

/* Negotiation state of one login (across its PDUs) or one Text exchange. */
struct iscsi_neg {
	const struct iscsi_tpg_params *tpg;
	struct iscsi_sess_params *sp; /* updated as keys are agreed */
	bool discovery;               /* SessionType=Discovery */
	bool leading;                 /* leading connection (TSIH 0) */
	bool full_feature;            /* Text in FFP: only FFP-settable keys */
	uint64_t seen;                /* keys already negotiated (bit per key) */
	bool declared_mrdsl;          /* target declared its MaxRecvDSL */
};

/* Status of negotiating one key */
enum iscsi_neg_result {
	ISCSI_NEG_OK = 0,
	ISCSI_NEG_UNKNOWN = 1,   /* not a negotiation key (caller decides) */
	ISCSI_NEG_FAIL = -1,     /* login must fail: initiator error (0x0207
				  * missing/invalid parameter, e.g. a key sent
				  * twice, a value of the wrong kind for a
				  * declarative key) */
};

void iscsi_neg_init(struct iscsi_neg *n, const struct iscsi_tpg_params *tpg,
		    struct iscsi_sess_params *sp, bool leading);

/* Negotiate one operational key the initiator sent (RFC 7143 §13): applies
 * the result function (min, max, AND, OR, list first match, declarative),
 * records the value in n->sp and appends the answer to out ("Reject" for a
 * bad value, "Irrelevant" where the RFC says so, e.g. for discovery
 * sessions). Keys it does not know: for X- and X# keys and any other unknown
 * key it answers NotUnderstood and returns ISCSI_NEG_OK; identity and
 * authentication keys (InitiatorName, TargetName, SessionType,
 * InitiatorAlias, TargetAlias, TargetAddress, TargetPortalGroupTag,
 * AuthMethod, CHAP_*, SendTargets) return ISCSI_NEG_UNKNOWN without output so
 * the login code handles them. */
enum iscsi_neg_result iscsi_neg_key(struct iscsi_neg *n, const char *key,
				    const char *value, struct iscsi_text *out);

/* At the end of the operational stage: add the declarations the target
 * makes even when not asked (its MaxRecvDataSegmentLength when not yet
 * declared), and check cross-key rules (FirstBurstLength <= MaxBurstLength:
 * clamp). */
int iscsi_neg_finish(struct iscsi_neg *n, struct iscsi_text *out);

#endif
