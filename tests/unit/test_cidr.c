/* Unit tests: the CIDR parser / matcher of initiator address ACLs
 * (src/util/cidr.c, issue 21). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/cidr.h"

static struct sockaddr_storage sa(const char *ip)
{
	struct sockaddr_storage s;

	memset(&s, 0, sizeof(s));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)(void *)&s)->sin_addr) == 1)
		s.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip,
			   &((struct sockaddr_in6 *)(void *)&s)->sin6_addr) == 1)
		s.ss_family = AF_INET6;
	else
		fail();
	return s;
}

static bool m(const char *cidr, const char *ip)
{
	struct ut_cidr c;
	struct sockaddr_storage s = sa(ip);

	assert_int_equal(ut_cidr_parse(cidr, &c), 0);
	return ut_cidr_match(&c, &s);
}

static void parse_good(void **st)
{
	struct ut_cidr c;

	(void)st;
	assert_int_equal(ut_cidr_parse("127.0.0.0/8", &c), 0);
	assert_string_equal(c.text, "127.0.0.0/8");
	assert_int_equal(ut_cidr_parse("10.1.2.3", &c), 0);
	assert_string_equal(c.text, "10.1.2.3/32");
	assert_int_equal(ut_cidr_parse("10.1.2.3/8", &c), 0);
	assert_string_equal(c.text, "10.0.0.0/8");
	assert_int_equal(ut_cidr_parse("::1/128", &c), 0);
	assert_string_equal(c.text, "::1/128");
	assert_int_equal(ut_cidr_parse("::1", &c), 0);
	assert_string_equal(c.text, "::1/128");
	assert_int_equal(ut_cidr_parse("fe80::1:2/10", &c), 0);
	assert_string_equal(c.text, "fe80::/10");
	assert_int_equal(ut_cidr_parse("0.0.0.0/0", &c), 0);
	assert_string_equal(c.text, "0.0.0.0/0");
	assert_int_equal(ut_cidr_parse("192.168.1.77/23", &c), 0);
	assert_string_equal(c.text, "192.168.0.0/23");
}

static void parse_bad(void **st)
{
	struct ut_cidr c;
	const char *bad[] = { "", "1.2.3", "1.2.3.4/33", "1.2.3.4/", "1.2.3.4/-1",
			      "1.2.3.4/8x", "::1/129", "abc", "1.2.3.4/ 8",
			      "256.1.1.1", "1.2.3.4/0008", "[::1]", "1.2.3.4/8/8" };
	size_t i;

	(void)st;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ut_cidr_parse(bad[i], &c), -1);
	assert_int_equal(ut_cidr_parse(NULL, &c), -1);
}

static void match(void **st)
{
	(void)st;
	assert_true(m("127.0.0.0/8", "127.0.0.1"));
	assert_true(m("127.0.0.0/8", "127.255.3.4"));
	assert_false(m("127.0.0.0/8", "128.0.0.1"));
	assert_true(m("10.1.2.3", "10.1.2.3"));
	assert_false(m("10.1.2.3", "10.1.2.4"));
	assert_true(m("192.168.0.0/23", "192.168.1.200"));
	assert_false(m("192.168.0.0/23", "192.168.2.1"));
	assert_true(m("0.0.0.0/0", "8.8.8.8"));
	assert_false(m("0.0.0.0/0", "::1"));
	assert_true(m("::1/128", "::1"));
	assert_false(m("::1/128", "::2"));
	assert_false(m("::1/128", "127.0.0.1"));
	assert_true(m("fe80::/10", "febf::1"));
	assert_false(m("fe80::/10", "fec0::1"));
	/* a v4-mapped source matches IPv4 entries */
	assert_true(m("127.0.0.0/8", "::ffff:127.0.0.9"));
	assert_false(m("10.0.0.0/8", "::ffff:127.0.0.9"));
}

static void list(void **st)
{
	struct ut_netlist l;
	struct sockaddr_storage a = sa("127.0.0.1"), b = sa("::1"),
				c = sa("10.0.0.1");

	(void)st;
	memset(&l, 0, sizeof(l));
	assert_true(ut_netlist_allows(&l, &a)); /* empty: everyone */
	assert_int_equal(ut_cidr_parse("127.0.0.0/8", &l.v[l.n++]), 0);
	assert_int_equal(ut_cidr_parse("::1/128", &l.v[l.n++]), 0);
	assert_true(ut_netlist_allows(&l, &a));
	assert_true(ut_netlist_allows(&l, &b));
	assert_false(ut_netlist_allows(&l, &c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_good),
		cmocka_unit_test(parse_bad),
		cmocka_unit_test(match),
		cmocka_unit_test(list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
