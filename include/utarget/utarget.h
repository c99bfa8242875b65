/* libutarget: the C client of utargetd's control API (docs/control-api.md).
 *
 * What rtslib is to LIO: every change to a running utargetd goes through
 * these calls, which speak newline-delimited JSON-RPC 2.0 on the daemon's
 * UNIX control socket. utargetcli is built on this library.
 *
 * CONTEXT
 *   struct ut_ctx holds one connection and the last error. It is not
 *   thread-safe: use one context per thread. ut_open() only allocates; the
 *   socket is connected on the first call (or by ut_connect()), and a
 *   connection the daemon closed is re-opened by the next call.
 *
 * ERRORS
 *   Every int-returning function returns 0 on success or a negative errno:
 *     -ENOENT  the object does not exist          (JSON-RPC -32001)
 *     -EEXIST  the object already exists          (JSON-RPC -32002)
 *     -EPERM   the daemon refused the change      (JSON-RPC -32000)
 *     -EINVAL  invalid or missing parameters      (JSON-RPC -32602, and
 *              arguments this library rejects before sending)
 *     -ENOSYS  the daemon does not know the method (JSON-RPC -32601)
 *     -EPROTO  malformed request or response      (-32700, -32600, other)
 *     other    transport errors: -ECONNREFUSED, -ENOENT (no socket),
 *              -EACCES, -ECONNRESET (daemon closed the connection), ...
 *   After a failure, ut_last_error(ctx) gives a one-line message for the
 *   administrator (for a refusal, the daemon's own words) and
 *   ut_last_error_info(ctx) the details. A success clears them.
 *   A refused change leaves the daemon's configuration as it was.
 *
 * OWNERSHIP
 *   - json_t *   arguments are borrowed: the caller keeps its reference.
 *   - json_t **  results are new references: the caller json_decref()s them.
 *     On failure *result is set to NULL.
 *   - char **    results are malloc()ed: the caller free()s them.
 *   - const char * returned by ut_last_error() and ut_socket_path() belong
 *     to the context; valid until the next call on it or ut_close().
 *   - Result pointers may be NULL when the caller does not want the result.
 *
 * NAMING OBJECTS (as in the API): storage object = plugin + name; target =
 * wwn; TPG = wwn + tag; LUN = TPG + lun; portal = TPG + ip + port; node ACL
 * = TPG + node_wwn; mapped LUN = node ACL + mapped_lun.
 */
#ifndef UTARGET_UTARGET_H
#define UTARGET_UTARGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, from the top-level VERSION file: in the source
 * tree through the compiler flags (-DUTARGET_VERSION), in an installed
 * header as the number itself (written by `make install`). */
#define UT_LIB_VERSION UTARGET_VERSION

/* JSON-RPC error codes of the control API. */
#define UT_RPC_PARSE_ERROR -32700
#define UT_RPC_INVALID_REQUEST -32600
#define UT_RPC_METHOD_NOT_FOUND -32601
#define UT_RPC_INVALID_PARAMS -32602
#define UT_RPC_REFUSED -32000
#define UT_RPC_NOT_FOUND -32001
#define UT_RPC_EXISTS -32002

struct ut_ctx;

struct ut_error {
	int err;	   /* negative errno, 0 after a success */
	int rpc_code;	   /* JSON-RPC error code, 0 when not from the daemon */
	char message[1024];
};

/* The socket path used when none is given: $UTARGET_SOCKET, else
 * /run/utarget/utargetd.sock as root, else
 * $XDG_RUNTIME_DIR/utarget/utargetd.sock (/tmp/utarget/... without it).
 * Returns 0, or -ENAMETOOLONG when buf is too small. */
int ut_default_socket(char *buf, size_t len);

/* Allocates a context for the daemon at socket_path (NULL: the default).
 * Does not connect. Returns NULL only when out of memory. */
struct ut_ctx *ut_open(const char *socket_path);
/* Connects now (otherwise the first call does). Checks with SO_PEERCRED
 * that the daemon runs as root or as the caller's own user. */
int ut_connect(struct ut_ctx *ctx);
/* Closes the connection and frees the context. NULL is allowed. */
void ut_close(struct ut_ctx *ctx);

const char *ut_socket_path(const struct ut_ctx *ctx);
const char *ut_last_error(const struct ut_ctx *ctx);
const struct ut_error *ut_last_error_info(const struct ut_ctx *ctx);

