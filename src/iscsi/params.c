/* iSCSI operational key negotiation (RFC 7143 §6.2, §13) and the TPG
 * "parameter" group.
 *
 * Every key is one row of key_defs[]: its value kind and range, the result
 * function that combines the initiator's value with the target's, where it
 * may be used (RFC 7143 §13 "Use:" lines) and where the result is stored in
 * struct iscsi_sess_params. The same rows validate `set parameter` on a TPG,
 * so what the target may be configured to offer and what an initiator may
 * propose are checked by the same code.
 *
 * Behaviour decisions where RFC 7143 leaves a choice (see also the comments
 * at each rule):
 *  - A value that is not valid for its key (syntax, range, > 255 bytes) is
 *    answered "Reject" and the key keeps its current value (§6.2, §6.2.2).
 *  - A key sent twice in one negotiation fails the login (§6.2).
 *  - "Reject", "Irrelevant" and "NotUnderstood" sent as a proposed value
 *    fail the login (§6.2: reserved constants, a protocol error).
 *  - MaxRecvDataSegmentLength is declarative: a bad value cannot be answered
 *    "Reject" (the answer is the target's own declaration), so it fails the
 *    login.
 *  - Keys marked "Irrelevant when: SessionType=Discovery" are answered
 *    "Irrelevant" in a discovery session (§6.2: "If a specific key is not
 *    relevant for the current negotiation, the responder may answer with the
 *    constant Irrelevant").
 *  - Leading-only (LO) keys on a non-leading connection are answered
 *    "Irrelevant" for the same reason: the session-wide value was agreed on
 *    the leading connection and is not renegotiated (§13: LO "can only be
 *    used in the leading connection").
 *  - In a full-feature-phase Text exchange only keys whose Use is ALL may be
 *    negotiated (§13: IO = "can only be used during the Login Phase"); IO
 *    and LO keys there are answered "Reject" and nothing changes.
 *  - Boolean answers are always sent, also in the two cases where §6.2.2
 *    makes the answer optional (AND with No, OR with Yes): an answer is
 *    allowed there and keeps the exchange explicit.
 *  - FirstBurstLength is negotiated even when InitialR2T=Yes and
 *    ImmediateData=No make it irrelevant (§13.14): those keys may come after
 *    it, and answering a value is always allowed.
 *  - Obsoleted keys (§13.25: IFMarker, OFMarker, IFMarkInt, OFMarkInt):
 *    IFMarker / OFMarker are answered No (the alternative §13.25 allows to
 *    Reject, and what LIO answers), IFMarkInt / OFMarkInt are answered
 *    Reject as §13.25 requires.
 *  - Unknown keys, X- / X# extension keys (§13.22), LIO's
 *    MaxXmitDataSegmentLength and the iSER keys (RFC 7147: RDMAExtensions,
 *    Initiator/TargetRecvDataSegmentLength; we speak TCP only) are
 *    answered NotUnderstood (§6.2).
 *  - TaskReporting: we implement only RFC3720 task reporting; iSCSIProtocol-
 *    Level: we implement RFC 7143, level 1 (Minimum with the initiator's). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "iscsi/params.h"

#define MAX_DSL ((1u << 24) - 1)   /* 2^24 - 1, §13.12 - §13.14 */
#define SIMPLE_VALUE_MAX 255        /* §6.1: a simple-value is <= 255 bytes */

/* What a value looks like (§6.1 value types). */
enum vkind {
	VK_NUM,      /* numerical-value: decimal-constant or hex-constant */
	VK_BOOL,     /* boolean-value: Yes / No */
	VK_LIST,     /* list-of-values, members from def->values */
	VK_STRING,   /* iSCSI-local-name-value (TargetAlias) */
	VK_MARKINT,  /* obsolete marker interval: Reject or "a~b" */
};

/* How the initiator's value and the target's combine (§6.2.1, §6.2.2). */
enum resfn {
	RF_NONE,     /* configuration only, not a wire key */
	RF_LOGIN,    /* exchanged by the login code, not negotiated here */
	RF_LIST,     /* first of the initiator's values the target allows */
	RF_MIN,
	RF_MAX,
	RF_AND,
	RF_OR,
	RF_DECL,     /* declarative: each side states its own value */
	RF_REJECT,   /* always answered Reject */
};

