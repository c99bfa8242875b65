/* utargetcli: the targetcli-compatible shell, a client of utargetd's
 * control socket through libutarget. Three modes, as targetcli:
 *   one-shot   utargetcli [-s SOCKET] COMMAND...   (runs from /)
 *   batch      commands on stdin when it is not a tty
 *   interactive GNU readline with completion and history
 * A failing command prints its error on stderr; the exit status is then 1. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cli/cli.h"

static bool level_shown(struct shell *sh, const char *lvl)
{
	static const char *const order[] = { "debug", "info", "warning",
					     "error", "critical" };
	json_t *v = pref(sh, "loglevel_console");
	const char *cur = json_is_string(v) ? json_string_value(v) : "info";
	int a = 1, b = 1;

	for (int i = 0; i < 5; i++) {
		if (!strcmp(order[i], lvl))
			a = i;
		if (!strcmp(order[i], cur))
			b = i;
	}
	return a >= b;
}

bool cli_color(struct shell *sh)
{
	return sh->tty_out && pref_bool(sh, "color_mode");
}

void cli_info(struct shell *sh, const char *fmt, ...)
{
	va_list ap;

	if (!level_shown(sh, "info"))
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void to_stderr(struct shell *sh, const char *color, const char *fmt,
		      va_list ap)
{
	bool c = isatty(STDERR_FILENO) && pref_bool(sh, "color_mode");

	fflush(stdout);
	if (c)
		fputs(color, stderr);
	vfprintf(stderr, fmt, ap);
	if (c)
		fputs("\033[0m", stderr);
	fputc('\n', stderr);
}

void cli_warn(struct shell *sh, const char *fmt, ...)
{
	va_list ap;

	if (!level_shown(sh, "warning"))
		return;
	va_start(ap, fmt);
	to_stderr(sh, "\033[33m", fmt, ap);
	va_end(ap);
}

int cli_error(struct shell *sh, const char *fmt, ...)
{
	va_list ap;

	sh->failed = true;
	va_start(ap, fmt);
	to_stderr(sh, "\033[1m\033[31m", fmt, ap);
	va_end(ap);
	return -1;
}

int cli_ut_error(struct shell *sh)
{
	return cli_error(sh, "%s", ut_last_error(sh->ut));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: utargetcli [-s SOCKET] [COMMAND ...]\n"
		   "  -s SOCKET  utargetd's control socket (default: "
		   "$UTARGET_SOCKET, else\n"
		   "             " UTARGET_RUNSTATEDIR "/utarget/utargetd.sock as root, "
		   "$XDG_RUNTIME_DIR/utarget/utargetd.sock otherwise,\n"
		   "             /tmp/utarget-UID/utargetd.sock without "
		   "XDG_RUNTIME_DIR: utargetd's default)\n"
		   "  -V         print the version\n"
		   "With a COMMAND, run it from / and exit; with stdin not a "
		   "terminal, run the\ncommands read from it; otherwise start "
		   "the interactive shell.\n");
}

static char *join_args(int argc, char **argv)
{
	size_t len = 1;
	char *s, *p;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 3;
	s = p = malloc(len);
	if (!s)
		return NULL;
	for (int i = 0; i < argc; i++) {
		/* Keep an argument with blanks in one token. */
		bool q = strpbrk(argv[i], " \t") && !strchr(argv[i], '"');

		p += sprintf(p, "%s%s%s%s", i ? " " : "", q ? "\"" : "",
			     argv[i], q ? "\"" : "");
	}
	return s;
}

static int run_batch(struct shell *sh)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while (!sh->exit && (n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		/* A NUL would silently cut the line: refuse it whole. */
		if (memchr(line, '\0', (size_t)n))
			cli_error(sh, "Syntax error: NUL byte in the line.");
		else
			cli_run_line(sh, line);
		fflush(stdout);
	}
	free(line);
	cli_exit_actions(sh);
	return sh->failed ? 1 : 0;
}

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
	(void)sig;
	got_sigint = 1;
	/* Like configshell's KeyboardInterrupt: drop the line, new prompt. */
	rl_replace_line("", 0);
	rl_crlf();
	rl_on_new_line();
	rl_redisplay();
}

static int run_interactive(struct shell *sh)
{
	char hist[PATH_MAX + 16], prompt[PATH_MAX + 8];
	json_t *h = pref(sh, "path_history");
	long idx = (long)pref_num(sh, "path_history_index");
	struct sigaction sa = { .sa_handler = on_sigint };

	printf("utargetcli shell version %s\n"
	       "For help on commands, type 'help'.\n\n", UTARGETCLI_VERSION);
	mkdir(sh->home, 0700);
	snprintf(hist, sizeof(hist), "%s/history.txt", sh->home);
	read_history(hist);
	complete_init(sh);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	/* Start where the last session left off, as configshell does. */
	if (json_is_array(h) && idx >= 0 && (size_t)idx < json_array_size(h) &&
	    json_is_string(json_array_get(h, (size_t)idx)))
		snprintf(sh->cwd, sizeof(sh->cwd), "%s",
			 json_string_value(json_array_get(h, (size_t)idx)));
	if (tree_refresh(sh))
		cli_ut_error(sh);
	else
		tree_cwd(sh);
	while (!sh->exit) {
		char *line;

		render_prompt(sh, prompt, sizeof(prompt));
		line = readline(prompt);
		if (!line) {
			printf("exit\n");
			sh->exit = true;
			break;
		}
		if (*line) {
			add_history(line);
			if (write_history(hist))
				history_truncate_file(hist, 1000);
		}
		sh->failed = false;
		cli_run_line(sh, line);
		free(line);
		fflush(stdout);
	}
	cli_exit_actions(sh);
	prefs_save(sh);
	history_truncate_file(hist, 1000);
	return sh->failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct shell sh;
	const char *sock = NULL;
	int opt, rc;

	memset(&sh, 0, sizeof(sh));
	while ((opt = getopt(argc, argv, "+s:hV")) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'V':
			printf("utargetcli version %s\n", UTARGETCLI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	sh.ut = ut_open(sock);
	sh.describe = json_object();
	if (!sh.ut || !sh.describe) {
		fprintf(stderr, "utargetcli: out of memory\n");
		return 1;
	}
	prefs_load(&sh);
	snprintf(sh.cwd, sizeof(sh.cwd), "/");
	sh.tty_out = isatty(STDOUT_FILENO);
	if (optind < argc) {
		char *line = join_args(argc - optind, argv + optind);

		if (line)
			cli_run_line(&sh, line);
		free(line);
		cli_exit_actions(&sh);
		rc = sh.failed || !line ? 1 : 0;
	} else if (!isatty(STDIN_FILENO)) {
		rc = run_batch(&sh);
	} else {
		sh.interactive = true;
		rc = run_interactive(&sh);
	}
	fflush(stdout);
	tree_free(sh.root);
	json_decref(sh.config);
	json_decref(sh.prefs);
	json_decref(sh.describe);
	ut_close(sh.ut);
	return rc;
}