/* Generic call: sends {"jsonrpc":"2.0","id":N,"method":method,"params":params}
 * (params NULL: none) and waits for the answer; *result gets "result". */
int ut_call(struct ut_ctx *ctx, const char *method, json_t *params,
	    json_t **result);
/* The same with JSON text: params_json may be NULL; *result_json is the
 * compact JSON text of the result (malloc()ed). */
int ut_call_str(struct ut_ctx *ctx, const char *method,
		const char *params_json, char **result_json);

/* ---- whole configuration ---------------------------------------------- */
int ut_version(struct ut_ctx *ctx, char **version);
/* The live configuration in saveconfig.json's schema. */
int ut_get_config(struct ut_ctx *ctx, json_t **config);
/* file NULL: the daemon's own config file. *result: {file, backup_dir,
 * backups_kept, changes}. */
int ut_save_config(struct ut_ctx *ctx, const char *file, json_t **result);
/* *errors: array of strings (recoverable errors, each ending ", skipped"). */
int ut_restore_config(struct ut_ctx *ctx, const char *file,
		      bool clear_existing, bool abort_on_error,
		      json_t **errors);
/* Selective restore: only target (a wwn) and / or storage_object ("name",
 * "plugin/name") from the file, the rest left as it runs; either may be
 * NULL (both NULL: the whole file, as ut_restore_config). *result:
 * {"errors": [...], "changes": {"added": [path...], "removed": [...],
 * "changed": [...]}}. ut_save_config's result carries "changes" too:
 * what the save changed in the file. */
int ut_restore_config_part(struct ut_ctx *ctx, const char *file,
			   bool clear_existing, bool abort_on_error,
			   const char *target, const char *storage_object,
			   json_t **result);
/* Empties the configuration (the API insists on confirm=true). */
int ut_clear_config(struct ut_ctx *ctx);
/* *sessions: array of session objects (see docs/control-api.md). */
int ut_sessions(struct ut_ctx *ctx, json_t **sessions);
/* kind: "backstore", "tpg", "acl" or "tpg_parameter"; *table: array of
 * {name, default, min, max, ro, honoured, description}. */
int ut_describe(struct ut_ctx *ctx, const char *kind, json_t **table);

/* ---- storage objects (/backstores) -------------------------------------- */
/* Tri-state booleans: UT_DEFAULT leaves the choice to the daemon. */
#define UT_DEFAULT (-1)

struct ut_so_spec {
	const char *plugin;	/* fileio, block, ramdisk, pscsi */
	const char *name;
	const char *dev;	/* fileio, block, pscsi */
	const char *wwn;	/* unit serial; NULL: a UUID */
	uint64_t size;		/* bytes; 0: none given */
	int write_back;		/* fileio: 0, 1 or UT_DEFAULT (true) */
	int sparse;		/* fileio: 0, 1 or UT_DEFAULT (true) */
	int readonly;		/* block */
	int nullio;		/* ramdisk */
	/* user:rbd: POOL/IMAGE[;conf=PATH][;id=USER][;osd_op_timeout=N]
	 * (targetcli's cfgstring: without LIO's "rbd/" handler prefix) */
	const char *cfgstring;
	int create_image;	/* user:rbd: 0, 1 or UT_DEFAULT (false) */
};

/* *so: the object as get_config lists it. */
int ut_backstore_create(struct ut_ctx *ctx, const struct ut_so_spec *spec,
			json_t **so);
int ut_backstore_delete(struct ut_ctx *ctx, const char *plugin,
			const char *name);
/* Online resize: size in bytes, 0 = the medium's own size (a grown block
 * device); a smaller size is refused unless force. Every initiator gets
 * CAPACITY DATA HAS CHANGED. *old_size / *new_size (either may be NULL):
 * the size before and after, in bytes. */
int ut_backstore_resize(struct ut_ctx *ctx, const char *plugin,
			const char *name, uint64_t size, bool force,
			uint64_t *old_size, uint64_t *new_size);
int ut_backstore_get_attributes(struct ut_ctx *ctx, const char *plugin,
				const char *name, json_t **attrs);
/* attrs: {NAME: VALUE}; all applied or none. */
int ut_backstore_set_attributes(struct ut_ctx *ctx, const char *plugin,
				const char *name, json_t *attrs);
int ut_backstore_set_attribute(struct ut_ctx *ctx, const char *plugin,
			       const char *name, const char *attr,
			       long long value);