/* RFC 7143 §13 "Use:" and "Irrelevant when:" lines. */
#define U_IO    0x1u  /* login phase only */
#define U_LO    0x2u  /* login of the leading connection only */
#define U_ALL   0x4u  /* login and full feature phase */
#define U_NDISC 0x8u  /* Irrelevant when SessionType=Discovery */

enum store { ST_NONE, ST_BOOL, ST_U32, ST_DIGEST };

struct key_def {
	const char *name;
	enum vkind kind;
	uint32_t min, max;             /* VK_NUM */
	const char *const *values;     /* VK_LIST: allowed members, NULL ends */
	enum resfn rf;
	unsigned use;
	const char *lio_default;       /* TPG keys: LIO's default */
	const char *fixed;             /* target's own value, when it is not
					* taken from the TPG */
	enum store st;
	size_t off;                    /* into struct iscsi_sess_params */
	/* extra bound on the target's offer (FirstBurstLength) */
	uint32_t (*cap)(const struct iscsi_neg *n, uint32_t offer);
	/* TPG keys: what `describe tpg_parameter` (utargetcli's help) says,
	 * and whether a configured value changes what is negotiated (markers,
	 * iSER keys and ErrorRecoveryLevel above 0 do not) */
	const char *desc;
	bool not_honoured;
};

/* Wire keys that are not TPG parameters follow the TPG keys. */
enum { KD_TASKREPORTING = ITK__COUNT, KD_PROTOCOLLEVEL, KD__COUNT };

_Static_assert(KD__COUNT <= 64, "iscsi_neg.seen has one bit per key");

static const char *const digest_values[] = { "CRC32C", "None", NULL };
static const char *const auth_values[] = { "CHAP", "None", NULL };
static const char *const taskrep_values[] = {
	"RFC3720", "ResponseFence", "FastAbort", NULL
};

static uint32_t cap_first_burst(const struct iscsi_neg *n, uint32_t offer);

#define SP(field) .off = offsetof(struct iscsi_sess_params, field)

