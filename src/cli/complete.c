/* Tab completion for the interactive shell (configshell's rules): paths
 * and commands first, then per command its parameters: groups and
 * group parameters for get/set, object names for delete, storage objects
 * for LUNs, true/false for booleans, and keyword= names. */
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include "cli/cli.h"

static struct shell *csh;

struct list {
	char **v;
	size_t n, cap;
};

static struct list cands;
static size_t cand_next;

static void add(const char *text, const char *s, const char *suffix)
{
	size_t l = strlen(text);
	char *c;

	if (strncmp(s, text, l))
		return;
	if (cands.n == cands.cap) {
		char **nv;

		cands.cap = cands.cap ? cands.cap * 2 : 32;
		nv = realloc(cands.v, cands.cap * sizeof(*nv));
		if (!nv)
			return;
		cands.v = nv;
	}
	if (asprintf(&c, "%s%s", s, suffix ? suffix : "") < 0)
		return;
	cands.v[cands.n++] = c;
}

static void clear(void)
{
	for (size_t i = cand_next; i < cands.n; i++)
		free(cands.v[i]);
	cands.n = 0;
	cand_next = 0;
}

static char *generator(const char *text, int state)
{
	(void)text;
	if (cand_next < cands.n)
		return cands.v[cand_next++]; /* readline frees it */
	return NULL;
}

/* The LIO wiki's older names (tree_alias), offered only when the user
 * started typing one and no current name matches: `cd /backstores/ib<TAB>`
 * completes to iblock/, `tpgt<TAB>` to tpgt1/. */
static void complete_alias(struct node *t, const char *base, const char *text)
{
	char full[PATH_MAX + 256], name[32];

	if (t->type == N_BACKSTORES) {
		for (size_t i = 0; i < TREE_SO_ALIASES; i++) {
			snprintf(full, sizeof(full), "%s%s", base,
				 tree_so_aliases[i][0]);
			add(text, full, "/");
		}
	} else if (t->type == N_TARGET) {
		for (size_t i = 0; i < t->nkids; i++) {
			snprintf(name, sizeof(name), "tpgt%u", t->kids[i]->tag);
			snprintf(full, sizeof(full), "%s%s", base, name);
			add(text, full, "/");
		}
	}
}

static void complete_path(struct node *cwd, const char *text)
{
	char base[PATH_MAX], err[256], full[PATH_MAX + 256];
	const char *slash = strrchr(text, '/');
	struct node *t;
	json_t *bm, *v;
	const char *k;

	if (slash)
		snprintf(base, sizeof(base), "%.*s", (int)(slash - text + 1),
			 text);
	else
		base[0] = '\0';
	t = tree_lookup(csh, cwd, base[0] ? base : ".", err, sizeof(err));
	if (t) {
		size_t before = cands.n;

		for (size_t i = 0; i < t->nkids; i++) {
			snprintf(full, sizeof(full), "%s%s", base,
				 t->kids[i]->name);
			add(text, full, t->kids[i]->nkids ? "/" : " ");
		}
		if (cands.n == before && text[strlen(base)])
			complete_alias(t, base, text);
	}
	bm = json_object_get(csh->prefs, "bookmarks");
	json_object_foreach(bm, k, v) {
		snprintf(full, sizeof(full), "@%s", k);
		add(text, full, " ");
	}
}

static bool is_bool_param(const char *p)
{
	static const char *const b[] = { "write_back", "sparse", "readonly",
					 "nullio", "add_mapped_luns",
					 "write_protect", "clear_existing",
					 "confirm", NULL };

	for (int i = 0; b[i]; i++)
		if (!strcmp(b[i], p))
			return true;
	return false;
}

static void complete_so_paths(struct shell *sh, const char *text)
{
	struct node *bs = sh->root && sh->root->nkids ? sh->root->kids[0] :
							NULL;

	if (!bs || bs->type != N_BACKSTORES)
		return;
	for (size_t i = 0; i < bs->nkids; i++)
		for (size_t j = 0; j < bs->kids[i]->nkids; j++)
			add(text, bs->kids[i]->kids[j]->path, " ");
}

static void complete_param(struct node *t, const char *cmd,
			   struct cli_line *l, const char *text)
{
	const struct command *c = cmd_find(t, cmd);
	const struct cli_sig *sig;
	const char *eq, *pname = NULL;
	char buf[512];
	size_t np = l->npp;