/* ---- targets and TPGs (/iscsi) ------------------------------------------ */
/* wwn NULL: the daemon generates one; *wwn_out (may be NULL) gets it. */
int ut_target_create(struct ut_ctx *ctx, const char *wwn, char **wwn_out);
int ut_target_delete(struct ut_ctx *ctx, const char *wwn);

/* tag 0: the lowest free tag; *tag_out (may be NULL) gets the tag. */
int ut_tpg_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  unsigned *tag_out);
int ut_tpg_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag);
int ut_tpg_enable(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  bool enable);
int ut_tpg_get_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t **attrs);
int ut_tpg_set_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t *attrs);
int ut_tpg_set_attribute(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *attr, long long value);
int ut_tpg_get_parameters(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t **params);
/* params: {KEY: "string"}. */
int ut_tpg_set_parameters(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  json_t *params);
int ut_tpg_set_parameter(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *key, const char *value);

/* CHAP credentials; a NULL member is left unchanged, "" clears it. */
struct ut_auth {
	const char *userid, *password, *mutual_userid, *mutual_password;
};

int ut_tpg_set_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    const struct ut_auth *auth);
/* *auth: {userid, password, mutual_userid, mutual_password}. */
int ut_tpg_get_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    json_t **auth);
/* Initiator address ACLs (issue 21): nets is n CIDR strings ("10.1.0.0/16",
 * "::1/128", "10.1.2.3"); n = 0 lets every address in. A bad entry fails
 * with -32602 and changes nothing. get: *nets is {"allowed_networks": [..]}. */
int ut_tpg_set_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, const char *const *nets, size_t n);
int ut_tpg_get_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, json_t **nets);
int ut_acl_set_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, const char *node_wwn,
				const char *const *nets, size_t n);
int ut_acl_get_allowed_networks(struct ut_ctx *ctx, const char *wwn,
				unsigned tag, const char *node_wwn,
				json_t **nets);
/* enable: 0, 1 or UT_DEFAULT (unchanged). */
int ut_discovery_auth_set(struct ut_ctx *ctx, int enable,
			  const struct ut_auth *auth);
/* *auth: {enable, userid, password, mutual_userid, mutual_password}. */
int ut_discovery_auth_get(struct ut_ctx *ctx, json_t **auth);

/* ---- LUNs, portals ------------------------------------------------------ */
/* storage_object: "/backstores/PLUGIN/NAME"; lun < 0: the lowest free;
 * add_mapped_luns 0, 1 or UT_DEFAULT (true). *result: {lun, mapped:
 * [{node_wwn, mapped_lun}]}. */
int ut_lun_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  const char *storage_object, int lun, int add_mapped_luns,
		  json_t **result);
int ut_lun_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  unsigned lun);

/* ip NULL: 0.0.0.0; port 0: 3260. *result: {ip_address, port}. */
int ut_portal_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		     const char *ip, unsigned port, json_t **result);
int ut_portal_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		     const char *ip, unsigned port);

/* ---- node ACLs and mapped LUNs ------------------------------------------ */
/* *result: {node_wwn, mapped: [N, ...]}. */
int ut_acl_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  const char *node_wwn, int add_mapped_luns, json_t **result);
int ut_acl_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		  const char *node_wwn);
int ut_acl_get_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  const char *node_wwn, json_t **attrs);
int ut_acl_set_attributes(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			  const char *node_wwn, json_t *attrs);
int ut_acl_set_attribute(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *node_wwn, const char *attr,
			 long long value);
int ut_acl_set_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    const char *node_wwn, const struct ut_auth *auth);
int ut_acl_get_auth(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		    const char *node_wwn, json_t **auth);
/* acl_tag NULL: untag. */
int ut_acl_set_tag(struct ut_ctx *ctx, const char *wwn, unsigned tag,
		   const char *node_wwn, const char *acl_tag);

int ut_mapped_lun_create(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *node_wwn, unsigned mapped_lun,
			 unsigned tpg_lun, bool write_protect);
int ut_mapped_lun_delete(struct ut_ctx *ctx, const char *wwn, unsigned tag,
			 const char *node_wwn, unsigned mapped_lun);
int ut_mapped_lun_set_write_protect(struct ut_ctx *ctx, const char *wwn,
				    unsigned tag, const char *node_wwn,
				    unsigned mapped_lun, bool write_protect);

#ifdef __cplusplus
}
#endif

#endif
