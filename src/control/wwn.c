/* iSCSI names as the RFCs define them, for the names an administrator gives
 * targets and node ACLs. Every legal name is taken; an illegal one is refused
 * with the rule it breaks, so "WWN not valid" never leaves the user guessing.
 *
 *  - At most 223 bytes (RFC 7143 §4.2.7.1).
 *  - "iqn." yyyy-mm "." reversed-domain [":" anything] (RFC 7143 §4.2.7.4,
 *    RFC 3720 §3.2.6.3.1): a 4-digit year, month 01-12, a naming authority
 *    of non-empty dot-separated labels.
 *  - "eui." and 16 hex digits (EUI-64, RFC 7143 §4.2.7.5).
 *  - "naa." and 16 or 32 hex digits (RFC 3980); the first digit is the NAA
 *    format, the 64-bit ones 1, 2, 5 and C-F, the 128-bit one 6 (LIO's own
 *    naa.6001405... names are 64 bits long, so 6 is taken at 16 digits too).
 *    NAA 3 (locally assigned) is not unique beyond one site and refused.
 *  - Characters after the RFC 3722 string profile: in ASCII only a-z, 0-9,
 *    '-', '.', ':' (RFC 7143 §4.2.7.2), upper case being folded to lower
 *    case (RFC 3722 §3, table B.2): an underscore, a slash, a space are not
 *    iSCSI name characters. Non-ASCII characters must be well-formed UTF-8
 *    outside the prohibited tables (RFC 3722 §6: RFC 3454 C.1.2-C.9); they are
 *    kept as given (NFKC normalisation would need the Unicode tables).
 *
 * LIO (rtslib's is_valid_wwn) differs both ways: it wants a second dot in an
 * iqn's authority and takes any byte but space and underscore. */
#include "control/model.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WWN_MAX 223

/* RFC 3454 tables C.1.2 to C.9 (C.1.1 and C.2.1 are ASCII, checked apart). */
static const struct { uint32_t lo, hi; } prohibited[] = {
	{ 0x0080, 0x00a0 },	/* C.2.2 controls, C.1.2 no-break space */
	{ 0x0340, 0x0341 },	/* C.8 */
	{ 0x06dd, 0x06dd }, { 0x070f, 0x070f }, { 0x1680, 0x1680 },
	{ 0x180e, 0x180e },
	{ 0x2000, 0x200f },	/* C.1.2 spaces, C.2.2 joiners, C.8 marks */
	{ 0x2028, 0x202f },	/* C.2.2 separators, C.8 embeddings, C.1.2 */
	{ 0x205f, 0x2063 }, { 0x206a, 0x206f },
	{ 0x2ff0, 0x2ffb },	/* C.7 */
	{ 0x3000, 0x3000 },
	{ 0xd800, 0xf8ff },	/* C.5 surrogates, C.3 private use */
	{ 0xfdd0, 0xfdef },	/* C.4 */
	{ 0xfeff, 0xfeff },
	{ 0xfff9, 0xfffd },	/* C.2.2, C.6 */
	{ 0x1d173, 0x1d17a },
	{ 0xe0001, 0xe0001 }, { 0xe0020, 0xe007f },	/* C.9 */
	{ 0xf0000, 0x10ffff },	/* C.3 planes 15 and 16 */
};

static bool cp_prohibited(uint32_t c)
{
	if ((c & 0xfffe) == 0xfffe)	/* C.4: U+xFFFE, U+xFFFF */
		return true;
	for (size_t i = 0; i < sizeof(prohibited) / sizeof(prohibited[0]); i++)
		if (c >= prohibited[i].lo && c <= prohibited[i].hi)
			return true;
	return false;
}

