/* Unit tests of persistent reservations kept in the backstore's cluster
 * (pr.c with bs->pr_shared, issue 18): two LUs stand for two gateways
 * serving one image, their backstores share one in-memory "object" with a
 * version (compare-and-swap like rbd_pr.c's cmpxattr) and "notify" every
 * attached LU synchronously after a store. */
#include <pthread.h>
#include <stdatomic.h>

#include "scsi_fake.h"

struct shared {
	pthread_mutex_t m;
	char *buf;
	size_t len;
	uint64_t version;
	unsigned stores, cancels;
	int (*changed[2])(void *arg, const char *data, size_t len);
	void *arg[2];
	/* before the next store compares: run this (another gateway's
	 * command getting in first) */
	void (*race)(void);
};

static struct shared g_sh = { .m = PTHREAD_MUTEX_INITIALIZER };

static int sh_index(struct bs_dev *dev)
{
	return dev->name[0] == 'b';
}

static int sh_load(struct bs_dev *dev, char **buf, size_t *len)
{
	pthread_mutex_lock(&g_sh.m);
	*buf = malloc(g_sh.len + 1);
	assert_non_null(*buf);
	if (g_sh.len)
		memcpy(*buf, g_sh.buf, g_sh.len);
	(*buf)[g_sh.len] = 0;
	*len = g_sh.len;
	pthread_mutex_unlock(&g_sh.m);
	return 0;
}

static int sh_store(struct bs_dev *dev, uint64_t version, uint64_t nv,
		    const char *buf, size_t len)
{
	void (*race)(void) = g_sh.race;
	int i;

	if (race) {
		g_sh.race = NULL;
		race();
	}
	pthread_mutex_lock(&g_sh.m);
	if (g_sh.version != version) {
		g_sh.cancels++;
		pthread_mutex_unlock(&g_sh.m);
		return -ECANCELED;
	}
	free(g_sh.buf);
	g_sh.buf = malloc(len);
	assert_non_null(g_sh.buf);
	memcpy(g_sh.buf, buf, len);
	g_sh.len = len;
	g_sh.version = nv;
	g_sh.stores++;
	pthread_mutex_unlock(&g_sh.m);
	/* the notify: every watcher takes it before the store returns */
	for (i = 0; i < 2; i++)
		if (g_sh.changed[i])
			assert_int_equal(g_sh.changed[i](g_sh.arg[i], buf, len), 0);
	return 0;
}

static void sh_attach(struct bs_dev *dev,
		      int (*changed)(void *arg, const char *data, size_t len),
		      void *arg)
{
	g_sh.changed[sh_index(dev)] = changed;
	g_sh.arg[sh_index(dev)] = arg;
	if (changed) /* the current state, as bs_ops.pr_attach promises */
		assert_int_equal(changed(arg, NULL, 0), 0);
}

static void sh_close(struct bs_dev *dev)
{
	g_sh.changed[sh_index(dev)] = NULL;
	fake_close(dev);
}

static const struct bs_ops shared_ops = {
	.plugin = "user:rbd",
	.close = sh_close,
	.submit = fake_submit,
	.pr_load = sh_load,
	.pr_store = sh_store,
	.pr_attach = sh_attach,
};

struct env {
	struct scsi_lu *a, *b;       /* gateway A's and B's LU */
	struct scsi_nexus i1a, i2b;  /* I1 through A's port, I2 through B's */
};

static struct env *g_env;

static struct scsi_lu *gateway_lu(const char *name)
{
	struct bs_dev *dev = fake_dev(name, (uint64_t)NBLK * BLK, false, true);
	struct scsi_lu *lu;

	dev->ops = &shared_ops;
	dev->pr_shared = true;
	atomic_store(&dev->pr_valid_until_ms, UINT64_MAX);
	lu = scsi_lu_create(dev, "disk", "user", "6a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d",
			    NULL);
	assert_non_null(lu);
	return lu;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	free(g_sh.buf);
	g_sh.buf = NULL;
	g_sh.len = 0;
	g_sh.version = 0;
	g_sh.stores = g_sh.cancels = 0;
	e->a = gateway_lu("a");
	e->b = gateway_lu("b");
	nexus_init(&e->i1a, "iqn.1994-05.com.example:i1", 1, e->a);
	nexus_init(&e->i2b, "iqn.1994-05.com.example:i2", 2, e->b);
	e->i2b.tport.tpgt = 2; /* gateway B's TPG */
	clear_ua(&e->i1a);
	clear_ua(&e->i2b);
	g_env = e;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	scsi_nexus_clear(&e->i1a);
	scsi_nexus_clear(&e->i2b);
	scsi_lu_put(e->a);
	scsi_lu_put(e->b);
	free(e);
	return 0;
}

