/* CHAP authentication for iSCSI logins: RFC 1994 (the algorithm) as used by
 * RFC 7143 §12.1.3 (the key exchange), with the digests current Linux LIO
 * offers: MD5 (CHAP_A=5), SHA-1 (6), SHA-256 (7), SHA3-256 (8).
 *
 * The target side of one exchange is a small state machine fed with the
 * CHAP_* keys of each Login Request:
 *
 *   I->T  CHAP_A=<A1,A2,...>
 *   T->I  CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
 *   I->T  CHAP_N=<N> CHAP_R=<R> [CHAP_I=<I'> CHAP_C=<C'>]
 *   T->I  [CHAP_N=<N'> CHAP_R=<R'>]          (mutual CHAP)
 *
 * Secrets live in the caller's struct iscsi_auth; nothing here logs. */
#ifndef UT_ISCSI_CHAP_H
#define UT_ISCSI_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi/params.h"
#include "iscsi/target.h"

/* CHAP_A values (IANA "PPP Authentication Algorithms", RFC 7143 §12.1.3) */
#define CHAP_ALG_MD5 5
#define CHAP_ALG_SHA1 6
#define CHAP_ALG_SHA256 7
#define CHAP_ALG_SHA3_256 8

/* Bit (1u << alg) per algorithm the target accepts. */
#define CHAP_ALGS_ALL                                                    \
	((1u << CHAP_ALG_MD5) | (1u << CHAP_ALG_SHA1) |                  \
	 (1u << CHAP_ALG_SHA256) | (1u << CHAP_ALG_SHA3_256))

#define CHAP_DIGEST_MAX 32      /* SHA-256 / SHA3-256 */
#define CHAP_CHALLENGE_MIN 16   /* what we send is never shorter */
/* RFC 7143 §12.1.3: a challenge longer than 1024 bytes is refused. */
#define CHAP_CHALLENGE_MAX 1024
/* 2 hex digits a byte plus "0x" and NUL */
#define CHAP_HEX_MAX (2 * CHAP_CHALLENGE_MAX + 3)

/* Digest length of alg in bytes, or 0 when alg is not supported. */
size_t iscsi_chap_digest_len(int alg);
/* Short name for logs ("MD5", ...), "?" if unknown. */
const char *iscsi_chap_alg_name(int alg);

/* RFC 1994 §4.1: Response = H(Identifier || secret || Challenge).
 * out must hold iscsi_chap_digest_len(alg) bytes. 0 or -EINVAL / -EIO. */
int iscsi_chap_digest(int alg, uint8_t id, const void *secret, size_t slen,
		      const uint8_t *chal, size_t clen, uint8_t *out);

/* Decodes a binary value (RFC 7143 §6.1 binary-value: "0x" hex or "0b"
 * base64, prefixes case-insensitive) into out (at most max bytes). An
 * empty, malformed or longer value is -EINVAL / -E2BIG. */
int iscsi_chap_decode(const char *s, uint8_t *out, size_t max, size_t *len);
/* Encodes len bytes as "0x..." into out (outsz >= 2 * len + 3). */
int iscsi_chap_encode_hex(const uint8_t *in, size_t len, char *out,
			  size_t outsz);

/* First algorithm of the initiator's CHAP_A list (§6.2.1 list order) that
 * is in allowed and works in this libcrypto, or -ENOTSUP. */
int iscsi_chap_pick_alg(const char *list, unsigned allowed);

enum iscsi_chap_state {
	CHAP_WAIT_A,     /* AuthMethod=CHAP agreed, waiting for CHAP_A */
	CHAP_WAIT_NR,    /* challenge sent, waiting for CHAP_N / CHAP_R */
	CHAP_DONE,       /* initiator authenticated (and target, if asked) */
	CHAP_FAILED,
};

/* One CHAP exchange (the target side). */
struct iscsi_chap {
	enum iscsi_chap_state state;
	unsigned allowed;           /* CHAP_ALGS_* mask */
	const struct iscsi_auth *auth;
	int alg;
	size_t dlen;
	uint8_t id;
	uint8_t challenge[CHAP_DIGEST_MAX];
	size_t challenge_len;
	bool mutual;                /* the initiator authenticated us too */
	/* the CHAP keys of the current request (§12.1.3), at most once each */
	char *key_a, *key_n, *key_r, *key_i, *key_c;
};

/* auth must stay valid (and unchanged) until iscsi_chap_clear(). */
void iscsi_chap_init(struct iscsi_chap *ch, const struct iscsi_auth *auth,
		     unsigned allowed);
/* Wipes the challenge and any collected keys. */
void iscsi_chap_clear(struct iscsi_chap *ch);

/* Collects one CHAP_* key of a Login Request. -EINVAL for a key that is not
 * a CHAP key we know, a key sent twice in one request, a value too long;
 * -ENOMEM. */
int iscsi_chap_key(struct iscsi_chap *ch, const char *key, const char *value);

/* Whether the current request carried any CHAP key. */
bool iscsi_chap_pending(const struct iscsi_chap *ch);

/* Processes the keys collected from one request and appends the target's
 * keys to out. Returns 0 (exchange goes on, or done: see ch->state), or
 * -EACCES when authentication fails (*why says why, without secrets),
 * -ENOMEM / -EIO for local trouble. The collected keys are consumed. */
int iscsi_chap_step(struct iscsi_chap *ch, struct iscsi_text *out,
		    const char **why);

#endif
