/* Unit tests of the SBC/SPC commands added for libiscsi's conformance
 * suite: COMPARE AND WRITE, ORWRITE, WRITE ATOMIC, VERIFY(12), GET LBA
 * STATUS, REPORT SUPPORTED OPERATION CODES, EXTENDED COPY. */
#include "scsi_fake.h"
#include "scsi/scsi_int.h"

#define WWN1 "11111111-2222-4333-8444-555555555555"
#define WWN2 "99999999-8888-4777-8666-555555555555"

struct env {
	struct scsi_lu *lu, *lu2;
	struct scsi_nexus nx;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->lu = fake_lu(WWN1);
	e->lu2 = fake_lu(WWN2);
	nexus_init(&e->nx, "iqn.1994-05.com.example:a", 1, e->lu);
	clear_ua(&e->nx);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	scsi_nexus_clear(&e->nx);
	scsi_lu_put(e->lu);
	scsi_lu_put(e->lu2);
	free(e);
	return 0;
}

static void test_caw(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16] = { 0x89 };
	uint8_t *b = abuf(4 * BLK);
	uint8_t *medium = fake_data(e->lu);
	struct scsi_cmd cmd;

	put_be64(cdb + 2, 10);
	cdb[13] = 2;
	memset(medium + 10 * BLK, 'A', 2 * BLK);
	memset(b, 'A', 2 * BLK);
	memset(b + 2 * BLK, 'B', 2 * BLK);
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, b, 4 * BLK), SAM_STAT_GOOD);
	assert_int_equal(medium[10 * BLK], 'B');
	assert_int_equal(medium[12 * BLK - 1], 'B');
	/* miscompare at byte 700: nothing written, INFORMATION = 700 */
	memset(b, 'B', 2 * BLK);
	b[700] = 'x';
	memset(b + 2 * BLK, 'C', 2 * BLK);
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, b, 4 * BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_MISCOMPARE, 0x1d00);
	assert_true(cmd.sense[0] & 0x80);
	assert_int_equal(get_be32(cmd.sense + 3), 700);
	assert_int_equal(medium[10 * BLK], 'B');
	/* a Data-Out that is not twice the blocks is refused */
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, b, 3 * BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	/* more than MAXIMUM COMPARE AND WRITE LENGTH is not possible with
	 * one byte; zero blocks do nothing */
	cdb[13] = 0;
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, NULL, 0), SAM_STAT_GOOD);
	free(b);
}

static void test_orwrite_and_atomic(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16] = { 0x8b };
	uint8_t wa[16] = { 0x9c };
	uint8_t *b = abuf(BLK);
	uint8_t *medium = fake_data(e->lu);
	struct scsi_cmd cmd;

	put_be64(cdb + 2, 3);
	put_be32(cdb + 10, 1);
	memset(medium + 3 * BLK, 0x0f, BLK);
	memset(b, 0xf0, BLK);
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, b, BLK), SAM_STAT_GOOD);
	assert_int_equal(medium[3 * BLK + 5], 0xff);
	/* WRITE ATOMIC(16): an ATOMIC BOUNDARY is refused */
	put_be64(wa + 2, 4);
	put_be16(wa + 12, 1);
	memset(b, 0x5a, BLK);
	assert_int_equal(run(&e->nx, &cmd, wa, 16, b, BLK), SAM_STAT_GOOD);
	assert_int_equal(medium[4 * BLK], 0x5a);
	put_be16(wa + 10, 8);
	assert_int_equal(run(&e->nx, &cmd, wa, 16, b, BLK),
			 SAM_STAT_CHECK_CONDITION);
	free(b);
}

static void test_verify12_and_write_verify(void **state)
{
	struct env *e = *state;
	uint8_t v12[12] = { 0xaf, 0x02 };
	uint8_t wv16[16] = { 0x8e, 0x02 };
	uint8_t *b = abuf(BLK);
	struct scsi_cmd cmd;

	put_be64(wv16 + 2, 20);
	put_be32(wv16 + 10, 1);
	memset(b, 0x77, BLK);
	assert_int_equal(run(&e->nx, &cmd, wv16, 16, b, BLK), SAM_STAT_GOOD);
	put_be32(v12 + 2, 20);
	put_be32(v12 + 6, 1);
	assert_int_equal(run(&e->nx, &cmd, v12, 12, b, BLK), SAM_STAT_GOOD);
	b[1] = 0;
	assert_int_equal(run(&e->nx, &cmd, v12, 12, b, BLK),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_MISCOMPARE, 0x1d00);
	free(b);
}

