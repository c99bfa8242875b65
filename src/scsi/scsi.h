/* The SCSI core: logical units, I_T nexus state, command dispatch for a
 * disk LU (SPC-4 / SBC-3). Transport independent: an iSCSI task embeds a
 * struct scsi_cmd and gets it back with container_of; completion goes back
 * up through cmd->done. Never include an iscsi header here. */
#ifndef UT_SCSI_H
#define UT_SCSI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backstore/backstore.h"
#include "util/list.h"

#define SCSI_CDB_MAX 16
#define SCSI_SENSE_MAX 96
#define SCSI_NAME_MAX 256

/* SAM-5 status codes */
#define SAM_STAT_GOOD 0x00
#define SAM_STAT_CHECK_CONDITION 0x02
#define SAM_STAT_CONDITION_MET 0x04
#define SAM_STAT_BUSY 0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL 0x28
#define SAM_STAT_TASK_ABORTED 0x40

/* Sense keys (SPC-4 4.5.6) */
#define SK_NO_SENSE 0x0
#define SK_RECOVERED_ERROR 0x1
#define SK_NOT_READY 0x2
#define SK_MEDIUM_ERROR 0x3
#define SK_HARDWARE_ERROR 0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION 0x6
#define SK_DATA_PROTECT 0x7
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE 0xe

/* Additional sense code + qualifier packed as 0xAAQQ */
#define ASC_NONE 0x0000
#define ASC_INVALID_OPCODE 0x2000
#define ASC_LBA_OUT_OF_RANGE 0x2100
#define ASC_INVALID_FIELD_IN_CDB 0x2400
#define ASC_LUN_NOT_SUPPORTED 0x2500
#define ASC_INVALID_FIELD_IN_PARAM_LIST 0x2600
#define ASC_PARAM_LIST_LENGTH_ERROR 0x1a00
#define ASC_WRITE_PROTECTED 0x2700
#define ASC_POWER_ON_RESET 0x2900
#define ASC_BUS_DEVICE_RESET 0x2903 /* BUS DEVICE RESET FUNCTION OCCURRED */
#define ASC_MODE_PARAMETERS_CHANGED 0x2a01
#define ASC_CAPACITY_DATA_CHANGED 0x2a09
#define ASC_REPORTED_LUNS_CHANGED 0x3f0e
#define ASC_SAVING_PARAMS_UNSUP 0x3900
#define ASC_READ_ERROR 0x1100      /* UNRECOVERED READ ERROR */
#define ASC_WRITE_ERROR 0x0c00
#define ASC_SPACE_ALLOC_FAILED 0x2707 /* SPACE ALLOCATION FAILED WRITE PROTECT */
#define ASC_INTERNAL_TARGET_FAILURE 0x4400
#define ASC_LU_NOT_ACCESSIBLE_TRANSITION 0x040a /* ASYMMETRIC ACCESS STATE TRANSITION */
#define ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR 0x2f00
#define ASC_MEDIUM_NOT_PRESENT 0x3a00
#define ASC_RESERVATIONS_PREEMPTED 0x2a03
#define ASC_RESERVATIONS_RELEASED 0x2a04
#define ASC_REGISTRATIONS_PREEMPTED 0x2a05
#define ASC_ALUA_STATE_CHANGED 0x2a06 /* ASYMMETRIC ACCESS STATE CHANGED */
#define ASC_LU_NOT_ACCESSIBLE_STANDBY 0x040b
#define ASC_LU_NOT_ACCESSIBLE_UNAVAILABLE 0x040c
#define ASC_LU_NOT_ACCESSIBLE_OFFLINE 0x0412

/* Unit attention conditions, one bit each, reported highest-priority first
 * (SAM-5 5.14 / SPC-4 6.37: the first pending one is returned). */
enum scsi_ua {
	SCSI_UA_POWER_ON = 1u << 0,          /* 29/00 */
	SCSI_UA_LUN_RESET = 1u << 1,         /* 29/03 */
	SCSI_UA_CAPACITY_CHANGED = 1u << 2,  /* 2A/09 */
	SCSI_UA_MODE_CHANGED = 1u << 3,      /* 2A/01 */
	SCSI_UA_LUNS_CHANGED = 1u << 4,      /* 3F/0E */
	SCSI_UA_CLEARED_BY_OTHER = 1u << 5,  /* 2F/00 */
	SCSI_UA_RESV_PREEMPTED = 1u << 6,    /* 2A/03 */
	SCSI_UA_RESV_RELEASED = 1u << 7,     /* 2A/04 */
	SCSI_UA_REG_PREEMPTED = 1u << 8,     /* 2A/05 */
	SCSI_UA_ALUA_CHANGED = 1u << 9,      /* 2A/06 */
};

