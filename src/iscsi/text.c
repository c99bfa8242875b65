/* iSCSI text data: "key=value\0key=value\0..." (RFC 7143 §6.1), as carried in
 * the data segment of Login and Text PDUs. Building answers and splitting
 * what an initiator sent; everything here is bounded because the input is
 * whatever a remote peer chose to send. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/params.h"

/* RFC 7143 §6.1: a key name (standard-label) is at most 63 characters. */
#define TEXT_KEY_MAX 63
/* Values longer than this are refused when parsing. §6.1 limits a
 * simple-value to 255 bytes, but CHAP_C / CHAP_R and similar large binary
 * values can be longer; 8192 is the amount of key=value data §6.1 requires
 * every implementation to accept in one negotiation sequence. */
#define TEXT_VALUE_MAX 8192
/* Cap on the buffer we build: far more than any answer (a SendTargets
 * response for many targets included), small enough that a bug cannot eat
 * the machine. */
#define TEXT_BUF_MAX (16u * 1024 * 1024)

void iscsi_text_init(struct iscsi_text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->cap = 0;
}

void iscsi_text_free(struct iscsi_text *t)
{
	free(t->buf);
	iscsi_text_init(t);
}

void iscsi_text_reset(struct iscsi_text *t)
{
	t->len = 0;
}

/* Make room for need more bytes. */
static int text_reserve(struct iscsi_text *t, size_t need)
{
	size_t cap;
	char *nb;

	if (need > TEXT_BUF_MAX || t->len > TEXT_BUF_MAX - need)
		return -E2BIG;
	if (t->len + need <= t->cap)
		return 0;
	cap = t->cap ? t->cap : 256;
	while (cap < t->len + need)
		cap *= 2;
	nb = realloc(t->buf, cap);
	if (!nb)
		return -ENOMEM;
	t->buf = nb;
	t->cap = cap;
	return 0;
}

static int key_ok(const char *key)
{
	size_t kl;

	if (!key)
		return 0;
	kl = strlen(key);
	return kl > 0 && kl <= TEXT_KEY_MAX && !memchr(key, '=', kl);
}

int iscsi_text_add(struct iscsi_text *t, const char *key, const char *value)
{
	size_t kl, vl;
	int rc;

	if (!key_ok(key) || !value)
		return -EINVAL;
	kl = strlen(key);
	vl = strlen(value);
	if (vl > TEXT_VALUE_MAX)
		return -EINVAL;
	rc = text_reserve(t, kl + 1 + vl + 1);
	if (rc)
		return rc;
	memcpy(t->buf + t->len, key, kl);
	t->buf[t->len + kl] = '=';
	memcpy(t->buf + t->len + kl + 1, value, vl);
	t->buf[t->len + kl + 1 + vl] = '\0';
	t->len += kl + 1 + vl + 1;
	return 0;
}

int iscsi_text_addf(struct iscsi_text *t, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t kl;
	int n, rc;

	if (!key_ok(key) || !fmt)
		return -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || n > TEXT_VALUE_MAX)
		return -EINVAL;
	kl = strlen(key);
	rc = text_reserve(t, kl + 1 + (size_t)n + 1);
	if (rc)
		return rc;
	memcpy(t->buf + t->len, key, kl);
	t->buf[t->len + kl] = '=';
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len + kl + 1, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += kl + 1 + (size_t)n + 1;
	return 0;
}

int iscsi_text_add_raw(struct iscsi_text *t, const char *data, size_t len)
{
	int rc;

	if (!len)
		return 0;
	if (!data)
		return -EINVAL;
	rc = text_reserve(t, len);
	if (rc)
		return rc;
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	return 0;
}

/* One pair of the text: [p, p + plen) without its terminating NUL. Empty
 * segments (consecutive NULs, e.g. zero padding a peer counted into
 * DataSegmentLength) are skipped rather than refused. */
static int pair_check(const char *p, size_t plen, size_t *klen)
{
	const char *eq = memchr(p, '=', plen);

	if (!eq)
		return -EINVAL;
	*klen = (size_t)(eq - p);
	if (*klen == 0 || *klen > TEXT_KEY_MAX)
		return -EINVAL;
	if (plen - *klen - 1 > TEXT_VALUE_MAX)
		return -EINVAL;
	return 0;
}

int iscsi_text_foreach(const char *text, size_t len,
		       int (*fn)(void *arg, const char *key, const char *value),
		       void *arg)
{
	char key[TEXT_KEY_MAX + 1];
	char *val;
	size_t off, plen, klen = 0;
	int rc;

	if (!fn || (!text && len))
		return -EINVAL;

	/* First pass: validate everything, so that a malformed text has no
	 * partial effect (fn is never called for it). */
	for (off = 0; off < len; off += plen + 1) {
		const char *nul = memchr(text + off, '\0', len - off);

		plen = nul ? (size_t)(nul - (text + off)) : len - off;
		if (plen == 0)
			continue;
		if (pair_check(text + off, plen, &klen))
			return -EINVAL;
	}

	/* Second pass: copy each pair out so that fn gets NUL-terminated
	 * strings even for an unterminated final pair. */
	val = malloc(TEXT_VALUE_MAX + 1);
	if (!val)
		return -ENOMEM;
	rc = 0;
	for (off = 0; off < len && rc == 0; off += plen + 1) {
		const char *nul = memchr(text + off, '\0', len - off);
		size_t vlen;

		plen = nul ? (size_t)(nul - (text + off)) : len - off;
		if (plen == 0)
			continue;
		(void)pair_check(text + off, plen, &klen); /* checked above */
		vlen = plen - klen - 1;
		memcpy(key, text + off, klen);
		key[klen] = '\0';
		memcpy(val, text + off + klen + 1, vlen);
		val[vlen] = '\0';
		rc = fn(arg, key, val);
	}
	free(val);
	return rc;
}
