/* libFuzzer harness: CHAP (src/iscsi/chap.c) as the login code drives it.
 *
 * Input: byte 0 = flags (bit 0: mutual credentials configured; bit 1: only
 * SHA-256 / SHA3-256 allowed; bit 2: empty secrets), then the CHAP keys of
 * successive Login Requests as "key=value\0..." texts separated by 0xff
 * bytes. Each request's keys go through iscsi_chap_key, then iscsi_chap_step
 * runs, as login.c does. A CHAP_R value of "@" is replaced by the right
 * response to the challenge the target sent (so the fuzzer gets past the
 * random challenge into the mutual part). Every binary value is also fed to
 * iscsi_chap_decode directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "iscsi/chap.h"

struct req {
	struct iscsi_chap *ch;
	const struct iscsi_auth *auth;
	int err;
};

static int one_key(void *arg, const char *key, const char *value)
{
	struct req *r = arg;
	uint8_t bin[CHAP_CHALLENGE_MAX];
	size_t blen;

	(void)iscsi_chap_decode(value, bin, sizeof(bin), &blen);
	if (!strcmp(key, "CHAP_R") && !strcmp(value, "@") &&
	    r->ch->state == CHAP_WAIT_NR && r->ch->dlen) {
		uint8_t d[CHAP_DIGEST_MAX];
		char hex[2 * CHAP_DIGEST_MAX + 3];

		if (iscsi_chap_digest(r->ch->alg, r->ch->id, r->auth->password,
				      strlen(r->auth->password),
				      r->ch->challenge, r->ch->challenge_len,
				      d) == 0 &&
		    iscsi_chap_encode_hex(d, r->ch->dlen, hex, sizeof(hex)) == 0)
			r->err = iscsi_chap_key(r->ch, key, hex);
		return r->err;
	}
	r->err = iscsi_chap_key(r->ch, key, value);
	return r->err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iscsi_auth auth;
	struct iscsi_chap ch;
	struct iscsi_text out;
	const char *why;
	uint8_t flags;
	size_t off;

	if (size < 1)
		return 0;
	fuzz_quiet();
	flags = data[0];
	memset(&auth, 0, sizeof(auth));
	if (!(flags & 4)) {
		strcpy(auth.userid, "iqn.1994-05.com.example:fuzz");
		strcpy(auth.password, "secret-of-16-bytes");
		if (flags & 1) {
			strcpy(auth.mutual_userid, "target-user");
			strcpy(auth.mutual_password, "mutual-secret-16b");
		}
	}
	iscsi_chap_init(&ch, &auth, (flags & 2) ?
			(1u << CHAP_ALG_SHA256) | (1u << CHAP_ALG_SHA3_256) :
			CHAP_ALGS_ALL);
	iscsi_text_init(&out);
	for (off = 1; off < size;) {
		const uint8_t *sep = memchr(data + off, 0xff, size - off);
		size_t len = sep ? (size_t)(sep - (data + off)) : size - off;
		struct req r = { .ch = &ch, .auth = &auth };

		if (iscsi_text_foreach((const char *)data + off, len, one_key,
				       &r) != 0)
			break; /* the login fails here */
		why = NULL;
		iscsi_text_reset(&out);
		if (iscsi_chap_step(&ch, &out, &why))
			break;
		if (ch.state == CHAP_DONE || ch.state == CHAP_FAILED)
			break;
		off += len + 1;
	}
	iscsi_chap_clear(&ch);
	iscsi_text_free(&out);
	return 0;
}