static void test_get_lba_status(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16] = { 0x9e, 0x12 };
	uint8_t *b = abuf(64);
	struct scsi_cmd cmd;

	put_be64(cdb + 2, 60);
	put_be32(cdb + 10, 64);
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, b, 64), SAM_STAT_GOOD);
	/* fake_map_status: mapped below LBA 64, deallocated above */
	assert_int_equal(get_be32(b), 4 + 32);
	assert_int_equal(get_be64(b + 8), 60);
	assert_int_equal(get_be32(b + 16), 4);
	assert_int_equal(b[20], 0);
	assert_int_equal(get_be64(b + 24), 64);
	assert_int_equal(get_be32(b + 32), NBLK - 64);
	assert_int_equal(b[36], 1);
	put_be64(cdb + 2, NBLK);
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, b, 64),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	free(b);
}

/* Every reported command is one the dispatcher has. */
static void test_rsoc_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < scsi_rsoc_count(); i++) {
		uint8_t op;
		uint16_t sa;
		bool servactv;

		scsi_rsoc_entry(i, &op, &sa, &servactv);
		assert_true(scsi_op_dispatched(op));
		assert_true(servactv || sa == 0);
	}
}

static void test_rsoc(void **state)
{
	struct env *e = *state;
	uint8_t all[12] = { 0xa3, 0x0c, 0x80 };
	uint8_t one[12] = { 0xa3, 0x0c, 0x01, 0x28 };
	uint8_t sa_wrong[12] = { 0xa3, 0x0c, 0x01, 0x9e };
	uint8_t tmf[12] = { 0xa3, 0x0d };
	uint8_t *b = abuf(4096);
	struct scsi_cmd cmd;
	uint32_t len;

	put_be32(all + 6, 4096);
	assert_int_equal(run(&e->nx, &cmd, all, 12, b, 4096), SAM_STAT_GOOD);
	len = get_be32(b);
	assert_int_equal(len % 20, 0); /* RCTD: 8 + 12 bytes each */
	assert_true(b[4 + 5] & 0x02);   /* CTDP */
	put_be32(one + 6, 64);
	assert_int_equal(run(&e->nx, &cmd, one, 12, b, 64), SAM_STAT_GOOD);
	assert_int_equal(b[1] & 0x07, 0x03);
	assert_int_equal(get_be16(b + 2), 10);
	assert_int_equal(b[4], 0x28);
	assert_int_equal(b[5] & 0x18, 0x18); /* DPO and FUA emulated */
	put_be32(sa_wrong + 6, 64);
	assert_int_equal(run(&e->nx, &cmd, sa_wrong, 12, b, 64),
			 SAM_STAT_CHECK_CONDITION);
	put_be32(tmf + 6, 4);
	assert_int_equal(run(&e->nx, &cmd, tmf, 12, b, 4), SAM_STAT_GOOD);
	assert_true(b[0] & 0x80); /* ABORT TASK */
	free(b);
}

/* One identification descriptor for lu, one block-to-block segment. */
static size_t xcopy_list(struct scsi_lu *src, struct scsi_lu *dst,
			 uint8_t *p, uint16_t nblk)
{
	memset(p, 0, 16 + 64 + 28);
	p[0] = 7;
	put_be16(p + 2, 64);
	put_be32(p + 8, 28);
	for (int i = 0; i < 2; i++) {
		uint8_t *td = p + 16 + 32 * i;

		td[0] = 0xe4;
		td[4] = 0x01;
		td[5] = 0x03;
		td[7] = 16;
		scsi_lu_naa(i ? dst : src, td + 8);
		put_be24(td + 29, BLK);
	}
	p[80] = 0x02;
	put_be16(p + 82, 24);
	put_be16(p + 84, 0);
	put_be16(p + 86, 1);
	put_be16(p + 90, nblk);
	put_be64(p + 92, 0);
	put_be64(p + 100, 100);
	return 16 + 64 + 28;
}

