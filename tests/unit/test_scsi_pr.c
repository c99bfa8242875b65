/* Unit tests of reservations (pr.c): PERSISTENT RESERVE IN / OUT and
 * RESERVE / RELEASE(6), on two nexuses of one LU. */
#include "scsi_fake.h"

#define WWN "6a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d"

struct pr_env {
	struct scsi_lu *lu;
	struct scsi_nexus a, b;
};

static int setup(void **state)
{
	struct pr_env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->lu = fake_lu(WWN);
	nexus_init(&e->a, "iqn.1994-05.com.example:a", 1, e->lu);
	nexus_init(&e->b, "iqn.1994-05.com.example:b", 2, e->lu);
	clear_ua(&e->a);
	clear_ua(&e->b);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct pr_env *e = *state;

	scsi_nexus_clear(&e->a);
	scsi_nexus_clear(&e->b);
	scsi_lu_put(e->lu);
	free(e);
	return 0;
}

static uint8_t prout(struct scsi_nexus *nx, uint8_t sa, uint8_t type,
		     uint64_t rk, uint64_t sark, struct scsi_cmd *cmd)
{
	uint8_t cdb[10] = { 0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0 };
	uint8_t *p = abuf(24);
	uint8_t st;

	put_be64(p, rk);
	put_be64(p + 8, sark);
	st = run(nx, cmd, cdb, 10, p, 24);
	free(p);
	return st;
}

static uint8_t write1(struct scsi_nexus *nx, struct scsi_cmd *cmd)
{
	uint8_t cdb[10] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	uint8_t *p = abuf(BLK);
	uint8_t st = run(nx, cmd, cdb, 10, p, BLK);

	free(p);
	return st;
}