enum scsi_dir { SCSI_DIR_NONE = 0, SCSI_DIR_READ = 1, SCSI_DIR_WRITE = 2 };

/* Storage object attributes that change SCSI behaviour (LIO names). */
struct scsi_lu_attrs {
	uint32_t block_size;
	bool emulate_write_cache;
	bool emulate_fua_write;
	bool emulate_fua_read;
	bool emulate_dpo;
	bool emulate_tpu;
	bool emulate_tpws;
	bool emulate_caw;
	bool emulate_3pc;
	bool emulate_pr;
	bool emulate_model_alias;
	bool emulate_ua_intlck_ctrl;
	bool emulate_tas;
	bool emulate_rsoc;
	bool enforce_pr_isids;
	bool force_pr_aptpl;     /* keep PR state as if APTPL were always set */
	bool unmap_zeroes_data;  /* report LBPRZ */
	bool pi_prot_verify;     /* stored; T10 PI is not implemented */
	uint32_t pi_prot_type;   /* 0 only */
	uint32_t pi_prot_format; /* 0 only */
	uint32_t emulate_rest_reord; /* 0 only: unrestricted reordering */
	bool is_nonrot;
	uint32_t max_unmap_lba_count;
	uint32_t max_unmap_block_desc_count;
	uint32_t unmap_granularity;
	uint32_t unmap_granularity_alignment;
	uint32_t max_write_same_len;
	uint32_t optimal_sectors;
	uint32_t hw_max_sectors;
	uint32_t queue_depth;
};

/* Per-LU statistics (issue 20). The data path never locks: each worker
 * thread adds into its own shard with relaxed atomic adds (a shard is
 * picked once per thread; with more threads than shards two threads share
 * one, which the atomic add keeps correct). Readers on the control thread
 * sum the shards with relaxed loads: counters are monotonic, a read is a
 * snapshot that may be a few commands behind. */
#define SCSI_STATS_SHARDS 8
#define SCSI_LAT_BUCKETS 26 /* <= 2^0 .. 2^24 us (~16.8 s), then +Inf */
enum scsi_io_class { SCSI_IO_READ, SCSI_IO_WRITE, SCSI_IO_OTHER, SCSI_IO_N };

struct scsi_lu_shard {
	_Atomic uint64_t cmds[SCSI_IO_N];
	_Atomic uint64_t read_bytes, write_bytes;
	_Atomic uint64_t sense_keys[16]; /* CHECK CONDITION by sense key */
	_Atomic uint64_t errors;         /* status other than GOOD */
	_Atomic uint64_t tmf;            /* task management calls on the LU */
	_Atomic uint64_t lat[SCSI_IO_N][SCSI_LAT_BUCKETS];
	_Atomic uint64_t lat_sum_us[SCSI_IO_N];
	char pad[64];                    /* keep shards off each other's lines */
};

struct scsi_lu_stats {
	uint64_t cmds[SCSI_IO_N];
	uint64_t read_bytes, write_bytes;
	uint64_t sense_keys[16];
	uint64_t errors;
	uint64_t tmf;
	uint64_t lat[SCSI_IO_N][SCSI_LAT_BUCKETS]; /* per bucket, not cumulative */
	uint64_t lat_sum_us[SCSI_IO_N];
};

/* A logical unit: one per storage object, shared by every TPG LUN and
 * session that maps it (possibly on several workers at once). */