static void test_xcopy(void **state)
{
	struct env *e = *state;
	uint8_t cdb[16] = { 0x83 };
	uint8_t rcr[16] = { 0x84, 0x00, 7 };
	uint8_t *p = abuf(256);
	size_t n = xcopy_list(e->lu, e->lu2, p, 16);
	struct scsi_cmd cmd;

	memset(fake_data(e->lu), 0x3c, 16 * BLK);
	put_be32(cdb + 10, (uint32_t)n);
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, p, (uint32_t)n),
			 SAM_STAT_GOOD);
	assert_int_equal(fake_data(e->lu2)[100 * BLK], 0x3c);
	assert_int_equal(fake_data(e->lu2)[116 * BLK - 1], 0x3c);
	assert_int_equal(fake_data(e->lu2)[116 * BLK], 0);
	/* COPY STATUS of list 7: done, one segment, 16 blocks */
	put_be32(rcr + 10, 64);
	assert_int_equal(run(&e->nx, &cmd, rcr, 16, p, 64), SAM_STAT_GOOD);
	assert_int_equal(p[4], 1);
	assert_int_equal(get_be16(p + 5), 1);
	assert_int_equal(get_be32(p + 8), 16);
	/* an unknown list: INVALID FIELD IN CDB */
	rcr[2] = 8;
	assert_int_equal(run(&e->nx, &cmd, rcr, 16, p, 64),
			 SAM_STAT_CHECK_CONDITION);
	/* an unknown designator: COPY ABORTED */
	n = xcopy_list(e->lu, e->lu2, p, 16);
	p[16 + 32 + 20] ^= 0xff;
	assert_int_equal(run(&e->nx, &cmd, cdb, 16, p, (uint32_t)n),
			 SAM_STAT_CHECK_CONDITION);
	assert_int_equal(cmd.sense[2] & 0x0f, 0x0a);
	free(p);
}

/* LIO's secondary offline of one target port (se_lun
 * lun_tg_pt_secondary_offline): every command through it, INQUIRY too,
 * gets NOT READY 04/12; the LU's other port serves and REPORT TARGET PORT
 * GROUPS lists both ports by their relative target port ids. */
static void test_alua_port_offline(void **state)
{
	struct env *e = *state;
	struct scsi_nexus nx2;
	struct scsi_alua_port *p1 = scsi_alua_port_add(e->lu, 7);
	struct scsi_alua_port *p2 = scsi_alua_port_add(e->lu, 9);
	static const uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t rtpg[12] = { 0xa3, 0x0a };
	struct scsi_cmd cmd;
	uint8_t *b = abuf(512);

	assert_non_null(p1);
	assert_non_null(p2);
	nexus_init(&nx2, "iqn.1994-05.com.example:a", 2, e->lu);
	e->nx.map->ent[0].port = p1;
	nx2.map->ent[0].port = p2;
	clear_ua(&nx2);
	scsi_alua_port_set_offline(e->lu, p2, true);
	assert_int_equal(atomic_load(&p2->sec_status), 2);
	assert_int_equal(run(&nx2, &cmd, inq, 6, b, 36), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_OFFLINE);
	assert_int_equal(run(&e->nx, &cmd, inq, 6, b, 36), SAM_STAT_GOOD);
	put_be32(rtpg + 6, 512);
	assert_int_equal(run(&e->nx, &cmd, rtpg, 12, b, 512), SAM_STAT_GOOD);
	assert_int_equal(b[4 + 7], 2);              /* two ports in group 0 */
	assert_int_equal(get_be16(b + 4 + 8 + 2), 7);
	assert_int_equal(get_be16(b + 4 + 12 + 2), 9);
	scsi_alua_port_set_offline(e->lu, p2, false);
	assert_int_equal(run(&nx2, &cmd, inq, 6, b, 36), SAM_STAT_GOOD);
	scsi_nexus_clear(&nx2);
	free(b);
}

/* States derived by the backstore (user:rbd ha=1): the groups holding the
 * owner's ports active/optimized, every other standby, with 2A/06 to every
 * nexus; TPGS implicit only and SET TARGET PORT GROUPS refused, since the
 * lock and not the initiator decides (SPC-4 5.16.2.5, 6.4.2). */