static const struct key_def key_defs[KD__COUNT] = {
	/* §12.1: security negotiation, done by the login code. */
	[ITK_AUTHMETHOD] = { "AuthMethod", VK_LIST, .values = auth_values,
		.rf = RF_LOGIN, .lio_default = "CHAP,None",
		.desc = "Authentication methods offered (CHAP, None)" },
	/* §13.1 */
	[ITK_HEADERDIGEST] = { "HeaderDigest", VK_LIST, .values = digest_values,
		.rf = RF_LIST, .use = U_IO, .lio_default = "CRC32C,None",
		.desc = "Header digests offered (CRC32C, None)",
		.st = ST_DIGEST, SP(header_digest) },
	[ITK_DATADIGEST] = { "DataDigest", VK_LIST, .values = digest_values,
		.rf = RF_LIST, .use = U_IO, .lio_default = "CRC32C,None",
		.desc = "Data digests offered (CRC32C, None)",
		.st = ST_DIGEST, SP(data_digest) },
	/* §13.2 */
	[ITK_MAXCONNECTIONS] = { "MaxConnections", VK_NUM, 1, 65535,
		.rf = RF_MIN, .use = U_LO | U_NDISC, .lio_default = "1",
		.desc = "Connections per session",
		.st = ST_U32, SP(max_connections) },
	/* §13.6: declared by the login code (SessionType=Normal only). */
	[ITK_TARGETALIAS] = { "TargetAlias", VK_STRING, .rf = RF_LOGIN,
		.lio_default = "LIO Target",
		.desc = "Alias the target declares at login" },
	/* §13.10 */
	[ITK_INITIALR2T] = { "InitialR2T", VK_BOOL, .rf = RF_OR,
		.use = U_LO | U_NDISC, .lio_default = "Yes",
		.desc = "Wait for R2T before sending write data",
		.st = ST_BOOL, SP(initial_r2t) },
	/* §13.11 */
	[ITK_IMMEDIATEDATA] = { "ImmediateData", VK_BOOL, .rf = RF_AND,
		.use = U_LO | U_NDISC, .lio_default = "Yes",
		.desc = "Write data may ride in the command PDU",
		.st = ST_BOOL, SP(immediate_data) },
	/* §13.12: declarative, per connection, also in FFP. */
	[ITK_MAXRECVDATASEGMENTLENGTH] = { "MaxRecvDataSegmentLength", VK_NUM,
		512, MAX_DSL, .rf = RF_DECL, .use = U_ALL,
		.lio_default = "8192",
		.desc = "Largest data segment the target receives" },
	/* LIO only: caps what the target sends, never on the wire. */
	[ITK_MAXXMITDATASEGMENTLENGTH] = { "MaxXmitDataSegmentLength", VK_NUM,
		512, MAX_DSL, .rf = RF_NONE, .lio_default = "262144",
		.desc = "Largest data segment the target sends" },
	/* §13.13 */
	[ITK_MAXBURSTLENGTH] = { "MaxBurstLength", VK_NUM, 512, MAX_DSL,
		.rf = RF_MIN, .use = U_LO | U_NDISC, .lio_default = "262144",
		.desc = "Largest solicited data sequence",
		.st = ST_U32, SP(max_burst) },
	/* §13.14: MUST NOT exceed MaxBurstLength. */
	[ITK_FIRSTBURSTLENGTH] = { "FirstBurstLength", VK_NUM, 512, MAX_DSL,
		.rf = RF_MIN, .use = U_LO | U_NDISC, .lio_default = "65536",
		.desc = "Largest unsolicited data",
		.st = ST_U32, SP(first_burst), .cap = cap_first_burst },
	/* §13.15 */
	[ITK_DEFAULTTIME2WAIT] = { "DefaultTime2Wait", VK_NUM, 0, 3600,
		.rf = RF_MAX, .use = U_LO, .lio_default = "2",
		.desc = "Seconds to wait before reconnecting",
		.st = ST_U32, SP(time2wait) },
	/* §13.16 */
	[ITK_DEFAULTTIME2RETAIN] = { "DefaultTime2Retain", VK_NUM, 0, 3600,
		.rf = RF_MIN, .use = U_LO, .lio_default = "20",
		.desc = "Seconds task state is kept after a connection loss",
		.st = ST_U32, SP(time2retain) },
	/* §13.17 */
	[ITK_MAXOUTSTANDINGR2T] = { "MaxOutstandingR2T", VK_NUM, 1, 65535,
		.rf = RF_MIN, .use = U_LO | U_NDISC, .lio_default = "1",
		.desc = "R2Ts outstanding per command",
		.st = ST_U32, SP(max_outstanding_r2t) },
	/* §13.18 */
	[ITK_DATAPDUINORDER] = { "DataPDUInOrder", VK_BOOL, .rf = RF_OR,
		.use = U_LO | U_NDISC, .lio_default = "Yes",
		.desc = "Data PDUs in order",
		.st = ST_BOOL, SP(data_pdu_in_order) },
	/* §13.19 */
	[ITK_DATASEQUENCEINORDER] = { "DataSequenceInOrder", VK_BOOL,
		.rf = RF_OR, .use = U_LO | U_NDISC, .lio_default = "Yes",
		.desc = "Data sequences in order",
		.st = ST_BOOL, SP(data_seq_in_order) },
	/* §13.20 */
	[ITK_ERRORRECOVERYLEVEL] = { "ErrorRecoveryLevel", VK_NUM, 0, 2,
		.rf = RF_MIN, .use = U_LO, .lio_default = "0",
		.desc = "Error recovery level (0 only)", .not_honoured = true,
		.st = ST_U32, SP(erl) },
	/* §13.25 obsoleted keys (RFC 3720 §A.3.2: AND, IO). We implement no
	 * markers, so our side of the AND is always No. */
	[ITK_IFMARKER] = { "IFMarker", VK_BOOL, .rf = RF_AND, .use = U_IO,
		.lio_default = "No",
		.desc = "Obsolete (RFC 7143): always No", .not_honoured = true, .fixed = "No" },
	[ITK_OFMARKER] = { "OFMarker", VK_BOOL, .rf = RF_AND, .use = U_IO,
		.lio_default = "No",
		.desc = "Obsolete (RFC 7143): always No", .not_honoured = true, .fixed = "No" },
	[ITK_IFMARKINT] = { "IFMarkInt", VK_MARKINT, .rf = RF_REJECT,
		.use = U_IO, .lio_default = "Reject",
		.desc = "Obsolete (RFC 7143)", .not_honoured = true },
	[ITK_OFMARKINT] = { "OFMarkInt", VK_MARKINT, .rf = RF_REJECT,
		.use = U_IO, .lio_default = "Reject",
		.desc = "Obsolete (RFC 7143)", .not_honoured = true },
	/* RFC 7147 §6.3-6.5: iSER only. Over TCP they are not negotiated
	 * (answered NotUnderstood, like MaxXmitDataSegmentLength); kept so a
	 * targetcli saveconfig.json restores and saves unchanged. */
	[ITK_RDMAEXTENSIONS] = { "RDMAExtensions", VK_BOOL, .rf = RF_NONE,
		.lio_default = "No",
		.desc = "iSER only (not used over TCP)", .not_honoured = true },
	[ITK_INITIATORRECVDATASEGMENTLENGTH] = {
		"InitiatorRecvDataSegmentLength", VK_NUM, 512, MAX_DSL,
		.rf = RF_NONE, .lio_default = "262144",
		.desc = "iSER only (not used over TCP)", .not_honoured = true },
	[ITK_TARGETRECVDATASEGMENTLENGTH] = {
		"TargetRecvDataSegmentLength", VK_NUM, 512, MAX_DSL,
		.rf = RF_NONE, .lio_default = "8192",
		.desc = "iSER only (not used over TCP)", .not_honoured = true },
	/* §13.23: we only do the RFC 3720 behaviour. */
	[KD_TASKREPORTING] = { "TaskReporting", VK_LIST,
		.values = taskrep_values, .rf = RF_LIST, .use = U_LO | U_NDISC,
		.fixed = "RFC3720" },
	/* §13.24: this implementation follows RFC 7143, level 1. */
	[KD_PROTOCOLLEVEL] = { "iSCSIProtocolLevel", VK_NUM, 0, 31,
		.rf = RF_MIN, .use = U_LO, .fixed = "1" },
};