/* Commands completed and not yet collected by crun (they may complete on
 * another thread, and several may be in flight: a racing gateway's). */
static pthread_mutex_t g_done_m = PTHREAD_MUTEX_INITIALIZER;
static struct scsi_cmd *g_done_cmds[16];

static void on_cdone(struct scsi_cmd *cmd)
{
	int i;

	pthread_mutex_lock(&g_done_m);
	for (i = 0; i < 16 && g_done_cmds[i]; i++)
		;
	assert_true(i < 16);
	g_done_cmds[i] = cmd;
	pthread_mutex_unlock(&g_done_m);
}

static bool collect(struct scsi_cmd *cmd)
{
	bool found = false;
	int i;

	pthread_mutex_lock(&g_done_m);
	for (i = 0; i < 16; i++)
		if (g_done_cmds[i] == cmd) {
			g_done_cmds[i] = NULL;
			found = true;
		}
	pthread_mutex_unlock(&g_done_m);
	return found;
}

/* Like run(), but the command may complete on another thread (a cluster
 * PR OUT runs on a helper thread): waits for it. */
static uint8_t crun(struct scsi_nexus *nx, struct scsi_cmd *cmd,
		    const uint8_t *cdb, size_t cdblen, uint8_t *buf, uint32_t blen)
{
	int i;

	memset(cmd, 0, sizeof(*cmd));
	cmd->nexus = nx;
	memcpy(cmd->cdb, cdb, cdblen);
	cmd->edtl = blen;
	cmd->done = on_cdone;
	if (scsi_cmd_prepare(cmd))
		return cmd->status;
	cmd->buf = buf;
	cmd->buf_len = cmd->dir == SCSI_DIR_WRITE ?
			       (blen < cmd->xfer_len ? blen : cmd->xfer_len) : blen;
	scsi_cmd_exec(cmd);
	for (i = 0; i < 5000 && !collect(cmd); i++)
		usleep(1000);
	assert_true(i < 5000);
	return cmd->status;
}

static uint8_t prout(struct scsi_nexus *nx, uint8_t sa, uint8_t type,
		     uint64_t rk, uint64_t sark, struct scsi_cmd *cmd)
{
	uint8_t cdb[10] = { 0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0 };
	uint8_t *p = abuf(24);
	uint8_t st;

	put_be64(p, rk);
	put_be64(p + 8, sark);
	st = crun(nx, cmd, cdb, 10, p, 24);
	free(p);
	return st;
}

static uint8_t write1(struct scsi_nexus *nx, struct scsi_cmd *cmd)
{
	uint8_t cdb[10] = { 0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0 };
	uint8_t *p = abuf(BLK);
	uint8_t st = crun(nx, cmd, cdb, 10, p, BLK);

	free(p);
	return st;
}

/* READ KEYS: the number of keys, *gen the PRgeneration, keys[] */
static unsigned read_keys(struct scsi_nexus *nx, uint32_t *gen, uint64_t *keys)
{
	uint8_t cdb[10] = { 0x5e, 0x00, 0, 0, 0, 0, 0, 0, 64, 0 };
	uint8_t *b = abuf(64);
	struct scsi_cmd cmd;
	unsigned n, i;

	assert_int_equal(crun(nx, &cmd, cdb, 10, b, 64), SAM_STAT_GOOD);
	*gen = get_be32(b);
	n = get_be32(b + 4) / 8;
	for (i = 0; i < n && i < 6; i++)
		keys[i] = get_be64(b + 8 + 8 * i);
	free(b);
	return n;
}