static uint8_t read1(struct scsi_nexus *nx, struct scsi_cmd *cmd)
{
	uint8_t cdb[10] = { 0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	uint8_t *p = abuf(BLK);
	uint8_t st = run(nx, cmd, cdb, 10, p, BLK);

	free(p);
	return st;
}

static void test_register_and_read_keys(void **state)
{
	struct pr_env *e = *state;
	uint8_t cdb[10] = { 0x5e, 0x00, 0, 0, 0, 0, 0, 0, 64, 0 };
	uint8_t *b = abuf(64);
	struct scsi_cmd cmd;

	/* an unregistered nexus with a non-zero key conflicts (SPC-4 5.12.7) */
	assert_int_equal(prout(&e->a, 0, 0, 0x11, 0xaa, &cmd),
			 SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(&e->a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->b, 6, 0, 0x99, 0xbb, &cmd), SAM_STAT_GOOD);
	assert_int_equal(run(&e->a, &cmd, cdb, 10, b, 64), SAM_STAT_GOOD);
	assert_int_equal(get_be32(b), 2);      /* PRGENERATION */
	assert_int_equal(get_be32(b + 4), 16); /* two keys */
	assert_int_equal(get_be64(b + 8), 0xaa);
	assert_int_equal(get_be64(b + 16), 0xbb);
	/* unregister b with the right key */
	assert_int_equal(prout(&e->b, 0, 0, 0xbb, 0, &cmd), SAM_STAT_GOOD);
	assert_int_equal(run(&e->a, &cmd, cdb, 10, b, 64), SAM_STAT_GOOD);
	assert_int_equal(get_be32(b + 4), 8);
	free(b);
}

static void test_write_exclusive(void **state)
{
	struct pr_env *e = *state;
	uint8_t cdb[10] = { 0x5e, 0x01, 0, 0, 0, 0, 0, 0, 64, 0 };
	uint8_t *b = abuf(64);
	struct scsi_cmd cmd;

	assert_int_equal(prout(&e->a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->a, 1, 0x01, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	/* READ RESERVATION: key and type */
	assert_int_equal(run(&e->b, &cmd, cdb, 10, b, 64), SAM_STAT_GOOD);
	assert_int_equal(get_be32(b + 4), 16);
	assert_int_equal(get_be64(b + 8), 0xaa);
	assert_int_equal(b[8 + 13], 0x01);
	/* Write Exclusive: the other nexus reads, but may not write */
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_GOOD);
	assert_int_equal(write1(&e->b, &cmd), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(write1(&e->a, &cmd), SAM_STAT_GOOD);
	/* releasing with another type: INVALID RELEASE (26/04) */
	assert_int_equal(prout(&e->a, 2, 0x03, 0xaa, 0, &cmd),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, 0x2604);
	assert_int_equal(prout(&e->a, 2, 0x01, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	assert_int_equal(write1(&e->b, &cmd), SAM_STAT_GOOD);
	free(b);
}

static void test_exclusive_access_registrants_only(void **state)
{
	struct pr_env *e = *state;
	struct scsi_cmd cmd;

	assert_int_equal(prout(&e->a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->a, 1, 0x06, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_RESERVATION_CONFLICT);
	/* a registrant has access under a registrants-only type */
	assert_int_equal(prout(&e->b, 0, 0, 0, 0xbb, &cmd), SAM_STAT_GOOD);
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_GOOD);
	assert_int_equal(write1(&e->b, &cmd), SAM_STAT_GOOD);
	/* a second RESERVE by a non-holder conflicts */
	assert_int_equal(prout(&e->b, 1, 0x06, 0xbb, 0, &cmd),
			 SAM_STAT_RESERVATION_CONFLICT);
}

static void test_preempt_and_clear(void **state)
{
	struct pr_env *e = *state;
	uint8_t cdb[10] = { 0x5e, 0x01, 0, 0, 0, 0, 0, 0, 64, 0 };
	uint8_t *b = abuf(64);
	struct scsi_cmd cmd;

	assert_int_equal(prout(&e->a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->b, 0, 0, 0, 0xbb, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->a, 1, 0x03, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	/* b preempts a: a's registration goes, the reservation is b's */
	assert_int_equal(prout(&e->b, 4, 0x01, 0xbb, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(run(&e->b, &cmd, cdb, 10, b, 64), SAM_STAT_GOOD);
	assert_int_equal(get_be64(b + 8), 0xbb);
	assert_int_equal(b[8 + 13], 0x01);
	/* a learns of it: REGISTRATIONS PREEMPTED (2A/05) */
	assert_int_equal(read1(&e->a, &cmd), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_REGISTRATIONS_PREEMPTED);
	assert_int_equal(prout(&e->a, 3, 0, 0xaa, 0, &cmd),
			 SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(prout(&e->b, 3, 0, 0xbb, 0, &cmd), SAM_STAT_GOOD);
	assert_false(atomic_load(&e->lu->reserved));
	assert_int_equal(write1(&e->a, &cmd), SAM_STAT_GOOD);
	free(b);
}

static void test_report_capabilities(void **state)
{
	struct pr_env *e = *state;
	uint8_t cdb[10] = { 0x5e, 0x02, 0, 0, 0, 0, 0, 0, 8, 0 };
	uint8_t bad[10] = { 0x5e, 0x04, 0, 0, 0, 0, 0, 0, 8, 0 };
	uint8_t *b = abuf(8);
	struct scsi_cmd cmd;

	assert_int_equal(run(&e->a, &cmd, cdb, 10, b, 8), SAM_STAT_GOOD);
	assert_int_equal(get_be16(b), 8);
	assert_int_equal(b[4], 0x80 | 0x40 | 0x20 | 0x08 | 0x02);
	assert_int_equal(b[5], 0x01);
	assert_int_equal(run(&e->a, &cmd, bad, 10, b, 8),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	free(b);
}

static void test_reserve6(void **state)
{
	struct pr_env *e = *state;
	static const uint8_t reserve[6] = { 0x16 }, release[6] = { 0x17 };
	static const uint8_t inquiry[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t *b = abuf(36);
	struct scsi_cmd cmd;

	assert_int_equal(run(&e->a, &cmd, reserve, 6, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(run(&e->a, &cmd, reserve, 6, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(run(&e->b, &cmd, reserve, 6, NULL, 0),
			 SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(run(&e->b, &cmd, inquiry, 6, b, 36), SAM_STAT_GOOD);
	/* RELEASE from the other nexus: GOOD, and nothing released */
	assert_int_equal(run(&e->b, &cmd, release, 6, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_RESERVATION_CONFLICT);
	/* a LUN reset ends it (SPC-2 5.5.1) */
	scsi_lu_establish_ua(e->lu, SCSI_UA_LUN_RESET);
	clear_ua(&e->b);
	clear_ua(&e->a);
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_GOOD);
	/* the end of the nexus ends it too */
	assert_int_equal(run(&e->a, &cmd, reserve, 6, NULL, 0), SAM_STAT_GOOD);
	scsi_nexus_clear(&e->a);
	assert_int_equal(read1(&e->b, &cmd), SAM_STAT_GOOD);
	free(b);
}

static void test_reserve6_refused_with_registrations(void **state)
{
	struct pr_env *e = *state;
	static const uint8_t reserve[6] = { 0x16 };
	struct scsi_cmd cmd;

	assert_int_equal(prout(&e->a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(run(&e->a, &cmd, reserve, 6, NULL, 0),
			 SAM_STAT_RESERVATION_CONFLICT);
}

/* A fresh LU with the same wwn (the daemon restarted): the registration
 * key it found again in the state directory, 0 when there was none. */
static uint64_t key_after_restart(void)
{
	struct scsi_lu *lu2 = fake_lu(WWN);
	uint8_t rk[10] = { 0x5e, 0x00, 0, 0, 0, 0, 0, 0, 64, 0 };
	uint8_t *p = abuf(64);
	struct scsi_nexus nx;
	struct scsi_cmd cmd;
	uint64_t key = 0;

	nexus_init(&nx, "iqn.1994-05.com.example:a", 1, lu2);
	clear_ua(&nx);
	assert_int_equal(run(&nx, &cmd, rk, 10, p, 64), SAM_STAT_GOOD);
	if (get_be32(p + 4) == 8)
		key = get_be64(p + 8);
	else
		assert_int_equal(get_be32(p + 4), 0);
	scsi_nexus_clear(&nx);
	scsi_lu_put(lu2);
	free(p);
	return key;
}

static void state_dir_done(char *dir)
{
	char path[256];

	scsi_set_pr_state_dir(NULL);
	snprintf(path, sizeof(path), "%s/pr-%s", dir, WWN);
	unlink(path);
	rmdir(dir);
}

static void test_aptpl_restore(void **state)
{
	struct pr_env *e = *state;
	char dir[] = "/tmp/utarget-pr-test.XXXXXX";
	struct scsi_cmd cmd;
	uint8_t *p = abuf(24);
	uint8_t cdb[10] = { 0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0 };

	assert_non_null(mkdtemp(dir));
	scsi_set_pr_state_dir(dir);
	put_be64(p + 8, 0x1234);
	p[20] = 0x01; /* APTPL */
	assert_int_equal(run(&e->a, &cmd, cdb, 10, p, 24), SAM_STAT_GOOD);
	assert_int_equal(key_after_restart(), 0x1234);
	state_dir_done(dir);
	free(p);
}

/* force_pr_aptpl (LIO attribute): a REGISTER without APTPL is kept across
 * a restart all the same, and REPORT CAPABILITIES says so (PTPL_A). */
static void test_force_pr_aptpl(void **state)
{
	struct pr_env *e = *state;
	char dir[] = "/tmp/utarget-pr-force.XXXXXX";
	uint8_t caps[10] = { 0x5e, 0x02, 0, 0, 0, 0, 0, 0, 8, 0 };
	uint8_t *p = abuf(8);
	struct scsi_cmd cmd;

	assert_non_null(mkdtemp(dir));
	scsi_set_pr_state_dir(dir);
	e->lu->attrs.force_pr_aptpl = true;
	assert_int_equal(prout(&e->a, 0, 0, 0, 0x77, &cmd), SAM_STAT_GOOD);
	assert_int_equal(run(&e->a, &cmd, caps, 10, p, 8), SAM_STAT_GOOD);
	assert_int_equal(p[3] & 0x01, 0x01); /* PTPL_A */
	assert_int_equal(key_after_restart(), 0x77);
	state_dir_done(dir);
	free(p);
}

/* Without the attribute the same REGISTER is not kept. */
static void test_no_aptpl_not_kept(void **state)
{
	struct pr_env *e = *state;
	char dir[] = "/tmp/utarget-pr-noapt.XXXXXX";
	struct scsi_cmd cmd;

	assert_non_null(mkdtemp(dir));
	scsi_set_pr_state_dir(dir);
	assert_int_equal(prout(&e->a, 0, 0, 0, 0x77, &cmd), SAM_STAT_GOOD);
	assert_int_equal(key_after_restart(), 0);
	state_dir_done(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_and_read_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_access_registrants_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_and_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve6_refused_with_registrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aptpl_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force_pr_aptpl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_aptpl_not_kept, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