struct scsi_lu {
	struct bs_dev *bs;
	char name[64];       /* storage object name (INQUIRY model alias) */
	char plugin[16];     /* "fileio", ... (INQUIRY model "FILEIO"...) */
	char wwn[64];        /* unit serial number (VPD 0x80), a UUID */
	struct scsi_lu_attrs attrs;
	_Atomic uint64_t nblocks; /* bs->size / attrs.block_size */
	pthread_mutex_t lock;     /* guards nexus_ents and pr (not the data path) */
	struct list_head nexus_ents; /* struct scsi_lun_ent.lu_link */
	atomic_int refcnt;
	/* Serializes the read-modify-write commands (COMPARE AND WRITE,
	 * ORWRITE, WRITE ATOMIC, EXTENDED COPY writes) against each other. */
	pthread_mutex_t cmp_lock;
	/* Reservations (pr.c): state under lock; 'reserved' is the cheap
	 * test the data path makes first (true while any SPC-2 or
	 * persistent reservation exists). */
	struct scsi_pr *pr;
	atomic_bool reserved;
	/* State kept in the backstore's cluster (bs->pr_shared, pr.c):
	 * 'reserved' then stays true so every command comes to
	 * scsi_pr_check, which looks at the lease; pr_active says whether
	 * there is anything to check (what 'reserved' says otherwise), and
	 * pr_loaded whether the state was ever read. */
	atomic_bool pr_active;
	atomic_bool pr_loaded;
	struct list_head reg_link; /* global LU registry (lun.c), by wwn */
	struct scsi_xcopy *xcopy;  /* EXTENDED COPY results (xcopy.c), under lock */
	/* ALUA (alua.c): target port groups and the ports in them, under
	 * lock; neither is freed before the LU (map entries point at them) */
	struct list_head alua_gps;   /* struct scsi_alua_gp.link, by id */
	struct list_head alua_ports; /* struct scsi_alua_port.link */
	struct scsi_lu_shard stats[SCSI_STATS_SHARDS];
};

/* Target port as SPC-4 names it, for VPD 0x83 and PR. */
struct scsi_tport {
	char target_name[SCSI_NAME_MAX]; /* "iqn....,t,0x0001" is built from it */
	uint16_t tpgt;
	uint16_t rel_port_id;
	uint8_t proto_id; /* SPC-4 7.6.1 protocol identifier: SCSI_PROTO_ISCSI */
};

#define SCSI_PROTO_ISCSI 0x5

struct scsi_nexus;

/* ALUA (SPC-4 5.16): asymmetric access states of target port groups. */
enum scsi_alua_state {
	SCSI_ALUA_AO = 0x0,            /* active/optimized */
	SCSI_ALUA_ANO = 0x1,           /* active/non-optimized */
	SCSI_ALUA_STANDBY = 0x2,
	SCSI_ALUA_UNAVAILABLE = 0x3,
	SCSI_ALUA_LBA_DEPENDENT = 0x4,
	SCSI_ALUA_OFFLINE = 0xe,
	SCSI_ALUA_TRANSITIONING = 0xf,
};

/* Supported states (RTPG byte 1, LIO's alua_support_* attributes). */
#define SCSI_ALUA_T_SUP 0x80
#define SCSI_ALUA_O_SUP 0x40
#define SCSI_ALUA_LBD_SUP 0x10
#define SCSI_ALUA_U_SUP 0x08
#define SCSI_ALUA_S_SUP 0x04
#define SCSI_ALUA_AN_SUP 0x02
#define SCSI_ALUA_AO_SUP 0x01

/* A target port group of one LU (LIO's tg_pt_gp). The settings are
 * written by the control thread under lu->lock and read by the data path
 * without it: state and status are atomics, the rest plain fields whose
 * torn read cannot matter (one aligned word each). */
struct scsi_alua_gp {
	struct list_head link;
	char name[64];
	uint16_t id;
	bool deleted;                 /* kept until the LU goes (see alua.c) */
	_Atomic uint8_t state;        /* enum scsi_alua_state */
	_Atomic uint8_t status;       /* 0 none, 1 by STPG, 2 implicit */
	uint8_t access_type;          /* 0 none, 1 implicit, 2 explicit, 3 both */
	uint8_t supported;            /* SCSI_ALUA_*_SUP */
	bool preferred;
	bool write_metadata;
	uint32_t nonop_delay_ms, trans_delay_ms, implicit_trans_secs;
	/* A transition with trans_delay_ms: state reads TRANSITIONING until
	 * trans_deadline_ms (CLOCK_MONOTONIC), then whoever looks first
	 * (a command, a report, the control thread) moves it to pending. */
	_Atomic uint8_t pending;      /* SCSI_ALUA_NONE: no transition */
	_Atomic uint8_t pending_status;
	_Atomic uint64_t trans_deadline_ms;
};

#define SCSI_ALUA_NONE 0xff

