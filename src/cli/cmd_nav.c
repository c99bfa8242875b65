/* utargetcli commands: navigation (cd, ls, pwd, exit, refresh, status,
 * bookmarks). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

/* ---- navigation --------------------------------------------------------- */

static void history_push(struct shell *sh, const char *path)
{
	json_t *h = pref(sh, "path_history");
	size_t idx = (size_t)pref_num(sh, "path_history_index");

	if (!json_is_array(h) || !json_array_size(h)) {
		h = json_pack("[s]", sh->cwd);
		json_object_set_new(sh->prefs, "path_history", h);
		idx = 0;
	}
	if (idx >= json_array_size(h))
		idx = json_array_size(h) - 1;
	if (!strcmp(json_string_value(json_array_get(h, idx)) ?: "", path))
		return;
	while (json_array_size(h) > idx + 1)
		json_array_remove(h, json_array_size(h) - 1);
	json_array_append_new(h, json_string(path));
	/* Bounded: the history lives in prefs.json. */
	while (json_array_size(h) > 100)
		json_array_remove(h, 0);
	json_object_set_new(sh->prefs, "path_history_index",
			    json_integer((json_int_t)json_array_size(h) - 1));
}

int cmd_do_cd(struct shell *sh, struct node *n, const char *path)
{
	char err[512];
	struct node *t;
	json_t *h = pref(sh, "path_history");
	long idx = (long)pref_num(sh, "path_history_index");

	if (path && (!strcmp(path, "<") || !strcmp(path, ">"))) {
		bool back = path[0] == '<';
		long size = json_is_array(h) ? (long)json_array_size(h) : 0;

		if (back ? idx <= 0 || size == 0 : idx >= size - 1) {
			cli_info(sh, back ? "Reached begining of path history."
					  : "Reached the end of path history.");
			return 0;
		}
		for (;;) {
			idx += back ? -1 : 1;
			if (idx < 0 || idx >= size) {
				idx = back ? 0 : size - 1;
				t = back ? sh->root : n;
				break;
			}
			t = tree_lookup(sh, sh->root,
					json_string_value(json_array_get(h,
							  (size_t)idx)),
					err, sizeof(err));
			if (t)
				break;
		}
		json_object_set_new(sh->prefs, "path_history_index",
				    json_integer(idx));
		cli_info(sh, "Taking you back to %s.", t->path);
		snprintf(sh->cwd, sizeof(sh->cwd), "%s", t->path);
		return 0;
	}
	if (!path)
		path = "/";
	t = tree_lookup(sh, n, path, err, sizeof(err));
	if (!t)
		return cli_error(sh, "%s", err);
	history_push(sh, t->path);
	snprintf(sh->cwd, sizeof(sh->cwd), "%s", t->path);
	return 0;
}

static int c_cd(struct shell *sh, struct node *n, struct cli_args *a)
{
	return cmd_do_cd(sh, n, a->v[0]);
}

static int c_ls(struct shell *sh, struct node *n, struct cli_args *a)
{
	char err[512];
	struct node *t = tree_lookup(sh, n, a->v[0], err, sizeof(err));
	long long depth = pref_num(sh, "tree_max_depth");

	if (!t)
		return cli_error(sh, "%s", err);
	if (a->v[1]) {
		char *end;

		depth = strtoll(a->v[1], &end, 10);
		if (!*a->v[1] || *end)
			return cli_error(sh, "The tree depth must be a number.");
	}
	render_tree(sh, t, depth <= 0 ? -1 : (int)depth);
	return 0;
}

static int c_pwd(struct shell *sh, struct node *n, struct cli_args *a)
{
	printf("%s\n", n->path);
	return 0;
}

static int c_exit(struct shell *sh, struct node *n, struct cli_args *a)
{
	sh->exit = true;
	return 0;
}

static int c_refresh(struct shell *sh, struct node *n, struct cli_args *a)
{
	sh->changed = true;
	return 0;
}

static int c_status(struct shell *sh, struct node *n, struct cli_args *a)
{
	char d[1024];
	int h;

	node_summary(sh, n, d, sizeof(d), &h);
	cli_info(sh, "Status for %s: %s", n->path, d);
	return 0;
}

static int c_bookmarks(struct shell *sh, struct node *n, struct cli_args *a)
{
	const char *act = a->v[0], *bm = a->v[1];
	json_t *b = json_object_get(sh->prefs, "bookmarks"), *v;
	const char *k;

	if (!json_is_object(b)) {
		b = json_object();
		json_object_set_new(sh->prefs, "bookmarks", b);
	}
	if (!strcmp(act, "add") && bm) {
		if (json_object_get(b, bm))
			return cli_error(sh, "Bookmark %s already exists.", bm);
		json_object_set_new(b, bm, json_string(n->path));
		prefs_save(sh);
		cli_info(sh, "Bookmarked %s as %s.", n->path, bm);
	} else if (!strcmp(act, "del") && bm) {
		if (!json_object_get(b, bm))
			return cli_error(sh, "No such bookmark %s.", bm);
		json_object_del(b, bm);
		prefs_save(sh);
		cli_info(sh, "Deleted bookmark %s.", bm);
	} else if (!strcmp(act, "go") && bm) {
		if (!json_is_string(json_object_get(b, bm)))
			return cli_error(sh, "No such bookmark %s.", bm);
		return cmd_do_cd(sh, n, json_string_value(json_object_get(b, bm)));
	} else if (!strcmp(act, "show")) {
		printf("BOOKMARKS\n=========\n\n");
		if (!json_object_size(b))
			printf("No bookmarks yet.\n");
		json_object_foreach(b, k, v) {
			size_t l = strlen(k);

			printf("%s\n", k);
			while (l--)
				putchar('-');
			printf("\n%s\n\n", json_string_value(v) ?: "");
		}
	} else {
		return cli_error(sh, "Syntax error, see 'help bookmarks'.");
	}
	return 0;
}

const struct command cli_cmds_nav[] = {
	{ "bookmarks", T_ALL, NULL, SIG(1, "action", "bookmark"), c_bookmarks,
	  "Manage your bookmarks: add NAME (the current path), del NAME,\n"
	  "go NAME, show. Use a bookmark as a path with @NAME (cd @NAME);\n"
	  "@last is the last object created." },
	{ "cd", T_ALL, NULL, SIG(0, "path"), c_cd,
	  "Change the current path. Paths work like unix paths: '/' root,\n"
	  "'.' this node, '..' the parent, @NAME a bookmark. 'cd <' and\n"
	  "'cd >' go back and forth in the path history.\n"
	  "Older targetcli names work too: /backstores/iblock (= block),\n"
	  "rd_mcp and rd_dr (= ramdisk), tpgtN (= tpgN)." },
	{ "exit", T_ALL, NULL, SIG(0, NULL), c_exit,
	  "Exit the shell (saving the configuration first when the global\n"
	  "auto_save_on_exit is true; one-shot commands and batch input save\n"
	  "only when they changed the configuration)." },
	{ "ls", T_ALL, NULL, SIG(0, "path", "depth"), c_ls,
	  "Display the tree of objects under path (default: here), down\n"
	  "to depth levels (0: all, the default)." },
	{ "pwd", T_ALL, NULL, SIG(0, NULL), c_pwd, "Display the current path." },
	{ "refresh", T_ALL, NULL, SIG(0, NULL), c_refresh,
	  "Re-read the configuration from utargetd." },
	{ "status", T_ALL, NULL, SIG(0, NULL), c_status,
	  "Display the status of this node." },
	{ NULL, 0, NULL, SIG(0, NULL), NULL, NULL }
};