static void test_reservation_through_a_enforced_on_b(void **state)
{
	struct env *e = *state;
	struct scsi_cmd cmd;
	uint64_t keys[6];
	uint32_t ga, gb;

	assert_int_equal(prout(&e->i1a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i1a, 1, 0x01, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	assert_int_equal(write1(&e->i2b, &cmd), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(write1(&e->i1a, &cmd), SAM_STAT_GOOD);
	assert_int_equal(read_keys(&e->i2b, &gb, keys), 1);
	assert_true(keys[0] == 0xaa);
	read_keys(&e->i1a, &ga, keys);
	assert_int_equal(ga, gb);
	assert_int_equal(g_sh.stores, 2);
	/* the stored form (docs/rbd.md) */
	assert_non_null(strstr(g_sh.buf, "\"format\":\"utarget-pr/1\""));
	assert_non_null(strstr(g_sh.buf, "\"key\":\"0x00000000000000aa\""));
	assert_non_null(strstr(g_sh.buf, "\"reservation\":{\"holder\":0,\"type\":1}"));
	/* a failed command stores nothing (I2 is not registered) */
	assert_int_equal(prout(&e->i2b, 1, 0x01, 0xbb, 0, &cmd),
			 SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(g_sh.stores, 2);
}

static void test_preempt_through_b_raises_ua_on_a(void **state)
{
	struct env *e = *state;
	static const uint8_t tur[6] = { 0 };
	struct scsi_cmd cmd;
	uint64_t keys[6];
	uint32_t gen;

	assert_int_equal(prout(&e->i1a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i1a, 1, 0x01, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i2b, 0, 0, 0, 0xbb, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i2b, 4, 0x01, 0xbb, 0xaa, &cmd), SAM_STAT_GOOD);
	/* I1, on the other gateway: REGISTRATIONS PREEMPTED (SPC-4 5.12.11.4) */
	assert_int_equal(crun(&e->i1a, &cmd, tur, 6, NULL, 0),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_REGISTRATIONS_PREEMPTED);
	/* the preempting nexus gets none */
	assert_int_equal(crun(&e->i2b, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
	assert_int_equal(read_keys(&e->i1a, &gen, keys), 1);
	assert_true(keys[0] == 0xbb);
	assert_int_equal(write1(&e->i1a, &cmd), SAM_STAT_RESERVATION_CONFLICT);
	assert_int_equal(write1(&e->i2b, &cmd), SAM_STAT_GOOD);
}

/* SPC-4 5.12.11.2.2: releasing a registrants-only reservation tells the
 * other registrants, here on the other gateway (RESERVATIONS RELEASED). */
static void test_release_raises_ua_on_the_other_gateway(void **state)
{
	struct env *e = *state;
	static const uint8_t tur[6] = { 0 };
	struct scsi_cmd cmd;

	assert_int_equal(prout(&e->i1a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i2b, 0, 0, 0, 0xbb, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i1a, 1, 0x05, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	/* a registrant may write under WRITE EXCLUSIVE - REGISTRANTS ONLY */
	assert_int_equal(write1(&e->i2b, &cmd), SAM_STAT_GOOD);
	assert_int_equal(prout(&e->i1a, 2, 0x05, 0xaa, 0, &cmd), SAM_STAT_GOOD);
	assert_int_equal(crun(&e->i2b, &cmd, tur, 6, NULL, 0),
			 SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_UNIT_ATTENTION, ASC_RESERVATIONS_RELEASED);
	/* not the releasing nexus */
	assert_int_equal(crun(&e->i1a, &cmd, tur, 6, NULL, 0), SAM_STAT_GOOD);
}

/* Gateway B registers between A's load and A's store. */
static void race_register_b(void)
{
	struct scsi_cmd cmd;

	assert_int_equal(prout(&g_env->i2b, 0, 0, 0, 0xbb, &cmd), SAM_STAT_GOOD);
}

static void test_compare_and_swap_retries_against_the_new_state(void **state)
{
	struct env *e = *state;
	struct scsi_cmd cmd;
	uint64_t keys[6];
	uint32_t gen;

	g_sh.race = race_register_b;
	assert_int_equal(prout(&e->i1a, 0, 0, 0, 0xaa, &cmd), SAM_STAT_GOOD);
	assert_int_equal(g_sh.cancels, 1);
	/* both registrations are there, and each was counted once */
	assert_int_equal(read_keys(&e->i2b, &gen, keys), 2);
	assert_true((keys[0] == 0xbb && keys[1] == 0xaa));
	assert_int_equal(gen, 2);
	assert_int_equal(read_keys(&e->i1a, &gen, keys), 2);
}

static void test_no_lease_no_service(void **state)
{
	struct env *e = *state;
	static const uint8_t inq[6] = { 0x12, 0, 0, 0, 36, 0 };
	uint8_t *b = abuf(64);
	struct scsi_cmd cmd;
	uint64_t keys[6];
	uint32_t gen;

	atomic_store(&e->b->bs->pr_valid_until_ms, 0);
	assert_int_equal(write1(&e->i2b, &cmd), SAM_STAT_CHECK_CONDITION);
	assert_sense(&cmd, SK_NOT_READY, ASC_LU_NOT_ACCESSIBLE_TRANSITION);
	assert_int_equal(crun(&e->i2b, &cmd, inq, 6, b, 36), SAM_STAT_GOOD);
	/* PR OUT reads the cluster's state itself */
	assert_int_equal(prout(&e->i2b, 0, 0, 0, 0xbb, &cmd), SAM_STAT_GOOD);
	atomic_store(&e->b->bs->pr_valid_until_ms, UINT64_MAX);
	assert_int_equal(read_keys(&e->i1a, &gen, keys), 1);
	assert_int_equal(write1(&e->i2b, &cmd), SAM_STAT_GOOD);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reservation_through_a_enforced_on_b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempt_through_b_raises_ua_on_a, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_raises_ua_on_the_other_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compare_and_swap_retries_against_the_new_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_lease_no_service, setup, teardown),
	};

	(void)fake_lu;
	(void)fake_data;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