	if (!c)
		return;
	sig = cmd_sig(c);
	if (cli_is_kparam(text, &eq)) {
		/* key=value: offer values. */
		char key[128], *vals[256];
		size_t n;

		snprintf(key, sizeof(key), "%.*s", (int)(eq - text), text);
		if (is_bool_param(key) ||
		    (!strcmp(cmd, "set") && l->npp &&
		     !strcmp(l->pparams[0], "global") &&
		     gpref_find(key) && !strcmp(gpref_find(key)->type, "bool"))) {
			snprintf(buf, sizeof(buf), "%s=true", key);
			add(text, buf, " ");
			snprintf(buf, sizeof(buf), "%s=false", key);
			add(text, buf, " ");
		}
		if (!strcmp(cmd, "set") && l->npp &&
		    !strcmp(l->pparams[0], "discovery_auth") &&
		    !strcmp(key, "enable")) {
			add(text, "enable=true", " ");
			add(text, "enable=false", " ");
		}
		(void)vals;
		(void)n;
		return;
	}
	if (np < CLI_MAX_PARAMS && sig->params[np])
		pname = sig->params[np];
	if (!strcmp(cmd, "get") || !strcmp(cmd, "set")) {
		if (np == 0) {
			const char *gs[8];
			size_t k = node_groups(t, gs, 8);

			for (size_t i = 0; i < k; i++)
				add(text, gs[i], " ");
		} else {
			char *ps[256];
			size_t k = group_params(csh, t, l->pparams[0],
						cmd[0] == 's', ps, 256);

			for (size_t i = 0; i < k; i++) {
				bool given = false;

				for (size_t j = 0; j < l->nkp; j++)
					if (!strcmp(l->kparams[j].key, ps[i]))
						given = true;
				if (!given)
					add(text, ps[i],
					    cmd[0] == 's' ? "=" : " ");
				free(ps[i]);
			}
		}
		return;
	}
	if (pname && (!strcmp(pname, "path"))) {
		complete_path(t, text);
		if (!strcmp(cmd, "cd")) {
			add(text, "<", " ");
			add(text, ">", " ");
		}
	} else if (pname && !strcmp(pname, "topic")) {
		const char *names[64];
		size_t k = cmd_names(t, names, 64);

		for (size_t i = 0; i < k; i++)
			add(text, names[i], " ");
	} else if (pname && !strcmp(pname, "action")) {
		static const char *const bm[] = { "add", "del", "go", "show" };
		static const char *const ss[] = { "list", "detail" };

		if (!strcmp(cmd, "bookmarks"))
			for (int i = 0; i < 4; i++)
				add(text, bm[i], " ");
		else
			for (int i = 0; i < 2; i++)
				add(text, ss[i], " ");
	} else if (pname && !strcmp(cmd, "delete") && np == 0) {
		for (size_t i = 0; i < t->nkids; i++)
			add(text, t->kids[i]->name, " ");
	} else if (pname && (!strcmp(pname, "storage_object") ||
			     !strcmp(pname, "tpg_lun_or_backstore"))) {
		complete_so_paths(csh, text);
	} else if (pname && is_bool_param(pname)) {
		add(text, "true", " ");
		add(text, "false", " ");
	}
	/* Keyword forms of the parameters not given yet. */
	for (size_t i = np; i < CLI_MAX_PARAMS && sig->params[i]; i++) {
		bool given = false;

		for (size_t j = 0; j < l->nkp; j++)
			if (!strcmp(l->kparams[j].key, sig->params[i]))
				given = true;
		if (!given) {
			snprintf(buf, sizeof(buf), "%s=", sig->params[i]);
			add(text, buf, NULL);
		}
	}
}

static char **completion(const char *text, int start, int end)
{
	char *prefix = strndup(rl_line_buffer, (size_t)start);
	struct cli_line l;
	char err[256];
	struct node *cwd, *t;
	bool has_path;
	int ntok;
	struct cli_token *toks;

	rl_attempted_completion_over = 1;
	rl_completion_suppress_append = 1;
	clear();
	if (!prefix)
		return NULL;
	if (!csh->root || tree_refresh(csh)) {
		free(prefix);
		return NULL;
	}
	cwd = tree_cwd(csh);
	ntok = cli_tokenize(prefix, &toks);
	if (ntok < 0) {
		free(prefix);
		return NULL;
	}
	has_path = ntok > 0 && cli_is_path_token(toks[0].text);
	cli_tokens_free(toks, ntok);
	if (ntok == 0) {
		const char *names[64];
		size_t k = cmd_names(cwd, names, 64);

		if (!cli_is_path_token(text) || !*text)
			for (size_t i = 0; i < k; i++)
				add(text, names[i], " ");
		complete_path(cwd, text);
		if (!*text)
			add(text, "/", NULL);
	} else if (has_path && ntok == 1) {
		const char *names[64];
		size_t k;
		char p[PATH_MAX];

		t = NULL;
		if (!cli_parse(prefix, &l, err, sizeof(err))) {
			snprintf(p, sizeof(p), "%s", l.path);
			if (p[0] && p[strlen(p) - 1] == '*')
				p[strlen(p) - 1] = '\0';
			t = tree_lookup(csh, cwd, p[0] ? p : ".", err,
					sizeof(err));
			if (t && l.path[strlen(l.path) - 1] == '*' && t->nkids)
				t = t->kids[0];
			cli_line_free(&l);
		}
		if (t) {
			k = cmd_names(t, names, 64);
			for (size_t i = 0; i < k; i++)
				add(text, names[i], " ");
		}
	} else if (!cli_parse(prefix, &l, err, sizeof(err))) {
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s", l.path ? l.path : ".");
		if (p[0] && p[strlen(p) - 1] == '*')
			p[strlen(p) - 1] = '\0';
		t = tree_lookup(csh, cwd, p[0] ? p : ".", err, sizeof(err));
		if (t && l.path && l.path[strlen(l.path) - 1] == '*' &&
		    t->nkids)
			t = t->kids[0];
		if (t && l.command)
			complete_param(t, l.command, &l, text);
		cli_line_free(&l);
	}
	free(prefix);
	/* One match that ends a path with children keeps its '/'. */
	if (!cands.n)
		return NULL;
	(void)end;
	return rl_completion_matches(text, generator);
}

void complete_init(struct shell *sh)
{
	csh = sh;
	rl_readline_name = "utargetcli";
	rl_basic_word_break_characters = " \t\n";
	rl_completer_word_break_characters = (char *)" \t\n";
	rl_attempted_completion_function = completion;
}