/* Keys the login code owns (identity, addressing, authentication). */
static const char *const login_keys[] = {
	"InitiatorName", "TargetName", "SessionType", "InitiatorAlias",
	"TargetAlias", "TargetAddress", "TargetPortalGroupTag", "AuthMethod",
	"SendTargets", NULL
};

/* ---- value parsing ------------------------------------------------------ */

/* §6.1: decimal-constant ("0" or a digit 1-9 followed by digits) or
 * hex-constant ("0x" / "0X" and one or more hex digits). Anything else -
 * signs, spaces, leading zeros, octal, base64 - is not a number. Values
 * above 2^32 saturate to UINT32_MAX + 1 so every range check fails without
 * any overflow. */
static int parse_num(const char *s, uint64_t *out)
{
	const uint64_t sat = (uint64_t)UINT32_MAX + 1;
	uint64_t v = 0;
	size_t i;

	if (!s || !*s || strlen(s) > SIMPLE_VALUE_MAX)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!s[2])
			return -EINVAL;
		for (i = 2; s[i]; i++) {
			char c = s[i];
			unsigned d;

			if (c >= '0' && c <= '9')
				d = (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				d = (unsigned)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				d = (unsigned)(c - 'A' + 10);
			else
				return -EINVAL;
			v = v * 16 + d;
			if (v > sat)
				v = sat;
		}
	} else {
		if (s[0] == '0' && s[1])
			return -EINVAL;
		for (i = 0; s[i]; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			v = v * 10 + (uint64_t)(s[i] - '0');
			if (v > sat)
				v = sat;
		}
	}
	*out = v;
	return 0;
}

