/* Logical units, LUN maps and I_T nexus state; LUN field encoding. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/loop.h"
#include "scsi/scsi_int.h"
#include "util/log.h"

/* LIO's storage object defaults (targetcli-fb / rtslib-fb, drivers/target
 * target_core_device.c), derived from what the backstore reports. */
void scsi_lu_attrs_default(struct scsi_lu_attrs *a, const struct bs_dev *bs)
{
	memset(a, 0, sizeof(*a));
	a->block_size = bs && bs->block_size ? bs->block_size : 512;
	a->emulate_write_cache = bs ? atomic_load(&bs->write_back) : false;
	a->emulate_fua_write = true;
	a->emulate_fua_read = true;
	a->emulate_dpo = true;
	a->emulate_tpu = bs ? bs->can_unmap : false;
	a->emulate_tpws = bs ? bs->can_unmap : false;
	a->emulate_caw = true;
	a->emulate_3pc = true;
	a->emulate_pr = true;
	a->emulate_model_alias = true;
	a->emulate_ua_intlck_ctrl = false;
	a->emulate_tas = true;
	a->emulate_rsoc = true;
	a->enforce_pr_isids = true;
	a->is_nonrot = bs ? !bs->rotational : false;
	/* LIO derives this from the device; ours zero unmapped blocks
	 * whenever they can unmap (BS_UNMAP contract) */
	a->unmap_zeroes_data = bs ? bs->can_unmap : false;
	a->max_unmap_lba_count = 8192;
	a->max_unmap_block_desc_count = 1;
	/* in blocks; the backstore knows its allocation unit in bytes */
	a->unmap_granularity = bs && bs->unmap_granularity && a->block_size ?
		bs->unmap_granularity / a->block_size : 0;
	a->unmap_granularity_alignment = 0;
	a->max_write_same_len = 0x1000;
	a->hw_max_sectors = 16384;
	a->optimal_sectors = 16384;
	a->queue_depth = 128;
}

/* Every live LU, for EXTENDED COPY to find a copy target by its NAA
 * designator (xcopy.c). */
static pthread_mutex_t lu_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head lu_registry = { &lu_registry, &lu_registry };

void scsi_lu_foreach(void (*fn)(struct scsi_lu *lu, void *arg), void *arg)
{
	struct scsi_lu *lu;

	pthread_mutex_lock(&lu_reg_lock);
	list_for_each_entry(lu, &lu_registry, reg_link)
		fn(lu, arg);
	pthread_mutex_unlock(&lu_reg_lock);
}

struct scsi_lu *scsi_lu_find_naa(const uint8_t naa[16])
{
	struct scsi_lu *lu, *found = NULL;
	uint8_t d[16];

	pthread_mutex_lock(&lu_reg_lock);
	list_for_each_entry(lu, &lu_registry, reg_link) {
		int ref = atomic_load(&lu->refcnt);

		scsi_lu_naa(lu, d);
		if (memcmp(d, naa, 16) != 0)
			continue;
		/* an LU on its way out (refcnt 0) is not found */
		while (ref > 0 && !atomic_compare_exchange_weak(&lu->refcnt,
								&ref, ref + 1))
			;
		if (ref > 0)
			found = lu;
		break;
	}
	pthread_mutex_unlock(&lu_reg_lock);
	return found;
}

static bool valid_block_size(uint32_t bs)
{
	/* SBC-3 allows any length; initiators (Linux sd) want a power of two
	 * between 512 and 4096 bytes (LIO's block_size attribute range). */
	return bs >= 512 && bs <= 4096 && (bs & (bs - 1)) == 0;
}

/* The backstore's medium changed size under us (an RBD image resized by
 * another client): the capacity follows, and every I_T nexus learns it
 * from CAPACITY DATA HAS CHANGED (SBC-3 4.6 / SPC-4 6.37 table 287). May
 * run on any thread; lu outlives bs (bs_close runs in lu_destroy). */
static void lu_resized(struct bs_dev *bs, uint64_t new_size, void *arg)
{
	struct scsi_lu *lu = arg;

	atomic_store(&lu->nblocks, new_size / lu->attrs.block_size);
	scsi_lu_establish_ua(lu, SCSI_UA_CAPACITY_CHANGED);
}