/* One target port's view of the LU (LIO's se_lun): which group it is in,
 * and the statistics of the commands that came through it (LIO's
 * statistics/scsi_tgt_port, RFC 4455 scsiTgtPortStatsTable; the LU keeps
 * the device's own, scsiLuStatsTable). */
struct scsi_alua_port {
	struct list_head link;
	uint16_t rtpi;                /* relative target port identifier */
	/* the target port it names (REGISTER AND MOVE's destination) */
	char target_name[SCSI_NAME_MAX];
	uint16_t tpgt;
	bool deleted;
	struct scsi_alua_gp *_Atomic gp;
	/* LIO's per-LUN secondary target port state (se_lun
	 * lun_tg_pt_secondary_offline / _stat / _write_md; configfs
	 * alua_tg_pt_offline, alua_tg_pt_status, alua_tg_pt_write_md):
	 * offline refuses every command through this port (alua.c) */
	atomic_bool offline;
	_Atomic uint8_t sec_status;   /* 0 none, 1 by STPG, 2 implicit */
	bool sec_write_md;            /* stored only (LIO: /var/target/alua) */
	/* This daemon serves through the port (its TPG is enabled). A gateway
	 * of an HA group also has the other gateways' TPGs, disabled, so that
	 * every gateway reports every port (docs/rbd.md); the backstore's
	 * lock owner makes the groups of its local ports optimized. */
	atomic_bool local;
	struct scsi_lu_shard stats[SCSI_STATS_SHARDS];
};

/* One LUN as a nexus sees it. */
struct scsi_lun_ent {
	uint64_t lun;           /* number the initiator uses (mapped LUN) */
	struct scsi_lu *lu;
	struct scsi_alua_port *port; /* NULL: no ALUA group (all commands) */
	bool write_protect;
	atomic_uint ua;         /* pending enum scsi_ua bits for this I_T_L */
	struct scsi_nexus *nexus;
	struct list_head lu_link; /* on lu->nexus_ents */
};

/* The LUNs a nexus may see, sorted by lun. Immutable once published; a
 * configuration change builds a new map (scsi_nexus_set_map). */
struct scsi_lun_map {
	unsigned n;
	struct scsi_lun_ent ent[];
};

/* I_T nexus: one per iSCSI session. */
struct scsi_nexus {
	char initiator_port[SCSI_NAME_MAX + 32]; /* "iqn...,i,0x<isid>" */
	char initiator_name[SCSI_NAME_MAX];
	struct scsi_tport tport;
	struct scsi_lun_map *map;
	uint32_t map_gen;  /* bumped at every map change (on the nexus' worker) */
	/* the commands of this I_T nexus on any of its LUs (one shard: the
	 * session's worker writes it; atomic adds all the same, as a
	 * backstore may complete on its own thread) */
	struct scsi_lu_shard stats;
};

struct scsi_cmd {
	/* --- set by the transport before scsi_cmd_prepare --- */
	struct scsi_nexus *nexus;
	uint64_t lun;                /* decoded LUN number (SAM-5 flat/peripheral) */
	uint8_t cdb[SCSI_CDB_MAX];
	uint32_t edtl;               /* expected data transfer length */
	struct io_loop *loop;        /* worker the command runs on */
	void (*done)(struct scsi_cmd *cmd); /* called once by scsi_cmd_exec */
	/* --- set by scsi_cmd_prepare --- */
	struct scsi_lun_ent *ent;    /* NULL when the LUN is not mapped */
	uint32_t map_gen;            /* nexus map_gen that ent belongs to */
	enum scsi_dir dir;
	uint32_t xfer_len;           /* bytes the CDB asks to move */
	/* --- data buffer: provided by the transport after prepare, at least
	 * xfer_len bytes (clamped to edtl for writes, see below), 4096-aligned.
	 * For WRITE it holds the received data when scsi_cmd_exec is called. */
	uint8_t *buf;
	uint32_t buf_len;
	/* --- results --- */
	uint8_t status;
	uint8_t sense[SCSI_SENSE_MAX];
	uint8_t sense_len;
	uint32_t data_len;           /* Data-In bytes valid in buf */
	/* Milliseconds the transport waits between prepare and exec (LIO's
	 * nonop_delay_msecs on an active/non-optimized port); 0 mostly. */
	uint32_t delay_ms;
	/* --- private to the SCSI core --- */
	struct bs_io bio;
	uint32_t state;
	uint64_t lba;
	uint32_t nblk;
	struct scsi_lu *lu;          /* referenced from exec to done */
	struct scsi_alua_port *port; /* lives as long as lu */
	uint64_t t_exec_ns;          /* CLOCK_MONOTONIC at exec (latency) */
};

