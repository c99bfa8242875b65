/* Drawing targetcli's tree (configshell's _render_tree): "o- name ...
 * [status]" with dots to the terminal width, children in numeric-aware
 * order, colour only on a tty with color_mode. And the prompt. */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_UNDER "\033[4m"
#define C_BLUE "\033[34m"
#define C_MAGENTA "\033[35m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"

int term_width(struct shell *sh)
{
	struct winsize ws;

	if (sh->tty_out && !ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) &&
	    ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static int level_of(const char *path)
{
	int l = 0;

	if (!strcmp(path, "/"))
		return 0;
	for (; *path; path++)
		l += *path == '/';
	return l;
}

static void line(struct shell *sh, struct node *n, const char *margin,
		 bool root_call)
{
	char desc[1024];
	int health, width = term_width(sh), pad, lvl = level_of(n->path);
	bool color = cli_color(sh);
	const char *col = lvl % 3 == 0 ? "" : (lvl % 3 == 1 ? C_BLUE :
						 C_MAGENTA);
	size_t mlen = strlen(margin) + 3;

	node_summary(sh, n, desc, sizeof(desc), &health);
	if (!desc[0])
		snprintf(desc, sizeof(desc), "%s",
			 health == 1 ? "OK" : (health == 0 ? "ERROR" : "..."));
	pad = width - 1 - ((int)strlen(desc) + 3) - (int)mlen -
	      (int)strlen(n->name);
	fputs(margin, stdout);
	fputs(pref_bool(sh, "tree_round_nodes") ? "o- " : "+- ", stdout);
	if (color)
		printf("%s%s%s%s%s", col, C_BOLD, root_call ? C_UNDER : "",
		       n->name, C_RESET);
	else
		fputs(n->name, stdout);
	if (pref_bool(sh, "tree_status_mode")) {
		putchar(' ');
		if (color && *col)
			fputs(col, stdout);
		for (int i = 0; i < pad; i++)
			putchar('.');
		if (color)
			printf("%s%s [%s", C_RESET, C_BOLD, C_RESET);
		else
			fputs(" [", stdout);
		if (color && health == 1)
			printf("%s%s%s", C_GREEN, desc, C_RESET);
		else if (color && health == 0)
			printf("%s%s%s%s", C_RED, C_BOLD, desc, C_RESET);
		else
			fputs(desc, stdout);
		if (color)
			printf("%s]%s", C_BOLD, C_RESET);
		else
			putchar(']');
	}
	putchar('\n');
}

/* pipes: one flag per ancestor level below the drawn root: draw '|'. */
static void render(struct shell *sh, struct node *n, bool *pipes, int npipes,
		   int depth, bool root_call)
{
	char margin[512] = "";
	size_t o = 0;

	for (int i = 0; i < npipes - 1 && o + 3 < sizeof(margin); i++) {
		margin[o++] = pipes[i] ? '|' : ' ';
		margin[o++] = ' ';
	}
	margin[o] = '\0';
	line(sh, n, margin, root_call);
	if (depth == 0)
		return;
	for (size_t i = 0; i < n->nkids && npipes < 255; i++) {
		pipes[npipes] = i + 1 < n->nkids;
		render(sh, n->kids[i], pipes, npipes + 1,
		       depth < 0 ? -1 : depth - 1, false);
	}
}

void render_tree(struct shell *sh, struct node *root, int depth)
{
	bool pipes[256] = { false };

	if (!pref_bool(sh, "tree_show_root")) {
		for (size_t i = 0; i < root->nkids; i++)
			render(sh, root->kids[i], pipes, 1,
			       depth < 0 ? -1 : depth, false);
		return;
	}
	render(sh, root, pipes, 1, depth, true);
}

void render_prompt(struct shell *sh, char *buf, size_t len)
{
	long long pl = pref_num(sh, "prompt_length");
	size_t l = strlen(sh->cwd);

	if (pl > 0 && (size_t)pl < l) {
		int half = (int)((pl - 3) / 2);

		snprintf(buf, len, "%.*s...%s> ", half, sh->cwd,
			 sh->cwd + l - (size_t)half);
	} else {
		snprintf(buf, len, "%s> ", sh->cwd);
	}
}
