/* utargetcli's command table, split by what the commands act on: each
 * cmd_*.c file owns its commands and its rows (cli_cmds_*), commands.c
 * joins the tables, finds a node's commands, prints help and runs a line.
 * Shared argument helpers live in commands.c with a cmd_ prefix. */
#ifndef UT_CLI_COMMANDS_H
#define UT_CLI_COMMANDS_H

#include "cli/cli.h"

typedef int (*cmd_fn)(struct shell *sh, struct node *n, struct cli_args *a);

struct command {
	const char *name;
	unsigned types;
	const char *plugin;	/* N_PLUGIN create: which plugin */
	struct cli_sig sig;
	cmd_fn fn;
	const char *desc;
};

#define SIG(n, ...) { .params = { __VA_ARGS__ }, .nreq = n }

/* each ends with a row whose name is NULL */
extern const struct command cli_cmds_nav[], cli_cmds_config[],
	cli_cmds_stats[], cli_cmds_storage[], cli_cmds_target[];

/* a boolean argument; dflt when v is NULL */
int cmd_bool_arg(struct shell *sh, const char *v, int dflt, int *out);
/* "3", "lun3" (prefix) -> 3 */
int cmd_index_arg(struct shell *sh, const char *v, const char *prefix,
		  const char *what, long max, long *out);
void cmd_abspath(const char *in, char *out, size_t len);
void cmd_new_node(struct shell *sh, const char *path);
int cmd_do_cd(struct shell *sh, struct node *n, const char *path);
int c_saveconfig(struct shell *sh, struct node *n, struct cli_args *a);

#endif