/* A number of def's kind within def's range. */
static int num_value(const struct key_def *d, const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_num(s, &v) || v < d->min || v > d->max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* §6.1: boolean-value is exactly "Yes" or "No" (keys and values are case
 * sensitive). */
static int parse_bool(const char *s, bool *out)
{
	if (s && strcmp(s, "Yes") == 0)
		*out = true;
	else if (s && strcmp(s, "No") == 0)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static bool in_values(const char *const *values, const char *item, size_t len)
{
	for (; values && *values; values++)
		if (strlen(*values) == len && memcmp(*values, item, len) == 0)
			return true;
	return false;
}

/* Is item (len bytes) a member of the comma separated list? */
static bool in_list(const char *list, const char *item, size_t len)
{
	while (list) {
		const char *comma = strchr(list, ',');
		size_t l = comma ? (size_t)(comma - list) : strlen(list);

		if (l == len && memcmp(list, item, len) == 0)
			return true;
		list = comma ? comma + 1 : NULL;
	}
	return false;
}

/* ---- TPG parameters ----------------------------------------------------- */

const char *iscsi_tpg_key_name(enum iscsi_tpg_key k)
{
	if ((int)k < 0 || k >= ITK__COUNT)
		return NULL;
	return key_defs[k].name;
}

void iscsi_tpg_key_describe(enum iscsi_tpg_key k, struct iscsi_tpg_key_info *o)
{
	const struct key_def *d = &key_defs[k];

	memset(o, 0, sizeof(*o));
	o->name = d->name;
	o->desc = d->desc;
	o->honoured = !d->not_honoured;
	o->values = d->values;
	o->numeric = d->kind == VK_NUM;
	o->min = d->min;
	o->max = d->max;
}

int iscsi_tpg_key_find(const char *name)
{
	int i;

	if (!name)
		return -1;
	for (i = 0; i < ITK__COUNT; i++)
		if (strcmp(key_defs[i].name, name) == 0)
			return i;
	return -1;
}

void iscsi_tpg_params_default(struct iscsi_tpg_params *p)
{
	int i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < ITK__COUNT; i++)
		snprintf(p->val[i], sizeof(p->val[i]), "%s",
			 key_defs[i].lio_default);
}


static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A configured list: one or more members from d->values, each at most
 * once, no empty member. */
static bool tpg_list_ok(const struct key_def *d, const char *v)
{
	const char *p = v;

	if (!*v || strlen(v) > SIMPLE_VALUE_MAX)
		return false;
	while (p) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		const char *q = v;

		if (l == 0 || !in_values(d->values, p, l))
			return false;
		/* compare with the members before this one */
		while (q < p) {
			const char *qc = strchr(q, ',');
			size_t ql = (size_t)(qc - q); /* q < p: a comma follows */

			if (ql == l && memcmp(q, p, l) == 0)
				return false;
			q = qc + 1;
		}
		p = comma ? comma + 1 : NULL;
	}
	return true;
}

/* Obsolete IFMarkInt / OFMarkInt: "Reject" (LIO's current default) or the
 * RFC 3720 §A.3.2 range "a~b", 1 <= a <= b <= 65535, still found in old
 * saveconfig files. Never used for negotiation. */
static bool markint_ok(const char *v)
{
	char lo[16], *tilde;
	uint64_t a, b;
	size_t l;

	if (strcmp(v, "Reject") == 0)
		return true;
	tilde = strchr(v, '~');
	if (!tilde)
		return false;
	l = (size_t)(tilde - v);
	if (l == 0 || l >= sizeof(lo))
		return false;
	memcpy(lo, v, l);
	lo[l] = '\0';
	if (parse_num(lo, &a) || parse_num(tilde + 1, &b))
		return false;
	return a >= 1 && a <= b && b <= 65535;
}

/* An iSCSI-local-name-value (§6.1: UTF-8 text); we also refuse control
 * characters, which have no business in an alias and would garble logs. */