/* Parse and check the CDB: LUN lookup, unit attentions, opcode support, CDB
 * fields, LBA range, write protection. Returns 0 when the command must be
 * executed (dir / xfer_len set; the transport then collects Data-Out into
 * buf), or 1 when the status (and sense) is already final — the transport
 * discards any data and reports cmd->status without calling exec. */
int scsi_cmd_prepare(struct scsi_cmd *cmd);

/* Execute a prepared command; cmd->done runs exactly once, possibly before
 * this returns. */
void scsi_cmd_exec(struct scsi_cmd *cmd);

/* Sense helpers (fixed format, SPC-4 4.5.3). */
void scsi_set_sense(struct scsi_cmd *cmd, uint8_t key, uint16_t asc);
/* INVALID FIELD IN CDB / PARAMETER LIST with the sense-key specific field
 * pointer (SPC-4 4.5.2.4.2): byte, bit (bit < 0 = no bit pointer). */
void scsi_set_sense_field(struct scsi_cmd *cmd, bool in_cdb, uint16_t byte,
			  int bit);
static inline void scsi_set_good(struct scsi_cmd *cmd)
{
	cmd->status = SAM_STAT_GOOD;
	cmd->sense_len = 0;
}

/* Statistics: the sum of the LU's shards; a task management function
 * that concerns the LU (LUN RESET, ABORT TASK...). */
void scsi_lu_stats_read(struct scsi_lu *lu, struct scsi_lu_stats *out);
/* The same for one LUN (the commands that came through that target port),
 * and for one I_T nexus (its commands on every LU). */
void scsi_port_stats_read(struct scsi_alua_port *port,
			  struct scsi_lu_stats *out);
void scsi_nexus_stats_read(struct scsi_nexus *nx, struct scsi_lu_stats *out);
/* A task management function addressed to ent's LUN: counted on the LU,
 * the port and the nexus. */
void scsi_lu_count_tmf(struct scsi_lun_ent *ent);
/* Statistics on (the default) or off (`utargetd -o stats=off`): off, the
 * data path takes no clock reading and adds to no counter. Set before the
 * workers start; read relaxed. */
void scsi_stats_enable(bool on);
bool scsi_stats_enabled(void);
/* Calls fn for every live LU, under the LU registry lock (fn must not
 * create or drop LUs). */
void scsi_lu_foreach(void (*fn)(struct scsi_lu *lu, void *arg), void *arg);

/* Logical units */
struct scsi_lu *scsi_lu_create(struct bs_dev *bs, const char *name,
			       const char *plugin, const char *wwn,
			       const struct scsi_lu_attrs *attrs);
void scsi_lu_get(struct scsi_lu *lu);
void scsi_lu_put(struct scsi_lu *lu); /* closes bs on last put */
void scsi_lu_attrs_default(struct scsi_lu_attrs *a, const struct bs_dev *bs);
/* Establish a unit attention for every nexus that sees lu. */
void scsi_lu_establish_ua(struct scsi_lu *lu, unsigned ua);

/* Nexus / LUN maps. A map is built with scsi_lun_map_new + entries filled
 * in (lun, lu with a reference, write_protect), then handed to the nexus,
 * which links the entries to their LUs (for UAs) and sets a POWER ON UA on
 * new entries. Runs on the nexus's worker. */
struct scsi_lun_map *scsi_lun_map_new(unsigned n);
/* Frees a map that was never handed to a nexus (puts the LUs it holds). */
void scsi_lun_map_free(struct scsi_lun_map *map);
void scsi_nexus_set_map(struct scsi_nexus *nx, struct scsi_lun_map *map);
/* Drops the map (unlinks, puts LUs). */
void scsi_nexus_clear(struct scsi_nexus *nx);
struct scsi_lun_ent *scsi_nexus_lookup(struct scsi_nexus *nx, uint64_t lun);

/* Persistent reservations with APTPL=1 are saved under this directory
 * (one file per LU, named by its wwn) and restored by scsi_lu_create.
 * NULL or "" (the default) keeps them in memory only. The daemon calls it
 * once at start, before creating LUs. The string is copied. */