/* A backstore that derives the LU's ALUA states (bs_dev.alua_managed). */
static unsigned lu_local_ports(struct bs_dev *bs, uint16_t *rtpi, unsigned max,
			       void *arg)
{
	(void)bs;
	return scsi_alua_local_ports(arg, rtpi, max);
}

static void lu_owner_ports(struct bs_dev *bs, const uint16_t *rtpi, unsigned n,
			   void *arg)
{
	(void)bs;
	scsi_alua_ha_apply(arg, rtpi, n);
}

struct scsi_lu *scsi_lu_create(struct bs_dev *bs, const char *name,
			       const char *plugin, const char *wwn,
			       const struct scsi_lu_attrs *attrs)
{
	struct scsi_lu *lu;

	if (!bs)
		return NULL;
	lu = calloc(1, sizeof(*lu));
	if (!lu)
		return NULL;
	lu->bs = bs;
	snprintf(lu->name, sizeof(lu->name), "%s", name ? name : "");
	snprintf(lu->plugin, sizeof(lu->plugin), "%s",
		 plugin ? plugin : (bs->ops && bs->ops->plugin ? bs->ops->plugin : ""));
	snprintf(lu->wwn, sizeof(lu->wwn), "%s", wwn ? wwn : "");
	if (attrs)
		lu->attrs = *attrs;
	else
		scsi_lu_attrs_default(&lu->attrs, bs);
	if (!lu->attrs.block_size)
		lu->attrs.block_size = bs->block_size ? bs->block_size : 512;
	if (!valid_block_size(lu->attrs.block_size)) {
		log_err("storage object %s: invalid block size %u", lu->name,
			lu->attrs.block_size);
		free(lu);
		return NULL;
	}
	atomic_init(&lu->nblocks, bs->size / lu->attrs.block_size);
	if (pthread_mutex_init(&lu->lock, NULL) != 0) {
		free(lu);
		return NULL;
	}
	if (pthread_mutex_init(&lu->cmp_lock, NULL) != 0) {
		pthread_mutex_destroy(&lu->lock);
		free(lu);
		return NULL;
	}
	list_init(&lu->nexus_ents);
	if (scsi_alua_init(lu)) {
		scsi_alua_free(lu);
		pthread_mutex_destroy(&lu->cmp_lock);
		pthread_mutex_destroy(&lu->lock);
		free(lu);
		return NULL;
	}
	atomic_init(&lu->refcnt, 1);
	atomic_init(&lu->reserved, false);
	bs->resized_arg = lu;
	bs->resized = lu_resized;
	/* the plugin's thread may be running already (user:rbd HA) */
	__atomic_store_n(&bs->local_ports, lu_local_ports, __ATOMIC_RELEASE);
	__atomic_store_n(&bs->owner_ports, lu_owner_ports, __ATOMIC_RELEASE);
	scsi_pr_restore(lu);
	pthread_mutex_lock(&lu_reg_lock);
	list_add_tail(&lu->reg_link, &lu_registry);
	pthread_mutex_unlock(&lu_reg_lock);
	return lu;
}

void scsi_lu_get(struct scsi_lu *lu)
{
	atomic_fetch_add_explicit(&lu->refcnt, 1, memory_order_relaxed);
}

static void lu_destroy(struct scsi_lu *lu)
{
	if (!list_empty(&lu->nexus_ents))
		log_err("storage object %s freed while mapped", lu->name);
	pthread_mutex_lock(&lu_reg_lock);
	list_del(&lu->reg_link);
	pthread_mutex_unlock(&lu_reg_lock);
	bs_close(lu->bs);
	scsi_pr_free(lu);
	scsi_xcopy_free(lu);
	scsi_alua_free(lu);
	pthread_mutex_destroy(&lu->cmp_lock);
	pthread_mutex_destroy(&lu->lock);
	free(lu);
}

void scsi_lu_put(struct scsi_lu *lu)
{
	if (lu && atomic_fetch_sub_explicit(&lu->refcnt, 1,
					    memory_order_acq_rel) == 1)
		lu_destroy(lu);
}

struct lu_defer {
	struct io_deferred d;
	struct scsi_lu *lu;
};