static bool string_ok(const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	if (strlen(v) > SIMPLE_VALUE_MAX)
		return false;
	for (; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int iscsi_tpg_param_set(struct iscsi_tpg_params *p, const char *name,
			const char *value, char *err, size_t errlen)
{
	char canon[ISCSI_PARAM_VALUE_MAX] = { 0 };
	const struct key_def *d;
	uint32_t num;
	bool b;
	int i;

	i = iscsi_tpg_key_find(name);
	if (i < 0) {
		set_err(err, errlen, "Unknown parameter '%.64s'",
			name ? name : "(null)");
		return -EINVAL;
	}
	d = &key_defs[i];
	if (!value) {
		set_err(err, errlen, "Missing value for parameter %s", d->name);
		return -EINVAL;
	}

	switch (d->kind) {
	case VK_NUM:
		if (i == ITK_ERRORRECOVERYLEVEL && !num_value(d, value, &num) &&
		    num > 0) {
			/* offering more than we implement would let an
			 * initiator rely on recovery we never do */
			set_err(err, errlen,
				"ErrorRecoveryLevel %u is not supported: utarget implements level 0",
				num);
			return -EINVAL;
		}
		if (num_value(d, value, &num)) {
			set_err(err, errlen,
				"Invalid value '%.64s' for parameter %s: must be a number from %u to %u",
				value, d->name, (unsigned)d->min, (unsigned)d->max);
			return -EINVAL;
		}
		/* stored canonical, so 0x200 reads back as 512 */
		snprintf(canon, sizeof(canon), "%u", (unsigned)num);
		break;
	case VK_BOOL:
		if (parse_bool(value, &b)) {
			set_err(err, errlen,
				"Invalid value '%.64s' for parameter %s: must be Yes or No",
				value, d->name);
			return -EINVAL;
		}
		snprintf(canon, sizeof(canon), "%s", value);
		break;
	case VK_LIST:
		if (!tpg_list_ok(d, value)) {
			char allowed[64] = "";
			const char *const *v;

			for (v = d->values; *v; v++) {
				size_t l = strlen(allowed);

				snprintf(allowed + l, sizeof(allowed) - l,
					 "%s%s", l ? ", " : "", *v);
			}
			set_err(err, errlen,
				"Invalid value '%.64s' for parameter %s: must be a comma-separated list of %s, each at most once",
				value, d->name, allowed);
			return -EINVAL;
		}
		snprintf(canon, sizeof(canon), "%s", value);
		break;
	case VK_STRING:
		if (!string_ok(value)) {
			set_err(err, errlen,
				"Invalid value for parameter %s: must be at most %d bytes without control characters",
				d->name, SIMPLE_VALUE_MAX);
			return -EINVAL;
		}
		snprintf(canon, sizeof(canon), "%s", value);
		break;
	case VK_MARKINT:
		if (!markint_ok(value)) {
			set_err(err, errlen,
				"Invalid value '%.64s' for parameter %s: must be Reject or a range a~b within 1~65535",
				value, d->name);
			return -EINVAL;
		}
		snprintf(canon, sizeof(canon), "%s", value);
		break;
	}
	memcpy(p->val[i], canon, sizeof(canon));
	return 0;
}

/* ---- session parameters ------------------------------------------------- */

/* The values that hold when a key is never negotiated: the "Default is"
 * line of each key in RFC 7143 §13. */
void iscsi_sess_params_default(struct iscsi_sess_params *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->header_digest = false;         /* §13.1  None */
	sp->data_digest = false;           /* §13.1  None */
	sp->max_connections = 1;           /* §13.2 */
	sp->initial_r2t = true;            /* §13.10 */
	sp->immediate_data = true;         /* §13.11 */
	sp->max_recv_dsl = 8192;           /* §13.12 */
	sp->max_xmit_dsl = 8192;           /* §13.12 */
	sp->max_burst = 262144;            /* §13.13 */
	sp->first_burst = 65536;           /* §13.14 */
	sp->time2wait = 2;                 /* §13.15 */
	sp->time2retain = 20;              /* §13.16 */
	sp->max_outstanding_r2t = 1;       /* §13.17 */
	sp->data_pdu_in_order = true;      /* §13.18 */
	sp->data_seq_in_order = true;      /* §13.19 */
	sp->erl = 0;                       /* §13.20 */
}

/* ---- negotiation -------------------------------------------------------- */

void iscsi_neg_init(struct iscsi_neg *n, const struct iscsi_tpg_params *tpg,
		    struct iscsi_sess_params *sp, bool leading)
{
	memset(n, 0, sizeof(*n));
	n->tpg = tpg;
	n->sp = sp;
	n->leading = leading;
}

/* The target's own value for key i: a fixed one, else the TPG's. */
static const char *target_str(const struct iscsi_neg *n, int i)
{
	const struct key_def *d = &key_defs[i];

	if (d->fixed)
		return d->fixed;
	if (i < ITK__COUNT && n->tpg &&
	    memchr(n->tpg->val[i], '\0', sizeof(n->tpg->val[i])))
		return n->tpg->val[i];
	return d->lio_default;
}

/* TPG values are validated when set; a TPG filled in some other way falls
 * back to LIO's default rather than offering nonsense. */
static uint32_t target_num(const struct iscsi_neg *n, int i)
{
	const struct key_def *d = &key_defs[i];
	uint32_t v;

	if (num_value(d, target_str(n, i), &v) == 0)
		return v;
	if (d->lio_default && num_value(d, d->lio_default, &v) == 0)
		return v;
	return d->min;
}

static bool target_bool(const struct iscsi_neg *n, int i)
{
	const struct key_def *d = &key_defs[i];
	bool b;

	if (parse_bool(target_str(n, i), &b) == 0)
		return b;
	return d->lio_default && parse_bool(d->lio_default, &b) == 0 && b;
}

static const char *target_list(const struct iscsi_neg *n, int i)
{
	const struct key_def *d = &key_defs[i];
	const char *v = target_str(n, i);

	if (v == d->fixed || tpg_list_ok(d, v))
		return v;
	return d->lio_default;
}

/* §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength, so the target
 * never offers more than its own MaxBurstLength nor more than the
 * MaxBurstLength already agreed in this negotiation. */
static uint32_t cap_first_burst(const struct iscsi_neg *n, uint32_t offer)
{
	uint32_t mb = target_num(n, ITK_MAXBURSTLENGTH);

	if (offer > mb)
		offer = mb;
	if ((n->seen & (1ull << ITK_MAXBURSTLENGTH)) && offer > n->sp->max_burst)
		offer = n->sp->max_burst;
	return offer;
}

static void store(const struct iscsi_neg *n, const struct key_def *d,
		  uint32_t num, bool b)
{
	char *base = (char *)n->sp;

	switch (d->st) {
	case ST_NONE:
		break;
	case ST_BOOL:
	case ST_DIGEST:
		memcpy(base + d->off, &b, sizeof(b));
		break;
	case ST_U32:
		memcpy(base + d->off, &num, sizeof(num));
		break;
	}
}

static enum iscsi_neg_result answer(struct iscsi_text *out, const char *key,
				    const char *value)
{
	/* Only an allocation failure (or a key our caller did not get from
	 * iscsi_text_foreach) can fail here; the login cannot go on. */
	return iscsi_text_add(out, key, value) ? ISCSI_NEG_FAIL : ISCSI_NEG_OK;
}

/* §13.12: the target declares what it can receive. */
static enum iscsi_neg_result declare_mrdsl(struct iscsi_neg *n,
					   struct iscsi_text *out)
{
	uint32_t mrdsl = target_num(n, ITK_MAXRECVDATASEGMENTLENGTH);

	if (iscsi_text_addf(out, key_defs[ITK_MAXRECVDATASEGMENTLENGTH].name,
			    "%u", (unsigned)mrdsl))
		return ISCSI_NEG_FAIL;
	n->sp->max_recv_dsl = mrdsl;
	n->declared_mrdsl = true;
	return ISCSI_NEG_OK;
}

/* §6.2.1: answer the first value of the initiator's list that the target
 * allows; values we do not know are skipped; none acceptable -> Reject. */
static enum iscsi_neg_result neg_list(struct iscsi_neg *n, int i,
				      const char *value, struct iscsi_text *out)
{
	const struct key_def *d = &key_defs[i];
	const char *ours = target_list(n, i);
	const char *p = value;
	char pick[SIMPLE_VALUE_MAX + 1];

	if (!*value || strlen(value) > SIMPLE_VALUE_MAX)
		return answer(out, d->name, "Reject");
	while (p) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);

		if (l && in_values(d->values, p, l) && in_list(ours, p, l)) {
			memcpy(pick, p, l);
			pick[l] = '\0';
			store(n, d, 0, strcmp(pick, "CRC32C") == 0);
			return answer(out, d->name, pick);
		}
		p = comma ? comma + 1 : NULL;
	}
	return answer(out, d->name, "Reject");
}

