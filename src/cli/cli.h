/* utargetcli internals: the node tree built from the daemon's get_config,
 * the shell state, and the pieces each file provides. */
#ifndef UT_CLI_H
#define UT_CLI_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli/parse.h"
#include "utarget/utarget.h"

/* from VERSION, through the Makefile */
#define UTARGETCLI_VERSION UTARGET_VERSION

enum node_type {
	N_ROOT,
	N_BACKSTORES,
	N_PLUGIN,	/* /backstores/fileio ... */
	N_SO,
	N_ALUA,
	N_ALUA_GP,
	N_ISCSI,
	N_TARGET,
	N_TPG,
	N_ACLS,
	N_ACL,
	N_MLUN,
	N_LUNS,
	N_LUN,
	N_PORTALS,
	N_PORTAL,
	N_TYPES
};

#define T(x) (1u << (x))
#define T_ALL ((1u << N_TYPES) - 1)

struct node {
	enum node_type type;
	char *name;
	char *path;
	struct node *parent;
	struct node **kids;	/* sorted with cli_name_cmp */
	size_t nkids;
	json_t *obj;		/* borrowed from the config snapshot */
	/* identity in the API */
	const char *plugin;	/* N_PLUGIN, N_SO */
	const char *so_name;	/* N_SO */
	const char *wwn;	/* N_TARGET and below */
	unsigned tag;		/* N_TPG and below */
	const char *node_wwn;	/* N_ACL, N_MLUN */
	long index;		/* LUN, mapped LUN number; portal port */
	const char *ip;		/* N_PORTAL */
	json_t *tpg;		/* N_TPG and below: the TPG object */
};

struct shell {
	struct ut_ctx *ut;
	json_t *config;		/* get_config snapshot the tree borrows from */
	struct node *root;
	char cwd[PATH_MAX];
	json_t *prefs;		/* globals, bookmarks, path history */
	char home[PATH_MAX];	/* ~/.utargetcli */
	bool interactive;
	bool tty_out;
	bool exit;
	bool failed;		/* a command of this run failed */
	bool changed;		/* the configuration changed: refresh */
	bool modified;		/* a command of this run changed it (auto-save) */
	char pending_cd[PATH_MAX]; /* auto_cd_after_create target */
	json_t *describe;	/* kind -> table, cached */
};

/* main.c / output */
bool cli_color(struct shell *sh);
void cli_info(struct shell *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_warn(struct shell *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints an error and returns -1 (commands return it). */
int cli_error(struct shell *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reports the last libutarget error; returns -1. */
int cli_ut_error(struct shell *sh);

/* prefs.c */
void prefs_load(struct shell *sh);
void prefs_save(struct shell *sh);
json_t *pref(struct shell *sh, const char *name);
bool pref_bool(struct shell *sh, const char *name);
long long pref_num(struct shell *sh, const char *name);
struct gpref {
	const char *name;
	const char *type;	/* bool number string loglevel color colordefault */
	const char *desc;
};
extern const struct gpref cli_globals[];
const struct gpref *gpref_find(const char *name);
/* Prints value of a global as configshell's ui_type reverse does. */
void pref_text(struct shell *sh, const struct gpref *g, char *buf,
	       size_t len);
/* Parses and stores; returns -1 with err set. */
int pref_set(struct shell *sh, const struct gpref *g, const char *value,
	     char *err, size_t errlen);

/* tree.c */
int tree_refresh(struct shell *sh);
void tree_free(struct node *n);
/* An older name of a child of n (iblock, rd_mcp, rd_dr, tpgtN): today's
 * name, else NULL. buf holds a composed name. */
const char *tree_alias(const struct node *n, const char *name, size_t len,
		       char *buf, size_t blen);
/* {older name, today's name} of the backstore plugins */
#define TREE_SO_ALIASES 3
extern const char *const tree_so_aliases[TREE_SO_ALIASES][2];
/* Resolves path relative to from (configshell's get_node); NULL with err. */
struct node *tree_lookup(struct shell *sh, struct node *from,
			 const char *path, char *err, size_t errlen);
struct node *tree_cwd(struct shell *sh);
/* Summary text and health (1 healthy, 0 unhealthy, -1 neither). */
void node_summary(struct shell *sh, struct node *n, char *buf, size_t len,
		  int *health);
const char *json_str(json_t *o, const char *key);
long long json_num(json_t *o, const char *key, long long dflt);
bool json_flag(json_t *o, const char *key);

/* render.c */
int term_width(struct shell *sh);
void render_tree(struct shell *sh, struct node *root, int depth);
void render_prompt(struct shell *sh, char *buf, size_t len);

/* commands.c */
/* Runs one command line; returns 0 or -1. */
int cli_run_line(struct shell *sh, const char *line);
/* Runs the exit actions (auto_save_on_exit). */
void cli_exit_actions(struct shell *sh);
struct command;
const struct command *cmd_find(struct node *n, const char *name);
/* Completion helpers. */
size_t cmd_names(struct node *n, const char **out, size_t max);
const struct cli_sig *cmd_sig(const struct command *c);
const char *cmd_name(const struct command *c);
/* Config groups of a node ("global" last); returns the count. */
size_t node_groups(struct node *n, const char **out, size_t max);
/* groups.c: the get / set commands */
int cli_cmd_get(struct shell *sh, struct node *n, struct cli_args *a);
int cli_cmd_set(struct shell *sh, struct node *n, struct cli_args *a);
/* commands.c: the daemon's describe table for a kind (borrowed; fetched
 * once per shell and cached; NULL when the daemon has none) */
json_t *cli_describe(struct shell *sh, const char *kind);
/* Parameter names of group on node; *writable_only for set. */
size_t group_params(struct shell *sh, struct node *n, const char *group,
		    bool writable_only, char **out, size_t max);

/* complete.c */
void complete_init(struct shell *sh);

#endif