static void lu_defer_fn(struct io_deferred *d)
{
	struct lu_defer *ld = container_of(d, struct lu_defer, d);

	lu_destroy(ld->lu);
	free(ld);
}

void scsi_lu_put_on(struct scsi_lu *lu, struct io_loop *loop)
{
	struct lu_defer *ld;

	if (!lu || atomic_fetch_sub_explicit(&lu->refcnt, 1,
					     memory_order_acq_rel) != 1)
		return;
	ld = loop ? malloc(sizeof(*ld)) : NULL;
	if (!ld) {
		lu_destroy(lu);
		return;
	}
	ld->lu = lu;
	ld->d.fn = lu_defer_fn;
	io_loop_defer(loop, &ld->d);
}

void scsi_lu_establish_ua_except(struct scsi_lu *lu, unsigned ua,
				 const struct scsi_nexus *nx)
{
	struct scsi_lun_ent *e;

	pthread_mutex_lock(&lu->lock);
	/* A LUN reset or power on also ends an SPC-2 reservation (SPC-2
	 * 5.5.1); the TMF code announces both through these UAs. */
	if (ua & (SCSI_UA_POWER_ON | SCSI_UA_LUN_RESET))
		scsi_pr_reset_locked(lu);
	list_for_each_entry(e, &lu->nexus_ents, lu_link)
		if (e->nexus != nx || !nx)
			atomic_fetch_or(&e->ua, ua);
	pthread_mutex_unlock(&lu->lock);
}

void scsi_lu_establish_ua(struct scsi_lu *lu, unsigned ua)
{
	scsi_lu_establish_ua_except(lu, ua, NULL);
}

/* --- LUN maps --- */

struct scsi_lun_map *scsi_lun_map_new(unsigned n)
{
	struct scsi_lun_map *map;

	map = calloc(1, sizeof(*map) + (size_t)n * sizeof(map->ent[0]));
	if (!map)
		return NULL;
	map->n = n;
	for (unsigned i = 0; i < n; i++) {
		atomic_init(&map->ent[i].ua, 0);
		list_init(&map->ent[i].lu_link);
	}
	return map;
}

void scsi_lun_map_free(struct scsi_lun_map *map)
{
	if (!map)
		return;
	for (unsigned i = 0; i < map->n; i++) {
		struct scsi_lun_ent *e = &map->ent[i];

		if (!e->lu)
			continue;
		if (list_linked(&e->lu_link)) {
			pthread_mutex_lock(&e->lu->lock);
			list_del(&e->lu_link);
			pthread_mutex_unlock(&e->lu->lock);
		}
		scsi_lu_put(e->lu);
	}
	free(map);
}

static int ent_cmp(const void *a, const void *b)
{
	const struct scsi_lun_ent *x = a, *y = b;

	return x->lun < y->lun ? -1 : x->lun > y->lun;
}

static struct scsi_lun_ent *map_find(struct scsi_lun_map *map, uint64_t lun)
{
	unsigned lo = 0, hi;

	if (!map)
		return NULL;
	hi = map->n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (map->ent[mid].lun == lun)
			return &map->ent[mid];
		if (map->ent[mid].lun < lun)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool same_lun_set(const struct scsi_lun_map *a,
			 const struct scsi_lun_map *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->ent[i].lun != b->ent[i].lun ||
		    a->ent[i].lu != b->ent[i].lu)
			return false;
	return true;
}

/* A LUN the nexus already saw (same number, same LU) keeps its pending
 * unit attentions; a LUN that is new to the nexus starts with POWER ON
 * (SAM-5 6.2: the first command after the LU appears learns of it). When
 * the inventory changed, the LUNs that stay get REPORTED LUNS DATA HAS
 * CHANGED (SPC-4 6.33). */