static enum iscsi_neg_result neg_num(struct iscsi_neg *n, int i,
				     const char *value, struct iscsi_text *out)
{
	const struct key_def *d = &key_defs[i];
	uint32_t v, t, r;

	/* §6.2.2: a value outside the key's range is answered Reject. */
	if (num_value(d, value, &v))
		return answer(out, d->name, "Reject");
	t = target_num(n, i);
	if (d->cap)
		t = d->cap(n, t);
	if (d->rf == RF_MIN)
		r = v < t ? v : t;
	else
		r = v > t ? v : t;
	store(n, d, r, false);
	if (iscsi_text_addf(out, d->name, "%u", (unsigned)r))
		return ISCSI_NEG_FAIL;
	return ISCSI_NEG_OK;
}

static enum iscsi_neg_result neg_bool(struct iscsi_neg *n, int i,
				      const char *value, struct iscsi_text *out)
{
	const struct key_def *d = &key_defs[i];
	bool v, t, r;

	if (parse_bool(value, &v))
		return answer(out, d->name, "Reject");
	t = target_bool(n, i);
	r = d->rf == RF_AND ? (v && t) : (v || t);
	store(n, d, 0, r);
	return answer(out, d->name, r ? "Yes" : "No");
}

/* §13.12: MaxRecvDataSegmentLength is declarative. The initiator's value
 * limits what we send (further capped by the TPG's
 * MaxXmitDataSegmentLength); our answer is our own declaration. */