/* Unit attentions off a nexus whose port may be standby, where TEST UNIT
 * READY is refused: READ CAPACITY (10) passes there (SPC-4 5.16.2.4.4). */
static void clear_ua_any(struct scsi_nexus *nx)
{
	static const uint8_t rc10[10] = { 0x25 };
	uint8_t *b = abuf(8);
	struct scsi_cmd cmd;
	int i;

	for (i = 0; i < 16; i++)
		if (run(nx, &cmd, rc10, 10, b, 8) == SAM_STAT_GOOD)
			break;
	free(b);
	assert_true(i < 16);
}

static void test_alua_ha_derived(void **state)
{
	struct env *e = *state;
	struct scsi_nexus nx2;
	struct scsi_alua_gp *g1, *g2;
	struct scsi_alua_port *p1 = scsi_alua_port_add(e->lu, 7);
	struct scsi_alua_port *p2 = scsi_alua_port_add(e->lu, 9);
	static const uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
	static const uint8_t rd[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 };
	uint8_t stpg[12] = { 0xa4, 0x0a };
	uint16_t local[4];
	struct scsi_cmd cmd;
	uint8_t *b = abuf(512);

	e->lu->bs->alua_managed = true;
	assert_int_equal(scsi_alua_gp_create(e->lu, "gw1", 1, &g1), 0);
	assert_int_equal(scsi_alua_gp_create(e->lu, "gw2", 2, &g2), 0);
	/* a new group of a managed LU starts standby */
	assert_int_equal(atomic_load(&g1->state), SCSI_ALUA_STANDBY);
	scsi_alua_port_set_gp(e->lu, p1, g1);
	scsi_alua_port_set_gp(e->lu, p2, g2);
	scsi_alua_port_set_local(p2, true);
	scsi_alua_port_set_local(p1, true);
	assert_int_equal(scsi_alua_local_ports(e->lu, local, 4), 2);
	assert_int_equal(local[0], 7);
	assert_int_equal(local[1], 9);
	scsi_alua_port_set_local(p2, false);
	assert_int_equal(scsi_alua_local_ports(e->lu, local, 4), 1);
	nexus_init(&nx2, "iqn.1994-05.com.example:a", 2, e->lu);
	e->nx.map->ent[0].port = p1;
	nx2.map->ent[0].port = p2;
	clear_ua_any(&e->nx);
	clear_ua_any(&nx2);

	scsi_alua_ha_apply(e->lu, local, 1);
	assert_int_equal(scsi_alua_gp_state(e->lu, g1), SCSI_ALUA_AO);
	assert_int_equal(scsi_alua_gp_state(e->lu, g2), SCSI_ALUA_STANDBY);
	assert_int_equal(atomic_load(&g1->status), 2);
	/* the change is announced; then the standby port refuses READ */
	assert_int_equal(run(&nx2, &cmd, rd, 10, b, 512), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_ALUA_STATE_CHANGED);
	assert_int_equal(run(&nx2, &cmd, rd, 10, b, 512), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_STANDBY);
	clear_ua_any(&e->nx);
	assert_int_equal(run(&e->nx, &cmd, rd, 10, b, 512), SAM_STAT_GOOD);
	/* implicit only, no STPG */
	assert_int_equal(run(&e->nx, &cmd, inq, 6, b, 36), SAM_STAT_GOOD);
	assert_int_equal((b[5] >> 4) & 3, 1);
	put_be32(stpg + 6, 8);
	memset(b, 0, 8);
	put_be16(b + 6, 2);
	assert_int_equal(run(&e->nx, &cmd, stpg, 12, b, 8), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
	assert_int_equal(scsi_alua_gp_state(e->lu, g2), SCSI_ALUA_STANDBY);
	/* nobody known to own the LU: everything standby */
	scsi_alua_ha_apply(e->lu, NULL, 0);
	assert_int_equal(scsi_alua_gp_state(e->lu, g1), SCSI_ALUA_STANDBY);
	clear_ua_any(&e->nx);
	assert_int_equal(run(&e->nx, &cmd, rd, 10, b, 512), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_STANDBY);
	scsi_nexus_clear(&nx2);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_caw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orwrite_and_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify12_and_write_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_lba_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rsoc_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rsoc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xcopy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alua_port_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alua_ha_derived, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
