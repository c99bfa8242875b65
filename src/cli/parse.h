/* utargetcli command-line grammar, after configshell-fb:
 *   [path] [command] [pparam ...] [key=value ...]
 * A first token is a path when it is a bookmark (@name), contains '/', is
 * '.' or '..', or ends with '*' (run on every child). Kept free of readline
 * and jansson so tests/unit/test_cli_parse.c can include it alone. */
#ifndef UT_CLI_PARSE_H
#define UT_CLI_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_MAX_PARAMS 8

struct cli_token {
	char *text;	/* unquoted */
	size_t start;	/* offset in the line */
	size_t end;
};

struct cli_kv {
	char *key, *value;
};

struct cli_line {
	char *path;	/* NULL when the line names none */
	char *command;	/* NULL when the line names none */
	char **pparams;
	size_t npp;
	struct cli_kv *kparams;
	size_t nkp;
};

/* A command's signature: parameter names in order, how many are required,
 * and whether it takes extra positional (get) or keyword (set) params. */
struct cli_sig {
	const char *params[CLI_MAX_PARAMS];
	int nreq;
	bool varargs;
	bool kwargs;
};

/* Parameters bound to a signature: v[i] is params[i]'s value or NULL;
 * extra positional / keyword params follow in line order. Pointers borrow
 * from the cli_line. */
struct cli_args {
	const char *v[CLI_MAX_PARAMS];
	const char **extra;
	size_t nextra;
	const struct cli_kv **kw;
	size_t nkw;
};

/* Splits a line at blanks; '...' and "..." quote. Returns the number of
 * tokens (>= 0) or -1 for an unterminated quote / out of memory. */
int cli_tokenize(const char *line, struct cli_token **toks);
void cli_tokens_free(struct cli_token *toks, int n);

bool cli_is_path_token(const char *t);
bool cli_is_command_token(const char *t);
/* key=value with key made of [A-Za-z0-9_-]; *eq gets the '='. */
bool cli_is_kparam(const char *t, const char **eq);

int cli_parse(const char *line, struct cli_line *out, char *err,
	      size_t errlen);
void cli_line_free(struct cli_line *l);

/* Checks the line's parameters against sig (configshell's assert_params
 * messages) and binds them. Returns 0, or -1 with err set. Free with
 * cli_args_free. */
int cli_bind(const struct cli_sig *sig, const struct cli_line *l,
	     struct cli_args *a, char *err, size_t errlen);
void cli_args_free(struct cli_args *a);

/* Numeric-aware name order: "lun2" < "lun10" (trailing digits compared as
 * numbers, the rest as text). */
int cli_name_cmp(const char *a, const char *b);

/* "100M", "1g", "4096", "2GiB" -> bytes (1024-based); -1 when malformed. */
long long cli_human_to_bytes(const char *s);
/* true/false/yes/no/on/off/1/0 (any case); -1 when none of them. */
int cli_parse_bool(const char *s);

#endif