void scsi_nexus_set_map(struct scsi_nexus *nx, struct scsi_lun_map *map)
{
	struct scsi_lun_map *old = nx->map;

	if (map == old)
		return;
	if (map) {
		bool changed;

		/* Entries are not linked anywhere yet, so moving them is safe. */
		qsort(map->ent, map->n, sizeof(map->ent[0]), ent_cmp);
		changed = old && !same_lun_set(old, map);
		for (unsigned i = 0; i < map->n; i++) {
			struct scsi_lun_ent *e = &map->ent[i];
			struct scsi_lun_ent *o = map_find(old, e->lun);
			unsigned ua = SCSI_UA_POWER_ON;

			if (o && o->lu == e->lu) {
				ua = atomic_load(&o->ua);
				if (changed)
					ua |= SCSI_UA_LUNS_CHANGED;
			}
			e->nexus = nx;
			atomic_store(&e->ua, ua);
			if (!e->lu) {
				list_init(&e->lu_link);
				continue;
			}
			pthread_mutex_lock(&e->lu->lock);
			list_add_tail(&e->lu_link, &e->lu->nexus_ents);
			pthread_mutex_unlock(&e->lu->lock);
		}
	}
	nx->map = map;
	nx->map_gen++;
	scsi_lun_map_free(old);
}

void scsi_nexus_clear(struct scsi_nexus *nx)
{
	struct scsi_lun_map *old = nx->map;

	/* The I_T nexus ends: so do its SPC-2 reservations. */
	for (unsigned i = 0; old && i < old->n; i++)
		if (old->ent[i].lu)
			scsi_pr_nexus_gone(old->ent[i].lu, nx);

	nx->map = NULL;
	nx->map_gen++;
	scsi_lun_map_free(old);
}

struct scsi_lun_ent *scsi_nexus_lookup(struct scsi_nexus *nx, uint64_t lun)
{
	struct scsi_lun_ent *e;

	if (!nx)
		return NULL;
	e = map_find(nx->map, lun);
	return e && e->lu ? e : NULL;
}

void scsi_nexus_clear_ua(struct scsi_nexus *nx, unsigned ua)
{
	if (!nx || !nx->map)
		return;
	for (unsigned i = 0; i < nx->map->n; i++)
		atomic_fetch_and(&nx->map->ent[i].ua, ~ua);
}

/* --- LUN field (SAM-5 4.7) --- */

#define LUN_INVALID UINT64_MAX

/* Single level only: peripheral device addressing with bus 0 (LUN 0-255),
 * flat space (0-16383) and extended flat space (4-byte form, 24 bits).
 * Anything else decodes to a number no map holds, so the command gets
 * LOGICAL UNIT NOT SUPPORTED. */
uint64_t scsi_lun_decode(const uint8_t lun[8])
{
	unsigned method = lun[0] >> 6;
	size_t used = 2;
	uint64_t v;

	switch (method) {
	case 0: /* peripheral device: bus identifier must be 0 */
		if (lun[0] & 0x3f)
			return LUN_INVALID;
		v = lun[1];
		break;
	case 1: /* flat space */
		v = (uint64_t)(lun[0] & 0x3f) << 8 | lun[1];
		break;
	case 3:
		/* extended flat space: length 01b, extended address method 2 */
		if (lun[0] != 0xd2)
			return LUN_INVALID;
		v = (uint64_t)lun[1] << 16 | (uint64_t)lun[2] << 8 | lun[3];
		used = 4;
		break;
	default:
		return LUN_INVALID;
	}
	for (size_t i = used; i < 8; i++)
		if (lun[i])
			return LUN_INVALID;
	return v;
}

void scsi_lun_encode(uint64_t lun, uint8_t out[8])
{
	memset(out, 0, 8);
	if (lun < 256) {
		out[1] = (uint8_t)lun;
	} else if (lun < 16384) {
		out[0] = (uint8_t)(0x40 | (lun >> 8));
		out[1] = (uint8_t)lun;
	} else {
		out[0] = 0xd2;
		out[1] = (uint8_t)(lun >> 16);
		out[2] = (uint8_t)(lun >> 8);
		out[3] = (uint8_t)lun;
	}
}

static scsi_abort_fn abort_hook;

void scsi_set_abort_hook(scsi_abort_fn fn)
{
	abort_hook = fn;
}

void scsi_lu_abort_tasks(struct scsi_lu *lu, const char *initiator_port,
			 const struct scsi_nexus *except)
{
	if (abort_hook)
		abort_hook(lu, initiator_port, except, lu->attrs.emulate_tas);
}