static enum iscsi_neg_result neg_decl(struct iscsi_neg *n, int i,
				      const char *value, struct iscsi_text *out)
{
	uint32_t v, cap;

	if (num_value(&key_defs[i], value, &v))
		return ISCSI_NEG_FAIL;
	cap = target_num(n, ITK_MAXXMITDATASEGMENTLENGTH);
	n->sp->max_xmit_dsl = v < cap ? v : cap;
	if (!n->declared_mrdsl)
		return declare_mrdsl(n, out);
	return ISCSI_NEG_OK;
}

static bool is_login_key(const char *key)
{
	const char *const *k;

	if (strncmp(key, "CHAP_", 5) == 0)
		return true;
	for (k = login_keys; *k; k++)
		if (strcmp(*k, key) == 0)
			return true;
	return false;
}

static int def_find(const char *key)
{
	int i;

	for (i = 0; i < KD__COUNT; i++)
		if (strcmp(key_defs[i].name, key) == 0)
			return i;
	return -1;
}

enum iscsi_neg_result iscsi_neg_key(struct iscsi_neg *n, const char *key,
				    const char *value, struct iscsi_text *out)
{
	const struct key_def *d;
	int i;

	if (!key || !value)
		return ISCSI_NEG_FAIL;
	if (is_login_key(key))
		return ISCSI_NEG_UNKNOWN;

	/* §6.2: "the answer for a key not understood MUST be
	 * key=NotUnderstood". That covers X- / X# extension keys (§13.22: we
	 * implement none) and MaxXmitDataSegmentLength, which is LIO
	 * configuration, not an RFC key. */
	i = def_find(key);
	if (i < 0 || key_defs[i].rf == RF_NONE)
		return answer(out, key, "NotUnderstood");
	d = &key_defs[i];

	/* §6.2: negotiating or declaring a key more than once is a protocol
	 * error the target answers with Login reject (initiator error). */
	if (n->seen & (1ull << i))
		return ISCSI_NEG_FAIL;
	n->seen |= 1ull << i;

	/* §6.2: Reject, Irrelevant and NotUnderstood are reserved; using them
	 * as proposed values is a protocol error. */
	if (strcmp(value, "Reject") == 0 || strcmp(value, "Irrelevant") == 0 ||
	    strcmp(value, "NotUnderstood") == 0)
		return ISCSI_NEG_FAIL;

	/* §13 "Irrelevant when: SessionType=Discovery". */
	if (n->discovery && (d->use & U_NDISC))
		return answer(out, d->name, "Irrelevant");
	/* §13: IO and LO keys exist only in the Login Phase; in a Text
	 * exchange in full feature phase they cannot be changed. */
	if (n->full_feature && !(d->use & U_ALL))
		return answer(out, d->name, "Reject");
	/* §13: LO keys belong to the leading connection; the session's value
	 * already stands on any other connection. */
	if (!n->leading && (d->use & U_LO))
		return answer(out, d->name, "Irrelevant");

	switch (d->rf) {
	case RF_LIST:
		return neg_list(n, i, value, out);
	case RF_MIN:
	case RF_MAX:
		return neg_num(n, i, value, out);
	case RF_AND:
	case RF_OR:
		return neg_bool(n, i, value, out);
	case RF_DECL:
		return neg_decl(n, i, value, out);
	case RF_REJECT:
		/* §13.25: IFMarkInt / OFMarkInt get the constant Reject. */
		return answer(out, d->name, "Reject");
	case RF_NONE:
	case RF_LOGIN:
		break;
	}
	return ISCSI_NEG_UNKNOWN; /* not reached: filtered above */
}

int iscsi_neg_finish(struct iscsi_neg *n, struct iscsi_text *out)
{
	uint32_t cap;

	/* §13.12: each side declares its MaxRecvDataSegmentLength; without
	 * it the initiator assumes 8192. A Text exchange in full feature phase
	 * only answers what it was asked. */
	if (!n->full_feature && !n->declared_mrdsl &&
	    declare_mrdsl(n, out) != ISCSI_NEG_OK)
		return -ENOMEM;

	/* Never send more per PDU than the TPG allows, even when the
	 * initiator did not declare (default 8192, §13.12). */
	cap = target_num(n, ITK_MAXXMITDATASEGMENTLENGTH);
	if (n->sp->max_xmit_dsl > cap)
		n->sp->max_xmit_dsl = cap;

	/* §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength. The answer
	 * already respects it when MaxBurstLength came first; when it came
	 * after, the smaller MaxBurstLength wins. */
	if (n->sp->first_burst > n->sp->max_burst)
		n->sp->first_burst = n->sp->max_burst;
	return 0;
}