/* Decode one UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF); its length, or 0 when malformed. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static int bad(char *err, size_t errlen, const char *fmt, const char *a)
{
	char why[200];

	snprintf(why, sizeof(why), fmt, a);
	snprintf(err, errlen, "WWN not valid as: iqn, naa, eui (%s)", why);
	return -EINVAL;
}

static bool all_hex(const char *s)
{
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

/* The iqn form after "iqn.", in lower case. */
static int check_iqn(const char *s, char *err, size_t errlen)
{
	const char *auth = s + 8, *end;
	int month;

	if (!(isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
	      isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) &&
	      s[4] == '-' && isdigit((unsigned char)s[5]) &&
	      isdigit((unsigned char)s[6]) && s[7] == '.'))
		return bad(err, errlen, "an iqn name goes on with a date, "
			   "yyyy-mm, and a dot: iqn.2003-01.org.example%s", "");
	month = (s[5] - '0') * 10 + (s[6] - '0');
	if (month < 1 || month > 12)
		return bad(err, errlen, "month %.2s of the iqn date is not "
			   "01 to 12", s + 5);
	end = auth + strcspn(auth, ":");
	if (end == auth)
		return bad(err, errlen, "no naming authority (a reversed domain "
			   "name) after the iqn date%s", "");
	for (const char *p = auth; p < end; p++)
		if (*p == '.' && (p == auth || p[-1] == '.' || p + 1 == end))
			return bad(err, errlen, "empty label in the naming "
				   "authority %s", "");
	return 0;
}

int ctl_wwn_normalize(const char *wwn, char *out, size_t outlen, char *err,
		      size_t errlen)
{
	size_t n = strlen(wwn), i;
	char pos[24];

	if (n == 0)
		return bad(err, errlen, "empty name%s", "");
	if (n > WWN_MAX || n >= outlen)
		return bad(err, errlen, "longer than 223 bytes%s", "");
	for (i = 0; i < n;) {
		unsigned char c = (unsigned char)wwn[i];
		uint32_t cp;
		size_t len;

		snprintf(pos, sizeof(pos), "%zu", i + 1);
		if (c >= 0x80) {
			len = utf8_next((const unsigned char *)wwn + i, &cp);
			if (!len)
				return bad(err, errlen, "byte %s is not "
					   "well-formed UTF-8", pos);
			if (cp_prohibited(cp))
				return bad(err, errlen, "character at %s is a "
					   "space, control, private-use or "
					   "non-character code point "
					   "(RFC 3722 6)", pos);
			memcpy(out + i, wwn + i, len);
			i += len;
			continue;
		}
		if (!(isalnum(c) || c == '-' || c == '.' || c == ':')) {
			char what[64];

			if (c <= ' ' || c == 0x7f)
				snprintf(what, sizeof(what), "a space or "
					 "control character at %s", pos);
			else
				snprintf(what, sizeof(what), "'%c' at %s",
					 c, pos);
			return bad(err, errlen, "%s: iSCSI names hold only "
				   "a-z, 0-9, '-', '.', ':' in ASCII "
				   "(RFC 3722, RFC 7143 4.2.7.2)", what);
		}
		out[i++] = (char)tolower(c);
	}
	out[n] = '\0';
	if (!strncmp(out, "iqn.", 4))
		return check_iqn(out + 4, err, errlen);
	if (!strncmp(out, "eui.", 4)) {
		if (n - 4 != 16 || !all_hex(out + 4))
			return bad(err, errlen, "an eui name has 16 hex digits "
				   "(EUI-64)%s", "");
		return 0;
	}
	if (!strncmp(out, "naa.", 4)) {
		if ((n - 4 != 16 && n - 4 != 32) || !all_hex(out + 4))
			return bad(err, errlen, "an naa name has 16 or 32 hex "
				   "digits (RFC 3980)%s", "");
		if (n - 4 == 32 ? out[4] != '6' : !strchr("1256cdef", out[4]))
			return bad(err, errlen, "NAA format %.1s is not one of "
				   "1, 2, 5, 6, C-F at 16 digits or 6 at 32",
				   out + 4);
		return 0;
	}
	return bad(err, errlen, "a name starts with iqn., eui. or naa. "
		   "(RFC 7143 4.2.7.3)%s", "");
}
