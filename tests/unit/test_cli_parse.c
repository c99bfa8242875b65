/* utargetcli's command-line grammar and argument binding (configshell-fb's
 * rules and messages), the numeric-aware sort and the size helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/parse.c"
#include "util/human.h"

static void parse_ok(const char *line, struct cli_line *l)
{
	char err[256];

	assert_int_equal(cli_parse(line, l, err, sizeof(err)), 0);
}

static void test_path_command_params(void **state)
{
	struct cli_line l;

	parse_ok("/backstores/fileio create disk1 /tmp/d.img 1G write_back=false", &l);
	assert_string_equal(l.path, "/backstores/fileio");
	assert_string_equal(l.command, "create");
	assert_int_equal(l.npp, 3);
	assert_string_equal(l.pparams[2], "1G");
	assert_int_equal(l.nkp, 1);
	assert_string_equal(l.kparams[0].key, "write_back");
	assert_string_equal(l.kparams[0].value, "false");
	cli_line_free(&l);

	parse_ok("  ls  ", &l);		/* no path: a command */
	assert_null(l.path);
	assert_string_equal(l.command, "ls");
	cli_line_free(&l);

	parse_ok("luns/", &l);		/* a path alone */
	assert_string_equal(l.path, "luns/");
	assert_null(l.command);
	cli_line_free(&l);

	parse_ok("..", &l);
	assert_string_equal(l.path, "..");
	cli_line_free(&l);

	parse_ok("@last ls", &l);
	assert_string_equal(l.path, "@last");
	cli_line_free(&l);

	parse_ok("/iscsi/* ls", &l);
	assert_string_equal(l.path, "/iscsi/*");
	cli_line_free(&l);

	parse_ok("set parameter TargetAlias=\"my target\" x=", &l);
	assert_null(l.path);
	assert_string_equal(l.pparams[0], "parameter");
	assert_string_equal(l.kparams[0].value, "my target");
	assert_string_equal(l.kparams[1].key, "x");
	assert_string_equal(l.kparams[1].value, "");
	cli_line_free(&l);
}

static void test_unterminated_quote(void **state)
{
	struct cli_line l;
	char err[256];

	assert_int_equal(cli_parse("set auth password='abc", &l, err,
				   sizeof(err)), -1);
}

static int bind(const struct cli_sig *s, const char *line, char *err,
		struct cli_args *a, struct cli_line *l)
{
	parse_ok(line, l);
	return cli_bind(s, l, a, err, 256);
}

static void test_bind_messages(void **state)
{
	const struct cli_sig create = { .params = { "name", "size", "nullio",
						     "wwn" }, .nreq = 2 };
	const struct cli_sig ls = { .params = { "path", "depth" } };
	const struct cli_sig set = { .params = { "group" }, .kwargs = true };
	const struct cli_sig get = { .params = { "group" }, .varargs = true };
	const struct cli_sig enable = { .params = { NULL } };
	struct cli_args a;
	struct cli_line l;
	char err[256];

	assert_int_equal(bind(&create, "create r0 1M nullio=true", err, &a, &l), 0);
	assert_string_equal(a.v[0], "r0");
	assert_string_equal(a.v[1], "1M");
	assert_string_equal(a.v[2], "true");
	assert_null(a.v[3]);
	cli_args_free(&a);
	cli_line_free(&l);

	assert_int_equal(bind(&create, "create size=1M name=r0", err, &a, &l), 0);
	assert_string_equal(a.v[0], "r0");
	cli_args_free(&a);
	cli_line_free(&l);

	assert_int_equal(bind(&create, "create r0", err, &a, &l), -1);
	assert_string_equal(err, "Missing required parameter size");
	cli_line_free(&l);

	assert_int_equal(bind(&create, "create", err, &a, &l), -1);
	assert_string_equal(err, "Missing required parameters 'name', 'size'");
	cli_line_free(&l);

	assert_int_equal(bind(&create, "create r0 1M foo=1", err, &a, &l), -1);
	assert_string_equal(err, "Unexpected keyword parameter 'foo'.");
	cli_line_free(&l);

	assert_int_equal(bind(&create, "create r0 1M name=x", err, &a, &l), -1);
	assert_string_equal(err, "Duplicate parameter name.");
	cli_line_free(&l);

	assert_int_equal(bind(&ls, "ls / 1 2", err, &a, &l), -1);
	assert_string_equal(err, "Got 3 positionnal parameters, expected at most 2.");
	cli_line_free(&l);

	assert_int_equal(bind(&enable, "enable now", err, &a, &l), -1);
	assert_string_equal(err, "Got 1 positionnal parameters, expected exactly 0.");
	cli_line_free(&l);

	assert_int_equal(bind(&set, "set auth userid=u password=p", err, &a, &l), 0);
	assert_string_equal(a.v[0], "auth");
	assert_int_equal(a.nkw, 2);
	assert_string_equal(a.kw[1]->key, "password");
	cli_args_free(&a);
	cli_line_free(&l);

	assert_int_equal(bind(&get, "get attribute a b c", err, &a, &l), 0);
	assert_int_equal(a.nextra, 3);
	assert_string_equal(a.extra[2], "c");
	cli_args_free(&a);
	cli_line_free(&l);
}

static void test_name_order(void **state)
{
	assert_true(cli_name_cmp("lun2", "lun10") < 0);
	assert_true(cli_name_cmp("lun10", "lun2") > 0);
	assert_true(cli_name_cmp("acls", "luns") < 0);
	assert_true(cli_name_cmp("lun", "lun0") < 0);
	assert_true(cli_name_cmp("127.0.0.1:3260", "127.0.0.1:860") > 0);
	assert_int_equal(cli_name_cmp("tpg1", "tpg1"), 0);
}

static void test_sizes_and_bools(void **state)
{
	char buf[64];

	assert_int_equal(cli_human_to_bytes("4096"), 4096);
	assert_int_equal(cli_human_to_bytes("1k"), 1024);
	assert_int_equal(cli_human_to_bytes("100M"), 100LL << 20);
	assert_int_equal(cli_human_to_bytes("2GiB"), 2LL << 30);
	assert_int_equal(cli_human_to_bytes("1tb"), 1LL << 40);
	assert_int_equal(cli_human_to_bytes("lots"), -1);
	assert_int_equal(cli_human_to_bytes("1.5G"), -1);
	assert_int_equal(cli_human_to_bytes(""), -1);
	ut_bytes_to_human(512, buf, sizeof(buf));
	assert_string_equal(buf, "512 bytes");
	ut_bytes_to_human(64ULL << 20, buf, sizeof(buf));
	assert_string_equal(buf, "64.0MiB");
	ut_bytes_to_human(1536, buf, sizeof(buf));
	assert_string_equal(buf, "1.5KiB");
	ut_bytes_to_human(3ULL << 40, buf, sizeof(buf));
	assert_string_equal(buf, "3.0TiB");
	assert_int_equal(cli_parse_bool("True"), 1);
	assert_int_equal(cli_parse_bool("0"), 0);
	assert_int_equal(cli_parse_bool("maybe"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_command_params),
		cmocka_unit_test(test_unterminated_quote),
		cmocka_unit_test(test_bind_messages),
		cmocka_unit_test(test_name_order),
		cmocka_unit_test(test_sizes_and_bools),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