void scsi_set_pr_state_dir(const char *dir);

/* Ending other nexuses' tasks. A LOGICAL UNIT RESET or TARGET RESET
 * (SAM-5 §7.7, §7.9) and PREEMPT AND ABORT (SPC-4 §5.12.11.5) end tasks
 * that other I_T nexuses have on an LU; the task lists belong to the
 * transport, which registers how to do it. initiator_port NULL means every
 * nexus but `except` (compared as a pointer only). With TAS (emulate_tas)
 * those initiators get TASK ABORTED status, else the tasks end silently. */
typedef void (*scsi_abort_fn)(struct scsi_lu *lu, const char *initiator_port,
			      const struct scsi_nexus *except, bool tas);
void scsi_set_abort_hook(scsi_abort_fn fn);
void scsi_lu_abort_tasks(struct scsi_lu *lu, const char *initiator_port,
			 const struct scsi_nexus *except);

/* LUN field encoding (SAM-5 4.7): 8-byte LUN <-> number. */
uint64_t scsi_lun_decode(const uint8_t lun[8]);
void scsi_lun_encode(uint64_t lun, uint8_t out[8]);

/* --- ALUA (alua.c); control thread, the LU's lock taken inside --- */
/* Groups: create (id unique per LU, name unique), find, delete (refused
 * while a port is in it: -EBUSY), set the state (live: every I_T nexus of
 * the LU gets ASYMMETRIC ACCESS STATE CHANGED). */
int scsi_alua_gp_create(struct scsi_lu *lu, const char *name, uint16_t id,
			struct scsi_alua_gp **out);
struct scsi_alua_gp *scsi_alua_gp_find(struct scsi_lu *lu, const char *name);
/* LIO's settings of a new group (state active/optimized, access type 3). */
void scsi_alua_gp_defaults(struct scsi_alua_gp *gp);
int scsi_alua_gp_delete(struct scsi_lu *lu, struct scsi_alua_gp *gp);
/* The group's state now (finishing a delayed transition that is due). */
uint8_t scsi_alua_gp_state(struct scsi_lu *lu, struct scsi_alua_gp *gp);
/* delayed: through Transitioning for the group's trans_delay_msecs (a
 * change by an administrator or STPG); false for a restore at start. */
int scsi_alua_gp_set_state(struct scsi_lu *lu, struct scsi_alua_gp *gp,
			   uint8_t state, uint8_t status, bool delayed);
/* Members of a group (ports not deleted). */
unsigned scsi_alua_gp_members(struct scsi_lu *lu, const struct scsi_alua_gp *gp);
/* Ports: one per TPG LUN on this LU, in default_tg_pt_gp at first. */
struct scsi_alua_port *scsi_alua_port_add(struct scsi_lu *lu, uint16_t rtpi);
/* Which target port (target name, TPGT) rtpi is: set once after add. */
void scsi_alua_port_set_name(struct scsi_alua_port *port, const char *target,
			     uint16_t tpgt);
void scsi_alua_port_del(struct scsi_lu *lu, struct scsi_alua_port *port);
/* LIO's core_alua_set_tg_pt_secondary_state from configfs: the port goes
 * offline (or back), its secondary status becomes 2 (altered implicitly). */
void scsi_alua_port_set_offline(struct scsi_lu *lu, struct scsi_alua_port *port,
				bool offline);
void scsi_alua_port_set_gp(struct scsi_lu *lu, struct scsi_alua_port *port,
			   struct scsi_alua_gp *gp);
/* The port's TPG was enabled or disabled here (see scsi_alua_port.local). */
void scsi_alua_port_set_local(struct scsi_alua_port *port, bool local);
/* States derived from a backstore's cluster lock (bs_dev.alua_managed,
 * user:rbd ;ha=1); any thread. Every group holding one of the n ports
 * rtpi becomes active/optimized, every other group standby (implicit
 * transitions, status 2); a change raises ASYMMETRIC ACCESS STATE CHANGED
 * as any other. n == 0: nobody is known to own the LU, all standby. */
void scsi_alua_ha_apply(struct scsi_lu *lu, const uint16_t *rtpi, unsigned n);
/* The RTPIs of the LU's local ports, ascending, at most max; how many. */
unsigned scsi_alua_local_ports(struct scsi_lu *lu, uint16_t *rtpi,
			       unsigned max);

#endif
